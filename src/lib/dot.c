/* smtpkit: streaming DATA encoder (RFC 5321 §4.5.2, §2.3.8). */
#include <string.h>

#include "smtpkit/dot.h"

void
sk_dot_init(struct sk_dot *d)
{
	d->bol = 1;
	d->cr = 0;
	d->out_total = 0;
}

/*
 * A CR is answered with CRLF at once, so that nothing waits on the next
 * chunk; d->cr then says that an LF coming next is the rest of that CRLF
 * and produces nothing.  Runs between line ends are found with memchr and
 * copied whole: this is the path every octet of a large message takes.
 */
size_t
sk_dot_encode(struct sk_dot *d, const char *in, size_t inlen,
    size_t *consumed, char *out, size_t outcap)
{
	const char *p, *end, *lim, *stop, *cr;
	const char *nl = NULL;		/* next LF from p, if before nl_end */
	const char *nl_end = NULL;	/* how far the LF search went */
	char *o, *oend;
	size_t room, n;

	*consumed = 0;
	if (inlen == 0)
		return 0;	/* in may then be NULL: no arithmetic on it */
	p = in;
	end = in + inlen;
	o = out;
	oend = out + outcap;
	while (p < end) {
		if (d->cr) {
			d->cr = 0;
			if (*p == '\n') {
				p++;
				continue;
			}
		}
		/* RFC 5321 §4.5.2: a "." that starts a line is doubled. */
		if (d->bol && *p == '.') {
			if (oend - o < 2)
				break;
			*o++ = '.';
			*o++ = '.';
			p++;
			d->bol = 0;
			continue;
		}

		room = (size_t)(oend - o);
		n = (size_t)(end - p);
		lim = p + (n < room ? n : room);
		/*
		 * The LF search is remembered across runs, or a message with
		 * bare CRs and no LF would be searched again after each CR.
		 */
		if (nl_end == NULL || (nl != NULL && nl < p) ||
		    (nl == NULL && nl_end < lim)) {
			nl = memchr(p, '\n', (size_t)(lim - p));
			nl_end = lim;
		}
		stop = nl != NULL && nl < lim ? nl : lim;
		if ((cr = memchr(p, '\r', (size_t)(stop - p))) != NULL)
			stop = cr;

		if (stop > p) {
			memcpy(o, p, (size_t)(stop - p));
			o += stop - p;
			p = stop;
			d->bol = 0;
		}
		if (p == lim)
			break;		/* input used up or output full */

		/* p is at a CR or an LF: either way the line ends in CRLF. */
		if (oend - o < 2)
			break;
		*o++ = '\r';
		*o++ = '\n';
		d->bol = 1;
		d->cr = *p == '\r';
		p++;
	}
	*consumed = (size_t)(p - in);
	d->out_total += (uint64_t)(o - out);
	return (size_t)(o - out);
}

size_t
sk_dot_finish(struct sk_dot *d, char *out, size_t outcap)
{
	size_t n = 0;

	if (outcap < (d->bol ? 3u : 5u))
		return 0;
	/* A CR already produced its CRLF, so bol covers it as well. */
	if (!d->bol) {
		out[n++] = '\r';
		out[n++] = '\n';
	}
	out[n++] = '.';
	out[n++] = '\r';
	out[n++] = '\n';
	d->bol = 1;
	d->cr = 0;
	d->out_total += n;
	return n;
}

uint64_t
sk_dot_size(uint64_t len, uint64_t nbare, uint64_t ndot)
{
	/*
	 * Each bare line end grows by one octet to CRLF, each stuffed line by
	 * its extra ".", and ".\r\n" ends the data.
	 */
	return len + nbare + ndot + 3;
}
