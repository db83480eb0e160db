/*
 * smtpkit: provider presets and known server replies, as data.
 *
 * The text is INI, read with inih through a line reader of our own.  The
 * reader exists because inih (r55, as Debian builds it) reads lines into a
 * 200-octet buffer and silently cuts longer ones in two, which would turn
 * the tail of a long note into a bogus key.  The reader hands inih whole
 * lines, and cuts a long one into pieces that inih sees as continuation
 * lines; the handler glues them back.  It also numbers physical lines, so
 * that errors name the line a person sees in an editor.
 *
 * A text is parsed into a staging area and merged into the database only
 * when all of it is valid: a file is taken whole or not at all.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "smtpkit/auth.h"
#include "smtpkit/providers.h"
#include "smtpkit/reply.h"

/* data/providers.ini, embedded by scripts/embed.py at build time. */
extern const char sk__providers_builtin[];
extern const size_t sk__providers_builtin_len;

#define ID_MAX		64	/* provider, region and rule ids */
#define HOST_MAX	253	/* RFC 1035 §2.3.4, without the root dot */
#define KEY_MAX		32
#define SECTION_MAX	49	/* inih copies section names into char[50] */
#define PIECE_MIN	16	/* a smaller inih buffer would be a bug */

struct sk_providers {
	struct sk_provider **p;
	size_t np, capp;
	struct sk_reply_rule **r;
	size_t nr, capr;
};

static const char *const credential_names[SK_CRED__COUNT] = {
	"password", "authorization-code", "app-password", "api-key", "oauth2"
};
static const char *const username_names[SK_USER__COUNT] = {
	"address", "apikey", "token", "any"
};
static const char *const sender_names[SK_SENDER__COUNT] = {
	"any", "login", "alias", "verified"
};
static const char *const flow_names[SK_OAUTH_FLOW__COUNT] = {
	"none", "device", "pkce"
};

/* The doctor's verdict codes (issue 3), the ones a reply rule may name. */
static const char *const verdict_codes[] = {
	"OK", "DNS_NO_SUCH_HOST", "DNS_NO_ANSWER", "TCP_REFUSED",
	"TCP_TIMEOUT", "TCP_UNREACHABLE", "PORT_BLOCKED", "IPV6_BROKEN",
	"NO_GREETING", "GREETING_REFUSED", "TLS_MODE_MISMATCH",
	"STARTTLS_UNAVAILABLE", "TLS_VERSION", "TLS_CERT_UNTRUSTED",
	"TLS_CERT_EXPIRED", "TLS_CERT_NOT_YET_VALID", "TLS_HOSTNAME_MISMATCH",
	"CLOCK_SKEW", "CA_STORE_MISSING", "TLS_HANDSHAKE", "AUTH_NOT_OFFERED",
	"AUTH_MECH_UNSUPPORTED", "AUTH_CREDENTIALS",
	"AUTH_APP_PASSWORD_REQUIRED", "AUTH_SERVICE_DISABLED",
	"AUTH_BASIC_DISABLED", "AUTH_TOO_MANY_ATTEMPTS", "SENDER_MISMATCH",
	"SENDER_UNVERIFIED", "RECIPIENT_REJECTED", "RELAY_DENIED",
	"RATE_LIMITED", "QUOTA_EXCEEDED", "MESSAGE_REJECTED_SPAM",
	"SERVER_TEMPORARY", "SERVER_PERMANENT", "PROTOCOL_ERROR",
	"OAUTH_TOKEN_EXPIRED", "OAUTH_REVOKED", "OAUTH_CLIENT_MISSING"
};

const char *
sk_credential_name(enum sk_credential c)
{
	return (unsigned)c < SK_CRED__COUNT ? credential_names[c] : "unknown";
}

const char *
sk_username_rule_name(enum sk_username_rule r)
{
	return (unsigned)r < SK_USER__COUNT ? username_names[r] : "unknown";
}

const char *
sk_sender_rule_name(enum sk_sender_rule r)
{
	return (unsigned)r < SK_SENDER__COUNT ? sender_names[r] : "unknown";
}

const char *
sk_oauth_flow_name(enum sk_oauth_flow f)
{
	return (unsigned)f < SK_OAUTH_FLOW__COUNT ? flow_names[f] : "unknown";
}

/* ---- ASCII helpers: the data is UTF-8, ids and hosts ASCII ---- */

static int
prov_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/*
 * strcasecmp() and strcasestr() follow the locale, and the CLI sets one
 * (zh_CN.GB18030 would fold bytes of Chinese text): fold ASCII only.
 */
static int
prov_casecmp(const char *a, const char *b)
{
	int ca, cb;

	do {
		ca = prov_lower((unsigned char)*a++);
		cb = prov_lower((unsigned char)*b++);
	} while (ca == cb && ca != 0);
	return ca - cb;
}

static bool
prov_caseeq_n(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (prov_lower((unsigned char)a[i]) !=
		    prov_lower((unsigned char)b[i]))
			return false;
	return true;
}

static const char *
prov_casestr(const char *hay, const char *needle)
{
	size_t nl = strlen(needle), hl = strlen(hay), i;

	if (nl == 0)
		return hay;
	for (i = 0; i + nl <= hl; i++)
		if (prov_caseeq_n(hay + i, needle, nl))
			return hay + i;
	return NULL;
}

/* isalnum() follows the locale too: an ISO 8859-1 one takes 0xE9. */
static bool
prov_alnum(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z');
}

static bool
prov_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Whether the strict UTF-8 decoder of RFC 3629 §4 accepts s. */
static bool
prov_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0, k, need;
	uint32_t cp, min;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			need = 1;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			need = 2;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			need = 3;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else
			return false;
		if (n - i <= need)
			return false;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

/* Letters, digits and ". - _": ids, regions. */
static bool
prov_id_ok(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if (!prov_alnum((unsigned char)*s) && *s != '.' && *s != '-' &&
		    *s != '_')
			return false;
	return n > 0 && n <= ID_MAX;
}

/*
 * A DNS name of letters, digits, '-' (not at either end of a label) and
 * '_', labels joined by '.', optionally ending in '.' (RFC 1123 §2.1).
 */
static bool
prov_host_ok(const char *s)
{
	size_t n = strlen(s), label = 0, i;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > HOST_MAX)
		return false;
	for (i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!prov_alnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_')
			return false;
		if (label == 0 && s[i] == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

int
sk_oauth_flow_parse(const char *s, enum sk_oauth_flow *f)
{
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 1; i < SK_OAUTH_FLOW__COUNT; i++)
		if (prov_casecmp(s, flow_names[i]) == 0) {
			if (f != NULL)
				*f = (enum sk_oauth_flow)i;
			return 0;
		}
	return -1;
}

/*
 * RFC 3986 §3: scheme "://" authority, the authority ending at the first
 * '/', '?' or '#'.  Plain HTTP would hand tokens to anyone on the path, so
 * it is taken only for this machine (RFC 8252 §7.3 redirects, and tests).
 */
bool
sk_oauth_endpoint_ok(const char *url)
{
	const char *a, *end, *host, *hend, *p;
	bool https;
	size_t hl;

	if (url == NULL)
		return false;
	for (p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '\\')
			return false;
	if (prov_caseeq_n(url, "https://", 8)) {
		https = true;
		a = url + 8;
	} else if (prov_caseeq_n(url, "http://", 7)) {
		https = false;
		a = url + 7;
	} else
		return false;
	end = a + strcspn(a, "/?#");
	/* "user@host" could hide where the request really goes */
	if (memchr(a, '@', (size_t)(end - a)) != NULL || end == a)
		return false;
	if (*a == '[') {
		if ((hend = memchr(a, ']', (size_t)(end - a))) == NULL)
			return false;
		host = a + 1;
		hl = (size_t)(hend - host);
		p = hend + 1;
	} else {
		host = a;
		hend = memchr(a, ':', (size_t)(end - a));
		hl = hend != NULL ? (size_t)(hend - a) : (size_t)(end - a);
		p = a + hl;
	}
	if (hl == 0)
		return false;
	if (p < end) {
		if (*p != ':' || p + 1 == end)
			return false;
		for (p++; p < end; p++)
			if (*p < '0' || *p > '9')
				return false;
	}
	if (https)
		return true;
	/* RFC 3986 §3.2.2: brackets hold an IPv6 address, and only they. */
	if (*a == '[')
		return hl == 3 && memcmp(host, "::1", 3) == 0;
	return (hl == 9 && memcmp(host, "127.0.0.1", 9) == 0) ||
	    (hl == 9 && prov_caseeq_n(host, "localhost", 9));
}

/* ---- growable arrays ---- */

static int
prov_grow(void **v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return 0;
	ncap = *cap != 0 ? *cap * 2 : 8;
	if ((nv = realloc(*v, ncap * size)) == NULL)
		return -1;
	*v = nv;
	*cap = ncap;
	return 0;
}

/* Append a copy of s to a string array whose count is *n. */
static int
prov_strv_add(char ***v, size_t *n, const char *s, size_t len)
{
	char **nv, *copy;

	if ((copy = strndup(s, len)) == NULL)
		return -1;
	/* Arrays here are short: grow one at a time and skip a capacity. */
	if ((nv = realloc(*v, (*n + 1) * sizeof(*nv))) == NULL) {
		free(copy);
		return -1;
	}
	nv[(*n)++] = copy;
	*v = nv;
	return 0;
}

static void
prov_strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
provider_free(struct sk_provider *p)
{
	size_t i;

	if (p == NULL)
		return;
	free(p->id);
	free(p->name);
	free(p->name_zh);
	prov_strv_free(p->aliases, p->naliases);
	prov_strv_free(p->domains, p->ndomains);
	prov_strv_free(p->mx, p->nmx);
	free(p->host);
	free(p->credential_help);
	free(p->credential_help_zh);
	free(p->help_url);
	free(p->note);
	free(p->note_zh);
	for (i = 0; i < p->nregions; i++) {
		free(p->regions[i].name);
		free(p->regions[i].host);
		prov_strv_free(p->regions[i].domains, p->regions[i].ndomains);
		prov_strv_free(p->regions[i].mx, p->regions[i].nmx);
	}
	free(p->regions);
	free(p->origin);
	free(p->oauth.device_endpoint);
	free(p->oauth.auth_endpoint);
	free(p->oauth.token_endpoint);
	free(p->oauth.scope);
	free(p->oauth.auth_params);
	free(p->oauth.help);
	free(p->oauth.help_zh);
	free(p);
}

static void
rule_free(struct sk_reply_rule *r)
{
	if (r == NULL)
		return;
	free(r->id);
	free(r->provider);
	free(r->enhanced);
	prov_strv_free(r->match, r->nmatch);
	free(r->verdict);
	free(r->summary);
	free(r->summary_zh);
	prov_strv_free(r->fix, r->nfix);
	prov_strv_free(r->fix_zh, r->nfix_zh);
	free(r);
}

/* ---- the parse context ---- */

enum prov_section {
	SEC_NONE = 0,
	SEC_PROVIDER,
	SEC_REPLY
};

/* Single-valued keys without a pointer to test: seen at most once. */
enum {
	SEEN_RECOMMENDED = 1 << 0,
	SEEN_CREDENTIAL = 1 << 1,
	SEEN_USERNAME = 1 << 2,
	SEEN_SENDER = 1 << 3,
	SEEN_CODE = 1 << 4,
	SEEN_AUTH = 1 << 5,
	SEEN_OAUTH_FLOW = 1 << 6,
	SEEN_OAUTH_MECH = 1 << 7,
	SEEN_OAUTH_SECRET = 1 << 8,
	SEEN_OAUTH = 1 << 9	/* any oauth-* key */
};

struct prov_parse {
	const char *origin;

	/* The reader: where it is in the text. */
	const char *text;
	size_t len, pos;
	unsigned line;		/* physical line of the chunk inih holds */
	const char *rest;	/* the unread tail of a long line */
	size_t restlen;
	bool piece;		/* that chunk is a later piece of a long line */
	bool indented;		/* its line starts with white space */
	bool header;		/* a [section] line came since the last key */
	unsigned header_line;
	bool have_key;		/* mirrors inih's prev_name: continuations go there */
	unsigned *chunk_line;	/* inih's line numbers → physical lines */
	size_t nchunk, capchunk;

	/* The value being gathered over continuation lines. */
	bool pending;
	char key[KEY_MAX];
	char *val;
	size_t vlen, vcap;
	unsigned key_line;

	/* The section being filled. */
	enum prov_section sec;
	unsigned sec_line;
	unsigned seen;
	struct sk_provider *p;
	struct sk_reply_rule *r;

	/* What the text defined, merged on success. */
	struct sk_providers stage;
	unsigned *pline, *rline;	/* section lines, for duplicates */
	size_t cappline, caprline;

	bool failed;
	bool done;		/* inih finished: checks of the end */
	size_t err_chunk;	/* how far inih had read when it failed */
	unsigned err_line;
	char err_msg[SK_ERROR_MESSAGE_MAX];
};

static int prov_fail(struct prov_parse *c, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Keep the first error only; returns 0, what an inih handler fails with. */
static int
prov_fail(struct prov_parse *c, unsigned line, const char *fmt, ...)
{
	va_list ap;

	if (c->failed)
		return 0;
	c->failed = true;
	c->err_chunk = c->done ? SIZE_MAX : c->nchunk;
	c->err_line = line;
	va_start(ap, fmt);
	(void)vsnprintf(c->err_msg, sizeof(c->err_msg), fmt, ap);
	va_end(ap);
	return 0;
}

static int
prov_nomem(struct prov_parse *c)
{
	return prov_fail(c, c->line, "out of memory");
}

/* ---- the reader ---- */

static bool
prov_chunk_note(struct prov_parse *c)
{
	if (prov_grow((void **)&c->chunk_line, &c->capchunk, c->nchunk,
	    sizeof(*c->chunk_line)) == -1) {
		prov_nomem(c);
		return false;
	}
	c->chunk_line[c->nchunk++] = c->line;
	return true;
}

/*
 * Where to cut s (n octets, no trailing white space) so that the first
 * part has at most max octets: a place between two octets that are not
 * white space, where the second is not a comment character (inih would
 * take the piece for a comment) and not inside a UTF-8 sequence.  Cutting
 * between two non-blank octets means inih's stripping of each piece loses
 * nothing.  0 when there is no such place after min.
 */
static size_t
prov_cut(const char *s, size_t n, size_t min, size_t max)
{
	size_t p;
	unsigned char a, b;

	if (n <= max)
		return n;
	for (p = max; p > min; p--) {
		a = (unsigned char)s[p - 1];
		b = (unsigned char)s[p];
		if (prov_space(a) || prov_space(b) || b == ';' || b == '#' ||
		    (b & 0xc0) == 0x80)
			continue;
		return p;
	}
	return 0;
}

/* Hand inih one line, or one piece of a long line, fgets-style. */
static char *
prov_reader(char *buf, int num, void *arg)
{
	struct prov_parse *c = arg;
	const char *s, *eol, *sep;
	size_t n, i, cap, cut;
	unsigned char fc;

	if (c->failed)
		return NULL;
	if (num < PIECE_MIN) {
		prov_fail(c, c->line, "inih line buffer too small (%d)", num);
		return NULL;
	}
	cap = (size_t)num - 2;	/* room for "\n" and the NUL */

	if (c->rest != NULL) {
		/* The next piece, indented so that inih continues the key. */
		cut = prov_cut(c->rest, c->restlen, 0, cap - 1);
		if (cut == 0) {
			prov_fail(c, c->line, "line too long to read: no place "
			    "to split it between two words");
			return NULL;
		}
		buf[0] = ' ';
		memcpy(buf + 1, c->rest, cut);
		buf[cut + 1] = '\n';
		buf[cut + 2] = '\0';
		c->rest += cut;
		c->restlen -= cut;
		if (c->restlen == 0)
			c->rest = NULL;
		c->piece = true;
		return prov_chunk_note(c) ? buf : NULL;
	}

	if (c->pos >= c->len)
		return NULL;
	s = c->text + c->pos;
	eol = memchr(s, '\n', c->len - c->pos);
	n = eol != NULL ? (size_t)(eol - s) : c->len - c->pos;
	c->pos += n + (eol != NULL);
	c->line++;
	c->piece = false;
	if (memchr(s, '\0', n) != NULL) {
		prov_fail(c, c->line, "NUL character");
		return NULL;
	}
	if (!prov_chunk_note(c))
		return NULL;

	c->indented = n > 0 && prov_space((unsigned char)s[0]);
	for (i = 0; i < n && prov_space((unsigned char)s[i]); i++)
		;
	fc = i < n ? (unsigned char)s[i] : '\0';

	/* Classify as inih will: comment, continuation, section, key. */
	if (fc == ';' || fc == '#') {
		if (n + 1 > (size_t)num - 1) {
			memcpy(buf, ";\n", 3);
			return buf;
		}
	} else if (c->indented && c->have_key && fc != '\0') {
		/* a continuation line: inih reads it before '[' */
	} else if (fc == '[') {
		if (c->header) {
			prov_fail(c, c->header_line, "empty section");
			return NULL;
		}
		c->header = true;
		c->header_line = c->line;
		c->have_key = false;
		sep = memchr(s + i, ']', n - i);
		if (sep != NULL && (size_t)(sep - (s + i) - 1) > SECTION_MAX) {
			prov_fail(c, c->line, "section name longer than %d "
			    "characters", SECTION_MAX);
			return NULL;
		}
	}

	if (n + 1 <= (size_t)num - 1) {
		memcpy(buf, s, n);
		buf[n] = '\n';
		buf[n + 1] = '\0';
		return buf;
	}

	/* A long line.  Blank: nothing to say. */
	if (fc == '\0') {
		memcpy(buf, "\n", 2);
		return buf;
	}

	/*
	 * Drop an inline comment as inih would on a key line (it keeps them
	 * on continuation lines), then trailing blanks.
	 */
	for (i = 1; i < n && !(c->indented && c->have_key); i++)
		if (s[i] == ';' && prov_space((unsigned char)s[i - 1])) {
			n = i;
			break;
		}
	while (n > 0 && prov_space((unsigned char)s[n - 1]))
		n--;

	/* The first piece must hold the "key =" unless it continues one. */
	i = 0;
	if (!(c->indented && c->have_key)) {
		for (i = 0; i < n && s[i] != '=' && s[i] != ':'; i++)
			;
		if (i == n || i > cap)
			return (prov_fail(c, c->line, "line too long, and no "
			    "\"key =\" at its start"), NULL);
	}
	cut = prov_cut(s, n, i, cap);
	if (cut == 0)
		return (prov_fail(c, c->line, "line too long to read: no "
		    "place to split it between two words"), NULL);
	memcpy(buf, s, cut);
	buf[cut] = '\n';
	buf[cut + 1] = '\0';
	if (cut < n) {
		c->rest = s + cut;
		c->restlen = n - cut;
	}
	return buf;
}

/* ---- values ---- */

static int
prov_val_append(struct prov_parse *c, const char *sep, const char *v)
{
	size_t sl = strlen(sep), vl = strlen(v);

	if (c->vlen + sl + vl > SK_PROVIDERS_VALUE_MAX)
		return prov_fail(c, c->key_line, "%s: value longer than %d "
		    "octets", c->key, SK_PROVIDERS_VALUE_MAX);
	if (c->vlen + sl + vl + 1 > c->vcap) {
		size_t ncap = c->vcap != 0 ? c->vcap : 256;
		char *nv;

		while (ncap < c->vlen + sl + vl + 1)
			ncap *= 2;
		if ((nv = realloc(c->val, ncap)) == NULL)
			return prov_nomem(c);
		c->val = nv;
		c->vcap = ncap;
	}
	memcpy(c->val + c->vlen, sep, sl);
	memcpy(c->val + c->vlen + sl, v, vl + 1);
	c->vlen += sl + vl;
	return 1;
}

/* The next word of a list ("a b, c"); NULL at the end. */
static const char *
prov_word(const char **sp, size_t *len)
{
	const char *s = *sp, *w;

	while (*s == ',' || prov_space((unsigned char)*s))
		s++;
	if (*s == '\0') {
		*sp = s;
		return NULL;
	}
	w = s;
	while (*s != '\0' && *s != ',' && !prov_space((unsigned char)*s))
		s++;
	*len = (size_t)(s - w);
	*sp = s;
	return w;
}

static size_t
prov_words(const char *s)
{
	size_t n = 0, len;

	while (prov_word(&s, &len) != NULL)
		n++;
	return n;
}

/* Copy a word into buf (cap octets); false when it does not fit. */
static bool
prov_word_copy(char *buf, size_t cap, const char *w, size_t len)
{
	if (len >= cap)
		return false;
	memcpy(buf, w, len);
	buf[len] = '\0';
	return true;
}

static int
prov_name_lookup(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (prov_casecmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static int
prov_set_text(struct prov_parse *c, char **field)
{
	if (*field != NULL)
		return prov_fail(c, c->key_line, "%s given twice", c->key);
	if (c->val[0] == '\0')
		return prov_fail(c, c->key_line, "%s: empty value", c->key);
	if ((*field = strdup(c->val)) == NULL)
		return prov_nomem(c);
	return 1;
}

static int
prov_add_text(struct prov_parse *c, char ***v, size_t *n)
{
	if (c->val[0] == '\0')
		return prov_fail(c, c->key_line, "%s: empty value", c->key);
	if (*n >= 64)
		return prov_fail(c, c->key_line, "%s: more than 64 of them",
		    c->key);
	if (prov_strv_add(v, n, c->val, c->vlen) == -1)
		return prov_nomem(c);
	return 1;
}

/* Add the words of the value; host: each must be a DNS name (a trailing
 * dot dropped), else an id. */
static int
prov_add_words(struct prov_parse *c, const char *s, char ***v, size_t *n,
    bool host)
{
	char word[HOST_MAX + 2];
	const char *w;
	size_t len;

	if (prov_words(s) == 0)
		return prov_fail(c, c->key_line, "%s: empty value", c->key);
	while ((w = prov_word(&s, &len)) != NULL) {
		if (!prov_word_copy(word, sizeof(word), w, len) ||
		    !(host ? prov_host_ok(word) : prov_id_ok(word)))
			return prov_fail(c, c->key_line, "%s: \"%.*s\" is not "
			    "%s", c->key, (int)(len > 80 ? 80 : len), w,
			    host ? "a domain name" :
			    "an id (letters, digits, '.', '-', '_')");
		if (host && len > 0 && word[len - 1] == '.')
			word[--len] = '\0';
		if (*n >= 256)
			return prov_fail(c, c->key_line, "%s: more than 256 "
			    "names", c->key);
		if (prov_strv_add(v, n, word, len) == -1)
			return prov_nomem(c);
	}
	return 1;
}

static int
prov_number(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static struct sk_provider_region *
prov_region(struct sk_provider *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nregions; i++)
		if (prov_casecmp(p->regions[i].name, name) == 0)
			return &p->regions[i];
	return NULL;
}

static int
prov_key_port(struct prov_parse *c, struct sk_provider *p)
{
	const char *s = c->val, *w;
	char num[8], mode[16];
	enum sk_tls_mode m;
	size_t len, i;
	long port;

	if (prov_words(s) != 2 ||
	    (w = prov_word(&s, &len)) == NULL ||
	    !prov_word_copy(num, sizeof(num), w, len) ||
	    (w = prov_word(&s, &len)) == NULL ||
	    !prov_word_copy(mode, sizeof(mode), w, len))
		return prov_fail(c, c->key_line, "port: expected \"port = "
		    "NUMBER implicit|starttls|none\", not \"%.80s\"", c->val);
	if (prov_number(num, 1, 65535, &port) == -1)
		return prov_fail(c, c->key_line, "port: \"%s\" is not a port "
		    "number (1-65535)", num);
	if (sk_tls_mode_parse(mode, &m) == -1)
		return prov_fail(c, c->key_line, "port %ld: unknown TLS mode "
		    "\"%s\" (implicit, starttls or none)", port, mode);
	for (i = 0; i < p->nports; i++)
		if (p->ports[i].port == (unsigned)port)
			return prov_fail(c, c->key_line, "port %ld given "
			    "twice", port);
	if (p->nports == SK_PROVIDER_PORTS_MAX)
		return prov_fail(c, c->key_line, "more than %d ports",
		    SK_PROVIDER_PORTS_MAX);
	p->ports[p->nports].port = (unsigned)port;
	p->ports[p->nports].mode = m;
	p->nports++;
	return 1;
}

static int
prov_key_region(struct prov_parse *c, struct sk_provider *p)
{
	const char *s = c->val, *w;
	char name[ID_MAX + 1], host[HOST_MAX + 2];
	struct sk_provider_region *nr, *r;
	size_t len;

	if (prov_words(s) != 2 ||
	    (w = prov_word(&s, &len)) == NULL ||
	    !prov_word_copy(name, sizeof(name), w, len) ||
	    (w = prov_word(&s, &len)) == NULL ||
	    !prov_word_copy(host, sizeof(host), w, len))
		return prov_fail(c, c->key_line, "region: expected \"region = "
		    "NAME HOST\", not \"%.80s\"", c->val);
	if (!prov_id_ok(name))
		return prov_fail(c, c->key_line, "region: \"%s\" is not an id "
		    "(letters, digits, '.', '-', '_')", name);
	if (!prov_host_ok(host))
		return prov_fail(c, c->key_line, "region %s: \"%s\" is not a "
		    "host name", name, host);
	if (prov_region(p, name) != NULL)
		return prov_fail(c, c->key_line, "region %s given twice",
		    name);
	if (p->nregions >= 64)
		return prov_fail(c, c->key_line, "more than 64 regions");
	if ((nr = realloc(p->regions, (p->nregions + 1) *
	    sizeof(*nr))) == NULL)
		return prov_nomem(c);
	p->regions = nr;
	r = &p->regions[p->nregions];
	memset(r, 0, sizeof(*r));
	len = strlen(host);
	if (host[len - 1] == '.')
		host[len - 1] = '\0';
	if ((r->name = strdup(name)) == NULL ||
	    (r->host = strdup(host)) == NULL) {
		free(r->name);
		free(r->host);
		return prov_nomem(c);
	}
	p->nregions++;
	return 1;
}

/* "region_domains = eu zoho.eu zohomail.eu", "region_mx = pro-eu zoho.eu" */
static int
prov_key_region_names(struct prov_parse *c, struct sk_provider *p, bool mx)
{
	const char *s = c->val, *w;
	char name[ID_MAX + 1];
	struct sk_provider_region *r;
	size_t len;

	if (prov_words(s) < 2 || (w = prov_word(&s, &len)) == NULL ||
	    !prov_word_copy(name, sizeof(name), w, len))
		return prov_fail(c, c->key_line, "%s: expected \"%s = REGION "
		    "NAME...\"", c->key, c->key);
	if ((r = prov_region(p, name)) == NULL)
		return prov_fail(c, c->key_line, "%s: unknown region \"%s\" "
		    "(give \"region = %s HOST\" first)", c->key, name, name);
	return mx ? prov_add_words(c, s, &r->mx, &r->nmx, true) :
	    prov_add_words(c, s, &r->domains, &r->ndomains, true);
}

static int
prov_key_enum(struct prov_parse *c, unsigned bit, const char *const *names,
    size_t n, int *out)
{
	int v;
	size_t i, off = 0;
	char list[128];

	if (c->seen & bit)
		return prov_fail(c, c->key_line, "%s given twice", c->key);
	c->seen |= bit;
	if ((v = prov_name_lookup(names, n, c->val)) == -1) {
		list[0] = '\0';
		for (i = 0; i < n && off < sizeof(list); i++)
			off += (size_t)snprintf(list + off, sizeof(list) - off,
			    "%s%s", i ? ", " : "", names[i]);
		return prov_fail(c, c->key_line, "%s: unknown value \"%.60s\" "
		    "(%s)", c->key, c->val, list);
	}
	*out = v;
	return 1;
}

static int
prov_set_endpoint(struct prov_parse *c, char **field)
{
	if (!sk_oauth_endpoint_ok(c->val))
		return prov_fail(c, c->key_line, "%s: \"%.80s\" is not an "
		    "https:// URL (http:// only to 127.0.0.1, localhost or "
		    "[::1])", c->key, c->val);
	return prov_set_text(c, field);
}

/* "oauth_flow = device", "oauth_token_endpoint = https://...": issue 4. */
static int
prov_key_oauth(struct prov_parse *c, struct sk_provider_oauth *o)
{
	const char *k = c->key + 6;
	enum sk_auth_mech m;

	c->seen |= SEEN_OAUTH;
	if (strcmp(k, "flow") == 0) {
		if (c->seen & SEEN_OAUTH_FLOW)
			return prov_fail(c, c->key_line, "%s given twice",
			    c->key);
		c->seen |= SEEN_OAUTH_FLOW;
		if (sk_oauth_flow_parse(c->val, &o->flow) == -1)
			return prov_fail(c, c->key_line, "%s: unknown value "
			    "\"%.40s\" (device, pkce)", c->key, c->val);
		return 1;
	}
	if (strcmp(k, "device_endpoint") == 0)
		return prov_set_endpoint(c, &o->device_endpoint);
	if (strcmp(k, "auth_endpoint") == 0)
		return prov_set_endpoint(c, &o->auth_endpoint);
	if (strcmp(k, "token_endpoint") == 0)
		return prov_set_endpoint(c, &o->token_endpoint);
	if (strcmp(k, "scope") == 0)
		return prov_set_text(c, &o->scope);
	if (strcmp(k, "auth_params") == 0) {
		if (strpbrk(c->val, " \t#") != NULL || c->val[0] == '&' ||
		    c->val[0] == '?')
			return prov_fail(c, c->key_line, "%s: give "
			    "\"name=value&name=value\", URL-encoded", c->key);
		return prov_set_text(c, &o->auth_params);
	}
	if (strcmp(k, "mech") == 0) {
		if (c->seen & SEEN_OAUTH_MECH)
			return prov_fail(c, c->key_line, "%s given twice",
			    c->key);
		c->seen |= SEEN_OAUTH_MECH;
		m = sk_auth_mech_parse(c->val);
		if (!sk_auth_mech_is_token(m))
			return prov_fail(c, c->key_line, "%s: \"%.40s\": use "
			    "XOAUTH2 or OAUTHBEARER", c->key, c->val);
		o->mech = m;
		return 1;
	}
	if (strcmp(k, "client_secret_required") == 0) {
		if (c->seen & SEEN_OAUTH_SECRET)
			return prov_fail(c, c->key_line, "%s given twice",
			    c->key);
		c->seen |= SEEN_OAUTH_SECRET;
		if (prov_casecmp(c->val, "yes") == 0)
			o->secret_required = true;
		else if (prov_casecmp(c->val, "no") == 0)
			o->secret_required = false;
		else
			return prov_fail(c, c->key_line, "%s: use yes or no",
			    c->key);
		return 1;
	}
	if (strcmp(k, "help") == 0)
		return prov_set_text(c, &o->help);
	if (strcmp(k, "help_zh") == 0)
		return prov_set_text(c, &o->help_zh);
	return prov_fail(c, c->key_line, "unknown key \"%s\" in a [provider] "
	    "section", c->key);
}

/* A preset's OAuth2 data hangs together: the flow and what it needs. */
static const char *
prov_oauth_missing(const struct sk_provider_oauth *o)
{
	if (o->flow == SK_OAUTH_FLOW_NONE)
		return "oauth-flow (device or pkce)";
	if (o->token_endpoint == NULL)
		return "oauth-token-endpoint";
	if (o->scope == NULL)
		return "oauth-scope";
	if (o->flow == SK_OAUTH_FLOW_DEVICE && o->device_endpoint == NULL)
		return "oauth-device-endpoint (for oauth-flow = device)";
	if (o->flow == SK_OAUTH_FLOW_PKCE && o->auth_endpoint == NULL)
		return "oauth-auth-endpoint (for oauth-flow = pkce)";
	return NULL;
}

static int
prov_key_provider(struct prov_parse *c, struct sk_provider *p)
{
	const char *k = c->key, *s, *w;
	enum sk_auth_mech m;
	char mech[24];
	size_t len;
	long port;
	int v = 0;

	if (strcmp(k, "name") == 0)
		return prov_set_text(c, &p->name);
	if (strcmp(k, "name_zh") == 0)
		return prov_set_text(c, &p->name_zh);
	if (strcmp(k, "aliases") == 0 || strcmp(k, "alias") == 0)
		return prov_add_words(c, c->val, &p->aliases, &p->naliases,
		    false);
	if (strcmp(k, "domains") == 0 || strcmp(k, "domain") == 0)
		return prov_add_words(c, c->val, &p->domains, &p->ndomains,
		    true);
	if (strcmp(k, "mx") == 0)
		return prov_add_words(c, c->val, &p->mx, &p->nmx, true);
	if (strcmp(k, "host") == 0) {
		if (!prov_host_ok(c->val))
			return prov_fail(c, c->key_line, "host: \"%.80s\" is "
			    "not a host name", c->val);
		if (c->val[c->vlen - 1] == '.')
			c->val[--c->vlen] = '\0';
		return prov_set_text(c, &p->host);
	}
	if (strcmp(k, "port") == 0)
		return prov_key_port(c, p);
	if (strcmp(k, "recommended") == 0) {
		if (c->seen & SEEN_RECOMMENDED)
			return prov_fail(c, c->key_line, "recommended given "
			    "twice");
		c->seen |= SEEN_RECOMMENDED;
		if (prov_number(c->val, 1, 65535, &port) == -1)
			return prov_fail(c, c->key_line, "recommended: \"%.20s"
			    "\" is not a port number (1-65535)", c->val);
		p->recommended = (unsigned)port;
		return 1;
	}
	if (strcmp(k, "auth") == 0) {
		if (c->seen & SEEN_AUTH)
			return prov_fail(c, c->key_line, "auth given twice");
		c->seen |= SEEN_AUTH;
		s = c->val;
		if (prov_words(s) == 0)
			return prov_fail(c, c->key_line, "auth: empty value");
		while ((w = prov_word(&s, &len)) != NULL) {
			if (!prov_word_copy(mech, sizeof(mech), w, len) ||
			    (m = sk_auth_mech_parse(mech)) == SK_AUTH_NONE)
				return prov_fail(c, c->key_line, "auth: unknown "
				    "mechanism \"%.*s\" (PLAIN, LOGIN, CRAM-MD5, "
				    "XOAUTH2, OAUTHBEARER)",
				    (int)(len > 40 ? 40 : len), w);
			p->auth |= SK_AUTH_BIT(m);
		}
		return 1;
	}
	if (strcmp(k, "credential") == 0) {
		if (prov_key_enum(c, SEEN_CREDENTIAL, credential_names,
		    SK_CRED__COUNT, &v) == 0)
			return 0;
		p->credential = (enum sk_credential)v;
		return 1;
	}
	if (strcmp(k, "credential_help") == 0)
		return prov_set_text(c, &p->credential_help);
	if (strcmp(k, "credential_help_zh") == 0)
		return prov_set_text(c, &p->credential_help_zh);
	if (strcmp(k, "username") == 0) {
		if (prov_key_enum(c, SEEN_USERNAME, username_names,
		    SK_USER__COUNT, &v) == 0)
			return 0;
		p->username = (enum sk_username_rule)v;
		return 1;
	}
	if (strcmp(k, "sender") == 0) {
		if (prov_key_enum(c, SEEN_SENDER, sender_names,
		    SK_SENDER__COUNT, &v) == 0)
			return 0;
		p->sender = (enum sk_sender_rule)v;
		return 1;
	}
	if (strcmp(k, "help_url") == 0 || strcmp(k, "url") == 0)
		return prov_set_text(c, &p->help_url);
	if (strcmp(k, "note") == 0)
		return prov_set_text(c, &p->note);
	if (strcmp(k, "note_zh") == 0)
		return prov_set_text(c, &p->note_zh);
	if (strcmp(k, "region") == 0)
		return prov_key_region(c, p);
	if (strcmp(k, "region_domains") == 0)
		return prov_key_region_names(c, p, false);
	if (strcmp(k, "region_mx") == 0)
		return prov_key_region_names(c, p, true);
	if (strncmp(k, "oauth_", 6) == 0)
		return prov_key_oauth(c, &p->oauth);
	return prov_fail(c, c->key_line, "unknown key \"%s\" in a [provider] "
	    "section", k);
}

static int
prov_key_reply(struct prov_parse *c, struct sk_reply_rule *r)
{
	const char *k = c->key, *s, *w;
	char enh[SK_ENHANCED_MAX];
	size_t len;
	long code;

	if (strcmp(k, "provider") == 0 || strcmp(k, "providers") == 0) {
		if (r->provider != NULL)
			return prov_fail(c, c->key_line, "provider given "
			    "twice: list the ids on one line");
		s = c->val;
		if (prov_words(s) == 0)
			return prov_fail(c, c->key_line, "provider: empty "
			    "value");
		while ((w = prov_word(&s, &len)) != NULL) {
			char id[ID_MAX + 1];

			if (!prov_word_copy(id, sizeof(id), w, len) ||
			    !prov_id_ok(id))
				return prov_fail(c, c->key_line, "provider: "
				    "\"%.*s\" is not an id", (int)(len > 80 ?
				    80 : len), w);
		}
		/* Kept as "id id", one space apart, for show and JSON. */
		s = c->val;
		c->vlen = 0;
		while ((w = prov_word(&s, &len)) != NULL) {
			if (c->vlen > 0)
				c->val[c->vlen++] = ' ';
			memmove(c->val + c->vlen, w, len);
			c->vlen += len;
		}
		c->val[c->vlen] = '\0';
		return prov_set_text(c, &r->provider);
	}
	if (strcmp(k, "code") == 0) {
		if (c->seen & SEEN_CODE)
			return prov_fail(c, c->key_line, "code given twice");
		c->seen |= SEEN_CODE;
		if (prov_number(c->val, 200, 599, &code) == -1)
			return prov_fail(c, c->key_line, "code: \"%.20s\" is "
			    "not a reply code (200-599)", c->val);
		r->code = (int)code;
		return 1;
	}
	if (strcmp(k, "enhanced") == 0) {
		if (sk_enhanced_parse(c->val, c->vlen, enh) != c->vlen ||
		    strcmp(enh, c->val) != 0)
			return prov_fail(c, c->key_line, "enhanced: \"%.20s\" "
			    "is not an enhanced status code like 5.7.8",
			    c->val);
		return prov_set_text(c, &r->enhanced);
	}
	if (strcmp(k, "match") == 0)
		return prov_add_text(c, &r->match, &r->nmatch);
	if (strcmp(k, "verdict") == 0) {
		if (!sk_providers_verdict_known(c->val))
			return prov_fail(c, c->key_line, "verdict: unknown "
			    "verdict code \"%.60s\"", c->val);
		return prov_set_text(c, &r->verdict);
	}
	if (strcmp(k, "summary") == 0)
		return prov_set_text(c, &r->summary);
	if (strcmp(k, "summary_zh") == 0)
		return prov_set_text(c, &r->summary_zh);
	if (strcmp(k, "fix") == 0)
		return prov_add_text(c, &r->fix, &r->nfix);
	if (strcmp(k, "fix_zh") == 0)
		return prov_add_text(c, &r->fix_zh, &r->nfix_zh);
	return prov_fail(c, c->key_line, "unknown key \"%s\" in a [reply] "
	    "section", k);
}

/* The gathered value is complete: check it and store it. */
static int
prov_commit(struct prov_parse *c)
{
	const unsigned char *v;
	size_t i, start;

	if (!c->pending)
		return 1;
	c->pending = false;

	/* Trim what joining empty first parts may have left. */
	for (start = 0; start < c->vlen &&
	    prov_space((unsigned char)c->val[start]); start++)
		;
	memmove(c->val, c->val + start, c->vlen - start + 1);
	c->vlen -= start;
	while (c->vlen > 0 && prov_space((unsigned char)c->val[c->vlen - 1]))
		c->val[--c->vlen] = '\0';

	v = (const unsigned char *)c->val;
	for (i = 0; i < c->vlen; i++)
		if ((v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
			return prov_fail(c, c->key_line, "%s: control "
			    "character in the value", c->key);
	if (!prov_utf8(v, c->vlen))
		return prov_fail(c, c->key_line, "%s: not valid UTF-8",
		    c->key);

	if (c->sec == SEC_PROVIDER)
		return prov_key_provider(c, c->p);
	return prov_key_reply(c, c->r);
}

static bool
prov_has_port(const struct sk_provider *p, unsigned port)
{
	size_t i;

	for (i = 0; i < p->nports; i++)
		if (p->ports[i].port == port)
			return true;
	return false;
}

/* The section is complete: check what must be there, move it to stage. */
static int
prov_end_section(struct prov_parse *c)
{
	struct sk_providers *st = &c->stage;
	struct sk_provider *p = c->p;
	struct sk_reply_rule *r = c->r;
	const char *missing;

	c->p = NULL;
	c->r = NULL;
	switch (c->sec) {
	case SEC_NONE:
		return 1;
	case SEC_PROVIDER:
		c->sec = SEC_NONE;
		if (p->name == NULL || p->host == NULL || p->nports == 0) {
			prov_fail(c, c->sec_line, "[provider %s]: missing %s",
			    p->id, p->name == NULL ? "name" :
			    p->host == NULL ? "host" : "port");
			provider_free(p);
			return 0;
		}
		if ((c->seen & SEEN_OAUTH) &&
		    (missing = prov_oauth_missing(&p->oauth)) != NULL) {
			prov_fail(c, c->sec_line, "[provider %s]: OAuth2 data "
			    "without %s", p->id, missing);
			provider_free(p);
			return 0;
		}
		if (p->oauth.flow != SK_OAUTH_FLOW_NONE &&
		    p->oauth.mech == SK_AUTH_NONE)
			p->oauth.mech = SK_AUTH_XOAUTH2;
		if (p->recommended == 0)
			p->recommended = p->ports[0].port;
		else if (!prov_has_port(p, p->recommended)) {
			prov_fail(c, c->sec_line, "[provider %s]: recommended "
			    "port %u is not one of its ports", p->id,
			    p->recommended);
			provider_free(p);
			return 0;
		}
		st->p[st->np] = p;
		c->pline[st->np++] = c->sec_line;
		return 1;
	case SEC_REPLY:
		c->sec = SEC_NONE;
		if (r->verdict == NULL || r->summary == NULL ||
		    (r->nmatch == 0 && r->enhanced == NULL)) {
			prov_fail(c, c->sec_line, "[reply %s]: missing %s", r->id,
			    r->verdict == NULL ? "verdict" :
			    r->summary == NULL ? "summary" : "match (or enhanced)");
			rule_free(r);
			return 0;
		}
		st->r[st->nr] = r;
		c->rline[st->nr++] = c->sec_line;
		return 1;
	}
	return 1;
}

/* "provider qq" or "reply gmail-app-password": start filling it. */
static int
prov_begin_section(struct prov_parse *c, const char *section)
{
	struct sk_providers *st = &c->stage;
	char kind[16], id[ID_MAX + 1];
	const char *s = section, *w;
	size_t len, i;

	c->sec_line = c->header_line;
	c->seen = 0;
	if (prov_words(s) != 2 || (w = prov_word(&s, &len)) == NULL ||
	    !prov_word_copy(kind, sizeof(kind), w, len) ||
	    (strcmp(kind, "provider") != 0 && strcmp(kind, "reply") != 0))
		return prov_fail(c, c->sec_line, "unknown section [%s]: "
		    "expected [provider ID] or [reply ID]", section);
	w = prov_word(&s, &len);
	if (!prov_word_copy(id, sizeof(id), w, len) || !prov_id_ok(id))
		return prov_fail(c, c->sec_line, "[%s]: \"%.*s\" is not an id "
		    "(letters, digits, '.', '-', '_')", kind,
		    (int)(len > 60 ? 60 : len), w);

	if (kind[0] == 'p') {
		for (i = 0; i < st->np; i++)
			if (prov_casecmp(st->p[i]->id, id) == 0)
				return prov_fail(c, c->sec_line, "[provider "
				    "%s] given twice (first on line %u)", id,
				    c->pline[i]);
		if (prov_grow((void **)&st->p, &st->capp, st->np,
		    sizeof(*st->p)) == -1 ||
		    prov_grow((void **)&c->pline, &c->cappline, st->np,
		    sizeof(*c->pline)) == -1)
			return prov_nomem(c);
		/* prov_grow sized both for np + 1 alike */
		if ((c->p = calloc(1, sizeof(*c->p))) == NULL ||
		    (c->p->id = strdup(id)) == NULL ||
		    (c->p->origin = strdup(c->origin)) == NULL) {
			provider_free(c->p);
			c->p = NULL;
			return prov_nomem(c);
		}
		c->sec = SEC_PROVIDER;
	} else {
		for (i = 0; i < st->nr; i++)
			if (prov_casecmp(st->r[i]->id, id) == 0)
				return prov_fail(c, c->sec_line, "[reply %s] "
				    "given twice (first on line %u)", id,
				    c->rline[i]);
		if (prov_grow((void **)&st->r, &st->capr, st->nr,
		    sizeof(*st->r)) == -1 ||
		    prov_grow((void **)&c->rline, &c->caprline, st->nr,
		    sizeof(*c->rline)) == -1)
			return prov_nomem(c);
		if ((c->r = calloc(1, sizeof(*c->r))) == NULL ||
		    (c->r->id = strdup(id)) == NULL) {
			rule_free(c->r);
			c->r = NULL;
			return prov_nomem(c);
		}
		c->sec = SEC_REPLY;
	}
	return 1;
}

static int
prov_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct prov_parse *c = arg;
	size_t i;

	if (c->failed)
		return 0;

	/* A continuation: of a long line we cut, or an indented line. */
	if (c->piece || (c->indented && c->have_key)) {
		if (!c->pending)
			return prov_fail(c, c->line, "continuation line "
			    "without a key");
		return prov_val_append(c, c->piece ? "" : " ", value);
	}

	if (prov_commit(c) == 0)
		return 0;
	if (c->header) {
		c->header = false;
		if (prov_end_section(c) == 0 ||
		    prov_begin_section(c, section) == 0)
			return 0;
	} else if (c->sec == SEC_NONE)
		return prov_fail(c, c->line, "\"%s\" outside a section: start "
		    "with [provider ID] or [reply ID]", name);

	/* Keys: lower case, '-' and '_' alike. */
	if (strlen(name) >= sizeof(c->key) || name[0] == '\0')
		return prov_fail(c, c->line, "unknown key \"%.40s\"", name);
	for (i = 0; name[i] != '\0'; i++)
		c->key[i] = name[i] == '-' ? '_' :
		    (char)prov_lower((unsigned char)name[i]);
	c->key[i] = '\0';
	c->key_line = c->line;
	c->vlen = 0;
	c->pending = true;
	c->have_key = true;
	return prov_val_append(c, "", value);
}

/* ---- the database ---- */

struct sk_providers *
sk_providers_new(void)
{
	return calloc(1, sizeof(struct sk_providers));
}

void
sk_providers_free(struct sk_providers *db)
{
	size_t i;

	if (db == NULL)
		return;
	for (i = 0; i < db->np; i++)
		provider_free(db->p[i]);
	for (i = 0; i < db->nr; i++)
		rule_free(db->r[i]);
	free(db->p);
	free(db->r);
	free(db);
}

static void
prov_parse_fini(struct prov_parse *c)
{
	size_t i;

	for (i = 0; i < c->stage.np; i++)
		provider_free(c->stage.p[i]);
	for (i = 0; i < c->stage.nr; i++)
		rule_free(c->stage.r[i]);
	provider_free(c->p);
	rule_free(c->r);
	free(c->stage.p);
	free(c->stage.r);
	free(c->pline);
	free(c->rline);
	free(c->chunk_line);
	free(c->val);
}

/* Move what the text defined into db: a known id is replaced in place. */
static int
prov_merge(struct sk_providers *db, struct prov_parse *c)
{
	struct sk_providers *st = &c->stage;
	size_t i, j, addp = 0, addr = 0;

	for (i = 0; i < st->np; i++) {
		for (j = 0; j < db->np; j++)
			if (prov_casecmp(db->p[j]->id, st->p[i]->id) == 0)
				break;
		addp += j == db->np;
	}
	for (i = 0; i < st->nr; i++) {
		for (j = 0; j < db->nr; j++)
			if (prov_casecmp(db->r[j]->id, st->r[i]->id) == 0)
				break;
		addr += j == db->nr;
	}
	/* Make room first, so that the merge itself cannot fail halfway. */
	if (db->np + addp > db->capp) {
		struct sk_provider **np = realloc(db->p,
		    (db->np + addp) * sizeof(*np));
		if (np == NULL)
			return -1;
		db->p = np;
		db->capp = db->np + addp;
	}
	if (db->nr + addr > db->capr) {
		struct sk_reply_rule **nr = realloc(db->r,
		    (db->nr + addr) * sizeof(*nr));
		if (nr == NULL)
			return -1;
		db->r = nr;
		db->capr = db->nr + addr;
	}
	for (i = 0; i < st->np; i++) {
		for (j = 0; j < db->np; j++)
			if (prov_casecmp(db->p[j]->id, st->p[i]->id) == 0)
				break;
		if (j < db->np)
			provider_free(db->p[j]);
		else
			db->np++;
		db->p[j] = st->p[i];
	}
	for (i = 0; i < st->nr; i++) {
		for (j = 0; j < db->nr; j++)
			if (prov_casecmp(db->r[j]->id, st->r[i]->id) == 0)
				break;
		if (j < db->nr)
			rule_free(db->r[j]);
		else
			db->nr++;
		db->r[j] = st->r[i];
	}
	st->np = st->nr = 0;
	return 0;
}

int
sk_providers_parse(struct sk_providers *db, const char *text, size_t len,
    const char *origin, struct sk_error *err)
{
	struct prov_parse c;
	unsigned line;
	int rc;

	sk_error_clear(err);
	if (origin == NULL)
		origin = "(text)";
	if (db == NULL || (text == NULL && len > 0))
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "%s: nothing to parse into", origin);

	memset(&c, 0, sizeof(c));
	c.origin = origin;
	c.text = text;
	c.len = len;
	/* A UTF-8 byte order mark, as some editors write: the reader must
	 * see "[" first on the line to know a section starts there. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		c.pos = 3;

	rc = ini_parse_stream(prov_reader, &c, prov_handler, &c);
	c.done = true;
	if (!c.failed) {
		if (c.header)
			prov_fail(&c, c.header_line, "empty section");
		else if (prov_commit(&c) != 0)
			prov_end_section(&c);
	}
	/*
	 * inih's own complaints (a line with neither "[...]" nor "=") carry
	 * its count of lines, which the pieces of long lines inflate: map
	 * it to a physical line.  Report whichever was found first.
	 */
	if (rc > 0 && (size_t)rc <= c.nchunk) {
		line = c.chunk_line[rc - 1];
		if (!c.failed || (size_t)rc < c.err_chunk) {
			c.failed = false;
			prov_fail(&c, line, "expected \"[provider ID]\", "
			    "\"[reply ID]\" or \"key = value\"");
		}
	} else if (rc == -2 && !c.failed)
		prov_fail(&c, c.line, "out of memory");

	if (!c.failed && prov_merge(db, &c) == -1)
		prov_fail(&c, 0, "out of memory");
	if (c.failed) {
		if (c.err_line > 0)
			sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    "%s:%u: %s", origin, c.err_line, c.err_msg);
		else
			sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    "%s: %s", origin, c.err_msg);
		prov_parse_fini(&c);
		return -1;
	}
	prov_parse_fini(&c);
	return 0;
}

/* ---- loading ---- */

static int
prov_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
prov_load_file(struct sk_providers *db, const char *path,
    struct sk_error *err)
{
	struct stat st;
	char *buf = NULL;
	size_t off = 0;
	ssize_t n;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		goto fail;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		/* A directory or socket named *.ini is not a preset file. */
		close(fd);
		return 0;
	}
	if (st.st_size > SK_PROVIDERS_FILE_MAX) {
		close(fd);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "%s: larger than %d octets", path, SK_PROVIDERS_FILE_MAX);
	}
	/* One more than the limit, to notice a file that grew meanwhile. */
	if ((buf = malloc(SK_PROVIDERS_FILE_MAX + 1)) == NULL)
		goto fail;
	while (off <= SK_PROVIDERS_FILE_MAX) {
		n = read(fd, buf + off, SK_PROVIDERS_FILE_MAX + 1 - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	if (off > SK_PROVIDERS_FILE_MAX) {
		free(buf);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
		    "%s: larger than %d octets", path, SK_PROVIDERS_FILE_MAX);
	}
	rc = sk_providers_parse(db, buf, off, path, err);
	free(buf);
	return rc;
 fail:
	rc = errno;
	if (fd != -1)
		close(fd);
	free(buf);
	sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "%s: %s", path,
	    strerror(rc));
	if (err != NULL)
		err->sys_errno = rc;
	return -1;
}

static int
prov_load_dir(struct sk_providers *db, const char *dir, struct sk_error *err)
{
	struct dirent *de;
	char **names = NULL, path[4096];
	size_t n = 0, cap = 0, i, len;
	DIR *d;
	int rc = 0, e;

	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		e = errno;
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "%s: %s", dir,
		    strerror(e));
		if (err != NULL)
			err->sys_errno = e;
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		/* Editors' and package managers' leftovers end otherwise. */
		if (de->d_name[0] == '.' || len < 5 ||
		    strcmp(de->d_name + len - 4, ".ini") != 0)
			continue;
		if (prov_grow((void **)&names, &cap, n, sizeof(*names)) == -1 ||
		    (names[n] = strdup(de->d_name)) == NULL) {
			rc = sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
			    "%s: out of memory", dir);
			goto out;
		}
		n++;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), prov_name_cmp);
	for (i = 0; i < n; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    names[i]) >= sizeof(path)) {
			rc = sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_CONFIG,
			    "%s/%s: path too long", dir, names[i]);
			goto out;
		}
		if ((rc = prov_load_file(db, path, err)) == -1)
			goto out;
	}
 out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

struct sk_providers *
sk_providers_load(const char *const *dirs, struct sk_error *err)
{
	struct sk_providers *db;
	size_t i;

	sk_error_clear(err);
	if ((db = sk_providers_new()) == NULL) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
		return NULL;
	}
	if (sk_providers_parse(db, sk__providers_builtin,
	    sk__providers_builtin_len, "builtin", err) == -1)
		goto fail;
	for (i = 0; dirs != NULL && dirs[i] != NULL; i++)
		if (prov_load_dir(db, dirs[i], err) == -1)
			goto fail;
	return db;
 fail:
	sk_providers_free(db);
	return NULL;
}

void
sk_providers_default_dirs(const char *dirs[3], char *buf, size_t cap)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	struct passwd *pw;
	size_t n = 0;
	int len = -1;

	dirs[n++] = SK_PROVIDERS_SYSTEM_DIR;
	/* XDG Base Directory: a relative XDG_CONFIG_HOME is ignored. */
	if (xdg != NULL && xdg[0] == '/')
		len = snprintf(buf, cap, "%s/smtpkit/providers.d", xdg);
	else {
		if (home == NULL || home[0] == '\0')
			home = (pw = getpwuid(getuid())) != NULL ?
			    pw->pw_dir : NULL;
		if (home != NULL && home[0] != '\0')
			len = snprintf(buf, cap, "%s/.config/smtpkit/"
			    "providers.d", home);
	}
	if (buf != NULL && len > 0 && (size_t)len < cap)
		dirs[n++] = buf;
	dirs[n] = NULL;
}

size_t
sk_providers_count(const struct sk_providers *db)
{
	return db != NULL ? db->np : 0;
}

const struct sk_provider *
sk_providers_at(const struct sk_providers *db, size_t i)
{
	return db != NULL && i < db->np ? db->p[i] : NULL;
}

size_t
sk_providers_rule_count(const struct sk_providers *db)
{
	return db != NULL ? db->nr : 0;
}

const struct sk_reply_rule *
sk_providers_rule_at(const struct sk_providers *db, size_t i)
{
	return db != NULL && i < db->nr ? db->r[i] : NULL;
}

bool
sk_providers_verdict_known(const char *code)
{
	size_t i;

	if (code == NULL)
		return false;
	for (i = 0; i < sizeof(verdict_codes) / sizeof(verdict_codes[0]); i++)
		if (strcmp(verdict_codes[i], code) == 0)
			return true;
	return false;
}

/* ---- lookups ---- */

static bool
prov_is(const struct sk_provider *p, const char *id, size_t len)
{
	size_t i;

	if (strlen(p->id) == len && prov_caseeq_n(p->id, id, len))
		return true;
	for (i = 0; i < p->naliases; i++)
		if (strlen(p->aliases[i]) == len &&
		    prov_caseeq_n(p->aliases[i], id, len))
			return true;
	return false;
}

const struct sk_provider *
sk_providers_find(const struct sk_providers *db, const char *id,
    const struct sk_provider_region **region)
{
	const struct sk_provider *p = NULL;
	const struct sk_provider_region *r = NULL;
	const char *colon;
	size_t len, i;

	if (region != NULL)
		*region = NULL;
	if (db == NULL || id == NULL)
		return NULL;
	colon = strchr(id, ':');
	len = colon != NULL ? (size_t)(colon - id) : strlen(id);
	if (len == 0)
		return NULL;
	/* Ids before aliases: a user's [provider hotmail] beats an alias. */
	for (i = 0; i < db->np && p == NULL; i++)
		if (strlen(db->p[i]->id) == len &&
		    prov_caseeq_n(db->p[i]->id, id, len))
			p = db->p[i];
	for (i = 0; i < db->np && p == NULL; i++)
		if (prov_is(db->p[i], id, len))
			p = db->p[i];
	if (p == NULL)
		return NULL;
	if (colon != NULL) {
		for (i = 0; i < p->nregions && r == NULL; i++)
			if (prov_casecmp(p->regions[i].name, colon + 1) == 0)
				r = &p->regions[i];
		if (r == NULL)
			return NULL;
	}
	if (region != NULL)
		*region = r;
	return p;
}

/* "me@QQ.com." → "QQ.com" (len set): the part to compare. */
static const char *
prov_domain_of(const char *s, size_t *len)
{
	const char *at;
	size_t n;

	if ((at = strrchr(s, '@')) != NULL)
		s = at + 1;
	n = strlen(s);
	/* "<me@qq.com>" as pasted from a header */
	if (n > 0 && s[n - 1] == '>')
		n--;
	if (n > 0 && s[n - 1] == '.')
		n--;
	*len = n;
	return s;
}

static bool
prov_in_list(char *const *v, size_t n, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(v[i]) == len && prov_caseeq_n(v[i], s, len))
			return true;
	return false;
}

const struct sk_provider *
sk_providers_by_domain(const struct sk_providers *db,
    const char *addr_or_domain)
{
	const struct sk_provider *p;
	const char *d;
	size_t len, i, j;

	if (db == NULL || addr_or_domain == NULL)
		return NULL;
	d = prov_domain_of(addr_or_domain, &len);
	if (len == 0)
		return NULL;
	/* Later files come later: search backwards so that they win. */
	for (i = db->np; i-- > 0;) {
		p = db->p[i];
		if (prov_in_list(p->domains, p->ndomains, d, len))
			return p;
		for (j = 0; j < p->nregions; j++)
			if (prov_in_list(p->regions[j].domains,
			    p->regions[j].ndomains, d, len))
				return p;
	}
	return NULL;
}

const struct sk_provider_region *
sk_provider_region_by_domain(const struct sk_provider *p,
    const char *addr_or_domain)
{
	const char *d;
	size_t len, j;

	if (p == NULL || addr_or_domain == NULL)
		return NULL;
	d = prov_domain_of(addr_or_domain, &len);
	for (j = 0; j < p->nregions; j++)
		if (prov_in_list(p->regions[j].domains, p->regions[j].ndomains,
		    d, len))
			return &p->regions[j];
	return NULL;
}

/*
 * The length of the longest suffix in v that host (hl octets) equals or
 * ends with after a dot; 0 when none does.
 */
static size_t
prov_suffix(char *const *v, size_t n, const char *host, size_t hl)
{
	size_t i, sl, best = 0;

	for (i = 0; i < n; i++) {
		sl = strlen(v[i]);
		if (sl == 0 || sl > hl || sl <= best)
			continue;
		if (sl < hl && host[hl - sl - 1] != '.')
			continue;
		if (prov_caseeq_n(host + hl - sl, v[i], sl))
			best = sl;
	}
	return best;
}

static const char *
prov_mx_name(const char *mx, size_t *len)
{
	size_t n = strlen(mx);

	if (n > 0 && mx[n - 1] == '.')
		n--;
	*len = n;
	return mx;
}

const struct sk_provider *
sk_providers_by_mx(const struct sk_providers *db, const char *mx_host)
{
	const struct sk_provider *p, *best = NULL;
	size_t hl, i, j, l, bestl = 0;
	const char *h;

	if (db == NULL || mx_host == NULL)
		return NULL;
	h = prov_mx_name(mx_host, &hl);
	if (hl == 0)
		return NULL;
	/* The longest suffix wins; among equals the later file. */
	for (i = 0; i < db->np; i++) {
		p = db->p[i];
		l = prov_suffix(p->mx, p->nmx, h, hl);
		for (j = 0; j < p->nregions; j++) {
			size_t rl = prov_suffix(p->regions[j].mx,
			    p->regions[j].nmx, h, hl);
			if (rl > l)
				l = rl;
		}
		if (l > 0 && l >= bestl) {
			best = p;
			bestl = l;
		}
	}
	return best;
}

const struct sk_provider_region *
sk_provider_region_by_mx(const struct sk_provider *p, const char *mx_host)
{
	const struct sk_provider_region *best = NULL;
	size_t hl, j, l, bestl = 0;
	const char *h;

	if (p == NULL || mx_host == NULL)
		return NULL;
	h = prov_mx_name(mx_host, &hl);
	for (j = 0; j < p->nregions; j++) {
		l = prov_suffix(p->regions[j].mx, p->regions[j].nmx, h, hl);
		if (l > bestl) {
			best = &p->regions[j];
			bestl = l;
		}
	}
	return best;
}

/* ---- known replies ---- */

bool
sk_reply_rule_applies(const struct sk_reply_rule *r,
    const struct sk_provider *p)
{
	const char *s, *w;
	size_t len;

	if (r == NULL || p == NULL || r->provider == NULL)
		return false;
	s = r->provider;
	while ((w = prov_word(&s, &len)) != NULL)
		if (prov_is(p, w, len))
			return true;
	return false;
}

static bool
prov_enh_char(int c)
{
	return (c >= '0' && c <= '9') || c == '.';
}

/* Whether the enhanced code enh stands in text as a whole token. */
static bool
prov_has_enhanced(const char *text, const char *enh)
{
	const char *s = text;
	size_t n = strlen(enh);

	while ((s = strstr(s, enh)) != NULL) {
		if ((s == text || !prov_enh_char((unsigned char)s[-1])) &&
		    !prov_enh_char((unsigned char)s[n]))
			return true;
		s++;
	}
	return false;
}

static bool
prov_rule_matches(const struct sk_reply_rule *r, int code,
    const char *enhanced, const char *text)
{
	size_t i;

	if (r->code != 0 && code != 0 && r->code != code)
		return false;
	if (r->enhanced != NULL) {
		if (enhanced != NULL && enhanced[0] != '\0') {
			if (strcmp(r->enhanced, enhanced) != 0)
				return false;
		} else if (!prov_has_enhanced(text, r->enhanced))
			return false;
	}
	for (i = 0; i < r->nmatch; i++)
		if (prov_casestr(text, r->match[i]) == NULL)
			return false;
	return true;
}

const struct sk_reply_rule *
sk_providers_match_reply(const struct sk_providers *db,
    const struct sk_provider *prefer, int code, const char *enhanced,
    const char *text)
{
	const struct sk_reply_rule *r, *best = NULL;
	size_t i, j, spec, mlen, bspec = 0, bmlen = 0;
	bool tier, btier = false;

	if (db == NULL)
		return NULL;
	if (text == NULL)
		text = "";
	for (i = 0; i < db->nr; i++) {
		r = db->r[i];
		if (!prov_rule_matches(r, code, enhanced, text))
			continue;
		tier = sk_reply_rule_applies(r, prefer);
		spec = 2 * r->nmatch + (r->enhanced != NULL ? 2 : 0) +
		    (r->code != 0 ? 1 : 0);
		for (mlen = 0, j = 0; j < r->nmatch; j++)
			mlen += strlen(r->match[j]);
		/* ">=": among equals the rule loaded later wins. */
		if (best == NULL || tier > btier || (tier == btier &&
		    (spec > bspec || (spec == bspec && mlen >= bmlen)))) {
			best = r;
			btier = tier;
			bspec = spec;
			bmlen = mlen;
		}
	}
	return best;
}
