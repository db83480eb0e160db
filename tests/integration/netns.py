"""Private network namespaces for tests that resolve names.

This machine's resolver (and CI's) is a real DNS server off this host, and
no test may send a packet beyond 127.0.0.0/8 or ::1.  So a test that needs
smtpkit to resolve a name gets its own namespaces:

  - a network namespace with only `lo` (up): nothing in it can reach
    anything but itself, whatever it tries;
  - a mount namespace where /etc/resolv.conf says `nameserver 127.0.0.1`,
    /etc/hosts has only localhost lines (so the names under test go to
    DNS) and /etc/nsswitch.conf says `hosts: files dns`;
  - a UTS namespace with the host name `smtpkit-netns` (no dot, so no
    search domain is derived from whatever CI calls its machine).

    ns = NetNS(t)                                  # Skip if not permitted
    dns = ns.dns({"mail.test": {"A": ["127.0.0.1"]}})   # on 127.0.0.1:53 inside
    srv = ns.aiosmtpd()                            # servers.AioServer, inside
    r = ns.smtpkit("send", "--host", "mail.test", "--port", srv.port, ...)
    srv.sync()                                     # runs inside too
    dns.asked("mail.test")                         # -> ["A", "AAAA"]

How: `unshare --net --mount --uts --propagation private` runs a short shell
script that brings lo up, bind-mounts the three files and reports back;
this process then opens the new namespaces (/proc/PID/ns/*), keeps them
open for the rest of the test and lets the script exit.  Servers run in
this process, in threads that setns(2) into the network namespace before
they create their sockets (a thread's namespaces are its own, and threads
it starts inherit them), so the test keeps its usual access to what the
servers recorded.  smtpkit runs through t.smtpkit() (timeouts, sanitizer
and secret checks) via a wrapper that execs `nsenter` into the three
namespaces first.

If the namespaces cannot be made (no unshare/nsenter/ip, EPERM, ...) the
test is skipped with the reason.  Before anything runs inside, the setup
is checked: the namespace is not ours, its only link is lo, and
/etc/resolv.conf inside reads exactly as written.
"""

import copy
import ctypes
import ctypes.util
import errno
import hashlib
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

from harness import Fail, Skip

UNSHARE = "/usr/bin/unshare"
NSENTER = "/usr/bin/nsenter"
IP = "/usr/sbin/ip"
MOUNT = "/usr/bin/mount"
HOSTNAME = "smtpkit-netns"

CLONE_NEWNET = 0x40000000

RESOLV_CONF = "nameserver 127.0.0.1\n"
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
NSSWITCH = "hosts: files dns\n"

# Run by unshare inside the new namespaces.  $1: the directory with the
# replacement files.  Reports what it built, then waits for stdin to close.
SETUP = r"""
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
ip link set lo up
mount --bind "$1/resolv.conf" /etc/resolv.conf
mount --bind "$1/hosts" /etc/hosts
if [ -e /etc/nsswitch.conf ]; then
	mount --bind "$1/nsswitch.conf" /etc/nsswitch.conf
fi
hostname "$2"
echo "links: $(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')"
echo "resolv: $(md5sum </etc/resolv.conf | cut -c1-32)"
echo ready
read -r _ || true
"""

# Errors that mean "this machine does not let us make namespaces": a skip.
NOT_PERMITTED = re.compile(r"Operation not permitted|Permission denied|not supported|"
                           r"Function not implemented|No such file or directory|"
                           r"cannot open /proc/self/uid_map|Invalid argument", re.I)

_libc = None


def _setns(fd, nstype):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if _libc.setns(fd, nstype) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def _md5(text):
    return hashlib.md5(text.encode()).hexdigest()


class NetNS:
    """A private network + mount + UTS namespace for one test (see the
    module docstring).  Closed by the test's cleanups."""

    def __init__(self, t, *, resolv_conf=RESOLV_CONF, hosts=HOSTS, nsswitch=NSSWITCH,
                 hostname=HOSTNAME):
        self.t = t
        self.fds = {}
        self.closed = False
        self.call_timeout = t.timeout(60)
        for tool in (UNSHARE, NSENTER, IP, MOUNT):
            if not os.access(tool, os.X_OK):
                raise Skip(f"network namespaces: {tool} is not installed "
                           f"(util-linux / iproute2, see scripts/install-deps)")
        self.dir = os.path.join(t.tmp, "netns")
        os.makedirs(self.dir, exist_ok=True)
        files = {"resolv.conf": resolv_conf, "hosts": hosts, "nsswitch.conf": nsswitch}
        for name, text in files.items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(self.dir, name), 0o644)
        self.resolv_conf = resolv_conf
        t.defer(self.close)
        self._make(hostname)
        self._check_sealed()
        self.wrapper = self._write_wrapper(t.cfg.binary)

    # -- making the namespaces --------------------------------------------
    def _make(self, hostname):
        argv = [UNSHARE, "--net", "--mount", "--uts", "--propagation", "private", "--",
                "/bin/sh", "-c", SETUP, "netns-setup", self.dir, hostname]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as e:
            raise Skip(f"network namespaces: cannot run unshare: {e}")
        out = b""
        try:
            deadline = time.monotonic() + self.t.timeout(10)
            fd = proc.stdout.fileno()
            while b"ready\n" not in out:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail(f"namespace setup did not finish within "
                               f"{self.t.timeout(10):.0f}s: {out!r}")
                r, _, _ = select.select([fd], [], [], left)
                if not r:
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                out += chunk
            if b"ready\n" not in out:
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
                err = proc.stderr.read().decode("utf-8", "replace").strip()
                why = err or f"exit status {proc.returncode}"
                if NOT_PERMITTED.search(why):
                    raise Skip(f"network namespaces are not permitted here: {why}")
                raise Fail(f"namespace setup failed: {why}; output {out!r}")
            for kind in ("net", "mnt", "uts"):
                self.fds[kind] = os.open(f"/proc/{proc.pid}/ns/{kind}", os.O_RDONLY)
        finally:
            try:
                proc.stdin.close()    # the script's `read` returns: it exits
            except OSError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            proc.stdout.close()
            proc.stderr.close()

        # Check what we got before anything runs inside.
        for kind in ("net", "mnt", "uts"):
            mine = os.stat(f"/proc/self/ns/{kind}").st_ino
            theirs = os.fstat(self.fds[kind]).st_ino
            if mine == theirs:
                raise Fail(f"the {kind} namespace is not a new one")
        text = out.decode("utf-8", "replace")
        m = re.search(r"^links: (.*)$", text, re.M)
        links = m.group(1).split() if m else None
        if links != ["lo"]:
            raise Fail(f"the new network namespace has links {links}, expected only lo")
        m = re.search(r"^resolv: (\w+)$", text, re.M)
        if not m or m.group(1) != _md5(self.resolv_conf):
            raise Fail("/etc/resolv.conf inside the namespace is not the one written")
        self.net_inode = os.fstat(self.fds["net"]).st_ino

    def _check_sealed(self):
        """Inside, there must be no route beyond loopback.  (A UDP connect()
        only looks the route up: it sends nothing, even where one exists.)"""
        def probe():
            out = {}
            for fam, addr in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
                with socket.socket(fam, socket.SOCK_DGRAM) as s:
                    try:
                        s.connect((addr, 53))
                        out[addr] = None
                    except OSError as e:
                        out[addr] = e.errno
            return out
        got = self.call(probe)
        for addr, err in got.items():
            if err is None:
                raise Fail(f"the test namespace has a route to {addr}: refusing to run "
                           f"anything in it")

    def _ns_path(self, kind):
        return f"/proc/{os.getpid()}/fd/{self.fds[kind]}"

    def _nsenter(self):
        return [NSENTER, f"--net={self._ns_path('net')}", f"--mount={self._ns_path('mnt')}",
                f"--uts={self._ns_path('uts')}"]

    def _write_wrapper(self, binary):
        d = os.path.join(self.dir, "bin")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, os.path.basename(binary))
        args = " ".join(f"'{a}'" for a in self._nsenter())
        with open(path, "w") as f:
            f.write("#!/bin/sh\n"
                    "# Run smtpkit inside the test's private namespaces (netns.py).\n"
                    f"exec {args} --wd=\"$(pwd)\" -- '{binary}' \"$@\"\n")
        os.chmod(path, 0o755)
        return path

    def close(self):
        self.closed = True
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = {}

    def _check_open(self):
        if self.closed or not self.fds:
            raise RuntimeError("test bug: the namespace is closed")

    # -- running Python inside ---------------------------------------------
    def call(self, fn, *args, **kwargs):
        """fn(*args, **kwargs) in a new thread that has joined the network
        namespace; its result (or exception) comes back here.  Sockets it
        makes, and threads it starts, stay inside."""
        self._check_open()
        box = {}
        net_fd = self.fds["net"]
        want = self.net_inode

        def run():
            try:
                _setns(net_fd, CLONE_NEWNET)
                if os.stat("/proc/thread-self/ns/net").st_ino != want:
                    raise RuntimeError("setns did not move the thread into the namespace")
                box["value"] = fn(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller
                box["error"] = e

        th = threading.Thread(target=run, name="netns-call", daemon=True)
        th.start()
        th.join(self.call_timeout)
        if th.is_alive():
            raise Fail(f"{getattr(fn, '__name__', fn)} inside the namespace did not "
                       f"return within {self.call_timeout:.0f}s")
        e = box.get("error")
        if isinstance(e, OSError) and e.errno in (errno.EPERM, errno.EACCES) and \
                "setns" in str(e):
            raise Skip(f"cannot join the network namespace: {e}")
        if e is not None:
            raise e
        return box.get("value")

    # -- servers inside -----------------------------------------------------
    def dns(self, zone, host="127.0.0.1", port=53, **kw):
        """A fakedns.FakeDNS serving zone on host:port inside, answering
        (probed) when this returns; stopped by the test's cleanups."""
        from fakedns import FakeDNS
        srv = FakeDNS(zone, host, port, **kw)
        self.call(srv.start)
        self.t.defer(srv.stop)
        try:
            self.call(srv.probe, self.t.timeout(5))
        except OSError as e:
            raise Fail(f"the fake DNS server on {host}:{srv.port} does not answer: {e}")
        return srv

    def aiosmtpd(self, **kw):
        """A servers.AioServer listening on 127.0.0.1 inside.  Its sync()
        (which connects to it) runs inside too."""
        from servers import AioServer
        srv = self.call(AioServer, self.t, **kw)
        plain_sync = srv.sync

        def sync(timeout=10):
            return self.call(plain_sync, timeout)
        srv.sync = sync
        return srv

    def scripted(self, script):
        """A servers.ScriptedServer on 127.0.0.1 inside."""
        from servers import ScriptedServer
        return self.call(ScriptedServer, self.t, script)

    def closed_port(self, host="127.0.0.1"):
        """A port on host inside where nothing listens (bound, not
        listening, until the test ends): connecting to it is refused."""
        def bind():
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.bind((host, 0))
            return s
        s = self.call(bind)
        self.t.defer(s.close)
        return s.getsockname()[1]

    def has_ipv6_loopback(self):
        """True when ::1 can be bound inside (IPv6 is enabled)."""
        def probe():
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                    s.bind(("::1", 0))
                return True
            except OSError:
                return False
        return self.call(probe)

    # -- commands inside ----------------------------------------------------
    def smtpkit(self, *args, **kw):
        """t.smtpkit(*args, **kw), with smtpkit running inside the
        namespaces: same timeouts, sanitizer, crash and secret checks."""
        self._check_open()
        t = self.t
        saved = t.cfg
        cfg = copy.copy(saved)
        cfg.binary = self.wrapper
        t.cfg = cfg
        try:
            return t.smtpkit(*args, **kw)
        finally:
            t.cfg = saved

    def run(self, argv, timeout=30, env=None, stdin=None):
        """Any other command inside: (exit status, stdout, stderr) as bytes.
        Killed with its process group after timeout (scaled for sanitizer
        builds); a timeout fails the test."""
        self._check_open()
        limit = self.t.timeout(timeout)
        run_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
                   "HOME": self.t.home}
        if env:
            run_env.update(env)
        proc = subprocess.Popen(self._nsenter() + [f"--wd={self.t.tmp}", "--"] + list(argv),
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=run_env, cwd=self.t.tmp, start_new_session=True)
        try:
            out, err = proc.communicate(stdin, timeout=limit)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            raise Fail(f"{' '.join(argv)} inside the namespace did not exit within {limit:.0f}s")
        return proc.returncode, out, err
