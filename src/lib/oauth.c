/*
 * smtpkit: OAuth2 tokens: the device and PKCE sign-ins, refreshing, and
 * the per-account token files.
 *
 * Three kinds of secret pass through here: access and refresh tokens,
 * authorization codes (with their PKCE verifiers), client secrets.  None
 * of them is ever traced or put into an error message, and every buffer
 * that held one is wiped before it is freed: the HTTP bodies, the forms,
 * the JSON trees.
 */
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "smtpkit/base64.h"
#include "smtpkit/clock.h"
#include "smtpkit/oauth.h"
#include "file.h"
#include "sbuf.h"
#include "smtpkit/smtpkit.h"

#define DEVICE_GRANT	"urn:ietf:params:oauth:grant-type:device_code"
#define ACCOUNT_MAX	64		/* as config.c's account names */
#define SECRET_FILE_MAX	4096
#define LOCK_WAIT_MS	120000
#define LOCK_POLL_MS	25
#define REQUEST_MAX	8192		/* the browser's redirect request */
#define REQUEST_WAIT_MS	10000		/* ... and the wait for all of it */
#define DEVICE_INTERVAL_DEFAULT	5	/* RFC 8628 §3.2 */
#define DEVICE_EXPIRES_DEFAULT	900	/* when a server leaves it out */
#define SLOW_DOWN_STEP	5		/* RFC 8628 §3.5 */

/* ---- small helpers ---- */

static void
wipe_free(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* ASCII only: the CLI sets a locale, and these are protocol words. */
static int
ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
ascii_casecmp(const char *a, const char *b)
{
	int ca, cb;

	do {
		ca = ascii_lower((unsigned char)*a++);
		cb = ascii_lower((unsigned char)*b++);
	} while (ca == cb && ca != 0);
	return ca - cb;
}

static bool
ascii_casestr(const char *hay, const char *needle)
{
	size_t n = strlen(needle), i;

	for (; *hay != '\0'; hay++) {
		for (i = 0; i < n && hay[i] != '\0' &&
		    ascii_lower((unsigned char)hay[i]) ==
		    ascii_lower((unsigned char)needle[i]); i++)
			;
		if (i == n)
			return true;
	}
	return n == 0;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* RFC 3986 §2.3: unreserved characters stay, the rest is %XX. */
static void
ob_urlenc(struct sk__sbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;
	char esc[3];

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			sk__sbuf_add(b, s, 1);
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[c >> 4];
		esc[2] = hex[c & 15];
		sk__sbuf_add(b, esc, 3);
	}
}

/* One "name=value" of an application/x-www-form-urlencoded body or query. */
static void
ob_param(struct sk__sbuf *b, const char *name, const char *value)
{
	if (value == NULL)
		return;
	if (b->len > 0 && b->p[b->len - 1] != '?')
		sk__sbuf_add(b, "&", 1);
	sk__sbuf_str(b, name);
	sk__sbuf_add(b, "=", 1);
	ob_urlenc(b, value);
}

/* Wipe the strings of a cJSON tree: it may hold tokens. */
static void
json_wipe(cJSON *j)
{
	for (; j != NULL; j = j->next) {
		if (j->valuestring != NULL)
			OPENSSL_cleanse(j->valuestring, strlen(j->valuestring));
		json_wipe(j->child);
	}
}

static void
json_wipe_delete(cJSON *j)
{
	json_wipe(j);
	cJSON_Delete(j);
}

static const char *
json_string(const cJSON *j, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);

	return cJSON_IsString(v) && v->valuestring != NULL ? v->valuestring :
	    NULL;
}

/*
 * The last second of year 9999.  A later expires_at is not a time, and
 * refusing it keeps the number to 12 digits: cJSON prints numbers with 15
 * significant digits when they compare equal within DBL_EPSILON, which
 * loses the last digit of integers above about 4.5e15.
 */
#define EXPIRES_AT_MAX	253402300799LL

/* A number, or a string of digits (some servers quote expires_in). */
static bool
json_int(const cJSON *j, const char *name, long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
	char *end;
	long long n;

	if (cJSON_IsNumber(v)) {
		if (v->valuedouble < -9.0e15 || v->valuedouble > 9.0e15)
			return false;
		*out = (long long)v->valuedouble;
		return true;
	}
	if (cJSON_IsString(v) && v->valuestring != NULL &&
	    v->valuestring[0] >= '0' && v->valuestring[0] <= '9') {
		errno = 0;
		n = strtoll(v->valuestring, &end, 10);
		if (errno == 0 && *end == '\0') {
			*out = n;
			return true;
		}
	}
	return false;
}

/* No control characters in what we show of a server's words. */
static void
clean_inplace(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

static void
clean_copy(char *dst, size_t cap, const char *src)
{
	(void)snprintf(dst, cap, "%s", src != NULL ? src : "");
	clean_inplace(dst);
}

static int
oauth_fail(struct sk_error *err, enum sk_error_kind kind,
    enum sk_oauth_error oe, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Every failure here is one of the AUTH stage: no token, no login. */
static int
oauth_fail(struct sk_error *err, enum sk_error_kind kind,
    enum sk_oauth_error oe, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)sk_error_setv(err, SK_STAGE_AUTH, kind, fmt, ap);
	va_end(ap);
	if (err != NULL)
		err->oauth_error = oe;
	return -1;
}

static int
local_fail(struct sk_error *err, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
local_fail(struct sk_error *err, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)sk_error_setv(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, fmt, ap);
	va_end(ap);
	if (err != NULL)
		err->sys_errno = e;
	return -1;
}

/* ---- OAuth2 error codes ---- */

static const struct {
	const char *name;
	enum sk_oauth_error e;
} error_codes[] = {
	{ "authorization_pending", SK_OAUTH_ERR_AUTHORIZATION_PENDING },
	{ "slow_down", SK_OAUTH_ERR_SLOW_DOWN },
	{ "expired_token", SK_OAUTH_ERR_EXPIRED_TOKEN },
	{ "access_denied", SK_OAUTH_ERR_ACCESS_DENIED },
	/* Microsoft's word for access_denied in the device flow */
	{ "authorization_declined", SK_OAUTH_ERR_ACCESS_DENIED },
	{ "invalid_grant", SK_OAUTH_ERR_INVALID_GRANT },
	{ "invalid_client", SK_OAUTH_ERR_INVALID_CLIENT },
	{ "unauthorized_client", SK_OAUTH_ERR_UNAUTHORIZED_CLIENT },
	{ "invalid_scope", SK_OAUTH_ERR_INVALID_SCOPE },
	{ "invalid_request", SK_OAUTH_ERR_INVALID_REQUEST },
	{ "unsupported_grant_type", SK_OAUTH_ERR_UNSUPPORTED_GRANT_TYPE },
	{ "invalid_token", SK_OAUTH_ERR_INVALID_TOKEN },
};

enum sk_oauth_error
sk_oauth_error_from_name(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return SK_OAUTH_ERR_NONE;
	for (i = 0; i < sizeof(error_codes) / sizeof(error_codes[0]); i++)
		if (strcmp(s, error_codes[i].name) == 0)
			return error_codes[i].e;
	return SK_OAUTH_ERR_OTHER;
}

enum sk_oauth_error
sk_oauth_error_parse(const char *json, size_t len, char *desc, size_t cap)
{
	const char *code, *text;
	enum sk_oauth_error e;
	char both[SK_ERROR_TEXT_MAX];
	cJSON *j;

	if (desc != NULL && cap > 0)
		desc[0] = '\0';
	if (json == NULL || (j = cJSON_ParseWithLength(json, len)) == NULL)
		return SK_OAUTH_ERR_NONE;
	if (!cJSON_IsObject(j) || (code = json_string(j, "error")) == NULL ||
	    code[0] == '\0') {
		json_wipe_delete(j);
		return SK_OAUTH_ERR_NONE;
	}
	e = sk_oauth_error_from_name(code);
	if (desc != NULL && cap > 0) {
		text = json_string(j, "error_description");
		(void)snprintf(both, sizeof(both), "%.60s%s%s", code,
		    text != NULL ? ": " : "", text != NULL ? text : "");
		clean_copy(desc, cap, both);
	}
	json_wipe_delete(j);
	return e;
}

/* ---- tokens ---- */

void
sk_oauth_token_fini(struct sk_oauth_token *t)
{
	if (t == NULL)
		return;
	wipe_free(t->access_token);
	wipe_free(t->refresh_token);
	free(t->scope);
	free(t->token_endpoint);
	memset(t, 0, sizeof(*t));
}

bool
sk_oauth_token_fresh(const struct sk_oauth_token *t, int64_t now,
    int margin_s)
{
	if (t == NULL || t->access_token == NULL || t->access_token[0] == '\0')
		return false;
	if (t->expires_at == 0)
		return true;
	return t->expires_at - now > (int64_t)margin_s;
}

/* Tokens go into HTTP headers and SASL messages: printable ASCII only. */
static bool
token_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

char *
sk_oauth_token_format(const struct sk_oauth_token *t)
{
	cJSON *j;
	char *s = NULL;

	if (t == NULL || t->access_token == NULL)
		return NULL;
	if ((j = cJSON_CreateObject()) == NULL)
		return NULL;
	if (cJSON_AddStringToObject(j, "access_token", t->access_token) ==
	    NULL ||
	    (t->refresh_token != NULL && cJSON_AddStringToObject(j,
	    "refresh_token", t->refresh_token) == NULL) ||
	    cJSON_AddNumberToObject(j, "expires_at", (double)t->expires_at) ==
	    NULL ||
	    (t->scope != NULL && cJSON_AddStringToObject(j, "scope",
	    t->scope) == NULL) ||
	    (t->token_endpoint != NULL && cJSON_AddStringToObject(j,
	    "token_endpoint", t->token_endpoint) == NULL))
		goto out;
	s = cJSON_Print(j);
out:
	json_wipe_delete(j);
	return s;
}

int
sk_oauth_token_parse(const char *json, size_t len, struct sk_oauth_token *t,
    struct sk_error *err)
{
	const char *at, *rt, *scope, *ep;
	long long exp = 0;
	cJSON *j;

	memset(t, 0, sizeof(*t));
	j = json != NULL ? cJSON_ParseWithLength(json, len) : NULL;
	if (!cJSON_IsObject(j)) {
		json_wipe_delete(j);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "not a token file (JSON object expected)");
	}
	at = json_string(j, "access_token");
	rt = json_string(j, "refresh_token");
	scope = json_string(j, "scope");
	ep = json_string(j, "token_endpoint");
	if (cJSON_GetObjectItemCaseSensitive(j, "expires_at") != NULL &&
	    (!json_int(j, "expires_at", &exp) || exp < 0 ||
	    exp > EXPIRES_AT_MAX)) {
		json_wipe_delete(j);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "not a token file (expires_at is not a time)");
	}
	if (!token_ok(at) || (rt != NULL && !token_ok(rt))) {
		json_wipe_delete(j);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "not a token file (no access_token, or a token with "
		    "spaces or control characters)");
	}
	t->expires_at = (int64_t)exp;
	if ((t->access_token = strdup(at)) == NULL ||
	    (rt != NULL && (t->refresh_token = strdup(rt)) == NULL) ||
	    (scope != NULL && (t->scope = strdup(scope)) == NULL) ||
	    (ep != NULL && (t->token_endpoint = strdup(ep)) == NULL)) {
		json_wipe_delete(j);
		sk_oauth_token_fini(t);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	json_wipe_delete(j);
	return 0;
}

int
sk_oauth_token_response(const char *json, size_t len, int64_t now,
    struct sk_oauth_token *t, struct sk_error *err)
{
	const char *at, *rt, *type, *scope;
	long long expires_in;
	cJSON *j;

	memset(t, 0, sizeof(*t));
	if (json == NULL || (j = cJSON_ParseWithLength(json, len)) == NULL)
		return oauth_fail(err, SK_ERR_PROTOCOL, SK_OAUTH_ERR_NONE,
		    "the token endpoint's answer is not JSON");
	at = json_string(j, "access_token");
	rt = json_string(j, "refresh_token");
	type = json_string(j, "token_type");
	scope = json_string(j, "scope");
	if (!token_ok(at) || (rt != NULL && !token_ok(rt))) {
		json_wipe_delete(j);
		return oauth_fail(err, SK_ERR_PROTOCOL, SK_OAUTH_ERR_NONE,
		    "the token endpoint's answer has no usable access_token");
	}
	/* RFC 6750: SMTP's XOAUTH2 and OAUTHBEARER carry bearer tokens. */
	if (type != NULL && ascii_casecmp(type, "bearer") != 0) {
		char shown[40];

		clean_copy(shown, sizeof(shown), type);
		json_wipe_delete(j);
		return oauth_fail(err, SK_ERR_PROTOCOL, SK_OAUTH_ERR_NONE,
		    "the token endpoint issued a token of type \"%s\", not a "
		    "Bearer token", shown);
	}
	if (json_int(j, "expires_in", &expires_in) && expires_in > 0 &&
	    expires_in < 100LL * 365 * 86400)
		t->expires_at = now + (int64_t)expires_in;
	if ((t->access_token = strdup(at)) == NULL ||
	    (rt != NULL && (t->refresh_token = strdup(rt)) == NULL) ||
	    (scope != NULL && (t->scope = strdup(scope)) == NULL)) {
		json_wipe_delete(j);
		sk_oauth_token_fini(t);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	json_wipe_delete(j);
	return 0;
}

/* ---- PKCE ---- */

/* RFC 4648 §5 without padding, as RFC 7636 §3 wants it. */
static size_t
base64url(const unsigned char *in, size_t n, char *out, size_t cap)
{
	size_t len, i;

	if ((len = sk_base64_encode(in, n, out, cap)) == (size_t)-1)
		return (size_t)-1;
	while (len > 0 && out[len - 1] == '=')
		out[--len] = '\0';
	for (i = 0; i < len; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return len;
}

static int
random_bytes(unsigned char *buf, size_t n, struct sk_error *err)
{
	size_t off = 0;
	ssize_t r;

	while (off < n) {
		r = getrandom(buf + off, n - off, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return local_fail(err, errno, "getrandom: %s",
			    strerror(errno));
		off += (size_t)r;
	}
	return 0;
}

/* 32 random octets, base64url: 43 characters (RFC 7636 §4.1). */
static int
random_word(char *out, size_t cap, size_t octets, struct sk_error *err)
{
	unsigned char raw[64];

	if (octets > sizeof(raw))
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "too many random octets asked for");
	if (random_bytes(raw, octets, err) == -1)
		return -1;
	if (base64url(raw, octets, out, cap) == (size_t)-1) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "buffer too small");
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int
sk_oauth_pkce_verifier(char *out, size_t cap, struct sk_error *err)
{
	return random_word(out, cap, 32, err);
}

int
sk_oauth_pkce_challenge(const char *verifier, char *out, size_t cap)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t n, i;
	char c;

	if (verifier == NULL)
		return -1;
	/* RFC 7636 §4.1: 43 to 128 characters of [A-Za-z0-9-._~] */
	n = strlen(verifier);
	if (n < 43 || n > 128)
		return -1;
	for (i = 0; i < n; i++) {
		c = verifier[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~'))
			return -1;
	}
	if (EVP_Digest(verifier, n, md, &mdlen, EVP_sha256(), NULL) != 1)
		return -1;
	return base64url(md, mdlen, out, cap) == (size_t)-1 ? -1 : 0;
}

/* ---- HTTP ---- */

struct http_resp {
	char *body;
	size_t len, cap;
	bool too_big;
	long status;
};

static void
resp_free(struct http_resp *r)
{
	if (r->body != NULL) {
		OPENSSL_cleanse(r->body, r->cap);
		free(r->body);
	}
	memset(r, 0, sizeof(*r));
}

static size_t
http_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct http_resp *r = arg;
	size_t n = size * nmemb, ncap;
	char *nb;

	if (n > SK_OAUTH_HTTP_BODY_MAX - r->len) {
		r->too_big = true;
		return 0;	/* curl stops with CURLE_WRITE_ERROR */
	}
	if (r->len + n + 1 > r->cap) {
		ncap = r->cap != 0 ? r->cap : 4096;
		while (ncap < r->len + n + 1)
			ncap *= 2;
		if ((nb = malloc(ncap)) == NULL)
			return 0;
		if (r->len > 0)
			memcpy(nb, r->body, r->len);
		if (r->body != NULL) {
			OPENSSL_cleanse(r->body, r->cap);
			free(r->body);
		}
		r->body = nb;
		r->cap = ncap;
	}
	memcpy(r->body + r->len, p, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static bool
loopback_host(const char *h)
{
	return strcmp(h, "127.0.0.1") == 0 || strcmp(h, "::1") == 0 ||
	    strcmp(h, "[::1]") == 0 || ascii_casecmp(h, "localhost") == 0;
}

/*
 * libcurl is loaded the first time an OAuth2 request is made, not at
 * start-up: it brings some thirty libraries (LDAP, Kerberos, GnuTLS,
 * RTMP...) whose loading every plain send and sendmail call would pay for.
 */
static struct {
	bool tried;
	void *handle;
	__typeof__(&curl_easy_init) easy_init;
	__typeof__(&curl_easy_setopt) easy_setopt;
	__typeof__(&curl_easy_perform) easy_perform;
	__typeof__(&curl_easy_getinfo) easy_getinfo;
	__typeof__(&curl_easy_cleanup) easy_cleanup;
	__typeof__(&curl_easy_strerror) easy_strerror;
	__typeof__(&curl_slist_append) slist_append;
	__typeof__(&curl_slist_free_all) slist_free_all;
	__typeof__(&curl_url) url;
	__typeof__(&curl_url_set) url_set;
	__typeof__(&curl_url_get) url_get;
	__typeof__(&curl_url_cleanup) url_cleanup;
	__typeof__(&curl_free) free;
} lc;

static bool
curl_sym(const char *name, void *fp, size_t size)
{
	void *p = dlsym(lc.handle, name);

	if (p == NULL)
		return false;
	/* POSIX guarantees a data pointer can hold a function's address. */
	memcpy(fp, &p, size);
	return true;
}

static int
curl_load(struct sk_error *err)
{
#define SYM(field, name) curl_sym(name, &lc.field, sizeof(lc.field))
	if (!lc.tried) {
		lc.tried = true;
		lc.handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
		if (lc.handle != NULL && !(SYM(easy_init, "curl_easy_init") &&
		    SYM(easy_setopt, "curl_easy_setopt") &&
		    SYM(easy_perform, "curl_easy_perform") &&
		    SYM(easy_getinfo, "curl_easy_getinfo") &&
		    SYM(easy_cleanup, "curl_easy_cleanup") &&
		    SYM(easy_strerror, "curl_easy_strerror") &&
		    SYM(slist_append, "curl_slist_append") &&
		    SYM(slist_free_all, "curl_slist_free_all") &&
		    SYM(url, "curl_url") && SYM(url_set, "curl_url_set") &&
		    SYM(url_get, "curl_url_get") &&
		    SYM(url_cleanup, "curl_url_cleanup") &&
		    SYM(free, "curl_free"))) {
			(void)dlclose(lc.handle);
			lc.handle = NULL;
		}
	}
#undef SYM
	if (lc.handle == NULL)
		return oauth_fail(err, SK_ERR_CONFIG, SK_OAUTH_ERR_NONE,
		    "OAuth2 needs libcurl 7.85 or later (libcurl.so.4), which "
		    "could not be loaded; install it (apt-get install "
		    "libcurl4)");
	return 0;
}

/*
 * Check url the way curl will read it, not only as text: https, or http
 * to this machine.  *loopback set.
 */
static int
http_check_url(const char *url, bool *loopback, struct sk_error *err)
{
	char *scheme = NULL, *host = NULL;
	CURLU *u;
	int rc = 0;

	*loopback = false;
	if (!sk_oauth_endpoint_ok(url))
		return oauth_fail(err, SK_ERR_CONFIG, SK_OAUTH_ERR_NONE,
		    "%.200s is not an https:// URL (http:// is taken only for "
		    "127.0.0.1, localhost or [::1])", url != NULL ? url : "");
	if (curl_load(err) == -1)
		return -1;
	if ((u = lc.url()) == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	if (lc.url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    lc.url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    lc.url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		rc = oauth_fail(err, SK_ERR_CONFIG, SK_OAUTH_ERR_NONE,
		    "%.200s is not a URL curl can use", url);
	else {
		*loopback = loopback_host(host);
		if (ascii_casecmp(scheme, "https") != 0 &&
		    !(ascii_casecmp(scheme, "http") == 0 && *loopback))
			rc = oauth_fail(err, SK_ERR_CONFIG, SK_OAUTH_ERR_NONE,
			    "%.200s is not an https:// URL (http:// is taken "
			    "only for 127.0.0.1, localhost or [::1])", url);
	}
	lc.free(scheme);
	lc.free(host);
	lc.url_cleanup(u);
	return rc;
}

/* A curl failure as an error of ours, naming where it went. */
static int
http_error(CURLcode rc, const char *url, const char *ebuf,
    const struct http_resp *r, int timeout_ms, struct sk_error *err)
{
	enum sk_error_kind kind;
	const char *why = ebuf[0] != '\0' ? ebuf : lc.easy_strerror(rc);

	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		kind = SK_ERR_DNS;
		break;
	case CURLE_COULDNT_CONNECT:
		kind = SK_ERR_REFUSED;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		return oauth_fail(err, SK_ERR_TIMEOUT, SK_OAUTH_ERR_NONE,
		    "%.200s did not answer within %d s", url,
		    (timeout_ms + 999) / 1000);
	case CURLE_PEER_FAILED_VERIFICATION:
		kind = SK_ERR_TLS_VERIFY;
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
		kind = SK_ERR_TLS_HANDSHAKE;
		break;
	case CURLE_GOT_NOTHING:
		kind = SK_ERR_EOF;
		break;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		kind = SK_ERR_RESET;
		break;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (r->too_big || rc == CURLE_FILESIZE_EXCEEDED)
			return oauth_fail(err, SK_ERR_PROTOCOL,
			    SK_OAUTH_ERR_NONE, "%.200s answered with more than "
			    "%d KB: not an OAuth2 answer", url,
			    SK_OAUTH_HTTP_BODY_MAX / 1024);
		kind = SK_ERR_LOCAL;
		break;
	case CURLE_OUT_OF_MEMORY:
		kind = SK_ERR_LOCAL;
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		kind = SK_ERR_CONFIG;
		break;
	default:
		kind = SK_ERR_PROTOCOL;
		break;
	}
	return oauth_fail(err, kind, SK_OAUTH_ERR_NONE, "%.200s: %s", url, why);
}

/*
 * POST form (application/x-www-form-urlencoded) to url; the answer's
 * status and body in r (wipe with resp_free).  0 when an HTTP answer came,
 * whatever its status.
 */
static int
http_post(const struct sk_oauth_client *c, const char *url, const char *form,
    const char *what, struct http_resp *r, struct sk_error *err)
{
	char ebuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs = NULL, *h;
	int timeout = c->timeout_ms > 0 ? c->timeout_ms :
	    SK_OAUTH_HTTP_TIMEOUT_MS;
	bool loopback;
	CURLcode rc;
	CURL *cu;

	memset(r, 0, sizeof(*r));
	if (http_check_url(url, &loopback, err) == -1)
		return -1;
	if ((cu = lc.easy_init()) == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "cannot start libcurl");
	h = lc.slist_append(hdrs, "Accept: application/json");
	if (h == NULL) {
		lc.easy_cleanup(cu);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	hdrs = h;
	ebuf[0] = '\0';
	sk_trace_printf(&c->trace, SK_TRACE_INFO, "POST %s (%s)", url, what);
	(void)lc.easy_setopt(cu, CURLOPT_URL, url);
	/* Belt and braces with http_check_url: never another protocol, and
	 * never a redirect (a token request is not to be replayed). */
	(void)lc.easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "https,http");
	(void)lc.easy_setopt(cu, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	(void)lc.easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
	(void)lc.easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	(void)lc.easy_setopt(cu, CURLOPT_TIMEOUT_MS, (long)timeout);
	(void)lc.easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout);
	(void)lc.easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 1L);
	(void)lc.easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 2L);
	(void)lc.easy_setopt(cu, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)SK_OAUTH_HTTP_BODY_MAX);
	/* A proxy of the environment is for the world, not this machine. */
	if (loopback)
		(void)lc.easy_setopt(cu, CURLOPT_NOPROXY, "*");
	(void)lc.easy_setopt(cu, CURLOPT_USERAGENT,
	    "smtpkit/" SMTPKIT_VERSION);
	(void)lc.easy_setopt(cu, CURLOPT_HTTPHEADER, hdrs);
	(void)lc.easy_setopt(cu, CURLOPT_POSTFIELDS, form);
	(void)lc.easy_setopt(cu, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
	(void)lc.easy_setopt(cu, CURLOPT_WRITEFUNCTION, http_write);
	(void)lc.easy_setopt(cu, CURLOPT_WRITEDATA, r);
	(void)lc.easy_setopt(cu, CURLOPT_ERRORBUFFER, ebuf);
	rc = lc.easy_perform(cu);
	if (rc == CURLE_OK)
		(void)lc.easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &r->status);
	lc.easy_cleanup(cu);
	lc.slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		http_error(rc, url, ebuf, r, timeout, err);
		resp_free(r);
		return -1;
	}
	sk_trace_printf(&c->trace, SK_TRACE_INFO, "HTTP %ld, %zu octets",
	    r->status, r->len);
	return 0;
}

/*
 * An answer that is not a token: the server's OAuth2 error when it gave
 * one (kind SK_ERR_OAUTH, the code in oauth_error), else a protocol error.
 */
static int
answer_error(const struct http_resp *r, const char *url, const char *what,
    struct sk_error *err)
{
	char desc[SK_ERROR_TEXT_MAX];
	enum sk_oauth_error e;

	e = sk_oauth_error_parse(r->body, r->len, desc, sizeof(desc));
	if (e == SK_OAUTH_ERR_NONE)
		return oauth_fail(err, SK_ERR_PROTOCOL, SK_OAUTH_ERR_NONE,
		    "%.200s answered HTTP %ld to the %s, without a token or "
		    "an OAuth2 error", url, r->status, what);
	oauth_fail(err, SK_ERR_OAUTH, e, "%.200s refused the %s: %.300s",
	    url, what, desc);
	if (err != NULL)
		(void)snprintf(err->server_text, sizeof(err->server_text), "%s",
		    desc);
	return -1;
}

/* POST a token request; the tokens on success. */
static int
token_request(const struct sk_oauth_client *c, const char *url,
    const char *form, const char *what, struct sk_oauth_token *out,
    struct sk_error *err)
{
	struct http_resp r;
	int rc;

	memset(out, 0, sizeof(*out));
	if (http_post(c, url, form, what, &r, err) == -1)
		return -1;
	if (r.status >= 200 && r.status < 300 &&
	    sk_oauth_error_parse(r.body, r.len, NULL, 0) == SK_OAUTH_ERR_NONE)
		rc = sk_oauth_token_response(r.body, r.len,
		    (int64_t)time(NULL), out, err);
	else
		rc = answer_error(&r, url, what, err);
	resp_free(&r);
	if (rc == 0 && (out->token_endpoint = strdup(url)) == NULL) {
		sk_oauth_token_fini(out);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	return rc;
}

/* The client's credentials, in the form (RFC 6749 §2.3.1). */
static void
form_client(struct sk__sbuf *f, const struct sk_oauth_client *c)
{
	ob_param(f, "client_id", c->client_id);
	ob_param(f, "client_secret", c->client_secret);
}

/* ---- refresh ---- */

int
sk_oauth_refresh(const struct sk_oauth_client *c,
    const struct sk_oauth_token *old, struct sk_oauth_token *out,
    struct sk_error *err)
{
	const char *url = c->token_endpoint != NULL ? c->token_endpoint :
	    old->token_endpoint;
	struct sk__sbuf f;
	int rc;

	memset(out, 0, sizeof(*out));
	if (old->refresh_token == NULL || old->refresh_token[0] == '\0')
		return oauth_fail(err, SK_ERR_OAUTH,
		    SK_OAUTH_ERR_NO_REFRESH_TOKEN, "the access token has "
		    "expired and the authorization server gave no refresh "
		    "token to renew it");
	if (url == NULL)
		return oauth_fail(err, SK_ERR_CONFIG, SK_OAUTH_ERR_NONE,
		    "no token endpoint to refresh the token at");
	memset(&f, 0, sizeof(f));
	ob_param(&f, "grant_type", "refresh_token");
	ob_param(&f, "refresh_token", old->refresh_token);
	form_client(&f, c);
	if (f.oom) {
		sk__sbuf_free(&f);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	rc = token_request(c, url, f.p, "refresh token", out, err);
	sk__sbuf_free(&f);
	if (rc == -1) {
		if (err != NULL && err->oauth_error ==
		    SK_OAUTH_ERR_INVALID_GRANT) {
			char desc[sizeof(err->server_text)];

			memcpy(desc, err->server_text, sizeof(desc));
			oauth_fail(err, SK_ERR_OAUTH,
			    SK_OAUTH_ERR_INVALID_GRANT, "the authorization "
			    "server refused the refresh token: it was revoked "
			    "or has expired (%.300s)", desc);
			memcpy(err->server_text, desc, sizeof(desc));
		}
		return -1;
	}
	if (out->token_endpoint == NULL && url != NULL &&
	    (out->token_endpoint = strdup(url)) == NULL)
		goto oom;
	/* RFC 6749 §6: a new refresh token is optional, so is the scope. */
	if (out->refresh_token == NULL &&
	    (out->refresh_token = strdup(old->refresh_token)) == NULL)
		goto oom;
	if (out->scope == NULL && old->scope != NULL &&
	    (out->scope = strdup(old->scope)) == NULL)
		goto oom;
	return 0;
oom:
	sk_oauth_token_fini(out);
	return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
}

int
sk_oauth_refresh_cb(void *arg, const struct sk_oauth_token *old,
    struct sk_oauth_token *fresh, struct sk_error *err)
{
	return sk_oauth_refresh(arg, old, fresh, err);
}

/* ---- the device flow (RFC 8628) ---- */

static void
sleep_ms(int ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Whether the flow of c has what it needs; an error otherwise. */
static int
client_check(const struct sk_oauth_client *c, bool device,
    struct sk_error *err)
{
	if (c->client_id == NULL || c->client_id[0] == '\0')
		return oauth_fail(err, SK_ERR_CONFIG, SK_OAUTH_ERR_NO_CLIENT,
		    "no OAuth2 client id (oauth-client-id)");
	if (c->token_endpoint == NULL)
		return oauth_fail(err, SK_ERR_CONFIG, SK_OAUTH_ERR_NONE,
		    "no token endpoint (oauth-token-endpoint)");
	if (device && c->device_endpoint == NULL)
		return oauth_fail(err, SK_ERR_CONFIG, SK_OAUTH_ERR_NONE,
		    "no device authorization endpoint "
		    "(oauth-device-endpoint)");
	if (!device && c->auth_endpoint == NULL)
		return oauth_fail(err, SK_ERR_CONFIG, SK_OAUTH_ERR_NONE,
		    "no authorization endpoint (oauth-auth-endpoint)");
	return 0;
}

/* The device authorization answer, RFC 8628 §3.2. */
struct device_auth {
	char *device_code;
	char *user_code;
	char *uri;
	char *uri_complete;
	char *message;
	long long expires_in;
	long long interval;
};

static void
device_auth_fini(struct device_auth *d)
{
	wipe_free(d->device_code);
	free(d->user_code);
	free(d->uri);
	free(d->uri_complete);
	free(d->message);
	memset(d, 0, sizeof(*d));
}

static int
device_authorize(const struct sk_oauth_client *c, struct device_auth *d,
    struct sk_error *err)
{
	const char *dc, *uc, *uri, *uric, *msg;
	struct http_resp r;
	struct sk__sbuf f;
	cJSON *j = NULL;
	int rc;

	memset(d, 0, sizeof(*d));
	memset(&f, 0, sizeof(f));
	form_client(&f, c);
	ob_param(&f, "scope", c->scope);
	if (f.oom) {
		sk__sbuf_free(&f);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	rc = http_post(c, c->device_endpoint, f.p, "device authorization "
	    "request", &r, err);
	sk__sbuf_free(&f);
	if (rc == -1)
		return -1;
	if (r.status < 200 || r.status >= 300 ||
	    (j = cJSON_ParseWithLength(r.body, r.len)) == NULL ||
	    json_string(j, "error") != NULL) {
		json_wipe_delete(j);
		rc = answer_error(&r, c->device_endpoint, "device "
		    "authorization request", err);
		resp_free(&r);
		return rc;
	}
	dc = json_string(j, "device_code");
	uc = json_string(j, "user_code");
	/* Google says verification_url, as drafts of RFC 8628 did. */
	if ((uri = json_string(j, "verification_uri")) == NULL)
		uri = json_string(j, "verification_url");
	uric = json_string(j, "verification_uri_complete");
	msg = json_string(j, "message");
	if (!token_ok(dc) || !token_ok(uc) || uri == NULL ||
	    !sk_oauth_endpoint_ok(uri) ||
	    (uric != NULL && !sk_oauth_endpoint_ok(uric))) {
		json_wipe_delete(j);
		resp_free(&r);
		return oauth_fail(err, SK_ERR_PROTOCOL, SK_OAUTH_ERR_NONE,
		    "%.200s gave no usable device_code, user_code and "
		    "https verification_uri", c->device_endpoint);
	}
	if (!json_int(j, "expires_in", &d->expires_in) || d->expires_in <= 0 ||
	    d->expires_in > 86400)
		d->expires_in = DEVICE_EXPIRES_DEFAULT;
	if (!json_int(j, "interval", &d->interval) || d->interval <= 0)
		d->interval = DEVICE_INTERVAL_DEFAULT;
	/* A zero interval would be a busy loop; an hour is no interval. */
	if (d->interval > 3600)
		d->interval = 3600;
	d->device_code = strdup(dc);
	d->user_code = strdup(uc);
	d->uri = strdup(uri);
	d->uri_complete = dup_or_null(uric);
	d->message = dup_or_null(msg);
	json_wipe_delete(j);
	resp_free(&r);
	if (d->device_code == NULL || d->user_code == NULL || d->uri == NULL ||
	    (uric != NULL && d->uri_complete == NULL) ||
	    (msg != NULL && d->message == NULL)) {
		device_auth_fini(d);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	if (d->message != NULL)
		clean_inplace(d->message);
	return 0;
}

int
sk_oauth_device_login(const struct sk_oauth_client *c,
    sk_oauth_prompt_fn *prompt, void *arg, struct sk_oauth_token *out,
    struct sk_error *err)
{
	struct sk_oauth_prompt p;
	struct device_auth d;
	struct sk_error e;
	struct sk__sbuf f;
	int64_t deadline, next;
	long long interval;
	int rc;

	memset(out, 0, sizeof(*out));
	if (client_check(c, true, err) == -1)
		return -1;
	if (device_authorize(c, &d, err) == -1)
		return -1;
	memset(&p, 0, sizeof(p));
	p.flow = SK_OAUTH_FLOW_DEVICE;
	p.url = d.uri;
	p.url_complete = d.uri_complete;
	p.user_code = d.user_code;
	p.message = d.message;
	p.expires_in = (int)d.expires_in;
	p.interval = (int)d.interval;
	if (prompt != NULL)
		prompt(arg, &p);

	memset(&f, 0, sizeof(f));
	ob_param(&f, "grant_type", DEVICE_GRANT);
	ob_param(&f, "device_code", d.device_code);
	form_client(&f, c);
	if (f.oom) {
		sk__sbuf_free(&f);
		device_auth_fini(&d);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	interval = d.interval;
	deadline = sk_clock_ms() + d.expires_in * 1000;
	/* RFC 8628 §3.4-3.5: poll no faster than interval; pending means
	 * go on, slow_down go on 5 s slower, anything else ends it. */
	for (;;) {
		next = sk_clock_ms() + interval * 1000;
		if (next >= deadline) {
			rc = oauth_fail(err, SK_ERR_OAUTH,
			    SK_OAUTH_ERR_EXPIRED_TOKEN, "the code %s expired "
			    "after %lld s before the sign-in was finished: run "
			    "the login again", d.user_code, d.expires_in);
			break;
		}
		sleep_ms(sk_clock_left(next));
		rc = token_request(c, c->token_endpoint, f.p, "device code "
		    "poll", out, &e);
		if (rc == 0)
			break;
		if (e.kind == SK_ERR_OAUTH &&
		    e.oauth_error == SK_OAUTH_ERR_AUTHORIZATION_PENDING)
			continue;
		if (e.kind == SK_ERR_OAUTH &&
		    e.oauth_error == SK_OAUTH_ERR_SLOW_DOWN) {
			interval += SLOW_DOWN_STEP;
			sk_trace_printf(&c->trace, SK_TRACE_INFO, "slow_down: "
			    "polling every %lld s", interval);
			continue;
		}
		if (e.kind == SK_ERR_OAUTH &&
		    e.oauth_error == SK_OAUTH_ERR_EXPIRED_TOKEN)
			(void)snprintf(e.message, sizeof(e.message), "the code "
			    "%s expired before the sign-in was finished: run "
			    "the login again", d.user_code);
		else if (e.kind == SK_ERR_OAUTH &&
		    e.oauth_error == SK_OAUTH_ERR_ACCESS_DENIED)
			(void)snprintf(e.message, sizeof(e.message), "the "
			    "sign-in was declined (%.300s)", e.server_text);
		if (err != NULL)
			*err = e;
		break;
	}
	sk__sbuf_free(&f);
	device_auth_fini(&d);
	if (rc == -1)
		sk_oauth_token_fini(out);
	else if (out->scope == NULL && c->scope != NULL &&
	    (out->scope = strdup(c->scope)) == NULL) {
		sk_oauth_token_fini(out);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	return rc;
}

/* ---- the PKCE flow with a loopback redirect (RFC 7636, RFC 8252) ---- */

static const char page_ok[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
    "<title>smtpkit</title></head><body>"
    "<h1>smtpkit: signed in</h1>"
    "<p>The tokens are stored. You can close this window.</p>"
    "</body></html>\n";
static const char page_failed[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
    "<title>smtpkit</title></head><body>"
    "<h1>smtpkit: sign-in failed</h1>"
    "<p>See the terminal for why. You can close this window.</p>"
    "</body></html>\n";
static const char page_other[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
    "<title>smtpkit</title></head><body>"
    "<p>This is not the sign-in smtpkit is waiting for.</p>"
    "</body></html>\n";

static void
send_all(int fd, const char *p, size_t n, int64_t deadline)
{
	struct pollfd pfd;
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, sk_clock_left(deadline)) > 0)
				continue;
		}
		return;
	}
}

static void
http_answer(int fd, int status, const char *reason, const char *page)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "Connection: close\r\n\r\n", status, reason, strlen(page));
	if (n < 0 || (size_t)n >= sizeof(head))
		return;
	send_all(fd, head, (size_t)n, sk_clock_ms() + 2000);
	send_all(fd, page, strlen(page), sk_clock_ms() + 2000);
}

/* Read a request head (up to the blank line) into buf; -1 when it does
 * not come whole, in time and in REQUEST_MAX octets. */
static int
read_request(int fd, char *buf, size_t cap, int64_t deadline)
{
	struct pollfd pfd;
	size_t len = 0;
	ssize_t n;
	int rc;

	while (len + 1 < cap) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		rc = poll(&pfd, 1, sk_clock_left(deadline));
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc <= 0)
			return -1;
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL ||
		    strstr(buf, "\n\n") != NULL)
			return 0;
	}
	return -1;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode [s, s + n) into out (cap octets); -1 when it does not fit
 * or holds a NUL or a control character. */
static int
urldecode(const char *s, size_t n, char *out, size_t cap)
{
	size_t i, o = 0;
	int hi, lo, c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 ||
			    (lo = hexval(s[i + 2])) < 0)
				return -1;
			c = hi << 4 | lo;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* The value of name in query (without '?'), decoded; 1 found, 0 not, -1
 * bad. */
static int
query_get(const char *q, size_t qlen, const char *name, char *out,
    size_t cap)
{
	size_t nl = strlen(name);
	const char *p = q, *end = q + qlen, *amp, *eq;

	while (p < end) {
		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq != NULL && (size_t)(eq - p) == nl &&
		    memcmp(p, name, nl) == 0)
			return urldecode(eq + 1, (size_t)(amp - eq - 1), out,
			    cap) == 0 ? 1 : -1;
		p = amp + 1;
	}
	return 0;
}

/* What the browser brought back. */
struct redirect {
	char code[2048];
	char error[128];
	char error_desc[512];
};

/*
 * One connection to the loopback listener: 1 when it is the redirect we
 * wait for (r filled; fd kept open for the answer), 0 when it is not (it
 * was answered and may be closed), -1 when it could not be read.
 */
static int
redirect_take(int fd, const char *state, struct redirect *r)
{
	char req[REQUEST_MAX], got_state[256];
	const char *line_end, *target, *sp, *q;
	size_t tlen, qlen;
	int has_state;

	if (read_request(fd, req, sizeof(req), sk_clock_ms() +
	    REQUEST_WAIT_MS) == -1)
		return -1;
	line_end = strpbrk(req, "\r\n");
	if (strncmp(req, "GET ", 4) != 0 || line_end == NULL) {
		http_answer(fd, 405, "Method Not Allowed", page_other);
		return 0;
	}
	target = req + 4;
	sp = memchr(target, ' ', (size_t)(line_end - target));
	tlen = sp != NULL ? (size_t)(sp - target) : (size_t)(line_end - target);
	q = memchr(target, '?', tlen);
	/* RFC 8252 §7.3: the redirect URI is http://127.0.0.1:PORT/ */
	if ((q != NULL ? (size_t)(q - target) : tlen) != 1 || target[0] != '/') {
		http_answer(fd, 404, "Not Found", page_other);
		return 0;
	}
	if (q == NULL) {
		http_answer(fd, 400, "Bad Request", page_other);
		return 0;
	}
	q++;
	qlen = tlen - (size_t)(q - target);
	/* RFC 6749 §10.12: a redirect without our state is someone else's. */
	has_state = query_get(q, qlen, "state", got_state, sizeof(got_state));
	if (has_state != 1 || strlen(got_state) != strlen(state) ||
	    CRYPTO_memcmp(got_state, state, strlen(state)) != 0) {
		http_answer(fd, 400, "Bad Request", page_other);
		return 0;
	}
	memset(r, 0, sizeof(*r));
	if (query_get(q, qlen, "error", r->error, sizeof(r->error)) == 1) {
		(void)query_get(q, qlen, "error_description", r->error_desc,
		    sizeof(r->error_desc));
		OPENSSL_cleanse(req, sizeof(req));
		return 1;
	}
	if (query_get(q, qlen, "code", r->code, sizeof(r->code)) != 1 ||
	    !token_ok(r->code)) {
		OPENSSL_cleanse(req, sizeof(req));
		OPENSSL_cleanse(r->code, sizeof(r->code));
		http_answer(fd, 400, "Bad Request", page_other);
		return 0;
	}
	OPENSSL_cleanse(req, sizeof(req));
	return 1;
}

/* A socket on 127.0.0.1, port chosen by the kernel; *port set. */
static int
loopback_listen(unsigned *port, struct sk_error *err)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, e;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		return local_fail(err, errno, "socket: %s", strerror(errno));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 8) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		e = errno;
		(void)close(fd);
		return local_fail(err, e, "cannot listen on 127.0.0.1 for the "
		    "browser's redirect: %s", strerror(e));
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Wait for the redirect; its connection's fd, or -1. */
static int
redirect_wait(int lfd, const char *state, int64_t deadline, int secs,
    const char *redirect_uri, struct redirect *r, struct sk_error *err)
{
	struct pollfd pfd;
	int fd, rc;

	for (;;) {
		pfd.fd = lfd;
		pfd.events = POLLIN;
		rc = poll(&pfd, 1, sk_clock_left(deadline));
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == -1)
			return local_fail(err, errno, "poll: %s",
			    strerror(errno));
		if (rc == 0)
			return oauth_fail(err, SK_ERR_TIMEOUT, SK_OAUTH_ERR_NONE,
			    "no browser came back to %s within %d s: open the "
			    "URL, sign in, and run the login again", redirect_uri,
			    secs);
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd == -1) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == ECONNABORTED)
				continue;
			return local_fail(err, errno, "accept: %s",
			    strerror(errno));
		}
		rc = redirect_take(fd, state, r);
		if (rc == 1)
			return fd;
		(void)close(fd);
	}
}

int
sk_oauth_pkce_login(const struct sk_oauth_client *c,
    sk_oauth_prompt_fn *prompt, void *arg, struct sk_oauth_token *out,
    struct sk_error *err)
{
	char verifier[64], challenge[64], state[32], redirect_uri[64];
	struct sk_oauth_prompt p;
	struct redirect *r = NULL;
	struct sk__sbuf url, f;
	unsigned port = 0;
	int lfd, fd = -1, rc = -1, secs;

	memset(out, 0, sizeof(*out));
	memset(&url, 0, sizeof(url));
	memset(&f, 0, sizeof(f));
	if (client_check(c, false, err) == -1)
		return -1;
	if (sk_oauth_pkce_verifier(verifier, sizeof(verifier), err) == -1 ||
	    random_word(state, sizeof(state), 16, err) == -1)
		return -1;
	if (sk_oauth_pkce_challenge(verifier, challenge, sizeof(challenge)) ==
	    -1) {
		OPENSSL_cleanse(verifier, sizeof(verifier));
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "cannot compute the PKCE challenge");
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		OPENSSL_cleanse(verifier, sizeof(verifier));
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	/* Listen first: the browser may come back the moment it is told. */
	if ((lfd = loopback_listen(&port, err)) == -1)
		goto out;
	(void)snprintf(redirect_uri, sizeof(redirect_uri),
	    "http://127.0.0.1:%u/", port);

	/* RFC 6749 §4.1.1, RFC 7636 §4.3 */
	sk__sbuf_str(&url, c->auth_endpoint);
	sk__sbuf_str(&url, strchr(c->auth_endpoint, '?') != NULL ? "&" : "?");
	ob_param(&url, "response_type", "code");
	ob_param(&url, "client_id", c->client_id);
	ob_param(&url, "redirect_uri", redirect_uri);
	ob_param(&url, "scope", c->scope);
	ob_param(&url, "state", state);
	ob_param(&url, "code_challenge", challenge);
	ob_param(&url, "code_challenge_method", "S256");
	if (c->auth_params != NULL && c->auth_params[0] != '\0') {
		sk__sbuf_str(&url, "&");
		sk__sbuf_str(&url, c->auth_params);
	}
	if (url.oom) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
		goto out;
	}
	secs = c->login_timeout_s > 0 ? c->login_timeout_s :
	    SK_OAUTH_LOGIN_TIMEOUT_S;
	memset(&p, 0, sizeof(p));
	p.flow = SK_OAUTH_FLOW_PKCE;
	p.url = url.p;
	p.redirect_uri = redirect_uri;
	p.expires_in = secs;
	if (prompt != NULL)
		prompt(arg, &p);

	sk_trace_printf(&c->trace, SK_TRACE_INFO, "waiting for the browser "
	    "at %s", redirect_uri);
	fd = redirect_wait(lfd, state, sk_clock_ms() + (int64_t)secs * 1000,
	    secs, redirect_uri, r, err);
	(void)close(lfd);
	lfd = -1;
	if (fd == -1)
		goto out;
	if (r->error[0] != '\0') {
		char desc[sizeof(r->error) + sizeof(r->error_desc) + 4];

		http_answer(fd, 200, "OK", page_failed);
		(void)snprintf(desc, sizeof(desc), "%s%s%s", r->error,
		    r->error_desc[0] != '\0' ? ": " : "", r->error_desc);
		oauth_fail(err, SK_ERR_OAUTH, sk_oauth_error_from_name(
		    r->error), "the sign-in was not completed: the "
		    "authorization server said %.300s", desc);
		if (err != NULL)
			(void)snprintf(err->server_text,
			    sizeof(err->server_text), "%s", desc);
		goto out;
	}

	/* RFC 6749 §4.1.3, RFC 7636 §4.5 */
	ob_param(&f, "grant_type", "authorization_code");
	ob_param(&f, "code", r->code);
	ob_param(&f, "redirect_uri", redirect_uri);
	ob_param(&f, "code_verifier", verifier);
	form_client(&f, c);
	if (f.oom) {
		http_answer(fd, 500, "Internal Server Error", page_failed);
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
		goto out;
	}
	rc = token_request(c, c->token_endpoint, f.p, "authorization code",
	    out, err);
	http_answer(fd, 200, "OK", rc == 0 ? page_ok : page_failed);
	if (rc == 0 && out->scope == NULL && c->scope != NULL &&
	    (out->scope = strdup(c->scope)) == NULL) {
		sk_oauth_token_fini(out);
		rc = sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
out:
	if (lfd != -1)
		(void)close(lfd);
	if (fd != -1)
		(void)close(fd);
	OPENSSL_cleanse(verifier, sizeof(verifier));
	if (r != NULL) {
		OPENSSL_cleanse(r, sizeof(*r));
		free(r);
	}
	sk__sbuf_free(&url);
	sk__sbuf_free(&f);
	if (rc == -1)
		sk_oauth_token_fini(out);
	return rc;
}

int
sk_oauth_login(const struct sk_oauth_client *c, sk_oauth_prompt_fn *prompt,
    void *arg, struct sk_oauth_token *out, struct sk_error *err)
{
	switch (c->flow) {
	case SK_OAUTH_FLOW_DEVICE:
		return sk_oauth_device_login(c, prompt, arg, out, err);
	case SK_OAUTH_FLOW_PKCE:
		return sk_oauth_pkce_login(c, prompt, arg, out, err);
	default:
		memset(out, 0, sizeof(*out));
		return oauth_fail(err, SK_ERR_CONFIG, SK_OAUTH_ERR_NONE,
		    "no OAuth2 flow: set oauth-flow = device or pkce");
	}
}

/* ---- the client, from an account and its preset ---- */

static bool
has_password_source(const struct sk_account *a)
{
	return a->password != NULL || a->password_file != NULL ||
	    a->password_env != NULL || a->password_cmd != NULL;
}

bool
sk_oauth_account_managed(const struct sk_account *a,
    const struct sk_provider *p)
{
	if (a == NULL || has_password_source(a))
		return false;
	if (a->oauth_client_id != NULL || sk_auth_mech_is_token(a->auth))
		return true;
	return p != NULL && p->credential == SK_CRED_OAUTH2;
}

static int
read_secret_file(const char *path, char **out, struct sk_error *err)
{
	char expanded[PATH_MAX], buf[SECRET_FILE_MAX];
	size_t len = 0, n;
	ssize_t r;
	int fd;

	*out = NULL;
	if (sk_config_expand_path(path, expanded, sizeof(expanded)) == -1)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "cannot expand oauth-client-secret-file %s", path);
	if ((fd = open(expanded, O_RDONLY | O_CLOEXEC)) == -1)
		return local_fail(err, errno, "cannot read the client secret "
		    "file %s: %s", expanded, strerror(errno));
	while (len < sizeof(buf)) {
		r = read(fd, buf + len, sizeof(buf) - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	(void)close(fd);
	for (n = 0; n < len && buf[n] != '\n' && buf[n] != '\r'; n++)
		;
	if (n == 0) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "the client secret file %s is empty", expanded);
	}
	if ((*out = malloc(n + 1)) != NULL) {
		memcpy(*out, buf, n);
		(*out)[n] = '\0';
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	if (*out == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	return 0;
}

static const char *
either(const char *a, const char *b)
{
	return a != NULL ? a : b;
}

int
sk_oauth_client_init(struct sk_oauth_client *c, const struct sk_account *a,
    const struct sk_provider *p, struct sk_error *err)
{
	const struct sk_provider_oauth *po = p != NULL ? &p->oauth : NULL;
	const char *name = a != NULL && a->name != NULL ? a->name : "?";
	const char *origin = a != NULL && a->origin != NULL ? a->origin :
	    "config";
	bool secret_required = po != NULL && po->secret_required;

	memset(c, 0, sizeof(*c));
	if (a == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "no account");
	if (a->oauth_client_id == NULL) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "account %s (%s) has no oauth-client-id: register an app "
		    "with %s and put its client id in the account", name,
		    origin, p != NULL && p->name != NULL ? p->name :
		    "the provider");
		if (err != NULL)
			err->oauth_error = SK_OAUTH_ERR_NO_CLIENT;
		return -1;
	}
	c->client_id = a->oauth_client_id;
	c->flow = a->oauth_flow;
	if (c->flow == SK_OAUTH_FLOW_NONE && po != NULL)
		c->flow = po->flow;
	if (c->flow == SK_OAUTH_FLOW_NONE)
		c->flow = a->oauth_device_endpoint != NULL ?
		    SK_OAUTH_FLOW_DEVICE : a->oauth_auth_endpoint != NULL ?
		    SK_OAUTH_FLOW_PKCE : SK_OAUTH_FLOW_NONE;
	c->device_endpoint = either(a->oauth_device_endpoint,
	    po != NULL ? po->device_endpoint : NULL);
	c->auth_endpoint = either(a->oauth_auth_endpoint,
	    po != NULL ? po->auth_endpoint : NULL);
	c->token_endpoint = either(a->oauth_token_endpoint,
	    po != NULL ? po->token_endpoint : NULL);
	c->scope = either(a->oauth_scope, po != NULL ? po->scope : NULL);
	c->auth_params = po != NULL ? po->auth_params : NULL;
	c->mech = sk_auth_mech_is_token(a->auth) ? a->auth :
	    po != NULL && sk_auth_mech_is_token(po->mech) ? po->mech :
	    SK_AUTH_XOAUTH2;
	c->client_secret = a->oauth_client_secret;

	if (c->flow == SK_OAUTH_FLOW_NONE)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "account %s (%s): no OAuth2 flow is known for it: set "
		    "oauth-flow (device or pkce) and the endpoints", name,
		    origin);
	if (c->token_endpoint == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "account %s (%s): no oauth-token-endpoint", name, origin);
	if (c->scope == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "account %s (%s): no oauth-scope", name, origin);
	if (c->flow == SK_OAUTH_FLOW_DEVICE && c->device_endpoint == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "account %s (%s): the device flow needs "
		    "oauth-device-endpoint", name, origin);
	if (c->flow == SK_OAUTH_FLOW_PKCE && c->auth_endpoint == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "account %s (%s): the pkce flow needs oauth-auth-endpoint",
		    name, origin);
	if (c->client_secret == NULL && a->oauth_client_secret_file != NULL) {
		if (read_secret_file(a->oauth_client_secret_file,
		    &c->secret_buf, err) == -1)
			return -1;
		c->client_secret = c->secret_buf;
	}
	if (secret_required && c->client_secret == NULL) {
		sk_oauth_client_fini(c);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "account %s (%s): %s wants the app's client secret too: "
		    "put it in a private file and name it with "
		    "oauth-client-secret-file", name, origin,
		    p != NULL && p->name != NULL ? p->name : "the provider");
	}
	return 0;
}

void
sk_oauth_client_fini(struct sk_oauth_client *c)
{
	if (c == NULL)
		return;
	wipe_free(c->secret_buf);
	c->secret_buf = NULL;
	c->client_secret = NULL;
}

/* ---- the token store ---- */

static const char *
home_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home != NULL && home[0] == '/')
		return home;
	if ((pw = getpwuid(getuid())) == NULL || pw->pw_dir == NULL ||
	    pw->pw_dir[0] != '/')
		return NULL;
	return pw->pw_dir;
}

int
sk_oauth_store_dir(char *buf, size_t cap)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home;
	int n;

	/* XDG Base Directory: a relative XDG_STATE_HOME is to be ignored. */
	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, cap, "%s/smtpkit/tokens", xdg);
	else {
		if ((home = home_dir()) == NULL)
			return -1;
		n = snprintf(buf, cap, "%s/.local/state/smtpkit/tokens", home);
	}
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* An account name that is also a safe file name: no '/', no dot files. */
static bool
account_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || s[0] == '.')
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		    s[i] == '_' || s[i] == '-' || s[i] == '@' || s[i] == '+'))
			return false;
	return i <= ACCOUNT_MAX;
}

static int
store_file(const char *dir, const char *account, const char *suffix,
    char *buf, size_t cap)
{
	int n;

	if (dir == NULL || !account_ok(account))
		return -1;
	n = snprintf(buf, cap, "%s/%s%s", dir, account, suffix);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int
sk_oauth_store_path(const char *dir, const char *account, char *buf,
    size_t cap)
{
	return store_file(dir, account, ".json", buf, cap);
}

static int
bad_name(const char *account, struct sk_error *err)
{
	return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
	    "account name \"%.64s\" cannot name a token file (1 to %d of "
	    "A-Z a-z 0-9 . _ - @ +, not starting with '.')",
	    account != NULL ? account : "", ACCOUNT_MAX);
}

int
sk_oauth_store_load(const char *dir, const char *account,
    struct sk_oauth_token *t, struct sk_error *err)
{
	char path[PATH_MAX], *buf = NULL;
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd, rc, e;

	memset(t, 0, sizeof(*t));
	if (store_file(dir, account, ".json", path, sizeof(path)) == -1)
		return bad_name(account, err);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			return oauth_fail(err, SK_ERR_OAUTH,
			    SK_OAUTH_ERR_NO_TOKEN, "no OAuth2 token is stored "
			    "for account %s (%s)", account, path);
		return local_fail(err, errno, "cannot read %s: %s", path,
		    strerror(errno));
	}
	if (fstat(fd, &st) == -1) {
		e = errno;
		(void)close(fd);
		return local_fail(err, e, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode) || st.st_size > SK_OAUTH_HTTP_BODY_MAX) {
		(void)close(fd);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "%s is not a token file", path);
	}
	/* The file is a credential: as for a config file with a password. */
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 || st.st_uid != geteuid()) {
		(void)close(fd);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "%s holds OAuth2 tokens and is open to others or not "
		    "yours; run chmod 600 %s", path, path);
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		(void)close(fd);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	while (len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			e = errno;
			(void)close(fd);
			OPENSSL_cleanse(buf, len);
			free(buf);
			return local_fail(err, e, "cannot read %s: %s", path,
			    strerror(e));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	(void)close(fd);
	buf[len] = '\0';
	rc = sk_oauth_token_parse(buf, len, t, err);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (rc == -1 && err != NULL && err->kind == SK_ERR_CONFIG) {
		char why[200];

		(void)snprintf(why, sizeof(why), "%s", err->message);
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG, "%s: %s; run "
		    "smtpkit oauth login --account %s", path, why, account);
	}
	return rc;
}

/* mkdir -p with mode 0700 for what it makes. */
static int
make_dirs(const char *dir, struct sk_error *err)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return local_fail(err, ENAMETOOLONG, "%s: path too long", dir);
	memcpy(buf, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) == -1 && errno != EEXIST)
			return local_fail(err, errno, "cannot create the "
			    "directory %s: %s", buf, strerror(errno));
		buf[i] = i == n ? '\0' : '/';
	}
	return 0;
}

int
sk_oauth_store_save(const char *dir, const char *account,
    const struct sk_oauth_token *t, struct sk_error *err)
{
	char path[PATH_MAX], *text, *line;
	size_t len;
	int rc;

	if (store_file(dir, account, ".json", path, sizeof(path)) == -1)
		return bad_name(account, err);
	if (t == NULL || !token_ok(t->access_token))
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "no access token to store");
	if (make_dirs(dir, err) == -1)
		return -1;
	/* Tokens are nobody else's business, whatever the umask. */
	(void)chmod(dir, 0700);
	if ((text = sk_oauth_token_format(t)) == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	/* One line end after the JSON, as a text file has. */
	len = strlen(text);
	if ((line = malloc(len + 2)) == NULL) {
		wipe_free(text);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	memcpy(line, text, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	wipe_free(text);
	rc = sk__replace_file(dir, path, line, len + 1, SK_ERR_LOCAL, err);
	wipe_free(line);
	return rc;
}

/* The account's lock: an exclusive flock on dir/ACCOUNT.lock. */
static int
store_lock(const char *dir, const char *account, struct sk_error *err)
{
	char path[PATH_MAX];
	int64_t deadline = sk_clock_ms() + LOCK_WAIT_MS;
	int fd, e;

	if (store_file(dir, account, ".lock", path, sizeof(path)) == -1)
		return bad_name(account, err);
	if (make_dirs(dir, err) == -1)
		return -1;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) == -1)
		return local_fail(err, errno, "cannot open %s: %s", path,
		    strerror(errno));
	/* Polled, not blocking: every wait has a deadline. */
	while (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		e = errno;
		if (e != EWOULDBLOCK && e != EINTR) {
			(void)close(fd);
			return local_fail(err, e, "cannot lock %s: %s", path,
			    strerror(e));
		}
		if (sk_clock_left(deadline) == 0) {
			(void)close(fd);
			return oauth_fail(err, SK_ERR_TIMEOUT, SK_OAUTH_ERR_NONE,
			    "another smtpkit has held %s for %d s", path,
			    LOCK_WAIT_MS / 1000);
		}
		sleep_ms(LOCK_POLL_MS);
	}
	return fd;
}

static void
store_unlock(int fd)
{
	if (fd >= 0) {
		(void)flock(fd, LOCK_UN);
		(void)close(fd);
	}
}

int
sk_oauth_store_delete(const char *dir, const char *account, bool *existed,
    struct sk_error *err)
{
	char path[PATH_MAX];
	int lfd, rc = 0, e;

	if (existed != NULL)
		*existed = false;
	if (store_file(dir, account, ".json", path, sizeof(path)) == -1)
		return bad_name(account, err);
	if (access(path, F_OK) == -1 && errno == ENOENT)
		return 0;
	if ((lfd = store_lock(dir, account, err)) == -1)
		return -1;
	if (unlink(path) == 0) {
		if (existed != NULL)
			*existed = true;
	} else if (errno != ENOENT) {
		e = errno;
		rc = local_fail(err, e, "cannot remove %s: %s", path,
		    strerror(e));
	}
	/* The lock file stays: removing it under a waiter breaks the lock. */
	store_unlock(lfd);
	return rc;
}

/* Whether t may be used as it is, or must be refreshed. */
static bool
usable(const struct sk_oauth_token *t, const char *rejected, int64_t now)
{
	if (rejected != NULL && t->access_token != NULL &&
	    strcmp(t->access_token, rejected) == 0)
		return false;
	return sk_oauth_token_fresh(t, now, SK_OAUTH_REFRESH_MARGIN);
}

int
sk_oauth_store_get(const char *dir, const char *account,
    const char *rejected, sk_oauth_refresh_fn *fn, void *arg,
    struct sk_oauth_token *out, bool *refreshed, struct sk_error *err)
{
	struct sk_oauth_token t, fresh;
	int lfd, rc;

	memset(out, 0, sizeof(*out));
	if (refreshed != NULL)
		*refreshed = false;
	if (sk_oauth_store_load(dir, account, &t, err) == -1)
		return -1;
	if (usable(&t, rejected, (int64_t)time(NULL))) {
		*out = t;
		return 0;
	}
	sk_oauth_token_fini(&t);
	if ((lfd = store_lock(dir, account, err)) == -1)
		return -1;
	/* Another process may have refreshed while we waited for the lock. */
	if (sk_oauth_store_load(dir, account, &t, err) == -1) {
		store_unlock(lfd);
		return -1;
	}
	if (usable(&t, rejected, (int64_t)time(NULL))) {
		store_unlock(lfd);
		*out = t;
		return 0;
	}
	if (fn == NULL) {
		store_unlock(lfd);
		sk_oauth_token_fini(&t);
		return oauth_fail(err, SK_ERR_OAUTH,
		    SK_OAUTH_ERR_NO_REFRESH_TOKEN, "the access token of "
		    "account %s has expired", account);
	}
	memset(&fresh, 0, sizeof(fresh));
	rc = fn(arg, &t, &fresh, err);
	if (rc == -1 && rejected == NULL && err != NULL &&
	    err->kind != SK_ERR_OAUTH && t.expires_at > (int64_t)time(NULL)) {
		/*
		 * The token is within the margin but not yet expired, and the
		 * authorization server could not be reached: it still works
		 * for now, and the next run refreshes it.
		 */
		store_unlock(lfd);
		*out = t;
		return 0;
	}
	sk_oauth_token_fini(&t);
	if (rc == 0)
		rc = sk_oauth_store_save(dir, account, &fresh, err);
	store_unlock(lfd);
	if (rc == -1) {
		sk_oauth_token_fini(&fresh);
		return -1;
	}
	if (refreshed != NULL)
		*refreshed = true;
	*out = fresh;
	return 0;
}

/* ---- what an SMTP failure means for the token ---- */

bool
sk_oauth_token_refused(const struct sk_error *err)
{
	if (err == NULL || err->stage != SK_STAGE_AUTH ||
	    err->kind != SK_ERR_REPLY)
		return false;
	if (err->oauth_error == SK_OAUTH_ERR_INVALID_TOKEN)
		return true;
	/* Microsoft answers an expired token with 535 5.7.3 and no
	 * challenge; others word it in the reply. */
	return err->code == 535 || ascii_casestr(err->server_text, "expired");
}

bool
sk_oauth_needs_login(const struct sk_error *err)
{
	if (err == NULL || err->kind != SK_ERR_OAUTH)
		return false;
	return err->oauth_error == SK_OAUTH_ERR_INVALID_GRANT ||
	    err->oauth_error == SK_OAUTH_ERR_NO_TOKEN ||
	    err->oauth_error == SK_OAUTH_ERR_NO_REFRESH_TOKEN;
}
