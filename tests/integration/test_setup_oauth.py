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
"""

import os
import re
import stat

from harness import test
from test_doctor_cli import need_doctor
from test_oauth import (CLIENT_ID, DEVICE_LINE, TO, USER, _auth_summary, _check_token_storage,
                        _delivered, _env, _need_oauth, _oauth, _send)
from oauthserver import OAuthSMTP

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
    sec = re.sub(r"^oauth-token-endpoint = .*$", f"oauth-token-endpoint = {oauth.token_endpoint}",
                 sec, flags=re.M)
    t.check(oauth.device_endpoint in sec and oauth.token_endpoint in sec,
            f"the {pid} preset has no device flow endpoints to replace")
    d = os.path.join(t.home, ".config", "smtpkit", "providers.d")
    os.makedirs(d, mode=0o700, exist_ok=True)
    with open(os.path.join(d, "local-oauth.ini"), "w", encoding="utf-8") as f:
        f.write(sec)


def _config_path(t):
    return os.path.join(t.home, ".config", "smtpkit", "config")


def _setup_args(t, srv, provider, *extra):
    return ["setup", "--provider", provider, "--host", "127.0.0.1", "--port", str(srv.port),
            "--tls", "starttls", "--ca-file", t.certs().ca, "--timeout", "10", *extra]


def _check_account(t, name, r):
    path = _config_path(t)
    t.check(os.path.isfile(path), f"no config file at {path}: {r.describe()}")
    t.check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "the config file is not mode 600")
    text = open(path, encoding="utf-8").read()
    m = re.search(r"^\[account %s\]\n(.*?)(?=^\[|\Z)" % re.escape(name), text, re.M | re.S)
    t.check(m, f"no [account {name}] in the config: {text!r}")
    body = m.group(1)
    t.check(re.search(r"^auth\s*=\s*XOAUTH2\s*$", body, re.M),
            f"the account has no 'auth = XOAUTH2': {body!r}")
    t.check(re.search(r"^oauth-client-id\s*=\s*%s\s*$" % re.escape(CLIENT_ID), body, re.M),
            f"the account does not hold the client id: {body!r}")
    t.check(not re.search(r"^password", body, re.M),
            f"the OAuth2 account has a password source: {body!r}")
    t.check(re.search(r"^user\s*=\s*%s\s*$" % re.escape(USER), body, re.M),
            f"the account's user is not {USER}: {body!r}")
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
