// TrackerServer: Boost.Beast WebSocket + HTTP on one port, one io_context
// thread. The rules live in SwarmRegistry (pure); this file is the I/O edge:
// accepting, HTTP, WebSocket sessions, limits, timers, shutdown.
#include "tracker/tracker_server.hpp"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <array>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "signaling/signaling.hpp"
#include "tracker/fleet.hpp"
#include "tracker/rate_limit.hpp"
#include "tracker/swarm_registry.hpp"

namespace p2pcdn::tracker {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr std::size_t kMaxHttpHeaderBytes = 8 * 1024;
constexpr std::size_t kMaxHttpBodyBytes = 4 * 1024;
constexpr std::size_t kShrinkBufferAbove = 16 * 1024;
constexpr auto kStopGrace = std::chrono::milliseconds(2500);

}  // namespace

class TrackerServer::Impl {
 public:
  class HttpSession;
  class WsSession;
  template <class Stream>
  class HttpSessionT;
  template <class Stream>
  class WsSessionT;

  // Where a connection comes from, for the per-source limit: an IPv4 address,
  // or an IPv6 /64 (one host's share, as addresses within it are free).
  using Source = std::array<std::uint8_t, 16>;
  struct SourceHash {
    std::size_t operator()(const Source& s) const noexcept {
      std::uint64_t a, b;
      std::memcpy(&a, s.data(), 8);
      std::memcpy(&b, s.data() + 8, 8);
      return static_cast<std::size_t>((a * 0x9e3779b97f4a7c15ull) ^ (b + 0x632be59bd9b4e019ull + (a << 6)));
    }
  };
  // s[0] is the family tag (4 or 6); an IPv4 client of a dual-stack listener
  // (::ffff:a.b.c.d) counts as that IPv4 address.
  static Source sourceOf(const net::ip::address& a) {
    Source s{};
    if (a.is_v4() || (a.is_v6() && a.to_v6().is_v4_mapped())) {
      const auto b = a.is_v4() ? a.to_v4().to_bytes()
                               : net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6()).to_bytes();
      s[0] = 4;
      std::copy(b.begin(), b.end(), s.begin() + 1);
    } else {
      const auto b = a.to_v6().to_bytes();
      s[0] = 6;
      std::copy(b.begin(), b.begin() + 8, s.begin() + 1);  // the /64
    }
    return s;
  }

  // Counts one open TCP connection, in all and per source, for as long as it
  // lives (moved from the HTTP session into the WebSocket session on upgrade).
  class ConnectionSlot {
   public:
    ConnectionSlot() = default;
    ConnectionSlot(Impl* server, const Source& source) : server_(server), source_(source) {
      ++server_->openConnections_;
      ++server_->perSource_[source_];
    }
    ConnectionSlot(ConnectionSlot&& o) noexcept : server_(std::exchange(o.server_, nullptr)), source_(o.source_) {}
    ConnectionSlot& operator=(ConnectionSlot&&) = delete;
    ~ConnectionSlot() {
      if (!server_) return;
      --server_->openConnections_;
      auto it = server_->perSource_.find(source_);
      if (it != server_->perSource_.end() && --it->second == 0) server_->perSource_.erase(it);
    }

   private:
    Impl* server_ = nullptr;
    Source source_{};
  };

  explicit Impl(TrackerOptions options)
      : options_(options),
        registry_(RegistryOptions{options.interval, options.maxSwarmsPerConnection}),
        acceptor_(ioc_),
        sweepTimer_(ioc_),
        retryTimer_(ioc_) {
    if (options_.idleTimeout.count() <= 0) options_.idleTimeout = 2 * options_.interval + std::chrono::seconds(30);
    rateLimitedText_ = signaling::encodeTrackerMessage(signaling::Failure{
        "rate limit exceeded: at most " + std::to_string(static_cast<long long>(options_.rateLimit)) +
            " messages per second",
        signaling::Action::kAnnounce, std::nullopt});
    binaryText_ = signaling::encodeTrackerMessage(
        signaling::Failure{"binary frames are not supported: send JSON as text", std::nullopt, std::nullopt});
  }

  ~Impl() { stop(); }

  Status start(std::string_view host, std::uint16_t port) {
    std::lock_guard lock(control_);
    if (started_) return fail(Errc::kInvalidArgument, "start tracker", "a TrackerServer starts once");
    error_code ec;
    tcp::endpoint endpoint;
    const std::string hostText(host.empty() ? "0.0.0.0" : host);
    auto address = net::ip::make_address(hostText, ec);
    if (!ec) {
      endpoint = tcp::endpoint(address, port);
    } else {
      tcp::resolver resolver(ioc_);
      auto results = resolver.resolve(hostText, std::to_string(port), ec);
      if (ec || results.empty()) return fail(Errc::kInvalidArgument, "start tracker", "cannot resolve " + hostText);
      endpoint = results.begin()->endpoint();
    }
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      error_code ignored;
      acceptor_.close(ignored);
      return fail(Errc::kIo, "start tracker", "listen on " + hostText + ":" + std::to_string(port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint(ec).port();
    if (!options_.tlsCert.empty() || !options_.tlsKey.empty()) {
      if (auto st = loadTls(); !st) {
        error_code ignored;
        acceptor_.close(ignored);
        return st;
      }
    }
    if (!options_.redisUrl.empty()) {
      auto redis = parseRedisUrl(options_.redisUrl);
      if (!redis) {
        error_code ignored;
        acceptor_.close(ignored);
        return fail(redis.error());
      }
      FleetOptions fo;
      fo.redis = *redis;
      fo.peerTtl = 2 * options_.interval;
      fleet_ = std::make_unique<TrackerFleet>(ioc_, fo, registry_,
                                              [this](ConnectionId to, std::string text) { sendTo(to, std::move(text)); });
      fleet_->start();
    }
    started_ = true;
    doAccept();
    armSweep();
    std::promise<void> exited;
    exited_ = exited.get_future();
    thread_ = std::thread([this, exited = std::move(exited)]() mutable {
      for (;;) {
        try {
          ioc_.run();
          break;
        } catch (const std::exception& e) {  // nothing should throw; keep serving if it does
          std::fprintf(stderr, "p2pcdn tracker: handler threw: %s\n", e.what());
        }
      }
      exited.set_value();
    });
    return {};
  }

  std::uint16_t port() const { return port_.load(); }

  // wss://: the certificate chain and key (PEM), TLS 1.2 or later.
  Status loadTls() {
    const char* op = "start tracker (TLS)";
    if (options_.tlsCert.empty() || options_.tlsKey.empty()) {
      return fail(Errc::kInvalidArgument, op, "--tls-cert and --tls-key go together");
    }
    auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    error_code ec;
    ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                         net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                         net::ssl::context::single_dh_use,
                     ec);
    if (!ec) ctx->use_certificate_chain_file(options_.tlsCert, ec);
    if (ec) return fail(Errc::kInvalidArgument, op, "certificate " + options_.tlsCert + ": " + ec.message());
    ctx->use_private_key_file(options_.tlsKey, net::ssl::context::pem, ec);
    if (ec) return fail(Errc::kInvalidArgument, op, "key " + options_.tlsKey + ": " + ec.message());
    tls_ = std::move(ctx);
    return {};
  }

  void stop() {
    std::lock_guard lock(control_);
    if (!thread_.joinable()) return;
    net::post(ioc_, [this] { shutdown(); });
    if (exited_.wait_for(kStopGrace + std::chrono::milliseconds(500)) != std::future_status::ready) {
      ioc_.stop();  // a peer that never finished its close handshake
    }
    thread_.join();
  }

  TrackerStats stats() {
    std::lock_guard lock(control_);
    if (!thread_.joinable()) return snapshot();
    std::promise<TrackerStats> p;
    auto f = p.get_future();
    net::post(ioc_, [&] { p.set_value(snapshot()); });
    return f.get();
  }

  // ---- loop thread only below ----

  TrackerStats snapshot() const {
    TrackerStats s = stats_;
    const RegistryCounts c = registry_.counts();
    const RegistryCounters& k = registry_.counters();
    s.connections = sessions_.size();
    s.swarms = c.swarms;
    s.peers = c.peers;
    s.seeders = c.seeders;
    s.leechers = c.leechers;
    s.announces = k.announces;
    s.scrapes = k.scrapes;
    s.offersRelayed = k.offersRelayed;
    s.answersRelayed = k.answersRelayed;
    s.answersUnroutable = k.answersUnroutable;
    s.errors += k.refused;
    s.peersExpired = k.expired;
    if (fleet_) {
      const FleetStats f = fleet_->stats();
      s.redisUp = f.redisUp ? 1 : 0;
      s.redisConnects = f.redis.connects + f.bus.connects;
      s.redisErrors = f.redis.errors + f.bus.errors;
      s.redisTimeouts = f.redis.timeouts + f.bus.timeouts;
      s.redisRttMicros = static_cast<std::uint64_t>(f.redis.rttLastSeconds * 1e6);
      s.redisRttMicrosSum = static_cast<std::uint64_t>(f.redis.rttSecondsSum * 1e6);
      s.redisRttCount = f.redis.rttCount;
      s.fleetAnnounces = f.announces;
      s.fleetFallbacks = f.localFallbacks;
      s.fleetOffersPublished = f.offersPublished;
      s.fleetOffersReceived = f.offersReceived;
      s.fleetAnswersPublished = f.answersPublished;
      s.fleetAnswersReceived = f.answersReceived;
      s.fleetUndeliverable = f.undeliverable;
      s.fleetRepublished = f.republished;
      s.offersRelayed += f.offersLocal + f.offersPublished;
      s.answersRelayed += f.answersPublished;
      s.answersUnroutable += f.answersUnroutable;
    }
    return s;
  }

  void doAccept() {
    acceptor_.async_accept(ioc_, [this](error_code ec, tcp::socket socket) { onAccept(ec, std::move(socket)); });
  }

  void onAccept(error_code ec, tcp::socket socket);

  void armSweep() {
    auto period = std::clamp<std::chrono::milliseconds>(options_.interval / 2, std::chrono::milliseconds(100),
                                                        std::chrono::milliseconds(10'000));
    sweepTimer_.expires_after(period);
    sweepTimer_.async_wait([this](error_code ec) {
      if (ec || shuttingDown_) return;
      const TimePoint now = Clock::now();
      registry_.expire(now);
      closeIdle(now);
      armSweep();
    });
  }

  void shutdown();

  // Closes the connections that sent no message for idleTimeout.
  void closeIdle(TimePoint now);

  // A WebSocket message (text or binary) from session s.
  void onMessage(WsSession& s, bool text, std::string_view payload);
  void deliver(std::vector<Delivery>& out);
  void sendTo(ConnectionId to, std::string text);
  void onWsOpen(const std::shared_ptr<WsSession>& s);
  void onWsClosed(ConnectionId id) {
    left_.clear();
    registry_.removeConnection(id, fleet_ ? &left_ : nullptr);
    if (fleet_) fleet_->left(left_);
    sessions_.erase(id);
  }

  http::response<http::string_body> handleHttp(const http::request<http::string_body>& req);

  TrackerOptions options_;
  TrackerStats stats_;  // the counters kept here (the rest comes from the registry)
  SwarmRegistry registry_;
  std::size_t openConnections_ = 0;
  std::unordered_map<Source, std::size_t, SourceHash> perSource_;
  ConnectionId nextId_ = 1;
  bool shuttingDown_ = false;
  std::string rateLimitedText_;
  std::string binaryText_;
  std::vector<Delivery> out_;
  FleetAnnounce fleetAnnounce_;
  std::vector<Member> left_;
  std::vector<std::shared_ptr<WsSession>> idle_;

  std::mutex control_;  // start / stop / stats from other threads
  std::thread thread_;
  std::future<void> exited_;
  std::atomic<std::uint16_t> port_{0};
  bool started_ = false;

  std::unique_ptr<net::ssl::context> tls_;  // wss:// (before ioc_: the sessions use it)

  // Declared after the state above: destroyed first. Destroying ioc_ destroys
  // pending handlers and with them the sessions they own.
  net::io_context ioc_{1};
  tcp::acceptor acceptor_;
  net::steady_timer sweepTimer_;
  net::steady_timer retryTimer_;
  std::unordered_map<ConnectionId, std::shared_ptr<WsSession>> sessions_;
  std::unordered_map<std::uint64_t, std::weak_ptr<HttpSession>> httpSessions_;
  std::unique_ptr<TrackerFleet> fleet_;  // after ioc_: its Redis sockets go first
};

// ---- WebSocket session -------------------------------------------------------------

// What the server keeps of a WebSocket connection, whatever carries it (TCP,
// or TLS on TCP: WsSessionT<Stream>).
class TrackerServer::Impl::WsSession {
 public:
  WsSession(Impl& server, ConnectionSlot&& slot, ConnectionId id)
      : server_(server), slot_(std::move(slot)), id_(id) {
    const auto now = Clock::now();
    const TrackerOptions& o = server_.options_;
    rate_ = TokenBucket(o.rateLimit, o.rateBurst, now);
    abuse_ = TokenBucket(o.rateLimit / 10, static_cast<double>(o.abuseLimit), now);
  }
  virtual ~WsSession() = default;

  ConnectionId id() const { return id_; }
  TokenBucket& rate() { return rate_; }
  TokenBucket& abuse() { return abuse_; }
  TimePoint lastMessage() const { return lastMessage_; }
  void heard(TimePoint now) { lastMessage_ = now; }
  // True the first time: it is being closed as idle.
  bool markIdle() { return !std::exchange(idleClosed_, true); }
  virtual void send(std::string text) = 0;
  virtual void close(websocket::close_code code) = 0;
  virtual void abort() = 0;

 protected:
  Impl& server_;
  ConnectionSlot slot_;
  ConnectionId id_;
  TokenBucket rate_;
  TokenBucket abuse_;
  TimePoint lastMessage_ = Clock::now();
  bool idleClosed_ = false;
};

template <class Stream>
class TrackerServer::Impl::WsSessionT : public WsSession, public std::enable_shared_from_this<WsSessionT<Stream>> {
 public:
  WsSessionT(Impl& server, Stream&& stream, ConnectionSlot&& slot, ConnectionId id)
      : WsSession(server, std::move(slot), id), ws_(std::move(stream)) {}

  void run(http::request<http::string_body> req) {
    const TrackerOptions& o = server_.options_;
    beast::get_lowest_layer(ws_).expires_never();  // the WebSocket timeouts take over
    websocket::stream_base::timeout t{};
    t.handshake_timeout = o.handshakeTimeout;
    t.idle_timeout = o.idleTimeout;
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "p2pcdn-tracker"); }));
    ws_.read_message_max(signaling::kMaxMessageBytes);
    ws_.auto_fragment(false);
    ws_.async_accept(req, [self = this->shared_from_this()](error_code ec) { self->onAccept(ec); });
  }

  // Queues one text message. A connection that lets maxQueuedBytes pile up
  // is not reading: it is dropped.
  void send(std::string text) override {
    if (closing_ || finished_) return;
    if (queuedBytes_ + text.size() > server_.options_.maxQueuedBytes) {
      ++server_.stats_.closedSlow;
      abort();
      return;
    }
    queuedBytes_ += text.size();
    queue_.push_back(std::move(text));
    if (!writing_) doWrite();
  }

  // Closing handshake with `code` once the message being written is out.
  void close(websocket::close_code code) override {
    if (closing_ || finished_) return;
    closing_ = true;
    closeCode_ = code;
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      queuedBytes_ -= queue_.back().size();
      queue_.pop_back();
    }
    if (!writing_) startClose();
  }

  // Drops the TCP connection now; the pending read then ends the session.
  void abort() override {
    closing_ = true;
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

 private:
  void onAccept(error_code ec) {
    if (ec || server_.shuttingDown_) {
      abort();
      return;
    }
    open_ = true;
    ws_.text(true);
    server_.onWsOpen(this->shared_from_this());
    doRead();
  }

  void doRead() {
    ws_.async_read(buffer_, [self = this->shared_from_this()](error_code ec, std::size_t n) { self->onRead(ec, n); });
  }

  void onRead(error_code ec, std::size_t n) {
    if (ec) {
      // message_too_big: Beast has already sent close 1009 and dropped the connection.
      if (ec == websocket::error::message_too_big) ++server_.stats_.closedOversized;
      finish();
      return;
    }
    ++server_.stats_.messagesIn;
    server_.stats_.bytesIn += n;
    if (!closing_) {
      const auto data = buffer_.cdata();
      server_.onMessage(*this, ws_.got_text(),
                        std::string_view(static_cast<const char*>(data.data()), data.size()));
    }
    buffer_.consume(buffer_.size());
    if (buffer_.capacity() > kShrinkBufferAbove) buffer_.shrink_to_fit();
    doRead();  // also while closing: Beast needs the read to see the peer's close frame
  }

  void doWrite() {
    writing_ = true;
    ws_.async_write(net::buffer(queue_.front()),
                    [self = this->shared_from_this()](error_code ec, std::size_t n) { self->onWrite(ec, n); });
  }

  void onWrite(error_code ec, std::size_t n) {
    writing_ = false;
    queuedBytes_ -= queue_.front().size();
    queue_.pop_front();
    if (ec) {
      abort();
      return;
    }
    ++server_.stats_.messagesOut;
    server_.stats_.bytesOut += n;
    if (closing_) {
      if (!finished_) startClose();
    } else if (!queue_.empty()) {
      doWrite();
    }
  }

  void startClose() {
    if (closeStarted_) return;
    closeStarted_ = true;
    ws_.async_close(websocket::close_reason(closeCode_), [self = this->shared_from_this()](error_code ec) {
      if (ec) self->abort();
    });
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    while (queue_.size() > (writing_ ? 1u : 0u)) {  // the one being written stays until onWrite
      queuedBytes_ -= queue_.back().size();
      queue_.pop_back();
    }
    if (open_) server_.onWsClosed(id_);
  }

  websocket::stream<Stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  std::size_t queuedBytes_ = 0;
  websocket::close_code closeCode_ = websocket::close_code::normal;
  bool open_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool closeStarted_ = false;
  bool finished_ = false;
};

// ---- HTTP session (stats, metrics, the WebSocket upgrade) -------------------------

class TrackerServer::Impl::HttpSession {
 public:
  virtual ~HttpSession() = default;
  virtual void abort() = 0;
};

// Stream: beast::tcp_stream, or beast::ssl_stream<beast::tcp_stream> (--tls-cert):
// then the TLS handshake comes first, under the same handshake deadline.
template <class Stream>
class TrackerServer::Impl::HttpSessionT : public HttpSession, public std::enable_shared_from_this<HttpSessionT<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  template <class... Args>
  HttpSessionT(Impl& server, const Source& source, std::uint64_t id, Args&&... stream)
      : server_(server), stream_(std::forward<Args>(stream)...), slot_(&server, source), id_(id) {}

  void run() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(server_.options_.handshakeTimeout);
      stream_.async_handshake(net::ssl::stream_base::server, [self = this->shared_from_this()](error_code ec) {
        if (ec) return self->done();
        self->doRead();
      });
    } else {
      doRead();
    }
  }

  void abort() override {
    error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).socket().close(ignored);
  }

 private:
  void doRead() {
    parser_.emplace();
    parser_->header_limit(kMaxHttpHeaderBytes);
    parser_->body_limit(kMaxHttpBodyBytes);
    beast::get_lowest_layer(stream_).expires_after(server_.options_.handshakeTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](error_code ec, std::size_t) { self->onRead(ec); });
  }

  void onRead(error_code ec) {
    if (ec) return done();
    if (server_.shuttingDown_) return done();
    if (websocket::is_upgrade(parser_->get())) {
      server_.httpSessions_.erase(id_);
      const ConnectionId wsId = server_.nextId_++;
      auto ws = std::make_shared<WsSessionT<Stream>>(server_, std::move(stream_), std::move(slot_), wsId);
      ws->run(parser_->release());
      return;
    }
    ++server_.stats_.httpRequests;
    response_ = server_.handleHttp(parser_->get());
    http::async_write(stream_, response_,
                      [self = this->shared_from_this()](error_code e, std::size_t) { self->onWrite(e); });
  }

  void onWrite(error_code ec) {
    if (ec || !response_.keep_alive() || server_.shuttingDown_) return done();
    doRead();
  }

  void done() {
    server_.httpSessions_.erase(id_);
    error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  Impl& server_;
  Stream stream_;
  beast::flat_buffer buffer_{kMaxHttpHeaderBytes};
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  ConnectionSlot slot_;
  std::uint64_t id_;
};

// ---- Impl, loop thread -----------------------------------------------------------

void TrackerServer::Impl::onAccept(error_code ec, tcp::socket socket) {
  if (shuttingDown_ || ec == net::error::operation_aborted) return;
  if (ec) {
    // E.g. out of file descriptors: try again shortly instead of spinning.
    retryTimer_.expires_after(std::chrono::milliseconds(50));
    retryTimer_.async_wait([this](error_code e) {
      if (!e && !shuttingDown_) doAccept();
    });
    return;
  }
  ++stats_.connectionsAccepted;
  error_code peerError;
  const auto peer = socket.remote_endpoint(peerError);
  const Source source = peerError ? Source{} : sourceOf(peer.address());
  std::size_t fromSource = 0;
  if (auto it = perSource_.find(source); it != perSource_.end()) fromSource = it->second;
  if (openConnections_ >= options_.maxConnections || peerError) {
    ++stats_.connectionsRejected;
    error_code ignored;
    socket.close(ignored);
  } else if (options_.maxConnectionsPerSource && fromSource >= options_.maxConnectionsPerSource) {
    ++stats_.connectionsRejected;
    ++stats_.connectionsRejectedPerSource;
    error_code ignored;
    socket.close(ignored);
  } else {
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const std::uint64_t id = nextId_++;
    if (tls_) {
      auto session = std::make_shared<HttpSessionT<TlsStream>>(*this, source, id, std::move(socket), *tls_);
      httpSessions_.emplace(id, session);
      session->run();
    } else {
      auto session = std::make_shared<HttpSessionT<beast::tcp_stream>>(*this, source, id, std::move(socket));
      httpSessions_.emplace(id, session);
      session->run();
    }
  }
  doAccept();
}

void TrackerServer::Impl::closeIdle(TimePoint now) {
  idle_.clear();
  for (auto& [id, s] : sessions_) {
    if (now - s->lastMessage() > options_.idleTimeout && s->markIdle()) idle_.push_back(s);
  }
  for (auto& s : idle_) {
    ++stats_.closedIdle;
    s->close(websocket::close_code::normal);
  }
  idle_.clear();
}

void TrackerServer::Impl::onWsOpen(const std::shared_ptr<WsSession>& s) { sessions_.emplace(s->id(), s); }

void TrackerServer::Impl::onMessage(WsSession& s, bool text, std::string_view payload) {
  const TimePoint now = Clock::now();
  s.heard(now);
  if (!s.rate().take(now)) {
    ++stats_.rateLimited;
    if (!s.abuse().take(now)) {
      ++stats_.closedAbusive;
      s.close(websocket::close_code::policy_error);
      return;
    }
    s.send(rateLimitedText_);
    return;
  }
  if (!text) {
    ++stats_.errors;
    s.send(binaryText_);
    return;
  }
  signaling::DecodeContext context;
  auto message = signaling::decodeClientMessage(payload, &context);
  if (!message) {
    ++stats_.errors;
    s.send(signaling::encodeTrackerMessage(
        signaling::Failure{message.error().detail(), context.action, context.infoHash}));
    return;
  }
  out_.clear();
  registry_.handle(s.id(), *message, now, out_, fleet_ ? &fleetAnnounce_ : nullptr);
  deliver(out_);
  if (fleet_ && fleetAnnounce_.accepted) fleet_->announce(std::move(fleetAnnounce_));
}

void TrackerServer::Impl::deliver(std::vector<Delivery>& out) {
  for (Delivery& d : out) sendTo(d.to, std::move(d.text));
  out.clear();
}

void TrackerServer::Impl::sendTo(ConnectionId to, std::string text) {
  if (auto it = sessions_.find(to); it != sessions_.end()) it->second->send(std::move(text));
}

http::response<http::string_body> TrackerServer::Impl::handleHttp(const http::request<http::string_body>& req) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.set(http::field::server, "p2pcdn-tracker");
  res.set(http::field::cache_control, "no-store");
  std::string_view target(req.target().data(), req.target().size());
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    res.result(http::status::method_not_allowed);
    res.set(http::field::allow, "GET, HEAD");
    res.set(http::field::content_type, "text/plain");
    res.body() = "method not allowed\n";
  } else if (target == "/stats") {
    res.result(http::status::ok);
    res.set(http::field::content_type, "application/json");
    res.set(http::field::access_control_allow_origin, "*");
    res.body() = statsJson(snapshot());
  } else if (target == "/metrics") {
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.body() = statsPrometheus(snapshot());
  } else if (target == "/") {
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain");
    res.body() =
        "p2pcdn tracker: connect a WebSocket here (WebTorrent tracker protocol). GET /stats, GET /metrics.\n";
  } else {
    res.result(http::status::not_found);
    res.set(http::field::content_type, "text/plain");
    res.body() = "not found\n";
  }
  res.keep_alive(req.keep_alive());
  res.prepare_payload();
  if (req.method() == http::verb::head) res.body().clear();  // the GET's headers (Content-Length too), no body
  return res;
}

void TrackerServer::Impl::shutdown() {
  shuttingDown_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  sweepTimer_.cancel();
  retryTimer_.cancel();
  if (fleet_) {
    // Our peers leave Redis before its connections close (else they linger
    // there for 2 x interval); the WebSocket closes below wait no longer.
    fleet_->leaveAll([this] {
      if (fleet_) fleet_->stop();
    });
  }
  for (auto& [id, weak] : httpSessions_) {
    if (auto s = weak.lock()) s->abort();
  }
  httpSessions_.clear();
  std::vector<std::shared_ptr<WsSession>> open;
  open.reserve(sessions_.size());
  for (auto& [id, s] : sessions_) open.push_back(s);
  for (auto& s : open) s->close(websocket::close_code::going_away);
  // Peers get kStopGrace to finish the closing handshake; then stop() cuts the loop.
}

// ---- TrackerServer --------------------------------------------------------------

TrackerServer::TrackerServer(TrackerOptions options) : impl_(std::make_unique<Impl>(options)) {}
TrackerServer::~TrackerServer() = default;
Status TrackerServer::start(std::string_view host, std::uint16_t port) { return impl_->start(host, port); }
std::uint16_t TrackerServer::port() const { return impl_->port(); }
void TrackerServer::stop() { impl_->stop(); }
TrackerStats TrackerServer::stats() const { return impl_->stats(); }

}  // namespace p2pcdn::tracker
