#include "node/asio_runtime.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <random>

#include "node/http_client.hpp"
#include "node/openssl_identity.hpp"
#include "node/store_worker.hpp"
#include "node/ws_client.hpp"

namespace p2pcdn::node {
namespace {

class WsConnection : public TrackerConnection {
 public:
  WsConnection(boost::asio::io_context& io, WsUrl url, Events events, std::string caFile)
      : ws_(io, std::move(url), wsEvents(std::move(events)), std::move(caFile)) {}
  void start() override { ws_.start(); }
  void stop() override { ws_.stop(); }
  bool connected() const override { return ws_.connected(); }
  bool send(std::string text) override { return ws_.send(std::move(text)); }

 private:
  static WsClient::Events wsEvents(Events events) {
    WsClient::Events ev;
    ev.onConnected = std::move(events.onConnected);
    ev.onMessage = std::move(events.onMessage);
    return ev;
  }
  WsClient ws_;
};

}  // namespace

swarm::Time AsioRuntime::now() const { return std::chrono::steady_clock::now().time_since_epoch(); }

void AsioRuntime::post(std::function<void()> task) { boost::asio::post(io_, std::move(task)); }

void AsioRuntime::after(swarm::Time delay, std::function<void()> task) {
  auto timer = std::make_shared<boost::asio::steady_timer>(
      io_, std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay));
  timer->async_wait([timer, task = std::move(task)](boost::system::error_code) { task(); });
}

std::unique_ptr<TaskQueue> AsioRuntime::storeQueue() { return std::make_unique<StoreWorker>(); }

Result<std::unique_ptr<TrackerConnection>> AsioRuntime::connectTracker(std::string_view url,
                                                                       TrackerConnection::Events events) {
  auto parsed = parseWsUrl(url);
  if (!parsed) return fail(parsed.error());
  return std::unique_ptr<TrackerConnection>(
      std::make_unique<WsConnection>(io_, std::move(*parsed), std::move(events), trackerCa_));
}

AsioRuntime::AsioRuntime(boost::asio::io_context& io, std::string trackerCa) : io_(io), trackerCa_(std::move(trackerCa)) {}
AsioRuntime::~AsioRuntime() = default;

std::uint64_t AsioRuntime::fetchRange(const std::string& url, std::uint64_t offset, std::uint32_t length,
                                      swarm::Time timeout, std::function<void(Result<Bytes>)> done) {
  if (!http_) http_ = std::make_unique<HttpRangeClient>(io_);
  return http_->fetch(url, offset, length, timeout, std::move(done));
}

void AsioRuntime::cancelFetch(std::uint64_t id) {
  if (http_) http_->cancel(id);
}

std::shared_ptr<Identity> AsioRuntime::makeIdentity() {
  auto id = ephemeralOpensslIdentity();
  if (!id) std::abort();  // OpenSSL without Ed25519 or randomness
  return *id;
}

std::uint64_t AsioRuntime::seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace p2pcdn::node
