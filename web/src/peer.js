// One C++ peer (src/browser/peer.hpp) seen from JavaScript: requests become
// promises, a fetch's events go to its listener. User code never runs
// inside a call from the C++: events are handed on from a microtask.
import { P2PCDNError, errorFrom } from "./core.js";

export class Peer {
  // mod: the emscripten module; host: its Host; core: wrapCore(mod);
  // storage: the backend (web/src/storage.js), open; index: its listFiles();
  // identity: its key (web/src/identity.js).
  static create(mod, host, core, options, storage, index, identity) {
    const h = mod._p2p_peer_handle();
    host.stores.set(h, storage);
    host.identities.set(h, identity);
    try {
      const o = JSON.stringify({ ...options, identityKey: identity.publicKeyHex });
      const r = core.call(() => host.withBytes(o, (p, n) =>
        host.withBytes(JSON.stringify(index), (ip, in_) => mod._p2p_peer_new(h, p, n, ip, in_))));
      return new Peer(mod, host, core, h, JSON.parse(r).peerId);
    } catch (e) {
      host.stores.delete(h);
      host.identities.delete(h);
      throw e;
    }
  }

  constructor(mod, host, core, handle, peerId) {
    this.m = mod;
    this.host = host;
    this.core = core;
    this.h = handle;
    this.peerId = peerId;
    this.nextReq = 1;
    this.pending = new Map();    // req -> {resolve, reject}
    this.listeners = new Map();  // listener id -> {onManifest, onChunk, onComplete, onError}
    this.closed = false;
    host.peers.set(handle, {
      onEvent: (e) => queueMicrotask(() => this.onEvent(e)),
      onData: (req, bytes) => queueMicrotask(() => this.settle(req, null, bytes)),
    });
  }

  // Runs an ABI call on this peer (its synchronous result, as text).
  call(fn) {
    if (this.closed) throw new P2PCDNError("cancelled", "the peer is disconnected", 10);
    return this.core.call(fn);
  }
  withId(fileId, fn) { return this.host.withBytes(fileId, fn); }
  // A request that completes through an event; resolves with its event (or bytes).
  // `events`: a fetch's listener, registered as soon as its id is known
  // (before any of its events, which may follow in the same turn).
  request(start, events = null) {
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      this.pending.set(req, { resolve, reject, events });
      try {
        this.call(() => start(req));
      } catch (e) {
        this.pending.delete(req);
        reject(e);
      }
    });
  }
  settle(req, error, value) {
    const p = this.pending.get(req);
    if (!p) return;
    this.pending.delete(req);
    if (error) return p.reject(errorFrom(error));
    if (p.events && value && value.listener !== undefined) this.listeners.set(value.listener, p.events);
    p.resolve(value);
  }
  onEvent(e) {
    if (e.req !== undefined) return this.settle(e.req, e.error, e);
    const l = this.listeners.get(e.listener);
    if (!l) return;
    if (e.event === "manifest" && l.onManifest) l.onManifest(e.manifest);
    else if (e.event === "chunk" && l.onChunk) l.onChunk(e.index, e.from);
    else if (e.event === "complete" && l.onComplete) l.onComplete();
    else if (e.event === "error" && l.onError) l.onError(errorFrom(e.error));
  }

  // Fetches a file (manifest: the JSON object, or null to ask peers); resolves
  // with the listener id once it has begun. `events` hear it from then on.
  async fetch(fileId, manifest, events) {
    const mt = manifest ? JSON.stringify(manifest) : "";
    const r = await this.request((req) => this.withId(fileId, (ip, in_) =>
      this.host.withBytes(mt, (mp, mn) => this.m._p2p_peer_fetch(this.h, req, ip, in_, mp, mn))), events);
    return r.listener;
  }
  unlisten(listener) {
    this.listeners.delete(listener);
    if (!this.closed) this.call(() => this.m._p2p_peer_unlisten(this.h, listener));
  }
  seed(fileId) {
    return this.request((req) => this.withId(fileId, (p, n) => this.m._p2p_peer_seed(this.h, req, p, n)));
  }
  // A chunk's stored bytes, verified against the manifest.
  read(fileId, index) {
    return this.request((req) => this.withId(fileId, (p, n) => this.m._p2p_peer_read(this.h, req, p, n, index)));
  }
  // An upload's manifest (hashed by the page), stored pinned; resolves with
  // {fileId, existed, wasPinned} (existed: the store held the file already).
  async publish(manifest) {
    const mt = JSON.stringify(manifest);
    const r = await this.request((req) => this.host.withBytes(mt, (p, n) => this.m._p2p_peer_publish(this.h, req, p, n)));
    return { fileId: r.fileId, existed: r.existed, wasPinned: r.wasPinned };
  }
  // Chunk `index` of a published file (its stored bytes), verified and stored.
  put(fileId, index, bytes) {
    return this.request((req) => this.withId(fileId, (ip, in_) =>
      this.host.withBytes(bytes, (p, n) => this.m._p2p_peer_put(this.h, req, ip, in_, index, p, n))));
  }
  // Leaves the file's swarm and deletes it from the store.
  remove(fileId) { this.call(() => this.withId(fileId, (p, n) => this.m._p2p_peer_remove(this.h, p, n))); }
  pin(fileId, pinned) { this.call(() => this.withId(fileId, (p, n) => this.m._p2p_peer_pin(this.h, p, n, pinned ? 1 : 0))); }
  // Leaves the file's swarm; the store keeps it.
  release(fileId) { this.call(() => this.withId(fileId, (p, n) => this.m._p2p_peer_release(this.h, p, n))); }
  setStreaming(fileId, on, cursor, lookahead) {
    this.call(() => this.withId(fileId, (p, n) => this.m._p2p_peer_streaming(this.h, p, n, on ? 1 : 0, cursor, lookahead)));
  }
  // Web seeds of a file (http(s) URLs serving it with Range support).
  setOrigins(fileId, urls) {
    this.call(() => this.withId(fileId, (p, n) => this.host.withBytes(JSON.stringify(urls), (q, k) => this.m._p2p_peer_origins(this.h, p, n, q, k))));
  }
  announce() { this.call(() => this.m._p2p_peer_announce(this.h)); }
  // PeerMesh: ask that peer for the chunk first (throws P2PCDNError: no such file, peer, or it lacks the chunk).
  wish(fileId, peerId, index) {
    this.call(() => this.withId(fileId, (p, n) => this.withId(peerId, (q, k) => this.m._p2p_peer_wish(this.h, p, n, q, k, index))));
  }
  offer(fileId, peerId, index) {
    this.call(() => this.withId(fileId, (p, n) => this.withId(peerId, (q, k) => this.m._p2p_peer_offer(this.h, p, n, q, k, index))));
  }
  peerHas(fileId, peerId, index) {
    return JSON.parse(this.call(() => this.withId(fileId, (p, n) => this.withId(peerId, (q, k) =>
      this.m._p2p_peer_peer_has(this.h, p, n, q, k, index)))));
  }
  progress(fileId) {
    return JSON.parse(this.call(() => this.withId(fileId, (p, n) => this.m._p2p_peer_progress(this.h, p, n))));
  }
  stats() { return JSON.parse(this.call(() => this.m._p2p_peer_stats(this.h))); }
  storage() { return JSON.parse(this.call(() => this.m._p2p_peer_storage(this.h))); }

  // Says goodbye to every peer (at most about a second), then frees the peer.
  async close() {
    if (this.closed) return;
    try {
      await this.request((req) => this.m._p2p_peer_stop(this.h, req));
    } finally {
      this.closed = true;
      this.core.call(() => { this.m._p2p_peer_free(this.h); return 0; });
      this.host.peers.delete(this.h);
      this.host.stores.delete(this.h);
      this.host.identities.delete(this.h);
      const gone = new P2PCDNError("cancelled", "the peer was disconnected", 10);
      for (const p of this.pending.values()) p.reject(gone);
      this.pending.clear();
      // A fetch in progress hears it too (its caller waits for complete or error).
      const listeners = [...this.listeners.values()];
      this.listeners.clear();
      for (const l of listeners) if (l.onError) l.onError(gone);
    }
  }
}
