#!/usr/bin/env python3
"""A real browser talks to a native peer: headless Chromium (puppeteer-core)
opens a WebRTC data channel to a `p2pcdn seed` process through the tracker's
signaling and speaks wire protocol v1 both ways.

  browser_test.py --p2pcdn BIN [--tracker-cmd "CMD {port}"] [--p2pcdn-tracker BIN] [--chromium PATH]
                  [--node PATH] [--node-modules DIR] [--b3sum PATH] [--size BYTES] [--seed N]
                  [--runs N] [--chromium-arg=FLAG]...

First moves itself into a new network namespace that holds only loopback
(unshare(CLONE_NEWNET), `ip link set lo up`, `ip route add default dev lo src
127.0.0.1`), so that the tracker, the native peer and Chromium, all started
from here, cannot bind or send anywhere else (Chromium would otherwise publish
mDNS names and gather candidates on the machine's external interface); it
checks that the namespace holds only lo. Chromium runs with
--allow-loopback-in-peer-connection and camera/microphone granted to the
page, so that its offer carries real loopback host candidates.

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
  - negative (always run): a HANDSHAKE with another file id gets GOODBYE
    wrong-file (3);
  - the info hash is BLAKE3-derive_key("p2pcdn 2026-11-24 swarm key v1",
    fileId)[0..20) and the manifest's hash of chunk 0 is its BLAKE3 (b3sum,
    which scripts/install-deps.sh installs: without it the test fails);
  - every ICE candidate in the offers and answers and both ends of the
    selected pair are loopback addresses (no mDNS .local name).

puppeteer-core comes from --node-modules (default build/npm/node_modules, which
scripts/npm-deps.sh installs; this test never runs npm). Exits 77 (ctest
SKIP_RETURN_CODE, "[browser_interop] SKIPPED: <why>") when Chromium, Node or that
puppeteer-core is missing, or when no network namespace can be made (not root,
no `ip`, unshare refused); scripts/test.sh counts a skip as a failure under
CI=true. The temporary folder is removed afterwards (kept with P2PCDN_KEEP_TMP=1).
"""

import argparse
import ctypes
import hashlib
import ipaddress
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
CLONE_NEWNET = 0x40000000
SWARM_KEY_CONTEXT = "p2pcdn 2026-11-24 swarm key v1"
GOODBYE_WRONG_FILE = 3
CAP_HAS_MANIFEST = 1 << 2


class Skipped(Exception):
    """This machine cannot run the test: exit 77 with the reason."""


def check_node_modules(node_modules):
    """puppeteer-core at the version package-lock.json locks must be in
    node_modules (scripts/npm-deps.sh puts it there); returns that version."""
    lock = json.loads((HERE / "package-lock.json").read_text())
    want = lock["packages"]["node_modules/puppeteer-core"]["version"]
    installed = Path(node_modules) / "puppeteer-core" / "package.json"
    try:
        have = json.loads(installed.read_text()).get("version")
    except (OSError, ValueError):
        raise Skipped(f"puppeteer-core is not installed in {node_modules} (run scripts/npm-deps.sh)")
    if have != want:
        raise Skipped(f"{installed} is puppeteer-core {have}, package-lock.json locks {want} "
                      f"(run scripts/npm-deps.sh)")
    return have


def ip_json(ip, *what):
    p = subprocess.run([ip, "-j", *what], capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, f"ip -j {' '.join(what)}: {p.stderr.strip()}")
    return json.loads(p.stdout or "[]")


def enter_loopback_namespace():
    """Moves this process, and so every process it starts, into a new network
    namespace (anonymous: it ends with its last process), brings up lo, adds
    the default route on lo that Firefox needs to gather and that keeps every
    destination on lo, and checks that lo is all there is. Returns a summary."""
    if os.geteuid() != 0:
        raise Skipped("needs root to make a network namespace that holds only loopback (the browser must not "
                      "run outside one)")
    ip = shutil.which("ip")
    if not ip:
        raise Skipped("needs ip (iproute2; scripts/install-deps.sh installs it) to set up loopback in the "
                      "test's network namespace")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise Skipped(f"unshare(CLONE_NEWNET) was refused: {os.strerror(ctypes.get_errno())}")
    for cmd in (["link", "set", "lo", "up"], ["route", "add", "default", "dev", "lo", "src", "127.0.0.1"]):
        p = subprocess.run([ip, *cmd], capture_output=True, text=True, timeout=30)
        check(p.returncode == 0, f"in the test's network namespace, ip {' '.join(cmd)}: {p.stderr.strip()}")
    return check_only_loopback(ip)


def check_only_loopback(ip):
    links = [link["ifname"] for link in ip_json(ip, "link", "show")]
    check(links == ["lo"], f"the test's network namespace holds {links}, not only lo")
    addrs = [f"{a['local']}/{a['prefixlen']}" for link in ip_json(ip, "addr", "show") for a in link.get("addr_info", [])]
    check(addrs and all(ipaddress.ip_address(a.split("/")[0]).is_loopback for a in addrs),
          f"the test's network namespace has addresses {addrs}, not only loopback ones")
    routes = [f"{r['dst']} dev {r.get('dev')}" for r in ip_json(ip, "route", "show")]
    check(all(r.endswith(" dev lo") for r in routes), f"routes off lo in the test's network namespace: {routes}")
    return f"links {links}, addresses {addrs}, routes {routes}"


def lo_bytes():
    """Bytes received on lo so far (/proc/net/dev of this namespace), and the
    interfaces listed there."""
    names, rx = [], 0
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name, fields = line.split(":", 1)
        names.append(name.strip())
        if name.strip() == "lo":
            rx = int(fields.split()[0])
    return rx, names


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
        want = b3sum_derive(args.b3sum, SWARM_KEY_CONTEXT, bytes.fromhex(fid), 20)
        check(info_hash == want, f"infoHash {info_hash} is not BLAKE3-derive_key(swarm key, fileId) = {want}")

        cmd = [args.node, str(HERE / "interop.mjs"), "--tracker", url, "--info-hash", info_hash, "--file-id", fid,
               "--node-modules", args.node_modules, "--chromium", args.chromium,
               "--timeout-ms", str(args.step_timeout_ms)]
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
    pos, neg = r["positive"], r["negative"]
    t = pos["timings"]
    print(f"  run {run_no}: {r['chromium']}; launch {r['launchMs']} ms; in the page: tracker "
          f"{t['trackerOpen']:.0f} ms, ICE gathered {t['iceGathered']:.0f} ms, answer {t['answer']:.0f} ms, "
          f"channel open {t['channelOpen']:.0f} ms, handshake {t['handshake']:.0f} ms, manifest {t['manifest']:.0f} ms, "
          f"chunk 0 {t['chunk']:.0f} ms ({pos['chunk']['length']} bytes in {pos['chunk']['pieces']} pieces, "
          f"{pos['chunkMs']:.0f} ms); messages {pos['counts']['sent']} sent / {pos['counts']['received']} received; "
          f"pair {pos.get('selectedPair')}; native closed {pos.get('closedByPeerMs')} ms after GOODBYE"
          + f"; wrong file -> GOODBYE {neg['goodbye']['reason']} {neg['goodbye']['text']!r}"
          + f"; offer candidates {[candidate_address(c) for c in pos['offerCandidates']]}, answer "
          f"{[candidate_address(c) for c in pos['answerCandidates']]}"
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
    b3 = b3sum_hash(args.b3sum, first)
    check(c["chunkHash"] == b3, f"manifest's hash of chunk 0 {c['chunkHash']}, BLAKE3 of the bytes {b3}")
    # Both ways: AUTH_HELLO, AUTH_PROOF, HANDSHAKE, MANIFEST_REQUEST, REQUEST,
    # GOODBYE out; AUTH_HELLO, AUTH_PROOF, HANDSHAKE, BITFIELD, the parts and the pieces in.
    counts = pos["counts"]
    check(counts["sent"] == 6, f"the page sent {counts['sent']} messages, expected 6")
    got = 4 + pos["manifestParts"] + c["pieces"]
    check(counts["received"] >= got, f"the page received {counts['received']} messages, expected at least {got}")
    check(counts["bytesReceived"] >= len(first), f"received only {counts['bytesReceived']} bytes")
    # Negative case: always run.
    neg = r.get("negative")
    check(isinstance(neg, dict), f"interop.mjs reported no negative (wrong-file) case: {sorted(r)}")
    check(neg.get("goodbye", {}).get("reason") == GOODBYE_WRONG_FILE,
          f"a HANDSHAKE with another file id got {neg.get('received')} {neg.get('goodbye')}, "
          f"expected GOODBYE wrong-file ({GOODBYE_WRONG_FILE})")
    # Loopback only: every candidate both sides offered, and the pair in use.
    for case, x in (("positive", pos), ("negative", neg)):
        for side in ("offerCandidates", "answerCandidates"):
            cands = x.get(side) or []
            check(cands, f"{case}: no ICE candidate in the {side[:-10]}")
            for line in cands:
                check(is_loopback(candidate_address(line)), f"{case}: non-loopback candidate in the {side[:-10]}: {line}")
    pair = pos.get("selectedPair") or {}
    for end in ("local", "remote"):
        addr = pair.get(end, "?").split(" ")[-1].rsplit(":", 1)[0].strip("[]")
        check(is_loopback(addr), f"the selected candidate pair's {end} end is not loopback: {pair}")


def candidate_address(line):
    """a=candidate:<foundation> <component> <proto> <priority> <address> <port> typ <type> ..."""
    f = line.split()
    return f[4] if len(f) > 4 else line


def is_loopback(addr):
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:  # an mDNS name (<uuid>.local) or garbage
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--tracker-cmd", default="{p2pcdn} tracker --listen 127.0.0.1:{port}",
                    help="{port}, {p2pcdn} and {p2pcdn_tracker} are replaced")
    ap.add_argument("--p2pcdn-tracker", default=None, help="the standalone tracker binary, for {p2pcdn_tracker}")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--node-modules", default=str(HERE.parent.parent / "build" / "npm" / "node_modules"),
                    help="node_modules holding puppeteer-core (scripts/npm-deps.sh installs it; default %(default)s)")
    ap.add_argument("--b3sum", default=shutil.which("b3sum") or "b3sum")
    ap.add_argument("--chromium-arg", action="append", default=[], help="extra Chromium flag (repeatable)")
    ap.add_argument("--size", type=int, default=1 * MIB)
    ap.add_argument("--runs", type=int, default=1, help="repeat the whole test N times (fresh processes)")
    ap.add_argument("--step-timeout-ms", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    try:
        for what, path in (("Chromium", args.chromium), ("Node", args.node)):
            if not executable(path):
                raise Skipped(f"{what} not found ({path}; scripts/install-deps.sh installs it)")
        puppeteer = check_node_modules(args.node_modules)
        if not executable(args.b3sum):
            # Not a skip: the BLAKE3 checks are part of this test.
            print(f"FAIL [browser_interop]: b3sum not found ({args.b3sum}; scripts/install-deps.sh installs it): "
                  f"the swarm key and chunk hash checks need it", file=sys.stderr, flush=True)
            return 1
        netns = enter_loopback_namespace()
    except Skipped as e:
        print(f"[browser_interop] SKIPPED: {e}", flush=True)
        return SKIP
    except TestFailure as e:
        print(f"FAIL [browser_interop]: {e}", file=sys.stderr, flush=True)
        return 1
    print(f"[browser_interop] network namespace of its own: {netns}; puppeteer-core {puppeteer} from "
          f"{args.node_modules}", flush=True)

    seed = args.seed
    if seed is None:
        seed = int(os.environ.get("P2PCDN_TEST_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="p2pcdn-browser-"))
    print(f"[browser_interop] seed {seed} (rerun with --seed {seed}), folder {tmp}", flush=True)
    t0 = time.monotonic()
    ok = False
    try:
        for i in range(1, args.runs + 1):
            run_tmp = tmp / f"run{i}"
            run_tmp.mkdir()
            run_once(args, run_tmp, rng, i)
        rx, names = lo_bytes()
        check(names == ["lo"], f"after the run, the namespace lists interfaces {names}")
        check_only_loopback(shutil.which("ip"))
        print(f"  after the run the namespace still holds only lo, which carried {rx} bytes", flush=True)
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


def executable(path):
    return bool(shutil.which(path) or (os.path.isfile(path) and os.access(path, os.X_OK)))


if __name__ == "__main__":
    sys.exit(main())
