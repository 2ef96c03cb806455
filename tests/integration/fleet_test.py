#!/usr/bin/env python3
"""A tracker fleet on a real Redis: Debian's redis-server (started here on a
free loopback port, no persistence), three `p2pcdn tracker --redis`
processes, and real peers over real WebRTC on loopback.

  fleet_test.py --p2pcdn BIN TEST

swarm: the seeder announces on instance A only, the leechers on B and on C
  only: they can meet only through Redis (membership, offers and answers
  relayed between instances). Mid-transfer, A is killed with SIGKILL: the
  transfer completes, byte-identical, and the seeder (given A then B) moves
  to B and is a seeder there. Then Redis is killed and started again, empty:
  the instances reconnect and re-publish their peers, and a new leecher on C
  (whose other peer has left) gets its first chunk from a peer on B within
  5 s of Redis' return. Last, B stops (SIGTERM): its peers leave Redis at
  once (not 2 intervals later).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import DEFAULT_CHUNK, MIB, Cli, Harness, Processes, TestFailure, TestSkipped, check, free_port, wait_port  # noqa: E402
from swarm_test import JsonLines, prepare, same_file, wait_for  # noqa: E402


class Fleet(Processes):
    def __init__(self, args, tmp):
        super().__init__(tmp)
        self.args = args
        self.trackers = {}

    def start_redis(self):
        self.redis = self.spawn(["redis-server", "--port", self.redis_port, "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--loglevel", "warning"], f"redis{len(self.procs)}")
        wait_port(self.redis_port, self.redis, self.tmp / f"{self.redis.name}.log")

    def kill_redis(self):
        self.redis.send_signal(signal.SIGKILL)
        self.redis.wait()

    def __enter__(self):
        if not shutil.which("redis-server"):
            raise TestSkipped("no redis-server (Debian package redis-server)")
        self.redis_port = free_port()
        self.start_redis()
        for name in "ABC":
            port = free_port()
            p = self.spawn([self.args.p2pcdn, "tracker", "--listen", f"127.0.0.1:{port}", "--interval", "20",
                            "--redis", f"redis://127.0.0.1:{self.redis_port}"], f"tracker{name}")
            wait_port(port, p, self.tmp / f"tracker{name}.log")
            self.trackers[name] = (p, port)
        return self

    def url(self, name):
        return f"ws://127.0.0.1:{self.trackers[name][1]}"

    def stats(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.trackers[name][1]}/stats", timeout=5) as r:
            return json.loads(r.read())

    def members(self):
        """Members of every swarm in Redis (redis-cli, from Debian's redis-tools)."""
        script = "local n = 0 for _, k in ipairs(redis.call('KEYS', 'p2pcdn:{*')) do n = n + redis.call('ZCARD', k) end return n"
        out = subprocess.run(["redis-cli", "-p", str(self.redis_port), "EVAL", script, "0"], capture_output=True,
                             text=True, timeout=10)
        return int(out.stdout.strip())

    def kill_tracker(self, name):
        p = self.trackers[name][0]
        p.send_signal(signal.SIGKILL)
        p.wait()


def trackers(fleet, *names):
    out = []
    for n in names:
        out += ["--tracker", fleet.url(n)]
    return out


def test_swarm(args, tmp, rng):
    size = 24 * MIB
    chunks = size // DEFAULT_CHUNK
    src, seeder, info = prepare(args, tmp, rng, size)
    fid = info["fileId"]
    with Fleet(args, tmp) as fleet:
        seed = JsonLines(fleet, [seeder.binary, "--home", seeder.home, "-q", "--json", "seed", fid,
                                 *trackers(fleet, "A", "B"), "--loopback", "--duration", "300",
                                 "--upload-limit", 3_000_000], "seeder")
        wait_for("the seeder's first line", lambda: seed.first() is not None, [seed], 30)
        link = f"p2pcdn:{fid}"
        wait_for("the seeder on A", lambda: fleet.stats("A")["seeders"] == 1, [seed], 15)

        def leecher(name, *names):
            cli = Cli(args.p2pcdn, tmp / name)
            return JsonLines(fleet, [cli.binary, "--home", cli.home, "-q", "--json", "get", link, "-o",
                                     tmp / f"{name}.bin", *trackers(fleet, *names), "--loopback", "--seed"], name)

        t0 = time.monotonic()
        leechers = [leecher("leecherB", "B", "C"), leecher("leecherC", "C", "A")]

        def started():
            return all((p.last() or {}).get("chunksHave", 0) >= 4 for p in leechers)

        wait_for("both leechers to receive chunks through the fleet", started, leechers + [seed], 60)
        first_chunk = time.monotonic() - t0
        fleet.kill_tracker("A")
        at_kill = [p.last()["chunksHave"] for p in leechers]
        check(all(h < chunks for h in at_kill), f"a leecher was complete before A was killed ({at_kill}): nothing tested")
        wait_for("both leechers to complete after A died", lambda: all(p.complete() for p in leechers),
                 leechers + [seed], 90)
        took = time.monotonic() - t0
        for p in leechers:
            check(same_file(src, tmp / f"{p.name}.bin"), f"{p.name}'s copy differs from the original")
        # The seeder's fallback: B (failover after 3 s down, then an announce).
        wait_for("the seeder to announce on B", lambda: fleet.stats("B")["seeders"] >= 1, [seed], 20)
        statsB, statsC = fleet.stats("B"), fleet.stats("C")
        check(statsB["redisUp"] == 1 and statsC["redisUp"] == 1, f"an instance lost Redis: {statsB} {statsC}")
        relayed = statsB["fleetOffersReceived"] + statsB["fleetOffersPublished"] + statsC["fleetOffersPublished"] \
            + statsC["fleetOffersReceived"]
        check(relayed > 0 and statsB["fleetAnswersReceived"] + statsC["fleetAnswersReceived"]
              + statsB["fleetAnswersPublished"] + statsC["fleetAnswersPublished"] > 0,
              f"no offer or answer crossed instances: B {statsB}, C {statsC}")

        # Redis dies and comes back empty: the instances re-publish their peers.
        # C's own peer goes first, so the new leecher on C can find peers only
        # on B, through Redis (announces come every 20 s: too late to help).
        leechers[1].stop()
        fleet.kill_redis()
        time.sleep(1.0)
        fleet.start_redis()
        back = time.monotonic()
        late = Cli(args.p2pcdn, tmp / "late")
        late_p = JsonLines(fleet, [late.binary, "--home", late.home, "-q", "--json", "get", link, "-o",
                                   tmp / "late.bin", *trackers(fleet, "C"), "--loopback"], "late")

        def got_chunk():
            return (late_p.last() or {}).get("chunksHave", 0) >= 1

        wait_for("the new leecher's first chunk after Redis returned", got_chunk, [late_p, seed], 30)
        found = time.monotonic() - back
        wait_for("the new leecher to complete", late_p.complete, [late_p, seed], 90)
        late_p.proc.wait(timeout=30)
        check(same_file(src, tmp / "late.bin"), "the late leecher's copy differs from the original")
        statsB = fleet.stats("B")
        check(statsB["fleetRepublished"] >= 2, f"B re-published fewer than its 2 peers after Redis returned: {statsB}")
        # B stops gracefully: its peers leave Redis at once (not 2 intervals later).
        check(fleet.members() >= 2, f"Redis holds {fleet.members()} members before B stops")
        b = fleet.trackers["B"][0]
        b.terminate()
        b.wait(timeout=30)
        left = fleet.members()
        check(left == 0, f"{left} members still in Redis after B stopped (its peers: the seeder, leecherB)")
        leechers[0].stop()
        seed.stop()
    print(f"  first chunks through the fleet after {first_chunk:.1f}s; A killed with leechers at {at_kill}/{chunks}; "
          f"both complete at {took:.1f}s, byte-identical; after Redis restarted empty a new leecher had its "
          f"first chunk in {found:.1f}s")
    check(found <= 5.0, f"the new leecher took {found:.1f}s (> 5 s) after Redis returned to find a peer")


if __name__ == "__main__":
    sys.exit(Harness({"swarm": test_swarm}).main())
