#!/usr/bin/env python3
"""A web seed for the tests: an HTTP/1.1 server on 127.0.0.1 that serves
files with Range support (206 with Content-Range, HEAD, keep-alive),
counting the bytes it sends. A file may be served corrupt (every 1000th byte
flipped) or failing (503). It can also serve folders as they are (a test
page and the package) and take a page's report (POST /result). Standard
library only.

  origin = RangeOrigin({"/f.bin": path}, corrupt={"/bad.bin"}, failing={"/down.bin"})
  origin.url("/f.bin"); origin.sent  # bytes of bodies sent
  origin.close()

As a program (for the browser tests, in their namespace): range_origin.py
PATH:FILE... prints {"port": N} and serves until killed; --cors adds
Access-Control-Allow-Origin: * (and exposes Content-Range)."""

import json
import re
import sys
import threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RangeOrigin:
    TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".html": "text/html",
             ".json": "application/json", ".webm": "video/webm", ".mp4": "video/mp4"}

    def __init__(self, files, corrupt=(), failing=(), cors=False, roots=None):
        self.files, self.corrupt, self.failing, self.cors = dict(files), set(corrupt), set(failing), cors
        self.roots = dict(roots or {})  # URL prefix -> folder (a page's files; never counted in `sent`)
        self.sent = 0
        self.requests = 0
        self.connections = 0  # TCP connections accepted (keep-alive: fewer than requests)
        self.results = []  # bodies POSTed to /result (a page's report)
        self.result_ready = threading.Event()
        self.lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):  # one per TCP connection
                super().setup()
                with origin.lock:
                    origin.connections += 1

            def do_HEAD(self):
                self.serve(head=True)

            def do_GET(self):
                self.serve(head=False)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(min(n, 1 << 20))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if self.path == "/result":
                    with origin.lock:
                        origin.results.append(body.decode("utf-8", "replace"))
                    origin.result_ready.set()

            def static(self, path, head):
                for prefix, folder in origin.roots.items():
                    if not path.startswith(prefix):
                        continue
                    f = (Path(folder) / path[len(prefix):].lstrip("/")).resolve()
                    if Path(folder).resolve() not in f.parents or not f.is_file():
                        break
                    data = f.read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Type", RangeOrigin.TYPES.get(f.suffix, "application/octet-stream"))
                    self.send_header("Cache-Control", "no-store")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if not head:
                        self.wfile.write(data)
                    return True
                return False

            def do_OPTIONS(self):
                self.send_response(204)
                self.cors()
                self.send_header("Access-Control-Allow-Headers", "Range")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def cors(self):
                if origin.cors:
                    self.send_header("Access-Control-Allow-Origin", "*")
                    self.send_header("Access-Control-Expose-Headers", "Content-Range, Content-Length")

            def serve(self, head):
                path = self.path.split("?")[0]
                if path not in origin.files and self.static(path, head):
                    return
                with origin.lock:
                    origin.requests += 1
                if path in origin.failing:
                    self.send_response(503)
                    self.cors()
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path not in origin.files:
                    self.send_response(404)
                    self.cors()
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                f = open(origin.files[path], "rb")
                size = f.seek(0, 2)
                start, end, status = 0, size - 1, 200
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if m:
                    start = int(m.group(1))
                    end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
                    status = 206
                    if start >= size or start > end:
                        f.close()
                        self.send_response(416)
                        self.cors()
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                f.seek(start)
                body = bytearray(f.read(end + 1 - start))  # only the range asked
                f.close()
                if path in origin.corrupt:
                    for i in range(0, len(body), 1000):
                        body[i] ^= 1
                self.send_response(status)
                self.cors()
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                    with origin.lock:
                        origin.sent += len(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--cors"]
    o = RangeOrigin(dict(a.split(":", 1) for a in args), cors="--cors" in sys.argv)
    print(json.dumps({"port": o.port}), flush=True)
    threading.Event().wait()
