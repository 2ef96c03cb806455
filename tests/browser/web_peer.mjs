#!/usr/bin/env node
// A Chromium page downloads a file from a native seeder with the browser
// package (build/wasm/web: the C++ peer in WebAssembly) by its id only:
//   node web_peer.mjs --package DIR --tracker ws://... --file-id HEX --node-modules DIR
//                     --chromium PATH [--timeout-ms N] [--verbose]
// Serves DIR over http://127.0.0.1:<any>, runs P2PCDN.connect + download in
// the page, prints ONE JSON line {ok, sha256, size, stats, ms, error?}.
// Run inside a network namespace that holds only loopback (web_peer_test.py).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    package: { type: 'string' }, tracker: { type: 'string' }, 'file-id': { type: 'string' },
    'node-modules': { type: 'string' }, chromium: { type: 'string', default: '/usr/bin/chromium' },
    firefox: { type: 'string' },  // a path: run Firefox (WebDriver BiDi) instead of Chromium
    'timeout-ms': { type: 'string', default: '60000' }, verbose: { type: 'boolean', default: false },
  },
});
const puppeteer = createRequire(path.join(path.resolve(opt['node-modules']), 'x.js'))('puppeteer-core');
const timeoutMs = Number(opt['timeout-ms']);
const log = (s) => process.stderr.write(s + '\n');
const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };

const root = path.resolve(opt.package);
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end('<!doctype html><meta charset="utf-8"><title>p2pcdn web peer</title>');
  }
  const file = path.join(root, path.normalize(url.pathname));
  if (!file.startsWith(root + path.sep) || !fs.existsSync(file)) { res.writeHead(404); return res.end(); }
  res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
  fs.createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pcdn-web-peer-'));
let browser = null;
let result = { ok: false };
try {
  if (opt.firefox) {
    // BROWSERS.md: loopback candidates, real addresses (no mDNS), and the default route on lo.
    browser = await puppeteer.launch({
      browser: 'firefox', executablePath: opt.firefox, headless: true, userDataDir, timeout: timeoutMs,
      protocolTimeout: 4 * timeoutMs,
      extraPrefsFirefox: {
        'media.peerconnection.ice.loopback': true,
        'media.peerconnection.ice.obfuscate_host_addresses': false,
        'media.peerconnection.ice.default_address_only': false,
      },
    });
  } else {
    browser = await puppeteer.launch({
      executablePath: opt.chromium, headless: true, userDataDir, timeout: timeoutMs, protocolTimeout: 4 * timeoutMs,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync', '--allow-loopback-in-peer-connection'],
    });
    // Without a media grant Chromium filters out every host candidate (BROWSERS.md).
    await browser.defaultBrowserContext().overridePermissions(origin, ['camera', 'microphone']);
  }
  const page = await browser.newPage();
  page.on('console', (m) => { if (opt.verbose) log(`console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(origin + '/', { waitUntil: 'load', timeout: timeoutMs });
  result = await page.evaluate(async ({ tracker, fileId, timeoutMs: t }) => {
    const out = { ok: false };
    try {
      const { P2PCDN } = await import('/dist/index.js');
      const cdn = new P2PCDN({ trackerUrl: tracker, discoveryInterval: 5000 });
      await cdn.connect();
      const t0 = performance.now();
      let progressCalls = 0;
      const timer = new Promise((_, reject) => setTimeout(() => reject(new Error(`download not done in ${t} ms`)), t));
      const data = await Promise.race([cdn.download(fileId, null, () => { ++progressCalls; }), timer]);
      out.ms = performance.now() - t0;
      out.size = data.length;
      out.progressCalls = progressCalls;
      out.sha256 = [...new Uint8Array(await crypto.subtle.digest('SHA-256', data))]
        .map((b) => b.toString(16).padStart(2, '0')).join('');
      out.stats = cdn.getStats();
      await cdn.disconnect();
      // The peer is destroyed on the loop's next turn; then nothing of it may remain.
      await new Promise((r) => setTimeout(r, 200));
      const { host } = await (await import('/dist/module.js')).loadModule();
      out.linksAfter = host.links.size;
      out.socketsAfter = host.sockets.size;
      out.ok = true;
    } catch (e) {
      out.error = `${e && e.code ? e.code + ': ' : ''}${e && e.message ? e.message : e}`;
    }
    return out;
  }, { tracker: opt.tracker, fileId: opt['file-id'], timeoutMs });
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
} finally {
  try { if (browser) await browser.close(); } catch {}
  server.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.ok ? 0 : 1);
