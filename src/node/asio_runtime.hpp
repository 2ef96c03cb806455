// The native Runtime: the Node's loop is an asio io_context (its thread runs
// every node call and callback), time is the steady clock, the tracker is a
// WebSocket (WsClient, ws:// or wss://), store work runs on a StoreWorker thread,
// web seeds are fetched by HttpRangeClient (http:// only) and the seed comes
// from std::random_device; a node given no identity gets a new OpenSSL key.
//
// It must outlive the Nodes that use it; several Nodes may share one.
#pragma once

#include <boost/asio/io_context.hpp>
#include <string>

#include "node/runtime.hpp"

namespace p2pcdn::node {

class HttpRangeClient;

class AsioRuntime : public Runtime {
 public:
  // trackerCa: PEM CA certificates for wss:// trackers (a private CA); empty: the system's.
  explicit AsioRuntime(boost::asio::io_context& io, std::string trackerCa = {});
  boost::asio::io_context& io() { return io_; }

  swarm::Time now() const override;
  void post(std::function<void()> task) override;
  void after(swarm::Time delay, std::function<void()> task) override;
  std::unique_ptr<TaskQueue> storeQueue() override;
  Result<std::unique_ptr<TrackerConnection>> connectTracker(std::string_view url,
                                                            TrackerConnection::Events events) override;
  std::uint64_t seed() override;
  std::shared_ptr<Identity> makeIdentity() override;  // ephemeralOpensslIdentity
  std::uint64_t fetchRange(const std::string& url, std::uint64_t offset, std::uint32_t length, swarm::Time timeout,
                           std::function<void(Result<Bytes>)> done) override;
  void cancelFetch(std::uint64_t id) override;
  ~AsioRuntime() override;

 private:
  boost::asio::io_context& io_;
  std::string trackerCa_;
  std::unique_ptr<HttpRangeClient> http_;  // made at the first web seed fetch
};

}  // namespace p2pcdn::node
