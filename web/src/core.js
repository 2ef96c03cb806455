// The core of the browser package in JavaScript: BLAKE3, manifests, chunk
// verification and links, from the same C++ as the native peer
// (src/browser/exports.cpp, its C ABI). Pure: give it an instantiated
// emscripten module (web/src/index.js does, for pages; the tests do, in node).
//
// Every failure is a P2PCDNError with the C++ error's code and message.

export const ABI_VERSION = 1;

// Errc (include/p2pcdn/result.hpp), in its order, by name.
const CODES = ["ok", "invalid-argument", "malformed", "too-large", "not-found", "integrity", "io", "quota-exceeded",
               "unsupported", "crypto", "cancelled", "back-pressure", "timed-out"];

export class P2PCDNError extends Error {
  constructor(code, message, errc) {
    super(message);
    this.name = "P2PCDNError";
    this.code = code;
    this.errc = errc;
  }
}

export function wrapCore(m) {
  if (m._p2p_abi_version() !== ABI_VERSION) {
    throw new P2PCDNError("internal", `p2pcdn_core.wasm speaks ABI ${m._p2p_abi_version()}, this script ${ABI_VERSION}`);
  }
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  // Copies `bytes` into the module's memory for one call; frees it after.
  function withBytes(bytes, fn) {
    const p = m._p2p_alloc(bytes.length);
    try {
      m.HEAPU8.set(bytes, p);  // HEAPU8 is looked up after the alloc: memory growth replaces it
      return fn(p, bytes.length);
    } finally {
      m._p2p_free(p);
    }
  }
  function result() {
    const p = m._p2p_result();
    return decoder.decode(m.HEAPU8.subarray(p, p + m._p2p_result_size()));
  }
  function call(rc) {
    if (rc === 0) return result();
    let e = { code: rc, message: "error " + rc };
    try {
      e = JSON.parse(result());
    } catch (_) { /* keep the number */ }
    throw new P2PCDNError(CODES[e.code] || "internal", e.message, e.code);
  }
  const text = (s) => encoder.encode(s);
  const asText = (x) => (typeof x === "string" ? x : JSON.stringify(x));

  return {
    // BLAKE3 of bytes (Uint8Array), as 64 hex digits.
    hash(bytes) {
      return call(withBytes(bytes, (p, n) => m._p2p_hash(p, n)));
    },
    // A manifest (object or JSON text), checked against every limit and its
    // fileId if present; the canonical object, fileId included.
    manifestFromJson(manifest) {
      return JSON.parse(call(withBytes(text(asText(manifest)), (p, n) => m._p2p_manifest_from_json(p, n))));
    },
    // Throws unless bytes is chunk `index` of the manifest (length and hash).
    verifyChunk(manifest, index, bytes) {
      const mt = text(asText(manifest));
      call(withBytes(mt, (mp, mn) => withBytes(bytes, (p, n) => m._p2p_verify_chunk(mp, mn, index, p, n))));
    },
    // A link "p2pcdn:<id>?tr=...&k=..." or a bare id: {fileId, trackers, key?}.
    parseLink(link) {
      return JSON.parse(call(withBytes(text(link), (p, n) => m._p2p_parse_link(p, n))));
    },
  };
}
