"""Shared helpers for the p2pcdn integration tests (Python 3 standard library only).

Every test script takes `--p2pcdn PATH` and a test name, runs in a fresh
temporary folder that is removed afterwards (kept when P2PCDN_KEEP_TMP=1), and
exits non-zero with a readable reason on the first failed check.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
DEFAULT_CHUNK = 256 * KIB

# Exit codes documented by `p2pcdn --help`.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_INTEGRITY, EXIT_IO, EXIT_INCOMPLETE = range(7)


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def describe_rc(rc):
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit {rc}"


class Cli:
    """Runs the p2pcdn binary against one data folder."""

    def __init__(self, binary, home):
        self.binary = str(binary)
        self.home = Path(home)

    def run(self, *args, expect=None, home=True, env=None, timeout=120):
        cmd = [self.binary]
        if home:
            cmd += ["--home", str(self.home)]
        cmd += [str(a) for a in args]
        full_env = dict(os.environ)
        full_env.pop("P2PCDN_HOME", None)
        if env:
            full_env.update(env)
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=full_env)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"timed out after {timeout}s: {' '.join(cmd)}")
        p.elapsed = time.monotonic() - t0
        p.out = p.stdout.decode("utf-8", "replace")
        p.err = p.stderr.decode("utf-8", "replace")
        # Never a crash, whatever the input.
        check(p.returncode >= 0,
              f"{' '.join(cmd)}: {describe_rc(p.returncode)}\nstderr: {p.err}")
        if expect is not None:
            check(p.returncode == expect,
                  f"{' '.join(cmd)}: expected exit {expect}, got {describe_rc(p.returncode)}\n"
                  f"stdout: {p.out[-2000:]}\nstderr: {p.err[-2000:]}")
        if p.returncode != 0:
            # A failure always says why: a "p2pcdn: ..." line or a usage text on
            # stderr, or (verify --json) the report on stdout.
            check(p.err.strip() != "" or p.out.strip() != "",
                  f"{' '.join(cmd)}: {describe_rc(p.returncode)} without a word")
        return p

    def add(self, path, *extra):
        p = self.run("add", path, "--json", *extra, expect=EXIT_OK)
        try:
            info = json.loads(p.out)
        except json.JSONDecodeError as e:
            raise TestFailure(f"add --json printed invalid JSON ({e}): {p.out!r}")
        check(isinstance(info, dict), f"add --json printed {type(info).__name__}, not an object")
        for key in ("fileId", "link"):
            check(key in info, f"add --json lacks {key!r}: {info}")
        check(is_file_id(info["fileId"]), f"add --json fileId is not 64 lower-case hex digits: {info['fileId']!r}")
        return info

    def ls(self):
        p = self.run("ls", "--json", expect=EXIT_OK)
        files = json.loads(p.out)
        check(isinstance(files, list), f"ls --json printed {type(files).__name__}, not an array")
        return {f["fileId"]: f for f in files}

    def manifest(self, ident):
        p = self.run("manifest", ident, "--json", expect=EXIT_OK)
        try:
            return json.loads(p.out)
        except json.JSONDecodeError as e:
            raise TestFailure(f"manifest --json printed invalid JSON ({e}): {p.out[:500]!r}")


def is_file_id(s):
    return isinstance(s, str) and len(s) == 64 and all(c in "0123456789abcdef" for c in s)


def random_bytes(rng, n):
    return rng.randbytes(n) if n else b""


def write_file(path, data):
    Path(path).write_bytes(data)
    return Path(path)


def part_leftovers(out_path):
    out_path = Path(out_path)
    return sorted(p.name for p in out_path.parent.iterdir() if p.name.startswith(out_path.name + ".part"))


def check_no_output(out_path, what):
    out_path = Path(out_path)
    check(not out_path.exists(), f"{what}: {out_path} exists after a failed export")
    left = part_leftovers(out_path)
    check(not left, f"{what}: temporary files left behind: {left}")


def checkpoint(db_path):
    """Makes sure every committed page is in the main database file, so that
    byte searches and byte edits on it see and hit the live data. The CLI
    checkpoints and removes the WAL when it closes the store; if a WAL is still
    there, fold it in with a TRUNCATE checkpoint."""
    db_path = Path(db_path)
    wal = Path(str(db_path) + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        con = sqlite3.connect(str(db_path))
        try:
            busy, log, done = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            check(busy == 0 and log == done, f"could not checkpoint {db_path}: busy={busy} log={log} done={done}")
        finally:
            con.close()
    if wal.exists():
        check(wal.stat().st_size == 0, f"{wal} still holds {wal.stat().st_size} bytes after a checkpoint")


def store_bytes(home):
    """Every byte the store in `home` keeps: store.db (checkpointed) and then
    each chunk data file (store.db-chunks/)."""
    db = Path(home) / "store.db"
    checkpoint(db)
    out = db.read_bytes()
    chunks = Path(str(db) + "-chunks")
    if chunks.is_dir():
        for f in sorted(chunks.iterdir()):
            out += f.read_bytes()
    return out


def chunk_place(db_path, file_id, index):
    """(data file, offset, length) of a stored chunk, from the store's own tables."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT f.data, f.slot, c.size FROM files f JOIN chunks c ON c.file_num=f.num "
                          "WHERE f.file_id=? AND c.idx=?", (bytes.fromhex(file_id), index)).fetchone()
    finally:
        con.close()
    check(row is not None, f"chunk {index} of {file_id} is not in the store")
    return Path(str(db_path) + "-chunks") / row[0], index * row[1], row[2]


def find_unique(haystack, needle):
    first = haystack.find(needle)
    if first < 0:
        return -1
    check(haystack.find(needle, first + 1) < 0, "a 64-byte random snippet occurs twice in the store")
    return first


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, n=3000):
    try:
        return Path(path).read_bytes()[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


def wait_port(port, proc, log=None, timeout=15):
    """Waits until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TestFailure(f"{proc.name} exited early: {describe_rc(proc.returncode)}"
                              + (f"; {Path(log).name}:\n{tail(log)}" if log else ""))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TestFailure(f"{proc.name} did not listen on {port} within {timeout}s")


class Processes:
    """Background processes of one test (tracker, seeder, leechers), each with a
    log in the test folder; stopped with SIGTERM (then SIGKILL) on exit. A
    process named "seeder" must have ended cleanly."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.procs = []

    def spawn(self, cmd, name, stdout=None, env_extra=None):
        log = open(self.tmp / f"{name}.log", "wb")
        env = dict(os.environ, **env_extra) if env_extra else None
        p = subprocess.Popen([str(c) for c in cmd], stdout=stdout if stdout is not None else log, stderr=log,
                             stdin=subprocess.DEVNULL, env=env)
        p.name = name
        self.procs.append(p)
        return p

    def adopt(self, p, name):
        """Stops a process started elsewhere on exit too."""
        p.name = name
        self.procs.append(p)
        return p

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if exc[0] is None:
            for p in self.procs:
                if p.name == "seeder":
                    check(p.returncode in (0, -signal.SIGTERM),
                          f"seeder ended with {describe_rc(p.returncode)}; seeder.log:\n{tail(self.tmp / 'seeder.log')}")


class TestSkipped(Exception):
    """The machine cannot run this test (e.g. no network namespaces): exit 77, which ctest reports as skipped."""


class Harness:
    """Parses the common arguments, makes the temporary folder, runs one test."""

    def __init__(self, tests, extra_args=()):
        ap = argparse.ArgumentParser()
        ap.add_argument("--p2pcdn", required=True)
        for a in extra_args:
            ap.add_argument(a)
        ap.add_argument("--seed", type=int, default=None)
        ap.add_argument("test", choices=sorted(tests))
        self.args = ap.parse_args()
        self.tests = tests

    def main(self):
        seed = self.args.seed
        if seed is None:
            seed = int(os.environ.get("P2PCDN_TEST_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)
        rng = random.Random(seed)
        self.args.seed = seed
        tmp = Path(tempfile.mkdtemp(prefix=f"p2pcdn-it-{self.args.test}-"))
        print(f"[{self.args.test}] seed {seed} (rerun with --seed {seed}), folder {tmp}", flush=True)
        t0 = time.monotonic()
        ok = False
        skipped = None
        try:
            self.tests[self.args.test](self.args, tmp, rng)
            ok = True
        except TestSkipped as e:
            skipped = str(e)
        except TestFailure as e:
            print(f"FAIL [{self.args.test}]: {e}", file=sys.stderr, flush=True)
        finally:
            if os.environ.get("P2PCDN_KEEP_TMP") == "1":
                print(f"kept {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        if skipped is not None:
            print(f"[{self.args.test}] SKIPPED: {skipped}", flush=True)
            return 77
        print(f"[{self.args.test}] {'passed' if ok else 'FAILED'} in {time.monotonic() - t0:.1f}s", flush=True)
        return 0 if ok else 1
