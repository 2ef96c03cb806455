#!/usr/bin/env python3
"""Web seed + browser peers (bench/RESULTS.md, issue 15): a file on an HTTP
origin with Range support (tests/integration/range_origin.py) and no native
peer; 5 Chromium pages join over 10 s (bench/web_share.mjs), each with the
origin as web seed. Per round: the P2P share (bytes from peers / all bytes
the pages fetched), the origin's bytes in copies of the file, each page's
time. Medians over --runs rounds.

  bench/web_share.py --p2pcdn build/release/src/cli/p2pcdn --package build/wasm/web
                     [--size-mib 32] [--pages 5] [--spread-ms 10000] [--runs 3]

In a network namespace that holds only loopback (root needed)."""

import argparse
import hashlib
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(ROOT / "tests/browser"))
sys.path.insert(0, str(ROOT / "tests/integration"))
from browser_test import enter_loopback_namespace  # noqa: E402
from itest import Cli, Processes  # noqa: E402
from range_origin import RangeOrigin  # noqa: E402
from web_peer_test import start_tracker  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--package", required=True)
    ap.add_argument("--size-mib", type=int, default=32)
    ap.add_argument("--pages", type=int, default=5)
    ap.add_argument("--spread-ms", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--node-modules", default=str(ROOT / "build/npm/node_modules"))
    args = ap.parse_args()
    print(enter_loopback_namespace(), flush=True)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="p2pcdn-bench-share-") as t:
        tmp = Path(t)
        data = random.Random(7).randbytes(args.size_mib << 20)
        src = tmp / "file.bin"
        src.write_bytes(data)
        cli = Cli(args.p2pcdn, tmp / "publisher")
        fid = cli.add(src)["fileId"]
        (tmp / "manifest.json").write_text(cli.run("manifest", fid, "--json", expect=0).out)
        for k in range(args.runs):
            origin = RangeOrigin({"/f.bin": src}, cors=True)
            try:
                with Processes(tmp) as procs:
                    url = start_tracker(argparse.Namespace(p2pcdn=args.p2pcdn), procs, tmp)
                    p = subprocess.run(["node", str(ROOT / "bench/web_share.mjs"), "--package", args.package,
                                        "--tracker", url, "--file-id", fid, "--manifest", str(tmp / "manifest.json"),
                                        "--origin-url", origin.url("/f.bin"), "--node-modules", args.node_modules,
                                        "--pages", str(args.pages), "--spread-ms", str(args.spread_ms)],
                                       capture_output=True, text=True, timeout=600)
            finally:
                origin.close()
            try:
                r = json.loads(p.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                sys.exit(f"web_share.mjs printed nothing: {p.stderr[-3000:]}")
            if not r.get("ok"):
                sys.exit(f"round {k}: {r.get('error')}\n{p.stderr[-2000:]}")
            want = hashlib.sha256(data).hexdigest()
            bad = [i for i, pg in enumerate(r["pages"]) if pg["sha256"] != want]
            if bad:
                sys.exit(f"round {k}: pages {bad} got other bytes")
            peers = sum(pg["bytesDownloaded"] for pg in r["pages"])
            fromOrigin = sum(pg["bytesFromOrigins"] for pg in r["pages"])
            share = peers / (peers + fromOrigin)
            copies = origin.sent / len(data)
            rounds.append((share, copies, r["pages"]))
            print(f"round {k}: P2P share {share:.3f}, origin sent {copies:.2f} copies; pages (start s, took s, "
                  f"origin MiB, peers MiB): " + ", ".join(
                      f"({pg['startMs'] / 1000:.1f}, {pg['ms'] / 1000:.1f}, {pg['bytesFromOrigins'] / 2**20:.1f}, "
                      f"{pg['bytesDownloaded'] / 2**20:.1f})" for pg in r["pages"]), flush=True)
    print(f"\n{args.pages} pages over {args.spread_ms / 1000:g} s, {args.size_mib} MiB, medians of {args.runs}: "
          f"P2P share {statistics.median(x[0] for x in rounds):.3f} (goal >= 0.80), origin "
          f"{statistics.median(x[1] for x in rounds):.2f} copies (goal <= 1.3)")


if __name__ == "__main__":
    main()
