#!/usr/bin/env python3
"""MediaStreamer's figures (bench/RESULTS.md, issue 15): a 2-minute clip
(WebM VP9/Opus and fragmented MP4 H.264/AAC, made by ffmpeg) published by one
native seeder held to 8 MB/s; in Chromium and then Firefox, a fresh page
plays it through P2PCDN.stream() + MediaStreamer to the end, and another
seeks to 80 % one second after its first frame. --runs rounds of each;
medians of: first frame (ms after streamToElement), the seek's wait until
the play head moves past its target, stalls (the play head still for
> 250 ms while playing) and the longest one, over the whole clip.

  bench/web_media.py --p2pcdn build/release/src/cli/p2pcdn --package build/wasm/web
                     [--seconds 120] [--runs 3] [--upload-limit 8000000] [--browsers chromium,firefox]

Each run is tests/browser/web_media_test.py (so its checks hold too). This
script enters a network namespace that holds only loopback before any run
(root is needed), and the test makes its own inside it."""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from browser_test import Skipped, enter_loopback_namespace  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--package", required=True)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--kbps", type=int, default=2500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--upload-limit", type=int, default=8_000_000)
    ap.add_argument("--browsers", default="chromium,firefox")
    args = ap.parse_args()
    # The browsers start only in a network namespace that holds just loopback
    # (BROWSERS.md): this process enters one first, so every run below is in
    # it (the test makes its own inside too).
    try:
        print(f"[web_media] {enter_loopback_namespace()}", flush=True)
    except Skipped as e:
        sys.exit(f"web_media bench: {e}")
    flags = {"chromium": ["--chromium", "/usr/bin/chromium"], "firefox": ["--firefox", "/usr/bin/firefox-esr"]}
    browsers = [(b, flags[b]) for b in args.browsers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="p2pcdn-bench-media-") as tmp:
        for name, flag in browsers:
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(ROOT / "tests/browser/web_media_test.py"), "--p2pcdn", args.p2pcdn,
                   "--package", args.package, *flag, "--seconds", str(args.seconds), "--kbps", str(args.kbps),
                   "--runs", str(args.runs), "--upload-limit", str(args.upload_limit), "--json", str(out),
                   "--timeout-ms", str((args.seconds + 60) * 1000)]
            p = subprocess.run(cmd, text=True, capture_output=True)
            print(p.stdout, end="", flush=True)
            if p.returncode != 0:
                print(p.stderr[-3000:], file=sys.stderr)
                sys.exit(f"web_media_test.py failed in {name}")
            runs = json.loads(out.read_text())
            for fmt in sorted({r["format"] for r in runs}):
                rs = [r for r in runs if r["format"] == fmt]
                med = lambda f: statistics.median(f(r) for r in rs)  # noqa: E731
                rows.append((name, fmt, rs[0]["size"], len(rs),
                             med(lambda r: r["through"]["firstFrameMs"]), med(lambda r: r["seek"]["seekMs"]),
                             med(lambda r: r["through"]["stalls"]), max(r["through"]["maxStallMs"] for r in rs),
                             med(lambda r: r["seek"]["firstFrameMs"]),
                             [round(r["through"]["firstFrameMs"]) for r in rs], [round(r["seek"]["seekMs"]) for r in rs]))
    print(f"\n{args.seconds} s clip, seeder at {args.upload_limit / 1e6:g} MB/s, medians of {args.runs}:")
    print("| browser | format | MB | first frame ms | seek to 80 % ms | stalls (> 250 ms) | longest stall ms | runs: first frame / seek |")
    print("|---|---|---|---|---|---|---|---|")
    for b, f, size, n, ff, sk, st, ms, _ff2, ffs, sks in rows:
        print(f"| {b} | {f} | {size / 1e6:.1f} | {ff:.0f} | {sk:.0f} | {st:g} | {ms:.0f} | {ffs} / {sks} |")


if __name__ == "__main__":
    main()
