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
 * --config.  A file that holds a password (or an OAuth2 client secret) must
 * not be readable by group or others.
 */
#ifndef SMTPKIT_CONFIG_H
#define SMTPKIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "client.h"
#include "conn.h"
#include "error.h"
#include "providers.h"

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
	enum sk_auth_mech auth;	/* XOAUTH2 / OAUTHBEARER without a password
				   source: a token smtpkit keeps (oauth.h) */
	char *ca_file;
	int timeout;		/* seconds, 0: unset */
	char *origin;		/* "path:line" of its section */

	/* OAuth2: the app smtpkit signs in as, and what replaces the
	 * preset's OAuth2 data (tests point the endpoints at 127.0.0.1). */
	char *oauth_client_id;
	char *oauth_client_secret;	/* inline: as password */
	char *oauth_client_secret_file;
	enum sk_oauth_flow oauth_flow;	/* SK_OAUTH_FLOW_NONE: the preset's */
	char *oauth_device_endpoint;
	char *oauth_auth_endpoint;
	char *oauth_token_endpoint;
	char *oauth_scope;
};

struct sk_config {
	struct sk_account *accounts;
	size_t naccounts;
	char *default_account;	/* [smtpkit] default = NAME; NULL when not set */
	char *default_origin;	/* "path:line" of that setting */
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

/*
 * Parse one file's text (tests, fuzzing) into cfg, which is zeroed or holds
 * earlier files: an account of the same name is replaced whole.  origin
 * names the text in errors ("origin:line: what is wrong").  On error cfg is
 * left as it was.  A line holds at most 198 characters (inih's buffer).
 */
int sk_config_parse(struct sk_config *cfg, const char *text, size_t len,
    const char *origin, struct sk_error *err);

void sk_config_fini(struct sk_config *cfg);

const struct sk_account *sk_config_find(const struct sk_config *cfg,
    const char *name);

/*
 * The account whose from address equals addr (the domain compared without
 * case), else one without from whose user equals it, else NULL.  The
 * default account is preferred, then the one defined last (the user's file
 * comes after the system's).
 */
const struct sk_account *sk_config_by_from(const struct sk_config *cfg,
    const char *addr);

/*
 * The default account: the one [smtpkit] default names (NULL if there is
 * no such account), else the only one, else the one named "default", else
 * NULL.
 */
const struct sk_account *sk_config_default(const struct sk_config *cfg);

/* The user's config file path ($XDG_CONFIG_HOME or ~/.config)/smtpkit/config;
 * -1 when it does not fit in cap or there is no home directory. */
int sk_config_user_path(char *buf, size_t cap);

/*
 * A path as written in a config file (password-file, ca-file: absolute or
 * "~/..."), with "~/" replaced by the home directory, into buf.  -1 when
 * it does not fit or there is no home directory.
 */
int sk_config_expand_path(const char *path, char *buf, size_t cap);

/*
 * Write account a into the file at path (created with mode 0600, missing
 * directories 0700), updating the section of the same name in place (its
 * comments stay; keys a does not set go) or appending one, and keeping the
 * rest of the file; atomically (temporary file, fsync, rename, fsync of
 * the directory).  A symbolic link is followed.  Errors: SK_ERR_CONFIG
 * when a value cannot be written so that it reads back the same (control
 * characters, surrounding white space, a ';' after a space), or with
 * sys_errno when a file or directory cannot be made.
 */
int sk_config_write_account(const char *path, const struct sk_account *a,
    struct sk_error *err);

#endif
