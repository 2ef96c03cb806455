#!/usr/bin/env python3
"""The HTTP gateway (`p2pcdn serve`) and `p2pcdn stream` as real processes: a
tracker, a seeder and the gateway (a leecher with an empty store), each its
own process, over real WebRTC on loopback.

  gateway_test.py --p2pcdn BIN TEST [--seed N]

ranges: GET and HEAD headers (Content-Type, Content-Length, ETag, Accept-Ranges),
  40 random ranges plus open-ended, suffix, clamped, several (-> 200) and
  invalid (-> 416 with Content-Range */size) ranges, all byte-exact against
  slices of the file; If-None-Match -> 304, If-Range; /f/<id>/<name>; an
  encrypted file (403 without a key, plaintext with ?k=, Content-Length the
  plaintext size); the / page, /api/files and /metrics list the file.
bad-requests: bad ids, paths, methods, versions, oversize headers, bodies,
  garbage bytes, bad ranges and keys, an id nobody has (404 after
  --manifest-timeout), 60 idle connections, clients that hang up while their
  response waits for chunks: each gets its 4xx or is dropped, and the gateway
  still answers afterwards (never a crash or a hang).
concurrent: 8 clients at once (4 whole files, 4 random ranges) on a file the
  gateway does not have yet (seeder limited to 4 MB/s), then 8 again from the
  store: every body byte-exact.
ffmpeg: a 10 s test video (ffmpeg testsrc + sine, mp4 with faststart) from a
  seeder limited so the download takes several seconds: ffprobe reads its
  format and streams through the gateway while the gateway still lacks chunks,
  then ffmpeg decodes it to the end without an error, starting while the
  download is under way.
far-seek: one client reads a 24 MiB file from the start (seeder at 2 MB/s);
  a second asks for a range at 92 % of it: its first byte arrives within 2 s
  while the gateway still lacks chunks before it (/metrics), i.e. the
  streaming window moved.
stream: `p2pcdn stream` writes the file to stdout byte-identical; a reader
  that quits after 100 kB ends it cleanly (exit 0, EPIPE not a crash); an
  encrypted file's link streams plaintext.
"""

import hashlib
import http.client
import json
import os
import random
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itest import (MIB, Cli, Harness, Processes, TestFailure, check, describe_rc, free_port,  # noqa: E402
                   random_bytes, tail, wait_port, write_file)


class Net(Processes):
    """A tracker; seeders and gateways started on demand."""

    def __init__(self, args, tmp):
        super().__init__(tmp)
        self.args = args

    def __enter__(self):
        port = free_port()
        tr = self.spawn([self.args.p2pcdn, "tracker", "--listen", f"127.0.0.1:{port}"], "tracker")
        wait_port(port, tr, self.tmp / "tracker.log")
        self.url = f"ws://127.0.0.1:{port}"
        return self

    def seed(self, cli, file_id, *extra):
        p = self.spawn([cli.binary, "--home", cli.home, "-q", "--json", "seed", file_id, "--tracker", self.url,
                        "--loopback", "--duration", "280", *extra], "seeder", stdout=subprocess.PIPE)
        line = p.stdout.readline().decode()
        check(line, f"seeder printed nothing ({describe_rc(p.poll() or 0)}); see seeder.log")
        return json.loads(line)

    def gateway(self, home, *extra, name="gateway"):
        p = self.spawn([self.args.p2pcdn, "--home", home, "serve", "--listen", "127.0.0.1:0", "--tracker", self.url,
                        "--loopback", "--json", *extra], name, stdout=subprocess.PIPE)
        line = p.stdout.readline().decode()
        check(line, f"gateway printed nothing ({describe_rc(p.poll() or 0)}):\n{tail(self.tmp / (name + '.log'))}")
        info = json.loads(line)
        return Gateway(p, info["port"], self.tmp / f"{name}.log")


class Gateway:
    def __init__(self, proc, port, log):
        self.proc, self.port, self.log = proc, port, log

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, path, method="GET", headers=None, timeout=60):
        c = self.conn(timeout)
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            c.close()

    def metrics(self):
        status, _, body = self.request("/metrics")
        check(status == 200, f"/metrics answered {status}")
        out = {}
        for line in body.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
        return out

    def file_metric(self, name, fid, default=None):
        return self.metrics().get(f'{name}{{file="{fid}"}}', default)

    def alive(self):
        if self.proc.poll() is not None:
            raise TestFailure(f"the gateway died: {describe_rc(self.proc.returncode)}\n{tail(self.log)}")


def setup_file(args, tmp, rng, size, *add_args, data=None):
    data = data if data is not None else random_bytes(rng, size)
    src = write_file(tmp / "input.bin", data)
    seeder = Cli(args.p2pcdn, tmp / "seeder")
    info = seeder.add(src, *add_args)
    return data, seeder, info


def test_ranges(args, tmp, rng):
    size = 3 * MIB + 4321
    data, seeder, info = setup_file(args, tmp, rng, size, "--name", "clip.mp4")
    fid = info["fileId"]
    secret = random_bytes(rng, MIB + 77)
    enc = seeder.add(write_file(tmp / "secret.bin", secret), "--encrypt", "--name", "secret.bin")
    with Net(args, tmp) as net:
        net.seed(seeder, fid)
        net.spawn([seeder.binary, "--home", seeder.home, "-q", "seed", enc["fileId"], "--tracker", net.url,
                   "--loopback", "--duration", "280"], "seeder2")
        app = tmp / "app"
        for d in ("app", "dist"):
            (app / d).mkdir(parents=True)
        write_file(app / "app" / "index.html", b"<!doctype html><title>the app</title>")
        write_file(app / "dist" / "sw.js", b"// worker")
        write_file(app / "dist" / "core.wasm", b"\0asm")
        write_file(tmp / "secret.txt", b"not served")
        gw = net.gateway(tmp / "gw", "--app", str(app))
        status, h, body = gw.request(f"/f/{fid}")
        check(status == 200, f"GET answered {status}")
        check(body == data, "GET body differs from the file")
        check(h.get("content-type") == "video/mp4", f"Content-Type {h.get('content-type')}")
        check(h.get("content-length") == str(size), f"Content-Length {h.get('content-length')}")
        check(h.get("etag") == f'"{fid}"', f"ETag {h.get('etag')}")
        check(h.get("accept-ranges") == "bytes", f"Accept-Ranges {h.get('accept-ranges')}")
        status, h, body = gw.request(f"/f/{fid}/clip.mp4", method="HEAD")
        check(status == 200 and body == b"" and h.get("content-length") == str(size), f"HEAD: {status} {h}")

        def expect_range(spec, first, last):
            status, h, body = gw.request(f"/f/{fid}/clip.mp4", headers={"Range": spec})
            check(status == 206, f"{spec}: status {status}")
            check(h.get("content-range") == f"bytes {first}-{last}/{size}", f"{spec}: Content-Range {h.get('content-range')}")
            check(h.get("content-length") == str(last - first + 1), f"{spec}: Content-Length {h.get('content-length')}")
            check(body == data[first:last + 1], f"{spec}: body differs from bytes {first}-{last}")

        for _ in range(40):
            a = rng.randrange(size)
            b = rng.randrange(a, min(size, a + rng.choice([1, 100, 300000, 2 * MIB])))
            expect_range(f"bytes={a}-{b}", a, b)
        expect_range("bytes=0-0", 0, 0)
        expect_range(f"bytes={size - 1}-", size - 1, size - 1)
        expect_range("bytes=1000000-", 1000000, size - 1)
        expect_range("bytes=-1", size - 1, size - 1)
        expect_range("bytes=-500000", size - 500000, size - 1)
        expect_range(f"bytes=-{size * 2}", 0, size - 1)
        expect_range(f"bytes=5-{size * 10}", 5, size - 1)
        expect_range(f"bytes=262143-262144", 262143, 262144)  # across a chunk boundary
        for bad in (f"bytes={size}-", "bytes=-0", "bytes=9-3", "bytes=abc", "bytes=", f"bytes={size + 5}-{size + 9}"):
            status, h, body = gw.request(f"/f/{fid}", headers={"Range": bad})
            check(status == 416, f"{bad}: expected 416, got {status}")
            check(h.get("content-range") == f"bytes */{size}", f"{bad}: Content-Range {h.get('content-range')}")
        status, _, body = gw.request(f"/f/{fid}", headers={"Range": "bytes=0-9,20-29"})
        check(status == 200 and body == data, f"several ranges: expected the whole file with 200, got {status}")
        status, _, body = gw.request(f"/f/{fid}", headers={"Range": "items=0-9"})
        check(status == 200 and body == data, f"another range unit: expected 200, got {status}")
        status, _, body = gw.request(f"/f/{fid}", headers={"If-None-Match": f'"{fid}"'})
        check(status == 304 and body == b"", f"If-None-Match: expected 304, got {status}")
        status, _, body = gw.request(f"/f/{fid}", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
        check(status == 200 and body == data, f"If-Range mismatch: expected 200 with the whole, got {status}")
        status, _, body = gw.request(f"/f/{fid}", headers={"Range": "bytes=0-9", "If-Range": f'"{fid}"'})
        check(status == 206 and body == data[:10], f"If-Range match: expected 206, got {status}")

        efid = enc["fileId"]
        status, _, body = gw.request(f"/f/{efid}")
        check(status == 403, f"encrypted without a key: expected 403, got {status} {body[:200]!r}")
        key = enc["link"].split("k=")[1].split("&")[0]
        status, h, body = gw.request(f"/f/{efid}/secret.bin?k={key}")
        check(status == 200 and body == secret, f"encrypted with ?k=: status {status}, body equal {body == secret}")
        check(h.get("content-length") == str(len(secret)), f"encrypted Content-Length {h.get('content-length')}")
        status, h, body = gw.request(f"/f/{efid}?k={key}", headers={"Range": "bytes=300000-700000"})
        check(status == 206 and body == secret[300000:700001], f"encrypted range: {status}")
        status, _, body = gw.request(f"/f/{efid}?k={'0' * 64}")
        check(status == 403, f"encrypted with a wrong key: expected 403, got {status}")

        status, h, page = gw.request("/files")
        check(status == 200 and b"clip.mp4" in page and b"<video" in page, f"/files page: {status} {page[:300]!r}")
        # The web app (--app): its files, revalidated by ETag; nothing outside its folder.
        status, h, page = gw.request("/")
        check(status == 200 and page == b"<!doctype html><title>the app</title>" and h.get("content-type", "").startswith("text/html")
              and h.get("cache-control") == "no-cache", f"/ with --app: {status} {h} {page[:100]!r}")
        status, h2, _ = gw.request("/", headers={"If-None-Match": h.get("etag", "")})
        check(status == 304 and "content-length" not in h2, f"/ revalidated: {status} {h2}")
        status, h, _ = gw.request("/dist/sw.js")
        check(status == 200 and h.get("service-worker-allowed") == "/", f"sw.js: {status} {h}")
        status, h, _ = gw.request("/dist/core.wasm")
        check(status == 200 and h.get("content-type") == "application/wasm", f"wasm: {status} {h}")
        for bad in ("/../secret.txt", "/app/../../secret.txt", "/%2e%2e/secret.txt", "/app/.hidden", "/app/nothing.js", "/dist"):
            status, _, body = gw.request(bad)
            check(status == 404 and b"not served" not in body, f"{bad}: {status} {body[:80]!r}")
        status, _, body = gw.request("/api/config")
        check(status == 200 and json.loads(body).get("trackerUrl") == net.url, f"/api/config: {status} {body!r}")
        for want in (fid, enc["fileId"]):  # an encrypted file's manifest needs no key
            status, _, body = gw.request(f"/api/manifest/{want}")
            check(status == 200 and json.loads(body).get("fileId") == want, f"/api/manifest/{want[:8]}: {status} {body[:200]!r}")
        check(len(json.loads(gw.request(f"/api/manifest/{fid}")[2])["chunks"]) == (size + 262143) // 262144, "manifest chunks")
        status, _, body = gw.request("/api/files")
        files = {f["fileId"]: f for f in json.loads(body)}
        check(files.get(fid, {}).get("chunksHave") == files.get(fid, {}).get("chunksTotal"), f"/api/files: {files}")
        m = gw.metrics()
        check(m.get(f'p2pcdn_file_chunks_held{{file="{fid}"}}') == (size + 262143) // 262144, f"metrics: {m}")
        check(m.get('p2pcdn_gateway_requests_total{code="206"}', 0) >= 48, "metrics: 206 count")
        gw.alive()


def raw(port, data, read=True, timeout=10):
    """Sends raw bytes; returns the status line's code (or None if closed without an answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        if not read:
            return None
        got = b""
        try:
            while b"\r\n" not in got:
                b = s.recv(4096)
                if not b:
                    break
                got += b
        except OSError:
            pass
    if not got.startswith(b"HTTP/1."):
        return None
    return int(got.split(b" ")[1])


def test_bad_requests(args, tmp, rng):
    data, seeder, info = setup_file(args, tmp, rng, 2 * MIB)
    fid = info["fileId"]
    with Net(args, tmp) as net:
        net.seed(seeder, fid, "--upload-limit", "500000")
        gw = net.gateway(tmp / "gw", "--manifest-timeout", "1.5")
        cases = [
            ("GET /nope HTTP/1.1\r\n\r\n", 404),
            ("GET /f/xyz HTTP/1.1\r\n\r\n", 400),
            (f"GET /f/{fid[:-1]}g HTTP/1.1\r\n\r\n", 400),
            (f"GET /f/{fid}/a/b HTTP/1.1\r\n\r\n", 404),
            (f"GET /f/{fid}/a%zz HTTP/1.1\r\n\r\n", 400),
            (f"GET /f/{fid}?k=12 HTTP/1.1\r\n\r\n", 400),
            (f"POST /f/{fid} HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
            (f"DELETE / HTTP/1.1\r\n\r\n", 405),
            (f"GET http://example.com/ HTTP/1.1\r\n\r\n", 400),
            (f"GET / HTTP/9.9\r\n\r\n", 400),
            (f"GET / HTTP/1.1\r\nX-Big: {'a' * 20000}\r\n\r\n", 431),
            (f"GET / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", 413),
            (f"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 413),
            ("\x00\x01\x02 junk\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
            (f"GET /f/{fid} HTTP/1.1\r\nRange: bytes=99999999999-\r\n\r\n", 416),
            (f"GET /f/{fid} HTTP/1.1\r\nRange: bytes=5-1\r\n\r\n", 416),
        ]
        for req, want in cases:
            got = raw(gw.port, req.encode("latin-1"))
            check(got == want, f"{req[:60]!r}: expected {want}, got {got}")
        gw.alive()
        # An id nobody has: 404 once the manifest time-out passes, not a hang.
        t0 = time.monotonic()
        status, _, body = gw.request("/f/" + "ab" * 32, timeout=30)
        took = time.monotonic() - t0
        check(status == 404 and 1.0 < took < 10, f"unknown id: {status} after {took:.1f}s: {body[:200]!r}")
        # The same for a manifest lookup, then a file request on the same kept-alive connection.
        c = gw.conn(30)
        c.request("GET", "/api/manifest/" + "ef" * 32)
        r = c.getresponse()
        check(r.status == 404 and r.read(), f"unknown id's manifest: {r.status}")
        c.request("GET", "/api/manifest/nothex")
        r = c.getresponse()
        check(r.status == 400 and r.read(), f"a bad id's manifest: {r.status}")
        c.request("GET", "/metrics")
        r = c.getresponse()
        check(r.status == 200 and b"p2pcdn_gateway_requests_total" in r.read(), f"then /metrics: {r.status}")
        c.close()
        # A client that pipelines a second request while its first waits, then
        # hangs up: noticed at once, not when the wait times out (1.5 s here).
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(f"GET /f/{'cd' * 32} HTTP/1.1\r\n\r\n".encode())
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and gw.metrics().get("p2pcdn_gateway_waiting_responses", 0) != 1:
            time.sleep(0.02)
        check(gw.metrics().get("p2pcdn_gateway_waiting_responses") == 1, "the pipelining client's response is not waiting")
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        time.sleep(0.1)
        s.close()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0 and gw.metrics().get("p2pcdn_gateway_waiting_responses", 1) != 0:
            time.sleep(0.02)
        gone = time.monotonic() - t0
        check(gone < 0.7, f"a pipelining client that hung up was noticed only after {gone:.2f}s")
        # Many idle connections do not keep others out.
        idle = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(60)]
        status, _, _ = gw.request("/")
        check(status == 200, f"with 60 idle connections: / answered {status}")
        # Clients that hang up while their response waits for chunks (half-sent requests too).
        for i in range(10):
            s = socket.create_connection(("127.0.0.1", gw.port))
            s.sendall(f"GET /f/{fid} HTTP/1.1\r\nRange: bytes={rng.randrange(2 * MIB)}-\r\n\r\n".encode())
            if i % 2:
                s.recv(100)
            s.close()
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"GET /f/")
        s.close()
        for s in idle:
            s.close()
        status, _, body = gw.request(f"/f/{fid}")
        check(status == 200 and body == data, f"after the abuse: GET answered {status}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and gw.metrics().get("p2pcdn_gateway_waiting_responses", 1) != 0:
            time.sleep(0.2)
        check(gw.metrics().get("p2pcdn_gateway_waiting_responses") == 0, "responses still waiting for clients gone")
        gw.alive()


def fetch_into(gw, path, headers, results, key):
    try:
        t0 = time.monotonic()
        status, h, body = gw.request(path, headers=headers, timeout=120)
        results[key] = (status, body, time.monotonic() - t0)
    except Exception as e:  # noqa: BLE001 - reported by the caller
        results[key] = (None, repr(e), 0)


def test_concurrent(args, tmp, rng):
    size = 8 * MIB + 999
    data, seeder, info = setup_file(args, tmp, rng, size)
    fid = info["fileId"]
    with Net(args, tmp) as net:
        net.seed(seeder, fid, "--upload-limit", "4000000")
        gw = net.gateway(tmp / "gw")
        for round_ in ("while downloading", "from the store"):
            results, threads, want = {}, [], {}
            for i in range(8):
                if i < 4:
                    hdr, want[i] = {}, (200, data)
                else:
                    a = rng.randrange(size)
                    b = rng.randrange(a, size)
                    hdr, want[i] = {"Range": f"bytes={a}-{b}"}, (206, data[a:b + 1])
                t = threading.Thread(target=fetch_into, args=(gw, f"/f/{fid}", hdr, results, i))
                t.start()
                threads.append(t)
            for t in threads:
                t.join(150)
            for i in range(8):
                status, body, took = results.get(i, (None, "no result", 0))
                check(status == want[i][0], f"{round_}: client {i}: status {status} ({body if status is None else ''})")
                check(body == want[i][1], f"{round_}: client {i}: body differs ({len(body)} bytes)")
            print(f"  {round_}: 8 clients done in {max(r[2] for r in results.values()):.2f}s")
        gw.alive()


def make_video(tmp):
    ffmpeg = shutil.which("ffmpeg")
    check(ffmpeg and shutil.which("ffprobe"), "ffmpeg/ffprobe not installed (scripts/install-deps.sh installs Debian's ffmpeg)")
    out = tmp / "video.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=10:size=640x360:rate=25",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=10", "-c:v", "libx264", "-preset", "ultrafast",
                    "-b:v", "2M", "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(out)],
                   check=True, timeout=120)
    return out


def test_ffmpeg(args, tmp, rng):
    video = make_video(tmp)
    data = video.read_bytes()
    seeder = Cli(args.p2pcdn, tmp / "seeder")
    info = seeder.add(video, "--chunk-size", "65536")
    fid = info["fileId"]
    chunks = (len(data) + 65535) // 65536
    rate = max(len(data) // 8, 65536)  # about 8 s for the whole file
    print(f"  video: {len(data)} bytes, {chunks} chunks, seeder limited to {rate} B/s")
    with Net(args, tmp) as net:
        net.seed(seeder, fid, "--upload-limit", str(rate))
        gw = net.gateway(tmp / "gw")
        url = f"http://127.0.0.1:{gw.port}/f/{fid}/video.mp4"
        p = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", url],
                           capture_output=True, timeout=60)
        check(p.returncode == 0, f"ffprobe failed: {p.stderr.decode()[-2000:]}")
        probe = json.loads(p.stdout)
        held = gw.file_metric("p2pcdn_file_chunks_held", fid, 0)
        kinds = sorted(s["codec_type"] for s in probe["streams"])
        check(kinds == ["audio", "video"], f"ffprobe streams: {kinds}")
        check(abs(float(probe["format"]["duration"]) - 10) < 0.5, f"ffprobe duration {probe['format']['duration']}")
        check(held < chunks, f"ffprobe finished only after the whole file arrived ({held}/{chunks} chunks)")
        print(f"  ffprobe done with {held:.0f}/{chunks} chunks held")
        held0 = gw.file_metric("p2pcdn_file_chunks_held", fid, 0)
        t0 = time.monotonic()
        p = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", url, "-f", "null", "-"], capture_output=True,
                           timeout=120)
        took = time.monotonic() - t0
        check(p.returncode == 0, f"ffmpeg decode failed ({describe_rc(p.returncode)}): {p.stderr.decode()[-2000:]}")
        check(p.stderr.strip() == b"", f"ffmpeg reported errors: {p.stderr.decode()[-2000:]}")
        check(held0 < chunks * 0.7, f"the download was nearly over when ffmpeg started ({held0}/{chunks})")
        print(f"  ffmpeg decoded to the end in {took:.2f}s, starting with {held0:.0f}/{chunks} chunks held")
        gw.alive()


class Reader(threading.Thread):
    """Reads a response slowly in the background until stopped."""

    def __init__(self, gw, path):
        super().__init__(daemon=True)
        self.gw, self.path, self.got, self.stop = gw, path, 0, False

    def run(self):
        c = self.gw.conn(120)
        try:
            c.request("GET", self.path)
            r = c.getresponse()
            while not self.stop:
                b = r.read(65536)
                if not b:
                    break
                self.got += len(b)
        except OSError:
            pass
        finally:
            c.close()


def test_far_seek(args, tmp, rng):
    size = 24 * MIB
    data, seeder, info = setup_file(args, tmp, rng, size)
    fid = info["fileId"]
    chunk = 256 * 1024
    with Net(args, tmp) as net:
        net.seed(seeder, fid, "--upload-limit", "2000000")
        gw = net.gateway(tmp / "gw")
        reader = Reader(gw, f"/f/{fid}")
        reader.start()
        deadline = time.monotonic() + 30
        while reader.got < 512 * 1024 and time.monotonic() < deadline:
            time.sleep(0.05)
        check(reader.got >= 512 * 1024, f"the first reader got only {reader.got} bytes in 30 s")
        offset = int(size * 0.92)
        target = offset // chunk
        c = gw.conn(60)
        t0 = time.monotonic()
        c.request("GET", f"/f/{fid}", headers={"Range": f"bytes={offset}-"})
        r = c.getresponse()
        first = r.read(1)
        ttfb = time.monotonic() - t0
        m = gw.metrics()
        held = m.get(f'p2pcdn_file_chunks_held{{file="{fid}"}}', -1)
        missing = m.get(f'p2pcdn_file_first_missing_chunk{{file="{fid}"}}', -1)
        rest = r.read(2 * MIB)
        c.close()
        reader.stop = True
        check(r.status == 206 and first + rest == data[offset:offset + 1 + len(rest)], f"far seek: status {r.status}, bytes differ")
        check(missing < target, f"when the far range's first byte came, every chunk before {target} was held "
                                f"(first missing {missing}): the seek proved nothing")
        check(ttfb < 2.0, f"far seek: first byte after {ttfb:.2f}s (chunks held {held}, first missing {missing})")
        print(f"  far seek to chunk {target}: first byte in {ttfb:.3f}s with {held:.0f} chunks held, "
              f"first missing {missing:.0f}; window moves {m.get('p2pcdn_gateway_window_moves_total')}")
        gw.alive()


def test_stream(args, tmp, rng):
    size = 6 * MIB + 5
    data, seeder, info = setup_file(args, tmp, rng, size)
    fid = info["fileId"]
    secret = random_bytes(rng, 2 * MIB + 3)
    enc = seeder.add(write_file(tmp / "secret.bin", secret), "--encrypt")
    with Net(args, tmp) as net:
        net.seed(seeder, fid, "--upload-limit", "6000000")
        net.spawn([seeder.binary, "--home", seeder.home, "-q", "seed", enc["fileId"], "--tracker", net.url,
                   "--loopback", "--duration", "280"], "seeder2")
        base = [args.p2pcdn, "--home", tmp / "viewer", "stream", "--tracker", net.url, "--loopback"]
        p = subprocess.run([str(a) for a in base + [fid]], capture_output=True, timeout=120)
        check(p.returncode == 0, f"stream: {describe_rc(p.returncode)}: {p.stderr.decode()[-2000:]}")
        check(p.stdout == data, f"stream: stdout differs from the file ({len(p.stdout)} of {size} bytes)")
        # A reader that quits early (a player closed): exit 0, quickly.
        q = subprocess.Popen([str(a) for a in base[:2] + [tmp / "viewer2"] + base[3:] + [fid]], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        got = q.stdout.read(100000)
        q.stdout.close()
        try:
            rc = q.wait(timeout=20)
        except subprocess.TimeoutExpired:
            q.kill()
            raise TestFailure("stream did not end within 20 s after its reader quit")
        err = q.stderr.read().decode()
        check(got == data[:100000], "stream: the first 100 kB differ")
        check(rc == 0, f"stream after its reader quit: {describe_rc(rc)}: {err[-2000:]}")
        p = subprocess.run([str(a) for a in base + [enc["link"]]], capture_output=True, timeout=120)
        check(p.returncode == 0 and p.stdout == secret, f"stream of an encrypted link: {describe_rc(p.returncode)}, "
                                                        f"equal {p.stdout == secret}: {p.stderr.decode()[-1000:]}")


def test_hosts(args, tmp, rng):
    """Only requests meant for the gateway: DNS rebinding (a foreign Host) gets
    421 and cross-origin pages 403, with no body and no CORS header, even for a
    private file whose key is in the store's keys/; --allow-host and --cors
    open exactly what they name."""
    home = tmp / "gw"
    cli = Cli(args.p2pcdn, home)
    secret = random_bytes(rng, 300 * 1024 + 5)
    enc = cli.add(write_file(tmp / "secret.bin", secret), "--encrypt", "--name", "secret.bin")
    fid = enc["fileId"]
    unknown = "ab" * 32
    with Net(args, tmp) as net:
        gw = net.gateway(home)
        port = gw.port
        status, h, body = gw.request(f"/f/{fid}")
        check(status == 200 and body == secret, f"same-origin GET of the private file: {status}")
        check("access-control-allow-origin" not in h, f"a CORS header by default: {h}")
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "localhost.evil"):
            for path in (f"/f/{fid}", "/api/files", f"/f/{unknown}", "/metrics"):
                status, h, body = gw.request(path, headers={"Host": host})
                check(status == 421, f"Host {host} {path}: {status}, expected 421")
                check(secret[:64] not in body and b"secret.bin" not in body, f"Host {host} {path}: leaked {body[:80]!r}")
        for origin in ("http://evil.example", "null", f"http://127.0.0.1:{port + 1}"):
            for path in (f"/f/{fid}", "/api/files", f"/api/manifest/{fid}"):
                status, h, body = gw.request(path, headers={"Origin": origin})
                check(status == 403 and "access-control-allow-origin" not in h, f"Origin {origin} {path}: {status} {h}")
                check(secret[:64] not in body, f"Origin {origin} {path}: leaked the file")
        status, _, body = gw.request(f"/f/{fid}", headers={"Origin": f"http://127.0.0.1:{port}"})
        check(status == 200 and body == secret, f"the gateway's own origin: {status}")
        # Another site's <video src> (no Origin: a no-cors request) is refused too; a followed link is not.
        status, _, body = gw.request(f"/f/{fid}", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
                                                          "Sec-Fetch-Dest": "video"})
        check(status == 403 and secret[:64] not in body, f"a cross-site <video>: {status}")
        status, _, body = gw.request(f"/f/{fid}", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
        check(status == 200 and body == secret, f"a cross-site link followed: {status}")
        status, _, body = gw.request(f"/f/{fid}", headers={"Host": f"LocalHost:{port}"})
        check(status == 200 and body == secret, f"Host localhost: {status}")
        metrics = gw.request("/metrics")[2].decode()
        check(unknown not in metrics, f"a refused request made the gateway look up {unknown}")
        gw.proc.terminate()
        gw.proc.wait(timeout=30)

        gw2 = net.gateway(home, "--allow-host", "cdn.example", "--cors", "https://app.example", name="gateway2")
        status, h, body = gw2.request(f"/f/{fid}", headers={"Host": f"cdn.example:{gw2.port}",
                                                           "Origin": "https://app.example"})
        check(status == 200 and body == secret, f"--allow-host/--cors: {status}")
        check(h.get("access-control-allow-origin") == "https://app.example" and "origin" in h.get("vary", "").lower(),
              f"--cors: CORS headers {h}")
        status, h, _ = gw2.request(f"/f/{fid}", headers={"Origin": "https://other.example"})
        check(status == 403 and "access-control-allow-origin" not in h, f"an origin --cors does not name: {status}")
        gw2.proc.terminate()
        gw2.proc.wait(timeout=30)

        # --token: without it, no fetch of an id the store lacks (401) and no keys/ (the private file
        # is not decrypted); with it (Bearer or the cookie), both.
        gw3 = net.gateway(home, "--token", "t0ken-123", name="gateway3")
        status, h, _ = gw3.request(f"/f/{unknown}")
        check(status == 401 and h.get("www-authenticate") == "Bearer", f"an unknown id without the token: {status} {h}")
        status, _, body = gw3.request(f"/f/{fid}")
        check(status != 200 or body != secret, f"keys/ applied without the token: {status}")
        check(secret[:64] not in body, "the private file's plaintext went out without the token")
        status, _, body = gw3.request(f"/f/{fid}", headers={"Authorization": "Bearer t0ken-123"})
        check(status == 200 and body == secret, f"with the token (Bearer): {status}")
        status, _, body = gw3.request(f"/f/{fid}", headers={"Cookie": "x=1; p2pcdn_token=t0ken-123"})
        check(status == 200 and body == secret, f"with the token (cookie): {status}")
        status, _, _ = gw3.request(f"/f/{unknown}", headers={"Authorization": "Bearer wrong"})
        check(status == 401, f"an unknown id with a wrong token: {status}")
    print(f"  foreign Host: 421, foreign Origin: 403, no CORS header by default; --allow-host/--cors honoured; "
          f"--token: 401 for unknown ids and no keys/ without it")


if __name__ == "__main__":
    sys.exit(Harness({"ranges": test_ranges, "bad-requests": test_bad_requests, "concurrent": test_concurrent,
                      "ffmpeg": test_ffmpeg, "far-seek": test_far_seek, "stream": test_stream,
                      "hosts": test_hosts}).main())
