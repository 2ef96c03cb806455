#!/usr/bin/env node
// The WebTorrent side of bench/web_download.py: a bittorrent-tracker (WebSocket
// only) and a WebTorrent seeder of FILE, in one Node process, on 127.0.0.1.
//   node seed.mjs NODE_MODULES FILE TORRENT_OUT
// NODE_MODULES: where bench/webtorrent/package.json was installed
// (scripts/npm-deps.sh build/npm-webtorrent bench/webtorrent).
// Prints one JSON line {tracker, infoHash} once seeding, then seeds until
// SIGTERM and prints {uploaded, cpuSeconds, maxRssKiB}.
// WebRTC only (no DHT, LSD, PEX, uTP, web seeds); no STUN. libjuice binds
// 127.0.0.1 (bindAddress, passed through webrtc-polyfill to node-datachannel),
// so it gathers a loopback host candidate inside a namespace that holds only
// loopback: nothing to rewrite, nothing can leave loopback.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [nodeModules, file, torrentOut] = process.argv.slice(2);
if (!nodeModules || !file || !torrentOut) {
  process.stderr.write('usage: seed.mjs NODE_MODULES FILE TORRENT_OUT\n');
  process.exit(2);
}
// Both are ES modules whose entry is index.js (their package.json "exports").
const { default: WebTorrent } = await import(pathToFileURL(path.resolve(nodeModules, 'webtorrent', 'index.js')).href);
const { Server } = await import(pathToFileURL(path.resolve(nodeModules, 'bittorrent-tracker', 'index.js')).href);
// Without trickle, simple-peer sends its SDP once gathering ends, which it
// learns from the null candidate; webrtc-polyfill never sends one, so every
// offer and answer waits out simple-peer's 5 s iceCompleteTimeout (the bench
// kit's README). Worse, as the answerer libdatachannel starts DTLS when the
// browser's checks arrive, 5 s before the browser has the answer, and the
// retransmissions back off past our deadlines. Gathering one loopback
// candidate takes ~15 ms, so 100 ms is enough: WebTorrent is helped here, never
// hindered (the same module instance bittorrent-tracker imports).
const { default: Peer } = await import(pathToFileURL(path.resolve(nodeModules, '@thaunknown', 'simple-peer', 'lite.js')).href);
const startIceCompleteTimeout = Peer.prototype._startIceCompleteTimeout;
Peer.prototype._startIceCompleteTimeout = function () {
  this.iceCompleteTimeout = 100;
  return startIceCompleteTimeout.call(this);
};

const fail = (what, e) => { process.stderr.write(`${what}: ${e && e.message ? e.message : e}\n`); process.exit(1); };
const server = new Server({ udp: false, http: false, ws: true, stats: false, trustProxy: false });
server.on('error', (e) => fail('tracker', e));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const tracker = `ws://127.0.0.1:${server.http.address().port}`;

const client = new WebTorrent({
  dht: false, lsd: false, utPex: false, utp: false, natUpnp: false, natPmp: false, webSeeds: false,
  tracker: { rtcConfig: { iceServers: [], bindAddress: '127.0.0.1' } },
});
client.on('error', (e) => fail('webtorrent', e));
client.seed(file, { announce: [tracker], pieceLength: 262144, createdBy: 'p2pcdn-bench' }, (torrent) => {
  fs.writeFileSync(torrentOut, torrent.torrentFile);
  process.stdout.write(JSON.stringify({ tracker, infoHash: torrent.infoHash }) + '\n');
  const stop = () => {
    const c = process.cpuUsage();
    process.stdout.write(JSON.stringify({ uploaded: torrent.uploaded, cpuSeconds: (c.user + c.system) / 1e6,
                                          maxRssKiB: process.resourceUsage().maxRSS }) + '\n');
    client.destroy(() => server.close(() => process.exit(0)));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
});
