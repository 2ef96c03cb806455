#!/usr/bin/env node
// Headless Chromium <-> native p2pcdn peer, through the tracker's signaling.
//
//   node interop.mjs --tracker ws://127.0.0.1:PORT --info-hash HEX40 --file-id HEX64
//                    --node-modules DIR --chromium /usr/bin/chromium [--chromium-arg=FLAG]...
//                    [--timeout-ms 30000] [--verbose]
//
// Loads puppeteer-core from DIR (a node_modules folder: scripts/npm-deps.sh
// installs it in build/npm/node_modules, outside the tracked files).
// Meant to run inside a network namespace that holds only loopback
// (browser_test.py makes it; ../shared/design/BROWSERS.md): Chromium gathers loopback
// candidates (--allow-loopback-in-peer-connection) and, with camera and
// microphone granted to the page's origin, puts real host addresses in its offer.
//
// Launches Chromium (puppeteer-core, never downloads a browser), serves a blank
// page from http://127.0.0.1:<any> (a secure context, for crypto.subtle; about:blank
// is not one) and runs everything below inside the page, with the browser's own
// WebSocket, RTCPeerConnection and data channel:
//
//  positive: tracker announce with one complete (non-trickle) offer, the native
//    seeder's answer relayed back, an ordered data channel "p2pcdn" opens, then
//    wire protocol v1 (docs/protocol.md): link authentication (AUTH_HELLO and
//    AUTH_PROOF both ways, written again in link_auth.js, the peer id checked
//    against the key), HANDSHAKE both ways (same file id),
//    BITFIELD from the seeder, MANIFEST_REQUEST -> MANIFEST_PART(s) ("P2PM"),
//    REQUEST chunk 0 -> PIECE(s), SHA-256 of the reassembled chunk, GOODBYE.
//  negative: a second connection (another peer id) whose HANDSHAKE names another
//    file id: the seeder must answer GOODBYE wrong-file (3).
//
// Prints ONE JSON line on stdout ({ok, chromium, launchMs, positive, negative, ...});
// exits 0 when every in-page step completed, 1 otherwise (the JSON says where it
// stopped: "stage" and "error"). The Python driver (browser_test.py) checks the
// bytes against the original file. Diagnostics go to stderr.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    tracker: { type: 'string' },
    'info-hash': { type: 'string' },
    'file-id': { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    'timeout-ms': { type: 'string', default: '30000' },
    'chromium-arg': { type: 'string', multiple: true, default: [] },
    'node-modules': { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});
const usage = (why) => {
  process.stderr.write(`interop.mjs: ${why}\nusage: node interop.mjs --tracker ws://HOST:PORT --info-hash HEX40 ` +
    `--file-id HEX64 --node-modules DIR [--chromium PATH] [--chromium-arg=FLAG]... [--timeout-ms N] [--verbose]\n`);
  process.exit(2);
};
if (!opt.tracker || !/^wss?:\/\//.test(opt.tracker)) usage('--tracker ws://HOST:PORT is required');
if (!/^[0-9a-f]{40}$/.test(opt['info-hash'] || '')) usage('--info-hash wants 40 lower-case hex digits');
if (!/^[0-9a-f]{64}$/.test(opt['file-id'] || '')) usage('--file-id wants 64 lower-case hex digits');
const stepTimeoutMs = Number(opt['timeout-ms']);
if (!(stepTimeoutMs > 0)) usage('--timeout-ms wants a positive number');
if (!opt['node-modules']) usage('--node-modules DIR is required (scripts/npm-deps.sh installs build/npm/node_modules)');
// puppeteer-core's CommonJS build, resolved from DIR (ES module imports ignore
// NODE_PATH and would look beside this file, in the source tree).
const puppeteer = createRequire(path.join(path.resolve(opt['node-modules']), 'resolve-from-here.js'))('puppeteer-core');
const log = (...a) => process.stderr.write(`[interop] ${a.join(' ')}\n`);

// ---- Everything below runs inside the page (serialized by page.evaluate). ----
async function inPage(params) {
  const T0 = performance.now();
  const ms = () => Math.round((performance.now() - T0) * 10) / 10;
  const out = { stage: 'start' };
  const auth = await import('/test/link_auth.js');  // link authentication, written again (docs/protocol.md)
  const enc = new TextEncoder();
  const hexToBytes = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
  const bytesToHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  // WebTorrent "binary string": one code point U+0000..U+00FF per byte.
  const binStr = (b) => String.fromCharCode(...b);
  const fromBinStr = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  const randomBytes = (n) => crypto.getRandomValues(new Uint8Array(n));
  const withTimeout = (p, what, t = params.stepTimeoutMs) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${t} ms waiting for ${what}`)), t);
    p.then((v) => { clearTimeout(timer); resolve(v); }, (e) => { clearTimeout(timer); reject(e); });
  });

  // ---- wire protocol v1 codec (docs/protocol.md) ----
  const T = { HANDSHAKE: 1, BITFIELD: 2, HAVE: 3, REQUEST: 4, CANCEL: 5, REJECT: 6, PIECE: 7, MANIFEST_REQUEST: 8,
    MANIFEST_PART: 9, KEEPALIVE: 10, GOODBYE: 11 };
  const NAMES = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k]));
  const CAP_HAS_MANIFEST = 1 << 2;
  const MAX_MESSAGE = 262144;
  const msg = (size, fill) => { const b = new Uint8Array(size); fill(new DataView(b.buffer), b); return b; };
  const encHandshake = (peerId, caps, fileId) => msg(64, (d, b) => {
    d.setUint8(0, T.HANDSHAKE); b.set(enc.encode('P2PW'), 1); d.setUint8(5, 1); b.set(peerId, 6);
    d.setUint32(26, caps); b.set(fileId, 30); d.setUint16(62, 0);
  });
  const encManifestRequest = (rid) => msg(5, (d) => { d.setUint8(0, T.MANIFEST_REQUEST); d.setUint32(1, rid); });
  const encRequest = (rid, index, offset, length) => msg(17, (d) => {
    d.setUint8(0, T.REQUEST); d.setUint32(1, rid); d.setUint32(5, index); d.setUint32(9, offset); d.setUint32(13, length);
  });
  const encGoodbye = (reason, text) => { const t = enc.encode(text); return msg(4 + t.length, (d, b) => {
    d.setUint8(0, T.GOODBYE); d.setUint8(1, reason); d.setUint16(2, t.length); b.set(t, 4);
  }); };
  function decode(buf) {
    const b = new Uint8Array(buf);
    const d = new DataView(buf);
    const need = (n, exact = true) => {
      if (exact ? b.length !== n : b.length < n) throw new Error(`${NAMES[b[0]] || b[0]} of ${b.length} bytes`);
    };
    if (b.length < 1) throw new Error('empty message');
    if (b.length > MAX_MESSAGE) throw new Error(`message of ${b.length} bytes > ${MAX_MESSAGE}`);
    const type = b[0];
    switch (type) {
      case T.HANDSHAKE: {
        need(64, false);
        const magic = String.fromCharCode(...b.subarray(1, 5));
        const ext = d.getUint16(62);
        need(64 + ext);
        return { type, magic, version: b[5], peerId: b.slice(6, 26), caps: d.getUint32(26), fileId: b.slice(30, 62), ext };
      }
      case T.BITFIELD: {
        need(5, false);
        const count = d.getUint32(1);
        need(5 + Math.ceil(count / 8));
        const bits = b.slice(5);
        return { type, count, has: (i) => (bits[i >> 3] >> (7 - (i & 7))) & 1 };
      }
      case T.HAVE: need(5); return { type, index: d.getUint32(1) };
      case T.REJECT: need(10); return { type, rid: d.getUint32(1), reason: b[5], retryAfterMs: d.getUint32(6) };
      case T.PIECE: {
        need(21, false);
        const L = d.getUint32(17);
        need(21 + L);
        return { type, rid: d.getUint32(1), index: d.getUint32(5), chunkLength: d.getUint32(9), offset: d.getUint32(13),
          data: b.subarray(21) };
      }
      case T.MANIFEST_PART: {
        need(17, false);
        const L = d.getUint32(13);
        need(17 + L);
        return { type, rid: d.getUint32(1), total: d.getUint32(5), offset: d.getUint32(9), data: b.subarray(17) };
      }
      case T.KEEPALIVE: need(1); return { type };
      case T.GOODBYE: {
        need(4, false);
        const n = d.getUint16(2);
        need(4 + n);
        return { type, reason: b[1], text: new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(4)) };
      }
      default: throw new Error(`unexpected message type ${type} (${b.length} bytes)`);
    }
  }
  // Reassembles [0, total) from (offset, data) parts; refuses overlaps and overruns.
  function assembler(total, what) {
    const buf = new Uint8Array(total);
    const ranges = [];
    let have = 0;
    return {
      add(offset, data) {
        if (data.length < 1 || offset + data.length > total) throw new Error(`${what}: part [${offset}, +${data.length}) outside ${total}`);
        for (const [a, z] of ranges) {
          if (offset < z && a < offset + data.length) throw new Error(`${what}: part at ${offset} overlaps [${a}, ${z})`);
        }
        ranges.push([offset, offset + data.length]);
        buf.set(data, offset);
        have += data.length;
        return have === total;
      },
      bytes: buf,
    };
  }

  // ---- one browser peer: tracker WebSocket + RTCPeerConnection + channel ----
  async function connect(tag, r) {
    const timings = r.timings;
    const identity = await auth.makeIdentity('T');
    const peerId = identity.peerId;
    r.tag = tag;
    const offerId = randomBytes(20);
    const ws = new WebSocket(params.tracker);
    r.trackerMessages = [];  // what the tracker said, for diagnosis (SDPs left out)
    r.announces = 0;
    let answerWaiter = null;
    let announce = null;
    let retry = null;
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { r.trackerMessages.push({ unparsable: String(ev.data).slice(0, 200) }); return; }
      if (r.trackerMessages.length < 20) {
        const { offer, answer, info_hash, peer_id, offer_id, to_peer_id, ...rest } = m;
        r.trackerMessages.push({ ...rest, ...(offer ? { offer: '...' } : {}), ...(answer ? { answer: '...' } : {}) });
      }
      if (!answerWaiter) return;
      if (m['failure reason']) answerWaiter.reject(new Error(`tracker failure: ${m['failure reason']}`));
      else if (m.answer && m.offer_id === binStr(offerId)) answerWaiter.resolve(m);
      else if (announce && !m.answer && !m.offer && m.complete === 0) {
        // The seeder prints its JSON line before it has announced: if the tracker
        // knows no seeder yet, our offer went nowhere. Offer again shortly.
        clearTimeout(retry);
        retry = setTimeout(announce, 250);
      }
    };
    await withTimeout(new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`WebSocket to ${params.tracker} failed`));
    }), 'the tracker WebSocket to open');
    timings.trackerOpen = ms();

    const pc = new RTCPeerConnection({ iceServers: [] });
    const dc = pc.createDataChannel('p2pcdn', { ordered: true });
    dc.binaryType = 'arraybuffer';
    const inbox = [];
    let inboxWaiter = null;
    const counts = { sent: 0, received: 0, bytesSent: 0, bytesReceived: 0 };
    dc.onmessage = (ev) => {
      counts.received++;
      if (typeof ev.data === 'string') { inbox.push(new Error(`text message on the data channel: ${ev.data.slice(0, 80)}`)); }
      else { counts.bytesReceived += ev.data.byteLength; inbox.push(ev.data); }
      if (inboxWaiter) { const w = inboxWaiter; inboxWaiter = null; w(); }
    };
    let closedAt = null;
    const closed = new Promise((resolve) => { dc.onclose = () => { closedAt = ms(); resolve(); }; });
    const opened = new Promise((resolve, reject) => {
      dc.onopen = resolve;
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'failed') reject(new Error('RTCPeerConnection failed (ICE/DTLS)'));
      };
    });

    await pc.setLocalDescription(await pc.createOffer());
    await withTimeout(new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
    }), 'ICE gathering to complete');
    timings.iceGathered = ms();
    const offerSdp = pc.localDescription.sdp;
    const candidates = offerSdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'));

    const answered = new Promise((resolve, reject) => { answerWaiter = { resolve, reject }; });
    announce = () => {
      clearTimeout(retry);
      retry = setTimeout(announce, 5000);  // no answer at all: offer again
      ws.send(JSON.stringify({
        action: 'announce', info_hash: binStr(params.infoHash), peer_id: binStr(peerId), numwant: 1,
        uploaded: 0, downloaded: 0, left: 1, ...(r.announces++ === 0 ? { event: 'started' } : {}),
        offers: [{ offer_id: binStr(offerId), offer: { type: 'offer', sdp: offerSdp } }],
      }));
    };
    announce();
    let answer;
    try {
      answer = await withTimeout(answered, "the native peer's answer relayed by the tracker");
    } finally {
      clearTimeout(retry);
      announce = null;
      answerWaiter = null;
    }
    timings.answer = ms();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer.answer.sdp });
    await withTimeout(opened, 'the data channel to open');
    timings.channelOpen = ms();

    const send = (bytes) => { counts.sent++; counts.bytesSent += bytes.length; dc.send(bytes); };
    const nextRaw = async (what) => {
      if (!inbox.length) {
        await withTimeout(Promise.race([new Promise((r) => { inboxWaiter = r; }),
          closed.then(() => { throw new Error(`data channel closed while waiting for ${what}`); })]), what);
      }
      const m = inbox.shift();
      if (m instanceof Error) throw m;
      return new Uint8Array(m);
    };
    const next = async (what) => {
      const m = await nextRaw(what);
      try { return decode(m.buffer); } catch (e) { throw new Error(`while waiting for ${what}: ${e.message}`); }
    };
    // Link authentication first (both sides prove their keys), then the wire protocol.
    const peerKey = await auth.authenticate(identity, pc, send, nextRaw);
    timings.linkProven = ms();
    if (answer.peer_id && bytesToHex(auth.peerIdOf(peerKey, String.fromCharCode(fromBinStr(answer.peer_id)[2]))) !==
        bytesToHex(fromBinStr(answer.peer_id))) {
      throw new Error("the native peer's key does not give the peer id the tracker relayed");
    }
    const drain = () => withTimeout(new Promise((resolve) => {
      const poll = () => (dc.readyState !== 'open' || dc.bufferedAmount === 0 ? resolve() : setTimeout(poll, 10));
      poll();
    }), 'the send buffer to drain');
    const answerCandidates = answer.answer.sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
    return {
      peerId, pc, dc, ws, send, next, drain, counts, closed, closedAt: () => closedAt,
      remoteTrackerPeerId: answer.peer_id ? bytesToHex(fromBinStr(answer.peer_id)) : null,
      offerCandidates: candidates, answerCandidates,
    };
  }

  async function selectedPair(pc) {
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    if (!pair) return null;
    const c = (id) => { const x = stats.get(id); return x ? `${x.candidateType} ${x.address}:${x.port}/${x.protocol}` : '?'; };
    return { local: c(pair.localCandidateId), remote: c(pair.remoteCandidateId), rttMs: pair.currentRoundTripTime * 1000 };
  }

  function close(peer) {
    try { peer.pc.close(); } catch {}
    try { peer.ws.close(); } catch {}
  }

  const fileId = hexToBytes(params.fileIdHex);
  // ---- positive: handshake, manifest, chunk 0, goodbye ----
  async function positive() {
    const timings = {};
    const r = { timings };
    out.positive = r;
    out.stage = 'positive: signaling';
    const peer = await connect('-PCBRWS-', r);
    r.offerCandidates = peer.offerCandidates;
    r.answerCandidates = peer.answerCandidates;
    r.counts = peer.counts;
    r.trackerPeerId = peer.remoteTrackerPeerId;
    try {
      out.stage = 'positive: handshake';
      peer.send(encHandshake(peer.peerId, 0, fileId));
      const hs = await peer.next('the native HANDSHAKE');
      if (hs.type !== T.HANDSHAKE) throw new Error(`first message is ${NAMES[hs.type]}, not HANDSHAKE`);
      if (hs.magic !== 'P2PW' || hs.version !== 1) throw new Error(`bad handshake magic/version ${hs.magic}/${hs.version}`);
      if (bytesToHex(hs.fileId) !== bytesToHex(fileId)) throw new Error(`native handshake names file ${bytesToHex(hs.fileId)}`);
      timings.handshake = ms();
      r.remote = { wirePeerId: bytesToHex(hs.peerId), caps: hs.caps, ext: hs.ext };
      if (!(hs.caps & CAP_HAS_MANIFEST)) throw new Error(`native handshake lacks has-manifest (caps ${hs.caps})`);

      out.stage = 'positive: bitfield';
      const bf = await peer.next('the native BITFIELD');
      if (bf.type !== T.BITFIELD) throw new Error(`message after HANDSHAKE is ${NAMES[bf.type]}, not BITFIELD`);
      r.bitfield = { count: bf.count, set: Array.from({ length: bf.count }, (_, i) => bf.has(i)).reduce((a, x) => a + x, 0) };
      r.haves = [];
      timings.bitfield = ms();

      out.stage = 'positive: manifest';
      const MANIFEST_RID = 1;
      peer.send(encManifestRequest(MANIFEST_RID));
      let man = null;
      let parts = 0;
      for (;;) {
        const m = await peer.next('MANIFEST_PART');
        if (m.type === T.HAVE) { r.haves.push(m.index); continue; }  // a super-seeder reveals chunks by HAVE
        if (m.type === T.KEEPALIVE) continue;
        if (m.type === T.REJECT) throw new Error(`MANIFEST_REQUEST rejected, reason ${m.reason}`);
        if (m.type !== T.MANIFEST_PART) throw new Error(`expected MANIFEST_PART, got ${NAMES[m.type]}`);
        if (m.rid !== MANIFEST_RID) throw new Error(`MANIFEST_PART for request ${m.rid}, not ${MANIFEST_RID}`);
        if (!man) { man = assembler(m.total, 'manifest'); r.manifestLength = m.total; }
        else if (m.total !== r.manifestLength) throw new Error(`MANIFEST_PART totals differ: ${m.total} vs ${r.manifestLength}`);
        parts++;
        if (man.add(m.offset, m.data)) break;
      }
      r.manifestParts = parts;
      const mb = man.bytes;
      const md = new DataView(mb.buffer);
      r.manifestMagic = String.fromCharCode(...mb.subarray(0, 4));
      if (r.manifestMagic !== 'P2PM' || mb[4] !== 2) throw new Error(`manifest starts with ${bytesToHex(mb.subarray(0, 5))}`);
      const flags = mb[5];
      const chunkSize = md.getUint32(6);
      const size = Number(md.getBigUint64(10));
      const nameLen = mb[18];  // manifest v2 (docs/protocol.md): no createdAt
      const name = new TextDecoder().decode(mb.subarray(19, 19 + nameLen));
      const mimeLen = mb[19 + nameLen];
      let p = 20 + nameLen + mimeLen + (flags & 1 ? 33 : 0);
      const chunkCount = md.getUint32(p);
      p += 4;
      const expectedLength = p + 32 * chunkCount;
      r.manifest = { flags, chunkSize, size, name, chunkCount, expectedLength };
      if (expectedLength !== mb.length) throw new Error(`manifest of ${mb.length} bytes; its fields say ${expectedLength}`);
      if (chunkCount !== bf.count) throw new Error(`manifest has ${chunkCount} chunks, BITFIELD ${bf.count}`);
      timings.manifest = ms();

      out.stage = 'positive: chunk';
      const CHUNK_RID = 2;
      const length = Math.min(chunkSize, size) + (flags & 1 ? 16 : 0);
      peer.send(encRequest(CHUNK_RID, 0, 0, length));
      const chunk = assembler(length, 'chunk 0');
      let pieces = 0;
      for (;;) {
        const m = await peer.next('PIECE');
        if (m.type === T.HAVE) { r.haves.push(m.index); continue; }
        if (m.type === T.KEEPALIVE) continue;
        if (m.type === T.REJECT) throw new Error(`REQUEST rejected, reason ${m.reason}`);
        if (m.type !== T.PIECE) throw new Error(`expected PIECE, got ${NAMES[m.type]}`);
        if (m.rid !== CHUNK_RID || m.index !== 0 || m.chunkLength !== length) {
          throw new Error(`PIECE rid=${m.rid} index=${m.index} chunkLength=${m.chunkLength}; wanted ${CHUNK_RID}/0/${length}`);
        }
        pieces++;
        if (chunk.add(m.offset, m.data)) break;
      }
      timings.chunk = ms();
      r.chunk = { index: 0, length, pieces, chunkHash: bytesToHex(mb.subarray(p, p + 32)) };
      r.chunk.sha256 = bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', chunk.bytes)));
      r.chunkMs = Math.round((timings.chunk - timings.manifest) * 10) / 10;

      out.stage = 'positive: goodbye';
      r.selectedPair = await selectedPair(peer.pc);
      timings.goodbyeSent = ms();
      peer.send(encGoodbye(0, 'browser interop test done'));
      await peer.drain();
      // The native peer drops the link on GOODBYE, which closes the channel.
      try {
        await withTimeout(peer.closed, 'the native peer to close the channel after GOODBYE', 5000);
        r.closedByPeerMs = Math.round((peer.closedAt() - timings.goodbyeSent) * 10) / 10;
      } catch { r.closedByPeerMs = null; }
    } finally {
      close(peer);
    }
  }

  // ---- negative: HANDSHAKE with a file id the seeder does not serve ----
  async function negative() {
    const timings = {};
    const r = { timings };
    out.negative = r;
    out.stage = 'negative: signaling';
    const peer = await connect('-PCBRWX-', r);
    r.offerCandidates = peer.offerCandidates;
    r.answerCandidates = peer.answerCandidates;
    r.counts = peer.counts;
    try {
      out.stage = 'negative: wrong-file handshake';
      const wrong = Uint8Array.from(fileId);
      wrong[0] ^= 0xff;
      peer.send(encHandshake(peer.peerId, 0, wrong));
      // The seeder sends its own HANDSHAKE when the channel opens (it may arrive
      // first), then GOODBYE wrong-file in answer to ours.
      r.received = [];
      for (;;) {
        const m = await peer.next('GOODBYE wrong-file');
        r.received.push(NAMES[m.type]);
        if (m.type === T.GOODBYE) { r.goodbye = { reason: m.reason, text: m.text }; break; }
        if (m.type !== T.HANDSHAKE && m.type !== T.BITFIELD) throw new Error(`expected GOODBYE, got ${NAMES[m.type]}`);
      }
      timings.goodbye = ms();
      try {
        await withTimeout(peer.closed, 'the native peer to close the channel', 5000);
        r.closedByPeerMs = Math.round((peer.closedAt() - timings.goodbye) * 10) / 10;
      } catch { r.closedByPeerMs = null; }
    } finally {
      close(peer);
    }
  }

  params.infoHash = hexToBytes(params.infoHashHex);
  try {
    out.secureContext = isSecureContext;
    await positive();
    await negative();
    out.stage = 'done';
    out.ok = true;
  } catch (e) {
    out.ok = false;
    out.error = String(e && e.message ? e.message : e);
  }
  out.pageMs = ms();
  return out;
}

// ---- Node side ----
const t0 = performance.now();
const since = () => Math.round(performance.now() - t0);
const result = { ok: false };
let browser = null;
let server = null;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pcdn-chromium-'));
const hardTimer = setTimeout(() => {
  result.error = 'interop.mjs: overall time limit reached';
  finish(1);
}, 6 * stepTimeoutMs + 30000);

async function finish(code) {
  clearTimeout(hardTimer);
  result.totalMs = since();
  try { if (browser) await Promise.race([browser.close(), new Promise((r) => setTimeout(r, 5000))]); } catch {}
  try { if (browser && browser.process() && browser.process().exitCode === null) browser.process().kill('SIGKILL'); } catch {}
  try { if (server) server.close(); } catch {}
  fs.rmSync(userDataDir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(code);
}

try {
  // A blank page on 127.0.0.1: a secure context (crypto.subtle), unlike about:blank.
  server = http.createServer((req, res) => {
    if (req.url === '/test/link_auth.js') {
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' });
      res.end(fs.readFileSync(new URL('./link_auth.js', import.meta.url)));
    } else if (req.url === '/' || req.url === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end('<!doctype html><meta charset="utf-8"><title>p2pcdn browser interop</title>');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  const pageUrl = `http://127.0.0.1:${server.address().port}/`;

  const args = [
    '--no-sandbox', // root in a container: no user namespaces for the sandbox
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // In a namespace that holds only loopback, Chromium gathers nothing unless
    // loopback is allowed; the camera/microphone grant below keeps it from
    // filtering out its host candidates (else: "FilteringNetworkManager ...
    // permission status: denied", and no candidate at all).
    '--allow-loopback-in-peer-connection',
    ...opt['chromium-arg'],
  ];
  browser = await puppeteer.launch({
    executablePath: opt.chromium,
    headless: true, // new headless mode (--headless=new)
    userDataDir,
    args,
    timeout: stepTimeoutMs,
    protocolTimeout: 6 * stepTimeoutMs,
    dumpio: opt.verbose,
  });
  // What Chromium was really started with (puppeteer adds its defaults and
  // merges --disable-features lists).
  result.chromiumArgs = browser.process() ? browser.process().spawnargs.slice(1) : [...args];
  result.chromium = await browser.version();
  result.launchMs = since();
  await browser.defaultBrowserContext().overridePermissions(new URL(pageUrl).origin, ['camera', 'microphone']);
  const page = await browser.newPage();
  page.on('console', (m) => { if (opt.verbose) log(`console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(pageUrl, { waitUntil: 'load', timeout: stepTimeoutMs });
  const r = await page.evaluate(inPage, {
    tracker: opt.tracker,
    infoHashHex: opt['info-hash'],
    fileIdHex: opt['file-id'],
    stepTimeoutMs,
  });
  Object.assign(result, r);
  if (!r.ok) log(`failed at "${r.stage}": ${r.error}`);
  await finish(r.ok ? 0 : 1);
} catch (e) {
  result.error = `interop.mjs: ${e && e.stack ? e.stack : e}`;
  log(result.error);
  await finish(1);
}
