/*
 * smtpkit-mime.so: MIME composition with GMime 3 and libmagic.
 *
 * Loaded by src/lib/mime.c the first time a message is composed, so that
 * nothing else pays for GLib.  It exports two symbols (mime_module.h); the
 * pieces of libsmtpkit it uses (address and header checks, the Date and the
 * Message-ID) are linked in and kept private.
 *
 * The work is done in three passes, so that nothing is written unless all
 * of it can be:
 *  1. check what was given: addresses, headers, bodies, files (opened
 *     here, and their types found);
 *  2. build the GMimeMessage, then check every header block it will write
 *     (line lengths, 7-bit);
 *  3. write it, CRLF line ends, to fd; attachments are read from their
 *     files only now, in chunks, and base64-encoded on the way out.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <magic.h>

#include "smtpkit/error.h"
#include "smtpkit/message.h"
#include "smtpkit/mime.h"
#include "file.h"
#include "mime_module.h"

const int sk__mime_module_abi = SK__MIME_MODULE_ABI;

/* How much of a user's text, and of a path, an error message shows. */
#define SHOW_MAX	60
#define SHOW_PATH_MAX	256

/* RFC 6838 §4.2: type and subtype names are at most 127 characters. */
#define TYPE_NAME_MAX	127

/* A Content-ID is one header line with room to spare (RFC 5322 §2.1.1). */
#define CID_MAX		250

#define OCTET_STREAM	"application/octet-stream"

/*
 * The most read from a pipe or a device: far above what any provider
 * takes in one message (tens of MB), far below a full disk.
 */
#define SPOOL_MAX	((uint64_t)1 << 30)

/* How much of a file libmagic may read to find its type. */
#define MAGIC_BYTES	((size_t)1024 * 1024)

/* The headers smtpkit writes that a user's --header may replace. */
enum own {
	OWN_SUBJECT,
	OWN_TO,
	OWN_CC,
	OWN_REPLY_TO,
	OWN_DATE,
	OWN_MESSAGE_ID,
	OWN__COUNT
};

static const char *const own_names[OWN__COUNT] = {
	[OWN_SUBJECT] = "Subject",
	[OWN_TO] = "To",
	[OWN_CC] = "Cc",
	[OWN_REPLY_TO] = "Reply-To",
	[OWN_DATE] = "Date",
	[OWN_MESSAGE_ID] = "Message-ID",
};

/* An attachment or inline part, checked and opened. */
struct file {
	const struct sk_mime_file *f;
	const char *opt;	/* "--attach" or "--inline", for errors */
	bool inl;
	int fd;			/* -1 once a stream owns it */
	char *type;		/* "type/subtype", g_malloc'd */
	const char *name;	/* the file name shown */
	const char *cid;	/* inline only */
	char shown[SHOW_PATH_MAX + 16];	/* the path, for errors */
};

/* A text or html body, ready for GMime. */
struct body {
	GByteArray *data;	/* LF line ends */
	bool seven;		/* fit for 7bit as it is */
};

struct comp {
	const struct sk_mime *m;
	struct sk_error *err;
	const struct sk_mime_header *own[OWN__COUNT];
	struct file *files;
	size_t nfiles;
	struct body text, html;
	bool utf8_addr;		/* an address with a non-ASCII local part */
};

/*
 * Errors
 */

static int
fail(struct comp *c, enum sk_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
sys_fail(struct comp *c, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct comp *c, enum sk_error_kind kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)sk_error_setv(c->err, SK_STAGE_LOCAL, kind, fmt, ap);
	va_end(ap);
	return -1;
}

static int
sys_fail(struct comp *c, int e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)sk_error_setv(c->err, SK_STAGE_LOCAL, SK_ERR_LOCAL, fmt, ap);
	va_end(ap);
	if (c->err != NULL)
		c->err->sys_errno = e;
	return -1;
}

/*
 * s as it may appear in a one-line message: controls escaped, quotes and
 * backslashes too, cut after max octets (never inside a UTF-8 sequence).
 */
static void
show_max(char *out, size_t cap, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, i;

	for (i = 0; p[i] != '\0' && o + 8 < cap; i++) {
		if (i >= max && (p[i] & 0xc0) != 0x80) {
			(void)memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (p[i] == '"' || p[i] == '\\') {
			out[o++] = '\\';
			out[o++] = (char)p[i];
		} else if (p[i] == '\r' || p[i] == '\n' || p[i] == '\t') {
			out[o++] = '\\';
			out[o++] = p[i] == '\r' ? 'r' :
			    p[i] == '\n' ? 'n' : 't';
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 0x0f];
		} else
			out[o++] = (char)p[i];
	}
	out[o] = '\0';
}

static void
show(char *out, size_t cap, const char *s)
{
	show_max(out, cap, s, SHOW_MAX);
}

/*
 * Checks on what was given
 */

static int
check_mailbox(struct comp *c, const char *opt, const struct sk_mime_addr *a)
{
	const char *p, *at;
	char what[64];
	bool utf8;

	if (a->addr == NULL)
		return fail(c, SK_ERR_USAGE, "%s: the address is missing", opt);
	if (sk_addr_check(opt, a->addr, &utf8, c->err) == -1)
		return -1;
	/*
	 * A non-ASCII local part has no 7-bit form: the header carries it
	 * in UTF-8 (RFC 6532 §3.2), which the envelope already needs
	 * SMTPUTF8 for.  A non-ASCII domain is written as its A-label.
	 */
	if (utf8)
		for (p = a->addr, at = strrchr(a->addr, '@'); p < at; p++)
			if ((unsigned char)*p >= 0x80)
				c->utf8_addr = true;
	(void)snprintf(what, sizeof(what), "the %s name", opt);
	return sk_header_check(what, a->name, c->err);
}

static int
check_mailboxes(struct comp *c, const char *opt,
    const struct sk_mime_addr *list, size_t n)
{
	size_t i;

	if (n > 0 && list == NULL)
		return fail(c, SK_ERR_USAGE, "%s: the addresses are missing",
		    opt);
	for (i = 0; i < n; i++)
		if (check_mailbox(c, opt, &list[i]) == -1)
			return -1;
	return 0;
}

/* RFC 5322 §3.6.8: field-name = 1*ftext, printable ASCII but ':'. */
static bool
field_name_ok(const char *name)
{
	const unsigned char *p;

	if (*name == '\0')
		return false;
	for (p = (const unsigned char *)name; *p != '\0'; p++)
		if (*p < 33 || *p > 126 || *p == ':')
			return false;
	return true;
}

static int
check_headers(struct comp *c)
{
	const struct sk_mime_header *h;
	char name[SHOW_MAX + 16], value[SHOW_MAX + 16], what[SHOW_MAX + 32];
	const char *why;
	size_t i, k;

	if (c->m->nheaders > 0 && c->m->headers == NULL)
		return fail(c, SK_ERR_USAGE, "--header: the headers are "
		    "missing");
	for (i = 0; i < c->m->nheaders; i++) {
		h = &c->m->headers[i];
		show(name, sizeof(name), h->name != NULL ? h->name : "");
		show(value, sizeof(value), h->value != NULL ? h->value : "");
		if (h->name == NULL || !field_name_ok(h->name))
			return fail(c, SK_ERR_USAGE, "--header \"%s: %s\": a "
			    "header name is printable ASCII without spaces or "
			    "':' (RFC 5322 §3.6.8)", name, value);
		/* Lines are at most 998 octets; leave the value room. */
		if (strlen(h->name) > 76)
			return fail(c, SK_ERR_USAGE, "--header \"%s: %s\": the "
			    "name is %zu octets long; keep it within 76",
			    name, value, strlen(h->name));
		why = NULL;
		if (g_ascii_strcasecmp(h->name, "From") == 0)
			why = "use --from";
		else if (g_ascii_strcasecmp(h->name, "Bcc") == 0 ||
		    g_ascii_strcasecmp(h->name, "Resent-Bcc") == 0)
			/* Blind copies are envelope recipients only. */
			why = "use --bcc";
		else if (g_ascii_strcasecmp(h->name, "MIME-Version") == 0)
			why = "smtpkit writes MIME-Version itself";
		else if (g_ascii_strncasecmp(h->name, "Content-", 8) == 0)
			why = "smtpkit writes the Content- headers itself; use "
			    "--text, --html, --attach or --inline";
		if (why != NULL)
			return fail(c, SK_ERR_USAGE, "--header \"%s: %s\": %s",
			    name, value, why);
		(void)snprintf(what, sizeof(what), "--header \"%s\"", name);
		if (sk_header_check(what, h->value, c->err) == -1)
			return -1;
		for (k = 0; k < OWN__COUNT; k++) {
			if (g_ascii_strcasecmp(h->name, own_names[k]) != 0)
				continue;
			/* RFC 5322 §3.6: each of these at most once. */
			if (c->own[k] != NULL)
				return fail(c, SK_ERR_USAGE, "--header \"%s: "
				    "%s\": %s is given twice; a message has "
				    "one (RFC 5322 §3.6)", name, value,
				    own_names[k]);
			c->own[k] = h;
		}
	}
	return 0;
}

/*
 * A text or html body as GMime is given it: line ends as LF (RFC 5322
 * §2.3 wants CRLF on the wire; the writer turns every LF into CRLF), and
 * a last line end added when there is none, so that the message ends with
 * one (RFC 5321 §4.1.1.4).  A CR that is not part of a CRLF is kept, and
 * makes the part quoted-printable, where it travels as "=0D".
 */
static int
body_prepare(struct comp *c, const char *opt, const char *s, size_t len,
    struct body *b)
{
	const gchar *end;
	size_t i, start, line = 1, col = 0;
	bool seven = true;

	if (s == NULL && len > 0)
		return fail(c, SK_ERR_USAGE, "%s: the text is missing", opt);
	if (s == NULL)
		return 0;
	/* A GByteArray holds at most G_MAXUINT octets. */
	if (len >= G_MAXUINT)
		return fail(c, SK_ERR_DATA, "%s is too large (%zu octets)",
		    opt, len);
	if (!g_utf8_validate_len(s, len, &end)) {
		for (i = 0; s + i < end; i++)
			if (s[i] == '\n')
				line++;
		if (*end == '\0')
			return fail(c, SK_ERR_DATA, "%s contains a NUL octet "
			    "(line %zu): send binary data with --attach", opt,
			    line);
		return fail(c, SK_ERR_DATA, "%s is not valid UTF-8 (line "
		    "%zu): convert it first, e.g. with iconv -t UTF-8", opt,
		    line);
	}
	b->data = g_byte_array_sized_new((guint)len + 1);
	for (i = start = 0; i < len; i++) {
		if (s[i] == '\n') {
			col = 0;
		} else if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n') {
			/* CRLF: all but the CR, which the writer restores */
			g_byte_array_append(b->data, (const guint8 *)s + start,
			    (guint)(i - start));
			start = i + 1;
		} else if (s[i] == '\r' || (unsigned char)s[i] >= 0x80 ||
		    ++col > SK_LINE_MAX) {
			/* RFC 2045 §2.7: 7bit data is ASCII, without a bare
			 * CR, in lines of at most 998 octets. */
			seven = false;
		}
	}
	g_byte_array_append(b->data, (const guint8 *)s + start,
	    (guint)(len - start));
	if (b->data->len > 0 && b->data->data[b->data->len - 1] != '\n')
		g_byte_array_append(b->data, (const guint8 *)"\n", 1);
	b->seven = seven;
	return 0;
}

/* RFC 2045 §5.1: token, any CHAR but SPACE, CTLs and tspecials. */
static size_t
token_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (p[n] > 32 && p[n] < 127 &&
	    strchr("()<>@,;:\\\"/[]?=", p[n]) == NULL)
		n++;
	return n;
}

/* type "/" subtype, both tokens, nothing else (no parameters). */
static bool
media_type_ok(const char *t)
{
	size_t a, b;

	a = token_len(t);
	if (a == 0 || a > TYPE_NAME_MAX || t[a] != '/')
		return false;
	b = token_len(t + a + 1);
	return b > 0 && b <= TYPE_NAME_MAX && t[a + 1 + b] == '\0';
}

/*
 * A Content-ID (RFC 2045 §7) is a msg-id (RFC 5322 §3.6.4) without its
 * angle brackets: dot-atom-text, with at most one '@'.  What the html
 * refers to as "cid:..." (RFC 2392) must match it exactly, so it is taken
 * as given or refused, never rewritten.
 */
static const char *
cid_fault(const char *cid)
{
	const unsigned char *p;
	size_t n = strlen(cid);
	int ats = 0;

	if (n == 0)
		return "it is empty";
	if (n > CID_MAX)
		return "it is too long";
	if (cid[0] == '.' || cid[n - 1] == '.' || strstr(cid, "..") != NULL)
		return "a dot may only stand between other characters";
	for (p = (const unsigned char *)cid; *p != '\0'; p++) {
		if (*p == '@') {
			if (++ats > 1 || p == (const unsigned char *)cid ||
			    p[1] == '\0')
				return "it has a misplaced '@'";
			continue;
		}
		if (*p == ' ')
			return "it contains a space";
		if (*p < 33 || *p > 126)
			return "it contains a character outside printable "
			    "ASCII";
		/* atext (RFC 5322 §3.2.3) and '.' */
		if (!g_ascii_isalnum(*p) &&
		    strchr("!#$%&'*+-/=?^_`{|}~.", *p) == NULL)
			return "it contains one of ()<>[]:;,\\\"";
	}
	return NULL;
}

/*
 * A FIFO, a character device or a socket: read to its end, in chunks,
 * into an unnamed temporary file, and fp->fd becomes that file at offset
 * 0, so that libmagic and the GMime stream see a regular file.  At most
 * SPOOL_MAX octets, so that /dev/zero cannot fill the disk.  Fails with
 * SK_ERR_LOCAL (errno set).
 */
static int
file_spool(struct comp *c, struct file *fp, bool fifo)
{
	static const size_t chunk = (size_t)64 * 1024;
	const char *dir = "/tmp";
	struct pollfd pfd;
	uint64_t total = 0;
	char *buf;
	ssize_t r;
	int tfd, e;

	if ((tfd = sk__tmpfile(&dir)) == -1) {
		e = errno;
		return sys_fail(c, e, "%s %s: cannot make a temporary file "
		    "in %s: %s", fp->opt, fp->shown, dir, strerror(e));
	}
	/*
	 * A FIFO opened (O_NONBLOCK) before its writer reads as ended; poll
	 * waits for the writer's first bytes or its close, as cat would.
	 */
	pfd.fd = fp->fd;
	pfd.events = POLLIN;
	while (fifo && poll(&pfd, 1, -1) == -1)
		if (errno != EINTR) {
			e = errno;
			(void)close(tfd);
			return sys_fail(c, e, "%s %s: %s", fp->opt, fp->shown,
			    strerror(e));
		}
	buf = g_malloc(chunk);
	for (;;) {
		r = read(fp->fd, buf, chunk);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			e = errno;
			g_free(buf);
			(void)close(tfd);
			return sys_fail(c, e, "%s %s: %s", fp->opt, fp->shown,
			    strerror(e));
		}
		if (r == 0)
			break;
		if ((total += (uint64_t)r) > SPOOL_MAX) {
			g_free(buf);
			(void)close(tfd);
			return sys_fail(c, EFBIG, "%s %s: more than %llu MiB "
			    "read and it has not ended; no mail server takes "
			    "that much", fp->opt, fp->shown,
			    (unsigned long long)(SPOOL_MAX >> 20));
		}
		if (sk__write_all(tfd, buf, (size_t)r) == -1) {
			e = errno;
			g_free(buf);
			(void)close(tfd);
			return sys_fail(c, e, "%s %s: cannot copy it to a "
			    "temporary file in %s: %s", fp->opt, fp->shown, dir,
			    strerror(e));
		}
	}
	g_free(buf);
	if (lseek(tfd, 0, SEEK_SET) == -1) {
		e = errno;
		(void)close(tfd);
		return sys_fail(c, e, "%s %s: %s", fp->opt, fp->shown,
		    strerror(e));
	}
	(void)close(fp->fd);
	fp->fd = tfd;
	return 0;
}

static int
file_open(struct comp *c, struct file *fp)
{
	const struct sk_mime_file *f = fp->f;
	char what[SHOW_PATH_MAX + 64], cid[SHOW_MAX + 16];
	const char *why;
	struct stat st;
	int fl, e;

	if (f->path == NULL || *f->path == '\0')
		return fail(c, SK_ERR_USAGE, "%s needs a file", fp->opt);
	show_max(fp->shown, sizeof(fp->shown), f->path, SHOW_PATH_MAX);
	fp->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fp->fd == -1) {
		e = errno;
		return sys_fail(c, e, "%s %s: %s", fp->opt, fp->shown,
		    strerror(e));
	}
	if (fstat(fp->fd, &st) == -1) {
		e = errno;
		return sys_fail(c, e, "%s %s: %s", fp->opt, fp->shown,
		    strerror(e));
	}
	if (S_ISDIR(st.st_mode))
		return sys_fail(c, EISDIR, "%s %s: %s", fp->opt, fp->shown,
		    strerror(EISDIR));
	/*
	 * O_NONBLOCK was only so that opening a FIFO without a writer does
	 * not hang; reading, a pipe blocks until its writer is done.
	 */
	if ((fl = fcntl(fp->fd, F_GETFL)) == -1 ||
	    fcntl(fp->fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
		e = errno;
		return sys_fail(c, e, "%s %s: %s", fp->opt, fp->shown,
		    strerror(e));
	}
	/* A FIFO, a device or a socket can be read once, and not sought. */
	if (!S_ISREG(st.st_mode) &&
	    file_spool(c, fp, S_ISFIFO(st.st_mode)) == -1)
		return -1;

	if (f->name != NULL)
		fp->name = f->name;
	else
		fp->name = strrchr(f->path, '/') != NULL ?
		    strrchr(f->path, '/') + 1 : f->path;
	if (*fp->name == '\0')
		return fail(c, SK_ERR_USAGE, "%s %s: the file name shown is "
		    "empty", fp->opt, fp->shown);
	(void)snprintf(what, sizeof(what), "%s %s: the file name", fp->opt,
	    fp->shown);
	if (sk_header_check(what, fp->name, c->err) == -1)
		return -1;

	if (f->type != NULL) {
		if (!media_type_ok(f->type)) {
			show(what, sizeof(what), f->type);
			return fail(c, SK_ERR_USAGE, "%s %s: \"%s\" is not a "
			    "media type; give type/subtype, e.g. image/png",
			    fp->opt, fp->shown, what);
		}
		fp->type = g_strdup(f->type);
	}

	if (fp->inl) {
		fp->cid = f->cid != NULL ? f->cid : fp->name;
		if ((why = cid_fault(fp->cid)) != NULL) {
			show(cid, sizeof(cid), fp->cid);
			return fail(c, SK_ERR_USAGE, "%s %s: \"%s\" cannot be "
			    "a Content-ID (%s): give one made of letters, "
			    "digits and . - _", fp->opt, fp->shown, cid, why);
		}
	}
	return 0;
}

static int
check_files(struct comp *c)
{
	const struct sk_mime *m = c->m;
	struct file *fp;
	char cid[SHOW_MAX + 16];
	size_t i, k;

	if ((m->nattach > 0 && m->attach == NULL) ||
	    (m->ninl > 0 && m->inl == NULL))
		return fail(c, SK_ERR_USAGE, "%s: the files are missing",
		    m->nattach > 0 && m->attach == NULL ? "--attach" :
		    "--inline");
	/* RFC 2387: inline parts are what the html refers to. */
	if (m->ninl > 0 && m->html == NULL)
		return fail(c, SK_ERR_USAGE, "--inline needs --html: an "
		    "inline part is shown where the HTML refers to it "
		    "(<img src=\"cid:...\">)");
	if (m->nattach + m->ninl == 0)
		return 0;
	c->files = g_new0(struct file, m->nattach + m->ninl);
	for (i = 0; i < m->nattach + m->ninl; i++) {
		fp = &c->files[i];
		fp->fd = -1;
		fp->inl = i >= m->nattach;
		fp->f = fp->inl ? &m->inl[i - m->nattach] : &m->attach[i];
		fp->opt = fp->inl ? "--inline" : "--attach";
		c->nfiles = i + 1;
		if (file_open(c, fp) == -1)
			return -1;
		if (!fp->inl)
			continue;
		for (k = m->nattach; k < i; k++)
			if (strcmp(c->files[k].cid, fp->cid) == 0) {
				show(cid, sizeof(cid), fp->cid);
				return fail(c, SK_ERR_USAGE, "--inline %s: the "
				    "Content-ID \"%s\" is already that of "
				    "--inline %s", fp->shown, cid,
				    c->files[k].shown);
			}
	}
	return 0;
}

/*
 * The type of each file that has none, by its content (libmagic), opened
 * only when there is such a file.  A type libmagic cannot name, and an
 * empty file ("inode/x-empty"), become application/octet-stream, the type
 * of "arbitrary binary data" (RFC 2046 §4.5.1).
 */
static int
detect_types(struct comp *c)
{
	static const size_t magic_bytes = MAGIC_BYTES;
	magic_t mg = NULL;
	struct file *fp;
	const char *t, *why;
	size_t i;
	int rc = 0, e;

	for (i = 0; i < c->nfiles && rc == 0; i++) {
		fp = &c->files[i];
		if (fp->type != NULL)
			continue;
		if (mg == NULL) {
			if ((mg = magic_open(MAGIC_MIME_TYPE |
			    MAGIC_SYMLINK)) == NULL) {
				e = errno;
				return sys_fail(c, e, "cannot start libmagic "
				    "to find the type of %s %s: %s", fp->opt,
				    fp->shown, strerror(e));
			}
			/*
			 * libmagic reads up to 7 MiB of a file (file 5.41
			 * and later) into memory; the first 1 MiB, its
			 * old default, names every common type.
			 */
			(void)magic_setparam(mg, MAGIC_PARAM_BYTES_MAX,
			    &magic_bytes);
			if (magic_load(mg, NULL) == -1) {
				why = magic_error(mg);
				rc = fail(c, SK_ERR_LOCAL, "cannot load "
				    "libmagic's database to find the type of "
				    "%s %s: %s; give the type instead",
				    fp->opt, fp->shown, why != NULL ? why :
				    "unknown error");
				break;
			}
		}
		t = magic_descriptor(mg, fp->fd);
		if (t == NULL || !media_type_ok(t) ||
		    strncmp(t, "inode/", 6) == 0 ||
		    strcmp(t, "application/x-empty") == 0)
			t = OCTET_STREAM;
		fp->type = g_strdup(t);
		/* libmagic reads from the current offset and leaves it. */
		if (lseek(fp->fd, 0, SEEK_SET) == -1) {
			e = errno;
			rc = sys_fail(c, e, "%s %s: %s", fp->opt, fp->shown,
			    strerror(e));
		}
	}
	if (mg != NULL)
		magic_close(mg);
	return rc;
}

/*
 * Building the message
 */

static GMimeObject *
text_part(const char *subtype, struct body *b)
{
	GMimeContentEncoding enc;
	GMimeDataWrapper *w;
	GMimeStream *s;
	GMimePart *part;
	bool seven = b->data == NULL || b->seven;

	if (b->data == NULL)
		b->data = g_byte_array_new();
	part = g_mime_part_new_with_type("text", subtype);
	g_mime_object_set_content_type_parameter(GMIME_OBJECT(part),
	    "charset", "utf-8");
	s = g_mime_stream_mem_new_with_byte_array(b->data);
	b->data = NULL;		/* the stream owns it */
	w = g_mime_data_wrapper_new_with_stream(s,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(part, w);
	g_object_unref(w);
	g_object_unref(s);
	/*
	 * 7bit when the text allows (RFC 2045 §2.7), else quoted-printable,
	 * or base64 when a sixth or more of it is 8-bit (the shorter then):
	 * never 8bit, so that no server needs 8BITMIME (RFC 6152).  GMime
	 * answers "default" for 7bit, and quoted-printable for a line
	 * starting "From " (which mbox files would mangle); its measure
	 * misses a bare CR, ours does not.
	 */
	enc = g_mime_part_get_best_content_encoding(part,
	    GMIME_ENCODING_CONSTRAINT_7BIT);
	if (enc == GMIME_CONTENT_ENCODING_DEFAULT ||
	    enc == GMIME_CONTENT_ENCODING_7BIT)
		enc = seven ? GMIME_CONTENT_ENCODING_7BIT :
		    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
	else if (enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
	    enc != GMIME_CONTENT_ENCODING_BASE64)
		enc = GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
	g_mime_part_set_content_encoding(part, enc);
	return GMIME_OBJECT(part);
}

/*
 * Left to itself GMime encodes a parameter in the smallest charset that
 * holds it (ISO-8859-5 for Cyrillic...); UTF-8 is what every client
 * reads, so say so (RFC 2231 §4: charset'language'value).
 */
static void
param_utf8(GMimeParamList *l, const char *name)
{
	GMimeParam *p;

	if (l != NULL && (p = g_mime_param_list_get_parameter(l, name)) != NULL)
		g_mime_param_set_charset(p, "utf-8");
}

static GMimeObject *
file_part(struct file *fp)
{
	GMimeDataWrapper *w;
	GMimeStream *s;
	GMimePart *part;
	char *slash;

	slash = strchr(fp->type, '/');
	*slash = '\0';
	part = g_mime_part_new_with_type(fp->type, slash + 1);
	*slash = '/';
	/* Read when the message is written, in chunks: the file is never
	 * held in memory whole. */
	s = g_mime_stream_fs_new(fp->fd);
	fp->fd = -1;		/* the stream closes it */
	w = g_mime_data_wrapper_new_with_stream(s,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(part, w);
	g_object_unref(w);
	g_object_unref(s);
	/* Always base64, so that even a text file arrives octet for octet:
	 * no line-end conversion, no 998-octet lines (RFC 2045 §6.8). */
	g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);
	/* RFC 2183 §2: Content-Disposition, with the file name; a
	 * non-ASCII name as RFC 2231 §4 parameters, see the format options. */
	g_mime_object_set_disposition(GMIME_OBJECT(part), fp->inl ?
	    GMIME_DISPOSITION_INLINE : GMIME_DISPOSITION_ATTACHMENT);
	/* Also Content-Type's "name", where older clients look. */
	g_mime_part_set_filename(part, fp->name);
	param_utf8(g_mime_content_disposition_get_parameters(
	    g_mime_object_get_content_disposition(GMIME_OBJECT(part))),
	    "filename");
	param_utf8(g_mime_content_type_get_parameters(
	    g_mime_object_get_content_type(GMIME_OBJECT(part))), "name");
	if (fp->inl)
		g_mime_object_set_content_id(GMIME_OBJECT(part), fp->cid);
	return GMIME_OBJECT(part);
}

static void
multipart_add(GMimeMultipart *mp, GMimeObject *part)
{
	g_mime_multipart_add(mp, part);
	g_object_unref(part);
}

/*
 * The body's structure (mime.h):
 *   text/plain | text/html | multipart/alternative (text, html),
 *   the html inside multipart/related (html, inline parts...) when there
 *   are inline parts, and all of it inside multipart/mixed (body,
 *   attachments...) when there are attachments.
 */
static GMimeObject *
body_build(struct comp *c)
{
	GMimeObject *text = NULL, *html = NULL, *body;
	GMimeMultipart *mp;
	size_t i;

	if (c->m->text != NULL)
		text = text_part("plain", &c->text);
	if (c->m->html != NULL) {
		html = text_part("html", &c->html);
		if (c->m->ninl > 0) {
			/*
			 * RFC 2387 §3.1: "type" names the root, the first
			 * part; each inline part is found by its
			 * Content-ID (§3.3).
			 */
			mp = g_mime_multipart_new_with_subtype("related");
			g_mime_object_set_content_type_parameter(
			    GMIME_OBJECT(mp), "type", "text/html");
			multipart_add(mp, html);
			for (i = 0; i < c->nfiles; i++)
				if (c->files[i].inl)
					multipart_add(mp,
					    file_part(&c->files[i]));
			html = GMIME_OBJECT(mp);
		}
	}
	if (text != NULL && html != NULL) {
		/* RFC 2046 §5.1.4: simplest first, the richest last. */
		mp = g_mime_multipart_new_with_subtype("alternative");
		multipart_add(mp, text);
		multipart_add(mp, html);
		body = GMIME_OBJECT(mp);
	} else if (text != NULL)
		body = text;
	else if (html != NULL)
		body = html;
	else
		body = text_part("plain", &c->text);
	if (c->m->nattach > 0) {
		mp = g_mime_multipart_new_with_subtype("mixed");
		multipart_add(mp, body);
		for (i = 0; i < c->nfiles; i++)
			if (!c->files[i].inl)
				multipart_add(mp, file_part(&c->files[i]));
		body = GMIME_OBJECT(mp);
	}
	return body;
}

/*
 * Text that holds "=?" could be taken for an encoded word: RFC 2047 §6.1
 * readers decode whatever looks like one, so "=?utf-8?q?Bank?=" typed by
 * a user would be shown as "Bank".  GMime writes ASCII text as it is, so
 * such text goes out as encoded words of its own (sk_rfc2047_encode
 * encodes all of a value that holds "=?").
 */
static bool
looks_encoded(const char *s)
{
	return s != NULL && strstr(s, "=?") != NULL;
}

/*
 * Append to out (at *len, NUL-terminated, cap octets) the encoded words
 * for text, lead octets into its line, folds as "\n " (GMime writes the
 * line ends of the format options).  Returns -1 if cap is too small.
 */
static int
words_append(char *out, size_t cap, size_t *len, const char *text,
    size_t lead)
{
	char *p = out + *len, *w = p;
	size_t n, i;

	if ((n = sk_rfc2047_encode(text, lead, p, cap - *len)) == (size_t)-1)
		return -1;
	/* CRLF SP to LF SP, in place. */
	for (i = 0; i < n; i++)
		if (p[i] != '\r')
			*w++ = p[i];
	*w = '\0';
	*len += (size_t)(w - p);
	return 0;
}

/* The octets encoded words for text may take, folds included. */
static size_t
words_cap(const char *text)
{
	size_t n = strlen(text);

	/* Base64 is 4/3; each word of at most 75 octets has 12 of
	 * "=?UTF-8?B??=" and a fold of 3. */
	return n / 3 * 4 + 4 + (n / 40 + 2) * 16 + 1;
}

/*
 * Set the raw value of a message header that holds text with a lookalike
 * encoded word, h being the header written with the plain text.
 */
static int
header_raw_words(struct comp *c, GMimeHeader *h, const char *name,
    const char *text)
{
	size_t cap = words_cap(text) + 3, len = 1;
	char *raw;
	int rc = 0;

	if ((raw = malloc(cap)) == NULL)
		return sys_fail(c, ENOMEM, "out of memory");
	raw[0] = ' ';
	raw[1] = '\0';
	if (words_append(raw, cap - 1, &len, text, strlen(name) + 2) == -1)
		rc = fail(c, SK_ERR_USAGE, "the %s header is too long", name);
	else {
		raw[len++] = '\n';
		raw[len] = '\0';
		g_mime_header_set_raw_value(h, raw);
	}
	free(raw);
	return rc;
}

static const char *
address_field(GMimeAddressType type)
{
	switch (type) {
	case GMIME_ADDRESS_TYPE_FROM:
		return "From";
	case GMIME_ADDRESS_TYPE_TO:
		return "To";
	case GMIME_ADDRESS_TYPE_CC:
		return "Cc";
	case GMIME_ADDRESS_TYPE_REPLY_TO:
		return "Reply-To";
	default:
		return NULL;
	}
}

/*
 * Write name as an RFC 5322 §3.2.4 quoted-string at out (room for twice
 * its length and 3 more); returns the octets written, NUL not counted.
 */
static size_t
quoted_append(char *out, const char *name)
{
	size_t n = 0;

	out[n++] = '"';
	for (; *name != '\0'; name++) {
		if (*name == '"' || *name == '\\')
			out[n++] = '\\';
		out[n++] = *name;
	}
	out[n++] = '"';
	out[n] = '\0';
	return n;
}

/*
 * An address field with a display name that holds "=?", written by hand:
 * GMime would write that name as an atom, which readers decode.  One
 * mailbox a line: "words <addr>,\n words <addr>\n".
 */
static int
mailboxes_raw(struct comp *c, GMimeMessage *msg, const char *name,
    const struct sk_mime_addr *list, size_t n)
{
	GMimeHeader *h;
	size_t cap = 2, len = 0, i, lead;
	char *raw;
	int rc = 0;

	for (i = 0; i < n; i++)
		cap += words_cap(list[i].name != NULL ? list[i].name : "") +
		    (list[i].name != NULL ? 2 * strlen(list[i].name) : 0) +
		    strlen(list[i].addr) + 8;
	if ((raw = malloc(cap)) == NULL)
		return sys_fail(c, ENOMEM, "out of memory");
	raw[0] = '\0';
	for (i = 0; i < n && rc == 0; i++) {
		lead = i == 0 ? strlen(name) + 2 : 1;
		raw[len++] = ' ';
		raw[len] = '\0';
		if (list[i].name != NULL && list[i].name[0] != '\0') {
			if (g_str_is_ascii(list[i].name) &&
			    !looks_encoded(list[i].name))
				len += quoted_append(raw + len, list[i].name);
			else if (words_append(raw, cap, &len, list[i].name,
			    lead) == -1) {
				rc = fail(c, SK_ERR_USAGE, "the %s header is "
				    "too long", name);
				break;
			}
			raw[len++] = ' ';
		}
		len += (size_t)snprintf(raw + len, cap - len, "<%s>%s",
		    list[i].addr, i + 1 < n ? ",\n" : "\n");
	}
	if (rc == 0 && (h = g_mime_header_list_get_header(
	    g_mime_object_get_header_list(GMIME_OBJECT(msg)), name)) != NULL)
		g_mime_header_set_raw_value(h, raw);
	free(raw);
	return rc;
}

static int
add_mailboxes(struct comp *c, GMimeMessage *msg, GMimeAddressType type,
    const struct sk_mime_addr *list, size_t n)
{
	InternetAddressList *l = g_mime_message_get_addresses(msg, type);
	InternetAddress *ia;
	bool lookalike = false;
	size_t i;

	for (i = 0; i < n; i++) {
		ia = internet_address_mailbox_new(list[i].name, list[i].addr);
		/* A non-ASCII name as UTF-8 encoded words (RFC 2047 §5 (3)),
		 * not in the smallest charset that happens to hold it. */
		internet_address_set_charset(ia, "utf-8");
		internet_address_list_add(l, ia);
		g_object_unref(ia);
		lookalike = lookalike || looks_encoded(list[i].name);
	}
	if (lookalike)
		return mailboxes_raw(c, msg, address_field(type), list, n);
	return 0;
}

/* Names in UTF-8 encoded words, members of groups included. */
static void
list_utf8(InternetAddressList *l)
{
	InternetAddress *ia;
	int i;

	for (i = 0; l != NULL && i < internet_address_list_length(l); i++) {
		ia = internet_address_list_get_address(l, i);
		internet_address_set_charset(ia, "utf-8");
		if (INTERNET_ADDRESS_IS_GROUP(ia))
			list_utf8(internet_address_group_get_members(
			    INTERNET_ADDRESS_GROUP(ia)));
	}
}

/*
 * A header the user gave in place of ours; its value may be UTF-8.  An
 * address list is parsed by GMime, which then writes it again, display
 * names encoded.
 */
static void
set_own(GMimeMessage *msg, const struct sk_mime_header *h,
    const char *name, int type)
{
	g_mime_object_set_header(GMIME_OBJECT(msg), name,
	    h->value != NULL ? h->value : "", "utf-8");
	if (type >= 0)
		list_utf8(g_mime_message_get_addresses(msg,
		    (GMimeAddressType)type));
}

static int
message_build(struct comp *c, GMimeMessage **out)
{
	const struct sk_mime *m = c->m;
	GMimeMessage *msg;
	char date[64], id[512];
	const char *domain;
	GMimeHeaderList *hl;
	const char *subject;
	gchar *ascii = NULL;
	size_t n;

	*out = NULL;
	if (c->own[OWN_DATE] == NULL && sk_rfc5322_date(m->now != 0 ?
	    m->now : time(NULL), date, sizeof(date)) == (size_t)-1)
		return sys_fail(c, EOVERFLOW, "cannot write the Date header: "
		    "the time is out of range");
	if (c->own[OWN_MESSAGE_ID] == NULL) {
		/*
		 * RFC 5322 §3.6.4: id-right is the From domain (a name, or
		 * an address literal); an internationalized one as its
		 * A-label (RFC 5890 §2.3.2.1), header text being ASCII.
		 */
		domain = strrchr(m->from.addr, '@') + 1;
		if (!g_str_is_ascii(domain) &&
		    (domain = ascii = g_hostname_to_ascii(domain)) == NULL)
			return fail(c, SK_ERR_USAGE, "--from: the domain of "
			    "%s is not a valid internationalized domain name",
			    m->from.addr);
		errno = 0;
		n = sk_message_id(domain, id, sizeof(id));
		g_free(ascii);
		if (n == (size_t)-1)
			return sys_fail(c, errno != 0 ? errno : EIO, "cannot "
			    "make a Message-ID: %s", strerror(errno != 0 ?
			    errno : EIO));
	}

	/* The order people expect: originator, recipients, subject, date,
	 * identification (RFC 5322 §3.6 does not impose one). */
	msg = g_mime_message_new(FALSE);
	hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	if (add_mailboxes(c, msg, GMIME_ADDRESS_TYPE_FROM, &m->from, 1) == -1)
		goto fail;
	if (c->own[OWN_TO] != NULL)
		set_own(msg, c->own[OWN_TO], "To", GMIME_ADDRESS_TYPE_TO);
	else if (m->nto > 0) {
		if (add_mailboxes(c, msg, GMIME_ADDRESS_TYPE_TO, m->to,
		    m->nto) == -1)
			goto fail;
	} else if (m->ncc == 0 && c->own[OWN_CC] == NULL) {
		/* RFC 5322 §A.1.3: every recipient is hidden. */
		g_mime_object_set_header(GMIME_OBJECT(msg), "To",
		    "undisclosed-recipients:;", NULL);
		g_mime_header_set_raw_value(g_mime_header_list_get_header(
		    g_mime_object_get_header_list(GMIME_OBJECT(msg)), "To"),
		    " undisclosed-recipients:;\n");
	}
	if (c->own[OWN_CC] != NULL)
		set_own(msg, c->own[OWN_CC], "Cc", GMIME_ADDRESS_TYPE_CC);
	else if (add_mailboxes(c, msg, GMIME_ADDRESS_TYPE_CC, m->cc,
	    m->ncc) == -1)
		goto fail;
	if (c->own[OWN_REPLY_TO] != NULL)
		set_own(msg, c->own[OWN_REPLY_TO], "Reply-To",
		    GMIME_ADDRESS_TYPE_REPLY_TO);
	else if (add_mailboxes(c, msg, GMIME_ADDRESS_TYPE_REPLY_TO,
	    m->reply_to, m->nreply_to) == -1)
		goto fail;
	/* Unstructured text: RFC 2047 encoded words when not ASCII. */
	if (c->own[OWN_SUBJECT] != NULL)
		set_own(msg, c->own[OWN_SUBJECT], "Subject", -1);
	else if (m->subject != NULL)
		g_mime_message_set_subject(msg, m->subject, "utf-8");
	subject = c->own[OWN_SUBJECT] != NULL ? c->own[OWN_SUBJECT]->value :
	    m->subject;
	if (looks_encoded(subject) && header_raw_words(c,
	    g_mime_header_list_get_header(hl, "Subject"), "Subject",
	    subject) == -1)
		goto fail;
	if (c->own[OWN_DATE] != NULL)
		set_own(msg, c->own[OWN_DATE], "Date", -1);
	else
		g_mime_object_set_header(GMIME_OBJECT(msg), "Date", date,
		    NULL);
	if (c->own[OWN_MESSAGE_ID] != NULL)
		set_own(msg, c->own[OWN_MESSAGE_ID], "Message-ID", -1);
	else
		g_mime_object_set_header(GMIME_OBJECT(msg), "Message-ID", id,
		    NULL);
	/* RFC 2045 §4 */
	g_mime_object_set_header(GMIME_OBJECT(msg), "MIME-Version", "1.0",
	    NULL);
	for (n = 0; n < m->nheaders; n++) {
		if (c->own[OWN_SUBJECT] == &m->headers[n] ||
		    c->own[OWN_TO] == &m->headers[n] ||
		    c->own[OWN_CC] == &m->headers[n] ||
		    c->own[OWN_REPLY_TO] == &m->headers[n] ||
		    c->own[OWN_DATE] == &m->headers[n] ||
		    c->own[OWN_MESSAGE_ID] == &m->headers[n])
			continue;
		g_mime_object_append_header(GMIME_OBJECT(msg),
		    m->headers[n].name, m->headers[n].value != NULL ?
		    m->headers[n].value : "", "utf-8");
		if (looks_encoded(m->headers[n].value) && header_raw_words(c,
		    g_mime_header_list_get_header_at(hl,
		    g_mime_header_list_get_count(hl) - 1), m->headers[n].name,
		    m->headers[n].value) == -1)
			goto fail;
	}
	*out = msg;
	return 0;
fail:
	g_object_unref(msg);
	return -1;
}

/* The fields that hold the addresses given (check_mailbox). */
static bool
addr_field(const char *name)
{
	return g_ascii_strcasecmp(name, "From") == 0 ||
	    g_ascii_strcasecmp(name, "To") == 0 ||
	    g_ascii_strcasecmp(name, "Cc") == 0 ||
	    g_ascii_strcasecmp(name, "Reply-To") == 0;
}

/*
 * Whether a header block, as it will be written, keeps to RFC 5322 §2.1.1
 * (lines of at most 998 octets) and to ASCII (RFC 5322 §2.2; 8-bit only
 * where allowed, in the address fields when an address has no ASCII
 * form).  GMime folds and encodes, but a single long word of plain ASCII
 * has no place to fold.
 */
static int
headers_check(struct comp *c, GMimeObject *obj, GMimeFormatOptions *fmt,
    bool allow_8bit)
{
	char name[SHOW_MAX + 16];
	const char *p, *eol, *field = NULL;
	size_t len, flen = 0, i;
	char *h;
	int rc = 0;

	h = g_mime_object_get_headers(obj, fmt);
	for (p = h; p != NULL && *p != '\0' && rc == 0; p = eol) {
		if ((eol = strchr(p, '\n')) != NULL)
			len = (size_t)(eol++ - p);
		else
			len = strlen(p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (*p != ' ' && *p != '\t') {
			field = p;
			flen = (size_t)((const char *)memchr(p, ':', len) !=
			    NULL ? (const char *)memchr(p, ':', len) - p : 0);
		}
		if (field != NULL && flen < sizeof(name)) {
			(void)memcpy(name, field, flen);
			name[flen] = '\0';
		} else
			name[0] = '\0';
		if (len > SK_LINE_MAX)
			rc = fail(c, SK_ERR_USAGE, "the %s header has a word "
			    "too long to fold within 998-octet lines (RFC 5322 "
			    "§2.1.1); break it with spaces", name);
		for (i = 0; i < len && rc == 0 && !(allow_8bit &&
		    addr_field(name)); i++)
			if ((unsigned char)p[i] >= 0x80)
				rc = fail(c, SK_ERR_USAGE, "the %s header "
				    "cannot be written in ASCII", name);
	}
	g_free(h);
	return rc;
}

struct walk {
	struct comp *c;
	GMimeFormatOptions *fmt;
	int rc;
};

static void
walk_part(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	struct walk *w = data;

	if (w->rc == 0)
		w->rc = headers_check(w->c, part, w->fmt, false);
}

/*
 * Writing
 */

static int
message_write(struct comp *c, GMimeMessage *msg, GMimeFormatOptions *fmt,
    int fd)
{
	GMimeStream *out, *buf;
	int dfd, e = 0;

	/*
	 * A stream over a duplicate, so that closing it leaves the caller's
	 * fd open.  GMimeStreamPipe writes at the descriptor's offset and
	 * its flush is a no-op; GMimeStreamFs would lseek() before every
	 * write and fsync() on flush, which fails on a pipe or a socket.
	 */
	if ((dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		e = errno;
		return sys_fail(c, e, "cannot write the message: %s",
		    strerror(e));
	}
	out = g_mime_stream_pipe_new(dfd);
	buf = g_mime_stream_buffer_new(out, GMIME_STREAM_BUFFER_BLOCK_WRITE);
	errno = 0;
	if (g_mime_object_write_to_stream(GMIME_OBJECT(msg), fmt, buf) == -1 ||
	    g_mime_stream_flush(buf) == -1)
		e = errno != 0 ? errno : EIO;
	if (g_mime_stream_close(out) == -1 && e == 0)
		e = errno != 0 ? errno : EIO;
	g_object_unref(buf);
	g_object_unref(out);
	if (e != 0)
		return sys_fail(c, e, "cannot write the message: %s",
		    strerror(e));
	return 0;
}

static void
comp_fini(struct comp *c)
{
	size_t i;

	for (i = 0; i < c->nfiles; i++) {
		if (c->files[i].fd != -1)
			(void)close(c->files[i].fd);
		g_free(c->files[i].type);
	}
	g_free(c->files);
	if (c->text.data != NULL)
		g_byte_array_unref(c->text.data);
	if (c->html.data != NULL)
		g_byte_array_unref(c->html.data);
}

static void
module_init(void)
{
	static gsize done;

	if (g_once_init_enter(&done)) {
		g_mime_init();
		g_once_init_leave(&done, 1);
	}
}

int
sk__mime_module_compose(const struct sk_mime *m, int fd,
    struct sk_error *err)
{
	struct comp c;
	GMimeFormatOptions *fmt = NULL;
	GMimeMessage *msg = NULL;
	GMimeObject *body;
	struct walk w;
	int rc = -1;

	memset(&c, 0, sizeof(c));
	c.m = m;
	c.err = err;
	if (m == NULL)
		return fail(&c, SK_ERR_USAGE, "no message to compose");
	if (m->from.addr == NULL)
		return fail(&c, SK_ERR_USAGE, "a message needs a From "
		    "address (--from)");
	module_init();

	if (check_mailbox(&c, "--from", &m->from) == -1 ||
	    check_mailboxes(&c, "--to", m->to, m->nto) == -1 ||
	    check_mailboxes(&c, "--cc", m->cc, m->ncc) == -1 ||
	    check_mailboxes(&c, "--reply-to", m->reply_to,
	    m->nreply_to) == -1 ||
	    sk_header_check("--subject", m->subject, err) == -1 ||
	    check_headers(&c) == -1 ||
	    body_prepare(&c, "--text", m->text, m->text_len, &c.text) == -1 ||
	    body_prepare(&c, "--html", m->html, m->html_len, &c.html) == -1 ||
	    check_files(&c) == -1 || detect_types(&c) == -1 ||
	    message_build(&c, &msg) == -1)
		goto out;

	body = body_build(&c);
	g_mime_message_set_mime_part(msg, body);
	g_object_unref(body);

	fmt = g_mime_format_options_new();
	/* RFC 5322 §2.1: CRLF line ends, on the wire as in the file. */
	g_mime_format_options_set_newline_format(fmt,
	    GMIME_NEWLINE_FORMAT_DOS);
	/* RFC 2231 §4 for non-ASCII file names, not RFC 2047 words, which
	 * RFC 2047 §5 rules out inside a quoted-string parameter. */
	g_mime_format_options_set_param_encoding_method(fmt,
	    GMIME_PARAM_ENCODING_METHOD_RFC2231);

	if (headers_check(&c, GMIME_OBJECT(msg), fmt, c.utf8_addr) == -1)
		goto out;
	w.c = &c;
	w.fmt = fmt;
	w.rc = 0;
	g_mime_message_foreach(msg, walk_part, &w);
	if (w.rc == -1)
		goto out;

	rc = message_write(&c, msg, fmt, fd);
out:
	if (msg != NULL)
		g_object_unref(msg);
	if (fmt != NULL)
		g_mime_format_options_free(fmt);
	comp_fini(&c);
	return rc;
}
