/*
 * smtpkit: the doctor's parallel probes.
 *
 * One poll(2) loop drives every (address, port) pair through its phases:
 *
 *	connect ---> greeting ---> done		(a "220" banner, EHLO, QUIT)
 *	                 \-------> tls ---> done	(silence: try TLS)
 *
 * Connecting is bounded by one deadline for the whole set.  After that,
 * each port's first connected address has one timeout from its own
 * connection for the rest: a short wait for the banner (shorter where
 * implicit TLS is expected, since plaintext servers greet at once), then
 * a TLS handshake on the same connection.  A server speaks first in SMTP
 * (RFC 5321 §3.1) but never in TLS (RFC 8446 §4.1.2: the client hello
 * comes first), so silence is what an implicit TLS port (RFC 8314 §3.3)
 * looks like to a plaintext client.
 *
 * The handshake runs over memory BIOs: we move the octets, so nothing can
 * raise SIGPIPE, and we see the server's first octets before OpenSSL
 * does: a plaintext banner arriving late (a greeting delay, as
 * anti-spam servers use) is read as a banner, not as a TLS error.
 * Certificates are not checked here; the tls stage does that.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "smtpkit/clock.h"
#include "conn_internal.h"
#include "probe.h"

#define PROBE_READ 4096
#define PROBE_OUT 16384		/* TLS client flights are far smaller */
#define GREET_IMPLICIT_MAX 2000	/* ms to wait for a banner where TLS is expected */

enum phase {
	PH_CONNECT,
	PH_GREET,
	PH_TLS,
	PH_DONE
};

struct pstate {
	struct sk__probe *p;
	const struct sk__probe_config *cfg;
	int64_t start;		/* of the whole run */
	enum phase ph;
	int fd;
	int64_t deadline;	/* of the current wait */
	int64_t end;		/* connected + timeout: the last moment */

	/* greeting */
	struct sk_client *client;
	bool got_bytes;

	/* TLS */
	SSL *ssl;
	BIO *rbio;		/* what the server sent, for OpenSSL */
	BIO *wbio;		/* what OpenSSL wants sent */
	bool tls_seen;		/* the server sent a TLS record */
	char out[PROBE_OUT];
	size_t out_len, out_off;
	bool oom;
};

/* ---- lines ---- */

int
sk__lines_add(char ***v, size_t *n, const char *fmt, ...)
{
	char buf[1024], **nv;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((nv = realloc(*v, (*n + 1) * sizeof(*nv))) == NULL)
		return -1;
	*v = nv;
	if ((nv[*n] = strdup(buf)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

void
sk__lines_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
sk__probe_fini(struct sk__probe *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		sk__lines_free(p[i].evidence, p[i].nevidence);
		p[i].evidence = NULL;
		p[i].nevidence = 0;
	}
}

/* One line of evidence for this pair, also shown to the caller's trace. */
static void
note(struct pstate *ps, enum sk_trace_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
note(struct pstate *ps, enum sk_trace_kind kind, const char *fmt, ...)
{
	struct sk__probe *p = ps->p;
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sk_trace_printf(ps->cfg->trace, kind, "[probe %s] %s",
	    p->res.address, buf);
	if (p->nevidence >= SK__PROBE_LINES_MAX)
		return;
	if (sk__lines_add(&p->evidence, &p->nevidence, "%s", buf) == -1)
		ps->oom = true;
}

/* The client engine's lines: the exact protocol seen on this port. */
static void
probe_trace(void *arg, enum sk_trace_kind kind, const char *text, size_t len)
{
	struct pstate *ps = arg;
	struct sk__probe *p = ps->p;

	switch (kind) {
	case SK_TRACE_RECV:
		if (p->res.banner[0] == '\0')
			(void)snprintf(p->res.banner, sizeof(p->res.banner),
			    "%.*s", (int)len, text);
		note(ps, kind, "S: %.*s", (int)len, text);
		break;
	case SK_TRACE_SEND:
		note(ps, kind, "C: %.*s", (int)len, text);
		break;
	default:
		break;		/* engine states and notes: not evidence */
	}
}

/* ---- phases ---- */

static int64_t
since(const struct pstate *ps)
{
	return sk_clock_ms() - ps->start;
}

static void
finish(struct pstate *ps)
{
	if (ps->ssl != NULL) {
		SSL_free(ps->ssl);	/* frees both BIOs */
		ps->ssl = NULL;
	}
	sk_client_free(ps->client);
	ps->client = NULL;
	if (ps->fd != -1)
		(void)close(ps->fd);
	ps->fd = -1;
	ps->p->done_ms = since(ps);
	ps->ph = PH_DONE;
}

static enum sk_port_state
errno_state(int e)
{
	switch (sk__errno_kind(e)) {
	case SK_ERR_REFUSED:
		return SK_PORT_REFUSED;
	case SK_ERR_TIMEOUT:
		return SK_PORT_TIMEOUT;
	case SK_ERR_RESET:
	case SK_ERR_EOF:
		return SK_PORT_RESET;
	case SK_ERR_UNREACHABLE:
	default:
		return SK_PORT_UNREACHABLE;
	}
}

static void
connect_failed(struct pstate *ps, int e)
{
	struct sk__probe *p = ps->p;
	char ebuf[128];

	p->res.state = errno_state(e);
	p->res.sys_errno = e;
	p->connect_ms = since(ps);
	p->res.ms = p->connect_ms;
	if (e == ETIMEDOUT)
		note(ps, SK_TRACE_INFO, "no answer within %lld ms",
		    (long long)p->res.ms);
	else
		note(ps, SK_TRACE_INFO, "%s after %lld ms",
		    sk__errno_text(e, ebuf, sizeof(ebuf)),
		    (long long)p->res.ms);
	finish(ps);
}

/* True when another address of the same port already does its greeting. */
static bool
port_claimed(const struct pstate *ps, const struct pstate *all, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (&all[i] != ps && all[i].p->port == ps->p->port &&
		    all[i].p->greeted)
			return true;
	return false;
}

static void
connected(struct pstate *ps, struct pstate *all, size_t n)
{
	struct sk__probe *p = ps->p;
	const struct sk__probe_config *cfg = ps->cfg;
	struct sk_client_config cc;
	int64_t now = sk_clock_ms(), wait;
	int one = 1;

	p->res.state = SK_PORT_CONNECTED;
	p->connect_ms = now - ps->start;
	p->res.ms = p->connect_ms;
	note(ps, SK_TRACE_INFO, "connected in %lld ms", (long long)p->res.ms);
	if (port_claimed(ps, all, n)) {
		finish(ps);
		return;
	}
	p->greeted = true;
	(void)setsockopt(ps->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	memset(&cc, 0, sizeof(cc));
	cc.helo_name = cfg->helo_name;
	cc.tls_mode = SK_TLS_MODE_NONE;
	cc.trace.fn = probe_trace;
	cc.trace.arg = ps;
	if ((ps->client = sk_client_new(&cc, NULL)) == NULL) {
		ps->oom = true;
		finish(ps);
		return;
	}
	ps->end = now + cfg->timeout_ms;
	/*
	 * Plaintext servers greet at once, so where TLS is expected a short
	 * wait tells them apart; elsewhere, leave room for a greeting delay
	 * and still for the handshake after it.
	 */
	if (p->expect == SK_TLS_MODE_IMPLICIT) {
		wait = cfg->timeout_ms / 4;
		if (wait > GREET_IMPLICIT_MAX)
			wait = GREET_IMPLICIT_MAX;
	} else
		wait = cfg->timeout_ms / 2;
	ps->deadline = now + wait;
	ps->ph = PH_GREET;
}

static void
start_connect(struct pstate *ps, int64_t deadline)
{
	const struct sk_addr *a = &ps->p->addr;

	ps->fd = socket(a->ss.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ps->fd == -1) {
		connect_failed(ps, errno);
		return;
	}
	ps->ph = PH_CONNECT;
	ps->deadline = deadline;
	if (connect(ps->fd, (const struct sockaddr *)&a->ss, a->len) == 0)
		return;		/* loopback may connect at once: POLLOUT says */
	if (errno != EINPROGRESS && errno != EINTR)
		connect_failed(ps, errno);
}

/* A printable copy of the first line of buf, for a banner. */
static void
first_line(const char *buf, size_t len, char *out, size_t cap)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 1 < cap; i++) {
		if (buf[i] == '\r' || buf[i] == '\n')
			break;
		out[o++] = isprint((unsigned char)buf[i]) ? buf[i] : '.';
	}
	out[o] = '\0';
}

/*
 * Octets that are not SMTP where a greeting was due, or plaintext where a
 * TLS record was: classify by their look and stop.
 */
static void
plaintext_seen(struct pstate *ps, const char *buf, size_t len)
{
	struct sk__probe *p = ps->p;

	first_line(buf, len, p->res.banner, sizeof(p->res.banner));
	note(ps, SK_TRACE_RECV, "S: %s", p->res.banner);
	if (len >= 3 && isdigit((unsigned char)buf[0]) &&
	    isdigit((unsigned char)buf[1]) && isdigit((unsigned char)buf[2]))
		p->res.mode = SK_PMODE_PLAIN;
	else
		p->res.mode = SK_PMODE_UNKNOWN;
	finish(ps);
}

/* Send what is queued: the engine's output, or the TLS flight. */
static int
flush(struct pstate *ps)
{
	const char *data;
	size_t len;
	ssize_t r;

	for (;;) {
		if (ps->client != NULL && ps->ph == PH_GREET) {
			data = sk_client_output(ps->client, &len);
		} else {
			data = ps->out + ps->out_off;
			len = ps->out_len - ps->out_off;
		}
		if (len == 0)
			return 0;
		do
			r = send(ps->fd, data, len, MSG_NOSIGNAL);
		while (r == -1 && errno == EINTR);
		if (r == -1)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
		if (ps->client != NULL && ps->ph == PH_GREET) {
			sk_client_sent(ps->client, (size_t)r);
		} else {
			ps->out_off += (size_t)r;
			if (ps->out_off == ps->out_len)
				ps->out_off = ps->out_len = 0;
		}
	}
}

static bool
out_pending(const struct pstate *ps)
{
	size_t len;

	if (ps->ph == PH_GREET && ps->client != NULL) {
		(void)sk_client_output(ps->client, &len);
		return len > 0;
	}
	return ps->out_len > ps->out_off;
}

static void
tls_done(struct pstate *ps, enum sk_port_mode mode, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
tls_done(struct pstate *ps, enum sk_port_mode mode, const char *fmt, ...)
{
	struct sk__probe *p = ps->p;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(p->tls_note, sizeof(p->tls_note), fmt, ap);
	va_end(ap);
	p->res.mode = mode;
	note(ps, SK_TRACE_INFO, "%s", p->tls_note);
	finish(ps);
}

/* One step of the handshake; moves OpenSSL's output to ps->out. */
static void
tls_step(struct pstate *ps)
{
	char reason[256];
	const SSL_CIPHER *c;
	unsigned long e;
	size_t room;
	int r, n, sslerr;

	ERR_clear_error();
	r = SSL_do_handshake(ps->ssl);
	sslerr = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ps->ssl, r);
	while ((room = sizeof(ps->out) - ps->out_len) > 0 &&
	    (n = BIO_read(ps->wbio, ps->out + ps->out_len,
	    room > INT32_MAX ? INT32_MAX : (int)room)) > 0)
		ps->out_len += (size_t)n;
	if (flush(ps) == -1 && r != 1) {
		tls_done(ps, ps->tls_seen ? SK_PMODE_IMPLICIT : SK_PMODE_SILENT,
		    "the connection failed during the TLS handshake");
		return;
	}
	if (r == 1) {
		c = SSL_get_current_cipher(ps->ssl);
		tls_done(ps, SK_PMODE_IMPLICIT, "TLS handshake completed: %s %s",
		    SSL_get_version(ps->ssl),
		    c != NULL ? SSL_CIPHER_get_name(c) : "");
		return;
	}
	if (sslerr == SSL_ERROR_WANT_READ || sslerr == SSL_ERROR_WANT_WRITE)
		return;
	e = ERR_peek_error();
	ERR_clear_error();
	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	else
		(void)snprintf(reason, sizeof(reason), "SSL error %d", sslerr);
	if (ps->tls_seen)
		/* A TLS server all the same; the tls stage says more. */
		tls_done(ps, SK_PMODE_IMPLICIT, "the server speaks TLS but the "
		    "handshake failed: %s", reason);
	else
		tls_done(ps, SK_PMODE_UNKNOWN, "TLS handshake failed: %s",
		    reason);
}

static SSL_CTX *
probe_ctx(void)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	/*
	 * Only "is this TLS?" matters here: accept any version and cipher
	 * a server may still speak, so that an old TLS 1.0 port counts as
	 * a TLS port; the tls stage then names the version problem.
	 */
	(void)SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
	SSL_CTX_set_security_level(ctx, 0);
	(void)SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

static void
start_tls(struct pstate *ps, SSL_CTX *ctx)
{
	const char *sni = ps->cfg->servername;

	if (ctx == NULL || (ps->ssl = SSL_new(ctx)) == NULL) {
		tls_done(ps, SK_PMODE_SILENT, "cannot set up TLS to try it");
		return;
	}
	ps->rbio = BIO_new(BIO_s_mem());
	ps->wbio = BIO_new(BIO_s_mem());
	if (ps->rbio == NULL || ps->wbio == NULL) {
		BIO_free(ps->rbio);
		BIO_free(ps->wbio);
		ps->rbio = ps->wbio = NULL;
		ps->oom = true;
		tls_done(ps, SK_PMODE_SILENT, "cannot set up TLS to try it");
		return;
	}
	SSL_set_bio(ps->ssl, ps->rbio, ps->wbio);
	SSL_set_connect_state(ps->ssl);
	if (sni != NULL && sni[0] != '\0')
		(void)SSL_set_tlsext_host_name(ps->ssl, sni);
	/* The engine never spoke: nothing of it is on the wire. */
	sk_client_free(ps->client);
	ps->client = NULL;
	ps->ph = PH_TLS;
	ps->deadline = ps->end;
	note(ps, SK_TRACE_INFO, "no greeting within %lld ms: trying a TLS "
	    "handshake", (long long)(sk_clock_ms() - ps->start -
	    ps->p->connect_ms));
	tls_step(ps);
}

/* The engine's events while it reads the greeting and says EHLO. */
static void
greet_events(struct pstate *ps)
{
	struct sk__probe *p = ps->p;
	struct sk_event ev;

	while (ps->ph == PH_GREET && sk_client_next_event(ps->client, &ev)) {
		switch (ev.type) {
		case SK_EV_READY:
			p->res.mode = SK_PMODE_PLAIN;
			p->res.starttls = (sk_client_caps(ps->client)->flags &
			    SK_CAP_STARTTLS) != 0;
			sk_client_quit(ps->client);
			(void)flush(ps);	/* QUIT, best effort */
			finish(ps);
			return;
		case SK_EV_ERROR:
			/*
			 * A refusing banner (554) is still a plaintext SMTP
			 * server; garbage that merely began with digits is
			 * not.
			 */
			p->res.mode = ev.detail.kind == SK_ERR_PROTOCOL &&
			    ev.detail.stage == SK_STAGE_GREETING ?
			    SK_PMODE_UNKNOWN : SK_PMODE_PLAIN;
			if (ev.detail.kind != SK_ERR_REPLY)
				note(ps, SK_TRACE_INFO, "%s",
				    ev.detail.message);
			(void)flush(ps);	/* the engine's QUIT, if any */
			finish(ps);
			return;
		default:
			break;
		}
	}
}

static void
greet_read(struct pstate *ps)
{
	char buf[PROBE_READ];
	ssize_t r;

	do
		r = recv(ps->fd, buf, sizeof(buf), 0);
	while (r == -1 && errno == EINTR);
	if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (r <= 0) {
		if (!ps->got_bytes) {
			ps->p->res.mode = SK_PMODE_SILENT;
			note(ps, SK_TRACE_INFO, r == 0 ? "the server closed the "
			    "connection without a greeting" : "the connection "
			    "was reset before a greeting");
			finish(ps);
			return;
		}
		sk_client_abort(ps->client, NULL);
		greet_events(ps);
		if (ps->ph != PH_DONE) {
			ps->p->res.mode = SK_PMODE_PLAIN;
			finish(ps);
		}
		return;
	}
	if (!ps->got_bytes) {
		ps->got_bytes = true;
		/* A reply begins with a digit; anything else is not SMTP. */
		if (!isdigit((unsigned char)buf[0])) {
			plaintext_seen(ps, buf, (size_t)r);
			return;
		}
		ps->deadline = ps->end;
	}
	(void)sk_client_feed(ps->client, buf, (size_t)r);
	greet_events(ps);
	if (ps->ph == PH_GREET && flush(ps) == -1) {
		ps->p->res.mode = SK_PMODE_PLAIN;
		finish(ps);
	}
}

static void
tls_read(struct pstate *ps)
{
	char buf[PROBE_READ];
	ssize_t r;

	do
		r = recv(ps->fd, buf, sizeof(buf), 0);
	while (r == -1 && errno == EINTR);
	if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (r <= 0) {
		if (ps->tls_seen)
			tls_done(ps, SK_PMODE_IMPLICIT, "the server speaks TLS "
			    "but closed the connection during the handshake");
		else
			tls_done(ps, SK_PMODE_SILENT, "the server closed the "
			    "connection without answering the TLS hello");
		return;
	}
	if (!ps->tls_seen) {
		/* RFC 8446 §5.1: a record starts with its type, 20 to 23. */
		if ((unsigned char)buf[0] < 20 || (unsigned char)buf[0] > 23) {
			plaintext_seen(ps, buf, (size_t)r);
			return;
		}
		ps->tls_seen = true;
	}
	if (BIO_write(ps->rbio, buf, (int)r) != (int)r) {
		ps->oom = true;
		tls_done(ps, SK_PMODE_IMPLICIT, "out of memory in TLS");
		return;
	}
	tls_step(ps);
}

static void
on_timeout(struct pstate *ps, SSL_CTX *ctx)
{
	struct sk__probe *p = ps->p;

	switch (ps->ph) {
	case PH_CONNECT:
		connect_failed(ps, ETIMEDOUT);
		break;
	case PH_GREET:
		if (!ps->got_bytes && sk_clock_ms() < ps->end) {
			start_tls(ps, ctx);
			break;
		}
		if (!ps->got_bytes) {
			p->res.mode = SK_PMODE_SILENT;
			note(ps, SK_TRACE_INFO, "no greeting within %lld ms",
			    (long long)(sk_clock_ms() - ps->start -
			    p->connect_ms));
		} else {
			/* It greeted, then stopped answering. */
			p->res.mode = p->res.banner[0] != '\0' ?
			    SK_PMODE_PLAIN : SK_PMODE_UNKNOWN;
			note(ps, SK_TRACE_INFO, "no complete answer within "
			    "%lld ms", (long long)(sk_clock_ms() - ps->start -
			    p->connect_ms));
		}
		finish(ps);
		break;
	case PH_TLS:
		if (ps->tls_seen)
			tls_done(ps, SK_PMODE_IMPLICIT, "the server speaks TLS "
			    "but did not finish the handshake in time");
		else
			tls_done(ps, SK_PMODE_SILENT, "no answer to a TLS hello "
			    "either within %lld ms", (long long)(sk_clock_ms() -
			    ps->start - p->connect_ms));
		break;
	case PH_DONE:
		break;
	}
}

static void
on_event(struct pstate *ps, short revents, struct pstate *all, size_t n)
{
	socklen_t len;
	int soerr;

	switch (ps->ph) {
	case PH_CONNECT:
		len = sizeof(soerr);
		if (getsockopt(ps->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) ==
		    -1)
			soerr = errno;
		if (soerr != 0)
			connect_failed(ps, soerr);
		else if (revents & POLLOUT)
			connected(ps, all, n);
		break;
	case PH_GREET:
		if (revents & POLLOUT && flush(ps) == -1) {
			ps->p->res.mode = ps->got_bytes ? SK_PMODE_PLAIN :
			    SK_PMODE_SILENT;
			finish(ps);
			break;
		}
		if (revents & (POLLIN | POLLHUP | POLLERR))
			greet_read(ps);
		break;
	case PH_TLS:
		if (revents & POLLOUT && flush(ps) == -1) {
			tls_done(ps, ps->tls_seen ? SK_PMODE_IMPLICIT :
			    SK_PMODE_SILENT, "the connection failed during the "
			    "TLS handshake");
			break;
		}
		if (revents & (POLLIN | POLLHUP | POLLERR))
			tls_read(ps);
		break;
	case PH_DONE:
		break;
	}
}

int
sk__probe_run(const struct sk__probe_config *cfg, struct sk__probe *p,
    size_t n, struct sk_error *err)
{
	struct pstate *ps;
	struct pollfd *pfd;
	size_t *idx, i, k, active;
	SSL_CTX *ctx;
	int64_t start, wake, now;
	int r, rc = 0;
	bool oom = false;

	sk_error_clear(err);
	if (n == 0)
		return 0;
	ps = calloc(n, sizeof(*ps));
	pfd = calloc(n, sizeof(*pfd));
	idx = calloc(n, sizeof(*idx));
	ctx = probe_ctx();
	if (ps == NULL || pfd == NULL || idx == NULL) {
		free(ps);
		free(pfd);
		free(idx);
		SSL_CTX_free(ctx);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}

	start = sk_clock_ms();
	for (i = 0; i < n; i++) {
		ps[i].p = &p[i];
		ps[i].cfg = cfg;
		ps[i].start = start;
		ps[i].fd = -1;
		memset(&p[i].res, 0, sizeof(p[i].res));
		p[i].res.port = p[i].port;
		p[i].res.family = p[i].addr.ss.ss_family;
		(void)sk_addr_str(&p[i].addr, p[i].res.address,
		    sizeof(p[i].res.address));
		p[i].greeted = false;
		p[i].tls_note[0] = '\0';
	}
	/* Every attempt under one deadline: the set costs one timeout. */
	for (i = 0; i < n; i++)
		start_connect(&ps[i], start + cfg->timeout_ms);

	for (;;) {
		active = 0;
		wake = INT64_MAX;
		for (i = 0; i < n; i++) {
			short ev;

			if (ps[i].ph == PH_DONE)
				continue;
			switch (ps[i].ph) {
			case PH_CONNECT:
				ev = POLLOUT;
				break;
			default:
				ev = POLLIN;
				if (out_pending(&ps[i]))
					ev |= POLLOUT;
				break;
			}
			pfd[active].fd = ps[i].fd;
			pfd[active].events = ev;
			pfd[active].revents = 0;
			idx[active++] = i;
			if (ps[i].deadline < wake)
				wake = ps[i].deadline;
		}
		if (active == 0)
			break;
		r = poll(pfd, active, sk_clock_left(wake));
		if (r == -1 && errno != EINTR) {
			rc = sk_error_set(err, SK_STAGE_CONNECT, SK_ERR_LOCAL,
			    "poll: %s", strerror(errno));
			for (i = 0; i < n; i++)
				if (ps[i].ph != PH_DONE)
					finish(&ps[i]);
			break;
		}
		now = sk_clock_ms();
		for (k = 0; k < active; k++) {
			struct pstate *s = &ps[idx[k]];

			if (r > 0 && pfd[k].revents != 0)
				on_event(s, pfd[k].revents, ps, n);
			else if (now >= s->deadline)
				on_timeout(s, ctx);
		}
	}

	for (i = 0; i < n; i++)
		oom = oom || ps[i].oom;
	free(ps);
	free(pfd);
	free(idx);
	SSL_CTX_free(ctx);
	if (rc == 0 && oom)
		rc = sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	return rc;
}
