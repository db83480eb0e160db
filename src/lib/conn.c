/*
 * smtpkit: a connection: non-blocking TCP connect with per-address
 * timeouts, and bounded reads and writes, plain or through OpenSSL, with
 * deadlines.  The OpenSSL set-up and handshake live in tls.c.
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
 * One connection attempt, bounded by attempt_deadline.  Returns the
 * connected fd, or -1 with *errp set (ETIMEDOUT when the deadline passed).
 */
static int
conn_attempt(const struct sk_addr *a, int64_t attempt_deadline, int *errp)
{
	socklen_t len;
	int fd, r, soerr;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		*errp = errno;
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) == 0)
		return fd;
	/* EINTR: a non-blocking connect goes on regardless (connect(2)). */
	if (errno != EINPROGRESS && errno != EINTR) {
		*errp = errno;
		(void)close(fd);
		return -1;
	}

	r = sk__conn_wait(fd, POLLOUT, attempt_deadline);
	if (r <= 0) {
		*errp = r == 0 ? ETIMEDOUT : errno;
		(void)close(fd);
		return -1;
	}
	len = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		soerr = errno;
	if (soerr != 0) {
		*errp = soerr;
		(void)close(fd);
		return -1;
	}
	return fd;
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

struct sk_conn *
sk_conn_connect(const struct sk_addrlist *addrs, int attempt_ms,
    int64_t deadline, const struct sk_trace *trace, struct sk_error *err)
{
	char msg[SK_ERROR_MESSAGE_MAX], ebuf[128], result[160];
	char name[SK_ADDR_STR_MAX];
	enum sk_error_kind kind = SK_ERR_TIMEOUT;
	struct sk_conn *c;
	int64_t t0, until;
	size_t i, n, off = 0;
	int e = ETIMEDOUT, fd, waited;
	const char *hint;

	sk_error_clear(err);
	if (addrs == NULL || addrs->n == 0)
		return (sk_error_set(err, SK_STAGE_CONNECT, SK_ERR_USAGE,
		    "no address to connect to"), NULL);
	n = addrs->n < SK_DNS_ADDRS_MAX ? addrs->n : SK_DNS_ADDRS_MAX;

	/* One address: "to A: result"; more: "to any of N: A result; ..." */
	if (n == 1)
		conn_append(msg, sizeof(msg), &off, "cannot connect to %s: ",
		    sk_addr_str(&addrs->a[0], name, sizeof(name)));
	else
		conn_append(msg, sizeof(msg), &off,
		    "cannot connect to any of %zu addresses: ", n);

	for (i = 0; i < n; i++) {
		(void)sk_addr_str(&addrs->a[i], name, sizeof(name));
		if (sk_clock_left(deadline) == 0) {
			/* Say which were never tried, not just "timeout". */
			(void)snprintf(result, sizeof(result),
			    "not tried (overall deadline passed)");
			e = ETIMEDOUT;
			kind = SK_ERR_TIMEOUT;
			goto next;
		}
		sk_trace_printf(trace, SK_TRACE_INFO, "connecting to %s",
		    name);
		t0 = sk_clock_ms();
		until = deadline;
		if (attempt_ms > 0 && t0 + attempt_ms < deadline)
			until = t0 + attempt_ms;
		fd = conn_attempt(&addrs->a[i], until, &e);
		waited = (int)(sk_clock_ms() - t0);
		if (fd != -1) {
			conn_nodelay(fd);
			if ((c = conn_new(fd, trace)) == NULL) {
				(void)close(fd);
				(void)sk_error_set(err, SK_STAGE_CONNECT,
				    SK_ERR_LOCAL, "out of memory");
				return NULL;
			}
			(void)snprintf(c->peer, sizeof(c->peer), "%s", name);
			sk_trace_printf(trace, SK_TRACE_INFO,
			    "connected to %s in %d ms", name, waited);
			return c;
		}
		kind = sk__errno_kind(e);
		if (e == ETIMEDOUT)
			(void)snprintf(result, sizeof(result),
			    "no answer within %d ms", waited);
		else
			(void)snprintf(result, sizeof(result), "%s",
			    sk__errno_text(e, ebuf, sizeof(ebuf)));
		sk_trace_printf(trace, SK_TRACE_INFO, "%s: %s", name, result);
 next:
		if (n == 1)
			conn_append(msg, sizeof(msg), &off, "%s", result);
		else
			conn_append(msg, sizeof(msg), &off, "%s%s %s",
			    i ? "; " : "", name, result);
	}

	if ((hint = conn_hint(kind)) != NULL)
		conn_append(msg, sizeof(msg), &off, " (%s)", hint);
	(void)sk_error_set(err, SK_STAGE_CONNECT, kind, "%s", msg);
	if (err != NULL)
		err->sys_errno = e;
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
