/* smtpkit: SMTP reply parser (RFC 5321 §4.2, RFC 3463). */
#include <string.h>

#include "smtpkit/error.h"
#include "smtpkit/reply.h"

/* p->done after an error: every later call fails until re-initialised. */
#define REPLY_BROKEN (-1)

#define REPLY_STR2(x) #x
#define REPLY_STR(x) REPLY_STR2(x)

static void
reply_reset(struct sk_reply *r)
{
	r->code = 0;
	r->enhanced[0] = '\0';
	r->nlines = 0;
	r->len = 0;
	r->text[0] = '\0';
}

void
sk_reply_parser_init(struct sk_reply_parser *p)
{
	reply_reset(&p->reply);
	p->line_len = 0;
	p->done = 0;
}

static int
reply_fail(struct sk_reply_parser *p, struct sk_error *err, const char *why)
{
	p->done = REPLY_BROKEN;
	return sk_error_set(err, SK_STAGE_NONE, SK_ERR_PROTOCOL,
	    "malformed reply from the server: %s", why);
}

/*
 * Parse one complete line (its line end already removed) into p->reply.
 * Returns 1 when it was the last line of the reply, 0 when more lines
 * follow, SK_REPLY_ERROR when it is malformed.
 */
static int
reply_line(struct sk_reply_parser *p, const char *s, size_t n,
    struct sk_error *err)
{
	struct sk_reply *r = &p->reply;
	const char *text;
	size_t tlen, need, i;
	int code, last;

	/*
	 * RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39.  A first digit
	 * of 1 (positive preliminary) is not used by SMTP, and the second
	 * digit only goes up to 5 (§4.2.1).
	 */
	if (n < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' ||
	    s[2] < '0' || s[2] > '9')
		return reply_fail(p, err, "no valid reply code");
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');

	/*
	 * "NNN-text" continues the reply, "NNN text" or a bare "NNN" ends it
	 * (§4.2.1; the bare code is what §4.2 grammar allows for a final line
	 * with no text and what some servers send).
	 */
	if (n == 3 || s[3] == ' ')
		last = 1;
	else if (s[3] == '-')
		last = 0;
	else
		return reply_fail(p, err,
		    "no space or hyphen after the reply code");
	text = n > 3 ? s + 4 : s + n;
	tlen = n > 3 ? n - 4 : 0;

	/*
	 * Text is shown to people and joined with '\n' and NUL here; a NUL or
	 * a CR that does not end the line (RFC 5321 §2.3.8 forbids bare CR)
	 * would change the structure of what we hand on.
	 */
	for (i = 0; i < tlen; i++)
		if (text[i] == '\0' || text[i] == '\r')
			return reply_fail(p, err,
			    "a NUL or CR inside the text");

	if (r->nlines == 0)
		r->code = code;
	else if (code != r->code)
		return reply_fail(p, err,
		    "continuation lines with different reply codes");

	if (r->nlines == SK_REPLY_LINES_MAX)
		return reply_fail(p, err, "more than "
		    REPLY_STR(SK_REPLY_LINES_MAX) " lines");
	need = (r->nlines > 0 ? 1 : 0) + tlen + 1;
	if (need > SK_REPLY_TEXT_MAX - r->len)
		return reply_fail(p, err, "more than "
		    REPLY_STR(SK_REPLY_TEXT_MAX) " octets of text");

	if (r->nlines > 0)
		r->text[r->len++] = '\n';
	r->off[r->nlines++] = (uint16_t)r->len;
	memcpy(r->text + r->len, text, tlen);
	r->len += tlen;
	r->text[r->len] = '\0';

	/*
	 * RFC 3463 enhanced status code, from the first line only.  RFC 2034
	 * §4 requires its class to match the reply code's first digit; text
	 * that merely looks like one ("250 2.1.0.5 Hello") is left alone.
	 */
	if (r->nlines == 1 &&
	    (sk_enhanced_parse(text, tlen, r->enhanced) == 0 ||
	    r->enhanced[0] != s[0]))
		r->enhanced[0] = '\0';
	return last;
}

int
sk_reply_parse(struct sk_reply_parser *p, const char *buf, size_t len,
    size_t *consumed, struct sk_error *err)
{
	const char *nl;
	size_t pos = 0, chunk, n;
	int rv;

	*consumed = 0;
	if (p->done == REPLY_BROKEN)
		return sk_error_set(err, SK_STAGE_NONE, SK_ERR_PROTOCOL,
		    "reply parser used after an error");
	if (p->done) {
		reply_reset(&p->reply);
		p->done = 0;
	}

	while (pos < len) {
		chunk = len - pos;
		nl = memchr(buf + pos, '\n', chunk);
		if (nl != NULL)
			chunk = (size_t)(nl - (buf + pos));
		/*
		 * SK_REPLY_LINE_MAX counts the line end; a line that cannot
		 * end in time fails now rather than when its LF arrives.
		 */
		if (chunk > SK_REPLY_LINE_MAX - 1 - p->line_len) {
			*consumed = pos;
			return reply_fail(p, err, "a line over "
			    REPLY_STR(SK_REPLY_LINE_MAX) " octets");
		}
		memcpy(p->line + p->line_len, buf + pos, chunk);
		p->line_len += chunk;
		pos += chunk;
		if (nl == NULL)
			break;
		pos++;		/* the LF */

		n = p->line_len;
		if (n > 0 && p->line[n - 1] == '\r')
			n--;
		p->line_len = 0;
		rv = reply_line(p, p->line, n, err);
		if (rv == SK_REPLY_ERROR) {
			*consumed = pos;
			return SK_REPLY_ERROR;
		}
		if (rv == 1) {
			*consumed = pos;
			p->done = 1;
			return SK_REPLY_DONE;
		}
	}
	*consumed = pos;
	return SK_REPLY_MORE;
}

const char *
sk_reply_line(const struct sk_reply *r, size_t i, size_t *len)
{
	size_t end;

	if (i >= r->nlines) {
		if (len != NULL)
			*len = 0;
		return NULL;
	}
	/* Lines are separated by one '\n', so the next start tells the end. */
	end = i + 1 < r->nlines ? (size_t)r->off[i + 1] - 1 : r->len;
	if (len != NULL)
		*len = end - r->off[i];
	return r->text + r->off[i];
}

/* Parse 1 to 3 digits without a leading zero (RFC 3463 §2). */
static size_t
enhanced_number(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && i < 4 && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == 0 || i > 3 || (i > 1 && s[0] == '0'))
		return 0;
	return i;
}

size_t
sk_enhanced_parse(const char *s, size_t len, char out[SK_ENHANCED_MAX])
{
	size_t pos, n;

	/* status-code = class "." subject "." detail (RFC 3463 §2) */
	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return 0;
	pos = 2;
	if ((n = enhanced_number(s + pos, len - pos)) == 0)
		return 0;
	pos += n;
	if (pos >= len || s[pos] != '.')
		return 0;
	pos++;
	if ((n = enhanced_number(s + pos, len - pos)) == 0)
		return 0;
	pos += n;
	/* It must stand alone: "2.0.0.1" or "5.7.1:" is something else. */
	if (pos < len && s[pos] != ' ')
		return 0;
	if (out != NULL) {
		memcpy(out, s, pos);
		out[pos] = '\0';
	}
	return pos < len ? pos + 1 : pos;
}

void
sk_reply_join(const struct sk_reply *r, char *out, size_t cap)
{
	size_t n, i;

	if (cap == 0)
		return;
	n = r->len < cap - 1 ? r->len : cap - 1;
	memcpy(out, r->text, n);
	for (i = 0; i < n; i++)
		if (out[i] == '\n')
			out[i] = ' ';
	out[n] = '\0';
}
