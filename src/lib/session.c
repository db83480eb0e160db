/*
 * smtpkit: the blocking session driver.
 *
 * Runs the sans-I/O client engine over a connection: writes what the engine
 * has to say in as few writes as possible (a whole pipelined group, or a
 * message's last body octets, final dot and the next message's commands
 * together), reads replies with a deadline, does the TLS handshakes the
 * engine asks for and streams bodies from files or memory without holding
 * them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "smtpkit/clock.h"
#include "smtpkit/session.h"

#define READ_BUF 16384
#define BODY_CHUNK 65536
/*
 * Messages handed to the engine ahead of their turn: enough for the next
 * one's commands to follow the final dot, few enough that memory does not
 * grow with the number of messages.
 */
#define SUBMIT_AHEAD 4

struct sk_session {
	struct sk_conn *conn;
	struct sk_client *client;
	struct sk_tls_config tls;
	char *servername;
	char *ca_file;
	int timeout_ms;
	struct sk_trace trace;
	enum sk_tls_mode tls_mode;

	/* the batch being sent */
	const struct sk_source *msgs;
	size_t nmsgs;
	size_t base;		/* engine index of msgs[0] */
	size_t submitted;	/* messages handed to the engine */
	size_t reported;	/* messages with a final result */
	sk_session_result_fn *fn;
	void *fn_arg;

	/* the body being streamed */
	long body;		/* index in msgs, -1 if none */
	int body_fd;		/* -1 for memory sources */
	bool body_fd_owned;
	size_t body_off;	/* for memory sources */
	char *body_buf;		/* for fd sources */
	size_t body_buf_len, body_buf_off;
	bool body_eof;

	bool ready;
	bool closed;
	bool failed;
	struct sk_error err;
};

/* This host's name for EHLO: its FQDN, else an address literal (RFC 5321 §4.1.4). */
static void
helo_name(int fd, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[256], addr[INET6_ADDRSTRLEN];

	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		if (strchr(host, '.') != NULL && host[strlen(host) - 1] != '.') {
			(void)snprintf(out, cap, "%s", host);
			return;
		}
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET &&
		    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
		    addr, sizeof(addr)) != NULL) {
			(void)snprintf(out, cap, "[%s]", addr);
			return;
		}
		if (ss.ss_family == AF_INET6 &&
		    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    addr, sizeof(addr)) != NULL) {
			(void)snprintf(out, cap, "[IPv6:%s]", addr);
			return;
		}
	}
	(void)snprintf(out, cap, "localhost.localdomain");
}

static int64_t
deadline(const struct sk_session *s)
{
	return sk_clock_ms() + s->timeout_ms;
}

/* Write everything the engine has to say. */
static int
flush(struct sk_session *s)
{
	const char *out;
	size_t len;

	out = sk_client_output(s->client, &len);
	if (len == 0)
		return 0;
	if (sk_conn_write(s->conn, out, len, deadline(s), &s->err) == -1) {
		if (s->err.stage == SK_STAGE_NONE)
			s->err.stage = sk_client_stage(s->client);
		return -1;
	}
	sk_client_sent(s->client, len);
	return 0;
}

/*
 * The connection failed while writing: what the engine still had to say
 * can never be delivered, and trying again would loop.
 */
static void
drop_output(struct sk_session *s)
{
	size_t len;

	(void)sk_client_output(s->client, &len);
	sk_client_sent(s->client, len);
}

/* Describe a wait that ran out of time. */
static void
timeout_error(struct sk_session *s, struct sk_error *e)
{
	enum sk_stage stage = sk_client_stage(s->client);
	int secs = (s->timeout_ms + 999) / 1000;

	if (stage == SK_STAGE_GREETING && s->tls_mode != SK_TLS_MODE_IMPLICIT)
		sk_error_set(e, stage, SK_ERR_TIMEOUT,
		    "connected to %s but the server sent no greeting within "
		    "%d s; a port that expects TLS from the first byte (465) "
		    "stays silent like this: try --tls implicit",
		    sk_conn_peer(s->conn), secs);
	else
		sk_error_set(e, stage, SK_ERR_TIMEOUT,
		    "the server did not answer within %d s (%s stage)", secs,
		    sk_stage_name(stage));
}

static void
session_abort(struct sk_session *s, struct sk_error *e)
{
	sk_client_abort(s->client, e);
}

static void
source_close(struct sk_session *s)
{
	if (s->body_fd_owned)
		(void)close(s->body_fd);
	s->body_fd = -1;
	s->body_fd_owned = false;
	s->body = -1;
}

static int
source_open(struct sk_session *s)
{
	const struct sk_source *src = &s->msgs[s->body];

	s->body_fd = src->fd;
	if (src->fd < 0 && src->path != NULL) {
		if ((s->body_fd = open(src->path, O_RDONLY | O_CLOEXEC)) == -1) {
			sk_error_set(&s->err, SK_STAGE_DATA, SK_ERR_LOCAL,
			    "cannot read %s: %s", src->path, strerror(errno));
			s->err.sys_errno = errno;
			return -1;
		}
		s->body_fd_owned = true;
	}
	if (s->body_buf == NULL && s->body_fd >= 0 &&
	    (s->body_buf = malloc(BODY_CHUNK)) == NULL)
		return sk_error_set(&s->err, SK_STAGE_DATA, SK_ERR_LOCAL,
		    "out of memory");
	s->body_off = 0;
	s->body_buf_len = s->body_buf_off = 0;
	s->body_eof = false;
	return 0;
}

/*
 * Give the engine body octets until the source ends or its output is full.
 * Returns 1 when the body is complete, 0 when output must be written first,
 * -1 on a read error.
 */
static int
feed_body(struct sk_session *s)
{
	const struct sk_source *src = &s->msgs[s->body];
	size_t used;
	ssize_t n;

	for (;;) {
		if (s->body_fd < 0) {
			if (s->body_off == src->len)
				return 1;
			used = sk_client_body(s->client, src->data + s->body_off,
			    src->len - s->body_off);
			s->body_off += used;
			if (s->body_off < src->len)
				return 0;
			continue;
		}
		if (s->body_buf_off == s->body_buf_len) {
			if (s->body_eof)
				return 1;
			do {
				n = read(s->body_fd, s->body_buf, BODY_CHUNK);
			} while (n == -1 && errno == EINTR);
			if (n == -1) {
				sk_error_set(&s->err, SK_STAGE_DATA, SK_ERR_LOCAL,
				    "cannot read %s: %s", src->name,
				    strerror(errno));
				s->err.sys_errno = errno;
				return -1;
			}
			if (n == 0) {
				s->body_eof = true;
				return 1;
			}
			s->body_buf_len = (size_t)n;
			s->body_buf_off = 0;
		}
		used = sk_client_body(s->client, s->body_buf + s->body_buf_off,
		    s->body_buf_len - s->body_buf_off);
		s->body_buf_off += used;
		if (s->body_buf_off < s->body_buf_len)
			return 0;
	}
}

static void
handle_event(struct sk_session *s, const struct sk_event *ev)
{
	struct sk_event rel;
	struct sk_error e;

	switch (ev->type) {
	case SK_EV_READY:
		s->ready = true;
		break;
	case SK_EV_STARTTLS:
		if (sk_conn_tls(s->conn, &s->tls, deadline(s), &e) == -1) {
			e.stage = SK_STAGE_TLS;
			session_abort(s, &e);
			break;
		}
		sk_client_tls_done(s->client);
		break;
	case SK_EV_BODY:
		s->body = (long)(ev->msg - s->base);
		if (source_open(s) == -1) {
			source_close(s);
			e = s->err;
			session_abort(s, &e);
		}
		break;
	case SK_EV_RCPT:
	case SK_EV_MESSAGE:
		if (s->fn == NULL || ev->msg < s->base ||
		    ev->msg - s->base >= s->nmsgs)
			break;
		rel = *ev;
		rel.msg = ev->msg - s->base;
		if (ev->type == SK_EV_MESSAGE)
			s->reported++;
		s->fn(s->fn_arg, &rel);
		break;
	case SK_EV_CLOSED:
		s->closed = true;
		break;
	case SK_EV_ERROR:
		s->failed = true;
		if (s->body >= 0)
			source_close(s);
		s->err = ev->detail;
		break;
	default:
		break;
	}
}

/* Hand the engine the next messages, a few ahead of the one being sent. */
static void
top_up(struct sk_session *s)
{
	struct sk_event ev;
	struct sk_error e;
	long idx;

	while (s->submitted < s->nmsgs &&
	    s->submitted - s->reported < SUBMIT_AHEAD) {
		idx = sk_client_submit(s->client, &s->msgs[s->submitted].env,
		    &e);
		if (idx == -1) {
			/* The session is over: the rest were not sent. */
			for (; s->submitted < s->nmsgs; s->submitted++) {
				memset(&ev, 0, sizeof(ev));
				ev.type = SK_EV_MESSAGE;
				ev.msg = s->submitted;
				ev.detail = s->failed ? s->err : e;
				s->reported++;
				if (s->fn != NULL)
					s->fn(s->fn_arg, &ev);
			}
			return;
		}
		if (s->submitted == 0)
			s->base = (size_t)idx;
		s->submitted++;
	}
}

enum until {
	UNTIL_READY,
	UNTIL_SENT,
	UNTIL_CLOSED
};

static bool
reached(const struct sk_session *s, enum until u)
{
	switch (u) {
	case UNTIL_READY:
		return s->ready;
	case UNTIL_SENT:
		return s->reported == s->nmsgs;
	case UNTIL_CLOSED:
		return s->closed;
	}
	return true;
}

/*
 * Drive the engine until the goal is reached or the session fails.
 * Returns 0 or -1 (s->err).
 */
static int
run(struct sk_session *s, enum until goal)
{
	struct sk_event ev;
	struct sk_error e;
	char buf[READ_BUF];
	size_t pending;
	ssize_t n;
	int rc;

	for (;;) {
		while (sk_client_next_event(s->client, &ev))
			handle_event(s, &ev);
		if (goal == UNTIL_SENT && !s->failed) {
			top_up(s);
			while (sk_client_next_event(s->client, &ev))
				handle_event(s, &ev);
		}
		if (s->failed) {
			/* Best effort: a QUIT the engine queued after a refusal. */
			(void)sk_client_output(s->client, &pending);
			if (pending > 0 && s->err.kind == SK_ERR_REPLY)
				(void)sk_conn_write(s->conn,
				    sk_client_output(s->client, &pending),
				    pending, sk_clock_ms() + 1000, NULL);
			return -1;
		}
		if (s->body >= 0) {
			rc = feed_body(s);
			if (rc == -1) {
				e = s->err;
				source_close(s);
				session_abort(s, &e);
				continue;
			}
			if (rc == 1) {
				source_close(s);
				sk_client_body_end(s->client);
				/* Collect the dot with the next commands. */
				continue;
			}
			/* output full: write it and go on with the body */
			if (flush(s) == -1) {
				e = s->err;
				drop_output(s);
				session_abort(s, &e);
			}
			continue;
		}
		if (flush(s) == -1) {
			e = s->err;
			drop_output(s);
			session_abort(s, &e);
			continue;
		}
		if (reached(s, goal))
			return 0;
		if (!sk_client_wants_read(s->client)) {
			if (sk_client_phase(s->client) == SK_PHASE_CLOSED)
				return 0;
			return sk_error_set(&s->err, SK_STAGE_NONE,
			    SK_ERR_PROTOCOL, "internal: the SMTP engine "
			    "waits for nothing in phase %s",
			    sk_client_phase_name(sk_client_phase(s->client)));
		}
		n = sk_conn_read(s->conn, buf, sizeof(buf), deadline(s), &e);
		if (n > 0) {
			(void)sk_client_feed(s->client, buf, (size_t)n);
		} else if (n == 0) {
			session_abort(s, NULL);
		} else {
			if (e.kind == SK_ERR_TIMEOUT)
				timeout_error(s, &e);
			else if (e.stage == SK_STAGE_NONE)
				e.stage = sk_client_stage(s->client);
			session_abort(s, &e);
		}
	}
}

struct sk_session *
sk_session_open(const struct sk_session_config *cfg, struct sk_error *err)
{
	struct sk_session *s;
	struct sk_client_config cc;
	struct sk_addrlist addrs;
	char helo[300];

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
		return NULL;
	}
	s->body = -1;
	s->body_fd = -1;
	s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
	s->trace = cfg->trace;
	s->tls_mode = cfg->tls_mode;
	s->tls = cfg->tls;
	s->servername = strdup(cfg->tls.servername != NULL ?
	    cfg->tls.servername : cfg->host);
	s->ca_file = cfg->tls.ca_file != NULL ? strdup(cfg->tls.ca_file) : NULL;
	if (s->servername == NULL ||
	    (cfg->tls.ca_file != NULL && s->ca_file == NULL)) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
		goto fail;
	}
	s->tls.servername = s->servername;
	s->tls.ca_file = s->ca_file;

	if (sk_dns_resolve(cfg->host, cfg->port, s->timeout_ms, &addrs,
	    err) == -1)
		goto fail;
	s->conn = sk_conn_connect(&addrs, s->timeout_ms,
	    sk_clock_ms() + (int64_t)s->timeout_ms * (int64_t)addrs.n,
	    &s->trace, err);
	if (s->conn == NULL)
		goto fail;
	if (cfg->tls_mode == SK_TLS_MODE_IMPLICIT &&
	    sk_conn_tls(s->conn, &s->tls, deadline(s), err) == -1) {
		if (err != NULL)
			err->stage = SK_STAGE_TLS;
		goto fail;
	}

	memset(&cc, 0, sizeof(cc));
	if (cfg->helo_name != NULL)
		(void)snprintf(helo, sizeof(helo), "%s", cfg->helo_name);
	else
		helo_name(sk_conn_fd(s->conn), helo, sizeof(helo));
	cc.helo_name = helo;
	cc.tls_mode = cfg->tls_mode;
	cc.user = cfg->user;
	cc.secret = cfg->secret;
	cc.auth_mech = cfg->auth_mech;
	cc.allow_plaintext_auth = cfg->allow_plaintext_auth;
	cc.pipeline_max = cfg->pipeline_max;
	cc.trace = cfg->trace;
	if ((s->client = sk_client_new(&cc, err)) == NULL)
		goto fail;
	if (run(s, UNTIL_READY) == -1) {
		if (err != NULL)
			*err = s->err;
		goto fail;
	}
	return s;
fail:
	sk_session_free(s);
	return NULL;
}

int
sk_session_send(struct sk_session *s, const struct sk_source *msgs, size_t n,
    sk_session_result_fn *fn, void *arg, struct sk_error *err)
{
	int rc;

	s->msgs = msgs;
	s->nmsgs = n;
	s->submitted = 0;
	s->reported = 0;
	s->fn = fn;
	s->fn_arg = arg;
	s->base = 0;
	if (s->failed) {
		top_up(s);
		if (err != NULL)
			*err = s->err;
		return -1;
	}
	rc = run(s, UNTIL_SENT);
	if (rc == -1 && err != NULL)
		*err = s->err;
	s->msgs = NULL;
	s->nmsgs = 0;
	s->fn = NULL;
	return rc;
}

void
sk_session_quit(struct sk_session *s)
{
	if (s == NULL)
		return;
	if (s->client != NULL && !s->failed && s->conn != NULL) {
		/* A short wait: the messages are already accepted. */
		if (s->timeout_ms > 5000)
			s->timeout_ms = 5000;
		sk_client_quit(s->client);
		(void)run(s, UNTIL_CLOSED);
	}
	sk_session_free(s);
}

void
sk_session_free(struct sk_session *s)
{
	if (s == NULL)
		return;
	if (s->body >= 0)
		source_close(s);
	sk_client_free(s->client);
	sk_conn_free(s->conn);
	free(s->body_buf);
	free(s->servername);
	free(s->ca_file);
	free(s);
}

const char *
sk_session_peer(const struct sk_session *s)
{
	return sk_conn_peer(s->conn);
}

const struct sk_caps *
sk_session_caps(const struct sk_session *s)
{
	return sk_client_caps(s->client);
}

const struct sk_tls_info *
sk_session_tls(const struct sk_session *s)
{
	return sk_conn_tls_info(s->conn);
}

enum sk_auth_mech
sk_session_auth_mech(const struct sk_session *s)
{
	return sk_client_auth_mech(s->client);
}
