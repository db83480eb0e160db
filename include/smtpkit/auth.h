/*
 * smtpkit: SASL mechanisms for SMTP AUTH (RFC 4954).
 *
 * PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195), XOAUTH2 (Google/Microsoft)
 * and OAUTHBEARER (RFC 7628).  Pure functions: they build the lines the
 * client sends; the client engine sends them and redacts them in traces.
 */
#ifndef SMTPKIT_AUTH_H
#define SMTPKIT_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

enum sk_auth_mech {
	SK_AUTH_NONE = 0,
	SK_AUTH_PLAIN,
	SK_AUTH_LOGIN,
	SK_AUTH_CRAM_MD5,
	SK_AUTH_XOAUTH2,
	SK_AUTH_OAUTHBEARER,
	SK_AUTH__COUNT
};

#define SK_AUTH_BIT(m) (1u << (m))

/* Longest line an AUTH exchange may produce (RFC 4954 §4 allows 12288). */
#define SK_AUTH_LINE_MAX 12288

/* "PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"; "none" for SK_AUTH_NONE. */
const char *sk_auth_mech_name(enum sk_auth_mech m);

/* Case-insensitive; SK_AUTH_NONE when unknown. */
enum sk_auth_mech sk_auth_mech_parse(const char *name);

/*
 * Parse the parameters of an EHLO "AUTH" line ("PLAIN LOGIN CRAM-MD5 ...",
 * also the obsolete "AUTH=PLAIN LOGIN" form) into a mask of SK_AUTH_BIT()s.
 * Unknown mechanisms are ignored.
 */
unsigned sk_auth_mechs_parse(const char *list, size_t len);

/*
 * Pick the mechanism to use from the offered mask.  With a bearer token:
 * XOAUTH2, then OAUTHBEARER.  With a password over TLS: PLAIN, CRAM-MD5,
 * LOGIN; without TLS: CRAM-MD5 first, since it never reveals the password.
 * SK_AUTH_NONE when nothing fits.
 */
enum sk_auth_mech sk_auth_choose(unsigned offered, bool token, bool tls);

/* True for XOAUTH2 and OAUTHBEARER, whose secret is a bearer token. */
bool sk_auth_mech_is_token(enum sk_auth_mech m);

struct sk_auth {
	enum sk_auth_mech mech;
	int step;		/* challenges answered so far */
};

/*
 * Start an exchange: write the command line (without CRLF), e.g.
 * "AUTH PLAIN <base64>" or "AUTH LOGIN", to out, NUL-terminated; *len set.
 * Returns 0, or -1 (kind SK_ERR_LOCAL) if it does not fit in cap or an
 * argument is missing.
 */
int sk_auth_start(struct sk_auth *a, enum sk_auth_mech mech, const char *user,
    const char *secret, char *out, size_t cap, size_t *len,
    struct sk_error *err);

/*
 * Answer a 334 challenge.  challenge is the reply text after "334 " (still
 * base64).  Writes the response line (without CRLF) to out; *len set.  For
 * XOAUTH2 / OAUTHBEARER a 334 carries the server's JSON error: the answer
 * is an empty line, after which the server sends its final 5xx.
 * Returns 0, or -1 with err (kind SK_ERR_PROTOCOL) on an undecodable or
 * unexpected challenge.
 */
int sk_auth_step(struct sk_auth *a, const char *user, const char *secret,
    const char *challenge, size_t clen, char *out, size_t cap, size_t *len,
    struct sk_error *err);

#endif
