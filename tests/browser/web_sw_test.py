#!/usr/bin/env python3
"""The service-worker path in a real browser (label "browser"): a plain MP4
(moov up front; ffmpeg) from a native seeder held to twice its rate. The
page's P2PCDN serves web/src/sw.js; a <video src> at the worker's URL plays
while the file downloads, a seek to 80 % plays again, the video ends; then
ranges fetched through the worker are byte-exact (206 with Content-Range
for a middle, a suffix and an open range; 200 for the whole; 416 beyond the
end; HEAD; 304 for If-None-Match), planned by the native gateway's code in
wasm; a fetch aborted after its first bytes stops the page's sending. In
Firefox the worker's idle time-outs are cut to 3 s / 6 s while a single
stream lasts longer: only the page's keep-alive pings hold it.

  web_sw_test.py --p2pcdn BIN --package DIR [--firefox PATH] [--seconds N]

Runs in a network namespace of its own that holds only loopback; exits 77
when the browser, node, puppeteer-core, ffmpeg or the package is missing."""

import argparse
import hashlib
import random
import shutil
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))
from browser_test import SKIP, executable  # noqa: E402
from itest import Cli, Processes, check  # noqa: E402
from web_peer_test import page_result, run_in_namespace, start_seeder, start_tracker  # noqa: E402


def make_mp4(path, seconds):
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
           "-t", str(seconds), "-g", "60", "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "3000k",
           "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(path)]
    p = subprocess.run(cmd, capture_output=True, timeout=300)
    check(p.returncode == 0, f"ffmpeg failed: {p.stderr.decode()[-1500:]}")
    return path


def run(args, tmp):
    clip = make_mp4(tmp / "clip.mp4", args.seconds)
    data = clip.read_bytes()
    cli = Cli(args.p2pcdn, tmp / "seeder")
    fid = cli.add(clip)["fileId"]
    with Processes(tmp) as procs:
        url = start_tracker(args, procs, tmp)
        start_seeder(cli, procs, tmp, fid, url, extra=["--upload-limit", str(int(2 * len(data) / args.seconds))])
        cmd = [args.node, str(HERE / "web_sw.mjs"), "--package", args.package, "--tracker", url, "--file-id", fid,
               "--name", "clip.mp4", "--node-modules", args.node_modules, "--chromium", args.chromium,
               "--timeout-ms", str(args.timeout_ms)] + (["--firefox", args.firefox] if args.firefox else [])
        r = page_result(subprocess.run(cmd, capture_output=True, timeout=args.timeout_ms / 1000 * 2 + 60))
    n = len(data)
    sha = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    rg = r["ranges"]
    want = {
        "mid": (206, f"bytes 1000-99999/{n}", data[1000:100000]),
        "suffix": (206, f"bytes {n - 500}-{n - 1}/{n}", data[-500:]),
        "open": (206, f"bytes 300000-{n - 1}/{n}", data[300000:]),
        "whole": (200, None, data),
    }
    for k, (status, cr, body) in want.items():
        g = rg[k]
        check(g["status"] == status and g["contentRange"] == cr and g["size"] == len(body) and g["sha256"] == sha(body),
              f"{k}: {g} (want {status} {cr}, {len(body)} bytes)")
        check(g["etag"] == f'"{fid}"' and g["type"] == "video/mp4", f"{k}: ETag {g['etag']}, type {g['type']}")
        # A peer's file never runs as a page of the site (as the native gateway says too).
        check(g["csp"] == "sandbox", f"{k}: Content-Security-Policy {g['csp']!r} (want sandbox)")
    check(rg["bad"]["status"] == 416 and rg["bad"]["contentRange"] == f"bytes */{n}", f"beyond the end: {rg['bad']}")
    check(rg["head"]["status"] == 200 and rg["head"]["contentLength"] == str(n), f"HEAD: {rg['head']}")
    check(rg["notModified"] == 304, f"If-None-Match with the ETag: {rg['notModified']}")
    check(r["openBefore"] >= 1 and r["openAfter"] == 0, f"an aborted fetch: {r['openBefore']} open, then {r['openAfter']}")
    check(r["ended"] and r["seekMs"] <= 8000, f"playback: {r}")
    print(f"  first frame {r['firstFrameMs']:.0f} ms after src was set; played to {r['playedTo']:.1f} s; a seek to 80 % "
          f"played again in {r['seekMs']:.0f} ms; ended; ranges byte-exact (mid, suffix, open, whole, 416, HEAD, 304); "
          f"an aborted fetch stopped sending in {r['cancelMs']} ms; {r['served']} requests answered", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--package", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--firefox", default=None)
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--node-modules", default=str(HERE.parent.parent / "build" / "npm" / "node_modules"))
    ap.add_argument("--seconds", type=int, default=16)
    ap.add_argument("--timeout-ms", type=int, default=90000)
    ap.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1, 2**31))
    args = ap.parse_args()
    if not executable(shutil.which("ffmpeg") or "ffmpeg"):
        print("[web_sw] SKIPPED: ffmpeg not found", flush=True)
        return SKIP
    browser = ("Firefox", args.firefox) if args.firefox else ("Chromium", args.chromium)
    return run_in_namespace("web_sw", args, [browser], lambda tmp: run(args, tmp))


if __name__ == "__main__":
    sys.exit(main())
