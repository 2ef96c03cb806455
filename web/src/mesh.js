// PeerMesh (the seed's name): the swarm one level down, over a P2PCDN's own
// peer (the same node, links and store: nothing connects twice). The wire
// protocol is pull (docs/protocol.md): a peer asks for a chunk and is sent it;
// data nobody asked for is a protocol error. So requestChunk asks the named
// peer first (the engine's wish, swarm::Session::wish), and sendChunk pushes
// nothing: it offers a chunk we hold (Session::offer) and resolves once the
// linked peer holds it (the peer asks when its own engine wants it;
// bytesSent says what we sent it).
import { P2PCDNError } from "./core.js";
import { parseChunkId } from "./storage.js";

const MAX_WAIT_MS = 10 * 60 * 1000;

function waitOption(ms, fallback) {
  const v = ms === undefined ? fallback : ms;
  if (!Number.isInteger(v) || v < 0 || v > MAX_WAIT_MS) {
    throw new P2PCDNError("invalid-argument", `a wait is an integer number of ms in [0, ${MAX_WAIT_MS}]`, 1);
  }
  return v;
}

// A chunk id as ChunkStorage takes it: "fileId:index" or {fileId, index} (a
// chunk record {fileId, index, data} is one too).
function chunkIdOf(chunkId) {
  const c = typeof chunkId === "string" || (typeof chunkId === "object" && chunkId !== null) ? parseChunkId(chunkId) : null;
  if (!c || !c.fileId || !Number.isInteger(c.index) || c.index < 0 || c.index >= 2 ** 32) {
    throw new P2PCDNError("invalid-argument", "a chunk id is \"fileId:index\" or {fileId, index} (index an integer >= 0)", 1);
  }
  return c;
}

function peerIdOf(peerId) {
  if (typeof peerId !== "string" || !/^[0-9a-f]{40}$/.test(peerId)) {
    throw new P2PCDNError("invalid-argument", "a peer id is 40 lower-case hex digits (getConnectedPeers)", 1);
  }
  return peerId;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class PeerMesh {
  constructor(cdn) {
    if (!cdn || typeof cdn.startFetch !== "function") {
      throw new P2PCDNError("invalid-argument", "new PeerMesh(p2pcdn): the P2PCDN whose peer it shows", 1);
    }
    this.cdn = cdn;
  }

  connect() { return this.cdn.connect(); }
  disconnect() { return this.cdn.disconnect(); }

  // Announces every file now (offers to new peers) instead of at the next
  // discoveryInterval, then waits up to waitMs (default 2000) for a link to
  // a peer not seen before; resolves with getConnectedPeers().
  async discoverPeers({ waitMs } = {}) {
    const wait = waitOption(waitMs, 2000);
    const peer = this.cdn.requirePeer();
    const before = new Set(this.getConnectedPeers().map((p) => p.peerId));
    peer.announce();
    const deadline = Date.now() + wait;
    while (Date.now() < deadline && !peer.closed) {
      if (this.getConnectedPeers().some((p) => !before.has(p.peerId))) break;
      await sleep(Math.min(50, Math.max(0, deadline - Date.now())));
    }
    return this.getConnectedPeers();
  }

  // The peers linked now (handshake done), one entry each:
  // {peerId, files: [fileId], bytesUp, bytesDown, rttMs}.
  getConnectedPeers() {
    const byId = new Map();
    for (const p of this.getPeerStats()) {
      let e = byId.get(p.peerId);
      if (!e) {
        e = { peerId: p.peerId, files: [], bytesUp: 0, bytesDown: 0, rttMs: null };
        byId.set(p.peerId, e);
      }
      e.files.push(p.fileId);
      e.bytesUp += p.bytesUp;
      e.bytesDown += p.bytesDown;
      if (p.rttSeconds !== null && p.rttSeconds !== undefined) e.rttMs = p.rttSeconds * 1000;
    }
    return [...byId.values()];
  }

  // One entry per open link (peer and file): the engine's numbers (bytes
  // and rates each way, chunks served and received, failures, pipeline,
  // choking) and the link's (rtt, candidate types).
  getPeerStats() {
    return this.cdn.requirePeer().stats().peers;
  }

  // Chunk (fileId, index) of a file (fileId may be a link, k= for an
  // encrypted one) as plaintext, asked of `peerId`. The file's manifest comes
  // from peers if the store lacks it. A chunk the store holds is read from
  // it (the protocol never fetches verified data twice). Fails with
  // not-found when that peer lacks the chunk, timed-out when no link to it
  // opens or the chunk does not arrive within timeoutMs (default 30000).
  // While no download() or stream() of the file runs, that peer is the only
  // one asked, and for this chunk only (also in endgame); during one, the
  // chunk comes from whoever answers first (the named peer is asked at once).
  async requestChunk(peerId, chunkId, { timeoutMs } = {}) {
    const wait = waitOption(timeoutMs, 30000);
    const pid = peerIdOf(peerId);
    const { fileId, index } = chunkIdOf(chunkId);
    const cdn = this.cdn;
    const peer = cdn.requirePeer();
    const id = cdn.mod.core.parseLink(fileId).fileId;
    const held = peer.storage().files.find((x) => x.fileId === id);
    if (held && !held.encrypted && index < held.chunksTotal) {
      try {
        return await peer.read(id, index);  // verified on read
      } catch (e) {
        if (e.code !== "not-found") throw e;
      }
    }
    // Alone (no download() or stream() of it), the fetch's picker picks
    // nothing (P2PCDN.applyMode), so only the wish asks, and only that peer.
    const f = await cdn.startFetch(fileId, null, null, { kind: "mesh" });
    let timer = null;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new P2PCDNError("timed-out",
        `chunk ${index} of ${f.fileId} did not come from peer ${pid} in ${wait} ms`, 12)), wait);
    });
    let settled = false;
    let ok = false;
    try {
      const m = await Promise.race([f.manifest(), late]);
      if (index >= m.chunks.length) {
        throw new P2PCDNError("invalid-argument", `file ${f.fileId} has ${m.chunks.length} chunks, not ${index + 1}`, 1);
      }
      // Ask that peer once its link is up (it may be opening: the fetch just
      // announced), and again every 500 ms: a request it rejected or that
      // expired is not asked again by the engine (a wish in flight is not
      // doubled). Its link not up yet is "no link" (src/swarm/session.cpp: wish).
      const ask = (async () => {
        while (!settled && !f.peer.closed) {
          let asked = false;
          try {
            f.peer.wish(f.fileId, pid, index);
            asked = true;
          } catch (e) {
            if (e.code !== "not-found" || !/no link/.test(e.message)) throw e;  // it lacks the chunk: say so
          }
          await sleep(asked ? 500 : 50);
        }
      })();
      const bytes = await Promise.race([f.chunk(index), ask.then(() => new Promise(() => {})), late]);
      ok = true;
      return bytes;
    } finally {
      settled = true;
      clearTimeout(timer);
      cdn.endFetch(f, ok && f.complete);
    }
  }

  // A held chunk (fileId, index) for `peerId`, linked for that file. Nothing
  // is pushed (the protocol is pull): it is offered (swarm::Session::offer: a
  // HAVE for it, which a super-seeder may not have sent, and the peer's
  // request for it served even while it is choked), and the peer asks when
  // its engine wants it. Resolves with
  // {bytesSent, ms} once the peer holds it, as its link tells (bytesSent: all
  // we sent it for the file meanwhile), at once if it held it already. Fails
  // with not-found when we do not hold the chunk or have no link to the peer
  // for the file, timed-out when the peer has not taken it within timeoutMs
  // (default 30000). Polls the node's numbers every 200 ms.
  async sendChunk(peerId, chunkId, { timeoutMs } = {}) {
    const wait = waitOption(timeoutMs, 30000);
    const pid = peerIdOf(peerId);
    const { fileId: idOrLink, index } = chunkIdOf(chunkId);
    const peer = this.cdn.requirePeer();
    const fileId = this.cdn.mod.core.parseLink(idOrLink).fileId;
    await peer.read(fileId, index);  // held (verified), or not-found
    // Its links for the file now: the open one, and what was sent over all (closed ones too).
    const look = () => {
      const st = peer.stats();
      const mine = (p) => p.peerId === pid && p.fileId === fileId;
      const closed = st.closedLinks.filter(mine);
      return { open: st.peers.find(mine), closed,
               sent: st.peers.filter(mine).concat(closed).reduce((a, p) => a + p.bytesUp, 0) };
    };
    const first = look();
    if (!first.open) throw new P2PCDNError("not-found", `no link to peer ${pid} for ${fileId}`, 4);
    const t0 = performance.now();
    const deadline = Date.now() + wait;
    for (;;) {
      const now = look();
      if (now.open) {
        try {
          peer.offer(fileId, pid, index);  // once per link (the node keeps what it offered)
        } catch (e) {
          if (e.code !== "not-found") throw e;  // its link is closing: the next one gets it
        }
      }
      // Its link says so; or the link closed, and its last word was that it holds every chunk.
      if (peer.peerHas(fileId, pid, index) || (!now.open && now.closed.some((p) => p.seeder))) {
        return { bytesSent: Math.max(0, now.sent - first.sent), ms: performance.now() - t0 };
      }
      if (Date.now() >= deadline) {  // (a link that closed meanwhile may open again: the wait goes on)
        throw new P2PCDNError("timed-out", `peer ${pid} did not take chunk ${index} of ${fileId} in ${wait} ms` +
          (now.open ? "" : " (no link to it now)"), 12);
      }
      await sleep(Math.min(200, Math.max(0, deadline - Date.now())));
    }
  }
}
