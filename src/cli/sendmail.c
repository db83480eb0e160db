/*
 * smtpkit sendmail: a drop-in for /usr/sbin/sendmail.
 *
 * Programs that send mail on a server (cron, PHP mail(), mailx, git
 * send-email, monitoring agents) run "sendmail [flags] [recipients]" and
 * write a message to its standard input.  This takes the flags of
 * Postfix's and msmtp's sendmail, reads the header (at most HEADER_MAX
 * octets, in memory) to find the recipients (-t) and the account (by -f or
 * the From header), rewrites it (Bcc removed; From, Date and Message-ID
 * added when missing), and spools header and body to an unnamed temporary
 * file as they stream by, measured on the way (SIZE, 8-bit), so that the
 * body is never held in memory.  Then it sends the spool through the
 * account with the same rules as 'smtpkit send'.
 *
 * There is no queue yet: a message that cannot be sent is appended to
 * ~/dead.letter (mbox) and the failure is reported on stderr with a
 * sysexits status: never dropped in silence.
 *
 * -bs speaks SMTP on standard input and output (the server engine), and
 * relays every message it receives through the same path, keeping the
 * upstream session open for the next message that goes through the same
 * account (struct upstream).
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "smtpkit/addrlist.h"
#include "smtpkit/server.h"
#include "smtpkit/smtpkit.h"
#include "cli.h"
#include "file.h"

#define HEADER_MAX (1024u * 1024u)	/* the header is read into memory */
#define CHUNK 65536
#define RCPT_MAX 10000			/* recipients of one message */
#define UPSTREAM_IDLE_MS 60000		/* -bs: QUIT an upstream idle this long */

enum sm_mode {
	MODE_DELIVER,		/* -bm: read a message, send it */
	MODE_SMTP,		/* -bs */
	MODE_QUEUE,		/* -bp, -q, mailq */
	MODE_ALIASES,		/* -bi, -I, newaliases */
	MODE_DAEMON,		/* -bd, -bD, -bl */
	MODE_VERIFY		/* -bv, -bt */
};

struct sm_opts {
	enum sm_mode mode;
	bool extract;		/* -t */
	bool ignore_dots;	/* -i, -oi */
	const char *from;	/* -f, -r: NULL none, "" the null sender */
	char from_buf[SK_ADDR_MAX];
	const char *fullname;	/* -F */
	const char *config;	/* -C */
	const char *account;	/* -a */
	int verbose;		/* -v */
	unsigned dsn_notify;	/* -N */
	enum sk_dsn_ret dsn_ret;	/* -R */
	const char *dsn_envid;	/* -V */
	char **args;		/* recipients on the command line */
	int nargs;
};

struct addrs {
	char **v;
	size_t n, cap;
};

/* A header field as read: octets [start, end) of the header buffer. */
struct field {
	size_t start, end;	/* line ends and folds included */
	size_t name_len;
	size_t value;		/* just after the colon */
};

/* Where octets go: the spool, or dead.letter in mbox form. */
struct sink {
	int fd;
	bool mbox;		/* CRLF to LF, ">From " quoting (mboxrd) */
	struct sk_scan *scan;	/* the spool measures what it takes */
	uint64_t total;		/* octets given */
	bool failed;
	int sys_errno;
	char buf[CHUNK];
	size_t len;
	/* mbox state */
	bool bol;
	bool cr;		/* a CR held: is it the CR of a CRLF? */
	char pre[64];		/* a line's start that may be ">*From " */
	size_t npre;
	bool deciding;
	bool last_nl;
};

/* A message being taken in, from standard input or an SMTP session. */
struct msgin {
	const struct sm_opts *o;
	const char *env_from;	/* -f, or MAIL FROM in -bs (NULL: none) */
	const struct addrs *env_rcpts;	/* the command line's, or RCPT TO */

	char *head;		/* the header as read, and what came with it */
	size_t head_len, head_cap;
	size_t line_off;	/* first line not yet looked at */
	size_t skip;		/* a leading mbox "From " line, dropped */
	size_t body_off;	/* the body's first octet in head */
	bool header_done;
	bool raw;		/* the header was too big: sent as it is */
	const char *eol;	/* line end of the header: "\r\n" or "\n" */
	struct field *f;
	size_t nf, fcap;

	char header_from[SK_ADDR_MAX];	/* the From header's first address */
	bool has_from, has_date, has_msgid;
	char added[2048];	/* From, Date and Message-ID we add */
	struct addrs rcpts;	/* -t: from To, Cc, Bcc (or Resent-*) */

	struct cli_route *route;
	struct sk_error route_err;
	bool route_failed;
	bool route_kept;	/* route belongs to the upstream now */

	struct sink spool;
	int spool_fd;
	struct sk_scan scan;
	uint64_t spool_body_off;
	bool failed;		/* reading or spooling failed: err says */
	struct sk_error err;
};

/* What became of one delivery. */
struct outcome {
	int rc;			/* exit status */
	bool sent;		/* the server took the message */
	size_t accepted;
	size_t refused;
	struct sk_error detail;	/* the failure, or the final reply */
	char refused_list[512];
	const char *const *rcpts;
};

/*
 * -bs: the upstream session kept open between the messages of one
 * conversation.  The next message reuses it when its route is the same
 * account; it is closed (QUIT) when the account changes, when it has been
 * idle UPSTREAM_IDLE_MS, on the client's QUIT or end of input, and after
 * any failure of the session.
 */
struct upstream {
	struct sk_session *s;	/* NULL: none open */
	struct cli_route *route; /* the route that opened s (owned): its
				   account, and the transcript s writes to */
	char peer[300];
	int64_t idle_since;	/* sk_clock_ms() when s last finished work */
	int verbose;
};

static const char *progname = "sendmail";

static void
sm_usage(FILE *f)
{
	fprintf(f,
	    "usage: %s [-t] [-i] [-f sender] [-F name] [-N dsn] [-R ret] [-V envid]\n"
	    "           [-C config] [-a account] [-v] [--] [recipient ...]\n"
	    "       %s -bs            SMTP on standard input and output\n"
	    "       %s -bp | -q       (no queue yet)\n"
	    "\n"
	    "Reads a message on standard input and sends it through the smtpkit\n"
	    "account chosen by -f or the From header, else the default account\n"
	    "(~/.config/smtpkit/config).  -t adds the To, Cc and Bcc addresses to\n"
	    "the recipients; Bcc is removed from the message.  A message that\n"
	    "cannot be sent is appended to ~/dead.letter.  See smtpkit-sendmail(8).\n",
	    progname, progname, progname);
}

static int sm_error(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
sm_error(int rc, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return rc;
}

/*
 * sendmail's callers read EX_TEMPFAIL as "try again later" (cron, mailx,
 * PHP all do): whatever can pass with time is 75, the rest is what
 * cli_exit_code says.
 */
static int
exit_code(const struct sk_error *e)
{
	if (sk_error_is_temporary(e))
		return EXIT_TEMPFAIL;
	return cli_exit_code(e);
}

/* ---- address lists ---- */

static int
addrs_add(struct addrs *l, const char *s)
{
	char **nv;
	size_t ncap;

	if (l->n == l->cap) {
		ncap = l->cap != 0 ? l->cap * 2 : 8;
		if ((nv = realloc(l->v, ncap * sizeof(*nv))) == NULL)
			return -1;
		l->v = nv;
		l->cap = ncap;
	}
	if ((l->v[l->n] = strdup(s)) == NULL)
		return -1;
	l->n++;
	return 0;
}

static void
addrs_free(struct addrs *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The same mailbox: local parts exactly, domains without case. */
static bool
same_addr(const char *a, const char *b)
{
	const char *da = strrchr(a, '@'), *db = strrchr(b, '@');

	if (da == NULL || db == NULL)
		return strcmp(a, b) == 0;
	return da - a == db - b && strncmp(a, b, (size_t)(da - a)) == 0 &&
	    strcasecmp(da, db) == 0;
}

static int
collect_addr(void *arg, const struct sk_mailbox *mb)
{
	struct addrs *l = arg;

	if (l->n >= RCPT_MAX)
		return 1;
	return addrs_add(l, mb->addr) == -1 ? 1 : 0;
}

/* One address from -f: "a@b", "<a@b>", "Name <a@b>", or "" / "<>". */
static int
parse_sender(const char *s, char *out, size_t cap)
{
	struct addrs l = { 0 };
	int n;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0' || strcmp(s, "<>") == 0) {
		out[0] = '\0';
		return 0;
	}
	n = sk_addrlist_parse(s, strlen(s), collect_addr, &l, NULL);
	if (n != 1 || strlen(l.v[0]) >= cap) {
		addrs_free(&l);
		return -1;
	}
	(void)snprintf(out, cap, "%s", l.v[0]);
	addrs_free(&l);
	return 0;
}

/* ---- options ---- */

/* Option letters that take an argument, attached or as the next word. */
static const char with_arg[] = "ABCFLNORVXabefhoprd";

static int
parse_opts(int argc, char **argv, struct sm_opts *o)
{
	const char *arg, *val;
	int i = 1;
	char c;

	for (; i < argc; i++) {
		arg = argv[i];
		if (arg[0] != '-' || arg[1] == '\0')
			break;
		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(arg, "--help") == 0) {
			sm_usage(stdout);
			return -2;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("smtpkit %s (sendmail interface)\n",
			    SMTPKIT_VERSION);
			return -2;
		}
		if (arg[1] == '-')
			return sm_error(EXIT_USAGE, "unknown option %s (run "
			    "'%s --help' for the options)", arg, progname);
		for (arg++; (c = *arg) != '\0'; arg++) {
			val = NULL;
			if (strchr(with_arg, c) != NULL) {
				if (arg[1] != '\0')
					val = arg + 1;
				else if (i + 1 < argc)
					val = argv[++i];
				else
					return sm_error(EXIT_USAGE, "option -%c "
					    "needs a value", c);
			}
			switch (c) {
			case 't':
				o->extract = true;
				break;
			case 'i':
				o->ignore_dots = true;
				break;
			case 'v':
				o->verbose++;
				break;
			case 'f':
			case 'r':
				if (parse_sender(val, o->from_buf,
				    sizeof(o->from_buf)) == -1)
					return sm_error(EXIT_USAGE, "-%c %s: "
					    "not one address", c, val);
				o->from = o->from_buf;
				break;
			case 'F':
				o->fullname = val;
				break;
			case 'C':
				o->config = val;
				break;
			case 'a':
				o->account = val;
				break;
			case 'N':
				if (sk_dsn_notify_parse(val, &o->dsn_notify) ==
				    -1)
					return sm_error(EXIT_USAGE, "-N %s: use "
					    "never, or a list of success, "
					    "failure, delay", val);
				break;
			case 'R':
				if (sk_dsn_ret_parse(val, &o->dsn_ret) == -1)
					return sm_error(EXIT_USAGE, "-R %s: use "
					    "full or hdrs", val);
				break;
			case 'V':
				o->dsn_envid = val;
				break;
			case 'B':
				if (strcasecmp(val, "7BIT") != 0 &&
				    strcasecmp(val, "8BITMIME") != 0)
					return sm_error(EXIT_USAGE, "-B %s: use "
					    "7BIT or 8BITMIME", val);
				/* The body is scanned: 8BITMIME is asked for
				 * when an octet needs it. */
				break;
			case 'o':
				/* -oi; the rest (-oem, -oee, -odi, -odb,
				 * -oQ..., -om, -o7, -o8, -oA...) set what has
				 * no meaning here, as in Postfix. */
				if (strcmp(val, "i") == 0)
					o->ignore_dots = true;
				break;
			case 'b':
				if (strcmp(val, "m") == 0)
					o->mode = MODE_DELIVER;
				else if (strcmp(val, "s") == 0)
					o->mode = MODE_SMTP;
				else if (strcmp(val, "p") == 0)
					o->mode = MODE_QUEUE;
				else if (strcmp(val, "i") == 0)
					o->mode = MODE_ALIASES;
				else if (strcmp(val, "d") == 0 ||
				    strcmp(val, "D") == 0 ||
				    strcmp(val, "l") == 0)
					o->mode = MODE_DAEMON;
				else if (strcmp(val, "v") == 0 ||
				    strcmp(val, "t") == 0)
					o->mode = MODE_VERIFY;
				else if (strcmp(val, "h") != 0 &&
				    strcmp(val, "H") != 0)
					return sm_error(EXIT_USAGE, "unknown "
					    "mode -b%s", val);
				/* val may be the next word: stop this one */
				arg += strlen(arg) - 1;
				continue;
			case 'q':
				/* -q, -q30m, -qIid, -qRsite: all the queue */
				o->mode = MODE_QUEUE;
				arg += strlen(arg) - 1;
				continue;
			case 'I':
				o->mode = MODE_ALIASES;
				break;
			case 'A':	/* -Am, -Ac: which config: one here */
			case 'L':	/* syslog label */
			case 'O':	/* option=value */
			case 'X':	/* traffic log */
			case 'h':	/* hop count */
			case 'e':	/* error mode (old) */
			case 'p':	/* protocol */
			case 'd':	/* debug flags */
			case 'G':	/* gateway submission */
			case 'U':	/* initial submission */
			case 'm':	/* me too */
			case 'n':	/* no aliasing */
			case 'c':	/* Postfix: ignored */
			case 'x':
				break;
			default:
				return sm_error(EXIT_USAGE, "unknown option "
				    "-%c (run '%s --help' for the options)", c,
				    progname);
			}
			if (val != NULL)
				break;	/* the value took the rest */
		}
	}
	o->args = argv + i;
	o->nargs = argc - i;
	if (o->fullname != NULL) {
		struct sk_error e;

		if (sk_header_check("-F", o->fullname, &e) == -1)
			return sm_error(EXIT_USAGE, "%s", e.message);
	}
	return 0;
}

/* ---- sinks: the spool and dead.letter ---- */

static void
sink_init(struct sink *s, int fd, bool mbox)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->mbox = mbox;
	s->bol = true;
	s->last_nl = true;
}

static void
sink_flush(struct sink *s)
{
	size_t off = 0;
	ssize_t n;

	while (off < s->len && !s->failed) {
		n = write(s->fd, s->buf + off, s->len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			s->failed = true;
			s->sys_errno = errno;
			break;
		}
		off += (size_t)n;
	}
	s->len = 0;
}

static void
sink_byte(struct sink *s, char c)
{
	if (s->len == sizeof(s->buf))
		sink_flush(s);
	s->buf[s->len++] = c;
}

/*
 * mboxrd: a line matching ">*From " gets one more '>', so that a reader
 * can undo it exactly.  The start of a line is held while it may still
 * be one.
 */
static void
mbox_char(struct sink *s, char c)
{
	static const char from_[] = "From ";
	size_t i, k;
	bool maybe;

	if (s->bol) {
		s->deciding = true;
		s->npre = 0;
		s->bol = false;
	}
	if (s->deciding) {
		s->pre[s->npre++] = c;
		for (k = 0; k < s->npre && s->pre[k] == '>'; k++)
			;
		maybe = s->npre < sizeof(s->pre) && s->npre - k <= 5 &&
		    strncmp(s->pre + k, from_, s->npre - k) == 0;
		if (maybe && s->npre - k < 5)
			return;		/* not decided yet */
		if (maybe)
			sink_byte(s, '>');
		for (i = 0; i < s->npre; i++)
			sink_byte(s, s->pre[i]);
		s->deciding = false;
		s->last_nl = c == '\n';
		s->bol = c == '\n';
		return;
	}
	sink_byte(s, c);
	s->last_nl = c == '\n';
	s->bol = c == '\n';
}

static void
sink_write(struct sink *s, const char *p, size_t len)
{
	size_t i;

	s->total += len;
	if (s->scan != NULL)
		sk_scan_feed(s->scan, p, len);
	if (!s->mbox) {
		while (len > 0) {
			if (s->len == sizeof(s->buf))
				sink_flush(s);
			i = sizeof(s->buf) - s->len < len ?
			    sizeof(s->buf) - s->len : len;
			memcpy(s->buf + s->len, p, i);
			s->len += i;
			p += i;
			len -= i;
		}
		return;
	}
	for (i = 0; i < len; i++) {
		if (s->cr) {
			s->cr = false;
			if (p[i] == '\n') {
				mbox_char(s, '\n');
				continue;
			}
			mbox_char(s, '\r');
		}
		if (p[i] == '\r') {
			s->cr = true;
			continue;
		}
		mbox_char(s, p[i]);
	}
}

static void
sink_str(struct sink *s, const char *p)
{
	sink_write(s, p, strlen(p));
}

/* The end of an mbox message: a line end if missing, then an empty line. */
static void
mbox_end(struct sink *s)
{
	size_t i;

	if (s->cr) {
		s->cr = false;
		mbox_char(s, '\r');
	}
	if (s->deciding) {
		for (i = 0; i < s->npre; i++)
			sink_byte(s, s->pre[i]);
		s->deciding = false;
		s->last_nl = false;
	}
	if (!s->last_nl)
		sink_byte(s, '\n');
	sink_byte(s, '\n');
	sink_flush(s);
}

static int
spool_open(struct sk_error *err)
{
	const char *dir;
	int fd;

	if ((fd = sk__tmpfile(&dir)) == -1) {
		sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "cannot make a "
		    "spool file in %s: %s", dir, strerror(errno));
		err->sys_errno = errno;
	}
	return fd;
}

/* ---- the header ---- */

static bool
field_is(const struct msgin *m, const struct field *f, const char *name)
{
	return f->name_len == strlen(name) &&
	    strncasecmp(m->head + f->start, name, f->name_len) == 0;
}

/* RFC 5322 §2.2: a field name is printable ASCII but ':'; obs-header
 * (§4.5) allows white space before the colon.  Returns the name's length
 * and sets *colon, or 0 when the line is no field. */
static size_t
field_name(const char *p, size_t len, size_t *colon)
{
	size_t i, n;

	for (i = 0; i < len && p[i] > ' ' && p[i] < 0x7f && p[i] != ':'; i++)
		;
	n = i;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (n == 0 || i == len || p[i] != ':')
		return 0;
	*colon = i;
	return n;
}

static int
add_field(struct msgin *m, size_t start, size_t end, size_t name_len,
    size_t value)
{
	struct field *nf;
	size_t ncap;

	if (m->nf == m->fcap) {
		ncap = m->fcap != 0 ? m->fcap * 2 : 32;
		if ((nf = realloc(m->f, ncap * sizeof(*nf))) == NULL)
			return -1;
		m->f = nf;
		m->fcap = ncap;
	}
	m->f[m->nf].start = start;
	m->f[m->nf].end = end;
	m->f[m->nf].name_len = name_len;
	m->f[m->nf].value = value;
	m->nf++;
	return 0;
}

/*
 * Look at the complete lines read so far (all of them at the end of input)
 * and find where the header ends: at an empty line, or at the first line
 * that is neither a field nor a fold (the body then starts there; cron's
 * "echo body | sendmail root" has no header at all).  Returns 1 when the
 * end was found, 0 when more is needed, -1 when memory failed.
 */
static int
scan_header(struct msgin *m, bool at_eof)
{
	const char *p, *nl;
	size_t len, end, colon, n;

	while (m->line_off < m->head_len) {
		p = m->head + m->line_off;
		len = m->head_len - m->line_off;
		nl = memchr(p, '\n', len);
		if (nl == NULL && !at_eof)
			return 0;
		end = nl != NULL ? (size_t)(nl - p) + 1 : len;
		if (m->line_off == 0 && m->nf == 0 && len >= 5 &&
		    strncmp(p, "From ", 5) == 0) {
			/* an mbox separator, not a field (Postfix drops it) */
			m->skip = end;
			m->line_off += end;
			continue;
		}
		if (p[0] == '\n' || (p[0] == '\r' && len > 1 && p[1] == '\n')) {
			if (m->eol == NULL)
				m->eol = p[0] == '\r' ? "\r\n" : "\n";
			m->body_off = m->line_off + end;
			return 1;
		}
		if ((p[0] == ' ' || p[0] == '\t') && m->nf > 0) {
			/* a fold: the field goes on (RFC 5322 §2.2.3) */
			m->f[m->nf - 1].end = m->line_off + end;
			m->line_off += end;
			continue;
		}
		if ((n = field_name(p, end, &colon)) == 0) {
			m->body_off = m->line_off;
			return 1;
		}
		if (m->eol == NULL)
			m->eol = end >= 2 && p[end - 2] == '\r' ? "\r\n" : "\n";
		if (add_field(m, m->line_off, m->line_off + end, n,
		    m->line_off + colon + 1) == -1)
			return -1;
		m->line_off += end;
	}
	if (at_eof) {
		m->body_off = m->head_len;
		return 1;
	}
	return 0;
}

static int
first_addr(void *arg, const struct sk_mailbox *mb)
{
	char *out = arg;

	(void)snprintf(out, SK_ADDR_MAX, "%s", mb->addr);
	return 1;	/* only the first */
}

/* -t: To, Cc and Bcc, or those of the first Resent- block when there is
 * one (RFC 5322 §3.6.6; sendmail and msmtp do the same). */
static int
extract_rcpts(struct msgin *m, struct sk_error *err)
{
	static const char *const plain[] = { "To", "Cc", "Bcc" };
	static const char *const resent[] = { "Resent-To", "Resent-Cc",
		"Resent-Bcc" };
	const char *const *names = plain;
	size_t i, k, first = m->nf, last = m->nf;
	const struct field *f;
	char what[32];

	for (i = 0; i < m->nf; i++)
		if (m->f[i].name_len > 7 &&
		    strncasecmp(m->head + m->f[i].start, "Resent-", 7) == 0) {
			first = i;
			break;
		}
	if (first < m->nf) {
		names = resent;
		for (last = first; last < m->nf &&
		    m->f[last].name_len > 7 && strncasecmp(m->head +
		    m->f[last].start, "Resent-", 7) == 0; last++)
			;
	}
	for (i = 0; i < m->nf; i++) {
		f = &m->f[i];
		if (names == resent && (i < first || i >= last))
			continue;
		for (k = 0; k < 3; k++)
			if (field_is(m, f, names[k]))
				break;
		if (k == 3)
			continue;
		if (sk_addrlist_parse(m->head + f->value, f->end - f->value,
		    collect_addr, &m->rcpts, err) == -1) {
			if (m->rcpts.n >= RCPT_MAX)
				return sk_error_set(err, SK_STAGE_LOCAL,
				    SK_ERR_DATA, "more than %d recipients",
				    RCPT_MAX);
			(void)snprintf(what, sizeof(what), "%s", names[k]);
			if (err != NULL) {
				char msg[SK_ERROR_MESSAGE_MAX];

				(void)snprintf(msg, sizeof(msg), "the %s header "
				    "(-t): %s", what, err->message);
				(void)snprintf(err->message,
				    sizeof(err->message), "%s", msg);
			}
			return -1;
		}
	}
	return 0;
}

/* The display name of -F for a From header: as it is when it is atoms,
 * quoted when it has specials, RFC 2047 words when it is not ASCII. */
static void
format_name(const char *name, char *out, size_t cap)
{
	const unsigned char *p;
	bool ascii = true, atoms = true;
	size_t o = 0;

	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p >= 0x80)
			ascii = false;
		else if (!(*p == ' ' || (*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("!#$%&'*+-/=?^_`{|}~", *p) != NULL))
			atoms = false;
	}
	if (!ascii) {
		if (sk_rfc2047_encode(name, 6, out, cap) == (size_t)-1)
			out[0] = '\0';
		return;
	}
	if (atoms) {
		(void)snprintf(out, cap, "%s", name);
		return;
	}
	out[o++] = '"';
	for (p = (const unsigned char *)name; *p != '\0' && o + 4 < cap; p++) {
		if (*p == '"' || *p == '\\')
			out[o++] = '\\';
		out[o++] = (char)*p;
	}
	out[o++] = '"';
	out[o] = '\0';
}

static const char *
this_host(void)
{
	static char host[256];

	if (host[0] == '\0' && (gethostname(host, sizeof(host)) == -1 ||
	    host[0] == '\0'))
		(void)snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	return host;
}

/* From, Date and Message-ID, when the message has none (RFC 5322 §3.6). */
static void
make_added(struct msgin *m)
{
	const char *addr, *domain;
	char name[512], date[64], id[300];
	size_t o = 0;

	addr = m->route != NULL ? cli_route_address(m->route) : NULL;
	if (addr == NULL || *addr == '\0')
		addr = m->header_from[0] != '\0' ? m->header_from : NULL;
	domain = addr != NULL && strrchr(addr, '@') != NULL ?
	    strrchr(addr, '@') + 1 : this_host();
	m->added[0] = '\0';
	if (!m->has_from && addr != NULL) {
		if (m->o->fullname != NULL && m->o->fullname[0] != '\0') {
			format_name(m->o->fullname, name, sizeof(name));
			o += (size_t)snprintf(m->added + o, sizeof(m->added) - o,
			    "From: %s <%s>%s", name, addr, m->eol);
		} else {
			o += (size_t)snprintf(m->added + o, sizeof(m->added) - o,
			    "From: %s%s", addr, m->eol);
		}
	}
	if (o < sizeof(m->added) && !m->has_date &&
	    sk_rfc5322_date(time(NULL), date, sizeof(date)) != (size_t)-1)
		o += (size_t)snprintf(m->added + o, sizeof(m->added) - o,
		    "Date: %s%s", date, m->eol);
	if (o < sizeof(m->added) && !m->has_msgid &&
	    sk_message_id(domain, id, sizeof(id)) != (size_t)-1)
		(void)snprintf(m->added + o, sizeof(m->added) - o,
		    "Message-ID: %s%s", id, m->eol);
}

/* The header as sent (keep_bcc false) or as saved (true): the fields as
 * read, in their order, then what was added, then the empty line. */
static void
write_header(const struct msgin *m, struct sink *s, bool keep_bcc)
{
	const struct field *f;
	size_t i;

	for (i = 0; i < m->nf; i++) {
		f = &m->f[i];
		/* RFC 5322 §3.6.3: Bcc must not reach the To and Cc
		 * recipients; removing it is what sendmail -t does. */
		if (!keep_bcc && (field_is(m, f, "Bcc") ||
		    field_is(m, f, "Resent-Bcc")))
			continue;
		sink_write(s, m->head + f->start, f->end - f->start);
		/* a last field cut off by the end of input gets its end */
		if (f->end == m->head_len && m->head[f->end - 1] != '\n')
			sink_str(s, m->eol);
	}
	sink_str(s, m->added);
	sink_str(s, m->eol);
}

/* The header is complete: learn from it, choose the route, spool it. */
static void
header_done(struct msgin *m)
{
	struct cli_route_req req;
	size_t i;

	m->header_done = true;
	if (m->eol == NULL)
		m->eol = "\n";
	for (i = 0; i < m->nf; i++) {
		if (field_is(m, &m->f[i], "From")) {
			if (!m->has_from)
				(void)sk_addrlist_parse(m->head + m->f[i].value,
				    m->f[i].end - m->f[i].value, first_addr,
				    m->header_from, NULL);
			m->has_from = true;
		} else if (field_is(m, &m->f[i], "Date"))
			m->has_date = true;
		else if (field_is(m, &m->f[i], "Message-ID"))
			m->has_msgid = true;
	}
	if (m->o->extract && m->o->mode == MODE_DELIVER && !m->failed &&
	    extract_rcpts(m, &m->err) == -1)
		m->failed = true;

	/* Only configuration is read here: nothing waits on the network
	 * while the writer of the message waits on us. */
	memset(&req, 0, sizeof(req));
	req.config = m->o->config;
	req.account = m->o->account;
	req.from = m->env_from;
	req.header_from = m->header_from[0] != '\0' ? m->header_from : NULL;
	req.verbose = m->o->verbose;
	if ((m->route = cli_route_new(&req, &m->route_err)) == NULL)
		m->route_failed = true;
	make_added(m);
	write_header(m, &m->spool, false);
	m->spool_body_off = m->spool.total;
	sink_write(&m->spool, m->head + m->body_off, m->head_len - m->body_off);
}

static int
msgin_init(struct msgin *m, const struct sm_opts *o, const char *env_from,
    const struct addrs *env_rcpts)
{
	memset(m, 0, sizeof(*m));
	m->o = o;
	m->env_from = env_from;
	m->env_rcpts = env_rcpts;
	sk_scan_init(&m->scan);
	if ((m->spool_fd = spool_open(&m->err)) == -1)
		return -1;
	sink_init(&m->spool, m->spool_fd, false);
	m->spool.scan = &m->scan;
	return 0;
}

static void
msgin_fini(struct msgin *m)
{
	if (m->spool_fd >= 0)
		(void)close(m->spool_fd);
	m->spool_fd = -1;
	free(m->head);
	free(m->f);
	addrs_free(&m->rcpts);
	if (!m->route_kept)
		cli_route_free(m->route);
	m->head = NULL;
	m->f = NULL;
	m->route = NULL;
}

/* Message octets as they come: the header into memory, the rest to the
 * spool. */
static void
msgin_feed(struct msgin *m, const char *p, size_t len)
{
	size_t ncap;
	char *nh;
	int rc;

	if (m->header_done || m->raw) {
		sink_write(&m->spool, p, len);
		return;
	}
	if (m->head_len + len > m->head_cap) {
		ncap = m->head_cap != 0 ? m->head_cap : CHUNK;
		while (ncap < m->head_len + len)
			ncap *= 2;
		if ((nh = realloc(m->head, ncap)) == NULL) {
			sk_error_set(&m->err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
			    "out of memory");
			m->failed = m->raw = true;
			sink_write(&m->spool, m->head, m->head_len);
			sink_write(&m->spool, p, len);
			return;
		}
		m->head = nh;
		m->head_cap = ncap;
	}
	memcpy(m->head + m->head_len, p, len);
	m->head_len += len;
	rc = scan_header(m, false);
	if (rc == 1) {
		header_done(m);
		return;
	}
	if (rc == -1 || m->head_len > HEADER_MAX) {
		/* Not a header we can take apart: keep it all for
		 * dead.letter, send nothing. */
		if (rc == -1)
			sk_error_set(&m->err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
			    "out of memory");
		else
			sk_error_set(&m->err, SK_STAGE_LOCAL, SK_ERR_DATA,
			    "the message header is over %u octets",
			    HEADER_MAX);
		m->failed = m->raw = true;
		sink_write(&m->spool, m->head, m->head_len);
	}
}

/* The input ended.  Returns -1 when the spool cannot be read back. */
static int
msgin_end(struct msgin *m)
{
	if (!m->header_done && !m->raw) {
		if (scan_header(m, true) == -1) {
			sk_error_set(&m->err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
			    "out of memory");
			m->failed = m->raw = true;
			sink_write(&m->spool, m->head, m->head_len);
		} else
			header_done(m);
	}
	sink_flush(&m->spool);
	sk_scan_finish(&m->scan);
	if (m->spool.failed) {
		sk_error_set(&m->err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "cannot "
		    "write the spool file: %s", strerror(m->spool.sys_errno));
		m->err.sys_errno = m->spool.sys_errno;
		m->failed = true;
		return -1;
	}
	return 0;
}

/* ---- dead.letter ---- */

static int
dead_letter_path(char *out, size_t cap)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home == NULL || *home == '\0') {
		if ((pw = getpwuid(getuid())) == NULL)
			return -1;
		home = pw->pw_dir;
	}
	if ((size_t)snprintf(out, cap, "%s/dead.letter", home) >= cap)
		return -1;
	return 0;
}

/*
 * Append the message to ~/dead.letter, mbox style: a "From " line, the
 * header as given (Bcc kept: the copy is for whoever sends it again) with
 * what was added, the body, an empty line.  Locked against a concurrent
 * run, synced before it is reported saved.
 */
static int
dead_letter(struct msgin *m, char *where, size_t cap)
{
	struct sink out;
	struct stat st;
	char buf[CHUNK], date[64], line[SK_ADDR_MAX + 80];
	const char *sender, *p;
	time_t now = time(NULL);
	struct tm tm;
	ssize_t n;
	int fd, saved;

	if (dead_letter_path(where, cap) == -1) {
		(void)snprintf(where, cap, "~/dead.letter");
		errno = ENOENT;
		return -1;
	}
	fd = open(where, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		saved = S_ISREG(st.st_mode) ? errno : EINVAL;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	(void)flock(fd, LOCK_EX);
	sink_init(&out, fd, true);
	sender = m->env_from != NULL && *m->env_from != '\0' ? m->env_from :
	    m->route != NULL && *cli_route_from(m->route) != '\0' ?
	    cli_route_from(m->route) : "MAILER-DAEMON";
	if (localtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		(void)snprintf(date, sizeof(date), "Thu Jan  1 00:00:00 1970");
	/* The separator line itself is the one "From " not quoted. */
	(void)snprintf(line, sizeof(line), "From %s %s\n", sender, date);
	for (p = line; *p != '\0'; p++)
		sink_byte(&out, *p);
	if (m->header_done && !m->raw)
		write_header(m, &out, true);
	/* then the spool from its body (everything when raw) */
	if (lseek(m->spool_fd, (off_t)(m->raw ? 0 : m->spool_body_off),
	    SEEK_SET) == -1)
		out.failed = true;
	while (!out.failed) {
		n = read(m->spool_fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == -1) {
				out.failed = true;
				out.sys_errno = errno;
			}
			break;
		}
		sink_write(&out, buf, (size_t)n);
	}
	mbox_end(&out);
	if (!out.failed && fsync(fd) == -1) {
		out.failed = true;
		out.sys_errno = errno;
	}
	saved = out.sys_errno;
	(void)close(fd);
	if (out.failed) {
		errno = saved != 0 ? saved : EIO;
		return -1;
	}
	return 0;
}

/* Say what happened to the copy; rc is the status so far. */
static int
save_copy(struct msgin *m, int rc, bool temporary)
{
	char where[PATH_MAX];

	if (dead_letter(m, where, sizeof(where)) == -1) {
		fprintf(stderr, "%s: could not save a copy in %s: %s; the "
		    "message is lost\n", progname, where, strerror(errno));
		return rc;
	}
	if (temporary)
		fprintf(stderr, "%s: the message was saved in %s; send it "
		    "again later (smtpkit has no queue yet)\n", progname, where);
	else
		fprintf(stderr, "%s: the message was saved in %s\n", progname,
		    where);
	return rc;
}

/* ---- sending ---- */

static void
on_result(void *arg, const struct sk_event *ev)
{
	struct outcome *out = arg;
	size_t n;

	if (ev->type == SK_EV_RCPT) {
		if (ev->ok) {
			out->accepted++;
			return;
		}
		out->refused++;
		fprintf(stderr, "%s: <%s>: refused: %d %s\n", progname,
		    out->rcpts[ev->rcpt], ev->detail.code,
		    ev->detail.server_text);
		n = strlen(out->refused_list);
		(void)snprintf(out->refused_list + n,
		    sizeof(out->refused_list) - n, "%s<%s>", n > 0 ? ", " : "",
		    out->rcpts[ev->rcpt]);
		if (out->rc == EXIT_OK)
			out->rc = exit_code(&ev->detail);
		return;
	}
	out->detail = ev->detail;
	out->sent = ev->ok;
	if (!ev->ok)
		out->rc = exit_code(&ev->detail);
}

/*
 * The envelope recipients: the command line's (or the SMTP session's),
 * then, with -t, the header's; duplicates once; a lone local part ("root")
 * at the sender's domain, as there are no aliases.
 */
static int
final_rcpts(struct msgin *m, struct addrs *out, bool *utf8,
    struct sk_error *err)
{
	const struct addrs *lists[2];
	const char *addr, *sender, *at;
	char q[SK_ADDR_MAX + 256];
	bool u;
	size_t i, j, k;

	lists[0] = m->env_rcpts;
	lists[1] = &m->rcpts;
	sender = cli_route_address(m->route);
	at = sender != NULL ? strrchr(sender, '@') : NULL;
	*utf8 = false;
	for (k = 0; k < 2; k++) {
		if (lists[k] == NULL)
			continue;
		for (i = 0; i < lists[k]->n; i++) {
			addr = lists[k]->v[i];
			if (strchr(addr, '@') == NULL ||
			    addr[strlen(addr) - 1] == '"') {
				if (at == NULL)
					return sk_error_set(err, SK_STAGE_LOCAL,
					    SK_ERR_USAGE, "recipient %s has no "
					    "domain, and the sender has none "
					    "to lend it", addr);
				(void)snprintf(q, sizeof(q), "%s%s", addr, at);
				addr = q;
			}
			if (sk_addr_check("recipient", addr, &u, err) == -1)
				return -1;
			*utf8 |= u;
			for (j = 0; j < out->n; j++)
				if (same_addr(out->v[j], addr))
					break;
			if (j < out->n)
				continue;
			if (addrs_add(out, addr) == -1)
				return sk_error_set(err, SK_STAGE_LOCAL,
				    SK_ERR_LOCAL, "out of memory");
		}
	}
	if (out->n == 0)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    m->o->extract ? "no recipients: the message has no To, Cc "
		    "or Bcc (-t) and none were given" : "no recipients");
	return 0;
}

/* ---- the upstream session of -bs ---- */

/* QUIT and forget the kept session, if any; why (may be NULL) for -v. */
static void
upstream_close(struct upstream *up, const char *why)
{
	if (up == NULL || up->s == NULL)
		return;
	if (up->verbose > 0 && why != NULL)
		fprintf(stderr, "%s: closing the connection to %s (%s)\n",
		    progname, up->peer, why);
	sk_session_quit(up->s);
	cli_route_free(up->route);
	up->s = NULL;
	up->route = NULL;
}

/* The session failed: close it without QUIT. */
static void
upstream_drop(struct upstream *up)
{
	sk_session_free(up->s);
	cli_route_free(up->route);
	up->s = NULL;
	up->route = NULL;
}

/* Does the message's route go through the account the kept session is
 * logged in to?  The account alone decides the session's server, port,
 * TLS and login; the envelope sender does not. */
static bool
upstream_fits(const struct upstream *up, const struct cli_route *r)
{
	const char *a = cli_route_account(up->route);
	const char *b = cli_route_account(r);

	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/*
 * May a message that failed on a reused session go again on a new one?
 * Only when the session turned out dead (the server closed it or reset
 * it while it sat idle, or said 421) before the server accepted the
 * message's MAIL: then nothing of the message was taken.  Once MAIL was
 * accepted (a recipient was answered, or the failure is at RCPT or DATA)
 * the failure is reported as it is: the message must never arrive twice.
 * A timeout is not retried either: the server may still be there.
 */
static bool
dead_before_mail(const struct outcome *out, const struct sk_error *e)
{
	if (out->sent || out->accepted > 0 || out->refused > 0)
		return false;
	if (e->stage != SK_STAGE_MAIL && e->stage != SK_STAGE_NONE)
		return false;
	return e->kind == SK_ERR_EOF || e->kind == SK_ERR_RESET ||
	    (e->kind == SK_ERR_REPLY && e->code == 421);
}

/*
 * Send a complete message.  Fills out (the exit status and what the
 * server said); a message not sent to every recipient is saved in
 * dead.letter when save is set.  up NULL: a session of its own, closed
 * after the message; else the session up keeps is reused when it fits,
 * and the one used is left open in up when it is still usable.
 */
static void
deliver(struct msgin *m, struct outcome *out, bool save, struct upstream *up)
{
	struct addrs rcpts = { 0 };
	struct sk_session *s = NULL;
	struct sk_source src;
	struct sk_error err;
	const char *peer;
	bool utf8 = false, reused = false;

	memset(out, 0, sizeof(*out));
	sk_error_clear(&err);
	if (m->failed) {
		err = m->err;
		goto fail;
	}
	if (m->route_failed) {
		err = m->route_err;
		goto fail;
	}
	if (m->scan.has_nul) {
		sk_error_set(&err, SK_STAGE_LOCAL, SK_ERR_DATA, "the message "
		    "holds a NUL octet (line %llu as sent), which SMTP cannot "
		    "carry", (unsigned long long)m->scan.nul_line);
		goto fail;
	}
	if (m->scan.long_line != 0 && m->o->verbose > 0)
		fprintf(stderr, "%s: line %llu is %llu octets long (RFC 5322 "
		    "allows 998); the server may refuse the message\n",
		    progname, (unsigned long long)m->scan.long_line,
		    (unsigned long long)m->scan.long_line_len);
	if (final_rcpts(m, &rcpts, &utf8, &err) == -1)
		goto fail;
	if (m->o->verbose > 0)
		fprintf(stderr, "%s: from <%s> to %zu recipient%s, %llu "
		    "octets\n", progname, cli_route_from(m->route), rcpts.n,
		    rcpts.n == 1 ? "" : "s",
		    (unsigned long long)m->scan.wire_size);
	if (up != NULL && up->s != NULL && !upstream_fits(up, m->route)) {
		char why[300];

		(void)snprintf(why, sizeof(why), "the next message goes "
		    "through account %s", cli_route_account(m->route));
		upstream_close(up, why);
	}
	if (up != NULL && up->s != NULL) {
		if (cli_route_check(m->route, (const char *const *)rcpts.v,
		    rcpts.n, &utf8, &err) == -1)
			goto fail;
		s = up->s;
		reused = true;
		if (m->o->verbose > 0)
			fprintf(stderr, "%s: reusing the connection to %s\n",
			    progname, up->peer);
	} else {
		if ((s = cli_route_open(m->route,
		    (const char *const *)rcpts.v, rcpts.n, &utf8, &err)) == NULL)
			goto fail;
	}

again:
	if (lseek(m->spool_fd, 0, SEEK_SET) == -1)
		goto spool;
	memset(&src, 0, sizeof(src));
	src.fd = m->spool_fd;
	src.name = "the message";
	src.env.from = cli_route_from(m->route);
	src.env.rcpts = (const char *const *)rcpts.v;
	src.env.nrcpts = rcpts.n;
	src.env.size = m->scan.wire_size;
	src.env.body_8bit = m->scan.has_8bit;
	src.env.smtputf8 = utf8;
	src.env.dsn_notify = m->o->dsn_notify;
	src.env.dsn_ret = m->o->dsn_ret;
	src.env.dsn_envid = m->o->dsn_envid;
	memset(out, 0, sizeof(*out));
	out->rcpts = (const char *const *)rcpts.v;
	out->rc = EXIT_OK;
	peer = sk_session_peer(s);
	if (sk_session_send(s, &src, 1, on_result, out, &err) == -1) {
		if (reused) {
			/* up->s is s: the session is gone either way */
			upstream_drop(up);
			s = NULL;
			if (dead_before_mail(out, &err)) {
				if (m->o->verbose > 0)
					fprintf(stderr, "%s: the kept "
					    "connection was dead (%s); opening "
					    "a new one\n", progname,
					    err.message);
				reused = false;
				if ((s = cli_route_open(m->route,
				    (const char *const *)rcpts.v, rcpts.n,
				    &utf8, &err)) == NULL)
					goto fail;
				goto again;
			}
		}
		sk_session_free(s);
		s = NULL;
		if (out->rc == EXIT_OK)
			out->rc = exit_code(&err);
		if (out->detail.kind == SK_ERR_NONE)
			out->detail = err;
	} else {
		if (out->rc == EXIT_OK && m->o->verbose > 0)
			fprintf(stderr, "%s: accepted by %s: %d %s\n",
			    progname, peer, out->detail.code,
			    out->detail.server_text);
		if (up == NULL) {
			sk_session_quit(s);
		} else {
			if (!reused) {
				/* the session writes its transcript
				 * through the route: both stay together */
				up->s = s;
				up->route = m->route;
				m->route_kept = true;
				(void)snprintf(up->peer, sizeof(up->peer), "%s",
				    peer);
			}
			up->idle_since = sk_clock_ms();
		}
		s = NULL;
	}
	if (out->rc != EXIT_OK && out->detail.kind != SK_ERR_NONE) {
		if (out->refused == 0 || out->detail.kind != SK_ERR_REPLY ||
		    out->detail.stage != SK_STAGE_RCPT) {
			cli_print_error(&out->detail);
			cli_route_hint(m->route, &out->detail);
		}
	}
	if (out->rc != EXIT_OK && save) {
		if (out->sent && out->refused > 0)
			fprintf(stderr, "%s: the message was sent, but not to "
			    "%s\n", progname, out->refused_list);
		(void)save_copy(m, out->rc, out->rc == EXIT_TEMPFAIL);
	}
	addrs_free(&rcpts);
	out->rcpts = NULL;
	return;
spool:
	sk_error_set(&err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "cannot read "
	    "the spool file back: %s", strerror(errno));
	err.sys_errno = errno;
	if (s != NULL && !reused)
		sk_session_free(s);
fail:
	out->rc = exit_code(&err);
	out->detail = err;
	cli_print_error(&err);
	if (m->route != NULL && err.stage != SK_STAGE_LOCAL)
		cli_route_hint(m->route, &err);
	if (save && m->spool_fd >= 0)
		(void)save_copy(m, out->rc, out->rc == EXIT_TEMPFAIL);
	addrs_free(&rcpts);
	out->rcpts = NULL;
}

/* ---- -bm: a message on standard input ---- */

/*
 * Without -i, a line holding only "." ends the input (RFC 821 habits,
 * Postfix does the same).  The dot, and a CR after it, are held until
 * the next octet says whether that is the line.
 */
struct dotstop {
	bool bol;
	int held;		/* 1: "." held, 2: ".\r" held */
	bool ended;
};

static void
dotstop_feed(struct dotstop *d, struct msgin *m, const char *p, size_t len)
{
	size_t i, from = 0;

	for (i = 0; i < len && !d->ended; i++) {
		if (d->held == 1) {
			if (p[i] == '\n' || p[i] == '\r') {
				if (p[i] == '\n') {
					d->ended = true;
					return;
				}
				d->held = 2;
				from = i + 1;
				continue;
			}
			msgin_feed(m, ".", 1);
			d->held = 0;
			from = i;
		} else if (d->held == 2) {
			if (p[i] == '\n') {
				d->ended = true;
				return;
			}
			msgin_feed(m, ".\r", 2);
			d->held = 0;
			from = i;
		}
		if (d->bol && p[i] == '.') {
			if (i > from)
				msgin_feed(m, p + from, i - from);
			d->held = 1;
			d->bol = false;
			from = i + 1;
			continue;
		}
		d->bol = p[i] == '\n';
	}
	if (!d->ended && d->held == 0 && i > from)
		msgin_feed(m, p + from, i - from);
}

static int
run_deliver(struct sm_opts *o)
{
	struct addrs args = { 0 };
	struct msgin m;
	struct outcome out;
	struct dotstop d = { true, 0, false };
	struct sk_error err;
	char buf[CHUNK];
	ssize_t n;
	int i, rc;

	if (o->nargs == 0 && !o->extract)
		return sm_error(EXIT_USAGE, "no recipients: give them as "
		    "arguments, or -t to read them from the message");
	for (i = 0; i < o->nargs; i++) {
		/* "a@x, Bob <b@y>" in one argument works, as in sendmail */
		if (sk_addrlist_parse(o->args[i], strlen(o->args[i]),
		    collect_addr, &args, &err) == -1) {
			addrs_free(&args);
			return sm_error(EXIT_USAGE, "recipient %s: %s",
			    o->args[i], args.n >= RCPT_MAX ? "too many" :
			    err.message);
		}
	}
	if (msgin_init(&m, o, o->from, &args) == -1) {
		cli_print_error(&m.err);
		addrs_free(&args);
		return cli_exit_code(&m.err);
	}
	for (;;) {
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			sk_error_set(&m.err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
			    "cannot read the message: %s", strerror(errno));
			m.err.sys_errno = errno;
			m.failed = true;
			break;
		}
		if (n == 0)
			break;
		if (o->ignore_dots)
			msgin_feed(&m, buf, (size_t)n);
		else {
			dotstop_feed(&d, &m, buf, (size_t)n);
			if (d.ended)
				break;
		}
	}
	/* a "." held at the end of input was the end */
	if (!o->ignore_dots && d.held == 2)
		msgin_feed(&m, ".\r", 2);
	(void)msgin_end(&m);
	deliver(&m, &out, true, NULL);
	rc = out.rc;
	msgin_fini(&m);
	addrs_free(&args);
	return rc;
}

/* ---- -bs: SMTP on standard input and output ---- */

/* The final reply to a relayed message: what the server said when it
 * said no, else a reply that carries the failure's nature. */
static void
final_reply(struct sk_server *srv, const struct outcome *out)
{
	char text[SK_ERROR_MESSAGE_MAX + 64];
	const struct sk_error *d = &out->detail;

	if (out->rc == EXIT_OK) {
		(void)snprintf(text, sizeof(text), "Ok: sent (%d %s)", d->code,
		    d->server_text);
		sk_server_reply(srv, 250, "2.0.0", text);
		return;
	}
	if (out->sent) {
		/* Taken for some: the client must not send it again. */
		(void)snprintf(text, sizeof(text), "Ok: sent, but %s refused "
		    "(a copy is in dead.letter)", out->refused_list);
		sk_server_reply(srv, 250, "2.0.0", text);
		return;
	}
	if (d->kind == SK_ERR_REPLY && d->code >= 400 && d->code < 600) {
		sk_server_reply(srv, d->code, d->enhanced, d->message);
		return;
	}
	if (sk_error_is_temporary(d))
		sk_server_reply(srv, 451, "4.4.0", d->message);
	else
		sk_server_reply(srv, 554, "5.0.0", d->message);
}

static int
run_smtp(struct sm_opts *o)
{
	struct sk_server_config cfg;
	struct sk_server *srv;
	struct sk_server_event ev;
	struct sk_error err;
	struct msgin m;
	struct addrs rcpts = { 0 };
	const struct sk_server_envelope *env;
	struct outcome out;
	struct upstream up;
	struct pollfd pfd;
	char buf[CHUNK], from[SK_ADDR_MAX];
	const char *p;
	size_t len, off, used, i;
	ssize_t n;
	bool in_msg = false, eof = false;
	int rc = EXIT_OK, left;

	memset(&cfg, 0, sizeof(cfg));
	cfg.hostname = this_host();
	/* a local pipe: its writer may well end lines with LF alone */
	cfg.lf_ends_line = true;
	if ((srv = sk_server_new(&cfg, &err)) == NULL) {
		cli_print_error(&err);
		return cli_exit_code(&err);
	}
	memset(&m, 0, sizeof(m));
	m.spool_fd = -1;
	memset(&up, 0, sizeof(up));
	up.verbose = o->verbose;
	while (!sk_server_closed(srv)) {
		p = sk_server_output(srv, &len);
		if (len > 0) {
			if (sk__write_all(STDOUT_FILENO, p, len) == -1) {
				rc = sm_error(EXIT_IOERR, "cannot write the "
				    "SMTP replies: %s", strerror(errno));
				break;
			}
			sk_server_sent(srv, len);
		}
		if (eof)
			break;
		if (up.s != NULL) {
			/*
			 * Servers drop idle sessions (RFC 5321 §4.5.3.2 lets
			 * them after 5 minutes; some much sooner): wait for
			 * the client no longer than the kept session may
			 * idle, then QUIT it while it is likely still
			 * there, and wait on.  A server quicker than that is
			 * met by the retry in deliver().
			 */
			left = sk_clock_left(up.idle_since + UPSTREAM_IDLE_MS);
			pfd.fd = STDIN_FILENO;
			pfd.events = POLLIN;
			pfd.revents = 0;
			if (left > 0 && poll(&pfd, 1, left) == -1 &&
			    errno == EINTR)
				continue;
			if (left == 0 || pfd.revents == 0) {
				char why[64];

				(void)snprintf(why, sizeof(why), "idle for %d s",
				    UPSTREAM_IDLE_MS / 1000);
				upstream_close(&up, why);
				continue;
			}
		}
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			sk_server_eof(srv);
			eof = true;
			n = 0;
		}
		for (off = 0;;) {
			used = sk_server_feed(srv, buf + off, (size_t)n - off);
			off += used;
			p = sk_server_body(srv, &len);
			if (len > 0) {
				if (in_msg)
					msgin_feed(&m, p, len);
				sk_server_body_taken(srv, len);
			}
			while (sk_server_next_event(srv, &ev)) {
				switch (ev.type) {
				case SK_SRV_EV_MESSAGE:
					env = sk_server_envelope(srv);
					addrs_free(&rcpts);
					for (i = 0; i < env->nrcpts; i++)
						(void)addrs_add(&rcpts,
						    env->rcpts[i]);
					(void)snprintf(from, sizeof(from), "%s",
					    env->from);
					in_msg = msgin_init(&m, o, from,
					    &rcpts) == 0;
					if (!in_msg) {
						/* say it at the end of DATA */
						m.failed = true;
					}
					break;
				case SK_SRV_EV_END:
					if (!in_msg) {
						sk_server_reply(srv, 451,
						    "4.3.0", m.err.message);
						break;
					}
					(void)msgin_end(&m);
					deliver(&m, &out, false, &up);
					final_reply(srv, &out);
					if (out.rc != EXIT_OK && out.sent)
						(void)save_copy(&m, out.rc,
						    false);
					msgin_fini(&m);
					in_msg = false;
					break;
				case SK_SRV_EV_DISCARD:
					if (in_msg)
						msgin_fini(&m);
					in_msg = false;
					break;
				default:
					break;
				}
			}
			p = sk_server_output(srv, &len);
			if (len > 0) {
				if (sk__write_all(STDOUT_FILENO, p, len) == -1)
					break;
				sk_server_sent(srv, len);
			}
			if (off >= (size_t)n || sk_server_closed(srv))
				break;
			if (used == 0 && len == 0) {
				size_t blen;

				(void)sk_server_body(srv, &blen);
				if (blen == 0)
					break;	/* cannot happen: no progress */
			}
		}
	}
	if (in_msg)
		msgin_fini(&m);
	/* the client said QUIT, or its input ended */
	upstream_close(&up, NULL);
	addrs_free(&rcpts);
	sk_server_free(srv);
	return rc;
}

/* ---- the command ---- */

int
cmd_sendmail(int argc, char **argv)
{
	struct sm_opts o;
	const char *name;
	int rc;

	memset(&o, 0, sizeof(o));
	name = strrchr(argv[0], '/') != NULL ? strrchr(argv[0], '/') + 1 :
	    argv[0];
	progname = name;
	cli_progname = name;
	if (strcmp(name, "mailq") == 0)
		o.mode = MODE_QUEUE;
	else if (strcmp(name, "newaliases") == 0)
		o.mode = MODE_ALIASES;
	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc == -2 ? EXIT_OK : rc;
	switch (o.mode) {
	case MODE_QUEUE:
		return sm_error(EXIT_UNAVAILABLE, "smtpkit has no queue yet "
		    "(the relay is not configured)");
	case MODE_ALIASES:
		/* Exit 0 as Postfix does: scripts run newaliases after
		 * editing /etc/aliases and must not fail over it. */
		fprintf(stderr, "%s: smtpkit keeps no aliases; /etc/aliases "
		    "is not read (a recipient without a domain gets the "
		    "sender's)\n", progname);
		return EXIT_OK;
	case MODE_DAEMON:
		return sm_error(EXIT_UNAVAILABLE, "smtpkit sendmail runs no "
		    "daemon (the relay will listen; it is not there yet)");
	case MODE_VERIFY:
		return sm_error(EXIT_UNAVAILABLE, "address verification (-bv, "
		    "-bt) is not supported");
	case MODE_SMTP:
		return run_smtp(&o);
	case MODE_DELIVER:
		break;
	}
	return run_deliver(&o);
}
