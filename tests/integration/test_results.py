"""Per-recipient results, pipelining, and --json against the server's view."""

import re

from common import FROM, json_lines, send_args
from harness import test
from servers import AioServer, ScriptedServer

GOOD1, BAD, GOOD2 = "good1@example.com", "nobody@example.com", "good2@example.com"
REFUSAL = "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"


def _args(srv, *rcpts, json=False):
    args = list(send_args(srv.port, tls="none")) + ["--from", FROM]
    for a in rcpts:
        args += ["--to", a]
    args += ["--subject", "per-recipient", "--text", "hello\n"]
    if json:
        args.append("--json")
    return args


@test()
def partial_refusal_text_output(t):
    srv = AioServer(t, refuse={BAD: REFUSAL})
    r = t.smtpkit(*_args(srv, GOOD1, BAD, GOOD2))
    srv.sync()
    msgs = srv.messages
    t.check(len(msgs) == 1, f"the server received {len(msgs)} messages, expected 1")
    t.check(msgs[0].rcpt_tos == [GOOD1, GOOD2],
            f"accepted recipients were {msgs[0].rcpt_tos}, expected {[GOOD1, GOOD2]}")
    t.check(srv.rec.refused == [BAD], f"the server refused {srv.rec.refused}")
    t.check(BAD in r.out, f"stdout does not name the refused recipient: {r.out!r}")
    t.check(re.search(r"refused|partial|rejected", r.out, re.I),
            f"stdout does not say a recipient was refused: {r.out!r}")
    t.check(re.search(r"^message 1\b", r.out, re.M), f"no 'message 1' line: {r.out!r}")
    t.note(f"exit {r.rc} for a partial delivery")


@test()
def partial_refusal_json(t):
    srv = AioServer(t, refuse={BAD: REFUSAL})
    r = t.smtpkit(*_args(srv, GOOD1, BAD, GOOD2, json=True))
    srv.sync()
    t.check(len(srv.messages) == 1, "the message was not delivered to the accepted recipients")
    objs = json_lines(t, r)
    t.check(len(objs) == 1, f"{len(objs)} JSON lines, expected 1: {r.out!r}")
    o = objs[0]
    t.check(o.get("message") == 1 and o.get("source") == "composed", f"JSON: {o}")
    t.check(o.get("status") == "partial", f"status is {o.get('status')!r}, expected 'partial'")
    t.check(o.get("code") == 250, f"code is {o.get('code')!r}, expected 250 (the DATA reply)")
    rc = {x.get("address"): x for x in o.get("recipients", [])}
    t.check(sorted(rc) == sorted([GOOD1, BAD, GOOD2]), f"recipients: {list(rc)}")
    bad = rc[BAD]
    t.check(bad.get("status") == "refused" and bad.get("code") == 550
            and bad.get("enhanced") == "5.1.1",
            f"refused recipient: {bad}")
    t.check("User unknown" in str(bad.get("reply", "")), f"reply text lost: {bad}")
    for g in (GOOD1, GOOD2):
        t.check(rc[g].get("status") == "accepted" and rc[g].get("code") == 250,
                f"accepted recipient: {rc[g]}")
        t.check(rc[g].get("enhanced") == "2.1.5", f"enhanced code: {rc[g]}")


@test()
def all_recipients_refused(t):
    srv = AioServer(t, refuse={GOOD1: REFUSAL.replace(BAD, GOOD1), BAD: REFUSAL})
    r = t.smtpkit(*_args(srv, GOOD1, BAD, json=True))
    t.expect_rc(r, 69)
    srv.sync()
    t.check(not srv.messages, "the server received a message with no recipients")
    t.check(sorted(srv.rec.refused) == sorted([GOOD1, BAD]), f"refused: {srv.rec.refused}")
    objs = [o for o in json_lines(t, r) if "message" in o]
    t.check(len(objs) == 1, f"JSON lines: {r.out!r}")
    o = objs[0]
    t.check(o.get("status") == "failed", f"status is {o.get('status')!r}, expected 'failed'")
    t.check(all(x.get("status") == "refused" for x in o.get("recipients", [])) and
            len(o.get("recipients", [])) == 2, f"recipients: {o.get('recipients')}")
    err = o.get("error") or {}
    t.check(err.get("stage") == "rcpt" and err.get("code") == 550,
            f"error is {err}, expected stage rcpt, code 550")


@test()
def all_recipients_refused_text(t):
    srv = AioServer(t, refuse={BAD: REFUSAL})
    r = t.smtpkit(*_args(srv, BAD))
    t.expect_rc(r, 69)
    srv.sync()
    t.check(not srv.messages, "the server received a message with no recipients")
    t.check(BAD in r.out + r.err, f"the refused address is not named: {r.describe()}")
    t.check("550" in r.out + r.err, f"the 550 reply is not shown: {r.describe()}")


@test()
def json_accepted_matches_server(t):
    srv = AioServer(t)
    rcpts = ["a@example.com", "b@example.net"]
    r = t.smtpkit(*_args(srv, *rcpts, json=True))
    t.expect_rc(r, 0)
    srv.sync()
    objs = json_lines(t, r)
    t.check(len(objs) == 1, f"{len(objs)} JSON lines: {r.out!r}")
    o = objs[0]
    t.check(o.get("message") == 1 and o.get("status") == "accepted", f"JSON: {o}")
    t.check(o.get("code") == 250 and o.get("enhanced") == "2.0.0", f"JSON: {o}")
    t.check("queued as M1" in str(o.get("reply", "")),
            f"reply {o.get('reply')!r} is not the server's '250 2.0.0 OK queued as M1'")
    got = [x.get("address") for x in o.get("recipients", [])]
    t.check(got == srv.messages[0].rcpt_tos == rcpts,
            f"JSON recipients {got}, server saw {srv.messages[0].rcpt_tos}")
    t.check("error" not in o, f"error in an accepted result: {o}")


@test()
def pipelining_groups_envelope(t):
    """With PIPELINING offered, MAIL, every RCPT and DATA go out without
    waiting for replies (RFC 2920): the server reads them all before it
    answers any."""
    rcpts = ["p1@example.com", "p2@example.com", "p3@example.com"]
    seen = {}

    def script(c):
        c.send("220 smtp.test ESMTP scripted\r\n")
        c.expect("EHLO", "250-smtp.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                         "250 ENHANCEDSTATUSCODES\r\n")
        group = []
        while True:  # read without answering until DATA arrives (or timeout)
            line = c.readline(timeout=t.timeout(5))
            if line is None:
                break
            group.append(line)
            if line.upper().startswith(b"DATA"):
                break
        seen["group"] = [g.decode().rstrip() for g in group]
        for g in group:
            v = g[:4].upper()
            if v == b"MAIL":
                c.send("250 2.1.0 OK\r\n")
            elif v == b"RCPT":
                c.send("250 2.1.5 OK\r\n")
            elif v == b"DATA":
                c.send("354 go ahead\r\n")
        body = []
        while True:
            line = c.readline(timeout=t.timeout(10))
            if line is None or line == b".\r\n":
                break
            body.append(line)
        seen["body"] = b"".join(body)
        c.send("250 2.0.0 OK queued\r\n")
        line = c.readline(timeout=t.timeout(10))
        if line and line.upper().startswith(b"QUIT"):
            c.send("221 2.0.0 bye\r\n")

    srv = ScriptedServer(t, script)
    r = t.smtpkit(*_args(srv, *rcpts))
    srv.wait_done(t.timeout(10))
    group = seen.get("group", [])
    verbs = [g.split(" ", 1)[0].split(":", 1)[0].upper() for g in group]
    t.check(verbs == ["MAIL"] + ["RCPT"] * 3 + ["DATA"],
            f"before any reply the server got {group} (expected MAIL, 3 RCPT, DATA pipelined)")
    t.expect_rc(r, 0)
    t.check(b"hello" in seen.get("body", b""), "the body did not arrive")
