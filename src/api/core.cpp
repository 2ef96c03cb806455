// P2PCDN::Core: lifecycle (the loop thread), fetch bookkeeping, seeding, stats.
#include <algorithm>
#include <cstdio>
#include <type_traits>

#include "api/core.hpp"
#include "swarm/rate.hpp"
#include "transport/webrtc/webrtc_link.hpp"

namespace p2pcdn {

using Core = P2PCDN::Core;
namespace asio = boost::asio;

namespace api {

Unexpected notConnected(const std::string& op) {
  return fail(Errc::kInvalidArgument, op, "not connected: call connect() first");
}

void Worker::add(std::function<void()> job) {
  std::lock_guard tl(threadMu_);
  {
    std::lock_guard lock(s_->mu);
    if (!thread_.joinable()) s_->stop = false;
    s_->jobs.push_back(std::move(job));
    s_->cv.notify_one();
  }
  if (!thread_.joinable()) thread_ = std::thread(&Worker::run, s_);
}

void Worker::run(std::shared_ptr<Shared> s) {
  s->id = std::this_thread::get_id();
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(s->mu);
      s->cv.wait(lock, [&] { return s->stop || !s->jobs.empty(); });
      if (s->jobs.empty()) break;
      job = std::move(s->jobs.front());
      s->jobs.pop_front();
    }
    job();
  }
  s->id = std::thread::id{};
}

void Worker::shutdown() {
  std::thread t;
  {
    std::lock_guard tl(threadMu_);
    std::lock_guard lock(s_->mu);
    s_->stop = true;
    s_->cv.notify_all();
    t = std::move(thread_);
  }
  if (!t.joinable()) return;
  if (t.get_id() == std::this_thread::get_id()) {
    t.detach();
  } else {
    t.join();
  }
}

namespace {

// One libwebrtc factory (three threads) for every P2PCDN of the process; the
// last one to disconnect destroys it, after its links are gone.
std::mutex gFactoryMu;
std::weak_ptr<transport::LinkFactory> gFactory;

Result<std::shared_ptr<transport::LinkFactory>> sharedFactory() {
  std::lock_guard lock(gFactoryMu);
  if (auto f = gFactory.lock()) return f;
  auto made = transport::makeWebRtcLinkFactory();
  if (!made) return fail(made.error());
  std::shared_ptr<transport::LinkFactory> f(std::move(*made));
  gFactory = f;
  return f;
}

std::shared_ptr<swarm::TokenBucket> bucket(std::uint64_t rate) {
  if (rate == 0) return nullptr;
  // Half a second of traffic, at least one whole PIECE message.
  const double r = static_cast<double>(rate);
  return std::make_shared<swarm::TokenBucket>(r, std::max(r / 2, 262144.0));
}

bool powerOfTwo(std::uint32_t v) { return v && (v & (v - 1)) == 0; }

}  // namespace

StoreLayout storeLayout(const std::string& storage) {
  if (storage.empty() || storage == kMemoryStorage) return {};
  std::filesystem::path p = storage;
  std::error_code ec;
  if (p.extension() == ".db" && !std::filesystem::is_directory(p, ec)) {
    return {p.parent_path().empty() ? std::filesystem::path(".") : p.parent_path(), p};
  }
  return {p, p / "store.db"};
}

}  // namespace api

// importFile reads layout.home on the caller's or the worker's thread while
// connect() may run on another: it must never be assigned after construction.
static_assert(std::is_const_v<decltype(P2PCDN::Core::layout)> && std::is_const_v<decltype(P2PCDN::Core::opts)>);

Core::~Core() {
  disconnect();
  // Destroyed by the last reference, held by the loop or worker thread at its
  // end: that thread is past using the Core.
  if (loop.joinable()) loop.detach();
}

Status Core::blockingAllowed(const std::string& op) const {
  if (onLoop()) {
    return fail(Errc::kInvalidArgument, op,
                "blocking call from a callback on the P2PCDN's loop thread; use the *Async form");
  }
  return {};
}

// ---- lifecycle ---------------------------------------------------------------

Status Core::connect() {
  const std::string op = "connect";
  if (onLoop()) return fail(Errc::kInvalidArgument, op, "called from a P2PCDN callback");
  std::lock_guard life(lifeMu);
  {
    std::unique_lock lock(mu);
    if (state == State::kRunning) return {};
    bool leftover = state == State::kStopping || loop.joinable();
    lock.unlock();
    if (leftover) disconnect();  // a disconnect() from a callback left the thread to join
  }
  if (opts.trackerUrl.empty()) return fail(Errc::kInvalidArgument, op, "no trackerUrl (ws://host:port)");
  if (!api::powerOfTwo(opts.chunkSize) || opts.chunkSize < kMinChunkSize || opts.chunkSize > kMaxChunkSize) {
    return fail(Errc::kInvalidArgument, op,
                "chunkSize " + std::to_string(opts.chunkSize) + " is not a power of two in [1 KiB, 16 MiB]");
  }
  if (opts.maxConcurrentDownloads == 0 || opts.maxConcurrentUploads == 0) {
    return fail(Errc::kInvalidArgument, op, "maxConcurrentDownloads and maxConcurrentUploads must be at least 1");
  }

  // The store: memory, or SQLite laid out as the CLI's home (store.db, keys/).
  StorageOptions so;
  if (opts.storageQuota) so.quotaBytes = opts.storageQuota;
  if (layout.db.empty()) {
    storage = makeMemoryStorage(so);
  } else {
    std::error_code ec;
    std::filesystem::create_directories(layout.home, ec);
    if (ec) return fail(Errc::kIo, op, "create " + layout.home.string() + ": " + ec.message());
    auto s = openSqliteStorage(layout.db, so);
    if (!s) return fail(s.error());
    storage = std::move(*s);
  }
  store = std::make_unique<BlockingStorage>(*storage);

  auto f = api::sharedFactory();
  if (!f) {
    store.reset();
    storage.reset();
    return fail(f.error());
  }
  links = *f;

  node::NodeOptions no;
  no.trackerUrl = opts.trackerUrl;
  no.link.iceServers = opts.iceServers;
  no.link.loopbackOnly = opts.loopbackOnly;
  no.discovery.announceInterval = opts.discoveryInterval;
  no.swarm.maxConcurrentDownloads = opts.maxConcurrentDownloads;
  no.swarm.maxConcurrentUploads = opts.maxConcurrentUploads;
  no.swarm.perPeerUpRate = static_cast<double>(opts.perPeerUploadLimit);
  no.swarm.perPeerDownRate = static_cast<double>(opts.perPeerDownloadLimit);
  no.swarm.globalUp = api::bucket(opts.uploadLimit);
  no.swarm.globalDown = api::bucket(opts.downloadLimit);
  no.swarm.superSeed = opts.superSeed;

  {
    std::lock_guard lock(mu);
    io = std::make_unique<asio::io_context>(1);
    work.emplace(io->get_executor());
    node = std::make_unique<node::Node>(*io, *storage, *links, std::move(no));
    stopping = false;
    state = State::kRunning;
    finished = false;
    peerIdHex.clear();
    loop = std::thread([self = shared_from_this()] { self->runLoop(); });
  }
  auto started = call<std::string>(op, [this]() -> Result<std::string> {
    if (!ready()) return api::notConnected("connect");
    P2PCDN_TRY(node->start());
    schedulePoll();
    return node->peerIdHex();
  });
  if (!started) {
    disconnect();
    return fail(started.error());
  }
  std::lock_guard lock(mu);
  peerIdHex = *started;
  return {};
}

void Core::runLoop() {
  loopId = std::this_thread::get_id();
  io->run();
  // Epilogue, still on this thread: the node (and its links) before the
  // io_context, whose unrun handlers may hold links and completions (they fire
  // kCancelled now), then the store, the worker, and the link factory last.
  node.reset();
  std::unique_ptr<asio::io_context> old;
  {
    std::lock_guard lock(mu);
    old = std::move(io);
  }
  old.reset();
  worker.shutdown();
  store.reset();
  storage.reset();
  links.reset();
  loopId = std::thread::id{};
  std::lock_guard lock(mu);
  state = State::kIdle;
  finished = true;
  finishedCv.notify_all();
}

void Core::disconnect() {
  std::unique_lock lock(mu);
  if (state == State::kRunning) {
    state = State::kStopping;
    asio::post(*io, [self = shared_from_this()] { self->shutdownOnLoop(); });
  }
  if (onLoop() || worker.onWorker()) return;  // the loop (or a job) cannot wait for itself; ends on its own
  if (!finished) {
    // Node::stop takes ~0.2 s; if something keeps the loop busy far longer, stop it.
    if (!finishedCv.wait_for(lock, std::chrono::seconds(10), [&] { return finished; })) {
      if (io) io->stop();
      finishedCv.wait(lock, [&] { return finished; });
    }
  }
  std::thread t = std::move(loop);
  lock.unlock();
  if (t.joinable()) {
    // The last reference to the Core may be the loop thread's own, at its very end.
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else {
      t.join();
    }
  }
}

void Core::shutdownOnLoop() {
  if (stopping) return;
  stopping = true;
  pollTimer.reset();
  seedTimers.clear();
  auto all = std::move(fetches);
  fetches.clear();
  for (auto& [id, f] : all) {
    for (auto& [k, l] : f.listeners) {
      l.timer.reset();
      if (l.onDone) l.onDone(fail(Errc::kCancelled, "download " + id.hex().substr(0, 16), "disconnected"));
    }
  }
  for (auto& w : streams) {
    if (auto s = w.lock()) {
      s->timer.reset();
      if (!s->error) s->error = Error(Errc::kCancelled, "stream", "disconnected");
      if (s->waiting) streamFinishWait(*s, fail(*s->error));
    }
  }
  streams.clear();
  if (!node) {
    work.reset();
    return;
  }
  node->stop([self = shared_from_this()] {
    // Not inside the node's own call: destroy it on the next turn.
    asio::post(*self->io, [self] {
      self->node.reset();
      self->work.reset();
    });
  });
}

// ---- peers -------------------------------------------------------------------

void Core::schedulePoll() {
  if (!pollTimer) pollTimer = std::make_unique<asio::steady_timer>(*io);
  pollTimer->expires_after(std::chrono::seconds(1));
  std::weak_ptr<Core> weak = shared_from_this();
  pollTimer->async_wait([weak](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || !self->ready()) return;
    self->snapshotPeers();
    self->schedulePoll();
  });
}

// Keeps the last numbers of every link, so a peer that has just gone (two
// complete peers drop their link) still shows in getPeerStats().
void Core::snapshotPeers() {
  if (!ready()) return;
  std::set<std::uint64_t> seen;
  for (const node::NodePeerStats& n : node->peerStats()) {
    api::PeerRecord& r = peers[n.swarm.key];
    PeerStats& p = r.stats;
    p.peerId = n.peerId;
    p.fileId = n.fileId;
    p.connected = true;
    p.seeder = n.swarm.seeder;
    p.bytesUp = n.swarm.bytesUp;
    p.bytesDown = n.swarm.bytesDown;
    p.upRate = n.swarm.upRate;
    p.downRate = n.swarm.downRate;
    if (n.rttSeconds) p.rttSeconds = n.rttSeconds;
    if (!n.localCandidateType.empty()) p.localCandidateType = n.localCandidateType;
    if (!n.remoteCandidateType.empty()) p.remoteCandidateType = n.remoteCandidateType;
    p.chunksServed = n.swarm.chunksServed;
    p.chunksReceived = n.swarm.chunksReceived;
    p.failures = n.swarm.failures;
    p.badChunks = n.swarm.badChunks;
    r.closedOrder = 0;
    seen.insert(n.swarm.key);
  }
  std::size_t closed = 0;
  for (auto& [k, r] : peers) {
    if (!seen.count(k) && r.stats.connected) {
      r.stats.connected = false;
      r.stats.upRate = r.stats.downRate = 0;
      r.closedOrder = ++closedLinks;
    }
    if (!r.stats.connected) ++closed;
  }
  constexpr std::size_t kKeepClosed = 256;
  while (closed > kKeepClosed) {
    auto oldest = peers.end();
    for (auto it = peers.begin(); it != peers.end(); ++it) {
      if (it->second.closedOrder && (oldest == peers.end() || it->second.closedOrder < oldest->second.closedOrder)) {
        oldest = it;
      }
    }
    peers.erase(oldest);
    --closed;
  }
}

// ---- fetches -----------------------------------------------------------------

Progress Core::progressOf(const FileId& id, std::optional<ChunkIndex> chunk) const {
  Progress p;
  p.fileId = id;
  p.chunk = chunk;
  if (!node) return p;
  if (auto fp = node->progress(id)) {
    p.bytesVerified = fp->bytesVerified;
    p.bytesTotal = fp->bytesTotal;
    p.chunksHave = fp->chunksHave;
    p.chunksTotal = fp->chunksTotal;
    p.peers = fp->peers;
    p.progress = fp->bytesTotal ? static_cast<double>(fp->bytesVerified) / static_cast<double>(fp->bytesTotal)
                                : (fp->chunksTotal && fp->chunksHave == fp->chunksTotal ? 1.0 : 0.0);
  }
  return p;
}

// The node's events only post: the dispatch (user callbacks included) runs on
// a later turn of the loop, outside every Node call.
node::FetchEvents Core::fetchEvents(const FileId& id, std::uint64_t generation) {
  std::weak_ptr<Core> weak = shared_from_this();
  node::FetchEvents ev;
  ev.onManifest = [weak, id, generation](const Manifest& m) {
    if (auto self = weak.lock()) {
      asio::post(*self->io, [weak, id, generation, m] {
        if (auto s = weak.lock()) s->fetchManifest(id, generation, m);
      });
    }
  };
  ev.onChunk = [weak, id, generation](ChunkIndex i) {
    if (auto self = weak.lock()) {
      asio::post(*self->io, [weak, id, generation, i] {
        if (auto s = weak.lock()) s->fetchChunk(id, generation, i);
      });
    }
  };
  ev.onComplete = [weak, id, generation] {
    if (auto self = weak.lock()) {
      asio::post(*self->io, [weak, id, generation] {
        if (auto s = weak.lock()) s->fetchDone(id, generation, {});
      });
    }
  };
  ev.onError = [weak, id, generation](const Error& e) {
    if (auto self = weak.lock()) {
      asio::post(*self->io, [weak, id, generation, e] {
        if (auto s = weak.lock()) s->fetchDone(id, generation, fail(e));
      });
    }
  };
  return ev;
}

api::Fetch* Core::fetchOf(const FileId& id, std::uint64_t generation) {
  auto it = fetches.find(id);
  if (it == fetches.end() || it->second.generation != generation) return nullptr;
  return &it->second;
}

Result<std::uint64_t> Core::listen(const FileId& id, const std::optional<Manifest>& manifest, api::Listener l,
                                   std::chrono::milliseconds timeout, const std::string& op) {
  if (!ready()) return api::notConnected(op);
  auto it = fetches.find(id);
  const bool fresh = it == fetches.end();
  if (fresh) {
    it = fetches.emplace(id, api::Fetch{}).first;
    it->second.generation = nextGeneration++;
  }
  api::Fetch& f = it->second;
  const std::uint64_t lid = nextListener++;
  if (timeout.count() > 0) {
    l.timer = std::make_unique<asio::steady_timer>(*io, timeout);
    std::weak_ptr<Core> weak = shared_from_this();
    l.timer->async_wait([weak, id, lid, timeout, op](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!ec && self) self->fetchTimedOut(id, lid, timeout, op);
    });
  }
  f.listeners.emplace(lid, std::move(l));
  if (fresh && completeInNode(id)) {
    // The node fires onComplete once per file; a second fetch of a file it
    // already holds complete would wait forever. Report it from the store.
    auto m = store->getManifest(id);
    if (!m) {
      fetches.erase(id);
      return fail(m.error());
    }
    std::weak_ptr<Core> weak = shared_from_this();
    asio::post(*io, [weak, id, gen = f.generation, m = std::move(*m)] {
      auto self = weak.lock();
      if (!self) return;
      self->fetchManifest(id, gen, m);
      self->fetchDone(id, gen, {});
    });
  } else if (fresh || (manifest && !f.manifest)) {
    // (Again, when a manifest arrives for a fetch that started without one.)
    inNode.insert(id);
    auto st = node->fetch(id, manifest, fetchEvents(id, f.generation));
    if (!st) {
      if (fresh) {
        fetches.erase(id);
      } else {
        f.listeners.erase(lid);
      }
      return fail(st.error());
    }
  } else if (f.manifest) {
    // Joining a running fetch: the manifest news went out already.
    std::weak_ptr<Core> weak = shared_from_this();
    asio::post(*io, [weak, id, gen = f.generation, lid, m = *f.manifest] {
      auto self = weak.lock();
      if (!self) return;
      auto* fp = self->fetchOf(id, gen);
      if (!fp) return;
      auto li = fp->listeners.find(lid);
      if (li != fp->listeners.end() && li->second.onManifest) li->second.onManifest(m);
    });
  }
  return lid;
}

bool Core::completeInNode(const FileId& id) const {
  if (!inNode.count(id)) return false;
  auto p = node->progress(id);
  return p && p->haveManifest && p->chunksHave == p->chunksTotal;
}

void Core::unlisten(const FileId& id, std::uint64_t listener) {
  auto it = fetches.find(id);
  if (it != fetches.end()) it->second.listeners.erase(listener);
}

// Each callback is looked up again before it runs: the one before it may have
// removed listeners (or the whole fetch).
void Core::fetchManifest(const FileId& id, std::uint64_t generation, const Manifest& m) {
  auto* f = fetchOf(id, generation);
  if (!f) return;
  f->manifest = m;
  std::vector<std::uint64_t> ids;
  for (auto& [k, l] : f->listeners) ids.push_back(k);
  for (auto k : ids) {
    f = fetchOf(id, generation);
    if (!f) return;
    auto it = f->listeners.find(k);
    if (it == f->listeners.end()) continue;
    if (it->second.onManifest) {
      auto cb = it->second.onManifest;
      cb(m);
    }
    f = fetchOf(id, generation);
    if (!f) return;
    it = f->listeners.find(k);
    if (it != f->listeners.end() && it->second.onProgress) {
      auto cb = it->second.onProgress;
      cb(progressOf(id, std::nullopt));
    }
  }
}

void Core::fetchChunk(const FileId& id, std::uint64_t generation, ChunkIndex index) {
  auto* f = fetchOf(id, generation);
  if (!f) return;
  std::vector<std::uint64_t> ids;
  for (auto& [k, l] : f->listeners) ids.push_back(k);
  const Progress p = progressOf(id, index);
  for (auto k : ids) {
    f = fetchOf(id, generation);
    if (!f) return;
    auto it = f->listeners.find(k);
    if (it == f->listeners.end()) continue;
    if (it->second.onChunk) {
      auto cb = it->second.onChunk;
      cb(index);
    }
    f = fetchOf(id, generation);
    if (!f) return;
    it = f->listeners.find(k);
    if (it != f->listeners.end() && it->second.onProgress) {
      auto cb = it->second.onProgress;
      cb(p);
    }
  }
}

void Core::fetchDone(const FileId& id, std::uint64_t generation, Status st) {
  if (!fetchOf(id, generation)) return;
  auto entry = fetches.extract(id);
  api::Fetch f = std::move(entry.mapped());
  if (st) afterComplete(id);
  for (auto& [k, l] : f.listeners) {
    l.timer.reset();
    if (l.onDone) l.onDone(st);
  }
}

void Core::fetchTimedOut(const FileId& id, std::uint64_t listener, std::chrono::milliseconds timeout,
                         const std::string& op) {
  auto it = fetches.find(id);
  if (it == fetches.end()) return;
  auto li = it->second.listeners.find(listener);
  if (li == it->second.listeners.end()) return;
  api::Listener l = std::move(li->second);
  it->second.listeners.erase(li);
  Progress p = progressOf(id, std::nullopt);
  std::string detail = "no peer delivered " + id.hex().substr(0, 16) + "... within " +
                       std::to_string(timeout.count()) + " ms (" + std::to_string(p.peers) + " peers, " +
                       (p.chunksTotal ? std::to_string(p.chunksHave) + "/" + std::to_string(p.chunksTotal) + " chunks"
                                      : std::string("manifest not received")) +
                       ")";
  if (it->second.listeners.empty()) {
    // Nobody waits any more: stop fetching (what is stored stays: a later call resumes).
    fetches.erase(it);
    forgetInNode(id);
  }
  if (l.onDone) l.onDone(fail(Errc::kTimedOut, op, detail));
}

// ---- seeding -----------------------------------------------------------------

Status Core::startSeeding(const FileId& id) {
  P2PCDN_TRY(node->seed(id));
  inNode.insert(id);
  serving.insert(id);
  stoppedSeeding.erase(id);
  armSeedTimer(id);
  return {};
}

void Core::armSeedTimer(const FileId& id) {
  seedTimers.erase(id);
  if (opts.seedDuration.count() <= 0) return;
  auto t = std::make_unique<asio::steady_timer>(*io, opts.seedDuration);
  std::weak_ptr<Core> weak = shared_from_this();
  t->async_wait([weak, id](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || !self->ready()) return;
    self->seedTimers.erase(id);
    self->stopSeedingNow(id);
  });
  seedTimers[id] = std::move(t);
}

void Core::stopSeedingNow(const FileId& id) {
  if (!ready()) return;
  node->stopSeeding(id);
  serving.erase(id);
  stoppedSeeding.insert(id);
}

void Core::afterComplete(const FileId& id) {
  if (!ready()) return;
  if (!opts.enableSeeding) {
    stopSeedingNow(id);
    return;
  }
  if (stoppedSeeding.count(id)) {
    (void)startSeeding(id);  // its seedDuration was over: a new download serves it again
    return;
  }
  serving.insert(id);
  if (!seedTimers.count(id)) armSeedTimer(id);
}

void Core::forgetInNode(const FileId& id) {
  if (!ready() || !inNode.count(id)) return;
  if (auto p = node->progress(id)) {
    retiredUp += p->bytesUploaded;
    retiredDown += p->bytesDownloaded;
    retiredChunks += p->chunksFetched;
  }
  node->forget(id);
  inNode.erase(id);
  serving.erase(id);
  stoppedSeeding.erase(id);
  seedTimers.erase(id);
}

}  // namespace p2pcdn
