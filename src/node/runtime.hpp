// What a Node needs from the place it runs in: a clock, a loop to run its
// work on, timers, a connection to the tracker, somewhere off the loop to run
// store work, and a seed for its randomness. The node's logic (node.cpp and
// the rest of src/node) uses nothing else, so one node runs
//   natively        AsioRuntime (asio_runtime.hpp): an asio io_context, the
//                   steady clock, a WebSocket tracker client, a store thread,
//                   an HTTP client for web seeds;
//   in tests / sims a virtual clock (tests/node/virtual_world.hpp): every
//                   event at a virtual instant, deterministic for a seed;
//   in the browser  JavaScript timers and WebSocket, IndexedDB (issue 14).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"
#include "node/identity.hpp"
#include "swarm/rate.hpp"

namespace p2pcdn::node {

// A queue of tasks run off the loop, in the order posted (natively one
// thread). Each task posts its own completion back with Runtime::post.
// Destroying the queue drops the tasks still waiting and waits for the
// running one, so no task outlives its owner (the Node).
class TaskQueue {
 public:
  virtual ~TaskQueue() = default;
  // False (the task is dropped) when the queue is full.
  virtual bool post(std::function<void()> task) = 0;
};

// One connection to a tracker carrying text messages (WebTorrent's WebSocket
// tracker protocol, docs/signaling.md). It reconnects by itself when the
// tracker goes away; onConnected runs after every (re)connection. Loop only.
class TrackerConnection {
 public:
  struct Events {
    std::function<void()> onConnected;
    std::function<void(std::string text)> onMessage;  // untrusted
  };
  virtual ~TrackerConnection() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual bool connected() const = 0;
  // Dropped (false) when not connected.
  virtual bool send(std::string text) = 0;
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  // Monotonic time (the swarm engine's clock).
  virtual swarm::Time now() const = 0;
  // Runs `task` on the loop on a later turn, in the order posted. Any thread.
  virtual void post(std::function<void()> task) = 0;
  // Runs `task` on the loop once `delay` has passed. Loop thread only. There
  // is no cancel: a task checks whether it is still wanted when it runs.
  virtual void after(swarm::Time delay, std::function<void()> task) = 0;
  // A queue for store work (reads with their re-hash, writes) off the loop.
  virtual std::unique_ptr<TaskQueue> storeQueue() = 0;
  // A connection to the tracker at `url` (not started), or why not.
  virtual Result<std::unique_ptr<TrackerConnection>> connectTracker(std::string_view url,
                                                                    TrackerConnection::Events events) = 0;
  // A new key pair for a node that was given none (NodeOptions::identity):
  // it lasts as long as the node. Null if this runtime cannot make one at
  // once (the browser's: WebCrypto is asynchronous); the node then needs one.
  virtual std::shared_ptr<Identity> makeIdentity() = 0;
  // Seeds the node's randomness (its peer id, the engine's tie-breaks, offer ids).
  virtual std::uint64_t seed() = 0;
  // Web seeds: GET bytes [offset, offset + length) of an http(s) URL (a
  // Range request). `done` runs on the loop on a later turn, once: exactly
  // those bytes, or why not; never after cancelFetch. 0: this runtime has
  // no HTTP (done is not called).
  virtual std::uint64_t fetchRange(const std::string& /*url*/, std::uint64_t /*offset*/, std::uint32_t /*length*/,
                                   swarm::Time /*timeout*/, std::function<void(Result<Bytes>)> /*done*/) {
    return 0;
  }
  virtual void cancelFetch(std::uint64_t /*id*/) {}
};

}  // namespace p2pcdn::node
