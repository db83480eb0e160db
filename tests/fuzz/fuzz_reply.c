/*
 * smtpkit: libFuzzer target for the reply parser.
 *
 * The first input octet seeds where the rest is cut into feeds.  The
 * replies (and the error, if any) must be the same whether the bytes come
 * in those pieces or all at once, and every completed reply must keep the
 * promises of reply.h.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpkit/error.h"
#include "smtpkit/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sk_reply_parser whole_p, split_p;

static void
check_reply(const struct sk_reply *r)
{
	char enh[SK_ENHANCED_MAX], joined[256];
	const char *line;
	size_t i, n, nl = 0;

	if (r->code < 200 || r->code > 599 || (r->code / 10) % 10 > 5)
		abort();
	if (r->nlines < 1 || r->nlines > SK_REPLY_LINES_MAX)
		abort();
	if (r->len >= SK_REPLY_TEXT_MAX || r->text[r->len] != '\0' ||
	    strlen(r->text) != r->len)
		abort();
	for (i = 0; i < r->len; i++)
		if (r->text[i] == '\n')
			nl++;
		else if (r->text[i] == '\r')
			abort();
	if (nl != r->nlines - 1 || r->off[0] != 0)
		abort();
	for (i = 0; i < r->nlines; i++) {
		if ((line = sk_reply_line(r, i, &n)) == NULL)
			abort();
		if (line + n > r->text + r->len ||
		    memchr(line, '\n', n) != NULL)
			abort();
		if (i > 0 && r->text[r->off[i] - 1] != '\n')
			abort();
	}
	if (sk_reply_line(r, r->nlines, &n) != NULL)
		abort();
	/* enhanced is "" or the code at the start of the first line */
	if (r->enhanced[0] != '\0') {
		line = sk_reply_line(r, 0, &n);
		if (sk_enhanced_parse(line, n, enh) == 0 ||
		    strcmp(enh, r->enhanced) != 0 ||
		    r->enhanced[0] != '0' + r->code / 100)
			abort();
	}
	sk_reply_join(r, joined, sizeof(joined));
	if (strlen(joined) != (r->len < sizeof(joined) ? r->len :
	    sizeof(joined) - 1) || strchr(joined, '\n') != NULL)
		abort();
}

/* A running digest of what the parser reported. */
static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n-- > 0)
		h = (h ^ *s++) * 0x100000001b3ULL;
	return h;
}

static uint64_t
record(uint64_t h, int rv, const struct sk_reply_parser *p,
    const struct sk_error *err)
{
	h = mix(h, &rv, sizeof(rv));
	if (rv == SK_REPLY_DONE) {
		check_reply(&p->reply);
		h = mix(h, &p->reply.code, sizeof(p->reply.code));
		h = mix(h, p->reply.text, p->reply.len + 1);
		h = mix(h, p->reply.enhanced, strlen(p->reply.enhanced));
	} else if (rv == SK_REPLY_ERROR) {
		if (err->kind != SK_ERR_PROTOCOL || err->message[0] == '\0')
			abort();
	}
	return h;
}

/* Feed [pos, pos + len) until it is used up or the parser fails. */
static int
feed(struct sk_reply_parser *p, const char *buf, size_t len, uint64_t *h)
{
	struct sk_error err;
	size_t used;
	int rv;

	while (len > 0) {
		rv = sk_reply_parse(p, buf, len, &used, &err);
		if (used > len)
			abort();
		if (rv == SK_REPLY_MORE && used != len)
			abort();
		if (rv == SK_REPLY_DONE && (used == 0 || buf[used - 1] != '\n'))
			abort();
		if (rv != SK_REPLY_MORE)
			*h = record(*h, rv, p, &err);
		if (rv == SK_REPLY_ERROR) {
			/* and it stays failed until re-initialised */
			if (sk_reply_parse(p, "250 ok\r\n", 8, &used, NULL) !=
			    SK_REPLY_ERROR || used != 0)
				abort();
			return -1;
		}
		buf += used;
		len -= used;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf;
	uint64_t h_whole = 14695981039346656037ULL, h_split = h_whole;
	uint32_t seed;
	size_t len, pos, n;

	if (size < 1)
		return 0;
	seed = data[0] * 2654435761u + 1;
	buf = (const char *)data + 1;
	len = size - 1;

	sk_reply_parser_init(&whole_p);
	(void)feed(&whole_p, buf, len, &h_whole);

	sk_reply_parser_init(&split_p);
	for (pos = 0; pos < len; pos += n) {
		seed = seed * 1103515245u + 12345u;
		/* mostly small pieces, sometimes a large one */
		n = (seed >> 16) % 8 == 0 ? (seed >> 8) % 4096 + 1 :
		    (seed >> 16) % 7 + 1;
		if (n > len - pos)
			n = len - pos;
		if (feed(&split_p, buf + pos, n, &h_split) == -1)
			break;
	}
	if (h_whole != h_split)
		abort();
	return 0;
}
