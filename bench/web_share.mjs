#!/usr/bin/env node
// Pages join a swarm whose only other source is a web seed (bench/web_share.py
// runs it, in a network namespace that holds only loopback; launch() refuses
// to start the browser anywhere else): N Chromium pages, each in a browser context of its own, start
// download(fileId, manifest) with the origin as web seed, spread evenly over
// --spread-ms; each keeps seeding until all are done. Prints ONE JSON line
// {ok, pages: [{startMs, ms, bytesFromOrigins, bytesDownloaded, sha256}], error?}.
//   node web_share.mjs --package DIR --tracker ws://... --file-id HEX --manifest FILE --origin-url URL
//                      --node-modules DIR [--chromium PATH] [--pages 5] [--spread-ms 10000] [--timeout-ms N]
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileRoute, openPage, runDriver, serve } from '../tests/browser/launch.mjs';

const { values: opt } = parseArgs({
  options: {
    package: { type: 'string' }, tracker: { type: 'string' }, 'file-id': { type: 'string' },
    manifest: { type: 'string' }, 'origin-url': { type: 'string' }, 'node-modules': { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' }, pages: { type: 'string', default: '5' },
    'spread-ms': { type: 'string', default: '10000' }, 'timeout-ms': { type: 'string', default: '180000' },
  },
});
const puppeteer = createRequire(path.join(path.resolve(opt['node-modules']), 'x.js'))('puppeteer-core');
const timeoutMs = Number(opt['timeout-ms']);
const n = Number(opt.pages);

// In a page: the download, with the origin as web seed; the peer stays (seeding).
async function join({ tracker, fileId, originUrl, t }) {
  try {
    const { P2PCDN, MemoryStorage } = await import('/dist/index.js');
    const manifest = await (await fetch('/test/manifest.json')).json();
    const cdn = new P2PCDN({ trackerUrl: tracker, discoveryInterval: 3000, storage: new MemoryStorage(),
                             webSeeds: [originUrl], seedDuration: 0 });
    window.__cdn = cdn;
    await cdn.connect();
    const t0 = performance.now();
    const timer = new Promise((_, reject) => setTimeout(() => reject(new Error(`not done in ${t} ms`)), t));
    const bytes = await Promise.race([cdn.download(fileId, manifest), timer]);
    const ms = performance.now() - t0;
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    const st = cdn.getStats();
    return { ok: true, ms, size: bytes.length, sha256: [...new Uint8Array(digest)].map((x) => x.toString(16).padStart(2, '0')).join(''),
             bytesFromOrigins: st.bytesFromOrigins, bytesDownloaded: st.bytesDownloaded };
  } catch (e) {
    return { ok: false, error: `${e && e.code ? e.code + ': ' : ''}${e && e.message ? e.message : e}` };
  }
}

const { server, origin } = await serve(opt.package, { '/test/manifest.json': fileRoute(opt.manifest, 'application/json') });
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pcdn-web-share-'));
await runDriver(puppeteer, { chromium: opt.chromium, timeoutMs, origin }, { server, userDataDir }, async (browser) => {
  const result = { ok: false, pages: [] };
  const t0 = Date.now();
  const runs = [];
  const pages = [];
  for (let i = 0; i < n; ++i) {
    const at = n > 1 ? (Number(opt['spread-ms']) * i) / (n - 1) : 0;
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + at - Date.now())));
    const ctx = await browser.createBrowserContext();
    await ctx.overridePermissions(origin, ['camera', 'microphone']);  // host candidates (BROWSERS.md)
    const page = await openPage(browser, origin, { timeoutMs, tag: `page ${i}`, context: ctx });
    pages.push(page);
    const startMs = Date.now() - t0;
    runs.push(page.evaluate(join, { tracker: opt.tracker, fileId: opt['file-id'], originUrl: opt['origin-url'], t: timeoutMs })
      .then((r) => ({ ...r, startMs })));
  }
  result.pages = await Promise.all(runs);
  // The last numbers once all are done (a page's upload to later ones counts at theirs).
  for (let i = 0; i < pages.length; ++i) {
    const s = await pages[i].evaluate(() => { const st = window.__cdn.getStats(); return { bytesUploaded: st.bytesUploaded }; });
    result.pages[i].bytesUploaded = s.bytesUploaded;
  }
  result.ok = result.pages.every((p) => p.ok);
  if (!result.ok) result.error = result.pages.filter((p) => !p.ok).map((p) => p.error).join('; ');
  return result;
});
