/*
 * tests/unit/test_message.c: address and header checks, the message
 * scanner, composition, RFC 2047 words and the Date.
 *
 * Composed messages are parsed back here with a decoder of our own
 * (quoted-printable, base64 words), so that a test passes only when what
 * goes out means what went in.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtpkit/error.h"
#include "smtpkit/message.h"

/*
 * Helpers
 */

#define assert_prefix(s, p) assert_int_equal(strncmp((s), (p), strlen(p)), 0)

static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A well-formed UTF-8 string (RFC 3629), as the tests understand it. */
static bool
utf8_valid(const unsigned char *p, size_t len)
{
	size_t i = 0, n, k;
	uint32_t c;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			n = 2, c = p[i] & 0x1f;
		else if (p[i] >= 0xe0 && p[i] <= 0xef)
			n = 3, c = p[i] & 0x0f;
		else if (p[i] >= 0xf0 && p[i] <= 0xf4)
			n = 4, c = p[i] & 0x07;
		else
			return false;
		if (i + n > len)
			return false;
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			c = c << 6 | (p[i + k] & 0x3f);
		}
		if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
		    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
			return false;
		i += n;
	}
	return true;
}

static int
b64val(char c)
{
	const char *a =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c != '\0' ? strchr(a, c) : NULL;

	return p != NULL ? (int)(p - a) : -1;
}

/* Strict base64 with padding; returns the decoded length. */
static size_t
b64dec(const char *in, size_t n, unsigned char *out)
{
	size_t i, o = 0;
	int v[4], k;

	assert_int_equal(n % 4, 0);
	for (i = 0; i < n; i += 4) {
		for (k = 0; k < 4; k++) {
			if (in[i + k] == '=') {
				assert_true(i + 4 == n && k >= 2);
				v[k] = 0;
			} else {
				v[k] = b64val(in[i + k]);
				assert_true(v[k] >= 0);
			}
		}
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (in[i + 2] != '=')
			out[o++] = (unsigned char)((v[1] & 0xf) << 4 |
			    v[2] >> 2);
		if (in[i + 3] != '=')
			out[o++] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
	}
	return o;
}

/*
 * Decode RFC 2047 B words joined by CRLF SP, as sk_rfc2047_encode makes
 * them, checking each word's size and that no word splits a UTF-8
 * sequence.  Returns a malloc'd NUL-terminated string.
 */
static char *
decode_words(const char *enc, size_t lead)
{
	static const char pre[] = "=?UTF-8?B?";
	size_t len = strlen(enc), i = 0, o = 0, wl, line;
	unsigned char *out = malloc(len + 1);
	const char *end;
	size_t n;
	bool first = true;

	assert_non_null(out);
	while (i < len) {
		if (!first || (enc[i] == '\r')) {
			/* Every word after the first is on its own line. */
			assert_memory_equal(enc + i, "\r\n ", 3);
			i += 3;
		}
		assert_memory_equal(enc + i, pre, sizeof(pre) - 1);
		end = strstr(enc + i + sizeof(pre) - 1, "?=");
		assert_non_null(end);
		wl = (size_t)(end + 2 - (enc + i));
		assert_true(wl <= 75);			/* RFC 2047 §2 */
		line = first && enc[0] != '\r' ? lead + wl : 1 + wl;
		assert_true(line <= 76);
		n = b64dec(enc + i + sizeof(pre) - 1,
		    (size_t)(end - (enc + i + sizeof(pre) - 1)), out + o);
		assert_true(n > 0);
		assert_true(utf8_valid(out + o, n));	/* nothing split */
		o += n;
		i += wl;
		first = false;
	}
	out[o] = '\0';
	return (char *)out;
}

static unsigned
hexval(char c)
{
	const char *x = "0123456789ABCDEF";
	const char *p = c != '\0' ? strchr(x, c) : NULL;

	/* RFC 2045 §6.7: an encoder writes uppercase hex digits. */
	if (p == NULL)
		fail_msg("'%c' is not an uppercase hex digit", c);
	return (unsigned)(p - x);
}

/*
 * Decode a quoted-printable body (RFC 2045 §6.7), checking it on the way:
 * CRLF lines of at most 76 characters, only printable ASCII, no white
 * space before a hard line end.  Hard line ends decode to CRLF.
 */
static char *
qp_decode(const char *in, size_t len, size_t *outlen)
{
	char *out = malloc(len + 1);
	size_t i = 0, o = 0, col = 0;
	unsigned h, l;

	assert_non_null(out);
	while (i < len) {
		if (in[i] == '\r') {
			assert_true(i + 1 < len && in[i + 1] == '\n');
			assert_true(o == 0 || col == 0 ||
			    (in[i - 1] != ' ' && in[i - 1] != '\t'));
			out[o++] = '\r';
			out[o++] = '\n';
			i += 2;
			col = 0;
			continue;
		}
		assert_true((in[i] >= 0x20 && in[i] <= 0x7e) || in[i] == '\t');
		if (in[i] == '=') {
			assert_true(i + 2 < len);
			if (in[i + 1] == '\r') {
				assert_int_equal(in[i + 2], '\n');
				assert_true(col + 1 <= 76);
				i += 3;
				col = 0;
				continue;
			}
			h = hexval(in[i + 1]);
			l = hexval(in[i + 2]);
			out[o++] = (char)(h << 4 | l);
			i += 3;
			col += 3;
		} else {
			out[o++] = in[i++];
			col++;
		}
		assert_true(col <= 76);
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* text with every LF that is not already after a CR made CRLF. */
static char *
crlf(const char *text, size_t len, size_t *outlen)
{
	char *out = malloc(2 * len + 1);
	size_t i, o = 0;

	assert_non_null(out);
	for (i = 0; i < len; i++) {
		if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = text[i];
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/*
 * Addresses
 */

struct addr_case {
	const char *addr;
	bool ok;
	bool utf8;
	const char *why;	/* a part of the error message */
};

static const struct addr_case addr_cases[] = {
	{ "bob@example.com", true, false, NULL },
	{ "first.last@mail.example.co.uk", true, false, NULL },
	{ "user+tag@example.com", true, false, NULL },
	{ "o'brien@example.ie", true, false, NULL },
	{ "!#$%&'*+-/=?^_`{|}~@example.com", true, false, NULL },
	{ "\"john doe\"@example.com", true, false, NULL },
	{ "\"a@b\"@example.com", true, false, NULL },
	{ "\"say \\\"hi\\\"\"@example.com", true, false, NULL },
	{ "\"j\xc3\xbcrgen m\"@example.de", true, true, NULL },
	{ "bob@[192.0.2.1]", true, false, NULL },
	{ "bob@[IPv6:2001:db8::1]", true, false, NULL },
	{ "bob@[ipv6:::1]", true, false, NULL },
	{ "j\xc3\xbcrgen@example.de", true, true, NULL },
	{ "bob@b\xc3\xbc" "cher.example", true, true, NULL },
	{ "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf"
	    "\xe5\x91\x8a", true, true, NULL },
	{ "bob@localhost", true, false, NULL },
	{ "x@a-b.example", true, false, NULL },
	{ "x@xn--bcher-kva.example", true, false, NULL },
	{ "1@2.example", true, false, NULL },

	{ "", false, false, "(it is empty)" },
	{ "bob", false, false, "(there is no '@')" },
	{ "bob@@example.com", false, false, "(two '@')" },
	{ "bob@example.com@example.org", false, false, "(two '@')" },
	{ "@example.com", false, false, "(nothing before the '@')" },
	{ "bob@", false, false, "(nothing after the '@')" },
	{ ".bob@example.com", false, false, "starts with a dot" },
	{ "bob.@example.com", false, false, "local part ends with a dot" },
	{ "bo..b@example.com", false, false, "two dots in a row" },
	{ "bob smith@example.com", false, false, "contains a space" },
	{ "bob@exa mple.com", false, false, "contains a space" },
	{ "bob@example.com\r\nRCPT TO:<eve@evil.example>", false, false,
	    "contains a line break" },
	{ "bob\n@example.com", false, false, "contains a line break" },
	{ "\"bob\r\n\"@example.com", false, false, "contains a line break" },
	{ "bob\x01@example.com", false, false, "control character U+0001" },
	{ "bob\x7f@example.com", false, false, "control character U+007F" },
	{ "bob\xc2\x85@example.com", false, false, "control character U+0085" },
	{ "b\xffob@example.com", false, false, "not valid UTF-8 at octet 2" },
	{ "\xc0\xaf" "bob@example.com", false, false, "not valid UTF-8" },
	{ "\xed\xa0\x80@example.com", false, false, "not valid UTF-8" },
	{ "bob@ex\xe2\x82" "ample.com", false, false, "not valid UTF-8" },
	{ "<bob@example.com>", false, false, "without the angle brackets" },
	{ "Bob <bob@example.com>", false, false, "without a name" },
	{ "bob(work)@example.com", false, false, "comments are not allowed" },
	{ "a,b@example.com", false, false, "one address at a time" },
	{ "bob\"x@example.com", false, false, "quote the whole local part" },
	{ "bo[b@example.com", false, false,
	    "'[' is not allowed in an unquoted local part" },
	{ "\"bob@example.com", false, false, "no closing '\"'" },
	{ "\"\"@example.com", false, false, "quoted local part is empty" },
	{ "\"bob\"x@example.com", false, false, "must be followed by '@'" },
	{ "\"a\tb\"@example.com", false, false, "contains a tab" },
	{ "\"bob\\", false, false, "escapes nothing" },
	{ "bob@exa_mple.com", false, false,
	    "'_' is not allowed in a domain name" },
	{ "bob@-example.com", false, false, "starts with a hyphen" },
	{ "bob@example-.com", false, false, "ends with a hyphen" },
	{ "bob@example..com", false, false, "domain has two dots in a row" },
	{ "bob@.example.com", false, false, "domain starts with a dot" },
	{ "bob@example.com.", false, false, "domain ends with a dot" },
	{ "bob@[192.0.2.1", false, false, "no closing ']'" },
	{ "bob@[192.0.2.1]x", false, false, "text after" },
	{ "bob@[]", false, false, "literal is empty" },
	{ "bob@[300.1.1.1]", false, false, "is not an IPv4 address" },
	{ "bob@[IPv6:zz::1]", false, false, "is not an IPv6 address" },
	{ "bob@[::1]", false, false, "write an IPv6 literal as [IPv6:::1]" },
	{ "bob@[x400:foo]", false, false, "only IPv4 and IPv6" },
	{ "bob@192.0.2.1", false, false, "in brackets: [192.0.2.1]" },
};

static void
test_addr_table(void **state)
{
	struct sk_error err;
	size_t i;
	bool utf8;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];

		sk_error_clear(&err);
		utf8 = !c->utf8;
		rc = sk_addr_check("--to", c->addr, &utf8, &err);
		if (rc != (c->ok ? 0 : -1))
			fail_msg("case %zu \"%s\": rc %d, message \"%s\"", i,
			    c->addr, rc, err.message);
		if (c->ok) {
			assert_int_equal(utf8, c->utf8);
			assert_int_equal(err.kind, SK_ERR_NONE);
			continue;
		}
		assert_int_equal(err.stage, SK_STAGE_LOCAL);
		assert_int_equal(err.kind, SK_ERR_USAGE);
		assert_false(utf8);
		/* One line for a person, naming the option. */
		assert_null(strchr(err.message, '\r'));
		assert_null(strchr(err.message, '\n'));
		assert_memory_equal(err.message, "--to: \"", 7);
		assert_true(strstr(err.message, " is not a valid address (") !=
		    NULL);
		if (strstr(err.message, c->why) == NULL)
			fail_msg("case %zu \"%s\": \"%s\" lacks \"%s\"", i,
			    c->addr, err.message, c->why);
		/* The same verdict without the optional outputs. */
		assert_int_equal(sk_addr_check(NULL, c->addr, NULL, NULL), -1);
	}
}

static void
test_addr_messages(void **state)
{
	struct sk_error err;

	(void)state;
	assert_int_equal(sk_addr_check("--to", "bob@@example.com", NULL, &err),
	    -1);
	assert_string_equal(err.message,
	    "--to: \"bob@@example.com\" is not a valid address (two '@')");

	/* The injection is shown escaped, never as a line break. */
	assert_int_equal(sk_addr_check("--from", "a@b.example\r\nBcc: x@y",
	    NULL, &err), -1);
	assert_string_equal(err.message, "--from: \"a@b.example\\r\\nBcc: "
	    "x@y\" is not a valid address (it contains a line break)");

	assert_int_equal(sk_addr_check(NULL, "bob", NULL, &err), -1);
	assert_string_equal(err.message,
	    "\"bob\" is not a valid address (there is no '@')");

	assert_int_equal(sk_addr_check("--to", NULL, NULL, &err), -1);
	assert_string_equal(err.message,
	    "--to: \"\" is not a valid address (it is empty)");

	/* A quoted local part is shown with its quotes escaped. */
	assert_int_equal(sk_addr_check("--to", "\"bob\"x@e.example", NULL,
	    &err), -1);
	assert_string_equal(err.message, "--to: \"\\\"bob\\\"x@e.example\" is "
	    "not a valid address (the quoted local part must be followed by "
	    "'@')");
}

static void
test_addr_lengths(void **state)
{
	struct sk_error err;
	char addr[400];
	char *local64 = repeat('a', 64), *local65 = repeat('a', 65);
	char *label63 = repeat('b', 63), *label64 = repeat('b', 64);
	char *label60 = repeat('c', 60);

	(void)state;
	(void)snprintf(addr, sizeof(addr), "%s@example.com", local64);
	assert_int_equal(sk_addr_check("--to", addr, NULL, &err), 0);
	(void)snprintf(addr, sizeof(addr), "%s@example.com", local65);
	assert_int_equal(sk_addr_check("--to", addr, NULL, &err), -1);
	assert_non_null(strstr(err.message, "(the local part is 65 octets "
	    "long; RFC 5321 §4.5.3.1.1 allows 64)"));
	/* A quoted local part counts with its quotes. */
	(void)snprintf(addr, sizeof(addr), "\"%.63s\"@example.com", local64);
	assert_int_equal(sk_addr_check("--to", addr, NULL, &err), -1);
	assert_non_null(strstr(err.message, "65 octets"));

	(void)snprintf(addr, sizeof(addr), "x@%s.example", label63);
	assert_int_equal(sk_addr_check("--to", addr, NULL, &err), 0);
	(void)snprintf(addr, sizeof(addr), "x@%s.example", label64);
	assert_int_equal(sk_addr_check("--to", addr, NULL, &err), -1);
	assert_non_null(strstr(err.message, "a domain label is 64 octets"));

	/* 64 + 1 + 4 * 61 - 1 = 308; then exactly 254 and 255. */
	(void)snprintf(addr, sizeof(addr), "%s@%s.%s.%s.%s", local64, label60,
	    label60, label60, label60);
	assert_int_equal(sk_addr_check("--to", addr, NULL, &err), -1);
	assert_non_null(strstr(err.message, "(it is 308 octets long; "
	    "RFC 5321 §4.5.3.1.3 allows 254)"));
	addr[254] = '\0';
	assert_int_equal(sk_addr_check("--to", addr, NULL, &err), 0);
	(void)snprintf(addr, sizeof(addr), "%s@%s.%s.%s.%s", local64, label60,
	    label60, label60, label60);
	addr[255] = '\0';
	assert_int_equal(sk_addr_check("--to", addr, NULL, &err), -1);
	assert_non_null(strstr(err.message, "255 octets long"));
	/* The message stays within its buffer and on one line. */
	assert_true(strlen(err.message) < sizeof(err.message) - 1);

	free(local64);
	free(local65);
	free(label63);
	free(label64);
	free(label60);
}

/*
 * Header text
 */

static void
test_header_check(void **state)
{
	struct sk_error err;

	(void)state;
	assert_int_equal(sk_header_check("--subject", "Hello", &err), 0);
	assert_int_equal(sk_header_check("--subject", "tab\there", &err), 0);
	assert_int_equal(sk_header_check("--subject", "Gr\xc3\xbc\xc3\x9f" "e",
	    &err), 0);
	assert_int_equal(sk_header_check("--subject", "\xf0\x9f\x93\xa7 mail",
	    &err), 0);
	assert_int_equal(sk_header_check("--subject", "", &err), 0);
	assert_int_equal(sk_header_check("--subject", NULL, &err), 0);

	assert_int_equal(sk_header_check("--subject",
	    "hi\r\nBcc: eve@evil.example", &err), -1);
	assert_int_equal(err.stage, SK_STAGE_LOCAL);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	assert_string_equal(err.message, "--subject contains a line break: "
	    "that would let it inject headers");
	assert_int_equal(sk_header_check("--subject", "a\nb", &err), -1);
	assert_non_null(strstr(err.message, "line break"));
	assert_int_equal(sk_header_check("--subject", "a\rb", &err), -1);
	assert_non_null(strstr(err.message, "line break"));

	assert_int_equal(sk_header_check("--subject", "bell\a", &err), -1);
	assert_string_equal(err.message, "--subject contains the control "
	    "character U+0007 at octet 5; only a tab is allowed");
	assert_int_equal(sk_header_check("--name", "x\x7f", &err), -1);
	assert_non_null(strstr(err.message, "U+007F"));
	assert_int_equal(sk_header_check("--name", "\x1b[31m", &err), -1);
	assert_non_null(strstr(err.message, "U+001B"));

	assert_int_equal(sk_header_check("--subject", "caf\xe9", &err), -1);
	assert_string_equal(err.message,
	    "--subject is not valid UTF-8 (octet 4, 0xE9)");
	assert_int_equal(sk_header_check(NULL, "\xc3", &err), -1);
	assert_string_equal(err.message,
	    "the header value is not valid UTF-8 (octet 1, 0xC3)");
	/* A line break wins over anything else wrong. */
	assert_int_equal(sk_header_check("x", "\xff\x01\n", NULL), -1);
	assert_int_equal(sk_header_check("x", "\xff\x01\n", &err), -1);
	assert_non_null(strstr(err.message, "line break"));
}

/*
 * Scanner
 */

struct scan_expect {
	uint64_t wire_size;
	uint64_t lines;
	bool has_8bit;
	bool has_nul;
	uint64_t nul_line;
	uint64_t long_line;
	uint64_t long_line_len;
};

/*
 * The DATA stream of a message, built the plain way: every line end made
 * CRLF, leading dots doubled, a CRLF after an unended last line.
 */
static size_t
reference_wire(const char *in, size_t len)
{
	size_t i, w = 0;
	bool bol = true;

	for (i = 0; i < len; i++) {
		if (in[i] == '\r' || in[i] == '\n') {
			if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
				i++;
			w += 2;
			bol = true;
			continue;
		}
		if (bol && in[i] == '.')
			w++;
		w++;
		bol = false;
	}
	return w + (bol ? 0 : 2);
}

static void
scan_assert(const struct sk_scan *s, const char *in, size_t len,
    const struct scan_expect *e, const char *how)
{
	if (s->size != len || s->wire_size != e->wire_size ||
	    s->lines != e->lines || s->has_8bit != e->has_8bit ||
	    s->has_nul != e->has_nul || s->nul_line != e->nul_line ||
	    s->long_line != e->long_line ||
	    s->long_line_len != e->long_line_len)
		fail_msg("%s (len %zu): size %llu wire %llu lines %llu 8bit %d "
		    "nul %d@%llu long %llu/%llu", how, len,
		    (unsigned long long)s->size,
		    (unsigned long long)s->wire_size,
		    (unsigned long long)s->lines, s->has_8bit, s->has_nul,
		    (unsigned long long)s->nul_line,
		    (unsigned long long)s->long_line,
		    (unsigned long long)s->long_line_len);
}

/* Feed in as one chunk, in every two-way split, byte by byte, and (for
 * short inputs) in every three-way split, including empty chunks. */
static void
scan_every_split(const char *in, size_t len, const struct scan_expect *e)
{
	struct sk_scan s;
	size_t i, j;

	assert_int_equal(reference_wire(in, len), e->wire_size);

	sk_scan_init(&s);
	sk_scan_feed(&s, in, len);
	sk_scan_finish(&s);
	scan_assert(&s, in, len, e, "one chunk");
	sk_scan_finish(&s);		/* finishing twice changes nothing */
	scan_assert(&s, in, len, e, "finished twice");

	for (i = 0; i <= len; i++) {
		sk_scan_init(&s);
		sk_scan_feed(&s, in, i);
		sk_scan_feed(&s, in + i, len - i);
		sk_scan_finish(&s);
		scan_assert(&s, in, len, e, "two chunks");
	}

	sk_scan_init(&s);
	for (i = 0; i < len; i++)
		sk_scan_feed(&s, in + i, 1);
	sk_scan_finish(&s);
	scan_assert(&s, in, len, e, "byte by byte");

	if (len > 64)
		return;
	for (i = 0; i <= len; i++)
		for (j = i; j <= len; j++) {
			sk_scan_init(&s);
			sk_scan_feed(&s, in, i);
			sk_scan_feed(&s, in + i, j - i);
			sk_scan_feed(&s, in + j, len - j);
			sk_scan_finish(&s);
			scan_assert(&s, in, len, e, "three chunks");
		}
}

#define SCAN(str, ...) do {						\
	const struct scan_expect e_ = { __VA_ARGS__ };			\
	scan_every_split((str), sizeof(str) - 1, &e_);			\
} while (0)

static void
test_scan_small(void **state)
{
	(void)state;
	/*     input                  wire lines 8bit nul nul@ long len */
	SCAN("",			0,  0, false, false, 0, 0, 0);
	SCAN("a\r\nb\r\n",		6,  2, false, false, 0, 0, 0);
	SCAN("a\nb\n",			6,  2, false, false, 0, 0, 0);
	SCAN("a\rb\r",			6,  2, false, false, 0, 0, 0);
	SCAN("a\r\n\r\nb",		8,  3, false, false, 0, 0, 0);
	SCAN("abc",			5,  1, false, false, 0, 0, 0);
	SCAN("\r\r\n\n",		6,  3, false, false, 0, 0, 0);
	SCAN("\n\r",			4,  2, false, false, 0, 0, 0);
	SCAN("a\r",			3,  1, false, false, 0, 0, 0);
	SCAN("\r\n",			2,  1, false, false, 0, 0, 0);
	SCAN(".\r\n..x\n",		10, 2, false, false, 0, 0, 0);
	SCAN("x.\r\n.",			8,  2, false, false, 0, 0, 0);
	SCAN(".\r.\n.\r\n.",		16, 4, false, false, 0, 0, 0);
	SCAN("caf\xc3\xa9\n",		7,  1, true,  false, 0, 0, 0);
	SCAN("a\n\0b\n",		7,  2, false, true,  2, 0, 0);
	SCAN("\0\n\0",			6,  2, false, true,  1, 0, 0);
	SCAN("Subject: x\r\n\r\n.\r\n",	18, 3, false, false, 0, 0, 0);
}

/* One long line of n 'x' after a prefix, ended by end, then a suffix. */
static char *
long_input(const char *prefix, size_t n, const char *end,
    const char *suffix, size_t *len)
{
	size_t pl = strlen(prefix), el = strlen(end), sl = strlen(suffix);
	char *s = malloc(pl + n + el + sl + 1);

	assert_non_null(s);
	memcpy(s, prefix, pl);
	memset(s + pl, 'x', n);
	memcpy(s + pl + n, end, el);
	memcpy(s + pl + n + el, suffix, sl + 1);
	*len = pl + n + el + sl;
	return s;
}

static void
test_scan_long_lines(void **state)
{
	static const char *const ends[] = { "\r\n", "\n", "\r", "" };
	struct scan_expect e;
	size_t i, len;
	char *in;

	(void)state;
	for (i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		/* 998 octets is the limit and is fine. */
		in = long_input("", 998, ends[i], "", &len);
		e = (struct scan_expect){ 1000, 1, false, false, 0, 0, 0 };
		scan_every_split(in, len, &e);
		free(in);

		/* 999 is one too many, whatever ends the line. */
		in = long_input("", 999, ends[i], "", &len);
		e = (struct scan_expect){ 1001, 1, false, false, 0, 1, 999 };
		scan_every_split(in, len, &e);
		free(in);

		/* Only the first long line is named; a dot is not counted in
		 * the length, the line end never is. */
		in = long_input("ok\r\n.", 1000, ends[i], ".y\n", &len);
		e = (struct scan_expect){ 4 + 1004 + 5, 3, false, false, 0,
		    2, 1001 };
		if (ends[i][0] == '\0')	/* ".xx...x" and ".y" join */
			e = (struct scan_expect){ 4 + 1006, 2, false, false,
			    0, 2, 1003 };
		scan_every_split(in, len, &e);
		free(in);
	}

	/* A CR that ends a 998-octet line must not count as content. */
	in = long_input("", 998, "\r", "\n", &len);
	e = (struct scan_expect){ 1000, 1, false, false, 0, 0, 0 };
	scan_every_split(in, len, &e);
	free(in);
}

static void
test_scan_size_large(void **state)
{
	struct sk_scan s;
	char chunk[1000];
	uint64_t i;

	(void)state;
	/* Ten million octets of one-dot lines, in 1000-octet chunks. */
	memset(chunk, '.', sizeof(chunk));
	for (i = 0; i < sizeof(chunk); i += 2)
		chunk[i + 1] = '\n';
	sk_scan_init(&s);
	for (i = 0; i < 10000; i++)
		sk_scan_feed(&s, chunk, sizeof(chunk));
	sk_scan_finish(&s);
	assert_int_equal(s.size, 10000000);
	assert_int_equal(s.lines, 5000000);
	assert_int_equal(s.wire_size, 5000000ULL * 4);
	assert_int_equal(s.long_line, 0);
}

/*
 * scan_fd
 */

static int
temp_file(const char *data, size_t len, char *path, size_t cap)
{
	int fd;

	(void)snprintf(path, cap, "/tmp/test_message.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* 200 000 octets whose 64 KiB read boundaries fall inside CRLFs. */
static char *
big_message(size_t *len)
{
	size_t n = 200000, i;
	char *s = malloc(n);

	assert_non_null(s);
	for (i = 0; i < n; i++)
		s[i] = (char)('a' + i % 26);
	for (i = 0; i + 80 < n; i += 80) {
		s[i] = '.';
		s[i + 78] = '\r';
		s[i + 79] = '\n';
	}
	s[65535] = '\r';	/* the CR ends the first read ... */
	s[65536] = '\n';	/* ... and its LF starts the second */
	s[65537] = '.';
	s[131071] = '\r';	/* a bare CR at the second boundary */
	s[131072] = '.';
	s[150000] = '\xc3';
	s[150001] = '\xa9';
	*len = n;
	return s;
}

static void
test_scan_fd(void **state)
{
	struct sk_scan s, ref;
	struct sk_error err;
	char path[64];
	size_t len;
	char *msg = big_message(&len);
	int fd;

	(void)state;
	sk_scan_init(&ref);
	sk_scan_feed(&ref, msg, len);
	sk_scan_finish(&ref);
	assert_int_equal(ref.wire_size, reference_wire(msg, len));
	assert_true(ref.has_8bit);

	fd = temp_file(msg, len, path, sizeof(path));
	memset(&s, 0xa5, sizeof(s));	/* sk_scan_fd initialises it */
	assert_int_equal(sk_scan_fd(fd, "big.eml", &s, &err), 0);
	assert_int_equal(s.size, len);
	assert_int_equal(s.wire_size, ref.wire_size);
	assert_int_equal(s.lines, ref.lines);
	assert_int_equal(s.has_8bit, true);
	assert_int_equal(s.has_nul, false);
	assert_int_equal(s.long_line, 0);

	/* From the current offset: the first 1000 octets are skipped. */
	assert_int_equal(lseek(fd, 1000, SEEK_SET), 1000);
	assert_int_equal(sk_scan_fd(fd, "big.eml", &s, &err), 0);
	sk_scan_init(&ref);
	sk_scan_feed(&ref, msg + 1000, len - 1000);
	sk_scan_finish(&ref);
	assert_int_equal(s.size, len - 1000);
	assert_int_equal(s.wire_size, ref.wire_size);
	assert_int_equal(s.lines, ref.lines);

	/* An empty file. */
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(sk_scan_fd(fd, "empty.eml", &s, NULL), 0);
	assert_int_equal(s.size, 0);
	assert_int_equal(s.wire_size, 0);
	assert_int_equal(s.lines, 0);

	close(fd);
	unlink(path);
	free(msg);
}

static void
test_scan_fd_read_error(void **state)
{
	struct sk_scan s;
	struct sk_error err;
	int fd;

	(void)state;
	fd = open("/tmp", O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(sk_scan_fd(fd, "/tmp", &s, &err), -1);
	assert_int_equal(err.stage, SK_STAGE_LOCAL);
	assert_int_equal(err.kind, SK_ERR_LOCAL);
	assert_int_equal(err.sys_errno, EISDIR);
	assert_string_equal(err.message, "cannot read /tmp: Is a directory");
	assert_int_equal(sk_scan_fd(fd, NULL, &s, NULL), -1);
	close(fd);

	assert_int_equal(sk_scan_fd(-1, "x.eml", &s, &err), -1);
	assert_int_equal(err.sys_errno, EBADF);
}

static volatile sig_atomic_t interrupted;

static void
on_usr1(int sig)
{
	(void)sig;
	interrupted++;
}

/*
 * read() on a pipe interrupted by signals without SA_RESTART fails with
 * EINTR; the scan must carry on.  The writer signals the reader while it
 * waits, then writes the message and closes; no sleep decides the result.
 */
static void
test_scan_fd_eintr(void **state)
{
	struct sigaction sa, old;
	struct sk_scan s;
	struct sk_error err;
	struct timespec ms = { 0, 1000000 };
	int p[2], i, status;
	pid_t pid, parent = getpid();

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;		/* no SA_RESTART: read() sees EINTR */
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	interrupted = 0;
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		for (i = 0; i < 20; i++) {
			(void)kill(parent, SIGUSR1);
			(void)nanosleep(&ms, NULL);
		}
		if (write(p[1], "a\r\n.b\n", 6) != 6)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(sk_scan_fd(p[0], "pipe", &s, &err), 0);
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* Only that it exited: under valgrind its status reports leaks of
	 * the copied parent; the scan result shows the write happened. */
	assert_true(WIFEXITED(status));
	assert_true(interrupted > 0);
	assert_int_equal(s.size, 6);
	assert_int_equal(s.wire_size, 8);	/* "a" CRLF ".." "b" CRLF */
	assert_int_equal(s.lines, 2);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

static void
test_scan_check(void **state)
{
	struct sk_scan s;
	struct sk_error err;
	char *in;
	size_t len;

	(void)state;
	sk_scan_init(&s);
	sk_scan_feed(&s, "ok\r\n", 4);
	sk_scan_finish(&s);
	assert_int_equal(sk_scan_check(&s, "message.eml", &err), 0);

	in = long_input("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n", 1204, "\n", "",
	    &len);
	sk_scan_init(&s);
	sk_scan_feed(&s, in, len);
	sk_scan_finish(&s);
	free(in);
	assert_int_equal(sk_scan_check(&s, "message.eml", &err), -1);
	assert_int_equal(err.stage, SK_STAGE_LOCAL);
	assert_int_equal(err.kind, SK_ERR_DATA);
	assert_string_equal(err.message, "message.eml: line 12 is 1204 octets "
	    "long; RFC 5322 §2.1.1 allows 998. Wrap it or encode the body "
	    "(quoted-printable or base64).");
	assert_int_equal(sk_scan_check(&s, "message.eml", NULL), -1);

	/* A NUL is named first: it is likely a binary file. */
	in = long_input("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n", 1204, "\n",
	    "x@y\n", &len);
	in[len - 3] = '\0';	/* long_input takes C strings */
	sk_scan_init(&s);
	sk_scan_feed(&s, in, len);
	sk_scan_finish(&s);
	free(in);
	assert_int_equal(sk_scan_check(&s, "message.eml", &err), -1);
	assert_int_equal(err.kind, SK_ERR_DATA);
	assert_prefix(err.message, "message.eml contains a NUL octet at "
	    "line 13; ");
	assert_null(strchr(err.message, '\n'));

	sk_scan_init(&s);
	sk_scan_feed(&s, "\0", 1);
	sk_scan_finish(&s);
	assert_int_equal(sk_scan_check(&s, NULL, &err), -1);
	assert_prefix(err.message, "the message contains a NUL octet at "
	    "line 1; ");
}

/*
 * Composition
 */

struct hdr {
	char name[64];
	char *value;		/* unfolded: CRLF removed, WSP kept */
	size_t raw_lines;
};

struct parsed {
	struct hdr h[32];
	size_t nh;
	const char *body;
	size_t body_len;
};

/*
 * Split a composed message into unfolded headers and a body, checking
 * what holds for the whole: CRLF only, no line over 998 octets, header
 * lines within 78 unless one word is longer, an ending CRLF.
 */
static void
parse(const char *msg, size_t len, struct parsed *p)
{
	const char *line = msg, *eol, *end = msg + len, *colon;
	size_t i, ll;
	struct hdr *h = NULL;

	memset(p, 0, sizeof(*p));
	assert_true(len >= 2);
	assert_memory_equal(end - 2, "\r\n", 2);
	for (i = 0; i < len; i++) {
		if (msg[i] == '\n')
			assert_true(i > 0 && msg[i - 1] == '\r');
		if (msg[i] == '\r')
			assert_true(i + 1 < len && msg[i + 1] == '\n');
		assert_true(msg[i] != '\0');
	}
	for (;;) {
		eol = strstr(line, "\r\n");
		assert_non_null(eol);
		ll = (size_t)(eol - line);
		assert_true(ll <= SK_LINE_MAX);
		if (ll == 0)
			break;
		if (line[0] == ' ' || line[0] == '\t') {
			char *v;

			if (h == NULL)
				fail_msg("a folded line before any header");
			/* A folded line is never only white space. */
			assert_true(strspn(line, " \t") < ll);
			v = realloc(h->value, strlen(h->value) + ll + 1);
			assert_non_null(v);
			h->value = v;
			strncat(h->value, line, ll);
			h->raw_lines++;
		} else {
			assert_true(p->nh < 32);
			h = &p->h[p->nh++];
			colon = memchr(line, ':', ll);
			assert_non_null(colon);
			assert_true((size_t)(colon - line) < sizeof(h->name));
			memcpy(h->name, line, (size_t)(colon - line));
			h->name[colon - line] = '\0';
			colon++;
			if (colon < eol && *colon == ' ')
				colon++;
			h->value = strndup(colon, (size_t)(eol - colon));
			assert_non_null(h->value);
			h->raw_lines = 1;
		}
		line = eol + 2;
	}
	p->body = line + 2;
	p->body_len = (size_t)(end - p->body);
	for (line = p->body; line < end; line = eol + 2) {
		eol = strstr(line, "\r\n");
		assert_true((size_t)(eol - line) <= SK_LINE_MAX);
	}
}

static void
parsed_free(struct parsed *p)
{
	size_t i;

	for (i = 0; i < p->nh; i++)
		free(p->h[i].value);
}

static const char *
hval(const struct parsed *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nh; i++)
		if (strcasecmp(p->h[i].name, name) == 0)
			return p->h[i].value;
	return NULL;
}

static void
expect_names(const struct parsed *p, const char *const *names)
{
	size_t i;

	for (i = 0; names[i] != NULL; i++) {
		assert_true(i < p->nh);
		assert_string_equal(p->h[i].name, names[i]);
	}
	assert_int_equal(i, p->nh);
	for (i = 0; i < p->nh; i++)
		assert_true(strcasecmp(p->h[i].name, "Bcc") != 0);
}

static char *
compose(const struct sk_compose *m, size_t *len)
{
	struct sk_error err;
	char *msg;

	sk_error_clear(&err);
	msg = sk_message_compose(m, len, &err);
	if (msg == NULL)
		fail_msg("compose: %s", err.message);
	return msg;
}

static const char *const all_names[] = {
	"From", "To", "Cc", "Subject", "Date", "Message-ID", "MIME-Version",
	"Content-Type", "Content-Transfer-Encoding", NULL
};

static void
test_compose_ascii(void **state)
{
	static const char *const to[] = { "bob@example.com",
	    "carol@example.org" };
	static const char *const cc[] = { "dave@example.net" };
	static const char text[] = "Hi Bob,\n\n.a line with a dot\r\nBye\n";
	static const char want_body[] =
	    "Hi Bob,\r\n\r\n.a line with a dot\r\nBye\r\n";
	struct sk_compose m = {
		.from = "alice@example.com", .to = to, .nto = 2, .cc = cc,
		.ncc = 1, .subject = "Hello there", .text = text,
		.text_len = sizeof(text) - 1, .now = 1795914000,
	};
	struct parsed p;
	char date[64];
	const char *id;
	size_t len, i;
	char *msg;

	(void)state;
	msg = compose(&m, &len);
	assert_int_equal(strlen(msg), len);
	parse(msg, len, &p);
	expect_names(&p, all_names);
	assert_string_equal(hval(&p, "From"), "alice@example.com");
	assert_string_equal(hval(&p, "To"),
	    "bob@example.com, carol@example.org");
	assert_string_equal(hval(&p, "Cc"), "dave@example.net");
	assert_string_equal(hval(&p, "Subject"), "Hello there");
	assert_true(sk_rfc5322_date(m.now, date, sizeof(date)) != (size_t)-1);
	assert_string_equal(hval(&p, "Date"), date);
	assert_string_equal(hval(&p, "MIME-Version"), "1.0");
	assert_string_equal(hval(&p, "Content-Type"),
	    "text/plain; charset=UTF-8");
	assert_string_equal(hval(&p, "Content-Transfer-Encoding"), "7bit");

	id = hval(&p, "Message-ID");
	assert_int_equal(strlen(id), 1 + 32 + 1 + strlen("example.com") + 1);
	assert_int_equal(id[0], '<');
	for (i = 1; i <= 32; i++)
		assert_non_null(strchr("0123456789abcdef", id[i]));
	assert_string_equal(id + 33, "@example.com>");

	/* The body as it was, with CRLF line ends; the DATA encoder, not
	 * composition, doubles the dot. */
	assert_int_equal(p.body_len, strlen(want_body));
	assert_memory_equal(p.body, want_body, p.body_len);
	parsed_free(&p);
	free(msg);
}

static void
test_compose_message_ids_differ(void **state)
{
	static const char *const to[] = { "bob@example.com" };
	struct sk_compose m = { .from = "a@[192.0.2.1]", .to = to, .nto = 1,
	    .text = "x", .text_len = 1, .now = 1 };
	struct parsed p1, p2;
	char *m1, *m2;
	size_t l1, l2;

	(void)state;
	m1 = compose(&m, &l1);
	m2 = compose(&m, &l2);
	parse(m1, l1, &p1);
	parse(m2, l2, &p2);
	/* An address literal is a valid id-right (RFC 5322 §3.6.4). */
	assert_string_equal(hval(&p1, "Message-ID") + 33, "@[192.0.2.1]>");
	assert_string_not_equal(hval(&p1, "Message-ID"),
	    hval(&p2, "Message-ID"));
	/* No subject given: no Subject header. */
	assert_null(hval(&p1, "Subject"));
	assert_null(hval(&p1, "Cc"));
	/* An unended last line ends with CRLF in 7bit. */
	assert_string_equal(p1.body, "x\r\n");
	parsed_free(&p1);
	parsed_free(&p2);
	free(m1);
	free(m2);
}

/* Compose with body text, expect quoted-printable, decode, compare. */
static void
qp_round_trip(const char *text, size_t len, bool expect_qp)
{
	static const char *const to[] = { "bob@example.com" };
	struct sk_compose m = { .from = "alice@example.com", .to = to,
	    .nto = 1, .subject = "t", .text = text, .text_len = len,
	    .now = 1795914000 };
	struct parsed p;
	char *msg, *dec, *want;
	size_t mlen, dlen, wlen;

	msg = compose(&m, &mlen);
	parse(msg, mlen, &p);
	want = crlf(text, len, &wlen);
	if (!expect_qp) {
		assert_string_equal(hval(&p, "Content-Transfer-Encoding"),
		    "7bit");
		if (wlen > 0 && (wlen < 2 ||
		    memcmp(want + wlen - 2, "\r\n", 2) != 0)) {
			want = realloc(want, wlen + 3);
			memcpy(want + wlen, "\r\n", 3);
			wlen += 2;
		}
		assert_int_equal(p.body_len, wlen);
		assert_memory_equal(p.body, want, wlen);
	} else {
		assert_string_equal(hval(&p, "Content-Transfer-Encoding"),
		    "quoted-printable");
		dec = qp_decode(p.body, p.body_len, &dlen);
		assert_int_equal(dlen, wlen);
		assert_memory_equal(dec, want, wlen);
		free(dec);
	}
	free(want);
	parsed_free(&p);
	free(msg);
}

static void
test_compose_qp(void **state)
{
	static const char mixed[] = "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln\n"
	    "1 + 1 = 2\r\ntrailing space \ntrailing tab\t\n\n"
	    "=?UTF-8?Q?not_a_word?=\n.dot\nno last newline \xe2\x82\xac";
	char *line998 = repeat('x', 998), *line999 = repeat('y', 999);
	char *long_utf8;
	size_t i;

	(void)state;
	/* UTF-8, '=', trailing white space, CRLF and LF, no last LF. */
	qp_round_trip(mixed, sizeof(mixed) - 1, true);

	/* Long UTF-8 lines break softly at 76 columns, never mid-escape. */
	long_utf8 = malloc(3 * 700 + 2);
	assert_non_null(long_utf8);
	for (i = 0; i < 700; i++)
		memcpy(long_utf8 + 3 * i, "\xe4\xb8\xad", 3);
	long_utf8[2100] = '\n';
	long_utf8[2101] = '\0';
	qp_round_trip(long_utf8, 2101, true);
	/* and ends right where a soft break must be added */
	for (i = 1; i < 80; i++)
		qp_round_trip(long_utf8 + 2100 - 3 * i, 3 * i, true);
	free(long_utf8);

	/* ASCII: 998 octets stay 7bit, 999 need quoted-printable. */
	qp_round_trip(line998, 998, false);
	qp_round_trip(line999, 999, true);
	/* Every column where a trailing space or '=' could fall. */
	for (i = 70; i < 160; i++) {
		char buf[200];

		memset(buf, 'a', i);
		buf[i - 1] = ' ';
		buf[i] = '\n';
		qp_round_trip(buf, i + 1, false);
		buf[i - 1] = '=';
		buf[i] = '\xc3';
		buf[i + 1] = '\xa9';
		buf[i + 2] = ' ';
		qp_round_trip(buf, i + 3, true);
	}
	/* A bare CR cannot go in 7bit; a NUL cannot either. */
	qp_round_trip("a\rb\n", 4, true);
	qp_round_trip("a\0b\n", 4, true);
	qp_round_trip("ends in CR\r", 11, true);
	/* Plain ASCII, LF, an empty body. */
	qp_round_trip("plain\nlines\n", 12, false);
	qp_round_trip("", 0, false);
	qp_round_trip("\n\n", 2, false);

	free(line998);
	free(line999);
}

static void
test_compose_folding(void **state)
{
	const char *to[40];
	char addrs[40][40], want[40 * 42];
	struct sk_compose m = { .from = "alice@example.com", .to = to,
	    .nto = 40, .cc = to, .ncc = 3, .text = "", .now = 1795914000 };
	struct parsed p;
	const char *line, *eol;
	char *msg;
	size_t len, i;

	(void)state;
	want[0] = '\0';
	for (i = 0; i < 40; i++) {
		(void)snprintf(addrs[i], sizeof(addrs[i]),
		    "recipient%02zu@mail.example.com", i);
		to[i] = addrs[i];
		if (i > 0)
			strncat(want, ", ", sizeof(want) - strlen(want) - 1);
		strncat(want, addrs[i], sizeof(want) - strlen(want) - 1);
	}
	msg = compose(&m, &len);
	parse(msg, len, &p);
	expect_names(&p, (const char *const[]){ "From", "To", "Cc", "Date",
	    "Message-ID", "MIME-Version", "Content-Type",
	    "Content-Transfer-Encoding", NULL });
	assert_string_equal(hval(&p, "To"), want);
	assert_true(p.h[1].raw_lines > 10);
	/* Header lines within 78 (RFC 5322 §2.1.1), the Message-ID aside. */
	for (line = msg; line < p.body - 2; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (strncmp(line, "Message-ID:", 11) != 0)
			assert_true(eol - line <= 78);
	}
	/* An empty body: headers, the blank line, nothing else. */
	assert_int_equal(p.body_len, 0);
	parsed_free(&p);
	free(msg);
}

static void
test_compose_subjects(void **state)
{
	static const char *const to[] = { "bob@example.com" };
	struct sk_compose m = { .from = "alice@example.com", .to = to,
	    .nto = 1, .text = "x\n", .text_len = 2, .now = 1795914000 };
	struct parsed p;
	char subject[3000], *msg, *dec;
	const char *raw;
	size_t len, i;

	(void)state;
	/* UTF-8: encoded words that decode back. */
	m.subject = "R\xc3\xa9sum\xc3\xa9 \xe2\x80\x94 \xe4\xbd\xa0\xe5\xa5"
	    "\xbd \xf0\x9f\x93\xa7";
	msg = compose(&m, &len);
	parse(msg, len, &p);
	raw = strstr(msg, "\r\nSubject: ") + 11;
	*strstr(raw, "\r\nDate:") = '\0';
	dec = decode_words(raw, 9);
	assert_string_equal(dec, m.subject);
	free(dec);
	parsed_free(&p);
	free(msg);

	/* Long plain ASCII: folded at spaces, unfolds to the same text. */
	subject[0] = '\0';
	for (i = 0; i < 40; i++)
		strncat(subject, "lorem ipsum ", sizeof(subject) -
		    strlen(subject) - 1);
	strncat(subject, "end", sizeof(subject) - strlen(subject) - 1);
	m.subject = subject;
	msg = compose(&m, &len);
	parse(msg, len, &p);
	assert_string_equal(hval(&p, "Subject"), subject);
	assert_true(p.h[2].raw_lines > 5);
	raw = strstr(msg, "\r\nSubject: ") + 2;
	for (i = 0; i < p.h[2].raw_lines; i++) {
		assert_true(strstr(raw, "\r\n") - raw <= 78);
		raw = strstr(raw, "\r\n") + 2;
	}
	parsed_free(&p);
	free(msg);

	/* One ASCII word too long for any line: encoded words instead. */
	memset(subject, 'w', 1500);
	subject[1500] = '\0';
	msg = compose(&m, &len);
	parse(msg, len, &p);
	raw = strstr(msg, "\r\nSubject: ") + 11;
	*strstr(raw, "\r\nDate:") = '\0';
	dec = decode_words(raw, 9);
	assert_string_equal(dec, subject);
	free(dec);
	parsed_free(&p);
	free(msg);

	/* Empty subject: the header, with nothing in it. */
	m.subject = "";
	msg = compose(&m, &len);
	assert_non_null(strstr(msg, "\r\nSubject:\r\nDate: "));
	free(msg);
}

static void
test_compose_no_recipients_and_errors(void **state)
{
	static const char *const bad_to[] = { "bob@example.com",
	    "eve@evil.example>\r\nBcc: x@y" };
	struct sk_compose m = { .from = "alice@example.com", .now = 1 };
	struct sk_error err;
	struct parsed p;
	char *msg;
	size_t len = 99;

	(void)state;
	msg = compose(&m, &len);
	parse(msg, len, &p);
	assert_string_equal(hval(&p, "To"), "undisclosed-recipients:;");
	parsed_free(&p);
	free(msg);

	m.to = bad_to;
	m.nto = 2;
	assert_null(sk_message_compose(&m, &len, &err));
	assert_int_equal(len, 0);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	assert_memory_equal(err.message, "To: ", 4);
	assert_null(sk_message_compose(&m, &len, NULL));

	m.nto = 1;
	m.subject = "hi\nBcc: eve@evil.example";
	assert_null(sk_message_compose(&m, &len, &err));
	assert_string_equal(err.message, "the subject contains a line break: "
	    "that would let it inject headers");

	m.subject = NULL;
	m.from = "alice@example.com\r\n";
	assert_null(sk_message_compose(&m, &len, &err));
	assert_int_equal(err.kind, SK_ERR_USAGE);

	m.from = NULL;
	assert_null(sk_message_compose(&m, &len, &err));
	assert_string_equal(err.message, "a message needs a From address");

	m.from = "alice@example.com";
	m.text = "caf\xe9\n";
	m.text_len = 5;
	assert_null(sk_message_compose(&m, &len, &err));
	assert_int_equal(err.kind, SK_ERR_DATA);
	assert_non_null(strstr(err.message, "not valid UTF-8 (line 1)"));

	m.text = NULL;
	assert_null(sk_message_compose(&m, &len, &err));
	assert_int_equal(err.kind, SK_ERR_USAGE);
}

/*
 * RFC 2047
 */

static void
test_rfc2047_plain(void **state)
{
	char out[128];

	(void)state;
	assert_int_equal(sk_rfc2047_encode("Hello, world", 9, out,
	    sizeof(out)), 12);
	assert_string_equal(out, "Hello, world");
	assert_int_equal(sk_rfc2047_encode("", 9, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(sk_rfc2047_encode("a\tb", 9, out, sizeof(out)), 3);
	/* cap counts the NUL */
	assert_int_equal(sk_rfc2047_encode("abc", 9, out, 3), (size_t)-1);
	assert_string_equal(out, "");
	assert_int_equal(sk_rfc2047_encode("abc", 9, out, 4), 3);

	/* Text a reader would decode is encoded (RFC 2047 §5). */
	assert_true(sk_rfc2047_encode("=?UTF-8?B?SGk=?=", 9, out,
	    sizeof(out)) != (size_t)-1);
	assert_string_equal(out, "=?UTF-8?B?PT9VVEYtOD9CP1NHaz0/PQ==?=");
	/* So is a control, which then cannot break the header. */
	assert_true(sk_rfc2047_encode("a\r\nb", 9, out, sizeof(out)) !=
	    (size_t)-1);
	assert_string_equal(out, "=?UTF-8?B?YQ0KYg==?=");

	assert_true(sk_rfc2047_encode("\xc3\xa9", 9, out, sizeof(out)) ==
	    strlen("=?UTF-8?B?w6k=?="));
	assert_string_equal(out, "=?UTF-8?B?w6k=?=");
	assert_int_equal(sk_rfc2047_encode("\xc3\xa9", 9, out, 16),
	    (size_t)-1);
	assert_string_equal(out, "");
	assert_int_equal(sk_rfc2047_encode("\xc3\xa9", 9, out, 17), 16);
}

static void
test_rfc2047_round_trip(void **state)
{
	static const char *const seqs[] = {
		"\xc3\xa9",		/* é, 2 octets */
		"\xe4\xb8\xad",		/* 中, 3 octets */
		"\xf0\x9f\x93\xa7",	/* 📧, 4 octets */
		"a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x93\xa7 ",
	};
	static const size_t leads[] = { 0, 9, 20, 40, 59, 60, 61, 70, 76, 100 };
	char in[1200], out[8192], *dec;
	size_t s, n, l, len, k, r;

	(void)state;
	for (s = 0; s < sizeof(seqs) / sizeof(seqs[0]); s++)
		for (n = 1; n < 120; n += (n < 50 ? 1 : 7)) {
			in[0] = '\0';
			for (k = 0; k < n; k++)
				strncat(in, seqs[s], sizeof(in) -
				    strlen(in) - 1);
			len = strlen(in);
			for (l = 0; l < sizeof(leads) / sizeof(leads[0]); l++) {
				r = sk_rfc2047_encode(in, leads[l], out,
				    sizeof(out));
				assert_true(r != (size_t)-1);
				assert_int_equal(r, strlen(out));
				dec = decode_words(out, leads[l]);
				if (strcmp(dec, in) != 0)
					fail_msg("seq %zu n %zu lead %zu", s,
					    n, leads[l]);
				/* Too small a buffer is refused, not cut. */
				assert_int_equal(sk_rfc2047_encode(in,
				    leads[l], out, r), (size_t)-1);
				assert_string_equal(out, "");
				free(dec);
			}
			(void)len;
		}
}

/*
 * Date
 */

static void
date_in(const char *tz, time_t t, const char *want)
{
	char out[64];

	assert_int_equal(setenv("TZ", tz, 1), 0);
	tzset();
	assert_int_equal(sk_rfc5322_date(t, out, sizeof(out)), strlen(want));
	assert_string_equal(out, want);
}

static void
test_date(void **state)
{
	char out[64];
	const char *old = getenv("TZ");
	char *saved = old != NULL ? strdup(old) : NULL;

	(void)state;
	date_in("UTC", 1795914000, "Sun, 29 Nov 2026 01:00:00 +0000");
	date_in("Asia/Shanghai", 1795914000, "Sun, 29 Nov 2026 09:00:00 +0800");
	date_in("America/New_York", 1795914000,
	    "Sat, 28 Nov 2026 20:00:00 -0500");
	date_in("America/New_York", 1783166400,
	    "Sat, 4 Jul 2026 08:00:00 -0400");
	date_in("Asia/Kolkata", 1795914000, "Sun, 29 Nov 2026 06:30:00 +0530");
	date_in("UTC", 1772366400, "Sun, 1 Mar 2026 12:00:00 +0000");
	date_in("UTC", 0, "Thu, 1 Jan 1970 00:00:00 +0000");

	assert_int_equal(setenv("TZ", "UTC", 1), 0);
	tzset();
	assert_int_equal(sk_rfc5322_date(1795914000, out, 31), (size_t)-1);
	assert_string_equal(out, "");
	assert_int_equal(sk_rfc5322_date(1795914000, out, 32), 31);

	if (saved != NULL) {
		(void)setenv("TZ", saved, 1);
		free(saved);
	} else
		(void)unsetenv("TZ");
	tzset();
}

static void
test_message_id(void **state)
{
	char a[128], b[128], small[20];
	size_t n;

	(void)state;
	n = sk_message_id("example.org", a, sizeof(a));
	assert_int_equal(n, strlen(a));
	assert_int_equal(n, 1 + 32 + 1 + strlen("example.org") + 1);
	assert_true(a[0] == '<' && a[n - 1] == '>');
	assert_int_equal(strspn(a + 1, "0123456789abcdef"), 32);
	assert_non_null(strstr(a, "@example.org>"));
	assert_int_not_equal(sk_message_id("[192.0.2.1]", b, sizeof(b)),
	    (size_t)-1);
	assert_non_null(strstr(b, "@[192.0.2.1]>"));
	assert_int_not_equal(strncmp(a, b, 33), 0);
	assert_int_equal(sk_message_id("example.org", small, sizeof(small)),
	    (size_t)-1);
	assert_string_equal(small, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_table),
		cmocka_unit_test(test_addr_messages),
		cmocka_unit_test(test_addr_lengths),
		cmocka_unit_test(test_header_check),
		cmocka_unit_test(test_scan_small),
		cmocka_unit_test(test_scan_long_lines),
		cmocka_unit_test(test_scan_size_large),
		cmocka_unit_test(test_scan_fd),
		cmocka_unit_test(test_scan_fd_read_error),
		cmocka_unit_test(test_scan_fd_eintr),
		cmocka_unit_test(test_scan_check),
		cmocka_unit_test(test_compose_ascii),
		cmocka_unit_test(test_compose_message_ids_differ),
		cmocka_unit_test(test_compose_qp),
		cmocka_unit_test(test_compose_folding),
		cmocka_unit_test(test_compose_subjects),
		cmocka_unit_test(test_compose_no_recipients_and_errors),
		cmocka_unit_test(test_rfc2047_plain),
		cmocka_unit_test(test_rfc2047_round_trip),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_message_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
