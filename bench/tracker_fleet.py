#!/usr/bin/env python3
"""Tracker load, side by side in one run (bench/tracker_load.cpp is the load):

  tracker_fleet.py [--build build/release] [--bt-kit DIR] [--conns 18000] [--rounds 3] [--relay-rounds 500]

Systems, each on the same load (N WebSocket connections from 8 source
addresses 127.0.0.2-9 in 100 swarms, one announce each, then 10 pipelined
announces per connection):
  ours      p2pcdn tracker, swarms in memory
  fleet     p2pcdn tracker --redis (one instance; Redis' CPU is counted too)
  bt        bittorrent-tracker's Server (npm, --bt-kit DIR holding
            node_modules/bittorrent-tracker), ws only
Figures: tracker RSS delta per idle connection, announces per second and per
CPU-second (tracker + Redis). Then offer relay latency (announce with one
offer -> the other peer holds it), p50/p99 over --relay-rounds: within one
instance, and across two fleet instances through Redis pub/sub.
Prints a Markdown table for bench/RESULTS.md. N is bounded by the fd limit
(this machine's hard RLIMIT_NOFILE is 20 000 and cannot be raised).
"""

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time

BT_SCRIPT = """
import Server from 'bittorrent-tracker/server'
const server = new Server({ udp: false, http: false, ws: true, stats: false, trustProxy: false })
server.on('error', e => console.error('tracker error', e.message))
server.on('warning', () => {})
server.listen(Number(process.argv[1]), '127.0.0.1', () => console.log('listening'))
process.on('SIGTERM', () => process.exit(0))
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def raise_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


class Redis:
    def __enter__(self):
        self.port = free_port()
        self.p = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--loglevel", "warning"], stdout=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def __exit__(self, *a):
        self.p.terminate()
        self.p.wait()


def start(system, build, bt_kit, redis):
    port = free_port()
    tracker = os.path.join(build, "src/tracker/p2pcdn_tracker")
    common = ["--listen", f"127.0.0.1:{port}", "--rate-limit", "0", "--max-connections", "200000",
              "--max-connections-per-ip", "0"]
    if system == "ours":
        p = subprocess.Popen([tracker, *common], stdout=subprocess.DEVNULL, preexec_fn=raise_fds)
    elif system == "fleet":
        p = subprocess.Popen([tracker, *common, "--redis", f"redis://127.0.0.1:{redis.port}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=raise_fds)
    else:
        p = subprocess.Popen(["node", "--input-type=module", "-e", BT_SCRIPT, str(port)], cwd=bt_kit,
                             stdout=subprocess.DEVNULL, preexec_fn=raise_fds)
    wait_port(port)
    time.sleep(0.3)
    return p, port


def load(build, args, system, bt_kit, redis):
    p, port = start(system, build, bt_kit, redis)
    try:
        r0 = cpu_seconds(redis.p.pid) if system == "fleet" else 0
        out = subprocess.run([os.path.join(build, "bench/tracker_load"), "conns", "--url", f"ws://127.0.0.1:{port}",
                              "--pid", str(p.pid), "--conns", str(args.conns), "--each", "10", "--timeout", "180"],
                             capture_output=True, text=True, preexec_fn=raise_fds, timeout=600)
        if out.returncode != 0:
            raise SystemExit(f"tracker_load conns against {system} failed: {out.stderr.strip()} {out.stdout.strip()}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if system == "fleet":
            r["redisCpuSeconds"] = cpu_seconds(redis.p.pid) - r0
            cpu = r["trackerCpuSeconds"] + r["redisCpuSeconds"]
            r["announcesPerCpuSecond"] = r["announces"] / cpu if cpu else 0
        return r
    finally:
        p.terminate()
        p.wait()


def relay(build, a, b, rounds):
    out = subprocess.run([os.path.join(build, "bench/tracker_load"), "relay", "--url", f"ws://127.0.0.1:{a}", "--to",
                          f"ws://127.0.0.1:{b}", "--rounds", str(rounds), "--timeout", "10"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"tracker_load relay failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--bt-kit", default=None)
    ap.add_argument("--conns", type=int, default=18000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--relay-rounds", type=int, default=500)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    systems = ["ours", "fleet"] + (["bt"] if args.bt_kit else [])
    results = {s: [] for s in systems}
    with Redis() as redis:
        for k in range(args.rounds):
            for s in (systems if k % 2 == 0 else list(reversed(systems))):
                r = load(args.build, args, s, args.bt_kit, redis)
                results[s].append(r)
                print(f"round {k + 1} {s}: {json.dumps(r)}", file=sys.stderr, flush=True)
        # Relay latency: one instance alone, then two instances of a fleet.
        pa, a = start("ours", args.build, None, redis)
        one = relay(args.build, a, a, args.relay_rounds)
        pa.terminate()
        pa.wait()
        fa, a = start("fleet", args.build, None, redis)
        fb, b = start("fleet", args.build, None, redis)
        time.sleep(0.5)
        same = relay(args.build, a, a, args.relay_rounds)
        cross = relay(args.build, a, b, args.relay_rounds)
        for p in (fa, fb):
            p.terminate()
            p.wait()

    def med(s, key):
        return statistics.median(r[key] for r in results[s])

    print("| system | open / N | bytes per idle connection | announces/s | announces per CPU-s | all replies |")
    print("|---|---|---|---|---|---|")
    for s in systems:
        opened = min(r["open"] for r in results[s])
        print(f"| {s} | {opened} / {args.conns} | {med(s, 'bytesPerConnection'):.0f} | {med(s, 'announcesPerSecond'):.0f} "
              f"| {med(s, 'announcesPerCpuSecond'):.0f} | {all(r['complete'] for r in results[s])} |")
    if "bt" in results:
        print(f"\nours / bittorrent-tracker, announces per CPU-s: "
              f"{med('ours', 'announcesPerCpuSecond') / med('bt', 'announcesPerCpuSecond'):.1f}x; fleet / bt: "
              f"{med('fleet', 'announcesPerCpuSecond') / med('bt', 'announcesPerCpuSecond'):.1f}x; memory per connection "
              f"bt / ours: {med('bt', 'bytesPerConnection') / med('ours', 'bytesPerConnection'):.1f}x")
    print(f"\noffer relay latency ({args.relay_rounds} rounds): one in-memory instance p50 {one['p50ms']:.2f} ms / p99 "
          f"{one['p99ms']:.2f} ms; a fleet instance to itself p50 {same['p50ms']:.2f} / p99 {same['p99ms']:.2f} ms; "
          f"across two instances (Redis pub/sub) p50 {cross['p50ms']:.2f} / p99 {cross['p99ms']:.2f} ms")
    if args.json:
        print(json.dumps({"load": results, "relay": {"one": one, "fleetSame": same, "fleetCross": cross}}))


if __name__ == "__main__":
    main()
