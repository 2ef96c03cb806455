#!/usr/bin/env node
// The web app's main flows in real browsers (web_app_test.py runs it, against
// `p2pcdn serve`): a file published by drop/choose in one browser, played in
// another while it downloads; the chunk map, peers and stored files; delete;
// a bad link; storage that is full; a page without WebRTC (web seed only).
// Screenshots go to --shots.
//   node web_app.mjs --origin http://127.0.0.1:PORT --video FILE --publisher chromium|firefox
//                    --viewer chromium|firefox --shots DIR --node-modules DIR [--chromium P] [--firefox P]
// Prints ONE JSON line.
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { launch } from './launch.mjs';

const { values: opt } = parseArgs({
  options: {
    origin: { type: 'string' }, video: { type: 'string' }, publisher: { type: 'string' }, viewer: { type: 'string' },
    shots: { type: 'string' }, 'node-modules': { type: 'string' }, chromium: { type: 'string', default: '/usr/bin/chromium' },
    firefox: { type: 'string', default: '/usr/bin/firefox-esr' }, 'timeout-ms': { type: 'string', default: '90000' },
    verbose: { type: 'boolean', default: false },
  },
});
const puppeteer = createRequire(path.join(path.resolve(opt['node-modules']), 'x.js'))('puppeteer-core');
const timeoutMs = Number(opt['timeout-ms']);
const origin = opt.origin;
fs.mkdirSync(opt.shots, { recursive: true });

async function start(kind) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), `p2pcdn-app-${kind}-`));
  const browser = await launch(puppeteer, { ...(kind === 'firefox' ? { firefox: opt.firefox } : { chromium: opt.chromium }),
                                            userDataDir, timeoutMs, origin, media: true });
  return { browser, kind, userDataDir };
}

// A page of the app at `url`, ready (its peer started, or a banner saying why not).
async function appPage(b, url, { tag, noWebRTC = false } = {}) {
  const page = await b.browser.newPage();
  await page.setViewport({ width: 1280, height: 1100 });
  page.on('console', (m) => { if (opt.verbose) process.stderr.write(`${tag} console.${m.type()}: ${m.text()}\n`); });
  page.on('pageerror', (e) => process.stderr.write(`${tag} page error: ${e.message}\n`));
  if (noWebRTC) {
    await page.evaluateOnNewDocument(() => { delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection; });
  }
  await page.goto(url, { waitUntil: 'load', timeout: timeoutMs });
  await page.waitForFunction(() => window.p2pcdnApp && (window.p2pcdnApp.ready || document.querySelector('.banner.bad')),
                             { timeout: timeoutMs, polling: 100 });
  const bad = await page.$eval('#banners', (e) => e.innerText).catch(() => '');
  if (!(await page.evaluate(() => window.p2pcdnApp.ready))) throw new Error(`${tag}: the app did not start: ${bad}`);
  return page;
}

const shot = async (page, name) => {
  const file = path.join(opt.shots, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
};
const waitFor = (page, fn, what, arg) => page.waitForFunction(fn, { timeout: timeoutMs, polling: 100 }, arg)
  .catch((e) => { throw new Error(`${what}: ${e.message}`); });

// What the viewer shows of the open file.
const viewerState = (page) => page.evaluate(async () => {
  const v = window.p2pcdnApp.viewer;
  const media = document.querySelector('#v-media video, #v-media audio');
  const sha = v && v.bytes ? Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', v.bytes)),
                                        (x) => x.toString(16).padStart(2, '0')).join('') : null;
  return {
    name: document.getElementById('v-name').textContent,
    meta: document.getElementById('v-meta').textContent,
    done: !!(v && v.done), sha256: sha, size: v && v.bytes ? v.bytes.length : 0,
    sources: v ? Object.fromEntries([...v.map.counts].filter(([, c]) => c > 0)) : {},
    originBytes: v ? v.originBytes : 0, fromPeersBytes: v ? v.fromPeersBytes : 0,
    legend: document.getElementById('v-legend').innerText,
    peers: document.getElementById('v-peer-rows').innerText,
    share: document.getElementById('v-share').textContent,
    currentTime: media ? media.currentTime : null, mediaError: media && media.error ? media.error.code : null,
    stored: [...document.querySelectorAll('#file-rows tr[data-file]')].map((r) => r.dataset.file),
    storage: document.getElementById('storage-text').textContent,
    banners: [...document.querySelectorAll('.banner')].map((b) => b.dataset.banner),
  };
});

async function main() {
  const out = { ok: false, shots: [] };
  const browsers = [];
  try {
    // 1. Publish in one browser.
    const A = await start(opt.publisher);
    browsers.push(A);
    const pub = await appPage(A, origin + '/', { tag: 'publisher' });
    const input = await pub.$('#file-input');
    const t0 = Date.now();
    await input.uploadFile(opt.video);
    await waitFor(pub, () => !document.getElementById('publish-result').hidden, 'publish');
    out.publishMs = Date.now() - t0;
    const appLink = await pub.$eval('#publish-link', (e) => e.value);
    out.link = appLink;
    out.publisherPeerId = await pub.evaluate(() => window.p2pcdnApp.p2p.getStats().peerId);
    const link = decodeURIComponent(appLink.slice(appLink.indexOf('#') + 1));
    out.fileId = link.slice('p2pcdn:'.length, 'p2pcdn:'.length + 64);

    // 2. Open its link in another browser: it plays while it downloads.
    const B = await start(opt.viewer);
    browsers.push(B);
    const t1 = Date.now();
    const view = await appPage(B, appLink, { tag: 'viewer' });
    await waitFor(view, () => { const m = document.querySelector('#v-media video'); return m && (m.currentTime > 0 || m.error); }, 'first frame');
    out.firstFrameMs = Date.now() - t1;
    await waitFor(view, () => { const m = document.querySelector('#v-media video'); return m && (m.currentTime > 2 || m.error); }, 'playing 2 s');
    await waitFor(view, () => window.p2pcdnApp.viewer && window.p2pcdnApp.viewer.done, 'download complete');
    await new Promise((r) => setTimeout(r, 1200));  // a tick of the figures and the map
    out.viewer = await viewerState(view);
    out.shots.push(await shot(view, `app-${opt.viewer}-viewer.png`));
    out.shots.push(await shot(pub, `app-${opt.publisher}-publisher.png`));

    // 3. Closing the viewer: the page still holds and seeds the file; then delete it from the store.
    await view.click('#v-close');
    await waitFor(view, () => document.getElementById('viewer').hidden, 'viewer closed');
    await new Promise((r) => setTimeout(r, 300));
    out.seedingAfterClose = await view.evaluate((id) => window.p2pcdnApp.p2p.peer.progress(id) !== null, out.fileId);
    await view.click(`button[data-delete="${out.fileId}"]`);
    await waitFor(view, (id) => !document.querySelector(`#file-rows tr[data-file="${id}"]`), 'deleted from the list', out.fileId);
    out.afterDelete = await view.evaluate(async (id) => ({
      stored: (await window.p2pcdnApp.p2p.getStoredFiles()).map((f) => f.fileId).includes(id),
      viewerOpen: !document.getElementById('viewer').hidden,
    }), out.fileId);

    // 4. A bad link.
    await view.evaluate(() => { location.hash = 'p2pcdn:not-a-file-id'; });
    await waitFor(view, () => !document.getElementById('open-error').hidden, 'bad link message');
    out.badLink = await view.$eval('#open-error', (e) => e.textContent);
    out.shots.push(await shot(view, `app-${opt.viewer}-bad-link.png`));
    await view.close();

    // 5. No WebRTC: the web seed (this server, which fetches the file from the publisher) delivers it all.
    const plain = await appPage(B, appLink, { tag: 'no-webrtc', noWebRTC: true });
    await waitFor(plain, () => window.p2pcdnApp.viewer && window.p2pcdnApp.viewer.done, 'download from the web seed');
    await new Promise((r) => setTimeout(r, 800));
    out.noWebRTC = await viewerState(plain);
    out.noWebRTC.publishDisabled = await plain.$eval('#drop', (e) => e.classList.contains('disabled'));
    out.shots.push(await shot(plain, `app-${opt.viewer}-no-webrtc.png`));
    await plain.click(`button[data-delete="${out.fileId}"]`);  // the next page starts with an empty store
    await waitFor(plain, (id) => !document.querySelector(`#file-rows tr[data-file="${id}"]`), 'deleted', out.fileId);
    await plain.close();
    // 6. Storage that is full: a 1 MiB store for a larger file.
    const small = await appPage(B, origin + '/?quota=1#' + link, { tag: 'quota' });
    await waitFor(small, () => document.querySelector('[data-banner="quota"]'), 'storage-full message');
    out.quota = await small.$eval('[data-banner="quota"]', (e) => e.innerText);
    out.shots.push(await shot(small, `app-${opt.viewer}-storage-full.png`));
    await small.close();

    out.ok = true;
  } catch (e) {
    out.error = String(e && e.stack ? e.stack : e);
    for (const b of browsers) {  // what each page showed when it failed
      for (const [i, page] of (await b.browser.pages().catch(() => [])).entries()) {
        await shot(page, `failed-${b.kind}-${i}.png`).catch(() => {});
        out.error += `\n${b.kind} page ${i}: ` + JSON.stringify(await viewerState(page).catch((x) => String(x)));
      }
    }
  } finally {
    for (const b of browsers) {
      try { await b.browser.close(); } catch {}
      fs.rmSync(b.userDataDir, { recursive: true, force: true });
    }
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(out.ok ? 0 : 1);
}

main();
