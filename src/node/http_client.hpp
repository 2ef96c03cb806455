// HttpRangeClient: GETs byte ranges of http:// URLs on an asio loop, for web
// seeds (swarm/origin.hpp). Beast over TCP, HTTP/1.1 with a Range header; a
// connection per host:port is kept alive and reused (at most kMaxIdle idle
// in all). An answer counts only if it is exactly the range asked: 206 with
// the matching Content-Range, or 200 with the whole (equal-length) file.
// Every fetch has a deadline. https:// is not supported natively yet (the
// browser peer's fetch() does it): such a fetch fails with kUnsupported.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"
#include "swarm/rate.hpp"

namespace p2pcdn::node {

// http://host[:port]/target: the parts, or why not.
struct HttpUrl {
  std::string host, port, target;
};
Result<HttpUrl> parseHttpUrl(std::string_view url);

class HttpRangeClient {
 public:
  static constexpr std::size_t kMaxIdle = 16;
  static constexpr std::size_t kMaxInFlight = 64;

  explicit HttpRangeClient(boost::asio::io_context& io);
  ~HttpRangeClient();
  HttpRangeClient(const HttpRangeClient&) = delete;
  HttpRangeClient& operator=(const HttpRangeClient&) = delete;

  // `done` runs on the loop, once, never inside this call; not after cancel().
  std::uint64_t fetch(const std::string& url, std::uint64_t offset, std::uint32_t length, swarm::Time timeout,
                      std::function<void(Result<Bytes>)> done);
  void cancel(std::uint64_t id);

  struct Job;
  struct Conn;

 private:
  void finish(const std::shared_ptr<Job>& job, Result<Bytes> r);
  void send(const std::shared_ptr<Job>& job);
  boost::asio::io_context& io_;
  std::uint64_t nextId_ = 1;
  std::map<std::uint64_t, std::shared_ptr<Job>> jobs_;
  std::vector<std::shared_ptr<Conn>> idle_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace p2pcdn::node
