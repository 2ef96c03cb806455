#!/usr/bin/env python3
"""MediaStreamer in a real browser (label "browser"): a video that a native
`p2pcdn seed` publishes, upload-limited to about twice its bit rate, plays in
a page through P2PCDN.stream() and MediaStreamer (Media Source Extensions)
while it downloads: WebM (VP9/Opus, Cues up front) and fragmented MP4
(H.264/AAC, a sidx up front, audio and video interleaved within each
fragment), both made here by ffmpeg. For each: playback
starts while less than half the file is stored, the play head reaches the
end with no stall longer than 1 s; in a second page a seek to 80 % (not
downloaded yet) plays again, from there, within the test's bound.

  web_media_test.py --p2pcdn BIN --package DIR [--firefox PATH] [--seconds N] [--runs N] [--json FILE]

Runs in a network namespace of its own that holds only loopback. Exits 77
(skip) when the browser, node, puppeteer-core, ffmpeg or the package is
missing, or no namespace can be made. bench/web_media.py runs it for the
figures (--runs, --json)."""

import argparse
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))
from browser_test import SKIP, Skipped, executable  # noqa: E402
from itest import Cli, Processes, TestFailure, check  # noqa: E402
from web_peer_test import page_result, run_in_namespace, start_seeder, start_tracker  # noqa: E402

FORMATS = {
    "webm": ('video/webm; codecs="vp9, opus"',
             ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1",
              "-c:a", "libopus", "-b:a", "64k", "-cues_to_front", "1"]),
    "mp4": ('video/mp4; codecs="avc1.42E01E, mp4a.40.2"',
            ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "64k", "-frag_interleave", "10",
             "-movflags", "frag_keyframe+empty_moov+default_base_moof+global_sidx"]),
}


def make_clip(kind, path, seconds, kbps):
    """A test-pattern clip with a tone: keyframes every 2 s, about kbps video."""
    codec = FORMATS[kind][1]
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
           "-t", str(seconds), "-g", "60", "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k",
           *codec, str(path)]
    p = subprocess.run(cmd, capture_output=True, timeout=300)
    check(p.returncode == 0, f"ffmpeg failed: {p.stderr.decode()[-1500:]}")
    return path


def play(args, url, fid, kind, seek_to=None):
    mime = FORMATS[kind][0]
    cmd = [args.node, str(HERE / "web_media.mjs"), "--package", args.package, "--tracker", url, "--file-id", fid,
           "--mime", mime, "--node-modules", args.node_modules, "--chromium", args.chromium,
           "--timeout-ms", str(args.timeout_ms)]
    cmd += ["--firefox", args.firefox] if args.firefox else []
    cmd += ["--seek-to", str(seek_to)] if seek_to else []
    cmd += ["--verbose"] if args.verbose else []
    cmd += ["--mse-limit-mb", str(args.mse_limit_mb)] if args.mse_limit_mb else []
    p = subprocess.run(cmd, capture_output=True, timeout=args.timeout_ms / 1000 * 2 + 60)
    if args.verbose:
        print(p.stderr.decode("utf-8", "replace")[-20000:], flush=True)
    return page_result(p)


def run(args, tmp):
    results = []
    for kind in args.formats.split(","):
        clip = make_clip(kind, tmp / f"clip.{kind}", args.seconds, args.kbps)
        size = clip.stat().st_size
        limit = args.upload_limit or int(2 * size / args.seconds)  # about twice the clip's bit rate
        cli = Cli(args.p2pcdn, tmp / f"seeder-{kind}")
        fid = cli.add(clip)["fileId"]
        with Processes(tmp) as procs:
            url = start_tracker(args, procs, tmp)
            start_seeder(cli, procs, tmp, fid, url, name=f"seeder-{kind}", extra=["--upload-limit", str(limit)])
            for run_no in range(args.runs):
                through = play(args, url, fid, kind)
                seek = play(args, url, fid, kind, seek_to=0.8)
                r = {"format": kind, "run": run_no, "size": size, "uploadLimit": limit, "seconds": args.seconds,
                     "through": through, "seek": seek, "paced": not args.upload_limit, "mseLimit": args.mse_limit_mb}
                results.append(r)
                check_run(r)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def check_run(r):
    t, s, kind = r["through"], r["seek"], r["format"]
    check(s["seekMs"] is not None, f"{kind}: after a seek to 80 % the play head never moved past it: {s}")
    total = t["chunksTotal"]
    print(f"  {kind}: first frame {t['firstFrameMs']:.0f} ms with {t['haveAtFirstFrame']}/{total} chunks stored; "
          f"played to {t['endTime']:.2f}/{t['duration']:.2f} s in {t['playMs'] / 1000:.1f} s, longest stall "
          f"{t['maxStallMs']:.0f} ms ({t['stalls']} over 250 ms); frames {t['frames']}", flush=True)
    print(f"  {kind}: seek {s['seekFrom']:.2f} -> 80 % with {s['haveAtSeek']}/{s['chunksTotal']} chunks stored: "
          f"playing again in {s['seekMs']:.0f} ms; then longest stall {s['maxStallMs']:.0f} ms; "
          f"stream seeks {s['media']['seeks']}; chunks stored after the seek [chunk, ms]: "
          f"{s['arrivalsAfterSeek'][:8]}", flush=True)
    check(t["haveAtFirstFrame"] * 2 < total, f"{kind}: playback began only with {t['haveAtFirstFrame']}/{total} chunks")
    check(t["endTime"] >= t["duration"] - 0.5, f"{kind}: ended at {t['endTime']} of {t['duration']} s")
    check(t["maxStallMs"] <= 1000, f"{kind}: a stall of {t['maxStallMs']:.0f} ms")
    if r["mseLimit"]:  # the browser's buffer quota was hit: played ranges removed, the goal shrunk, no stall
        q = t["media"]
        print(f"  {kind}: {q['quotaEvictions']} QuotaExceededErrors met, buffer goal down to {q['bufferGoal']:.1f} s",
              flush=True)
        check(q["quotaEvictions"] > 0, f"{kind}: a {r['mseLimit']} MB SourceBuffer never refused an append: {q}")
    if not r["paced"] and s["haveAtSeek"] >= s["chunksTotal"] * 0.8:  # a fast seeder (bench): the seek found it stored
        print(f"  {kind}: the download had passed 80 % before the seek (a seek from the store)", flush=True)
        return
    # Paced at twice the clip's rate, the seek always comes before the download reaches 80 %.
    check(s["haveAtSeek"] < s["chunksTotal"] * 0.8, f"{kind}: the seek came after the download passed 80 %")
    check(s["media"]["seeks"] >= 1, f"{kind}: the seek did not move the stream")
    # At twice the clip's rate a seek waits for about two chunks (bench/web_media.py measures it at 8 MB/s);
    # without the stream's seek it would wait for the download to pass 80 % (~7 s).
    check(s["seekMs"] <= 5000, f"{kind}: a seek to 80 % played again after {s['seekMs']:.0f} ms")
    behind = [c for c, _ in s["arrivalsAfterSeek"] if c < 0.6 * s["chunksTotal"]]
    check(len(behind) <= 2, f"{kind}: after the seek the swarm still fetched chunks {behind} (in flight: 2 at most)")
    check(s["maxStallMs"] <= 1000, f"{kind}: after the seek, a stall of {s['maxStallMs']:.0f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p2pcdn", required=True)
    ap.add_argument("--package", required=True, help="the built package (build/wasm/web)")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--firefox", default=None, help="run Firefox ESR (this path) instead of Chromium")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--node-modules", default=str(HERE.parent.parent / "build" / "npm" / "node_modules"))
    ap.add_argument("--formats", default="webm,mp4")
    ap.add_argument("--seconds", type=int, default=20, help="the clip's length")
    ap.add_argument("--kbps", type=int, default=2000, help="the clip's video bit rate")
    ap.add_argument("--upload-limit", type=int, default=0, help="the seeder's, bytes/s (default: twice the clip's rate)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="print the page's console")
    ap.add_argument("--mse-limit-mb", type=int, default=0,
                    help="Chromium: a SourceBuffer quota this small, so QuotaExceededError comes (checked: evictions, no stall)")
    ap.add_argument("--json", default=None, help="write every run's figures here")
    ap.add_argument("--timeout-ms", type=int, default=120000)
    ap.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1, 2**31))
    args = ap.parse_args()
    browser = ("Firefox", args.firefox) if args.firefox else ("Chromium", args.chromium)
    if not executable(shutil.which("ffmpeg") or "ffmpeg"):
        print("[web_media] SKIPPED: ffmpeg not found (./scripts/install-deps.sh installs it)", flush=True)
        return SKIP
    return run_in_namespace("web_media", args, [browser], lambda tmp: run(args, tmp))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Skipped as e:
        print(f"[web_media] SKIPPED: {e}", flush=True)
        sys.exit(SKIP)
