"""MIME composition by `smtpkit send`: --html, --attach, --inline, display
names in address lists, --reply-to, --header.

What the server received is parsed with Python's email package; every
message is also checked on the wire (check_mime_wire): 7-bit only, CRLF,
no line over 998 octets, MIME-Version, Date, Message-ID, no Bcc address,
no BODY=8BITMIME, no 8bit/binary transfer encoding, no parser defects.
Composition errors must happen before any connection: those tests count
the server's connections.
"""

import base64
import binascii
import hashlib
import os
import pathlib
import quopri
import random
import re
import struct
import threading
import zlib

from common import FROM, check_wire_lines, parse_msg, raw_message, send_args
from harness import test
from servers import AioServer

TO = "rcpt@example.com"
EX_USAGE, EX_DATAERR, EX_NOINPUT = 64, 65, 66


# ---------------------------------------------------------------------------
# helpers


def png_bytes(w=3, h=2):
    """A minimal valid PNG (RGB, 8 bits); it holds \\r\\n, \\x1a and NULs."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + bytes(v for x in range(w)
                                      for v in ((x * 85) % 256, y * 120, 255 - x))
                   for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def tricky_binary(n=70000, seed=5322):
    """Random octets plus every sequence a careless encoder breaks."""
    traps = (b"\x00\x00\xff\xfe\r\n.\r\n\r\n\n\r\r\n.\n..\r\nFrom x\r\n"
             b"\x1a\x00\r\r\r\n\n\n\xff" + bytes(range(256)))
    data = random.Random(seed).randbytes(n)
    return traps + data + traps + b"\r"


def send(t, srv, *args, frm=FROM, to=(TO,), **kw):
    argv = send_args(srv.port, tls="none")
    if frm is not None:
        argv += ["--from", frm]
    for a in to:
        argv += ["--to", a]
    return t.smtpkit(*argv, *args, **kw)


def received(t, srv, n=1):
    """Sync with the server; exactly n messages arrived, in one connection
    each; return them."""
    srv.sync()
    msgs = srv.messages
    t.check(len(msgs) == n, f"the server received {len(msgs)} messages, expected {n}")
    return msgs


def no_connection(t, srv, what):
    srv.sync()
    n = len(srv.rec.conns)
    t.check(n == 0, f"{what}: the server saw {n} connection(s); composition errors "
            "must happen before connecting")


def refused_for_reason(t, r, pattern, what):
    """A usage error that says what is wrong, not 'unknown option'."""
    t.check(not re.search(r"unknown or incomplete option|unrecognized option", r.err),
            f"{what}: refused as an unknown option: {r.err.strip()!r}")
    lines = r.stderr_lines()
    t.check(lines and re.search(pattern, lines[0], re.I),
            f"{what}: stderr does not say why ({pattern!r}): {r.err.strip()!r}")


def raw_header(part, name):
    """The header as it was on the wire (unfolded), or None."""
    for k, v in part.raw_items():
        if k.lower() == name.lower():
            return re.sub(r"\r?\n[ \t]", " ", str(v))
    return None


def leaves(msg):
    return [p for p in msg.walk() if not p.is_multipart()]


ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def check_encoded_words(t, head):
    """RFC 2047 §2 and §5: an encoded word is at most 75 characters and holds
    whole characters (a reader may decode each one on its own)."""
    for m in ENCODED_WORD.finditer(head):
        word = m.group(0).decode()
        t.check(len(word) <= 75, f"encoded word of {len(word)} characters (> 75): {word}")
        charset, enc, text = m.groups()
        try:
            if enc in b"bB":
                octets = base64.b64decode(text, validate=True)
            else:
                octets = quopri.decodestring(text.replace(b"_", b" "), header=True)
            octets.decode(charset.decode())
        except (binascii.Error, LookupError, UnicodeDecodeError) as e:
            t.fail(f"encoded word {word} does not decode on its own ({e})")


def check_mime_wire(t, m, *, bcc=(), mail_from=FROM):
    """What every composed message must be on the wire; returns it parsed."""
    content = m.content
    t.check(content.isascii(),
            lambda: "8-bit octets in the message (it must never need 8BITMIME), first at "
            f"octet {next(i for i, b in enumerate(content) if b > 127)}")
    check_wire_lines(t, content)
    t.check(not any(o.upper().startswith("BODY=8BITMIME") for o in m.mail_options),
            f"MAIL FROM asked for 8BITMIME for a 7-bit message: {m.mail_options}")
    t.check(not any(o.upper() == "SMTPUTF8" for o in m.mail_options),
            f"MAIL FROM asked for SMTPUTF8 with an ASCII envelope: {m.mail_options}")
    t.check(m.mail_from == mail_from, f"MAIL FROM was {m.mail_from!r}, expected {mail_from}")
    head, sep, _ = content.partition(b"\r\n\r\n")
    t.check(sep, "no empty line between header and body")
    check_encoded_words(t, head)
    for a in bcc:
        t.check(a.lower().encode() not in content.lower(),
                f"the Bcc address {a} appears in the message")
    msg = parse_msg(content)
    t.check(msg["Bcc"] is None, "the message carries a Bcc header")
    for h in ("Date", "Message-ID", "MIME-Version", "From"):
        t.check(len(msg.get_all(h, [])) == 1,
                f"{h} appears {len(msg.get_all(h, []))} times, expected once")
    t.check(str(msg["MIME-Version"]).strip() == "1.0",
            f"MIME-Version is {msg['MIME-Version']!r}")
    t.check(re.fullmatch(r"\s*<[^<>@\s]+@[^<>@\s]+>\s*", str(msg["Message-ID"])),
            f"Message-ID is malformed: {msg['Message-ID']!r}")
    for part in msg.walk():
        t.check(not part.defects,
                f"the parser found defects in a {part.get_content_type()} part: "
                f"{[type(d).__name__ for d in part.defects]}")
        cte = (part.get("Content-Transfer-Encoding") or "7bit").strip().lower()
        if part.is_multipart():
            t.check(cte == "7bit", f"a multipart has Content-Transfer-Encoding {cte}")
        else:
            t.check(cte in ("7bit", "quoted-printable", "base64"),
                    f"a {part.get_content_type()} part has Content-Transfer-Encoding {cte}")
    return msg


def decoded_text(part):
    """A text part's content, canonical CRLF line ends turned back into LF."""
    return part.get_content().replace("\r\n", "\n")


def check_text_part(t, part, ctype, want, what):
    t.check(part.get_content_type() == ctype,
            f"{what} is {part.get_content_type()}, expected {ctype}")
    cs = (part.get_content_charset() or "").lower()
    t.check(cs == "utf-8", f"{what} has charset {cs!r}, expected utf-8")
    got = decoded_text(part)
    t.check(got == want, lambda: f"{what} decodes differently: got {got[:300]!r}..., "
            f"want {want[:300]!r}... (lengths {len(got)}, {len(want)})")


def check_attachment(t, part, data, *, name=None, ctype=None, what="attachment",
                     disposition="attachment"):
    t.check(part.get_content_disposition() == disposition,
            f"{what}: Content-Disposition is {part.get('Content-Disposition')!r}, "
            f"expected {disposition}")
    cte = (part.get("Content-Transfer-Encoding") or "").strip().lower()
    t.check(cte == "base64", f"{what}: Content-Transfer-Encoding is {cte!r}, expected base64")
    if name is not None:
        t.check(part.get_filename() == name,
                f"{what}: file name is {part.get_filename()!r}, expected {name!r}")
    if ctype is not None:
        t.check(part.get_content_type() == ctype,
                f"{what}: Content-Type is {part.get_content_type()}, expected {ctype}")
    got = part.get_payload(decode=True)
    if got != data:
        i = next((k for k in range(min(len(got), len(data))) if got[k] != data[k]),
                 min(len(got), len(data)))
        t.fail(f"{what}: {len(got)} octets came back for {len(data)}, first difference at "
               f"octet {i}: got {got[max(0, i - 16):i + 16]!r}, "
               f"want {data[max(0, i - 16):i + 16]!r}")


# ---------------------------------------------------------------------------
# bodies

TEXT = ("Grüße, Zoë!\n\nPlain part: äöü ß — 北京 ✓ 📬\n"
        "trailing spaces stay   \n\ttab at start\n.\n..two dots\nFrom the start\n"
        "a bare CR: 10%\r20%\r30%\n"
        + "long line " + "é" * 1200 + " end\n"
        + "=3D is not an escape; =?utf-8?q?nor_this?=\n" + "x" * 1000 + "\nlast\n")
HTML = ("<!DOCTYPE html>\n<html><body><p>Grüße, <b>世界</b> — ✓</p>\n"
        "<p>" + "ü" * 900 + "</p>\n<p>=3D &amp; =?x?=</p>\n</body></html>\n")


@test()
def mime_text_and_html_alternative(t):
    """--text + --html (and --text-file + --html-file): multipart/alternative
    with text/plain then text/html, both utf-8, both decoding to exactly what
    was given."""
    srv = AioServer(t)
    subject = ("Both parts — Grüße ✓ and a subject long enough to be folded into "
               "several encoded words: ünïcödé 日本語のテキスト ✓✓✓ Привет, мир!")
    r = send(t, srv, "--subject", subject, "--text", TEXT, "--html", HTML)
    t.expect_rc(r, 0)
    tf = t.file("body.txt", TEXT)
    hf = t.file("body.html", HTML)
    r = send(t, srv, "--subject", subject, "--text-file", tf, "--html-file", hf)
    t.expect_rc(r, 0)
    for i, m in enumerate(received(t, srv, 2)):
        t.check(m.rcpt_tos == [TO], f"RCPT TO was {m.rcpt_tos}")
        msg = check_mime_wire(t, m)
        what = ("--text/--html", "--text-file/--html-file")[i]
        t.check(str(msg["Subject"]) == subject, f"{what}: Subject is {msg['Subject']!r}")
        t.check(msg.get_content_type() == "multipart/alternative",
                f"{what}: top level is {msg.get_content_type()}, expected multipart/alternative")
        parts = list(msg.iter_parts())
        t.check([p.get_content_type() for p in parts] == ["text/plain", "text/html"],
                f"{what}: alternative holds {[p.get_content_type() for p in parts]}, "
                "expected text/plain then text/html")
        check_text_part(t, parts[0], "text/plain", TEXT, f"{what}: the text part")
        check_text_part(t, parts[1], "text/html", HTML, f"{what}: the html part")


@test()
def mime_html_only(t):
    """--html alone: a single text/html body, utf-8, exact; ASCII lines of
    998 and 999 octets (7bit allows the first, not the second)."""
    srv = AioServer(t)
    r = send(t, srv, "--subject", "html only", "--html", HTML)
    t.expect_rc(r, 0)
    ascii_html = [f"<p>{'a' * 991}</p>\n<p>{'b' * (991 + k)}</p>\n" for k in (0, 1)]
    for h in ascii_html:
        r = send(t, srv, "--html", h)
        t.expect_rc(r, 0)
    msgs = received(t, srv, 3)
    msg = check_mime_wire(t, msgs[0])
    t.check(not msg.is_multipart(), f"html only became {msg.get_content_type()}")
    check_text_part(t, msg, "text/html", HTML, "the html body")
    for m, h in zip(msgs[1:], ascii_html):
        check_text_part(t, check_mime_wire(t, m), "text/html", h,
                        f"html with a {len(h.splitlines()[-1])}-octet line")


# ---------------------------------------------------------------------------
# attachments

UNICODE_NAME = "报告 2026 – überblick.pdf"
LONG_NAME = "Ünïcödé 報告 " * 25 + "— final (v2).txt"   # RFC 2231 continuations


@test()
def mime_attach_roundtrip(t):
    """Attachments come back byte for byte (binary with NUL/0xFF/CR/LF, an
    empty file, an LF text file), base64, in order, after the text body;
    a non-ASCII file name goes as RFC 2231; ;type= and ;name= win."""
    srv = AioServer(t)
    binary = tricky_binary()
    lf_text = "line one\nline two — ü\n\nno CR here\nlast line\n".encode()
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\ntrailer\n<< >>\n%%EOF\n"
    other = random.Random(7).randbytes(3000)
    files = [
        (t.file("data.bin", binary), binary, "data.bin", None),
        (t.file("empty.dat", b""), b"", "empty.dat", None),
        (t.file("notes.txt", lf_text), lf_text, "notes.txt", None),
        (t.file(UNICODE_NAME, pdf), pdf, UNICODE_NAME, None),
        (t.file("blob.raw", other) + ";type=application/pdf;name=x.pdf", other, "x.pdf",
         "application/pdf"),
        (t.file("long.txt", lf_text) + ";name=" + LONG_NAME, lf_text, LONG_NAME, None),
    ]
    args = ["--subject", "attachments", "--text", "see the attachments\n"]
    for spec, _, _, _ in files:
        args += ["--attach", spec]
    r = send(t, srv, *args)
    t.expect_rc(r, 0)
    msg = check_mime_wire(t, received(t, srv)[0])
    t.check(msg.get_content_type() == "multipart/mixed",
            f"top level is {msg.get_content_type()}, expected multipart/mixed")
    parts = list(msg.iter_parts())
    t.check(len(parts) == 1 + len(files),
            f"multipart/mixed has {len(parts)} parts, expected {1 + len(files)}: "
            f"{[p.get_content_type() for p in parts]}")
    t.check(parts[0].get_content_type() == "text/plain" and
            parts[0].get_content_disposition() != "attachment",
            f"the first part is {parts[0].get_content_type()} "
            f"({parts[0].get('Content-Disposition')}), expected the text body")
    t.check(decoded_text(parts[0]) == "see the attachments\n",
            f"the body is {decoded_text(parts[0])!r}")
    for part, (_, data, name, ctype) in zip(parts[1:], files):
        check_attachment(t, part, data, name=name, ctype=ctype, what=name)
    uni = parts[4]
    cd = raw_header(uni, "Content-Disposition") or ""
    t.check(re.search(r"(?i)\bfilename\*(0\*?)?=", cd),
            f"the non-ASCII file name is not an RFC 2231 parameter: "
            f"Content-Disposition: {cd!r}")
    t.check(not re.search(r"(?i)\bfilename=\"?=\?", cd),
            f"the file name is an RFC 2047 encoded word in a parameter: {cd!r}")


@test()
def mime_attach_type_detection(t):
    """Without ;type=, libmagic decides from the content (names without an
    extension): a PNG is image/png, ASCII text is text/plain."""
    srv = AioServer(t)
    png = png_bytes()
    text = b"just some words\nin a plain text file\n"
    r = send(t, srv, "--text", "x\n", "--attach", t.file("image-data", png),
             "--attach", t.file("notes", text))
    t.expect_rc(r, 0)
    msg = check_mime_wire(t, received(t, srv)[0])
    parts = list(msg.iter_parts())
    t.check(msg.get_content_type() == "multipart/mixed" and len(parts) == 3,
            f"structure {msg.get_content_type()} with {len(parts)} parts")
    check_attachment(t, parts[1], png, name="image-data", ctype="image/png", what="the PNG")
    check_attachment(t, parts[2], text, name="notes", ctype="text/plain",
                     what="the text file")


# ---------------------------------------------------------------------------
# inline parts


def _related(t, part, n, what):
    t.check(part.get_content_type() == "multipart/related",
            f"{what} is {part.get_content_type()}, expected multipart/related")
    t.check((part.get_param("type") or "").lower() == "text/html",
            f"{what} has no type=\"text/html\" parameter (RFC 2387): "
            f"{part.get('Content-Type')!r}")
    kids = list(part.iter_parts())
    t.check(len(kids) == n and kids[0].get_content_type() == "text/html",
            f"{what} holds {[k.get_content_type() for k in kids]}, expected text/html "
            f"and {n - 1} inline part(s)")
    return kids


def _cid(part):
    return (part.get("Content-ID") or "").strip()


@test()
def mime_inline_image(t):
    """--inline: the html becomes multipart/related(html, image) with
    Content-ID <name> and Content-Disposition inline; ;cid= overrides, the
    cid defaults to the ;name= shown; with --text and --attach the tree is
    mixed(alternative(text, related(html, image)), attachment)."""
    srv = AioServer(t)
    png = png_bytes()
    logo = t.file("logo.png", png)
    html = '<p>Hi</p><img src="cid:logo.png"><img src="cid:other.png">\n'
    r = send(t, srv, "--html", html, "--inline", logo,
             "--inline", logo + ";name=other.png")
    t.expect_rc(r, 0)
    html2 = '<p>Brand</p><img src="cid:brand">\n'
    att = b"attached, not inline\n"
    r = send(t, srv, "--text", "plain\n", "--html", html2, "--inline", logo + ";cid=brand",
             "--attach", t.file("readme.txt", att))
    t.expect_rc(r, 0)
    m1, m2 = received(t, srv, 2)

    msg = check_mime_wire(t, m1)
    kids = _related(t, msg, 3, "html + --inline")
    check_text_part(t, kids[0], "text/html", html, "the html in related")
    check_attachment(t, kids[1], png, ctype="image/png", disposition="inline",
                     what="the inline logo")
    t.check(_cid(kids[1]) == "<logo.png>", f"Content-ID is {_cid(kids[1])!r}, "
            "expected <logo.png>")
    check_attachment(t, kids[2], png, name="other.png", ctype="image/png",
                     disposition="inline", what="the inline other.png")
    t.check(_cid(kids[2]) == "<other.png>", f"Content-ID of ;name=other.png is "
            f"{_cid(kids[2])!r}, expected <other.png>")

    msg = check_mime_wire(t, m2)
    t.check(msg.get_content_type() == "multipart/mixed",
            f"top level is {msg.get_content_type()}, expected multipart/mixed")
    top = list(msg.iter_parts())
    t.check(len(top) == 2 and top[0].get_content_type() == "multipart/alternative",
            f"mixed holds {[p.get_content_type() for p in top]}, expected "
            "multipart/alternative and the attachment")
    alt = list(top[0].iter_parts())
    t.check([p.get_content_type() for p in alt] == ["text/plain", "multipart/related"],
            f"alternative holds {[p.get_content_type() for p in alt]}, expected "
            "text/plain then multipart/related")
    check_text_part(t, alt[0], "text/plain", "plain\n", "the text part")
    kids = _related(t, alt[1], 2, "the related part")
    check_text_part(t, kids[0], "text/html", html2, "the html in related")
    check_attachment(t, kids[1], png, ctype="image/png", disposition="inline",
                     what="the inline brand image")
    t.check(_cid(kids[1]) == "<brand>", f";cid=brand gave Content-ID {_cid(kids[1])!r}")
    check_attachment(t, top[1], att, name="readme.txt", what="readme.txt")


@test()
def mime_inline_needs_html(t):
    """--inline without --html is a usage error, before any connection."""
    srv = AioServer(t)
    logo = t.file("logo.png", png_bytes())
    for extra in (["--text", "plain\n"], []):
        r = send(t, srv, *extra, "--inline", logo)
        t.expect_rc(r, EX_USAGE)
        refused_for_reason(t, r, r"--inline.*--html|--html.*--inline", "--inline without --html")
    no_connection(t, srv, "--inline without --html")


# ---------------------------------------------------------------------------
# addresses and headers


@test()
def mime_display_names(t):
    """Display names in --from/--to/--cc/--bcc (quoted commas, a group,
    non-ASCII): the envelope holds the bare addresses, the header the names,
    RFC 2047 encoded on the wire."""
    srv = AioServer(t)
    frm = "Zoë Example <from@example.com>"
    r = send(t, srv, "--subject", "names", "--text", "hi\n", frm=frm,
             to=['"Doe, John" <john@example.com>, Ann <ann@example.net>',
                 "plain@example.org",
                 '"Müller, Jörg" <joerg@example.de>, "Bob \\"The Builder\\"" <bob@example.com>'])
    t.expect_rc(r, 0)
    r2 = send(t, srv, "--subject", "names", "--text", "hi\n",
              "--cc", 'Team: x@example.com, "Ünïcode Name" <y@example.com>;',
              "--bcc", "Hidden Person <hidden@example.org>, h2@example.org",
              frm=frm, to=['"Doe, John" <john@example.com>'])
    t.expect_rc(r2, 0)
    m1, m2 = received(t, srv, 2)

    msg = check_mime_wire(t, m1, mail_from="from@example.com")
    t.check(sorted(m1.rcpt_tos) == ["ann@example.net", "bob@example.com",
                                    "joerg@example.de", "john@example.com",
                                    "plain@example.org"],
            f"RCPT TO was {m1.rcpt_tos}")
    f = msg["From"].addresses
    t.check([(a.display_name, a.addr_spec) for a in f] == [("Zoë Example", "from@example.com")],
            f"From decodes to {str(msg['From'])!r}")
    fraw = raw_header(msg, "From") or ""
    t.check(re.search(r"(?i)=\?utf-8\?[bq]\?", fraw),
            f"the non-ASCII display name is not RFC 2047 encoded: From: {fraw!r}")
    to = [(a.display_name, a.addr_spec) for a in msg["To"].addresses]
    t.check(to == [("Doe, John", "john@example.com"), ("Ann", "ann@example.net"),
                   ("", "plain@example.org"), ("Müller, Jörg", "joerg@example.de"),
                   ('Bob "The Builder"', "bob@example.com")],
            f"To decodes to {to} (raw {raw_header(msg, 'To')!r})")

    msg = check_mime_wire(t, m2, mail_from="from@example.com",
                          bcc=("hidden@example.org", "h2@example.org"))
    t.check(sorted(m2.rcpt_tos) == ["h2@example.org", "hidden@example.org",
                                    "john@example.com", "x@example.com", "y@example.com"],
            f"RCPT TO was {m2.rcpt_tos}")
    t.check(b"Hidden Person" not in m2.content, "the Bcc display name is in the message")
    cc = [(a.display_name, a.addr_spec) for a in msg["Cc"].addresses]
    t.check(cc == [("", "x@example.com"), ("Ünïcode Name", "y@example.com")],
            f"Cc decodes to {cc} (raw {raw_header(msg, 'Cc')!r})")
    t.check(re.search(r"(?i)=\?utf-8\?[bq]\?", raw_header(msg, "Cc") or ""),
            f"the non-ASCII Cc name is not RFC 2047 encoded: {raw_header(msg, 'Cc')!r}")


LONG_VALUE = " ".join(f"word{i}" for i in range(250))


@test()
def mime_encoded_word_lookalikes(t):
    """ASCII text that looks like an RFC 2047 encoded word, in --subject, a
    quoted display name and a --header value, must reach the reader as
    typed: a reader decodes every encoded word in unstructured text and
    phrases, so the composer has to encode such text itself."""
    srv = AioServer(t)
    subject = "Literal =?utf-8?q?not_encoded?= text"
    note = "=?utf-8?b?aGVsbG8=?="
    r = send(t, srv, "--subject", subject, "--text", "x\n", "--header", f"X-Note: {note}",
             to=['"=?utf-8?q?Evil?=" <b@example.com>'])
    t.expect_rc(r, 0)
    m = received(t, srv)[0]
    msg = check_mime_wire(t, m)
    t.check(m.rcpt_tos == ["b@example.com"], f"RCPT TO was {m.rcpt_tos}")
    wrong = []
    if str(msg["Subject"]) != subject:
        wrong.append(f"--subject {subject!r} reads as {str(msg['Subject'])!r} "
                     f"(on the wire: {raw_header(msg, 'Subject')!r})")
    names = [a.display_name for a in msg["To"].addresses]
    if names != ["=?utf-8?q?Evil?="]:
        wrong.append(f"the display name \"=?utf-8?q?Evil?=\" reads as {names} "
                     f"(on the wire: To: {raw_header(msg, 'To')!r})")
    if str(msg["X-Note"]) != note:
        wrong.append(f"--header 'X-Note: {note}' reads as {str(msg['X-Note'])!r} "
                     f"(on the wire: {raw_header(msg, 'X-Note')!r})")
    t.check(not wrong, "; ".join(wrong))


@test()
def mime_reply_to_and_headers(t):
    """--reply-to; --header adds X-Campaign and a non-ASCII header (RFC 2047);
    --header Subject/Date/Message-ID replace smtpkit's own (one of each)."""
    srv = AioServer(t)
    date = "Sun, 29 Nov 2026 09:00:00 +0000"
    r = send(t, srv, "--subject", "original", "--text", "body\n",
             "--reply-to", 'Support <support@example.com>, "Help, Desk" <help@example.net>',
             "--reply-to", "third@example.org",
             "--header", "X-Campaign: spring",
             "--header", "X-Note: Grüße aus Köln",
             "--header", "Subject: override",
             "--header", f"Date: {date}",
             "--header", "Message-ID: <custom.1@example.org>",
             "--header", "X-Long: " + LONG_VALUE)
    t.expect_rc(r, 0)
    r = send(t, srv, "--text", "undisclosed\n", "--header", "To: undisclosed-recipients:;",
             to=("one@example.com", "two@example.net"))
    t.expect_rc(r, 0)
    m, m2 = received(t, srv, 2)
    msg = check_mime_wire(t, m)
    rt = [(a.display_name, a.addr_spec) for a in msg["Reply-To"].addresses]
    t.check(rt == [("Support", "support@example.com"), ("Help, Desk", "help@example.net"),
                   ("", "third@example.org")], f"Reply-To decodes to {rt}")
    t.check(m.rcpt_tos == [TO], f"Reply-To addresses went into the envelope: {m.rcpt_tos}")
    t.check(msg.get_all("X-Campaign") == ["spring"], f"X-Campaign: {msg.get_all('X-Campaign')}")
    t.check([str(v) for v in msg.get_all("X-Note", [])] == ["Grüße aus Köln"],
            f"X-Note decodes to {msg.get_all('X-Note')}")
    subjects = [str(s) for s in msg.get_all("Subject", [])]
    t.check(subjects == ["override"], f"Subject headers: {subjects}, expected ['override']")
    dates = [str(s) for s in msg.get_all("Date", [])]
    t.check(dates == [date], f"Date headers: {dates}")
    mids = [str(s).strip() for s in msg.get_all("Message-ID", [])]
    t.check(mids == ["<custom.1@example.org>"], f"Message-ID headers: {mids}")
    t.check(decoded_text(msg) == "body\n", f"body {decoded_text(msg)!r}")
    t.check([str(v) for v in msg.get_all("X-Long", [])] == [LONG_VALUE],
            f"the 1500-octet X-Long header does not unfold to what was given: "
            f"{msg.get_all('X-Long')}")

    msg = check_mime_wire(t, m2)
    t.check(sorted(m2.rcpt_tos) == ["one@example.com", "two@example.net"],
            f"--header To changed the envelope: {m2.rcpt_tos}")
    tos = msg.get_all("To", [])
    t.check(len(tos) == 1 and not tos[0].addresses and
            [g.display_name for g in tos[0].groups] == ["undisclosed-recipients"],
            f"--header 'To: undisclosed-recipients:;' gave To headers {[str(x) for x in tos]}")
    t.check(b"one@example.com" not in m2.content and b"two@example.net" not in m2.content,
            "the --to addresses are in the message although --header To replaced them")


@test()
def mime_header_refused(t):
    """--header for From, Bcc, MIME-Version, Content-*; CR/LF injection; a
    line that is no header: exit 64, before any connection."""
    srv = AioServer(t)
    bad = ["Bcc: x@example.com", "bcc: x@example.com", "Resent-Bcc: x@example.com",
           "From: Evil <evil@example.com>",
           "Content-Type: text/plain", "content-transfer-encoding: 8bit",
           "MIME-Version: 1.0", "X-A: b\r\nBcc: evil@example.com",
           "X-A: b\nBcc: evil@example.com", "X-A: b\rBcc: evil@example.com",
           "X-A: b\r\n\r\ninjected body", "no colon here", ": no name",
           "Bad Name: space in the name"]
    for h in bad:
        r = send(t, srv, "--text", "x\n", "--header", h)
        if r.rc != EX_USAGE:
            t.fail(f"--header {h!r}: expected exit 64, got {r.describe()}")
        refused_for_reason(t, r, r"header", f"--header {h!r}")
    no_connection(t, srv, "refused --header")
    # the same command with a good --header goes through (so --header exists)
    ok = AioServer(t)
    r = send(t, ok, "--text", "x\n", "--header", "X-Fine: yes")
    t.expect_rc(r, 0)
    msg = check_mime_wire(t, received(t, ok)[0])
    t.check(msg.get_all("X-Fine") == ["yes"], f"X-Fine: {msg.get_all('X-Fine')}")


# ---------------------------------------------------------------------------
# errors


@test()
def mime_file_errors(t):
    """A missing attachment or inline file, a directory: exit 66, one line on
    stderr naming it; text or html that is not UTF-8: exit 65; no connection."""
    srv = AioServer(t)
    missing = os.path.join(t.tmp, "no-such-report.pdf")
    r = send(t, srv, "--text", "x\n", "--attach", missing)
    t.expect_rc(r, EX_NOINPUT)
    lines = r.stderr_lines()
    t.check(len(lines) == 1 and missing in lines[0],
            f"stderr should be one line naming {missing}: {lines}")

    r = send(t, srv, "--text", "x\n", "--attach", t.file("ok.txt", "ok\n"),
             "--attach", missing + ";type=application/pdf;name=r.pdf")
    t.expect_rc(r, EX_NOINPUT)
    t.check(len(r.stderr_lines()) == 1 and missing in r.err,
            f"stderr should be one line naming {missing}: {r.stderr_lines()}")

    r = send(t, srv, "--html", '<img src="cid:gone.png">', "--inline",
             os.path.join(t.tmp, "gone.png"))
    t.expect_rc(r, EX_NOINPUT)
    t.check(len(r.stderr_lines()) == 1 and "gone.png" in r.err,
            f"stderr should be one line naming gone.png: {r.stderr_lines()}")

    d = os.path.join(t.tmp, "a-directory")
    os.makedirs(d)
    r = send(t, srv, "--text", "x\n", "--attach", d)
    t.expect_rc(r, EX_NOINPUT)
    t.check(len(r.stderr_lines()) == 1 and d in r.err,
            f"stderr should be one line naming {d}: {r.stderr_lines()}")

    if os.geteuid() != 0:
        locked = t.file("locked.bin", b"secret", mode=0o000)
        r = send(t, srv, "--text", "x\n", "--attach", locked)
        t.expect_rc(r, EX_NOINPUT)
        t.check(locked in r.err, f"stderr does not name {locked}: {r.err!r}")
    else:
        t.note("unreadable-file case not checked as root")

    latin1 = t.file("latin1.txt", "Gr\xfc\xdfe aus K\xf6ln\n".encode("latin-1"))
    r = send(t, srv, "--text-file", latin1)
    t.expect_rc(r, EX_DATAERR)
    r = send(t, srv, "--text", "ok\n", "--html-file", latin1)
    t.expect_rc(r, EX_DATAERR)
    # the same octets given on the command line (surrogateescape -> raw bytes)
    r = send(t, srv, "--text", "Gr\udcfc\udcdfe\n")
    t.expect_rc(r, EX_DATAERR)
    no_connection(t, srv, "file and encoding errors")


@test()
def mime_attach_stdin_pipe(t):
    """--attach '-;name=db.sql.gz' with 2 MB of random octets on standard
    input, a pipe as in `mysqldump | gzip | smtpkit send`: they arrive byte
    for byte under that name."""
    srv = AioServer(t)
    data = random.Random(1950).randbytes(2 * 1024 * 1024)
    rfd, wfd = os.pipe()

    def writer():
        try:
            with os.fdopen(wfd, "wb") as w:
                w.write(data)
        except BrokenPipeError:
            pass        # smtpkit stopped reading; the checks below say so

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    try:
        # a path, which the harness opens: the same anonymous pipe
        r = send(t, srv, "--subject", "dump", "--text", "the dump\n",
                 "--attach", "-;name=db.sql.gz",
                 stdin=pathlib.Path(f"/proc/self/fd/{rfd}"))
    finally:
        os.close(rfd)
    th.join(10)
    t.expect_rc(r, 0)
    msg = check_mime_wire(t, received(t, srv)[0])
    parts = list(msg.iter_parts())
    t.check(len(parts) == 2, f"multipart/mixed has {len(parts)} parts, expected 2: "
            f"{[p.get_content_type() for p in parts]}")
    check_attachment(t, parts[-1], data, name="db.sql.gz", what="standard input")


@test()
def mime_attach_stdin_refused(t):
    """--attach - needs name=; standard input read twice (two -, or - with
    --text-file -) is a usage error naming both; no connection."""
    srv = AioServer(t)
    r = send(t, srv, "--text", "x\n", "--attach", "-", stdin=b"data")
    t.expect_rc(r, EX_USAGE)
    refused_for_reason(t, r, r"--attach -: give the name shown.*name=", "--attach -")

    r = send(t, srv, "--attach", "-;name=a", "--text-file", "-", stdin=b"data")
    t.expect_rc(r, EX_USAGE)
    refused_for_reason(t, r, r"--text-file -.*--attach -|--attach -.*--text-file -",
                       "--attach - with --text-file -")

    r = send(t, srv, "--text", "x\n", "--attach", "-;name=a", "--attach", "-;name=b",
             stdin=b"data")
    t.expect_rc(r, EX_USAGE)
    refused_for_reason(t, r, r"--attach -.*--attach -", "--attach - twice")

    r = send(t, srv, "--html-file", "-", "--inline", "-;name=i.png", stdin=b"<p>x</p>")
    t.expect_rc(r, EX_USAGE)
    refused_for_reason(t, r, r"--html-file -.*--inline -", "--inline - with --html-file -")
    no_connection(t, srv, "standard input refused")


# ---------------------------------------------------------------------------
# size and memory


@test(heavy=True)
def big_mime_attachment_rss(t):
    """2 MB and 24 MB attachments come back byte for byte, and smtpkit's
    peak RSS does not grow with the attachment (< 8 MB more for 22 MB more)."""
    srv = AioServer(t, data_size_limit=64 * 1024 * 1024)
    rng = random.Random(2026)
    sizes = (2 * 1024 * 1024, 24 * 1024 * 1024)
    rss = []
    for size in sizes:
        path = os.path.join(t.tmp, f"big-{size}.bin")
        h = hashlib.sha256()
        with open(path, "wb") as f:
            left = size
            while left:
                chunk = rng.randbytes(min(left, 1 << 20))
                f.write(chunk)
                h.update(chunk)
                left -= len(chunk)
        r = t.smtpkit(*send_args(srv.port, tls="none", timeout=120), "--from", FROM,
                      "--to", TO, "--subject", "big", "--text", "big one attached\n",
                      "--attach", path, measure_rss=True, timeout=300)
        t.expect_rc(r, 0)
        m = received(t, srv, len(rss) + 1)[-1]
        msg = check_mime_wire(t, m)
        parts = list(msg.iter_parts())
        t.check(len(parts) == 2, f"{len(parts)} parts in the {size >> 20} MB message")
        got = parts[1].get_payload(decode=True)
        t.check(len(got) == size and hashlib.sha256(got).hexdigest() == h.hexdigest(),
                f"the {size >> 20} MB attachment came back as {len(got)} different octets")
        del got, msg
        os.unlink(path)
        t.check(r.maxrss_kb > 0, "could not measure smtpkit's peak RSS (/usr/bin/time?)")
        rss.append(r.maxrss_kb / 1024)
        t.note(f"{size >> 20} MB: peak RSS {rss[-1]:.1f} MB, {r.elapsed:.1f}s")
    if t.cfg.sanitized:
        t.note("RSS limit not checked under sanitizers")
    else:
        t.check(rss[1] - rss[0] < 8,
                f"peak RSS grew {rss[1] - rss[0]:.1f} MB ({rss[0]:.1f} -> {rss[1]:.1f}) for "
                "22 MB more attachment: attachments must be streamed from their files")


# ---------------------------------------------------------------------------
# GMime stays out of the plain paths

HEAVY_LIBS = re.compile(r"gmime|glib|gobject|gio-|libmagic|smtpkit-mime|mime\.so", re.I)


def loaded_objects(t, r):
    """The shared objects ld.so loaded, from LD_DEBUG=files output."""
    names = re.findall(r"^\s*\d+:\s+file=(\S+)\s+\[\d+\];", r.err, re.M)
    t.check(any("libc.so" in n for n in names),
            f"LD_DEBUG=files produced no library list (not honoured?): {r.err[:300]!r}")
    return names


@test()
def mime_plain_paths_skip_gmime(t):
    """sendmail -t -i and send --raw load no GMime, GLib or libmagic
    (LD_DEBUG=files); send --attach does (so the check can fail)."""
    from test_sendmail import _config
    srv = AioServer(t)
    _config(t, ("main", srv.port, FROM))
    env = {"LD_DEBUG": "files"}

    r = t.smtpkit("sendmail", "-t", "-i", env=env,
                  stdin="To: a@example.com\nSubject: plain sendmail\n\nbody\n.\nmore\n")
    t.expect_rc(r, 0)
    bad = [n for n in loaded_objects(t, r) if HEAVY_LIBS.search(n)]
    t.check(not bad, f"sendmail -t -i loaded {bad}")

    raw = t.file("ready.eml", raw_message("ready", "a ready message\r\n"))
    r = send(t, srv, "--raw", raw, env=env)
    t.expect_rc(r, 0)
    bad = [n for n in loaded_objects(t, r) if HEAVY_LIBS.search(n)]
    t.check(not bad, f"send --raw loaded {bad}")

    r = send(t, srv, "--text", "x\n", "--attach", t.file("a.txt", "a\n"), env=env)
    t.expect_rc(r, 0)
    names = loaded_objects(t, r)
    t.check(any(re.search(r"gmime", n, re.I) for n in names),
            f"send --attach did not load GMime according to LD_DEBUG (so the checks "
            f"above prove nothing): {names}")

    msgs = received(t, srv, 3)
    t.check(str(parse_msg(msgs[0].content)["Subject"]) == "plain sendmail" and
            msgs[0].rcpt_tos == ["a@example.com"], "the sendmail message did not arrive")
    t.check(str(parse_msg(msgs[1].content)["Subject"]) == "ready",
            "the --raw message did not arrive")
    check_mime_wire(t, msgs[2])
