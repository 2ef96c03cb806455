// A peer's identity (docs/protocol.md "Peer identity"): an Ed25519 key pair
// in WebCrypto. The private half is made non-extractable: the page's scripts
// can sign with it but never read it. Each P2PCDN has its own key for the
// life of the page (two tabs are two peers: one shared key would give them
// one peer id). The C++ peer (src/browser/identity.hpp) asks it to sign its
// link proofs and to verify its peers' (web/src/host.js: sign, verify).
import { P2PCDNError } from "./core.js";

const ALG = { name: "Ed25519" };

export class Identity {
  constructor(keyPair, publicKey) {
    this.keyPair = keyPair;
    this.publicKey = publicKey;  // Uint8Array(32), raw (RFC 8032)
  }
  static async create() {
    const subtle = globalThis.crypto && globalThis.crypto.subtle;
    let pair;
    try {
      pair = await subtle.generateKey(ALG, false, ["sign", "verify"]);
    } catch (e) {
      throw new P2PCDNError("unsupported", `this browser's WebCrypto has no Ed25519 (${(e && e.message) || e})`, 8);
    }
    const raw = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
    return new Identity(pair, raw);
  }
  // For a page that makes no links (no RTCPeerConnection): a random public
  // key with no private half; signing fails (no link could use it anyway).
  static linkless() {
    return new Identity(null, crypto.getRandomValues(new Uint8Array(32)));
  }
  get publicKeyHex() { return Array.from(this.publicKey, (b) => b.toString(16).padStart(2, "0")).join(""); }
  async sign(message) {
    if (!this.keyPair) throw new Error("this identity cannot sign (a page without WebRTC)");
    return new Uint8Array(await crypto.subtle.sign(ALG, this.keyPair.privateKey, message));
  }
}

// Whether `sig` is `key`'s Ed25519 signature of `message` (false for a key
// WebCrypto will not import: not a point of the curve).
export async function verifyEd25519(key, message, sig) {
  try {
    const k = await crypto.subtle.importKey("raw", key, ALG, false, ["verify"]);
    return await crypto.subtle.verify(ALG, k, sig, message);
  } catch {
    return false;
  }
}
