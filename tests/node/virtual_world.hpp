// Whole Nodes on a virtual clock: one event queue for the whole world, a
// node::Runtime per node over it, a tracker that is the real tracker's
// SwarmRegistry (the rules of src/tracker, without sockets) behind in-memory
// connections, and stores whose work takes virtual time. With the in-memory
// links of mem_link.hpp, a run is a pure function of its seed: no thread, no
// wall clock, no socket.
//
// Time only moves when the queue is empty at the current instant, to the next
// event's time; events at one instant run in the order they were scheduled.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "node/runtime.hpp"
#include "test_identity.hpp"
#include "signaling/signaling.hpp"
#include "tracker/swarm_registry.hpp"

namespace p2pcdn::test {

using VTime = swarm::Time;

class VirtualWorld {
 public:
  VTime now() const { return now_; }
  void at(VTime t, std::function<void()> fn) { queue_.push(Event{std::max(t, now_), seq_++, std::move(fn)}); }
  void after(VTime d, std::function<void()> fn) { at(now_ + d, std::move(fn)); }

  // Runs the next event; false when there is none.
  bool step() {
    if (queue_.empty()) return false;
    Event e = queue_.top();
    queue_.pop();
    now_ = e.t;
    ++ran_;
    e.fn();
    return true;
  }
  // Runs events until pred() holds (checked after each) or virtual time passes `limit`.
  bool runUntil(const std::function<bool()>& pred, VTime limit) {
    while (!pred()) {
      if (queue_.empty() || queue_.top().t > limit) return false;
      step();
    }
    return true;
  }
  void runFor(VTime d) {
    const VTime end = now_ + d;
    while (!queue_.empty() && queue_.top().t <= end) step();
    now_ = std::max(now_, end);
  }
  std::uint64_t eventsRun() const { return ran_; }

 private:
  struct Event {
    VTime t;
    std::uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return std::tie(t, seq) > std::tie(o.t, o.seq); }
  };
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
  VTime now_{};
  std::uint64_t seq_ = 0;
  std::uint64_t ran_ = 0;
};

// The tracker: SwarmRegistry's rules; each message takes `latency` each way.
class VirtualTracker {
 public:
  VirtualTracker(VirtualWorld& w, std::uint64_t seed, VTime latency = std::chrono::milliseconds(5))
      : world_(w), registry_(tracker::RegistryOptions{}, seed), latency_(latency) {}

  std::unique_ptr<node::TrackerConnection> connect(node::TrackerConnection::Events ev);
  const tracker::SwarmRegistry& registry() const { return registry_; }
  // Closes every connection (the tracker restarts); clients reconnect after `retry`.
  void restart(VTime retry);

 private:
  class Conn;
  void deliver(tracker::ConnectionId from, std::string text);
  VirtualWorld& world_;
  tracker::SwarmRegistry registry_;
  VTime latency_;
  std::map<tracker::ConnectionId, Conn*> conns_;
  tracker::ConnectionId next_ = 1;
  std::vector<tracker::Delivery> out_;
};

class VirtualTracker::Conn : public node::TrackerConnection {
 public:
  Conn(VirtualTracker& t, Events ev) : t_(t), ev_(std::move(ev)), alive_(std::make_shared<bool>(true)) {}
  ~Conn() override {
    *alive_ = false;
    stop();
  }
  void start() override {
    if (started_) return;
    started_ = true;
    open(t_.latency_);
  }
  void stop() override {
    started_ = false;
    drop();
  }
  bool connected() const override { return id_ != 0; }
  bool send(std::string text) override {
    if (!id_) return false;
    t_.world_.after(t_.latency_, [alive = alive_, this, id = id_, text = std::move(text)]() mutable {
      if (*alive && id_ == id) t_.deliver(id, std::move(text));
    });
    return true;
  }
  // The tracker side: a message for this connection.
  void receive(tracker::ConnectionId id, std::string text) {
    t_.world_.after(t_.latency_, [alive = alive_, this, id, text = std::move(text)]() mutable {
      if (*alive && id_ == id && ev_.onMessage) ev_.onMessage(std::move(text));
    });
  }
  // The tracker went away: reconnect after `retry` if still started.
  void lost(VTime retry) {
    drop();
    if (started_) open(retry);
  }

 private:
  void open(VTime in) {
    t_.world_.after(in, [alive = alive_, this] {
      if (!*alive || !started_ || id_) return;
      id_ = t_.next_++;
      t_.conns_[id_] = this;
      if (ev_.onConnected) ev_.onConnected();
    });
  }
  void drop() {
    if (!id_) return;
    t_.registry_.removeConnection(id_);
    t_.conns_.erase(id_);
    id_ = 0;
  }
  VirtualTracker& t_;
  Events ev_;
  std::shared_ptr<bool> alive_;
  bool started_ = false;
  tracker::ConnectionId id_ = 0;
};

inline std::unique_ptr<node::TrackerConnection> VirtualTracker::connect(node::TrackerConnection::Events ev) {
  return std::make_unique<Conn>(*this, std::move(ev));
}

inline void VirtualTracker::deliver(tracker::ConnectionId from, std::string text) {
  auto msg = signaling::decodeClientMessage(text);
  if (!msg) return;
  const auto now = tracker::TimePoint(std::chrono::duration_cast<tracker::Clock::duration>(world_.now()));
  out_.clear();
  registry_.handle(from, *msg, now, out_);
  for (auto& d : out_) {
    if (auto it = conns_.find(d.to); it != conns_.end()) it->second->receive(d.to, std::move(d.text));
  }
}

inline void VirtualTracker::restart(VTime retry) {
  auto conns = conns_;
  for (auto& [id, c] : conns) c->lost(retry);
}

// How long each store task takes: a function of a random source, so a run
// can have jittered (and so out-of-order) store work and stay deterministic.
using StoreLatency = std::function<VTime(std::mt19937_64&)>;

class VirtualRuntime : public node::Runtime {
 public:
  VirtualRuntime(VirtualWorld& w, VirtualTracker& t, std::uint64_t seed, StoreLatency store = {})
      : world_(w), tracker_(t), seed_(seed), storeRng_(seed ^ 0x5bd1e995), store_(std::move(store)) {}

  swarm::Time now() const override { return world_.now(); }
  void post(std::function<void()> task) override { world_.after(VTime{}, std::move(task)); }
  void after(swarm::Time d, std::function<void()> task) override { world_.after(d, std::move(task)); }
  std::unique_ptr<node::TaskQueue> storeQueue() override { return std::make_unique<Queue>(*this); }
  Result<std::unique_ptr<node::TrackerConnection>> connectTracker(std::string_view,
                                                                  node::TrackerConnection::Events ev) override {
    return tracker_.connect(std::move(ev));
  }
  // Another value each call.
  std::uint64_t seed() override { return seed_ + 0x9e3779b97f4a7c15ULL * seedCalls_++; }
  // Another key each call (two Nodes on one runtime get two peer ids).
  std::shared_ptr<node::Identity> makeIdentity() override {
    return std::make_shared<TestIdentity>(seed_ * 0x100000001b3ULL + identities_++);
  }

 private:
  // Each task runs once its latency has passed; with jitter they may run
  // out of order (the node must not rely on the order). Bounded like the
  // native queue. Destroyed: tasks not yet run are dropped.
  class Queue : public node::TaskQueue {
   public:
    explicit Queue(VirtualRuntime& rt) : rt_(rt) {}
    ~Queue() override { *alive_ = false; }
    bool post(std::function<void()> task) override {
      if (*waiting_ >= 4096) return false;
      ++*waiting_;
      const VTime d = rt_.store_ ? rt_.store_(rt_.storeRng_) : VTime{};
      rt_.world_.after(d, [alive = alive_, waiting = waiting_, task = std::move(task)] {
        --*waiting;
        if (*alive) task();
      });
      return true;
    }

   private:
    VirtualRuntime& rt_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::shared_ptr<std::size_t> waiting_ = std::make_shared<std::size_t>(0);
  };

  VirtualWorld& world_;
  VirtualTracker& tracker_;
  std::uint64_t seed_;
  std::mt19937_64 storeRng_;
  StoreLatency store_;
  std::uint64_t seedCalls_ = 0;
  std::uint64_t identities_ = 0;
};

}  // namespace p2pcdn::test
