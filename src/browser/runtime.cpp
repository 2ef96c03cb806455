#include "browser/runtime.hpp"

#include <emscripten/emscripten.h>

#include <cmath>

#include "browser/js.hpp"

namespace p2pcdn::browser {

namespace {

constexpr std::size_t kStoreQueueMax = 4096;
// A tracker message above this closes the connection (the native client's limit).
constexpr std::size_t kMaxTrackerMessage = std::size_t{1} << 20;
// A tracker WebSocket not open this long after it began is closed and retried (WsClient's 10 s).
constexpr swarm::Time kConnectTimeout = std::chrono::seconds(10);

// Store tasks through the loop, bounded; dropped once the queue is destroyed.
class PostedQueue final : public node::TaskQueue {
 public:
  explicit PostedQueue(BrowserRuntime& rt) : rt_(rt) {}
  ~PostedQueue() override { *alive_ = false; }
  bool post(std::function<void()> task) override {
    if (*waiting_ >= kStoreQueueMax) return false;
    ++*waiting_;
    rt_.post([alive = alive_, waiting = waiting_, task = std::move(task)] {
      --*waiting;
      if (*alive) task();
    });
    return true;
  }

 private:
  BrowserRuntime& rt_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::shared_ptr<std::size_t> waiting_ = std::make_shared<std::size_t>(0);
};

}  // namespace

BrowserRuntime& BrowserRuntime::get() {
  static BrowserRuntime rt;
  return rt;
}

swarm::Time BrowserRuntime::now() const {
  return swarm::Time(static_cast<std::int64_t>(emscripten_get_now() * 1e6));
}

void BrowserRuntime::post(std::function<void()> task) {
  posted_.push_back(std::move(task));
  if (!scheduled_) {
    scheduled_ = true;
    p2p_js_schedule();
  }
}

void BrowserRuntime::runPosted() {
  scheduled_ = false;
  for (std::size_t n = posted_.size(); n > 0 && !posted_.empty(); --n) {
    auto task = std::move(posted_.front());
    posted_.pop_front();
    task();
  }
  if (!posted_.empty() && !scheduled_) {
    scheduled_ = true;
    p2p_js_schedule();
  }
}

void BrowserRuntime::after(swarm::Time delay, std::function<void()> task) {
  timers_.push(Timer{now() + std::max(delay, swarm::Time(0)), ++timerSeq_, std::move(task)});
  armTimer();
}

void BrowserRuntime::armTimer() {
  if (timers_.empty()) return;
  const swarm::Time at = timers_.top().at;
  if (at >= armedFor_) return;  // the JS timer fires earlier and re-arms
  armedFor_ = at;
  const double ms = std::max(0.0, static_cast<double>((at - now()).count()) / 1e6);
  p2p_js_set_timer(std::ceil(ms));
}

void BrowserRuntime::runTimers() {
  armedFor_ = swarm::Time::max();
  const swarm::Time t = now();
  // Only the timers due now: one added by a task runs on a later turn.
  std::vector<std::function<void()>> due;
  while (!timers_.empty() && timers_.top().at <= t) {
    due.push_back(std::move(const_cast<Timer&>(timers_.top()).task));
    timers_.pop();
  }
  for (auto& task : due) task();
  armTimer();
}

std::unique_ptr<node::TaskQueue> BrowserRuntime::storeQueue() { return std::make_unique<PostedQueue>(*this); }

Result<std::unique_ptr<node::TrackerConnection>> BrowserRuntime::connectTracker(
    std::string_view url, node::TrackerConnection::Events events) {
  if (url.rfind("ws://", 0) != 0 && url.rfind("wss://", 0) != 0) {
    return fail(Errc::kInvalidArgument, "tracker url", "not ws:// or wss://: " + std::string(url));
  }
  return std::unique_ptr<node::TrackerConnection>(
      std::make_unique<JsTrackerConnection>(*this, std::string(url), std::move(events)));
}

std::uint64_t BrowserRuntime::seed() {
  return (std::uint64_t{p2p_js_random32()} << 32) | p2p_js_random32();
}

std::uint64_t BrowserRuntime::fetchRange(const std::string& url, std::uint64_t offset, std::uint32_t length,
                                         swarm::Time timeout, std::function<void(Result<Bytes>)> done) {
  const int h = newHandle();
  fetches[h] = Fetch{std::move(done), {}, length};
  p2p_js_fetch(h, url.data(), url.size(), static_cast<double>(offset), static_cast<double>(length),
               static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
  return static_cast<std::uint64_t>(h);
}

void BrowserRuntime::cancelFetch(std::uint64_t id) {
  const int h = static_cast<int>(id);
  if (fetches.erase(h) != 0) p2p_js_fetch_cancel(h);
}

// ---- JsTrackerConnection ----

JsTrackerConnection::JsTrackerConnection(BrowserRuntime& rt, std::string url, Events events)
    : rt_(rt), url_(std::move(url)), events_(std::move(events)) {}

JsTrackerConnection::~JsTrackerConnection() {
  *alive_ = false;
  stop();
}

void JsTrackerConnection::start() {
  if (started_) return;
  started_ = true;
  connect();
}

void JsTrackerConnection::stop() {
  started_ = false;
  open_ = false;
  if (handle_ != 0) {
    rt_.trackers.erase(handle_);
    p2p_js_ws_close(handle_);
    handle_ = 0;
  }
}

void JsTrackerConnection::connect() {
  if (!started_ || handle_ != 0) return;
  handle_ = rt_.newHandle();
  rt_.trackers[handle_] = this;
  p2p_js_ws_open(handle_, url_.data(), url_.size());
  // A WebSocket that neither opens nor fails (a black-holed address) is given up, as natively.
  rt_.after(kConnectTimeout, [this, alive = std::weak_ptr<bool>(alive_), h = handle_] {
    if (!alive.expired() && handle_ == h && !open_) lost();
  });
}

bool JsTrackerConnection::send(std::string text) {
  if (!open_ || handle_ == 0) return false;
  return p2p_js_ws_send(handle_, text.data(), text.size()) == 0;
}

void JsTrackerConnection::onEvent(int kind, std::string text) {
  switch (kind) {
    case 0:
      open_ = true;
      backoff_.reset();
      if (events_.onConnected) events_.onConnected();
      return;
    case 1:
      if (!open_) return;
      if (text.size() > kMaxTrackerMessage) return lost();
      if (events_.onMessage) events_.onMessage(std::move(text));
      return;
    default:
      return lost();
  }
}

void JsTrackerConnection::lost() {
  open_ = false;
  if (handle_ != 0) {
    rt_.trackers.erase(handle_);
    p2p_js_ws_close(handle_);
    handle_ = 0;
  }
  if (!started_) return;
  const double unit = static_cast<double>(p2p_js_random32()) / 4294967296.0;
  rt_.after(backoff_.next(unit), [this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) connect();
  });
}

}  // namespace p2pcdn::browser
