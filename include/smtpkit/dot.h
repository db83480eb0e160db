/*
 * smtpkit: streaming DATA encoder (RFC 5321 §4.5.2, §2.3.8).
 *
 * Turns message octets into the DATA stream as they go by: every line end
 * becomes CRLF (bare LF and bare CR included), a line starting with "."
 * is given one more ".", and the end is "<CRLF>.<CRLF>" (a CRLF is added first
 * when the message does not end with one).  Memory does not grow with the
 * message: state is a few flags.
 */
#ifndef SMTPKIT_DOT_H
#define SMTPKIT_DOT_H

#include <stddef.h>
#include <stdint.h>

struct sk_dot {
	int bol;		/* at the beginning of a line */
	int cr;			/* last input octet was a CR (its CRLF is out);
				   an LF next completes it and adds nothing */
	uint64_t out_total;	/* octets produced so far */
};

void sk_dot_init(struct sk_dot *d);

/*
 * Encode from in into out.  Stops when in is used up or out has no room for
 * the next unit (at most 2 octets: ".." or CRLF; with at least 2 every call
 * makes progress); *consumed says how much of in was used.
 * Returns the octets written to out.  A chunk may end anywhere, a CR of a
 * CRLF included.
 */
size_t sk_dot_encode(struct sk_dot *d, const char *in, size_t inlen,
    size_t *consumed, char *out, size_t outcap);

/*
 * Write the end of data: a CRLF if the last line was not ended, then
 * ".\r\n".  outcap must be at least SK_DOT_FINISH_MAX; returns octets written
 * (0, with nothing written, when they do not fit).
 */
#define SK_DOT_FINISH_MAX 5
size_t sk_dot_finish(struct sk_dot *d, char *out, size_t outcap);

/*
 * Octets the DATA stream of a message of these properties takes, final
 * ".\r\n" included: len octets with nbare bare-LF (or bare-CR) line ends
 * and ndot lines starting with ".".  A message whose last line has no line
 * end takes 2 more (the CRLF sk_dot_finish adds).  As a SIZE value it errs
 * high: RFC 1870 counts neither the stuffed dots nor the final ".\r\n".
 */
uint64_t sk_dot_size(uint64_t len, uint64_t nbare, uint64_t ndot);

#endif
