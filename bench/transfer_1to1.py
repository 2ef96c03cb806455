#!/usr/bin/env python3
"""One seeder -> one leecher over WebRTC on 127.0.0.1, side by side in one run:

  ours  tracker + `p2pcdn seed` + `p2pcdn get`, three separate processes
  raw   bench_raw_datachannel run --bytes N (libwebrtc data channel, no protocol)
  wt    WebTorrent 1->1 from the shared peers kit (run-wt.sh: ws tracker, node-datachannel)

Every round runs the three in one order, the next round in the reverse order,
each after a `sync` and a wait for a quiet machine (the kit's rule: < 10 % busy
over two 1 s samples, at most --quiet-max s). Figures are medians over the
clean rounds (all rounds if none is clean); MB = 1e6 bytes, GB = 1e9 bytes.

Definitions (ours)
  first chunk     firstChunkSeconds printed by `get`: from the start of the get
                  command (after exec and argument parsing) to the first chunk
                  whose BLAKE3 matched the manifest and was stored.
                  "+exec" adds the median wall time of `p2pcdn --help` (exec,
                  dynamic linking, static init) measured in the same run.
  transfer MB/s   bytesDownloaded / (completeSeconds - firstChunkSeconds): the
                  steady phase, the same shape as the kit's 1st-byte->done and
                  the raw bench's first->last message.
  e2e MB/s        size / (launch of the get process -> its exit), measured by
                  this script: includes exec, tracker, ICE/DTLS/SCTP set-up,
                  manifest, transfer, verify+store, and writing -o OUT. This is
                  the kit's e2e definition for wt (launch -> last leecher exits).
  complete MB/s   size / completeSeconds (launch -> last chunk stored, no export).
  CPU s / GB      (seeder + leecher user+sys CPU) / (size / 1e9); tracker apart.
                  Seeder CPU covers its whole life: start, announce, serving,
                  idle until stopped. Its `add` runs before, untimed.
  peak RSS        GNU time -v "Maximum resident set size" of each process.
The seeder runs `seed <fileId> --duration LIMIT` (a safety net); once the
leecher has exited the script sends it SIGTERM, which takes the same clean
stop path as --duration, so /usr/bin/time reports it.
Timing starts only when the tracker knows the seeder (HTTP scrape shows
complete >= 1; for a tracker without scrape, a fixed --settle wait).

usage: bench/transfer_1to1.py [--size-mib 256] [--rounds 3] [--big-mib 1024] [--perf]
         [--binary build/release/src/cli/p2pcdn] [--raw-binary .../bench_raw_datachannel]
         [--tracker-cmd auto|'CMD with {port} and {bin}'] [--wt-kit DIR] [--json-out F]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LIMIT = 300  # s, one transfer


# ---------------------------------------------------------------- machine ----
def cpu_secs():
    """(busy, total) CPU seconds over all cores since boot, as lib/common.sh cpu_secs."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return busy / hz, (busy + v[3] + v[4]) / hz


def busy_frac(secs):
    b0, t0 = cpu_secs()
    time.sleep(secs)
    b1, t1 = cpu_secs()
    return (b1 - b0) / max(t1 - t0, 1e-9)


def wait_quiet(max_s, thr=0.10):
    """The kit's wait_quiet: < thr busy over two consecutive 1 s samples, at most max_s. Returns the last fraction."""
    start, ok, f = time.monotonic(), 0, 1.0
    while True:
        f = busy_frac(1.0)
        ok = ok + 1 if f < thr else 0
        if ok >= 2 or time.monotonic() - start >= max_s:
            return f


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def proc_cpu():
    """{pid: (ppid, comm, user+sys CPU s)} for every process now (not its reaped children: a parent that reaps
    a long-lived child would look like a spike; processes that start and end inside a window are missed)."""
    hz, out = os.sysconf("SC_CLK_TCK"), {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        v = st[st.rindex(")") + 2:].split()
        out[int(d)] = (int(v[1]), comm, sum(int(x) for x in v[11:13]) / hz)
    return out


def top_foreign(before, after, n=3):
    """The n processes outside this script's tree that used the most CPU between two proc_cpu() snapshots."""
    me = os.getpid()

    def ours(pid, snap):
        seen = 0
        while pid > 1 and seen < 64:
            if pid == me:
                return True
            pid = snap.get(pid, (0,))[0]
            seen += 1
        return False
    rows = []
    for pid, (_, comm, c) in after.items():
        if ours(pid, after) or ours(pid, before):
            continue
        d = c - before.get(pid, (0, comm, 0.0))[2]
        if d >= 0.05:
            rows.append((d, f"{comm}({pid}) {d:.1f}s"))
    return [x for _, x in sorted(rows, reverse=True)[:n]]


def accounting(pre, j0, j1, own_cpu):
    cap = j1[1] - j0[1]
    foreign = (j1[0] - j0[0]) - own_cpu
    return {"pre_busy": round(pre, 3), "foreign_cpu_s": round(foreign, 2), "window_cpu_capacity_s": round(cap, 2),
            "clean": pre < 0.5 and foreign <= 0.10 * cap + 0.5}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def parse_time_v(path):
    """GNU time -v output -> {cpu_s, wall_s, rss_mib, exit}"""
    try:
        s = open(path).read()
    except OSError:
        return None

    def g(k):
        m = re.search(re.escape(k) + r": (.*)", s)
        return m.group(1).strip() if m else None
    u, sy = g("User time (seconds)"), g("System time (seconds)")
    if u is None:
        return None
    w = g("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(w.split(":"))))
    return {"cpu_s": float(u) + float(sy), "user_s": float(u), "sys_s": float(sy), "wall_s": wall,
            "rss_mib": int(g("Maximum resident set size (kbytes)")) / 1024, "exit": int(g("Exit status") or -1)}


class Proc:
    """cmd under /usr/bin/time -v; stop() sends SIGTERM to the measured child, not to time."""
    live = []

    def __init__(self, cmd, d, name, prefix=(), env=None):
        self.name, self.d = name, d
        self.tf = os.path.join(d, name + ".time")
        self.out = os.path.join(d, name + ".out")
        self.err = os.path.join(d, name + ".err")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(["/usr/bin/time", "-v", "-o", self.tf] + list(prefix) + list(cmd),
                                  stdout=open(self.out, "wb"), stderr=open(self.err, "wb"), env=env)
        Proc.live.append(self)

    def child(self):
        """The measured process: the leaf under time (and perf, when profiling)."""
        pid, leaf = self.p.pid, None
        while True:
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    kids = f.read().split()
            except OSError:
                return leaf
            if not kids:
                return leaf
            pid = leaf = int(kids[0])

    def wait(self, timeout=None):
        rc = self.p.wait(timeout)
        self.t1 = time.monotonic()
        if self in Proc.live:
            Proc.live.remove(self)
        return rc

    def stop(self, timeout=15):
        if self.p.poll() is None:
            c = self.child()
            if c:
                try:
                    os.kill(c, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                c = self.child()
                if c:
                    os.kill(c, signal.SIGKILL)
        return self.wait()

    def stats(self):
        return parse_time_v(self.tf)

    def text(self, which="out"):
        with open(self.out if which == "out" else self.err, errors="replace") as f:
            return f.read()


def stop_all():
    for p in list(Proc.live):
        try:
            p.stop(5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


# ---------------------------------------------------------------- tracker ----
def pick_tracker(arg, binary):
    if arg != "auto":
        return arg
    r = subprocess.run([binary, "--help"], capture_output=True, text=True)
    if re.search(r"^\s+tracker\s", r.stdout, re.M):
        return "{bin} tracker --listen 127.0.0.1:{port}"
    sep = os.path.join(os.path.dirname(os.path.dirname(binary)), "tracker", "p2pcdn_tracker")
    if os.access(sep, os.X_OK):
        return sep + " --listen 127.0.0.1:{port}"
    return "node /tmp/bt/tracker.mjs {port}"


def wait_port(port, proc, limit=20):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.p.poll() is not None:
            raise RuntimeError(f"tracker exited: {proc.text('err')[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("tracker did not listen")


def wait_seed_known(port, info_hash_hex, settle, limit=10):
    """Polls the tracker's HTTP scrape until it counts a seeder; 'sleep' fallback if it has no scrape."""
    q = "info_hash=" + urllib.parse.quote_from_bytes(bytes.fromhex(info_hash_hex))
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/scrape?{q}", timeout=1).read()
        except Exception:  # noqa: BLE001 - no HTTP scrape on this tracker
            break
        m = re.search(rb"8:completei(\d+)e", body)
        if not m:
            break
        if int(m.group(1)) >= 1:
            return "scrape"
        time.sleep(0.05)
    time.sleep(settle)
    return f"sleep {settle}s"


# ---------------------------------------------------------------- systems ----
def run_ours(a, home_seed, file_id, size, src, work, tag, perf_dir=None, store_delay_ms=0):
    system = "ours" if not store_delay_ms else "slowstore"
    env = dict(os.environ, P2PCDN_STORE_DELAY_MS=str(store_delay_ms)) if store_delay_ms else None
    d = os.path.join(work, system, tag)
    os.makedirs(d)
    leech_home, out = os.path.join(d, "leech-home"), os.path.join(d, "out.bin")
    # The slow store is the test twin's (P2PCDN_STORE_DELAY_MS); p2pcdn has no faults.
    g = [a.test_binary if store_delay_ms else a.binary] + (["--durability", a.durability] if a.durability else [])
    subprocess.run(["sync"], check=True)
    pre = wait_quiet(a.quiet_max)
    load = loadavg()
    p0 = proc_cpu()
    j0 = cpu_secs()
    port = free_port()
    tcmd = a.tracker_cmd.format(port=port, bin=a.binary).split()
    tr = Proc(tcmd, d, "tracker")
    seed = leech = None
    try:
        wait_port(port, tr)
        sp = ("perf", "record", "-g", "-o", os.path.join(perf_dir, "seed.perf.data"), "--") if perf_dir else ()
        seed = Proc(g + ["--home", home_seed, "-q", "--json", "seed", file_id, "--tracker",
                         f"ws://127.0.0.1:{port}", "--loopback", "--duration", str(LIMIT + 60)], d, "seed", sp, env)
        end = time.monotonic() + 30
        line = ""
        while time.monotonic() < end and not line:
            if seed.p.poll() is not None:
                raise RuntimeError(f"seeder exited: {seed.text('err')[-500:]}")
            line = seed.text().strip()
            time.sleep(0.02)
        sj = json.loads(line.splitlines()[0])
        ready = wait_seed_known(port, sj["infoHash"], a.settle)
        lp = ("perf", "record", "-g", "-o", os.path.join(perf_dir, "leech.perf.data"), "--") if perf_dir else ()
        leech = Proc(g + ["--home", leech_home, "-q", "--json", "get", sj["link"], "-o", out, "--loopback"], d,
                     "leech", lp, env)
        rc = leech.wait(LIMIT)
        wall = leech.t1 - leech.t0
        seed.stop()
        tr.stop()
    finally:
        for p in (leech, seed, tr):
            if p is not None and p.p.poll() is None:
                p.stop(5)
    j1 = cpu_secs()
    p1 = proc_cpu()
    ls, ss, ts = leech.stats(), seed.stats(), tr.stats()
    if rc != 0:
        raise RuntimeError(f"get failed ({rc}): {leech.text('err')[-800:]}")
    lj = json.loads(leech.text().strip().splitlines()[-1])
    identical = subprocess.run(["cmp", "-s", src, out]).returncode == 0
    shutil.rmtree(leech_home, ignore_errors=True)
    if os.path.exists(out):
        os.unlink(out)
    first, complete = lj["firstChunkSeconds"], lj["completeSeconds"]
    own = ls["cpu_s"] + ss["cpu_s"] + ts["cpu_s"]
    r = {"system": system, "tag": tag, "load": load, "ready": ready, "identical": identical,
         "chunksFetched": lj["chunksFetched"], "bytesDownloaded": lj["bytesDownloaded"],
         "first_s": first, "complete_s": complete, "get_total_s": lj["totalSeconds"], "wall_s": wall,
         "xfer_mbs": lj["bytesDownloaded"] / 1e6 / (complete - first),
         "e2e_mbs": size / 1e6 / wall, "complete_mbs": size / 1e6 / complete,
         "seed_cpu_s": ss["cpu_s"], "seed_rss_mib": ss["rss_mib"], "leech_cpu_s": ls["cpu_s"],
         "leech_user_s": ls["user_s"], "leech_sys_s": ls["sys_s"], "seed_user_s": ss["user_s"],
         "seed_sys_s": ss["sys_s"], "leech_rss_mib": ls["rss_mib"], "tracker_cpu_s": ts["cpu_s"],
         "tracker_rss_mib": ts["rss_mib"],
         "cpu_per_gb": (ls["cpu_s"] + ss["cpu_s"]) / (size / 1e9)}
    r.update(accounting(pre, j0, j1, own))
    r["top_foreign"] = top_foreign(p0, p1)
    if not perf_dir:
        shutil.rmtree(d, ignore_errors=True)
    return r


def run_raw(a, size, work, tag):
    subprocess.run(["sync"], check=True)
    pre = wait_quiet(a.quiet_max)
    load = loadavg()
    p0 = proc_cpu()
    j0 = cpu_secs()
    d = tempfile.mkdtemp(dir=work, prefix="raw-")
    # The same UDP receive buffer as our peers ask for (WebRtcFactoryOptions::udpReceiveBuffer).
    p = subprocess.run([a.raw_binary, "run", "--bytes", str(size), "--repeat", "1", "--udp-rcvbuf", "4194304"], capture_output=True, text=True,
                       timeout=LIMIT, cwd=d)
    j1 = cpu_secs()
    p1 = proc_cpu()
    shutil.rmtree(d, ignore_errors=True)
    runs = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{") and '"run"' in x]
    if p.returncode != 0 or not runs:
        raise RuntimeError(f"bench_raw_datachannel failed ({p.returncode}): {p.stderr[-800:]}")
    s, rv = runs[0]["send"], runs[0]["recv"]
    r = {"system": "raw", "tag": tag, "load": load, "xfer_mbs": rv["mb_per_s"], "first_s": rv["open_s"],
         "seed_cpu_s": s["cpu_s"], "leech_cpu_s": rv["cpu_s"], "seed_rss_mib": s["peak_rss_mib"],
         "leech_rss_mib": rv["peak_rss_mib"], "cpu_per_gb": (s["cpu_s"] + rv["cpu_s"]) / (size / 1e9)}
    r.update(accounting(pre, j0, j1, s["cpu_s"] + rv["cpu_s"]))
    r["top_foreign"] = top_foreign(p0, p1)
    return r


def run_wt(a, src, size, work, tag):
    d = os.path.join(work, "wt", tag)
    env = dict(os.environ, PEERS_WORK=os.path.join(work, "peers"), PEERS_QUIET_MAX=str(int(a.quiet_max)),
               PEERS_LIMIT=str(LIMIT))
    load, p0 = loadavg(), proc_cpu()
    p = subprocess.run([os.path.join(a.wt_kit, "wt", "run-wt.sh"), src, "1", d], env=env, capture_output=True,
                       text=True, timeout=LIMIT + 200)
    p1 = proc_cpu()
    sys.path.insert(0, os.path.join(a.wt_kit, "lib"))
    import summary  # the kit's own parser, so the figures mean what its README says
    parsed = summary.p2p(d, "wt")
    run = summary.J(f"{d}/run.json") or {}
    if p.returncode != 0 or parsed is None or not run.get("identical"):
        raise RuntimeError(f"run-wt.sh failed ({p.returncode}): {p.stderr[-800:]}")
    run, m, procs, extra = parsed
    pr = {n: (c, rss) for n, c, rss in procs}
    own = sum(c for _, c, _ in procs)
    r = {"system": "wt", "tag": tag, "xfer_mbs": m["xfer"], "e2e_mbs": m["e2e"], "first_s": m["first_byte_s"],
         "wall_s": float(run["t_all_exit"]) - float(run["t_launch"]),
         "seed_cpu_s": pr["seed"][0], "seed_rss_mib": pr["seed"][1], "leech_cpu_s": pr["leech1"][0],
         "leech_rss_mib": pr["leech1"][1], "tracker_cpu_s": pr.get("tracker", (None,))[0],
         "cpu_per_gb": (pr["seed"][0] + pr["leech1"][0]) / (size / 1e9), "wires": extra}
    ac = summary.acct(run, own)
    r.update({"pre_busy": ac["pre_busy"], "foreign_cpu_s": round(ac["foreign_s"], 2), "clean": ac["clean"],
              "load": load, "top_foreign": top_foreign(p0, p1)})
    r["top_foreign_note"] = "window includes the kit's quiet wait"
    return r


# ---------------------------------------------------------------- helpers ----
def make_file(path, mib):
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def add_file(a, home, src):
    g = [a.binary] + (["--durability", a.durability] if a.durability else [])
    out = subprocess.run(g + ["--home", home, "-q", "add", src, "--json"], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)["fileId"]


def exec_floor(binary, n=7):
    ts = []
    for _ in range(n):
        t0 = time.monotonic()
        subprocess.run([binary, "--help"], stdout=subprocess.DEVNULL, check=True)
        ts.append(time.monotonic() - t0)
    return statistics.median(ts)


def perf_top(data, out_txt, n=25):
    """Flat self-time profile (dso, symbol) and self time per thread (comm); text reports beside the data."""
    tops = {}
    for key, sort in (("symbols", "dso,symbol"), ("threads", "comm")):
        r = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", sort, "--stdio", "-g", "none",
                            "--percent-limit", "0.5"], capture_output=True, text=True)
        with open(f"{out_txt}.{key}.txt", "w") as f:
            f.write(r.stdout)
        rows = [" ".join(ln.split()) for ln in r.stdout.splitlines() if re.match(r"\s+\d+\.\d+%", ln)]
        tops[key] = [re.sub(r"( -)+$", "", x) for x in rows[:n]]
    return tops


def fmt(v, p=2):
    return "—" if v is None else f"{v:.{p}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--big-mib", type=int, default=1024, help="one extra ours get of this size for peak RSS (0: skip)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "release", "src", "cli", "p2pcdn"))
    ap.add_argument("--raw-binary", default=os.path.join(ROOT, "build", "release", "bench", "transport",
                                                         "bench_raw_datachannel"))
    ap.add_argument("--tracker-cmd", default="auto",
                    help="'auto' (p2pcdn tracker, then p2pcdn_tracker, then node /tmp/bt/tracker.mjs) or a command "
                         "with {port} (and {bin} = --binary)")
    ap.add_argument("--wt-kit", default=None, help="peers kit with wt/node_modules (default: /tmp/peers-kit if "
                                                   "installed there, else /work/shared/bench/peers)")
    ap.add_argument("--systems", default="ours,raw,wt",
                    help="of ours, raw, wt, slowstore (ours with every store completion --store-delay-ms late; "
                         "run by the test twin, --test-binary)")
    ap.add_argument("--test-binary", default=None,
                    help="p2pcdn-test, the twin with P2PCDN_STORE_DELAY_MS (default: next to --binary)")
    ap.add_argument("--store-delay-ms", type=int, default=50)
    ap.add_argument("--durability", default=None, help="passed to p2pcdn (default: the product default)")
    ap.add_argument("--quiet-max", type=float, default=20, help="max wait (s) for a quiet machine before each run")
    ap.add_argument("--settle", type=float, default=1.0, help="wait after seed start if the tracker has no scrape")
    ap.add_argument("--perf", action="store_true", help="one extra ours round with perf record -g on both peers "
                                                        "(data and reports in the scratch folder's perf/; use --keep)")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp folder under /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    a.binary = os.path.abspath(a.binary)
    a.test_binary = os.path.abspath(a.test_binary or os.path.join(os.path.dirname(a.binary), "p2pcdn-test"))
    a.raw_binary = os.path.abspath(a.raw_binary)
    systems = a.systems.split(",")
    if a.wt_kit is None:
        a.wt_kit = next((k for k in ("/tmp/peers-kit", "/work/shared/bench/peers")
                         if os.path.isdir(os.path.join(k, "wt", "node_modules", "webtorrent"))), None)
    if "wt" in systems and not a.wt_kit:
        print("wt: skipped, no peers kit with wt/node_modules (run its setup.sh)", file=sys.stderr)
        systems.remove("wt")
    a.tracker_cmd = pick_tracker(a.tracker_cmd, a.binary)
    size = a.size_mib << 20
    work = tempfile.mkdtemp(prefix="p2pcdn-xfer-", dir=a.dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "sizeMiB": a.size_mib, "rounds": a.rounds,
              "binary": a.binary, "raw_binary": a.raw_binary, "tracker_cmd": a.tracker_cmd, "wt_kit": a.wt_kit,
              "loadavg_start": loadavg(), "runs": [], "failures": []}
    try:
        src = os.path.join(work, "input.bin")
        make_file(src, a.size_mib)
        home_seed = os.path.join(work, "seed-home")
        file_id = None
        if "ours" in systems or "slowstore" in systems:
            t0 = time.monotonic()
            file_id = add_file(a, home_seed, src)
            report["add_s"] = time.monotonic() - t0
            report["exec_floor_s"] = exec_floor(a.binary)
        print(f"{a.size_mib} MiB, {a.rounds} rounds, systems {systems}, tracker '{a.tracker_cmd}', "
              f"load {loadavg()}", flush=True)
        for rnd in range(a.rounds):
            order = systems if rnd % 2 == 0 else systems[::-1]
            for s in order:
                tag = f"r{rnd + 1}"
                try:
                    if s == "ours":
                        r = run_ours(a, home_seed, file_id, size, src, work, tag)
                    elif s == "slowstore":
                        r = run_ours(a, home_seed, file_id, size, src, work, tag, store_delay_ms=a.store_delay_ms)
                    elif s == "raw":
                        r = run_raw(a, size, work, tag)
                    else:
                        r = run_wt(a, src, size, work, tag)
                except Exception as e:  # noqa: BLE001 - record and carry on
                    report["failures"].append({"system": s, "tag": tag, "error": str(e)})
                    print(f"  {tag} {s}: FAILED {e}", flush=True)
                    continue
                report["runs"].append(r)
                print(f"  {tag} {s:9s} xfer {r['xfer_mbs']:6.1f} MB/s  e2e {fmt(r.get('e2e_mbs'), 1):>6} MB/s  "
                      f"first {r['first_s']:.3f} s  CPU seed/leech {r['seed_cpu_s']:.2f}/{r['leech_cpu_s']:.2f} s "
                      f"({r['cpu_per_gb']:.1f} s/GB)  RSS seed/leech {r['seed_rss_mib']:.1f}/"
                      f"{r['leech_rss_mib']:.1f} MiB  pre_busy {r['pre_busy']:.2f} foreign {r['foreign_cpu_s']:.2f}"
                      f"{'' if r['clean'] else ' CONTENDED'}"
                      + (f"  identical={r['identical']}" if "identical" in r else "")
                      + f"  load {r['load']}  top foreign: {', '.join(r['top_foreign']) or '-'}", flush=True)

        # medians (clean rounds, else all)
        meds = {}
        for s in systems:
            rs = [r for r in report["runs"] if r["system"] == s]
            use = [r for r in rs if r["clean"]] or rs
            if not use:
                continue
            keys = [k for k, v in use[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
            meds[s] = {k: med([r.get(k) for r in use]) for k in keys}
            meds[s]["n"] = len(use)
            meds[s]["of"] = len(rs)
            meds[s]["clean"] = any(r["clean"] for r in rs)
        report["medians"] = meds

        if "ours" in systems and a.perf:
            pdir = os.path.join(work, "perf")
            os.makedirs(pdir)
            try:
                pr = run_ours(a, home_seed, file_id, size, src, work, "perf", perf_dir=pdir)
                report["perf_run"] = pr
                report["perf_leech_top"] = perf_top(os.path.join(pdir, "leech.perf.data"),
                                                    os.path.join(pdir, "leech.report.txt"))
                report["perf_seed_top"] = perf_top(os.path.join(pdir, "seed.perf.data"),
                                                   os.path.join(pdir, "seed.report.txt"))
            except Exception as e:  # noqa: BLE001
                report["failures"].append({"system": "ours", "tag": "perf", "error": str(e)})

        if "ours" in systems and a.big_mib:
            big = os.path.join(work, "big.bin")
            make_file(big, a.big_mib)
            bhome = os.path.join(work, "big-seed-home")
            bid = add_file(a, bhome, big)
            os.unlink(src)  # page cache / disk room
            try:
                report["big"] = run_ours(a, bhome, bid, a.big_mib << 20, big, work, f"big{a.big_mib}")
            except Exception as e:  # noqa: BLE001
                report["failures"].append({"system": "ours", "tag": "big", "error": str(e)})
        report["loadavg_end"] = loadavg()

        # ratios against the issue's targets
        o, rw, wt, slow = meds.get("ours"), meds.get("raw"), meds.get("wt"), meds.get("slowstore")
        targets = []
        if o and rw:
            targets.append(("transfer-phase MB/s ours/raw", o["xfer_mbs"] / rw["xfer_mbs"], ">=", 0.9))
        if o and slow:
            targets.append((f"transfer-phase MB/s, store {a.store_delay_ms} ms late / on time", slow["xfer_mbs"] / o["xfer_mbs"],
                            ">=", 0.9))
        if o and wt:
            targets.append(("end-to-end MB/s ours/WebTorrent", o["e2e_mbs"] / wt["e2e_mbs"], ">=", 2.0))
            targets.append(("CPU s per GB ours/WebTorrent", o["cpu_per_gb"] / wt["cpu_per_gb"], "<=", 0.4))
        if o:
            targets.append(("launch -> first verified chunk, s (get's clock)", o["first_s"], "<=", 0.3))
            targets.append(("launch -> first verified chunk, s (+exec floor)",
                            o["first_s"] + report["exec_floor_s"], "<=", 0.3))
        if report.get("big"):
            targets.append((f"leecher peak RSS, {a.big_mib} MiB get, MiB", report["big"]["leech_rss_mib"], "<=",
                            48.0))
        report["targets"] = [{"what": w, "value": v, "op": op, "target": t,
                              "met": (v >= t) if op == ">=" else (v <= t)} for w, v, op, t in targets]

        print("\nmedians (MB = 1e6 B; CPU = user+sys s; RSS = peak MiB)")
        print(f"  {'system':9s} {'xfer MB/s':>9s} {'e2e MB/s':>8s} {'first s':>7s} {'CPU seed':>8s} "
              f"{'CPU leech':>9s} {'CPU s/GB':>8s} {'RSS seed':>8s} {'RSS leech':>9s}  rounds")
        for s, m in meds.items():
            print(f"  {s:9s} {m['xfer_mbs']:9.1f} {fmt(m.get('e2e_mbs'), 1):>8s} {m['first_s']:7.3f} "
                  f"{m['seed_cpu_s']:8.2f} {m['leech_cpu_s']:9.2f} {m['cpu_per_gb']:8.2f} {m['seed_rss_mib']:8.1f} "
                  f"{m['leech_rss_mib']:9.1f}  {m['n']} of {m['of']}{'' if m['clean'] else ' (all contended)'}")
        if report.get("big"):
            b = report["big"]
            print(f"  {a.big_mib} MiB ours get: xfer {b['xfer_mbs']:.1f} MB/s, e2e {b['e2e_mbs']:.1f} MB/s, "
                  f"leecher peak RSS {b['leech_rss_mib']:.1f} MiB, seeder {b['seed_rss_mib']:.1f} MiB, "
                  f"identical={b['identical']}")
        print("\ntargets")
        for t in report["targets"]:
            print(f"  {t['what']:52s} {t['value']:7.3f}  (target {t['op']} {t['target']})  "
                  f"{'met' if t['met'] else 'NOT MET'}")
        for who in ("leech", "seed"):
            top = report.get(f"perf_{who}_top", {})
            for t in top.get("threads", [])[:6]:
                print(f"  perf {who} thread:", t)
            for t in top.get("symbols", [])[:15]:
                print(f"  perf {who}:", t)
        for f in report["failures"]:
            print(f"  FAILED {f['system']} {f['tag']}: {f['error'][:300]}")
        if a.json_out:
            with open(a.json_out, "w") as f:
                json.dump(report, f, indent=1)
        bad = report["failures"] or any(not r.get("identical", True) for r in report["runs"])
        sys.exit(1 if bad else 0)
    finally:
        stop_all()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
