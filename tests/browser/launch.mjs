// What the page drivers (web_peer.mjs, web_media.mjs) share: a static HTTP
// server of the package on 127.0.0.1, and the browser launched as
// ../shared/design/BROWSERS.md says (Chromium with a media grant, so host
// candidates are not filtered out; Firefox with loopback candidates and real
// addresses). Run inside a network namespace that holds only loopback.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html',
                '.webm': 'video/webm', '.mp4': 'video/mp4', '.css': 'text/css' };

// Serves `root` (no caching) and `routes` ({pathname: (req, res) => void}
// first); `/` is an empty page. Resolves to {server, origin}.
export async function serve(root, routes = {}) {
  root = path.resolve(root);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (routes[url.pathname]) return routes[url.pathname](req, res);
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
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

// A file served as is: a route for serve().
export const fileRoute = (file, type = 'application/octet-stream') => (req, res) => {
  res.writeHead(200, { 'content-type': type });
  fs.createReadStream(file).pipe(res);
};

// opt: {firefox (a path: Firefox over WebDriver BiDi), chromium (path), media (autoplay allowed)}.
// Refuses to start a browser outside a network namespace that holds only
// loopback (BROWSERS.md: outside one a browser publishes mDNS names and sends
// on the machine's interfaces). The Python drivers make that namespace; a
// driver run by hand outside one stops here.
export function requireLoopbackOnly() {
  const outside = Object.entries(os.networkInterfaces())
    .filter(([, addrs]) => addrs.some((a) => !a.internal)).map(([name]) => name);
  if (outside.length) {
    throw new Error(`not in a loopback-only network namespace (interfaces ${outside.join(', ')}): ` +
                    'run the Python driver (tests/browser/*_test.py, bench/*.py), which makes one');
  }
}

// A page at `origin` (optionally in `context`), its console on stderr with `verbose`, its errors always.
export async function openPage(browser, origin, { timeoutMs, verbose = false, tag = 'page', context = null }) {
  const page = await (context || browser).newPage();
  page.on('console', (m) => { if (verbose) process.stderr.write(`${tag} console.${m.type()}: ${m.text()}\n`); });
  page.on('pageerror', (e) => process.stderr.write(`${tag} page error: ${e.message}\n`));
  await page.goto(origin + '/', { waitUntil: 'load', timeout: timeoutMs });
  return page;
}

// prefs: more Firefox preferences.
// chromiumArgs: more Chromium switches.
export async function launch(puppeteer, { firefox, chromium, userDataDir, timeoutMs, origin, media = false, prefs = {}, chromiumArgs = [] }) {
  requireLoopbackOnly();
  if (firefox) {
    return puppeteer.launch({
      browser: 'firefox', executablePath: firefox, headless: true, userDataDir, timeout: timeoutMs,
      protocolTimeout: 4 * timeoutMs,
      extraPrefsFirefox: {
        'media.peerconnection.ice.loopback': true,
        'media.peerconnection.ice.obfuscate_host_addresses': false,
        'media.peerconnection.ice.default_address_only': false,
        ...(media ? { 'media.autoplay.default': 0, 'media.autoplay.blocking_policy': 0 } : {}),
        ...prefs,
      },
    });
  }
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true, userDataDir, timeout: timeoutMs, protocolTimeout: 4 * timeoutMs,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--allow-loopback-in-peer-connection',
           ...(media ? ['--autoplay-policy=no-user-gesture-required'] : []), ...chromiumArgs],
  });
  // Without a media grant Chromium filters out every host candidate (BROWSERS.md).
  await browser.defaultBrowserContext().overridePermissions(origin, ['camera', 'microphone']);
  return browser;
}

// A driver's whole run: launches the browser (launch()'s options), runs
// body(browser) for its result, closes everything, prints the result as ONE
// JSON line and exits (0 when result.ok).
export async function runDriver(puppeteer, options, { server, userDataDir }, body) {
  let browser = null;
  let result = { ok: false };
  try {
    browser = await launch(puppeteer, { ...options, userDataDir });
    result = await body(browser);
  } catch (e) {
    result = { ...result, ok: false, error: String(e && e.stack ? e.stack : e) };
  } finally {
    try { if (browser) await browser.close(); } catch {}
    server.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(result.ok ? 0 : 1);
}
