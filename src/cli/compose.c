/*
 * smtpkit send: the arguments that make a message, turned into what
 * sk_mime_compose takes, and the message composed into a file.
 *
 * Only the command line is understood here: address lists become
 * mailboxes (the library's RFC 5322 parser), "FILE;type=T;name=N" becomes
 * a struct sk_mime_file, "Name: value" a struct sk_mime_header.  What a
 * message is made of, and every check on it, is the library's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtpkit/addrlist.h"
#include "smtpkit/message.h"
#include "smtpkit/mime.h"
#include "cli.h"
#include "file.h"

#define TEXT_FILE_MAX (64u * 1024 * 1024)

/* ---- mailboxes ---- */

int
cli_mailboxes_add(struct cli_mailboxes *l, const char *addr, const char *name)
{
	char **na, **nn;
	size_t ncap;

	if (l->n == l->cap) {
		ncap = l->cap != 0 ? l->cap * 2 : 8;
		if ((na = realloc(l->addr, ncap * sizeof(*na))) == NULL)
			return -1;
		l->addr = na;
		if ((nn = realloc(l->name, ncap * sizeof(*nn))) == NULL)
			return -1;
		l->name = nn;
		l->cap = ncap;
	}
	if ((l->addr[l->n] = strdup(addr)) == NULL)
		return -1;
	if ((l->name[l->n] = strdup(name != NULL ? name : "")) == NULL) {
		free(l->addr[l->n]);
		return -1;
	}
	l->n++;
	return 0;
}

void
cli_mailboxes_clear(struct cli_mailboxes *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->addr[i]);
		free(l->name[i]);
	}
	l->n = 0;
}

void
cli_mailboxes_free(struct cli_mailboxes *l)
{
	cli_mailboxes_clear(l);
	free(l->addr);
	free(l->name);
	memset(l, 0, sizeof(*l));
}

struct collect {
	struct cli_mailboxes *l;
	const char *flag;
	const char *text;
	bool single;		/* --from: one mailbox, no group */
	struct sk_error *err;
};

static int
collect_mailbox(void *arg, const struct sk_mailbox *mb)
{
	struct collect *c = arg;
	char what[64];

	if (!mb->has_domain) {
		(void)sk_error_set(c->err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: %s \"%s\": %s has no domain (write it as %s@domain)",
		    c->flag, c->text, mb->addr, mb->addr);
		return 1;
	}
	if (c->single && (mb->group[0] != '\0' || c->l->n > 0)) {
		(void)sk_error_set(c->err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: %s \"%s\": give one address", c->flag, c->text);
		return 1;
	}
	(void)snprintf(what, sizeof(what), "%s display name", c->flag);
	if (sk_header_check(what, mb->name, c->err) == -1)
		return 1;
	if (cli_mailboxes_add(c->l, mb->addr, mb->name) == -1) {
		(void)sk_error_set(c->err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
		return 1;
	}
	return 0;
}

static int
mailboxes_parse(struct cli_mailboxes *l, const char *flag, const char *text,
    bool single, struct sk_error *err)
{
	struct sk_error e;
	struct collect c = { l, flag, text, single, &e };

	sk_error_clear(&e);
	if (sk_addrlist_parse(text, strlen(text), collect_mailbox, &c,
	    &e) == -1) {
		if (e.kind == SK_ERR_DATA)	/* syntax: the user's argument */
			(void)sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
			    "send: %s \"%s\": not an address list: %s", flag,
			    text, e.message);
		else if (err != NULL)
			*err = e;
		return -1;
	}
	return 0;
}

int
cli_mailboxes_parse(struct cli_mailboxes *l, const char *flag,
    const char *text, struct sk_error *err)
{
	return mailboxes_parse(l, flag, text, false, err);
}

int
cli_mailbox_parse(const char *flag, const char *text, char **addr,
    char **name, struct sk_error *err)
{
	struct cli_mailboxes l;

	memset(&l, 0, sizeof(l));
	*addr = *name = NULL;
	if (mailboxes_parse(&l, flag, text, true, err) == -1) {
		cli_mailboxes_free(&l);
		return -1;
	}
	if (l.n != 1) {
		cli_mailboxes_free(&l);
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: %s \"%s\": give one address", flag, text);
	}
	*addr = l.addr[0];
	*name = l.name[0];
	free(l.addr);
	free(l.name);
	return 0;
}

/* ---- --attach, --inline, --header ---- */

/* What a file given as "-" becomes; compared by address. */
static const char stdin_path[] = "/dev/stdin";

/* Standard input can be read once: the second option to want it is a
 * mistake.  *by is the flag that has it, or NULL. */
static int
stdin_claim(const char **by, const char *flag, struct sk_error *err)
{
	if (*by != NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: %s - and %s -: standard input can give only one "
		    "of them", *by, flag);
	*by = flag;
	return 0;
}

/* Length of "key" when seg starts with "key=", a key being letters,
 * digits and '-'; 0 when it does not look like one. */
static size_t
key_len(const char *seg)
{
	size_t n = 0;

	while ((seg[n] >= 'a' && seg[n] <= 'z') ||
	    (seg[n] >= 'A' && seg[n] <= 'Z') ||
	    (seg[n] >= '0' && seg[n] <= '9') || seg[n] == '-')
		n++;
	return n > 0 && seg[n] == '=' ? n : 0;
}

/*
 * "FILE[;type=T][;name=N][;cid=C]": the keys are taken from the end, and
 * only there, so that a ';' in a file name stays part of it.  An unknown
 * key is a mistake, unless what it would end is a file that exists
 * ("report;v=2.pdf").  *buf (owned) holds the strings f points into.
 */
static int
file_arg_parse(const char *flag, const char *arg, bool inl,
    struct sk_mime_file *f, char **buf, struct sk_error *err)
{
	struct stat st;
	const char **slot;
	char *s, *semi, *seg;
	size_t k;

	memset(f, 0, sizeof(*f));
	if ((s = *buf = strdup(arg)) == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	while ((semi = strrchr(s, ';')) != NULL) {
		seg = semi + 1;
		if ((k = key_len(seg)) == 0)
			break;
		if (k == 4 && strncasecmp(seg, "type", 4) == 0)
			slot = &f->type;
		else if (k == 4 && strncasecmp(seg, "name", 4) == 0)
			slot = &f->name;
		else if (k == 3 && strncasecmp(seg, "cid", 3) == 0 && inl)
			slot = &f->cid;
		else if (stat(s, &st) == 0)
			break;		/* "a;b=c" is a file's name */
		else if (k == 3 && strncasecmp(seg, "cid", 3) == 0)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
			    "send: %s %s: cid= is for --inline", flag, arg);
		else
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
			    "send: %s %s: unknown key %.*s= (use type=, name=%s)",
			    flag, arg, (int)k, seg, inl ? ", cid=" : "");
		if (*slot != NULL)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
			    "send: %s %s: %.*s= is given twice", flag, arg,
			    (int)k, seg);
		if (seg[k + 1] == '\0')
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
			    "send: %s %s: %.*s= is empty", flag, arg, (int)k,
			    seg);
		*slot = seg + k + 1;
		*semi = '\0';
	}
	f->path = s;
	if (*s == '\0')
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "send: %s %s: no file name", flag, arg);
	if (strcmp(s, "-") == 0) {
		/* Standard input has no name to show. */
		if (f->name == NULL)
			return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
			    "send: %s -: give the name shown, e.g. "
			    "'-;name=backup.sql.gz'", flag);
		/* On Linux, fd 0's file, opened anew: a pipe stays one. */
		f->path = stdin_path;
	}
	return 0;	/* the values are the library's to check */
}

/* "Name: value", white space around the value dropped; the library
 * checks the name and the value. */
static int
header_arg_parse(const char *arg, struct sk_mime_header *h, char **buf,
    struct sk_error *err)
{
	char *s, *colon, *v, *end;

	if ((s = *buf = strdup(arg)) == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	if ((colon = strchr(s, ':')) == NULL || colon == s)
		goto bad;
	*colon = '\0';
	/* RFC 5322 §3.6.8: a field name is visible ASCII but ':' */
	for (v = s; *v != '\0'; v++)
		if ((unsigned char)*v <= ' ' || (unsigned char)*v >= 127)
			goto bad;
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	h->name = s;
	h->value = v;
	return 0;
bad:
	return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
	    "send: --header \"%s\": give it as \"Name: value\"", arg);
}

/* ---- text and HTML ---- */

/* The whole file, or standard input for "-" (owned, NUL-terminated). */
static char *
read_text_file(const char *flag, const char *path, size_t *len,
    struct sk_error *err)
{
	struct stat st;
	char *buf = NULL, *nb;
	size_t cap = 0, n = 0;
	ssize_t r;
	int fd;

	if (strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		goto fail;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	for (;;) {
		if (n + 1 >= cap) {
			cap = cap != 0 ? cap * 2 : 65536;
			if (cap > TEXT_FILE_MAX + 1 ||
			    (nb = realloc(buf, cap)) == NULL) {
				errno = EFBIG;
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto fail;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (fd != STDIN_FILENO)
		(void)close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	(void)sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "send: %s %s: %s",
	    flag, path, strerror(errno));
	if (err != NULL)
		err->sys_errno = errno;
	if (fd > STDIN_FILENO)
		(void)close(fd);
	free(buf);
	return NULL;
}

/* ---- the message ---- */

/* An unnamed file for the message, readable by us alone. */
static int
tmpfile_open(struct sk_error *err)
{
	const char *dir;
	int fd;

	if ((fd = sk__tmpfile(&dir)) == -1) {
		(void)sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "send: cannot make a temporary file in %s: %s", dir,
		    strerror(errno));
		if (err != NULL)
			err->sys_errno = errno;
	}
	return fd;
}

static struct sk_mime_addr *
mime_addrs(const struct cli_mailboxes *l)
{
	struct sk_mime_addr *v;
	size_t i;

	if (l == NULL || l->n == 0)
		return NULL;
	if ((v = calloc(l->n, sizeof(*v))) == NULL)
		return NULL;
	for (i = 0; i < l->n; i++) {
		v[i].addr = l->addr[i];
		v[i].name = l->name[i][0] != '\0' ? l->name[i] : NULL;
	}
	return v;
}

static size_t
count(const struct cli_mailboxes *l)
{
	return l != NULL ? l->n : 0;
}

/* Write m into a new temporary file and measure it as a ready message. */
static int
compose_file(const struct sk_mime *m, struct sk_source *src,
    struct sk_error *err)
{
	static const char what[] = "the composed message";
	struct sk_scan scan;
	int fd;

	if ((fd = tmpfile_open(err)) == -1)
		return -1;
	if (sk_mime_compose(m, fd, err) == -1)
		goto fail;
	if (lseek(fd, 0, SEEK_SET) == -1)
		goto fail_errno;
	if (sk_scan_fd(fd, what, &scan, err) == -1 ||
	    sk_scan_check(&scan, what, err) == -1)
		goto fail;
	if (lseek(fd, 0, SEEK_SET) == -1)
		goto fail_errno;
	src->fd = fd;
	src->path = NULL;
	src->name = "composed";
	src->env.size = scan.wire_size;
	src->env.body_8bit = scan.has_8bit;
	return 0;
fail_errno:
	(void)sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
	    "send: %s: %s", what, strerror(errno));
	if (err != NULL)
		err->sys_errno = errno;
fail:
	(void)close(fd);
	return -1;
}

int
cli_compose(const struct cli_compose *c, struct sk_source *src,
    struct sk_error *err)
{
	struct sk_mime m;
	struct sk_mime_addr *to = NULL, *cc = NULL, *rt = NULL;
	struct sk_mime_file *att = NULL, *inl = NULL;
	struct sk_mime_header *hdr = NULL;
	char **bufs = NULL, *text = NULL, *html = NULL;
	const char *by = NULL;	/* the option that reads standard input */
	size_t nbufs, i, b = 0, text_len = 0, html_len = 0;
	int rc = -1;

	memset(&m, 0, sizeof(m));
	nbufs = c->nattach + c->ninl + c->nheaders;
	if ((nbufs > 0 && (bufs = calloc(nbufs, sizeof(*bufs))) == NULL) ||
	    (c->nattach > 0 &&
	    (att = calloc(c->nattach, sizeof(*att))) == NULL) ||
	    (c->ninl > 0 && (inl = calloc(c->ninl, sizeof(*inl))) == NULL) ||
	    (c->nheaders > 0 &&
	    (hdr = calloc(c->nheaders, sizeof(*hdr))) == NULL) ||
	    (count(c->to) > 0 && (to = mime_addrs(c->to)) == NULL) ||
	    (count(c->cc) > 0 && (cc = mime_addrs(c->cc)) == NULL) ||
	    (count(c->reply_to) > 0 &&
	    (rt = mime_addrs(c->reply_to)) == NULL))
		goto oom;

	/* What the arguments say, all of it, before any file is read. */
	for (i = 0; i < c->nattach; i++)
		if (file_arg_parse("--attach", c->attach[i], false, &att[i],
		    &bufs[b++], err) == -1)
			goto out;
	for (i = 0; i < c->ninl; i++)
		if (file_arg_parse("--inline", c->inl[i], true, &inl[i],
		    &bufs[b++], err) == -1)
			goto out;
	for (i = 0; i < c->nheaders; i++)
		if (header_arg_parse(c->headers[i], &hdr[i], &bufs[b++],
		    err) == -1)
			goto out;
	if ((c->text_file != NULL && strcmp(c->text_file, "-") == 0 &&
	    stdin_claim(&by, "--text-file", err) == -1) ||
	    (c->html_file != NULL && strcmp(c->html_file, "-") == 0 &&
	    stdin_claim(&by, "--html-file", err) == -1))
		goto out;
	for (i = 0; i < c->nattach; i++)
		if (att[i].path == stdin_path &&
		    stdin_claim(&by, "--attach", err) == -1)
			goto out;
	for (i = 0; i < c->ninl; i++)
		if (inl[i].path == stdin_path &&
		    stdin_claim(&by, "--inline", err) == -1)
			goto out;

	if (c->text_file != NULL) {
		if ((text = read_text_file("--text-file", c->text_file,
		    &text_len, err)) == NULL)
			goto out;
		m.text = text;
		m.text_len = text_len;
	} else if (c->text != NULL) {
		m.text = c->text;
		m.text_len = strlen(c->text);
	}
	if (c->html_file != NULL) {
		if ((html = read_text_file("--html-file", c->html_file,
		    &html_len, err)) == NULL)
			goto out;
		m.html = html;
		m.html_len = html_len;
	} else if (c->html != NULL) {
		m.html = c->html;
		m.html_len = strlen(c->html);
	}

	m.from.addr = c->from;
	m.from.name = c->from_name != NULL && c->from_name[0] != '\0' ?
	    c->from_name : NULL;
	m.to = to;
	m.nto = count(c->to);
	m.cc = cc;
	m.ncc = count(c->cc);
	m.reply_to = rt;
	m.nreply_to = count(c->reply_to);
	m.subject = c->subject;
	m.attach = att;
	m.nattach = c->nattach;
	m.inl = inl;
	m.ninl = c->ninl;
	m.headers = hdr;
	m.nheaders = c->nheaders;
	m.now = 0;
	rc = compose_file(&m, src, err);
	goto out;
oom:
	(void)sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
out:
	if (bufs != NULL)
		for (i = 0; i < nbufs; i++)
			free(bufs[i]);
	free(bufs);
	free(att);
	free(inl);
	free(hdr);
	free(to);
	free(cc);
	free(rt);
	free(text);
	free(html);
	return rc;
}
