/* smtpkit command line: what the subcommands share. */
#ifndef SMTPKIT_CLI_H
#define SMTPKIT_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "smtpkit/doctor.h"
#include "smtpkit/error.h"
#include "smtpkit/providers.h"
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

/* "smtpkit: <message>" on stderr. */
void cli_print_error(const struct sk_error *err);

int cmd_send(int argc, char **argv);
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
