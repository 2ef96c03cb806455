// The C ABI of the browser peer (the core's is exports.cpp): peers by handle,
// and the entry points of JavaScript's events (loop, timer, tracker
// WebSockets, peer connections). Every event from JS is posted onto the loop
// (BrowserRuntime::post) before it reaches a C++ object. Requests that
// complete later carry a request number `req` chosen by JS (a double below
// 2^53) and answer through p2p_js_peer_event (browser/peer.hpp).
#include <emscripten/emscripten.h>

#include <map>
#include <nlohmann/json.hpp>
#include <memory>
#include <type_traits>

#include "browser/abi.hpp"
#include "browser/link.hpp"
#include "browser/identity.hpp"
#include "browser/peer.hpp"
#include "browser/runtime.hpp"
#include "browser/storage.hpp"

using namespace p2pcdn;
using namespace p2pcdn::browser;
using namespace p2pcdn::browser::abi;

namespace {

std::map<int, std::unique_ptr<BrowserPeer>>& peers() {
  static std::map<int, std::unique_ptr<BrowserPeer>> p;
  return p;
}

BrowserPeer* peer(int h) {
  auto it = peers().find(h);
  return it == peers().end() ? nullptr : it->second.get();
}

const Error kNoPeer(Errc::kInvalidArgument, "peer", "no such peer (disconnected?)");

// A call on peer h: fn(peer) gives its result text, or the failure.
template <class F>
int onPeer(int h, F&& fn) {
  auto* p = peer(h);
  if (!p) return failed(kNoPeer);
  return ok(fn(*p));
}
// A call on peer h about the file whose id is the hex text (id, n). fn gives
// its result text, or a Status (then "null" when it holds, else the failure).
template <class F>
int onFile(int h, const char* id, std::size_t n, F&& fn) {
  auto* p = peer(h);
  if (!p) return failed(kNoPeer);
  auto fid = FileId::fromHex(text(id, n));
  if (!fid) return failed(fid.error());
  if constexpr (std::is_same_v<std::invoke_result_t<F, BrowserPeer&, const FileId&>, Status>) {
    const Status st = fn(*p, *fid);
    return st ? ok("null") : failed(st.error());
  } else {
    return ok(fn(*p, *fid));
  }
}

}  // namespace

extern "C" {

// ---- events from JavaScript ----
EMSCRIPTEN_KEEPALIVE void p2p_run_posted() { BrowserRuntime::get().runPosted(); }
EMSCRIPTEN_KEEPALIVE void p2p_run_timers() { BrowserRuntime::get().runTimers(); }

// kind: 0 open, 1 text message, 2 closed.
EMSCRIPTEN_KEEPALIVE void p2p_ws_event(int h, int kind, const char* p, std::size_t n) {
  auto& rt = BrowserRuntime::get();
  rt.post([&rt, h, kind, t = std::string(text(p, n))]() mutable {
    auto it = rt.trackers.find(h);
    if (it != rt.trackers.end()) it->second->onEvent(kind, std::move(t));
  });
}

// Room for a message of n bytes from link h (0: refused, the link fails).
EMSCRIPTEN_KEEPALIVE std::uint8_t* p2p_link_inbox(int h, std::size_t n) {
  auto it = liveLinks().find(h);
  if (it == liveLinks().end()) return nullptr;
  auto* p = it->second->inbox(n);
  if (!p) {
    it->second->event(3, "a message of " + std::to_string(n) + " bytes (over the limit, or empty)");
  }
  return p;
}
EMSCRIPTEN_KEEPALIVE void p2p_link_message(int h) {
  auto it = liveLinks().find(h);
  if (it != liveLinks().end()) it->second->message();
}
EMSCRIPTEN_KEEPALIVE void p2p_link_event(int h, int kind, const char* p, std::size_t n) {
  auto it = liveLinks().find(h);
  if (it != liveLinks().end()) it->second->event(kind, std::string(text(p, n)));
}

// ---- peers ----
// A handle for the next peer: the page keeps its store's backend under it first.
EMSCRIPTEN_KEEPALIVE int p2p_peer_handle() { return BrowserRuntime::get().newHandle(); }

// A started peer h (options, index: browser/peer.hpp); result {"peer":h,"peerId":hex}.
EMSCRIPTEN_KEEPALIVE int p2p_peer_new(int h, const char* options, std::size_t n, const char* index, std::size_t in) {
  if (peer(h)) return failed(Error(Errc::kInvalidArgument, "peer", "handle in use"));
  auto p = BrowserPeer::create(h, text(options, n), text(index, in));
  if (!p) return failed(p.error());
  const std::string id = (*p)->peerIdHex();
  peers()[h] = std::move(*p);
  return ok(dump({{"peer", h}, {"peerId", id}}));
}

// Says goodbye to every peer; {"req":R} when done (then p2p_peer_free).
EMSCRIPTEN_KEEPALIVE int p2p_peer_stop(int h, double req) {
  return onPeer(h, [req](BrowserPeer& p) { p.stop(req); return "null"; });
}
EMSCRIPTEN_KEEPALIVE void p2p_peer_free(int h) {
  // Destroyed on a later turn: this may be called from inside one of its events.
  auto it = peers().find(h);
  if (it == peers().end()) return;
  std::shared_ptr<BrowserPeer> gone(std::move(it->second));
  peers().erase(it);
  BrowserRuntime::get().post([gone] {});
}

// Fetch a file (manifest JSON may be empty: asked of peers); {"req":R,"listener":L}.
EMSCRIPTEN_KEEPALIVE int p2p_peer_fetch(int h, double req, const char* id, std::size_t idn, const char* manifest,
                                        std::size_t mn) {
  std::optional<Manifest> m;
  if (mn > 0) {
    auto parsed = manifestFromJson(text(manifest, mn));
    if (!parsed) return failed(parsed.error());
    m = std::move(*parsed);
  }
  return onFile(h, id, idn, [&](BrowserPeer& p, const FileId& fid) {
    p.fetch(req, fid, std::move(m));
    return "null";
  });
}
// No event reaches listener L after this.
EMSCRIPTEN_KEEPALIVE int p2p_peer_unlisten(int h, double listener) {
  return onPeer(h, [listener](BrowserPeer& p) {
    p.unlisten(static_cast<node::ListenerId>(listener));
    return "null";
  });
}
EMSCRIPTEN_KEEPALIVE int p2p_peer_seed(int h, double req, const char* id, std::size_t idn) {
  return onFile(h, id, idn, [req](BrowserPeer& p, const FileId& fid) { p.seed(req, fid); return "null"; });
}
// Chunk bytes (verified) through p2p_js_peer_data(h, req, ...), or {"req":R,"error":...}.
EMSCRIPTEN_KEEPALIVE int p2p_peer_read(int h, double req, const char* id, std::size_t idn, std::uint32_t index) {
  return onFile(h, id, idn, [req, index](BrowserPeer& p, const FileId& fid) { p.read(req, fid, index); return "null"; });
}
// An upload's manifest (JSON), stored pinned: {"req":R,"fileId":hex}.
EMSCRIPTEN_KEEPALIVE int p2p_peer_publish(int h, double req, const char* manifest, std::size_t mn) {
  auto m = manifestFromJson(text(manifest, mn));
  if (!m) return failed(m.error());
  return onPeer(h, [&](BrowserPeer& p) { p.publish(req, *m); return "null"; });
}
// Chunk `index` of a published file, verified and stored: {"req":R}.
EMSCRIPTEN_KEEPALIVE int p2p_peer_put(int h, double req, const char* id, std::size_t idn, std::uint32_t index,
                                      const std::uint8_t* data, std::size_t dn) {
  return onFile(h, id, idn, [&](BrowserPeer& p, const FileId& fid) {
    p.put(req, fid, index, bytes(data, dn));
    return "null";
  });
}
// Leaves the file's swarm and deletes it from the store.
EMSCRIPTEN_KEEPALIVE int p2p_peer_remove(int h, const char* id, std::size_t idn) {
  return onFile(h, id, idn, [](BrowserPeer& p, const FileId& fid) { p.remove(fid); return "null"; });
}
// Pins (1) or unpins (0) the stored file.
EMSCRIPTEN_KEEPALIVE int p2p_peer_pin(int h, const char* id, std::size_t idn, int pinned) {
  return onFile(h, id, idn, [pinned](BrowserPeer& p, const FileId& fid) { p.pin(fid, pinned != 0); return "null"; });
}
// Leaves the file's swarm; the store keeps it.
EMSCRIPTEN_KEEPALIVE int p2p_peer_release(int h, const char* id, std::size_t idn) {
  return onFile(h, id, idn, [](BrowserPeer& p, const FileId& fid) { p.release(fid); return "null"; });
}
EMSCRIPTEN_KEEPALIVE int p2p_peer_streaming(int h, const char* id, std::size_t idn, int on, std::uint32_t cursor,
                                            std::uint32_t lookahead) {
  return onFile(h, id, idn, [=](BrowserPeer& p, const FileId& fid) {
    p.setStreaming(fid, on != 0, cursor, lookahead);
    return "null";
  });
}
// PeerMesh: ask the peer (hex id, text (pid, pn)) for the chunk first.
EMSCRIPTEN_KEEPALIVE int p2p_peer_wish(int h, const char* id, std::size_t idn, const char* pid, std::size_t pn,
                                       std::uint32_t index) {
  return onFile(h, id, idn, [&](BrowserPeer& p, const FileId& fid) { return p.wish(fid, std::string(text(pid, pn)), index); });
}
// PeerMesh: offer a chunk we hold to the peer (a HAVE; served even while it is choked).
EMSCRIPTEN_KEEPALIVE int p2p_peer_offer(int h, const char* id, std::size_t idn, const char* pid, std::size_t pn,
                                        std::uint32_t index) {
  return onFile(h, id, idn, [&](BrowserPeer& p, const FileId& fid) { return p.offer(fid, std::string(text(pid, pn)), index); });
}
// Web seeds of a file: a JSON array of http(s) URLs (swarm/origin.hpp).
EMSCRIPTEN_KEEPALIVE int p2p_peer_origins(int h, const char* id, std::size_t idn, const char* p, std::size_t n) {
  return onFile(h, id, idn, [&](BrowserPeer& peer, const FileId& fid) -> Status {
    auto j = nlohmann::json::parse(text(p, n), nullptr, false);
    if (j.is_discarded() || !j.is_array()) return fail(Errc::kInvalidArgument, "web seeds", "a JSON array of URLs");
    std::vector<std::string> urls;
    for (const auto& u : j) {
      if (!u.is_string()) return fail(Errc::kInvalidArgument, "web seeds", "a web seed is a URL string");
      urls.push_back(u.get<std::string>());
    }
    return peer.setOrigins(fid, std::move(urls));
  });
}
// Whether the peer holds the chunk, as it told us: true or false.
EMSCRIPTEN_KEEPALIVE int p2p_peer_peer_has(int h, const char* id, std::size_t idn, const char* pid, std::size_t pn,
                                           std::uint32_t index) {
  return onFile(h, id, idn, [&](BrowserPeer& p, const FileId& fid) {
    return p.peerHas(fid, std::string(text(pid, pn)), index) ? "true" : "false";
  });
}
EMSCRIPTEN_KEEPALIVE int p2p_peer_announce(int h) {
  return onPeer(h, [](BrowserPeer& p) { p.announceNow(); return "null"; });
}
// The file's progress (JSON; null if the peer does not hold it).
EMSCRIPTEN_KEEPALIVE int p2p_peer_progress(int h, const char* id, std::size_t idn) {
  return onFile(h, id, idn, [](BrowserPeer& p, const FileId& fid) { return p.progressJson(fid); });
}
EMSCRIPTEN_KEEPALIVE int p2p_peer_stats(int h) {
  return onPeer(h, [](BrowserPeer& p) { return p.statsJson(); });
}
// {"files":[...],"usage":{...}} of the peer's store.
EMSCRIPTEN_KEEPALIVE int p2p_peer_storage(int h) {
  return onPeer(h, [](BrowserPeer& p) { return p.storageJson(); });
}

// ---- web seed fetches answering (BrowserRuntime::fetchRange) ----
// Room for the n bytes of fetch h (0: unknown, or not the length asked: the fetch then fails).
EMSCRIPTEN_KEEPALIVE std::uint8_t* p2p_fetch_inbox(int h, std::size_t n) {
  auto& f = BrowserRuntime::get().fetches;
  auto it = f.find(h);
  if (it == f.end() || n != it->second.length) return nullptr;
  it->second.bytes.resize(n);
  return it->second.bytes.data();
}
// Fetch h ended: code 0 (its bytes are in the inbox), or an Errc with a message.
EMSCRIPTEN_KEEPALIVE void p2p_fetch_done(int h, int code, const char* p, std::size_t n) {
  BrowserRuntime::get().post([h, code, m = std::string(text(p, n))]() mutable {
    auto& f = BrowserRuntime::get().fetches;
    auto it = f.find(h);
    if (it == f.end()) return;  // cancelled
    auto fetch = std::move(it->second);
    f.erase(it);
    if (code == 0 && fetch.bytes.size() == fetch.length) return fetch.done(std::move(fetch.bytes));
    const auto errc = code > 0 && code <= static_cast<int>(Errc::kTimedOut) ? static_cast<Errc>(code) : Errc::kIo;
    fetch.done(fail(errc, "web seed", m.empty() ? "no bytes" : m));
  });
}

// ---- the store's backend answering (browser/storage.hpp) ----
// Room for the n bytes a get of request req read (0: none; the request then fails).
EMSCRIPTEN_KEEPALIVE std::uint8_t* p2p_store_inbox(int h, double req, std::size_t n) {
  auto it = liveStores().find(h);
  return it == liveStores().end() ? nullptr : it->second->inbox(req, n);
}
// Request req ended: code 0, or an Errc with a message.
// The end of a signature or verification of peer h's identity (JsIdentity).
EMSCRIPTEN_KEEPALIVE void p2p_identity_done(int h, double req, int ok, const std::uint8_t* p, std::size_t n) {
  Bytes sig(p, p + n);
  BrowserRuntime::get().post([h, req, ok, sig = std::move(sig)] {
    if (JsIdentity* id = JsIdentity::byHandle(h)) id->finish(req, ok != 0, sig);
  });
}

EMSCRIPTEN_KEEPALIVE void p2p_store_done(int h, double req, int code, const char* p, std::size_t n) {
  BrowserRuntime::get().post([h, req, code, m = std::string(text(p, n))]() mutable {
    auto it = liveStores().find(h);
    if (it != liveStores().end()) it->second->finish(req, code, std::move(m));
  });
}

}  // extern "C"
