/*
 * smtpkit: the SMTP server engine (RFC 5321), sans-I/O.
 *
 * The listening side of a session: the greeting, EHLO/HELO, MAIL, RCPT,
 * DATA with dot-unstuffing, RSET, NOOP, VRFY, HELP and QUIT, with every
 * command line, recipient list and error count bounded.  Like the client
 * engine it never touches a socket, a clock or a file: the driver feeds it
 * what the client sent (sk_server_feed), writes out its replies
 * (sk_server_output / sk_server_sent), takes the message body as it
 * arrives (sk_server_body / sk_server_body_taken), and acts on its events:
 * a message begins (its envelope is then sk_server_envelope), a message is
 * complete and wants the final reply (sk_server_reply), a message was
 * dropped, the session is over.
 *
 * The engine announces PIPELINING (RFC 2920), 8BITMIME (RFC 6152),
 * ENHANCEDSTATUSCODES (RFC 2034) and SIZE (RFC 1870) when a limit is set;
 * it offers neither STARTTLS nor AUTH: it is meant for a local pipe
 * (sendmail -bs) and, later, a loopback listener.
 */
#ifndef SMTPKIT_SERVER_H
#define SMTPKIT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "trace.h"

/* A command line, CRLF included (RFC 5321 §4.5.3.1.4 asks for 512 at least). */
#define SK_SERVER_LINE_MAX 2048
/* Recipients per message (RFC 5321 §4.5.3.1.8 asks for 100 at least). */
#define SK_SERVER_RCPT_DEFAULT 100
/* Errors in one session before the server gives up with 421. */
#define SK_SERVER_ERRORS_MAX 20

struct sk_server_config {
	const char *hostname;	/* in the greeting and EHLO reply (required) */
	size_t rcpt_max;	/* 0: SK_SERVER_RCPT_DEFAULT */
	uint64_t size_max;	/* octets of a body, announced as SIZE; 0: none */
	/*
	 * Whether a bare LF ends a line inside DATA as CRLF does, so that
	 * "." LF ends the message.  Right for a local pipe whose writer may
	 * use Unix line ends; wrong on the network, where reading a message's
	 * end differently from the server before us is how SMTP smuggling
	 * works.  Command lines end at LF either way (a CR before it is
	 * dropped).
	 */
	bool lf_ends_line;
	struct sk_trace trace;	/* commands (recv) and replies (send) */
};

enum sk_server_event_type {
	SK_SRV_EV_NONE = 0,
	SK_SRV_EV_MESSAGE,	/* DATA was accepted: a body follows */
	SK_SRV_EV_END,		/* the final dot: answer with sk_server_reply() */
	SK_SRV_EV_DISCARD,	/* the message was dropped (too big, or the
				   input ended inside DATA); the engine replied */
	SK_SRV_EV_CLOSED,	/* QUIT answered, 421 sent, or input ended */
	SK_SRV_EV__COUNT
};

const char *sk_server_event_name(enum sk_server_event_type t);

struct sk_server_event {
	enum sk_server_event_type type;
	size_t msg;		/* message number in the session, from 0 */
};

/* The transaction being received; borrowed from the engine. */
struct sk_server_envelope {
	const char *helo;		/* the EHLO or HELO argument */
	const char *from;		/* reverse-path, "" for <> */
	const char *const *rcpts;
	size_t nrcpts;
	uint64_t size;			/* MAIL SIZE=, 0 when not given */
	bool body_8bit;			/* MAIL BODY=8BITMIME */
};

struct sk_server;

/*
 * Create an engine for one session; the greeting is queued as output at
 * once.  Strings in cfg are copied.  Returns the engine (owned;
 * sk_server_free) or NULL with err (SK_ERR_USAGE without a hostname,
 * SK_ERR_LOCAL when out of memory).
 */
struct sk_server *sk_server_new(const struct sk_server_config *cfg,
    struct sk_error *err);

/* NULL is ignored. */
void sk_server_free(struct sk_server *s);

/*
 * Feed what the client sent.  Returns the octets consumed, which is less
 * than len when the engine must hear from the driver first: right after
 * it queued an event (take the events, then feed the rest), while the body
 * buffer or the output is full (take the body, write the output), and while
 * a message waits for its final reply.  After SK_SRV_EV_CLOSED everything
 * is consumed and ignored.
 */
size_t sk_server_feed(struct sk_server *s, const char *buf, size_t len);

/*
 * The client closed its side.  Inside DATA the message is dropped
 * (SK_SRV_EV_DISCARD); then SK_SRV_EV_CLOSED.
 */
void sk_server_eof(struct sk_server *s);

/* Replies waiting to be written (borrowed, valid until the next call). */
const char *sk_server_output(const struct sk_server *s, size_t *len);
void sk_server_sent(struct sk_server *s, size_t n);

/*
 * Body octets received since the last take, dots unstuffed, line ends as
 * the client sent them (borrowed, valid until the next call).  Take them
 * before acting on SK_SRV_EV_END.
 */
const char *sk_server_body(const struct sk_server *s, size_t *len);
void sk_server_body_taken(struct sk_server *s, size_t n);

/* Take the next event; false when there is none. */
bool sk_server_next_event(struct sk_server *s, struct sk_server_event *ev);

/*
 * The envelope of the message being received, from SK_SRV_EV_MESSAGE until
 * sk_server_reply; NULL outside a message.
 */
const struct sk_server_envelope *sk_server_envelope(const struct sk_server *s);

/*
 * The final reply to the message that SK_SRV_EV_END announced: code 2xx,
 * 4xx or 5xx, enhanced "x.y.z" or NULL, one line of text (line breaks and
 * controls become spaces; cut at 400 octets).  A 421 closes the session.
 * Ignored unless a message waits for it.
 */
void sk_server_reply(struct sk_server *s, int code, const char *enhanced,
    const char *text);

/* True once the session is over (SK_SRV_EV_CLOSED was queued). */
bool sk_server_closed(const struct sk_server *s);

#endif
