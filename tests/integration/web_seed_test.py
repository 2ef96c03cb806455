#!/usr/bin/env python3
"""Web seeds (a link's ws=, `get --web-seed`): real `p2pcdn` processes, a
tracker, and an HTTP origin with Range support (range_origin.py) serving the
file itself.

  web_seed_test.py --p2pcdn BIN TEST [--seed N]

alone: no peer at all, the manifest given (`get --manifest`): every chunk
  comes from the origin (by the link's ws=), verified; the output is
  byte-identical; the origin sent the file about once.
swarm-first: a seeder and the origin: every chunk comes from the seeder,
  the origin is not asked for file bytes.
bad-origin: the origin corrupts its bytes, then a seeder joins: the leecher
  stores no bad chunk (badChunks counted), drops the origin and completes from
  the seeder, byte-identical.
"""

import filecmp
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import MIB, Cli, Harness, check, random_bytes, write_file  # noqa: E402
from range_origin import RangeOrigin  # noqa: E402
from swarm_test import Swarm  # noqa: E402

TRACKER = "{p2pcdn} tracker --listen 127.0.0.1:{port}"


class Args:
    def __init__(self, args):
        self.p2pcdn = args.p2pcdn
        self.tracker_cmd = TRACKER


def publish(args, tmp, rng, size):
    src = write_file(tmp / "input.bin", random_bytes(rng, size))
    seeder = Cli(args.p2pcdn, tmp / "seeder")
    info = seeder.add(src)
    manifest = tmp / "manifest.json"
    manifest.write_text(seeder.run("manifest", info["fileId"], "--json", expect=0).out)
    return src, seeder, info, manifest


def get(cli, target, out, *extra, timeout=120):
    p = cli.run("-q", "--json", "get", target, "-o", out, "--loopback", *extra, expect=0, timeout=timeout)
    return json.loads(p.out.strip().splitlines()[-1])


def test_alone(args, tmp, rng):
    size = 6 * MIB + 777
    src, _, info, manifest = publish(args, tmp, rng, size)
    origin = RangeOrigin({"/files/input.bin": src})
    try:
        with Swarm(Args(args), tmp) as swarm:
            from urllib.parse import quote
            link = f"p2pcdn:{info['fileId']}?tr={quote(swarm.url, safe='')}&ws={quote(origin.url('/files/input.bin'), safe='')}"
            t0 = time.monotonic()
            r = get(Cli(args.p2pcdn, tmp / "leecher"), link, tmp / "out.bin", "--manifest", manifest)
            took = time.monotonic() - t0
    finally:
        origin.close()
    check(filecmp.cmp(src, tmp / "out.bin", shallow=False), "the output differs from the original")
    chunks = -(-size // (256 * 1024))
    check(r["originChunks"] == chunks and r["originBytes"] == size, f"want all {chunks} chunks from the origin: {r}")
    check(size <= origin.sent <= size + 256 * 1024, f"the origin sent {origin.sent} bytes for a file of {size}")
    # Keep-alive: the client reuses its connections (at most one per request slot, 4, plus a reconnect or two).
    check(origin.connections <= 6, f"{origin.connections} connections for {origin.requests} requests (no keep-alive?)")
    print(f"  {size} bytes from the origin alone in {took:.2f} s ({origin.requests} requests over "
          f"{origin.connections} connections, grace 2 s included)")


def test_swarm_first(args, tmp, rng):
    size = 8 * MIB
    src, seeder, info, _ = publish(args, tmp, rng, size)
    origin = RangeOrigin({"/f.bin": src})
    try:
        with Swarm(Args(args), tmp) as swarm:
            seed = swarm.seed(seeder, info["fileId"])
            r = get(Cli(args.p2pcdn, tmp / "leecher"), seed["link"], tmp / "out.bin", "--web-seed", origin.url("/f.bin"))
    finally:
        origin.close()
    check(filecmp.cmp(src, tmp / "out.bin", shallow=False), "the output differs from the original")
    # Peers first: the origin waits 2 s plus 1 s of an idle swarm. A link slower than that on a loaded
    # machine may let it send the first few chunks (its 4 slots), never more.
    chunks = size // (256 * 1024)
    check(r["originChunks"] <= 4 and origin.sent <= 4 * 256 * 1024,
          f"with a seeder the origin sent {origin.sent} bytes ({r['originChunks']} of {chunks} chunks)")
    print(f"  {chunks - r['originChunks']} of {chunks} chunks from the seeder; the origin sent {origin.sent} bytes "
          f"({origin.requests} requests)")


def test_bad_origin(args, tmp, rng):
    size = 4 * MIB
    src, seeder, info, manifest = publish(args, tmp, rng, size)
    origin = RangeOrigin({"/f.bin": src}, corrupt={"/f.bin"})
    try:
        with Swarm(Args(args), tmp) as swarm:
            leecher = Cli(args.p2pcdn, tmp / "leecher")
            p = subprocess.Popen([leecher.binary, "--home", leecher.home, "-q", "--json", "get", info["fileId"],
                                  "--tracker", swarm.url, "-o", tmp / "out.bin", "--loopback", "--manifest", manifest,
                                  "--web-seed", origin.url("/f.bin")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            swarm.adopt(p, "leecher")
            deadline = time.monotonic() + 30
            while origin.requests < 3 and time.monotonic() < deadline:  # the leecher has tried the origin
                time.sleep(0.1)
            check(origin.requests >= 3, f"the leecher asked the origin {origin.requests} times in 30 s")
            swarm.seed(seeder, info["fileId"])
            out, err = p.communicate(timeout=120)
            check(p.returncode == 0, f"get failed: {err.decode()[-2000:]}")
            r = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        origin.close()
    check(filecmp.cmp(src, tmp / "out.bin", shallow=False), "the output differs from the original")
    check(r["badChunks"] >= 3 and r["originChunks"] == 0, f"bad chunks from the origin: {r}")
    check(origin.requests <= 8, f"the origin was asked {origin.requests} times (dropped after 3 bad chunks)")
    print(f"  {r['badChunks']} bad chunks from the origin, none stored; completed from the seeder")


if __name__ == "__main__":
    sys.exit(Harness({"alone": test_alone, "swarm-first": test_swarm_first, "bad-origin": test_bad_origin}).main())
