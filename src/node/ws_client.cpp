#include "node/ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <random>

#include "node/reconnect.hpp"

namespace p2pcdn::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

Result<WsUrl> parseWsUrl(std::string_view url) {
  const char* op = "parse tracker URL";
  if (url.size() > 2048) return fail(Errc::kTooLarge, op, "URL longer than 2048 bytes");
  WsUrl out;
  out.tls = url.starts_with("wss://");
  if (!out.tls && !url.starts_with("ws://")) return fail(Errc::kInvalidArgument, op, "expected ws[s]://host:port[/path]");
  const std::string defaultPort = out.tls ? "443" : "80";
  std::string_view rest = url.substr(out.tls ? 6 : 5);
  std::size_t slash = rest.find('/');
  std::string_view hostPort = rest.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (hostPort.starts_with('[')) {  // [v6]:port
    std::size_t close = hostPort.find(']');
    if (close == std::string_view::npos) return fail(Errc::kInvalidArgument, op, "unterminated [IPv6] host");
    out.host = std::string(hostPort.substr(1, close - 1));
    std::string_view after = hostPort.substr(close + 1);
    out.port = after.starts_with(':') ? std::string(after.substr(1)) : defaultPort;
  } else {
    std::size_t colon = hostPort.rfind(':');
    out.host = std::string(hostPort.substr(0, colon));
    out.port = colon == std::string_view::npos ? defaultPort : std::string(hostPort.substr(colon + 1));
  }
  if (out.host.empty()) return fail(Errc::kInvalidArgument, op, "no host in " + std::string(url));
  if (out.port.empty() || out.port.size() > 5 || out.port.find_first_not_of("0123456789") != std::string::npos) {
    return fail(Errc::kInvalidArgument, op, "bad port in " + std::string(url));
  }
  return out;
}

struct WsClient::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& ctx, WsUrl u, Events e, std::string ca)
      : io(ctx), url(std::move(u)), events(std::move(e)), caFile(std::move(ca)), resolver(ctx), timer(ctx),
        rng(std::random_device{}()) {}

  asio::io_context& io;
  WsUrl url;
  Events events;
  std::string caFile;
  tcp::resolver resolver;
  asio::steady_timer timer;
  std::unique_ptr<asio::ssl::context> tls;                // wss://: made at the first connect
  std::unique_ptr<websocket::stream<beast::tcp_stream>> ws;  // ws:// ...
  std::unique_ptr<websocket::stream<TlsStream>> wss;         // ... or wss://: one of the two
  beast::flat_buffer buffer;
  std::deque<std::string> outbox;
  bool writing = false;
  bool open = false;
  bool stopped = true;
  std::uint64_t generation = 0;  // bumps on every (re)connect; stale handlers check it
  ReconnectBackoff backoff;
  std::mt19937 rng;

  // Calls f with the WebSocket stream in use (plain or TLS).
  template <class F>
  void withWs(F&& f) {
    if (wss) f(*wss);
    else if (ws) f(*ws);
  }
  beast::tcp_stream& tcpLayer() { return wss ? beast::get_lowest_layer(*wss) : beast::get_lowest_layer(*ws); }

  // The TLS context: the system's CAs or caFile, and the peer must prove the URL's host name.
  Status makeTls() {
    if (tls) return {};
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    beast::error_code ec;
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
                     ec);
    if (caFile.empty()) ctx->set_default_verify_paths(ec);
    else ctx->load_verify_file(caFile, ec);
    if (ec) return fail(Errc::kInvalidArgument, "tracker TLS", "CA " + (caFile.empty() ? "(system)" : caFile) + ": " + ec.message());
    ctx->set_verify_mode(asio::ssl::verify_peer);
    tls = std::move(ctx);
    return {};
  }

  void connect() {
    if (stopped) return;
    std::uint64_t gen = ++generation;
    ws.reset();
    wss.reset();
    if (url.tls) {
      if (auto st = makeTls(); !st) return lost(st.error());
      wss = std::make_unique<websocket::stream<TlsStream>>(io, *tls);
      // SNI (for a name, not an address), and the certificate must name the host.
      beast::error_code ipEc;
      (void)asio::ip::make_address(url.host, ipEc);
      if (ipEc && SSL_ctrl(wss->next_layer().native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                           static_cast<void*>(const_cast<char*>(url.host.c_str()))) != 1) {
        return lost(Error(Errc::kCrypto, "tracker TLS", "cannot set the server name"));
      }
      wss->next_layer().set_verify_callback(asio::ssl::host_name_verification(url.host));
    } else {
      ws = std::make_unique<websocket::stream<beast::tcp_stream>>(io);
    }
    withWs([](auto& w) { w.read_message_max(1 << 20); });
    auto self = shared_from_this();
    resolver.async_resolve(url.host, url.port, [self, gen](beast::error_code ec, tcp::resolver::results_type r) {
      if (self->stale(gen)) return;
      if (ec) return self->lost(Error(Errc::kIo, "resolve tracker", ec.message()));
      self->tcpLayer().expires_after(std::chrono::seconds(10));
      self->tcpLayer().async_connect(r, [self, gen](beast::error_code ec2, auto) {
        if (self->stale(gen)) return;
        if (ec2) return self->lost(Error(Errc::kIo, "connect to tracker", ec2.message()));
        if (!self->wss) return self->upgrade(gen);
        self->wss->next_layer().async_handshake(asio::ssl::stream_base::client, [self, gen](beast::error_code ec3) {
          if (self->stale(gen)) return;
          if (ec3) return self->lost(Error(Errc::kCrypto, "tracker TLS handshake", ec3.message()));
          self->upgrade(gen);
        });
      });
    });
  }

  // The WebSocket handshake on the connected (and, for wss, TLS) stream.
  void upgrade(std::uint64_t gen) {
    tcpLayer().expires_never();
    auto self = shared_from_this();
    withWs([&](auto& w) {
      w.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
      std::string host = url.host + ":" + url.port;
      w.async_handshake(host, url.target, [self, gen](beast::error_code ec) {
        if (self->stale(gen)) return;
        if (ec) return self->lost(Error(Errc::kIo, "tracker WebSocket handshake", ec.message()));
        self->open = true;
        self->backoff.reset();
        self->withWs([](auto& s) { s.text(true); });
        self->read(gen);
        if (self->events.onConnected) self->events.onConnected();
        self->flush(gen);
      });
    });
  }

  bool stale(std::uint64_t gen) const { return stopped || gen != generation; }

  void read(std::uint64_t gen) {
    auto self = shared_from_this();
    withWs([&](auto& w) {
      w.async_read(buffer, [self, gen](beast::error_code ec, std::size_t) {
        if (self->stale(gen)) return;
        if (ec) return self->lost(Error(Errc::kIo, "tracker connection", ec.message()));
        std::string text = beast::buffers_to_string(self->buffer.data());
        self->buffer.consume(self->buffer.size());
        if (self->events.onMessage) self->events.onMessage(std::move(text));
        if (!self->stale(gen)) self->read(gen);
      });
    });
  }

  void flush(std::uint64_t gen) {
    if (!open || writing || outbox.empty()) return;
    writing = true;
    auto self = shared_from_this();
    withWs([&](auto& w) {
      w.async_write(asio::buffer(outbox.front()), [self, gen](beast::error_code ec, std::size_t) {
        if (self->stale(gen)) return;
        self->writing = false;
        if (ec) return self->lost(Error(Errc::kIo, "send to tracker", ec.message()));
        self->outbox.pop_front();
        self->flush(gen);
      });
    });
  }

  void lost(const Error& why) {
    open = false;
    writing = false;
    outbox.clear();
    ++generation;
    if (ws || wss) tcpLayer().close();
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    auto wait = backoff.next(unit(rng));
    if (events.onDisconnected) events.onDisconnected(why, wait);
    if (stopped) return;
    timer.expires_after(wait);
    auto self = shared_from_this();
    std::uint64_t gen = generation;
    timer.async_wait([self, gen](beast::error_code ec) {
      if (ec || self->stale(gen)) return;
      self->connect();
    });
  }
};

WsClient::WsClient(asio::io_context& io, WsUrl url, Events events, std::string caFile)
    : impl_(std::make_shared<Impl>(io, std::move(url), std::move(events), std::move(caFile))) {}

WsClient::~WsClient() { stop(); }

void WsClient::start() {
  if (!impl_->stopped) return;
  impl_->stopped = false;
  impl_->connect();
}

void WsClient::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  ++impl_->generation;
  impl_->timer.cancel();
  impl_->resolver.cancel();
  impl_->open = false;
  impl_->outbox.clear();
  if (impl_->ws || impl_->wss) {
    beast::error_code ec;
    impl_->tcpLayer().socket().close(ec);
  }
}

bool WsClient::connected() const { return impl_->open; }

bool WsClient::send(std::string text) {
  if (!impl_->open) return false;
  impl_->outbox.push_back(std::move(text));
  impl_->flush(impl_->generation);
  return true;
}

}  // namespace p2pcdn::node
