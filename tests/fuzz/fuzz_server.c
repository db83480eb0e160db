/*
 * smtpkit: libFuzzer target for the server engine.
 *
 * The first input octet seeds where the rest is cut into feeds and how
 * the final dots are answered.  Whatever the client sends, the engine
 * must make progress, keep every reply a well-formed line ("ddd" then a
 * space or '-', CRLF), and give the same replies and the same body octets
 * whether the bytes come in those pieces or all at once.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpkit/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	char *out, *body;
	size_t out_len, body_len, cap;
};

static void
put(char *dst, size_t *len, size_t cap, const char *p, size_t n)
{
	if (*len + n > cap)
		abort();
	memcpy(dst + *len, p, n);
	*len += n;
}

static void
drain(struct sk_server *s, struct run *r, unsigned answer)
{
	struct sk_server_event ev;
	const char *p;
	size_t n;

	p = sk_server_body(s, &n);
	put(r->body, &r->body_len, r->cap, p, n);
	sk_server_body_taken(s, n);
	while (sk_server_next_event(s, &ev)) {
		if (ev.type == SK_SRV_EV_MESSAGE &&
		    sk_server_envelope(s) == NULL)
			abort();
		if (ev.type == SK_SRV_EV_END)
			sk_server_reply(s, answer % 2 ? 250 : 451,
			    answer % 3 ? "2.0.0" : NULL, "done");
	}
	p = sk_server_output(s, &n);
	put(r->out, &r->out_len, r->cap, p, n);
	sk_server_sent(s, n);
}

static void
run(const char *in, size_t len, uint32_t seed, unsigned answer,
    struct run *r)
{
	struct sk_server_config cfg;
	struct sk_server *s;
	size_t off = 0, end, n;
	int stuck = 0;

	memset(&cfg, 0, sizeof(cfg));
	cfg.hostname = "mx.test";
	cfg.rcpt_max = 3;
	cfg.size_max = answer % 5 == 0 ? 64 : 0;
	cfg.lf_ends_line = answer % 7 == 0;
	if ((s = sk_server_new(&cfg, NULL)) == NULL)
		abort();
	drain(s, r, answer);
	while (off < len) {
		end = len;
		if (seed != 0) {
			seed = seed * 1103515245u + 12345u;
			end = off + (seed >> 16) % 61 + 1;
			if (end > len)
				end = len;
		}
		while (off < end) {
			n = sk_server_feed(s, in + off, end - off);
			off += n;
			drain(s, r, answer);
			/* every stop is for something the driver just did */
			stuck = n == 0 ? stuck + 1 : 0;
			if (stuck > 2)
				abort();
		}
	}
	sk_server_eof(s);
	drain(s, r, answer);
	sk_server_free(s);
}

static void
check_replies(const char *out, size_t len)
{
	size_t i = 0, j;

	while (i < len) {
		if (len - i < 6)
			abort();
		for (j = 0; j < 3; j++)
			if (out[i + j] < '0' || out[i + j] > '9')
				abort();
		if (out[i + 3] != ' ' && out[i + 3] != '-')
			abort();
		for (j = i; j + 1 < len && !(out[j] == '\r' &&
		    out[j + 1] == '\n'); j++)
			if (out[j] == '\n' || out[j] == '\r')
				abort();
		if (j + 1 >= len)
			abort();
		i = j + 2;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run a, b;
	uint32_t seed;
	size_t cap;

	if (size < 1)
		return 0;
	seed = data[0] * 2654435761u + 1;
	/* replies are short; SK_SRV_ERRORS_MAX bounds how many a line gets */
	cap = 64 * 1024 + 600 * size;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.cap = b.cap = cap;
	a.out = malloc(cap);
	a.body = malloc(cap);
	b.out = malloc(cap);
	b.body = malloc(cap);
	if (a.out == NULL || a.body == NULL || b.out == NULL || b.body == NULL)
		abort();
	run((const char *)data + 1, size - 1, 0, data[0], &a);
	run((const char *)data + 1, size - 1, seed, data[0], &b);
	if (a.out_len != b.out_len || memcmp(a.out, b.out, a.out_len) != 0 ||
	    a.body_len != b.body_len || memcmp(a.body, b.body, a.body_len) != 0)
		abort();
	check_replies(a.out, a.out_len);
	free(a.out);
	free(a.body);
	free(b.out);
	free(b.body);
	return 0;
}
