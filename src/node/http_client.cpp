#include "node/http_client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <optional>

namespace p2pcdn::node {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Result<HttpUrl> parseHttpUrl(std::string_view url) {
  const char* op = "web seed";
  if (url.starts_with("https://")) {
    return fail(Errc::kUnsupported, op, "https:// web seeds are not supported by the native peer yet (use http://)");
  }
  if (!url.starts_with("http://")) return fail(Errc::kInvalidArgument, op, "not an http:// URL");
  std::string_view rest = url.substr(7);
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  HttpUrl u;
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos) return fail(Errc::kInvalidArgument, op, "user info in a web seed URL");
  std::string_view host = authority, port = "80";
  if (authority.starts_with('[')) {  // [v6]:port
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail(Errc::kInvalidArgument, op, "bad IPv6 address");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return fail(Errc::kInvalidArgument, op, "bad port");
      port = authority.substr(close + 2);
    }
  } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (host.empty() || ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535) {
    return fail(Errc::kInvalidArgument, op, "bad host or port in a web seed URL");
  }
  u.host = std::string(host);
  u.port = std::string(port);
  return u;
}

struct HttpRangeClient::Conn {
  explicit Conn(asio::io_context& io) : stream(io) {}
  std::string key;  // host:port
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

struct HttpRangeClient::Job {
  explicit Job(asio::io_context& io) : resolver(io) {}
  std::uint64_t id = 0;
  HttpUrl url;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  swarm::Time timeout{};
  std::function<void(Result<Bytes>)> done;
  std::shared_ptr<Conn> conn;
  bool reused = false;  // an idle connection: a failure before any answer is retried once on a fresh one
  bool over = false;
  tcp::resolver resolver;
  http::request<http::empty_body> req;
  std::optional<http::response_parser<http::vector_body<std::uint8_t>>> parser;
};

HttpRangeClient::HttpRangeClient(asio::io_context& io) : io_(io) {}

HttpRangeClient::~HttpRangeClient() {
  *alive_ = false;
  for (auto& [id, job] : jobs_) {
    job->over = true;
    if (job->conn) job->conn->stream.socket().close();
  }
  for (auto& c : idle_) c->stream.socket().close();
}

namespace {
std::chrono::steady_clock::duration dur(swarm::Time t) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(t);
}
}  // namespace

std::uint64_t HttpRangeClient::fetch(const std::string& url, std::uint64_t offset, std::uint32_t length,
                                     swarm::Time timeout, std::function<void(Result<Bytes>)> done) {
  auto job = std::make_shared<Job>(io_);
  job->id = nextId_++;
  job->offset = offset;
  job->length = length;
  job->timeout = timeout;
  job->done = std::move(done);
  jobs_[job->id] = job;
  auto parsed = parseHttpUrl(url);
  if (!parsed || length == 0 || jobs_.size() > kMaxInFlight) {
    Error e = !parsed ? parsed.error()
                      : Error(length == 0 ? Errc::kInvalidArgument : Errc::kBackPressure, "web seed",
                              length == 0 ? "an empty range" : "too many web seed requests at once");
    asio::post(io_, [this, alive = alive_, job, e] {
      if (*alive) finish(job, fail(e));
    });
    return job->id;
  }
  job->url = std::move(*parsed);
  const std::string key = job->url.host + ":" + job->url.port;
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if ((*it)->key == key && (*it)->stream.socket().is_open()) {
      job->conn = *it;
      job->reused = true;
      idle_.erase(it);
      asio::post(io_, [this, alive = alive_, job] {
        if (*alive && !job->over) send(job);
      });
      return job->id;
    }
  }
  job->conn = std::make_shared<Conn>(io_);
  job->conn->key = key;
  job->resolver.async_resolve(job->url.host, job->url.port, [this, alive = alive_, job](beast::error_code ec, tcp::resolver::results_type r) {
    if (!*alive || job->over) return;
    if (ec) return finish(job, fail(Errc::kIo, "web seed", "resolve " + job->url.host + ": " + ec.message()));
    job->conn->stream.expires_after(dur(job->timeout));
    job->conn->stream.async_connect(r, [this, alive, job](beast::error_code ec2, const tcp::endpoint&) {
      if (!*alive || job->over) return;
      if (ec2) return finish(job, fail(Errc::kIo, "web seed", "connect " + job->url.host + ": " + ec2.message()));
      send(job);
    });
  });
  return job->id;
}

void HttpRangeClient::send(const std::shared_ptr<Job>& job) {
  auto& req = job->req;
  req = {};
  req.method(http::verb::get);
  req.target(job->url.target);
  req.version(11);
  const bool v6 = job->url.host.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + job->url.host + "]" : job->url.host;
  req.set(http::field::host, job->url.port == "80" ? host : host + ":" + job->url.port);
  req.set(http::field::user_agent, "p2pcdn web seed");
  req.set(http::field::range, "bytes=" + std::to_string(job->offset) + "-" + std::to_string(job->offset + job->length - 1));
  req.keep_alive(true);
  job->conn->stream.expires_after(dur(job->timeout));
  http::async_write(job->conn->stream, req, [this, alive = alive_, job](beast::error_code ec, std::size_t) {
    if (!*alive || job->over) return;
    auto retry = [this, job](const std::string& what) {
      if (!job->reused) return finish(job, fail(Errc::kIo, "web seed", what));
      // The idle connection was closed by the server meanwhile: once more, on a fresh one.
      job->reused = false;
      auto conn = std::make_shared<Conn>(io_);
      conn->key = job->conn->key;
      job->conn = std::move(conn);
      job->resolver.async_resolve(job->url.host, job->url.port, [this, alive = alive_, job](beast::error_code e, tcp::resolver::results_type r) {
        if (!*alive || job->over) return;
        if (e) return finish(job, fail(Errc::kIo, "web seed", "resolve: " + e.message()));
        job->conn->stream.expires_after(dur(job->timeout));
        job->conn->stream.async_connect(r, [this, alive, job](beast::error_code e2, const tcp::endpoint&) {
          if (!*alive || job->over) return;
          if (e2) return finish(job, fail(Errc::kIo, "web seed", "connect: " + e2.message()));
          send(job);
        });
      });
    };
    if (ec) return retry("write: " + ec.message());
    job->parser.emplace();
    job->parser->body_limit(job->length);
    http::async_read(job->conn->stream, job->conn->buffer, *job->parser, [this, alive, job, retry](beast::error_code e, std::size_t) {
      if (!*alive || job->over) return;
      if (e == http::error::end_of_stream || e == asio::error::connection_reset) return retry("read: " + e.message());
      if (e == http::error::body_limit) return finish(job, fail(Errc::kMalformed, "web seed", "the origin answered more than the range asked (does it support Range?)"));
      if (e) return finish(job, fail(Errc::kIo, "web seed", "read: " + e.message()));
      auto& res = job->parser->get();
      Bytes body = std::move(res.body());
      bool exact = false;
      if (res.result() == http::status::partial_content) {
        const std::string want = "bytes " + std::to_string(job->offset) + "-" + std::to_string(job->offset + job->length - 1) + "/";
        exact = std::string_view(res[http::field::content_range]).starts_with(want);
      } else if (res.result() == http::status::ok) {
        exact = job->offset == 0;
      }
      const bool keep = job->parser->keep_alive();
      auto conn = job->conn;
      Result<Bytes> r = body.size() == job->length && exact
                            ? Result<Bytes>(std::move(body))
                            : fail(res.result() == http::status::partial_content || res.result() == http::status::ok ? Errc::kMalformed : Errc::kIo,
                                   "web seed", "HTTP " + std::to_string(res.result_int()) + " for bytes " + std::to_string(job->offset) + "+" +
                                                   std::to_string(job->length) + (exact ? " (short)" : ""));
      // Idle first: the fetch that `done` may start at once reuses this connection.
      if (keep && idle_.size() < kMaxIdle) {
        conn->stream.expires_never();
        idle_.push_back(std::move(conn));
      } else {
        conn->stream.socket().close();
      }
      finish(job, std::move(r));
    });
  });
}

void HttpRangeClient::finish(const std::shared_ptr<Job>& job, Result<Bytes> r) {
  if (job->over) return;
  job->over = true;
  jobs_.erase(job->id);
  auto done = std::move(job->done);
  job->conn.reset();
  done(std::move(r));
}

void HttpRangeClient::cancel(std::uint64_t id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  auto job = it->second;
  jobs_.erase(it);
  job->over = true;
  job->resolver.cancel();
  if (job->conn) job->conn->stream.socket().close();
  job->conn.reset();
}

}  // namespace p2pcdn::node
