/*
 * Fuzz the client engine with arbitrary server bytes.  The first octets
 * choose the configuration and which messages only check their envelope
 * (no_data); the rest is fed in chunks whose sizes come from the input too.
 * Invariants: no crash, no leak, every submitted message gets exactly one
 * result, an envelope check never gets a body, a DATA or a "sent" result,
 * and the output never grows without bound.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpkit/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const rcpts[] = { "a@example.org", "b@example.org",
	"c@example.org" };

struct run {
	int results[2];
	bool no_data[2];
	int data_lines;		/* "DATA" commands sent */
	int done;
};

/* Count the DATA commands in what the engine sends (whole lines). */
static void
count_data(struct run *r, const char *out, size_t len)
{
	size_t i, start = 0;

	for (i = 0; i + 1 < len; i++) {
		if (out[i] != '\r' || out[i + 1] != '\n')
			continue;
		if (i - start == 4 && memcmp(out + start, "DATA", 4) == 0)
			r->data_lines++;
		start = i + 2;
	}
}

static void
drain(struct sk_client *c, struct run *r)
{
	struct sk_event ev;
	const char *out;
	size_t len;

	while (sk_client_next_event(c, &ev)) {
		switch (ev.type) {
		case SK_EV_STARTTLS:
			sk_client_tls_done(c);
			break;
		case SK_EV_BODY:
			if (ev.msg >= 2 || r->no_data[ev.msg])
				abort();
			(void)sk_client_body(c, "Subject: x\n\n.dot\nline\r\n",
			    23);
			sk_client_body_end(c);
			break;
		case SK_EV_MESSAGE:
			if (ev.msg >= 2 || r->results[ev.msg]++ != 0)
				abort();
			if (ev.ok != (ev.result != SK_MSG_FAILED) ||
			    ev.result == (r->no_data[ev.msg] ? SK_MSG_SENT :
			    SK_MSG_CHECKED))
				abort();
			break;
		case SK_EV_ERROR:
		case SK_EV_CLOSED:
			r->done = 1;
			break;
		default:
			break;
		}
	}
	out = sk_client_output(c, &len);
	if (len > 2 * 1024 * 1024)
		abort();
	count_data(r, out, len);
	if (r->data_lines > (r->no_data[0] ? 0 : 1) + (r->no_data[1] ? 0 : 1))
		abort();
	sk_client_sent(c, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sk_client_config cfg;
	struct sk_envelope env;
	struct sk_client *c;
	struct run r;
	size_t off, chunk;
	uint8_t flags;
	int i;

	if (size < 2)
		return 0;
	flags = data[0];
	memset(&cfg, 0, sizeof(cfg));
	cfg.helo_name = "fuzz.test";
	cfg.tls_mode = (enum sk_tls_mode)(flags % 3);
	if (flags & 0x04) {
		cfg.user = "user";
		cfg.secret = "secret";
		cfg.auth_mech = (enum sk_auth_mech)((flags >> 3) % SK_AUTH__COUNT);
	}
	cfg.allow_plaintext_auth = (flags & 0x40) != 0;
	cfg.pipeline_max = (flags & 0x80) ? 1 : 0;
	if ((c = sk_client_new(&cfg, NULL)) == NULL)
		return 0;

	memset(&r, 0, sizeof(r));
	memset(&env, 0, sizeof(env));
	env.from = "me@example.com";
	env.rcpts = rcpts;
	env.body_8bit = data[1] & 0x10;
	env.size = data[1] & 0x20 ? 5000 : 0;
	for (i = 0; i < 2; i++) {
		/*
		 * 0x40: the first message only checks its envelope, 0x80:
		 * the second; 0x08: such a check names no recipient.
		 */
		r.no_data[i] = (data[1] & (0x40 << i)) != 0;
		env.no_data = r.no_data[i];
		env.nrcpts = env.no_data && (data[1] & 0x08) ? 0 :
		    1 + data[1] % 3;
		if (sk_client_submit(c, &env, NULL) == -1)
			abort();
	}
	sk_client_quit(c);

	off = 2;
	while (off < size && !r.done) {
		chunk = 1 + data[off] % 64;
		off++;
		if (chunk > size - off)
			chunk = size - off;
		(void)sk_client_feed(c, (const char *)data + off, chunk);
		off += chunk;
		drain(c, &r);
	}
	sk_client_abort(c, NULL);
	drain(c, &r);
	/* Every message has its one result once the session is over. */
	if (sk_client_phase(c) != SK_PHASE_CLOSED &&
	    (r.results[0] != 1 || r.results[1] != 1))
		abort();
	sk_client_free(c);
	return 0;
}
