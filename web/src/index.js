// The p2pcdn browser package (ES module): the C++ peer in WebAssembly behind
// the seed's API. P2PCDN joins the swarm; loadCore gives the core alone
// (BLAKE3, manifests, chunk verification, links). docs/browser-peer-plan.md
// says where it stands.
import { loadModule } from "./module.js";

export { P2PCDNError, ABI_VERSION } from "./core.js";
export { P2PCDN } from "./p2pcdn.js";
export { ChunkManager } from "./chunks.js";
export { PeerMesh } from "./mesh.js";
export { MediaStreamer } from "./media.js";
export { IndexedDBStorage, MemoryStorage, chunkId, parseChunkId } from "./storage.js";

// Resolves to the core's functions (the module is shared with every P2PCDN of the page).
export function loadCore(options = {}) {
  return loadModule(options).then((x) => x.core);
}
