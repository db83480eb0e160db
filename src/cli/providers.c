/*
 * smtpkit providers: the preset database, for people and for scripts.
 *
 *	smtpkit providers [list]		a table of every preset
 *	smtpkit providers show ID[:REGION]	everything about one
 *	smtpkit providers detect ADDRESS	which preset serves an address
 *
 * detect looks at the address's domain first and asks DNS only for a
 * domain no preset names (a company's own domain), then matches its MX
 * hosts against the presets' MX suffixes.  Exit status: 0 found, 69
 * (EX_UNAVAILABLE) no preset, 68 (EX_NOHOST) the domain does not exist,
 * 75 (EX_TEMPFAIL) the resolver did not answer.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "smtpkit/auth.h"
#include "smtpkit/dns.h"
#include "smtpkit/providers.h"
#include "cli.h"

#define DETECT_TIMEOUT_S 5
#define WRAP_COLUMNS 78

struct prov_opts {
	bool json;
	const char *lang;	/* --lang, NULL for the environment's */
	bool zh;		/* Chinese notes too */
	int timeout_s;
};

enum {
	OPT_JSON = 256, OPT_LANG, OPT_TIMEOUT, OPT_HELP
};

static const struct option long_opts[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "lang", required_argument, NULL, OPT_LANG },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

static void
providers_usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpkit providers [list] [--json]\n"
	    "       smtpkit providers show ID[:REGION] [--json] [--lang en|zh]\n"
	    "       smtpkit providers detect ADDRESS [--timeout SECS] [--json]\n"
	    "\n"
	    "Presets come built in and from *.ini files in\n"
	    SK_PROVIDERS_SYSTEM_DIR " and ~/.config/smtpkit/providers.d\n"
	    "(later files replace a preset of the same id); 'man "
	    "smtpkit-providers'.\n");
}

/* ---- words for people ---- */

static const char *
mode_words(enum sk_tls_mode m)
{
	switch (m) {
	case SK_TLS_MODE_IMPLICIT:
		return "implicit TLS";
	case SK_TLS_MODE_STARTTLS:
		return "STARTTLS";
	case SK_TLS_MODE_NONE:
		break;
	}
	return "plaintext (no TLS)";
}

static const char *
credential_words(enum sk_credential c)
{
	switch (c) {
	case SK_CRED_PASSWORD:
		return "the mailbox password";
	case SK_CRED_AUTH_CODE:
		return "an authorization code made in the webmail, not the "
		    "account password";
	case SK_CRED_APP_PASSWORD:
		return "an app password (needs two-factor authentication), "
		    "not the account password";
	case SK_CRED_API_KEY:
		return "an API key or SMTP credential made in the provider's "
		    "console";
	case SK_CRED_OAUTH2:
		return "OAuth2 only (XOAUTH2): passwords are refused";
	case SK_CRED__COUNT:
		break;
	}
	return "unknown";
}

static const char *
username_words(enum sk_username_rule r)
{
	switch (r) {
	case SK_USER_ADDRESS:
		return "the full email address";
	case SK_USER_APIKEY:
		return "the literal word \"apikey\"";
	case SK_USER_TOKEN:
		return "a login or token issued in the provider's console";
	case SK_USER_ANY:
	case SK_USER__COUNT:
		break;
	}
	return "as the provider says";
}

static const char *
sender_words(enum sk_sender_rule r)
{
	switch (r) {
	case SK_SENDER_LOGIN:
		return "MAIL FROM and the From header must equal the login";
	case SK_SENDER_ALIAS:
		return "the account's address or one of its aliases";
	case SK_SENDER_VERIFIED:
		return "a verified sender address or domain";
	case SK_SENDER_ANY:
	case SK_SENDER__COUNT:
		break;
	}
	return "any address";
}

/* "PLAIN LOGIN XOAUTH2" into buf. */
static const char *
auth_words(unsigned mask, char *buf, size_t cap)
{
	size_t off = 0;
	int m, n;

	buf[0] = '\0';
	for (m = SK_AUTH_NONE + 1; m < SK_AUTH__COUNT; m++) {
		if (!(mask & SK_AUTH_BIT(m)))
			continue;
		n = snprintf(buf + off, cap - off, "%s%s", off ? " " : "",
		    sk_auth_mech_name((enum sk_auth_mech)m));
		if (n < 0 || (size_t)n >= cap - off)
			break;
		off += (size_t)n;
	}
	return buf;
}

/* "465/tls* 587/starttls 25/plain" (recommended marked) into buf: short,
 * for the table. */
static const char *
ports_short(const struct sk_provider *p, char *buf, size_t cap)
{
	static const char *const word[] = {
		[SK_TLS_MODE_NONE] = "plain",
		[SK_TLS_MODE_STARTTLS] = "starttls",
		[SK_TLS_MODE_IMPLICIT] = "tls"
	};
	size_t off = 0, i;
	int n;

	buf[0] = '\0';
	for (i = 0; i < p->nports; i++) {
		n = snprintf(buf + off, cap - off, "%s%u/%s%s", i ? " " : "",
		    p->ports[i].port, (unsigned)p->ports[i].mode <=
		    SK_TLS_MODE_IMPLICIT ? word[p->ports[i].mode] : "?",
		    p->ports[i].port == p->recommended ? "*" : "");
		if (n < 0 || (size_t)n >= cap - off)
			break;
		off += (size_t)n;
	}
	return buf;
}

/* "465 implicit TLS (recommended), 25 plaintext (no TLS)" into buf. */
static const char *
ports_long(const struct sk_provider *p, char *buf, size_t cap)
{
	size_t off = 0, i;
	int n;

	buf[0] = '\0';
	for (i = 0; i < p->nports; i++) {
		n = snprintf(buf + off, cap - off, "%s%u %s%s", i ? ", " : "",
		    p->ports[i].port, mode_words(p->ports[i].mode),
		    p->ports[i].port == p->recommended ? " (recommended)" : "");
		if (n < 0 || (size_t)n >= cap - off)
			break;
		off += (size_t)n;
	}
	return buf;
}

/*
 * Columns a UTF-8 string takes on a terminal, roughly: CJK and the
 * full-width forms take two, the rest one.  For padding labels only.
 */
static int
text_width(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned cp;
	int w = 0;

	while (*u != '\0') {
		if (*u < 0x80) {
			cp = *u++;
		} else if ((*u & 0xe0) == 0xc0 && u[1] != '\0') {
			cp = (unsigned)(u[0] & 0x1f) << 6 | (u[1] & 0x3f);
			u += 2;
		} else if ((*u & 0xf0) == 0xe0 && u[1] != '\0' &&
		    u[2] != '\0') {
			cp = (unsigned)(u[0] & 0x0f) << 12 |
			    (unsigned)(u[1] & 0x3f) << 6 | (u[2] & 0x3f);
			u += 3;
		} else {
			cp = 0x10000;
			u++;
			while ((*u & 0xc0) == 0x80)
				u++;
		}
		w += (cp >= 0x1100 && cp <= 0x115f) ||
		    (cp >= 0x2e80 && cp <= 0xa4cf) ||
		    (cp >= 0xac00 && cp <= 0xd7a3) ||
		    (cp >= 0xf900 && cp <= 0xfaff) ||
		    (cp >= 0xff00 && cp <= 0xff60) || cp >= 0x10000 ? 2 : 1;
	}
	return w;
}

/*
 * prefix, padded to indent columns, then text wrapped at spaces with a
 * hanging indent.  Only English is wrapped: Chinese has no spaces and
 * its width is not its length in octets, so it goes out whole and the
 * terminal wraps it.
 */
static void
print_wrapped(const char *prefix, int indent, const char *text, bool wrap)
{
	const char *s = text, *end, *brk;
	size_t width = (size_t)(WRAP_COLUMNS - indent);

	if (text == NULL || text[0] == '\0')
		return;
	printf("%s%*s", prefix, indent > text_width(prefix) ?
	    indent - text_width(prefix) : 0, "");
	while (wrap && strlen(s) > width) {
		/* The last space within the width, else the first after. */
		brk = NULL;
		for (end = s; end < s + width; end++)
			if (*end == ' ')
				brk = end;
		if (brk == NULL && (brk = strchr(s + width, ' ')) == NULL)
			break;
		printf("%.*s\n%*s", (int)(brk - s), s, indent, "");
		s = brk + 1;
		while (*s == ' ')
			s++;
	}
	printf("%s\n", s);
}

/* "  label          text" */
static void
print_field(const char *label, const char *text, bool wrap)
{
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "  %s ", label);
	print_wrapped(prefix, 17, text, wrap);
}

/* The words of a list, joined with ", ", into buf. */
static const char *
join_list(char *const *v, size_t n, char *buf, size_t cap)
{
	size_t off = 0, i;
	int k;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		k = snprintf(buf + off, cap - off, "%s%s", i ? ", " : "", v[i]);
		if (k < 0 || (size_t)k >= cap - off)
			break;
		off += (size_t)k;
	}
	return buf;
}

/* ---- JSON ---- */

static cJSON *
json_strings(char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	size_t i;

	for (i = 0; a != NULL && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	return a;
}

static void
json_add_opt(cJSON *o, const char *key, const char *value)
{
	if (value != NULL)
		cJSON_AddStringToObject(o, key, value);
	else
		cJSON_AddNullToObject(o, key);
}

static cJSON *
json_provider(const struct sk_provider *p)
{
	cJSON *o = cJSON_CreateObject(), *a, *x;
	size_t i;
	int m;

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "id", p->id);
	cJSON_AddStringToObject(o, "name", p->name);
	json_add_opt(o, "name_zh", p->name_zh);
	cJSON_AddItemToObject(o, "aliases", json_strings(p->aliases,
	    p->naliases));
	cJSON_AddStringToObject(o, "host", p->host);
	a = cJSON_AddArrayToObject(o, "ports");
	for (i = 0; a != NULL && i < p->nports; i++) {
		x = cJSON_CreateObject();
		cJSON_AddNumberToObject(x, "port", p->ports[i].port);
		cJSON_AddStringToObject(x, "mode",
		    sk_tls_mode_name(p->ports[i].mode));
		cJSON_AddBoolToObject(x, "recommended",
		    p->ports[i].port == p->recommended);
		cJSON_AddItemToArray(a, x);
	}
	cJSON_AddNumberToObject(o, "recommended", p->recommended);
	a = cJSON_AddArrayToObject(o, "auth");
	for (m = SK_AUTH_NONE + 1; a != NULL && m < SK_AUTH__COUNT; m++)
		if (p->auth & SK_AUTH_BIT(m))
			cJSON_AddItemToArray(a, cJSON_CreateString(
			    sk_auth_mech_name((enum sk_auth_mech)m)));
	cJSON_AddStringToObject(o, "credential",
	    sk_credential_name(p->credential));
	json_add_opt(o, "credential_help", p->credential_help);
	json_add_opt(o, "credential_help_zh", p->credential_help_zh);
	cJSON_AddStringToObject(o, "username",
	    sk_username_rule_name(p->username));
	cJSON_AddStringToObject(o, "sender", sk_sender_rule_name(p->sender));
	cJSON_AddItemToObject(o, "domains", json_strings(p->domains,
	    p->ndomains));
	cJSON_AddItemToObject(o, "mx", json_strings(p->mx, p->nmx));
	a = cJSON_AddArrayToObject(o, "regions");
	for (i = 0; a != NULL && i < p->nregions; i++) {
		x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "name", p->regions[i].name);
		cJSON_AddStringToObject(x, "host", p->regions[i].host);
		cJSON_AddItemToObject(x, "domains", json_strings(
		    p->regions[i].domains, p->regions[i].ndomains));
		cJSON_AddItemToObject(x, "mx", json_strings(p->regions[i].mx,
		    p->regions[i].nmx));
		cJSON_AddItemToArray(a, x);
	}
	json_add_opt(o, "help_url", p->help_url);
	json_add_opt(o, "note", p->note);
	json_add_opt(o, "note_zh", p->note_zh);
	if (p->oauth.flow != SK_OAUTH_FLOW_NONE &&
	    (x = cJSON_AddObjectToObject(o, "oauth")) != NULL) {
		cJSON_AddStringToObject(x, "flow",
		    sk_oauth_flow_name(p->oauth.flow));
		json_add_opt(x, "device_endpoint", p->oauth.device_endpoint);
		json_add_opt(x, "auth_endpoint", p->oauth.auth_endpoint);
		json_add_opt(x, "token_endpoint", p->oauth.token_endpoint);
		json_add_opt(x, "scope", p->oauth.scope);
		cJSON_AddStringToObject(x, "mech",
		    sk_auth_mech_name(p->oauth.mech));
		cJSON_AddBoolToObject(x, "client_secret_required",
		    p->oauth.secret_required);
		json_add_opt(x, "help", p->oauth.help);
		json_add_opt(x, "help_zh", p->oauth.help_zh);
	} else
		cJSON_AddNullToObject(o, "oauth");
	cJSON_AddStringToObject(o, "origin", p->origin);
	return o;
}

static cJSON *
json_rule(const struct sk_reply_rule *r)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "id", r->id);
	json_add_opt(o, "provider", r->provider);
	if (r->code != 0)
		cJSON_AddNumberToObject(o, "code", r->code);
	else
		cJSON_AddNullToObject(o, "code");
	json_add_opt(o, "enhanced", r->enhanced);
	cJSON_AddItemToObject(o, "match", json_strings(r->match, r->nmatch));
	cJSON_AddStringToObject(o, "verdict", r->verdict);
	cJSON_AddStringToObject(o, "summary", r->summary);
	json_add_opt(o, "summary_zh", r->summary_zh);
	cJSON_AddItemToObject(o, "fix", json_strings(r->fix, r->nfix));
	cJSON_AddItemToObject(o, "fix_zh", json_strings(r->fix_zh,
	    r->nfix_zh));
	return o;
}

static int
json_print(cJSON *o)
{
	char *s;

	if (o == NULL || (s = cJSON_PrintUnformatted(o)) == NULL) {
		cJSON_Delete(o);
		fprintf(stderr, "%s: providers: out of memory\n",
		    cli_progname);
		return EXIT_OSERR;
	}
	puts(s);
	free(s);
	cJSON_Delete(o);
	return EXIT_OK;
}

/* ---- list ---- */

static int
providers_list(const struct sk_providers *db, const struct prov_opts *o)
{
	const struct sk_provider *p;
	char ports[160];
	size_t i, n = sk_providers_count(db);
	int wid = 2, wname = 4, whost = 4, wports = 5, len;
	cJSON *j, *a;

	if (o->json) {
		j = cJSON_CreateObject();
		a = cJSON_AddArrayToObject(j, "providers");
		for (i = 0; a != NULL && i < n; i++)
			cJSON_AddItemToArray(a, json_provider(
			    sk_providers_at(db, i)));
		return json_print(j);
	}

	for (i = 0; i < n; i++) {
		p = sk_providers_at(db, i);
		if ((len = (int)strlen(p->id)) > wid)
			wid = len;
		if ((len = (int)strlen(p->name)) > wname)
			wname = len;
		if ((len = (int)strlen(p->host)) > whost)
			whost = len;
		if ((len = (int)strlen(ports_short(p, ports,
		    sizeof(ports)))) > wports)
			wports = len;
	}
	/* Names are English and ASCII in the data; cap odd user ones. */
	if (wname > 30)
		wname = 30;
	printf("%-*s  %-*s  %-*s  %-*s  %s\n", wid, "ID", wname, "NAME", whost,
	    "HOST", wports, "PORTS", "CREDENTIAL");
	for (i = 0; i < n; i++) {
		p = sk_providers_at(db, i);
		printf("%-*s  %-*.*s  %-*s  %-*s  %s%s\n", wid, p->id, wname,
		    wname, p->name, whost, p->host, wports,
		    ports_short(p, ports, sizeof(ports)),
		    sk_credential_name(p->credential),
		    p->nregions > 0 ? " (regions)" : "");
	}
	printf("\n%zu presets.  tls: implicit TLS; starttls: STARTTLS required; "
	    "plain: no TLS;\n*: the port to use.  'smtpkit providers show ID' "
	    "for the details, 'smtpkit\nproviders detect ADDRESS' to find the "
	    "preset for an address.\n", n);
	return EXIT_OK;
}

/* ---- show ---- */

static void
show_rule(const struct sk_reply_rule *r, bool zh)
{
	char label[16];
	size_t i;

	printf("\n  %s", r->code != 0 ? "" : "any code");
	if (r->code != 0)
		printf("%d", r->code);
	if (r->enhanced != NULL)
		printf(" %s", r->enhanced);
	for (i = 0; i < r->nmatch; i++)
		printf("%s'%s'", i == 0 ? " " : " + ", r->match[i]);
	printf("  →  %s\n", r->verdict);
	print_wrapped("", 4, r->summary, true);
	for (i = 0; i < r->nfix; i++) {
		snprintf(label, sizeof(label), "    %zu. ", i + 1);
		print_wrapped(label, 7, r->fix[i], true);
	}
	if (!zh)
		return;
	print_wrapped("", 4, r->summary_zh, false);
	for (i = 0; i < r->nfix_zh; i++) {
		snprintf(label, sizeof(label), "    %zu. ", i + 1);
		print_wrapped(label, 7, r->fix_zh[i], false);
	}
}

static int
providers_show(const struct sk_providers *db, const char *id,
    const struct prov_opts *o)
{
	const struct sk_provider_region *region;
	const struct sk_provider *p;
	const struct sk_reply_rule *r;
	char buf[1024], line[512];
	size_t i, nrules = 0;
	cJSON *j, *a;

	if ((p = sk_providers_find(db, id, &region)) == NULL) {
		const char *colon = strchr(id, ':');

		if (colon != NULL) {
			snprintf(buf, sizeof(buf), "%.*s", (int)(colon - id),
			    id);
			if (sk_providers_find(db, buf, NULL) != NULL)
				return cli_usage_error("providers", "%s: no region \"%s\" "
				    "(see 'smtpkit providers show %s')", buf,
				    colon + 1, buf);
		}
		return cli_usage_error("providers", "no preset \"%s\" (run 'smtpkit providers' "
		    "for the list)", id);
	}

	if (o->json) {
		j = json_provider(p);
		if (region != NULL) {
			a = cJSON_CreateObject();
			cJSON_AddStringToObject(a, "name", region->name);
			cJSON_AddStringToObject(a, "host", region->host);
			cJSON_AddItemToObject(j, "region", a);
		} else
			cJSON_AddNullToObject(j, "region");
		a = cJSON_AddArrayToObject(j, "replies");
		for (i = 0; i < sk_providers_rule_count(db); i++) {
			r = sk_providers_rule_at(db, i);
			if (a != NULL && sk_reply_rule_applies(r, p))
				cJSON_AddItemToArray(a, json_rule(r));
		}
		return json_print(j);
	}

	printf("%s: %s", p->id, p->name);
	if (o->zh && p->name_zh != NULL)
		printf(" (%s)", p->name_zh);
	printf("\n");
	print_field("aliases", join_list(p->aliases, p->naliases, buf,
	    sizeof(buf)), true);
	if (region != NULL) {
		snprintf(line, sizeof(line), "%s (region %s; the default is %s)",
		    region->host, region->name, p->host);
		print_field("host", line, true);
	} else
		print_field("host", p->host, true);
	print_field("ports", ports_long(p, buf, sizeof(buf)), true);
	print_field("auth", auth_words(p->auth, buf, sizeof(buf)), true);
	print_field("username", username_words(p->username), true);
	print_field("password", credential_words(p->credential), true);
	print_field("how to get it", p->credential_help, true);
	if (o->zh)
		print_field("获取方法", p->credential_help_zh, false);
	if (p->oauth.flow != SK_OAUTH_FLOW_NONE) {
		snprintf(line, sizeof(line), "%s, %s flow, scope %s; "
		    "smtpkit oauth login", sk_auth_mech_name(p->oauth.mech),
		    sk_oauth_flow_name(p->oauth.flow), p->oauth.scope);
		print_field("OAuth2", line, true);
		print_field("OAuth2 app", p->oauth.help, true);
		if (o->zh)
			print_field("OAuth2 应用", p->oauth.help_zh, false);
	}
	print_field("sender", sender_words(p->sender), true);
	print_field("domains", join_list(p->domains, p->ndomains, buf,
	    sizeof(buf)), true);
	print_field("MX suffixes", join_list(p->mx, p->nmx, buf, sizeof(buf)),
	    true);
	for (i = 0; i < p->nregions; i++) {
		snprintf(line, sizeof(line), "%-16s %s", p->regions[i].name,
		    p->regions[i].host);
		print_field(i == 0 ? "regions" : "", line, false);
	}
	if (p->nregions > 0) {
		snprintf(line, sizeof(line), "pick one with %s:REGION, e.g. "
		    "%s:%s", p->id, p->id, p->regions[0].name);
		print_field("", line, true);
	}
	print_field("help", p->help_url, false);
	print_field("note", p->note, true);
	if (o->zh)
		print_field("说明", p->note_zh, false);
	print_field("defined in", p->origin, false);

	for (i = 0; i < sk_providers_rule_count(db); i++)
		nrules += sk_reply_rule_applies(sk_providers_rule_at(db, i), p);
	if (nrules > 0) {
		printf("\nKnown replies (%zu), besides the generic ones:\n",
		    nrules);
		for (i = 0; i < sk_providers_rule_count(db); i++) {
			r = sk_providers_rule_at(db, i);
			if (sk_reply_rule_applies(r, p))
				show_rule(r, o->zh);
		}
	}
	return EXIT_OK;
}

/* ---- detect ---- */

/* The domain of "Name <me@example.com>", "me@example.com" or "example.com". */
static bool
detect_domain(const char *addr, char *buf, size_t cap)
{
	const char *s, *at;
	size_t n, i;

	s = (at = strrchr(addr, '@')) != NULL ? at + 1 : addr;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == '>' || s[n - 1] == ' '))
		n--;
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n >= cap)
		return false;
	for (i = 0; i < n; i++) {
		/* Letters, digits, '-', '.', '_': a name DNS can be asked. */
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		    s[i] == '.' || s[i] == '_'))
			return false;
		buf[i] = s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i];
	}
	buf[n] = '\0';
	return true;
}

static void
detect_print(const char *addr, const char *domain,
    const struct sk_provider *p, const struct sk_provider_region *region,
    const char *via, const struct prov_opts *o)
{
	const struct sk_provider_port *pp = NULL;
	char buf[512];
	size_t i;

	printf("%s: %s (%s)", addr, p->name, p->id);
	if (o->zh && p->name_zh != NULL)
		printf(" %s", p->name_zh);
	printf("\n");
	if (via == NULL)
		snprintf(buf, sizeof(buf), "the domain %s", domain);
	else
		snprintf(buf, sizeof(buf), "the MX record of %s: %s", domain,
		    via);
	print_field("found by", buf, true);
	if (region != NULL) {
		snprintf(buf, sizeof(buf), "%s (region %s: use %s:%s)",
		    region->host, region->name, p->id, region->name);
		print_field("host", buf, true);
	} else
		print_field("host", p->host, true);
	for (i = 0; i < p->nports; i++)
		if (p->ports[i].port == p->recommended)
			pp = &p->ports[i];
	if (pp != NULL) {
		snprintf(buf, sizeof(buf), "%u, %s", pp->port,
		    mode_words(pp->mode));
		print_field("port", buf, true);
	}
	print_field("password", credential_words(p->credential), true);
	print_field("how to get it", p->credential_help, true);
	if (o->zh)
		print_field("获取方法", p->credential_help_zh, false);
	snprintf(buf, sizeof(buf), "smtpkit providers show %s%s%s", p->id,
	    region != NULL ? ":" : "", region != NULL ? region->name : "");
	print_field("more", buf, false);
}

static cJSON *
json_mx(const struct sk_mx *mx, size_t n)
{
	cJSON *a = cJSON_CreateArray(), *x;
	size_t i;

	for (i = 0; a != NULL && i < n; i++) {
		x = cJSON_CreateObject();
		cJSON_AddNumberToObject(x, "pref", mx[i].pref);
		cJSON_AddStringToObject(x, "host", mx[i].host);
		cJSON_AddItemToArray(a, x);
	}
	return a;
}

static int
providers_detect(const struct sk_providers *db, const char *addr,
    const struct prov_opts *o)
{
	const struct sk_provider_region *region = NULL;
	const struct sk_provider *p;
	struct sk_mx mx[SK_DNS_MX_MAX];
	char domain[SK_DNS_NAME_MAX];
	const char *via = NULL;
	struct sk_error err;
	size_t n = 0, i;
	cJSON *j;
	int rc;

	if (!detect_domain(addr, domain, sizeof(domain)))
		return cli_usage_error("providers", "detect: \"%s\" has no domain to look at",
		    addr);

	/* A provider's own domain: no DNS at all. */
	if ((p = sk_providers_by_domain(db, domain)) != NULL)
		region = sk_provider_region_by_domain(p, domain);
	else {
		if (sk_dns_mx(domain, o->timeout_s * 1000, mx, SK_DNS_MX_MAX,
		    &n, &err) == -1) {
			rc = cli_exit_code(&err);
			if (o->json) {
				j = cJSON_CreateObject();
				cJSON_AddStringToObject(j, "address", addr);
				cJSON_AddStringToObject(j, "domain", domain);
				cJSON_AddBoolToObject(j, "found", false);
				cJSON_AddStringToObject(j, "error",
				    err.message);
				cJSON_AddNumberToObject(j, "exit", rc);
				(void)json_print(j);
			} else
				cli_print_error(&err);
			return rc;
		}
		/* The most preferred MX that names a provider. */
		for (i = 0; i < n && p == NULL; i++)
			if ((p = sk_providers_by_mx(db, mx[i].host)) != NULL) {
				via = mx[i].host;
				region = sk_provider_region_by_mx(p, via);
			}
	}

	if (o->json) {
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "address", addr);
		cJSON_AddStringToObject(j, "domain", domain);
		cJSON_AddBoolToObject(j, "found", p != NULL);
		if (p != NULL) {
			cJSON_AddStringToObject(j, "by", via != NULL ? "mx" :
			    "domain");
			json_add_opt(j, "via", via);
			cJSON_AddStringToObject(j, "id", p->id);
			if (region != NULL)
				cJSON_AddStringToObject(j, "region",
				    region->name);
			else
				cJSON_AddNullToObject(j, "region");
			cJSON_AddStringToObject(j, "host", region != NULL ?
			    region->host : p->host);
			cJSON_AddItemToObject(j, "provider", json_provider(p));
		}
		cJSON_AddItemToObject(j, "mx", json_mx(mx, n));
		rc = json_print(j);
		return rc != EXIT_OK ? rc : p != NULL ? EXIT_OK :
		    EXIT_UNAVAILABLE;
	}

	if (p != NULL) {
		detect_print(addr, domain, p, region, via, o);
		return EXIT_OK;
	}
	printf("%s: no preset for %s", addr, domain);
	if (n == 0)
		printf(" (it has no MX record)\n");
	else {
		printf(" (MX:");
		for (i = 0; i < n; i++)
			printf(" %s", mx[i].host);
		printf(")\n");
	}
	printf("Give the server with --host, --port and --tls, or add a preset "
	    "in\n~/.config/smtpkit/providers.d/ (see 'man smtpkit-providers')."
	    "\n");
	return EXIT_UNAVAILABLE;
}

int
cmd_providers(int argc, char **argv)
{
	struct prov_opts o = { .timeout_s = DETECT_TIMEOUT_S };
	struct sk_providers *db;
	struct sk_error err;
	const char *sub, *arg = NULL, *lang;
	char *end;
	long v;
	int c, rc;

	lang = cli_lang_arg(argc, argv);
	if (lang != NULL && strcmp(lang, "en") != 0 && strcmp(lang, "zh") != 0)
		return cli_usage_error("providers", "--lang %s: use en or zh", lang);
	o.zh = strcmp(cli_i18n_init(lang), "zh") == 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_LANG:
			o.lang = optarg;
			break;
		case OPT_TIMEOUT:
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    v < 1 || v > 300)
				return cli_usage_error("providers", "--timeout %s: give seconds "
				    "from 1 to 300", optarg);
			o.timeout_s = (int)v;
			break;
		case OPT_HELP:
			providers_usage(stdout);
			return EXIT_OK;
		default:
			return cli_usage_error("providers", "unknown or incomplete option %s",
			    argv[optind - 1]);
		}
	}
	sub = optind < argc ? argv[optind++] : "list";
	if (optind < argc)
		arg = argv[optind++];
	if (optind < argc)
		return cli_usage_error("providers", "unexpected argument %s", argv[optind]);

	if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 &&
	    strcmp(sub, "detect") != 0)
		return cli_usage_error("providers", "unknown subcommand %s (list, show or "
		    "detect)", sub);
	if (sub[0] == 'l' && arg != NULL)
		return cli_usage_error("providers", "list takes no argument");
	if (sub[0] != 'l' && arg == NULL)
		return cli_usage_error("providers", "%s: give %s", sub,
		    sub[0] == 's' ? "a preset id" : "an address");

	if ((db = cli_providers_load(&err)) == NULL) {
		cli_print_error(&err);
		return cli_exit_code(&err);
	}
	if (arg == NULL)
		rc = providers_list(db, &o);
	else if (sub[0] == 's')
		rc = providers_show(db, arg, &o);
	else
		rc = providers_detect(db, arg, &o);
	sk_providers_free(db);
	return rc;
}
