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
 * LOGIN; without TLS: CRAM-MD5 first, since it never reveals the password,
 * then PLAIN, LOGIN (whether to send those in the clear is the caller's
 * policy).  SK_AUTH_NONE when nothing fits.
 */
enum sk_auth_mech sk_auth_choose(unsigned offered, bool token, bool tls);

/* True for XOAUTH2 and OAUTHBEARER, whose secret is a bearer token. */
bool sk_auth_mech_is_token(enum sk_auth_mech m);

struct sk_auth {
	enum sk_auth_mech mech;
	int step;		/* challenges answered so far; -1 while the
				   initial response is still owed */
};

/*
 * Start an exchange: write the command line (without CRLF), e.g.
 * "AUTH PLAIN <base64>" or "AUTH LOGIN", to out, NUL-terminated; *len set.
 * PLAIN, XOAUTH2 and OAUTHBEARER carry an initial response unless the
 * command would then exceed 512 octets (RFC 4954 §4): it is then just
 * "AUTH <mech>" and the response answers the server's first, empty, 334.
 * Returns 0, or -1 (kind SK_ERR_LOCAL) if it does not fit in cap or
 * SK_AUTH_LINE_MAX, or an argument is missing (NULL or "") or, for the
 * token mechanisms, holds a control character.
 */
int sk_auth_start(struct sk_auth *a, enum sk_auth_mech mech, const char *user,
    const char *secret, char *out, size_t cap, size_t *len,
    struct sk_error *err);

/*
 * Answer a 334 challenge.  challenge is the reply text after "334 " (still
 * base64).  Writes the response line (without CRLF) to out; *len set.
 * LOGIN answers the first challenge with the user name and the second with
 * the password, whatever their wording.  For XOAUTH2 / OAUTHBEARER a 334
 * after the token carries the server's JSON error: the answer is an empty
 * line for XOAUTH2 and "AQ==" (a single %x01, RFC 7628 §3.2.3) for
 * OAUTHBEARER, after which the server sends its final 5xx.
 * Returns 0, or -1 with err (kind SK_ERR_PROTOCOL) on an undecodable
 * CRAM-MD5 challenge or an unexpected one (a third for LOGIN, any after
 * PLAIN's initial response), or (kind SK_ERR_LOCAL) as sk_auth_start.
 */
int sk_auth_step(struct sk_auth *a, const char *user, const char *secret,
    const char *challenge, size_t clen, char *out, size_t cap, size_t *len,
    struct sk_error *err);

/*
 * What the JSON error in a 334 challenge after an XOAUTH2 or OAUTHBEARER
 * token says (RFC 7628 §3.2.2; Google sends the same shape for XOAUTH2):
 * SK_OAUTH_ERR_INVALID_TOKEN for status "401" or "invalid_token" (the
 * token is expired or revoked: a refresh may cure it), INVALID_SCOPE for
 * "403" / "insufficient_scope", INVALID_REQUEST for "400" /
 * "invalid_request", OTHER for another status, NONE when challenge (still
 * base64) is not such a JSON object.
 */
enum sk_oauth_error sk_auth_token_error(const char *challenge, size_t clen);

#endif
