/*
 * smtpkit: address lists in message headers (RFC 5322 §3.4).
 *
 * To, Cc, Bcc and From hold address lists: mailboxes with or without a
 * display name, groups, comments, quoted strings, and header folding.
 * sk_addrlist_parse walks one header value and hands every mailbox to a
 * callback as a bare addr-spec fit for an SMTP envelope, with its display
 * name and group beside it.  What is found in the wild and RFC 5322 §4
 * calls obsolete is accepted too: empty list elements, source routes in
 * angle brackets, dots and CFWS between the words of a local part or
 * domain, and a lone local part without a domain ("root"), which is
 * reported with has_domain false so that the caller can qualify it.
 */
#ifndef SMTPKIT_ADDRLIST_H
#define SMTPKIT_ADDRLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* One mailbox of an address list; the strings are borrowed for the call. */
struct sk_mailbox {
	const char *addr;	/* addr-spec: local@domain, CFWS removed, the
				   local part quoted only when it must be */
	const char *name;	/* display name, quotes undone, white space
				   collapsed; "" when none */
	const char *group;	/* display name of the enclosing group, "" */
	bool has_domain;	/* false for a lone local part ("root") */
};

/* Called for each mailbox in order; a non-zero return stops the parse. */
typedef int sk_addrlist_fn(void *arg, const struct sk_mailbox *mb);

/*
 * Parse the address list in text (len octets, a header field's value,
 * line folds included).  fn is called for each mailbox, groups' members
 * included; an empty group ("undisclosed-recipients:;") gives none.
 * Returns the number of mailboxes, or -1 with err: kind SK_ERR_DATA and a
 * message saying what is wrong at which octet (1-based) for a syntax
 * error, SK_ERR_LOCAL when memory fails; -1 too when fn stopped the parse
 * (err untouched then).  Mailboxes before a syntax error have been passed
 * to fn.  The whole list is tokenized before fn is first called, so a
 * stray quote or parenthesis is found before any mailbox is reported.
 */
int sk_addrlist_parse(const char *text, size_t len, sk_addrlist_fn *fn,
    void *arg, struct sk_error *err);

#endif
