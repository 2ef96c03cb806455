// What the media parsers (webm.js, mp4.js) share: the byte queue they read a
// file from, in order from some offset, and the Segmenter that turns those
// bytes into what Media Source Extensions takes whole: the init segment (the
// container's header) and media segments (a WebM Cluster, an MP4 moof+mdat),
// each with its start time, plus a time -> byte offset index for seeking.
// Pure (no DOM): the node tests (tests/web/media_test.mjs) run it.
import { P2PCDNError } from "./core.js";

export const MAX_INIT = 16 << 20;     // header (and a front index) larger than this: malformed
export const MAX_SEGMENT = 64 << 20;  // one media segment larger than this: malformed

export const malformed = (what) => new P2PCDNError("malformed", "media: " + what, 2);
export const SKIP = Symbol("skip");  // next(): an element is being passed over (`skipping` set)

// The bytes of a file from `offset` on, as pushed; read from the front.
export class ByteQueue {
  constructor(offset = 0) {
    this.parts = [];
    this.head = 0;       // bytes of parts[0] already taken
    this.length = 0;     // bytes queued
    this.offset = offset;  // the file offset of the first queued byte
  }
  push(bytes) {
    if (bytes.length) {
      this.parts.push(bytes);
      this.length += bytes.length;
    }
  }
  // The first min(n, length) bytes, without taking them (a view when they lie in one part).
  peek(n) {
    n = Math.min(n, this.length);
    const first = this.parts[0];
    if (!first) return new Uint8Array(0);
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = new Uint8Array(n);
    let got = 0;
    for (let k = 0; got < n; ++k) {
      const p = this.parts[k];
      const from = k === 0 ? this.head : 0;
      const m = Math.min(n - got, p.length - from);
      out.set(p.subarray(from, from + m), got);
      got += m;
    }
    return out;
  }
  // Up to n bytes from `at` (an offset into the queue) on, copying only those.
  peekAt(at, n) {
    n = Math.min(n, this.length - at);
    if (n <= 0) return new Uint8Array(0);
    let k = 0, off = this.head + at;
    while (off >= this.parts[k].length) off -= this.parts[k++].length;
    if (this.parts[k].length - off >= n) return this.parts[k].subarray(off, off + n);
    const out = new Uint8Array(n);
    for (let got = 0; got < n; ++k, off = 0) {
      const m = Math.min(n - got, this.parts[k].length - off);
      out.set(this.parts[k].subarray(off, off + m), got);
      got += m;
    }
    return out;
  }
  // Takes the first n bytes (n <= length), as a copy of their own (the
  // caller's chunks may be views of memory that is reused).
  take(n) {
    const first = this.parts[0];
    const inOne = first && first.length - this.head >= n;
    const out = inOne ? first.slice(this.head, this.head + n) : this.peek(n);
    this.skip(n);
    return out;
  }
  // Drops up to n bytes from the front; how many it dropped.
  skip(n) {
    n = Math.min(n, this.length);
    let left = n;
    while (left > 0) {
      const p = this.parts[0];
      const m = Math.min(left, p.length - this.head);
      this.head += m;
      left -= m;
      if (this.head === p.length) {
        this.parts.shift();
        this.head = 0;
      }
    }
    this.length -= n;
    this.offset += n;
    return n;
  }
}

// The container-independent part; a subclass gives next() (one step at the
// queue's front: a segment, or null when it needs more bytes), findSync(bytes)
// (where a media segment may start, for a seek without an index) and its
// metadata: duration (seconds or null) and index ([{time, offset}] by time;
// `indexComplete` when it came from the file's own index, not from what was seen).
export class Segmenter {
  constructor(fileSize) {
    this.fileSize = fileSize;
    this.q = new ByteQueue(0);
    this.init = null;       // the init segment's bytes, once parsed
    this.initEnd = 0;       // the file offset where media segments begin
    this.duration = null;
    this.index = [];
    this.indexComplete = false;
    this.skipping = 0;      // bytes of an element passed over still to come
    this.open = null;       // the media segment being given out in pieces: {start, end, time}
    this.dropUntil = 0;     // after resetAt(): bytes before this offset are dropped
    this.syncing = false;   // after resetAt() without an exact offset: look for a segment start
  }

  // `bytes` are the file's bytes at `offset` (where the last push ended, or
  // where a resetAt() said). What can be appended now, in file order:
  // [{type: "init"|"media", bytes, start, end, time, first, last}]: the init
  // segment whole; a media segment [start, end) whole or in pieces (first and
  // last say which).
  push(bytes, offset) {
    const q = this.q;
    if (offset !== q.offset + q.length) throw new P2PCDNError("internal", `media: bytes at ${offset}, expected ${q.offset + q.length}`, 0);
    q.push(bytes);
    if (q.offset < this.dropUntil) q.skip(this.dropUntil - q.offset);
    if (q.length === 0) return [];
    if (this.syncing && !this.sync()) return [];
    const out = [];
    for (let s = this.step(); s; s = this.step()) {
      if (s.type === "media" && s.first) this.saw(s);
      out.push(s);
    }
    return out;
  }
  // One segment or piece, or null. next() returns SKIP after it set
  // `skipping` (an element passed over): a loop, not a recursion, so that
  // thousands of small elements in one push cannot exhaust the stack.
  step() {
    for (;;) {
      if (this.open) return this.piece();
      if (this.skipping) {
        this.skipping -= this.q.skip(this.skipping);
        if (this.skipping) return null;
      }
      const s = this.next();
      if (s !== SKIP) return s;
    }
  }
  // A media segment [start, end) of known size begins at the queue's front:
  // it is given out in pieces as its bytes come (MSE parses a segment
  // appended in contiguous parts, so a frame plays as soon as it is here).
  begin(end, time, bodyAt = end) {
    this.open = { start: this.q.offset, end, time, bodyAt, given: false };
    return this.piece();
  }
  // How far a piece may reach, given the bytes queued up to `upTo` (a
  // subclass cuts at its elements' boundaries; see WebmSegmenter).
  cut(upTo) { return upTo; }
  piece() {
    const o = this.open;
    const n = this.cut(Math.min(this.q.offset + this.q.length, o.end)) - this.q.offset;
    if (n <= 0) return null;
    const first = !o.given;
    o.given = true;
    const bytes = this.q.take(n);
    const last = this.q.offset === o.end;
    if (last) this.open = null;
    return { type: "media", bytes, start: o.start, end: o.end, time: o.time, first, last };
  }
  // Seeks: the next push() is at `offset`'s chunk start, `chunkStart`; with
  // `exact`, `offset` is a segment's start, else one is looked for from there.
  resetAt(chunkStart, offset, exact) {
    if (!this.init) throw new P2PCDNError("internal", "media: a seek before the init segment", 0);
    this.q = new ByteQueue(chunkStart);
    this.open = null;
    this.skipping = 0;
    this.dropUntil = offset;
    this.syncing = !exact;
  }
  sync() {
    const b = this.q.peek(this.q.length);
    const at = this.findSync(b);
    if (at < 0) {
      this.q.skip(Math.max(0, b.length - 16));  // a start may span the next push
      return false;
    }
    this.q.skip(at);
    this.syncing = false;
    return true;
  }
  // Where to start reading for time t: {offset, exact}.
  offsetFor(t) {
    const ix = this.index;
    let lo = 0, hi = ix.length - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (ix[mid].time <= t) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    const last = ix[ix.length - 1];
    if (best >= 0 && (this.indexComplete || best < ix.length - 1)) return { offset: ix[best].offset, exact: true };
    // Past what the index knows: by the file's mean bit rate, never before the last known start.
    const span = this.fileSize - this.initEnd;
    let offset = this.duration ? this.initEnd + Math.floor(span * Math.min(1, t / this.duration)) : this.initEnd;
    if (last && last.time <= t) offset = Math.max(offset, last.offset);
    if (last && offset === last.offset) return { offset, exact: true };
    return { offset: Math.min(offset, this.fileSize - 1), exact: offset === this.initEnd };
  }
  // A media segment seen: into the index when the file gave none.
  saw(s) {
    if (this.indexComplete || !(s.time >= 0)) return;
    const ix = this.index;
    let k = ix.length;
    while (k > 0 && ix[k - 1].offset > s.start) --k;
    if (k > 0 && ix[k - 1].offset === s.start) return;
    ix.splice(k, 0, { time: s.time, offset: s.start });
  }
}

// Big-endian unsigned integer of n bytes (n <= 8) at b[p] (exact to 2^53).
export function uint(b, p, n) {
  let v = 0;
  for (let k = 0; k < n; ++k) v = v * 256 + b[p + k];
  return v;
}
