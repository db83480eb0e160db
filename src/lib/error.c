/* smtpkit: errors as data. */
#include <stdio.h>
#include <string.h>

#include "smtpkit/error.h"
#include "smtpkit/reply.h"

static const char *const stage_names[SK_STAGE__COUNT] = {
	[SK_STAGE_NONE] = "none",
	[SK_STAGE_LOCAL] = "local",
	[SK_STAGE_RESOLVE] = "resolve",
	[SK_STAGE_CONNECT] = "connect",
	[SK_STAGE_GREETING] = "greeting",
	[SK_STAGE_TLS] = "tls",
	[SK_STAGE_EHLO] = "ehlo",
	[SK_STAGE_AUTH] = "auth",
	[SK_STAGE_MAIL] = "mail",
	[SK_STAGE_RCPT] = "rcpt",
	[SK_STAGE_DATA] = "data",
	[SK_STAGE_QUIT] = "quit",
};

static const char *const kind_names[SK_ERR__COUNT] = {
	[SK_ERR_NONE] = "none",
	[SK_ERR_USAGE] = "usage",
	[SK_ERR_CONFIG] = "config",
	[SK_ERR_DATA] = "data",
	[SK_ERR_LOCAL] = "local",
	[SK_ERR_DNS] = "dns",
	[SK_ERR_REFUSED] = "refused",
	[SK_ERR_TIMEOUT] = "timeout",
	[SK_ERR_UNREACHABLE] = "unreachable",
	[SK_ERR_RESET] = "reset",
	[SK_ERR_EOF] = "eof",
	[SK_ERR_TLS_HANDSHAKE] = "tls-handshake",
	[SK_ERR_TLS_VERIFY] = "tls-verify",
	[SK_ERR_PROTOCOL] = "protocol",
	[SK_ERR_REPLY] = "reply",
	[SK_ERR_UNSUPPORTED] = "unsupported",
	[SK_ERR_POLICY] = "policy",
	[SK_ERR_OAUTH] = "oauth",
};

static const char *const oauth_error_names[SK_OAUTH_ERR__COUNT] = {
	[SK_OAUTH_ERR_NONE] = "none",
	[SK_OAUTH_ERR_AUTHORIZATION_PENDING] = "authorization_pending",
	[SK_OAUTH_ERR_SLOW_DOWN] = "slow_down",
	[SK_OAUTH_ERR_EXPIRED_TOKEN] = "expired_token",
	[SK_OAUTH_ERR_ACCESS_DENIED] = "access_denied",
	[SK_OAUTH_ERR_INVALID_GRANT] = "invalid_grant",
	[SK_OAUTH_ERR_INVALID_CLIENT] = "invalid_client",
	[SK_OAUTH_ERR_UNAUTHORIZED_CLIENT] = "unauthorized_client",
	[SK_OAUTH_ERR_INVALID_SCOPE] = "invalid_scope",
	[SK_OAUTH_ERR_INVALID_REQUEST] = "invalid_request",
	[SK_OAUTH_ERR_UNSUPPORTED_GRANT_TYPE] = "unsupported_grant_type",
	[SK_OAUTH_ERR_INVALID_TOKEN] = "invalid_token",
	[SK_OAUTH_ERR_OTHER] = "other",
	[SK_OAUTH_ERR_NO_CLIENT] = "no_client",
	[SK_OAUTH_ERR_NO_TOKEN] = "no_token",
	[SK_OAUTH_ERR_NO_REFRESH_TOKEN] = "no_refresh_token",
};

const char *
sk_stage_name(enum sk_stage stage)
{
	if ((unsigned)stage >= SK_STAGE__COUNT)
		return "unknown";
	return stage_names[stage];
}

const char *
sk_error_kind_name(enum sk_error_kind kind)
{
	if ((unsigned)kind >= SK_ERR__COUNT)
		return "unknown";
	return kind_names[kind];
}

const char *
sk_oauth_error_name(enum sk_oauth_error e)
{
	if ((unsigned)e >= SK_OAUTH_ERR__COUNT)
		return "unknown";
	return oauth_error_names[e];
}

void
sk_error_clear(struct sk_error *err)
{
	if (err != NULL)
		memset(err, 0, sizeof(*err));
}

int
sk_error_setv(struct sk_error *err, enum sk_stage stage,
    enum sk_error_kind kind, const char *fmt, va_list ap)
{
	if (err == NULL)
		return -1;
	sk_error_clear(err);
	err->stage = stage;
	err->kind = kind;
	(void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
	return -1;
}

int
sk_error_set(struct sk_error *err, enum sk_stage stage,
    enum sk_error_kind kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)sk_error_setv(err, stage, kind, fmt, ap);
	va_end(ap);
	return -1;
}

int
sk_error_set_reply(struct sk_error *err, enum sk_stage stage,
    const struct sk_reply *reply, const char *fmt, ...)
{
	char what[SK_ERROR_MESSAGE_MAX];
	va_list ap;

	if (err == NULL)
		return -1;
	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);

	sk_error_clear(err);
	err->stage = stage;
	err->kind = SK_ERR_REPLY;
	err->code = reply->code;
	(void)snprintf(err->enhanced, sizeof(err->enhanced), "%s",
	    reply->enhanced);
	sk_reply_join(reply, err->server_text, sizeof(err->server_text));
	(void)snprintf(err->message, sizeof(err->message), "%s: %d %s", what,
	    reply->code, err->server_text);
	return -1;
}

int
sk_error_is_temporary(const struct sk_error *err)
{
	if (err == NULL)
		return 0;
	switch (err->kind) {
	case SK_ERR_REPLY:
		return err->code >= 400 && err->code < 500;
	case SK_ERR_DNS:
	case SK_ERR_TIMEOUT:
	case SK_ERR_RESET:
	case SK_ERR_EOF:
	case SK_ERR_REFUSED:
	case SK_ERR_UNREACHABLE:
		return 1;
	default:
		return 0;
	}
}
