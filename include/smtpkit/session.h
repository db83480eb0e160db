/*
 * smtpkit: a blocking SMTP session: the client engine driven over a
 * connection, every wait bounded by a deadline.
 *
 *	s = sk_session_open(&cfg, &err);      resolve, connect, TLS, EHLO, AUTH
 *	sk_session_send(s, msgs, n, fn, arg, &err);   any number, pipelined
 *	sk_session_quit(s);                    QUIT and free
 */
#ifndef SMTPKIT_SESSION_H
#define SMTPKIT_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "client.h"
#include "conn.h"
#include "error.h"
#include "trace.h"

struct sk_session_config {
	const char *host;
	unsigned port;
	enum sk_tls_mode tls_mode;
	struct sk_tls_config tls;	/* servername NULL: the host */
	const char *helo_name;		/* NULL: this host's FQDN or address literal */
	const char *user;		/* NULL: no AUTH */
	const char *secret;		/* password or bearer token */
	enum sk_auth_mech auth_mech;	/* SK_AUTH_NONE: choose */
	bool allow_plaintext_auth;
	int timeout_ms;			/* each wait: lookup, connect, reply, handshake */
	unsigned pipeline_max;		/* 0: 100 */
	struct sk_trace trace;
};

/* A message to send: its envelope and where its octets come from. */
struct sk_source {
	struct sk_envelope env;
	int fd;			/* >= 0: read from here to end of file */
	const char *path;	/* else open this file when the body is due */
	const char *data;	/* else these len octets */
	size_t len;
	const char *name;	/* for messages: a file name or "composed" */
};

/*
 * Called for each recipient result (SK_EV_RCPT) and each message result
 * (SK_EV_MESSAGE); ev->msg is the index in the array given to
 * sk_session_send.  Every message gets exactly one SK_EV_MESSAGE.
 */
typedef void sk_session_result_fn(void *arg, const struct sk_event *ev);

struct sk_session;

/*
 * Resolve, connect (each address in turn), TLS, greeting, EHLO, STARTTLS,
 * AUTH: return a session ready for messages (owned: sk_session_quit or
 * sk_session_free), or NULL with err naming the stage that failed.
 */
struct sk_session *sk_session_open(const struct sk_session_config *cfg,
    struct sk_error *err);

/*
 * Send n messages over the session, pipelined.  Results go to fn.  Returns
 * 0 when the session is still usable (some messages may have been
 * refused), -1 when it failed (err says why; every message not accepted
 * was reported failed).  A message whose source cannot be read fails the
 * session: the server must not take a truncated message.
 */
int sk_session_send(struct sk_session *s, const struct sk_source *msgs,
    size_t n, sk_session_result_fn *fn, void *arg, struct sk_error *err);

/* Say QUIT (bounded wait for the 221), close and free.  NULL is ignored. */
void sk_session_quit(struct sk_session *s);

/* Close without QUIT and free.  NULL is ignored. */
void sk_session_free(struct sk_session *s);

/* Facts about the session, borrowed from it. */
const char *sk_session_peer(const struct sk_session *s);
const struct sk_caps *sk_session_caps(const struct sk_session *s);
const struct sk_tls_info *sk_session_tls(const struct sk_session *s);
enum sk_auth_mech sk_session_auth_mech(const struct sk_session *s);

#endif
