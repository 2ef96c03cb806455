// The web app's pieces of display (web/app/app.js uses them): numbers as
// text, the chunk map (which chunk came from whom, on a canvas) and the
// peers table. No state of the swarm is kept here.

export function bytes(n) {
  if (!Number.isFinite(n)) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; ++i; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + " " + u[i];
}
export const rate = (n) => (Number.isFinite(n) && n > 0 ? bytes(n) + "/s" : "–");
export const shortId = (peerId) => (peerId || "").slice(16, 24);  // past the 8-byte readable prefix

// el("td", {class: "x"}, "text", child...): a DOM element (text is never parsed as HTML).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;  // CSSOM: allowed by the page's CSP, unlike a style attribute
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const STORE = "#9ca3af";
const ORIGIN = "#f59e0b";
const PALETTE = ["#3b82f6", "#10b981", "#8b5cf6", "#ec4899", "#14b8a6", "#ef4444", "#84cc16", "#06b6d4", "#a855f7", "#f97316"];

// Which chunk came from which source: "" (this device's store), "web seed",
// or a peer's id. Peers get colours in the order they first delivered.
export class ChunkMap {
  constructor(canvas, legend) {
    this.canvas = canvas;
    this.legend = legend;
    this.total = 0;
    this.source = [];             // chunk -> source key (undefined: missing)
    this.colours = new Map();     // source -> colour
    this.counts = new Map();      // source -> chunks
    this.dirty = true;
  }
  reset(total) {
    this.total = total;
    this.source = new Array(total);
    this.counts.clear();
    this.dirty = true;
  }
  colour(src) {
    if (src === "") return STORE;
    if (src === "web seed") return ORIGIN;
    if (!this.colours.has(src)) this.colours.set(src, PALETTE[this.colours.size % PALETTE.length]);
    return this.colours.get(src);
  }
  set(chunk, src) {
    if (!(chunk >= 0 && chunk < this.total)) return;
    const before = this.source[chunk];
    if (before !== undefined) this.counts.set(before, this.counts.get(before) - 1);
    this.source[chunk] = src;
    this.counts.set(src, (this.counts.get(src) || 0) + 1);
    this.colour(src);
    this.dirty = true;
  }
  // The file is complete: chunks never announced were in the store before.
  fillFromStore() {
    for (let i = 0; i < this.total; ++i) if (this.source[i] === undefined) this.set(i, "");
  }
  count(src) { return this.counts.get(src) || 0; }
  // Bytes of the file by kind of source, from manifest m: {peers, origin, store}.
  bytesBy(m) {
    const out = { peers: 0, origin: 0, store: 0 };
    for (let i = 0; i < this.total; ++i) {
      const src = this.source[i];
      if (src === undefined) continue;
      const n = Math.min(m.chunkSize, m.size - i * m.chunkSize);
      if (src === "") out.store += n; else if (src === "web seed") out.origin += n; else out.peers += n;
    }
    return out;
  }

  // labelOf(src) -> "browser 1a2b3c4d" etc.
  draw(labelOf) {
    if (!this.dirty && this.canvas.width === Math.round(this.canvas.clientWidth * devicePixelRatio)) return;
    this.dirty = false;
    const dpr = devicePixelRatio || 1;
    const width = Math.max(100, this.canvas.clientWidth);
    const n = Math.max(1, this.total);
    let cell = 22;
    while (cell > 3 && Math.ceil(n / Math.floor(width / cell)) * cell > 140) --cell;
    const cols = Math.max(1, Math.floor(width / cell));
    const rows = Math.ceil(n / cols);
    this.canvas.style.height = rows * cell + "px";
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(rows * cell * dpr);
    const g = this.canvas.getContext("2d");
    g.scale(dpr, dpr);
    const gap = cell >= 8 ? 1.5 : cell >= 5 ? 1 : 0;
    const missing = getComputedStyle(document.documentElement).getPropertyValue("--line").trim() || "#e5e7eb";
    for (let i = 0; i < this.total; ++i) {
      const src = this.source[i];
      g.fillStyle = src === undefined ? missing : this.colour(src);
      g.fillRect((i % cols) * cell, Math.floor(i / cols) * cell, cell - gap, cell - gap);
    }
    const items = [];
    for (const [src, c] of this.counts) {
      if (c <= 0) continue;
      const label = src === "" ? "this device's store" : src === "web seed" ? "web seed (HTTP)" : labelOf(src);
      items.push(el("span", { "data-source": src }, el("i", { class: "swatch", style: `background:${this.colour(src)}` }),
                    `${label} · ${c}`));
    }
    const missingCount = this.source.reduce((a, s) => a - (s === undefined ? 0 : 1), this.total);
    if (missingCount > 0) items.push(el("span", {}, el("i", { class: "swatch", style: `background:${missing}` }), `missing · ${missingCount}`));
    this.legend.replaceChildren(...items);
  }
}

// The rows of the peers table: one per linked peer of the file.
export function peerRows(peers, map, chunksTotal) {
  if (!peers.length) return [el("tr", {}, el("td", { colspan: 9, class: "empty" }, "no peer linked yet"))];
  return peers.map((p) => {
    const delivered = map.count(p.peerId);
    const conn = p.localCandidateType || p.remoteCandidateType
      ? `${p.localCandidateType || "?"} → ${p.remoteCandidateType || "?"}` : "–";
    const kind = p.client || "other";
    return el("tr", { "data-peer": p.peerId },
      el("td", {}, delivered ? el("i", { class: "swatch", style: `background:${map.colour(p.peerId)}` }) : ""),
      el("td", {}, el("code", {}, shortId(p.peerId))),
      el("td", {}, el("span", { class: `tag ${kind}` }, kind), p.seeder ? el("span", { class: "tag seed" }, "seeder") : null),
      el("td", {}, conn),
      el("td", {}, Number.isFinite(p.rttSeconds) ? `${(p.rttSeconds * 1000).toFixed(p.rttSeconds < 0.01 ? 1 : 0)} ms` : "–"),
      el("td", {}, rate(p.downRate)),
      el("td", {}, rate(p.upRate)),
      el("td", {}, String(delivered)),
      el("td", {}, p.seeder ? "all" : chunksTotal ? `${Math.round((100 * p.chunksAvailable) / chunksTotal)} %` : "–"));
  });
}
