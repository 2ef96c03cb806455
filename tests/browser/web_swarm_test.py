#!/usr/bin/env python3
"""One swarm of browser and native peers (issue 14): a native seeder held to
--upload-limit bytes/s, two Chromium pages (browser contexts of their own,
so their own IndexedDB), one Firefox page and one native leecher fetch the
same file at once through our tracker. Every copy must be identical, and the
browsers must have got at least --min-share of their bytes from peers other
than the seeder (each other and the native leecher): they are full peers,
serving as they fetch, not only clients of the seeder. After everyone has
finished, each page leaves the swarm with nothing left behind.

  web_swarm_test.py --p2pcdn BIN --package DIR [--chromium PATH] [--firefox PATH]
                    [--size BYTES] [--upload-limit BYTES_PER_S] [--min-share F]

Runs in a network namespace of its own that holds only loopback (as
web_peer_test.py). Exits 77 (skip) when a browser, node, puppeteer-core or the
package is missing, or no namespace can be made."""

import argparse
import hashlib
import json
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))
from itest import MIB, Cli, Processes, TestFailure, check, free_port, tail, wait_port, write_file  # noqa: E402
from web_peer_test import run_in_namespace  # noqa: E402

CHUNK = 256 * 1024


class Lines(threading.Thread):
    """Collects a process's stdout lines (JSON) as they come, so that several
    processes can be waited on at once with one deadline."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc = proc
        self.lines = []
        self.cond = threading.Condition()
        self.start()

    def run(self):
        for raw in self.proc.stdout:
            try:
                obj = json.loads(raw.decode("utf-8", "replace"))
            except json.JSONDecodeError:
                continue
            with self.cond:
                self.lines.append(obj)
                self.cond.notify_all()

    def wait_for(self, pred, deadline, what):
        with self.cond:
            while True:
                hit = [x for x in self.lines if pred(x)]
                if hit:
                    return hit[0]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.is_alive()):
                    raise TestFailure(f"no {what} (got {str(self.lines)[-1500:]})")
                self.cond.wait(min(left, 1.0))


def from_others(stats, seeder_id):
    """(bytes from peers other than the seeder, all bytes) of a page's stats."""
    links = stats["peers"] + stats["closedPeers"]
    total = sum(p["bytesDown"] for p in links)
    others = sum(p["bytesDown"] for p in links if p["peerId"] != seeder_id)
    return others, total


def run(args, tmp):
    data = random.Random(args.seed).randbytes(args.size)
    src = write_file(tmp / "input.bin", data)
    seeder_cli = Cli(args.p2pcdn, tmp / "seeder")
    fid = seeder_cli.add(src)["fileId"]
    leecher = Cli(args.p2pcdn, tmp / "leecher")
    timeout_s = args.timeout_ms / 1000
    with Processes(tmp) as procs:
        port = free_port()
        tracker = procs.spawn([args.p2pcdn, "tracker", "--listen", f"127.0.0.1:{port}"], "tracker")
        wait_port(port, tracker, tmp / "tracker.log")
        url = f"ws://127.0.0.1:{port}"
        seeder = procs.spawn([seeder_cli.binary, "--home", seeder_cli.home, "-q", "--json", "seed", fid,
                              "--tracker", url, "--loopback", "--duration", "600",
                              "--upload-limit", str(args.upload_limit)], "seeder", stdout=subprocess.PIPE)
        seed = json.loads(seeder.stdout.readline().decode() or "{}")
        check(seed.get("fileId") == fid, f"seeder did not start: {tail(tmp / 'seeder.log')}")
        seeder_id = seed["peerId"]
        link = seed["link"]

        def browser(name, flag, path, pages):
            p = subprocess.Popen([args.node, str(HERE / "web_peer.mjs"), "--package", args.package, "--tracker", url,
                                  "--file-id", fid, "--node-modules", args.node_modules, "--chromium", args.chromium,
                                  "--timeout-ms", str(args.timeout_ms), "--scenario", "swarm", "--pages", str(pages)]
                                 + ([flag, path] if flag else []),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(tmp / f"{name}.log", "wb"))
            procs.adopt(p, name)
            return p, Lines(p)

        t0 = time.monotonic()
        chromium, chromium_out = browser("chromium", None, None, 2)
        firefox, firefox_out = browser("firefox", "--firefox", args.firefox, 1)
        native_out = tmp / "native.bin"
        native = subprocess.Popen([leecher.binary, "--home", leecher.home, "-q", "--json", "get", link, "-o", native_out,
                                   "--loopback", "--seed=600"], stdout=subprocess.PIPE,
                                  stderr=open(tmp / "leecher.log", "wb"), stdin=subprocess.DEVNULL)
        procs.adopt(native, "leecher")
        native_lines = Lines(native)
        deadline = time.monotonic() + 2 * timeout_s
        pages = {}
        try:
            for name, out, k in (("chromium", chromium_out, 0), ("chromium", chromium_out, 1), ("firefox", firefox_out, 0)):
                got = out.wait_for(lambda x, k=k: x.get("page") == k, deadline, f"{name} page {k} result")
                r = got["result"]
                if not r.get("ok"):
                    raise TestFailure(f"{name} page {k} failed: {r.get('error')}; stats "
                                      f"{json.dumps(r.get('statsAtError'))[:2000]}\n{tail(tmp / (name + '.log'))}")
                pages[f"{name}{k}"] = r
            native_lines.wait_for(lambda x: x.get("event") == "exported", deadline, "native leecher export")
        except TestFailure as e:
            raise TestFailure(f"{e}\nseeder.log:\n{tail(tmp / 'seeder.log')}")
        wall = time.monotonic() - t0
        # Everyone has it: the pages leave; the native leecher stops (SIGINT) and reports.
        for p in (chromium, firefox):
            p.stdin.write(b"next\n")
            p.stdin.flush()
        native.send_signal(signal.SIGINT)
        left = [chromium_out.wait_for(lambda x: "pages" in x or x.get("ok") is False and "page" not in x,
                                      time.monotonic() + 60, "chromium's leave"),
                firefox_out.wait_for(lambda x: "pages" in x or x.get("ok") is False and "page" not in x,
                                     time.monotonic() + 60, "firefox's leave")]
        native_done = native_lines.wait_for(lambda x: x.get("event") == "done", time.monotonic() + 30, "native done")
    check(native_out.read_bytes() == data, "the native leecher's copy differs from the original")
    digest = hashlib.sha256(data).hexdigest()
    lines = []
    total_other = total_all = 0
    for name, r in pages.items():
        check(r["size"] == len(data) and r["sha256"] == digest, f"{name}'s copy differs from the original")
        others, total = from_others(r["stats"], seeder_id)
        total_other += others
        total_all += total
        lines.append(f"{name} {r['ms']:.0f} ms, {100 * others / max(total, 1):.0f}% from non-seeders")
    for lv in left:
        check(lv.get("ok"), f"a browser failed to leave: {lv}")
        for x in lv["pages"]:
            check(x["linksAfter"] == 0 and x["socketsAfter"] == 0 and x["storesAfter"] == 0,
                  f"a page left {x['linksAfter']} links, {x['socketsAfter']} sockets, {x['storesAfter']} stores")
    native_others = sum(p["bytesDown"] for p in native_done.get("peers", []) if p["peerId"] != seeder_id)
    native_total = sum(p["bytesDown"] for p in native_done.get("peers", []))
    share = total_other / max(total_all, 1)
    print(f"  {len(data)} bytes to 3 pages + 1 native peer in {wall:.1f} s (seeder held to {args.upload_limit} B/s); "
          + "; ".join(lines) + f"; native leecher {100 * native_others / max(native_total, 1):.0f}% from non-seeders; "
          f"the browsers together {100 * share:.0f}% from non-seeders", flush=True)
    for name, r in pages.items():
        others, total = from_others(r["stats"], seeder_id)
        check(others >= args.min_share * total,
              f"{name} got {others} of its {total} bytes from peers other than the seeder "
              f"(< {100 * args.min_share:.0f}%)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--package", required=True, help="the built package (build/wasm/web)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--firefox", default="/usr/bin/firefox-esr")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--node-modules", default=str(HERE.parent.parent / "build" / "npm" / "node_modules"))
    ap.add_argument("--size", type=int, default=16 * MIB)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--timeout-ms", type=int, default=120000)
    ap.add_argument("--upload-limit", type=int, default=2000000, help="the seeder's upload limit, bytes/s")
    ap.add_argument("--min-share", type=float, default=0.3,
                    help="each browser's least share of bytes from peers other than the seeder")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    return run_in_namespace("web_swarm", args, [("Chromium", args.chromium), ("Firefox", args.firefox)],
                            lambda tmp: run(args, tmp))


if __name__ == "__main__":
    sys.exit(main())
