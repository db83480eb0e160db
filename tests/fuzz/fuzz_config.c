/*
 * smtpkit: libFuzzer target for the config parser.
 *
 * Whatever the text, the parser either fails with a config error naming
 * the origin and a line, leaving the configuration untouched, or yields
 * accounts that keep the promises of config.h: valid names, one password
 * source at most, values in range, and lookups that find them.  Parsing
 * the same text again replaces every account by itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpkit/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_account(const struct sk_config *cfg, const struct sk_account *a)
{
	int sources;

	if (a->name == NULL || a->name[0] == '\0' || a->origin == NULL ||
	    strncmp(a->origin, "f:", 2) != 0)
		abort();
	if (sk_config_find(cfg, a->name) != a)
		abort();
	sources = (a->password != NULL) + (a->password_file != NULL) +
	    (a->password_env != NULL) + (a->password_cmd != NULL);
	if (sources > 1)
		abort();
	if (a->port > 65535 || a->timeout < 0 || a->timeout > 3600)
		abort();
	if (a->host != NULL && (a->host[0] == '\0' ||
	    strpbrk(a->host, " \t\r\n") != NULL))
		abort();
	if (a->from != NULL && sk_config_by_from(cfg, a->from) == NULL)
		abort();
	if (!a->tls_set && a->tls != SK_TLS_MODE_NONE)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sk_config cfg;
	struct sk_error err;
	size_t i, n;

	memset(&cfg, 0, sizeof(cfg));
	if (sk_config_parse(&cfg, (const char *)data, size, "f", &err) == -1) {
		if (err.kind == SK_ERR_CONFIG &&
		    strncmp(err.message, "f:", 2) != 0)
			abort();
		if (err.kind != SK_ERR_CONFIG && err.kind != SK_ERR_LOCAL)
			abort();
		if (cfg.naccounts != 0 || cfg.accounts != NULL ||
		    cfg.default_account != NULL)
			abort();
		sk_config_fini(&cfg);
		return 0;
	}
	for (i = 0; i < cfg.naccounts; i++)
		check_account(&cfg, &cfg.accounts[i]);
	if (cfg.default_account != NULL && cfg.default_origin == NULL)
		abort();
	(void)sk_config_default(&cfg);

	n = cfg.naccounts;
	if (sk_config_parse(&cfg, (const char *)data, size, "f", &err) == -1 ||
	    cfg.naccounts != n)
		abort();
	for (i = 0; i < cfg.naccounts; i++)
		check_account(&cfg, &cfg.accounts[i]);
	sk_config_fini(&cfg);
	return 0;
}
