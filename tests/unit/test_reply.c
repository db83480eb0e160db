/* smtpkit: reply parser unit tests (RFC 5321 §4.2, RFC 3463, RFC 2034). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpkit/error.h"
#include "smtpkit/reply.h"

static int
setup(void **state)
{
	struct sk_reply_parser *p;

	if ((p = malloc(sizeof(*p))) == NULL)
		return -1;
	sk_reply_parser_init(p);
	*state = p;
	return 0;
}

static int
teardown(void **state)
{
	free(*state);
	return 0;
}

/* Feed s whole; it must be exactly one complete reply. */
static void
parse_one(struct sk_reply_parser *p, const char *s)
{
	struct sk_error err;
	size_t used = 0;
	int rv;

	sk_error_clear(&err);
	rv = sk_reply_parse(p, s, strlen(s), &used, &err);
	if (rv != SK_REPLY_DONE)
		fail_msg("\"%s\": rv %d: %s", s, rv, err.message);
	assert_int_equal(used, strlen(s));
}

/* Feed s whole; it must be rejected as a protocol error. */
static void
parse_bad(struct sk_reply_parser *p, const char *s, size_t len)
{
	struct sk_error err;
	size_t used = 0;

	sk_reply_parser_init(p);
	sk_error_clear(&err);
	if (sk_reply_parse(p, s, len, &used, &err) != SK_REPLY_ERROR)
		fail_msg("accepted \"%.*s\"", (int)len, s);
	assert_int_equal(err.kind, SK_ERR_PROTOCOL);
	assert_int_equal(err.stage, SK_STAGE_NONE);
	assert_true(err.message[0] != '\0');
	assert_true(used <= len);
}

static void
expect_line(const struct sk_reply *r, size_t i, const char *want)
{
	const char *s;
	size_t n;

	s = sk_reply_line(r, i, &n);
	assert_non_null(s);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(s, want, n);
}

/* RFC 5321 §4.2.1 */
static const char multiline[] =
    "250-First line\r\n"
    "250-Second line\r\n"
    "250-234 Text beginning with numbers\r\n"
    "250 The last line\r\n";

static void
check_multiline(const struct sk_reply *r)
{
	assert_int_equal(r->code, 250);
	assert_string_equal(r->enhanced, "");
	assert_int_equal(r->nlines, 4);
	assert_string_equal(r->text, "First line\nSecond line\n"
	    "234 Text beginning with numbers\nThe last line");
	assert_int_equal(r->len, strlen(r->text));
	expect_line(r, 0, "First line");
	expect_line(r, 1, "Second line");
	expect_line(r, 2, "234 Text beginning with numbers");
	expect_line(r, 3, "The last line");
}

static void
test_rfc5321_multiline(void **state)
{
	struct sk_reply_parser *p = *state;
	char joined[128];
	size_t n;

	parse_one(p, multiline);
	check_multiline(&p->reply);
	assert_null(sk_reply_line(&p->reply, 4, &n));
	assert_int_equal(n, 0);
	sk_reply_join(&p->reply, joined, sizeof(joined));
	assert_string_equal(joined, "First line Second line "
	    "234 Text beginning with numbers The last line");
}

/* Every single-line reply RFC 5321 shows (§3, §4.2.2, §4.2.3, App. D). */
static const struct {
	const char *line;
	int code;
	const char *text;
} rfc5321_replies[] = {
	{ "211 System status, or system help reply", 211,
	    "System status, or system help reply" },
	{ "214 Help message", 214, "Help message" },
	{ "220 foo.com Simple Mail Transfer Service Ready", 220,
	    "foo.com Simple Mail Transfer Service Ready" },
	{ "220 xyz.com Simple Mail Transfer Service Ready", 220,
	    "xyz.com Simple Mail Transfer Service Ready" },
	{ "221 foo.com Service closing transmission channel", 221,
	    "foo.com Service closing transmission channel" },
	{ "250 OK", 250, "OK" },
	{ "250 xyz.com is on the air", 250, "xyz.com is on the air" },
	{ "250 Requested mail action okay, completed", 250,
	    "Requested mail action okay, completed" },
	{ "250 Fred Smith <Smith@USC-ISIF.ARPA>", 250,
	    "Fred Smith <Smith@USC-ISIF.ARPA>" },
	{ "251 User not local; will forward to <Postel@USC-ISIF.ARPA>", 251,
	    "User not local; will forward to <Postel@USC-ISIF.ARPA>" },
	{ "252 Cannot VRFY user, but will accept message and attempt "
	    "delivery", 252, "Cannot VRFY user, but will accept message and "
	    "attempt delivery" },
	{ "354 Start mail input; end with <CRLF>.<CRLF>", 354,
	    "Start mail input; end with <CRLF>.<CRLF>" },
	{ "421 foo.com Service not available, closing transmission channel",
	    421, "foo.com Service not available, closing transmission "
	    "channel" },
	{ "450 Requested mail action not taken: mailbox unavailable", 450,
	    "Requested mail action not taken: mailbox unavailable" },
	{ "451 Requested action aborted: local error in processing", 451,
	    "Requested action aborted: local error in processing" },
	{ "452 Requested action not taken: insufficient system storage", 452,
	    "Requested action not taken: insufficient system storage" },
	{ "455 Server unable to accommodate parameters", 455,
	    "Server unable to accommodate parameters" },
	{ "500 Syntax error, command unrecognized", 500,
	    "Syntax error, command unrecognized" },
	{ "501 Syntax error in parameters or arguments", 501,
	    "Syntax error in parameters or arguments" },
	{ "502 Command not implemented", 502, "Command not implemented" },
	{ "503 Bad sequence of commands", 503, "Bad sequence of commands" },
	{ "504 Command parameter not implemented", 504,
	    "Command parameter not implemented" },
	{ "550 No such user here", 550, "No such user here" },
	{ "550 Access Denied to You.", 550, "Access Denied to You." },
	{ "550 String does not match anything.", 550,
	    "String does not match anything." },
	{ "551 User not local; please try <Jones@XYZ.COM>", 551,
	    "User not local; please try <Jones@XYZ.COM>" },
	{ "552 Requested mail action aborted: exceeded storage allocation",
	    552, "Requested mail action aborted: exceeded storage allocation" },
	{ "553 User ambiguous.", 553, "User ambiguous." },
	{ "553 Requested action not taken: mailbox name not allowed", 553,
	    "Requested action not taken: mailbox name not allowed" },
	{ "554 No SMTP service here", 554, "No SMTP service here" },
	{ "554 Transaction failed", 554, "Transaction failed" },
	{ "555 MAIL FROM/RCPT TO parameters not recognized or not "
	    "implemented", 555, "MAIL FROM/RCPT TO parameters not recognized "
	    "or not implemented" },
};

static void
test_rfc5321_single_lines(void **state)
{
	struct sk_reply_parser *p = *state;
	char buf[256];
	size_t i;

	/* One parser for all of them: each DONE starts the next reply. */
	for (i = 0; i < sizeof(rfc5321_replies) / sizeof(rfc5321_replies[0]);
	    i++) {
		snprintf(buf, sizeof(buf), "%s\r\n", rfc5321_replies[i].line);
		parse_one(p, buf);
		assert_int_equal(p->reply.code, rfc5321_replies[i].code);
		assert_int_equal(p->reply.nlines, 1);
		assert_string_equal(p->reply.text, rfc5321_replies[i].text);
		assert_string_equal(p->reply.enhanced, "");
	}
}

/* RFC 5321 §3.5.4, §3.5.2 and Appendix D.1 multi-line replies. */
static void
test_rfc5321_more_multiline(void **state)
{
	struct sk_reply_parser *p = *state;

	parse_one(p, "553- Ambiguous; Possibilities are\r\n"
	    "553- Joe Smith <jsmith@foo.com>\r\n"
	    "553- Harry Smith <hsmith@foo.com>\r\n"
	    "553 Melvin Smith <dweep@foo.com>\r\n");
	assert_int_equal(p->reply.code, 553);
	assert_int_equal(p->reply.nlines, 4);
	expect_line(&p->reply, 0, " Ambiguous; Possibilities are");
	expect_line(&p->reply, 3, "Melvin Smith <dweep@foo.com>");

	parse_one(p, "553-Ambiguous; Possibilities are\r\n"
	    "553-<jsmith@foo.com>\r\n"
	    "553-<hsmith@foo.com>\r\n"
	    "553 <dweep@foo.com>\r\n");
	assert_int_equal(p->reply.nlines, 4);
	expect_line(&p->reply, 2, "<hsmith@foo.com>");

	parse_one(p, "250-Jon Postel <Postel@isi.edu>\r\n"
	    "250-Fred Fonebone <Fonebone@physics.foo-u.edu>\r\n"
	    "250 Sam Q. Smith <SQSmith@specific.generic.com>\r\n");
	assert_int_equal(p->reply.nlines, 3);
	expect_line(&p->reply, 1, "Fred Fonebone <Fonebone@physics.foo-u.edu>");

	parse_one(p, "250-foo.com greets bar.com\r\n"
	    "250-8BITMIME\r\n"
	    "250-SIZE\r\n"
	    "250-DSN\r\n"
	    "250 HELP\r\n");
	assert_int_equal(p->reply.code, 250);
	assert_int_equal(p->reply.nlines, 5);
	assert_string_equal(p->reply.text,
	    "foo.com greets bar.com\n8BITMIME\nSIZE\nDSN\nHELP");
}

/* RFC 2034 §6 example, RFC 3463 codes. */
static void
test_enhanced_codes(void **state)
{
	static const struct {
		const char *reply;
		int code;
		const char *enhanced;
		const char *text;
	} cases[] = {
		{ "250 2.1.0 Originator <ned@ymir.claremont.edu> ok\r\n", 250,
		    "2.1.0", "2.1.0 Originator <ned@ymir.claremont.edu> ok" },
		{ "550 5.1.1 Mailbox \"nosuchuser\" does not exist\r\n", 550,
		    "5.1.1", "5.1.1 Mailbox \"nosuchuser\" does not exist" },
		{ "551-5.7.1 Forwarding to remote hosts disabled\r\n"
		    "551 5.7.1 Select another host to act as your "
		    "forwarder\r\n",
		    551, "5.7.1", "5.7.1 Forwarding to remote hosts disabled\n"
		    "5.7.1 Select another host to act as your forwarder" },
		{ "250 2.1.5 Recipient <ned@ymir.claremont.edu> ok\r\n", 250,
		    "2.1.5", "2.1.5 Recipient <ned@ymir.claremont.edu> ok" },
		{ "250 2.6.0 Message accepted\r\n", 250, "2.6.0",
		    "2.6.0 Message accepted" },
		{ "221 2.0.0 Goodbye\r\n", 221, "2.0.0", "2.0.0 Goodbye" },
		{ "452 4.2.2 Mailbox full\r\n", 452, "4.2.2",
		    "4.2.2 Mailbox full" },
		{ "552 5.3.4 Message too big for system\r\n", 552, "5.3.4",
		    "5.3.4 Message too big for system" },
		{ "421 4.4.2 Connection dropped\r\n", 421, "4.4.2",
		    "4.4.2 Connection dropped" },
		{ "554 5.7.1 <x@example.org>: Relay access denied\r\n", 554,
		    "5.7.1", "5.7.1 <x@example.org>: Relay access denied" },
		/* Gmail's long multi-line reply: the code on the first line. */
		{ "534-5.7.14 <https://accounts.google.com/signin/continue>\r\n"
		    "534-5.7.14 Please log in with your web browser\r\n"
		    "534 5.7.14 Learn more at https://support.google.com\r\n",
		    534, "5.7.14", "5.7.14 <https://accounts.google.com/signin/"
		    "continue>\n5.7.14 Please log in with your web browser\n"
		    "5.7.14 Learn more at https://support.google.com" },
		{ "250 2.0.0\r\n", 250, "2.0.0", "2.0.0" },
		/* Not enhanced codes: left in the text, enhanced "". */
		{ "250 2.0.0.1 is my address\r\n", 250, "",
		    "2.0.0.1 is my address" },
		{ "550 2.0.0 class differs from the reply code\r\n", 550, "",
		    "2.0.0 class differs from the reply code" },
		{ "250 3.0.0 no class 3\r\n", 250, "", "3.0.0 no class 3" },
		{ "250-mail.example.com Hello\r\n"
		    "250 2.0.0 second line\r\n", 250, "",
		    "mail.example.com Hello\n2.0.0 second line" },
	};
	struct sk_reply_parser *p = *state;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_one(p, cases[i].reply);
		assert_int_equal(p->reply.code, cases[i].code);
		assert_string_equal(p->reply.enhanced, cases[i].enhanced);
		assert_string_equal(p->reply.text, cases[i].text);
	}
}

static void
test_enhanced_parse(void **state)
{
	static const struct {
		const char *s;
		size_t ret;
		const char *out;
	} cases[] = {
		{ "5.7.1 Relay denied", 6, "5.7.1" },
		{ "5.7.1", 5, "5.7.1" },
		{ "2.0.0  two spaces", 6, "2.0.0" },
		{ "4.999.999 x", 10, "4.999.999" },
		{ "5.7.14 x", 7, "5.7.14" },
		{ "2.10.0", 6, "2.10.0" },
		{ "3.0.0 x", 0, "" },
		{ "1.0.0", 0, "" },
		{ "5.1000.1", 0, "" },
		{ "5.1.1000", 0, "" },
		{ "5.01.1", 0, "" },	/* RFC 3463 §2: no leading zeros */
		{ "5.1.01", 0, "" },
		{ "5..1", 0, "" },
		{ "5.1.", 0, "" },
		{ "5.1", 0, "" },
		{ "5.1.1.", 0, "" },
		{ "5.1.1:", 0, "" },
		{ "5.1.1a", 0, "" },
		{ " 5.1.1", 0, "" },
		{ "55.1.1", 0, "" },
		{ "", 0, "" },
	};
	char out[SK_ENHANCED_MAX];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out[0] = '\0';
		if (sk_enhanced_parse(cases[i].s, strlen(cases[i].s), out) !=
		    cases[i].ret)
			fail_msg("\"%s\"", cases[i].s);
		assert_string_equal(out, cases[i].out);
	}
	/* len bounds the scan: a NUL-free buffer that ends mid-code */
	assert_int_equal(sk_enhanced_parse("5.7.1 x", 3, out), 0);
	assert_int_equal(sk_enhanced_parse("5.7.12", 5, out), 5);
	assert_string_equal(out, "5.7.1");
}

static void
test_code_alone_and_empty_text(void **state)
{
	struct sk_reply_parser *p = *state;

	parse_one(p, "250\r\n");
	assert_int_equal(p->reply.code, 250);
	assert_int_equal(p->reply.nlines, 1);
	assert_int_equal(p->reply.len, 0);
	assert_string_equal(p->reply.text, "");
	expect_line(&p->reply, 0, "");

	parse_one(p, "250 \r\n");
	assert_int_equal(p->reply.nlines, 1);
	assert_string_equal(p->reply.text, "");

	parse_one(p, "354-\r\n354\n");
	assert_int_equal(p->reply.code, 354);
	assert_int_equal(p->reply.nlines, 2);
	assert_string_equal(p->reply.text, "\n");
	expect_line(&p->reply, 0, "");
	expect_line(&p->reply, 1, "");
}

static void
test_bare_lf(void **state)
{
	struct sk_reply_parser *p = *state;

	parse_one(p, "250-First line\n250-Second line\r\n"
	    "250-234 Text beginning with numbers\n250 The last line\n");
	check_multiline(&p->reply);
	parse_one(p, "220 ok\n");
	assert_string_equal(p->reply.text, "ok");
}

/* The same reply, cut in two at every offset, then byte by byte. */
static void
test_split_at_every_offset(void **state)
{
	struct sk_reply_parser *p = *state;
	size_t len = strlen(multiline), k, used, total;
	int rv;

	for (k = 0; k <= len; k++) {
		sk_reply_parser_init(p);
		rv = sk_reply_parse(p, multiline, k, &used, NULL);
		if (k < len) {
			assert_int_equal(rv, SK_REPLY_MORE);
			assert_int_equal(used, k);
			rv = sk_reply_parse(p, multiline + k, len - k, &used,
			    NULL);
			assert_int_equal(used, len - k);
		} else
			assert_int_equal(used, len);
		assert_int_equal(rv, SK_REPLY_DONE);
		check_multiline(&p->reply);
	}

	sk_reply_parser_init(p);
	for (k = 0, total = 0; k < len; k++) {
		rv = sk_reply_parse(p, multiline + k, 1, &used, NULL);
		assert_int_equal(used, 1);
		total += used;
		assert_int_equal(rv, k + 1 < len ? SK_REPLY_MORE :
		    SK_REPLY_DONE);
	}
	assert_int_equal(total, len);
	check_multiline(&p->reply);
}

static void
test_two_replies_in_one_buffer(void **state)
{
	struct sk_reply_parser *p = *state;
	const char buf[] =
	    "250 2.1.0 Ok\r\n550-5.1.1 No\r\n550 5.1.1 such\r\n354";
	size_t len = sizeof(buf) - 1, used, off = 0;

	assert_int_equal(sk_reply_parse(p, buf, len, &used, NULL),
	    SK_REPLY_DONE);
	assert_int_equal(used, 14);
	assert_int_equal(p->reply.code, 250);
	assert_string_equal(p->reply.enhanced, "2.1.0");
	off += used;

	assert_int_equal(sk_reply_parse(p, buf + off, len - off, &used, NULL),
	    SK_REPLY_DONE);
	assert_int_equal(p->reply.code, 550);
	assert_string_equal(p->reply.enhanced, "5.1.1");
	assert_string_equal(p->reply.text, "5.1.1 No\n5.1.1 such");
	off += used;

	/* A partial third reply is kept until its line ends. */
	assert_int_equal(sk_reply_parse(p, buf + off, len - off, &used, NULL),
	    SK_REPLY_MORE);
	assert_int_equal(used, 3);
	assert_int_equal(p->reply.nlines, 0);
	assert_int_equal(sk_reply_parse(p, " go\r\n", 5, &used, NULL),
	    SK_REPLY_DONE);
	assert_int_equal(p->reply.code, 354);
	assert_string_equal(p->reply.text, "go");

	/* An empty feed after DONE starts a new, empty reply. */
	assert_int_equal(sk_reply_parse(p, "", 0, &used, NULL), SK_REPLY_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(p->reply.nlines, 0);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"25O ok\r\n",		/* non-digit code */
		"abc\r\n",
		"ok\r\n",
		"25\r\n",		/* short code */
		"\r\n",			/* empty line */
		"\n",
		" 250 ok\r\n",
		"600 too high\r\n",
		"199 preliminary\r\n",
		"100 x\r\n",
		"099 x\r\n",
		"260 second digit over 5\r\n",
		"290 x\r\n",
		"2500 four digits\r\n",
		"250_ok\r\n",		/* bad separator */
		"250\tok\r\n",
		"250:ok\r\n",
		"250-a\r\n251 b\r\n",	/* continuation, another code */
		"250-a\r\n550 b\r\n",
		"250-a\r\n250-b\r\n25 c\r\n",
		"250 a\rb\r\n",		/* bare CR inside */
		"250 a\r\r\n",
		"HTTP/1.1 400 Bad Request\r\n",
	};
	struct sk_reply_parser *p = *state;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(p, bad[i], strlen(bad[i]));
	parse_bad(p, "250 a\0b\r\n", 9);
}

static void
test_error_is_sticky(void **state)
{
	struct sk_reply_parser *p = *state;
	struct sk_error err;
	size_t used;

	parse_bad(p, "999\r\n", 5);
	assert_int_equal(sk_reply_parse(p, "250 ok\r\n", 8, &used, &err),
	    SK_REPLY_ERROR);
	assert_int_equal(err.kind, SK_ERR_PROTOCOL);
	assert_int_equal(used, 0);
	sk_reply_parser_init(p);
	parse_one(p, "250 ok\r\n");
	/* err may be NULL */
	sk_reply_parser_init(p);
	assert_int_equal(sk_reply_parse(p, "x\r\n", 3, &used, NULL),
	    SK_REPLY_ERROR);
}

/* A line of exactly n octets, line end included. */
static char *
make_line(const char *prefix, size_t n, const char *eol)
{
	size_t plen = strlen(prefix), elen = strlen(eol);
	char *s;

	assert_true(n >= plen + elen);
	s = malloc(n + 1);
	assert_non_null(s);
	memcpy(s, prefix, plen);
	memset(s + plen, 'x', n - plen - elen);
	memcpy(s + n - elen, eol, elen);
	s[n] = '\0';
	return s;
}

static void
test_line_limit(void **state)
{
	struct sk_reply_parser *p = *state;
	char *s;
	size_t used;

	s = make_line("250 ", SK_REPLY_LINE_MAX, "\r\n");
	parse_one(p, s);
	assert_int_equal(p->reply.len, SK_REPLY_LINE_MAX - 6);
	free(s);
	s = make_line("250 ", SK_REPLY_LINE_MAX, "\n");
	parse_one(p, s);
	assert_int_equal(p->reply.len, SK_REPLY_LINE_MAX - 5);
	free(s);

	s = make_line("250 ", SK_REPLY_LINE_MAX + 1, "\r\n");
	parse_bad(p, s, strlen(s));
	free(s);
	/* Too long is known before the line ends. */
	s = make_line("250 ", SK_REPLY_LINE_MAX, "");
	parse_bad(p, s, strlen(s));
	free(s);
	/* ...also when it arrives in pieces. */
	s = make_line("250 ", SK_REPLY_LINE_MAX + 1, "\r\n");
	sk_reply_parser_init(p);
	assert_int_equal(sk_reply_parse(p, s, 1000, &used, NULL),
	    SK_REPLY_MORE);
	assert_int_equal(sk_reply_parse(p, s + 1000, 1000, &used, NULL),
	    SK_REPLY_MORE);
	assert_int_equal(sk_reply_parse(p, s + 2000, strlen(s) - 2000, &used,
	    NULL), SK_REPLY_ERROR);
	free(s);
}

static void
test_lines_limit(void **state)
{
	struct sk_reply_parser *p = *state;
	char *buf;
	size_t i, n, off;

	n = (SK_REPLY_LINES_MAX + 1) * 8 + 1;
	buf = malloc(n);
	assert_non_null(buf);

	for (i = 0, off = 0; i < SK_REPLY_LINES_MAX - 1; i++)
		off += (size_t)snprintf(buf + off, n - off, "250-%03zu\n", i);
	off += (size_t)snprintf(buf + off, n - off, "250 end\n");
	sk_reply_parser_init(p);
	parse_one(p, buf);
	assert_int_equal(p->reply.nlines, SK_REPLY_LINES_MAX);
	expect_line(&p->reply, SK_REPLY_LINES_MAX - 1, "end");
	expect_line(&p->reply, 42, "042");

	for (i = 0, off = 0; i < SK_REPLY_LINES_MAX; i++)
		off += (size_t)snprintf(buf + off, n - off, "250-%03zu\n", i);
	off += (size_t)snprintf(buf + off, n - off, "250 end\n");
	parse_bad(p, buf, off);
	free(buf);
}

static void
test_text_limit(void **state)
{
	struct sk_reply_parser *p = *state;
	size_t i, used, textlen = 0;
	char *s;

	/* 8 full lines, then one that fills the text to the last octet. */
	sk_reply_parser_init(p);
	s = make_line("250-", SK_REPLY_LINE_MAX, "\r\n");
	for (i = 0; i < 8; i++) {
		assert_int_equal(sk_reply_parse(p, s, strlen(s), &used, NULL),
		    SK_REPLY_MORE);
		textlen += (i > 0) + SK_REPLY_LINE_MAX - 6;
	}
	assert_int_equal(p->reply.len, textlen);
	free(s);
	s = make_line("250 ", 4 + (SK_REPLY_TEXT_MAX - 1 - textlen - 1) + 2,
	    "\r\n");
	parse_one(p, s);
	assert_int_equal(p->reply.len, SK_REPLY_TEXT_MAX - 1);
	assert_int_equal(strlen(p->reply.text), SK_REPLY_TEXT_MAX - 1);
	free(s);

	/* One octet more is refused. */
	sk_reply_parser_init(p);
	s = make_line("250-", SK_REPLY_LINE_MAX, "\r\n");
	for (i = 0; i < 8; i++)
		assert_int_equal(sk_reply_parse(p, s, strlen(s), &used, NULL),
		    SK_REPLY_MORE);
	free(s);
	s = make_line("250 ", 4 + (SK_REPLY_TEXT_MAX - textlen - 1) + 2,
	    "\r\n");
	assert_int_equal(sk_reply_parse(p, s, strlen(s), &used, NULL),
	    SK_REPLY_ERROR);
	free(s);
}

static void
test_join(void **state)
{
	struct sk_reply_parser *p = *state;
	char out[12];

	parse_one(p, "550-5.1.1 No\r\n550 5.1.1 such user\r\n");
	sk_reply_join(&p->reply, out, sizeof(out));
	assert_string_equal(out, "5.1.1 No 5.");	/* cut, NUL-ended */
	sk_reply_join(&p->reply, out, 1);
	assert_string_equal(out, "");
	sk_reply_join(&p->reply, out, 0);	/* nothing written */
	parse_one(p, "250\r\n");
	sk_reply_join(&p->reply, out, sizeof(out));
	assert_string_equal(out, "");
}

static void
test_error_set_reply(void **state)
{
	struct sk_reply_parser *p = *state;
	struct sk_error err;

	parse_one(p, "451-4.3.0 Try\r\n451 4.3.0 later\r\n");
	sk_error_set_reply(&err, SK_STAGE_RCPT, &p->reply, "RCPT TO:<%s>",
	    "a@b.example");
	assert_int_equal(err.code, 451);
	assert_string_equal(err.enhanced, "4.3.0");
	assert_string_equal(err.server_text, "4.3.0 Try 4.3.0 later");
	assert_true(sk_error_is_temporary(&err));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_rfc5321_multiline),
		T(test_rfc5321_single_lines),
		T(test_rfc5321_more_multiline),
		T(test_enhanced_codes),
		T(test_enhanced_parse),
		T(test_code_alone_and_empty_text),
		T(test_bare_lf),
		T(test_split_at_every_offset),
		T(test_two_replies_in_one_buffer),
		T(test_malformed),
		T(test_error_is_sticky),
		T(test_line_limit),
		T(test_lines_limit),
		T(test_text_limit),
		T(test_join),
		T(test_error_set_reply),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
