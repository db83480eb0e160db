/*
 * smtpkit: name resolution with a deadline.
 *
 * getaddrinfo(3) cannot be bounded in time, so names go through c-ares,
 * driven by a poll(2) loop of our own against an absolute deadline on
 * sk_clock_ms().  A literal address never reaches the resolver: no
 * channel, no /etc/resolv.conf parse, no socket.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "smtpkit/clock.h"
#include "smtpkit/dns.h"

#define DNS_HOST_MAX	255	/* RFC 1035 §2.3.4 */

struct dns_query {
	bool done;
	int status;
	struct ares_addrinfo *res;
	unsigned char *abuf;	/* ares_query: a copy of the answer */
	int alen;
};

static pthread_once_t dns_once = PTHREAD_ONCE_INIT;
static int dns_init_status = ARES_ENOTINITIALIZED;

/*
 * ares_library_init() is reference counted but not thread-safe; on Unix it
 * allocates nothing (it only matters on Windows), so one call guarded by
 * pthread_once and no ares_library_cleanup() is both safe and leak-free.
 */
static void
dns_library_init(void)
{
	dns_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static void
dns_set_port(struct sk_addr *a, unsigned port)
{
	if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
}

/*
 * A literal address: "192.0.2.1", "2001:db8::1", "[2001:db8::1]" or a
 * link-local "fe80::1%eth0".  Returns 1 when host was one, 0 when it is a
 * name, -1 when it looked like a literal with a bad zone.
 */
static int
dns_literal(const char *host, unsigned port, struct sk_addrlist *out)
{
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	struct sk_addr *a = &out->a[0];
	char *zone, *end;
	size_t len;

	len = strlen(host);
	if (host[0] == '[' && len > 2 && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, host, len);
	buf[len] = '\0';

	memset(a, 0, sizeof(*a));
	sin = (struct sockaddr_in *)&a->ss;
	if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		a->len = sizeof(*sin);
		goto found;
	}

	sin6 = (struct sockaddr_in6 *)&a->ss;
	if ((zone = strchr(buf, '%')) != NULL)
		*zone++ = '\0';
	if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
		return 0;
	if (zone != NULL) {
		unsigned long idx;

		/* RFC 4007 §11: the zone is an interface name or index. */
		if ((sin6->sin6_scope_id = if_nametoindex(zone)) == 0) {
			errno = 0;
			idx = strtoul(zone, &end, 10);
			if (*zone == '\0' || *end != '\0' || errno != 0 ||
			    idx == 0 || idx > UINT32_MAX)
				return -1;
			sin6->sin6_scope_id = (uint32_t)idx;
		}
	}
	sin6->sin6_family = AF_INET6;
	a->len = sizeof(*sin6);
 found:
	dns_set_port(a, port);
	out->n = 1;
	return 1;
}

static void
dns_callback(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_query *q = arg;

	q->done = true;
	q->status = status;
	q->res = res;
}

static bool
dns_same(const struct sk_addr *a, const struct sk_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

static bool
dns_seen(const struct sk_addr *list, size_t n, const struct sk_addr *a)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (dns_same(&list[i], a))
			return true;
	return false;
}

/*
 * Copy the answer into out, IPv6 and IPv4 alternating, IPv6 first
 * (RFC 8305 §4), each family in the order c-ares sorted it (RFC 6724).
 */
static void
dns_collect(const struct ares_addrinfo *res, unsigned port,
    struct sk_addrlist *out)
{
	struct sk_addr v6[SK_DNS_ADDRS_MAX], v4[SK_DNS_ADDRS_MAX], a;
	const struct ares_addrinfo_node *n;
	size_t n6 = 0, n4 = 0, i6 = 0, i4 = 0;

	for (n = res->nodes; n != NULL; n = n->ai_next) {
		if (n->ai_addr == NULL || n->ai_addrlen > sizeof(a.ss))
			continue;
		if ((n->ai_family != AF_INET6 ||
		    n->ai_addrlen != sizeof(struct sockaddr_in6)) &&
		    (n->ai_family != AF_INET ||
		    n->ai_addrlen != sizeof(struct sockaddr_in)))
			continue;
		memset(&a, 0, sizeof(a));
		memcpy(&a.ss, n->ai_addr, n->ai_addrlen);
		a.len = n->ai_addrlen;
		dns_set_port(&a, port);
		if (n->ai_family == AF_INET6) {
			if (n6 < SK_DNS_ADDRS_MAX && !dns_seen(v6, n6, &a))
				v6[n6++] = a;
		} else {
			if (n4 < SK_DNS_ADDRS_MAX && !dns_seen(v4, n4, &a))
				v4[n4++] = a;
		}
	}

	out->n = 0;
	while (out->n < SK_DNS_ADDRS_MAX && (i6 < n6 || i4 < n4)) {
		if (i6 < n6)
			out->a[out->n++] = v6[i6++];
		if (out->n < SK_DNS_ADDRS_MAX && i4 < n4)
			out->a[out->n++] = v4[i4++];
	}
}

/* "10.0.0.53, 10.0.0.54" into buf: who did not answer, for the message. */
static void
dns_servers(ares_channel ch, char *buf, size_t cap)
{
	struct ares_addr_port_node *servers = NULL, *s;
	char ip[INET6_ADDRSTRLEN];
	size_t off = 0;
	int n;

	buf[0] = '\0';
	if (ares_get_servers_ports(ch, &servers) != ARES_SUCCESS)
		return;
	for (s = servers; s != NULL && off < cap; s = s->next) {
		if (inet_ntop(s->family, &s->addr, ip, sizeof(ip)) == NULL)
			continue;
		n = snprintf(buf + off, cap - off, "%s%s", off ? ", " : "",
		    ip);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	ares_free_data(servers);
}

/*
 * Run the channel until the query finished or the deadline passed.
 * Returns false on timeout (the query is then still outstanding).
 */
static bool
dns_wait(ares_channel ch, struct dns_query *q, int64_t deadline)
{
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	struct pollfd pfd[ARES_GETSOCK_MAXNUM];
	struct timeval maxtv, tv, *tvp;
	unsigned rd, wr;
	int bits, i, left, ms, n, nfd;

	while (!q->done) {
		if ((left = sk_clock_left(deadline)) == 0)
			return false;

		bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
		nfd = 0;
		/*
		 * The bits by hand: ARES_GETSOCK_WRITABLE() shifts a signed
		 * 1 into the sign bit for the last socket.
		 */
		for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			rd = (unsigned)bits & (1U << i);
			wr = (unsigned)bits & (1U << (i + ARES_GETSOCK_MAXNUM));
			if (!rd && !wr)
				continue;
			pfd[nfd].fd = socks[i];
			pfd[nfd].events = 0;
			if (rd)
				pfd[nfd].events |= POLLIN;
			if (wr)
				pfd[nfd].events |= POLLOUT;
			pfd[nfd].revents = 0;
			nfd++;
		}

		maxtv.tv_sec = left / 1000;
		maxtv.tv_usec = (left % 1000) * 1000;
		tvp = ares_timeout(ch, &maxtv, &tv);
		/* Round up: waking a millisecond early would spin. */
		ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
		if (ms > left)
			ms = left;

		n = poll(pfd, (nfds_t)nfd, ms);
		if (n == -1 && errno != EINTR)
			return false;
		if (n <= 0) {
			/* Let c-ares retransmit or give up on a server. */
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (i = 0; i < nfd && !q->done; i++) {
			if (pfd[i].revents == 0)
				continue;
			ares_process_fd(ch,
			    pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ?
			    pfd[i].fd : ARES_SOCKET_BAD,
			    pfd[i].revents & (POLLOUT | POLLERR) ?
			    pfd[i].fd : ARES_SOCKET_BAD);
		}
	}
	return true;
}

/* took_ms: how long the lookup ran, for a person judging the timeout. */
static int
dns_fail(ares_channel ch, const char *host, int status, int64_t took_ms,
    struct sk_error *err)
{
	char servers[128];
	int rc;

	switch (status) {
	case ARES_ENOTFOUND:
	case ARES_ENONAME:
		rc = sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_DNS,
		    "cannot resolve %s: no such host (the name does not exist "
		    "in DNS)", host);
		break;
	case ARES_ENODATA:
		rc = sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_DNS,
		    "cannot resolve %s: the name exists but has no IPv4 or "
		    "IPv6 address", host);
		break;
	case ARES_ETIMEOUT:
	case ARES_ECONNREFUSED:
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		/*
		 * The resolver itself failed us, which is not the same as
		 * a name that does not exist: report it as a timeout.
		 */
		servers[0] = '\0';
		if (ch != NULL)
			dns_servers(ch, servers, sizeof(servers));
		/*
		 * c-ares 1.18's getaddrinfo reports a SERVFAIL or REFUSED
		 * answer as ECONNREFUSED too, so this cannot tell "refused
		 * the query" from "nothing listens there".
		 */
		if (status == ARES_ECONNREFUSED)
			rc = sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_TIMEOUT,
			    "cannot resolve %s: the DNS resolver%s%s%s failed "
			    "the query (it answered SERVFAIL or REFUSED, or "
			    "nothing listens there)", host,
			    servers[0] ? " (" : "", servers,
			    servers[0] ? ")" : "");
		else {
			rc = sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_TIMEOUT,
			    "cannot resolve %s: the DNS resolver%s%s%s did not "
			    "answer within %lld ms", host,
			    servers[0] ? " (" : "", servers,
			    servers[0] ? ")" : "", (long long)took_ms);
			status = ARES_ETIMEOUT;
		}
		break;
	case ARES_ESERVFAIL:
		rc = sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_DNS,
		    "cannot resolve %s: the DNS server failed (SERVFAIL): "
		    "a broken or unreachable authoritative server, or a "
		    "DNSSEC failure", host);
		break;
	case ARES_EREFUSED:
		rc = sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_DNS,
		    "cannot resolve %s: the DNS server refused the query",
		    host);
		break;
	case ARES_EBADNAME:
		rc = sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_USAGE,
		    "cannot resolve %s: not a valid host name", host);
		break;
	case ARES_ENOMEM:
		rc = sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_LOCAL,
		    "cannot resolve %s: out of memory", host);
		break;
	case ARES_EFILE:
		rc = sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_CONFIG,
		    "cannot resolve %s: cannot read the resolver "
		    "configuration (/etc/resolv.conf, /etc/hosts)", host);
		break;
	default:
		rc = sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_DNS,
		    "cannot resolve %s: %s", host, ares_strerror(status));
		break;
	}
	if (err != NULL)
		err->dns_status = status;
	return rc;
}

/*
 * A channel for one lookup of timeout_ms.  Three tries within the budget
 * rather than c-ares' default of 5 s per try, which would never
 * retransmit before our deadline.  c-ares doubles the interval each round,
 * so three tries take 1 + 2 + 4 = 7 intervals: a seventh of the budget
 * lets the last one (which also asks again for the AAAA that a filtering
 * resolver dropped) finish in time.
 */
static int
dns_channel(int timeout_ms, ares_channel *ch)
{
	struct ares_options opts;

	memset(&opts, 0, sizeof(opts));
	opts.timeout = timeout_ms / 7;
	if (opts.timeout < 100)
		opts.timeout = 100;
	else if (opts.timeout > 2000)
		opts.timeout = 2000;
	opts.tries = 3;
	return ares_init_options(ch, &opts,
	    ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
}

int
sk_dns_resolve(const char *host, unsigned port, int timeout_ms,
    struct sk_addrlist *out, struct sk_error *err)
{
	struct ares_addrinfo_hints hints;
	struct dns_query q;
	ares_channel ch;
	int64_t deadline;
	int rc, status;

	sk_error_clear(err);
	if (out == NULL)
		return sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_USAGE,
		    "no place for the addresses");
	out->n = 0;
	if (host == NULL || host[0] == '\0' ||
	    strnlen(host, DNS_HOST_MAX + 1) > DNS_HOST_MAX)
		return sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_USAGE,
		    "no host name, or one longer than %d octets",
		    DNS_HOST_MAX);
	if (port > 65535)
		return sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_USAGE,
		    "port %u is out of range", port);

	switch (dns_literal(host, port, out)) {
	case 1:
		return 0;
	case -1:
		return sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_USAGE,
		    "%s: unknown network interface in the IPv6 zone", host);
	default:
		break;
	}

	if (timeout_ms <= 0)
		timeout_ms = 1;
	deadline = sk_clock_ms() + timeout_ms;

	(void)pthread_once(&dns_once, dns_library_init);
	if (dns_init_status != ARES_SUCCESS)
		return dns_fail(NULL, host, dns_init_status, 0, err);

	if ((status = dns_channel(timeout_ms, &ch)) != ARES_SUCCESS)
		return dns_fail(NULL, host, status, 0, err);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	memset(&q, 0, sizeof(q));
	/* The callback may run before this returns (/etc/hosts, errors). */
	ares_getaddrinfo(ch, host, NULL, &hints, dns_callback, &q);

	if (!dns_wait(ch, &q, deadline)) {
		/* Cancelling calls back with ARES_ECANCELLED. */
		ares_cancel(ch);
		if (q.res != NULL)
			ares_freeaddrinfo(q.res);
		q.res = NULL;
		q.status = ARES_ETIMEOUT;
	}

	rc = 0;
	if (q.status == ARES_SUCCESS && q.res != NULL) {
		dns_collect(q.res, port, out);
		if (out->n == 0)
			q.status = ARES_ENODATA;
	} else if (q.status == ARES_SUCCESS)
		q.status = ARES_ENODATA;
	if (q.status != ARES_SUCCESS)
		rc = dns_fail(ch, host, q.status,
		    sk_clock_ms() - (deadline - timeout_ms), err);
	if (q.res != NULL)
		ares_freeaddrinfo(q.res);
	ares_destroy(ch);
	return rc;
}

static void
dns_mx_callback(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_query *q = arg;

	q->done = true;
	q->status = status;
	/* abuf lives only as long as this call. */
	if (status == ARES_SUCCESS && abuf != NULL && alen > 0) {
		if ((q->abuf = malloc((size_t)alen)) == NULL) {
			q->status = ARES_ENOMEM;
			return;
		}
		memcpy(q->abuf, abuf, (size_t)alen);
		q->alen = alen;
	}
}

/* Sorted by preference; insertion keeps equal ones in the server's order. */
static size_t
dns_mx_collect(const struct ares_mx_reply *mx, struct sk_mx *out, size_t max)
{
	const struct ares_mx_reply *m;
	struct sk_mx cur;
	size_t n = 0, i, len;

	for (m = mx; m != NULL && n < max; m = m->next) {
		if (m->host == NULL)
			continue;
		len = strlen(m->host);
		if (len > 0 && m->host[len - 1] == '.')
			len--;
		/* RFC 7505 null MX, and names no DNS can hold */
		if (len == 0 || len >= SK_DNS_NAME_MAX)
			continue;
		cur.pref = m->priority;
		memcpy(cur.host, m->host, len);
		cur.host[len] = '\0';
		for (i = n; i > 0 && out[i - 1].pref > cur.pref; i--)
			out[i] = out[i - 1];
		out[i] = cur;
		n++;
	}
	return n;
}

int
sk_dns_mx(const char *domain, int timeout_ms, struct sk_mx *out, size_t max,
    size_t *n, struct sk_error *err)
{
	struct ares_mx_reply *mx = NULL;
	struct sk_addrlist lit;
	struct dns_query q;
	ares_channel ch;
	int64_t deadline;
	int rc, status;

	sk_error_clear(err);
	if (n != NULL)
		*n = 0;
	if (out == NULL || n == NULL)
		return sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_USAGE,
		    "no place for the MX records");
	if (domain == NULL || domain[0] == '\0' ||
	    strnlen(domain, DNS_HOST_MAX + 1) > DNS_HOST_MAX)
		return sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_USAGE,
		    "no domain name, or one longer than %d octets",
		    DNS_HOST_MAX);
	if (dns_literal(domain, 0, &lit) != 0)
		return sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_USAGE,
		    "%s is an address, not a domain: it has no MX records",
		    domain);

	if (timeout_ms <= 0)
		timeout_ms = 1;
	deadline = sk_clock_ms() + timeout_ms;

	(void)pthread_once(&dns_once, dns_library_init);
	if (dns_init_status != ARES_SUCCESS)
		return dns_fail(NULL, domain, dns_init_status, 0, err);
	if ((status = dns_channel(timeout_ms, &ch)) != ARES_SUCCESS)
		return dns_fail(NULL, domain, status, 0, err);

	memset(&q, 0, sizeof(q));
	/* ares_query, not ares_search: a mail domain is never relative. */
	ares_query(ch, domain, ns_c_in, ns_t_mx, dns_mx_callback, &q);
	if (!dns_wait(ch, &q, deadline)) {
		ares_cancel(ch);
		free(q.abuf);
		q.abuf = NULL;
		q.status = ARES_ETIMEOUT;
	}

	rc = 0;
	status = q.status;
	if (status == ARES_SUCCESS) {
		status = q.abuf != NULL ?
		    ares_parse_mx_reply(q.abuf, q.alen, &mx) : ARES_ENODATA;
		if (status == ARES_SUCCESS)
			*n = dns_mx_collect(mx, out, max);
	}
	if (status == ARES_ENODATA)
		status = ARES_SUCCESS;	/* the domain exists, without MX */
	if (status == ARES_ENOTFOUND) {
		rc = sk_error_set(err, SK_STAGE_RESOLVE, SK_ERR_DNS,
		    "no such domain: %s does not exist in DNS", domain);
		if (err != NULL)
			err->dns_status = status;
	} else if (status != ARES_SUCCESS)
		rc = dns_fail(ch, domain, status,
		    sk_clock_ms() - (deadline - timeout_ms), err);
	if (mx != NULL)
		ares_free_data(mx);
	free(q.abuf);
	ares_destroy(ch);
	return rc;
}

const char *
sk_addr_str(const struct sk_addr *a, char *buf, size_t cap)
{
	const struct sockaddr_in6 *sin6;
	const struct sockaddr_in *sin;
	char ip[INET6_ADDRSTRLEN], zone[IF_NAMESIZE];

	if (buf == NULL || cap == 0)
		return buf;
	buf[0] = '\0';
	if (a == NULL)
		return buf;
	switch (a->ss.ss_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)&a->ss;
		if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)) == NULL)
			break;
		(void)snprintf(buf, cap, "%s:%u", ip, ntohs(sin->sin_port));
		break;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)&a->ss;
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip,
		    sizeof(ip)) == NULL)
			break;
		if (sin6->sin6_scope_id != 0) {
			if (if_indextoname(sin6->sin6_scope_id, zone) == NULL)
				(void)snprintf(zone, sizeof(zone), "%u",
				    (unsigned)sin6->sin6_scope_id);
			(void)snprintf(buf, cap, "[%s%%%s]:%u", ip, zone,
			    ntohs(sin6->sin6_port));
		} else
			(void)snprintf(buf, cap, "[%s]:%u", ip,
			    ntohs(sin6->sin6_port));
		break;
	default:
		(void)snprintf(buf, cap, "(address family %d)",
		    (int)a->ss.ss_family);
		break;
	}
	return buf;
}
