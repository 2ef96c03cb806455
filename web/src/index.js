// The p2pcdn browser package (ES module). Today: the core (BLAKE3, manifests,
// chunk verification, links) from the C++ engine in WebAssembly; the peer
// (P2PCDN, IndexedDBStorage, ...) follows (docs/browser-peer-plan.md).
import createP2PCDNCore from "./p2pcdn_core.mjs";
import { wrapCore } from "./core.js";

export { P2PCDNError, ABI_VERSION } from "./core.js";

let core = null;

// Instantiates the WebAssembly once per page; resolves to the core's functions.
export function loadCore(options = {}) {
  if (!core) {
    core = createP2PCDNCore(options).then(wrapCore);
    core.catch(() => { core = null; });  // a failed load may be tried again
  }
  return core;
}
