"""Volume: 1,000 messages in one session, and one 50 MB message in bounded
memory.  These run alone, after the other tests."""

import hashlib
import os
import re

from common import FROM, crlf, raw_message, send_args
from harness import TIME, test
from servers import AioServer, SmtpSink

TO = "bulk@example.com"
N = 1000


def _bulk_files(t, n=N):
    d = os.path.join(t.tmp, "bulk")
    os.makedirs(d)
    paths, datas = [], []
    for i in range(1, n + 1):
        data = raw_message(f"bulk message {i}", f"message number {i}\n.dot line {i}\n".encode(),
                           to=TO, msgid=f"<bulk{i}@example.org>", nl=b"\n")
        p = os.path.join(d, f"m{i:04d}.eml")
        with open(p, "wb") as f:
            f.write(data)
        paths.append(p)
        datas.append(data)
    return paths, datas


def _check_stdout(t, r, n):
    acc = re.findall(r"^message (\d+)\b.*\baccepted\b", r.out, re.M)
    t.check(len(acc) == n and acc == [str(i) for i in range(1, n + 1)],
            f"stdout reports {len(acc)} accepted messages of {n}")


@test(heavy=True)
def bulk_1000_to_smtp_sink(t):
    """1,000 ready messages into Postfix's smtp-sink, in one session: the sink
    is told to stop after one session (-n 1), and its counters must say
    1 session, 1000 messages."""
    paths, _ = _bulk_files(t)
    sink = SmtpSink(t, sessions=1)
    args = list(send_args(sink.port, tls="none", timeout=60)) + ["--from", FROM, "--to", TO,
                                                                 "--raw"] + paths
    r = t.smtpkit(*args, timeout=300)
    t.expect_rc(r, 0)
    _check_stdout(t, r, N)
    rc = sink.wait_exit(t.timeout(20))
    t.check(rc is not None, "smtp-sink did not finish its one session (still connected?)")
    c = sink.counters()
    t.check(c is not None, f"no counters from smtp-sink: {sink.output()[-300:]!r}")
    t.check(c["sess"] == 1, f"smtp-sink counted {c['sess']} sessions, expected 1")
    t.check(c["mesg"] == N, f"smtp-sink counted {c['mesg']} messages, expected {N}")
    dump = sink.dump()
    mails = re.findall(rb"^X-Mail-Args: (.*)$", dump, re.M)
    rcpts = re.findall(rb"^X-Rcpt-Args: (.*)$", dump, re.M)
    t.check(len(mails) == N and all(m.split()[0] == b"<" + FROM.encode() + b">" for m in mails),
            f"dump: {len(mails)} MAIL FROM, first {mails[:1]}")
    t.check(len(rcpts) == N and all(x.split()[0] == b"<" + TO.encode() + b">" for x in rcpts),
            f"dump: {len(rcpts)} RCPT TO, first {rcpts[:1]}")
    subjects = re.findall(rb"^Subject: bulk message (\d+)$", dump, re.M)
    t.check([int(s) for s in subjects] == list(range(1, N + 1)),
            "the dump does not hold messages 1..1000 in order")
    t.note(f"{N} messages in {r.elapsed:.2f}s")


@test(heavy=True)
def bulk_1000_to_aiosmtpd_one_connection(t):
    paths, datas = _bulk_files(t)
    srv = AioServer(t)
    args = list(send_args(srv.port, tls="none", timeout=60)) + ["--from", FROM, "--to", TO]
    for p in paths:
        args += ["--raw", p]
    r = t.smtpkit(*args, timeout=300)
    t.expect_rc(r, 0)
    _check_stdout(t, r, N)
    srv.sync(t.timeout(30))
    t.check(len(srv.rec.conns) == 1, f"{len(srv.rec.conns)} connections, expected 1")
    msgs = srv.messages
    t.check(len(msgs) == N, f"the server received {len(msgs)} messages, expected {N}")
    for i, (m, d) in enumerate(zip(msgs, datas), 1):
        t.check(m.content == crlf(d), f"message {i} differs from its file")
        t.check(m.mail_from == FROM and m.rcpt_tos == [TO], f"message {i} envelope")
    verbs = srv.rec.conns[0].verbs()
    t.check(verbs.count("EHLO") == 1, f"{verbs.count('EHLO')} EHLO in one session")
    t.note(f"{N} messages in {r.elapsed:.2f}s")


def _big_message(path, size):
    """Write a ~size-octet CRLF message full of dot-stuffing traps; return
    (octets, sha256)."""
    head = raw_message("50 MB message", b"")
    h = hashlib.sha256()
    total = 0
    alphabet = (b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                b" !\"#$%&'()*+,-/:;<=>?@[]^_`{|}~") * 20
    traps = [b".", b"..", b"...", b". ", b".\t", b"." + b"x" * 997, b"x" * 998, b"",
             b"From not a header", b".\r"[:1]]
    with open(path, "wb") as f:
        f.write(head)
        h.update(head)
        total += len(head)
        i = 0
        while total < size:
            if i % 37 == 0:
                line = traps[(i // 37) % len(traps)]
            else:
                n = (i * 7919) % 990
                start = (i * 31) % 1000
                line = alphabet[start:start + n]
                if i % 11 == 0:
                    line = b"." + line[:989]
            chunk = line + b"\r\n"
            f.write(chunk)
            h.update(chunk)
            total += len(chunk)
            i += 1
    return total, h.hexdigest()


@test(heavy=True)
def big_message_50mb(t):
    """A 50 MB ready message arrives byte for byte (dot-stuffing undone by
    the server), and smtpkit's memory does not grow with the message."""
    path = os.path.join(t.tmp, "big.eml")
    size, digest = _big_message(path, 50 * 1024 * 1024)
    srv = AioServer(t)
    r = t.smtpkit(*send_args(srv.port, tls="none", timeout=120), "--from", FROM, "--to", TO,
                  "--raw", path, timeout=600, measure_rss=True)
    t.expect_rc(r, 0)
    srv.sync(t.timeout(60))
    msgs = srv.messages
    t.check(len(msgs) == 1, f"the server received {len(msgs)} messages, expected 1")
    got = msgs[0].content
    t.check(len(got) == size, f"received {len(got)} octets, sent {size}")
    t.check(hashlib.sha256(got).hexdigest() == digest, "the received message differs")
    rss_mb = r.maxrss_kb / 1024
    t.check(rss_mb > 0, f"could not measure smtpkit's peak RSS (is {TIME} installed?)")
    t.note(f"peak RSS {rss_mb:.1f} MB, {size / 1e6:.0f} MB in {r.elapsed:.1f}s")
    if t.cfg.sanitized:
        t.note("RSS limit not checked under sanitizers")
    else:
        t.check(rss_mb < 32, f"smtpkit's peak RSS was {rss_mb:.1f} MB for a 50 MB message "
                "(the body must be streamed)")
        if rss_mb >= 16:
            t.note("RSS above the 16 MB goal")
