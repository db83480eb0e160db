/*
 * smtpkit: the doctor.  Walks the whole chain to a mail server, stage by
 * stage (local, dns, tcp, greeting, tls, ehlo, auth, mail, data), records
 * what it saw, and turns the facts plus the provider preset into one
 * verdict with a fix.  The library prints nothing: the report is data, and
 * its sentences come through gettext (domain "smtpkit") and, for provider
 * text, the preset's English or Chinese fields as cfg->lang says.
 */
#ifndef SMTPKIT_DOCTOR_H
#define SMTPKIT_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "client.h"
#include "conn.h"
#include "dns.h"
#include "error.h"
#include "providers.h"
#include "trace.h"

/* Stable codes, documented in the README and shown in --json. */
enum sk_verdict {
	SK_VERDICT_OK = 0,
	SK_VERDICT_DNS_NO_SUCH_HOST,
	SK_VERDICT_DNS_NO_ANSWER,
	SK_VERDICT_TCP_REFUSED,
	SK_VERDICT_TCP_TIMEOUT,
	SK_VERDICT_TCP_UNREACHABLE,
	SK_VERDICT_PORT_BLOCKED,
	SK_VERDICT_IPV6_BROKEN,
	SK_VERDICT_NO_GREETING,
	SK_VERDICT_GREETING_REFUSED,
	SK_VERDICT_TLS_MODE_MISMATCH,
	SK_VERDICT_STARTTLS_UNAVAILABLE,
	SK_VERDICT_TLS_VERSION,
	SK_VERDICT_TLS_CERT_UNTRUSTED,
	SK_VERDICT_TLS_CERT_EXPIRED,
	SK_VERDICT_TLS_CERT_NOT_YET_VALID,
	SK_VERDICT_TLS_HOSTNAME_MISMATCH,
	SK_VERDICT_CLOCK_SKEW,
	SK_VERDICT_CA_STORE_MISSING,
	SK_VERDICT_TLS_HANDSHAKE,
	SK_VERDICT_AUTH_NOT_OFFERED,
	SK_VERDICT_AUTH_MECH_UNSUPPORTED,
	SK_VERDICT_AUTH_CREDENTIALS,
	SK_VERDICT_AUTH_APP_PASSWORD_REQUIRED,
	SK_VERDICT_AUTH_SERVICE_DISABLED,
	SK_VERDICT_AUTH_BASIC_DISABLED,
	SK_VERDICT_AUTH_TOO_MANY_ATTEMPTS,
	SK_VERDICT_SENDER_MISMATCH,
	SK_VERDICT_SENDER_UNVERIFIED,
	SK_VERDICT_RECIPIENT_REJECTED,
	SK_VERDICT_RELAY_DENIED,
	SK_VERDICT_RATE_LIMITED,
	SK_VERDICT_QUOTA_EXCEEDED,
	SK_VERDICT_MESSAGE_REJECTED_SPAM,
	SK_VERDICT_SERVER_TEMPORARY,
	SK_VERDICT_SERVER_PERMANENT,
	SK_VERDICT_PROTOCOL_ERROR,
	/* OAuth2 (issue 4): the account's token, not the server */
	SK_VERDICT_OAUTH_TOKEN_EXPIRED,		/* expired, none, or refused */
	SK_VERDICT_OAUTH_REVOKED,		/* the refresh token was refused */
	SK_VERDICT_OAUTH_CLIENT_MISSING,	/* no oauth-client-id */
	/* an address is not ASCII and the server lacks SMTPUTF8 (RFC 6531) */
	SK_VERDICT_SMTPUTF8_UNSUPPORTED,
	SK_VERDICT__COUNT
};

/* "OK", "DNS_NO_SUCH_HOST", ...; parse returns -1 when unknown. */
const char *sk_verdict_name(enum sk_verdict v);
int sk_verdict_parse(const char *s, enum sk_verdict *v);

enum sk_check {
	SK_CHECK_SKIP = 0,
	SK_CHECK_OK,
	SK_CHECK_WARN,
	SK_CHECK_FAIL
};

/* "skip", "ok", "warn", "fail". */
const char *sk_check_name(enum sk_check c);

enum sk_doctor_stage {
	SK_DOCTOR_LOCAL = 0,
	SK_DOCTOR_DNS,
	SK_DOCTOR_TCP,
	SK_DOCTOR_GREETING,
	SK_DOCTOR_TLS,
	SK_DOCTOR_EHLO,
	SK_DOCTOR_AUTH,
	SK_DOCTOR_MAIL,
	SK_DOCTOR_DATA,
	SK_DOCTOR__COUNT
};

/* "local", "dns", "tcp", "greeting", "tls", "ehlo", "auth", "mail", "data". */
const char *sk_doctor_stage_name(enum sk_doctor_stage s);

struct sk_doctor_stage_result {
	enum sk_check status;
	int64_t ms;
	char detail[1024];	/* one or two sentences */
	char **evidence;	/* exact lines seen, credentials redacted (owned) */
	size_t nevidence;
};

enum sk_port_state {
	SK_PORT_UNTRIED = 0,
	SK_PORT_CONNECTED,
	SK_PORT_REFUSED,
	SK_PORT_TIMEOUT,	/* silently dropped */
	SK_PORT_UNREACHABLE,
	SK_PORT_RESET
};

/* "untried", "connected", "refused", "timeout", "unreachable", "reset". */
const char *sk_port_state_name(enum sk_port_state s);
/* The same for a person, in the message catalog's language ("timed out"). */
const char *sk_port_state_words(enum sk_port_state s);

/* What a reachable port turned out to speak. */
enum sk_port_mode {
	SK_PMODE_UNKNOWN = 0,
	SK_PMODE_PLAIN,		/* a plaintext 220 banner (STARTTLS may follow) */
	SK_PMODE_IMPLICIT,	/* silent, then a TLS handshake succeeded */
	SK_PMODE_SILENT		/* no greeting and no TLS either */
};

/* "unknown", "plain", "implicit", "silent". */
const char *sk_port_mode_name(enum sk_port_mode m);

struct sk_doctor_port {
	unsigned port;
	char address[SK_ADDR_STR_MAX];	/* "[2001:db8::1]:465" */
	int family;			/* AF_INET or AF_INET6 */
	enum sk_port_state state;
	int sys_errno;
	int64_t ms;			/* connect latency */
	enum sk_port_mode mode;
	bool starttls;			/* a plain port that offers STARTTLS */
	char banner[256];		/* the 220 line, if any */
};

struct sk_doctor_config {
	const struct sk_providers *db;		/* known replies (may be NULL) */
	const struct sk_provider *provider;	/* may be NULL: a bare host */
	const struct sk_provider_region *region;
	const char *host;		/* NULL: the preset's */
	unsigned port;			/* 0: the preset's ports, or 465 587 25 2525 */
	enum sk_tls_mode tls;
	bool tls_auto;			/* find the mode per port */
	const char *user;		/* NULL: skip the auth stage */
	const char *secret;
	enum sk_auth_mech auth;
	/* Non-ASCII in either: MAIL asks for SMTPUTF8, as send does. */
	const char *from;		/* NULL: skip MAIL */
	const char *to;			/* NULL: skip RCPT */
	bool send;			/* send a test message (DATA) */
	int timeout_ms;			/* per stage, default 10000 */
	const char *ca_file;
	bool insecure;
	enum sk_tls_version tls_min;
	const char *helo_name;		/* NULL: derived as send does */
	const char *lang;		/* "en" or "zh": which preset text to use */
	struct sk_trace trace;
	/* Added by the doctor's implementation; all default to off / NULL. */
	bool allow_plaintext_auth;	/* credentials without TLS, as send's flag */
	bool port_only;			/* probe only port, no alternatives */
	const char *account;		/* name for the suggested [account] (NULL: the preset's id, else "default") */
	/*
	 * OAuth2 (issue 4): secret is an access token smtpkit keeps for the
	 * account.  oauth_error says why there is none to use (user is then
	 * NULL): SK_OAUTH_ERR_NO_CLIENT, NO_TOKEN, NO_REFRESH_TOKEN,
	 * INVALID_GRANT, or another failure to refresh (oauth_detail says
	 * which, in a sentence).
	 */
	bool oauth;
	enum sk_oauth_error oauth_error;
	const char *oauth_detail;
	int64_t oauth_expires_at;	/* seconds since 1970, 0: unknown */
	const char *oauth_scope;
};

/* The settings that worked, when something else did not. */
struct sk_doctor_suggestion {
	bool valid;
	char host[256];
	unsigned port;
	enum sk_tls_mode tls;
	char command[1024];	/* a ready "smtpkit send ..." line */
	char config[1024];	/* a ready [account] snippet */
};

/*
 * One SMTP session of stages 5-9 (greeting, TLS, EHLO, AUTH, MAIL/RCPT,
 * DATA), as the verdict sees it.
 */
struct sk_doctor_session {
	bool ran;
	unsigned port;
	char address[SK_ADDR_STR_MAX];	/* where it connected */
	enum sk_tls_mode tls;
	struct sk_caps caps_before_tls;	/* STARTTLS sessions: the first EHLO */
	struct sk_caps caps;		/* the last EHLO */
	bool tls_seen;			/* a certificate was seen (tls valid) */
	struct sk_tls_info tls_info;
	struct sk_error err;		/* the failure; kind SK_ERR_NONE if none */
};

/*
 * The facts the verdict is drawn from, besides report->ports: filled by
 * sk_doctor_run's stages, or by hand for sk_doctor_judge().
 */
struct sk_doctor_facts {
	/* local */
	bool ca_store_ok;		/* trust anchors found and loadable */
	bool clock_ok;			/* not before this build, nor past 2100 */
	int64_t now;			/* the wall clock, seconds since 1970 */
	bool ipv6_route;		/* an IPv6 default route exists */
	/* dns */
	char host[256];			/* the host diagnosed */
	struct sk_error dns;		/* kind SK_ERR_NONE when it resolved */
	/* what was asked */
	unsigned target_port;		/* 0: none (a bare host, no --port) */
	bool target_tls_set;		/* false: the mode is found per port */
	enum sk_tls_mode target_tls;
	/*
	 * main: on the target port (or, with none, on the best one), with
	 * the configured mode; alt: on another port or mode, run when the
	 * first showed that the asked settings cannot work (its success
	 * makes report->suggested).
	 */
	struct sk_doctor_session main;
	struct sk_doctor_session alt;
};

struct sk_doctor_report {
	struct sk_doctor_stage_result stages[SK_DOCTOR__COUNT];
	struct sk_doctor_port *ports;	/* every (address, port) probed (owned) */
	size_t nports;
	enum sk_verdict verdict;
	char summary[2048];		/* one paragraph */
	char **fix;			/* numbered steps (owned) */
	size_t nfix;
	const struct sk_reply_rule *rule;	/* the known reply that matched */
	struct sk_doctor_suggestion suggested;
	struct sk_error err;		/* the decisive failure, if any */
	struct sk_tls_info tls;
	bool tls_seen;
	struct sk_caps caps_before_tls;
	struct sk_caps caps;		/* after TLS, or the only ones */
	char queue_id[256];		/* data stage: the server's reply */
	int64_t total_ms;
	struct sk_doctor_facts facts;	/* what the verdict was drawn from */
};

/*
 * Run every stage that the configuration allows, each bounded by
 * cfg->timeout_ms (ports and addresses are probed in parallel, so a
 * dropped port costs one timeout, not one per port), and fill report
 * (report_fini frees it).  Returns 0 when the doctor ran, whatever it
 * found; -1 with err only when it could not run at all (bad arguments,
 * out of memory).
 */
int sk_doctor_run(const struct sk_doctor_config *cfg,
    struct sk_doctor_report *report, struct sk_error *err);

void sk_doctor_report_fini(struct sk_doctor_report *report);

/*
 * Draw the verdict from report->facts and report->ports: set verdict,
 * summary, fix, rule, suggested and err (replacing what was there).
 * sk_doctor_run calls it; other drivers and tests may fill the facts by
 * hand.  cfg gives the preset, the known replies (cfg->db), the language
 * and what was asked (user, from, to).  Returns 0, or -1 when out of
 * memory (the verdict is set, some fix steps may be missing).
 */
int sk_doctor_judge(const struct sk_doctor_config *cfg,
    struct sk_doctor_report *report);

#endif
