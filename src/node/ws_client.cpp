#include "node/ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <random>

#include "node/reconnect.hpp"

namespace p2pcdn::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

Result<WsUrl> parseWsUrl(std::string_view url) {
  const char* op = "parse tracker URL";
  if (url.size() > 2048) return fail(Errc::kTooLarge, op, "URL longer than 2048 bytes");
  if (url.starts_with("wss://")) return fail(Errc::kUnsupported, op, "wss:// is not supported yet; use ws://");
  if (!url.starts_with("ws://")) return fail(Errc::kInvalidArgument, op, "expected ws://host:port[/path]");
  std::string_view rest = url.substr(5);
  std::size_t slash = rest.find('/');
  std::string_view hostPort = rest.substr(0, slash);
  WsUrl out;
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (hostPort.starts_with('[')) {  // [v6]:port
    std::size_t close = hostPort.find(']');
    if (close == std::string_view::npos) return fail(Errc::kInvalidArgument, op, "unterminated [IPv6] host");
    out.host = std::string(hostPort.substr(1, close - 1));
    std::string_view after = hostPort.substr(close + 1);
    out.port = after.starts_with(':') ? std::string(after.substr(1)) : "80";
  } else {
    std::size_t colon = hostPort.rfind(':');
    out.host = std::string(hostPort.substr(0, colon));
    out.port = colon == std::string_view::npos ? "80" : std::string(hostPort.substr(colon + 1));
  }
  if (out.host.empty()) return fail(Errc::kInvalidArgument, op, "no host in " + std::string(url));
  if (out.port.empty() || out.port.size() > 5 || out.port.find_first_not_of("0123456789") != std::string::npos) {
    return fail(Errc::kInvalidArgument, op, "bad port in " + std::string(url));
  }
  return out;
}

struct WsClient::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& ctx, WsUrl u, Events e)
      : io(ctx), url(std::move(u)), events(std::move(e)), resolver(ctx), timer(ctx), rng(std::random_device{}()) {}

  asio::io_context& io;
  WsUrl url;
  Events events;
  tcp::resolver resolver;
  asio::steady_timer timer;
  std::unique_ptr<websocket::stream<beast::tcp_stream>> ws;
  beast::flat_buffer buffer;
  std::deque<std::string> outbox;
  bool writing = false;
  bool open = false;
  bool stopped = true;
  std::uint64_t generation = 0;  // bumps on every (re)connect; stale handlers check it
  ReconnectBackoff backoff;
  std::mt19937 rng;

  void connect() {
    if (stopped) return;
    std::uint64_t gen = ++generation;
    ws = std::make_unique<websocket::stream<beast::tcp_stream>>(io);
    ws->read_message_max(1 << 20);
    auto self = shared_from_this();
    resolver.async_resolve(url.host, url.port, [self, gen](beast::error_code ec, tcp::resolver::results_type r) {
      if (self->stale(gen)) return;
      if (ec) return self->lost(Error(Errc::kIo, "resolve tracker", ec.message()));
      beast::get_lowest_layer(*self->ws).expires_after(std::chrono::seconds(10));
      beast::get_lowest_layer(*self->ws).async_connect(r, [self, gen](beast::error_code ec2, auto) {
        if (self->stale(gen)) return;
        if (ec2) return self->lost(Error(Errc::kIo, "connect to tracker", ec2.message()));
        beast::get_lowest_layer(*self->ws).expires_never();
        self->ws->set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
        std::string host = self->url.host + ":" + self->url.port;
        self->ws->async_handshake(host, self->url.target, [self, gen](beast::error_code ec3) {
          if (self->stale(gen)) return;
          if (ec3) return self->lost(Error(Errc::kIo, "tracker WebSocket handshake", ec3.message()));
          self->open = true;
          self->backoff.reset();
          self->ws->text(true);
          self->read(gen);
          if (self->events.onConnected) self->events.onConnected();
          self->flush(gen);
        });
      });
    });
  }

  bool stale(std::uint64_t gen) const { return stopped || gen != generation; }

  void read(std::uint64_t gen) {
    auto self = shared_from_this();
    ws->async_read(buffer, [self, gen](beast::error_code ec, std::size_t) {
      if (self->stale(gen)) return;
      if (ec) return self->lost(Error(Errc::kIo, "tracker connection", ec.message()));
      std::string text = beast::buffers_to_string(self->buffer.data());
      self->buffer.consume(self->buffer.size());
      if (self->events.onMessage) self->events.onMessage(std::move(text));
      if (!self->stale(gen)) self->read(gen);
    });
  }

  void flush(std::uint64_t gen) {
    if (!open || writing || outbox.empty()) return;
    writing = true;
    auto self = shared_from_this();
    ws->async_write(asio::buffer(outbox.front()), [self, gen](beast::error_code ec, std::size_t) {
      if (self->stale(gen)) return;
      self->writing = false;
      if (ec) return self->lost(Error(Errc::kIo, "send to tracker", ec.message()));
      self->outbox.pop_front();
      self->flush(gen);
    });
  }

  void lost(const Error& why) {
    open = false;
    writing = false;
    outbox.clear();
    ++generation;
    if (ws) beast::get_lowest_layer(*ws).close();
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

WsClient::WsClient(asio::io_context& io, WsUrl url, Events events)
    : impl_(std::make_shared<Impl>(io, std::move(url), std::move(events))) {}

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
  if (impl_->ws) {
    beast::error_code ec;
    beast::get_lowest_layer(*impl_->ws).socket().close(ec);
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
