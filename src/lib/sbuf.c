/* smtpkit internal: a growable string that wipes what it drops. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sbuf.h"

void
sk__sbuf_add(struct sk__sbuf *b, const char *s, size_t n)
{
	size_t ncap;
	char *np;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap != 0 ? b->cap : 256;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		/* Not realloc: the old block may hold a secret. */
		if ((np = malloc(ncap)) == NULL) {
			b->oom = true;
			return;
		}
		if (b->len > 0)
			memcpy(np, b->p, b->len);
		if (b->p != NULL) {
			OPENSSL_cleanse(b->p, b->cap);
			free(b->p);
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
sk__sbuf_str(struct sk__sbuf *b, const char *s)
{
	sk__sbuf_add(b, s, strlen(s));
}

void
sk__sbuf_free(struct sk__sbuf *b)
{
	if (b->p != NULL) {
		OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}
