"""The integration-test harness: registry, per-test context, running smtpkit.

A scenario is a function taking a context `t` and registered with @test.
It starts real servers on 127.0.0.1 (port 0, port read back), runs the
smtpkit binary through t.smtpkit(), and asserts on what the server received.
It raises Fail (t.fail / t.check) or Skip (t.skip); any other exception is a
failure too.

Every smtpkit run here:
  - has a timeout (scaled up for sanitizer builds) and is killed with its
    process group when it passes it;
  - runs with a private HOME / XDG_CONFIG_HOME, so no user configuration
    leaks in;
  - fails the test when stderr carries a sanitizer report;
  - fails the test when a registered secret (password, token, and their
    base64 forms) shows up in argv, stdout or stderr;
  - reports the peak RSS of the smtpkit process (wait4 rusage).
"""

import base64
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time

REGISTRY = []
TIME = "/usr/bin/time"

SANITIZER_MARKS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "ERROR: MemorySanitizer",
)

# Environment variables passed through to smtpkit (sanitizer knobs only).
PASS_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "MSAN_OPTIONS",
            "TSAN_OPTIONS", "ASAN_SYMBOLIZER_PATH", "LLVM_SYMBOLIZER_PATH")


class Fail(Exception):
    pass


class Skip(Exception):
    pass


class TestCase:
    def __init__(self, name, fn, heavy):
        self.name = name
        self.fn = fn
        self.heavy = heavy


def test(name=None, heavy=False):
    """Register a scenario.  heavy: run alone, after the others."""
    def deco(fn):
        n = name or fn.__name__
        if n.startswith("test_"):
            n = n[len("test_"):]
        if any(tc.name == n for tc in REGISTRY):
            raise RuntimeError(f"duplicate test name {n}")
        REGISTRY.append(TestCase(n, fn, heavy))
        return fn
    return deco


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def tail(text, n=600):
    text = text.strip()
    if len(text) <= n:
        return text
    return "..." + text[-n:]


def one_line(text):
    return re.sub(r"\s+", " ", text).strip()


class Config:
    """What the whole run shares: the binary, the sanitizer flag, the certs."""

    def __init__(self, binary, tmp, keep=False, verbose=False):
        self.binary = binary
        self.tmp = tmp
        self.keep = keep
        self.verbose = verbose
        self.sanitized = binary_is_sanitized(binary)
        # Sanitizer builds run slower: give every deadline more room.
        self.slow = 3.0 if self.sanitized else 1.0
        self._certs = None
        self._certs_error = None
        self._certs_lock = threading.Lock()

    def certs(self):
        with self._certs_lock:
            if self._certs is None and self._certs_error is None:
                try:
                    import certs as certs_mod
                    self._certs = certs_mod.make_certs(os.path.join(self.tmp, "certs"))
                except Exception as e:  # noqa: BLE001 - reported as a skip
                    self._certs_error = str(e)
            if self._certs is None:
                raise Skip(f"cannot make test certificates: {self._certs_error}")
            return self._certs


def binary_is_sanitized(path):
    """True when the binary was linked with ASan (symbol names in the file)."""
    if os.environ.get("SMTPKIT_SANITIZED") in ("1", "yes", "true"):
        return True
    try:
        with open(path, "rb") as f:
            tail_chunk = b""
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    return False
                if b"__asan_init" in tail_chunk + chunk or b"__ubsan_handle" in tail_chunk + chunk:
                    return True
                tail_chunk = chunk[-32:]
    except OSError:
        return False


class Result:
    def __init__(self, argv, rc, out, err, elapsed, maxrss_kb):
        self.argv = argv
        self.rc = rc
        self.out_b = out
        self.err_b = err
        self.out = out.decode("utf-8", "replace")
        self.err = err.decode("utf-8", "replace")
        self.elapsed = elapsed
        self.maxrss_kb = maxrss_kb

    def describe(self):
        return (f"exit {self.rc}; stdout: {tail(self.out, 300)!r}; "
                f"stderr: {tail(self.err, 500)!r}")

    def stderr_lines(self):
        return [ln for ln in self.err.splitlines() if ln.strip()]


class Context:
    """Per-test state: a temp dir, cleanups, secrets, notes."""

    def __init__(self, cfg, name):
        self.cfg = cfg
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix=re.sub(r"\W", "_", name) + ".", dir=cfg.tmp)
        self._cleanups = []
        self.secrets = []
        self.notes = []
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(self.home, ".config"), exist_ok=True)
        self._seq = 0

    # -- bookkeeping -------------------------------------------------------
    def defer(self, fn, *args):
        self._cleanups.append((fn, args))

    def close(self):
        errors = []
        while self._cleanups:
            fn, args = self._cleanups.pop()
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001
                errors.append(f"cleanup {getattr(fn, '__name__', fn)}: {e}")
        if not self.cfg.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return errors

    def note(self, text):
        self.notes.append(text)

    def fail(self, msg):
        raise Fail(msg)

    def skip(self, msg):
        raise Skip(msg)

    def check(self, cond, msg):
        if not cond:
            raise Fail(msg() if callable(msg) else msg)

    def certs(self):
        return self.cfg.certs()

    def timeout(self, secs):
        return secs * self.cfg.slow

    def secret(self, value, user=None):
        """Register a secret: it must never appear in argv or output."""
        self.secrets.append(value)
        self.secrets.append(b64(value))
        if user is not None:
            self.secrets.append(b64(f"\0{user}\0{value}"))
            self.secrets.append(b64(f"{user}\0{user}\0{value}"))
            self.secrets.append(b64(f"user={user}\x01auth=Bearer {value}\x01\x01"))
        return value

    def file(self, name, data, mode=0o600):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    # -- running smtpkit ---------------------------------------------------
    def smtpkit(self, *args, env=None, stdin=None, timeout=30, leak_check=True,
                measure_rss=False):
        """Run smtpkit with args; return a Result.  Fails the test on a
        sanitizer report, a crash, a timeout or a leaked secret.

        measure_rss: run it under /usr/bin/time, whose %M is smtpkit's own
        peak RSS.  (wait4's ru_maxrss can include the copy of this big Python
        process that existed between fork and exec.)"""
        argv = [self.cfg.binary] + [str(a) for a in args]
        for s in self.secrets:
            for a in argv:
                if s in a:
                    raise RuntimeError("test bug: a secret was about to go into argv")
        run_env = {
            "PATH": "/usr/bin:/bin",
            "HOME": self.home,
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
        for k in PASS_ENV:
            if k in os.environ:
                run_env[k] = os.environ[k]
        if env:
            run_env.update(env)
        self._seq += 1
        base = os.path.join(self.tmp, f"run{self._seq}")
        if stdin is None:
            stdin_f = open(os.devnull, "rb")
        elif isinstance(stdin, (bytes, str)):
            path = base + ".in"
            with open(path, "wb") as f:
                f.write(stdin.encode() if isinstance(stdin, str) else stdin)
            stdin_f = open(path, "rb")
        else:
            stdin_f = open(stdin, "rb")
        out_path, err_path = base + ".out", base + ".err"
        rss_path = base + ".rss"
        run_argv = argv
        if measure_rss and os.access(TIME, os.X_OK):
            run_argv = [TIME, "-f", "%M", "-o", rss_path] + argv
        limit = self.timeout(timeout)
        with stdin_f, open(out_path, "wb") as out_f, open(err_path, "wb") as err_f:
            start = time.monotonic()
            proc = subprocess.Popen(run_argv, stdin=stdin_f, stdout=out_f, stderr=err_f,
                                    env=run_env, cwd=self.tmp, start_new_session=True)
            status = {}

            def reap():
                _, st, ru = os.wait4(proc.pid, 0)
                status["st"] = st
                status["ru"] = ru
                status["end"] = time.monotonic()

            waiter = threading.Thread(target=reap, daemon=True)
            waiter.start()
            waiter.join(limit)
            timed_out = waiter.is_alive()
            if timed_out:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                waiter.join(10)
            proc.returncode = 0  # reaped by wait4 above; keep Popen quiet
        with open(out_path, "rb") as f:
            out = f.read()
        with open(err_path, "rb") as f:
            err = f.read()
        st = status.get("st", 0)
        rc = os.waitstatus_to_exitcode(st) if "st" in status else -9
        elapsed = status.get("end", time.monotonic()) - start
        maxrss = status["ru"].ru_maxrss if "ru" in status else 0
        if run_argv is not argv:
            try:
                with open(rss_path) as f:
                    maxrss = int(f.read().split()[-1])
            except (OSError, ValueError, IndexError):
                maxrss = 0
        r = Result(argv, rc, out, err, elapsed, maxrss)
        if self.cfg.verbose:
            self.note(f"$ smtpkit {one_line(shlex.join(argv[1:]))[:300]} -> {rc} in {elapsed:.2f}s")
        text = r.out + "\n" + r.err
        for mark in SANITIZER_MARKS:
            if mark in text:
                raise Fail(f"sanitizer report ({mark}) running {' '.join(argv[1:])}: "
                           f"{tail(r.err, 1500)}")
        if timed_out:
            raise Fail(f"smtpkit did not exit within {limit:.0f}s: {' '.join(argv[1:])}; "
                       f"stderr: {tail(r.err)!r}")
        if rc < 0:
            raise Fail(f"smtpkit died from signal {-rc}: {' '.join(argv[1:])}; "
                       f"stderr: {tail(r.err)!r}")
        if leak_check:
            for s in self.secrets:
                if s and s in text:
                    raise Fail(f"a secret appeared in smtpkit's output "
                               f"({'stdout' if s in r.out else 'stderr'}): "
                               f"{' '.join(argv[1:])}")
        return r

    def expect_rc(self, r, *codes):
        if r.rc not in codes:
            want = " or ".join(str(c) for c in codes)
            raise Fail(f"expected exit {want}, got {r.describe()}")

    def expect_fail(self, r):
        if r.rc == 0:
            raise Fail(f"expected a non-zero exit, got {r.describe()}")

    def expect_err(self, r, pattern, what=None):
        """stderr must match the regex (case-insensitive)."""
        if not re.search(pattern, r.err, re.I):
            raise Fail(f"stderr should mention {what or pattern!r}: {r.describe()}")

    def expect_session_error_line(self, r):
        """A session-level failure prints one 'smtpkit: ...' line."""
        lines = [ln for ln in r.err.splitlines() if ln.startswith("smtpkit: ")]
        if not lines:
            raise Fail(f"no 'smtpkit: <message>' line on stderr: {r.describe()}")
        return lines
