#!/usr/bin/env python3
"""Real processes over real WebRTC on loopback: a tracker, a seeder and a
leecher, each its own process.

  swarm_test.py --p2pcdn BIN [--p2pcdn-test BIN] --tracker-cmd "CMD {port}" TEST [--seed N]

--p2pcdn-test: the test twin (p2pcdn-test, built with P2PCDN_FAULT_INJECTION),
  the only binary with --fault-corrupt; corrupt-peer needs it.

transfer: a 64 MiB random file goes from the seeder to the leecher given only
  the link (the manifest comes from the peer); the output is byte-identical,
  every chunk came from the peer, and the leecher's store verifies.
resume: the leecher is killed with SIGKILL about halfway; restarted, it fetches
  exactly the chunks it did not have (counted from its store before the
  restart) and the result is byte-identical.
reconnect: the tracker dies and comes back; the download still completes.
options: bad values of the swarm options of seed/get are usage errors (exit 2);
  p2pcdn has no --fault-corrupt (an unknown option), the test twin has it.

Swarms (`get --json` progress lines and per-peer stats in the final line):
many: 1 seeder + 5 leechers (`get --seed`) of a 32 MiB file: every copy is
  byte-identical and at least 30% of the leechers' chunks came from other
  leechers (per-peer stats), not from the seeder.
flash-crowd: 3 leechers started at the same instant (their offers cross: glare),
  three rounds: every leecher links to both others, and the leechers get at
  least half of their chunks from each other (the seeder is limited to
  12 MB/s, the leechers are not).
seeder-killed: 1 seeder + 3 leechers (uploads limited to 3 MB/s and 1 MB/s so
  the kill lands mid-transfer); as soon as the leechers' `have` bitfields
  together cover every chunk the seeder is killed with SIGKILL; the leechers
  finish among themselves, byte-identical.
slow-links: 1 seeder + 3 leechers (`get --seed`) of an 8 MiB file in a network
  namespace the test makes, its loopback shaped to 2 MB/s (`tc ... tbf`):
  every copy identical, no request time-outs, no bans, the leechers get at
  least 30% of their chunks from each other, and the swarm moves at least
  half the shaped rate (measured 74-76%). Prints the seeder's send-window waits. Needs root,
  `ip` and `tc` (iproute2); skipped (exit 77) where namespaces are refused.
wss: the tracker serves wss:// (--tls-cert/--tls-key, a certificate for
  localhost from a CA the test makes with openssl); seeder and leecher reach
  it with --ca and the file arrives byte-identical; a TLS client that does not
  trust the CA is refused, and so is plain ws:// on that port.
turn: seeder and leecher --relay-only through Debian's coturn (turnserver)
  on 127.0.0.1, started by the test with long-term credentials: the file
  arrives byte-identical and the links' candidates are relay on both sides;
  with a wrong password no link opens.
corrupt-peer: a seeder that corrupts every chunk it serves (`p2pcdn-test seed
  --fault-corrupt`) and an honest seeder started once the
  leecher has met the bad one: the leecher detects the corruption (badChunks,
  bans), completes from the honest seeder, byte-identical.
"""

import filecmp
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import (DEFAULT_CHUNK, MIB, Cli, Harness, Processes, TestFailure, TestSkipped, check, describe_rc,  # noqa: E402
                   free_port, random_bytes, tail, wait_port, write_file)


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
    # The chunks went straight into out.bin (the store serves them from there):
    # the file's bytes written once, plus the store's metadata.
    check(0 < r["ioWriteBytes"] <= size * 1.1 + 4 * MIB, f"get -o wrote {r['ioWriteBytes']} bytes for {size}")
    own = leecher.home / "store.db-chunks"
    check(not own.exists() or not any(own.iterdir()), "the store kept its own copy of the downloaded file")
    print(f"  {size} bytes in {took:.2f}s (first chunk {r['firstChunkSeconds']:.3f}s after launch, "
          f"{size / 1e6 / (r['completeSeconds'] - r['firstChunkSeconds']):.1f} MB/s transfer phase); "
          f"wrote {r['ioWriteBytes'] / size:.3f}x the file's size")


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
        check((tmp / "out.bin.part").exists(), "the killed get's chunks are not in out.bin.part")
        before = present(leecher, fid)
        check(0 < before < chunks, f"kill did not land halfway: {before}/{chunks} chunks stored")
        leecher.run("verify", fid, expect=6)  # incomplete, nothing corrupt
        r = get(leecher, seed["link"], tmp / "out.bin")
    check(r["chunksFromStore"] == before, f"restart found {r['chunksFromStore']} stored chunks, expected {before}")
    check(r["chunksFetched"] == chunks - before,
          f"restart fetched {r['chunksFetched']} chunks; only the {chunks - before} missing ones were needed")
    check(filecmp.cmp(src, tmp / "out.bin", shallow=False), "resumed download differs from the original")
    check(not (tmp / "out.bin.part").exists(), "out.bin.part left after the resumed get completed")
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


# ---- swarms: several processes watched through their --json lines ----------

class JsonLines:
    """A process whose stdout carries one JSON object per line (`--json`),
    read by a thread as it comes; stderr goes to NAME.log in the test folder."""

    def __init__(self, swarm, cmd, name):
        self.name = name
        self.proc = swarm.spawn(cmd, name, stdout=subprocess.PIPE)
        self.log = swarm.tmp / f"{name}.log"
        self.lines = []
        self.bad = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                with self.lock:
                    self.bad.append(raw)
                continue
            with self.lock:
                self.lines.append(obj)

    def events(self, kind):
        with self.lock:
            return [x for x in self.lines if x.get("event") == kind]

    def last(self, kind="progress"):
        ev = self.events(kind)
        return ev[-1] if ev else None

    def first(self):
        with self.lock:
            return self.lines[0] if self.lines else None

    def alive(self):
        return self.proc.poll() is None

    def why(self):
        return f"{self.name} ({describe_rc(self.proc.returncode) if self.proc.returncode is not None else 'running'})" \
               f"; {self.log.name}:\n{tail(self.log)}"

    def complete(self):
        p = self.last()
        return p is not None and p["chunksTotal"] > 0 and p["chunksHave"] == p["chunksTotal"]

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the process, waits for it and returns its final ("done") line."""
        if self.alive():
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"{self.name} did not exit within {timeout}s of {signal.Signals(sig).name}")
        self.reader.join(timeout=5)
        check(not self.bad, f"{self.name} printed lines that are not JSON: {self.bad[:3]}")
        return self.last("done")


def wait_for(what, pred, procs, timeout):
    """Polls pred() until true; fails if it times out or a watched process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        for p in procs:
            if not p.alive():
                raise TestFailure(f"{p.why()}\nwhile waiting for {what}")
        time.sleep(0.05)
    raise TestFailure(f"timed out after {timeout}s waiting for {what}; last progress: "
                      + "; ".join(f"{p.name}: {p.last()}"[:300] for p in procs))


def start_seeder(swarm, cli, fid, name, *extra):
    s = JsonLines(swarm, [cli.binary, "--home", cli.home, "-q", "--json", "seed", fid, "--tracker", swarm.url,
                          "--loopback", "--duration", "300", *extra], name)
    wait_for(f"{name}'s first line", lambda: s.first() is not None, [s], 30)
    info = s.first()
    check(info.get("fileId") == fid, f"{name} serves {info.get('fileId')}, not {fid}")
    check(len(info.get("peerId", "")) == 40, f"{name}: seed --json lacks a 40-hex peerId: {info}")
    return s, info


def start_leecher(swarm, tmp, link, name, *extra):
    cli = Cli(swarm.args.p2pcdn, tmp / name)
    return JsonLines(swarm, [cli.binary, "--home", cli.home, "-q", "--json", "get", link, "-o", tmp / f"{name}.bin",
                             "--loopback", *extra], name)


def bits(hexstr, n):
    """The set of chunk indexes in a `have` bitfield (wire order: MSB first)."""
    b = bytes.fromhex(hexstr)
    return {i for i in range(n) if i // 8 < len(b) and b[i // 8] & (0x80 >> (i % 8))}


def check_done(r, name, fid, chunks):
    check(r is not None, f"{name} printed no final line with event 'done'")
    for key in ("fileId", "size", "chunks", "chunksFromStore", "chunksFetched", "bytesDownloaded", "firstChunkSeconds",
                "completeSeconds", "totalSeconds", "peerId", "peers", "badChunks", "bans", "timeouts", "wasted",
                "bytesUploaded"):
        check(key in r, f"{name}: final line lacks {key!r}: {r}")
    check(r["fileId"] == fid and r["chunks"] == chunks, f"{name}: final line is about another file: {r}")
    for peer in r["peers"]:
        for key in ("peerId", "bytesDown", "bytesUp", "chunksReceived", "chunksServed", "failures", "badChunks"):
            check(key in peer, f"{name}: per-peer entry lacks {key!r}: {peer}")


def check_progress_lines(p, chunks):
    """Every progress line is well formed and its bitfield agrees with its count."""
    lines = p.events("progress")
    check(lines, f"{p.name} printed no progress line")
    for x in lines:
        for key in ("chunksHave", "chunksTotal", "have", "peers", "bytesDownloaded", "bytesUploaded"):
            check(key in x, f"{p.name}: progress line lacks {key!r}: {x}")
        if x["chunksTotal"]:
            check(x["chunksTotal"] == chunks, f"{p.name}: chunksTotal {x['chunksTotal']}, expected {chunks}")
            check(len(x["have"]) == 2 * ((chunks + 7) // 8), f"{p.name}: bitfield of the wrong length: {x}")
            check(len(bits(x["have"], chunks)) == x["chunksHave"],
                  f"{p.name}: bitfield holds {len(bits(x['have'], chunks))} chunks, chunksHave says {x['chunksHave']}")


def same_file(a, b):
    return subprocess.run(["cmp", "-s", str(a), str(b)]).returncode == 0


def test_options(args, tmp, rng):
    """The swarm options of seed/get: bad values are usage errors (exit 2);
    the product binary has no --fault-corrupt, the test twin has it."""
    cli = Cli(args.p2pcdn, tmp / "home")
    link = "p2pcdn:" + "ab" * 32 + "?tr=ws://127.0.0.1:9"
    for cmd in (["seed", tmp / "nothing"], ["get", link]):
        for bad in (["--max-uploads", "0"], ["--max-uploads", "x"], ["--max-downloads", "-1"],
                    ["--upload-limit", "0"], ["--upload-limit", "1.5"], ["--download-limit", "-5"],
                    ["--download-limit", "fast"], ["--max-uploads"]):
            p = cli.run(*cmd, *bad, expect=2)
            check("max-" in p.err or "limit" in p.err, f"{cmd[0]} {bad}: the usage error names no option: {p.err}")
        helptext = cli.run(cmd[0], "--help", expect=0).out
        for opt in ("--max-uploads", "--max-downloads", "--upload-limit", "--download-limit", "--no-super-seed"):
            check(opt in helptext, f"{cmd[0]} --help does not mention {opt}")
    # The product: the switch is an unknown option (exit 2), in neither help.
    # The twin: listed, and the seed below gets past parsing and finds no such file.
    binaries = [(args.p2pcdn, False)] + ([(args.p2pcdn_test, True)] if args.p2pcdn_test else [])
    for binary, twin in binaries:
        c = Cli(binary, tmp / "home")
        for cmd in ("seed", "get"):
            listed = "--fault-corrupt" in c.run(cmd, "--help", expect=0).out
            check(listed == twin, f"{os.path.basename(binary)} {cmd} --help: --fault-corrupt listed={listed}")
        p = c.run("seed", "ab" * 32, "--fault-corrupt", "--tracker", "ws://127.0.0.1:9")
        check(p.returncode == (3 if twin else 2),
              f"{os.path.basename(binary)} seed --fault-corrupt: {describe_rc(p.returncode)}; {p.err}")
    print(f"  --fault-corrupt: not in p2pcdn; {'in p2pcdn-test' if args.p2pcdn_test else 'p2pcdn-test not given'}")


def one_seeder_swarm(args, tmp, rng, size, n, timeout):
    """1 seeder + n leechers (`get --seed`) started together; waits until all
    are complete, stops them and checks every copy, final line and progress
    line. Returns (seeder info, leechers, their final lines, the seeder's
    final line, seconds from the leechers' start to the last completion)."""
    chunks = (size + DEFAULT_CHUNK - 1) // DEFAULT_CHUNK
    src, seeder, info = prepare(args, tmp, rng, size)
    fid = info["fileId"]
    with Swarm(args, tmp) as swarm:
        seed, sinfo = start_seeder(swarm, seeder, fid, "seeder")
        time.sleep(0.3)  # its announce reaches the tracker first
        t0 = time.monotonic()
        leechers = [start_leecher(swarm, tmp, sinfo["link"], f"leecher{i}", "--seed") for i in range(1, n + 1)]
        wait_for("every leecher to complete", lambda: all(p.complete() for p in leechers), leechers + [seed], timeout)
        took = time.monotonic() - t0
        # -o OUT is written when the download completes, while `get --seed`
        # goes on seeding (it once waited for the seeding to end).
        wait_for("every leecher's -o file", lambda: all(p.last("exported") for p in leechers), leechers + [seed], 30)
        for p in leechers:
            check(same_file(src, tmp / f"{p.name}.bin"), f"{p.name}'s copy, written while seeding, differs from the original")
        done = [p.stop() for p in leechers]
        for p in leechers:
            check(p.proc.returncode == 0, f"get --seed ended with {p.why()}")
        sdone = seed.stop()
    check(sdone is not None and sdone.get("event") == "done", f"seed --json printed no final line: {seed.lines[-1:]}")
    for p, r in zip(leechers, done):
        check_done(r, p.name, fid, chunks)
        check_progress_lines(p, chunks)
        check(same_file(src, tmp / f"{p.name}.bin"), f"{p.name}'s copy differs from the original")
        check(r["chunksFetched"] == chunks, f"{p.name} fetched {r['chunksFetched']} of {chunks} chunks")
    return sinfo, leechers, done, sdone, took


def test_many(args, tmp, rng):
    size = 32 * MIB + 4321
    chunks = (size + DEFAULT_CHUNK - 1) // DEFAULT_CHUNK
    n = 5
    sinfo, leechers, done, sdone, took = one_seeder_swarm(args, tmp, rng, size, n, 100)
    from_seeder = from_others = 0
    shares = []
    for p, r in zip(leechers, done):
        mine_seed = sum(x["chunksReceived"] for x in r["peers"] if x["peerId"] == sinfo["peerId"])
        mine_others = sum(x["chunksReceived"] for x in r["peers"] if x["peerId"] != sinfo["peerId"])
        # The per-peer view is refreshed every 100 ms and at shutdown, so it
        # accounts for every chunk unless a peer left in between.
        check(mine_seed + mine_others <= chunks,
              f"{p.name}: per-peer chunks add up to more than the file: {r['peers']}")
        from_seeder += mine_seed
        from_others += mine_others
        shares.append(mine_others / max(1, mine_seed + mine_others))
    counted = from_seeder + from_others
    check(counted >= 0.95 * n * chunks, f"the per-peer stats account for only {counted} of {n * chunks} chunks")
    share = from_others / counted
    upload_share = 1 - sdone["bytesUploaded"] / (n * size)
    print(f"  {n} leechers x {size} bytes in {took:.1f}s; chunks from other leechers: {share:.1%} "
          f"(per leecher: {', '.join(f'{x:.0%}' for x in shares)}); 1 - seederUploaded/(n*size) = {upload_share:.1%}")
    check(share >= 0.30, f"only {share:.1%} of the leechers' chunks came from other leechers (need >= 30%)")


def test_flash_crowd(args, tmp, rng):
    size = 24 * MIB
    chunks = size // DEFAULT_CHUNK
    n = 3
    src, seeder, info = prepare(args, tmp, rng, size)
    fid = info["fileId"]
    shares = []
    # Connection events (announces, offers, glare, opens, drops) go to each
    # peer's log, and a round whose leechers did not all link prints them.
    os.environ["P2PCDN_TRACE"] = "1"
    for rnd in range(1, 4):
        with Swarm(args, tmp) as swarm:
            seed, sinfo = start_seeder(swarm, seeder, fid, f"seeder-r{rnd}", "--upload-limit", str(12_000_000))
            time.sleep(0.3)
            names = [f"r{rnd}-leecher{i}" for i in range(1, n + 1)]
            leechers = [start_leecher(swarm, tmp, sinfo["link"], name, "--seed") for name in names]
            wait_for("every leecher to complete", lambda: all(p.complete() for p in leechers), leechers + [seed], 100)
            done = [p.stop() for p in leechers]
            seed.stop()
        ids = {r["peerId"] for r in done}
        got_seed = got_others = 0
        for p, r in zip(leechers, done):
            check(p.proc.returncode == 0, f"get --seed ended with {p.why()}")
            check(same_file(src, tmp / f"{p.name}.bin"), f"{p.name}'s copy differs from the original")
            linked = {x["peerId"] for x in r["peers"]}
            missing = ids - {r["peerId"]} - linked
            check(not missing, f"round {rnd}: {p.name} never linked to the leecher(s) {sorted(missing)}; "
                               f"its peers: {r['peers']}; peer ids: "
                               + ", ".join(f"{q.name} {x['peerId'][16:24]}" for q, x in zip(leechers, done))
                               + f", seeder {sinfo['peerId'][16:24]}\n"
                               + "\n".join(f"{q.name}.log:\n{tail(q.log, 4000)}" for q in leechers + [seed]))
            got_seed += sum(x["chunksReceived"] for x in r["peers"] if x["peerId"] == sinfo["peerId"])
            got_others += sum(x["chunksReceived"] for x in r["peers"] if x["peerId"] != sinfo["peerId"])
        shares.append(got_others / max(1, got_seed + got_others))
        print(f"  round {rnd}: every leecher linked to the others; chunks from other leechers {shares[-1]:.1%}")
    median = sorted(shares)[len(shares) // 2]
    check(median >= 0.5, f"median share of chunks from other leechers {median:.1%} (need >= 50%): {shares}")


def test_seeder_killed(args, tmp, rng):
    size = 24 * MIB
    chunks = size // DEFAULT_CHUNK
    src, seeder, info = prepare(args, tmp, rng, size)
    fid = info["fileId"]
    with Swarm(args, tmp) as swarm:
        # Rate limits keep the transfer slow enough that the kill lands while
        # every leecher still lacks chunks only the others hold.
        seed, sinfo = start_seeder(swarm, seeder, fid, "seed0", "--upload-limit", 3_000_000)
        time.sleep(0.3)
        t0 = time.monotonic()
        leechers = [start_leecher(swarm, tmp, sinfo["link"], f"leecher{i}", "--seed", "--upload-limit", 1_000_000)
                    for i in range(1, 4)]

        def covered():
            union = set()
            for p in leechers:
                last = p.last()
                if last and last["chunksTotal"]:
                    union |= bits(last["have"], chunks)
            return len(union) == chunks

        wait_for("the leechers to hold every chunk between them", covered, leechers + [seed], 80)
        seed.proc.send_signal(signal.SIGKILL)
        seed.proc.wait()
        killed_at = time.monotonic() - t0
        at_kill = [p.last()["chunksHave"] for p in leechers]
        check(any(h < chunks for h in at_kill),
              f"every leecher was already complete when the seeder was killed ({at_kill}): nothing tested")
        wait_for("every leecher to complete without the seeder", lambda: all(p.complete() for p in leechers),
                 leechers, 80)
        took = time.monotonic() - t0
        done = [p.stop() for p in leechers]
        for p in leechers:
            check(p.proc.returncode == 0, f"get --seed ended with {p.why()}")
    for p, r in zip(leechers, done):
        check_done(r, p.name, fid, chunks)
        check_progress_lines(p, chunks)
        check(same_file(src, tmp / f"{p.name}.bin"), f"{p.name}'s copy differs from the original")
    print(f"  seeder killed at {killed_at:.1f}s with leechers at {at_kill}/{chunks} chunks; all complete at "
          f"{took:.1f}s, byte-identical (timeouts: {[r['timeouts'] for r in done]})")


def test_corrupt_peer(args, tmp, rng):
    size = 16 * MIB
    chunks = size // DEFAULT_CHUNK
    src, honest, info = prepare(args, tmp, rng, size)
    fid = info["fileId"]
    # The corrupter seeds a copy of the seeder's store (a second `add` of the
    # same file would give the same id as well; cli_test checks that).
    shutil.copytree(honest.home, tmp / "corrupter")
    if not args.p2pcdn_test:
        raise TestFailure("corrupt-peer needs --p2pcdn-test (the test twin)")
    bad = Cli(args.p2pcdn_test, tmp / "corrupter")
    check(fid in bad.ls(), "the copied store does not hold the file")
    with Swarm(args, tmp) as swarm:
        corrupter, cinfo = start_seeder(swarm, bad, fid, "corrupter", "--fault-corrupt")
        time.sleep(0.3)
        t0 = time.monotonic()
        leecher = start_leecher(swarm, tmp, cinfo["link"], "leecher")
        # The honest seeder joins once the leecher has met the corrupter's
        # chunks (or after 10 s; then the checks below fail).
        try:
            wait_for("a bad chunk at the leecher", lambda: (leecher.last() or {}).get("badChunks", 0) >= 1,
                     [leecher, corrupter], 10)
        except TestFailure as e:
            print(f"  note: {e}")
        met = time.monotonic() - t0
        seed, sinfo = start_seeder(swarm, honest, fid, "seeder")
        wait_for("the leecher to complete", leecher.complete, [leecher, seed], 60)
        took = time.monotonic() - t0
        r = leecher.stop()
        check(leecher.proc.returncode == 0, f"get ended with {leecher.why()}")
        cdone = corrupter.stop()
    check_done(r, "leecher", fid, chunks)
    check_progress_lines(leecher, chunks)
    check(same_file(src, tmp / "leecher.bin"), "the leecher's copy differs from the original")
    bad_peer = [x for x in r["peers"] if x["peerId"] == cinfo["peerId"]]
    print(f"  corrupt chunks met after {met:.1f}s; complete after {took:.1f}s; leecher: badChunks {r['badChunks']}, "
          f"bans {r['bans']}, wasted {r['wasted']}; corrupter as seen by the leecher: {bad_peer}; "
          f"corrupter uploaded {cdone and cdone.get('bytesUploaded')} bytes")
    check(r["badChunks"] >= 1, f"no corrupt chunk was detected (the corrupter served nothing?): {r}")
    check(r["bans"] >= 1, f"the corrupting peer was not banned: {r}")
    # The ban's GOODBYE reaches the corrupter before its link is torn down
    # (the node once destroyed a dropped link on the next loop turn).
    check(cdone is not None and cdone.get("goodbyesReceived", 0) >= 1,
          f"the banned corrupter got no GOODBYE: {cdone}")
    from_honest = sum(x["chunksReceived"] for x in r["peers"] if x["peerId"] == sinfo["peerId"])
    check(from_honest > 0, f"nothing came from the honest seeder: {r['peers']}")

SHAPED_RATE = 2_000_000  # bytes/s on the namespace's loopback (tbf)


def make_tls(tmp):
    """A CA and a certificate for localhost (and 127.0.0.1) signed by it."""
    d = tmp / "tls"
    d.mkdir()
    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=p2pcdn test CA",
         "-keyout", "ca.key", "-out", "ca.pem")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
         "-extfile", "ext.cnf", "-out", "server.pem")
    return d / "ca.pem", d / "server.pem", d / "server.key"


def test_wss(args, tmp, rng):
    import socket
    import ssl
    if not shutil.which("openssl"):
        raise TestSkipped("no openssl command to make a test certificate")
    ca, cert, key = make_tls(tmp)
    size = 4 * MIB + 999
    src, seeder, info = prepare(args, tmp, rng, size)
    leecher = Cli(args.p2pcdn, tmp / "leecher")
    procs = Processes(tmp)
    with procs:
        port = free_port()
        tracker = procs.spawn([args.p2pcdn, "tracker", "--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert),
                               "--tls-key", str(key)], "tracker")
        wait_port(port, tracker, tmp / "tracker.log")
        url = f"wss://localhost:{port}"
        # A client that does not trust the test CA is refused at the TLS handshake.
        refused = False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with ssl.create_default_context().wrap_socket(raw, server_hostname="localhost"):
                    pass
        except ssl.SSLCertVerificationError:
            refused = True
        check(refused, "a client without the test CA completed the TLS handshake")
        # Plain ws:// on the TLS port gets no WebSocket.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            raw.settimeout(5)
            try:
                answer = raw.recv(100)
            except (socket.timeout, ConnectionResetError):
                answer = b""
        check(b"101" not in answer, f"plain ws:// was upgraded on the TLS port: {answer!r}")
        p = procs.spawn([seeder.binary, "--home", seeder.home, "-q", "--json", "seed", info["fileId"], "--tracker", url,
                         "--ca", str(ca), "--loopback", "--duration", "120"], "seeder", stdout=subprocess.PIPE)
        line = p.stdout.readline().decode()
        check(line, f"seeder printed nothing ({describe_rc(p.poll() or 0)}); see seeder.log")
        link = json.loads(line)["link"]
        t0 = time.monotonic()
        r = json.loads(leecher.run("-q", "--json", "get", link, "-o", tmp / "out.bin", "--tracker", url, "--ca", str(ca),
                                   "--loopback", expect=0, timeout=120).out.strip().splitlines()[-1])
        took = time.monotonic() - t0
    check(filecmp.cmp(src, tmp / "out.bin", shallow=False), "downloaded file differs from the original")
    check(r["chunksFetched"] == r["chunks"], f"not every chunk came from the peer: {r}")
    print(f"  {size} bytes through a wss:// tracker in {took:.2f}s")


def start_turn(procs, tmp, user, password):
    """coturn on 127.0.0.1 with one long-term user; relays on 127.0.0.1 too."""
    turn = shutil.which("turnserver")
    if not turn:
        raise TestSkipped("no turnserver (Debian coturn)")
    port = free_port()
    low = 49152 + (port % 1000) * 16
    p = procs.spawn([turn, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
                     f"--min-port={low}", f"--max-port={low + 15}", "--lt-cred-mech", f"--user={user}:{password}",
                     "--realm=p2pcdn.test", "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls",
                     "--no-tcp-relay", "--fingerprint", "--verbose", "--simple-log", f"--log-file={tmp / 'coturn.log'}",
                     "--pidfile", str(tmp / "coturn.pid")], "turnserver")
    deadline = time.monotonic() + 10
    import socket
    while time.monotonic() < deadline:  # UDP: wait until it answers a STUN binding request
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(0.2)
            u.sendto(bytes.fromhex("000100002112a442") + os.urandom(12), ("127.0.0.1", port))
            try:
                if u.recv(100)[:2] == b"\x01\x01":
                    return port
            except OSError:
                pass
        check(p.poll() is None, f"turnserver exited ({describe_rc(p.returncode or 0)}); see turnserver.log")
    raise TestFailure("turnserver did not answer within 10 s")


def test_turn(args, tmp, rng):
    size = 4 * MIB + 777
    src, seeder, info = prepare(args, tmp, rng, size)
    leecher = Cli(args.p2pcdn, tmp / "leecher")
    procs = Processes(tmp)
    with procs:
        tport = start_turn(procs, tmp, "peer", "s3cret")
        ice = ["--ice", f"turn:127.0.0.1:{tport}?transport=udp", "--ice-user", "peer", "--relay-only", "--loopback"]
        with Swarm(args, tmp) as swarm:
            p = swarm.spawn([seeder.binary, "--home", seeder.home, "-q", "--json", "seed", info["fileId"], "--tracker",
                             swarm.url, "--duration", "120", *ice], "seeder", stdout=subprocess.PIPE,
                            env_extra={"P2PCDN_ICE_PASS": "s3cret"})
            line = p.stdout.readline().decode()
            check(line, f"seeder printed nothing ({describe_rc(p.poll() or 0)}); see seeder.log")
            link = json.loads(line)["link"]
            # A wrong password: TURN refuses the allocation, no relay candidate, no link.
            wrong = Cli(args.p2pcdn, tmp / "wrong")
            bad = swarm.spawn([wrong.binary, "--home", wrong.home, "-q", "--json", "get", link, "-o", tmp / "bad.bin",
                               *ice], "wrong-password", env_extra={"P2PCDN_ICE_PASS": "wrong"})
            time.sleep(8)
            check(bad.poll() is None and not (tmp / "bad.bin").exists(),
                  f"a leecher with a wrong TURN password got the file ({describe_rc(bad.poll() or 0)})")
            bad.terminate()
            bad.wait()
            t0 = time.monotonic()
            r = json.loads(leecher.run("-q", "--json", "get", link, "-o", tmp / "out.bin", *ice, expect=0, timeout=120,
                                       env={"P2PCDN_ICE_PASS": "s3cret"}).out.strip().splitlines()[-1])
            took = time.monotonic() - t0
    check(filecmp.cmp(src, tmp / "out.bin", shallow=False), "downloaded file differs from the original")
    relayed = [x for x in r["peers"] if x.get("localCandidateType") == "relay" and x.get("remoteCandidateType") == "relay"]
    check(relayed, f"no link ran relay to relay: {r['peers']}")
    # coturn itself says it relayed: an allocation (and its traffic) in its log.
    log = "".join(f.read_text(errors="replace") for f in tmp.glob("*turn*.log"))
    check("ALLOCATE processed, success" in log, f"coturn's log shows no allocation: {log[-1500:]!r}")
    check("incorrect" in log, "coturn never refused the wrong password")
    print(f"  {size} bytes relay-to-relay through coturn in {took:.2f}s ({size / 1e6 / took:.1f} MB/s)")


def in_shaped_namespace(args):
    """Runs this test again inside a new network namespace whose loopback is
    shaped to SHAPED_RATE; True if the caller is that inner run."""
    if os.environ.get("P2PCDN_SHAPED_NETNS"):
        return True
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"):
        raise TestSkipped("needs root, ip and tc (iproute2)")
    ns = f"p2pcdn-slow-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        raise TestSkipped("ip netns add was refused")
    try:
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["tc", "qdisc", "replace", "dev", "lo", "root", "tbf", "rate", f"{SHAPED_RATE * 8 // 1000}kbit",
                     "burst", "64kb", "latency", "100ms"]):
            r = subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True)
            if r.returncode != 0:
                raise TestSkipped(f"{' '.join(cmd)}: {r.stderr.strip()}")
        env = dict(os.environ, P2PCDN_SHAPED_NETNS=ns, P2PCDN_TEST_SEED=str(args.seed))
        # ctest's SIGTERM at its time-out must still delete the namespace.
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(TestFailure("terminated")))
        try:
            r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), *sys.argv[1:]],
                               env=env, timeout=130)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"the run inside namespace {ns} took over 130 s")
        check(r.returncode == 0, f"the run inside namespace {ns} failed ({describe_rc(r.returncode)})")
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    return False


def test_slow_links(args, tmp, rng):
    if not in_shaped_namespace(args):
        return
    size = 8 * MIB + 999
    chunks = (size + DEFAULT_CHUNK - 1) // DEFAULT_CHUNK
    n = 3
    sinfo, leechers, done, sdone, took = one_seeder_swarm(args, tmp, rng, size, n, 90)
    from_others = 0
    for p, r in zip(leechers, done):
        check(r["timeouts"] == 0 and r["bans"] == 0 and r["badChunks"] == 0,
              f"{p.name}: time-outs {r['timeouts']}, bans {r['bans']}, bad chunks {r['badChunks']} on a slow link")
        from_others += sum(x["chunksReceived"] for x in r["peers"] if x["peerId"] != sinfo["peerId"])
    share = from_others / (n * chunks)
    rate = n * size / took
    waits = [sdone.get("windowWaits")] + [r.get("windowWaits") for r in done]
    print(f"  {n} leechers x {size} bytes over a {SHAPED_RATE / 1e6:.0f} MB/s loopback in {took:.1f}s "
          f"({rate / 1e6:.2f} MB/s, {rate / SHAPED_RATE:.0%} of the shaped rate); chunks from other leechers "
          f"{share:.0%}; send-window waits seeder/leechers {waits}; seeder uploaded {sdone['bytesUploaded']}")
    check(share >= 0.30, f"only {share:.0%} of the leechers' chunks came from other leechers")
    check(rate >= 0.5 * SHAPED_RATE, f"the swarm moved {rate / 1e6:.2f} MB/s over a {SHAPED_RATE / 1e6:.0f} MB/s link")


if __name__ == "__main__":
    sys.exit(Harness({"transfer": test_transfer, "resume": test_resume, "reconnect": test_reconnect,
                      "options": test_options, "many": test_many, "flash-crowd": test_flash_crowd, "seeder-killed": test_seeder_killed,
                      "corrupt-peer": test_corrupt_peer, "slow-links": test_slow_links, "wss": test_wss,
                      "turn": test_turn},
                     extra_args=("--tracker-cmd", "--p2pcdn-test")).main())
