/*
 * smtpkit: the doctor's parallel probes (internal).
 *
 * Every (address, port) pair is connected at once, without blocking, in
 * one poll(2) loop bounded by one timeout for the whole set; then, per
 * port, the first address that connected waits for the greeting (a
 * plaintext banner, read by the client engine, which also says EHLO to
 * learn whether STARTTLS is offered), and a port that stays silent gets a
 * TLS handshake on the same connection: success means implicit TLS.
 * All of it in the same loop, so a dropped port costs one timeout, not
 * one per port.
 */
#ifndef SMTPKIT_PROBE_H
#define SMTPKIT_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtpkit/client.h"
#include "smtpkit/dns.h"
#include "smtpkit/doctor.h"
#include "smtpkit/error.h"
#include "smtpkit/trace.h"

/* Lines of evidence kept per probe. */
#define SK__PROBE_LINES_MAX 40

struct sk__probe {
	/* in */
	struct sk_addr addr;		/* port set */
	unsigned port;
	enum sk_tls_mode expect;	/* what the configuration expects here */
	/* out */
	struct sk_doctor_port res;	/* state, ms, mode, banner, starttls */
	bool greeted;			/* this address was the port's greeting probe */
	int64_t connect_ms;		/* when the connection attempt ended, from the start */
	int64_t done_ms;		/* when the last step ended, from the start */
	char tls_note[256];		/* what the TLS probe learnt */
	char **evidence;		/* lines seen (owned) */
	size_t nevidence;
};

struct sk__probe_config {
	const char *servername;		/* SNI for the TLS probe; NULL for none */
	const char *helo_name;		/* for EHLO */
	int timeout_ms;			/* the one timeout for the whole set */
	const struct sk_trace *trace;	/* the caller's, may be NULL */
};

/*
 * Probe the n pairs in p (in: addr, port, expect) and fill their results.
 * Returns 0, or -1 with err (SK_ERR_LOCAL) when poll(2) or memory failed;
 * the results are then partial but consistent.
 */
int sk__probe_run(const struct sk__probe_config *cfg, struct sk__probe *p,
    size_t n, struct sk_error *err);

/* Free what sk__probe_run allocated (evidence). */
void sk__probe_fini(struct sk__probe *p, size_t n);

/*
 * A growing list of lines (evidence, fix steps): add one formatted line,
 * cut at 1023 octets.  Returns 0, or -1 when out of memory.
 */
int sk__lines_add(char ***v, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sk__lines_free(char **v, size_t n);

#endif
