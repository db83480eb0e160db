"""smtpkit setup for OAuth2 providers: the wizard asks for the client id of
the user's app, signs in itself (the device flow against
oauthserver.OAuthServer on 127.0.0.1, which grants at the first poll), runs
the doctor with the new token against oauthserver.OAuthSMTP, and writes the
account with auth = XOAUTH2, the client id and no password; the token is
kept in the token store (0600) and `smtpkit send --account` uses it.

The Outlook.com / Microsoft 365 presets are pointed at the local server by
a user preset file in ~/.config/smtpkit/providers.d/ that replaces the
built-in preset of the same id (a copy of it with the OAuth2 endpoints
changed), so that no account key, only the preset, says where to sign in.
The proxy trap of test_oauth catches any request to another host.

Gmail signs in with the authorization code and PKCE (RFC 7636) through a
browser that comes back to a listener on 127.0.0.1 (RFC 8252): the wizard
runs in the background, the test reads the authorization URL it prints and
plays the browser with urllib (as test_oauth's PKCE tests do); the client
secret goes in on the wizard's secret prompt (standard input), never argv.
"""

import base64
import os
import re
import secrets
import stat
import threading
import time
import urllib.parse

from harness import test
from test_doctor_cli import need_doctor
from test_oauth import (CLIENT_ID, DEVICE_LINE, GCLIENT_ID, GUSER, PKCE_LINE, USER,
                        Background, _auth_summary, _browse, _check_authorization_request,
                        _check_token_storage, _delivered, _describe_bg, _env, _is_loopback_url,
                        _loopback_listeners, _need_oauth, _oauth, _send, _token_files)
from oauthserver import OAuthSMTP, s256

HERE = os.path.dirname(os.path.abspath(__file__))
PROVIDERS_INI = os.path.join(HERE, "..", "..", "data", "providers.ini")


def _preset_text(pid):
    """The [provider pid] section of the built-in data file."""
    with open(PROVIDERS_INI, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^\[provider %s\]\n.*?(?=^\[|\Z)" % re.escape(pid), text, re.M | re.S)
    if not m:
        raise AssertionError(f"no [provider {pid}] in {PROVIDERS_INI}")
    return m.group(0)


def _local_preset(t, pid, oauth):
    """Replace preset pid by a copy whose OAuth2 endpoints are oauth's."""
    sec = _preset_text(pid)
    sec = re.sub(r"^oauth-device-endpoint = .*$", f"oauth-device-endpoint = {oauth.device_endpoint}",
                 sec, flags=re.M)
    sec = re.sub(r"^oauth-auth-endpoint = .*$", f"oauth-auth-endpoint = {oauth.auth_endpoint}",
                 sec, flags=re.M)
    sec = re.sub(r"^oauth-token-endpoint = .*$", f"oauth-token-endpoint = {oauth.token_endpoint}",
                 sec, flags=re.M)
    want = oauth.auth_endpoint if re.search(r"^oauth-flow = pkce", sec, re.M) \
        else oauth.device_endpoint
    t.check(want in sec and oauth.token_endpoint in sec,
            f"the {pid} preset has no OAuth2 endpoints to replace")
    t.check(not re.search(r"^oauth-[a-z]+-endpoint = https?://(?!127\.0\.0\.1)", sec, re.M),
            f"the local {pid} preset still names a remote endpoint: {sec!r}")
    d = os.path.join(t.home, ".config", "smtpkit", "providers.d")
    os.makedirs(d, mode=0o700, exist_ok=True)
    with open(os.path.join(d, "local-oauth.ini"), "w", encoding="utf-8") as f:
        f.write(sec)


def _config_path(t):
    return os.path.join(t.home, ".config", "smtpkit", "config")


def _setup_args(t, srv, provider, *extra):
    return ["setup", "--provider", provider, "--host", "127.0.0.1", "--port", str(srv.port),
            "--tls", "starttls", "--ca-file", t.certs().ca, "--timeout", "10", *extra]


def _check_account(t, name, r, client_id=CLIENT_ID, user=USER):
    path = _config_path(t)
    t.check(os.path.isfile(path), f"no config file at {path}: {r.describe()}")
    t.check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "the config file is not mode 600")
    text = open(path, encoding="utf-8").read()
    m = re.search(r"^\[account %s\]\n(.*?)(?=^\[|\Z)" % re.escape(name), text, re.M | re.S)
    t.check(m, f"no [account {name}] in the config: {text!r}")
    body = m.group(1)
    t.check(re.search(r"^auth\s*=\s*XOAUTH2\s*$", body, re.M),
            f"the account has no 'auth = XOAUTH2': {body!r}")
    t.check(re.search(r"^oauth-client-id\s*=\s*%s\s*$" % re.escape(client_id), body, re.M),
            f"the account does not hold the client id: {body!r}")
    t.check(not re.search(r"^password", body, re.M),
            f"the OAuth2 account has a password source: {body!r}")
    t.check(re.search(r"^user\s*=\s*%s\s*$" % re.escape(user), body, re.M),
            f"the account's user is not {user}: {body!r}")
    return body


def _token_file(t, name):
    p = os.path.join(t.home, ".local", "state", "smtpkit", "tokens", f"{name}.json")
    t.check(os.path.isfile(p), f"no token file {p}")
    m = stat.S_IMODE(os.lstat(p).st_mode)
    t.check(m == 0o600, f"the token file has mode {m:o}, expected 600")
    return p


@test()
def setup_oauth_outlook_device_flow(t):
    """Outlook.com takes only OAuth2: setup asks for the client id (not a
    token), signs in with the device flow, the doctor passes with the new
    token, the account is written with auth = XOAUTH2, the client id and no
    password, the tokens in a 0600 file; send then delivers with them."""
    _need_oauth(t)
    need_doctor(t)
    oauth = _oauth(t, device_script=["ok"])
    srv = OAuthSMTP(t, oauth, USER)
    _local_preset(t, "outlook", oauth)
    r = t.smtpkit(*_setup_args(t, srv, "outlook", "--account", "ms"),
                  stdin=f"{USER}\n{CLIENT_ID}\n", env=_env(t), timeout=90)
    oauth.check_clean()
    t.expect_rc(r, 0)
    t.check("password-cmd" not in r.out + r.err, "setup still gives the password-cmd advice")
    t.check(re.search(r"client id", r.out, re.I), f"setup did not ask for the client id: {r.out!r}")
    t.check(not re.search(r"access token \(not shown\)", r.out, re.I),
            "setup asked for an access token")
    m = DEVICE_LINE.search(r.out)
    t.check(m, f"setup showed no device sign-in line: {r.describe()}")
    devs = oauth.reqs("/devicecode")
    t.check(len(devs) == 1 and devs[0].form.get("client_id") == CLIENT_ID,
            f"device authorization requests: {devs}")
    t.check(m.group(2) == devs[0].answer["user_code"], "setup printed another user code")
    t.check(len(oauth.issued) == 1, f"{len(oauth.issued)} tokens issued, expected 1")
    tok = oauth.issued[0]
    t.check("Verdict: OK" in r.out, f"the doctor's verdict was not shown: {r.out[-800:]!r}")
    doctor_auths = list(srv.token_auths)
    t.check(doctor_auths and doctor_auths[-1].success and doctor_auths[-1].token == tok["access"],
            f"the doctor did not authenticate with the new token: {_auth_summary(srv)}")

    _check_account(t, "ms", r)
    _token_file(t, "ms")
    _check_token_storage(t, tok["access"], tok["refresh"])

    n = len(oauth.requests)
    r2 = _send(t, "ms", "after setup")
    t.expect_rc(r2, 0)
    t.check(len(oauth.requests) == n, "send asked the authorization server for a fresh token")
    _delivered(t, srv, ["after setup"])
    last = srv.token_auths[-1]
    t.check(last.mechanism == "XOAUTH2" and last.token == tok["access"],
            f"send did not use XOAUTH2 with the stored token: {_auth_summary(srv)}")


@test()
def setup_oauth_office365_choice_flags(t):
    """Microsoft 365 takes a password or OAuth2: --oauth-client-id chooses
    OAuth2 without a question; the sign-in and the account as for
    Outlook.com."""
    _need_oauth(t)
    need_doctor(t)
    oauth = _oauth(t, device_script=["ok"])
    srv = OAuthSMTP(t, oauth, USER)
    _local_preset(t, "office365", oauth)
    r = t.smtpkit(*_setup_args(t, srv, "office365", "--account", "m365",
                               "--oauth-client-id", CLIENT_ID),
                  stdin=f"{USER}\n", env=_env(t), timeout=90)
    oauth.check_clean()
    t.expect_rc(r, 0)
    t.check(len(oauth.issued) == 1, f"{len(oauth.issued)} tokens issued, expected 1")
    _check_account(t, "m365", r)
    _token_file(t, "m365")


@test()
def setup_oauth_office365_password_by_default(t):
    """Microsoft 365 offers OAuth2 as a choice; answering no keeps the
    password questions (the password is then asked for, not a token)."""
    need_doctor(t)
    r = t.smtpkit("setup", "--provider", "office365", "--host", "127.0.0.1", "--port", "1",
                  stdin=f"{USER}\nn\n")
    t.check(re.search(r"OAuth2 instead of a password", r.out),
            f"setup did not offer OAuth2 for Microsoft 365: {r.out!r}")
    t.check(re.search(r"^Password \(not shown\):", r.out, re.M),
            f"after 'n' setup did not ask for the password: {r.out!r}")
    t.check(not os.path.exists(_config_path(t)), "setup wrote a config after the input ended")


@test()
def setup_oauth_no_token_advice(t):
    """The old advice (give an access token, keep a command in password-cmd)
    is gone, in English and Chinese: setup explains that smtpkit signs in
    and asks for the client id; input ending there writes nothing."""
    need_doctor(t)
    for lang in ("en", "zh"):
        r = t.smtpkit("setup", "--provider", "outlook", "--host", "127.0.0.1", "--port", "1",
                      "--lang", lang, stdin=f"{USER}\n")
        t.check(r.rc != 0, f"setup ({lang}) succeeded without answers")
        text = r.out + r.err
        t.check("password-cmd" not in text, f"setup ({lang}) still advises password-cmd")
        t.check(not re.search(r"access token|访问令牌", text, re.I),
                f"setup ({lang}) still asks for an access token: {r.out!r}")
        want = r"OAuth2 client id" if lang == "en" else r"OAuth2 客户端 ID"
        t.check(re.search(want, r.out), f"setup ({lang}) did not ask for the client id: {r.out!r}")
        t.check(re.search(r"smtpkit oauth login", r.out),
                f"setup ({lang}) did not say that smtpkit signs in itself: {r.out!r}")
        t.check(not os.path.exists(_config_path(t)), "setup wrote a config without a sign-in")


# ---------------------------------------------------------------------------
# Gmail: authorization code + PKCE with a loopback redirect

SECRET_PROMPT = "OAuth2 client secret (not shown):"
CHOICE_PROMPT = "Sign in with OAuth2 instead of a password?"
CLIENT_ID_PROMPT = "OAuth2 client id of your app"


class _SetupRun(Background):
    """test_oauth.Background with answers on standard input."""

    def __init__(self, t, *args, stdin, env, timeout=90):  # noqa: D107 - see Background
        self.t = t
        seq = t._seq
        self.out_path = os.path.join(t.tmp, f"run{seq + 1}.out")
        self.box = {}
        self.limit = t.timeout(timeout) + 20

        def run():
            try:
                self.box["r"] = t.smtpkit(*args, env=env, stdin=stdin, timeout=timeout)
            except BaseException as e:  # noqa: BLE001 - re-raised in result()
                self.box["e"] = e

        self.th = threading.Thread(target=run, name="smtpkit-setup-bg", daemon=True)
        self.th.start()
        deadline = time.monotonic() + 10
        while t._seq == seq and self.th.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)  # bounded: the run counter moves within microseconds


def _gsecret(t):
    """A Google-style client secret, unique to the test, registered as a
    secret (never in argv or output)."""
    return t.secret("GOCSPX-" + secrets.token_urlsafe(21))


def _client_creds(req):
    """(client_id, client_secret) a token request carried, in the form or
    in HTTP Basic (RFC 6749 §2.3.1)."""
    cid, csec = req.form.get("client_id"), req.form.get("client_secret")
    auth = req.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        dec = base64.b64decode(auth[6:].strip()).decode()
        bid, _, bsec = dec.partition(":")
        cid = cid or urllib.parse.unquote_plus(bid)
        csec = csec or urllib.parse.unquote_plus(bsec)
    return cid, csec


def _gmail_setup(t, account, stdin, *extra, secret, **kw):
    """The gmail preset pointed at a local OAuthServer (which wants the
    client secret) and an OAuthSMTP; setup started in the background and
    waited for until it prints the authorization URL.  Returns (oauth, srv,
    bg, url, q) with q the URL's query, checked as test_oauth checks it."""
    _need_oauth(t)
    need_doctor(t)
    oauth = _oauth(t, client_id=GCLIENT_ID, client_secret=secret, user=GUSER, **kw)
    srv = OAuthSMTP(t, oauth, GUSER)
    _local_preset(t, "gmail", oauth)
    bg = _SetupRun(t, *_setup_args(t, srv, "gmail", "--account", account, *extra),
                   stdin=stdin, env=_env(t), timeout=90)
    m = bg.wait_line(PKCE_LINE, 30)
    if not m:
        t.fail(f"setup printed no 'Open this URL in a browser: URL' line: {_describe_bg(bg)}")
    url = m.group(1)
    u = urllib.parse.urlsplit(url)
    t.check(_is_loopback_url(url) and u.port == oauth.port and u.path == "/authorize",
            f"the printed URL {url!r} is not the local preset's authorization endpoint "
            f"{oauth.auth_endpoint}")
    q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
    _check_authorization_request(t, oauth, q)
    t.check(not oauth.reqs("/devicecode"), "setup used the device flow for Gmail")
    t.check(not oauth.reqs("/token"), "setup asked the token endpoint before the redirect")
    return oauth, srv, bg, url, q


def _finish_browser(t, oauth, bg, url, q):
    """Play the browser: the authorization endpoint issues a code and sends
    it to smtpkit's listener with the right state.  Returns setup's Result
    and the code exchange request."""
    status, _, page, followed = _browse(t, url)
    t.check(followed and followed[0].startswith(q["redirect_uri"]),
            f"the authorization endpoint did not send the browser to the redirect_uri "
            f"({followed})")
    r = bg.result()
    oauth.check_clean()
    t.expect_rc(r, 0)
    t.check(status == 200, f"setup's listener answered the browser with {status}")
    ex = oauth.reqs("/token", "authorization_code")
    t.check(len(ex) == 1, f"{len(ex)} code exchanges, expected 1")
    t.check(ex[0].status == 200, f"the code exchange was answered {ex[0].status}: "
            f"{ex[0].answer}")
    t.check(ex[0].form.get("redirect_uri") == q["redirect_uri"],
            f"the exchange's redirect_uri {ex[0].form.get('redirect_uri')!r} is not the "
            f"authorization request's {q['redirect_uri']!r}")
    with oauth.cond:
        code = [c for c, v in oauth.codes.items() if v["challenge"] == q["code_challenge"]]
    t.check(code and ex[0].form.get("code") == code[0],
            "the code exchanged is not the one the authorization endpoint issued")
    ver = ex[0].form.get("code_verifier") or ""
    t.check(ver and s256(ver) == q["code_challenge"],
            "the exchange's code_verifier does not match the code_challenge (S256)")
    for s in (oauth.last["access"], oauth.last["refresh"], ver):
        t.check(s.encode() not in page, "setup's page to the browser shows a secret")
    t.check(not _loopback_listeners(urllib.parse.urlsplit(q["redirect_uri"]).port),
            "the redirect listener is still open after setup")
    return r, ex[0]


def _account_key(body, key):
    m = re.search(r"^%s\s*=\s*(.*?)\s*$" % re.escape(key), body, re.M)
    return m.group(1) if m else None


def _expand(t, path):
    """A config path as smtpkit reads it: ~/ is the test's HOME."""
    return t.home + path[1:] if path.startswith("~/") else path


def _secret_nowhere_else(t, secret, allowed):
    """The client secret is in no file under HOME but `allowed`."""
    allowed = {os.path.realpath(a) for a in allowed}
    for root, _, fns in os.walk(t.home):
        for fn in fns:
            p = os.path.join(root, fn)
            if not os.path.isfile(p) or os.path.islink(p) or os.path.realpath(p) in allowed:
                continue
            with open(p, "rb") as f:
                t.check(secret.encode() not in f.read(),
                        f"the client secret is stored in {os.path.relpath(p, t.home)}")


def _check_gmail_doctor(t, srv, r, tok):
    t.check("Verdict: OK" in r.out, f"the doctor's verdict was not shown: {r.out[-800:]!r}")
    auths = list(srv.token_auths)
    t.check(auths and auths[-1].success and auths[-1].mechanism == "XOAUTH2"
            and auths[-1].token == tok["access"],
            f"the doctor did not authenticate with XOAUTH2 and the new token: "
            f"{_auth_summary(srv)}")


def _check_send(t, oauth, srv, name, tok):
    n = len(oauth.requests)
    before = len(srv.token_auths)
    r = _send(t, name, "after gmail setup")
    t.expect_rc(r, 0)
    t.check(len(oauth.requests) == n, "send asked the authorization server for a fresh token")
    _delivered(t, srv, ["after gmail setup"], user=GUSER)
    new = srv.token_auths[before:]
    t.check(new and all(a.mechanism == "XOAUTH2" and a.token == tok["access"] and a.success
                        for a in new),
            f"send did not use XOAUTH2 with the stored token: {_auth_summary(srv)}")


@test()
def setup_oauth_gmail_pkce(t):
    """Gmail offers OAuth2 beside app passwords: 'y' chooses it; setup asks
    for the client id and, on its secret prompt, the client secret; it signs
    in with the authorization code and PKCE through a loopback redirect (the
    token endpoint gets the code_verifier of the S256 challenge and the
    client secret), the doctor passes with the new token, and the account is
    written with auth = XOAUTH2, the client id and oauth-client-secret-file
    (a 0600 file holding the secret), never the secret itself; the tokens
    in a 0600 file; send then delivers with them."""
    secret = _gsecret(t)
    oauth, srv, bg, url, q = _gmail_setup(t, "gm", f"{GUSER}\ny\n{GCLIENT_ID}\n{secret}\n",
                                          secret=secret)
    out = bg.stdout()
    i_choice, i_id, i_sec = (out.find(CHOICE_PROMPT), out.find(CLIENT_ID_PROMPT),
                             out.find(SECRET_PROMPT))
    t.check(0 <= i_choice < i_id < i_sec,
            f"setup did not ask: OAuth2?, client id, client secret (in that order): {out!r}")
    t.check(not re.search(r"^(App password|Password) \(not shown\):", out, re.M),
            f"setup asked for a password after OAuth2 was chosen: {out!r}")
    r, ex = _finish_browser(t, oauth, bg, url, q)
    t.check(_client_creds(ex) == (GCLIENT_ID, secret),
            "the code exchange did not carry the client id and the typed client secret")
    t.check(len(oauth.issued) == 1, f"{len(oauth.issued)} tokens issued, expected 1")
    tok = oauth.issued[0]
    _check_gmail_doctor(t, srv, r, tok)

    body = _check_account(t, "gm", r, client_id=GCLIENT_ID, user=GUSER)
    text = open(_config_path(t), encoding="utf-8").read()
    t.check(secret not in text, "the config file holds the client secret")
    t.check(not re.search(r"^oauth-client-secret\s*=", body, re.M),
            f"the account has an inline oauth-client-secret: {body!r}")
    csf = _account_key(body, "oauth-client-secret-file")
    want = os.path.join(t.home, ".config", "smtpkit", "gm.client-secret")
    t.check(csf and os.path.realpath(_expand(t, csf)) == os.path.realpath(want),
            f"oauth-client-secret-file is {csf!r}, expected {want}")
    t.check(os.path.isfile(want) and not os.path.islink(want), f"no client secret file {want}")
    m = stat.S_IMODE(os.lstat(want).st_mode)
    t.check(m == 0o600, f"the client secret file has mode {m:o}, expected 600")
    with open(want, encoding="utf-8") as f:
        t.check(f.read().strip() == secret, "the client secret file does not hold the secret")
    _token_file(t, "gm")
    _check_token_storage(t, tok["access"], tok["refresh"])
    _secret_nowhere_else(t, secret, [want])

    _check_send(t, oauth, srv, "gm", tok)


@test()
def setup_oauth_gmail_secret_file_flag(t):
    """--oauth-client-id and --oauth-client-secret-file F answer the OAuth2
    questions: no OAuth2 choice, client id or secret is asked for; the
    sign-in uses the secret from F, the doctor passes, and the account
    points at F itself (no copy is made)."""
    secret = _gsecret(t)
    f_path = t.file("google/client_secret.txt", secret + "\n")
    before = open(f_path, "rb").read()
    oauth, srv, bg, url, q = _gmail_setup(
        t, "gm2", f"{GUSER}\n", "--oauth-client-id", GCLIENT_ID,
        "--oauth-client-secret-file", f_path, secret=secret)
    r, ex = _finish_browser(t, oauth, bg, url, q)
    for prompt in (CHOICE_PROMPT, CLIENT_ID_PROMPT, SECRET_PROMPT):
        t.check(prompt not in r.out, f"setup asked {prompt!r} although the flags answer it")
    t.check(_client_creds(ex) == (GCLIENT_ID, secret),
            "the code exchange did not carry the client id and the secret from the file")
    t.check(len(oauth.issued) == 1, f"{len(oauth.issued)} tokens issued, expected 1")
    tok = oauth.issued[0]
    _check_gmail_doctor(t, srv, r, tok)

    body = _check_account(t, "gm2", r, client_id=GCLIENT_ID, user=GUSER)
    t.check(not re.search(r"^oauth-client-secret\s*=", body, re.M),
            f"the account has an inline oauth-client-secret: {body!r}")
    csf = _account_key(body, "oauth-client-secret-file")
    t.check(csf and os.path.realpath(_expand(t, csf)) == os.path.realpath(f_path),
            f"oauth-client-secret-file is {csf!r}, expected {f_path}")
    copy = os.path.join(t.home, ".config", "smtpkit", "gm2.client-secret")
    t.check(not os.path.exists(copy), f"setup made a copy of the secret file: {copy}")
    t.check(open(f_path, "rb").read() == before, "setup changed the given secret file")
    t.check(secret not in open(_config_path(t), encoding="utf-8").read(),
            "the config file holds the client secret")
    _token_file(t, "gm2")
    _check_token_storage(t, tok["access"], tok["refresh"])
    _secret_nowhere_else(t, secret, [])
    _check_send(t, oauth, srv, "gm2", tok)


@test()
def setup_oauth_gmail_state_mismatch(t):
    """A redirect with a wrong state (a forged request to the listener) is
    not taken as the sign-in: as for 'smtpkit oauth login', its code is
    never exchanged and setup either fails or keeps waiting; the user then
    declines in the browser, and nothing at all is written."""
    secret = _gsecret(t)
    oauth, srv, bg, url, q = _gmail_setup(t, "gm3", f"{GUSER}\ny\n{GCLIENT_ID}\n{secret}\n",
                                          secret=secret)
    ru = urllib.parse.urlsplit(q["redirect_uri"])
    sep = "&" if ru.query else "?"
    forged = q["redirect_uri"] + sep + urllib.parse.urlencode(
        {"code": "ac-forged-code", "state": "not-" + q["state"]})
    status, _, _, _ = _browse(t, forged, follow=False)
    t.check(status != 200, "setup's listener answered the forged redirect as a success")
    if bg.done(t.timeout(2)):
        r = bg.result()
        t.expect_fail(r)
        t.note("setup stopped at the forged redirect")
    else:
        t.note("setup ignored the forged redirect and kept waiting")
        t.check(not oauth.reqs("/token"), "setup asked the token endpoint after the forged "
                "redirect")
        t.check(not os.path.exists(_config_path(t)) and not _token_files(t),
                "setup wrote something after the forged redirect")
        oauth.authorize_error = "access_denied"
        _browse(t, url)
        r = bg.result()
        t.expect_fail(r)
        t.expect_err(r, r"denied", "that access was denied")
    t.expect_err(r, r"nothing was saved", "that nothing was saved")
    forged_used = [x for x in oauth.reqs("/token") if x.form.get("code") == "ac-forged-code"]
    t.check(not forged_used, "the code from the redirect with the wrong state was exchanged")
    t.check(not oauth.reqs("/token"), "the token endpoint was asked")
    t.check(not oauth.issued, "a token was issued")
    t.check(not srv.token_auths, "the doctor ran without a sign-in")
    t.check(not os.path.exists(_config_path(t)), "setup wrote a config file")
    t.check(not _token_files(t), "setup wrote a token file")
    t.check(not os.path.exists(os.path.join(t.home, ".config", "smtpkit", "gm3.client-secret")),
            "setup wrote the client secret file")
    _secret_nowhere_else(t, secret, [])
    t.check(not _loopback_listeners(ru.port), "the redirect listener is still open")
    oauth.check_clean()
