// MediaStreamer (the seed's name): plays a file while it downloads, through
// Media Source Extensions. The chunks (in order; P2PCDN.stream() gives them)
// are cut into whole media segments (web/src/webm.js, web/src/mp4.js) before
// appendBuffer; the buffer ahead of the play head is bounded; a
// QuotaExceededError removes played ranges and shrinks the goal; a seek in the
// element to an unbuffered time moves the stream (its seek()) to the segment
// that holds it, found in the file's own index (WebM Cues, MP4 sidx).
import { P2PCDNError } from "./core.js";
import { Mp4Segmenter } from "./mp4.js";
import { WebmSegmenter } from "./webm.js";

const DEFAULTS = {
  bufferAhead: 30,     // seconds buffered ahead of the play head, at most (the goal)
  minBufferAhead: 4,   // the goal never shrinks below this on QuotaExceededError
  keepBehind: 2,       // seconds behind the play head never removed to make room
  openTimeoutMs: 10000,  // the MediaSource must open within this
};

const fail = (code, message) => new P2PCDNError(code, message, { "invalid-argument": 1, unsupported: 8, "timed-out": 12, "quota-exceeded": 7, malformed: 2 }[code] || 0);

function mediaSourceClass() {
  return globalThis.MediaSource || globalThis.ManagedMediaSource || null;
}

export class MediaStreamer {
  // mimeType: the container and codecs, e.g. 'video/webm; codecs="vp9, opus"'
  // or 'video/mp4; codecs="avc1.42E01E, mp4a.40.2"'.
  constructor(mimeType, options = {}) {
    if (typeof mimeType !== "string") throw fail("invalid-argument", "MediaStreamer(mimeType): a MIME type string");
    const type = mimeType.split(";")[0].trim().toLowerCase();
    this.Segmenter = /\/webm$/.test(type) ? WebmSegmenter : /\/mp4$/.test(type) ? Mp4Segmenter : null;
    if (!this.Segmenter) throw fail("unsupported", `MediaStreamer plays WebM and fragmented MP4, not ${type}`);
    this.mimeType = mimeType;
    this.options = { ...DEFAULTS, ...options };
    this.stopped = false;
    this.stopSignal = new Promise((resolve) => { this.stopNow = () => resolve({ done: true }); });
    this.wakers = [];
    this.stats = { bytesAppended: 0, segmentsAppended: 0, seeks: 0, quotaEvictions: 0, bufferGoal: this.options.bufferAhead };
  }

  static isTypeSupported(mimeType) {
    const MS = mediaSourceClass();
    return !!MS && MS.isTypeSupported(mimeType);
  }

  // Plays `chunks` (an async iterable of the file's chunks in order; with
  // seek(i) and position, as P2PCDN.stream() gives, seeking reaches any
  // time) in `element`. Resolves once the whole file was appended (or
  // stop()); rejects with a P2PCDNError. onProgress gets this.progress().
  async streamToElement(chunks, manifest, element, onProgress) {
    if (!manifest && chunks && typeof chunks.manifest === "function") manifest = await chunks.manifest();
    if (!manifest || !(manifest.size >= 0) || !(manifest.chunkSize > 0)) {
      throw fail("invalid-argument", "streamToElement needs the file's manifest (its size and chunkSize)");
    }
    const MS = mediaSourceClass();
    if (!MS) throw fail("unsupported", "this browser has no Media Source Extensions");
    if (!MS.isTypeSupported(this.mimeType)) throw fail("unsupported", `this browser cannot play ${this.mimeType}`);
    this.element = element;
    this.chunks = chunks;
    this.chunkSize = manifest.chunkSize;
    this.seg = new this.Segmenter(manifest.size);
    this.seekable = typeof chunks.seek === "function" && "position" in chunks;
    this.seekGen = 0;       // bumped by each seek that moved the stream
    this.onProgress = onProgress || null;
    const ms = this.ms = new MS();
    if (globalThis.ManagedMediaSource && ms instanceof globalThis.ManagedMediaSource) element.disableRemotePlayback = true;
    const url = URL.createObjectURL(ms);
    element.src = url;
    try {
      await this.opened(ms);
    } finally {
      URL.revokeObjectURL(url);
    }
    this.sb = ms.addSourceBuffer(this.mimeType);
    this.sb.mode = "segments";
    const listeners = [
      [element, "seeking", () => this.seeking()],
      [element, "timeupdate", () => this.wake()],
      [element, "error", () => this.wake()],
      [this.sb, "updateend", () => this.wake()],
      [this.sb, "error", () => { this.sbError = true; this.wake(); }],
    ];
    for (const [t, e, f] of listeners) t.addEventListener(e, f);
    const it = chunks[Symbol.asyncIterator]();
    try {
      await this.run(it);
    } catch (e) {
      if (e instanceof P2PCDNError) throw e;
      throw fail("unsupported", `the media could not be played: ${e && e.message ? e.message : e}`);
    } finally {
      for (const [t, e, f] of listeners) t.removeEventListener(e, f);
      if (it.return) it.return().catch(() => {});
    }
  }

  stop() {
    this.stopped = true;
    this.wake();
    this.stopNow();
  }

  progress() {
    const el = this.element;
    return { ...this.stats, currentTime: el ? el.currentTime : 0, bufferedAhead: el ? this.ahead() : 0,
             position: this.seekable ? this.chunks.position : -1 };
  }

  async run(it) {
    let count = 0;  // chunks given (a stream without position: they are in order from 0)
    this.expect = 0;  // the file offset of the chunk wanted next (seeking() moves it)
    while (!this.stopped) {
      const gen = this.seekGen;
      await this.room(gen);
      if (this.stopped || gen !== this.seekGen) continue;
      const r = await Promise.race([it.next(), this.stopSignal]);
      if (this.stopped || r.done) break;
      const at = (this.seekable ? this.chunks.position : count++) * this.chunkSize;
      if (at !== this.expect) continue;  // read before a seek
      this.expect = at + r.value.length;
      const now = this.seekGen;
      for (const s of this.seg.push(r.value, at)) {
        if (now !== this.seekGen) break;  // the rest is from before a seek
        // Before: a seek while this piece is being appended (or retried) must
        // know the parser may be mid-segment (an abort() too many is harmless).
        this.midSegment = this.midSegment || s.type === "media";
        if (!(await this.append(s.bytes, now))) break;  // a seek came meanwhile
        this.midSegment = s.type === "media" && !s.last;
        this.setDuration();
      }
      if (this.onProgress) this.onProgress(this.progress());
    }
    if (!this.stopped) await this.end();
  }

  // The element seeks: to an unbuffered time, the stream moves to the
  // segment that holds it (the next chunk the stream gives is its chunk).
  seeking() {
    const t = this.element.currentTime;
    this.wake();
    if (!this.seekable || !this.seg.init || this.buffered(t)) return;
    const { offset, exact } = this.seg.offsetFor(t);
    const chunk = Math.floor(offset / this.chunkSize);
    // A segment appended in part: the parser must forget it before the next
    // append (abort() there: here it would throw during a remove()).
    if (this.midSegment) this.needAbort = true;
    this.midSegment = false;
    this.seg.resetAt(chunk * this.chunkSize, offset, exact);
    this.stats.lastSeek = { time: t, offset, exact, chunk };
    this.expect = chunk * this.chunkSize;
    this.seekGen++;
    this.stats.seeks++;
    this.chunks.seek(chunk);
  }

  // Waits while the buffer ahead is at the goal (or a seek comes).
  async room(gen) {
    while (!this.stopped && gen === this.seekGen && this.ahead() >= this.stats.bufferGoal) await this.sleep(500);
  }
  ahead() {
    const t = this.element.currentTime;
    const b = this.sb ? this.sb.buffered : null;
    if (!b) return 0;
    for (let k = 0; k < b.length; ++k) if (b.start(k) <= t + 0.1 && t < b.end(k)) return b.end(k) - t;
    return 0;
  }
  buffered(t) {
    const b = this.sb.buffered;
    for (let k = 0; k < b.length; ++k) if (b.start(k) <= t && t < b.end(k) - 0.1) return true;
    return false;
  }

  // A piece into the SourceBuffer; on QuotaExceededError, room is made and
  // it is tried again. false: a seek came first (gen is no longer current).
  async append(bytes, gen) {
    for (let tries = 0; ; ++tries) {
      await this.idle();
      if (gen !== this.seekGen || this.stopped) return false;
      if (this.needAbort) {  // a seek left a segment appended in part: the parser forgets it
        this.needAbort = false;
        this.sb.abort();
      }
      try {
        this.sb.appendBuffer(bytes);
      } catch (e) {
        if (!e || e.name !== "QuotaExceededError") throw e;
        if (tries >= 40) throw fail("quota-exceeded", "the media buffer stays full: nothing played can be removed");
        await this.makeRoom();
        continue;
      }
      await this.idle();
      this.stats.bytesAppended += bytes.length;
      this.stats.segmentsAppended++;
      return gen === this.seekGen;
    }
  }
  // The SourceBuffer no longer updating; a decode error fails.
  async idle() {
    for (;;) {
      const err = this.element.error;
      if (this.sbError || err) throw fail("unsupported", `the browser could not decode the media${err ? ": " + (err.message || "code " + err.code) : ""}`);
      if (!this.sb.updating) return;
      await this.sleep(1000);
    }
  }
  // Shaka's answer to a full buffer: a smaller goal, and what was played removed.
  async makeRoom() {
    const o = this.options;
    this.stats.bufferGoal = Math.max(o.minBufferAhead, this.stats.bufferGoal * 0.7);
    this.stats.quotaEvictions++;
    // Only behind the play head: bytes removed ahead would leave a hole no
    // seek refills (the element waits there, and fires no "seeking").
    const t = this.element.currentTime;
    const b = this.sb.buffered;
    let removed = false;
    if (b.length && b.start(0) < t - o.keepBehind) {
      this.sb.remove(0, t - o.keepBehind);
      removed = true;
    }
    await this.idle();
    if (!removed) await this.sleep(1000);  // the play head moves on meanwhile
  }
  setDuration() {
    const d = this.seg.duration;
    const ms = this.ms;
    // (A fragmented MP4's init segment says nothing: Infinity until told.)
    if (d > 0 && ms.readyState === "open" && !this.sb.updating && !(Number.isFinite(ms.duration) && ms.duration >= d)) {
      ms.duration = d;
    }
  }
  async end() {
    await this.idle();
    if (this.ms.readyState === "open") this.ms.endOfStream();
    if (this.onProgress) this.onProgress(this.progress());
  }

  opened(ms) {
    if (ms.readyState === "open") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(fail("timed-out", "the MediaSource did not open (is the element usable?)")), this.options.openTimeoutMs);
      ms.addEventListener("sourceopen", () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }
  // Until wake() (an element or buffer event) or ms.
  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() { clearTimeout(timer); resolve(); }
      this.wakers.push(done);
    });
  }
  wake() {
    const w = this.wakers;
    this.wakers = [];
    for (const f of w) f();
  }
}
