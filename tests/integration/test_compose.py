"""Composed messages (--subject / --text / --text-file) over plain SMTP."""

import re

from common import FROM, check_composed, send_args
from harness import test
from servers import AioServer

TO = ["alice@example.com", "bob@example.net"]
CC = ["carol@example.com"]
BCC = ["dave@example.org"]


def _one_message(t, srv, r):
    srv.sync()
    t.check(len(srv.rec.conns) == 1, f"{len(srv.rec.conns)} connections, expected 1")
    msgs = srv.messages
    t.check(len(msgs) == 1, f"the server received {len(msgs)} messages, expected 1")
    return msgs[0]


def _check_envelope(t, m, rcpts):
    t.check(m.mail_from == FROM, f"MAIL FROM was {m.mail_from!r}, expected {FROM}")
    t.check(sorted(m.rcpt_tos) == sorted(rcpts),
            f"RCPT TO was {m.rcpt_tos}, expected {sorted(rcpts)}")
    t.check(len(m.rcpt_tos) == len(set(m.rcpt_tos)), f"duplicate RCPT TO: {m.rcpt_tos}")


@test()
def compose_ascii_to_cc_bcc(t):
    srv = AioServer(t)
    subject = "Plain ASCII subject: server check"
    text = "Hello Alice,\nthis is line two.\n\n-- \nsmtpkit\n"
    args = send_args(srv.port, tls="none") + ["--from", FROM]
    for a in TO:
        args += ["--to", a]
    args += ["--cc", CC[0], "--bcc", BCC[0], "--subject", subject, "--text", text]
    r = t.smtpkit(*args)
    t.expect_rc(r, 0)
    m = _one_message(t, srv, r)
    _check_envelope(t, m, TO + CC + BCC)
    check_composed(t, m, subject=subject, text=text, to=TO, cc=CC)
    t.check(BCC[0].encode() not in m.content, "the Bcc address appears in the message")
    t.check(m.tls is None, "plain session, but the server saw TLS")
    t.check(re.search(r"^message 1\b.*\baccepted\b", r.out, re.M),
            f"stdout does not report message 1 as accepted: {r.out!r}")


@test()
def compose_utf8_subject_and_body(t):
    srv = AioServer(t)
    subject = ("Grüße aus 北京 — Привет, мир! ✓ a subject long enough to need "
               "several encoded words: ünïcödé ✓✓✓ 日本語のテキスト")
    text = ("Grüße,\nzweite Zeile mit Umlauten: äöüß ÄÖÜ\n中文：你好，世界\n"
            "emoji: 📬✉️\n.leading dot line\nend\n")
    r = t.smtpkit(*send_args(srv.port, tls="none"), "--from", FROM, "--to", TO[0],
                  "--subject", subject, "--text", text)
    t.expect_rc(r, 0)
    m = _one_message(t, srv, r)
    _check_envelope(t, m, [TO[0]])
    check_composed(t, m, subject=subject, text=text, to=[TO[0]])
    t.check(not any(o.upper().startswith("SMTPUTF8") for o in m.mail_options),
            f"SMTPUTF8 requested for an ASCII envelope: {m.mail_options}")


@test()
def compose_text_file_long_lines(t):
    srv = AioServer(t)
    text = ("short first line\n" + "x" * 3000 + "\n" + "ü" * 1500 + "\n"
            + "word " * 700 + "\nlast line\n")
    path = t.file("body.txt", text)
    r = t.smtpkit(*send_args(srv.port, tls="none"), "--from", FROM, "--to", TO[0],
                  "--subject", "long lines", "--text-file", path)
    t.expect_rc(r, 0)
    m = _one_message(t, srv, r)
    _check_envelope(t, m, [TO[0]])
    check_composed(t, m, subject="long lines", text=text, to=[TO[0]])


@test()
def compose_comma_separated_lists(t):
    srv = AioServer(t)
    r = t.smtpkit(*send_args(srv.port, tls="none"), "--from", FROM,
                  "--to", ",".join(TO), "--cc", "carol@example.com,erin@example.com",
                  "--bcc", "dave@example.org,frank@example.org",
                  "--subject", "lists", "--text", "hi\n")
    t.expect_rc(r, 0)
    m = _one_message(t, srv, r)
    rcpts = TO + ["carol@example.com", "erin@example.com", "dave@example.org",
                  "frank@example.org"]
    _check_envelope(t, m, rcpts)
    check_composed(t, m, subject="lists", text="hi\n", to=TO,
                   cc=["carol@example.com", "erin@example.com"])
    t.check(b"dave@example.org" not in m.content and b"frank@example.org" not in m.content,
            "a Bcc address appears in the message")


@test()
def compose_helo_name(t):
    srv = AioServer(t)
    r = t.smtpkit(*send_args(srv.port, tls="none"), "--helo", "client.example.test",
                  "--from", FROM, "--to", TO[0], "--subject", "helo", "--text", "x\n")
    t.expect_rc(r, 0)
    _one_message(t, srv, r)
    ehlos = srv.rec.conns[0].commands("EHLO")
    t.check(ehlos and all(e.split()[1:] == ["client.example.test"] for e in ehlos),
            f"EHLO lines were {ehlos}, expected 'EHLO client.example.test'")


@test()
def verbose_transcript_matches_server(t):
    """-v: a timestamped transcript on stderr, and every command the server
    received appears in it as sent; stdout is unchanged."""
    srv = AioServer(t)
    r = t.smtpkit(*send_args(srv.port, tls="none"), "-v", "--from", FROM, "--to", TO[0],
                  "--cc", CC[0], "--subject", "transcript", "--text", "hello\n")
    t.expect_rc(r, 0)
    m = _one_message(t, srv, r)
    _check_envelope(t, m, [TO[0], CC[0]])
    t.check(re.search(r"^message 1\b.*\baccepted\b", r.out, re.M),
            f"stdout changed under -v: {r.out!r}")
    err_lines = r.err.splitlines()
    for line, _ in srv.rec.conns[0].lines:
        t.check(any(line in el for el in err_lines),
                f"the transcript does not show the command {line!r}")
    t.check(any("250" in el for el in err_lines), "the transcript shows no replies")
    stamped = [el for el in err_lines if re.match(r"^\W*\d+(?:[.:]\d+)+", el)]
    t.check(len(stamped) >= len(srv.rec.conns[0].lines),
            f"transcript lines without timestamps: {err_lines[:5]}")


@test()
def compose_utf8_address_needs_smtputf8(t):
    """A non-ASCII recipient (RFC 6531): to a server without SMTPUTF8,
    nothing is sent, exit 69, and the error names the address; to one with
    it, MAIL carries SMTPUTF8 and the UTF-8 address arrives as given."""
    rcpt = "用户@example.com"
    plain = AioServer(t)
    r = t.smtpkit(*send_args(plain.port, tls="none"), "--from", FROM, "--to", rcpt,
                  "--subject", "utf8", "--text", "x\n")
    t.expect_rc(r, 69)
    said = r.out + r.err
    t.check(f"<{rcpt}> is not ASCII" in said and "SMTPUTF8" in said,
            f"the error does not name the address and the extension: {said!r}")
    plain.sync()
    t.check(not plain.messages and not any(ln.upper().startswith(("MAIL", "RCPT"))
                                           for c in plain.rec.conns for ln, _ in c.lines),
            "something reached the server without SMTPUTF8")

    u8 = AioServer(t, smtputf8=True)
    r = t.smtpkit(*send_args(u8.port, tls="none"), "--from", FROM, "--to", rcpt,
                  "--subject", "utf8", "--text", "x\n")
    t.expect_rc(r, 0)
    m = _one_message(t, u8, r)
    t.check(m.rcpt_tos == [rcpt], f"RCPT TO was {m.rcpt_tos}")
    t.check(any(o.upper() == "SMTPUTF8" for o in m.mail_options),
            f"MAIL FROM did not ask for SMTPUTF8: {m.mail_options}")
