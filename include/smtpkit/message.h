/*
 * smtpkit: message input and simple composition.
 *
 * Checks on what the user gives (addresses, header-bound text), a scanner
 * that measures a ready RFC 5322 message without holding it (size on the
 * wire, 8-bit octets, over-long lines), and the composition of a plain
 * UTF-8 text message.
 */
#ifndef SMTPKIT_MESSAGE_H
#define SMTPKIT_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"

/* RFC 5322 §2.1.1: a line is at most 998 octets without its CRLF. */
#define SK_LINE_MAX 998

/*
 * Check an envelope address (RFC 5321 §4.1.2 Mailbox, without the angle
 * brackets): local@domain, local part at most 64 octets, whole at most 254
 * (§4.5.3.1), no controls, spaces or brackets outside a quoted local part.
 * Non-ASCII is accepted when it is valid UTF-8, and *utf8 (may be NULL) is
 * then set: the server must offer SMTPUTF8 (RFC 6531).
 * Errors: stage SK_STAGE_LOCAL, kind SK_ERR_USAGE, message naming what
 * (e.g. "--to") and the address.
 */
int sk_addr_check(const char *what, const char *addr, bool *utf8,
    struct sk_error *err);

/*
 * Check text bound for a header (subject, display name): no CR or LF (header
 * injection), no other control but TAB, valid UTF-8.  Errors as above.
 */
int sk_header_check(const char *what, const char *value, struct sk_error *err);

/*
 * Measures of a ready message, gathered as it streams by in chunks of any
 * size.  A line ends at CRLF, bare LF or bare CR; each becomes one CRLF on
 * the wire, and a line starting with "." takes one more (RFC 5321 §4.5.2).
 * wire_size counts a CRLF added after an unended last line, but not the
 * final ".\r\n".  Call sk_scan_finish after the last chunk.
 */
struct sk_scan {
	uint64_t size;		/* octets read */
	uint64_t wire_size;	/* octets between DATA and the final dot */
	uint64_t lines;
	bool has_8bit;		/* an octet above 127: needs 8BITMIME */
	bool has_nul;
	uint64_t nul_line;	/* line of the first NUL (1-based), 0 if none */
	uint64_t long_line;	/* first line over SK_LINE_MAX octets (1-based), 0 if none */
	uint64_t long_line_len;	/* its length */
	/* private */
	uint64_t cur_len;
	int bol, cr;
};

void sk_scan_init(struct sk_scan *s);
void sk_scan_feed(struct sk_scan *s, const char *buf, size_t len);
void sk_scan_finish(struct sk_scan *s);

/*
 * Scan fd from its current offset to end of file: s is initialised here
 * and finished at the end.  Errors: kind SK_ERR_LOCAL with sys_errno on a
 * read failure, naming name.
 */
int sk_scan_fd(int fd, const char *name, struct sk_scan *s,
    struct sk_error *err);

/*
 * Refuse a message that cannot be sent as it is: a NUL octet, or a line
 * over 998 octets ("line 12 is 1204 octets long ...").  Stage
 * SK_STAGE_LOCAL, kind SK_ERR_DATA, naming name.
 */
int sk_scan_check(const struct sk_scan *s, const char *name,
    struct sk_error *err);

struct sk_compose {
	const char *from;		/* envelope-checked address */
	const char *const *to;
	size_t nto;
	const char *const *cc;
	size_t ncc;
	const char *subject;		/* UTF-8, NULL for none */
	const char *text;		/* UTF-8 body, LF or CRLF line ends */
	size_t text_len;
	time_t now;			/* for Date; 0 for the current time */
};

/*
 * Compose a message: From, To (or "undisclosed-recipients:;" when there is
 * neither To nor Cc), Cc (never Bcc), Subject (none when NULL; folded at
 * spaces when printable ASCII, otherwise RFC 2047 encoded words), Date
 * (RFC 5322 §3.3, local zone), Message-ID (random, at the From domain,
 * which may be an address literal), MIME-Version, Content-Type text/plain
 * UTF-8, and a body that is 7bit when it can be, otherwise
 * quoted-printable, so that it never needs 8BITMIME.  Lines end in CRLF and
 * none is longer than 998 octets.  The addresses and the subject are
 * checked again (sk_addr_check, sk_header_check), so that nothing can
 * inject a header.  Returns a malloc'd buffer (owned by the caller;
 * NUL-terminated, the NUL not counted in *len) with *len set, or NULL with
 * err: kind SK_ERR_USAGE for a bad address or subject, SK_ERR_DATA when
 * text is not valid UTF-8, SK_ERR_LOCAL when memory or getrandom() fails.
 */
char *sk_message_compose(const struct sk_compose *m, size_t *len,
    struct sk_error *err);

/*
 * RFC 2047 "B" encoding of a UTF-8 header value: returned unchanged when
 * printable ASCII (tabs allowed) with no "=?" in it, otherwise as encoded
 * words of at most 75 octets that never split a UTF-8 sequence, separated
 * by CRLF SP, every line within 76 octets.  lead is the octets the header
 * already takes on its first line ("Subject: " = 9); when it leaves no
 * room for a word, the output starts with CRLF SP.  Returns the length
 * written (NUL-terminated), or (size_t)-1 if cap is too small (out then
 * holds "").
 */
size_t sk_rfc2047_encode(const char *in, size_t lead, char *out, size_t cap);

/*
 * RFC 5322 §3.3 date-time in the local zone, e.g.
 * "Sun, 29 Nov 2026 09:00:00 +0800", with English names whatever the
 * locale.  Returns the length written (NUL-terminated), or (size_t)-1 when
 * cap is too small or t cannot be converted (out then holds "").
 */
size_t sk_rfc5322_date(time_t t, char *out, size_t cap);

/*
 * A Message-ID (RFC 5322 §3.6.4), "<128 random bits in hex@domain>", the
 * domain as given (a name, or an address literal such as "[192.0.2.1]").
 * Returns the length written (NUL-terminated), or (size_t)-1 when cap is
 * too small or getrandom() fails (out then holds "").
 */
size_t sk_message_id(const char *domain, char *out, size_t cap);

#endif
