/*
 * smtpkit: the SMTP client engine (RFC 5321), sans-I/O.
 *
 * Replies are matched to commands through a FIFO of the commands in flight:
 * pipelining (RFC 2920) is only a matter of how many may be outstanding.
 * client_goto() is the only place the session phase changes; on_reply() is
 * the one switch that handles every reply.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "smtpkit/auth.h"
#include "smtpkit/client.h"
#include "smtpkit/dot.h"
#include "smtpkit/reply.h"

#define PIPELINE_DEFAULT 100
#define PIPELINE_LIMIT 1000
#define OUT_MAX (1024u * 1024u)		/* hard cap on buffered output */
#define OUT_BODY_HIGH (256u * 1024u)	/* body() pauses above this */
#define CMD_LINE_MAX 1024		/* MAIL / RCPT lines (RFC 5321 §4.5.3.1.4: 512) */

enum cmd_type {
	CMD_GREETING,
	CMD_EHLO,
	CMD_HELO,
	CMD_STARTTLS,
	CMD_AUTH,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_DOT,
	CMD_RSET,
	CMD_QUIT
};

static const enum sk_stage cmd_stage[] = {
	[CMD_GREETING] = SK_STAGE_GREETING,
	[CMD_EHLO] = SK_STAGE_EHLO,
	[CMD_HELO] = SK_STAGE_EHLO,
	[CMD_STARTTLS] = SK_STAGE_TLS,
	[CMD_AUTH] = SK_STAGE_AUTH,
	[CMD_MAIL] = SK_STAGE_MAIL,
	[CMD_RCPT] = SK_STAGE_RCPT,
	[CMD_DATA] = SK_STAGE_DATA,
	[CMD_DOT] = SK_STAGE_DATA,
	[CMD_RSET] = SK_STAGE_MAIL,
	[CMD_QUIT] = SK_STAGE_QUIT,
};

struct cmd {
	enum cmd_type type;
	size_t msg;
	size_t rcpt;
};

enum msg_state {
	MS_QUEUED,	/* nothing sent yet */
	MS_SENDING,	/* MAIL / RCPT going out */
	MS_WAIT_DATA,	/* DATA sent, waiting for 354 */
	MS_BODY,	/* the driver streams the body */
	MS_DOT,		/* final dot sent */
	MS_RSET,	/* no_data: RSET sent in place of DATA */
	MS_DONE
};

struct msg {
	enum msg_state state;
	char *from;
	char **rcpts;
	size_t nrcpts;
	uint64_t size;
	bool body_8bit;
	bool smtputf8;
	unsigned dsn_notify;
	enum sk_dsn_ret dsn_ret;
	char *dsn_envid;	/* xtext-encoded, NULL: none */
	bool no_data;		/* envelope only: RSET instead of DATA */

	bool mail_sent;
	bool emitted;		/* every command it will get has been sent */
	size_t next_rcpt;
	size_t outstanding;	/* its commands awaiting replies */
	bool mail_replied;
	bool mail_ok;
	size_t rcpt_replied;
	size_t rcpt_ok;
	bool txn_closed;	/* the final dot was answered (no_data: RSET
				   was sent) */
	struct sk_error *fail;	/* first failure, NULL while none */
	struct sk_error *ok;	/* the final positive reply (no_data: the
				   last one to MAIL or RCPT) */
};

struct outbuf {
	char *data;
	size_t off;		/* first octet not yet sent */
	size_t len;		/* octets used */
	size_t cap;
};

struct sk_client {
	enum sk_client_phase phase;
	char *helo_name;
	enum sk_tls_mode tls_mode;
	bool tls_active;
	char *user;
	char *secret;
	size_t secret_len;
	enum sk_auth_mech auth_forced;
	enum sk_auth_mech auth_used;
	struct sk_auth auth;
	enum sk_oauth_error auth_token_error;	/* what a 334 said of the token */
	bool allow_plaintext_auth;
	unsigned pipeline_max;
	struct sk_trace trace;

	struct sk_caps caps;
	char greeting[SK_ERROR_TEXT_MAX];
	struct sk_reply_parser parser;

	struct cmd *cmds;	/* ring of commands in flight */
	size_t cmd_cap, cmd_head, cmd_count;

	struct msg **msgs;	/* by index; NULL once finished */
	size_t nmsgs, msgs_cap;
	size_t first_open;	/* lowest index not finished */
	size_t emit;		/* next message to send commands for */
	bool need_rset;
	long body_msg;		/* message in MS_BODY, -1 if none */
	struct sk_dot dot;

	bool quit_wanted;
	bool quit_sent;
	bool ready_reported;

	struct outbuf out;

	struct sk_event *events;	/* queue of events not yet taken */
	size_t ev_head, ev_count, ev_cap;
	bool oom;
};

static const char *const phase_names[SK_PHASE__COUNT] = {
	[SK_PHASE_GREETING] = "greeting",
	[SK_PHASE_EHLO] = "ehlo",
	[SK_PHASE_STARTTLS] = "starttls",
	[SK_PHASE_TLS] = "tls",
	[SK_PHASE_AUTH] = "auth",
	[SK_PHASE_READY] = "ready",
	[SK_PHASE_QUIT] = "quit",
	[SK_PHASE_CLOSED] = "closed",
	[SK_PHASE_FAILED] = "failed",
};

static const char *const event_names[SK_EV__COUNT] = {
	[SK_EV_NONE] = "none",
	[SK_EV_READY] = "ready",
	[SK_EV_STARTTLS] = "starttls",
	[SK_EV_BODY] = "body",
	[SK_EV_RCPT] = "rcpt",
	[SK_EV_MESSAGE] = "message",
	[SK_EV_CLOSED] = "closed",
	[SK_EV_ERROR] = "error",
};

static const char *const msg_result_names[SK_MSG__COUNT] = {
	[SK_MSG_FAILED] = "failed",
	[SK_MSG_SENT] = "sent",
	[SK_MSG_CHECKED] = "checked",
};

static const char *const tls_mode_names[] = {
	[SK_TLS_MODE_NONE] = "none",
	[SK_TLS_MODE_STARTTLS] = "starttls",
	[SK_TLS_MODE_IMPLICIT] = "implicit",
};

static void pump(struct sk_client *);
static void fail_session(struct sk_client *, const struct sk_error *);

const char *
sk_client_phase_name(enum sk_client_phase p)
{
	if ((unsigned)p >= SK_PHASE__COUNT)
		return "unknown";
	return phase_names[p];
}

const char *
sk_event_name(enum sk_event_type t)
{
	if ((unsigned)t >= SK_EV__COUNT)
		return "unknown";
	return event_names[t];
}

const char *
sk_msg_result_name(enum sk_msg_result r)
{
	if ((unsigned)r >= SK_MSG__COUNT)
		return "unknown";
	return msg_result_names[r];
}

const char *
sk_tls_mode_name(enum sk_tls_mode m)
{
	if ((unsigned)m > SK_TLS_MODE_IMPLICIT)
		return "unknown";
	return tls_mode_names[m];
}

int
sk_tls_mode_parse(const char *s, enum sk_tls_mode *m)
{
	if (strcasecmp(s, "none") == 0 || strcasecmp(s, "off") == 0 ||
	    strcasecmp(s, "plain") == 0)
		*m = SK_TLS_MODE_NONE;
	else if (strcasecmp(s, "starttls") == 0)
		*m = SK_TLS_MODE_STARTTLS;
	else if (strcasecmp(s, "implicit") == 0 || strcasecmp(s, "tls") == 0 ||
	    strcasecmp(s, "ssl") == 0 || strcasecmp(s, "smtps") == 0)
		*m = SK_TLS_MODE_IMPLICIT;
	else
		return -1;
	return 0;
}

int
sk_dsn_notify_parse(const char *s, unsigned *notify)
{
	static const struct {
		const char *word;
		unsigned bit;
	} words[] = {
		{ "never", SK_DSN_NEVER }, { "success", SK_DSN_SUCCESS },
		{ "failure", SK_DSN_FAILURE }, { "delay", SK_DSN_DELAY },
	};
	const char *p = s, *end;
	unsigned bits = 0;
	size_t i, len;

	for (;;) {
		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (strlen(words[i].word) == len &&
			    strncasecmp(p, words[i].word, len) == 0)
				break;
		if (i == sizeof(words) / sizeof(words[0]))
			return -1;
		bits |= words[i].bit;
		if (end == NULL)
			break;
		p = end + 1;
	}
	/* RFC 3461 §4.1: NEVER stands alone. */
	if ((bits & SK_DSN_NEVER) && bits != SK_DSN_NEVER)
		return -1;
	*notify = bits;
	return 0;
}

int
sk_dsn_ret_parse(const char *s, enum sk_dsn_ret *ret)
{
	if (strcasecmp(s, "full") == 0)
		*ret = SK_DSN_RET_FULL;
	else if (strcasecmp(s, "hdrs") == 0 || strcasecmp(s, "headers") == 0)
		*ret = SK_DSN_RET_HDRS;
	else
		return -1;
	return 0;
}

/* ---- small helpers ---- */

/* RFC 3461 §4.4: ENVID is printable ASCII of at most 100 characters. */
static bool
envid_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= SK_DSN_ENVID_MAX || s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return i > 0;
}

/* RFC 3461 §4: xtext, "+XX" for '+', '=' and what is not printable. */
static char *
xtext(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	char *out, *o;

	if ((out = malloc(3 * strlen(s) + 1)) == NULL)
		return NULL;
	for (p = (const unsigned char *)s, o = out; *p != '\0'; p++) {
		if (*p >= 0x21 && *p <= 0x7e && *p != '+' && *p != '=') {
			*o++ = (char)*p;
			continue;
		}
		*o++ = '+';
		*o++ = hex[*p >> 4];
		*o++ = hex[*p & 0x0f];
	}
	*o = '\0';
	return out;
}

static char *
xstrdup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static void
client_goto(struct sk_client *c, enum sk_client_phase next)
{
	if (c->phase == next)
		return;
	sk_trace_printf(&c->trace, SK_TRACE_STATE, "%s -> %s",
	    phase_names[c->phase], phase_names[next]);
	c->phase = next;
}

static bool
out_reserve(struct sk_client *c, size_t more)
{
	struct outbuf *o = &c->out;
	size_t need, ncap;
	char *n;

	if (o->off > 0 && o->len + more > o->cap) {
		memmove(o->data, o->data + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
	}
	need = o->len + more;
	if (need <= o->cap)
		return true;
	if (need > OUT_MAX)
		return false;
	ncap = o->cap != 0 ? o->cap : 4096;
	while (ncap < need)
		ncap *= 2;
	if (ncap > OUT_MAX)
		ncap = OUT_MAX;
	if ((n = realloc(o->data, ncap)) == NULL)
		return false;
	o->data = n;
	o->cap = ncap;
	return true;
}

/* Queue a command line; traced as sent unless redacted says otherwise. */
static void
send_line(struct sk_client *c, const char *line, size_t len,
    const char *redacted)
{
	if (!out_reserve(c, len + 2)) {
		c->oom = true;
		return;
	}
	memcpy(c->out.data + c->out.len, line, len);
	c->out.len += len;
	memcpy(c->out.data + c->out.len, "\r\n", 2);
	c->out.len += 2;
	if (redacted != NULL)
		sk_trace_emit(&c->trace, SK_TRACE_SEND, redacted,
		    strlen(redacted));
	else
		sk_trace_emit(&c->trace, SK_TRACE_SEND, line, len);
}

static void
push_cmd(struct sk_client *c, enum cmd_type type, size_t msg, size_t rcpt)
{
	struct cmd *k;

	/* The ring is sized for pipeline_max plus the session commands. */
	k = &c->cmds[(c->cmd_head + c->cmd_count) % c->cmd_cap];
	k->type = type;
	k->msg = msg;
	k->rcpt = rcpt;
	c->cmd_count++;
}

static void
command(struct sk_client *c, enum cmd_type type, size_t msg, size_t rcpt,
    const char *line, const char *redacted)
{
	send_line(c, line, strlen(line), redacted);
	push_cmd(c, type, msg, rcpt);
}

static void
push_event(struct sk_client *c, const struct sk_event *ev)
{
	struct sk_event *n;
	size_t i, ncap;

	if (c->ev_count == c->ev_cap) {
		ncap = c->ev_cap != 0 ? c->ev_cap * 2 : 16;
		if ((n = malloc(ncap * sizeof(*n))) == NULL) {
			c->oom = true;
			return;
		}
		for (i = 0; i < c->ev_count; i++)
			n[i] = c->events[(c->ev_head + i) % c->ev_cap];
		free(c->events);
		c->events = n;
		c->ev_cap = ncap;
		c->ev_head = 0;
	}
	c->events[(c->ev_head + c->ev_count) % c->ev_cap] = *ev;
	c->ev_count++;
}

static void
simple_event(struct sk_client *c, enum sk_event_type type)
{
	struct sk_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	push_event(c, &ev);
}

/* Fill detail with a positive reply. */
static void
reply_detail(struct sk_error *d, enum sk_stage stage, const struct sk_reply *r)
{
	sk_error_clear(d);
	d->stage = stage;
	d->code = r->code;
	(void)snprintf(d->enhanced, sizeof(d->enhanced), "%s", r->enhanced);
	sk_reply_join(r, d->server_text, sizeof(d->server_text));
	(void)snprintf(d->message, sizeof(d->message), "%d %s", r->code,
	    d->server_text);
}

static void
trace_reply(struct sk_client *c, const struct sk_reply *r)
{
	const char *line;
	size_t i, len;

	if (c->trace.fn == NULL)
		return;
	for (i = 0; i < r->nlines; i++) {
		line = sk_reply_line(r, i, &len);
		if (i + 1 == r->nlines && len == 0)
			sk_trace_printf(&c->trace, SK_TRACE_RECV, "%d",
			    r->code);
		else
			sk_trace_printf(&c->trace, SK_TRACE_RECV, "%d%c%.*s",
			    r->code, i + 1 < r->nlines ? '-' : ' ', (int)len,
			    line);
	}
}

/* ---- life cycle ---- */

struct sk_client *
sk_client_new(const struct sk_client_config *cfg, struct sk_error *err)
{
	struct sk_client *c;

	if (cfg->helo_name == NULL || cfg->helo_name[0] == '\0') {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "no EHLO name given");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto oom;
	c->helo_name = xstrdup(cfg->helo_name);
	c->user = xstrdup(cfg->user);
	if (cfg->secret != NULL) {
		c->secret = xstrdup(cfg->secret);
		c->secret_len = strlen(cfg->secret);
	}
	c->tls_mode = cfg->tls_mode;
	c->tls_active = cfg->tls_mode == SK_TLS_MODE_IMPLICIT;
	c->auth_forced = cfg->auth_mech;
	c->allow_plaintext_auth = cfg->allow_plaintext_auth;
	c->pipeline_max = cfg->pipeline_max != 0 ? cfg->pipeline_max :
	    PIPELINE_DEFAULT;
	if (c->pipeline_max > PIPELINE_LIMIT)
		c->pipeline_max = PIPELINE_LIMIT;
	c->trace = cfg->trace;
	c->body_msg = -1;
	c->cmd_cap = c->pipeline_max + 8;
	c->cmds = calloc(c->cmd_cap, sizeof(*c->cmds));
	if (c->helo_name == NULL || c->cmds == NULL ||
	    (cfg->user != NULL && c->user == NULL) ||
	    (cfg->secret != NULL && c->secret == NULL)) {
		sk_client_free(c);
		goto oom;
	}
	sk_reply_parser_init(&c->parser);
	/* The greeting is the reply to connecting. */
	push_cmd(c, CMD_GREETING, 0, 0);
	return c;
oom:
	sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
	return NULL;
}

static void
msg_free(struct msg *m)
{
	size_t i;

	if (m == NULL)
		return;
	free(m->from);
	free(m->dsn_envid);
	for (i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	free(m->fail);
	free(m->ok);
	free(m);
}

void
sk_client_free(struct sk_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->secret != NULL) {
		OPENSSL_cleanse(c->secret, c->secret_len);
		free(c->secret);
	}
	free(c->user);
	free(c->helo_name);
	free(c->cmds);
	for (i = 0; i < c->nmsgs; i++)
		msg_free(c->msgs[i]);
	free(c->msgs);
	if (c->out.data != NULL) {
		/* the output may have held an AUTH line */
		OPENSSL_cleanse(c->out.data, c->out.cap);
		free(c->out.data);
	}
	free(c->events);
	free(c);
}

/* ---- messages ---- */

static void
msg_fail(struct msg *m, const struct sk_error *e)
{
	if (m->fail != NULL)
		return;
	if ((m->fail = malloc(sizeof(*m->fail))) != NULL)
		*m->fail = *e;
}

/* Report a message whose replies are all in, and forget it. */
static void
msg_finish(struct sk_client *c, size_t idx)
{
	struct msg *m = c->msgs[idx];
	struct sk_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = SK_EV_MESSAGE;
	ev.msg = idx;
	ev.accepted = m->rcpt_ok;
	if (m->fail != NULL) {
		ev.ok = false;
		ev.result = SK_MSG_FAILED;
		ev.detail = *m->fail;
		ev.accepted = 0;
	} else {
		ev.ok = true;
		ev.result = m->no_data ? SK_MSG_CHECKED : SK_MSG_SENT;
		if (m->ok != NULL)
			ev.detail = *m->ok;
	}
	/*
	 * A transaction the server accepted MAIL for and that did not end with
	 * the final dot's reply is still open: RSET it before the next MAIL
	 * (RFC 5321 §4.1.1.5).
	 */
	if (m->mail_ok && !m->txn_closed)
		c->need_rset = true;
	m->state = MS_DONE;
	push_event(c, &ev);
	msg_free(m);
	c->msgs[idx] = NULL;
	while (c->first_open < c->nmsgs && c->msgs[c->first_open] == NULL)
		c->first_open++;
}

static void
msg_check_done(struct sk_client *c, size_t idx)
{
	struct msg *m = c->msgs[idx];

	if (m != NULL && m->emitted && m->outstanding == 0 &&
	    m->state != MS_BODY)
		msg_finish(c, idx);
}

long
sk_client_submit(struct sk_client *c, const struct sk_envelope *env,
    struct sk_error *err)
{
	struct msg *m;
	struct msg **nm;
	size_t i, ncap;

	if (c->phase == SK_PHASE_FAILED || c->phase == SK_PHASE_CLOSED ||
	    c->quit_wanted) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_POLICY,
		    "the SMTP session has ended; no more messages can be sent");
		return -1;
	}
	if (env->nrcpts == 0 && !env->no_data) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "a message needs at least one recipient");
		return -1;
	}
	if (env->dsn_envid != NULL && !envid_ok(env->dsn_envid)) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "the DSN envelope id must be printable ASCII of at most "
		    "%d characters (RFC 3461 §4.4)", SK_DSN_ENVID_MAX);
		return -1;
	}
	if (c->nmsgs == c->msgs_cap) {
		ncap = c->msgs_cap != 0 ? c->msgs_cap * 2 : 8;
		if ((nm = realloc(c->msgs, ncap * sizeof(*nm))) == NULL)
			goto oom;
		c->msgs = nm;
		c->msgs_cap = ncap;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		goto oom;
	m->from = xstrdup(env->from != NULL ? env->from : "");
	/* An envelope check may have no recipient: never calloc(0). */
	m->rcpts = calloc(env->nrcpts > 0 ? env->nrcpts : 1,
	    sizeof(*m->rcpts));
	if (m->from == NULL || m->rcpts == NULL) {
		msg_free(m);
		goto oom;
	}
	for (i = 0; i < env->nrcpts; i++) {
		if ((m->rcpts[i] = strdup(env->rcpts[i])) == NULL) {
			msg_free(m);
			goto oom;
		}
		m->nrcpts++;
	}
	m->size = env->size;
	m->body_8bit = env->body_8bit;
	m->smtputf8 = env->smtputf8;
	m->dsn_notify = env->dsn_notify;
	m->dsn_ret = env->dsn_ret;
	m->no_data = env->no_data;
	if (env->dsn_envid != NULL &&
	    (m->dsn_envid = xtext(env->dsn_envid)) == NULL) {
		msg_free(m);
		goto oom;
	}
	c->msgs[c->nmsgs++] = m;
	pump(c);
	return (long)(c->nmsgs - 1);
oom:
	sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
	return -1;
}

/* The first address of m's envelope that is not ASCII. */
static const char *
first_utf8(const struct msg *m)
{
	const unsigned char *p;
	size_t i;

	for (i = 0; i <= m->nrcpts; i++) {
		p = (const unsigned char *)(i == 0 ? m->from : m->rcpts[i - 1]);
		for (; p != NULL && *p != '\0'; p++)
			if (*p >= 0x80)
				return i == 0 ? m->from : m->rcpts[i - 1];
	}
	return NULL;
}

/*
 * Refuse locally what the server announced it cannot take, before a byte
 * of the message is sent.
 */
static int
msg_fits(struct sk_client *c, struct msg *m, struct sk_error *e)
{
	if ((c->caps.flags & SK_CAP_SIZE) && c->caps.size_max > 0 &&
	    m->size > c->caps.size_max)
		return sk_error_set(e, SK_STAGE_MAIL, SK_ERR_UNSUPPORTED,
		    "the message is %llu octets; the server accepts at most "
		    "%llu (its SIZE limit)", (unsigned long long)m->size,
		    (unsigned long long)c->caps.size_max);
	if (m->body_8bit && !(c->caps.flags & SK_CAP_8BITMIME))
		return sk_error_set(e, SK_STAGE_MAIL, SK_ERR_UNSUPPORTED,
		    "the message has 8-bit octets but the server does not "
		    "offer 8BITMIME; encode the body as quoted-printable or "
		    "base64");
	if (m->smtputf8 && !(c->caps.flags & SK_CAP_SMTPUTF8)) {
		const char *a = first_utf8(m);

		return sk_error_set(e, SK_STAGE_MAIL, SK_ERR_UNSUPPORTED,
		    "%s%s%s is not ASCII but the server does not offer "
		    "SMTPUTF8 (RFC 6531), which it needs to take such an "
		    "address; use an ASCII address (a domain in its xn-- form)",
		    a != NULL ? "<" : "", a != NULL ? a : "an address",
		    a != NULL ? ">" : "");
	}
	return 0;
}

static bool
can_send(const struct sk_client *c)
{
	if (c->cmd_count >= c->pipeline_max || c->cmd_count + 1 >= c->cmd_cap)
		return false;
	/* Without PIPELINING, one command at a time (RFC 5321 §4.1). */
	if (!(c->caps.flags & SK_CAP_PIPELINING) && c->cmd_count > 0)
		return false;
	return true;
}

static void linef(char *, size_t, size_t *, const char *, ...)
    __attribute__((format(printf, 4, 5)));

/* "RCPT TO:<addr>", with NOTIFY= when asked for and offered (RFC 3461 §4.1). */
static void
rcpt_line(const struct sk_client *c, const struct msg *m, const char *rcpt,
    char *line, size_t cap)
{
	static const struct {
		unsigned bit;
		const char *name;
	} words[] = {
		{ SK_DSN_NEVER, "NEVER" }, { SK_DSN_SUCCESS, "SUCCESS" },
		{ SK_DSN_FAILURE, "FAILURE" }, { SK_DSN_DELAY, "DELAY" },
	};
	size_t i, n = 0;
	const char *sep = " NOTIFY=";

	linef(line, cap, &n, "RCPT TO:<%s>", rcpt);
	if (!(c->caps.flags & SK_CAP_DSN) || m->dsn_notify == 0)
		return;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (!(m->dsn_notify & words[i].bit))
			continue;
		linef(line, cap, &n, "%s%s", sep, words[i].name);
		sep = ",";
	}
}

/* Append to a command line, never past its end (a too long line is cut
 * and the server refuses it, rather than memory being overrun). */
static void
linef(char *line, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (*n >= cap - 1)
		return;
	va_start(ap, fmt);
	w = vsnprintf(line + *n, cap - *n, fmt, ap);
	va_end(ap);
	if (w > 0)
		*n = *n + (size_t)w < cap ? *n + (size_t)w : cap - 1;
}

static void
emit_mail(struct sk_client *c, size_t idx, struct msg *m)
{
	char line[CMD_LINE_MAX];
	size_t n = 0;

	linef(line, sizeof(line), &n, "MAIL FROM:<%s>", m->from);
	if ((c->caps.flags & SK_CAP_SIZE) && m->size > 0)
		linef(line, sizeof(line), &n, " SIZE=%llu",
		    (unsigned long long)m->size);
	if (m->body_8bit)
		linef(line, sizeof(line), &n, " BODY=8BITMIME");
	if (m->smtputf8)
		linef(line, sizeof(line), &n, " SMTPUTF8");
	if (c->caps.flags & SK_CAP_DSN) {
		/* RFC 3461 §4.3, §4.4 */
		if (m->dsn_ret != SK_DSN_RET_NONE)
			linef(line, sizeof(line), &n, " RET=%s",
			    m->dsn_ret == SK_DSN_RET_HDRS ? "HDRS" : "FULL");
		if (m->dsn_envid != NULL)
			linef(line, sizeof(line), &n, " ENVID=%s",
			    m->dsn_envid);
	} else if (m->dsn_notify != 0 || m->dsn_ret != SK_DSN_RET_NONE ||
	    m->dsn_envid != NULL) {
		sk_trace_printf(&c->trace, SK_TRACE_INFO, "the server does "
		    "not offer DSN: the notification request is left out");
	}
	command(c, CMD_MAIL, idx, 0, line, NULL);
	m->mail_sent = true;
	m->outstanding++;
}

/* Send what may go out now for message idx.  False: it cannot progress yet. */
static bool
emit_msg(struct sk_client *c, size_t idx)
{
	struct msg *m = c->msgs[idx];
	struct sk_error e;
	char line[CMD_LINE_MAX];
	bool refused;

	if (m->state == MS_QUEUED) {
		if (msg_fits(c, m, &e) == -1) {
			msg_fail(m, &e);
			m->emitted = true;
			msg_check_done(c, idx);
			return true;
		}
		m->state = MS_SENDING;
	}
	while (m->state == MS_SENDING && can_send(c)) {
		refused = m->mail_replied && !m->mail_ok;
		if (!m->mail_sent) {
			emit_mail(c, idx, m);
		} else if (refused && !m->no_data) {
			/* unpipelined: MAIL refused, nothing more to send */
			m->emitted = true;
		} else if (m->no_data &&
		    (refused || m->next_rcpt == m->nrcpts)) {
			/*
			 * An envelope check ends with RSET in place of DATA
			 * (RFC 5321 §4.1.1.5), whatever the replies, so that
			 * the same commands go out with or without
			 * PIPELINING; RSET may sit anywhere in a pipelined
			 * group (RFC 2920 §3.1).  Its reply says nothing of
			 * the envelope: like the RSET before a MAIL, it is
			 * the session's, and the result comes without it.
			 */
			command(c, CMD_RSET, idx, 0, "RSET", NULL);
			m->txn_closed = true;
			m->state = MS_RSET;
			m->emitted = true;
		} else if (m->next_rcpt < m->nrcpts) {
			rcpt_line(c, m, m->rcpts[m->next_rcpt], line,
			    sizeof(line));
			command(c, CMD_RCPT, idx, m->next_rcpt, line, NULL);
			m->next_rcpt++;
			m->outstanding++;
		} else if (m->rcpt_replied == m->nrcpts && m->rcpt_ok == 0) {
			/* unpipelined: every recipient refused, no DATA */
			m->emitted = true;
		} else {
			/* DATA ends a pipelined group (RFC 2920 §3.1). */
			command(c, CMD_DATA, idx, 0, "DATA", NULL);
			m->outstanding++;
			m->state = MS_WAIT_DATA;
			m->emitted = true;
		}
		if (m->emitted) {
			if (m->state == MS_SENDING)
				m->state = MS_DONE;
			break;
		}
	}
	msg_check_done(c, idx);
	return c->msgs[idx] == NULL || m->emitted;
}

/* Send whatever may be sent now. */
static void
pump(struct sk_client *c)
{
	struct msg *prev;

	if (c->phase != SK_PHASE_READY)
		return;
	while (c->emit < c->nmsgs) {
		/*
		 * A message starts only once the one before it is past its
		 * DATA: either finished or in its final dot, or an envelope
		 * check in its RSET (the next MAIL may follow either in the
		 * same group, RFC 2920 §3.1).
		 */
		if (c->emit > 0 && (prev = c->msgs[c->emit - 1]) != NULL &&
		    prev->state != MS_DOT && prev->state != MS_RSET &&
		    prev->state != MS_DONE)
			return;
		if (c->need_rset) {
			if (!can_send(c))
				return;
			command(c, CMD_RSET, 0, 0, "RSET", NULL);
			c->need_rset = false;
		}
		if (c->msgs[c->emit] == NULL) {
			c->emit++;
			continue;
		}
		if (!emit_msg(c, c->emit))
			return;
		c->emit++;
	}
	if (c->quit_wanted && !c->quit_sent && c->first_open == c->nmsgs &&
	    c->cmd_count == 0) {
		command(c, CMD_QUIT, 0, 0, "QUIT", NULL);
		c->quit_sent = true;
		client_goto(c, SK_PHASE_QUIT);
	}
}

/* ---- session setup ---- */

static void
parse_caps(struct sk_client *c, const struct sk_reply *r)
{
	const char *line, *p;
	size_t i, len, kw;
	char num[24];

	memset(&c->caps, 0, sizeof(c->caps));
	c->caps.esmtp = true;
	/* The first line is the server's name and greeting, not a keyword. */
	for (i = 1; i < r->nlines; i++) {
		line = sk_reply_line(r, i, &len);
		for (kw = 0; kw < len && line[kw] != ' ' && line[kw] != '='; kw++)
			;
		p = line + kw;
#define IS(name) (kw == sizeof(name) - 1 && strncasecmp(line, name, kw) == 0)
		if (IS("SIZE")) {
			c->caps.flags |= SK_CAP_SIZE;
			if (kw < len && *p == ' ') {
				size_t n = len - kw - 1;
				if (n >= sizeof(num))
					n = sizeof(num) - 1;
				memcpy(num, p + 1, n);
				num[n] = '\0';
				c->caps.size_max = strtoull(num, NULL, 10);
			}
		} else if (IS("PIPELINING"))
			c->caps.flags |= SK_CAP_PIPELINING;
		else if (IS("STARTTLS"))
			c->caps.flags |= SK_CAP_STARTTLS;
		else if (IS("AUTH")) {
			c->caps.flags |= SK_CAP_AUTH;
			if (kw < len)
				c->caps.auth |= sk_auth_mechs_parse(p + 1,
				    len - kw - 1);
		} else if (IS("8BITMIME"))
			c->caps.flags |= SK_CAP_8BITMIME;
		else if (IS("SMTPUTF8"))
			c->caps.flags |= SK_CAP_SMTPUTF8;
		else if (IS("ENHANCEDSTATUSCODES"))
			c->caps.flags |= SK_CAP_ENHANCEDSTATUSCODES;
		else if (IS("DSN"))
			c->caps.flags |= SK_CAP_DSN;
		else if (IS("CHUNKING"))
			c->caps.flags |= SK_CAP_CHUNKING;
#undef IS
	}
}

static void
send_ehlo(struct sk_client *c, enum cmd_type type)
{
	char line[CMD_LINE_MAX];

	(void)snprintf(line, sizeof(line), "%s %s",
	    type == CMD_EHLO ? "EHLO" : "HELO", c->helo_name);
	command(c, type, 0, 0, line, NULL);
	client_goto(c, SK_PHASE_EHLO);
}

static void
session_ready(struct sk_client *c)
{
	client_goto(c, SK_PHASE_READY);
	if (!c->ready_reported) {
		c->ready_reported = true;
		simple_event(c, SK_EV_READY);
	}
	pump(c);
}

static void
start_auth(struct sk_client *c)
{
	char line[SK_AUTH_LINE_MAX];
	char shown[64];
	struct sk_error e;
	enum sk_auth_mech mech;
	bool token = c->auth_forced != SK_AUTH_NONE &&
	    sk_auth_mech_is_token(c->auth_forced);
	size_t len;

	if (!c->tls_active && !c->allow_plaintext_auth) {
		sk_error_set(&e, SK_STAGE_AUTH, SK_ERR_POLICY,
		    "refusing to send credentials without TLS; use TLS "
		    "(--tls starttls or implicit) or, on a trusted network "
		    "only, --allow-plaintext-auth");
		fail_session(c, &e);
		return;
	}
	if (!(c->caps.flags & SK_CAP_AUTH) || c->caps.auth == 0) {
		sk_error_set(&e, SK_STAGE_AUTH, SK_ERR_UNSUPPORTED,
		    "the server does not offer AUTH%s; check the port and "
		    "TLS mode, or send without --user",
		    c->tls_active ? "" : " (many servers offer it only "
		    "after STARTTLS)");
		fail_session(c, &e);
		return;
	}
	if (c->auth_forced != SK_AUTH_NONE) {
		mech = c->auth_forced;
		if (!(c->caps.auth & SK_AUTH_BIT(mech))) {
			char offered[128] = "";
			unsigned m;

			for (m = SK_AUTH_PLAIN; m < SK_AUTH__COUNT; m++)
				if (c->caps.auth & SK_AUTH_BIT(m)) {
					size_t o = strlen(offered);
					(void)snprintf(offered + o,
					    sizeof(offered) - o, "%s%s",
					    o ? " " : "",
					    sk_auth_mech_name((enum sk_auth_mech)m));
				}
			sk_error_set(&e, SK_STAGE_AUTH, SK_ERR_UNSUPPORTED,
			    "the server does not offer AUTH %s (it offers: %s)",
			    sk_auth_mech_name(mech), offered);
			fail_session(c, &e);
			return;
		}
	} else {
		mech = sk_auth_choose(c->caps.auth, token, c->tls_active);
		if (mech == SK_AUTH_NONE) {
			sk_error_set(&e, SK_STAGE_AUTH, SK_ERR_UNSUPPORTED,
			    "the server offers no AUTH mechanism smtpkit "
			    "supports (PLAIN, LOGIN, CRAM-MD5, XOAUTH2, "
			    "OAUTHBEARER)");
			fail_session(c, &e);
			return;
		}
	}
	if (sk_auth_start(&c->auth, mech, c->user,
	    c->secret != NULL ? c->secret : "", line, sizeof(line), &len,
	    &e) == -1) {
		e.stage = SK_STAGE_AUTH;
		fail_session(c, &e);
		return;
	}
	c->auth_used = mech;
	/* Only the mechanism name may show: the rest is the credential. */
	if (strchr(line + 5, ' ') != NULL)
		(void)snprintf(shown, sizeof(shown), "AUTH %s <redacted>",
		    sk_auth_mech_name(mech));
	else
		(void)snprintf(shown, sizeof(shown), "AUTH %s",
		    sk_auth_mech_name(mech));
	send_line(c, line, len, shown);
	OPENSSL_cleanse(line, len);
	push_cmd(c, CMD_AUTH, 0, 0);
	client_goto(c, SK_PHASE_AUTH);
}

/* EHLO or HELO done: STARTTLS, AUTH or ready, as configured. */
static void
after_hello(struct sk_client *c)
{
	struct sk_error e;

	if (c->tls_mode == SK_TLS_MODE_STARTTLS && !c->tls_active) {
		if (!(c->caps.flags & SK_CAP_STARTTLS)) {
			sk_error_set(&e, SK_STAGE_TLS, SK_ERR_UNSUPPORTED,
			    "the server does not offer STARTTLS%s; smtpkit "
			    "will not continue without TLS (try port 465 "
			    "with --tls implicit)",
			    c->caps.esmtp ? "" : " (it refused EHLO)");
			fail_session(c, &e);
			return;
		}
		command(c, CMD_STARTTLS, 0, 0, "STARTTLS", NULL);
		client_goto(c, SK_PHASE_STARTTLS);
		return;
	}
	if (c->user != NULL) {
		start_auth(c);
		return;
	}
	session_ready(c);
}

/* ---- failures ---- */

/*
 * The session cannot go on: fail every unfinished message with the same
 * reason, then report the session error.
 */
static void
fail_session(struct sk_client *c, const struct sk_error *e)
{
	struct sk_event ev;
	size_t i;

	if (c->phase == SK_PHASE_FAILED || c->phase == SK_PHASE_CLOSED)
		return;
	sk_trace_printf(&c->trace, SK_TRACE_INFO, "session failed: %s",
	    e->message);
	for (i = c->first_open; i < c->nmsgs; i++) {
		if (c->msgs[i] == NULL)
			continue;
		msg_fail(c->msgs[i], e);
		c->msgs[i]->mail_ok = false;
		msg_finish(c, i);
	}
	c->cmd_count = 0;
	c->body_msg = -1;
	/*
	 * Say goodbye when the server is still talking to us (RFC 5321
	 * §3.1 asks for QUIT even after a 554 greeting).
	 */
	if (e->kind == SK_ERR_REPLY && e->code != 421 && !c->quit_sent) {
		send_line(c, "QUIT", 4, NULL);
		c->quit_sent = true;
	}
	client_goto(c, SK_PHASE_FAILED);
	memset(&ev, 0, sizeof(ev));
	ev.type = SK_EV_ERROR;
	ev.detail = *e;
	push_event(c, &ev);
}

static void
fail_reply(struct sk_client *c, enum sk_stage stage, const struct sk_reply *r,
    const char *what)
{
	struct sk_error e;

	sk_error_set_reply(&e, stage, r, "%s", what);
	fail_session(c, &e);
}

/* ---- replies ---- */

static void
on_auth_reply(struct sk_client *c, const struct sk_reply *r)
{
	char line[SK_AUTH_LINE_MAX];
	struct sk_error e;
	size_t len;

	if (r->code == 334) {
		/* Keep what the server said of the token for the final 5xx:
		 * the caller may refresh an expired one and try again. */
		if (sk_auth_mech_is_token(c->auth_used) && r->len > 0)
			c->auth_token_error = sk_auth_token_error(r->text,
			    r->len);
		if (sk_auth_step(&c->auth, c->user,
		    c->secret != NULL ? c->secret : "", r->text, r->len,
		    line, sizeof(line), &len, &e) == -1) {
			e.stage = SK_STAGE_AUTH;
			fail_session(c, &e);
			return;
		}
		send_line(c, line, len, "<redacted>");
		OPENSSL_cleanse(line, len);
		push_cmd(c, CMD_AUTH, 0, 0);
		return;
	}
	if (r->code == 235) {
		session_ready(c);
		return;
	}
	sk_error_set_reply(&e, SK_STAGE_AUTH, r, "authentication (%s) failed",
	    sk_auth_mech_name(c->auth_used));
	e.oauth_error = c->auth_token_error;
	fail_session(c, &e);
}

/* An envelope check's result: the last positive reply to MAIL or RCPT. */
static void
check_ok(struct msg *m, enum sk_stage stage, const struct sk_reply *r)
{
	if (!m->no_data ||
	    (m->ok == NULL && (m->ok = malloc(sizeof(*m->ok))) == NULL))
		return;
	reply_detail(m->ok, stage, r);
}

static void
on_msg_reply(struct sk_client *c, const struct cmd *k, const struct sk_reply *r)
{
	struct msg *m = c->msgs[k->msg];
	struct sk_event ev;
	struct sk_error e;

	if (m == NULL)
		return;
	m->outstanding--;
	switch (k->type) {
	case CMD_MAIL:
		m->mail_replied = true;
		if (r->code / 100 == 2) {
			m->mail_ok = true;
			check_ok(m, SK_STAGE_MAIL, r);
		} else {
			sk_error_set_reply(&e, SK_STAGE_MAIL, r,
			    "the server refused the sender <%s>", m->from);
			(void)snprintf(e.recipient, sizeof(e.recipient), "%s",
			    m->from);
			msg_fail(m, &e);
		}
		break;
	case CMD_RCPT:
		m->rcpt_replied++;
		/* After a refused MAIL the RCPT replies say nothing new. */
		if (!m->mail_ok)
			break;
		memset(&ev, 0, sizeof(ev));
		ev.type = SK_EV_RCPT;
		ev.msg = k->msg;
		ev.rcpt = k->rcpt;
		if (r->code / 100 == 2) {
			m->rcpt_ok++;
			ev.ok = true;
			reply_detail(&ev.detail, SK_STAGE_RCPT, r);
			check_ok(m, SK_STAGE_RCPT, r);
		} else {
			sk_error_set_reply(&ev.detail, SK_STAGE_RCPT, r,
			    "the server refused the recipient <%s>",
			    m->rcpts[k->rcpt]);
			(void)snprintf(ev.detail.recipient,
			    sizeof(ev.detail.recipient), "%s",
			    m->rcpts[k->rcpt]);
			if (m->rcpt_replied == m->nrcpts && m->rcpt_ok == 0) {
				e = ev.detail;
				if (m->nrcpts > 1)
					(void)snprintf(e.message,
					    sizeof(e.message), "the server "
					    "refused every recipient; the "
					    "last said: %d %s", r->code,
					    e.server_text);
				msg_fail(m, &e);
			}
		}
		push_event(c, &ev);
		break;
	case CMD_DATA:
		if (r->code == 354) {
			if (m->rcpt_ok == 0 || m->fail != NULL) {
				/*
				 * DATA accepted although nothing can be
				 * delivered: end it empty at once (RFC 2920
				 * §3.1) and report the earlier failure.
				 */
				send_line(c, ".", 1, NULL);
				push_cmd(c, CMD_DOT, k->msg, 0);
				m->outstanding++;
				m->state = MS_DOT;
				break;
			}
			m->state = MS_BODY;
			c->body_msg = (long)k->msg;
			sk_dot_init(&c->dot);
			memset(&ev, 0, sizeof(ev));
			ev.type = SK_EV_BODY;
			ev.msg = k->msg;
			push_event(c, &ev);
			return;
		}
		m->state = MS_DONE;
		if (m->fail == NULL) {
			sk_error_set_reply(&e, SK_STAGE_DATA, r,
			    "the server refused DATA");
			msg_fail(m, &e);
		}
		break;
	case CMD_DOT:
		m->txn_closed = true;
		m->state = MS_DONE;
		if (r->code / 100 == 2) {
			if (m->fail == NULL && m->ok == NULL &&
			    (m->ok = malloc(sizeof(*m->ok))) != NULL)
				reply_detail(m->ok, SK_STAGE_DATA, r);
		} else if (m->fail == NULL) {
			sk_error_set_reply(&e, SK_STAGE_DATA, r,
			    "the server refused the message");
			msg_fail(m, &e);
		}
		break;
	default:
		break;
	}
	msg_check_done(c, k->msg);
	pump(c);
}

static void
on_reply(struct sk_client *c, const struct sk_reply *r)
{
	struct cmd k;

	if (c->cmd_count == 0) {
		/* RFC 5321 §3.8: a server may say 421 and close at any time. */
		if (r->code == 421)
			fail_reply(c, SK_STAGE_NONE, r,
			    "the server closed the session");
		else
			fail_reply(c, SK_STAGE_NONE, r,
			    "the server sent a reply nobody asked for");
		return;
	}
	k = c->cmds[c->cmd_head];
	c->cmd_head = (c->cmd_head + 1) % c->cmd_cap;
	c->cmd_count--;

	if (r->code == 421 && k.type != CMD_QUIT) {
		fail_reply(c, cmd_stage[k.type], r,
		    "the server is closing the session");
		return;
	}

	switch (k.type) {
	case CMD_GREETING:
		(void)snprintf(c->greeting, sizeof(c->greeting), "%.*s",
		    (int)r->len, r->text);
		if (r->code != 220) {
			fail_reply(c, SK_STAGE_GREETING, r,
			    "the server refused the connection");
			return;
		}
		send_ehlo(c, CMD_EHLO);
		break;
	case CMD_EHLO:
		if (r->code == 250) {
			parse_caps(c, r);
			after_hello(c);
		} else if (r->code / 100 == 5) {
			/* RFC 5321 §3.2: an old server; say HELO instead. */
			send_ehlo(c, CMD_HELO);
		} else {
			fail_reply(c, SK_STAGE_EHLO, r,
			    "the server refused EHLO");
		}
		break;
	case CMD_HELO:
		if (r->code != 250) {
			fail_reply(c, SK_STAGE_EHLO, r,
			    "the server refused HELO");
			return;
		}
		memset(&c->caps, 0, sizeof(c->caps));
		after_hello(c);
		break;
	case CMD_STARTTLS:
		if (r->code != 220) {
			fail_reply(c, SK_STAGE_TLS, r,
			    "the server refused STARTTLS");
			return;
		}
		client_goto(c, SK_PHASE_TLS);
		simple_event(c, SK_EV_STARTTLS);
		break;
	case CMD_AUTH:
		on_auth_reply(c, r);
		break;
	case CMD_MAIL:
	case CMD_RCPT:
	case CMD_DATA:
	case CMD_DOT:
		on_msg_reply(c, &k, r);
		break;
	case CMD_RSET:
		if (r->code / 100 != 2) {
			fail_reply(c, SK_STAGE_MAIL, r,
			    "the server refused RSET");
			return;
		}
		pump(c);
		break;
	case CMD_QUIT:
		client_goto(c, SK_PHASE_CLOSED);
		simple_event(c, SK_EV_CLOSED);
		break;
	}
}

int
sk_client_feed(struct sk_client *c, const char *buf, size_t len)
{
	struct sk_error e;
	size_t used;
	int rc;

	while (len > 0) {
		if (c->phase == SK_PHASE_FAILED || c->phase == SK_PHASE_CLOSED)
			break;
		if (c->phase == SK_PHASE_TLS) {
			/*
			 * Octets after the 220 to STARTTLS came before the
			 * handshake: an injection attempt, never input
			 * (RFC 3207 §4.2, CVE-2011-0411).
			 */
			sk_trace_printf(&c->trace, SK_TRACE_INFO,
			    "discarded %zu octets sent before the TLS "
			    "handshake", len);
			break;
		}
		rc = sk_reply_parse(&c->parser, buf, len, &used, &e);
		if (rc == SK_REPLY_ERROR) {
			e.stage = sk_client_stage(c);
			fail_session(c, &e);
			break;
		}
		buf += used;
		len -= used;
		if (rc == SK_REPLY_MORE)
			break;
		trace_reply(c, &c->parser.reply);
		on_reply(c, &c->parser.reply);
	}
	if (c->oom && c->phase != SK_PHASE_FAILED) {
		sk_error_set(&e, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
		c->oom = false;
		fail_session(c, &e);
	}
	return c->phase == SK_PHASE_FAILED ? -1 : 0;
}

void
sk_client_abort(struct sk_client *c, const struct sk_error *why)
{
	struct sk_error e;

	if (c->phase == SK_PHASE_CLOSED || c->phase == SK_PHASE_FAILED)
		return;
	if (c->quit_sent && c->first_open == c->nmsgs) {
		/* QUIT went out and nothing is pending: a normal ending. */
		client_goto(c, SK_PHASE_CLOSED);
		simple_event(c, SK_EV_CLOSED);
		return;
	}
	if (why != NULL) {
		e = *why;
		if (e.stage == SK_STAGE_NONE)
			e.stage = sk_client_stage(c);
	} else if (c->cmd_count > 0) {
		sk_error_set(&e, sk_client_stage(c), SK_ERR_EOF,
		    "the server closed the connection while smtpkit waited "
		    "for its reply (%s stage)",
		    sk_stage_name(sk_client_stage(c)));
	} else {
		sk_error_set(&e, sk_client_stage(c), SK_ERR_EOF,
		    "the server closed the connection");
	}
	fail_session(c, &e);
}

/* ---- driver interface ---- */

const char *
sk_client_output(const struct sk_client *c, size_t *len)
{
	*len = c->out.len - c->out.off;
	return c->out.data != NULL ? c->out.data + c->out.off : "";
}

void
sk_client_sent(struct sk_client *c, size_t n)
{
	struct outbuf *o = &c->out;

	if (n > o->len - o->off)
		n = o->len - o->off;
	o->off += n;
	if (o->off == o->len)
		o->off = o->len = 0;
}

bool
sk_client_wants_read(const struct sk_client *c)
{
	if (c->phase == SK_PHASE_FAILED || c->phase == SK_PHASE_CLOSED ||
	    c->phase == SK_PHASE_TLS)
		return false;
	return c->cmd_count > 0;
}

enum sk_stage
sk_client_stage(const struct sk_client *c)
{
	if (c->cmd_count == 0) {
		if (c->phase == SK_PHASE_TLS)
			return SK_STAGE_TLS;
		if (c->body_msg >= 0)
			return SK_STAGE_DATA;
		return SK_STAGE_NONE;
	}
	return cmd_stage[c->cmds[c->cmd_head].type];
}

size_t
sk_client_body(struct sk_client *c, const char *buf, size_t len)
{
	size_t pending, room, used, wrote;

	if (c->body_msg < 0 || c->phase != SK_PHASE_READY)
		return len;	/* nothing to stream into: drop */
	pending = c->out.len - c->out.off;
	if (pending >= OUT_BODY_HIGH)
		return 0;
	if (!out_reserve(c, OUT_BODY_HIGH + 64 * 1024 - pending)) {
		c->oom = true;
		return 0;
	}
	room = c->out.cap - c->out.len;
	if (room > OUT_BODY_HIGH + 64 * 1024 - pending)
		room = OUT_BODY_HIGH + 64 * 1024 - pending;
	wrote = sk_dot_encode(&c->dot, buf, len, &used,
	    c->out.data + c->out.len, room);
	c->out.len += wrote;
	return used;
}

void
sk_client_body_end(struct sk_client *c)
{
	struct msg *m;
	size_t idx;

	if (c->body_msg < 0 || c->phase != SK_PHASE_READY)
		return;
	idx = (size_t)c->body_msg;
	m = c->msgs[idx];
	if (!out_reserve(c, SK_DOT_FINISH_MAX)) {
		struct sk_error e;

		sk_error_set(&e, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
		fail_session(c, &e);
		return;
	}
	c->out.len += sk_dot_finish(&c->dot, c->out.data + c->out.len,
	    c->out.cap - c->out.len);
	sk_trace_printf(&c->trace, SK_TRACE_SEND, "<%llu octets of message "
	    "data>", (unsigned long long)c->dot.out_total);
	sk_trace_emit(&c->trace, SK_TRACE_SEND, ".", 1);
	c->body_msg = -1;
	push_cmd(c, CMD_DOT, idx, 0);
	m->outstanding++;
	m->state = MS_DOT;
	pump(c);
}

void
sk_client_tls_done(struct sk_client *c)
{
	if (c->phase != SK_PHASE_TLS)
		return;
	c->tls_active = true;
	sk_reply_parser_init(&c->parser);
	/* RFC 3207 §4.2: forget everything learnt before TLS; EHLO again. */
	memset(&c->caps, 0, sizeof(c->caps));
	send_ehlo(c, CMD_EHLO);
}

void
sk_client_quit(struct sk_client *c)
{
	c->quit_wanted = true;
	if (c->phase == SK_PHASE_READY)
		pump(c);
}

bool
sk_client_next_event(struct sk_client *c, struct sk_event *ev)
{
	if (c->ev_count == 0)
		return false;
	*ev = c->events[c->ev_head];
	c->ev_head = (c->ev_head + 1) % c->ev_cap;
	c->ev_count--;
	return true;
}

enum sk_client_phase
sk_client_phase(const struct sk_client *c)
{
	return c->phase;
}

const struct sk_caps *
sk_client_caps(const struct sk_client *c)
{
	return &c->caps;
}

bool
sk_client_tls_active(const struct sk_client *c)
{
	return c->tls_active;
}

enum sk_auth_mech
sk_client_auth_mech(const struct sk_client *c)
{
	return c->auth_used;
}

const char *
sk_client_greeting(const struct sk_client *c)
{
	return c->greeting;
}
