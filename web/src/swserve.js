// The page's half of the service-worker path (web/src/sw.js): requests the
// worker forwards are answered from this P2PCDN's peer. The answer is planned
// by the native gateway's rules (core.planResponse, src/gateway/http.hpp in
// wasm); the body comes from P2PCDN.stream(), sought to the range's first
// chunk, one piece per pull of the worker's stream (so a paused player holds
// the fetch back, and a cancel ends it). While a body is open the worker is
// pinged, so Firefox does not stop it as idle mid-stream.
import { P2PCDNError } from "./core.js";

const MANIFEST_TIMEOUT_MS = 20000;  // no manifest from peers in this time: 504
const IDLE_PULL_MS = 120000;        // a body not pulled for this long is given up
const PING_MS = 10000;              // keep-alive pings to the worker while a body is open (default)
const LOOKAHEAD = 16;               // chunks the swarm fetches past the one being sent

export class ServiceWorkerServer {
  constructor(cdn) {
    this.cdn = cdn;
    this.reg = null;
    this.open = 0;        // bodies being sent now
    this.served = 0;      // requests answered
    this.onMessage = (e) => {
      const d = e.data || {};
      if (d.type === "p2pcdn-request" && e.ports && e.ports[0]) this.serve(e.ports[0], d);
      if (d.type === "p2pcdn-probe" && e.ports && e.ports[0]) e.ports[0].postMessage({ type: "p2pcdn-serving" });
    };
    this.ping = null;
  }

  // Registers the worker (its script URL and scope), waits until it controls
  // this page, and tells it this page serves.
  async start({ url, scope, timeoutMs = 10000, keepAliveMs = PING_MS }) {
    const sw = globalThis.navigator && navigator.serviceWorker;
    if (!sw) throw new P2PCDNError("unsupported", "this page has no service workers (a secure context is needed)", 8);
    if (this.reg) return;  // started already
    this.reg = await sw.register(url, { scope });
    await sw.ready;
    sw.addEventListener("message", this.onMessage);
    if (!sw.controller) {
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new P2PCDNError("timed-out", "the service worker did not take control of this page", 12)), timeoutMs);
        sw.addEventListener("controllerchange", () => { clearTimeout(t); resolve(); }, { once: true });
      });
    }
    sw.controller.postMessage({ type: "p2pcdn-serving" });
    // Each ping keeps the worker for 1.5 pings: the next one arrives before it ends.
    this.ping = setInterval(() => {
      if (this.open > 0 && sw.controller) sw.controller.postMessage({ type: "p2pcdn-keepalive", ms: keepAliveMs * 1.5 });
    }, keepAliveMs);
  }

  stop() {
    const sw = globalThis.navigator && navigator.serviceWorker;
    if (sw) {
      sw.removeEventListener("message", this.onMessage);
      if (sw.controller) sw.controller.postMessage({ type: "p2pcdn-stopped" });
    }
    clearInterval(this.ping);
  }

  // The URL a <video src> (or any fetch of this page) gets the file at.
  url(fileId, name = "") {
    if (!this.reg) throw new P2PCDNError("invalid-argument", "serveServiceWorker() first", 1);
    return new URL(`p2pcdn/${fileId}/${encodeURIComponent(name)}`, this.reg.scope).href;
  }

  async serve(port, req) {
    const next = inbox(port);
    let it = null;
    try {
      it = this.cdn.stream(req.fileId, null, undefined, { lookahead: LOOKAHEAD });
      const m = await withDeadline(it.manifest(), MANIFEST_TIMEOUT_MS, "no peer sent the manifest");
      const plan = this.cdn.mod.core.planResponse(m, req);
      const body = plan.first !== undefined && req.method !== "HEAD";
      port.postMessage({ type: "head", status: plan.status, headers: plan.headers, body });
      ++this.served;
      if (!body) return;
      ++this.open;
      try {
        await this.sendBody(port, next, it, m.chunkSize, plan.first, plan.last);
      } finally {
        --this.open;
      }
    } catch (e) {
      const status = e && e.code === "timed-out" ? 504 : e && e.code === "not-found" ? 404 : 502;
      port.postMessage({ type: "error", status, message: `${e && e.code ? e.code + ": " : ""}${e && e.message ? e.message : e}` });
    } finally {
      if (it) it.return().catch(() => {});
      port.close();
    }
  }

  // Bytes [first, last] of the file, a piece per pull, until the end or a cancel.
  async sendBody(port, next, it, chunkSize, first, last) {
    let pos = first;
    it.seek(Math.floor(first / chunkSize));
    for (;;) {
      const msg = await next(IDLE_PULL_MS);
      if (msg.type !== "pull") return;  // cancel
      if (pos > last) return port.postMessage({ type: "end" });
      const r = await it.next();
      if (r.done) throw new P2PCDNError("internal", "the stream ended before the range did", 0);
      const at = it.position * chunkSize;
      const from = pos - at;
      const to = Math.min(r.value.length, last - at + 1);
      if (from < 0 || from >= to) throw new P2PCDNError("internal", `chunk ${it.position} does not hold byte ${pos}`, 0);
      const piece = r.value.slice(from, to);  // its own buffer, transferred
      pos += piece.length;
      port.postMessage({ type: "data", bytes: piece.buffer }, [piece.buffer]);
    }
  }
}

function withDeadline(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, reject) => {
    t = setTimeout(() => reject(new P2PCDNError("timed-out", `${what} in ${ms} ms`, 12)), ms);
  })]).finally(() => clearTimeout(t));
}

// The port's messages awaited one by one; a deadline gives {type: "cancel"}.
function inbox(port) {
  const queued = [];
  let waiter = null;
  port.onmessage = (ev) => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(ev.data);
    } else {
      queued.push(ev.data);
    }
  };
  return (ms) => new Promise((resolve) => {
    if (queued.length) return resolve(queued.shift());
    const t = setTimeout(() => { waiter = null; resolve({ type: "cancel" }); }, ms);
    waiter = (d) => { clearTimeout(t); resolve(d); };
  });
}
