/*
 * smtpkit oauth: sign an account in with OAuth2, show its token's state,
 * sign it out; and the token handling that send and doctor share.
 *
 *	smtpkit oauth login  [--account NAME]	device flow or browser + PKCE
 *	smtpkit oauth status [--account NAME]	expiry, scope, endpoint
 *	smtpkit oauth logout [--account NAME]	delete the stored tokens
 *
 * A token is never printed: not by status, not in -v traces, not in
 * errors.  The lines a person acts on have fixed forms that scripts and
 * tests may read:
 *
 *	To sign in, open URL and enter the code CODE
 *	Open this URL in a browser: URL
 */
#include <sys/ioctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <qrencode.h>

#include "smtpkit/config.h"
#include "smtpkit/oauth.h"
#include "smtpkit/providers.h"
#include "cli.h"

/* ------------------------------------------------------------------ */
/* Shared with send and doctor */

int
cli_oauth_init(struct cli_oauth *o, const struct sk_account *a,
    const struct sk_provider *p, const struct sk_trace *trace,
    int timeout_ms, struct sk_error *err)
{
	memset(o, 0, sizeof(o[0]));
	o->acct = a;
	o->preset = p;
	if (sk_oauth_store_dir(o->store, sizeof(o->store)) == -1)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "no place for OAuth2 tokens: set HOME or XDG_STATE_HOME");
	if (sk_oauth_client_init(&o->client, a, p, err) == -1)
		return -1;
	if (trace != NULL)
		o->client.trace = *trace;
	o->client.timeout_ms = timeout_ms;
	o->ready = true;
	return 0;
}

int
cli_oauth_get(struct cli_oauth *o, const char *rejected, struct sk_error *err)
{
	struct sk_oauth_token t;
	bool refreshed = false;

	/* rejected may be o->token's: keep it until the new one is had */
	if (sk_oauth_store_get(o->store, o->acct->name, rejected,
	    sk_oauth_refresh_cb, &o->client, &t, &refreshed, err) == -1)
		return -1;
	sk_oauth_token_fini(&o->token);
	o->token = t;
	o->refreshed |= refreshed;
	return 0;
}

void
cli_oauth_fini(struct cli_oauth *o)
{
	if (o == NULL)
		return;
	sk_oauth_token_fini(&o->token);
	sk_oauth_client_fini(&o->client);
	memset(o, 0, sizeof(o[0]));
}

/* "2025-01-31 12:00:00 UTC" */
static void
utc_text(int64_t t, char *buf, size_t cap)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		(void)snprintf(buf, cap, "?");
}

/* "in 59 min", "3 min ago", "in 2 h 5 min" */
static void
relative_text(int64_t dt, char *buf, size_t cap)
{
	int64_t a = dt < 0 ? -dt : dt;
	const char *pre = dt < 0 ? "" : "in ", *post = dt < 0 ? " ago" : "";

	if (a < 120)
		(void)snprintf(buf, cap, "%s%lld s%s", pre, (long long)a, post);
	else if (a < 7200)
		(void)snprintf(buf, cap, "%s%lld min%s", pre,
		    (long long)(a / 60), post);
	else if (a < 3 * 86400)
		(void)snprintf(buf, cap, "%s%lld h %lld min%s", pre,
		    (long long)(a / 3600), (long long)(a % 3600 / 60), post);
	else
		(void)snprintf(buf, cap, "%s%lld days%s", pre,
		    (long long)(a / 86400), post);
}

void
cli_oauth_expiry(int64_t expires_at, char *buf, size_t cap)
{
	char when[40], rel[40];
	int64_t now = (int64_t)time(NULL);

	if (expires_at <= 0) {
		(void)snprintf(buf, cap, "expiry unknown");
		return;
	}
	utc_text(expires_at, when, sizeof(when));
	relative_text(expires_at - now, rel, sizeof(rel));
	(void)snprintf(buf, cap, "%s %s (%s)", expires_at > now ? "expires" :
	    "expired", when, rel);
}

/* Where the account lives, for "put this in ..." */
static const char *
config_file_of(const struct sk_account *a, char *buf, size_t cap)
{
	const char *colon;

	if (a != NULL && a->origin != NULL &&
	    (colon = strrchr(a->origin, ':')) != NULL &&
	    (size_t)(colon - a->origin) < cap) {
		memcpy(buf, a->origin, (size_t)(colon - a->origin));
		buf[colon - a->origin] = '\0';
		return buf;
	}
	return "~/.config/smtpkit/config";
}

void
cli_oauth_advise(const struct sk_error *err, const struct sk_account *a,
    const struct sk_provider *p)
{
	const char *name = a != NULL && a->name != NULL ? a->name : "NAME";
	char file[PATH_MAX];

	if (err == NULL)
		return;
	if (err->oauth_error == SK_OAUTH_ERR_NO_CLIENT) {
		fprintf(stderr, "\nOAuth2 needs an app registered with the "
		    "provider; smtpkit signs in as that app.\n");
		if (p != NULL && p->oauth.flow != SK_OAUTH_FLOW_NONE &&
		    p->oauth.help != NULL)
			fprintf(stderr, "%s: %s\n", p->name != NULL ? p->name :
			    p->id, p->oauth.help);
		else
			fprintf(stderr, "Register an app with your provider, "
			    "then also set oauth-flow (device or pkce), "
			    "oauth-device-endpoint or oauth-auth-endpoint, "
			    "oauth-token-endpoint and oauth-scope.\n");
		fprintf(stderr, "\nThen add to [account %s] in %s:\n"
		    "    oauth-client-id = YOUR-APPLICATION-CLIENT-ID\n", name,
		    config_file_of(a, file, sizeof(file)));
		if (p != NULL && p->oauth.secret_required)
			fprintf(stderr, "    oauth-client-secret-file = "
			    "~/.config/smtpkit/%s.client-secret\n", name);
		fprintf(stderr, "and sign in: smtpkit oauth login --account "
		    "%s\n", name);
		return;
	}
	if (sk_oauth_needs_login(err))
		fprintf(stderr, "%s: run 'smtpkit oauth login --account %s' "
		    "to sign in%s\n", cli_progname, name,
		    err->oauth_error == SK_OAUTH_ERR_NO_TOKEN ? "" : " again");
}

/* ------------------------------------------------------------------ */
/* smtpkit oauth */

enum {
	OPT_ACCOUNT = 256, OPT_CONFIG, OPT_JSON, OPT_NOQR, OPT_TIMEOUT,
	OPT_HELP
};

static const struct option long_opts[] = {
	{ "account", required_argument, NULL, OPT_ACCOUNT },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "no-qr", no_argument, NULL, OPT_NOQR },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

struct oauth_opts {
	const char *cmd;
	const char *account;
	const char *config;
	bool json;
	bool no_qr;
	int timeout_s;		/* login: the wait for the person */
	int verbose;
};

static void
oauth_usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpkit oauth login  [--account NAME] [--config FILE] [--no-qr]\n"
	    "                            [--timeout SECS] [-v]\n"
	    "       smtpkit oauth status [--account NAME] [--config FILE] [--json]\n"
	    "       smtpkit oauth logout [--account NAME] [--config FILE]\n"
	    "\n"
	    "login   sign the account in with OAuth2 and store its tokens: the device\n"
	    "        flow (a URL and a code to enter, Microsoft) or a browser sign-in\n"
	    "        that comes back to 127.0.0.1 (Google), as the provider preset says\n"
	    "status  the stored token's expiry, scope and token endpoint (never the token)\n"
	    "logout  delete the stored tokens\n"
	    "\n"
	    "The account needs oauth-client-id (the app registered with the provider);\n"
	    "see smtpkit-oauth(1).  Without --account: the default account.  Tokens\n"
	    "live in $XDG_STATE_HOME/smtpkit/tokens (~/.local/state/smtpkit/tokens).\n");
}

static int
parse_opts(int argc, char **argv, struct oauth_opts *o)
{
	char *end;
	long v;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "v", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_ACCOUNT:
			o->account = optarg;
			break;
		case OPT_CONFIG:
			o->config = optarg;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_NOQR:
			o->no_qr = true;
			break;
		case OPT_TIMEOUT:
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    v < 1 || v > 3600)
				return cli_usage_error("oauth", "--timeout %s: give "
				    "seconds (1-3600)", optarg);
			o->timeout_s = (int)v;
			break;
		case 'v':
			o->verbose++;
			break;
		case OPT_HELP:
			oauth_usage(stdout);
			return -2;
		default:
			if (optopt != 0 && optopt < 256)
				return cli_usage_error("oauth", "unknown option -%c",
				    optopt);
			return cli_usage_error("oauth", "unknown or incomplete "
			    "option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("oauth", "unexpected argument %s",
		    argv[optind]);
	return 0;
}

/* What every subcommand works on. */
struct oauth_run {
	struct sk_config conf;
	struct sk_providers *db;
	const struct sk_account *acct;
	const struct sk_provider *preset;
	char store[PATH_MAX];
	char path[PATH_MAX];
};

static int
run_init(struct oauth_run *r, const struct oauth_opts *o,
    struct sk_error *err)
{
	const struct sk_provider_region *region = NULL;

	memset(r, 0, sizeof(*r));
	if (sk_config_load(&r->conf, o->config, err) == -1)
		return -1;
	if (o->account != NULL)
		r->acct = sk_config_find(&r->conf, o->account);
	else
		r->acct = sk_config_default(&r->conf);
	if (r->acct == NULL && o->account != NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "no [account %s] in the configuration (smtpkit setup "
		    "makes one)", o->account);
	if (r->acct == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "which account? Give --account NAME (there is no default "
		    "account)");
	if ((r->db = cli_providers_load(err)) == NULL)
		return -1;
	if (r->acct->provider != NULL) {
		r->preset = sk_providers_find(r->db, r->acct->provider,
		    &region);
		if (r->preset == NULL)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    "account %s (%s): provider = %s is not a known "
			    "preset", r->acct->name, r->acct->origin,
			    r->acct->provider);
	} else if (r->acct->host != NULL)
		r->preset = cli_provider_by_host(r->db, r->acct->host,
		    &region);
	if (sk_oauth_store_dir(r->store, sizeof(r->store)) == -1 ||
	    sk_oauth_store_path(r->store, r->acct->name, r->path,
	    sizeof(r->path)) == -1)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "no place for the tokens of account %s: set HOME or "
		    "XDG_STATE_HOME", r->acct->name);
	return 0;
}

static void
run_fini(struct oauth_run *r)
{
	sk_config_fini(&r->conf);
	sk_providers_free(r->db);
}

/* ---- login ---- */

struct prompt_ctx {
	bool no_qr;
	bool printed;
};

static int
terminal_columns(int fd)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 0;
}

/*
 * A QR code of text on a terminal, two modules a character cell (upper
 * and lower half blocks), with the quiet zone of 4 modules that readers
 * need.  With colour allowed, dark modules are drawn black on white,
 * which reads on any terminal; without, light modules are the foreground,
 * as on the usual dark terminal.
 */
static void
print_qr(const char *text)
{
	static const char *const cells[4] = { " ", "\u2580", "\u2584",
	    "\u2588" };
	const int quiet = 4;
	bool color = cli_color_ok(STDOUT_FILENO);
	QRcode *qr;
	int w, x, y, top, bot, cols;

	if ((qr = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8,
	    1)) == NULL)
		return;
	w = qr->width + 2 * quiet;
	cols = terminal_columns(STDOUT_FILENO);
	if (cols < w + 2 || qr->width > 80) {
		QRcode_free(qr);
		return;
	}
	for (y = 0; y < w; y += 2) {
		fputs(color ? "\033[30;47m" : "", stdout);
		for (x = 0; x < w; x++) {
			top = y - quiet >= 0 && y - quiet < qr->width &&
			    x - quiet >= 0 && x - quiet < qr->width &&
			    (qr->data[(y - quiet) * qr->width + x - quiet] & 1);
			bot = y + 1 - quiet >= 0 && y + 1 - quiet < qr->width &&
			    x - quiet >= 0 && x - quiet < qr->width &&
			    (qr->data[(y + 1 - quiet) * qr->width + x - quiet] &
			    1);
			/* the foreground draws dark (colour) or light */
			if (!color) {
				top = !top;
				bot = !bot;
			}
			fputs(cells[top | bot << 1], stdout);
		}
		fputs(color ? "\033[0m\n" : "\n", stdout);
	}
	QRcode_free(qr);
}

/* Start $BROWSER on url without waiting for it: the first command of the
 * colon-separated list, in the background, away from our terminal. */
static void
start_browser(const char *url)
{
	const char *b = getenv("BROWSER");
	char cmd[512];
	size_t n;
	pid_t pid;
	int fd, st;

	if (b == NULL || b[0] == '\0')
		return;
	n = strcspn(b, ":");
	if (n == 0 || n >= sizeof(cmd) - 8)
		return;
	memcpy(cmd, b, n);
	memcpy(cmd + n, " \"$1\"", 6);
	if ((pid = fork()) == -1)
		return;
	if (pid == 0) {
		/* A grandchild, so that no zombie waits on us. */
		if (fork() != 0)
			_exit(0);
		if ((fd = open("/dev/null", O_RDWR)) != -1) {
			(void)dup2(fd, STDIN_FILENO);
			(void)dup2(fd, STDOUT_FILENO);
			(void)dup2(fd, STDERR_FILENO);
		}
		(void)setsid();
		execl("/bin/sh", "sh", "-c", cmd, "sh", url, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
}

static void
on_prompt(void *arg, const struct sk_oauth_prompt *p)
{
	struct prompt_ctx *c = arg;
	int mins;

	c->printed = true;
	if (p->flow == SK_OAUTH_FLOW_DEVICE) {
		printf("To sign in, open %s and enter the code %s\n", p->url,
		    p->user_code);
		if (p->url_complete != NULL)
			printf("Or open %s (the code is filled in).\n",
			    p->url_complete);
		if (!c->no_qr && isatty(STDOUT_FILENO)) {
			fflush(stdout);
			print_qr(p->url_complete != NULL ? p->url_complete :
			    p->url);
		}
		mins = (p->expires_in + 59) / 60;
		if (p->expires_in < 120)
			printf("The code is good for %d seconds; waiting for "
			    "the sign-in...\n", p->expires_in);
		else
			printf("The code is good for %d minutes; waiting for "
			    "the sign-in...\n", mins);
	} else {
		printf("Open this URL in a browser: %s\n", p->url);
		printf("Sign in there; the browser then comes back to %s. "
		    "Waiting up to %d minute%s...\n", p->redirect_uri != NULL ?
		    p->redirect_uri : "this machine", (p->expires_in + 59) / 60,
		    (p->expires_in + 59) / 60 == 1 ? "" : "s");
	}
	/* The person (or a script) acts on these lines now. */
	fflush(stdout);
	if (p->flow == SK_OAUTH_FLOW_PKCE)
		start_browser(p->url);
}

int
cli_oauth_login(const struct sk_account *a, const struct sk_provider *p,
    int timeout_s, bool no_qr, int verbose, struct sk_oauth_token *out,
    enum sk_auth_mech *mech, struct sk_error *err)
{
	struct cli_oauth co;
	struct cli_trace tr;
	struct prompt_ctx pc;
	struct sk_trace trace = { NULL, NULL };

	memset(out, 0, sizeof(*out));
	if (verbose > 0) {
		cli_trace_init(&tr, verbose);
		trace.fn = cli_trace_fn;
		trace.arg = &tr;
	}
	if (cli_oauth_init(&co, a, p, &trace, 0, err) == -1)
		return -1;
	co.client.login_timeout_s = timeout_s;
	memset(&pc, 0, sizeof(pc));
	pc.no_qr = no_qr;
	if (verbose > 0)
		fprintf(stderr, "%s: oauth: account %s, %s flow, token "
		    "endpoint %s\n", cli_progname, a->name != NULL ? a->name :
		    "(new)", sk_oauth_flow_name(co.client.flow),
		    co.client.token_endpoint);
	if (mech != NULL)
		*mech = co.client.mech;
	if (sk_oauth_login(&co.client, on_prompt, &pc, out, err) == -1) {
		cli_oauth_fini(&co);
		return -1;
	}
	cli_oauth_fini(&co);
	return 0;
}

static int
do_login(const struct oauth_opts *o, struct oauth_run *r,
    struct sk_error *err)
{
	struct sk_oauth_token t;
	enum sk_auth_mech mech = SK_AUTH_XOAUTH2;
	char when[96];

	if (cli_oauth_login(r->acct, r->preset, o->timeout_s, o->no_qr,
	    o->verbose, &t, &mech, err) == -1)
		return -1;
	if (sk_oauth_store_save(r->store, r->acct->name, &t, err) == -1) {
		sk_oauth_token_fini(&t);
		return -1;
	}
	cli_oauth_expiry(t.expires_at, when, sizeof(when));
	printf("Signed in: the tokens of account %s are stored in %s.\n"
	    "Access token: %s; %s.\n", r->acct->name, r->path, when,
	    t.refresh_token != NULL ? "smtpkit renews it with the refresh "
	    "token" : "no refresh token was issued, so sign in again when "
	    "it expires");
	if (!sk_auth_mech_is_token(r->acct->auth) && r->acct->oauth_client_id
	    != NULL && (r->preset == NULL ||
	    r->preset->credential != SK_CRED_OAUTH2))
		printf("Note: account %s has no auth = %s line; smtpkit uses "
		    "the token for it since it has an oauth-client-id.\n",
		    r->acct->name, sk_auth_mech_name(mech));
	sk_oauth_token_fini(&t);
	return 0;
}

/* ---- status ---- */

static int
do_status(const struct oauth_opts *o, struct oauth_run *r,
    struct sk_error *err)
{
	struct sk_oauth_token t;
	struct sk_error lerr;
	const struct sk_account *a = r->acct;
	const struct sk_provider_oauth *po = r->preset != NULL ?
	    &r->preset->oauth : NULL;
	enum sk_oauth_flow flow = a->oauth_flow != SK_OAUTH_FLOW_NONE ?
	    a->oauth_flow : po != NULL ? po->flow : SK_OAUTH_FLOW_NONE;
	int64_t now = (int64_t)time(NULL);
	char when[96];
	bool have;
	cJSON *j;
	char *s;
	int rc = EXIT_OK;

	have = sk_oauth_store_load(r->store, a->name, &t, &lerr) == 0;
	if (!have && lerr.oauth_error != SK_OAUTH_ERR_NO_TOKEN) {
		*err = lerr;
		return -1;
	}
	if (!have || (!sk_oauth_token_fresh(&t, now, 0) &&
	    t.refresh_token == NULL))
		rc = EXIT_NOPERM;
	if (o->json) {
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "account", a->name);
		cJSON_AddStringToObject(j, "flow", sk_oauth_flow_name(flow));
		if (a->oauth_client_id != NULL)
			cJSON_AddStringToObject(j, "client_id",
			    a->oauth_client_id);
		else
			cJSON_AddNullToObject(j, "client_id");
		cJSON_AddStringToObject(j, "token_file", r->path);
		cJSON_AddBoolToObject(j, "signed_in", have);
		if (have) {
			cJSON_AddNumberToObject(j, "expires_at",
			    (double)t.expires_at);
			cJSON_AddBoolToObject(j, "expired", t.expires_at > 0 &&
			    t.expires_at <= now);
			cJSON_AddBoolToObject(j, "refresh_token",
			    t.refresh_token != NULL);
			if (t.scope != NULL)
				cJSON_AddStringToObject(j, "scope", t.scope);
			if (t.token_endpoint != NULL)
				cJSON_AddStringToObject(j, "token_endpoint",
				    t.token_endpoint);
		}
		if ((s = cJSON_PrintUnformatted(j)) != NULL) {
			puts(s);
			free(s);
		}
		cJSON_Delete(j);
		sk_oauth_token_fini(&t);
		return rc;
	}
	printf("account         %s (%s)\n", a->name, a->origin);
	if (r->preset != NULL)
		printf("provider        %s\n", r->preset->name != NULL ?
		    r->preset->name : r->preset->id);
	printf("flow            %s\n", flow == SK_OAUTH_FLOW_DEVICE ?
	    "device code (RFC 8628)" : flow == SK_OAUTH_FLOW_PKCE ?
	    "browser sign-in with PKCE (RFC 7636)" : "none configured");
	printf("client id       %s\n", a->oauth_client_id != NULL ?
	    a->oauth_client_id : "none: set oauth-client-id in the account");
	printf("token file      %s\n", r->path);
	if (!have) {
		printf("token           none stored: run 'smtpkit oauth login "
		    "--account %s'\n", a->name);
		return rc;
	}
	cli_oauth_expiry(t.expires_at, when, sizeof(when));
	printf("access token    %s\n", when);
	printf("refresh token   %s\n", t.refresh_token != NULL ?
	    "stored: the access token is renewed when it is due" :
	    "none: sign in again when the access token expires");
	printf("scope           %s\n", t.scope != NULL ? t.scope : "unknown");
	printf("token endpoint  %s\n", t.token_endpoint != NULL ?
	    t.token_endpoint : "unknown");
	sk_oauth_token_fini(&t);
	return rc;
}

/* ---- logout ---- */

static int
do_logout(struct oauth_run *r, struct sk_error *err)
{
	bool existed;

	if (sk_oauth_store_delete(r->store, r->acct->name, &existed, err) ==
	    -1)
		return -1;
	if (existed)
		printf("Removed the OAuth2 tokens of account %s (%s).\n"
		    "The provider still lists the app's access: revoke it in "
		    "the account's security settings to end it there too.\n",
		    r->acct->name, r->path);
	else
		printf("No OAuth2 tokens were stored for account %s.\n",
		    r->acct->name);
	return 0;
}

int
cmd_oauth(int argc, char **argv)
{
	struct oauth_opts o;
	struct oauth_run r;
	struct sk_error err;
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	sk_error_clear(&err);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		oauth_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	o.cmd = argv[1];
	if (strcmp(o.cmd, "login") != 0 && strcmp(o.cmd, "status") != 0 &&
	    strcmp(o.cmd, "logout") != 0)
		return cli_usage_error("oauth", "unknown subcommand '%s' (login, "
		    "status or logout)", o.cmd);
	if ((rc = parse_opts(argc - 1, argv + 1, &o)) != 0)
		return rc == -2 ? EXIT_OK : rc;
	if (run_init(&r, &o, &err) == -1)
		goto fail;
	if (strcmp(o.cmd, "login") == 0)
		rc = do_login(&o, &r, &err);
	else if (strcmp(o.cmd, "status") == 0)
		rc = do_status(&o, &r, &err);
	else
		rc = do_logout(&r, &err);
	if (rc == -1)
		goto fail;
	fflush(stdout);
	run_fini(&r);
	return rc;
fail:
	fflush(stdout);
	cli_print_error(&err);
	cli_oauth_advise(&err, r.acct, r.preset);
	rc = cli_exit_code(&err);
	run_fini(&r);
	return rc;
}
