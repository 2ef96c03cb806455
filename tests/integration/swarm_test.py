#!/usr/bin/env python3
"""Real processes over real WebRTC on loopback: a tracker, a seeder and a
leecher, each its own process.

  swarm_test.py --p2pcdn BIN --tracker-cmd "CMD {port}" transfer|resume [--seed N]

transfer: a 64 MiB random file goes from the seeder to the leecher given only
  the link (the manifest comes from the peer); the output is byte-identical,
  every chunk came from the peer, and the leecher's store verifies.
resume: the leecher is killed with SIGKILL about halfway; restarted, it fetches
  exactly the chunks it did not have (counted from its store before the
  restart) and the result is byte-identical.
"""

import filecmp
import json
import os
import shlex
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import (MIB, Cli, Harness, Processes, TestFailure, check, describe_rc, free_port,  # noqa: E402
                   random_bytes, wait_port, write_file)


class Swarm(Processes):
    def __init__(self, args, tmp):
        super().__init__(tmp)
        self.args = args

    def __enter__(self):
        self.port = free_port()
        self.start_tracker()
        self.url = f"ws://127.0.0.1:{self.port}"
        return self

    def start_tracker(self):
        cmd = shlex.split(self.args.tracker_cmd.replace("{port}", str(self.port)).replace("{p2pcdn}", self.args.p2pcdn))
        name = f"tracker{len(self.procs)}"
        self.tracker = self.spawn(cmd, name)
        wait_port(self.port, self.tracker, self.tmp / f"{name}.log")

    def kill_tracker(self):
        self.tracker.send_signal(signal.SIGKILL)
        self.tracker.wait()

    def seed(self, cli, file_id):
        p = self.spawn([cli.binary, "--home", cli.home, "-q", "--json", "seed", file_id, "--tracker", self.url,
                        "--loopback", "--duration", "300"], "seeder", stdout=subprocess.PIPE)
        line = p.stdout.readline().decode()
        check(line, f"seeder printed nothing ({describe_rc(p.poll() or 0)}); see seeder.log")
        info = json.loads(line)
        check(info["fileId"] == file_id, f"seeder serves {info['fileId']}, not {file_id}")
        return info


def get(cli, link, out, timeout=120):
    p = cli.run("-q", "--json", "get", link, "-o", out, "--loopback", expect=0, timeout=timeout)
    return json.loads(p.out.strip().splitlines()[-1])


def prepare(args, tmp, rng, size):
    src = write_file(tmp / "input.bin", random_bytes(rng, size))
    seeder = Cli(args.p2pcdn, tmp / "seeder")
    info = seeder.add(src)
    return src, seeder, info


def test_transfer(args, tmp, rng):
    size = 64 * MIB + 12345
    src, seeder, info = prepare(args, tmp, rng, size)
    leecher = Cli(args.p2pcdn, tmp / "leecher")
    with Swarm(args, tmp) as swarm:
        seed = swarm.seed(seeder, info["fileId"])
        t0 = time.monotonic()
        r = get(leecher, seed["link"], tmp / "out.bin")
        took = time.monotonic() - t0
    check(filecmp.cmp(src, tmp / "out.bin", shallow=False), "downloaded file differs from the original")
    chunks = (size + 256 * 1024 - 1) // (256 * 1024)
    check(r["chunks"] == chunks and r["chunksFetched"] == chunks and r["chunksFromStore"] == 0,
          f"expected all {chunks} chunks from the peer: {r}")
    leecher.run("verify", info["fileId"], expect=0)
    ls = leecher.ls()
    check(ls[info["fileId"]]["chunksPresent"] == chunks, f"leecher store incomplete: {ls}")
    print(f"  {size} bytes in {took:.2f}s (first chunk {r['firstChunkSeconds']:.3f}s after launch, "
          f"{size / 1e6 / (r['completeSeconds'] - r['firstChunkSeconds']):.1f} MB/s transfer phase)")


def present(cli, file_id):
    files = cli.ls()
    return files[file_id]["chunksPresent"] if file_id in files else 0


def test_resume(args, tmp, rng):
    size = 64 * MIB
    src, seeder, info = prepare(args, tmp, rng, size)
    fid = info["fileId"]
    chunks = size // (256 * 1024)
    leecher = Cli(args.p2pcdn, tmp / "leecher")
    with Swarm(args, tmp) as swarm:
        seed = swarm.seed(seeder, fid)
        p = subprocess.Popen([leecher.binary, "--home", leecher.home, "-q", "get", seed["link"], "-o",
                              tmp / "out.bin", "--loopback"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        swarm.adopt(p, "leecher")  # stopped on the way out if a check fails first
        deadline = time.monotonic() + 60
        have = 0
        while time.monotonic() < deadline and p.poll() is None:
            have = present(leecher, fid) if (leecher.home / "store.db").exists() else 0
            if have >= chunks // 3:
                break
            time.sleep(0.02)
        if p.poll() is not None:
            raise TestFailure(f"the first get ended before it could be killed ({describe_rc(p.returncode)}, "
                              f"{have}/{chunks} chunks)")
        p.send_signal(signal.SIGKILL)
        p.wait()
        check(not (tmp / "out.bin").exists(), "a killed get left an output file")
        before = present(leecher, fid)
        check(0 < before < chunks, f"kill did not land halfway: {before}/{chunks} chunks stored")
        leecher.run("verify", fid, expect=6)  # incomplete, nothing corrupt
        r = get(leecher, seed["link"], tmp / "out.bin")
    check(r["chunksFromStore"] == before, f"restart found {r['chunksFromStore']} stored chunks, expected {before}")
    check(r["chunksFetched"] == chunks - before,
          f"restart fetched {r['chunksFetched']} chunks; only the {chunks - before} missing ones were needed")
    check(filecmp.cmp(src, tmp / "out.bin", shallow=False), "resumed download differs from the original")
    leecher.run("verify", fid, expect=0)
    print(f"  killed with {before}/{chunks} chunks stored; the restart fetched exactly the other {r['chunksFetched']}")


def test_reconnect(args, tmp, rng):
    """The tracker dies before the leecher starts and comes back 1.5 s later on
    the same port: both peers reconnect (back-off) and re-announce, and the
    download completes."""
    size = 8 * MIB
    src, seeder, info = prepare(args, tmp, rng, size)
    leecher = Cli(args.p2pcdn, tmp / "leecher")
    with Swarm(args, tmp) as swarm:
        seed = swarm.seed(seeder, info["fileId"])
        time.sleep(0.3)
        swarm.kill_tracker()
        p = subprocess.Popen([leecher.binary, "--home", leecher.home, "-q", "--json", "get", seed["link"], "-o",
                              tmp / "out.bin", "--loopback"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        swarm.adopt(p, "leecher")
        time.sleep(1.5)
        check(p.poll() is None, "get gave up while the tracker was away")
        t0 = time.monotonic()
        swarm.start_tracker()
        # Reconnect back-off (≤ ~4 s here) plus a leecher's quick re-announce (2 s):
        # well under the 30 s announce interval, which a stuck back-off would cost.
        try:
            out, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            raise TestFailure("get did not complete within 15 s of the tracker's return")
        check(p.returncode == 0, f"get: {describe_rc(p.returncode)}: {err.decode()[-2000:]}")
    check(filecmp.cmp(src, tmp / "out.bin", shallow=False), "download differs after the tracker came back")
    print(f"  completed {time.monotonic() - t0:.2f}s after the tracker came back")


if __name__ == "__main__":
    sys.exit(Harness({"transfer": test_transfer, "resume": test_resume, "reconnect": test_reconnect}, extra_args=("--tracker-cmd",)).main())
