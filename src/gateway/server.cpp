// The gateway's I/O: a Beast HTTP/1.1 server on the node's io_context. The
// decisions (routes, ranges, validators, types, page text) are in http.cpp.
#include "gateway/server.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <sstream>

#include "gateway/app_files.hpp"
#include "gateway/http.hpp"
#include "p2pcdn/chunk_manager.hpp"

namespace p2pcdn::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr const char* kServer = "p2pcdn-gateway";
// Someone waiting for a file's manifest (chunk unset) or for one chunk.
struct Waiter {
  std::uint64_t seq = 0;  // order of arrival: the most recent may take the window
  std::optional<ChunkIndex> chunk;
  std::function<void(Status)> wake;
};

// What the gateway knows of one file it has served or is serving. Which
// chunks are held is the node's (Node::have); a file held complete in the
// store is served from it without the node.
struct FileEntry {
  FileId id;
  std::optional<Manifest> manifest;
  bool complete = false;                    // every chunk is in the store
  std::optional<node::ListenerId> listener; // fetching: listening to the node, not ended
  std::uint64_t starting = 0;               // the node's fetch is being set up: its number (0: none)
  std::optional<Error> error;
  std::map<std::uint64_t, Waiter> waiters;  // by connection
  std::optional<std::uint64_t> owner;       // the connection whose position the window follows
  std::optional<ChunkIndex> window;         // the cursor last given to the node

  bool fetching() const { return listener.has_value() || starting != 0; }
};

class Conn;

}  // namespace

struct Gateway::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& ctx, node::Node& n, ChunkStorage& s, GatewayOptions o)
      : io(ctx), node(n), store(s), opts(std::move(o)), acceptor(ctx), app(opts.appDir) {}

  asio::io_context& io;
  node::Node& node;
  BlockingStorage store;
  GatewayOptions opts;
  tcp::acceptor acceptor;
  AppFiles app;  // the web app's files (opts.appDir)
  std::unique_ptr<node::TaskQueue> reads;  // chunk reads off the loop (none: inline)
  bool stopped = false;
  std::uint16_t boundPort = 0;
  GatewayStats stats;
  std::map<unsigned, std::uint64_t> byStatus;
  std::map<FileId, FileEntry> files;
  std::uint64_t fetchSeq = 0;  // numbers the node fetches started (FileEntry::starting)
  std::map<std::uint64_t, std::weak_ptr<Conn>> conns;
  std::uint64_t nextConnId = 1, nextSeq = 1;

  void doAccept();

  // ---- files ------------------------------------------------------------------

  // The entry of a file, created (from the store's manifest, if any) on first use.
  FileEntry& entry(const FileId& id) {
    auto [it, inserted] = files.try_emplace(id);
    FileEntry& f = it->second;
    if (inserted) {
      f.id = id;
      if (auto m = store.getManifest(id)) setManifest(f, std::move(*m));
    }
    return f;
  }

  void setManifest(FileEntry& f, Manifest m) {
    const std::uint32_t n = m.chunkCount();
    if (auto p = node.progress(f.id); p && p->haveManifest) {
      f.complete = p->chunksHave == n;
    } else if (auto present = store.presentChunks(f.id)) {
      f.complete = present->size() == n && std::find(present->begin(), present->end(), false) == present->end();
    }
    f.manifest = std::move(m);
  }

  bool has(const FileEntry& f, ChunkIndex i) const { return f.complete || node.have(f.id, i); }
  // Chunks held, if known: all of a complete file, else the node's count while it holds the file.
  std::optional<std::uint32_t> held(const FileEntry& f) const {
    if (f.complete && f.manifest) return f.manifest->chunkCount();
    if (auto p = node.progress(f.id); p && p->haveManifest) return p->chunksHave;
    return std::nullopt;
  }
  ChunkIndex firstMissing(const FileEntry& f) const {
    const ChunkIndex n = f.manifest ? f.manifest->chunkCount() : 0;
    ChunkIndex i = 0;
    while (i < n && has(f, i)) ++i;
    return i;
  }

  std::size_t lookups() const {
    std::size_t n = 0;
    for (const auto& [id, f] : files) n += (!f.manifest && f.fetching()) ? 1u : 0u;
    return n;
  }

  // Starts (or joins) the node's fetch of a file and listens to it, unless
  // the file is complete or we listen already.
  Status ensureFetch(FileEntry& f, std::optional<Manifest> hint = std::nullopt) {
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
    f.error.reset();
    // The node reads what the store holds on its store queue; fetchStarted runs later.
    node.fetch(id, std::move(m), std::move(ev), [weak = weak_from_this(), id, seq](Result<node::ListenerId> lid) {
      if (auto self = weak.lock()) self->fetchStarted(id, seq, std::move(lid));
    });
    return {};
  }

  void fetchStarted(const FileId& id, std::uint64_t seq, Result<node::ListenerId> lid) {
    auto it = files.find(id);
    if (it == files.end() || it->second.starting != seq) {
      // Given up meanwhile (release() forgot the file, or a newer fetch took over).
      if (lid) (it == files.end() && !stopped) ? node.forget(id) : node.unlisten(*lid);
      return;
    }
    FileEntry& f = it->second;
    f.starting = 0;
    if (!lid) {
      f.error = lid.error();
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
  template <class Pick>
  void wake(FileEntry& f, Pick pick, const Status& st) {
    std::vector<std::function<void(Status)>> run;
    for (auto& [conn, w] : f.waiters) {
      if (pick(w) && w.wake) run.push_back(std::exchange(w.wake, nullptr));
    }
    for (auto& r : run) r(st);
  }

  void onManifest(const FileId& id, const Manifest& m) {
    auto it = files.find(id);
    if (it == files.end()) return;
    FileEntry& f = it->second;
    if (!f.manifest) setManifest(f, m);
    // The session drops a streaming cursor given before it had the manifest.
    if (f.window && !f.complete) node.setStreaming(id, true, *f.window, 0);
    wake(f, [](const Waiter& w) { return !w.chunk; }, Status{});
  }

  void onChunk(const FileId& id, ChunkIndex i) {
    auto it = files.find(id);
    if (it == files.end()) return;
    FileEntry& f = it->second;
    if (!f.manifest) return;
    wake(f, [i](const Waiter& w) { return w.chunk && *w.chunk == i; }, Status{});
  }

  // The fetch is over: we stop listening (a fetch being set up is dropped when it is).
  void endFetch(FileEntry& f) {
    if (f.listener) node.unlisten(*f.listener);
    f.listener.reset();
    f.starting = 0;
  }

  void onComplete(const FileId& id) {
    auto it = files.find(id);
    if (it == files.end()) return;
    FileEntry& f = it->second;
    endFetch(f);
    if (f.manifest) f.complete = true;
    f.window.reset();
    wake(f, [](const Waiter&) { return true; }, Status{});
  }

  void onError(const FileId& id, const Error& e) {
    auto it = files.find(id);
    if (it == files.end()) return;
    FileEntry& f = it->second;
    endFetch(f);
    f.error = e;
    wake(f, [](const Waiter&) { return true; }, fail(e));
  }

  void setWindow(FileEntry& f, ChunkIndex c) {
    if (f.complete || f.window == c) return;
    f.window = c;
    ++stats.windowMoves;
    node.setStreaming(f.id, true, c, 0);
  }

  // A response of connection `conn` is at chunk `c` (about to send it, or to
  // wait for it). `fresh`: its first chunk (a new request, perhaps a seek).
  void position(FileEntry& f, std::uint64_t conn, ChunkIndex c, bool fresh) {
    const bool missing = !has(f, c);
    if ((fresh && missing) || !f.owner) {
      if (missing) f.owner = conn;
    }
    if (f.owner == conn) setWindow(f, c);
  }

  void wait(FileEntry& f, std::uint64_t conn, std::optional<ChunkIndex> chunk, std::function<void(Status)> w) {
    f.waiters[conn] = Waiter{nextSeq++, chunk, std::move(w)};
  }

  void stopWaiting(const FileId& id, std::uint64_t conn) {
    if (auto it = files.find(id); it != files.end()) it->second.waiters.erase(conn);
  }

  // The response of `conn` on this file is over.
  void release(const FileId& id, std::uint64_t conn) {
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

  // ---- pages --------------------------------------------------------------------

  std::vector<IndexEntry> listing() {
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
        e.keyKnown = e.encrypted && opts.keyFor && opts.keyFor(id).has_value();
      }
      e.chunksHave = have;
      if (auto p = node.progress(id)) e.peers = p->peers;
      out.push_back(std::move(e));
      seen[id] = true;
    };
    if (auto stored = store.listFiles()) {
      for (const auto& s : *stored) {
        auto it = files.find(s.fileId);
        const auto fresher = it != files.end() ? held(it->second) : std::nullopt;
        add(s.fileId, &s.manifest, fresher.value_or(s.chunksPresent));
      }
    }
    for (const auto& [id, f] : files) {
      if (!seen.count(id)) add(id, f.manifest ? &*f.manifest : nullptr, held(f).value_or(0));
    }
    return out;
  }

  std::string metrics() {
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
};

namespace {

// ---- one HTTP connection ------------------------------------------------------------

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(std::shared_ptr<Gateway::Impl> gw, tcp::socket&& socket, std::uint64_t id)
      : gw_(std::move(gw)), stream_(std::move(socket)), timer_(gw_->io), id_(id) {}

  void run() { doRead(); }

  void close() {
    if (closed_) return;
    closed_ = true;
    endJob();
    timer_.cancel();
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    gw_->conns.erase(id_);
  }

 private:
  // The file response being written.
  struct Job {
    FileId id;
    std::shared_ptr<const Manifest> manifest;  // shared with the reads in flight
    std::optional<EncryptionKey> key;
    ByteRange range;
    std::uint64_t pos = 0;  // next byte to send
    bool head = false;      // HEAD: the header only
    bool headerSent = false;
    bool fresh = true;      // no chunk positioned yet
    std::string header;     // sent with the first body bytes
    Clock::time_point started;
  };

  // ---- reading requests -----------------------------------------------------------

  void doRead() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(gw_->opts.maxHeaderBytes));
    stream_.expires_after(firstRequest_ ? gw_->opts.requestTimeout : gw_->opts.idleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, std::size_t) { self->onRead(ec); });
  }

  void onRead(error_code ec) {
    if (closed_) return;
    head_ = false;
    if (ec) {
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        return sendSimple(http::status::request_header_fields_too_large, "request header too large\n", true);
      }
      if (ec == http::error::unexpected_body || ec == http::error::body_limit) {
        return sendSimple(http::status::payload_too_large, "requests with a body are not accepted\n", true);
      }
      // Beast's parser errors (bad method, target, version, field, chunk...).
      if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        return sendSimple(http::status::bad_request, "malformed HTTP request: " + ec.message() + "\n", true);
      }
      return close();  // end of stream, time-out, reset
    }
    firstRequest_ = false;
    ++gw_->stats.requests;
    handle(parser_->get());
  }

  void handle(const http::request<http::empty_body>& req) {
    keepAlive_ = req.keep_alive();
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      return sendSimple(http::status::method_not_allowed, "only GET and HEAD\n", false,
                        {{http::field::allow, "GET, HEAD"}});
    }
    head_ = req.method() == http::verb::head;
    const Route r = route(std::string_view(req.target().data(), req.target().size()));
    auto field = [&req](http::field f) -> std::optional<std::string_view> {
      auto it = req.find(f);
      if (it == req.end()) return std::nullopt;
      return std::string_view(it->value().data(), it->value().size());
    };
    switch (r.kind) {
      case RouteKind::kIndex:
        if (gw_->app.enabled()) return sendAppFile("app/index.html", field(http::field::if_none_match));
        [[fallthrough]];
      case RouteKind::kFilesPage:
        return sendSimple(http::status::ok, renderIndex(gw_->listing()), false,
                          {{http::field::content_type, "text/html; charset=utf-8"}});
      case RouteKind::kFilesJson:
        return sendSimple(http::status::ok, renderFilesJson(gw_->listing()), false,
                          {{http::field::content_type, "application/json"}});
      case RouteKind::kMetrics:
        return sendSimple(http::status::ok, gw_->metrics(), false,
                          {{http::field::content_type, "text/plain; version=0.0.4"}});
      case RouteKind::kConfig:
        return sendSimple(http::status::ok, gw_->opts.appConfig, false,
                          {{http::field::content_type, "application/json"}});
      case RouteKind::kAppFile:
        return sendAppFile(r.name, field(http::field::if_none_match));
      case RouteKind::kNotFound:
        return sendSimple(http::status::not_found, r.why + "\n");
      case RouteKind::kBadRequest:
        return sendSimple(http::status::bad_request, r.why + "\n");
      case RouteKind::kFile:
      case RouteKind::kManifest:
        break;
    }
    manifestOnly_ = r.kind == RouteKind::kManifest;
    fileReq_ = FileRequest{head_, field(http::field::range), field(http::field::if_range),
                           field(http::field::if_none_match)};
    // The views point into the parser's message, which lives until the next read.
    key_ = r.key;
    if (!key_ && gw_->opts.keyFor) key_ = gw_->opts.keyFor(r.fileId);
    started_ = Clock::now();
    fileId_ = r.fileId;
    FileEntry& f = gw_->entry(r.fileId);
    if (f.manifest) return withManifest(f);
    if (auto st = gw_->ensureFetch(f); !st) {
      gw_->release(r.fileId, id_);
      return sendSimple(http::status::service_unavailable, st.error().message() + "\n", false,
                        {{http::field::retry_after, "5"}});
    }
    inFile_ = true;
    waitFor(f, std::nullopt, gw_->opts.manifestTimeout);
  }

  void withManifest(FileEntry& f) {
    const Manifest& m = *f.manifest;
    if (manifestOnly_) {  // (a manifest holds no secret: an encrypted file's too)
      endJob();
      auto json = manifestToJson(m);
      if (!json) return sendSimple(http::status::internal_server_error, json.error().message() + "\n");
      return sendSimple(http::status::ok, std::move(*json), false,
                        {{http::field::content_type, "application/json"}, {http::field::access_control_allow_origin, "*"}});
    }
    if (m.encryption && !key_) {
      endJob();
      return sendSimple(http::status::forbidden,
                        "the file is encrypted and the gateway has no key: add ?k=<64 hex key> (the k= of its link)\n");
    }
    const std::string etag = etagFor(f.id);
    const ResponsePlan plan = planFileResponse(fileReq_, m.size, etag);
    http::response<http::empty_body> res{static_cast<http::status>(plan.status), 11};
    res.set(http::field::server, kServer);
    res.set(http::field::etag, etag);
    res.set(http::field::accept_ranges, "bytes");
    res.set(http::field::cache_control, "public, max-age=31536000, immutable");
    res.set(http::field::access_control_allow_origin, "*");
    if (plan.status != 304) {
      res.set(http::field::content_type, contentType(m));
      res.set(http::field::content_disposition, contentDisposition(m.name));
      // The file comes from peers: never let it run as a page of this origin.
      res.set("X-Content-Type-Options", "nosniff");
      res.set("Content-Security-Policy", "sandbox");
      res.content_length(plan.contentLength);
    }
    if (!plan.contentRange.empty()) res.set(http::field::content_range, plan.contentRange);
    res.keep_alive(keepAlive_);
    ++gw_->byStatus[plan.status];
    std::ostringstream os;
    os << res.base();
    if (!plan.body || head_) {
      endJob();
      return writeRaw(os.str(), {});
    }
    job_.emplace();
    job_->id = f.id;
    job_->manifest = std::make_shared<const Manifest>(m);
    job_->key = key_;
    job_->range = *plan.body;
    job_->pos = plan.body->first;
    job_->header = os.str();
    job_->started = started_;
    inFile_ = true;
    if (auto st = gw_->ensureFetch(f); !st) return failJob(http::status::service_unavailable, st.error().message());
    pump();
  }

  // Sends the next piece of the job's range: the rest of the chunk that holds
  // `pos`, as soon as the chunk is held.
  void pump() {
    if (closed_ || !job_) return;
    Job& j = *job_;
    FileEntry& f = gw_->entry(j.id);
    const std::uint32_t cs = j.manifest->chunkSize;
    const auto c = static_cast<ChunkIndex>(j.pos / cs);
    gw_->position(f, id_, c, j.fresh);
    j.fresh = false;
    if (!gw_->has(f, c)) {
      if (!f.fetching() && !f.complete) {
        if (auto st = gw_->ensureFetch(f); !st) return failJob(http::status::bad_gateway, st.error().message());
      }
      // (The node may have had it in the store all along.)
      if (!gw_->has(f, c)) return waitFor(f, c, gw_->opts.chunkTimeout);
    }
    // Read, verified and decrypted on the reads queue (or here without one).
    const std::uint64_t gen = ++readGen_;
    auto task = [store = &gw_->store, id = j.id, m = j.manifest, key = j.key, c]() -> Result<Bytes> {
      auto stored = store->getChunk(id, c, ReadOptions{.verify = true});
      if (!stored || !key) return stored;
      auto plain = ChunkManager::decryptChunk(*key, *m, c, *stored);
      if (!plain) return fail(Errc::kCrypto, "decrypt", plain.error().message());
      return plain;
    };
    if (gw_->reads) {
      // The task holds the connection (no socket operation does meanwhile).
      auto* io = &gw_->io;
      if (gw_->reads->post([task, io, self = shared_from_this(), gen, c]() mutable {
            asio::post(*io, [self = std::move(self), gen, c, r = task()]() mutable {
              self->chunkRead(gen, c, std::move(r));
            });
          })) {
        return;
      }
    }
    chunkRead(gen, c, task());  // no queue, or it is full
  }

  void chunkRead(std::uint64_t gen, ChunkIndex c, Result<Bytes> r) {
    if (closed_ || !job_ || gen != readGen_) return;
    Job& j = *job_;
    if (!r) {
      if (r.error().code() == Errc::kCrypto) {
        return failJob(http::status::forbidden, "cannot decrypt the file with this key (" + r.error().message() + ")");
      }
      return failJob(http::status::internal_server_error, r.error().message());
    }
    chunk_ = std::move(*r);
    const std::uint32_t cs = j.manifest->chunkSize;
    const std::uint64_t chunkStart = std::uint64_t{c} * cs;
    const std::uint64_t chunkEnd = chunkStart + chunk_.size();  // exclusive
    if (chunkEnd <= j.pos) return failJob(http::status::internal_server_error, "stored chunk shorter than expected");
    const std::uint64_t end = std::min(chunkEnd, j.range.last + 1);
    const auto off = static_cast<std::size_t>(j.pos - chunkStart);
    const auto len = static_cast<std::size_t>(end - j.pos);
    std::string header;
    if (!j.headerSent) {
      header = std::move(j.header);
      j.headerSent = true;
    }
    writeRaw(std::move(header), ByteView(chunk_.data() + off, len));
  }

  // Waits for the manifest (chunk unset) or a chunk of `f`, with a time-out,
  // and notices a client that hangs up meanwhile.
  void waitFor(FileEntry& f, std::optional<ChunkIndex> chunk, std::chrono::milliseconds timeout) {
    waiting_ = true;
    const std::uint64_t gen = ++waitGen_;
    std::weak_ptr<Conn> weak = weak_from_this();
    gw_->wait(f, id_, chunk, [weak, gen](Status st) {
      if (auto self = weak.lock()) self->onWake(gen, std::move(st));
    });
    // These two hold the connection alive while it waits (the entry's waiter
    // does not); close() cancels them.
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
      if (!ec) self->onWaitTimeout(gen);
    });
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), gen](error_code ec) {
      if (!ec) self->onReadableWhileWaiting(gen);
    });
  }

  bool endWait(std::uint64_t gen) {
    if (!waiting_ || gen != waitGen_ || closed_) return false;
    waiting_ = false;
    timer_.cancel();
    error_code ignored;
    stream_.socket().cancel(ignored);  // the wait_read
    gw_->stopWaiting(fileId_, id_);
    return true;
  }

  void onWake(std::uint64_t gen, Status st) {
    if (!endWait(gen)) return;
    if (!st) return failJob(http::status::bad_gateway, st.error().message());
    if (job_) return pump();
    FileEntry& f = gw_->entry(fileId_);
    if (f.manifest) return withManifest(f);
    failJob(http::status::bad_gateway, "the fetch ended without a manifest");
  }

  void onWaitTimeout(std::uint64_t gen) {
    if (!endWait(gen)) return;
    if (!job_) {
      return failJob(http::status::not_found,
                     "not in the store, and no peer gave its manifest within " +
                         std::to_string(gw_->opts.manifestTimeout.count()) + " ms");
    }
    failJob(http::status::gateway_timeout, "no peer sent the chunk needed within " +
                                               std::to_string(gw_->opts.chunkTimeout.count()) + " ms");
  }

  // While a response waits, readable means the client hung up or pipelines
  // its next request. Pipelined bytes are moved into the read buffer (the
  // next request is parsed from there) and the watch goes on, so a hang-up
  // after them is still noticed; past kMaxPipelined bytes the watch stops.
  static constexpr std::size_t kMaxPipelined = 64 * 1024;
  void onReadableWhileWaiting(std::uint64_t gen) {
    if (!waiting_ || gen != waitGen_ || closed_) return;
    error_code ec;
    const std::size_t avail = stream_.socket().available(ec);
    if (ec || avail == 0) return close();  // readable with nothing to read: end of stream
    if (buffer_.size() + avail > kMaxPipelined) return;
    const std::size_t n = stream_.socket().read_some(buffer_.prepare(avail), ec);
    if (ec || n == 0) return close();
    buffer_.commit(n);
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), gen](error_code e) {
      if (!e) self->onReadableWhileWaiting(gen);
    });
  }

  // An error for the current file request: a status while nothing was sent,
  // else the connection closes (the client sees a short body).
  void failJob(http::status status, const std::string& why) {
    const bool sent = job_ && job_->headerSent;
    endJob();
    if (sent) return close();
    sendSimple(status, why + "\n", true);
  }

  void endJob() {
    if (inFile_) gw_->release(fileId_, id_);
    inFile_ = false;
    job_.reset();
  }

  // ---- writing ------------------------------------------------------------------

  void sendSimple(http::status status, std::string body, bool closeAfter = false,
                  std::initializer_list<std::pair<http::field, std::string_view>> fields = {}) {
    if (closeAfter) keepAlive_ = false;
    http::response<http::empty_body> res{status, 11};
    res.set(http::field::server, kServer);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    for (const auto& [f, v] : fields) res.set(f, v);
    res.content_length(body.size());
    res.keep_alive(keepAlive_);
    ++gw_->byStatus[static_cast<unsigned>(status)];
    std::ostringstream os;
    os << res.base();
    text_ = head_ ? std::string() : std::move(body);
    writeRaw(os.str(), asBytes(text_));
  }

  void sendAppFile(const std::string& rel, std::optional<std::string_view> ifNoneMatch) {
    auto f = gw_->app.get(rel);
    if (!f) return sendSimple(http::status::not_found, "no such page\n");
    const bool fresh = ifNoneMatch && ifNoneMatchHits(*ifNoneMatch, (*f)->etag);
    ++gw_->byStatus[fresh ? 304u : 200u];
    appBody_ = *f;  // shared with other responses; alive until this write is done
    writeRaw(appResponseHead(**f, rel, fresh, keepAlive_), head_ || fresh ? ByteView{} : asBytes(appBody_->body));
  }

  // Writes `header` (may be empty) and then `body`; `body` must stay alive
  // until the write completes (it points into chunk_ or text_).
  void writeRaw(std::string header, ByteView body) {
    if (closed_) return;
    header_ = std::move(header);
    std::array<asio::const_buffer, 2> bufs{asio::buffer(header_), asio::buffer(body.data(), body.size())};
    stream_.expires_after(gw_->opts.writeTimeout);
    asio::async_write(stream_, bufs, [self = shared_from_this(), n = body.size()](error_code ec, std::size_t) {
      self->onWrite(ec, n);
    });
  }

  void onWrite(error_code ec, std::size_t bodyBytes) {
    if (closed_) return;
    if (ec) return close();
    gw_->stats.bytesSent += bodyBytes;
    if (job_) {
      Job& j = *job_;
      if (j.pos == j.range.first && bodyBytes > 0) {
        ++gw_->stats.firstByteCount;
        gw_->stats.firstByteSecondsSum += std::chrono::duration<double>(Clock::now() - j.started).count();
      }
      j.pos += bodyBytes;
      if (j.pos <= j.range.last) return pump();
      endJob();
    }
    if (!keepAlive_) return close();
    doRead();
  }

  std::shared_ptr<Gateway::Impl> gw_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  asio::steady_timer timer_;
  std::uint64_t id_;
  bool firstRequest_ = true;
  bool keepAlive_ = false;
  bool head_ = false;
  bool manifestOnly_ = false;  // GET /api/manifest/<id>
  std::shared_ptr<const AppFile> appBody_;  // the web-app file being written
  bool closed_ = false;
  // The file request: its validators, key and id; job_ once its manifest is known.
  FileRequest fileReq_;
  std::optional<EncryptionKey> key_;
  FileId fileId_{};
  bool inFile_ = false;  // registered with the file's entry (release at the end)
  Clock::time_point started_;
  std::optional<Job> job_;
  bool waiting_ = false;
  std::uint64_t waitGen_ = 0;
  std::uint64_t readGen_ = 0;  // the chunk read in flight (a stale completion is ignored)
  std::string header_, text_;
  Bytes chunk_;
};

}  // namespace

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
        auto c = std::make_shared<Conn>(self, std::move(socket), id);
        self->conns.emplace(id, c);
        c->run();
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
    if (auto c = w.lock()) c->close();
  }
}

std::uint16_t Gateway::port() const { return impl_->boundPort; }

GatewayStats Gateway::stats() const {
  GatewayStats s = impl_->stats;
  s.connectionsOpen = impl_->conns.size();
  for (const auto& [id, f] : impl_->files) s.responsesWaiting += f.waiters.size();
  return s;
}

Status Gateway::fetch(const FileId& id, std::optional<Manifest> manifest) {
  FileEntry& f = impl_->entry(id);
  if (manifest) {
    auto mid = manifestId(*manifest);
    if (!mid) return fail(mid.error());
    if (*mid != id) return fail(Errc::kIntegrity, "gateway fetch", "manifest does not match the file id");
  }
  auto st = impl_->ensureFetch(f, std::move(manifest));
  // A file nobody waits for stays listed (the page shows its progress).
  return st;
}

}  // namespace p2pcdn::gateway
