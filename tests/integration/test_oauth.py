"""OAuth2: smtpkit oauth login (device flow, PKCE with a loopback redirect),
status, logout, and send with XOAUTH2 / OAUTHBEARER tokens that it refreshes.

The provider is played by oauthserver.OAuthServer (HTTP on 127.0.0.1: device
authorization, authorization and token endpoints, scripted answers, every
request recorded with its time) and the SMTP side by oauthserver.OAuthSMTP
(aiosmtpd accepting only the access tokens the authorization server holds
valid).  Accounts point the provider's endpoints at the local server with
oauth-device-endpoint / oauth-auth-endpoint / oauth-token-endpoint; all three
are always set, so no flow can fall back to a real provider.  As a second
guard every run has http(s)_proxy pointing at a local trap (NO_PROXY for the
loopback addresses): a request to any other host lands in the trap and fails
the test.

Every issued token is registered as a secret the moment it is issued: the
harness fails a test if one shows up in smtpkit's argv, stdout or stderr.
Tokens live in $XDG_STATE_HOME/smtpkit/tokens/ (XDG_STATE_HOME set per test).
Timing assertions measure what the server recorded; the tests never sleep.
"""

import json
import os
import re
import stat
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from common import parse_msg
from harness import Fail, test
from oauthserver import OAuthServer, OAuthSMTP, ProxyTrap
from servers import HOST, closed_port

USER = "alice@outlook.com"
GUSER = "alice@gmail.com"
TO = "rcpt@example.com"
CLIENT_ID = "00000000-1111-2222-3333-444444444444"
GCLIENT_ID = "123456789012-abcdefghijklmnop.apps.googleusercontent.com"

OUTLOOK_SCOPE = {"https://outlook.office.com/SMTP.Send", "offline_access"}
GMAIL_SCOPE = {"https://mail.google.com/"}

DEVICE_LINE = re.compile(r"^To sign in, open (\S+) and enter the code (\S+?)\.?\s*$", re.M)
PKCE_LINE = re.compile(r"^Open this URL in a browser: (\S+)\s*$", re.M)
LOGIN_HINT = r"smtpkit oauth login"

TOL = 0.05  # seconds of clock slack when comparing polling gaps


# ---------------------------------------------------------------------------
# is the feature there?

_built = {}
_built_lock = threading.Lock()


def _need_oauth(t):
    """Skip until 'smtpkit oauth' is a command of this binary."""
    with _built_lock:
        if t.cfg.binary not in _built:
            r = t.smtpkit("oauth", "--help", env=_base_env(t))
            text = r.out + r.err
            _built[t.cfg.binary] = not (
                re.search(r"unknown command", text, re.I)
                or not re.search(r"\blogin\b", text))
        ok = _built[t.cfg.binary]
    if not ok:
        t.fail("`smtpkit oauth --help` does not offer login")


# ---------------------------------------------------------------------------
# environment, configuration, files

def _state_home(t):
    return os.path.join(t.home, ".local", "state")


def _tokens_dir(t):
    return os.path.join(_state_home(t), "smtpkit", "tokens")


def _base_env(t):
    return {"XDG_STATE_HOME": _state_home(t), "BROWSER": "/bin/true"}


def _trap(t):
    """The test's oauthserver.ProxyTrap (one per test); at the end the test
    fails if anything reached it."""
    trap = getattr(t, "_oauth_trap", None)
    if trap is None:
        trap = t._oauth_trap = ProxyTrap(t)

        def check():
            trap.stop()
            if trap.seen:
                raise Fail(f"smtpkit tried to reach a non-loopback host: {trap.seen[:3]}")
        t.defer(check)
    return trap


def _env(t, **extra):
    trap = _trap(t)
    proxy = f"http://{HOST}:{trap.port}"
    env = _base_env(t)
    env.update({
        "http_proxy": proxy, "https_proxy": proxy, "HTTPS_PROXY": proxy,
        "all_proxy": proxy, "ALL_PROXY": proxy,
        "no_proxy": "127.0.0.1,localhost,::1", "NO_PROXY": "127.0.0.1,localhost,::1",
    })
    env.update(extra)
    return env


def _write_config(t, text):
    d = os.path.join(t.home, ".config", "smtpkit")
    os.makedirs(d, mode=0o700, exist_ok=True)
    path = os.path.join(d, "config")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def _account(t, name, oauth, *, provider="outlook", srv=None, user=USER, auth="XOAUTH2",
             client_id=CLIENT_ID, client_secret=None, scope=None, extra=""):
    port = srv.port if srv is not None else closed_port(t)
    lines = [f"[account {name}]", f"provider = {provider}", f"host = {HOST}",
             f"port = {port}", "tls = starttls", f"user = {user}", f"from = {user}",
             f"auth = {auth}", "timeout = 20"]
    if srv is not None:
        lines.append(f"ca-file = {t.certs().ca}")
    if client_id:
        lines.append(f"oauth-client-id = {client_id}")
    if client_secret:
        lines.append(f"oauth-client-secret = {client_secret}")
    lines += [f"oauth-device-endpoint = {oauth.device_endpoint}",
              f"oauth-auth-endpoint = {oauth.auth_endpoint}",
              f"oauth-token-endpoint = {oauth.token_endpoint}"]
    if scope:
        lines.append(f"oauth-scope = {scope}")
    return "\n".join(lines) + "\n" + extra + "\n"


def _token_files(t):
    """Every regular file under the tokens directory: {path: bytes}."""
    out = {}
    d = _tokens_dir(t)
    for root, _, files in os.walk(d):
        for fn in files:
            p = os.path.join(root, fn)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    out[p] = f.read()
    return out


def _stored(t, token):
    return any(token.encode() in data for data in _token_files(t).values())


def _check_token_storage(t, *tokens):
    """The tokens are in files of mode 0600 in a directory of mode 0700 under
    $XDG_STATE_HOME/smtpkit/tokens, and nowhere else under HOME."""
    d = _tokens_dir(t)
    t.check(os.path.isdir(d), f"no token directory {d}")
    st = os.lstat(d)
    t.check(stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700,
            f"token directory mode is {stat.S_IMODE(st.st_mode):o}, expected 700")
    files = _token_files(t)
    for tok in tokens:
        holders = [p for p, data in files.items() if tok.encode() in data]
        t.check(holders, "a token is not stored in any file under the token directory")
        for p in holders:
            m = stat.S_IMODE(os.lstat(p).st_mode)
            t.check(m == 0o600, f"token file {os.path.relpath(p, t.home)} has mode {m:o}, "
                    f"expected 600")
    for p, data in files.items():  # any other non-empty file (a temporary one...)
        m = stat.S_IMODE(os.lstat(p).st_mode)
        t.check(not data or m & 0o077 == 0, f"{os.path.relpath(p, t.home)} in the token "
                f"directory has mode {m:o} (group/other access)")
    # nowhere else: not in the config file, not in a stray temp file
    for root, _, fns in os.walk(t.home):
        if os.path.abspath(root).startswith(os.path.abspath(d)):
            continue
        for fn in fns:
            p = os.path.join(root, fn)
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            with open(p, "rb") as f:
                data = f.read()
            for tok in tokens:
                t.check(tok.encode() not in data,
                        f"a token is stored outside the token directory: "
                        f"{os.path.relpath(p, t.home)}")


# ---------------------------------------------------------------------------
# running smtpkit in the background, reading its stdout as it comes

class Background:
    """t.smtpkit(*args) in a thread (all the harness checks apply); its
    stdout file can be watched while it runs.  Only one smtpkit may start at
    a time in a test (the file name comes from the harness's run counter)."""

    def __init__(self, t, *args, env=None, timeout=60):
        self.t = t
        seq = t._seq
        self.out_path = os.path.join(t.tmp, f"run{seq + 1}.out")
        self.box = {}
        self.limit = t.timeout(timeout) + 20

        def run():
            try:
                self.box["r"] = t.smtpkit(*args, env=env, timeout=timeout)
            except BaseException as e:  # noqa: BLE001 - re-raised in result()
                self.box["e"] = e

        self.th = threading.Thread(target=run, name="smtpkit-bg", daemon=True)
        self.th.start()
        # the harness has counted this run once its output file exists
        deadline = time.monotonic() + 10
        while t._seq == seq and self.th.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)  # bounded: the run counter moves within microseconds

    def stdout(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_line(self, regex, timeout):
        """The first match of regex in stdout, or None when smtpkit ended or
        the deadline passed without one."""
        deadline = time.monotonic() + self.t.timeout(timeout)
        while True:
            m = regex.search(self.stdout())
            if m:
                return m
            if not self.th.is_alive() or time.monotonic() > deadline:
                m = regex.search(self.stdout())
                return m
            time.sleep(0.02)  # bounded poll of smtpkit's stdout file

    def done(self, timeout):
        self.th.join(timeout)
        return not self.th.is_alive()

    def result(self):
        self.th.join(self.limit)
        if self.th.is_alive():
            raise Fail("the background smtpkit run did not finish")
        if "e" in self.box:
            raise self.box["e"]
        return self.box["r"]


def _describe_bg(bg):
    if bg.done(0):
        try:
            return bg.result().describe()
        except Fail as e:
            return str(e)
    return f"still running; stdout so far: {bg.stdout()[-300:]!r}"


# ---------------------------------------------------------------------------
# the browser, played by urllib (loopback only, no proxies)

def _is_loopback_url(url):
    u = urllib.parse.urlsplit(url)
    return u.scheme == "http" and u.hostname in ("127.0.0.1", "::1")


class _LoopbackOnly(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not _is_loopback_url(newurl):
            raise Fail(f"redirect to a non-loopback URL: {newurl}")
        self.followed = getattr(self, "followed", []) + [newurl]
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _browse(t, url, follow=True):
    """GET url like a browser; returns (status, final url, body, followed)."""
    if not _is_loopback_url(url):
        t.fail(f"refusing to open a non-loopback URL: {url}")
    redir = _LoopbackOnly()
    handlers = [urllib.request.ProxyHandler({})]
    if follow:
        handlers.append(redir)
    else:
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        handlers.append(NoRedirect())
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=t.timeout(15)) as resp:
            return resp.status, resp.geturl(), resp.read(), getattr(redir, "followed", [])
    except urllib.error.HTTPError as e:
        return e.code, e.geturl(), e.read(), getattr(redir, "followed", [])
    except (urllib.error.URLError, OSError) as e:
        t.fail(f"browser request to {url} failed: {e}")


def _loopback_listeners(port):
    """Local addresses of listening TCP sockets on port: ['127.0.0.1', ...]."""
    out = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) < 4 or cols[3] != "0A":
                continue
            addr, p = cols[1].rsplit(":", 1)
            if int(p, 16) != port:
                continue
            if not v6:
                out.append(".".join(str(b) for b in reversed(bytes.fromhex(addr))))
            else:
                out.append("::1" if addr == "00000000000000000000000001000000"
                           else ("::" if set(addr) == {"0"} else addr))
    return out


# ---------------------------------------------------------------------------
# common steps

def _oauth(t, **kw):
    kw.setdefault("client_id", CLIENT_ID)
    kw.setdefault("user", USER)
    return OAuthServer(t, **kw)


def _login(t, oauth, account="ms"):
    """A device-flow login that the server grants at the first poll."""
    oauth.device_script = ["ok"]
    before = len(oauth.issued)
    r = t.smtpkit("oauth", "login", "--account", account, env=_env(t), timeout=60)
    oauth.check_clean()
    t.expect_rc(r, 0)
    t.check(len(oauth.issued) == before + 1,
            f"login: {len(oauth.issued) - before} tokens issued, expected 1")
    return oauth.last


def _send(t, account, subject, *extra, timeout=40):
    return t.smtpkit("send", "--account", account, "--to", TO, "--subject", subject,
                     "--text", "sent with an OAuth2 token\n", "-v", *extra,
                     env=_env(t), timeout=timeout)


def _delivered(t, srv, subjects, user=USER):
    srv.sync()
    msgs = srv.messages
    got = sorted(str(parse_msg(m.content)["Subject"]) for m in msgs)
    t.check(got == sorted(subjects), f"the server received {got}, expected {sorted(subjects)}")
    for m in msgs:
        t.check(m.login == user, f"a message was sent as {m.login!r}, expected {user}")
        t.check(m.mail_from == user and m.rcpt_tos == [TO],
                f"envelope {m.mail_from!r} -> {m.rcpt_tos}")
        t.check(m.tls is not None, "a message went over plaintext")
    return msgs


def _scope_set(s):
    return set((s or "").split())


def _auth_summary(srv):
    return [(a.mechanism, "ok" if a.success else "refused") for a in srv.token_auths]


# ---------------------------------------------------------------------------
# login: device flow

@test()
def oauth_device_flow_polling(t):
    """RFC 8628: the verification URL and user code on stdout, polling that
    waits `interval` between polls and 5 s more after slow_down (for that and
    every later poll), tokens stored, nothing printed that is secret."""
    _need_oauth(t)
    oauth = _oauth(t, device_interval=1,
                   device_script=["pending", "slow_down", "pending", "ok"])
    _write_config(t, _account(t, "ms", oauth))
    r = t.smtpkit("oauth", "login", "--account", "ms", env=_env(t), timeout=90)
    oauth.check_clean()
    t.expect_rc(r, 0)

    devs = oauth.reqs("/devicecode")
    t.check(len(devs) == 1, f"{len(devs)} device authorization requests, expected 1")
    dev = devs[0]
    t.check(dev.form.get("client_id") == CLIENT_ID, "device request without the client id")
    t.check(_scope_set(dev.form.get("scope")) == OUTLOOK_SCOPE,
            f"device request scope {dev.form.get('scope')!r}, expected the Outlook preset's "
            f"{' '.join(sorted(OUTLOOK_SCOPE))}")
    dc = dev.answer["device_code"]
    t.secret(dc)  # only the user code is for the user's eyes

    m = DEVICE_LINE.search(r.out)
    t.check(m, f"no 'To sign in, open URL and enter the code CODE' line: {r.describe()}")
    t.check(m.group(1) == dev.answer["verification_uri"],
            f"printed URL {m.group(1)!r}, server said {dev.answer['verification_uri']!r}")
    t.check(m.group(2) == dev.answer["user_code"],
            f"printed code {m.group(2)!r}, server said {dev.answer['user_code']!r}")
    t.check(not re.search("[\u2580-\u259f]", r.out),
            "a QR code was printed although stdout is not a terminal")

    polls = oauth.polls()
    t.check(len(polls) == 4, f"{len(polls)} token polls, expected 4 "
            f"(pending, slow_down, pending, ok): {polls}")
    for p in polls:
        t.check(p.form.get("device_code") == dc and p.form.get("client_id") == CLIENT_ID,
                "a poll without the device_code or client_id")
    t.note(f"first poll {polls[0].time - dev.done:.2f}s after the device answer")
    t.check(polls[0].time - dev.done >= -TOL, "polled before the device answer")
    want = [1, 6, 6]  # after pending: interval; after slow_down: +5 s, and it stays
    for i, w in enumerate(want):
        gap = polls[i + 1].time - polls[i].time
        t.note(f"gap {i + 1}: {gap:.2f}s (>= {w}s)")
        t.check(gap >= w - TOL, f"poll {i + 2} came {gap:.2f}s after poll {i + 1}, "
                f"expected at least {w}s (answers: {polls})")
        t.check(gap <= w + t.timeout(2.5), f"poll {i + 2} came {gap:.2f}s after poll "
                f"{i + 1}: far more than the {w}s interval")

    tok = oauth.last
    _check_token_storage(t, tok["access"], tok["refresh"])


@test()
def oauth_device_office365(t):
    """The Microsoft 365 preset uses the device flow with the same scope."""
    _need_oauth(t)
    oauth = _oauth(t)
    _write_config(t, _account(t, "m365", oauth, provider="office365",
                              user="bob@contoso.example"))
    oauth.user = "bob@contoso.example"
    r = t.smtpkit("oauth", "login", "--account", "m365", env=_env(t), timeout=60)
    t.expect_rc(r, 0)
    oauth.check_clean()
    dev = oauth.reqs("/devicecode")
    t.check(len(dev) == 1 and _scope_set(dev[0].form.get("scope")) == OUTLOOK_SCOPE,
            f"device requests {[d.form for d in dev]}")
    t.check(DEVICE_LINE.search(r.out), f"no sign-in line: {r.describe()}")
    t.check(not oauth.reqs("/authorize"), "the authorization endpoint was used")
    _check_token_storage(t, oauth.last["access"])


@test()
def oauth_device_scope_override(t):
    """oauth-scope replaces the preset's scope."""
    _need_oauth(t)
    oauth = _oauth(t)
    scope = "https://outlook.office.com/SMTP.Send offline_access openid"
    _write_config(t, _account(t, "ms", oauth, scope=scope))
    r = t.smtpkit("oauth", "login", "--account", "ms", env=_env(t), timeout=60)
    t.expect_rc(r, 0)
    dev = oauth.reqs("/devicecode")
    t.check(dev and _scope_set(dev[0].form.get("scope")) == _scope_set(scope),
            f"device request scope {dev[0].form.get('scope') if dev else None!r}, "
            f"expected {scope!r}")


@test()
def oauth_device_expired_token(t):
    """The server says expired_token: a clear error, no token stored."""
    _need_oauth(t)
    oauth = _oauth(t, device_script=["pending", "expired_token"])
    _write_config(t, _account(t, "ms", oauth))
    r = t.smtpkit("oauth", "login", "--account", "ms", env=_env(t), timeout=60)
    t.expect_fail(r)
    t.expect_err(r, r"expired", "that the code expired")
    t.check(len(oauth.polls()) == 2, f"{len(oauth.polls())} polls, expected 2 "
            f"(it must stop at expired_token)")
    t.check(not oauth.issued and not _token_files(t), "a token was stored")


@test()
def oauth_device_access_denied(t):
    """The user declined: a clear error, no more polling, no token."""
    _need_oauth(t)
    oauth = _oauth(t, device_script=["access_denied"])
    _write_config(t, _account(t, "ms", oauth))
    r = t.smtpkit("oauth", "login", "--account", "ms", env=_env(t), timeout=60)
    t.expect_fail(r)
    t.expect_err(r, r"denied|declined", "that the sign-in was declined")
    t.check(len(oauth.polls()) == 1, f"{len(oauth.polls())} polls, expected 1")
    t.check(not _token_files(t), "a token file was written")


@test()
def oauth_device_stops_at_expires_in(t):
    """The server never decides: smtpkit stops polling at expires_in by
    itself, with an error."""
    _need_oauth(t)
    oauth = _oauth(t, device_interval=1, device_expires_in=3, device_script=["pending"],
                   enforce_device_expiry=False)
    _write_config(t, _account(t, "ms", oauth))
    r = t.smtpkit("oauth", "login", "--account", "ms", env=_env(t), timeout=60)
    t.expect_fail(r)
    t.expect_err(r, r"expired|timed out|time", "that the code expired")
    dev = oauth.reqs("/devicecode")[0]
    polls = oauth.polls()
    t.check(polls, "no polls at all")
    late = polls[-1].time - dev.done
    t.note(f"{len(polls)} polls, the last {late:.2f}s after the device answer")
    t.check(late <= 3 + 0.5, f"polled {late:.2f}s after the device answer, past "
            f"expires_in (3s)")
    t.check(r.elapsed <= 3 + 1 + t.timeout(3),
            f"smtpkit took {r.elapsed:.1f}s to give up on a code valid for 3s")


@test()
def oauth_missing_client_id(t):
    """No oauth-client-id: exit 78 with instructions, nothing asked."""
    _need_oauth(t)
    oauth = _oauth(t)
    _write_config(t, _account(t, "ms", oauth, client_id=None))
    r = t.smtpkit("oauth", "login", "--account", "ms", env=_env(t), timeout=30)
    t.expect_rc(r, 78)
    t.expect_err(r, r"oauth-client-id", "the oauth-client-id setting")
    t.check(not oauth.requests, f"the authorization server was asked: {oauth.requests}")


# ---------------------------------------------------------------------------
# login: authorization code with PKCE and a loopback redirect

def _pkce_setup(t, **kw):
    secret = "GOCSPX-" + "x7Qe" * 5
    oauth = _oauth(t, client_id=GCLIENT_ID, client_secret=secret, user=GUSER, **kw)
    _write_config(t, _account(t, "g", oauth, provider="gmail", user=GUSER,
                              client_id=GCLIENT_ID, client_secret=secret))
    bg = Background(t, "oauth", "login", "--account", "g", env=_env(t), timeout=60)
    m = bg.wait_line(PKCE_LINE, 20)
    if not m:
        t.fail(f"no 'Open this URL in a browser: URL' line: {_describe_bg(bg)}")
    url = m.group(1)
    u = urllib.parse.urlsplit(url)
    t.check(_is_loopback_url(url) and u.port == oauth.port and u.path == "/authorize",
            f"the printed URL {url!r} is not the configured authorization endpoint "
            f"{oauth.auth_endpoint}")
    q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
    return oauth, bg, url, q


def _check_authorization_request(t, oauth, q):
    t.check(q.get("response_type") == "code", f"response_type {q.get('response_type')!r}")
    t.check(q.get("client_id") == GCLIENT_ID, f"client_id {q.get('client_id')!r}")
    t.check(_scope_set(q.get("scope")) == GMAIL_SCOPE,
            f"scope {q.get('scope')!r}, expected the Gmail preset's https://mail.google.com/")
    t.check(q.get("code_challenge_method") == "S256",
            f"code_challenge_method {q.get('code_challenge_method')!r}, expected S256")
    t.check(re.fullmatch(r"[A-Za-z0-9_-]{43}", q.get("code_challenge", "")),
            f"code_challenge {q.get('code_challenge')!r}")
    t.check(len(q.get("state", "")) >= 16, f"state {q.get('state')!r} is too short to be "
            f"unguessable")
    ru = urllib.parse.urlsplit(q.get("redirect_uri", ""))
    t.check(ru.scheme == "http" and ru.hostname == "127.0.0.1" and ru.port,
            f"redirect_uri {q.get('redirect_uri')!r} is not http://127.0.0.1:PORT/...")
    where = _loopback_listeners(ru.port)
    t.check(where, f"nothing listens on the redirect port {ru.port}")
    t.check(all(a == "127.0.0.1" for a in where),
            f"the redirect listener is bound to {where}, not only 127.0.0.1")
    return ru


@test()
def oauth_pkce_flow(t):
    """Gmail preset: the URL on stdout, a listener on 127.0.0.1, the browser
    (urllib) follows the authorization endpoint's 302 to it, the code is
    exchanged with the code_verifier (S256 checked), tokens stored."""
    _need_oauth(t)
    oauth, bg, url, q = _pkce_setup(t)
    _check_authorization_request(t, oauth, q)
    t.check(not oauth.reqs("/devicecode"), "the device endpoint was used for Gmail")

    status, final, body, followed = _browse(t, url)
    t.check(followed and followed[0].startswith(q["redirect_uri"]),
            f"the authorization endpoint did not send the browser to the redirect_uri "
            f"({followed})")
    r = bg.result()
    oauth.check_clean()
    t.expect_rc(r, 0)
    t.check(status == 200, f"smtpkit's listener answered the browser with {status}")
    ex = oauth.reqs("/token", "authorization_code")
    t.check(len(ex) == 1, f"{len(ex)} code exchanges, expected 1")
    t.check(ex[0].status == 200, f"the code exchange was answered {ex[0].status}: "
            f"{ex[0].answer}")
    tok = oauth.last
    for s in (tok["access"], tok["refresh"], ex[0].form.get("code_verifier", "")):
        t.check(s.encode() not in body, "smtpkit's page to the browser shows a secret")
    _check_token_storage(t, tok["access"], tok["refresh"])
    t.check(not _loopback_listeners(urllib.parse.urlsplit(q["redirect_uri"]).port),
            "the redirect listener is still open after login")


@test()
def oauth_pkce_state_mismatch(t):
    """A redirect with a wrong state (a forged request) is never exchanged:
    smtpkit either fails, or ignores it and completes with the real one."""
    _need_oauth(t)
    oauth, bg, url, q = _pkce_setup(t)
    ru = _check_authorization_request(t, oauth, q)
    sep = "&" if ru.query else "?"
    forged = q["redirect_uri"] + sep + urllib.parse.urlencode(
        {"code": "ac-forged-code", "state": "not-" + q["state"]})
    _browse(t, forged, follow=False)
    if bg.done(t.timeout(2)):
        r = bg.result()
        t.expect_fail(r)
        t.note("smtpkit stopped at the forged redirect")
    else:
        t.note("smtpkit ignored the forged redirect and kept waiting")
        _browse(t, url)
        r = bg.result()
        oauth.check_clean()
        t.expect_rc(r, 0)
    forged_used = [x for x in oauth.reqs("/token") if x.form.get("code") == "ac-forged-code"]
    t.check(not forged_used, "the code from the redirect with the wrong state was exchanged")
    oauth.check_clean()


@test()
def oauth_pkce_denied(t):
    """The user declines in the browser (error=access_denied on the
    redirect): a clear error, no exchange, no token."""
    _need_oauth(t)
    oauth, bg, url, q = _pkce_setup(t, authorize_error="access_denied")
    _browse(t, url)
    r = bg.result()
    t.expect_fail(r)
    t.expect_err(r, r"denied|declined", "that access was denied")
    t.check(not oauth.reqs("/token"), "the token endpoint was asked after a denial")
    t.check(not _token_files(t), "a token file was written")


# ---------------------------------------------------------------------------
# status, logout

@test()
def oauth_status_and_logout(t):
    """status shows expiry and scopes (the harness checks it never prints
    the token); logout removes it; then send says to log in again."""
    _need_oauth(t)
    oauth = _oauth(t)
    srv = OAuthSMTP(t, oauth, USER)
    _write_config(t, _account(t, "ms", oauth, srv=srv))
    r = t.smtpkit("oauth", "status", "--account", "ms", env=_env(t))
    t.check(not re.search(r"SMTP\.Send", r.out + r.err),
            f"status before login shows scopes: {r.describe()}")
    tok = _login(t, oauth)
    r = t.smtpkit("oauth", "status", "--account", "ms", env=_env(t))
    t.expect_rc(r, 0)
    t.check("https://outlook.office.com/SMTP.Send" in r.out,
            f"status does not show the scope: {r.describe()}")
    t.check(re.search(r"expir", r.out, re.I), f"status does not show the expiry: "
            f"{r.describe()}")
    t.check(not oauth.reqs("/token", "refresh_token"), "status refreshed the token")

    r = t.smtpkit("oauth", "logout", "--account", "ms", env=_env(t))
    t.expect_rc(r, 0)
    t.check(not _stored(t, tok["access"]) and not _stored(t, tok["refresh"]),
            "the tokens are still stored after logout")
    r = t.smtpkit("oauth", "status", "--account", "ms", env=_env(t))
    t.check("SMTP.Send" not in r.out, f"status after logout still shows a token: "
            f"{r.describe()}")
    r = _send(t, "ms", "after logout")
    t.expect_fail(r)
    t.expect_err(r, LOGIN_HINT, "'smtpkit oauth login'")
    srv.sync()
    t.check(not srv.messages, "a message was delivered after logout")
    t.check(not oauth.refreshes(), "a refresh was attempted after logout")


@test()
def oauth_token_file_permissions(t):
    """Token files 0600 in a 0700 directory, also after a refresh rewrote
    them, and never in the config file."""
    _need_oauth(t)
    oauth = _oauth(t, access_ttl=30, rotate_refresh="keep")
    srv = OAuthSMTP(t, oauth, USER)
    _write_config(t, _account(t, "ms", oauth, srv=srv))
    tok = _login(t, oauth)
    _check_token_storage(t, tok["access"], tok["refresh"])
    r = _send(t, "ms", "after refresh")
    t.expect_rc(r, 0)
    t.check(len(oauth.refreshes()) == 1, f"{len(oauth.refreshes())} refreshes, expected 1")
    new = oauth.last
    _check_token_storage(t, new["access"], new["refresh"])


# ---------------------------------------------------------------------------
# send with tokens

@test()
def oauth_send_valid_token(t):
    """A fresh token is used as is: XOAUTH2 with exactly that token, no
    request to the token endpoint, the message arrives."""
    _need_oauth(t)
    oauth = _oauth(t)
    srv = OAuthSMTP(t, oauth, USER)
    _write_config(t, _account(t, "ms", oauth, srv=srv))
    tok = _login(t, oauth)
    n = len(oauth.requests)
    r = _send(t, "ms", "valid token")
    t.expect_rc(r, 0)
    t.check(len(oauth.requests) == n,
            f"send asked the authorization server: {oauth.requests[n:]}")
    _delivered(t, srv, ["valid token"])
    t.check(len(srv.token_auths) == 1 and srv.token_auths[0].success,
            f"AUTH attempts: {_auth_summary(srv)}")
    a = srv.token_auths[0]
    t.check(a.mechanism == "XOAUTH2", f"AUTH {a.mechanism}, expected XOAUTH2")
    t.check(a.token == tok["access"], "XOAUTH2 did not carry the stored access token")
    t.check(a.user == USER, f"XOAUTH2 user {a.user!r}")
    t.check(a.tls is not None, "AUTH before TLS")


@test()
def oauth_send_oauthbearer(t):
    """auth = OAUTHBEARER: RFC 7628 with the stored token."""
    _need_oauth(t)
    oauth = _oauth(t)
    srv = OAuthSMTP(t, oauth, USER)
    _write_config(t, _account(t, "ms", oauth, srv=srv, auth="OAUTHBEARER"))
    tok = _login(t, oauth)
    r = _send(t, "ms", "oauthbearer")
    t.expect_rc(r, 0)
    _delivered(t, srv, ["oauthbearer"])
    t.check([(a.mechanism, a.success, a.token == tok["access"]) for a in srv.token_auths]
            == [("OAUTHBEARER", True, True)], f"AUTH attempts: {_auth_summary(srv)}")


@test()
def oauth_send_refreshes_near_expiry(t):
    """An access token within a minute of expiry is refreshed before use:
    one refresh_token request, the server sees the new token, and the token
    file now holds the new tokens and not the old access token."""
    _need_oauth(t)
    oauth = _oauth(t, access_ttl=30, rotate_refresh="invalidate")
    srv = OAuthSMTP(t, oauth, USER)
    _write_config(t, _account(t, "ms", oauth, srv=srv))
    old = _login(t, oauth)
    oauth.access_ttl = 3600
    r = _send(t, "ms", "refreshed")
    t.expect_rc(r, 0)
    oauth.check_clean()
    refs = oauth.refreshes()
    t.check(len(refs) == 1, f"{len(refs)} refresh requests, expected 1")
    t.check(refs[0].form.get("refresh_token") == old["refresh"],
            "the refresh request did not carry the stored refresh token")
    t.check(refs[0].form.get("client_id") == CLIENT_ID, "refresh without the client id")
    new = oauth.last
    _delivered(t, srv, ["refreshed"])
    t.check([a.token for a in srv.token_auths] == [new["access"]],
            f"AUTH attempts {_auth_summary(srv)}: expected one, with the new token")
    t.check(_stored(t, new["access"]), "the new access token is not stored")
    t.check(_stored(t, new["refresh"]), "the rotated refresh token is not stored")
    t.check(not _stored(t, old["access"]), "the old access token is still stored")
    # and the stored token is now used without another refresh
    r = _send(t, "ms", "second")
    t.expect_rc(r, 0)
    t.check(len(oauth.refreshes()) == 1, "the refreshed token was refreshed again")
    _delivered(t, srv, ["refreshed", "second"])


def _rewrite_token_file(t, fn):
    """Apply fn to the stored token file's JSON (the format oauth.h
    documents), keeping its mode; fail when it is not such a file."""
    files = [p for p, data in _token_files(t).items() if data.strip().startswith(b"{")]
    if len(files) != 1:
        t.fail(f"expected one JSON token file, found {len(files)}")
    path = files[0]
    with open(path) as f:
        data = json.load(f)
    if "expires_at" not in data:
        t.fail("the token file has no expires_at")
    fn(data)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)


@test()
def oauth_send_expired_token(t):
    """A stored access token that expired an hour ago (and that the server
    no longer takes) is refreshed before it is used: one refresh, no refused
    AUTH, the message arrives."""
    _need_oauth(t)
    oauth = _oauth(t, rotate_refresh="keep")
    srv = OAuthSMTP(t, oauth, USER)
    _write_config(t, _account(t, "ms", oauth, srv=srv))
    old = _login(t, oauth)
    _rewrite_token_file(t, lambda d: d.update(expires_at=int(time.time()) - 3600))
    oauth.expire_access(old["access"])
    r = _send(t, "ms", "expired token")
    t.expect_rc(r, 0)
    oauth.check_clean()
    t.check(len(oauth.refreshes()) == 1, f"{len(oauth.refreshes())} refreshes, expected 1")
    new = oauth.last
    _delivered(t, srv, ["expired token"])
    t.check([(a.token == new["access"], a.success) for a in srv.token_auths] == [(True, True)],
            f"AUTH attempts {_auth_summary(srv)}: expected one, with the refreshed token")
    t.check(_stored(t, new["access"]) and not _stored(t, old["access"]),
            "the token file does not hold the refreshed token")
    _check_token_storage(t, new["access"])


@test()
def oauth_token_file_readable_by_others_refused(t):
    """A token file that others can read is not used (the tokens may have
    leaked; smtpkit says so instead of sending with them)."""
    _need_oauth(t)
    oauth = _oauth(t)
    srv = OAuthSMTP(t, oauth, USER)
    _write_config(t, _account(t, "ms", oauth, srv=srv))
    _login(t, oauth)
    files = [p for p, data in _token_files(t).items() if data.strip()]
    t.check(len(files) == 1, f"{len(files)} non-empty files in the token directory")
    os.chmod(files[0], 0o644)
    r = _send(t, "ms", "leaky file")
    t.expect_fail(r)
    t.expect_err(r, r"mode|permission|readable|0?644|others", "the token file's mode")
    srv.sync()
    t.check(not srv.token_auths, f"the token was used: {_auth_summary(srv)}")
    t.check(not srv.messages, "a message was delivered")


def _server_expiry(t, auth, empty_reply):
    oauth = _oauth(t, rotate_refresh="keep")
    srv = OAuthSMTP(t, oauth, USER)
    _write_config(t, _account(t, "ms", oauth, srv=srv, auth=auth))
    old = _login(t, oauth)
    oauth.expire_access(old["access"])  # valid for an hour on paper, refused now
    r = _send(t, "ms", "server said expired")
    t.expect_rc(r, 0)
    oauth.check_clean()
    t.check(len(oauth.refreshes()) == 1, f"{len(oauth.refreshes())} refreshes, expected 1")
    new = oauth.last
    _delivered(t, srv, ["server said expired"])
    auths = srv.token_auths
    t.check([(a.mechanism, a.success) for a in auths] == [(auth, False), (auth, True)],
            f"AUTH attempts {_auth_summary(srv)}: expected one refused, one accepted")
    t.check(auths[0].token == old["access"] and auths[1].token == new["access"],
            "the retry did not use the refreshed token")
    t.check(auths[0].error_reply == empty_reply,
            f"the client answered the error challenge with {auths[0].error_reply!r}, "
            f"expected {empty_reply!r}")
    t.check(_stored(t, new["access"]), "the refreshed token is not stored")


@test()
def oauth_send_server_expired_retry(t):
    """The token looks valid but the server answers 334 {"status":"401"} /
    535 5.7.8: smtpkit answers the challenge with an empty line, refreshes
    once and retries with the new token."""
    _need_oauth(t)
    _server_expiry(t, "XOAUTH2", b"")


@test()
def oauth_send_server_expired_retry_oauthbearer(t):
    """The same with OAUTHBEARER: the client answers the error with ^A
    ("AQ==", RFC 7628 §3.2.3)."""
    _need_oauth(t)
    _server_expiry(t, "OAUTHBEARER", b"\x01")


@test()
def oauth_send_refresh_once_only(t):
    """A server that refuses every token: one refresh, one retry, then a
    failure, never a loop."""
    _need_oauth(t)
    oauth = _oauth(t, rotate_refresh="keep")
    srv = OAuthSMTP(t, oauth, USER, reject_all=True)
    _write_config(t, _account(t, "ms", oauth, srv=srv))
    _login(t, oauth)
    r = _send(t, "ms", "never accepted")
    t.expect_fail(r)
    t.check(len(oauth.refreshes()) <= 1, f"{len(oauth.refreshes())} refreshes, at most 1")
    t.check(len(srv.token_auths) <= 2, f"{len(srv.token_auths)} AUTH attempts, at most 2")
    srv.sync()
    t.check(not srv.messages, "a message was delivered without authentication")


@test()
def oauth_send_revoked_refresh_token(t):
    """The refresh token was revoked (invalid_grant): exit 77 and a message
    that says to run smtpkit oauth login; nothing sent."""
    _need_oauth(t)
    oauth = _oauth(t, access_ttl=30)
    srv = OAuthSMTP(t, oauth, USER)
    _write_config(t, _account(t, "ms", oauth, srv=srv))
    _login(t, oauth)
    oauth.revoke_refresh()
    r = _send(t, "ms", "revoked")
    t.expect_rc(r, 77)
    t.expect_err(r, LOGIN_HINT, "'smtpkit oauth login'")
    refs = oauth.refreshes()
    t.check(len(refs) == 1 and refs[0].answer.get("error") == "invalid_grant",
            f"refresh requests: {refs}")
    srv.sync()
    t.check(not srv.messages, "a message was delivered")


@test()
def oauth_send_revoked_after_server_expiry(t):
    """The server refuses the token and the refresh is invalid_grant: exit
    77 with the login hint."""
    _need_oauth(t)
    oauth = _oauth(t)
    srv = OAuthSMTP(t, oauth, USER)
    _write_config(t, _account(t, "ms", oauth, srv=srv))
    old = _login(t, oauth)
    oauth.expire_access(old["access"])
    oauth.revoke_refresh()
    r = _send(t, "ms", "revoked later")
    t.expect_rc(r, 77)
    t.expect_err(r, LOGIN_HINT, "'smtpkit oauth login'")
    t.check(len(oauth.refreshes()) == 1, f"{len(oauth.refreshes())} refreshes, expected 1")
    srv.sync()
    t.check(not srv.messages, "a message was delivered")


@test()
def oauth_concurrent_refresh(t):
    """Two sends of one account at once, both holding a token near expiry:
    exactly one refresh (the token file is locked; the second reads what the
    first stored), both messages delivered.  The server rotates the refresh
    token and kills the old one, and holds its answer back for a while, so a
    second refresh with the old token would fail loudly."""
    _need_oauth(t)
    oauth = _oauth(t, access_ttl=30, rotate_refresh="invalidate")
    srv = OAuthSMTP(t, oauth, USER)
    _write_config(t, _account(t, "ms", oauth, srv=srv))
    _login(t, oauth)
    oauth.access_ttl = 3600
    oauth.refresh_delay = 1.5
    env = _env(t)

    def send(subject):
        return Background(t, "send", "--account", "ms", "--to", TO, "--subject", subject,
                          "--text", "concurrent\n", env=env, timeout=60)
    a = send("first")
    b = send("second")
    ra, rb = a.result(), b.result()
    t.expect_rc(ra, 0)
    t.expect_rc(rb, 0)
    oauth.check_clean()
    refs = oauth.refreshes()
    t.check(len(refs) == 1, f"{len(refs)} refresh requests, expected exactly 1: {refs}")
    _delivered(t, srv, ["first", "second"])
    new = oauth.last
    t.check(all(x.success and x.token == new["access"] for x in srv.token_auths),
            f"AUTH attempts {_auth_summary(srv)}: both should use the one new token")
    t.check(_stored(t, new["access"]) and _stored(t, new["refresh"]),
            "the token file does not hold the refreshed tokens")
    _check_token_storage(t, new["access"], new["refresh"])


# ---------------------------------------------------------------------------
# endpoints: plain http only on loopback

@test()
def oauth_http_endpoint_not_loopback_refused(t):
    """An http:// endpoint that is not on loopback is refused before any
    request (tokens would travel in the clear).  Runs in a private network
    namespace with only lo, so nothing can leave even if smtpkit tried."""
    _need_oauth(t)
    from netns import NetNS
    ns = NetNS(t)
    lines = ["[account ms]", "provider = outlook", f"host = {HOST}", "port = 587",
             "tls = starttls", f"user = {USER}", f"from = {USER}", "auth = XOAUTH2",
             f"oauth-client-id = {CLIENT_ID}",
             "oauth-device-endpoint = http://192.0.2.10/devicecode",
             "oauth-auth-endpoint = http://192.0.2.10/authorize",
             "oauth-token-endpoint = http://192.0.2.10/token"]
    _write_config(t, "\n".join(lines) + "\n")
    r = ns.smtpkit("oauth", "login", "--account", "ms", env=_base_env(t), timeout=30)
    t.expect_fail(r)
    t.expect_err(r, r"https", "that the endpoint must use https")
