/*
 * tests/unit/test_providers.c: the preset database and known replies.
 *
 * The built-in data must load and hold every provider the issue names;
 * lookups by id, alias, region, domain and MX suffix; malformed text gives
 * "origin:line: what" and leaves the database alone; files in later
 * directories replace presets; and every reply of providers.md section 2,
 * as the server sends it, is matched to its verdict.  No test here sends
 * a DNS query: sk_dns_mx is only given arguments it refuses up front.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtpkit/dns.h"
#include "smtpkit/error.h"
#include "smtpkit/providers.h"
#include "smtpkit/reply.h"

static int
setup_db(void **state)
{
	struct sk_error err;
	struct sk_providers *db;

	db = sk_providers_load(NULL, &err);
	if (db == NULL) {
		fprintf(stderr, "builtin: %s\n", err.message);
		return -1;
	}
	*state = db;
	return 0;
}

static int
teardown_db(void **state)
{
	sk_providers_free(*state);
	return 0;
}

static const struct sk_provider *
must_find(const struct sk_providers *db, const char *id)
{
	const struct sk_provider *p = sk_providers_find(db, id, NULL);

	if (p == NULL)
		fail_msg("no provider \"%s\"", id);
	return p;
}

/* ---- the built-in data ---- */

static void
test_builtin_has_every_provider(void **state)
{
	const struct sk_providers *db = *state;
	static const char *const ids[] = {
		"qq", "exmail", "163", "126", "yeah", "sina", "sohu", "aliyun",
		"alibaba", "directmail", "sendgrid", "ses", "mailgun",
		"postmark", "brevo", "gmail", "office365", "outlook", "yahoo",
		"icloud", "zoho", "fastmail", "gmx", "mailru", "yandex"
	};
	static const struct {
		const char *alias, *id;
	} aliases[] = {
		{ "hotmail", "outlook" }, { "live", "outlook" },
		{ "msn", "outlook" }, { "QQ", "qq" }, { "foxmail", "qq" },
		{ "netease", "163" }, { "tencent-exmail", "exmail" },
		{ "alimail", "aliyun" }, { "aliyun-dm", "directmail" },
		{ "amazon-ses", "ses" }, { "google", "gmail" },
		{ "workspace", "gmail" }, { "m365", "office365" },
		{ "microsoft365", "office365" }, { "sendinblue", "brevo" },
		{ "mail.ru", "mailru" }, { "zohomail", "zoho" },
		{ "apple", "icloud" }
	};
	const struct sk_provider *p;
	size_t i;

	assert_int_equal(sk_providers_count(db), sizeof(ids) / sizeof(ids[0]));
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		p = must_find(db, ids[i]);
		assert_string_equal(p->id, ids[i]);
		assert_string_equal(p->origin, "builtin");
	}
	for (i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
		p = must_find(db, aliases[i].alias);
		assert_string_equal(p->id, aliases[i].id);
	}
	assert_null(sk_providers_find(db, "nosuchmail", NULL));
	assert_null(sk_providers_find(db, "", NULL));
	assert_null(sk_providers_find(db, ":eu", NULL));
	assert_null(sk_providers_find(NULL, "qq", NULL));
}

/* What every preset must say, and the port rules of providers.md. */
static void
test_builtin_is_complete(void **state)
{
	const struct sk_providers *db = *state;
	const struct sk_provider *p;
	const struct sk_reply_rule *r;
	size_t i, j;
	unsigned port;
	bool rec;

	for (i = 0; i < sk_providers_count(db); i++) {
		p = sk_providers_at(db, i);
		assert_non_null(p->name);
		assert_non_null(p->name_zh);
		assert_non_null(p->host);
		assert_non_null(p->credential_help);
		assert_non_null(p->credential_help_zh);
		assert_non_null(p->help_url);
		assert_int_equal(strncmp(p->help_url, "https://", 8), 0);
		assert_non_null(p->note);
		assert_non_null(p->note_zh);
		assert_true(p->auth != 0);
		assert_true(p->nports > 0);
		rec = false;
		for (j = 0; j < p->nports; j++) {
			port = p->ports[j].port;
			if (port == 587)
				assert_int_equal(p->ports[j].mode,
				    SK_TLS_MODE_STARTTLS);
			if (port == 465 || port == 994 || port == 2465)
				assert_int_equal(p->ports[j].mode,
				    SK_TLS_MODE_IMPLICIT);
			rec |= port == p->recommended;
		}
		assert_true(rec);
		/* The recommended port never sends a password in clear. */
		for (j = 0; j < p->nports; j++)
			if (p->ports[j].port == p->recommended)
				assert_int_not_equal(p->ports[j].mode,
				    SK_TLS_MODE_NONE);
	}
	assert_null(sk_providers_at(db, sk_providers_count(db)));

	for (i = 0; i < sk_providers_rule_count(db); i++) {
		r = sk_providers_rule_at(db, i);
		assert_true(sk_providers_verdict_known(r->verdict));
		assert_non_null(r->summary);
		assert_non_null(r->summary_zh);
		assert_true(r->nfix > 0);
		/* Each step in both languages. */
		assert_int_equal(r->nfix, r->nfix_zh);
		/* A provider rule names providers that exist. */
		if (r->provider != NULL) {
			char ids[128], *tok, *save = NULL;

			assert_true(strlen(r->provider) < sizeof(ids));
			memcpy(ids, r->provider, strlen(r->provider) + 1);
			for (tok = strtok_r(ids, " ", &save); tok != NULL;
			    tok = strtok_r(NULL, " ", &save)) {
				p = must_find(db, tok);
				assert_true(sk_reply_rule_applies(r, p));
			}
		}
	}
	assert_null(sk_providers_rule_at(db, sk_providers_rule_count(db)));
}

static void
test_builtin_facts(void **state)
{
	const struct sk_providers *db = *state;
	const struct sk_provider *p;

	p = must_find(db, "qq");
	assert_string_equal(p->host, "smtp.qq.com");
	assert_int_equal(p->recommended, 465);
	assert_int_equal(p->credential, SK_CRED_AUTH_CODE);
	assert_int_equal(p->sender, SK_SENDER_LOGIN);
	assert_non_null(strstr(p->credential_help_zh, "授权码"));
	assert_non_null(strstr(p->credential_help_zh, "开启"));

	p = must_find(db, "sendgrid");
	assert_int_equal(p->username, SK_USER_APIKEY);
	assert_int_equal(p->credential, SK_CRED_API_KEY);
	assert_int_equal(p->nports, 4);

	p = must_find(db, "outlook");
	assert_string_equal(p->host, "smtp-mail.outlook.com");
	assert_int_equal(p->credential, SK_CRED_OAUTH2);
	assert_true(p->auth & SK_AUTH_BIT(SK_AUTH_XOAUTH2));

	p = must_find(db, "postmark");
	assert_int_equal(p->nports, 3);
	for (size_t i = 0; i < p->nports; i++)
		assert_int_not_equal(p->ports[i].port, 465);

	p = must_find(db, "163");
	assert_int_equal(p->ports[1].port, 994);
	assert_int_equal(p->ports[1].mode, SK_TLS_MODE_IMPLICIT);

	p = must_find(db, "directmail");
	assert_int_equal(p->ports[1].port, 80);
	assert_int_equal(p->ports[1].mode, SK_TLS_MODE_STARTTLS);

	assert_string_equal(sk_credential_name(SK_CRED_AUTH_CODE),
	    "authorization-code");
	assert_string_equal(sk_username_rule_name(SK_USER_APIKEY), "apikey");
	assert_string_equal(sk_sender_rule_name(SK_SENDER_LOGIN), "login");
	assert_string_equal(sk_credential_name(SK_CRED__COUNT), "unknown");
}

/* ---- lookups ---- */

static void
test_find_region(void **state)
{
	const struct sk_providers *db = *state;
	const struct sk_provider_region *r;
	const struct sk_provider *p;
	static const char *const ses[] = {
		"us-east-1", "us-east-2", "us-west-2", "eu-west-1",
		"eu-central-1", "ap-southeast-1", "ap-northeast-1", "ap-south-1"
	};
	char id[64], host[128];
	size_t i;

	for (i = 0; i < sizeof(ses) / sizeof(ses[0]); i++) {
		snprintf(id, sizeof(id), "ses:%s", ses[i]);
		snprintf(host, sizeof(host), "email-smtp.%s.amazonaws.com",
		    ses[i]);
		p = sk_providers_find(db, id, &r);
		assert_non_null(p);
		assert_string_equal(p->id, "ses");
		assert_non_null(r);
		assert_string_equal(r->host, host);
	}
	p = sk_providers_find(db, "AMAZON-SES:EU-WEST-1", &r);
	assert_non_null(p);
	assert_string_equal(r->name, "eu-west-1");

	p = sk_providers_find(db, "ses", &r);
	assert_non_null(p);
	assert_null(r);
	assert_string_equal(p->host, "email-smtp.us-east-1.amazonaws.com");

	assert_null(sk_providers_find(db, "ses:mars-north-1", &r));
	assert_null(r);
	assert_null(sk_providers_find(db, "ses:", &r));
	assert_null(sk_providers_find(db, "qq:eu", &r));

	p = sk_providers_find(db, "directmail:ap-southeast-1", &r);
	assert_non_null(p);
	assert_string_equal(r->host, "smtpdm-ap-southeast-1.aliyuncs.com");
	p = sk_providers_find(db, "mailgun:eu", &r);
	assert_string_equal(p->id, "mailgun");
	assert_string_equal(r->host, "smtp.eu.mailgun.org");
	p = sk_providers_find(db, "zoho:pro-eu", &r);
	assert_string_equal(p->id, "zoho");
	assert_string_equal(r->host, "smtppro.zoho.eu");
	p = sk_providers_find(db, "zoho:au", NULL);
	assert_non_null(p);
}

static void
test_by_domain(void **state)
{
	const struct sk_providers *db = *state;
	static const struct {
		const char *addr, *id;
	} cases[] = {
		{ "me@qq.com", "qq" }, { "me@foxmail.com", "qq" },
		{ "Someone@QQ.COM", "qq" }, { "163.com", "163" },
		{ "x@126.com", "126" }, { "x@yeah.net", "yeah" },
		{ "x@gmail.com", "gmail" }, { "x@googlemail.com", "gmail" },
		{ "x@outlook.com", "outlook" }, { "x@hotmail.com", "outlook" },
		{ "x@live.com", "outlook" }, { "x@msn.com", "outlook" },
		{ "x@icloud.com", "icloud" }, { "x@me.com", "icloud" },
		{ "x@mac.com", "icloud" }, { "x@yahoo.com", "yahoo" },
		{ "<x@zoho.com>", "zoho" }, { "x@zohomail.eu", "zoho" },
		{ "x@gmx.de", "gmx" }, { "x@mail.ru", "mailru" },
		{ "x@yandex.ru", "yandex" }, { "x@fastmail.com", "fastmail" },
		{ "x@qq.com.", "qq" },
	};
	const struct sk_provider *p;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = sk_providers_by_domain(db, cases[i].addr);
		if (p == NULL)
			fail_msg("%s: no provider", cases[i].addr);
		assert_string_equal(p->id, cases[i].id);
	}
	assert_null(sk_providers_by_domain(db, "x@example.com"));
	assert_null(sk_providers_by_domain(db, "x@mail.qq.com"));
	assert_null(sk_providers_by_domain(db, "x@"));
	assert_null(sk_providers_by_domain(db, ""));
	assert_null(sk_providers_by_domain(db, NULL));

	p = must_find(db, "zoho");
	assert_string_equal(sk_provider_region_by_domain(p, "a@zoho.eu")->host,
	    "smtp.zoho.eu");
	assert_string_equal(sk_provider_region_by_domain(p,
	    "a@zohomail.com.au")->name, "au");
	assert_null(sk_provider_region_by_domain(p, "a@zoho.com"));
}

static void
test_by_mx(void **state)
{
	const struct sk_providers *db = *state;
	static const struct {
		const char *mx, *id;
	} cases[] = {
		{ "mxbiz1.qq.com.", "exmail" }, { "mxbiz2.qq.com", "exmail" },
		{ "MXBIZ1.QQ.COM", "exmail" }, { "mx.exmail.qq.com", "exmail" },
		{ "mxw.mxhichina.com", "aliyun" },
		{ "mxn.mxhichina.com.", "aliyun" },
		{ "mx1.qiye.aliyun.com", "aliyun" },
		{ "aspmx.l.google.com", "gmail" },
		{ "alt1.aspmx.l.google.com.", "gmail" },
		{ "smtp.google.com", "gmail" },
		{ "aspmx2.googlemail.com", "gmail" },
		{ "example-com.mail.protection.outlook.com", "office365" },
		{ "hotmail-com.olc.protection.outlook.com", "outlook" },
		{ "mx.zoho.com", "zoho" }, { "mx2.zoho.eu", "zoho" },
		{ "mx.zoho.com.au", "zoho" }, { "mx.zoho.in", "zoho" },
		{ "in1-smtp.messagingengine.com", "fastmail" },
		{ "mx.yandex.net", "yandex" }, { "emx.mail.ru", "mailru" },
		{ "mx01.mail.icloud.com", "icloud" },
	};
	const struct sk_provider *p;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = sk_providers_by_mx(db, cases[i].mx);
		if (p == NULL)
			fail_msg("%s: no provider", cases[i].mx);
		assert_string_equal(p->id, cases[i].id);
	}
	/* Suffixes match whole labels only. */
	assert_null(sk_providers_by_mx(db, "notgoogle.com"));
	assert_null(sk_providers_by_mx(db, "google.com.example.net"));
	assert_null(sk_providers_by_mx(db, "mx1.qq.com"));
	assert_null(sk_providers_by_mx(db, "mail.example.com"));
	assert_null(sk_providers_by_mx(db, "."));
	assert_null(sk_providers_by_mx(db, ""));

	p = must_find(db, "zoho");
	assert_string_equal(sk_provider_region_by_mx(p, "mx.zoho.eu")->name,
	    "pro-eu");
	assert_string_equal(sk_provider_region_by_mx(p, "mx2.zoho.com.")->host,
	    "smtppro.zoho.com");
	assert_string_equal(sk_provider_region_by_mx(p,
	    "mx3.zoho.com.au")->name, "pro-au");
	assert_null(sk_provider_region_by_mx(must_find(db, "gmail"),
	    "aspmx.l.google.com"));
}

/* ---- the parser ---- */

static const char good_provider[] =
    "[provider test]\n"
    "name = Test Mail\n"
    "host = smtp.example.test\n"
    "port = 465 implicit\n";

/* Parse text into a fresh database; expect an error starting with want. */
static void
expect_parse_error(const char *text, const char *want)
{
	struct sk_providers *db = sk_providers_new();
	struct sk_error err;

	assert_non_null(db);
	assert_int_equal(sk_providers_parse(db, text, strlen(text), "t.ini",
	    &err), -1);
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	if (strncmp(err.message, want, strlen(want)) != 0)
		fail_msg("wanted \"%s...\", got \"%s\"", want, err.message);
	/* All or nothing. */
	assert_int_equal(sk_providers_count(db), 0);
	assert_int_equal(sk_providers_rule_count(db), 0);
	sk_providers_free(db);
}

static void
test_parse_errors(void **state)
{
	char buf[2048];

	expect_parse_error("[provider a]\nname = A\nhots = x.test\n",
	    "t.ini:3: unknown key \"hots\"");
	expect_parse_error("[provider a]\nname = A\nhost = x.test\n"
	    "port = 99999 implicit\n", "t.ini:4: port: \"99999\" is not a port");
	expect_parse_error("[provider a]\nname = A\nhost = x.test\n"
	    "port = 465 ssl3\n", "t.ini:4: port 465: unknown TLS mode");
	expect_parse_error("[provider a]\nname = A\nhost = x.test\n"
	    "port = 465\n", "t.ini:4: port: expected");
	expect_parse_error("[provider a]\nname = A\nhost = x.test\n"
	    "port = 465 implicit\nport = 465 starttls\n",
	    "t.ini:5: port 465 given twice");
	expect_parse_error("; c\n\n[provider a]\nname = A\nport = 465 implicit\n"
	    "[reply r]\nmatch = x\nverdict = OK\nsummary = s\n",
	    "t.ini:3: [provider a]: missing host");
	expect_parse_error("[reply r]\nmatch = x\nverdict = AUTH_WRONG\n",
	    "t.ini:3: verdict: unknown verdict code \"AUTH_WRONG\"");
	expect_parse_error("[reply r]\nmatch = x\nsummary = s\n",
	    "t.ini:1: [reply r]: missing verdict");
	expect_parse_error("[reply r]\nverdict = OK\nsummary = s\n",
	    "t.ini:1: [reply r]: missing match");
	expect_parse_error("[reply r]\nmatch = x\ncode = 700\n",
	    "t.ini:3: code: \"700\" is not a reply code");
	expect_parse_error("[reply r]\nenhanced = 5.7\n",
	    "t.ini:2: enhanced: \"5.7\" is not");
	expect_parse_error("name = x\n", "t.ini:1: \"name\" outside a section");
	expect_parse_error("[account a]\nhost = x\n",
	    "t.ini:1: unknown section [account a]");
	expect_parse_error("[provider]\nhost = x\n",
	    "t.ini:1: unknown section [provider]");
	expect_parse_error("[provider a b]\nhost = x\n",
	    "t.ini:1: unknown section");
	expect_parse_error("[provider a/b]\nhost = x\n", "t.ini:1: [provider]: "
	    "\"a/b\" is not an id");
	expect_parse_error("[provider a]\nname = A\nhost = x.test\n"
	    "port = 465 implicit\n[provider A]\n",
	    "t.ini:5: empty section");
	expect_parse_error("[provider a]\nname = A\nhost = x.test\n"
	    "port = 465 implicit\n[provider A]\nname = B\n",
	    "t.ini:5: [provider A] given twice (first on line 1)");
	expect_parse_error("[provider a]\nname = A\nthis line has no equals\n",
	    "t.ini:3: expected");
	expect_parse_error("[provider a\nname = A\n", "t.ini:1: expected");
	expect_parse_error("[provider a]\nname = A\nname = B\n",
	    "t.ini:3: name given twice");
	expect_parse_error("[provider a]\nname = A\nhost = x.test\n"
	    "port = 465 implicit\nrecommended = 587\n",
	    "t.ini:1: [provider a]: recommended port 587 is not one");
	expect_parse_error("[provider a]\nname = A\nhost = not a host\n",
	    "t.ini:3: host: \"not a host\" is not a host name");
	expect_parse_error("[provider a]\nname = A\nhost = -.\n",
	    "t.ini:3: host:");
	expect_parse_error("[provider a]\nauth = PLAIN GSSAPI\n",
	    "t.ini:2: auth: unknown mechanism \"GSSAPI\"");
	expect_parse_error("[provider a]\ncredential = magic\n",
	    "t.ini:2: credential: unknown value \"magic\" (password, "
	    "authorization-code, app-password, api-key, oauth2)");
	expect_parse_error("[provider a]\nregion_domains = eu x.eu\n",
	    "t.ini:2: region_domains: unknown region \"eu\"");
	expect_parse_error("[provider a]\nregion = eu\n",
	    "t.ini:2: region: expected");
	expect_parse_error("[provider a]\nname = A\xff\n",
	    "t.ini:2: name: not valid UTF-8");
	expect_parse_error("[provider a]\nname = A\x01 B\n",
	    "t.ini:2: name: control character");
	expect_parse_error("[provider a]\n", "t.ini:1: empty section");

	/* A NUL inside the text: not a string terminator. */
	{
		static const char nul[] = "[provider a]\nname = A\0B\n";
		struct sk_providers *db = sk_providers_new();
		struct sk_error err;

		assert_int_equal(sk_providers_parse(db, nul, sizeof(nul) - 1,
		    "t.ini", &err), -1);
		assert_string_equal(err.message, "t.ini:2: NUL character");
		sk_providers_free(db);
	}

	/*
	 * Line numbers are physical lines, also after a line longer than
	 * inih's buffer (which the reader hands over in pieces).
	 */
	snprintf(buf, sizeof(buf), "[provider a]\nname = A\nnote = %0500d\n"
	    "\nhost = x.test\nport = 25 bogus\n", 7);
	expect_parse_error(buf, "t.ini:6: port 25: unknown TLS mode");
	snprintf(buf, sizeof(buf), "[provider a]\nname = A\nnote = %0500d\n"
	    "garbage\n", 7);
	expect_parse_error(buf, "t.ini:4: expected");
	/* A long section name is refused, not cut. */
	expect_parse_error("[provider abcdefghijabcdefghijabcdefghijabcdefghij"
	    "abcdefghij]\n", "t.ini:1: section name longer than 49");
	/* A long line that cannot be cut between two words. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "[provider a]\nnote =", 19);
	for (size_t i = 19; i < 19 + 600; i += 2)
		memcpy(buf + i, " x", 2);
	expect_parse_error(buf, "t.ini:2: line too long");
}

static void
test_parse_values(void **state)
{
	struct sk_providers *db = sk_providers_new();
	const struct sk_provider *p;
	const struct sk_reply_rule *r;
	struct sk_error err;
	char text[8192], note[1500];
	size_t i, off;

	/* A note of 1,400 octets, Chinese and ASCII, on one line. */
	off = 0;
	for (i = 0; off + 20 < sizeof(note) - 100; i++)
		off += (size_t)snprintf(note + off, sizeof(note) - off,
		    i % 2 ? "授权码;%zu " : "word%zu,", i);
	while (off > 0 && note[off - 1] == ' ')
		note[--off] = '\0';
	snprintf(text, sizeof(text),
	    "\xef\xbb\xbf; a comment\n"
	    "[provider Test]\n"
	    "name = Test Mail ; an inline comment\n"
	    "name-zh = 测试\n"
	    "Aliases = t1, t2\n"
	    "aliases = t3\n"
	    "host = smtp.example.test.\n"
	    "port = 465 implicit\n"
	    "port = 2525 none\n"
	    "recommended = 465\n"
	    "auth = plain xoauth2\n"
	    "credential = app-password\n"
	    "username = token\n"
	    "sender = verified\n"
	    "note = %s\n"
	    "note_zh = first\n"
	    "  second\n"
	    "\tthird\n"
	    "region = eu smtp.eu.example.test\n"
	    "region_domains = eu example.eu\n"
	    "\n"
	    "[reply r1]\n"
	    "provider = test, other\n"
	    "code = 535\n"
	    "enhanced = 5.7.8\n"
	    "match = bad\n"
	    "match = credentials\n"
	    "verdict = AUTH_CREDENTIALS\n"
	    "summary = s\n"
	    "fix = one\n"
	    "fix = two\n"
	    "  and more\n"
	    "fix_zh = 一\n", note);
	assert_int_equal(sk_providers_parse(db, text, strlen(text), "v.ini",
	    &err), 0);
	assert_int_equal(err.kind, SK_ERR_NONE);
	assert_int_equal(sk_providers_count(db), 1);
	p = sk_providers_at(db, 0);
	assert_string_equal(p->id, "Test");
	assert_string_equal(p->name, "Test Mail");
	assert_string_equal(p->name_zh, "测试");
	assert_int_equal(p->naliases, 3);
	assert_string_equal(p->aliases[1], "t2");
	assert_string_equal(p->host, "smtp.example.test");
	assert_int_equal(p->nports, 2);
	assert_int_equal(p->ports[1].mode, SK_TLS_MODE_NONE);
	assert_int_equal(p->recommended, 465);
	assert_int_equal(p->auth, SK_AUTH_BIT(SK_AUTH_PLAIN) |
	    SK_AUTH_BIT(SK_AUTH_XOAUTH2));
	assert_int_equal(p->credential, SK_CRED_APP_PASSWORD);
	assert_int_equal(p->username, SK_USER_TOKEN);
	assert_int_equal(p->sender, SK_SENDER_VERIFIED);
	assert_string_equal(p->note, note);
	assert_string_equal(p->note_zh, "first second third");
	assert_string_equal(p->origin, "v.ini");
	assert_int_equal(p->nregions, 1);
	assert_string_equal(p->regions[0].domains[0], "example.eu");
	assert_ptr_equal(sk_providers_find(db, "t3", NULL), p);
	assert_ptr_equal(sk_providers_find(db, "test:EU", NULL), p);
	assert_ptr_equal(sk_providers_by_domain(db, "a@example.eu"), p);

	r = sk_providers_rule_at(db, 0);
	assert_string_equal(r->provider, "test other");
	assert_true(sk_reply_rule_applies(r, p));
	assert_int_equal(r->code, 535);
	assert_string_equal(r->enhanced, "5.7.8");
	assert_int_equal(r->nmatch, 2);
	assert_int_equal(r->nfix, 2);
	assert_string_equal(r->fix[1], "two and more");
	assert_int_equal(r->nfix_zh, 1);
	sk_providers_free(db);

	/* Empty text, and comments only, are fine. */
	db = sk_providers_new();
	assert_int_equal(sk_providers_parse(db, "", 0, "e.ini", &err), 0);
	assert_int_equal(sk_providers_parse(db, NULL, 0, "e.ini", &err), 0);
	assert_int_equal(sk_providers_parse(db, "; x\n# y\n\n", 9, "e.ini",
	    &err), 0);
	assert_int_equal(sk_providers_parse(db, "\r\n", 2, NULL, NULL), 0);
	assert_int_equal(sk_providers_count(db), 0);
	/* A byte order mark before the first section, CRLF line ends. */
	{
		static const char bom[] = "\xef\xbb\xbf[provider b]\r\n"
		    "name = B\r\nhost = b.test\r\nport = 25 none\r\n";

		assert_int_equal(sk_providers_parse(db, bom, sizeof(bom) - 1,
		    "b.ini", &err), 0);
	}
	assert_string_equal(sk_providers_at(db, 0)->host, "b.test");
	assert_int_equal(sk_providers_parse(NULL, "", 0, "x", &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	sk_providers_free(db);
}

/* A later text replaces a preset of the same id in place, whole. */
static void
test_parse_replaces(void **state)
{
	struct sk_providers *db = sk_providers_new();
	const struct sk_provider *p;
	struct sk_error err;
	static const char second[] =
	    "[provider TEST]\n"
	    "name = Replaced\n"
	    "host = other.example.test\n"
	    "port = 587 starttls\n"
	    "[provider new]\n"
	    "name = New\n"
	    "host = new.example.test\n"
	    "port = 25 none\n";

	assert_int_equal(sk_providers_parse(db, good_provider,
	    strlen(good_provider), "a.ini", &err), 0);
	assert_int_equal(sk_providers_parse(db, second, strlen(second),
	    "b.ini", &err), 0);
	assert_int_equal(sk_providers_count(db), 2);
	p = sk_providers_at(db, 0);
	assert_string_equal(p->id, "TEST");
	assert_string_equal(p->host, "other.example.test");
	assert_int_equal(p->nports, 1);
	assert_int_equal(p->recommended, 587);
	assert_string_equal(p->origin, "b.ini");
	assert_string_equal(sk_providers_at(db, 1)->id, "new");

	/* A failing text leaves it all as it was. */
	assert_int_equal(sk_providers_parse(db, "[provider new]\nname = X\n",
	    24, "c.ini", &err), -1);
	assert_string_equal(sk_providers_find(db, "new", NULL)->name, "New");
	sk_providers_free(db);
}

/* ---- loading from directories ---- */

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
remove_tree(const char *dir, const char *const *names)
{
	char path[512];

	for (; *names != NULL; names++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *names);
		(void)unlink(path);
		(void)rmdir(path);
	}
	(void)rmdir(dir);
}

static void
test_load_dirs(void **state)
{
	char sys[] = "/tmp/sk-prov-sys-XXXXXX", user[] = "/tmp/sk-prov-XXXXXX";
	static const char *const names[] = {
		"10-qq.ini", "20-qq.ini", "README", ".hidden.ini", "dir.ini",
		"30-bad.ini", "15-rule.ini", NULL
	};
	const char *dirs[4];
	const struct sk_provider *p;
	const struct sk_reply_rule *r;
	struct sk_providers *db;
	struct sk_error err;
	size_t builtin, rules;
	char path[512], want[600];

	assert_non_null(mkdtemp(sys));
	assert_non_null(mkdtemp(user));
	assert_non_null(db = sk_providers_load(NULL, &err));
	builtin = sk_providers_count(db);
	rules = sk_providers_rule_count(db);
	sk_providers_free(db);

	/* The system directory, then the user's: sorted, later wins. */
	write_file(sys, "10-qq.ini", "[provider qq]\nname = System QQ\n"
	    "host = smtp.system.test\nport = 465 implicit\n");
	write_file(user, "20-qq.ini", "[provider qq]\nname = User QQ\n"
	    "host = smtp.user.test\nport = 587 starttls\n");
	write_file(user, "10-qq.ini", "[provider qq]\nname = Earlier\n"
	    "host = smtp.earlier.test\nport = 25 none\n");
	write_file(user, "15-rule.ini", "[reply qq-auth-code]\nmatch = nope\n"
	    "verdict = OK\nsummary = replaced\n[reply mine]\ncode = 550\n"
	    "match = my words\nverdict = SERVER_PERMANENT\nsummary = s\n");
	write_file(user, "README", "not ini\n");
	write_file(user, ".hidden.ini", "garbage\n");
	snprintf(path, sizeof(path), "%s/dir.ini", user);
	assert_int_equal(mkdir(path, 0700), 0);

	dirs[0] = sys;
	dirs[1] = "/nonexistent/smtpkit/providers.d";
	dirs[2] = user;
	dirs[3] = NULL;
	assert_non_null(db = sk_providers_load(dirs, &err));
	assert_int_equal(sk_providers_count(db), builtin);
	assert_int_equal(sk_providers_rule_count(db), rules + 1);
	p = must_find(db, "qq");
	assert_string_equal(p->name, "User QQ");
	assert_string_equal(p->host, "smtp.user.test");
	snprintf(want, sizeof(want), "%s/20-qq.ini", user);
	assert_string_equal(p->origin, want);
	/* Still first in the list, where the builtin one was. */
	assert_ptr_equal(sk_providers_at(db, 0), p);
	/* Its aliases went with the builtin preset. */
	assert_null(sk_providers_find(db, "foxmail", NULL));

	r = sk_providers_match_reply(db, NULL, 550, "", "these are my words");
	assert_non_null(r);
	assert_string_equal(r->id, "mine");
	r = sk_providers_match_reply(db, p, 535, "",
	    "Login Fail. Please enter your authorization code to login.");
	assert_null(r);
	sk_providers_free(db);

	/* A malformed user file stops the load and names itself. */
	write_file(user, "30-bad.ini", "[provider x]\nname = X\nport = 1 tls\n"
	    "host = x.test\nfrobnicate = yes\n");
	assert_null(sk_providers_load(dirs, &err));
	assert_int_equal(err.kind, SK_ERR_CONFIG);
	snprintf(want, sizeof(want), "%s/30-bad.ini:5: unknown key "
	    "\"frobnicate\" in a [provider] section", user);
	assert_string_equal(err.message, want);

	/* An unreadable file is a local error with errno. */
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/30-bad.ini", user);
		assert_int_equal(chmod(path, 0), 0);
		assert_null(sk_providers_load(dirs, &err));
		assert_int_equal(err.kind, SK_ERR_LOCAL);
		assert_int_equal(err.sys_errno, EACCES);
	}

	remove_tree(sys, names);
	remove_tree(user, names);
}

static void
test_default_dirs(void **state)
{
	const char *dirs[3];
	char buf[256], *old_xdg, *old_home;

	old_xdg = getenv("XDG_CONFIG_HOME");
	old_xdg = old_xdg != NULL ? strdup(old_xdg) : NULL;
	old_home = getenv("HOME");
	old_home = old_home != NULL ? strdup(old_home) : NULL;

	setenv("XDG_CONFIG_HOME", "/x/conf", 1);
	sk_providers_default_dirs(dirs, buf, sizeof(buf));
	assert_string_equal(dirs[0], "/etc/smtpkit/providers.d");
	assert_string_equal(dirs[1], "/x/conf/smtpkit/providers.d");
	assert_null(dirs[2]);

	/* A relative XDG_CONFIG_HOME is ignored (XDG Base Directory). */
	setenv("XDG_CONFIG_HOME", "rel", 1);
	setenv("HOME", "/home/u", 1);
	sk_providers_default_dirs(dirs, buf, sizeof(buf));
	assert_string_equal(dirs[1], "/home/u/.config/smtpkit/providers.d");

	/* Does not fit: left out, never cut. */
	sk_providers_default_dirs(dirs, buf, 10);
	assert_string_equal(dirs[0], SK_PROVIDERS_SYSTEM_DIR);
	assert_null(dirs[1]);

	if (old_xdg != NULL)
		setenv("XDG_CONFIG_HOME", old_xdg, 1);
	else
		unsetenv("XDG_CONFIG_HOME");
	if (old_home != NULL)
		setenv("HOME", old_home, 1);
	else
		unsetenv("HOME");
	free(old_xdg);
	free(old_home);
}

/* ---- known replies ---- */

struct reply_case {
	const char *provider;	/* whose rule it must be; NULL: generic */
	const char *reply;	/* as the server sends it, CRLF-terminated */
	const char *verdict;
};

/*
 * Every reply of providers.md section 2, verbatim (with its "..." where
 * the document elides), as server lines.
 */
static const struct reply_case replies[] = {
	{ "qq", "535 Login Fail. Please enter your authorization code to "
	    "login. More information in http://service.mail.qq.com/...\r\n",
	    "AUTH_APP_PASSWORD_REQUIRED" },
	{ "qq", "501 mail from address must be same as authorization user\r\n",
	    "SENDER_MISMATCH" },
	{ "qq", "550 The \"From\" header is missing or invalid\r\n",
	    "SENDER_MISMATCH" },
	{ "163", "535 Error: authentication failed\r\n",
	    "AUTH_APP_PASSWORD_REQUIRED" },
	{ "163", "550 User has no permission\r\n", "AUTH_SERVICE_DISABLED" },
	{ "163", "553 Mail from must equal authorized user\r\n",
	    "SENDER_MISMATCH" },
	{ "163", "554 DT:SPM 163 smtpN,...\r\n", "MESSAGE_REJECTED_SPAM" },
	{ "163", "451 DT:SPM\r\n", "MESSAGE_REJECTED_SPAM" },
	{ "163", "451 MI:SFQ\r\n", "RATE_LIMITED" },
	{ "163", "421 HL:ICC\r\n", "RATE_LIMITED" },
	{ "163", "421 HL:IFC\r\n", "RATE_LIMITED" },
	{ "gmail", "534-5.7.9 Application-specific password required ... "
	    "InvalidSecondFactor\r\n", "AUTH_APP_PASSWORD_REQUIRED" },
	{ "gmail", "535-5.7.8 Username and Password not accepted ... "
	    "BadCredentials\r\n", "AUTH_CREDENTIALS" },
	{ "gmail", "534-5.7.14 <https://accounts.google.com/...> Please log "
	    "in via your web browser\r\n", "AUTH_APP_PASSWORD_REQUIRED" },
	{ NULL, "530 5.7.0 Must issue a STARTTLS command first\r\n",
	    "STARTTLS_UNAVAILABLE" },
	{ "gmail", "550 5.4.5 Daily user sending limit exceeded\r\n",
	    "QUOTA_EXCEEDED" },
	{ "office365", "535 5.7.139 Authentication unsuccessful, "
	    "SmtpClientAuthentication is disabled for the Tenant...\r\n",
	    "AUTH_SERVICE_DISABLED" },
	{ "office365", "535 5.7.139 ... disabled for the Mailbox\r\n",
	    "AUTH_SERVICE_DISABLED" },
	{ "outlook", "535 5.7.139 Authentication unsuccessful, basic "
	    "authentication is disabled.\r\n", "AUTH_BASIC_DISABLED" },
	{ "office365", "535 5.7.139 ... security defaults policy\r\n",
	    "AUTH_BASIC_DISABLED" },
	{ "office365", "535 5.7.3 Authentication unsuccessful\r\n",
	    "AUTH_CREDENTIALS" },
	{ "office365", "530 5.7.57 Client not authenticated to send mail\r\n",
	    "RELAY_DENIED" },
	{ "office365", "550 5.7.60 SMTP; Client does not have permissions to "
	    "send as this sender\r\n", "SENDER_MISMATCH" },
	{ "outlook", "554 5.2.0 STOREDRV.Submission.Exception:"
	    "OutboundSpamException\r\n", "MESSAGE_REJECTED_SPAM" },
	{ "office365", "421 4.7.66 TLS 1.0 and 1.1 are not supported\r\n",
	    "TLS_VERSION" },
	{ "yahoo", "535 5.7.0 (#AUTH005) Too many bad auth attempts.\r\n",
	    "AUTH_TOO_MANY_ATTEMPTS" },
	{ "yahoo", "535 5.7.0 (#MBR1212) Incorrect username or password.\r\n",
	    "AUTH_APP_PASSWORD_REQUIRED" },
	{ "yahoo", "550 Request failed; Mailbox unavailable\r\n",
	    "SENDER_MISMATCH" },
	{ "zoho", "553 ... Relaying disallowed as <addr>\r\n",
	    "SENDER_MISMATCH" },
	{ "zoho", "554 5.1.8 Sender Address Blocked\r\n",
	    "MESSAGE_REJECTED_SPAM" },
	{ "sendgrid", "535 Authentication failed: Bad username / password\r\n",
	    "AUTH_CREDENTIALS" },
	{ "sendgrid", "550 The from address does not match a verified Sender "
	    "Identity\r\n", "SENDER_UNVERIFIED" },
	{ "ses", "554 Message rejected: Email address is not verified. The "
	    "following identities failed the check in region ...\r\n",
	    "SENDER_UNVERIFIED" },
	{ "mailgun", "421 Sandbox subdomains are for test purposes only...\r\n",
	    "RECIPIENT_REJECTED" },
	{ "mailgun", "554 Sandbox subdomains are for test purposes only...\r\n",
	    "RECIPIENT_REJECTED" },
	{ "mailru", "535 5.7.0 ... Application password is REQUIRED\r\n",
	    "AUTH_APP_PASSWORD_REQUIRED" },
	{ "yandex", "530 5.7.7 Email sending without SSL/TLS encryption is not "
	    "allowed\r\n", "STARTTLS_UNAVAILABLE" },
	{ "yandex", "553 5.7.1 Sender address rejected: not owned by auth "
	    "user\r\n", "SENDER_MISMATCH" },
	{ "gmail", "550-5.7.26 ... unauthenticated\r\n",
	    "MESSAGE_REJECTED_SPAM" },
	{ "outlook", "550 5.7.515 Access denied, sending domain ... does not "
	    "meet the required authentication level\r\n",
	    "MESSAGE_REJECTED_SPAM" },
	/* The real multi-line forms, as Gmail sends them. */
	{ "gmail", "534-5.7.9 Application-specific password required. Learn "
	    "more at\r\n534 5.7.9  https://support.google.com/mail/?p="
	    "InvalidSecondFactor d2-20020a05600c\r\n",
	    "AUTH_APP_PASSWORD_REQUIRED" },
	{ "gmail", "535-5.7.8 Username and Password not accepted. For more "
	    "information, go to\r\n535 5.7.8  https://support.google.com/mail/"
	    "?p=BadCredentials a1-20020a\r\n", "AUTH_CREDENTIALS" },
};

/* Parse one server reply as the session would: code, enhanced, text. */
static void
parse_reply(const char *wire, struct sk_reply *out, char *text, size_t cap)
{
	struct sk_reply_parser *rp = malloc(sizeof(*rp));
	char line[1024];
	size_t used, len = strlen(wire);

	/*
	 * providers.md quotes the first line of some multi-line replies
	 * ("534-5.7.9 ..."): sent alone, that line ends the reply.
	 */
	assert_true(len < sizeof(line));
	memcpy(line, wire, len + 1);
	if (line[3] == '-' && strstr(line, "\r\n") == line + len - 2)
		line[3] = ' ';
	assert_non_null(rp);
	sk_reply_parser_init(rp);
	assert_int_equal(sk_reply_parse(rp, line, len, &used, NULL),
	    SK_REPLY_DONE);
	assert_int_equal(used, len);
	*out = rp->reply;
	sk_reply_join(&rp->reply, text, cap);
	free(rp);
}

static void
test_known_replies(void **state)
{
	const struct sk_providers *db = *state;
	const struct sk_provider *own, *other, *prefer[3];
	const struct sk_reply_rule *r;
	struct sk_reply *reply = malloc(sizeof(*reply));
	char text[4096];
	size_t i, k;

	assert_non_null(reply);
	other = must_find(db, "fastmail");	/* has no rules of its own */
	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		parse_reply(replies[i].reply, reply, text, sizeof(text));
		own = replies[i].provider != NULL ?
		    must_find(db, replies[i].provider) : NULL;
		prefer[0] = NULL;
		prefer[1] = own;
		prefer[2] = other;
		for (k = 0; k < 3; k++) {
			r = sk_providers_match_reply(db, prefer[k], reply->code,
			    reply->enhanced, text);
			if (r == NULL)
				fail_msg("%s: no rule", replies[i].reply);
			if (strcmp(r->verdict, replies[i].verdict) != 0)
				fail_msg("%s: rule %s gives %s, wanted %s",
				    replies[i].reply, r->id, r->verdict,
				    replies[i].verdict);
			if (own != NULL && !sk_reply_rule_applies(r, own))
				fail_msg("%s: rule %s is not %s's",
				    replies[i].reply, r->id, own->id);
			if (own == NULL && r->provider != NULL)
				fail_msg("%s: rule %s is not generic",
				    replies[i].reply, r->id);
		}
		/* Without the parsed enhanced code, from the text alone. */
		r = sk_providers_match_reply(db, NULL, reply->code, NULL, text);
		assert_non_null(r);
		assert_string_equal(r->verdict, replies[i].verdict);
	}
	free(reply);
}

static const char *
rule_id(const struct sk_providers *db, const struct sk_provider *prefer,
    int code, const char *enh, const char *text)
{
	const struct sk_reply_rule *r;

	r = sk_providers_match_reply(db, prefer, code, enh, text);
	return r != NULL ? r->id : "(none)";
}

static void
test_reply_variants(void **state)
{
	const struct sk_providers *db = *state;
	const struct sk_reply_rule *r;
	const struct sk_provider *ms = must_find(db, "office365");

	/* 5.7.139: three texts, three rules, verdicts by the words. */
	assert_string_equal(rule_id(db, ms, 535, "5.7.139", "5.7.139 "
	    "Authentication unsuccessful, SmtpClientAuthentication is disabled "
	    "for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more "
	    "information."), "ms-smtp-auth-disabled-tenant");
	assert_string_equal(rule_id(db, ms, 535, "5.7.139", "5.7.139 "
	    "Authentication unsuccessful, basic authentication is disabled."),
	    "ms-basic-auth-disabled");
	assert_string_equal(rule_id(db, ms, 535, "5.7.139", "5.7.139 "
	    "Authentication unsuccessful, user is locked by your "
	    "organization's security defaults policy. Contact your "
	    "administrator."), "ms-security-defaults");
	assert_string_equal(rule_id(db, ms, 535, "5.7.139", "5.7.139 "
	    "Authentication unsuccessful, SmtpClientAuthentication is disabled "
	    "for the Mailbox."), "ms-smtp-auth-disabled-mailbox");
	/* The words of one variant under another code do not count. */
	assert_string_equal(rule_id(db, ms, 535, "5.7.3", "5.7.3 basic "
	    "authentication is disabled"), "(none)");

	/* A plain unrelated 550 matches no provider's rule. */
	r = sk_providers_match_reply(db, NULL, 550, "",
	    "Requested action not taken: mailbox unavailable");
	assert_true(r == NULL || r->provider == NULL);
	r = sk_providers_match_reply(db, must_find(db, "yahoo"), 550, "",
	    "Requested action not taken: mailbox unavailable");
	assert_true(r == NULL || r->provider == NULL);
	assert_null(sk_providers_match_reply(db, NULL, 550, "", "550 no"));
	assert_null(sk_providers_match_reply(db, NULL, 250, "", "2.0.0 OK"));
	assert_null(sk_providers_match_reply(db, NULL, 0, NULL, NULL));
	assert_null(sk_providers_match_reply(NULL, NULL, 550, NULL, "x"));

	/* Generic ones, and Postfix's text is not taken for NetEase's. */
	assert_string_equal(rule_id(db, NULL, 550, "5.1.1", "5.1.1 <a@b>: "
	    "Recipient address rejected: User unknown"), "recipient-unknown");
	assert_string_equal(rule_id(db, NULL, 535, "5.7.8", "5.7.8 Error: "
	    "authentication failed: authentication failure"),
	    "auth-failed-enhanced");
	assert_string_equal(rule_id(db, NULL, 554, "5.7.1", "5.7.1 <a@b>: "
	    "Relay access denied"), "relay-access-denied");
	assert_string_equal(rule_id(db, NULL, 421, "4.7.0", "4.7.0 Try again "
	    "later: rate limit exceeded"), "rate-limit");
	/* The code must fit when the rule has one. */
	assert_string_equal(rule_id(db, NULL, 550, "",
	    "Error: authentication failed"), "(none)");
	/* An enhanced code inside a longer number is not that code. */
	assert_string_equal(rule_id(db, NULL, 550, NULL, "15.1.1 x"),
	    "(none)");
}

/* Rank: the preferred provider's rules, then specificity, then load order. */
static void
test_reply_ranking(void **state)
{
	static const char text[] =
	    "[provider a]\nname = A\nhost = a.test\nport = 465 implicit\n"
	    "[provider b]\nname = B\nhost = b.test\nport = 465 implicit\n"
	    "[reply a-weak]\nprovider = a\nmatch = quota\n"
	    "verdict = QUOTA_EXCEEDED\nsummary = a\n"
	    "[reply generic-strong]\ncode = 452\nenhanced = 4.5.3\n"
	    "match = quota\nmatch = exceeded\nverdict = RATE_LIMITED\n"
	    "summary = g\n"
	    "[reply b-same]\nprovider = b\ncode = 452\nenhanced = 4.5.3\n"
	    "match = QUOTA\nmatch = EXCEEDED\nverdict = SERVER_TEMPORARY\n"
	    "summary = b\n";
	struct sk_providers *db = sk_providers_new();
	const struct sk_provider *a, *b;
	struct sk_error err;

	assert_int_equal(sk_providers_parse(db, text, strlen(text), "r.ini",
	    &err), 0);
	a = sk_providers_find(db, "a", NULL);
	b = sk_providers_find(db, "b", NULL);
	/* Preferred provider first, however weak its rule. */
	assert_string_equal(rule_id(db, a, 452, "4.5.3",
	    "4.5.3 quota exceeded"), "a-weak");
	/* Equal specificity: the one loaded later. */
	assert_string_equal(rule_id(db, NULL, 452, "4.5.3",
	    "4.5.3 quota exceeded"), "b-same");
	assert_string_equal(rule_id(db, b, 452, "4.5.3",
	    "4.5.3 quota exceeded"), "b-same");
	/* More specific beats less. */
	assert_string_equal(rule_id(db, NULL, 0, NULL, "4.5.3 Quota "
	    "Exceeded"), "b-same");
	assert_string_equal(rule_id(db, NULL, 0, NULL, "quota"), "a-weak");
	assert_string_equal(rule_id(db, b, 0, NULL, "quota"), "a-weak");
	sk_providers_free(db);
}

static void
test_dns_mx_arguments(void **state)
{
	struct sk_mx mx[4];
	struct sk_error err;
	char longname[300];
	size_t n = 99;

	/* All refused before any resolver is asked. */
	assert_int_equal(sk_dns_mx(NULL, 1000, mx, 4, &n, &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	assert_int_equal(n, 0);
	assert_int_equal(sk_dns_mx("", 1000, mx, 4, &n, &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	assert_int_equal(sk_dns_mx("192.0.2.1", 1000, mx, 4, &n, &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	assert_int_equal(sk_dns_mx("[2001:db8::1]", 1000, mx, 4, &n, &err),
	    -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(sk_dns_mx(longname, 1000, mx, 4, &n, &err), -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	assert_int_equal(sk_dns_mx("example.test", 1000, NULL, 4, &n, &err),
	    -1);
	assert_int_equal(err.kind, SK_ERR_USAGE);
	assert_int_equal(sk_dns_mx("example.test", 1000, mx, 4, NULL, NULL),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_has_every_provider),
		cmocka_unit_test(test_builtin_is_complete),
		cmocka_unit_test(test_builtin_facts),
		cmocka_unit_test(test_find_region),
		cmocka_unit_test(test_by_domain),
		cmocka_unit_test(test_by_mx),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_values),
		cmocka_unit_test(test_parse_replaces),
		cmocka_unit_test(test_load_dirs),
		cmocka_unit_test(test_default_dirs),
		cmocka_unit_test(test_known_replies),
		cmocka_unit_test(test_reply_variants),
		cmocka_unit_test(test_reply_ranking),
		cmocka_unit_test(test_dns_mx_arguments),
	};

	return cmocka_run_group_tests(tests, setup_db, teardown_db);
}
