#!/usr/bin/python3
"""Run smtpkit's integration tests against real servers on 127.0.0.1.

    /usr/bin/python3 tests/integration/run.py --binary build/smtpkit [-k substring]

Prints one line per test ("ok name", "FAIL name: reason", "skip name: reason")
and ends with "N passed, N failed, N skipped".  Exit status 0 iff none failed.
Light tests run in parallel; heavy ones (bulk, 50 MB) run alone afterwards.
"""

import argparse
import concurrent.futures
import glob
import importlib
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from harness import Fail, Skip  # noqa: E402

_print_lock = threading.Lock()


def say(line):
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def load_scenarios():
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        importlib.import_module(os.path.splitext(os.path.basename(path))[0])
    return list(harness.REGISTRY)


def run_one(cfg, tc):
    """Returns (status, detail) with status in ok / FAIL / skip."""
    t = harness.Context(cfg, tc.name)
    start = time.monotonic()
    status, detail = "ok", ""
    try:
        tc.fn(t)
    except Skip as e:
        status, detail = "skip", str(e)
    except Fail as e:
        status, detail = "FAIL", str(e)
    except Exception as e:  # noqa: BLE001 - a broken test is a failure
        status = "FAIL"
        detail = f"{type(e).__name__}: {e}"
        if cfg.verbose:
            detail += "\n" + traceback.format_exc()
    finally:
        errors = t.close()
    if errors and status == "ok":
        status, detail = "FAIL", "; ".join(errors)
    elapsed = time.monotonic() - start
    notes = list(t.notes)
    if cfg.verbose:
        notes.append(f"{elapsed:.1f}s")
    return status, detail, notes


def report(cfg, tc, status, detail, notes):
    if not cfg.verbose:
        detail = harness.one_line(detail)
    if status == "ok":
        extra = f" ({'; '.join(notes)})" if notes else ""
        say(f"ok {tc.name}{extra}")
    else:
        say(f"{status} {tc.name}: {detail}")
        if notes and status == "FAIL":
            say(f"    notes: {'; '.join(notes)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--binary", default="build/smtpkit", help="the smtpkit binary")
    ap.add_argument("-k", action="append", default=[], metavar="SUBSTRING",
                    help="run only tests whose name contains SUBSTRING (repeatable)")
    ap.add_argument("-j", "--jobs", type=int, default=0,
                    help="parallel light tests (default: 2 per CPU, at most 8)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="timings, notes and tracebacks")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    args = ap.parse_args()

    scenarios = load_scenarios()
    if args.k:
        scenarios = [tc for tc in scenarios if any(k in tc.name for k in args.k)]
    if args.list:
        for tc in scenarios:
            print(tc.name + (" (heavy)" if tc.heavy else ""))
        return 0

    binary = os.path.abspath(args.binary)
    tmp = tempfile.mkdtemp(prefix="smtpkit-it.")
    cfg = harness.Config(binary, tmp, keep=args.keep, verbose=args.verbose)
    if args.verbose or args.keep:
        say(f"# binary {binary}{' (sanitized)' if cfg.sanitized else ''}, temp {tmp}")

    counts = {"ok": 0, "FAIL": 0, "skip": 0}
    try:
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            for tc in scenarios:
                report(cfg, tc, "FAIL", f"smtpkit binary not found or not executable: {binary}", [])
                counts["FAIL"] += 1
        else:
            light = [tc for tc in scenarios if not tc.heavy]
            heavy = [tc for tc in scenarios if tc.heavy]
            jobs = args.jobs or min(8, 2 * (os.cpu_count() or 1))
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = {pool.submit(run_one, cfg, tc): tc for tc in light}
                for fut in concurrent.futures.as_completed(futures):
                    tc = futures[fut]
                    status, detail, notes = fut.result()
                    counts[status] += 1
                    report(cfg, tc, status, detail, notes)
            for tc in heavy:
                status, detail, notes = run_one(cfg, tc)
                counts[status] += 1
                report(cfg, tc, status, detail, notes)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    say(f"{counts['ok']} passed, {counts['FAIL']} failed, {counts['skip']} skipped")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
