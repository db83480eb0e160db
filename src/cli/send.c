/*
 * smtpkit send: send composed or ready messages through an SMTP server.
 *
 * Everything the user gave is checked before the first connection: a bad
 * address, a header line break, an over-long line, an unreadable file or a
 * missing password stops the run with nothing sent.  A composed message
 * (compose.c, the library's GMime module) is written whole to a temporary
 * file first, and sent from it as a ready one.
 *
 * Where to send comes from the flags, then the account (--account, or the
 * one whose address is --from, or the default one), then the provider
 * preset (--provider, the account's, or the one for --from's domain), then
 * the built-in defaults.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "smtpkit/config.h"
#include "smtpkit/providers.h"
#include "smtpkit/smtpkit.h"
#include "cli.h"
#include "file.h"

struct strlist {
	char **v;
	size_t n, cap;
};

/* What the configuration and the presets gave; freed at the end. */
struct send_ctx {
	struct sk_config conf;
	struct sk_providers *db;
	const struct sk_provider *preset;	/* the knowledge in effect */
	const struct sk_provider_region *region;
	char ca_path[PATH_MAX];		/* the account's, "~/" expanded */
	char pw_path[PATH_MAX];
	char user_config[PATH_MAX];
};

struct send_opts {
	const char *config;	/* --config FILE: that file alone */
	const char *account;
	const char *provider;
	const char *host;
	unsigned port;
	bool tls_given;		/* --tls */
	bool tls_known;		/* by --tls, the account or the preset */
	enum sk_tls_mode tls_mode;
	enum sk_tls_version tls_min;
	const char *user;
	struct password_src pw;
	const char *password;	/* inline, from the account */
	const struct sk_account *acct;	/* the account in use, NULL */
	const struct send_ctx *ctx;
	bool pw_from_acct;	/* the password source is the account's */
	bool oauth;		/* the secret is the account's OAuth2 token,
				   kept by smtpkit (cli_oauth) */
	bool user_from_acct;
	bool ca_from_acct;
	enum sk_auth_mech auth;
	bool allow_plaintext_auth;
	const char *helo;
	const char *from;	/* the envelope sender, an addr-spec; "" for
				   the null sender; as given until
				   parse_addresses() */
	const char *from_name;	/* --from's display name, NULL for none */
	char *from_buf, *from_name_buf;	/* owned, parsed from --from */
	struct strlist to_arg, cc_arg, bcc_arg, reply_to_arg;	/* as given */
	struct cli_mailboxes to, cc, bcc, reply_to;
	struct strlist raw;
	const char *subject;
	const char *text;
	const char *text_file;
	const char *html;
	const char *html_file;
	struct strlist attach, inl, header;	/* as given */
	int timeout_s;		/* 0: unset */
	const char *ca_file;
	bool insecure;
	int verbose;
	bool route;		/* sendmail's: its notes say "sendmail:" only */
	bool json;
};

/* Per-message bookkeeping for output; the rest is printed as it comes. */
struct outcome {
	size_t refused;
	cJSON *rcpts;		/* --json: recipient results, NULL until one */
};

struct send_run {
	struct send_opts *o;
	struct sk_source *src;
	struct outcome *res;
	size_t n;
	const char *peer;
	int worst;		/* exit status so far */
};

enum {
	OPT_HOST = 256, OPT_PORT, OPT_TLS, OPT_TLS_MIN, OPT_USER, OPT_PWFILE,
	OPT_PWENV, OPT_PWCMD, OPT_AUTH, OPT_PLAINAUTH, OPT_HELO, OPT_FROM,
	OPT_TO, OPT_CC, OPT_BCC, OPT_SUBJECT, OPT_TEXT, OPT_TEXTFILE, OPT_RAW,
	OPT_TIMEOUT, OPT_CAFILE, OPT_INSECURE, OPT_JSON, OPT_HELP, OPT_CONFIG,
	OPT_ACCOUNT, OPT_PROVIDER, OPT_REPLYTO, OPT_HTML, OPT_HTMLFILE,
	OPT_ATTACH, OPT_INLINE, OPT_HEADER
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "account", required_argument, NULL, OPT_ACCOUNT },
	{ "provider", required_argument, NULL, OPT_PROVIDER },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "tls", required_argument, NULL, OPT_TLS },
	{ "tls-min", required_argument, NULL, OPT_TLS_MIN },
	{ "user", required_argument, NULL, OPT_USER },
	{ "password-file", required_argument, NULL, OPT_PWFILE },
	{ "password-env", required_argument, NULL, OPT_PWENV },
	{ "password-cmd", required_argument, NULL, OPT_PWCMD },
	{ "auth", required_argument, NULL, OPT_AUTH },
	{ "allow-plaintext-auth", no_argument, NULL, OPT_PLAINAUTH },
	{ "helo", required_argument, NULL, OPT_HELO },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "cc", required_argument, NULL, OPT_CC },
	{ "bcc", required_argument, NULL, OPT_BCC },
	{ "reply-to", required_argument, NULL, OPT_REPLYTO },
	{ "subject", required_argument, NULL, OPT_SUBJECT },
	{ "text", required_argument, NULL, OPT_TEXT },
	{ "text-file", required_argument, NULL, OPT_TEXTFILE },
	{ "html", required_argument, NULL, OPT_HTML },
	{ "html-file", required_argument, NULL, OPT_HTMLFILE },
	{ "attach", required_argument, NULL, OPT_ATTACH },
	{ "inline", required_argument, NULL, OPT_INLINE },
	{ "header", required_argument, NULL, OPT_HEADER },
	{ "raw", required_argument, NULL, OPT_RAW },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "ca-file", required_argument, NULL, OPT_CAFILE },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

static void
send_usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpkit send [--account NAME] [--config FILE] [--provider ID[:REGION]]\n"
	    "           [--host HOST] [--port PORT] [--tls implicit|starttls|none]\n"
	    "           [--user USER (--password-file F | --password-env VAR | --password-cmd CMD)]\n"
	    "           [--auth PLAIN|LOGIN|CRAM-MD5|XOAUTH2|OAUTHBEARER] [--allow-plaintext-auth]\n"
	    "           [--from ADDR|\"NAME <ADDR>\"] --to LIST... [--cc LIST...] [--bcc LIST...]\n"
	    "           [--reply-to LIST...]\n"
	    "         compose a message:\n"
	    "           [--subject TEXT] [--text TEXT | --text-file FILE]\n"
	    "           [--html HTML | --html-file FILE]       text and HTML: alternatives\n"
	    "           [--attach FILE[;type=T][;name=N]]...\n"
	    "           [--inline FILE[;type=T][;name=N][;cid=C]]...   for <img src=\"cid:C\">\n"
	    "           [--header \"Name: value\"]...\n"
	    "         or send ready RFC 5322 messages:\n"
	    "           [--raw FILE...]\n"
	    "           [--timeout SECS] [--ca-file FILE] [--insecure] [--tls-min 1.2]\n"
	    "           [--helo NAME] [-v] [--json]\n"
	    "\n"
	    "A LIST is an address list as in a To header: \"Ann <a@x>, \\\"Doe, J\\\" <j@y>, c@z\".\n"
	    "FILE - is standard input for --text-file, --html-file, --raw, and for --attach\n"
	    "and --inline with name= (\"-;name=db.sql.gz\").  The inline part's cid is its\n"
	    "file name unless cid= says otherwise; --inline needs --html.\n"
	    "--header replaces the Subject, To, Cc, Reply-To, Date or Message-ID smtpkit\n"
	    "writes; From, Bcc, Resent-Bcc, MIME-Version and Content-* are refused.\n"
	    "\n"
	    "Flags win over the account, the account over the provider preset, the preset\n"
	    "over the defaults.  Without --host, --account or --provider the account is the\n"
	    "one whose address is --from, else the default one (see smtpkit-send(1) for\n"
	    "~/.config/smtpkit/config); else the preset for --from's domain.\n"
	    "Port 465 means TLS from the first byte; any other port requires STARTTLS\n"
	    "unless --tls says otherwise.  Without --port: the preset's recommended port,\n"
	    "else 587 (465 with --tls implicit).\n");
}

/* A -v note on standard error: "smtpkit: send: ...", "sendmail: ...". */
static void __attribute__((format(printf, 2, 3)))
note(const struct send_opts *o, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s", cli_progname, o->route ? "" : "send: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int
strlist_add(struct strlist *l, const char *s)
{
	char **nv;
	size_t ncap;

	if (l->n == l->cap) {
		ncap = l->cap != 0 ? l->cap * 2 : 8;
		if ((nv = realloc(l->v, ncap * sizeof(*nv))) == NULL)
			return -1;
		l->v = nv;
		l->cap = ncap;
	}
	if ((l->v[l->n] = strdup(s)) == NULL)
		return -1;
	l->n++;
	return 0;
}

static void
strlist_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static int
parse_opts(int argc, char **argv, struct send_opts *o)
{
	int rc;
	int c, i;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "v", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG:
			o->config = optarg;
			break;
		case OPT_ACCOUNT:
			o->account = optarg;
			break;
		case OPT_PROVIDER:
			o->provider = optarg;
			break;
		case OPT_HOST:
			o->host = optarg;
			break;
		case OPT_PORT:
			if ((rc = cli_opt_port("send", optarg, &o->port)) != 0)
				return rc;
			break;
		case OPT_TLS:
			if (sk_tls_mode_parse(optarg, &o->tls_mode) == -1)
				return cli_usage_error("send", "--tls %s: use implicit, "
				    "starttls or none", optarg);
			o->tls_given = o->tls_known = true;
			break;
		case OPT_TLS_MIN:
			if (sk_tls_version_parse(optarg, &o->tls_min) == -1)
				return cli_usage_error("send", "--tls-min %s: use 1.0, "
				    "1.1, 1.2 or 1.3", optarg);
			break;
		case OPT_USER:
			o->user = optarg;
			break;
		case OPT_PWFILE:
			o->pw.file = optarg;
			break;
		case OPT_PWENV:
			o->pw.env = optarg;
			break;
		case OPT_PWCMD:
			o->pw.cmd = optarg;
			break;
		case OPT_AUTH:
			if ((rc = cli_opt_auth("send", optarg, &o->auth)) != 0)
				return rc;
			break;
		case OPT_PLAINAUTH:
			o->allow_plaintext_auth = true;
			break;
		case OPT_HELO:
			o->helo = optarg;
			break;
		case OPT_FROM:
			o->from = optarg;
			break;
		case OPT_TO:
		case OPT_CC:
		case OPT_BCC:
		case OPT_REPLYTO:
			if (strlist_add(c == OPT_TO ? &o->to_arg :
			    c == OPT_CC ? &o->cc_arg : c == OPT_BCC ?
			    &o->bcc_arg : &o->reply_to_arg, optarg) == -1)
				return EXIT_OSERR;
			break;
		case OPT_SUBJECT:
			o->subject = optarg;
			break;
		case OPT_TEXT:
			o->text = optarg;
			break;
		case OPT_TEXTFILE:
			o->text_file = optarg;
			break;
		case OPT_HTML:
			o->html = optarg;
			break;
		case OPT_HTMLFILE:
			o->html_file = optarg;
			break;
		case OPT_ATTACH:
		case OPT_INLINE:
		case OPT_HEADER:
			if (strlist_add(c == OPT_ATTACH ? &o->attach :
			    c == OPT_INLINE ? &o->inl : &o->header,
			    optarg) == -1)
				return EXIT_OSERR;
			break;
		case OPT_RAW:
			if (strlist_add(&o->raw, optarg) == -1)
				return EXIT_OSERR;
			break;
		case OPT_TIMEOUT:
			if ((rc = cli_opt_timeout("send", optarg,
			    &o->timeout_s)) != 0)
				return rc;
			break;
		case OPT_CAFILE:
			o->ca_file = optarg;
			break;
		case OPT_INSECURE:
			o->insecure = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_HELP:
			send_usage(stdout);
			return -2;
		default:
			if (optopt != 0 && optopt < 256)
				return cli_usage_error("send", "unknown option -%c",
				    optopt);
			return cli_usage_error("send", "unknown or incomplete option %s",
			    argv[optind - 1]);
		}
	}
	/* Extra arguments are more raw messages: --raw a.eml b.eml c.eml */
	for (i = optind; i < argc; i++) {
		if (o->raw.n == 0)
			return cli_usage_error("send", "unexpected argument %s (raw "
			    "message files follow --raw)", argv[i]);
		if (strlist_add(&o->raw, argv[i]) == -1)
			return EXIT_OSERR;
	}
	return 0;
}

/*
 * --from, --to, --cc, --bcc and --reply-to as address lists: the envelope
 * takes the addr-specs, the header the names too.  Before anything else,
 * since the account is chosen by the bare --from address.
 */
static int
parse_addresses(struct send_opts *o, struct sk_error *err)
{
	struct {
		struct strlist *arg;
		struct cli_mailboxes *l;
		const char *flag;
	} lists[] = {
		{ &o->to_arg, &o->to, "--to" },
		{ &o->cc_arg, &o->cc, "--cc" },
		{ &o->bcc_arg, &o->bcc, "--bcc" },
		{ &o->reply_to_arg, &o->reply_to, "--reply-to" },
	};
	size_t i, j;

	/* "" stays the null sender, for --raw (a composed message needs
	 * a From and says so) */
	if (o->from != NULL && o->from[0] != '\0') {
		if (cli_mailbox_parse("--from", o->from, &o->from_buf,
		    &o->from_name_buf, err) == -1)
			return -1;
		o->from = o->from_buf;
		o->from_name = o->from_name_buf[0] != '\0' ?
		    o->from_name_buf : NULL;
	}
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		for (j = 0; j < lists[i].arg->n; j++)
			if (cli_mailboxes_parse(lists[i].l, lists[i].flag,
			    lists[i].arg->v[j], err) == -1)
				return -1;
	return 0;
}

/* The first option given that composes a message, or NULL. */
static const char *
compose_flag(const struct send_opts *o)
{
	return o->subject != NULL ? "--subject" : o->text != NULL ? "--text" :
	    o->text_file != NULL ? "--text-file" : o->html != NULL ? "--html" :
	    o->html_file != NULL ? "--html-file" : o->attach.n > 0 ?
	    "--attach" : o->inl.n > 0 ? "--inline" : o->header.n > 0 ?
	    "--header" : o->reply_to.n > 0 ? "--reply-to" : NULL;
}

/* Check every user-given fact; nothing is sent when one is wrong. */
static int
check_opts(struct send_opts *o, bool *utf8, struct sk_error *err)
{
	struct { struct cli_mailboxes *l; const char *flag; } lists[] = {
		{ &o->to, "--to" }, { &o->cc, "--cc" }, { &o->bcc, "--bcc" },
		{ &o->reply_to, "--reply-to" },
	};
	const char *flag;
	size_t i, j;
	bool u = false;
	int sources;

	*utf8 = false;
	if (o->from == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    o->acct != NULL ? "send: --from is required: account %s "
		    "(%s) has no from" : "send: --from is required (the sender "
		    "address)%s%s", o->acct != NULL ? o->acct->name : "",
		    o->acct != NULL ? o->acct->origin : "");
	if (o->to.n + o->cc.n + o->bcc.n == 0)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: no recipient: give --to (or --cc, --bcc)");
	if (o->from[0] != '\0') {
		if (sk_addr_check("--from", o->from, &u, err) == -1)
			return -1;
		*utf8 |= u;
	}
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		for (j = 0; j < lists[i].l->n; j++) {
			if (sk_addr_check(lists[i].flag, lists[i].l->addr[j],
			    &u, err) == -1)
				return -1;
			/* Reply-To is only a header: no SMTPUTF8 for it */
			if (lists[i].l != &o->reply_to)
				*utf8 |= u;
		}
	if (o->subject != NULL &&
	    sk_header_check("--subject", o->subject, err) == -1)
		return -1;
	if (o->text != NULL && o->text_file != NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: give --text or --text-file, not both");
	if (o->html != NULL && o->html_file != NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: give --html or --html-file, not both");
	if (o->text_file != NULL && o->html_file != NULL &&
	    strcmp(o->text_file, "-") == 0 && strcmp(o->html_file, "-") == 0)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: --text-file - and --html-file -: standard input "
		    "can give only one of them");
	if (o->raw.n > 0 && (flag = compose_flag(o)) != NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: --raw sends ready messages; %s composes one: use "
		    "one or the other", flag);
	if (o->inl.n > 0 && o->html == NULL && o->html_file == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: --inline needs --html or --html-file (the HTML "
		    "refers to it as <img src=\"cid:...\">)");
	sources = (o->pw.file != NULL) + (o->pw.env != NULL) +
	    (o->pw.cmd != NULL) + (o->password != NULL);
	if (sources > 1)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: give one of --password-file, --password-env, "
		    "--password-cmd");
	if (sources == 1 && o->user == NULL && o->pw_from_acct)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "account %s (%s) has a password but no user", o->acct->name,
		    o->acct->origin);
	if (sources == 1 && o->user == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: a password was given without --user");
	if (sources == 0 && o->user_from_acct && !o->oauth)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "account %s (%s) has a user but no password, "
		    "password-file, password-env or password-cmd",
		    o->acct->name, o->acct->origin);
	if (o->tls_mode == SK_TLS_MODE_NONE && o->tls_given &&
	    (o->ca_file != NULL || o->insecure))
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: --ca-file and --insecure need TLS, but --tls none "
		    "was given");
	if (o->ca_file != NULL && access(o->ca_file, R_OK) == -1) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "%s %s: %s", o->ca_from_acct ? "the account's ca-file" :
		    "--ca-file", o->ca_file, strerror(errno));
		err->sys_errno = errno;
		return -1;
	}
	return 0;
}

static struct sk_providers *
load_providers(struct sk_error *err)
{
	char user_dir[PATH_MAX];
	const char *dirs[3];

	sk_providers_default_dirs(dirs, user_dir, sizeof(user_dir));
	return sk_providers_load(dirs, err);
}

/* Where the accounts were looked for, for messages. */
static const char *
config_where(const struct send_opts *o, struct send_ctx *x)
{
	if (o->config != NULL)
		return o->config;
	if (sk_config_user_path(x->user_config, sizeof(x->user_config)) ==
	    -1)
		return "/etc/smtpkit/config";
	return x->user_config;
}

/* The account's values where the flags left a gap. */
static int
apply_account(struct send_opts *o, struct send_ctx *x,
    const struct sk_account *a, struct sk_error *err)
{
	o->acct = a;
	if (o->from == NULL)
		o->from = a->from != NULL ? a->from : a->user != NULL &&
		    strchr(a->user, '@') != NULL ? a->user : NULL;
	if (o->host == NULL)
		o->host = a->host;
	if (o->port == 0)
		o->port = a->port;
	if (!o->tls_known && a->tls_set) {
		o->tls_mode = a->tls;
		o->tls_known = true;
	}
	if (o->tls_min == SK_TLS_ANY)
		o->tls_min = a->tls_min;
	if (o->user == NULL && a->user != NULL) {
		o->user = a->user;
		o->user_from_acct = true;
	}
	/* A password source given as a flag replaces the account's. */
	if (o->pw.file == NULL && o->pw.env == NULL && o->pw.cmd == NULL) {
		o->password = a->password;
		o->pw.env = a->password_env;
		o->pw.cmd = a->password_cmd;
		if (a->password_file != NULL) {
			if (sk_config_expand_path(a->password_file, x->pw_path,
			    sizeof(x->pw_path)) == -1)
				return sk_error_set(err, SK_STAGE_LOCAL,
				    SK_ERR_CONFIG, "account %s (%s): cannot "
				    "expand password-file %s", a->name,
				    a->origin, a->password_file);
			o->pw.file = x->pw_path;
		}
		o->pw_from_acct = o->password != NULL || o->pw.env != NULL ||
		    o->pw.cmd != NULL || o->pw.file != NULL;
	}
	if (o->auth == SK_AUTH_NONE)
		o->auth = a->auth;
	if (o->ca_file == NULL && a->ca_file != NULL) {
		if (sk_config_expand_path(a->ca_file, x->ca_path,
		    sizeof(x->ca_path)) == -1)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    "account %s (%s): cannot expand ca-file %s",
			    a->name, a->origin, a->ca_file);
		o->ca_file = x->ca_path;
		o->ca_from_acct = true;
	}
	if (o->timeout_s == 0)
		o->timeout_s = a->timeout;
	return 0;
}

/* A preset port fits when its mode is the one asked for; plaintext only
 * when asked for, never because a preset lists it. */
static bool
preset_port_fits(const struct send_opts *o, const struct sk_provider_port *pp)
{
	if (o->tls_known)
		return pp->mode == o->tls_mode;
	return pp->mode != SK_TLS_MODE_NONE;
}

/*
 * The preset's port and TLS mode where neither the flags nor the account
 * said: its recommended port, or the port it lists for the TLS mode asked
 * for, or the mode it lists for the port asked for.
 */
static void
apply_preset_port(struct send_opts *o, const struct sk_provider *p)
{
	size_t i;

	if (o->port != 0 && o->tls_known)
		return;
	if (o->port != 0) {
		for (i = 0; i < p->nports; i++)
			if (p->ports[i].port == o->port &&
			    preset_port_fits(o, &p->ports[i])) {
				o->tls_mode = p->ports[i].mode;
				o->tls_known = true;
			}
		return;
	}
	for (i = 0; i < p->nports; i++)
		if (p->ports[i].port == p->recommended &&
		    preset_port_fits(o, &p->ports[i]))
			goto found;
	for (i = 0; i < p->nports; i++)
		if (preset_port_fits(o, &p->ports[i]))
			goto found;
	return;
found:
	o->port = p->ports[i].port;
	o->tls_mode = p->ports[i].mode;
	o->tls_known = true;
}

/*
 * Decide where to send and as whom: flags, then the account, then the
 * preset, then the defaults.  The configuration is read only when an
 * account may be needed, so that a plain --host run never depends on it.
 */
static int
resolve_target(struct send_opts *o, struct send_ctx *x, struct sk_error *err)
{
	const struct sk_account *a = NULL;
	const char *id = NULL;
	size_t i;

	if (o->config != NULL || o->account != NULL ||
	    (o->host == NULL && o->provider == NULL)) {
		if (sk_config_load(&x->conf, o->config, err) == -1)
			return -1;
	}
	if (o->account != NULL) {
		if ((a = sk_config_find(&x->conf, o->account)) == NULL) {
			sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    "send: no [account %s] in %s%s", o->account,
			    config_where(o, x), o->config != NULL ? "" :
			    " or /etc/smtpkit/config");
			if (x->conf.naccounts > 0 && err != NULL) {
				size_t n = strlen(err->message);

				(void)snprintf(err->message + n,
				    sizeof(err->message) - n, " (accounts:");
				for (i = 0; i < x->conf.naccounts; i++) {
					n = strlen(err->message);
					(void)snprintf(err->message + n,
					    sizeof(err->message) - n, " %s",
					    x->conf.accounts[i].name);
				}
				n = strlen(err->message);
				(void)snprintf(err->message + n,
				    sizeof(err->message) - n, ")");
			}
			return -1;
		}
	} else if (o->host == NULL && o->provider == NULL) {
		if (o->from != NULL)
			a = sk_config_by_from(&x->conf, o->from);
		if (a == NULL)
			a = sk_config_default(&x->conf);
	}
	if (a != NULL) {
		if (apply_account(o, x, a, err) == -1)
			return -1;
		if (o->verbose > 0)
			note(o, "account %s (%s)", a->name, a->origin);
	}

	/* The preset stays in effect when --host or --port overrides it:
	 * a private endpoint of a known provider, or a test. */
	id = o->provider != NULL ? o->provider : a != NULL ? a->provider :
	    NULL;
	if (id != NULL || (o->host == NULL && o->from != NULL)) {
		if ((x->db = load_providers(err)) == NULL)
			return -1;
	}
	if (id != NULL) {
		x->preset = sk_providers_find(x->db, id, &x->region);
		if (x->preset == NULL && o->provider != NULL)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
			    "send: --provider %s: no such preset (run "
			    "'smtpkit providers' for the list)", id);
		if (x->preset == NULL)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    "account %s (%s): provider = %s is not a known "
			    "preset (run 'smtpkit providers' for the list)",
			    a->name, a->origin, id);
	} else if (o->host == NULL && o->from != NULL &&
	    (x->preset = sk_providers_by_domain(x->db, o->from)) != NULL) {
		x->region = sk_provider_region_by_domain(x->preset, o->from);
		if (o->verbose > 0)
			note(o, "provider %s, from the domain of %s",
			    x->preset->id, o->from);
	}
	if (x->preset != NULL) {
		if (o->host == NULL)
			o->host = x->region != NULL ? x->region->host :
			    x->preset->host;
		apply_preset_port(o, x->preset);
	}

	if (o->host == NULL) {
		if (a != NULL)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    "account %s (%s) has neither host nor provider",
			    a->name, a->origin);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: no server: give --host (e.g. smtp.gmail.com), "
		    "--provider ID or --account NAME, or write a default "
		    "account in %s", config_where(o, x));
	}
	/* The built-in defaults: RFC 8314 for 465, submission otherwise. */
	if (!o->tls_known)
		o->tls_mode = o->port == 465 ? SK_TLS_MODE_IMPLICIT :
		    SK_TLS_MODE_STARTTLS;
	if (o->port == 0)
		o->port = o->tls_mode == SK_TLS_MODE_IMPLICIT ? 465 : 587;
	if (o->timeout_s == 0)
		o->timeout_s = 30;
	if (o->verbose > 0 && (a != NULL || x->preset != NULL))
		note(o, "%s port %u, TLS %s%s%s", o->host, o->port,
		    sk_tls_mode_name(o->tls_mode),
		    x->preset != NULL ? ", preset " : "",
		    x->preset != NULL ? x->preset->id : "");
	return 0;
}

/*
 * Open, measure and check one raw message.  Standard input is copied to an
 * unnamed temporary file as it is measured, so that it can be streamed.
 */
static int
open_raw(const char *path, struct sk_source *src, struct sk_error *err)
{
	struct sk_scan scan;
	struct stat st;
	char buf[65536];
	ssize_t n;
	int fd;

	src->path = strcmp(path, "-") == 0 ? NULL : path;
	if (src->path == NULL) {
		if ((fd = sk__tmpfile(NULL)) == -1)
			goto fail;
		sk_scan_init(&scan);
		for (;;) {
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1) {
				(void)close(fd);
				goto fail;
			}
			if (n == 0)
				break;
			sk_scan_feed(&scan, buf, (size_t)n);
			if (sk__write_all(fd, buf, (size_t)n) == -1) {
				(void)close(fd);
				goto fail;
			}
		}
		sk_scan_finish(&scan);
		path = "standard input";
	} else {
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			goto fail;
		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			(void)close(fd);
			errno = EISDIR;
			goto fail;
		}
		if (sk_scan_fd(fd, path, &scan, err) == -1) {
			(void)close(fd);
			return -1;
		}
	}
	if (sk_scan_check(&scan, path, err) == -1) {
		(void)close(fd);
		return -1;
	}
	if (src->path == NULL) {
		/* standard input: keep the copy open, from its start */
		if (lseek(fd, 0, SEEK_SET) == -1) {
			(void)close(fd);
			goto fail;
		}
		src->fd = fd;
	} else {
		/* reopened when its turn comes: no fd per queued file */
		(void)close(fd);
	}
	src->name = path;
	src->env.size = scan.wire_size;
	src->env.body_8bit = scan.has_8bit;
	return 0;
fail:
	sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "cannot read %s: %s",
	    path, strerror(errno));
	err->sys_errno = errno;
	return -1;
}

static cJSON *
json_error(const struct sk_error *e)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "stage", sk_stage_name(e->stage));
	cJSON_AddStringToObject(o, "kind", sk_error_kind_name(e->kind));
	if (e->code != 0)
		cJSON_AddNumberToObject(o, "code", e->code);
	cJSON_AddStringToObject(o, "enhanced", e->enhanced);
	if (e->server_text[0] != '\0')
		cJSON_AddStringToObject(o, "reply", e->server_text);
	if (e->sys_errno != 0)
		cJSON_AddStringToObject(o, "errno", strerror(e->sys_errno));
	if (e->kind == SK_ERR_TLS_VERIFY)
		cJSON_AddNumberToObject(o, "verify_result",
		    (double)e->verify_result);
	if (e->oauth_error != SK_OAUTH_ERR_NONE)
		cJSON_AddStringToObject(o, "oauth_error",
		    sk_oauth_error_name(e->oauth_error));
	cJSON_AddStringToObject(o, "message", e->message);
	cJSON_AddNumberToObject(o, "exit", cli_exit_code(e));
	return o;
}

static void
json_print(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	if (s != NULL) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	cJSON_Delete(o);
}

static void
worse(struct send_run *r, int code)
{
	/* A permanent or local failure outranks a temporary one. */
	if (r->worst == EXIT_OK || (r->worst == EXIT_TEMPFAIL &&
	    code != EXIT_OK))
		r->worst = code;
}

static void
print_message(struct send_run *r, size_t i, bool ok, const struct sk_error *d)
{
	const struct sk_source *src = &r->src[i];
	struct outcome *res = &r->res[i];
	size_t nr = src->env.nrcpts;
	cJSON *o;

	if (r->o->json) {
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "message", (double)(i + 1));
		cJSON_AddStringToObject(o, "source", src->name);
		cJSON_AddStringToObject(o, "status", !ok ? "failed" :
		    res->refused > 0 ? "partial" : "accepted");
		if (ok) {
			cJSON_AddNumberToObject(o, "code", d->code);
			cJSON_AddStringToObject(o, "enhanced", d->enhanced);
			cJSON_AddStringToObject(o, "reply", d->server_text);
		}
		cJSON_AddItemToObject(o, "recipients", res->rcpts != NULL ?
		    res->rcpts : cJSON_CreateArray());
		res->rcpts = NULL;
		if (!ok)
			cJSON_AddItemToObject(o, "error", json_error(d));
		json_print(o);
		return;
	}
	if (!ok)
		printf("message %zu (%s): not sent: %s\n", i + 1, src->name,
		    d->message);
	else if (res->refused > 0)
		printf("message %zu (%s): accepted by %s for %zu of %zu "
		    "recipients: %d %s\n", i + 1, src->name, r->peer,
		    nr - res->refused, nr, d->code, d->server_text);
	else
		printf("message %zu (%s): accepted by %s: %d %s\n", i + 1,
		    src->name, r->peer, d->code, d->server_text);
}

static void
on_result(void *arg, const struct sk_event *ev)
{
	struct send_run *r = arg;
	struct outcome *res = &r->res[ev->msg];
	const struct sk_source *src = &r->src[ev->msg];
	cJSON *o;

	if (ev->type == SK_EV_RCPT) {
		if (r->o->json) {
			if (res->rcpts == NULL &&
			    (res->rcpts = cJSON_CreateArray()) == NULL)
				return;
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "address",
			    src->env.rcpts[ev->rcpt]);
			cJSON_AddStringToObject(o, "status", ev->ok ?
			    "accepted" : "refused");
			cJSON_AddNumberToObject(o, "code", ev->detail.code);
			cJSON_AddStringToObject(o, "enhanced",
			    ev->detail.enhanced);
			cJSON_AddStringToObject(o, "reply",
			    ev->detail.server_text);
			cJSON_AddItemToArray(res->rcpts, o);
		}
		if (!ev->ok) {
			res->refused++;
			worse(r, cli_exit_code(&ev->detail));
			if (!r->o->json)
				printf("message %zu (%s): recipient <%s> "
				    "refused: %d %s\n", ev->msg + 1,
				    src->name, src->env.rcpts[ev->rcpt],
				    ev->detail.code, ev->detail.server_text);
		}
		return;
	}
	if (!ev->ok)
		worse(r, cli_exit_code(&ev->detail));
	print_message(r, ev->msg, ev->ok, &ev->detail);
}

/*
 * What the preset in use knows about a refusal: what the reply means and
 * how to fix it, and for a refused login what the credential must be
 * ("QQ wants the authorization code, not the password").
 */
static void
print_hint(const struct send_ctx *x, const struct sk_error *e)
{
	const struct sk_reply_rule *r;
	size_t i;

	if (x == NULL || x->preset == NULL || x->db == NULL || e->code == 0)
		return;
	r = sk_providers_match_reply(x->db, x->preset, e->code, e->enhanced,
	    e->server_text);
	if (r != NULL && r->summary != NULL) {
		fprintf(stderr, "%s: %s: %s\n", cli_progname,
		    sk_reply_rule_applies(r, x->preset) ? x->preset->id :
		    "hint", r->summary);
		for (i = 0; i < r->nfix; i++)
			fprintf(stderr, "  %zu. %s\n", i + 1, r->fix[i]);
	}
	if (e->stage == SK_STAGE_AUTH && x->preset->credential_help != NULL)
		fprintf(stderr, "%s: %s: %s\n", cli_progname, x->preset->id,
		    x->preset->credential_help);
}

/*
 * An account whose OAuth2 token smtpkit keeps (sk_oauth_account_managed):
 * no password source from the account or the flags, and no password
 * mechanism asked for.  Its client, the mechanism (the account's or the
 * preset's), and the user name (the login, else the sender).
 */
static int
oauth_prepare(struct send_opts *o, const struct send_ctx *x,
    struct cli_oauth *oa, const struct sk_trace *trace, struct sk_error *err)
{
	if (o->acct == NULL || o->password != NULL || o->pw.file != NULL ||
	    o->pw.env != NULL || o->pw.cmd != NULL)
		return 0;
	if (o->auth != SK_AUTH_NONE && !sk_auth_mech_is_token(o->auth))
		return 0;
	if (!sk_oauth_account_managed(o->acct, x->preset))
		return 0;
	o->oauth = true;
	if (cli_oauth_init(oa, o->acct, x->preset, trace, o->timeout_s * 1000,
	    err) == -1)
		return -1;
	if (o->auth == SK_AUTH_NONE)
		o->auth = oa->client.mech;
	if (o->user == NULL)
		o->user = o->from;
	return 0;
}

/* The account's access token as the secret, renewed when due. */
static int
oauth_secret(struct send_opts *o, struct cli_oauth *oa, const char *rejected,
    char **secret, struct sk_error *err)
{
	char when[96];

	if (cli_oauth_get(oa, rejected, err) == -1)
		return -1;
	if ((*secret = strdup(oa->token.access_token)) == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	if (o->verbose > 0) {
		cli_oauth_expiry(oa->token.expires_at, when, sizeof(when));
		note(o, "OAuth2 token of account %s%s, %s", o->acct->name,
		    oa->refreshed ? " (refreshed)" : "", when);
	}
	return 0;
}

/*
 * The secret, then the session.  An OAuth2 token the server refused
 * although it looked valid here (revoked, or expired early) is renewed
 * once -- unless it was just renewed -- and tried once more: nothing was
 * sent before AUTH.  The secret is wiped before returning.
 */
static struct sk_session *
open_session(struct send_opts *o, struct cli_oauth *oa, struct cli_trace *tr,
    struct sk_error *err)
{
	struct sk_session_config cfg;
	struct sk_session *s;
	char *secret = NULL, *old;

	if (o->oauth) {
		if (oauth_secret(o, oa, NULL, &secret, err) == -1)
			return NULL;
	} else if (o->user != NULL && o->password != NULL) {
		if ((secret = strdup(o->password)) == NULL) {
			sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
			    "out of memory");
			return NULL;
		}
	} else if (o->user != NULL && cli_password(&o->pw, &secret,
	    err) == -1)
		return NULL;

	memset(&cfg, 0, sizeof(cfg));
	if (o->insecure)
		fprintf(stderr, "%s: warning: --insecure: the server's "
		    "certificate is not checked; anyone on the path can read "
		    "the password and the mail\n", cli_progname);
	cfg.host = o->host;
	cfg.port = o->port;
	cfg.tls_mode = o->tls_mode;
	cfg.tls.ca_file = o->ca_file;
	cfg.tls.insecure = o->insecure;
	cfg.tls.min_version = o->tls_min;
	cfg.helo_name = o->helo;
	cfg.user = o->user;
	cfg.secret = secret;
	cfg.auth_mech = o->auth;
	cfg.allow_plaintext_auth = o->allow_plaintext_auth;
	cfg.timeout_ms = o->timeout_s * 1000;
	if (o->verbose > 0) {
		cli_trace_init(tr, o->verbose);
		cfg.trace.fn = cli_trace_fn;
		cfg.trace.arg = tr;
	}

	s = sk_session_open(&cfg, err);
	if (s == NULL && o->oauth && !oa->refreshed &&
	    sk_oauth_token_refused(err)) {
		if (o->verbose > 0)
			note(o, "the server refused the OAuth2 token; "
			    "renewing it and trying once more");
		old = secret;
		secret = NULL;
		if (oauth_secret(o, oa, old, &secret, err) == 0) {
			cfg.secret = secret;
			s = sk_session_open(&cfg, err);
		}
		cli_secret_free(old);
	}
	cli_secret_free(secret);
	return s;
}

/*
 * Every error of the command before the network reads "smtpkit: send:
 * ...", whichever part of the library or the command found it.
 */
static void
send_prefix(struct sk_error *e)
{
	char msg[SK_ERROR_MESSAGE_MAX];

	if ((e->stage != SK_STAGE_NONE && e->stage != SK_STAGE_LOCAL) ||
	    strncmp(e->message, "send: ", 6) == 0)
		return;
	(void)snprintf(msg, sizeof(msg), "send: %s", e->message);
	(void)snprintf(e->message, sizeof(e->message), "%s", msg);
}

static void
session_failed(struct send_opts *o, struct sk_error *e)
{
	cJSON *j;

	send_prefix(e);
	cli_print_error(e);
	print_hint(o->ctx, e);
	if (o->oauth || e->oauth_error == SK_OAUTH_ERR_NO_CLIENT)
		cli_oauth_advise(e, o->acct, o->ctx != NULL ? o->ctx->preset :
		    NULL);
	if (o->json) {
		j = cJSON_CreateObject();
		cJSON_AddItemToObject(j, "error", json_error(e));
		json_print(j);
	}
}

/* Each envelope recipient once, in the order given: To, Cc, Bcc. */
static int
add_rcpts(struct strlist *rcpts, const struct cli_mailboxes *l)
{
	size_t i, j;

	for (i = 0; i < l->n; i++) {
		for (j = 0; j < rcpts->n; j++)
			if (strcmp(rcpts->v[j], l->addr[i]) == 0)
				break;
		if (j == rcpts->n && strlist_add(rcpts, l->addr[i]) == -1)
			return -1;
	}
	return 0;
}

/* The message of the flags, composed into a temporary file. */
static int
compose_message(const struct send_opts *o, struct sk_source *src,
    struct sk_error *err)
{
	struct cli_compose c;

	memset(&c, 0, sizeof(c));
	c.from = o->from;
	c.from_name = o->from_name;
	c.to = &o->to;
	c.cc = &o->cc;
	c.reply_to = &o->reply_to;
	c.subject = o->subject;
	c.text = o->text;
	c.text_file = o->text_file;
	c.html = o->html;
	c.html_file = o->html_file;
	c.attach = o->attach.v;
	c.nattach = o->attach.n;
	c.inl = o->inl.v;
	c.ninl = o->inl.n;
	c.headers = o->header.v;
	c.nheaders = o->header.n;
	return cli_compose(&c, src, err);
}

int
cmd_send(int argc, char **argv)
{
	struct send_opts o;
	struct send_ctx ctx;
	struct send_run run;
	struct sk_session *s = NULL;
	struct sk_error err;
	struct cli_trace tr, otr;
	struct cli_oauth oa;
	struct sk_trace otrace = { NULL, NULL };
	struct strlist rcpts;
	size_t i;
	bool utf8;
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&ctx, 0, sizeof(ctx));
	memset(&run, 0, sizeof(run));
	memset(&oa, 0, sizeof(oa));
	o.ctx = &ctx;
	memset(&rcpts, 0, sizeof(rcpts));
	sk_error_clear(&err);

	if ((rc = parse_opts(argc, argv, &o)) != 0) {
		rc = rc == -2 ? EXIT_OK : rc;
		goto out;
	}
	if (o.verbose > 0) {
		cli_trace_init(&otr, o.verbose);
		otrace.fn = cli_trace_fn;
		otrace.arg = &otr;
	}
	if (parse_addresses(&o, &err) == -1 ||
	    resolve_target(&o, &ctx, &err) == -1 ||
	    oauth_prepare(&o, &ctx, &oa, &otrace, &err) == -1 ||
	    check_opts(&o, &utf8, &err) == -1)
		goto fail;
	if (add_rcpts(&rcpts, &o.to) == -1 || add_rcpts(&rcpts, &o.cc) == -1 ||
	    add_rcpts(&rcpts, &o.bcc) == -1)
		goto oom;

	/* The messages, all checked before the first connection. */
	run.o = &o;
	run.n = o.raw.n > 0 ? o.raw.n : 1;
	run.src = calloc(run.n, sizeof(*run.src));
	run.res = calloc(run.n, sizeof(*run.res));
	if (run.src == NULL || run.res == NULL)
		goto oom;
	for (i = 0; i < run.n; i++) {
		run.src[i].fd = -1;
		run.src[i].env.from = o.from;
		run.src[i].env.rcpts = (const char *const *)rcpts.v;
		run.src[i].env.nrcpts = rcpts.n;
		run.src[i].env.smtputf8 = utf8;
	}
	if (o.raw.n > 0) {
		for (i = 0; i < o.raw.n; i++)
			if (open_raw(o.raw.v[i], &run.src[i], &err) == -1)
				goto fail;
	} else if (compose_message(&o, &run.src[0], &err) == -1)
		goto fail;
	if ((s = open_session(&o, &oa, &tr, &err)) == NULL) {
		session_failed(&o, &err);
		rc = cli_exit_code(&err);
		goto out;
	}
	run.peer = sk_session_peer(s);
	run.worst = EXIT_OK;
	if (sk_session_send(s, run.src, run.n, on_result, &run, &err) == -1) {
		session_failed(&o, &err);
		worse(&run, cli_exit_code(&err));
		sk_session_free(s);
	} else {
		sk_session_quit(s);
	}
	s = NULL;
	rc = run.worst;
	goto out;
oom:
	sk_error_set(&err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
fail:
	session_failed(&o, &err);
	rc = cli_exit_code(&err);
out:
	fflush(stdout);
	if (run.src != NULL)
		for (i = 0; i < run.n; i++)
			if (run.src[i].fd > STDIN_FILENO)
				(void)close(run.src[i].fd);
	if (run.res != NULL)
		for (i = 0; i < run.n; i++)
			cJSON_Delete(run.res[i].rcpts);
	free(run.src);
	free(run.res);
	strlist_free(&rcpts);
	strlist_free(&o.to_arg);
	strlist_free(&o.cc_arg);
	strlist_free(&o.bcc_arg);
	strlist_free(&o.reply_to_arg);
	cli_mailboxes_free(&o.to);
	cli_mailboxes_free(&o.cc);
	cli_mailboxes_free(&o.bcc);
	cli_mailboxes_free(&o.reply_to);
	free(o.from_buf);
	free(o.from_name_buf);
	strlist_free(&o.raw);
	strlist_free(&o.attach);
	strlist_free(&o.inl);
	strlist_free(&o.header);
	cli_oauth_fini(&oa);
	sk_config_fini(&ctx.conf);
	if (ctx.db != NULL)
		sk_providers_free(ctx.db);
	return rc;
}

/*
 * Routes for sendmail (sendmail.c): the account, preset and password rules
 * above, for an envelope that the message and sendmail's flags decide.
 * Only appended here so that both commands keep one set of rules.
 */
struct cli_route {
	struct send_opts o;
	struct send_ctx ctx;
	struct cli_trace tr, otr;
	struct sk_trace otrace;
	struct cli_oauth oa;	/* an account whose OAuth2 token smtpkit keeps */
	char *account;		/* the account chosen by address */
};

struct cli_route *
cli_route_new(const struct cli_route_req *req, struct sk_error *err)
{
	struct cli_route *r;
	struct sk_config conf;
	const struct sk_account *a = NULL;
	char where[PATH_MAX];

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
		return NULL;
	}
	r->o.ctx = &r->ctx;
	r->o.route = true;
	r->o.config = req->config;
	r->o.verbose = req->verbose;
	r->o.from = req->from;
	r->o.account = req->account;
	if (req->account == NULL) {
		/*
		 * sendmail has no --host: an account is a must.  By -f, else
		 * by the From header, else the default one.  The From header
		 * only chooses: the envelope sender stays the account's, which
		 * is what providers accept.
		 */
		memset(&conf, 0, sizeof(conf));
		if (sk_config_load(&conf, req->config, err) == -1)
			goto fail;
		if (req->from != NULL)
			a = sk_config_by_from(&conf, req->from);
		if (a == NULL && req->header_from != NULL)
			a = sk_config_by_from(&conf, req->header_from);
		if (a == NULL)
			a = sk_config_default(&conf);
		if (a != NULL && (r->account = strdup(a->name)) == NULL) {
			sk_config_fini(&conf);
			sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
			    "out of memory");
			goto fail;
		}
		if (a == NULL) {
			sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    "no account to send with: %s has %s; write one "
			    "(or run 'smtpkit setup'), and name it in "
			    "[smtpkit] default = NAME", req->config != NULL ?
			    req->config : sk_config_user_path(where,
			    sizeof(where)) == 0 ? where : "~/.config/smtpkit/config",
			    conf.naccounts == 0 ? "no account" :
			    "several accounts but no default");
			sk_config_fini(&conf);
			goto fail;
		}
		sk_config_fini(&conf);
		r->o.account = r->account;
	}
	if (resolve_target(&r->o, &r->ctx, err) == -1)
		goto fail;
	if (r->o.from == NULL)
		r->o.from = req->header_from;
	if (r->o.from == NULL) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "no sender address: account %s (%s) has no from, the "
		    "message has no From header, and -f was not given",
		    r->o.acct->name, r->o.acct->origin);
		goto fail;
	}
	if (r->o.verbose > 0) {
		cli_trace_init(&r->otr, r->o.verbose);
		r->otrace.fn = cli_trace_fn;
		r->otrace.arg = &r->otr;
	}
	if (oauth_prepare(&r->o, &r->ctx, &r->oa, &r->otrace, err) == -1)
		goto fail;
	return r;
fail:
	cli_route_free(r);
	return NULL;
}

const char *
cli_route_from(const struct cli_route *r)
{
	return r->o.from;
}

const char *
cli_route_address(const struct cli_route *r)
{
	const struct sk_account *a = r->o.acct;

	if (r->o.from != NULL && r->o.from[0] != '\0')
		return r->o.from;
	if (a != NULL && a->from != NULL)
		return a->from;
	if (a != NULL && a->user != NULL && strchr(a->user, '@') != NULL)
		return a->user;
	return NULL;
}

const char *
cli_route_account(const struct cli_route *r)
{
	return r->o.acct != NULL ? r->o.acct->name : NULL;
}

int
cli_route_check(struct cli_route *r, const char *const *rcpts, size_t n,
    bool *utf8, struct sk_error *err)
{
	struct send_opts *o = &r->o;
	size_t i;

	cli_mailboxes_clear(&o->to);
	for (i = 0; i < n; i++)
		if (cli_mailboxes_add(&o->to, rcpts[i], NULL) == -1)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
			    "out of memory");
	return check_opts(o, utf8, err);
}

struct sk_session *
cli_route_open(struct cli_route *r, const char *const *rcpts, size_t n,
    bool *utf8, struct sk_error *err)
{
	if (cli_route_check(r, rcpts, n, utf8, err) == -1)
		return NULL;
	return open_session(&r->o, &r->oa, &r->tr, err);
}

void
cli_route_hint(const struct cli_route *r, const struct sk_error *e)
{
	if (r == NULL)
		return;
	print_hint(&r->ctx, e);
	if (r->o.oauth || e->oauth_error == SK_OAUTH_ERR_NO_CLIENT)
		cli_oauth_advise(e, r->o.acct, r->ctx.preset);
}

void
cli_route_free(struct cli_route *r)
{
	if (r == NULL)
		return;
	cli_mailboxes_free(&r->o.to);
	cli_oauth_fini(&r->oa);
	sk_config_fini(&r->ctx.conf);
	if (r->ctx.db != NULL)
		sk_providers_free(r->ctx.db);
	free(r->account);
	free(r);
}
