#!/usr/bin/env python3
"""A store on a full disk: a 12 MiB tmpfs mounted by the test itself, in a
mount namespace of its own (unshare -m; needs root, as CI has).

  disk_full_test.py --p2pcdn BIN full [--seed N]

- `add` of a 24 MiB file into a store on the small file system fails with a
  message naming the full disk, exits non-zero, and leaves nothing behind: no
  file listed, no chunk data file, the database intact.
- The space comes back: a 2 MiB file then adds, verifies and exports byte for
  byte.
- `export` onto a full (1 MiB) file system fails and leaves no output or
  .part- file. `get -o OUT` onto one is not run here (it needs peers; its
  chunk writes take the same path as `add`'s).
"""

import filecmp
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import (EXIT_OK, MIB, Cli, Harness, TestSkipped, check, check_no_output, random_bytes,  # noqa: E402
                   write_file)


def inner(args, tmp, rng):
    small = tmp / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(small)], check=True)
    try:
        cli = Cli(args.p2pcdn, small / "home")
        big = write_file(tmp / "big.bin", random_bytes(rng, 24 * MIB))  # outside the small file system
        p = cli.run("add", big)
        check(p.returncode != EXIT_OK, "add onto a full disk succeeded")
        check("disk full" in p.err, f"add on a full disk: no clear message: {p.err!r}")
        print(f"  add of 24 MiB onto 12 MiB: exit {p.returncode}: {p.err.strip().splitlines()[-1]}")
        check(cli.ls() == {}, f"a failed add left a file listed: {cli.ls()}")
        chunks = small / "home" / "store.db-chunks"
        left = list(chunks.iterdir()) if chunks.exists() else []
        check(not left, f"a failed add left chunk data behind: {left}")
        con = sqlite3.connect(str(small / "home" / "store.db"))
        try:
            ic = con.execute("PRAGMA integrity_check").fetchall()
            rows = con.execute("SELECT (SELECT COUNT(*) FROM files), (SELECT COUNT(*) FROM chunks)").fetchone()
        finally:
            con.close()
        check(ic == [("ok",)] and rows == (0, 0), f"store after the failed add: {ic} {rows}")

        # The space came back: a smaller file fits, and round-trips.
        ok = write_file(tmp / "ok.bin", random_bytes(rng, 2 * MIB))
        fid = cli.add(ok)["fileId"]
        cli.run("verify", fid, expect=EXIT_OK)
        cli.run("export", fid, "-o", tmp / "ok.out", expect=EXIT_OK)
        check(filecmp.cmp(ok, tmp / "ok.out", shallow=False), "export after the full disk differs")

        # Export onto a full file system (a 1 MiB one; the store is elsewhere).
        tiny = tmp / "tiny"
        tiny.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tiny)], check=True)
        try:
            other = Cli(args.p2pcdn, tmp / "home2")
            fid2 = other.add(ok)["fileId"]
            out = tiny / "out.bin"
            p = other.run("export", fid2, "-o", out)
            check(p.returncode != EXIT_OK, "export onto a full disk succeeded")
            check_no_output(out, "export onto a full disk")
            check(not any(tiny.iterdir()), f"export onto a full disk left {list(tiny.iterdir())}")
            print(f"  export of 2 MiB onto 1 MiB: exit {p.returncode}: {p.err.strip().splitlines()[-1]}")
            other.run("verify", fid2, expect=EXIT_OK)
        finally:
            subprocess.run(["umount", "-l", str(tiny)], check=False)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_full(args, tmp, rng):
    if os.environ.get("P2PCDN_DISK_FULL_INNER"):
        return inner(args, tmp, rng)
    if os.geteuid() != 0:
        raise TestSkipped("mounting a tmpfs needs root")
    env = dict(os.environ, P2PCDN_DISK_FULL_INNER="1")
    cmd = ["unshare", "-m", "--propagation", "private", sys.executable, os.path.abspath(__file__),
           "--p2pcdn", args.p2pcdn, "--seed", str(args.seed), "full"]
    p = subprocess.run(cmd, env=env, timeout=240)
    check(p.returncode == 0, f"the test inside its mount namespace failed (exit {p.returncode})")


if __name__ == "__main__":
    sys.exit(Harness({"full": test_full}).main())
