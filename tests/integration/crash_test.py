#!/usr/bin/env python3
"""Crash safety of the SQLite store: kill -9 at random moments.

  crash_test.py --p2pcdn BIN --writer store_writer --checker store_check crash|cli-kill [--seed N]

crash:
Each round starts store_writer on the same store (it stores, deletes and reads
chunks of two files, and deletes/re-adds one of them, logging every committed
operation), kills it with SIGKILL after a random delay of 0-300 ms (some rounds
right after start, the first one before the database even exists), then runs
store_check, which reopens the store and checks integrity_check, every chunk
held, usage(), the manifests, and that the store holds exactly what the log
says was committed (see store_fixture.hpp). Fails on the first bad check, if
the writer ever dies of anything but SIGKILL, or if too little work was done
for the test to mean anything. P2PCDN_CRASH_ROUNDS sets the number of rounds.

cli-kill: the p2pcdn command itself killed during add and export (see below).
"""

import filecmp
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import MIB, Cli, Harness, check, describe_rc, random_bytes, write_file  # noqa: E402

ROUNDS = int(os.environ.get("P2PCDN_CRASH_ROUNDS", "30"))


def test_crash(args, tmp, rng):
    db = tmp / "store.db"
    log = tmp / "ops.log"
    rounds = ROUNDS
    check(rounds >= 20, "at least 20 rounds")
    immediate = {0, 1, 2, 9, 17, 25}  # killed right after start (round 0: before the store exists)
    stats = []
    t0 = time.monotonic()
    for r in range(rounds):
        if r in immediate:
            delay = 0.0 if r != 2 else 0.002
        else:
            delay = rng.uniform(0.0, 0.3)
        seed = rng.randrange(1, 2**63)
        w = subprocess.Popen([args.writer, str(db), str(log), str(seed)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        if delay:
            time.sleep(delay)
        w.send_signal(signal.SIGKILL)
        _, err = w.communicate(timeout=30)
        check(w.returncode == -signal.SIGKILL,
              f"round {r}: the writer ended by itself ({describe_rc(w.returncode)}) before the kill:\n"
              f"{err.decode(errors='replace')}")
        try:
            c = subprocess.run([args.checker, str(db), str(log)], capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"round {r}: store_check hung")
        line = c.stdout.decode(errors="replace").strip()
        wal = db.with_name(db.name + "-wal")
        print(f"  round {r:2d}: killed after {delay * 1000:5.1f} ms, db {db.stat().st_size if db.exists() else 0:>9} B"
              f"{', WAL ' + str(wal.stat().st_size) + ' B' if wal.exists() else ''} -> {line}", flush=True)
        check(c.returncode == 0,
              f"round {r} (writer seed {seed}, kill after {delay * 1000:.1f} ms): store_check failed "
              f"({describe_rc(c.returncode)}):\n{c.stderr.decode(errors='replace')}")
        m = re.search(r"ops replayed (\d+).*held (\d+) chunks", line)
        check(m, f"unexpected store_check output: {line!r}")
        stats.append((int(m.group(1)), int(m.group(2))))
    ops, held = stats[-1]
    print(f"  {rounds} kills in {time.monotonic() - t0:.1f}s; {ops} committed operations replayed; "
          f"{held} chunks held at the end")
    # Guard against a vacuous pass (writer dying at start, nothing stored).
    check(ops >= 1000, f"only {ops} operations were committed over {rounds} rounds")
    check(max(h for _, h in stats) > 0, "no chunk was ever stored")


def integrity_check(db):
    con = sqlite3.connect(str(db))
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


def test_cli_kill(args, tmp, rng):
    """`p2pcdn add` and `p2pcdn export` killed with SIGKILL part-way: the store
    only ever lists complete, verifiable files, an interrupted add leaves no
    chunks behind, and the output path holds either nothing or the whole file."""
    cli = Cli(args.p2pcdn, tmp / "home")
    size = 48 * MIB + 4321
    src = write_file(tmp / "big.bin", random_bytes(rng, size))
    t0 = time.monotonic()
    ref = cli.add(src)["fileId"]
    full = time.monotonic() - t0
    t0 = time.monotonic()
    cli.run("export", ref, "-o", tmp / "out.bin", expect=0)
    full_export = time.monotonic() - t0
    (tmp / "out.bin").unlink()
    print(f"  {size} bytes: a complete add takes {full:.2f}s, an export {full_export:.2f}s")
    db = cli.home / "store.db"
    committed_adds, killed_after_commit, part_files, files_before = 1, 0, 0, 1
    for r in range(16):
        export = r % 4 == 3
        out = tmp / "out.bin"
        # Each add names the file differently: the id depends only on the
        # content (name included), and a new id is what shows that it committed.
        add = ["add", str(src), "--name", f"big-{r}.bin"]
        cmd = [args.p2pcdn, "--home", str(cli.home)] + (["export", ref, "-o", str(out)] if export else add)
        delay = 0.0 if r == 0 else rng.uniform(0.0, (full_export * 0.9) if export else (full * 1.1))
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate(timeout=60)
        check(p.returncode in (0, -signal.SIGKILL), f"round {r}: {describe_rc(p.returncode)}: {err.decode()}")
        finished = p.returncode == 0
        ic = integrity_check(db)
        check(ic == [("ok",)], f"round {r}: integrity_check after the kill: {ic}")
        listing = cli.ls()
        for fid, f in listing.items():
            check(f["size"] == size and f["chunksPresent"] == f["chunksTotal"],
                  f"round {r}: an incomplete file is listed after a killed {cmd[3]}: {f}")
        if export:
            if out.exists():
                check(filecmp.cmp(src, out, shallow=False), f"round {r}: a killed export left a wrong {out}")
                out.unlink()
            else:
                check(not finished, f"round {r}: export exited 0 without writing {out}")
            left = [x for x in tmp.iterdir() if x.name.startswith("out.bin.part")]
            part_files += len(left)  # SIGKILL leaves the temporary file; it is never the output itself
            for x in left:
                x.unlink()
        else:
            # A killed add either committed (the kill came after the commit) or left nothing.
            grew = len(listing) - files_before
            check(grew == 1 if finished else grew in (0, 1),
                  f"round {r}: {files_before} -> {len(listing)} files after an add that "
                  f"{'finished' if finished else 'was killed'}")
            committed_adds += grew
            killed_after_commit += grew and not finished
        files_before = len(listing)
        print(f"  round {r:2d}: {cmd[3]:<6} killed after {delay * 1000:6.1f} ms"
              f"{' (had finished)' if finished else ''}; {len(listing)} complete files listed", flush=True)
    for fid in cli.ls():
        cli.run("verify", fid, expect=0)
    cli.run("export", ref, "-o", tmp / "final.bin", expect=0)
    check(filecmp.cmp(src, tmp / "final.bin", shallow=False), "final export differs")
    # Nothing of the interrupted adds may linger: with every file removed, every
    # table but the schema bookkeeping is empty.
    for fid in cli.ls():
        cli.run("rm", fid, expect=0)
    con = sqlite3.connect(str(db))
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
                  if t != "meta" and not t.startswith("sqlite_")]
        rows = {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()
    check(all(n == 0 for n in rows.values()), f"rows left behind after removing every file: {rows}")
    data_files = list(Path(str(db) + "-chunks").iterdir())
    check(not data_files, f"chunk data files left behind after removing every file: {data_files}")
    print(f"  {committed_adds} adds committed ({killed_after_commit} of them killed after the commit); {part_files} .part- files left by killed exports (removed); "
          f"store empty after rm: {rows}")


def test_cli_interrupt(args, tmp, rng):
    """SIGINT/SIGTERM during add and export: exit 130, the interrupted add
    leaves no chunks (its import is aborted), the interrupted export leaves
    neither the output nor a .part- file."""
    cli = Cli(args.p2pcdn, tmp / "home")
    size = 192 * MIB  # add and export take ~0.3 s each here (chunk bytes written once)
    src = write_file(tmp / "big.bin", random_bytes(rng, size))
    ref = cli.add(src)["fileId"]
    db = cli.home / "store.db"
    interrupted = 0
    for r in range(8):
        export = r % 2 == 1
        sig = signal.SIGINT if r % 4 < 2 else signal.SIGTERM
        out = tmp / "out.bin"
        cmd = [args.p2pcdn, "--home", str(cli.home), "-q"] + (["export", ref, "-o", str(out)] if export
                                                             else ["add", str(src)])
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.02, 0.15))
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        check(p.returncode in (0, 130), f"round {r}: {describe_rc(p.returncode)} after {sig.name}: {err.decode()}")
        if p.returncode == 130:
            interrupted += 1
            check(b"interrupted" in err, f"round {r}: no message on stderr: {err!r}")
        if export:
            left = [x for x in tmp.iterdir() if x.name.startswith("out.bin.part")]
            check(not left, f"round {r}: {sig.name} left {left}")
            if out.exists():
                check(p.returncode == 0 and filecmp.cmp(src, out, shallow=False), f"round {r}: wrong {out}")
                out.unlink()
        listing = cli.ls()
        check(all(f["chunksPresent"] == f["chunksTotal"] for f in listing.values()),
              f"round {r}: an incomplete file is listed: {listing}")
    check(interrupted >= 4, f"only {interrupted} of 8 runs were interrupted part-way (machine too fast?)")
    for fid in cli.ls():
        cli.run("rm", fid, expect=0)
    con = sqlite3.connect(str(db))
    try:
        rows = con.execute("SELECT (SELECT COUNT(*) FROM chunks), (SELECT COUNT(*) FROM blobs), "
                           "(SELECT COUNT(*) FROM files)").fetchone()
    finally:
        con.close()
    check(rows == (0, 0, 0), f"rows left behind by interrupted adds: {rows}")
    data_files = list(Path(str(db) + "-chunks").iterdir())
    check(not data_files, f"chunk data files left behind by interrupted adds: {data_files}")
    print(f"  {interrupted} of 8 runs interrupted part-way; nothing left behind")


if __name__ == "__main__":
    sys.exit(Harness({"crash": test_crash, "cli-kill": test_cli_kill, "cli-interrupt": test_cli_interrupt}, extra_args=("--writer", "--checker")).main())
