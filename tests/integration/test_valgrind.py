"""The main paths under valgrind's memcheck: no invalid read or write, no
use of uninitialised memory, and no leak (definitely or indirectly lost).
LeakSanitizer covers the same ground in the sanitizer build; valgrind also
sees the libraries that were not built with sanitizers (OpenSSL, c-ares,
GMime, GLib, libmagic).  A sanitizer build cannot run under valgrind, so
these are skipped there.
"""

import os
import shutil
import subprocess

from common import FROM, parse_msg, send_args
from harness import Fail, tail, test
from servers import AioServer

TO = "valgrind@example.com"
USER = "vg-user"

MEMCHECK = [
    "valgrind", "--quiet", "--error-exitcode=99",
    "--leak-check=full", "--show-leak-kinds=definite,indirect",
    "--errors-for-leak-kinds=definite,indirect",
]


def _memcheck(t, args, env=None, stdin=None, argv0=None):
    """Run smtpkit under memcheck; fail on any report or a non-zero exit."""
    if t.cfg.sanitized:
        t.skip("valgrind cannot run a sanitizer build")
    if shutil.which("valgrind") is None:
        t.fail("valgrind is not installed (scripts/install-deps installs it)")
    run_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": t.home,
        "XDG_CONFIG_HOME": os.path.join(t.home, ".config"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": t.tmp,
        # GLib's slice allocator hides freed blocks from memcheck.
        "G_SLICE": "always-malloc",
    }
    run_env.update(env or {})
    binary = t.cfg.binary
    if argv0 is not None:
        binary = os.path.join(t.tmp, argv0)
        if not os.path.exists(binary):
            os.symlink(t.cfg.binary, binary)
    argv = MEMCHECK + [binary] + [str(a) for a in args]
    for s in t.secrets:
        if any(s in a for a in argv):
            raise RuntimeError("test bug: a secret was about to go into argv")
    try:
        r = subprocess.run(argv, input=stdin, env=run_env, capture_output=True,
                           timeout=180)
    except subprocess.TimeoutExpired:
        raise Fail(f"timed out under valgrind: {' '.join(argv)}")
    err = r.stderr.decode(errors="replace")
    out = r.stdout.decode(errors="replace")
    for s in t.secrets:
        t.check(s not in err and s not in out, "a secret appeared in the output")
    if r.returncode == 99 or "==" in err and ("Invalid " in err or "lost" in err
                                              or "uninitialised" in err):
        raise Fail(f"memcheck reported errors for {' '.join(args)}: {tail(err, 3000)}")
    t.check(r.returncode == 0,
            f"exit {r.returncode} under valgrind for {' '.join(args)}: {tail(err)}")
    return err


@test()
def valgrind_send_composed_mime(t):
    """send with text, HTML, an inline image and two attachments: the GMime
    module is loaded, used and the message delivered, with nothing lost."""
    srv = AioServer(t)
    png = t.file("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    blob = t.file("blob.bin", os.urandom(200_000))
    _memcheck(t, send_args(srv.port, tls="none") + [
        "--from", "Zoë <" + FROM + ">", "--to", '"Doe, J" <' + TO + ">",
        "--subject", "Grüße", "--text", "plain ü\n",
        "--html", '<p><img src="cid:logo.png"> hi</p>\n', "--inline", png,
        "--attach", blob, "--attach", t.file("报告.txt", "report\n"),
        "--header", "X-Tag: valgrind"])
    srv.sync()
    t.check(len(srv.messages) == 1, f"{len(srv.messages)} messages arrived, expected 1")
    msg = parse_msg(srv.messages[0].content)
    names = [p.get_filename() for p in msg.iter_attachments()]
    t.check(names == ["blob.bin", "报告.txt"], f"attachments arrived as {names}")
    with open(blob, "rb") as f:
        t.check(list(msg.iter_attachments())[0].get_content() == f.read(),
                "the binary attachment changed on the way")


@test()
def valgrind_send_raw_starttls_auth(t):
    """send --raw over STARTTLS with AUTH PLAIN: OpenSSL, the engine and the
    password path, with nothing lost."""
    pw = t.secret("vg-Secret-7261", user=USER)
    srv = AioServer(t, tls="starttls", users={USER: pw}, auth_required=True)
    raw = t.file("m.eml", f"From: {FROM}\r\nTo: {TO}\r\nSubject: raw\r\n\r\nbody\r\n")
    _memcheck(t, send_args(srv.port) + [
        "--ca-file", t.certs().ca, "--user", USER, "--password-env", "VG_PW",
        "--from", FROM, "--to", TO, "--raw", raw, raw], env={"VG_PW": pw})
    srv.sync()
    t.check(len(srv.messages) == 2, f"{len(srv.messages)} messages arrived, expected 2")
    t.check(all(m.tls is not None and m.login == USER for m in srv.messages),
            "a message went without TLS or without AUTH")


@test()
def valgrind_sendmail_t(t):
    """sendmail -t -i reading a message from standard input."""
    from test_sendmail import _config
    srv = AioServer(t)
    _config(t, ("main", srv.port, FROM))
    _memcheck(t, ["-t", "-i"], argv0="sendmail",
              stdin=(f"To: Ann <{TO}>\nCc: b@example.net\nBcc: c@example.org\n"
                     "Subject: via sendmail\n\nline\n.\n").encode())
    srv.sync()
    t.check(len(srv.messages) == 1, f"{len(srv.messages)} messages arrived, expected 1")
    m = srv.messages[0]
    t.check(sorted(m.rcpt_tos) == sorted([TO, "b@example.net", "c@example.org"]),
            f"recipients {m.rcpt_tos}")
