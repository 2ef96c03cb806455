// P2PCDN: the seed's browser API (../shared/seed/p2p-cdn-README.md) over the
// C++ peer in WebAssembly (web/src/peer.js). Names and options are the seed's;
// trackerUrl and iceServers are as in the C++ API (include/p2pcdn/p2pcdn.hpp).
import { P2PCDNError } from "./core.js";
import { describe } from "./chunks.js";
import { FileFetch } from "./fetch.js";
import { loadModule } from "./module.js";
import { Identity } from "./identity.js";
import { Peer } from "./peer.js";
import { ServiceWorkerServer } from "./swserve.js";
import { IndexedDBStorage, MemoryStorage } from "./storage.js";

const DEFAULTS = {
  trackerUrl: null,
  iceServers: [],
  maxConcurrentDownloads: 10,
  maxConcurrentUploads: 20,
  chunkSize: 256 * 1024,
  storage: null,             // a ChunkStorage (web/src/storage.js); default: IndexedDBStorage (MemoryStorage without IndexedDB)
  storageQuota: 10e9,        // bytes, at most; also at most navigator.storage.estimate()'s quota
  enableSeeding: true,
  seedDuration: 3600,        // seconds; 0: until delete() or disconnect()
  discoveryInterval: 30000,  // ms between announces
  // Web seeds for every file fetched: http(s) URLs serving the file with Range
  // support, "{fileId}" replaced by its id (besides a link's ws=). Used only
  // for what the swarm cannot give in time; every chunk is verified.
  webSeeds: [],
};

const READ_WINDOW = 16;  // download(): chunks read from the store at once (4 MiB of 256 KiB chunks)

export class P2PCDN {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.peer = null;
    this.mod = null;
    this.connecting = null;  // the connect() in progress: a second call joins it
    this.seedTimers = new Map();  // fileId -> the timer that ends its seeding
    this.keys = new Map();        // fileId -> key (hex) of encrypted files uploaded or opened here
    this.fetches = new Map();     // fileId -> the FileFetches of download() and stream() under way
    this.fetched = new Set();     // every file fetched since connect() (getStats' origin bytes)
    this.sw = null;               // the service-worker path (serveServiceWorker)
    this.linkSeeds = new Map();   // fileId -> the web seeds of a link given to serviceWorkerUrl
  }

  // Loads the WebAssembly (once per page) and joins the tracker.
  connect() {
    if (this.peer) return Promise.resolve();
    if (!this.connecting) {
      this.connecting = this.open().finally(() => { this.connecting = null; });
    }
    return this.connecting;
  }

  async open() {
    const o = this.options;
    if (typeof o.trackerUrl !== "string") throw new P2PCDNError("invalid-argument", "no trackerUrl (ws://host:port)", 1);
    if (!Array.isArray(o.webSeeds) || o.webSeeds.length > 8 || !o.webSeeds.every((u) => typeof u === "string" && /^https?:\/\/./.test(u))) {
      throw new P2PCDNError("invalid-argument", "webSeeds: at most 8 http(s) URLs", 1);
    }
    this.mod = await loadModule();
    const t0 = performance.now();
    const storage = o.storage || await defaultStorage();
    let index;
    try {
      if (o.storage && storage.open) await storage.open();
      index = storage.listFiles ? await storage.listFiles() : [];
    } catch (e) {
      if (storage.close) storage.close();  // its Web Lock too
      throw e;
    }
    this.storageIndexMs = performance.now() - t0;
    let quota = o.storageQuota;
    if (storage.estimate) {
      const e = await storage.estimate().catch(() => null);
      if (e && Number.isFinite(e.quota) && e.quota > 0) quota = Math.min(quota, e.quota);
    }
    this.storage = storage;
    let identity;
    try {
      identity = await Identity.create();
    } catch (e) {
      // A page without WebRTC makes no link, so it proves no key: web seeds
      // still work where WebCrypto has no Ed25519.
      if (typeof globalThis.RTCPeerConnection === "function") {
        this.closeStorage();
        throw e;
      }
      identity = Identity.linkless();
    }
    this.peer = Peer.create(this.mod.module, this.mod.host, this.mod.core, {
      trackerUrl: o.trackerUrl,
      webrtc: typeof globalThis.RTCPeerConnection === "function",  // without: web seeds at once
      iceServers: (o.iceServers || []).flatMap((s) => (typeof s === "string" ? [s] : [].concat(s.urls || []))),
      // RTCIceServer's credentials (the first given apply to every turn: URL) and the ICE policy.
      ...turnCredentials(o.iceServers || []),
      ...(o.iceTransportPolicy === "relay" ? { iceTransportPolicy: "relay" } : {}),
      maxConcurrentDownloads: o.maxConcurrentDownloads,
      maxConcurrentUploads: o.maxConcurrentUploads,
      discoveryInterval: o.discoveryInterval,
      storageQuota: Math.max(1, Math.floor(quota)),
    }, storage, index, identity);
  }

  // No P2PCDN uses the store after this one; storage.close() releases it (IndexedDB: its Web Lock).
  closeStorage() {
    const s = this.storage;
    this.storage = null;
    if (s && s.close) s.close();
  }

  // Says goodbye to the peers and leaves the tracker.
  async disconnect() {
    if (this.connecting) await this.connecting.catch(() => {});
    const p = this.peer;
    this.peer = null;
    if (this.sw) this.sw.stop();
    this.sw = null;
    for (const t of this.seedTimers.values()) clearTimeout(t);
    this.seedTimers.clear();
    try {
      if (p) await p.close();
    } finally {
      this.closeStorage();
    }
  }

  // The service-worker path: registers web/src/sw.js (`url`; its `scope`
  // must hold this page: serve the script at the site's root, or send
  // Service-Worker-Allowed) and answers the requests it forwards from this
  // peer, so serviceWorkerUrl(id) works as <video src>, <img src> or a link.
  async serveServiceWorker({ url = new URL("./sw.js", import.meta.url).href, scope = undefined, keepAliveMs } = {}) {
    this.requirePeer();
    if (!this.sw) this.sw = new ServiceWorkerServer(this);
    await this.sw.start({ url, scope, keepAliveMs });
  }
  serviceWorkerUrl(fileIdOrLink, name = "") {
    if (!this.sw) throw new P2PCDNError("invalid-argument", "serveServiceWorker() first", 1);
    const link = this.mod.core.parseLink(fileIdOrLink);
    if (link.key) this.keys.set(link.fileId, link.key);  // the worker's requests carry the id only
    if (link.webSeeds && link.webSeeds.length) this.linkSeeds.set(link.fileId, link.webSeeds);
    return this.sw.url(link.fileId, name);
  }

  // A link's parts, checked by the C++ core: {fileId, trackers, key?,
  // webSeeds?} of "p2pcdn:<id>?tr=…&k=…&ws=…" (or of a bare file id);
  // throws a P2PCDNError (malformed, invalid-argument) for anything else.
  parseLink(link) {
    if (!this.mod) throw new P2PCDNError("invalid-argument", "not connected: call connect() first", 1);
    return this.mod.core.parseLink(link);
  }

  requirePeer() {
    if (!this.peer) throw new P2PCDNError("invalid-argument", "not connected: call connect() first", 1);
    return this.peer;
  }

  progressOf(fileId, chunk) {
    const p = this.peer && this.peer.progress(fileId);
    if (!p) return { fileId, progress: 0, bytesVerified: 0, bytesTotal: 0, chunksHave: 0, chunksTotal: 0, peers: 0 };
    return {
      fileId,
      progress: p.chunksTotal ? p.chunksHave / p.chunksTotal : 0,
      bytesVerified: p.bytesVerified,
      bytesTotal: p.bytesTotal,
      chunksHave: p.chunksHave,
      chunksTotal: p.chunksTotal,
      chunksFetched: p.chunksFetched,  // fetched this session, from peers or web seeds (the rest came from the store)
      peers: p.peers,
      bytesFromOrigins: p.originBytes || 0,  // web seeds' share of bytesVerified
      chunk,
    };
  }

  // Publishes a File, Blob, Uint8Array or ArrayBuffer: hashes it chunk by
  // chunk (the manifest, computed by the C++ core as `p2pcdn add` does, so
  // the same content gets the same fileId), then stores each chunk pinned and
  // seeds it until delete() or disconnect(). Memory: a few chunks, never the
  // whole file (a Blob is read twice). metadata: {name, mimeType, encrypt,
  // key}: with encrypt (a fresh random key) or key (64 hex digits) the chunks
  // are AES-256-GCM sealed, and the link carries the key (k=).
  async upload(file, metadata = {}) {
    const peer = this.requirePeer();
    const { core } = this.mod;
    const { manifest, stored, count, key } = await describe(core, file, { chunkSize: this.options.chunkSize, ...metadata });
    const heldBefore = peer.progress(manifest.fileId) !== null;  // by the node: fetched or seeded
    const { fileId, existed, wasPinned } = await peer.publish(manifest);
    try {
      // Second pass: at most maxInFlight puts at a time.
      const maxInFlight = 8;
      const inFlight = new Set();
      for (let i = 0; i < count; ++i) {
        const p = stored(i).then((bytes) => peer.put(fileId, i, bytes));
        inFlight.add(p);
        p.finally(() => inFlight.delete(p)).catch(() => {});
        if (inFlight.size >= maxInFlight) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      await peer.seed(fileId);
    } catch (e) {
      // A Blob changed under us, the quota, a disconnect: nothing half-stored
      // stays. A file the store held before is left as it was: its pin, and
      // the node's hold on it.
      if (this.peer === peer) {
        if (!existed) {
          peer.remove(fileId);
        } else {
          if (!wasPinned) peer.pin(fileId, false);
          if (!heldBefore) peer.release(fileId);
        }
      }
      throw e;
    }
    if (key) this.keys.set(fileId, key);
    const link = core.formatLink({ fileId, trackers: [this.options.trackerUrl], key });
    return key ? { fileId, manifest, link, key } : { fileId, manifest, link };
  }

  // Starts a FileFetch (web/src/fetch.js) for download(), stream() and
  // PeerMesh.requestChunk: opts {kind, lookahead} (FileFetch's).
  async startFetch(fileIdOrLink, manifest, onProgress, opts = { kind: "download" }) {
    const peer = this.requirePeer();
    const { core } = this.mod;
    const link = core.parseLink(fileIdOrLink);
    const key = link.key || this.keys.get(link.fileId) || null;
    const m = manifest ? core.manifestFromJson(manifest) : null;
    if (m && m.fileId !== link.fileId) throw new P2PCDNError("integrity", "the manifest is not that of " + link.fileId, 5);
    if (!this.fetches.has(link.fileId)) this.fetches.set(link.fileId, new Set());
    const set = this.fetches.get(link.fileId);
    // Held already (seeded, or fetched by an earlier call, whose word counts):
    // then never ours to let go.
    const live = [...set].filter((x) => x.peer === peer && !x.error);
    const heldBefore = live.length ? live[0].heldBefore : peer.progress(link.fileId) !== null;
    const f = new FileFetch(this, peer, link.fileId, key, m, { ...opts, heldBefore });
    set.add(f);
    this.fetched.add(link.fileId);
    try {
      await f.begin(onProgress);
      // The link's, then the page's, at most 8 (the engine's bound).
      const seeds = [...new Set([...(link.webSeeds || []), ...(this.linkSeeds.get(link.fileId) || []),
                                 ...this.options.webSeeds.map((u) => u.split("{fileId}").join(link.fileId))])];
      if (seeds.length) peer.setOrigins(link.fileId, seeds.slice(0, 8));
    } catch (e) {
      this.endFetch(f, false);
      throw e;
    }
    this.applyMode(f.fileId);
    return f;
  }
  // What the node fetches of a file, from every fetch of it under way: a
  // stream() its window (the one furthest behind), else a download() the
  // whole file, else (PeerMesh.requestChunk alone) nothing but the chunks
  // wished of a named peer (the picker's window past the end).
  // With a download() too, the window is unbounded (look-ahead 0): the
  // stream's chunks first, then the rest of the file, so a paused reader
  // cannot hold the download back. Fetches that failed (delete()) or belong
  // to an earlier connect() have no say.
  applyMode(fileId) {
    const set = this.fetches.get(fileId);
    if (!set || !this.peer || this.peer.closed) return;
    const all = [...set].filter((x) => x.peer === this.peer && !x.error);
    if (!all.length) return;
    const streams = all.filter((x) => x.kind === "stream").sort((x, y) => x.cursor - y.cursor);
    const whole = all.some((x) => x.kind === "download");
    if (streams.length) return this.peer.setStreaming(fileId, true, streams[0].cursor, whole ? 0 : streams[0].lookahead);
    if (whole) return this.peer.setStreaming(fileId, false, 0, 0);
    this.peer.setStreaming(fileId, true, 0xffffffff, 1);
  }
  // A fetch is over (ok: its caller got the file). The last fetch of a file
  // decides what the node does with it: a complete file is served as
  // seedFor() says; an unfinished one the caller gave up on, or one whose key
  // was wrong, is let go (its chunks stay in the store) unless the node held
  // it before.
  endFetch(f, ok) {
    f.close();
    const set = this.fetches.get(f.fileId);
    if (set) {
      set.delete(f);
      if (set.size === 0) this.fetches.delete(f.fileId);
    }
    if (ok && f.key) this.keys.set(f.fileId, f.key);
    if (this.peer !== f.peer || f.peer.closed) return this.applyMode(f.fileId);  // (the current peer's fetches, if any)
    if ([...(this.fetches.get(f.fileId) || [])].some((x) => x.peer === f.peer && !x.error)) {
      return this.applyMode(f.fileId);  // the others decide
    }
    if (f.complete && !f.keyFailed) this.seedFor(f.fileId);
    else if (!f.heldBefore) f.peer.release(f.fileId);
    else if (f.kind !== "download") f.peer.setStreaming(f.fileId, false, 0, 0);  // back to what the node did before
  }

  // The whole file, fetched from the swarm (the manifest, if not given, from
  // peers). An encrypted file needs its key: the link's k=, or this P2PCDN's
  // own upload; a wrong key fails (code integrity) at the first chunk.
  // options.signal (an AbortSignal) cancels it: it rejects (code cancelled),
  // the node lets the file go unless it held it before; what is stored stays.
  async download(fileIdOrLink, manifest, onProgress, { signal } = {}) {
    const cancelled = () => new P2PCDNError("cancelled", "the download was cancelled", 10);
    if (signal && signal.aborted) throw cancelled();
    const f = await this.startFetch(fileIdOrLink, manifest, onProgress);
    const onAbort = () => f.failWith(cancelled());
    if (signal) signal.addEventListener("abort", onAbort, { once: true });
    if (signal && signal.aborted) onAbort();
    let out;
    try {
      const m = await f.manifest();
      out = new Uint8Array(m.size);
      // Each chunk is copied out as it is stored, READ_WINDOW reads at a time,
      // while the rest downloads: the page is mostly idle meanwhile, and
      // reading it all back at the end (first touches of `out`, a copy out of
      // the heap per chunk) took 10-20 % of the download's time.
      const copied = new Uint8Array(m.chunks.length);
      const jobs = new Set();
      const copy = (i) => {
        const job = f.chunk(i).then((bytes) => { out.set(bytes, i * m.chunkSize); copied[i] = 1; })
          .catch((e) => f.failWith(e, f.keyFailed))
          .finally(() => { jobs.delete(job); f.signal(); });
        jobs.add(job);
      };
      while (!f.complete) {
        if (f.error) throw f.error;
        while (f.arrived.length && jobs.size < READ_WINDOW) copy(f.arrived.shift());
        await f.next();
      }
      await Promise.all(jobs);
      await f.whenComplete();  // the key check
      if (f.error) throw f.error;  // a copy failed
      // What the store held before (a resume), and arrivals not copied yet.
      let next = 0;
      const reader = async () => {
        while (next < m.chunks.length) {
          const i = next++;
          if (!copied[i]) out.set(await f.chunk(i), i * m.chunkSize);
        }
      };
      await Promise.all(Array.from({ length: Math.min(READ_WINDOW, m.chunks.length) }, reader));
    } catch (e) {
      this.endFetch(f, false);
      throw e;
    } finally {
      if (signal) signal.removeEventListener("abort", onAbort);
    }
    this.endFetch(f, true);
    return out;
  }

  // The file as an async iterable of its chunks (Uint8Array, plaintext) in
  // order, while it downloads. Back-pressure: the swarm fetches at most
  // `lookahead` chunks (default 16) past the one the reader waits for, so a
  // slow reader holds the download back instead of filling memory. Leaving
  // the loop early stops the fetch (what is stored stays, for a later resume).
  // seek(i): the next chunk given is chunk i (the swarm's window moves there
  // at once; a read in progress gives chunk i instead of the one it waited
  // for); `position` is the index of the chunk given last (-1 before the
  // first); manifest() resolves with the file's manifest. MediaStreamer
  // seeks with them.
  stream(fileIdOrLink, manifest, onProgress, { lookahead = 16 } = {}) {
    if (!Number.isInteger(lookahead) || lookahead < 1 || lookahead > 4096) {
      throw new P2PCDNError("invalid-argument", "lookahead is an integer in [1, 4096]", 1);
    }
    const cdn = this;
    const at = { next: 0, last: -1, seeks: 0, fetch: null, start: null, began: false, closed: false };
    // The fetch starts at the first next() or manifest(), from where a seek before it said.
    const started = () => at.start || (at.start = cdn.startFetch(fileIdOrLink, manifest, onProgress,
                                                                 { kind: "stream", lookahead, cursor: at.next }));
    const it = (async function* chunks() {
      at.began = true;
      // In order from the first request on (applyMode, with the cursor at 0).
      const f = at.fetch = await started();
      let done = false;
      try {
        const m = await f.manifest();
        while (at.next < m.chunks.length && !at.closed) {
          const i = at.next++;
          const seeks = at.seeks;
          f.cursor = i;
          cdn.applyMode(f.fileId);
          const bytes = await f.chunk(i, () => at.seeks !== seeks);
          if (bytes === null) continue;  // sought (or given up) meanwhile
          at.last = i;
          yield bytes;
        }
        done = !at.closed;
      } finally {
        at.fetch = null;
        cdn.endFetch(f, done);
      }
    })();
    it.seek = (i) => {
      if (!Number.isInteger(i) || i < 0) throw new P2PCDNError("invalid-argument", "seek(i): i is a chunk index", 1);
      at.next = i;
      at.seeks++;
      const f = at.fetch;
      if (f) {
        f.cursor = i;
        cdn.applyMode(f.fileId);
        f.signal();
      }
    };
    Object.defineProperty(it, "position", { get: () => at.last });
    it.manifest = async () => (await started()).manifest();
    // Given up: a read waiting for its chunk ends now (an async generator's
    // own return() would wait behind it); before the first next(), the fetch
    // manifest() started ends.
    const finish = it.return.bind(it);
    it.return = async (v) => {
      if (at.closed) return finish(v);  // once: a second call must not end the fetch again
      at.closed = true;
      at.seeks++;
      if (at.fetch) at.fetch.signal();
      const r = await finish(v);
      if (at.start && !at.began) at.start.then((f) => cdn.endFetch(f, false), () => {});
      return r;
    };
    return it;
  }

  // After a download: serves the file for seedDuration seconds (0: until
  // delete() or disconnect()), or not at all without enableSeeding; then it
  // leaves the swarm and stays in the store (evictable: least recently used first).
  seedFor(fileId) {
    clearTimeout(this.seedTimers.get(fileId));
    this.seedTimers.delete(fileId);
    const { enableSeeding, seedDuration } = this.options;
    if (!enableSeeding) return this.peer.release(fileId);
    if (!(seedDuration > 0)) return;
    const peer = this.peer;
    this.seedTimers.set(fileId, setTimeout(() => {
      this.seedTimers.delete(fileId);
      if (this.peer === peer) peer.release(fileId);
    }, seedDuration * 1000));
  }

  // Stops serving the file and deletes it from the store.
  async delete(fileId) {
    const id = this.mod.core.parseLink(fileId).fileId;
    clearTimeout(this.seedTimers.get(id));
    this.seedTimers.delete(id);
    // Downloads and streams of it end now (the node drops their listeners silently).
    for (const f of this.fetches.get(id) || []) f.failWith(new P2PCDNError("cancelled", `file ${id} was deleted`, 10));
    this.requirePeer().remove(id);
  }

  // The files the store holds: [{fileId, name, size, mimeType, chunksTotal,
  // chunksStored, bytesStored, encrypted, pinned, complete}].
  getStoredFiles() {
    return Promise.resolve(this.requirePeer().storage().files);
  }

  getStats() {
    const s = this.requirePeer().stats();
    const st = this.requirePeer().storage();
    let origin = 0;
    for (const id of this.fetched) {
      const p = this.peer.progress(id);
      if (p) origin += p.originBytes || 0;
    }
    const fromPeers = s.peers.concat(s.closedLinks).reduce((a, p) => a + p.bytesDown, 0);
    return {
      peerId: s.peerId,
      peers: s.peers,
      connectedPeers: s.peers.length,
      closedLinks: s.closedLinks.length,
      closedPeers: s.closedLinks,  // the links that closed, with what they carried (as peers)
      bytesUploaded: s.peers.concat(s.closedLinks).reduce((a, p) => a + p.bytesUp, 0),
      bytesDownloaded: fromPeers,
      // Web seeds: bytes from HTTP origins, and the share that came from peers instead.
      bytesFromOrigins: origin,
      p2pShare: fromPeers + origin > 0 ? fromPeers / (fromPeers + origin) : null,
      peerConnectionsCreated: s.peerConnectionsCreated,
      peerConnectionsLive: s.peerConnectionsLive,
      storage: { ...st.usage, indexMs: this.storageIndexMs, skippedAtLoad: st.skippedAtLoad },
    };
  }
}

// The default store: IndexedDB where the page has it (persistent,
// quota-bounded), else memory. A database another tab holds (its Web Lock)
// is passed over for the next name, so two tabs of a site each get one.
async function defaultStorage() {
  if (!globalThis.indexedDB) return new MemoryStorage();
  let last = null;
  for (const name of ["p2pcdn", "p2pcdn-2", "p2pcdn-3", "p2pcdn-4"]) {
    const s = new IndexedDBStorage({ name });
    try {
      await s.open();
      return s;
    } catch (e) {
      last = e;
      if (!e || !e.inUse) throw e;
    }
  }
  throw last;
}

// The first username/credential among RTCIceServer objects (the C++ peer has
// one pair for all its turn: servers).
function turnCredentials(servers) {
  const s = servers.find((x) => x && typeof x === "object" && typeof x.username === "string");
  return s ? { iceUsername: s.username, icePassword: String(s.credential || "") } : {};
}
