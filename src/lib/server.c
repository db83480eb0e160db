/*
 * smtpkit: the SMTP server engine (RFC 5321), sans-I/O.
 *
 * Two modes: command lines, each answered in order (so pipelining, RFC
 * 2920, needs nothing more than answering in order), and DATA, where the
 * body streams through a bounded buffer with dots unstuffed (RFC 5321
 * §4.5.2) until the line that holds a lone dot.  srv_goto() is the only
 * place the state changes; on_command() is the one switch over commands.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpkit/message.h"
#include "smtpkit/server.h"

#define OUT_MAX (64u * 1024u)		/* replies not yet written */
#define BODY_MAX (64u * 1024u)		/* body octets not yet taken */
#define TEXT_MAX 400			/* of a reply's text */
#define EVENTS_MAX 4

enum srv_state {
	SS_COMMAND,	/* reading command lines */
	SS_DATA,	/* reading a body */
	SS_WAIT,	/* the final dot is in; the driver must answer */
	SS_CLOSED,
	SS__COUNT
};

static const char *const state_names[SS__COUNT] = {
	[SS_COMMAND] = "command",
	[SS_DATA] = "data",
	[SS_WAIT] = "wait",
	[SS_CLOSED] = "closed",
};

static const char *const event_names[SK_SRV_EV__COUNT] = {
	[SK_SRV_EV_NONE] = "none",
	[SK_SRV_EV_MESSAGE] = "message",
	[SK_SRV_EV_END] = "end",
	[SK_SRV_EV_DISCARD] = "discard",
	[SK_SRV_EV_CLOSED] = "closed",
};

struct sk_server {
	enum srv_state state;
	char *hostname;
	size_t rcpt_max;
	uint64_t size_max;
	bool lf_ends_line;
	struct sk_trace trace;

	/* the command line being read */
	char line[SK_SERVER_LINE_MAX];
	size_t line_len;
	bool line_over;		/* too long: skipping to its end */
	unsigned errors;

	/* the session and the transaction */
	char *helo;
	bool mail;		/* MAIL accepted */
	char *from;
	char **rcpts;
	size_t nrcpts, rcpts_cap;
	uint64_t size;
	bool body_8bit;
	struct sk_server_envelope env;
	size_t nmsgs;		/* messages begun */

	/* DATA */
	bool bol;		/* at the start of a line */
	bool last_cr;		/* the last octet given to the body was CR */
	int dot;		/* 1: "." at bol held; 2: "." CR held */
	uint64_t body_total;
	bool too_big;
	char body[BODY_MAX];
	size_t body_len, body_off;

	char *out;
	size_t out_len, out_off;

	struct sk_server_event events[EVENTS_MAX];
	size_t ev_head, ev_count;
	bool oom;
};

const char *
sk_server_event_name(enum sk_server_event_type t)
{
	if ((unsigned)t >= SK_SRV_EV__COUNT)
		return "unknown";
	return event_names[t];
}

static void
srv_goto(struct sk_server *s, enum srv_state next)
{
	if (s->state == next)
		return;
	sk_trace_printf(&s->trace, SK_TRACE_STATE, "%s -> %s",
	    state_names[s->state], state_names[next]);
	s->state = next;
}

static void
push_event(struct sk_server *s, enum sk_server_event_type type)
{
	struct sk_server_event *ev;

	/* Feeding stops at every event, so the queue never holds more
	 * than a DISCARD and a CLOSED. */
	if (s->ev_count == EVENTS_MAX)
		return;
	ev = &s->events[(s->ev_head + s->ev_count) % EVENTS_MAX];
	ev->type = type;
	ev->msg = s->nmsgs > 0 ? s->nmsgs - 1 : 0;
	s->ev_count++;
}

/* Queue one reply line; traced without its CRLF. */
static void reply(struct sk_server *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct sk_server *s, const char *fmt, ...)
{
	char line[TEXT_MAX + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (s->out_len + (size_t)n + 2 > OUT_MAX) {
		/* Only a client that never reads gets here: drop it. */
		s->oom = true;
		return;
	}
	memcpy(s->out + s->out_len, line, (size_t)n);
	memcpy(s->out + s->out_len + (size_t)n, "\r\n", 2);
	s->out_len += (size_t)n + 2;
	sk_trace_emit(&s->trace, SK_TRACE_SEND, line, (size_t)n);
}

static void
close_session(struct sk_server *s)
{
	srv_goto(s, SS_CLOSED);
	push_event(s, SK_SRV_EV_CLOSED);
}

/* A refusal that counts toward the limit (RFC 5321 §4.2: the client keeps
 * talking nonsense; OpenSMTPD and Postfix hang up likewise). */
static void
error_reply(struct sk_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
error_reply(struct sk_server *s, const char *fmt, ...)
{
	char text[TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	reply(s, "%s", text);
	if (++s->errors >= SK_SERVER_ERRORS_MAX) {
		reply(s, "421 4.7.0 %s Too many errors, closing", s->hostname);
		close_session(s);
	}
}

/* ---- life cycle ---- */

struct sk_server *
sk_server_new(const struct sk_server_config *cfg, struct sk_error *err)
{
	struct sk_server *s;

	if (cfg->hostname == NULL || cfg->hostname[0] == '\0') {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "the SMTP server needs a host name");
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->hostname = strdup(cfg->hostname)) == NULL ||
	    (s->out = malloc(OUT_MAX)) == NULL) {
		sk_server_free(s);
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
		return NULL;
	}
	s->rcpt_max = cfg->rcpt_max != 0 ? cfg->rcpt_max :
	    SK_SERVER_RCPT_DEFAULT;
	s->size_max = cfg->size_max;
	s->lf_ends_line = cfg->lf_ends_line;
	s->trace = cfg->trace;
	reply(s, "220 %s ESMTP smtpkit", s->hostname);
	return s;
}

static void
txn_reset(struct sk_server *s)
{
	size_t i;

	free(s->from);
	s->from = NULL;
	for (i = 0; i < s->nrcpts; i++)
		free(s->rcpts[i]);
	s->nrcpts = 0;
	s->mail = false;
	s->size = 0;
	s->body_8bit = false;
}

void
sk_server_free(struct sk_server *s)
{
	if (s == NULL)
		return;
	txn_reset(s);
	free(s->rcpts);
	free(s->helo);
	free(s->hostname);
	free(s->out);
	free(s);
}

/* ---- commands ---- */

/* The word after the verb, case-insensitively: "FROM:" of MAIL FROM:. */
static char *
after_keyword(char *arg, const char *kw)
{
	size_t n = strlen(kw);

	if (strncasecmp(arg, kw, n) != 0)
		return NULL;
	arg += n;
	/* Not in RFC 5321, but common: "MAIL FROM: <a@b>". */
	while (*arg == ' ')
		arg++;
	return arg;
}

/*
 * Path = "<" [ A-d-l ":" ] Mailbox ">" (RFC 5321 §4.1.2); the source
 * route is dropped (§C).  *addr points into the line (NUL-terminated
 * there); *params at what follows.  -1 when it is not a path.
 */
static int
parse_path(char *p, char **addr, char **params)
{
	char *end, *colon;

	if (*p != '<' || (end = strchr(p, '>')) == NULL)
		return -1;
	*end = '\0';
	p++;
	if (*p == '@') {
		if ((colon = strchr(p, ':')) == NULL)
			return -1;
		p = colon + 1;
	}
	*addr = p;
	p = end + 1;
	if (*p != '\0' && *p != ' ')
		return -1;
	while (*p == ' ')
		p++;
	*params = p;
	return 0;
}

/* RFC 5321 §2.3.5 postmaster, which needs no domain (§4.5.1). */
static bool
is_postmaster(const char *a)
{
	return strcasecmp(a, "postmaster") == 0;
}

/* Command lines are ASCII here (SMTPUTF8 is not offered, RFC 6531). */
static bool
addr_ok(struct sk_server *s, const char *addr, bool sender)
{
	struct sk_error e;

	if (sk_addr_check(NULL, addr, NULL, &e) == -1) {
		/* RFC 3463: X.1.7 bad sender, X.1.3 bad destination syntax */
		error_reply(s, "%s %s", sender ? "553 5.1.7" : "553 5.1.3",
		    e.message);
		return false;
	}
	return true;
}

static void
cmd_helo(struct sk_server *s, const char *arg, bool ehlo)
{
	char *h;

	if (*arg == '\0') {
		error_reply(s, "501 5.5.4 Syntax: %s hostname",
		    ehlo ? "EHLO" : "HELO");
		return;
	}
	if ((h = strdup(arg)) == NULL) {
		s->oom = true;
		return;
	}
	free(s->helo);
	s->helo = h;
	/* RFC 5321 §4.1.4: EHLO or HELO resets any transaction. */
	txn_reset(s);
	if (!ehlo) {
		reply(s, "250 %s", s->hostname);
		return;
	}
	reply(s, "250-%s", s->hostname);
	reply(s, "250-PIPELINING");
	if (s->size_max > 0)
		reply(s, "250-SIZE %llu", (unsigned long long)s->size_max);
	reply(s, "250-8BITMIME");
	reply(s, "250 ENHANCEDSTATUSCODES");
}

static void
cmd_mail(struct sk_server *s, char *arg)
{
	char *p, *addr, *params, *kw, *save = NULL, *val, *end;
	unsigned long long n;

	if (s->helo == NULL) {
		error_reply(s, "503 5.5.1 Say EHLO or HELO first");
		return;
	}
	if (s->mail) {
		error_reply(s, "503 5.5.1 A transaction is already open; "
		    "RSET it first");
		return;
	}
	if ((p = after_keyword(arg, "FROM:")) == NULL ||
	    parse_path(p, &addr, &params) == -1) {
		error_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if (*addr != '\0' && !addr_ok(s, addr, true))
		return;
	s->size = 0;
	s->body_8bit = false;
	for (kw = strtok_r(params, " ", &save); kw != NULL;
	    kw = strtok_r(NULL, " ", &save)) {
		val = strchr(kw, '=');
		if (val != NULL)
			*val++ = '\0';
		if (strcasecmp(kw, "SIZE") == 0 && val != NULL) {
			/* RFC 1870 §6 */
			n = strtoull(val, &end, 10);
			if (*val == '\0' || *end != '\0' || *val == '-') {
				error_reply(s, "501 5.5.4 SIZE wants a "
				    "number");
				return;
			}
			if (s->size_max > 0 && n > s->size_max) {
				error_reply(s, "552 5.3.4 The message is "
				    "larger than the %llu octets this server "
				    "accepts", (unsigned long long)s->size_max);
				return;
			}
			s->size = n;
		} else if (strcasecmp(kw, "BODY") == 0 && val != NULL &&
		    (strcasecmp(val, "7BIT") == 0 ||
		    strcasecmp(val, "8BITMIME") == 0)) {
			s->body_8bit = strcasecmp(val, "8BITMIME") == 0;
		} else {
			error_reply(s, "555 5.5.4 MAIL parameter %s is not "
			    "recognized", kw);
			return;
		}
	}
	if ((s->from = strdup(addr)) == NULL) {
		s->oom = true;
		return;
	}
	s->mail = true;
	reply(s, "250 2.1.0 Ok");
}

static void
cmd_rcpt(struct sk_server *s, char *arg)
{
	char *p, *addr, *params;
	char **nr;
	size_t ncap;

	if (!s->mail) {
		error_reply(s, "503 5.5.1 Say MAIL first");
		return;
	}
	if ((p = after_keyword(arg, "TO:")) == NULL ||
	    parse_path(p, &addr, &params) == -1) {
		error_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (*params != '\0') {
		error_reply(s, "555 5.5.4 RCPT parameters are not recognized");
		return;
	}
	if (*addr == '\0') {
		error_reply(s, "501 5.1.3 An empty recipient address");
		return;
	}
	if (!is_postmaster(addr) && !addr_ok(s, addr, false))
		return;
	if (s->nrcpts >= s->rcpt_max) {
		/* RFC 5321 §4.5.3.1.10: 452, and the client sends the rest
		 * in another transaction; not an error toward the limit. */
		reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (s->nrcpts == s->rcpts_cap) {
		ncap = s->rcpts_cap != 0 ? s->rcpts_cap * 2 : 8;
		if ((nr = realloc(s->rcpts, ncap * sizeof(*nr))) == NULL) {
			s->oom = true;
			return;
		}
		s->rcpts = nr;
		s->rcpts_cap = ncap;
	}
	if ((s->rcpts[s->nrcpts] = strdup(addr)) == NULL) {
		s->oom = true;
		return;
	}
	s->nrcpts++;
	reply(s, "250 2.1.5 Ok");
}

static void
cmd_data(struct sk_server *s, const char *arg)
{
	if (*arg != '\0') {
		error_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (!s->mail) {
		error_reply(s, "503 5.5.1 Say MAIL first");
		return;
	}
	if (s->nrcpts == 0) {
		/* RFC 2920 §3.1: refused recipients, then a pipelined DATA. */
		error_reply(s, "554 5.5.1 No valid recipients");
		return;
	}
	s->env.helo = s->helo;
	s->env.from = s->from;
	s->env.rcpts = (const char *const *)s->rcpts;
	s->env.nrcpts = s->nrcpts;
	s->env.size = s->size;
	s->env.body_8bit = s->body_8bit;
	s->bol = true;
	s->last_cr = false;
	s->dot = 0;
	s->body_total = 0;
	s->too_big = false;
	s->nmsgs++;
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	srv_goto(s, SS_DATA);
	push_event(s, SK_SRV_EV_MESSAGE);
}

static void
on_command(struct sk_server *s, char *line)
{
	char *arg;
	size_t i;

	for (i = 0; line[i] != '\0'; i++)
		if ((unsigned char)line[i] < 0x20 ||
		    (unsigned char)line[i] > 0x7e) {
			error_reply(s, "500 5.5.2 A command must be printable "
			    "ASCII");
			return;
		}
	if ((arg = strchr(line, ' ')) != NULL)
		*arg++ = '\0';
	else
		arg = line + strlen(line);

#define IS(v) (strcasecmp(line, v) == 0)
	if (IS("EHLO") || IS("HELO"))
		cmd_helo(s, arg, IS("EHLO"));
	else if (IS("MAIL"))
		cmd_mail(s, arg);
	else if (IS("RCPT"))
		cmd_rcpt(s, arg);
	else if (IS("DATA"))
		cmd_data(s, arg);
	else if (IS("RSET")) {
		if (*arg != '\0') {
			error_reply(s, "501 5.5.4 Syntax: RSET");
			return;
		}
		txn_reset(s);
		reply(s, "250 2.0.0 Ok");
	} else if (IS("NOOP"))
		reply(s, "250 2.0.0 Ok");
	else if (IS("QUIT")) {
		reply(s, "221 2.0.0 %s Bye", s->hostname);
		close_session(s);
	} else if (IS("VRFY"))
		/* RFC 5321 §3.5.3: neither confirm nor deny. */
		reply(s, "252 2.5.0 Cannot VRFY; send the message and it "
		    "will be tried");
	else if (IS("HELP"))
		reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET "
		    "NOOP VRFY HELP QUIT");
	else if (IS("EXPN") || IS("STARTTLS") || IS("AUTH") ||
	    IS("BDAT") || IS("ETRN") || IS("TURN"))
		error_reply(s, "502 5.5.1 %s is not implemented", line);
	else if (line[0] == '\0')
		error_reply(s, "500 5.5.2 An empty command");
	else
		error_reply(s, "500 5.5.2 Command not recognized");
#undef IS
}

/* ---- input ---- */

/* Command mode: collect a line, act on it.  Returns octets used. */
static size_t
feed_line(struct sk_server *s, const char *buf, size_t len)
{
	const char *nl = memchr(buf, '\n', len);
	size_t take = nl != NULL ? (size_t)(nl - buf) + 1 : len;
	size_t n;

	if (s->line_over) {
		if (nl != NULL)
			s->line_over = false;
		return take;
	}
	n = nl != NULL ? take - 1 : take;
	if (s->line_len + n >= SK_SERVER_LINE_MAX) {
		/* RFC 5321 §4.5.3.1.4: too long, refused as a whole. */
		s->line_len = 0;
		s->line_over = nl == NULL;
		error_reply(s, "500 5.5.2 Line too long (the limit is %d "
		    "octets)", SK_SERVER_LINE_MAX);
		return take;
	}
	memcpy(s->line + s->line_len, buf, n);
	s->line_len += n;
	if (nl == NULL)
		return take;
	if (s->line_len > 0 && s->line[s->line_len - 1] == '\r')
		s->line_len--;
	s->line[s->line_len] = '\0';
	s->line_len = 0;
	sk_trace_emit(&s->trace, SK_TRACE_RECV, s->line, strlen(s->line));
	on_command(s, s->line);
	return take;
}

static void
body_put(struct sk_server *s, char c)
{
	/* Too big: read on to the end, keep nothing (RFC 1870 §6.3). */
	if (s->size_max > 0 && s->body_total >= s->size_max) {
		s->too_big = true;
		return;
	}
	s->body[s->body_len++] = c;
	s->body_total++;
}

static void
data_end(struct sk_server *s)
{
	if (s->too_big) {
		reply(s, "552 5.3.4 The message is larger than the %llu "
		    "octets this server accepts",
		    (unsigned long long)s->size_max);
		txn_reset(s);
		srv_goto(s, SS_COMMAND);
		push_event(s, SK_SRV_EV_DISCARD);
		return;
	}
	srv_goto(s, SS_WAIT);
	push_event(s, SK_SRV_EV_END);
}

/*
 * DATA mode, octet by octet: a line that starts with "." loses the dot,
 * and a line that is only "." ends the body (RFC 5321 §4.5.2).  The dot,
 * and the CR after it, are held until the next octet says which it is.
 */
static size_t
feed_data(struct sk_server *s, const char *buf, size_t len)
{
	size_t i;
	char c;

	for (i = 0; i < len; i++) {
		/* Room for a held CR and this octet. */
		if (BODY_MAX - s->body_len < 2)
			break;
		c = buf[i];
		if (s->dot == 1) {
			if (c == '\r') {
				s->dot = 2;
				continue;
			}
			if (c == '\n' && s->lf_ends_line) {
				data_end(s);
				return i + 1;
			}
			s->dot = 0;	/* a stuffed dot: dropped */
		} else if (s->dot == 2) {
			if (c == '\n') {
				data_end(s);
				return i + 1;
			}
			s->dot = 0;
			body_put(s, '\r');
			s->last_cr = true;
			s->bol = false;
		} else if (s->bol && c == '.') {
			s->dot = 1;
			s->bol = false;
			continue;
		}
		body_put(s, c);
		if (c == '\n')
			s->bol = s->last_cr || s->lf_ends_line;
		else
			s->bol = false;
		s->last_cr = c == '\r';
	}
	return i;
}

size_t
sk_server_feed(struct sk_server *s, const char *buf, size_t len)
{
	size_t used = 0, n;

	while (used < len) {
		if (s->state == SS_CLOSED)
			return len;
		if (s->ev_count > 0 || s->state == SS_WAIT ||
		    s->out_len - s->out_off > OUT_MAX / 2)
			break;
		if (s->state == SS_DATA) {
			n = feed_data(s, buf + used, len - used);
			if (n == 0)
				break;	/* the body buffer is full */
		} else {
			n = feed_line(s, buf + used, len - used);
		}
		used += n;
		if (s->oom) {
			/* Say so if it fits, and stop: nothing is safe now. */
			s->oom = false;
			reply(s, "421 4.3.0 %s Out of memory, closing",
			    s->hostname);
			if (s->state == SS_DATA)
				push_event(s, SK_SRV_EV_DISCARD);
			close_session(s);
			return len;
		}
	}
	return used;
}

void
sk_server_eof(struct sk_server *s)
{
	if (s->state == SS_CLOSED)
		return;
	if (s->state == SS_DATA) {
		sk_trace_printf(&s->trace, SK_TRACE_INFO, "the input ended "
		    "inside DATA: the message is dropped");
		txn_reset(s);
		push_event(s, SK_SRV_EV_DISCARD);
	}
	close_session(s);
}

/* ---- driver interface ---- */

const char *
sk_server_output(const struct sk_server *s, size_t *len)
{
	*len = s->out_len - s->out_off;
	return s->out + s->out_off;
}

void
sk_server_sent(struct sk_server *s, size_t n)
{
	if (n > s->out_len - s->out_off)
		n = s->out_len - s->out_off;
	s->out_off += n;
	if (s->out_off == s->out_len)
		s->out_off = s->out_len = 0;
	else if (s->out_off > OUT_MAX / 2) {
		memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
		s->out_len -= s->out_off;
		s->out_off = 0;
	}
}

const char *
sk_server_body(const struct sk_server *s, size_t *len)
{
	*len = s->body_len - s->body_off;
	return s->body + s->body_off;
}

void
sk_server_body_taken(struct sk_server *s, size_t n)
{
	if (n > s->body_len - s->body_off)
		n = s->body_len - s->body_off;
	s->body_off += n;
	if (s->body_off == s->body_len)
		s->body_off = s->body_len = 0;
}

bool
sk_server_next_event(struct sk_server *s, struct sk_server_event *ev)
{
	if (s->ev_count == 0)
		return false;
	*ev = s->events[s->ev_head];
	s->ev_head = (s->ev_head + 1) % EVENTS_MAX;
	s->ev_count--;
	return true;
}

const struct sk_server_envelope *
sk_server_envelope(const struct sk_server *s)
{
	if (s->state != SS_DATA && s->state != SS_WAIT)
		return NULL;
	return &s->env;
}

void
sk_server_reply(struct sk_server *s, int code, const char *enhanced,
    const char *text)
{
	char clean[TEXT_MAX + 1];
	size_t i;

	if (s->state != SS_WAIT)
		return;
	if (code < 200 || code > 599 || code / 100 == 3)
		code = 451;	/* a caller's mistake must not look like success */
	for (i = 0; text != NULL && text[i] != '\0' && i < TEXT_MAX; i++)
		clean[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ?
		    ' ' : text[i];
	clean[i] = '\0';
	/* RFC 3463 §2: class.subject.detail, digits and dots only. */
	if (enhanced != NULL && (strlen(enhanced) >= SK_ENHANCED_MAX ||
	    strspn(enhanced, "0123456789.") != strlen(enhanced)))
		enhanced = NULL;
	if (enhanced != NULL && enhanced[0] != '\0')
		reply(s, "%d %s %s", code, enhanced, clean);
	else
		reply(s, "%d %s", code, clean);
	txn_reset(s);
	srv_goto(s, SS_COMMAND);
	if (code == 421)
		close_session(s);
}

bool
sk_server_closed(const struct sk_server *s)
{
	return s->state == SS_CLOSED;
}
