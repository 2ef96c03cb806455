#!/usr/bin/env node
// The service-worker path in a real browser (web_sw_test.py runs it): a page
// whose P2PCDN serves web/src/sw.js plays a file by <video src> (the worker's
// URL), seeks to 80 %, fetches ranges of it, and aborts a fetch.
//   node web_sw.mjs --package DIR --tracker ws://... --file-id HEX --name NAME --node-modules DIR
//                   [--chromium PATH | --firefox PATH] [--timeout-ms N] [--verbose]
// Firefox runs with its service-worker idle time-outs cut to 3 s / 6 s, so a
// worker not kept alive would die mid-stream. Prints ONE JSON line.
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileRoute, openPage, runDriver, serve } from './launch.mjs';

const { values: opt } = parseArgs({
  options: {
    package: { type: 'string' }, tracker: { type: 'string' }, 'file-id': { type: 'string' }, name: { type: 'string' },
    'node-modules': { type: 'string' }, chromium: { type: 'string', default: '/usr/bin/chromium' },
    firefox: { type: 'string' }, 'timeout-ms': { type: 'string', default: '90000' }, verbose: { type: 'boolean', default: false },
  },
});
const puppeteer = createRequire(path.join(path.resolve(opt['node-modules']), 'x.js'))('puppeteer-core');
const timeoutMs = Number(opt['timeout-ms']);

async function scenario({ tracker, fileId, name, t }) {
  const out = { ok: false };
  let cdn = null;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const deadline = Date.now() + t;
  const until = async (cond, what) => {
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`${what}: not in ${t} ms`);
      await sleep(20);
    }
  };
  try {
    const { P2PCDN, MemoryStorage } = await import('/dist/index.js');
    cdn = new P2PCDN({ trackerUrl: tracker, discoveryInterval: 5000, storage: new MemoryStorage() });
    await cdn.connect();
    await cdn.serveServiceWorker({ url: '/sw.js', scope: '/', keepAliveMs: 1000 });
    const src = cdn.serviceWorkerUrl(fileId, name);
    out.src = src;
    const video = document.createElement('video');
    video.muted = true;
    document.body.appendChild(video);
    const t0 = performance.now();
    video.src = src;
    video.play().catch(() => {});
    await until(() => video.currentTime > 0 || video.error, 'first frame');
    if (video.error) throw new Error(`video error ${video.error.code}: ${video.error.message}`);
    out.firstFrameMs = performance.now() - t0;
    await until(() => video.currentTime >= 6 || video.error, 'playing to 6 s');  // longer than Firefox's cut idle time-outs
    out.playedTo = video.currentTime;
    const target = video.duration * 0.8;
    const s0 = performance.now();
    video.currentTime = target;
    await until(() => (!video.seeking && video.currentTime > target + 0.05) || video.error, 'playing after the seek');
    if (video.error) throw new Error(`video error after the seek ${video.error.code}: ${video.error.message}`);
    out.seekMs = performance.now() - s0;
    await until(() => video.ended || video.error, 'the end');
    if (video.error) throw new Error(`video error ${video.error.code}: ${video.error.message}`);
    out.ended = true;
    video.removeAttribute('src');
    video.load();
    const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
    const get = async (range, method = 'GET') => {
      const r = await fetch(src, { method, headers: range ? { Range: range } : {} });
      const b = method === 'HEAD' ? new ArrayBuffer(0) : await r.arrayBuffer();
      return { status: r.status, contentRange: r.headers.get('content-range'), contentLength: r.headers.get('content-length'),
               etag: r.headers.get('etag'), type: r.headers.get('content-type'), csp: r.headers.get('content-security-policy'),
               size: b.byteLength,
               sha256: hex(await crypto.subtle.digest('SHA-256', b)) };
    };
    out.ranges = { mid: await get('bytes=1000-99999'), suffix: await get('bytes=-500'), open: await get('bytes=300000-'),
                   whole: await get(null), bad: await get('bytes=999999999-'), head: await get(null, 'HEAD') };
    const etag = out.ranges.whole.etag;
    out.ranges.notModified = (await fetch(src, { headers: { 'If-None-Match': etag } })).status;
    // A fetch aborted after its first bytes: the page stops sending.
    const ac = new AbortController();
    const r = await fetch(src, { signal: ac.signal });
    const reader = r.body.getReader();
    await reader.read();
    out.openBefore = cdn.sw.open;
    ac.abort();
    const a0 = Date.now();
    while (cdn.sw.open > 0 && Date.now() - a0 < 5000) await sleep(20);
    out.openAfter = cdn.sw.open;
    out.cancelMs = Date.now() - a0;
    out.served = cdn.sw.served;
    out.ok = true;
  } catch (e) {
    out.error = `${e && e.code ? e.code + ': ' : ''}${e && e.message ? e.message : e}`;
  } finally {
    if (cdn) await cdn.disconnect().catch(() => {});
  }
  return out;
}

const { server, origin } = await serve(opt.package, { '/sw.js': fileRoute(path.join(path.resolve(opt.package), 'dist', 'sw.js'), 'text/javascript') });
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pcdn-web-sw-'));
await runDriver(puppeteer, {
  firefox: opt.firefox, chromium: opt.chromium, timeoutMs, origin, media: true,
  prefs: { 'dom.serviceWorkers.idle_timeout': 3000, 'dom.serviceWorkers.idle_extended_timeout': 6000 },
}, { server, userDataDir }, async (browser) => {
  const page = await openPage(browser, origin, { timeoutMs, verbose: opt.verbose });
  return page.evaluate(scenario, { tracker: opt.tracker, fileId: opt['file-id'], name: opt.name, t: timeoutMs });
});
