/*
 * Unit tests for the address-list parser: RFC 5322 §3.4 and its §4.4
 * obsolete forms, and the headers real programs write (cron, PHP, mailx,
 * git send-email).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpkit/addrlist.h"

/* Every mailbox as "addr|name|group|d" (d: 1 with a domain), joined by "; ". */
struct seen {
	char text[4096];
	size_t len;
	int stop_after;		/* >0: stop the parse after that many */
	int calls;
};

static int
collect(void *arg, const struct sk_mailbox *mb)
{
	struct seen *s = arg;
	int n;

	n = snprintf(s->text + s->len, sizeof(s->text) - s->len, "%s%s|%s|%s|%d",
	    s->len > 0 ? "; " : "", mb->addr, mb->name, mb->group,
	    mb->has_domain ? 1 : 0);
	if (n > 0 && (size_t)n < sizeof(s->text) - s->len)
		s->len += (size_t)n;
	s->calls++;
	return s->stop_after > 0 && s->calls >= s->stop_after;
}

static void
expect_list(const char *in, int count, const char *want)
{
	struct seen s;
	struct sk_error err;
	int rc;

	memset(&s, 0, sizeof(s));
	sk_error_clear(&err);
	rc = sk_addrlist_parse(in, strlen(in), collect, &s, &err);
	if (rc != count || strcmp(s.text, want) != 0)
		fail_msg("\"%s\": %d mailboxes \"%s\" (%s), expected %d \"%s\"",
		    in, rc, s.text, err.message, count, want);
}

static void
expect_error(const char *in, const char *fragment)
{
	struct seen s;
	struct sk_error err;
	int rc;

	memset(&s, 0, sizeof(s));
	sk_error_clear(&err);
	rc = sk_addrlist_parse(in, strlen(in), collect, &s, &err);
	if (rc != -1)
		fail_msg("\"%s\": parsed (%d: %s), expected an error", in, rc,
		    s.text);
	assert_int_equal(err.kind, SK_ERR_DATA);
	if (strstr(err.message, fragment) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", in, err.message,
		    fragment);
}

static void
test_plain_addresses(void **state)
{
	(void)state;
	expect_list("bob@example.org", 1, "bob@example.org|||1");
	expect_list("a@x.example, b@y.example", 2,
	    "a@x.example|||1; b@y.example|||1");
	expect_list("  first.last+tag@sub.example.org  ", 1,
	    "first.last+tag@sub.example.org|||1");
	expect_list("", 0, "");
	expect_list("   ", 0, "");
}

static void
test_display_names(void **state)
{
	(void)state;
	expect_list("Bob Smith <bob@example.org>", 1,
	    "bob@example.org|Bob Smith||1");
	expect_list("\"Smith, Bob\" <bob@example.org>, Alice <a@example.org>",
	    2, "bob@example.org|Smith, Bob||1; a@example.org|Alice||1");
	expect_list("<bob@example.org>", 1, "bob@example.org|||1");
	expect_list("\"Bob \\\"the builder\\\"\" <b@example.org>", 1,
	    "b@example.org|Bob \"the builder\"||1");
	/* UTF-8 names (RFC 6532) and encoded words stay as written. */
	expect_list("Zoë Müller <zoe@example.org>", 1,
	    "zoe@example.org|Zoë Müller||1");
	expect_list("=?UTF-8?B?Wm/Dqw==?= <zoe@example.org>", 1,
	    "zoe@example.org|=?UTF-8?B?Wm/Dqw==?=||1");
	/* obs-phrase: a dot in a name */
	expect_list("J. Random Hacker <jrh@example.org>", 1,
	    "jrh@example.org|J. Random Hacker||1");
	/* an address written as the name, as some programs do */
	expect_list("bob@example.org <bob@example.org>", 1,
	    "bob@example.org|bob@example.org||1");
}

static void
test_comments(void **state)
{
	(void)state;
	expect_list("bob@example.org (Bob Smith)", 1, "bob@example.org|||1");
	expect_list("(lead) Bob (middle (nested)) <bob (in) @ (the) "
	    "example.org> (trail)", 1, "bob@example.org|Bob||1");
	expect_list("a@example.org (a, b; c: <d>), c@example.org", 2,
	    "a@example.org|||1; c@example.org|||1");
	expect_list("x@example.org (\\) escaped)", 1, "x@example.org|||1");
}

static void
test_groups(void **state)
{
	(void)state;
	expect_list("undisclosed-recipients:;", 0, "");
	expect_list("Team: a@example.org, \"B\" <b@example.org>;, "
	    "c@example.org", 3, "a@example.org||Team|1; b@example.org|B|Team|1; "
	    "c@example.org|||1");
	expect_list("A Group:a@x.example;B Group: ;", 1,
	    "a@x.example||A Group|1");
	/* a group cut off at the end of the header is forgiven */
	expect_list("Team: a@example.org", 1, "a@example.org||Team|1");
}

static void
test_folded(void **state)
{
	(void)state;
	expect_list("Bob\r\n <bob@example.org>,\r\n\t\"Alice\r\n Jones\" "
	    "<alice@example.org>", 2, "bob@example.org|Bob||1; "
	    "alice@example.org|Alice Jones||1");
	expect_list("a@example.org,\n b@example.org", 2,
	    "a@example.org|||1; b@example.org|||1");
}

static void
test_quoted_local_parts(void **state)
{
	(void)state;
	expect_list("\"john doe\"@example.org", 1,
	    "\"john doe\"@example.org|||1");
	/* quotes that are not needed are dropped */
	expect_list("\"john\"@example.org", 1, "john@example.org|||1");
	expect_list("\"a\\\"b\"@example.org", 1, "\"a\\\"b\"@example.org|||1");
	/* obs-local-part: words and CFWS around the dots */
	expect_list("john . \"q\" . doe @ example . org", 1,
	    "john.q.doe@example.org|||1");
	expect_list("\"a b\".c@example.org", 1, "\"a b.c\"@example.org|||1");
}

static void
test_literals_and_routes(void **state)
{
	(void)state;
	expect_list("postmaster@[192.0.2.1]", 1, "postmaster@[192.0.2.1]|||1");
	expect_list("x@[IPv6:2001:db8::1]", 1, "x@[IPv6:2001:db8::1]|||1");
	expect_list("<@relay.example,@other.example:bob@example.org>", 1,
	    "bob@example.org|||1");
}

static void
test_obsolete_lists(void **state)
{
	(void)state;
	expect_list(",a@example.org,,  ,b@example.org,", 2,
	    "a@example.org|||1; b@example.org|||1");
}

static void
test_bare_local_parts(void **state)
{
	(void)state;
	/* cron writes "To: root" */
	expect_list("root", 1, "root|||0");
	expect_list("root, Admin <admin>", 2, "root|||0; admin|Admin||0");
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error("\"unclosed@example.org", "quoted string is not closed");
	expect_error("a@example.org (unclosed", "comment is not closed");
	expect_error("Bob <bob@example.org", "'>' was expected");
	expect_error("Bob <>", "empty address");
	expect_error("a@", "domain name is missing");
	expect_error("a b@example.org", "a space in an address");
	expect_error("a@example.org b@example.org", "',' was expected");
	expect_error("G1: G2: a@example.org;;", "group inside a group");
	expect_error("a@example.org;", "';' outside a group");
	expect_error(": a@example.org;", "group without a name");
	expect_error("a@example.org)", "unexpected ')'");
	expect_error("a\001b@example.org", "0x01");
	expect_error("x@[1.2[3]", "'[' inside a domain literal");
	expect_error("x@[1.2.3.4", "domain literal is not closed");
	expect_error("<@relay.example bob@example.org>", "must end with ':'");
	expect_error("@example.org", "address was expected");
}

static void
test_error_names_the_octet(void **state)
{
	struct sk_error err;

	(void)state;
	assert_int_equal(sk_addrlist_parse("a@x.example, <b", 15, NULL, NULL,
	    &err), -1);
	assert_non_null(strstr(err.message, "at the end"));
	assert_int_equal(sk_addrlist_parse("a@x.example >", 13, NULL, NULL,
	    &err), -1);
	assert_non_null(strstr(err.message, "at octet 13"));
}

static void
test_callback_stops(void **state)
{
	struct seen s;
	const char *in = "a@example.org, b@example.org, c@example.org";

	(void)state;
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(sk_addrlist_parse(in, strlen(in), collect, &s, NULL),
	    -1);
	assert_int_equal(s.calls, 2);
}

static void
test_length_not_nul(void **state)
{
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	/* only the first 13 octets count: no NUL needed */
	assert_int_equal(sk_addrlist_parse("a@example.org, b@example.org",
	    13, collect, &s, NULL), 1);
	assert_string_equal(s.text, "a@example.org|||1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_addresses),
		cmocka_unit_test(test_display_names),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_folded),
		cmocka_unit_test(test_quoted_local_parts),
		cmocka_unit_test(test_literals_and_routes),
		cmocka_unit_test(test_obsolete_lists),
		cmocka_unit_test(test_bare_local_parts),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_names_the_octet),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_length_not_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
