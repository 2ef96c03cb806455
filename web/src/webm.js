// WebM (Matroska) for MediaStreamer: the init segment is everything before
// the first Cluster (EBML header, Segment header, Info, Tracks and, when
// ffmpeg wrote them up front with -cues_to_front 1, the Cues: the index for
// seeking); media segments are Clusters, of known or unknown size.
import { MAX_INIT, MAX_SEGMENT, SKIP, Segmenter, malformed, uint } from "./segments.js";

const EBML = 0x1a45dfa3, SEGMENT = 0x18538067, CLUSTER = 0x1f43b675;
const INFO = 0x1549a966, TIMECODE_SCALE = 0x2ad7b1, DURATION = 0x4489;
const CUES = 0x1c53bb6b, CUE_POINT = 0xbb, CUE_TIME = 0xb3, CUE_TRACK_POSITIONS = 0xb7, CUE_CLUSTER_POSITION = 0xf1;
const CLUSTER_TIMECODE = 0xe7;
// The Segment's children: one of them ends a Cluster of unknown size.
const LEVEL1 = new Set([0x114d9b74, INFO, 0x1654ae6b, CUES, 0x1254c367, 0x1043a770, 0x1941a469, CLUSTER]);

// An element header at b[p]: {id, size (-1: unknown), len}; null when b ends first.
export function header(b, p) {
  if (p >= b.length) return null;
  const idLen = leading(b[p]);
  if (idLen > 4) throw malformed(`bad EBML id at byte ${p}`);
  const s = p + idLen;
  if (s >= b.length) return null;
  const sizeLen = leading(b[s]);
  if (sizeLen > 8) throw malformed(`bad EBML size at byte ${s}`);
  if (s + sizeLen > b.length) return null;
  const id = uint(b, p, idLen);
  let size = b[s] & (0xff >> sizeLen);
  let allOnes = size === (0xff >> sizeLen);
  for (let k = 1; k < sizeLen; ++k) {
    size = size * 256 + b[s + k];
    allOnes = allOnes && b[s + k] === 0xff;
  }
  if (allOnes) return { id, size: -1, len: idLen + sizeLen };
  if (size > Number.MAX_SAFE_INTEGER) throw malformed("an EBML element too large");
  return { id, size, len: idLen + sizeLen };
}
function leading(x) {  // the VINT's length: 1 + its leading zero bits
  if (x === 0) return 9;
  return Math.clz32(x) - 23;
}
// The children of b[start, end): [{id, at (data start), size}].
function children(b, start, end) {
  const out = [];
  for (let p = start; p < end;) {
    const h = header(b, p);
    if (!h || h.size < 0 || p + h.len + h.size > end) throw malformed("a truncated element in the header");
    out.push({ id: h.id, at: p + h.len, size: h.size });
    p += h.len + h.size;
  }
  return out;
}
function float(b, p, n) {
  const v = new DataView(b.buffer, b.byteOffset + p, n);
  return n === 4 ? v.getFloat32(0) : n === 8 ? v.getFloat64(0) : NaN;
}

export class WebmSegmenter extends Segmenter {
  next() {
    return this.init ? this.level1() : this.header();
  }

  // Everything before the first Cluster, once it is all here.
  header() {
    const b = this.q.peek(Math.min(this.q.length, MAX_INIT + 12));
    const ebml = header(b, 0);
    if (!ebml) return null;
    if (ebml.id !== EBML || ebml.size < 0 || ebml.size > 4096) throw malformed("not WebM (no EBML header)");
    let p = ebml.len + ebml.size;
    const seg = header(b, p);
    if (!seg) return null;
    if (seg.id !== SEGMENT) throw malformed("not WebM (no Segment)");
    const segData = p + seg.len;
    const found = [];
    for (p = segData; ;) {
      if (p > MAX_INIT) throw malformed(`no Cluster in the first ${MAX_INIT} bytes`);
      const h = header(b, p);
      if (!h) return null;
      if (h.id === CLUSTER) break;
      if (h.size < 0) throw malformed("an element of unknown size in the header");
      if (p + h.len + h.size > MAX_INIT) throw malformed(`a header of more than ${MAX_INIT} bytes`);
      if (p + h.len + h.size > b.length) return null;
      found.push({ id: h.id, at: p + h.len, size: h.size });
      p += h.len + h.size;
    }
    let scale = 1e6;  // ns per timecode unit
    let duration = null;
    for (const e of found.filter((x) => x.id === INFO)) {
      for (const c of children(b, e.at, e.at + e.size)) {
        if (c.id === TIMECODE_SCALE && c.size >= 1 && c.size <= 8) scale = uint(b, c.at, c.size) || 1e6;
        if (c.id === DURATION) duration = float(b, c.at, c.size);
      }
    }
    this.scale = scale / 1e9;  // seconds per unit
    if (duration > 0 && Number.isFinite(duration)) this.duration = duration * this.scale;
    this.initEnd = p;
    const cues = found.find((x) => x.id === CUES);
    if (cues) this.cues(b, cues, segData);
    this.init = this.q.take(p);
    return { type: "init", bytes: this.init, start: 0, end: p, time: 0 };
  }
  cues(b, e, segData) {
    const ix = [];
    for (const point of children(b, e.at, e.at + e.size)) {
      if (point.id !== CUE_POINT) continue;
      let time = null, pos = null;
      for (const c of children(b, point.at, point.at + point.size)) {
        if (c.id === CUE_TIME && c.size <= 8) time = uint(b, c.at, c.size) * this.scale;
        if (c.id === CUE_TRACK_POSITIONS && pos === null) {
          for (const t of children(b, c.at, c.at + c.size)) {
            if (t.id === CUE_CLUSTER_POSITION && t.size <= 8) pos = segData + uint(b, t.at, t.size);
          }
        }
      }
      // Only positions among the Clusters (a bad Cue would send a seek into the header).
      if (time !== null && pos !== null && pos >= this.initEnd && pos < this.fileSize) ix.push({ time, offset: pos });
    }
    ix.sort((x, y) => x.time - y.time || x.offset - y.offset);
    this.index = ix.filter((x, k) => k === 0 || x.offset > ix[k - 1].offset);
    this.indexComplete = this.index.length > 0;
  }

  // After the header: Clusters are segments; anything else is passed over.
  level1() {
    const q = this.q;
    const b = q.peek(12);
    const h = header(b, 0);
    if (!h) return null;
    if (h.id !== CLUSTER) {
      if (h.id === EBML || h.id === SEGMENT) throw malformed("a second Segment (chained WebM) is not supported");
      if (h.size < 0) throw malformed("an element of unknown size between Clusters");
      this.skipping = h.len + h.size;
      return SKIP;
    }
    if (h.size >= 0) {  // given out in pieces, from its Timecode on
      const total = h.len + h.size;
      if (total > MAX_SEGMENT) throw malformed(`a Cluster of ${total} bytes (at most ${MAX_SEGMENT})`);
      const head = Math.min(total, h.len + 16);
      if (q.length < head) return null;
      return this.begin(q.offset + total, this.clusterTime(q.peek(head), h.len), q.offset + h.len);
    }
    // Of unknown size (live WebM): whole, once the next one begins.
    const end = this.clusterEnd(h.len);
    if (end === null || end > q.length) return null;
    const start = q.offset;
    const bytes = q.take(end);
    return { type: "media", bytes, start, end: start + end, time: this.clusterTime(bytes, h.len), first: true, last: true };
  }
  // A Cluster's pieces end at its children's boundaries, so that each append
  // holds whole blocks (Firefox lost the rest of a Cluster whose block was
  // split between appends: ~1 s gaps in what it buffered).
  cut(upTo) {
    const o = this.open;
    const q = this.q;
    if (upTo >= o.end) return o.end;
    while (o.bodyAt < upTo) {
      const h = header(q.peekAt(o.bodyAt - q.offset, 12), 0);
      if (!h || h.size < 0 || o.bodyAt + h.len + h.size > upTo) break;
      o.bodyAt += h.len + h.size;
    }
    return Math.min(o.bodyAt, o.end);
  }
  // A Cluster of unknown size ends where the next level-1 element (or the file) begins.
  clusterEnd(from) {
    const q = this.q;
    const b = q.peek(Math.min(q.length, MAX_SEGMENT + 12));
    for (let p = from; ;) {
      if (q.offset + p >= this.fileSize) return p;
      if (p > MAX_SEGMENT) throw malformed(`a Cluster of more than ${MAX_SEGMENT} bytes`);
      const h = header(b, p);
      if (!h) return null;
      if (LEVEL1.has(h.id)) return p;
      if (p + h.len + h.size > MAX_SEGMENT) throw malformed(`a Cluster of more than ${MAX_SEGMENT} bytes`);
      if (h.size < 0) throw malformed("an element of unknown size in a Cluster");
      p += h.len + h.size;
    }
  }
  clusterTime(b, from) {
    for (let p = from; p < b.length && p < from + 64;) {
      const h = header(b, p);
      if (!h || h.size < 0) break;
      if (h.id === CLUSTER_TIMECODE && h.size <= 8) return uint(b, p + h.len, h.size) * this.scale;
      p += h.len + h.size;
    }
    return -1;
  }
  // A Cluster's id, a size, and a Timecode first.
  findSync(b) {
    for (let p = 0; p + 4 <= b.length; ++p) {
      if (b[p] !== 0x1f || b[p + 1] !== 0x43 || b[p + 2] !== 0xb6 || b[p + 3] !== 0x75) continue;
      try {
        const h = header(b, p);
        if (!h) return p;  // cut short: take it, the parse decides
        const t = header(b, p + h.len);
        if (!t || t.id === CLUSTER_TIMECODE) return p;
      } catch { /* not a Cluster */ }
    }
    return -1;
  }
}
