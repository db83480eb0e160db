"""smtpkit providers: the list, show, and detect by domain and by MX.

detect asks DNS only for domains no preset names; those tests run inside a
private network namespace (netns.py) against a fake DNS server (fakedns.py)
on 127.0.0.1, so no query can reach a real resolver.  A company domain whose
MX is mxbiz1.qq.com is Tencent Exmail, mxhichina.com Aliyun enterprise mail,
aspmx.l.google.com Google Workspace, *.mail.protection.outlook.com Microsoft
365, mx.zoho.eu Zoho's EU data centre; the most preferred MX decides; no
MX (69), no such domain (68) and a silent or failing resolver (75) each
have their exit status.
"""

import os
import time

from common import json_lines
from harness import test
from netns import NetNS

TIMEOUT = 2   # detect --timeout, seconds

IDS = ("qq", "exmail", "163", "126", "yeah", "sina", "sohu", "aliyun", "alibaba",
       "directmail", "sendgrid", "ses", "mailgun", "postmark", "brevo", "gmail",
       "office365", "outlook", "yahoo", "icloud", "zoho", "fastmail", "gmx",
       "mailru", "yandex")

ZONE = {
    "corp.test": {"MX": [(5, "mxbiz1.qq.com."), (10, "mxbiz2.qq.com.")]},
    "ali.test": {"MX": [(5, "mxw.mxhichina.com"), (10, "mxn.mxhichina.com")]},
    "ws.test": {"MX": [(1, "ASPMX.L.GOOGLE.COM"), (5, "alt1.aspmx.l.google.com")]},
    "m365.test": {"MX": [(0, "m365-test.mail.protection.outlook.com")]},
    "zeu.test": {"MX": [(10, "mx.zoho.eu"), (20, "mx2.zoho.eu")]},
    # The lower preference wins, whatever the order of the answer.
    "order.test": {"MX": [(20, "mxbiz1.qq.com"), (10, "aspmx.l.google.com")]},
    # The first MX names nothing known; the second does.
    "backup.test": {"MX": [(10, "mx.corp.example"), (20, "mx.zoho.com")]},
    "own.test": {"MX": [(10, "mail.own.test")]},
    "nomx.test": {"A": ["127.0.0.1"]},
    "nxdomain": {"gone.test"},
    "silent": {"silent.test"},
    "servfail": {"broken.test"},
}


def _json(t, r):
    objs = json_lines(t, r)
    t.check(len(objs) == 1, f"expected one JSON object, got {len(objs)}: {r.out[:300]!r}")
    return objs[0]


def _peers_local(t, dns):
    peers = {q.peer[0] for q in dns.queries}
    t.check(peers <= {"127.0.0.1"}, f"DNS queries from unexpected addresses: {peers}")


def _detect(ns, addr, *extra):
    return ns.smtpkit("providers", "detect", addr, "--timeout", TIMEOUT, *extra)


# ---------------------------------------------------------------------------
# list and show: no network at all


@test()
def providers_list(t):
    r = t.smtpkit("providers")
    t.expect_rc(r, 0)
    ids = [ln.split()[0] for ln in r.out.splitlines()[1:] if ln.strip()]
    for i in IDS:
        t.check(i in ids, f"'smtpkit providers' does not list {i}: {ids}")
    t.check("smtp.qq.com" in r.out and "465/tls*" in r.out,
            f"the qq line lacks its host or port: {r.out[:400]!r}")

    r = t.smtpkit("providers", "list", "--json")
    t.expect_rc(r, 0)
    got = {p["id"]: p for p in _json(t, r)["providers"]}
    for i in IDS:
        t.check(i in got, f"--json lacks {i}")
    t.check(got["sendgrid"]["username"] == "apikey", f"sendgrid: {got['sendgrid']}")
    ports = {(p["port"], p["mode"]) for p in got["ses"]["ports"]}
    t.check((587, "starttls") in ports and (2465, "implicit") in ports,
            f"ses ports: {ports}")
    t.check(got["outlook"]["aliases"][:3] == ["hotmail", "live", "msn"],
            f"outlook aliases: {got['outlook']['aliases']}")


@test()
def providers_show(t):
    r = t.smtpkit("providers", "show", "qq")
    t.expect_rc(r, 0)
    for want in ("smtp.qq.com", "465 implicit TLS (recommended)", "587 STARTTLS",
                 "authorization code", "Known replies", "AUTH_APP_PASSWORD_REQUIRED"):
        t.check(want in r.out, f"show qq lacks {want!r}: {r.out[:600]!r}")
    t.check("授权码" not in r.out, "show qq printed Chinese without --lang zh")

    r = t.smtpkit("providers", "show", "QQ", "--lang", "zh")
    t.expect_rc(r, 0)
    t.check("生成授权码" in r.out, f"--lang zh lacks the Chinese notes: {r.out[:600]!r}")
    r = t.smtpkit("providers", "show", "qq", env={"LANG": "zh_CN.UTF-8", "LC_ALL": ""})
    t.expect_rc(r, 0)
    t.check("生成授权码" in r.out, "LANG=zh_CN.UTF-8 gives no Chinese notes")

    r = t.smtpkit("providers", "show", "hotmail", "--json")
    t.expect_rc(r, 0)
    o = _json(t, r)
    t.check(o["id"] == "outlook" and o["credential"] == "oauth2", f"hotmail: {o['id']}")
    verdicts = {x["id"]: x["verdict"] for x in o["replies"]}
    t.check(verdicts.get("ms-basic-auth-disabled") == "AUTH_BASIC_DISABLED",
            f"outlook replies: {verdicts}")

    r = t.smtpkit("providers", "show", "ses:eu-west-1", "--json")
    t.expect_rc(r, 0)
    o = _json(t, r)
    t.check(o["region"] == {"name": "eu-west-1", "host": "email-smtp.eu-west-1.amazonaws.com"},
            f"region: {o['region']}")

    r = t.smtpkit("providers", "show", "nosuch")
    t.expect_rc(r, 64)
    t.expect_err(r, r'no preset "nosuch"', "the unknown id")
    r = t.smtpkit("providers", "show", "ses:mars-1")
    t.expect_rc(r, 64)
    t.expect_err(r, r'no region "mars-1"', "the unknown region")
    r = t.smtpkit("providers", "frobnicate")
    t.expect_rc(r, 64)


@test()
def providers_user_preset(t):
    """A file in ~/.config/smtpkit/providers.d adds and replaces presets;
    a broken one is reported with its file and line."""
    d = os.path.join(t.home, ".config", "smtpkit", "providers.d")
    os.makedirs(d)
    with open(os.path.join(d, "50-local.ini"), "w") as f:
        f.write("[provider qq]\nname = QQ via our proxy\nhost = smtp-proxy.corp.test\n"
                "port = 2465 implicit\n\n"
                "[provider corpmail]\nname = Corp mail\nhost = smtp.corp.test\n"
                "port = 587 starttls\ndomains = corp.test\nmx = mx.corp.test\n")
    r = t.smtpkit("providers", "show", "qq", "--json")
    t.expect_rc(r, 0)
    o = _json(t, r)
    t.check(o["host"] == "smtp-proxy.corp.test" and o["recommended"] == 2465,
            f"the user's qq preset did not replace the builtin one: {o['host']}")
    t.check(o["origin"].endswith("50-local.ini"), f"origin: {o['origin']}")
    r = t.smtpkit("providers", "detect", "me@corp.test")
    t.expect_rc(r, 0)
    t.check("corpmail" in r.out, f"detect by the user's domain: {r.out!r}")

    with open(os.path.join(d, "60-broken.ini"), "w") as f:
        f.write("[provider x]\nname = X\nhost = x.test\nport = 465 ssl3\n")
    r = t.smtpkit("providers")
    t.expect_rc(r, 78)
    t.expect_err(r, r"60-broken\.ini:4: port 465: unknown TLS mode", "file:line of the error")


# ---------------------------------------------------------------------------
# detect


@test()
def providers_detect_by_domain_asks_no_dns(t):
    ns = NetNS(t)
    dns = ns.dns(ZONE)
    for addr, pid in (("me@qq.com", "qq"), ("Boss <boss@Hotmail.com>", "outlook"),
                      ("x@163.com", "163"), ("a@me.com", "icloud")):
        r = _detect(ns, addr, "--json")
        t.expect_rc(r, 0)
        o = _json(t, r)
        t.check(o["found"] and o["id"] == pid and o["by"] == "domain",
                f"{addr}: {o.get('id')} by {o.get('by')}")
    r = _detect(ns, "a@zohomail.eu", "--json")
    o = _json(t, r)
    t.check(o["region"] == "eu" and o["host"] == "smtp.zoho.eu", f"zohomail.eu: {o}")
    asked = [q.name for q in dns.queries if not q.name.endswith("fakedns.invalid")]
    t.check(not asked, f"a known domain was looked up in DNS: {asked}")


@test()
def providers_detect_by_mx(t):
    ns = NetNS(t)
    dns = ns.dns(ZONE)
    cases = (
        ("it@corp.test", "exmail", "mxbiz1.qq.com", None),
        ("it@ali.test", "aliyun", "mxw.mxhichina.com", None),
        ("it@ws.test", "gmail", "ASPMX.L.GOOGLE.COM", None),
        ("it@m365.test", "office365", "m365-test.mail.protection.outlook.com", None),
        ("it@zeu.test", "zoho", "mx.zoho.eu", "pro-eu"),
        ("it@order.test", "gmail", "aspmx.l.google.com", None),
        ("it@backup.test", "zoho", "mx.zoho.com", "pro"),
    )
    for addr, pid, via, region in cases:
        r = _detect(ns, addr, "--json")
        t.expect_rc(r, 0)
        o = _json(t, r)
        t.check(o["found"] and o["id"] == pid and o["by"] == "mx",
                f"{addr}: found {o.get('id')} by {o.get('by')}, expected {pid} by mx")
        t.check(o["via"].lower() == via.lower(), f"{addr}: via {o['via']}, expected {via}")
        t.check(o["region"] == region, f"{addr}: region {o['region']}, expected {region}")
        t.check("MX" in dns.asked(addr.split("@")[1]), f"{addr}: MX not asked")
    o = _json(t, _detect(ns, "it@zeu.test", "--json"))
    t.check(o["host"] == "smtppro.zoho.eu", f"zeu.test host: {o['host']}")
    mx = [(m["pref"], m["host"]) for m in o["mx"]]
    t.check(mx == [(10, "mx.zoho.eu"), (20, "mx2.zoho.eu")], f"MX list: {mx}")

    # The human form says how it was found.
    r = _detect(ns, "it@corp.test")
    t.expect_rc(r, 0)
    t.check("Tencent Exmail (exmail)" in r.out and "MX record of corp.test: mxbiz1.qq.com"
            in r.out, f"human output: {r.out!r}")
    _peers_local(t, dns)


@test()
def providers_detect_not_found(t):
    ns = NetNS(t)
    dns = ns.dns(ZONE)

    r = _detect(ns, "it@own.test", "--json")
    t.expect_rc(r, 69)
    o = _json(t, r)
    t.check(o["found"] is False and o["mx"] == [{"pref": 10, "host": "mail.own.test"}],
            f"own.test: {o}")
    r = _detect(ns, "it@own.test")
    t.expect_rc(r, 69)
    t.check("no preset for own.test (MX: mail.own.test)" in r.out, f"{r.out!r}")

    r = _detect(ns, "it@nomx.test")
    t.expect_rc(r, 69)
    t.check("no MX record" in r.out, f"nomx.test: {r.out!r}")

    r = _detect(ns, "it@gone.test")
    t.expect_rc(r, 68)
    t.expect_err(r, r"no such domain: gone\.test", "the NXDOMAIN")
    r = _detect(ns, "it@gone.test", "--json")
    t.expect_rc(r, 68)
    t.check(_json(t, r)["found"] is False, "gone.test --json")

    # c-ares 1.18 reports a SERVFAIL as a failed resolver (as for A and
    # AAAA in send): temporary, 75.
    r = _detect(ns, "it@broken.test")
    t.expect_rc(r, 75, 68)
    t.expect_err(r, r"SERVFAIL", "the SERVFAIL")

    start = time.monotonic()
    r = _detect(ns, "it@silent.test")
    took = time.monotonic() - start
    t.expect_rc(r, 75)
    t.expect_err(r, r"did not answer", "the silent resolver")
    t.check(took < t.timeout(TIMEOUT + 3), f"a {TIMEOUT}s timeout took {took:.1f}s")
    _peers_local(t, dns)
