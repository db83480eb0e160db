/*
 * smtpkit: SMTP reply parser (RFC 5321 §4.2, RFC 3463).
 *
 * Sans-I/O and incremental: feed it whatever bytes arrived; it says when
 * one whole (possibly multi-line) reply is complete.  Every line and the
 * number of lines are bounded; garbage is a protocol error, never a crash.
 */
#ifndef SMTPKIT_REPLY_H
#define SMTPKIT_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/*
 * RFC 5321 §4.5.3.1.5 allows 512 octets per reply line; real servers send
 * longer ones (Gmail's 534-5.7.14 carries a long URL), so accept more.
 */
#define SK_REPLY_LINE_MAX 2048		/* octets per line, CRLF included */
#define SK_REPLY_LINES_MAX 100		/* lines per reply */
#define SK_REPLY_TEXT_MAX 16384		/* all lines' text together */

struct sk_reply {
	int code;				/* 200..599 */
	char enhanced[SK_ENHANCED_MAX];	/* from the first line, "" if none */
	size_t nlines;
	size_t len;				/* octets used in text */
	uint16_t off[SK_REPLY_LINES_MAX];	/* where each line starts in text */
	/*
	 * The text of each line after "NNN-" / "NNN " (enhanced code kept),
	 * lines separated by '\n', NUL-terminated.
	 */
	char text[SK_REPLY_TEXT_MAX];
};

struct sk_reply_parser {
	struct sk_reply reply;
	char line[SK_REPLY_LINE_MAX];
	size_t line_len;
	int done;		/* 1: last call completed a reply; -1: failed */
};

enum {
	SK_REPLY_ERROR = -1,
	SK_REPLY_MORE = 0,
	SK_REPLY_DONE = 1
};

void sk_reply_parser_init(struct sk_reply_parser *p);

/*
 * Consume bytes from buf until one whole reply is complete or buf is used
 * up; *consumed says how many were used (bytes after the end of a reply are
 * left for the next call).  Returns SK_REPLY_DONE with the reply in
 * p->reply (valid until the next call), SK_REPLY_MORE when more bytes are
 * needed, or SK_REPLY_ERROR with err filled (kind SK_ERR_PROTOCOL, stage
 * left SK_STAGE_NONE for the caller to set) on a malformed line, a line or
 * reply over its limit, or continuation lines whose code differs.  After an
 * error the parser must be re-initialised.
 *
 * Accepted: "NNN text", "NNN-text", "NNN" alone; CRLF or bare LF line ends.
 */
int sk_reply_parse(struct sk_reply_parser *p, const char *buf, size_t len,
    size_t *consumed, struct sk_error *err);

/* Line i (0-based) of r, not NUL-terminated; *len set.  NULL if i is out of range. */
const char *sk_reply_line(const struct sk_reply *r, size_t i, size_t *len);

/*
 * Parse an RFC 3463 enhanced status code "class.subject.detail" (class 2, 4
 * or 5; subject and detail 1-3 digits) at the start of s.  On success write
 * it NUL-terminated to out and return the octets it takes in s, including
 * one following space if any; return 0 when s does not start with one.
 */
size_t sk_enhanced_parse(const char *s, size_t len, char out[SK_ENHANCED_MAX]);

/* Write the reply's lines joined by ' ' into out (always NUL-terminated). */
void sk_reply_join(const struct sk_reply *r, char *out, size_t cap);

#endif
