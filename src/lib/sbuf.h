/*
 * smtpkit internal: a growable string for text that may hold a secret
 * (a config file with a password, an OAuth2 form with a token).  Growing
 * copies into a new block and wipes the old one instead of realloc(),
 * which could leave the secret behind in freed memory.
 */
#ifndef SMTPKIT_SBUF_H
#define SMTPKIT_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct sk__sbuf {
	char *p;		/* NUL-terminated once anything was added */
	size_t len, cap;
	bool oom;		/* an allocation failed: later adds do nothing */
};

void sk__sbuf_add(struct sk__sbuf *b, const char *s, size_t n);
void sk__sbuf_str(struct sk__sbuf *b, const char *s);

/* Wipe and free; b is empty again. */
void sk__sbuf_free(struct sk__sbuf *b);

#endif
