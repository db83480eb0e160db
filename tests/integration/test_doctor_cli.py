"""smtpkit doctor and smtpkit setup, the command-line side.

The verdicts themselves are covered one by one in test_doctor_scenarios.py;
here: the human output (stage list, port table, verdict block, colour only
on a terminal), the --json shape, exit statuses that follow the verdict,
Chinese through --lang zh and through a zh_CN locale, and the setup wizard
driven through a pipe against aiosmtpd with AUTH: it writes an account
(mode 0600) that `smtpkit send --account` then uses, and writes nothing
when the doctor fails unless the user insists.

Everything talks to 127.0.0.1 only: a bare --host 127.0.0.1 with --port
and --tls given, so the doctor probes just that server.
"""

import json
import os
import pty
import re
import select
import signal
import stat
import subprocess
import time

from harness import Fail, test
from servers import AioServer, closed_port

USER = "alice@example.org"
TO = "rcpt@example.com"
PW_ENV = "SMTPKIT_TEST_PASSWORD"

STAGES = ["local", "dns", "tcp", "greeting", "tls", "ehlo", "auth", "mail", "data"]
STATUSES = {"ok", "warn", "fail", "skip"}
PORT_STATES = {"untried", "connected", "refused", "timeout", "unreachable", "reset"}
PORT_MODES = {"unknown", "plain", "implicit", "silent"}

# The README's table: verdict code -> exit status.
EXIT = {
    "OK": 0,
    "DNS_NO_SUCH_HOST": 68,
    "DNS_NO_ANSWER": 75, "TCP_TIMEOUT": 75, "PORT_BLOCKED": 75, "IPV6_BROKEN": 75,
    "NO_GREETING": 75, "RATE_LIMITED": 75, "QUOTA_EXCEEDED": 75, "SERVER_TEMPORARY": 75,
    "TCP_REFUSED": 69, "TCP_UNREACHABLE": 69, "GREETING_REFUSED": 69,
    "RECIPIENT_REJECTED": 69, "SERVER_PERMANENT": 69, "SMTPUTF8_UNSUPPORTED": 69,
    "TLS_MODE_MISMATCH": 76, "TLS_HANDSHAKE": 76, "PROTOCOL_ERROR": 76,
    "TLS_CERT_UNTRUSTED": 77, "TLS_CERT_EXPIRED": 77, "TLS_CERT_NOT_YET_VALID": 77,
    "TLS_HOSTNAME_MISMATCH": 77, "AUTH_CREDENTIALS": 77, "AUTH_APP_PASSWORD_REQUIRED": 77,
    "AUTH_SERVICE_DISABLED": 77, "AUTH_BASIC_DISABLED": 77, "AUTH_TOO_MANY_ATTEMPTS": 77,
    "SENDER_MISMATCH": 77, "SENDER_UNVERIFIED": 77, "RELAY_DENIED": 77,
    "STARTTLS_UNAVAILABLE": 78, "TLS_VERSION": 78, "CLOCK_SKEW": 78, "CA_STORE_MISSING": 78,
    "AUTH_NOT_OFFERED": 78, "AUTH_MECH_UNSUPPORTED": 78,
    "MESSAGE_REJECTED_SPAM": 65,
    "OAUTH_TOKEN_EXPIRED": 77, "OAUTH_REVOKED": 77, "OAUTH_CLIENT_MISSING": 78,
}

CJK = re.compile(r"[\u4e00-\u9fff]")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def need_doctor(t):
    r = t.smtpkit("doctor", "--help")
    if r.rc != 0:
        raise Fail(f"smtpkit doctor --help failed: {r.describe()}")


def _password(t, suffix=""):
    return t.secret("D0ct0r-" + os.urandom(6).hex() + suffix, user=USER)


def _server(t, pw, **kw):
    kw.setdefault("tls", "starttls")
    return AioServer(t, users={USER: pw}, auth_required=True, **kw)


def _doctor(t, srv, pw, *extra, env=None, from_=True):
    """doctor against srv with the password in an environment variable."""
    args = ["doctor", "--host", "127.0.0.1", "--port", str(srv.port),
            "--tls", "starttls", "--ca-file", t.certs().ca, "--timeout", "10",
            "--user", USER, "--password-env", PW_ENV]
    if from_:
        args += ["--from", USER]
    run_env = {PW_ENV: pw}
    if env:
        run_env.update(env)
    return t.smtpkit(*args, *extra, env=run_env, timeout=60)


def _json(t, r):
    try:
        doc = json.loads(r.out)
    except ValueError as e:
        t.fail(f"--json output does not parse ({e}): {r.describe()}")
    t.check(isinstance(doc, dict), f"--json output is not an object: {r.out[:200]!r}")
    return doc


def _check_shape(t, doc):
    keys = set(doc)
    t.check({"verdict", "stages", "ports", "suggested"} <= keys,
            f"--json top-level keys {sorted(keys)} lack some of verdict, stages, ports, suggested")
    t.check(keys <= {"verdict", "stages", "ports", "suggested", "tls", "capabilities"},
            f"--json has unexpected top-level keys: {sorted(keys)}")
    v = doc["verdict"]
    t.check(isinstance(v, dict) and set(v) == {"code", "summary", "fix"},
            f"verdict must be exactly {{code, summary, fix}}: {v!r}")
    t.check(v["code"] in EXIT, f"unknown verdict code {v['code']!r}")
    t.check(isinstance(v["summary"], str) and v["summary"],
            f"verdict.summary is empty: {v!r}")
    t.check(isinstance(v["fix"], list) and all(isinstance(s, str) for s in v["fix"]),
            f"verdict.fix is not a list of strings: {v['fix']!r}")
    st = doc["stages"]
    t.check(isinstance(st, list) and [s.get("name") for s in st] == STAGES,
            f"stages must be {STAGES} in order: {[s.get('name') for s in st]}")
    for s in st:
        t.check(set(s) == {"name", "status", "ms", "detail", "evidence"},
                f"stage keys must be exactly name, status, ms, detail, evidence: {sorted(s)}")
        t.check(s["status"] in STATUSES, f"stage {s['name']}: status {s['status']!r}")
        t.check(isinstance(s["ms"], (int, float)) and s["ms"] >= 0,
                f"stage {s['name']}: ms {s['ms']!r}")
        t.check(isinstance(s["detail"], str), f"stage {s['name']}: detail {s['detail']!r}")
        t.check(isinstance(s["evidence"], list) and
                all(isinstance(e, str) for e in s["evidence"]),
                f"stage {s['name']}: evidence {s['evidence']!r}")
    for p in doc["ports"]:
        t.check(set(p) == {"port", "address", "mode", "status", "ms"},
                f"port keys must be exactly port, address, mode, status, ms: {sorted(p)}")
        t.check(p["status"] in PORT_STATES, f"port status {p['status']!r}")
        t.check(p["mode"] in PORT_MODES, f"port mode {p['mode']!r}")
        t.check(isinstance(p["port"], int) and isinstance(p["address"], str),
                f"port entry {p!r}")
    t.check(isinstance(doc["suggested"], dict), f"suggested is not an object: {doc['suggested']!r}")


def _expect_verdict_exit(t, r, code):
    t.check(EXIT.get(code) == r.rc,
            f"verdict {code} should exit {EXIT.get(code)}, got {r.describe()}")


# ---------------------------------------------------------------------------
# doctor


@test()
def doctor_cli_human_ok(t):
    """Human output: one line per stage with its mark, the port table, the
    verdict block; evidence with -v; no colour when stdout is not a tty."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    r = _doctor(t, srv, pw, "-v")
    t.expect_rc(r, 0)
    lines = r.out.splitlines()
    for name in STAGES:
        pat = re.compile(r"^\s+[\u2713\u2717!-] " + name + r"\b")
        t.check(any(pat.match(ln) for ln in lines),
                f"no stage line for {name!r} (mark, name, ms, detail): {r.out[:1500]!r}")
    # tcp may warn: the doctor also tries the usual ports, closed here.
    for name in ("local", "dns", "tcp", "greeting", "tls", "ehlo", "auth", "mail"):
        mark = "[\u2713!]" if name == "tcp" else "\u2713"
        t.check(any(re.match(r"^\s+" + mark + " " + name + r"\s+\d+ ms", ln) for ln in lines),
                f"stage {name} should pass with a duration: {r.out[:1500]!r}")
    t.check(any(re.match(r"^\s+- data\b", ln) for ln in lines),
            "the data stage must be skipped without --send")
    t.check(re.search(r"^\s+address\s+port\s+state\s+mode\s+ms\s*$", r.out, re.M),
            f"no port table header: {r.out[:1500]!r}")
    t.check(re.search(r"^\s+127\.0\.0\.1:%d\s+%d\s+connected\b" % (srv.port, srv.port),
                      r.out, re.M), f"no port table row for {srv.port}: {r.out[:1500]!r}")
    t.check(re.search(r"^Verdict: OK$", r.out, re.M), f"no 'Verdict: OK' line: {r.out[-800:]!r}")
    t.check(re.search(r"^\s+\|.*220", r.out, re.M),
            f"-v shows no evidence line with the server's 220: {r.out[:2000]!r}")
    t.check(not ANSI.search(r.out), "colour escapes in output that is not a terminal")


@test()
def doctor_cli_json_shape(t):
    """--json: exactly the documented shape, and it parses."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    r = _doctor(t, srv, pw, "--json")
    t.expect_rc(r, 0)
    doc = _json(t, r)
    _check_shape(t, doc)
    t.check(doc["verdict"]["code"] == "OK", f"verdict {doc['verdict']} (expected OK)")
    st = {s["name"]: s for s in doc["stages"]}
    t.check(st["auth"]["status"] == "ok" and st["mail"]["status"] == "ok",
            f"auth / mail did not pass: {st['auth']} {st['mail']}")
    t.check(st["data"]["status"] == "skip", f"data ran without --send: {st['data']}")
    t.check(any(p["port"] == srv.port and p["status"] == "connected" and p["mode"] == "plain"
                for p in doc["ports"]),
            f"port {srv.port} is not listed as connected / plain: {doc['ports']}")
    if "tls" in doc:
        t.check(doc["tls"].get("version") in ("TLSv1.2", "TLSv1.3"),
                f"tls.version {doc['tls'].get('version')!r}")
    if "capabilities" in doc:
        t.check("PLAIN" in doc["capabilities"].get("auth", []),
                f"capabilities.auth lacks PLAIN: {doc['capabilities']}")
    srv.sync()
    t.check(not srv.messages, "the doctor sent a message without --send")


@test()
def doctor_cli_json_send(t):
    """--to with --send: the data stage runs and the message arrives."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    r = _doctor(t, srv, pw, "--json", "--to", TO, "--send")
    t.expect_rc(r, 0)
    doc = _json(t, r)
    _check_shape(t, doc)
    st = {s["name"]: s for s in doc["stages"]}
    t.check(st["data"]["status"] == "ok", f"data stage: {st['data']}")
    srv.sync()
    t.check(len(srv.messages) == 1 and srv.messages[0].rcpt_tos == [TO],
            f"the server received {[m.rcpt_tos for m in srv.messages]}")


@test()
def doctor_cli_exit_codes(t):
    """Exit status follows the verdict: OK 0, bad credentials 77, a refused
    port 69 (or whatever the README's table says for the verdict given);
    usage errors 64."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    r = _doctor(t, srv, pw + "-wrong", "--json")
    doc = _json(t, r)
    code = doc["verdict"]["code"]
    t.check(code == "AUTH_CREDENTIALS", f"a wrong password gave {code}: {r.out[:600]!r}")
    _expect_verdict_exit(t, r, code)
    t.check(doc["verdict"]["fix"], "no fix steps for AUTH_CREDENTIALS")

    port = closed_port(t)
    r = t.smtpkit("doctor", "--json", "--host", "127.0.0.1", "--port", str(port),
                  "--tls", "starttls", "--timeout", "5", timeout=60)
    doc = _json(t, r)
    _check_shape(t, doc)
    code = doc["verdict"]["code"]
    t.check(code == "TCP_REFUSED", f"a refused port gave {code}")
    _expect_verdict_exit(t, r, code)

    for bad in (["--port", "0"], ["--tls", "sometimes"], ["--lang", "fr"],
                ["--account", "a", "--host", "h"], ["--bogus"]):
        r = t.smtpkit("doctor", "--host", "127.0.0.1", *bad)
        t.expect_rc(r, 64)
        t.expect_err(r, r"doctor")


@test()
def doctor_cli_account(t):
    """--account NAME takes host, port, tls, user, from, password-file and
    ca-file from the configuration file."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    pwfile = t.file("pw", pw + "\n")
    cfg = t.file("config", (
        "[account work]\n"
        "host = 127.0.0.1\n"
        f"port = {srv.port}\n"
        "tls = starttls\n"
        f"user = {USER}\n"
        f"from = {USER}\n"
        f"password-file = {pwfile}\n"
        f"ca-file = {t.certs().ca}\n"))
    r = t.smtpkit("doctor", "--config", cfg, "--account", "work", "--json", timeout=60)
    t.expect_rc(r, 0)
    doc = _json(t, r)
    t.check(doc["verdict"]["code"] == "OK", f"verdict {doc['verdict']}")
    r = t.smtpkit("doctor", "--config", cfg, "--account", "nosuch")
    t.expect_rc(r, 78)
    t.expect_err(r, r"nosuch")


def _zh_summary(t, r):
    doc = _json(t, r)
    return doc["verdict"]["summary"] + " " + " ".join(doc["verdict"]["fix"])


@test()
def doctor_cli_lang_zh(t):
    """--lang zh gives the verdict in Chinese (even under LANG=C), the
    English run has none; the human output's labels are translated too."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    wrong = pw + "-wrong"
    en = _doctor(t, srv, wrong, "--json")
    t.check(not CJK.search(_zh_summary(t, en)), f"Chinese in the English verdict: {en.out[:400]!r}")
    for env in ({"LANG": "C", "LC_ALL": ""}, {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}):
        zh = _doctor(t, srv, wrong, "--json", "--lang", "zh", env=env)
        _expect_verdict_exit(t, zh, "AUTH_CREDENTIALS")
        text = _zh_summary(t, zh)
        t.check(CJK.search(text), f"--lang zh ({env}) verdict is not in Chinese: {text[:300]!r}")
    human = _doctor(t, srv, wrong, "--lang", "zh", env={"LANG": "C", "LC_ALL": ""})
    t.check("诊断结论：AUTH_CREDENTIALS" in human.out,
            f"no translated verdict line: {human.out[-800:]!r}")
    t.check(re.search(r"^\s+\u2717 认证", human.out, re.M),
            f"no translated, failed auth stage line: {human.out[:1200]!r}")
    # --lang en wins over a Chinese environment.
    en2 = _doctor(t, srv, wrong, "--json", "--lang", "en",
                  env={"LANG": "zh_CN.UTF-8", "LC_ALL": ""})
    t.check(not CJK.search(_zh_summary(t, en2)), "--lang en still printed Chinese")


def _zh_locale_installed():
    try:
        out = subprocess.run(["locale", "-a"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=10).stdout.decode()
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(ln.lower().replace("-", "").startswith("zh_cn.utf8") for ln in out.split())


@test()
def doctor_cli_zh_locale(t):
    """LANG=zh_CN.UTF-8 (and LC_MESSAGES, LC_ALL) select Chinese without
    --lang, whether or not the zh_CN locale is installed (when it is not,
    smtpkit falls back to C.UTF-8 + LANGUAGE=zh_CN)."""
    need_doctor(t)
    t.note("zh_CN.UTF-8 locale " + ("installed" if _zh_locale_installed() else
                                    "not installed: the C.UTF-8 route"))
    pw = _password(t)
    srv = _server(t, pw)
    wrong = pw + "-wrong"
    for env in ({"LANG": "zh_CN.UTF-8", "LC_ALL": ""},
                {"LANG": "C", "LC_ALL": "", "LC_MESSAGES": "zh_CN.UTF-8"},
                {"LC_ALL": "zh_CN.UTF-8"}):
        r = _doctor(t, srv, wrong, "--json", env=env)
        text = _zh_summary(t, r)
        t.check(CJK.search(text), f"{env}: the verdict is not in Chinese: {text[:300]!r}")


def _run_pty(t, argv, env, timeout=60):
    """Run with stdout on a pseudo-terminal; returns (rc, output)."""
    master, slave = pty.openpty()
    full_env = {"PATH": "/usr/bin:/bin", "HOME": t.home,
                "XDG_CONFIG_HOME": os.path.join(t.home, ".config"),
                "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            full_env[k] = os.environ[k]
    full_env.update(env)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.PIPE, env=full_env, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + t.timeout(timeout)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        else:
            os.killpg(p.pid, signal.SIGKILL)
            t.fail(f"smtpkit did not finish within {timeout}s on a terminal")
        rc = p.wait(10)
        err = p.stderr.read().decode("utf-8", "replace")
    finally:
        os.close(master)
        p.stderr.close()
    t.check("Sanitizer" not in err and "runtime error:" not in err,
            f"sanitizer report: {err[-1000:]}")
    return rc, out.decode("utf-8", "replace")


@test()
def doctor_cli_colour_on_terminal(t):
    """Colour on a terminal; none with NO_COLOR set."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    argv = [t.cfg.binary, "doctor", "--host", "127.0.0.1", "--port", str(srv.port),
            "--tls", "starttls", "--ca-file", t.certs().ca, "--user", USER,
            "--password-env", PW_ENV]
    rc, out = _run_pty(t, argv, {PW_ENV: pw})
    t.check(rc == 0, f"exit {rc}: {out[-500:]!r}")
    t.check(ANSI.search(out), f"no colour on a terminal: {out[:300]!r}")
    t.check(pw not in out, "the password appeared on the terminal")
    rc, out = _run_pty(t, argv, {PW_ENV: pw, "NO_COLOR": "1"})
    t.check(rc == 0 and not ANSI.search(out), f"colour despite NO_COLOR: {out[:300]!r}")


# ---------------------------------------------------------------------------
# setup


def _config_path(t):
    return os.path.join(t.home, ".config", "smtpkit", "config")


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _setup_flags(t, srv, *extra):
    return ["setup", "--host", "127.0.0.1", "--port", str(srv.port), "--tls", "starttls",
            "--ca-file", t.certs().ca, "--timeout", "10", *extra]


def _send_with_account(t, srv, *account_args):
    r = t.smtpkit("send", *account_args, "--to", TO, "--subject", "via setup",
                  "--text", "hello\n", timeout=60)
    t.expect_rc(r, 0)
    srv.sync()
    msgs = srv.messages
    t.check(len(msgs) == 1, f"the server received {len(msgs)} messages, expected 1")
    t.check(msgs[0].login == USER and msgs[0].mail_from == USER,
            f"sent as login {msgs[0].login!r} from {msgs[0].mail_from!r}")


@test()
def setup_writes_account_password_file(t):
    """Driven through a pipe with --host/--port/--tls: the doctor passes, the
    account goes into ~/.config/smtpkit/config (0600), the secret into a
    0600 password file beside it, and `smtpkit send --account` works."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    # address, login (default: the address), secret, storage (1: file),
    # password file (default)
    answers = f"{USER}\n\n{pw}\n\n\n"
    r = t.smtpkit(*_setup_flags(t, srv, "--account", "work"), stdin=answers, timeout=60)
    t.expect_rc(r, 0)
    t.check("Verdict: OK" in r.out, f"the doctor's verdict was not shown: {r.out[-800:]!r}")
    path = _config_path(t)
    t.check(os.path.isfile(path), f"no config file at {path}: {r.describe()}")
    t.check(_mode(path) == 0o600, f"config mode {_mode(path):o}, expected 600")
    text = open(path).read()
    t.check("[account work]" in text, f"no [account work] section: {text!r}")
    t.check(pw not in text, "the secret went into the config file, not the password file")
    m = re.search(r"^password-file\s*=\s*(\S+)", text, re.M)
    t.check(m, f"no password-file in the account: {text!r}")
    pwfile = m.group(1).replace("~", t.home, 1)
    t.check(os.path.dirname(pwfile) == os.path.dirname(path),
            f"the password file {pwfile} is not under ~/.config/smtpkit")
    t.check(_mode(pwfile) == 0o600, f"password file mode {_mode(pwfile):o}, expected 600")
    t.check(open(pwfile).read().strip() == pw, "the password file does not hold the secret")
    _send_with_account(t, srv, "--account", "work")


@test()
def setup_custom_server_from_menu(t):
    """No --host: an unknown domain leads to the provider list, '0' chooses
    another server, whose host, port and TLS mode are asked; the secret is
    kept in the config file; the first account is named 'default' and send
    finds it without --account."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    answers = "\n".join([USER, "0", "127.0.0.1", str(srv.port), "starttls", "", pw,
                         "", "2", ""])
    r = t.smtpkit("setup", "--ca-file", t.certs().ca, "--timeout", "10",
                  stdin=answers, timeout=60)
    t.expect_rc(r, 0)
    t.check(re.search(r"^\s+0\) custom", r.out, re.M), f"no 'custom' choice listed: {r.out[:800]!r}")
    path = _config_path(t)
    t.check(os.path.isfile(path) and _mode(path) == 0o600,
            f"no config file with mode 600 at {path}: {r.describe()}")
    text = open(path).read()
    t.check("[account default]" in text, f"the first account is not 'default': {text!r}")
    t.check(re.search(r"^password\s*=", text, re.M), f"the secret is not in the config: {text!r}")
    t.check(re.search(r"^port\s*=\s*%d$" % srv.port, text, re.M), f"port missing: {text!r}")
    _send_with_account(t, srv, "--from", USER)


@test()
def setup_password_env(t):
    """Choice 3 keeps only the variable's name; send then reads it."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    # address, login, secret, storage 3, the variable's name
    answers = f"{USER}\n\n{pw}\n3\nMY_SMTP_SECRET\n"
    r = t.smtpkit(*_setup_flags(t, srv, "--account", "envy"), stdin=answers, timeout=60)
    t.expect_rc(r, 0)
    text = open(_config_path(t)).read()
    t.check(re.search(r"^password-env\s*=\s*MY_SMTP_SECRET$", text, re.M),
            f"no password-env line: {text!r}")
    t.check(pw not in text, "the secret was written although an env variable was chosen")
    t.check("export MY_SMTP_SECRET=" in r.out, "no reminder to export the variable")
    r = t.smtpkit("send", "--account", "envy", "--to", TO, "--subject", "s", "--text", "x\n",
                  env={"MY_SMTP_SECRET": pw}, timeout=60)
    t.expect_rc(r, 0)


@test()
def setup_failing_doctor_writes_nothing(t):
    """A wrong secret: the doctor fails, the wizard says so and asks; the
    default answer (no) saves nothing and exits with the verdict's status."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    wrong = t.secret(pw + "-wrong", user=USER)
    answers = f"{USER}\n\n{wrong}\n\n"
    r = t.smtpkit(*_setup_flags(t, srv, "--account", "work"), stdin=answers, timeout=60)
    t.expect_rc(r, 77)
    t.check("AUTH_CREDENTIALS" in r.out, f"the failure was not named: {r.out[-800:]!r}")
    t.check(re.search(r"save the account anyway", r.out, re.I), "the user was not asked")
    cfgdir = os.path.dirname(_config_path(t))
    t.check(not os.path.exists(_config_path(t)), "a config file was written")
    t.check(not os.path.isdir(cfgdir) or not os.listdir(cfgdir),
            f"files were written: {os.listdir(cfgdir) if os.path.isdir(cfgdir) else []}")


@test()
def setup_failing_doctor_insisted(t):
    """... and when the user insists, the account is written after all."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    wrong = t.secret(pw + "-wrong", user=USER)
    answers = f"{USER}\n\n{wrong}\ny\n\n\n"
    r = t.smtpkit(*_setup_flags(t, srv, "--account", "later"), stdin=answers, timeout=60)
    t.expect_rc(r, 0)
    path = _config_path(t)
    t.check(os.path.isfile(path) and _mode(path) == 0o600, f"no 0600 config: {r.describe()}")
    t.check("[account later]" in open(path).read(), "the account was not written")


@test()
def setup_input_ends_early(t):
    """Answers that stop short: nothing is written, exit 66, a clear message."""
    need_doctor(t)
    r = t.smtpkit("setup", "--host", "127.0.0.1", "--port", "1", stdin=f"{USER}\n")
    t.expect_rc(r, 66)
    t.expect_err(r, r"answers ended|nothing was saved")
    t.check(not os.path.exists(_config_path(t)), "a config file was written")


@test()
def setup_zh(t):
    """--lang zh: the wizard's questions are in Chinese."""
    need_doctor(t)
    pw = _password(t)
    srv = _server(t, pw)
    wrong = t.secret(pw + "-wrong", user=USER)
    r = t.smtpkit(*_setup_flags(t, srv, "--lang", "zh"), stdin=f"{USER}\n\n{wrong}\nn\n",
                  env={"LANG": "C", "LC_ALL": ""}, timeout=60)
    t.expect_rc(r, 77)
    t.check("你的邮箱地址" in r.out and "没有保存任何内容" in r.out,
            f"the wizard did not speak Chinese: {r.out[:600]!r}")


@test()
def setup_usage_errors(t):
    """Bad flags stop setup before any question: exit 64, nothing written;
    a secret is never taken from the command line."""
    need_doctor(t)
    for bad in (["--provider", "no-such-provider"], ["--port", "70000"],
                ["--tls", "maybe"], ["--account", "bad name"], ["s3cret"]):
        r = t.smtpkit("setup", *bad, stdin=f"{USER}\n")
        t.expect_rc(r, 64)
        t.expect_err(r, r"setup")
        t.check("email address" not in r.out, f"setup asked questions despite {bad}")
    t.check(not os.path.exists(_config_path(t)), "a config file was written")


@test()
def i18n_zh_cn_catalog_complete(t):
    """po/zh_CN.po translates every message of po/POTFILES (none missing,
    none fuzzy) and passes msgfmt --check."""
    tools = {n: os.path.join("/usr/bin", n) for n in ("xgettext", "msgmerge", "msgfmt")}
    for name, path in tools.items():
        if not os.access(path, os.X_OK):
            t.skip(f"{name} is not installed (gettext package)")
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    po = os.path.join(top, "po", "zh_CN.po")
    pot = os.path.join(t.tmp, "smtpkit.pot")
    merged = os.path.join(t.tmp, "zh_CN.po")

    def run(argv):
        p = subprocess.run(argv, cwd=top, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=t.timeout(60))
        t.check(p.returncode == 0, f"{' '.join(argv)}: {p.stderr.decode()[-600:]}")
        return p.stderr.decode()

    run([tools["xgettext"], "--keyword=_", "--keyword=N_", "--from-code=UTF-8",
         "-D", top, "-f", os.path.join(top, "po", "POTFILES"), "-o", pot])
    run([tools["msgmerge"], "--quiet", "--no-fuzzy-matching", "-o", merged, po, pot])
    stats = run([tools["msgfmt"], "--check", "--statistics", "-o", os.devnull, merged])
    t.check(re.match(r"^\d+ translated messages\.\s*$", stats),
            f"po/zh_CN.po is not complete for the current sources: {stats.strip()}")
