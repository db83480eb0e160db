/*
 * smtpkit: name resolution with a deadline (c-ares).
 *
 * getaddrinfo() cannot be bounded in time; c-ares can.  A literal IPv4 or
 * IPv6 address is answered without touching the resolver.
 */
#ifndef SMTPKIT_DNS_H
#define SMTPKIT_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#include "error.h"

#define SK_DNS_ADDRS_MAX 16

struct sk_addr {
	socklen_t len;
	struct sockaddr_storage ss;	/* AF_INET or AF_INET6, port set */
};

struct sk_addrlist {
	size_t n;
	struct sk_addr a[SK_DNS_ADDRS_MAX];
};

/*
 * Resolve host to its IPv6 and IPv4 addresses (A and AAAA, /etc/hosts
 * honoured), each with port set, interleaved IPv6 first as RFC 8305 §4
 * suggests.  timeout_ms bounds the whole lookup.
 * Errors (stage SK_STAGE_RESOLVE, kind SK_ERR_DNS, dns_status set to the
 * c-ares status): the name does not exist (ARES_ENOTFOUND); the resolver
 * did not answer in time or refused the connection (kind SK_ERR_TIMEOUT,
 * ARES_ETIMEOUT / ARES_ECONNREFUSED); the name exists but has no address
 * (ARES_ENODATA).  SK_ERR_USAGE for an empty or overlong name or a port
 * above 65535.
 */
int sk_dns_resolve(const char *host, unsigned port, int timeout_ms,
    struct sk_addrlist *out, struct sk_error *err);

#define SK_DNS_NAME_MAX 256	/* a domain name, NUL included */
#define SK_DNS_MX_MAX 16

struct sk_mx {
	unsigned pref;			/* lower is preferred */
	char host[SK_DNS_NAME_MAX];	/* without the trailing dot */
};

/*
 * Look up the MX records of domain (as given: no search list), sorted by
 * preference, lowest first, equal ones in the order the server gave.  At
 * most max records go to out; *n is set to how many.  timeout_ms bounds
 * the whole lookup.  A domain that exists without MX records is not an
 * error: 0 with *n == 0 (RFC 5321 §5.1 then uses the domain's address;
 * the caller decides).  A null MX (RFC 7505, "0 .": no mail at all) is
 * left out.
 * Errors (stage SK_STAGE_RESOLVE, dns_status set): the domain does not
 * exist (kind SK_ERR_DNS, ARES_ENOTFOUND); the resolver did not answer in
 * time or refused (SK_ERR_TIMEOUT, ARES_ETIMEOUT / ARES_ECONNREFUSED);
 * SERVFAIL, REFUSED or a malformed answer (SK_ERR_DNS).  SK_ERR_USAGE for
 * an empty or overlong name, an address literal, or NULL out or n.
 */
int sk_dns_mx(const char *domain, int timeout_ms, struct sk_mx *out,
    size_t max, size_t *n, struct sk_error *err);

/* "192.0.2.1:25" or "[2001:db8::1]:25" into buf; returns buf. */
const char *sk_addr_str(const struct sk_addr *a, char *buf, size_t cap);

#define SK_ADDR_STR_MAX 64

#endif
