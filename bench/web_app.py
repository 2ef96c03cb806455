#!/usr/bin/env python3
"""The web app's main flow, timed (tests/browser/web_app_test.py run N times
each way round: publish in one browser, open the link in the other): how
long publishing a 16 s MP4 takes (hash + store), and the first frame after
the link is opened (page load, wasm, joining the tracker, the service
worker, the manifest from the publisher, the first chunks). Medians.
Runs in a network namespace of its own that holds only loopback.

  bench/web_app.py --p2pcdn BIN --package DIR [--runs 3]"""

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE.parent / "tests" / "browser"))
from browser_test import Skipped, enter_loopback_namespace  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--package", required=True)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    # The browsers start only in a network namespace that holds just loopback
    # (BROWSERS.md): this process enters one first, so every run below is in
    # it (the test makes its own inside too).
    try:
        print(enter_loopback_namespace(), flush=True)
    except Skipped as e:
        sys.exit(f"web_app bench: {e}")
    test = HERE.parent / "tests" / "browser" / "web_app_test.py"
    pat = re.compile(r"published in (\w+) in (\d+) ms; in (\w+) the first frame (\d+) ms after opening the link")
    for pub, view in (("chromium", "firefox"), ("firefox", "chromium")):
        publish, frame = [], []
        for _ in range(args.runs):
            p = subprocess.run([sys.executable, str(test), "--p2pcdn", args.p2pcdn, "--package", args.package,
                                "--publisher", pub, "--viewer", view, "--shots", "/tmp/p2pcdn-bench-shots"],
                               capture_output=True, text=True, timeout=900)
            m = pat.search(p.stdout)
            if p.returncode != 0 or not m:
                print(f"{pub} -> {view}: run failed:\n{p.stdout[-2000:]}", flush=True)
                continue
            publish.append(int(m.group(2)))
            frame.append(int(m.group(4)))
        if frame:
            print(f"publish in {pub}: median {statistics.median(publish):.0f} ms {publish}; first frame in {view} after "
                  f"opening the link: median {statistics.median(frame):.0f} ms {frame}", flush=True)


if __name__ == "__main__":
    main()
