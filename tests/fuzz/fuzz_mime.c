/*
 * smtpkit: libFuzzer target for MIME composition (the GMime module).
 *
 * The input is cut at NUL octets into a subject, a From display name, a
 * To display name, a header name, a header value, a text body, an HTML
 * body and an attachment's shown file name.  Whatever they hold,
 * sk_mime_compose either refuses them or writes a message that can go to
 * any server: 7-bit octets only (the addresses are ASCII), every line
 * ended by CRLF and at most 998 octets long (RFC 5322 §2.1.1), and a
 * header block ended by an empty line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "smtpkit/message.h"
#include "smtpkit/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELDS	8

static void
check_output(int fd)
{
	static char buf[1 << 20];
	off_t end = lseek(fd, 0, SEEK_END);
	size_t len, i, line = 0;
	bool blank = false;

	if (end < 0 || (size_t)end > sizeof(buf) ||
	    pread(fd, buf, (size_t)end, 0) != end)
		abort();
	len = (size_t)end;
	if (len < 2 || buf[len - 2] != '\r' || buf[len - 1] != '\n')
		abort();
	for (i = 0; i < len; i++) {
		if ((unsigned char)buf[i] >= 0x80 || buf[i] == '\0')
			abort();
		if (buf[i] == '\r') {
			if (i + 1 >= len || buf[i + 1] != '\n')
				abort();
			if (line == 0)
				blank = true;
			line = 0;
			i++;
			continue;
		}
		if (buf[i] == '\n')
			abort();
		if (++line > SK_LINE_MAX)
			abort();
	}
	if (!blank)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[] = "/tmp/fuzz-mime-attach-XXXXXX";
	static int attach_ready;
	char *copy, *f[FIELDS] = { NULL };
	struct sk_mime m;
	struct sk_mime_addr to;
	struct sk_mime_header h;
	struct sk_mime_file att;
	struct sk_error err;
	size_t n = 0;
	char *p;
	int fd, afd;

	if (!attach_ready) {
		if ((afd = mkstemp(path)) == -1 ||
		    write(afd, "attachment\n", 11) != 11)
			abort();
		(void)close(afd);
		attach_ready = 1;
	}
	if (size > 65536 || (copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (p = copy; n < FIELDS && p <= copy + size; n++) {
		f[n] = p;
		p += strlen(p) + 1;
	}

	memset(&m, 0, sizeof(m));
	m.from.name = f[1];
	m.from.addr = "sender@example.com";
	to.name = f[2];
	to.addr = "rcpt@example.net";
	m.to = &to;
	m.nto = 1;
	m.subject = f[0];
	if (f[3] != NULL && f[3][0] != '\0') {
		h.name = f[3];
		h.value = f[4] != NULL ? f[4] : "";
		m.headers = &h;
		m.nheaders = 1;
	}
	if (f[5] != NULL) {
		m.text = f[5];
		m.text_len = strlen(f[5]);
	}
	if (f[6] != NULL) {
		m.html = f[6];
		m.html_len = strlen(f[6]);
	}
	if (f[7] != NULL) {
		memset(&att, 0, sizeof(att));
		att.path = path;
		att.type = "application/octet-stream";
		att.name = f[7][0] != '\0' ? f[7] : NULL;
		m.attach = &att;
		m.nattach = 1;
	}
	m.now = 1700000000;

	if ((fd = memfd_create("fuzz-mime", MFD_CLOEXEC)) == -1)
		abort();
	if (sk_mime_compose(&m, fd, &err) == 0)
		check_output(fd);
	else if (err.kind == SK_ERR_LOCAL)
		abort();	/* nothing here can fail for want of a resource */
	(void)close(fd);
	free(copy);
	return 0;
}
