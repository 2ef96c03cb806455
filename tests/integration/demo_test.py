#!/usr/bin/env python3
"""`p2pcdn demo`, the README's main job, as a real process.

video: the default run (a sample video made with ffmpeg, embedded tracker,
  seeder, 2 leechers over real WebRTC, the gateway on a fresh leecher, ffmpeg
  decoding through it while it downloads) on a short video: exit 0, every
  leecher's copy identical, a summary with the share between leechers, the
  video decoded through the gateway, and no scratch folder left behind.
file: --file with random bytes (not media): copies identical, no playback
  check, exit 0; bad arguments are usage errors (exit 2).
"""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import MIB, Cli, Harness, check, random_bytes, write_file  # noqa: E402


def run_demo(args, tmp, *extra, expect=0):
    scratch = tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    cli = Cli(args.p2pcdn, tmp / "home")
    p = cli.run("demo", *extra, expect=expect, home=False, env={"TMPDIR": str(scratch)}, timeout=240)
    print(p.out)
    if expect == 0:
        check(not any(scratch.iterdir()), f"the demo left files behind in TMPDIR: {list(scratch.iterdir())}")
    return p


def check_copies(out, n):
    identical = re.findall(r"leecher\d+: complete after [0-9.]+ s, every chunk verified .* identical", out)
    check(len(identical) == n, f"expected {n} identical copies, got {len(identical)}:\n{out}")
    m = re.search(r"the seeder sent ([0-9.]+) copies, (\d+) % of what the leechers received came from each other", out)
    check(m is not None, f"no summary line:\n{out}")
    return float(m.group(1)), int(m.group(2))


def test_video(args, tmp, rng):
    app = tmp / "app"
    (app / "app").mkdir(parents=True)
    write_file(app / "app" / "index.html", b"<!doctype html>")
    p = run_demo(args, tmp, "--seconds", "6", "--leechers", "2", "--viewer-rate", "1500000", "--app", str(app))
    copies, share = check_copies(p.out, 2)
    check(copies > 0, "the seeder sent nothing")
    check("ffmpeg decoded every frame without an error" in p.out, f"no successful decode through the gateway:\n{p.out}")
    check(re.search(r"http://127\.0\.0\.1:\d+/f/[0-9a-f]{64}/sample\.mp4", p.out), f"no gateway URL:\n{p.out}")
    check("== done: every copy is identical and the video played through the gateway" in p.out, p.out)
    check(re.search(r"http://127\.0\.0\.1:\d+/#p2pcdn:[0-9a-f]{64}\?tr=ws.*\(the web app", p.out), f"no web app link:\n{p.out}")


def test_file(args, tmp, rng):
    src = write_file(tmp / "data.bin", random_bytes(rng, 3 * MIB + 77))
    p = run_demo(args, tmp, "--file", src, "--leechers", "3", "--seeder-rate", "0")
    check_copies(p.out, 3)
    check("no playback check" in p.out and "== done: every copy is identical" in p.out, p.out)
    run_demo(args, tmp, "--file", tmp / "missing.bin", expect=2)
    run_demo(args, tmp, "--leechers", "0", expect=2)
    run_demo(args, tmp, "--seconds", "-1", expect=2)


if __name__ == "__main__":
    sys.exit(Harness({"video": test_video, "file": test_file}).main())
