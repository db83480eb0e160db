"""TLS: STARTTLS and implicit TLS, certificate verification, minimum version."""

import re
import ssl

from common import FROM, send_args
from harness import test
from servers import AioServer, ScriptedServer, SServer, server_tls_context

TO = "rcpt@example.com"

# What stderr must say for each certificate fault (OpenSSL's verify strings
# and reasonable paraphrases of them).
REASONS = {
    "untrusted": r"issuer|self[- ]signed|unknown ca|not trusted|untrusted|unable to verify",
    "self": r"self[- ]signed",
    "expired": r"expired",
    "future": r"not yet valid",
    "wronghost": r"mismatch|host ?name|does not match",
}


def _msg_args(subject):
    return ["--from", FROM, "--to", TO, "--subject", subject, "--text", "over TLS\n"]


def _delivered(t, srv, want_tls=True):
    srv.sync()
    msgs = srv.messages
    t.check(len(msgs) == 1, f"the server received {len(msgs)} messages, expected 1")
    m = msgs[0]
    t.check(m.mail_from == FROM and m.rcpt_tos == [TO],
            f"envelope was {m.mail_from!r} -> {m.rcpt_tos}")
    if want_tls:
        t.check(m.tls in ("TLSv1.2", "TLSv1.3"),
                f"the message did not arrive over TLS (server saw {m.tls!r})")
    return m


def _nothing_sent(t, srv):
    srv.sync()
    mails = srv.mails()
    t.check(not mails, f"the server received MAIL anyway: {mails}")
    t.check(not srv.messages, "the server received a message anyway")


@test()
def starttls_default_mode_with_ca_file(t):
    """No --tls on a port other than 465: STARTTLS, required and verified."""
    certs = t.certs()
    srv = AioServer(t, tls="starttls")
    r = t.smtpkit(*send_args(srv.port), "--ca-file", certs.ca, *_msg_args("starttls"))
    t.expect_rc(r, 0)
    m = _delivered(t, srv)
    verbs = m.conn.verbs()
    t.check("STARTTLS" in verbs and verbs.index("STARTTLS") < verbs.index("MAIL"),
            f"STARTTLS did not come before MAIL: {verbs}")
    t.check(verbs.count("EHLO") >= 2 and verbs.index("STARTTLS") < len(verbs) - 1 - verbs[::-1].index("EHLO"),
            f"no EHLO after STARTTLS (RFC 3207 §4.2): {verbs}")
    plain = [ln for ln, tls in m.conn.lines if tls is None]
    t.check(all(ln.split(" ", 1)[0].upper() in ("EHLO", "HELO", "STARTTLS") for ln in plain),
            f"commands sent before TLS: {plain}")


@test()
def starttls_explicit_flag(t):
    certs = t.certs()
    srv = AioServer(t, tls="starttls", require_starttls=True)
    r = t.smtpkit(*send_args(srv.port, tls="starttls"), "--ca-file", certs.ca,
                  *_msg_args("starttls explicit"))
    t.expect_rc(r, 0)
    _delivered(t, srv)


@test()
def starttls_hostname_localhost(t):
    """--host localhost: the certificate is checked against the DNS name."""
    certs = t.certs()
    srv = AioServer(t, tls="starttls")
    r = t.smtpkit(*send_args(srv.port, host="localhost"), "--ca-file", certs.ca,
                  *_msg_args("by name"))
    t.expect_rc(r, 0)
    _delivered(t, srv)


@test()
def starttls_untrusted_without_ca_file(t):
    t.certs()
    srv = AioServer(t, tls="starttls")
    r = t.smtpkit(*send_args(srv.port), *_msg_args("untrusted"))
    t.expect_fail(r)
    t.expect_session_error_line(r)
    t.expect_err(r, REASONS["untrusted"], "why the certificate is not trusted")
    _nothing_sent(t, srv)


@test()
def starttls_expired_certificate(t):
    certs = t.certs()
    srv = AioServer(t, tls="starttls", cert="expired")
    r = t.smtpkit(*send_args(srv.port), "--ca-file", certs.ca, *_msg_args("expired"))
    t.expect_fail(r)
    t.expect_err(r, REASONS["expired"], "that the certificate has expired")
    _nothing_sent(t, srv)


@test()
def starttls_required_but_not_offered(t):
    """Default mode requires STARTTLS: a server without it gets no mail
    (no silent fallback to plaintext)."""
    srv = AioServer(t)  # plain, no STARTTLS in EHLO
    r = t.smtpkit(*send_args(srv.port), *_msg_args("downgrade"))
    t.expect_fail(r)
    t.expect_session_error_line(r)
    t.expect_err(r, r"STARTTLS|TLS", "STARTTLS")
    _nothing_sent(t, srv)


@test()
def implicit_tls_with_ca_file(t):
    certs = t.certs()
    srv = AioServer(t, tls="implicit")
    r = t.smtpkit(*send_args(srv.port, tls="implicit"), "--ca-file", certs.ca,
                  *_msg_args("implicit"))
    t.expect_rc(r, 0)
    m = _delivered(t, srv)
    t.check(m.conn.tls_at_connect is not None, "the connection did not start with TLS")
    t.check("STARTTLS" not in m.conn.verbs(), "STARTTLS sent inside implicit TLS")


@test()
def implicit_tls_self_signed_trusted_by_ca_file(t):
    """--ca-file naming the self-signed certificate itself makes it trusted."""
    certs = t.certs()
    srv = AioServer(t, tls="implicit", cert="self")
    r = t.smtpkit(*send_args(srv.port, tls="implicit"), "--ca-file", certs.crt("self"),
                  *_msg_args("self-signed, pinned"))
    t.expect_rc(r, 0)
    _delivered(t, srv)


@test()
def implicit_tls_insecure_accepts_self_signed(t):
    t.certs()
    srv = AioServer(t, tls="implicit", cert="self")
    r = t.smtpkit(*send_args(srv.port, tls="implicit"), "--insecure",
                  *_msg_args("insecure"))
    t.expect_rc(r, 0)
    _delivered(t, srv)


def _s_server_refused(t, name, with_ca):
    certs = t.certs()
    srv = SServer(t, certs.crt(name), certs.key(name))
    args = list(send_args(srv.port, tls="implicit"))
    if with_ca:
        args += ["--ca-file", certs.ca]
    r = t.smtpkit(*args, "-v", *_msg_args(name))
    out = srv.finish(t.timeout(10))
    t.expect_fail(r)
    t.expect_session_error_line(r)
    t.expect_err(r, REASONS[name], f"the certificate fault ({name})")
    for word in ("EHLO", "MAIL FROM", "RCPT TO"):
        t.check(word not in out, f"s_server received {word!r} over an unverified session")
    if "0 server accepts that finished" in out:
        t.note("handshake aborted by the client")
    elif "1 server accepts that finished" in out:
        t.note("handshake finished on the server side, then dropped")
    return r


@test()
def s_server_self_signed_refused(t):
    _s_server_refused(t, "self", with_ca=False)


@test()
def s_server_expired_refused(t):
    _s_server_refused(t, "expired", with_ca=True)


@test()
def s_server_not_yet_valid_refused(t):
    _s_server_refused(t, "future", with_ca=True)


@test()
def s_server_wrong_host_refused(t):
    _s_server_refused(t, "wronghost", with_ca=True)


@test()
def s_server_good_certificate_handshakes(t):
    """The positive control for the s_server cases: with the right CA the
    handshake completes (s_server is no SMTP server, so smtpkit then waits for
    a greeting that never comes and gives up at --timeout)."""
    certs = t.certs()
    srv = SServer(t, certs.crt("good"), certs.key("good"))
    args = send_args(srv.port, tls="implicit", timeout=3)
    r = t.smtpkit(*args, "--ca-file", certs.ca, *_msg_args("good"))
    out = srv.finish(t.timeout(10))
    t.expect_fail(r)
    t.check("1 server accepts that finished" in out or "CIPHER is" in out,
            f"s_server did not see a finished handshake: {out[-400:]!r}")
    for name in ("self", "expired", "future"):
        t.check(not re.search(REASONS[name], r.err, re.I),
                f"a certificate error was reported for a good certificate: {r.err!r}")
    t.expect_err(r, r"greeting|time", "the greeting timeout")


@test()
def tls_min_version_enforced(t):
    certs = t.certs()
    srv = AioServer(t, tls="implicit", tls_max_version=ssl.TLSVersion.TLSv1_2)
    r = t.smtpkit(*send_args(srv.port, tls="implicit"), "--tls-min", "1.3",
                  "--ca-file", certs.ca, *_msg_args("tls 1.3 only"))
    t.expect_fail(r)
    t.expect_session_error_line(r)
    _nothing_sent(t, srv)
    r = t.smtpkit(*send_args(srv.port, tls="implicit"), "--tls-min", "1.2",
                  "--ca-file", certs.ca, *_msg_args("tls 1.2 ok"))
    t.expect_rc(r, 0)
    m = _delivered(t, srv)
    t.check(m.tls == "TLSv1.2", f"negotiated {m.tls}, expected TLSv1.2")


@test()
def s_server_self_signed_json(t):
    """--json on a certificate failure: the error object names the stage,
    the kind and OpenSSL's verify result (18: self-signed)."""
    import json as _json
    certs = t.certs()
    srv = SServer(t, certs.crt("self"), certs.key("self"))
    r = t.smtpkit(*send_args(srv.port, tls="implicit"), "--json", *_msg_args("json"))
    srv.finish(t.timeout(10))
    t.expect_fail(r)
    errs = []
    for ln in r.out.splitlines():
        try:
            o = _json.loads(ln)
        except ValueError:
            t.fail(f"stdout line is not JSON: {ln!r}")
        if isinstance(o.get("error"), dict):
            errs.append(o["error"])
    t.check(errs, f"no error object on stdout: {r.out!r}")
    e = errs[0]
    t.check(e.get("stage") == "tls" and e.get("kind") == "tls-verify",
            f"error is {e}, expected stage tls, kind tls-verify")
    t.check(e.get("verify_result") == 18, f"verify_result is {e.get('verify_result')!r}, "
            "expected 18 (X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)")


@test()
def implicit_tls_against_plain_server(t):
    """--tls implicit to a plaintext server: the handshake fails; smtpkit
    never falls back to talking SMTP in the clear."""
    srv = AioServer(t)
    r = t.smtpkit(*send_args(srv.port, tls="implicit", timeout=5), *_msg_args("no fallback"))
    t.expect_fail(r)
    t.expect_session_error_line(r)
    _nothing_sent(t, srv)
    verbs = srv.rec.verbs()
    t.check("EHLO" not in verbs and "HELO" not in verbs,
            f"smtpkit spoke plaintext SMTP after asking for implicit TLS: {verbs}")


def _starttls_script(t, seen, starttls_reply, ctx=None):
    def script(c):
        c.send("220 smtp.test ESMTP scripted\r\n")
        tls = False
        while True:
            line = c.readline(timeout=t.timeout(15))
            if line is None:
                return
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].strip().upper().decode(errors="replace")
            seen.append((verb, tls))
            if verb == "EHLO":
                c.send("250-smtp.test\r\n" + ("" if tls else "250-STARTTLS\r\n")
                       + "250 8BITMIME\r\n")
            elif verb == "STARTTLS":
                c.send(starttls_reply)
                if ctx is None:
                    continue
                leftover = c.starttls(ctx)
                if leftover:
                    seen.append(("PLAINTEXT-AFTER-STARTTLS", False))
                tls = True
            elif verb == "DATA":
                c.send("354 go ahead\r\n")
                while True:
                    ln = c.readline(timeout=t.timeout(15))
                    if ln is None or ln == b".\r\n":
                        break
                c.send("250 2.0.0 OK\r\n")
            elif verb == "QUIT":
                c.send("221 2.0.0 bye\r\n")
                return
            else:
                c.send("250 OK\r\n")
    return script


@test()
def starttls_454_no_plaintext_fallback(t):
    """The server offers STARTTLS but then refuses it: no MAIL in the clear."""
    seen = []
    srv = ScriptedServer(t, _starttls_script(t, seen, "454 4.7.0 TLS not available now\r\n"))
    r = t.smtpkit(*send_args(srv.port), *_msg_args("454"))
    srv.wait_done(t.timeout(10))
    t.expect_fail(r)
    t.expect_session_error_line(r)
    t.expect_err(r, r"454|STARTTLS|TLS", "the STARTTLS refusal")
    verbs = [v for v, _ in seen]
    t.check("MAIL" not in verbs and "AUTH" not in verbs,
            f"smtpkit went on in plaintext after STARTTLS was refused: {verbs}")


@test()
def starttls_response_injection_ignored(t):
    """Plaintext the server sends after its STARTTLS 220 (an attacker's
    injection, cf. CVE-2011-0411) must not be read as a reply inside TLS:
    either smtpkit delivers normally or it aborts, but it never takes the
    injected 554 as the answer to its EHLO."""
    certs = t.certs()
    ctx = server_tls_context(certs, "good")
    seen = []
    srv = ScriptedServer(t, _starttls_script(
        t, seen, "220 2.0.0 Ready to start TLS\r\n554 5.7.0 INJECTED-BY-TEST\r\n", ctx))
    r = t.smtpkit(*send_args(srv.port), "--ca-file", certs.ca, "--json",
                  *_msg_args("injection"))
    srv.wait_done(t.timeout(10))
    after_tls = [v for v, tls in seen if tls]
    t.check("HELO" not in after_tls,
            f"smtpkit fell back to HELO after TLS: the injected 554 was read as the EHLO reply ({seen})")
    t.check("INJECTED-BY-TEST" not in r.out,
            f"the injected reply surfaced as a server reply: {r.out!r}")
    if r.rc == 0:
        t.check(after_tls[:1] == ["EHLO"] and "DATA" in after_tls,
                f"delivered, but the server saw {seen}")
        t.note("injected bytes discarded, message delivered")
    else:
        t.check("MAIL" not in after_tls, f"aborted after MAIL: {seen}")
        t.note(f"aborted (exit {r.rc})")
