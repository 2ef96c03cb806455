// Whole Nodes in one process for tests: one Asio loop run by the test's
// thread, our tracker on 127.0.0.1 (its own thread), in-memory links
// (mem_link.hpp) and memory stores that can be told to fail.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "mem_link.hpp"
#include "node/asio_runtime.hpp"
#include "node/node.hpp"
#include "store_support.hpp"
#include "tracker/tracker_server.hpp"

namespace p2pcdn::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct TestPeer {
  FaultyStore store;
  std::unique_ptr<node::Node> node;
};

class TestSwarm {
 public:
  TestSwarm() {
    tracker::TrackerOptions to;
    to.interval = 2s;
    tracker_ = std::make_unique<tracker::TrackerServer>(to);
    started_ = tracker_->start("127.0.0.1", 0);
  }
  ~TestSwarm() {
    for (auto& p : peers_) stop(*p);
    peers_.clear();
    tracker_->stop();
  }

  bool ok() const { return static_cast<bool>(started_); }
  asio::io_context& io() { return io_; }
  tracker::TrackerServer& tracker() { return *tracker_; }

  node::NodeOptions options() const {
    node::NodeOptions o;
    o.trackerUrl = "ws://127.0.0.1:" + std::to_string(tracker_->port());
    o.discovery.backoffBase = 200ms;
    return o;
  }

  TestPeer& peer(std::optional<node::NodeOptions> o = std::nullopt) {
    auto p = std::make_unique<TestPeer>();
    p->node = std::make_unique<node::Node>(rt_, p->store, links_, o ? std::move(*o) : options());
    peers_.push_back(std::move(p));
    return *peers_.back();
  }

  Manifest publish(TestPeer& p, std::uint32_t chunks, std::uint32_t seed = 1) { return publishFile(p.store, chunks, seed); }

  // Runs the loop until pred() holds or `timeout` passes; returns pred().
  bool runUntil(const std::function<bool()>& pred, Clock::duration timeout = 20s) {
    const auto deadline = Clock::now() + timeout;
    while (!pred()) {
      const auto now = Clock::now();
      if (now >= deadline) return false;
      io_.run_one_for(std::min<Clock::duration>(deadline - now, 20ms));
    }
    return true;
  }
  void runFor(Clock::duration d) {
    const auto end = Clock::now() + d;
    while (Clock::now() < end) io_.run_one_for(end - Clock::now());
  }

  // The node's asynchronous seed / fetch, run to their `done` by this loop.
  // (The result lives in a shared_ptr: a `done` that comes after a time-out
  // must not write into a returned frame.)
  Status seedNow(node::Node& n, const FileId& id) {
    auto out = std::make_shared<std::optional<Status>>();
    n.seed(id, [out](Status st) { out->emplace(std::move(st)); });
    runUntil([&] { return out->has_value(); });
    return *out ? **out : Status(fail(Errc::kTimedOut, "test", "seed's done never ran"));
  }
  Result<node::ListenerId> fetchNow(node::Node& n, const FileId& id, std::optional<Manifest> m,
                                    node::FetchEvents ev = {}) {
    auto out = std::make_shared<std::optional<Result<node::ListenerId>>>();
    n.fetch(id, std::move(m), std::move(ev), [out](Result<node::ListenerId> r) { out->emplace(std::move(r)); });
    runUntil([&] { return out->has_value(); });
    return *out ? **out : Result<node::ListenerId>(fail(Errc::kTimedOut, "test", "fetch's done never ran"));
  }

  // Waits until the tracker has seen `n` seeders (so a leecher started now meets them).
  bool seeders(std::uint64_t n) {
    return runUntil([&] { return tracker_->stats().seeders >= n; });
  }

  void stop(TestPeer& p) {
    if (!p.node) return;
    auto done = std::make_shared<bool>(false);
    p.node->stop([done] { *done = true; });
    runUntil([&] { return *done; }, 5s);
    p.node.reset();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  node::AsioRuntime rt_{io_};
  std::unique_ptr<tracker::TrackerServer> tracker_;
  Status started_;
  MemLinkFactory links_;
  std::vector<std::unique_ptr<TestPeer>> peers_;
};

}  // namespace p2pcdn::test
