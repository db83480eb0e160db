/*
 * tests/unit/test_config.c: accounts from INI files.
 *
 * Parsing (every key, comments, indentation), errors naming file and
 * line, the order files override each other in, lookups by name, address
 * and default, the refusal of a password in a file others can read, and
 * writing an account back without disturbing the rest of the file.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtpkit/config.h"

/* A private directory for the test's files, and $HOME/$XDG pointed at it. */
struct fixture {
	char dir[PATH_MAX];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char home[PATH_MAX + 16];

	assert_non_null(f);
	(void)snprintf(f->dir, sizeof(f->dir), "/tmp/test_config.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	(void)snprintf(home, sizeof(home), "%s/home", f->dir);
	assert_int_equal(mkdir(home, 0700), 0);
	assert_int_equal(setenv("HOME", home, 1), 0);
	assert_int_equal(unsetenv("XDG_CONFIG_HOME"), 0);
	*state = f;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	(void)nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void
path_in(const struct fixture *f, const char *name, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/%s", f->dir, name);

	assert_true(n > 0 && (size_t)n < cap);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd;
	size_t n = strlen(text);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	/* open() honours the umask; the test wants the mode it asked for */
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static char *
read_file(const char *path)
{
	static char buf[65536];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	(void)close(fd);
	return buf;
}

static int
parse_as(struct sk_config *cfg, const char *text, const char *origin,
    struct sk_error *err)
{
	return sk_config_parse(cfg, text, strlen(text), origin, err);
}

static int
parse(struct sk_config *cfg, const char *text, struct sk_error *err)
{
	return parse_as(cfg, text, "t", err);
}

/*
 * Parsing
 */

static void
test_every_key(void **state)
{
	static const char text[] =
	    "# a comment\n"
	    "; another\n"
	    "[account work]\n"
	    "provider = ses:eu-west-1\n"
	    "host = smtp.corp.example\n"
	    "port = 2525\n"
	    "tls = implicit\n"
	    "tls-min = 1.3\n"
	    "user = me@corp.example\n"
	    "from = Me@Corp.Example\n"
	    "password-file = ~/.secrets/mail\n"
	    "auth = login\n"
	    "ca-file = /etc/ssl/corp.pem\n"
	    "timeout = 45\n"
	    "\n"
	    "[account env]\n"
	    "host = a.example\n"
	    "password-env = MAIL_PW\n"
	    "[account cmd]\n"
	    "host = b.example\n"
	    "password-cmd = pass show mail/b | head -1\n"
	    "[account inline]\n"
	    "host = c.example\n"
	    "tls = none\n"
	    "password = p=ss:w#rd;x\n";
	struct sk_config cfg;
	struct sk_error err;
	const struct sk_account *a;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(parse(&cfg, text, &err), 0);
	assert_int_equal(cfg.naccounts, 4);
	a = sk_config_find(&cfg, "work");
	assert_non_null(a);
	assert_string_equal(a->name, "work");
	assert_string_equal(a->provider, "ses:eu-west-1");
	assert_string_equal(a->host, "smtp.corp.example");
	assert_int_equal(a->port, 2525);
	assert_true(a->tls_set);
	assert_int_equal(a->tls, SK_TLS_MODE_IMPLICIT);
	assert_int_equal(a->tls_min, SK_TLS_1_3);
	assert_string_equal(a->user, "me@corp.example");
	assert_string_equal(a->from, "Me@Corp.Example");
	assert_null(a->password);
	assert_string_equal(a->password_file, "~/.secrets/mail");
	assert_null(a->password_env);
	assert_null(a->password_cmd);
	assert_int_equal(a->auth, SK_AUTH_LOGIN);
	assert_string_equal(a->ca_file, "/etc/ssl/corp.pem");
	assert_int_equal(a->timeout, 45);
	assert_string_equal(a->origin, "t:3");

	a = sk_config_find(&cfg, "env");
	assert_non_null(a);
	assert_string_equal(a->password_env, "MAIL_PW");
	assert_false(a->tls_set);
	assert_int_equal(a->port, 0);
	assert_int_equal(a->timeout, 0);
	assert_int_equal(a->auth, SK_AUTH_NONE);
	assert_int_equal(a->tls_min, SK_TLS_ANY);
	assert_string_equal(a->origin, "t:16");
	a = sk_config_find(&cfg, "cmd");
	assert_non_null(a);
	assert_string_equal(a->password_cmd, "pass show mail/b | head -1");
	a = sk_config_find(&cfg, "inline");
	assert_non_null(a);
	/* '=', ':', '#' and a ';' not after a space are the password's */
	assert_string_equal(a->password, "p=ss:w#rd;x");
	assert_true(a->tls_set);
	assert_int_equal(a->tls, SK_TLS_MODE_NONE);
	assert_null(sk_config_find(&cfg, "nope"));
	assert_null(cfg.default_account);
	sk_config_fini(&cfg);
	assert_int_equal(cfg.naccounts, 0);
	assert_null(cfg.accounts);
}

static void
test_syntax_variants(void **state)
{
	/* a BOM, CRLF, indentation, ':' for '=', inline comments, case */
	static const char text[] =
	    "\xef\xbb\xbf[account a]\r\n"
	    "    host = a.example   ; where it goes\r\n"
	    "\tPORT: 465\r\n"
	    "  ; an indented comment\r\n"
	    "  # and another\r\n"
	    "\r\n"
	    "[ account   b ]   ; a comment after the header\n"
	    "host=b.example\n"
	    "tls = STARTTLS\n"
	    "[smtpkit]\n"
	    "  default = b\n";
	struct sk_config cfg;
	struct sk_error err;
	const struct sk_account *a;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(parse(&cfg, text, &err), 0);
	a = sk_config_find(&cfg, "a");
	assert_non_null(a);
	assert_string_equal(a->host, "a.example");
	assert_int_equal(a->port, 465);
	a = sk_config_find(&cfg, "b");
	assert_non_null(a);
	assert_string_equal(a->host, "b.example");
	assert_int_equal(a->tls, SK_TLS_MODE_STARTTLS);
	assert_string_equal(a->origin, "t:7");
	assert_string_equal(cfg.default_account, "b");
	assert_string_equal(cfg.default_origin, "t:11");
	assert_ptr_equal(sk_config_default(&cfg), a);
	sk_config_fini(&cfg);

	/* empty text, and only comments, are an empty configuration */
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(sk_config_parse(&cfg, "", 0, "t", &err), 0);
	assert_int_equal(parse(&cfg, "# nothing\n\n;\n", &err), 0);
	assert_int_equal(cfg.naccounts, 0);
	assert_null(sk_config_default(&cfg));
	sk_config_fini(&cfg);

	/* no final newline; an account with no keys */
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(parse(&cfg, "[account x]\n[account y]\nhost = y",
	    &err), 0);
	assert_int_equal(cfg.naccounts, 2);
	assert_null(sk_config_find(&cfg, "x")->host);
	assert_string_equal(sk_config_find(&cfg, "y")->host, "y");
	sk_config_fini(&cfg);
}

/* Each bad text gives an error that starts with "t:LINE: " and says why. */
static void
test_errors_name_file_and_line(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *says;
	} cases[] = {
		{ "[account a]\nhost = x\nhots = y\n", 3, "unknown key \"hots\"" },
		{ "[account a]\nhost = x\nport = 25\nhost = y\n", 4,
		    "host is set twice in [account a] (first at line 2)" },
		{ "[account a]\nHost = x\nhost = y\n", 3, "set twice" },
		{ "[acount a]\nhost = x\n", 1, "unknown section [acount a]" },
		{ "[other]\n", 1, "unknown section" },
		{ "[account]\n", 1, "needs a name" },
		{ "[account a b]\n", 1, "account name" },
		{ "[account a]\n[account a]\n", 2,
		    "[account a] appears twice (first at line 1)" },
		{ "[smtpkit]\n[smtpkit]\n", 2, "[smtpkit] appears twice" },
		{ "[smtpkit]\ndefault = a\ndefault = b\n", 3, "default is set "
		    "twice" },
		{ "[smtpkit]\ndefaults = a\n", 2, "unknown key \"defaults\" in "
		    "[smtpkit]" },
		{ "host = x\n", 1, "outside any section" },
		{ "[account a\nhost = x\n", 1, "closing ]" },
		{ "[account a] junk\n", 1, "text after" },
		{ "[account a]\nhost\n", 2, "expected [section], key = value" },
		{ "[account a]\n= x\n", 2, "key name is missing" },
		{ "\n\n[account a]\nport = 0\n", 4, "port" },
		{ "[account a]\nport = 65536\n", 2, "not a port number" },
		{ "[account a]\nport = 25x\n", 2, "not a port number" },
		{ "[account a]\nport = -1\n", 2, "not a port number" },
		{ "[account a]\ntls = sometimes\n", 2, "use implicit, starttls "
		    "or none" },
		{ "[account a]\ntls-min = 2.0\n", 2, "tls-min" },
		{ "[account a]\nauth = KERBEROS\n", 2, "auth" },
		{ "[account a]\ntimeout = 0\n", 2, "timeout" },
		{ "[account a]\ntimeout = 3601\n", 2, "timeout" },
		{ "[account a]\nfrom = not-an-address\n", 2, "from" },
		{ "[account a]\nprovider = q q\n", 2, "provider" },
		{ "[account a]\nhost = a b\n", 2, "host" },
		{ "[account a]\nhost =\n", 2, "host has no value" },
		{ "[account a]\npassword-env = 1BAD\n", 2, "environment "
		    "variable" },
		{ "[account a]\npassword-file = relative/path\n", 2,
		    "absolute path" },
		{ "[account a]\nca-file = ca.pem\n", 2, "absolute path" },
		{ "[account a]\npassword-file = /p\npassword-env = PW\n", 3,
		    "already has password-file (line 2)" },
		{ "[account a]\npassword = x\n\npassword-cmd = y\n", 4,
		    "one password source" },
		{ "[account a]\nuser = a\rb\n", 2, "control character" },
		{ "[smtpkit]\ndefault = no such\n", 2, "account name" },
	};
	struct sk_config cfg;
	struct sk_error err;
	char want[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&cfg, 0, sizeof(cfg));
		sk_error_clear(&err);
		if (parse(&cfg, cases[i].text, &err) != -1)
			fail_msg("case %zu parsed: %s", i, cases[i].text);
		assert_int_equal(err.kind, SK_ERR_CONFIG);
		assert_int_equal(err.stage, SK_STAGE_LOCAL);
		(void)snprintf(want, sizeof(want), "t:%d: ", cases[i].line);
		if (strncmp(err.message, want, strlen(want)) != 0 ||
		    strstr(err.message, cases[i].says) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s...%s\"", i,
			    err.message, want, cases[i].says);
		/* a failed parse adds nothing */
		assert_int_equal(cfg.naccounts, 0);
		assert_null(cfg.default_account);
		sk_config_fini(&cfg);
	}
}

static void
test_errors_never_show_password(void **state)
{
	struct sk_config cfg;
	struct sk_error err;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(parse(&cfg, "[account a]\npassword = hunter2\n"
	    "password = hunter3\n", &err), -1);
	assert_null(strstr(err.message, "hunter"));
	assert_non_null(strstr(err.message, "t:3: password is set twice"));
	sk_config_fini(&cfg);
}

static void
test_long_line_and_nul(void **state)
{
	struct sk_config cfg;
	struct sk_error err;
	char text[1024];
	int n;

	(void)state;
	/* inih would split a long line silently; it is refused instead */
	n = snprintf(text, sizeof(text), "[account a]\nhost = x\n"
	    "password-cmd = %0300d\nport = 25\n", 7);
	assert_true(n > 0);
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(parse(&cfg, text, &err), -1);
	assert_non_null(strstr(err.message, "t:3: line longer than"));

	/* up to the limit is fine, indentation not counted */
	n = snprintf(text, sizeof(text), "[account a]\n      "
	    "password-cmd = %0183d\n", 7);
	assert_int_equal(parse(&cfg, text, &err), 0);
	assert_int_equal(strlen(sk_config_find(&cfg, "a")->password_cmd), 183);
	sk_config_fini(&cfg);

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(sk_config_parse(&cfg, "[account a]\nho\0st = x\n", 22,
	    "t", &err), -1);
	assert_non_null(strstr(err.message, "t:2: a NUL"));
	sk_config_fini(&cfg);
}

/*
 * Several files
 */

static void
test_later_file_overrides(void **state)
{
	struct sk_config cfg;
	struct sk_error err;
	const struct sk_account *a;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(parse_as(&cfg,
	    "[account shared]\nhost = sys.example\nport = 25\n"
	    "[account sys]\nhost = only-sys.example\n"
	    "[smtpkit]\ndefault = sys\n", "/etc/smtpkit/config", &err), 0);
	assert_int_equal(parse_as(&cfg,
	    "[account mine]\nhost = mine.example\n"
	    "[account shared]\nhost = user.example\n", "~/config", &err), 0);
	assert_int_equal(cfg.naccounts, 3);
	/* replaced whole: port does not survive from the system file */
	a = sk_config_find(&cfg, "shared");
	assert_string_equal(a->host, "user.example");
	assert_int_equal(a->port, 0);
	assert_string_equal(a->origin, "~/config:3");
	assert_string_equal(sk_config_find(&cfg, "sys")->host,
	    "only-sys.example");
	assert_string_equal(sk_config_find(&cfg, "mine")->host,
	    "mine.example");
	/* the system default holds until the user file sets its own */
	assert_string_equal(sk_config_default(&cfg)->name, "sys");
	assert_int_equal(parse(&cfg, "[smtpkit]\ndefault = mine\n", &err), 0);
	assert_string_equal(sk_config_default(&cfg)->name, "mine");
	assert_string_equal(cfg.default_origin, "t:2");

	/* a broken later file leaves what was loaded alone */
	assert_int_equal(parse(&cfg, "[account shared]\nhost = x\nbad = 1\n",
	    &err), -1);
	assert_string_equal(sk_config_find(&cfg, "shared")->host,
	    "user.example");
	sk_config_fini(&cfg);
}

static void
test_load_user_and_explicit(void **state)
{
	struct fixture *f = *state;
	struct sk_config cfg;
	struct sk_error err;
	char xdg[PATH_MAX], dir[PATH_MAX], user[PATH_MAX], other[PATH_MAX];
	char got[PATH_MAX];

	path_in(f, "xdg", xdg, sizeof(xdg));
	path_in(f, "xdg/smtpkit", dir, sizeof(dir));
	path_in(f, "xdg/smtpkit/config", user, sizeof(user));
	path_in(f, "other.ini", other, sizeof(other));
	assert_int_equal(mkdir(xdg, 0700), 0);
	assert_int_equal(mkdir(dir, 0700), 0);

	/* $HOME/.config without XDG_CONFIG_HOME; a relative one is ignored */
	assert_int_equal(sk_config_user_path(got, sizeof(got)), 0);
	assert_non_null(strstr(got, "/home/.config/smtpkit/config"));
	assert_int_equal(setenv("XDG_CONFIG_HOME", "relative", 1), 0);
	assert_int_equal(sk_config_user_path(got, sizeof(got)), 0);
	assert_non_null(strstr(got, "/home/.config/smtpkit/config"));
	assert_int_equal(setenv("XDG_CONFIG_HOME", xdg, 1), 0);
	assert_int_equal(sk_config_user_path(got, sizeof(got)), 0);
	assert_string_equal(got, user);
	assert_int_equal(sk_config_user_path(got, 8), -1);

	/* no user file: fine, and empty (unless this host has a system file) */
	if (access("/etc/smtpkit/config", F_OK) == -1) {
		assert_int_equal(sk_config_load(&cfg, NULL, &err), 0);
		assert_int_equal(cfg.naccounts, 0);
		sk_config_fini(&cfg);
	}

	write_file(user, "[account u]\nhost = u.example\n", 0600);
	write_file(other, "[account o]\nhost = o.example\n", 0644);
	assert_int_equal(sk_config_load(&cfg, NULL, &err), 0);
	assert_non_null(sk_config_find(&cfg, "u"));
	assert_null(sk_config_find(&cfg, "o"));
	assert_string_equal(sk_config_find(&cfg, "u")->origin + strlen(user),
	    ":1");
	sk_config_fini(&cfg);

	/* --config: that file alone */
	assert_int_equal(sk_config_load(&cfg, other, &err), 0);
	assert_non_null(sk_config_find(&cfg, "o"));
	assert_null(sk_config_find(&cfg, "u"));
	sk_config_fini(&cfg);

	/* a missing explicit file is an error; so is a directory */
	path_in(f, "missing", got, sizeof(got));
	assert_int_equal(sk_config_load(&cfg, got, &err), -1);
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_non_null(strstr(err.message, got));
	assert_int_equal(cfg.naccounts, 0);
	assert_int_equal(sk_config_load(&cfg, dir, &err), -1);
	assert_non_null(strstr(err.message, "not a regular file"));

	/* an error names the file and line */
	write_file(user, "[account u]\nhost = u.example\n\nport = x\n", 0600);
	assert_int_equal(sk_config_load(&cfg, NULL, &err), -1);
	(void)snprintf(got, sizeof(got), "%s:4: port", user);
	assert_non_null(strstr(err.message, got));

	/* default naming an account no file has */
	write_file(user, "[account u]\nhost = u\n[smtpkit]\ndefault = x\n",
	    0600);
	assert_int_equal(sk_config_load(&cfg, NULL, &err), -1);
	(void)snprintf(got, sizeof(got), "%s:4: default = x, but there is no "
	    "[account x]", user);
	assert_string_equal(err.message, got);
	assert_int_equal(unsetenv("XDG_CONFIG_HOME"), 0);
}

/*
 * Lookups
 */

static void
test_by_from(void **state)
{
	static const char text[] =
	    "[account qq]\nfrom = me@qq.com\nuser = me@qq.com\n"
	    "[account qq2]\nfrom = me@QQ.com\n"
	    "[account login]\nuser = Boss@Corp.Example\n"
	    "[account both]\nuser = x@corp.example\nfrom = y@corp.example\n"
	    "[account grid]\nuser = apikey\nfrom = app@mail.example\n";
	struct sk_config cfg;
	struct sk_error err;
	const struct sk_account *a;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(parse(&cfg, text, &err), 0);
	/* the domain without case, the last defined wins */
	a = sk_config_by_from(&cfg, "me@qq.COM");
	assert_non_null(a);
	assert_string_equal(a->name, "qq2");
	/* the local part is case-sensitive (RFC 5321 §2.4) */
	assert_null(sk_config_by_from(&cfg, "ME@qq.com"));
	/* by user when the account has no from */
	a = sk_config_by_from(&cfg, "Boss@corp.example");
	assert_non_null(a);
	assert_string_equal(a->name, "login");
	/* ... but not when it has one: from is the address it sends as */
	assert_null(sk_config_by_from(&cfg, "x@corp.example"));
	assert_string_equal(sk_config_by_from(&cfg, "y@corp.example")->name,
	    "both");
	assert_string_equal(sk_config_by_from(&cfg, "app@mail.example")->name,
	    "grid");
	assert_null(sk_config_by_from(&cfg, "apikey"));
	assert_null(sk_config_by_from(&cfg, "nobody@qq.com"));
	assert_null(sk_config_by_from(&cfg, NULL));
	assert_null(sk_config_by_from(NULL, "me@qq.com"));

	/* the default account is preferred */
	assert_int_equal(parse(&cfg, "[smtpkit]\ndefault = qq\n", &err), 0);
	assert_string_equal(sk_config_by_from(&cfg, "me@qq.com")->name, "qq");
	sk_config_fini(&cfg);
}

static void
test_default_rules(void **state)
{
	struct sk_config cfg;
	struct sk_error err;

	(void)state;
	/* the only account */
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(parse(&cfg, "[account solo]\nhost = x\n", &err), 0);
	assert_string_equal(sk_config_default(&cfg)->name, "solo");
	/* two, neither named default: none */
	assert_int_equal(parse(&cfg, "[account duo]\nhost = y\n", &err), 0);
	assert_null(sk_config_default(&cfg));
	/* one named "default" */
	assert_int_equal(parse(&cfg, "[account default]\nhost = z\n", &err), 0);
	assert_string_equal(sk_config_default(&cfg)->name, "default");
	/* [smtpkit] default wins over the name */
	assert_int_equal(parse(&cfg, "[smtpkit]\ndefault = duo\n", &err), 0);
	assert_string_equal(sk_config_default(&cfg)->name, "duo");
	sk_config_fini(&cfg);

	/* a default naming nothing: NULL here, an error from load */
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(parse(&cfg, "[account solo]\n[smtpkit]\n"
	    "default = ghost\n", &err), 0);
	assert_null(sk_config_default(&cfg));
	sk_config_fini(&cfg);
	assert_null(sk_config_default(NULL));
	assert_null(sk_config_find(NULL, "x"));
}

/*
 * The permission rule
 */

static void
test_password_readable_by_others_refused(void **state)
{
	struct fixture *f = *state;
	struct sk_config cfg;
	struct sk_error err;
	char path[PATH_MAX], want[2 * PATH_MAX + 100];
	static const char with_pw[] =
	    "[account a]\nhost = x\nuser = u\npassword = s3cret\n";
	static const mode_t bad[] = { 0644, 0640, 0604, 0666, 0440 };
	size_t i;

	path_in(f, "config", path, sizeof(path));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, with_pw, bad[i]);
		assert_int_equal(sk_config_load(&cfg, path, &err), -1);
		assert_int_equal(err.kind, SK_ERR_CONFIG);
		(void)snprintf(want, sizeof(want), "%s holds a password and is "
		    "readable by others; run chmod 600 %s", path, path);
		assert_string_equal(err.message, want);
		assert_null(strstr(err.message, "s3cret"));
		assert_int_equal(cfg.naccounts, 0);
	}
	/* private: fine; 0400 too */
	write_file(path, with_pw, 0600);
	assert_int_equal(sk_config_load(&cfg, path, &err), 0);
	assert_string_equal(sk_config_find(&cfg, "a")->password, "s3cret");
	sk_config_fini(&cfg);
	write_file(path, with_pw, 0400);
	assert_int_equal(sk_config_load(&cfg, path, &err), 0);
	sk_config_fini(&cfg);
	/* no password in it: anyone may read it */
	write_file(path, "[account a]\nhost = x\nuser = u\n"
	    "password-cmd = pass show x\n", 0644);
	assert_int_equal(sk_config_load(&cfg, path, &err), 0);
	sk_config_fini(&cfg);
	/* a password in the user's file refuses the whole load */
	path_in(f, "home/.config", path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
	path_in(f, "home/.config/smtpkit", path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
	path_in(f, "home/.config/smtpkit/config", path, sizeof(path));
	write_file(path, with_pw, 0644);
	assert_int_equal(sk_config_load(&cfg, NULL, &err), -1);
	assert_non_null(strstr(err.message, "run chmod 600"));
}

/*
 * Writing
 */

static void
test_write_new_file(void **state)
{
	struct fixture *f = *state;
	struct sk_account a;
	struct sk_config cfg;
	struct sk_error err;
	struct stat st;
	char dir[PATH_MAX], path[PATH_MAX];
	const struct sk_account *b;

	path_in(f, "new/smtpkit", dir, sizeof(dir));
	path_in(f, "new/smtpkit/config", path, sizeof(path));
	memset(&a, 0, sizeof(a));
	a.name = "qq";
	a.provider = "qq";
	a.host = "smtp.qq.com";
	a.port = 465;
	a.tls = SK_TLS_MODE_IMPLICIT;
	a.tls_set = true;
	a.tls_min = SK_TLS_1_2;
	a.user = "12345@qq.com";
	a.from = "12345@qq.com";
	a.password = "abcd efgh;ijkl";	/* a ';' after a letter is fine */
	a.auth = SK_AUTH_PLAIN;
	a.ca_file = "~/ca.pem";
	a.timeout = 20;
	assert_int_equal(sk_config_write_account(path, &a, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	/* it reads back the same, through the permission check */
	assert_int_equal(sk_config_load(&cfg, path, &err), 0);
	assert_int_equal(cfg.naccounts, 1);
	b = &cfg.accounts[0];
	assert_string_equal(b->name, "qq");
	assert_string_equal(b->provider, "qq");
	assert_string_equal(b->host, "smtp.qq.com");
	assert_int_equal(b->port, 465);
	assert_true(b->tls_set);
	assert_int_equal(b->tls, SK_TLS_MODE_IMPLICIT);
	assert_int_equal(b->tls_min, SK_TLS_1_2);
	assert_string_equal(b->user, "12345@qq.com");
	assert_string_equal(b->from, "12345@qq.com");
	assert_string_equal(b->password, "abcd efgh;ijkl");
	assert_int_equal(b->auth, SK_AUTH_PLAIN);
	assert_string_equal(b->ca_file, "~/ca.pem");
	assert_int_equal(b->timeout, 20);
	sk_config_fini(&cfg);
	/* no temporary file left behind */
	assert_int_equal(access(dir, F_OK), 0);
}

static void
test_write_keeps_the_rest(void **state)
{
	struct fixture *f = *state;
	static const char before[] =
	    "# my accounts\n"
	    "\n"
	    "[account first]\n"
	    "host = first.example   ; the old one\n"
	    "\n"
	    "[account work]\n"
	    "# the relay at the office\n"
	    "host = old.example\n"
	    "port = 25\n"
	    "; the password lives in pass\n"
	    "password-cmd = pass show work\n"
	    "timeout = 10\n"
	    "\n"
	    "# the last one\n"
	    "[account last]\n"
	    "host = last.example\n"
	    "[smtpkit]\n"
	    "default = work\n";
	static const char after[] =
	    "# my accounts\n"
	    "\n"
	    "[account first]\n"
	    "host = first.example   ; the old one\n"
	    "\n"
	    "[account work]\n"
	    "# the relay at the office\n"
	    "host = new.example\n"
	    "port = 587\n"
	    "; the password lives in pass\n"
	    "password-cmd = pass show work/new\n"
	    "tls = starttls\n"
	    "user = me@work.example\n"
	    "\n"
	    "# the last one\n"
	    "[account last]\n"
	    "host = last.example\n"
	    "[smtpkit]\n"
	    "default = work\n";
	struct sk_account a;
	struct sk_config cfg;
	struct sk_error err;
	struct stat st;
	char path[PATH_MAX];
	const char *text;

	path_in(f, "config", path, sizeof(path));
	write_file(path, before, 0644);
	memset(&a, 0, sizeof(a));
	a.name = "work";
	a.host = "new.example";
	a.port = 587;
	a.tls = SK_TLS_MODE_STARTTLS;
	a.tls_set = true;
	a.user = "me@work.example";
	a.password_cmd = "pass show work/new";
	assert_int_equal(sk_config_write_account(path, &a, &err), 0);
	text = read_file(path);
	assert_string_equal(text, after);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* a new account is appended, after a blank line */
	memset(&a, 0, sizeof(a));
	a.name = "extra";
	a.provider = "gmail";
	a.password_env = "GMAIL_APP_PASSWORD";
	assert_int_equal(sk_config_write_account(path, &a, &err), 0);
	text = read_file(path);
	assert_int_equal(strncmp(text, after, strlen(after)), 0);
	assert_string_equal(text + strlen(after), "\n[account extra]\n"
	    "provider = gmail\npassword-env = GMAIL_APP_PASSWORD\n");

	assert_int_equal(sk_config_load(&cfg, path, &err), 0);
	assert_int_equal(cfg.naccounts, 4);
	assert_string_equal(sk_config_default(&cfg)->name, "work");
	assert_string_equal(sk_config_find(&cfg, "work")->host, "new.example");
	assert_int_equal(sk_config_find(&cfg, "work")->timeout, 0);
	sk_config_fini(&cfg);

	/* writing the same account again changes nothing */
	text = read_file(path);
	{
		char *copy = strdup(text);

		assert_non_null(copy);
		assert_int_equal(sk_config_write_account(path, &a, &err), 0);
		assert_string_equal(read_file(path), copy);
		free(copy);
	}
}

static void
test_write_no_final_newline_and_header_only(void **state)
{
	struct fixture *f = *state;
	struct sk_account a;
	struct sk_error err;
	char path[PATH_MAX];

	path_in(f, "config", path, sizeof(path));
	write_file(path, "[account a]\n# nothing yet\n[account b]\nhost = b",
	    0600);
	memset(&a, 0, sizeof(a));
	a.name = "a";
	a.host = "a.example";
	assert_int_equal(sk_config_write_account(path, &a, &err), 0);
	assert_string_equal(read_file(path), "[account a]\nhost = a.example\n"
	    "# nothing yet\n[account b]\nhost = b\n");
	a.name = "b";
	a.host = "b2.example";
	assert_int_equal(sk_config_write_account(path, &a, &err), 0);
	assert_string_equal(read_file(path), "[account a]\nhost = a.example\n"
	    "# nothing yet\n[account b]\nhost = b2.example\n");
}

static void
test_write_follows_symlink(void **state)
{
	struct fixture *f = *state;
	struct sk_account a;
	struct sk_error err;
	struct stat st;
	char real[PATH_MAX], link[PATH_MAX];

	path_in(f, "dotfiles-config", real, sizeof(real));
	path_in(f, "config-link", link, sizeof(link));
	write_file(real, "# kept\n", 0600);
	assert_int_equal(symlink(real, link), 0);
	memset(&a, 0, sizeof(a));
	a.name = "a";
	a.host = "a.example";
	assert_int_equal(sk_config_write_account(link, &a, &err), 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_string_equal(read_file(real), "# kept\n\n[account a]\n"
	    "host = a.example\n");
}

static void
test_write_refuses_what_would_not_read_back(void **state)
{
	struct fixture *f = *state;
	static const char *const bad_passwords[] = {
		" leading", "trailing ", "a ;comment", ";first", "line\nbreak",
		"cr\rhere", "",
	};
	struct sk_account a;
	struct sk_error err;
	char path[PATH_MAX];
	size_t i;

	path_in(f, "config", path, sizeof(path));
	memset(&a, 0, sizeof(a));
	a.name = "a";
	a.user = "u";
	for (i = 0; i < sizeof(bad_passwords) / sizeof(bad_passwords[0]);
	    i++) {
		a.password = (char *)bad_passwords[i];
		assert_int_equal(sk_config_write_account(path, &a, &err), -1);
		assert_int_equal(err.kind, SK_ERR_CONFIG);
		assert_non_null(strstr(err.message, "password"));
		assert_null(strstr(err.message, bad_passwords[i][0] != '\0' ?
		    bad_passwords[i] : "\x01"));
	}
	a.password = "fine";
	a.name = "bad name";
	assert_int_equal(sk_config_write_account(path, &a, &err), -1);
	a.name = "ok";
	a.from = "not an address";
	assert_int_equal(sk_config_write_account(path, &a, &err), -1);
	a.from = NULL;
	a.password_file = "relative";
	assert_int_equal(sk_config_write_account(path, &a, &err), -1);
	/* nothing was written */
	assert_int_equal(access(path, F_OK), -1);
}

static void
test_expand_path(void **state)
{
	char buf[PATH_MAX], want[PATH_MAX];

	(void)state;
	assert_int_equal(sk_config_expand_path("/abs/x", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/abs/x");
	assert_int_equal(sk_config_expand_path("~/x/y", buf, sizeof(buf)), 0);
	(void)snprintf(want, sizeof(want), "%s/x/y", getenv("HOME"));
	assert_string_equal(buf, want);
	assert_int_equal(sk_config_expand_path("~/x/y", buf, 4), -1);
}

/*
 * OAuth2 keys (issue 4)
 */

static void
test_oauth_keys(void **state)
{
	static const char text[] =
	    "[account outlook]\n"
	    "provider = outlook\n"
	    "user = me@outlook.com\n"
	    "auth = XOAUTH2\n"
	    "oauth-client-id = 9e5f94bc-e8a4-4e73-b8be-63364c29d753\n"
	    "oauth-flow = device\n"
	    "oauth-device-endpoint = http://127.0.0.1:4321/devicecode\n"
	    "oauth-token-endpoint = http://[::1]:4321/token\n"
	    "oauth-scope = https://outlook.office.com/SMTP.Send offline_access\n"
	    "[account gmail]\n"
	    "provider = gmail\n"
	    "auth = OAUTHBEARER\n"
	    "oauth-client-id = 123-abc.apps.googleusercontent.com\n"
	    "oauth-client-secret-file = ~/.secrets/google\n"
	    "oauth-flow = pkce\n"
	    "oauth-auth-endpoint = https://accounts.example/auth?hd=x\n";
	struct sk_config cfg;
	struct sk_error err;
	const struct sk_account *a;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(parse(&cfg, text, &err), 0);
	a = sk_config_find(&cfg, "outlook");
	assert_non_null(a);
	assert_int_equal(a->auth, SK_AUTH_XOAUTH2);
	assert_string_equal(a->oauth_client_id,
	    "9e5f94bc-e8a4-4e73-b8be-63364c29d753");
	assert_int_equal(a->oauth_flow, SK_OAUTH_FLOW_DEVICE);
	assert_string_equal(a->oauth_device_endpoint,
	    "http://127.0.0.1:4321/devicecode");
	assert_string_equal(a->oauth_token_endpoint, "http://[::1]:4321/token");
	assert_string_equal(a->oauth_scope,
	    "https://outlook.office.com/SMTP.Send offline_access");
	assert_null(a->oauth_client_secret);
	assert_null(a->password);
	a = sk_config_find(&cfg, "gmail");
	assert_non_null(a);
	assert_int_equal(a->auth, SK_AUTH_OAUTHBEARER);
	assert_int_equal(a->oauth_flow, SK_OAUTH_FLOW_PKCE);
	assert_string_equal(a->oauth_client_secret_file, "~/.secrets/google");
	assert_string_equal(a->oauth_auth_endpoint,
	    "https://accounts.example/auth?hd=x");
	sk_config_fini(&cfg);
}

static void
test_oauth_key_errors(void **state)
{
	static const struct {
		const char *text;
		const char *message;
	} cases[] = {
		{ "[account a]\noauth-token-endpoint = http://example.com/t\n",
		    "t:2: oauth-token-endpoint: \"http://example.com/t\" is not "
		    "an https:// URL (http:// only to 127.0.0.1, localhost or "
		    "[::1])" },
		{ "[account a]\noauth-device-endpoint = "
		    "http://127.0.0.1:80@evil.example/\n",
		    "t:2: oauth-device-endpoint: \"http://127.0.0.1:80@evil."
		    "example/\" is not an https:// URL (http:// only to "
		    "127.0.0.1, localhost or [::1])" },
		{ "[account a]\noauth-auth-endpoint = ftp://x/\n",
		    "t:2: oauth-auth-endpoint: \"ftp://x/\" is not an https:// "
		    "URL (http:// only to 127.0.0.1, localhost or [::1])" },
		{ "[account a]\noauth-flow = implicit\n",
		    "t:2: oauth-flow: \"implicit\": use device or pkce" },
		{ "[account a]\noauth-client-id = a b\n",
		    "t:2: oauth-client-id: a client id has no spaces" },
		{ "[account a]\noauth-client-secret = s3cr3t\n"
		    "oauth-client-secret-file = /x\n",
		    "t:3: oauth-client-secret-file: this account already has "
		    "oauth-client-secret (line 2); give one" },
		{ "[account a]\noauth-client-secret-file = relative\n",
		    "t:2: oauth-client-secret-file: give an absolute path or "
		    "one starting with ~/" },
		{ "[account a]\noauth-scope = a\noauth-scope = b\n",
		    "t:3: oauth-scope is set twice in [account a] (first at "
		    "line 2)" },
	};
	struct sk_config cfg;
	struct sk_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&cfg, 0, sizeof(cfg));
		assert_int_equal(parse(&cfg, cases[i].text, &err), -1);
		assert_int_equal(err.kind, SK_ERR_CONFIG);
		assert_string_equal(err.message, cases[i].message);
		/* a client secret is never echoed */
		assert_null(strstr(err.message, "s3cr3t"));
		sk_config_fini(&cfg);
	}
}

/* An inline client secret is a password: the file must be private. */
static void
test_oauth_client_secret_private(void **state)
{
	struct fixture *f = *state;
	struct sk_config cfg;
	struct sk_error err;
	char path[PATH_MAX];

	path_in(f, "config", path, sizeof(path));
	write_file(path, "[account g]\nprovider = gmail\n"
	    "oauth-client-id = x.apps.googleusercontent.com\n"
	    "oauth-client-secret = GOCSPX-s3cr3t\n", 0644);
	assert_int_equal(sk_config_load(&cfg, path, &err), -1);
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	assert_non_null(strstr(err.message, "chmod 600"));
	assert_null(strstr(err.message, "s3cr3t"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(sk_config_load(&cfg, path, &err), 0);
	assert_string_equal(cfg.accounts[0].oauth_client_secret,
	    "GOCSPX-s3cr3t");
	sk_config_fini(&cfg);
}

static void
test_oauth_write_reads_back(void **state)
{
	struct fixture *f = *state;
	struct sk_account a;
	struct sk_config cfg;
	struct sk_error err;
	const struct sk_account *b;
	char path[PATH_MAX];

	path_in(f, "config", path, sizeof(path));
	memset(&a, 0, sizeof(a));
	a.name = "o365";
	a.provider = "office365";
	a.user = "me@corp.example";
	a.auth = SK_AUTH_XOAUTH2;
	a.oauth_client_id = "11111111-2222-3333-4444-555555555555";
	a.oauth_flow = SK_OAUTH_FLOW_DEVICE;
	a.oauth_device_endpoint = "https://login.microsoftonline.com/"
	    "contoso.onmicrosoft.com/oauth2/v2.0/devicecode";
	a.oauth_token_endpoint = "https://login.microsoftonline.com/"
	    "contoso.onmicrosoft.com/oauth2/v2.0/token";
	a.oauth_scope = "https://outlook.office.com/SMTP.Send offline_access";
	a.oauth_client_secret_file = "~/.secrets/o365";
	assert_int_equal(sk_config_write_account(path, &a, &err), 0);
	assert_non_null(strstr(read_file(path), "oauth-client-id = "
	    "11111111-2222-3333-4444-555555555555\n"));
	assert_int_equal(sk_config_load(&cfg, path, &err), 0);
	b = sk_config_find(&cfg, "o365");
	assert_non_null(b);
	assert_string_equal(b->oauth_client_id, a.oauth_client_id);
	assert_int_equal(b->oauth_flow, SK_OAUTH_FLOW_DEVICE);
	assert_string_equal(b->oauth_device_endpoint, a.oauth_device_endpoint);
	assert_string_equal(b->oauth_token_endpoint, a.oauth_token_endpoint);
	assert_string_equal(b->oauth_scope, a.oauth_scope);
	assert_string_equal(b->oauth_client_secret_file,
	    a.oauth_client_secret_file);
	sk_config_fini(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_syntax_variants),
		cmocka_unit_test(test_errors_name_file_and_line),
		cmocka_unit_test(test_errors_never_show_password),
		cmocka_unit_test(test_long_line_and_nul),
		cmocka_unit_test(test_later_file_overrides),
		cmocka_unit_test_setup_teardown(test_load_user_and_explicit,
		    setup, teardown),
		cmocka_unit_test(test_by_from),
		cmocka_unit_test(test_default_rules),
		cmocka_unit_test_setup_teardown(
		    test_password_readable_by_others_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_new_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_keeps_the_rest, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_write_no_final_newline_and_header_only, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_follows_symlink,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_write_refuses_what_would_not_read_back, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expand_path, setup,
		    teardown),
		cmocka_unit_test(test_oauth_keys),
		cmocka_unit_test(test_oauth_key_errors),
		cmocka_unit_test_setup_teardown(
		    test_oauth_client_secret_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oauth_write_reads_back,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
