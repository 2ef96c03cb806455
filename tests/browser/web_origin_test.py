#!/usr/bin/env python3
"""A web seed alone, in a real browser (label "browser"): no peer in the
swarm, the file (a WebM clip made by ffmpeg) on an HTTP origin with Range
support (tests/integration/range_origin.py, which also serves the package
and web_origin.html and takes the page's report). The page plays the clip
through P2PCDN.stream() + MediaStreamer while it downloads from the origin,
then download() gives it whole: byte-identical (SHA-256), every byte from
the origin (p2pShare 0), the store lists it complete.

  web_origin_test.py --p2pcdn BIN --package DIR --browser chromium|firefox|webkit [--chromium P] [--firefox P] [--minibrowser P]

WebKitGTK (Debian builds it without WebRTC) runs as MiniBrowser under
xvfb-run: the page must say it has no RTCPeerConnection and still finish.
The browser opens the page by URL (no driver): the page POSTs its result.
Runs in a network namespace of its own that holds only loopback; exits 77
when the browser, ffmpeg, xvfb-run, the package or a namespace is missing."""

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlencode

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))
from browser_test import SKIP, Skipped, enter_loopback_namespace, executable  # noqa: E402
from itest import Cli, Processes, check  # noqa: E402
from range_origin import RangeOrigin  # noqa: E402
from web_media_test import FORMATS, make_clip  # noqa: E402
from web_peer_test import run_checked, start_tracker  # noqa: E402

MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"


def browser_cmd(args, url, profile):
    if args.browser == "chromium":
        return [args.chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}", url]
    if args.browser == "firefox":
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "user.js").write_text('user_pref("media.autoplay.default", 0);\n'
                                          'user_pref("media.autoplay.blocking_policy", 0);\n'
                                          'user_pref("browser.shell.checkDefaultBrowser", false);\n')
        return [args.firefox, "--headless", "--no-remote", "--profile", str(profile), url]
    return ["xvfb-run", "-a", args.minibrowser, url]


def run(args, tmp):
    kind = args.format or ("mp4" if args.browser == "webkit" else "webm")
    clip = make_clip(kind, tmp / f"clip.{kind}", args.seconds, 1500)
    cli = Cli(args.p2pcdn, tmp / "publisher")
    fid = cli.add(clip)["fileId"]
    manifest = cli.run("manifest", fid, "--json", expect=0).out
    pages = tmp / "pages"
    pages.mkdir()
    shutil.copy(HERE / "web_origin.html", pages / "origin.html")
    (pages / "manifest.json").write_text(manifest)
    origin = RangeOrigin({f"/origin/clip.{kind}": clip}, roots={"/dist/": Path(args.package) / "dist", "/test/": pages})
    # The browser's home and data folders are the test's (WebKit keeps IndexedDB under XDG_DATA_HOME).
    os.environ.update(HOME=str(tmp / "home"), XDG_DATA_HOME=str(tmp / "xdg-data"),
                      XDG_CACHE_HOME=str(tmp / "xdg-cache"), XDG_CONFIG_HOME=str(tmp / "xdg-config"))
    try:
        with Processes(tmp) as procs:
            url = start_tracker(args, procs, tmp)
            page = origin.url("/test/origin.html") + "?" + urlencode(
                {"tracker": url, "fileId": fid, "origin": f"/origin/clip.{kind}", "mime": FORMATS[kind][0],
                 "timeoutMs": args.timeout_ms})
            b = procs.spawn(browser_cmd(args, page, tmp / "profile"), "browser")
            got = origin.result_ready.wait(args.timeout_ms / 1000 + 30)
            check(got, f"the page reported nothing in {args.timeout_ms / 1000 + 30:.0f} s "
                       f"(browser {'exited ' + str(b.poll()) if b.poll() is not None else 'running'})")
    finally:
        origin.close()
    r = json.loads(origin.results[0])
    check(r.get("ok"), f"the page failed: {r.get('error')} ({r.get('userAgent')})")
    data = clip.read_bytes()
    if args.browser == "webkit":
        check(not r["webrtc"], "this WebKitGTK has RTCPeerConnection: the test means one without")
    check(r["size"] == len(data) and r["sha256"] == hashlib.sha256(data).hexdigest(),
          f"the page's bytes differ from the clip ({r['size']} of {len(data)})")
    st = r["stats"]
    check(st["bytesFromOrigins"] == len(data) and st["p2pShare"] == 0, f"not every byte from the origin: {st}")
    check(r["stored"] and r["stored"][0]["complete"], f"the store does not list the file complete: {r['stored']}")
    check(r["froms"] == ["web seed"], f"onProgress said the chunks came from {r['froms']} (want only the web seed)")
    check(len(data) <= origin.sent <= len(data) + 256 * 1024, f"the origin sent {origin.sent} bytes for {len(data)}")
    print(f"  {args.browser} (WebRTC: {r['webrtc']}), {kind}: played to {r['playedTo']:.2f} s {r['playMs']:.0f} ms after "
          f"streamToElement with {r['haveWhenPlaying']} chunks stored; {len(data)} bytes identical, all from the "
          f"origin ({origin.requests} requests); stored in {r['storage'].get('backend', 'the store')}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--package", required=True)
    ap.add_argument("--browser", choices=["chromium", "firefox", "webkit"], required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--firefox", default="/usr/bin/firefox-esr")
    ap.add_argument("--minibrowser", default=MINIBROWSER)
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--format", choices=sorted(FORMATS), default=None, help="default: mp4 in WebKit, else webm")
    ap.add_argument("--timeout-ms", type=int, default=60000)
    args = ap.parse_args()
    tag = f"web_origin_{args.browser}"
    try:
        need = {"chromium": [("Chromium", args.chromium)], "firefox": [("Firefox", args.firefox)],
                "webkit": [("MiniBrowser (libwebkit2gtk-4.1-0)", args.minibrowser), ("xvfb-run (xvfb)", shutil.which("xvfb-run") or "xvfb-run")]}[args.browser]
        for what, path in need + [("ffmpeg", shutil.which("ffmpeg") or "ffmpeg")]:
            if not executable(path):
                raise Skipped(f"{what} not found ({path})")
        if not (Path(args.package) / "dist" / "p2pcdn_core.wasm").is_file():
            raise Skipped(f"no browser package in {args.package}")
        netns = enter_loopback_namespace()
    except Skipped as e:
        print(f"[{tag}] SKIPPED: {e}", flush=True)
        return SKIP
    print(f"[{tag}] {netns}", flush=True)
    return run_checked(tag, lambda tmp: run(args, tmp))


if __name__ == "__main__":
    sys.exit(main())
