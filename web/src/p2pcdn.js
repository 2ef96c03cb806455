// P2PCDN: the seed's browser API (../shared/seed/p2p-cdn-README.md) over the
// C++ peer in WebAssembly (web/src/peer.js). Names and options are the seed's;
// trackerUrl and iceServers are as in the C++ API (include/p2pcdn/p2pcdn.hpp).
import { P2PCDNError } from "./core.js";
import { loadModule } from "./module.js";
import { Peer } from "./peer.js";

const DEFAULTS = {
  trackerUrl: null,
  iceServers: [],
  maxConcurrentDownloads: 10,
  maxConcurrentUploads: 20,
  chunkSize: 256 * 1024,
  storage: null,
  enableSeeding: true,
  seedDuration: 3600,        // seconds; 0: until delete() or disconnect()
  discoveryInterval: 30000,  // ms between announces
};

export class P2PCDN {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.peer = null;
    this.mod = null;
    this.connecting = null;  // the connect() in progress: a second call joins it
  }

  // Loads the WebAssembly (once per page) and joins the tracker.
  connect() {
    if (this.peer) return Promise.resolve();
    if (!this.connecting) {
      this.connecting = this.open().finally(() => { this.connecting = null; });
    }
    return this.connecting;
  }

  async open() {
    const o = this.options;
    if (typeof o.trackerUrl !== "string") throw new P2PCDNError("invalid-argument", "no trackerUrl (ws://host:port)", 1);
    this.mod = await loadModule();
    this.peer = Peer.create(this.mod.module, this.mod.host, this.mod.core, {
      trackerUrl: o.trackerUrl,
      iceServers: (o.iceServers || []).flatMap((s) => (typeof s === "string" ? [s] : [].concat(s.urls || []))),
      maxConcurrentDownloads: o.maxConcurrentDownloads,
      maxConcurrentUploads: o.maxConcurrentUploads,
      discoveryInterval: o.discoveryInterval,
    });
  }

  // Says goodbye to the peers and leaves the tracker.
  async disconnect() {
    if (this.connecting) await this.connecting.catch(() => {});
    const p = this.peer;
    this.peer = null;
    if (p) await p.close();
  }

  requirePeer() {
    if (!this.peer) throw new P2PCDNError("invalid-argument", "not connected: call connect() first", 1);
    return this.peer;
  }

  progressOf(fileId, chunk) {
    const p = this.peer && this.peer.progress(fileId);
    if (!p) return { fileId, progress: 0, bytesVerified: 0, bytesTotal: 0, chunksHave: 0, chunksTotal: 0, peers: 0 };
    return {
      fileId,
      progress: p.chunksTotal ? p.chunksHave / p.chunksTotal : 0,
      bytesVerified: p.bytesVerified,
      bytesTotal: p.bytesTotal,
      chunksHave: p.chunksHave,
      chunksTotal: p.chunksTotal,
      peers: p.peers,
      chunk,
    };
  }

  // The whole file, fetched from the swarm (the manifest, if not given, from peers).
  async download(fileIdOrLink, manifest, onProgress) {
    const peer = this.requirePeer();
    const { core } = this.mod;
    const link = core.parseLink(fileIdOrLink);
    const fileId = link.fileId;
    if (link.key) throw new P2PCDNError("unsupported", "encrypted links are not supported in the browser yet", 8);
    let m = manifest ? core.manifestFromJson(manifest) : null;
    if (m && m.fileId !== fileId) throw new P2PCDNError("integrity", "the manifest is not that of " + fileId, 5);
    let finish, fail;
    const done = new Promise((resolve, reject) => { finish = resolve; fail = reject; });
    const listener = await peer.fetch(fileId, m, {
      onManifest: (x) => { m = x; },
      onChunk: (i) => { if (onProgress) onProgress(this.progressOf(fileId, i)); },
      onComplete: () => finish(),
      onError: (e) => fail(e),
    });
    try {
      await done;
    } finally {
      peer.unlisten(listener);
    }
    if (m.flags) throw new P2PCDNError("unsupported", "encrypted files are not supported in the browser yet", 8);
    const out = new Uint8Array(m.size);
    for (let i = 0; i < m.chunks.length; ++i) out.set(await peer.read(fileId, i), i * m.chunkSize);
    if (!this.options.enableSeeding) peer.remove(fileId);
    return out;
  }

  // Stops serving the file and deletes it from the store.
  async delete(fileId) {
    this.requirePeer().remove(this.mod.core.parseLink(fileId).fileId);
  }

  getStats() {
    const s = this.requirePeer().stats();
    return {
      peerId: s.peerId,
      peers: s.peers,
      connectedPeers: s.peers.length,
      closedLinks: s.closedLinks.length,
      bytesUploaded: s.peers.concat(s.closedLinks).reduce((a, p) => a + p.bytesUp, 0),
      bytesDownloaded: s.peers.concat(s.closedLinks).reduce((a, p) => a + p.bytesDown, 0),
      peerConnectionsCreated: s.peerConnectionsCreated,
      peerConnectionsLive: s.peerConnectionsLive,
    };
  }
}
