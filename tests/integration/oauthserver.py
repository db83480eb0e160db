"""A local OAuth2 authorization server and an SMTP server that accepts only
the access tokens it issued, for the OAuth2 integration tests.

  OAuthServer   http.server on 127.0.0.1:0, in its own threads:
                  POST /devicecode   device authorization (RFC 8628 §3.1-3.2)
                  GET  /authorize    authorization endpoint (RFC 6749 §4.1,
                                     PKCE RFC 7636): 302 to the redirect_uri
                                     with code and state
                  POST /token        grant_type device_code (a scripted
                                     sequence of authorization_pending,
                                     slow_down, expired_token,
                                     access_denied, ok), authorization_code
                                     (PKCE S256, redirect_uri and client_id
                                     checked), refresh_token (new access
                                     token, rotating the refresh token if
                                     asked; invalid_grant once revoked)
                Every request is recorded with its time (monotonic), so tests
                measure polling intervals and count refreshes instead of
                sleeping.  Every token it issues is registered with the test
                as a secret (t.secret) the moment it is made, so the harness
                fails the test if smtpkit ever prints one.
  OAuthSMTP     servers.AioServer whose XOAUTH2 and OAUTHBEARER accept only
                an access token that the OAuthServer currently holds valid
                (issued, not expired, not expired by the test), for the one
                user.  A refused token is answered the way Gmail does: a 334
                with base64 JSON {"status":"401",...} (XOAUTH2) or
                {"status":"invalid_token",...} (OAUTHBEARER, RFC 7628 §3.2.2),
                then, after the client's answer (an empty line for XOAUTH2,
                "AQ==" for OAUTHBEARER), 535 5.7.8.  It records which token
                each AUTH carried and what the client answered to the error
                challenge.

Nothing here listens beyond 127.0.0.1; every wait has a deadline.
"""

import base64
import hashlib
import http.server
import json
import re
import secrets
import select
import socket
import socketserver
import threading
import time
import types
import urllib.parse

from harness import Fail
from servers import HAVE_AIOSMTPD, AioServer, _Handler, need_aiosmtpd

if HAVE_AIOSMTPD:
    from aiosmtpd.smtp import AuthResult, MISSING

HOST = "127.0.0.1"

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PKCE_VERIFIER_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")

GMAIL_XOAUTH2_401 = {"status": "401", "schemes": "bearer",
                     "scope": "https://mail.google.com/"}
OAUTHBEARER_401 = {"status": "invalid_token", "schemes": "bearer",
                   "scope": "https://mail.google.com/"}
GMAIL_535 = "535 5.7.8 Username and Password not accepted. Learn more at " \
            "https://support.google.com/mail/?p=BadCredentials"


def s256(verifier):
    """PKCE S256: BASE64URL(SHA256(ASCII(code_verifier))), no padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Req:
    """One HTTP request as the server saw it."""

    def __init__(self, method, path, query, form, headers, body):
        self.time = time.monotonic()
        self.wall = time.time()
        self.method = method
        self.path = path
        self.query = query        # {name: first value}
        self.form = form          # {name: first value} (urlencoded body)
        self.headers = headers    # {lower-case name: value}
        self.body = body
        self.status = None        # the HTTP status answered
        self.answer = None        # the JSON answered (dict) or a note
        self.done = None          # monotonic time the answer was sent

    @property
    def grant(self):
        return self.form.get("grant_type")

    def __repr__(self):
        what = self.grant or self.path
        err = self.answer.get("error") if isinstance(self.answer, dict) else None
        return f"<{self.method} {self.path} {what} -> {self.status}{' ' + err if err else ''}>"


class OAuthServer:
    """The authorization server.  Options (all changeable between runs):

    client_id, client_secret    what clients must present (secret: None =
                                public client, not checked)
    access_ttl                  expires_in of issued access tokens
    refresh_ttl_tokens          issue refresh tokens at all (default True)
    rotate_refresh              None: keep the refresh token; "keep": issue
                                a new one, the old stays valid; "invalidate":
                                issue a new one, the old dies (a second
                                refresh with it gets invalid_grant)
    refresh_delay               seconds the refresh answer is held back (to
                                widen race windows in concurrency tests)
    device_interval, device_expires_in
    device_script               answers to device_code polls, one per poll:
                                "pending", "slow_down", "expired_token",
                                "access_denied", "ok"; the last one repeats
    enforce_device_expiry       answer expired_token past expires_in
    authorize_error             None, or an error code (access_denied) the
                                authorization endpoint redirects with
    """

    def __init__(self, t, *, client_id, client_secret=None, user=None, access_ttl=3600,
                 rotate_refresh=None, refresh_delay=0.0, device_interval=1,
                 device_expires_in=60, device_script=("ok",), enforce_device_expiry=True,
                 authorize_error=None, scope=None):
        self.t = t
        self.client_id = client_id
        self.client_secret = client_secret
        if client_secret:
            t.secret(client_secret)
        self.user = user
        self.access_ttl = access_ttl
        self.rotate_refresh = rotate_refresh
        self.refresh_delay = refresh_delay
        self.device_interval = device_interval
        self.device_expires_in = device_expires_in
        self.device_script = list(device_script)
        self.enforce_device_expiry = enforce_device_expiry
        self.authorize_error = authorize_error
        self.scope = scope

        self.cond = threading.Condition()
        self.requests = []
        self.errors = []            # protocol violations by the client
        self.access = {}            # access token -> monotonic expiry
        self.refresh = {}           # refresh token -> {"alive": bool, "scope": str}
        self.issued = []            # dicts: grant, access, refresh, expires_in, scope, time
        self.devices = {}           # device_code -> {...}
        self.codes = {}             # authorization code -> {...}
        self.authorizations = []    # the query of every /authorize request

        srv = _HTTPServer((HOST, 0), _make_handler(self))
        self._srv = srv
        self.port = srv.server_address[1]
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="oauthserver", daemon=True)
        self._thread.start()
        t.defer(self.stop)

    # -- addresses ----------------------------------------------------------
    def url(self, path):
        return f"http://{HOST}:{self.port}{path}"

    @property
    def device_endpoint(self):
        return self.url("/devicecode")

    @property
    def auth_endpoint(self):
        return self.url("/authorize")

    @property
    def token_endpoint(self):
        return self.url("/token")

    def stop(self):
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(5)

    # -- tokens -------------------------------------------------------------
    def issue(self, grant, scope, refresh=True):
        """A new access token (and refresh token); both become secrets."""
        access = "at-" + secrets.token_urlsafe(24)
        self.t.secret(access, user=self.user)
        out = {"access_token": access, "token_type": "Bearer",
               "expires_in": self.access_ttl}
        if scope:
            out["scope"] = scope
        rt = None
        if refresh:
            rt = "rt-" + secrets.token_urlsafe(24)
            self.t.secret(rt)
            out["refresh_token"] = rt
        with self.cond:
            self.access[access] = time.monotonic() + self.access_ttl
            if rt:
                self.refresh[rt] = {"alive": True, "scope": scope}
            self.issued.append({"grant": grant, "access": access, "refresh": rt,
                                "expires_in": self.access_ttl, "scope": scope,
                                "time": time.monotonic()})
            self.cond.notify_all()
        return out

    def access_valid(self, token):
        with self.cond:
            exp = self.access.get(token)
            return exp is not None and time.monotonic() < exp

    def expire_access(self, token=None):
        """Server-side expiry: the token (or every token) stops working at
        once, whatever expires_in said."""
        with self.cond:
            for tok in ([token] if token else list(self.access)):
                if tok in self.access:
                    self.access[tok] = 0.0

    def revoke_refresh(self, token=None):
        """The provider revokes the refresh token(s): invalid_grant."""
        with self.cond:
            for tok in ([token] if token else list(self.refresh)):
                self.refresh[tok]["alive"] = False

    @property
    def last(self):
        """The most recently issued token pair (a dict), or None."""
        with self.cond:
            return self.issued[-1] if self.issued else None

    # -- what was asked -----------------------------------------------------
    def reqs(self, path=None, grant=None):
        with self.cond:
            return [r for r in self.requests
                    if (path is None or r.path == path) and (grant is None or r.grant == grant)]

    def refreshes(self):
        return self.reqs("/token", "refresh_token")

    def polls(self):
        return self.reqs("/token", DEVICE_GRANT)

    def wait_for(self, pred, timeout):
        with self.cond:
            return self.cond.wait_for(pred, timeout)

    def check_clean(self):
        """Fail the test if the client broke the protocol somewhere."""
        with self.cond:
            errs = list(self.errors)
        if errs:
            raise Fail("the authorization server saw protocol errors: " + "; ".join(errs))

    # -- request handling (server threads) ----------------------------------
    def _error(self, msg):
        with self.cond:
            self.errors.append(msg)

    def _client_ok(self, req):
        """client_id (and secret, if one is configured) in the form or in
        HTTP Basic (RFC 6749 §2.3.1)."""
        cid, csec = req.form.get("client_id"), req.form.get("client_secret")
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                dec = base64.b64decode(auth[6:].strip()).decode()
                bid, _, bsec = dec.partition(":")
                cid = cid or urllib.parse.unquote_plus(bid)
                csec = csec or urllib.parse.unquote_plus(bsec)
            except (ValueError, UnicodeDecodeError):
                pass
        if cid != self.client_id:
            self._error(f"{req.path} {req.grant or ''}: client_id {cid!r}, "
                        f"expected {self.client_id!r}")
            return False
        if self.client_secret is not None and csec != self.client_secret:
            self._error(f"{req.path} {req.grant or ''}: wrong or missing client_secret")
            return False
        return True

    def handle(self, req):
        """Returns (status, headers, body dict or None)."""
        if req.path == "/devicecode" and req.method == "POST":
            return self._devicecode(req)
        if req.path == "/token" and req.method == "POST":
            ctype = req.headers.get("content-type", "")
            if not ctype.lower().startswith("application/x-www-form-urlencoded"):
                self._error(f"token request with Content-Type {ctype!r}")
                return 400, {}, {"error": "invalid_request"}
            g = req.grant
            if g == DEVICE_GRANT:
                return self._device_poll(req)
            if g == "authorization_code":
                return self._code_exchange(req)
            if g == "refresh_token":
                return self._refresh(req)
            self._error(f"token request with grant_type {g!r}")
            return 400, {}, {"error": "unsupported_grant_type"}
        if req.path == "/authorize" and req.method == "GET":
            return self._authorize(req)
        self._error(f"unexpected request {req.method} {req.path}")
        return 404, {}, {"error": "not_found"}

    def _devicecode(self, req):
        if not self._client_ok(req):
            return 401, {}, {"error": "invalid_client"}
        dc = "dc-" + secrets.token_urlsafe(16)
        uc = "%04X-%04X" % (secrets.randbelow(0x10000), secrets.randbelow(0x10000))
        now = time.monotonic()
        with self.cond:
            self.devices[dc] = {"user_code": uc, "scope": req.form.get("scope"),
                                "time": now, "expires": now + self.device_expires_in,
                                "script": list(self.device_script), "done": False}
        return 200, {}, {"device_code": dc, "user_code": uc,
                         "verification_uri": self.url("/device"),
                         "expires_in": self.device_expires_in,
                         "interval": self.device_interval,
                         "message": f"To sign in, use a web browser to open the page "
                                    f"{self.url('/device')} and enter the code {uc} "
                                    f"to authenticate."}

    def _device_poll(self, req):
        if not self._client_ok(req):
            return 401, {}, {"error": "invalid_client"}
        dc = req.form.get("device_code")
        with self.cond:
            d = self.devices.get(dc)
            if d is None:
                self.errors.append(f"poll with an unknown device_code {dc!r}")
                return 400, {}, {"error": "invalid_grant"}
            if d["done"]:
                self.errors.append("poll with a device_code already redeemed")
                return 400, {}, {"error": "invalid_grant"}
            if self.enforce_device_expiry and time.monotonic() > d["expires"]:
                step = "expired_token"
            else:
                step = d["script"].pop(0) if len(d["script"]) > 1 else d["script"][0]
        if step == "pending":
            return 400, {}, {"error": "authorization_pending",
                             "error_description": "The user has not yet finished."}
        if step in ("slow_down", "expired_token", "access_denied"):
            return 400, {}, {"error": step, "error_description": f"scripted {step}"}
        if step != "ok":
            raise RuntimeError(f"test bug: device script step {step!r}")
        with self.cond:
            d["done"] = True
        return 200, {}, self.issue("device_code", self.scope or d["scope"])

    def _authorize(self, req):
        q = req.query
        with self.cond:
            self.authorizations.append(dict(q))
        problems = []
        if q.get("response_type") != "code":
            problems.append(f"response_type {q.get('response_type')!r}")
        if q.get("client_id") != self.client_id:
            problems.append(f"client_id {q.get('client_id')!r}")
        if q.get("code_challenge_method") != "S256":
            problems.append(f"code_challenge_method {q.get('code_challenge_method')!r}")
        ch = q.get("code_challenge") or ""
        if not re.fullmatch(r"[A-Za-z0-9_-]{43}", ch):
            problems.append(f"code_challenge {ch!r} is not a base64url SHA-256")
        redirect = q.get("redirect_uri") or ""
        u = urllib.parse.urlsplit(redirect)
        if u.scheme != "http" or u.hostname not in ("127.0.0.1", "::1") or not u.port:
            problems.append(f"redirect_uri {redirect!r} is not http://127.0.0.1:PORT "
                            f"or http://[::1]:PORT (RFC 8252 §7.3)")
        if not q.get("state"):
            problems.append("no state")
        if problems:
            self._error("authorization request: " + ", ".join(problems))
            return 400, {"Content-Type": "text/plain"}, "bad authorization request: " + \
                ", ".join(problems)
        sep = "&" if u.query else "?"
        if self.authorize_error:
            loc = redirect + sep + urllib.parse.urlencode(
                {"error": self.authorize_error, "state": q["state"]})
            return 302, {"Location": loc}, None
        code = "ac-" + secrets.token_urlsafe(18)
        self.t.secret(code)
        with self.cond:
            self.codes[code] = {"client_id": q["client_id"], "redirect_uri": redirect,
                                "challenge": ch, "scope": q.get("scope"), "used": False}
        loc = redirect + sep + urllib.parse.urlencode({"code": code, "state": q["state"],
                                                       "scope": q.get("scope") or ""})
        return 302, {"Location": loc}, None

    def _code_exchange(self, req):
        if not self._client_ok(req):
            return 401, {}, {"error": "invalid_client"}
        f = req.form
        code = f.get("code")
        with self.cond:
            c = self.codes.get(code)
            if c is None:
                self.errors.append("code exchange with an unknown code")
                return 400, {}, {"error": "invalid_grant"}
            if c["used"]:
                self.errors.append("code exchange with a code already used")
                return 400, {}, {"error": "invalid_grant"}
            c["used"] = True
        problems = []
        if f.get("redirect_uri") != c["redirect_uri"]:
            problems.append(f"redirect_uri {f.get('redirect_uri')!r} differs from the "
                            f"authorization request's {c['redirect_uri']!r}")
        ver = f.get("code_verifier") or ""
        if not PKCE_VERIFIER_RE.fullmatch(ver):
            problems.append("code_verifier missing or not 43-128 unreserved characters")
        elif s256(ver) != c["challenge"]:
            problems.append("S256(code_verifier) does not match the code_challenge")
        if problems:
            self._error("code exchange: " + "; ".join(problems))
            return 400, {}, {"error": "invalid_grant", "error_description": problems[0]}
        return 200, {}, self.issue("authorization_code", self.scope or c["scope"])

    def _refresh(self, req):
        if not self._client_ok(req):
            return 401, {}, {"error": "invalid_client"}
        rt = req.form.get("refresh_token")
        if self.refresh_delay:
            time.sleep(self.refresh_delay)  # scripted slowness of the server itself
        with self.cond:
            r = self.refresh.get(rt)
            if r is None or not r["alive"]:
                return 400, {}, {"error": "invalid_grant",
                                 "error_description": "AADSTS70000: The provided value for "
                                 "the 'refresh_token' is not valid: revoked or expired."}
            scope = r["scope"]
            if self.rotate_refresh == "invalidate":
                r["alive"] = False
        out = self.issue("refresh_token", self.scope or scope,
                         refresh=self.rotate_refresh is not None)
        return 200, {}, out


class _HTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = False


def _first(qs):
    return {k: v[0] for k, v in urllib.parse.parse_qs(qs, keep_blank_values=True).items()}


def _make_handler(owner):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30

        def log_message(self, *a):
            pass

        def _serve(self, method):
            u = urllib.parse.urlsplit(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n > 0 else b""
            form = {}
            if method == "POST":
                try:
                    form = _first(body.decode("utf-8"))
                except UnicodeDecodeError:
                    form = {}
            req = Req(method, u.path, _first(u.query), form,
                      {k.lower(): v for k, v in self.headers.items()}, body)
            with owner.cond:
                owner.requests.append(req)
                owner.cond.notify_all()
            try:
                status, headers, payload = owner.handle(req)
            except Exception as e:  # noqa: BLE001 - a test bug, surfaced via errors
                owner._error(f"server exception: {type(e).__name__}: {e}")
                status, headers, payload = 500, {}, {"error": "server_error"}
            if isinstance(payload, dict):
                data = json.dumps(payload).encode()
                headers = dict(headers)
                headers.setdefault("Content-Type", "application/json")
                headers["Cache-Control"] = "no-store"
            elif isinstance(payload, str):
                data = payload.encode()
            else:
                data = b""
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)
            with owner.cond:
                req.status = status
                req.answer = payload
                req.done = time.monotonic()
                owner.cond.notify_all()

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

    return H


# ---------------------------------------------------------------------------
# a proxy that only records


class ProxyTrap:
    """A listener on 127.0.0.1:0 meant as http(s)_proxy for smtpkit: with
    NO_PROXY naming the loopback addresses, any request for another host
    (a real provider's endpoint) comes here instead of going out.  It records
    the request line (e.g. "CONNECT login.microsoftonline.com:443") and
    answers 403."""

    def __init__(self, t):
        self.seen = []
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="proxytrap", daemon=True)
        self._thread.start()
        t.defer(self.stop)

    def _run(self):
        while True:
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                if self._stop.is_set():  # stopping, and nothing left waiting
                    return
                continue
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(5)
                buf = b""
                try:
                    while b"\n" not in buf and len(buf) < 4096:
                        chunk = c.recv(4096)
                        if not chunk:
                            break
                        buf += chunk
                    c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\n\r\n")
                except OSError:
                    pass
                self.seen.append(buf.split(b"\r\n", 1)[0].decode("latin-1") or "<nothing>")

    def stop(self):
        """Take what is still waiting, then stop (idempotent)."""
        self._stop.set()
        self._thread.join(10)
        self.sock.close()


# ---------------------------------------------------------------------------
# SMTP side


class TokenAuth:
    """One XOAUTH2 / OAUTHBEARER attempt as the SMTP server saw it."""

    def __init__(self, mechanism, user, token, ok, tls):
        self.mechanism = mechanism
        self.user = user
        self.token = token
        self.success = ok
        self.tls = tls
        self.error_reply = None   # the client's answer to the error challenge
        self.time = time.monotonic()

    def __repr__(self):
        return f"<{self.mechanism} {self.user} {'ok' if self.success else 'refused'}>"


class _OAuthHandler(_Handler):
    """XOAUTH2 and OAUTHBEARER against the authorization server's tokens."""

    def _check(self, server, mech, user, token, blob):
        # The exact wire payload is a secret too (OAUTHBEARER's carries host
        # and port, so its base64 cannot be predicted beforehand).
        self.aio.t.secrets.append(base64.b64encode(blob).decode())
        ok = (token is not None and user == self.aio.user
              and not self.aio.reject_all and self.aio.oauth.access_valid(token))
        rec = TokenAuth(mech, user, token, ok, server._tls())
        with self.aio.rec.cond:
            self.aio.token_auths.append(rec)
            self.aio.rec.cond.notify_all()
        self._record_auth(server, mech, user, ok)
        return rec

    async def _blob(self, server, args):
        if len(args) == 2:
            try:
                return base64.b64decode(args[1], validate=True)
            except ValueError:
                await server.push("501 5.5.2 Can't decode base64")
                return None
        blob = await server.challenge_auth("")
        return None if blob is MISSING else blob

    async def _refuse(self, server, rec, err_json):
        reply = await server.challenge_auth(json.dumps(err_json))
        rec.error_reply = reply if reply is not MISSING else "*"
        if reply is MISSING:  # the client sent "*": aiosmtpd already answered 501
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=GMAIL_535)

    async def auth_XOAUTH2(self, server, args):
        blob = await self._blob(server, args)
        if blob is None:
            return AuthResult(success=False, handled=True)
        fields = dict(p.split(b"=", 1) for p in blob.split(b"\x01") if b"=" in p)
        user = fields.get(b"user", b"").decode("utf-8", "replace")
        auth = fields.get(b"auth", b"").decode("utf-8", "replace")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        rec = self._check(server, "XOAUTH2", user, token, blob)
        if not rec.success:
            return await self._refuse(server, rec, GMAIL_XOAUTH2_401)
        return AuthResult(success=True, handled=False,
                          auth_data=types.SimpleNamespace(login=user.encode()))

    async def auth_OAUTHBEARER(self, server, args):
        blob = await self._blob(server, args)
        if blob is None:
            return AuthResult(success=False, handled=True)
        text = blob.decode("utf-8", "replace")
        gs2, _, rest = text.partition("\x01")
        user = next((f[2:] for f in gs2.split(",") if f.startswith("a=")), "")
        kv = dict(p.split("=", 1) for p in rest.split("\x01") if "=" in p)
        auth = kv.get("auth", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        rec = self._check(server, "OAUTHBEARER", user, token, blob)
        if not rec.success:
            return await self._refuse(server, rec, OAUTHBEARER_401)
        return AuthResult(success=True, handled=False,
                          auth_data=types.SimpleNamespace(login=user.encode()))


class OAuthSMTP(AioServer):
    """aiosmtpd (STARTTLS by default, AUTH required) whose XOAUTH2 and
    OAUTHBEARER take only tokens `oauth` holds valid, for `user`.
    reject_all: refuse every token (a server that never accepts)."""

    def __init__(self, t, oauth, user, *, mechanisms=("XOAUTH2", "OAUTHBEARER"),
                 reject_all=False, **kw):
        need_aiosmtpd()
        self.oauth = oauth
        self.user = user
        self.reject_all = reject_all
        self.token_auths = []
        kw.setdefault("tls", "starttls")
        kw.setdefault("auth_required", True)
        super().__init__(t, users={user: None}, mechanisms=mechanisms, **kw)

    def _start(self):
        self._handler = _OAuthHandler(self)
        super()._start()
