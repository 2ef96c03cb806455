// The I/O of each file's swarm::Session: messages to its links, chunk reads
// and writes on the store worker (completions posted back), and the engine's
// events, which are posted to the file's listeners: nothing here calls a
// listener, so no listener runs inside the Session (SessionHost's rule: no
// call back into the Session from inside one of its calls).
#include "node/node_impl.hpp"

namespace p2pcdn::node {
namespace {

class SessionHostImpl : public swarm::SessionHost {
 public:
  SessionHostImpl(Node::Impl* i, const FileId& f) : impl_(i), fid_(f) {}

  Status send(swarm::PeerKey key, ByteView message) override {
    auto& f = file();
    auto it = f.peers.find(key);
    if (it == f.peers.end() || !it->second->link) return fail(Errc::kCancelled, "send", "peer gone");
    return it->second->link->send(message);
  }
  void disconnect(swarm::PeerKey key) override {
    // Not from inside the session's call: the link closes on the next turn
    // of the loop, after the GOODBYE has been queued.
    std::weak_ptr<Node::Impl> weak = impl_->shared_from_this();
    impl_->rt.post([weak, fid = fid_, key] {
      if (auto self = weak.lock()) {
        if (auto it = self->files.find(fid); it != self->files.end()) self->dropPeer(it->second, key, "session disconnect");
      }
    });
  }
  // Reads (with their re-hash) and writes run on the store worker; the
  // completions come back to the loop as posted events.
  void readChunk(ChunkIndex index) override {
    impl_->onWorker(fid_, [index](ChunkStorage& store, const FileId& f, const Node::Impl::Completions& done) {
      store.getChunk(f, index, ReadOptions{.verify = true}, [index, done](Result<Bytes> r) {
        done([index, r = std::move(r)](FileState& fs, swarm::Time now) mutable {
          fs.session->onChunkRead(index, std::move(r), now);
        });
      });
    }, [index](FileState& fs, const Error& e, swarm::Time now) { fs.session->onChunkRead(index, fail(e), now); });
  }
  void storeChunk(ChunkIndex index, Bytes data) override {
    if (manifestWrites_ > 0) {
      // The store takes no chunk of a file before its manifest.
      deferred_.emplace_back(index, std::move(data));
      return;
    }
    auto shared = std::make_shared<Bytes>(std::move(data));
    impl_->onWorker(fid_, [index, shared](ChunkStorage& store, const FileId& f, const Node::Impl::Completions& done) {
      store.storeChunk(f, index, *shared, [index, done, shared](Status st) {
        done([index, st = std::move(st)](FileState& fs, swarm::Time now) mutable {
          fs.session->onChunkStored(index, std::move(st), now);
        });
      });
    }, [index](FileState& fs, const Error& e, swarm::Time now) { fs.session->onChunkStored(index, fail(e), now); });
  }
  // A manifest write completed. A failure is reported and the write tried
  // again (1 s, doubling to 30 s) while the chunk writes keep waiting: the
  // store refuses chunks of a file it has no manifest of, and the downloader
  // stops asking once maxPendingWrites wait.
  void manifestStored(const Manifest& m, const Status& st) {
    --manifestWrites_;
    if (!st) {
      onError(st.error());
      const auto wait = manifestRetry_;
      manifestRetry_ = std::min<swarm::Time>(manifestRetry_ * 2, std::chrono::seconds(30));
      ++manifestWrites_;  // still owed
      std::weak_ptr<Node::Impl> weak = impl_->shared_from_this();
      const std::uint64_t gen = file().generation;
      impl_->rt.after(wait, [weak, fid = fid_, gen, m] {
        auto self = weak.lock();
        if (!self) return;
        auto it = self->files.find(fid);
        if (it == self->files.end() || it->second.generation != gen) return;
        auto& host = static_cast<SessionHostImpl&>(*it->second.host);
        --host.manifestWrites_;
        host.storeManifest(m);
      });
      return;
    }
    manifestRetry_ = std::chrono::seconds(1);
    if (manifestWrites_ > 0) return;
    auto waiting = std::move(deferred_);
    deferred_.clear();
    for (auto& [index, data] : waiting) storeChunk(index, std::move(data));
  }
  // Web seeds over the runtime's HTTP; the completion is posted back like a store's.
  bool fetchOrigin(std::uint32_t id, const std::string& url, std::uint64_t offset, std::uint32_t length) override {
    if (impl_->stopped) return false;  // a stopping node fetches nothing more
    std::weak_ptr<Node::Impl> weak = impl_->shared_from_this();
    const std::uint64_t gen = file().generation;
    const std::uint64_t handle = impl_->rt.fetchRange(url, offset, length, std::chrono::seconds(30),
                                                      [weak, fid = fid_, gen, id](Result<Bytes> r) {
      auto self = weak.lock();
      if (!self) return;
      auto it = self->files.find(fid);
      if (it == self->files.end() || it->second.generation != gen) return;
      static_cast<SessionHostImpl&>(*it->second.host).origins_.erase(id);
      it->second.session->onOriginData(id, std::move(r), self->now());
    });
    if (handle == 0) return false;
    origins_[id] = handle;
    return true;
  }
  void cancelOrigin(std::uint32_t id) override {
    auto it = origins_.find(id);
    if (it == origins_.end()) return;
    impl_->rt.cancelFetch(it->second);
    origins_.erase(it);
  }
  ~SessionHostImpl() override {
    for (auto& [id, handle] : origins_) impl_->rt.cancelFetch(handle);
  }

  std::optional<std::size_t> buffered(swarm::PeerKey key) const override {
    const auto& peers = impl_->files.at(fid_).peers;
    auto it = peers.find(key);
    if (it == peers.end() || !it->second->link) return std::nullopt;
    return it->second->link->bufferedAmount();
  }
  void notifyWhenBufferedBelow(swarm::PeerKey key, std::size_t bytes) override {
    auto& peers = file().peers;
    if (auto it = peers.find(key); it != peers.end() && it->second->link) it->second->link->notifyWhenBufferedBelow(bytes);
  }
  void storeManifest(const Manifest& m) override {
    ++manifestWrites_;
    auto shared = std::make_shared<Manifest>(m);
    auto finished = [shared](FileState& fs, const Status& st) {
      static_cast<SessionHostImpl&>(*fs.host).manifestStored(*shared, st);
    };
    impl_->onWorker(fid_, [shared, finished](ChunkStorage& store, const FileId&, const Node::Impl::Completions& done) {
      store.storeManifest(*shared, /*pinned=*/true, [done, finished](Result<FileId> id) {
        done([finished, st = id ? Status{} : Status(fail(id.error()))](FileState& fs, swarm::Time) { finished(fs, st); });
      });
    }, [finished](FileState& fs, const Error& e, swarm::Time) { finished(fs, fail(e)); });
  }

  // The engine's events: posted to the listeners.
  void onManifest(const Manifest& m) override {
    // Fetched files stay (pinned); nothing waits for it.
    impl_->onWorker(fid_, [](ChunkStorage& store, const FileId& f, const Node::Impl::Completions&) {
      store.setPinned(f, true, [](Status) {});
    }, [](FileState&, const Error&, swarm::Time) {});
    impl_->postManifest(fid_, m);
  }
  void onChunk(ChunkIndex index) override {
    impl_->postEvent(fid_, [](Listener&) { return true; }, [index](const FetchEvents& ev) {
      if (ev.onChunk) ev.onChunk(index);
    });
  }
  void onComplete() override {
    auto& f = file();
    f.wanted = false;
    impl_->announce(f, signaling::Event::kCompleted);
    impl_->postComplete(fid_);
  }
  void onBanned(swarm::PeerKey key, const wire::PeerId& id) override {
    Id20 banned{};
    std::copy(id.begin(), id.end(), banned.begin());
    impl_->banned.insert(banned);
    auto& f = file();
    if (auto it = f.peers.find(key); it != f.peers.end() && it->second->auth && it->second->auth->proven()) {
      impl_->bannedKeys.insert(it->second->auth->peerKey());
    }
  }
  void onError(const Error& e) override {
    // A failed chunk write stopped the session's fetch: the node's flag
    // follows, so it no longer announces as a leecher. (A failed manifest
    // write leaves the session fetching: it is retried.)
    std::weak_ptr<Node::Impl> weak = impl_->shared_from_this();
    impl_->rt.post([weak, fid = fid_] {
      auto self = weak.lock();
      if (!self) return;
      if (auto it = self->files.find(fid); it != self->files.end() && !it->second.session->wanted()) {
        it->second.wanted = false;
      }
    });
    impl_->postEvent(fid_, [](Listener&) { return true; }, [e](const FetchEvents& ev) {
      if (ev.onError) ev.onError(e);
    });
  }

 private:
  FileState& file() { return impl_->files.at(fid_); }
  Node::Impl* impl_;
  FileId fid_;
  int manifestWrites_ = 0;  // outstanding or to be retried; chunk writes wait in deferred_ meanwhile
  swarm::Time manifestRetry_ = std::chrono::seconds(1);
  std::vector<std::pair<ChunkIndex, Bytes>> deferred_;
  std::map<std::uint32_t, std::uint64_t> origins_;  // web seed request -> the runtime's fetch
};

}  // namespace

std::unique_ptr<swarm::SessionHost> Node::Impl::makeHost(const FileId& id) {
  return std::make_unique<SessionHostImpl>(this, id);
}

bool Node::Impl::onStore(std::function<void(ChunkStorage&, const ToLoop&)> task) {
  std::weak_ptr<Impl> weak = shared_from_this();
  // Called on the store queue (natively another thread): only Runtime::post
  // may be used here; the Impl is touched on the loop, if it is still there.
  ToLoop toLoop = [weak, rt = &rt, delay = opts.storeDelay](std::function<void()> then) {
    auto run = [weak, then = std::move(then)] {
      if (weak.lock()) then();
    };
    if (delay.count() == 0) return rt->post(std::move(run));
    rt->post([rt, delay, run = std::move(run)]() mutable { rt->after(delay, std::move(run)); });
  };
  ChunkStorage* st = &rawStore;
  return worker->post([st, task = std::move(task), toLoop] { task(*st, toLoop); });
}

void Node::Impl::onWorker(const FileId& fid, std::function<void(ChunkStorage&, const FileId&, const Completions&)> task,
                          std::function<void(FileState&, const Error&, swarm::Time)> refused) {
  std::weak_ptr<Impl> weak = shared_from_this();
  const std::uint64_t gen = files.at(fid).generation;
  // What the task hands back runs on the file it was asked for, if it is still there.
  auto onFile = [weak, fid, gen](SessionTask then) {
    return [weak, fid, gen, then = std::move(then)] {
      auto self = weak.lock();
      if (!self) return;
      auto it = self->files.find(fid);
      if (it != self->files.end() && it->second.generation == gen) then(it->second, self->now());
    };
  };
  const bool queued = onStore([fid, task = std::move(task), onFile](ChunkStorage& st, const ToLoop& toLoop) {
    task(st, fid, [toLoop, onFile](SessionTask then) { toLoop(onFile(std::move(then))); });
  });
  if (!queued) {  // (not delayed: the refusal overtakes completions the test twin delays)
    rt.post(onFile([refused = std::move(refused)](FileState& fs, swarm::Time now) {
      refused(fs, Error(Errc::kBackPressure, "store", "the store worker's queue is full"), now);
    }));
  }
}

}  // namespace p2pcdn::node
