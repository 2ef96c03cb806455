#!/usr/bin/env node
// A Chromium page downloads a file from a native seeder with the browser
// package (build/wasm/web: the C++ peer in WebAssembly) by its id only:
//   node web_peer.mjs --package DIR --tracker ws://... --file-id HEX --node-modules DIR
//                     --chromium PATH [--firefox PATH] [--storage idb|memory]
//                     [--scenario download|resume|upload|swarm|hostile|mesh|quota|reindex|idbwrite|rawrecv|webtorrent]
//                     [--pages N] [--wt-bundle FILE]
//                     [--input FILE] [--encrypt] [--sink]
//                     [--info-hash HEX40] [--signal-dir DIR]
//                     [--wrong-link LINK] [--stream] [--timeout-ms N] [--verbose]
// --file-id may be a link (an encrypted file's, with its key).
// Serves DIR over http://127.0.0.1:<any>, runs P2PCDN.connect + download in
// the page, prints ONE JSON line {ok, sha256, size, stats, ms, error?, ...}.
// resume: the page is reloaded once half the chunks are stored; the result is
// the download after the reload (storedBefore: what IndexedDB held then).
// upload: the page uploads --input as a File (served at /input/<name>) and
// prints {uploaded: {...}} first; on a line on stdin (the caller fetched it
// natively meanwhile) a second page, in a browser context of its own (its own
// IndexedDB), downloads it from the first; the result is that download.
// swarm: see below (web_swarm_test.py). hostile: while the page downloads, a
// second page (hostile_peer.js) joins the swarm and sends each peer that
// answers it one bad message per attack; result.attacks says how they answered.
// Run inside a network namespace that holds only loopback (web_peer_test.py).
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileRoute, launch, serve } from './launch.mjs';

const { values: opt } = parseArgs({
  options: {
    package: { type: 'string' }, tracker: { type: 'string' }, 'file-id': { type: 'string' },
    'node-modules': { type: 'string' }, chromium: { type: 'string', default: '/usr/bin/chromium' },
    firefox: { type: 'string' },  // a path: run Firefox (WebDriver BiDi) instead of Chromium
    'timeout-ms': { type: 'string', default: '60000' }, verbose: { type: 'boolean', default: false },
    storage: { type: 'string', default: 'idb' },          // idb (IndexedDBStorage) | memory (MemoryStorage)
    scenario: { type: 'string', default: 'download' },    // download | resume (reload half-way) | upload
    input: { type: 'string' },                            // upload: the file the page uploads
    encrypt: { type: 'boolean', default: false },         // upload: AES-256-GCM, the key in the link
    'wrong-link': { type: 'string' },
    stream: { type: 'boolean', default: false },          // download: with stream() (in order, a slow reader)
    reupload: { type: 'string' },                         // download: then failed uploads (the file's name)
    sink: { type: 'boolean', default: false },            // download: stream() into nothing (benchmarks: memory)
    lookahead: { type: 'string', default: '16' },         // sink: stream()'s look-ahead
    pages: { type: 'string', default: '1' },              // swarm: how many pages download at once
    'info-hash': { type: 'string' },                      // hostile: the swarm's (seed --json prints it)
    'signal-dir': { type: 'string' },                     // rawrecv: bench_raw_datachannel's folder
    'wt-bundle': { type: 'string' },                      // webtorrent: webtorrent/dist/webtorrent.min.js
    profile: { type: 'string' },                          // Chromium: write the page's CPU profile here
    'user-data-dir': { type: 'string' },                  // the browser's profile folder (default: a fresh one)
  },
});
const puppeteer = createRequire(path.join(path.resolve(opt['node-modules']), 'x.js'))('puppeteer-core');
const timeoutMs = Number(opt['timeout-ms']);
const log = (s) => process.stderr.write(s + '\n');
const routes = {
  '/test/hostile_peer.js': fileRoute(new URL('./hostile_peer.js', import.meta.url), 'text/javascript'),
  '/test/link_auth.js': fileRoute(new URL('./link_auth.js', import.meta.url), 'text/javascript'),
};
if (opt['wt-bundle']) routes['/wt/webtorrent.min.js'] = fileRoute(opt['wt-bundle'], 'text/javascript');  // webtorrent: its browser bundle
if (opt.input) routes[`/input/${path.basename(opt.input)}`] = fileRoute(opt.input);
const { server, origin } = await serve(opt.package, routes);
// In the page: a download started and left running (its progress in window.__progress).
async function startDownload({ tracker, fileId, storage }) {
  try {
    const { P2PCDN, IndexedDBStorage, MemoryStorage } = await import('/dist/index.js');
    const cdn = new P2PCDN({ trackerUrl: tracker, discoveryInterval: 5000,
                             storage: storage === 'idb' ? new IndexedDBStorage() : new MemoryStorage() });
    await cdn.connect();
    window.__cdn = cdn;
    cdn.download(fileId, null, (p) => { window.__progress = p; })
      .catch((e) => { window.__error = `${e.code}: ${e.message}`; });
    return { ok: true };
  } catch (e) {
    return { ok: false, error: `${e && e.code ? e.code + ': ' : ''}${e && e.message ? e.message : e}` };
  }
}

// In the page: PeerMesh between two peers of the page. A downloads the file
// (from the native seeder) and keeps serving it; B asks A for single chunks
// (requestChunk), then streams the file slowly while A offers B a chunk
// (sendChunk). What each call gave, for web_peer_test.py to check.
async function meshScenario({ tracker, fileId, timeoutMs: t }) {
  const out = { ok: false };
  try {
    const { P2PCDN, MemoryStorage, PeerMesh } = await import('/dist/index.js');
    const code = (p) => p.then(() => 'resolved', (e) => (e && e.code) || String(e));
    const timer = new Promise((_, reject) => setTimeout(() => reject(new Error(`mesh not done in ${t} ms`)), t));
    const within = (p) => Promise.race([p, timer]);
    const mk = () => new P2PCDN({ trackerUrl: tracker, discoveryInterval: 5000, storage: new MemoryStorage() });
    const a = mk();
    const b = mk();
    await within(Promise.all([a.connect(), b.connect()]));
    out.step = 'all';
    const all = await within(a.download(fileId));
    const idA = a.getStats().peerId;
    const origId = fileId;
    const idB = b.getStats().peerId;
    const meshA = new PeerMesh(a);
    const meshB = new PeerMesh(b);
    const cs = 262144;
    const same = (x, i, src = all) => x.length === Math.min(cs, src.length - i * cs) &&
      x.every((v, k) => v === src[i * cs + k]);
    const stored = async () => ((await b.getStoredFiles()).find((f) => f.fileId === fileId) || { chunksStored: 0 }).chunksStored;
    // Chunks B received from each peer, over open and closed links.
    const fromPeers = () => {
      const s = b.getStats();
      const by = {};
      for (const p of s.peers.concat(s.closedPeers)) by[p.peerId] = (by[p.peerId] || 0) + p.chunksReceived;
      return by;
    };
    out.step = 'badPeer';
    out.badPeer = await code(meshB.requestChunk('nope', `${fileId}:1`));
    out.step = 'badChunk';
    out.badChunk = await code(meshB.requestChunk(idA, { fileId, index: 999 }, { timeoutMs: 20000 }));
    let t0 = performance.now();
    out.step = 'c9';
    const c9 = await within(meshB.requestChunk(idA, `${fileId}:9`));
    out.requestMs = performance.now() - t0;
    out.c9Same = same(c9, 9);
    out.step = 'storedAfterOne';
    out.storedAfterOne = await stored();
    out.fromAfterOne = fromPeers();
    const created = b.getStats().peerConnectionsCreated;
    t0 = performance.now();
    out.step = 'again';
    const again = await within(meshB.requestChunk(idA, { fileId, index: 9 }));
    out.heldMs = performance.now() - t0;
    out.againSame = same(again, 9);
    out.createdForHeld = b.getStats().peerConnectionsCreated - created;
    out.step = 'ghost';
    out.ghost = await code(meshB.requestChunk('00'.repeat(20), `${fileId}:3`, { timeoutMs: 2000 }));
    out.step = 'storedAfterGhost';
    out.storedAfterGhost = await stored();
    // sendChunk, of a file A uploads (so A is B's only source): B streams it
    // with a look-ahead of 1 and stops after chunk 0, so it wants nothing past
    // chunk 1 until it reads on.
    const own = new Uint8Array(16 * cs);
    for (let at = 0; at < own.length; at += 65536) crypto.getRandomValues(own.subarray(at, at + 65536));
    out.step = 'upload';
    const up = await within(a.upload(own, { name: 'mesh.bin' }));
    const it = b.stream(up.fileId, null, null, { lookahead: 1 })[Symbol.asyncIterator]();
    out.step = 'first';
    const first = await within(it.next());
    out.firstSame = same(first.value, 0, own);
    fileId = up.fileId;  // from here on: A's upload
    const deadline = Date.now() + t;
    while (!meshA.getConnectedPeers().some((p) => p.peerId === idB && p.files.includes(fileId))) {
      if (Date.now() > deadline) throw new Error('B never linked to A for the file');
      await new Promise((r) => setTimeout(r, 20));
    }
    out.aSeesB = meshA.getConnectedPeers().find((p) => p.peerId === idB);
    out.aLinks = meshA.getPeerStats().length;
    out.step = 'sendStranger';
    out.sendStranger = await code(meshA.sendChunk('00'.repeat(20), `${fileId}:5`));
    out.step = 'sendEarly';
    out.sendEarly = await code(meshA.sendChunk(idB, `${fileId}:12`, { timeoutMs: 1500 }));
    const sending = meshA.sendChunk(idB, `${fileId}:12`, { timeoutMs: t });
    let n = 1;
    out.step = 'stream';
    for (let r = await within(it.next()); !r.done; r = await within(it.next())) {
      if (!same(r.value, n, own)) throw new Error(`stream: chunk ${n} differs`);
      ++n;
    }
    out.streamed = n;
    out.step = 'sent';
    out.sent = await within(sending);
    out.step = 'sentAgain';
    out.sentAgain = await within(meshA.sendChunk(idB, { fileId, index: 12 }));
    // Three kinds of fetch of one file at once (P2PCDN.applyMode): a stream
    // paused after its first chunk (look-ahead 1) must not hold back a
    // download() of the file, nor a requestChunk of it.
    out.step = 'concurrent';
    const paused = b.stream(origId, null, null, { lookahead: 1 })[Symbol.asyncIterator]();
    await within(paused.next());
    const [whole, c14] = await within(Promise.all([b.download(origId), meshB.requestChunk(idA, `${origId}:14`)]));
    out.concurrentSame = whole.length === all.length && whole.every((v, k) => v === all[k]) && same(c14, 14);
    await within(paused.return());
    out.step = 'discover';
    out.discovered = (await within(meshB.discoverPeers({ waitMs: 300 }))).map((p) => p.peerId);
    out.idA = idA;
    out.idB = idB;
    await Promise.all([a.disconnect(), b.disconnect()]);
    out.step = 'afterDisconnect';
    out.ownChunks = own.length / cs;
    out.afterDisconnect = await code(meshB.requestChunk(idA, `${fileId}:2`));
    out.ok = true;
  } catch (e) {
    out.error = `at ${out.step}: ${e && e.code ? e.code + ': ' : ''}${e && e.stack ? e.stack : e}`;
  }
  return out;
}

// In the page: the store's real quota, reached. The browser profile lives on
// a small tmpfs (web_peer_test.py --quota), and the peer's IndexedDBStorage is
// blind to navigator.storage.estimate() (it says 1 TB), so only a real
// QuotaExceededError from IndexedDB stops a write: A fits; B fits only once A
// is evicted; C cannot fit even with everything evicted and must fail with
// quota-exceeded; D (small) must then download (the database is not wedged),
// and a peer opened again on the same database must list what it holds.
async function quotaScenario({ tracker, files, timeoutMs: t }) {
  const out = { ok: false, steps: {} };
  try {
    const { P2PCDN, IndexedDBStorage } = await import('/dist/index.js');
    class Blind extends IndexedDBStorage { async estimate() { return { quota: 1e12, usage: 0 }; } }
    out.realEstimate = await navigator.storage.estimate();
    const hex = async (d) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', d))]
      .map((b) => b.toString(16).padStart(2, '0')).join('');
    const mk = () => new P2PCDN({ trackerUrl: tracker, discoveryInterval: 5000, storage: new Blind(),
                                  enableSeeding: false, storageQuota: 1e12 });
    const cdn = mk();
    await cdn.connect();
    for (const [name, id] of Object.entries(files)) {
      const t0 = performance.now();
      const step = { };
      try {
        let timer = null;
        const data = await Promise.race([cdn.download(id), new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`download ${name} not done in ${t} ms`)), t);
        })]).finally(() => clearTimeout(timer)).catch(async (e) => {
          await cdn.delete(id).catch(() => {});  // a timed-out download stops here, not in the next step
          throw e;
        });
        step.sha256 = await hex(data);
        step.size = data.length;
      } catch (e) {
        step.error = { code: e.code || 'none', message: String(e.message || e) };
      }
      step.ms = performance.now() - t0;
      step.stored = (await cdn.getStoredFiles()).map((f) => ({ fileId: f.fileId, chunksStored: f.chunksStored, complete: f.complete }));
      step.storage = cdn.getStats().storage;
      out.steps[name] = step;
    }
    out.estimateAtEnd = await navigator.storage.estimate();
    await cdn.disconnect();
    const again = mk();
    await again.connect();
    out.storedAfterReopen = (await again.getStoredFiles()).map((f) => ({ fileId: f.fileId, complete: f.complete }));
    await again.disconnect();
    out.ok = true;
  } catch (e) {
    out.error = `${e && e.code ? e.code + ': ' : ''}${e && e.stack ? e.stack : e}`;
  }
  return out;
}

// In the page: connect and upload the file at `input` as a File named as it is.
async function uploadFile({ tracker, storage, input, encrypt }) {
  try {
    const { P2PCDN, IndexedDBStorage, MemoryStorage } = await import('/dist/index.js');
    const cdn = new P2PCDN({ trackerUrl: tracker, discoveryInterval: 5000,
                             storage: storage === 'idb' ? new IndexedDBStorage() : new MemoryStorage() });
    await cdn.connect();
    window.__cdn = cdn;
    const blob = await (await fetch(input)).blob();
    // A type of its own: the id must not depend on it (the name decides, as in `p2pcdn add`).
    const file = new File([blob], input.split('/').pop(), { type: 'application/x-p2pcdn-test' });
    const t0 = performance.now();
    const r = await cdn.upload(file, { encrypt });
    return { ok: true, ms: performance.now() - t0, fileId: r.fileId, link: r.link, manifest: r.manifest, key: r.key,
             stored: await cdn.getStoredFiles(), peerId: cdn.getStats().peerId };
  } catch (e) {
    return { ok: false, error: `${e && e.code ? e.code + ': ' : ''}${e && e.message ? e.message : e}` };
  }
}

// In the page: disconnect the download's P2PCDN; what remains of it then (nothing, if all is well).
async function leave() {
  const out = { stats: window.__cdnOfDownload.getStats() };
  await window.__cdnOfDownload.disconnect();
  // The peer is destroyed on the loop's next turn; then nothing of it may remain.
  await new Promise((r) => setTimeout(r, 200));
  const { host } = await (await import('/dist/module.js')).loadModule();
  out.linksAfter = host.links.size;
  out.socketsAfter = host.sockets.size;
  out.storesAfter = host.stores.size;
  if (window.__cdnOfDownload.options.storage instanceof (await import('/dist/index.js')).IndexedDBStorage) {
    const { IndexedDBStorage } = await import('/dist/index.js');
    const again = new IndexedDBStorage();
    out.reopen = await again.open().then(() => 'opened', (e) => `${e.code}: ${e.message}`);
    again.close();
  }
  return out;
}

// One line from stdin (the caller's go-ahead).
function stdinLine() {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d) => {
      buf += d;
      if (buf.includes('\n')) { process.stdin.off('data', onData); process.stdin.pause(); resolve(buf.split('\n')[0]); }
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', onData);
    process.stdin.once('end', () => reject(new Error('stdin closed before the go-ahead')));
  });
}

// In the page: connect and download the whole file (it stays connected: leave() ends it), check what remains after disconnect.
async function download({ tracker, fileId, timeoutMs: t, storage, wrongLink, stream, sink, lookahead: sinkAhead,
                          reupload }) {
  const out = { ok: false };
  try {
    const { P2PCDN, IndexedDBStorage, MemoryStorage } = await import('/dist/index.js');
    if (wrongLink) {
      // A wrong key, in a peer of its own (its own memory store): must fail, and early.
      const w = new P2PCDN({ trackerUrl: tracker, discoveryInterval: 5000, storage: new MemoryStorage() });
      await w.connect();
      const t0 = performance.now();
      let chunks = 0;
      out.wrongKey = await Promise.race([
        w.download(wrongLink, null, () => { ++chunks; }).then(() => ({ code: 'none', message: 'it downloaded' }),
                                                                 (e) => ({ code: e.code, message: e.message })),
        new Promise((r) => setTimeout(() => r({ code: 'timeout', message: `no answer in ${t} ms` }), t)),
      ]);
      out.wrongKey.ms = performance.now() - t0;
      out.wrongKey.chunksBeforeFailing = chunks;
      await w.disconnect();
    }
    // Every step is bounded: a store or a swarm that never answers fails the run.
    let step = 'connect';
    const timer = new Promise((_, reject) => setTimeout(() => reject(new Error(`${step} not done in ${t} ms`)), t));
    const within = (p) => Promise.race([p, timer]);
    const cdn = new P2PCDN({ trackerUrl: tracker, discoveryInterval: 5000,
                             storage: storage === 'idb' ? new IndexedDBStorage() : new MemoryStorage({ quota: 2 ** 32 }) });
    window.__cdnOfDownload = cdn;
    await within(cdn.connect());
    step = 'getStoredFiles';
    out.storedBefore = await within(cdn.getStoredFiles());
    if (storage === 'idb') {  // a second peer on the same database: refused, clearly
      out.secondOpen = await new IndexedDBStorage().open().then(() => 'opened', (e) => `${e.code}: ${e.message}`);
    }
    out.indexMs = cdn.getStats().storage.indexMs;
    // Memory: the wasm heap, idle and at its peak (the JS side: sampled() from V8).
    const { module: wasm } = await (await import('/dist/module.js')).loadModule();
    out.memIdle = { wasm: wasm.HEAPU8.length };
    out.memPeak = { ...out.memIdle };
    const sampler = setInterval(() => { out.memPeak.wasm = Math.max(out.memPeak.wasm, wasm.HEAPU8.length); }, 100);
    const t0 = performance.now();
    let progressCalls = 0;
    let last = null;
    step = 'download';
    // lastChunkMs: when the last chunk was stored (the rest of ms is reading the file back).
    const onProgress = (p) => { ++progressCalls; last = p; window.__progress = p; out.lastChunkMs = performance.now() - t0; };
    let data;
    if (sink) {
      // stream() into nothing: what a page playing or saving the file holds (the bytes are counted only).
      data = await within((async () => {
        let n = 0;
        for await (const c of cdn.stream(fileId, null, onProgress, { lookahead: sinkAhead })) n += c.length;
        return { length: n, sink: true };
      })());
    } else if (stream) {
      // In order, with a reader slow for its first 24 chunks (40 ms each, about a
      // third of the link's pace): the swarm must stay within the look-ahead.
      const lookahead = 8;
      data = await within((async () => {
        const parts = [];
        let n = 0;
        out.maxAhead = 0;
        for await (const c of cdn.stream(fileId, null, onProgress, { lookahead })) {
          parts.push(c);
          ++n;
          out.maxAhead = Math.max(out.maxAhead, (last ? last.chunksHave : 0) - n);
          if (n <= 24) await new Promise((r) => setTimeout(r, 40));
        }
        out.lookahead = lookahead;
        out.streamedChunks = n;
        const all = new Uint8Array(parts.reduce((a, c) => a + c.length, 0));
        let at = 0;
        for (const c of parts) { all.set(c, at); at += c.length; }
        return all;
      })());
    } else {
      data = await within(cdn.download(fileId, null, onProgress));
    }
    out.ms = performance.now() - t0;
    clearInterval(sampler);
    out.size = data.length;
    out.progressCalls = progressCalls;
    out.lastProgress = last;
    if (!data.sink) {
      out.sha256 = [...new Uint8Array(await crypto.subtle.digest('SHA-256', data))]
        .map((b) => b.toString(16).padStart(2, '0')).join('');
    }
    out.stats = cdn.getStats();
    out.storedAfter = await cdn.getStoredFiles();
    if (reupload) {
      // Failed uploads (a Blob that changes between the two passes): of the
      // file just downloaded (same name, so the same id: the store held it,
      // unpinned, the node serving it), and of new content. Neither may leave
      // anything changed or half-stored behind.
      const chunks = Math.ceil(data.length / (256 * 1024));
      class Changing extends Blob {
        constructor(parts, name) { super(parts); this.name = name; this.reads = 0; }
        slice(a, b) { return ++this.reads > chunks ? new Blob([new Uint8Array(b - a).fill(1)]) : super.slice(a, b); }
      }
      const attempt = (blob) => cdn.upload(blob).then(() => 'uploaded', (e) => e.code);
      out.reuploadSame = await attempt(new Changing([data], reupload));
      out.reuploadNew = await attempt(new Changing([data.subarray(1)], 'other.bin'));
      out.storedAfterReupload = await cdn.getStoredFiles();
    }
    out.ok = true;  // it stays in the swarm, serving, until leave()
  } catch (e) {
    out.error = `${e && e.code ? e.code + ': ' : ''}${e && e.message ? e.message : e}`;
    try { out.statsAtError = window.__cdnOfDownload.getStats(); } catch {}
  }
  return out;
}

// The run as a whole is bounded too (a browser that stops answering): one JSON line, then exit.
setTimeout(() => {
  process.stdout.write(JSON.stringify({ ok: false, error: `web_peer.mjs: no result in ${3 * timeoutMs} ms` }) + '\n');
  try { browser && browser.process() && browser.process().kill('SIGKILL'); } catch {}
  process.exit(1);
}, 3 * timeoutMs).unref();
// --user-data-dir: the profile there (quota: a small tmpfs), kept; else a fresh folder, removed.
const userDataDir = opt['user-data-dir'] || fs.mkdtempSync(path.join(os.tmpdir(), 'p2pcdn-web-peer-'));
let browser = null;
let result = { ok: false };
try {
  browser = await launch(puppeteer, { firefox: opt.firefox, chromium: opt.chromium, userDataDir, timeoutMs, origin });
  const openPage = async (context, tag) => {
    const pg = await context.newPage();
    pg.on('console', (m) => { if (opt.verbose) log(`${tag} console.${m.type()}: ${m.text()}`); });
    pg.on('pageerror', (e) => log(`${tag} page error: ${e.message}`));
    await pg.goto(origin + '/', { waitUntil: 'load', timeout: timeoutMs });
    return pg;
  };
  const page = await openPage(browser.defaultBrowserContext(), 'page');
  // --profile FILE (Chromium): a CPU profile of the page's whole scenario (.cpuprofile, for DevTools).
  let profiler = null;
  if (opt.profile && !opt.firefox) {
    profiler = await page.createCDPSession();
    await profiler.send('Profiler.enable');
    await profiler.send('Profiler.setSamplingInterval', { interval: 200 });
    await profiler.send('Profiler.start');
  }
  // Chromium: what the page's JavaScript holds, from V8 itself (CDP
  // Runtime.getHeapUsage): the heap's objects plus every ArrayBuffer's bytes
  // (the wasm memory and chunks in flight among them). performance.memory is
  // no measure: Chromium quantizes it and leaves ArrayBuffers out.
  const heapOf = async (cdp) => {
    const u = await cdp.send('Runtime.getHeapUsage');
    return { heap: u.usedSize, buffers: u.backingStorageSize || 0, total: u.usedSize + (u.backingStorageSize || 0) };
  };
  // run() in the page, its result with {v8: {idle, peak}} (Chromium): idle
  // after `warm` (e.g. the package's module loaded) and a full collection.
  const sampled = async (pg, warm, run) => {
    if (opt.firefox) return run();
    await pg.evaluate(warm);
    const cdp = await pg.createCDPSession();
    await cdp.send('HeapProfiler.collectGarbage');
    const v8 = { idle: await heapOf(cdp) };
    v8.peak = { ...v8.idle };
    let busy = false;
    const sampler = setInterval(async () => {
      if (busy) return;
      busy = true;
      try {
        const m = await heapOf(cdp);
        if (m.total > v8.peak.total) v8.peak = m;
      } catch {}
      busy = false;
    }, 100);
    try {
      const r = await run();
      r.v8 = v8;
      return r;
    } finally {
      clearInterval(sampler);
      await cdp.detach().catch(() => {});
    }
  };
  // download, then leave: what the page holds after disconnect() joins the result.
  const downloadAndLeave = async (pg, a) => {
    const r = await sampled(pg, async () => { await (await import('/dist/module.js')).loadModule(); },
                            () => pg.evaluate(download, a));
    return r.ok ? Object.assign(r, await pg.evaluate(leave), { stats: r.stats }) : r;
  };
  const args = { tracker: opt.tracker, fileId: opt['file-id'], timeoutMs, storage: opt.storage,
                 wrongLink: opt['wrong-link'], stream: opt.stream, sink: opt.sink,
                 lookahead: Number(opt.lookahead), reupload: opt.reupload };
  if (opt.scenario === 'upload') {
    const up = await page.evaluate(uploadFile, { ...args, input: `/input/${path.basename(opt.input)}`, encrypt: opt.encrypt });
    if (!up.ok) throw new Error(`upload: ${up.error}`);
    process.stdout.write(JSON.stringify({ uploaded: up }) + '\n');
    await stdinLine();
    // The second page: its own context, so its own IndexedDB (and media grant).
    const context = await browser.createBrowserContext();
    if (!opt.firefox) await context.overridePermissions(origin, ['camera', 'microphone']);
    const other = await openPage(context, 'page2');
    result = await downloadAndLeave(other, { ...args, fileId: up.link });  // with its key, if encrypted
    result.uploaded = up;
    result.uploaderStats = await page.evaluate(() => window.__cdn.getStats());
  } else if (opt.scenario === 'swarm') {
    // --pages pages, each in a context of its own (its own IndexedDB), download
    // at once and stay, serving; each prints {page, result} when done. On a
    // line on stdin all leave; the result is {ok, pages: [what each left behind]}.
    const pages = [page];
    for (let k = 1; k < Number(opt.pages); ++k) {
      const context = await browser.createBrowserContext();
      if (!opt.firefox) await context.overridePermissions(origin, ['camera', 'microphone']);
      pages.push(await openPage(context, `page${k}`));
    }
    const done = await Promise.all(pages.map((pg, k) => pg.evaluate(download, args).then((r) => {
      process.stdout.write(JSON.stringify({ page: k, result: r }) + '\n');
      return r;
    })));
    await stdinLine();
    const left = await Promise.all(pages.map((pg) => pg.evaluate(leave)));
    result = { ok: done.every((r) => r.ok), pages: left };
  } else if (opt.scenario === 'hostile') {
    const victim = downloadAndLeave(page, args);
    // Once the download is under way (a few chunks in), the attacks.
    const deadline = Date.now() + timeoutMs;
    let victimId = null;
    while (!victimId) {
      victimId = await page.evaluate(() => (window.__progress && window.__progress.chunksHave >= 2
        ? window.__cdnOfDownload.getStats().peerId : null));
      if (Date.now() > deadline) throw new Error(`the download was not under way in ${timeoutMs} ms`);
      if (!victimId) await new Promise((r) => setTimeout(r, 50));
    }
    const context = await browser.createBrowserContext();
    if (!opt.firefox) await context.overridePermissions(origin, ['camera', 'microphone']);
    const bad = await openPage(context, 'hostile');
    const attacks = await Promise.all(['unknown-type', 'oversized', 'huge-claim'].map((kind) => bad.evaluate(
      async (a) => (await import('/test/hostile_peer.js')).attack(a),
      { tracker: opt.tracker, infoHash: opt['info-hash'], fileId: opt['file-id'], kind })));
    result = await victim;
    result.attacks = attacks;
    result.victimPeerId = victimId;
  } else if (opt.scenario === 'rawrecv') {
    // The raw data channel, for benchmarks: the page answers the offer that
    // bench_raw_datachannel send writes to --signal-dir/offer.sdp (answer.sdp
    // back), then receives its header (8-byte magic, u64 LE total), the bytes,
    // and answers "done". No package code: the browser's own channel.
    const dir = opt['signal-dir'];
    const deadline = Date.now() + timeoutMs;
    let offer = null;
    while (!offer) {
      try { offer = fs.readFileSync(path.join(dir, 'offer.sdp'), 'utf8'); fs.rmSync(path.join(dir, 'offer.sdp')); } catch {}
      if (!offer) {
        if (Date.now() > deadline) throw new Error(`no offer in ${dir} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    await page.evaluate(() => {
      window.__raw = { received: 0, total: 0, t0: 0, t1: 0, messages: 0 };
      const pc = new RTCPeerConnection({ iceServers: [] });
      window.__rawPc = pc;
      pc.ondatachannel = ({ channel: dc }) => {
        dc.binaryType = 'arraybuffer';
        dc.onmessage = (e) => {
          const r = window.__raw;
          if (r.total === 0) {
            const d = new DataView(e.data);
            r.total = Number(d.getBigUint64(8, true));
            return;
          }
          if (r.received === 0) r.t0 = performance.now();
          r.received += e.data.byteLength;
          ++r.messages;
          if (r.received >= r.total) {
            r.t1 = performance.now();
            dc.send(new TextEncoder().encode('done'));
          }
        };
      };
    });
    const answer = await page.evaluate(async (sdp) => {
      const pc = window.__rawPc;
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
      });
      return pc.localDescription.sdp;
    }, offer);
    fs.writeFileSync(path.join(dir, 'answer.sdp.tmp'), answer);
    fs.renameSync(path.join(dir, 'answer.sdp.tmp'), path.join(dir, 'answer.sdp'));
    for (;;) {
      const r = await page.evaluate(() => window.__raw);
      if (r.t1) {
        result = { ok: true, bytes: r.received, messages: r.messages, ms: r.t1 - r.t0 };
        break;
      }
      if (Date.now() > deadline) throw new Error(`raw transfer not done in ${timeoutMs} ms: ${JSON.stringify(r)}`);
      await new Promise((res) => setTimeout(res, 20));
    }
  } else if (opt.scenario === 'quota') {
    // --file-id is name=id,name=id,... (web_peer_test.py --quota), downloaded in that order.
    const files = Object.fromEntries(opt['file-id'].split(',').map((x) => x.split('=')));
    result = await page.evaluate(quotaScenario, { tracker: opt.tracker, files, timeoutMs });
  } else if (opt.scenario === 'mesh') {
    result = await page.evaluate(meshScenario, { tracker: opt.tracker, fileId: opt['file-id'], timeoutMs });
  } else if (opt.scenario === 'webtorrent') {
    // The peer system, for benchmarks: WebTorrent's browser bundle in this
    // page downloads the torrent at --input (its tracker and a WebTorrent
    // seeder: bench/webtorrent/seed.mjs) into its default store. ms: first
    // payload byte to done (as the bench kit times it); msTotal: add() to done.
    result = await sampled(page, async () => { await import('/wt/webtorrent.min.js'); }, () => page.evaluate(async ({ torrentUrl, t }) => {
      const { default: WebTorrent } = await import('/wt/webtorrent.min.js');
      const client = new WebTorrent({ tracker: { rtcConfig: { iceServers: [] } } });
      const torrentFile = new Uint8Array(await (await fetch(torrentUrl)).arrayBuffer());
      try {
        const t0 = performance.now();
        let tFirst = null;
        const torrent = await new Promise((resolve, reject) => {
          const tor = client.add(torrentFile);
          const seen = [];  // progress every 10 s, for a failure's message
          const every = setInterval(() => seen.push(`${Math.round((performance.now() - t0) / 1000)}s:` +
            `${(tor.downloaded / 1e6).toFixed(0)}MB/${tor.numPeers}p`), 10000);
          const late = setTimeout(() => reject(new Error(`webtorrent: not done in ${t} ms (${seen.join(' ')})`)), t);
          const stop = () => { clearInterval(every); clearTimeout(late); };
          tor.on('done', stop);
          tor.on('error', stop);
          client.on('error', (e) => { stop(); reject(e); });
          tor.on('error', reject);
          tor.on('download', () => { if (tFirst === null) tFirst = performance.now(); });
          tor.on('done', () => resolve(tor));
        });
        const tDone = performance.now();
        const bytes = new Uint8Array(await torrent.files[0].arrayBuffer());
        const hex = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))]
          .map((b) => b.toString(16).padStart(2, '0')).join('');
        return { ok: true, size: bytes.length, sha256: hex, ms: tDone - (tFirst === null ? t0 : tFirst), msTotal: tDone - t0,
                 peers: torrent.numPeers, store: torrent.store && torrent.store.store
                   ? torrent.store.store.constructor.name : null };
      } catch (e) {
        return { ok: false, error: String(e && e.message ? e.message : e) };
      } finally {
        await new Promise((r) => client.destroy(r));
      }
    }, { torrentUrl: `/input/${path.basename(opt.input)}`, t: timeoutMs }));
  } else if (opt.scenario === 'reindex') {
    // Download, then reload: how long the new page takes to index what IndexedDB holds.
    const first = await downloadAndLeave(page, args);
    if (!first.ok) throw new Error(first.error);
    await page.reload({ waitUntil: 'load', timeout: timeoutMs });
    result = await page.evaluate(async ({ tracker }) => {
      const { P2PCDN, IndexedDBStorage } = await import('/dist/index.js');
      const cdn = new P2PCDN({ trackerUrl: tracker, storage: new IndexedDBStorage() });
      await cdn.connect();
      const r = { ok: true, indexMs: cdn.getStats().storage.indexMs, stored: await cdn.getStoredFiles() };
      await cdn.disconnect();
      return r;
    }, args);
    result.download = first;
  } else if (opt.scenario === 'idbwrite') {
    // The backend alone: --pages chunks of 256 KiB written to a fresh IndexedDBStorage, then read back.
    result = await page.evaluate(async (n) => {
      const { IndexedDBStorage } = await import('/dist/index.js');
      const s = new IndexedDBStorage({ name: 'p2pcdn-bench' });
      await s.open();
      const chunk = new Uint8Array(256 * 1024).fill(7);
      const t0 = performance.now();
      const puts = [];
      for (let i = 0; i < n; ++i) {
        puts.push(s.storeChunk({ fileId: 'bench', index: i, data: chunk }));
        if (puts.length >= 64) await puts.shift();  // a bounded window, as the node keeps one
      }
      await Promise.all(puts);
      const writeMs = performance.now() - t0;
      const t1 = performance.now();
      for (let i = 0; i < n; ++i) if ((await s.getChunk({ fileId: 'bench', index: i })).length !== chunk.length) throw new Error('short read');
      const readMs = performance.now() - t1;
      await s.destroy();
      return { ok: true, chunks: n, writeMs, readMs };
    }, Number(opt.pages));
  } else if (opt.scenario === 'resume') {
    // Start, and reload the page once about half the chunks are stored.
    const started = await page.evaluate(startDownload, args);
    if (!started.ok) throw new Error(started.error);
    const deadline = Date.now() + timeoutMs;
    let seen = null;
    for (;;) {
      seen = await page.evaluate(() => window.__progress || { chunksHave: 0, chunksTotal: 1, error: window.__error });
      if (seen.error) throw new Error(seen.error);
      if (seen.chunksTotal > 0 && seen.chunksHave * 2 >= seen.chunksTotal) break;
      if (Date.now() > deadline) throw new Error(`not half-way in ${timeoutMs} ms: ${JSON.stringify(seen)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await page.reload({ waitUntil: 'load', timeout: timeoutMs });
    result = await downloadAndLeave(page, args);
    result.beforeReload = seen;
  } else {
    result = await downloadAndLeave(page, args);
  }
  if (profiler) fs.writeFileSync(opt.profile, JSON.stringify((await profiler.send('Profiler.stop')).profile));
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
} finally {
  try { if (browser) await browser.close(); } catch {}
  server.close();
  if (!opt['user-data-dir']) fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.ok ? 0 : 1);
