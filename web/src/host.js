// The page's side of the C++ peer's I/O (src/browser/js.hpp): the loop's
// macrotask, the one timer, randomness, the tracker WebSockets and the
// RTCPeerConnections with their "p2pcdn" data channel, and each peer's store
// backend and identity. Objects are kept by the integer handle the C++ chose (a store by
// its peer's). Every event goes back through an export (p2p_ws_event,
// p2p_link_*, p2p_store_done), which posts it onto the C++ loop.
//
// Bytes: a received message is copied once, from its ArrayBuffer into room
// the C++ made (p2p_link_inbox); a sent one is a view of the wasm heap that
// RTCDataChannel.send copies during the call. HEAPU8 is looked up at each
// use: memory growth replaces it.

import { ERRC_NAMES } from "./core.js";
import { verifyEd25519 } from "./identity.js";
import { chunkId } from "./storage.js";

const CHANNEL_LABEL = "p2pcdn";
// A tracker message above this is dropped with the connection (the C++ side checks too).
const MAX_TRACKER_MESSAGE = 1 << 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Host {
  constructor() {
    this.m = null;
    this.sockets = new Map();  // handle -> WebSocket
    this.fetches = new Map();  // handle -> the AbortController of a web seed fetch
    this.links = new Map();    // handle -> {pc, dc, offerer, low, closing}
    this.peers = new Map();    // peer handle -> {onEvent(obj), onData(req, bytes)}
    this.stores = new Map();   // peer handle -> its ChunkStorage backend (web/src/storage.js)
    this.identities = new Map();  // peer handle -> its Identity (web/src/identity.js)
    this.timer = null;
    this.peerConnectionsCreated = 0;
    const ch = new MessageChannel();
    ch.port1.onmessage = () => this.m._p2p_run_posted();
    this.port = ch.port2;
  }

  attach(m) { this.m = m; }

  // ---- heap helpers ----
  text(p, n) { return n ? decoder.decode(this.m.HEAPU8.subarray(p, p + n)) : ""; }
  // Calls fn(ptr, len) with `s` (a string or Uint8Array) in the heap, freed after.
  withBytes(s, fn) {
    const b = typeof s === "string" ? encoder.encode(s) : s;
    const p = this.m._p2p_alloc(b.length);
    if (p === 0) throw new Error("out of WebAssembly memory");
    try {
      this.m.HEAPU8.set(b, p);
      return fn(p, b.length);
    } finally {
      this.m._p2p_free(p);
    }
  }

  // ---- loop, timer, randomness ----
  schedule() { this.port.postMessage(0); }
  setTimer(ms) {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.m._p2p_run_timers();
    }, ms);
  }
  random32() { return crypto.getRandomValues(new Uint32Array(1))[0]; }

  // ---- web seed fetches (BrowserRuntime::fetchRange) ----
  // Bytes [offset, offset + length) of the URL: only exactly those count (206
  // with a matching Content-Range where the origin exposes it, or 200 from
  // offset 0); more than `length` is cut off (a server ignoring Range).
  fetchDone(h, code, message = "") {
    if (!this.m || !this.fetches.has(h)) return;
    this.fetches.delete(h);
    this.withBytes(message, (p, n) => this.m._p2p_fetch_done(h, code, p, n));
  }
  fetchRange(h, p, n, offset, length, timeoutMs) {
    const url = this.text(p, n);
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; ac.abort(); }, timeoutMs);
    this.fetches.set(h, ac);
    const end = offset + length - 1;
    const fail = (code, what) => { throw Object.assign(new Error(what), { errc: code }); };
    (async () => {
      const res = await fetch(url, { headers: { Range: `bytes=${offset}-${end}` }, signal: ac.signal,
                                     cache: "no-store", credentials: "omit", redirect: "follow" });
      if (!(res.status === 206 || (res.status === 200 && offset === 0))) fail(6, `HTTP ${res.status} for bytes ${offset}-${end}`);
      const range = res.headers.get("content-range");
      if (range && !range.startsWith(`bytes ${offset}-${end}/`)) fail(2, `the origin answered ${range} for bytes ${offset}-${end}`);
      const out = new Uint8Array(length);
      let got = 0;
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (got + value.length > length) {
          ac.abort();
          fail(2, "the origin answered more than the range asked (does it support Range?)");
        }
        out.set(value, got);
        got += value.length;
      }
      if (got !== length) fail(6, `the origin sent ${got} of ${length} bytes`);
      return out;
    })().then((bytes) => {
      clearTimeout(timer);
      if (!this.fetches.has(h)) return;  // cancelled
      const at = this.m._p2p_fetch_inbox(h, bytes.length);
      if (!at) return this.fetchDone(h, 6, "no room for the bytes");
      this.m.HEAPU8.set(bytes, at);
      this.fetchDone(h, 0);
    }, (e) => {
      clearTimeout(timer);
      ac.abort();  // a refused answer's body is not read on (a server ignoring Range would send the whole file)
      if (timedOut) return this.fetchDone(h, 12, `no answer in ${timeoutMs} ms`);
      this.fetchDone(h, e && e.errc ? e.errc : 6, String(e && e.message ? e.message : e));
    });
  }
  fetchCancel(h) {
    const ac = this.fetches.get(h);
    if (!ac) return;
    this.fetches.delete(h);
    ac.abort();
  }

  // ---- tracker WebSockets ----
  wsEvent(h, kind, text = "") {
    if (!this.m) return;
    this.withBytes(text, (p, n) => this.m._p2p_ws_event(h, kind, p, n));
  }
  wsOpen(h, p, n) {
    const url = this.text(p, n);
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      queueMicrotask(() => this.wsEvent(h, 2));
      return;
    }
    this.sockets.set(h, ws);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      this.sockets.delete(h);
      this.wsEvent(h, 2);
    };
    ws.onopen = () => this.wsEvent(h, 0);
    ws.onmessage = (e) => {
      if (typeof e.data !== "string" || e.data.length > MAX_TRACKER_MESSAGE) {
        ws.close();
        return close();
      }
      this.wsEvent(h, 1, e.data);
    };
    ws.onclose = close;
    ws.onerror = close;
  }
  wsSend(h, p, n) {
    const ws = this.sockets.get(h);
    if (!ws || ws.readyState !== WebSocket.OPEN) return 1;
    ws.send(this.text(p, n));
    return 0;
  }
  wsClose(h) {
    const ws = this.sockets.get(h);
    if (!ws) return;
    this.sockets.delete(h);
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(); } catch (_) { /* closing anyway */ }
  }

  // ---- peer connections ----
  linkEvent(h, kind, text = "") {
    if (!this.links.has(h) && kind !== 3) return;
    this.withBytes(text, (p, n) => this.m._p2p_link_event(h, kind, p, n));
  }
  linkFailed(h, why) {
    const rec = this.links.get(h);
    if (!rec || rec.failed) return;
    rec.failed = true;
    this.linkEvent(h, 3, String(why || "failed"));
  }
  pcNew(h, p, n) {
    const cfg = JSON.parse(this.text(p, n));
    // Chromium refuses past ~500 per page lifetime (closed ones count until
    // collected): every peer of the page together stays well below.
    if (this.links.size >= MAX_LIVE_PEER_CONNECTIONS) return 2;
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers: cfg.iceServers, iceTransportPolicy: cfg.iceTransportPolicy || "all" });
    } catch (e) {
      return 1;  // e.g. Chromium's "Cannot create so many PeerConnections"
    }
    ++this.peerConnectionsCreated;
    // want: a level asked for by dcNotifyBelow, not reached yet (or null).
    const rec = { pc, dc: null, offerer: cfg.offerer, low: cfg.lowWatermark, want: null, closing: false, failed: false };
    this.links.set(h, rec);
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") this.linkFailed(h, "ICE/DTLS connection failed");
    };
    return 0;
  }
  wireChannel(h, rec, dc) {
    rec.dc = dc;
    dc.binaryType = "arraybuffer";
    dc.bufferedAmountLowThreshold = rec.low;
    dc.onopen = () => this.linkEvent(h, 1);
    dc.onmessage = (e) => {
      if (!(e.data instanceof ArrayBuffer)) return this.linkFailed(h, "a text message on the data channel");
      const n = e.data.byteLength;
      const ptr = this.m._p2p_link_inbox(h, n);
      if (ptr === 0) return;  // refused: the C++ closes the link
      this.m.HEAPU8.set(new Uint8Array(e.data), ptr);
      this.m._p2p_link_message(h);
    };
    dc.onbufferedamountlow = () => {
      if (rec.want !== null && dc.bufferedAmount <= rec.want) rec.want = null;
      armLow(rec);
      this.linkEvent(h, 2);
    };
    dc.onclose = () => {
      if (rec.failed) return;
      rec.failed = true;
      this.linkEvent(h, 3, "");
    };
    dc.onerror = (e) => this.linkFailed(h, "data channel: " + (e.error ? e.error.message : "error"));
  }
  // Resolves once ICE gathering is over (non-trickle: the SDP holds every candidate).
  gathered(pc) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const f = () => {
        if (pc.iceGatheringState !== "complete") return;
        pc.removeEventListener("icegatheringstatechange", f);
        resolve();
      };
      pc.addEventListener("icegatheringstatechange", f);
    });
  }
  // Hands over the complete local description once ICE gathering is over.
  describe(h, pc, what, setLocal) {
    setLocal
      .then(() => this.gathered(pc))
      .then(() => this.linkEvent(h, 0, pc.localDescription.sdp))
      .catch((e) => this.linkFailed(h, what + ": " + e.message));
  }
  pcOffer(h) {
    const rec = this.links.get(h);
    if (!rec) return;
    const { pc } = rec;
    this.wireChannel(h, rec, pc.createDataChannel(CHANNEL_LABEL, { ordered: true }));
    this.describe(h, pc, "offer", pc.createOffer().then((o) => pc.setLocalDescription(o)));
  }
  pcAcceptOffer(h, p, n) {
    const rec = this.links.get(h);
    if (!rec) return;
    const sdp = this.text(p, n);
    const { pc } = rec;
    pc.ondatachannel = (e) => {
      if (e.channel.label !== CHANNEL_LABEL || rec.dc) {
        e.channel.close();
        return;
      }
      this.wireChannel(h, rec, e.channel);
    };
    this.describe(h, pc, "answer", pc.setRemoteDescription({ type: "offer", sdp })
      .then(() => pc.createAnswer())
      .then((a) => pc.setLocalDescription(a)));
  }
  pcAcceptAnswer(h, p, n) {
    const rec = this.links.get(h);
    if (!rec) return;
    rec.pc.setRemoteDescription({ type: "answer", sdp: this.text(p, n) })
      .catch((e) => this.linkFailed(h, "the peer's answer: " + e.message));
  }
  dcSend(h, p, n) {
    const rec = this.links.get(h);
    if (!rec || !rec.dc || rec.dc.readyState !== "open") return 1;
    try {
      rec.dc.send(this.m.HEAPU8.subarray(p, p + n));
      return 0;
    } catch (_) {
      return 1;
    }
  }
  dcBuffered(h) {
    const rec = this.links.get(h);
    return rec && rec.dc ? rec.dc.bufferedAmount : 0;
  }
  // The buffered-low event once the queue holds at most `bytes` (soon if it
  // already does), besides the usual one at rec.low (transport/peer_link.hpp).
  dcNotifyBelow(h, bytes) {
    const rec = this.links.get(h);
    if (!rec || !rec.dc) return;
    if (rec.dc.bufferedAmount <= bytes) return queueMicrotask(() => this.linkEvent(h, 2));
    rec.want = rec.want === null ? bytes : Math.max(rec.want, bytes);  // the one reached first
    armLow(rec);
  }
  pcClose(h) {
    const rec = this.links.get(h);
    if (!rec) return;
    rec.closing = true;
    if (rec.dc && rec.dc.readyState !== "closed") rec.dc.close();  // onclose follows
    else queueMicrotask(() => this.linkEvent(h, 3, ""));
  }
  pcFree(h) {
    const rec = this.links.get(h);
    if (!rec) return;
    this.links.delete(h);
    rec.failed = true;
    const { pc, dc } = rec;
    pc.onconnectionstatechange = pc.ondatachannel = null;
    if (dc) {
      dc.onopen = dc.onmessage = dc.onbufferedamountlow = dc.onclose = dc.onerror = null;
      try { dc.close(); } catch (_) { /* closing anyway */ }
    }
    try { pc.close(); } catch (_) { /* closing anyway */ }
  }
  pcStats(h) {
    const rec = this.links.get(h);
    if (!rec) return;
    rec.pc.getStats().then((report) => {
      let pair = null;
      report.forEach((s) => {
        if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
      });
      if (!pair) report.forEach((s) => { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s; });
      const out = {};
      if (pair) {
        if (typeof pair.currentRoundTripTime === "number") out.rtt = pair.currentRoundTripTime;
        const l = report.get(pair.localCandidateId), r = report.get(pair.remoteCandidateId);
        if (l && l.candidateType) out.local = l.candidateType;
        if (r && r.candidateType) out.remote = r.candidateType;
      }
      this.linkEvent(h, 4, JSON.stringify(out));
    }, () => this.linkEvent(h, 4, "{}"));
  }

  // ---- peers ----
  peerEvent(peer, p, n) {
    const x = this.peers.get(peer);
    if (x) x.onEvent(JSON.parse(this.text(p, n)));
  }
  peerData(peer, req, p, n) {
    const x = this.peers.get(peer);
    // slice, not subarray: the bytes leave the heap (a view would pin, or clone, all of it).
    if (x) x.onData(req, this.m.HEAPU8.slice(p, p + n));
  }

  // ---- identities (src/browser/identity.hpp): WebCrypto Ed25519 ----
  identityDone(h, req, ok, sig) {
    const done = (bytes) => this.withBytes(bytes, (p, n) => this.m._p2p_identity_done(h, req, ok ? 1 : 0, p, n));
    done(sig || new Uint8Array(0));
  }
  sign(h, req, p, n) {
    const id = this.identities.get(h);
    const message = this.m.HEAPU8.slice(p, p + n);
    if (!id) return this.identityDone(h, req, false);
    id.sign(message).then((sig) => {
      if (this.identities.get(h) === id) this.identityDone(h, req, true, sig);
    }, () => {
      if (this.identities.get(h) === id) this.identityDone(h, req, false);
    });
  }
  verify(h, req, kp, p, n, sp) {
    const id = this.identities.get(h);
    const key = this.m.HEAPU8.slice(kp, kp + 32);
    const message = this.m.HEAPU8.slice(p, p + n);
    const sig = this.m.HEAPU8.slice(sp, sp + 64);
    if (!id) return this.identityDone(h, req, false);
    verifyEd25519(key, message, sig).then((ok) => {
      if (this.identities.get(h) === id) this.identityDone(h, req, ok);
    });
  }

  // ---- the store's backend (src/browser/storage.hpp) ----
  // Starts request `req` on peer h's backend; its end goes to p2p_store_done
  // (a get's bytes first into p2p_store_inbox: the one copy into the heap).
  storeOp(h, req, p, n, dp, dn) {
    const op = JSON.parse(this.text(p, n));
    const s = this.stores.get(h);
    // slice: the bytes leave the heap, and the backend keeps them; a backend
    // that copies them itself at once (copiesWrites) gets a view of the heap.
    const data = dn ? (s && s.copiesWrites ? this.m.HEAPU8.subarray(dp, dp + dn) : this.m.HEAPU8.slice(dp, dp + dn)) : null;
    const done = (code, message = "") => {
      if (this.stores.get(h) !== s) return;  // the peer is gone
      this.withBytes(message, (mp, mn) => this.m._p2p_store_done(h, req, code, mp, mn));
    };
    let work;
    try {
      if (!s) throw new Error("no store");
      work = runStoreOp(s, op, data);
    } catch (e) {
      work = Promise.reject(e);
    }
    Promise.resolve(work).then((got) => {
      if (op.op !== "get") return done(0);
      const bytes = got instanceof ArrayBuffer ? new Uint8Array(got) : got;
      if (!(bytes instanceof Uint8Array)) return done(4, `chunk ${op.index} is not in the store`);
      if (this.stores.get(h) !== s) return;
      const at = this.m._p2p_store_inbox(h, req, bytes.length);
      if (!at) return done(3, `chunk ${op.index}: ${bytes.length} bytes is no chunk`);
      this.m.HEAPU8.set(bytes, at);
      done(0);
    }, (e) => done(storeErrc(e), String((e && e.message) || e)));
  }
}

// The event fires when bufferedAmount falls to the threshold from above, so
// the threshold is the highest wanted level below the amount now (a level at
// or above it would never be crossed: that stalled a page's uploads).
function armLow(rec) {
  const b = rec.dc.bufferedAmount;
  const below = [rec.low, rec.want].filter((x) => x !== null && x < b);
  rec.dc.bufferedAmountLowThreshold = below.length ? Math.max(...below) : rec.low;
}

// RTCPeerConnections one page holds at once, over all its peers (js.hpp: p2p_js_pc_new).
export const MAX_LIVE_PEER_CONNECTIONS = 200;

function runStoreOp(s, op, data) {
  switch (op.op) {
    case "put": return s.storeChunk({ fileId: op.fileId, index: op.index, data });
    case "get": return s.getChunk(chunkId(op.fileId, op.index));
    case "delete": return s.deleteChunk(chunkId(op.fileId, op.index));
    case "manifest": return s.storeManifest(op.manifest, { pinned: op.pinned, lastUsed: op.lastUsed });
    case "deleteFile": return s.deleteFile ? s.deleteFile(op.fileId) : deleteChunkByChunk(s, op.fileId);
    default: throw new Error("unknown store operation " + op.op);
  }
}

// A backend with the seed's five methods only: the manifest says which chunks to delete.
async function deleteChunkByChunk(s, fileId) {
  const m = await s.getManifest(fileId);
  if (m) for (let i = 0; i < m.chunks.length; ++i) await s.deleteChunk(chunkId(fileId, i));
}

// The Errc (src/browser/storage.hpp: finish) of a backend's failure.
function storeErrc(e) {
  if (e && e.name === "QuotaExceededError") return 7;
  const i = e && typeof e.code === "string" ? ERRC_NAMES.indexOf(e.code) : -1;
  return i > 0 ? i : 6;  // io
}
