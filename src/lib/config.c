/*
 * smtpkit: accounts, from INI configuration files.
 *
 * inih does the INI syntax; this file feeds it one line at a time through
 * its own reader, because the packaged inih neither reports line numbers
 * to the handler nor announces sections.  The reader counts lines, tracks
 * sections, strips indentation (so that an indented key is never taken for
 * a continuation of the previous value) and refuses lines too long for
 * inih's buffer instead of letting it split them silently.
 *
 * Writing an account edits the file in place: the account's section is
 * updated key by key (its comments stay), or appended, and the new file
 * replaces the old one atomically with mode 0600.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "smtpkit/config.h"
#include "file.h"
#include "sbuf.h"
#include "smtpkit/message.h"

#define SYSTEM_CONFIG	"/etc/smtpkit/config"
#define CONFIG_MAX	((size_t)1024 * 1024)	/* a config file, not a database */
#define NAME_MAX_LEN	64			/* account names */
#define ORIGIN_MAX	(PATH_MAX + 16)

enum cfg_key {
	K_PROVIDER = 0,
	K_HOST,
	K_PORT,
	K_TLS,
	K_TLS_MIN,
	K_USER,
	K_FROM,
	K_PASSWORD,
	K_PASSWORD_FILE,
	K_PASSWORD_ENV,
	K_PASSWORD_CMD,
	K_AUTH,
	K_CA_FILE,
	K_TIMEOUT,
	K_OAUTH_CLIENT_ID,
	K_OAUTH_CLIENT_SECRET,
	K_OAUTH_CLIENT_SECRET_FILE,
	K_OAUTH_FLOW,
	K_OAUTH_DEVICE_ENDPOINT,
	K_OAUTH_AUTH_ENDPOINT,
	K_OAUTH_TOKEN_ENDPOINT,
	K_OAUTH_SCOPE,
	K__COUNT
};

/* In the order they are written. */
static const char *const key_names[K__COUNT] = {
	[K_PROVIDER] = "provider",
	[K_HOST] = "host",
	[K_PORT] = "port",
	[K_TLS] = "tls",
	[K_TLS_MIN] = "tls-min",
	[K_USER] = "user",
	[K_FROM] = "from",
	[K_PASSWORD] = "password",
	[K_PASSWORD_FILE] = "password-file",
	[K_PASSWORD_ENV] = "password-env",
	[K_PASSWORD_CMD] = "password-cmd",
	[K_AUTH] = "auth",
	[K_CA_FILE] = "ca-file",
	[K_TIMEOUT] = "timeout",
	[K_OAUTH_CLIENT_ID] = "oauth-client-id",
	[K_OAUTH_CLIENT_SECRET] = "oauth-client-secret",
	[K_OAUTH_CLIENT_SECRET_FILE] = "oauth-client-secret-file",
	[K_OAUTH_FLOW] = "oauth-flow",
	[K_OAUTH_DEVICE_ENDPOINT] = "oauth-device-endpoint",
	[K_OAUTH_AUTH_ENDPOINT] = "oauth-auth-endpoint",
	[K_OAUTH_TOKEN_ENDPOINT] = "oauth-token-endpoint",
	[K_OAUTH_SCOPE] = "oauth-scope",
};

enum section {
	SEC_NONE = 0,	/* before the first section header */
	SEC_ACCOUNT,
	SEC_SMTPKIT,
	SEC_BAD		/* reported already; its keys are skipped */
};

struct parser {
	const char *text;
	size_t len, pos;
	int line;
	const char *origin;
	struct sk_config *cfg;		/* this file's accounts alone */
	enum section sec;
	struct sk_account *acct;	/* SEC_ACCOUNT: the one being filled */
	int seen[K__COUNT];		/* line of each key in the section, 0 */
	int smtpkit_line;		/* of the [smtpkit] header, 0 */
	int default_line;
	bool has_password;		/* a password key, in any section */
	bool failed;
	struct sk_error *err;
};

static void
wipe(void *p, size_t n)
{
	if (p != NULL)
		explicit_bzero(p, n);
}

static void
free_secret(char *s)
{
	if (s != NULL) {
		wipe(s, strlen(s));
		free(s);
	}
}

/*
 * Checking values
 */

static bool
is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
	    c == '@' || c == '+';
}

static bool
valid_name(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!name_char(s[i]))
			return false;
	return i > 0 && i <= NAME_MAX_LEN;
}

/* "qq", "ses:eu-west-1" */
static bool
valid_provider(const char *s)
{
	size_t i, colons = 0;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == ':') {
			if (i == 0 || s[i + 1] == '\0' || ++colons > 1)
				return false;
		} else if (!name_char(s[i]) || s[i] == '@' || s[i] == '+')
			return false;
	}
	return i > 0 && i <= NAME_MAX_LEN;
}

static bool
valid_env_name(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' ||
		    (i > 0 && s[i] >= '0' && s[i] <= '9')))
			return false;
	return i > 0;
}

/* No control characters but TAB (a CR would survive inih's parsing). */
static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return true;
	return false;
}

/* A path in a config file does not depend on the working directory. */
static bool
valid_path(const char *s)
{
	return s[0] == '/' || (s[0] == '~' && s[1] == '/');
}

static int
parse_uint(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void
account_free(struct sk_account *a)
{
	free(a->name);
	free(a->provider);
	free(a->host);
	free(a->user);
	free(a->from);
	free_secret(a->password);
	free(a->password_file);
	free(a->password_env);
	free(a->password_cmd);
	free(a->ca_file);
	free(a->origin);
	free(a->oauth_client_id);
	free_secret(a->oauth_client_secret);
	free(a->oauth_client_secret_file);
	free(a->oauth_device_endpoint);
	free(a->oauth_auth_endpoint);
	free(a->oauth_token_endpoint);
	free(a->oauth_scope);
	memset(a, 0, sizeof(*a));
}

/*
 * Parsing
 */

static int
parse_fail(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Only the first error is reported: the later ones may be its echoes. */
static int
parse_fail(struct parser *p, const char *fmt, ...)
{
	char what[SK_ERROR_MESSAGE_MAX];
	va_list ap;

	if (!p->failed) {
		va_start(ap, fmt);
		(void)vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		p->failed = true;
		sk_error_set(p->err, SK_STAGE_LOCAL, SK_ERR_CONFIG, "%s:%d: %s",
		    p->origin, p->line, what);
	}
	return 0;
}

static int
parse_oom(struct parser *p)
{
	if (!p->failed) {
		p->failed = true;
		sk_error_set(p->err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	return 0;
}

static struct sk_account *
find_in(struct sk_account *v, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

/* Line of an account's section, from its origin "path:line". */
static int
origin_line(const struct sk_account *a)
{
	const char *c = a->origin != NULL ? strrchr(a->origin, ':') : NULL;
	long v;

	return c != NULL && parse_uint(c + 1, 1, INT_MAX, &v) == 0 ? (int)v :
	    0;
}

static void
begin_account(struct parser *p, const char *name)
{
	struct sk_config *c = p->cfg;
	struct sk_account *prev, *nv;
	char origin[ORIGIN_MAX];

	if (!valid_name(name)) {
		p->sec = SEC_BAD;
		parse_fail(p, "[account %.*s]: an account name is 1 to %d "
		    "letters, digits and . _ - @ +", NAME_MAX_LEN + 1, name,
		    NAME_MAX_LEN);
		return;
	}
	if ((prev = find_in(c->accounts, c->naccounts, name)) != NULL) {
		p->sec = SEC_BAD;
		parse_fail(p, "[account %s] appears twice (first at line %d)",
		    name, origin_line(prev));
		return;
	}
	if ((nv = realloc(c->accounts, (c->naccounts + 1) *
	    sizeof(*nv))) == NULL) {
		p->sec = SEC_BAD;
		parse_oom(p);
		return;
	}
	c->accounts = nv;
	p->acct = &nv[c->naccounts];
	memset(p->acct, 0, sizeof(*p->acct));
	(void)snprintf(origin, sizeof(origin), "%s:%d", p->origin, p->line);
	p->acct->name = strdup(name);
	p->acct->origin = strdup(origin);
	c->naccounts++;
	if (p->acct->name == NULL || p->acct->origin == NULL) {
		p->sec = SEC_BAD;
		parse_oom(p);
		return;
	}
	p->sec = SEC_ACCOUNT;
}

/*
 * A section header, as inih reads it: the name runs from '[' to the first
 * ']'.  Anything after the ']' but a comment is refused here, where inih
 * would ignore it.
 */
static void
begin_section(struct parser *p, const char *line)
{
	char name[256];
	const char *end, *s, *rest;
	size_t n;

	memset(p->seen, 0, sizeof(p->seen));
	p->acct = NULL;
	p->sec = SEC_BAD;
	if ((end = strchr(line, ']')) == NULL) {
		parse_fail(p, "a section header needs a closing ]");
		return;
	}
	for (rest = end + 1; is_space(*rest) || *rest == '\r'; rest++)
		;
	if (*rest != '\0' && *rest != '\n' && *rest != ';' && *rest != '#') {
		parse_fail(p, "text after the section header's ]");
		return;
	}
	for (s = line + 1; is_space(*s); s++)
		;
	while (end > s && is_space(end[-1]))
		end--;
	n = (size_t)(end - s);
	if (n >= sizeof(name)) {
		parse_fail(p, "section name too long");
		return;
	}
	memcpy(name, s, n);
	name[n] = '\0';
	if (strcmp(name, "smtpkit") == 0) {
		if (p->smtpkit_line != 0) {
			parse_fail(p, "[smtpkit] appears twice (first at line "
			    "%d)", p->smtpkit_line);
			return;
		}
		p->smtpkit_line = p->line;
		p->sec = SEC_SMTPKIT;
		return;
	}
	if (strncmp(name, "account", 7) == 0 && is_space(name[7])) {
		for (s = name + 8; is_space(*s); s++)
			;
		begin_account(p, s);
		return;
	}
	if (strcmp(name, "account") == 0) {
		parse_fail(p, "[account] needs a name: [account NAME]");
		return;
	}
	parse_fail(p, "unknown section [%.*s]; expected [account NAME] or "
	    "[smtpkit]", 60, name);
}

/*
 * inih's reader: one line per call, into str (num octets).  A line inih
 * cannot hold, or one with a NUL, is reported and replaced by an empty
 * one, so that the line count stays true.
 */
static char *
config_reader(char *str, int num, void *stream)
{
	struct parser *p = stream;
	const char *s, *nl;
	size_t n;

	if (p->pos >= p->len)
		return NULL;
	s = p->text + p->pos;
	nl = memchr(s, '\n', p->len - p->pos);
	n = nl != NULL ? (size_t)(nl - s) + 1 : p->len - p->pos;
	p->pos += n;
	p->line++;
	if (p->line == 1 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
		s += 3;		/* a UTF-8 byte order mark */
		n -= 3;
	}
	/* Without indentation, inih never sees a continuation line. */
	while (n > 0 && is_space(*s)) {
		s++;
		n--;
	}
	if (memchr(s, '\0', n) != NULL) {
		parse_fail(p, "a NUL octet (is this a text file?)");
		n = 0;
	} else if (num < 2 || n > (size_t)num - 1) {
		parse_fail(p, "line longer than %d characters", num - 2);
		n = 0;
	}
	if (n == 0) {
		str[0] = '\n';
		str[1] = '\0';
		return str;
	}
	memcpy(str, s, n);
	str[n] = '\0';
	if (str[0] == '[')
		begin_section(p, str);
	return str;
}

static int
set_string(struct parser *p, char **field, const char *value)
{
	if ((*field = strdup(value)) == NULL)
		return parse_oom(p);
	return 1;
}

static int
set_key(struct parser *p, enum cfg_key k, const char *value)
{
	struct sk_account *a = p->acct;
	struct sk_error e;
	enum cfg_key other;
	long v;
	bool utf8;

	switch (k) {
	case K_PROVIDER:
		if (!valid_provider(value))
			return parse_fail(p, "provider: a preset id such as "
			    "gmail or ses:eu-west-1 (see smtpkit providers)");
		return set_string(p, &a->provider, value);
	case K_HOST:
		if (strpbrk(value, " \t") != NULL)
			return parse_fail(p, "host: a host name has no spaces "
			    "(comments go on a line of their own)");
		return set_string(p, &a->host, value);
	case K_PORT:
		if (parse_uint(value, 1, 65535, &v) == -1)
			return parse_fail(p, "port: \"%.40s\" is not a port "
			    "number (1-65535)", value);
		a->port = (unsigned)v;
		return 1;
	case K_TLS:
		if (sk_tls_mode_parse(value, &a->tls) == -1)
			return parse_fail(p, "tls: \"%.40s\": use implicit, "
			    "starttls or none", value);
		a->tls_set = true;
		return 1;
	case K_TLS_MIN:
		if (sk_tls_version_parse(value, &a->tls_min) == -1)
			return parse_fail(p, "tls-min: \"%.40s\": use 1.0, "
			    "1.1, 1.2 or 1.3", value);
		return 1;
	case K_USER:
		return set_string(p, &a->user, value);
	case K_FROM:
		if (sk_addr_check("from", value, &utf8, &e) == -1)
			return parse_fail(p, "%s", e.message);
		return set_string(p, &a->from, value);
	case K_PASSWORD:
	case K_PASSWORD_FILE:
	case K_PASSWORD_ENV:
	case K_PASSWORD_CMD:
		for (other = K_PASSWORD; other <= K_PASSWORD_CMD; other++)
			if (other != k && p->seen[other] != 0)
				return parse_fail(p, "%s: this account already "
				    "has %s (line %d); give one password "
				    "source", key_names[k], key_names[other],
				    p->seen[other]);
		if (k == K_PASSWORD)
			return set_string(p, &a->password, value);
		if (k == K_PASSWORD_FILE) {
			if (!valid_path(value))
				return parse_fail(p, "password-file: give an "
				    "absolute path or one starting with ~/");
			return set_string(p, &a->password_file, value);
		}
		if (k == K_PASSWORD_CMD)
			return set_string(p, &a->password_cmd, value);
		if (!valid_env_name(value))
			return parse_fail(p, "password-env: \"%.40s\" is not "
			    "an environment variable name", value);
		return set_string(p, &a->password_env, value);
	case K_AUTH:
		if (strcasecmp(value, "auto") == 0) {
			a->auth = SK_AUTH_NONE;
			return 1;
		}
		if ((a->auth = sk_auth_mech_parse(value)) == SK_AUTH_NONE)
			return parse_fail(p, "auth: \"%.40s\": use PLAIN, "
			    "LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER or auto",
			    value);
		return 1;
	case K_CA_FILE:
		if (!valid_path(value))
			return parse_fail(p, "ca-file: give an absolute path "
			    "or one starting with ~/");
		return set_string(p, &a->ca_file, value);
	case K_TIMEOUT:
		if (parse_uint(value, 1, 3600, &v) == -1)
			return parse_fail(p, "timeout: \"%.40s\": give "
			    "seconds (1-3600)", value);
		a->timeout = (int)v;
		return 1;
	case K_OAUTH_CLIENT_ID:
		if (strpbrk(value, " \t") != NULL)
			return parse_fail(p, "oauth-client-id: a client id has "
			    "no spaces");
		return set_string(p, &a->oauth_client_id, value);
	case K_OAUTH_CLIENT_SECRET:
	case K_OAUTH_CLIENT_SECRET_FILE:
		other = k == K_OAUTH_CLIENT_SECRET ?
		    K_OAUTH_CLIENT_SECRET_FILE : K_OAUTH_CLIENT_SECRET;
		if (p->seen[other] != 0)
			return parse_fail(p, "%s: this account already has %s "
			    "(line %d); give one", key_names[k],
			    key_names[other], p->seen[other]);
		if (k == K_OAUTH_CLIENT_SECRET)
			return set_string(p, &a->oauth_client_secret, value);
		if (!valid_path(value))
			return parse_fail(p, "oauth-client-secret-file: give an "
			    "absolute path or one starting with ~/");
		return set_string(p, &a->oauth_client_secret_file, value);
	case K_OAUTH_FLOW:
		if (sk_oauth_flow_parse(value, &a->oauth_flow) == -1)
			return parse_fail(p, "oauth-flow: \"%.40s\": use "
			    "device or pkce", value);
		return 1;
	case K_OAUTH_DEVICE_ENDPOINT:
	case K_OAUTH_AUTH_ENDPOINT:
	case K_OAUTH_TOKEN_ENDPOINT:
		if (!sk_oauth_endpoint_ok(value))
			return parse_fail(p, "%s: \"%.60s\" is not an "
			    "https:// URL (http:// only to 127.0.0.1, localhost "
			    "or [::1])", key_names[k], value);
		return set_string(p, k == K_OAUTH_DEVICE_ENDPOINT ?
		    &a->oauth_device_endpoint : k == K_OAUTH_AUTH_ENDPOINT ?
		    &a->oauth_auth_endpoint : &a->oauth_token_endpoint, value);
	case K_OAUTH_SCOPE:
		return set_string(p, &a->oauth_scope, value);
	case K__COUNT:
		break;
	}
	return 0;
}

static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct parser *p = user;
	size_t k;

	(void)section;	/* ours, from the reader, is not cut at 50 octets */
	if (p->failed)
		return 0;
	switch (p->sec) {
	case SEC_BAD:
		return 1;
	case SEC_NONE:
		return parse_fail(p, "\"%.40s\" is outside any section; put "
		    "it under [account NAME]", name);
	case SEC_SMTPKIT:
		if (strcasecmp(name, "default") != 0)
			return parse_fail(p, "unknown key \"%.40s\" in "
			    "[smtpkit] (known: default)", name);
		if (p->default_line != 0)
			return parse_fail(p, "default is set twice (first at "
			    "line %d)", p->default_line);
		if (!valid_name(value))
			return parse_fail(p, "default: \"%.40s\" is not an "
			    "account name", value);
		p->default_line = p->line;
		free(p->cfg->default_account);
		free(p->cfg->default_origin);
		p->cfg->default_account = strdup(value);
		p->cfg->default_origin = NULL;
		if (p->cfg->default_account == NULL)
			return parse_oom(p);
		if (asprintf(&p->cfg->default_origin, "%s:%d", p->origin,
		    p->line) == -1) {
			p->cfg->default_origin = NULL;
			return parse_oom(p);
		}
		return 1;
	case SEC_ACCOUNT:
		break;
	}
	for (k = 0; k < K__COUNT; k++)
		if (strcasecmp(name, key_names[k]) == 0)
			break;
	if (k == K__COUNT) {
		if (name[0] == '\0')
			return parse_fail(p, "a key name is missing before "
			    "the =");
		return parse_fail(p, "unknown key \"%.40s\" in [account %s]",
		    name, p->acct->name);
	}
	if (p->seen[k] != 0)
		return parse_fail(p, "%s is set twice in [account %s] (first "
		    "at line %d)", key_names[k], p->acct->name, p->seen[k]);
	if (k == K_PASSWORD || k == K_OAUTH_CLIENT_SECRET)
		p->has_password = true;
	if (value[0] == '\0')
		return parse_fail(p, "%s has no value", key_names[k]);
	if (has_control(value))
		return parse_fail(p, "%s: a control character in the value",
		    key_names[k]);
	p->seen[k] = p->line;
	return set_key(p, (enum cfg_key)k, value);
}

/* Move the accounts of src into dst, replacing those of the same name. */
static int
config_merge(struct sk_config *dst, struct sk_config *src)
{
	struct sk_account *old, *nv;
	size_t i, add = 0;

	for (i = 0; i < src->naccounts; i++)
		if (find_in(dst->accounts, dst->naccounts,
		    src->accounts[i].name) == NULL)
			add++;
	if (add > 0) {
		if ((nv = realloc(dst->accounts, (dst->naccounts + add) *
		    sizeof(*nv))) == NULL)
			return -1;
		dst->accounts = nv;
	}
	for (i = 0; i < src->naccounts; i++) {
		old = find_in(dst->accounts, dst->naccounts,
		    src->accounts[i].name);
		if (old != NULL)
			account_free(old);
		else
			old = &dst->accounts[dst->naccounts++];
		*old = src->accounts[i];
	}
	free(src->accounts);
	src->accounts = NULL;
	src->naccounts = 0;
	if (src->default_account != NULL) {
		free(dst->default_account);
		free(dst->default_origin);
		dst->default_account = src->default_account;
		dst->default_origin = src->default_origin;
		src->default_account = NULL;
		src->default_origin = NULL;
	}
	return 0;
}

/* Parse into cfg; cfg is left as it was on failure. */
static int
config_parse(struct sk_config *cfg, const char *text, size_t len,
    const char *origin, bool *has_password, struct sk_error *err)
{
	struct sk_config mine;
	struct parser p;
	int rc;

	memset(&mine, 0, sizeof(mine));
	memset(&p, 0, sizeof(p));
	p.text = text;
	p.len = len;
	p.origin = origin;
	p.cfg = &mine;
	p.err = err;
	rc = ini_parse_stream(config_reader, &p, config_handler, &p);
	if (rc == -2)
		parse_oom(&p);
	else if (rc != 0 && !p.failed) {
		/* inih's own syntax error, at the line it counted (ours) */
		p.line = rc;
		parse_fail(&p, "expected [section], key = value or a comment");
	}
	if (has_password != NULL)
		*has_password = p.has_password;
	if (!p.failed && config_merge(cfg, &mine) == -1)
		parse_oom(&p);
	sk_config_fini(&mine);
	return p.failed ? -1 : 0;
}

int
sk_config_parse(struct sk_config *cfg, const char *text, size_t len,
    const char *origin, struct sk_error *err)
{
	return config_parse(cfg, text, len, origin, NULL, err);
}

void
sk_config_fini(struct sk_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->naccounts; i++)
		account_free(&cfg->accounts[i]);
	free(cfg->accounts);
	free(cfg->default_account);
	free(cfg->default_origin);
	memset(cfg, 0, sizeof(*cfg));
}

/*
 * Loading files
 */

static int
config_error(struct sk_error *err, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
config_error(struct sk_error *err, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sk_error_setv(err, SK_STAGE_LOCAL, SK_ERR_CONFIG, fmt, ap);
	va_end(ap);
	if (err != NULL)
		err->sys_errno = e;
	return -1;
}

/*
 * Read and parse one file into cfg.  A missing file is fine when it is not
 * required; a system file the user may not read is skipped too, for it is
 * an administrator's private one.
 */
static int
load_file(struct sk_config *cfg, const char *path, bool required,
    bool system, struct sk_error *err)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	ssize_t n;
	bool has_password;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (!required && (errno == ENOENT || errno == ENOTDIR ||
		    (system && errno == EACCES)))
			return 0;
		return config_error(err, errno, "cannot read the "
		    "configuration file %s: %s", path, strerror(errno));
	}
	/* fstat, not stat: the mode checked is that of the file read. */
	if (fstat(fd, &st) == -1) {
		rc = errno;
		(void)close(fd);
		return config_error(err, rc, "%s: %s", path, strerror(rc));
	}
	if (!S_ISREG(st.st_mode)) {
		(void)close(fd);
		return config_error(err, 0, "%s is not a regular file", path);
	}
	if ((size_t)st.st_size > CONFIG_MAX) {
		(void)close(fd);
		return config_error(err, 0, "%s is larger than %zu KB; is it "
		    "the right file?", path, CONFIG_MAX / 1024);
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		(void)close(fd);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	/* The file may change under us: never read past the buffer. */
	while (len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = errno;
			(void)close(fd);
			free(buf);
			return config_error(err, rc, "cannot read %s: %s",
			    path, strerror(rc));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	(void)close(fd);
	buf[len] = '\0';
	rc = config_parse(cfg, buf, len, path, &has_password, err);
	wipe(buf, len);
	free(buf);
	if (rc == -1)
		return -1;
	if (has_password && (st.st_mode & (S_IRGRP | S_IROTH)) != 0)
		return config_error(err, 0, "%s holds a password and is "
		    "readable by others; run chmod 600 %s", path, path);
	return 0;
}

/* $HOME, else the password database's idea of it; NULL when none. */
static const char *
home_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home != NULL && home[0] == '/')
		return home;
	if ((pw = getpwuid(getuid())) == NULL || pw->pw_dir == NULL ||
	    pw->pw_dir[0] == '\0')
		return NULL;
	return pw->pw_dir;
}

int
sk_config_expand_path(const char *path, char *buf, size_t cap)
{
	const char *home;
	int n;

	if (path[0] == '~' && path[1] == '/') {
		if ((home = home_dir()) == NULL)
			return -1;
		n = snprintf(buf, cap, "%s%s", home, path + 1);
	} else
		n = snprintf(buf, cap, "%s", path);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int
sk_config_user_path(char *buf, size_t cap)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home;
	int n;

	/* XDG Base Directory: a relative XDG_CONFIG_HOME is invalid. */
	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, cap, "%s/smtpkit/config", xdg);
	else {
		if ((home = home_dir()) == NULL)
			return -1;
		n = snprintf(buf, cap, "%s/.config/smtpkit/config", home);
	}
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int
sk_config_load(struct sk_config *cfg, const char *path,
    struct sk_error *err)
{
	char user[PATH_MAX];

	memset(cfg, 0, sizeof(*cfg));
	if (path != NULL) {
		if (load_file(cfg, path, true, false, err) == -1)
			goto fail;
	} else {
		if (load_file(cfg, SYSTEM_CONFIG, false, true, err) == -1)
			goto fail;
		if (sk_config_user_path(user, sizeof(user)) == 0 &&
		    load_file(cfg, user, false, false, err) == -1)
			goto fail;
	}
	if (cfg->default_account != NULL &&
	    sk_config_find(cfg, cfg->default_account) == NULL) {
		config_error(err, 0, "%s: default = %s, but there is no "
		    "[account %s]", cfg->default_origin != NULL ?
		    cfg->default_origin : "config", cfg->default_account,
		    cfg->default_account);
		goto fail;
	}
	return 0;
fail:
	sk_config_fini(cfg);
	return -1;
}

/*
 * Lookup
 */

const struct sk_account *
sk_config_find(const struct sk_config *cfg, const char *name)
{
	if (cfg == NULL || name == NULL)
		return NULL;
	return find_in(cfg->accounts, cfg->naccounts, name);
}

/* RFC 5321 §2.4: the local part is case-sensitive, the domain is not. */
static bool
same_address(const char *a, const char *b)
{
	const char *at_a, *at_b;

	if (a == NULL || b == NULL)
		return false;
	at_a = strrchr(a, '@');
	at_b = strrchr(b, '@');
	if (at_a == NULL || at_b == NULL)
		return false;
	return at_a - a == at_b - b && strncmp(a, b, (size_t)(at_a - a)) == 0 &&
	    strcasecmp(at_a, at_b) == 0;
}

const struct sk_account *
sk_config_by_from(const struct sk_config *cfg, const char *addr)
{
	const struct sk_account *d;
	size_t i;

	if (cfg == NULL || addr == NULL)
		return NULL;
	d = sk_config_default(cfg);
	if (d != NULL && same_address(d->from, addr))
		return d;
	/* The last one: a later file is the more personal one. */
	for (i = cfg->naccounts; i-- > 0;)
		if (same_address(cfg->accounts[i].from, addr))
			return &cfg->accounts[i];
	if (d != NULL && d->from == NULL && same_address(d->user, addr))
		return d;
	for (i = cfg->naccounts; i-- > 0;)
		if (cfg->accounts[i].from == NULL &&
		    same_address(cfg->accounts[i].user, addr))
			return &cfg->accounts[i];
	return NULL;
}

const struct sk_account *
sk_config_default(const struct sk_config *cfg)
{
	if (cfg == NULL)
		return NULL;
	if (cfg->default_account != NULL)
		return sk_config_find(cfg, cfg->default_account);
	if (cfg->naccounts == 1)
		return &cfg->accounts[0];
	return sk_config_find(cfg, "default");
}

/*
 * Writing
 */

/* The value of key k in a, as written; NULL when unset. */
static const char *
key_value(const struct sk_account *a, enum cfg_key k, char *num, size_t cap)
{
	switch (k) {
	case K_PROVIDER:
		return a->provider;
	case K_HOST:
		return a->host;
	case K_PORT:
		if (a->port == 0)
			return NULL;
		(void)snprintf(num, cap, "%u", a->port);
		return num;
	case K_TLS:
		return a->tls_set ? sk_tls_mode_name(a->tls) : NULL;
	case K_TLS_MIN:
		if (a->tls_min == SK_TLS_ANY)
			return NULL;
		/* "TLSv1.2": parse accepts it, and "1.2" reads better */
		(void)snprintf(num, cap, "%s", sk_tls_version_name(a->tls_min));
		return strncmp(num, "TLSv", 4) == 0 ? num + 4 : num;
	case K_USER:
		return a->user;
	case K_FROM:
		return a->from;
	case K_PASSWORD:
		return a->password;
	case K_PASSWORD_FILE:
		return a->password_file;
	case K_PASSWORD_ENV:
		return a->password_env;
	case K_PASSWORD_CMD:
		return a->password_cmd;
	case K_AUTH:
		return a->auth != SK_AUTH_NONE ? sk_auth_mech_name(a->auth) :
		    NULL;
	case K_CA_FILE:
		return a->ca_file;
	case K_TIMEOUT:
		if (a->timeout == 0)
			return NULL;
		(void)snprintf(num, cap, "%d", a->timeout);
		return num;
	case K_OAUTH_CLIENT_ID:
		return a->oauth_client_id;
	case K_OAUTH_CLIENT_SECRET:
		return a->oauth_client_secret;
	case K_OAUTH_CLIENT_SECRET_FILE:
		return a->oauth_client_secret_file;
	case K_OAUTH_FLOW:
		return a->oauth_flow != SK_OAUTH_FLOW_NONE ?
		    sk_oauth_flow_name(a->oauth_flow) : NULL;
	case K_OAUTH_DEVICE_ENDPOINT:
		return a->oauth_device_endpoint;
	case K_OAUTH_AUTH_ENDPOINT:
		return a->oauth_auth_endpoint;
	case K_OAUTH_TOKEN_ENDPOINT:
		return a->oauth_token_endpoint;
	case K_OAUTH_SCOPE:
		return a->oauth_scope;
	case K__COUNT:
		break;
	}
	return NULL;
}

/*
 * True when inih gives the value back unchanged: it strips surrounding
 * white space and cuts at a ';' that follows white space (an inline
 * comment) -- the " = " written before the value counts.
 */
static bool
value_writable(const char *v)
{
	size_t i, n = strlen(v);

	if (n == 0 || is_space(v[0]) || is_space(v[n - 1]) || has_control(v))
		return false;
	for (i = 0; i < n; i++)
		if (v[i] == ';' && (i == 0 || is_space(v[i - 1])))
			return false;
	return true;
}

static void
put_key(struct sk__sbuf *b, const struct sk_account *a, enum cfg_key k)
{
	char num[32];
	const char *v = key_value(a, k, num, sizeof(num));

	if (v == NULL)
		return;
	sk__sbuf_str(b, key_names[k]);
	sk__sbuf_str(b, " = ");
	sk__sbuf_str(b, v);
	sk__sbuf_str(b, "\n");
}

static bool
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* What a file would say about a, and what a says, are the same. */
static bool
same_account(const struct sk_account *a, const struct sk_account *b)
{
	return same_str(a->name, b->name) &&
	    same_str(a->provider, b->provider) &&
	    same_str(a->host, b->host) && a->port == b->port &&
	    a->tls_set == b->tls_set && (!a->tls_set || a->tls == b->tls) &&
	    a->tls_min == b->tls_min && same_str(a->user, b->user) &&
	    same_str(a->from, b->from) && same_str(a->password, b->password) &&
	    same_str(a->password_file, b->password_file) &&
	    same_str(a->password_env, b->password_env) &&
	    same_str(a->password_cmd, b->password_cmd) && a->auth == b->auth &&
	    same_str(a->ca_file, b->ca_file) && a->timeout == b->timeout &&
	    same_str(a->oauth_client_id, b->oauth_client_id) &&
	    same_str(a->oauth_client_secret, b->oauth_client_secret) &&
	    same_str(a->oauth_client_secret_file,
	    b->oauth_client_secret_file) && a->oauth_flow == b->oauth_flow &&
	    same_str(a->oauth_device_endpoint, b->oauth_device_endpoint) &&
	    same_str(a->oauth_auth_endpoint, b->oauth_auth_endpoint) &&
	    same_str(a->oauth_token_endpoint, b->oauth_token_endpoint) &&
	    same_str(a->oauth_scope, b->oauth_scope);
}

/*
 * Check that a, written out, reads back as a: every value is valid and
 * survives the INI syntax.
 */
static int
check_writable(const struct sk_account *a, struct sk_error *err)
{
	struct sk_config back;
	struct sk__sbuf b;
	char num[32];
	const char *v;
	size_t k;
	int rc = 0;

	if (a->name == NULL || !valid_name(a->name))
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "an account name is 1 to %d letters, digits and "
		    ". _ - @ +", NAME_MAX_LEN);
	for (k = 0; k < K__COUNT; k++) {
		v = key_value(a, (enum cfg_key)k, num, sizeof(num));
		if (v != NULL && !value_writable(v))
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    "[account %s]: the %s value cannot be written to "
			    "a config file (empty, a control character, "
			    "white space around it, or a ';' after a space)",
			    a->name, key_names[k]);
	}
	memset(&b, 0, sizeof(b));
	memset(&back, 0, sizeof(back));
	sk__sbuf_str(&b, "[account ");
	sk__sbuf_str(&b, a->name);
	sk__sbuf_str(&b, "]\n");
	for (k = 0; k < K__COUNT; k++)
		put_key(&b, a, (enum cfg_key)k);
	if (b.oom)
		rc = sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	else if (config_parse(&back, b.p, b.len, a->name, NULL, err) == -1)
		rc = -1;
	else if (back.naccounts != 1 || !same_account(a, &back.accounts[0]))
		rc = sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "[account %s] would not read back as written", a->name);
	sk__sbuf_free(&b);
	sk_config_fini(&back);
	return rc;
}

/* One line of a file: [s, s + n), its line end included. */
struct line {
	const char *s;
	size_t n;
};

static bool
next_line(const char *text, size_t len, size_t *pos, struct line *l)
{
	const char *nl;

	if (*pos >= len)
		return false;
	l->s = text + *pos;
	nl = memchr(l->s, '\n', len - *pos);
	l->n = nl != NULL ? (size_t)(nl - l->s) + 1 : len - *pos;
	*pos += l->n;
	return true;
}

/* Skip indentation (and a byte order mark). */
static const char *
line_start(const struct line *l, size_t *n)
{
	const char *s = l->s;
	size_t m = l->n;

	if (m >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
		s += 3;
		m -= 3;
	}
	while (m > 0 && is_space(*s)) {
		s++;
		m--;
	}
	*n = m;
	return s;
}

/* Is l the header [account name]? */
static bool
is_section(const struct line *l)
{
	size_t n;
	const char *s = line_start(l, &n);

	return n > 0 && s[0] == '[';
}

static bool
is_account_header(const struct line *l, const char *name)
{
	size_t n, nlen = strlen(name);
	const char *s = line_start(l, &n), *end;

	if (n == 0 || s[0] != '[' || (end = memchr(s, ']', n)) == NULL)
		return false;
	for (s++; s < end && is_space(*s); s++)
		;
	while (end > s && is_space(end[-1]))
		end--;
	if ((size_t)(end - s) < 8 || memcmp(s, "account", 7) != 0 ||
	    !is_space(s[7]))
		return false;
	for (s += 8; s < end && is_space(*s); s++)
		;
	return (size_t)(end - s) == nlen && memcmp(s, name, nlen) == 0;
}

/* The key a "key = value" line sets, K__COUNT for others. */
static enum cfg_key
line_key(const struct line *l, bool *is_key)
{
	size_t n, k, klen;
	const char *s = line_start(l, &n), *e;

	*is_key = false;
	if (n == 0 || s[0] == ';' || s[0] == '#' || s[0] == '\n' ||
	    s[0] == '\r')
		return K__COUNT;
	*is_key = true;
	for (e = s; e < s + n && *e != '=' && *e != ':'; e++)
		;
	while (e > s && is_space(e[-1]))
		e--;
	klen = (size_t)(e - s);
	for (k = 0; k < K__COUNT; k++)
		if (strlen(key_names[k]) == klen &&
		    strncasecmp(s, key_names[k], klen) == 0)
			return (enum cfg_key)k;
	return K__COUNT;
}

/*
 * The account's section, updated in place: a key it had takes the new
 * value where it stood, a key the account no longer has goes, new keys
 * follow the last key line.  Comments and blank lines stay.
 */
static void
rewrite_section(struct sk__sbuf *out, const struct line *lines, size_t n,
    const struct sk_account *a)
{
	bool present[K__COUNT], written[K__COUNT], is_key;
	char num[32];
	size_t i, k, last_key = 0;
	enum cfg_key key;

	memset(present, 0, sizeof(present));
	memset(written, 0, sizeof(written));
	/* lines[0] is the header */
	for (i = 1; i < n; i++) {
		key = line_key(&lines[i], &is_key);
		if (is_key)
			last_key = i;
		if (key != K__COUNT)
			present[key] = true;
	}
	sk__sbuf_add(out, lines[0].s, lines[0].n);
	if (lines[0].s[lines[0].n - 1] != '\n')
		sk__sbuf_str(out, "\n");
	for (i = 1; i <= n; i++) {
		if (i == last_key + 1)
			for (k = 0; k < K__COUNT; k++)
				if (!present[k] && !written[k]) {
					put_key(out, a, (enum cfg_key)k);
					written[k] = true;
				}
		if (i == n)
			break;
		key = line_key(&lines[i], &is_key);
		if (!is_key) {
			sk__sbuf_add(out, lines[i].s, lines[i].n);
			if (lines[i].s[lines[i].n - 1] != '\n')
				sk__sbuf_str(out, "\n");
			continue;
		}
		/* unknown keys go too: they would make the file unreadable */
		if (key == K__COUNT || written[key])
			continue;
		written[key] = true;
		if (key_value(a, key, num, sizeof(num)) != NULL)
			put_key(out, a, key);
	}
}

/* The new text of the file: old (may be empty) with a's section. */
static void
compose_file(struct sk__sbuf *out, const char *old, size_t oldlen,
    const struct sk_account *a)
{
	struct line l, *sec = NULL, *nv;
	size_t pos = 0, nsec = 0, cap = 0, k;
	bool in = false, done = false, blank_end = true;

	if (oldlen == 0)
		sk__sbuf_str(out, "# smtpkit accounts: see smtpkit-send(1).  This file "
		    "may hold passwords:\n# keep it private (chmod 600).\n\n");
	while (next_line(old, oldlen, &pos, &l)) {
		if (in && is_section(&l)) {
			rewrite_section(out, sec, nsec, a);
			in = false;
			done = true;
		}
		if (!in && !done && is_account_header(&l, a->name))
			in = true;
		if (in) {
			if (nsec == cap) {
				cap = cap != 0 ? cap * 2 : 32;
				if ((nv = realloc(sec, cap * sizeof(*nv))) ==
				    NULL) {
					out->oom = true;
					free(sec);
					return;
				}
				sec = nv;
			}
			sec[nsec++] = l;
			continue;
		}
		sk__sbuf_add(out, l.s, l.n);
		if (l.s[l.n - 1] != '\n')
			sk__sbuf_str(out, "\n");
		blank_end = l.n == 1 || (l.n == 2 && l.s[0] == '\r');
	}
	if (in) {
		rewrite_section(out, sec, nsec, a);
		done = true;
	}
	free(sec);
	if (done)
		return;
	if (!blank_end)
		sk__sbuf_str(out, "\n");
	sk__sbuf_str(out, "[account ");
	sk__sbuf_str(out, a->name);
	sk__sbuf_str(out, "]\n");
	for (k = 0; k < K__COUNT; k++)
		put_key(out, a, (enum cfg_key)k);
}

/* mkdir -p, each new directory private to its owner. */
static int
make_dirs(const char *dir, struct sk_error *err)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return config_error(err, ENAMETOOLONG, "%s: path too long",
		    dir);
	memcpy(buf, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) == -1 && errno != EEXIST)
			return config_error(err, errno, "cannot create the "
			    "directory %s: %s", buf, strerror(errno));
		buf[i] = i == n ? '\0' : '/';
	}
	return 0;
}

static int
read_existing(const char *path, char **text, size_t *len,
    struct sk_error *err)
{
	struct stat st;
	ssize_t n;
	int fd, saved;

	*text = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		return config_error(err, errno, "cannot read %s: %s", path,
		    strerror(errno));
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > CONFIG_MAX) {
		saved = errno;
		(void)close(fd);
		return config_error(err, saved, "%s is not a regular config "
		    "file", path);
	}
	if ((*text = malloc((size_t)st.st_size + 1)) == NULL) {
		(void)close(fd);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	while (*len < (size_t)st.st_size) {
		n = read(fd, *text + *len, (size_t)st.st_size - *len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			(void)close(fd);
			wipe(*text, *len);
			free(*text);
			*text = NULL;
			return config_error(err, saved, "cannot read %s: %s",
			    path, strerror(saved));
		}
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	(void)close(fd);
	(*text)[*len] = '\0';
	return 0;
}

int
sk_config_write_account(const char *path, const struct sk_account *a,
    struct sk_error *err)
{
	char target[PATH_MAX], dir[PATH_MAX], *slash, *old = NULL;
	struct sk__sbuf out;
	struct stat st;
	size_t oldlen = 0, n;
	int rc = -1;

	if (path == NULL || a == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "no file or no account to write");
	if (check_writable(a, err) == -1)
		return -1;
	/* A config kept as a symbolic link (dotfiles) stays one. */
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		if (realpath(path, target) == NULL)
			return config_error(err, errno, "%s: %s", path,
			    strerror(errno));
	} else if ((n = strlen(path)) < sizeof(target))
		memcpy(target, path, n + 1);
	else
		return config_error(err, ENAMETOOLONG, "%s: path too long",
		    path);
	memcpy(dir, target, strlen(target) + 1);
	if ((slash = strrchr(dir, '/')) == NULL)
		memcpy(dir, ".", 2);
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (make_dirs(dir, err) == -1)
		return -1;
	if (read_existing(target, &old, &oldlen, err) == -1)
		return -1;
	memset(&out, 0, sizeof(out));
	compose_file(&out, old != NULL ? old : "", oldlen, a);
	if (out.oom)
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	else
		rc = sk__replace_file(dir, target, out.p, out.len, SK_ERR_CONFIG,
		    err);
	sk__sbuf_free(&out);
	wipe(old, oldlen);
	free(old);
	return rc;
}
