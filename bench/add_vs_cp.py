#!/usr/bin/env python3
"""`p2pcdn add` of a large file against `cp` + `b3sum` of the same file, side by side.

Each round runs, in alternating order and after a `sync` so that no run pays for
another's dirty pages: add (durability power-loss, the default), add
(durability process-crash), cp + b3sum, add --in-place (no copy: against b3sum
alone, which it also runs). Reports the median wall time of
each, the ratios, and peak RSS of add. Also checks that export gives back the
file byte for byte.

usage: bench/add_vs_cp.py [--size-mib 1024] [--rounds 5] [--binary build/release/src/cli/p2pcdn]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (wall seconds, peak RSS KiB)."""
    out = tempfile.NamedTemporaryFile(delete=False)
    out.close()
    t0 = time.monotonic()
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name] + cmd, check=True, env=env,
                   stdout=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    with open(out.name) as f:
        rss = int(f.read().strip().splitlines()[-1])
    os.unlink(out.name)
    return wall, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "src",
                                                     "cli", "p2pcdn"))
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp folder under /tmp)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    b3sum = shutil.which("b3sum")
    if not b3sum:
        sys.exit("b3sum not installed (scripts/install-deps.sh)")
    work = tempfile.mkdtemp(prefix="p2pcdn-bench-", dir=args.dir)
    try:
        src = os.path.join(work, "input.bin")
        with open(src, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        results = {"add power-loss": [], "add process-crash": [], "cp+b3sum": [], "add in-place": [], "b3sum": []}
        rss = {"add power-loss": [], "add process-crash": [], "add in-place": []}
        for r in range(args.rounds):
            order = list(results.keys())
            if r % 2:
                order.reverse()
            for name in order:
                home = os.path.join(work, "home")
                copy = os.path.join(work, "copy.bin")
                shutil.rmtree(home, ignore_errors=True)
                if os.path.exists(copy):
                    os.unlink(copy)
                subprocess.run(["sync"], check=True)
                if name == "cp+b3sum":
                    t0 = time.monotonic()
                    subprocess.run(["cp", src, copy], check=True)
                    subprocess.run([b3sum, copy], check=True, stdout=subprocess.DEVNULL)
                    results[name].append(time.monotonic() - t0)
                elif name == "b3sum":
                    t0 = time.monotonic()
                    subprocess.run([b3sum, src], check=True, stdout=subprocess.DEVNULL)
                    results[name].append(time.monotonic() - t0)
                elif name == "add in-place":
                    wall, peak = timed([args.binary, "--home", home, "-q", "add", src, "--in-place"])
                    results[name].append(wall)
                    rss[name].append(peak)
                else:
                    durability = name.split()[1]
                    wall, peak = timed([args.binary, "--home", home, "--durability", durability, "-q", "add", src])
                    results[name].append(wall)
                    rss[name].append(peak)
        # Correctness: the last store must export the file byte for byte.
        home = os.path.join(work, "home2")
        out = subprocess.run([args.binary, "--home", home, "-q", "add", src, "--json"], check=True,
                             capture_output=True, text=True).stdout
        fid = json.loads(out)["fileId"]
        exp = os.path.join(work, "export.bin")
        t_export, rss_export = timed([args.binary, "--home", home, "-q", "export", fid, "-o", exp])
        identical = subprocess.run(["cmp", "-s", src, exp]).returncode == 0

        med = {k: statistics.median(v) for k, v in results.items()}
        report = {
            "sizeMiB": args.size_mib,
            "rounds": args.rounds,
            "medianSeconds": med,
            "ratioVsCpB3sum": {k: med[k] / med["cp+b3sum"] for k in ("add power-loss", "add process-crash")},
            "ratioInPlaceVsB3sum": med["add in-place"] / med["b3sum"],
            "peakRssMiB": {k: max(v) / 1024 for k, v in rss.items()},
            "exportSeconds": t_export,
            "exportPeakRssMiB": rss_export / 1024,
            "exportIdentical": identical,
            "all": results,
        }
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(f"{args.size_mib} MiB, {args.rounds} rounds, medians:")
            for k, v in med.items():
                extra = ""
                if k == "add in-place":
                    extra = f"  ratio {med[k] / med['b3sum']:.2f}x b3sum  peak RSS {max(rss[k]) / 1024:.1f} MiB"
                elif k in rss:
                    extra = f"  ratio {med[k] / med['cp+b3sum']:.2f}x  peak RSS {max(rss[k]) / 1024:.1f} MiB"
                print(f"  {k:20s} {v:6.2f} s{extra}")
            print(f"  export               {t_export:6.2f} s  peak RSS {rss_export / 1024:.1f} MiB  "
                  f"identical={identical}")
        if not identical:
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
