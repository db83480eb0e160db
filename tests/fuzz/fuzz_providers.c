/*
 * smtpkit: libFuzzer target for the providers-file parser.
 *
 * Arbitrary text goes to sk_providers_parse(): it must either fail with
 * "fuzz:LINE: ..." (or "fuzz: ...") and leave the database empty, or
 * succeed with presets that keep the promises of providers.h; then every
 * lookup and reply match is run over what was parsed, and the text is
 * parsed a second time into the same database, which must replace every
 * entry in place rather than add to it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpkit/error.h"
#include "smtpkit/providers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_provider(const struct sk_providers *db, const struct sk_provider *p)
{
	const struct sk_provider_region *r;
	char id[160];
	size_t i, j;

	if (p->id == NULL || p->name == NULL || p->host == NULL ||
	    p->origin == NULL || p->nports == 0 ||
	    p->nports > SK_PROVIDER_PORTS_MAX)
		abort();
	for (i = 0, j = 0; i < p->nports; i++) {
		if (p->ports[i].port == 0 || p->ports[i].port > 65535)
			abort();
		j += p->ports[i].port == p->recommended;
	}
	if (j != 1)
		abort();
	if (sk_providers_find(db, p->id, NULL) == NULL)
		abort();
	for (i = 0; i < p->naliases; i++)
		if (sk_providers_find(db, p->aliases[i], NULL) == NULL)
			abort();
	for (i = 0; i < p->ndomains; i++)
		if (sk_providers_by_domain(db, p->domains[i]) == NULL)
			abort();
	for (i = 0; i < p->nmx; i++)
		if (sk_providers_by_mx(db, p->mx[i]) == NULL)
			abort();
	for (i = 0; i < p->nregions; i++) {
		(void)snprintf(id, sizeof(id), "%s:%s", p->id,
		    p->regions[i].name);
		if (sk_providers_find(db, id, &r) == NULL || r == NULL)
			abort();
		for (j = 0; j < p->regions[i].ndomains; j++)
			(void)sk_provider_region_by_domain(p,
			    p->regions[i].domains[j]);
		for (j = 0; j < p->regions[i].nmx; j++)
			(void)sk_provider_region_by_mx(p,
			    p->regions[i].mx[j]);
	}
}

/* A reply text made of the rule's own words must match some rule. */
static void
check_rule(const struct sk_providers *db, const struct sk_reply_rule *r)
{
	const struct sk_reply_rule *m;
	char text[8192];
	size_t i, off = 0, n;

	if (r->id == NULL || r->verdict == NULL || r->summary == NULL ||
	    (r->nmatch == 0 && r->enhanced == NULL) ||
	    !sk_providers_verdict_known(r->verdict))
		abort();
	if (r->enhanced != NULL) {
		n = strlen(r->enhanced);
		memcpy(text, r->enhanced, n);
		text[n] = ' ';
		off = n + 1;
	}
	for (i = 0; i < r->nmatch; i++) {
		n = strlen(r->match[i]);
		if (off + n + 2 > sizeof(text))
			return;
		memcpy(text + off, r->match[i], n);
		off += n;
		text[off++] = ' ';
	}
	text[off] = '\0';
	m = sk_providers_match_reply(db, NULL, r->code, r->enhanced, text);
	if (m == NULL)
		abort();
	for (i = 0; i < sk_providers_count(db); i++)
		(void)sk_providers_match_reply(db, sk_providers_at(db, i),
		    r->code, NULL, text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sk_providers *db;
	struct sk_error err;
	size_t i, np, nr;

	if ((db = sk_providers_new()) == NULL)
		return 0;
	if (sk_providers_parse(db, (const char *)data, size, "fuzz",
	    &err) == -1) {
		if (strncmp(err.message, "fuzz:", 5) != 0 ||
		    err.kind != SK_ERR_CONFIG ||
		    sk_providers_count(db) != 0 ||
		    sk_providers_rule_count(db) != 0)
			abort();
		sk_providers_free(db);
		return 0;
	}
	np = sk_providers_count(db);
	nr = sk_providers_rule_count(db);
	for (i = 0; i < np; i++)
		check_provider(db, sk_providers_at(db, i));
	for (i = 0; i < nr; i++)
		check_rule(db, sk_providers_rule_at(db, i));
	(void)sk_providers_match_reply(db, NULL, 550, "5.7.1",
	    "5.7.1 relay access denied");

	/* The same text again replaces everything in place. */
	if (sk_providers_parse(db, (const char *)data, size, "again",
	    &err) == -1 || sk_providers_count(db) != np ||
	    sk_providers_rule_count(db) != nr)
		abort();
	for (i = 0; i < np; i++)
		if (strcmp(sk_providers_at(db, i)->origin, "again") != 0)
			abort();
	sk_providers_free(db);
	return 0;
}
