/* smtpkit command line: what the subcommands share. */
#ifndef SMTPKIT_CLI_H
#define SMTPKIT_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "smtpkit/doctor.h"
#include "smtpkit/error.h"
#include "smtpkit/oauth.h"
#include "smtpkit/providers.h"
#include "smtpkit/session.h"
#include "smtpkit/trace.h"

/* sysexits.h, spelled out so the mapping below reads as a table. */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 64,
	EXIT_DATAERR = 65,
	EXIT_NOINPUT = 66,
	EXIT_NOHOST = 68,
	EXIT_UNAVAILABLE = 69,
	EXIT_SOFTWARE = 70,
	EXIT_OSERR = 71,
	EXIT_IOERR = 74,
	EXIT_TEMPFAIL = 75,
	EXIT_PROTOCOL = 76,
	EXIT_NOPERM = 77,
	EXIT_CONFIG = 78
};

/* The one place an error becomes an exit status. */
int cli_exit_code(const struct sk_error *err);

/* ... and a doctor's verdict: 0 for OK, else the sysexits code that fits. */
int cli_verdict_exit_code(enum sk_verdict v);

/* Where a password or token comes from; at most one is set. */
struct password_src {
	const char *file;
	const char *env;
	const char *cmd;
};

/*
 * Read the secret from its source into a malloc'd string (owned: wipe
 * and free with cli_secret_free).  Errors: SK_ERR_CONFIG (no source,
 * variable unset, command failed, empty) or SK_ERR_LOCAL with sys_errno
 * (unreadable file).  The secret never appears in a message.
 */
int cli_password(const struct password_src *src, char **out,
    struct sk_error *err);
void cli_secret_free(char *secret);

/* Transcript printer for -v: timestamps, to stderr. */
struct cli_trace {
	long long start_ms;
	int level;		/* 1: lines, 2: also state changes */
};
void cli_trace_init(struct cli_trace *t, int level);
sk_trace_fn cli_trace_fn;

/*
 * "smtpkit: CMD: <what>" and where to read the options, on stderr;
 * returns EXIT_USAGE.
 */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A whole decimal number within [min, max]; -1 for anything else. */
int cli_parse_number(const char *s, long min, long max, long *out);

/*
 * The values of options several commands share: --port (1-65535),
 * --timeout (seconds, 1-3600), --auth (a mechanism's name).  Each returns
 * 0 with the value set, or EXIT_USAGE after cli_usage_error said why.
 */
int cli_opt_port(const char *cmd, const char *arg, unsigned *port);
int cli_opt_timeout(const char *cmd, const char *arg, int *secs);
int cli_opt_auth(const char *cmd, const char *arg, enum sk_auth_mech *mech);

/* "smtpkit: <message>" on stderr. */
void cli_print_error(const struct sk_error *err);

/*
 * send.c, for sendmail.c: where a message goes and as whom, by the rules
 * of 'smtpkit send' (account, provider preset, defaults) but always from
 * an account.
 */
struct cli_route_req {
	const char *config;	/* -C FILE: that file alone; NULL: the usual */
	const char *account;	/* by name; NULL: by from, else header_from,
				   else the default account */
	const char *from;	/* envelope sender asked for (-f); NULL: the
				   account's */
	const char *header_from; /* the From header's address, or NULL */
	int verbose;
};
struct cli_route;

/* Owned: cli_route_free.  NULL with err: SK_ERR_CONFIG when there is no
 * account to use or no sender address, or what reading the config gave. */
struct cli_route *cli_route_new(const struct cli_route_req *req,
    struct sk_error *err);
/* The envelope sender (-f, else the account's, else header_from) and the
 * account's name; borrowed. */
const char *cli_route_from(const struct cli_route *r);
const char *cli_route_account(const struct cli_route *r);
/* The address the sender goes by, for a From header: the envelope sender
 * unless it is the null sender, else the account's; NULL if none. */
const char *cli_route_address(const struct cli_route *r);
/* Check the envelope as send does, read the password, connect: a session
 * ready for the message (owned), or NULL with err.  *utf8: an address
 * needs SMTPUTF8.  cli_route_check: the check alone (0 or -1 with err),
 * for a message that goes over a session already open. */
struct sk_session *cli_route_open(struct cli_route *r,
    const char *const *rcpts, size_t n, bool *utf8, struct sk_error *err);
int cli_route_check(struct cli_route *r, const char *const *rcpts, size_t n,
    bool *utf8, struct sk_error *err);
/* What the preset knows about a refusal, on stderr (as send prints it). */
void cli_route_hint(const struct cli_route *r, const struct sk_error *e);
void cli_route_free(struct cli_route *r);

/*
 * oauth.c, for send and doctor: the OAuth2 token of an account that
 * sk_oauth_account_managed() says smtpkit keeps.  init: the client (an
 * error with oauth_error SK_OAUTH_ERR_NO_CLIENT when the account has no
 * oauth-client-id) and the store; get: o->token, refreshed when due or
 * when it is rejected (the token the server just refused), under the
 * account's lock.  advise: what to do after such an error, on stderr
 * (register an app, or run smtpkit oauth login).  expiry: "expires
 * 2025-01-31 12:00:00 UTC (in 59 min)".
 */
struct cli_oauth {
	bool ready;
	const struct sk_account *acct;
	const struct sk_provider *preset;
	struct sk_oauth_client client;
	char store[4096];
	struct sk_oauth_token token;
	bool refreshed;
};
int cli_oauth_init(struct cli_oauth *o, const struct sk_account *a,
    const struct sk_provider *p, const struct sk_trace *trace,
    int timeout_ms, struct sk_error *err);
int cli_oauth_get(struct cli_oauth *o, const char *rejected,
    struct sk_error *err);
void cli_oauth_fini(struct cli_oauth *o);
void cli_oauth_advise(const struct sk_error *err, const struct sk_account *a,
    const struct sk_provider *p);
void cli_oauth_expiry(int64_t expires_at, char *buf, size_t cap);

/*
 * Sign account a (its preset p may be NULL) in with OAuth2, as 'smtpkit
 * oauth login' does: what the person must do on stdout, then the wait.
 * The tokens go into *out (owned: sk_oauth_token_fini), not to the store;
 * *mech (may be NULL) gets the mechanism they are for.  timeout_s: the
 * wait for a browser (0: the default).  a need not be in a config file
 * yet (setup signs in before it saves).  Errors: those of
 * sk_oauth_client_init and sk_oauth_login.
 */
int cli_oauth_login(const struct sk_account *a, const struct sk_provider *p,
    int timeout_s, bool no_qr, int verbose, struct sk_oauth_token *out,
    enum sk_auth_mech *mech, struct sk_error *err);

/*
 * compose.c, for send: what the command line gives for a message, turned
 * into what sk_mime_compose takes.
 */
struct cli_mailboxes {
	char **addr;		/* addr-specs (owned) */
	char **name;		/* display names, "" for none (owned) */
	size_t n, cap;
};

/*
 * Add the mailboxes of text, an RFC 5322 address list given with flag
 * ("--to"): "Ann <a@x>, \"Doe, J\" <j@y>, c@z", comments and groups as
 * in a header, a group giving its members.  Errors, naming flag and
 * text: SK_ERR_USAGE for a syntax error, an address without a domain or
 * a display name with a line break; SK_ERR_LOCAL when memory fails.
 * Mailboxes before the one in error may have been added.
 */
int cli_mailboxes_parse(struct cli_mailboxes *l, const char *flag,
    const char *text, struct sk_error *err);
/* Add one mailbox as it is; name NULL for none.  -1 when memory fails. */
int cli_mailboxes_add(struct cli_mailboxes *l, const char *addr,
    const char *name);
/* Empty the list, which stays usable; or free what it holds. */
void cli_mailboxes_clear(struct cli_mailboxes *l);
void cli_mailboxes_free(struct cli_mailboxes *l);

/*
 * One mailbox ("Name <addr>" or addr), as --from takes it: *addr and
 * *name ("" for none) are owned.  Errors as cli_mailboxes_parse, and
 * SK_ERR_USAGE for none, several or a group.
 */
int cli_mailbox_parse(const char *flag, const char *text, char **addr,
    char **name, struct sk_error *err);

/* A message to compose; every pointer borrowed. */
struct cli_compose {
	const char *from;		/* addr-spec */
	const char *from_name;		/* NULL or "" for none */
	const struct cli_mailboxes *to, *cc, *reply_to;	/* may be NULL */
	const char *subject;		/* NULL for none */
	const char *text, *text_file;	/* at most one; file "-": stdin */
	const char *html, *html_file;	/* at most one; file "-": stdin */
	char *const *attach;		/* "FILE[;type=T][;name=N]" */
	size_t nattach;
	char *const *inl;		/* "FILE[;type=T][;name=N][;cid=C]" */
	size_t ninl;
	char *const *headers;		/* "Name: value" */
	size_t nheaders;
};

/*
 * Compose the message with sk_mime_compose into an unnamed temporary file
 * (mode 0600, in $TMPDIR or /tmp) and measure it as --raw measures a
 * ready one: src->fd (owned) at its start, src->env.size, body_8bit and
 * name set; the envelope's addresses are left to the caller.  In
 * "FILE;type=T;name=N;cid=C" only known keys at the end are split off, so
 * a ';' in a file name stays part of it.  Errors: SK_ERR_USAGE for a
 * malformed --attach, --inline or --header, or what reading --text-file
 * or --html-file (SK_ERR_LOCAL with sys_errno), sk_mime_compose,
 * sk_scan_check or making the temporary file gave.
 */
int cli_compose(const struct cli_compose *c, struct sk_source *src,
    struct sk_error *err);

int cmd_oauth(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_sendmail(int argc, char **argv);
int cmd_providers(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_setup(int argc, char **argv);

/*
 * doctor.c, shared with setup.c.  cli_i18n_init: locale and the "smtpkit"
 * message catalog (build tree or LOCALEDIR); lang is "en", "zh" or NULL
 * for the environment's; returns the language chosen, "en" or "zh".
 * cli_lang_arg: the value of --lang in argv, before option parsing.
 */
const char *cli_i18n_init(const char *lang);
const char *cli_lang_arg(int argc, char **argv);
struct sk_providers *cli_providers_load(struct sk_error *err);
const struct sk_provider *cli_provider_by_host(const struct sk_providers *db,
    const char *host, const struct sk_provider_region **region);
int cli_tls_arg(const char *s, enum sk_tls_mode *mode, bool *tls_auto);
bool cli_color_ok(int fd);
void cli_doctor_print(const struct sk_doctor_report *r, const char *title,
    int verbose);

extern const char *cli_progname;

#endif
