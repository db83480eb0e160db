/*
 * smtpkit: errors as data.
 *
 * Every failure in libsmtpkit is one struct sk_error: the stage of the
 * session it happened in, what kind of failure it was, the low-level facts
 * (errno, resolver status, OpenSSL error and certificate verify result,
 * SMTP reply) and one sentence for a person.  The error lives inline; it
 * never allocates.  Functions that can fail return 0 or -1 and fill an
 * optional struct sk_error * (NULL is allowed everywhere).
 */
#ifndef SMTPKIT_ERROR_H
#define SMTPKIT_ERROR_H

#include <stdarg.h>
#include <stddef.h>

enum sk_stage {
	SK_STAGE_NONE = 0,
	SK_STAGE_LOCAL,		/* before the network: arguments, files, config */
	SK_STAGE_RESOLVE,
	SK_STAGE_CONNECT,
	SK_STAGE_GREETING,
	SK_STAGE_TLS,
	SK_STAGE_EHLO,
	SK_STAGE_AUTH,
	SK_STAGE_MAIL,
	SK_STAGE_RCPT,
	SK_STAGE_DATA,
	SK_STAGE_QUIT,
	SK_STAGE__COUNT
};

enum sk_error_kind {
	SK_ERR_NONE = 0,
	SK_ERR_USAGE,		/* a bad argument */
	SK_ERR_CONFIG,		/* a bad or missing setting */
	SK_ERR_DATA,		/* the message itself is unfit to send */
	SK_ERR_LOCAL,		/* a local system call failed (file, memory) */
	SK_ERR_DNS,		/* the name could not be resolved */
	SK_ERR_REFUSED,		/* connection actively refused */
	SK_ERR_TIMEOUT,		/* a deadline passed */
	SK_ERR_UNREACHABLE,	/* no route to the host or network */
	SK_ERR_RESET,		/* connection reset by the peer */
	SK_ERR_EOF,		/* the peer closed the connection */
	SK_ERR_TLS_HANDSHAKE,	/* TLS negotiation failed */
	SK_ERR_TLS_VERIFY,	/* the peer certificate was not accepted */
	SK_ERR_PROTOCOL,	/* the peer broke the SMTP protocol */
	SK_ERR_REPLY,		/* the server answered with a 4xx or 5xx reply */
	SK_ERR_UNSUPPORTED,	/* the server lacks an extension the message needs */
	SK_ERR_POLICY,		/* smtpkit refused, e.g. credentials over plaintext */
	SK_ERR_OAUTH,		/* no usable OAuth2 token: the authorization
				   server refused (oauth_error says how), or
				   none is stored */
	SK_ERR__COUNT
};

/*
 * What went wrong with OAuth2: an authorization server's "error" (RFC 6749
 * §5.2, RFC 8628 §3.5), what an SMTP server said of the bearer token in its
 * AUTH challenge (RFC 6750 §3.1, RFC 7628 §3.2.2), or smtpkit's own finding
 * about the stored tokens.
 */
enum sk_oauth_error {
	SK_OAUTH_ERR_NONE = 0,
	SK_OAUTH_ERR_AUTHORIZATION_PENDING,	/* device flow: not yet */
	SK_OAUTH_ERR_SLOW_DOWN,			/* device flow: poll slower */
	SK_OAUTH_ERR_EXPIRED_TOKEN,		/* the device code expired */
	SK_OAUTH_ERR_ACCESS_DENIED,		/* the user said no */
	SK_OAUTH_ERR_INVALID_GRANT,		/* refresh token or code refused:
						   revoked, expired, used */
	SK_OAUTH_ERR_INVALID_CLIENT,		/* unknown client id, bad secret */
	SK_OAUTH_ERR_UNAUTHORIZED_CLIENT,	/* the app may not use this flow */
	SK_OAUTH_ERR_INVALID_SCOPE,
	SK_OAUTH_ERR_INVALID_REQUEST,
	SK_OAUTH_ERR_UNSUPPORTED_GRANT_TYPE,
	SK_OAUTH_ERR_INVALID_TOKEN,		/* the SMTP server refused the
						   access token (XOAUTH2 "401") */
	SK_OAUTH_ERR_OTHER,			/* another error code */
	SK_OAUTH_ERR_NO_CLIENT,			/* smtpkit: no client id set */
	SK_OAUTH_ERR_NO_TOKEN,			/* smtpkit: never signed in */
	SK_OAUTH_ERR_NO_REFRESH_TOKEN,		/* smtpkit: expired, and no
						   refresh token to renew it */
	SK_OAUTH_ERR__COUNT
};

#define SK_ENHANCED_MAX 16
#define SK_ERROR_TEXT_MAX 1024
#define SK_ERROR_MESSAGE_MAX 512
#define SK_ADDR_MAX 320

struct sk_error {
	enum sk_stage stage;
	enum sk_error_kind kind;
	int sys_errno;			/* errno, 0 if none */
	int dns_status;			/* c-ares status, 0 if none */
	unsigned long ssl_error;	/* first OpenSSL ERR code, 0 if none */
	long verify_result;		/* X509_V_ERR_*, 0 (X509_V_OK) if none */
	int code;			/* SMTP reply code, 0 if none */
	char enhanced[SK_ENHANCED_MAX];	/* RFC 3463 "x.y.z", "" if none */
	char recipient[SK_ADDR_MAX];	/* the address concerned, "" if none */
	char server_text[SK_ERROR_TEXT_MAX]; /* reply text, lines joined by ' ' */
	char message[SK_ERROR_MESSAGE_MAX];  /* one sentence for a person */
	enum sk_oauth_error oauth_error;	/* SK_OAUTH_ERR_NONE if none */
};

struct sk_reply;

/* Name tables, for traces and JSON.  Never NULL. */
const char *sk_stage_name(enum sk_stage stage);
const char *sk_error_kind_name(enum sk_error_kind kind);

/* "authorization_pending", "invalid_grant", ... as the RFCs spell them;
 * smtpkit's own: "no_client", "no_token", "no_refresh_token"; "none". */
const char *sk_oauth_error_name(enum sk_oauth_error e);

/* Reset every field.  NULL is ignored. */
void sk_error_clear(struct sk_error *err);

/*
 * Set stage, kind and the human message (printf format); the other fields
 * are cleared.  NULL err is ignored.  Always returns -1 so that callers can
 * write "return sk_error_set(...);".
 */
int sk_error_set(struct sk_error *err, enum sk_stage stage,
    enum sk_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int sk_error_setv(struct sk_error *err, enum sk_stage stage,
    enum sk_error_kind kind, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/*
 * Fill err from a server reply: kind SK_ERR_REPLY, code, enhanced code and
 * the reply text; the message is the printf format followed by the server's
 * words.  Returns -1.
 */
int sk_error_set_reply(struct sk_error *err, enum sk_stage stage,
    const struct sk_reply *reply, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* True when the failure is worth retrying later (4xx, timeout, reset...). */
int sk_error_is_temporary(const struct sk_error *err);

#endif
