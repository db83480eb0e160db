/*
 * smtpkit: the transcript hook.
 *
 * The library reports every protocol line sent and received, and notable
 * events (connecting, TLS negotiated, state changes), through one callback.
 * Credentials never reach it: AUTH payloads arrive as "<redacted>".
 */
#ifndef SMTPKIT_TRACE_H
#define SMTPKIT_TRACE_H

#include <stddef.h>

enum sk_trace_kind {
	SK_TRACE_RECV = 0,	/* a line from the server, without CRLF */
	SK_TRACE_SEND,		/* a line to the server, without CRLF */
	SK_TRACE_INFO,		/* a note: connecting, TLS details, body size */
	SK_TRACE_STATE,		/* an engine state change, for debugging */
	SK_TRACE__COUNT
};

typedef void sk_trace_fn(void *arg, enum sk_trace_kind kind, const char *text,
    size_t len);

struct sk_trace {
	sk_trace_fn *fn;	/* NULL: tracing off */
	void *arg;
};

/* "recv", "send", "info", "state". */
const char *sk_trace_kind_name(enum sk_trace_kind kind);

/* Report a line through t (NULL t or t->fn is a no-op). */
void sk_trace_emit(const struct sk_trace *t, enum sk_trace_kind kind,
    const char *text, size_t len);
void sk_trace_printf(const struct sk_trace *t, enum sk_trace_kind kind,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
