#!/usr/bin/env python3
"""A real browser talks to a native peer: headless Chromium (puppeteer-core)
opens a WebRTC data channel to a `p2pcdn seed` process through the tracker's
signaling and speaks wire protocol v1 both ways.

  browser_test.py --p2pcdn BIN [--tracker-cmd "CMD {port}"] [--p2pcdn-tracker BIN] [--chromium PATH]
                  [--node PATH] [--npm PATH] [--size BYTES] [--seed N] [--runs N]
                  [--chromium-arg=FLAG]...

Runs a tracker on a free port ({port}, {p2pcdn} and {p2pcdn_tracker} in
--tracker-cmd are replaced), adds a random file (1 MiB by default) to a fresh store and seeds it
with the native peer on loopback, then runs interop.mjs in Chromium. Checks:
  - the seeder's HANDSHAKE names the file, its BITFIELD has every chunk (or,
    super-seeding, none and then HAVEs), and
    the peer behind the channel is the seeder (tracker and wire peer ids);
  - the manifest arrives in MANIFEST_PART(s), starts with "P2PM", and its size,
    chunk size and chunk count describe the original file;
  - chunk 0 arrives in PIECE(s) and its SHA-256 (crypto.subtle, in the page)
    is the SHA-256 of the first min(chunk size, file size) bytes of the file;
  - messages went both ways; the page's GOODBYE ends the conversation;
  - negative: a HANDSHAKE with another file id gets GOODBYE wrong-file (3).
  - with b3sum installed, also: the info hash is BLAKE3-derive_key("p2pcdn
    2026-11-24 swarm key v1", fileId)[0..20) and the manifest's hash of chunk 0
    is its BLAKE3.

Installs tests/browser/node_modules with `npm ci` when it is missing or out of
date (never downloads a browser). Exits 77 (ctest SKIP_RETURN_CODE) when
Chromium or Node is not installed. The temporary folder is removed afterwards
(kept with P2PCDN_KEEP_TMP=1).
"""

import argparse
import fcntl
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from itest import (KIB, MIB, Cli, Processes, TestFailure, check, describe_rc, free_port, tail,  # noqa: E402
                   wait_port, write_file)

SKIP = 77
SWARM_KEY_CONTEXT = "p2pcdn 2026-11-24 swarm key v1"
GOODBYE_WRONG_FILE = 3
CAP_HAS_MANIFEST = 1 << 2


def ensure_node_modules(npm, timeout=300):
    """`npm ci` in tests/browser when node_modules does not hold the locked
    puppeteer-core. Quick (one file read) when it does. Serialized with a lock
    so that parallel runs do not install over each other."""
    lock = json.loads((HERE / "package-lock.json").read_text())
    want = lock["packages"]["node_modules/puppeteer-core"]["version"]
    installed = HERE / "node_modules" / "puppeteer-core" / "package.json"

    def have():
        try:
            return json.loads(installed.read_text()).get("version") == want
        except (OSError, ValueError):
            return False

    if have():
        return False
    with open(Path(tempfile.gettempdir()) / "p2pcdn-browser-npm.lock", "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        if have():
            return False
        env = dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1", PUPPETEER_SKIP_CHROME_DOWNLOAD="1",
                   npm_config_audit="false", npm_config_fund="false", npm_config_update_notifier="false")
        print(f"  npm ci in {HERE} (puppeteer-core {want})", flush=True)
        try:
            p = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, env=env, capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"npm ci did not finish within {timeout}s")
        check(p.returncode == 0, f"npm ci failed ({describe_rc(p.returncode)}):\n"
                                 f"{p.stderr.decode('utf-8', 'replace')[-3000:]}")
        check(have(), f"npm ci finished but {installed} is not puppeteer-core {want}")
    return True


def b3sum_derive(b3sum, context, data, length):
    p = subprocess.run([b3sum, "--derive-key", context, "--length", str(length), "--no-names", "--raw"],
                       input=data, capture_output=True, timeout=30)
    check(p.returncode == 0, f"b3sum failed: {p.stderr.decode('utf-8', 'replace')}")
    return p.stdout.hex()


def b3sum_hash(b3sum, data):
    p = subprocess.run([b3sum, "--no-names"], input=data, capture_output=True, timeout=30)
    check(p.returncode == 0, f"b3sum failed: {p.stderr.decode('utf-8', 'replace')}")
    return p.stdout.decode().split()[0]


def tracker_command(args, port):
    cmd = args.tracker_cmd
    if cmd.startswith("{p2pcdn} tracker") and args.p2pcdn_tracker:
        # Until the tracker moves under `p2pcdn tracker`, use the standalone binary.
        probe = subprocess.run([args.p2pcdn, "--help"], capture_output=True, timeout=30)
        if not re.search(rb"^\s+tracker\s", probe.stdout, re.M):
            cmd = "{p2pcdn_tracker}" + cmd[len("{p2pcdn} tracker"):]
            print(f"  p2pcdn has no tracker subcommand; tracker: {cmd}", flush=True)
    if "{p2pcdn_tracker}" in cmd:
        check(args.p2pcdn_tracker, f"--tracker-cmd {cmd!r} needs --p2pcdn-tracker")
        cmd = cmd.replace("{p2pcdn_tracker}", args.p2pcdn_tracker)
    return shlex.split(cmd.replace("{port}", str(port)).replace("{p2pcdn}", args.p2pcdn))


def run_once(args, tmp, rng, run_no):
    size = args.size
    data = rng.randbytes(size)
    src = write_file(tmp / "input.bin", data)
    cli = Cli(args.p2pcdn, tmp / "seeder")
    info = cli.add(src)
    fid = info["fileId"]

    with Processes(tmp) as procs:
        port = free_port()
        tracker = procs.spawn(tracker_command(args, port), "tracker")
        wait_port(port, tracker, tmp / "tracker.log")
        url = f"ws://127.0.0.1:{port}"

        t0 = time.monotonic()
        seeder = procs.spawn([cli.binary, "--home", cli.home, "-q", "--json", "seed", fid, "--tracker", url,
                              "--loopback", "--duration", "120"], "seeder", stdout=subprocess.PIPE)
        line = seeder.stdout.readline().decode()
        check(line, f"seeder printed nothing ({describe_rc(seeder.poll() or 0)}); seeder.log:\n"
                    f"{tail(tmp / 'seeder.log')}")
        seed = json.loads(line)
        seed_ms = (time.monotonic() - t0) * 1000
        check(seed.get("fileId") == fid, f"seeder serves {seed.get('fileId')}, not {fid}")
        info_hash = seed.get("infoHash", "")
        check(re.fullmatch(r"[0-9a-f]{40}", info_hash or ""), f"seed --json lacks a 40-hex infoHash: {seed}")
        check(re.fullmatch(r"[0-9a-f]{40}", seed.get("peerId", "")), f"seed --json lacks a 40-hex peerId: {seed}")
        if args.b3sum:
            want = b3sum_derive(args.b3sum, SWARM_KEY_CONTEXT, bytes.fromhex(fid), 20)
            check(info_hash == want, f"infoHash {info_hash} is not BLAKE3-derive_key(swarm key, fileId) = {want}")

        cmd = [args.node, str(HERE / "interop.mjs"), "--tracker", url, "--info-hash", info_hash, "--file-id", fid,
               "--chromium", args.chromium, "--timeout-ms", str(args.step_timeout_ms)]
        cmd += [f"--chromium-arg={a}" for a in args.chromium_arg]
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=args.step_timeout_ms / 1000 * 6 + 60)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"interop.mjs did not finish; seeder.log:\n{tail(tmp / 'seeder.log')}")
        browser_ms = (time.monotonic() - t0) * 1000
        stderr = p.stderr.decode("utf-8", "replace")
        (tmp / "interop.log").write_text(stderr)
        lines = p.stdout.decode("utf-8", "replace").strip().splitlines()
        try:
            r = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            raise TestFailure(f"interop.mjs ({describe_rc(p.returncode)}) printed no JSON result:\n{stderr[-3000:]}")
        if args.verbose:
            print(json.dumps(r, indent=1))
        if p.returncode != 0 or not r.get("ok"):
            raise TestFailure(f"browser side failed at {r.get('stage')!r}: {r.get('error')}\n"
                              f"result: {json.dumps({k: v for k, v in r.items() if k != 'chromiumArgs'})[:4000]}\n"
                              f"interop.mjs stderr:\n{stderr[-2000:]}\nseeder.log:\n{tail(tmp / 'seeder.log')}\n"
                              f"tracker.log:\n{tail(tmp / 'tracker.log', 1500)}")

    check_result(args, r, data, seed)
    pos, neg = r["positive"], r.get("negative")
    t = pos["timings"]
    print(f"  run {run_no}: {r['chromium']}; launch {r['launchMs']} ms; in the page: tracker "
          f"{t['trackerOpen']:.0f} ms, ICE gathered {t['iceGathered']:.0f} ms, answer {t['answer']:.0f} ms, "
          f"channel open {t['channelOpen']:.0f} ms, handshake {t['handshake']:.0f} ms, manifest {t['manifest']:.0f} ms, "
          f"chunk 0 {t['chunk']:.0f} ms ({pos['chunk']['length']} bytes in {pos['chunk']['pieces']} pieces, "
          f"{pos['chunkMs']:.0f} ms); messages {pos['counts']['sent']} sent / {pos['counts']['received']} received; "
          f"pair {pos.get('selectedPair')}; native closed {pos.get('closedByPeerMs')} ms after GOODBYE"
          + (f"; wrong file -> GOODBYE {neg['goodbye']['reason']} {neg['goodbye']['text']!r}" if neg else "")
          + f"; seeder ready {seed_ms:.0f} ms, browser process {browser_ms:.0f} ms", flush=True)


def check_result(args, r, data, seed):
    size = len(data)
    pos = r["positive"]
    check(r.get("secureContext") is True, "the page is not a secure context")
    # The peer behind the channel is our seeder.
    check(pos.get("trackerPeerId") == seed["peerId"],
          f"the answer came from tracker peer {pos.get('trackerPeerId')}, not the seeder {seed['peerId']}")
    check(pos["remote"]["wirePeerId"] == seed["peerId"],
          f"the HANDSHAKE peer id {pos['remote']['wirePeerId']} is not the seeder's {seed['peerId']}")
    check(pos["remote"]["caps"] & CAP_HAS_MANIFEST, f"seeder lacks has-manifest: caps {pos['remote']['caps']}")
    # Manifest.
    m = pos["manifest"]
    check(pos["manifestMagic"] == "P2PM", f"manifest starts with {pos['manifestMagic']!r}")
    check(m["size"] == size, f"manifest size {m['size']}, file {size}")
    check(m["flags"] == 0, f"manifest flags {m['flags']} for a plain file")
    chunk_size = m["chunkSize"]
    check(chunk_size == 256 * KIB, f"manifest chunk size {chunk_size}, expected the default {256 * KIB}")
    chunks = -(-size // chunk_size)
    check(m["chunkCount"] == chunks, f"manifest has {m['chunkCount']} chunks, expected {chunks}")
    check(pos["manifestLength"] == m["expectedLength"], f"manifest length {pos['manifestLength']} vs {m}")
    check(pos["manifestParts"] >= 1, "no MANIFEST_PART")
    # The publisher super-seeds: an empty BITFIELD, then HAVEs for the chunks
    # it wants this peer to take (a plain seeder: a full BITFIELD).
    haves = set(pos.get("haves", []))
    check(pos["bitfield"]["count"] == chunks, f"seeder's BITFIELD {pos['bitfield']}, expected {chunks} bits")
    check(pos["bitfield"]["set"] == chunks or (pos["bitfield"]["set"] == 0 and haves and max(haves) < chunks),
          f"seeder's BITFIELD {pos['bitfield']} and HAVEs {sorted(haves)}: expected all chunks, or none and "
          f"super-seeding HAVEs")
    # Chunk 0.
    first = data[:min(chunk_size, size)]
    c = pos["chunk"]
    check(c["length"] == len(first), f"chunk 0 is {c['length']} bytes, expected {len(first)}")
    want = hashlib.sha256(first).hexdigest()
    check(c["sha256"] == want, f"chunk 0 SHA-256 in the browser {c['sha256']}, original {want}")
    if args.b3sum:
        b3 = b3sum_hash(args.b3sum, first)
        check(c["chunkHash"] == b3, f"manifest's hash of chunk 0 {c['chunkHash']}, BLAKE3 of the bytes {b3}")
    # Both ways: HANDSHAKE, MANIFEST_REQUEST, REQUEST, GOODBYE out; HANDSHAKE,
    # BITFIELD, the parts and the pieces in.
    counts = pos["counts"]
    check(counts["sent"] == 4, f"the page sent {counts['sent']} messages, expected 4")
    got = 2 + pos["manifestParts"] + c["pieces"]
    check(counts["received"] >= got, f"the page received {counts['received']} messages, expected at least {got}")
    check(counts["bytesReceived"] >= len(first), f"received only {counts['bytesReceived']} bytes")
    # Negative case.
    neg = r.get("negative")
    if neg is not None:
        check(neg.get("goodbye", {}).get("reason") == GOODBYE_WRONG_FILE,
              f"a HANDSHAKE with another file id got {neg.get('received')} {neg.get('goodbye')}, "
              f"expected GOODBYE wrong-file ({GOODBYE_WRONG_FILE})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--tracker-cmd", default="{p2pcdn} tracker --listen 127.0.0.1:{port}",
                    help="{port}, {p2pcdn} and {p2pcdn_tracker} are replaced")
    ap.add_argument("--p2pcdn-tracker", default=None, help="the standalone tracker binary, for {p2pcdn_tracker}")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--npm", default=shutil.which("npm") or "npm")
    ap.add_argument("--chromium-arg", action="append", default=[], help="extra Chromium flag (repeatable)")
    ap.add_argument("--size", type=int, default=1 * MIB)
    ap.add_argument("--runs", type=int, default=1, help="repeat the whole test N times (fresh processes)")
    ap.add_argument("--step-timeout-ms", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    for what, path in (("Chromium", args.chromium), ("Node", args.node)):
        if not (shutil.which(path) or (os.path.isfile(path) and os.access(path, os.X_OK))):
            print(f"SKIP: {what} not found ({path})", flush=True)
            return SKIP
    args.b3sum = shutil.which("b3sum")

    seed = args.seed
    if seed is None:
        seed = int(os.environ.get("P2PCDN_TEST_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="p2pcdn-browser-"))
    print(f"[browser_interop] seed {seed} (rerun with --seed {seed}), folder {tmp}", flush=True)
    t0 = time.monotonic()
    ok = False
    try:
        t = time.monotonic()
        if ensure_node_modules(args.npm):
            print(f"  installed node_modules in {time.monotonic() - t:.1f}s", flush=True)
        for i in range(1, args.runs + 1):
            run_tmp = tmp / f"run{i}"
            run_tmp.mkdir()
            run_once(args, run_tmp, rng, i)
        ok = True
    except TestFailure as e:
        print(f"FAIL [browser_interop]: {e}", file=sys.stderr, flush=True)
    finally:
        if os.environ.get("P2PCDN_KEEP_TMP") == "1":
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"[browser_interop] {'passed' if ok else 'FAILED'} in {time.monotonic() - t0:.1f}s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
