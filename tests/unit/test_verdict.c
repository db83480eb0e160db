/*
 * tests/unit/test_verdict.c: the doctor's verdict, from facts built by
 * hand: every code that can be reached without a network, the rules
 * where issue 3 leaves a choice (documented in src/lib/verdict.c), the
 * known replies of a small providers file parsed from a string, and the
 * suggestion that goes with a working alternative.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <ares.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "smtpkit/doctor.h"
#include "smtpkit/providers.h"

static const char providers_text[] =
    "[provider testmail]\n"
    "name = Test Mail\n"
    "name_zh = 测试邮箱\n"
    "domains = testmail.example\n"
    "host = smtp.testmail.example\n"
    "port = 465 implicit\n"
    "port = 587 starttls\n"
    "recommended = 465\n"
    "auth = PLAIN LOGIN\n"
    "credential = app-password\n"
    "credential_help = Create an app password under Security, App "
    "passwords.\n"
    "credential_help_zh = 在“安全 → 应用密码”中创建应用密码。\n"
    "username = address\n"
    "sender = login\n"
    "help_url = https://help.testmail.example/smtp\n"
    "\n"
    "[provider keymail]\n"
    "name = Key Mail\n"
    "host = smtp.keymail.example\n"
    "port = 587 starttls\n"
    "credential = api-key\n"
    "username = apikey\n"
    "\n"
    "[reply testmail-app-password]\n"
    "provider = testmail\n"
    "code = 534\n"
    "enhanced = 5.7.9\n"
    "match = Application-specific password required\n"
    "verdict = AUTH_APP_PASSWORD_REQUIRED\n"
    "summary = Test Mail wants an app password for SMTP.\n"
    "summary_zh = 测试邮箱的 SMTP 需要应用密码。\n"
    "fix = Turn on two-step verification.\n"
    "fix = Create an app password and use it.\n"
    "fix_zh = 开启两步验证。\n"
    "fix_zh = 创建应用密码并使用它。\n"
    "\n"
    "[reply testmail-disabled]\n"
    "provider = testmail\n"
    "code = 535\n"
    "match = SMTP is disabled for this account\n"
    "verdict = AUTH_SERVICE_DISABLED\n"
    "summary = SMTP is switched off for this Test Mail account.\n"
    "fix = Turn SMTP on in the web settings.\n"
    "\n"
    "[reply testmail-basic]\n"
    "provider = testmail\n"
    "code = 535\n"
    "match = basic authentication is disabled\n"
    "verdict = AUTH_BASIC_DISABLED\n"
    "summary = Test Mail no longer takes passwords.\n"
    "fix = Use OAuth2.\n"
    "\n"
    "[reply testmail-too-many]\n"
    "provider = testmail\n"
    "match = Too many bad auth attempts\n"
    "verdict = AUTH_TOO_MANY_ATTEMPTS\n"
    "summary = Too many failed logins.\n"
    "fix = Wait an hour.\n"
    "\n"
    "[reply testmail-from]\n"
    "provider = testmail\n"
    "code = 553\n"
    "match = Mail from must equal authorized user\n"
    "verdict = SENDER_MISMATCH\n"
    "summary = The sender must be the login.\n"
    "fix = Send from the login address.\n"
    "\n"
    "[reply keymail-identity]\n"
    "provider = keymail\n"
    "code = 550\n"
    "match = does not match a verified Sender Identity\n"
    "verdict = SENDER_UNVERIFIED\n"
    "summary = Key Mail sends only from verified senders.\n"
    "fix = Verify the sender in the console.\n"
    "\n"
    "[reply generic-daily-quota]\n"
    "code = 550\n"
    "enhanced = 5.4.5\n"
    "match = Daily user sending limit exceeded\n"
    "verdict = QUOTA_EXCEEDED\n"
    "summary = The daily sending limit is reached.\n"
    "fix = Wait 24 hours.\n"
    "\n"
    "[reply generic-spam]\n"
    "match = DT:SPM\n"
    "verdict = MESSAGE_REJECTED_SPAM\n"
    "summary = The message looked like spam.\n"
    "fix = Change the content.\n";

static struct sk_providers *db;

static int
group_setup(void **state)
{
	struct sk_error err;

	if ((db = sk_providers_new()) == NULL)
		return -1;
	if (sk_providers_parse(db, providers_text, sizeof(providers_text) - 1,
	    "test", &err) == -1) {
		fprintf(stderr, "providers: %s\n", err.message);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	sk_providers_free(db);
	return 0;
}

/* ---- building facts ---- */

struct fx {
	struct sk_doctor_config cfg;
	struct sk_doctor_report r;
};

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->cfg.db = db;
	f->cfg.host = "mail.test";
	f->cfg.lang = "en";
	f->cfg.tls_auto = true;
	(void)snprintf(f->r.facts.host, sizeof(f->r.facts.host), "mail.test");
	f->r.facts.clock_ok = true;
	f->r.facts.ca_store_ok = true;
	f->r.facts.ipv6_route = true;
	f->r.facts.now = (int64_t)time(NULL);
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	sk_doctor_report_fini(&f->r);
	free(f);
	return 0;
}

static void
add_port(struct fx *f, unsigned port, int family, enum sk_port_state st,
    enum sk_port_mode mode, const char *banner, bool starttls)
{
	struct sk_doctor_port *p;

	f->r.ports = realloc(f->r.ports, (f->r.nports + 1) * sizeof(*p));
	assert_non_null(f->r.ports);
	p = &f->r.ports[f->r.nports++];
	memset(p, 0, sizeof(*p));
	p->port = port;
	p->family = family;
	p->state = st;
	p->mode = mode;
	p->starttls = starttls;
	(void)snprintf(p->address, sizeof(p->address),
	    family == AF_INET6 ? "[2001:db8::1]:%u" : "192.0.2.1:%u", port);
	if (banner != NULL)
		(void)snprintf(p->banner, sizeof(p->banner), "%s", banner);
}

static void
plain_port(struct fx *f, unsigned port)
{
	add_port(f, port, AF_INET, SK_PORT_CONNECTED, SK_PMODE_PLAIN,
	    "220 mail.test ESMTP", true);
}

static void
target(struct fx *f, unsigned port, bool set, enum sk_tls_mode tls)
{
	f->r.facts.target_port = port;
	f->r.facts.target_tls_set = set;
	f->r.facts.target_tls = tls;
	f->cfg.port = port;
	f->cfg.tls_auto = !set;
	f->cfg.tls = tls;
}

static struct sk_doctor_session *
session(struct sk_doctor_session *s, unsigned port, enum sk_tls_mode tls)
{
	memset(s, 0, sizeof(*s));
	s->ran = true;
	s->port = port;
	s->tls = tls;
	s->caps.esmtp = true;
	s->caps.flags = SK_CAP_AUTH | SK_CAP_PIPELINING;
	s->caps.auth = SK_AUTH_BIT(SK_AUTH_PLAIN);
	return s;
}

static void
fail_with(struct sk_doctor_session *s, enum sk_stage stage,
    enum sk_error_kind kind, const char *msg)
{
	sk_error_clear(&s->err);
	s->err.stage = stage;
	s->err.kind = kind;
	(void)snprintf(s->err.message, sizeof(s->err.message), "%s", msg);
}

static void
reply_with(struct sk_doctor_session *s, enum sk_stage stage, int code,
    const char *enhanced, const char *text)
{
	fail_with(s, stage, SK_ERR_REPLY, "refused");
	s->err.code = code;
	(void)snprintf(s->err.enhanced, sizeof(s->err.enhanced), "%s",
	    enhanced != NULL ? enhanced : "");
	(void)snprintf(s->err.server_text, sizeof(s->err.server_text), "%s",
	    text);
}

/* A host with 587 (STARTTLS) reachable, asked for, and a session there. */
static struct sk_doctor_session *
basic(struct fx *f)
{
	target(f, 587, false, SK_TLS_MODE_STARTTLS);
	plain_port(f, 587);
	return session(&f->r.facts.main, 587, SK_TLS_MODE_STARTTLS);
}

static enum sk_verdict
judge(struct fx *f)
{
	assert_int_equal(sk_doctor_judge(&f->cfg, &f->r), 0);
	assert_true(f->r.summary[0] != '\0');
	return f->r.verdict;
}

static bool
fix_has(const struct fx *f, const char *needle)
{
	size_t i;

	for (i = 0; i < f->r.nfix; i++)
		if (strstr(f->r.fix[i], needle) != NULL)
			return true;
	return false;
}

#define assert_verdict(f, code) \
	assert_string_equal(sk_verdict_name(judge(f)), #code)

/* ---- name tables ---- */

static void
test_names(void **state)
{
	enum sk_verdict v;
	int i;

	for (i = 0; i < SK_VERDICT__COUNT; i++) {
		const char *n = sk_verdict_name((enum sk_verdict)i);

		assert_string_not_equal(n, "unknown");
		assert_int_equal(sk_verdict_parse(n, &v), 0);
		assert_int_equal(v, i);
	}
	assert_string_equal(sk_verdict_name(SK_VERDICT_OK), "OK");
	assert_string_equal(sk_verdict_name(SK_VERDICT_PROTOCOL_ERROR),
	    "PROTOCOL_ERROR");
	assert_string_equal(sk_verdict_name(SK_VERDICT__COUNT), "unknown");
	assert_int_equal(sk_verdict_parse("NO_SUCH_CODE", &v), -1);
	assert_int_equal(sk_verdict_parse(NULL, &v), -1);
	assert_int_equal(sk_verdict_parse("port_blocked", &v), 0);
	assert_int_equal(v, SK_VERDICT_PORT_BLOCKED);

	assert_string_equal(sk_check_name(SK_CHECK_SKIP), "skip");
	assert_string_equal(sk_check_name(SK_CHECK_OK), "ok");
	assert_string_equal(sk_check_name(SK_CHECK_WARN), "warn");
	assert_string_equal(sk_check_name(SK_CHECK_FAIL), "fail");
	assert_string_equal(sk_doctor_stage_name(SK_DOCTOR_LOCAL), "local");
	assert_string_equal(sk_doctor_stage_name(SK_DOCTOR_GREETING),
	    "greeting");
	assert_string_equal(sk_doctor_stage_name(SK_DOCTOR_DATA), "data");
	assert_string_equal(sk_doctor_stage_name(SK_DOCTOR__COUNT), "unknown");
	assert_string_equal(sk_port_state_name(SK_PORT_TIMEOUT), "timeout");
	assert_string_equal(sk_port_state_name(SK_PORT_UNTRIED), "untried");
	assert_string_equal(sk_port_mode_name(SK_PMODE_IMPLICIT), "implicit");
	assert_string_equal(sk_port_mode_name(SK_PMODE_SILENT), "silent");
	assert_string_equal(sk_port_mode_name((enum sk_port_mode)42),
	    "unknown");
}

/* ---- OK, DNS, TCP ---- */

static void
test_ok(void **state)
{
	struct fx *f = *state;

	basic(f);
	assert_verdict(f, OK);
	assert_int_equal(f->r.nfix, 0);
	assert_null(f->r.rule);
	assert_int_equal(f->r.err.kind, SK_ERR_NONE);
	/* Nothing was fully asked (no --tls): say what was found. */
	assert_true(f->r.suggested.valid);
	assert_int_equal(f->r.suggested.port, 587);
	assert_int_equal(f->r.suggested.tls, SK_TLS_MODE_STARTTLS);
}

/* A preset with a help page: still nothing to fix when all passed. */
static void
test_ok_with_preset_no_fix(void **state)
{
	struct fx *f = *state;

	f->cfg.provider = sk_providers_find(db, "testmail", NULL);
	assert_non_null(f->cfg.provider);
	basic(f);
	assert_verdict(f, OK);
	assert_int_equal(f->r.nfix, 0);
}

static void
test_ok_fully_asked_no_suggestion(void **state)
{
	struct fx *f = *state;

	target(f, 587, true, SK_TLS_MODE_STARTTLS);
	plain_port(f, 587);
	session(&f->r.facts.main, 587, SK_TLS_MODE_STARTTLS);
	assert_verdict(f, OK);
	assert_false(f->r.suggested.valid);
}

static void
test_dns_no_such_host(void **state)
{
	struct fx *f = *state;

	f->r.facts.dns.stage = SK_STAGE_RESOLVE;
	f->r.facts.dns.kind = SK_ERR_DNS;
	f->r.facts.dns.dns_status = ARES_ENOTFOUND;
	(void)snprintf(f->r.facts.dns.message, sizeof(f->r.facts.dns.message),
	    "cannot resolve mail.test: no such host");
	assert_verdict(f, DNS_NO_SUCH_HOST);
	assert_non_null(strstr(f->r.summary, "mail.test"));
	assert_true(fix_has(f, "mail.test"));
	assert_int_equal(f->r.err.kind, SK_ERR_DNS);
}

static void
test_dns_no_address(void **state)
{
	struct fx *f = *state;

	f->r.facts.dns.kind = SK_ERR_DNS;
	f->r.facts.dns.dns_status = ARES_ENODATA;
	(void)snprintf(f->r.facts.dns.message, sizeof(f->r.facts.dns.message),
	    "cannot resolve mail.test: the name exists but has no IPv4 or "
	    "IPv6 address");
	assert_verdict(f, DNS_NO_SUCH_HOST);
	assert_non_null(strstr(f->r.summary, "no IPv4 or IPv6 address"));
}

static void
test_dns_no_answer(void **state)
{
	struct fx *f = *state;

	f->r.facts.dns.kind = SK_ERR_TIMEOUT;
	f->r.facts.dns.dns_status = ARES_ETIMEOUT;
	assert_verdict(f, DNS_NO_ANSWER);
	sk_doctor_report_fini(&f->r);
	memset(&f->r, 0, sizeof(f->r));
	/* SERVFAIL: the resolver answered, but with no answer. */
	f->r.facts.dns.kind = SK_ERR_DNS;
	f->r.facts.dns.dns_status = ARES_ESERVFAIL;
	assert_verdict(f, DNS_NO_ANSWER);
}

static void
test_tcp_refused(void **state)
{
	struct fx *f = *state;

	target(f, 2525, false, SK_TLS_MODE_STARTTLS);
	add_port(f, 2525, AF_INET, SK_PORT_REFUSED, SK_PMODE_UNKNOWN, NULL,
	    false);
	add_port(f, 465, AF_INET, SK_PORT_REFUSED, SK_PMODE_UNKNOWN, NULL,
	    false);
	assert_verdict(f, TCP_REFUSED);
	assert_non_null(strstr(f->r.summary, "2525"));
	assert_false(f->r.suggested.valid);
}

static void
test_tcp_timeout(void **state)
{
	struct fx *f = *state;
	unsigned ports[] = { 465, 587, 25, 2525 };
	size_t i;

	for (i = 0; i < 4; i++)
		add_port(f, ports[i], AF_INET, SK_PORT_TIMEOUT,
		    SK_PMODE_UNKNOWN, NULL, false);
	assert_verdict(f, TCP_TIMEOUT);
	assert_non_null(strstr(f->r.summary, "465, 587, 25, 2525"));
}

static void
test_tcp_unreachable(void **state)
{
	struct fx *f = *state;

	target(f, 587, false, SK_TLS_MODE_STARTTLS);
	add_port(f, 587, AF_INET6, SK_PORT_UNREACHABLE, SK_PMODE_UNKNOWN,
	    NULL, false);
	add_port(f, 587, AF_INET, SK_PORT_UNREACHABLE, SK_PMODE_UNKNOWN,
	    NULL, false);
	assert_verdict(f, TCP_UNREACHABLE);
}

/* No IPv6 route and IPv4 silently dropped: the drop is the news. */
static void
test_tcp_timeout_beats_unreachable(void **state)
{
	struct fx *f = *state;

	target(f, 587, false, SK_TLS_MODE_STARTTLS);
	add_port(f, 587, AF_INET6, SK_PORT_UNREACHABLE, SK_PMODE_UNKNOWN,
	    NULL, false);
	add_port(f, 587, AF_INET, SK_PORT_TIMEOUT, SK_PMODE_UNKNOWN, NULL,
	    false);
	assert_verdict(f, TCP_TIMEOUT);
}

static void
test_port_blocked_with_suggestion(void **state)
{
	struct fx *f = *state;

	f->cfg.provider = sk_providers_find(db, "testmail", NULL);
	f->cfg.user = "me@testmail.example";
	f->cfg.secret = "hunter2-secret";
	f->cfg.from = "me@testmail.example";
	target(f, 25, true, SK_TLS_MODE_STARTTLS);
	add_port(f, 25, AF_INET, SK_PORT_TIMEOUT, SK_PMODE_UNKNOWN, NULL,
	    false);
	add_port(f, 465, AF_INET, SK_PORT_CONNECTED, SK_PMODE_IMPLICIT, NULL,
	    false);
	add_port(f, 587, AF_INET, SK_PORT_CONNECTED, SK_PMODE_PLAIN,
	    "220 mail.test ESMTP", true);
	session(&f->r.facts.alt, 465, SK_TLS_MODE_IMPLICIT);

	assert_verdict(f, PORT_BLOCKED);
	assert_non_null(strstr(f->r.summary, "Port 25"));
	assert_true(f->r.suggested.valid);
	assert_int_equal(f->r.suggested.port, 465);
	assert_int_equal(f->r.suggested.tls, SK_TLS_MODE_IMPLICIT);
	assert_string_equal(f->r.suggested.host, "mail.test");
	assert_non_null(strstr(f->r.suggested.command,
	    "smtpkit send --host mail.test --port 465 --tls implicit"));
	assert_non_null(strstr(f->r.suggested.command,
	    "--user me@testmail.example --password-env SMTP_PASSWORD"));
	assert_non_null(strstr(f->r.suggested.config,
	    "[account testmail]\n"));
	assert_non_null(strstr(f->r.suggested.config, "port = 465\n"));
	assert_non_null(strstr(f->r.suggested.config, "tls = implicit\n"));
	assert_non_null(strstr(f->r.suggested.config,
	    "provider = testmail\n"));
	/* The first step is the switch; the secret is nowhere. */
	assert_true(f->r.nfix >= 2);
	assert_non_null(strstr(f->r.fix[0], "465"));
	assert_null(strstr(f->r.suggested.command, "hunter2"));
	assert_null(strstr(f->r.suggested.config, "hunter2"));
	assert_null(strstr(f->r.summary, "hunter2"));
}

/* A bare host without --port: a dropped 2525 next to a working 465 is fine. */
static void
test_bare_host_dropped_port_is_ok(void **state)
{
	struct fx *f = *state;

	add_port(f, 465, AF_INET, SK_PORT_CONNECTED, SK_PMODE_IMPLICIT, NULL,
	    false);
	add_port(f, 2525, AF_INET, SK_PORT_TIMEOUT, SK_PMODE_UNKNOWN, NULL,
	    false);
	session(&f->r.facts.main, 465, SK_TLS_MODE_IMPLICIT);
	assert_verdict(f, OK);
	assert_true(f->r.suggested.valid);
	assert_int_equal(f->r.suggested.port, 465);
}

/* Blocked port, and on the alternative the login fails too: both said. */
static void
test_port_blocked_then_login_fails(void **state)
{
	struct fx *f = *state;

	f->cfg.user = "me@mail.test";
	target(f, 25, true, SK_TLS_MODE_STARTTLS);
	add_port(f, 25, AF_INET, SK_PORT_TIMEOUT, SK_PMODE_UNKNOWN, NULL,
	    false);
	add_port(f, 465, AF_INET, SK_PORT_CONNECTED, SK_PMODE_IMPLICIT, NULL,
	    false);
	reply_with(session(&f->r.facts.alt, 465, SK_TLS_MODE_IMPLICIT),
	    SK_STAGE_AUTH, 535, "5.7.8", "5.7.8 Authentication failed");
	assert_verdict(f, PORT_BLOCKED);
	assert_true(f->r.suggested.valid);
	assert_non_null(strstr(f->r.summary, "AUTH_CREDENTIALS"));
	assert_true(fix_has(f, "password"));
}

static void
test_ipv6_broken(void **state)
{
	struct fx *f = *state;

	target(f, 587, true, SK_TLS_MODE_STARTTLS);
	add_port(f, 587, AF_INET6, SK_PORT_UNREACHABLE, SK_PMODE_UNKNOWN,
	    NULL, false);
	plain_port(f, 587);
	f->r.facts.ipv6_route = false;
	session(&f->r.facts.main, 587, SK_TLS_MODE_STARTTLS);
	assert_verdict(f, IPV6_BROKEN);
	assert_non_null(strstr(f->r.summary, "IPv6"));
	assert_true(fix_has(f, "gai.conf"));
}

/* IPv6 broken is a warning only: any real failure wins. */
static void
test_ipv6_broken_loses_to_failure(void **state)
{
	struct fx *f = *state;

	f->cfg.user = "me@mail.test";
	target(f, 587, true, SK_TLS_MODE_STARTTLS);
	add_port(f, 587, AF_INET6, SK_PORT_TIMEOUT, SK_PMODE_UNKNOWN, NULL,
	    false);
	plain_port(f, 587);
	reply_with(session(&f->r.facts.main, 587, SK_TLS_MODE_STARTTLS),
	    SK_STAGE_AUTH, 535, "5.7.8", "5.7.8 bad credentials");
	assert_verdict(f, AUTH_CREDENTIALS);
}

/* ---- greeting and TLS mode ---- */

static void
test_no_greeting(void **state)
{
	struct fx *f = *state;

	target(f, 2525, false, SK_TLS_MODE_STARTTLS);
	add_port(f, 2525, AF_INET, SK_PORT_CONNECTED, SK_PMODE_SILENT, NULL,
	    false);
	add_port(f, 465, AF_INET, SK_PORT_REFUSED, SK_PMODE_UNKNOWN, NULL,
	    false);
	assert_verdict(f, NO_GREETING);
	assert_non_null(strstr(f->r.summary, "2525"));
}

/* Connected, TLS up, and still no greeting: the session says so. */
static void
test_no_greeting_after_tls(void **state)
{
	struct fx *f = *state;

	target(f, 465, false, SK_TLS_MODE_IMPLICIT);
	add_port(f, 465, AF_INET, SK_PORT_CONNECTED, SK_PMODE_IMPLICIT, NULL,
	    false);
	fail_with(session(&f->r.facts.main, 465, SK_TLS_MODE_IMPLICIT),
	    SK_STAGE_GREETING, SK_ERR_TIMEOUT, "no greeting");
	assert_verdict(f, NO_GREETING);
	assert_non_null(strstr(f->r.summary, "TLS handshake"));
}

static void
test_greeting_refused(void **state)
{
	struct fx *f = *state;

	target(f, 25, false, SK_TLS_MODE_STARTTLS);
	add_port(f, 25, AF_INET, SK_PORT_CONNECTED, SK_PMODE_PLAIN,
	    "554 5.7.1 Service unavailable; client host blocked", false);
	assert_verdict(f, GREETING_REFUSED);
	assert_non_null(strstr(f->r.summary, "client host blocked"));
	assert_int_equal(f->r.err.code, 554);
	assert_int_equal(f->r.err.stage, SK_STAGE_GREETING);
}

/* A 421 banner with words of rate is a rate limit, not a refusal. */
static void
test_greeting_rate_limited(void **state)
{
	struct fx *f = *state;

	target(f, 25, false, SK_TLS_MODE_STARTTLS);
	add_port(f, 25, AF_INET, SK_PORT_CONNECTED, SK_PMODE_PLAIN,
	    "421 HL:ICC too many connections from your IP", false);
	assert_verdict(f, RATE_LIMITED);
}

static void
test_mode_mismatch_implicit_on_plain(void **state)
{
	struct fx *f = *state;

	target(f, 587, true, SK_TLS_MODE_IMPLICIT);
	plain_port(f, 587);
	session(&f->r.facts.alt, 587, SK_TLS_MODE_STARTTLS);
	assert_verdict(f, TLS_MODE_MISMATCH);
	assert_non_null(strstr(f->r.summary, "plain SMTP"));
	assert_true(f->r.suggested.valid);
	assert_int_equal(f->r.suggested.port, 587);
	assert_int_equal(f->r.suggested.tls, SK_TLS_MODE_STARTTLS);
	assert_true(fix_has(f, "--tls starttls"));
}

static void
test_mode_mismatch_plain_on_implicit(void **state)
{
	struct fx *f = *state;

	target(f, 465, true, SK_TLS_MODE_STARTTLS);
	add_port(f, 465, AF_INET, SK_PORT_CONNECTED, SK_PMODE_IMPLICIT, NULL,
	    false);
	assert_verdict(f, TLS_MODE_MISMATCH);
	assert_non_null(strstr(f->r.summary, "implicit TLS"));
	assert_true(fix_has(f, "--tls implicit"));
	assert_false(f->r.suggested.valid);	/* no session proved it */
}

/* With --tls auto, what the port speaks is simply used. */
static void
test_auto_mode_no_mismatch(void **state)
{
	struct fx *f = *state;

	target(f, 465, false, SK_TLS_MODE_STARTTLS);
	add_port(f, 465, AF_INET, SK_PORT_CONNECTED, SK_PMODE_IMPLICIT, NULL,
	    false);
	session(&f->r.facts.main, 465, SK_TLS_MODE_IMPLICIT);
	assert_verdict(f, OK);
}

/* A TLS hello answered in plaintext: OpenSSL's "wrong version number". */
static void
test_mode_mismatch_wrong_version_number(void **state)
{
	struct fx *f = *state;
	struct sk_doctor_session *s = basic(f);

	fail_with(s, SK_STAGE_TLS, SK_ERR_TLS_HANDSHAKE, "wrong version");
	s->err.ssl_error = ERR_PACK(ERR_LIB_SSL, 0,
	    SSL_R_WRONG_VERSION_NUMBER);
	assert_verdict(f, TLS_MODE_MISMATCH);
}

static void
test_protocol_error_not_smtp(void **state)
{
	struct fx *f = *state;

	target(f, 587, false, SK_TLS_MODE_STARTTLS);
	add_port(f, 587, AF_INET, SK_PORT_CONNECTED, SK_PMODE_UNKNOWN,
	    "SSH-2.0-OpenSSH_9.2", false);
	assert_verdict(f, PROTOCOL_ERROR);
	assert_non_null(strstr(f->r.summary, "SSH-2.0"));
}

static void
test_protocol_error_in_session(void **state)
{
	struct fx *f = *state;

	fail_with(basic(f), SK_STAGE_EHLO, SK_ERR_PROTOCOL,
	    "malformed reply line");
	assert_verdict(f, PROTOCOL_ERROR);
	assert_non_null(strstr(f->r.summary, "malformed reply line"));
}

/* ---- TLS ---- */

static void
test_starttls_unavailable(void **state)
{
	struct fx *f = *state;

	fail_with(basic(f), SK_STAGE_TLS, SK_ERR_UNSUPPORTED,
	    "the server does not offer STARTTLS");
	assert_verdict(f, STARTTLS_UNAVAILABLE);
}

static void
test_starttls_unavailable_alternative(void **state)
{
	struct fx *f = *state;

	fail_with(basic(f), SK_STAGE_TLS, SK_ERR_UNSUPPORTED,
	    "the server does not offer STARTTLS");
	add_port(f, 465, AF_INET, SK_PORT_CONNECTED, SK_PMODE_IMPLICIT, NULL,
	    false);
	session(&f->r.facts.alt, 465, SK_TLS_MODE_IMPLICIT);
	assert_verdict(f, STARTTLS_UNAVAILABLE);
	assert_true(f->r.suggested.valid);
	assert_int_equal(f->r.suggested.port, 465);
	assert_non_null(strstr(f->r.fix[0], "465"));
}

static void
test_tls_version(void **state)
{
	struct fx *f = *state;
	struct sk_doctor_session *s = basic(f);

	fail_with(s, SK_STAGE_TLS, SK_ERR_TLS_HANDSHAKE, "protocol version");
	s->err.ssl_error = ERR_PACK(ERR_LIB_SSL, 0,
	    SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
	assert_verdict(f, TLS_VERSION);
	assert_true(fix_has(f, "--tls-min 1.0"));
}

static void
test_tls_version_reply(void **state)
{
	struct fx *f = *state;

	reply_with(basic(f), SK_STAGE_TLS, 421, "4.7.66",
	    "4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade.");
	assert_verdict(f, TLS_VERSION);
}

static struct sk_doctor_session *
verify_failure(struct fx *f, long vr)
{
	struct sk_doctor_session *s = basic(f);

	fail_with(s, SK_STAGE_TLS, SK_ERR_TLS_VERIFY, "not accepted");
	s->err.verify_result = vr;
	s->tls_seen = true;
	(void)snprintf(s->tls_info.not_before, sizeof(s->tls_info.not_before),
	    "2026-01-01 00:00:00 UTC");
	(void)snprintf(s->tls_info.not_after, sizeof(s->tls_info.not_after),
	    "2026-03-01 00:00:00 UTC");
	(void)snprintf(s->tls_info.sans, sizeof(s->tls_info.sans),
	    "mx.other.example, other.example");
	(void)snprintf(s->tls_info.issuer, sizeof(s->tls_info.issuer),
	    "CN=Corporate Inspection CA");
	s->tls_info.verify_result = vr;
	return s;
}

static void
test_cert_untrusted(void **state)
{
	struct fx *f = *state;

	verify_failure(f, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
	assert_verdict(f, TLS_CERT_UNTRUSTED);
	assert_non_null(strstr(f->r.summary, "Corporate Inspection CA"));
	assert_true(fix_has(f, "--ca-file"));
}

static void
test_cert_unknown_issuer_is_untrusted(void **state)
{
	struct fx *f = *state;

	verify_failure(f, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	assert_verdict(f, TLS_CERT_UNTRUSTED);
}

static void
test_cert_expired(void **state)
{
	struct fx *f = *state;

	verify_failure(f, X509_V_ERR_CERT_HAS_EXPIRED);
	assert_verdict(f, TLS_CERT_EXPIRED);
	assert_non_null(strstr(f->r.summary, "2026-03-01 00:00:00 UTC"));
}

static void
test_cert_not_yet_valid(void **state)
{
	struct fx *f = *state;

	verify_failure(f, X509_V_ERR_CERT_NOT_YET_VALID);
	assert_verdict(f, TLS_CERT_NOT_YET_VALID);
	assert_non_null(strstr(f->r.summary, "2026-01-01 00:00:00 UTC"));
}

/* The clock wrong on its own evidence turns 9 and 10 into CLOCK_SKEW. */
static void
test_clock_skew(void **state)
{
	struct fx *f = *state;

	verify_failure(f, X509_V_ERR_CERT_NOT_YET_VALID);
	f->r.facts.clock_ok = false;
	f->r.facts.now = 946684800;	/* 2000-01-01 */
	assert_verdict(f, CLOCK_SKEW);
	assert_non_null(strstr(f->r.summary, "2000-01-01"));
	assert_true(fix_has(f, "timedatectl"));
}

static void
test_clock_skew_expired(void **state)
{
	struct fx *f = *state;

	verify_failure(f, X509_V_ERR_CERT_HAS_EXPIRED);
	f->r.facts.clock_ok = false;
	f->r.facts.now = 4200000000LL;	/* 2103 */
	assert_verdict(f, CLOCK_SKEW);
	assert_non_null(strstr(f->r.summary, "expired"));
}

static void
test_hostname_mismatch(void **state)
{
	struct fx *f = *state;

	verify_failure(f, X509_V_ERR_HOSTNAME_MISMATCH);
	assert_verdict(f, TLS_HOSTNAME_MISMATCH);
	assert_non_null(strstr(f->r.summary, "mx.other.example"));
	assert_non_null(strstr(f->r.summary, "mail.test"));
}

static void
test_ca_store_missing(void **state)
{
	struct fx *f = *state;

	fail_with(basic(f), SK_STAGE_TLS, SK_ERR_CONFIG,
	    "the system CA store is missing");
	f->r.facts.ca_store_ok = false;
	assert_verdict(f, CA_STORE_MISSING);
	assert_true(fix_has(f, "ca-certificates"));
}

/* An empty store makes every chain fail for want of an issuer. */
static void
test_ca_store_empty(void **state)
{
	struct fx *f = *state;

	verify_failure(f, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	f->r.facts.ca_store_ok = false;
	assert_verdict(f, CA_STORE_MISSING);
}

static void
test_tls_handshake(void **state)
{
	struct fx *f = *state;
	struct sk_doctor_session *s = basic(f);

	fail_with(s, SK_STAGE_TLS, SK_ERR_TLS_HANDSHAKE,
	    "TLS handshake failed: sslv3 alert handshake failure");
	s->err.ssl_error = ERR_PACK(ERR_LIB_SSL, 0,
	    SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
	assert_verdict(f, TLS_HANDSHAKE);
	assert_true(fix_has(f, "openssl s_client -connect mail.test:587 "
	    "-starttls smtp"));
}

/* ---- AUTH ---- */

static void
test_auth_not_offered(void **state)
{
	struct fx *f = *state;
	struct sk_doctor_session *s = basic(f);

	f->cfg.user = "me@mail.test";
	s->caps.flags = SK_CAP_PIPELINING;
	s->caps.auth = 0;
	fail_with(s, SK_STAGE_AUTH, SK_ERR_UNSUPPORTED,
	    "the server does not offer AUTH");
	assert_verdict(f, AUTH_NOT_OFFERED);
	assert_non_null(strstr(f->r.summary, "at all"));
}

/* Plaintext, AUTH only after STARTTLS: the second session shows it. */
static void
test_auth_only_after_starttls(void **state)
{
	struct fx *f = *state;
	struct sk_doctor_session *s;

	f->cfg.user = "me@mail.test";
	target(f, 587, true, SK_TLS_MODE_NONE);
	plain_port(f, 587);
	s = session(&f->r.facts.main, 587, SK_TLS_MODE_NONE);
	s->caps.flags = SK_CAP_STARTTLS;
	s->caps.auth = 0;
	fail_with(s, SK_STAGE_AUTH, SK_ERR_POLICY,
	    "refusing to send credentials without TLS");
	session(&f->r.facts.alt, 587, SK_TLS_MODE_STARTTLS);
	assert_verdict(f, AUTH_NOT_OFFERED);
	assert_non_null(strstr(f->r.summary, "only after STARTTLS"));
	assert_true(f->r.suggested.valid);
	assert_int_equal(f->r.suggested.tls, SK_TLS_MODE_STARTTLS);
	assert_true(fix_has(f, "--tls starttls"));
}

/* AUTH offered in plaintext, but smtpkit will not send it there. */
static void
test_plaintext_auth_refused(void **state)
{
	struct fx *f = *state;
	struct sk_doctor_session *s;

	f->cfg.user = "me@mail.test";
	target(f, 25, true, SK_TLS_MODE_NONE);
	plain_port(f, 25);
	s = session(&f->r.facts.main, 25, SK_TLS_MODE_NONE);
	s->caps.flags = SK_CAP_STARTTLS | SK_CAP_AUTH;
	fail_with(s, SK_STAGE_AUTH, SK_ERR_POLICY,
	    "refusing to send credentials without TLS");
	assert_verdict(f, TLS_MODE_MISMATCH);
	s->caps.flags = SK_CAP_AUTH;
	assert_verdict(f, STARTTLS_UNAVAILABLE);
}

static void
test_auth_mech_unsupported(void **state)
{
	struct fx *f = *state;
	struct sk_doctor_session *s = basic(f);

	f->cfg.user = "me@mail.test";
	s->caps.auth = SK_AUTH_BIT(SK_AUTH_CRAM_MD5);
	fail_with(s, SK_STAGE_AUTH, SK_ERR_UNSUPPORTED,
	    "the server does not offer AUTH XOAUTH2 (it offers: CRAM-MD5)");
	assert_verdict(f, AUTH_MECH_UNSUPPORTED);
	assert_non_null(strstr(f->r.summary, "CRAM-MD5"));
}

static void
test_auth_credentials_generic(void **state)
{
	struct fx *f = *state;

	f->cfg.user = "me@mail.test";
	reply_with(basic(f), SK_STAGE_AUTH, 535, "5.7.8",
	    "5.7.8 Error: authentication failed: wrong credentials");
	assert_verdict(f, AUTH_CREDENTIALS);
	assert_null(f->r.rule);
	assert_non_null(strstr(f->r.summary, "535"));
	assert_true(fix_has(f, "app password"));
}

/* Credentials with a preset: its own help, and its user name rule. */
static void
test_auth_credentials_preset_help(void **state)
{
	struct fx *f = *state;

	f->cfg.provider = sk_providers_find(db, "keymail", NULL);
	assert_non_null(f->cfg.provider);
	f->cfg.user = "me@keymail.example";
	reply_with(basic(f), SK_STAGE_AUTH, 535, NULL,
	    "Authentication failed: Bad username / password");
	assert_verdict(f, AUTH_CREDENTIALS);
	assert_true(fix_has(f, "\"apikey\""));
}

/* MAIL refused with 530 and no login given: log in. */
static void
test_auth_required_without_user(void **state)
{
	struct fx *f = *state;

	f->cfg.from = "me@mail.test";
	reply_with(basic(f), SK_STAGE_MAIL, 530, "5.7.57",
	    "5.7.57 Client not authenticated to send mail");
	assert_verdict(f, AUTH_CREDENTIALS);
	assert_true(fix_has(f, "--user"));
}

static void
test_auth_530_starttls(void **state)
{
	struct fx *f = *state;

	f->cfg.user = "me@mail.test";
	reply_with(session(&f->r.facts.main, 587, SK_TLS_MODE_NONE),
	    SK_STAGE_AUTH, 530, "5.7.0", "5.7.0 Must issue a STARTTLS "
	    "command first");
	target(f, 587, true, SK_TLS_MODE_NONE);
	plain_port(f, 587);
	assert_verdict(f, AUTH_NOT_OFFERED);
}

/* ---- known replies, from the providers file ---- */

static void
test_rule_app_password_bare_host(void **state)
{
	struct fx *f = *state;
	const struct sk_reply_rule *rule;

	/* No preset: the reply alone says which provider this is. */
	f->cfg.user = "me@testmail.example";
	reply_with(basic(f), SK_STAGE_AUTH, 534, "5.7.9",
	    "5.7.9 Application-specific password required. Learn more");
	assert_verdict(f, AUTH_APP_PASSWORD_REQUIRED);
	rule = f->r.rule;
	assert_non_null(rule);
	assert_string_equal(rule->id, "testmail-app-password");
	assert_non_null(strstr(f->r.summary,
	    "Test Mail wants an app password for SMTP."));
	assert_non_null(strstr(f->r.summary, "534 5.7.9 Application"));
	assert_true(f->r.nfix >= 2);
	assert_string_equal(f->r.fix[0], "Turn on two-step verification.");
	assert_string_equal(f->r.fix[1], "Create an app password and use it.");
	/* The rule's provider gives the user name and the help page. */
	assert_true(fix_has(f, "Test Mail is the full email address"));
	assert_true(fix_has(f, "https://help.testmail.example/smtp"));
}

static void
test_rule_chinese(void **state)
{
	struct fx *f = *state;

	f->cfg.lang = "zh";
	f->cfg.provider = sk_providers_find(db, "testmail", NULL);
	f->cfg.user = "me@testmail.example";
	reply_with(basic(f), SK_STAGE_AUTH, 534, "5.7.9",
	    "5.7.9 Application-specific password required.");
	assert_verdict(f, AUTH_APP_PASSWORD_REQUIRED);
	assert_non_null(strstr(f->r.summary, "测试邮箱的 SMTP 需要应用密码。"));
	assert_string_equal(f->r.fix[0], "开启两步验证。");
	assert_string_equal(f->r.fix[1], "创建应用密码并使用它。");
}

static void
test_rule_service_disabled(void **state)
{
	struct fx *f = *state;

	f->cfg.user = "me@testmail.example";
	reply_with(basic(f), SK_STAGE_AUTH, 535, NULL,
	    "SMTP is disabled for this account, see settings");
	assert_verdict(f, AUTH_SERVICE_DISABLED);
	assert_true(fix_has(f, "Turn SMTP on in the web settings."));
}

static void
test_rule_basic_disabled(void **state)
{
	struct fx *f = *state;

	f->cfg.user = "me@testmail.example";
	reply_with(basic(f), SK_STAGE_AUTH, 535, "5.7.139",
	    "5.7.139 Authentication unsuccessful, basic authentication is "
	    "disabled.");
	assert_verdict(f, AUTH_BASIC_DISABLED);
}

static void
test_rule_too_many_attempts(void **state)
{
	struct fx *f = *state;

	f->cfg.user = "me@testmail.example";
	reply_with(basic(f), SK_STAGE_AUTH, 535, "5.7.0",
	    "5.7.0 (#AUTH005) Too many bad auth attempts.");
	assert_verdict(f, AUTH_TOO_MANY_ATTEMPTS);
}

static void
test_rule_sender_mismatch(void **state)
{
	struct fx *f = *state;

	f->cfg.from = "other@testmail.example";
	reply_with(basic(f), SK_STAGE_MAIL, 553, NULL,
	    "Mail from must equal authorized user");
	assert_verdict(f, SENDER_MISMATCH);
	assert_int_equal(f->r.err.stage, SK_STAGE_MAIL);
}

static void
test_rule_sender_unverified(void **state)
{
	struct fx *f = *state;

	f->cfg.from = "me@corp.example";
	reply_with(basic(f), SK_STAGE_MAIL, 550, NULL,
	    "The from address does not match a verified Sender Identity.");
	assert_verdict(f, SENDER_UNVERIFIED);
	assert_true(fix_has(f, "Verify the sender in the console."));
}

static void
test_rule_quota(void **state)
{
	struct fx *f = *state;

	reply_with(basic(f), SK_STAGE_MAIL, 550, "5.4.5",
	    "5.4.5 Daily user sending limit exceeded.");
	assert_verdict(f, QUOTA_EXCEEDED);
	assert_string_equal(f->r.rule->id, "generic-daily-quota");
}

static void
test_rule_spam(void **state)
{
	struct fx *f = *state;

	reply_with(basic(f), SK_STAGE_DATA, 554, NULL,
	    "DT:SPM 163 smtp3,GdxpCgBnn5 1711111111");
	assert_verdict(f, MESSAGE_REJECTED_SPAM);
}

/* ---- generic replies ---- */

static void
test_recipient_rejected(void **state)
{
	struct fx *f = *state;

	f->cfg.to = "nobody@else.example";
	reply_with(basic(f), SK_STAGE_RCPT, 550, "5.1.1",
	    "5.1.1 <nobody@else.example>: Recipient address rejected");
	assert_verdict(f, RECIPIENT_REJECTED);
	assert_non_null(strstr(f->r.summary, "nobody@else.example"));
}

static void
test_relay_denied(void **state)
{
	struct fx *f = *state;

	f->cfg.to = "you@else.example";
	reply_with(basic(f), SK_STAGE_RCPT, 550, "5.7.1",
	    "5.7.1 Relaying denied");
	assert_verdict(f, RELAY_DENIED);
	assert_true(fix_has(f, "--user"));
}

static void
test_rate_limited(void **state)
{
	struct fx *f = *state;

	reply_with(basic(f), SK_STAGE_MAIL, 421, "4.7.0",
	    "4.7.0 Too many connections, slow down");
	assert_verdict(f, RATE_LIMITED);
}

static void
test_quota_generic(void **state)
{
	struct fx *f = *state;

	reply_with(basic(f), SK_STAGE_DATA, 452, "4.5.3",
	    "4.5.3 Your sending quota is used up for today");
	assert_verdict(f, QUOTA_EXCEEDED);
}

static void
test_spam_generic(void **state)
{
	struct fx *f = *state;

	reply_with(basic(f), SK_STAGE_DATA, 550, "5.7.1",
	    "5.7.1 Message content rejected as spam");
	assert_verdict(f, MESSAGE_REJECTED_SPAM);
}

static void
test_server_temporary(void **state)
{
	struct fx *f = *state;

	reply_with(basic(f), SK_STAGE_MAIL, 451, "4.3.0",
	    "4.3.0 Local error in processing");
	assert_verdict(f, SERVER_TEMPORARY);
	assert_true(fix_has(f, "later"));
}

static void
test_server_temporary_hangup(void **state)
{
	struct fx *f = *state;

	fail_with(basic(f), SK_STAGE_EHLO, SK_ERR_EOF,
	    "the server closed the connection");
	assert_verdict(f, SERVER_TEMPORARY);
}

static void
test_server_permanent(void **state)
{
	struct fx *f = *state;

	reply_with(basic(f), SK_STAGE_MAIL, 553, "5.1.7",
	    "5.1.7 Bad sender address syntax");
	assert_verdict(f, SERVER_PERMANENT);
	assert_non_null(strstr(f->r.summary, "Bad sender address syntax"));
}

/*
 * The engine's own refusal before MAIL of a non-ASCII address on a server
 * without SMTPUTF8 (client.c): not the server's permanent error.
 */
static void
smtputf8_refusal(struct sk_doctor_session *s)
{
	fail_with(s, SK_STAGE_MAIL, SK_ERR_UNSUPPORTED, "an address is not "
	    "ASCII but the server does not offer SMTPUTF8 (RFC 6531)");
}

static void
test_smtputf8_unsupported(void **state)
{
	struct fx *f = *state;

	f->cfg.from = "app@mail.test";
	f->cfg.to = "用户@example.com";
	smtputf8_refusal(basic(f));
	assert_verdict(f, SMTPUTF8_UNSUPPORTED);
	assert_int_equal(f->r.err.kind, SK_ERR_UNSUPPORTED);
	assert_non_null(strstr(f->r.summary,
	    "recipient address 用户@example.com"));
	assert_non_null(strstr(f->r.summary, "SMTPUTF8 (RFC 6531)"));
	assert_non_null(strstr(f->r.summary, "refused nothing"));
	assert_null(strstr(f->r.summary, "refused at"));
	assert_true(fix_has(f, "ASCII alias"));
	assert_true(fix_has(f, "offers SMTPUTF8"));
	/* the local part has no ASCII form: punycode would not help */
	assert_false(fix_has(f, "xn--"));
	assert_false(f->r.suggested.valid);
}

/* Only the domain is not ASCII: its A-label (xn--) makes it ASCII. */
static void
test_smtputf8_idn_domain(void **state)
{
	struct fx *f = *state;

	f->cfg.from = "app@mail.test";
	f->cfg.to = "info@例子.测试";
	smtputf8_refusal(basic(f));
	assert_verdict(f, SMTPUTF8_UNSUPPORTED);
	assert_true(fix_has(f, "Write the domain 例子.测试"));
	assert_true(fix_has(f, "idn2 例子.测试"));
	assert_false(fix_has(f, "ASCII alias"));
}

static void
test_smtputf8_sender(void **state)
{
	struct fx *f = *state;

	f->cfg.from = "josé@mail.test";
	f->cfg.to = "rcpt@example.com";
	smtputf8_refusal(basic(f));
	assert_verdict(f, SMTPUTF8_UNSUPPORTED);
	assert_non_null(strstr(f->r.summary, "sender address josé@mail.test"));
	assert_null(strstr(f->r.summary, "recipient address"));
	assert_true(fix_has(f, "part before the @ in josé@mail.test"));
}

/* The same kind of refusal with ASCII addresses, or SMTPUTF8 offered. */
static void
test_unsupported_not_smtputf8(void **state)
{
	struct fx *f = *state;
	struct sk_doctor_session *s = basic(f);

	f->cfg.from = "app@mail.test";
	f->cfg.to = "rcpt@example.com";
	fail_with(s, SK_STAGE_MAIL, SK_ERR_UNSUPPORTED, "the message is 900 "
	    "octets; the server accepts at most 100 (its SIZE limit)");
	assert_verdict(f, SERVER_PERMANENT);
	f->cfg.to = "用户@example.com";
	s->caps.flags |= SK_CAP_SMTPUTF8;
	assert_verdict(f, SERVER_PERMANENT);
}

/* Judging twice gives the same result: nothing stale survives. */
static void
test_judge_is_repeatable(void **state)
{
	struct fx *f = *state;
	char summary[sizeof(f->r.summary)];
	size_t nfix;

	reply_with(basic(f), SK_STAGE_MAIL, 451, NULL, "try later");
	assert_verdict(f, SERVER_TEMPORARY);
	memcpy(summary, f->r.summary, sizeof(summary));
	nfix = f->r.nfix;
	assert_verdict(f, SERVER_TEMPORARY);
	assert_string_equal(summary, f->r.summary);
	assert_int_equal(nfix, f->r.nfix);
}

static void
test_suggestion_quotes_for_the_shell(void **state)
{
	struct fx *f = *state;

	f->cfg.from = "o'brien@mail.test";
	target(f, 25, true, SK_TLS_MODE_STARTTLS);
	add_port(f, 25, AF_INET, SK_PORT_TIMEOUT, SK_PMODE_UNKNOWN, NULL,
	    false);
	add_port(f, 587, AF_INET, SK_PORT_CONNECTED, SK_PMODE_PLAIN,
	    "220 ok", true);
	session(&f->r.facts.alt, 587, SK_TLS_MODE_STARTTLS);
	assert_verdict(f, PORT_BLOCKED);
	assert_non_null(strstr(f->r.suggested.command,
	    "--from 'o'\\''brien@mail.test'"));
	assert_non_null(strstr(f->r.suggested.command,
	    "--subject 'smtpkit test'"));
	assert_non_null(strstr(f->r.suggested.config, "[account default]"));
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

/* ---- OAuth2 accounts (issue 4) ---- */

/* No client id: the session ran without a login and got through. */
static void
test_oauth_client_missing(void **state)
{
	struct fx *f = *state;

	basic(f);
	f->cfg.oauth = true;
	f->cfg.oauth_error = SK_OAUTH_ERR_NO_CLIENT;
	f->cfg.account = "work";
	assert_verdict(f, OAUTH_CLIENT_MISSING);
	assert_true(fix_has(f, "oauth-client-id"));
	assert_true(fix_has(f, "smtpkit oauth login --account work"));
	assert_false(f->r.suggested.valid && fix_has(f, "--port"));
}

/* Revoked: the MAIL that followed without a login was refused. */
static void
test_oauth_revoked(void **state)
{
	struct fx *f = *state;
	struct sk_doctor_session *s = basic(f);

	reply_with(s, SK_STAGE_MAIL, 530, "5.7.0", "Authentication required");
	f->cfg.oauth = true;
	f->cfg.oauth_error = SK_OAUTH_ERR_INVALID_GRANT;
	f->cfg.oauth_detail = "invalid_grant: AADSTS70000";
	f->cfg.account = "work";
	assert_verdict(f, OAUTH_REVOKED);
	assert_non_null(strstr(f->r.summary, "AADSTS70000"));
	assert_true(fix_has(f, "Sign in again: smtpkit oauth login "
	    "--account work"));
}

static void
test_oauth_no_token(void **state)
{
	struct fx *f = *state;

	basic(f);
	f->cfg.oauth = true;
	f->cfg.oauth_error = SK_OAUTH_ERR_NO_TOKEN;
	assert_verdict(f, OAUTH_TOKEN_EXPIRED);
	assert_non_null(strstr(f->r.summary, "No OAuth2 token"));
	assert_true(fix_has(f, "Sign in: smtpkit oauth login"));
}

/* The server refused the token (XOAUTH2 status 401, then 535). */
static void
test_oauth_token_refused(void **state)
{
	struct fx *f = *state;
	struct sk_doctor_session *s = basic(f);

	reply_with(s, SK_STAGE_AUTH, 535, "5.7.8",
	    "Username and Password not accepted");
	s->err.oauth_error = SK_OAUTH_ERR_INVALID_TOKEN;
	f->cfg.user = "me@testmail.example";
	f->cfg.oauth = true;
	f->cfg.oauth_expires_at = (int64_t)time(NULL) + 3000;
	assert_verdict(f, OAUTH_TOKEN_EXPIRED);
	assert_null(f->r.rule);
	assert_true(fix_has(f, "SMTP.Send"));
	/* the same refusal for a password is a credentials problem */
	f->cfg.oauth = false;
	assert_verdict(f, AUTH_CREDENTIALS);
}

/* A network failure comes before the token. */
static void
test_oauth_network_first(void **state)
{
	struct fx *f = *state;

	target(f, 587, true, SK_TLS_MODE_STARTTLS);
	add_port(f, 587, AF_INET, SK_PORT_REFUSED, SK_PMODE_UNKNOWN, NULL,
	    false);
	f->cfg.oauth = true;
	f->cfg.oauth_error = SK_OAUTH_ERR_NO_TOKEN;
	assert_verdict(f, TCP_REFUSED);
}

/* A known reply that is not about the token keeps its verdict. */
static void
test_oauth_known_reply_stays(void **state)
{
	struct fx *f = *state;
	struct sk_doctor_session *s = basic(f);

	f->cfg.provider = sk_providers_find(db, "testmail", NULL);
	reply_with(s, SK_STAGE_AUTH, 535, NULL,
	    "SMTP is disabled for this account");
	f->cfg.user = "me@testmail.example";
	f->cfg.oauth = true;
	assert_verdict(f, AUTH_SERVICE_DISABLED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		T(test_ok),
		T(test_ok_with_preset_no_fix),
		T(test_ok_fully_asked_no_suggestion),
		T(test_dns_no_such_host),
		T(test_dns_no_address),
		T(test_dns_no_answer),
		T(test_tcp_refused),
		T(test_tcp_timeout),
		T(test_tcp_unreachable),
		T(test_tcp_timeout_beats_unreachable),
		T(test_port_blocked_with_suggestion),
		T(test_bare_host_dropped_port_is_ok),
		T(test_port_blocked_then_login_fails),
		T(test_ipv6_broken),
		T(test_ipv6_broken_loses_to_failure),
		T(test_no_greeting),
		T(test_no_greeting_after_tls),
		T(test_greeting_refused),
		T(test_greeting_rate_limited),
		T(test_mode_mismatch_implicit_on_plain),
		T(test_mode_mismatch_plain_on_implicit),
		T(test_auto_mode_no_mismatch),
		T(test_mode_mismatch_wrong_version_number),
		T(test_protocol_error_not_smtp),
		T(test_protocol_error_in_session),
		T(test_starttls_unavailable),
		T(test_starttls_unavailable_alternative),
		T(test_tls_version),
		T(test_tls_version_reply),
		T(test_cert_untrusted),
		T(test_cert_unknown_issuer_is_untrusted),
		T(test_cert_expired),
		T(test_cert_not_yet_valid),
		T(test_clock_skew),
		T(test_clock_skew_expired),
		T(test_hostname_mismatch),
		T(test_ca_store_missing),
		T(test_ca_store_empty),
		T(test_tls_handshake),
		T(test_auth_not_offered),
		T(test_auth_only_after_starttls),
		T(test_plaintext_auth_refused),
		T(test_auth_mech_unsupported),
		T(test_auth_credentials_generic),
		T(test_auth_credentials_preset_help),
		T(test_auth_required_without_user),
		T(test_auth_530_starttls),
		T(test_rule_app_password_bare_host),
		T(test_rule_chinese),
		T(test_rule_service_disabled),
		T(test_rule_basic_disabled),
		T(test_rule_too_many_attempts),
		T(test_rule_sender_mismatch),
		T(test_rule_sender_unverified),
		T(test_rule_quota),
		T(test_rule_spam),
		T(test_recipient_rejected),
		T(test_relay_denied),
		T(test_rate_limited),
		T(test_quota_generic),
		T(test_spam_generic),
		T(test_server_temporary),
		T(test_server_temporary_hangup),
		T(test_server_permanent),
		T(test_smtputf8_unsupported),
		T(test_smtputf8_idn_domain),
		T(test_smtputf8_sender),
		T(test_unsupported_not_smtputf8),
		T(test_judge_is_repeatable),
		T(test_suggestion_quotes_for_the_shell),
		T(test_oauth_client_missing),
		T(test_oauth_revoked),
		T(test_oauth_no_token),
		T(test_oauth_token_refused),
		T(test_oauth_network_first),
		T(test_oauth_known_reply_stays),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
