#!/usr/bin/env python3
"""The HTTP gateway (`p2pcdn serve`) on loopback, one seeder, real processes.

  bench/gateway.py --p2pcdn build/release/src/cli/p2pcdn [--runs 5] [--size-mib 64]

Prints, as medians over --runs (each run a fresh gateway with an empty store):
  first byte, unfetched: GET /f/<id> of a file the gateway has never seen
      (manifest from the peer, first chunk) -> first body byte;
  first byte after a far seek: one client reads from byte 0; once it has
      1 MiB, a second asks for a Range at 90 % of the file. Two seeders
      speeds: unlimited, and 2 MB/s (where the seek matters most). Also
      whether the chunk was already held (then the number says little);
  throughput: 1 and 8 clients each reading the whole file at once, while the
      gateway downloads it (unfetched, seeder unlimited) and from its store.
The figures go to bench/RESULTS.md by hand.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

MIB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bench:
    def __init__(self, args, tmp):
        self.args, self.tmp, self.procs = args, Path(tmp), []

    def spawn(self, cmd, name, stdout=subprocess.DEVNULL):
        log = open(self.tmp / f"{name}.log", "ab")
        p = subprocess.Popen([str(c) for c in cmd], stdout=stdout, stderr=log, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def close(self):
        for p in reversed(self.procs):
            self.stop(p)

    def tracker(self):
        port = free_port()
        self.spawn([self.args.p2pcdn, "tracker", "--listen", f"127.0.0.1:{port}"], "tracker")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        self.url = f"ws://127.0.0.1:{port}"

    def add(self, home, path):
        out = subprocess.run([self.args.p2pcdn, "--home", home, "add", path, "--json"], capture_output=True, check=True)
        return json.loads(out.stdout)["fileId"]

    def seeder(self, home, fid, limit=None):
        cmd = [self.args.p2pcdn, "--home", home, "-q", "--json", "seed", fid, "--tracker", self.url, "--loopback"]
        if limit:
            cmd += ["--upload-limit", str(limit)]
        p = self.spawn(cmd, "seeder", stdout=subprocess.PIPE)
        p.stdout.readline()
        return p

    def gateway(self, home):
        p = self.spawn([self.args.p2pcdn, "--home", home, "serve", "--listen", "127.0.0.1:0", "--tracker", self.url,
                        "--loopback", "--json"], "gateway", stdout=subprocess.PIPE)
        port = json.loads(p.stdout.readline())["port"]
        time.sleep(0.5)  # connected to the tracker, as a running gateway is
        return p, port


def ttfb(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.monotonic()
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    r.read(1)
    return time.monotonic() - t0, c, r


def metric(port, name, fid):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    for line in body.splitlines():
        if line.startswith(f'{name}{{file="{fid}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def read_all(port, path, out, i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    c.request("GET", path)
    r = c.getresponse()
    n = 0
    while True:
        b = r.read(1 << 20)
        if not b:
            break
        n += len(b)
    c.close()
    out[i] = n


def clients(port, path, k, size):
    out, threads = {}, []
    t0 = time.monotonic()
    for i in range(k):
        t = threading.Thread(target=read_all, args=(port, path, out, i))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    assert all(v == size for v in out.values()), out
    return k * size / took / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=64)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="p2pcdn-bench-gw-"))
    b = Bench(args, tmp)
    try:
        size = args.size_mib * MIB
        src = tmp / "file.bin"
        with open(src, "wb") as f:
            f.write(os.urandom(size))
        seed_home = tmp / "seeder"
        fid = b.add(seed_home, src)
        b.tracker()
        results = {}

        def fresh(name):
            home = tmp / name
            shutil.rmtree(home, ignore_errors=True)
            return b.gateway(home)

        # first byte, unfetched; throughput while downloading (1 and 8 clients)
        s = b.seeder(seed_home, fid)
        unfetched, dl1, dl8, store1, store8 = [], [], [], [], []
        for run in range(args.runs):
            g, port = fresh(f"gw{run}")
            t, c, r = ttfb(port, f"/f/{fid}")
            c.close()
            unfetched.append(t)
            b.stop(g)
            g, port = fresh(f"gw{run}-1")
            dl1.append(clients(port, f"/f/{fid}", 1, size))
            store1.append(clients(port, f"/f/{fid}", 1, size))
            store8.append(clients(port, f"/f/{fid}", 8, size))
            b.stop(g)
            g, port = fresh(f"gw{run}-8")
            dl8.append(clients(port, f"/f/{fid}", 8, size))
            b.stop(g)
        results["first_byte_unfetched_s"] = unfetched
        results["throughput_downloading_1_MBps"] = dl1
        results["throughput_downloading_8_MBps"] = dl8
        results["throughput_store_1_MBps"] = store1
        results["throughput_store_8_MBps"] = store8
        b.stop(s)

        # far seek, seeder unlimited and at 2 MB/s
        for label, limit in (("unlimited", None), ("2MBps", 2_000_000)):
            s = b.seeder(seed_home, fid, limit)
            times, held_before = [], []
            for run in range(args.runs):
                g, port = fresh(f"seek{label}{run}")
                _, c0, r0 = ttfb(port, f"/f/{fid}")
                r0.read(MIB)
                offset = int(size * 0.9)
                target = offset // (256 * 1024)
                missing = metric(port, "p2pcdn_file_first_missing_chunk", fid)
                t, c, r = ttfb(port, f"/f/{fid}", {"Range": f"bytes={offset}-"})
                times.append(t)
                held_before.append(missing is not None and missing > target)
                c.close()
                c0.close()
                b.stop(g)
            results[f"first_byte_far_seek_{label}_s"] = times
            results[f"far_seek_{label}_chunk_already_held"] = held_before
            b.stop(s)

        print(f"file {args.size_mib} MiB, {args.runs} runs, loopback, one seeder")
        for k, v in results.items():
            if isinstance(v[0], bool):
                print(f"  {k:42s} {sum(v)} of {len(v)}")
            else:
                print(f"  {k:42s} median {statistics.median(v):8.3f}   all {' '.join(f'{x:.3f}' for x in v)}")
    finally:
        b.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
