#!/usr/bin/env python3
"""One seeder -> three leechers over WebRTC on 127.0.0.1, side by side in one run:

  ours  `p2pcdn tracker` + `p2pcdn seed` + 3 x `p2pcdn get --seed=S`, five separate processes,
        each peer with its own store (--home)
  wt    WebTorrent 1->3 from the shared peers kit (wt/run-wt.sh FILE 3 DIR: ws tracker, node-datachannel)

Every round runs the two in one order, the next round in the reverse order, each after a `sync` and a
wait for a quiet machine (< 10 % busy over two 1 s samples, at most --quiet-max s). Figures are medians
over the clean rounds (all rounds if none is clean); MB = 1e6 bytes. Helpers (process timing under
GNU time -v, quiet-machine wait, CPU accounting) come from transfer_1to1.py.

Definitions
  all-done        launch of the first leecher process -> the last leecher's -o OUT is written whole
                  (issue 13's definition; every copy is compared with cmp after the run).
                  ours: max over leechers of (launch offset + exec floor + the "exported" event's seconds),
                  printed by `get --json` when -o OUT is written, while the leecher goes on seeding (its
                  clock starts after exec; the exec floor is the median wall time of `p2pcdn --help` in
                  this run). "held_s" is the same for completeSeconds (the last chunk verified and in the
                  store, before the export).
                  wt: max(leech tDone) - t_launch from the kit's files ('done': every piece verified and
                  on disk in the output file).
  aggregate MB/s  3 x size / all-done.
  first data      per leecher, launch -> first verified chunk (ours, firstChunkSeconds + offset + exec
                  floor) / first payload byte (wt, tFirstByte).
  leecher share   share of the bytes the leechers received that came from other leechers:
                  1 - seederUploaded / (3 x size). ours: bytesUploaded of the seeder's last `--json` line
                  if the build prints one at exit, else its "seeded ID: N bytes uploaded" stderr line at
                  SIGTERM (PIECE payload bytes). wt: seed.json "uploaded" (torrent.uploaded at SIGTERM).
                  Cross-check, "leechers' own count": sum of the leechers' uploads / (3 x size), when each
                  reports one (ours: bytesUploaded in get's last --json line, if printed; wt: leechN.json).
  CPU / RSS       user+sys CPU seconds and peak RSS (GNU time -v) of tracker, seed, leech1..3; the
                  seeder's figures cover its whole life (start, announce, serving, idle until stopped).
Serving after completion differs, and this is part of what is measured:
  ours  every leecher runs `get --seed=S` (S = a safety limit) and keeps serving after it completes;
        the script watches the tracker's /stats and, once it counts 1 + 3 seeders (every leecher has
        announced 'completed'), sends SIGTERM to the three leechers, which then write -o OUT, print
        their JSON and exit; then the seeder and the tracker get SIGTERM. "stop->exit" (printed per
        round) is that export + shutdown, which all-done does not include.
  wt    the kit's leech.mjs exits at 'done', so a finished WebTorrent leecher stops serving.
Timing starts only when the tracker knows the seeder (ours: /stats counts a seeder; wt: the kit waits
for the seeder's .torrent). Every output is compared with cmp; the exit status is non-zero if any copy
differs or any run failed. The binary is copied into the scratch folder at start, so a rebuild during
the run cannot mix two builds.

A round of a system that crashes or times out is re-run (--retries, default 1); every failed attempt is
printed and kept in --json-out, and a round that fails every attempt makes the exit status non-zero.

usage: bench/swarm_1to3.py [--size-mib 256] [--rounds 3] [--leechers 3] [--binary build/release/src/cli/p2pcdn]
         [--wt-kit DIR] [--systems ours,wt] [--retries 1] [--quiet-max 20] [--json-out F] [--keep] [--dir D]
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # no bench/__pycache__ from the import below
sys.path.insert(0, HERE)
from transfer_1to1 import (Proc, accounting, add_file, cpu_secs, exec_floor, fmt, free_port,  # noqa: E402
                           loadavg, make_file, med, proc_cpu, stop_all, top_foreign, wait_port, wait_quiet)

LIMIT = 300  # s, launch of the leechers -> all done
UPLOADED_RE = re.compile(r"seeded [0-9a-f]+: (\d+) bytes uploaded")


# ---------------------------------------------------------------- ours ----
def tracker_stats(port):
    try:
        return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=1).read())
    except Exception:  # noqa: BLE001 - not up yet / busy: the caller polls again
        return None


def wait_seeders(port, want, procs, limit):
    """Polls /stats until the tracker counts `want` seeders; None if a process in procs exits or the limit passes."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        s = tracker_stats(port)
        if s and s.get("seeders", 0) >= want:
            return time.monotonic()
        if any(p.p.poll() is not None for p in procs):
            return None
        time.sleep(0.05)
    return None


def first_json_line(proc, limit=30):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.p.poll() is not None:
            raise RuntimeError(f"{proc.name} exited: {proc.text('err')[-500:]}")
        line = proc.text().strip()
        if line:
            return json.loads(line.splitlines()[0])
        time.sleep(0.02)
    raise RuntimeError(f"{proc.name} printed nothing in {limit} s")


def last_json(proc, key):
    """The last stdout line of proc that is a JSON object with key (get --json may also print progress lines)."""
    for line in reversed(proc.text().strip().splitlines()):
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if isinstance(j, dict) and key in j:
            return j
    raise RuntimeError(f"{proc.name}: no JSON line with {key}: {proc.text()[-300:]}")


def exported_seconds(proc, missing_ok=False):
    """When `get --json` wrote -o OUT: its {"event": "exported", "seconds": S} line."""
    for line in proc.text().strip().splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if isinstance(j, dict) and j.get("event") == "exported":
            return j["seconds"]
    if missing_ok:
        return None
    raise RuntimeError(f"{proc.name}: no 'exported' event: {proc.text()[-300:]}")


def seeder_uploaded(seed):
    """(bytes, where from): a JSON field at exit if `seed --json` prints one, else the stderr line."""
    try:
        return last_json(seed, "bytesUploaded")["bytesUploaded"], "seed --json bytesUploaded"
    except RuntimeError:
        pass
    m = UPLOADED_RE.search(seed.text("err"))
    if not m:
        raise RuntimeError(f"no 'bytes uploaded' line from the seeder: {seed.text('err')[-300:]}")
    return int(m.group(1)), "seed stderr line"


def share_by_leechers(uploaded, n, size):
    """The leechers' own count: sum of their uploads / (n x size); None if a leecher does not report it."""
    return None if any(u is None for u in uploaded) else sum(uploaded) / (n * size)


def signal_child(proc, sig=signal.SIGTERM):
    c = proc.child()
    if c:
        try:
            os.kill(c, sig)
        except ProcessLookupError:
            pass


def run_ours(a, home_seed, file_id, size, src, work, tag, floor):
    d = os.path.join(work, "ours", tag)
    os.makedirs(d)
    g = [a.binary] + (["--durability", a.durability] if a.durability else [])
    subprocess.run(["sync"], check=True)
    pre = wait_quiet(a.quiet_max)
    load, p0, j0 = loadavg(), proc_cpu(), cpu_secs()
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    tr = Proc([a.binary, "tracker", "--listen", f"127.0.0.1:{port}"], d, "tracker")
    seed, leeches, stopped_at = None, [], None
    try:
        wait_port(port, tr)
        # not -q: the uploaded-bytes line at exit is printed only without it
        seed = Proc(g + ["--home", home_seed, "--json", "seed", file_id, "--tracker", url, "--loopback",
                         "--duration", str(LIMIT + 120)], d, "seed")
        sj = first_json_line(seed)
        if wait_seeders(port, 1, [tr, seed], 15) is None:
            raise RuntimeError("the tracker never counted the seeder")
        t0 = time.monotonic()
        for i in range(1, a.leechers + 1):
            leeches.append(Proc(g + ["--home", os.path.join(d, f"leech{i}-home"), "-q", "--json", "get", sj["link"],
                                     "--tracker", url, "-o", os.path.join(d, f"out{i}.bin"), "--loopback",
                                     f"--seed={LIMIT + 60}"], d, f"leech{i}"))
        seen = wait_seeders(port, 1 + a.leechers, [tr, seed] + leeches, LIMIT)
        # Each writes -o OUT after completing, while it seeds: wait for all of them before stopping.
        deadline = time.monotonic() + LIMIT
        while seen is not None and time.monotonic() < deadline:
            if all(exported_seconds(p, missing_ok=True) is not None for p in leeches):
                break
            if any(p.p.poll() is not None for p in leeches):
                break
            time.sleep(0.1)
        stopped_at = time.monotonic()
        for p in leeches:  # all at once: each has written -o OUT (or the wait above gave up); stop serving
            signal_child(p)
        rcs = [p.wait(120) for p in leeches]
        seed.stop()
        tr.stop()
    finally:
        for p in leeches + [seed, tr]:
            if p is not None and p.p.poll() is None:
                p.stop(5)
    j1, p1 = cpu_secs(), proc_cpu()
    if seen is None:
        raise RuntimeError(f"not all leechers completed within {LIMIT} s (rcs {rcs}): "
                           + " | ".join(p.text('err')[-300:] for p in leeches))
    bad = [(p.name, rc) for p, rc in zip(leeches, rcs) if rc != 0]
    if bad:
        raise RuntimeError(f"get failed {bad}: " + " | ".join(p.text('err')[-400:] for p in leeches))
    lj = [last_json(p, "completeSeconds") for p in leeches]
    seed_up, seed_up_from = seeder_uploaded(seed)
    stored = lj[0]["size"]
    identical = [subprocess.run(["cmp", "-s", src, os.path.join(d, f"out{i}.bin")]).returncode == 0
                 for i in range(1, a.leechers + 1)]
    off = [p.t0 - t0 for p in leeches]
    exported = [exported_seconds(p) for p in leeches]
    held = [o + floor + j["completeSeconds"] for o, j in zip(off, lj)]
    done = [o + floor + e for o, e in zip(off, exported)]
    first = [o + floor + j["firstChunkSeconds"] for o, j in zip(off, lj)]
    procs = [("tracker", tr.stats()), ("seed", seed.stats())] + [(p.name, p.stats()) for p in leeches]
    r = {"system": "ours", "tag": tag, "load": load, "identical": all(identical), "identical_each": identical,
         "all_done_s": max(done), "done_s": done, "held_s": held, "first_s": first, "launch_offsets_s": off,
         "agg_mbs": a.leechers * size / 1e6 / max(done),
         "seed_uploaded": seed_up, "seed_uploaded_from": seed_up_from,
         "leech_share": 1 - seed_up / (a.leechers * stored),
         "leech_share_by_leechers": share_by_leechers([j.get("bytesUploaded") for j in lj], a.leechers, stored),
         "leech_bytes_downloaded": [j["bytesDownloaded"] for j in lj],
         "leech_bytes_uploaded": [j.get("bytesUploaded") for j in lj],
         "tracker_saw_all_done_s": seen - t0, "stop_to_exit_s": [p.t1 - stopped_at for p in leeches]}
    for n, st in procs:
        r[f"cpu_{n}"], r[f"rss_{n}"] = st["cpu_s"], st["rss_mib"]
    r["cpu_total"] = sum(st["cpu_s"] for _, st in procs)
    r.update(accounting(pre, j0, j1, r["cpu_total"]))
    r["top_foreign"] = top_foreign(p0, p1)
    if not a.keep:
        shutil.rmtree(d, ignore_errors=True)
    return r


# ---------------------------------------------------------------- wt ----
def run_wt(a, src, size, work, tag):
    d = os.path.join(work, "wt", tag)
    env = dict(os.environ, PEERS_WORK=os.path.join(work, "peers"), PEERS_QUIET_MAX=str(int(a.quiet_max)),
               PEERS_LIMIT=str(LIMIT))
    load, p0 = loadavg(), proc_cpu()
    p = subprocess.run([os.path.join(a.wt_kit, "wt", "run-wt.sh"), src, str(a.leechers), d], env=env,
                       capture_output=True, text=True, timeout=LIMIT + 200)
    p1 = proc_cpu()
    sys.path.insert(0, os.path.join(a.wt_kit, "lib"))
    import summary  # the kit's own parser and contention rule
    parsed = summary.p2p(d, "wt")
    run = summary.J(f"{d}/run.json") or {}
    if p.returncode != 0 or parsed is None or not run.get("identical"):
        raise RuntimeError(f"run-wt.sh failed ({p.returncode}, identical={run.get('identical')}): "
                           f"{p.stderr[-800:]}")
    run, _, procs, extra = parsed
    t_launch = float(run["t_launch"])
    lj = [summary.J(f"{d}/leech{i}.json") for i in range(1, a.leechers + 1)]
    sj = summary.J(f"{d}/seed.json") or {}
    done = [j["tDone"] / 1000 - t_launch for j in lj]
    first = [j["tFirstByte"] / 1000 - t_launch for j in lj]
    seed_up = sj.get("uploaded")
    r = {"system": "wt", "tag": tag, "load": load, "identical": True, "all_done_s": max(done), "done_s": done,
         "first_s": first, "agg_mbs": a.leechers * size / 1e6 / max(done),
         "seed_uploaded": seed_up, "leech_share": None if seed_up is None else 1 - seed_up / (a.leechers * size),
         "leech_share_by_leechers": share_by_leechers([j.get("uploaded") for j in lj], a.leechers, size),
         "leech_bytes_uploaded": [j.get("uploaded") for j in lj],
         "leech_bytes_downloaded": [j.get("downloaded") for j in lj],
         "wires": extra}
    if seed_up is None:
        r["note"] = "the kit's seed.json has no 'uploaded': seeder upload not recorded"
    for n, c, rss in procs:
        r[f"cpu_{n}"], r[f"rss_{n}"] = c, rss
    r["cpu_total"] = sum(c for _, c, _ in procs)
    ac = summary.acct(run, r["cpu_total"])
    r.update({"pre_busy": ac["pre_busy"], "foreign_cpu_s": round(ac["foreign_s"], 2), "clean": ac["clean"],
              "top_foreign": top_foreign(p0, p1), "top_foreign_note": "window includes the kit's quiet wait"})
    return r


# ---------------------------------------------------------------- report ----
def pct(v):
    return "—" if v is None else f"{100 * v:.1f} %"


def round_line(r, names):
    s = (f"all-done {r['all_done_s']:6.2f} s (each {'/'.join(f'{x:.2f}' for x in r['done_s'])}; first data "
         f"{'/'.join(f'{x:.2f}' for x in r['first_s'])} s)  aggregate {r['agg_mbs']:6.1f} MB/s  "
         f"leecher share {pct(r['leech_share'])} (leechers' own count {pct(r['leech_share_by_leechers'])})")
    if r["system"] == "ours":
        s += f"  stop->exit {'/'.join(f'{x:.2f}' for x in r['stop_to_exit_s'])} s"
    s += ("  CPU " + "/".join(fmt(r.get(f"cpu_{n}")) for n in names) + " s  RSS "
          + "/".join(fmt(r.get(f"rss_{n}"), 0) for n in names) + " MiB"
          + f"  pre_busy {r['pre_busy']:.2f} foreign {r['foreign_cpu_s']:.2f}{'' if r['clean'] else ' CONTENDED'}"
          + f"  identical={r['identical']}  load {r['load']}  top foreign: {', '.join(r['top_foreign']) or '-'}")
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--leechers", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "release", "src", "cli", "p2pcdn"),
                    help="p2pcdn with the tracker subcommand (copied into the scratch folder at start)")
    ap.add_argument("--wt-kit", default=None, help="peers kit with wt/node_modules (default: /tmp/peers-kit if "
                                                   "installed there, else /work/shared/bench/peers)")
    ap.add_argument("--systems", default="ours,wt")
    ap.add_argument("--durability", default=None, help="passed to p2pcdn (default: the product default)")
    ap.add_argument("--retries", type=int, default=1,
                    help="re-run a round of a system that failed (crash, time-out; never a copy that differs); "
                         "every failed attempt is listed, and a round that fails every attempt fails the run")
    ap.add_argument("--quiet-max", type=float, default=20, help="max wait (s) for a quiet machine before each run")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp folder under /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (stores, outputs, logs)")
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    systems = a.systems.split(",")
    if a.wt_kit is None:
        a.wt_kit = next((k for k in ("/tmp/peers-kit", "/work/shared/bench/peers")
                         if os.path.isdir(os.path.join(k, "wt", "node_modules", "webtorrent"))), None)
    if "wt" in systems and not a.wt_kit:
        print("wt: skipped, no peers kit with wt/node_modules (run its setup.sh)", file=sys.stderr)
        systems.remove("wt")
    size = a.size_mib << 20
    names = ["tracker", "seed"] + [f"leech{i}" for i in range(1, a.leechers + 1)]
    work = tempfile.mkdtemp(prefix="p2pcdn-swarm-", dir=a.dir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    src_binary = os.path.abspath(a.binary)
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "sizeMiB": a.size_mib, "rounds": a.rounds,
              "leechers": a.leechers, "binary": src_binary,
              "binary_mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.stat(src_binary).st_mtime)),
              "wt_kit": a.wt_kit, "loadavg_start": loadavg(), "runs": [], "failed_attempts": [], "failures": []}
    try:
        a.binary = os.path.join(work, "p2pcdn")
        shutil.copy2(src_binary, a.binary)
        src = os.path.join(work, "input.bin")
        make_file(src, a.size_mib)
        home_seed = os.path.join(work, "seed-home")
        file_id = floor = None
        if "ours" in systems:
            t0 = time.monotonic()
            file_id = add_file(a, home_seed, src)
            report["add_s"] = time.monotonic() - t0
            floor = report["exec_floor_s"] = exec_floor(a.binary)
        print(f"1 -> {a.leechers}, {a.size_mib} MiB, {a.rounds} rounds, systems {systems}, binary {src_binary} "
              f"({report['binary_mtime']}), load {loadavg()}", flush=True)
        print(f"  per round: all-done, aggregate, leecher share, CPU and RSS of {'/'.join(names)}", flush=True)
        for rnd in range(a.rounds):
            tag = f"r{rnd + 1}"
            for s in (systems if rnd % 2 == 0 else systems[::-1]):
                r = None
                for attempt in range(1 + a.retries):
                    t = tag if attempt == 0 else f"{tag}-retry{attempt}"
                    try:
                        r = (run_ours(a, home_seed, file_id, size, src, work, t, floor) if s == "ours"
                             else run_wt(a, src, size, work, t))
                        break
                    except Exception as e:  # noqa: BLE001 - record, retry or carry on
                        report["failed_attempts"].append({"system": s, "tag": t, "error": str(e)})
                        print(f"  {t} {s}: FAILED {e}", flush=True)
                if r is None:
                    report["failures"].append({"system": s, "tag": tag})
                    continue
                report["runs"].append(r)
                print(f"  {tag} {s:4s} {round_line(r, names)}", flush=True)

        meds = {}
        keys = ["all_done_s", "agg_mbs", "leech_share", "cpu_total"] + [f"{k}_{n}" for k in ("cpu", "rss")
                                                                        for n in names]
        for s in systems:
            rs = [r for r in report["runs"] if r["system"] == s]
            use = [r for r in rs if r["clean"]] or rs
            if use:
                meds[s] = {k: med([r.get(k) for r in use]) for k in keys}
                meds[s].update(n=len(use), of=len(rs), clean=any(r["clean"] for r in rs))
        report["medians"] = meds
        o, w = meds.get("ours"), meds.get("wt")
        if o and w:
            report["ratios_ours_wt"] = {k: (o[k] / w[k] if o[k] is not None and w[k] else None)
                                        for k in ("all_done_s", "agg_mbs", "cpu_total")}
        report["loadavg_end"] = loadavg()

        print(f"\nmedians, 1 -> {a.leechers}, {a.size_mib} MiB (MB = 1e6 B; CPU = user+sys s; RSS = peak MiB)")
        print(f"  {'system':7s} {'all-done s':>10s} {'agg MB/s':>8s} {'leech share':>11s} {'CPU total':>9s}  "
              f"{'CPU ' + '/'.join(names):>40s}  {'RSS ' + '/'.join(names):>40s}  rounds")
        for s, m in meds.items():
            print(f"  {s:7s} {fmt(m['all_done_s']):>10s} {fmt(m['agg_mbs'], 1):>8s} {pct(m['leech_share']):>11s} "
                  f"{fmt(m['cpu_total']):>9s}  {'/'.join(fmt(m[f'cpu_{n}']) for n in names):>40s}  "
                  f"{'/'.join(fmt(m[f'rss_{n}'], 0) for n in names):>40s}  {m['n']} of {m['of']}"
                  f"{'' if m['clean'] else ' (all contended)'}")
        if "ratios_ours_wt" in report:
            q = report["ratios_ours_wt"]
            print(f"  {'ours/wt':7s} {fmt(q['all_done_s'], 3):>10s} {fmt(q['agg_mbs'], 3):>8s} {'':>11s} "
                  f"{fmt(q['cpu_total'], 3):>9s}   (all-done < 1: ours finishes sooner)")
        if w and w.get("leech_share") is None:
            print("  wt leecher share: not available (the kit's seed.json does not record the seeder's upload)")
        if o and w:
            print("  ours leechers keep serving (get --seed) until all are done; the kit's wt leechers exit at 'done'")
        for f in report["failed_attempts"]:
            print(f"  failed attempt {f['system']} {f['tag']}: {f['error'][:300]}")
        for f in report["failures"]:
            print(f"  FAILED {f['system']} {f['tag']}: every attempt failed")
        if a.json_out:
            with open(a.json_out, "w") as f:
                json.dump(report, f, indent=1)
        bad = report["failures"] or any(not r["identical"] for r in report["runs"])
        sys.exit(1 if bad else 0)
    finally:
        stop_all()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
