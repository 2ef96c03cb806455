#!/usr/bin/env python3
"""Runs one command while our tracker runs (Python 3 standard library only).

  with_tracker.py --p2pcdn BIN [--timeout S] -- COMMAND [ARGS...]

Starts `BIN tracker --listen 127.0.0.1:0` (any free port), reads the URL it
prints ("p2pcdn tracker listening on ws://127.0.0.1:PORT"), runs COMMAND with
every "{tracker}" in its arguments replaced by that URL and with
P2PCDN_TEST_TRACKER=URL (and P2PCDN_TEST_CLI=BIN) in its environment, then
stops the tracker and exits
with COMMAND's status. The tracker's log is printed if COMMAND fails. Used by
the library API test (api_test) and the quickstart example's test.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import describe_rc, tail  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--timeout", type=float, default=280, help="seconds COMMAND may run")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no COMMAND")

    with tempfile.TemporaryDirectory(prefix="p2pcdn-tracker-") as tmp:
        log_path = Path(tmp) / "tracker.log"
        with open(log_path, "wb") as log:
            tracker = subprocess.Popen([args.p2pcdn, "tracker", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                       stderr=log, stdin=subprocess.DEVNULL)
        try:
            line = tracker.stdout.readline().decode("utf-8", "replace").strip()
            prefix = "p2pcdn tracker listening on "
            if not line.startswith(prefix):
                tracker.wait(timeout=5)
                print(f"with_tracker: the tracker did not start ({describe_rc(tracker.returncode)}): {line!r}\n"
                      f"{tail(log_path)}", file=sys.stderr)
                return 1
            url = line[len(prefix):]
            print(f"with_tracker: tracker at {url}", flush=True)
            env = dict(os.environ, P2PCDN_TEST_TRACKER=url, P2PCDN_TEST_CLI=os.path.abspath(args.p2pcdn))
            t0 = time.monotonic()
            try:
                rc = subprocess.run([a.replace("{tracker}", url) for a in cmd], env=env, timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                print(f"with_tracker: {cmd[0]} timed out after {args.timeout:.0f}s", file=sys.stderr)
                rc = 1
            print(f"with_tracker: {Path(cmd[0]).name}: {describe_rc(rc)} after {time.monotonic() - t0:.1f}s",
                  flush=True)
            if rc != 0:
                print(f"tracker log:\n{tail(log_path)}", file=sys.stderr)
            return 0 if rc == 0 else 1
        finally:
            if tracker.poll() is None:
                tracker.send_signal(signal.SIGTERM)
                try:
                    tracker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    tracker.kill()
                    tracker.wait()


if __name__ == "__main__":
    sys.exit(main())
