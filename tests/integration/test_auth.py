"""AUTH: mechanisms, password sources, refusals, and never over plaintext.

Every run uses -v (the transcript) so the automatic leak check covers the
transcript too: the password and its base64 forms must never appear.
"""

import secrets

from common import FROM, send_args
from harness import test
from servers import AioServer

TO = "rcpt@example.com"
USER = "alice@example.org"


def _password(t, suffix=""):
    return t.secret("S3cr3t-" + secrets.token_hex(6) + suffix, user=USER)


def _msg(subject):
    return ["--from", FROM, "--to", TO, "--subject", subject, "--text", "authenticated\n"]


def _auth_server(t, pw, **kw):
    kw.setdefault("tls", "starttls")
    return AioServer(t, users={USER: pw}, auth_required=True, **kw)


def _delivered_with_auth(t, srv, mechanism=None, tls=True):
    srv.sync()
    auths = srv.rec.auths
    t.check(auths, "the server saw no AUTH")
    a = auths[-1]
    t.check(a.success and a.login == USER, f"AUTH {a.mechanism} as {a.login!r}: "
            f"{'ok' if a.success else 'refused'}")
    if mechanism:
        t.check(a.mechanism == mechanism, f"AUTH used {a.mechanism}, expected {mechanism}")
    if tls:
        t.check(a.tls is not None, "AUTH happened before TLS")
    msgs = srv.messages
    t.check(len(msgs) == 1, f"the server received {len(msgs)} messages, expected 1")
    m = msgs[0]
    t.check(m.login == USER, f"the message was not sent as {USER} (login {m.login!r})")
    t.check(m.mail_from == FROM and m.rcpt_tos == [TO],
            f"envelope was {m.mail_from!r} -> {m.rcpt_tos}")
    return m


def _auth_run(t, srv, pw, *extra, how="env"):
    certs = t.certs()
    args = list(send_args(srv.port)) + ["--ca-file", certs.ca, "--user", USER, "-v"]
    env = None
    if how == "env":
        args += ["--password-env", "SMTPKIT_TEST_PASSWORD"]
        env = {"SMTPKIT_TEST_PASSWORD": pw}
    elif how == "file":
        args += ["--password-file", t.file("password", pw + "\n")]
    elif how == "cmd":
        path = t.file("password-for-cmd", pw + "\n")
        args += ["--password-cmd", f"cat {path}"]
    return t.smtpkit(*args, *extra, env=env)


def _transcript_redacted(t, r):
    t.check("<redacted>" in r.err,
            "the -v transcript does not show the AUTH payload as <redacted>")
    t.check("AUTH" in r.err, "the -v transcript does not show the AUTH command")


@test()
def auth_plain_forced(t):
    pw = _password(t)
    srv = _auth_server(t, pw)
    r = _auth_run(t, srv, pw, "--auth", "PLAIN", *_msg("plain"))
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv, "PLAIN")
    _transcript_redacted(t, r)


@test()
def auth_plain_utf8_password(t):
    """RFC 4616: PLAIN carries UTF-8; a non-ASCII password works as is."""
    pw = _password(t, "-pässwörd-密码")
    srv = _auth_server(t, pw)
    r = _auth_run(t, srv, pw, "--auth", "PLAIN", *_msg("utf-8 password"), how="file")
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv, "PLAIN")


@test()
def auth_login_forced_password_file(t):
    pw = _password(t)
    srv = _auth_server(t, pw)
    r = _auth_run(t, srv, pw, "--auth", "LOGIN", *_msg("login"), how="file")
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv, "LOGIN")
    _transcript_redacted(t, r)


@test()
def auth_default_choice_login_only(t):
    pw = _password(t)
    srv = _auth_server(t, pw, mechanisms=("LOGIN",))
    r = _auth_run(t, srv, pw, *_msg("default login"))
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv, "LOGIN")


@test()
def auth_default_choice_plain_only(t):
    pw = _password(t)
    srv = _auth_server(t, pw, mechanisms=("PLAIN",))
    r = _auth_run(t, srv, pw, *_msg("default plain"))
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv, "PLAIN")


@test()
def auth_default_choice_both(t):
    pw = _password(t)
    srv = _auth_server(t, pw, mechanisms=("PLAIN", "LOGIN"))
    r = _auth_run(t, srv, pw, *_msg("default both"))
    t.expect_rc(r, 0)
    m = _delivered_with_auth(t, srv)
    t.note(f"chose {srv.rec.auths[-1].mechanism}")
    t.check(len(srv.rec.auths) == 1, f"{len(srv.rec.auths)} AUTH attempts, expected 1")
    return m


@test()
def auth_cram_md5(t):
    pw = _password(t)
    srv = _auth_server(t, pw, mechanisms=("CRAM-MD5",))
    r = _auth_run(t, srv, pw, "--auth", "CRAM-MD5", *_msg("cram"))
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv, "CRAM-MD5")


@test()
def auth_xoauth2(t):
    token = t.secret("ya29." + secrets.token_urlsafe(24), user=USER)
    srv = _auth_server(t, token, mechanisms=("XOAUTH2",))
    r = _auth_run(t, srv, token, "--auth", "XOAUTH2", *_msg("xoauth2"))
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv, "XOAUTH2")


@test()
def auth_password_cmd(t):
    pw = _password(t)
    srv = _auth_server(t, pw)
    r = _auth_run(t, srv, pw, *_msg("password-cmd"), how="cmd")
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv)


@test()
def auth_implicit_tls(t):
    pw = _password(t)
    srv = _auth_server(t, pw, tls="implicit")
    certs = t.certs()
    r = t.smtpkit(*send_args(srv.port, tls="implicit"), "--ca-file", certs.ca,
                  "--user", USER, "--password-env", "PW", "-v", *_msg("implicit auth"),
                  env={"PW": pw})
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv)


@test()
def auth_wrong_password(t):
    pw = _password(t)
    wrong = t.secret("Wr0ng-" + secrets.token_hex(6), user=USER)
    for mech in ("PLAIN", "LOGIN"):
        srv = _auth_server(t, pw)
        r = _auth_run(t, srv, wrong, "--auth", mech, *_msg("wrong"))
        t.expect_rc(r, 77)
        t.expect_session_error_line(r)
        t.expect_err(r, r"535", "the server's 535 reply")
        t.expect_err(r, r"credentials invalid", "the server's 535 text")
        srv.sync()
        t.check(srv.rec.auths and not any(a.success for a in srv.rec.auths),
                f"{mech}: the server did not see a failed AUTH")
        t.check(not srv.mails(), f"{mech}: MAIL sent after a failed AUTH: {srv.mails()}")
        t.check(len(srv.rec.auths) == 1,
                f"{mech}: {len(srv.rec.auths)} AUTH attempts (retried with the same password?)")


@test()
def auth_refused_over_plaintext(t):
    """The server offers AUTH without TLS; smtpkit must not send credentials
    unless --allow-plaintext-auth."""
    pw = _password(t)
    srv = AioServer(t, users={USER: pw}, auth_require_tls=False, auth_required=True)
    r = t.smtpkit(*send_args(srv.port, tls="none"), "--user", USER,
                  "--password-env", "PW", "-v", *_msg("plaintext"), env={"PW": pw})
    t.expect_fail(r)
    t.expect_session_error_line(r)
    t.expect_err(r, r"plain ?text|unencrypted|TLS|allow-plaintext-auth",
                 "why credentials were not sent")
    srv.sync()
    t.check("AUTH" not in srv.rec.verbs(),
            f"AUTH was sent over plaintext: {srv.rec.verbs()}")
    t.check(not srv.rec.auths, "the server received credentials")
    t.check(not srv.messages, "a message was delivered")


@test()
def auth_plaintext_allowed_explicitly(t):
    pw = _password(t)
    srv = AioServer(t, users={USER: pw}, auth_require_tls=False, auth_required=True)
    r = t.smtpkit(*send_args(srv.port, tls="none"), "--allow-plaintext-auth",
                  "--user", USER, "--password-env", "PW", "-v", *_msg("plaintext ok"),
                  env={"PW": pw})
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv, tls=False)


@test()
def auth_require_starttls_server_with_tls_none(t):
    """A server that requires STARTTLS, and --tls none --allow-plaintext-auth:
    no credentials reach it and nothing is delivered; smtpkit fails."""
    pw = _password(t)
    srv = AioServer(t, tls="starttls", require_starttls=True, users={USER: pw},
                    auth_required=True)
    r = t.smtpkit(*send_args(srv.port, tls="none"), "--allow-plaintext-auth",
                  "--user", USER, "--password-env", "PW", "-v", *_msg("no tls"),
                  env={"PW": pw})
    t.expect_fail(r)
    t.expect_session_error_line(r)
    srv.sync()
    t.check(not srv.rec.auths, "credentials reached the server without TLS")
    t.check(not srv.messages, "a message was delivered")
    t.note(f"exit {r.rc}: {r.stderr_lines()[-1][:160] if r.stderr_lines() else ''}")


@test()
def auth_offered_only_after_starttls(t):
    """Default mode: AUTH is advertised only after STARTTLS; smtpkit upgrades,
    then authenticates."""
    pw = _password(t)
    srv = _auth_server(t, pw)
    r = _auth_run(t, srv, pw, *_msg("after starttls"))
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv)
    lines = srv.rec.conns[0].lines
    auth_lines = [(ln, tls) for ln, tls in lines if ln.upper().startswith("AUTH")]
    t.check(auth_lines and all(tls for _, tls in auth_lines),
            f"AUTH lines before TLS: {auth_lines}")


@test()
def auth_oauthbearer(t):
    token = t.secret("ya29." + secrets.token_urlsafe(24), user=USER)
    srv = _auth_server(t, token, mechanisms=("OAUTHBEARER",))
    r = _auth_run(t, srv, token, "--auth", "OAUTHBEARER", *_msg("oauthbearer"))
    t.expect_rc(r, 0)
    _delivered_with_auth(t, srv, "OAUTHBEARER")
    _transcript_redacted(t, r)


@test()
def auth_xoauth2_bad_token(t):
    token = t.secret("ya29." + secrets.token_urlsafe(24), user=USER)
    wrong = t.secret("ya29.wrong-" + secrets.token_urlsafe(12), user=USER)
    srv = _auth_server(t, token, mechanisms=("XOAUTH2",))
    r = _auth_run(t, srv, wrong, "--auth", "XOAUTH2", *_msg("xoauth2 bad"))
    t.expect_rc(r, 77)
    t.expect_err(r, r"535", "the server's 535 reply")
    srv.sync()
    t.check(srv.rec.auths and not srv.rec.auths[-1].success, "no failed XOAUTH2 on the server")
    t.check(not srv.mails(), f"MAIL sent after a failed AUTH: {srv.mails()}")
