// The node's lifecycle, its files (seed, fetch, forget), its listeners and
// its stats. The other parts of Node::Impl: node_impl.hpp.
#include "node/node.hpp"

#include <algorithm>

#include "core/hex.hpp"
#include "wire/auth.hpp"
#include "node/node_impl.hpp"
#include "wire/fragment.hpp"
#include "wire/wire.hpp"

namespace p2pcdn::node {

std::array<std::uint8_t, 20> swarmKey(const FileId& id) { return signaling::swarmKey(id); }

namespace {

// A global limit of `rate` bytes/s (NodeOptions::uploadLimit): a quarter
// second of traffic as the burst, at least 16 KiB.
std::shared_ptr<swarm::TokenBucket> globalBucket(std::uint64_t rate) {
  const double r = static_cast<double>(rate);
  return std::make_shared<swarm::TokenBucket>(r, std::max(r / 4, 16384.0));
}

}  // namespace

Node::Impl::Impl(Runtime& r, ChunkStorage& s, transport::LinkFactory& f, NodeOptions o)
    : rt(r), rawStore(s), links(f), opts(std::move(o)), rng(r.seed()), worker(r.storeQueue()) {
  if (!worker) std::abort();  // Runtime::storeQueue() must give a queue
  identity = opts.identity ? opts.identity : rt.makeIdentity();
  if (identity) peerId = wire::peerIdOf(identity->publicKey(), opts.client);  // else start() fails
  opts.swarm.maxPiecePayload = wire::maxPiecePayload(opts.link.maxMessageSize);
  if (opts.uploadLimit) opts.swarm.globalUp = globalBucket(opts.uploadLimit);
  if (opts.downloadLimit) opts.swarm.globalDown = globalBucket(opts.downloadLimit);
}

std::string clientOf(std::string_view hex) {
  if (hex.size() < 16) return "other";
  if (hex.substr(0, 4) == "2d50" && hex.substr(6, 10) == "303030322d") {  // "-P" <client> "0002-"
    if (hex.substr(4, 2) == "43") return "native";   // 'C'
    if (hex.substr(4, 2) == "42") return "browser";  // 'B'
  }
  if (hex.substr(0, 6) == "2d5757") return "webtorrent";  // "-WW"
  return "other";
}

std::string Node::Impl::shortId(const Id20& id) { return toHex(ByteView(id.data(), id.size())).substr(16, 8); }

// ---- lifecycle ------------------------------------------------------------

Status Node::Impl::start() {
  if (!identity) return fail(Errc::kInvalidArgument, "start node", "no identity given, and the runtime makes none");
  P2PCDN_TRY(transport::validate(opts.link));
  std::weak_ptr<Impl> weak = shared_from_this();
  TrackerClient::Events ev;
  ev.onConnected = [weak] {
    if (auto self = weak.lock()) self->announceAll(true);
  };
  ev.onMessage = [weak](const signaling::TrackerMessage& msg) {
    if (auto self = weak.lock()) self->onTrackerMessage(msg);
  };
  std::vector<std::string> urls{opts.trackerUrl};
  urls.insert(urls.end(), opts.trackerFallbacks.begin(), opts.trackerFallbacks.end());
  auto client = std::make_unique<TrackerClient>(rt, urls, opts.trackerFailover, std::move(ev));
  P2PCDN_TRY(client->valid());
  tracker = std::move(client);
  tracker->start();
  scheduleTick();
  return {};
}

void Node::Impl::stop(std::function<void()> done) {
  stopped = true;  // the tick stops
  for (auto& [id, f] : files) f.session->goodbyeAll(wire::GoodbyeReason::kShutdown, "shutting down");
  if (tracker) tracker->stop();
  // Give GOODBYEs a moment to leave before the links are torn down.
  auto self = shared_from_this();
  rt.after(std::chrono::milliseconds(200), [self, done = std::move(done)] {
    for (auto& [id, f] : self->files) {
      for (auto& [k, p] : f.peers) {
        if (auto s = self->statsOf(f, *p, self->now())) self->ledger.add(std::move(*s));
        if (p->link) p->link->close();
      }
      f.peers.clear();
    }
    if (done) done();
  });
}

void Node::Impl::scheduleTick() {
  std::weak_ptr<Impl> weak = shared_from_this();
  rt.after(kTickPeriod, [weak] {
    auto self = weak.lock();
    if (!self || self->stopped) return;
    self->tick();
    self->scheduleTick();
  });
}

// Runs the sessions' and discovery's timers: drops links that never
// opened in time, sends gathered offers, announces when discovery says so.
void Node::Impl::tick() {
  const swarm::Time t = now();
  const bool refreshStats = t - lastLinkStats > kLinkStatsPeriod;
  if (refreshStats) lastLinkStats = t;
  closing.sweep(t);
  if (tracker) tracker->tick(t);
  for (auto& [id, f] : files) {
    if (refreshStats) {
      for (auto& [k, p] : f.peers) {
        if (p->opened && p->link) requestLinkStats(f, *p);
      }
    }
    for (auto it = f.peers.begin(); it != f.peers.end();) {
      auto hold = (it++)->second;  // runAuth may drop it
      if (hold->auth && !hold->auth->proven()) runAuth(f, *hold, hold->auth->tick(t));
    }
    f.session->tick(t);
    auto d = f.discovery->tick(t, swarmView(f));
    for (const auto& drop : d.drops) dropPeer(f, drop.key, std::string(drop.why));
    if (d.sendOffers) sendOffers(f);
    if (d.announce != swarm::Announce::kNo) announce(f, signaling::Event::kNone, d.announce == swarm::Announce::kQuick);
  }
}

swarm::SwarmView Node::Impl::swarmView(const FileState& f) const {
  swarm::SwarmView v;
  v.member = f.serving || f.wanted;
  v.leeching = f.leeching();
  v.connected = f.session->stats().peers;
  // usefulPeers() is O(peers x chunks); it only matters with enough peers.
  if (v.leeching && v.connected >= f.discovery->options().maxPeers / 2) v.useful = f.session->usefulPeers();
  return v;
}

// ---- files ----------------------------------------------------------------

template <class T>
void Node::Impl::storeCall(std::string_view op, std::function<void(ChunkStorage&, std::function<void(Result<T>)>)> task,
                           std::function<void(Result<T>)> done) {
  const std::uint64_t req = nextRequest++;
  pending[req] = [done = std::move(done)](void* r) { done(std::move(*static_cast<Result<T>*>(r))); };
  std::weak_ptr<Impl> weak = shared_from_this();
  auto finish = [weak, req](Result<T> r) {
    auto self = weak.lock();
    if (!self) return;
    auto it = self->pending.find(req);
    if (it == self->pending.end()) return;
    auto cb = std::move(it->second);
    self->pending.erase(it);
    cb(&r);
  };
  const bool queued = onStore([task = std::move(task), finish](ChunkStorage& st, const ToLoop& toLoop) {
    task(st, [toLoop, finish](Result<T> res) {
      toLoop([finish, res = std::make_shared<Result<T>>(std::move(res))] { finish(std::move(*res)); });
    });
  });
  if (!queued) rt.post([finish, op = std::string(op)] { finish(fail(Errc::kBackPressure, op, "the store queue is full")); });
}

void Node::Impl::loadFile(const FileId& id, std::function<void(Result<FileState*>)> done) {
  Loading& entry = loading[id];
  ++entry.count;
  const std::uint64_t epoch = entry.epoch;
  // On the loop: the file may have been made meanwhile (another load), or forgotten (cancelled).
  auto made = [this, id, epoch, done = std::move(done)](Result<Stored> s) {
    auto l = loading.find(id);
    const bool forgotten = l == loading.end() || l->second.epoch != epoch;
    if (l != loading.end() && --l->second.count == 0) loading.erase(l);
    if (forgotten) return done(fail(Errc::kCancelled, "load", "the file was forgotten meanwhile"));
    if (auto it = files.find(id); it != files.end()) return done(&it->second);
    if (!s) return done(fail(s.error()));
    done(&makeFile(id, std::move(*s)));
  };
  if (files.count(id)) {
    std::weak_ptr<Impl> weak = shared_from_this();
    return rt.post([weak, made] {
      if (weak.lock()) made(Stored{});
    });
  }
  storeCall<Stored>("load", [id](ChunkStorage& st, std::function<void(Result<Stored>)> back) {
    st.getManifest(id, [&st, id, back](Result<Manifest> m) {
      if (!m) return back(m.error().code() == Errc::kNotFound ? Result<Stored>(Stored{}) : Result<Stored>(fail(m.error())));
      st.presentChunks(id, [back, m = std::move(*m)](Result<std::vector<bool>> p) mutable {
        if (!p) return back(fail(p.error()));
        back(Stored{std::move(m), std::move(*p)});
      });
    });
  }, std::move(made));
}

void Node::Impl::storeGivenManifest(const Manifest& m, std::function<void(Result<std::vector<bool>>)> done) {
  storeCall<std::vector<bool>>("store manifest", [m](ChunkStorage& st, std::function<void(Result<std::vector<bool>>)> back) {
    st.storeManifest(m, /*pinned=*/true, [&st, back](Result<FileId> id) {
      if (!id) return back(fail(id.error()));
      st.presentChunks(*id, back);
    });
  }, std::move(done));
}

FileState& Node::Impl::makeFile(const FileId& id, Stored stored) {
  std::optional<Manifest> manifest = std::move(stored.manifest);
  std::vector<bool> have = std::move(stored.have);
  FileState& f = files[id];
  f.id = id;
  f.generation = nextGeneration++;
  f.infoHash = swarmKey(id);
  f.host = makeHost(id);
  wire::PeerId self{};
  std::copy(peerId.begin(), peerId.end(), self.begin());
  f.session = std::make_unique<swarm::Session>(id, self, std::move(manifest), std::move(have), *f.host, opts.swarm, rng());
  f.discovery.emplace(peerId, opts.discovery);
  for (const Id20& b : banned) {
    wire::PeerId w{};
    std::copy(b.begin(), b.end(), w.begin());
    f.session->banPeerId(w);
  }
  return f;
}

Status Node::Impl::seedLoaded(FileState& f) {
  if (!f.manifest()) return fail(Errc::kNotFound, "seed", "no manifest for " + f.id.hex() + " in the store");
  f.serving = true;
  f.session->setServing(true);
  announce(f, signaling::Event::kStarted);
  return {};
}

void Node::Impl::seedAsync(const FileId& id, std::function<void(Status)> done) {
  std::weak_ptr<Impl> weak = shared_from_this();
  loadFile(id, [weak, done](Result<FileState*> f) {
    auto self = weak.lock();
    if (!self) return;
    done(f ? self->seedLoaded(**f) : Status(fail(f.error())));
  });
}

void Node::Impl::fetchAsync(const FileId& id, std::optional<Manifest> manifest, std::function<void(Status)> done) {
  if (manifest) {
    auto mid = manifestId(*manifest);
    if (!mid || *mid != id) {
      return rt.post([done] { done(fail(Errc::kIntegrity, "fetch", "manifest does not match the file id")); });
    }
  }
  std::weak_ptr<Impl> weak = shared_from_this();
  loadFile(id, [weak, id, manifest, done](Result<FileState*> f) {
    auto self = weak.lock();
    if (!self) return;
    if (!f) return done(fail(f.error()));
    if (!manifest || (*f)->manifest()) return done(self->fetchLoaded(**f));
    self->storeGivenManifest(*manifest, [weak, id, manifest, done](Result<std::vector<bool>> present) {
      auto s = weak.lock();
      if (!s) return;
      auto it = s->files.find(id);
      if (it == s->files.end()) return done(fail(Errc::kCancelled, "fetch", "the file was forgotten meanwhile"));
      if (!present) return done(fail(present.error()));
      FileState& file = it->second;
      if (!file.manifest()) {
        if (auto st = file.session->setManifest(*manifest, std::move(*present), s->now()); !st) return done(st);
      }
      done(s->fetchLoaded(file));
    });
  });
}

void Node::Impl::stopSeeding(const FileId& id) {
  auto it = files.find(id);
  if (it == files.end()) return;
  FileState& f = it->second;
  f.serving = false;
  f.session->setServing(false);
  if (!f.wanted) {
    announce(f, signaling::Event::kStopped);
    f.session->goodbyeAll(wire::GoodbyeReason::kNormal, "no longer seeding");
    std::vector<std::uint64_t> keys;
    for (auto& [k, p] : f.peers) keys.push_back(k);
    std::weak_ptr<Impl> weak = shared_from_this();
    rt.post([weak, id, keys] {
      auto self = weak.lock();
      if (!self) return;
      if (auto it2 = self->files.find(id); it2 != self->files.end()) {
        for (auto k : keys) self->dropPeer(it2->second, k, "stopped serving");
      }
    });
  }
}

Status Node::Impl::fetchLoaded(FileState& f) {
  f.wanted = true;
  // Fires onManifest (if known and not complete) and onComplete (if complete);
  // both are posted, and each listener hears them once.
  f.session->setWanted(true, now());
  announce(f, signaling::Event::kStarted);
  return {};
}

void Node::Impl::setStreaming(const FileId& id, bool on, ChunkIndex cursor, std::size_t lookahead) {
  if (auto it = files.find(id); it != files.end()) it->second.session->setStreaming(on, cursor, lookahead, now());
}

std::optional<swarm::PeerKey> Node::Impl::keyOf(const FileState& f, const std::string& peerIdHex) const {
  const swarm::Time t = now();
  for (const auto& [k, p] : f.peers) {
    auto s = f.session->peerStats(p->key, t);
    if (s && s->handshaken && toHex(s->peerId) == peerIdHex) return p->key;
  }
  return std::nullopt;
}

void Node::Impl::forget(const FileId& id) {
  // Seeds and fetches of it whose store read is still out are cancelled.
  if (auto l = loading.find(id); l != loading.end()) ++l->second.epoch;
  auto it = files.find(id);
  if (it == files.end()) return;
  FileState& f = it->second;
  std::erase_if(listeners, [&](const auto& l) { return l.second.file == id; });
  announce(f, signaling::Event::kStopped);
  f.session->goodbyeAll(wire::GoodbyeReason::kNormal, "file removed");
  // As in dropPeer: close() lets the GOODBYEs out first, and each link is
  // kept until its close completes; its events are ignored (the file is gone).
  for (auto& [k, p] : f.peers) retire(f, p);
  files.erase(it);
}

std::optional<FileProgress> Node::Impl::progress(const FileId& id) const {
  auto it = files.find(id);
  if (it == files.end()) return std::nullopt;
  const FileState& f = it->second;
  auto st = f.session->stats();
  FileProgress out;
  out.fileId = id;
  out.haveManifest = st.haveManifest;
  out.bytesTotal = st.bytesTotal;
  out.chunksTotal = st.chunksTotal;
  out.bytesVerified = st.bytesVerified;
  out.chunksHave = st.chunksHave;
  out.chunksFetched = st.chunksFetched;
  out.peers = st.peers;
  out.bytesUploaded = st.uploaded;
  out.bytesDownloaded = st.downloaded;
  out.swarm = st;
  return out;
}

std::optional<NodePeerStats> Node::Impl::statsOf(const FileState& f, const Peer& p, swarm::Time now) const {
  auto s = f.session->peerStats(p.key, now);
  if (!s || !s->handshaken) return std::nullopt;
  NodePeerStats n;
  n.fileId = f.id;
  n.peerId = toHex(s->peerId);
  n.client = clientOf(n.peerId);
  n.swarm = *s;
  n.rttSeconds = p.linkStats.rttSeconds;
  n.localCandidateType = p.linkStats.localCandidateType;
  n.remoteCandidateType = p.linkStats.remoteCandidateType;
  return n;
}

std::vector<NodePeerStats> Node::Impl::peerStats() const {
  std::vector<NodePeerStats> out;
  const swarm::Time now = this->now();
  for (const auto& [id, f] : files) {
    for (const auto& [k, p] : f.peers) {
      if (auto s = statsOf(f, *p, now)) out.push_back(std::move(*s));
    }
  }
  return out;
}

// ---- listeners --------------------------------------------------------------

Result<ListenerId> Node::Impl::listen(const FileId& id, FetchEvents events) {
  auto it = files.find(id);
  if (it == files.end()) return fail(Errc::kNotFound, "listen", "the node neither seeds nor fetches " + id.hex());
  const ListenerId lid = nextListener++;
  listeners.emplace(lid, Listener{id, std::move(events)});
  // What a listener that was there all along has heard: the manifest, and
  // the end. (Chunks are asked: have().)
  if (const auto& m = it->second.manifest()) {
    Listener& l = listeners.at(lid);
    l.manifestPosted = true;
    postTo({lid}, [m = *m](const FetchEvents& ev) {
      if (ev.onManifest) ev.onManifest(m);
    });
    if (it->second.complete()) {
      l.completePosted = true;
      postTo({lid}, [](const FetchEvents& ev) {
        if (ev.onComplete) ev.onComplete();
      });
    }
  }
  return lid;
}

void Node::Impl::unlisten(ListenerId id) { listeners.erase(id); }

void Node::Impl::postEvent(const FileId& file, const std::function<bool(Listener&)>& pick,
                           std::function<void(const FetchEvents&)> deliver) {
  std::vector<ListenerId> to;
  for (auto& [lid, l] : listeners) {
    if (l.file == file && pick(l)) to.push_back(lid);
  }
  postTo(std::move(to), std::move(deliver));
}

void Node::Impl::postTo(std::vector<ListenerId> to, std::function<void(const FetchEvents&)> deliver) {
  if (to.empty()) return;
  std::weak_ptr<Impl> weak = shared_from_this();
  rt.post([weak, to = std::move(to), deliver = std::move(deliver)] {
    for (ListenerId lid : to) {
      // Looked up again for each: the one before may have removed it, or the node.
      auto self = weak.lock();
      if (!self) return;
      auto it = self->listeners.find(lid);
      if (it == self->listeners.end()) continue;
      const FetchEvents events = it->second.events;  // a handler may unlisten itself
      deliver(events);
    }
  });
}

void Node::Impl::postManifest(const FileId& file, const Manifest& m) {
  postEvent(file, [](Listener& l) { return !std::exchange(l.manifestPosted, true); }, [m](const FetchEvents& ev) {
    if (ev.onManifest) ev.onManifest(m);
  });
}

void Node::Impl::postComplete(const FileId& file) {
  postEvent(file, [](Listener& l) { return !std::exchange(l.completePosted, true); }, [](const FetchEvents& ev) {
    if (ev.onComplete) ev.onComplete();
  });
}

// ---- Node -----------------------------------------------------------------------

Node::Node(Runtime& rt, ChunkStorage& storage, transport::LinkFactory& links, NodeOptions options)
    : impl_(std::make_shared<Impl>(rt, storage, links, std::move(options))) {}
Node::~Node() = default;
Status Node::start() { return impl_->start(); }
void Node::stop(std::function<void()> done) { impl_->stop(std::move(done)); }
void Node::seed(const FileId& id, std::function<void(Status)> done) { impl_->seedAsync(id, std::move(done)); }
void Node::fetch(const FileId& id, std::optional<Manifest> m, FetchEvents e, std::function<void(Result<ListenerId>)> done) {
  std::weak_ptr<Impl> weak = impl_;
  impl_->fetchAsync(id, std::move(m), [weak, id, e = std::move(e), done = std::move(done)](Status st) {
    auto self = weak.lock();
    if (!self) return;
    if (!st) return done(fail(st.error()));
    done(self->listen(id, e));
  });
}
Result<ListenerId> Node::listen(const FileId& id, FetchEvents e) { return impl_->listen(id, std::move(e)); }
void Node::unlisten(ListenerId id) { impl_->unlisten(id); }
bool Node::have(const FileId& id, ChunkIndex index) const {
  auto it = impl_->files.find(id);
  return it != impl_->files.end() && it->second.session->have(index);
}
std::optional<FileProgress> Node::progress(const FileId& id) const { return impl_->progress(id); }
std::vector<NodePeerStats> Node::peerStats() const { return impl_->peerStats(); }
std::vector<NodePeerStats> Node::closedLinks() const { return impl_->ledger.all(); }
std::vector<NodePeerStats> Node::closedLinks(const FileId& id) const { return impl_->ledger.of(id); }
void Node::stopSeeding(const FileId& id) { impl_->stopSeeding(id); }
void Node::setStreaming(const FileId& id, bool on, ChunkIndex cursor, std::size_t lookahead) {
  impl_->setStreaming(id, on, cursor, lookahead);
}
std::string Node::chunkSource(const FileId& id, ChunkIndex index) const {
  auto it = impl_->files.find(id);
  return it == impl_->files.end() ? "" : it->second.session->chunkSource(index);
}
Status Node::setOrigins(const FileId& id, std::vector<std::string> urls) {
  auto it = impl_->files.find(id);
  if (it == impl_->files.end()) return fail(Errc::kNotFound, "web seeds", "the node neither seeds nor fetches " + id.hex());
  return it->second.session->setOrigins(std::move(urls), impl_->now());
}
namespace {
// call(session, key) on the session of file `id` and its link to the peer (hex id).
template <class F>
Status onLinkedPeer(Node::Impl& impl, const FileId& id, const std::string& peerIdHex, const char* op, F&& call) {
  auto it = impl.files.find(id);
  if (it == impl.files.end()) return fail(Errc::kNotFound, op, "the node neither seeds nor fetches " + id.hex());
  auto key = impl.keyOf(it->second, peerIdHex);
  if (!key) return fail(Errc::kNotFound, op, "no link to peer " + peerIdHex + " for " + id.hex());
  return call(*it->second.session, *key);
}
}  // namespace

Status Node::wish(const FileId& id, const std::string& peerIdHex, ChunkIndex index) {
  return onLinkedPeer(*impl_, id, peerIdHex, "wish",
                      [&](swarm::Session& s, swarm::PeerKey k) { return s.wish(k, index, impl_->now()); });
}
Status Node::offer(const FileId& id, const std::string& peerIdHex, ChunkIndex index) {
  return onLinkedPeer(*impl_, id, peerIdHex, "offer",
                      [&](swarm::Session& s, swarm::PeerKey k) { return s.offer(k, index, impl_->now()); });
}
bool Node::peerHas(const FileId& id, const std::string& peerIdHex, ChunkIndex index) const {
  auto it = impl_->files.find(id);
  if (it == impl_->files.end()) return false;
  auto key = impl_->keyOf(it->second, peerIdHex);
  return key && it->second.session->peerHas(*key, index);
}
void Node::announceNow() {
  if (!impl_->stopped) impl_->announceAll(false);
}
void Node::forget(const FileId& id) { impl_->forget(id); }

void Node::removeStored(const FileId& id, std::function<void(Status)> done) {
  impl_->forget(id);
  impl_->storeCall<bool>("remove", [id](ChunkStorage& st, std::function<void(Result<bool>)> back) {
    st.deleteFile(id, [back](Status r) { back(r ? Result<bool>(true) : Result<bool>(fail(r.error()))); });
  }, [done = std::move(done)](Result<bool> r) { done(r ? Status{} : Status(fail(r.error()))); });
}
std::string Node::peerIdHex() const { return toHex(impl_->peerId); }

}  // namespace p2pcdn::node
