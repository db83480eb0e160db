/*
 * smtpkit: accounts, from INI configuration files (inih).
 *
 *	[account work]
 *	provider = exmail
 *	user = me@corp.com
 *	from = me@corp.com
 *	password-cmd = pass show mail/work
 *
 * Files: /etc/smtpkit/config, then ~/.config/smtpkit/config (the later
 * wins for an account of the same name), or only the file given with
 * --config.  A file that holds a password must not be readable by group or
 * others.
 */
#ifndef SMTPKIT_CONFIG_H
#define SMTPKIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "client.h"
#include "conn.h"
#include "error.h"

struct sk_account {
	char *name;
	char *provider;		/* preset id, may carry ":region" */
	char *host;
	unsigned port;		/* 0: unset */
	enum sk_tls_mode tls;
	bool tls_set;
	enum sk_tls_version tls_min;
	char *user;
	char *from;
	char *password;		/* inline: only in a file private to its owner */
	char *password_file;
	char *password_env;
	char *password_cmd;
	enum sk_auth_mech auth;
	char *ca_file;
	int timeout;		/* seconds, 0: unset */
	char *origin;		/* "path:line" of its section */
};

struct sk_config {
	struct sk_account *accounts;
	size_t naccounts;
	char *default_account;	/* [smtpkit] default = NAME, or an account named "default" */
};

/*
 * Load the configuration: path alone when given, else the system file then
 * the user's ($XDG_CONFIG_HOME or ~/.config).  Missing default files are
 * fine; a missing explicit one is an error.  Errors: SK_ERR_CONFIG naming
 * file and line (unknown key, bad value, duplicate), or a password in a
 * file readable by others ("chmod 600 FILE").
 */
int sk_config_load(struct sk_config *cfg, const char *path,
    struct sk_error *err);

/* Parse one file's text (tests, fuzzing); origin names it in errors. */
int sk_config_parse(struct sk_config *cfg, const char *text, size_t len,
    const char *origin, struct sk_error *err);

void sk_config_fini(struct sk_config *cfg);

const struct sk_account *sk_config_find(const struct sk_config *cfg,
    const char *name);

/* The account whose from (or user) address equals addr, else NULL. */
const struct sk_account *sk_config_by_from(const struct sk_config *cfg,
    const char *addr);

/* The default account, or the only one, else NULL. */
const struct sk_account *sk_config_default(const struct sk_config *cfg);

/* The user's config file path ($XDG_CONFIG_HOME or ~/.config)/smtpkit/config. */
int sk_config_user_path(char *buf, size_t cap);

/*
 * Write account a into the file at path (created with mode 0600, its
 * directory 0700), replacing a section of the same name and keeping the
 * rest of the file; atomically (temporary file, fsync, rename).
 */
int sk_config_write_account(const char *path, const struct sk_account *a,
    struct sk_error *err);

#endif
