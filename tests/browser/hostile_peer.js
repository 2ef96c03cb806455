// A hostile peer, in a page (web_peer.mjs --scenario hostile): joins a file's
// swarm through the tracker with hand-made offers (the page's own
// RTCPeerConnection, no package code), proves its own key and shakes hands
// properly with whoever answers (link_auth.js), then sends one bad message of
// its `kind`:
//   unknown-type  a message of type 0xEE
//   oversized     a REQUEST of 262144 bytes (a REQUEST has 17): the largest
//                 message a data channel carries, the wrong size for its type
//   huge-claim    an unsolicited MANIFEST_PART that says the manifest has 4 GiB
// and records how each peer answered: a GOODBYE (its reason) and the channel
// closing. A well-behaved peer drops it and goes on with its download.
// Wire format: docs/protocol.md; signaling: docs/signaling.md.

const enc = new TextEncoder();
const hexToBytes = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
const bytesToHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const binStr = (b) => String.fromCharCode(...b);
const fromBinStr = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const randomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));
const T = { HANDSHAKE: 1, REQUEST: 4, MANIFEST_PART: 9, GOODBYE: 11 };

function handshake(peerId, fileId) {
  const b = new Uint8Array(64);
  const d = new DataView(b.buffer);
  d.setUint8(0, T.HANDSHAKE);
  b.set(enc.encode('P2PW'), 1);
  d.setUint8(5, 1);
  b.set(peerId, 6);
  d.setUint32(26, 0);
  b.set(fileId, 30);
  d.setUint16(62, 0);
  return b;
}

function badMessage(kind) {
  if (kind === 'unknown-type') return Uint8Array.from([0xee, ...randomBytes(99)]);
  if (kind === 'oversized') {
    const b = new Uint8Array(262144).fill(0x5a);
    b[0] = T.REQUEST;
    return b;
  }
  if (kind === 'huge-claim') {  // rid, total, offset, length, then the part
    const b = new Uint8Array(17 + 1024);
    const d = new DataView(b.buffer);
    d.setUint8(0, T.MANIFEST_PART);
    d.setUint32(1, 1);
    d.setUint32(5, 0xffffffff);
    d.setUint32(9, 0);
    d.setUint32(13, 1024);
    return b;
  }
  throw new Error(`no such attack ${kind}`);
}

const waitIce = (pc) => new Promise((resolve) => {
  if (pc.iceGatheringState === 'complete') return resolve();
  pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
});

// One identity of `kind`: `offers` offers in one announce; resolves after
// `waitMs` with what happened on every channel that opened.
export async function attack({ tracker, infoHash, fileId, kind, offers = 4, waitMs = 8000 }) {
  // A key of its own: it proves it like any peer (link_auth.js), then misbehaves.
  const auth = await import('/test/link_auth.js');
  const identity = await auth.makeIdentity('H');
  const peerId = identity.peerId;
  const fid = hexToBytes(fileId);
  const links = new Map();  // offer id (binary string) -> {pc, dc, record}
  const records = [];
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  for (let i = 0; i < offers; ++i) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    const dc = pc.createDataChannel('p2pcdn', { ordered: true });
    dc.binaryType = 'arraybuffer';
    const rec = { kind, opened: false, remoteWireId: null, goodbye: null, closedMs: null, sentBadMs: null, error: null };
    // The answer's SDP, kept when it arrives (the proof names its fingerprint).
    const sdps = { answer: null };
    // Messages wait here while the link is being proven.
    const queue = [];
    let waiter = null;
    let proven = false;
    const nextRaw = () => new Promise((resolve) => {
      if (queue.length) return resolve(queue.shift());
      waiter = resolve;
    });
    dc.onopen = () => {
      rec.opened = true;
      const fingerprints = { local: auth.fingerprint(pc.localDescription.sdp), remote: auth.fingerprint(sdps.answer || '') };
      auth.authenticate(identity, pc, (b) => dc.send(b), nextRaw, fingerprints).then(() => {
        proven = true;
        rec.proven = true;
        dc.send(handshake(peerId, fid));
        for (const b of queue.splice(0)) onWire(b);
      }, (e) => { rec.error = `auth: ${e.message}`; });
    };
    dc.onmessage = (ev) => {
      if (!(ev.data instanceof ArrayBuffer)) return;
      const b = new Uint8Array(ev.data);
      if (proven) return onWire(b);
      if (waiter) { const w = waiter; waiter = null; w(b); } else queue.push(b);
    };
    const onWire = (b) => {
      if (b[0] === T.HANDSHAKE && b.length >= 64 && rec.remoteWireId === null) {
        rec.remoteWireId = bytesToHex(b.subarray(6, 26));
        try {
          dc.send(badMessage(kind));
          rec.sentBadMs = ms();
        } catch (e) {
          rec.error = `send: ${e.message}`;
        }
      } else if (b[0] === T.GOODBYE && b.length >= 4 && rec.goodbye === null) {
        rec.goodbye = { reason: b[1], text: new TextDecoder().decode(b.subarray(4)), ms: ms() };
      }
    };
    dc.onclose = () => { if (rec.closedMs === null) rec.closedMs = ms(); };
    pc.onconnectionstatechange = () => {
      if ((pc.connectionState === 'failed' || pc.connectionState === 'closed') && rec.closedMs === null && rec.opened) {
        rec.closedMs = ms();
      }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await waitIce(pc);
    links.set(binStr(randomBytes(20)), { pc, dc, rec, sdps });
  }
  const ws = new WebSocket(tracker);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`WebSocket to ${tracker} failed`));
  });
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    const link = m.answer && links.get(m.offer_id);
    if (!link || link.answered) return;
    link.answered = true;
    link.rec.answeredBy = m.peer_id ? bytesToHex(fromBinStr(m.peer_id)) : null;
    link.sdps.answer = m.answer.sdp;
    records.push(link.rec);
    link.pc.setRemoteDescription({ type: 'answer', sdp: m.answer.sdp }).catch((e) => { link.rec.error = e.message; });
  };
  ws.send(JSON.stringify({
    action: 'announce', info_hash: binStr(hexToBytes(infoHash)), peer_id: binStr(peerId), numwant: offers,
    uploaded: 0, downloaded: 0, left: 1, event: 'started',
    offers: [...links].map(([offerId, l]) => ({ offer_id: offerId, offer: { type: 'offer', sdp: l.pc.localDescription.sdp } })),
  }));
  await new Promise((r) => setTimeout(r, waitMs));
  ws.close();
  for (const { pc } of links.values()) pc.close();
  return { peerId: bytesToHex(peerId), records };
}
