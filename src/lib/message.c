/*
 * smtpkit: message input and simple composition.
 *
 * Three jobs, all without I/O except sk_scan_fd:
 *  - checking what a person typed (addresses, header text) and saying
 *    precisely what is wrong with it;
 *  - measuring a ready message as it streams by, so that SIZE can be
 *    declared (RFC 1870) and an unsendable message refused before the
 *    server is even contacted;
 *  - composing a plain UTF-8 text message that any server accepts: 7bit
 *    when possible, quoted-printable otherwise, never needing 8BITMIME.
 */
#include <sys/random.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "smtpkit/base64.h"
#include "smtpkit/error.h"
#include "smtpkit/message.h"

/* RFC 5321 §4.5.3.1.1 and §4.5.3.1.3 (a 256-octet path less "<" ">"). */
#define ADDR_LOCAL_MAX	64
#define ADDR_MAX	254
#define ADDR_LABEL_MAX	63		/* RFC 1035 §2.3.4 */

/* RFC 5322 §2.1.1: lines SHOULD stay within 78 octets. */
#define FOLD_AT		78

/* RFC 2047 §2: an encoded word is at most 75 octets, its line 76. */
#define EW_PREFIX	"=?UTF-8?B?"
#define EW_SUFFIX	"?="
#define EW_MAX		75
#define EW_LINE		76

/* RFC 2045 §6.7 rule 5: encoded lines are at most 76 characters. */
#define QP_LINE		76

#define SCAN_BUFSZ	((size_t)64 * 1024)

/* How an address is shown in an error: short, one line, no controls. */
#define SHOW_MAX	200

/*
 * UTF-8
 */

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629 §4: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 if there is none.
 */
static size_t
utf8_seq(const unsigned char *p, size_t left, uint32_t *cp)
{
	uint32_t c;
	size_t n, i;

	if (left == 0)
		return 0;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] < 0xc2)	/* a continuation, or an overlong lead */
		return 0;
	if (p[0] < 0xe0) {
		n = 2;
		c = p[0] & 0x1f;
	} else if (p[0] < 0xf0) {
		n = 3;
		c = p[0] & 0x0f;
	} else if (p[0] < 0xf5) {
		n = 4;
		c = p[0] & 0x07;
	} else
		return 0;
	if (left < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

enum text_fault {
	TEXT_OK,
	TEXT_LINEBREAK,
	TEXT_CONTROL,
	TEXT_UTF8
};

/*
 * The faults that text bound for a header or an envelope can have, in the
 * order they matter: a line break first (it is an injection, whatever else
 * is wrong), then controls (C0 but TAB, DEL, and C1, which are controls
 * even when well-formed UTF-8), then malformed UTF-8.  *at is the offset of
 * the first fault, *octet its value (the code point for C1).
 */
static enum text_fault
text_fault(const char *s, size_t len, size_t *at, uint32_t *octet,
    bool *nonascii)
{
	const unsigned char *p = (const unsigned char *)s;
	enum text_fault f = TEXT_OK;
	size_t i, n, fat = 0;
	uint32_t cp, fval = 0;

	*nonascii = false;
	for (i = 0; i < len; i++)
		if (p[i] == '\r' || p[i] == '\n') {
			*at = i;
			*octet = p[i];
			return TEXT_LINEBREAK;
		}
	for (i = 0; i < len; i += n) {
		if ((n = utf8_seq(p + i, len - i, &cp)) == 0) {
			if (f == TEXT_OK) {
				f = TEXT_UTF8;
				fat = i;
				fval = p[i];
			}
			n = 1;
			continue;
		}
		if (cp >= 0x80)
			*nonascii = true;
		if ((cp < 0x20 && cp != '\t') || (cp >= 0x7f && cp < 0xa0)) {
			*at = i;
			*octet = cp;
			return TEXT_CONTROL;
		}
	}
	*at = fat;
	*octet = fval;
	return f;
}

/*
 * Errors
 */

/* s as a C-like string for a one-line message: controls escaped, cut. */
static void
show(char *out, size_t cap, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, o = 0;
	uint32_t cp;
	size_t n;
	int w;

	for (i = 0; i < len && o + 8 < cap; i += n) {
		if (o >= SHOW_MAX) {
			(void)memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		n = utf8_seq(p + i, len - i, &cp);
		if (n > 1 && cp >= 0xa0) {
			(void)memcpy(out + o, p + i, n);
			o += n;
			continue;
		}
		n = 1;
		if (p[i] == '"' || p[i] == '\\') {
			out[o++] = '\\';
			out[o++] = (char)p[i];
		} else if (p[i] == '\r' || p[i] == '\n' || p[i] == '\t') {
			out[o++] = '\\';
			out[o++] = (char)(p[i] == '\r' ? 'r' :
			    p[i] == '\n' ? 'n' : 't');
		} else if (p[i] < 0x20 || p[i] >= 0x7f) {
			w = snprintf(out + o, cap - o, "\\x%02x", p[i]);
			if (w > 0)
				o += (size_t)w;
		} else
			out[o++] = (char)p[i];
	}
	out[o] = '\0';
}

/* "--to: "bob@@example.com" is not a valid address (two '@')". */
static int
addr_fail(struct sk_error *err, const char *what, const char *addr,
    const char *why)
{
	char shown[SHOW_MAX + 16];

	if (err == NULL)
		return -1;
	show(shown, sizeof(shown), addr, strlen(addr));
	if (what != NULL && *what != '\0')
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "%s: \"%s\" is not a valid address (%s)", what, shown, why);
	return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
	    "\"%s\" is not a valid address (%s)", shown, why);
}

static int
sys_fail(struct sk_error *err, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
sys_fail(struct sk_error *err, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)sk_error_setv(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, fmt, ap);
	va_end(ap);
	if (err != NULL)
		err->sys_errno = e;
	return -1;
}

/*
 * Addresses (RFC 5321 §4.1.2, extended to UTF-8 by RFC 6531 §3.3)
 */

/* RFC 5322 §3.2.3 atext, ASCII part. */
static int
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int
is_letdig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* Why c cannot stand where it is, for characters outside a quoted part. */
static void
why_char(char *why, size_t cap, unsigned char c, const char *where)
{
	if (c == ' ' || c == '\t')
		(void)snprintf(why, cap, "it contains a %s; only a quoted "
		    "local part may (\"john doe\"@example.com)",
		    c == ' ' ? "space" : "tab");
	else if (c == '(' || c == ')')
		(void)snprintf(why, cap, "it contains '%c': comments are not "
		    "allowed in an envelope address", c);
	else if (c == ',' || c == ';')
		(void)snprintf(why, cap, "it contains '%c': give one address "
		    "at a time", c);
	else
		(void)snprintf(why, cap, "'%c' is not allowed in %s", c,
		    where);
}

/* Dot-string: Atom *("." Atom).  Sets *end at the octet that stopped it. */
static int
local_dot(const unsigned char *s, size_t len, size_t *end, char *why,
    size_t cap)
{
	size_t i = 0, n;
	uint32_t cp;

	while (i < len && s[i] != '@') {
		if (s[i] == '.') {
			if (i == 0) {
				(void)snprintf(why, cap,
				    "the local part starts with a dot");
				return -1;
			}
			if (s[i - 1] == '.') {
				(void)snprintf(why, cap,
				    "the local part has two dots in a row");
				return -1;
			}
			i++;
		} else if (s[i] >= 0x80) {
			n = utf8_seq(s + i, len - i, &cp);
			i += n > 0 ? n : 1;	/* validated before */
		} else if (is_atext(s[i]))
			i++;
		else {
			if (s[i] == '"')
				(void)snprintf(why, cap, "a '\"' inside the "
				    "local part; quote the whole local part "
				    "instead");
			else
				why_char(why, cap, s[i],
				    "an unquoted local part");
			return -1;
		}
	}
	if (i == len) {
		(void)snprintf(why, cap, "there is no '@'");
		return -1;
	}
	if (i == 0) {
		(void)snprintf(why, cap, "nothing before the '@'");
		return -1;
	}
	if (s[i - 1] == '.') {
		(void)snprintf(why, cap, "the local part ends with a dot");
		return -1;
	}
	*end = i;
	return 0;
}

/*
 * Quoted-string: DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE, where
 * qtextSMTP is printable ASCII (space included) but '"' and '\', plus
 * UTF-8 (RFC 6531), and quoted-pairSMTP is '\' and printable ASCII.
 */
static int
local_quoted(const unsigned char *s, size_t len, size_t *end, char *why,
    size_t cap)
{
	size_t i = 1, n;
	uint32_t cp;

	while (i < len && s[i] != '"') {
		if (s[i] == '\\') {
			if (i + 1 >= len || s[i + 1] < 0x20 ||
			    s[i + 1] > 0x7e) {
				(void)snprintf(why, cap, "a '\\' in the quoted "
				    "local part escapes nothing printable");
				return -1;
			}
			i += 2;
		} else if (s[i] == '\t') {
			(void)snprintf(why, cap, "it contains a tab, which "
			    "even a quoted local part may not");
			return -1;
		} else if (s[i] >= 0x80) {
			n = utf8_seq(s + i, len - i, &cp);
			i += n > 0 ? n : 1;
		} else
			i++;
	}
	if (i >= len) {
		(void)snprintf(why, cap,
		    "the quoted local part has no closing '\"'");
		return -1;
	}
	if (i == 1) {
		(void)snprintf(why, cap, "the quoted local part is empty");
		return -1;
	}
	i++;
	if (i >= len) {
		(void)snprintf(why, cap, "there is no '@'");
		return -1;
	}
	if (s[i] != '@') {
		(void)snprintf(why, cap, "the quoted local part must be "
		    "followed by '@'");
		return -1;
	}
	*end = i;
	return 0;
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3). */
static int
domain_literal(const char *d, size_t len, char *why, size_t cap)
{
	char ip[ADDR_MAX + 1];
	unsigned char bin[16];
	const char *close;

	if (d[len - 1] != ']') {
		close = memchr(d, ']', len);
		(void)snprintf(why, cap, close == NULL ? "the address literal "
		    "has no closing ']'" : "there is text after the address "
		    "literal's ']'");
		return -1;
	}
	if (len - 2 >= sizeof(ip) || len == 2) {
		(void)snprintf(why, cap, "the address literal is empty");
		return -1;
	}
	if (len - 2 > 5 && strncasecmp(d + 1, "IPv6:", 5) == 0) {
		(void)memcpy(ip, d + 6, len - 7);
		ip[len - 7] = '\0';
		if (inet_pton(AF_INET6, ip, bin) == 1)
			return 0;
		(void)snprintf(why, cap, "\"%.64s\" is not an IPv6 address",
		    ip);
		return -1;
	}
	(void)memcpy(ip, d + 1, len - 2);
	ip[len - 2] = '\0';
	if (inet_pton(AF_INET, ip, bin) == 1)
		return 0;
	if (inet_pton(AF_INET6, ip, bin) == 1)
		(void)snprintf(why, cap, "write an IPv6 literal as "
		    "[IPv6:%.64s]", ip);
	else if (strchr(ip, ':') != NULL)
		(void)snprintf(why, cap, "only IPv4 and IPv6 address literals "
		    "are supported");
	else
		(void)snprintf(why, cap, "\"%.64s\" is not an IPv4 address",
		    ip);
	return -1;
}

/*
 * Domain: dot-separated labels of letters, digits and inner hyphens
 * (RFC 5321 §4.1.2 sub-domain), or U-labels in UTF-8 (RFC 6531 §3.3), or an
 * address literal.
 */
static int
addr_domain(const char *d, size_t len, char *why, size_t cap)
{
	const unsigned char *p = (const unsigned char *)d;
	size_t i, start, n;
	bool ascii;
	uint32_t cp;
	unsigned char bin[4];
	char ip[ADDR_MAX + 1];

	if (len == 0) {
		(void)snprintf(why, cap, "nothing after the '@'");
		return -1;
	}
	if (memchr(d, '@', len) != NULL) {
		(void)snprintf(why, cap, "two '@'");
		return -1;
	}
	if (d[0] == '[')
		return domain_literal(d, len, why, cap);
	if (d[0] == '.') {
		(void)snprintf(why, cap, "the domain starts with a dot");
		return -1;
	}
	for (start = 0; start < len; start = i + 1) {
		ascii = true;
		for (i = start; i < len && p[i] != '.'; i += n) {
			n = 1;
			if (p[i] >= 0x80) {
				ascii = false;
				n = utf8_seq(p + i, len - i, &cp);
				if (n == 0)
					n = 1;
			} else if (!is_letdig(p[i]) && p[i] != '-') {
				why_char(why, cap, p[i], "a domain name");
				return -1;
			}
		}
		if (i == start) {
			(void)snprintf(why, cap, "the domain has two dots in "
			    "a row");
			return -1;
		}
		if (p[start] == '-' || p[i - 1] == '-') {
			(void)snprintf(why, cap, "the domain label \"%.*s\" %s "
			    "with a hyphen", (int)(i - start > 64 ? 64 :
			    i - start), d + start, p[start] == '-' ? "starts" :
			    "ends");
			return -1;
		}
		/* A U-label's length is that of its A-label, unknown here. */
		if (ascii && i - start > ADDR_LABEL_MAX) {
			(void)snprintf(why, cap, "a domain label is %zu octets "
			    "long; RFC 1035 §2.3.4 allows 63", i - start);
			return -1;
		}
		if (i == len - 1) {
			(void)snprintf(why, cap, "the domain ends with a dot");
			return -1;
		}
	}
	/* "bob@192.0.2.1" is a bare IP address, not a domain name. */
	(void)memcpy(ip, d, len < sizeof(ip) ? len : sizeof(ip) - 1);
	ip[len < sizeof(ip) ? len : sizeof(ip) - 1] = '\0';
	if (inet_pton(AF_INET, ip, bin) == 1) {
		(void)snprintf(why, cap, "write an IP address in brackets: "
		    "[%s]", ip);
		return -1;
	}
	return 0;
}

int
sk_addr_check(const char *what, const char *addr, bool *utf8,
    struct sk_error *err)
{
	const unsigned char *s = (const unsigned char *)addr;
	char why[192];
	size_t len, at, end;
	uint32_t octet;
	bool nonascii;

	if (utf8 != NULL)
		*utf8 = false;
	if (addr == NULL || *addr == '\0')
		return addr_fail(err, what, "", "it is empty");
	len = strlen(addr);
	switch (text_fault(addr, len, &at, &octet, &nonascii)) {
	case TEXT_LINEBREAK:
		return addr_fail(err, what, addr, "it contains a line break");
	case TEXT_CONTROL:
		(void)snprintf(why, sizeof(why), "it contains the control "
		    "character U+%04" PRIX32, octet);
		return addr_fail(err, what, addr, why);
	case TEXT_UTF8:
		(void)snprintf(why, sizeof(why), "it is not valid UTF-8 at "
		    "octet %zu", at + 1);
		return addr_fail(err, what, addr, why);
	case TEXT_OK:
		break;
	}
	if (strchr(addr, '<') != NULL && addr[len - 1] == '>')
		return addr_fail(err, what, addr, addr[0] == '<' ?
		    "write it without the angle brackets" :
		    "give the bare address, without a name or angle brackets");
	if (len > ADDR_MAX) {
		(void)snprintf(why, sizeof(why), "it is %zu octets long; "
		    "RFC 5321 §4.5.3.1.3 allows %d", len, ADDR_MAX);
		return addr_fail(err, what, addr, why);
	}

	if (s[0] == '"') {
		if (local_quoted(s, len, &end, why, sizeof(why)) == -1)
			return addr_fail(err, what, addr, why);
	} else if (local_dot(s, len, &end, why, sizeof(why)) == -1)
		return addr_fail(err, what, addr, why);
	if (end > ADDR_LOCAL_MAX) {
		(void)snprintf(why, sizeof(why), "the local part is %zu "
		    "octets long; RFC 5321 §4.5.3.1.1 allows %d", end,
		    ADDR_LOCAL_MAX);
		return addr_fail(err, what, addr, why);
	}
	if (addr_domain(addr + end + 1, len - end - 1, why, sizeof(why)) == -1)
		return addr_fail(err, what, addr, why);

	if (utf8 != NULL)
		*utf8 = nonascii;
	return 0;
}

int
sk_header_check(const char *what, const char *value, struct sk_error *err)
{
	size_t at;
	uint32_t octet;
	bool nonascii;

	if (what == NULL || *what == '\0')
		what = "the header value";
	if (value == NULL)
		return 0;
	switch (text_fault(value, strlen(value), &at, &octet, &nonascii)) {
	case TEXT_LINEBREAK:
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "%s contains a line break: that would let it inject "
		    "headers", what);
	case TEXT_CONTROL:
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "%s contains the control character U+%04" PRIX32 " at "
		    "octet %zu; only a tab is allowed", what, octet, at + 1);
	case TEXT_UTF8:
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "%s is not valid UTF-8 (octet %zu, 0x%02" PRIX32 ")", what,
		    at + 1, octet);
	case TEXT_OK:
		break;
	}
	return 0;
}

/*
 * Scanner
 *
 * A line ends at CRLF, at a bare LF or at a bare CR: the DATA encoder
 * (dot.c) turns each of them into one CRLF, so each adds 2 to wire_size.
 * A CR ends its line at once; an LF right after it, possibly in the next
 * chunk, is then its second half and adds nothing.
 */

void
sk_scan_init(struct sk_scan *s)
{
	(void)memset(s, 0, sizeof(*s));
	s->bol = 1;
}

static void
scan_eol(struct sk_scan *s)
{
	s->lines++;
	s->wire_size += 2;
	if (s->cur_len > SK_LINE_MAX && s->long_line == 0) {
		s->long_line = s->lines;
		s->long_line_len = s->cur_len;
	}
	s->cur_len = 0;
	s->bol = 1;
}

/*
 * OR the octets of p into *any (its top bits say 8-bit) and say whether
 * one is NUL; eight at a time.
 */
static bool
scan_run(const unsigned char *p, size_t n, uint64_t *any)
{
	const uint64_t ones = UINT64_C(0x0101010101010101);
	const uint64_t highs = UINT64_C(0x8080808080808080);
	uint64_t acc = 0, zero = 0, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		acc |= w;
		zero |= (w - ones) & ~w & highs;
	}
	for (; i < n; i++) {
		acc |= p[i];
		zero |= p[i] == 0;
	}
	*any |= acc;
	return zero != 0;
}

void
sk_scan_feed(struct sk_scan *s, const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;
	const unsigned char *end = p + len, *q, *lim;
	uint64_t any = 0;
	unsigned char c;

	s->size += len;
	while (p < end) {
		c = *p;
		if (s->cr) {
			s->cr = 0;
			if (c == '\n') {
				p++;
				continue;
			}
		}
		if (c == '\r' || c == '\n') {
			scan_eol(s);
			s->cr = c == '\r';
			p++;
			continue;
		}
		/* RFC 5321 §4.5.2: the line will go out with one more dot. */
		if (s->bol && c == '.')
			s->wire_size++;
		s->bol = 0;
		/*
		 * The rest of the line in one go: this is where a large
		 * message spends its time, so find the line end with memchr
		 * and gather the 8-bit and NUL facts a word at a time.
		 */
		q = memchr(p, '\n', (size_t)(end - p));
		if (q == NULL)
			q = end;
		if ((lim = memchr(p, '\r', (size_t)(q - p))) != NULL)
			q = lim;
		if (scan_run(p, (size_t)(q - p), &any) && !s->has_nul) {
			s->has_nul = true;
			s->nul_line = s->lines + 1;
		}
		s->cur_len += (uint64_t)(q - p);
		s->wire_size += (uint64_t)(q - p);
		p = q;
	}
	if (any & UINT64_C(0x8080808080808080))
		s->has_8bit = true;
}

void
sk_scan_finish(struct sk_scan *s)
{
	/* An unended last line gets a CRLF before the final dot. */
	if (!s->bol)
		scan_eol(s);
	s->cr = 0;
}

int
sk_scan_fd(int fd, const char *name, struct sk_scan *s,
    struct sk_error *err)
{
	char *buf;
	ssize_t n;
	int e;

	if (name == NULL)
		name = "the message";
	sk_scan_init(s);
	if ((buf = malloc(SCAN_BUFSZ)) == NULL)
		return sys_fail(err, errno, "cannot read %s: %s", name,
		    strerror(errno));
	for (;;) {
		n = read(fd, buf, SCAN_BUFSZ);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			e = errno;
			free(buf);
			return sys_fail(err, e, "cannot read %s: %s", name,
			    strerror(e));
		}
		if (n == 0)
			break;
		sk_scan_feed(s, buf, (size_t)n);
	}
	free(buf);
	sk_scan_finish(s);
	return 0;
}

int
sk_scan_check(const struct sk_scan *s, const char *name,
    struct sk_error *err)
{
	if (name == NULL)
		name = "the message";
	if (s->has_nul)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_DATA,
		    "%s contains a NUL octet at line %" PRIu64 "; RFC 5322 "
		    "§3.5 does not allow NUL in a message. Is it a binary "
		    "file? Send it as an encoded attachment instead.", name,
		    s->nul_line);
	if (s->long_line != 0)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_DATA,
		    "%s: line %" PRIu64 " is %" PRIu64 " octets long; "
		    "RFC 5322 §2.1.1 allows %d. Wrap it or encode the body "
		    "(quoted-printable or base64).", name, s->long_line,
		    s->long_line_len, SK_LINE_MAX);
	return 0;
}

/*
 * RFC 2047 encoded words and the Date
 */

/* Octets of the UTF-8 sequence led by c, so that none is ever split. */
static size_t
utf8_len_at(const unsigned char *p, size_t left)
{
	uint32_t cp;
	size_t n;

	n = utf8_seq(p, left, &cp);
	return n > 0 ? n : 1;	/* a stray octet goes alone */
}

/*
 * Text that can stand in a header as it is: printable ASCII and tabs, and
 * no "=?" that a reader could take for an encoded word and decode (RFC 2047
 * §5: "it may be necessary to encode ordinary text that looks like an
 * 'encoded-word'").
 */
static int
header_plain(const char *in, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if ((in[i] < 0x20 || in[i] > 0x7e) && in[i] != '\t')
			return 0;
		if (in[i] == '=' && i + 1 < len && in[i + 1] == '?')
			return 0;
	}
	return 1;
}

static size_t
rfc2047_words(const char *in, size_t len, size_t lead, char *out,
    size_t cap)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0, i = 0, room, max, n, k, w;
	int first = 1, fold = 0;

	while (i < len) {
		/* The first word shares its line with the header name. */
		room = first ? (lead < EW_LINE ? EW_LINE - lead : 0) :
		    EW_LINE - 1;
		if (room > EW_MAX)
			room = EW_MAX;
		max = room >= sizeof(EW_PREFIX EW_SUFFIX) - 1 + 4 ?
		    (room - (sizeof(EW_PREFIX EW_SUFFIX) - 1)) / 4 * 3 : 0;
		for (n = 0; i + n < len; n += k) {
			k = utf8_len_at(p + i + n, len - i - n);
			if (n + k > max)
				break;
		}
		if (fold) {
			if (cap - o < 4)
				goto small;
			(void)memcpy(out + o, "\r\n ", 3);
			o += 3;
		}
		first = 0;
		fold = 1;
		if (n == 0)	/* no room at all beside the header name */
			continue;
		if (cap - o < sizeof(EW_PREFIX))
			goto small;
		(void)memcpy(out + o, EW_PREFIX, sizeof(EW_PREFIX) - 1);
		o += sizeof(EW_PREFIX) - 1;
		w = sk_base64_encode(p + i, n, out + o, cap - o);
		if (w == (size_t)-1)
			goto small;
		o += w;
		if (cap - o < sizeof(EW_SUFFIX))
			goto small;
		(void)memcpy(out + o, EW_SUFFIX, sizeof(EW_SUFFIX) - 1);
		o += sizeof(EW_SUFFIX) - 1;
		i += n;
	}
	if (cap - o < 1)
		goto small;
	out[o] = '\0';
	return o;
small:
	if (cap > 0)
		out[0] = '\0';
	return (size_t)-1;
}

size_t
sk_rfc2047_encode(const char *in, size_t lead, char *out, size_t cap)
{
	size_t len = strlen(in);

	if (header_plain(in, len)) {
		if (len >= cap) {
			if (cap > 0)
				out[0] = '\0';
			return (size_t)-1;
		}
		(void)memcpy(out, in, len + 1);
		return len;
	}
	return rfc2047_words(in, len, lead, out, cap);
}

size_t
sk_rfc5322_date(time_t t, char *out, size_t cap)
{
	/* Not strftime's %a and %b: those follow the locale. */
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm tm;
	long off;
	char sign = '+';
	int n;

	if (cap > 0)
		out[0] = '\0';
	if (localtime_r(&t, &tm) == NULL)
		return (size_t)-1;
	off = tm.tm_gmtoff;
	if (off < 0) {
		sign = '-';
		off = -off;
	}
	n = snprintf(out, cap, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
	    off / 3600, off % 3600 / 60);
	if (n < 0 || (size_t)n >= cap) {
		if (cap > 0)
			out[0] = '\0';
		return (size_t)-1;
	}
	return (size_t)n;
}

/*
 * Composition
 */

struct obuf {
	char *p;
	size_t len, cap;
	int failed;
};

static void
ob_add(struct obuf *b, const void *s, size_t n)
{
	size_t want, ncap;
	char *np;

	if (b->failed || n == 0)
		return;
	if (n > b->cap - b->len) {
		want = b->len + n;
		if (want < b->len) {
			b->failed = 1;
			return;
		}
		ncap = b->cap > 0 ? b->cap : 1024;
		while (ncap < want)
			ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	(void)memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
ob_str(struct obuf *b, const char *s)
{
	ob_add(b, s, strlen(s));
}

/*
 * An address list header, folded between addresses so that lines stay
 * within 78 octets where an address allows; an address is at most 254
 * octets, so no line comes near 998.
 */
static void
ob_addrs(struct obuf *b, const char *name, const char *const *list,
    size_t n)
{
	size_t i, col, alen;
	int comma;

	ob_str(b, name);
	ob_str(b, ":");
	col = strlen(name) + 1;
	for (i = 0; i < n; i++) {
		alen = strlen(list[i]);
		comma = i + 1 < n;
		if (i > 0 && col + 1 + alen + comma > FOLD_AT) {
			ob_str(b, "\r\n ");
			col = 1;
		} else {
			ob_str(b, " ");
			col++;
		}
		ob_add(b, list[i], alen);
		col += alen;
		if (comma) {
			ob_str(b, ",");
			col++;
		}
	}
	ob_str(b, "\r\n");
}

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Fold plain unstructured text (RFC 5322 §2.2.3): a CRLF goes before a
 * space or tab that is followed by a word, so unfolding gives the text
 * back and no line is only white space.  Fails, leaving b alone, when some
 * word cannot fit in a 998-octet line.
 */
static int
ob_fold(struct obuf *b, const char *s, size_t col)
{
	struct obuf t = { NULL, 0, 0, 0 };
	size_t len = strlen(s), start = 0, brk = 0, i, width;

	for (i = 0; i < len; i++) {
		if (i > start && is_wsp(s[i]) && i + 1 < len &&
		    !is_wsp(s[i + 1]))
			brk = i;
		width = col + i + 1 - start;
		if (width > FOLD_AT && brk > start) {
			ob_add(&t, s + start, brk - start);
			ob_str(&t, "\r\n");
			start = brk;
			col = 0;
			width = i + 1 - start;
		}
		if (width > SK_LINE_MAX) {
			free(t.p);
			return -1;
		}
	}
	ob_add(&t, s + start, len - start);
	ob_add(b, t.p, t.len);
	if (t.failed)
		b->failed = 1;
	free(t.p);
	return 0;
}

static void
ob_subject(struct obuf *b, const char *subject)
{
	static const char name[] = "Subject: ";
	size_t len = strlen(subject), cap, n;
	char *words;

	if (len == 0) {
		ob_str(b, "Subject:\r\n");
		return;
	}
	ob_str(b, name);
	if (!header_plain(subject, len) ||
	    ob_fold(b, subject, sizeof(name) - 1) == -1) {
		/* A word carries at least 42 octets in at most 78 octets. */
		if (len > SIZE_MAX / 4 - 240) {
			b->failed = 1;
			return;
		}
		cap = (len / 42 + 3) * 80;
		if ((words = malloc(cap)) == NULL) {
			b->failed = 1;
			return;
		}
		n = rfc2047_words(subject, len, sizeof(name) - 1, words, cap);
		if (n == (size_t)-1)
			b->failed = 1;
		else
			ob_add(b, words, n);
		free(words);
	}
	ob_str(b, "\r\n");
}

/* One line of the body, without its line end, in quoted-printable. */
static void
ob_qp_line(struct obuf *b, const unsigned char *p, size_t n, int soft_end)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, col = 0, t, limit;
	char enc[3];
	int last;

	for (i = 0; i < n; i++) {
		last = i + 1 == n;
		/*
		 * RFC 2045 §6.7 rules 2 and 3: printable ASCII but '=' goes
		 * as it is, and so do spaces and tabs unless they end the
		 * line, where a transport may strip them.
		 */
		if ((p[i] >= 33 && p[i] <= 126 && p[i] != '=') ||
		    ((p[i] == ' ' || p[i] == '\t') && !last)) {
			enc[0] = (char)p[i];
			t = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[p[i] >> 4];
			enc[2] = hex[p[i] & 0x0f];
			t = 3;
		}
		/*
		 * Rule 5: at most 76 characters a line, the '=' of a soft
		 * line break included; so only the last octet of a line
		 * that ends in a hard break may use the 76th.
		 */
		limit = last && !soft_end ? QP_LINE : QP_LINE - 1;
		if (col + t > limit) {
			ob_str(b, "=\r\n");
			col = 0;
		}
		ob_add(b, enc, t);
		col += t;
	}
	ob_str(b, soft_end ? "=\r\n" : "\r\n");
}

/*
 * The body as CRLF lines, 7bit when every octet is ASCII (NUL excluded),
 * every CR belongs to a CRLF and no line is over 998 octets (RFC 2045
 * §2.7), otherwise quoted-printable.  A last line without a line end gets
 * CRLF in 7bit, and a soft line break in quoted-printable so that it
 * decodes to exactly the text.
 */
static void
ob_body(struct obuf *b, const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;
	const unsigned char *nl;
	size_t i, line = 0, n, next;
	int seven = 1, ended;

	for (i = 0; i < len && seven; i++) {
		if (p[i] == '\n') {
			line = 0;
			continue;
		}
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
			continue;
		if (p[i] == '\0' || p[i] >= 0x80 || p[i] == '\r' ||
		    ++line > SK_LINE_MAX)
			seven = 0;
	}
	ob_str(b, seven ? "Content-Transfer-Encoding: 7bit\r\n\r\n" :
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");

	for (i = 0; i < len; i = next) {
		nl = memchr(p + i, '\n', len - i);
		ended = nl != NULL;
		n = ended ? (size_t)(nl - (p + i)) : len - i;
		next = i + n + (ended ? 1 : 0);
		if (ended && n > 0 && p[i + n - 1] == '\r')
			n--;		/* CRLF: the CR is the line end's */
		if (seven) {
			ob_add(b, p + i, n);
			ob_str(b, "\r\n");
		} else
			ob_qp_line(b, p + i, n, !ended);
	}
}

static int
random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[32];
	size_t i, got = 0;
	ssize_t n;

	if (nbytes > sizeof(r))
		nbytes = sizeof(r);
	while (got < nbytes) {
		n = getrandom(r + got, nbytes - got, 0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	for (i = 0; i < nbytes; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 0x0f];
	}
	out[2 * nbytes] = '\0';
	return 0;
}

/* The first line, 1-based, at which text is not valid UTF-8; 0 if none. */
static size_t
utf8_bad_line(const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i, n, line = 1;
	uint32_t cp;

	for (i = 0; i < len; i += n) {
		if ((n = utf8_seq(p + i, len - i, &cp)) == 0)
			return line;
		if (p[i] == '\n')
			line++;
	}
	return 0;
}

char *
sk_message_compose(const struct sk_compose *m, size_t *len,
    struct sk_error *err)
{
	struct obuf b = { NULL, 0, 0, 0 };
	char id[2 * 16 + 1], date[64];
	const char *domain;
	size_t i, bad;

	if (len != NULL)
		*len = 0;
	if (m == NULL || m->from == NULL) {
		(void)sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "a message needs a From address");
		return NULL;
	}
	/* Checked again here: whatever got through would inject headers. */
	if (sk_addr_check("From", m->from, NULL, err) == -1)
		return NULL;
	for (i = 0; i < m->nto; i++)
		if (sk_addr_check("To", m->to[i], NULL, err) == -1)
			return NULL;
	for (i = 0; i < m->ncc; i++)
		if (sk_addr_check("Cc", m->cc[i], NULL, err) == -1)
			return NULL;
	if (m->subject != NULL &&
	    sk_header_check("the subject", m->subject, err) == -1)
		return NULL;
	if (m->text == NULL && m->text_len > 0) {
		(void)sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "the message text is missing");
		return NULL;
	}
	if (m->text != NULL && (bad = utf8_bad_line(m->text,
	    m->text_len)) != 0) {
		(void)sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_DATA,
		    "the message text is not valid UTF-8 (line %zu); convert "
		    "it first, e.g. with iconv -t UTF-8", bad);
		return NULL;
	}
	if (sk_rfc5322_date(m->now != 0 ? m->now : time(NULL), date,
	    sizeof(date)) == (size_t)-1) {
		(void)sys_fail(err, EOVERFLOW, "cannot compose the Date "
		    "header: the time is out of range");
		return NULL;
	}
	if (random_hex(id, 16) == -1) {
		(void)sys_fail(err, errno, "cannot make a Message-ID: "
		    "getrandom: %s", strerror(errno));
		return NULL;
	}

	ob_str(&b, "From: ");
	ob_str(&b, m->from);
	ob_str(&b, "\r\n");
	if (m->nto > 0)
		ob_addrs(&b, "To", m->to, m->nto);
	else if (m->ncc == 0)	/* RFC 5322 §A.1.3: all recipients hidden */
		ob_str(&b, "To: undisclosed-recipients:;\r\n");
	if (m->ncc > 0)
		ob_addrs(&b, "Cc", m->cc, m->ncc);
	if (m->subject != NULL)
		ob_subject(&b, m->subject);
	ob_str(&b, "Date: ");
	ob_str(&b, date);
	ob_str(&b, "\r\n");
	/*
	 * RFC 5322 §3.6.4: id-right may be a domain or a literal such as
	 * "[192.0.2.1]", so the From domain serves either way: it is the
	 * name the sender answers for.  The last '@' is the separator,
	 * whatever a quoted local part holds.
	 */
	domain = strrchr(m->from, '@') + 1;
	ob_str(&b, "Message-ID: <");
	ob_str(&b, id);
	ob_str(&b, "@");
	ob_str(&b, domain);
	ob_str(&b, ">\r\n");
	ob_str(&b, "MIME-Version: 1.0\r\n");
	ob_str(&b, "Content-Type: text/plain; charset=UTF-8\r\n");
	ob_body(&b, m->text != NULL ? m->text : "", m->text_len);
	ob_add(&b, "", 1);	/* a NUL after the message, for C callers */

	if (b.failed) {
		free(b.p);
		(void)sys_fail(err, ENOMEM, "cannot compose the message: %s",
		    strerror(ENOMEM));
		return NULL;
	}
	if (len != NULL)
		*len = b.len - 1;
	return b.p;
}

size_t
sk_message_id(const char *domain, char *out, size_t cap)
{
	char id[2 * 16 + 1];
	int n;

	if (cap > 0)
		out[0] = '\0';
	if (random_hex(id, 16) == -1)
		return (size_t)-1;
	n = snprintf(out, cap, "<%s@%s>", id, domain);
	if (n < 0 || (size_t)n >= cap) {
		if (cap > 0)
			out[0] = '\0';
		return (size_t)-1;
	}
	return (size_t)n;
}
