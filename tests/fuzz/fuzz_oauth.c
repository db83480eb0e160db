/*
 * smtpkit: libFuzzer target for what OAuth2 reads from others: token
 * files, token endpoint answers, authorization servers' errors, SMTP
 * servers' error challenges, and endpoint URLs.
 *
 * Whatever the input: no crash, no leak; a parsed token has a printable
 * access token and writes back to text that parses to the same token; an
 * error description has no control characters; a URL the check accepts
 * is https, or http to a loopback host.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpkit/auth.h"
#include "smtpkit/oauth.h"
#include "smtpkit/providers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_token(const struct sk_oauth_token *t)
{
	struct sk_oauth_token u;
	const char *s;
	char *text;

	if (t->access_token == NULL || t->access_token[0] == '\0')
		abort();
	for (s = t->access_token; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			abort();
	if ((text = sk_oauth_token_format(t)) == NULL)
		return;		/* out of memory */
	if (sk_oauth_token_parse(text, strlen(text), &u, NULL) != 0 ||
	    strcmp(u.access_token, t->access_token) != 0 ||
	    (t->refresh_token == NULL) != (u.refresh_token == NULL) ||
	    (t->refresh_token != NULL &&
	    strcmp(t->refresh_token, u.refresh_token) != 0) ||
	    u.expires_at != t->expires_at)
		abort();
	sk_oauth_token_fini(&u);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sk_oauth_token t;
	char desc[256], *url;
	const char *text = (const char *)data;
	size_t i;

	if (sk_oauth_token_parse(text, size, &t, NULL) == 0) {
		check_token(&t);
		sk_oauth_token_fini(&t);
	}
	if (sk_oauth_token_response(text, size, 1700000000, &t, NULL) == 0) {
		check_token(&t);
		sk_oauth_token_fini(&t);
	}
	(void)sk_oauth_error_parse(text, size, desc, sizeof(desc));
	for (i = 0; desc[i] != '\0'; i++)
		if ((unsigned char)desc[i] < 0x20 || desc[i] == 0x7f)
			abort();
	(void)sk_auth_token_error(text, size);

	if ((url = malloc(size + 1)) == NULL)
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	if (strlen(url) == size && sk_oauth_endpoint_ok(url) &&
	    strncasecmp(url, "https://", 8) != 0 &&
	    strncasecmp(url, "http://127.0.0.1", 16) != 0 &&
	    strncasecmp(url, "http://localhost", 16) != 0 &&
	    strncasecmp(url, "http://[::1]", 12) != 0)
		abort();
	free(url);
	return 0;
}
