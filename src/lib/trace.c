/* smtpkit: the transcript hook. */
#include <stdarg.h>
#include <stdio.h>

#include "smtpkit/trace.h"

static const char *const trace_names[SK_TRACE__COUNT] = {
	[SK_TRACE_RECV] = "recv",
	[SK_TRACE_SEND] = "send",
	[SK_TRACE_INFO] = "info",
	[SK_TRACE_STATE] = "state",
};

const char *
sk_trace_kind_name(enum sk_trace_kind kind)
{
	if ((unsigned)kind >= SK_TRACE__COUNT)
		return "unknown";
	return trace_names[kind];
}

void
sk_trace_emit(const struct sk_trace *t, enum sk_trace_kind kind,
    const char *text, size_t len)
{
	if (t != NULL && t->fn != NULL)
		t->fn(t->arg, kind, text, len);
}

void
sk_trace_printf(const struct sk_trace *t, enum sk_trace_kind kind,
    const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (t == NULL || t->fn == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	t->fn(t->arg, kind, line, (size_t)n);
}
