// The media parsers of MediaStreamer (web/src/webm.js, web/src/mp4.js) in
// node, over clips ffmpeg makes here: WebM with Cues up front, live WebM
// (Clusters of unknown size, no Cues), fragmented MP4 with a sidx, and
// without. Pushed in 256 KiB chunks and in random pieces, they give the init
// segment and every media segment, contiguous, each from its first byte;
// the index points at segment starts; a seek (resetAt) to any time gives the
// segment that holds it first; a seek without an index finds the next
// segment start. Mutated and random files fail with "malformed" or give
// segments, never another error or a hang.
//   node media_test.mjs [--fuzz N]     (N mutated files per clip; default 60)
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { P2PCDNError } from "../../web/src/core.js";
import { Mp4Segmenter } from "../../web/src/mp4.js";
import { ByteQueue } from "../../web/src/segments.js";
import { WebmSegmenter } from "../../web/src/webm.js";
import { check, checks } from "./check.mjs";

const fuzz = process.argv.includes("--fuzz") ? Number(process.argv[process.argv.indexOf("--fuzz") + 1]) : 60;
const CHUNK = 256 * 1024;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "p2pcdn-media-test-"));
let seed = 0x9e3779b9;
const rand = (n) => {  // xorshift32 in [0, n)
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return seed % n;
};

function clip(name, args) {
  const out = path.join(tmp, name);
  execFileSync("ffmpeg", ["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                          "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                          "-t", "9", "-g", "30", "-b:v", "1500k", ...args, out]);
  return new Uint8Array(fs.readFileSync(out));
}
const CLIPS = [
  { name: "cues.webm", S: WebmSegmenter, indexed: true,
    args: ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus", "-cues_to_front", "1"] },
  { name: "live.webm", S: WebmSegmenter, indexed: false,
    args: ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus", "-live", "1", "-f", "webm"] },
  { name: "sidx.mp4", S: Mp4Segmenter, indexed: true,
    args: ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-frag_interleave", "10",
           "-movflags", "frag_keyframe+empty_moov+default_base_moof+global_sidx"] },
  { name: "plain.mp4", S: Mp4Segmenter, indexed: false,
    args: ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-movflags", "frag_keyframe+empty_moov+default_base_moof"] },
];

// Every piece the segmenter gives for `bytes` pushed from `from` in pieces of sizes().
function feed(seg, bytes, from, sizes) {
  const out = [];
  for (let at = from; at < bytes.length;) {
    const n = Math.min(sizes(), bytes.length - at);
    out.push(...seg.push(bytes.subarray(at, at + n), at));
    at += n;
  }
  return out;
}
// Pieces -> whole segments (checking that each one's pieces are contiguous).
function segmentsOf(pieces, name) {
  const segs = [];
  let open = null;
  for (const p of pieces) {
    if (p.type === "init") { segs.push({ ...p, size: p.bytes.length }); continue; }
    if (p.first) {
      check(!open, `${name}: a segment began inside another`);
      open = { start: p.start, end: p.end, time: p.time, size: 0, parts: [] };
    }
    check(open && p.start === open.start, `${name}: a piece outside its segment`);
    open.parts.push(p.bytes);
    open.size += p.bytes.length;
    if (p.last) {
      check(open.size === open.end - open.start, `${name}: a segment of ${open.size} bytes spans ${open.end - open.start}`);
      segs.push({ type: "media", start: open.start, end: open.end, time: open.time, bytes: concat(open.parts) });
      open = null;
    }
  }
  return segs;
}
const concat = (parts) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let k = 0;
  for (const p of parts) { out.set(p, k); k += p.length; }
  return out;
};
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const startsAsSegment = (c, b) => c.S === WebmSegmenter
  ? b[0] === 0x1f && b[1] === 0x43 && b[2] === 0xb6 && b[3] === 0x75
  : String.fromCharCode(...b.subarray(4, 8)) === "moof";

// ByteQueue: views and copies across parts.
{
  const q = new ByteQueue(100);
  q.push(Uint8Array.of(1, 2, 3));
  q.push(Uint8Array.of(4, 5));
  check(equal(q.peek(4), [1, 2, 3, 4]) && q.length === 5, "ByteQueue.peek across parts");
  const t = q.take(2);
  check(equal(t, [1, 2]) && q.offset === 102 && equal(q.take(3), [3, 4, 5]) && q.length === 0, "ByteQueue.take");
}

for (const c of CLIPS) {
  const file = clip(c.name, c.args);
  const whole = segmentsOf(feed(new c.S(file.length), file, 0, () => CHUNK), c.name);
  const odd = segmentsOf(feed(new c.S(file.length), file, 0, () => 1 + rand(70000)), c.name);
  check(whole.length > 4 && whole[0].type === "init" && whole[0].start === 0, `${c.name}: init first, then segments`);
  check(whole.length === odd.length && whole.every((s, i) => equal(s.bytes, odd[i].bytes) && s.time === odd[i].time),
        `${c.name}: pieces of other sizes give other segments`);
  const media = whole.slice(1);
  for (const s of media) {
    check(equal(s.bytes, file.subarray(s.start, s.end)), `${c.name}: a segment's bytes are not the file's at ${s.start}`);
    check(startsAsSegment(c, s.bytes), `${c.name}: a segment at ${s.start} does not begin as one`);
  }
  check(media.every((s, i) => i === 0 || (s.start >= media[i - 1].end && s.time > media[i - 1].time)),
        `${c.name}: segments out of order`);
  check(media[media.length - 1].end >= file.length - 2048, `${c.name}: the last segment ends at ${media[media.length - 1].end} of ${file.length}`);
  const seg = new c.S(file.length);
  feed(seg, file, 0, () => CHUNK);
  const starts = new Set(media.map((s) => s.start));
  check(seg.indexComplete === c.indexed && seg.index.length >= media.length / 2, `${c.name}: index ${seg.index.length}, complete ${seg.indexComplete}`);
  check(seg.index.every((e) => starts.has(e.offset)), `${c.name}: an index entry is not a segment start`);
  if (c.indexed) check(Math.abs(seg.duration - 9) < 0.2, `${c.name}: duration ${seg.duration}`);

  // Seeks: with the file's index, to the segment that holds t, from its
  // chunk's first byte; without one (a fresh segmenter that saw only the
  // init segment), to some segment start at or after the estimate.
  for (const t of [0.5, 3.3, 6, 8.7]) {
    const s = new c.S(file.length);
    feed(s, file.subarray(0, media[0].start + 16), 0, () => CHUNK);  // the header (and a sidx after it)
    if (!c.indexed) s.index = [];
    const { offset, exact } = s.offsetFor(t);
    check(exact === c.indexed || offset === media[0].start, `${c.name}: seek to ${t}: exact ${exact}`);
    const chunk = Math.floor(offset / CHUNK) * CHUNK;
    s.resetAt(chunk, offset, exact);
    const got = segmentsOf(feed(s, file, chunk, () => CHUNK), c.name);
    check(got.length && starts.has(got[0].start) && got[0].start >= offset, `${c.name}: seek to ${t} began at ${got.length && got[0].start}`);
    if (c.indexed) {
      check(got[0].start === offset && got[0].time <= t + 0.01, `${c.name}: seek to ${t} began at time ${got[0].time}`);
      const next = media.find((m) => m.start > offset);
      check(!next || next.time > t - 0.1, `${c.name}: seek to ${t} began too early (${got[0].time})`);
    }
  }

  // Mutations: a clear error or segments; never another exception, never unbounded.
  for (let k = 0; k < fuzz; ++k) {
    const m = file.slice(0, Math.min(file.length, 1 + rand(file.length)));
    for (let f = 1 + rand(8); f > 0; --f) m[rand(Math.min(m.length, k % 2 ? m.length : 4096))] = rand(256);
    try {
      feed(new c.S(m.length), m, 0, () => 1 + rand(CHUNK));
    } catch (e) {
      check(e instanceof P2PCDNError && e.code === "malformed", `${c.name} mutated: ${e && e.stack}`);
    }
  }
}
// Random bytes and absurd sizes.
for (const S of [WebmSegmenter, Mp4Segmenter]) {
  for (let k = 0; k < 20; ++k) {
    const r = Uint8Array.from({ length: 1 + rand(5000) }, () => rand(256));
    try { feed(new S(r.length), r, 0, () => 1 + rand(600)); } catch (e) {
      check(e instanceof P2PCDNError && e.code === "malformed", `random bytes: ${e && e.stack}`);
    }
  }
}
{
  // Sizes past the bounds fail at once, not after buffering them: an MP4
  // whose moov claims 4 GiB, a WebM header element of 1 GiB, a Cluster of 2^40 bytes.
  const codeOf = (f) => { try { f(); } catch (e) { return e.code; } return null; };
  const moov = Uint8Array.of(0, 0, 0, 16, 0x66, 0x74, 0x79, 0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x6d, 0x6f, 0x6f, 0x76);
  check(codeOf(() => new Mp4Segmenter(1 << 30).push(moov, 0)) === "malformed", "a moov of 4 GiB");
  const ebml = [0x1a, 0x45, 0xdf, 0xa3, 0x80, 0x18, 0x53, 0x80, 0x67, 0xff];  // EBML (empty), Segment (unknown size)
  const info = Uint8Array.of(...ebml, 0x15, 0x49, 0xa9, 0x66, 0x08, 0x40, 0, 0, 0, 0, 0, 0);  // Info of 2^30 bytes
  check(codeOf(() => new WebmSegmenter(1 << 30).push(info, 0)) === "malformed", "a WebM header element of 1 GiB");
  const webm = clip("small.webm", CLIPS[0].args);
  const s = new WebmSegmenter(1 << 30);
  const first = feed(s, webm.subarray(0, 8192), 0, () => 8192)[0];
  const big = Uint8Array.of(0x1f, 0x43, 0xb6, 0x75, 0x01, 0, 0, 1, 0, 0, 0, 0, 0xe7, 0x81, 0);  // a Cluster of 2^40 bytes
  const s2 = new WebmSegmenter(1 << 30);
  s2.push(first.bytes, 0);
  check(codeOf(() => s2.push(big, first.end)) === "malformed", "a Cluster of 2^40 bytes");
}
{
  // 200 000 tiny elements after the first segment (WebM Voids, MP4 free boxes), in one push: passed over in a loop.
  const after = (S, file, filler) => {
    const first = segmentsOf(feed(new S(file.length), file, 0, () => CHUNK), "filler")[1];
    const bytes = new Uint8Array(first.end + filler.length);
    bytes.set(file.subarray(0, first.end));
    bytes.set(filler, first.end);
    const seg = new S(1 << 30);
    let code = "none";
    try { seg.push(bytes, 0); } catch (e) { code = e.code || String(e); }
    return { code, left: seg.q.length };
  };
  const voids = new Uint8Array(400000).map((_, i) => (i % 2 ? 0x80 : 0xec));
  const w = after(WebmSegmenter, clip("voids.webm", CLIPS[0].args), voids);
  check(w.code === "none" && w.left === 0, `200 000 Void elements: ${JSON.stringify(w)}`);
  const frees = new Uint8Array(8 * 200000).map((_, i) => [0, 0, 0, 8, 0x66, 0x72, 0x65, 0x65][i % 8]);
  const f = after(Mp4Segmenter, clip("frees.mp4", CLIPS[2].args), frees);
  check(f.code === "none" && f.left === 0, `200 000 free boxes: ${JSON.stringify(f)}`);
}
fs.rmSync(tmp, { recursive: true, force: true });
console.log(`media_test: ${checks()} checks passed`);
