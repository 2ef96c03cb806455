#!/usr/bin/env python3
"""The web app in real browsers (label "browser"): `p2pcdn serve` serves it
(the browser package and web/app) with our tracker. One browser publishes a
video through the page's file input and gets a link; another opens the link:
the video plays while it downloads, the download is byte-exact, the chunk
map says the chunks came from the publisher's browser peer, the peers table
shows it as a browser; the file is listed under "On this device" and
deleted from there. A bad link gets its message; a page whose store is
bounded to 1 MiB gets "storage is full"; a page without WebRTC gets its
warning, cannot publish, and downloads the whole file from the web seed (the
server, whose node fetched it from the publisher). Screenshots of each step
are saved (--shots; docs/screenshots holds copies).

  web_app_test.py --p2pcdn BIN --package DIR --publisher chromium|firefox --viewer chromium|firefox
                  [--shots DIR] [--firefox PATH] [--chromium PATH]

Runs in a network namespace of its own that holds only loopback; exits 77
when a browser, node, puppeteer-core, ffmpeg or the package is missing."""

import argparse
import hashlib
import random
import shutil
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))
from browser_test import SKIP, executable  # noqa: E402
from itest import Processes, check, free_port, wait_port  # noqa: E402
from web_peer_test import page_result, run_in_namespace, start_tracker  # noqa: E402
from web_sw_test import make_mp4  # noqa: E402


def run(args, tmp):
    clip = make_mp4(tmp / "clip.mp4", args.seconds)
    data = clip.read_bytes()
    with Processes(tmp) as procs:
        url = start_tracker(args, procs, tmp)
        port = free_port()
        gw = procs.spawn([args.p2pcdn, "--home", str(tmp / "server"), "-q", "serve", "--app", args.package,
                          "--tracker", url, "--listen", f"127.0.0.1:{port}", "--loopback"], "serve")
        wait_port(port, gw, tmp / "serve.log")
        origin = f"http://127.0.0.1:{port}"
        cmd = [args.node, str(HERE / "web_app.mjs"), "--origin", origin, "--video", str(clip),
               "--publisher", args.publisher, "--viewer", args.viewer, "--shots", args.shots,
               "--node-modules", args.node_modules, "--chromium", args.chromium, "--firefox", args.firefox,
               "--timeout-ms", str(args.timeout_ms)] + (["--verbose"] if args.verbose else [])
        p = subprocess.run(cmd, capture_output=True, timeout=args.timeout_ms / 1000 * 6 + 60)
        if args.verbose:
            sys.stderr.write(p.stderr.decode("utf-8", "replace"))
        r = page_result(p, tmp / "serve.log")
    fid, v = r["fileId"], r["viewer"]
    check(v["done"] and v["size"] == len(data) and v["sha256"] == hashlib.sha256(data).hexdigest(),
          f"the viewer's download is not the file: {v['size']} bytes, sha {v['sha256']}")
    check(v["name"] == "clip.mp4" and "video/mp4" in v["meta"], f"viewer header: {v['name']!r} / {v['meta']!r}")
    check(v["mediaError"] is None and v["currentTime"] > 2, f"the video did not play: {v}")
    pub = r["publisherPeerId"]
    check(v["sources"].get(pub, 0) > 0, f"no chunk from the publisher {pub[16:24]} in the map: {v['sources']}")
    check(f"browser {pub[16:24]}" in v["legend"], f"the map's legend does not name the publisher's browser: {v['legend']!r}")
    check(pub[16:24] in v["peers"] and "browser" in v["peers"], f"peers table: {v['peers']!r}")
    check(fid in v["stored"], f"the file is not listed under On this device: {v['stored']}")
    check(r["seedingAfterClose"], "closing the viewer let the downloaded file go (the page no longer seeds it)")
    check(not r["afterDelete"]["stored"] and not r["afterDelete"]["viewerOpen"], f"after delete: {r['afterDelete']}")
    check("not a p2pcdn link" in r["badLink"], f"bad link message: {r['badLink']!r}")
    check("Storage is full" in r["quota"], f"storage-full message: {r['quota']!r}")
    n = r["noWebRTC"]
    check("webrtc" in n["banners"] and n["publishDisabled"], f"no-WebRTC page: banners {n['banners']}, publish disabled {n['publishDisabled']}")
    check(n["done"] and n["sha256"] == v["sha256"] and n["originBytes"] == len(data) and n["fromPeersBytes"] == 0,
          f"no-WebRTC download: {n['size']} bytes, {n['originBytes']} from the web seed, {n['fromPeersBytes']} from peers")
    chunks = -(-len(data) // (256 * 1024))
    check(n["sources"] == {"web seed": chunks}, f"no-WebRTC map: {n['sources']} (want all {chunks} from the web seed)")
    for s in r["shots"]:
        check(Path(s).is_file() and Path(s).stat().st_size > 10000, f"screenshot {s} missing or empty")
    print(f"  published in {args.publisher} in {r['publishMs']} ms; in {args.viewer} the first frame "
          f"{r['firstFrameMs']} ms after opening the link; map {v['sources']}, P2P share {v['share']}; delete, bad link, "
          f"storage full, no WebRTC ({n['originBytes']} bytes from the web seed) shown; screenshots in {args.shots}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--package", required=True)
    ap.add_argument("--publisher", choices=["chromium", "firefox"], default="chromium")
    ap.add_argument("--viewer", choices=["chromium", "firefox"], default="firefox")
    ap.add_argument("--shots", default=str(HERE.parent.parent / "build" / "screenshots"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--firefox", default="/usr/bin/firefox-esr")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--node-modules", default=str(HERE.parent.parent / "build" / "npm" / "node_modules"))
    ap.add_argument("--seconds", type=int, default=16)
    ap.add_argument("--timeout-ms", type=int, default=90000)
    ap.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1, 2**31))
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if not executable(shutil.which("ffmpeg") or "ffmpeg"):
        print("[web_app] SKIPPED: ffmpeg not found", flush=True)
        return SKIP
    names = {"chromium": ("Chromium", args.chromium), "firefox": ("Firefox", args.firefox)}
    browsers = list({names[args.publisher], names[args.viewer]})
    return run_in_namespace("web_app", args, browsers, lambda tmp: run(args, tmp))


if __name__ == "__main__":
    sys.exit(main())
