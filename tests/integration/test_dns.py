"""Name resolution: smtpkit against a fake DNS server, inside a private
network namespace (netns.py) whose /etc/resolv.conf says 127.0.0.1, so no
query can reach a real resolver.  NXDOMAIN, NODATA and a silent resolver
each give their own exit status and message; A, AAAA and CNAME answers lead
to a delivered message; a refused IPv6 address falls back to IPv4."""

import re

from common import body_text, json_lines, parse_msg
from harness import test
from netns import NetNS

FROM = "a@example.com"
TO = "b@example.com"
TIMEOUT = 3   # smtpkit --timeout, seconds

ZONE = {
    "mail.test": {"A": ["127.0.0.1"]},
    "dual.test": {"AAAA": ["::1"], "A": ["127.0.0.1"]},
    "www.test": {"CNAME": "alias.test"},
    "alias.test": {"CNAME": "mail.test"},
    "tcp.test": {"A": ["127.0.0.1"]},
    "nodata.test": {"MX": [(10, "mail.test")], "TXT": ["v=spf1 -all"]},
    "nxdomain": {"nxdomain.test"},
    "silent": {"silent.test"},
    "truncate": {"tcp.test"},
}


def _setup(t, zone=ZONE):
    ns = NetNS(t)
    dns = ns.dns(zone)
    return ns, dns


def _send(ns, host, port, *extra):
    return ns.smtpkit("send", "--host", host, "--port", port, "--tls", "none",
                      "--from", FROM, "--to", TO, "--text", "hi",
                      "--timeout", TIMEOUT, *extra)


def _asked(t, dns, name, *types):
    got = dns.asked(name)
    for ty in types:
        t.check(ty in got, f"the fake DNS server was not asked {name} {ty} "
                           f"(queries: {dns.queries})")
    peers = {q.peer[0] for q in dns.queries}
    t.check(peers <= {"127.0.0.1"}, f"DNS queries from unexpected addresses: {peers}")


def _json_error(t, r):
    errs = [o["error"] for o in json_lines(t, r) if isinstance(o.get("error"), dict)]
    t.check(errs, f"no {{\"error\": ...}} object on stdout: {r.out!r}")
    return errs[0]


def _delivered(t, srv, r):
    t.expect_rc(r, 0)
    srv.sync()
    msgs = srv.messages
    t.check(len(msgs) == 1, f"the server received {len(msgs)} messages, expected 1")
    m = msgs[0]
    t.check(m.mail_from == FROM and m.rcpt_tos == [TO],
            f"envelope was {m.mail_from!r} -> {m.rcpt_tos}")
    got = body_text(parse_msg(m.content))
    t.check(got == "hi", f"body is {got!r}, expected 'hi'")
    return m


# ---------------------------------------------------------------------------
# names that do not resolve


@test()
def dns_nxdomain(t):
    ns, dns = _setup(t)
    port = ns.closed_port()
    r = _send(ns, "nxdomain.test", port)
    t.expect_rc(r, 68)
    t.expect_session_error_line(r)
    t.expect_err(r, r"nxdomain\.test", "the host name")
    t.expect_err(r, r"does not exist|no such host", "that the name does not exist")
    _asked(t, dns, "nxdomain.test", "A")
    r = _send(ns, "nxdomain.test", port, "--json")
    t.expect_rc(r, 68)
    e = _json_error(t, r)
    t.check(e.get("stage") == "resolve" and e.get("kind") == "dns",
            f"JSON error {e}, expected stage resolve, kind dns")


@test()
def dns_nodata(t):
    """The name exists (it has MX and TXT records) but no A or AAAA."""
    ns, dns = _setup(t)
    port = ns.closed_port()
    r = _send(ns, "nodata.test", port)
    t.expect_rc(r, 68)
    t.expect_session_error_line(r)
    t.expect_err(r, r"nodata\.test", "the host name")
    t.expect_err(r, r"\bno (IPv4 or IPv6 |IP )?address", "that the name has no address")
    t.check(not re.search(r"does not exist|no such host", r.err, re.I),
            f"an existing name without addresses is reported as nonexistent: {r.describe()}")
    _asked(t, dns, "nodata.test", "A", "AAAA")
    r = _send(ns, "nodata.test", port, "--json")
    t.expect_rc(r, 68)
    e = _json_error(t, r)
    t.check(e.get("stage") == "resolve" and e.get("kind") == "dns",
            f"JSON error {e}, expected stage resolve, kind dns")


@test()
def dns_silent_resolver_timeout(t):
    """The resolver never answers: a temporary failure (75) after about
    --timeout, saying the resolver did not answer, not that the name does
    not exist."""
    ns, dns = _setup(t)
    port = ns.closed_port()
    r = _send(ns, "silent.test", port)
    t.expect_rc(r, 75)
    t.expect_session_error_line(r)
    t.expect_err(r, r"silent\.test", "the host name")
    t.expect_err(r, r"did not answer|no answer|not respond", "that the resolver did not answer")
    t.expect_err(r, r"127\.0\.0\.1", "the resolver's address")
    t.check(not re.search(r"does not exist|no such host", r.err, re.I),
            f"a silent resolver is reported as a nonexistent name: {r.describe()}")
    limit = TIMEOUT + t.timeout(2)
    t.check(TIMEOUT - 0.5 <= r.elapsed < limit,
            f"gave up after {r.elapsed:.1f}s with --timeout {TIMEOUT} (expected "
            f"{TIMEOUT - 0.5:.1f}s to {limit:.1f}s)")
    _asked(t, dns, "silent.test", "A")
    t.check(all(q.rcode == "silent" for q in dns.queries if q.name == "silent.test"),
            "the fake server answered silent.test")
    t.note(f"gave up after {r.elapsed:.1f}s, {len(dns.asked('silent.test'))} queries")


# ---------------------------------------------------------------------------
# names that resolve


@test()
def dns_a_record_delivered(t):
    ns, dns = _setup(t)
    srv = ns.aiosmtpd()
    r = _send(ns, "mail.test", srv.port)
    m = _delivered(t, srv, r)
    t.check(m.conn.peer[0] == "127.0.0.1", f"the client came from {m.conn.peer}")
    _asked(t, dns, "mail.test", "A")


@test()
def dns_dual_stack_falls_back_to_ipv4(t):
    """AAAA ::1 and A 127.0.0.1, the server only on 127.0.0.1: IPv6 is
    tried first (RFC 8305), refused, then IPv4 delivers."""
    ns, dns = _setup(t)
    srv = ns.aiosmtpd()
    p = srv.port
    r = _send(ns, "dual.test", p, "-v")
    _delivered(t, srv, r)
    _asked(t, dns, "dual.test", "A", "AAAA")
    lines = r.err.splitlines()

    def first(pattern, what):
        for i, ln in enumerate(lines):
            if re.search(pattern, ln, re.I):
                return i
        t.fail(f"the -v transcript does not show {what}: {r.describe()}")

    v6_try = first(rf"connecting to \[::1\]:{p}\b", "the IPv6 attempt")
    v4_try = first(rf"connecting to 127\.0\.0\.1:{p}\b", "the IPv4 attempt")
    v4_ok = first(rf"connected to 127\.0\.0\.1:{p}\b", "the IPv4 connection")
    t.check(v6_try < v4_try < v4_ok,
            f"expected the IPv6 attempt, then IPv4: {' | '.join(lines[:8])}")
    if ns.has_ipv6_loopback():
        v6_fail = first(rf"\[::1\]:{p}\b.*refused", "the IPv6 attempt refused")
        t.check(v6_try < v6_fail < v4_try, f"IPv6 refusal out of order: {' | '.join(lines[:8])}")
    else:
        t.note("no ::1 in the namespace: the IPv6 attempt failed without a refusal")
    t.check(len(srv.rec.conns) == 1, f"{len(srv.rec.conns)} connections reached the server")


@test()
def dns_a_record_connection_refused(t):
    ns, dns = _setup(t)
    port = ns.closed_port()
    r = _send(ns, "mail.test", port)
    t.expect_rc(r, 69)
    t.expect_session_error_line(r)
    t.expect_err(r, r"refused", "'connection refused'")
    t.expect_err(r, rf"127\.0\.0\.1:{port}\b", "the address it tried")
    _asked(t, dns, "mail.test", "A")


@test()
def dns_cname_chain_delivered(t):
    """www.test -> alias.test -> mail.test (A 127.0.0.1), answered in one
    response as an authoritative server does."""
    ns, dns = _setup(t)
    srv = ns.aiosmtpd()
    r = _send(ns, "www.test", srv.port)
    _delivered(t, srv, r)
    _asked(t, dns, "www.test", "A")


@test()
def dns_truncated_udp_retried_over_tcp(t):
    """The UDP answer comes back truncated (TC=1): the resolver retries
    over TCP and the message is delivered."""
    ns, dns = _setup(t)
    srv = ns.aiosmtpd()
    r = _send(ns, "tcp.test", srv.port)
    _delivered(t, srv, r)
    protos = {(q.proto, q.rcode) for q in dns.queries if q.name == "tcp.test"}
    t.check(("udp", "TC") in protos and any(p == "tcp" for p, _ in protos),
            f"expected a truncated UDP answer then a TCP query: {dns.queries}")
