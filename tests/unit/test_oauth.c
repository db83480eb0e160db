/*
 * tests/unit/test_oauth.c: OAuth2 tokens.
 *
 * PKCE against RFC 7636 Appendix B, the token file (round trip, mode
 * 0600, refusals), the expiry rule, the lock (two processes racing to
 * refresh one account refresh it once), the authorization servers'
 * errors, the client made from an account and its preset, and one HTTP
 * exchange each way against a forked one-shot server on 127.0.0.1.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtpkit/auth.h"
#include "smtpkit/base64.h"
#include "smtpkit/client.h"
#include "smtpkit/config.h"
#include "smtpkit/oauth.h"
#include "smtpkit/providers.h"

struct fixture {
	char dir[PATH_MAX];
	char store[PATH_MAX];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	(void)snprintf(f->dir, sizeof(f->dir), "/tmp/test_oauth.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	(void)snprintf(f->store, sizeof(f->store), "%s/state/smtpkit/tokens",
	    f->dir);
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
token_set(struct sk_oauth_token *t, const char *at, const char *rt,
    int64_t expires_at)
{
	memset(t, 0, sizeof(*t));
	t->access_token = strdup(at);
	t->refresh_token = rt != NULL ? strdup(rt) : NULL;
	t->expires_at = expires_at;
	t->scope = strdup("https://outlook.office.com/SMTP.Send offline_access");
	t->token_endpoint = strdup("https://login.example/token");
	assert_non_null(t->access_token);
}

/* ---- PKCE ---- */

static void
test_pkce_rfc7636_appendix_b(void **state)
{
	char out[64];

	(void)state;
	/* the verifier is BASE64URL of the octets the RFC lists */
	assert_int_equal(sk_oauth_pkce_challenge(
	    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", out, sizeof(out)),
	    0);
	assert_string_equal(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
	/* RFC 7636 §4.1: 43 to 128 unreserved characters, nothing else */
	assert_int_equal(sk_oauth_pkce_challenge("short", out, sizeof(out)),
	    -1);
	assert_int_equal(sk_oauth_pkce_challenge(
	    "dBjftJeZ4CVP-mJ92K9E_ngIOE2eA5qTbpWK6T1Gy4I+", out, sizeof(out)),
	    -1);
	assert_int_equal(sk_oauth_pkce_challenge(
	    "dBjftJeZ4CVP-mJ92K9E_ngIOE2eA5qTbpWK6T1Gy4I", out, 10), -1);
}

static void
test_pkce_verifier(void **state)
{
	char a[64], b[64], ch[64];
	size_t i;

	(void)state;
	assert_int_equal(sk_oauth_pkce_verifier(a, sizeof(a), NULL), 0);
	assert_int_equal(sk_oauth_pkce_verifier(b, sizeof(b), NULL), 0);
	assert_int_equal(strlen(a), 43);
	assert_string_not_equal(a, b);
	for (i = 0; a[i] != '\0'; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
		    "nopqrstuvwxyz0123456789-._~", a[i]));
	assert_int_equal(sk_oauth_pkce_challenge(a, ch, sizeof(ch)), 0);
	assert_int_equal(strlen(ch), 43);
	assert_int_equal(sk_oauth_pkce_verifier(a, 20, NULL), -1);
}

/* ---- tokens and their file ---- */

static void
test_token_format_parse(void **state)
{
	struct sk_oauth_token t, u;
	struct sk_error err;
	char *text;

	(void)state;
	token_set(&t, "at-1", "rt-1", 1700000000);
	assert_non_null(text = sk_oauth_token_format(&t));
	assert_int_equal(sk_oauth_token_parse(text, strlen(text), &u, &err), 0);
	assert_string_equal(u.access_token, "at-1");
	assert_string_equal(u.refresh_token, "rt-1");
	assert_int_equal(u.expires_at, 1700000000);
	assert_string_equal(u.scope, t.scope);
	assert_string_equal(u.token_endpoint, t.token_endpoint);
	free(text);
	sk_oauth_token_fini(&u);
	sk_oauth_token_fini(&t);

	/* no refresh token, unknown expiry */
	assert_int_equal(sk_oauth_token_parse("{\"access_token\":\"x\"}", 20,
	    &u, &err), 0);
	assert_null(u.refresh_token);
	assert_int_equal(u.expires_at, 0);
	sk_oauth_token_fini(&u);

	assert_int_equal(sk_oauth_token_parse("[1]", 3, &u, &err), -1);
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	assert_int_equal(sk_oauth_token_parse("{\"refresh_token\":\"r\"}", 21,
	    &u, &err), -1);
	assert_int_equal(sk_oauth_token_parse(
	    "{\"access_token\":\"a b\"}", 22, &u, &err), -1);
	assert_int_equal(sk_oauth_token_parse(
	    "{\"access_token\":\"a\",\"expires_at\":\"soon\"}", 40, &u, &err),
	    -1);
	/* After year 9999: not a time, and would not survive printing. */
	assert_int_equal(sk_oauth_token_parse(
	    "{\"access_token\":\"a\",\"expires_at\":6111111111111111}", 50,
	    &u, &err), -1);
	assert_int_equal(sk_oauth_token_parse(
	    "{\"access_token\":\"a\",\"expires_at\":253402300799}", 46,
	    &u, &err), 0);
	assert_int_equal(u.expires_at, 253402300799LL);
	sk_oauth_token_fini(&u);
	assert_int_equal(sk_oauth_token_parse("{", 1, &u, &err), -1);
}

static void
test_store_round_trip_and_mode(void **state)
{
	struct fixture *f = *state;
	struct sk_oauth_token t, u;
	struct sk_error err;
	struct stat st;
	char path[PATH_MAX];
	bool existed;

	token_set(&t, "at-round", "rt-round", 2000000000);
	assert_int_equal(sk_oauth_store_save(f->store, "work", &t, &err), 0);
	assert_int_equal(sk_oauth_store_path(f->store, "work", path,
	    sizeof(path)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(f->store, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(sk_oauth_store_load(f->store, "work", &u, &err), 0);
	assert_string_equal(u.access_token, "at-round");
	assert_string_equal(u.refresh_token, "rt-round");
	assert_int_equal(u.expires_at, 2000000000);
	sk_oauth_token_fini(&u);

	/* a second save replaces the file whole, still 0600 */
	free(t.access_token);
	t.access_token = strdup("at-second");
	assert_int_equal(sk_oauth_store_save(f->store, "work", &t, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(sk_oauth_store_load(f->store, "work", &u, &err), 0);
	assert_string_equal(u.access_token, "at-second");
	sk_oauth_token_fini(&u);

	/* open to others: refused, and the message names no token */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(sk_oauth_store_load(f->store, "work", &u, &err), -1);
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	assert_non_null(strstr(err.message, "chmod 600"));
	assert_null(strstr(err.message, "at-second"));
	assert_int_equal(chmod(path, 0600), 0);

	/* deleted: nothing stored, which is its own error */
	assert_int_equal(sk_oauth_store_delete(f->store, "work", &existed,
	    &err), 0);
	assert_true(existed);
	assert_int_equal(sk_oauth_store_delete(f->store, "work", &existed,
	    &err), 0);
	assert_false(existed);
	assert_int_equal(sk_oauth_store_load(f->store, "work", &u, &err), -1);
	assert_int_equal(err.kind, SK_ERR_OAUTH);
	assert_int_equal(err.oauth_error, SK_OAUTH_ERR_NO_TOKEN);
	assert_true(sk_oauth_needs_login(&err));

	/* names that are not file names */
	assert_int_equal(sk_oauth_store_save(f->store, "../x", &t, &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	assert_int_equal(sk_oauth_store_save(f->store, ".hidden", &t, &err),
	    -1);
	assert_int_equal(sk_oauth_store_path(f->store, "a/b", path,
	    sizeof(path)), -1);
	sk_oauth_token_fini(&t);
}

static void
test_store_dir(void **state)
{
	char buf[PATH_MAX];

	(void)state;
	assert_int_equal(setenv("XDG_STATE_HOME", "/x/state", 1), 0);
	assert_int_equal(sk_oauth_store_dir(buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/x/state/smtpkit/tokens");
	/* a relative XDG_STATE_HOME is ignored */
	assert_int_equal(setenv("XDG_STATE_HOME", "rel", 1), 0);
	assert_int_equal(setenv("HOME", "/home/u", 1), 0);
	assert_int_equal(sk_oauth_store_dir(buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/home/u/.local/state/smtpkit/tokens");
	assert_int_equal(unsetenv("XDG_STATE_HOME"), 0);
	assert_int_equal(sk_oauth_store_dir(buf, 10), -1);
}

static void
test_expiry(void **state)
{
	struct sk_oauth_token t;
	int64_t now = 1700000000;

	(void)state;
	token_set(&t, "at", "rt", 0);
	/* unknown expiry: the server will say */
	assert_true(sk_oauth_token_fresh(&t, now, SK_OAUTH_REFRESH_MARGIN));
	t.expires_at = now + 3600;
	assert_true(sk_oauth_token_fresh(&t, now, SK_OAUTH_REFRESH_MARGIN));
	t.expires_at = now + 61;
	assert_true(sk_oauth_token_fresh(&t, now, SK_OAUTH_REFRESH_MARGIN));
	/* within a minute of expiry: refresh now */
	t.expires_at = now + 60;
	assert_false(sk_oauth_token_fresh(&t, now, SK_OAUTH_REFRESH_MARGIN));
	t.expires_at = now - 1;
	assert_false(sk_oauth_token_fresh(&t, now, SK_OAUTH_REFRESH_MARGIN));
	assert_true(sk_oauth_token_fresh(&t, now - 100, 0));
	sk_oauth_token_fini(&t);
	assert_false(sk_oauth_token_fresh(&t, now, 0));
	assert_false(sk_oauth_token_fresh(NULL, now, 0));
}

/* ---- the lock ---- */

struct counter {
	const char *path;	/* one octet appended per refresh */
	int delay_ms;
};

static int
count_refresh(void *arg, const struct sk_oauth_token *old,
    struct sk_oauth_token *fresh, struct sk_error *err)
{
	struct counter *c = arg;
	struct timespec ts;
	char at[64];
	int fd;

	(void)err;
	fd = open(c->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1 || write(fd, "r", 1) != 1)
		return -1;
	(void)close(fd);
	/* hold the lock long enough for the other process to want it */
	ts.tv_sec = c->delay_ms / 1000;
	ts.tv_nsec = (long)(c->delay_ms % 1000) * 1000000L;
	(void)nanosleep(&ts, NULL);
	(void)snprintf(at, sizeof(at), "at-refreshed-%ld", (long)getpid());
	memset(fresh, 0, sizeof(*fresh));
	fresh->access_token = strdup(at);
	fresh->refresh_token = strdup(old->refresh_token);
	fresh->expires_at = (int64_t)time(NULL) + 3600;
	return fresh->access_token != NULL ? 0 : -1;
}

/* Child: get the token and write what it got to fd; exit 0 on success. */
static void
racer(const struct fixture *f, struct counter *c, const char *rejected,
    int fd)
{
	struct sk_oauth_token t;
	struct sk_error err;
	bool refreshed;
	size_t n;

	if (sk_oauth_store_get(f->store, "race", rejected, count_refresh, c,
	    &t, &refreshed, &err) == -1)
		_exit(2);
	n = strlen(t.access_token);
	if (write(fd, t.access_token, n) != (ssize_t)n || write(fd, "\n", 1) !=
	    1)
		_exit(3);
	_exit(refreshed ? 0 : 1);
}

static size_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

static void
race(struct fixture *f, const char *rejected, const char *initial_at,
    int64_t initial_exp)
{
	struct sk_oauth_token t;
	struct sk_error err;
	struct counter c;
	char countp[PATH_MAX + 16], got[256];
	int p[2], st[2], refreshed = 0, i;
	pid_t pid[2];
	ssize_t n;
	char *nl;

	(void)snprintf(countp, sizeof(countp), "%s/refreshes", f->dir);
	(void)unlink(countp);
	token_set(&t, initial_at, "rt-race", initial_exp);
	assert_int_equal(sk_oauth_store_save(f->store, "race", &t, &err), 0);
	sk_oauth_token_fini(&t);
	c.path = countp;
	c.delay_ms = 300;
	assert_int_equal(pipe(p), 0);
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0) {
			(void)close(p[0]);
			racer(f, &c, rejected, p[1]);
		}
	}
	(void)close(p[1]);
	for (i = 0; i < 2; i++) {
		assert_int_equal(waitpid(pid[i], &st[i], 0), pid[i]);
		assert_true(WIFEXITED(st[i]));
		assert_true(WEXITSTATUS(st[i]) <= 1);
		refreshed += WEXITSTATUS(st[i]) == 0;
	}
	n = read(p[0], got, sizeof(got) - 1);
	(void)close(p[0]);
	assert_true(n > 0);
	got[n] = '\0';
	/* exactly one refresh, and both processes use its token */
	assert_int_equal(file_size(countp), 1);
	assert_int_equal(refreshed, 1);
	nl = strchr(got, '\n');
	assert_non_null(nl);
	*nl = '\0';
	assert_non_null(strstr(got, "at-refreshed-"));
	assert_non_null(strchr(nl + 1, '\n'));
	*strchr(nl + 1, '\n') = '\0';
	assert_string_equal(nl + 1, got);
	assert_int_equal(sk_oauth_store_load(f->store, "race", &t, &err), 0);
	assert_string_equal(t.access_token, got);
	sk_oauth_token_fini(&t);
}

static void
test_lock_one_refresh_when_expired(void **state)
{
	race(*state, NULL, "at-old", (int64_t)time(NULL) - 10);
}

/* The server refused a token the file still calls valid: both processes
 * saw it refused, one refreshes, the other takes the new one. */
static void
test_lock_one_refresh_when_rejected(void **state)
{
	race(*state, "at-rejected", "at-rejected", (int64_t)time(NULL) + 3600);
}

static void
test_get_without_refresh(void **state)
{
	struct fixture *f = *state;
	struct sk_oauth_token t, u;
	struct sk_error err;
	struct counter c;
	char countp[PATH_MAX + 16];
	bool refreshed = true;

	(void)snprintf(countp, sizeof(countp), "%s/refreshes", f->dir);
	c.path = countp;
	c.delay_ms = 0;
	/* fresh: no refresh, no lock needed */
	token_set(&t, "at-fresh", "rt", (int64_t)time(NULL) + 3600);
	assert_int_equal(sk_oauth_store_save(f->store, "a", &t, &err), 0);
	assert_int_equal(sk_oauth_store_get(f->store, "a", NULL,
	    count_refresh, &c, &u, &refreshed, &err), 0);
	assert_false(refreshed);
	assert_string_equal(u.access_token, "at-fresh");
	assert_int_equal(file_size(countp), 0);
	sk_oauth_token_fini(&u);
	sk_oauth_token_fini(&t);

	/* expired without a way to refresh */
	token_set(&t, "at-old", NULL, (int64_t)time(NULL) - 5);
	assert_int_equal(sk_oauth_store_save(f->store, "b", &t, &err), 0);
	assert_int_equal(sk_oauth_store_get(f->store, "b", NULL, NULL, NULL,
	    &u, &refreshed, &err), -1);
	assert_int_equal(err.kind, SK_ERR_OAUTH);
	assert_true(sk_oauth_needs_login(&err));
	sk_oauth_token_fini(&t);

	/* nothing stored */
	assert_int_equal(sk_oauth_store_get(f->store, "none", NULL,
	    count_refresh, &c, &u, &refreshed, &err), -1);
	assert_int_equal(err.oauth_error, SK_OAUTH_ERR_NO_TOKEN);
}

/* ---- answers of authorization servers ---- */

static void
test_error_parse(void **state)
{
	static const struct {
		const char *json;
		enum sk_oauth_error e;
		const char *desc;
	} cases[] = {
		{ "{\"error\":\"authorization_pending\",\"error_description\":"
		    "\"not yet\"}", SK_OAUTH_ERR_AUTHORIZATION_PENDING,
		    "authorization_pending: not yet" },
		{ "{\"error\":\"slow_down\"}", SK_OAUTH_ERR_SLOW_DOWN,
		    "slow_down" },
		{ "{\"error\":\"expired_token\"}", SK_OAUTH_ERR_EXPIRED_TOKEN,
		    "expired_token" },
		{ "{\"error\":\"invalid_grant\",\"error_description\":"
		    "\"AADSTS70000: revoked\\r\\nline\"}",
		    SK_OAUTH_ERR_INVALID_GRANT,
		    "invalid_grant: AADSTS70000: revoked  line" },
		{ "{\"error\":\"access_denied\"}", SK_OAUTH_ERR_ACCESS_DENIED,
		    "access_denied" },
		{ "{\"error\":\"authorization_declined\"}",
		    SK_OAUTH_ERR_ACCESS_DENIED, "authorization_declined" },
		{ "{\"error\":\"invalid_client\"}", SK_OAUTH_ERR_INVALID_CLIENT,
		    "invalid_client" },
		{ "{\"error\":\"something_new\"}", SK_OAUTH_ERR_OTHER,
		    "something_new" },
		{ "{\"access_token\":\"x\"}", SK_OAUTH_ERR_NONE, "" },
		{ "{\"error\":42}", SK_OAUTH_ERR_NONE, "" },
		{ "<html>500</html>", SK_OAUTH_ERR_NONE, "" },
	};
	char desc[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(sk_oauth_error_parse(cases[i].json,
		    strlen(cases[i].json), desc, sizeof(desc)), cases[i].e);
		assert_string_equal(desc, cases[i].desc);
	}
	assert_int_equal(sk_oauth_error_parse(NULL, 0, NULL, 0),
	    SK_OAUTH_ERR_NONE);
	assert_string_equal(sk_oauth_error_name(SK_OAUTH_ERR_INVALID_GRANT),
	    "invalid_grant");
	assert_string_equal(sk_oauth_error_name(SK_OAUTH_ERR__COUNT),
	    "unknown");
	assert_int_equal(sk_oauth_error_from_name("slow_down"),
	    SK_OAUTH_ERR_SLOW_DOWN);
	assert_int_equal(sk_oauth_error_from_name(""), SK_OAUTH_ERR_NONE);
}

static void
test_token_response(void **state)
{
	static const char ok[] = "{\"access_token\":\"at-x\",\"token_type\":"
	    "\"Bearer\",\"expires_in\":3599,\"refresh_token\":\"rt-x\","
	    "\"scope\":\"https://mail.google.com/\"}";
	static const char quoted[] = "{\"access_token\":\"at-y\",\"token_type\":"
	    "\"bearer\",\"expires_in\":\"300\"}";
	static const char mac[] = "{\"access_token\":\"at-z\",\"token_type\":"
	    "\"mac\"}";
	struct sk_oauth_token t;
	struct sk_error err;

	(void)state;
	assert_int_equal(sk_oauth_token_response(ok, strlen(ok), 1000, &t,
	    &err), 0);
	assert_string_equal(t.access_token, "at-x");
	assert_string_equal(t.refresh_token, "rt-x");
	assert_int_equal(t.expires_at, 4599);
	assert_string_equal(t.scope, "https://mail.google.com/");
	sk_oauth_token_fini(&t);
	assert_int_equal(sk_oauth_token_response(quoted, strlen(quoted), 1000,
	    &t, &err), 0);
	assert_int_equal(t.expires_at, 1300);
	assert_null(t.refresh_token);
	sk_oauth_token_fini(&t);
	assert_int_equal(sk_oauth_token_response(mac, strlen(mac), 0, &t,
	    &err), -1);
	assert_int_equal(err.kind, SK_ERR_PROTOCOL);
	assert_null(strstr(err.message, "at-z"));
	assert_int_equal(sk_oauth_token_response("{}", 2, 0, &t, &err), -1);
	assert_int_equal(sk_oauth_token_response("nope", 4, 0, &t, &err), -1);
}

/* What an SMTP server's 334 error challenge says of the token. */
static void
test_smtp_token_challenge(void **state)
{
	static const char *const json[] = {
		("{\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":"
		    "\"https://mail.google.com/\"}"),
		"{\"status\":\"invalid_token\",\"schemes\":\"bearer\"}",
		"{\"status\":\"insufficient_scope\"}",
		"{\"status\":\"500\"}",
		"{\"nothing\":1}",
	};
	static const enum sk_oauth_error want[] = {
		SK_OAUTH_ERR_INVALID_TOKEN, SK_OAUTH_ERR_INVALID_TOKEN,
		SK_OAUTH_ERR_INVALID_SCOPE, SK_OAUTH_ERR_OTHER,
		SK_OAUTH_ERR_NONE,
	};
	char b64[512];
	struct sk_error e;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(json) / sizeof(json[0]); i++) {
		n = sk_base64_encode(json[i], strlen(json[i]), b64, sizeof(b64));
		assert_true(n != (size_t)-1);
		assert_int_equal(sk_auth_token_error(b64, n), want[i]);
	}
	assert_int_equal(sk_auth_token_error("not base64!", 11),
	    SK_OAUTH_ERR_NONE);
	assert_int_equal(sk_auth_token_error("", 0), SK_OAUTH_ERR_NONE);

	/* which AUTH failures a refreshed token may cure */
	memset(&e, 0, sizeof(e));
	e.stage = SK_STAGE_AUTH;
	e.kind = SK_ERR_REPLY;
	e.code = 535;
	assert_true(sk_oauth_token_refused(&e));
	e.code = 454;
	assert_false(sk_oauth_token_refused(&e));
	e.oauth_error = SK_OAUTH_ERR_INVALID_TOKEN;
	assert_true(sk_oauth_token_refused(&e));
	e.oauth_error = SK_OAUTH_ERR_NONE;
	(void)snprintf(e.server_text, sizeof(e.server_text),
	    "4.7.0 Token EXPIRED");
	assert_true(sk_oauth_token_refused(&e));
	e.stage = SK_STAGE_MAIL;
	assert_false(sk_oauth_token_refused(&e));
}

static void
test_endpoint_ok(void **state)
{
	static const char *const good[] = {
		"https://login.microsoftonline.com/common/oauth2/v2.0/token",
		"https://oauth2.googleapis.com/token",
		"HTTPS://Example.COM:8443/x?y=z",
		"http://127.0.0.1:4321/token",
		"http://localhost/token",
		"http://[::1]:80/",
		"http://127.0.0.1",
	};
	static const char *const bad[] = {
		"http://example.com/token",
		"http://127.0.0.1.evil.example/",
		"http://127.0.0.1@evil.example/",
		"http://127.0.0.1:80@evil.example/",
		"https://user:pw@example.com/",
		"ftp://example.com/",
		"https://",
		"https://example.com:/",
		"https://example.com:80x/",
		"https://exa mple.com/",
		"https://example.com/\n",
		"http://[::2]/",
		"http://[127.0.0.1]/",	/* brackets hold IPv6 only */
		"http://[localhost]:80/",
		"http://::1/",
		"file:///etc/passwd",
		"",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(sk_oauth_endpoint_ok(good[i]));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(sk_oauth_endpoint_ok(bad[i]));
	assert_false(sk_oauth_endpoint_ok(NULL));
}

/* ---- the client, from the account and its preset ---- */

static void
test_client_from_account(void **state)
{
	struct fixture *f = *state;
	struct sk_providers *db;
	const struct sk_provider *outlook, *gmail, *qq;
	struct sk_oauth_client c;
	struct sk_account a;
	struct sk_error err;
	char secret[PATH_MAX + 16];
	int fd;

	db = sk_providers_load(NULL, &err);
	assert_non_null(db);
	outlook = sk_providers_find(db, "hotmail", NULL);
	gmail = sk_providers_find(db, "gmail", NULL);
	qq = sk_providers_find(db, "qq", NULL);
	assert_non_null(outlook);
	assert_non_null(gmail);
	assert_int_equal(outlook->oauth.flow, SK_OAUTH_FLOW_DEVICE);
	assert_int_equal(gmail->oauth.flow, SK_OAUTH_FLOW_PKCE);
	assert_true(gmail->oauth.secret_required);
	assert_false(outlook->oauth.secret_required);
	assert_int_equal(qq->oauth.flow, SK_OAUTH_FLOW_NONE);

	memset(&a, 0, sizeof(a));
	a.name = "o";
	a.origin = "t:1";
	a.user = "me@outlook.com";
	/* OAuth2-only preset, no password: managed, but no client id */
	assert_true(sk_oauth_account_managed(&a, outlook));
	assert_false(sk_oauth_account_managed(&a, qq));
	assert_int_equal(sk_oauth_client_init(&c, &a, outlook, &err), -1);
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	assert_int_equal(err.oauth_error, SK_OAUTH_ERR_NO_CLIENT);

	a.oauth_client_id = "client-1";
	assert_int_equal(sk_oauth_client_init(&c, &a, outlook, &err), 0);
	assert_int_equal(c.flow, SK_OAUTH_FLOW_DEVICE);
	assert_string_equal(c.device_endpoint, "https://login.microsoftonline."
	    "com/common/oauth2/v2.0/devicecode");
	assert_string_equal(c.token_endpoint, "https://login.microsoftonline."
	    "com/common/oauth2/v2.0/token");
	assert_string_equal(c.scope,
	    "https://outlook.office.com/SMTP.Send offline_access");
	assert_int_equal(c.mech, SK_AUTH_XOAUTH2);
	assert_null(c.client_secret);
	sk_oauth_client_fini(&c);

	/* the account's endpoints and mechanism win */
	a.oauth_token_endpoint = "http://127.0.0.1:9/token";
	a.oauth_device_endpoint = "http://127.0.0.1:9/devicecode";
	a.auth = SK_AUTH_OAUTHBEARER;
	assert_int_equal(sk_oauth_client_init(&c, &a, outlook, &err), 0);
	assert_string_equal(c.token_endpoint, "http://127.0.0.1:9/token");
	assert_string_equal(c.device_endpoint, "http://127.0.0.1:9/devicecode");
	assert_int_equal(c.mech, SK_AUTH_OAUTHBEARER);
	sk_oauth_client_fini(&c);

	/* a password source means the token is not ours to manage */
	a.password_env = "TOKEN";
	assert_false(sk_oauth_account_managed(&a, outlook));
	a.password_env = NULL;

	/* no preset: the endpoints choose the flow */
	a.oauth_token_endpoint = "http://127.0.0.1:9/token";
	a.oauth_scope = "s";
	assert_int_equal(sk_oauth_client_init(&c, &a, NULL, &err), 0);
	assert_int_equal(c.flow, SK_OAUTH_FLOW_DEVICE);
	sk_oauth_client_fini(&c);
	a.oauth_device_endpoint = NULL;
	assert_int_equal(sk_oauth_client_init(&c, &a, NULL, &err), -1);
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	a.oauth_auth_endpoint = "http://127.0.0.1:9/authorize";
	assert_int_equal(sk_oauth_client_init(&c, &a, NULL, &err), 0);
	assert_int_equal(c.flow, SK_OAUTH_FLOW_PKCE);
	sk_oauth_client_fini(&c);

	/* Google wants the secret; from a file, first line only */
	memset(&a, 0, sizeof(a));
	a.name = "g";
	a.oauth_client_id = "x.apps.googleusercontent.com";
	assert_int_equal(sk_oauth_client_init(&c, &a, gmail, &err), -1);
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	assert_non_null(strstr(err.message, "oauth-client-secret-file"));
	(void)snprintf(secret, sizeof(secret), "%s/secret", f->dir);
	fd = open(secret, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "GOCSPX-abc\nrest\n", 16), 16);
	(void)close(fd);
	a.oauth_client_secret_file = secret;
	assert_int_equal(sk_oauth_client_init(&c, &a, gmail, &err), 0);
	assert_string_equal(c.client_secret, "GOCSPX-abc");
	assert_string_equal(c.auth_params, "access_type=offline&prompt=consent");
	sk_oauth_client_fini(&c);
	assert_null(c.client_secret);
	sk_providers_free(db);
}

static void
test_provider_oauth_parse_errors(void **state)
{
	static const char *const bad[] = {
		/* OAuth2 data without a flow */
		"[provider p]\nname = P\nhost = smtp.p.example\nport = 587 "
		    "starttls\noauth-scope = s\n",
		/* a flow without its endpoint */
		"[provider p]\nname = P\nhost = smtp.p.example\nport = 587 "
		    "starttls\noauth-flow = device\noauth-token-endpoint = "
		    "https://p.example/t\noauth-scope = s\n",
		/* plain http to the world */
		"[provider p]\nname = P\nhost = smtp.p.example\nport = 587 "
		    "starttls\noauth-token-endpoint = http://p.example/t\n",
		"[provider p]\nname = P\nhost = smtp.p.example\nport = 587 "
		    "starttls\noauth-mech = PLAIN\n",
		"[provider p]\nname = P\nhost = smtp.p.example\nport = 587 "
		    "starttls\noauth-client-secret-required = maybe\n",
		"[provider p]\nname = P\nhost = smtp.p.example\nport = 587 "
		    "starttls\noauth-flow = implicit\n",
	};
	static const char good[] = "[provider p]\nname = P\n"
	    "host = smtp.p.example\nport = 587 starttls\n"
	    "oauth-flow = pkce\n"
	    "oauth-auth-endpoint = https://p.example/auth\n"
	    "oauth-token-endpoint = https://p.example/token\n"
	    "oauth-scope = mail\n"
	    "oauth-mech = OAUTHBEARER\n"
	    "oauth-client-secret-required = yes\n"
	    "oauth-help = Register an app.\n";
	struct sk_providers *db;
	const struct sk_provider *p;
	struct sk_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_non_null(db = sk_providers_new());
		assert_int_equal(sk_providers_parse(db, bad[i], strlen(bad[i]),
		    "t", &err), -1);
		assert_int_equal(err.kind, SK_ERR_CONFIG);
		sk_providers_free(db);
	}
	assert_non_null(db = sk_providers_new());
	assert_int_equal(sk_providers_parse(db, good, strlen(good), "t", &err),
	    0);
	p = sk_providers_find(db, "p", NULL);
	assert_non_null(p);
	assert_int_equal(p->oauth.flow, SK_OAUTH_FLOW_PKCE);
	assert_int_equal(p->oauth.mech, SK_AUTH_OAUTHBEARER);
	assert_true(p->oauth.secret_required);
	assert_string_equal(p->oauth.help, "Register an app.");
	sk_providers_free(db);
}

/* ---- HTTP, against a one-shot server ---- */

struct oneshot {
	pid_t pid;
	unsigned port;
	char req[PATH_MAX + 16];	/* where the child writes the request */
};

/* Serve one connection: read the request, answer `answer` verbatim. */
static void
oneshot_start(struct fixture *f, struct oneshot *o, const char *answer,
    size_t answer_len)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char buf[16384];
	size_t got = 0;
	ssize_t n;
	int lfd, fd, out;
	char *body;
	long clen;

	(void)snprintf(o->req, sizeof(o->req), "%s/request", f->dir);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	o->port = ntohs(sin.sin_port);
	o->pid = fork();
	assert_true(o->pid >= 0);
	if (o->pid != 0) {
		(void)close(lfd);
		return;
	}
	alarm(20);
	if ((fd = accept(lfd, NULL, NULL)) == -1)
		_exit(1);
	for (;;) {
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if ((body = strstr(buf, "\r\n\r\n")) == NULL)
			continue;
		clen = 0;
		if (strstr(buf, "Content-Length: ") != NULL)
			clen = strtol(strstr(buf, "Content-Length: ") + 16,
			    NULL, 10);
		if ((size_t)(body + 4 - buf) + (size_t)clen <= got)
			break;
	}
	out = open(o->req, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out == -1 || write(out, buf, got) != (ssize_t)got)
		_exit(1);
	(void)close(out);
	(void)write(fd, answer, answer_len);
	(void)close(fd);
	_exit(0);
}

static void
oneshot_wait(struct oneshot *o)
{
	int st;

	assert_int_equal(waitpid(o->pid, &st, 0), o->pid);
	assert_true(WIFEXITED(st));
}

static void
test_refresh_http(void **state)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: 63\r\nConnection: close\r\n"
	    "\r\n{\"access_token\":\"at-new\",\"token_type\":\"Bearer\","
	    "\"expires_in\":60}";
	static const char revoked[] = "HTTP/1.1 400 Bad Request\r\n"
	    "Content-Type: application/json\r\nContent-Length: 68\r\n"
	    "Connection: close\r\n\r\n{\"error\":\"invalid_grant\","
	    "\"error_description\":\"AADSTS70000: revoked\"}";
	struct fixture *f = *state;
	struct sk_oauth_client c;
	struct sk_oauth_token old, t;
	struct sk_error err;
	struct oneshot o;
	char url[64];
	int64_t before = (int64_t)time(NULL);

	memset(&c, 0, sizeof(c));
	c.client_id = "client id/1";
	c.timeout_ms = 5000;
	token_set(&old, "at-old", "rt-old+/=", before - 1);

	assert_int_equal(strlen(ok) - (size_t)(strstr(ok, "\r\n\r\n") + 4 - ok),
	    63);
	oneshot_start(f, &o, ok, strlen(ok));
	(void)snprintf(url, sizeof(url), "http://127.0.0.1:%u/token", o.port);
	c.token_endpoint = url;
	assert_int_equal(sk_oauth_refresh(&c, &old, &t, &err), 0);
	oneshot_wait(&o);
	assert_string_equal(t.access_token, "at-new");
	/* the answer had none: the old refresh token and scope stay */
	assert_string_equal(t.refresh_token, "rt-old+/=");
	assert_string_equal(t.scope, old.scope);
	assert_string_equal(t.token_endpoint, url);
	assert_true(t.expires_at >= before + 60);
	sk_oauth_token_fini(&t);
	{
		int fd = open(o.req, O_RDONLY);
		char buf[4096];
		ssize_t n;

		assert_true(fd >= 0);
		n = read(fd, buf, sizeof(buf) - 1);
		(void)close(fd);
		assert_true(n > 0);
		buf[n] = '\0';
		assert_non_null(strstr(buf, "POST /token HTTP/1.1\r\n"));
		assert_non_null(strstr(buf, "Content-Type: application/"
		    "x-www-form-urlencoded"));
		assert_non_null(strstr(buf, "grant_type=refresh_token&"
		    "refresh_token=rt-old%2B%2F%3D&client_id=client%20id%2F1"));
	}

	assert_int_equal(strlen(revoked) -
	    (size_t)(strstr(revoked, "\r\n\r\n") + 4 - revoked), 68);
	oneshot_start(f, &o, revoked, strlen(revoked));
	(void)snprintf(url, sizeof(url), "http://127.0.0.1:%u/token", o.port);
	c.token_endpoint = url;
	assert_int_equal(sk_oauth_refresh(&c, &old, &t, &err), -1);
	oneshot_wait(&o);
	assert_int_equal(err.kind, SK_ERR_OAUTH);
	assert_int_equal(err.oauth_error, SK_OAUTH_ERR_INVALID_GRANT);
	assert_true(sk_oauth_needs_login(&err));
	assert_non_null(strstr(err.message, "revoked"));
	assert_null(strstr(err.message, "rt-old"));

	/* no refresh token at all */
	free(old.refresh_token);
	old.refresh_token = NULL;
	assert_int_equal(sk_oauth_refresh(&c, &old, &t, &err), -1);
	assert_int_equal(err.oauth_error, SK_OAUTH_ERR_NO_REFRESH_TOKEN);

	/* http to the world is refused before any connection */
	old.refresh_token = strdup("rt");
	c.token_endpoint = "http://192.0.2.1/token";
	assert_int_equal(sk_oauth_refresh(&c, &old, &t, &err), -1);
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	sk_oauth_token_fini(&old);
}

/* An answer larger than the limit is refused, not stored. */
static void
test_http_size_limit(void **state)
{
	struct fixture *f = *state;
	struct sk_oauth_client c;
	struct sk_oauth_token old, t;
	struct sk_error err;
	struct oneshot o;
	char url[64], *big;
	size_t body = SK_OAUTH_HTTP_BODY_MAX + 1000, n;

	big = malloc(body + 200);
	assert_non_null(big);
	n = (size_t)snprintf(big, 200, "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nConnection: close\r\n\r\n");
	memset(big + n, ' ', body);
	n += body;
	memset(&c, 0, sizeof(c));
	c.client_id = "c";
	c.timeout_ms = 5000;
	token_set(&old, "at", "rt", 1);
	oneshot_start(f, &o, big, n);
	(void)snprintf(url, sizeof(url), "http://127.0.0.1:%u/token", o.port);
	c.token_endpoint = url;
	assert_int_equal(sk_oauth_refresh(&c, &old, &t, &err), -1);
	oneshot_wait(&o);
	assert_int_equal(err.kind, SK_ERR_PROTOCOL);
	assert_non_null(strstr(err.message, "KB"));
	sk_oauth_token_fini(&old);
	free(big);
}

/* Nothing listens: a connection error, quickly. */
static void
test_http_refused(void **state)
{
	struct sk_oauth_client c;
	struct sk_oauth_token old, t;
	struct sk_error err;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char url[64];
	int fd;

	(void)state;
	/* a port that was free a moment ago */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	(void)close(fd);
	(void)snprintf(url, sizeof(url), "http://127.0.0.1:%u/token",
	    ntohs(sin.sin_port));
	memset(&c, 0, sizeof(c));
	c.client_id = "c";
	c.token_endpoint = url;
	c.timeout_ms = 5000;
	token_set(&old, "at", "rt", 1);
	assert_int_equal(sk_oauth_refresh(&c, &old, &t, &err), -1);
	assert_int_equal(err.kind, SK_ERR_REFUSED);
	assert_int_equal(err.stage, SK_STAGE_AUTH);
	sk_oauth_token_fini(&old);
}

/*
 * The engine keeps what the error challenge said of the token for the
 * final 5xx: the caller learns that a refresh may cure it.
 */
static void
test_engine_reports_refused_token(void **state)
{
	static const char json[] = "{\"status\":\"401\",\"schemes\":\"bearer\","
	    "\"scope\":\"https://mail.google.com/\"}";
	struct sk_client_config cc;
	struct sk_client *c;
	struct sk_event ev;
	struct sk_error err;
	char line[512], b64[256];
	const char *out;
	size_t len, n;
	bool failed = false;

	(void)state;
	memset(&cc, 0, sizeof(cc));
	cc.helo_name = "client.test";
	cc.tls_mode = SK_TLS_MODE_IMPLICIT;	/* no STARTTLS to go through */
	cc.user = "me@gmail.com";
	cc.secret = "ya29.token";
	cc.auth_mech = SK_AUTH_XOAUTH2;
	assert_non_null(c = sk_client_new(&cc, &err));
	assert_int_equal(sk_client_feed(c, "220 mx.test ESMTP\r\n", 19), 0);
	out = sk_client_output(c, &len);
	assert_true(len > 0 && strncmp(out, "EHLO ", 5) == 0);
	sk_client_sent(c, len);
	(void)snprintf(line, sizeof(line), "250-mx.test\r\n250 AUTH XOAUTH2\r\n");
	assert_int_equal(sk_client_feed(c, line, strlen(line)), 0);
	out = sk_client_output(c, &len);
	assert_true(len > 0 && strncmp(out, "AUTH XOAUTH2 ", 13) == 0);
	sk_client_sent(c, len);
	n = sk_base64_encode(json, strlen(json), b64, sizeof(b64));
	assert_true(n != (size_t)-1);
	(void)snprintf(line, sizeof(line), "334 %s\r\n", b64);
	assert_int_equal(sk_client_feed(c, line, strlen(line)), 0);
	out = sk_client_output(c, &len);
	/* Google's XOAUTH2: an empty line completes the exchange */
	assert_int_equal(len, 2);
	assert_memory_equal(out, "\r\n", 2);
	sk_client_sent(c, len);
	(void)snprintf(line, sizeof(line), "535 5.7.8 Username and Password "
	    "not accepted\r\n");
	(void)sk_client_feed(c, line, strlen(line));
	while (sk_client_next_event(c, &ev))
		if (ev.type == SK_EV_ERROR) {
			failed = true;
			assert_int_equal(ev.detail.stage, SK_STAGE_AUTH);
			assert_int_equal(ev.detail.code, 535);
			assert_int_equal(ev.detail.oauth_error,
			    SK_OAUTH_ERR_INVALID_TOKEN);
			assert_true(sk_oauth_token_refused(&ev.detail));
			assert_null(strstr(ev.detail.message, "ya29"));
		}
	assert_true(failed);
	sk_client_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkce_rfc7636_appendix_b),
		cmocka_unit_test(test_pkce_verifier),
		cmocka_unit_test(test_token_format_parse),
		cmocka_unit_test_setup_teardown(test_store_round_trip_and_mode,
		    setup, teardown),
		cmocka_unit_test(test_store_dir),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test_setup_teardown(
		    test_lock_one_refresh_when_expired, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_lock_one_refresh_when_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_without_refresh,
		    setup, teardown),
		cmocka_unit_test(test_error_parse),
		cmocka_unit_test(test_token_response),
		cmocka_unit_test(test_smtp_token_challenge),
		cmocka_unit_test(test_engine_reports_refused_token),
		cmocka_unit_test(test_endpoint_ok),
		cmocka_unit_test_setup_teardown(test_client_from_account,
		    setup, teardown),
		cmocka_unit_test(test_provider_oauth_parse_errors),
		cmocka_unit_test_setup_teardown(test_refresh_http, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_http_size_limit, setup,
		    teardown),
		cmocka_unit_test(test_http_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
