#!/usr/bin/env python3
"""Bytes damaged inside the store's files, under the CLI's feet.

  corruption_test.py --p2pcdn BIN chunk|btree [--seed N]

chunk: bytes flipped in the middle of stored chunk data (in the chunk data
  files, found by searching them for 64 bytes of the chunk; the encrypted
  file's chunk where the store's tables say it is). `verify` exits 4 and names
  exactly the bad chunks; `export` exits 4 and writes nothing (no output, no
  .part- file, an existing output file untouched); other files in the store are
  unaffected.
btree: damage to SQLite's own structure (header, schema page, b-tree page
  headers and cell pointers, truncation, random scribbles) and to a file's
  chunk data file (truncated, removed, zeroed, scribbled). Every command must
  end with an exit code, never a signal or a hang; a failure must come with a
  message; and `export` must either write exactly the original bytes or
  nothing at all.
"""

import filecmp
import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import (DEFAULT_CHUNK, EXIT_INTEGRITY, EXIT_OK, Cli, Harness, check, check_no_output,  # noqa: E402
                   checkpoint, chunk_place, find_unique, random_bytes, write_file)


def page_size(db):
    ps = int.from_bytes(db[16:18], "big")
    return 65536 if ps == 1 else ps


def locate(db, data, start, end, what):
    """Offset in `db` of 64 bytes of data[start:end] (away from the edges);
    retries at other offsets when a sample is not found whole."""
    mid = (start + end) // 2
    for shift in range(0, (end - start) // 2 - 64, 997):
        for off in (mid + shift, mid - shift):
            if start + 32 <= off and off + 96 <= end:
                pos = find_unique(db, data[off:off + 64])
                if pos >= 0:
                    return pos
    raise AssertionError(f"{what}: bytes not found in the store")


def flip(path, pos, n=16):
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(n)
        f.seek(pos)
        f.write(bytes(x ^ 0xFF for x in b))


def write_at(path, pos, data):
    with open(path, "r+b") as f:
        f.seek(pos)
        f.write(data)


def test_chunk(args, tmp, rng):
    cli = Cli(args.p2pcdn, tmp / "home")
    size_a = 6 * DEFAULT_CHUNK + 1000  # 7 chunks, the last one short
    data_a = random_bytes(rng, size_a)
    src_a = write_file(tmp / "a.bin", data_a)
    src_b = write_file(tmp / "b.bin", random_bytes(rng, 2 * DEFAULT_CHUNK + 5))
    src_c = write_file(tmp / "c.bin", random_bytes(rng, 2 * DEFAULT_CHUNK + 5000))
    a = cli.add(src_a)["fileId"]
    b = cli.add(src_b)["fileId"]
    c_info = cli.add(src_c, "--encrypt")
    c = c_info["fileId"]

    db_path = cli.home / "store.db"
    wal = Path(str(db_path) + "-wal")
    print(f"  after the CLI closed the store: store.db-wal {'exists' if wal.exists() else 'is gone'}")
    checkpoint(db_path)
    data_files = sorted(Path(str(db_path) + "-chunks").iterdir())
    check(len(data_files) == 3, f"expected one chunk data file per stored file: {data_files}")

    # Plain file A: chunks 1 and 6 (the short last one), located by their
    # plaintext in whichever data file holds them.
    bad_a = [1, 6]
    for k in bad_a:
        start, end = k * DEFAULT_CHUNK, min((k + 1) * DEFAULT_CHUNK, size_a)
        hits = []
        for f in data_files:
            try:
                hits.append((f, locate(f.read_bytes(), data_a, start, end, f"chunk {k} of a.bin")))
            except AssertionError:
                pass
        check(len(hits) == 1, f"chunk {k} of a.bin found in {len(hits)} data files")
        f, pos = hits[0]
        print(f"  chunk {k} of a.bin: bytes {start + (end - start) // 2}.. found at {f.name} offset {pos}")
        flip(f, pos + 24)
    # Encrypted file C: its ciphertext is not known here; its last chunk is
    # where the store's tables say (5000 + 16 bytes of tag).
    path, off, length = chunk_place(db_path, c, 2)
    check(length == 5000 + 16, f"last chunk of c.bin is {length} bytes")
    flip(path, off + 24)

    # verify names exactly the bad chunks.
    v = cli.run("verify", a, expect=EXIT_INTEGRITY)
    for k in bad_a:
        check(f"chunk {k} " in v.err, f"verify does not name chunk {k}: {v.err!r}")
    check("chunk 0 " not in v.err and "chunk 2 " not in v.err, f"verify blames good chunks: {v.err!r}")
    print("  verify: " + v.err.strip().replace("\n", "\n          "))
    rep = json.loads(cli.run("verify", a, "--json", expect=EXIT_INTEGRITY).out)
    check(rep["corrupt"] == bad_a and rep["missing"] == [] and rep["chunksVerified"] == 7 - len(bad_a),
          f"verify --json: {rep}")
    rep = json.loads(cli.run("verify", c, "--json", expect=EXIT_INTEGRITY).out)
    check(rep["corrupt"] == [2] and rep["chunksVerified"] == 2, f"verify --json of the encrypted file: {rep}")

    # export refuses, writes nothing, and leaves an existing file alone.
    for fid, what in ((a, "a.bin"), (c_info["link"], "c.bin (encrypted)"), (a[:8], "a.bin by prefix")):
        out = tmp / "out.bin"
        e = cli.run("export", fid, "-o", out, expect=EXIT_INTEGRITY)
        check("corrupt" in e.err or "integrity" in e.err, f"export message: {e.err!r}")
        check_no_output(out, f"export of corrupted {what}")
    keep = tmp / "keep.bin"
    keep.write_bytes(b"the previous contents")
    cli.run("export", a, "-o", keep, expect=EXIT_INTEGRITY)
    check(keep.read_bytes() == b"the previous contents", "a failed export changed the existing output file")
    check(not [x for x in tmp.iterdir() if ".part-" in x.name], "a failed export left a .part- file")

    # The damage stays local: B is fine; ls still counts the (present, bad) chunks.
    cli.run("verify", b, expect=EXIT_OK)
    cli.run("export", b, "-o", tmp / "b.out", expect=EXIT_OK)
    check(filecmp.cmp(src_b, tmp / "b.out", shallow=False), "export of the undamaged file differs")
    listing = cli.ls()
    check(listing[a]["chunksPresent"] == 7 and listing[b]["chunksPresent"] == 3, f"ls after damage: {listing}")
    # A damaged file can be removed, and the store stays consistent.
    cli.run("rm", a, expect=EXIT_OK)
    cli.run("rm", c, expect=EXIT_OK)
    check(set(cli.ls()) == {b}, "rm of damaged files")
    con = sqlite3.connect(str(db_path))
    try:
        ic = con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()
    check(ic == [("ok",)], f"integrity_check after rm: {ic}")


class Pristine:
    """A store with two files, checkpointed; copies of it get damaged."""

    def __init__(self, args, tmp, rng):
        self.tmp = tmp
        self.home = tmp / "pristine"
        cli = Cli(args.p2pcdn, self.home)
        self.data_a = random_bytes(rng, 5 * DEFAULT_CHUNK + 300)
        self.src_a = write_file(tmp / "a.bin", self.data_a)
        self.src_b = write_file(tmp / "b.bin", random_bytes(rng, 40_000))
        self.a = cli.add(self.src_a)["fileId"]
        self.b = cli.add(self.src_b)["fileId"]
        checkpoint(self.home / "store.db")
        self.db = (self.home / "store.db").read_bytes()
        self.ps = page_size(self.db)
        con = sqlite3.connect(f"file:{self.home / 'store.db'}?immutable=1", uri=True)
        try:
            self.roots = con.execute(
                "SELECT type, name, rootpage FROM sqlite_master WHERE rootpage > 0 ORDER BY rootpage").fetchall()
        finally:
            con.close()
        self.a_data = chunk_place(self.home / "store.db", self.a, 0)[0]
        self.n = 0

    def copy(self):
        self.n += 1
        home = self.tmp / f"case{self.n}"
        shutil.copytree(self.home, home)
        return home

    def page_offset(self, page):
        return (page - 1) * self.ps + (100 if page == 1 else 0)  # b-tree header of page N


def run_damaged(args, pristine, home, what, must_fail):
    """Runs every read command on a damaged store; checks the safety rules.
    must_fail: export of file A has to fail (the damage is on its path)."""
    cli = Cli(args.p2pcdn, home)
    out = pristine.tmp / "out.bin"
    results = {}
    commands = [("ls", ("ls", "--json")), ("verify", ("verify", pristine.a, "--json")),
                ("manifest", ("manifest", pristine.a, "--json")),
                ("export A", ("export", pristine.a, "-o", out)), ("export B", ("export", pristine.b, "-o", out)),
                ("rm B", ("rm", pristine.b))]
    for name, cmd in commands:
        p = cli.run(*cmd, timeout=60)  # checks: no signal, no hang, a message on failure
        results[name] = p.returncode
        if name.startswith("export"):
            src = pristine.src_a if name == "export A" else pristine.src_b
            if p.returncode == EXIT_OK:
                check(filecmp.cmp(src, out, shallow=False), f"{what}: {name} exited 0 with wrong bytes")
                out.unlink()
            else:
                check_no_output(out, f"{what}: failed {name}")
        if p.returncode != EXIT_OK:
            if name == "verify" and p.out.strip():
                rep = json.loads(p.out)  # verify --json reports on stdout
                check(rep["corrupt"] or rep["missing"], f"{what}: verify exit {p.returncode} with a clean report")
            else:
                check("p2pcdn: " in p.err, f"{what}: {name} message: {p.err!r}")
        if name == "export A" and must_fail:
            check(p.returncode != EXIT_OK, f"{what}: export of A succeeded on a store damaged on its path")
            results["message"] = p.err.strip().splitlines()[-1]
    summary = " ".join(f"{k}={v}" for k, v in results.items() if k != "message")
    print(f"  {what:<44} {summary}" + (f"\n      {results['message']}" if "message" in results else ""), flush=True)
    return results


def test_btree(args, tmp, rng):
    pr = Pristine(args, tmp, rng)
    ps = pr.ps
    print(f"  page size {ps}, {len(pr.db) // ps} pages; roots: {pr.roots}")
    check(ps == 4096, f"store.db page size is {ps}, expected 4096")

    # Chunk bytes live in data files, not in the database (hacking.md).
    check(pr.db.find(pr.data_a[1000:1064]) < 0, "chunk bytes of a.bin found in store.db")
    # The leaf page of the files table: the rows that name A's data file.
    files_root = next(root for typ, name, root in pr.roots if name == "files")
    leaf_hdr = pr.page_offset(files_root)
    ncells = int.from_bytes(pr.db[leaf_hdr + 3:leaf_hdr + 5], "big")

    cases = []  # (description, damage(home), export of A must fail)
    db = "store.db"
    cases.append(("header: magic overwritten", lambda h: write_at(h / db, 0, b"definitely not SQLite"), True))
    cases.append(("header: page size set to 3", lambda h: write_at(h / db, 16, (3).to_bytes(2, "big")), True))
    cases.append(("schema page (1) b-tree zeroed", lambda h: write_at(h / db, 100, bytes(4000)), True))
    for typ, name, root in pr.roots:
        for label, value in (("type byte 0x00", b"\x00"), ("type byte 0x0d->0x02", b"\x02")):
            cases.append((f"root page {root} ({name}): {label}",
                          lambda h, r=root, v=value: write_at(h / db, pr.page_offset(r), v), False))
        cases.append((f"root page {root} ({name}): cell count 0xffff",
                      lambda h, r=root: write_at(h / db, pr.page_offset(r) + 3, b"\xff\xff"), False))
    cases.append((f"files page {files_root}: cell pointers scrambled",
                  lambda h: write_at(h / db, leaf_hdr + 8, rng.randbytes(2 * max(ncells, 1))), False))
    cases.append((f"files page {files_root}: first freeblock 0xfffe",
                  lambda h: write_at(h / db, leaf_hdr + 1, b"\xff\xfe"), False))
    cases.append(("file truncated to 60%", lambda h: os.truncate(h / db, len(pr.db) * 6 // 10 // ps * ps), False))
    cases.append(("file truncated to 1 page", lambda h: os.truncate(h / db, ps), True))
    cases.append(("file truncated mid-page", lambda h: os.truncate(h / db, len(pr.db) - ps // 2), False))
    for i in range(12):
        runs = [(rng.randrange(100, len(pr.db) - 300), rng.randbytes(rng.randrange(8, 300))) for _ in range(3)]

        def scribble(h, runs=runs):
            for at, junk in runs:
                write_at(h / db, at, junk)
        cases.append((f"random scribble #{i} at {[at for at, _ in runs]}", scribble, False))
    # A's chunk data file, behind the store's back.
    a_data = pr.a_data.relative_to(pr.home)
    a_len = pr.a_data.stat().st_size
    cases.append(("A's data file truncated to 60%", lambda h: os.truncate(h / a_data, a_len * 6 // 10), True))
    cases.append(("A's data file truncated to 0", lambda h: os.truncate(h / a_data, 0), True))
    cases.append(("A's data file removed", lambda h: os.unlink(h / a_data), True))
    cases.append(("A's data file zeroed in chunk 3", lambda h: write_at(h / a_data, 3 * DEFAULT_CHUNK + 100,
                                                                        bytes(5000)), True))
    cases.append(("A's data file replaced by a folder", lambda h: (os.unlink(h / a_data), os.mkdir(h / a_data)), True))
    cases.append(("A's data file grown by 1 MiB", lambda h: os.truncate(h / a_data, a_len + (1 << 20)), False))
    for i in range(4):
        runs = [(rng.randrange(0, a_len - 300), rng.randbytes(rng.randrange(8, 300))) for _ in range(3)]

        def scribble_data(h, runs=runs):
            for at, junk in runs:
                write_at(h / a_data, at, junk)
        cases.append((f"A's data file scribbled #{i} at {[at for at, _ in runs]}", scribble_data, True))

    failed_a = 0
    for what, damage, must_fail in cases:
        home = pr.copy()
        damage(home)
        r = run_damaged(args, pr, home, what, must_fail)
        failed_a += r["export A"] != EXIT_OK
        shutil.rmtree(home)
    print(f"  {len(cases)} damaged stores; export of A refused on {failed_a}; no crash, no bad output")


if __name__ == "__main__":
    sys.exit(Harness({"chunk": test_chunk, "btree": test_btree}).main())
