/*
 * smtpkit: provider presets, as data.
 *
 * The presets (host, ports and their TLS modes, what the credential is,
 * sender rules, known server replies and what they mean) live in
 * data/providers.ini, compiled into the library, and may be extended or
 * overridden by *.ini files in /etc/smtpkit/providers.d/ and
 * ~/.config/smtpkit/providers.d/.  Nothing provider-specific is in C.
 */
#ifndef SMTPKIT_PROVIDERS_H
#define SMTPKIT_PROVIDERS_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"
#include "error.h"

#define SK_PROVIDER_PORTS_MAX 8

enum sk_credential {
	SK_CRED_PASSWORD = 0,	/* the mailbox password */
	SK_CRED_AUTH_CODE,	/* a provider-issued authorization code (QQ/163 授权码) */
	SK_CRED_APP_PASSWORD,	/* an app password (needs 2FA) */
	SK_CRED_API_KEY,	/* an API key or SMTP credential made in a console */
	SK_CRED_OAUTH2,		/* OAuth2 only: passwords are refused */
	SK_CRED__COUNT
};

enum sk_username_rule {
	SK_USER_ADDRESS = 0,	/* the full email address */
	SK_USER_APIKEY,		/* the literal word "apikey" (SendGrid) */
	SK_USER_TOKEN,		/* an API token or console-issued name */
	SK_USER_ANY,
	SK_USER__COUNT
};

enum sk_sender_rule {
	SK_SENDER_ANY = 0,
	SK_SENDER_LOGIN,	/* MAIL FROM and From must equal the login */
	SK_SENDER_ALIAS,	/* the account or one of its aliases */
	SK_SENDER_VERIFIED,	/* a verified sender identity or domain */
	SK_SENDER__COUNT
};

/* How a preset's OAuth2 tokens are obtained. */
enum sk_oauth_flow {
	SK_OAUTH_FLOW_NONE = 0,	/* no OAuth2 data */
	SK_OAUTH_FLOW_DEVICE,	/* device authorization grant (RFC 8628) */
	SK_OAUTH_FLOW_PKCE,	/* authorization code with PKCE (RFC 7636)
				   and a loopback redirect (RFC 8252) */
	SK_OAUTH_FLOW__COUNT
};

/* "none", "device", "pkce"; parse (case-insensitive) returns -1 when
 * unknown. */
const char *sk_oauth_flow_name(enum sk_oauth_flow f);
int sk_oauth_flow_parse(const char *s, enum sk_oauth_flow *f);

/*
 * Whether url may be an OAuth2 endpoint: https://HOST[:PORT][/...], or
 * http:// to a loopback host only (127.0.0.1, localhost, [::1]: tests and
 * RFC 8252 redirects), with no user information and no control
 * characters or spaces.
 */
bool sk_oauth_endpoint_ok(const char *url);

/* A preset's OAuth2 data; flow SK_OAUTH_FLOW_NONE when it has none. */
struct sk_provider_oauth {
	enum sk_oauth_flow flow;
	char *device_endpoint;	/* RFC 8628 §3.1 (device flow) */
	char *auth_endpoint;	/* RFC 6749 §3.1 (pkce flow) */
	char *token_endpoint;	/* RFC 6749 §3.2 */
	char *scope;		/* space-separated */
	char *auth_params;	/* more query for the authorization URL,
				   "access_type=offline&prompt=consent" */
	enum sk_auth_mech mech;	/* XOAUTH2 (the default) or OAUTHBEARER */
	bool secret_required;	/* the token endpoint wants a client secret */
	char *help;		/* where and how to register an app */
	char *help_zh;
};

/* Names used in the data file and in JSON: "password", "authorization-code"... */
const char *sk_credential_name(enum sk_credential c);
const char *sk_username_rule_name(enum sk_username_rule r);
const char *sk_sender_rule_name(enum sk_sender_rule r);

struct sk_provider_port {
	unsigned port;
	enum sk_tls_mode mode;
};

struct sk_provider_region {
	char *name;		/* "us-east-1", "singapore" */
	char *host;
	char **domains;		/* address domains served there: "zoho.eu" */
	size_t ndomains;
	char **mx;		/* MX suffixes that mean this region */
	size_t nmx;
};

struct sk_provider {
	char *id;		/* "qq", "gmail", "ses" */
	char *name;		/* "QQ Mail" */
	char *name_zh;
	char **aliases;		/* other ids: "hotmail", "live" */
	size_t naliases;
	char **domains;		/* address domains: "qq.com", "foxmail.com" */
	size_t ndomains;
	char **mx;		/* MX host suffixes that reveal it for a custom domain */
	size_t nmx;
	char *host;		/* default host (the default region's for regional ones) */
	struct sk_provider_port ports[SK_PROVIDER_PORTS_MAX];
	size_t nports;
	unsigned recommended;	/* the port to use first */
	unsigned auth;		/* SK_AUTH_BIT() mask the server offers */
	enum sk_credential credential;
	enum sk_username_rule username;
	enum sk_sender_rule sender;
	char *credential_help;	/* how to obtain the credential */
	char *credential_help_zh;
	char *help_url;
	char *note;
	char *note_zh;
	struct sk_provider_region *regions;
	size_t nregions;
	char *origin;		/* "builtin" or the file it came from */
	struct sk_provider_oauth oauth;
};

/* A known server reply and what it means. */
struct sk_reply_rule {
	char *id;		/* section name, for tests and traces */
	char *provider;		/* provider ids separated by spaces ("163 126
				 * yeah"); NULL: applies whatever the server */
	int code;		/* 0: any code */
	char *enhanced;		/* NULL: any */
	char **match;		/* case-insensitive substrings, all required */
	size_t nmatch;
	char *verdict;		/* a doctor verdict code: "AUTH_SERVICE_DISABLED" */
	char *summary;
	char *summary_zh;
	char **fix;		/* numbered steps */
	size_t nfix;
	char **fix_zh;
	size_t nfix_zh;
};

struct sk_providers;

/*
 * Load the built-in presets, then every *.ini file of each directory in
 * dirs (NULL-terminated; NULL dirs for none), directories in order and
 * files in each sorted by name (strcmp): a later preset or reply rule
 * with the same id replaces an earlier one whole.  Missing directories
 * are skipped; files over SK_PROVIDERS_FILE_MAX octets are refused.
 * Returns the database (owned: sk_providers_free) or NULL with err:
 * SK_ERR_CONFIG naming the file and line of a malformed entry, or
 * SK_ERR_LOCAL with sys_errno when a file or directory cannot be read.
 */
struct sk_providers *sk_providers_load(const char *const *dirs,
    struct sk_error *err);

#define SK_PROVIDERS_SYSTEM_DIR "/etc/smtpkit/providers.d"
#define SK_PROVIDERS_FILE_MAX (1024 * 1024)

/*
 * The directories sk_providers_load() reads by default, in dirs (a
 * NULL-terminated list of up to two; borrowed): SK_PROVIDERS_SYSTEM_DIR,
 * then $XDG_CONFIG_HOME (when absolute) or ~/.config, followed by
 * /smtpkit/providers.d, written into buf.  The user directory is left out
 * when there is no home directory or it does not fit in cap.
 */
void sk_providers_default_dirs(const char *dirs[3], char *buf, size_t cap);

/* An empty database, to parse text into (tests, fuzzing). */
struct sk_providers *sk_providers_new(void);

/*
 * Parse one providers file's text into db.  origin names it in errors.
 * The text is all-or-nothing: on error db is left as it was.  Sections
 * are [provider ID] and [reply ID]; see data/providers.ini for the keys.
 * A value may be continued on indented lines (joined with a space); a
 * physical line may be of any length, a value at most
 * SK_PROVIDERS_VALUE_MAX octets.  A ';' after white space starts a
 * comment.  Errors: SK_ERR_CONFIG with "origin:line: what is wrong"
 * (unknown section or key, bad port or TLS mode, unknown verdict code,
 * a provider without host, a duplicate id within the text...).
 */
int sk_providers_parse(struct sk_providers *db, const char *text, size_t len,
    const char *origin, struct sk_error *err);

#define SK_PROVIDERS_VALUE_MAX 4096

void sk_providers_free(struct sk_providers *db);

size_t sk_providers_count(const struct sk_providers *db);
const struct sk_provider *sk_providers_at(const struct sk_providers *db,
    size_t i);

/* By id or alias, case-insensitive; "ses:eu-west-1" picks a region too
 * (*region set, NULL when none was asked; region may be NULL).  NULL when
 * the id or the region asked for is unknown.  Borrowed. */
const struct sk_provider *sk_providers_find(const struct sk_providers *db,
    const char *id, const struct sk_provider_region **region);

/* By the domain of an address ("me@qq.com" or "qq.com"), compared whole
 * and without case with the providers' and their regions' domains; when
 * two presets list it, the one later in the list (added by a later file). */
const struct sk_provider *sk_providers_by_domain(
    const struct sk_providers *db, const char *addr_or_domain);

/* By an MX host name ("mxbiz1.qq.com." → exmail): the provider with the
 * longest mx suffix that equals the host or ends it after a dot. */
const struct sk_provider *sk_providers_by_mx(const struct sk_providers *db,
    const char *mx_host);

/* The region of p that serves this address's domain (a region's domains
 * list), or NULL for the default host. */
const struct sk_provider_region *sk_provider_region_by_domain(
    const struct sk_provider *p, const char *addr_or_domain);

/* The region of p that this MX host reveals (a region's mx suffixes), or
 * NULL for the default host. */
const struct sk_provider_region *sk_provider_region_by_mx(
    const struct sk_provider *p, const char *mx_host);

/*
 * The known reply that explains this one: rules of prefer (may be NULL)
 * first, then every other provider's and the generic ones.  A rule
 * matches when its code (if given) equals code (0: unknown, any rule
 * code fits), its enhanced code (if given) equals enhanced (NULL or "":
 * then it must appear in text), and every match string is in text,
 * ignoring ASCII case.  Among matching rules of the same rank the most
 * specific wins: more match strings and an enhanced code count most, then
 * a code, then longer match strings, then the one loaded later.  text is
 * the reply's lines joined by ' ' (sk_reply_join).  Borrowed; NULL when
 * none matches.
 */
const struct sk_reply_rule *sk_providers_match_reply(
    const struct sk_providers *db, const struct sk_provider *prefer,
    int code, const char *enhanced, const char *text);

/* Every reply rule, in load order (for listing). */
size_t sk_providers_rule_count(const struct sk_providers *db);
const struct sk_reply_rule *sk_providers_rule_at(
    const struct sk_providers *db, size_t i);

/* Whether rule r names p (its id or an alias) among its providers.  False
 * for generic rules and for a NULL p. */
bool sk_reply_rule_applies(const struct sk_reply_rule *r,
    const struct sk_provider *p);

/* Whether code is one of the doctor's verdict codes ("AUTH_CREDENTIALS"),
 * the ones a reply rule may name. */
bool sk_providers_verdict_known(const char *code);

#endif
