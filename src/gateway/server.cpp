// The gateway's I/O: a Beast HTTP/1.1 server on the node's io_context: the
// files it serves (their node fetches, waiters and streaming window), the
// accept loop and the public methods; each connection is connection.cpp's.
// The decisions (routes, ranges, validators, types, page text) are in http.cpp.
#include "gateway/server.hpp"

#include <algorithm>
#include <boost/asio/steady_timer.hpp>

#include "gateway/gateway_impl.hpp"

namespace p2pcdn::gateway {

using error_code = boost::system::error_code;

// ---- files ------------------------------------------------------------------------

FileEntry& Gateway::Impl::entry(const FileId& id) {
  auto [it, inserted] = files.try_emplace(id);
  FileEntry& f = it->second;
  if (inserted) {
    f.id = id;
    struct Stored {
      std::optional<Manifest> manifest;
      bool complete = false;
    };
    offLoop<Stored>(
        [st = &store, id]() {
          Stored r;
          if (auto m = st->getManifest(id)) r.manifest = std::move(*m);  // (not found, or unreadable: ask the swarm)
          if (r.manifest) {
            auto present = st->presentChunks(id);
            r.complete = present && present->size() == r.manifest->chunkCount() &&
                         std::find(present->begin(), present->end(), false) == present->end();
          }
          return r;
        },
        [weak = weak_from_this(), id](Stored r) {
          if (auto self = weak.lock()) self->onLoaded(id, std::move(r.manifest), r.complete);
        });
  }
  return f;
}

// What the store holds of a file (the entry may be gone, or a new one for the same id).
void Gateway::Impl::onLoaded(const FileId& id, std::optional<Manifest> m, bool complete) {
  auto it = files.find(id);
  if (it == files.end() || it->second.loaded) return;
  FileEntry& f = it->second;
  f.loaded = true;
  if (m && !f.manifest) {
    const auto p = node.progress(id);
    setManifest(f, std::move(*m));
    if (!p || !p->haveManifest) f.complete = complete;  // the node does not hold it: the store's word
  }
  wake(f, [](const Waiter& w) { return !w.chunk; }, Status{});
}

// The node's count of held chunks decides completeness while it holds the file.
void Gateway::Impl::setManifest(FileEntry& f, Manifest m) {
  if (auto p = node.progress(f.id); p && p->haveManifest) f.complete = p->chunksHave == m.chunkCount();
  f.manifest = std::move(m);
}

// Chunks held, if known: all of a complete file, else the node's count while it holds the file.
std::optional<std::uint32_t> Gateway::Impl::held(const FileEntry& f) const {
  if (f.complete && f.manifest) return f.manifest->chunkCount();
  if (auto p = node.progress(f.id); p && p->haveManifest) return p->chunksHave;
  return std::nullopt;
}

ChunkIndex Gateway::Impl::firstMissing(const FileEntry& f) const {
  const ChunkIndex n = f.manifest ? f.manifest->chunkCount() : 0;
  ChunkIndex i = 0;
  while (i < n && has(f, i)) ++i;
  return i;
}

std::size_t Gateway::Impl::lookups() const {
  std::size_t n = 0;
  for (const auto& [id, f] : files) n += (!f.manifest && f.fetching()) ? 1u : 0u;
  return n;
}

// Starts (or joins) the node's fetch of a file and listens to it, unless
// the file is complete or we listen already.
Status Gateway::Impl::ensureFetch(FileEntry& f, std::optional<Manifest> hint) {
  if (f.complete || f.fetching() || stopped) return {};
  if (!f.manifest && !hint && lookups() >= opts.maxManifestLookups) {
    return fail(Errc::kBackPressure, "gateway fetch", "too many unknown files being looked up at once");
  }
  const FileId id = f.id;
  // The node posts its events: a handler may move the streaming window.
  auto to = [weak = weak_from_this(), id](auto handler) {
    return [weak, id, handler](const auto&... args) {
      if (auto self = weak.lock()) ((*self).*handler)(id, args...);
    };
  };
  node::FetchEvents ev{to(&Impl::onManifest), to(&Impl::onChunk), to(&Impl::onComplete), to(&Impl::onError)};
  std::optional<Manifest> m = hint ? hint : f.manifest;
  const std::uint64_t seq = ++fetchSeq;
  f.starting = seq;
  // The node reads what the store holds on its store queue; fetchStarted runs later.
  node.fetch(id, std::move(m), std::move(ev), [weak = weak_from_this(), id, seq](Result<node::ListenerId> lid) {
    if (auto self = weak.lock()) self->fetchStarted(id, seq, std::move(lid));
  });
  return {};
}

void Gateway::Impl::fetchStarted(const FileId& id, std::uint64_t seq, Result<node::ListenerId> lid) {
  auto it = files.find(id);
  if (it == files.end() || it->second.starting != seq) {
    // Given up meanwhile (release() forgot the file, or a newer fetch took over).
    if (lid) (it == files.end() && !stopped) ? node.forget(id) : node.unlisten(*lid);
    return;
  }
  FileEntry& f = it->second;
  f.starting = 0;
  if (!lid) {
    return wake(f, [](const Waiter&) { return true; }, fail(lid.error()));
  }
  f.listener = *lid;
  // Streaming from the start, so the handshakes tell peers (kCapStreaming):
  // a super-seeder then shows such a peer every chunk at once instead of a
  // few at a time, and the window's chunks can be asked for at once.
  if (!f.window) f.window = 0;
  node.setStreaming(id, true, *f.window, 0);
  // Chunks the store held all along get no onChunk: their waiters look again.
  wake(f, [this, &f](const Waiter& w) { return w.chunk && has(f, *w.chunk); }, Status{});
}

// Wakes the waiters `pick` selects (outside the iteration: a wake may wait again).
void Gateway::Impl::wake(FileEntry& f, const std::function<bool(const Waiter&)>& pick, const Status& st) {
  std::vector<std::function<void(Status)>> run;
  for (auto& [conn, w] : f.waiters) {
    if (pick(w) && w.wake) run.push_back(std::exchange(w.wake, nullptr));
  }
  for (auto& r : run) r(st);
}

void Gateway::Impl::onManifest(const FileId& id, const Manifest& m) {
  auto it = files.find(id);
  if (it == files.end()) return;
  FileEntry& f = it->second;
  if (!f.manifest) setManifest(f, m);
  // The session drops a streaming cursor given before it had the manifest.
  if (f.window && !f.complete) node.setStreaming(id, true, *f.window, 0);
  wake(f, [](const Waiter& w) { return !w.chunk; }, Status{});
}

void Gateway::Impl::onChunk(const FileId& id, ChunkIndex i) {
  auto it = files.find(id);
  if (it == files.end()) return;
  FileEntry& f = it->second;
  if (!f.manifest) return;
  wake(f, [i](const Waiter& w) { return w.chunk && *w.chunk == i; }, Status{});
}

// The fetch is over: we stop listening (a fetch being set up is dropped when it is).
void Gateway::Impl::endFetch(FileEntry& f) {
  if (f.listener) node.unlisten(*f.listener);
  f.listener.reset();
  f.starting = 0;
}

void Gateway::Impl::onComplete(const FileId& id) {
  auto it = files.find(id);
  if (it == files.end()) return;
  FileEntry& f = it->second;
  endFetch(f);
  if (f.manifest) f.complete = true;
  f.window.reset();
  wake(f, [](const Waiter&) { return true; }, Status{});
}

void Gateway::Impl::onError(const FileId& id, const Error& e) {
  auto it = files.find(id);
  if (it == files.end()) return;
  FileEntry& f = it->second;
  endFetch(f);
  wake(f, [](const Waiter&) { return true; }, fail(e));
}

void Gateway::Impl::setWindow(FileEntry& f, ChunkIndex c) {
  if (f.complete || f.window == c) return;
  f.window = c;
  ++stats.windowMoves;
  node.setStreaming(f.id, true, c, 0);
}

// A response of connection `conn` is at chunk `c` (about to send it, or to
// wait for it). `fresh`: its first chunk (a new request, perhaps a seek).
void Gateway::Impl::position(FileEntry& f, std::uint64_t conn, ChunkIndex c, bool fresh) {
  const bool missing = !has(f, c);
  if ((fresh && missing) || !f.owner) {
    if (missing) f.owner = conn;
  }
  if (f.owner == conn) setWindow(f, c);
}

void Gateway::Impl::wait(FileEntry& f, std::uint64_t conn, std::optional<ChunkIndex> chunk, std::function<void(Status)> w) {
  f.waiters[conn] = Waiter{nextSeq++, chunk, std::move(w)};
}

void Gateway::Impl::stopWaiting(const FileId& id, std::uint64_t conn) {
  if (auto it = files.find(id); it != files.end()) it->second.waiters.erase(conn);
}

// The response of `conn` on this file is over.
void Gateway::Impl::release(const FileId& id, std::uint64_t conn) {
  auto it = files.find(id);
  if (it == files.end()) return;
  FileEntry& f = it->second;
  f.waiters.erase(conn);
  if (f.owner == conn) {
    f.owner.reset();
    const Waiter* latest = nullptr;
    std::uint64_t latestConn = 0;
    for (const auto& [c, w] : f.waiters) {
      if (w.chunk && (!latest || w.seq > latest->seq)) {
        latest = &w;
        latestConn = c;
      }
    }
    if (latest) {
      f.owner = latestConn;
      setWindow(f, *latest->chunk);
    } else if (f.window && !f.complete && !stopped) {
      f.window.reset();
      node.setStreaming(f.id, false, 0, 0);
    }
  }
  // An id nobody could give a manifest for, and nobody waits for: stop looking.
  if (!f.manifest && f.waiters.empty()) {
    if (f.fetching() && !stopped) node.forget(f.id);  // drops our listener too
    files.erase(it);
  }
}

void Gateway::Impl::listing(std::function<void(std::vector<IndexEntry>)> done) {
  offLoop<Result<std::vector<StoredFile>>>([st = &store]() { return st->listFiles(); },
                                           [weak = weak_from_this(), done = std::move(done)](auto stored) {
    auto self = weak.lock();
    if (!self) return;
    std::vector<IndexEntry> out;
    std::map<FileId, bool> seen;
    auto add = [&](const FileId& id, const Manifest* m, std::uint32_t have) {
      IndexEntry e;
      e.fileId = id;
      if (m) {
        e.haveManifest = true;
        e.name = m->name;
        e.contentType = contentType(*m);
        e.size = m->size;
        e.chunksTotal = m->chunkCount();
        e.encrypted = m->encryption.has_value();
        e.keyKnown = e.encrypted && self->opts.keyFor && self->opts.keyFor(id).has_value();
      }
      e.chunksHave = have;
      if (auto p = self->node.progress(id)) e.peers = p->peers;
      out.push_back(std::move(e));
      seen[id] = true;
    };
    if (stored) {
      for (const auto& s : *stored) {
        auto it = self->files.find(s.fileId);
        const auto fresher = it != self->files.end() ? self->held(it->second) : std::nullopt;
        add(s.fileId, &s.manifest, fresher.value_or(s.chunksPresent));
      }
    }
    for (const auto& [id, f] : self->files) {
      if (!seen.count(id)) add(id, f.manifest ? &*f.manifest : nullptr, self->held(f).value_or(0));
    }
    done(std::move(out));
  });
}

std::string Gateway::Impl::metrics() {
  MetricsSnapshot m{static_cast<double>(conns.size()), static_cast<double>(stats.connectionsAccepted),
                    static_cast<double>(stats.connectionsRejected), static_cast<double>(stats.bytesSent), 0,
                    static_cast<double>(stats.windowMoves), stats.firstByteSecondsSum,
                    static_cast<double>(stats.firstByteCount), {}, {}};
  for (const auto& [code, n] : byStatus) m.byStatus.emplace_back(code, static_cast<double>(n));
  for (const auto& [id, f] : files) {
    m.waiting += static_cast<double>(f.waiters.size());
    if (!f.manifest) continue;
    const auto prog = node.progress(id);
    m.files.push_back({id.hex(), static_cast<double>(f.manifest->chunkCount()), static_cast<double>(held(f).value_or(0)),
                       static_cast<double>(firstMissing(f)), prog ? static_cast<double>(prog->peers) : 0.0,
                       prog ? static_cast<double>(prog->bytesDownloaded) : 0.0,
                       prog ? static_cast<double>(prog->bytesUploaded) : 0.0});
  }
  return renderMetrics(m);
}

void Gateway::Impl::doAccept() {
  std::weak_ptr<Impl> weak = weak_from_this();
  acceptor.async_accept([weak](error_code ec, tcp::socket socket) {
    auto self = weak.lock();
    if (!self || self->stopped || ec == asio::error::operation_aborted) return;
    if (!ec) {
      ++self->stats.connectionsAccepted;
      if (self->conns.size() >= self->opts.maxConnections) {
        ++self->stats.connectionsRejected;
        error_code ignored;
        socket.close(ignored);
      } else {
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        const std::uint64_t id = self->nextConnId++;
        auto c = makeConnection(self, std::move(socket), id);
        self->conns.emplace(id, c);  // before it runs: a close() erases it
        runConnection(*c);
      }
    }
    // On an accept error (e.g. out of descriptors) try again, without spinning.
    if (ec) {
      auto t = std::make_shared<asio::steady_timer>(self->io, std::chrono::milliseconds(50));
      t->async_wait([t, weak](error_code) {
        if (auto s = weak.lock(); s && !s->stopped) s->doAccept();
      });
      return;
    }
    self->doAccept();
  });
}

Gateway::Gateway(asio::io_context& io, node::Node& node, ChunkStorage& storage, GatewayOptions options,
                 std::unique_ptr<node::TaskQueue> reads)
    : impl_(std::make_shared<Impl>(io, node, storage, std::move(options))) {
  impl_->reads = std::move(reads);
}

Gateway::~Gateway() { stop(); }

Status Gateway::start() {
  Impl& g = *impl_;
  error_code ec;
  auto addr = asio::ip::make_address(g.opts.host, ec);
  if (ec) return fail(Errc::kInvalidArgument, "gateway listen", "bad address " + g.opts.host + ": " + ec.message());
  tcp::endpoint ep(addr, g.opts.port);
  g.acceptor.open(ep.protocol(), ec);
  if (!ec) g.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) g.acceptor.bind(ep, ec);
  if (!ec) g.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail(Errc::kIo, "gateway listen",
                g.opts.host + ":" + std::to_string(g.opts.port) + ": " + ec.message());
  }
  g.boundPort = g.acceptor.local_endpoint(ec).port();
  g.policy.port = g.boundPort;
  g.policy.hosts = g.opts.allowedHosts;
  if (g.opts.host != "0.0.0.0" && g.opts.host != "::" && !g.opts.host.empty()) {
    g.policy.hosts.push_back(g.opts.host.find(':') != std::string::npos ? "[" + g.opts.host + "]" : g.opts.host);
  }
  g.policy.corsOrigins = g.opts.corsOrigins;
  g.doAccept();
  return {};
}

void Gateway::stop() {
  Impl& g = *impl_;
  if (g.stopped) return;
  g.stopped = true;
  for (auto& [id, f] : g.files) g.endFetch(f);
  error_code ignored;
  g.acceptor.close(ignored);
  auto conns = g.conns;  // close() erases
  for (auto& [id, w] : conns) {
    if (auto c = w.lock()) closeConnection(*c);
  }
  // Joins the read thread now, while the loop and the store still exist (a
  // task holds its connection, which holds the Impl past ~Gateway): the
  // running task ends, the waiting ones are dropped; later reads run inline.
  g.reads.reset();
}

std::uint16_t Gateway::port() const { return impl_->boundPort; }

GatewayStats Gateway::stats() const {
  GatewayStats s = impl_->stats;
  s.connectionsOpen = impl_->conns.size();
  for (const auto& [id, f] : impl_->files) s.responsesWaiting += f.waiters.size();
  return s;
}

}  // namespace p2pcdn::gateway
