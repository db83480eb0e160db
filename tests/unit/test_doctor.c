/*
 * tests/unit/test_doctor.c: sk_doctor_run against scripted SMTP servers in
 * this process, on 127.0.0.1 port 0.
 *
 * Each server is a thread that accepts connections one after the other
 * (the doctor's probe, then its sessions) and answers from a script, plain
 * or with TLS from the first byte.  Every wait is bounded: server sockets
 * have receive timeouts, the accept loop polls a stop pipe, the doctor
 * runs with a short timeout.  No fixed ports, no sleeps; only 127.0.0.1
 * is ever contacted (port_only keeps the doctor off 465, 587, 25 and
 * 2525, which belong to this machine, not to the test).
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
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "smtpkit/doctor.h"
#include "smtpkit/providers.h"

#define TIMEOUT_MS 1000		/* the doctor's, per stage */
#define SERVER_WAIT_S 5		/* the most a server read may wait */

/* ---- a certificate for 127.0.0.1, made once ---- */

static EVP_PKEY *test_key;
static X509 *test_cert;
static char ca_path[] = "/tmp/sk_test_doctor_ca_XXXXXX";

static int
group_setup(void **state)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	X509_NAME *name;
	FILE *fp;
	int fd;

	if ((test_key = EVP_EC_gen("P-256")) == NULL ||
	    (test_cert = X509_new()) == NULL)
		return -1;
	X509_set_version(test_cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(test_cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(test_cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(test_cert), 86400);
	X509_set_pubkey(test_cert, test_key);
	name = X509_get_subject_name(test_cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(test_cert, name);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, test_cert, test_cert, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_subject_alt_name,
	    "DNS:localhost,IP:127.0.0.1");
	if (ext == NULL)
		return -1;
	X509_add_ext(test_cert, ext, -1);
	X509_EXTENSION_free(ext);
	if (X509_sign(test_cert, test_key, EVP_sha256()) <= 0)
		return -1;
	if ((fd = mkstemp(ca_path)) == -1 || (fp = fdopen(fd, "w")) == NULL)
		return -1;
	PEM_write_X509(fp, test_cert);
	return fclose(fp) == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)unlink(ca_path);
	X509_free(test_cert);
	EVP_PKEY_free(test_key);
	return 0;
}

/* ---- a scripted server ---- */

struct server {
	/* the script */
	bool silent;		/* accept, never say a word */
	bool implicit_tls;	/* TLS handshake on accept */
	const char *greeting;	/* default "220 test.local ESMTP" */
	const char *ehlo;	/* whole reply, CRLF-separated lines */
	const char *auth;	/* reply to AUTH */
	const char *mail;
	const char *rcpt;
	const char *dot;	/* reply to the end of the message */

	/* the run */
	int lfd;
	unsigned port;
	int stop[2];
	pthread_t thread;
	SSL_CTX *ctx;
	int connections;
	char log[8192];		/* commands seen, one per line */
	size_t loglen;
};

struct peer {
	int fd;
	SSL *ssl;
};

static ssize_t
peer_read(struct peer *p, char *buf, size_t cap)
{
	if (p->ssl != NULL) {
		int n = SSL_read(p->ssl, buf, (int)cap);

		return n > 0 ? n : -1;
	}
	return recv(p->fd, buf, cap, 0);
}

static void
peer_write(struct peer *p, const char *s)
{
	if (p->ssl != NULL)
		(void)SSL_write(p->ssl, s, (int)strlen(s));
	else
		(void)send(p->fd, s, strlen(s), MSG_NOSIGNAL);
}

static void
reply(struct peer *p, const char *s)
{
	char buf[1024];

	(void)snprintf(buf, sizeof(buf), "%s\r\n", s);
	peer_write(p, buf);
}

static void
logline(struct server *s, const char *line)
{
	int n = snprintf(s->log + s->loglen, sizeof(s->log) - s->loglen,
	    "%s\n", line);

	if (n > 0 && s->loglen + (size_t)n < sizeof(s->log))
		s->loglen += (size_t)n;
}

/* One connection, by the script; returns when the client is gone. */
static void
serve(struct server *s, int fd)
{
	struct timeval tv = { SERVER_WAIT_S, 0 };
	struct peer p = { fd, NULL };
	char buf[4096], line[1024];
	size_t len = 0, i;
	ssize_t n;
	bool data = false;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (s->silent) {
		/* Read (and drop) whatever comes, TLS hellos included. */
		while (recv(fd, buf, sizeof(buf), 0) > 0)
			;
		return;
	}
	if (s->implicit_tls) {
		if ((p.ssl = SSL_new(s->ctx)) == NULL)
			return;
		SSL_set_fd(p.ssl, fd);
		if (SSL_accept(p.ssl) != 1) {
			ERR_clear_error();
			SSL_free(p.ssl);
			return;
		}
	}
	reply(&p, s->greeting != NULL ? s->greeting : "220 test.local ESMTP");
	for (;;) {
		if ((n = peer_read(&p, buf + len, sizeof(buf) - len - 1)) <= 0)
			break;
		len += (size_t)n;
		while ((i = strcspn(buf, "\n")) < len) {
			size_t l = i > 0 && buf[i - 1] == '\r' ? i - 1 : i;

			(void)snprintf(line, sizeof(line), "%.*s", (int)l, buf);
			memmove(buf, buf + i + 1, len - i - 1);
			len -= i + 1;
			buf[len] = '\0';
			if (data) {
				if (strcmp(line, ".") == 0) {
					data = false;
					logline(s, ".");
					reply(&p, s->dot != NULL ? s->dot :
					    "250 2.0.0 Ok: queued as TEST42");
				}
				continue;
			}
			/* Never log what follows AUTH: that is a secret. */
			logline(s, strncasecmp(line, "AUTH", 4) == 0 ?
			    "AUTH" : line);
			if (strncasecmp(line, "EHLO", 4) == 0)
				peer_write(&p, s->ehlo != NULL ? s->ehlo :
				    "250-test.local\r\n250 8BITMIME\r\n");
			else if (strncasecmp(line, "AUTH", 4) == 0)
				reply(&p, s->auth != NULL ? s->auth :
				    "235 2.7.0 Authentication successful");
			else if (strncasecmp(line, "MAIL", 4) == 0)
				reply(&p, s->mail != NULL ? s->mail :
				    "250 2.1.0 Ok");
			else if (strncasecmp(line, "RCPT", 4) == 0)
				reply(&p, s->rcpt != NULL ? s->rcpt :
				    "250 2.1.5 Ok");
			else if (strncasecmp(line, "DATA", 4) == 0) {
				reply(&p, "354 End data with <CR><LF>.<CR><LF>");
				data = true;
			} else if (strncasecmp(line, "QUIT", 4) == 0) {
				reply(&p, "221 2.0.0 Bye");
				goto out;
			} else if (strncasecmp(line, "RSET", 4) == 0)
				reply(&p, "250 2.0.0 Ok");
			else
				reply(&p, "502 5.5.2 Error: command not "
				    "recognized");
		}
		if (len == sizeof(buf) - 1)
			break;
	}
out:
	if (p.ssl != NULL) {
		(void)SSL_shutdown(p.ssl);
		SSL_free(p.ssl);
	}
}

static void *
server_main(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd[2];
	sigset_t set;
	int fd;

	/*
	 * OpenSSL's socket BIO writes with write(2): a client that has gone
	 * would kill the test with SIGPIPE.  Blocked in this thread only, so
	 * that the library's own thread still proves it never raises it.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		pfd[0].fd = s->lfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = s->stop[0];
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, SERVER_WAIT_S * 1000 * 6) <= 0 ||
		    (pfd[1].revents & POLLIN))
			break;
		if ((fd = accept(s->lfd, NULL, NULL)) == -1)
			continue;
		s->connections++;
		serve(s, fd);
		(void)close(fd);
	}
	return NULL;
}

static int
listen_local(unsigned *port)
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
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
server_start(struct server *s)
{
	s->lfd = listen_local(&s->port);
	assert_int_equal(pipe(s->stop), 0);
	if (s->implicit_tls) {
		assert_non_null(s->ctx = SSL_CTX_new(TLS_server_method()));
		assert_int_equal(SSL_CTX_use_certificate(s->ctx, test_cert), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, test_key), 1);
	}
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void
server_stop(struct server *s)
{
	assert_int_equal(write(s->stop[1], "x", 1), 1);
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	(void)close(s->stop[0]);
	(void)close(s->stop[1]);
	(void)close(s->lfd);
	SSL_CTX_free(s->ctx);
}

/* A port where nothing listens: bound, then closed. */
static unsigned
closed_port(void)
{
	unsigned port;

	(void)close(listen_local(&port));
	return port;
}

/* ---- running the doctor ---- */

static void
config(struct sk_doctor_config *c, unsigned port, enum sk_tls_mode tls)
{
	memset(c, 0, sizeof(*c));
	c->host = "127.0.0.1";
	c->port = port;
	c->tls = tls;
	c->port_only = true;
	c->timeout_ms = TIMEOUT_MS;
	c->helo_name = "client.test";
	c->ca_file = ca_path;
	c->lang = "en";
}

static void
run(const struct sk_doctor_config *c, struct sk_doctor_report *r)
{
	struct sk_error err;

	assert_int_equal(sk_doctor_run(c, r, &err), 0);
	assert_int_equal(err.kind, SK_ERR_NONE);
	assert_true(r->summary[0] != '\0');
}

static bool
evidence_has(const struct sk_doctor_report *r, enum sk_doctor_stage st,
    const char *needle)
{
	size_t i;

	for (i = 0; i < r->stages[st].nevidence; i++)
		if (strstr(r->stages[st].evidence[i], needle) != NULL)
			return true;
	return false;
}

static bool
anywhere(const struct sk_doctor_report *r, const char *needle)
{
	size_t i, k;

	if (strstr(r->summary, needle) != NULL ||
	    strstr(r->suggested.command, needle) != NULL ||
	    strstr(r->suggested.config, needle) != NULL)
		return true;
	for (i = 0; i < r->nfix; i++)
		if (strstr(r->fix[i], needle) != NULL)
			return true;
	for (k = 0; k < SK_DOCTOR__COUNT; k++) {
		if (strstr(r->stages[k].detail, needle) != NULL)
			return true;
		if (evidence_has(r, (enum sk_doctor_stage)k, needle))
			return true;
	}
	return false;
}

#define assert_verdict(r, code) \
	assert_string_equal(sk_verdict_name((r)->verdict), #code)

/* ---- the tests ---- */

static void
test_refused(void **state)
{
	struct sk_doctor_config c;
	struct sk_doctor_report r;

	config(&c, closed_port(), SK_TLS_MODE_NONE);
	run(&c, &r);
	assert_verdict(&r, TCP_REFUSED);
	assert_int_equal(r.nports, 1);
	assert_int_equal(r.ports[0].state, SK_PORT_REFUSED);
	assert_int_equal(r.ports[0].port, c.port);
	assert_int_equal(r.stages[SK_DOCTOR_LOCAL].status != SK_CHECK_SKIP,
	    true);
	assert_int_equal(r.stages[SK_DOCTOR_DNS].status, SK_CHECK_OK);
	assert_int_equal(r.stages[SK_DOCTOR_TCP].status, SK_CHECK_FAIL);
	assert_int_equal(r.stages[SK_DOCTOR_TLS].status, SK_CHECK_SKIP);
	assert_int_equal(r.stages[SK_DOCTOR_AUTH].status, SK_CHECK_SKIP);
	assert_true(evidence_has(&r, SK_DOCTOR_TCP, "refused"));
	assert_true(r.total_ms < TIMEOUT_MS);
	sk_doctor_report_fini(&r);
}

static void
test_silent(void **state)
{
	struct server s = { .silent = true };
	struct sk_doctor_config c;
	struct sk_doctor_report r;

	server_start(&s);
	config(&c, s.port, SK_TLS_MODE_NONE);
	run(&c, &r);
	server_stop(&s);
	assert_verdict(&r, NO_GREETING);
	assert_int_equal(r.ports[0].state, SK_PORT_CONNECTED);
	assert_int_equal(r.ports[0].mode, SK_PMODE_SILENT);
	assert_int_equal(r.stages[SK_DOCTOR_TCP].status, SK_CHECK_OK);
	assert_int_equal(r.stages[SK_DOCTOR_GREETING].status, SK_CHECK_FAIL);
	/* The greeting wait and the TLS try share one timeout. */
	assert_true(r.total_ms >= TIMEOUT_MS - 100);
	assert_true(r.total_ms < 2 * TIMEOUT_MS);
	assert_true(evidence_has(&r, SK_DOCTOR_GREETING, "TLS"));
	sk_doctor_report_fini(&r);
}

static void
test_plain_where_implicit_asked(void **state)
{
	struct server s = { .ehlo = "250-test.local\r\n250 PIPELINING\r\n" };
	struct sk_doctor_config c;
	struct sk_doctor_report r;

	server_start(&s);
	config(&c, s.port, SK_TLS_MODE_IMPLICIT);
	run(&c, &r);
	server_stop(&s);
	assert_verdict(&r, TLS_MODE_MISMATCH);
	assert_int_equal(r.ports[0].mode, SK_PMODE_PLAIN);
	assert_false(r.ports[0].starttls);
	assert_string_equal(r.ports[0].banner, "220 test.local ESMTP");
	assert_int_equal(r.stages[SK_DOCTOR_GREETING].status, SK_CHECK_FAIL);
	assert_non_null(strstr(r.summary, "220 test.local ESMTP"));
	/* Where implicit TLS is expected a plaintext banner is told at once. */
	assert_true(r.total_ms < TIMEOUT_MS);
	sk_doctor_report_fini(&r);
}

static void
test_ok_plain_none(void **state)
{
	struct server s = { .ehlo = "250-test.local\r\n250-PIPELINING\r\n"
	    "250 SIZE 1000000\r\n" };
	struct sk_doctor_config c;
	struct sk_doctor_report r;

	server_start(&s);
	config(&c, s.port, SK_TLS_MODE_NONE);
	c.from = "me@test.local";
	c.to = "you@test.local";
	run(&c, &r);
	server_stop(&s);
	assert_verdict(&r, OK);
	assert_int_equal(r.ports[0].mode, SK_PMODE_PLAIN);
	assert_int_equal(r.stages[SK_DOCTOR_GREETING].status, SK_CHECK_OK);
	assert_int_equal(r.stages[SK_DOCTOR_TLS].status, SK_CHECK_SKIP);
	assert_int_equal(r.stages[SK_DOCTOR_EHLO].status, SK_CHECK_OK);
	assert_int_equal(r.stages[SK_DOCTOR_AUTH].status, SK_CHECK_SKIP);
	assert_int_equal(r.stages[SK_DOCTOR_MAIL].status, SK_CHECK_OK);
	assert_int_equal(r.stages[SK_DOCTOR_DATA].status, SK_CHECK_SKIP);
	assert_true(r.caps.esmtp);
	assert_int_equal(r.caps.size_max, 1000000);
	assert_true(evidence_has(&r, SK_DOCTOR_EHLO, "C: EHLO client.test"));
	assert_true(evidence_has(&r, SK_DOCTOR_MAIL,
	    "C: MAIL FROM:<me@test.local>"));
	assert_true(evidence_has(&r, SK_DOCTOR_MAIL, "S: 250 2.1.5 Ok"));
	/* The envelope was checked; no message was sent, and it ended well. */
	assert_null(strstr(s.log, "DATA"));
	assert_non_null(strstr(s.log, "RCPT TO:<you@test.local>\nRSET\n"
	    "QUIT\n"));
	assert_false(r.suggested.valid);
	assert_true(r.total_ms < TIMEOUT_MS);
	sk_doctor_report_fini(&r);
}

static void
test_send(void **state)
{
	struct server s = { .dot = "250 2.0.0 Ok: queued as 4Xyz" };
	struct sk_doctor_config c;
	struct sk_doctor_report r;

	server_start(&s);
	config(&c, s.port, SK_TLS_MODE_NONE);
	c.from = "me@test.local";
	c.to = "you@test.local";
	c.send = true;
	run(&c, &r);
	server_stop(&s);
	assert_verdict(&r, OK);
	assert_int_equal(r.stages[SK_DOCTOR_DATA].status, SK_CHECK_OK);
	assert_string_equal(r.queue_id, "250 2.0.0 Ok: queued as 4Xyz");
	assert_non_null(strstr(s.log, "DATA\n.\n"));
	sk_doctor_report_fini(&r);
}

static void
test_greeting_refused(void **state)
{
	struct server s = { .greeting = "554 5.7.1 test.local: no service "
	    "for you" };
	struct sk_doctor_config c;
	struct sk_doctor_report r;

	server_start(&s);
	config(&c, s.port, SK_TLS_MODE_NONE);
	run(&c, &r);
	server_stop(&s);
	assert_verdict(&r, GREETING_REFUSED);
	assert_int_equal(r.ports[0].mode, SK_PMODE_PLAIN);
	assert_non_null(strstr(r.summary, "no service for you"));
	sk_doctor_report_fini(&r);
}

/* Credentials refused: the secret goes to the server, nowhere else. */
static void
test_auth_refused_secret_hidden(void **state)
{
	static const char secret[] = "correct-horse-battery";
	struct server s = {
		.ehlo = "250-test.local\r\n250 AUTH PLAIN LOGIN\r\n",
		.auth = "535 5.7.8 Authentication credentials invalid",
	};
	struct sk_doctor_config c;
	struct sk_doctor_report r;

	server_start(&s);
	config(&c, s.port, SK_TLS_MODE_NONE);
	c.user = "me@test.local";
	c.secret = secret;
	c.allow_plaintext_auth = true;
	run(&c, &r);
	server_stop(&s);
	assert_verdict(&r, AUTH_CREDENTIALS);
	assert_int_equal(r.stages[SK_DOCTOR_AUTH].status, SK_CHECK_FAIL);
	assert_true(evidence_has(&r, SK_DOCTOR_AUTH, "<redacted>"));
	assert_true(evidence_has(&r, SK_DOCTOR_AUTH, "S: 535 5.7.8"));
	assert_false(anywhere(&r, secret));
	assert_false(anywhere(&r, "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5"));
	sk_doctor_report_fini(&r);
}

/* Silent, then a TLS handshake: implicit TLS, found and used. */
static void
test_implicit_tls(void **state)
{
	struct server s = {
		.implicit_tls = true,
		.ehlo = "250-test.local\r\n250 AUTH PLAIN\r\n",
	};
	struct sk_doctor_config c;
	struct sk_doctor_report r;

	server_start(&s);
	config(&c, s.port, SK_TLS_MODE_IMPLICIT);
	run(&c, &r);
	server_stop(&s);
	assert_verdict(&r, OK);
	assert_int_equal(r.ports[0].mode, SK_PMODE_IMPLICIT);
	assert_int_equal(r.stages[SK_DOCTOR_TLS].status, SK_CHECK_OK);
	assert_true(r.tls_seen);
	assert_int_equal(r.tls.verify_result, 0);
	assert_non_null(strstr(r.tls.sans, "localhost"));
	assert_true(evidence_has(&r, SK_DOCTOR_TLS, "verify result 0"));
	assert_true(r.caps.auth & SK_AUTH_BIT(SK_AUTH_PLAIN));
	sk_doctor_report_fini(&r);
}

/* The reverse: TLS from the first byte, STARTTLS asked for. */
static void
test_implicit_where_starttls_asked(void **state)
{
	struct server s = { .implicit_tls = true };
	struct sk_doctor_config c;
	struct sk_doctor_report r;

	server_start(&s);
	config(&c, s.port, SK_TLS_MODE_STARTTLS);
	run(&c, &r);
	server_stop(&s);
	assert_verdict(&r, TLS_MODE_MISMATCH);
	assert_int_equal(r.ports[0].mode, SK_PMODE_IMPLICIT);
	/* The same port with implicit TLS worked: that is the suggestion. */
	assert_true(r.suggested.valid);
	assert_int_equal(r.suggested.port, s.port);
	assert_int_equal(r.suggested.tls, SK_TLS_MODE_IMPLICIT);
	assert_non_null(strstr(r.suggested.command, "--tls implicit"));
	assert_true(r.total_ms < 2 * TIMEOUT_MS);
	sk_doctor_report_fini(&r);
}

/*
 * The asked port refuses, the preset's other port works: the verdict
 * names the first, the suggestion the second.
 */
static void
test_refused_with_working_alternative(void **state)
{
	struct server s = { .ehlo = "250-test.local\r\n250 8BITMIME\r\n" };
	struct sk_doctor_config c;
	struct sk_doctor_report r;
	struct sk_providers *db;
	struct sk_error err;
	char text[512];
	unsigned dead = closed_port();

	server_start(&s);
	(void)snprintf(text, sizeof(text),
	    "[provider looptest]\nname = Loop Test\nhost = 127.0.0.1\n"
	    "port = %u none\nport = %u none\nrecommended = %u\n", dead,
	    s.port, dead);
	assert_non_null(db = sk_providers_new());
	assert_int_equal(sk_providers_parse(db, text, strlen(text), "test",
	    &err), 0);
	config(&c, 0, SK_TLS_MODE_NONE);
	c.host = NULL;
	c.port_only = false;
	c.db = db;
	c.provider = sk_providers_find(db, "looptest", NULL);
	assert_non_null(c.provider);
	run(&c, &r);
	server_stop(&s);
	assert_verdict(&r, TCP_REFUSED);
	assert_int_equal(r.nports, 2);
	assert_int_equal(r.ports[0].port, dead);
	assert_int_equal(r.ports[1].port, s.port);
	assert_true(r.suggested.valid);
	assert_int_equal(r.suggested.port, s.port);
	assert_int_equal(r.suggested.tls, SK_TLS_MODE_NONE);
	assert_non_null(strstr(r.suggested.config, "[account looptest]"));
	assert_int_equal(r.stages[SK_DOCTOR_EHLO].status, SK_CHECK_OK);
	assert_non_null(strstr(r.stages[SK_DOCTOR_EHLO].detail, "On port"));
	sk_doctor_report_fini(&r);
	sk_providers_free(db);
}

/*
 * A non-ASCII recipient and a server without SMTPUTF8 (RFC 6531): the
 * engine stops before MAIL, as smtpkit send does, and the doctor says so
 * without blaming the server.
 */
static void
test_smtputf8_unsupported(void **state)
{
	struct server s = { .ehlo = "250-test.local\r\n250-PIPELINING\r\n"
	    "250 8BITMIME\r\n" };
	struct sk_doctor_config c;
	struct sk_doctor_report r;
	const struct sk_doctor_stage_result *st;

	server_start(&s);
	config(&c, s.port, SK_TLS_MODE_NONE);
	c.from = "me@test.local";
	c.to = "\xe7\x94\xa8\xe6\x88\xb7@test.local";	/* 用户 */
	run(&c, &r);
	server_stop(&s);
	assert_verdict(&r, SMTPUTF8_UNSUPPORTED);
	assert_int_equal(r.err.stage, SK_STAGE_MAIL);
	assert_int_equal(r.err.kind, SK_ERR_UNSUPPORTED);
	st = &r.stages[SK_DOCTOR_MAIL];
	assert_int_equal(st->status, SK_CHECK_FAIL);
	assert_non_null(strstr(st->detail, c.to));
	assert_non_null(strstr(st->detail, "SMTPUTF8"));
	assert_null(strstr(st->detail, "refused"));
	assert_int_equal(r.stages[SK_DOCTOR_EHLO].status, SK_CHECK_OK);
	assert_int_equal(r.stages[SK_DOCTOR_DATA].status, SK_CHECK_SKIP);
	assert_non_null(strstr(r.summary, "refused nothing"));
	assert_null(strstr(r.summary, "refused at"));
	/* Nothing of the envelope reached the server. */
	assert_null(strstr(s.log, "MAIL"));
	assert_null(strstr(s.log, "RCPT"));
	assert_non_null(strstr(s.log, "QUIT\n"));
	sk_doctor_report_fini(&r);
}

/* The same with SMTPUTF8 offered: MAIL asks for it, RCPT is UTF-8. */
static void
test_smtputf8_offered(void **state)
{
	struct server s = { .ehlo = "250-test.local\r\n250-PIPELINING\r\n"
	    "250 SMTPUTF8\r\n" };
	struct server ascii = { .ehlo = s.ehlo };
	struct sk_doctor_config c;
	struct sk_doctor_report r;

	server_start(&s);
	config(&c, s.port, SK_TLS_MODE_NONE);
	c.from = "me@test.local";
	c.to = "\xe7\x94\xa8\xe6\x88\xb7@test.local";
	run(&c, &r);
	server_stop(&s);
	assert_verdict(&r, OK);
	assert_int_equal(r.stages[SK_DOCTOR_MAIL].status, SK_CHECK_OK);
	assert_non_null(strstr(s.log, "MAIL FROM:<me@test.local> SMTPUTF8\n"
	    "RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@test.local>\nRSET\n"));
	sk_doctor_report_fini(&r);

	/* ASCII addresses never ask for it. */
	server_start(&ascii);
	config(&c, ascii.port, SK_TLS_MODE_NONE);
	c.from = "me@test.local";
	c.to = "you@test.local";
	run(&c, &r);
	server_stop(&ascii);
	assert_verdict(&r, OK);
	assert_non_null(strstr(ascii.log, "MAIL FROM:<me@test.local>\n"));
	sk_doctor_report_fini(&r);
}

static void
test_bad_arguments(void **state)
{
	struct sk_doctor_config c;
	struct sk_doctor_report r;
	struct sk_error err;

	config(&c, 25, SK_TLS_MODE_NONE);
	c.host = NULL;
	assert_int_equal(sk_doctor_run(&c, &r, &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	config(&c, 25, SK_TLS_MODE_NONE);
	c.from = "me@test.local>\r\nRCPT TO:<x@y";
	assert_int_equal(sk_doctor_run(&c, &r, &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	config(&c, 25, SK_TLS_MODE_NONE);
	c.send = true;
	assert_int_equal(sk_doctor_run(&c, &r, &err), -1);
	assert_int_equal(sk_doctor_run(NULL, &r, NULL), -1);
	sk_doctor_report_fini(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_silent),
		cmocka_unit_test(test_plain_where_implicit_asked),
		cmocka_unit_test(test_ok_plain_none),
		cmocka_unit_test(test_send),
		cmocka_unit_test(test_greeting_refused),
		cmocka_unit_test(test_auth_refused_secret_hidden),
		cmocka_unit_test(test_implicit_tls),
		cmocka_unit_test(test_implicit_where_starttls_asked),
		cmocka_unit_test(test_refused_with_working_alternative),
		cmocka_unit_test(test_smtputf8_unsupported),
		cmocka_unit_test(test_smtputf8_offered),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
