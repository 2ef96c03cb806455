#!/usr/bin/env node
// A page plays a video from the swarm while it downloads: P2PCDN.stream()
// into MediaStreamer (web/src/media.js) into a <video>, from a native seeder.
//   node web_media.mjs --package DIR --tracker ws://... --file-id HEX --mime TYPE --node-modules DIR
//                      [--chromium PATH | --firefox PATH] [--seek-to FRACTION] [--timeout-ms N]
// Plays to the end; with --seek-to, first seeks there once the first frame
// showed. Prints ONE JSON line {ok, firstFrameMs, haveAtFirstFrame,
// chunksTotal, maxStallMs, stalls, seekMs, ended, duration, media, error?}.
// Run inside a network namespace that holds only loopback (web_media_test.py).
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openPage, runDriver, serve } from './launch.mjs';

const { values: opt } = parseArgs({
  options: {
    package: { type: 'string' }, tracker: { type: 'string' }, 'file-id': { type: 'string' },
    mime: { type: 'string' }, 'node-modules': { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' }, firefox: { type: 'string' },
    'seek-to': { type: 'string' }, 'timeout-ms': { type: 'string', default: '120000' },
    verbose: { type: 'boolean', default: false },
    'mse-limit-mb': { type: 'string' },  // Chromium: its SourceBuffer quota for video, MB (QuotaExceededError sooner)
  },
});
const puppeteer = createRequire(path.join(path.resolve(opt['node-modules']), 'x.js'))('puppeteer-core');
const timeoutMs = Number(opt['timeout-ms']);
const log = (s) => process.stderr.write(s + '\n');

// In the page. A stall: the play head not moving for longer than 250 ms
// while the element is neither paused, ended nor seeking (after the first
// frame; a seek's own wait is seekMs).
async function play({ tracker, fileId, mime, seekTo, t, verbose }) {
  const out = { ok: false };
  let cdn = null;
  try {
    const { P2PCDN, MemoryStorage, MediaStreamer } = await import('/dist/index.js');
    out.supported = MediaStreamer.isTypeSupported(mime);
    cdn = new P2PCDN({ trackerUrl: tracker, discoveryInterval: 5000, storage: new MemoryStorage() });
    await cdn.connect();
    const video = document.createElement('video');
    video.addEventListener('seeking', () => console.log(`seeking ${video.currentTime} at ${performance.now()}`));
    video.addEventListener('playing', () => console.log(`playing ${video.currentTime} at ${performance.now()}`));
    video.addEventListener('waiting', () => console.log(`waiting ${video.currentTime} at ${performance.now()}`));
    video.muted = true;
    document.body.appendChild(video);
    let have = 0, total = 0, seekAt = null;
    out.arrivalsAfterSeek = [];  // [chunk, ms after the seek]
    const stream = cdn.stream(fileId, null, (p) => {
      have = p.chunksHave;
      total = p.chunksTotal;
      if (seekAt !== null) out.arrivalsAfterSeek.push([p.chunk, Math.round(performance.now() - seekAt)]);
    });
    const streamer = new MediaStreamer(mime);
    const t0 = performance.now();
    let failed = null;
    const appended = streamer.streamToElement(stream, null, video).catch((e) => { failed = `${e.code}: ${e.message}`; });
    video.play().catch(() => {});  // resolves once it plays; autoplay is allowed (muted, and the launch flags)
    const firstFrame = new Promise((resolve) => {
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(() => resolve());
      else video.addEventListener('playing', () => resolve(), { once: true });
    });
    const deadline = Date.now() + t;
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    while (!(await Promise.race([firstFrame.then(() => true), sleep(20).then(() => false)]))) {
      if (failed) throw new Error(failed);
      if (Date.now() > deadline) throw new Error(`no frame in ${t} ms (readyState ${video.readyState})`);
    }
    out.firstFrameMs = performance.now() - t0;
    out.haveAtFirstFrame = have;
    out.seekMs = null;
    let seekTarget = null;
    if (seekTo) {
      await sleep(1000);
      seekTarget = video.duration * seekTo;
      out.seekFrom = video.currentTime;
      out.haveAtSeek = have;
      seekAt = performance.now();
      video.currentTime = seekTarget;
    }
    // --verbose: the element and the streamer every 2 s (stalls explained).
    const trace = verbose ? setInterval(() => {
      const b = [];
      for (let k = 0; k < video.buffered.length; ++k) b.push(`${video.buffered.start(k).toFixed(2)}-${video.buffered.end(k).toFixed(2)}`);
      console.log(`t=${video.currentTime.toFixed(2)} rs=${video.readyState} paused=${video.paused} buffered=[${b}] have=${have}/${total} ${JSON.stringify(streamer.progress())}`);
    }, 2000) : null;
    let last = video.currentTime, lastMove = performance.now();
    out.maxStallMs = 0;
    out.stalls = 0;
    let inStall = false;
    while (!video.ended) {
      if (failed) throw new Error(failed);
      if (video.error) throw new Error(`video error ${video.error.code}: ${video.error.message}`);
      if (Date.now() > deadline) throw new Error(`not ended in ${t} ms: at ${video.currentTime} of ${video.duration}`);
      await sleep(20);
      const now = performance.now();
      const ct = video.currentTime;
      if (seekAt !== null && out.seekMs === null) {  // the seek: until the play head moves past its target
        if (!video.seeking && ct > seekTarget + 0.05) {
          out.seekMs = now - seekAt;
          last = ct;
          lastMove = now;
        }
        continue;
      }
      if (ct !== last || video.paused || video.seeking) {
        last = ct;
        lastMove = now;
        inStall = false;
        continue;
      }
      const stall = now - lastMove;
      if (stall > 250 && !inStall) { inStall = true; out.stalls++; }
      out.maxStallMs = Math.max(out.maxStallMs, stall);
    }
    if (trace) clearInterval(trace);
    out.ended = true;
    out.endTime = video.currentTime;
    out.duration = video.duration;
    out.chunksTotal = total;
    out.playMs = performance.now() - t0;
    await appended;
    if (failed) throw new Error(failed);
    out.media = streamer.progress();
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    out.frames = q ? { total: q.totalVideoFrames, dropped: q.droppedVideoFrames } : null;
    out.ok = true;
  } catch (e) {
    out.error = `${e && e.code ? e.code + ': ' : ''}${e && e.message ? e.message : e}`;
  } finally {
    if (cdn) await cdn.disconnect().catch(() => {});
  }
  return out;
}

const { server, origin } = await serve(opt.package);
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pcdn-web-media-'));
const chromiumArgs = opt['mse-limit-mb'] ? [`--mse-video-buffer-size-limit-mb=${opt['mse-limit-mb']}`,
                                            `--mse-audio-buffer-size-limit-mb=${opt['mse-limit-mb']}`] : [];
await runDriver(puppeteer, { firefox: opt.firefox, chromium: opt.chromium, timeoutMs, origin, media: true, chromiumArgs },
                { server, userDataDir }, async (browser) => {
  const page = await openPage(browser, origin, { timeoutMs, verbose: opt.verbose });
  return page.evaluate(play, { tracker: opt.tracker, fileId: opt['file-id'], mime: opt.mime,
                               seekTo: opt['seek-to'] ? Number(opt['seek-to']) : null, t: timeoutMs, verbose: opt.verbose });
});
