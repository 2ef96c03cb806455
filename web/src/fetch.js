// One fetch of a file by a P2PCDN (web/src/p2pcdn.js): the node's events for
// it, the key of an encrypted file, and waiting for chunks, for download()
// (the whole file), stream() (chunk by chunk, in order) and
// PeerMesh.requestChunk (one chunk): its `kind`, which P2PCDN.applyMode reads.
import { P2PCDNError } from "./core.js";
import { ChunkCipher } from "./crypto.js";

export class FileFetch {
  // Starts fetching (or finds stored) the file: begin() after the
  // constructor (P2PCDN.startFetch counts the fetch in between, so a second
  // fetch of the file started meanwhile sees it).
  async begin(onProgress) {
    const cdn = this.cdn;
    this.listener = await this.peer.fetch(this.fileId, this.m, {
      onManifest: (m) => this.gotManifest(m),
      onChunk: (i, from) => {
        this.arrivals.set(i, (this.arrivals.get(i) || 0) + 1);
        if (this.kind === "download" && this.arrived.length < this.arrivedCap) this.arrived.push(i);
        if (this.m && this.m.encryption) this.tryKey(i);
        this.signal();
        if (onProgress) onProgress({ ...cdn.progressOf(this.fileId, i), from: from || "" });
      },
      onComplete: () => { this.complete = true; this.signal(); },
      onError: (e) => this.failWith(e),
    });
    if (this.m) this.gotManifest(this.m);
  }

  // manifest: a checked manifest object or null (then from peers).
  // heldBefore: the node held the file before (P2PCDN.endFetch never lets it go then).
  // kind: "download" | "stream" (from `cursor`, `lookahead` ahead) | "mesh".
  constructor(cdn, peer, fileId, key, manifest, { heldBefore, kind, lookahead = 0, cursor = 0 }) {
    this.cdn = cdn;
    this.heldBefore = heldBefore;
    this.kind = kind;
    this.cursor = cursor;  // stream: where it starts (a seek before the first read)
    this.lookahead = lookahead;
    this.core = cdn.mod.core;
    this.peer = peer;
    this.fileId = fileId;
    this.key = key;
    this.m = manifest;
    this.listener = null;
    this.arrivals = new Map();  // chunk -> times stored since the start (events)
    this.complete = false;
    this.error = null;
    this.keyFailed = false;
    this.keyCheck = null;      // resolves with the cipher once a chunk decrypted
    this.waiters = [];         // resolves of next()
    // download(): chunks stored since the start, in order of arrival, to copy
    // out while the rest comes (at most arrivedCap: past it the copy after
    // completion finds them).
    this.arrived = [];
    this.arrivedCap = 1 << 20;
  }

  signal() {
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }
  next() { return new Promise((resolve) => { this.waiters.push(resolve); }); }
  failWith(e, keyFailed = false) {
    if (this.error) return;
    this.error = e;
    this.keyFailed = keyFailed;
    this.signal();
  }
  gotManifest(m) {
    this.m = m;
    this.arrivedCap = 2 * m.chunks.length + 16;
    if (m.encryption && !this.key) {
      this.failWith(new P2PCDNError("invalid-argument", `file ${this.fileId} is encrypted: its link's key (k=) is needed`, 1), true);
    }
    this.signal();
  }
  // A wrong key fails at the first chunk that arrives, not after the whole file.
  tryKey(i) {
    if (this.keyCheck || !this.key) return;
    let keyFailed = false;  // the decrypt failed, not the read
    this.keyCheck = ChunkCipher.create(this.core, this.key, this.m).then(async (c) => {
      const stored = await this.peer.read(this.fileId, i);
      keyFailed = true;
      await c.decrypt(i, stored);
      keyFailed = false;
      return c;
    });
    this.keyCheck.catch((e) => this.failWith(e, keyFailed));
  }
  async cipher() {
    if (!this.m.encryption) return null;
    if (!this.cipherP) this.cipherP = this.keyCheck || ChunkCipher.create(this.core, this.key, this.m);
    return this.cipherP;
  }

  async manifest() {
    while (!this.m) {
      if (this.error) throw this.error;
      await this.next();
    }
    if (this.error) throw this.error;
    return this.m;
  }
  async whenComplete() {
    while (!this.complete) {
      if (this.error) throw this.error;
      await this.next();
    }
    if (this.keyCheck) await this.keyCheck;
  }
  // Chunk i as plaintext, once it is stored (it may have been already). It is
  // read again only after it arrives again, never polled. (A chunk the store
  // lost while the node still counts it held is not fetched again before the
  // next connect(): the read fails, or a bounded stream waits for the fetch's
  // end. The store -> node hook is still missing.)
  // givenUp(): asked at each wake-up (signal()); once true, it resolves null.
  async chunk(i, givenUp = null) {
    let seen = -1;  // its arrivals when last read
    for (;;) {
      if (this.error) throw this.error;
      if (givenUp && givenUp()) return null;
      const now = this.arrivals.get(i) || 0;
      if (now !== seen || this.complete) {
        seen = now;
        let bytes = null;
        try {
          bytes = await this.peer.read(this.fileId, i);
        } catch (e) {
          if (e.code !== "not-found" || this.complete) throw e;
        }
        if (bytes) {
          const c = await this.cipher();
          if (!c) return bytes;
          try {
            return await c.decrypt(i, bytes);
          } catch (e) {
            this.keyFailed = true;  // a verified chunk that does not open: the key is wrong
            throw e;
          }
        }
        if ((this.arrivals.get(i) || 0) !== seen) continue;  // arrived while we read
      }
      await this.next();
    }
  }

  // No more events for it (P2PCDN.endFetch decides what the node does with the file).
  close() {
    if (this.listener !== null && !this.peer.closed) this.peer.unlisten(this.listener);
    this.listener = null;
  }
}
