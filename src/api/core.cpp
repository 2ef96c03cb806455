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
  no.uploadLimit = opts.uploadLimit;
  no.downloadLimit = opts.downloadLimit;
  no.swarm.superSeed = opts.superSeed;

  {
    std::lock_guard lock(mu);
    io = std::make_unique<asio::io_context>(1);
    work.emplace(io->get_executor());
    runtime = std::make_unique<node::AsioRuntime>(*io);
    storeQ = runtime->storeQueue();
    node = std::make_unique<node::Node>(*runtime, *storage, *links, std::move(no));
    stopping = false;
    state = State::kRunning;
    finished = false;
    peerIdHex.clear();
    loop = std::thread([self = shared_from_this()] { self->runLoop(); });
  }
  auto started = call<std::string>(op, [this]() -> Result<std::string> {
    if (!ready()) return api::notConnected("connect");
    P2PCDN_TRY(node->start());
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
  // The store queue first: its waiting calls are dropped (their callers get
  // kCancelled) and the running one ends while the store and io still exist.
  std::unique_ptr<node::TaskQueue> q;
  {
    std::lock_guard lock(mu);
    q = std::move(storeQ);
  }
  q.reset();
  // Epilogue, still on this thread: the node (and its links) before the
  // io_context, whose unrun handlers may hold links and completions (they fire
  // kCancelled now), then the store, the worker, and the link factory last.
  node.reset();
  runtime.reset();  // holds a reference to io
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
  seedTimers.clear();
  endListeners(std::nullopt, "disconnected");
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

std::vector<PeerStats> Core::peerStats() const {
  std::vector<PeerStats> out;
  auto add = [&out](const node::NodePeerStats& n, bool connected) {
    PeerStats p;
    p.peerId = n.peerId;
    p.fileId = n.fileId;
    p.connected = connected;
    p.seeder = n.swarm.seeder;
    p.bytesUp = n.swarm.bytesUp;
    p.bytesDown = n.swarm.bytesDown;
    p.upRate = connected ? n.swarm.upRate : 0;
    p.downRate = connected ? n.swarm.downRate : 0;
    p.rttSeconds = n.rttSeconds;
    p.localCandidateType = n.localCandidateType;
    p.remoteCandidateType = n.remoteCandidateType;
    p.chunksServed = n.swarm.chunksServed;
    p.chunksReceived = n.swarm.chunksReceived;
    p.failures = n.swarm.failures;
    // A closed link's last snapshot: nothing outstanding any more.
    p.requestsOutstanding = connected ? n.swarm.requestsOutstanding : 0;
    p.uploadsQueued = connected ? n.swarm.uploadsQueued : 0;
    p.unchoked = connected && n.swarm.unchoked;
    p.badChunks = n.swarm.badChunks;
    out.push_back(std::move(p));
  };
  for (const auto& n : node->closedLinks()) add(n, false);
  for (const auto& n : node->peerStats()) add(n, true);
  return out;
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

// The node posts its events: these run on a later turn of the loop, outside
// every Node call, and may run user code.
node::FetchEvents Core::fetchEvents(std::uint64_t listener) {
  std::weak_ptr<Core> weak = shared_from_this();
  node::FetchEvents ev;
  ev.onManifest = [weak, listener](const Manifest& m) {
    if (auto s = weak.lock()) s->fetchManifest(listener, m);
  };
  ev.onChunk = [weak, listener](ChunkIndex i) {
    if (auto s = weak.lock()) s->fetchChunk(listener, i);
  };
  ev.onComplete = [weak, listener] {
    if (auto s = weak.lock()) s->fetchDone(listener, {});
  };
  ev.onError = [weak, listener](const Error& e) {
    if (auto s = weak.lock()) s->fetchDone(listener, fail(e));
  };
  return ev;
}

bool Core::fetching(const FileId& id) const {
  return std::any_of(listeners.begin(), listeners.end(), [&](const auto& l) { return l.second.file == id; });
}

Result<std::uint64_t> Core::listen(const FileId& id, const std::optional<Manifest>& manifest, api::Listener l,
                                   std::chrono::milliseconds timeout, const std::string& op) {
  if (!ready()) return api::notConnected(op);
  const std::uint64_t key = nextListener++;
  // Joining: a file the node holds complete (it tells a new listener so), or
  // one being fetched, unless this call brings the manifest it lacks.
  std::optional<node::FileProgress> p = inNode.count(id) ? node->progress(id) : std::nullopt;
  const bool known = p && p->haveManifest;
  const bool held = known && p->chunksHave == p->chunksTotal;
  // Only a file the node holds complete is joined by listening; else the
  // node's fetch, which joins any under way once the store has been read
  // (a pending fetch of another listener may still fail).
  const bool join = held;
  std::optional<node::ListenerId> nid;
  if (join) {
    auto r = node->listen(id, fetchEvents(key));
    if (!r) return fail(r.error());
    nid = *r;
  }
  inNode.insert(id);
  l.file = id;
  l.node = nid;
  if (timeout.count() > 0) {
    l.timer = std::make_unique<asio::steady_timer>(*io, timeout);
    std::weak_ptr<Core> weak = shared_from_this();
    l.timer->async_wait([weak, key, timeout, op](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!ec && self) self->fetchTimedOut(key, timeout, op);
    });
  }
  auto started = join ? l.onStarted : nullptr;
  listeners.emplace(key, std::move(l));
  if (started) started();
  if (!join) {
    std::weak_ptr<Core> weak = shared_from_this();
    node->fetch(id, manifest, fetchEvents(key), [weak, key](Result<node::ListenerId> r) {
      if (auto self = weak.lock()) self->listenStarted(key, std::move(r));
    });
  }
  return key;
}

void Core::listenStarted(std::uint64_t key, Result<node::ListenerId> nid) {
  if (!ready()) return;
  auto it = listeners.find(key);
  if (it == listeners.end()) {
    // Ended meanwhile: a closed stream's fetch goes on (streamClose); a
    // removed or timed-out one was forgotten, which cancelled this fetch.
    if (nid) node->unlisten(*nid);
    return;
  }
  if (!nid) return fetchDone(key, fail(nid.error()));
  it->second.node = *nid;
  if (auto cb = it->second.onStarted) cb();
}

void Core::dropNodeListener(const api::Listener& l) {
  if (node && l.node) node->unlisten(*l.node);
}

void Core::unlisten(std::uint64_t listener) {
  auto it = listeners.find(listener);
  if (it == listeners.end()) return;
  dropNodeListener(it->second);
  listeners.erase(it);
}

void Core::endListeners(const std::optional<FileId>& id, const std::string& why) {
  std::vector<api::Listener> ended;
  for (auto it = listeners.begin(); it != listeners.end();) {
    if (id && it->second.file != *id) {
      ++it;
      continue;
    }
    dropNodeListener(it->second);
    ended.push_back(std::move(it->second));
    it = listeners.erase(it);
  }
  for (auto& l : ended) {
    l.timer.reset();
    if (l.onDone) l.onDone(fail(Errc::kCancelled, "download " + l.file.hex().substr(0, 16), why));
  }
}

// Each callback is looked up again before it runs: the one before it may have
// removed the listener.
void Core::fetchManifest(std::uint64_t listener, const Manifest& m) {
  notify(listener, [&m](api::Listener& l) {
    if (auto cb = l.onManifest) cb(m);
  }, std::nullopt);
}

void Core::fetchChunk(std::uint64_t listener, ChunkIndex index) {
  notify(listener, [index](api::Listener& l) {
    if (auto cb = l.onChunk) cb(index);
  }, index);
}

// Runs `event` on the listener, then its progress callback (for `chunk`), if
// the listener is still there.
void Core::notify(std::uint64_t listener, const std::function<void(api::Listener&)>& event,
                  std::optional<ChunkIndex> chunk) {
  auto it = listeners.find(listener);
  if (it == listeners.end()) return;
  const FileId id = it->second.file;
  event(it->second);
  it = listeners.find(listener);
  if (it != listeners.end() && it->second.onProgress) {
    auto cb = it->second.onProgress;
    cb(progressOf(id, chunk));
  }
}

void Core::fetchDone(std::uint64_t listener, Status st) {
  auto it = listeners.find(listener);
  if (it == listeners.end()) return;
  api::Listener l = std::move(it->second);
  listeners.erase(it);
  dropNodeListener(l);
  l.timer.reset();
  if (st) afterComplete(l.file);
  if (l.onDone) l.onDone(st);
}

void Core::fetchTimedOut(std::uint64_t listener, std::chrono::milliseconds timeout, const std::string& op) {
  auto it = listeners.find(listener);
  if (it == listeners.end()) return;
  api::Listener l = std::move(it->second);
  listeners.erase(it);
  dropNodeListener(l);
  const FileId id = l.file;
  Progress p = progressOf(id, std::nullopt);
  std::string detail = "no peer delivered " + id.hex().substr(0, 16) + "... within " +
                       std::to_string(timeout.count()) + " ms (" + std::to_string(p.peers) + " peers, " +
                       (p.chunksTotal ? std::to_string(p.chunksHave) + "/" + std::to_string(p.chunksTotal) + " chunks"
                                      : std::string("manifest not received")) +
                       ")";
  // Nobody waits any more: stop fetching (what is stored stays: a later call resumes).
  if (!fetching(id)) forgetInNode(id);
  if (l.onDone) l.onDone(fail(Errc::kTimedOut, op, detail));
}

// ---- seeding -----------------------------------------------------------------

void Core::startSeeding(const FileId& id) {
  // (The store holds the file: just committed, or just downloaded. The node
  // reads it on its store queue; a failure, e.g. a full store queue, takes
  // it off the served list again.)
  std::weak_ptr<Core> weak = shared_from_this();
  node->seed(id, [weak, id](Status st) {
    auto self = weak.lock();
    if (!self || st || !self->ready()) return;
    self->serving.erase(id);
    self->seedTimers.erase(id);
  });
  inNode.insert(id);
  serving.insert(id);
  stoppedSeeding.erase(id);
  armSeedTimer(id);
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
    startSeeding(id);  // its seedDuration was over: a new download serves it again
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
