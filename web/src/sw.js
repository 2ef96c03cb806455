// The p2pcdn service worker (a classic script; P2PCDN.serveServiceWorker
// registers it). A GET or HEAD of <scope>p2pcdn/<64 hex id>[/<name>] is
// answered by a page of this origin that runs a P2PCDN and said it serves
// (web/src/swserve.js): the page plans the answer with the native gateway's
// rules (Range, If-Range, ETag; src/gateway/http.hpp in wasm) and sends the
// body chunk by chunk as the Response's stream pulls, so a player's seek is
// a new Range request and a cancelled request stops the page's fetch. Any
// format the browser plays works through <video src>, <audio src>, <img src>
// or a download link.
//
// Messages (over a MessageChannel per request): to the page
// {type: "p2pcdn-request", fileId, method, range, ifRange, ifNoneMatch};
// from it {type: "head", status, headers, body}, then per {type: "pull"}
// one {type: "data", bytes} or {type: "end"} or {type: "error", message};
// {type: "cancel"} when the consumer gave up.
"use strict";

const PATH = /\/p2pcdn\/([0-9a-fA-F]{64})(?:\/[^/]*)?$/;
const HEAD_TIMEOUT_MS = 30000;  // the page must answer a request within this
const PULL_TIMEOUT_MS = 60000;  // and send each piece of a body within this
const KEEP_ALIVE_MAX_MS = 60000;  // a page's ping keeps this worker running its `ms`, at most this (Firefox stops idle ones at 30 s)

const PROBE_MS = 1000;          // a page that does not answer a probe in this time does not serve

// Ids of the pages known to serve. The browser may stop this worker between
// requests (Firefox when idle) and this set goes with it: pages not in it
// are probed.
const serving = new Set();

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));

self.addEventListener("message", (e) => {
  const d = e.data || {};
  if (d.type === "p2pcdn-claim") e.waitUntil(self.clients.claim());  // a page a hard reload left uncontrolled
  if (d.type === "p2pcdn-serving" && e.source) serving.add(e.source.id);
  if (d.type === "p2pcdn-stopped" && e.source) serving.delete(e.source.id);
  // A page with a stream open pings: the ping's own lifetime keeps the worker (and the stream) alive.
  if (d.type === "p2pcdn-keepalive") {
    const ms = Math.min(KEEP_ALIVE_MAX_MS, Math.max(0, Number(d.ms) || 0));
    e.waitUntil(new Promise((r) => setTimeout(r, ms)));
  }
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(new URL("p2pcdn/", self.registration.scope).pathname)) return;
  const m = PATH.exec(url.pathname);
  if (!m || (e.request.method !== "GET" && e.request.method !== "HEAD")) return;
  e.respondWith(answer(e, m[1].toLowerCase()));
});

const text = (status, message) => new Response(message + "\n", { status, headers: { "Content-Type": "text/plain; charset=utf-8" } });

// The page that asked if it serves, else another page of ours that does.
async function server(e) {
  const windows = await self.clients.matchAll({ type: "window" });
  const ids = [...new Set([e.clientId, ...serving, ...windows.map((w) => w.id)].filter(Boolean))];
  for (const id of ids) {
    const c = await self.clients.get(id);
    if (!c) {
      serving.delete(id);
      continue;
    }
    if (serving.has(id) || (await probe(c))) {
      serving.add(id);
      return c;
    }
  }
  return null;
}
// Whether the page answers {type: "p2pcdn-probe"} (its ServiceWorkerServer does).
function probe(client) {
  const ch = new MessageChannel();
  return new Promise((resolve) => {
    const t = setTimeout(() => { ch.port1.close(); resolve(false); }, PROBE_MS);
    ch.port1.onmessage = () => { clearTimeout(t); ch.port1.close(); resolve(true); };
    client.postMessage({ type: "p2pcdn-probe" }, [ch.port2]);
  });
}

// Messages of one request's port, awaited one by one, each with a deadline.
// (swserve.js has the page's twin: a classic worker script imports nothing,
// and module service workers are not in every browser this package serves.)
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
  return (ms) => new Promise((resolve, reject) => {
    if (queued.length) return resolve(queued.shift());
    const t = setTimeout(() => { waiter = null; reject(new Error("the page did not answer in time")); }, ms);
    waiter = (d) => { clearTimeout(t); resolve(d); };
  });
}

async function answer(e, fileId) {
  const page = await server(e);
  if (!page) return text(503, "no page of this site serves p2pcdn files now (open one that calls serveServiceWorker)");
  const ch = new MessageChannel();
  const port = ch.port1;
  const next = inbox(port);
  const h = e.request.headers;
  page.postMessage({ type: "p2pcdn-request", fileId, method: e.request.method, range: h.get("range"),
                     ifRange: h.get("if-range"), ifNoneMatch: h.get("if-none-match") }, [ch.port2]);
  let head;
  try {
    head = await next(HEAD_TIMEOUT_MS);
  } catch (err) {
    port.close();
    return text(504, err.message);
  }
  if (head.type !== "head") {
    port.close();
    return text(head.status || 502, head.message || "the page failed");
  }
  if (!head.body) {
    port.close();
    return new Response(null, { status: head.status, headers: head.headers });
  }
  let done = false;
  const finish = () => { done = true; port.close(); };
  const body = new ReadableStream({
    async pull(ctl) {
      port.postMessage({ type: "pull" });
      let m;
      try {
        m = await next(PULL_TIMEOUT_MS);
      } catch (err) {
        port.postMessage({ type: "cancel" });
        finish();
        return ctl.error(err);
      }
      if (m.type === "data") return ctl.enqueue(new Uint8Array(m.bytes));
      finish();
      if (m.type === "end") return ctl.close();
      ctl.error(new Error(m.message || "the page failed"));
    },
    cancel() {
      if (done) return;
      port.postMessage({ type: "cancel" });
      finish();
    },
  }, { highWaterMark: 0 });  // pull only as the consumer reads: the page fetches no further ahead
  return new Response(body, { status: head.status, headers: head.headers });
}
