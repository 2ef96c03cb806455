// The browser's node::Runtime: the page's one thread is the loop.
//   now()          performance.now()
//   post()         a FIFO drained by one MessageChannel macrotask at a time
//                  (not queueMicrotask: a chain of posts would then run to the
//                  end before any network event; not setTimeout(0): clamped
//                  to 4 ms when nested). A drain runs the tasks queued when it
//                  began; later ones wait for the next macrotask.
//   after()        a min-heap here and one JS timer for its earliest deadline
//   storeQueue()   tasks run through post() (a store's own work is
//                  asynchronous in the browser), at most 4096 waiting
//   connectTracker a WebSocket (JsTrackerConnection) that reconnects with
//                  node::ReconnectBackoff
//   seed()         crypto.getRandomValues
//   fetchRange()   fetch() with a Range header (web seeds)
// One per module (the JS side has one scheduler): BrowserRuntime::get().
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "node/reconnect.hpp"
#include "node/runtime.hpp"

namespace p2pcdn::browser {

class JsTrackerConnection;

class BrowserRuntime final : public node::Runtime {
 public:
  static BrowserRuntime& get();

  swarm::Time now() const override;
  void post(std::function<void()> task) override;
  void after(swarm::Time delay, std::function<void()> task) override;
  std::unique_ptr<node::TaskQueue> storeQueue() override;
  Result<std::unique_ptr<node::TrackerConnection>> connectTracker(std::string_view url,
                                                                  node::TrackerConnection::Events events) override;
  std::uint64_t seed() override;
  // None: WebCrypto makes keys asynchronously, so the page makes one first
  // (web/src/identity.js) and the peer is given it (JsIdentity).
  std::shared_ptr<node::Identity> makeIdentity() override { return nullptr; }
  // Web seeds through the page's fetch() (http and https; the origin's CORS rules apply).
  std::uint64_t fetchRange(const std::string& url, std::uint64_t offset, std::uint32_t length, swarm::Time timeout,
                           std::function<void(Result<Bytes>)> done) override;
  void cancelFetch(std::uint64_t id) override;

  // From JavaScript (exports): the posted tasks' macrotask, the timer.
  void runPosted();
  void runTimers();

  // Handles for JS objects: never 0, never reused.
  int newHandle() { return ++lastHandle_; }
  // Tracker WebSockets by handle (events from JS find theirs, or nothing).
  std::map<int, JsTrackerConnection*> trackers;
  // Web seed fetches by handle: the bytes (p2p_fetch_inbox), then done (p2p_fetch_done).
  struct Fetch {
    std::function<void(Result<Bytes>)> done;
    Bytes bytes;
    std::uint32_t length = 0;
  };
  std::map<int, Fetch> fetches;

 private:
  struct Timer {
    swarm::Time at;
    std::uint64_t seq;  // FIFO among equal deadlines
    std::function<void()> task;
    bool operator>(const Timer& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  void armTimer();

  std::deque<std::function<void()>> posted_;
  bool scheduled_ = false;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::uint64_t timerSeq_ = 0;
  swarm::Time armedFor_ = swarm::Time::max();  // the JS timer's deadline
  int lastHandle_ = 0;
};

// The tracker connection over the page's WebSocket. Loop only.
class JsTrackerConnection final : public node::TrackerConnection {
 public:
  JsTrackerConnection(BrowserRuntime& rt, std::string url, Events events);
  ~JsTrackerConnection() override;
  void start() override;
  void stop() override;
  bool connected() const override { return open_; }
  bool send(std::string text) override;

  // From JavaScript (posted): 0 open, 1 message, 2 closed.
  void onEvent(int kind, std::string text);

 private:
  void connect();
  void lost();

  BrowserRuntime& rt_;
  std::string url_;
  Events events_;
  int handle_ = 0;  // the current WebSocket; 0 when none
  bool started_ = false;
  bool open_ = false;
  node::ReconnectBackoff backoff_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace p2pcdn::browser
