#!/usr/bin/env python3
"""The browser peer, side by side in one run (bench/RESULTS.md): one native
seeder, and in turn (the order rotates every round) a native `p2pcdn get`
(the same engine over libwebrtc: the reference), a Chromium page into
IndexedDB, into memory and stream()ed into nothing, and a Firefox page into
IndexedDB, each downloading the whole file; and the raw transport: the same
bytes from bench_raw_datachannel (one native PeerLink, no protocol) into a
bare RTCDataChannel in each browser; and the peer system: WebTorrent's
browser bundle in each browser downloading the same bytes from a WebTorrent
seeder in Node (bench/webtorrent, installed by scripts/npm-deps.sh into
build/npm-webtorrent; --no-webtorrent leaves it out). Medians over --runs rounds of
MB/s (the page's own clock: download() call to its bytes), and the pages'
memory (the wasm heap, and in Chromium what V8 holds above idle at the peak:
its heap plus every ArrayBuffer, from CDP). Then, with --memory-mib N (default
1024), one Chromium stream() of an N MiB file into IndexedDB, for the memory
against file size. Then, per
browser: the time a reloaded page takes to index 4096 stored chunks (a file
of 64 KiB chunks), and IndexedDBStorage's own write and read MB/s
(1024 chunks of 256 KiB).

  bench/web_download.py --p2pcdn build/release/src/cli/p2pcdn --package build/wasm/web
                        [--size-mib 256] [--runs 3] [--no-firefox]

Runs everything in a network namespace that holds only loopback (as the
browser tests), so root is needed."""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from browser_test import check_only_loopback, enter_loopback_namespace  # noqa: E402
from itest import MIB, Cli, Processes, free_port, tail, wait_port, write_file  # noqa: E402


def page(args, url, fid, scenario, extra, timeout_s=600, must=True):
    cmd = [args.node, str(ROOT / "tests" / "browser" / "web_peer.mjs"), "--package", args.package, "--tracker", url,
           "--file-id", fid, "--node-modules", args.node_modules, "--chromium", args.chromium,
           "--timeout-ms", str(timeout_s * 1000 // 3), "--scenario", scenario] + extra
    p = subprocess.run(cmd, capture_output=True, timeout=timeout_s + 60)
    try:
        r = json.loads(p.stdout.decode().strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        r = {"ok": False, "error": p.stderr.decode("utf-8", "replace")[-2000:]}
    if not r.get("ok") and must:
        raise SystemExit(f"{scenario} {extra} failed: {r.get('error')}")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--package", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--firefox", default="/usr/bin/firefox-esr")
    ap.add_argument("--no-firefox", action="store_true")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--node-modules", default=str(ROOT / "build" / "npm" / "node_modules"))
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--raw-dc", default=None, help="bench_raw_datachannel (default: beside --p2pcdn's build)")
    ap.add_argument("--no-webtorrent", action="store_true")
    ap.add_argument("--memory-mib", type=int, default=1024, help="0: no large stream() for the memory")
    ap.add_argument("--webtorrent-modules", default=str(ROOT / "build" / "npm-webtorrent" / "node_modules"))
    args = ap.parse_args()
    if not args.no_webtorrent:  # before the namespace: npm's registry is outside it
        subprocess.run([str(ROOT / "scripts" / "npm-deps.sh"), str(Path(args.webtorrent_modules).parent),
                        str(ROOT / "bench" / "webtorrent")], check=True)
    print(f"[web_download] {enter_loopback_namespace()}", flush=True)
    size = args.size_mib * MIB
    tmp = Path(tempfile.mkdtemp(prefix="p2pcdn-bench-web-"))
    try:
        src = write_file(tmp / "input.bin", os.urandom(size))
        src_sha = hashlib.sha256(src.read_bytes()).hexdigest()
        seeder = Cli(args.p2pcdn, tmp / "seeder")
        fid = seeder.add(src)["fileId"]
        small = write_file(tmp / "small.bin", os.urandom(4096 * 65536))
        fid_small = seeder.add(small, "--chunk-size", "65536")["fileId"]  # 4096 chunks, for the index time
        raw_dc = args.raw_dc or str(Path(args.p2pcdn).resolve().parents[2] / "bench" / "transport" / "bench_raw_datachannel")
        systems = ["native", "chromium-raw", "chromium-idb", "chromium-memory", "chromium-sink"]
        if not args.no_webtorrent:
            systems += ["chromium-webtorrent"]
        if not args.no_firefox:
            systems += ["firefox-raw", "firefox-idb", "firefox-memory"]
            systems += [] if args.no_webtorrent else ["firefox-webtorrent"]
        results = {s: [] for s in systems}
        with Processes(tmp) as procs:
            port = free_port()
            tracker = procs.spawn([args.p2pcdn, "tracker", "--listen", f"127.0.0.1:{port}"], "tracker")
            wait_port(port, tracker, tmp / "tracker.log")
            url = f"ws://127.0.0.1:{port}"
            if not args.no_webtorrent:
                torrent = tmp / "input.torrent"
                wt = procs.spawn([args.node, str(ROOT / "bench" / "webtorrent" / "seed.mjs"), args.webtorrent_modules,
                                  src, torrent], "webtorrent-seeder", stdout=subprocess.PIPE)
                line = wt.stdout.readline().decode()
                if not line:
                    raise SystemExit(f"WebTorrent seeder did not start: {tail(tmp / 'webtorrent-seeder.log')}")
                wt_tracker = json.loads(line)["tracker"]
            for f, name in ((fid, "seeder"), (fid_small, "seeder-small")):
                s = procs.spawn([seeder.binary, "--home", seeder.home, "-q", "--json", "seed", f, "--tracker", url,
                                 "--loopback"], name, stdout=subprocess.PIPE)
                if json.loads(s.stdout.readline().decode() or "{}").get("fileId") != f:
                    raise SystemExit(f"seeder did not start: {tail(tmp / (name + '.log'))}")
            for r in range(args.runs):
                order = systems[r % len(systems):] + systems[:r % len(systems)]
                for system in order:
                    if system == "native":
                        home = tmp / f"leecher{r}"
                        t0 = time.monotonic()
                        p = Cli(args.p2pcdn, home).run("-q", "--json", "get", fid, "--tracker", url, "--loopback",
                                                       "-o", tmp / "native.out", expect=0, timeout=600)
                        done = [json.loads(x) for x in p.out.splitlines() if '"done"' in x][-1]
                        secs = done["completeSeconds"] - max(done["firstChunkSeconds"], 0)
                        results[system].append({"mbps": size / 1e6 / secs, "wall": time.monotonic() - t0})
                        shutil.rmtree(home, ignore_errors=True)
                        continue
                    browser, store = system.split("-")
                    if store == "raw":
                        sig = tmp / f"signal-{system}-{r}"
                        sig.mkdir()
                        sender = subprocess.Popen([raw_dc, "send", "--signal-dir", sig, "--bytes", str(size)],
                                                  stdout=subprocess.DEVNULL, stderr=open(tmp / "raw.log", "ab"))
                        try:
                            x = page(args, url, fid, "rawrecv", ["--signal-dir", str(sig)]
                                     + (["--firefox", args.firefox] if browser == "firefox" else []))
                        finally:
                            try:
                                sender.wait(timeout=30)
                            except subprocess.TimeoutExpired:
                                sender.kill()
                        if x["bytes"] != size:
                            raise SystemExit(f"{system}: {x['bytes']} bytes of {size}")
                        results[system].append({"mbps": size / 1e6 / (x["ms"] / 1000)})
                        print(f"  round {r + 1} {system}: {results[system][-1]['mbps']:.1f} MB/s", flush=True)
                        continue
                    if store == "webtorrent":
                        # The peer system may fail (WebTorrent in Firefox stalled on 256 MiB): that is a result.
                        x = page(args, wt_tracker, "-", "webtorrent",
                                 ["--wt-bundle", str(Path(args.webtorrent_modules) / "webtorrent" / "dist" / "webtorrent.min.js"),
                                  "--input", str(torrent)] + (["--firefox", args.firefox] if browser == "firefox" else []),
                                 timeout_s=max(180, size // (2 * 10**6)), must=False)
                        if not x.get("ok"):
                            results[system].append({"failed": x.get("error", "")[:400]})
                            print(f"  round {r + 1} {system}: FAILED {results[system][-1]['failed']}", flush=True)
                            continue
                        if x["size"] != size or x["sha256"] != src_sha:
                            raise SystemExit(f"{system}: {x['size']} bytes of {size}, sha256 {x['sha256']}")
                        results[system].append({"mbps": size / 1e6 / (x["ms"] / 1000),
                                                "mbpsTotal": size / 1e6 / (x["msTotal"] / 1000),
                                                "v8": x.get("v8")})
                        print(f"  round {r + 1} {system}: {results[system][-1]['mbps']:.1f} MB/s "
                              f"(add() to done {results[system][-1]['mbpsTotal']:.1f})", flush=True)
                        continue
                    extra = ["--storage", "memory" if store == "memory" else "idb"] + (["--sink"] if store == "sink" else [])
                    if browser == "firefox":
                        extra += ["--firefox", args.firefox]
                    x = page(args, url, fid, "download", extra)
                    if x["size"] != size or (store != "sink" and x["sha256"] != src_sha):
                        raise SystemExit(f"{system}: {x['size']} bytes of {size}, sha256 {x.get('sha256')}")
                    results[system].append({"mbps": size / 1e6 / (x["ms"] / 1000), "wasmIdle": x["memIdle"]["wasm"],
                                            "wasmPeak": x["memPeak"]["wasm"], "v8": x.get("v8")})
                    print(f"  round {r + 1} {system}: {results[system][-1]['mbps']:.1f} MB/s", flush=True)
            extras = {}
            if args.memory_mib:
                big = write_file(tmp / "big.bin", os.urandom(args.memory_mib * MIB))
                fid_big = seeder.add(big)["fileId"]
                big.unlink()
                s = procs.spawn([seeder.binary, "--home", seeder.home, "-q", "--json", "seed", fid_big, "--tracker", url,
                                 "--loopback"], "seeder-big", stdout=subprocess.PIPE)
                if json.loads(s.stdout.readline().decode() or "{}").get("fileId") != fid_big:
                    raise SystemExit(f"seeder did not start: {tail(tmp / 'seeder-big.log')}")
                x = page(args, url, fid_big, "download", ["--storage", "idb", "--sink"], timeout_s=1800)
                if x["size"] != args.memory_mib * MIB:
                    raise SystemExit(f"the {args.memory_mib} MiB stream gave {x['size']} bytes")
                extras["bigStream"] = {"mib": args.memory_mib, "mbps": x["size"] / 1e6 / (x["ms"] / 1000),
                                       "jsAboveIdleMiB": (x["v8"]["peak"]["total"] - x["v8"]["idle"]["total"]) / MIB,
                                       "wasmIdleMiB": x["memIdle"]["wasm"] / MIB, "wasmPeakMiB": x["memPeak"]["wasm"] / MIB}
                print(f"  {args.memory_mib} MiB stream() into IndexedDB: {extras['bigStream']}", flush=True)
            for browser in ["chromium"] + ([] if args.no_firefox else ["firefox"]):
                flag = ["--firefox", args.firefox] if browser == "firefox" else []
                ix = [page(args, url, fid_small, "reindex", ["--sink"] + flag)["indexMs"] for _ in range(args.runs)]
                io = [page(args, url, fid, "idbwrite", ["--pages", "1024"] + flag) for _ in range(args.runs)]
                extras[browser] = {
                    "indexMs4096": statistics.median(ix), "indexRuns": ix,
                    "idbWriteMBps": statistics.median(1024 * 262144 / 1e6 / (y["writeMs"] / 1000) for y in io),
                    "idbReadMBps": statistics.median(1024 * 262144 / 1e6 / (y["readMs"] / 1000) for y in io),
                }
        check_only_loopback(shutil.which("ip"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    native = statistics.median(x["mbps"] for x in results["native"])
    raw = {b: statistics.median(x["mbps"] for x in results[f"{b}-raw"]) for b in ("chromium", "firefox")
           if f"{b}-raw" in results}
    print(f"\n{args.size_mib} MiB from one native seeder, medians of {args.runs} (MB/s; ratio to native get; "
          "wasm heap idle -> peak; Chromium: JS above idle at the peak, V8's heap + ArrayBuffers, from CDP)")
    for system, all_runs in results.items():
        rs = [x for x in all_runs if "failed" not in x]
        if len(rs) < len(all_runs):
            print(f"  {system:16s} {len(all_runs) - len(rs)} of {len(all_runs)} runs FAILED: {all_runs[0].get('failed', '')[:200]}")
        if not rs:
            continue
        mbps = statistics.median(x["mbps"] for x in rs)
        line = f"  {system:16s} {mbps:6.1f} MB/s  x{mbps / native:.2f}  runs " + " ".join(f"{x['mbps']:.1f}" for x in rs)
        b = system.split("-")[0]
        if b in raw and not system.endswith("-raw"):
            line += f"  x{mbps / raw[b]:.2f} of {b}'s raw channel"
        if "wasmPeak" in rs[0]:
            line += f"  wasm {rs[0]['wasmIdle'] / MIB:.0f}->{max(x['wasmPeak'] for x in rs) / MIB:.0f} MiB"
        if rs[0].get("v8"):
            above = [(x["v8"]["peak"]["total"] - x["v8"]["idle"]["total"]) / MIB for x in rs]
            line += f"  JS +{max(above):.0f} MiB at the peak (runs {' '.join(f'{a:.0f}' for a in above)})"
        print(line)
    for b in ("chromium", "firefox"):
        if f"{b}-webtorrent" not in results:
            continue
        done = [x for x in results[f"{b}-webtorrent"] if "failed" not in x]
        if not done:
            print(f"  {b}: WebTorrent completed no run")
            continue
        wt = statistics.median(x["mbps"] for x in done)
        wt_total = statistics.median(x["mbpsTotal"] for x in done)
        ours = {k: statistics.median(x["mbps"] for x in results[f"{b}-{k}"]) for k in ("idb", "memory")}
        print(f"  {b}: ours against WebTorrent (its first byte to done {wt:.1f} MB/s; add() to done {wt_total:.1f}): "
              f"IndexedDB x{ours['idb'] / wt:.2f}, memory x{ours['memory'] / wt:.2f}")
    big = extras.pop("bigStream", None)
    if big:
        print(f"  chromium stream() of {big['mib']} MiB into IndexedDB: {big['mbps']:.1f} MB/s, JS +{big['jsAboveIdleMiB']:.0f} "
              f"MiB above idle at the peak, wasm {big['wasmIdleMiB']:.0f}->{big['wasmPeakMiB']:.0f} MiB")
    for browser, e in extras.items():
        print(f"  {browser}: index 4096 stored chunks {e['indexMs4096']:.0f} ms (runs "
              f"{', '.join(f'{v:.0f}' for v in e['indexRuns'])}); IndexedDBStorage write {e['idbWriteMBps']:.0f} MB/s, "
              f"read {e['idbReadMBps']:.0f} MB/s")
    print(json.dumps({"results": results, "extras": extras, "bigStream": big}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
