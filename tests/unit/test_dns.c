/*
 * tests/unit/test_dns.c: name resolution.
 *
 * Literal addresses need no network.  "localhost" comes from /etc/hosts.
 * This machine has no outside network, so a real name may fail either
 * way (no such name, or no resolver answer): those tests assert only the
 * kind of failure and that the deadline was honoured.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtpkit/clock.h"
#include "smtpkit/dns.h"
#include "smtpkit/error.h"

static void
test_literal_ipv4(void **state)
{
	struct sk_addrlist l;
	struct sk_error err;
	char buf[SK_ADDR_STR_MAX];
	const struct sockaddr_in *sin;

	assert_int_equal(sk_dns_resolve("192.0.2.1", 25, 1000, &l, &err), 0);
	assert_int_equal(err.kind, SK_ERR_NONE);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.a[0].ss.ss_family, AF_INET);
	assert_int_equal(l.a[0].len, sizeof(struct sockaddr_in));
	sin = (const struct sockaddr_in *)&l.a[0].ss;
	assert_int_equal(ntohs(sin->sin_port), 25);
	assert_string_equal(sk_addr_str(&l.a[0], buf, sizeof(buf)),
	    "192.0.2.1:25");
}

static void
test_literal_ipv6(void **state)
{
	struct sk_addrlist l;
	char buf[SK_ADDR_STR_MAX];

	assert_int_equal(sk_dns_resolve("2001:db8::1", 587, 1000, &l, NULL),
	    0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.a[0].ss.ss_family, AF_INET6);
	assert_int_equal(l.a[0].len, sizeof(struct sockaddr_in6));
	assert_string_equal(sk_addr_str(&l.a[0], buf, sizeof(buf)),
	    "[2001:db8::1]:587");

	/* The bracketed form a URL or a config file may carry. */
	assert_int_equal(sk_dns_resolve("[::1]", 465, 1000, &l, NULL), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(sk_addr_str(&l.a[0], buf, sizeof(buf)),
	    "[::1]:465");
}

static void
test_literal_is_instant(void **state)
{
	struct sk_addrlist l;
	int64_t t0 = sk_clock_ms();
	int i;

	/* No channel, no resolv.conf: a thousand lookups are nothing. */
	for (i = 0; i < 1000; i++)
		assert_int_equal(sk_dns_resolve("127.0.0.1", 25, 1, &l, NULL),
		    0);
	assert_true(sk_clock_ms() - t0 < 500);
}

static void
test_bad_arguments(void **state)
{
	struct sk_addrlist l;
	struct sk_error err;
	char longname[300];

	assert_int_equal(sk_dns_resolve(NULL, 25, 1000, &l, &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	assert_int_equal(err.stage, SK_STAGE_RESOLVE);
	assert_int_equal(sk_dns_resolve("", 25, 1000, &l, &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	assert_int_equal(sk_dns_resolve("127.0.0.1", 65536, 1000, &l, &err),
	    -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(sk_dns_resolve(longname, 25, 1000, &l, &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	/* NULL err is allowed everywhere. */
	assert_int_equal(sk_dns_resolve("", 25, 1000, &l, NULL), -1);
}

static int
hosts_has_localhost(void)
{
	char line[512], *p, *tok, *save;
	FILE *fp;
	int found = 0;

	if ((fp = fopen("/etc/hosts", "r")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		if ((tok = strtok_r(line, " \t\r\n", &save)) == NULL)
			continue;
		while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL)
			if (strcmp(tok, "localhost") == 0)
				found = 1;
	}
	(void)fclose(fp);
	return found;
}

static void
test_localhost(void **state)
{
	const struct sockaddr_in6 *sin6;
	const struct sockaddr_in *sin;
	struct sk_addrlist l;
	struct sk_error err;
	size_t i;

	if (!hosts_has_localhost()) {
		print_message("skipped: /etc/hosts has no localhost entry\n");
		skip();
	}
	assert_int_equal(sk_dns_resolve("localhost", 2525, 3000, &l, &err),
	    0);
	assert_true(l.n >= 1);
	for (i = 0; i < l.n; i++) {
		if (l.a[i].ss.ss_family == AF_INET) {
			sin = (const struct sockaddr_in *)&l.a[i].ss;
			assert_int_equal(ntohl(sin->sin_addr.s_addr) >> 24,
			    127);
			assert_int_equal(ntohs(sin->sin_port), 2525);
		} else {
			assert_int_equal(l.a[i].ss.ss_family, AF_INET6);
			sin6 = (const struct sockaddr_in6 *)&l.a[i].ss;
			assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
			assert_int_equal(ntohs(sin6->sin6_port), 2525);
		}
	}
	/* IPv6 first when there are both (RFC 8305 §4). */
	if (l.n >= 2 && (l.a[0].ss.ss_family == AF_INET6 ||
	    l.a[1].ss.ss_family == AF_INET6))
		assert_int_equal(l.a[0].ss.ss_family, AF_INET6);
}

static void
test_addr_str(void **state)
{
	struct sk_addrlist l;
	char small[8];

	assert_int_equal(sk_dns_resolve("203.0.113.200", 65535, 1000, &l,
	    NULL), 0);
	/* Cut to the buffer, always terminated. */
	assert_string_equal(sk_addr_str(&l.a[0], small, sizeof(small)),
	    "203.0.1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal_ipv4),
		cmocka_unit_test(test_literal_ipv6),
		cmocka_unit_test(test_literal_is_instant),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_localhost),
		cmocka_unit_test(test_addr_str),
	};

	return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
