/*
 * smtpkit: libFuzzer target for the address-list parser.
 *
 * Whatever the input, every mailbox reported must be a non-empty string
 * without line breaks or NULs (it goes into RCPT TO), a lone local part
 * exactly when it has no domain, and must parse back, alone, to itself:
 * the normal form is a fixed point.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpkit/addrlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct again {
	char *addr;
	bool has_domain;
	int n;
};

static int
same(void *arg, const struct sk_mailbox *mb)
{
	struct again *a = arg;

	a->n++;
	if (strcmp(mb->addr, a->addr) != 0 || mb->has_domain != a->has_domain)
		abort();
	if (mb->name[0] != '\0' || mb->group[0] != '\0')
		abort();
	return 0;
}

static int
check(void *arg, const struct sk_mailbox *mb)
{
	struct again a;
	size_t len = strlen(mb->addr);

	(void)arg;
	if (len == 0 || strpbrk(mb->addr, "\r\n") != NULL ||
	    strpbrk(mb->name, "\r\n") != NULL ||
	    strpbrk(mb->group, "\r\n") != NULL)
		abort();
	if (mb->has_domain != (strrchr(mb->addr, '@') != NULL &&
	    mb->addr[len - 1] != '"'))
		abort();
	if ((a.addr = strdup(mb->addr)) == NULL)
		abort();
	a.has_domain = mb->has_domain;
	a.n = 0;
	if (sk_addrlist_parse(a.addr, len, same, &a, NULL) != 1 || a.n != 1)
		abort();
	free(a.addr);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rc;

	rc = sk_addrlist_parse((const char *)data, size, check, NULL, NULL);
	if (rc < -1)
		abort();
	return 0;
}
