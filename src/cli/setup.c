/*
 * smtpkit setup: add an account, interactively, checked by the doctor.
 *
 * The questions, in order: the address; the provider (detected from the
 * address's domain, or chosen from the list, or "another server" with its
 * host, port and TLS mode); its region, if it has regions; the login name
 * where the provider does not fix it; the secret, with the provider's
 * instructions on how to get it, read without echo.  Then the doctor runs
 * with exactly those settings.  Only when it passes (or the user insists
 * after being told what failed) come the account's name and where the
 * secret is kept, and the account is written to the user's config file
 * (mode 0600).  Options answer questions in advance: --provider, --host,
 * --port, --tls, --account, --oauth-client-id, --oauth-client-secret-file.
 *
 * A provider that takes only OAuth2 (Outlook.com), or one that offers it
 * beside passwords when the user chooses it (Gmail, Microsoft 365), gets
 * no password: the wizard asks for the client id of the app the user
 * registered (and Google's client secret), signs in as 'smtpkit oauth
 * login' does, and the doctor checks the new token.  The account (auth =
 * XOAUTH2, oauth-client-id) and its tokens are written only after that,
 * so a cancelled sign-in leaves nothing behind.
 *
 * Answers come from standard input, a line each, so that the wizard can be
 * driven through a pipe; only on a terminal is echo turned off for the
 * secret.  The secret never comes from argv.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "smtpkit/smtpkit.h"
#include "smtpkit/config.h"
#include "smtpkit/doctor.h"
#include "smtpkit/oauth.h"
#include "smtpkit/providers.h"
#include "cli.h"
#include "i18n.h"

#define ANSWER_MAX 1024
#define SECRET_MAX 16384	/* as password.c: OAuth tokens run to a few KB */
#define NAME_MAX_LEN 63

struct setup_opts {
	const char *account;
	const char *provider;
	const char *host;
	unsigned port;
	bool tls_given;
	bool tls_auto;
	enum sk_tls_mode tls;
	enum sk_auth_mech auth;
	int timeout_s;
	const char *ca_file;
	bool insecure;
	const char *config;
	const char *oauth_client_id;
	const char *oauth_client_secret_file;
	int verbose;
};

struct wizard {
	struct setup_opts *o;
	struct sk_providers *db;
	const char *lang;
	bool tty;			/* answers come from a terminal */
	const struct sk_provider *p;	/* NULL: another server */
	const struct sk_provider_region *region;
	char addr[SK_ADDR_MAX];
	char host[256];
	unsigned port;
	bool tls_auto;
	enum sk_tls_mode tls;
	char user[SK_ADDR_MAX];
	bool no_login;
	char *secret;
	char name[NAME_MAX_LEN + 1];
	char path[PATH_MAX];		/* the config file */
	char pwfile[PATH_MAX];
	bool pwfile_made;
	char env[128];
	char provider_id[256];		/* "ses:eu-west-1" */
	char sg_host[256];		/* the host the doctor found working */
	char ca_file[PATH_MAX];
	/* OAuth2: smtpkit signs in and keeps the token (secret holds a copy
	 * of the access token for the doctor) */
	bool oauth;
	enum sk_auth_mech mech;
	char client_id[512];
	char *client_secret;		/* typed in: goes to csfile */
	char csfile[PATH_MAX];		/* oauth-client-secret-file */
	bool csfile_made;
	struct sk_oauth_token token;
	char token_path[PATH_MAX];
	bool token_saved;
	int rc;				/* why a step failed, 0: input ended */
};

/* Raised by a signal while echo is off: restore the terminal first. */
static struct termios saved_tio;
static volatile sig_atomic_t echo_off;

enum {
	OPT_ACCOUNT = 256, OPT_PROVIDER, OPT_HOST, OPT_PORT, OPT_TLS, OPT_AUTH,
	OPT_TIMEOUT, OPT_CAFILE, OPT_INSECURE, OPT_CONFIG, OPT_LANG,
	OPT_OAUTH_ID, OPT_OAUTH_SECRET_FILE, OPT_HELP
};

static const struct option long_opts[] = {
	{ "account", required_argument, NULL, OPT_ACCOUNT },
	{ "provider", required_argument, NULL, OPT_PROVIDER },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "tls", required_argument, NULL, OPT_TLS },
	{ "auth", required_argument, NULL, OPT_AUTH },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "ca-file", required_argument, NULL, OPT_CAFILE },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "lang", required_argument, NULL, OPT_LANG },
	{ "oauth-client-id", required_argument, NULL, OPT_OAUTH_ID },
	{ "oauth-client-secret-file", required_argument, NULL,
	    OPT_OAUTH_SECRET_FILE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

static void
setup_usage(FILE *f)
{
	fputs(_("usage: smtpkit setup [--account NAME] [--provider ID | --host HOST]\n"
	    "           [--port PORT] [--tls auto|implicit|starttls|none] [--auth MECH]\n"
	    "           [--timeout SECS] [--ca-file FILE] [--insecure]\n"
	    "           [--config FILE] [--lang en|zh] [-v]\n"
	    "           [--oauth-client-id ID] [--oauth-client-secret-file FILE]\n"
	    "\n"
	    "Asks for the address, the provider and the secret (never on the command\n"
	    "line), checks them with the doctor, and writes the account to\n"
	    "~/.config/smtpkit/config (mode 0600) when the check passes.  Answers\n"
	    "are read from standard input, one line each.  For OAuth2 (Outlook.com;\n"
	    "Gmail and Microsoft 365 when chosen) smtpkit signs in itself, as the\n"
	    "app whose client id is asked for, and keeps the token.\n"), f);
}

static bool
valid_name(const char *s)
{
	size_t i;

	if (s[0] == '\0' || strlen(s) > NAME_MAX_LEN)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static bool
valid_env_name(const char *s)
{
	size_t i;

	if (!isalpha((unsigned char)s[0]) && s[0] != '_')
		return false;
	for (i = 1; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return i <= 100;
}

static int
parse_opts(int argc, char **argv, struct setup_opts *o)
{
	int rc;
	int c;

	o->tls_auto = true;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "v", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_ACCOUNT:
			if (!valid_name(optarg))
				return cli_usage_error("setup", _("--account %s: use "
				    "letters, digits, '.', '-' and '_' (at most "
				    "63)"), optarg);
			o->account = optarg;
			break;
		case OPT_PROVIDER:
			o->provider = optarg;
			break;
		case OPT_HOST:
			o->host = optarg;
			break;
		case OPT_PORT:
			if ((rc = cli_opt_port("setup", optarg, &o->port)) != 0)
				return rc;
			break;
		case OPT_TLS:
			if (cli_tls_arg(optarg, &o->tls, &o->tls_auto) == -1)
				return cli_usage_error("setup", _("--tls %s: use "
				    "auto, implicit, starttls or none"), optarg);
			o->tls_given = true;
			break;
		case OPT_AUTH:
			if ((rc = cli_opt_auth("setup", optarg, &o->auth)) != 0)
				return rc;
			break;
		case OPT_TIMEOUT:
			if ((rc = cli_opt_timeout("setup", optarg,
			    &o->timeout_s)) != 0)
				return rc;
			break;
		case OPT_CAFILE:
			o->ca_file = optarg;
			break;
		case OPT_INSECURE:
			o->insecure = true;
			break;
		case OPT_CONFIG:
			o->config = optarg;
			break;
		case OPT_OAUTH_ID:
			if (optarg[0] == '\0' || strpbrk(optarg, " \t") != NULL)
				return cli_usage_error("setup", _("--oauth-client-id "
				    "%s: a client id has no spaces"), optarg);
			o->oauth_client_id = optarg;
			break;
		case OPT_OAUTH_SECRET_FILE:
			o->oauth_client_secret_file = optarg;
			break;
		case OPT_LANG:
			if (strcmp(optarg, "en") != 0 &&
			    strcmp(optarg, "zh") != 0)
				return cli_usage_error("setup", _("--lang %s: use en "
				    "or zh"), optarg);
			break;
		case 'v':
			o->verbose++;
			break;
		case OPT_HELP:
			setup_usage(stdout);
			return -2;
		default:
			if (optopt != 0 && optopt < 256)
				return cli_usage_error("setup", _("unknown option "
				    "-%c"), optopt);
			return cli_usage_error("setup", _("unknown or incomplete "
			    "option %s"), argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("setup", _("unexpected argument %s (the "
		    "secret is asked for, never taken from the command line)"),
		    argv[optind]);
	if (o->insecure && o->ca_file != NULL)
		return cli_usage_error("setup", _("--insecure does not check the "
		    "certificate, so --ca-file would not be used: give one"));
	return 0;
}

/* ------------------------------------------------------------------ */
/* Questions and answers */

static void
restore_echo(void)
{
	if (echo_off) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
		echo_off = 0;
	}
}

static void
on_signal(int sig)
{
	/* tcsetattr and raise are async-signal-safe. */
	restore_echo();
	(void)signal(sig, SIG_DFL);
	(void)raise(sig);
}

/*
 * One line from standard input into buf, without its line end and the
 * white space around it.  0; -1 at the end of input; -2 when the line does
 * not fit (the rest of it is read and dropped).
 */
static int
read_line(char *buf, size_t cap)
{
	size_t n = 0, start = 0;
	bool over = false;
	int c;

	while ((c = getchar()) != EOF && c != '\n') {
		if (n + 1 < cap)
			buf[n++] = (char)c;
		else
			over = true;
	}
	if (c == EOF && n == 0 && !over)
		return -1;
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = '\0';
	while (isspace((unsigned char)buf[start]))
		start++;
	if (start > 0)
		memmove(buf, buf + start, n - start + 1);
	if (over) {
		OPENSSL_cleanse(buf, cap);
		return -2;
	}
	return 0;
}

static void
prompt(const char *question, const char *def)
{
	if (def != NULL && def[0] != '\0')
		printf("%s [%s]: ", question, def);
	else
		printf("%s: ", question);
	fflush(stdout);
}

/* After an answer that did not come from a terminal: end the prompt line. */
static void
answered(const struct wizard *w)
{
	if (!w->tty)
		putchar('\n');
}

static int
input_ended(void)
{
	fprintf(stderr, _("%s: setup: the answers ended before the questions "
	    "did; nothing was saved\n"), cli_progname);
	return -1;
}

/* Ask; an empty answer takes def (when not NULL).  -1 at end of input. */
static int
ask(struct wizard *w, const char *question, const char *def, char *out,
    size_t cap)
{
	char buf[ANSWER_MAX];
	int rc;

	for (;;) {
		prompt(question, def);
		rc = read_line(buf, sizeof(buf));
		answered(w);
		if (rc == -1)
			return input_ended();
		if (rc == -2) {
			printf(_("That answer is too long.\n"));
			continue;
		}
		if (buf[0] == '\0' && def != NULL)
			(void)snprintf(buf, sizeof(buf), "%s", def);
		if (buf[0] == '\0')
			continue;
		if (strlen(buf) >= cap) {
			printf(_("That answer is too long.\n"));
			continue;
		}
		memcpy(out, buf, strlen(buf) + 1);
		return 0;
	}
}

static int
ask_yes(struct wizard *w, const char *question, bool def, bool *yes)
{
	char buf[64];

	for (;;) {
		printf("%s %s ", question, def ? _("[Y/n]") : _("[y/N]"));
		fflush(stdout);
		if (read_line(buf, sizeof(buf)) == -1) {
			answered(w);
			return input_ended();
		}
		answered(w);
		if (buf[0] == '\0') {
			*yes = def;
			return 0;
		}
		if (strcasecmp(buf, "y") == 0 || strcasecmp(buf, "yes") == 0 ||
		    strcmp(buf, _("yes")) == 0 || strcmp(buf, "是") == 0) {
			*yes = true;
			return 0;
		}
		if (strcasecmp(buf, "n") == 0 || strcasecmp(buf, "no") == 0 ||
		    strcmp(buf, _("no")) == 0 || strcmp(buf, "否") == 0) {
			*yes = false;
			return 0;
		}
		printf(_("Please answer y or n.\n"));
	}
}

/*
 * The secret, without echo on a terminal.  Owned by the caller
 * (cli_secret_free).  -1 at end of input.
 */
static int
ask_secret(struct wizard *w, const char *question, char **out)
{
	struct sigaction sa, old[3];
	static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
	struct termios tio;
	char *buf;
	int rc, i;

	*out = NULL;
	if ((buf = malloc(SECRET_MAX)) == NULL)
		return -1;
	for (;;) {
		printf("%s: ", question);
		fflush(stdout);
		if (w->tty && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = on_signal;
			(void)sigemptyset(&sa.sa_mask);
			for (i = 0; i < 3; i++)
				(void)sigaction(sigs[i], &sa, &old[i]);
			tio = saved_tio;
			tio.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
			echo_off = 1;
			(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio);
			rc = read_line(buf, SECRET_MAX);
			restore_echo();
			for (i = 0; i < 3; i++)
				(void)sigaction(sigs[i], &old[i], NULL);
		} else {
			rc = read_line(buf, SECRET_MAX);
		}
		putchar('\n');
		if (rc == -1) {
			free(buf);
			return input_ended();
		}
		if (rc == -2) {
			printf(_("That is longer than any password or token "
			    "(%d characters at most).\n"), SECRET_MAX - 1);
			continue;
		}
		if (buf[0] != '\0')
			break;
		printf(_("The secret is empty; please type it (or press "
		    "Ctrl-C to stop).\n"));
	}
	*out = strdup(buf);
	OPENSSL_cleanse(buf, SECRET_MAX);
	free(buf);
	return *out != NULL ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* The steps */

static const char *
zh_or(const struct wizard *w, const char *zh, const char *en)
{
	if (strcmp(w->lang, "zh") == 0 && zh != NULL && zh[0] != '\0')
		return zh;
	return en;
}

static const char *
provider_name(const struct wizard *w, const struct sk_provider *p)
{
	return zh_or(w, p->name_zh, p->name != NULL ? p->name : p->id);
}

static int
ask_address(struct wizard *w)
{
	struct sk_error err;
	bool utf8;

	for (;;) {
		if (ask(w, _("Your email address (the sender)"), NULL, w->addr,
		    sizeof(w->addr)) == -1)
			return -1;
		if (strchr(w->addr, '@') != NULL &&
		    sk_addr_check(_("address"), w->addr, &utf8, &err) == 0)
			return 0;
		printf(_("That is not an email address (like me@example.com).\n"));
	}
}

/* By number (1..n; 0 for another server), id or alias.  -1 at end of input. */
static int
choose_provider(struct wizard *w)
{
	const struct sk_provider *p;
	char buf[128], *end;
	size_t i, n = sk_providers_count(w->db);
	long v;

	printf("\n%s\n", _("Providers:"));
	for (i = 0; i < n; i++) {
		p = sk_providers_at(w->db, i);
		printf("  %2zu) %-12s %s\n", i + 1, p->id, provider_name(w, p));
	}
	printf("   0) %-12s %s\n", "custom",
	    _("another server: give its host name and port"));
	for (;;) {
		if (ask(w, _("Your provider (number or name)"), NULL, buf,
		    sizeof(buf)) == -1)
			return -1;
		errno = 0;
		v = strtol(buf, &end, 10);
		if (errno == 0 && end != buf && *end == '\0') {
			if (v == 0) {
				w->p = NULL;
				return 0;
			}
			if (v >= 1 && (size_t)v <= n) {
				w->p = sk_providers_at(w->db, (size_t)v - 1);
				return 0;
			}
		} else if (strcasecmp(buf, "custom") == 0 ||
		    strcmp(buf, _("custom")) == 0) {
			w->p = NULL;
			return 0;
		} else if ((w->p = sk_providers_find(w->db, buf,
		    &w->region)) != NULL) {
			return 0;
		}
		printf(_("No provider '%s': give a number from the list, or 0 "
		    "for another server.\n"), buf);
	}
}

static int
choose_region(struct wizard *w)
{
	const struct sk_provider *p = w->p;
	char buf[128], *end;
	size_t i;
	long v;

	printf("\n%s\n", _("Regions (each has its own server):"));
	printf("   0) %-16s %s\n", _("default"), p->host);
	for (i = 0; i < p->nregions; i++)
		printf("  %2zu) %-16s %s\n", i + 1, p->regions[i].name,
		    p->regions[i].host);
	for (;;) {
		if (ask(w, _("Region (number or name)"), "0", buf,
		    sizeof(buf)) == -1)
			return -1;
		errno = 0;
		v = strtol(buf, &end, 10);
		if (errno == 0 && end != buf && *end == '\0' && v >= 0 &&
		    (size_t)v <= p->nregions) {
			w->region = v == 0 ? NULL : &p->regions[v - 1];
			return 0;
		}
		for (i = 0; i < p->nregions; i++)
			if (strcasecmp(buf, p->regions[i].name) == 0) {
				w->region = &p->regions[i];
				return 0;
			}
		printf(_("No region '%s' here.\n"), buf);
	}
}

static int
ask_server(struct wizard *w)
{
	char buf[64], def[16];
	long v;
	enum sk_tls_mode mode;
	bool tls_auto;

	if (w->o->host != NULL)
		(void)snprintf(w->host, sizeof(w->host), "%s", w->o->host);
	else if (ask(w, _("SMTP server host name"), NULL, w->host,
	    sizeof(w->host)) == -1)
		return -1;
	w->port = w->o->port;
	while (w->port == 0) {
		if (ask(w, _("Port"), "587", buf, sizeof(buf)) == -1)
			return -1;
		if (cli_parse_number(buf, 1, 65535, &v) == 0)
			w->port = (unsigned)v;
		else
			printf(_("A port is a number from 1 to 65535.\n"));
	}
	if (w->o->tls_given) {
		w->tls = w->o->tls;
		w->tls_auto = w->o->tls_auto;
		return 0;
	}
	(void)snprintf(def, sizeof(def), "%s", w->port == 465 ?
	    "implicit" : "starttls");
	printf("%s\n", _("TLS: 'implicit' when TLS starts with the first byte "
	    "(port 465), 'starttls' when the server upgrades a plain "
	    "connection (587, 25), 'auto' to let the doctor find out."));
	for (;;) {
		if (ask(w, _("TLS mode"), def, buf, sizeof(buf)) == -1)
			return -1;
		if (cli_tls_arg(buf, &mode, &tls_auto) == 0)
			break;
		printf(_("Use implicit, starttls, none or auto.\n"));
	}
	w->tls = mode;
	w->tls_auto = tls_auto;
	return 0;
}

static int
choose_server(struct wizard *w)
{
	bool yes;

	if (w->o->provider != NULL) {
		/* found already: cmd_setup checked it before any question */
	} else if (w->o->host != NULL) {
		w->p = cli_provider_by_host(w->db, w->o->host, &w->region);
	} else if ((w->p = sk_providers_by_domain(w->db, w->addr)) != NULL) {
		w->region = sk_provider_region_by_domain(w->p, w->addr);
		printf(_("%s is served by %s.\n"), w->addr,
		    provider_name(w, w->p));
		if (ask_yes(w, _("Use these settings?"), true, &yes) == -1)
			return -1;
		if (!yes) {
			w->p = NULL;
			w->region = NULL;
			if (choose_provider(w) == -1)
				return -1;
		}
	} else {
		printf(_("The provider of %s is not one smtpkit knows by its "
		    "domain.\n"), w->addr);
		if (choose_provider(w) == -1)
			return -1;
	}
	if (w->p == NULL)
		return ask_server(w);
	if (w->p->nregions > 0 && w->region == NULL && w->o->host == NULL &&
	    choose_region(w) == -1)
		return -1;
	if (w->o->host != NULL)
		(void)snprintf(w->host, sizeof(w->host), "%s", w->o->host);
	w->port = w->o->port;
	w->tls = w->o->tls;
	w->tls_auto = w->o->tls_auto;
	return 0;
}

static void
credential_help(const struct wizard *w)
{
	const struct sk_provider *p = w->p;
	const char *name, *help, *note;

	if (p == NULL)
		return;
	name = provider_name(w, p);
	putchar('\n');
	switch (p->credential) {
	case SK_CRED_PASSWORD:
		printf(_("%s: log in with the mailbox password.\n"), name);
		break;
	case SK_CRED_AUTH_CODE:
		printf(_("%s does not take your mailbox password for SMTP: it "
		    "needs an authorization code issued in the mailbox "
		    "settings.\n"), name);
		break;
	case SK_CRED_APP_PASSWORD:
		printf(_("%s needs an app password (made in the account's "
		    "security settings; it requires two-step verification), "
		    "not your normal password.\n"), name);
		break;
	case SK_CRED_API_KEY:
		printf(_("%s needs an API key or SMTP credential made in its "
		    "console, not your login password.\n"), name);
		break;
	case SK_CRED_OAUTH2:
		/* ask_oauth explains: no secret is asked for */
		break;
	case SK_CRED__COUNT:
		break;
	}
	help = zh_or(w, p->credential_help_zh, p->credential_help);
	if (help != NULL && help[0] != '\0')
		printf("%s\n", help);
	if (p->help_url != NULL && p->help_url[0] != '\0')
		printf(_("More: %s\n"), p->help_url);
	note = zh_or(w, p->note_zh, p->note);
	if (note != NULL && note[0] != '\0')
		printf(_("Note: %s\n"), note);
}

static const char *
secret_label(const struct wizard *w)
{
	if (w->p == NULL)
		return _("Password (not shown)");
	switch (w->p->credential) {
	case SK_CRED_AUTH_CODE:
		return _("Authorization code (not shown)");
	case SK_CRED_APP_PASSWORD:
		return _("App password (not shown)");
	case SK_CRED_API_KEY:
		return _("API key (not shown)");
	case SK_CRED_OAUTH2:
	case SK_CRED_PASSWORD:
	case SK_CRED__COUNT:
		break;
	}
	return _("Password (not shown)");
}

/*
 * Whether to sign in with OAuth2: always for a provider that takes nothing
 * else; for one that offers it beside passwords when asked for by
 * --oauth-client-id or --auth, else by the user's choice.
 */
static int
want_oauth(struct wizard *w)
{
	const struct sk_provider *p = w->p;
	bool yes;

	w->oauth = false;
	if (p == NULL)
		return 0;
	if (p->credential == SK_CRED_OAUTH2) {
		w->oauth = true;
		return 0;
	}
	if (p->oauth.flow == SK_OAUTH_FLOW_NONE)
		return 0;
	if (w->o->oauth_client_id != NULL || sk_auth_mech_is_token(w->o->auth)) {
		w->oauth = true;
		return 0;
	}
	if (w->o->auth != SK_AUTH_NONE)
		return 0;
	putchar('\n');
	printf(_("%s also takes OAuth2: smtpkit then signs in itself, as an app "
	    "you register with %s, and keeps and renews the token; no password "
	    "is stored.\n"), provider_name(w, p), provider_name(w, p));
	if (ask_yes(w, _("Sign in with OAuth2 instead of a password?"), false,
	    &yes) == -1)
		return -1;
	w->oauth = yes;
	return 0;
}

/*
 * OAuth2: the client id (and secret) of the user's app, then the sign-in,
 * as 'smtpkit oauth login' does it; the token is kept in memory until the
 * account is saved.  -1 at the end of input or when the sign-in failed
 * (w->rc says how).
 */
static int
ask_oauth(struct wizard *w)
{
	const struct sk_provider *p = w->p;
	const char *name = provider_name(w, p), *help, *note;
	struct sk_account a;
	struct sk_error err;
	char buf[PATH_MAX], nm[NAME_MAX_LEN + 1], origin[32];

	putchar('\n');
	if (p->credential == SK_CRED_OAUTH2)
		printf(_("%s takes only OAuth2: passwords, even app passwords, "
		    "are refused.  smtpkit signs in itself (as 'smtpkit oauth "
		    "login' does) and keeps and renews the token.\n"), name);
	else
		printf(_("Signing in to %s with OAuth2: smtpkit keeps and "
		    "renews the token; no password is stored.\n"), name);
	help = zh_or(w, p->oauth.help_zh, p->oauth.help);
	printf(_("smtpkit signs in as an app that you register with the "
	    "provider, once:\n"));
	if (help != NULL && help[0] != '\0')
		printf("%s\n", help);
	note = zh_or(w, p->note_zh, p->note);
	if (note != NULL && note[0] != '\0')
		printf(_("Note: %s\n"), note);

	if (w->o->oauth_client_id != NULL) {
		(void)snprintf(w->client_id, sizeof(w->client_id), "%s",
		    w->o->oauth_client_id);
		printf(_("OAuth2 client id: %s\n"), w->client_id);
	} else {
		for (;;) {
			if (ask(w, _("OAuth2 client id of your app"), NULL,
			    w->client_id, sizeof(w->client_id)) == -1)
				return -1;
			if (strpbrk(w->client_id, " \t") == NULL)
				break;
			printf(_("A client id has no spaces.\n"));
		}
	}
	if (w->o->oauth_client_secret_file != NULL) {
		if (sk_config_expand_path(w->o->oauth_client_secret_file, buf,
		    sizeof(buf)) == -1 || realpath(buf, w->csfile) == NULL) {
			fprintf(stderr, _("%s: setup: --oauth-client-secret-file "
			    "%s: %s\n"), cli_progname,
			    w->o->oauth_client_secret_file, strerror(errno));
			w->rc = EXIT_NOINPUT;
			return -1;
		}
	} else if (p->oauth.secret_required) {
		printf(_("%s also wants the app's client secret; it is kept in "
		    "a file readable only by you (mode 0600).\n"), name);
		if (ask_secret(w, _("OAuth2 client secret (not shown)"),
		    &w->client_secret) == -1)
			return -1;
	}

	memset(&a, 0, sizeof(a));
	(void)snprintf(nm, sizeof(nm), "%s", w->o->account != NULL ?
	    w->o->account : "new");
	(void)snprintf(origin, sizeof(origin), "smtpkit setup");
	a.name = nm;
	a.origin = origin;
	a.user = w->user;
	a.from = w->addr;
	a.auth = w->o->auth;
	a.oauth_client_id = w->client_id;
	a.oauth_client_secret = w->client_secret;
	a.oauth_client_secret_file = w->csfile[0] != '\0' ? w->csfile : NULL;
	putchar('\n');
	fflush(stdout);
	if (cli_oauth_login(&a, p, 0, false,
	    w->o->verbose, &w->token, &w->mech, &err) == -1) {
		fflush(stdout);
		cli_print_error(&err);
		if (err.oauth_error != SK_OAUTH_ERR_NO_CLIENT)
			fprintf(stderr, _("%s: setup: the sign-in did not "
			    "complete; nothing was saved\n"), cli_progname);
		w->rc = cli_exit_code(&err);
		return -1;
	}
	if (sk_auth_mech_is_token(w->o->auth))
		w->mech = w->o->auth;
	if ((w->secret = strdup(w->token.access_token)) == NULL) {
		w->rc = EXIT_SOFTWARE;
		return -1;
	}
	printf(_("Signed in.  The token is kept once the check passes.\n"));
	return 0;
}

static int
ask_login(struct wizard *w)
{
	char q[256];

	if (w->p == NULL) {
		(void)snprintf(q, sizeof(q), "%s",
		    _("Login name ('-' if the server needs no login)"));
		if (ask(w, q, w->addr, w->user, sizeof(w->user)) == -1)
			return -1;
		w->no_login = strcmp(w->user, "-") == 0;
		if (w->no_login)
			w->user[0] = '\0';
	} else {
		switch (w->p->username) {
		case SK_USER_ADDRESS:
			(void)snprintf(w->user, sizeof(w->user), "%s",
			    w->addr);
			printf(_("Login name: %s\n"), w->user);
			break;
		case SK_USER_APIKEY:
			(void)snprintf(w->user, sizeof(w->user), "apikey");
			printf(_("Login name: apikey (the literal word: %s "
			    "takes the key as the password)\n"),
			    provider_name(w, w->p));
			break;
		case SK_USER_TOKEN:
		case SK_USER_ANY:
		case SK_USER__COUNT:
			if (ask(w, _("Login name (SMTP user name)"), w->addr,
			    w->user, sizeof(w->user)) == -1)
				return -1;
			break;
		}
	}
	if (w->no_login)
		return 0;
	if (want_oauth(w) == -1)
		return -1;
	if (w->oauth)
		return ask_oauth(w);
	credential_help(w);
	return ask_secret(w, secret_label(w), &w->secret);
}

/* The TLS mode a port was found to speak, for "--tls auto". */
static enum sk_tls_mode
found_mode(const struct sk_doctor_report *r, unsigned port,
    enum sk_tls_mode fallback)
{
	size_t i;

	for (i = 0; i < r->nports; i++) {
		const struct sk_doctor_port *p = &r->ports[i];

		if (p->port != port || p->state != SK_PORT_CONNECTED)
			continue;
		if (p->mode == SK_PMODE_IMPLICIT)
			return SK_TLS_MODE_IMPLICIT;
		if (p->mode == SK_PMODE_PLAIN)
			return p->starttls ? SK_TLS_MODE_STARTTLS :
			    SK_TLS_MODE_NONE;
	}
	return fallback;
}

static int
run_doctor(struct wizard *w, struct sk_doctor_report *report)
{
	struct sk_doctor_config cfg;
	struct sk_error err;
	struct cli_trace tr;
	int timeout_s = w->o->timeout_s > 0 ? w->o->timeout_s : 10;

	memset(&cfg, 0, sizeof(cfg));
	cfg.db = w->db;
	cfg.provider = w->p;
	cfg.region = w->region;
	cfg.host = w->host[0] != '\0' ? w->host : NULL;
	cfg.port = w->port;
	cfg.tls = w->tls;
	cfg.tls_auto = w->tls_auto;
	cfg.user = w->no_login ? NULL : w->user;
	cfg.secret = w->no_login ? NULL : w->secret;
	cfg.auth = w->oauth ? w->mech : w->o->auth;
	cfg.oauth = w->oauth;
	cfg.oauth_expires_at = w->token.expires_at;
	cfg.oauth_scope = w->token.scope;
	cfg.from = w->addr;
	cfg.timeout_ms = timeout_s * 1000;
	cfg.ca_file = w->ca_file[0] != '\0' ? w->ca_file : NULL;
	cfg.insecure = w->o->insecure;
	cfg.lang = w->lang;
	cfg.account = w->o->account;
	if (w->o->verbose > 1) {
		cli_trace_init(&tr, w->o->verbose - 1);
		cfg.trace.fn = cli_trace_fn;
		cfg.trace.arg = &tr;
	}
	printf("\n");
	printf(_("Checking these settings with the doctor (at most %d s a "
	    "stage)...\n"), timeout_s);
	fflush(stdout);
	if (sk_doctor_run(&cfg, report, &err) == -1) {
		cli_print_error(&err);
		return cli_exit_code(&err);
	}
	cli_doctor_print(report, NULL, w->o->verbose);
	return 0;
}

/* mkdir -p for the directories above path, mode 0700. */
static int
make_parents(const char *path)
{
	char dir[PATH_MAX];
	char *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((p = strrchr(dir, '/')) == NULL || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

static int
write_secret_file(const char *path, const char *secret, struct sk_error *err)
{
	size_t len = strlen(secret), off = 0;
	ssize_t n;
	int fd;

	if (make_parents(path) == -1)
		goto fail;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		goto fail;
	/* An existing file keeps its mode through O_TRUNC: make it private
	 * before the secret is in it. */
	if (fchmod(fd, 0600) == -1)
		goto fail_fd;
	while (off < len + 1) {
		n = off < len ? write(fd, secret + off, len - off) :
		    write(fd, "\n", 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail_fd;
		off += (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1)
		goto fail;
	return 0;
fail_fd:
	n = errno;
	(void)close(fd);
	errno = (int)n;
fail:
	sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
	    _("cannot write the password file %s: %s"), path, strerror(errno));
	err->sys_errno = errno;
	return -1;
}

/* The directory of the user's config file, for the password file (or,
 * with suffix "client-secret", the OAuth2 client secret's). */
static void
default_pwfile(struct wizard *w, const char *suffix, char *buf, size_t cap)
{
	char user_path[PATH_MAX], *slash;

	if (sk_config_user_path(user_path, sizeof(user_path)) == -1)
		(void)snprintf(user_path, sizeof(user_path), "%s",
		    w->path);
	if ((slash = strrchr(user_path, '/')) != NULL)
		*slash = '\0';
	else
		(void)snprintf(user_path, sizeof(user_path), ".");
	(void)snprintf(buf, cap, "%s/%s.%s", user_path, w->name, suffix);
}

static int
ask_name(struct wizard *w)
{
	struct sk_config conf;
	struct sk_error err;
	const char *def;
	bool have_file, yes;
	int rc = -1;

	memset(&conf, 0, sizeof(conf));
	have_file = access(w->path, F_OK) == 0 &&
	    sk_config_load(&conf, w->path, &err) == 0;
	if (w->o->account != NULL) {
		(void)snprintf(w->name, sizeof(w->name), "%s", w->o->account);
		rc = 0;
		goto out;
	}
	/* The first account is "default": smtpkit send then needs no
	 * --account. */
	if (!have_file || conf.naccounts == 0)
		def = "default";
	else if (w->p != NULL)
		def = w->p->id;
	else
		def = "custom";
	for (;;) {
		if (ask(w, _("Name for this account"), def, w->name,
		    sizeof(w->name)) == -1)
			goto out;
		if (!valid_name(w->name)) {
			printf(_("Use letters, digits, '.', '-' and '_' (at "
			    "most 63).\n"));
			continue;
		}
		if (!have_file || sk_config_find(&conf, w->name) == NULL)
			break;
		printf(_("%s already has an account named '%s'.\n"), w->path,
		    w->name);
		if (ask_yes(w, _("Replace it?"), false, &yes) == -1)
			goto out;
		if (yes)
			break;
	}
	rc = 0;
out:
	sk_config_fini(&conf);
	return rc;
}

enum store { STORE_FILE = 1, STORE_CONFIG, STORE_ENV };

static int
ask_store(struct wizard *w, enum store *store)
{
	char buf[PATH_MAX], def[PATH_MAX], up[128];
	struct stat st;
	size_t i;
	bool yes;

	printf("\n%s\n", _("Where should the secret be kept?"));
	printf("  1) %s\n", _("in a password file of its own, readable only "
	    "by you (mode 0600)"));
	printf("  2) %s\n", _("in the configuration file itself (mode 0600)"));
	printf("  3) %s\n", _("in an environment variable that you set "
	    "yourself"));
	for (;;) {
		if (ask(w, _("Choice"), "1", buf, sizeof(buf)) == -1)
			return -1;
		if (strcmp(buf, "1") == 0 || strcmp(buf, "2") == 0 ||
		    strcmp(buf, "3") == 0)
			break;
		printf(_("Answer 1, 2 or 3.\n"));
	}
	*store = (enum store)(buf[0] - '0');
	if (*store == STORE_FILE) {
		default_pwfile(w, "password", def, sizeof(def));
		for (;;) {
			if (ask(w, _("Password file"), def, buf,
			    sizeof(buf)) == -1)
				return -1;
			if (sk_config_expand_path(buf, w->pwfile,
			    sizeof(w->pwfile)) == -1 || w->pwfile[0] != '/') {
				printf(_("Give an absolute path (or one "
				    "starting with ~/).\n"));
				continue;
			}
			if (lstat(w->pwfile, &st) == -1)
				break;
			if (!S_ISREG(st.st_mode)) {
				printf(_("%s exists and is not a regular file."
				    "\n"), w->pwfile);
				continue;
			}
			printf(_("%s exists.\n"), w->pwfile);
			if (ask_yes(w, _("Overwrite it?"), false, &yes) == -1)
				return -1;
			if (yes)
				break;
		}
	} else if (*store == STORE_ENV) {
		(void)snprintf(up, sizeof(up), "SMTPKIT_PASSWORD_%s", w->name);
		for (i = 0; up[i] != '\0'; i++)
			up[i] = isalnum((unsigned char)up[i]) ?
			    (char)toupper((unsigned char)up[i]) : '_';
		for (;;) {
			if (ask(w, _("Environment variable"), up, w->env,
			    sizeof(w->env)) == -1)
				return -1;
			if (valid_env_name(w->env))
				break;
			printf(_("A variable name has letters, digits and "
			    "'_', and does not start with a digit.\n"));
		}
	}
	return 0;
}

static void unsave_oauth(struct wizard *);

/* OAuth2: the client secret typed in, then the tokens, before the
 * account that names them. */
static int
save_oauth(struct wizard *w, struct sk_error *err)
{
	char store[PATH_MAX];

	if (w->client_secret != NULL) {
		if (write_secret_file(w->csfile, w->client_secret, err) == -1)
			return -1;
		w->csfile_made = true;
	}
	if (sk_oauth_store_dir(store, sizeof(store)) == -1 ||
	    sk_oauth_store_path(store, w->name, w->token_path,
	    sizeof(w->token_path)) == -1) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    _("no place for the tokens of account %s: set HOME or "
		    "XDG_STATE_HOME"), w->name);
		goto fail;
	}
	if (sk_oauth_store_save(store, w->name, &w->token, err) == -1)
		goto fail;
	w->token_saved = true;
	return 0;
fail:
	unsave_oauth(w);
	return -1;
}

/* Undo save_oauth when the account could not be written. */
static void
unsave_oauth(struct wizard *w)
{
	char store[PATH_MAX];

	if (w->csfile_made)
		(void)unlink(w->csfile);
	w->csfile_made = false;
	if (w->token_saved && sk_oauth_store_dir(store, sizeof(store)) == 0)
		(void)sk_oauth_store_delete(store, w->name, NULL, NULL);
	w->token_saved = false;
}

/* Write the account; the settings the doctor found working win. */
static int
save(struct wizard *w, const struct sk_doctor_report *r, enum store store)
{
	const struct sk_doctor_suggestion *sg = &r->suggested;
	struct sk_account a;
	struct sk_error err;
	const char *preset_host;

	memset(&a, 0, sizeof(a));
	a.name = w->name;
	if (w->p != NULL) {
		if (w->region != NULL)
			(void)snprintf(w->provider_id, sizeof(w->provider_id),
			    "%s:%s", w->p->id, w->region->name);
		else
			(void)snprintf(w->provider_id, sizeof(w->provider_id),
			    "%s", w->p->id);
		a.provider = w->provider_id;
	}
	if (w->host[0] != '\0')
		a.host = w->host;
	a.port = w->port;
	if (w->port != 0 && !w->tls_auto) {
		a.tls = w->tls;
		a.tls_set = true;
	} else if (w->port != 0) {
		a.tls = found_mode(r, w->port, SK_TLS_MODE_STARTTLS);
		a.tls_set = true;
	}
	/*
	 * "25 is blocked; 465 with implicit TLS works": after a failed check
	 * the settings that worked are saved, and so they are after a passed
	 * one that found another port better than the preset's recommended.
	 */
	if (sg->valid && (r->verdict != SK_VERDICT_OK || (w->port == 0 &&
	    w->p != NULL && sg->port != w->p->recommended))) {
		preset_host = w->region != NULL ? w->region->host :
		    w->p != NULL ? w->p->host : NULL;
		if (sg->host[0] != '\0' && (a.host != NULL ||
		    preset_host == NULL ||
		    strcasecmp(sg->host, preset_host) != 0)) {
			(void)snprintf(w->sg_host, sizeof(w->sg_host), "%s",
			    sg->host);
			a.host = w->sg_host;
		}
		a.port = sg->port;
		a.tls = sg->tls;
		a.tls_set = true;
		printf(_("Saving the settings the doctor found working: %s "
		    "port %u, TLS %s.\n"), a.host != NULL ? a.host :
		    preset_host != NULL ? preset_host : "", a.port,
		    sk_tls_mode_name(a.tls));
	}
	if (!w->no_login && w->oauth) {
		a.user = w->user;
		a.oauth_client_id = w->client_id;
		if (w->client_secret != NULL)
			default_pwfile(w, "client-secret", w->csfile,
			    sizeof(w->csfile));
		if (w->csfile[0] != '\0')
			a.oauth_client_secret_file = w->csfile;
	} else if (!w->no_login) {
		a.user = w->user;
		switch (store) {
		case STORE_FILE:
			a.password_file = w->pwfile;
			break;
		case STORE_CONFIG:
			a.password = w->secret;
			break;
		case STORE_ENV:
			a.password_env = w->env;
			break;
		}
	}
	a.from = w->addr;
	a.auth = w->oauth ? w->mech : w->o->auth;
	if (w->ca_file[0] != '\0')
		a.ca_file = w->ca_file;
	a.timeout = w->o->timeout_s;

	if (!w->no_login && !w->oauth && store == STORE_FILE) {
		if (write_secret_file(w->pwfile, w->secret, &err) == -1) {
			cli_print_error(&err);
			return cli_exit_code(&err);
		}
		w->pwfile_made = true;
	}
	if (w->oauth && save_oauth(w, &err) == -1) {
		cli_print_error(&err);
		return cli_exit_code(&err);
	}
	if (sk_config_write_account(w->path, &a, &err) == -1) {
		cli_print_error(&err);
		if (w->pwfile_made)
			(void)unlink(w->pwfile);
		unsave_oauth(w);
		return cli_exit_code(&err);
	}
	printf("\n");
	printf(_("Saved the account '%s' in %s.\n"), w->name, w->path);
	if (!w->no_login && !w->oauth && store == STORE_FILE)
		printf(_("The secret is in %s (mode 0600).\n"), w->pwfile);
	if (w->oauth && w->csfile_made)
		printf(_("The OAuth2 client secret is in %s (mode 0600).\n"),
		    w->csfile);
	if (w->oauth)
		printf(_("The OAuth2 tokens are in %s (mode 0600); smtpkit "
		    "renews the access token itself.  'smtpkit oauth status "
		    "--account %s' shows it, 'smtpkit oauth login --account %s' "
		    "signs in again.\n"), w->token_path, w->name, w->name);
	if (!w->no_login && store == STORE_ENV)
		printf(_("Before sending, set the variable in the shell or the "
		    "service's environment: export %s='...'\n"), w->env);
	if (w->o->insecure)
		printf(_("--insecure was not saved: the account checks the "
		    "server's certificate.\n"));
	printf(_("Send a test message:\n  smtpkit send --account %s --to "
	    "you@example.com --subject test --text hello\n"), w->name);
	return EXIT_OK;
}

int
cmd_setup(int argc, char **argv)
{
	struct setup_opts o;
	struct wizard w;
	struct sk_doctor_report report;
	struct sk_error err;
	enum store store = STORE_FILE;
	bool have_report = false, yes;
	char question[512];
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&w, 0, sizeof(w));
	memset(&report, 0, sizeof(report));
	w.o = &o;
	w.lang = cli_i18n_init(cli_lang_arg(argc, argv));
	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc == -2 ? EXIT_OK : rc;
	w.tty = isatty(STDIN_FILENO) == 1;

	if (o.config != NULL) {
		if (snprintf(w.path, sizeof(w.path), "%s", o.config) >=
		    (int)sizeof(w.path))
			return cli_usage_error("setup", _("--config: the path is too "
			    "long"));
	} else if (sk_config_user_path(w.path, sizeof(w.path)) == -1) {
		fprintf(stderr, _("%s: setup: no home directory to keep the "
		    "configuration in: give --config FILE\n"), cli_progname);
		return EXIT_CONFIG;
	}
	if (o.ca_file != NULL) {
		if (realpath(o.ca_file, w.ca_file) == NULL) {
			sk_error_set(&err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
			    _("--ca-file %s: %s"), o.ca_file, strerror(errno));
			err.sys_errno = errno;
			cli_print_error(&err);
			return cli_exit_code(&err);
		}
	}
	if ((w.db = cli_providers_load(&err)) == NULL) {
		cli_print_error(&err);
		return cli_exit_code(&err);
	}

	if (o.provider != NULL && (w.p = sk_providers_find(w.db, o.provider,
	    &w.region)) == NULL) {
		sk_providers_free(w.db);
		return cli_usage_error("setup", _("unknown provider '%s' ('smtpkit "
		    "providers' lists them)"), o.provider);
	}

	printf(_("This adds an account for sending mail to %s.  Nothing is "
	    "saved before the settings have been checked.\n\n"), w.path);
	rc = EXIT_NOINPUT;
	if (ask_address(&w) == -1 || choose_server(&w) == -1 ||
	    ask_login(&w) == -1) {
		if (w.rc != 0)
			rc = w.rc;
		goto out;
	}

	if ((rc = run_doctor(&w, &report)) != 0)
		goto out;
	have_report = true;
	if (report.verdict != SK_VERDICT_OK) {
		printf("\n");
		(void)snprintf(question, sizeof(question), _("The check failed "
		    "(%s): sending with these settings will fail too.  Save the "
		    "account anyway?"), sk_verdict_name(report.verdict));
		rc = EXIT_NOINPUT;
		if (ask_yes(&w, question, false, &yes) == -1)
			goto out;
		if (!yes) {
			printf(_("Nothing was saved.\n"));
			rc = cli_verdict_exit_code(report.verdict);
			goto out;
		}
	}
	rc = EXIT_NOINPUT;
	putchar('\n');
	if (ask_name(&w) == -1)
		goto out;
	if (!w.no_login && !w.oauth && ask_store(&w, &store) == -1)
		goto out;
	rc = save(&w, &report, store);
out:
	fflush(stdout);
	if (have_report)
		sk_doctor_report_fini(&report);
	cli_secret_free(w.secret);
	cli_secret_free(w.client_secret);
	sk_oauth_token_fini(&w.token);
	sk_providers_free(w.db);
	return rc;
}
