/* smtpkit command line: errors to sysexits, in one place. */
#include <errno.h>
#include <string.h>

#include "cli.h"

/* Replies that mean "who you are, or what you may do, was refused". */
static int
reply_is_permission(const struct sk_error *err)
{
	/* RFC 4954 §6: 530 auth required, 534 mech too weak, 535 bad
	 * credentials, 538 encryption required. */
	if (err->code == 530 || err->code == 534 || err->code == 535 ||
	    err->code == 538)
		return 1;
	/* RFC 3463 X.7.X: security or policy status. */
	if (strncmp(err->enhanced + 1, ".7.", 3) == 0 &&
	    err->enhanced[0] == '5')
		return 1;
	return err->stage == SK_STAGE_AUTH;
}

/*
 * An authorization server's refusal: a sign-in that ran out of time may
 * work when tried again; a client it does not know, or a flow or scope the
 * app may not use, is settings; everything else (a revoked refresh token,
 * a user who said no, no token at all) is who you are.
 */
static int
oauth_exit_code(enum sk_oauth_error e)
{
	switch (e) {
	case SK_OAUTH_ERR_EXPIRED_TOKEN:
	case SK_OAUTH_ERR_AUTHORIZATION_PENDING:
	case SK_OAUTH_ERR_SLOW_DOWN:
		return EXIT_TEMPFAIL;
	case SK_OAUTH_ERR_INVALID_CLIENT:
	case SK_OAUTH_ERR_UNAUTHORIZED_CLIENT:
	case SK_OAUTH_ERR_INVALID_SCOPE:
	case SK_OAUTH_ERR_INVALID_REQUEST:
	case SK_OAUTH_ERR_UNSUPPORTED_GRANT_TYPE:
	case SK_OAUTH_ERR_NO_CLIENT:
		return EXIT_CONFIG;
	default:
		return EXIT_NOPERM;
	}
}

int
cli_exit_code(const struct sk_error *err)
{
	if (err == NULL)
		return EXIT_OK;
	switch (err->kind) {
	case SK_ERR_NONE:
		return EXIT_OK;
	case SK_ERR_USAGE:
		return EXIT_USAGE;
	case SK_ERR_CONFIG:
	case SK_ERR_POLICY:
		return EXIT_CONFIG;
	case SK_ERR_DATA:
		return EXIT_DATAERR;
	case SK_ERR_LOCAL:
		switch (err->sys_errno) {
		case ENOENT:
		case EACCES:
		case EISDIR:
		case ENOTDIR:
		case ELOOP:
			return EXIT_NOINPUT;
		case 0:
		case ENOMEM:
			return EXIT_OSERR;
		default:
			return EXIT_IOERR;
		}
	case SK_ERR_DNS:
		return EXIT_NOHOST;
	case SK_ERR_REFUSED:
	case SK_ERR_UNREACHABLE:
	case SK_ERR_UNSUPPORTED:
		return EXIT_UNAVAILABLE;
	case SK_ERR_TIMEOUT:
	case SK_ERR_RESET:
	case SK_ERR_EOF:
		return EXIT_TEMPFAIL;
	case SK_ERR_TLS_VERIFY:
		return EXIT_NOPERM;
	case SK_ERR_TLS_HANDSHAKE:
	case SK_ERR_PROTOCOL:
		return EXIT_PROTOCOL;
	case SK_ERR_REPLY:
		if (err->code >= 400 && err->code < 500)
			return EXIT_TEMPFAIL;
		if (reply_is_permission(err))
			return EXIT_NOPERM;
		return EXIT_UNAVAILABLE;
	case SK_ERR_OAUTH:
		return oauth_exit_code(err->oauth_error);
	case SK_ERR__COUNT:
		break;
	}
	return EXIT_SOFTWARE;
}

/*
 * A doctor's verdict as an exit status, so that scripts can branch on the
 * kind of fault (the README has this table):
 *   68 EX_NOHOST       the name does not exist
 *   69 EX_UNAVAILABLE  the server says no for good, or nothing listens
 *   75 EX_TEMPFAIL     may work later: timeouts, drops, 4xx, limits
 *   76 EX_PROTOCOL     the two sides do not speak the same protocol
 *   77 EX_NOPERM       who you are, or what you may do, was refused:
 *                      credentials, sender rights, certificate trust
 *   78 EX_CONFIG       something here or in your settings must change:
 *                      CA store, clock, TLS mode or version, mechanism,
 *                      an OAuth2 client id
 *   (77 also for an OAuth2 token that expired or was revoked: sign in)
 *   65 EX_DATAERR      the message itself was refused as spam
 */
int
cli_verdict_exit_code(enum sk_verdict v)
{
	switch (v) {
	case SK_VERDICT_OK:
		return EXIT_OK;
	case SK_VERDICT_DNS_NO_SUCH_HOST:
		return EXIT_NOHOST;
	case SK_VERDICT_DNS_NO_ANSWER:
	case SK_VERDICT_TCP_TIMEOUT:
	case SK_VERDICT_PORT_BLOCKED:
	case SK_VERDICT_IPV6_BROKEN:
	case SK_VERDICT_NO_GREETING:
	case SK_VERDICT_RATE_LIMITED:
	case SK_VERDICT_QUOTA_EXCEEDED:
	case SK_VERDICT_SERVER_TEMPORARY:
		return EXIT_TEMPFAIL;
	case SK_VERDICT_TCP_REFUSED:
	case SK_VERDICT_TCP_UNREACHABLE:
	case SK_VERDICT_GREETING_REFUSED:
	case SK_VERDICT_RECIPIENT_REJECTED:
	case SK_VERDICT_SERVER_PERMANENT:
	case SK_VERDICT_SMTPUTF8_UNSUPPORTED:	/* as send's refusal */
		return EXIT_UNAVAILABLE;
	case SK_VERDICT_TLS_MODE_MISMATCH:
	case SK_VERDICT_TLS_HANDSHAKE:
	case SK_VERDICT_PROTOCOL_ERROR:
		return EXIT_PROTOCOL;
	case SK_VERDICT_TLS_CERT_UNTRUSTED:
	case SK_VERDICT_TLS_CERT_EXPIRED:
	case SK_VERDICT_TLS_CERT_NOT_YET_VALID:
	case SK_VERDICT_TLS_HOSTNAME_MISMATCH:
	case SK_VERDICT_AUTH_CREDENTIALS:
	case SK_VERDICT_AUTH_APP_PASSWORD_REQUIRED:
	case SK_VERDICT_AUTH_SERVICE_DISABLED:
	case SK_VERDICT_AUTH_BASIC_DISABLED:
	case SK_VERDICT_AUTH_TOO_MANY_ATTEMPTS:
	case SK_VERDICT_SENDER_MISMATCH:
	case SK_VERDICT_SENDER_UNVERIFIED:
	case SK_VERDICT_RELAY_DENIED:
	case SK_VERDICT_OAUTH_TOKEN_EXPIRED:
	case SK_VERDICT_OAUTH_REVOKED:
		return EXIT_NOPERM;
	case SK_VERDICT_STARTTLS_UNAVAILABLE:
	case SK_VERDICT_TLS_VERSION:
	case SK_VERDICT_CLOCK_SKEW:
	case SK_VERDICT_CA_STORE_MISSING:
	case SK_VERDICT_AUTH_NOT_OFFERED:
	case SK_VERDICT_AUTH_MECH_UNSUPPORTED:
	case SK_VERDICT_OAUTH_CLIENT_MISSING:
		return EXIT_CONFIG;
	case SK_VERDICT_MESSAGE_REJECTED_SPAM:
		return EXIT_DATAERR;
	case SK_VERDICT__COUNT:
		break;
	}
	return EXIT_SOFTWARE;
}
