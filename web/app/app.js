// The web app `p2pcdn serve` serves at "/": a browser peer (the package's
// P2PCDN) with a page around it. Publish by dropping a file (a link comes
// back); open a link to download or play it (through the package's service
// worker, so seeking is a Range request); watch where each chunk came from,
// the peers, the speed and the P2P share; list and delete what this browser
// stores. /api/config says which tracker to join; this server is every
// file's web seed (/f/<id>), used only for what no peer gives in time.
//
// URL: /#<p2pcdn link> opens the link; ?quota=<MiB> bounds this page's store.
import { P2PCDN } from "/dist/index.js";
import { ChunkMap, bytes, el, peerRows, rate, shortId } from "./view.js";

const $ = (id) => document.getElementById(id);
const LINKS_KEY = "p2pcdn-app-links";   // localStorage: fileId -> the link it was opened or published with
const MANIFEST_WAIT_MS = 20000;         // "no one has it" after this long without a manifest (the fetch goes on)
const SERVER_MANIFEST_MS = 3000;        // the swarm gets this long to give a manifest before the server is asked
const MAX_SAVE_BYTES = 1 << 30;         // larger files are fetched (and played) but not held in the page to save

const app = {
  p2p: null,
  sw: false,           // the service worker serves this page's peer
  webrtc: typeof RTCPeerConnection === "function",
  viewer: null,        // the file open now (see openLink)
  banners: new Map(),  // id -> element
};
window.p2pcdnApp = app;  // for the console (and tests): the page's P2PCDN and what it shows

// ---- messages ----------------------------------------------------------------

function banner(id, kind, title, text) {
  dismiss(id);
  const b = el("div", { class: `banner ${kind}`, "data-banner": id }, el("b", {}, title), el("span", {}, text),
               el("button", { class: "x", title: "dismiss", onclick: () => dismiss(id) }, "×"));
  app.banners.set(id, b);
  $("banners").append(b);
}
function dismiss(id) {
  const b = app.banners.get(id);
  if (b) b.remove();
  app.banners.delete(id);
}
function status(kind, text) {
  $("status").className = `status ${kind}`;
  $("status-text").textContent = text;
}
// A failure as the user should read it; storage that is full gets its banner.
function explain(e) {
  const code = e && e.code;
  if (code === "quota-exceeded") {
    const s = app.p2p && app.p2p.peer ? app.p2p.getStats().storage : null;
    banner("quota", "bad", "Storage is full.",
           `This browser's space for p2pcdn is used up${s ? ` (${bytes(s.bytesUsed)} of ${bytes(s.quotaBytes)})` : ""}: ` +
           "delete files under “On this device” to make room, then try again.");
    return "storage is full";
  }
  if (code === "integrity") return "the data does not match the link (a wrong key, or a corrupted copy): " + e.message;
  return (e && e.message) || String(e);
}

// ---- links -----------------------------------------------------------------------

function savedLinks() {
  try { return JSON.parse(localStorage.getItem(LINKS_KEY) || "{}"); } catch { return {}; }
}
function rememberLink(fileId, link) {
  const all = savedLinks();
  all[fileId] = link;
  try { localStorage.setItem(LINKS_KEY, JSON.stringify(all)); } catch {}
}
function forgetLink(fileId) {
  const all = savedLinks();
  delete all[fileId];
  try { localStorage.setItem(LINKS_KEY, JSON.stringify(all)); } catch {}
}
// What the user pasted: an app URL (…/#p2pcdn:…), a p2pcdn: link or a file id.
function linkFrom(text) {
  text = text.trim();
  const hash = text.indexOf("#");
  // Not percent-decoded here: the core decodes each parameter of the link
  // (a tracker URL with '&' or '%' in it survives only so).
  if (/^https?:\/\//i.test(text) && hash >= 0) text = text.slice(hash + 1);
  return text;
}
// Opens `link` (or, when the URL already holds it, opens it again).
function go(link) {
  if (location.hash.slice(1) === link) openLink(link);
  else location.hash = link;
}
const appUrl = (link) => `${location.origin}/#${link}`;

// ---- publishing ----------------------------------------------------------------

async function publish(file) {
  const drop = $("drop");
  if (!app.p2p || drop.classList.contains("busy")) return;
  drop.classList.add("busy");
  drop.querySelector("strong").textContent = `Hashing ${file.name}…`;
  dismiss("publish");
  try {
    const r = await app.p2p.upload(file, { name: file.name, mimeType: file.type || undefined, encrypt: $("encrypt").checked });
    rememberLink(r.fileId, r.link);
    $("publish-name").textContent = `${r.manifest.name} · ${bytes(r.manifest.size)} · ${r.manifest.chunks.length} chunks`;
    $("publish-link").value = appUrl(r.link);
    $("open-published").href = "#" + r.link;
    $("publish-result").hidden = false;
    refreshStored();
  } catch (e) {
    banner("publish", "bad", "Could not publish.", explain(e));
  } finally {
    drop.classList.remove("busy");
    drop.querySelector("strong").textContent = "Drop a file here";
  }
}

function wirePublish() {
  const drop = $("drop");
  const input = $("file-input");
  if (!app.webrtc) {
    drop.classList.add("disabled");
    drop.querySelector("span").textContent = "Publishing needs WebRTC, which this browser lacks: no one could fetch the file from it.";
    input.disabled = true;
    return;
  }
  input.addEventListener("change", () => { if (input.files[0]) publish(input.files[0]); input.value = ""; });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  for (const t of ["dragenter", "dragover"]) drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const t of ["dragleave", "drop"]) drop.addEventListener(t, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) publish(f);
  });
  $("copy-link").addEventListener("click", async () => {
    const v = $("publish-link").value;
    try { await navigator.clipboard.writeText(v); $("copy-link").textContent = "Copied"; } catch { $("publish-link").select(); }
    setTimeout(() => { $("copy-link").textContent = "Copy"; }, 1500);
  });
}

// ---- opening a file ----------------------------------------------------------------

const playable = (type) => /^(video|audio|image)\//.test(type || "");

function closeViewer() {
  const v = app.viewer;
  app.viewer = null;
  if (!v) return;
  v.closed = true;
  clearInterval(v.timer);
  v.abort.abort();  // an unfinished download, the server's manifest lookup
  if (v.probe) v.probe.return().catch(() => {});
  if (v.drain) v.drain.return().catch(() => {});
  if (v.objectUrl) URL.revokeObjectURL(v.objectUrl);
  $("v-media").replaceChildren();
  $("viewer").hidden = true;
}

function showError(text) {
  const e = $("open-error");
  e.textContent = text;
  e.hidden = !text;
}

// Opens `text` (a link, an app URL or an id): checks it, then fetches the
// file whole (every chunk verified and stored, so this page seeds it) while
// a player, if the type plays here, reads it through the service worker.
async function openLink(text) {
  showError("");
  const link = linkFrom(text);
  let parsed;
  try {
    parsed = app.p2p.parseLink(link);
  } catch (e) {
    showError(`That is not a p2pcdn link: ${e.message}. A link looks like p2pcdn:<64 hex digits>?tr=ws://…`);
    return;
  }
  closeViewer();
  const v = { link, fileId: parsed.fileId, map: new ChunkMap($("v-map"), $("v-legend")), manifest: null, closed: false,
              bytes: null, objectUrl: null, error: null, done: false, samples: [], fromPeersBytes: 0, originBytes: 0,
              abort: new AbortController(), probe: null, drain: null };
  app.viewer = v;
  $("viewer").hidden = false;
  $("v-name").textContent = "Looking for the file…";
  $("v-meta").textContent = `id ${parsed.fileId.slice(0, 16)}…${parsed.key ? " · encrypted" : ""}`;
  $("v-save").disabled = true;
  $("v-media").replaceChildren();
  setProgress(0);
  v.timer = setInterval(() => tick(v), 500);

  const onProgress = (p) => {
    if (v.closed) return;
    if (p.chunksTotal && v.map.total !== p.chunksTotal) v.map.reset(p.chunksTotal);
    if (Number.isInteger(p.chunk)) v.map.set(p.chunk, p.from || "");
    setProgress(p.progress);
    v.bytesVerified = p.bytesVerified;
  };
  // The manifest (name, type, size): from the swarm (a stream of the file
  // that reads nothing), or from this server (which asks the swarm and its
  // store) when no peer gave it within SERVER_MANIFEST_MS, or at once without
  // WebRTC. The core checks that it is the link's (its hash is the id).
  const probe = v.probe = app.p2p.stream(link, null, onProgress);
  const slow = setTimeout(() => {
    if (!v.manifest && !v.closed) $("v-name").textContent = "No peer has offered this file yet — still looking…";
  }, MANIFEST_WAIT_MS);
  let m;
  try {
    const fromServer = new AbortController();
    const swarm = probe.manifest().then((x) => { fromServer.abort(); return x; });
    const server = serverManifest(parsed.fileId, app.webrtc ? SERVER_MANIFEST_MS : 0, AbortSignal.any
      ? AbortSignal.any([fromServer.signal, v.abort.signal]) : fromServer.signal);
    m = await Promise.any([swarm, server]);
  } catch (e) {
    const first = e && e.errors ? e.errors[0] : e;
    if (!v.closed) { v.error = explain(first); $("v-meta").textContent = `Failed: ${v.error}`; }
    return;
  } finally {
    clearTimeout(slow);
  }
  if (v.closed) return;
  const whole = m.size <= MAX_SAVE_BYTES ? app.p2p.download(link, m, onProgress, { signal: v.abort.signal })
    : drain(v, link, m, onProgress);
  v.probe = null;
  probe.return().catch(() => {});  // (after download() holds the file, so it is not let go in between)
  whole.then((b) => {
    if (v.closed) return;
    v.bytes = b;
    v.done = true;
    if (!b) $("v-save").title = `larger than ${bytes(MAX_SAVE_BYTES)}: save it with p2pcdn get`;
    v.map.fillFromStore();
    countSources(v);
    setProgress(1);
    $("v-save").disabled = !b;
    if (!app.sw && b && playable(m.mimeType)) showMedia(v, null);
    rememberLink(v.fileId, link);
    refreshStored();
  }, (e) => {
    if (v.closed || (e && e.code === "cancelled")) return;
    v.error = explain(e);
    $("v-meta").textContent = `Failed: ${v.error}`;
  });
  if (v.closed) return;
  v.manifest = m;
  if (!v.map.total) v.map.reset(m.chunks.length);
  $("v-name").textContent = m.name || "(no name)";
  $("v-meta").textContent = [bytes(m.size), m.mimeType, `${m.chunks.length} chunks of ${bytes(m.chunkSize)}`,
                             m.encryption ? "encrypted" : null].filter(Boolean).join(" · ");
  document.title = `${m.name} · p2pcdn`;
  if (playable(m.mimeType)) {
    if (app.sw) showMedia(v, app.p2p.serviceWorkerUrl(link, m.name));
    else $("v-media").replaceChildren(el("p", { class: "note" }, "Plays once downloaded (no service worker in this browser)."));
  }
}

// A file too large to hold in the page: fetched whole (stored, seeded) by
// reading it in order and letting each chunk go; resolves with null.
async function drain(v, link, m, onProgress) {
  v.drain = app.p2p.stream(link, m, onProgress, { lookahead: 64 });
  for await (const _ of v.drain) if (v.closed) break;  // eslint-disable-line no-unused-vars
  return null;
}

// The manifest from this server (GET /api/manifest/<id>), after `delayMs`
// unless `signal` says the swarm gave it first. (The server then fetches the
// file itself: it is every page's web seed.)
async function serverManifest(fileId, delayMs, signal) {
  await new Promise((resolve, reject) => {
    const t = setTimeout(resolve, delayMs);
    signal.addEventListener("abort", () => { clearTimeout(t); reject(new DOMException("not needed", "AbortError")); }, { once: true });
  });
  const r = await fetch(`/api/manifest/${fileId}`, { signal });
  if (!r.ok) throw new Error((await r.text()).trim() || `the server has no manifest for it (HTTP ${r.status})`);
  return r.json();
}

// Bytes from peers and from the web seed, by the chunk map.
function countSources(v) {
  if (!v.manifest) return;
  const b = v.map.bytesBy(v.manifest);
  v.fromPeersBytes = b.peers;
  v.originBytes = b.origin;
}

// The player: <video>/<audio>/<img> at the service worker's URL (or the
// downloaded bytes, without one).
const BLOB_SAFE = /^(video|audio)\/|^image\/(png|jpeg|gif|webp|avif)$/;  // never run script from a blob: URL of this origin

function showMedia(v, url) {
  const m = v.manifest;
  if (!url) {
    if (!BLOB_SAFE.test(m.mimeType)) {
      return $("v-media").replaceChildren(el("p", { class: "note" }, "Save the file to open it."));
    }
    v.objectUrl = URL.createObjectURL(new Blob([v.bytes], { type: m.mimeType }));
    url = v.objectUrl;
  }
  const kind = m.mimeType.split("/")[0];
  const media = kind === "image" ? el("img", { src: url, alt: m.name })
    : el(kind === "audio" ? "audio" : "video", { src: url, controls: true, preload: "auto", playsinline: true });
  if (kind !== "image") {
    media.addEventListener("error", () => {
      if (!v.closed) $("v-media").append(el("p", { class: "note" }, "This browser cannot play this file; save it instead."));
    });
    media.play().catch(() => {});  // allowed after a click; else the controls start it
  }
  $("v-media").replaceChildren(media);
}

function setProgress(p) {
  const pct = Math.floor((p || 0) * 100);
  $("v-bar").style.setProperty("--p", `${(p || 0) * 100}%`);
  $("v-pct").textContent = `${pct} %`;
}

// Twice a second: speed, peers, P2P share, the map.
function tick(v) {
  if (v.closed || !app.p2p.peer) return;
  const now = performance.now();
  v.samples.push([now, v.bytesVerified || 0]);
  while (v.samples.length > 2 && now - v.samples[0][0] > 3000) v.samples.shift();
  const [t0, b0] = v.samples[0];
  const down = now > t0 ? ((v.bytesVerified || 0) - b0) / ((now - t0) / 1000) : 0;
  const stats = app.p2p.getStats();
  const peers = stats.peers.filter((p) => p.fileId === v.fileId);
  const up = peers.reduce((a, p) => a + (p.upRate || 0), 0);
  $("v-down").textContent = v.done ? "done" : rate(down);
  $("v-up").textContent = rate(up);
  $("v-peers").textContent = String(peers.length);
  countSources(v);
  const total = v.fromPeersBytes + v.originBytes;
  $("v-share").textContent = total ? `${((100 * v.fromPeersBytes) / total).toFixed(1)} %` : "–";
  $("v-origin").textContent = bytes(v.originBytes);
  const kinds = new Map(stats.peers.concat(stats.closedPeers).map((p) => [p.peerId, p.client || "peer"]));
  v.map.draw((src) => `${kinds.get(src) || "peer"} ${shortId(src)}`);
  $("v-peer-rows").replaceChildren(...peerRows(peers, v.map, v.map.total));
  statusLine(stats);
}

// The header: online, links to peers, bytes this page gave them.
function statusLine(stats) {
  const linked = stats.connectedPeers;
  const sent = stats.bytesUploaded ? ` · ${bytes(stats.bytesUploaded)} sent` : "";
  status(app.webrtc ? "ok" : "warn",
         app.webrtc ? `online · ${linked} peer link${linked === 1 ? "" : "s"}${sent}` : "online · web seed only");
}

function saveFile() {
  const v = app.viewer;
  if (!v || !v.bytes) return;
  const url = URL.createObjectURL(new Blob([v.bytes], { type: "application/octet-stream" }));  // saved, never rendered
  const a = el("a", { href: url, download: (v.manifest && v.manifest.name) || v.fileId });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// ---- stored files ----------------------------------------------------------------

async function refreshStored() {
  if (!app.p2p || !app.p2p.peer) return;
  let files;
  try { files = await app.p2p.getStoredFiles(); } catch { return; }
  const links = savedLinks();
  const rows = files.sort((a, b) => a.name.localeCompare(b.name)).map((f) => {
    const pct = f.chunksTotal ? Math.floor((100 * f.chunksStored) / f.chunksTotal) : 0;
    const link = links[f.fileId] || f.fileId;
    return el("tr", { "data-file": f.fileId },
      el("td", { class: "name" }, el("button", { class: "link", onclick: () => go(link) }, f.name || f.fileId.slice(0, 16)),
         f.pinned ? el("span", { class: "tag seed" }, "published") : null, f.encrypted ? el("span", { class: "tag lock" }, "encrypted") : null),
      el("td", {}, bytes(f.size)),
      el("td", {}, f.complete ? "complete" : `${pct} %`),
      el("td", {}, f.mimeType || ""),
      el("td", { class: "actions-cell" },
         el("button", { class: "secondary", onclick: () => go(link) }, "Open"), " ",
         el("button", { class: "secondary", "data-delete": f.fileId, onclick: () => deleteFile(f.fileId) }, "Delete")));
  });
  $("file-rows").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, class: "empty" }, "nothing stored yet"))]));
  const stats = app.p2p.getStats();
  const s = stats.storage;
  statusLine(stats);
  $("storage-used").style.width = `${Math.min(100, (100 * s.bytesUsed) / Math.max(1, s.quotaBytes))}%`;
  $("storage-text").textContent = `${bytes(s.bytesUsed)} of ${bytes(s.quotaBytes)} used`;
}

async function deleteFile(fileId) {
  if (app.viewer && app.viewer.fileId === fileId) {
    closeViewer();
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  }
  try { await app.p2p.delete(fileId); } catch (e) { banner("delete", "bad", "Could not delete.", explain(e)); }
  forgetLink(fileId);
  dismiss("quota");
  refreshStored();
}

// ---- start -----------------------------------------------------------------------------

function route() {
  const h = location.hash.slice(1);
  if (!h) return closeViewer();
  if (app.viewer && app.viewer.link === h) return;
  $("open-input").value = h;
  openLink(h);
}

async function start() {
  wirePublish();
  $("open-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const link = linkFrom($("open-input").value);
    if (!link) return showError("Paste a link first.");
    if (!app.ready) return showError("The peer is still starting; try again in a moment.");
    go(link);
  });
  $("v-close").addEventListener("click", () => { history.pushState(null, "", location.pathname + location.search); closeViewer(); });
  $("v-save").addEventListener("click", saveFile);
  if (!app.webrtc) {
    banner("webrtc", "warn", "No WebRTC in this browser.",
           "Files come from this server only (its web seed) and this page cannot share them with other peers.");
  }
  let config;
  try {
    const r = await fetch("/api/config");
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    config = await r.json();
    if (typeof config.trackerUrl !== "string") throw new Error("the server names no tracker");
  } catch (e) {
    status("bad", "offline");
    return banner("config", "bad", "This page is not served by p2pcdn serve.", `GET /api/config failed: ${e.message}`);
  }
  const quotaMiB = Number(new URLSearchParams(location.search).get("quota"));
  app.p2p = new P2PCDN({
    trackerUrl: config.trackerUrl,
    iceServers: config.iceServers || [],
    webSeeds: [location.origin + "/f/{fileId}"],
    seedDuration: 0,  // what this page fetched it serves for as long as it is open
    ...(quotaMiB > 0 ? { storageQuota: quotaMiB * 1024 * 1024 } : {}),
  });
  try {
    await app.p2p.connect();
  } catch (e) {
    status("bad", "not started");
    return banner("connect", "bad", "The peer could not start.", explain(e));
  }
  $("peer-id").textContent = shortId(app.p2p.getStats().peerId);
  status(app.webrtc ? "ok" : "warn", app.webrtc ? "online" : "online · web seed only");
  try {
    await app.p2p.serveServiceWorker({ url: "/dist/sw.js", scope: "/" });
    app.sw = true;
  } catch (e) {
    console.warn("no service worker:", e);  // players then wait for the download
  }
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", () => { if (app.viewer) app.viewer.map.dirty = true; });
  setInterval(refreshStored, 3000);
  await refreshStored();
  app.ready = true;
  route();
}

start();
