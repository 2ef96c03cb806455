// The WebAssembly module, instantiated once per page, with the host that
// does its I/O (web/src/host.js) and the core's functions (web/src/core.js).
import createP2PCDNCore from "./p2pcdn_core.mjs";
import { wrapCore } from "./core.js";
import { Host } from "./host.js";

let loaded = null;

export function loadModule(options = {}) {
  if (!loaded) {
    const host = new Host();
    loaded = createP2PCDNCore({ ...options, p2pHost: host }).then((module) => {
      host.attach(module);
      return { module, host, core: wrapCore(module) };
    });
    loaded.catch(() => { loaded = null; });  // a failed load may be tried again
  }
  return loaded;
}
