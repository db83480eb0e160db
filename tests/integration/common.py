"""Helpers shared by the scenarios: argument lists, message checks."""

import datetime
import email
import email.policy
import email.utils
import json
import re

from servers import HOST

FROM = "sender@example.org"


def send_args(port, tls=None, host=HOST, timeout=20):
    """The start of a 'smtpkit send' command line for a local server."""
    args = ["send", "--host", host, "--port", str(port), "--timeout", str(timeout)]
    if tls is not None:
        args += ["--tls", tls]
    return args


def parse_msg(content):
    return email.message_from_bytes(content, policy=email.policy.default)


def crlf(data):
    """LF or CRLF line ends to CRLF (what must arrive on the wire)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def lines_of(content):
    return content.split(b"\r\n")


def check_wire_lines(t, content, limit=998):
    """Every line ends in CRLF (no bare CR or LF) and is at most limit octets."""
    t.check(content.endswith(b"\r\n"), "the message does not end with CRLF")
    body = content[:-2]
    for i, line in enumerate(body.split(b"\r\n"), 1):
        t.check(b"\n" not in line and b"\r" not in line,
                f"line {i} has a bare CR or LF: {line[:80]!r}")
        t.check(len(line) <= limit, f"line {i} is {len(line)} octets long (> {limit})")


def addr_specs(header):
    if header is None:
        return []
    return [a.addr_spec for a in header.addresses]


def body_text(msg):
    """The decoded text body, LF line ends, without trailing newlines."""
    text = msg.get_content()
    return text.replace("\r\n", "\n").rstrip("\n")


def check_composed(t, m, *, subject, text, to, cc=(), frm=FROM):
    """Check a composed message as the server received it (a MsgRec)."""
    content = m.content
    check_wire_lines(t, content)
    head, sep, _ = content.partition(b"\r\n\r\n")
    t.check(sep, "no empty line between header and body")
    t.check(all(b < 128 for b in head),
            "the header has 8-bit octets (non-ASCII must be RFC 2047 encoded)")
    t.check(all(b < 128 for b in content),
            "the composed message has 8-bit octets (it must never need 8BITMIME)")
    msg = parse_msg(content)
    t.check(addr_specs(msg["From"]) == [frm], f"From is {msg['From']!r}, expected {frm}")
    t.check(sorted(addr_specs(msg["To"])) == sorted(to),
            f"To is {msg['To']!r}, expected {', '.join(to)}")
    if cc:
        t.check(sorted(addr_specs(msg["Cc"])) == sorted(cc),
                f"Cc is {msg['Cc']!r}, expected {', '.join(cc)}")
    else:
        t.check(msg["Cc"] is None, f"unexpected Cc: {msg['Cc']!r}")
    t.check(msg["Bcc"] is None, "the message carries a Bcc header")
    t.check(str(msg["Subject"]) == subject,
            f"Subject decodes to {str(msg['Subject'])!r}, expected {subject!r}")
    date = msg["Date"]
    t.check(date is not None, "no Date header")
    try:
        when = email.utils.parsedate_to_datetime(str(date))
    except (TypeError, ValueError):
        t.fail(f"Date does not parse: {date!r}")
    now = datetime.datetime.now(datetime.timezone.utc)
    t.check(when.tzinfo is not None and abs((now - when).total_seconds()) < 86400,
            f"Date is not now: {date!r}")
    mid = msg["Message-ID"]
    t.check(mid is not None, "no Message-ID header")
    t.check(re.fullmatch(r"\s*<[^<>@\s]+@[^<>@\s]+>\s*", str(mid)),
            f"Message-ID is malformed: {mid!r}")
    t.check(str(mid).strip().endswith("@" + frm.split("@")[1] + ">"),
            f"Message-ID {mid!r} is not at the From domain")
    t.check(str(msg.get("MIME-Version", "")).strip() == "1.0", "no 'MIME-Version: 1.0'")
    t.check(msg.get_content_type() == "text/plain",
            f"Content-Type is {msg.get_content_type()}, expected text/plain")
    charset = (msg.get_content_charset() or "").lower()
    t.check(charset in ("utf-8", "us-ascii"), f"charset is {charset!r}")
    got = body_text(msg)
    want = text.replace("\r\n", "\n").rstrip("\n")
    t.check(got == want, f"body text differs: got {got[:200]!r}, want {want[:200]!r}")
    return msg


def json_lines(t, r):
    """stdout as a list of JSON objects, one per line."""
    out = []
    for ln in r.out.splitlines():
        if not ln.strip():
            continue
        try:
            out.append(json.loads(ln))
        except ValueError as e:
            t.fail(f"stdout line is not JSON ({e}): {ln[:200]!r}")
    return out


def raw_message(subject, body, frm=FROM, to="rcpt@example.com", msgid=None, nl=b"\r\n"):
    """A small ready RFC 5322 message (bytes) with the given line ends."""
    msgid = msgid or f"<{abs(hash((subject, body))) :x}@example.org>"
    head = [
        f"From: {frm}",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Sun, 29 Nov 2026 09:00:00 +0000",
        f"Message-ID: {msgid}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ]
    if isinstance(body, str):
        body = body.encode()
    return nl.join(h.encode() for h in head) + nl + nl + body
