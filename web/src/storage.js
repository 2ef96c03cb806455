// ChunkStorage backends (the seed's names): where a page keeps verified
// chunks and manifests. They do raw key-value work only; the C++ store over
// them (src/browser/storage.hpp) verifies every chunk before it is written and
// again when read, counts the quota and evicts least-recently-used files.
//
// The interface (web/types/index.d.ts), all methods returning promises:
//   storeChunk({fileId, index, data})      data: Uint8Array
//   getChunk(chunkId) -> Uint8Array | null  chunkId: "fileId:index" or {fileId, index}
//   deleteChunk(chunkId)
//   storeManifest(manifest, {pinned, lastUsed}?)  the manifest's JSON object (it holds fileId)
//   getManifest(fileId) -> manifest | null
// and, so that a peer can resume what it held and evict: open(), close(),
// deleteFile(fileId), listFiles() -> [{fileId, manifest, pinned, lastUsed, chunks: [index...]}],
// estimate() -> {quota, usage}.

// "fileId:index" and back.
export function chunkId(fileId, index) { return `${fileId}:${index}`; }
export function parseChunkId(id) {
  if (typeof id === "object" && id !== null) return { fileId: String(id.fileId), index: Number(id.index) };
  const s = String(id);
  const at = s.lastIndexOf(":");
  return { fileId: s.slice(0, at), index: Number(s.slice(at + 1)) };
}

const asBytes = (d) => (d instanceof Uint8Array ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : null);

// Everything in JavaScript Maps: gone with the page. For tests and pages that
// must not persist. Its quota (default 256 MiB) bounds the page's heap.
export class MemoryStorage {
  constructor({ quota = 256 * 1024 * 1024 } = {}) {
    this.quota = quota;
    this.files = new Map();   // fileId -> {manifest, pinned, lastUsed}
    this.chunks = new Map();  // fileId -> Map(index -> Uint8Array)
  }
  async open() {}
  close() {}
  async storeChunk({ fileId, index, data }) {
    if (!this.chunks.has(fileId)) this.chunks.set(fileId, new Map());
    this.chunks.get(fileId).set(index, data);
  }
  async getChunk(id) {
    const { fileId, index } = parseChunkId(id);
    const c = this.chunks.get(fileId);
    return (c && c.get(index)) || null;
  }
  async deleteChunk(id) {
    const { fileId, index } = parseChunkId(id);
    const c = this.chunks.get(fileId);
    if (c) c.delete(index);
  }
  async storeManifest(manifest, { pinned = false, lastUsed = Date.now() } = {}) {
    this.files.set(manifest.fileId, { manifest, pinned, lastUsed });
  }
  async getManifest(fileId) {
    const f = this.files.get(fileId);
    return f ? f.manifest : null;
  }
  async deleteFile(fileId) {
    this.files.delete(fileId);
    this.chunks.delete(fileId);
  }
  async listFiles() {
    return [...this.files].map(([fileId, f]) => ({
      fileId, manifest: f.manifest, pinned: f.pinned, lastUsed: f.lastUsed,
      chunks: [...(this.chunks.get(fileId) || new Map()).keys()],
    }));
  }
  async estimate() { return { quota: this.quota, usage: 0 }; }
}

// IndexedDB: database `name` (default "p2pcdn"), version 1, two object stores:
//   files   key fileId          {fileId, manifest, pinned, lastUsed}
//   chunks  key [fileId, index] Uint8Array
// Chunk writes that arrive within `batchDelay` ms (at most `batchSize` of
// them) go into one transaction, with relaxed durability: a chunk lost to a
// power cut is fetched again. open() asks for persistent storage
// (best effort, not waited for), and holds a Web Lock on the database: one
// peer per database (another tab of the site fails to open it, clearly,
// rather than two peers evicting each other's files behind their backs).
export class IndexedDBStorage {
  constructor({ name = "p2pcdn", batchDelay = 10, batchSize = 16, indexedDB: idb = globalThis.indexedDB } = {}) {
    this.name = name;
    this.batchDelay = batchDelay;
    this.batchSize = batchSize;
    this.idb = idb;
    this.db = null;
    this.opening = null;
    this.batch = [];   // [{key, data, resolve, reject}]
    this.timer = null;
    // Buffers the batched chunks wait in: put() clones its value at once,
    // so each is reused, not left to the garbage collector (a page fetching
    // at 20 MB/s made 20 MB/s of garbage ArrayBuffers per copy; V8 collects
    // them only past ~64 MiB of them).
    this.spare = [];
    this.persisted = false;
    this.unlock = null;  // releases the Web Lock
  }

  open() {
    if (this.db) return Promise.resolve();
    if (!this.opening) {
      this.opening = this.openDb().finally(() => { this.opening = null; });
    }
    return this.opening;
  }
  // The lock first, then the database; `db` is set only once both are held
  // (a close() meanwhile gives both back: `closing`).
  async openDb() {
    if (!this.idb) throw storageError("unsupported", "IndexedDB is not available here");
    this.closing = false;
    await this.lock();
    if (this.closing) {
      this.releaseLock();
      throw storageError("cancelled", "IndexedDBStorage was closed while it opened");
    }
    let db;
    try {
      db = await this.connect();
    } catch (e) {
      this.releaseLock();
      throw e;
    }
    if (this.closing) {
      db.close();
      this.releaseLock();
      throw storageError("cancelled", "IndexedDBStorage was closed while it opened");
    }
    this.adopt(db);
    // Best effort and never waited for: Firefox asks the user (a prompt that a
    // headless or unattended page never answers), Chromium decides at once.
    if (globalThis.navigator && navigator.storage && navigator.storage.persist) {
      this.persisting = withDeadline(navigator.storage.persist(), 1000, false)
        .then((granted) => { this.persisted = granted === true; }, () => {});
    }
  }
  connect() {
    return new Promise((resolve, reject) => {
      const r = this.idb.open(this.name, 1);
      r.onupgradeneeded = () => {
        const db = r.result;
        if (!db.objectStoreNames.contains("files")) db.createObjectStore("files", { keyPath: "fileId" });
        if (!db.objectStoreNames.contains("chunks")) db.createObjectStore("chunks");
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.onblocked = () => reject(storageError("io", `IndexedDB "${this.name}" is held open by another version`));
    });
  }
  adopt(db) {
    this.db = db;
    // A newer version elsewhere: let it upgrade, this one stops.
    this.db.onversionchange = () => this.close();
  }
  // Firefox, once a transaction exceeded the quota, refuses every later
  // write on that connection ("A mutation operation was attempted on a
  // database that did not allow mutations"), deletes too, so the evictions
  // that would make room could never run. A new connection writes again:
  // after such a failure the next transaction waits for one (the Web Lock
  // stays held). Chromium needs none of it; it costs one open there.
  renew() {
    if (!this.renewing && this.db) {
      const old = this.db;
      this.renewing = this.connect().then((db) => {
        if (!old || this.db !== old) return db.close();  // closed (or renewed) meanwhile
        old.close();
        this.adopt(db);
      }).finally(() => { this.renewing = null; });
      this.renewing.catch(() => {});
    }
    return this.renewing;
  }
  // The database's Web Lock, held until close() (none where the browser lacks navigator.locks).
  lock() {
    const locks = globalThis.navigator && navigator.locks;
    if (!locks) return Promise.resolve();
    return new Promise((resolve, reject) => {
      locks.request(`p2pcdn-indexeddb:${this.name}`, { ifAvailable: true }, (held) => {
        if (!held) {
          const e = storageError("invalid-argument", `the IndexedDB store "${this.name}" is in use by another ` +
            "peer (another tab of this site?): close it, or give this one new IndexedDBStorage({name})");
          e.inUse = true;
          return reject(e);
        }
        resolve();
        return new Promise((release) => { this.unlock = release; });
      }).catch(reject);
    });
  }
  releaseLock() {
    if (this.unlock) this.unlock();
    this.unlock = null;
  }
  close() {
    this.closing = true;  // an open() under way gives the lock back when it gets it
    this.flush();
    if (this.db) this.db.close();
    this.db = null;
    this.releaseLock();
  }
  requireDb() {
    if (!this.db) throw storageError("invalid-argument", "IndexedDBStorage is not open (open() first)");
    return this.db;
  }
  // One transaction; resolves with `result()` once it commits. After a
  // failure that leaves the connection refusing writes (renew), on a new one.
  tx(stores, mode, work) {
    this.requireDb();
    if (this.renewing) return this.renewing.then(() => this.tx(stores, mode, work));
    const db = this.db;
    // A quota error, or a refusal on the connection a quota error broke
    // (other batches were in flight on it): renew, and report the refusal
    // as the quota error it is, so the store evicts and retries.
    const failed = (e) => {
      if (!e) return e;
      if (e.name === "QuotaExceededError") this.quotaBroke = db;
      const refused = e.name === "InvalidStateError" || e.name === "ReadOnlyError";
      if ((e.name === "QuotaExceededError" || refused) && db === this.db) this.renew();
      if (refused && db === this.quotaBroke) {
        return storageError("quota-exceeded", `${e.message} (the connection a quota error broke)`, "QuotaExceededError");
      }
      return e;
    };
    return new Promise((resolve, reject) => {
      let t, out;
      try {
        t = db.transaction(stores, mode, mode === "readwrite" ? { durability: "relaxed" } : undefined);
        out = work(t);
      } catch (e) {
        return reject(failed(e));
      }
      t.oncomplete = () => resolve(typeof out === "function" ? out() : out);
      // A request's error reaches onerror before the transaction aborts (t.error is still null then).
      t.onerror = (ev) => reject(failed((ev && ev.target && ev.target.error) || t.error ||
                                        storageError("io", "IndexedDB request failed")));
      t.onabort = () => reject(failed(t.error || storageError("io", "IndexedDB transaction aborted")));
    });
  }

  // storeChunk copies `data` before it returns, so the caller may hand in a
  // view it reuses (host.js: of the wasm heap itself, no copy of its own).
  // Not for a subclass with a storeChunk of its own, which may keep `data`.
  get copiesWrites() { return this.storeChunk === IndexedDBStorage.prototype.storeChunk; }

  storeChunk({ fileId, index, data }) {
    this.requireDb();
    const i = this.spare.findIndex((b) => b.length === data.length);
    const own = i >= 0 ? this.spare.splice(i, 1)[0] : new Uint8Array(data.length);
    own.set(data);
    return new Promise((resolve, reject) => {
      this.batch.push({ key: [fileId, index], data: own, resolve, reject });
      if (this.batch.length >= this.batchSize) this.flush();
      else if (this.timer === null) this.timer = setTimeout(() => this.flush(), this.batchDelay);
    });
  }
  // Writes the batched chunks in one transaction.
  flush() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.batch;
    this.batch = [];
    if (!batch.length) return;
    if (!this.db) {
      const e = storageError("cancelled", "IndexedDBStorage was closed");
      for (const b of batch) b.reject(e);
      return;
    }
    this.tx("chunks", "readwrite", (t) => {
      const s = t.objectStore("chunks");
      try {
        for (const b of batch) s.put(b.data, b.key);
      } catch (e) {
        try {
          t.abort();  // none of the batch, rather than part of it unknown to the index
        } catch {}  // aborted already
        throw e;
      } finally {
        // Cloned by put(): free for the next batch. At most two batches' worth
        // are kept, the oldest going first (so odd sizes age out).
        for (const b of batch) {
          if (this.spare.length >= 2 * this.batchSize) this.spare.shift();
          this.spare.push(b.data);
        }
      }
    }).then(() => { for (const b of batch) b.resolve(); },
            (e) => { for (const b of batch) b.reject(e); });
  }
  getChunk(id) {
    const { fileId, index } = parseChunkId(id);
    let r;
    return this.tx("chunks", "readonly", (t) => { r = t.objectStore("chunks").get([fileId, index]); })
      .then(() => (r.result === undefined ? null : asBytes(r.result)));
  }
  // Puts still batched for what is deleted fail with code cancelled: they were not written.
  dropBatched(keep) {
    const gone = storageError("cancelled", "deleted before it was written");
    this.batch = this.batch.filter((b) => keep(b) || (b.reject(gone), false));
  }
  deleteChunk(id) {
    const { fileId, index } = parseChunkId(id);
    this.dropBatched((b) => b.key[0] !== fileId || b.key[1] !== index);
    return this.tx("chunks", "readwrite", (t) => { t.objectStore("chunks").delete([fileId, index]); });
  }
  storeManifest(manifest, { pinned = false, lastUsed = Date.now() } = {}) {
    return this.tx("files", "readwrite", (t) => {
      t.objectStore("files").put({ fileId: manifest.fileId, manifest, pinned, lastUsed });
    });
  }
  getManifest(fileId) {
    let r;
    return this.tx("files", "readonly", (t) => { r = t.objectStore("files").get(fileId); })
      .then(() => (r.result ? r.result.manifest : null));
  }
  // The file's record and every chunk of it (also those still batched).
  deleteFile(fileId) {
    this.dropBatched((b) => b.key[0] !== fileId);
    return this.tx(["files", "chunks"], "readwrite", (t) => {
      t.objectStore("files").delete(fileId);
      t.objectStore("chunks").delete(IDBKeyRange.bound([fileId, 0], [fileId, Infinity]));
    });
  }
  // Every file with the indexes of its chunks: keys only, one transaction.
  // Chunks of a file without a record (a deleteFile cut short) are deleted.
  listFiles() {
    let files, keys;
    return this.tx(["files", "chunks"], "readwrite", (t) => {
      const f = t.objectStore("files").getAll();
      const c = t.objectStore("chunks");
      const k = c.getAllKeys();
      f.onsuccess = () => { files = f.result; };
      k.onsuccess = () => {
        keys = k.result;
        const known = new Set(files.map((x) => x.fileId));
        for (const key of keys) if (!known.has(key[0])) c.delete(key);
      };
    }).then(() => {
      const byFile = new Map(files.map((x) => [x.fileId, { ...x, chunks: [] }]));
      for (const [fileId, index] of keys) {
        const x = byFile.get(fileId);
        if (x) x.chunks.push(index);
      }
      return [...byFile.values()];
    });
  }
  estimate() {
    const none = { quota: Infinity, usage: 0 };
    if (!(globalThis.navigator && navigator.storage && navigator.storage.estimate)) return Promise.resolve(none);
    return withDeadline(navigator.storage.estimate(), 2000, none).catch(() => none);
  }
  // Deletes the whole database (closing it first).
  async destroy() {
    this.close();
    await new Promise((resolve, reject) => {
      const r = this.idb.deleteDatabase(this.name);
      r.onsuccess = () => resolve();
      r.onerror = () => reject(r.error);
    });
  }
}

// `p`, or `fallback` if `p` has not settled after `ms`.
function withDeadline(p, ms, fallback) {
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve(fallback), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function storageError(code, message, name) {
  const e = new Error(message);
  e.code = code;
  if (name) e.name = name;  // (host.js storeErrc reads QuotaExceededError by name)
  return e;
}
