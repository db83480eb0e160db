/*
 * tests/unit/test_conn.c: connections, plain and TLS, against peers in
 * this process on 127.0.0.1 port 0.
 *
 * Plain tests need no thread: the kernel completes a TCP handshake from
 * the listen queue, so the test accepts after connecting.  TLS needs both
 * sides to run at once: an OpenSSL server in a thread, with a self-signed
 * certificate for "localhost" made here.  No fixed ports, no sleeps: every
 * wait is a poll with a timeout; every thread is joined.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "smtpkit/clock.h"
#include "smtpkit/conn.h"
#include "smtpkit/dns.h"
#include "smtpkit/error.h"
#include "smtpkit/trace.h"

#define WAIT_MS 5000	/* the most any step here may take */

/* ---- shared fixtures: key and certificates, made once ---- */

static EVP_PKEY *test_key;
static X509 *test_cert;		/* CN/SAN localhost, IP 127.0.0.1 */
static X509 *test_expired;	/* the same, expired a day ago */
static char cert_path[] = "/tmp/sk_test_cert_XXXXXX";
static char expired_path[] = "/tmp/sk_test_expired_XXXXXX";

static X509 *
make_cert(EVP_PKEY *key, long from, long to, long serial)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	X509_NAME *name;
	X509 *x;

	assert_non_null(x = X509_new());
	assert_true(X509_set_version(x, 2));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), serial));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to));
	assert_true(X509_set_pubkey(x, key));
	name = X509_get_subject_name(x);
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0));
	assert_true(X509_set_issuer_name(x, name));
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_subject_alt_name,
	    "DNS:localhost,IP:127.0.0.1");
	assert_non_null(ext);
	assert_true(X509_add_ext(x, ext, -1));
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static void
write_cert(char *path, X509 *x)
{
	FILE *fp;
	int fd;

	assert_true((fd = mkstemp(path)) != -1);
	assert_non_null(fp = fdopen(fd, "w"));
	assert_true(PEM_write_X509(fp, x));
	assert_int_equal(fclose(fp), 0);
}

static int
group_setup(void **state)
{
	test_key = EVP_RSA_gen(2048);
	if (test_key == NULL)
		return -1;
	test_cert = make_cert(test_key, -3600, 86400, 1);
	test_expired = make_cert(test_key, -2 * 86400, -86400, 2);
	write_cert(cert_path, test_cert);
	write_cert(expired_path, test_expired);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)unlink(cert_path);
	(void)unlink(expired_path);
	X509_free(test_cert);
	X509_free(test_expired);
	EVP_PKEY_free(test_key);
	return 0;
}

/* ---- plain sockets ---- */

/* A listening socket on 127.0.0.1, port chosen by the kernel. */
static int
listen_local(struct sk_addrlist *l, int backlog)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd;

	assert_true((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) !=
	    -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	if (l != NULL) {
		memset(l, 0, sizeof(*l));
		l->n = 1;
		memcpy(&l->a[0].ss, &sin, sizeof(sin));
		l->a[0].len = sizeof(sin);
	}
	return fd;
}

/* An address where nothing listens: bound, then closed. */
static void
closed_port(struct sk_addrlist *l)
{
	(void)close(listen_local(l, 1));
}

static int
accept_wait(int lfd)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };

	assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
	return accept(lfd, NULL, NULL);
}

static size_t
recv_wait(int fd, char *buf, size_t cap)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
	n = recv(fd, buf, cap, 0);
	assert_true(n >= 0);
	return (size_t)n;
}

struct transcript {
	char text[4096];
	size_t len;
};

static void
trace_collect(void *arg, enum sk_trace_kind kind, const char *text,
    size_t len)
{
	struct transcript *t = arg;
	int n;

	n = snprintf(t->text + t->len, sizeof(t->text) - t->len, "%s: %.*s\n",
	    sk_trace_kind_name(kind), (int)len, text);
	if (n > 0 && t->len + (size_t)n < sizeof(t->text))
		t->len += (size_t)n;
}

static void
test_round_trip(void **state)
{
	struct transcript tr = { .len = 0 };
	struct sk_trace trace = { trace_collect, &tr };
	struct sk_addrlist l;
	struct sk_error err;
	struct sk_conn *c;
	char buf[64], want[64];
	size_t n;
	int lfd, sfd;

	lfd = listen_local(&l, 4);
	c = sk_conn_connect(&l, 1000, sk_clock_ms() + WAIT_MS, &trace, &err);
	assert_non_null(c);
	assert_int_equal(err.kind, SK_ERR_NONE);
	assert_true((sfd = accept_wait(lfd)) != -1);
	(void)sk_addr_str(&l.a[0], want, sizeof(want));
	assert_string_equal(sk_conn_peer(c), want);
	assert_false(sk_conn_is_tls(c));
	assert_null(sk_conn_tls_info(c));
	assert_false(sk_conn_pending(c));
	assert_true(sk_conn_fd(c) >= 0);
	assert_non_null(strstr(tr.text, "info: connecting to 127.0.0.1:"));
	assert_non_null(strstr(tr.text, "info: connected to 127.0.0.1:"));

	assert_int_equal(sk_conn_write(c, "EHLO x\r\n", 8,
	    sk_clock_ms() + WAIT_MS, &err), 0);
	n = recv_wait(sfd, buf, sizeof(buf));
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "EHLO x\r\n", 8);

	/* Nothing there yet: a try says what it needs, never waits. */
	assert_int_equal(sk_conn_try_read(c, buf, sizeof(buf), &n, &err),
	    SK_IO_WANT_READ);
	assert_int_equal(n, 0);

	assert_int_equal(send(sfd, "250 ok\r\n", 8, 0), 8);
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf),
	    sk_clock_ms() + WAIT_MS, &err), 8);
	assert_memory_equal(buf, "250 ok\r\n", 8);

	assert_int_equal(sk_conn_try_write(c, "QUIT\r\n", 6, &n, &err),
	    SK_IO_OK);
	assert_int_equal(n, 6);
	assert_int_equal(recv_wait(sfd, buf, sizeof(buf)), 6);

	sk_conn_free(c);
	/* Freed means closed: the server sees the end of the stream. */
	assert_int_equal(recv_wait(sfd, buf, sizeof(buf)), 0);
	(void)close(sfd);
	(void)close(lfd);
}

static void
test_refused(void **state)
{
	struct sk_addrlist l;
	struct sk_error err;
	char name[SK_ADDR_STR_MAX];
	int64_t t0;

	closed_port(&l);
	t0 = sk_clock_ms();
	assert_null(sk_conn_connect(&l, 5000, t0 + WAIT_MS, NULL, &err));
	/* Refused is immediate; a timeout would mean a dropped packet. */
	assert_true(sk_clock_ms() - t0 < 1000);
	assert_int_equal(err.stage, SK_STAGE_CONNECT);
	assert_int_equal(err.kind, SK_ERR_REFUSED);
	assert_int_equal(err.sys_errno, ECONNREFUSED);
	assert_non_null(strstr(err.message,
	    sk_addr_str(&l.a[0], name, sizeof(name))));
	assert_non_null(strstr(err.message, "refused"));
}

static void
test_fallback_to_next_address(void **state)
{
	struct transcript tr = { .len = 0 };
	struct sk_trace trace = { trace_collect, &tr };
	struct sk_addrlist l, good;
	struct sk_error err;
	struct sk_conn *c;
	int lfd, sfd;

	closed_port(&l);
	lfd = listen_local(&good, 4);
	l.a[1] = good.a[0];
	l.n = 2;
	assert_non_null(c = sk_conn_connect(&l, 1000,
	    sk_clock_ms() + WAIT_MS, &trace, &err));
	assert_true((sfd = accept_wait(lfd)) != -1);
	assert_non_null(strstr(tr.text, "connection refused"));
	sk_conn_free(c);
	(void)close(sfd);
	(void)close(lfd);
}

static void
test_every_address_named(void **state)
{
	struct sk_addrlist l, other;
	struct sk_error err;
	char a[SK_ADDR_STR_MAX], b[SK_ADDR_STR_MAX];

	closed_port(&l);
	closed_port(&other);
	l.a[1] = other.a[0];
	l.n = 2;
	assert_null(sk_conn_connect(&l, 1000, sk_clock_ms() + WAIT_MS, NULL,
	    &err));
	assert_int_equal(err.kind, SK_ERR_REFUSED);
	assert_non_null(strstr(err.message, sk_addr_str(&l.a[0], a,
	    sizeof(a))));
	assert_non_null(strstr(err.message, sk_addr_str(&l.a[1], b,
	    sizeof(b))));
	print_message("%s\n", err.message);

	assert_null(sk_conn_connect(&l, 1000, sk_clock_ms() - 1, NULL,
	    &err));
	assert_int_equal(err.kind, SK_ERR_TIMEOUT);
	assert_non_null(strstr(err.message, "not tried"));
}

/*
 * A listener whose accept queue is full drops new SYNs (Linux
 * tcp_conn_request()), which is what a filtered port looks like.
 */
static void
test_connect_timeout(void **state)
{
	struct sk_addrlist l;
	struct sk_error err;
	struct sk_conn *held[8], *c = NULL;
	int64_t t0, took = 0;
	size_t i, nheld = 0;
	int lfd;

	lfd = listen_local(&l, 0);
	for (i = 0; i < 8; i++) {
		t0 = sk_clock_ms();
		c = sk_conn_connect(&l, 300, t0 + WAIT_MS, NULL, &err);
		took = sk_clock_ms() - t0;
		if (c == NULL)
			break;
		held[nheld++] = c;
	}
	for (i = 0; i < nheld; i++)
		sk_conn_free(held[i]);
	(void)close(lfd);
	if (c != NULL) {
		print_message("skipped: this kernel never drops SYNs on a "
		    "full accept queue\n");
		skip();
	}
	assert_int_equal(err.kind, SK_ERR_TIMEOUT);
	assert_int_equal(err.sys_errno, ETIMEDOUT);
	assert_true(took >= 290 && took < 1000);
	assert_non_null(strstr(err.message, "no answer within"));
}

/* ---- racing addresses (RFC 8305 §5) ---- */

/*
 * An address whose SYNs go unanswered, as behind a firewall that drops
 * them: a listener with backlog 0 whose accept queue one connection fills
 * (Linux then drops new SYNs, tcp_conn_request()).  *held is that
 * connection.  A kernel that answers anyway makes the caller skip.
 */
static int
blackhole(struct sk_addrlist *l, int *held)
{
	int lfd;

	lfd = listen_local(l, 0);
	assert_true((*held = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) !=
	    -1);
	assert_int_equal(connect(*held, (struct sockaddr *)&l->a[0].ss,
	    l->a[0].len), 0);
	return lfd;
}

/* Where needle starts in the transcript, or -1: for checking order. */
static long
trace_pos(const struct transcript *tr, const char *needle)
{
	const char *p;

	p = strstr(tr->text, needle);
	return p == NULL ? -1 : (long)(p - tr->text);
}

static size_t
count(const char *text, const char *needle)
{
	const char *p = text;
	size_t n = 0;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

/*
 * A refusal starts the next address at once, without waiting for the
 * Connection Attempt Delay: with a deadline shorter than that delay the
 * second address is still reached.
 */
static void
test_race_refused_falls_back_at_once(void **state)
{
	struct transcript tr = { .len = 0 };
	struct sk_trace trace = { trace_collect, &tr };
	struct sk_addrlist l, good;
	struct sk_error err;
	struct sk_conn *c;
	char a[SK_ADDR_STR_MAX], b[SK_ADDR_STR_MAX], line[128];
	long refused, second;
	int lfd, sfd;

	closed_port(&l);
	lfd = listen_local(&good, 4);
	l.a[1] = good.a[0];
	l.n = 2;
	(void)sk_addr_str(&l.a[0], a, sizeof(a));
	(void)sk_addr_str(&l.a[1], b, sizeof(b));
	c = sk_conn_connect(&l, WAIT_MS, sk_clock_ms() + 200, &trace, &err);
	print_message("%s", tr.text);
	assert_non_null(c);
	assert_string_equal(sk_conn_peer(c), b);
	assert_true((sfd = accept_wait(lfd)) != -1);
	(void)snprintf(line, sizeof(line), "info: %s: connection refused", a);
	assert_true((refused = trace_pos(&tr, line)) != -1);
	(void)snprintf(line, sizeof(line), "info: connecting to %s", b);
	assert_true((second = trace_pos(&tr, line)) != -1);
	assert_true(refused < second);
	sk_conn_free(c);
	(void)close(sfd);
	(void)close(lfd);
}

/* Three refusals, then a listener: the fourth address wins. */
static void
test_race_later_address_wins(void **state)
{
	struct transcript tr = { .len = 0 };
	struct sk_trace trace = { trace_collect, &tr };
	struct sk_addrlist l, other, good;
	struct sk_error err;
	struct sk_conn *c;
	char want[SK_ADDR_STR_MAX];
	size_t i;
	int lfd, sfd;

	closed_port(&l);
	for (i = 1; i < 3; i++) {
		closed_port(&other);
		l.a[i] = other.a[0];
	}
	lfd = listen_local(&good, 4);
	l.a[3] = good.a[0];
	l.n = 4;
	assert_non_null(c = sk_conn_connect(&l, 1000,
	    sk_clock_ms() + WAIT_MS, &trace, &err));
	assert_int_equal(err.kind, SK_ERR_NONE);
	assert_string_equal(sk_conn_peer(c), sk_addr_str(&l.a[3], want,
	    sizeof(want)));
	assert_true((sfd = accept_wait(lfd)) != -1);
	assert_int_equal(count(tr.text, "connection refused"), 3);
	assert_int_equal(count(tr.text, "info: connecting to "), 4);
	assert_int_equal(count(tr.text, "info: connected to "), 1);
	sk_conn_free(c);
	(void)close(sfd);
	(void)close(lfd);
}

/*
 * The first address never answers: the second starts while the first is
 * still pending, and wins.  Tried one after another, the first would take
 * the whole deadline.
 */
static void
test_race_unanswered_first(void **state)
{
	struct transcript tr = { .len = 0 };
	struct sk_trace trace = { trace_collect, &tr };
	struct sk_addrlist l, good;
	struct sk_error err;
	struct sk_conn *c;
	char a[SK_ADDR_STR_MAX], b[SK_ADDR_STR_MAX], line[128];
	long start_b, won, gone;
	int held, lfd, glfd, sfd;

	lfd = blackhole(&l, &held);
	glfd = listen_local(&good, 4);
	l.a[1] = good.a[0];
	l.n = 2;
	(void)sk_addr_str(&l.a[0], a, sizeof(a));
	(void)sk_addr_str(&l.a[1], b, sizeof(b));
	c = sk_conn_connect(&l, WAIT_MS, sk_clock_ms() + WAIT_MS, &trace, &err);
	print_message("%s", tr.text);
	if (c != NULL && strcmp(sk_conn_peer(c), a) == 0) {
		sk_conn_free(c);
		(void)close(held);
		(void)close(lfd);
		(void)close(glfd);
		print_message("skipped: this kernel never drops SYNs on a "
		    "full accept queue\n");
		skip();
	}
	assert_non_null(c);
	assert_string_equal(sk_conn_peer(c), b);
	assert_true((sfd = accept_wait(glfd)) != -1);

	(void)snprintf(line, sizeof(line), "info: connecting to %s", b);
	assert_true((start_b = trace_pos(&tr, line)) != -1);
	(void)snprintf(line, sizeof(line), "info: connected to %s", b);
	assert_true((won = trace_pos(&tr, line)) != -1);
	(void)snprintf(line, sizeof(line), "info: %s: abandoned", a);
	assert_true((gone = trace_pos(&tr, line)) != -1);
	assert_true(start_b < won && won < gone);
	/* The first was neither a failure nor the outcome. */
	(void)snprintf(line, sizeof(line), "info: %s: no answer", a);
	assert_int_equal(trace_pos(&tr, line), -1);
	(void)snprintf(line, sizeof(line), "info: connected to %s", a);
	assert_int_equal(trace_pos(&tr, line), -1);

	sk_conn_free(c);
	(void)close(sfd);
	(void)close(held);
	(void)close(lfd);
	(void)close(glfd);
}

/*
 * Every address refused: the message names each in the list's order with
 * its result, and the kind is the refusal.
 */
static void
test_race_all_refused(void **state)
{
	struct sk_addrlist l, other;
	struct sk_error err;
	char name[SK_ADDR_STR_MAX], want[SK_ADDR_STR_MAX + 32];
	const char *at, *prev;
	size_t i;

	closed_port(&l);
	for (i = 1; i < 5; i++) {
		closed_port(&other);
		l.a[i] = other.a[0];
	}
	l.n = 5;
	assert_null(sk_conn_connect(&l, 1000, sk_clock_ms() + WAIT_MS, NULL,
	    &err));
	print_message("%s\n", err.message);
	assert_int_equal(err.stage, SK_STAGE_CONNECT);
	assert_int_equal(err.kind, SK_ERR_REFUSED);
	assert_int_equal(err.sys_errno, ECONNREFUSED);
	assert_non_null(strstr(err.message,
	    "cannot connect to any of 5 addresses: "));
	prev = err.message;
	for (i = 0; i < 5; i++) {
		(void)snprintf(want, sizeof(want), "%s connection refused",
		    sk_addr_str(&l.a[i], name, sizeof(name)));
		assert_non_null(at = strstr(err.message, want));
		assert_true(at >= prev);
		prev = at;
	}
}

/*
 * Sixteen long addresses do not fit one message: the list is cut with
 * "and N more", and the hint, which says what to do, is kept.
 */
static void
test_race_long_list_keeps_hint(void **state)
{
	struct sk_addrlist l, one;
	struct sockaddr_in *sin;
	struct sockaddr_in6 sin6;
	struct sk_error err;
	size_t i;

	(void)state;
	memset(&l, 0, sizeof(l));
	for (i = 0; i < SK_DNS_ADDRS_MAX; i++) {
		/* ::ffff:127.0.0.1, where nothing listens: loopback only. */
		closed_port(&one);
		sin = (struct sockaddr_in *)&one.a[0].ss;
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = sin->sin_port;
		sin6.sin6_addr.s6_addr[10] = 0xff;
		sin6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sin6.sin6_addr.s6_addr[12], &sin->sin_addr, 4);
		memcpy(&l.a[i].ss, &sin6, sizeof(sin6));
		l.a[i].len = sizeof(sin6);
	}
	l.n = SK_DNS_ADDRS_MAX;
	assert_null(sk_conn_connect(&l, 1000, sk_clock_ms() + WAIT_MS, NULL,
	    &err));
	print_message("%s\n", err.message);
	assert_int_equal(err.kind, SK_ERR_REFUSED);
	assert_non_null(strstr(err.message, "cannot connect to any of 16 "
	    "addresses: [::ffff:127.0.0.1]:"));
	assert_non_null(strstr(err.message, " more (refused at once: "));
	assert_non_null(strstr(err.message, "actively rejects it)"));
	assert_true(strlen(err.message) < SK_ERROR_MESSAGE_MAX - 1);
}

/*
 * The kind reported is the last address's in the list, as when they were
 * tried in turn: here the refusal, though the unanswered first address
 * gave up later.
 */
static void
test_race_kind_of_last_address(void **state)
{
	struct sk_addrlist l, other;
	struct sk_error err;
	char a[SK_ADDR_STR_MAX], b[SK_ADDR_STR_MAX];
	const char *pa, *pb;
	int held, lfd;

	lfd = blackhole(&l, &held);
	closed_port(&other);
	l.a[1] = other.a[0];
	l.n = 2;
	(void)sk_addr_str(&l.a[0], a, sizeof(a));
	(void)sk_addr_str(&l.a[1], b, sizeof(b));
	if (sk_conn_connect(&l, 300, sk_clock_ms() + WAIT_MS, NULL,
	    &err) != NULL) {
		print_message("skipped: this kernel never drops SYNs on a "
		    "full accept queue\n");
		(void)close(held);
		(void)close(lfd);
		skip();
	}
	print_message("%s\n", err.message);
	assert_int_equal(err.kind, SK_ERR_REFUSED);
	assert_int_equal(err.sys_errno, ECONNREFUSED);
	assert_non_null(pa = strstr(err.message, a));
	assert_non_null(pb = strstr(err.message, b));
	assert_true(pa < pb);
	assert_non_null(strstr(pa, "no answer within"));
	assert_non_null(strstr(pb, "connection refused"));
	(void)close(held);
	(void)close(lfd);
}

/*
 * Ten unanswered addresses, each with more time than the whole deadline:
 * at most 8 attempts fly at once, so the ninth is never started while
 * the first eight wait; the deadline ends them all, and the message says
 * which were not tried.
 */
static void
test_race_deadline_and_limit(void **state)
{
	struct transcript tr = { .len = 0 };
	struct sk_trace trace = { trace_collect, &tr };
	struct sk_addrlist l;
	struct sk_error err;
	struct sk_conn *c;
	size_t i;
	int held, lfd;

	lfd = blackhole(&l, &held);
	for (i = 1; i < 10; i++)
		l.a[i] = l.a[0];
	l.n = 10;
	c = sk_conn_connect(&l, 60000, sk_clock_ms() + 3000, &trace, &err);
	if (c != NULL) {
		sk_conn_free(c);
		(void)close(held);
		(void)close(lfd);
		print_message("skipped: this kernel never drops SYNs on a "
		    "full accept queue\n");
		skip();
	}
	print_message("%s\n", err.message);
	assert_int_equal(count(tr.text, "info: connecting to "), 8);
	assert_int_equal(count(tr.text, "no answer within"), 8);
	assert_int_equal(err.stage, SK_STAGE_CONNECT);
	assert_int_equal(err.kind, SK_ERR_TIMEOUT);
	assert_int_equal(err.sys_errno, ETIMEDOUT);
	assert_int_equal(count(err.message, "no answer within"), 8);
	/* The two never started: named, or counted where the hint needs
	 * the room. */
	assert_true(count(err.message, "not tried") == 2 ||
	    strstr(err.message, "; and 2 more (no reply at all") != NULL);
	assert_non_null(strstr(err.message, "silently dropping the "
	    "connection)"));
	(void)close(held);
	(void)close(lfd);
}

static void
test_read_deadline(void **state)
{
	struct sk_addrlist l;
	struct sk_error err;
	struct sk_conn *c;
	char buf[16];
	int64_t t0, took;
	int lfd, sfd;

	lfd = listen_local(&l, 4);
	assert_non_null(c = sk_conn_connect(&l, 1000,
	    sk_clock_ms() + WAIT_MS, NULL, &err));
	assert_true((sfd = accept_wait(lfd)) != -1);
	t0 = sk_clock_ms();
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf), t0 + 200, &err),
	    -1);
	took = sk_clock_ms() - t0;
	assert_int_equal(err.kind, SK_ERR_TIMEOUT);
	assert_true(took >= 195 && took < 700);

	/* A passed deadline still hands over what is already there. */
	assert_int_equal(send(sfd, "x", 1, 0), 1);
	assert_int_equal(recv_wait(sk_conn_fd(c), buf, 0), 0);
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf), sk_clock_ms() - 1,
	    &err), 1);
	sk_conn_free(c);
	(void)close(sfd);
	(void)close(lfd);
}

static void
test_eof(void **state)
{
	struct sk_addrlist l;
	struct sk_error err;
	struct sk_conn *c;
	char buf[16];
	size_t n;
	int lfd, sfd;

	lfd = listen_local(&l, 4);
	assert_non_null(c = sk_conn_connect(&l, 1000,
	    sk_clock_ms() + WAIT_MS, NULL, &err));
	assert_true((sfd = accept_wait(lfd)) != -1);
	assert_int_equal(send(sfd, "221 bye\r\n", 9, 0), 9);
	(void)close(sfd);
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf),
	    sk_clock_ms() + WAIT_MS, &err), 9);
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf),
	    sk_clock_ms() + WAIT_MS, &err), 0);
	assert_int_equal(sk_conn_try_read(c, buf, sizeof(buf), &n, &err),
	    SK_IO_EOF);
	sk_conn_free(c);
	(void)close(lfd);
}

/* Writing to a reset connection fails; it must not kill us by SIGPIPE. */
static void
test_write_after_reset(void **state)
{
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	struct sk_addrlist l;
	struct sk_error err;
	struct sk_conn *c;
	char buf[16];
	int i, lfd, rc = 0, sfd;

	lfd = listen_local(&l, 4);
	assert_non_null(c = sk_conn_connect(&l, 1000,
	    sk_clock_ms() + WAIT_MS, NULL, &err));
	assert_true((sfd = accept_wait(lfd)) != -1);
	assert_int_equal(setsockopt(sfd, SOL_SOCKET, SO_LINGER, &lin,
	    sizeof(lin)), 0);
	(void)close(sfd);	/* RST */
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf),
	    sk_clock_ms() + WAIT_MS, &err), -1);
	assert_int_equal(err.kind, SK_ERR_RESET);
	assert_int_equal(err.sys_errno, ECONNRESET);
	for (i = 0; i < 3 && rc == 0; i++)
		rc = sk_conn_write(c, "NOOP\r\n", 6, sk_clock_ms() + WAIT_MS,
		    &err);
	assert_int_equal(rc, -1);
	assert_true(err.kind == SK_ERR_RESET || err.kind == SK_ERR_EOF);
	sk_conn_free(c);
	(void)close(lfd);
}

static void
test_from_fd(void **state)
{
	struct sk_error err;
	struct sk_conn *c;
	char buf[16];
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_non_null(c = sk_conn_from_fd(sv[0], NULL));
	assert_int_equal(sk_conn_fd(c), sv[0]);
	assert_non_null(sk_conn_peer(c));
	assert_int_equal(sk_conn_write(c, "hi", 2, sk_clock_ms() + WAIT_MS,
	    &err), 0);
	assert_int_equal(recv_wait(sv[1], buf, sizeof(buf)), 2);
	assert_int_equal(write(sv[1], "yo", 2), 2);
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf),
	    sk_clock_ms() + WAIT_MS, &err), 2);
	sk_conn_free(c);	/* closes sv[0] */
	(void)close(sv[1]);
	assert_null(sk_conn_from_fd(-1, NULL));
}

/* ---- TLS: an OpenSSL server in a thread ---- */

enum server_mode {
	SRV_ECHO,		/* TLS, echo until the client leaves */
	SRV_TWO_LINES,		/* TLS, one record with two lines, then echo */
	SRV_DROP,		/* TLS, one line, close without close_notify */
	SRV_PLAIN,		/* no TLS: an SMTP greeting */
	SRV_SILENT,		/* accept, say nothing */
	SRV_CLOSE,		/* accept and close at once */
};

struct server {
	int lfd;
	struct sk_addrlist addr;
	enum server_mode mode;
	X509 *cert;
	int min_version, max_version;	/* 0: OpenSSL's defaults */
	pthread_t thread;

	/* What the server saw, read after the join. */
	bool handshake_ok;
	bool close_notify;
	char sni[256];
};

static void
server_drain(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[512];

	while (poll(&pfd, 1, WAIT_MS) == 1 && recv(fd, buf, sizeof(buf), 0) > 0)
		;
}

static void
server_tls(struct server *s, int fd)
{
	const char *sni;
	SSL_CTX *ctx;
	SSL *ssl;
	char buf[512];
	int n;

	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return;
	if (s->min_version != 0 && s->min_version < TLS1_2_VERSION)
		SSL_CTX_set_security_level(ctx, 0);
	if (s->min_version != 0)
		(void)SSL_CTX_set_min_proto_version(ctx, s->min_version);
	if (s->max_version != 0)
		(void)SSL_CTX_set_max_proto_version(ctx, s->max_version);
	if (SSL_CTX_use_certificate(ctx, s->cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, test_key) != 1 ||
	    (ssl = SSL_new(ctx)) == NULL) {
		SSL_CTX_free(ctx);
		return;
	}
	(void)SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1) {
		s->handshake_ok = true;
		if ((sni = SSL_get_servername(ssl,
		    TLSEXT_NAMETYPE_host_name)) != NULL)
			(void)snprintf(s->sni, sizeof(s->sni), "%s", sni);
		if (s->mode == SRV_TWO_LINES)
			(void)SSL_write(ssl, "250-first\r\n250 second\r\n", 23);
		if (s->mode == SRV_DROP) {
			(void)SSL_write(ssl, "220 hi\r\n", 8);
			goto out;	/* SSL_free sends no close_notify */
		}
		while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
			if (SSL_write(ssl, buf, n) != n)
				break;
		if (n == 0 &&
		    SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN)
			s->close_notify = true;
	}
 out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
}

static void *
server_main(void *arg)
{
	struct timeval tv = { .tv_sec = WAIT_MS / 1000 };
	struct server *s = arg;
	struct pollfd pfd = { .fd = s->lfd, .events = POLLIN };
	sigset_t block;
	int fd;

	/*
	 * The client may close while this side still writes (TLS 1.3
	 * session tickets): SIGPIPE from OpenSSL's socket BIO would end the
	 * test.  Blocked for this thread only, so that the main thread
	 * still proves the library never raises it.
	 */
	(void)sigemptyset(&block);
	(void)sigaddset(&block, SIGPIPE);
	(void)pthread_sigmask(SIG_BLOCK, &block, NULL);

	if (poll(&pfd, 1, WAIT_MS) != 1 ||
	    (fd = accept(s->lfd, NULL, NULL)) == -1)
		return NULL;
	/* Blocking, but never for ever. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	switch (s->mode) {
	case SRV_PLAIN:
		(void)send(fd, "220 plain.test ESMTP ready\r\n", 28,
		    MSG_NOSIGNAL);
		server_drain(fd);
		break;
	case SRV_SILENT:
		server_drain(fd);
		break;
	case SRV_CLOSE:
		break;
	default:
		server_tls(s, fd);
		break;
	}
	(void)close(fd);
	return NULL;
}

static void
server_start(struct server *s, enum server_mode mode)
{
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->cert = test_cert;
	s->lfd = listen_local(&s->addr, 4);
}

static void
server_run(struct server *s)
{
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void
server_join(struct server *s)
{
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	(void)close(s->lfd);
}

static struct sk_conn *
client(struct server *s, const struct sk_trace *trace)
{
	struct sk_error err;
	struct sk_conn *c;

	c = sk_conn_connect(&s->addr, 1000, sk_clock_ms() + WAIT_MS, trace,
	    &err);
	assert_non_null(c);
	return c;
}

/* Connect and handshake against a fresh server; returns the result. */
static int
tls_try(struct server *s, const struct sk_tls_config *cfg,
    struct sk_error *err)
{
	struct sk_conn *c;
	int rc;

	server_run(s);
	c = client(s, NULL);
	rc = sk_conn_tls(c, cfg, sk_clock_ms() + WAIT_MS, err);
	print_message("tls: %d %s: %s\n", rc, sk_error_kind_name(err->kind),
	    err->message);
	sk_conn_free(c);
	server_join(s);
	return rc;
}

static void
test_tls_self_signed_rejected(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost" };
	struct sk_error err;
	struct server s;

	server_start(&s, SRV_ECHO);
	assert_int_equal(tls_try(&s, &cfg, &err), -1);
	assert_int_equal(err.stage, SK_STAGE_TLS);
	assert_int_equal(err.kind, SK_ERR_TLS_VERIFY);
	assert_int_equal(err.verify_result,
	    X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
	assert_non_null(strstr(err.message, "self-signed certificate"));
	assert_non_null(strstr(err.message, "CN=localhost"));
	assert_false(s.handshake_ok);
}

static void
test_tls_insecure(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost",
	    .insecure = true };
	struct transcript tr = { .len = 0 };
	struct sk_trace trace = { trace_collect, &tr };
	const struct sk_tls_info *info;
	struct sk_error err;
	struct sk_conn *c;
	struct server s;
	char buf[64];

	server_start(&s, SRV_ECHO);
	server_run(&s);
	c = client(&s, &trace);
	assert_int_equal(sk_conn_tls(c, &cfg, sk_clock_ms() + WAIT_MS, &err),
	    0);
	assert_true(sk_conn_is_tls(c));
	assert_non_null(info = sk_conn_tls_info(c));
	assert_string_equal(info->version, "TLSv1.3");
	assert_true(info->cipher[0] != '\0');
	assert_string_equal(info->subject, "CN=localhost");
	assert_string_equal(info->issuer, "CN=localhost");
	assert_string_equal(info->sans, "localhost");
	assert_non_null(strstr(info->not_after, " UTC"));
	/* Not enforced, but still worked out, for the diagnosis. */
	assert_int_equal(info->verify_result,
	    X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
	assert_non_null(strstr(tr.text, "info: TLS established"));

	assert_int_equal(sk_conn_write(c, "NOOP\r\n", 6,
	    sk_clock_ms() + WAIT_MS, &err), 0);
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf),
	    sk_clock_ms() + WAIT_MS, &err), 6);
	assert_memory_equal(buf, "NOOP\r\n", 6);
	/* A second handshake on the same connection is a usage error. */
	assert_int_equal(sk_conn_tls(c, &cfg, sk_clock_ms() + WAIT_MS, &err),
	    -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	sk_conn_free(c);
	server_join(&s);
	assert_true(s.close_notify);
	assert_string_equal(s.sni, "localhost");
}

static void
test_tls_ca_file_round_trip(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost",
	    .ca_file = cert_path };
	const struct sk_tls_info *info;
	struct sk_error err;
	struct sk_conn *c;
	struct server s;
	char buf[64];
	size_t n, off;

	server_start(&s, SRV_TWO_LINES);
	server_run(&s);
	c = client(&s, NULL);
	assert_int_equal(sk_conn_tls(c, &cfg, sk_clock_ms() + WAIT_MS, &err),
	    0);
	assert_non_null(info = sk_conn_tls_info(c));
	assert_int_equal(info->verify_result, X509_V_OK);
	assert_string_equal(info->verify_text, "ok");

	/* One record, read in small pieces: the rest waits inside TLS. */
	assert_int_equal(sk_conn_read(c, buf, 4, sk_clock_ms() + WAIT_MS,
	    &err), 4);
	assert_true(sk_conn_pending(c));
	off = 4;
	while (off < 23) {
		assert_true(sk_conn_pending(c));
		assert_int_equal(sk_conn_try_read(c, buf + off,
		    sizeof(buf) - off, &n, &err), SK_IO_OK);
		off += n;
	}
	assert_false(sk_conn_pending(c));
	assert_memory_equal(buf, "250-first\r\n250 second\r\n", 23);

	assert_int_equal(sk_conn_write(c, "MAIL FROM:<a@b>\r\n", 17,
	    sk_clock_ms() + WAIT_MS, &err), 0);
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf),
	    sk_clock_ms() + WAIT_MS, &err), 17);
	assert_memory_equal(buf, "MAIL FROM:<a@b>\r\n", 17);
	assert_int_equal(sk_conn_try_read(c, buf, sizeof(buf), &n, &err),
	    SK_IO_WANT_READ);
	sk_conn_free(c);
	server_join(&s);
	assert_true(s.handshake_ok);
	assert_true(s.close_notify);
}

static void
test_tls_hostname_mismatch(void **state)
{
	struct sk_tls_config cfg = { .servername = "wrong.example",
	    .ca_file = cert_path };
	struct sk_error err;
	struct server s;

	server_start(&s, SRV_ECHO);
	assert_int_equal(tls_try(&s, &cfg, &err), -1);
	assert_int_equal(err.kind, SK_ERR_TLS_VERIFY);
	assert_int_equal(err.verify_result, X509_V_ERR_HOSTNAME_MISMATCH);
	assert_non_null(strstr(err.message,
	    "hostname mismatch: asked for wrong.example, certificate names "
	    "localhost"));
}

static void
test_tls_ip_literal(void **state)
{
	struct sk_tls_config cfg = { .servername = "127.0.0.1",
	    .ca_file = cert_path };
	struct sk_error err;
	struct server s;

	server_start(&s, SRV_ECHO);
	assert_int_equal(tls_try(&s, &cfg, &err), 0);
	/* No SNI for an address (RFC 6066 §3); the IP SAN matched. */
	assert_string_equal(s.sni, "");

	cfg.servername = "127.0.0.2";
	server_start(&s, SRV_ECHO);
	assert_int_equal(tls_try(&s, &cfg, &err), -1);
	assert_int_equal(err.verify_result, X509_V_ERR_IP_ADDRESS_MISMATCH);
	assert_non_null(strstr(err.message, "IP 127.0.0.1"));
}

static void
test_tls_expired(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost",
	    .ca_file = expired_path };
	struct sk_error err;
	struct server s;

	server_start(&s, SRV_ECHO);
	s.cert = test_expired;
	assert_int_equal(tls_try(&s, &cfg, &err), -1);
	assert_int_equal(err.kind, SK_ERR_TLS_VERIFY);
	assert_int_equal(err.verify_result, X509_V_ERR_CERT_HAS_EXPIRED);
	assert_non_null(strstr(err.message, "certificate has expired "
	    "(notAfter "));
	assert_non_null(strstr(err.message, "local clock "));
}

static void
test_tls_on_plaintext_port(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost" };
	struct sk_error err;
	struct server s;

	server_start(&s, SRV_PLAIN);
	assert_int_equal(tls_try(&s, &cfg, &err), -1);
	assert_int_equal(err.kind, SK_ERR_TLS_HANDSHAKE);
	assert_int_equal(ERR_GET_REASON(err.ssl_error),
	    SSL_R_WRONG_VERSION_NUMBER);
	assert_non_null(strstr(err.message, "wrong version number"));
	assert_non_null(strstr(err.message, "220 plain.test ESMTP ready"));
	assert_non_null(strstr(err.message, "plain SMTP"));
}

static void
test_tls_old_server(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost",
	    .insecure = true };
	struct sk_error err;
	struct server s;

	server_start(&s, SRV_ECHO);
	s.min_version = TLS1_VERSION;
	s.max_version = TLS1_1_VERSION;
	assert_int_equal(tls_try(&s, &cfg, &err), -1);
	assert_int_equal(err.kind, SK_ERR_TLS_HANDSHAKE);
	assert_true(ERR_GET_REASON(err.ssl_error) ==
	    SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
	    ERR_GET_REASON(err.ssl_error) == SSL_R_UNSUPPORTED_PROTOCOL);
	assert_non_null(strstr(err.message, "TLSv1.2"));
}

static void
test_tls_server_below_minimum(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost",
	    .insecure = true, .min_version = SK_TLS_1_3 };
	struct sk_error err;
	struct server s;

	server_start(&s, SRV_ECHO);
	s.max_version = TLS1_2_VERSION;
	assert_int_equal(tls_try(&s, &cfg, &err), -1);
	assert_int_equal(err.kind, SK_ERR_TLS_HANDSHAKE);
	assert_true(ERR_GET_REASON(err.ssl_error) ==
	    SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
	    ERR_GET_REASON(err.ssl_error) == SSL_R_UNSUPPORTED_PROTOCOL);
	assert_non_null(strstr(err.message, "TLSv1.3"));
}

static void
test_tls_1_0_when_asked(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost",
	    .insecure = true, .min_version = SK_TLS_1_0 };
	struct sk_error err;
	struct sk_conn *c;
	struct server s;

	server_start(&s, SRV_ECHO);
	s.min_version = TLS1_VERSION;
	s.max_version = TLS1_VERSION;
	server_run(&s);
	c = client(&s, NULL);
	assert_int_equal(sk_conn_tls(c, &cfg, sk_clock_ms() + WAIT_MS, &err),
	    0);
	assert_string_equal(sk_conn_tls_info(c)->version, "TLSv1");
	sk_conn_free(c);
	server_join(&s);
}

static void
test_tls_handshake_deadline(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost" };
	struct sk_error err;
	struct sk_conn *c;
	struct server s;
	int64_t t0, took;

	server_start(&s, SRV_SILENT);
	server_run(&s);
	c = client(&s, NULL);
	t0 = sk_clock_ms();
	assert_int_equal(sk_conn_tls(c, &cfg, t0 + 200, &err), -1);
	took = sk_clock_ms() - t0;
	assert_int_equal(err.kind, SK_ERR_TIMEOUT);
	assert_int_equal(err.stage, SK_STAGE_TLS);
	assert_true(took >= 195 && took < 1000);
	assert_false(sk_conn_is_tls(c));
	sk_conn_free(c);
	server_join(&s);
}

static void
test_tls_peer_closes(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost" };
	struct sk_error err;
	struct server s;

	server_start(&s, SRV_CLOSE);
	assert_int_equal(tls_try(&s, &cfg, &err), -1);
	assert_true(err.kind == SK_ERR_EOF || err.kind == SK_ERR_RESET);
}

static void
test_tls_unexpected_eof(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost",
	    .ca_file = cert_path };
	struct sk_error err;
	struct sk_conn *c;
	struct server s;
	char buf[64];

	server_start(&s, SRV_DROP);
	server_run(&s);
	c = client(&s, NULL);
	assert_int_equal(sk_conn_tls(c, &cfg, sk_clock_ms() + WAIT_MS, &err),
	    0);
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf),
	    sk_clock_ms() + WAIT_MS, &err), 8);
	/* No close_notify: still just the end of the stream for SMTP. */
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf),
	    sk_clock_ms() + WAIT_MS, &err), 0);
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf),
	    sk_clock_ms() + WAIT_MS, &err), 0);
	sk_conn_free(c);
	server_join(&s);
}

static void
test_tls_ca_file_unreadable(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost",
	    .ca_file = "/nonexistent/ca.pem" };
	struct sk_error err;
	struct sk_conn *c;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_non_null(c = sk_conn_from_fd(sv[0], NULL));
	assert_int_equal(sk_conn_tls(c, &cfg, sk_clock_ms() + WAIT_MS, &err),
	    -1);
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	assert_non_null(strstr(err.message, "/nonexistent/ca.pem"));
	assert_false(sk_conn_is_tls(c));
	sk_conn_free(c);
	(void)close(sv[1]);
	assert_int_equal(ERR_peek_error(), 0);
}

/* Set or (value NULL) unset name; the old value goes into saved. */
static void
env_swap(const char *name, const char *value, char **saved)
{
	const char *old = getenv(name);

	*saved = old != NULL ? strdup(old) : NULL;
	if (value != NULL)
		assert_int_equal(setenv(name, value, 1), 0);
	else
		assert_int_equal(unsetenv(name), 0);
}

static void
env_restore(const char *name, char *saved)
{
	if (saved != NULL)
		assert_int_equal(setenv(name, saved, 1), 0);
	else
		assert_int_equal(unsetenv(name), 0);
	free(saved);
}

/*
 * Plaintext queued behind the STARTTLS reply must never be taken for
 * TLS or for SMTP (RFC 3207 §4): the handshake fails and says why.
 */
static void
test_tls_starttls_injection(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost",
	    .insecure = true };
	struct pollfd pfd = { .events = POLLIN };
	struct sk_addrlist l;
	struct sk_error err;
	struct sk_conn *c;
	char buf[64];
	int lfd, sfd;

	lfd = listen_local(&l, 4);
	assert_non_null(c = sk_conn_connect(&l, 1000,
	    sk_clock_ms() + WAIT_MS, NULL, &err));
	assert_true((sfd = accept_wait(lfd)) != -1);
	assert_int_equal(send(sfd, "220 go ahead\r\n", 14, 0), 14);
	assert_int_equal(sk_conn_read(c, buf, sizeof(buf),
	    sk_clock_ms() + WAIT_MS, &err), 14);
	assert_int_equal(send(sfd, "250 injected\r\n", 14, 0), 14);
	pfd.fd = sk_conn_fd(c);
	assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);

	assert_int_equal(sk_conn_tls(c, &cfg, sk_clock_ms() + WAIT_MS, &err),
	    -1);
	print_message("%s\n", err.message);
	assert_int_equal(err.kind, SK_ERR_TLS_HANDSHAKE);
	assert_non_null(strstr(err.message, "after accepting STARTTLS"));
	assert_non_null(strstr(err.message, "250 injected"));
	assert_false(sk_conn_is_tls(c));
	/* The connection is spent: no plaintext after a failed TLS. */
	assert_int_equal(sk_conn_write(c, "QUIT\r\n", 6,
	    sk_clock_ms() + WAIT_MS, &err), -1);
	sk_conn_free(c);
	(void)close(sfd);
	(void)close(lfd);
}

/* SSL_CERT_FILE / SSL_CERT_DIR replace the system store, as in OpenSSL. */
static void
test_tls_env_store(void **state)
{
	struct sk_tls_config cfg = { .servername = "localhost" };
	struct sk_error err;
	struct server s;
	char *old_file, *old_dir;
	int rc;

	env_swap("SSL_CERT_FILE", cert_path, &old_file);
	env_swap("SSL_CERT_DIR", NULL, &old_dir);
	server_start(&s, SRV_ECHO);
	rc = tls_try(&s, &cfg, &err);
	env_restore("SSL_CERT_FILE", old_file);
	env_restore("SSL_CERT_DIR", old_dir);
	assert_int_equal(rc, 0);

	env_swap("SSL_CERT_DIR", "/nonexistent/certs", &old_dir);
	server_start(&s, SRV_SILENT);
	rc = tls_try(&s, &cfg, &err);
	env_restore("SSL_CERT_DIR", old_dir);
	assert_int_equal(rc, -1);
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	assert_non_null(strstr(err.message,
	    "SSL_CERT_DIR=/nonexistent/certs"));
}

static void
test_tls_versions(void **state)
{
	enum sk_tls_version v;

	assert_string_equal(sk_tls_version_name(SK_TLS_1_2), "TLSv1.2");
	assert_string_equal(sk_tls_version_name(SK_TLS_1_0), "TLSv1.0");
	assert_string_equal(sk_tls_version_name(SK_TLS_ANY), "TLSv1.2");
	assert_string_equal(sk_tls_version_name((enum sk_tls_version)99),
	    "unknown");
	assert_int_equal(sk_tls_version_parse("1.2", &v), 0);
	assert_int_equal(v, SK_TLS_1_2);
	assert_int_equal(sk_tls_version_parse("tls1.3", &v), 0);
	assert_int_equal(v, SK_TLS_1_3);
	assert_int_equal(sk_tls_version_parse("TLSv1.0", &v), 0);
	assert_int_equal(v, SK_TLS_1_0);
	assert_int_equal(sk_tls_version_parse("TLSv1.1", &v), 0);
	assert_int_equal(v, SK_TLS_1_1);
	assert_int_equal(sk_tls_version_parse("any", &v), 0);
	assert_int_equal(v, SK_TLS_ANY);
	assert_int_equal(sk_tls_version_parse("1.4", &v), -1);
	assert_int_equal(sk_tls_version_parse("ssl3", &v), -1);
	assert_int_equal(sk_tls_version_parse("", &v), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_fallback_to_next_address),
		cmocka_unit_test(test_every_address_named),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_race_refused_falls_back_at_once),
		cmocka_unit_test(test_race_later_address_wins),
		cmocka_unit_test(test_race_unanswered_first),
		cmocka_unit_test(test_race_all_refused),
		cmocka_unit_test(test_race_long_list_keeps_hint),
		cmocka_unit_test(test_race_kind_of_last_address),
		cmocka_unit_test(test_race_deadline_and_limit),
		cmocka_unit_test(test_read_deadline),
		cmocka_unit_test(test_eof),
		cmocka_unit_test(test_write_after_reset),
		cmocka_unit_test(test_from_fd),
		cmocka_unit_test(test_tls_self_signed_rejected),
		cmocka_unit_test(test_tls_insecure),
		cmocka_unit_test(test_tls_ca_file_round_trip),
		cmocka_unit_test(test_tls_hostname_mismatch),
		cmocka_unit_test(test_tls_ip_literal),
		cmocka_unit_test(test_tls_expired),
		cmocka_unit_test(test_tls_on_plaintext_port),
		cmocka_unit_test(test_tls_old_server),
		cmocka_unit_test(test_tls_server_below_minimum),
		cmocka_unit_test(test_tls_1_0_when_asked),
		cmocka_unit_test(test_tls_handshake_deadline),
		cmocka_unit_test(test_tls_peer_closes),
		cmocka_unit_test(test_tls_unexpected_eof),
		cmocka_unit_test(test_tls_ca_file_unreadable),
		cmocka_unit_test(test_tls_starttls_injection),
		cmocka_unit_test(test_tls_env_store),
		cmocka_unit_test(test_tls_versions),
	};

	return cmocka_run_group_tests_name("conn", tests, group_setup,
	    group_teardown);
}
