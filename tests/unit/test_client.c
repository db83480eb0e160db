/*
 * Unit tests for the client engine: no sockets, scripted server bytes, the
 * exact bytes the engine sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpkit/client.h"

struct fixture {
	struct sk_client *c;
	char trace[16384];
	size_t trace_len;
};

static void
capture(void *arg, enum sk_trace_kind kind, const char *text, size_t len)
{
	struct fixture *f = arg;
	int n;

	n = snprintf(f->trace + f->trace_len, sizeof(f->trace) - f->trace_len,
	    "%s %.*s\n", sk_trace_kind_name(kind), (int)len, text);
	if (n > 0 && (size_t)n < sizeof(f->trace) - f->trace_len)
		f->trace_len += (size_t)n;
}

static struct fixture *
setup_with(struct sk_client_config *cfg)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	cfg->helo_name = "client.test";
	cfg->trace.fn = capture;
	cfg->trace.arg = f;
	f->c = sk_client_new(cfg, NULL);
	assert_non_null(f->c);
	return f;
}

static void
teardown_f(struct fixture *f)
{
	sk_client_free(f->c);
	free(f);
}

static void
feed(struct fixture *f, const char *s)
{
	(void)sk_client_feed(f->c, s, strlen(s));
}

static void
expect_sent(struct fixture *f, const char *want)
{
	size_t len;
	const char *out = sk_client_output(f->c, &len);

	if (len != strlen(want) || memcmp(out, want, len) != 0)
		fail_msg("sent \"%.*s\", expected \"%s\"", (int)len, out, want);
	sk_client_sent(f->c, len);
}

static void
expect_nothing_sent(struct fixture *f)
{
	size_t len;
	const char *out = sk_client_output(f->c, &len);

	if (len != 0)
		fail_msg("unexpectedly sent \"%.*s\"", (int)len, out);
}

static struct sk_event
expect_event(struct fixture *f, enum sk_event_type type)
{
	struct sk_event ev;

	if (!sk_client_next_event(f->c, &ev))
		fail_msg("no event, expected %s", sk_event_name(type));
	if (ev.type != type)
		fail_msg("event %s, expected %s (%s)", sk_event_name(ev.type),
		    sk_event_name(type), ev.detail.message);
	return ev;
}

static void
expect_no_event(struct fixture *f)
{
	struct sk_event ev;

	if (sk_client_next_event(f->c, &ev))
		fail_msg("unexpected event %s", sk_event_name(ev.type));
}

/* Greeting and EHLO with the given capability lines. */
static void
establish(struct fixture *f, const char *caps)
{
	char reply[1024];

	feed(f, "220 mx.test ESMTP\r\n");
	expect_sent(f, "EHLO client.test\r\n");
	(void)snprintf(reply, sizeof(reply), "%s", caps);
	feed(f, reply);
	expect_event(f, SK_EV_READY);
	assert_int_equal(sk_client_phase(f->c), SK_PHASE_READY);
}

static const char *const one_rcpt[] = { "bob@example.org" };

static long
submit(struct fixture *f, const char *from, const char *const *rcpts,
    size_t n)
{
	struct sk_envelope env;

	memset(&env, 0, sizeof(env));
	env.from = from;
	env.rcpts = rcpts;
	env.nrcpts = n;
	return sk_client_submit(f->c, &env, NULL);
}

/* An envelope-only transaction: MAIL and RCPT, then RSET. */
static long
submit_check(struct fixture *f, const char *from, const char *const *rcpts,
    size_t n)
{
	struct sk_envelope env;

	memset(&env, 0, sizeof(env));
	env.from = from;
	env.rcpts = rcpts;
	env.nrcpts = n;
	env.no_data = true;
	return sk_client_submit(f->c, &env, NULL);
}

/* Nothing the engine said went past the envelope. */
static void
expect_no_data_traced(struct fixture *f)
{
	if (strstr(f->trace, "send DATA") != NULL ||
	    strstr(f->trace, "message data") != NULL)
		fail_msg("DATA was sent:\n%s", f->trace);
}

static void
body(struct fixture *f, const char *s)
{
	size_t len = strlen(s);

	assert_int_equal(sk_client_body(f->c, s, len), len);
}

static void
test_greeting_refused(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	feed(f, "554 5.3.2 mx.test no service for you\r\n");
	/* RFC 5321 §3.1: QUIT even after a refusing greeting. */
	expect_sent(f, "QUIT\r\n");
	ev = expect_event(f, SK_EV_ERROR);
	assert_int_equal(ev.detail.stage, SK_STAGE_GREETING);
	assert_int_equal(ev.detail.kind, SK_ERR_REPLY);
	assert_int_equal(ev.detail.code, 554);
	assert_string_equal(ev.detail.enhanced, "5.3.2");
	assert_non_null(strstr(ev.detail.message, "no service for you"));
	assert_int_equal(sk_client_phase(f->c), SK_PHASE_FAILED);
	teardown_f(f);
}

static void
test_ehlo_rejected_falls_back_to_helo(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);

	(void)state;
	feed(f, "220 mx.test ESMTP\r\n");
	expect_sent(f, "EHLO client.test\r\n");
	feed(f, "500 unrecognized\r\n");
	expect_sent(f, "HELO client.test\r\n");
	feed(f, "250 mx.test\r\n");
	expect_event(f, SK_EV_READY);
	assert_int_equal(sk_client_phase(f->c), SK_PHASE_READY);
	assert_false(sk_client_caps(f->c)->esmtp);
	teardown_f(f);
}

static void
test_capabilities_parsed(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	const struct sk_caps *caps;

	(void)state;
	establish(f, "250-mx.test greets client.test\r\n250-SIZE 35882577\r\n"
	    "250-8BITMIME\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-pipelining\r\n250-CHUNKING\r\n"
	    "250-SMTPUTF8\r\n250 DSN\r\n");
	caps = sk_client_caps(f->c);
	assert_true(caps->flags & SK_CAP_SIZE);
	assert_true(caps->size_max == 35882577);
	assert_true(caps->flags & SK_CAP_8BITMIME);
	assert_true(caps->flags & SK_CAP_PIPELINING);
	assert_true(caps->flags & SK_CAP_ENHANCEDSTATUSCODES);
	assert_true(caps->flags & SK_CAP_CHUNKING);
	assert_true(caps->flags & SK_CAP_SMTPUTF8);
	assert_true(caps->flags & SK_CAP_DSN);
	assert_false(caps->flags & SK_CAP_STARTTLS);
	assert_int_equal(caps->auth, SK_AUTH_BIT(SK_AUTH_LOGIN) |
	    SK_AUTH_BIT(SK_AUTH_PLAIN) | SK_AUTH_BIT(SK_AUTH_XOAUTH2));
	teardown_f(f);
}

static void
test_starttls_then_ehlo_again(void **state)
{
	struct sk_client_config cfg = { .tls_mode = SK_TLS_MODE_STARTTLS };
	struct fixture *f = setup_with(&cfg);

	(void)state;
	feed(f, "220 mx.test ESMTP\r\n");
	expect_sent(f, "EHLO client.test\r\n");
	feed(f, "250-mx.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n");
	expect_sent(f, "STARTTLS\r\n");
	expect_no_event(f);
	/* What follows the 220 in the same read is injected: dropped. */
	feed(f, "220 2.0.0 ready\r\n250 injected\r\n");
	expect_event(f, SK_EV_STARTTLS);
	assert_int_equal(sk_client_phase(f->c), SK_PHASE_TLS);
	assert_false(sk_client_wants_read(f->c));
	expect_nothing_sent(f);
	sk_client_tls_done(f->c);
	assert_true(sk_client_tls_active(f->c));
	/* RFC 3207 §4.2: capabilities are forgotten and asked again. */
	assert_int_equal(sk_client_caps(f->c)->flags, 0);
	expect_sent(f, "EHLO client.test\r\n");
	feed(f, "250-mx.test\r\n250 AUTH PLAIN\r\n");
	expect_event(f, SK_EV_READY);
	assert_true(sk_client_caps(f->c)->flags & SK_CAP_AUTH);
	assert_false(sk_client_caps(f->c)->flags & SK_CAP_STARTTLS);
	assert_non_null(strstr(f->trace, "discarded"));
	teardown_f(f);
}

static void
test_starttls_missing_is_an_error(void **state)
{
	struct sk_client_config cfg = { .tls_mode = SK_TLS_MODE_STARTTLS };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	feed(f, "220 mx.test ESMTP\r\n");
	expect_sent(f, "EHLO client.test\r\n");
	feed(f, "250-mx.test\r\n250 PIPELINING\r\n");
	ev = expect_event(f, SK_EV_ERROR);
	assert_int_equal(ev.detail.stage, SK_STAGE_TLS);
	assert_int_equal(ev.detail.kind, SK_ERR_UNSUPPORTED);
	assert_non_null(strstr(ev.detail.message, "STARTTLS"));
	/* Never fall back to plaintext: no MAIL, no AUTH. */
	expect_nothing_sent(f);
	teardown_f(f);
}

static void
test_pipelined_mixed_recipients(void **state)
{
	static const char *const rcpts[] = { "a@example.org",
		"b@example.org", "c@example.org" };
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	assert_int_equal(submit(f, "me@example.com", rcpts, 3), 0);
	/* One group: MAIL, every RCPT and DATA in a single write. */
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
	    "RCPT TO:<c@example.org>\r\nDATA\r\n");
	feed(f, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n"
	    "250 2.1.5 ok\r\n354 go ahead\r\n");
	ev = expect_event(f, SK_EV_RCPT);
	assert_true(ev.ok);
	assert_int_equal(ev.rcpt, 0);
	ev = expect_event(f, SK_EV_RCPT);
	assert_false(ev.ok);
	assert_int_equal(ev.rcpt, 1);
	assert_int_equal(ev.detail.code, 550);
	assert_string_equal(ev.detail.enhanced, "5.1.1");
	assert_string_equal(ev.detail.recipient, "b@example.org");
	ev = expect_event(f, SK_EV_RCPT);
	assert_true(ev.ok);
	ev = expect_event(f, SK_EV_BODY);
	assert_int_equal(ev.msg, 0);
	body(f, "Subject: hi\n\n.leading dot\nend\n");
	sk_client_body_end(f->c);
	expect_sent(f, "Subject: hi\r\n\r\n..leading dot\r\nend\r\n.\r\n");
	feed(f, "250 2.0.0 queued as 12345\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_true(ev.ok);
	assert_int_equal(ev.accepted, 2);
	assert_int_equal(ev.detail.code, 250);
	assert_non_null(strstr(ev.detail.server_text, "queued as 12345"));
	teardown_f(f);
}

static void
test_all_recipients_refused_then_rset(void **state)
{
	static const char *const rcpts[] = { "a@example.org",
		"b@example.org" };
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	assert_int_equal(submit(f, "me@example.com", rcpts, 2), 0);
	assert_int_equal(submit(f, "me@example.com", one_rcpt, 1), 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
	feed(f, "250 ok\r\n550 no\r\n551 no\r\n554 5.5.1 no valid recipients\r\n");
	expect_event(f, SK_EV_RCPT);
	expect_event(f, SK_EV_RCPT);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_false(ev.ok);
	assert_int_equal(ev.detail.stage, SK_STAGE_RCPT);
	assert_int_equal(ev.detail.code, 551);
	/* MAIL was accepted: the transaction is reset before the next one. */
	expect_sent(f, "RSET\r\nMAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<bob@example.org>\r\nDATA\r\n");
	feed(f, "250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	expect_event(f, SK_EV_RCPT);
	ev = expect_event(f, SK_EV_BODY);
	assert_int_equal(ev.msg, 1);
	teardown_f(f);
}

static void
test_next_message_follows_the_dot(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	submit(f, "me@example.com", one_rcpt, 1);
	submit(f, "me@example.com", one_rcpt, 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<bob@example.org>\r\nDATA\r\n");
	feed(f, "250 ok\r\n250 ok\r\n354 go\r\n");
	expect_event(f, SK_EV_RCPT);
	expect_event(f, SK_EV_BODY);
	body(f, "one");
	sk_client_body_end(f->c);
	/* RFC 2920 §3.1: the content may start a group; the next MAIL joins it. */
	expect_sent(f, "one\r\n.\r\nMAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<bob@example.org>\r\nDATA\r\n");
	feed(f, "250 first queued\r\n250 ok\r\n250 ok\r\n354 go\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.msg, 0);
	assert_true(ev.ok);
	expect_event(f, SK_EV_RCPT);
	ev = expect_event(f, SK_EV_BODY);
	assert_int_equal(ev.msg, 1);
	body(f, "two\r\n");
	sk_client_body_end(f->c);
	expect_sent(f, "two\r\n.\r\n");
	sk_client_quit(f->c);
	expect_nothing_sent(f);	/* QUIT waits for the last reply */
	feed(f, "250 second queued\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.msg, 1);
	assert_true(ev.ok);
	expect_sent(f, "QUIT\r\n");
	feed(f, "221 bye\r\n");
	expect_event(f, SK_EV_CLOSED);
	assert_int_equal(sk_client_phase(f->c), SK_PHASE_CLOSED);
	teardown_f(f);
}

static void
test_without_pipelining_one_command_at_a_time(void **state)
{
	static const char *const rcpts[] = { "a@example.org",
		"b@example.org" };
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);

	(void)state;
	establish(f, "250 mx.test\r\n");
	submit(f, "me@example.com", rcpts, 2);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n");
	feed(f, "250 ok\r\n");
	expect_sent(f, "RCPT TO:<a@example.org>\r\n");
	feed(f, "250 ok\r\n");
	expect_event(f, SK_EV_RCPT);
	expect_sent(f, "RCPT TO:<b@example.org>\r\n");
	feed(f, "250 ok\r\n");
	expect_event(f, SK_EV_RCPT);
	expect_sent(f, "DATA\r\n");
	teardown_f(f);
}

static void
test_unpipelined_mail_refused_sends_no_rcpt(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250 mx.test\r\n");
	submit(f, "me@example.com", one_rcpt, 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n");
	feed(f, "553 5.7.1 Sender address rejected: not owned by auth user\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_false(ev.ok);
	assert_int_equal(ev.detail.stage, SK_STAGE_MAIL);
	assert_int_equal(ev.detail.code, 553);
	expect_nothing_sent(f);
	teardown_f(f);
}

static void
test_size_limit_refused_locally(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_envelope env = { .from = "me@example.com",
		.rcpts = one_rcpt, .nrcpts = 1, .size = 2000 };
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 SIZE 1000\r\n");
	assert_int_equal(sk_client_submit(f->c, &env, NULL), 0);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_false(ev.ok);
	assert_int_equal(ev.detail.kind, SK_ERR_UNSUPPORTED);
	assert_non_null(strstr(ev.detail.message, "SIZE"));
	expect_nothing_sent(f);
	env.size = 900;
	sk_client_submit(f->c, &env, NULL);
	expect_sent(f, "MAIL FROM:<me@example.com> SIZE=900\r\n");
	teardown_f(f);
}

static void
test_8bit_needs_8bitmime(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_envelope env = { .from = "me@example.com",
		.rcpts = one_rcpt, .nrcpts = 1, .body_8bit = true };
	struct sk_event ev;

	(void)state;
	establish(f, "250 mx.test\r\n");
	sk_client_submit(f->c, &env, NULL);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_false(ev.ok);
	assert_non_null(strstr(ev.detail.message, "8BITMIME"));
	expect_nothing_sent(f);
	teardown_f(f);

	f = setup_with(&cfg);
	establish(f, "250-mx.test\r\n250 8BITMIME\r\n");
	sk_client_submit(f->c, &env, NULL);
	expect_sent(f, "MAIL FROM:<me@example.com> BODY=8BITMIME\r\n");
	feed(f, "250 ok\r\n");
	expect_sent(f, "RCPT TO:<bob@example.org>\r\n");
	feed(f, "250 ok\r\n");
	expect_event(f, SK_EV_RCPT);
	expect_sent(f, "DATA\r\n");
	feed(f, "354 go\r\n");
	expect_event(f, SK_EV_BODY);
	/* 8-bit octets pass untouched; only line ends change. */
	body(f, "caf\xc3\xa9\n");
	sk_client_body_end(f->c);
	expect_sent(f, "caf\xc3\xa9\r\n.\r\n");
	teardown_f(f);
}

static void
test_smtputf8(void **state)
{
	static const char *const rcpts[] = { "\xe7\x94\xa8\xe6\x88\xb7@example.org" };
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_envelope env = { .from = "me@example.com",
		.rcpts = rcpts, .nrcpts = 1, .smtputf8 = true };
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 8BITMIME\r\n");
	sk_client_submit(f->c, &env, NULL);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_false(ev.ok);
	assert_non_null(strstr(ev.detail.message, "SMTPUTF8"));
	/* It names the address, so that the user knows which to change. */
	assert_non_null(strstr(ev.detail.message,
	    "<\xe7\x94\xa8\xe6\x88\xb7@example.org> is not ASCII"));
	teardown_f(f);

	f = setup_with(&cfg);
	establish(f, "250-mx.test\r\n250 SMTPUTF8\r\n");
	sk_client_submit(f->c, &env, NULL);
	expect_sent(f, "MAIL FROM:<me@example.com> SMTPUTF8\r\n");
	teardown_f(f);
}

static void
test_auth_plain_redacted(void **state)
{
	struct sk_client_config cfg = { .tls_mode = SK_TLS_MODE_IMPLICIT,
		.user = "tim", .secret = "tanstaaftanstaaf" };
	struct fixture *f = setup_with(&cfg);

	(void)state;
	feed(f, "220 mx.test ESMTP\r\n");
	expect_sent(f, "EHLO client.test\r\n");
	feed(f, "250-mx.test\r\n250 AUTH LOGIN PLAIN CRAM-MD5\r\n");
	/* Over TLS, PLAIN is preferred (RFC 4616 example credentials). */
	expect_sent(f, "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
	feed(f, "235 2.7.0 Authentication successful\r\n");
	expect_event(f, SK_EV_READY);
	assert_int_equal(sk_client_auth_mech(f->c), SK_AUTH_PLAIN);
	assert_null(strstr(f->trace, "tanstaaf"));
	assert_null(strstr(f->trace, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"));
	assert_non_null(strstr(f->trace, "AUTH PLAIN <redacted>"));
	teardown_f(f);
}

static void
test_auth_login_steps(void **state)
{
	struct sk_client_config cfg = { .tls_mode = SK_TLS_MODE_IMPLICIT,
		.user = "tim", .secret = "secret", .auth_mech = SK_AUTH_LOGIN };
	struct fixture *f = setup_with(&cfg);

	(void)state;
	feed(f, "220 mx.test ESMTP\r\n");
	expect_sent(f, "EHLO client.test\r\n");
	feed(f, "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n");
	expect_sent(f, "AUTH LOGIN\r\n");
	feed(f, "334 VXNlcm5hbWU6\r\n");
	expect_sent(f, "dGlt\r\n");
	feed(f, "334 UGFzc3dvcmQ6\r\n");
	expect_sent(f, "c2VjcmV0\r\n");
	feed(f, "235 ok\r\n");
	expect_event(f, SK_EV_READY);
	assert_null(strstr(f->trace, "c2VjcmV0"));
	assert_null(strstr(f->trace, "dGlt"));
	teardown_f(f);
}

static void
test_auth_refused(void **state)
{
	struct sk_client_config cfg = { .tls_mode = SK_TLS_MODE_IMPLICIT,
		.user = "me@gmail.com", .secret = "wrong" };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	feed(f, "220 mx.test ESMTP\r\n");
	expect_sent(f, "EHLO client.test\r\n");
	feed(f, "250-mx.test\r\n250 AUTH PLAIN\r\n");
	expect_sent(f, "AUTH PLAIN AG1lQGdtYWlsLmNvbQB3cm9uZw==\r\n");
	feed(f, "535-5.7.8 Username and Password not accepted. For more "
	    "information, go to\r\n535 5.7.8  https://support.google.com/"
	    "mail/?p=BadCredentials\r\n");
	expect_sent(f, "QUIT\r\n");
	ev = expect_event(f, SK_EV_ERROR);
	assert_int_equal(ev.detail.stage, SK_STAGE_AUTH);
	assert_int_equal(ev.detail.code, 535);
	assert_string_equal(ev.detail.enhanced, "5.7.8");
	assert_non_null(strstr(ev.detail.server_text, "BadCredentials"));
	teardown_f(f);
}

static void
test_no_credentials_over_plaintext(void **state)
{
	struct sk_client_config cfg = { .tls_mode = SK_TLS_MODE_NONE,
		.user = "me", .secret = "pw" };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	feed(f, "220 mx.test ESMTP\r\n");
	expect_sent(f, "EHLO client.test\r\n");
	feed(f, "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n");
	ev = expect_event(f, SK_EV_ERROR);
	assert_int_equal(ev.detail.kind, SK_ERR_POLICY);
	assert_int_equal(ev.detail.stage, SK_STAGE_AUTH);
	expect_nothing_sent(f);
	teardown_f(f);

	cfg.allow_plaintext_auth = true;
	f = setup_with(&cfg);
	feed(f, "220 mx.test ESMTP\r\n");
	expect_sent(f, "EHLO client.test\r\n");
	feed(f, "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n");
	expect_sent(f, "AUTH PLAIN AG1lAHB3\r\n");
	teardown_f(f);
}

static void
test_auth_mech_not_offered(void **state)
{
	struct sk_client_config cfg = { .tls_mode = SK_TLS_MODE_IMPLICIT,
		.user = "me", .secret = "pw", .auth_mech = SK_AUTH_CRAM_MD5 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	feed(f, "220 mx.test ESMTP\r\n");
	expect_sent(f, "EHLO client.test\r\n");
	feed(f, "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n");
	ev = expect_event(f, SK_EV_ERROR);
	assert_int_equal(ev.detail.kind, SK_ERR_UNSUPPORTED);
	assert_non_null(strstr(ev.detail.message, "CRAM-MD5"));
	assert_non_null(strstr(ev.detail.message, "PLAIN LOGIN"));
	teardown_f(f);
}

static void
test_421_fails_every_message(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	submit(f, "me@example.com", one_rcpt, 1);
	submit(f, "me@example.com", one_rcpt, 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<bob@example.org>\r\nDATA\r\n");
	feed(f, "421 4.7.0 HL:ICC too many connections\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.msg, 0);
	assert_false(ev.ok);
	assert_int_equal(ev.detail.code, 421);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.msg, 1);
	assert_false(ev.ok);
	ev = expect_event(f, SK_EV_ERROR);
	assert_int_equal(ev.detail.code, 421);
	assert_true(sk_error_is_temporary(&ev.detail));
	/* No QUIT to a server that is closing. */
	expect_nothing_sent(f);
	teardown_f(f);
}

static void
test_eof_during_rcpt(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	submit(f, "me@example.com", one_rcpt, 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<bob@example.org>\r\nDATA\r\n");
	feed(f, "250 ok\r\n");
	assert_int_equal(sk_client_stage(f->c), SK_STAGE_RCPT);
	sk_client_abort(f->c, NULL);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_false(ev.ok);
	assert_int_equal(ev.detail.kind, SK_ERR_EOF);
	assert_int_equal(ev.detail.stage, SK_STAGE_RCPT);
	expect_event(f, SK_EV_ERROR);
	teardown_f(f);
}

static void
test_malformed_reply_is_protocol_error(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	feed(f, "HTTP/1.1 400 Bad Request\r\n");
	ev = expect_event(f, SK_EV_ERROR);
	assert_int_equal(ev.detail.kind, SK_ERR_PROTOCOL);
	assert_int_equal(ev.detail.stage, SK_STAGE_GREETING);
	teardown_f(f);
}

static void
test_unsolicited_reply(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250 mx.test\r\n");
	feed(f, "250 surprise\r\n");
	ev = expect_event(f, SK_EV_ERROR);
	assert_int_equal(ev.detail.code, 250);
	assert_non_null(strstr(ev.detail.message, "nobody asked"));
	teardown_f(f);
}

static void
test_replies_split_at_every_byte(void **state)
{
	const char *script = "220 mx.test ESMTP\r\n";
	const char *caps = "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n";
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	size_t i;

	(void)state;
	for (i = 0; script[i] != '\0'; i++)
		(void)sk_client_feed(f->c, script + i, 1);
	expect_sent(f, "EHLO client.test\r\n");
	for (i = 0; caps[i] != '\0'; i++)
		(void)sk_client_feed(f->c, caps + i, 1);
	expect_event(f, SK_EV_READY);
	assert_true(sk_client_caps(f->c)->size_max == 100);
	teardown_f(f);
}

static void
test_body_pauses_when_output_full(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	static char chunk[1 << 20];
	size_t used, total = 0, len;
	struct sk_event ev;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	for (size_t i = 99; i < sizeof(chunk); i += 100)
		chunk[i] = '\n';
	establish(f, "250 mx.test\r\n");
	submit(f, "me@example.com", one_rcpt, 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n");
	feed(f, "250 ok\r\n");
	expect_sent(f, "RCPT TO:<bob@example.org>\r\n");
	feed(f, "250 ok\r\n");
	expect_event(f, SK_EV_RCPT);
	expect_sent(f, "DATA\r\n");
	feed(f, "354 go\r\n");
	ev = expect_event(f, SK_EV_BODY);
	(void)ev;
	used = sk_client_body(f->c, chunk, sizeof(chunk));
	assert_true(used > 0 && used < sizeof(chunk));
	/* Nothing more until the output is written: memory stays bounded. */
	assert_int_equal(sk_client_body(f->c, chunk + used,
	    sizeof(chunk) - used), 0);
	total = used;
	while (total < sizeof(chunk)) {
		(void)sk_client_output(f->c, &len);
		assert_true(len <= 512 * 1024);
		sk_client_sent(f->c, len);
		total += sk_client_body(f->c, chunk + total,
		    sizeof(chunk) - total);
	}
	teardown_f(f);
}

/* RFC 3461: RET and ENVID on MAIL, NOTIFY on every RCPT, ENVID as xtext. */
static void
test_dsn_parameters_when_offered(void **state)
{
	static const char *const rcpts[] = { "a@example.org",
		"b@example.org" };
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_envelope env;

	(void)state;
	establish(f, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE\r\n"
	    "250 DSN\r\n");
	memset(&env, 0, sizeof(env));
	env.from = "me@example.com";
	env.rcpts = rcpts;
	env.nrcpts = 2;
	env.size = 42;
	env.dsn_notify = SK_DSN_SUCCESS | SK_DSN_FAILURE | SK_DSN_DELAY;
	env.dsn_ret = SK_DSN_RET_HDRS;
	env.dsn_envid = "q1+a=b";
	assert_int_equal(sk_client_submit(f->c, &env, NULL), 0);
	expect_sent(f, "MAIL FROM:<me@example.com> SIZE=42 RET=HDRS "
	    "ENVID=q1+2Ba+3Db\r\n"
	    "RCPT TO:<a@example.org> NOTIFY=SUCCESS,FAILURE,DELAY\r\n"
	    "RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE,DELAY\r\n"
	    "DATA\r\n");
	teardown_f(f);
}

static void
test_dsn_never_and_full(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_envelope env;

	(void)state;
	establish(f, "250-mx.test\r\n250-PIPELINING\r\n250 DSN\r\n");
	memset(&env, 0, sizeof(env));
	env.from = "";
	env.rcpts = one_rcpt;
	env.nrcpts = 1;
	env.dsn_notify = SK_DSN_NEVER;
	env.dsn_ret = SK_DSN_RET_FULL;
	assert_int_equal(sk_client_submit(f->c, &env, NULL), 0);
	expect_sent(f, "MAIL FROM:<> RET=FULL\r\n"
	    "RCPT TO:<bob@example.org> NOTIFY=NEVER\r\nDATA\r\n");
	teardown_f(f);
}

/* Without DSN on offer the message still goes, without the parameters. */
static void
test_dsn_left_out_when_not_offered(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_envelope env;

	(void)state;
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	memset(&env, 0, sizeof(env));
	env.from = "me@example.com";
	env.rcpts = one_rcpt;
	env.nrcpts = 1;
	env.dsn_notify = SK_DSN_FAILURE;
	env.dsn_ret = SK_DSN_RET_HDRS;
	env.dsn_envid = "abc";
	assert_int_equal(sk_client_submit(f->c, &env, NULL), 0);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<bob@example.org>\r\nDATA\r\n");
	assert_non_null(strstr(f->trace, "does not offer DSN"));
	teardown_f(f);
}

static void
test_dsn_envid_checked(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_envelope env;
	struct sk_error err;
	char longid[SK_DSN_ENVID_MAX + 2];

	(void)state;
	establish(f, "250-mx.test\r\n250 DSN\r\n");
	memset(&env, 0, sizeof(env));
	env.from = "me@example.com";
	env.rcpts = one_rcpt;
	env.nrcpts = 1;
	env.dsn_envid = "has space";
	assert_int_equal(sk_client_submit(f->c, &env, &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	env.dsn_envid = longid;
	assert_int_equal(sk_client_submit(f->c, &env, &err), -1);
	longid[SK_DSN_ENVID_MAX] = '\0';
	assert_int_equal(sk_client_submit(f->c, &env, &err), 0);
	/* without PIPELINING, MAIL goes out alone */
	expect_sent(f, "MAIL FROM:<me@example.com> ENVID=xxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxx\r\n");
	teardown_f(f);
}

static void
test_dsn_words_parsed(void **state)
{
	unsigned n;
	enum sk_dsn_ret r;

	(void)state;
	assert_int_equal(sk_dsn_notify_parse("never", &n), 0);
	assert_int_equal(n, SK_DSN_NEVER);
	assert_int_equal(sk_dsn_notify_parse("Success, FAILURE,delay", &n), 0);
	assert_int_equal(n, SK_DSN_SUCCESS | SK_DSN_FAILURE | SK_DSN_DELAY);
	assert_int_equal(sk_dsn_notify_parse("failure", &n), 0);
	assert_int_equal(n, SK_DSN_FAILURE);
	assert_int_equal(sk_dsn_notify_parse("never,success", &n), -1);
	assert_int_equal(sk_dsn_notify_parse("sometimes", &n), -1);
	assert_int_equal(sk_dsn_notify_parse("", &n), -1);
	assert_int_equal(sk_dsn_notify_parse("failure,", &n), -1);
	assert_int_equal(sk_dsn_ret_parse("hdrs", &r), 0);
	assert_int_equal(r, SK_DSN_RET_HDRS);
	assert_int_equal(sk_dsn_ret_parse("HEADERS", &r), 0);
	assert_int_equal(r, SK_DSN_RET_HDRS);
	assert_int_equal(sk_dsn_ret_parse("Full", &r), 0);
	assert_int_equal(r, SK_DSN_RET_FULL);
	assert_int_equal(sk_dsn_ret_parse("body", &r), -1);
}

/* ---- envelope-only transactions (no_data) ---- */

static void
test_check_pipelined_same_parameters(void **state)
{
	static const char *const rcpts[] = { "a@example.org",
		"b@example.org" };
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_envelope env;
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n"
	    "250-8BITMIME\r\n250-SMTPUTF8\r\n250 DSN\r\n");
	memset(&env, 0, sizeof(env));
	env.from = "me@example.com";
	env.rcpts = rcpts;
	env.nrcpts = 2;
	env.size = 1234;
	env.body_8bit = true;
	env.smtputf8 = true;
	env.dsn_notify = SK_DSN_FAILURE;
	env.no_data = true;
	assert_int_equal(sk_client_submit(f->c, &env, NULL), 0);
	/* One group, as for a message, with RSET where DATA would be. */
	expect_sent(f, "MAIL FROM:<me@example.com> SIZE=1234 BODY=8BITMIME "
	    "SMTPUTF8\r\n"
	    "RCPT TO:<a@example.org> NOTIFY=FAILURE\r\n"
	    "RCPT TO:<b@example.org> NOTIFY=FAILURE\r\n"
	    "RSET\r\n");
	feed(f, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n251 2.1.5 will forward\r\n");
	ev = expect_event(f, SK_EV_RCPT);
	assert_true(ev.ok);
	assert_int_equal(ev.rcpt, 0);
	ev = expect_event(f, SK_EV_RCPT);
	assert_true(ev.ok);
	assert_int_equal(ev.rcpt, 1);
	/* The envelope is answered: the result needs nothing more. */
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.msg, 0);
	assert_true(ev.ok);
	assert_int_equal(ev.result, SK_MSG_CHECKED);
	assert_string_equal(sk_msg_result_name(ev.result), "checked");
	assert_int_equal(ev.accepted, 2);
	assert_int_equal(ev.detail.kind, SK_ERR_NONE);
	assert_int_equal(ev.detail.stage, SK_STAGE_RCPT);
	assert_int_equal(ev.detail.code, 251);
	expect_no_event(f);	/* never SK_EV_BODY */
	/* The RSET's reply is still due: QUIT waits for it. */
	assert_true(sk_client_wants_read(f->c));
	assert_int_equal(sk_client_stage(f->c), SK_STAGE_MAIL);
	sk_client_quit(f->c);
	expect_nothing_sent(f);
	feed(f, "250 2.0.0 reset\r\n");
	expect_no_event(f);
	expect_sent(f, "QUIT\r\n");
	feed(f, "221 bye\r\n");
	expect_event(f, SK_EV_CLOSED);
	expect_no_data_traced(f);
	teardown_f(f);
}

static void
test_check_unpipelined(void **state)
{
	static const char *const rcpts[] = { "a@example.org",
		"b@example.org" };
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250 mx.test\r\n");
	assert_int_equal(submit_check(f, "me@example.com", rcpts, 2), 0);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n");
	expect_nothing_sent(f);
	feed(f, "250 ok\r\n");
	expect_sent(f, "RCPT TO:<a@example.org>\r\n");
	feed(f, "250 ok\r\n");
	expect_event(f, SK_EV_RCPT);
	expect_sent(f, "RCPT TO:<b@example.org>\r\n");
	feed(f, "250 ok\r\n");
	expect_event(f, SK_EV_RCPT);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_true(ev.ok);
	assert_int_equal(ev.result, SK_MSG_CHECKED);
	assert_int_equal(ev.accepted, 2);
	expect_sent(f, "RSET\r\n");
	sk_client_quit(f->c);
	expect_nothing_sent(f);
	feed(f, "250 reset\r\n");
	expect_no_event(f);
	expect_sent(f, "QUIT\r\n");
	expect_no_data_traced(f);
	teardown_f(f);
}

static void
test_check_sender_refused(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	/* Unpipelined: no RCPT after the refusal, RSET all the same. */
	establish(f, "250 mx.test\r\n");
	submit_check(f, "me@example.com", one_rcpt, 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n");
	feed(f, "553 5.7.1 Sender address rejected: not owned by user\r\n");
	expect_sent(f, "RSET\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_false(ev.ok);
	assert_int_equal(ev.result, SK_MSG_FAILED);
	assert_int_equal(ev.detail.kind, SK_ERR_REPLY);
	assert_int_equal(ev.detail.stage, SK_STAGE_MAIL);
	assert_int_equal(ev.detail.code, 553);
	assert_string_equal(ev.detail.recipient, "me@example.com");
	expect_no_event(f);
	/* A server that hangs up after refusing: the refusal stands. */
	sk_client_abort(f->c, NULL);
	ev = expect_event(f, SK_EV_ERROR);
	assert_int_equal(ev.detail.kind, SK_ERR_EOF);
	expect_no_event(f);
	teardown_f(f);

	/* Pipelined: the RCPT went out; its reply says nothing new. */
	f = setup_with(&cfg);
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	submit_check(f, "me@example.com", one_rcpt, 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<bob@example.org>\r\nRSET\r\n");
	feed(f, "553 5.7.1 no\r\n503 5.5.1 need MAIL first\r\n250 reset\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_false(ev.ok);
	assert_int_equal(ev.result, SK_MSG_FAILED);
	assert_int_equal(ev.detail.stage, SK_STAGE_MAIL);
	assert_int_equal(ev.detail.code, 553);
	expect_no_event(f);
	expect_nothing_sent(f);
	expect_no_data_traced(f);
	teardown_f(f);
}

static void
test_check_one_of_two_refused(void **state)
{
	static const char *const rcpts[] = { "a@example.org",
		"b@example.org" };
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	submit_check(f, "me@example.com", rcpts, 2);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
	    "RSET\r\n");
	feed(f, "250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n"
	    "250 reset\r\n");
	ev = expect_event(f, SK_EV_RCPT);
	assert_int_equal(ev.rcpt, 0);
	assert_false(ev.ok);
	assert_int_equal(ev.detail.code, 550);
	assert_string_equal(ev.detail.recipient, "a@example.org");
	ev = expect_event(f, SK_EV_RCPT);
	assert_int_equal(ev.rcpt, 1);
	assert_true(ev.ok);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_true(ev.ok);
	assert_int_equal(ev.result, SK_MSG_CHECKED);
	assert_int_equal(ev.accepted, 1);
	expect_nothing_sent(f);
	expect_no_data_traced(f);
	teardown_f(f);
}

static void
test_check_all_refused(void **state)
{
	static const char *const rcpts[] = { "a@example.org",
		"b@example.org" };
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250 mx.test\r\n");
	submit_check(f, "me@example.com", rcpts, 2);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n");
	feed(f, "250 ok\r\n");
	expect_sent(f, "RCPT TO:<a@example.org>\r\n");
	feed(f, "550 5.1.1 no\r\n");
	expect_event(f, SK_EV_RCPT);
	expect_sent(f, "RCPT TO:<b@example.org>\r\n");
	feed(f, "551 5.1.6 moved\r\n");
	ev = expect_event(f, SK_EV_RCPT);
	assert_false(ev.ok);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_false(ev.ok);
	assert_int_equal(ev.result, SK_MSG_FAILED);
	assert_int_equal(ev.detail.stage, SK_STAGE_RCPT);
	assert_int_equal(ev.detail.code, 551);
	assert_non_null(strstr(ev.detail.message, "every recipient"));
	/* MAIL was accepted: the transaction is reset, as for a message. */
	expect_sent(f, "RSET\r\n");
	submit(f, "me@example.com", one_rcpt, 1);
	expect_nothing_sent(f);
	feed(f, "250 reset\r\n");
	/* That RSET closed it: the next MAIL needs no other. */
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n");
	expect_no_data_traced(f);
	teardown_f(f);
}

static void
test_check_421_on_rcpt(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	submit_check(f, "me@example.com", one_rcpt, 1);
	submit(f, "me@example.com", one_rcpt, 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<bob@example.org>\r\nRSET\r\n"
	    "MAIL FROM:<me@example.com>\r\nRCPT TO:<bob@example.org>\r\n"
	    "DATA\r\n");
	feed(f, "250 ok\r\n421 4.7.0 mx.test closing connection\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.msg, 0);
	assert_false(ev.ok);
	assert_int_equal(ev.result, SK_MSG_FAILED);
	assert_int_equal(ev.detail.stage, SK_STAGE_RCPT);
	assert_int_equal(ev.detail.code, 421);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.msg, 1);
	assert_false(ev.ok);
	ev = expect_event(f, SK_EV_ERROR);
	assert_int_equal(ev.detail.code, 421);
	assert_int_equal(sk_client_phase(f->c), SK_PHASE_FAILED);
	/* No RSET, no QUIT to a server that is closing. */
	expect_nothing_sent(f);
	teardown_f(f);

	/* Unpipelined: the 421 comes before RSET was ever sent. */
	f = setup_with(&cfg);
	establish(f, "250 mx.test\r\n");
	submit_check(f, "me@example.com", one_rcpt, 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n");
	feed(f, "250 ok\r\n");
	expect_sent(f, "RCPT TO:<bob@example.org>\r\n");
	feed(f, "421 4.3.2 shutting down\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.result, SK_MSG_FAILED);
	assert_int_equal(ev.detail.code, 421);
	expect_event(f, SK_EV_ERROR);
	expect_nothing_sent(f);
	teardown_f(f);
}

static void
test_check_then_message(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	assert_int_equal(submit_check(f, "me@example.com", one_rcpt, 1), 0);
	assert_int_equal(submit(f, "me@example.com", one_rcpt, 1), 1);
	/* RSET does not end a group (RFC 2920 §3.1): the message joins it. */
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<bob@example.org>\r\nRSET\r\n"
	    "MAIL FROM:<me@example.com>\r\nRCPT TO:<bob@example.org>\r\n"
	    "DATA\r\n");
	feed(f, "250 ok\r\n250 ok\r\n250 reset\r\n250 ok\r\n250 ok\r\n"
	    "354 go\r\n");
	ev = expect_event(f, SK_EV_RCPT);
	assert_int_equal(ev.msg, 0);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.msg, 0);
	assert_int_equal(ev.result, SK_MSG_CHECKED);
	ev = expect_event(f, SK_EV_RCPT);
	assert_int_equal(ev.msg, 1);
	ev = expect_event(f, SK_EV_BODY);
	assert_int_equal(ev.msg, 1);
	body(f, "hello\n");
	sk_client_body_end(f->c);
	expect_sent(f, "hello\r\n.\r\n");
	feed(f, "250 2.0.0 queued as 42\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.msg, 1);
	assert_true(ev.ok);
	assert_int_equal(ev.result, SK_MSG_SENT);
	assert_string_equal(sk_msg_result_name(ev.result), "sent");
	assert_non_null(strstr(ev.detail.server_text, "queued as 42"));
	teardown_f(f);
}

static void
test_message_then_check_unpipelined(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250 mx.test\r\n");
	submit(f, "me@example.com", one_rcpt, 1);
	submit_check(f, "you@example.com", one_rcpt, 1);
	submit(f, "me@example.com", one_rcpt, 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n");
	feed(f, "250 ok\r\n");
	expect_sent(f, "RCPT TO:<bob@example.org>\r\n");
	feed(f, "250 ok\r\n");
	expect_sent(f, "DATA\r\n");
	feed(f, "354 go\r\n");
	expect_event(f, SK_EV_RCPT);
	expect_event(f, SK_EV_BODY);
	body(f, "one\n");
	sk_client_body_end(f->c);
	expect_sent(f, "one\r\n.\r\n");
	feed(f, "250 queued\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.result, SK_MSG_SENT);
	expect_sent(f, "MAIL FROM:<you@example.com>\r\n");
	feed(f, "250 ok\r\n");
	expect_sent(f, "RCPT TO:<bob@example.org>\r\n");
	feed(f, "250 ok\r\n");
	expect_event(f, SK_EV_RCPT);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_int_equal(ev.msg, 1);
	assert_int_equal(ev.result, SK_MSG_CHECKED);
	expect_sent(f, "RSET\r\n");
	feed(f, "250 reset\r\n");
	/* The check left no transaction open: MAIL at once. */
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n");
	feed(f, "250 ok\r\n");
	expect_sent(f, "RCPT TO:<bob@example.org>\r\n");
	feed(f, "250 ok\r\n");
	expect_sent(f, "DATA\r\n");
	teardown_f(f);
}

static void
test_check_sender_only(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	/* A message still needs a recipient; a check of the sender not. */
	assert_int_equal(submit(f, "me@example.com", NULL, 0), -1);
	assert_int_equal(submit_check(f, "me@example.com", NULL, 0), 0);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\nRSET\r\n");
	feed(f, "250 2.1.0 ok\r\n250 reset\r\n");
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_true(ev.ok);
	assert_int_equal(ev.result, SK_MSG_CHECKED);
	assert_int_equal(ev.accepted, 0);
	assert_int_equal(ev.detail.stage, SK_STAGE_MAIL);
	assert_string_equal(ev.detail.enhanced, "2.1.0");
	expect_no_event(f);
	expect_nothing_sent(f);
	expect_no_data_traced(f);
	teardown_f(f);
}

static void
test_check_rset_refused(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_event ev;

	(void)state;
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	submit_check(f, "me@example.com", one_rcpt, 1);
	expect_sent(f, "MAIL FROM:<me@example.com>\r\n"
	    "RCPT TO:<bob@example.org>\r\nRSET\r\n");
	feed(f, "250 ok\r\n250 ok\r\n502 5.5.1 no RSET here\r\n");
	expect_event(f, SK_EV_RCPT);
	/* The envelope was checked; the session cannot go on. */
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_true(ev.ok);
	assert_int_equal(ev.result, SK_MSG_CHECKED);
	ev = expect_event(f, SK_EV_ERROR);
	assert_int_equal(ev.detail.code, 502);
	assert_int_equal(ev.detail.stage, SK_STAGE_MAIL);
	assert_non_null(strstr(ev.detail.message, "RSET"));
	assert_int_equal(sk_client_phase(f->c), SK_PHASE_FAILED);
	expect_sent(f, "QUIT\r\n");
	teardown_f(f);
}

static void
test_check_refused_locally(void **state)
{
	struct sk_client_config cfg = { 0 };
	struct fixture *f = setup_with(&cfg);
	struct sk_envelope env = { .from = "me@example.com",
		.rcpts = one_rcpt, .nrcpts = 1, .smtputf8 = true,
		.no_data = true };
	struct sk_event ev;

	(void)state;
	/* What the server cannot take is refused as for a message. */
	establish(f, "250-mx.test\r\n250 PIPELINING\r\n");
	assert_int_equal(sk_client_submit(f->c, &env, NULL), 0);
	ev = expect_event(f, SK_EV_MESSAGE);
	assert_false(ev.ok);
	assert_int_equal(ev.result, SK_MSG_FAILED);
	assert_int_equal(ev.detail.kind, SK_ERR_UNSUPPORTED);
	expect_nothing_sent(f);
	teardown_f(f);
}

static void
test_msg_result_names(void **state)
{
	(void)state;
	assert_string_equal(sk_msg_result_name(SK_MSG_FAILED), "failed");
	assert_string_equal(sk_msg_result_name(SK_MSG_SENT), "sent");
	assert_string_equal(sk_msg_result_name(SK_MSG_CHECKED), "checked");
	assert_string_equal(sk_msg_result_name(SK_MSG__COUNT), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_refused),
		cmocka_unit_test(test_ehlo_rejected_falls_back_to_helo),
		cmocka_unit_test(test_capabilities_parsed),
		cmocka_unit_test(test_starttls_then_ehlo_again),
		cmocka_unit_test(test_starttls_missing_is_an_error),
		cmocka_unit_test(test_pipelined_mixed_recipients),
		cmocka_unit_test(test_all_recipients_refused_then_rset),
		cmocka_unit_test(test_next_message_follows_the_dot),
		cmocka_unit_test(test_without_pipelining_one_command_at_a_time),
		cmocka_unit_test(test_unpipelined_mail_refused_sends_no_rcpt),
		cmocka_unit_test(test_size_limit_refused_locally),
		cmocka_unit_test(test_8bit_needs_8bitmime),
		cmocka_unit_test(test_smtputf8),
		cmocka_unit_test(test_auth_plain_redacted),
		cmocka_unit_test(test_auth_login_steps),
		cmocka_unit_test(test_auth_refused),
		cmocka_unit_test(test_no_credentials_over_plaintext),
		cmocka_unit_test(test_auth_mech_not_offered),
		cmocka_unit_test(test_421_fails_every_message),
		cmocka_unit_test(test_eof_during_rcpt),
		cmocka_unit_test(test_malformed_reply_is_protocol_error),
		cmocka_unit_test(test_unsolicited_reply),
		cmocka_unit_test(test_replies_split_at_every_byte),
		cmocka_unit_test(test_body_pauses_when_output_full),
		cmocka_unit_test(test_dsn_parameters_when_offered),
		cmocka_unit_test(test_dsn_never_and_full),
		cmocka_unit_test(test_dsn_left_out_when_not_offered),
		cmocka_unit_test(test_dsn_envid_checked),
		cmocka_unit_test(test_dsn_words_parsed),
		cmocka_unit_test(test_check_pipelined_same_parameters),
		cmocka_unit_test(test_check_unpipelined),
		cmocka_unit_test(test_check_sender_refused),
		cmocka_unit_test(test_check_one_of_two_refused),
		cmocka_unit_test(test_check_all_refused),
		cmocka_unit_test(test_check_421_on_rcpt),
		cmocka_unit_test(test_check_then_message),
		cmocka_unit_test(test_message_then_check_unpipelined),
		cmocka_unit_test(test_check_sender_only),
		cmocka_unit_test(test_check_rset_refused),
		cmocka_unit_test(test_check_refused_locally),
		cmocka_unit_test(test_msg_result_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
