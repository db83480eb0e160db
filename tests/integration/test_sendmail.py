"""The sendmail interface: smtpkit run as `sendmail` (a symbolic link in a
temporary directory, never the system's /usr/sbin/sendmail), and real
programs that call sendmail: PHP mail(), mailx (bsd-mailx, s-nail) and git
send-email.  An account in a private $XDG_CONFIG_HOME points at aiosmtpd on
127.0.0.1; what the server received is parsed with Python's email package.
"""

import email.utils
import os
import re
import shutil
import signal
import stat
import subprocess
import threading
import time

from common import parse_msg
from harness import SANITIZER_MARKS, Fail, Result, tail, test
from servers import HOST, AioServer, ScriptedServer, closed_port

ME = "me@example.org"
ACCOUNT_PASSWORD = None


def _config(t, *accounts, default=None):
    """Write the user's config with accounts [(name, port, from)]."""
    d = os.path.join(t.home, ".config", "smtpkit")
    os.makedirs(d, mode=0o700, exist_ok=True)
    text = ""
    if default:
        text += f"[smtpkit]\ndefault = {default}\n\n"
    for name, port, frm in accounts:
        text += (f"[account {name}]\nhost = {HOST}\nport = {port}\n"
                 f"tls = none\ntimeout = 20\n")
        if frm:
            text += f"from = {frm}\n"
        text += "\n"
    path = os.path.join(d, "config")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def _server(t, **kw):
    srv = AioServer(t, **kw)
    _config(t, ("main", srv.port, ME))
    return srv


def _bindir(t):
    """A directory with sendmail, mailq and newaliases linked to smtpkit."""
    d = os.path.join(t.tmp, "bin")
    if not os.path.isdir(d):
        os.makedirs(d)
        for name in ("sendmail", "mailq", "newaliases"):
            os.symlink(t.cfg.binary, os.path.join(d, name))
    return d


def _env(t, extra=None):
    env = {
        "PATH": _bindir(t) + ":/usr/bin:/bin",
        "HOME": t.home,
        "XDG_CONFIG_HOME": os.path.join(t.home, ".config"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": t.tmp,
    }
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
              "ASAN_SYMBOLIZER_PATH", "LLVM_SYMBOLIZER_PATH"):
        if k in os.environ:
            env[k] = os.environ[k]
    if extra:
        env.update(extra)
    return env


def run(t, argv, stdin=b"", timeout=30, env=None, cwd=None):
    """Run a program (the sendmail link, or a client that calls it) with
    the test's private environment; sanitizer reports and hangs fail."""
    if isinstance(stdin, str):
        stdin = stdin.encode()
    limit = t.timeout(timeout)
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(t, env),
                            cwd=cwd or t.tmp, start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise Fail(f"{' '.join(argv)} did not exit within {limit:.0f}s; "
                   f"stderr: {tail(err.decode('utf-8', 'replace'))!r}")
    r = Result(argv, proc.returncode, out, err, time.monotonic() - start, 0)
    for mark in SANITIZER_MARKS:
        if mark in r.out + r.err:
            raise Fail(f"sanitizer report ({mark}) running {' '.join(argv)}: "
                       f"{tail(r.err, 1500)}")
    if r.rc < 0:
        raise Fail(f"{' '.join(argv)} died from signal {-r.rc}: {tail(r.err)!r}")
    return r


def sendmail(t, *args, stdin=b"", **kw):
    return run(t, [os.path.join(_bindir(t), "sendmail")] + list(args),
               stdin=stdin, **kw)


def _one(t, srv):
    srv.sync()
    msgs = srv.messages
    t.check(len(msgs) == 1, f"the server received {len(msgs)} messages, expected 1")
    return msgs[0], parse_msg(msgs[0].content)


def _check_added(t, msg, frm=ME):
    """From (when given), Date and Message-ID were added, once each."""
    for h in ("From", "Date", "Message-ID"):
        t.check(len(msg.get_all(h, [])) == 1,
                f"{h} appears {len(msg.get_all(h, []))} times: {msg.get_all(h)}")
    if frm is not None:
        t.check([a.addr_spec for a in msg["From"].addresses] == [frm],
                f"From is {msg['From']!r}, expected {frm}")
    when = email.utils.parsedate_to_datetime(str(msg["Date"]))
    t.check(when.tzinfo is not None and abs(time.time() - when.timestamp()) < 86400,
            f"Date is not now: {msg['Date']!r}")
    t.check(re.fullmatch(r"<[0-9a-f]{32}@example\.org>", str(msg["Message-ID"]).strip()),
            f"Message-ID {msg['Message-ID']!r} is not random at the sender's domain")


def _dead_letter(t):
    path = os.path.join(t.home, "dead.letter")
    t.check(os.path.exists(path), "no ~/dead.letter was written")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    t.check(mode == 0o600, f"dead.letter has mode {mode:o}, expected 600")
    with open(path, "rb") as f:
        return f.read()


@test()
def sendmail_cron_style(t):
    """`echo body | sendmail root@example.com`, as cron and scripts do: no
    header at all; From, Date and Message-ID come from the account; silent
    on success.  A bare `root` gets the sender's domain."""
    srv = _server(t)
    r = sendmail(t, "root@example.com", stdin="body of the job\n")
    t.expect_rc(r, 0)
    t.check(r.out == "" and r.err == "", f"sendmail was not silent: {r.describe()}")
    m, msg = _one(t, srv)
    t.check(m.mail_from == ME and m.rcpt_tos == ["root@example.com"],
            f"envelope {m.mail_from} -> {m.rcpt_tos}")
    _check_added(t, msg)
    t.check(msg.get_content().strip() == "body of the job", f"body {msg.get_content()!r}")

    r = sendmail(t, "root", stdin="to root\n")
    t.expect_rc(r, 0)
    srv.sync()
    t.check(srv.messages[-1].rcpt_tos == ["root@example.org"],
            f"bare root went to {srv.messages[-1].rcpt_tos}")


@test()
def sendmail_verbose_notes(t):
    """-v: the account, the server and the transcript on standard error,
    every note of sendmail's own under "sendmail:" alone (nothing is said
    in the name of smtpkit's send command)."""
    srv = _server(t)
    r = sendmail(t, "-v", "root@example.com", stdin="verbose\n")
    t.expect_rc(r, 0)
    notes = [ln for ln in r.err.splitlines() if not ln.startswith("[")]
    t.check(any(ln.startswith("sendmail: account main ") for ln in notes),
            f"no note naming the account: {r.err!r}")
    t.check(any(ln.startswith(f"sendmail: {HOST} port {srv.port}") for ln in notes),
            f"no note naming the server: {r.err!r}")
    t.check(any("-> RCPT TO:<root@example.com>" in ln for ln in r.err.splitlines()),
            f"no transcript: {r.err!r}")
    bad = [ln for ln in notes if not ln.startswith("sendmail: ") or "send:" in ln]
    t.check(not bad, f"notes not in sendmail's name: {bad}")
    _one(t, srv)


@test()
def sendmail_t_address_lists(t):
    """-t: display names, quoted strings, comments, a group, folded To and
    Cc, and Bcc; recipients on the command line are added (Postfix, msmtp);
    the Bcc header is gone, every other header is kept as written."""
    srv = _server(t)
    message = (
        'To: "Doe, Jane" <jane@example.com>, Team: a@example.net,\r\n'
        '  "B. Smith" <b@example.net>;,\r\n'
        '\tcarol@example.com (Carol, in a comment)\r\n'
        "Cc: dave@example.com,\r\n"
        " =?UTF-8?B?w4lsaXNl?= <elise@example.com>\r\n"
        "Bcc: hidden@example.com,\r\n"
        " undisclosed: hidden2@example.com;\r\n"
        "Subject: lists\r\n"
        "X-Keep: yes\r\n"
        "\r\n"
        "body\r\n")
    r = sendmail(t, "-t", "extra@example.org", stdin=message)
    t.expect_rc(r, 0)
    m, msg = _one(t, srv)
    want = {"jane@example.com", "a@example.net", "b@example.net", "carol@example.com",
            "dave@example.com", "elise@example.com", "hidden@example.com",
            "hidden2@example.com", "extra@example.org"}
    t.check(set(m.rcpt_tos) == want and len(m.rcpt_tos) == len(want),
            f"recipients {m.rcpt_tos}, expected {sorted(want)}")
    t.check(b"hidden" not in m.content, "a Bcc address is in the message")
    t.check(msg["Bcc"] is None, "the Bcc header was not removed")
    t.check(msg["X-Keep"] == "yes", "another header was lost")
    t.check(b"Team: a@example.net,\r\n  \"B. Smith\" <b@example.net>;,\r\n" in m.content,
            "the folded To header was not kept as written")
    t.check(sorted(a.addr_spec for a in msg["Cc"].addresses) ==
            ["dave@example.com", "elise@example.com"], f"Cc {msg['Cc']!r}")

    # a recipient both on the command line and in To goes once
    r = sendmail(t, "-t", "jane@EXAMPLE.com", stdin="To: jane@example.com\n\nx\n")
    t.expect_rc(r, 0)
    srv.sync()
    t.check(srv.messages[-1].rcpt_tos == ["jane@EXAMPLE.com"],
            f"duplicates: {srv.messages[-1].rcpt_tos}")

    # -t with nothing to find: an error, and the message is kept
    r = sendmail(t, "-t", stdin="Subject: nobody\n\nx\n")
    t.expect_rc(r, 64)
    t.expect_err(r, r"no recipients")
    t.check(b"Subject: nobody" in _dead_letter(t), "dead.letter lacks the message")


@test()
def sendmail_t_resent(t):
    """-t with Resent- headers: the first Resent block's recipients, not the
    original To (RFC 5322 §3.6.6)."""
    srv = _server(t)
    message = ("Resent-To: new@example.com\nResent-Bcc: newhidden@example.com\n"
               "Resent-From: me@example.org\nTo: old@example.com\nSubject: fwd\n\nx\n")
    r = sendmail(t, "-t", stdin=message)
    t.expect_rc(r, 0)
    m, msg = _one(t, srv)
    t.check(sorted(m.rcpt_tos) == ["new@example.com", "newhidden@example.com"],
            f"recipients {m.rcpt_tos}")
    t.check(b"newhidden" not in m.content, "Resent-Bcc is in the message")


@test()
def sendmail_dot_lines(t):
    """Without -i a line holding only "." ends the message; with -i or -oi
    it is message text."""
    srv = _server(t)
    text = "Subject: dots\n\nfirst\n.\nafter the dot\n"
    r = sendmail(t, "x@example.com", stdin=text)
    t.expect_rc(r, 0)
    for flag in ("-i", "-oi"):
        r = sendmail(t, flag, "x@example.com", stdin=text)
        t.expect_rc(r, 0)
    srv.sync()
    bodies = [parse_msg(m.content).get_content() for m in srv.messages]
    t.check(len(bodies) == 3, f"{len(bodies)} messages arrived")
    t.check(bodies[0].replace("\r\n", "\n") == "first\n", f"without -i: {bodies[0]!r}")
    for b in bodies[1:]:
        t.check(b.replace("\r\n", "\n") == "first\n.\nafter the dot\n", f"with -i: {b!r}")
    # the dot line reaches the server stuffed, and is unstuffed there
    t.check(b"\r\n.\r\nafter" in srv.messages[1].content, "the lone dot was lost")


@test()
def sendmail_from_and_name(t):
    """-f sets the envelope sender (and picks the account with that
    address); -F names the From header that sendmail adds; an existing
    From, Date and Message-ID are left alone."""
    srv1 = AioServer(t)
    srv2 = AioServer(t)
    _config(t, ("main", srv1.port, ME), ("alerts", srv2.port, "alerts@example.org"),
            default="main")
    r = sendmail(t, "-f", "alerts@example.org", "-F", "Cron Daemon", "x@example.com",
                 stdin="body\n")
    t.expect_rc(r, 0)
    srv1.sync()
    t.check(not srv1.messages, "the default account was used despite -f")
    m, msg = _one(t, srv2)
    t.check(m.mail_from == "alerts@example.org", f"envelope sender {m.mail_from}")
    t.check(msg["From"].addresses[0].display_name == "Cron Daemon" and
            msg["From"].addresses[0].addr_spec == "alerts@example.org",
            f"From {msg['From']!r}")

    # -r as -f; a non-ASCII -F is RFC 2047 encoded; "Name <addr>" in -f
    r = sendmail(t, "-r", "Me <me@example.org>", "-F", "Zoë Müller", "x@example.com",
                 stdin="body\n")
    t.expect_rc(r, 0)
    srv1.sync()
    m = srv1.messages[-1]
    msg = parse_msg(m.content)
    t.check(m.mail_from == ME, f"-r: envelope sender {m.mail_from}")
    t.check(all(b < 128 for b in m.content.split(b"\r\n\r\n")[0]),
            "the added From header is not ASCII")
    t.check(msg["From"].addresses[0].display_name == "Zoë Müller",
            f"From {msg['From']!r}")

    # the From header chooses the account when there is no -f
    r = sendmail(t, "x@example.com", stdin="From: Alerts <alerts@example.org>\n"
                 "Date: Sun, 29 Nov 2026 09:00:00 +0000\nMessage-ID: <fixed@example.org>\n\nb\n")
    t.expect_rc(r, 0)
    srv2.sync()
    t.check(len(srv2.messages) == 2, "the From header did not choose the account")
    msg = parse_msg(srv2.messages[-1].content)
    t.check(msg.get_all("Message-ID") == ["<fixed@example.org>"] and
            len(msg.get_all("Date")) == 1 and len(msg.get_all("From")) == 1,
            f"headers were duplicated: {srv2.messages[-1].content[:300]!r}")


@test()
def sendmail_subcommand_and_flags(t):
    """`smtpkit sendmail` is the same command; the flags other MTAs accept
    and ignore (cron: -FCronDaemon -i -B8BITMIME -oem) are fine; unknown
    flags are a usage error; mailq, -bp and -q say there is no queue;
    newaliases says there are no aliases."""
    srv = _server(t)
    r = t.smtpkit("sendmail", "-oem", "-odi", "-odb", "-oQ/var/spool", "-B8BITMIME",
                  "-B", "7BIT", "-L", "tag", "-Am", "-O", "DeliveryMode=b", "-G", "-U",
                  "-m", "-n", "-h", "5", "-FCronDaemon", "-i", "--", "x@example.com",
                  stdin="Subject: flags\n\nok\n")
    t.expect_rc(r, 0)
    m, msg = _one(t, srv)
    t.check(msg["From"].addresses[0].display_name == "CronDaemon", f"From {msg['From']!r}")

    for args in (["-Z", "x@example.com"], ["--frob"], ["-N", "sometimes", "x@example.com"],
                 ["-B", "9BIT", "x@example.com"], ["-f"]):
        r = sendmail(t, *args, stdin="x\n")
        t.expect_rc(r, 64)
        t.check(len(r.stderr_lines()) == 1, f"not one line on stderr: {r.describe()}")
    r = sendmail(t, stdin="x\n")
    t.expect_rc(r, 64)
    t.expect_err(r, r"no recipients")

    for argv in (["mailq"], ["sendmail", "-bp"], ["sendmail", "-q"], ["sendmail", "-q30m"]):
        r = run(t, [os.path.join(_bindir(t), argv[0])] + argv[1:])
        t.expect_rc(r, 69)
        t.expect_err(r, r"no queue yet")
    r = run(t, [os.path.join(_bindir(t), "newaliases")])
    t.expect_rc(r, 0)
    t.expect_err(r, r"keeps no aliases")
    srv.sync()
    t.check(len(srv.messages) == 1, "a failing run sent something")


@test()
def sendmail_tempfail_dead_letter(t):
    """A temporary failure (a 451, nothing listening) exits 75 and appends
    the message to ~/dead.letter, mode 0600, mbox with >From quoting."""
    srv = AioServer(t, data_reply="451 4.3.0 try again later")
    _config(t, ("main", srv.port, ME))
    body = "From the start of a line\n>From quoted already\nend\n"
    r = sendmail(t, "x@example.com", stdin="Subject: later\nBcc: keep@example.com\n\n" + body)
    t.expect_rc(r, 75)
    t.expect_err(r, r"451")
    t.expect_err(r, r"dead\.letter")
    dl = _dead_letter(t)
    t.check(dl.startswith(b"From me@example.org "), f"no mbox From line: {dl[:80]!r}")
    t.check(b"\r" not in dl, "dead.letter has CR octets")
    t.check(b"\n>From the start of a line\n>>From quoted already\nend\n\n" in dl,
            f"body not mboxrd-quoted: {dl!r}")
    t.check(b"Bcc: keep@example.com" in dl and b"Subject: later" in dl,
            "the header as given (Bcc too) is not in dead.letter")

    _config(t, ("main", closed_port(t), ME))
    r = sendmail(t, "x@example.com", stdin="Subject: second\n\nb\n")
    t.expect_rc(r, 75)
    t.expect_err(r, r"refused")
    dl = _dead_letter(t)
    t.check(dl.count(b"\nFrom me@example.org ") == 1 and b"Subject: second" in dl,
            "the second message was not appended")


@test()
def sendmail_permfail_dead_letter(t):
    """A refused recipient: its reply on stderr, exit 69, the message saved;
    with another recipient accepted, it was sent to that one."""
    srv = AioServer(t, refuse={"nobody@example.com": "550 5.1.1 no such user"})
    _config(t, ("main", srv.port, ME))
    r = sendmail(t, "nobody@example.com", "ok@example.com", stdin="Subject: some\n\nb\n")
    t.expect_rc(r, 69)
    t.expect_err(r, r"nobody@example\.com.*550 5\.1\.1 no such user")
    t.expect_err(r, r"not to <nobody@example\.com>")
    srv.sync()
    t.check([m.rcpt_tos for m in srv.messages] == [["ok@example.com"]],
            f"delivered: {[m.rcpt_tos for m in srv.messages]}")
    t.check(b"Subject: some" in _dead_letter(t), "the message was not saved")


@test()
def sendmail_no_account(t):
    """Without an account: one clear line, exit 78, the message saved."""
    r = sendmail(t, "x@example.com", stdin="Subject: lost?\n\nb\n")
    t.expect_rc(r, 78)
    t.expect_err(r, r"no account")
    t.check(b"Subject: lost?" in _dead_letter(t), "the message was not saved")


def _dsn_server(t, offer):
    def script(c):
        c.send("220 dsn.test ESMTP\r\n")
        while True:
            line = c.readline()
            if line is None:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                c.send("250-dsn.test\r\n250-PIPELINING\r\n" +
                       ("250-DSN\r\n" if offer else "") + "250 8BITMIME\r\n")
            elif verb in (b"MAIL", b"RCPT"):
                c.send("250 ok\r\n")
            elif verb == b"DATA":
                c.send("354 go\r\n")
                while True:
                    d = c.readline()
                    if d is None or d == b".\r\n":
                        break
                c.send("250 queued\r\n")
            elif verb == b"QUIT":
                c.send("221 bye\r\n")
                return
            else:
                c.send("500 what\r\n")
    return ScriptedServer(t, script)


@test()
def sendmail_dsn(t):
    """-N and -R become NOTIFY= and RET= (and -V ENVID=) when the server
    offers DSN, and are left out when it does not."""
    for offer in (True, False):
        srv = _dsn_server(t, offer)
        _config(t, ("main", srv.port, ME))
        r = sendmail(t, "-N", "success,failure", "-R", "hdrs", "-V", "id+1", "x@example.com",
                     stdin="Subject: dsn\n\nb\n")
        t.expect_rc(r, 0)
        srv.wait_done()
        lines = srv.received()
        mail = [ln for ln in lines if ln.startswith("MAIL")]
        rcpt = [ln for ln in lines if ln.startswith("RCPT")]
        if offer:
            t.check(mail == [f"MAIL FROM:<{ME}> RET=HDRS ENVID=id+2B1"], f"MAIL: {mail}")
            t.check(rcpt == ["RCPT TO:<x@example.com> NOTIFY=SUCCESS,FAILURE"], f"RCPT: {rcpt}")
        else:
            t.check(mail == [f"MAIL FROM:<{ME}>"] and rcpt == ["RCPT TO:<x@example.com>"],
                    f"without DSN on offer: {mail} {rcpt}")


@test()
def sendmail_bs(t):
    """-bs: an SMTP session on standard input and output, two messages
    (the second with a dot-stuffed line and no header), each relayed to the
    account's server; replies as RFC 5321 has them."""
    srv = _server(t)
    session = ("EHLO client.test\r\n"
               f"MAIL FROM:<{ME}>\r\nRCPT TO:<one@example.com>\r\nDATA\r\n"
               "Subject: first\r\nBcc: gone@example.com\r\n\r\nhello\r\n.\r\n"
               "MAIL FROM:<>\r\nRCPT TO:<two@example.com>\r\n"
               "RCPT TO:<bad address>\r\nDATA\r\n..stuffed\r\n.\r\n"
               "NOOP\r\nQUIT\r\n")
    r = sendmail(t, "-bs", stdin=session)
    t.expect_rc(r, 0)
    codes = [ln[:4] for ln in r.out.split("\r\n") if ln]
    t.check(codes[0] == "220 " and codes[-1] == "221 ", f"replies: {r.out!r}")
    t.check(codes.count("354 ") == 2, f"replies: {r.out!r}")
    t.check(len([c for c in codes if c == "250 "]) >= 6, f"replies: {r.out!r}")
    t.check("553 5.1.3" in r.out, f"the bad address was not refused: {r.out!r}")
    srv.sync()
    t.check([m.rcpt_tos for m in srv.messages] == [["one@example.com"], ["two@example.com"]],
            f"delivered {[m.rcpt_tos for m in srv.messages]}")
    first, second = (parse_msg(m.content) for m in srv.messages)
    t.check(first["Bcc"] is None and str(first["Subject"]) == "first", "first message")
    _check_added(t, second)
    t.check(second.get_content().replace("\r\n", "\n") == ".stuffed\n",
            f"second body {second.get_content()!r}")

    # a failure upstream is the reply to the final dot
    srv2 = AioServer(t, data_reply="554 5.7.1 spam")
    _config(t, ("main", srv2.port, ME))
    r = sendmail(t, "-bs", stdin=f"HELO c\r\nMAIL FROM:<{ME}>\r\nRCPT TO:<x@example.com>\r\n"
                 "DATA\r\nSubject: s\r\n\r\nb\r\n.\r\nQUIT\r\n")
    t.expect_rc(r, 0)
    t.check("\r\n554 5.7.1 " in r.out, f"the upstream refusal is not the reply: {r.out!r}")
    t.check(not os.path.exists(os.path.join(t.home, "dead.letter")),
            "-bs wrote dead.letter for a message its client was told about")


def _bs_session(*msgs, quit=True):
    """A -bs conversation: EHLO, then each (sender, recipient, subject) as
    MAIL, RCPT, DATA and a short message, then QUIT."""
    text = "EHLO client.test\r\n"
    for frm, rcpt, subject in msgs:
        text += (f"MAIL FROM:<{frm}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n"
                 f"From: {frm}\r\nSubject: {subject}\r\n\r\n{subject} body\r\n.\r\n")
    return text + ("QUIT\r\n" if quit else "")


def _dot_replies(out):
    """The replies to the final dots: the reply after each 354."""
    lines = [ln for ln in out.split("\r\n") if ln]
    return [lines[i + 1] for i, ln in enumerate(lines[:-1])
            if ln.startswith("354")]


@test()
def sendmail_bs_one_upstream_connection(t):
    """-bs: three messages in one conversation go through the same account,
    so they share ONE upstream connection (no new DNS, TCP, TLS, EHLO, AUTH
    per message); each dot is answered 250; -v says it reuses it."""
    srv = _server(t)
    msgs = [(ME, f"r{i}@example.com", f"message {i}") for i in (1, 2, 3)]
    r = sendmail(t, "-bs", "-v", stdin=_bs_session(*msgs))
    t.expect_rc(r, 0)
    dots = _dot_replies(r.out)
    t.check(len(dots) == 3 and all(d.startswith("250 ") for d in dots),
            f"dot replies {dots}: {r.out!r}")
    srv.sync()
    t.check([m.rcpt_tos for m in srv.messages] ==
            [["r1@example.com"], ["r2@example.com"], ["r3@example.com"]],
            f"delivered {[m.rcpt_tos for m in srv.messages]}")
    conns = srv.rec.conns
    t.check(len(conns) == 1, f"{len(conns)} upstream connections, expected 1: "
            f"{[c.verbs() for c in conns]}")
    verbs = conns[0].verbs()
    t.check(verbs.count("EHLO") == 1 and verbs.count("MAIL") == 3 and verbs[-1] == "QUIT",
            f"upstream verbs {verbs}")
    t.check(r.err.count("sendmail: reusing the connection to ") == 2,
            f"-v does not show the reuse: {r.err!r}")

    # input ends without QUIT: the upstream still gets its QUIT
    r = sendmail(t, "-bs", stdin=_bs_session(*msgs[:2], quit=False))
    t.expect_rc(r, 0)
    srv.sync()
    conns = srv.rec.conns
    t.check(len(conns) == 2 and conns[1].verbs()[-1] == "QUIT" and
            conns[1].verbs().count("MAIL") == 2,
            f"after EOF: {[c.verbs() for c in conns]}")


def _drop_after_each_message(c, state, lock):
    """A ScriptedServer script: one message per connection; the first
    connection then answers the next MAIL with 421 and closes, as a server
    whose idle timer ran out does."""
    with lock:
        state["conns"] += 1
        first = state["conns"] == 1
    c.send("220 drop.test ESMTP\r\n")
    c.expect("EHLO", "250-drop.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
    c.expect("MAIL", "250 2.1.0 Ok\r\n")
    c.expect("RCPT", "250 2.1.5 Ok\r\n")
    c.expect("DATA", "354 go on\r\n")
    body = b""
    while True:
        line = c.readline()
        if line is None:
            return
        if line in (b".\r\n", b".\n"):
            break
        body += line
    with lock:
        state["messages"].append(body)
    c.send("250 2.0.0 Ok: queued\r\n")
    if first:
        c.expect("MAIL", "421 4.4.2 drop.test idle timeout, closing\r\n")
        return
    c.expect("QUIT", "221 2.0.0 Bye\r\n")


@test()
def sendmail_bs_upstream_closed_while_idle(t):
    """-bs: the upstream closes the kept connection between two messages
    (silently, or with 421 to the next MAIL): the next message goes once on
    a new connection; both arrive, exactly once each, each dot 250."""
    import faultserver

    # the server hangs up after every message, saying nothing
    fs = faultserver.FaultServer({"replies": {
        ".": {"reply": "250 2.0.0 Ok: queued", "then": "close"}}}).start()
    t.defer(fs.stop)
    _config(t, ("main", fs.port, ME))
    msgs = [(ME, "a@example.com", "first"), (ME, "b@example.com", "second")]
    r = sendmail(t, "-bs", "-v", stdin=_bs_session(*msgs))
    t.expect_rc(r, 0)
    dots = _dot_replies(r.out)
    t.check(len(dots) == 2 and all(d.startswith("250 ") for d in dots),
            f"dot replies {dots}: {r.out!r}\n{tail(r.err)}")
    fs.wait_idle(10)
    got = fs.messages()
    t.check(len(got) == 2 and b"first body" in got[0] and b"second body" in got[1],
            f"received {got}: {fs.transcript()}")
    t.check(len(fs.conns) == 2 and all(len(c.messages) == 1 for c in fs.conns),
            f"connections {[c.verbs() for c in fs.conns]}")
    t.check("opening a new one" in r.err, f"-v does not say it reconnected: {r.err!r}")

    # the server answers the next MAIL with 421 and closes
    state, lock = {"conns": 0, "messages": []}, threading.Lock()
    ss = ScriptedServer(t, lambda c: _drop_after_each_message(c, state, lock))
    _config(t, ("main", ss.port, ME))
    r = sendmail(t, "-bs", stdin=_bs_session(*msgs))
    t.expect_rc(r, 0)
    dots = _dot_replies(r.out)
    t.check(len(dots) == 2 and all(d.startswith("250 ") for d in dots),
            f"dot replies {dots}: {r.out!r}\n{tail(r.err)}")
    ss.wait_done()
    got = state["messages"]
    t.check(len(got) == 2 and b"first body" in got[0] and b"second body" in got[1],
            f"received {got}: {ss.received()}")
    t.check(state["conns"] == 2, f"{state['conns']} connections, expected 2")


def _mail_then_close(c):
    """One message, then the next MAIL is accepted and the connection dies
    before RCPT is answered."""
    c.send("220 half.test ESMTP\r\n")
    c.expect("EHLO", "250-half.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
    c.expect("MAIL", "250 2.1.0 Ok\r\n")
    c.expect("RCPT", "250 2.1.5 Ok\r\n")
    c.expect("DATA", "354 go on\r\n")
    while c.readline() not in (None, b".\r\n", b".\n"):
        pass
    c.send("250 2.0.0 Ok: queued\r\n")
    c.expect("MAIL", "250 2.1.0 Ok\r\n")
    c.readline()


@test()
def sendmail_bs_no_retry_after_mail(t):
    """-bs: on a reused connection, a failure after the upstream accepted
    MAIL is not retried on a new one: the message is reported (4xx to its
    dot) and never sent twice."""
    srv = ScriptedServer(t, _mail_then_close)
    _config(t, ("main", srv.port, ME))
    r = sendmail(t, "-bs", stdin=_bs_session((ME, "a@example.com", "first"),
                                             (ME, "b@example.com", "second")))
    t.expect_rc(r, 0)
    dots = _dot_replies(r.out)
    t.check(len(dots) == 2 and dots[0].startswith("250 ") and dots[1].startswith("4"),
            f"dot replies {dots}: {r.out!r}")
    srv.wait_done()
    t.check(len(srv.conns) == 1, f"{len(srv.conns)} connections: {srv.received()}")


@test()
def sendmail_bs_two_accounts(t):
    """-bs: two messages whose senders belong to two accounts on two servers
    each reach their own server: the kept connection is closed when the
    account changes, and a third message back on the first account opens
    a new one."""
    one, two = AioServer(t), AioServer(t)
    other = "other@example.net"
    _config(t, ("main", one.port, ME), ("second", two.port, other), default="main")
    msgs = [(ME, "a@example.com", "via main"), (other, "b@example.com", "via second"),
            (ME, "c@example.com", "main again")]
    r = sendmail(t, "-bs", "-v", stdin=_bs_session(*msgs))
    t.expect_rc(r, 0)
    dots = _dot_replies(r.out)
    t.check(len(dots) == 3 and all(d.startswith("250 ") for d in dots),
            f"dot replies {dots}: {r.out!r}")
    one.sync()
    two.sync()
    t.check([(m.mail_from, m.rcpt_tos) for m in one.messages] ==
            [(ME, ["a@example.com"]), (ME, ["c@example.com"])],
            f"first server got {[(m.mail_from, m.rcpt_tos) for m in one.messages]}")
    t.check([(m.mail_from, m.rcpt_tos) for m in two.messages] == [(other, ["b@example.com"])],
            f"second server got {[(m.mail_from, m.rcpt_tos) for m in two.messages]}")
    t.check(len(one.rec.conns) == 2 and len(two.rec.conns) == 1 and
            all(c.verbs()[-1] == "QUIT" for c in one.rec.conns + two.rec.conns),
            f"connections: {[c.verbs() for c in one.rec.conns]} "
            f"{[c.verbs() for c in two.rec.conns]}")
    t.check("closing the connection to" in r.err and "account second" in r.err,
            f"-v does not say why it closed: {r.err!r}")


@test()
def sendmail_big_body_streams(t):
    """A 20 MB body is spooled and streamed, not held: peak RSS stays small."""
    srv = _server(t, data_size_limit=64 * 1024 * 1024)
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy\n"
    body = line * (20 * 1024 * 1024 // len(line))
    r = t.smtpkit("sendmail", "-i", "x@example.com", stdin=b"Subject: big\n\n" + body,
                  measure_rss=True, timeout=60)
    t.expect_rc(r, 0)
    m, _ = _one(t, srv)
    t.check(len(m.content) > len(body), f"{len(m.content)} octets arrived")
    if r.maxrss_kb:
        t.note(f"peak RSS {r.maxrss_kb} KiB")
        limit = 60000 if t.cfg.sanitized else 16000
        t.check(r.maxrss_kb < limit, f"peak RSS {r.maxrss_kb} KiB for a 20 MB body")


# ---------------------------------------------------------------------------
# real clients


def _need(t, prog):
    path = shutil.which(prog, path="/usr/bin:/bin")
    if path is None:
        t.skip(f"{prog} is not installed (scripts/install-deps installs it)")
    return path


@test()
def sendmail_php_mail(t):
    """PHP's mail() with sendmail_path = "<link> -t -i" (php-cli)."""
    php = _need(t, "php")
    srv = _server(t)
    link = os.path.join(_bindir(t), "sendmail")
    code = ('$ok = mail("Jane <jane@example.com>", "PHP subject", "line 1\\n.\\nline 3\\n",'
            ' "From: Web Site <me@example.org>\\r\\nCc: cc@example.com\\r\\n'
            'Bcc: boss@example.com"); exit($ok ? 0 : 3);')
    r = run(t, [php, "-n", "-d", f"sendmail_path={link} -t -i", "-r", code])
    t.expect_rc(r, 0)
    m, msg = _one(t, srv)
    t.check(sorted(m.rcpt_tos) == ["boss@example.com", "cc@example.com", "jane@example.com"],
            f"recipients {m.rcpt_tos}")
    t.check(str(msg["Subject"]) == "PHP subject" and msg["Bcc"] is None, "headers")
    t.check(msg["From"].addresses[0].display_name == "Web Site", f"From {msg['From']!r}")
    # PHP writes a line end of its own after the message
    t.check(msg.get_content().replace("\r\n", "\n").rstrip("\n") == "line 1\n.\nline 3",
            f"body {msg.get_content()!r}")
    _check_added(t, msg, frm=None)


@test()
def sendmail_bsd_mailx(t):
    """bsd-mailx, told where sendmail is with `set sendmail=` in $MAILRC."""
    mailx = _need(t, "bsd-mailx")
    srv = _server(t)
    rc = t.file("mailrc", f"set sendmail={os.path.join(_bindir(t), 'sendmail')}\n")
    r = run(t, [mailx, "-s", "bsd subject", "-c", "cc@example.com", "to@example.com"],
            stdin="mailx body\n", env={"MAILRC": rc})
    t.expect_rc(r, 0)
    m, msg = _one(t, srv)
    t.check(sorted(m.rcpt_tos) == ["cc@example.com", "to@example.com"], f"rcpts {m.rcpt_tos}")
    t.check(str(msg["Subject"]) == "bsd subject", f"Subject {msg['Subject']!r}")
    t.check(msg.get_content().strip() == "mailx body", f"body {msg.get_content()!r}")
    _check_added(t, msg)


@test()
def sendmail_s_nail(t):
    """s-nail, with -S mta=<link>."""
    snail = _need(t, "s-nail")
    srv = _server(t)
    r = run(t, [snail, "-n", "-S", f"mta={os.path.join(_bindir(t), 'sendmail')}",
                "-s", "snail subject", "to@example.com"], stdin="Grüße from s-nail\n",
            env={"MAILRC": "/dev/null"})
    t.expect_rc(r, 0)
    m, msg = _one(t, srv)
    t.check(m.rcpt_tos == ["to@example.com"], f"rcpts {m.rcpt_tos}")
    t.check(str(msg["Subject"]) == "snail subject", f"Subject {msg['Subject']!r}")
    t.check(msg.get_content().strip() == "Grüße from s-nail", f"body {msg.get_content()!r}")


@test()
def sendmail_git_send_email(t):
    """git send-email --smtp-server=<link> on a patch from git format-patch."""
    git = _need(t, "git")
    if subprocess.run([git, "send-email", "-h"], capture_output=True).returncode == 1 and \
            not os.path.exists("/usr/lib/git-core/git-send-email"):
        t.skip("git send-email is not installed (package git-email)")
    probe = subprocess.run(["perl", "-MMail::Address", "-e", "1"], capture_output=True)
    if probe.returncode != 0:
        t.skip("git send-email needs Perl's Mail::Address (libmailtools-perl)")
    srv = _server(t)
    repo = os.path.join(t.tmp, "repo")
    os.makedirs(repo)
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_DATE": "2026-11-29T09:00:00Z",
           "GIT_COMMITTER_DATE": "2026-11-29T09:00:00Z"}

    def git_ok(*args):
        r = run(t, [git] + list(args), env=env, cwd=repo)
        t.expect_rc(r, 0)
        return r
    git_ok("init", "-q")
    git_ok("config", "user.name", "Pat Hacker")
    git_ok("config", "user.email", ME)
    with open(os.path.join(repo, "f.txt"), "w") as f:
        f.write("one\n")
    git_ok("add", "f.txt")
    git_ok("commit", "-qm", "first")
    with open(os.path.join(repo, "f.txt"), "a") as f:
        f.write("two\n.\n")
    git_ok("commit", "-qam", "Add two\n\nWith a lone dot line in the file.")
    patch = git_ok("format-patch", "-1", "-o", os.path.join(t.tmp, "out")).out.strip()
    r = run(t, [git, "send-email", "--smtp-server=" + os.path.join(_bindir(t), "sendmail"),
                "--to=Reviewer <rev@example.com>", "--cc=list@example.com",
                f"--from=Pat Hacker <{ME}>", "--confirm=never", "--quiet",
                "--no-chain-reply-to", patch], env=env, cwd=repo, timeout=60)
    t.expect_rc(r, 0)
    m, msg = _one(t, srv)
    t.check(set(m.rcpt_tos) == {"rev@example.com", "list@example.com", ME},
            f"rcpts {m.rcpt_tos}")
    t.check(str(msg["Subject"]) == "[PATCH] Add two", f"Subject {msg['Subject']!r}")
    with open(patch, "rb") as f:
        want = f.read().split(b"\n\n", 1)[1]
    got = msg.get_payload(decode=True).replace(b"\r\n", b"\n")
    t.check(got == want, f"the patch changed on the way: {got[-200:]!r}")
    t.check(len(msg.get_all("Message-ID")) == 1, "Message-ID duplicated")


@test()
def sendmail_install_script(t):
    """scripts/install-sendmail (make install-sendmail), under ROOT=: links
    where nothing was; a refusal that changes nothing where another MTA's
    file is; FORCE=1 sets it aside, uninstall puts it back."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                          "scripts", "install-sendmail")
    root = os.path.join(t.tmp, "root")
    sbin = os.path.join(root, "usr", "sbin")

    def inst(*args, force=False):
        env = {"ROOT": root, "FORCE": "1" if force else "0"}
        return run(t, ["/bin/sh", script] + list(args) + [t.cfg.binary], env=env)

    r = inst("install")
    t.expect_rc(r, 0)
    for link in ("usr/sbin/sendmail", "usr/lib/sendmail", "usr/bin/mailq",
                 "usr/bin/newaliases"):
        p = os.path.join(root, link)
        t.check(os.path.realpath(p) == os.path.realpath(t.cfg.binary),
                f"{link} does not lead to smtpkit")
    t.expect_rc(inst("uninstall"), 0)
    t.check(not os.path.lexists(os.path.join(sbin, "sendmail")), "uninstall left the link")

    os.makedirs(sbin, exist_ok=True)
    mta = os.path.join(sbin, "sendmail")
    with open(mta, "w") as f:
        f.write("#!/bin/sh\n# another MTA\n")
    r = inst("install")
    t.expect_rc(r, 1)
    t.expect_err(r, r"another mail system owns: /usr/sbin/sendmail")
    t.expect_err(r, r"nothing was changed")
    t.check(not os.path.islink(mta) and "another MTA" in open(mta).read(),
            "the other MTA's sendmail was touched")
    t.check(not os.path.lexists(os.path.join(root, "usr", "bin", "mailq")),
            "a refused install still made links")
    t.expect_rc(inst("install", force=True), 0)
    t.check(os.path.realpath(mta) == os.path.realpath(t.cfg.binary), "FORCE=1 did not link")
    t.expect_rc(inst("uninstall"), 0)
    t.check(not os.path.islink(mta) and "another MTA" in open(mta).read(),
            "uninstall did not restore the other MTA's sendmail")


@test()
def sendmail_header_limit(t):
    """A header over 1 MiB is not taken apart (it is held in memory): exit
    65, nothing sent, the whole message in dead.letter."""
    srv = _server(t)
    head = "".join(f"X-Filler-{i}: {'x' * 60}\n" for i in range(20000))
    r = sendmail(t, "x@example.com", stdin=head + "\nbody\n")
    t.expect_rc(r, 65)
    t.expect_err(r, r"header is over 1048576 octets")
    srv.sync()
    t.check(not srv.messages, "a message with an oversized header was sent")
    dl = _dead_letter(t)
    t.check(b"X-Filler-19999: " in dl and dl.endswith(b"\nbody\n\n"),
            "dead.letter does not hold the whole message")


@test()
def sendmail_oauth_account(t):
    """An account whose OAuth2 token smtpkit keeps (smtpkit oauth login):
    sendmail logs in with XOAUTH2 and that token, as send does."""
    import test_oauth as to
    to._need_oauth(t)
    oauth = to._oauth(t)
    srv = to.OAuthSMTP(t, oauth, to.USER)
    to._write_config(t, to._account(t, "ms", oauth, srv=srv))
    tok = to._login(t, oauth)
    r = t.smtpkit("sendmail", "x@example.com", stdin="Subject: oauth sendmail\n\nb\n",
                  env=to._env(t), timeout=40)
    t.expect_rc(r, 0)
    srv.sync()
    t.check([str(parse_msg(m.content)["Subject"]) for m in srv.messages] ==
            ["oauth sendmail"], "the message did not arrive")
    m = srv.messages[0]
    t.check(m.mail_from == to.USER and m.rcpt_tos == ["x@example.com"],
            f"envelope {m.mail_from} -> {m.rcpt_tos}")
    t.check([(a.mechanism, a.success, a.token == tok["access"]) for a in srv.token_auths]
            == [("XOAUTH2", True, True)], "AUTH was not XOAUTH2 with the stored token")
