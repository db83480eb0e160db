"""Real SMTP peers on 127.0.0.1 for the integration tests.

  AioServer      aiosmtpd (plain, STARTTLS or implicit TLS, AUTH), in its own
                 thread and event loop, recording every command line, AUTH
                 attempt and message it receives
  ScriptedServer a tiny socket server that runs a Python function per
                 connection: for greetings, odd replies, hangs and hang-ups
  SmtpSink       Postfix's smtp-sink, with its counters and dump file
  SServer        openssl s_server, to present a certificate

Every server listens on port 0 and reads the chosen port back; every wait
has a deadline; nothing listens beyond 127.0.0.1.
"""

import asyncio
import base64
import glob
import hmac
import json
import logging
import os
import pwd
import re
import secrets
import select
import signal
import socket
import ssl
import subprocess
import threading
import time
import types
import warnings

from harness import Fail, Skip

try:
    from aiosmtpd.smtp import SMTP, AuthResult, MISSING
    HAVE_AIOSMTPD = True
    AIOSMTPD_ERROR = None
except ImportError as e:
    HAVE_AIOSMTPD = False
    AIOSMTPD_ERROR = str(e)
    SMTP = object

# aiosmtpd and asyncio log every dropped connection and failed handshake;
# the tests look at what the server recorded instead.
for _name in ("mail.log", "asyncio"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)
warnings.filterwarnings("ignore", module=r"aiosmtpd(\..*)?$")

HOST = "127.0.0.1"
SMTP_SINK = "/usr/sbin/smtp-sink"


def need_aiosmtpd():
    if not HAVE_AIOSMTPD:
        raise Skip(f"python3-aiosmtpd is not importable: {AIOSMTPD_ERROR}")


def server_tls_context(certs, name, max_version=None, min_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.crt(name), certs.key(name))
    if max_version is not None:
        ctx.maximum_version = max_version
    if min_version is not None:
        ctx.minimum_version = min_version
    return ctx


# ---------------------------------------------------------------------------
# aiosmtpd


class ConnRec:
    """One client connection as the server saw it."""

    def __init__(self, peer, tls):
        self.peer = peer
        self.lines = []          # (text, tls version or None), in order
        self.tls_at_connect = tls
        self.closed = False
        self.auths = []
        self.messages = []

    def add(self, raw, tls):
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        m = re.match(r"(?i)(AUTH\s+\S+)\s+\S+", text)
        if m:  # never keep credentials, even in the test's own records
            text = m.group(1) + " <initial-response>"
        self.lines.append((text, tls))

    def verbs(self):
        return [ln.split(" ", 1)[0].upper() for ln, _ in self.lines
                if not ln.startswith("<")]

    def commands(self, verb):
        return [ln for ln, _ in self.lines if ln.split(" ", 1)[0].upper() == verb]


class MsgRec:
    def __init__(self, conn, mail_from, mail_options, rcpt_tos, rcpt_options,
                 content, tls, login):
        self.conn = conn
        self.mail_from = mail_from
        self.mail_options = list(mail_options)
        self.rcpt_tos = list(rcpt_tos)
        self.rcpt_options = list(rcpt_options)
        self.content = content
        self.tls = tls
        self.login = login


class AuthRec:
    def __init__(self, mechanism, login, success, tls):
        self.mechanism = mechanism
        self.login = login
        self.success = success
        self.tls = tls


class Recorder:
    def __init__(self):
        self.cond = threading.Condition()
        self.all_conns = []
        self.messages = []
        self.auths = []
        self.refused = []
        self.probe_ports = set()

    def new_conn(self, peer, tls):
        c = ConnRec(peer, tls)
        with self.cond:
            self.all_conns.append(c)
            self.cond.notify_all()
        return c

    def closed(self, c):
        with self.cond:
            c.closed = True
            self.cond.notify_all()

    @property
    def conns(self):
        """Client connections, without the harness's own probes."""
        with self.cond:
            return [c for c in self.all_conns
                    if not (c.peer and c.peer[1] in self.probe_ports)]

    def all_lines(self):
        return [ln for c in self.conns for ln, _ in c.lines]

    def verbs(self):
        return [v for c in self.conns for v in c.verbs()]

    def wait_closed(self, timeout):
        with self.cond:
            return self.cond.wait_for(
                lambda: all(c.closed for c in self.all_conns
                            if not (c.peer and c.peer[1] in self.probe_ports)),
                timeout)


if HAVE_AIOSMTPD:
    class RecSMTP(SMTP):
        """aiosmtpd's SMTP, recording every line the client sends outside
        DATA and AUTH exchanges."""

        def __init__(self, handler, aio, **kw):
            self._aio = aio
            self._crec = None
            self._mode = None
            super().__init__(handler, **kw)

        def _tls(self):
            t = self.transport
            obj = t.get_extra_info("ssl_object") if t is not None else None
            return obj.version() if obj is not None else None

        def connection_made(self, transport):
            first = self.transport is None
            super().connection_made(transport)
            if not first:
                return
            self._aio.protocols.append(self)
            self._crec = self._aio.rec.new_conn(
                transport.get_extra_info("peername"), self._tls())
            orig = self._reader.readuntil
            crec = self._crec

            async def readuntil(separator=b"\n"):
                line = await orig(separator)
                if self._mode is None:
                    crec.add(line, self._tls())
                elif self._mode == "auth":
                    crec.add(b"<auth-response>", self._tls())
                return line
            self._reader.readuntil = readuntil

        def connection_lost(self, error):
            try:
                super().connection_lost(error)
            finally:
                if self._crec is not None and not self._crec.closed:
                    self._aio.rec.closed(self._crec)

        async def smtp_DATA(self, arg):
            self._mode = "data"
            try:
                await super().smtp_DATA(arg)
            finally:
                self._mode = None

        async def smtp_AUTH(self, arg):
            self._mode = "auth"
            try:
                await super().smtp_AUTH(arg)
            finally:
                self._mode = None

    for _m in ("smtp_DATA", "smtp_AUTH"):
        for _attr in ("__smtp_syntax__", "__smtp_syntax_extended__", "__smtp_syntax_when__"):
            if hasattr(getattr(SMTP, _m), _attr):
                setattr(getattr(RecSMTP, _m), _attr, getattr(getattr(SMTP, _m), _attr))


class _Handler:
    """aiosmtpd handler: envelope bookkeeping, canned refusals, extra AUTH
    mechanisms (CRAM-MD5, XOAUTH2)."""

    def __init__(self, aio):
        self.aio = aio

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        out = []
        for r in responses:
            if r.startswith("250-AUTH") and (self.aio.users is None or r.strip() == "250-AUTH"):
                continue
            out.append(r)
        extra = []
        if self.aio.pipelining:
            extra.append("250-PIPELINING")
        if self.aio.enhanced:
            extra.append("250-ENHANCEDSTATUSCODES")
        return out[:-1] + extra + out[-1:]

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.aio.mail_reply:
            return self.aio.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.aio.refuse.get(address.lower())
        if reply:
            self.aio.rec.refused.append(address)
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        login = None
        if session.authenticated and session.auth_data is not None:
            login = getattr(session.auth_data, "login", None)
            if isinstance(login, bytes):
                login = login.decode("utf-8", "replace")
        crec = server._crec
        m = MsgRec(crec, envelope.mail_from, envelope.mail_options, envelope.rcpt_tos,
                   envelope.rcpt_options, bytes(envelope.original_content),
                   server._tls(), login)
        with self.aio.rec.cond:
            self.aio.rec.messages.append(m)
            n = len(self.aio.rec.messages)
        if crec is not None:
            crec.messages.append(m)
        if self.aio.data_reply:
            return self.aio.data_reply
        return f"250 2.0.0 OK queued as M{n}"

    def _record_auth(self, server, mechanism, login, ok):
        a = AuthRec(mechanism, login, ok, server._tls())
        self.aio.rec.auths.append(a)
        if server._crec is not None:
            server._crec.auths.append(a)

    async def auth_CRAM__MD5(self, server, args):
        challenge = f"<{secrets.token_hex(8)}.{int(time.time())}@smtp.test>".encode()
        resp = await server.challenge_auth(challenge)
        if resp is MISSING:
            return AuthResult(success=False, handled=True)
        try:
            user, digest = resp.decode().rsplit(" ", 1)
        except ValueError:
            await server.push("501 5.5.2 Cannot parse CRAM-MD5 response")
            return AuthResult(success=False, handled=True)
        pw = (self.aio.users or {}).get(user)
        ok = pw is not None and hmac.compare_digest(
            hmac.new(pw.encode(), challenge, "md5").hexdigest(), digest.lower())
        self._record_auth(server, "CRAM-MD5", user, ok)
        return AuthResult(success=ok, handled=False,
                          auth_data=types.SimpleNamespace(login=user.encode()))

    async def auth_XOAUTH2(self, server, args):
        if len(args) == 2:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        fields = dict(p.split(b"=", 1) for p in blob.split(b"\x01") if b"=" in p)
        user = fields.get(b"user", b"").decode("utf-8", "replace")
        auth = fields.get(b"auth", b"").decode("utf-8", "replace")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        ok = token is not None and (self.aio.users or {}).get(user) == token
        self._record_auth(server, "XOAUTH2", user, ok)
        if not ok:
            # RFC 7628-style error challenge; the client answers with an empty line.
            err = json.dumps({"status": "401", "schemes": "bearer", "scope": "mail"})
            await server.challenge_auth(err)
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 Username and Password not accepted")
        return AuthResult(success=True, handled=False,
                          auth_data=types.SimpleNamespace(login=user.encode()))

    async def auth_OAUTHBEARER(self, server, args):
        """RFC 7628: gs2 header "n,a=user," then ^A-separated key=value
        pairs with auth=Bearer <token>."""
        if len(args) == 2:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        text = blob.decode("utf-8", "replace")
        gs2, _, rest = text.partition("\x01")
        user = next((f[2:] for f in gs2.split(",") if f.startswith("a=")), "")
        kv = dict(p.split("=", 1) for p in rest.split("\x01") if "=" in p)
        auth = kv.get("auth", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        ok = token is not None and (self.aio.users or {}).get(user) == token
        self._record_auth(server, "OAUTHBEARER", user, ok)
        if not ok:
            err = json.dumps({"status": "invalid_token", "scope": "mail"})
            await server.challenge_auth(err)  # the client answers ^A
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 Invalid bearer token")
        return AuthResult(success=True, handled=False,
                          auth_data=types.SimpleNamespace(login=user.encode()))


ALL_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER")


class AioServer:
    """aiosmtpd on 127.0.0.1:0.

    tls: None | "starttls" | "implicit"; cert: name in certs (default "good").
    users: {login: password} enables AUTH with the given mechanisms.
    refuse: {rcpt address: reply} for RCPT refusals.
    """

    def __init__(self, t, *, tls=None, cert="good", require_starttls=False,
                 users=None, mechanisms=("PLAIN", "LOGIN"), auth_required=False,
                 auth_require_tls=True, pipelining=True, enhanced=True,
                 refuse=None, mail_reply=None, data_reply=None,
                 data_size_limit=None, tls_max_version=None, smtputf8=False):
        need_aiosmtpd()
        self.t = t
        self.tls = tls
        self.users = users
        self.pipelining = pipelining
        self.enhanced = enhanced
        self.refuse = {k.lower(): v for k, v in (refuse or {}).items()}
        self.mail_reply = mail_reply
        self.data_reply = data_reply
        self.rec = Recorder()
        self.protocols = []
        self.loop = None
        self.port = None
        self._client_ctx = None
        ctx = None
        if tls:
            ctx = server_tls_context(t.certs(), cert, max_version=tls_max_version)
        if tls == "implicit":
            # aiosmtpd only knows STARTTLS as "TLS": on an implicit-TLS
            # listener every connection is already encrypted.
            auth_require_tls = False
        self._starttls_ctx = ctx if tls == "starttls" else None
        self._implicit_ctx = ctx if tls == "implicit" else None
        if users is not None:
            excluded = [m for m in ALL_MECHANISMS if m not in mechanisms]
        else:
            excluded = list(ALL_MECHANISMS)
        self._smtp_kw = dict(
            hostname="smtp.test",
            ident="smtpkit-integration aiosmtpd",
            tls_context=self._starttls_ctx,
            require_starttls=require_starttls,
            data_size_limit=data_size_limit,
            auth_required=auth_required,
            auth_require_tls=auth_require_tls,
            auth_exclude_mechanism=excluded,
            authenticator=self._authenticate if users is not None else None,
            enable_SMTPUTF8=smtputf8,
            timeout=120,
        )
        self._handler = _Handler(self)
        self._start()
        t.defer(self.stop)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ok = (self.users or {}).get(login) == password
        self._handler._record_auth(server, mechanism, login, ok)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def _start(self):
        ready = threading.Event()
        state = {}

        def run():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self.loop = loop
            try:
                srv = loop.run_until_complete(loop.create_server(
                    lambda: RecSMTP(self._handler, self, loop=loop, **self._smtp_kw),
                    host=HOST, port=0, ssl=self._implicit_ctx))
            except Exception as e:  # noqa: BLE001
                state["error"] = e
                ready.set()
                loop.close()
                return
            self.port = srv.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                srv.close()
                for p in self.protocols:
                    for tr in (p.transport, getattr(p, "_original_transport", None)):
                        if tr is not None and not tr.is_closing():
                            try:
                                tr.abort()
                            except Exception:  # noqa: BLE001 - half-dead SSL transports
                                pass
                tasks = [x for x in asyncio.all_tasks(loop) if not x.done()]
                for x in tasks:
                    x.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="aiosmtpd", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise Fail("aiosmtpd did not start within 10s")
        if "error" in state:
            raise Fail(f"aiosmtpd failed to start: {state['error']}")

    def stop(self):
        if self.loop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def sync(self, timeout=10):
        """Make sure the server has seen everything a finished client sent:
        open a probe connection (accepted after any earlier one), read its
        greeting, then wait until every client connection has closed."""
        s = socket.create_connection((HOST, self.port), timeout=timeout)
        try:
            with self.rec.cond:
                self.rec.probe_ports.add(s.getsockname()[1])
            if self._implicit_ctx is not None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                s = ctx.wrap_socket(s, server_hostname="localhost")
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            try:
                s.sendall(b"QUIT\r\n")
            except OSError:
                pass
        finally:
            s.close()
        if not self.rec.wait_closed(timeout):
            self.t.note("a client connection was still open on the server after sync")
        return self.rec

    # Convenience views (call sync() first).
    @property
    def messages(self):
        return list(self.rec.messages)

    def mails(self):
        return [ln for ln in self.rec.all_lines() if ln.upper().startswith("MAIL")]


# ---------------------------------------------------------------------------
# scripted socket server


class ScriptConn:
    def __init__(self, sock, stop):
        self.sock = sock
        self.stop = stop
        self.lines = []
        self.buf = b""
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def readline(self, timeout=30):
        """One line from the client (bytes, CRLF kept), or None at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.stop.is_set():
                return None
            pending = self.sock.pending() if isinstance(self.sock, ssl.SSLSocket) else 0
            if not pending:
                r, _, _ = select.select([self.sock], [], [], min(left, 0.5))
                if not r:
                    continue
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                if self.buf:
                    line, self.buf = self.buf, b""
                    self.lines.append(line)
                    return line
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        line += b"\n"
        self.lines.append(line)
        return line

    def starttls(self, ctx, timeout=10):
        """Server side of a TLS handshake on this connection.  Returns the
        plaintext the client sent after STARTTLS (it must be none)."""
        leftover, self.buf = self.buf, b""
        self.sock.settimeout(timeout)
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.sock.settimeout(None)
        return leftover

    def expect(self, verb, reply, timeout=30):
        """Read a line; if it starts with verb, send reply and return it."""
        line = self.readline(timeout)
        if line is None:
            return None
        if line.upper().startswith(verb.encode().upper()):
            self.send(reply)
        else:
            self.send("500 5.5.1 unexpected command\r\n")
        return line

    def hang(self, timeout=120):
        """Say nothing; record whatever arrives until hang-up or stop."""
        deadline = time.monotonic() + timeout
        while not self.eof and not self.stop.is_set() and time.monotonic() < deadline:
            self.readline(min(1.0, max(0.0, deadline - time.monotonic())))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class ScriptedServer:
    """Runs script(conn) in a thread for each accepted connection."""

    def __init__(self, t, script):
        self.t = t
        self.script = script
        self.stop_event = threading.Event()
        self.conns = []
        self.errors = []
        self._threads = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept, daemon=True)
        self._accept_thread.start()
        t.defer(self.stop)

    def _accept(self):
        while not self.stop_event.is_set():
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            c = ScriptConn(s, self.stop_event)
            self.conns.append(c)
            th = threading.Thread(target=self._run, args=(c,), daemon=True)
            self._threads.append(th)
            th.start()

    def _run(self, c):
        try:
            self.script(c)
        except (OSError, ValueError) as e:
            self.errors.append(repr(e))
        finally:
            c.close()

    def stop(self):
        self.stop_event.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for c in list(self.conns):
            c.close()
        self._accept_thread.join(5)
        for th in self._threads:
            th.join(5)

    def wait_done(self, timeout=10):
        """Wait for every connection's script to finish."""
        deadline = time.monotonic() + timeout
        for th in list(self._threads):
            th.join(max(0.0, deadline - time.monotonic()))

    def received(self):
        return [ln.decode("utf-8", "replace").rstrip("\r\n")
                for c in self.conns for ln in c.lines]


def closed_port(t):
    """A port on 127.0.0.1 where nothing listens (kept bound, not listening,
    so no one else takes it during the test): connecting is refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    t.defer(s.close)
    return s.getsockname()[1]


# ---------------------------------------------------------------------------
# external processes


def listening_port(pid):
    """The TCP port a process listens on, from /proc (None if none yet)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]$", target)
            if m:
                inodes.add(m.group(1))
    except OSError:
        return None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A" and cols[9] in inodes:
                return int(cols[1].rsplit(":", 1)[1], 16)
    return None


class SmtpSink:
    """Postfix's smtp-sink on 127.0.0.1:0, dumping every transaction to one
    file and printing its counters (-c).  sessions=N makes it exit after N
    sessions, which also flushes its output."""

    def __init__(self, t, sessions=None, extra=()):
        if not os.access(SMTP_SINK, os.X_OK):
            raise Skip(f"{SMTP_SINK} is not installed (postfix)")
        self.t = t
        d = os.path.join(t.tmp, "sink")
        os.makedirs(d, exist_ok=True)
        argv = [SMTP_SINK, "-c", "-D", os.path.join(d, "dump")]
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("nobody")
            except KeyError:
                raise Skip("smtp-sink must drop privileges and there is no 'nobody' user")
            # smtp-sink writes its dump after dropping to nobody: let it
            # through the (private) temp directories into the dump directory.
            for parent in (t.cfg.tmp, t.tmp):
                os.chmod(parent, os.stat(parent).st_mode | 0o711)
            os.chmod(d, 0o777)
            argv += ["-u", "nobody"]
        if sessions:
            argv += ["-n", str(sessions)]
        argv += list(extra) + [f"{HOST}:0", "64"]
        self.dump_path = os.path.join(d, "dump")
        self.out_path = os.path.join(d, "stdout")
        self._out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        t.defer(self.stop)
        deadline = time.monotonic() + 10
        self.port = None
        while time.monotonic() < deadline:
            self.port = listening_port(self.proc.pid)
            if self.port or self.proc.poll() is not None:
                break
            time.sleep(0.005)  # polling /proc for the listening socket, bounded
        if not self.port:
            self.stop()
            raise Fail(f"smtp-sink did not start listening: {self.output()!r}")

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if not self._out.closed:
            self._out.close()

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def counters(self):
        """The last {'sess','quit','mesg'} counters smtp-sink printed."""
        found = re.findall(r"sess=(\d+) quit=(\d+) mesg=(\d+)", self.output())
        if not found:
            return None
        s, q, m = found[-1]
        return {"sess": int(s), "quit": int(q), "mesg": int(m)}

    def dump(self):
        """Everything dumped (smtp-sink appends a random suffix to the name)."""
        out = b""
        for p in sorted(glob.glob(self.dump_path + "*")):
            with open(p, "rb") as f:
                out += f.read()
        return out


class SServer:
    """openssl s_server on 127.0.0.1:0 presenting cert/key, for one
    connection.  It prints 'ACCEPT 127.0.0.1:<port>' when ready."""

    def __init__(self, t, cert, key, extra=()):
        self.t = t
        argv = ["openssl", "s_server", "-accept", f"{HOST}:0", "-cert", cert,
                "-key", key, "-naccept", "1"] + list(extra)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        except FileNotFoundError:
            raise Skip("openssl is not installed")
        t.defer(self.stop)
        self.buf = b""
        self.port = None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + 10
        while self.port is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([fd], [], [], left)
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
            raise Fail(f"openssl s_server did not report its port: {self.buf!r}")
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.buf += chunk

    def finish(self, timeout=10):
        """Wait for s_server to end its one connection; return its output."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.stop()
        return self.buf.decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        if getattr(self, "_reader", None) is not None:
            self._reader.join(5)
