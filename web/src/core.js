// The core of the browser package in JavaScript: BLAKE3, manifests, chunk
// verification and links, from the same C++ as the native peer
// (src/browser/exports.cpp, its C ABI). Pure: give it an instantiated
// emscripten module (web/src/index.js does, for pages; the tests do, in node).
//
// Every failure is a P2PCDNError with the C++ error's code and message.

export const ABI_VERSION = 2;

// Errc (include/p2pcdn/result.hpp), in its order, by name.
export const ERRC_NAMES = ["ok", "invalid-argument", "malformed", "too-large", "not-found", "integrity", "io", "quota-exceeded",
               "unsupported", "crypto", "cancelled", "back-pressure", "timed-out"];

export class P2PCDNError extends Error {
  constructor(code, message, errc) {
    super(message);
    this.name = "P2PCDNError";
    this.code = code;
    this.errc = errc;
  }
}

// A P2PCDNError from the ABI's {"code", "message"}.
export function errorFrom(e) {
  return new P2PCDNError(ERRC_NAMES[e.code] || "internal", e.message, e.code);
}

export function wrapCore(m) {
  if (m._p2p_abi_version() !== ABI_VERSION) {
    throw new P2PCDNError("internal", `p2pcdn_core.wasm speaks ABI ${m._p2p_abi_version()}, this script ${ABI_VERSION}`);
  }
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  let broken = null;  // set once the module aborted: it is not used again

  // Copies `bytes` into the module's memory for one call; frees it after.
  function withBytes(bytes, fn) {
    if (!(bytes instanceof Uint8Array)) throw new P2PCDNError("invalid-argument", "bytes must be a Uint8Array", 1);
    const p = m._p2p_alloc(bytes.length);
    if (p === 0) throw new P2PCDNError("too-large", `out of WebAssembly memory for ${bytes.length} bytes`, 3);
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
  // Runs one ABI call; its failure becomes a P2PCDNError. Anything else
  // thrown from the module (an abort) leaves it unusable.
  function call(run) {
    if (broken) throw new P2PCDNError("internal", "the WebAssembly module aborted earlier: " + broken, 12);
    let rc;
    try {
      rc = run();
    } catch (e) {
      if (e instanceof P2PCDNError) throw e;
      broken = String(e && e.message ? e.message : e);
      throw new P2PCDNError("internal", "the WebAssembly module aborted: " + broken, 12);
    }
    if (rc === 0) return result();
    let e = { code: rc, message: "error " + rc };
    try {
      e = JSON.parse(result());
    } catch (_) { /* keep the number */ }
    throw errorFrom(e);
  }
  const text = (s) => encoder.encode(s);
  const asText = (x) => (typeof x === "string" ? x : JSON.stringify(x));

  return {
    // Runs one ABI call (a function returning its code); its text result.
    call,
    // BLAKE3 of bytes (Uint8Array), as 64 hex digits.
    hash(bytes) {
      return call(() => withBytes(bytes, (p, n) => m._p2p_hash(p, n)));
    },
    // A manifest (object or JSON text), checked against every limit and its
    // fileId if present; the canonical object, fileId included.
    manifestFromJson(manifest) {
      return JSON.parse(call(() => withBytes(text(asText(manifest)), (p, n) => m._p2p_manifest_from_json(p, n))));
    },
    // Throws unless bytes is chunk `index` of the manifest (length and hash).
    verifyChunk(manifest, index, bytes) {
      if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) {
        throw new P2PCDNError("invalid-argument", "a chunk index is an integer in [0, 2^32)", 1);
      }
      const mt = text(asText(manifest));
      call(() => withBytes(mt, (mp, mn) => withBytes(bytes, (p, n) => m._p2p_verify_chunk(mp, mn, index, p, n))));
    },
    // The AES key of an encrypted file (hex) from the link's key and the manifest's salt.
    fileKey(keyHex, saltHex) {
      return call(() => withBytes(text(JSON.stringify({ key: keyHex, salt: saltHex })), (p, n) => m._p2p_file_key(p, n)));
    },
    // {nonce, aad} (hex) of chunk `index` of an encrypted file.
    chunkAead(saltHex, index, plainLength) {
      const q = JSON.stringify({ salt: saltHex, index, plainLength });
      return JSON.parse(call(() => withBytes(text(q), (p, n) => m._p2p_chunk_aead(p, n))));
    },
    // The MIME type `p2pcdn add` gives a file of this name (by its extension).
    guessMimeType(name) {
      return call(() => withBytes(text(String(name)), (p, n) => m._p2p_guess_mime(p, n)));
    },
    // {fileId, trackers?, key?} as a link "p2pcdn:<id>?tr=...&k=...".
    formatLink(link) {
      return call(() => withBytes(text(JSON.stringify(link)), (p, n) => m._p2p_format_link(p, n)));
    },
    // The gateway's answer (src/gateway/http.hpp) to a request for the file:
    // {status, contentLength, contentRange, first?, last?, headers}.
    // req: {method, range?, ifRange?, ifNoneMatch?} (header values or null).
    planResponse(manifest, req) {
      const q = JSON.stringify({ manifest, method: req.method, range: req.range ?? undefined,
                                 ifRange: req.ifRange ?? undefined, ifNoneMatch: req.ifNoneMatch ?? undefined });
      return JSON.parse(call(() => withBytes(text(q), (p, n) => m._p2p_plan_response(p, n))));
    },
    // A link "p2pcdn:<id>?tr=...&k=..." or a bare id: {fileId, trackers, key?}.
    parseLink(link) {
      if (typeof link !== "string") throw new P2PCDNError("invalid-argument", "a link is a string", 1);
      return JSON.parse(call(() => withBytes(text(link), (p, n) => m._p2p_parse_link(p, n))));
    },
  };
}
