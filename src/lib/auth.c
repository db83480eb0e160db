/* smtpkit: SASL mechanisms for SMTP AUTH (RFC 4954). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cjson/cJSON.h>

#include "smtpkit/auth.h"
#include "smtpkit/base64.h"

/*
 * RFC 4954 §4: the AUTH command is still an SMTP command line, at most
 * 512 octets with its CRLF (RFC 5321 §4.5.3.1.4); when the initial
 * response would not fit, the client must leave it out and send it after
 * the server's empty 334 instead (RFC 4422 §5 item 1).  Long OAuth tokens
 * (Microsoft's are 1.5 KB and more) take that path.
 */
#define AUTH_CMD_MAX 512

/* Raw octets whose base64 fills an SK_AUTH_LINE_MAX line. */
#define AUTH_RAW_MAX (SK_AUTH_LINE_MAX / 4 * 3)

/* a->step while the initial response is still owed (see AUTH_CMD_MAX). */
#define AUTH_STEP_IR (-1)

static const char *const auth_names[SK_AUTH__COUNT] = {
	[SK_AUTH_NONE] = "none",
	[SK_AUTH_PLAIN] = "PLAIN",
	[SK_AUTH_LOGIN] = "LOGIN",
	[SK_AUTH_CRAM_MD5] = "CRAM-MD5",
	[SK_AUTH_XOAUTH2] = "XOAUTH2",
	[SK_AUTH_OAUTHBEARER] = "OAUTHBEARER",
};

/* A bounded append-only buffer; overflow is sticky and checked once. */
struct auth_buf {
	unsigned char *p;
	size_t len, cap;
	int overflow;
};

static void
auth_add(struct auth_buf *b, const void *s, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
auth_adds(struct auth_buf *b, const char *s)
{
	auth_add(b, s, strlen(s));
}

/* ASCII-only, so that the C locale (Turkish 'i') cannot matter. */
static int
auth_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
auth_prefix_ieq(const char *s, size_t n, const char *word)
{
	size_t i, wlen = strlen(word);

	if (n < wlen)
		return 0;
	for (i = 0; i < wlen; i++)
		if (auth_lower((unsigned char)s[i]) !=
		    auth_lower((unsigned char)word[i]))
			return 0;
	return 1;
}

static enum sk_auth_mech
auth_lookup(const char *s, size_t n)
{
	int m;

	for (m = SK_AUTH_NONE + 1; m < SK_AUTH__COUNT; m++)
		if (n == strlen(auth_names[m]) &&
		    auth_prefix_ieq(s, n, auth_names[m]))
			return (enum sk_auth_mech)m;
	return SK_AUTH_NONE;
}

const char *
sk_auth_mech_name(enum sk_auth_mech m)
{
	if ((unsigned)m >= SK_AUTH__COUNT)
		return "unknown";
	return auth_names[m];
}

enum sk_auth_mech
sk_auth_mech_parse(const char *name)
{
	if (name == NULL)
		return SK_AUTH_NONE;
	return auth_lookup(name, strlen(name));
}

unsigned
sk_auth_mechs_parse(const char *list, size_t len)
{
	unsigned mask = 0;
	size_t i = 0, start;
	enum sk_auth_mech m;

	while (i < len) {
		while (i < len && (list[i] == ' ' || list[i] == '\t'))
			i++;
		start = i;
		while (i < len && list[i] != ' ' && list[i] != '\t')
			i++;
		if (i == start)
			break;
		/*
		 * Before RFC 2554 was final, servers advertised "AUTH=PLAIN
		 * LOGIN" (and some still do, next to the proper line); accept
		 * the list with or without that prefix.
		 */
		if (auth_prefix_ieq(list + start, i - start, "AUTH="))
			start += 5;
		else if (list[start] == '=')
			start++;
		if ((m = auth_lookup(list + start, i - start)) != SK_AUTH_NONE)
			mask |= SK_AUTH_BIT(m);
	}
	return mask;
}

enum sk_auth_mech
sk_auth_choose(unsigned offered, bool token, bool tls)
{
	static const enum sk_auth_mech by_token[] = {
		SK_AUTH_XOAUTH2, SK_AUTH_OAUTHBEARER,
	};
	static const enum sk_auth_mech by_tls[] = {
		SK_AUTH_PLAIN, SK_AUTH_CRAM_MD5, SK_AUTH_LOGIN,
	};
	/* Whether a password may go in the clear is the caller's policy. */
	static const enum sk_auth_mech by_plain[] = {
		SK_AUTH_CRAM_MD5, SK_AUTH_PLAIN, SK_AUTH_LOGIN,
	};
	const enum sk_auth_mech *order;
	size_t i, n;

	if (token) {
		order = by_token;
		n = sizeof(by_token) / sizeof(by_token[0]);
	} else if (tls) {
		order = by_tls;
		n = sizeof(by_tls) / sizeof(by_tls[0]);
	} else {
		order = by_plain;
		n = sizeof(by_plain) / sizeof(by_plain[0]);
	}
	for (i = 0; i < n; i++)
		if (offered & SK_AUTH_BIT(order[i]))
			return order[i];
	return SK_AUTH_NONE;
}

bool
sk_auth_mech_is_token(enum sk_auth_mech m)
{
	return m == SK_AUTH_XOAUTH2 || m == SK_AUTH_OAUTHBEARER;
}

static int
auth_fail(char *out, size_t cap, size_t *len, struct sk_error *err,
    enum sk_error_kind kind, const char *what, const char *why)
{
	if (cap > 0)
		out[0] = '\0';
	if (len != NULL)
		*len = 0;
	return sk_error_set(err, SK_STAGE_AUTH, kind, "AUTH %s: %s", what, why);
}

/*
 * Write prefix followed by the base64 of raw to out.  The whole line must
 * fit both cap and SK_AUTH_LINE_MAX with its CRLF (RFC 4954 §4).
 */
static int
auth_emit(const char *prefix, const void *raw, size_t rawlen, char *out,
    size_t cap, size_t *len, const char *what, struct sk_error *err)
{
	size_t plen = strlen(prefix), need, n;

	need = plen + sk_base64_encoded_size(rawlen);	/* NUL included */
	if (need + 1 > SK_AUTH_LINE_MAX)
		return auth_fail(out, cap, len, err, SK_ERR_LOCAL, what,
		    "the credentials are too long for one line");
	if (need > cap)
		return auth_fail(out, cap, len, err, SK_ERR_LOCAL, what,
		    "the output buffer is too small");
	memcpy(out, prefix, plen);
	n = sk_base64_encode(raw, rawlen, out + plen, cap - plen);
	if (len != NULL)
		*len = plen + n;
	return 0;
}

/* Any C0 control or DEL: a stray newline read from a token file, say. */
static int
auth_has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/*
 * The message PLAIN, XOAUTH2 and OAUTHBEARER send whole, as initial
 * response or as the answer to the first, empty, 334.
 */
static void
auth_client_first(struct auth_buf *b, enum sk_auth_mech mech,
    const char *user, const char *secret)
{
	const char *s;

	switch (mech) {
	case SK_AUTH_PLAIN:
		/* RFC 4616 §2: [authzid] NUL authcid NUL passwd */
		auth_add(b, "", 1);
		auth_adds(b, user);
		auth_add(b, "", 1);
		auth_adds(b, secret);
		break;
	case SK_AUTH_XOAUTH2:
		/* developers.google.com/gmail/imap/xoauth2-protocol */
		auth_adds(b, "user=");
		auth_adds(b, user);
		auth_adds(b, "\001auth=Bearer ");
		auth_adds(b, secret);
		auth_adds(b, "\001\001");
		break;
	case SK_AUTH_OAUTHBEARER:
		/*
		 * RFC 7628 §3.1: a GS2 header "n,a=<saslname>," (no channel
		 * binding, RFC 5801 §4), where ',' and '=' in the name are
		 * written =2C and =3D, then kvpairs separated by %x01.
		 */
		auth_adds(b, "n,a=");
		for (s = user; *s != '\0'; s++) {
			if (*s == ',')
				auth_adds(b, "=2C");
			else if (*s == '=')
				auth_adds(b, "=3D");
			else
				auth_add(b, s, 1);
		}
		auth_adds(b, ",\001auth=Bearer ");
		auth_adds(b, secret);
		auth_adds(b, "\001\001");
		break;
	default:
		break;
	}
}

static int
auth_check_args(enum sk_auth_mech mech, const char *user, const char *secret,
    char *out, size_t cap, size_t *len, struct sk_error *err)
{
	const char *what = sk_auth_mech_name(mech);

	if (user == NULL || *user == '\0')
		return auth_fail(out, cap, len, err, SK_ERR_LOCAL, what,
		    "no user name");
	/* RFC 4616 §2: passwd = 1*SAFE; an empty token is no token. */
	if (secret == NULL || *secret == '\0')
		return auth_fail(out, cap, len, err, SK_ERR_LOCAL, what,
		    sk_auth_mech_is_token(mech) ? "no token" : "no password");
	if (sk_auth_mech_is_token(mech)) {
		/* %x01 separates the fields of these messages. */
		if (auth_has_control(user))
			return auth_fail(out, cap, len, err, SK_ERR_LOCAL, what,
			    "the user name contains a control character");
		if (auth_has_control(secret))
			return auth_fail(out, cap, len, err, SK_ERR_LOCAL, what,
			    "the token contains a control character "
			    "(a trailing newline?)");
	}
	return 0;
}

int
sk_auth_start(struct sk_auth *a, enum sk_auth_mech mech, const char *user,
    const char *secret, char *out, size_t cap, size_t *len,
    struct sk_error *err)
{
	unsigned char raw[AUTH_RAW_MAX];
	struct auth_buf b = { raw, 0, sizeof(raw), 0 };
	char prefix[32];
	const char *what = sk_auth_mech_name(mech);
	size_t plen;
	int rv, deferred = 0;

	a->mech = mech;
	a->step = 0;
	if (mech <= SK_AUTH_NONE || mech >= SK_AUTH__COUNT)
		return auth_fail(out, cap, len, err, SK_ERR_LOCAL, what,
		    "no such mechanism");
	if (auth_check_args(mech, user, secret, out, cap, len, err) == -1)
		return -1;

	plen = (size_t)snprintf(prefix, sizeof(prefix), "AUTH %s", what);
	if (mech == SK_AUTH_PLAIN || sk_auth_mech_is_token(mech)) {
		auth_client_first(&b, mech, user, secret);
		if (b.overflow)
			rv = auth_fail(out, cap, len, err, SK_ERR_LOCAL, what,
			    "the credentials are too long for one line");
		else if (plen + 1 + sk_base64_encoded_size(b.len) - 1 + 2 <=
		    AUTH_CMD_MAX) {
			prefix[plen++] = ' ';
			prefix[plen] = '\0';
			rv = auth_emit(prefix, raw, b.len, out, cap, len, what,
			    err);
		} else {
			/* RFC 4954 §4: it follows the server's empty 334. */
			a->step = AUTH_STEP_IR;
			deferred = 1;
			rv = 0;
		}
		OPENSSL_cleanse(raw, sizeof(raw));
		if (!deferred)
			return rv;
	}

	/* The bare command: LOGIN, CRAM-MD5, or a deferred response. */
	if (plen + 1 > cap)
		return auth_fail(out, cap, len, err, SK_ERR_LOCAL, what,
		    "the output buffer is too small");
	memcpy(out, prefix, plen + 1);
	if (len != NULL)
		*len = plen;
	return 0;
}

/* RFC 2195 §2: base64(user SP hex(HMAC-MD5(secret, challenge))) */
static int
auth_cram_md5(const char *user, const char *secret, const char *challenge,
    size_t clen, char *out, size_t cap, size_t *len, struct sk_error *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char chal[AUTH_RAW_MAX], md[EVP_MAX_MD_SIZE];
	unsigned char raw[AUTH_RAW_MAX];
	struct auth_buf b = { raw, 0, sizeof(raw), 0 };
	unsigned int mdlen = 0;
	size_t chlen, i;
	char digest[2 * EVP_MAX_MD_SIZE];
	size_t slen = strlen(secret);
	int rv;

	if (clen > SK_AUTH_LINE_MAX ||
	    sk_base64_decode(challenge, clen, chal, sizeof(chal), &chlen) ==
	    -1 || chlen == 0)
		return auth_fail(out, cap, len, err, SK_ERR_PROTOCOL,
		    "CRAM-MD5", "the server's challenge is not base64");
	if (slen > INT_MAX)
		return auth_fail(out, cap, len, err, SK_ERR_LOCAL,
		    "CRAM-MD5", "the password is too long");
	/* HMAC() fails where MD5 is not allowed, as in FIPS mode. */
	if (HMAC(EVP_md5(), secret, (int)slen, chal, chlen, md, &mdlen) ==
	    NULL) {
		(void)auth_fail(out, cap, len, err, SK_ERR_LOCAL, "CRAM-MD5",
		    "HMAC-MD5 is not available");
		if (err != NULL)
			err->ssl_error = ERR_peek_error();
		/*
		 * Leave the thread's error queue empty, or SSL_get_error()
		 * on the connection would read this failure as its own.
		 */
		ERR_clear_error();
		return -1;
	}
	for (i = 0; i < mdlen; i++) {
		digest[2 * i] = hex[md[i] >> 4];
		digest[2 * i + 1] = hex[md[i] & 0x0f];
	}
	auth_adds(&b, user);
	auth_add(&b, " ", 1);
	auth_add(&b, digest, 2 * i);
	if (b.overflow)
		rv = auth_fail(out, cap, len, err, SK_ERR_LOCAL, "CRAM-MD5",
		    "the user name is too long for one line");
	else
		rv = auth_emit("", raw, b.len, out, cap, len, "CRAM-MD5", err);
	/* The digest is as good as the password against this challenge. */
	OPENSSL_cleanse(md, sizeof(md));
	OPENSSL_cleanse(digest, sizeof(digest));
	OPENSSL_cleanse(raw, sizeof(raw));
	return rv;
}

/* The initial response that did not fit in the AUTH command. */
static int
auth_late_ir(enum sk_auth_mech mech, const char *user, const char *secret,
    char *out, size_t cap, size_t *len, struct sk_error *err)
{
	unsigned char raw[AUTH_RAW_MAX];
	struct auth_buf b = { raw, 0, sizeof(raw), 0 };
	const char *what = sk_auth_mech_name(mech);
	int rv;

	auth_client_first(&b, mech, user, secret);
	if (b.overflow)
		rv = auth_fail(out, cap, len, err, SK_ERR_LOCAL, what,
		    "the credentials are too long for one line");
	else
		rv = auth_emit("", raw, b.len, out, cap, len, what, err);
	OPENSSL_cleanse(raw, sizeof(raw));
	return rv;
}

int
sk_auth_step(struct sk_auth *a, const char *user, const char *secret,
    const char *challenge, size_t clen, char *out, size_t cap, size_t *len,
    struct sk_error *err)
{
	const char *what = sk_auth_mech_name(a->mech);
	int rv;

	if (a->mech <= SK_AUTH_NONE || a->mech >= SK_AUTH__COUNT)
		return auth_fail(out, cap, len, err, SK_ERR_LOCAL, what,
		    "no exchange started");
	if (auth_check_args(a->mech, user, secret, out, cap, len, err) == -1)
		return -1;

	if (a->step == AUTH_STEP_IR) {
		if ((rv = auth_late_ir(a->mech, user, secret, out, cap, len,
		    err)) == 0)
			a->step = 0;
		return rv;
	}

	switch (a->mech) {
	case SK_AUTH_LOGIN:
		/*
		 * The challenges are "Username:" and "Password:" in base64,
		 * but servers word them differently; the order is what counts.
		 */
		if (a->step == 0)
			rv = auth_emit("", user, strlen(user), out, cap, len,
			    what, err);
		else if (a->step == 1)
			rv = auth_emit("", secret, strlen(secret), out, cap,
			    len, what, err);
		else
			goto unexpected;
		break;
	case SK_AUTH_CRAM_MD5:
		if (a->step != 0)
			goto unexpected;
		rv = auth_cram_md5(user, secret, challenge, clen, out, cap,
		    len, err);
		break;
	case SK_AUTH_XOAUTH2:
	case SK_AUTH_OAUTHBEARER:
		/*
		 * A 334 after the token carries the server's JSON error
		 * (base64); the exchange must still be completed before the
		 * server sends its final 5xx.  Google documents an empty
		 * response for XOAUTH2; RFC 7628 §3.2.3 requires a single
		 * %x01 for OAUTHBEARER.
		 */
		if (a->step != 0)
			goto unexpected;
		if (a->mech == SK_AUTH_XOAUTH2)
			rv = auth_emit("", "", 0, out, cap, len, what, err);
		else
			rv = auth_emit("", "\001", 1, out, cap, len, what, err);
		break;
	default:
		/* PLAIN's only message went with the AUTH command. */
		goto unexpected;
	}
	if (rv == 0)
		a->step++;
	return rv;

unexpected:
	return auth_fail(out, cap, len, err, SK_ERR_PROTOCOL, what,
	    "unexpected challenge from the server");
}

/*
 * RFC 7628 §3.2.2: the error challenge is base64 JSON whose "status" is an
 * RFC 6750 §3.1 error code; Google's XOAUTH2 sends the same object with an
 * HTTP status instead ("401").  Only the status matters here: whether the
 * token itself was refused, which a refresh may cure.
 */
enum sk_oauth_error
sk_auth_token_error(const char *challenge, size_t clen)
{
	char raw[2048], num[16];
	const char *st = NULL;
	enum sk_oauth_error e = SK_OAUTH_ERR_NONE;
	cJSON *j, *s;
	size_t n;

	if (challenge == NULL)
		return SK_OAUTH_ERR_NONE;
	while (clen > 0 && (challenge[clen - 1] == ' ' ||
	    challenge[clen - 1] == '\t'))
		clen--;
	if (clen == 0 ||
	    sk_base64_decode(challenge, clen, raw, sizeof(raw), &n) == -1)
		return SK_OAUTH_ERR_NONE;
	if ((j = cJSON_ParseWithLength(raw, n)) == NULL)
		return SK_OAUTH_ERR_NONE;
	s = cJSON_GetObjectItemCaseSensitive(j, "status");
	if (cJSON_IsString(s))
		st = s->valuestring;
	else if (cJSON_IsNumber(s)) {
		(void)snprintf(num, sizeof(num), "%d", s->valueint);
		st = num;
	}
	if (st == NULL)
		e = SK_OAUTH_ERR_NONE;
	else if (strcmp(st, "401") == 0 || strcmp(st, "invalid_token") == 0)
		e = SK_OAUTH_ERR_INVALID_TOKEN;
	else if (strcmp(st, "403") == 0 ||
	    strcmp(st, "insufficient_scope") == 0)
		e = SK_OAUTH_ERR_INVALID_SCOPE;
	else if (strcmp(st, "400") == 0 || strcmp(st, "invalid_request") == 0)
		e = SK_OAUTH_ERR_INVALID_REQUEST;
	else
		e = SK_OAUTH_ERR_OTHER;
	cJSON_Delete(j);
	OPENSSL_cleanse(raw, sizeof(raw));
	return e;
}
