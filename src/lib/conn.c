/*
 * smtpkit: a connection: non-blocking TCP connect racing the addresses
 * (RFC 8305 "Happy Eyeballs"), with per-address timeouts, and bounded
 * reads and writes, plain or through OpenSSL, with deadlines.  The
 * OpenSSL set-up and handshake live in tls.c.
 *
 * Every socket is non-blocking; waiting is poll(2) against an absolute
 * deadline on sk_clock_ms().  Nothing here can raise SIGPIPE: plain writes
 * use send(2) with MSG_NOSIGNAL, and TLS goes through a BIO of ours
 * (tls.c) that does the same, so the library does not rely on the
 * application ignoring the signal.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "smtpkit/clock.h"
#include "smtpkit/conn.h"
#include "conn_internal.h"

int
sk__conn_wait(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int n;

	for (;;) {
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		/* A passed deadline still polls once: data may be there. */
		n = poll(&pfd, 1, sk_clock_left(deadline));
		if (n > 0)
			return 1;	/* POLLERR/POLLHUP too: I/O tells */
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

enum sk_error_kind
sk__errno_kind(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return SK_ERR_REFUSED;
	case ETIMEDOUT:
		return SK_ERR_TIMEOUT;
	case ENETUNREACH:
	case EHOSTUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
	case EADDRNOTAVAIL:
	case EAFNOSUPPORT:
	case EACCES:		/* connect: a local firewall rule */
	case EPERM:
		return SK_ERR_UNREACHABLE;
	case ECONNRESET:
	case ECONNABORTED:
		return SK_ERR_RESET;
	case EPIPE:
		return SK_ERR_EOF;
	default:
		return SK_ERR_LOCAL;
	}
}

const char *
sk__errno_text(int e, char *buf, size_t cap)
{
	switch (e) {
	case ECONNREFUSED:
		return "connection refused";
	case ENETUNREACH:
		return "network unreachable";
	case EHOSTUNREACH:
		return "no route to host";
	case ENETDOWN:
		return "network is down";
	case EHOSTDOWN:
		return "host is down";
	case EADDRNOTAVAIL:
		return "no local address to connect from";
	case EAFNOSUPPORT:
		return "address family not supported here";
	case EACCES:
	case EPERM:
		return "blocked by a local firewall rule";
	case ECONNRESET:
		return "connection reset by the peer";
	case ECONNABORTED:
		return "connection aborted";
	case EPIPE:
		return "the peer closed the connection";
	case ETIMEDOUT:
		return "timed out";
	default:
		/* The GNU strerror_r: thread-safe, may ignore buf. */
		return strerror_r(e, buf, cap);
	}
}

static struct sk_conn *
conn_new(int fd, const struct sk_trace *trace)
{
	struct sk_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->fd = fd;
	if (trace != NULL)
		c->trace = *trace;
	return c;
}

/*
 * Nagle would hold our second pipelined write back until the first is
 * acknowledged, and the server delays that ACK: tens of milliseconds per
 * message on loopback.  The engine coalesces writes itself.
 */
static void
conn_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Append to a message buffer, cutting at its end. */
static void
conn_append(char *buf, size_t cap, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
conn_append(char *buf, size_t cap, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, cap - *off, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*off += (size_t)n;
	if (*off >= cap)
		*off = cap;
}

/*
 * Connection racing, RFC 8305 §5: the next address starts when the one
 * started before it fails, or after the Connection Attempt Delay without an
 * answer, whichever comes first; §8 recommends 250 ms.
 */
#define CONN_ATTEMPT_DELAY_MS 250
#define CONN_RACE_MAX 8		/* attempts in flight at once */

enum conn_try_state {
	TRY_WAITING = 0,	/* not started */
	TRY_FLYING,		/* connect(2) in progress */
	TRY_FAILED,
	TRY_SKIPPED,		/* the deadline came before its turn */
	TRY_WON
};

struct conn_try {
	enum conn_try_state state;
	int fd;			/* while flying, and the winner's */
	int err;		/* errno once failed or skipped */
	int waited;		/* ms from the start to the outcome */
	int64_t t0;
	int64_t until;		/* t0 + attempt_ms or the deadline */
	char name[SK_ADDR_STR_MAX];
};

struct conn_race {
	const struct sk_addrlist *addrs;
	const struct sk_trace *trace;
	size_t n;
	int attempt_ms;
	int64_t deadline;
	size_t next;		/* the next address to start */
	size_t last;		/* the one started most recently */
	size_t flying;
	int64_t next_at;	/* when the next may start */
	struct conn_try t[SK_DNS_ADDRS_MAX];
};

/* What became of a failed or skipped attempt, for traces and messages. */
static const char *
conn_result(const struct conn_try *t, char *buf, size_t cap)
{
	char ebuf[128];

	if (t->state != TRY_FAILED)
		(void)snprintf(buf, cap, "not tried (overall deadline passed)");
	else if (t->err == ETIMEDOUT)
		(void)snprintf(buf, cap, "no answer within %d ms", t->waited);
	else
		(void)snprintf(buf, cap, "%s",
		    sk__errno_text(t->err, ebuf, sizeof(ebuf)));
	return buf;
}

static void
race_fail(struct conn_race *r, size_t i, int e)
{
	struct conn_try *t = &r->t[i];
	char result[160];
	int64_t now;

	if (t->state == TRY_FLYING) {
		(void)close(t->fd);
		t->fd = -1;
		r->flying--;
	}
	now = sk_clock_ms();
	t->state = TRY_FAILED;
	t->err = e;
	t->waited = (int)(now - t->t0);
	sk_trace_printf(r->trace, SK_TRACE_INFO, "%s: %s", t->name,
	    conn_result(t, result, sizeof(result)));
	if (i == r->last)
		r->next_at = now;	/* no reason to wait any longer */
}

/*
 * Start attempt i: 1 when it connected at once, else 0 (in flight, or
 * failed already).
 */
static int
race_start(struct conn_race *r, size_t i)
{
	const struct sk_addr *a = &r->addrs->a[i];
	struct conn_try *t = &r->t[i];
	int e, fd;

	sk_trace_printf(r->trace, SK_TRACE_INFO, "connecting to %s", t->name);
	t->t0 = sk_clock_ms();
	t->until = r->deadline;
	if (r->attempt_ms > 0 && t->t0 + r->attempt_ms < r->deadline)
		t->until = t->t0 + r->attempt_ms;
	r->last = i;
	r->next_at = t->t0 + CONN_ATTEMPT_DELAY_MS;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		race_fail(r, i, errno);
		return 0;
	}
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0) {
		t->fd = fd;
		t->state = TRY_WON;
		return 1;
	}
	/* EINTR: a non-blocking connect goes on regardless (connect(2)). */
	if (errno != EINPROGRESS && errno != EINTR) {
		e = errno;
		(void)close(fd);
		race_fail(r, i, e);
		return 0;
	}
	t->fd = fd;
	t->state = TRY_FLYING;
	r->flying++;
	return 0;
}

/* Attempt i's socket is ready: 1 when connected, else 0 (and failed). */
static int
race_check(struct conn_race *r, size_t i)
{
	struct conn_try *t = &r->t[i];
	socklen_t len;
	int soerr;

	len = sizeof(soerr);
	if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		soerr = errno;
	if (soerr != 0) {
		race_fail(r, i, soerr);
		return 0;
	}
	t->state = TRY_WON;
	r->flying--;
	return 1;
}

/*
 * Run the race until one attempt connects (0, *won its index) or every
 * address has failed or been skipped (-1).  One poll(2) waits for all
 * attempts in flight, their own ends, the deadline and the next start.
 */
static int
race_run(struct conn_race *r, size_t *won)
{
	struct pollfd pfd[CONN_RACE_MAX];
	size_t map[CONN_RACE_MAX];
	size_t i, k, nfd;
	int64_t now, wake;
	int e;

	for (;;) {
		now = sk_clock_ms();
		if (now >= r->deadline) {
			/* Say which were never tried, not just "timeout". */
			for (; r->next < r->n; r->next++) {
				r->t[r->next].state = TRY_SKIPPED;
				r->t[r->next].err = ETIMEDOUT;
			}
		}
		while (r->next < r->n && r->flying < CONN_RACE_MAX &&
		    (now >= r->next_at || r->flying == 0)) {
			if (race_start(r, r->next++) == 1) {
				*won = r->next - 1;
				return 0;
			}
			now = sk_clock_ms();
		}
		if (r->flying == 0 && r->next >= r->n)
			return -1;

		wake = r->deadline;
		nfd = 0;
		for (i = 0; i < r->next; i++) {
			if (r->t[i].state != TRY_FLYING)
				continue;
			pfd[nfd].fd = r->t[i].fd;
			pfd[nfd].events = POLLOUT;
			pfd[nfd].revents = 0;
			map[nfd++] = i;
			if (r->t[i].until < wake)
				wake = r->t[i].until;
		}
		if (r->next < r->n && r->flying < CONN_RACE_MAX &&
		    r->next_at < wake)
			wake = r->next_at;
		if (poll(pfd, nfd, sk_clock_left(wake)) == -1) {
			if (errno == EINTR)
				continue;
			e = errno;
			for (k = 0; k < nfd; k++)
				race_fail(r, map[k], e);
			continue;
		}
		/*
		 * Of answers that arrived together, the earliest in the list
		 * wins: it is the more preferred (RFC 8305 §4).  POLLERR and
		 * POLLHUP count too: SO_ERROR tells.
		 */
		now = sk_clock_ms();
		for (k = 0; k < nfd; k++) {
			i = map[k];
			if (pfd[k].revents != 0) {
				if (race_check(r, i) == 1) {
					*won = i;
					return 0;
				}
			} else if (now >= r->t[i].until)
				race_fail(r, i, ETIMEDOUT);
		}
	}
}

/* Close every attempt still in flight: another one won. */
static void
race_abandon(struct conn_race *r, size_t won)
{
	struct conn_try *t;
	size_t i;

	for (i = 0; i < r->next; i++) {
		t = &r->t[i];
		if (t->state != TRY_FLYING)
			continue;
		(void)close(t->fd);
		t->fd = -1;
		t->state = TRY_FAILED;
		t->err = ECANCELED;
		r->flying--;
		sk_trace_printf(r->trace, SK_TRACE_INFO,
		    "%s: abandoned after %d ms, %s connected first", t->name,
		    (int)(sk_clock_ms() - t->t0), r->t[won].name);
	}
}

static const char *
conn_hint(enum sk_error_kind kind)
{
	switch (kind) {
	case SK_ERR_REFUSED:
		return "refused at once: nothing listens on that port, or a "
		    "firewall actively rejects it";
	case SK_ERR_TIMEOUT:
		return "no reply at all: a firewall, security group or the "
		    "network provider is silently dropping the connection";
	case SK_ERR_UNREACHABLE:
		return "this machine has no route there (for IPv6 addresses: "
		    "no working IPv6)";
	default:
		return NULL;
	}
}

/*
 * The failure of a race into msg: one address, "cannot connect to A:
 * result"; more, "cannot connect to any of N addresses: A result; ...",
 * cut with "; and N more" where an address would end past limit; then the
 * hint.  Returns the length written (cap - 1 or more: cut at cap).
 */
static size_t
conn_failure_text(const struct conn_race *r, const char *hint, char *msg,
    size_t cap, size_t limit)
{
	char result[160];
	size_t i, off = 0, before;

	if (r->n == 1)
		conn_append(msg, cap, &off, "cannot connect to %s: %s",
		    r->t[0].name, conn_result(&r->t[0], result,
		    sizeof(result)));
	else {
		conn_append(msg, cap, &off,
		    "cannot connect to any of %zu addresses: ", r->n);
		for (i = 0; i < r->n; i++) {
			before = off;
			conn_append(msg, cap, &off, "%s%s %s", i ? "; " : "",
			    r->t[i].name, conn_result(&r->t[i], result,
			    sizeof(result)));
			if (off > limit) {
				off = before;
				msg[off] = '\0';
				conn_append(msg, cap, &off, "; and %zu more",
				    r->n - i);
				break;
			}
		}
	}
	if (hint != NULL)
		conn_append(msg, cap, &off, " (%s)", hint);
	return off;
}

struct sk_conn *
sk_conn_connect(const struct sk_addrlist *addrs, int attempt_ms,
    int64_t deadline, const struct sk_trace *trace, struct sk_error *err)
{
	char msg[SK_ERROR_MESSAGE_MAX];
	struct conn_race r;
	struct conn_try *t;
	enum sk_error_kind kind;
	struct sk_conn *c;
	size_t i, won;
	const char *hint;

	sk_error_clear(err);
	if (addrs == NULL || addrs->n == 0)
		return (sk_error_set(err, SK_STAGE_CONNECT, SK_ERR_USAGE,
		    "no address to connect to"), NULL);

	memset(&r, 0, sizeof(r));
	r.addrs = addrs;
	r.trace = trace;
	r.n = addrs->n < SK_DNS_ADDRS_MAX ? addrs->n : SK_DNS_ADDRS_MAX;
	r.attempt_ms = attempt_ms;
	r.deadline = deadline;
	r.next_at = sk_clock_ms();
	for (i = 0; i < r.n; i++) {
		r.t[i].fd = -1;
		(void)sk_addr_str(&addrs->a[i], r.t[i].name,
		    sizeof(r.t[i].name));
	}

	if (race_run(&r, &won) == 0) {
		t = &r.t[won];
		conn_nodelay(t->fd);
		if ((c = conn_new(t->fd, trace)) == NULL) {
			(void)close(t->fd);
			race_abandon(&r, won);
			(void)sk_error_set(err, SK_STAGE_CONNECT, SK_ERR_LOCAL,
			    "out of memory");
			return NULL;
		}
		(void)snprintf(c->peer, sizeof(c->peer), "%s", t->name);
		sk_trace_printf(trace, SK_TRACE_INFO,
		    "connected to %s in %d ms", t->name,
		    (int)(sk_clock_ms() - t->t0));
		race_abandon(&r, won);
		return c;
	}

	/*
	 * As when the addresses were tried one after another: the kind
	 * and errno are the last address's in the list (tried or not),
	 * whatever order the answers came in.
	 */
	kind = sk__errno_kind(r.t[r.n - 1].err);
	hint = conn_hint(kind);
	/* Every address if all fits, else as many as leave the hint room. */
	if (conn_failure_text(&r, hint, msg, sizeof(msg), sizeof(msg)) >=
	    sizeof(msg) - 1)
		(void)conn_failure_text(&r, hint, msg, sizeof(msg), sizeof(msg) -
		    1 - (hint != NULL ? strlen(hint) + 3 : 0) - 16);
	(void)sk_error_set(err, SK_STAGE_CONNECT, kind, "%s", msg);
	if (err != NULL)
		err->sys_errno = r.t[r.n - 1].err;
	return NULL;
}

struct sk_conn *
sk_conn_from_fd(int fd, const struct sk_trace *trace)
{
	struct sk_conn *c;
	struct sk_addr a;
	int flags;

	if (fd < 0)
		return NULL;
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1 ||
	    (c = conn_new(fd, trace)) == NULL) {
		(void)close(fd);
		return NULL;
	}
	conn_nodelay(fd);	/* fails harmlessly on a non-TCP socket */

	memset(&a, 0, sizeof(a));
	a.len = sizeof(a.ss);
	if (getpeername(fd, (struct sockaddr *)&a.ss, &a.len) == 0 &&
	    (a.ss.ss_family == AF_INET || a.ss.ss_family == AF_INET6))
		(void)sk_addr_str(&a, c->peer, sizeof(c->peer));
	else
		(void)snprintf(c->peer, sizeof(c->peer), "fd %d", fd);
	return c;
}

void
sk_conn_free(struct sk_conn *c)
{
	if (c == NULL)
		return;
	sk__tls_close(c);
	if (c->fd != -1)
		(void)close(c->fd);
	free(c);
}

int
sk_conn_fd(const struct sk_conn *c)
{
	return c->fd;
}

const char *
sk_conn_peer(const struct sk_conn *c)
{
	return c->peer;
}

bool
sk_conn_is_tls(const struct sk_conn *c)
{
	return c->tls_up;
}

/*
 * Only decrypted octets count.  Without read-ahead OpenSSL takes one
 * record at a time from the socket, so nothing else can hide from poll();
 * counting a partial record (SSL_has_pending) would make callers spin.
 */
bool
sk_conn_pending(const struct sk_conn *c)
{
	return c->tls_up && !c->dead && SSL_pending(c->ssl) > 0;
}

static enum sk_io
conn_dead(struct sk_error *err)
{
	(void)sk_error_set(err, SK_STAGE_NONE, SK_ERR_TLS_HANDSHAKE,
	    "the TLS session has failed; the connection is unusable");
	return SK_IO_ERR;
}

static enum sk_io
conn_sys_error(struct sk_conn *c, int e, const char *what,
    struct sk_error *err)
{
	char ebuf[128];

	(void)sk_error_set(err, SK_STAGE_NONE, sk__errno_kind(e),
	    "%s %s: %s", what, c->peer, sk__errno_text(e, ebuf, sizeof(ebuf)));
	if (err != NULL)
		err->sys_errno = e;
	return SK_IO_ERR;
}

/*
 * A failed SSL_read_ex/SSL_write_ex: what the caller should do next.
 * saved_errno is errno right after the call (SSL_ERROR_SYSCALL).
 */
static enum sk_io
conn_tls_result(struct sk_conn *c, int ret, int saved_errno,
    const char *what, struct sk_error *err)
{
	char reason[256];
	unsigned long e;

	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return SK_IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return SK_IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:	/* close_notify */
		c->eof = true;
		return SK_IO_EOF;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		c->dead = true;
		if (saved_errno == 0 || saved_errno == EPIPE) {
			c->eof = true;
			return SK_IO_EOF;
		}
		return conn_sys_error(c, saved_errno, what, err);
	default:
		break;
	}

	e = ERR_peek_error();
	ERR_clear_error();
	c->dead = true;
	/*
	 * The peer closed the socket without close_notify.  SMTP replies
	 * say where they end, so a truncation attack gains nothing: treat
	 * it as an ordinary end of stream.
	 */
	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		c->eof = true;
		return SK_IO_EOF;
	}
	if (e == 0)
		(void)snprintf(reason, sizeof(reason), "unknown error");
	else
		ERR_error_string_n(e, reason, sizeof(reason));
	(void)sk_error_set(err, SK_STAGE_NONE, SK_ERR_TLS_HANDSHAKE,
	    "TLS failure on %s %s: %s", what, c->peer, reason);
	if (err != NULL)
		err->ssl_error = e;
	return SK_IO_ERR;
}

enum sk_io
sk_conn_try_read(struct sk_conn *c, char *buf, size_t cap, size_t *n,
    struct sk_error *err)
{
	ssize_t r;
	int ret, saved;

	*n = 0;
	if (c->eof)
		return SK_IO_EOF;	/* again, as a socket would say */
	if (c->dead)
		return conn_dead(err);
	if (cap == 0)
		return SK_IO_OK;
	if (c->ssl != NULL) {
		/* SSL_get_error() needs an empty queue before the call. */
		ERR_clear_error();
		errno = 0;
		ret = SSL_read_ex(c->ssl, buf, cap, n);
		saved = errno;
		if (ret == 1)
			return SK_IO_OK;
		*n = 0;
		return conn_tls_result(c, ret, saved, "reading from", err);
	}
	for (;;) {
		if ((r = recv(c->fd, buf, cap, 0)) > 0) {
			*n = (size_t)r;
			c->plain_in += *n;
			return SK_IO_OK;
		}
		if (r == 0)
			return SK_IO_EOF;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return SK_IO_WANT_READ;
		return conn_sys_error(c, errno, "reading from", err);
	}
}

enum sk_io
sk_conn_try_write(struct sk_conn *c, const char *buf, size_t len, size_t *n,
    struct sk_error *err)
{
	ssize_t r;
	int ret, saved;

	*n = 0;
	if (c->dead)
		return c->eof ? SK_IO_EOF : conn_dead(err);
	if (len == 0)
		return SK_IO_OK;
	if (c->ssl != NULL) {
		ERR_clear_error();
		errno = 0;
		ret = SSL_write_ex(c->ssl, buf, len, n);
		saved = errno;
		if (ret == 1)
			return SK_IO_OK;
		*n = 0;
		return conn_tls_result(c, ret, saved, "writing to", err);
	}
	for (;;) {
		if ((r = send(c->fd, buf, len, MSG_NOSIGNAL)) >= 0) {
			*n = (size_t)r;
			return SK_IO_OK;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return SK_IO_WANT_WRITE;
		if (errno == EPIPE)
			return SK_IO_EOF;
		return conn_sys_error(c, errno, "writing to", err);
	}
}

ssize_t
sk_conn_read(struct sk_conn *c, char *buf, size_t cap, int64_t deadline,
    struct sk_error *err)
{
	int64_t start = sk_clock_ms();
	short events = POLLIN;
	bool wait;
	size_t n;
	int r;

	sk_error_clear(err);
	/*
	 * Waiting first costs nothing when data is there and saves a
	 * failed recv() when it is not, the usual case in a dialogue.  TLS
	 * may already hold decrypted octets, which poll() cannot see.
	 */
	wait = !sk_conn_pending(c);
	for (;;) {
		if (wait) {
			if ((r = sk__conn_wait(c->fd, events, deadline)) == 0)
				return sk_error_set(err, SK_STAGE_NONE,
				    SK_ERR_TIMEOUT,
				    "%s sent nothing for %lld ms", c->peer,
				    (long long)(sk_clock_ms() - start));
			if (r == -1) {
				(void)conn_sys_error(c, errno, "waiting for",
				    err);
				return -1;
			}
		}
		switch (sk_conn_try_read(c, buf, cap, &n, err)) {
		case SK_IO_OK:
			return (ssize_t)n;
		case SK_IO_EOF:
			return 0;
		case SK_IO_WANT_READ:
			events = POLLIN;
			break;
		case SK_IO_WANT_WRITE:
			events = POLLOUT;
			break;
		case SK_IO_ERR:
		default:
			return -1;
		}
		wait = true;
	}
}

int
sk_conn_write(struct sk_conn *c, const char *buf, size_t len,
    int64_t deadline, struct sk_error *err)
{
	int64_t start = sk_clock_ms();
	short events = 0;
	size_t n, off = 0;
	int r;

	sk_error_clear(err);
	while (off < len) {
		if (events != 0) {
			if ((r = sk__conn_wait(c->fd, events, deadline)) == 0)
				return sk_error_set(err, SK_STAGE_NONE,
				    SK_ERR_TIMEOUT,
				    "%s accepted no data for %lld ms (%zu of "
				    "%zu octets written)", c->peer,
				    (long long)(sk_clock_ms() - start), off,
				    len);
			if (r == -1) {
				(void)conn_sys_error(c, errno, "waiting for",
				    err);
				return -1;
			}
		}
		/*
		 * After a TLS WANT_*, this repeats the write with the same
		 * octets, as SSL_write_ex(3) requires.
		 */
		switch (sk_conn_try_write(c, buf + off, len - off, &n, err)) {
		case SK_IO_OK:
			off += n;
			events = 0;
			break;
		case SK_IO_WANT_WRITE:
			events = POLLOUT;
			break;
		case SK_IO_WANT_READ:
			events = POLLIN;
			break;
		case SK_IO_EOF:
			return sk_error_set(err, SK_STAGE_NONE, SK_ERR_EOF,
			    "%s closed the connection while we were writing "
			    "(%zu of %zu octets written)", c->peer, off, len);
		case SK_IO_ERR:
		default:
			return -1;
		}
	}
	return 0;
}
