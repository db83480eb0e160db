"""Bad input (nothing sent), server refusals, hang-ups and timeouts."""

import re

from common import FROM, json_lines, raw_message, send_args
from harness import test
from servers import AioServer, ScriptedServer, closed_port

TO = "rcpt@example.com"


# ---------------------------------------------------------------------------
# bad input: refused locally, and the server receives no MAIL


def _bad_input(t, extra, codes, err_pattern, what, env=None, stdin=None, base=True):
    srv = AioServer(t)
    args = list(send_args(srv.port, tls="none")) if base else ["send"]
    r = t.smtpkit(*args, *extra, env=env, stdin=stdin)
    t.expect_rc(r, *codes)
    t.expect_err(r, err_pattern, what)
    srv.sync()
    mails = srv.mails()
    t.check(not mails, f"bad input, yet the server received {mails}")
    t.check(not srv.messages, "bad input, yet a message was delivered")
    if srv.rec.conns:
        t.note("connected before refusing the input")
    return r


def _msg(**kw):
    d = {"--from": FROM, "--to": TO, "--subject": "bad input", "--text": "x\n"}
    d.update(kw)
    out = []
    for k, v in d.items():
        if v is not None:
            out += [k, v]
    return out


@test()
def bad_input_subject_crlf_injection(t):
    _bad_input(t, _msg(**{"--subject": "a\r\nBcc: victim@example.net"}), (64, 65),
               r"subject", "the --subject option")


@test()
def bad_input_subject_bare_lf(t):
    _bad_input(t, _msg(**{"--subject": "a\nX-Injected: yes"}), (64, 65),
               r"subject", "the --subject option")


@test()
def bad_input_invalid_to(t):
    _bad_input(t, _msg(**{"--to": "not an address"}), (64,),
               r"not an address|--to", "the bad --to address")


@test()
def bad_input_to_command_injection(t):
    _bad_input(t, _msg(**{"--to": "a@example.com>\r\nRCPT TO:<evil@example.net"}), (64,),
               r"--to|address", "the bad --to address")


@test()
def bad_input_invalid_from(t):
    _bad_input(t, _msg(**{"--from": "no-at-sign"}), (64,), r"no-at-sign|--from",
               "the bad --from address")


@test()
def bad_input_missing_to(t):
    _bad_input(t, _msg(**{"--to": None}), (64,), r"--to|recipient", "the missing --to")


@test()
def bad_input_unknown_flag(t):
    _bad_input(t, _msg() + ["--no-such-flag"], (64,), r"no-such-flag",
               "the unknown flag")


@test()
def bad_input_bad_tls_value(t):
    srv = AioServer(t)
    r = t.smtpkit("send", "--host", "127.0.0.1", "--port", srv.port, "--tls", "sometimes",
                  *_msg())
    t.expect_rc(r, 64)
    t.expect_err(r, r"sometimes|--tls", "the bad --tls value")
    srv.sync()
    t.check(not srv.rec.conns, "connected despite a bad --tls value")


@test()
def bad_input_raw_line_too_long(t):
    body = b"".join(b"line %d\n" % i for i in range(1, 5)) + b"y" * 1000 + b"\nafter\n"
    data = raw_message("long line", body, nl=b"\n")
    path = t.file("toolong.eml", data)
    lineno = data[:data.index(b"y" * 1000)].count(b"\n") + 1
    r = _bad_input(t, ["--from", FROM, "--to", TO, "--raw", path], (65,),
                   re.escape("toolong.eml"), "the file name")
    t.expect_err(r, rf"\b{lineno}\b", f"the line number ({lineno})")
    t.expect_err(r, r"998|1000|long", "that the line is too long")


@test()
def bad_input_second_raw_file_bad(t):
    """Every --raw file is checked before anything is sent: a bad second
    file means the good first one is not sent either."""
    good = t.file("good.eml", raw_message("good", b"fine\n", nl=b"\n"))
    bad = t.file("bad.eml", raw_message("bad", b"z" * 1200 + b"\n", nl=b"\n"))
    _bad_input(t, ["--from", FROM, "--to", TO, "--raw", good, "--raw", bad], (65,),
               re.escape("bad.eml"), "the bad file")


@test()
def bad_input_raw_nul_octet(t):
    data = raw_message("nul", b"before\x00after\n", nl=b"\n")
    path = t.file("nul.eml", data)
    _bad_input(t, ["--from", FROM, "--to", TO, "--raw", path], (65,),
               re.escape("nul.eml"), "the file name")


@test()
def bad_input_raw_missing_file(t):
    path = t.tmp + "/does-not-exist.eml"
    _bad_input(t, ["--from", FROM, "--to", TO, "--raw", path], (66,),
               re.escape("does-not-exist.eml"), "the missing file")


@test()
def bad_input_raw_is_directory(t):
    _bad_input(t, ["--from", FROM, "--to", TO, "--raw", t.tmp], (66,),
               re.escape(t.tmp.rsplit("/", 1)[1]), "the unreadable path")


@test()
def bad_input_text_file_missing(t):
    _bad_input(t, _msg(**{"--text": None, "--text-file": t.tmp + "/no-body.txt"}), (66,),
               r"no-body\.txt", "the missing --text-file")


@test()
def bad_input_password_env_unset(t):
    env_name = "SMTPKIT_TEST_UNSET_VARIABLE"
    _bad_input(t, _msg() + ["--user", "alice", "--password-env", env_name,
                            "--allow-plaintext-auth"], (78,),
               env_name, "the unset variable")


@test()
def bad_input_no_password_source(t):
    _bad_input(t, _msg() + ["--user", "alice", "--allow-plaintext-auth"], (78,),
               r"password", "the missing password source")


@test()
def bad_input_password_file_missing(t):
    _bad_input(t, _msg() + ["--user", "alice", "--password-file", t.tmp + "/no-password",
                            "--allow-plaintext-auth"], (66, 78),
               r"no-password", "the missing password file")


# ---------------------------------------------------------------------------
# refusals and hang-ups, from a scripted server


def _scripted(t, greeting, replies, after=None):
    """A server that greets, then answers each command verb from replies
    (verb -> reply text or the string "close"); QUIT gets 221."""
    def script(c):
        c.send(greeting)
        while True:
            line = c.readline(timeout=t.timeout(20))
            if line is None:
                return
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].strip().upper().decode(errors="replace")
            if verb == "QUIT":
                c.send("221 2.0.0 bye\r\n")
                return
            reply = replies.get(verb, "250 OK\r\n")
            if reply == "close":
                return
            if callable(reply):
                if reply(c) == "close":
                    return
                continue
            c.send(reply)
    return ScriptedServer(t, script)


EHLO = "250-smtp.test\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"


def _verbs(srv):
    return [ln.split(" ", 1)[0].split(":", 1)[0].upper() for ln in srv.received()]


@test()
def greeting_554_refused(t):
    srv = _scripted(t, "554 5.3.2 smtp.test No SMTP service here\r\n", {})
    r = t.smtpkit(*send_args(srv.port, tls="none"), *_msg())
    srv.wait_done(t.timeout(10))
    t.expect_rc(r, 69)
    t.expect_session_error_line(r)
    t.expect_err(r, r"554", "the 554 code")
    t.expect_err(r, r"No SMTP service here", "the server's text")
    verbs = _verbs(srv)
    t.check("MAIL" not in verbs and "EHLO" not in verbs,
            f"the client went on after a 554 greeting: {verbs}")


@test()
def greeting_554_json(t):
    srv = _scripted(t, "554 5.3.2 smtp.test No SMTP service here\r\n", {})
    r = t.smtpkit(*send_args(srv.port, tls="none"), "--json", *_msg())
    t.expect_rc(r, 69)
    objs = json_lines(t, r)
    errs = [o["error"] for o in objs if isinstance(o.get("error"), dict)]
    t.check(errs, f"no {{\"error\": ...}} object on stdout: {r.out!r}")
    e = errs[0]
    t.check(e.get("stage") == "greeting", f"error stage {e.get('stage')!r}, expected greeting")
    t.check(e.get("code") == 554, f"error code {e.get('code')!r}, expected 554")
    t.check(e.get("enhanced") == "5.3.2", f"enhanced {e.get('enhanced')!r}, expected 5.3.2")
    t.check(e.get("kind") == "reply", f"kind {e.get('kind')!r}, expected reply")
    t.check("No SMTP service here" in str(e.get("message", "")), f"message: {e}")


@test()
def mail_421_is_temporary(t):
    srv = _scripted(t, "220 smtp.test ESMTP\r\n", {
        "EHLO": EHLO,
        "MAIL": lambda c: (c.send("421 4.3.2 smtp.test Service shutting down\r\n"), "close")[1],
    })
    r = t.smtpkit(*send_args(srv.port, tls="none"), *_msg())
    srv.wait_done(t.timeout(10))
    t.expect_rc(r, 75)
    t.expect_err(r, r"421", "the 421 code")
    t.expect_err(r, r"shutting down", "the server's text")
    verbs = _verbs(srv)
    t.check("MAIL" in verbs and "DATA" not in verbs, f"the server received {verbs}")


@test()
def mail_553_sender_refused(t):
    srv = AioServer(t, mail_reply="553 5.1.8 Sender address rejected: Domain not found")
    r = t.smtpkit(*send_args(srv.port, tls="none"), *_msg())
    t.expect_rc(r, 69)
    t.check("Domain not found" in r.out + r.err, f"the 553 text is not shown: {r.describe()}")
    srv.sync()
    t.check(not srv.messages, "a message was delivered after MAIL was refused")


@test()
def mail_550_5_7_1_policy_refusal(t):
    """550 5.7.1 (not allowed to relay / sender not owned by the login) is
    permanent: exit 69 or 77 (permission), the reply is shown."""
    srv = AioServer(t, mail_reply="550 5.7.1 Sender not allowed to relay")
    r = t.smtpkit(*send_args(srv.port, tls="none"), *_msg())
    t.expect_rc(r, 69, 77)
    t.check("Sender not allowed" in r.out + r.err, f"the 550 text is not shown: {r.describe()}")
    srv.sync()
    t.check(not srv.messages, "a message was delivered after MAIL was refused")
    t.note(f"exit {r.rc}")


@test()
def data_552_refused(t):
    srv = AioServer(t, data_reply="552 5.3.4 Message too big for this server")
    r = t.smtpkit(*send_args(srv.port, tls="none"), "--json", *_msg())
    t.expect_rc(r, 69)
    objs = [o for o in json_lines(t, r) if "message" in o]
    t.check(objs and objs[0].get("status") == "failed", f"JSON: {r.out!r}")
    e = objs[0].get("error") or {}
    t.check(e.get("stage") == "data" and e.get("code") == 552 and e.get("enhanced") == "5.3.4",
            f"error is {e}, expected stage data, 552, 5.3.4")
    srv.sync()
    t.check(len(srv.messages) == 1, "the server did not see the DATA it refused")


@test()
def data_451_is_temporary(t):
    srv = AioServer(t, data_reply="451 4.3.0 Try again later")
    r = t.smtpkit(*send_args(srv.port, tls="none"), *_msg())
    t.expect_rc(r, 75)
    t.check("451" in r.out + r.err and "Try again later" in r.out + r.err,
            f"the 451 reply is not shown: {r.describe()}")


@test()
def server_closes_after_rcpt(t):
    srv = _scripted(t, "220 smtp.test ESMTP\r\n", {"EHLO": EHLO, "RCPT": "close"})
    r = t.smtpkit(*send_args(srv.port, tls="none"), *_msg())
    srv.wait_done(t.timeout(10))
    t.expect_fail(r)
    t.expect_session_error_line(r)
    t.expect_err(r, r"clos|disconnect|eof|end of|reset|lost|hung up",
                 "that the server closed the connection")
    verbs = _verbs(srv)
    t.check("RCPT" in verbs and "DATA" not in verbs, f"the server received {verbs}")
    t.note(f"exit {r.rc}")


@test()
def server_closes_during_data(t):
    def data(c):
        c.send("354 go ahead\r\n")
        c.readline(timeout=t.timeout(10))  # one line of the message, then hang up
        return "close"
    srv = _scripted(t, "220 smtp.test ESMTP\r\n", {"EHLO": EHLO, "DATA": data})
    r = t.smtpkit(*send_args(srv.port, tls="none"), *_msg(**{"--text": "x\n" * 2000}))
    srv.wait_done(t.timeout(10))
    t.expect_fail(r)
    t.expect_session_error_line(r)
    t.expect_err(r, r"clos|disconnect|eof|end of|reset|lost|broken|hung up",
                 "that the server closed the connection")
    t.check("DATA" in _verbs(srv), "the server never got DATA")
    t.note(f"exit {r.rc}")


@test()
def connection_refused(t):
    port = closed_port(t)
    r = t.smtpkit(*send_args(port, tls="none"), "--json", *_msg())
    t.expect_rc(r, 69)
    t.expect_session_error_line(r)
    t.expect_err(r, r"refused", "'connection refused'")
    errs = [o["error"] for o in json_lines(t, r) if isinstance(o.get("error"), dict)]
    t.check(errs and errs[0].get("stage") == "connect" and errs[0].get("kind") == "refused",
            f"JSON error: {errs}")


# ---------------------------------------------------------------------------
# timeouts: measured, never slept


@test()
def greeting_timeout(t):
    srv = ScriptedServer(t, lambda c: c.hang(timeout=60))
    r = t.smtpkit(*send_args(srv.port, tls="none", timeout=2), *_msg())
    t.expect_rc(r, 75)
    t.expect_session_error_line(r)
    t.expect_err(r, r"greeting", "the greeting stage")
    t.expect_err(r, r"time|within", "the timeout")
    t.check(1.5 <= r.elapsed < 10, f"gave up after {r.elapsed:.1f}s with --timeout 2")
    t.check(not srv.received(), f"the client sent {srv.received()} before any greeting")
    t.note(f"gave up after {r.elapsed:.1f}s")


@test()
def greeting_timeout_json(t):
    srv = ScriptedServer(t, lambda c: c.hang(timeout=60))
    r = t.smtpkit(*send_args(srv.port, tls="none", timeout=2), "--json", *_msg())
    t.expect_rc(r, 75)
    errs = [o["error"] for o in json_lines(t, r) if isinstance(o.get("error"), dict)]
    t.check(errs and errs[0].get("stage") == "greeting" and errs[0].get("kind") == "timeout",
            f"JSON error: {errs}")


@test()
def data_reply_timeout(t):
    """The server takes the message but never answers the final dot."""
    def data(c):
        c.send("354 go ahead\r\n")
        while True:
            line = c.readline(timeout=t.timeout(20))
            if line is None or line == b".\r\n":
                break
        c.hang(timeout=60)
        return "close"
    srv = _scripted(t, "220 smtp.test ESMTP\r\n", {"EHLO": EHLO, "DATA": data})
    r = t.smtpkit(*send_args(srv.port, tls="none", timeout=2), *_msg())
    t.expect_rc(r, 75)
    t.expect_err(r, r"time|within", "the timeout")
    t.check(1.5 <= r.elapsed < 10, f"gave up after {r.elapsed:.1f}s with --timeout 2")
    t.note(f"gave up after {r.elapsed:.1f}s")
