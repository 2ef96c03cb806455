// Real WebTorrent clients against our tracker: proves the tracker protocol is
// compatible (docs/signaling.md). Needs the npm packages of the bench kit
// (../shared/bench/peers/wt: `./setup.sh` there, or `npm install --ignore-scripts`
// in a copy of that folder) and a built p2pcdn_tracker. Loopback only.
//
//   node tests/integration/webtorrent_interop.mjs --tracker build/release/src/tracker/p2pcdn_tracker \
//        [--wt-dir ../shared/bench/peers/wt] [--size-mib 4]
//
// 1. Two bittorrent-tracker clients (separate processes, one swarm) announce
//    to our tracker, get each other's offer and answer through it, open a
//    WebRTC data channel and exchange a message; one scrapes.
// 2. A WebTorrent seeder and leecher (separate processes) transfer a random
//    file through a WebRTC connection signaled by our tracker; the leecher
//    checks the bytes.
// Then /stats must show the relayed offers and answers and no errors.
// Exit status 0 on success. Expect about 25 s: simple-peer waits 5 s for
// the end of ICE gathering on each side (see the bench README).
import { spawn } from 'child_process'
import crypto from 'crypto'
import fs from 'fs'
import os from 'os'
import path from 'path'
import { fileURLToPath, pathToFileURL } from 'url'

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}
const here = path.dirname(fileURLToPath(import.meta.url))
const wtDir = path.resolve(opt('--wt-dir', path.join(here, '../../../shared/bench/peers/wt')))
const role = opt('--role', 'driver')
const log = (...a) => console.log(`[${role}]`, ...a)

async function load (pkg) {
  // Resolve from the kit's node_modules, not from this file's folder.
  const pj = JSON.parse(fs.readFileSync(path.join(wtDir, 'node_modules', pkg, 'package.json')))
  let entry = pj.exports?.['.']?.import ?? pj.exports?.['.']?.default ?? pj.exports?.['.'] ?? pj.module ?? pj.main ?? 'index.js'
  if (typeof entry !== 'string') entry = 'index.js'
  return (await import(pathToFileURL(path.join(wtDir, 'node_modules', pkg, entry)).href)).default
}

function deterministicBytes (n, seed) {
  const out = Buffer.alloc(n)
  let block = crypto.createHash('sha256').update(seed).digest()
  for (let off = 0; off < n; off += block.length) {
    block.copy(out, off, 0, Math.min(block.length, n - off))
    block = crypto.createHash('sha256').update(block).digest()
  }
  return out
}

// ---- roles run in child processes ----

async function trackerClient () {
  await import(pathToFileURL(path.join(wtDir, 'loopback-webrtc.mjs')).href)
  const Client = await load('bittorrent-tracker')
  const announce = opt('--announce')
  const infoHash = opt('--info-hash')
  const peerId = crypto.randomBytes(20).toString('hex')
  const client = new Client({ infoHash, peerId, announce: [announce], port: 6881, rtcConfig: { iceServers: [] } })
  let updates = 0
  client.on('warning', e => log('warning', e.message))
  client.on('error', e => { log('error', e.message); process.exit(3) })
  client.on('update', d => { updates++; log(`update complete=${d.complete} incomplete=${d.incomplete}`) })
  client.on('scrape', d => log(`scrape complete=${d.complete} incomplete=${d.incomplete}`))
  client.on('peer', peer => {
    log('peer from tracker', peer.id)
    peer.on('error', e => log('peer error', e.message))
    peer.once('connect', () => {
      log('data channel open')
      peer.send(`hello from ${peerId}`)
    })
    peer.on('data', d => {
      log('received', JSON.stringify(new TextDecoder().decode(d)))
      if (updates === 0) { log('no announce reply seen'); process.exit(4) }
      client.scrape()
      setTimeout(() => { client.stop(); client.destroy(); process.exit(0) }, 1500)
    })
  })
  client.start({ left: 100 })
  setTimeout(() => { log('timed out'); process.exit(5) }, 60000).unref()
}

async function seed () {
  await import(pathToFileURL(path.join(wtDir, 'loopback-webrtc.mjs')).href)
  const WebTorrent = await load('webtorrent')
  const data = deterministicBytes(Number(opt('--size-mib', '4')) * 1048576, 'p2pcdn interop')
  const client = new WebTorrent({
    dht: false, lsd: false, utPex: false, utp: false, natUpnp: false, natPmp: false, webSeeds: false,
    tracker: { rtcConfig: { iceServers: [] } }
  })
  client.on('error', e => { log('error', e.message); process.exit(3) })
  const buf = Object.assign(data, { name: 'interop.bin' })
  client.seed(buf, { announce: [opt('--announce')], name: 'interop.bin', pieceLength: 262144 }, torrent => {
    fs.writeFileSync(opt('--torrent-out'), torrent.torrentFile)
    log('seeding', torrent.infoHash)
    torrent.on('wire', () => log('wire'))
  })
  process.on('SIGTERM', () => client.destroy(() => process.exit(0)))
}

async function leech () {
  await import(pathToFileURL(path.join(wtDir, 'loopback-webrtc.mjs')).href)
  const WebTorrent = await load('webtorrent')
  const want = deterministicBytes(Number(opt('--size-mib', '4')) * 1048576, 'p2pcdn interop')
  const client = new WebTorrent({
    dht: false, lsd: false, utPex: false, utp: false, natUpnp: false, natPmp: false, webSeeds: false,
    tracker: { rtcConfig: { iceServers: [] } }
  })
  client.on('error', e => { log('error', e.message); process.exit(3) })
  const t0 = Date.now()
  const torrent = client.add(fs.readFileSync(opt('--torrent')), { path: opt('--out') })
  torrent.on('wire', w => log('wire', w.type))
  torrent.on('done', async () => {
    const got = await fs.promises.readFile(path.join(opt('--out'), 'interop.bin'))
    const ok = Buffer.compare(got, want) === 0
    log(`done: ${got.length} bytes in ${((Date.now() - t0) / 1000).toFixed(1)} s, bytes ${ok ? 'identical' : 'DIFFER'}`)
    client.destroy(() => process.exit(ok ? 0 : 6))
  })
  setTimeout(() => { log('timed out'); process.exit(5) }, 90000).unref()
}

// ---- driver ----

function run (cmd, argv, name) {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
  child.stdout.on('data', d => process.stdout.write(d.toString().split('\n').filter(Boolean).map(l => `${l}\n`).join('')))
  child.done = new Promise(resolve => child.on('exit', code => resolve(code)))
  child.label = name
  return child
}

async function driver () {
  const trackerBin = opt('--tracker')
  if (!trackerBin) { console.error('usage: --tracker PATH [--wt-dir DIR]'); process.exit(2) }
  if (!fs.existsSync(path.join(wtDir, 'node_modules', 'webtorrent'))) {
    console.error(`no npm packages in ${wtDir}/node_modules: run setup.sh there first`)
    process.exit(77)
  }
  const tracker = spawn(trackerBin, ['--listen', '127.0.0.1:0', '--interval', '10'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise((resolve, reject) => {
    let text = ''
    tracker.stdout.on('data', d => {
      text += d
      const m = /:(\d+)\s*$/m.exec(text)
      if (m) resolve(Number(m[1]))
    })
    tracker.on('exit', c => reject(new Error(`tracker exited ${c}`)))
  })
  const announce = `ws://127.0.0.1:${port}`
  log('tracker at', announce)
  const self = fileURLToPath(import.meta.url)
  const common = ['--wt-dir', wtDir, '--announce', announce]
  let failed = false

  // 1. bittorrent-tracker clients
  const infoHash = crypto.randomBytes(20).toString('hex')
  const a = run(process.execPath, [self, '--role', 'client-a', ...common, '--info-hash', infoHash])
  await new Promise(r => setTimeout(r, 300))
  const b = run(process.execPath, [self, '--role', 'client-b', ...common, '--info-hash', infoHash])
  const codes = await Promise.all([a.done, b.done])
  log('tracker clients exited', codes.join(', '))
  if (codes.some(c => c !== 0)) failed = true

  // 2. WebTorrent seeder and leecher
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pcdn-interop-'))
  const torrentFile = path.join(tmp, 'interop.torrent')
  const size = ['--size-mib', opt('--size-mib', '4')]
  const s = run(process.execPath, [self, '--role', 'seed', ...common, ...size, '--torrent-out', torrentFile])
  for (let i = 0; i < 200 && !fs.existsSync(torrentFile); i++) await new Promise(r => setTimeout(r, 100))
  const l = run(process.execPath, [self, '--role', 'leech', ...common, ...size, '--torrent', torrentFile, '--out', path.join(tmp, 'out')])
  const leechCode = await l.done
  s.kill('SIGTERM')
  await s.done
  log('leecher exited', leechCode)
  if (leechCode !== 0) failed = true
  fs.rmSync(tmp, { recursive: true, force: true })

  const stats = await (await fetch(`http://127.0.0.1:${port}/stats`)).json()
  log('tracker /stats', JSON.stringify(stats))
  if (!(stats.offersRelayed >= 2 && stats.answersRelayed >= 2 && stats.errors === 0)) {
    log('stats do not show the relays, or show errors')
    failed = true
  }
  tracker.kill('SIGTERM')
  await new Promise(r => tracker.on('exit', r))
  log(failed ? 'FAILED' : 'PASSED: WebTorrent clients work with the p2pcdn tracker')
  process.exit(failed ? 1 : 0)
}

const roles = { driver, 'client-a': trackerClient, 'client-b': trackerClient, seed, leech }
roles[role]().catch(e => { console.error(e); process.exit(1) })
