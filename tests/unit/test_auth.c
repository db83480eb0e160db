/*
 * smtpkit: SASL mechanism unit tests (RFC 4616, RFC 2195, RFC 7628,
 * Google's XOAUTH2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpkit/auth.h"
#include "smtpkit/base64.h"
#include "smtpkit/error.h"

static char out[SK_AUTH_LINE_MAX];

static void
start_ok(struct sk_auth *a, enum sk_auth_mech m, const char *user,
    const char *secret, const char *want)
{
	struct sk_error err;
	size_t len = 0;

	sk_error_clear(&err);
	if (sk_auth_start(a, m, user, secret, out, sizeof(out), &len,
	    &err) != 0)
		fail_msg("start %s: %s", sk_auth_mech_name(m), err.message);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
}

static void
step_ok(struct sk_auth *a, const char *user, const char *secret,
    const char *challenge, const char *want)
{
	struct sk_error err;
	size_t len = 99;

	sk_error_clear(&err);
	if (sk_auth_step(a, user, secret, challenge, strlen(challenge), out,
	    sizeof(out), &len, &err) != 0)
		fail_msg("step %s: %s", sk_auth_mech_name(a->mech),
		    err.message);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
}

static void
step_fails(struct sk_auth *a, const char *user, const char *secret,
    const char *challenge, enum sk_error_kind kind)
{
	struct sk_error err;
	size_t len = 99;

	sk_error_clear(&err);
	assert_int_equal(sk_auth_step(a, user, secret, challenge,
	    strlen(challenge), out, sizeof(out), &len, &err), -1);
	assert_int_equal(err.kind, kind);
	assert_int_equal(err.stage, SK_STAGE_AUTH);
	assert_string_equal(out, "");
	assert_int_equal(len, 0);
}

static void
test_mech_names(void **state)
{
	assert_string_equal(sk_auth_mech_name(SK_AUTH_NONE), "none");
	assert_string_equal(sk_auth_mech_name(SK_AUTH_PLAIN), "PLAIN");
	assert_string_equal(sk_auth_mech_name(SK_AUTH_LOGIN), "LOGIN");
	assert_string_equal(sk_auth_mech_name(SK_AUTH_CRAM_MD5), "CRAM-MD5");
	assert_string_equal(sk_auth_mech_name(SK_AUTH_XOAUTH2), "XOAUTH2");
	assert_string_equal(sk_auth_mech_name(SK_AUTH_OAUTHBEARER),
	    "OAUTHBEARER");
	assert_string_equal(sk_auth_mech_name(SK_AUTH__COUNT), "unknown");

	assert_int_equal(sk_auth_mech_parse("plain"), SK_AUTH_PLAIN);
	assert_int_equal(sk_auth_mech_parse("Login"), SK_AUTH_LOGIN);
	assert_int_equal(sk_auth_mech_parse("cram-md5"), SK_AUTH_CRAM_MD5);
	assert_int_equal(sk_auth_mech_parse("XOAuth2"), SK_AUTH_XOAUTH2);
	assert_int_equal(sk_auth_mech_parse("oauthbearer"),
	    SK_AUTH_OAUTHBEARER);
	assert_int_equal(sk_auth_mech_parse("none"), SK_AUTH_NONE);
	assert_int_equal(sk_auth_mech_parse("DIGEST-MD5"), SK_AUTH_NONE);
	assert_int_equal(sk_auth_mech_parse("PLAINX"), SK_AUTH_NONE);
	assert_int_equal(sk_auth_mech_parse("PLAI"), SK_AUTH_NONE);
	assert_int_equal(sk_auth_mech_parse(""), SK_AUTH_NONE);
	assert_int_equal(sk_auth_mech_parse(NULL), SK_AUTH_NONE);
	assert_true(sk_auth_mech_is_token(SK_AUTH_XOAUTH2));
	assert_true(sk_auth_mech_is_token(SK_AUTH_OAUTHBEARER));
	assert_false(sk_auth_mech_is_token(SK_AUTH_PLAIN));
	assert_false(sk_auth_mech_is_token(SK_AUTH_NONE));
}

static unsigned
mechs(const char *s)
{
	return sk_auth_mechs_parse(s, strlen(s));
}

static void
test_mechs_parse(void **state)
{
	const unsigned P = SK_AUTH_BIT(SK_AUTH_PLAIN);
	const unsigned L = SK_AUTH_BIT(SK_AUTH_LOGIN);
	const unsigned C = SK_AUTH_BIT(SK_AUTH_CRAM_MD5);
	const unsigned X = SK_AUTH_BIT(SK_AUTH_XOAUTH2);
	const unsigned O = SK_AUTH_BIT(SK_AUTH_OAUTHBEARER);

	assert_int_equal(mechs("PLAIN LOGIN"), P | L);
	assert_int_equal(mechs("LOGIN PLAIN CRAM-MD5 DIGEST-MD5 GSSAPI"),
	    P | L | C);
	assert_int_equal(mechs("plain login cram-md5"), P | L | C);
	assert_int_equal(mechs("XOAUTH2 OAUTHBEARER PLAIN"), X | O | P);
	assert_int_equal(mechs("  PLAIN\tXOAUTH2  "), P | X);
	assert_int_equal(mechs("AUTH=PLAIN LOGIN"), P | L); /* old form */
	assert_int_equal(mechs("auth=LOGIN"), L);
	assert_int_equal(mechs("=LOGIN CRAM-MD5"), L | C);
	assert_int_equal(mechs("GSSAPI NTLM DIGEST-MD5 SCRAM-SHA-1"), 0);
	assert_int_equal(mechs("PLAINLOGIN"), 0);
	assert_int_equal(mechs(""), 0);
	assert_int_equal(mechs("AUTH="), 0);
	/* len bounds the list: no NUL needed */
	assert_int_equal(sk_auth_mechs_parse("PLAIN LOGIN", 5), P);
	assert_int_equal(sk_auth_mechs_parse("PLAIN LOGIN", 4), 0);
}

static void
test_choose(void **state)
{
	const unsigned P = SK_AUTH_BIT(SK_AUTH_PLAIN);
	const unsigned L = SK_AUTH_BIT(SK_AUTH_LOGIN);
	const unsigned C = SK_AUTH_BIT(SK_AUTH_CRAM_MD5);
	const unsigned X = SK_AUTH_BIT(SK_AUTH_XOAUTH2);
	const unsigned O = SK_AUTH_BIT(SK_AUTH_OAUTHBEARER);

	assert_int_equal(sk_auth_choose(P | L | C | X | O, true, true),
	    SK_AUTH_XOAUTH2);
	assert_int_equal(sk_auth_choose(P | L | C | O, true, true),
	    SK_AUTH_OAUTHBEARER);
	assert_int_equal(sk_auth_choose(P | L | C, true, true), SK_AUTH_NONE);
	assert_int_equal(sk_auth_choose(X, true, false), SK_AUTH_XOAUTH2);

	assert_int_equal(sk_auth_choose(P | L | C | X, false, true),
	    SK_AUTH_PLAIN);
	assert_int_equal(sk_auth_choose(L | C, false, true), SK_AUTH_CRAM_MD5);
	assert_int_equal(sk_auth_choose(L, false, true), SK_AUTH_LOGIN);
	assert_int_equal(sk_auth_choose(X | O, false, true), SK_AUTH_NONE);

	assert_int_equal(sk_auth_choose(P | L | C, false, false),
	    SK_AUTH_CRAM_MD5);
	assert_int_equal(sk_auth_choose(P | L, false, false), SK_AUTH_PLAIN);
	assert_int_equal(sk_auth_choose(L, false, false), SK_AUTH_LOGIN);
	assert_int_equal(sk_auth_choose(0, false, false), SK_AUTH_NONE);
}

/* RFC 4616 §4 */
static void
test_plain_rfc4616(void **state)
{
	struct sk_auth a;

	start_ok(&a, SK_AUTH_PLAIN, "tim", "tanstaaftanstaaf",
	    "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
	assert_int_equal(a.mech, SK_AUTH_PLAIN);
	assert_int_equal(a.step, 0);
	/* Everything went with the command: a challenge is a surprise. */
	step_fails(&a, "tim", "tanstaaftanstaaf", "", SK_ERR_PROTOCOL);

	/* Non-ASCII (UTF-8) names and passwords go through unchanged. */
	start_ok(&a, SK_AUTH_PLAIN, "J\xc3\xb6rg", "p\xc3\xa4ss",
	    "AUTH PLAIN AErDtnJnAHDDpHNz");
}

static void
test_login_steps(void **state)
{
	struct sk_auth a;

	start_ok(&a, SK_AUTH_LOGIN, "tim", "tanstaaftanstaaf", "AUTH LOGIN");
	step_ok(&a, "tim", "tanstaaftanstaaf", "VXNlcm5hbWU6", "dGlt");
	assert_int_equal(a.step, 1);
	step_ok(&a, "tim", "tanstaaftanstaaf", "UGFzc3dvcmQ6",
	    "dGFuc3RhYWZ0YW5zdGFhZg==");
	assert_int_equal(a.step, 2);
	step_fails(&a, "tim", "tanstaaftanstaaf", "", SK_ERR_PROTOCOL);

	/* The order decides, not the wording ("User Name", lower case). */
	start_ok(&a, SK_AUTH_LOGIN, "tim", "tanstaaftanstaaf", "AUTH LOGIN");
	step_ok(&a, "tim", "tanstaaftanstaaf", "VXNlciBOYW1lAA==", "dGlt");
	step_ok(&a, "tim", "tanstaaftanstaaf", "cGFzc3dvcmQ6",
	    "dGFuc3RhYWZ0YW5zdGFhZg==");
}

/* RFC 2195 §2 */
static void
test_cram_md5_rfc2195(void **state)
{
	struct sk_auth a;

	start_ok(&a, SK_AUTH_CRAM_MD5, "tim", "tanstaaftanstaaf",
	    "AUTH CRAM-MD5");
	step_ok(&a, "tim", "tanstaaftanstaaf",
	    "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
	    "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
	step_fails(&a, "tim", "tanstaaftanstaaf",
	    "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
	    SK_ERR_PROTOCOL);

	start_ok(&a, SK_AUTH_CRAM_MD5, "tim", "x", "AUTH CRAM-MD5");
	step_fails(&a, "tim", "x", "not base64!", SK_ERR_PROTOCOL);
	start_ok(&a, SK_AUTH_CRAM_MD5, "tim", "x", "AUTH CRAM-MD5");
	step_fails(&a, "tim", "x", "", SK_ERR_PROTOCOL);
	start_ok(&a, SK_AUTH_CRAM_MD5, "tim", "x", "AUTH CRAM-MD5");
	step_fails(&a, "tim", "x", "PDE4OTY=x", SK_ERR_PROTOCOL);
}

/* developers.google.com/gmail/imap/xoauth2-protocol */
static void
test_xoauth2(void **state)
{
	struct sk_auth a;

	start_ok(&a, SK_AUTH_XOAUTH2, "someuser@example.com",
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
	    "AUTH XOAUTH2 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5"
	    "YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
	/* The JSON error comes as a 334; an empty line lets the 5xx follow. */
	step_ok(&a, "someuser@example.com", "ya29.x",
	    "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRw"
	    "czovL21haWwuZ29vZ2xlLmNvbS8ifQ==", "");
	step_fails(&a, "someuser@example.com", "ya29.x", "", SK_ERR_PROTOCOL);
}

/* RFC 7628 §4.1 (without the optional host and port) and §3.2.3 */
static void
test_oauthbearer(void **state)
{
	struct sk_auth a;

	start_ok(&a, SK_AUTH_OAUTHBEARER, "user@example.com",
	    "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
	    "AUTH OAUTHBEARER bixhPXVzZXJAZXhhbXBsZS5jb20sAWF1dGg9QmVhcmVyIHZG"
	    "OWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB");
	step_ok(&a, "user@example.com", "x",
	    "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=", "AQ==");
	step_fails(&a, "user@example.com", "x", "", SK_ERR_PROTOCOL);

	/* saslname: ',' is =2C and '=' is =3D (RFC 5801 §4) */
	start_ok(&a, SK_AUTH_OAUTHBEARER, "a,b=c", "tok",
	    "AUTH OAUTHBEARER bixhPWE9MkNiPTNEYywBYXV0aD1CZWFyZXIgdG9rAQE=");
}

/* Check that line, after its prefix, decodes to want. */
static void
expect_decoded(const char *line, const char *prefix, const void *want,
    size_t wlen)
{
	static unsigned char raw[SK_AUTH_LINE_MAX];
	size_t plen = strlen(prefix), n;

	assert_memory_equal(line, prefix, plen);
	assert_int_equal(sk_base64_decode(line + plen, strlen(line + plen),
	    raw, sizeof(raw), &n), 0);
	assert_int_equal(n, wlen);
	assert_memory_equal(raw, want, wlen);
}

/*
 * RFC 4954 §4: an initial response that would push the AUTH command over
 * 512 octets is sent after the server's empty 334 instead.
 */
static void
test_long_token_without_initial_response(void **state)
{
	char token[1500], want[1600];
	struct sk_auth a;
	size_t len;

	memset(token, 'T', sizeof(token) - 1);
	token[sizeof(token) - 1] = '\0';

	start_ok(&a, SK_AUTH_XOAUTH2, "u@example.com", token, "AUTH XOAUTH2");
	assert_int_equal(a.step, -1);
	assert_int_equal(sk_auth_step(&a, "u@example.com", token, "", 0, out,
	    sizeof(out), &len, NULL), 0);
	len = (size_t)snprintf(want, sizeof(want),
	    "user=u@example.com\001auth=Bearer %s\001\001", token);
	expect_decoded(out, "", want, len);
	assert_int_equal(a.step, 0);
	step_ok(&a, "u@example.com", token, "e30=", "");
	step_fails(&a, "u@example.com", token, "", SK_ERR_PROTOCOL);

	start_ok(&a, SK_AUTH_OAUTHBEARER, "u@example.com", token,
	    "AUTH OAUTHBEARER");
	assert_int_equal(sk_auth_step(&a, "u@example.com", token, "", 0, out,
	    sizeof(out), &len, NULL), 0);
	len = (size_t)snprintf(want, sizeof(want),
	    "n,a=u@example.com,\001auth=Bearer %s\001\001", token);
	expect_decoded(out, "", want, len);
	step_ok(&a, "u@example.com", token, "e30=", "AQ==");

	start_ok(&a, SK_AUTH_PLAIN, "u", token, "AUTH PLAIN");
	assert_int_equal(sk_auth_step(&a, "u", token, "", 0, out, sizeof(out),
	    &len, NULL), 0);
	want[0] = '\0';
	memcpy(want + 1, "u", 2);
	memcpy(want + 3, token, sizeof(token));
	expect_decoded(out, "", want, 3 + strlen(token));
	step_fails(&a, "u", token, "", SK_ERR_PROTOCOL);
}

/* The longest initial response that still fits in 512 octets. */
static void
test_initial_response_boundary(void **state)
{
	struct sk_auth a;
	char pass[400];
	size_t len, n;

	/*
	 * "AUTH PLAIN " (11) + base64 + CRLF (2) <= 512: base64 of at most
	 * 498 octets, i.e. 124 groups, 372 raw octets = NUL u NUL + 369.
	 */
	n = 369;
	memset(pass, 'p', n);
	pass[n] = '\0';
	assert_int_equal(sk_auth_start(&a, SK_AUTH_PLAIN, "u", pass, out,
	    sizeof(out), &len, NULL), 0);
	assert_int_equal(len + 2, 11 + 496 + 2);
	assert_int_equal(a.step, 0);
	pass[n] = 'p';
	pass[n + 1] = '\0';
	assert_int_equal(sk_auth_start(&a, SK_AUTH_PLAIN, "u", pass, out,
	    sizeof(out), &len, NULL), 0);
	assert_string_equal(out, "AUTH PLAIN");
	assert_int_equal(a.step, -1);
}

static void
test_bad_arguments(void **state)
{
	struct sk_auth a;
	struct sk_error err;
	char small[16], *huge;
	size_t len = 7;

	assert_int_equal(sk_auth_start(&a, SK_AUTH_PLAIN, NULL, "p", out,
	    sizeof(out), &len, &err), -1);
	assert_int_equal(err.kind, SK_ERR_LOCAL);
	assert_string_equal(out, "");
	assert_int_equal(len, 0);
	assert_int_equal(sk_auth_start(&a, SK_AUTH_PLAIN, "", "p", out,
	    sizeof(out), &len, &err), -1);
	assert_int_equal(sk_auth_start(&a, SK_AUTH_LOGIN, "u", NULL, out,
	    sizeof(out), &len, &err), -1);
	assert_int_equal(sk_auth_start(&a, SK_AUTH_PLAIN, "u", "", out,
	    sizeof(out), &len, &err), -1);
	assert_int_equal(sk_auth_start(&a, SK_AUTH_XOAUTH2, "u", "", out,
	    sizeof(out), &len, &err), -1);
	assert_int_equal(sk_auth_start(&a, SK_AUTH_NONE, "u", "p", out,
	    sizeof(out), &len, &err), -1);
	assert_int_equal(err.kind, SK_ERR_LOCAL);
	assert_int_equal(sk_auth_start(&a, SK_AUTH__COUNT, "u", "p", out,
	    sizeof(out), &len, NULL), -1);

	/* A token read with its newline, or with the field separator. */
	assert_int_equal(sk_auth_start(&a, SK_AUTH_XOAUTH2, "u", "tok\n", out,
	    sizeof(out), &len, &err), -1);
	assert_int_equal(err.kind, SK_ERR_LOCAL);
	assert_non_null(strstr(err.message, "newline"));
	assert_int_equal(sk_auth_start(&a, SK_AUTH_OAUTHBEARER, "u\001x",
	    "tok", out, sizeof(out), &len, &err), -1);

	/* Too small an output buffer: an error, never a cut line. */
	assert_int_equal(sk_auth_start(&a, SK_AUTH_PLAIN, "tim",
	    "tanstaaftanstaaf", small, sizeof(small), &len, &err), -1);
	assert_int_equal(err.kind, SK_ERR_LOCAL);
	assert_string_equal(small, "");
	assert_int_equal(sk_auth_start(&a, SK_AUTH_LOGIN, "tim", "x", small,
	    10, &len, &err), -1);
	assert_int_equal(sk_auth_start(&a, SK_AUTH_LOGIN, "tim", "x", small,
	    11, &len, &err), 0);
	assert_string_equal(small, "AUTH LOGIN");
	assert_int_equal(sk_auth_step(&a, "tim", "x", "", 0, small, 4, &len,
	    &err), -1);
	assert_int_equal(err.kind, SK_ERR_LOCAL);
	assert_int_equal(sk_auth_step(&a, "tim", "x", "", 0, small, 5, &len,
	    &err), 0);
	assert_string_equal(small, "dGlt");

	/* Over SK_AUTH_LINE_MAX even as a late initial response. */
	huge = malloc(SK_AUTH_LINE_MAX);
	assert_non_null(huge);
	memset(huge, 'h', SK_AUTH_LINE_MAX - 1);
	huge[SK_AUTH_LINE_MAX - 1] = '\0';
	assert_int_equal(sk_auth_start(&a, SK_AUTH_XOAUTH2, "u", huge, out,
	    sizeof(out), &len, &err), -1);
	assert_int_equal(err.kind, SK_ERR_LOCAL);
	/* LOGIN: a password whose base64 needs more than a line */
	huge[SK_AUTH_LINE_MAX / 4 * 3] = '\0';
	start_ok(&a, SK_AUTH_LOGIN, "u", huge, "AUTH LOGIN");
	step_ok(&a, "u", huge, "", "dQ==");
	step_fails(&a, "u", huge, "", SK_ERR_LOCAL);
	free(huge);

	/* A step without a start */
	memset(&a, 0, sizeof(a));
	step_fails(&a, "u", "p", "", SK_ERR_LOCAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mech_names),
		cmocka_unit_test(test_mechs_parse),
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_plain_rfc4616),
		cmocka_unit_test(test_login_steps),
		cmocka_unit_test(test_cram_md5_rfc2195),
		cmocka_unit_test(test_xoauth2),
		cmocka_unit_test(test_oauthbearer),
		cmocka_unit_test(test_long_token_without_initial_response),
		cmocka_unit_test(test_initial_response_boundary),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
