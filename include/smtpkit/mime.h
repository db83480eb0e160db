/*
 * smtpkit: MIME composition (text, HTML, attachments, inline images).
 *
 * Composition is done with GMime 3, which lives in a module of its own
 * (smtpkit-mime.so) that is loaded the first time sk_mime_compose is
 * called: a program that only sends ready messages, sendmail among them,
 * never loads GMime, GLib or libmagic.
 *
 * The message is written to a file descriptor, start to end, with CRLF line
 * ends, no line over 998 octets, and nothing but 7-bit octets (RFC 2047
 * encoded words in headers, RFC 2231 parameters for non-ASCII file names,
 * quoted-printable or base64 bodies), so that it never needs 8BITMIME.
 * Attachments are read from their files as the message is written, in
 * chunks: memory does not grow with their size.
 *
 * Structure, from what is given:
 *   text only                 text/plain
 *   html only                 text/html
 *   text and html             multipart/alternative (text, html)
 *   inline parts              the html becomes multipart/related
 *                             (html, inline parts), RFC 2387
 *   attachments               multipart/mixed (body, attachments...)
 */
#ifndef SMTPKIT_MIME_H
#define SMTPKIT_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "error.h"

/* A mailbox for a header: addr-spec, and a UTF-8 display name or NULL. */
struct sk_mime_addr {
	const char *name;
	const char *addr;
};

/* An attached or inline file. */
struct sk_mime_file {
	const char *path;	/* read when the message is written */
	const char *type;	/* "image/png"; NULL: detected (libmagic) */
	const char *name;	/* file name shown; NULL: basename of path */
	const char *cid;	/* inline only: Content-ID without <>;
				   NULL: the file name shown */
};

/* A header given by the user, "Name: value" split. */
struct sk_mime_header {
	const char *name;
	const char *value;	/* UTF-8; encoded (RFC 2047) when not ASCII */
};

struct sk_mime {
	struct sk_mime_addr from;
	const struct sk_mime_addr *to;
	size_t nto;
	const struct sk_mime_addr *cc;
	size_t ncc;
	const struct sk_mime_addr *reply_to;
	size_t nreply_to;
	const char *subject;		/* UTF-8, NULL for none */
	const char *text;		/* UTF-8 text part, NULL for none */
	size_t text_len;
	const char *html;		/* UTF-8 HTML part, NULL for none */
	size_t html_len;
	const struct sk_mime_file *attach;
	size_t nattach;
	const struct sk_mime_file *inl;	/* need html */
	size_t ninl;
	/*
	 * Extra headers, in order.  One named like a header smtpkit writes
	 * (Subject, To, Cc, Reply-To, Date, Message-ID) replaces it; From,
	 * Bcc, Resent-Bcc, MIME-Version and Content-* are refused (SK_ERR_USAGE).
	 */
	const struct sk_mime_header *headers;
	size_t nheaders;
	time_t now;			/* for Date; 0 for the current time */
};

/*
 * Write the message to fd.  Neither text nor html: an empty text/plain
 * body.  Everything is checked before the first octet is written: the
 * addresses (sk_addr_check), header names and values (no CR, LF or other
 * controls but TAB), that every file can be opened and is a regular file,
 * that inline parts come with html, that text and html are valid UTF-8.
 * Errors: stage SK_STAGE_LOCAL; kind SK_ERR_USAGE for what the user gave
 * wrongly, naming it ("--header \"Bcc: x\": use --bcc", "--inline needs
 * --html"); SK_ERR_DATA for text or html that is not UTF-8; SK_ERR_LOCAL
 * with sys_errno for a file that cannot be read ("--attach /x/y: No such
 * file or directory", EISDIR for a directory) and for a failure of the
 * system (module not found or not loadable, memory, a write to fd).
 * Returns 0, or -1 with err set; on -1 fd may hold part of a message.
 */
int sk_mime_compose(const struct sk_mime *m, int fd, struct sk_error *err);

/*
 * Whether the composing module has been loaded into this process (for
 * tests and benchmarks that check the plain paths never load it).
 */
bool sk_mime_loaded(void);

#endif
