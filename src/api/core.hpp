// The inside of P2PCDN (include/p2pcdn/p2pcdn.hpp): one Core per P2PCDN, one
// event-loop thread per connected Core. Layout and thread model:
// docs/hacking.md, "Library API (src/api)".
//
//  - The options and the store's layout are fixed at construction (const) and
//    read from any thread. Lifecycle fields (state, io, loop thread) are
//    guarded by `mu` and touched from any thread. Everything under "loop
//    thread only" is owned by the loop: public calls reach it through
//    post()/call().
//  - The node posts its events (node.hpp), so a user callback never runs
//    inside a Node call and may call anything (remove(), another download, ...).
//  - Every asynchronous completion is a Completion<T>: it fires exactly once,
//    with kCancelled if the handler carrying it is destroyed unrun (shutdown).
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "node/asio_runtime.hpp"
#include "node/node.hpp"
#include "p2pcdn/p2pcdn.hpp"
#include "transport/peer_link.hpp"

namespace p2pcdn {

namespace api {

namespace asio = boost::asio;

Unexpected notConnected(const std::string& op);

// Where a SQLite store keeps its files: the database, and the folder that holds
// it and keys/ (the CLI's --home). Both empty for a memory store.
struct StoreLayout {
  std::filesystem::path home, db;
};
StoreLayout storeLayout(const std::string& storage);

// A result handed from the loop to one waiting thread.
template <class T>
class Waiter {
 public:
  void set(Result<T> r) {
    std::lock_guard lock(mu_);
    if (v_) return;
    v_.emplace(std::move(r));
    cv_.notify_all();
  }
  Result<T> wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return v_.has_value(); });
    return std::move(*v_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Result<T>> v_;
};

// A callback that runs exactly once: with the value it is called with, or,
// when its last copy is destroyed uncalled, with kCancelled.
template <class T>
class Completion {
 public:
  using Fn = std::function<void(Result<T>)>;
  Completion() = default;
  Completion(Fn fn, std::string op) : s_(std::make_shared<S>(std::move(fn), std::move(op))) {}
  void operator()(Result<T> r) const {
    if (s_) s_->fire(std::move(r));
  }

 private:
  struct S {
    S(Fn f, std::string o) : fn(std::move(f)), op(std::move(o)) {}
    S(const S&) = delete;
    S& operator=(const S&) = delete;
    ~S() {
      if (fn) fn(fail(Errc::kCancelled, op, "the P2PCDN disconnected first"));
    }
    void fire(Result<T> r) {
      Fn f = std::move(fn);
      fn = nullptr;
      if (f) f(std::move(r));
    }
    Fn fn;
    std::string op;
  };
  std::shared_ptr<S> s_;
};

// One thread for the slow parts of asynchronous calls that must not run on
// the loop (chunking a file for uploadAsync, writing a file for
// downloadToAsync). Jobs run in order; they reach the store through call().
class Worker {
 public:
  ~Worker() { shutdown(); }
  void add(std::function<void()> job);
  // Lets the jobs still queued run (they fail fast once disconnected) and
  // joins the thread (detaches it when called from one of its own jobs).
  void shutdown();
  bool onWorker() const { return std::this_thread::get_id() == s_->id.load(); }

 private:
  // Shared with the thread, which may outlive the Worker (a job that held the
  // last reference to the Core destroys it on this thread).
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> jobs;
    bool stop = false;
    std::atomic<std::thread::id> id{};
  };
  static void run(std::shared_ptr<Shared> s);
  std::shared_ptr<Shared> s_ = std::make_shared<Shared>();
  std::mutex threadMu_;
  std::thread thread_;
};

// Someone waiting for a file the node fetches (a download, a stream): one
// node listener each.
struct Listener {
  FileId file;
  std::optional<node::ListenerId> node;            // none while the node's fetch is being set up
  ProgressCallback onProgress;                      // user code
  std::function<void(const Manifest&)> onManifest;  // internal (streams)
  std::function<void(ChunkIndex)> onChunk;          // internal (streams)
  std::function<void(Status)> onDone;               // once: complete, failed, timed out, cancelled
  std::function<void()> onStarted;                  // internal: the node holds the file now (streams set their window)
  std::unique_ptr<asio::steady_timer> timer;        // DownloadOptions::timeout
};

}  // namespace api

struct ChunkStream::State : std::enable_shared_from_this<ChunkStream::State> {
  std::weak_ptr<P2PCDN::Core> core;
  FileId id;
  DownloadOptions options;
  std::atomic<ChunkIndex> position{0};  // mirror of cursor for any thread
  // Loop thread only.
  std::uint64_t listener = 0;       // in Core::listeners while the fetch runs
  std::optional<Manifest> manifest;
  std::optional<EncryptionKey> key;
  ChunkIndex cursor = 0;
  bool complete = false;            // held chunks: Node::have until then
  bool closed = false;
  std::optional<Error> error;       // sticky
  bool reading = false;             // the chunk at the cursor is being read (Core::storeAsync)
  std::shared_ptr<const Manifest> sharedManifest;  // an encrypted file's, for the reads' decryption
  api::Completion<std::optional<Bytes>> waiter;
  bool waiting = false;
  std::unique_ptr<boost::asio::steady_timer> timer;
};

struct P2PCDN::Core : std::enable_shared_from_this<P2PCDN::Core> {
  explicit Core(P2PCDNOptions o) : opts(std::move(o)), layout(api::storeLayout(opts.storage)) {}
  ~Core();

  // ---- fixed at construction: any thread reads them, nobody writes --------
  const P2PCDNOptions opts;
  // Decided once (whether storage names a .db file or a folder), so every
  // connect() opens the same store and upload threads read `layout.home`
  // (keys/) without a lock.
  const api::StoreLayout layout;

  // ---- lifecycle: any thread, under mu -------------------------------------
  enum class State { kIdle, kRunning, kStopping };
  std::mutex lifeMu;  // one connect() at a time
  mutable std::mutex mu;
  std::condition_variable finishedCv;
  State state = State::kIdle;
  bool finished = true;  // the loop thread's epilogue is over
  std::unique_ptr<boost::asio::io_context> io;
  std::unique_ptr<node::AsioRuntime> runtime;  // over io; outlives node
  std::thread loop;
  std::atomic<std::thread::id> loopId{};
  std::string peerIdHex;
  api::Worker worker;
  // The API's store thread (connect() sets it, the loop's epilogue resets it):
  // every store call runs there (storeCall, storeAsync), never on the loop.
  std::unique_ptr<node::TaskQueue> storeQ;

  Status connect();
  void disconnect();
  bool running() const {
    std::lock_guard lock(mu);
    return state == State::kRunning;
  }
  bool onLoop() const { return std::this_thread::get_id() == loopId.load(); }

  // Queues fn on the loop; false (fn dropped) unless running.
  template <class F>
  bool post(F&& fn) {
    std::lock_guard lock(mu);
    if (state != State::kRunning || !io) return false;
    boost::asio::post(*io, std::forward<F>(fn));
    return true;
  }
  // Runs fn() -> Result<T> on the loop and waits for it; inline when called
  // on the loop (from a callback). fn must check ready() itself.
  template <class T, class F>
  Result<T> call(const std::string& op, F fn) {
    if (onLoop()) return fn();
    auto w = std::make_shared<api::Waiter<T>>();
    api::Completion<T> done([w](Result<T> r) { w->set(std::move(r)); }, op);
    // The task holds the only copy of `done`: dropped unrun (a stop), it fires kCancelled.
    if (!post([done = std::move(done), fn = std::move(fn)]() mutable { done(fn()); })) return api::notConnected(op);
    return w->wait();
  }
  // Runs fn(BlockingStorage&) -> Result<T> on the store queue (storeQ, off the
  // loop) and waits for it, from a caller's or the worker's thread; inline
  // when called on the loop (a callback), where storeAsync is the way.
  template <class T, class F>
  Result<T> storeCall(const std::string& op, F fn) {
    if (onLoop()) {
      if (!ready() || !store) return api::notConnected(op);
      return fn(*store);
    }
    auto w = std::make_shared<api::Waiter<T>>();
    api::Completion<T> done([w](Result<T> r) { w->set(std::move(r)); }, op);
    {
      std::lock_guard lock(mu);
      if (state != State::kRunning || !storeQ) return api::notConnected(op);
      // The task holds the only copy of `done`: the queue dropping it unrun fires kCancelled.
      if (!storeQ->post([done = std::move(done), fn = std::move(fn), st = store.get()]() mutable { done(fn(*st)); })) {
        return fail(Errc::kBackPressure, op, "the store queue is full");
      }
    }
    return w->wait();
  }
  // On the loop: fn(BlockingStorage&) on the store queue, then `then` with
  // its result on the loop (always posted; never if the loop has ended).
  template <class T>
  void storeAsync(std::function<Result<T>(BlockingStorage&)> fn, std::function<void(Result<T>)> then) {
    auto back = [io = io.get(), then = std::move(then)](Result<T> r) mutable {
      boost::asio::post(*io, [then = std::move(then), r = std::move(r)]() mutable { then(std::move(r)); });
    };
    if (storeQ && storeQ->post([st = store.get(), fn, back]() mutable { back(fn(*st)); })) return;
    back(fail(Errc::kBackPressure, "store", "the store queue is full"));
  }
  // Blocking calls refuse to run on the loop thread (they would wait for themselves).
  Status blockingAllowed(const std::string& op) const;

  // ---- loop thread only ------------------------------------------------------
  bool stopping = false;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  std::shared_ptr<transport::LinkFactory> links;
  std::unique_ptr<ChunkStorage> storage;
  std::unique_ptr<BlockingStorage> store;  // used on storeQ (storeCall, storeAsync), never on the loop
  std::unique_ptr<node::Node> node;
  std::map<std::uint64_t, api::Listener> listeners;
  std::uint64_t nextListener = 1;
  std::set<FileId> inNode;          // handed to the node (seed or fetch) and not forgotten
  std::set<FileId> serving;         // the node serves it
  std::set<FileId> stoppedSeeding;  // seedDuration over (or enableSeeding off)
  std::map<FileId, std::unique_ptr<boost::asio::steady_timer>> seedTimers;
  std::map<FileId, EncryptionKey> keys;  // of our own encrypted uploads
  std::uint64_t retiredUp = 0, retiredDown = 0, retiredChunks = 0;  // of forgotten files
  std::vector<std::weak_ptr<ChunkStream::State>> streams;

  bool ready() const { return !stopping && node != nullptr; }
  void runLoop();  // the loop thread's body
  void shutdownOnLoop();
  // Open links and the node's ledger of closed ones.
  std::vector<PeerStats> peerStats() const;

  // Listeners of the node's fetches.
  Result<std::uint64_t> listen(const FileId& id, const std::optional<Manifest>& manifest, api::Listener l,
                               std::chrono::milliseconds timeout, const std::string& op);
  void unlisten(std::uint64_t listener);
  // Node::fetch's done for listener `key`.
  void listenStarted(std::uint64_t key, Result<node::ListenerId> nid);
  void dropNodeListener(const api::Listener& l);
  bool fetching(const FileId& id) const;  // someone listens
  // Ends every listener of the file (or all of them) with kCancelled, `why`.
  void endListeners(const std::optional<FileId>& id, const std::string& why);
  node::FetchEvents fetchEvents(std::uint64_t listener);
  void fetchManifest(std::uint64_t listener, const Manifest& m);
  void fetchChunk(std::uint64_t listener, ChunkIndex index);
  void notify(std::uint64_t listener, const std::function<void(api::Listener&)>& event, std::optional<ChunkIndex> chunk);
  void fetchDone(std::uint64_t listener, Status st);
  void fetchTimedOut(std::uint64_t listener, std::chrono::milliseconds timeout, const std::string& op);
  Progress progressOf(const FileId& id, std::optional<ChunkIndex> chunk) const;

  // Seeding.
  void startSeeding(const FileId& id);
  void armSeedTimer(const FileId& id);
  void stopSeedingNow(const FileId& id);
  void afterComplete(const FileId& id);
  void forgetInNode(const FileId& id);

  // Data.
  std::optional<EncryptionKey> keyFor(const FileId& id, const std::optional<EncryptionKey>& given);
  // Off the loop: the file's chunks, reassembled (decrypted, verified).
  Result<Bytes> readAll(const FileId& id, const std::optional<EncryptionKey>& given);

  // Off the loop (caller or worker thread).
  Result<UploadResult> importFile(const std::filesystem::path* path, ByteView data, const FileMetadata& md);
  Status exportTo(const FileId& id, const std::filesystem::path& out, const std::optional<EncryptionKey>& key);
  void startDownloadTo(const FileId& id, std::optional<Manifest> manifest, std::filesystem::path out,
                       ProgressCallback onProgress, api::Completion<void> done, DownloadOptions options);

  // Streams (loop).
  Status startStream(const std::shared_ptr<ChunkStream::State>& s, const std::optional<Manifest>& manifest,
                     ProgressCallback onProgress);
  void streamNext(const std::shared_ptr<ChunkStream::State>& s, api::Completion<std::optional<Bytes>> done);
  void streamPump(const std::shared_ptr<ChunkStream::State>& s);
  void streamClose(const std::shared_ptr<ChunkStream::State>& s);
  void streamFinishWait(ChunkStream::State& s, Result<std::optional<Bytes>> r);
};

}  // namespace p2pcdn
