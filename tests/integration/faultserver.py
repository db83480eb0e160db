#!/usr/bin/python3
"""A small scripted SMTP fault server, driven by a scenario (a dict or JSON).

It listens on 127.0.0.1 (or host=, e.g. "::1"; port 0 unless told
otherwise, the chosen port read back) and runs the same script for every connection, each in its own
thread.  It records everything the client sent, so a test can assert that
no DATA went out without --send, or that AUTH never travelled in clear.

    srv = FaultServer(script, certs=t.certs()).start()
    ... run the client against srv.port ...
    srv.wait_idle(5)
    srv.verbs()          # ["EHLO", "STARTTLS", "EHLO", "AUTH", "QUIT"]
    srv.stop()

Script keys (all optional):

  tls          "none" (default) or "implicit": TLS handshake on accept
  cert         certs.py name for TLS: good (default), self, expired, future,
               wronghost
  tls_min, tls_max
               "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3": a version-limited
               server.  Below TLS 1.2 the cipher string gets @SECLEVEL=0, as
               OpenSSL 3 wants (the client needs it too).
  hostname     the name in the greeting and the EHLO reply (fault.test)
  greeting     an action (below); default "220 <hostname> ESMTP faultserver"
  caps         EHLO keywords before TLS, e.g. ["PIPELINING", "STARTTLS",
               "AUTH PLAIN LOGIN"] (default ["PIPELINING", "8BITMIME"])
  caps_tls     EHLO keywords once TLS is up (default: caps without STARTTLS)
  replies      verb -> action, for EHLO HELO STARTTLS AUTH MAIL RCPT DATA
               RSET NOOP QUIT VRFY, "." (the reply to the end of the
               message) and "*" (any other line); overrides the defaults
  replies_tls  the same, used instead once TLS is up (falls back to replies)
  read_timeout seconds any single read may wait for the client (30)
  max_session  seconds a connection may last at all (60)

Actions:

  "250 2.0.0 Ok"              one reply line
  "250-a\\n250 b" or a list    a multi-line reply, sent as the lines given
  "!close"                    close the connection at once, saying nothing
  "!silence"                  never answer again; read (and record) until the
                              client hangs up or the session limit
  "!garbage"                  send some binary junk, then keep silent
  {"reply": ..., "then": "close" | "silence", "raw": "hex bytes"}
                              a reply (or raw bytes) followed by an act

A reply whose code is 421 closes the connection after it is sent (RFC 5321
§3.8), unless "then" says otherwise.  AUTH runs the mechanism's own
exchange first (334 challenges for LOGIN, CRAM-MD5, and PLAIN / XOAUTH2 /
OAUTHBEARER without an initial response) and then sends the AUTH action;
credentials are never recorded.  STARTTLS, when its action is a 2xx reply,
is followed by the server side of a handshake with the script's cert.

Every read has a timeout, every connection has a lifetime limit, and
stop() closes every socket and joins every thread.

TLS 1.0: Debian's Python and OpenSSL 3 serve it with @SECLEVEL=0 (checked
once by tls10_available()).  Where they cannot, make_server() falls back to
`openssl s_server -tls1 -cipher DEFAULT@SECLEVEL=0` for implicit-TLS
scripts, and raises Unsupported for STARTTLS ones (a skip in the tests).
FAULTSERVER_FORCE_S_SERVER=1 takes the fallback, to test it.

Scenario files (tests/data/scenarios/*.json) name a script per server,
optionally on top of a template: load_scenarios() applies them.

Standalone, for trying the doctor by hand:

    /usr/bin/python3 tests/integration/faultserver.py \
        tests/data/scenarios/providers.json qq_535_authorization_code [SERVER]
    /usr/bin/python3 tests/integration/faultserver.py --script '{"greeting": "554 no"}'

makes throwaway certificates, prints "PORT <n>" and "CA <file>" (for
--ca-file), serves until stdin closes or SIGTERM, then prints what the
client sent.
"""

import binascii
import os
import re
import select
import socket
import ssl
import subprocess
import threading
import time
import warnings

HOST = "127.0.0.1"

TLS_VERSIONS = {
    "TLSv1": "TLSv1",
    "TLSv1.0": "TLSv1",
    "TLSv1.1": "TLSv1_1",
    "TLSv1.2": "TLSv1_2",
    "TLSv1.3": "TLSv1_3",
}
LEGACY = ("TLSv1", "TLSv1.0", "TLSv1.1")

GARBAGE = b"\x00\xff\xfe\x16\x03\x01\x8a\x80GARBAGE\x1b[2J\xc3\x28\r\n\x7f\x00\x01"

DEFAULT_REPLIES = {
    "HELO": "250 {hostname}",
    "STARTTLS": "220 2.0.0 Ready to start TLS",
    "AUTH": "235 2.7.0 Authentication successful",
    "MAIL": "250 2.1.0 Ok",
    "RCPT": "250 2.1.5 Ok",
    "DATA": "354 End data with <CR><LF>.<CR><LF>",
    ".": "250 2.0.0 Ok: queued as FAULT0001",
    "RSET": "250 2.0.0 Ok",
    "NOOP": "250 2.0.0 Ok",
    "VRFY": "252 2.0.0 Send some mail, I'll try my best",
    "QUIT": {"reply": "221 2.0.0 Bye", "then": "close"},
    "*": "502 5.5.2 Error: command not recognized",
}


class ScriptError(ValueError):
    pass


class Unsupported(ScriptError):
    """This machine cannot serve what the script asks (TLS 1.0)."""


def _version(name):
    if name not in TLS_VERSIONS:
        raise ScriptError(f"unknown TLS version {name!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(ssl.TLSVersion, TLS_VERSIONS[name])


def tls_context(certs, script):
    """The server SSLContext a script asks for (cert, version limits)."""
    if certs is None:
        raise ScriptError("this script needs certificates (tls or STARTTLS)")
    name = script.get("cert", "good")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.crt(name), certs.key(name))
    lo, hi = script.get("tls_min"), script.get("tls_max")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if lo in LEGACY or hi in LEGACY:
            ctx.set_ciphers("DEFAULT@SECLEVEL=0")
            ctx.options &= ~getattr(ssl, "OP_NO_TLSv1", 0)
            ctx.options &= ~getattr(ssl, "OP_NO_TLSv1_1", 0)
        if lo:
            ctx.minimum_version = _version(lo)
        if hi:
            ctx.maximum_version = _version(hi)
    return ctx


_tls10 = {}
_tls10_lock = threading.Lock()


def tls10_available(certs):
    """(True, "") when this Python/OpenSSL can serve TLS 1.0 (checked once
    with a loopback handshake against itself), else (False, why)."""
    with _tls10_lock:
        if "result" in _tls10:
            return _tls10["result"]
        result = (False, "not checked")
        try:
            sctx = tls_context(certs, {"tls_min": "TLSv1", "tls_max": "TLSv1"})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                cctx.check_hostname = False
                cctx.verify_mode = ssl.CERT_NONE
                cctx.set_ciphers("DEFAULT@SECLEVEL=0")
                cctx.minimum_version = ssl.TLSVersion.TLSv1
                cctx.maximum_version = ssl.TLSVersion.TLSv1
            a, b = socket.socketpair()
            a.settimeout(5)
            b.settimeout(5)
            box = {}

            def serve():
                try:
                    s = sctx.wrap_socket(a, server_side=True)
                    box["v"] = s.version()
                    s.close()
                except (OSError, ssl.SSLError) as e:
                    box["e"] = str(e)
            th = threading.Thread(target=serve, daemon=True)
            th.start()
            try:
                c = cctx.wrap_socket(b, server_hostname="localhost")
                version = c.version()
                c.close()
            except (OSError, ssl.SSLError) as e:
                version = None
                box.setdefault("e", str(e))
            th.join(5)
            a.close()
            b.close()
            if version == "TLSv1" and box.get("v") == "TLSv1":
                result = (True, "")
            else:
                result = (False, box.get("e") or f"negotiated {version!r}")
        except (OSError, ssl.SSLError, ValueError, AttributeError) as e:
            result = (False, str(e))
        _tls10["result"] = result
        return result


# ---------------------------------------------------------------------------
# what the server saw


class ConnLog:
    """One client connection as the server saw it."""

    def __init__(self, index, peer):
        self.index = index
        self.peer = peer
        self.lines = []      # (text, tls version or None): client lines
        self.events = []     # (what, detail): tls, tls-failed, eof, close, ...
        self.messages = []   # message bodies received after DATA
        self.closed = False

    def add_line(self, raw, tls):
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        # Printable ASCII, or UTF-8 (RFC 6531 addresses) without controls.
        if raw and not (re.match(rb"^[\x20-\x7e\x80-\xff\t\r\n]*$", raw) and
                        "\ufffd" not in text and
                        not re.search("[\x80-\x9f]", text)):
            text = f"<binary {len(raw)} bytes: {binascii.hexlify(raw[:16]).decode()}>"
        m = re.match(r"(?i)(AUTH\s+\S+)\s+\S+", text)
        if m:   # never keep credentials, not even in the test's records
            text = m.group(1) + " <initial-response>"
        self.lines.append((text, tls))

    def event(self, what, detail=""):
        self.events.append((what, detail))

    def verbs(self):
        out = []
        for text, _ in self.lines:
            if text.startswith("<"):
                continue
            out.append(text.split(" ", 1)[0].upper())
        return out


# ---------------------------------------------------------------------------
# one connection


class _Closed(Exception):
    """The connection is over (hung up, closed by script, limit reached)."""


class _Conn:
    def __init__(self, server, sock, log):
        self.srv = server
        self.script = server.script
        self.sock = sock
        self.log = log
        self.buf = b""
        self.tls = None          # negotiated version once TLS is up
        self.read_timeout = float(self.script.get("read_timeout", 30))
        self.deadline = time.monotonic() + float(self.script.get("max_session", 60))

    # -- I/O ---------------------------------------------------------------
    def _left(self, limit):
        left = min(limit, self.deadline - time.monotonic())
        if left <= 0 or self.srv.stopping.is_set():
            return 0
        return left

    def _recv_some(self, limit):
        """Some bytes from the client; b"" at EOF; None when limit passes."""
        end = time.monotonic() + limit
        while True:
            left = self._left(end - time.monotonic())
            if left <= 0:
                return None
            if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
                ready = True
            else:
                r, _, _ = select.select([self.sock], [], [], min(left, 0.25))
                ready = bool(r)
            if not ready:
                continue
            try:
                return self.sock.recv(65536)
            except ssl.SSLWantReadError:
                continue
            except (ssl.SSLError, OSError) as e:
                self.log.event("read-error", str(e))
                return b""

    def readline(self):
        """One line (CRLF kept); raises _Closed at EOF or timeout."""
        while b"\n" not in self.buf:
            if len(self.buf) > 4096:     # no line end in sight: binary junk
                line, self.buf = self.buf, b""
                return line
            chunk = self._recv_some(self.read_timeout)
            if chunk is None:
                self.log.event("timeout", f"no line within {self.read_timeout:.0f}s")
                raise _Closed()
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                self.log.event("eof")
                raise _Closed()
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        end = time.monotonic() + 10
        view = memoryview(data)
        while view:
            left = self._left(end - time.monotonic())
            if left <= 0:
                raise _Closed()
            _, w, _ = select.select([], [self.sock], [], min(left, 0.25))
            if not w:
                continue
            try:
                n = self.sock.send(view)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                continue
            except (ssl.SSLError, OSError) as e:
                self.log.event("write-error", str(e))
                raise _Closed()
            view = view[n:]

    def silence(self):
        """Answer nothing; record what arrives until EOF or the limit."""
        self.log.event("silence")
        while True:
            chunk = self._recv_some(self._left(3600) or 0)
            if not chunk:
                raise _Closed()
            self.buf += chunk
            while b"\n" in self.buf:
                line, _, self.buf = self.buf.partition(b"\n")
                self.log.add_line(line + b"\n", self.tls)
            if len(self.buf) > 4096:
                self.log.add_line(self.buf, self.tls)
                self.buf = b""

    def handshake(self):
        """The server side of a TLS handshake, non-blocking and bounded."""
        ctx = self.srv.tls_ctx()
        leftover, self.buf = self.buf, b""
        if leftover:
            self.log.event("plaintext-after-starttls", repr(leftover[:64]))
        self.sock.setblocking(False)
        try:
            s = ctx.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
        except (ssl.SSLError, OSError) as e:
            self.log.event("tls-failed", str(e))
            raise _Closed()
        self.sock = s
        end = time.monotonic() + self.read_timeout
        while True:
            left = self._left(end - time.monotonic())
            if left <= 0:
                self.log.event("tls-failed", "handshake timed out")
                raise _Closed()
            try:
                s.do_handshake()
                break
            except ssl.SSLWantReadError:
                select.select([s], [], [], min(left, 0.25))
            except ssl.SSLWantWriteError:
                select.select([], [s], [], min(left, 0.25))
            except (ssl.SSLError, OSError) as e:
                self.log.event("tls-failed", str(e))
                raise _Closed()
        self.tls = s.version()
        self.log.event("tls", f"{self.tls} {s.cipher()[0] if s.cipher() else ''}".strip())

    # -- script ------------------------------------------------------------
    def action(self, verb):
        """The action for a verb: replies_tls (once TLS is up), replies,
        the defaults; for unknown verbs the "*" entries in that order."""
        tables = [self.script.get("replies", {})]
        if self.tls:
            tables.insert(0, self.script.get("replies_tls", {}))
        for table in tables:
            if verb in table:
                return table[verb]
        if verb in DEFAULT_REPLIES and verb != "*":
            return DEFAULT_REPLIES[verb]
        for table in tables:
            if "*" in table:
                return table["*"]
        return DEFAULT_REPLIES["*"]

    def fmt(self, text):
        return text.replace("{hostname}", self.srv.hostname)

    def perform(self, act):
        """Carry out an action; returns the reply code sent (or None)."""
        if isinstance(act, str) and act.startswith("!"):
            act = {"then": act[1:]}
        if isinstance(act, (str, list)):
            act = {"reply": act}
        if not isinstance(act, dict):
            raise ScriptError(f"bad action {act!r}")
        code = None
        then = act.get("then")
        if act.get("then") == "garbage" or act.get("garbage"):
            self.send(GARBAGE)
            self.log.event("sent-garbage")
            then = "silence" if then in (None, "garbage") else then
        if "raw" in act:
            self.send(binascii.unhexlify(act["raw"].replace(" ", "")))
        if "reply" in act:
            lines = act["reply"]
            if isinstance(lines, str):
                lines = lines.split("\n")
            lines = [self.fmt(ln.rstrip("\r")) for ln in lines]
            self.send("".join(ln + "\r\n" for ln in lines))
            m = re.match(r"(\d{3})", lines[-1]) if lines else None
            code = int(m.group(1)) if m else None
            if code == 421 and then is None:
                then = "close"
        if then == "close":
            self.log.event("close", "by script")
            raise _Closed()
        if then == "silence":
            self.silence()
        elif then not in (None, "garbage"):
            raise ScriptError(f"bad 'then' {then!r}")
        return code

    def ehlo_reply(self):
        caps = self.script.get("caps", ["PIPELINING", "8BITMIME"])
        if self.tls:
            caps = self.script.get("caps_tls",
                                   [c for c in caps if c.upper() != "STARTTLS"])
        lines = [self.srv.hostname] + list(caps)
        return [("250 " if i == len(lines) - 1 else "250-") + ln
                for i, ln in enumerate(lines)]

    def run(self):
        if self.script.get("tls") == "implicit":
            self.handshake()
        self.perform(self.script.get("greeting", "220 {hostname} ESMTP faultserver"))
        while True:
            line = self.readline()
            self.log.add_line(line, self.tls)
            text = line.decode("utf-8", "replace").strip()
            verb = text.split(" ", 1)[0].upper() if text else ""
            if not re.match(r"^[A-Z]{2,12}$", verb):
                verb = "*"
            if verb == "EHLO":
                act = self.action("EHLO") if self._has("EHLO") else self.ehlo_reply()
                self.perform(act)
            elif verb == "STARTTLS":
                caps = self.script.get("caps", ["PIPELINING", "8BITMIME"])
                offered = any(c.upper() == "STARTTLS" for c in caps)
                if self.tls or (not offered and not self._has("STARTTLS")):
                    self.perform("503 5.5.1 Error: TLS already active" if self.tls
                                 else "502 5.5.1 Error: command not implemented")
                    continue
                code = self.perform(self.action("STARTTLS"))
                if code is not None and 200 <= code < 300:
                    self.handshake()
            elif verb == "AUTH":
                self.auth(text)
            elif verb == "DATA":
                code = self.perform(self.action("DATA"))
                if code == 354:
                    self.message()
            else:
                self.perform(self.action(verb))

    def _has(self, verb):
        if self.tls and verb in self.script.get("replies_tls", {}):
            return True
        return verb in self.script.get("replies", {})

    def auth(self, text):
        parts = text.split()
        mech = parts[1].upper() if len(parts) > 1 else ""
        ir = len(parts) > 2
        steps = []
        if mech == "LOGIN":
            if not ir:
                steps.append("334 VXNlcm5hbWU6")
            steps.append("334 UGFzc3dvcmQ6")
        elif mech == "CRAM-MD5":
            steps.append("334 PDEyMzQ1LjY3ODkwQGZhdWx0LnRlc3Q+")
        elif mech in ("PLAIN", "XOAUTH2", "OAUTHBEARER") and not ir:
            steps.append("334 ")
        for step in steps:
            self.send(step + "\r\n")
            line = self.readline()
            self.log.add_line(b"<auth-response>", self.tls)
            if line.strip() == b"*":
                self.perform("501 5.7.0 Authentication cancelled")
                return
        self.perform(self.action("AUTH"))

    def message(self):
        data = b""
        while True:
            line = self.readline()
            if line in (b".\r\n", b".\n"):
                break
            data += line
            if len(data) > 64 << 20:
                raise _Closed()
        self.log.messages.append(data)
        self.log.add_line(b"<message>", self.tls)
        self.perform(self.action("."))


# ---------------------------------------------------------------------------
# the server


class FaultServer:
    def __init__(self, script, certs=None, host=HOST, port=0, name="fault"):
        if not isinstance(script, dict):
            raise ScriptError("a script is a dict")
        self.script = script
        self.certs = certs
        self.name = name
        self.hostname = script.get("hostname", "fault.test")
        self.stopping = threading.Event()
        self.cond = threading.Condition()
        self.conns = []
        self.errors = []
        self._socks = []
        self._threads = []
        self._ctx = None
        self._accept_thread = None
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                  socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host = host
        self.port = self.sock.getsockname()[1]
        needs_tls = script.get("tls") == "implicit" or any(
            c.upper() == "STARTTLS" for c in script.get("caps", []))
        if needs_tls:
            self._ctx = tls_context(certs, script)   # fail early on a bad script

    def tls_ctx(self):
        if self._ctx is None:
            self._ctx = tls_context(self.certs, self.script)
        return self._ctx

    def start(self):
        self.sock.listen(32)
        self._accept_thread = threading.Thread(target=self._accept, daemon=True,
                                               name=f"{self.name}-accept")
        self._accept_thread.start()
        return self

    def _accept(self):
        while not self.stopping.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.25)
            if not r:
                continue
            try:
                s, peer = self.sock.accept()
            except OSError:
                return
            with self.cond:
                log = ConnLog(len(self.conns), peer)
                self.conns.append(log)
                self._socks.append(s)
            th = threading.Thread(target=self._serve, args=(s, log), daemon=True,
                                  name=f"{self.name}-conn{log.index}")
            self._threads.append(th)
            th.start()

    def _serve(self, sock, log):
        c = _Conn(self, sock, log)
        try:
            if self.script.get("greeting") == "!close":
                log.event("close", "at once")
            else:
                c.run()
        except _Closed:
            pass
        except ScriptError as e:
            self.errors.append(f"script error: {e}")
        except (OSError, ssl.SSLError) as e:
            log.event("error", str(e))
        except Exception as e:  # noqa: BLE001 - reported through errors
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            for s in {c.sock, sock}:
                try:
                    s.close()
                except OSError:
                    pass
            with self.cond:
                log.closed = True
                self.cond.notify_all()

    # -- what happened ---------------------------------------------------------
    def wait_idle(self, timeout=10):
        """Wait until every accepted connection has ended; False on timeout."""
        with self.cond:
            return self.cond.wait_for(lambda: all(c.closed for c in self.conns), timeout)

    def verbs(self):
        with self.cond:
            return [v for c in self.conns for v in c.verbs()]

    def lines(self):
        with self.cond:
            return [(c.index, text, tls) for c in self.conns for text, tls in c.lines]

    def events(self):
        with self.cond:
            return [(c.index, what, detail) for c in self.conns for what, detail in c.events]

    def messages(self):
        with self.cond:
            return [m for c in self.conns for m in c.messages]

    def transcript(self, limit=40):
        """A short readable summary for failure messages."""
        out = []
        with self.cond:
            for c in self.conns:
                items = [f"{'T' if tls else 'P'}:{text}" for text, tls in c.lines]
                items += [f"[{w}{' ' + d if d else ''}]" for w, d in c.events]
                out.append(f"#{c.index}: " + " | ".join(items[:limit]))
        return "; ".join(out) or "no connections"

    def stop(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        if self._accept_thread is not None:
            self._accept_thread.join(5)
        with self.cond:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for th in list(self._threads):
            th.join(5)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


class OpenSSLTLS10Server:
    """Fallback when Python's ssl cannot serve TLS 1.0: `openssl s_server
    -tls1 -cipher DEFAULT@SECLEVEL=0`, implicit TLS only, sending the
    greeting once a client completes a handshake (never, with smtpkit)."""

    def __init__(self, certs, cert="good", host=HOST):
        argv = ["openssl", "s_server", "-accept", f"{host}:0", "-cert", certs.crt(cert),
                "-key", certs.key(cert), "-tls1", "-cipher", "DEFAULT@SECLEVEL=0",
                "-naccept", "64"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.buf = b""
        self.port = None
        self.conns = []
        self.errors = []
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + 10
        while self.port is None and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            self.buf += chunk
            m = re.search(rb"ACCEPT\s+\S*:(\d+)\s*\n", self.buf)
            if m:
                self.port = int(m.group(1))
        if self.port is None:
            self.stop()
            raise RuntimeError(f"openssl s_server did not report its port: {self.buf!r}")

    def start(self):
        return self

    def wait_idle(self, timeout=10):
        return True

    def verbs(self):
        return []

    def lines(self):
        return []

    def events(self):
        return []

    def messages(self):
        return []

    def transcript(self, limit=40):
        return "openssl s_server: " + self.buf.decode("utf-8", "replace")[-300:]

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, 9)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


def make_server(script, certs=None, host=HOST, port=0, name="fault"):
    """A started FaultServer, or the s_server fallback for an implicit-TLS
    TLS 1.0 script when Python cannot serve TLS 1.0 (note says which)."""
    legacy = script.get("tls_max") in LEGACY
    if legacy and os.environ.get("FAULTSERVER_FORCE_S_SERVER") != "1":
        ok, why = tls10_available(certs)
    elif legacy:
        ok, why = False, "FAULTSERVER_FORCE_S_SERVER=1"
    else:
        ok, why = True, ""
    if not ok:
        if script.get("tls") != "implicit" or port:
            raise Unsupported(f"Python's ssl cannot serve TLS 1.0 here ({why}); "
                              f"the openssl s_server fallback does implicit TLS "
                              f"on port 0 only")
        srv = OpenSSLTLS10Server(certs, script.get("cert", "good"), host)
        srv.note = f"TLS 1.0 via openssl s_server -tls1 (Python's ssl: {why})"
        return srv
    srv = FaultServer(script, certs, host, port, name).start()
    srv.note = ""
    return srv


# ---------------------------------------------------------------------------
# scenario files


def merge_script(template, script):
    """A template overlaid with a script: keys replaced, except replies /
    replies_tls, merged verb by verb."""
    import json
    out = json.loads(json.dumps(template))
    for k, v in script.items():
        if k in ("replies", "replies_tls") and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def load_scenarios(directory):
    """Every scenario of directory/*.json ({"scenarios": [...]} and
    {"templates": {...}}, shared across files), with each server's
    template applied to its script."""
    import glob
    import json
    scenarios, templates = [], {}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        templates.update(data.get("templates", {}))
        for sc in data.get("scenarios", []):
            sc["_file"] = os.path.basename(path)
            scenarios.append(sc)
    for sc in scenarios:
        for sid, spec in sc.get("servers", {}).items():
            if "template" in spec:
                if spec["template"] not in templates:
                    raise ScriptError(f"{sc['_file']}: {sc.get('name')}: server {sid}: "
                                      f"no template {spec['template']!r}")
                spec["script"] = merge_script(templates[spec["template"]],
                                              spec.get("script", {}))
            elif spec.get("kind", "fault") == "fault":
                spec.setdefault("script", {})
    return scenarios


# ---------------------------------------------------------------------------
# standalone


def _main():
    import argparse
    import json
    import signal
    import sys
    import tempfile

    ap = argparse.ArgumentParser(description="scripted SMTP fault server")
    ap.add_argument("file", nargs="?",
                    help="a scenarios JSON file (templates come from its directory)")
    ap.add_argument("name", nargs="?", help="the scenario in it")
    ap.add_argument("server", nargs="?", help="which of its servers (default: the first)")
    ap.add_argument("--script", help="a script as inline JSON instead")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    if args.script:
        script = json.loads(args.script)
    elif args.file and args.name:
        path = os.path.abspath(args.file)
        found = [s for s in load_scenarios(os.path.dirname(path))
                 if s["name"] == args.name and s["_file"] == os.path.basename(path)]
        if not found:
            sys.exit(f"no scenario {args.name!r} in {args.file}")
        servers = {k: v for k, v in found[0].get("servers", {}).items()
                   if v.get("kind", "fault") == "fault"}
        if not servers:
            sys.exit(f"scenario {args.name!r} has no fault server")
        spec = servers.get(args.server) if args.server else next(iter(servers.values()))
        if spec is None:
            sys.exit(f"scenario {args.name!r} has no fault server {args.server!r}")
        script = spec["script"]
    else:
        ap.error("give FILE NAME, or --script JSON")
    d = tempfile.mkdtemp(prefix="faultserver.")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import certs as certs_mod
    c = certs_mod.make_certs(d)
    srv = make_server(script, c, port=args.port)
    print(f"PORT {srv.port}\nCA {c.ca}" + (f"\nNOTE {srv.note}" if srv.note else ""),
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        while not stop.is_set():
            r, _, _ = select.select([sys.stdin], [], [], 0.5)
            if r and not sys.stdin.readline():
                break
    except KeyboardInterrupt:
        pass
    srv.stop()
    import shutil
    shutil.rmtree(d, ignore_errors=True)
    try:
        for ln in srv.lines():
            print(ln)
        for ev in srv.events():
            print(ev)
    except BrokenPipeError:
        pass


if __name__ == "__main__":
    _main()
