/*
 * Unit tests for the server engine: scripted client bytes in, the exact
 * replies and body octets out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpkit/server.h"

struct fixture {
	struct sk_server *s;
	char body[200000];
	size_t body_len;
};

static struct fixture *
setup_with(struct sk_server_config *cfg)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	cfg->hostname = "mx.test";
	f->s = sk_server_new(cfg, NULL);
	assert_non_null(f->s);
	return f;
}

static struct fixture *
setup_default(void)
{
	struct sk_server_config cfg = { 0 };

	return setup_with(&cfg);
}

static void
teardown_f(struct fixture *f)
{
	sk_server_free(f->s);
	free(f);
}

static void
take_body(struct fixture *f)
{
	size_t len;
	const char *b = sk_server_body(f->s, &len);

	assert_true(f->body_len + len <= sizeof(f->body));
	memcpy(f->body + f->body_len, b, len);
	f->body_len += len;
	sk_server_body_taken(f->s, len);
}

/*
 * Feed s whole, in pieces of at most step octets (0: at once), taking the
 * body as it comes; stops at an event and returns the octets consumed.
 */
static size_t
feed_step(struct fixture *f, const char *s, size_t len, size_t step)
{
	size_t off = 0, n, piece;

	while (off < len) {
		size_t blen, olen;

		piece = step == 0 || len - off < step ? len - off : step;
		n = sk_server_feed(f->s, s + off, piece);
		off += n;
		(void)sk_server_body(f->s, &blen);
		take_body(f);
		if (n < piece && blen == 0) {
			/* stopped for an event, a reply, or the output */
			(void)sk_server_output(f->s, &olen);
			if (olen > 32 * 1024)
				sk_server_sent(f->s, olen);
			else
				break;
		}
	}
	return off;
}

static size_t
feed(struct fixture *f, const char *s)
{
	return feed_step(f, s, strlen(s), 0);
}

static void
expect_out(struct fixture *f, const char *want)
{
	size_t len;
	const char *out = sk_server_output(f->s, &len);

	if (len != strlen(want) || memcmp(out, want, len) != 0)
		fail_msg("replied \"%.*s\", expected \"%s\"", (int)len, out,
		    want);
	sk_server_sent(f->s, len);
}

static struct sk_server_event
expect_event(struct fixture *f, enum sk_server_event_type type)
{
	struct sk_server_event ev;

	if (!sk_server_next_event(f->s, &ev))
		fail_msg("no event, expected %s", sk_server_event_name(type));
	if (ev.type != type)
		fail_msg("event %s, expected %s", sk_server_event_name(ev.type),
		    sk_server_event_name(type));
	return ev;
}

static void
expect_no_event(struct fixture *f)
{
	struct sk_server_event ev;

	if (sk_server_next_event(f->s, &ev))
		fail_msg("unexpected event %s", sk_server_event_name(ev.type));
}

static void
expect_body(struct fixture *f, const char *want)
{
	if (f->body_len != strlen(want) || memcmp(f->body, want,
	    f->body_len) != 0)
		fail_msg("body \"%.*s\", expected \"%s\"", (int)f->body_len,
		    f->body, want);
	f->body_len = 0;
}

/* Greeting, EHLO, one sender and one recipient. */
static void
open_transaction(struct fixture *f)
{
	expect_out(f, "220 mx.test ESMTP smtpkit\r\n");
	feed(f, "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
	    "RCPT TO:<b@example.org>\r\n");
	expect_out(f, "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
	    "250 ENHANCEDSTATUSCODES\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
}

static void
test_one_message(void **state)
{
	struct fixture *f = setup_default();
	const struct sk_server_envelope *env;
	const char *msg = "DATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n";
	size_t n;

	(void)state;
	open_transaction(f);
	n = feed(f, msg);
	/* stopped right after the 354, for the driver to open its spool */
	assert_int_equal(n, 6);
	expect_out(f, "354 End data with <CR><LF>.<CR><LF>\r\n");
	expect_event(f, SK_SRV_EV_MESSAGE);
	env = sk_server_envelope(f->s);
	assert_non_null(env);
	assert_string_equal(env->helo, "client.test");
	assert_string_equal(env->from, "a@example.org");
	assert_int_equal(env->nrcpts, 1);
	assert_string_equal(env->rcpts[0], "b@example.org");
	n += feed(f, msg + n);
	expect_event(f, SK_SRV_EV_END);
	expect_body(f, "Subject: hi\r\n\r\nbody\r\n");
	/* nothing more until the driver answers */
	assert_int_equal(feed(f, msg + n), 0);
	expect_out(f, "");
	sk_server_reply(f->s, 250, "2.0.0", "Ok: queued as 1");
	expect_out(f, "250 2.0.0 Ok: queued as 1\r\n");
	assert_null(sk_server_envelope(f->s));
	feed(f, msg + n);
	expect_out(f, "221 2.0.0 mx.test Bye\r\n");
	expect_event(f, SK_SRV_EV_CLOSED);
	assert_true(sk_server_closed(f->s));
	/* after QUIT, input is swallowed */
	assert_int_equal(feed(f, "NOOP\r\n"), 6);
	expect_out(f, "");
	teardown_f(f);
}

static void
test_dot_unstuffing(void **state)
{
	struct fixture *f = setup_default();

	(void)state;
	open_transaction(f);
	feed(f, "DATA\r\n");
	expect_out(f, "354 End data with <CR><LF>.<CR><LF>\r\n");
	expect_event(f, SK_SRV_EV_MESSAGE);
	feed(f, "..leading\r\n.\r\r\n..\r\nmid.dle\r\n...\r\n.x\r\n.\r\n");
	expect_event(f, SK_SRV_EV_END);
	/* ".\r\r\n" is not the end: the dot goes, the stray CR stays */
	expect_body(f, ".leading\r\n\r\r\n.\r\nmid.dle\r\n..\r\nx\r\n");
	teardown_f(f);
}

/* The same body cut at every octet gives the same result. */
static void
test_split_at_every_octet(void **state)
{
	const char *script = "EHLO c\r\nMAIL FROM:<a@example.org>\r\n"
	    "RCPT TO:<b@example.org>\r\nDATA\r\n..x\r\n.\r\ny\r\n\r\n.\r\n";
	struct fixture *f;
	size_t n, len = strlen(script);

	(void)state;
	f = setup_default();
	n = feed_step(f, script, len, 1);
	expect_event(f, SK_SRV_EV_MESSAGE);
	n += feed_step(f, script + n, len - n, 1);
	/* the end of the body is the first lone dot; the rest waits */
	assert_int_equal(n, len - strlen("y\r\n\r\n.\r\n"));
	expect_event(f, SK_SRV_EV_END);
	expect_body(f, ".x\r\n");
	teardown_f(f);
}

static void
test_two_messages_one_session(void **state)
{
	struct fixture *f = setup_default();
	const char *s = "DATA\r\none\r\n.\r\nMAIL FROM:<>\r\n"
	    "RCPT TO:<c@example.org>\r\nRCPT TO:<Postmaster>\r\nDATA\r\n"
	    "two\r\n.\r\n";
	size_t n;
	struct sk_server_event ev;
	const struct sk_server_envelope *env;

	(void)state;
	open_transaction(f);
	n = feed(f, s);
	expect_event(f, SK_SRV_EV_MESSAGE);
	n += feed(f, s + n);
	ev = expect_event(f, SK_SRV_EV_END);
	assert_int_equal(ev.msg, 0);
	expect_body(f, "one\r\n");
	sk_server_reply(f->s, 250, NULL, "Ok");
	n += feed(f, s + n);
	ev = expect_event(f, SK_SRV_EV_MESSAGE);
	assert_int_equal(ev.msg, 1);
	env = sk_server_envelope(f->s);
	assert_string_equal(env->from, "");
	assert_int_equal(env->nrcpts, 2);
	assert_string_equal(env->rcpts[1], "Postmaster");
	n += feed(f, s + n);
	assert_int_equal(n, strlen(s));
	expect_event(f, SK_SRV_EV_END);
	expect_body(f, "two\r\n");
	sk_server_reply(f->s, 554, "5.7.1", "refused\r\nby upstream");
	expect_out(f, "354 End data with <CR><LF>.<CR><LF>\r\n250 Ok\r\n"
	    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n"
	    "554 5.7.1 refused  by upstream\r\n");
	teardown_f(f);
}

static void
test_sequence_errors(void **state)
{
	struct fixture *f = setup_default();

	(void)state;
	expect_out(f, "220 mx.test ESMTP smtpkit\r\n");
	feed(f, "MAIL FROM:<a@example.org>\r\n");
	expect_out(f, "503 5.5.1 Say EHLO or HELO first\r\n");
	feed(f, "HELO c.test\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
	expect_out(f, "250 mx.test\r\n503 5.5.1 Say MAIL first\r\n"
	    "503 5.5.1 Say MAIL first\r\n");
	feed(f, "MAIL FROM:<a@example.org>\r\nMAIL FROM:<a@example.org>\r\n"
	    "DATA\r\n");
	expect_out(f, "250 2.1.0 Ok\r\n503 5.5.1 A transaction is already "
	    "open; RSET it first\r\n554 5.5.1 No valid recipients\r\n");
	feed(f, "RSET\r\nRCPT TO:<b@example.org>\r\nNOOP whatever\r\n");
	expect_out(f, "250 2.0.0 Ok\r\n503 5.5.1 Say MAIL first\r\n"
	    "250 2.0.0 Ok\r\n");
	expect_no_event(f);
	teardown_f(f);
}

static void
test_syntax_errors(void **state)
{
	struct fixture *f = setup_default();

	(void)state;
	expect_out(f, "220 mx.test ESMTP smtpkit\r\n");
	feed(f, "EHLO\r\nhelo x\r\nMAIL TO:<a@example.org>\r\n"
	    "MAIL FROM:a@example.org\r\nMAIL FROM:<a@example.org> FOO=1\r\n"
	    "MAIL FROM:<not an address>\r\nMAIL FROM:<@r.example:a@example.org>"
	    " BODY=8BITMIME SIZE=10\r\nRCPT TO:<b@example.org> NOTIFY=NEVER\r\n"
	    "RCPT TO:<>\r\nRCPT TO:<zoë@example.org>\r\nDATA now\r\n"
	    "RSET x\r\nBDAT 10\r\nFROB\r\n\r\nVRFY bob\r\nHELP\r\n");
	expect_out(f, "501 5.5.4 Syntax: EHLO hostname\r\n"
	    "250 mx.test\r\n"
	    "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	    "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"
	    "555 5.5.4 MAIL parameter FOO is not recognized\r\n"
	    "553 5.1.7 \"not an address\" is not a valid address (it "
	    "contains a space; only a quoted local part may (\"john "
	    "doe\"@example.com))\r\n"
	    "250 2.1.0 Ok\r\n"
	    "555 5.5.4 RCPT parameters are not recognized\r\n"
	    "501 5.1.3 An empty recipient address\r\n"
	    "500 5.5.2 A command must be printable ASCII\r\n"
	    "501 5.5.4 Syntax: DATA\r\n"
	    "501 5.5.4 Syntax: RSET\r\n"
	    "502 5.5.1 BDAT is not implemented\r\n"
	    "500 5.5.2 Command not recognized\r\n"
	    "500 5.5.2 An empty command\r\n"
	    "252 2.5.0 Cannot VRFY; send the message and it will be tried\r\n"
	    "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP "
	    "QUIT\r\n");
	teardown_f(f);
}

static void
test_mail_parameters(void **state)
{
	struct fixture *f = setup_default();
	const struct sk_server_envelope *env;

	(void)state;
	expect_out(f, "220 mx.test ESMTP smtpkit\r\n");
	feed(f, "EHLO c\r\nMAIL FROM: <a@example.org> body=8bitmime "
	    "SIZE=1234\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
	expect_event(f, SK_SRV_EV_MESSAGE);
	env = sk_server_envelope(f->s);
	assert_true(env->body_8bit);
	assert_int_equal(env->size, 1234);
	teardown_f(f);
}

static void
test_line_too_long(void **state)
{
	struct fixture *f = setup_default();
	char *big = malloc(3 * SK_SERVER_LINE_MAX);
	size_t i;

	(void)state;
	expect_out(f, "220 mx.test ESMTP smtpkit\r\n");
	memcpy(big, "NOOP ", 5);
	for (i = 5; i < 3 * SK_SERVER_LINE_MAX - 3; i++)
		big[i] = 'x';
	memcpy(big + i, "\r\n", 3);
	/* in small pieces: the overflow is seen before the line ends */
	feed_step(f, big, strlen(big), 100);
	feed(f, "NOOP\r\n");
	expect_out(f, "500 5.5.2 Line too long (the limit is 2048 octets)\r\n"
	    "250 2.0.0 Ok\r\n");
	free(big);
	teardown_f(f);
}

static void
test_too_many_recipients(void **state)
{
	struct sk_server_config cfg = { 0 };
	struct fixture *f;

	(void)state;
	cfg.rcpt_max = 2;
	f = setup_with(&cfg);
	expect_out(f, "220 mx.test ESMTP smtpkit\r\n");
	feed(f, "HELO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<1@x.example>\r\n"
	    "RCPT TO:<2@x.example>\r\nRCPT TO:<3@x.example>\r\n");
	expect_out(f, "250 mx.test\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "250 2.1.5 Ok\r\n452 4.5.3 Too many recipients\r\n");
	teardown_f(f);
}

static void
test_size_limit(void **state)
{
	struct sk_server_config cfg = { 0 };
	struct fixture *f;

	(void)state;
	cfg.size_max = 8;
	f = setup_with(&cfg);
	expect_out(f, "220 mx.test ESMTP smtpkit\r\n");
	feed(f, "EHLO c\r\nMAIL FROM:<a@example.org> SIZE=9\r\n"
	    "MAIL FROM:<a@example.org> SIZE=8\r\nRCPT TO:<b@example.org>\r\n"
	    "DATA\r\n");
	expect_out(f, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 8\r\n"
	    "250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"
	    "552 5.3.4 The message is larger than the 8 octets this server "
	    "accepts\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "354 End data with <CR><LF>.<CR><LF>\r\n");
	expect_event(f, SK_SRV_EV_MESSAGE);
	feed(f, "0123456789\r\n.\r\nNOOP\r\n");
	expect_event(f, SK_SRV_EV_DISCARD);
	feed(f, "NOOP\r\n");
	expect_out(f, "552 5.3.4 The message is larger than the 8 octets this "
	    "server accepts\r\n250 2.0.0 Ok\r\n");
	expect_no_event(f);
	teardown_f(f);
}

/* Strict by default: only CRLF "." CRLF ends a body; a local pipe may
 * ask for LF too. */
static void
test_bare_lf(void **state)
{
	struct sk_server_config cfg = { 0 };
	struct fixture *f;

	(void)state;
	f = setup_default();
	open_transaction(f);
	feed(f, "DATA\r\n");
	expect_event(f, SK_SRV_EV_MESSAGE);
	feed(f, "a\n.\nb\r\n.\r\n");
	expect_event(f, SK_SRV_EV_END);
	expect_body(f, "a\n.\nb\r\n");
	teardown_f(f);

	cfg.lf_ends_line = true;
	f = setup_with(&cfg);
	expect_out(f, "220 mx.test ESMTP smtpkit\r\n");
	feed(f, "HELO c\nMAIL FROM:<a@example.org>\nRCPT TO:<b@example.org>\n"
	    "DATA\n");
	expect_event(f, SK_SRV_EV_MESSAGE);
	feed(f, "a\n..b\n.\nQUIT\n");
	expect_event(f, SK_SRV_EV_END);
	expect_body(f, "a\n.b\n");
	teardown_f(f);
}

static void
test_eof_inside_data(void **state)
{
	struct fixture *f = setup_default();

	(void)state;
	open_transaction(f);
	feed(f, "DATA\r\npart");
	expect_event(f, SK_SRV_EV_MESSAGE);
	feed(f, "ial\r\n");
	sk_server_eof(f->s);
	expect_event(f, SK_SRV_EV_DISCARD);
	expect_event(f, SK_SRV_EV_CLOSED);
	teardown_f(f);
}

static void
test_too_many_errors(void **state)
{
	struct fixture *f = setup_default();
	int i;

	(void)state;
	expect_out(f, "220 mx.test ESMTP smtpkit\r\n");
	for (i = 0; i < SK_SERVER_ERRORS_MAX - 1; i++)
		feed(f, "FROB\r\n");
	expect_no_event(f);
	feed(f, "FROB\r\nNOOP\r\n");
	expect_event(f, SK_SRV_EV_CLOSED);
	{
		size_t len;
		const char *out = sk_server_output(f->s, &len);

		assert_non_null(strstr(out, "421 4.7.0 mx.test Too many "
		    "errors, closing\r\n"));
		assert_null(strstr(out, "250"));
	}
	teardown_f(f);
}

/* A body larger than the engine's buffer streams through it. */
static void
test_large_body_streams(void **state)
{
	struct fixture *f = setup_default();
	size_t len = 150000, i;
	char *b = malloc(len + 8);

	(void)state;
	open_transaction(f);
	feed(f, "DATA\r\n");
	expect_event(f, SK_SRV_EV_MESSAGE);
	for (i = 0; i < len; i++)
		b[i] = i % 80 == 79 ? '\n' : (char)('a' + i % 26);
	memcpy(b + len, "\r\n.\r\n", 6);
	assert_int_equal(feed_step(f, b, len + 5, 0), len + 5);
	expect_event(f, SK_SRV_EV_END);
	assert_int_equal(f->body_len, len + 2);
	assert_memory_equal(f->body, b, len);
	free(b);
	teardown_f(f);
}

static void
test_reply_checked(void **state)
{
	struct fixture *f = setup_default();

	(void)state;
	open_transaction(f);
	feed(f, "DATA\r\n.\r\n");
	expect_out(f, "354 End data with <CR><LF>.<CR><LF>\r\n");
	expect_event(f, SK_SRV_EV_MESSAGE);
	feed(f, ".\r\n");
	expect_event(f, SK_SRV_EV_END);
	expect_body(f, "");
	/* a 3xx, a bad enhanced code: never a false success */
	sk_server_reply(f->s, 354, "2.0.0\r\nX", "go");
	expect_out(f, "451 go\r\n");
	sk_server_reply(f->s, 250, NULL, "late");
	expect_out(f, "");
	teardown_f(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_message),
		cmocka_unit_test(test_dot_unstuffing),
		cmocka_unit_test(test_split_at_every_octet),
		cmocka_unit_test(test_two_messages_one_session),
		cmocka_unit_test(test_sequence_errors),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_mail_parameters),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_too_many_recipients),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_eof_inside_data),
		cmocka_unit_test(test_too_many_errors),
		cmocka_unit_test(test_large_body_streams),
		cmocka_unit_test(test_reply_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
