/*
 * Fuzz the client engine with arbitrary server bytes.  The first octets
 * choose the configuration; the rest is fed in chunks whose sizes come from
 * the input too.  Invariants: no crash, no leak, every submitted message
 * gets exactly one result, and the output never grows without bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpkit/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const rcpts[] = { "a@example.org", "b@example.org",
	"c@example.org" };

static void
drain(struct sk_client *c, int *results, int *done)
{
	struct sk_event ev;
	size_t len;

	while (sk_client_next_event(c, &ev)) {
		switch (ev.type) {
		case SK_EV_STARTTLS:
			sk_client_tls_done(c);
			break;
		case SK_EV_BODY:
			(void)sk_client_body(c, "Subject: x\n\n.dot\nline\r\n",
			    23);
			sk_client_body_end(c);
			break;
		case SK_EV_MESSAGE:
			if (ev.msg >= 2 || results[ev.msg]++ != 0)
				abort();
			break;
		case SK_EV_ERROR:
		case SK_EV_CLOSED:
			*done = 1;
			break;
		default:
			break;
		}
	}
	(void)sk_client_output(c, &len);
	if (len > 2 * 1024 * 1024)
		abort();
	sk_client_sent(c, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sk_client_config cfg;
	struct sk_envelope env;
	struct sk_client *c;
	int results[2] = { 0, 0 }, done = 0;
	size_t off, chunk;
	uint8_t flags;

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

	memset(&env, 0, sizeof(env));
	env.from = "me@example.com";
	env.rcpts = rcpts;
	env.nrcpts = 1 + data[1] % 3;
	env.body_8bit = data[1] & 0x10;
	env.size = data[1] & 0x20 ? 5000 : 0;
	(void)sk_client_submit(c, &env, NULL);
	(void)sk_client_submit(c, &env, NULL);
	sk_client_quit(c);

	off = 2;
	while (off < size && !done) {
		chunk = 1 + data[off] % 64;
		off++;
		if (chunk > size - off)
			chunk = size - off;
		(void)sk_client_feed(c, (const char *)data + off, chunk);
		off += chunk;
		drain(c, results, &done);
	}
	sk_client_abort(c, NULL);
	drain(c, results, &done);
	/* Every message has its one result once the session is over. */
	if (sk_client_phase(c) != SK_PHASE_CLOSED &&
	    (results[0] != 1 || results[1] != 1))
		abort();
	sk_client_free(c);
	return 0;
}
