/* smtpkit command line: dispatch and what every subcommand shares. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "smtpkit/clock.h"
#include "smtpkit/smtpkit.h"
#include "cli.h"
#include "i18n.h"

const char *cli_progname = "smtpkit";

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpkit COMMAND [options]\n"
	    "\n"
	    "commands:\n"
	    "  send      send a message through an SMTP server\n"
	    "  providers list the provider presets, show one, detect one\n"
	    "  doctor    find out why mail cannot be sent, and the fix\n"
	    "  setup     add an account, interactively, checked by the doctor\n"
	    "  sendmail  a drop-in for /usr/sbin/sendmail (also as argv[0])\n"
	    "  oauth     OAuth2 sign-in for an account: login, status, logout\n"
	    "  version   print the version\n"
	    "  help      this text\n"
	    "\n"
	    "Run 'smtpkit send --help' for the options of send; 'man smtpkit'.\n");
}

void
cli_trace_init(struct cli_trace *t, int level)
{
	t->start_ms = sk_clock_ms();
	t->level = level;
}

void
cli_trace_fn(void *arg, enum sk_trace_kind kind, const char *text, size_t len)
{
	struct cli_trace *t = arg;
	long long ms = sk_clock_ms() - t->start_ms;
	const char *mark;

	switch (kind) {
	case SK_TRACE_RECV:
		mark = "<-";
		break;
	case SK_TRACE_SEND:
		mark = "->";
		break;
	case SK_TRACE_INFO:
		mark = "**";
		break;
	default:
		if (t->level < 2)
			return;
		mark = "..";
		break;
	}
	fprintf(stderr, "[%4lld.%03lld] %s %.*s\n", ms / 1000, ms % 1000, mark,
	    (int)len, text);
}

int
cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s: ", cli_progname, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fprintf(stderr, _("Run 'smtpkit %s --help' for the options.\n"), cmd);
	return EXIT_USAGE;
}

int
cli_parse_number(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
cli_opt_port(const char *cmd, const char *arg, unsigned *port)
{
	long v;

	if (cli_parse_number(arg, 1, 65535, &v) == -1)
		return cli_usage_error(cmd, _("--port %s: not a port number "
		    "(1-65535)"), arg);
	*port = (unsigned)v;
	return 0;
}

int
cli_opt_timeout(const char *cmd, const char *arg, int *secs)
{
	long v;

	if (cli_parse_number(arg, 1, 3600, &v) == -1)
		return cli_usage_error(cmd, _("--timeout %s: give seconds "
		    "(1-3600)"), arg);
	*secs = (int)v;
	return 0;
}

int
cli_opt_auth(const char *cmd, const char *arg, enum sk_auth_mech *mech)
{
	if ((*mech = sk_auth_mech_parse(arg)) == SK_AUTH_NONE)
		return cli_usage_error(cmd, _("--auth %s: use PLAIN, LOGIN, "
		    "CRAM-MD5, XOAUTH2 or OAUTHBEARER"), arg);
	return 0;
}

void
cli_print_error(const struct sk_error *err)
{
	if (err->stage != SK_STAGE_NONE && err->stage != SK_STAGE_LOCAL)
		fprintf(stderr, "%s: %s failed: %s\n", cli_progname,
		    sk_stage_name(err->stage), err->message);
	else
		fprintf(stderr, "%s: %s\n", cli_progname, err->message);
}

int
main(int argc, char **argv)
{
	const char *name;

	/* Writes to a closed connection must fail, not kill us. */
	(void)signal(SIGPIPE, SIG_IGN);

	/* Installed as sendmail, mailq or newaliases: the sendmail
	 * interface, with that name's meaning. */
	name = argc > 0 && strrchr(argv[0], '/') != NULL ?
	    strrchr(argv[0], '/') + 1 : argc > 0 ? argv[0] : "";
	if (strcmp(name, "sendmail") == 0 || strcmp(name, "mailq") == 0 ||
	    strcmp(name, "newaliases") == 0)
		return cmd_sendmail(argc, argv);

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "send") == 0)
		return cmd_send(argc - 1, argv + 1);
	if (strcmp(argv[1], "providers") == 0)
		return cmd_providers(argc - 1, argv + 1);
	if (strcmp(argv[1], "doctor") == 0)
		return cmd_doctor(argc - 1, argv + 1);
	if (strcmp(argv[1], "setup") == 0)
		return cmd_setup(argc - 1, argv + 1);
	if (strcmp(argv[1], "sendmail") == 0)
		return cmd_sendmail(argc - 1, argv + 1);
	if (strcmp(argv[1], "oauth") == 0)
		return cmd_oauth(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 ||
	    strcmp(argv[1], "--version") == 0) {
		printf("smtpkit %s (%s)\n", SMTPKIT_VERSION,
		    OpenSSL_version(OPENSSL_VERSION));
		return EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	fprintf(stderr, "smtpkit: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
