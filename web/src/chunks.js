// ChunkManager (the seed's name): files <-> verified chunks. The manifest and
// every hash come from the C++ core (the same id `p2pcdn add` gives the same
// file), AES-256-GCM from WebCrypto (web/src/crypto.js). P2PCDN.upload()
// stands on describe().
import { P2PCDNError } from "./core.js";
import { ChunkCipher, randomHex } from "./crypto.js";

export const DEFAULT_CHUNK_SIZE = 256 * 1024;

// What a file is read from: {size, name, read(offset, length) -> Uint8Array}.
export function sourceOf(file) {
  if (typeof Blob !== "undefined" && file instanceof Blob) {
    return {
      size: file.size, name: file.name,
      read: async (off, len) => new Uint8Array(await file.slice(off, off + len).arrayBuffer()),
    };
  }
  let bytes = null;
  if (file instanceof Uint8Array) bytes = file;
  else if (file instanceof ArrayBuffer) bytes = new Uint8Array(file);
  else if (ArrayBuffer.isView(file)) bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
  if (!bytes) throw new P2PCDNError("invalid-argument", "a file is a File, Blob, Uint8Array or ArrayBuffer", 1);
  return { size: bytes.length, name: null, read: async (off, len) => bytes.subarray(off, off + len) };
}

// A first pass over `file`: its manifest (hashing each chunk as stored), and
// stored(i), chunk i as stored (sealed again when encrypted: AES-GCM with its
// nonce is deterministic), for the caller's second pass. Holds one chunk at a
// time. options: {chunkSize, name, mimeType, encrypt, key}.
export async function describe(core, file, options = {}) {
  const src = sourceOf(file);
  const chunkSize = options.chunkSize || DEFAULT_CHUNK_SIZE;
  const name = options.name || src.name || "file";
  const key = options.key || (options.encrypt ? randomHex(32) : null);
  // Not the File's own type (the browser's or the OS's guess): the same
  // content and name must give the id `p2pcdn add` gives, on any machine.
  const draft = { version: 2, name, size: src.size, chunkSize, mimeType: options.mimeType || core.guessMimeType(name) };
  if (key) draft.encryption = { algorithm: "AES-256-GCM", salt: randomHex(32) };
  const cipher = key ? await ChunkCipher.create(core, key, draft) : null;
  const stored = async (i) => {
    const plain = await src.read(i * chunkSize, chunkSize);
    return cipher ? cipher.encrypt(i, plain) : plain;
  };
  const count = Math.ceil(src.size / chunkSize);
  const chunks = [];
  for (let i = 0; i < count; ++i) chunks.push(core.hash(await stored(i)));
  return { manifest: core.manifestFromJson({ ...draft, chunks }), stored, count, key };
}

export class ChunkManager {
  // Loads the WebAssembly core (once per page).
  static async load(options = {}) {
    const { loadModule } = await import("./module.js");  // not at the top: node tests give their own core
    return new ChunkManager((await loadModule()).core, options);
  }
  constructor(core, { chunkSize = DEFAULT_CHUNK_SIZE } = {}) {
    this.core = core;
    this.chunkSize = chunkSize;
  }

  // The whole file in chunks, as stored: {fileId, manifest, chunks, key?}.
  // metadata: {name, mimeType, encrypt, key}. (P2PCDN.upload does not hold them all.)
  async chunkFile(file, metadata = {}) {
    const d = await describe(this.core, file, { chunkSize: this.chunkSize, ...metadata });
    const chunks = [];
    for (let i = 0; i < d.count; ++i) chunks.push(Uint8Array.from(await d.stored(i)));
    const out = { fileId: d.manifest.fileId, manifest: d.manifest, chunks };
    if (d.key) out.key = d.key;
    return out;
  }
  // The file from its chunks (as stored), each verified (and decrypted with `key`).
  async reassembleFile(chunks, manifest, key = null) {
    const m = this.core.manifestFromJson(manifest);
    if (chunks.length !== m.chunks.length) {
      throw new P2PCDNError("invalid-argument", `${chunks.length} chunks for a file of ${m.chunks.length}`, 1);
    }
    const out = new Uint8Array(m.size);
    for (let i = 0; i < chunks.length; ++i) {
      this.core.verifyChunk(m, i, chunks[i]);
      out.set(m.encryption ? await this.decryptChunk(key, m, i, chunks[i]) : chunks[i], i * m.chunkSize);
    }
    return out;
  }
  // Whether bytes is chunk `index` of the manifest (length and BLAKE3).
  verifyChunk(manifest, index, bytes) {
    try {
      this.core.verifyChunk(manifest, index, bytes);
      return true;
    } catch (e) {
      if (e.code === "integrity" || e.code === "invalid-argument") return false;
      throw e;
    }
  }
  async encryptChunk(key, manifest, index, plain) {
    return (await this.cipher(key, manifest)).encrypt(index, plain);
  }
  async decryptChunk(key, manifest, index, stored) {
    return (await this.cipher(key, manifest)).decrypt(index, stored);
  }
  cipher(key, manifest) {
    if (!key) throw new P2PCDNError("invalid-argument", "an encrypted file needs its key (64 hex digits)", 1);
    return ChunkCipher.create(this.core, key, manifest);
  }
}
