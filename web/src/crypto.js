// AES-256-GCM chunk encryption in the page. WebCrypto runs the cipher; the
// scheme's parameters (the file key, each chunk's nonce and authenticated
// data) come from the C++ core (src/core/chunk_aead.hpp), so a chunk sealed
// here opens natively and the other way round. WebCrypto needs a secure
// context: https, or http on localhost/127.0.0.1.
import { P2PCDNError } from "./core.js";

const TAG = 16;

export const hexToBytes = (h) => Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));
export const bytesToHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
// n random bytes as hex (a key, a salt).
export const randomHex = (n) => bytesToHex(crypto.getRandomValues(new Uint8Array(n)));

export class ChunkCipher {
  // keyHex: the link's k= (64 hex digits); manifest: its size, chunkSize and encryption.salt.
  static async create(core, keyHex, manifest) {
    if (!manifest.encryption) throw new P2PCDNError("invalid-argument", "the file is not encrypted", 1);
    if (!(globalThis.crypto && crypto.subtle)) {
      throw new P2PCDNError("unsupported", "WebCrypto is not available here (pages need https or localhost)", 8);
    }
    const raw = hexToBytes(core.fileKey(keyHex, manifest.encryption.salt));
    const key = await crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
    return new ChunkCipher(core, key, manifest);
  }

  constructor(core, key, manifest) {
    this.core = core;
    this.key = key;
    this.salt = manifest.encryption.salt;
    this.size = manifest.size;
    this.chunkSize = manifest.chunkSize;
  }
  params(index, plainLength) {
    const p = this.core.chunkAead(this.salt, index, plainLength);
    return { name: "AES-GCM", iv: hexToBytes(p.nonce), additionalData: hexToBytes(p.aad), tagLength: 8 * TAG };
  }
  // Chunk `index` of the plaintext -> its stored form (ciphertext + tag).
  async encrypt(index, plain) {
    return new Uint8Array(await crypto.subtle.encrypt(this.params(index, plain.length), this.key, plain));
  }
  // The stored form -> the plaintext; a wrong key (or chunk) fails with code integrity, as natively.
  async decrypt(index, sealed) {
    const fail = () => new P2PCDNError("integrity", `chunk ${index} failed authentication (wrong key, file or index)`, 5);
    if (sealed.length < TAG) throw fail();
    try {
      return new Uint8Array(await crypto.subtle.decrypt(this.params(index, sealed.length - TAG), this.key, sealed));
    } catch (_) {
      throw fail();
    }
  }
}
