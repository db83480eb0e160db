/*
 * tests/unit/test_mime.c: MIME composition (sk_mime_compose and the
 * smtpkit-mime.so module it loads from next to this program).
 *
 * Every message composed here is read back twice: as bytes (CRLF line
 * ends, no line over 998 octets, nothing but 7-bit octets, see
 * compose_ok) and parsed with GMime, so that a test passes only when what
 * goes out means what went in.  Every refusal is checked to have written
 * nothing.
 */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gmime/gmime.h>

#include "smtpkit/error.h"
#include "smtpkit/message.h"
#include "smtpkit/mime.h"

#define FROM		"sender@example.org"
#define NOW		((time_t)1795856400)	/* 2026-11-29 */

/* A PNG signature and the start of an IHDR chunk (PNG §5.2, §11.2.2). */
static const unsigned char png_head[] = {
	0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
	0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0,
	0x1f, 0x15, 0xc4, 0x89,
};

static char dir[PATH_MAX];

/* The last composed message, NUL-terminated. */
static char *out;
static size_t out_len;

/* Whether the header block may hold UTF-8 (an address's local part). */
static bool header_utf8;

/*
 * Helpers
 */

/* A path in the test directory, valid for the next 15 calls. */
static char *
path_of(const char *name)
{
	static char p[16][PATH_MAX];
	static int k;

	k = (k + 1) % 16;
	(void)snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static const char *
write_file(const char *name, const void *data, size_t len)
{
	const char *p = path_of(name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return p;
}

static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A message with a From, a To and a fixed time; the rest up to a test. */
static struct sk_mime
base(void)
{
	static const struct sk_mime_addr to = { NULL, "rcpt@example.com" };
	struct sk_mime m;

	memset(&m, 0, sizeof(m));
	m.from.addr = FROM;
	m.to = &to;
	m.nto = 1;
	m.now = NOW;
	return m;
}

static void
set_text(struct sk_mime *m, const char *s)
{
	m->text = s;
	m->text_len = strlen(s);
}

static void
set_html(struct sk_mime *m, const char *s)
{
	m->html = s;
	m->html_len = strlen(s);
}

/*
 * What every message must be on the wire: lines ending in CRLF, no bare
 * CR or LF, none over 998 octets (RFC 5322 §2.1.1), and only 7-bit
 * octets, no NUL (RFC 2045 §2.7), so that it never needs 8BITMIME.
 */
static void
check_wire(const char *buf, size_t len)
{
	const char *end = strstr(buf, "\r\n\r\n");
	size_t i, col = 0, head = end != NULL ? (size_t)(end - buf) : len;

	assert_true(len >= 2);
	assert_memory_equal(buf + len - 2, "\r\n", 2);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == '\r') {
			assert_true(i + 1 < len && buf[i + 1] == '\n');
			i++;
			col = 0;
			continue;
		}
		assert_int_not_equal(c, '\n');
		assert_true(c != 0);
		if (c >= 128 && !(header_utf8 && i < head))
			fail_msg("an 8-bit octet at offset %zu", i);
		col++;
		if (col > SK_LINE_MAX)
			fail_msg("line over 998 octets at offset %zu", i);
	}
}

static void
read_back(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	free(out);
	out_len = (size_t)st.st_size;
	out = malloc(out_len + 1);
	assert_non_null(out);
	assert_int_equal(pread(fd, out, out_len, 0), (ssize_t)out_len);
	out[out_len] = '\0';
}

/* Compose m into out; on failure, check that nothing was written. */
static int
compose(const struct sk_mime *m, struct sk_error *err)
{
	int fd, rc;

	fd = memfd_create("mime", MFD_CLOEXEC);
	assert_true(fd >= 0);
	sk_error_clear(err);
	rc = sk_mime_compose(m, fd, err);
	read_back(fd);
	assert_int_equal(close(fd), 0);
	if (rc == -1) {
		assert_int_equal(err->stage, SK_STAGE_LOCAL);
		assert_true(err->message[0] != '\0');
		assert_int_equal(out_len, 0);
	} else {
		assert_int_equal(rc, 0);
		check_wire(out, out_len);
	}
	return rc;
}

static GMimeMessage *
parse(void)
{
	GMimeParser *p;
	GMimeStream *s;
	GMimeMessage *msg;

	s = g_mime_stream_mem_new_with_buffer(out, out_len);
	p = g_mime_parser_new_with_stream(s);
	msg = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	g_object_unref(s);
	assert_non_null(msg);
	return msg;
}

/* Compose m, which must succeed, and parse it back. */
static GMimeMessage *
compose_ok(const struct sk_mime *m)
{
	struct sk_error err;

	if (compose(m, &err) == -1)
		fail_msg("compose failed: %s", err.message);
	return parse();
}

/* Compose m, which must fail with kind; returns the error's message. */
static const char *
compose_fail(const struct sk_mime *m, enum sk_error_kind kind, int sys_errno)
{
	static struct sk_error err;

	assert_int_equal(compose(m, &err), -1);
	if (err.kind != kind)
		fail_msg("error kind %s, expected %s: %s",
		    sk_error_kind_name(err.kind), sk_error_kind_name(kind),
		    err.message);
	assert_int_equal(err.sys_errno, sys_errno);
	return err.message;
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* The MIME tree as "multipart/mixed(text/plain,image/png)". */
static void
tree(GMimeObject *o, GString *s)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	int i, n;

	g_string_append_printf(s, "%s/%s",
	    g_mime_content_type_get_media_type(ct),
	    g_mime_content_type_get_media_subtype(ct));
	if (!GMIME_IS_MULTIPART(o))
		return;
	g_string_append_c(s, '(');
	n = g_mime_multipart_get_count(GMIME_MULTIPART(o));
	for (i = 0; i < n; i++) {
		if (i > 0)
			g_string_append_c(s, ',');
		tree(g_mime_multipart_get_part(GMIME_MULTIPART(o), i), s);
	}
	g_string_append_c(s, ')');
}

static void
assert_tree(GMimeMessage *msg, const char *want)
{
	GString *s = g_string_new(NULL);

	tree(g_mime_message_get_mime_part(msg), s);
	if (strcmp(s->str, want) != 0)
		fail_msg("structure %s, expected %s", s->str, want);
	g_string_free(s, TRUE);
}

/* The part at a path of indexes into nested multiparts, -1 ending it. */
static GMimeObject *
part_at(GMimeMessage *msg, ...)
{
	GMimeObject *o = g_mime_message_get_mime_part(msg);
	va_list ap;
	int i;

	va_start(ap, msg);
	while ((i = va_arg(ap, int)) >= 0) {
		assert_true(GMIME_IS_MULTIPART(o));
		o = g_mime_multipart_get_part(GMIME_MULTIPART(o), i);
		assert_non_null(o);
	}
	va_end(ap);
	return o;
}

/* A part's decoded content (malloc'd, NUL-terminated). */
static char *
content(GMimeObject *o, size_t *len)
{
	GMimeStream *s;
	GByteArray *a;
	char *p;

	assert_true(GMIME_IS_PART(o));
	s = g_mime_stream_mem_new();
	assert_true(g_mime_data_wrapper_write_to_stream(
	    g_mime_part_get_content(GMIME_PART(o)), s) >= 0);
	a = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
	p = malloc(a->len + 1);
	assert_non_null(p);
	if (a->len > 0)
		memcpy(p, a->data, a->len);
	p[a->len] = '\0';
	*len = a->len;
	g_object_unref(s);
	return p;
}

/* Text as it reads after decoding: CRLF as LF. */
static char *
text_of(GMimeObject *o)
{
	size_t len, i, k = 0;
	char *p = content(o, &len);

	for (i = 0; i < len; i++)
		if (!(p[i] == '\r' && i + 1 < len && p[i + 1] == '\n'))
			p[k++] = p[i];
	p[k] = '\0';
	return p;
}

static void
assert_text(GMimeObject *o, const char *want)
{
	char *got = text_of(o);

	if (strcmp(got, want) != 0)
		fail_msg("text \"%.200s\" (%zu), expected \"%.200s\" (%zu)",
		    got, strlen(got), want, strlen(want));
	free(got);
}

static void
assert_encoding(GMimeObject *o, GMimeContentEncoding enc)
{
	assert_int_equal(g_mime_part_get_content_encoding(GMIME_PART(o)),
	    enc);
}

static void
assert_utf8_text(GMimeObject *o, const char *subtype)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);

	assert_true(g_mime_content_type_is_type(ct, "text", subtype));
	assert_string_equal(g_mime_content_type_get_parameter(ct, "charset"),
	    "utf-8");
}

/* An attachment: its type, disposition, file name and exact content. */
static void
assert_file(GMimeObject *o, const char *type, const char *disp,
    const char *name, const void *data, size_t len)
{
	char *mt, *got;
	size_t n;

	mt = g_mime_content_type_get_mime_type(
	    g_mime_object_get_content_type(o));
	assert_string_equal(mt, type);
	g_free(mt);
	assert_string_equal(g_mime_object_get_disposition(o), disp);
	assert_string_equal(g_mime_part_get_filename(GMIME_PART(o)), name);
	assert_string_equal(g_mime_object_get_content_type_parameter(o,
	    "name"), name);
	assert_encoding(o, GMIME_CONTENT_ENCODING_BASE64);
	got = content(o, &n);
	assert_int_equal(n, len);
	if (len > 0)
		assert_memory_equal(got, data, len);
	free(got);
}

static const char *
header(GMimeMessage *msg, const char *name)
{
	return g_mime_object_get_header(GMIME_OBJECT(msg), name);
}

/* How many times a header field appears in the top-level header block. */
static int
header_count(const char *name)
{
	const char *p = out, *end = strstr(out, "\r\n\r\n");
	size_t n = strlen(name);
	int count = 0;

	assert_non_null(end);
	while (p < end) {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			count++;
		p = strstr(p, "\r\n") + 2;
	}
	return count;
}

static InternetAddressMailbox *
mailbox(InternetAddressList *l, int i)
{
	InternetAddress *ia;

	assert_non_null(l);
	assert_true(i < internet_address_list_length(l));
	ia = internet_address_list_get_address(l, i);
	assert_true(INTERNET_ADDRESS_IS_MAILBOX(ia));
	return INTERNET_ADDRESS_MAILBOX(ia);
}

static void
assert_mailbox(InternetAddressList *l, int i, const char *name,
    const char *addr)
{
	InternetAddressMailbox *mb = mailbox(l, i);

	assert_string_equal(internet_address_mailbox_get_addr(mb), addr);
	if (name == NULL)
		assert_true(internet_address_get_name(INTERNET_ADDRESS(mb)) ==
		    NULL || *internet_address_get_name(
		    INTERNET_ADDRESS(mb)) == '\0');
	else
		assert_string_equal(internet_address_get_name(
		    INTERNET_ADDRESS(mb)), name);
}

/* VmHWM (peak RSS) in kB, from /proc/self/status; -1 if unknown. */
static long
peak_rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	(void)fclose(f);
	return kb;
}

/* Reset the peak RSS to the current one (proc(5), clear_refs "5"). */
static bool
peak_rss_reset(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd == -1)
		return false;
	ok = write(fd, "5", 1) == 1;
	(void)close(fd);
	return ok;
}

/*
 * The module
 */

/* Before anything is composed, nothing is loaded: this runs first. */
static void
test_loaded_lazily(void **state)
{
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	assert_false(sk_mime_loaded());
	set_text(&m, "hi\n");
	msg = compose_ok(&m);
	assert_true(sk_mime_loaded());
	g_object_unref(msg);
}

/*
 * A copy of this program in a directory without smtpkit-mime.so: the
 * module is looked for in SMTPKIT_MODULEDIR, and when it is not there
 * the error names that path and says how to mend it.
 */
static void
test_module_lookup(void **state)
{
	char exe[PATH_MAX], copy[PATH_MAX], buf[1024], want[PATH_MAX + 64];
	struct stat st;
	int in, outfd, p[2], status;
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	(void)state;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	(void)snprintf(copy, sizeof(copy), "%s/test_mime_copy", dir);
	in = open(exe, O_RDONLY | O_CLOEXEC);
	assert_true(in >= 0);
	outfd = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	assert_true(outfd >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(outfd, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	(void)close(in);
	assert_int_equal(close(outfd), 0);

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		(void)dup2(p[1], 1);
		(void)execl(copy, copy, "--probe-module", (char *)NULL);
		_exit(127);
	}
	(void)close(p[1]);
	while ((n = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	(void)close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));

	(void)snprintf(want, sizeof(want), "%s/smtpkit-mime.so",
	    SMTPKIT_MODULEDIR);
	if (stat(want, &st) == 0) {
		/* smtpkit is installed: the copy loads that module. */
		assert_int_equal(WEXITSTATUS(status), 0);
		return;
	}
	assert_int_equal(WEXITSTATUS(status), 1);
	(void)snprintf(want, sizeof(want), "local %d cannot load the MIME "
	    "module %s/smtpkit-mime.so: ", 0, SMTPKIT_MODULEDIR);
	if (strncmp(buf, want, strlen(want)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", buf, want);
	assert_contains(buf, ": reinstall smtpkit (make install)\n");
}

/* The child of test_module_lookup: compose, print the error. */
static int
probe_module(void)
{
	struct sk_error err;
	struct sk_mime m = base();
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (sk_mime_compose(&m, fd, &err) == 0)
		return 0;
	(void)printf("%s %d %s\n", sk_error_kind_name(err.kind),
	    err.sys_errno, err.message);
	return sk_mime_loaded() ? 2 : 1;
}

/*
 * Structure (mime.h's table)
 */

static void
test_text_only(void **state)
{
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	set_text(&m, "Hello,\nthis is plain text.\n");
	msg = compose_ok(&m);
	assert_tree(msg, "text/plain");
	assert_utf8_text(part_at(msg, -1), "plain");
	assert_encoding(part_at(msg, -1), GMIME_CONTENT_ENCODING_7BIT);
	assert_text(part_at(msg, -1), "Hello,\nthis is plain text.\n");
	g_object_unref(msg);
}

static void
test_html_only(void **state)
{
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	set_html(&m, "<p>Hello</p>\n");
	msg = compose_ok(&m);
	assert_tree(msg, "text/html");
	assert_utf8_text(part_at(msg, -1), "html");
	assert_text(part_at(msg, -1), "<p>Hello</p>\n");
	g_object_unref(msg);
}

static void
test_text_and_html(void **state)
{
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	set_text(&m, "Hello\n");
	set_html(&m, "<p>Hello</p>\n");
	msg = compose_ok(&m);
	assert_tree(msg, "multipart/alternative(text/plain,text/html)");
	assert_text(part_at(msg, 0, -1), "Hello\n");
	assert_text(part_at(msg, 1, -1), "<p>Hello</p>\n");
	g_object_unref(msg);
}

static void
test_neither_text_nor_html(void **state)
{
	struct sk_mime m = base();
	struct sk_mime_file att = { NULL, NULL, NULL, NULL };
	GMimeMessage *msg;

	(void)state;
	msg = compose_ok(&m);
	assert_tree(msg, "text/plain");
	assert_utf8_text(part_at(msg, -1), "plain");
	assert_text(part_at(msg, -1), "");
	g_object_unref(msg);

	att.path = write_file("a.bin", "\x01\x02", 2);
	m.attach = &att;
	m.nattach = 1;
	msg = compose_ok(&m);
	assert_tree(msg,
	    "multipart/mixed(text/plain,application/octet-stream)");
	assert_text(part_at(msg, 0, -1), "");
	g_object_unref(msg);
}

static void
test_html_inline(void **state)
{
	struct sk_mime m = base();
	struct sk_mime_file inl = { NULL, NULL, NULL, NULL };
	GMimeMessage *msg;
	GMimeObject *rel, *img;

	(void)state;
	inl.path = write_file("logo.png", png_head, sizeof(png_head));
	set_html(&m, "<p><img src=\"cid:logo.png\"></p>\n");
	m.inl = &inl;
	m.ninl = 1;
	msg = compose_ok(&m);
	assert_tree(msg, "multipart/related(text/html,image/png)");
	rel = part_at(msg, -1);
	/* RFC 2387 §3.1: type names the root's type. */
	assert_string_equal(g_mime_object_get_content_type_parameter(rel,
	    "type"), "text/html");
	img = part_at(msg, 1, -1);
	assert_file(img, "image/png", "inline", "logo.png", png_head,
	    sizeof(png_head));
	assert_string_equal(g_mime_object_get_content_id(img), "logo.png");
	assert_contains(out, "\r\nContent-Id: <logo.png>\r\n");
	g_object_unref(msg);
}

static void
test_text_html_inline_attach(void **state)
{
	struct sk_mime m = base();
	struct sk_mime_file inl[2], att[2];
	GMimeMessage *msg;

	(void)state;
	memset(inl, 0, sizeof(inl));
	memset(att, 0, sizeof(att));
	inl[0].path = write_file("a.png", png_head, sizeof(png_head));
	inl[1].path = write_file("b.png", png_head, sizeof(png_head));
	inl[1].cid = "part2.b@example.org";
	att[0].path = write_file("notes.txt", "one\ntwo\n", 8);
	att[1].path = write_file("data.bin", "\x00\xff", 2);
	att[1].name = "renamed.bin";
	set_text(&m, "plain\n");
	set_html(&m, "<img src=\"cid:a.png\"><img "
	    "src=\"cid:part2.b@example.org\">\n");
	m.inl = inl;
	m.ninl = 2;
	m.attach = att;
	m.nattach = 2;
	msg = compose_ok(&m);
	/* Thunderbird's layout. */
	assert_tree(msg, "multipart/mixed(multipart/alternative(text/plain,"
	    "multipart/related(text/html,image/png,image/png)),text/plain,"
	    "application/octet-stream)");
	assert_text(part_at(msg, 0, 0, -1), "plain\n");
	assert_string_equal(g_mime_object_get_content_id(
	    part_at(msg, 0, 1, 1, -1)), "a.png");
	assert_string_equal(g_mime_object_get_content_id(
	    part_at(msg, 0, 1, 2, -1)), "part2.b@example.org");
	assert_file(part_at(msg, 1, -1), "text/plain", "attachment",
	    "notes.txt", "one\ntwo\n", 8);
	assert_file(part_at(msg, 2, -1), "application/octet-stream",
	    "attachment", "renamed.bin", "\x00\xff", 2);
	g_object_unref(msg);
}

static void
test_html_attach(void **state)
{
	struct sk_mime m = base();
	struct sk_mime_file att = { NULL, "application/pdf", NULL, NULL };
	GMimeMessage *msg;

	(void)state;
	att.path = write_file("report.pdf", "%PDF-1.4\n", 9);
	set_html(&m, "<b>see attached</b>");
	m.attach = &att;
	m.nattach = 1;
	msg = compose_ok(&m);
	assert_tree(msg, "multipart/mixed(text/html,application/pdf)");
	/* The last line gets its line end. */
	assert_text(part_at(msg, 0, -1), "<b>see attached</b>\n");
	g_object_unref(msg);
}

/*
 * Headers
 */

static void
test_headers(void **state)
{
	static const struct sk_mime_addr to[] = {
		{ "Алиса Иванова", "alice@example.com" },
		{ NULL, "bob@example.net" },
		{ "Doe, John \"JD\"", "john@example.com" },
	};
	static const struct sk_mime_addr cc = { "Carol", "carol@example.com" };
	static const struct sk_mime_addr rt = {
		"Help Desk", "help@example.org" };
	static const char subject[] = "Grüße aus 北京 — Привет, мир! ✓ a "
	    "subject long enough to need several encoded words: ünïcödé ✓✓✓ "
	    "日本語のテキスト";
	struct sk_mime m = base();
	GMimeMessage *msg;
	char date[64];

	(void)state;
	m.from.name = "Sender Süß";
	m.to = to;
	m.nto = 3;
	m.cc = &cc;
	m.ncc = 1;
	m.reply_to = &rt;
	m.nreply_to = 1;
	m.subject = subject;
	set_text(&m, "x\n");
	msg = compose_ok(&m);
	assert_mailbox(g_mime_message_get_from(msg), 0, "Sender Süß", FROM);
	assert_int_equal(internet_address_list_length(
	    g_mime_message_get_to(msg)), 3);
	assert_mailbox(g_mime_message_get_to(msg), 0, "Алиса Иванова",
	    "alice@example.com");
	assert_mailbox(g_mime_message_get_to(msg), 1, NULL, "bob@example.net");
	assert_mailbox(g_mime_message_get_to(msg), 2, "Doe, John \"JD\"",
	    "john@example.com");
	assert_mailbox(g_mime_message_get_cc(msg), 0, "Carol",
	    "carol@example.com");
	assert_mailbox(g_mime_message_get_reply_to(msg), 0, "Help Desk",
	    "help@example.org");
	assert_string_equal(g_mime_message_get_subject(msg), subject);
	/* RFC 2047 words in UTF-8, not some smaller charset. */
	assert_non_null(strcasestr(out, "\r\nSubject: =?utf-8?"));
	assert_null(strcasestr(out, "iso-8859"));
	assert_true(sk_rfc5322_date(NOW, date, sizeof(date)) != (size_t)-1);
	assert_string_equal(header(msg, "Date"), date);
	assert_non_null(header(msg, "Message-ID"));
	assert_true(g_str_has_suffix(g_mime_message_get_message_id(msg),
	    "@example.org"));
	assert_string_equal(header(msg, "MIME-Version"), "1.0");
	assert_null(header(msg, "Bcc"));
	assert_null(header(msg, "Sender"));
	assert_int_equal(header_count("From"), 1);
	assert_int_equal(header_count("Message-ID"), 1);
	g_object_unref(msg);
}

static void
test_message_ids_differ(void **state)
{
	struct sk_mime m = base();
	GMimeMessage *msg;
	char *first;

	(void)state;
	msg = compose_ok(&m);
	first = g_strdup(g_mime_message_get_message_id(msg));
	g_object_unref(msg);
	msg = compose_ok(&m);
	assert_string_not_equal(first, g_mime_message_get_message_id(msg));
	g_free(first);
	g_object_unref(msg);
}

static void
test_undisclosed_recipients(void **state)
{
	static const struct sk_mime_addr cc = { NULL, "carol@example.com" };
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	m.to = NULL;
	m.nto = 0;
	msg = compose_ok(&m);
	/* RFC 5322 §A.1.3: an empty group, as sk_message_compose writes. */
	assert_contains(out, "\r\nTo: undisclosed-recipients:;\r\n");
	assert_int_equal(internet_address_list_length(
	    g_mime_message_get_to(msg)), 1);
	assert_true(INTERNET_ADDRESS_IS_GROUP(internet_address_list_get_address(
	    g_mime_message_get_to(msg), 0)));
	g_object_unref(msg);

	m.cc = &cc;
	m.ncc = 1;
	msg = compose_ok(&m);
	assert_int_equal(header_count("To"), 0);
	assert_mailbox(g_mime_message_get_cc(msg), 0, NULL,
	    "carol@example.com");
	g_object_unref(msg);
}

static void
test_user_headers(void **state)
{
	static const struct sk_mime_header h[] = {
		{ "X-Mailer", "smtpkit" },
		{ "subject", "Replaced subject" },
		{ "Message-ID", "<given.1@example.org>" },
		{ "X-Note", "Grüße ✓" },
		{ "Date", "Sun, 29 Nov 2026 09:00:00 +0000" },
		{ "Reply-To", "Désk <desk@example.org>" },
		{ "X-Empty", "" },
		{ "TO", "Бob <bob@example.com>, x@example.net" },
	};
	struct sk_mime m = base();
	GMimeMessage *msg;
	const char *a, *b;

	(void)state;
	m.subject = "ours";
	m.headers = h;
	m.nheaders = sizeof(h) / sizeof(h[0]);
	msg = compose_ok(&m);
	assert_string_equal(g_mime_message_get_subject(msg),
	    "Replaced subject");
	assert_int_equal(header_count("Subject"), 1);
	assert_string_equal(g_mime_message_get_message_id(msg),
	    "given.1@example.org");
	assert_int_equal(header_count("Message-ID"), 1);
	assert_string_equal(header(msg, "Date"),
	    "Sun, 29 Nov 2026 09:00:00 +0000");
	assert_int_equal(header_count("Date"), 1);
	assert_mailbox(g_mime_message_get_reply_to(msg), 0, "Désk",
	    "desk@example.org");
	/* The To given replaces ours (rcpt@example.com). */
	assert_int_equal(header_count("To"), 1);
	assert_null(strstr(out, "rcpt@example.com"));
	assert_mailbox(g_mime_message_get_to(msg), 0, "Бob",
	    "bob@example.com");
	assert_mailbox(g_mime_message_get_to(msg), 1, NULL, "x@example.net");
	assert_null(strcasestr(out, "iso-8859"));
	assert_string_equal(header(msg, "X-Mailer"), "smtpkit");
	assert_string_equal(header(msg, "X-Note"), "Grüße ✓");
	assert_non_null(header(msg, "X-Empty"));
	/* In the order given, after smtpkit's own. */
	a = strstr(out, "\r\nX-Mailer:");
	b = strstr(out, "\r\nX-Note:");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(a < b);
	assert_true(strstr(out, "\r\nMIME-Version:") < a);
	g_object_unref(msg);
}

static void
test_refused_headers(void **state)
{
	static const struct {
		const char *name, *value, *want;
	} t[] = {
		{ "Bcc", "x@example.com",
		    "--header \"Bcc: x@example.com\": use --bcc" },
		{ "bcc", "x@example.com", "use --bcc" },
		{ "From", "a@example.com",
		    "--header \"From: a@example.com\": use --from" },
		{ "Content-Type", "text/html", "--header \"Content-Type: "
		    "text/html\": smtpkit writes the Content- headers" },
		{ "content-transfer-encoding", "8bit", "Content- headers" },
		{ "MIME-Version", "1.0", "MIME-Version itself" },
		{ "X Bad", "v", "a header name is printable ASCII" },
		{ "X:Bad", "v", "a header name is printable ASCII" },
		{ "", "v", "a header name is printable ASCII" },
		{ "X-Ünicode", "v", "a header name is printable ASCII" },
		{ "X-Inject", "a\r\nBcc: evil@example.com",
		    "--header \"X-Inject\" contains a line break" },
		{ "Subject", "a\nBcc: evil@example.com", "line break" },
		{ "X-Ctl", "a\001b", "control character" },
		{ "X-Bad-Utf8", "\xc3\x28", "UTF-8" },
	};
	static const struct sk_mime_header twice[] = {
		{ "Subject", "one" },
		{ "SUBJECT", "two" },
	};
	struct sk_mime_header h;
	struct sk_mime m = base();
	size_t i;

	(void)state;
	m.headers = &h;
	m.nheaders = 1;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		h.name = t[i].name;
		h.value = t[i].value;
		assert_contains(compose_fail(&m, SK_ERR_USAGE, 0), t[i].want);
	}
	m.headers = twice;
	m.nheaders = 2;
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0), "given twice");
}

static void
test_injection_refused(void **state)
{
	static const struct sk_mime_addr bad_name = {
		"Eve\r\nBcc: evil@example.com", "eve@example.com" };
	static const struct sk_mime_addr bad_addr = {
		NULL, "eve@example.com\r\nBcc: evil@example.com" };
	static const struct sk_mime_addr angle = { NULL, "<eve@example.com>" };
	struct sk_mime m = base();

	(void)state;
	m.subject = "hi\r\nBcc: evil@example.com";
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0),
	    "--subject contains a line break");
	m = base();
	m.to = &bad_name;
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0), "--to name");
	m.to = &bad_addr;
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0), "--to");
	m.to = &angle;
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0), "angle brackets");
	m = base();
	m.reply_to = &bad_name;
	m.nreply_to = 1;
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0), "--reply-to");
	m = base();
	m.from.addr = "not an address";
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0), "--from");
	m.from.addr = NULL;
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0), "From");
}

/* A word longer than a line can hold is sent as encoded words, or
 * refused, never written as an over-long line. */
static void
test_long_header_words(void **state)
{
	struct sk_mime_header h = { "Message-ID", NULL };
	struct sk_mime m = base();
	GMimeMessage *msg;
	char *word = repeat('x', 3000), *id;

	(void)state;
	m.subject = word;
	msg = compose_ok(&m);
	assert_string_equal(g_mime_message_get_subject(msg), word);
	g_object_unref(msg);

	id = g_strdup_printf("<%s@example.org>", word);
	h.value = id;
	m.headers = &h;
	m.nheaders = 1;
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0),
	    "the Message-ID header has a word too long");
	g_free(id);
	free(word);
}

/* An internationalized domain becomes its A-label (RFC 5890). */
static void
test_idn_from(void **state)
{
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	m.from.addr = "info@bücher.example";
	msg = compose_ok(&m);
	assert_true(g_str_has_suffix(g_mime_message_get_message_id(msg),
	    "@xn--bcher-kva.example"));
	g_object_unref(msg);
}

/*
 * A local part in UTF-8 has no ASCII form (RFC 6532 §3.2): the header
 * carries it as it is, the domain as an A-label; the rest stays 7-bit.
 */
static void
test_utf8_local_part(void **state)
{
	static const struct sk_mime_addr to = { "Имя", "用户@例子.中国" };
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	m.to = &to;
	set_text(&m, "x\n");
	header_utf8 = true;
	msg = compose_ok(&m);
	header_utf8 = false;
	assert_contains(out, "\r\nTo: =?UTF-8?b?0JjQvNGP?= "
	    "<用户@xn--fsqu00a.xn--fiqs8s>\r\n");
	g_object_unref(msg);
}

/*
 * Bodies
 */

static void
test_line_ends_round_trip(void **state)
{
	static const char lf[] = "one\ntwo\n\nfour ünï\n.dot\n";
	static const char crlf[] = "one\r\ntwo\r\n\r\nfour ünï\r\n.dot\r\n";
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	set_text(&m, lf);
	msg = compose_ok(&m);
	assert_text(part_at(msg, -1), lf);
	g_object_unref(msg);
	set_text(&m, crlf);
	msg = compose_ok(&m);
	assert_text(part_at(msg, -1), lf);
	g_object_unref(msg);
	/* ASCII with CRLF is 7bit, as with LF. */
	set_text(&m, "one\r\ntwo\r\n");
	msg = compose_ok(&m);
	assert_encoding(part_at(msg, -1), GMIME_CONTENT_ENCODING_7BIT);
	assert_contains(out, "\r\n\r\none\r\ntwo\r\n");
	g_object_unref(msg);
	/* A bare CR survives as "=0D" (quoted-printable). */
	set_text(&m, "a\rb\n");
	msg = compose_ok(&m);
	assert_encoding(part_at(msg, -1),
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	assert_text(part_at(msg, -1), "a\rb\n");
	g_object_unref(msg);
}

static void
test_long_lines(void **state)
{
	struct sk_mime m = base();
	GMimeMessage *msg;
	char *x = repeat('x', 3000), *text;

	(void)state;
	text = g_strdup_printf("short\n%s\n%s\nlast", x, "ü ü ü ü");
	set_text(&m, text);
	set_html(&m, x);
	msg = compose_ok(&m);
	assert_encoding(part_at(msg, 0, -1),
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	g_free(text);
	text = g_strdup_printf("short\n%s\n%s\nlast\n", x, "ü ü ü ü");
	assert_text(part_at(msg, 0, -1), text);
	g_free(text);
	text = g_strdup_printf("%s\n", x);
	assert_text(part_at(msg, 1, -1), text);
	g_free(text);
	g_object_unref(msg);

	/* 998 octets is still a line for 7bit; 999 is not. */
	x[998] = '\0';
	set_text(&m, x);
	m.html = NULL;
	m.html_len = 0;
	msg = compose_ok(&m);
	assert_encoding(part_at(msg, -1), GMIME_CONTENT_ENCODING_7BIT);
	g_object_unref(msg);
	x[998] = 'x';
	x[999] = '\0';
	set_text(&m, x);
	msg = compose_ok(&m);
	assert_encoding(part_at(msg, -1),
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	g_object_unref(msg);
	free(x);
}

static void
test_utf8_bodies(void **state)
{
	static const char text[] = "Grüße,\n中文：你好，世界\nemoji: 📬✉️\n";
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	set_text(&m, text);
	set_html(&m, "<p>中文</p>\n");
	msg = compose_ok(&m);
	assert_text(part_at(msg, 0, -1), text);
	assert_text(part_at(msg, 1, -1), "<p>中文</p>\n");
	g_object_unref(msg);
}

static void
test_bad_bodies(void **state)
{
	struct sk_mime m = base();

	(void)state;
	set_text(&m, "fine\nbad \xc3\x28 here\n");
	assert_contains(compose_fail(&m, SK_ERR_DATA, 0),
	    "--text is not valid UTF-8 (line 2)");
	m = base();
	set_html(&m, "<p>\xed\xa0\x80</p>");	/* a surrogate */
	assert_contains(compose_fail(&m, SK_ERR_DATA, 0),
	    "--html is not valid UTF-8 (line 1)");
	m = base();
	m.text = "a\0b";
	m.text_len = 3;
	assert_contains(compose_fail(&m, SK_ERR_DATA, 0), "NUL");
	m = base();
	m.text = NULL;
	m.text_len = 4;
	compose_fail(&m, SK_ERR_USAGE, 0);
}

/*
 * Files
 */

static void
test_attach_binary(void **state)
{
	struct sk_mime m = base();
	struct sk_mime_file att[3];
	unsigned char all[512], *big;
	GMimeMessage *msg;
	size_t i, bigl = 1024 * 1024;

	(void)state;
	for (i = 0; i < sizeof(all); i++)
		all[i] = (unsigned char)(255 - i % 256);
	big = malloc(bigl);
	assert_non_null(big);
	for (i = 0; i < bigl; i++)
		big[i] = (unsigned char)((i * 2654435761u) >> 13);
	memset(att, 0, sizeof(att));
	att[0].path = write_file("all.bin", all, sizeof(all));
	att[0].type = "application/octet-stream";
	att[1].path = write_file("empty", "", 0);
	att[2].path = write_file("big.bin", big, bigl);
	att[2].type = "application/x-test";
	set_text(&m, "files\n");
	m.attach = att;
	m.nattach = 3;
	msg = compose_ok(&m);
	assert_tree(msg, "multipart/mixed(text/plain,application/octet-stream,"
	    "application/octet-stream,application/x-test)");
	assert_file(part_at(msg, 1, -1), "application/octet-stream",
	    "attachment", "all.bin", all, sizeof(all));
	/* libmagic calls an empty file inode/x-empty. */
	assert_file(part_at(msg, 2, -1), "application/octet-stream",
	    "attachment", "empty", "", 0);
	assert_file(part_at(msg, 3, -1), "application/x-test", "attachment",
	    "big.bin", big, bigl);
	g_object_unref(msg);
	free(big);
}

/* A text file arrives as it is: no line-end conversion. */
static void
test_attach_text_exact(void **state)
{
	static const char data[] = "lf\ncrlf\r\nbare cr\rno end";
	struct sk_mime_file att = { NULL, NULL, NULL, NULL };
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	att.path = write_file("t.txt", data, sizeof(data) - 1);
	m.attach = &att;
	m.nattach = 1;
	msg = compose_ok(&m);
	assert_file(part_at(msg, 1, -1), "text/plain", "attachment", "t.txt",
	    data, sizeof(data) - 1);
	g_object_unref(msg);
}

static void
test_attach_utf8_name(void **state)
{
	static const char name[] = "Отчёт за 2026 год — итоги и планы на "
	    "следующий квартал.txt";
	struct sk_mime_file att = { NULL, "text/plain", NULL, NULL };
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	att.path = write_file(name, "x", 1);
	m.attach = &att;
	m.nattach = 1;
	msg = compose_ok(&m);
	assert_file(part_at(msg, 1, -1), "text/plain", "attachment", name,
	    "x", 1);
	/* RFC 2231 §3-4: filename*0*=utf-8''%D0%9E... in UTF-8. */
	assert_non_null(strcasestr(out, "filename*0*=utf-8''%D0%9E"));
	assert_null(strcasestr(out, "iso-8859"));
	assert_null(strstr(out, "=?"));
	g_object_unref(msg);

	/* A short one fits a single parameter. */
	att.path = write_file("данные.bin", "x", 1);
	msg = compose_ok(&m);
	assert_non_null(strcasestr(out, "filename*=utf-8''%D0%B4"));
	assert_string_equal(g_mime_part_get_filename(GMIME_PART(
	    part_at(msg, 1, -1))), "данные.bin");
	g_object_unref(msg);
}

static void
test_types(void **state)
{
	struct sk_mime_file att[3];
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	memset(att, 0, sizeof(att));
	/* libmagic goes by content, not by name. */
	att[0].path = write_file("picture.dat", png_head, sizeof(png_head));
	att[1].path = write_file("given.png", png_head, sizeof(png_head));
	att[1].type = "application/x-custom+xml";
	att[2].path = write_file("doc.txt", "hello world\n", 12);
	m.attach = att;
	m.nattach = 3;
	msg = compose_ok(&m);
	assert_file(part_at(msg, 1, -1), "image/png", "attachment",
	    "picture.dat", png_head, sizeof(png_head));
	assert_file(part_at(msg, 2, -1), "application/x-custom+xml",
	    "attachment", "given.png", png_head, sizeof(png_head));
	assert_file(part_at(msg, 3, -1), "text/plain", "attachment",
	    "doc.txt", "hello world\n", 12);
	g_object_unref(msg);
}

static void
test_bad_types(void **state)
{
	static const char *const bad[] = {
		"png", "image/", "/png", "image/png; charset=x", "image png",
		"image/png/x", "image/pn g", "", "imäge/png",
	};
	struct sk_mime_file att = { NULL, NULL, NULL, NULL };
	struct sk_mime m = base();
	size_t i;

	(void)state;
	att.path = write_file("x.png", png_head, sizeof(png_head));
	m.attach = &att;
	m.nattach = 1;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		att.type = bad[i];
		assert_contains(compose_fail(&m, SK_ERR_USAGE, 0),
		    "is not a media type");
	}
}

static void
test_missing_files(void **state)
{
	struct sk_mime_file att = { NULL, NULL, NULL, NULL };
	struct sk_mime m = base();
	char want[PATH_MAX + 64];
	const char *msg;

	(void)state;
	att.path = path_of("no-such-file");
	m.attach = &att;
	m.nattach = 1;
	(void)snprintf(want, sizeof(want), "--attach %s: %s", att.path,
	    strerror(ENOENT));
	msg = compose_fail(&m, SK_ERR_LOCAL, ENOENT);
	assert_string_equal(msg, want);

	att.path = dir;
	(void)snprintf(want, sizeof(want), "--attach %s: %s", dir,
	    strerror(EISDIR));
	assert_string_equal(compose_fail(&m, SK_ERR_LOCAL, EISDIR), want);

	m = base();
	set_html(&m, "<img src=\"cid:x\">");
	att.path = path_of("no-inline");
	m.inl = &att;
	m.ninl = 1;
	assert_contains(compose_fail(&m, SK_ERR_LOCAL, ENOENT), "--inline ");
}

/*
 * A FIFO whose writer (a child) opens it only after compose has, and
 * writes 3 MB of random bytes: compose waits for it, copies all of it to
 * a temporary file, and the attachment decodes byte for byte.
 */
static void
test_attach_fifo(void **state)
{
	struct sk_mime_file att = { NULL, NULL, NULL, NULL };
	struct sk_mime m = base();
	struct sk_error err;
	size_t size = 3 * 1024 * 1024, off;
	unsigned char *data;
	GMimeMessage *msg;
	char fifo[PATH_MAX];
	ssize_t n;
	pid_t pid;
	int fd, status;

	(void)state;
	data = malloc(size);
	assert_non_null(data);
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (off = 0; off < size; off += (size_t)n)
		assert_true((n = read(fd, data + off, size - off)) > 0);
	(void)close(fd);
	(void)snprintf(fifo, sizeof(fifo), "%s", path_of("pipe"));
	assert_int_equal(mkfifo(fifo, 0600), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Blocks until compose opens the FIFO to read. */
		if ((fd = open(fifo, O_WRONLY | O_CLOEXEC)) == -1)
			_exit(1);
		for (off = 0; off < size; off += (size_t)n)
			if ((n = write(fd, data + off, size - off)) <= 0)
				_exit(2);
		_exit(close(fd) == 0 ? 0 : 3);
	}
	att.path = fifo;
	att.name = "random.bin";
	/* Random bytes can look like a known format to libmagic (a zlib
	 * header, say): the type is given, this test is about the pipe. */
	att.type = "application/octet-stream";
	set_text(&m, "from a pipe\n");
	m.attach = &att;
	m.nattach = 1;
	if (compose(&m, &err) == -1) {
		/* The writer may still wait for a reader: it must not stay. */
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		fail_msg("compose failed: %s", err.message);
	}
	msg = parse();
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_tree(msg, "multipart/mixed(text/plain,application/octet-stream)");
	assert_file(part_at(msg, 1, -1), "application/octet-stream",
	    "attachment", "random.bin", data, size);
	g_object_unref(msg);
	free(data);
}

/* A character device is read to its end: /dev/null is an empty file. */
static void
test_attach_device(void **state)
{
	struct sk_mime_file att = { NULL, NULL, NULL, NULL };
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	att.path = "/dev/null";
	set_text(&m, "nothing\n");
	m.attach = &att;
	m.nattach = 1;
	msg = compose_ok(&m);
	assert_tree(msg, "multipart/mixed(text/plain,application/octet-stream)");
	assert_file(part_at(msg, 1, -1), "application/octet-stream",
	    "attachment", "null", "", 0);
	g_object_unref(msg);
}

/*
 * A file that cannot be read.  Root reads anything, so as root the
 * check runs in a child that has become nobody.
 */
static void
test_unreadable_file(void **state)
{
	struct sk_mime_file att = { NULL, NULL, NULL, NULL };
	struct sk_mime m = base();
	struct sk_error err;
	int status, fd;
	pid_t pid;

	(void)state;
	att.path = write_file("secret", "x", 1);
	assert_int_equal(chmod(att.path, 0), 0);
	m.attach = &att;
	m.nattach = 1;
	if (geteuid() != 0) {
		assert_contains(compose_fail(&m, SK_ERR_LOCAL, EACCES),
		    strerror(EACCES));
		return;
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) == -1 || setuid(65534) == -1)
			_exit(3);
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (sk_mime_compose(&m, fd, &err) != -1)
			_exit(4);
		if (err.kind != SK_ERR_LOCAL || err.sys_errno != EACCES ||
		    strstr(err.message, "--attach ") == NULL ||
		    strstr(err.message, strerror(EACCES)) == NULL)
			_exit(5);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_inline_rules(void **state)
{
	struct sk_mime_file inl[2];
	struct sk_mime m = base();
	GMimeMessage *msg;

	(void)state;
	memset(inl, 0, sizeof(inl));
	inl[0].path = write_file("my logo.png", png_head, sizeof(png_head));
	m.inl = inl;
	m.ninl = 1;
	set_text(&m, "no html\n");
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0),
	    "--inline needs --html");

	set_html(&m, "<img src=\"cid:logo\">");
	/* The default Content-ID, the file name, has a space. */
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0),
	    "cannot be a Content-ID (it contains a space)");
	inl[0].cid = "<logo>";
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0),
	    "cannot be a Content-ID");
	inl[0].cid = "logo";
	inl[1].path = inl[0].path;
	inl[1].cid = "logo";
	m.ninl = 2;
	assert_contains(compose_fail(&m, SK_ERR_USAGE, 0),
	    "Content-ID \"logo\" is already");
	m.ninl = 1;
	msg = compose_ok(&m);
	assert_string_equal(g_mime_object_get_content_id(part_at(msg, 1, 1,
	    -1)), "logo");
	assert_string_equal(g_mime_part_get_filename(GMIME_PART(part_at(msg,
	    1, 1, -1))), "my logo.png");
	g_object_unref(msg);
}

/* Every check is made before anything is written: a bad file after good
 * ones leaves fd empty (compose() checks that on every failure). */
static void
test_nothing_written_on_error(void **state)
{
	struct sk_mime_file att[2];
	struct sk_mime m = base();

	(void)state;
	memset(att, 0, sizeof(att));
	att[0].path = write_file("good.bin", "x", 1);
	att[1].path = path_of("missing.bin");
	set_text(&m, "x\n");
	m.attach = att;
	m.nattach = 2;
	compose_fail(&m, SK_ERR_LOCAL, ENOENT);
}

/*
 * Output
 */

static void
test_write_to_pipe(void **state)
{
	struct sk_mime m = base();
	struct sk_error err;
	char buf[8192];
	ssize_t n;
	size_t got = 0;
	int p[2];

	(void)state;
	set_text(&m, "through a pipe\n");
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(sk_mime_compose(&m, p[1], &err), 0);
	/* The caller's descriptor stays open. */
	assert_int_not_equal(fcntl(p[1], F_GETFD), -1);
	assert_int_equal(close(p[1]), 0);
	while ((n = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	(void)close(p[0]);
	buf[got] = '\0';
	check_wire(buf, got);
	assert_contains(buf, "\r\n\r\nthrough a pipe\r\n");
}

static void
test_write_error(void **state)
{
	struct sk_mime m = base();
	struct sk_error err;
	int fd;

	(void)state;
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(sk_mime_compose(&m, fd, &err), -1);
	assert_int_equal(err.kind, SK_ERR_LOCAL);
	assert_int_equal(err.sys_errno, EBADF);
	assert_contains(err.message, "cannot write the message");
	(void)close(fd);

	fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	if (fd == -1)
		return;
	assert_int_equal(sk_mime_compose(&m, fd, &err), -1);
	assert_int_equal(err.sys_errno, ENOSPC);
	(void)close(fd);
	/* An error pointer is optional. */
	assert_int_equal(sk_mime_compose(&m, -1, NULL), -1);
}

/*
 * How much composing m raises the peak RSS, in kB; -1 when this kernel
 * cannot tell.
 */
static long
peak_growth(const struct sk_mime *m)
{
	struct sk_error err;
	long before, after;
	int fd;

	fd = open(path_of("big.eml"), O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	if (!peak_rss_reset() || (before = peak_rss_kb()) < 0) {
		(void)close(fd);
		return -1;
	}
	if (sk_mime_compose(m, fd, &err) == -1)
		fail_msg("compose failed: %s", err.message);
	after = peak_rss_kb();
	assert_int_equal(close(fd), 0);
	return after - before;
}

/*
 * Attachments are read in chunks as they are written: a 20 MB file
 * raises the peak RSS no more than a 2-octet one, whether its type is
 * given or found by libmagic (which loads its database, 8 MB).
 */
static void
test_large_attachment_memory(void **state)
{
	struct sk_mime_file att = { NULL, NULL, NULL, NULL };
	struct sk_mime m = base();
	char big[PATH_MAX], small[PATH_MAX], eml[PATH_MAX];
	long g_small, g_big;
	size_t i, size = 20 * 1024 * 1024;
	struct stat st;
	char *chunk;
	int fd, typed;

	(void)state;
	/* path_of's buffers are reused: keep copies. */
	(void)snprintf(big, sizeof(big), "%s", path_of("big20.bin"));
	(void)snprintf(eml, sizeof(eml), "%s", path_of("big.eml"));
	fd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	chunk = repeat('\xa5', 1024 * 1024);
	for (i = 0; i < size / (1024 * 1024); i++) {
		chunk[i] = (char)i;
		assert_int_equal(write(fd, chunk, 1024 * 1024), 1024 * 1024);
	}
	assert_int_equal(close(fd), 0);
	free(chunk);
	(void)snprintf(small, sizeof(small), "%s",
	    write_file("small.bin", "\xa5\xa5", 2));
	m.attach = &att;
	m.nattach = 1;
	for (typed = 1; typed >= 0; typed--) {
		att.type = typed ? "application/octet-stream" : NULL;
		att.path = small;
		if ((g_small = peak_growth(&m)) < 0)
			skip();
		att.path = big;
		g_big = peak_growth(&m);
		print_message("peak RSS grew by %ld kB composing a 2-octet "
		    "attachment, by %ld kB composing a 20 MB one (type %s)\n",
		    g_small, g_big, typed ? "given" : "found by libmagic");
		assert_true(g_big - g_small < 4 * 1024);
		/* 20 MB in base64, 76-column lines: over 4/3 as long. */
		assert_int_equal(stat(eml, &st), 0);
		assert_true(st.st_size > (off_t)(size / 3 * 4));
	}
	(void)unlink(big);
	(void)unlink(eml);
}

/*
 * Fixture
 */

static int
setup(void **state)
{
	char tmpl[] = "/tmp/test_mime.XXXXXX";

	(void)state;
	if (mkdtemp(tmpl) == NULL)
		return -1;
	(void)snprintf(dir, sizeof(dir), "%s", tmpl);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	free(out);
	out = NULL;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loaded_lazily),
		cmocka_unit_test(test_module_lookup),
		cmocka_unit_test(test_text_only),
		cmocka_unit_test(test_html_only),
		cmocka_unit_test(test_text_and_html),
		cmocka_unit_test(test_neither_text_nor_html),
		cmocka_unit_test(test_html_inline),
		cmocka_unit_test(test_text_html_inline_attach),
		cmocka_unit_test(test_html_attach),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_message_ids_differ),
		cmocka_unit_test(test_undisclosed_recipients),
		cmocka_unit_test(test_user_headers),
		cmocka_unit_test(test_refused_headers),
		cmocka_unit_test(test_injection_refused),
		cmocka_unit_test(test_long_header_words),
		cmocka_unit_test(test_idn_from),
		cmocka_unit_test(test_utf8_local_part),
		cmocka_unit_test(test_line_ends_round_trip),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_utf8_bodies),
		cmocka_unit_test(test_bad_bodies),
		cmocka_unit_test(test_attach_binary),
		cmocka_unit_test(test_attach_text_exact),
		cmocka_unit_test(test_attach_utf8_name),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_bad_types),
		cmocka_unit_test(test_missing_files),
		cmocka_unit_test(test_attach_fifo),
		cmocka_unit_test(test_attach_device),
		cmocka_unit_test(test_unreadable_file),
		cmocka_unit_test(test_inline_rules),
		cmocka_unit_test(test_nothing_written_on_error),
		cmocka_unit_test(test_write_to_pipe),
		cmocka_unit_test(test_write_error),
		cmocka_unit_test(test_large_attachment_memory),
	};
	int rc;

	/*
	 * GLib 2.74 keeps small objects in its slice allocator, where
	 * LeakSanitizer sees a leaked GObject as reachable: have them
	 * allocated with malloc, so that a leak is found.  GLib reads
	 * G_SLICE in its constructors, before main: start again with it.
	 */
	if (getenv("G_SLICE") == NULL) {
		(void)setenv("G_SLICE", "always-malloc", 1);
		(void)execv("/proc/self/exe", argv);
		perror("test_mime: execv /proc/self/exe");
		return 1;
	}
	if (argc == 2 && strcmp(argv[1], "--probe-module") == 0)
		return probe_module();
	/* GMime's complaints (g_return_if_fail...) are failures here. */
	g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
	g_mime_init();
	rc = cmocka_run_group_tests(tests, setup, teardown);
	g_mime_shutdown();
	return rc;
}
