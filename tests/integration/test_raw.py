"""Ready messages (--raw): byte fidelity, line ends, dot-stuffing, stdin,
several messages in one session."""

from common import FROM, check_wire_lines, crlf, json_lines, raw_message, send_args
from harness import test
from servers import AioServer

TO = "rcpt@example.com"


def _send_raw(t, srv, *files, extra=(), stdin=None):
    args = list(send_args(srv.port, tls="none")) + ["--from", FROM, "--to", TO]
    for f in files:
        args += ["--raw", f]
    return t.smtpkit(*args, *extra, stdin=stdin)


def _received(t, srv, n=1):
    srv.sync()
    msgs = srv.messages
    t.check(len(msgs) == n, f"the server received {len(msgs)} messages, expected {n}")
    for m in msgs:
        t.check(m.mail_from == FROM and m.rcpt_tos == [TO],
                f"envelope was {m.mail_from!r} -> {m.rcpt_tos}")
    return msgs


def _same(t, got, want, what="message"):
    if got == want:
        return
    i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]),
             min(len(got), len(want)))
    t.fail(f"{what} differs at octet {i} (got {len(got)} octets, want {len(want)}): "
           f"got {got[max(0, i - 40):i + 40]!r}, want {want[max(0, i - 40):i + 40]!r}")


DOTTY_BODY = (b".starts with one dot\n..starts with two dots\n.\n"
              b"a line\n. dot space\n...\n.\r\nCRLF line above\n\n.\n")


@test()
def raw_lf_line_ends_and_dots(t):
    """LF line ends become CRLF; lines starting with '.' arrive intact
    (stuffed on the wire, un-stuffed by the server); a lone '.' line does not
    end the message early."""
    data = raw_message("dots", DOTTY_BODY, nl=b"\n")
    path = t.file("dots.eml", data)
    srv = AioServer(t)
    r = _send_raw(t, srv, path)
    t.expect_rc(r, 0)
    m = _received(t, srv)[0]
    _same(t, m.content, crlf(data))
    check_wire_lines(t, m.content)


@test()
def raw_crlf_bytes_identical(t):
    data = raw_message("crlf", crlf(DOTTY_BODY) + b"x" * 998 + b"\r\n" + b"." + b"y" * 997 + b"\r\n")
    path = t.file("crlf.eml", data)
    srv = AioServer(t)
    r = _send_raw(t, srv, path)
    t.expect_rc(r, 0)
    m = _received(t, srv)[0]
    _same(t, m.content, data)


@test()
def raw_no_final_newline(t):
    data = raw_message("no final newline", b"first\nlast line without newline", nl=b"\n")
    path = t.file("nonl.eml", data)
    srv = AioServer(t)
    r = _send_raw(t, srv, path)
    t.expect_rc(r, 0)
    m = _received(t, srv)[0]
    _same(t, m.content, crlf(data) + b"\r\n")


@test()
def raw_ends_with_dot_line_no_newline(t):
    """A last line '.' without a newline is data, not the terminator."""
    data = raw_message("ends with a dot", b"body\n.", nl=b"\n")
    path = t.file("dotend.eml", data)
    srv = AioServer(t)
    r = _send_raw(t, srv, path)
    t.expect_rc(r, 0)
    m = _received(t, srv)[0]
    _same(t, m.content, crlf(data) + b"\r\n")


@test()
def raw_8bit_body(t):
    """An 8-bit UTF-8 body is sent unchanged, with BODY=8BITMIME (the server
    offers 8BITMIME)."""
    body = "Grüße, 你好 — 8-bit body\n.Dot line ü\n".encode()
    data = raw_message("8bit", body).replace(
        b"charset=us-ascii", b"charset=utf-8\r\nContent-Transfer-Encoding: 8bit")
    data = crlf(data)
    path = t.file("8bit.eml", data)
    srv = AioServer(t)
    r = _send_raw(t, srv, path)
    t.expect_rc(r, 0)
    m = _received(t, srv)[0]
    _same(t, m.content, data)
    opts = [o.upper() for o in m.mail_options]
    t.check("BODY=8BITMIME" in opts, f"MAIL FROM options were {m.mail_options}, "
            "expected BODY=8BITMIME for an 8-bit message")


@test()
def raw_from_stdin(t):
    data = raw_message("from stdin", b"piped in\n.and a dot\n", nl=b"\n")
    srv = AioServer(t)
    r = _send_raw(t, srv, "-", stdin=data)
    t.expect_rc(r, 0)
    m = _received(t, srv)[0]
    _same(t, m.content, crlf(data))


@test()
def raw_several_in_one_session(t):
    """--raw a --raw b plus positional c: three messages, in order, one
    connection, one EHLO."""
    datas = [raw_message(f"message {i}", f"body {i}\n.dot {i}\n".encode(), nl=b"\n")
             for i in (1, 2, 3)]
    paths = [t.file(f"m{i}.eml", d) for i, d in enumerate(datas, 1)]
    srv = AioServer(t)
    args = list(send_args(srv.port, tls="none")) + ["--from", FROM, "--to", TO,
                                                    "--json", "--raw", paths[0],
                                                    "--raw", paths[1], paths[2]]
    r = t.smtpkit(*args)
    t.expect_rc(r, 0)
    msgs = _received(t, srv, 3)
    for i, (m, d) in enumerate(zip(msgs, datas), 1):
        _same(t, m.content, crlf(d), f"message {i}")
    t.check(len(srv.rec.conns) == 1, f"{len(srv.rec.conns)} connections, expected 1")
    verbs = srv.rec.conns[0].verbs()
    t.check(verbs.count("EHLO") == 1, f"EHLO sent {verbs.count('EHLO')} times")
    t.check(verbs.count("MAIL") == 3 and verbs.count("DATA") == 3,
            f"commands were {verbs}")
    objs = json_lines(t, r)
    t.check(len(objs) == 3, f"{len(objs)} JSON lines, expected 3")
    for i, (o, p) in enumerate(zip(objs, paths), 1):
        t.check(o.get("message") == i and o.get("status") == "accepted",
                f"JSON line {i}: {o}")
        src = str(o.get("source", ""))
        t.check(src == p or src.endswith("/" + p.rsplit("/", 1)[1]) or src == p.rsplit("/", 1)[1],
                f"JSON line {i} source is {src!r}, expected {p}")
