#!/usr/bin/env python3
"""The p2pcdn command end to end: add/export round trips, listing, manifests,
removal, id resolution, encryption and exit codes.

  cli_test.py --p2pcdn BIN roundtrip|resolve|encrypted|errors [--seed N]
"""

import filecmp
import json
import os
import re
import sqlite3
import stat
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import (DEFAULT_CHUNK, EXIT_INCOMPLETE, EXIT_INTEGRITY, EXIT_IO, EXIT_NOT_FOUND, EXIT_OK,  # noqa: E402
                   EXIT_USAGE, KIB, MIB, Cli, Harness, check, check_no_output, find_unique,
                   random_bytes, store_bytes, write_file)


def chunks_for(size, chunk=DEFAULT_CHUNK):
    return (size + chunk - 1) // chunk


def check_identical(a, b, what):
    check(Path(b).exists(), f"{what}: {b} was not written")
    check(filecmp.cmp(a, b, shallow=False), f"{what}: {b} differs from {a}")


def test_roundtrip(args, tmp, rng):
    cli = Cli(args.p2pcdn, tmp / "home")
    sizes = [0, 1, DEFAULT_CHUNK, DEFAULT_CHUNK + 1, 20 * MIB + 12345]
    added = {}
    for size in sizes:
        src = write_file(tmp / f"in-{size}.bin", random_bytes(rng, size))
        p_add = cli.run("add", src, "--json", expect=EXIT_OK)
        info = json.loads(p_add.out)
        check(isinstance(info, dict) and "fileId" in info and "link" in info, f"add --json: {p_add.out!r}")
        fid = info["fileId"]
        check(info["link"] == "p2pcdn:" + fid, f"link of an unencrypted file: {info['link']!r}")
        check(info.get("size") == size, f"add --json size {info.get('size')} != {size}")
        check(info.get("chunks") == chunks_for(size), f"add --json chunks {info.get('chunks')} for {size} bytes")
        check(info.get("encrypted") is False, "add --json says encrypted")
        check(info.get("name") == src.name, f"default name {info.get('name')!r} != {src.name!r}")
        check(fid not in added, "two different files got one id")
        added[fid] = (src, size)
        print(f"  add {size:>9} bytes: {chunks_for(size)} chunks in {p_add.elapsed:.2f}s", flush=True)

    listing = cli.ls()
    check(set(listing) == set(added), f"ls --json lists {sorted(listing)}, added {sorted(added)}")
    for fid, (src, size) in added.items():
        f = listing[fid]
        check(f["size"] == size, f"ls size {f['size']} != {size}")
        check(f["chunksTotal"] == chunks_for(size), f"ls chunksTotal {f['chunksTotal']} for {size} bytes")
        check(f["chunksPresent"] == f["chunksTotal"], f"ls: {f['chunksPresent']}/{f['chunksTotal']} present")
        check(f["name"] == src.name and f["encrypted"] is False, f"ls entry {f}")

    plain = cli.run("ls", expect=EXIT_OK).out
    for fid, (src, size) in added.items():
        n = chunks_for(size)
        line = next((ln for ln in plain.splitlines() if ln.startswith(fid)), None)
        check(line is not None, f"plain ls lacks {fid}:\n{plain}")
        check(re.search(rf"\b{n}/{n}\b", line) and line.rstrip().endswith(src.name), f"plain ls line: {line!r}")

    for fid, (src, size) in added.items():
        m = cli.manifest(fid)
        check(m.get("fileId") == fid, f"manifest --json fileId {m.get('fileId')!r} != {fid}")
        check(m.get("size") == size and m.get("version") == 2 and m.get("chunkSize") == DEFAULT_CHUNK,
              f"manifest fields: { {k: m.get(k) for k in ('size', 'version', 'chunkSize')} }")
        check(isinstance(m.get("chunks"), list) and len(m["chunks"]) == chunks_for(size), "manifest chunk list")
        check("encryption" not in m, "unencrypted manifest has an encryption field")
        human = cli.run("manifest", fid, expect=EXIT_OK).out
        check(fid in human and f"{size} bytes" in human, f"manifest (text) output:\n{human}")

        out = tmp / f"out-{size}.bin"
        p = cli.run("export", fid, "-o", out, expect=EXIT_OK)
        check_identical(src, out, f"export of {size} bytes")
        check(p.out == "", f"export printed to stdout: {p.out[:200]!r}")
        check(not [x for x in tmp.iterdir() if ".part-" in x.name], "export left a .part- file")
        out.unlink()
        print(f"  export {size:>9} bytes in {p.elapsed:.2f}s", flush=True)

        v = cli.run("verify", fid, "--json", expect=EXIT_OK)
        rep = json.loads(v.out)
        n = chunks_for(size)
        check(rep == {"fileId": fid, "chunksTotal": n, "chunksVerified": n, "corrupt": [], "missing": []},
              f"verify --json: {rep}")
        vt = cli.run("verify", fid, expect=EXIT_OK)
        check(f"{n}/{n} chunks verified" in vt.out, f"verify (text): {vt.out!r}")

    # --name, --mime and a small chunk size are recorded and still round-trip.
    src = write_file(tmp / "small-chunks.dat", random_bytes(rng, 100 * KIB + 3))
    info = cli.add(src, "--name", "Grüße 文件.bin", "--mime", "video/mp4", "--chunk-size", "1024")
    m = cli.manifest(info["fileId"])
    check(m["name"] == "Grüße 文件.bin" and m["mimeType"] == "video/mp4" and m["chunkSize"] == 1024,
          f"manifest of --name/--mime/--chunk-size: {m['name']!r} {m['mimeType']!r} {m['chunkSize']}")
    check(len(m["chunks"]) == 101, f"{len(m['chunks'])} chunks of 1 KiB for 100 KiB + 3")
    cli.run("export", info["fileId"], "-o", tmp / "small.out", expect=EXIT_OK)
    check_identical(src, tmp / "small.out", "export of a 1 KiB-chunk file")
    added[info["fileId"]] = (src, src.stat().st_size)

    # Over-long names are cut to 255 bytes, never inside a UTF-8 sequence.
    for long_name, want in (("a" * 300, "a" * 255), ("é" * 200, "é" * 127)):
        info = cli.add(src, "--name", long_name)
        check(info["name"] == want, f"--name of {len(long_name.encode())} bytes became {len(info['name'].encode())} "
              f"bytes: {info['name'][-4:]!r}")
        check(cli.manifest(info["fileId"])["name"] == want, "manifest name of an over-long --name")
        added[info["fileId"]] = (src, src.stat().st_size)

    # The id depends only on the content: another publisher (another home)
    # adding the same file later gets the same id.
    again = Cli(args.p2pcdn, tmp / "second-publisher").add(src, "--name", "Grüße 文件.bin", "--mime", "video/mp4",
                                                            "--chunk-size", "1024")
    check(again["fileId"] == m["fileId"], f"the same file added by two publishers: {again['fileId']} != {m['fileId']}")

    # $P2PCDN_HOME selects the same store as --home.
    p = cli.run("ls", "--json", home=False, env={"P2PCDN_HOME": str(cli.home)}, expect=EXIT_OK)
    check({f["fileId"] for f in json.loads(p.out)} == set(added), "P2PCDN_HOME does not select the store")

    # rm removes exactly one file; everything about it is then "not found".
    victim = next(fid for fid, (_, size) in added.items() if size == 1)
    r = cli.run("rm", victim, expect=EXIT_OK)
    check(victim in r.err, f"rm says: {r.err!r}")
    check(victim not in cli.ls(), "rm'd file still listed")
    out = tmp / "gone.bin"
    cli.run("export", victim, "-o", out, expect=EXIT_NOT_FOUND)
    check_no_output(out, "export of a removed file")
    cli.run("verify", victim, expect=EXIT_NOT_FOUND)
    cli.run("manifest", victim, expect=EXIT_NOT_FOUND)
    cli.run("rm", victim, expect=EXIT_NOT_FOUND)
    del added[victim]
    check(set(cli.ls()) == set(added), "rm removed more than one file")
    big = next(fid for fid, (_, size) in added.items() if size > 20 * MIB)
    cli.run("export", big, "-o", tmp / "big.out", expect=EXIT_OK)
    check_identical(added[big][0], tmp / "big.out", "export of the 20 MiB file after an rm")

    # Removing everything leaves an empty, working store.
    for fid in list(added):
        cli.run("rm", fid, expect=EXIT_OK)
    check(cli.ls() == {}, "store not empty after removing every file")
    check(cli.run("ls", expect=EXIT_OK).out.strip() == "", "plain ls of an empty store prints something")


def test_resolve(args, tmp, rng):
    cli = Cli(args.p2pcdn, tmp / "home")
    files = {}
    for i in range(4):
        src = write_file(tmp / f"f{i}.bin", random_bytes(rng, 3000 + i))
        files[cli.add(src)["fileId"]] = src
    ids = sorted(files)

    def shortest_unique(fid):
        for n in range(4, 64):
            if sum(1 for other in ids if other.startswith(fid[:n])) == 1:
                return fid[:n]
        return fid

    for k, fid in enumerate(ids):
        src = files[fid]
        forms = {
            "full id": fid,
            "upper-case id": fid.upper(),
            "unique prefix": shortest_unique(fid),
            "upper-case prefix": shortest_unique(fid).upper(),
            "10-digit prefix": fid[:10],
            "link": "p2pcdn:" + fid,
            "link with //": "p2pcdn://" + fid,
            "upper-case scheme": "P2PCDN:" + fid,
            "link with tracker and unknown parameter": f"p2pcdn:{fid}?tr=wss%3A%2F%2Ftracker.example%3A8000&x=1",
        }
        for what, ident in forms.items():
            out = tmp / f"r{k}.out"
            cli.run("export", ident, "-o", out, expect=EXIT_OK)
            check_identical(src, out, f"export by {what} ({ident})")
            out.unlink()
        pre = shortest_unique(fid)
        check(json.loads(cli.run("verify", pre, "--json", expect=EXIT_OK).out)["fileId"] == fid, "verify by prefix")
        check(cli.manifest(pre)["fileId"] == fid, "manifest by prefix")

    out = tmp / "x.out"
    for bad in (ids[0][:3], "zzzz", "p2pcdn:" + ids[0][:63], "p2pcdn:" + ids[0] + "0", ""):
        cli.run("export", bad, "-o", out, expect=EXIT_USAGE)
    check_no_output(out, "export of a malformed id")
    taken = {fid[:6] for fid in ids}
    free = next(p for p in (f"{n:06x}" for n in range(1 << 24)) if p not in taken)
    for cmd in (("export", free, "-o", out), ("verify", free), ("manifest", free), ("rm", free)):
        cli.run(*cmd, expect=EXIT_NOT_FOUND)
    cli.run("export", "p2pcdn:" + "ab" * 32, "-o", out, expect=EXIT_NOT_FOUND)
    check_no_output(out, "export of an unknown id")

    # rm by link and by prefix.
    cli.run("rm", "p2pcdn:" + ids[0], expect=EXIT_OK)
    cli.run("rm", shortest_unique(ids[1]), expect=EXIT_OK)
    check(set(cli.ls()) == set(ids[2:]), "rm by link / prefix removed the wrong files")


def test_encrypted(args, tmp, rng):
    cli = Cli(args.p2pcdn, tmp / "home")
    size = 4 * DEFAULT_CHUNK + 777
    data = random_bytes(rng, size)
    src = write_file(tmp / "secret.bin", data)
    info = cli.add(src, "--encrypt")
    fid = info["fileId"]
    check(info.get("encrypted") is True, "add --encrypt --json does not say encrypted")
    m = re.fullmatch(r"p2pcdn:([0-9a-f]{64})[?&]k=([0-9a-f]{64})", info["link"])
    check(m and m.group(1) == fid, f"link of an encrypted file: {info['link']!r}")
    key = m.group(2)
    key_file = cli.home / "keys" / f"{fid}.key"
    check(key_file.exists(), f"no key file {key_file}")
    check(key_file.read_text().strip() == key, "stored key differs from the link's")
    check(stat.S_IMODE(key_file.stat().st_mode) & 0o077 == 0, f"key file mode {oct(key_file.stat().st_mode)}")

    man = cli.manifest(fid)
    check(man["fileId"] == fid and man["size"] == size, "manifest of the encrypted file")
    check(man.get("encryption", {}).get("algorithm") == "AES-256-GCM", f"manifest encryption: {man.get('encryption')}")
    check(re.fullmatch(r"[0-9a-f]{64}", man["encryption"].get("salt", "")), "manifest salt")
    check(key not in json.dumps(man), "the key is in the manifest")
    check(cli.ls()[fid]["encrypted"] is True, "ls does not say encrypted")
    check(json.loads(cli.run("verify", fid, "--json", expect=EXIT_OK).out)["chunksVerified"] == 5,
          "verify of the encrypted file")

    for what, ident, extra in (("id (key from the key store)", fid, ()), ("link", info["link"], ()),
                               ("id and --key", fid, ("--key", key)), ("prefix and --KEY", fid[:8], ("--key", key.upper()))):
        out = tmp / "plain.out"
        cli.run("export", ident, "-o", out, *extra, expect=EXIT_OK)
        check_identical(src, out, f"export of the encrypted file by {what}")
        out.unlink()

    # The store holds ciphertext only. Positive control: the same search finds
    # an unencrypted file's bytes in the same database.
    ctrl_data = random_bytes(rng, 2 * DEFAULT_CHUNK)
    ctrl = cli.add(write_file(tmp / "control.bin", ctrl_data))
    db = store_bytes(cli.home)  # the database and the chunk data files
    offsets = [0, 1000, DEFAULT_CHUNK // 2, DEFAULT_CHUNK + 5, 3 * DEFAULT_CHUNK + 70_000, size - 64]
    for off in offsets:
        check(db.find(data[off:off + 64]) < 0, f"plaintext bytes {off}..{off + 64} found in the store")
    found = sum(1 for off in (100, DEFAULT_CHUNK // 2, DEFAULT_CHUNK + 1000) if find_unique(db, ctrl_data[off:off + 64]) >= 0)
    check(found >= 2, "control: the unencrypted file's bytes were not found in the store (search is broken)")
    check(db.find(bytes.fromhex(key)) < 0, "the key is stored in the store")

    # Without the key: refused, nothing written. With a wrong key: refused.
    key_file.unlink()
    out = tmp / "nokey.out"
    p = cli.run("export", fid, "-o", out)
    check(p.returncode == EXIT_USAGE and "key" in p.err, f"export without a key: exit {p.returncode}, {p.err!r}")
    check_no_output(out, "export without a key")
    wrong = ("00" if key[:2] != "00" else "11") + key[2:]
    p = cli.run("export", fid, "-o", out, "--key", wrong)
    check(p.returncode not in (EXIT_OK,), "export with a wrong key succeeded")
    check_no_output(out, "export with a wrong key")
    print(f"  wrong key: exit {p.returncode}: {p.err.strip()}")
    cli.run("export", fid, "-o", out, "--key", "abc", expect=EXIT_USAGE)
    check_no_output(out, "export with a malformed key")
    cli.run("export", info["link"], "-o", out, expect=EXIT_OK)
    check_identical(src, out, "export by link after the key file was deleted")

    # Another data folder does not have the chunks (the CLI does not fetch from
    # the network), so even a link with the key is "not found" there.
    other = Cli(args.p2pcdn, tmp / "other-home")
    other.run("export", info["link"], "-o", tmp / "other.out", expect=EXIT_NOT_FOUND)
    check_no_output(tmp / "other.out", "export from a fresh home")

    # An empty file encrypts to zero chunks and still round-trips.
    empty = write_file(tmp / "empty.bin", b"")
    e = cli.add(empty, "--encrypt")
    cli.run("export", e["link"], "-o", tmp / "empty.out", expect=EXIT_OK)
    check_identical(empty, tmp / "empty.out", "export of an encrypted empty file")

    # rm deletes the key with the file.
    cli.run("rm", e["fileId"], expect=EXIT_OK)
    check(not (cli.home / "keys" / f"{e['fileId']}.key").exists(), "rm left the key file")
    cli.run("rm", fid, expect=EXIT_OK)
    check(set(cli.ls()) == {ctrl["fileId"]}, "rm of encrypted files")


def test_errors(args, tmp, rng):
    cli = Cli(args.p2pcdn, tmp / "home")
    src = write_file(tmp / "a.bin", random_bytes(rng, 3 * DEFAULT_CHUNK + 10))
    fid = cli.add(src)["fileId"]
    out = tmp / "o.bin"

    p = cli.run("--help", expect=EXIT_OK)
    check("add" in p.out and "export" in p.out, "--help lists no commands")
    usage = [(), ("frobnicate",), ("ls", "--bogus"), ("add",), ("export", fid), ("verify",), ("rm",), ("manifest",),
             ("add", src, "--chunk-size", "abc"), ("add", src, "--chunk-size", "1000"),
             ("add", src, "--chunk-size", "512"), ("add", src, "--chunk-size", str(32 * MIB)),
             ("add", src, "--mime", "bad\u0001type"), ("add", src, "--name", "tab\there"),
             ("export", fid, "-o", out, "--key", "xyz"), ("export", fid, "-o", out, "--key", "ab" * 33),
             ("export", "not-an-id!", "-o", out), ("ls", "extra-argument")]
    for args_ in usage:
        cli.run(*args_, expect=EXIT_USAGE)
    check_no_output(out, "usage errors")
    check(set(cli.ls()) == {fid}, "a refused add stored something")

    unknown = "0123456789abcdef" * 4
    for cmd in (("export", unknown, "-o", out), ("verify", unknown), ("manifest", unknown), ("rm", unknown),
                ("add", tmp / "does-not-exist.bin")):
        cli.run(*cmd, expect=EXIT_NOT_FOUND)
    check_no_output(out, "not-found errors")

    p = cli.run("add", tmp)  # a folder
    check(p.returncode not in (EXIT_OK,), "add of a folder succeeded")
    print(f"  add of a folder: exit {p.returncode}: {p.err.strip()}")

    # Output problems are I/O errors and leave nothing behind.
    cli.run("export", fid, "-o", tmp / "no-such-dir" / "o.bin", expect=EXIT_IO)
    (tmp / "a-dir").mkdir()
    p = cli.run("export", fid, "-o", tmp / "a-dir")
    check(p.returncode == EXIT_IO, f"export onto a folder: exit {p.returncode}, {p.err!r}")
    check(not [x for x in tmp.iterdir() if ".part-" in x.name], "export onto a folder left a .part- file")

    # A data folder that cannot be one.
    blocker = write_file(tmp / "not-a-dir", b"x")
    p = Cli(args.p2pcdn, blocker).run("ls")
    check(p.returncode == EXIT_IO, f"--home on a regular file: exit {p.returncode}, {p.err!r}")

    # Missing chunks: verify reports them (exit 6) and export refuses.
    db = cli.home / "store.db"
    con = sqlite3.connect(str(db))
    try:
        n = con.execute("DELETE FROM chunks WHERE idx IN (1, 3)").rowcount
        con.commit()
    finally:
        con.close()
    check(n == 2, f"deleted {n} chunk rows, expected 2")
    v = cli.run("verify", fid, "--json", expect=EXIT_INCOMPLETE)
    rep = json.loads(v.out)
    check(rep["missing"] == [1, 3] and rep["corrupt"] == [] and rep["chunksVerified"] == 2, f"verify --json: {rep}")
    check(cli.ls()[fid]["chunksPresent"] == 2, "ls chunksPresent after deleting two chunks")
    p = cli.run("export", fid, "-o", out)
    check(p.returncode == EXIT_NOT_FOUND and "chunk 1" in p.err, f"export of an incomplete file: exit {p.returncode}, {p.err!r}")
    check_no_output(out, "export of an incomplete file")
    # A failed export never replaces an existing file.
    out.write_bytes(b"precious")
    cli.run("export", fid, "-o", out, expect=EXIT_NOT_FOUND)
    check(out.read_bytes() == b"precious", "a failed export changed an existing output file")
    check(not [x for x in tmp.iterdir() if ".part-" in x.name], "failed export left a .part- file")


def test_in_place(args, tmp, rng):
    """add --in-place: the store serves the file from where it is (no copy), leaves it
    untouched, and stops counting its chunks once it changes."""
    cli = Cli(args.p2pcdn, tmp / "home")
    size = 3 * DEFAULT_CHUNK + 4321
    data = random_bytes(rng, size)
    src = write_file(tmp / "film.bin", data)
    before = os.stat(src)
    fid = cli.add(src, "--in-place")["fileId"]
    check(fid == Cli(args.p2pcdn, tmp / "home2").add(src)["fileId"], "in place and copied: different file ids")
    own = cli.home / "store.db-chunks"
    check(not any(own.iterdir()), f"add --in-place copied the file into the store: {list(own.iterdir())}")
    check(cli.ls()[fid]["chunksPresent"] == 4, f"ls after add --in-place: {cli.ls()}")
    cli.run("verify", fid, expect=EXIT_OK)
    cli.run("export", fid, "-o", tmp / "copy.bin", expect=EXIT_OK)
    check_identical(src, tmp / "copy.bin", "export of a file added in place")
    after = os.stat(src)
    check((after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns), "the store changed the file")
    # The file is edited: its chunks are no longer served (verify: missing, exit 6).
    with open(src, "r+b") as f:
        f.seek(DEFAULT_CHUNK + 10)
        f.write(b"edited")
    os.utime(src, ns=(before.st_atime_ns, before.st_mtime_ns + 2_000_000_000))
    rep = json.loads(cli.run("verify", fid, "--json", expect=EXIT_INCOMPLETE).out)
    check(rep["missing"] == [0, 1, 2, 3] and rep["corrupt"] == [], f"verify after the file changed: {rep}")
    p = cli.run("export", fid, "-o", tmp / "stale.bin")
    check(p.returncode != EXIT_OK, "export of a changed in-place file succeeded")
    check_no_output(tmp / "stale.bin", "export of a changed in-place file")
    # rm forgets it and leaves the file.
    cli.run("rm", fid, expect=EXIT_OK)
    check(src.exists() and src.stat().st_size == size, "rm of an in-place file touched the file")
    # --encrypt: the ciphertext is kept in the store, with a note.
    p = cli.run("add", src, "--in-place", "--encrypt", "--json", expect=EXIT_OK)
    check("--in-place does not apply" in p.err, f"no note for --in-place --encrypt: {p.err!r}")
    check(any(own.iterdir()), "an encrypted file added --in-place has no ciphertext in the store")
    print(f"  {size} bytes served in place; edit detected; rm left the file; --encrypt kept its ciphertext")


if __name__ == "__main__":
    sys.exit(Harness({"roundtrip": test_roundtrip, "resolve": test_resolve, "encrypted": test_encrypted,
                      "errors": test_errors, "in-place": test_in_place}).main())
