"""Connection racing (RFC 8305 "Happy Eyeballs v2"): a name with AAAA and A
records, inside a private network namespace (netns.py) with a fake DNS
server, where the IPv6 path is broken.

  - IPv6 silently dropped: the AAAA is fd00::5, an address given to the
    namespace's own lo whose TCP packets ip6tables DROPs, as on a cloud
    server whose IPv6 goes nowhere.  The IPv4 attempt must start while the
    IPv6 one is still waiting, and deliver; the IPv6 attempt is abandoned,
    never the outcome.  Tried one after another, the IPv6 attempt would
    have cost the whole --timeout first.
  - IPv6 refused ([::1], nothing listening): IPv4 delivers.

Only the trace order is checked, never a duration.  Nothing here can
reach beyond the namespace: its only link is lo."""

import os
import re
import socket

from common import body_text, parse_msg
from harness import Fail, Skip, test
from netns import IP, NetNS

IP6TABLES = "/usr/sbin/ip6tables"

FROM = "a@example.com"
TO = "b@example.com"
TIMEOUT = 20    # smtpkit --timeout, seconds: far more than the race needs
DROPPED = "fd00::5"     # a unique local address, added to lo in the namespace


def _run(t, ns, argv, what):
    rc, out, err = ns.run(argv, timeout=20)
    if rc != 0:
        why = (err or out).decode("utf-8", "replace").strip()
        if re.search(r"permission denied|not permitted|can't initialize|"
                     r"Could not fetch rule set|Protocol not supported|"
                     r"table .* does not exist|No chain|Address family not supported|"
                     r"not supported", why, re.I):
            raise Skip(f"{what} is not possible in the namespace: {why}")
        raise Fail(f"{what}: {' '.join(argv)} failed: {why}")


def _send(ns, host, port):
    return ns.smtpkit("send", "-v", "--host", host, "--port", port, "--tls", "none",
                      "--from", FROM, "--to", TO, "--text", "hi",
                      "--timeout", TIMEOUT)


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
    t.check(m.conn.peer[0] == "127.0.0.1", f"the client came from {m.conn.peer}")
    t.check(len(srv.rec.conns) == 1, f"{len(srv.rec.conns)} connections reached the server")


def _index(t, r, lines, pattern, what):
    for i, ln in enumerate(lines):
        if re.search(pattern, ln):
            return i
    t.fail(f"the -v transcript does not show {what}: {r.describe()}")


def _asked(t, dns, name):
    got = dns.asked(name)
    t.check("A" in got and "AAAA" in got,
            f"the fake DNS server was not asked {name} A and AAAA (queries: {dns.queries})")


@test()
def happy_eyeballs_ipv6_dropped_ipv4_delivers(t):
    ns = NetNS(t)
    if not ns.has_ipv6_loopback():
        t.skip("IPv6 is disabled in the namespace (no ::1)")
    if not os.access(IP6TABLES, os.X_OK):
        t.skip(f"{IP6TABLES} is not installed (iptables, see scripts/install-deps)")
    _run(t, ns, [IP, "-6", "addr", "add", f"{DROPPED}/128", "dev", "lo"],
         f"adding {DROPPED} to lo")
    _run(t, ns, [IP6TABLES, "-w", "5", "-A", "INPUT", "-d", DROPPED, "-p", "tcp",
                 "-j", "DROP"], "an ip6tables DROP rule")
    dns = ns.dns({"dual.test": {"AAAA": [DROPPED], "A": ["127.0.0.1"]}})
    srv = ns.aiosmtpd()
    p = srv.port

    r = _send(ns, "dual.test", p)
    _delivered(t, srv, r)
    _asked(t, dns, "dual.test")

    lines = r.stderr_lines()
    v6 = re.escape(f"[{DROPPED}]:{p}")
    v6_try = _index(t, r, lines, rf"connecting to {v6}", "the IPv6 attempt")
    v4_try = _index(t, r, lines, rf"connecting to 127\.0\.0\.1:{p}\b", "the IPv4 attempt")
    v4_ok = _index(t, r, lines, rf"connected to 127\.0\.0\.1:{p}\b", "the IPv4 connection")
    shown = " | ".join(lines[:10])
    t.check(v6_try < v4_try < v4_ok, f"expected the IPv6 attempt, then IPv4: {shown}")
    # Between starting IPv6 and starting IPv4, nothing about IPv6: it was
    # still pending (no time-out, refusal or other end).
    early = [ln for ln in lines[v6_try + 1:v4_try] if re.search(v6, ln)]
    t.check(not early, f"the IPv6 attempt ended before IPv4 started: {early}")
    # Afterwards it may only have been abandoned, never connected or failed:
    # a refusal would mean the DROP rule did not hold, and then this test
    # proves nothing.
    later = [ln for ln in lines[v4_try:] if re.search(v6, ln)]
    bad = [ln for ln in later if not re.search(rf"{v6}: abandoned\b", ln)]
    t.check(not bad, f"the IPv6 attempt was reported as an outcome: {bad}")
    t.check(not re.search(r"no answer|timed out|refused", r.err, re.I),
            f"a failure was reported: {r.describe()}")


@test()
def happy_eyeballs_ipv6_refused_ipv4_delivers(t):
    ns = NetNS(t)
    if not ns.has_ipv6_loopback():
        t.skip("IPv6 is disabled in the namespace (no ::1)")
    dns = ns.dns({"dual.test": {"AAAA": ["::1"], "A": ["127.0.0.1"]}})
    srv = ns.aiosmtpd()
    p = srv.port

    # [::1] on the server's port: bound, never listening, so refused.
    def bind():
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::1", p))
        return s
    s = ns.call(bind)
    t.defer(s.close)

    r = _send(ns, "dual.test", p)
    _delivered(t, srv, r)
    _asked(t, dns, "dual.test")

    lines = r.stderr_lines()
    v6 = re.escape(f"[::1]:{p}")
    v6_try = _index(t, r, lines, rf"connecting to {v6}", "the IPv6 attempt")
    v6_refused = _index(t, r, lines, rf"{v6}: connection refused", "the IPv6 refusal")
    v4_try = _index(t, r, lines, rf"connecting to 127\.0\.0\.1:{p}\b", "the IPv4 attempt")
    v4_ok = _index(t, r, lines, rf"connected to 127\.0\.0\.1:{p}\b", "the IPv4 connection")
    t.check(v6_try < v6_refused < v4_try < v4_ok,
            f"expected IPv6 tried and refused, then IPv4: {' | '.join(lines[:10])}")
