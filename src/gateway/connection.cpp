// One HTTP/1.1 connection of the gateway: reads requests (Beast), answers
// pages, app files and file ranges, waits for manifests and chunks through
// the gateway's file entries (gateway_impl.hpp), and writes with back-pressure.
#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <sstream>

#include "gateway/gateway_impl.hpp"
#include "p2pcdn/chunk_manager.hpp"

namespace p2pcdn::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
using error_code = boost::system::error_code;

constexpr const char* kServer = "p2pcdn-gateway";


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
    auto field = [&req](http::field f) -> std::optional<std::string_view> {
      auto it = req.find(f);
      if (it == req.end()) return std::nullopt;
      return std::string_view(it->value().data(), it->value().size());
    };
    // Only requests meant for this gateway (DNS rebinding, cross-origin pages).
    const auto host = field(http::field::host);
    const auto origin = field(http::field::origin);
    if (!hostAllowed(host, gw_->policy)) {
      return sendSimple(http::status::misdirected_request,
                        "this gateway does not answer to that Host (serve --allow-host NAME adds one)\n");
    }
    auto named = [&req](std::string_view name) -> std::optional<std::string_view> {
      auto it = req.find(name);
      if (it == req.end()) return std::nullopt;
      return std::string_view(it->value().data(), it->value().size());
    };
    if (!originAllowed(origin, host, gw_->policy) ||
        !fetchSiteAllowed(named("Sec-Fetch-Site"), named("Sec-Fetch-Mode"), origin, gw_->policy)) {
      return sendSimple(http::status::forbidden,
                        "cross-origin requests are refused (serve --cors ORIGIN allows one)\n");
    }
    cors_ = corsHeader(origin, gw_->policy);
    authorized_ = tokenPresented(field(http::field::authorization), field(http::field::cookie), gw_->opts.accessToken);
    const Route r = route(std::string_view(req.target().data(), req.target().size()));
    switch (r.kind) {
      case RouteKind::kIndex:
        if (gw_->app.enabled()) return sendAppFile("app/index.html", field(http::field::if_none_match));
        [[fallthrough]];
      case RouteKind::kFilesPage:
      case RouteKind::kFilesJson:
        return sendListing(r.kind == RouteKind::kFilesJson);
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
    if (!key_ && gw_->opts.keyFor && authorized_) key_ = gw_->opts.keyFor(r.fileId);
    started_ = Clock::now();
    fileId_ = r.fileId;
    askedSwarm_ = false;
    FileEntry& f = gw_->entry(r.fileId);
    if (f.manifest) return withManifest(f);
    inFile_ = true;
    if (!f.loaded) return waitFor(f, std::nullopt, gw_->opts.manifestTimeout);  // the store is being read
    askSwarm(f);
  }

  // No manifest in the store: the node's fetch asks the swarm for it.
  void askSwarm(FileEntry& f) {
    if (!authorized_) {
      endJob();
      return sendSimple(http::status::unauthorized,
                        "this gateway fetches ids it does not hold only for requests with its access token "
                        "(Authorization: Bearer, or the cookie p2pcdn_token)\n",
                        false, {{http::field::www_authenticate, "Bearer"}});
    }
    askedSwarm_ = true;
    if (auto st = gw_->ensureFetch(f); !st) {
      endJob();
      return sendSimple(http::status::service_unavailable, st.error().message() + "\n", false,
                        {{http::field::retry_after, "5"}});
    }
    waitFor(f, std::nullopt, gw_->opts.manifestTimeout);
  }

  // The stored files and those being served (read off the loop: the task holds the connection).
  void sendListing(bool json) {
    gw_->listing([self = shared_from_this(), json](std::vector<IndexEntry> files) {
      if (self->closed_) return;
      if (json) {
        return self->sendSimple(http::status::ok, renderFilesJson(files), false,
                                {{http::field::content_type, "application/json"}});
      }
      self->sendSimple(http::status::ok, renderIndex(files), false,
                       {{http::field::content_type, "text/html; charset=utf-8"}});
    });
  }

  void withManifest(FileEntry& f) {
    const Manifest& m = *f.manifest;
    if (manifestOnly_) {  // (a manifest holds no secret: an encrypted file's too)
      endJob();
      auto json = manifestToJson(m);
      if (!json) return sendSimple(http::status::internal_server_error, json.error().message() + "\n");
      if (cors_) {
        return sendSimple(http::status::ok, std::move(*json), false,
                          {{http::field::content_type, "application/json"},
                           {http::field::access_control_allow_origin, *cors_},
                           {http::field::vary, "Origin"}});
      }
      if (!gw_->policy.corsOrigins.empty()) {
        return sendSimple(http::status::ok, std::move(*json), false,
                          {{http::field::content_type, "application/json"}, {http::field::vary, "Origin"}});
      }
      return sendSimple(http::status::ok, std::move(*json), false, {{http::field::content_type, "application/json"}});
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
    if (cors_) res.set(http::field::access_control_allow_origin, *cors_);
    if (!gw_->policy.corsOrigins.empty()) res.set(http::field::vary, "Origin");  // named origins: caches must key on it
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
    // Read, verified and decrypted on the reads queue; the callback holds the
    // connection (no socket operation does meanwhile).
    const std::uint64_t gen = ++readGen_;
    gw_->offLoop<Result<Bytes>>(
        [store = &gw_->store, id = j.id, m = j.manifest, key = j.key, c]() -> Result<Bytes> {
          auto stored = store->getChunk(id, c, ReadOptions{.verify = true});
          if (!stored || !key) return stored;
          auto plain = ChunkManager::decryptChunk(*key, *m, c, *stored);
          if (!plain) return fail(Errc::kCrypto, "decrypt", plain.error().message());
          return plain;
        },
        [self = shared_from_this(), gen, c](Result<Bytes> r) { self->chunkRead(gen, c, std::move(r)); });
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
    if (!askedSwarm_ && f.loaded) return askSwarm(f);  // the store had none
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
  bool askedSwarm_ = false;    // this request's manifest was asked of the swarm (the store had none)
  bool authorized_ = true;     // it presented the access token (or none is set)
  std::shared_ptr<const AppFile> appBody_;  // the web-app file being written
  bool closed_ = false;
  // The file request: its validators, key and id; job_ once its manifest is known.
  FileRequest fileReq_;
  std::optional<EncryptionKey> key_;
  std::optional<std::string> cors_;  // Access-Control-Allow-Origin for this request (RequestPolicy)
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

std::shared_ptr<Conn> makeConnection(std::shared_ptr<Gateway::Impl> gw, tcp::socket socket, std::uint64_t id) {
  return std::make_shared<Conn>(std::move(gw), std::move(socket), id);
}

void runConnection(Conn& c) { c.run(); }

void closeConnection(Conn& c) { c.close(); }

}  // namespace p2pcdn::gateway
