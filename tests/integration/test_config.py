"""Accounts from configuration files: --account, by --from, the default
account, --config, the permission rule, and --provider with a local host.

Every run has a private HOME and XDG_CONFIG_HOME (the harness sets both),
so the user file written here is $XDG_CONFIG_HOME/smtpkit/config and no
real configuration leaks in.  What the server received is checked: the
envelope, the From header and the AUTH login.
"""

import os
import re
import secrets
import stat

from common import parse_msg
from harness import test
from servers import HOST, AioServer, closed_port

TO = "rcpt@example.com"


def _password(t, user):
    return t.secret("S3cr3t-" + secrets.token_hex(6), user=user)


def _user_config(t, text, mode=0o600):
    """Write the user's config file; returns its path."""
    d = os.path.join(t.home, ".config", "smtpkit")
    os.makedirs(d, mode=0o700, exist_ok=True)
    path = os.path.join(d, "config")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def _account(name, srv, user=None, pwfile=None, frm=None, ca=None, extra=""):
    lines = [f"[account {name}]", f"host = {HOST}", f"port = {srv.port}",
             "tls = starttls", "timeout = 20"]
    if user:
        lines.append(f"user = {user}")
    if pwfile:
        lines.append(f"password-file = {pwfile}")
    if frm:
        lines.append(f"from = {frm}")
    if ca:
        lines.append(f"ca-file = {ca}")
    return "\n".join(lines) + "\n" + extra + "\n"


def _msg(subject):
    return ["--to", TO, "--subject", subject, "--text", "from an account\n"]


def _auth_server(t, user, pw):
    return AioServer(t, tls="starttls", users={user: pw}, auth_required=True)


def _delivered(t, srv, *, user, frm, subject):
    srv.sync()
    auths = srv.rec.auths
    t.check(auths and auths[-1].success and auths[-1].login == user,
            f"AUTH on the server: {[(a.login, a.success) for a in auths]}, expected {user}")
    t.check(auths[-1].tls is not None, "AUTH happened before TLS")
    msgs = srv.messages
    t.check(len(msgs) == 1, f"the server received {len(msgs)} messages, expected 1")
    m = msgs[0]
    t.check(m.mail_from == frm and m.rcpt_tos == [TO],
            f"envelope was {m.mail_from!r} -> {m.rcpt_tos}, expected {frm} -> {TO}")
    t.check(m.tls is not None, "the message went over plaintext")
    msg = parse_msg(m.content)
    t.check(str(msg["Subject"]) == subject, f"Subject is {msg['Subject']!r}")
    t.check([a.addr_spec for a in msg["From"].addresses] == [frm],
            f"From header is {msg['From']!r}, expected {frm}")
    return m


def _nothing_received(t, srv, what):
    srv.sync()
    t.check(not srv.rec.conns, f"{what}: smtpkit connected ({srv.rec.verbs()})")
    t.check(not srv.rec.auths, f"{what}: the server saw AUTH")


@test()
def config_account_named(t):
    """--account: host, port, TLS, user, password file, from and CA file
    all come from the account."""
    user = "alice@example.org"
    pw = _password(t, user)
    srv = _auth_server(t, user, pw)
    pwfile = t.file("alice.pw", pw + "\n")
    _user_config(t, "# accounts\n" + _account("other", srv, frm="x@example.net") +
                 _account("work", srv, user=user, pwfile=pwfile, frm=user,
                          ca=t.certs().ca))
    r = t.smtpkit("send", "--account", "work", "-v", *_msg("named account"))
    t.expect_rc(r, 0)
    t.expect_err(r, r"account work", "which account was used (-v)")
    _delivered(t, srv, user=user, frm=user, subject="named account")


@test()
def config_account_password_forms(t):
    """An account's inline password (in a private file), password-env and
    password-cmd, and a password-file given as ~/..."""
    user = "bob@example.org"
    pw = _password(t, user)
    ca = t.certs().ca
    pwfile = os.path.join(t.home, "bob.pw")
    with open(pwfile, "w") as f:
        f.write(pw + "\n")
    forms = {
        "inline": f"password = {pw}\n",
        "env": "password-env = BOB_PW\n",
        "cmd": f"password-cmd = cat {pwfile}\n",
        "tilde": "password-file = ~/bob.pw\n",
    }
    for name, line in forms.items():
        srv = _auth_server(t, user, pw)
        _user_config(t, _account(name, srv, user=user, frm=user, ca=ca, extra=line))
        r = t.smtpkit("send", "--account", name, *_msg(f"password {name}"),
                      env={"BOB_PW": pw})
        t.expect_rc(r, 0)
        _delivered(t, srv, user=user, frm=user, subject=f"password {name}")


@test()
def config_account_by_from(t):
    """No --host, --account or --provider: the account whose from is --from."""
    ca = t.certs().ca
    u1, u2 = "one@example.org", "two@Example.ORG"
    pw1, pw2 = _password(t, u1), _password(t, u2)
    s1, s2 = _auth_server(t, u1, pw1), _auth_server(t, u2, pw2)
    f1, f2 = t.file("one.pw", pw1), t.file("two.pw", pw2)
    _user_config(t, _account("one", s1, user=u1, pwfile=f1, frm=u1, ca=ca) +
                 _account("two", s2, user=u2, pwfile=f2, frm=u2, ca=ca) +
                 "[smtpkit]\ndefault = one\n")
    # the domain is compared without case
    r = t.smtpkit("send", "--from", "two@example.org", *_msg("by from"))
    t.expect_rc(r, 0)
    _delivered(t, s2, user=u2, frm="two@example.org", subject="by from")
    _nothing_received(t, s1, "the default account's server")


@test()
def config_default_account(t):
    """No --from match: the default account ([smtpkit] default), its from
    too when --from is absent."""
    ca = t.certs().ca
    u1, u2 = "one@example.org", "two@example.org"
    pw1, pw2 = _password(t, u1), _password(t, u2)
    s1, s2 = _auth_server(t, u1, pw1), _auth_server(t, u2, pw2)
    f1, f2 = t.file("one.pw", pw1), t.file("two.pw", pw2)
    _user_config(t, "[smtpkit]\ndefault = two\n\n" +
                 _account("one", s1, user=u1, pwfile=f1, frm=u1, ca=ca) +
                 _account("two", s2, user=u2, pwfile=f2, frm=u2, ca=ca))
    r = t.smtpkit("send", *_msg("default account"))
    t.expect_rc(r, 0)
    _delivered(t, s2, user=u2, frm=u2, subject="default account")
    _nothing_received(t, s1, "the other account's server")

    # an account named "default" is the default too
    s3 = _auth_server(t, u1, pw1)
    _user_config(t, _account("alpha", s2, user=u2, pwfile=f2, frm=u2, ca=ca) +
                 _account("default", s3, user=u1, pwfile=f1, frm=u1, ca=ca))
    r = t.smtpkit("send", "--from", "someone-else@example.net", *_msg("named default"))
    t.expect_rc(r, 0)
    _delivered(t, s3, user=u1, frm="someone-else@example.net", subject="named default")


@test()
def config_explicit_file(t):
    """--config FILE: that file alone; the user's file is not read (here it
    has an account of the same name pointing at a closed port)."""
    user = "carol@example.org"
    pw = _password(t, user)
    srv = _auth_server(t, user, pw)
    ca = t.certs().ca
    pwfile = t.file("carol.pw", pw)
    dead = closed_port(t)
    _user_config(t, f"[account carol]\nhost = {HOST}\nport = {dead}\n")
    path = t.file("elsewhere.conf",
                  _account("carol", srv, user=user, pwfile=pwfile, frm=user, ca=ca))
    r = t.smtpkit("send", "--config", path, "--account", "carol", *_msg("explicit"))
    t.expect_rc(r, 0)
    _delivered(t, srv, user=user, frm=user, subject="explicit")

    # a missing --config file is an error, nothing is sent
    r = t.smtpkit("send", "--config", path + ".missing", "--account", "carol",
                  *_msg("missing"))
    t.expect_rc(r, 78)
    t.expect_err(r, r"elsewhere\.conf\.missing", "the missing file")


@test()
def config_flags_override_account(t):
    """Flags win over the account: --port and --from replace its values."""
    user = "dave@example.org"
    pw = _password(t, user)
    srv = _auth_server(t, user, pw)
    ca = t.certs().ca
    pwfile = t.file("dave.pw", pw)
    dead = closed_port(t)
    _user_config(t, f"[account dave]\nhost = {HOST}\nport = {dead}\ntls = starttls\n"
                 f"user = {user}\npassword-file = {pwfile}\nfrom = {user}\n"
                 f"ca-file = {ca}\n")
    r = t.smtpkit("send", "--account", "dave", "--port", srv.port, "--from",
                  "alias@example.org", *_msg("override"))
    t.expect_rc(r, 0)
    _delivered(t, srv, user=user, frm="alias@example.org", subject="override")


@test()
def config_password_readable_by_others(t):
    """A config holding a password that group or others can read is
    refused (exit 78) before anything is sent."""
    user = "erin@example.org"
    pw = _password(t, user)
    srv = _auth_server(t, user, pw)
    path = _user_config(t, _account("erin", srv, user=user, frm=user, ca=t.certs().ca,
                                    extra=f"password = {pw}\n"), mode=0o644)
    r = t.smtpkit("send", "--account", "erin", *_msg("refused"))
    t.expect_rc(r, 78)
    t.expect_err(r, re.escape(path) + r" holds a password and is readable by others; "
                 r"run chmod 600 " + re.escape(path), "the permission rule")
    _nothing_received(t, srv, "a refused config")

    # chmod 600 and it works
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    r = t.smtpkit("send", "--account", "erin", *_msg("accepted"))
    t.expect_rc(r, 0)
    _delivered(t, srv, user=user, frm=user, subject="accepted")


@test()
def config_errors_name_file_and_line(t):
    """A broken config (exit 78) names file:line; an unknown account too."""
    path = _user_config(t, "[account a]\nhost = 127.0.0.1\nprot = 25\n")
    r = t.smtpkit("send", "--account", "a", "--from", "x@example.org", *_msg("broken"))
    t.expect_rc(r, 78)
    t.expect_err(r, re.escape(path) + r":3: unknown key \"prot\"", "file:line")

    _user_config(t, "[account a]\nhost = 127.0.0.1\n")
    r = t.smtpkit("send", "--account", "nope", "--from", "x@example.org", *_msg("nope"))
    t.expect_rc(r, 78)
    t.expect_err(r, r"no \[account nope\].*accounts: a", "the unknown account")

    # a plain --host run does not read the configuration at all
    _user_config(t, "this is not a config\n")
    dead = closed_port(t)
    r = t.smtpkit("send", "--host", HOST, "--port", dead, "--from", "x@example.org",
                  *_msg("no config"))
    t.expect_rc(r, 69)


@test()
def config_provider_with_local_host(t):
    """--provider ID with --host/--port connects where told (a private
    endpoint); the preset's knowledge stays in effect."""
    user = "frank@example.org"
    pw = _password(t, user)
    srv = _auth_server(t, user, pw)
    r = t.smtpkit("send", "--provider", "gmail", "--host", HOST, "--port", srv.port,
                  "--ca-file", t.certs().ca, "--user", user, "--password-env", "PW",
                  "--from", user, "-v", *_msg("provider preset"), env={"PW": pw})
    t.expect_rc(r, 0)
    t.expect_err(r, r"preset gmail", "the preset in effect (-v)")
    _delivered(t, srv, user=user, frm=user, subject="provider preset")

    # the same through an account that names the provider
    srv2 = _auth_server(t, user, pw)
    _user_config(t, _account("g", srv2, user=user, frm=user, ca=t.certs().ca,
                             extra="provider = gmail\npassword-env = PW\n"))
    r = t.smtpkit("send", "--account", "g", *_msg("account preset"), env={"PW": pw})
    t.expect_rc(r, 0)
    _delivered(t, srv2, user=user, frm=user, subject="account preset")

    # the preset's knowledge stays: a refused login says what QQ wants
    qq_user = "12345@qq.com"
    srv3 = _auth_server(t, qq_user, _password(t, qq_user))
    wrong = t.file("wrong.pw", "not-the-authorization-code\n")
    r = t.smtpkit("send", "--provider", "qq", "--host", HOST, "--port", srv3.port,
                  "--ca-file", t.certs().ca, "--user", qq_user, "--password-file", wrong,
                  "--from", qq_user, *_msg("wrong code"))
    t.expect_rc(r, 77)
    t.expect_err(r, r"qq: .*authorization code", "what the QQ preset knows about the login")
    srv3.sync()
    t.check(not srv3.messages, "a message was delivered after a refused login")

    # an unknown preset is a usage error, nothing sent
    r = t.smtpkit("send", "--provider", "no-such-provider", "--host", HOST, "--port",
                  srv.port, "--from", user, *_msg("unknown"))
    t.expect_rc(r, 64)
    t.expect_err(r, r"no-such-provider", "the unknown preset")

