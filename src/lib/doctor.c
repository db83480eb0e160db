/*
 * smtpkit: the doctor: walk the whole chain to a mail server, stage by
 * stage, and record what was seen.
 *
 *	local     OpenSSL, the CA store, the clock, proxies, IPv6 route
 *	dns       A and AAAA (sk_dns_resolve, bounded)
 *	tcp       every (address, port) at once               probe.c
 *	greeting  per reachable port: banner, TLS or silence   probe.c
 *	tls ehlo auth mail data
 *	          one SMTP session on the chosen port: the client engine
 *	          driven here, every wait bounded by the timeout
 *
 * The chosen port is the one asked for (--port, or the preset's
 * recommended one); when it cannot work (dropped, refused, silent, the
 * wrong TLS mode, no STARTTLS, no AUTH), a second session runs on the
 * best port that can, so that the verdict (verdict.c) can say what works
 * instead.  Stages after a failure are skipped unless they ran there.
 *
 * Evidence is what the engine's trace callback saw: the exact lines, with
 * AUTH already redacted by the engine; the secret itself is only ever
 * handed to the engine.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "smtpkit/clock.h"
#include "smtpkit/doctor.h"
#include "smtpkit/message.h"
#include "conn_internal.h"
#include "i18n.h"
#include "probe.h"

#define DOCTOR_TIMEOUT_MS 10000
#define DOCTOR_PORTS_MAX 8
#define QUIT_WAIT_MS 2000
#define READ_BUF 8192
#define CLOCK_MIN 1704067200	/* 2024-01-01 00:00:00 UTC */
#define CLOCK_MAX 4102444800LL	/* 2100-01-01 00:00:00 UTC */

static const unsigned default_ports[] = { 465, 587, 25, 2525 };

struct doctor {
	const struct sk_doctor_config *cfg;
	struct sk_doctor_report *r;
	struct sk_doctor_facts *f;
	const char *host;
	int timeout;
	char helo[300];
	struct sk_addrlist addrs;
	unsigned ports[DOCTOR_PORTS_MAX];	/* in order of preference */
	enum sk_tls_mode expect[DOCTOR_PORTS_MAX];
	size_t nports;
	struct sk__probe *probes;
	size_t nprobes;
	bool oom;
};

/* ---- stage results ---- */

static void
stage_detail(struct sk_doctor_stage_result *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
stage_detail(struct sk_doctor_stage_result *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(st->detail, sizeof(st->detail), fmt, ap);
	va_end(ap);
}

static void
ev(struct doctor *d, struct sk_doctor_stage_result *st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ev(struct doctor *d, struct sk_doctor_stage_result *st, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (sk__lines_add(&st->evidence, &st->nevidence, "%s", buf) == -1)
		d->oom = true;
}

static void
stage_clear(struct sk_doctor_stage_result *st)
{
	sk__lines_free(st->evidence, st->nevidence);
	memset(st, 0, sizeof(*st));
}

/* Move src into dst (dst's old evidence is freed). */
static void
stage_move(struct sk_doctor_stage_result *dst,
    struct sk_doctor_stage_result *src)
{
	stage_clear(dst);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

/* ---- local ---- */

/* The day this file was compiled: the local clock cannot be earlier. */
static int64_t
build_floor(void)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *date = __DATE__;	/* "Nov 29 2026" */
	struct tm tm;
	time_t t;
	int m;

	memset(&tm, 0, sizeof(tm));
	for (m = 0; m < 12; m++)
		if (strncmp(months + 3 * m, date, 3) == 0)
			break;
	if (m == 12)
		return CLOCK_MIN;
	tm.tm_mon = m;
	tm.tm_mday = (int)strtol(date + 4, NULL, 10);
	tm.tm_year = (int)strtol(date + 7, NULL, 10) - 1900;
	if ((t = timegm(&tm)) == (time_t)-1)
		return CLOCK_MIN;
	/* A day's margin for time zones. */
	t -= 86400;
	return t > CLOCK_MIN ? (int64_t)t : CLOCK_MIN;
}

static void
utc_text(int64_t t, char *buf, size_t cap)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		(void)snprintf(buf, cap, "?");
}

/* Hashed certificate links in dir (c_rehash(1) names: hhhhhhhh.N). */
static int
count_hashed(const char *dir)
{
	struct dirent *de;
	DIR *dp;
	size_t i;
	int n = 0;

	if ((dp = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(dp)) != NULL) {
		for (i = 0; i < 8 && isxdigit((unsigned char)de->d_name[i]);
		    i++)
			;
		if (i == 8 && de->d_name[8] == '.' &&
		    isdigit((unsigned char)de->d_name[9]))
			n++;
	}
	(void)closedir(dp);
	return n;
}

/* Certificates OpenSSL can load from a PEM file, -1 if unreadable. */
static int
count_file(const char *path)
{
	X509_STORE *st;
	int n = -1;

	if (access(path, R_OK) == -1)
		return -1;
	if ((st = X509_STORE_new()) == NULL)
		return -1;
	if (X509_STORE_load_file(st, path) == 1)
		n = sk_X509_OBJECT_num(X509_STORE_get0_objects(st));
	else
		n = 0;
	X509_STORE_free(st);
	ERR_clear_error();
	return n;
}

/*
 * Where trusted CAs come from, as tls.c chooses them: --ca-file, else
 * SSL_CERT_FILE / SSL_CERT_DIR, else OpenSSL's default file and
 * directory.  Counts what each holds.
 */
static void
local_ca(struct doctor *d, struct sk_doctor_stage_result *st,
    char *summary, size_t cap)
{
	static const char *const elsewhere[] = {
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/cert.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	};
	const char *fenv = X509_get_default_cert_file_env();
	const char *denv = X509_get_default_cert_dir_env();
	const char *file, *dir;
	int nf = -1, nd = -1, n;
	size_t i;

	if (d->cfg->ca_file != NULL) {
		nf = count_file(d->cfg->ca_file);
		ev(d, st, "CA file %s: %d certificates", d->cfg->ca_file,
		    nf < 0 ? 0 : nf);
		d->f->ca_store_ok = nf > 0;
		if (nf > 0)
			(void)snprintf(summary, cap,
			    _("%d trusted certificates in %s"), nf,
			    d->cfg->ca_file);
		else
			(void)snprintf(summary, cap,
			    _("the CA file %s holds no usable certificate"),
			    d->cfg->ca_file);
		return;
	}
	if ((file = secure_getenv(fenv)) != NULL && file[0] == '\0')
		file = NULL;
	if ((dir = secure_getenv(denv)) != NULL && dir[0] == '\0')
		dir = NULL;
	if (file != NULL || dir != NULL) {
		if (file != NULL) {
			nf = count_file(file);
			if (nf < 0)
				ev(d, st, "%s=%s: cannot be read", fenv, file);
			else
				ev(d, st, "%s=%s: %d certificates", fenv, file,
				    nf);
		}
		if (dir != NULL) {
			nd = count_hashed(dir);
			ev(d, st, "%s=%s: %d hashed certificates", denv, dir,
			    nd < 0 ? 0 : nd);
		}
	} else {
		file = X509_get_default_cert_file();
		dir = X509_get_default_cert_dir();
		nd = count_hashed(dir);
		ev(d, st, "OpenSSL directory %s: %d hashed certificates", dir,
		    nd < 0 ? 0 : nd);
		nf = count_file(file);
		if (nf < 0)
			ev(d, st, "OpenSSL file %s: missing", file);
		else
			ev(d, st, "OpenSSL file %s: %d certificates", file, nf);
	}
	d->f->ca_store_ok = nf > 0 || nd > 0;
	if (nd > 0)
		(void)snprintf(summary, cap, _("%d trusted certificates in %s"),
		    nd, dir);
	else if (nf > 0)
		(void)snprintf(summary, cap, _("%d trusted certificates in %s"),
		    nf, file);
	else
		(void)snprintf(summary, cap, _("no trusted CA certificates "
		    "found"));
	if (d->f->ca_store_ok)
		return;
	/* A bundle in another distribution's place: say where. */
	for (i = 0; i < sizeof(elsewhere) / sizeof(elsewhere[0]); i++)
		if ((n = count_file(elsewhere[i])) > 0)
			ev(d, st, "found %d certificates in %s (usable with "
			    "%s=%s)", n, elsewhere[i], fenv, elsewhere[i]);
}

/* Proxy variables: their names only (values may hold credentials). */
static void
local_proxies(struct doctor *d, struct sk_doctor_stage_result *st,
    char *names, size_t cap)
{
	static const char *const vars[] = {
		"http_proxy", "https_proxy", "all_proxy", "ftp_proxy",
		"socks_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
		"FTP_PROXY", "SOCKS_PROXY",
	};
	const char *v;
	size_t i, off = 0;
	int n;

	names[0] = '\0';
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if ((v = getenv(vars[i])) == NULL || v[0] == '\0')
			continue;
		ev(d, st, "%s is set", vars[i]);
		n = snprintf(names + off, cap - off, "%s%s", off ? ", " : "",
		    vars[i]);
		if (n > 0 && (size_t)n < cap - off)
			off += (size_t)n;
	}
}

/* An IPv6 default route that is not a "reject" one (RTF_REJECT 0x200). */
static bool
local_ipv6_route(struct doctor *d, struct sk_doctor_stage_result *st)
{
	char line[512], dst[64], dev[64];
	unsigned plen, flags;
	bool found = false;
	FILE *fp;

	if ((fp = fopen("/proc/net/ipv6_route", "re")) == NULL) {
		ev(d, st, "/proc/net/ipv6_route: cannot read it (no IPv6?)");
		return false;
	}
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "%63s %x %*s %*s %*s %*s %*s %*s %x %63s",
		    dst, &plen, &flags, dev) != 4)
			continue;
		if (plen == 0 && strspn(dst, "0") == strlen(dst) &&
		    !(flags & 0x200) && strcmp(dev, "lo") != 0)
			found = true;
	}
	(void)fclose(fp);
	ev(d, st, "IPv6 default route: %s", found ? "yes" : "no");
	return found;
}

/* The OAuth2 token's expiry and scope: never the token itself. */
static void
local_oauth(struct doctor *d, struct sk_doctor_stage_result *st)
{
	const struct sk_doctor_config *cfg = d->cfg;
	char when[40];

	if (!cfg->oauth)
		return;
	if (cfg->oauth_error != SK_OAUTH_ERR_NONE) {
		ev(d, st, "OAuth2 token: none usable (%s)%s%s",
		    sk_oauth_error_name(cfg->oauth_error),
		    cfg->oauth_detail != NULL ? ": " : "",
		    cfg->oauth_detail != NULL ? cfg->oauth_detail : "");
		return;
	}
	if (cfg->oauth_expires_at > 0)
		utc_text(cfg->oauth_expires_at, when, sizeof(when));
	else
		(void)snprintf(when, sizeof(when), "unknown");
	ev(d, st, "OAuth2 token: expires %s; scope %s", when,
	    cfg->oauth_scope != NULL ? cfg->oauth_scope : "unknown");
}

static void
stage_local(struct doctor *d)
{
	struct sk_doctor_stage_result *st = &d->r->stages[SK_DOCTOR_LOCAL];
	char ca[256], proxies[160], now[40];
	int64_t t0 = sk_clock_ms(), floor;
	unsigned long ver = OpenSSL_version_num();

	st->status = SK_CHECK_OK;
	ev(d, st, "%s", OpenSSL_version(OPENSSL_VERSION));
	local_ca(d, st, ca, sizeof(ca));

	d->f->now = (int64_t)time(NULL);
	floor = build_floor();
	d->f->clock_ok = d->f->now >= floor && d->f->now < CLOCK_MAX;
	utc_text(d->f->now, now, sizeof(now));
	ev(d, st, "clock: %s", now);

	local_proxies(d, st, proxies, sizeof(proxies));
	d->f->ipv6_route = local_ipv6_route(d, st);
	local_oauth(d, st);

	if (!d->f->ca_store_ok || !d->f->clock_ok)
		st->status = SK_CHECK_FAIL;
	else if (proxies[0] != '\0' || ver < 0x30000000UL)
		st->status = SK_CHECK_WARN;

	if (!d->f->clock_ok)
		stage_detail(st, _("The clock says %s, which cannot be right: "
		    "certificates will not verify. %s; %s."), now,
		    OpenSSL_version(OPENSSL_VERSION), ca);
	else if (proxies[0] != '\0')
		stage_detail(st, _("%s; %s; clock %s. Proxy variables are set "
		    "(%s): SMTP does not use them, but they hint at a network "
		    "that intercepts or blocks direct connections."),
		    OpenSSL_version(OPENSSL_VERSION), ca, now, proxies);
	else
		stage_detail(st, _("%s; %s; clock %s."),
		    OpenSSL_version(OPENSSL_VERSION), ca, now);
	st->ms = sk_clock_ms() - t0;
}

/* ---- dns ---- */

static int
stage_dns(struct doctor *d)
{
	struct sk_doctor_stage_result *st = &d->r->stages[SK_DOCTOR_DNS];
	char a[SK_ADDR_STR_MAX], *colon;
	int64_t t0 = sk_clock_ms();
	size_t i, n4 = 0, n6 = 0;
	unsigned char buf[16];

	if (sk_dns_resolve(d->host, 0, d->timeout, &d->addrs,
	    &d->f->dns) == -1) {
		st->status = SK_CHECK_FAIL;
		stage_detail(st, "%s", d->f->dns.message);
		ev(d, st, "%s", d->f->dns.message);
		st->ms = sk_clock_ms() - t0;
		return -1;
	}
	for (i = 0; i < d->addrs.n; i++) {
		(void)sk_addr_str(&d->addrs.a[i], a, sizeof(a));
		/* "[2001:db8::1]:0" and "192.0.2.1:0" without the port */
		if ((colon = strrchr(a, ':')) != NULL)
			*colon = '\0';
		if (d->addrs.a[i].ss.ss_family == AF_INET6) {
			n6++;
			ev(d, st, "AAAA %s", a);
		} else {
			n4++;
			ev(d, st, "A %s", a);
		}
	}
	st->status = SK_CHECK_OK;
	if (inet_pton(AF_INET, d->host, buf) == 1 ||
	    inet_pton(AF_INET6, d->host, buf) == 1 || d->host[0] == '[')
		stage_detail(st, _("%s is an address: nothing to look up."),
		    d->host);
	else
		stage_detail(st, _("%s has %zu IPv4 and %zu IPv6 addresses."),
		    d->host, n4, n6);
	st->ms = sk_clock_ms() - t0;
	return 0;
}

/* ---- which ports, in which mode ---- */

static enum sk_tls_mode
well_known_mode(unsigned port)
{
	/* RFC 8314 §7.3: 465; 994 (163) and 2465 (SES) likewise. */
	return port == 465 || port == 994 || port == 2465 ?
	    SK_TLS_MODE_IMPLICIT : SK_TLS_MODE_STARTTLS;
}

static bool
preset_mode(const struct sk_provider *p, unsigned port, enum sk_tls_mode *m)
{
	size_t i;

	for (i = 0; p != NULL && i < p->nports; i++)
		if (p->ports[i].port == port) {
			*m = p->ports[i].mode;
			return true;
		}
	return false;
}

static void
add_port(struct doctor *d, unsigned port)
{
	size_t i;

	if (port == 0 || port > 65535 || d->nports == DOCTOR_PORTS_MAX)
		return;
	for (i = 0; i < d->nports; i++)
		if (d->ports[i] == port)
			return;
	d->ports[d->nports++] = port;
}

/*
 * The port asked for, then the others worth trying, best first: the
 * preset's (recommended first), or 465 587 25 2525 for a bare host.
 * Without --port but with --tls, the target is the preset's port of that
 * mode, or 465 / 587 as smtpkit send would use.
 */
static void
choose_ports(struct doctor *d)
{
	const struct sk_doctor_config *cfg = d->cfg;
	const struct sk_provider *p = cfg->provider;
	struct sk_doctor_facts *f = d->f;
	enum sk_tls_mode m;
	unsigned target = cfg->port;
	size_t i;

	if (target == 0 && p != NULL) {
		target = p->recommended;
		if (!cfg->tls_auto && (!preset_mode(p, target, &m) ||
		    m != cfg->tls)) {
			for (i = 0; i < p->nports; i++)
				if (p->ports[i].mode == cfg->tls) {
					target = p->ports[i].port;
					break;
				}
		}
		if (target == 0 && p->nports > 0)
			target = p->ports[0].port;
	}
	if (target == 0 && !cfg->tls_auto)
		target = cfg->tls == SK_TLS_MODE_IMPLICIT ? 465 : 587;
	f->target_port = target;
	f->target_tls_set = target != 0 && !cfg->tls_auto;
	f->target_tls = cfg->tls;

	add_port(d, target);
	if (!cfg->port_only || target == 0) {
		if (p != NULL && p->nports > 0) {
			add_port(d, p->recommended);
			for (i = 0; i < p->nports; i++)
				add_port(d, p->ports[i].port);
		} else {
			for (i = 0; i < sizeof(default_ports) /
			    sizeof(default_ports[0]); i++)
				add_port(d, default_ports[i]);
		}
	}
	for (i = 0; i < d->nports; i++) {
		if (d->ports[i] == target && f->target_tls_set)
			d->expect[i] = cfg->tls;
		else if (!preset_mode(p, d->ports[i], &d->expect[i]))
			d->expect[i] = well_known_mode(d->ports[i]);
	}
}

/* ---- tcp and greeting ---- */

static void
set_port(struct sk_addr *a, unsigned port)
{
	if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
}

const char *
sk_port_state_words(enum sk_port_state s)
{
	switch (s) {
	case SK_PORT_CONNECTED:
		return _("connected");
	case SK_PORT_REFUSED:
		return _("refused");
	case SK_PORT_TIMEOUT:
		return _("timed out");
	case SK_PORT_UNREACHABLE:
		return _("unreachable");
	case SK_PORT_RESET:
		return _("reset");
	case SK_PORT_UNTRIED:
	default:
		return _("not tried");
	}
}

static const struct sk__probe *
greeted_probe(const struct doctor *d, unsigned port)
{
	size_t i;

	for (i = 0; i < d->nprobes; i++)
		if (d->probes[i].port == port && d->probes[i].greeted)
			return &d->probes[i];
	return NULL;
}

/* A port's state over its addresses: the best any reached. */
static enum sk_port_state
best_state(const struct doctor *d, unsigned port)
{
	static const int rank[] = {
		[SK_PORT_UNTRIED] = 0, [SK_PORT_UNREACHABLE] = 1,
		[SK_PORT_TIMEOUT] = 2, [SK_PORT_RESET] = 3,
		[SK_PORT_REFUSED] = 4, [SK_PORT_CONNECTED] = 5,
	};
	enum sk_port_state best = SK_PORT_UNTRIED;
	size_t i;

	for (i = 0; i < d->nprobes; i++)
		if (d->probes[i].port == port &&
		    rank[d->probes[i].res.state] > rank[best])
			best = d->probes[i].res.state;
	return best;
}

static int
banner_code(const char *b)
{
	if (!isdigit((unsigned char)b[0]) || !isdigit((unsigned char)b[1]) ||
	    !isdigit((unsigned char)b[2]))
		return 0;
	return (b[0] - '0') * 100 + (b[1] - '0') * 10 + (b[2] - '0');
}

static void
append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
append(char *buf, size_t cap, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= cap)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(buf + len, cap - len, fmt, ap);
	va_end(ap);
}

static int
stage_probe(struct doctor *d, struct sk_error *err)
{
	struct sk_doctor_report *r = d->r;
	struct sk_doctor_stage_result *tcp = &r->stages[SK_DOCTOR_TCP];
	struct sk_doctor_stage_result *gr = &r->stages[SK_DOCTOR_GREETING];
	struct sk__probe_config pc;
	const struct sk__probe *g;
	enum sk_port_state s;
	int64_t tcp_end = 0, first_conn = -1, gr_end = 0;
	size_t i, k, n;
	unsigned t = d->f->target_port;
	bool other_bad = false, silent_other = false;
	const char *sni = NULL;
	char ebuf[128], frag[160];
	unsigned char buf[16];
	int rc;

	n = d->addrs.n * d->nports;
	if ((d->probes = calloc(n, sizeof(*d->probes))) == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	d->nprobes = n;
	/* Port-major: the report lists ports in order of preference. */
	for (k = 0, i = 0; k < d->nports; k++) {
		size_t a;

		for (a = 0; a < d->addrs.n; a++, i++) {
			d->probes[i].addr = d->addrs.a[a];
			set_port(&d->probes[i].addr, d->ports[k]);
			d->probes[i].port = d->ports[k];
			d->probes[i].expect = d->expect[k];
		}
	}
	memset(&pc, 0, sizeof(pc));
	/* SNI is for names only (RFC 6066 §3). */
	if (inet_pton(AF_INET, d->host, buf) != 1 &&
	    inet_pton(AF_INET6, d->host, buf) != 1 && d->host[0] != '[')
		sni = d->host;
	pc.servername = sni;
	pc.helo_name = d->helo;
	pc.timeout_ms = d->timeout;
	pc.trace = &d->cfg->trace;
	rc = sk__probe_run(&pc, d->probes, n, err);

	if ((r->ports = calloc(n, sizeof(*r->ports))) == NULL) {
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL,
		    "out of memory");
	}
	r->nports = n;
	for (i = 0; i < n; i++) {
		const struct sk__probe *p = &d->probes[i];

		r->ports[i] = p->res;
		if (p->connect_ms > tcp_end)
			tcp_end = p->connect_ms;
		if (p->res.state == SK_PORT_CONNECTED)
			ev(d, tcp, _("%s connected in %lld ms"),
			    p->res.address, (long long)p->res.ms);
		else if (p->res.state == SK_PORT_TIMEOUT)
			ev(d, tcp, _("%s timed out after %lld ms (silently "
			    "dropped)"), p->res.address, (long long)p->res.ms);
		else
			ev(d, tcp, _("%s %s after %lld ms (%s)"),
			    p->res.address, sk_port_state_words(p->res.state),
			    (long long)p->res.ms, sk__errno_text(
			    p->res.sys_errno, ebuf, sizeof(ebuf)));
		if (p->greeted) {
			if (first_conn < 0 || p->connect_ms < first_conn)
				first_conn = p->connect_ms;
			if (p->done_ms > gr_end)
				gr_end = p->done_ms;
		}
	}

	/* tcp: one line per port */
	for (k = 0; k < d->nports; k++) {
		s = best_state(d, d->ports[k]);
		append(tcp->detail, sizeof(tcp->detail), "%s%u: %s",
		    k ? "; " : "", d->ports[k], sk_port_state_words(s));
		/* Refused alternatives are common and harmless; drops are news. */
		if ((s == SK_PORT_TIMEOUT || s == SK_PORT_UNREACHABLE) &&
		    d->ports[k] != t)
			other_bad = true;
	}
	append(tcp->detail, sizeof(tcp->detail), ".");
	tcp->ms = tcp_end;
	s = t != 0 ? best_state(d, t) : SK_PORT_UNTRIED;
	if (t != 0 && s != SK_PORT_CONNECTED)
		tcp->status = SK_CHECK_FAIL;
	else {
		tcp->status = SK_CHECK_FAIL;
		for (i = 0; i < n; i++)
			if (d->probes[i].res.state == SK_PORT_CONNECTED)
				tcp->status = other_bad ? SK_CHECK_WARN :
				    SK_CHECK_OK;
	}
	/* IPv6 that never connects while IPv4 does: worth a warning. */
	if (tcp->status == SK_CHECK_OK) {
		bool v6 = false, v6ok = false;

		for (i = 0; i < n; i++)
			if (d->probes[i].res.family == AF_INET6) {
				v6 = true;
				if (d->probes[i].res.state ==
				    SK_PORT_CONNECTED)
					v6ok = true;
			}
		if (v6 && !v6ok)
			tcp->status = SK_CHECK_WARN;
	}

	/* greeting: what each reachable port speaks */
	gr->status = SK_CHECK_SKIP;
	for (k = 0; k < d->nports; k++) {
		if ((g = greeted_probe(d, d->ports[k])) == NULL)
			continue;
		if (gr->status == SK_CHECK_SKIP)
			gr->status = SK_CHECK_OK;
		switch (g->res.mode) {
		case SK_PMODE_PLAIN:
			if (banner_code(g->res.banner) != 220)
				(void)snprintf(frag, sizeof(frag),
				    _("%u: refused in the greeting"), g->port);
			else if (g->res.starttls)
				(void)snprintf(frag, sizeof(frag),
				    _("%u: plain SMTP, STARTTLS offered"),
				    g->port);
			else
				(void)snprintf(frag, sizeof(frag),
				    _("%u: plain SMTP, no STARTTLS"), g->port);
			break;
		case SK_PMODE_IMPLICIT:
			(void)snprintf(frag, sizeof(frag),
			    _("%u: implicit TLS"), g->port);
			break;
		case SK_PMODE_SILENT:
			(void)snprintf(frag, sizeof(frag),
			    _("%u: silent (no greeting, no TLS)"), g->port);
			break;
		case SK_PMODE_UNKNOWN:
		default:
			(void)snprintf(frag, sizeof(frag), _("%u: not SMTP"),
			    g->port);
			break;
		}
		append(gr->detail, sizeof(gr->detail), "%s%s",
		    gr->detail[0] ? "; " : "", frag);
		if (g->port != t && (g->res.mode == SK_PMODE_SILENT ||
		    g->res.mode == SK_PMODE_UNKNOWN))
			silent_other = true;
		for (i = 0; i < g->nevidence; i++)
			ev(d, gr, "[%u] %s", g->port, g->evidence[i]);
	}
	if (gr->status == SK_CHECK_SKIP)
		stage_detail(gr, _("Not run: no port connected."));
	else {
		append(gr->detail, sizeof(gr->detail), ".");
		gr->ms = gr_end - (first_conn < 0 ? 0 : first_conn);
		if (silent_other)
			gr->status = SK_CHECK_WARN;
		if (t != 0 && (g = greeted_probe(d, t)) != NULL &&
		    (g->res.mode == SK_PMODE_SILENT ||
		    g->res.mode == SK_PMODE_UNKNOWN ||
		    (g->res.mode == SK_PMODE_PLAIN &&
		    banner_code(g->res.banner) != 220) ||
		    (d->f->target_tls_set && (g->res.mode ==
		    SK_PMODE_IMPLICIT) != (d->f->target_tls ==
		    SK_TLS_MODE_IMPLICIT))))
			gr->status = SK_CHECK_FAIL;
	}
	return rc;
}

/* ---- one SMTP session ---- */

struct sess {
	struct doctor *d;
	struct sk_doctor_session *s;
	struct sk_doctor_stage_result st[SK_DOCTOR__COUNT];
	bool entered[SK_DOCTOR__COUNT];
	enum sk_doctor_stage cur;
	int64_t cur_t0;
	enum sk_doctor_stage failed_at;
	bool full;		/* AUTH, MAIL, DATA as configured */

	struct sk_conn *conn;
	struct sk_client *client;
	struct sk_tls_config tls;
	bool ready, closed, failed;
	bool body_due;
	bool msg_done;
	struct sk_event msg;	/* the message result */
	bool rcpt_ok;
	bool utf8;		/* the envelope asked for SMTPUTF8 */
	const char *body;
	size_t body_len;
	int64_t end;		/* the whole session's deadline */
};

static void
sess_switch(struct sess *x, enum sk_doctor_stage next)
{
	int64_t now = sk_clock_ms();

	x->st[x->cur].ms += now - x->cur_t0;
	x->cur = next;
	x->cur_t0 = now;
	x->entered[next] = true;
}

/* The stage a command line belongs to. */
static void
sess_classify(struct sess *x, const char *t, size_t len)
{
#define CMD(w) (len >= sizeof(w) - 1 && strncasecmp(t, w, sizeof(w) - 1) == 0)
	if (CMD("EHLO") || CMD("HELO"))
		sess_switch(x, SK_DOCTOR_EHLO);
	else if (CMD("STARTTLS"))
		sess_switch(x, SK_DOCTOR_TLS);
	else if (CMD("AUTH"))
		sess_switch(x, SK_DOCTOR_AUTH);
	else if (CMD("MAIL") || CMD("RCPT"))
		sess_switch(x, SK_DOCTOR_MAIL);
	else if (CMD("DATA"))
		sess_switch(x, SK_DOCTOR_DATA);
#undef CMD
}

/* Every line the engine and the connection report: evidence and trace. */
static void
sess_trace(void *arg, enum sk_trace_kind kind, const char *text, size_t len)
{
	struct sess *x = arg;
	struct sk_doctor_stage_result *st;

	sk_trace_emit(&x->d->cfg->trace, kind, text, len);
	if (kind == SK_TRACE_SEND)
		sess_classify(x, text, len);
	st = &x->st[x->cur];
	if (st->nevidence >= 200)
		return;		/* a bounded report, whatever the server says */
	switch (kind) {
	case SK_TRACE_RECV:
		ev(x->d, st, "S: %.*s", (int)len, text);
		break;
	case SK_TRACE_SEND:
		ev(x->d, st, "C: %.*s", (int)len, text);
		break;
	case SK_TRACE_INFO:
		ev(x->d, st, "%.*s", (int)len, text);
		break;
	default:
		break;
	}
}

/* One timeout per wait, and never past the session's own end. */
static int64_t
wait_until(const struct sess *x, int timeout_ms)
{
	int64_t t = sk_clock_ms() + timeout_ms;

	return t < x->end ? t : x->end;
}

static int64_t
sess_deadline(const struct sess *x)
{
	return wait_until(x, x->d->timeout);
}

static void
sess_tls_info(struct sess *x)
{
	const struct sk_tls_info *ti = sk_conn_tls_info(x->conn);

	if (ti != NULL) {
		x->s->tls_seen = true;
		x->s->tls_info = *ti;
	}
}

static int
sess_handshake(struct sess *x, struct sk_error *e)
{
	int rc;

	sess_switch(x, SK_DOCTOR_TLS);
	rc = sk_conn_tls(x->conn, &x->tls, sess_deadline(x), e);
	sess_tls_info(x);
	if (rc == -1 && e->stage == SK_STAGE_NONE)
		e->stage = SK_STAGE_TLS;
	return rc;
}

static void
sess_event(struct sess *x, const struct sk_event *e)
{
	struct sk_error err;

	switch (e->type) {
	case SK_EV_READY:
		x->ready = true;
		break;
	case SK_EV_STARTTLS:
		/* RFC 3207 §4.2: what was said before TLS is forgotten. */
		x->s->caps_before_tls = *sk_client_caps(x->client);
		if (sess_handshake(x, &err) == -1) {
			sk_client_abort(x->client, &err);
			break;
		}
		sk_client_tls_done(x->client);
		break;
	case SK_EV_BODY:
		x->body_due = true;
		break;
	case SK_EV_RCPT:
		x->rcpt_ok = e->ok;
		break;
	case SK_EV_MESSAGE:
		x->msg_done = true;
		x->msg = *e;
		break;
	case SK_EV_CLOSED:
		x->closed = true;
		break;
	case SK_EV_ERROR:
		x->failed = true;
		x->s->err = e->detail;
		break;
	default:
		break;
	}
}

enum goal {
	GOAL_READY,
	GOAL_MESSAGE,
	GOAL_CLOSED
};

static bool
sess_reached(const struct sess *x, enum goal g)
{
	switch (g) {
	case GOAL_READY:
		return x->ready;
	case GOAL_MESSAGE:
		return x->msg_done;
	case GOAL_CLOSED:
		return x->closed;
	}
	return true;
}

/*
 * Drive the engine over the connection until the goal or a failure, as
 * session.c does; every wait bounded by the timeout.  0, or -1 with
 * x->s->err set.
 */
static int
sess_drive(struct sess *x, enum goal goal, int timeout_ms)
{
	struct sk_event e;
	struct sk_error err;
	const char *out;
	char buf[READ_BUF];
	size_t len;
	ssize_t n;

	for (;;) {
		while (sk_client_next_event(x->client, &e))
			sess_event(x, &e);
		if (x->failed) {
			/* Best effort: the QUIT the engine queued. */
			out = sk_client_output(x->client, &len);
			if (len > 0 && x->s->err.kind == SK_ERR_REPLY)
				(void)sk_conn_write(x->conn, out, len,
				    sk_clock_ms() + 1000, NULL);
			return -1;
		}
		if (x->body_due) {
			x->body_due = false;
			(void)sk_client_body(x->client, x->body, x->body_len);
			sk_client_body_end(x->client);
			continue;
		}
		out = sk_client_output(x->client, &len);
		if (len > 0) {
			if (sk_conn_write(x->conn, out, len,
			    wait_until(x, timeout_ms), &err) == -1) {
				if (err.stage == SK_STAGE_NONE)
					err.stage = sk_client_stage(x->client);
				sk_client_abort(x->client, &err);
				/*
				 * The output stays unsent: never try it again.
				 * An engine that was saying QUIT calls this a
				 * normal end.
				 */
				while (sk_client_next_event(x->client, &e))
					sess_event(x, &e);
				if (x->failed || sess_reached(x, goal))
					return x->failed ? -1 : 0;
				x->failed = true;
				x->s->err = err;
				return -1;
			}
			sk_client_sent(x->client, len);
		}
		if (sess_reached(x, goal))
			return 0;
		if (!sk_client_wants_read(x->client)) {
			if (sk_client_phase(x->client) == SK_PHASE_CLOSED) {
				if (goal == GOAL_CLOSED)
					return 0;
				x->failed = true;
				sk_error_set(&x->s->err, sk_client_stage(x->client),
				    SK_ERR_EOF, "the server closed the connection");
				return -1;
			}
			sk_error_set(&err, SK_STAGE_NONE, SK_ERR_PROTOCOL,
			    "internal: the SMTP engine waits for nothing in "
			    "phase %s", sk_client_phase_name(
			    sk_client_phase(x->client)));
			sk_client_abort(x->client, &err);
			continue;
		}
		n = sk_conn_read(x->conn, buf, sizeof(buf),
		    wait_until(x, timeout_ms), &err);
		if (n > 0) {
			(void)sk_client_feed(x->client, buf, (size_t)n);
		} else if (n == 0) {
			sk_client_abort(x->client, NULL);
		} else {
			enum sk_stage stage = sk_client_stage(x->client);

			if (err.kind == SK_ERR_TIMEOUT)
				sk_error_set(&err, stage, SK_ERR_TIMEOUT,
				    "the server did not answer within %d ms "
				    "(%s stage)", timeout_ms,
				    sk_stage_name(stage));
			else if (err.stage == SK_STAGE_NONE)
				err.stage = stage;
			sk_client_abort(x->client, &err);
		}
	}
}

/* A small test message, composed as smtpkit send would. */
static char *
test_message(const struct sk_doctor_config *cfg, size_t *len,
    struct sk_error *e)
{
	static const char text[] =
	    "This message was sent by \"smtpkit doctor --send\" to check\n"
	    "that this machine can send mail. You can delete it.\n";
	const char *to[1] = { cfg->to };
	struct sk_compose m;

	memset(&m, 0, sizeof(m));
	m.from = cfg->from;
	m.to = to;
	m.nto = 1;
	m.subject = "smtpkit doctor test";
	m.text = text;
	m.text_len = sizeof(text) - 1;
	return sk_message_compose(&m, len, e);
}

/* This host's name for EHLO: its FQDN, else an address literal. */
static void
helo_from(int fd, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[256], addr[INET6_ADDRSTRLEN];

	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		if (strchr(host, '.') != NULL && host[strlen(host) - 1] != '.') {
			(void)snprintf(out, cap, "%s", host);
			return;
		}
	}
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET &&
		    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
		    addr, sizeof(addr)) != NULL) {
			(void)snprintf(out, cap, "[%s]", addr);
			return;
		}
		if (ss.ss_family == AF_INET6 &&
		    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
		    addr, sizeof(addr)) != NULL) {
			(void)snprintf(out, cap, "[IPv6:%s]", addr);
			return;
		}
	}
	(void)snprintf(out, cap, "localhost.localdomain");
}

/*
 * Whether an address needs SMTPUTF8 (RFC 6531), as smtpkit send decides
 * it: sk_addr_check's utf8.  An address that check refuses is still
 * offered to the server as given (the doctor lets the server judge it),
 * so there any octet past ASCII counts.
 */
static bool
addr_utf8(const char *what, const char *addr)
{
	const unsigned char *p;
	bool utf8 = false;

	if (addr == NULL)
		return false;
	if (sk_addr_check(what, addr, &utf8, NULL) == 0)
		return utf8;
	for (p = (const unsigned char *)addr; *p != '\0'; p++)
		if (*p >= 0x80)
			return true;
	return false;
}

/*
 * The engine's own refusal of a non-ASCII address to a server without
 * SMTPUTF8 (client.c, msg_fits): before MAIL, nothing was sent.
 */
static bool
utf8_refused(const struct sess *x)
{
	const struct sk_doctor_session *s = x->s;

	return x->utf8 && s->err.stage == SK_STAGE_MAIL &&
	    s->err.kind == SK_ERR_UNSUPPORTED &&
	    !(s->caps.flags & SK_CAP_SMTPUTF8);
}

static enum sk_doctor_stage
doctor_stage_of(enum sk_stage s, enum sk_doctor_stage cur)
{
	switch (s) {
	case SK_STAGE_CONNECT:
	case SK_STAGE_GREETING:
		return SK_DOCTOR_GREETING;
	case SK_STAGE_TLS:
		return SK_DOCTOR_TLS;
	case SK_STAGE_EHLO:
		return SK_DOCTOR_EHLO;
	case SK_STAGE_AUTH:
		return SK_DOCTOR_AUTH;
	case SK_STAGE_MAIL:
	case SK_STAGE_RCPT:
		return SK_DOCTOR_MAIL;
	case SK_STAGE_DATA:
		return SK_DOCTOR_DATA;
	default:
		return cur;
	}
}

static void
caps_text(const struct sk_caps *c, char *buf, size_t cap)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ SK_CAP_STARTTLS, "STARTTLS" },
		{ SK_CAP_PIPELINING, "PIPELINING" },
		{ SK_CAP_8BITMIME, "8BITMIME" },
		{ SK_CAP_SMTPUTF8, "SMTPUTF8" },
		{ SK_CAP_ENHANCEDSTATUSCODES, "ENHANCEDSTATUSCODES" },
		{ SK_CAP_DSN, "DSN" },
		{ SK_CAP_CHUNKING, "CHUNKING" },
	};
	size_t i;
	unsigned m;

	buf[0] = '\0';
	if (!c->esmtp) {
		append(buf, cap, "HELO only");
		return;
	}
	if (c->flags & SK_CAP_SIZE) {
		if (c->size_max > 0)
			append(buf, cap, "SIZE %llu",
			    (unsigned long long)c->size_max);
		else
			append(buf, cap, "SIZE");
	}
	if (c->flags & SK_CAP_AUTH) {
		append(buf, cap, "%sAUTH", buf[0] ? ", " : "");
		for (m = SK_AUTH_PLAIN; m < SK_AUTH__COUNT; m++)
			if (c->auth & SK_AUTH_BIT(m))
				append(buf, cap, " %s",
				    sk_auth_mech_name((enum sk_auth_mech)m));
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (c->flags & names[i].bit)
			append(buf, cap, "%s%s", buf[0] ? ", " : "",
			    names[i].name);
	if (buf[0] == '\0')
		append(buf, cap, "no extensions");
}

/* Fill the stage results of a session from what happened in it. */
static void
sess_judge_stages(struct sess *x)
{
	const struct sk_doctor_config *cfg = x->d->cfg;
	struct sk_doctor_session *s = x->s;
	const struct sk_tls_info *ti = &s->tls_info;
	struct sk_doctor_stage_result *st;
	char caps[256], before[256], now[40];
	enum sk_doctor_stage k;
	bool failed = s->err.kind != SK_ERR_NONE;

	if (failed)
		x->failed_at = doctor_stage_of(s->err.stage, x->cur);
	for (k = SK_DOCTOR_GREETING; k < SK_DOCTOR__COUNT; k++) {
		st = &x->st[k];
		if (failed && k == x->failed_at) {
			st->status = SK_CHECK_FAIL;
			if (k == SK_DOCTOR_MAIL && utf8_refused(x))
				stage_detail(st, _("Not tried: <%s> is not "
				    "ASCII and the server does not offer "
				    "SMTPUTF8 (RFC 6531), so smtpkit stopped "
				    "before MAIL FROM, as smtpkit send would."),
				    addr_utf8("--from", cfg->from) ?
				    cfg->from : cfg->to);
			else
				stage_detail(st, "%s", s->err.message);
			continue;
		}
		/*
		 * Entered and not the failure: it passed (EHLO comes before
		 * TLS in a STARTTLS session; nothing is entered after a
		 * failure but QUIT).
		 */
		if (!x->entered[k]) {
			st->status = SK_CHECK_SKIP;
			if (failed)
				stage_detail(st, _("Not run: an earlier stage "
				    "failed."));
			continue;
		}
		st->status = SK_CHECK_OK;
	}

	st = &x->st[SK_DOCTOR_GREETING];
	if (st->status == SK_CHECK_OK && x->client != NULL)
		stage_detail(st, _("The server greeted: %.200s"),
		    sk_client_greeting(x->client));

	st = &x->st[SK_DOCTOR_TLS];
	if (s->tls_seen) {
		utc_text(x->d->f->now, now, sizeof(now));
		ev(x->d, st, "certificate subject: %s", ti->subject);
		ev(x->d, st, "certificate issuer: %s", ti->issuer);
		ev(x->d, st, "certificate names: %s", ti->sans[0] ? ti->sans :
		    "(none)");
		ev(x->d, st, "valid from %s to %s; local clock %s",
		    ti->not_before, ti->not_after, now);
		ev(x->d, st, "verify result %ld: %s", ti->verify_result,
		    ti->verify_text);
	}
	if (st->status == SK_CHECK_OK) {
		if (cfg->insecure && ti->verify_result != X509_V_OK) {
			st->status = SK_CHECK_WARN;
			stage_detail(st, _("%s, %s; the certificate was NOT "
			    "checked (--insecure) and would fail: %s."),
			    ti->version, ti->cipher, ti->verify_text);
		} else if (cfg->insecure) {
			st->status = SK_CHECK_WARN;
			stage_detail(st, _("%s, %s; the certificate was not "
			    "checked (--insecure)."), ti->version, ti->cipher);
		} else
			stage_detail(st, _("%s, %s; certificate for %s issued "
			    "by %s, valid until %s: verified."), ti->version,
			    ti->cipher, ti->sans[0] ? ti->sans : ti->subject,
			    ti->issuer, ti->not_after);
	} else if (st->status == SK_CHECK_SKIP && s->tls == SK_TLS_MODE_NONE)
		stage_detail(st, _("No TLS was asked for (--tls none)."));

	st = &x->st[SK_DOCTOR_EHLO];
	if (x->entered[SK_DOCTOR_EHLO] && st->status != SK_CHECK_FAIL &&
	    st->status != SK_CHECK_SKIP) {
		caps_text(&s->caps, caps, sizeof(caps));
		if (s->tls == SK_TLS_MODE_STARTTLS &&
		    (s->caps_before_tls.esmtp || s->caps_before_tls.flags)) {
			caps_text(&s->caps_before_tls, before, sizeof(before));
			stage_detail(st, _("Before STARTTLS: %s. After: %s."),
			    before, caps);
		} else
			stage_detail(st, _("The server offers: %s."), caps);
		if (cfg->user != NULL && !(s->caps.flags & SK_CAP_AUTH))
			st->status = SK_CHECK_WARN;
	}

	st = &x->st[SK_DOCTOR_AUTH];
	if (st->status == SK_CHECK_OK && cfg->oauth &&
	    cfg->oauth_expires_at > 0) {
		utc_text(cfg->oauth_expires_at, now, sizeof(now));
		stage_detail(st, _("Logged in as %s with %s, with an OAuth2 "
		    "token that expires %s."), cfg->user,
		    sk_auth_mech_name(sk_client_auth_mech(x->client)), now);
	} else if (st->status == SK_CHECK_OK)
		stage_detail(st, _("Logged in as %s with %s."), cfg->user,
		    sk_auth_mech_name(sk_client_auth_mech(x->client)));
	else if (st->status == SK_CHECK_SKIP && cfg->oauth &&
	    cfg->oauth_error != SK_OAUTH_ERR_NONE &&
	    (x->st[SK_DOCTOR_EHLO].status == SK_CHECK_OK ||
	    x->st[SK_DOCTOR_EHLO].status == SK_CHECK_WARN)) {
		/* The login that could not be tried is this stage's fault. */
		st->status = SK_CHECK_FAIL;
		stage_detail(st, _("No usable OAuth2 token: %s."),
		    cfg->oauth_detail != NULL ? cfg->oauth_detail :
		    sk_oauth_error_name(cfg->oauth_error));
	} else if (st->status == SK_CHECK_SKIP && cfg->user == NULL)
		stage_detail(st, _("No credentials given (--user)."));

	st = &x->st[SK_DOCTOR_MAIL];
	if (st->status == SK_CHECK_OK) {
		if (cfg->to != NULL)
			stage_detail(st, _("The sender <%s> and the recipient "
			    "<%s> were accepted."), cfg->from, cfg->to);
		else
			stage_detail(st, _("The sender <%s> was accepted."),
			    cfg->from);
	} else if (st->status == SK_CHECK_SKIP && cfg->from == NULL)
		stage_detail(st, _("No sender given (--from)."));

	st = &x->st[SK_DOCTOR_DATA];
	if (st->status == SK_CHECK_OK)
		stage_detail(st, _("The test message was accepted: %s"),
		    x->d->r->queue_id);
	else if (st->status == SK_CHECK_SKIP && !cfg->send)
		stage_detail(st, _("No test message asked for (--send)."));
}

/*
 * One session on address a (port set) in mode; full: AUTH, MAIL/RCPT
 * and DATA as configured.  The facts go to s, the stages to x->st.
 */
static void
run_session(struct doctor *d, struct sess *x, struct sk_doctor_session *s,
    const struct sk_addr *a, enum sk_tls_mode mode)
{
	const struct sk_doctor_config *cfg = d->cfg;
	struct sk_trace t = { sess_trace, x };
	struct sk_client_config cc;
	struct sk_addrlist one;
	struct sk_envelope env;
	struct sk_error e;
	const char *rcpts[1];
	char *msg = NULL;
	size_t msglen = 0;
	int64_t now;
	int rc;

	memset(x, 0, sizeof(*x));
	x->d = d;
	x->s = s;
	x->cur = SK_DOCTOR_GREETING;
	x->cur_t0 = sk_clock_ms();
	/*
	 * Each wait has the timeout; a server that answers just in time, a
	 * line at a time, still cannot hold the session past one timeout
	 * per stage.
	 */
	x->end = x->cur_t0 + (int64_t)d->timeout * SK_DOCTOR__COUNT;
	x->entered[SK_DOCTOR_GREETING] = true;
	memset(s, 0, sizeof(*s));
	s->ran = true;
	s->tls = mode;
	s->port = ntohs(a->ss.ss_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)&a->ss)->sin6_port :
	    ((const struct sockaddr_in *)&a->ss)->sin_port);
	(void)sk_addr_str(a, s->address, sizeof(s->address));

	x->tls.servername = d->host;
	x->tls.ca_file = cfg->ca_file;
	x->tls.insecure = cfg->insecure;
	x->tls.min_version = cfg->tls_min;

	memset(&one, 0, sizeof(one));
	one.n = 1;
	one.a[0] = *a;
	now = sk_clock_ms();
	if ((x->conn = sk_conn_connect(&one, d->timeout, now + d->timeout, &t,
	    &s->err)) == NULL)
		goto done;
	if (cfg->helo_name == NULL)
		helo_from(sk_conn_fd(x->conn), d->helo, sizeof(d->helo));
	if (mode == SK_TLS_MODE_IMPLICIT) {
		if (sess_handshake(x, &s->err) == -1)
			goto done;
		/* RFC 8314 §3.3: the greeting comes after the handshake. */
		sess_switch(x, SK_DOCTOR_GREETING);
	}

	memset(&cc, 0, sizeof(cc));
	cc.helo_name = d->helo;
	cc.tls_mode = mode;
	if (cfg->user != NULL) {
		cc.user = cfg->user;
		cc.secret = cfg->secret != NULL ? cfg->secret : "";
		cc.auth_mech = cfg->auth;
	}
	cc.allow_plaintext_auth = cfg->allow_plaintext_auth;
	cc.pipeline_max = 1;	/* one reply per command: clearer evidence */
	cc.trace = t;
	if ((x->client = sk_client_new(&cc, &s->err)) == NULL) {
		d->oom = true;
		goto done;
	}
	if (sess_drive(x, GOAL_READY, d->timeout) == -1)
		goto done;
	s->caps = *sk_client_caps(x->client);

	if (cfg->from != NULL && (!cfg->send || cfg->to != NULL)) {
		memset(&env, 0, sizeof(env));
		rcpts[0] = cfg->to;
		env.from = cfg->from;
		env.rcpts = rcpts;
		env.nrcpts = cfg->to != NULL ? 1 : 0;
		/*
		 * As send: a non-ASCII address asks for SMTPUTF8, and a
		 * server without it is refused here, before MAIL.
		 */
		x->utf8 = addr_utf8("--from", cfg->from) ||
		    addr_utf8("--to", cfg->to);
		env.smtputf8 = x->utf8;
		if (cfg->send) {
			if ((msg = test_message(cfg, &msglen, &e)) == NULL) {
				e.stage = SK_STAGE_DATA;
				s->err = e;
				goto quit;
			}
			env.size = msglen;
			x->body = msg;
			x->body_len = msglen;
		} else {
			/* MAIL and RCPT, then RSET: checked, nothing sent. */
			env.no_data = true;
		}
		if (sk_client_submit(x->client, &env, &e) == -1) {
			s->err = e;
			goto quit;
		}
		rc = sess_drive(x, GOAL_MESSAGE, d->timeout);
		if (x->msg_done) {
			/*
			 * The message's own result stands even when the
			 * session failed right after it: a server that
			 * refuses the sender and hangs up refused the sender.
			 */
			if (!x->msg.ok)
				s->err = x->msg.detail;
			else
				sk_error_clear(&s->err);
			if (x->msg.ok && x->msg.result == SK_MSG_SENT)
				(void)snprintf(d->r->queue_id,
				    sizeof(d->r->queue_id), "%d %s",
				    x->msg.detail.code,
				    x->msg.detail.server_text);
		}
		if (rc == -1)
			goto done;
	}
quit:
	if (!x->failed) {
		struct sk_error keep = s->err;

		sk_client_quit(x->client);
		(void)sess_drive(x, GOAL_CLOSED, d->timeout < QUIT_WAIT_MS ?
		    d->timeout : QUIT_WAIT_MS);
		/* A slow goodbye is no fault of the stages before it. */
		s->err = keep;
	}
done:
	if (x->client != NULL && s->caps.flags == 0 && !s->caps.esmtp)
		s->caps = *sk_client_caps(x->client);
	if (x->conn != NULL)
		sess_tls_info(x);
	sess_switch(x, x->cur);
	sess_judge_stages(x);
	if (msg != NULL) {
		OPENSSL_cleanse(msg, msglen);
		free(msg);
	}
	sk_client_free(x->client);
	x->client = NULL;
	sk_conn_free(x->conn);
	x->conn = NULL;
}

static void
sess_fini(struct sess *x)
{
	enum sk_doctor_stage k;

	for (k = 0; k < SK_DOCTOR__COUNT; k++)
		stage_clear(&x->st[k]);
}

/* ---- choosing where the session runs ---- */

/* A port whose probe says a session can run there, and in which mode. */
static bool
usable(const struct doctor *d, unsigned port, bool want_tls,
    enum sk_tls_mode *mode)
{
	const struct sk__probe *g = greeted_probe(d, port);

	if (g == NULL)
		return false;
	if (g->res.mode == SK_PMODE_IMPLICIT) {
		*mode = SK_TLS_MODE_IMPLICIT;
		return true;
	}
	if (g->res.mode != SK_PMODE_PLAIN || banner_code(g->res.banner) != 220)
		return false;
	if (g->res.starttls) {
		*mode = SK_TLS_MODE_STARTTLS;
		return true;
	}
	if (!want_tls) {
		*mode = SK_TLS_MODE_NONE;
		return true;
	}
	return false;
}

/* The best other port, in order of preference, or 0. */
static unsigned
alternative(const struct doctor *d, unsigned not, enum sk_tls_mode *mode)
{
	bool want_tls = !(d->f->target_tls_set &&
	    d->f->target_tls == SK_TLS_MODE_NONE);
	size_t i;

	for (i = 0; i < d->nports; i++)
		if (d->ports[i] != not && usable(d, d->ports[i], want_tls,
		    mode))
			return d->ports[i];
	return 0;
}

/*
 * Whether a failure of the first session is the port's, so that another
 * port (or STARTTLS on this one) may do better.
 */
static bool
port_specific(const struct sk_doctor_session *s)
{
	const struct sk_error *e = &s->err;

	switch (e->stage) {
	case SK_STAGE_CONNECT:
	case SK_STAGE_GREETING:
		return true;
	case SK_STAGE_TLS:
		return e->kind == SK_ERR_UNSUPPORTED ||
		    (e->kind == SK_ERR_REPLY && e->code != 421);
	case SK_STAGE_AUTH:
		return e->kind == SK_ERR_POLICY ||
		    (e->kind == SK_ERR_UNSUPPORTED &&
		    !(s->caps.flags & SK_CAP_AUTH)) ||
		    (e->kind == SK_ERR_REPLY && e->code == 530 &&
		    strcasestr(e->server_text, "STARTTLS") != NULL);
	default:
		return false;
	}
}

static const struct sk_addr *
probe_addr(const struct doctor *d, unsigned port)
{
	const struct sk__probe *g = greeted_probe(d, port);

	return g != NULL ? &g->addr : NULL;
}

/* Copy stages first..DATA of x into the report, prefixed with where. */
static void
merge_stages(struct doctor *d, struct sess *x, enum sk_doctor_stage first,
    bool prefix)
{
	struct sk_doctor_stage_result *st;
	enum sk_doctor_stage k;
	char detail[sizeof(st->detail)];

	for (k = first; k < SK_DOCTOR__COUNT; k++) {
		st = &x->st[k];
		if (prefix && st->status != SK_CHECK_SKIP) {
			(void)snprintf(detail, sizeof(detail),
			    _("On port %u with %s: %s"), x->s->port,
			    x->s->tls == SK_TLS_MODE_IMPLICIT ?
			    _("implicit TLS") : x->s->tls ==
			    SK_TLS_MODE_STARTTLS ? _("STARTTLS") : _("no TLS"),
			    st->detail);
			(void)snprintf(st->detail, sizeof(st->detail), "%s",
			    detail);
		}
		stage_move(&d->r->stages[k], st);
	}
}

/* The session's greeting lines join the probes' in the greeting stage. */
static void
merge_greeting(struct doctor *d, struct sess *x, bool prefix)
{
	struct sk_doctor_stage_result *gr = &d->r->stages[SK_DOCTOR_GREETING];
	struct sk_doctor_stage_result *sg = &x->st[SK_DOCTOR_GREETING];
	size_t i;

	for (i = 0; i < sg->nevidence; i++)
		ev(d, gr, "[%u] %s", x->s->port, sg->evidence[i]);
	if (sg->status == SK_CHECK_FAIL) {
		gr->status = SK_CHECK_FAIL;
		if (prefix)
			stage_detail(gr, _("On port %u: %s"), x->s->port,
			    sg->detail);
		else
			stage_detail(gr, "%s", sg->detail);
	} else if (gr->status == SK_CHECK_SKIP) {
		gr->status = sg->status;
		(void)snprintf(gr->detail, sizeof(gr->detail), "%s",
		    sg->detail);
	}
	gr->ms += sg->ms;
}

static void
stages_skipped(struct doctor *d, enum sk_doctor_stage from)
{
	enum sk_doctor_stage k;

	for (k = from; k < SK_DOCTOR__COUNT; k++) {
		d->r->stages[k].status = SK_CHECK_SKIP;
		if (d->r->stages[k].detail[0] == '\0')
			stage_detail(&d->r->stages[k], _("Not run: an earlier "
			    "stage failed."));
	}
}

/*
 * Stages 5-9: a session where the configuration points (the target port
 * in the asked mode, or the best port when none was asked), and a second
 * one when the first cannot work for reasons of the port: the same port
 * in the mode it speaks, or the best other port.  The report shows the
 * first session's stages up to its failure and the second's after it.
 */
static void
stage_sessions(struct doctor *d)
{
	struct sk_doctor_facts *f = d->f;
	struct sess *main_x, *alt_x;
	const struct sk__probe *g;
	const struct sk_addr *a;
	enum sk_tls_mode mode = SK_TLS_MODE_STARTTLS;
	enum sk_tls_mode amode = SK_TLS_MODE_STARTTLS;
	unsigned t = f->target_port, port = 0, aport = 0;
	bool target_ok = false;

	if ((main_x = calloc(1, sizeof(*main_x))) == NULL ||
	    (alt_x = calloc(1, sizeof(*alt_x))) == NULL) {
		free(main_x);
		d->oom = true;
		return;
	}

	/* Where the first session runs, and in which mode. */
	if (t != 0) {
		g = greeted_probe(d, t);
		if (g != NULL && g->res.mode == SK_PMODE_IMPLICIT &&
		    (!f->target_tls_set ||
		    f->target_tls == SK_TLS_MODE_IMPLICIT)) {
			target_ok = true;
			mode = SK_TLS_MODE_IMPLICIT;
		} else if (g != NULL && g->res.mode == SK_PMODE_PLAIN &&
		    banner_code(g->res.banner) == 220 &&
		    (!f->target_tls_set ||
		    f->target_tls != SK_TLS_MODE_IMPLICIT)) {
			target_ok = true;
			mode = f->target_tls_set ? f->target_tls :
			    SK_TLS_MODE_STARTTLS;
		}
		if (target_ok)
			port = t;
		else if (g != NULL && g->res.mode == SK_PMODE_IMPLICIT) {
			/* The wrong mode: the right one on the same port. */
			aport = t;
			amode = SK_TLS_MODE_IMPLICIT;
		} else if (g != NULL && g->res.mode == SK_PMODE_PLAIN &&
		    banner_code(g->res.banner) == 220 && g->res.starttls) {
			aport = t;
			amode = SK_TLS_MODE_STARTTLS;
		} else
			aport = alternative(d, t, &amode);
	} else
		port = alternative(d, 0, &mode);

	if (port != 0 && (a = probe_addr(d, port)) != NULL) {
		run_session(d, main_x, &f->main, a, mode);
		if (f->main.err.kind != SK_ERR_NONE &&
		    port_specific(&f->main)) {
			if (f->main.tls == SK_TLS_MODE_NONE &&
			    (f->main.caps.flags & SK_CAP_STARTTLS)) {
				aport = port;
				amode = SK_TLS_MODE_STARTTLS;
			} else
				aport = alternative(d, port, &amode);
		}
	}
	if (aport != 0 && (a = probe_addr(d, aport)) != NULL)
		run_session(d, alt_x, &f->alt, a, amode);

	/* What the report shows, stage by stage. */
	if (f->main.ran) {
		merge_greeting(d, main_x, false);
		if (f->main.err.kind != SK_ERR_NONE && f->alt.ran &&
		    main_x->failed_at < SK_DOCTOR__COUNT - 1) {
			merge_stages(d, main_x, SK_DOCTOR_TLS, false);
			merge_stages(d, alt_x, main_x->failed_at + 1, true);
		} else
			merge_stages(d, main_x, SK_DOCTOR_TLS, false);
	} else if (f->alt.ran) {
		merge_greeting(d, alt_x, true);
		merge_stages(d, alt_x, SK_DOCTOR_TLS, true);
	} else
		stages_skipped(d, SK_DOCTOR_TLS);

	/* The facts shown beside the stages: the session that got furthest. */
	{
		const struct sk_doctor_session *ts = f->main.ran &&
		    f->main.tls_seen ? &f->main : f->alt.tls_seen ? &f->alt :
		    NULL;
		const struct sk_doctor_session *cs =
		    f->main.ran && (f->main.caps.esmtp || f->main.caps.flags) ?
		    &f->main : &f->alt;

		if (ts != NULL) {
			d->r->tls = ts->tls_info;
			d->r->tls_seen = true;
		}
		d->r->caps_before_tls = cs->caps_before_tls;
		d->r->caps = cs->caps;
	}
	sess_fini(main_x);
	sess_fini(alt_x);
	free(main_x);
	free(alt_x);
}

/* ---- the run ---- */

static bool
addr_ok(const char *s)
{
	return s == NULL || (s[0] != '\0' && strpbrk(s, "\r\n<> \t") == NULL &&
	    strlen(s) < SK_ADDR_MAX);
}

int
sk_doctor_run(const struct sk_doctor_config *cfg,
    struct sk_doctor_report *report, struct sk_error *err)
{
	struct doctor d;
	int64_t t0 = sk_clock_ms();
	enum sk_doctor_stage k;

	sk_error_clear(err);
	if (cfg == NULL || report == NULL)
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "no configuration or report");
	memset(report, 0, sizeof(*report));
	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	d.r = report;
	d.f = &report->facts;
	d.host = cfg->host;
	if (d.host == NULL && cfg->region != NULL)
		d.host = cfg->region->host;
	if (d.host == NULL && cfg->provider != NULL)
		d.host = cfg->provider->host;
	if (d.host == NULL || d.host[0] == '\0')
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "doctor: no host to diagnose");
	if (!addr_ok(cfg->from) || !addr_ok(cfg->to) ||
	    (cfg->user != NULL && strpbrk(cfg->user, "\r\n") != NULL))
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "doctor: an address or the user name holds a line break, "
		    "a space or angle brackets");
	if (cfg->send && (cfg->from == NULL || cfg->to == NULL))
		return sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_USAGE,
		    "doctor: sending a test message needs a sender and a "
		    "recipient");
	d.timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : DOCTOR_TIMEOUT_MS;
	(void)snprintf(d.f->host, sizeof(d.f->host), "%s", d.host);
	if (cfg->helo_name != NULL)
		(void)snprintf(d.helo, sizeof(d.helo), "%s", cfg->helo_name);
	else
		helo_from(-1, d.helo, sizeof(d.helo));

	stage_local(&d);
	if (stage_dns(&d) == -1) {
		for (k = SK_DOCTOR_TCP; k < SK_DOCTOR__COUNT; k++)
			stage_detail(&report->stages[k], _("Not run: the "
			    "host name did not resolve."));
		goto judge;
	}
	choose_ports(&d);
	if (stage_probe(&d, err) == -1)
		goto fail;
	stage_sessions(&d);
judge:
	report->total_ms = sk_clock_ms() - t0;
	if (d.oom)
		goto oom;
	if (sk_doctor_judge(cfg, report) == -1)
		goto oom;
	sk__probe_fini(d.probes, d.nprobes);
	free(d.probes);
	return 0;
oom:
	sk_error_set(err, SK_STAGE_LOCAL, SK_ERR_LOCAL, "out of memory");
fail:
	sk__probe_fini(d.probes, d.nprobes);
	free(d.probes);
	sk_doctor_report_fini(report);
	return -1;
}

void
sk_doctor_report_fini(struct sk_doctor_report *report)
{
	size_t i;

	if (report == NULL)
		return;
	for (i = 0; i < SK_DOCTOR__COUNT; i++)
		stage_clear(&report->stages[i]);
	free(report->ports);
	sk__lines_free(report->fix, report->nfix);
	memset(report, 0, sizeof(*report));
}
