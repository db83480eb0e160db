/*
 * smtpkit: the doctor's verdict.
 *
 * From the facts the stages gathered (report->facts and report->ports),
 * one stable code, a paragraph for a person and numbered fix steps, and,
 * when something other than what was asked works, the settings that do.
 * Everything here is a pure function of the report and the configuration:
 * no I/O, so that tests can build the facts by hand.
 *
 * The order of the checks is the order of the stages: the first thing
 * that cannot work is the verdict.  Where issue 3 leaves a choice, the
 * rule is written next to the code that applies it:
 *
 *  - PORT_BLOCKED needs a target port (--port, or the preset's
 *    recommended one) that times out while another port of the same host
 *    connects.  A bare host without --port probes 465 587 25 2525; there
 *    a dropped 2525 next to a working 465 is no fault (tcp stage: warn).
 *  - IPV6_BROKEN is a warning-level verdict: it is given only when every
 *    stage passed on IPv4 but every IPv6 address failed (unreachable or
 *    timed out).  Any other failure wins; the tcp stage still warns.
 *  - CLOCK_SKEW replaces TLS_CERT_EXPIRED / TLS_CERT_NOT_YET_VALID when
 *    the local clock is wrong on its own evidence (facts.clock_ok false:
 *    earlier than the day this smtpkit was built, never before
 *    2024-01-01, or after 2100).  A certificate outside its validity on a
 *    plausible clock is the server's fault, whatever the window: test
 *    certificates and neglected servers both look like that.
 *  - CA_STORE_MISSING: the TLS layer could not load any trust store, or
 *    the local stage found none and the chain failed for want of an
 *    issuer (verify results 2, 20, 21).
 *  - A reply is matched with the known replies first (any provider's,
 *    the preset's first); then 4xx with words of rate (421 included) is
 *    RATE_LIMITED, 530/534/535 AUTH_CREDENTIALS (a 530 that asks for
 *    STARTTLS: AUTH_NOT_OFFERED), relaying words RELAY_DENIED, RCPT 5xx
 *    RECIPIENT_REJECTED, DATA 5xx with spam words MESSAGE_REJECTED_SPAM,
 *    MAIL/DATA with sending-quota words QUOTA_EXCEEDED, then 4xx
 *    SERVER_TEMPORARY and 5xx SERVER_PERMANENT.
 *  - Credentials refused locally over plaintext (--tls none without
 *    allow_plaintext_auth): TLS_MODE_MISMATCH when the server offers
 *    STARTTLS, STARTTLS_UNAVAILABLE when it does not; AUTH_NOT_OFFERED
 *    when the plaintext EHLO has no AUTH.
 *  - OAuth2 accounts (cfg->oauth): the token is judged where the login
 *    is, after the network.  Without a usable token (cfg->oauth_error)
 *    the session ran without AUTH, and what it then saw (OK, or a refusal
 *    at AUTH, MAIL, RCPT or DATA: "log in first") becomes
 *    OAUTH_CLIENT_MISSING (no client id), OAUTH_REVOKED (invalid_grant)
 *    or OAUTH_TOKEN_EXPIRED (none stored, no refresh token, or the
 *    refresh failed).  With a token, a login refused as a bad token (an
 *    error challenge with status 401, or what would be AUTH_CREDENTIALS
 *    or AUTH_BASIC_DISABLED for a password) is OAUTH_TOKEN_EXPIRED; a
 *    known reply of another kind (SMTP AUTH off for the tenant) stays.
 *  - SMTPUTF8_UNSUPPORTED: the engine's own refusal (kind unsupported,
 *    stage mail) of a sender or recipient with non-ASCII characters on a
 *    server without SMTPUTF8, before MAIL; the server refused nothing.
 *    The same kind for a SIZE or 8BITMIME limit, with ASCII addresses or
 *    SMTPUTF8 offered, stays SERVER_PERMANENT.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <ares.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "smtpkit/doctor.h"
#include "smtpkit/providers.h"
#include "i18n.h"

/* ---- name tables ---- */

static const char *const verdict_names[SK_VERDICT__COUNT] = {
	[SK_VERDICT_OK] = "OK",
	[SK_VERDICT_DNS_NO_SUCH_HOST] = "DNS_NO_SUCH_HOST",
	[SK_VERDICT_DNS_NO_ANSWER] = "DNS_NO_ANSWER",
	[SK_VERDICT_TCP_REFUSED] = "TCP_REFUSED",
	[SK_VERDICT_TCP_TIMEOUT] = "TCP_TIMEOUT",
	[SK_VERDICT_TCP_UNREACHABLE] = "TCP_UNREACHABLE",
	[SK_VERDICT_PORT_BLOCKED] = "PORT_BLOCKED",
	[SK_VERDICT_IPV6_BROKEN] = "IPV6_BROKEN",
	[SK_VERDICT_NO_GREETING] = "NO_GREETING",
	[SK_VERDICT_GREETING_REFUSED] = "GREETING_REFUSED",
	[SK_VERDICT_TLS_MODE_MISMATCH] = "TLS_MODE_MISMATCH",
	[SK_VERDICT_STARTTLS_UNAVAILABLE] = "STARTTLS_UNAVAILABLE",
	[SK_VERDICT_TLS_VERSION] = "TLS_VERSION",
	[SK_VERDICT_TLS_CERT_UNTRUSTED] = "TLS_CERT_UNTRUSTED",
	[SK_VERDICT_TLS_CERT_EXPIRED] = "TLS_CERT_EXPIRED",
	[SK_VERDICT_TLS_CERT_NOT_YET_VALID] = "TLS_CERT_NOT_YET_VALID",
	[SK_VERDICT_TLS_HOSTNAME_MISMATCH] = "TLS_HOSTNAME_MISMATCH",
	[SK_VERDICT_CLOCK_SKEW] = "CLOCK_SKEW",
	[SK_VERDICT_CA_STORE_MISSING] = "CA_STORE_MISSING",
	[SK_VERDICT_TLS_HANDSHAKE] = "TLS_HANDSHAKE",
	[SK_VERDICT_AUTH_NOT_OFFERED] = "AUTH_NOT_OFFERED",
	[SK_VERDICT_AUTH_MECH_UNSUPPORTED] = "AUTH_MECH_UNSUPPORTED",
	[SK_VERDICT_AUTH_CREDENTIALS] = "AUTH_CREDENTIALS",
	[SK_VERDICT_AUTH_APP_PASSWORD_REQUIRED] = "AUTH_APP_PASSWORD_REQUIRED",
	[SK_VERDICT_AUTH_SERVICE_DISABLED] = "AUTH_SERVICE_DISABLED",
	[SK_VERDICT_AUTH_BASIC_DISABLED] = "AUTH_BASIC_DISABLED",
	[SK_VERDICT_AUTH_TOO_MANY_ATTEMPTS] = "AUTH_TOO_MANY_ATTEMPTS",
	[SK_VERDICT_SENDER_MISMATCH] = "SENDER_MISMATCH",
	[SK_VERDICT_SENDER_UNVERIFIED] = "SENDER_UNVERIFIED",
	[SK_VERDICT_RECIPIENT_REJECTED] = "RECIPIENT_REJECTED",
	[SK_VERDICT_RELAY_DENIED] = "RELAY_DENIED",
	[SK_VERDICT_RATE_LIMITED] = "RATE_LIMITED",
	[SK_VERDICT_QUOTA_EXCEEDED] = "QUOTA_EXCEEDED",
	[SK_VERDICT_MESSAGE_REJECTED_SPAM] = "MESSAGE_REJECTED_SPAM",
	[SK_VERDICT_SERVER_TEMPORARY] = "SERVER_TEMPORARY",
	[SK_VERDICT_SERVER_PERMANENT] = "SERVER_PERMANENT",
	[SK_VERDICT_PROTOCOL_ERROR] = "PROTOCOL_ERROR",
	[SK_VERDICT_OAUTH_TOKEN_EXPIRED] = "OAUTH_TOKEN_EXPIRED",
	[SK_VERDICT_OAUTH_REVOKED] = "OAUTH_REVOKED",
	[SK_VERDICT_OAUTH_CLIENT_MISSING] = "OAUTH_CLIENT_MISSING",
	[SK_VERDICT_SMTPUTF8_UNSUPPORTED] = "SMTPUTF8_UNSUPPORTED",
};

static const char *const check_names[] = {
	[SK_CHECK_SKIP] = "skip",
	[SK_CHECK_OK] = "ok",
	[SK_CHECK_WARN] = "warn",
	[SK_CHECK_FAIL] = "fail",
};

static const char *const doctor_stage_names[SK_DOCTOR__COUNT] = {
	[SK_DOCTOR_LOCAL] = "local",
	[SK_DOCTOR_DNS] = "dns",
	[SK_DOCTOR_TCP] = "tcp",
	[SK_DOCTOR_GREETING] = "greeting",
	[SK_DOCTOR_TLS] = "tls",
	[SK_DOCTOR_EHLO] = "ehlo",
	[SK_DOCTOR_AUTH] = "auth",
	[SK_DOCTOR_MAIL] = "mail",
	[SK_DOCTOR_DATA] = "data",
};

static const char *const port_state_names[] = {
	[SK_PORT_UNTRIED] = "untried",
	[SK_PORT_CONNECTED] = "connected",
	[SK_PORT_REFUSED] = "refused",
	[SK_PORT_TIMEOUT] = "timeout",
	[SK_PORT_UNREACHABLE] = "unreachable",
	[SK_PORT_RESET] = "reset",
};

static const char *const port_mode_names[] = {
	[SK_PMODE_UNKNOWN] = "unknown",
	[SK_PMODE_PLAIN] = "plain",
	[SK_PMODE_IMPLICIT] = "implicit",
	[SK_PMODE_SILENT] = "silent",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *
sk_verdict_name(enum sk_verdict v)
{
	if ((unsigned)v >= SK_VERDICT__COUNT)
		return "unknown";
	return verdict_names[v];
}

int
sk_verdict_parse(const char *s, enum sk_verdict *v)
{
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < SK_VERDICT__COUNT; i++) {
		if (strcasecmp(s, verdict_names[i]) == 0) {
			if (v != NULL)
				*v = (enum sk_verdict)i;
			return 0;
		}
	}
	return -1;
}

const char *
sk_check_name(enum sk_check c)
{
	if ((unsigned)c >= NELEM(check_names))
		return "unknown";
	return check_names[c];
}

const char *
sk_doctor_stage_name(enum sk_doctor_stage s)
{
	if ((unsigned)s >= SK_DOCTOR__COUNT)
		return "unknown";
	return doctor_stage_names[s];
}

const char *
sk_port_state_name(enum sk_port_state s)
{
	if ((unsigned)s >= NELEM(port_state_names))
		return "unknown";
	return port_state_names[s];
}

const char *
sk_port_mode_name(enum sk_port_mode m)
{
	if ((unsigned)m >= NELEM(port_mode_names))
		return "unknown";
	return port_mode_names[m];
}

/* ---- the judge's working state ---- */

struct judge {
	const struct sk_doctor_config *cfg;
	struct sk_doctor_report *r;
	const struct sk_doctor_facts *f;
	bool zh;
	const char *host;
	/* the provider whose text applies: the preset, or the matched rule's */
	const struct sk_provider *prov;
	size_t slen;
	bool oom;
};

/* What the verdict is about, for the texts. */
struct about {
	enum sk_verdict v;
	const struct sk_error *err;		/* the failure, or NULL */
	const struct sk_doctor_session *s;	/* where it happened, or NULL */
	const struct sk_reply_rule *rule;
	unsigned port;				/* the port concerned */
	unsigned other;				/* a port that connects (tcp) */
};

/* Append one whole sentence to the summary. */
static void
say(struct judge *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(struct judge *j, const char *fmt, ...)
{
	char *s = j->r->summary;
	size_t cap = sizeof(j->r->summary);
	va_list ap;
	int n;

	if (j->slen + 2 >= cap)
		return;
	/* Chinese runs sentences together; other scripts want a space. */
	if (j->slen > 0 && !j->zh)
		s[j->slen++] = ' ';
	va_start(ap, fmt);
	n = vsnprintf(s + j->slen, cap - j->slen, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s[j->slen] = '\0';
		return;
	}
	j->slen += (size_t)n;
	if (j->slen >= cap)
		j->slen = cap - 1;
}

/* Append one fix step. */
static void
fix(struct judge *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fix(struct judge *j, const char *fmt, ...)
{
	struct sk_doctor_report *r = j->r;
	char buf[1024], **n;
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (buf[0] == '\0')
		return;
	/* Rules and presets may say the same thing twice. */
	for (i = 0; i < r->nfix; i++)
		if (strcmp(r->fix[i], buf) == 0)
			return;
	if ((n = realloc(r->fix, (r->nfix + 1) * sizeof(*n))) == NULL) {
		j->oom = true;
		return;
	}
	r->fix = n;
	if ((r->fix[r->nfix] = strdup(buf)) == NULL) {
		j->oom = true;
		return;
	}
	r->nfix++;
}

static const char *
ptext(const struct judge *j, const char *en, const char *zh)
{
	if (j->zh && zh != NULL && zh[0] != '\0')
		return zh;
	return en;
}

static const char *
prov_name(const struct judge *j, const struct sk_provider *p)
{
	const char *n = ptext(j, p->name, p->name_zh);

	return n != NULL ? n : p->id;
}

/* "implicit TLS", "STARTTLS", "no TLS": for sentences. */
static const char *
mode_words(enum sk_tls_mode m)
{
	switch (m) {
	case SK_TLS_MODE_IMPLICIT:
		return _("implicit TLS");
	case SK_TLS_MODE_STARTTLS:
		return _("STARTTLS");
	case SK_TLS_MODE_NONE:
	default:
		return _("no TLS");
	}
}

/* ---- ports ---- */

static int
state_rank(enum sk_port_state s)
{
	switch (s) {
	case SK_PORT_CONNECTED:
		return 5;
	case SK_PORT_REFUSED:
		return 4;
	case SK_PORT_RESET:
		return 3;
	case SK_PORT_TIMEOUT:
		return 2;
	case SK_PORT_UNREACHABLE:
		return 1;
	case SK_PORT_UNTRIED:
	default:
		return 0;
	}
}

/* A port's state over all its addresses: the best any address reached. */
static enum sk_port_state
port_state(const struct sk_doctor_report *r, unsigned port)
{
	enum sk_port_state best = SK_PORT_UNTRIED;
	size_t i;

	for (i = 0; i < r->nports; i++)
		if (r->ports[i].port == port &&
		    state_rank(r->ports[i].state) > state_rank(best))
			best = r->ports[i].state;
	return best;
}

/* The address of port whose greeting was probed, or NULL. */
static const struct sk_doctor_port *
port_greeted(const struct sk_doctor_report *r, unsigned port)
{
	size_t i;

	for (i = 0; i < r->nports; i++)
		if (r->ports[i].port == port &&
		    r->ports[i].state == SK_PORT_CONNECTED &&
		    (r->ports[i].mode != SK_PMODE_UNKNOWN ||
		    r->ports[i].banner[0] != '\0'))
			return &r->ports[i];
	return NULL;
}

static int
banner_code(const struct sk_doctor_port *p)
{
	const char *b = p->banner;

	if (b[0] < '1' || b[0] > '5' || b[1] < '0' || b[1] > '9' ||
	    b[2] < '0' || b[2] > '9')
		return 0;
	return (b[0] - '0') * 100 + (b[1] - '0') * 10 + (b[2] - '0');
}

/* The first port, in the report's order of preference, that connects. */
static unsigned
first_connected(const struct sk_doctor_report *r, unsigned not)
{
	size_t i;

	for (i = 0; i < r->nports; i++)
		if (r->ports[i].state == SK_PORT_CONNECTED &&
		    r->ports[i].port != not)
			return r->ports[i].port;
	return 0;
}

/* "25, 465 and 587" is hard to translate; a list with commas is not. */
static void
port_list(const struct sk_doctor_report *r, char *buf, size_t cap)
{
	size_t i, k, off = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < r->nports; i++) {
		for (k = 0; k < i; k++)
			if (r->ports[k].port == r->ports[i].port)
				break;
		if (k < i)
			continue;
		n = snprintf(buf + off, cap - off, "%s%u", off ? ", " : "",
		    r->ports[i].port);
		if (n < 0 || (size_t)n >= cap - off)
			return;
		off += (size_t)n;
	}
}

/*
 * Every IPv6 address failed (no route, or silently dropped) while an
 * IPv4 one connected: what RFC 8305 clients survive, slowly.
 */
static bool
ipv6_broken(const struct sk_doctor_report *r)
{
	bool v6 = false, v4_ok = false;
	size_t i;

	for (i = 0; i < r->nports; i++) {
		const struct sk_doctor_port *p = &r->ports[i];

		if (p->family == AF_INET6) {
			v6 = true;
			if (p->state != SK_PORT_UNREACHABLE &&
			    p->state != SK_PORT_TIMEOUT)
				return false;
		} else if (p->state == SK_PORT_CONNECTED)
			v4_ok = true;
	}
	return v6 && v4_ok;
}

/* ---- replies ---- */

static bool
has_word(const char *text, const char *const *words)
{
	size_t i;

	for (i = 0; words[i] != NULL; i++)
		if (strcasestr(text, words[i]) != NULL)
			return true;
	return false;
}

static const char *const rate_words[] = {
	"rate", "too many", "too frequent", "frequency", "throttl",
	"slow down", "HL:ICC", "HL:IFC", "connection limit", NULL
};
static const char *const relay_words[] = { "relay", NULL };
static const char *const spam_words[] = {
	"spam", "junk", "content rejected", "DT:SPM", NULL
};
static const char *const quota_words[] = {
	"quota", "sending limit", "daily limit", "limit exceeded",
	"daily user sending", NULL
};
static const char *const tls_version_words[] = {
	"TLS 1.0", "TLS 1.1", "TLS version", "TLSv1", NULL
};
static const char *const starttls_words[] = { "STARTTLS", "SSL/TLS", NULL };

/*
 * A verdict for a server reply.  Known replies first, whichever provider
 * they belong to (the preset's first); then the generic rules in the
 * comment at the top of this file.
 */
static enum sk_verdict
classify_reply(const struct judge *j, const struct sk_error *e,
    const struct sk_reply_rule **rulep)
{
	const struct sk_reply_rule *rule = NULL;
	enum sk_verdict v;
	const char *t = e->server_text;
	int c = e->code;

	*rulep = NULL;
	if (j->cfg->db != NULL)
		rule = sk_providers_match_reply(j->cfg->db, j->cfg->provider,
		    c, e->enhanced, t);
	if (rule != NULL && sk_verdict_parse(rule->verdict, &v) == 0) {
		*rulep = rule;
		return v;
	}

	if (c / 100 == 4 && has_word(t, rate_words))
		return SK_VERDICT_RATE_LIMITED;
	if (has_word(t, tls_version_words) && (c == 421 || c / 100 == 5) &&
	    (e->stage == SK_STAGE_TLS || e->stage == SK_STAGE_GREETING ||
	    e->stage == SK_STAGE_EHLO || e->stage == SK_STAGE_NONE))
		return SK_VERDICT_TLS_VERSION;
	if (c == 530 && has_word(t, starttls_words))
		return SK_VERDICT_AUTH_NOT_OFFERED;
	if (c == 530 || c == 534 || c == 535)
		return SK_VERDICT_AUTH_CREDENTIALS;

	switch (e->stage) {
	case SK_STAGE_GREETING:
		if (c / 100 == 5)
			return SK_VERDICT_GREETING_REFUSED;
		break;
	case SK_STAGE_TLS:
		/* a reply to STARTTLS: 454, 502, 5xx */
		if (c != 421)
			return SK_VERDICT_STARTTLS_UNAVAILABLE;
		break;
	case SK_STAGE_AUTH:
		if (c == 504)
			return SK_VERDICT_AUTH_MECH_UNSUPPORTED;
		break;
	case SK_STAGE_MAIL:
		if (c / 100 == 5 && has_word(t, relay_words))
			return SK_VERDICT_RELAY_DENIED;
		if (has_word(t, quota_words))
			return SK_VERDICT_QUOTA_EXCEEDED;
		break;
	case SK_STAGE_RCPT:
		if (c / 100 == 5 && has_word(t, relay_words))
			return SK_VERDICT_RELAY_DENIED;
		if (c / 100 == 5)
			return SK_VERDICT_RECIPIENT_REJECTED;
		break;
	case SK_STAGE_DATA:
		if (c / 100 == 5 && has_word(t, spam_words))
			return SK_VERDICT_MESSAGE_REJECTED_SPAM;
		if (has_word(t, quota_words))
			return SK_VERDICT_QUOTA_EXCEEDED;
		break;
	default:
		break;
	}
	if (c / 100 == 4)
		return SK_VERDICT_SERVER_TEMPORARY;
	return SK_VERDICT_SERVER_PERMANENT;
}

static bool
ssl_reason_is(unsigned long e, int reason)
{
	return e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == reason;
}

static enum sk_verdict
classify_tls(const struct judge *j, const struct sk_error *e)
{
	unsigned long ssl = e->ssl_error;

	switch (e->kind) {
	case SK_ERR_CONFIG:
		/* no trust store at all, or the CA file holds none */
		return SK_VERDICT_CA_STORE_MISSING;
	case SK_ERR_TLS_VERIFY:
		switch (e->verify_result) {
		case X509_V_ERR_CERT_HAS_EXPIRED:
			return j->f->clock_ok ? SK_VERDICT_TLS_CERT_EXPIRED :
			    SK_VERDICT_CLOCK_SKEW;
		case X509_V_ERR_CERT_NOT_YET_VALID:
			return j->f->clock_ok ?
			    SK_VERDICT_TLS_CERT_NOT_YET_VALID :
			    SK_VERDICT_CLOCK_SKEW;
		case X509_V_ERR_HOSTNAME_MISMATCH:
		case X509_V_ERR_IP_ADDRESS_MISMATCH:
		case X509_V_ERR_EMAIL_MISMATCH:
			return SK_VERDICT_TLS_HOSTNAME_MISMATCH;
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
			if (!j->f->ca_store_ok && j->cfg->ca_file == NULL)
				return SK_VERDICT_CA_STORE_MISSING;
			return SK_VERDICT_TLS_CERT_UNTRUSTED;
		default:
			/* self-signed, untrusted, rejected, bad signature */
			return SK_VERDICT_TLS_CERT_UNTRUSTED;
		}
	case SK_ERR_TLS_HANDSHAKE:
		if (ssl_reason_is(ssl, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION) ||
		    ssl_reason_is(ssl, SSL_R_UNSUPPORTED_PROTOCOL) ||
		    ssl_reason_is(ssl, SSL_R_NO_PROTOCOLS_AVAILABLE) ||
		    ssl_reason_is(ssl, SSL_R_VERSION_TOO_LOW) ||
		    ssl_reason_is(ssl, SSL_R_WRONG_SSL_VERSION))
			return SK_VERDICT_TLS_VERSION;
		/* a TLS hello answered in plaintext: not a TLS port */
		if (ssl_reason_is(ssl, SSL_R_WRONG_VERSION_NUMBER) ||
		    ssl_reason_is(ssl, SSL_R_PACKET_LENGTH_TOO_LONG) ||
		    strstr(e->message, "plaintext") != NULL)
			return SK_VERDICT_TLS_MODE_MISMATCH;
		return SK_VERDICT_TLS_HANDSHAKE;
	case SK_ERR_UNSUPPORTED:
		return SK_VERDICT_STARTTLS_UNAVAILABLE;
	case SK_ERR_EOF:
		if (strstr(e->message, "plaintext") != NULL)
			return SK_VERDICT_TLS_MODE_MISMATCH;
		return SK_VERDICT_TLS_HANDSHAKE;
	default:
		return SK_VERDICT_TLS_HANDSHAKE;
	}
}

/* Whether the first n octets of s (up to a NUL) go past ASCII. */
static bool
nonascii(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i] != '\0'; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

static bool
addr_nonascii(const char *addr)
{
	return addr != NULL && nonascii(addr, strlen(addr));
}

/*
 * The engine refused, before MAIL, an address that needs SMTPUTF8 on a
 * server that does not offer it (client.c): see the top of this file.
 */
static bool
smtputf8_missing(const struct judge *j, const struct sk_doctor_session *s,
    const struct sk_error *e)
{
	return e->kind == SK_ERR_UNSUPPORTED && e->stage == SK_STAGE_MAIL &&
	    s != NULL && !(s->caps.flags & SK_CAP_SMTPUTF8) &&
	    (addr_nonascii(j->cfg->from) || addr_nonascii(j->cfg->to));
}

/* The verdict for a session's failure. */
static enum sk_verdict
classify(const struct judge *j, const struct sk_doctor_session *s,
    const struct sk_error *e, const struct sk_reply_rule **rulep)
{
	*rulep = NULL;
	if (e->kind == SK_ERR_REPLY)
		return classify_reply(j, e, rulep);
	if (e->kind == SK_ERR_PROTOCOL)
		return SK_VERDICT_PROTOCOL_ERROR;

	switch (e->stage) {
	case SK_STAGE_RESOLVE:
		return e->kind == SK_ERR_TIMEOUT ? SK_VERDICT_DNS_NO_ANSWER :
		    SK_VERDICT_DNS_NO_SUCH_HOST;
	case SK_STAGE_CONNECT:
		switch (e->kind) {
		case SK_ERR_TIMEOUT:
			return SK_VERDICT_TCP_TIMEOUT;
		case SK_ERR_UNREACHABLE:
			return SK_VERDICT_TCP_UNREACHABLE;
		default:
			return SK_VERDICT_TCP_REFUSED;
		}
	case SK_STAGE_GREETING:
		return SK_VERDICT_NO_GREETING;
	case SK_STAGE_TLS:
		return classify_tls(j, e);
	case SK_STAGE_AUTH:
		if (e->kind == SK_ERR_POLICY) {
			/* credentials refused over plaintext, by us */
			if (s != NULL && !(s->caps.flags & SK_CAP_AUTH))
				return SK_VERDICT_AUTH_NOT_OFFERED;
			if (s != NULL && (s->caps.flags & SK_CAP_STARTTLS))
				return SK_VERDICT_TLS_MODE_MISMATCH;
			return SK_VERDICT_STARTTLS_UNAVAILABLE;
		}
		if (e->kind == SK_ERR_UNSUPPORTED) {
			if (s != NULL && (s->caps.flags & SK_CAP_AUTH) &&
			    s->caps.auth != 0)
				return SK_VERDICT_AUTH_MECH_UNSUPPORTED;
			if (s != NULL && (s->caps.flags & SK_CAP_AUTH))
				return SK_VERDICT_AUTH_MECH_UNSUPPORTED;
			return SK_VERDICT_AUTH_NOT_OFFERED;
		}
		return SK_VERDICT_SERVER_TEMPORARY;
	case SK_STAGE_MAIL:
	case SK_STAGE_RCPT:
	case SK_STAGE_DATA:
		if (smtputf8_missing(j, s, e))
			return SK_VERDICT_SMTPUTF8_UNSUPPORTED;
		if (e->kind == SK_ERR_UNSUPPORTED)
			return SK_VERDICT_SERVER_PERMANENT;
		return SK_VERDICT_SERVER_TEMPORARY;
	case SK_STAGE_EHLO:
	case SK_STAGE_QUIT:
	case SK_STAGE_NONE:
	default:
		if (e->kind == SK_ERR_TIMEOUT || e->kind == SK_ERR_EOF ||
		    e->kind == SK_ERR_RESET)
			return SK_VERDICT_SERVER_TEMPORARY;
		return SK_VERDICT_PROTOCOL_ERROR;
	}
}

/* ---- texts ---- */

/* The server's words, for a sentence. */
static void
say_reply(struct judge *j, const struct sk_error *e)
{
	if (e == NULL || e->kind != SK_ERR_REPLY)
		return;
	/* No full stop of ours: server texts usually end with one. */
	say(j, _("The server replied: \"%d %s\""), e->code, e->server_text);
}

static void
say_error(struct judge *j, const struct sk_error *e)
{
	if (e == NULL || e->kind == SK_ERR_NONE)
		return;
	if (e->kind == SK_ERR_REPLY)
		say_reply(j, e);
	else if (e->message[0] != '\0')
		say(j, _("Details: %s."), e->message);
}

/* What the preset says the user name is. */
static void
fix_username(struct judge *j)
{
	const struct sk_provider *p = j->prov;

	if (p == NULL)
		return;
	switch (p->username) {
	case SK_USER_ADDRESS:
		fix(j, _("The user name for %s is the full email address."),
		    prov_name(j, p));
		break;
	case SK_USER_APIKEY:
		fix(j, _("The user name for %s is the literal word \"apikey\", "
		    "not your login."), prov_name(j, p));
		break;
	default:
		break;
	}
}

/* The preset's own advice on its credential, when it has some. */
static void
fix_credential(struct judge *j)
{
	const struct sk_provider *p = j->prov;
	const char *help;

	if (p == NULL)
		return;
	fix_username(j);
	if ((help = ptext(j, p->credential_help, p->credential_help_zh)) !=
	    NULL && help[0] != '\0')
		fix(j, "%s", help);
}

static void
fix_help_url(struct judge *j)
{
	if (j->prov != NULL && j->prov->help_url != NULL &&
	    j->prov->help_url[0] != '\0')
		fix(j, _("The provider's instructions: %s"), j->prov->help_url);
}

/* A suggestion for the same port in another mode already says it all. */
static bool
suggested_here(const struct judge *j, unsigned port)
{
	return j->r->suggested.valid && j->r->suggested.port == port;
}

/* The known reply's explanation and steps, in the configured language. */
static bool
rule_text(struct judge *j, const struct sk_reply_rule *rule)
{
	char *const *steps;
	const char *sum;
	size_t i, n;

	if (rule == NULL)
		return false;
	sum = ptext(j, rule->summary, rule->summary_zh);
	if (sum != NULL && sum[0] != '\0')
		say(j, "%s", sum);
	if (j->zh && rule->nfix_zh > 0) {
		steps = rule->fix_zh;
		n = rule->nfix_zh;
	} else {
		steps = rule->fix;
		n = rule->nfix;
	}
	for (i = 0; i < n; i++)
		fix(j, "%s", steps[i]);
	return sum != NULL && sum[0] != '\0';
}

static const char *
cert_names(const struct sk_doctor_session *s)
{
	if (s == NULL || !s->tls_seen)
		return "?";
	if (s->tls_info.sans[0] != '\0')
		return s->tls_info.sans;
	if (s->tls_info.subject[0] != '\0')
		return s->tls_info.subject;
	return "?";
}

static void
now_text(const struct judge *j, char *buf, size_t cap)
{
	struct tm tm;
	time_t t = (time_t)j->f->now;

	buf[0] = '\0';
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		(void)snprintf(buf, cap, "?");
}

static void
text_dns(struct judge *j, const struct about *a)
{
	const struct sk_error *e = &j->f->dns;

	if (a->v == SK_VERDICT_DNS_NO_ANSWER) {
		say(j, _("The DNS resolver did not answer the query for %s, "
		    "so the doctor could not learn the server's address. The "
		    "name itself may well be fine: the problem is this "
		    "machine's resolver or the way to it."), j->host);
		say_error(j, e);
		fix(j, _("Check the name servers in /etc/resolv.conf: they "
		    "must be reachable from this machine (UDP and TCP port "
		    "53)."));
		fix(j, _("Try \"getent hosts %s\": if it hangs too, the "
		    "resolver is broken, not the mail server."), j->host);
		fix(j, _("On a cloud server, use the provider's internal "
		    "resolver."));
		return;
	}
	if (strstr(e->message, "no IPv4 or IPv6 address") != NULL)
		say(j, _("The name %s exists in DNS but has no IPv4 or IPv6 "
		    "address, so there is nothing to connect to."), j->host);
	else
		say(j, _("The name %s does not exist in DNS, so there is "
		    "nothing to connect to. This is usually a typing mistake "
		    "in the host name, or a host the provider has retired."),
		    j->host);
	fix(j, _("Check the spelling of the host name \"%s\"."), j->host);
	if (j->prov != NULL && j->prov->host != NULL &&
	    strcasecmp(j->prov->host, j->host) != 0)
		fix(j, _("The %s preset uses %s: give --provider %s instead "
		    "of --host."), prov_name(j, j->prov), j->prov->host,
		    j->prov->id);
	fix(j, _("Look the name up with \"getent hosts %s\" to compare."),
	    j->host);
}

static void
text_tcp(struct judge *j, const struct about *a)
{
	char ports[128];

	port_list(j->r, ports, sizeof(ports));
	switch (a->v) {
	case SK_VERDICT_TCP_TIMEOUT:
		say(j, _("No connection to %s could be made on any port tried "
		    "(%s): every attempt timed out without an answer. "
		    "Something on the way, such as a firewall, a cloud "
		    "security group or the hosting provider, silently drops "
		    "the connections."), j->host, ports);
		fix(j, _("Allow outgoing TCP connections to %s on ports %s in "
		    "this machine's firewall and in the cloud security group "
		    "or network ACL."), j->host, ports);
		fix(j, _("Cloud providers (Aliyun ECS, Tencent Cloud, Google "
		    "Cloud, Azure, DigitalOcean, AWS) block or throttle "
		    "outgoing port 25: use 465 or 587 instead."));
		fix(j, _("Check from this machine with \"nc -vz %s %u\"."),
		    j->host, a->port != 0 ? a->port : 465);
		break;
	case SK_VERDICT_TCP_UNREACHABLE:
		say(j, _("This machine has no route to %s: the network is "
		    "unreachable from here (ports tried: %s)."), j->host,
		    ports);
		fix(j, _("Check this machine's network: an interface that is "
		    "up and a default route (\"ip route\", \"ip -6 route\")."));
		fix(j, _("If only IPv6 addresses fail, this machine has no "
		    "working IPv6: connect to an IPv4 address of the server "
		    "or fix IPv6."));
		break;
	case SK_VERDICT_TCP_REFUSED:
	default:
		say(j, _("The connection to %s port %u was refused at once: "
		    "nothing listens on that port, or a firewall actively "
		    "rejects the connection."), j->host, a->port);
		if (j->prov == NULL)
			fix(j, _("Check the port: mail submission is usually "
			    "587 (STARTTLS) or 465 (implicit TLS)."));
		fix(j, _("If a firewall on this machine rejects outgoing "
		    "connections, allow TCP port %u to %s."), a->port,
		    j->host);
		break;
	}
}

static void
text_port_blocked(struct judge *j, const struct about *a)
{
	say(j, _("Port %u of %s is blocked: connections to it time out "
	    "without an answer, while port %u of the same host connects. A "
	    "firewall, a security group or the hosting provider drops that "
	    "port; cloud servers often block port 25."), a->port, j->host,
	    a->other);
	if (j->r->suggested.valid)
		fix(j, _("Or have port %u opened: check this machine's firewall "
		    "and the cloud security group; some cloud providers open "
		    "port 25 only on request."), a->port);
	else
		fix(j, _("Have port %u opened: check this machine's firewall "
		    "and the cloud security group; some cloud providers open "
		    "port 25 only on request."), a->port);
}

static void
text_greeting(struct judge *j, const struct about *a)
{
	const struct sk_doctor_port *g = a->port != 0 ?
	    port_greeted(j->r, a->port) : NULL;

	if (a->v == SK_VERDICT_NO_GREETING) {
		if (a->err != NULL && a->s != NULL &&
		    a->s->tls == SK_TLS_MODE_IMPLICIT)
			say(j, _("Port %u of %s completed the TLS handshake "
			    "but then sent no SMTP greeting. The service "
			    "behind TLS is hung, or is not an SMTP server."),
			    a->port, j->host);
		else
			say(j, _("Port %u of %s accepts connections, but the "
			    "server never sent its greeting and did not answer "
			    "a TLS handshake either. The service behind the "
			    "port is hung or is not an SMTP server, or "
			    "something in between swallows the connection."),
			    a->port, j->host);
		fix(j, _("Check that the host and the port are the ones for "
		    "sending mail (submission: 587 with STARTTLS, 465 with "
		    "implicit TLS)."));
		return;
	}
	/* GREETING_REFUSED */
	if (a->err != NULL && a->err->kind == SK_ERR_REPLY)
		say(j, _("The server at %s port %u refused the session in its "
		    "greeting: \"%d %s\"."), j->host, a->port, a->err->code,
		    a->err->server_text);
	else if (g != NULL)
		say(j, _("The server at %s port %u refused the session in its "
		    "greeting: \"%s\"."), j->host, a->port, g->banner);
	say(j, _("It turns away clients from this address (a blocklist, or "
	    "a policy against cloud or dynamic address ranges), or takes no "
	    "mail at the moment."));
	fix(j, _("Read the server's words above: they usually name the "
	    "reason or a web page about it."));
	fix(j, _("If this machine's address is listed, ask the provider to "
	    "unblock it, or relay through a provider that accepts it."));
}

static void
text_mode_mismatch(struct judge *j, const struct about *a)
{
	const struct sk_doctor_port *g = a->port != 0 ?
	    port_greeted(j->r, a->port) : NULL;
	const struct sk_doctor_facts *f = j->f;

	if (a->err != NULL && a->err->stage == SK_STAGE_AUTH &&
	    a->err->kind == SK_ERR_POLICY) {
		say(j, _("The login was to be sent without encryption (no "
		    "TLS), which smtpkit refuses; the server offers STARTTLS "
		    "on port %u."), a->port);
		if (!suggested_here(j, a->port))
			fix(j, _("Use STARTTLS on port %u: --tls starttls (tls = "
		    "starttls in the account)."), a->port);
		return;
	}
	if (g != NULL && g->mode == SK_PMODE_PLAIN &&
	    (!f->target_tls_set || f->target_tls == SK_TLS_MODE_IMPLICIT)) {
		say(j, _("Port %u of %s speaks plain SMTP (it greets with "
		    "\"%s\"), but implicit TLS was configured for it. A "
		    "client that starts TLS at once gets a \"wrong version "
		    "number\" error there."), a->port, j->host, g->banner);
		if (g->starttls && !suggested_here(j, a->port))
			fix(j, _("Use STARTTLS on port %u: --tls starttls (tls = "
			    "starttls in the account)."), a->port);
		fix(j, _("Or use the port for implicit TLS, usually 465."));
		return;
	}
	if (g != NULL && g->mode == SK_PMODE_IMPLICIT) {
		say(j, _("Port %u of %s expects TLS from the first byte "
		    "(implicit TLS): it sends no greeting until a TLS "
		    "handshake is done, but %s was configured. A plain SMTP "
		    "client waits there for a greeting that never comes."),
		    a->port, j->host, mode_words(f->target_tls));
		if (!suggested_here(j, a->port))
			fix(j, _("Use implicit TLS on port %u: --tls implicit "
			    "(tls = implicit in the account)."), a->port);
		return;
	}
	say(j, _("The TLS mode configured for port %u of %s does not match "
	    "what the server speaks there."), a->port, j->host);
	say_error(j, a->err);
	fix(j, _("Port 465 (and 994, 2465) use implicit TLS; 587 and 25 use "
	    "STARTTLS: set --tls to match the port."));
}

static void
text_tls(struct judge *j, const struct about *a)
{
	const struct sk_doctor_session *s = a->s;
	const struct sk_tls_info *t = s != NULL && s->tls_seen ?
	    &s->tls_info : NULL;
	const char *msg = a->err != NULL ? a->err->message : "";
	char now[40];

	now_text(j, now, sizeof(now));
	switch (a->v) {
	case SK_VERDICT_STARTTLS_UNAVAILABLE:
		if (a->err != NULL && a->err->kind == SK_ERR_REPLY)
			say(j, _("The server on port %u refused STARTTLS, so the "
			    "connection cannot be encrypted there."), a->port);
		else if (a->err != NULL && a->err->kind == SK_ERR_POLICY)
			say(j, _("The server on port %u offers no TLS at all, and "
			    "smtpkit does not send a password in the clear."),
			    a->port);
		else
			say(j, _("The server on port %u does not offer STARTTLS, "
			    "so the connection cannot be encrypted there, and "
			    "smtpkit does not send mail or passwords in the "
			    "clear when TLS is asked for."), a->port);
		say_reply(j, a->err);
		fix(j, _("Use the provider's port with implicit TLS (usually "
		    "465) or its submission port (587), which offer TLS."));
		fix(j, _("If the server is yours, enable TLS on it."));
		break;
	case SK_VERDICT_TLS_VERSION:
		say(j, _("The TLS handshake with %s failed because the two "
		    "sides have no TLS version in common: the server speaks "
		    "only an old version (TLS 1.0 or 1.1), or this machine's "
		    "OpenSSL refuses what the server offers."), j->host);
		say_error(j, a->err);
		fix(j, _("If the server is yours, enable TLS 1.2 or 1.3 on "
		    "it."));
		fix(j, _("To reach an old server anyway, on a network you "
		    "trust, lower the minimum: --tls-min 1.0."));
		fix(j, _("Check MinProtocol in /etc/ssl/openssl.cnf on this "
		    "machine."));
		break;
	case SK_VERDICT_TLS_CERT_UNTRUSTED:
		say(j, _("The server's certificate is not trusted: %s. The "
		    "certificate is self-signed or from a private CA, the "
		    "server sends an incomplete chain, or something on this "
		    "network intercepts TLS (a self-signed certificate in the "
		    "chain points to that)."), msg);
		if (t != NULL && t->issuer[0] != '\0')
			say(j, _("The certificate was issued by %s."),
			    t->issuer);
		fix(j, _("If the server is yours and uses a private CA or a "
		    "self-signed certificate, trust it with --ca-file FILE "
		    "(ca-file in the account)."));
		fix(j, _("Otherwise compare the issuer with the one you "
		    "expect: an unexpected issuer means that something "
		    "intercepts TLS on this network."));
		fix(j, _("Update this machine's CA store (the ca-certificates "
		    "package)."));
		break;
	case SK_VERDICT_TLS_CERT_EXPIRED:
		say(j, _("The server's certificate expired on %s; the local "
		    "clock says %s. Every client that checks certificates "
		    "fails until the server's administrator renews it."),
		    t != NULL ? t->not_after : "?", now);
		fix(j, _("If the server is yours, renew the certificate (for "
		    "example \"certbot renew\") and reload the server."));
		fix(j, _("Otherwise tell the provider, and use another host "
		    "or port of theirs whose certificate is valid."));
		break;
	case SK_VERDICT_TLS_CERT_NOT_YET_VALID:
		say(j, _("The server's certificate is valid only from %s, but "
		    "the local clock says %s. Either the server installed a "
		    "certificate too early, or this machine's clock is "
		    "behind."), t != NULL ? t->not_before : "?", now);
		fix(j, _("Check this machine's clock (\"timedatectl\"); turn on "
		    "time synchronisation if it is wrong."));
		fix(j, _("If the clock is right, the server's certificate was "
		    "issued for the future: tell its administrator."));
		break;
	case SK_VERDICT_CLOCK_SKEW:
		if (a->err != NULL &&
		    a->err->verify_result == X509_V_ERR_CERT_NOT_YET_VALID)
			say(j, _("This machine's clock is wrong: it says %s, so "
			    "the server's certificate (valid from %s to %s) "
			    "looks not yet valid. Certificate checks need the "
			    "right date."), now, t != NULL ? t->not_before :
			    "?", t != NULL ? t->not_after : "?");
		else
			say(j, _("This machine's clock is wrong: it says %s, so "
			    "the server's certificate (valid from %s to %s) "
			    "looks expired. Certificate checks need the right "
			    "date."), now, t != NULL ? t->not_before : "?",
			    t != NULL ? t->not_after : "?");
		fix(j, _("Set the clock and keep it right: \"timedatectl "
		    "set-ntp true\" (systemd-timesyncd or chrony)."));
		fix(j, _("Then run the doctor again."));
		break;
	case SK_VERDICT_CA_STORE_MISSING:
		say(j, _("This machine has no usable store of trusted CA "
		    "certificates, so no server certificate can be verified."));
		say_error(j, a->err);
		fix(j, _("Install the CA certificates: \"apt-get install "
		    "ca-certificates\" (Debian, Ubuntu), \"yum install "
		    "ca-certificates\" (RHEL, CentOS), \"apk add "
		    "ca-certificates\" (Alpine)."));
		fix(j, _("Or point OpenSSL at a bundle with SSL_CERT_FILE, or "
		    "give one with --ca-file."));
		break;
	case SK_VERDICT_TLS_HOSTNAME_MISMATCH:
		say(j, _("The server's certificate is not valid for the name "
		    "%s: it names %s. Connecting by IP address or by an alias "
		    "of the server causes this, and so does something that "
		    "intercepts TLS."), j->host, cert_names(s));
		fix(j, _("Connect with a name the certificate has: %s."),
		    cert_names(s));
		fix(j, _("If the name is right, the server presents the wrong "
		    "certificate, or something intercepts TLS: tell its "
		    "administrator."));
		break;
	case SK_VERDICT_TLS_HANDSHAKE:
	default:
		say(j, _("The TLS handshake with %s port %u failed: %s."),
		    j->host, a->port, msg);
		fix(j, _("See the handshake from OpenSSL's side: \"openssl "
		    "s_client -connect %s:%u%s\"."), j->host, a->port,
		    s != NULL && s->tls == SK_TLS_MODE_STARTTLS ?
		    " -starttls smtp" : "");
		fix(j, _("A proxy or security software that intercepts TLS "
		    "can cause this: try from another network."));
		break;
	}
}

static void
text_auth(struct judge *j, const struct about *a)
{
	const struct sk_doctor_session *s = a->s;
	const struct sk_doctor_session *alt = &j->f->alt;
	char offered[128];
	unsigned m;
	size_t off = 0;

	switch (a->v) {
	case SK_VERDICT_AUTH_NOT_OFFERED:
		if (s != NULL && s->tls == SK_TLS_MODE_NONE &&
		    alt->ran && alt->tls != SK_TLS_MODE_NONE &&
		    (alt->caps.flags & SK_CAP_AUTH))
			say(j, _("The server offers no login (AUTH) on this "
			    "unencrypted connection; it offers it only after "
			    "STARTTLS."));
		else if (s != NULL && s->tls == SK_TLS_MODE_NONE &&
		    ((s->caps.flags & SK_CAP_STARTTLS) ||
		    (a->err != NULL && a->err->kind == SK_ERR_REPLY)))
			say(j, _("The server offers no login (AUTH) on this "
			    "unencrypted connection. It offers STARTTLS, and "
			    "most servers offer AUTH only after it."));
		else
			say(j, _("The server on port %u offers no login (AUTH) "
			    "at all: it is probably a server that receives "
			    "mail (an MX) rather than one for sending, or "
			    "login is turned off."), a->port);
		say_reply(j, a->err);
		if (s != NULL && s->tls == SK_TLS_MODE_NONE) {
			if (!suggested_here(j, a->port))
				fix(j, _("Use STARTTLS: --tls starttls (tls = "
				    "starttls in the account)."));
		}
		else
			fix(j, _("Use the provider's server and port for "
			    "sending: 587 with STARTTLS or 465 with implicit "
			    "TLS."));
		fix(j, _("Or send without --user, if this server takes mail "
		    "from this machine without a login."));
		break;
	case SK_VERDICT_AUTH_MECH_UNSUPPORTED:
		offered[0] = '\0';
		for (m = SK_AUTH_PLAIN; s != NULL && m < SK_AUTH__COUNT; m++) {
			if (!(s->caps.auth & SK_AUTH_BIT(m)))
				continue;
			(void)snprintf(offered + off, sizeof(offered) - off,
			    "%s%s", off ? " " : "",
			    sk_auth_mech_name((enum sk_auth_mech)m));
			off = strlen(offered);
		}
		say(j, _("The server offers no login mechanism that smtpkit "
		    "can use here (it offers: %s); smtpkit speaks PLAIN, "
		    "LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER."),
		    offered[0] ? offered : _("none that smtpkit knows"));
		say_reply(j, a->err);
		fix(j, _("Choose a mechanism the server offers with --auth "
		    "(auth = in the account)."));
		fix(j, _("If it offers only OAuth2, get an access token and use "
		    "--auth XOAUTH2."));
		break;
	case SK_VERDICT_AUTH_APP_PASSWORD_REQUIRED:
		say(j, _("The server wants an app password (or an "
		    "authorization code), not the account's own password."));
		say_reply(j, a->err);
		fix_credential(j);
		fix(j, _("Create an app password in the account's security "
		    "settings (it needs two-step verification) and use it as "
		    "the password."));
		break;
	case SK_VERDICT_AUTH_SERVICE_DISABLED:
		say(j, _("Sending by SMTP is switched off for this account or "
		    "its organisation."));
		say_reply(j, a->err);
		fix(j, _("Turn on SMTP (client access) in the mailbox's web "
		    "settings, or ask the administrator to."));
		fix_credential(j);
		break;
	case SK_VERDICT_AUTH_BASIC_DISABLED:
		say(j, _("The server no longer accepts a password login "
		    "(basic authentication) for this account: only OAuth2."));
		say_reply(j, a->err);
		fix(j, _("Use OAuth2: get an access token for SMTP and use "
		    "--auth XOAUTH2 with the token as the password."));
		break;
	case SK_VERDICT_AUTH_TOO_MANY_ATTEMPTS:
		say(j, _("The server has stopped accepting logins for now "
		    "after too many failed attempts."));
		say_reply(j, a->err);
		fix(j, _("Stop every program that logs in with the old "
		    "password, wait (often 15 minutes to an hour), then try "
		    "again with the right credential."));
		fix_credential(j);
		break;
	case SK_VERDICT_AUTH_CREDENTIALS:
	default:
		if (a->err != NULL && a->err->stage != SK_STAGE_AUTH &&
		    j->cfg->user == NULL)
			say(j, _("The server wants a login before it takes "
			    "mail, and none was given."));
		else
			say(j, _("The server refused the login: the user name "
			    "or the password is wrong, or the password is not "
			    "the kind the server wants."));
		say_reply(j, a->err);
		if (a->err != NULL && a->err->stage != SK_STAGE_AUTH &&
		    j->cfg->user == NULL)
			fix(j, _("Give --user and a password (user = and "
			    "password-file = in the account)."));
		fix_credential(j);
		if (j->prov == NULL || j->prov->credential_help == NULL)
			fix(j, _("Check the user name and the password. Many "
			    "providers want an app password or an "
			    "authorization code instead of the account's "
			    "password."));
		break;
	}
}

static void
text_envelope(struct judge *j, const struct about *a)
{
	const char *from = j->cfg->from != NULL ? j->cfg->from : "";
	const char *to = j->cfg->to != NULL ? j->cfg->to : "";

	switch (a->v) {
	case SK_VERDICT_SENDER_MISMATCH:
		say(j, _("The server refused the sender %s: it takes only the "
		    "address you log in with (%s)."), from,
		    j->cfg->user != NULL ? j->cfg->user : "?");
		say_reply(j, a->err);
		fix(j, _("Send from the login address: set --from (from = in "
		    "the account) to %s, in the envelope and in the From "
		    "header."), j->cfg->user != NULL ? j->cfg->user : "?");
		break;
	case SK_VERDICT_SENDER_UNVERIFIED:
		say(j, _("The sender %s is not verified with the provider, so "
		    "it does not send mail from it."), from);
		say_reply(j, a->err);
		fix(j, _("Verify the sender address or its domain in the "
		    "provider's console, then try again."));
		break;
	case SK_VERDICT_RECIPIENT_REJECTED:
		say(j, _("The server refused the recipient %s."), to);
		say_reply(j, a->err);
		fix(j, _("Check the recipient's address."));
		fix(j, _("A provider's sandbox or trial account sends only to "
		    "verified recipients: verify this one or leave the "
		    "sandbox."));
		break;
	case SK_VERDICT_RELAY_DENIED:
	default:
		say(j, _("The server refused to pass the message on to %s: it "
		    "relays to other domains only for clients that log in, or "
		    "for senders it knows."), to[0] ? to : _("the recipient"));
		say_reply(j, a->err);
		if (j->cfg->user == NULL)
			fix(j, _("Log in: give --user and a password."));
		fix(j, _("Make sure this is the provider's server for sending "
		    "(submission), not a domain's incoming MX."));
		fix(j, _("Send from an address of the account you log in "
		    "with."));
		break;
	}
}

/*
 * Non-ASCII addresses and a server without SMTPUTF8.  The engine sends
 * them as they are (it converts no domain to its A-label), so what each
 * address can become depends on where its non-ASCII characters are.
 */
static void
text_smtputf8(struct judge *j, const struct about *a)
{
	const char *addrs[2] = { j->cfg->from, j->cfg->to };
	const char *at;
	size_t i, local;

	if (addr_nonascii(addrs[0]))
		say(j, _("The sender address %s has non-ASCII characters."),
		    addrs[0]);
	if (addr_nonascii(addrs[1]))
		say(j, _("The recipient address %s has non-ASCII characters."),
		    addrs[1]);
	say(j, _("The server %s (port %u) does not offer SMTPUTF8 (RFC 6531), "
	    "which a server needs to take such an address, so smtpkit "
	    "stopped before MAIL FROM, as smtpkit send would: the server "
	    "itself refused nothing."), j->host, a->port);
	for (i = 0; i < 2; i++) {
		if (!addr_nonascii(addrs[i]))
			continue;
		at = strrchr(addrs[i], '@');
		local = at != NULL ? (size_t)(at - addrs[i]) :
		    strlen(addrs[i]);
		if (nonascii(addrs[i], local))
			fix(j, _("The part before the @ in %s has no ASCII "
			    "form: with this provider use an ASCII address "
			    "instead, such as an ASCII alias of the same "
			    "mailbox if it has one."), addrs[i]);
		else
			fix(j, _("Write the domain %s in its ASCII (punycode) "
			    "form, xn--..., which \"idn2 %s\" prints: the "
			    "address is then ASCII and every server takes it. "
			    "smtpkit does not convert it for you."), at + 1,
			    at + 1);
	}
	fix(j, _("Or send through a provider whose server offers SMTPUTF8 "
	    "(the ehlo stage lists what this one offers)."));
}

static void
text_server(struct judge *j, const struct about *a)
{
	const char *stage = a->err != NULL ? sk_stage_name(a->err->stage) :
	    "?";

	switch (a->v) {
	case SK_VERDICT_RATE_LIMITED:
		say(j, _("The server is limiting how often or how much this "
		    "machine or account sends."));
		say_reply(j, a->err);
		fix(j, _("Wait a while and send more slowly; fewer "
		    "connections at once help (smtpkit relay queues and "
		    "retries)."));
		fix(j, _("For much mail, use a transactional provider with a "
		    "higher limit."));
		break;
	case SK_VERDICT_QUOTA_EXCEEDED:
		say(j, _("The account's sending quota is used up."));
		say_reply(j, a->err);
		fix(j, _("Wait until the quota resets (often after 24 hours), "
		    "or raise it with the provider."));
		break;
	case SK_VERDICT_MESSAGE_REJECTED_SPAM:
		say(j, _("The server judged the message to be spam and refused "
		    "it."));
		say_reply(j, a->err);
		fix(j, _("Change the content: a real subject and text, proper "
		    "From, Date and Message-ID headers, no bare links."));
		fix(j, _("Publish SPF, DKIM and DMARC records for the sender's "
		    "domain."));
		break;
	case SK_VERDICT_SERVER_TEMPORARY:
		if (a->err != NULL && a->err->kind == SK_ERR_REPLY)
			say(j, _("The server answered with a temporary failure "
			    "at the %s stage; it may work later."), stage);
		else
			say(j, _("The server stopped answering at the %s stage; "
			    "this may be a passing fault."), stage);
		say_error(j, a->err);
		fix(j, _("Try again later."));
		fix(j, _("If it persists, send the server's words above to the "
		    "provider."));
		break;
	case SK_VERDICT_SERVER_PERMANENT:
		say(j, _("The server refused at the %s stage with a permanent "
		    "error."), stage);
		say_error(j, a->err);
		fix(j, _("Read the server's words above: they name the reason; "
		    "send them to the provider if they are unclear."));
		break;
	case SK_VERDICT_PROTOCOL_ERROR:
	default:
		if (a->err == NULL && a->port != 0 &&
		    port_greeted(j->r, a->port) != NULL)
			say(j, _("Port %u of %s does not speak SMTP: it "
			    "answered \"%s\"."), a->port, j->host,
			    port_greeted(j->r, a->port)->banner);
		else
			say(j, _("The server on port %u did not speak SMTP as "
			    "expected."), a->port);
		say_error(j, a->err);
		fix(j, _("Check the host and the port: another service (web, "
		    "SSH, IMAP) or a proxy may be listening there."));
		break;
	}
}

static void
text_ok(struct judge *j, const struct about *a)
{
	const struct sk_doctor_session *s = a->s;

	if (s != NULL)
		say(j, _("Mail can be sent through %s port %u with %s: every "
		    "stage that was asked for passed."), j->host, s->port,
		    mode_words(s->tls));
	else
		say(j, _("Every stage that was asked for passed."));
	if (j->cfg->user == NULL)
		say(j, _("The login was not checked: give --user and a "
		    "password to check it too."));
	if (j->cfg->from == NULL || j->cfg->to == NULL)
		say(j, _("The sender and the recipient were not checked: give "
		    "--from and --to."));
}

static void
text_ipv6(struct judge *j, const struct about *a)
{
	say(j, _("Mail can be sent over IPv4, but IPv6 is broken on this "
	    "machine: the server's IPv6 addresses are unreachable or time "
	    "out. Programs that try IPv6 first wait before they fall back "
	    "to IPv4, or fail."));
	if (!j->f->ipv6_route)
		say(j, _("This machine has no IPv6 default route."));
	fix(j, _("Fix IPv6 on this machine (route, firewall), or make "
	    "programs prefer IPv4: \"precedence ::ffff:0:0/96 100\" in "
	    "/etc/gai.conf."));
	fix(j, _("Or configure the server by an IPv4 address or a name "
	    "with only IPv4 addresses."));
}

static const char *
account_name(const struct judge *j)
{
	return j->cfg->account != NULL ? j->cfg->account : "NAME";
}

static void
fix_oauth_login(struct judge *j)
{
	if (j->cfg->oauth_error == SK_OAUTH_ERR_NO_TOKEN)
		fix(j, _("Sign in: smtpkit oauth login --account %s"),
		    account_name(j));
	else
		fix(j, _("Sign in again: smtpkit oauth login --account %s"),
		    account_name(j));
}

static void
text_oauth(struct judge *j, const struct about *a)
{
	const struct sk_doctor_config *cfg = j->cfg;
	const struct sk_provider *p = cfg->provider;
	const char *help;

	switch (a->v) {
	case SK_VERDICT_OAUTH_CLIENT_MISSING:
		say(j, _("This account signs in with OAuth2, but no app is "
		    "configured for it: smtpkit needs the client id of an app "
		    "registered with the provider."));
		if (p != NULL && p->oauth.flow != SK_OAUTH_FLOW_NONE &&
		    (help = ptext(j, p->oauth.help, p->oauth.help_zh)) !=
		    NULL)
			fix(j, "%s", help);
		else
			fix(j, _("Register an app with the provider and set "
			    "oauth-flow (device or pkce), the endpoints "
			    "(oauth-device-endpoint or oauth-auth-endpoint, "
			    "and oauth-token-endpoint) and oauth-scope in the "
			    "account."));
		fix(j, _("Put its client id in the account (oauth-client-id "
		    "= ...), then sign in: smtpkit oauth login --account %s"),
		    account_name(j));
		break;
	case SK_VERDICT_OAUTH_REVOKED:
		say(j, _("The provider refused the stored refresh token: it "
		    "was revoked (a password change, or the app's access "
		    "removed) or has expired, so no new access token can be "
		    "had."));
		if (cfg->oauth_detail != NULL && cfg->oauth_detail[0] != '\0')
			say(j, _("Details: %s."), cfg->oauth_detail);
		fix_oauth_login(j);
		break;
	case SK_VERDICT_OAUTH_TOKEN_EXPIRED:
	default:
		if (cfg->oauth_error == SK_OAUTH_ERR_NO_TOKEN)
			say(j, _("No OAuth2 token is stored for this account: "
			    "nobody has signed in with it yet (or smtpkit "
			    "oauth logout removed it)."));
		else if (cfg->oauth_error == SK_OAUTH_ERR_NO_REFRESH_TOKEN)
			say(j, _("The OAuth2 access token has expired, and "
			    "the provider gave no refresh token to renew "
			    "it."));
		else if (cfg->oauth_error != SK_OAUTH_ERR_NONE) {
			say(j, _("The OAuth2 access token has expired and "
			    "could not be renewed."));
			if (cfg->oauth_detail != NULL &&
			    cfg->oauth_detail[0] != '\0')
				say(j, _("Details: %s."), cfg->oauth_detail);
			fix(j, _("Check that this machine reaches the "
			    "provider's token endpoint (HTTPS), then try "
			    "again."));
		} else {
			say(j, _("The server refused the OAuth2 access token, "
			    "even after a refresh: it has expired or been "
			    "revoked, or it is not valid for sending mail as "
			    "this user."));
			say_reply(j, a->err);
		}
		fix_oauth_login(j);
		if (cfg->oauth_error == SK_OAUTH_ERR_NONE)
			fix(j, _("Check that the app may send mail (Microsoft: "
			    "the SMTP.Send permission; Google: the scope "
			    "https://mail.google.com/) and that the user name "
			    "is the mailbox that signed in."));
		break;
	}
}

static void
text_for(struct judge *j, const struct about *a)
{
	bool told = false;

	/* A known reply explains itself better than any generic text. */
	if (a->rule != NULL) {
		size_t before = j->r->nfix;

		told = rule_text(j, a->rule);
		if (told) {
			say_reply(j, a->err);
			if (a->v == SK_VERDICT_AUTH_CREDENTIALS ||
			    a->v == SK_VERDICT_AUTH_APP_PASSWORD_REQUIRED)
				fix_username(j);
			/* The rule's own steps say it better than the preset. */
			if (j->r->nfix == before &&
			    a->v >= SK_VERDICT_AUTH_CREDENTIALS &&
			    a->v <= SK_VERDICT_AUTH_TOO_MANY_ATTEMPTS)
				fix_credential(j);
			fix_help_url(j);
			return;
		}
	}
	switch (a->v) {
	case SK_VERDICT_OK:
		text_ok(j, a);
		break;
	case SK_VERDICT_DNS_NO_SUCH_HOST:
	case SK_VERDICT_DNS_NO_ANSWER:
		text_dns(j, a);
		break;
	case SK_VERDICT_TCP_REFUSED:
	case SK_VERDICT_TCP_TIMEOUT:
	case SK_VERDICT_TCP_UNREACHABLE:
		text_tcp(j, a);
		break;
	case SK_VERDICT_PORT_BLOCKED:
		text_port_blocked(j, a);
		break;
	case SK_VERDICT_IPV6_BROKEN:
		text_ipv6(j, a);
		break;
	case SK_VERDICT_NO_GREETING:
	case SK_VERDICT_GREETING_REFUSED:
		text_greeting(j, a);
		break;
	case SK_VERDICT_TLS_MODE_MISMATCH:
		text_mode_mismatch(j, a);
		break;
	case SK_VERDICT_STARTTLS_UNAVAILABLE:
	case SK_VERDICT_TLS_VERSION:
	case SK_VERDICT_TLS_CERT_UNTRUSTED:
	case SK_VERDICT_TLS_CERT_EXPIRED:
	case SK_VERDICT_TLS_CERT_NOT_YET_VALID:
	case SK_VERDICT_TLS_HOSTNAME_MISMATCH:
	case SK_VERDICT_CLOCK_SKEW:
	case SK_VERDICT_CA_STORE_MISSING:
	case SK_VERDICT_TLS_HANDSHAKE:
		text_tls(j, a);
		break;
	case SK_VERDICT_AUTH_NOT_OFFERED:
	case SK_VERDICT_AUTH_MECH_UNSUPPORTED:
	case SK_VERDICT_AUTH_CREDENTIALS:
	case SK_VERDICT_AUTH_APP_PASSWORD_REQUIRED:
	case SK_VERDICT_AUTH_SERVICE_DISABLED:
	case SK_VERDICT_AUTH_BASIC_DISABLED:
	case SK_VERDICT_AUTH_TOO_MANY_ATTEMPTS:
		text_auth(j, a);
		break;
	case SK_VERDICT_SENDER_MISMATCH:
	case SK_VERDICT_SENDER_UNVERIFIED:
	case SK_VERDICT_RECIPIENT_REJECTED:
	case SK_VERDICT_RELAY_DENIED:
		text_envelope(j, a);
		break;
	case SK_VERDICT_OAUTH_TOKEN_EXPIRED:
	case SK_VERDICT_OAUTH_REVOKED:
	case SK_VERDICT_OAUTH_CLIENT_MISSING:
		text_oauth(j, a);
		break;
	case SK_VERDICT_SMTPUTF8_UNSUPPORTED:
		text_smtputf8(j, a);
		break;
	default:
		text_server(j, a);
		break;
	}
	/* Nothing to fix when all passed: no "How to fix it" for a link. */
	if (a->v != SK_VERDICT_OK)
		fix_help_url(j);
}

/* ---- the suggestion ---- */

/* Append s to buf, quoted for a POSIX shell when it needs it. */
static void
shell_word(char *buf, size_t cap, size_t *off, const char *s)
{
	const char *p;
	bool plain = s[0] != '\0';

	for (p = s; *p != '\0'; p++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789@%+=:,./_-", *p) == NULL)
			plain = false;
#define PUT(c) do { if (*off + 1 < cap) buf[(*off)++] = (c); } while (0)
	PUT(' ');
	if (plain) {
		for (p = s; *p != '\0'; p++)
			PUT(*p);
	} else {
		PUT('\'');
		for (p = s; *p != '\0'; p++) {
			if (*p == '\'') {
				/* close, escaped quote, reopen */
				PUT('\'');
				PUT('\\');
				PUT('\'');
				PUT('\'');
			} else
				PUT(*p);
		}
		PUT('\'');
	}
#undef PUT
	buf[*off < cap ? *off : cap - 1] = '\0';
}

static void
suggest(struct judge *j, const struct sk_doctor_session *s)
{
	const struct sk_doctor_config *cfg = j->cfg;
	struct sk_doctor_suggestion *sg = &j->r->suggested;
	char portbuf[16];
	const char *to, *name;
	size_t off = 0;
	int n;

	memset(sg, 0, sizeof(*sg));
	sg->valid = true;
	(void)snprintf(sg->host, sizeof(sg->host), "%s", j->host);
	sg->port = s->port;
	sg->tls = s->tls;
	(void)snprintf(portbuf, sizeof(portbuf), "%u", s->port);

	n = snprintf(sg->command, sizeof(sg->command), "smtpkit send");
	off = n > 0 ? (size_t)n : 0;
	shell_word(sg->command, sizeof(sg->command), &off, "--host");
	shell_word(sg->command, sizeof(sg->command), &off, j->host);
	shell_word(sg->command, sizeof(sg->command), &off, "--port");
	shell_word(sg->command, sizeof(sg->command), &off, portbuf);
	shell_word(sg->command, sizeof(sg->command), &off, "--tls");
	shell_word(sg->command, sizeof(sg->command), &off,
	    sk_tls_mode_name(s->tls));
	if (cfg->tls_min != SK_TLS_ANY) {
		shell_word(sg->command, sizeof(sg->command), &off,
		    "--tls-min");
		shell_word(sg->command, sizeof(sg->command), &off,
		    sk_tls_version_name(cfg->tls_min) + 4);
	}
	if (cfg->ca_file != NULL) {
		shell_word(sg->command, sizeof(sg->command), &off,
		    "--ca-file");
		shell_word(sg->command, sizeof(sg->command), &off,
		    cfg->ca_file);
	}
	if (cfg->user != NULL) {
		shell_word(sg->command, sizeof(sg->command), &off, "--user");
		shell_word(sg->command, sizeof(sg->command), &off, cfg->user);
		shell_word(sg->command, sizeof(sg->command), &off,
		    "--password-env");
		shell_word(sg->command, sizeof(sg->command), &off,
		    "SMTP_PASSWORD");
		if (cfg->auth != SK_AUTH_NONE) {
			shell_word(sg->command, sizeof(sg->command), &off,
			    "--auth");
			shell_word(sg->command, sizeof(sg->command), &off,
			    sk_auth_mech_name(cfg->auth));
		}
		if (s->tls == SK_TLS_MODE_NONE)
			shell_word(sg->command, sizeof(sg->command), &off,
			    "--allow-plaintext-auth");
	}
	if (cfg->from != NULL) {
		shell_word(sg->command, sizeof(sg->command), &off, "--from");
		shell_word(sg->command, sizeof(sg->command), &off, cfg->from);
	}
	to = cfg->to != NULL ? cfg->to : cfg->from != NULL ? cfg->from :
	    "you@example.org";
	shell_word(sg->command, sizeof(sg->command), &off, "--to");
	shell_word(sg->command, sizeof(sg->command), &off, to);
	shell_word(sg->command, sizeof(sg->command), &off, "--subject");
	shell_word(sg->command, sizeof(sg->command), &off, "smtpkit test");
	shell_word(sg->command, sizeof(sg->command), &off, "--text");
	shell_word(sg->command, sizeof(sg->command), &off, "It works.");

	name = cfg->account != NULL ? cfg->account :
	    cfg->provider != NULL ? cfg->provider->id : "default";
	off = 0;
#define CONF(...) do {							\
	n = snprintf(sg->config + off, sizeof(sg->config) - off,	\
	    __VA_ARGS__);						\
	if (n > 0 && (size_t)n < sizeof(sg->config) - off)		\
		off += (size_t)n;					\
} while (0)
	CONF("[account %s]\n", name);
	if (cfg->provider != NULL)
		CONF("provider = %s%s%s\n", cfg->provider->id,
		    cfg->region != NULL ? ":" : "",
		    cfg->region != NULL ? cfg->region->name : "");
	CONF("host = %s\n", j->host);
	CONF("port = %u\n", s->port);
	CONF("tls = %s\n", sk_tls_mode_name(s->tls));
	if (cfg->tls_min != SK_TLS_ANY)
		CONF("tls-min = %s\n", sk_tls_version_name(cfg->tls_min) + 4);
	if (cfg->user != NULL) {
		CONF("user = %s\n", cfg->user);
		CONF("password-env = SMTP_PASSWORD\n");
		if (cfg->auth != SK_AUTH_NONE)
			CONF("auth = %s\n", sk_auth_mech_name(cfg->auth));
	}
	if (cfg->from != NULL)
		CONF("from = %s\n", cfg->from);
	if (cfg->ca_file != NULL)
		CONF("ca-file = %s\n", cfg->ca_file);
#undef CONF
}

/* The step that goes with a suggestion: first, since it is the fix. */
static void
fix_suggestion(struct judge *j, unsigned port)
{
	const struct sk_doctor_suggestion *sg = &j->r->suggested;

	if (!sg->valid)
		return;
	if (sg->port == port)
		fix(j, _("Use %s on port %u: --tls %s (tls = %s in the "
		    "account). That worked: see the command and the "
		    "configuration below."), mode_words(sg->tls), sg->port,
		    sk_tls_mode_name(sg->tls), sk_tls_mode_name(sg->tls));
	else
		fix(j, _("Use port %u with %s instead: that worked (see the "
		    "command and the configuration below)."), sg->port,
		    mode_words(sg->tls));
}

/*
 * The alternative session worked at least up to EHLO: its settings are
 * worth suggesting, even if a later stage (the login) failed there too.
 */
static bool
alt_works(const struct sk_doctor_session *alt)
{
	if (!alt->ran)
		return false;
	if (alt->err.kind == SK_ERR_NONE)
		return true;
	return alt->err.stage >= SK_STAGE_AUTH &&
	    alt->err.stage <= SK_STAGE_DATA;
}

/*
 * After the asked settings failed, the alternative also failed later on:
 * say so and add its own steps, since both problems stand in the way.
 */
static void
alt_followup(struct judge *j)
{
	const struct sk_doctor_session *alt = &j->f->alt;
	const struct sk_reply_rule *rule;
	struct about b;

	if (!alt_works(alt) || alt->err.kind == SK_ERR_NONE)
		return;
	memset(&b, 0, sizeof(b));
	b.v = classify(j, alt, &alt->err, &rule);
	b.err = &alt->err;
	b.s = alt;
	b.rule = rule;
	b.port = alt->port;
	say(j, _("With port %u and %s the connection works, but the next "
	    "stage fails there too (%s):"), alt->port, mode_words(alt->tls),
	    sk_verdict_name(b.v));
	if (j->r->rule == NULL)
		j->r->rule = rule;
	text_for(j, &b);
}

/* ---- the verdict ---- */

static void
decide(struct judge *j, struct about *a, enum sk_verdict v,
    const struct sk_error *err, const struct sk_doctor_session *s)
{
	a->v = v;
	a->err = err;
	a->s = s;
	if (err != NULL)
		j->r->err = *err;
	if (s != NULL && a->port == 0)
		a->port = s->port;
}

/* The preset whose words explain a matched rule. */
static const struct sk_provider *
rule_provider(const struct judge *j, const struct sk_reply_rule *rule)
{
	const struct sk_provider *p;
	char id[64];
	size_t n;

	if (rule == NULL || rule->provider == NULL || j->cfg->db == NULL)
		return j->cfg->provider;
	if (j->cfg->provider != NULL &&
	    sk_reply_rule_applies(rule, j->cfg->provider))
		return j->cfg->provider;
	n = strcspn(rule->provider, " ,");
	if (n == 0 || n >= sizeof(id))
		return j->cfg->provider;
	memcpy(id, rule->provider, n);
	id[n] = '\0';
	p = sk_providers_find(j->cfg->db, id, NULL);
	return p != NULL ? p : j->cfg->provider;
}

/* Judge the target port at the TCP and greeting levels; true if decided. */
static bool
judge_target(struct judge *j, struct about *a)
{
	const struct sk_doctor_facts *f = j->f;
	const struct sk_doctor_port *g;
	unsigned t = f->target_port;
	const struct sk_reply_rule *rule = NULL;
	int code;

	if (t == 0)
		return false;
	a->port = t;
	switch (port_state(j->r, t)) {
	case SK_PORT_CONNECTED:
		break;
	case SK_PORT_TIMEOUT:
		a->other = first_connected(j->r, t);
		decide(j, a, SK_VERDICT_PORT_BLOCKED, NULL, NULL);
		return true;
	case SK_PORT_UNREACHABLE:
		decide(j, a, SK_VERDICT_TCP_UNREACHABLE, NULL, NULL);
		return true;
	case SK_PORT_UNTRIED:
		return false;
	case SK_PORT_REFUSED:
	case SK_PORT_RESET:
	default:
		decide(j, a, SK_VERDICT_TCP_REFUSED, NULL, NULL);
		return true;
	}

	if ((g = port_greeted(j->r, t)) == NULL)
		return false;
	switch (g->mode) {
	case SK_PMODE_SILENT:
		decide(j, a, SK_VERDICT_NO_GREETING, NULL, NULL);
		return true;
	case SK_PMODE_UNKNOWN:
		decide(j, a, SK_VERDICT_PROTOCOL_ERROR, NULL, NULL);
		return true;
	case SK_PMODE_PLAIN:
		code = banner_code(g);
		if (code != 220 && code != 0) {
			/* The banner is a reply: the known ones apply. */
			struct sk_error *e = &j->r->err;

			sk_error_clear(e);
			e->stage = SK_STAGE_GREETING;
			e->kind = SK_ERR_REPLY;
			e->code = code;
			(void)snprintf(e->server_text, sizeof(e->server_text),
			    "%s", g->banner[3] != '\0' ? g->banner + 4 : "");
			(void)snprintf(e->message, sizeof(e->message),
			    "the server refused the connection: %s",
			    g->banner);
			a->v = classify_reply(j, e, &rule);
			a->rule = rule;
			a->err = e;
			return true;
		}
		if (f->target_tls_set && f->target_tls == SK_TLS_MODE_IMPLICIT) {
			decide(j, a, SK_VERDICT_TLS_MODE_MISMATCH, NULL, NULL);
			return true;
		}
		return false;
	case SK_PMODE_IMPLICIT:
		if (f->target_tls_set && f->target_tls != SK_TLS_MODE_IMPLICIT) {
			decide(j, a, SK_VERDICT_TLS_MODE_MISMATCH, NULL, NULL);
			return true;
		}
		return false;
	}
	return false;
}

/* No port connected at all. */
static void
judge_no_tcp(struct judge *j, struct about *a)
{
	const struct sk_doctor_report *r = j->r;
	enum sk_port_state st;
	bool all_timeout = true;
	size_t i;

	for (i = 0; i < r->nports; i++)
		if (r->ports[i].state != SK_PORT_TIMEOUT)
			all_timeout = false;
	if (all_timeout) {
		a->port = j->f->target_port;
		decide(j, a, SK_VERDICT_TCP_TIMEOUT, NULL, NULL);
		return;
	}
	a->port = j->f->target_port != 0 ? j->f->target_port :
	    r->ports[0].port;
	st = port_state(r, a->port);
	/* IPv6 without a route and IPv4 dropped: the drop is the news. */
	if (st == SK_PORT_TIMEOUT)
		decide(j, a, SK_VERDICT_TCP_TIMEOUT, NULL, NULL);
	else if (st == SK_PORT_UNREACHABLE)
		decide(j, a, SK_VERDICT_TCP_UNREACHABLE, NULL, NULL);
	else
		decide(j, a, SK_VERDICT_TCP_REFUSED, NULL, NULL);
}

/* No session ran although something connected: what the probes saw. */
static void
judge_probes_only(struct judge *j, struct about *a)
{
	const struct sk_doctor_report *r = j->r;
	const struct sk_doctor_port *g = NULL;
	size_t i;

	for (i = 0; i < r->nports && g == NULL; i++)
		g = port_greeted(r, r->ports[i].port);
	if (g == NULL) {
		a->port = first_connected(r, 0);
		decide(j, a, SK_VERDICT_NO_GREETING, NULL, NULL);
		return;
	}
	a->port = g->port;
	if (g->mode == SK_PMODE_SILENT)
		decide(j, a, SK_VERDICT_NO_GREETING, NULL, NULL);
	else if (g->mode == SK_PMODE_PLAIN && banner_code(g) / 100 == 5)
		decide(j, a, SK_VERDICT_GREETING_REFUSED, NULL, NULL);
	else if (g->mode == SK_PMODE_PLAIN && !g->starttls)
		decide(j, a, SK_VERDICT_STARTTLS_UNAVAILABLE, NULL, NULL);
	else
		decide(j, a, SK_VERDICT_PROTOCOL_ERROR, NULL, NULL);
}

/* The verdict for an OAuth2 account's token; see the top of the file. */
static void
judge_oauth(struct judge *j, struct about *a)
{
	const struct sk_doctor_config *cfg = j->cfg;
	const struct sk_error *e = a->err;
	bool login_level;

	if (!cfg->oauth)
		return;
	if (cfg->oauth_error != SK_OAUTH_ERR_NONE) {
		login_level = a->v == SK_VERDICT_OK ||
		    a->v == SK_VERDICT_IPV6_BROKEN ||
		    (e != NULL && (e->stage == SK_STAGE_AUTH ||
		    e->stage == SK_STAGE_MAIL || e->stage == SK_STAGE_RCPT ||
		    e->stage == SK_STAGE_DATA));
		if (!login_level)
			return;
		switch (cfg->oauth_error) {
		case SK_OAUTH_ERR_NO_CLIENT:
			a->v = SK_VERDICT_OAUTH_CLIENT_MISSING;
			break;
		case SK_OAUTH_ERR_INVALID_GRANT:
			a->v = SK_VERDICT_OAUTH_REVOKED;
			break;
		default:
			a->v = SK_VERDICT_OAUTH_TOKEN_EXPIRED;
			break;
		}
		a->rule = NULL;
		return;
	}
	if (e != NULL && e->stage == SK_STAGE_AUTH &&
	    e->kind == SK_ERR_REPLY &&
	    (e->oauth_error == SK_OAUTH_ERR_INVALID_TOKEN ||
	    a->v == SK_VERDICT_AUTH_CREDENTIALS ||
	    a->v == SK_VERDICT_AUTH_BASIC_DISABLED ||
	    a->v == SK_VERDICT_AUTH_APP_PASSWORD_REQUIRED)) {
		a->v = SK_VERDICT_OAUTH_TOKEN_EXPIRED;
		a->rule = NULL;
	}
}

int
sk_doctor_judge(const struct sk_doctor_config *cfg,
    struct sk_doctor_report *r)
{
	const struct sk_doctor_facts *f = &r->facts;
	struct judge j;
	struct about a;
	const struct sk_reply_rule *rule = NULL;
	const struct sk_doctor_session *s;
	size_t i;
	bool any = false, suggestable = false;

	memset(&j, 0, sizeof(j));
	j.cfg = cfg;
	j.r = r;
	j.f = f;
	j.zh = cfg->lang != NULL && strncasecmp(cfg->lang, "zh", 2) == 0;
	j.host = f->host[0] != '\0' ? f->host : cfg->host != NULL ?
	    cfg->host : "?";
	j.prov = cfg->provider;

	for (i = 0; i < r->nfix; i++)
		free(r->fix[i]);
	free(r->fix);
	r->fix = NULL;
	r->nfix = 0;
	r->summary[0] = '\0';
	r->rule = NULL;
	memset(&r->suggested, 0, sizeof(r->suggested));
	sk_error_clear(&r->err);
	memset(&a, 0, sizeof(a));

	for (i = 0; i < r->nports; i++)
		if (r->ports[i].state == SK_PORT_CONNECTED)
			any = true;

	if (f->dns.kind != SK_ERR_NONE) {
		/* A resolver that failed, rather than a name that is not. */
		if (f->dns.kind == SK_ERR_TIMEOUT ||
		    f->dns.dns_status == ARES_ESERVFAIL ||
		    f->dns.dns_status == ARES_EREFUSED)
			decide(&j, &a, SK_VERDICT_DNS_NO_ANSWER, &f->dns, NULL);
		else
			decide(&j, &a, SK_VERDICT_DNS_NO_SUCH_HOST, &f->dns,
			    NULL);
	} else if (r->nports > 0 && !any) {
		judge_no_tcp(&j, &a);
	} else if (judge_target(&j, &a)) {
		/* the asked port cannot work: what else does */
		suggestable = true;
	} else if ((s = f->main.ran ? &f->main : NULL) != NULL &&
	    s->err.kind != SK_ERR_NONE) {
		a.port = s->port;
		a.v = classify(&j, s, &s->err, &rule);
		a.rule = rule;
		decide(&j, &a, a.v, &s->err, s);
		suggestable = true;
	} else if (!f->main.ran && !f->alt.ran && any) {
		judge_probes_only(&j, &a);
		suggestable = true;
	} else if (ipv6_broken(r)) {
		decide(&j, &a, SK_VERDICT_IPV6_BROKEN, NULL,
		    f->main.ran ? &f->main : NULL);
	} else {
		decide(&j, &a, SK_VERDICT_OK, NULL,
		    f->main.ran ? &f->main : NULL);
	}
	judge_oauth(&j, &a);

	r->verdict = a.v;
	r->rule = a.rule;
	if (a.rule != NULL)
		j.prov = rule_provider(&j, a.rule);

	if (suggestable && alt_works(&f->alt))
		suggest(&j, &f->alt);
	else if ((a.v == SK_VERDICT_OK || a.v == SK_VERDICT_IPV6_BROKEN) &&
	    f->main.ran && (f->target_port == 0 || !f->target_tls_set))
		/* nothing was fully asked: say what was found */
		suggest(&j, &f->main);

	/* Another port cannot cure a token. */
	if (a.v != SK_VERDICT_OK && a.v != SK_VERDICT_IPV6_BROKEN &&
	    a.v != SK_VERDICT_OAUTH_TOKEN_EXPIRED &&
	    a.v != SK_VERDICT_OAUTH_REVOKED &&
	    a.v != SK_VERDICT_OAUTH_CLIENT_MISSING)
		fix_suggestion(&j, a.port);
	text_for(&j, &a);
	if (suggestable && a.v != SK_VERDICT_OK)
		alt_followup(&j);
	return j.oom ? -1 : 0;
}
