// Fragmented MP4 (ISO BMFF) for MediaStreamer: the init segment is every box
// up to the end of `moov`; media segments are a `moof` with the `mdat` after
// it (given out in pieces once the moof is whole). The index for seeking is the `sidx` ffmpeg writes up front with
// -movflags +global_sidx (else what was seen, and the mean bit rate).
import { MAX_INIT, MAX_SEGMENT, SKIP, Segmenter, malformed, uint } from "./segments.js";

// A box header at b[p]: {type, size, len}; null when b ends first. size 0
// (to the end of the file) needs `rest`, the file's bytes from p on.
export function box(b, p, rest) {
  if (p + 8 > b.length) return null;
  let size = uint(b, p, 4);
  const type = String.fromCharCode(b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
  let len = 8;
  if (size === 1) {
    if (p + 16 > b.length) return null;
    size = uint(b, p + 8, 8);
    len = 16;
  } else if (size === 0) {
    size = rest;
  }
  if (size < len || size > Number.MAX_SAFE_INTEGER) throw malformed(`a '${type}' box of ${size} bytes`);
  return { type, size, len };
}
// The boxes in b[start, end): {type: {at (content start), end}} (the first of each type), and all in order.
function boxes(b, start, end) {
  const first = {};
  const all = [];
  for (let p = start; p < end;) {
    const h = box(b, p, end - p);
    if (!h || p + h.size > end) throw malformed("a truncated box");
    const x = { type: h.type, at: p + h.len, end: p + h.size };
    all.push(x);
    if (!first[h.type]) first[h.type] = x;
    p += h.size;
  }
  return { first, all };
}
// mvhd/mdhd: {timescale, duration}.
function timing(b, x) {
  const v = b[x.at];
  return v === 1 ? { timescale: uint(b, x.at + 20, 4), duration: uint(b, x.at + 24, 8) }
                 : { timescale: uint(b, x.at + 12, 4), duration: uint(b, x.at + 16, 4) };
}

export class Mp4Segmenter extends Segmenter {
  constructor(fileSize) {
    super(fileSize);
    this.timescales = new Map();  // track id -> its timescale
    this.mainTrack = 0;           // the video track (else the first)
  }
  next() {
    return this.init ? this.media() : this.header();
  }

  header() {
    const b = this.q.peek(Math.min(this.q.length, MAX_INIT + 16));
    for (let p = 0; ;) {
      if (p > MAX_INIT) throw malformed(`no 'moov' in the first ${MAX_INIT} bytes`);
      const h = box(b, p, this.fileSize - p);
      if (!h) return null;
      if (h.type === "moof" || h.type === "mdat") throw malformed(`'${h.type}' before 'moov'`);
      if (p + h.size > MAX_INIT) throw malformed(`a header (up to 'moov') of more than ${MAX_INIT} bytes`);
      if (p + h.size > b.length) return null;
      p += h.size;
      if (h.type !== "moov") continue;
      this.moov(b, p - h.size + h.len, p);
      this.initEnd = p;
      this.init = this.q.take(p);
      return { type: "init", bytes: this.init, start: 0, end: p, time: 0 };
    }
  }
  moov(b, at, end) {
    const m = boxes(b, at, end);
    if (!m.first.mvhd) throw malformed("no 'mvhd' in 'moov'");
    const mv = timing(b, m.first.mvhd);
    if (mv.duration > 0 && mv.timescale > 0 && mv.duration < 0xffffffff) this.duration = mv.duration / mv.timescale;
    for (const t of m.all.filter((x) => x.type === "trak")) {
      const tr = boxes(b, t.at, t.end).first;
      if (!tr.tkhd || !tr.mdia) continue;
      const id = uint(b, tr.tkhd.at + (b[tr.tkhd.at] === 1 ? 20 : 12), 4);
      const md = boxes(b, tr.mdia.at, tr.mdia.end).first;
      if (!md.mdhd) continue;
      const ts = timing(b, md.mdhd).timescale;
      if (ts > 0) this.timescales.set(id, ts);
      const handler = md.hdlr ? String.fromCharCode(...b.subarray(md.hdlr.at + 8, md.hdlr.at + 12)) : "";
      if (!this.mainTrack || handler === "vide") this.mainTrack = id;
    }
    if (!this.timescales.size) throw malformed("no track in 'moov'");
    const mvex = m.first.mvex && boxes(b, m.first.mvex.at, m.first.mvex.end).first;
    if (mvex && mvex.mehd && mv.timescale > 0) {
      const d = b[mvex.mehd.at] === 1 ? uint(b, mvex.mehd.at + 4, 8) : uint(b, mvex.mehd.at + 4, 4);
      if (d > 0) this.duration = d / mv.timescale;
    }
  }

  // After moov: moof+mdat are segments; a sidx is read; the rest passed over.
  media() {
    const q = this.q;
    const b = q.peek(16);
    const h = box(b, 0, this.fileSize - q.offset);
    if (!h) return null;
    if (h.type === "sidx" && !this.indexComplete && h.size <= MAX_INIT) {
      if (q.length < h.size) return null;
      this.sidx(q.peek(h.size), h, q.offset);
    }
    if (h.type !== "moof") {
      this.skipping = h.size;
      return SKIP;
    }
    if (h.size > MAX_SEGMENT) throw malformed(`a 'moof' of ${h.size} bytes`);
    const head = q.peek(h.size + 16);
    const d = box(head, h.size, this.fileSize - q.offset - h.size);
    if (!d) return null;
    if (d.type !== "mdat") throw malformed(`'${d.type}' after 'moof' (want 'mdat')`);
    const end = h.size + d.size;
    if (end > MAX_SEGMENT) throw malformed(`a fragment of ${end} bytes (at most ${MAX_SEGMENT})`);
    return this.begin(q.offset + end, this.moofTime(head, h));  // the mdat in pieces
  }
  // The time of a fragment: its first track fragment's tfdt.
  moofTime(b, h) {
    const traf = boxes(b, h.len, h.size).first.traf;
    if (!traf) return -1;
    const t = boxes(b, traf.at, traf.end).first;
    if (!t.tfhd || !t.tfdt) return -1;
    const ts = this.timescales.get(uint(b, t.tfhd.at + 4, 4));
    if (!ts) return -1;
    return (b[t.tfdt.at] === 1 ? uint(b, t.tfdt.at + 4, 8) : uint(b, t.tfdt.at + 4, 4)) / ts;
  }
  // A segment index (the main track's): fragment times and offsets.
  sidx(b, h, offset) {
    const p = h.len;
    const v = b[p];
    const ref = uint(b, p + 4, 4);
    const ts = uint(b, p + 8, 4);
    if (!ts || (ref !== this.mainTrack && this.mainTrack)) return;
    const ept = v === 1 ? uint(b, p + 12, 8) : uint(b, p + 12, 4);
    const first = v === 1 ? uint(b, p + 20, 8) : uint(b, p + 16, 4);
    let k = p + (v === 1 ? 28 : 20);
    const count = uint(b, k + 2, 2);
    k += 4;
    if (k + count * 12 > h.size) throw malformed("a truncated 'sidx'");
    const ix = [];
    let at = offset + h.size + first, time = ept;
    for (let r = 0; r < count; ++r, k += 12) {
      const sizeWord = uint(b, k, 4);
      if (sizeWord >= 0x80000000) return;  // a hierarchical index: not used
      if (b[k + 8] & 0x80) ix.push({ time: time / ts, offset: at });  // starts with a key frame (SAP): a seek can start there
      at += sizeWord;
      time += uint(b, k + 4, 4);
    }
    if (!ix.length || at > this.fileSize) return;
    this.index = ix;
    this.indexComplete = true;
    if (!this.duration) this.duration = time / ts;
  }
  // A moof followed by its mfhd.
  findSync(b) {
    for (let p = 4; p + 12 <= b.length; ++p) {
      if (b[p] === 0x6d && b[p + 1] === 0x6f && b[p + 2] === 0x6f && b[p + 3] === 0x66 &&
          b[p + 8] === 0x6d && b[p + 9] === 0x66 && b[p + 10] === 0x68 && b[p + 11] === 0x64) return p - 4;
    }
    return -1;
  }
}
