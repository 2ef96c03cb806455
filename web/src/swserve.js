// The page's half of the service-worker path (web/src/sw.js): requests the
// worker forwards are answered from this P2PCDN's peer. The answer is planned
// by the native gateway's rules (core.planResponse, src/gateway/http.hpp in
// wasm); the body comes from P2PCDN.stream(), sought to the range's first
// chunk, one piece per pull of the worker's stream (so a paused player holds
// the fetch back, and a cancel ends it). The file stays in the swarm for
// HOLD_MS after its last request. While a body is open the worker is pinged,
// so Firefox does not stop it as idle mid-stream.
import { P2PCDNError } from "./core.js";

const MANIFEST_TIMEOUT_MS = 20000;  // no manifest from peers in this time: 504
const IDLE_PULL_MS = 120000;        // a body not pulled (or a chunk not come) for this long is given up
const PING_MS = 10000;              // keep-alive pings to the worker while a body is open (default)
const LOOKAHEAD = 16;               // chunks the swarm fetches past the one being sent
const HOLD_MS = 30000;              // the file stays in the swarm this long after its last request

export class ServiceWorkerServer {
  constructor(cdn) {
    this.cdn = cdn;
    this.reg = null;
    this.open = 0;        // bodies being sent now
    this.served = 0;      // requests answered
    this.holds = new Map();  // fileId -> {fetch, users, timer}: the file kept between requests
    this.onMessage = (e) => {
      const d = e.data || {};
      if (d.type === "p2pcdn-request" && e.ports && e.ports[0]) this.serve(e.ports[0], d);
      if (d.type === "p2pcdn-probe" && e.ports && e.ports[0]) e.ports[0].postMessage({ type: "p2pcdn-serving" });
    };
    this.ping = null;
  }

  // Registers the worker (its script URL and scope, which must hold this
  // page), waits until it controls this page, and tells it this page serves.
  async start({ url, scope, timeoutMs = 10000, keepAliveMs = PING_MS }) {
    const sw = globalThis.navigator && navigator.serviceWorker;
    if (!sw) throw new P2PCDNError("unsupported", "this page has no service workers (a secure context is needed)", 8);
    if (this.reg) return;  // started already
    const ping = Math.min(40000, Math.max(1000, Number(keepAliveMs) || PING_MS));
    const reg = await sw.register(url, { scope });
    if (!location.href.startsWith(reg.scope)) {
      throw new P2PCDNError("invalid-argument", `the worker's scope ${reg.scope} does not hold this page: serve sw.js ` +
                            "at the site's root (or send Service-Worker-Allowed) and pass its scope", 1);
    }
    const active = await withDeadline(waitActive(reg), timeoutMs, "the service worker did not start");
    sw.addEventListener("message", this.onMessage);
    if (!sw.controller || sw.controller.scriptURL !== active.scriptURL) {
      const changed = new Promise((resolve) => sw.addEventListener("controllerchange", resolve, { once: true }));
      active.postMessage({ type: "p2pcdn-claim" });  // a hard reload leaves the page uncontrolled
      await withDeadline(changed, timeoutMs, "the service worker did not take control of this page");
    }
    sw.controller.postMessage({ type: "p2pcdn-serving" });
    // Each ping keeps the worker for 1.5 pings: the next one arrives before it ends.
    this.ping = setInterval(() => {
      if (this.open > 0 && sw.controller) sw.controller.postMessage({ type: "p2pcdn-keepalive", ms: ping * 1.5 });
    }, ping);
    this.reg = reg;
  }

  stop() {
    const sw = globalThis.navigator && navigator.serviceWorker;
    if (sw) {
      sw.removeEventListener("message", this.onMessage);
      if (sw.controller) sw.controller.postMessage({ type: "p2pcdn-stopped" });
    }
    clearInterval(this.ping);
    for (const h of this.holds.values()) clearTimeout(h.timer);
    this.holds.clear();  // the peer is closing: its fetches go with it
  }

  // The URL a <video src> (or any fetch of this page) gets the file at.
  url(fileId, name = "") {
    if (!this.reg) throw new P2PCDNError("invalid-argument", "serveServiceWorker() first", 1);
    return new URL(`p2pcdn/${fileId}/${encodeURIComponent(name)}`, this.reg.scope).href;
  }

  // The file kept in the swarm while requests for it come (a player's
  // requests come one after another: without it each would rejoin), and its
  // manifest without fetching any chunk (a "mesh" fetch asks for none).
  async hold(fileId) {
    let h = this.holds.get(fileId);
    if (!h) {
      h = { fetch: this.cdn.startFetch(fileId, null, undefined, { kind: "mesh" }), users: 0, timer: null };
      this.holds.set(fileId, h);
      h.fetch.catch(() => { if (this.holds.get(fileId) === h) this.holds.delete(fileId); });
    }
    clearTimeout(h.timer);
    ++h.users;
    const f = await h.fetch;
    if (f.error) {  // failed (a key missing, the file deleted): the next request starts afresh
      --h.users;
      if (this.holds.get(fileId) === h) this.holds.delete(fileId);
      this.cdn.endFetch(f, false);
      throw f.error;
    }
    return { manifest: () => withDeadline(f.manifest(), MANIFEST_TIMEOUT_MS, "no peer sent the manifest"),
             release: () => {
               if (--h.users > 0) return;
               h.timer = setTimeout(() => {
                 if (this.holds.get(fileId) !== h) return;
                 this.holds.delete(fileId);
                 this.cdn.endFetch(f, false);
               }, HOLD_MS);
             } };
  }

  async serve(port, req) {
    let it = null, lease = null;
    const next = inbox(port, () => { if (it) it.return().catch(() => {}); });
    try {
      lease = await this.hold(req.fileId);
      const m = await lease.manifest();
      const plan = this.cdn.mod.core.planResponse(m, req);
      const body = plan.first !== undefined && req.method !== "HEAD";
      port.postMessage({ type: "head", status: plan.status, headers: plan.headers, body });
      ++this.served;
      if (!body) return;
      ++this.open;
      try {
        it = this.cdn.stream(req.fileId, null, undefined, { lookahead: LOOKAHEAD });
        it.seek(Math.floor(plan.first / m.chunkSize));  // before its fetch starts: no chunk before it is asked for
        await this.sendBody(port, next, it, m.chunkSize, plan.first, plan.last);
      } finally {
        --this.open;
      }
    } catch (e) {
      const status = e && e.code === "timed-out" ? 504 : e && e.code === "not-found" ? 404 : 502;
      port.postMessage({ type: "error", status, message: `${e && e.code ? e.code + ": " : ""}${e && e.message ? e.message : e}` });
    } finally {
      if (it) it.return().catch(() => {});
      if (lease) lease.release();
      port.close();
    }
  }

  // Bytes [first, last] of the file, a piece per pull, until the end or a
  // cancel (which ends a read waiting for its chunk at once: inbox's onCancel).
  async sendBody(port, next, it, chunkSize, first, last) {
    let pos = first;
    while (pos <= last) {
      const msg = await next(IDLE_PULL_MS);
      if (msg.type !== "pull") return;  // cancel, or not pulled for IDLE_PULL_MS
      const r = await withDeadline(it.next(), IDLE_PULL_MS, `chunk ${Math.floor(pos / chunkSize)} did not come`);
      if (r.done) return;  // cancelled meanwhile
      const at = it.position * chunkSize;
      const from = pos - at;
      const to = Math.min(r.value.length, last - at + 1);
      if (from < 0 || from >= to) throw new P2PCDNError("internal", `chunk ${it.position} does not hold byte ${pos}`, 0);
      const piece = r.value.slice(from, to);  // its own buffer, transferred
      pos += piece.length;
      port.postMessage({ type: "data", bytes: piece.buffer }, [piece.buffer]);
    }
    port.postMessage({ type: "end" });  // at once: a consumer that stops at Content-Length pulls no more
  }
}

async function waitActive(reg) {
  const w = reg.active || reg.installing || reg.waiting;
  if (reg.active) return reg.active;
  await new Promise((resolve) => {
    w.addEventListener("statechange", function check() {
      if (w.state === "activated") { w.removeEventListener("statechange", check); resolve(); }
    });
  });
  return reg.active;
}

function withDeadline(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, reject) => {
    t = setTimeout(() => reject(new P2PCDNError("timed-out", `${what} in ${ms} ms`, 12)), ms);
  })]).finally(() => clearTimeout(t));
}

// The port's messages awaited one by one; a deadline gives {type: "cancel"}.
// onCancel runs as soon as a cancel arrives (not when it is awaited).
function inbox(port, onCancel) {
  const queued = [];
  let waiter = null;
  port.onmessage = (ev) => {
    if (ev.data && ev.data.type === "cancel") onCancel();
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
