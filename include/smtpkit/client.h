/*
 * smtpkit: the SMTP client engine, sans-I/O.
 *
 * The engine never touches a socket, a clock or a file.  The driver feeds it
 * the bytes the server sent (sk_client_feed), writes out what it has to say
 * (sk_client_output / sk_client_sent), and acts on its events
 * (sk_client_next_event): do the TLS handshake now, stream a body now, a
 * recipient or a message result, the end of the session.
 *
 * One session carries any number of messages: submit them at any time; the
 * engine sends MAIL, RCPT and DATA pipelined when the server offers
 * PIPELINING (RFC 2920), at most pipeline_max commands in flight, and puts
 * the next message's commands right behind the previous message's final
 * dot.  Each recipient and each message gets its own result.  A message
 * may also only check its envelope (sk_envelope.no_data): MAIL and RCPT,
 * then RSET where DATA would be, and a result that says so.
 */
#ifndef SMTPKIT_CLIENT_H
#define SMTPKIT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "error.h"
#include "trace.h"

enum sk_tls_mode {
	SK_TLS_MODE_NONE = 0,	/* plaintext, only when asked */
	SK_TLS_MODE_STARTTLS,	/* RFC 3207, required: never fall back */
	SK_TLS_MODE_IMPLICIT	/* RFC 8314: TLS from the first byte (465) */
};

/* "none", "starttls", "implicit"; parse returns -1 for anything else. */
const char *sk_tls_mode_name(enum sk_tls_mode m);
int sk_tls_mode_parse(const char *s, enum sk_tls_mode *m);

/* Service extensions the server announced in its last EHLO reply. */
enum sk_cap {
	SK_CAP_SIZE = 1u << 0,
	SK_CAP_PIPELINING = 1u << 1,
	SK_CAP_STARTTLS = 1u << 2,
	SK_CAP_AUTH = 1u << 3,
	SK_CAP_8BITMIME = 1u << 4,
	SK_CAP_SMTPUTF8 = 1u << 5,
	SK_CAP_ENHANCEDSTATUSCODES = 1u << 6,
	SK_CAP_DSN = 1u << 7,
	SK_CAP_CHUNKING = 1u << 8
};

struct sk_caps {
	unsigned flags;		/* enum sk_cap bits */
	uint64_t size_max;	/* SIZE parameter, 0 when none or unlimited */
	unsigned auth;		/* SK_AUTH_BIT() mask of offered mechanisms */
	bool esmtp;		/* EHLO was accepted (false after HELO fallback) */
};

struct sk_client_config {
	const char *helo_name;		/* EHLO argument (FQDN or address literal) */
	enum sk_tls_mode tls_mode;	/* IMPLICIT: the driver did TLS before the greeting */
	const char *user;		/* NULL: no AUTH */
	const char *secret;		/* password or bearer token (copied, wiped on free) */
	enum sk_auth_mech auth_mech;	/* SK_AUTH_NONE: choose from what is offered */
	bool allow_plaintext_auth;	/* send credentials without TLS */
	unsigned pipeline_max;		/* commands in flight; 0 means 100 */
	struct sk_trace trace;
};

/*
 * Delivery status notifications (RFC 3461): asked for only when the server
 * offers DSN; without it the parameters are left out (and traced), as
 * Postfix and sendmail do, since the message itself can still go.
 */
enum sk_dsn_notify {
	SK_DSN_NEVER = 1u << 0,		/* NOTIFY=NEVER, alone */
	SK_DSN_SUCCESS = 1u << 1,
	SK_DSN_FAILURE = 1u << 2,
	SK_DSN_DELAY = 1u << 3
};

enum sk_dsn_ret {
	SK_DSN_RET_NONE = 0,		/* the server's default */
	SK_DSN_RET_FULL,		/* RET=FULL: the whole message */
	SK_DSN_RET_HDRS			/* RET=HDRS: its header only */
};

#define SK_DSN_ENVID_MAX 100		/* RFC 3461 §4.4, before xtext */

struct sk_envelope {
	const char *from;		/* reverse-path, "" for the null sender */
	const char *const *rcpts;
	size_t nrcpts;
	uint64_t size;			/* octets of DATA, for SIZE= (0: unknown) */
	bool body_8bit;			/* needs BODY=8BITMIME */
	bool smtputf8;			/* an address needs SMTPUTF8 */
	unsigned dsn_notify;		/* enum sk_dsn_notify bits for every
					   RCPT, 0: none (the server decides) */
	enum sk_dsn_ret dsn_ret;	/* RET= on MAIL */
	const char *dsn_envid;		/* ENVID= on MAIL (xtext-encoded by the
					   engine), NULL: none */
	bool no_data;			/* MAIL and RCPT only, then RSET: checks
					   the envelope, sends nothing (see
					   sk_client_submit) */
};

/*
 * "never", or a comma-separated list of "success", "failure", "delay"
 * (any case, as sendmail's -N takes them) into enum sk_dsn_notify bits.
 * Returns -1 for anything else, "never" with another word included.
 */
int sk_dsn_notify_parse(const char *s, unsigned *notify);

/* "full", or "hdrs" (also "headers"), any case; -1 for anything else. */
int sk_dsn_ret_parse(const char *s, enum sk_dsn_ret *ret);

enum sk_client_phase {
	SK_PHASE_GREETING = 0,
	SK_PHASE_EHLO,
	SK_PHASE_STARTTLS,	/* STARTTLS sent, waiting for 220 */
	SK_PHASE_TLS,		/* waiting for the driver's handshake */
	SK_PHASE_AUTH,
	SK_PHASE_READY,		/* transactions may run */
	SK_PHASE_QUIT,
	SK_PHASE_CLOSED,
	SK_PHASE_FAILED,
	SK_PHASE__COUNT
};

const char *sk_client_phase_name(enum sk_client_phase p);

enum sk_event_type {
	SK_EV_NONE = 0,
	SK_EV_READY,		/* session established: greeting, EHLO, TLS, AUTH done */
	SK_EV_STARTTLS,		/* do the TLS handshake now, then sk_client_tls_done() */
	SK_EV_BODY,		/* stream message msg now: sk_client_body(), sk_client_body_end() */
	SK_EV_RCPT,		/* recipient rcpt of message msg: ok or refused */
	SK_EV_MESSAGE,		/* final result of message msg */
	SK_EV_CLOSED,		/* the session ended after QUIT */
	SK_EV_ERROR,		/* the session failed; every unfinished message was reported first */
	SK_EV__COUNT
};

const char *sk_event_name(enum sk_event_type t);

/*
 * What became of a message (SK_EV_MESSAGE).  Only SENT means the server
 * took the message for delivery: a CHECKED envelope was accepted and then
 * reset, and nothing of it will ever be delivered.
 */
enum sk_msg_result {
	SK_MSG_FAILED = 0,	/* refused or never sent: detail says why */
	SK_MSG_SENT,		/* accepted for delivery (the final dot) */
	SK_MSG_CHECKED,		/* no_data: the envelope was accepted and
				   reset; no DATA was sent */
	SK_MSG__COUNT
};

/* "failed", "sent", "checked". */
const char *sk_msg_result_name(enum sk_msg_result r);

struct sk_event {
	enum sk_event_type type;
	size_t msg;		/* message index, in order of submission from 0 */
	size_t rcpt;		/* recipient index in the message */
	bool ok;		/* RCPT accepted; MESSAGE accepted by the server
				   (for delivery only when result is SENT) */
	enum sk_msg_result result;	/* MESSAGE: sent, checked or failed */
	size_t accepted;	/* MESSAGE: recipients accepted */
	/*
	 * The reply or the failure.  For an ok event: kind SK_ERR_NONE with the
	 * positive reply's code, enhanced code and text.
	 */
	struct sk_error detail;
};

struct sk_client;

/*
 * Create an engine for one session.  Strings in cfg are copied.  Returns
 * the engine (owned; sk_client_free) or NULL with err (SK_ERR_USAGE for a
 * missing helo_name, SK_ERR_LOCAL when out of memory).
 */
struct sk_client *sk_client_new(const struct sk_client_config *cfg,
    struct sk_error *err);

/* Free the engine and wipe the secret.  NULL is ignored. */
void sk_client_free(struct sk_client *c);

/*
 * Feed the bytes the server sent.  Everything is consumed; events may be
 * queued.  Returns 0, or -1 when the session failed (an SK_EV_ERROR is
 * queued, detail says why).  Bytes that arrive after the 220 to STARTTLS
 * and before the handshake are discarded (RFC 3207 §4.2: plaintext
 * injection), and traced.
 */
int sk_client_feed(struct sk_client *c, const char *buf, size_t len);

/*
 * The server closed the connection (or the driver gave up: pass the reason
 * in why, e.g. a timeout; NULL means end of stream).  Unless QUIT was
 * answered, every unfinished message fails with that reason.
 */
void sk_client_abort(struct sk_client *c, const struct sk_error *why);

/* Octets waiting to be sent (borrowed, valid until the next call). */
const char *sk_client_output(const struct sk_client *c, size_t *len);

/* n octets of the output were written. */
void sk_client_sent(struct sk_client *c, size_t n);

/* True when a reply is awaited: the driver should read. */
bool sk_client_wants_read(const struct sk_client *c);

/*
 * The stage of the oldest command awaiting its reply (for naming a
 * timeout), SK_STAGE_NONE when nothing is awaited.
 */
enum sk_stage sk_client_stage(const struct sk_client *c);

/*
 * Queue a message.  Envelope strings are copied.  Returns the message
 * index, or -1 with err (SK_ERR_USAGE: no recipient without no_data, or a
 * DSN envelope id that is longer than SK_DSN_ENVID_MAX or not printable
 * ASCII; SK_ERR_LOCAL: out of memory; SK_ERR_POLICY: the session already
 * ended).  A message the server cannot take (SIZE too large, 8BITMIME or
 * SMTPUTF8 missing) is reported failed through SK_EV_MESSAGE without
 * being sent.
 *
 * With env->no_data the transaction only checks the envelope: MAIL and the
 * RCPTs go out exactly as for a message (same parameters, pipelined when
 * offered, an SK_EV_RCPT for each recipient; unpipelined, a refused MAIL
 * stops the RCPTs), then RSET instead of DATA (RFC 5321 §4.1.1.5), however
 * MAIL and RCPT were answered; no SK_EV_BODY comes.  nrcpts may be 0: the
 * sender alone is checked.  Its SK_EV_MESSAGE comes once MAIL and the
 * RCPTs are answered: result SK_MSG_CHECKED when the sender and at least
 * one recipient were accepted (ok; detail: the last positive reply), else
 * SK_MSG_FAILED as for a message.  The reply to that RSET is the
 * session's, as for the RSET before a MAIL: refused, it fails the session
 * (SK_EV_ERROR); a 421 ends it, as anywhere.
 */
long sk_client_submit(struct sk_client *c, const struct sk_envelope *env,
    struct sk_error *err);

/*
 * Stream body octets of the message announced by SK_EV_BODY, as they are:
 * the engine converts line ends to CRLF and dot-stuffs.  Returns the
 * octets consumed, which is less than len when the output buffer is full:
 * write the output, then call again.
 */
size_t sk_client_body(struct sk_client *c, const char *buf, size_t len);

/* End the body: the final dot, then the next queued message's commands. */
void sk_client_body_end(struct sk_client *c);

/* The TLS handshake the SK_EV_STARTTLS event asked for succeeded. */
void sk_client_tls_done(struct sk_client *c);

/* Send QUIT once every queued message is done. */
void sk_client_quit(struct sk_client *c);

/* Take the next event; false when there is none. */
bool sk_client_next_event(struct sk_client *c, struct sk_event *ev);

enum sk_client_phase sk_client_phase(const struct sk_client *c);
const struct sk_caps *sk_client_caps(const struct sk_client *c);
bool sk_client_tls_active(const struct sk_client *c);

/* The mechanism AUTH used, SK_AUTH_NONE before or without AUTH. */
enum sk_auth_mech sk_client_auth_mech(const struct sk_client *c);

/* The greeting's text (borrowed), "" before it. */
const char *sk_client_greeting(const struct sk_client *c);

#endif
