/*
 * smtpkit: OAuth2 tokens for SMTP's XOAUTH2 and OAUTHBEARER.
 *
 * Obtaining them: the device authorization grant (RFC 8628) where the
 * provider allows it (Microsoft), else the authorization code grant with
 * PKCE (RFC 7636) and a loopback redirect (RFC 8252) (Google).  Renewing
 * them with the refresh token (RFC 6749 §6).  Keeping them: one JSON file
 * per account, mode 0600, in $XDG_STATE_HOME/smtpkit/tokens (default
 * ~/.local/state/smtpkit/tokens), replaced atomically and refreshed under
 * a per-account lock, so that processes racing to refresh one account
 * refresh it once.
 *
 *	sk_oauth_client_init(&c, account, preset, &err);
 *	sk_oauth_login(&c, prompt, arg, &tok, &err);		once, by a person
 *	sk_oauth_store_save(dir, account->name, &tok, &err);
 *	sk_oauth_store_get(dir, name, NULL, refresh, &c, &tok, &r, &err);
 *						every use: refreshed as needed
 *
 * HTTP goes through libcurl: every request has a deadline and a size
 * limit, TLS is verified, plain HTTP is allowed only to this machine
 * (127.0.0.1, localhost, [::1]).  Tokens, codes and client secrets never
 * reach a trace or an error message.
 */
#ifndef SMTPKIT_OAUTH_H
#define SMTPKIT_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "error.h"
#include "providers.h"
#include "trace.h"

/* Refresh a token this many seconds before it expires. */
#define SK_OAUTH_REFRESH_MARGIN 60

/* HTTP: each request's default deadline, and the largest answer taken. */
#define SK_OAUTH_HTTP_TIMEOUT_MS 30000
#define SK_OAUTH_HTTP_BODY_MAX (64 * 1024)

/* PKCE flow: how long to wait for the browser's redirect by default. */
#define SK_OAUTH_LOGIN_TIMEOUT_S 300

/* An application registered with an authorization server, and where. */
struct sk_oauth_client {
	enum sk_oauth_flow flow;
	const char *client_id;
	const char *client_secret;	/* NULL: a public client */
	const char *device_endpoint;	/* RFC 8628 §3.1 */
	const char *auth_endpoint;	/* RFC 6749 §3.1 */
	const char *token_endpoint;	/* RFC 6749 §3.2 */
	const char *scope;		/* space-separated */
	const char *auth_params;	/* more query for the authorization URL */
	enum sk_auth_mech mech;		/* XOAUTH2 or OAUTHBEARER */
	int timeout_ms;			/* each HTTP request; 0: the default */
	int login_timeout_s;		/* pkce: the browser; 0: the default */
	struct sk_trace trace;		/* requests and statuses, never bodies */
	char *secret_buf;		/* private: a secret read from a file */
};

/*
 * Whether account a (its preset p may be NULL) authenticates with a token
 * that smtpkit obtains and keeps: it has no password source, and it has
 * an oauth-client-id, or auth XOAUTH2 / OAUTHBEARER, or a preset whose
 * only credential is OAuth2.
 */
bool sk_oauth_account_managed(const struct sk_account *a,
    const struct sk_provider *p);

/*
 * The OAuth2 client of account a: the preset's OAuth2 data (p may be
 * NULL) under the account's oauth-* keys.  Without a flow from either, an
 * account that sets oauth-device-endpoint uses the device flow, one that
 * sets oauth-auth-endpoint the pkce flow.  Strings are borrowed from a and
 * p, which must outlive c, except a secret read from
 * oauth-client-secret-file: sk_oauth_client_fini wipes and frees it.
 * Errors: SK_ERR_CONFIG with oauth_error SK_OAUTH_ERR_NO_CLIENT when the
 * account has no oauth-client-id; SK_ERR_CONFIG when no flow, endpoint or
 * scope is known, or the preset needs a client secret and there is none;
 * SK_ERR_LOCAL (sys_errno) when the secret file cannot be read.
 */
int sk_oauth_client_init(struct sk_oauth_client *c,
    const struct sk_account *a, const struct sk_provider *p,
    struct sk_error *err);

/* Wipe and free what init read.  c may be zeroed; NULL is ignored. */
void sk_oauth_client_fini(struct sk_oauth_client *c);

/* Tokens, owned by the struct: sk_oauth_token_fini wipes and frees. */
struct sk_oauth_token {
	char *access_token;
	char *refresh_token;	/* NULL: none was issued */
	int64_t expires_at;	/* seconds since 1970; 0: unknown */
	char *scope;		/* NULL: unknown */
	char *token_endpoint;	/* where the refresh token is good, NULL */
};

void sk_oauth_token_fini(struct sk_oauth_token *t);

/*
 * Whether t's access token is good for margin_s more seconds at now (an
 * unknown expiry counts as good: the server will say when it is not).
 */
bool sk_oauth_token_fresh(const struct sk_oauth_token *t, int64_t now,
    int margin_s);

/*
 * The token file's text: a JSON object with access_token, refresh_token,
 * expires_at, scope and token_endpoint (owned; wipe it before freeing).
 * NULL when out of memory or t has no access token.
 */
char *sk_oauth_token_format(const struct sk_oauth_token *t);

/* Parse a token file's text into t (zeroed first).  Errors: SK_ERR_CONFIG
 * when it is not such an object or has no access_token. */
int sk_oauth_token_parse(const char *json, size_t len,
    struct sk_oauth_token *t, struct sk_error *err);

/*
 * A token endpoint's successful answer (RFC 6749 §5.1) into t (zeroed
 * first): expires_at is now + expires_in; token_type, when given, must be
 * "Bearer".  Errors: SK_ERR_PROTOCOL when there is no access_token or the
 * type is another.
 */
int sk_oauth_token_response(const char *json, size_t len, int64_t now,
    struct sk_oauth_token *t, struct sk_error *err);

/*
 * The OAuth2 error an authorization server answered (RFC 6749 §5.2, RFC
 * 8628 §3.5): SK_OAUTH_ERR_NONE when json is not an object with a string
 * "error", SK_OAUTH_ERR_OTHER for a code not known here (Microsoft's
 * "authorization_declined" counts as access_denied).  desc (may be NULL)
 * gets "error: error_description", cut to cap and without control
 * characters.
 */
enum sk_oauth_error sk_oauth_error_parse(const char *json, size_t len,
    char *desc, size_t cap);

/*
 * PKCE (RFC 7636 §4.1-4.2): a code_verifier of 43 characters made from 32
 * octets of getrandom(2), and the S256 code_challenge of a verifier,
 * BASE64URL(SHA256(verifier)) without padding (43 characters).  cap is
 * out's size.  Return 0, or -1 (the verifier: SK_ERR_LOCAL when the
 * kernel gives no randomness; the challenge: a verifier that is not 43 to
 * 128 unreserved characters, or cap too small).
 */
int sk_oauth_pkce_verifier(char *out, size_t cap, struct sk_error *err);
int sk_oauth_pkce_challenge(const char *verifier, char *out, size_t cap);

/* What a person must do to sign in, as a login reports it. */
struct sk_oauth_prompt {
	enum sk_oauth_flow flow;
	const char *url;		/* device: verification_uri; pkce: the
					   authorization URL to open */
	const char *url_complete;	/* device: verification_uri_complete,
					   NULL when the server gave none */
	const char *user_code;		/* device: the code to enter */
	const char *message;		/* device: the server's text, or NULL */
	const char *redirect_uri;	/* pkce: where the browser comes back */
	int expires_in;			/* seconds the code or the wait lasts */
	int interval;			/* device: seconds between polls */
};

/* Called once per login, before the wait; the strings are borrowed for the
 * call only. */
typedef void sk_oauth_prompt_fn(void *arg, const struct sk_oauth_prompt *p);

/*
 * Obtain tokens with c's flow (device or pkce, below), reporting through
 * prompt what the person must do.  out is zeroed first; on success it
 * holds the tokens, its token_endpoint c's.
 */
int sk_oauth_login(const struct sk_oauth_client *c, sk_oauth_prompt_fn *prompt,
    void *arg, struct sk_oauth_token *out, struct sk_error *err);

/*
 * RFC 8628: ask the device endpoint for a user code, report it, then poll
 * the token endpoint every interval seconds (5 more after each slow_down)
 * until the person has signed in, said no, or expires_in has passed.
 * Errors (stage SK_STAGE_AUTH): SK_ERR_OAUTH with oauth_error
 * EXPIRED_TOKEN (the code ran out), ACCESS_DENIED, INVALID_CLIENT... as
 * the server said; the HTTP ones of sk_oauth_refresh.
 */
int sk_oauth_device_login(const struct sk_oauth_client *c,
    sk_oauth_prompt_fn *prompt, void *arg, struct sk_oauth_token *out,
    struct sk_error *err);

/*
 * RFC 7636 + RFC 8252: listen on 127.0.0.1, port 0, report the
 * authorization URL (redirect_uri http://127.0.0.1:PORT/, a random state,
 * the S256 challenge), wait up to c->login_timeout_s for the browser's
 * redirect (requests of at most 8 KB; other paths are answered 404 and a
 * wrong state 400, and the wait goes on), answer it with a short HTML
 * page and exchange the code.  Errors: SK_ERR_TIMEOUT when no redirect
 * came; SK_ERR_OAUTH when the redirect or the token endpoint carried an
 * error (access_denied...); SK_ERR_LOCAL for the listening socket; the
 * HTTP ones of sk_oauth_refresh.
 */
int sk_oauth_pkce_login(const struct sk_oauth_client *c,
    sk_oauth_prompt_fn *prompt, void *arg, struct sk_oauth_token *out,
    struct sk_error *err);

/*
 * RFC 6749 §6: a new access token for old's refresh token, from c's token
 * endpoint (else old's).  A refresh token or scope the answer leaves out
 * stays old's.  Errors (stage SK_STAGE_AUTH): SK_ERR_OAUTH with oauth_error
 * NO_REFRESH_TOKEN when old has none, INVALID_GRANT when the server
 * refused it (revoked or expired: sign in again), or another code;
 * SK_ERR_DNS, SK_ERR_REFUSED, SK_ERR_TIMEOUT, SK_ERR_TLS_* for the
 * connection; SK_ERR_PROTOCOL for an answer that is not OAuth2 (or larger
 * than SK_OAUTH_HTTP_BODY_MAX); SK_ERR_CONFIG for an endpoint that is not
 * https (or http to this machine).
 */
int sk_oauth_refresh(const struct sk_oauth_client *c,
    const struct sk_oauth_token *old, struct sk_oauth_token *out,
    struct sk_error *err);

/*
 * The token store: $XDG_STATE_HOME (when absolute) or ~/.local/state,
 * followed by /smtpkit/tokens, into buf; -1 when it does not fit or there
 * is no home directory.
 */
int sk_oauth_store_dir(char *buf, size_t cap);

/* dir/ACCOUNT.json into buf; -1 when it does not fit or the name is not
 * 1 to 64 of "A-Za-z0-9._@+-" not starting with '.'. */
int sk_oauth_store_path(const char *dir, const char *account, char *buf,
    size_t cap);

/*
 * Read account's tokens into t (zeroed first).  Errors: SK_ERR_OAUTH with
 * oauth_error NO_TOKEN when none are stored; SK_ERR_CONFIG when the file
 * is readable by others than its owner, not a regular file, larger than
 * SK_OAUTH_HTTP_BODY_MAX or not a token file; SK_ERR_LOCAL (sys_errno).
 */
int sk_oauth_store_load(const char *dir, const char *account,
    struct sk_oauth_token *t, struct sk_error *err);

/*
 * Store t for account: the directory is made (mode 0700) when missing,
 * the file written as a temporary one of mode 0600, synced and renamed
 * over the old one, and the directory synced: a reader sees the old file
 * or the new one, never a part.  Errors: SK_ERR_LOCAL (sys_errno),
 * SK_ERR_USAGE for a name that cannot be a file name.
 */
int sk_oauth_store_save(const char *dir, const char *account,
    const struct sk_oauth_token *t, struct sk_error *err);

/* Remove account's tokens, under its lock; *existed (may be NULL) says
 * whether there were any.  Errors: SK_ERR_LOCAL (sys_errno). */
int sk_oauth_store_delete(const char *dir, const char *account,
    bool *existed, struct sk_error *err);

/*
 * Make fresh from old (which holds a refresh token, or not); 0 or -1 with
 * err.  sk_oauth_refresh fits, with a struct sk_oauth_client * as arg:
 * sk_oauth_refresh_cb.
 */
typedef int sk_oauth_refresh_fn(void *arg, const struct sk_oauth_token *old,
    struct sk_oauth_token *fresh, struct sk_error *err);
sk_oauth_refresh_fn sk_oauth_refresh_cb;

/*
 * Account's access token, good for SK_OAUTH_REFRESH_MARGIN seconds more.
 * When the stored one is not (or is rejected, the token an SMTP server
 * just refused), take the account's lock (an exclusive flock(2) on
 * dir/ACCOUNT.lock, waited for at most 120 s), read the file again --
 * another process may have refreshed it meanwhile, and then that token is
 * used -- and only if it still needs one, refresh through fn and store
 * the result.  *refreshed (may be NULL) says whether this call refreshed.
 * out is zeroed first.  Errors: those of sk_oauth_store_load, of fn and of
 * sk_oauth_store_save; SK_ERR_TIMEOUT when the lock was not had in time.
 */
int sk_oauth_store_get(const char *dir, const char *account,
    const char *rejected, sk_oauth_refresh_fn *fn, void *arg,
    struct sk_oauth_token *out, bool *refreshed, struct sk_error *err);

/*
 * Whether an SMTP AUTH failure says the bearer token itself was refused
 * (an error challenge with status 401 / invalid_token, a 535, or a reply
 * that speaks of expiry): a refreshed token may then work.
 */
bool sk_oauth_token_refused(const struct sk_error *err);

/* Whether err means the person must sign in again (smtpkit oauth login):
 * no token stored, no refresh token, or the refresh token refused. */
bool sk_oauth_needs_login(const struct sk_error *err);

/* An OAuth2 error code ("invalid_grant") as the enum; OTHER when unknown,
 * NONE for NULL or "". */
enum sk_oauth_error sk_oauth_error_from_name(const char *s);

#endif
