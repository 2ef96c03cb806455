#!/usr/bin/env python3
"""The browser peer (the C++ peer in WebAssembly, package build/wasm/web)
downloads a file from a native seeder in headless Chromium (or Firefox ESR), by the file id
only (the manifest comes from the seeder): byte-identical (SHA-256 compared
with the original); onProgress once per chunk; the stats count the bytes and
a bounded number of RTCPeerConnections; after disconnect() no peer connection
or tracker WebSocket is left in the page.

  web_peer_test.py --p2pcdn BIN --package DIR [--node-modules DIR] [--chromium PATH] [--size BYTES]

Runs in a network namespace of its own that holds only loopback (the recipe
and checks of browser_test.py). Exits 77 (skip) when Chromium, node,
puppeteer-core or the package is missing, or no namespace can be made."""

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))
from browser_test import SKIP, Skipped, check_node_modules, check_only_loopback, enter_loopback_namespace, executable  # noqa: E402
from itest import MIB, Cli, Processes, TestFailure, check, free_port, tail, wait_port, write_file  # noqa: E402


def run(args, tmp):
    data = random.Random(args.seed).randbytes(args.size)
    src = write_file(tmp / "input.bin", data)
    cli = Cli(args.p2pcdn, tmp / "seeder")
    fid = cli.add(src)["fileId"]
    with Processes(tmp) as procs:
        port = free_port()
        tracker = procs.spawn([args.p2pcdn, "tracker", "--listen", f"127.0.0.1:{port}"], "tracker")
        wait_port(port, tracker, tmp / "tracker.log")
        url = f"ws://127.0.0.1:{port}"
        seeder = procs.spawn([cli.binary, "--home", cli.home, "-q", "--json", "seed", fid, "--tracker", url,
                              "--loopback", "--duration", "300"], "seeder", stdout=subprocess.PIPE)
        seed = json.loads(seeder.stdout.readline().decode() or "{}")
        check(seed.get("fileId") == fid, f"seeder did not start: {tail(tmp / 'seeder.log')}")
        t0 = time.monotonic()
        p = subprocess.run([args.node, str(HERE / "web_peer.mjs"), "--package", args.package, "--tracker", url,
                            "--file-id", fid, "--node-modules", args.node_modules, "--chromium", args.chromium,
                            "--timeout-ms", str(args.timeout_ms)] + (["--firefox", args.firefox] if args.firefox else []), capture_output=True, timeout=args.timeout_ms / 1000 * 3 + 60)
        wall = time.monotonic() - t0
        err = p.stderr.decode("utf-8", "replace")
        try:
            r = json.loads(p.stdout.decode().strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            raise TestFailure(f"web_peer.mjs printed no result:\n{err[-3000:]}")
        if not r.get("ok"):
            raise TestFailure(f"the page failed: {r.get('error')}\n{err[-2000:]}\nseeder.log:\n{tail(tmp / 'seeder.log')}")
    check(r["size"] == len(data), f"the page got {r['size']} bytes, the file has {len(data)}")
    check(r["sha256"] == hashlib.sha256(data).hexdigest(), "the page's bytes differ from the original")
    st = r["stats"]
    peers = st["peers"]
    check(st["bytesDownloaded"] >= len(data), f"stats count {st['bytesDownloaded']} bytes down, file {len(data)}")
    check(st["peerConnectionsCreated"] >= 1, f"no RTCPeerConnection counted: {st}")
    check(r["progressCalls"] >= 1, "onProgress was never called")
    chunks = -(-len(data) // (256 * 1024))
    check(r["progressCalls"] == chunks, f"onProgress called {r['progressCalls']} times for {chunks} chunks")
    check(st["peerConnectionsCreated"] <= 64,
          f"{st['peerConnectionsCreated']} RTCPeerConnections for one seeder (Chromium allows ~500 per page)")
    check(r["linksAfter"] == 0 and r["socketsAfter"] == 0,
          f"after disconnect the page still holds {r['linksAfter']} peer connection(s), {r['socketsAfter']} tracker socket(s)")
    mbps = len(data) / (r["ms"] / 1000) / 1e6
    print(f"  {len(data)} bytes in {r['ms']:.0f} ms in the page ({mbps:.1f} MB/s), {r['progressCalls']} progress "
          f"calls, {st['peerConnectionsCreated']} peer connection(s), {len(peers)} open at the end; "
          f"browser process {wall:.1f} s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--package", required=True, help="the built package (build/wasm/web)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--firefox", default=None, help="run Firefox ESR (this path) instead of Chromium")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--node-modules", default=str(HERE.parent.parent / "build" / "npm" / "node_modules"))
    ap.add_argument("--size", type=int, default=4 * MIB)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--timeout-ms", type=int, default=60000)
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    try:
        browser = ("Firefox", args.firefox) if args.firefox else ("Chromium", args.chromium)
        for what, path in (browser, ("Node", args.node)):
            if not executable(path):
                raise Skipped(f"{what} not found ({path})")
        if not (Path(args.package) / "dist" / "p2pcdn_core.wasm").is_file():
            raise Skipped(f"no browser package in {args.package} (./scripts/build.sh wasm builds it)")
        check_node_modules(args.node_modules)
        netns = enter_loopback_namespace()
    except Skipped as e:
        print(f"[web_peer] SKIPPED: {e}", flush=True)
        return SKIP
    print(f"[web_peer] {netns}; seed {args.seed}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="p2pcdn-web-peer-"))
    try:
        run(args, tmp)
        check_only_loopback(shutil.which("ip"))
    except TestFailure as e:
        print(f"FAIL [web_peer]: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        if os.environ.get("P2PCDN_KEEP_TMP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
    print("[web_peer] passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
