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
	case SK_ERR__COUNT:
		break;
	}
	return EXIT_SOFTWARE;
}
