"""smtpkit doctor: one scenario per fault, from tests/data/scenarios/*.json.

Each scenario names the servers to start (faultserver.py scripts, or a
refused, dropped or unreachable port), the doctor's arguments, and what
must come out: the --json verdict.code, within a bound on wall time.  On
top of that every run must:

  - print one JSON document with verdict.code among the documented codes,
    and stages / ports in the documented shape;
  - exit 0 exactly when the verdict is OK, otherwise with a sysexits code;
  - never send DATA without --send, MAIL without --from, RCPT without --to,
    and never send AUTH over a connection that is not encrypted;
  - never show the password (the harness checks argv and output for it
    and its base64 forms).

Every scenario runs, with its servers, inside a private network namespace
(netns.py) when this machine allows one: nothing can leave loopback, and
the well-known ports (25, 465, 587, 2525) are ours to use.  Scenarios that
need one (iptables DROP/REJECT, fixed ports, a fake DNS server) skip with
the reason where namespaces are not permitted; the others then run on the
host's loopback, with literal 127.0.0.1 only.
SMTPKIT_DOCTOR_NETNS=0 forces the host's loopback.

Scenario files hold {"scenarios": [...]} and/or {"templates": {NAME: script}}
(templates are shared by all the files).  Scenario keys:
  name, doc
  servers   {id: {"kind": "fault" | "closed" | "drop" | "unreachable",
                  "port": fixed port (namespace only), "template": NAME,
                  "script": {...}, "ipv6": "also" | "drop" | "unreachable"}}
            (the first server is {port}; ipv6: the same script on [::1]
            and the same port, and TCP over IPv6 reachable, dropped, or
            rejected as unreachable)
  args      doctor arguments after "doctor --json"; {port}, {port:ID},
            {host}, {ca}, {tmp} are filled in
  password  a secret for --password-env SMTPKIT_DOCTOR_PASSWORD
  env, files, dirs   extra environment, files and directories under {tmp}
  netns     true: needs a namespace (iptables, fixed ports)
  dns       a fakedns.py zone, served on 127.0.0.1:53 inside the namespace
            (its /etc/resolv.conf points there); implies netns
  expect    {"verdict": CODE, "max_seconds": N, "saw": [verbs],
             "never": [verbs], "text": regex on summary + fix,
             "suggested": {key: value or [values]}, "port_status": {port: status},
             "stage_status": {stage: status},
             "stage_text": {stage: regex on its detail + evidence}}
"""

import json
import os
import re
import socket
import subprocess
import threading

from harness import Fail, Skip, test

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO_DIR = os.path.join(os.path.dirname(HERE), "data", "scenarios")
PASSWORD_ENV = "SMTPKIT_DOCTOR_PASSWORD"
IPTABLES = "/usr/sbin/iptables"
IP6TABLES = "/usr/sbin/ip6tables"

VERDICTS = {
    "OK", "DNS_NO_SUCH_HOST", "DNS_NO_ANSWER", "TCP_REFUSED", "TCP_TIMEOUT",
    "TCP_UNREACHABLE", "PORT_BLOCKED", "IPV6_BROKEN", "NO_GREETING",
    "GREETING_REFUSED", "TLS_MODE_MISMATCH", "STARTTLS_UNAVAILABLE", "TLS_VERSION",
    "TLS_CERT_UNTRUSTED", "TLS_CERT_EXPIRED", "TLS_CERT_NOT_YET_VALID",
    "TLS_HOSTNAME_MISMATCH", "CLOCK_SKEW", "CA_STORE_MISSING", "TLS_HANDSHAKE",
    "AUTH_NOT_OFFERED", "AUTH_MECH_UNSUPPORTED", "AUTH_CREDENTIALS",
    "AUTH_APP_PASSWORD_REQUIRED", "AUTH_SERVICE_DISABLED", "AUTH_BASIC_DISABLED",
    "AUTH_TOO_MANY_ATTEMPTS", "SENDER_MISMATCH", "SENDER_UNVERIFIED",
    "RECIPIENT_REJECTED", "RELAY_DENIED", "RATE_LIMITED", "QUOTA_EXCEEDED",
    "MESSAGE_REJECTED_SPAM", "SERVER_TEMPORARY", "SERVER_PERMANENT", "PROTOCOL_ERROR",
    "SMTPUTF8_UNSUPPORTED",
}
STAGES = ("local", "dns", "tcp", "greeting", "tls", "ehlo", "auth", "mail", "data")
STATUSES = ("ok", "warn", "fail", "skip")
PORT_STATES = ("untried", "connected", "refused", "timeout", "unreachable", "reset")

try:
    import faultserver
    FAULTSERVER_ERROR = None
except ImportError as e:  # reported by each scenario
    faultserver = None
    FAULTSERVER_ERROR = str(e)


# ---------------------------------------------------------------------------
# is there a doctor to test?

_doctor = {}
_doctor_lock = threading.Lock()


def need_doctor(t):
    """Skip until `smtpkit doctor --help` exits 0 (the doctor is built)."""
    with _doctor_lock:
        if t.cfg.binary not in _doctor:
            try:
                p = subprocess.run([t.cfg.binary, "doctor", "--help"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=t.timeout(10),
                                   env={"PATH": "/usr/bin:/bin", "HOME": t.home,
                                        "LC_ALL": "C.UTF-8"})
                ok = p.returncode == 0
                why = "" if ok else (f"exit {p.returncode}: "
                                     f"{p.stderr.decode('utf-8', 'replace').strip()[:120]}")
            except (OSError, subprocess.TimeoutExpired) as e:
                ok, why = False, str(e)
            _doctor[t.cfg.binary] = (ok, why)
        ok, why = _doctor[t.cfg.binary]
    if not ok:
        raise Fail(f"`smtpkit doctor --help` failed: {why}")


# ---------------------------------------------------------------------------
# the network: a private namespace when we may, else the host's loopback


class HostNet:
    """The host's loopback, for when namespaces are not available."""

    inside = False

    def __init__(self, t, why):
        self.t = t
        self.why = why

    def call(self, fn, *args, **kw):
        return fn(*args, **kw)

    def smtpkit(self, *args, **kw):
        return self.t.smtpkit(*args, **kw)

    def run(self, argv, timeout=30, env=None, stdin=None):
        raise Skip(f"needs a private network namespace: {self.why}")


class NsNet:
    inside = True

    def __init__(self, t, ns):
        self.t = t
        self.ns = ns

    def call(self, fn, *args, **kw):
        return self.ns.call(fn, *args, **kw)

    def smtpkit(self, *args, **kw):
        return self.ns.smtpkit(*args, **kw)

    def run(self, argv, timeout=30, env=None, stdin=None):
        return self.ns.run(argv, timeout=timeout, env=env, stdin=stdin)


def network(t, required):
    if os.environ.get("SMTPKIT_DOCTOR_NETNS", "1") in ("0", "no", "false"):
        why = "SMTPKIT_DOCTOR_NETNS=0"
    else:
        try:
            from netns import NetNS
        except ImportError as e:
            why = f"netns.py is not importable: {e}"
        else:
            try:
                return NsNet(t, NetNS(t))
            except Skip as e:
                why = str(e)
    if required:
        raise Skip(f"needs a private network namespace (for iptables, fixed "
                   f"ports or a fake DNS server): {why}")
    t.note(f"on the host's loopback: {why}")
    return HostNet(t, why)


def _bind_only(port):
    """A socket bound to 127.0.0.1:port and not listening (refuses)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", port))
    return s


def iptables(t, net, *rule, tool=IPTABLES):
    if not os.access(tool, os.X_OK):
        raise Skip(f"{tool} is not installed (iptables, see scripts/install-deps)")
    rc, out, err = net.run([tool, "-w", "5", *rule], timeout=20)
    if rc != 0:
        why = (err or out).decode("utf-8", "replace").strip()
        if re.search(r"permission denied|not permitted|can't initialize|"
                     r"Could not fetch rule set|Protocol not supported|"
                     r"table .* does not exist|No chain|Address family not supported",
                     why, re.I):
            raise Skip(f"{os.path.basename(tool)} is not usable in the namespace: {why}")
        raise Fail(f"{os.path.basename(tool)} {' '.join(rule)} failed: {why}")


# ---------------------------------------------------------------------------
# one scenario


class Servers:
    def __init__(self):
        self.ports = {}     # id -> port
        self.fault = {}     # id -> started FaultServer (or s_server fallback)


def start_servers(t, net, sc, certs):
    srv = Servers()
    for sid, spec in sc.get("servers", {}).items():
        kind = spec.get("kind", "fault")
        fixed = spec.get("port", 0)
        if fixed and not net.inside:
            raise Skip(f"server {sid} needs port {fixed}: only in a private namespace")
        if kind == "fault":
            if faultserver is None:
                raise Fail(f"faultserver.py is not importable: {FAULTSERVER_ERROR}")
            try:
                s = net.call(faultserver.make_server, spec["script"], certs,
                             port=fixed, name=f"{sc['name']}-{sid}")
            except faultserver.Unsupported as e:
                raise Skip(str(e))
            t.defer(s.stop)
            if s.note:
                t.note(s.note)
            srv.fault[sid] = s
            srv.ports[sid] = s.port
            v6 = spec.get("ipv6")
            if v6:
                # The same script on [::1] and the same port number: a
                # name with A and AAAA records reaches both.
                if not net.inside or not net.ns.has_ipv6_loopback():
                    raise Skip("needs ::1 in a private network namespace")
                s6 = net.call(faultserver.make_server, spec["script"], certs, host="::1",
                              port=s.port, name=f"{sc['name']}-{sid}-v6")
                t.defer(s6.stop)
                srv.fault[sid + "-v6"] = s6
                # Broken IPv6 breaks every port, not one: the rules take
                # all of TCP over IPv6 in the namespace.
                if v6 == "drop":
                    iptables(t, net, "-A", "INPUT", "-p", "tcp", "-j", "DROP",
                             tool=IP6TABLES)
                elif v6 == "unreachable":
                    iptables(t, net, "-A", "INPUT", "-p", "tcp", "-j", "REJECT",
                             "--reject-with", "icmp6-addr-unreachable", tool=IP6TABLES)
                elif v6 != "also":
                    raise Fail(f"test bug: server {sid}: ipv6 {v6!r}")
        elif kind in ("closed", "drop", "unreachable"):
            # Bound, never listening: refused at once, and no one else can
            # take the port while the test runs.
            sock = net.call(_bind_only, fixed)
            t.defer(sock.close)
            port = sock.getsockname()[1]
            srv.ports[sid] = port
            if kind == "drop":
                iptables(t, net, "-A", "INPUT", "-p", "tcp", "--dport", str(port),
                         "-j", "DROP")
            elif kind == "unreachable":
                iptables(t, net, "-A", "INPUT", "-p", "tcp", "--dport", str(port),
                         "-j", "REJECT", "--reject-with", "icmp-host-unreachable")
        else:
            raise Fail(f"test bug: unknown server kind {kind!r}")
    return srv


def needs_certs(sc):
    if any("{ca}" in a for a in sc.get("args", [])):
        return True
    for spec in sc.get("servers", {}).values():
        s = spec.get("script", {})
        if s.get("tls") == "implicit" or any(c.upper() == "STARTTLS"
                                             for c in s.get("caps", [])):
            return True
    return False


def fill(t, text, srv, certs):
    def port(m):
        sid = m.group(1) or next(iter(srv.ports))
        if sid not in srv.ports:
            raise Fail(f"test bug: no server {sid!r} for {text!r}")
        return str(srv.ports[sid])
    text = re.sub(r"\{port(?::([\w-]+))?\}", port, text)
    text = text.replace("{host}", "127.0.0.1").replace("{tmp}", t.tmp)
    if "{ca}" in text:
        text = text.replace("{ca}", certs.ca)
    return text


def arg_value(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def parse_report(t, r):
    try:
        doc = json.loads(r.out)
    except ValueError as e:
        raise Fail(f"--json output is not one JSON document ({e}): {r.describe()}")
    if not isinstance(doc, dict):
        raise Fail(f"--json output is not an object: {r.describe()}")
    if "verdict" not in doc and "error" in doc:
        raise Fail(f"the doctor did not run: {doc['error']}; {r.describe()}")
    return doc


def check_shape(t, doc, r):
    v = doc.get("verdict")
    t.check(isinstance(v, dict) and isinstance(v.get("code"), str),
            f"no verdict.code: {r.describe()}")
    t.check(v["code"] in VERDICTS, f"verdict.code {v['code']!r} is not a documented code")
    t.check(isinstance(v.get("summary"), str) and v["summary"].strip(),
            f"verdict {v['code']} has no summary")
    t.check(isinstance(v.get("fix"), list) and all(isinstance(f, str) for f in v["fix"]),
            f"verdict.fix is not a list of strings: {v.get('fix')!r}")
    if v["code"] != "OK":
        t.check(v["fix"], f"verdict {v['code']} has no fix steps")
    stages = doc.get("stages")
    t.check(isinstance(stages, list) and stages, "no stages")
    for st in stages:
        t.check(isinstance(st, dict) and st.get("name") in STAGES and
                st.get("status") in STATUSES and isinstance(st.get("ms"), (int, float))
                and isinstance(st.get("detail"), str) and isinstance(st.get("evidence"), list),
                f"a stage is not {{name,status,ms,detail,evidence}}: {st!r}")
    ports = doc.get("ports")
    t.check(isinstance(ports, list), "no ports list")
    for p in ports:
        t.check(isinstance(p, dict) and isinstance(p.get("port"), (int, float)) and
                p.get("status") in PORT_STATES and "mode" in p and "address" in p,
                f"a port is not {{port,address,mode,status,ms}}: {p!r}")
    t.check(isinstance(doc.get("suggested"), dict), "no suggested object")
    # exit status: 0 iff OK, otherwise a sysexits code
    if v["code"] == "OK":
        t.check(r.rc == 0, f"verdict OK but exit {r.rc}")
    else:
        t.check(64 <= r.rc <= 78, f"verdict {v['code']} but exit {r.rc} (want a sysexits code)")


def check_wire(t, sc, args, srv):
    """What the doctor may not have sent, whatever the verdict."""
    forbidden = set(sc.get("expect", {}).get("never", []))
    if "--send" not in args:
        forbidden.add("DATA")
    if "--from" not in args:
        forbidden.add("MAIL")
    if "--to" not in args:
        forbidden.add("RCPT")
    for sid, s in srv.fault.items():
        if not s.wait_idle(t.timeout(5)):
            t.note(f"server {sid}: a connection was still open after the doctor exited")
        t.check(not s.errors, lambda: f"server {sid} script errors (test bug): {s.errors}")
        verbs = s.verbs()
        bad = sorted(forbidden & set(verbs))
        t.check(not bad, lambda: f"the doctor sent {bad} to server {sid}: {s.transcript()}")
        clear = [text for _, text, tls in s.lines() if tls is None and
                 text.split(" ", 1)[0].upper() == "AUTH"]
        t.check(not clear, lambda: f"AUTH sent without TLS to server {sid}: {clear}")
        if s.messages():
            t.check("--send" in args, "a message was delivered without --send")
    want = sc.get("expect", {}).get("saw", [])
    if want:
        verbs = [v for s in srv.fault.values() for v in s.verbs()]
        missing = [v for v in want if v not in verbs]
        t.check(not missing, lambda: f"the server never saw {missing}: "
                + "; ".join(s.transcript() for s in srv.fault.values()))


def run_scenario(t, sc):
    need_doctor(t)
    exp = sc["expect"]
    net = network(t, sc.get("netns", False) or "dns" in sc)
    certs = t.certs() if needs_certs(sc) else None
    for d in sc.get("dirs", []):
        os.makedirs(os.path.join(t.tmp, d), exist_ok=True)
    for name, data in sc.get("files", {}).items():
        t.file(name, data, 0o644)
    if "dns" in sc:
        if not net.inside:
            raise Skip("needs a private namespace for its fake DNS server")
        net.ns.dns(sc["dns"])
    srv = start_servers(t, net, sc, certs)
    args = [fill(t, a, srv, certs) for a in sc["args"]]
    env = {k: fill(t, v, srv, certs) for k, v in sc.get("env", {}).items()}
    if "password" in sc:
        env[PASSWORD_ENV] = t.secret(sc["password"], user=arg_value(args, "--user"))
        if "--password-env" not in args:
            args += ["--password-env", PASSWORD_ENV]
    limit = exp["max_seconds"]
    # Run to the bound plus room to see the JSON of a slow doctor (a wrong
    # time with the right verdict); the harness kills it there.
    try:
        r = net.smtpkit("doctor", "--json", *args, env=env, timeout=limit + 10)
    except Fail as e:   # a hang or a crash: say what the server saw last
        raise Fail(f"{e}; server: " + "; ".join(s.transcript(12) for s in srv.fault.values()))
    doc = parse_report(t, r)
    check_shape(t, doc, r)
    code = doc["verdict"]["code"]
    seen = "; ".join(f"{s['name']}={s['status']}" for s in doc["stages"]
                     if s["status"] != "skip")
    if code != exp["verdict"]:
        decisive = [s for s in doc["stages"] if s["status"] == "fail"]
        detail = decisive[0] if decisive else {}
        raise Fail(f"verdict {code}, expected {exp['verdict']} "
                   f"(stages: {seen}; {detail.get('name', '')}: "
                   f"{detail.get('detail', '')!r} evidence {detail.get('evidence', [])}; "
                   f"summary {doc['verdict']['summary'][:200]!r}); server: "
                   + "; ".join(s.transcript(12) for s in srv.fault.values()))
    bound = t.timeout(limit)
    t.check(r.elapsed <= bound,
            f"verdict {code} right, but it took {r.elapsed:.1f}s (bound {bound:.0f}s; "
            f"stages: " + ", ".join(f"{s['name']} {s['ms']}ms" for s in doc["stages"]
                                    if s["status"] != "skip") + ")")
    if "text" in exp:
        text = doc["verdict"]["summary"] + "\n" + "\n".join(doc["verdict"]["fix"])
        t.check(re.search(exp["text"], text, re.I),
                f"verdict {code}: summary and fix do not mention /{exp['text']}/: {text[:400]!r}")
    sg = doc["suggested"]
    for key, want in exp.get("suggested", {}).items():
        wants = want if isinstance(want, list) else [want]
        wants = [fill(t, str(w), srv, certs) for w in wants]
        got = sg.get(key)
        got = str(int(got)) if isinstance(got, (int, float)) else got
        t.check(got in wants, f"suggested {key} is {got!r}, expected one of {wants}: {sg!r}")
    for name, status in exp.get("stage_status", {}).items():
        got = [x["status"] for x in doc["stages"] if x["name"] == name]
        t.check(got == [status], f"stage {name} is {got}, expected {status}")
    for name, pattern in exp.get("stage_text", {}).items():
        st = [x for x in doc["stages"] if x["name"] == name]
        text = "\n".join([x["detail"] for x in st] + [e for x in st for e in x["evidence"]])
        t.check(re.search(pattern, text, re.I),
                f"stage {name} does not show /{pattern}/: {text[:300]!r}")
    for p, status in exp.get("port_status", {}).items():
        real = fill(t, p, srv, certs)
        got = [x["status"] for x in doc["ports"] if str(int(x["port"])) == real]
        t.check(status in got, f"port {real} ({p}) has status {got}, expected {status}: "
                f"{doc['ports']}")
    check_wire(t, sc, args, srv)
    t.note(f"{code} in {r.elapsed:.1f}s")


# ---------------------------------------------------------------------------
# registration


def load():
    if faultserver is None:
        raise RuntimeError(f"faultserver.py is not importable: {FAULTSERVER_ERROR}")
    return faultserver.load_scenarios(SCENARIO_DIR)


def _register(sc):
    def fn(t):
        run_scenario(t, sc)
    fn.__doc__ = sc.get("doc", "")
    test(name="doctor_" + sc["name"])(fn)


def _register_broken(why):
    def fn(t):
        raise Fail(f"cannot load the scenarios in {SCENARIO_DIR}: {why}")
    test(name="doctor_scenarios_load")(fn)


try:
    SCENARIOS = load()
    _names = [sc["name"] for sc in SCENARIOS]
    _dups = sorted({n for n in _names if _names.count(n) > 1})
    if _dups:
        raise ValueError(f"duplicate scenario names {_dups}")
    for _sc in SCENARIOS:
        for _key in ("name", "args", "expect"):
            if _key not in _sc:
                raise ValueError(f"{_sc.get('_file')}: scenario {_sc.get('name')!r} has no {_key}")
        if _sc["expect"].get("verdict") not in VERDICTS or "max_seconds" not in _sc["expect"]:
            raise ValueError(f"{_sc['_file']}: {_sc['name']}: expect needs a documented "
                             f"verdict and max_seconds")
except (OSError, ValueError, KeyError, TypeError, RuntimeError) as _e:
    SCENARIOS = []
    _register_broken(f"{type(_e).__name__}: {_e}")
for _sc in SCENARIOS:
    _register(_sc)
