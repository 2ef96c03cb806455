// `p2pcdn serve` (the HTTP gateway, src/gateway) and `p2pcdn stream` (a file's
// plaintext to stdout in order, as it arrives: `p2pcdn stream LINK | mpv -`).
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.hpp"
#include "cli/net.hpp"
#include "cli/progress.hpp"
#include "gateway/server.hpp"
#include "p2pcdn/chunk_manager.hpp"

namespace p2pcdn::cli {
namespace {

namespace asio = boost::asio;

// "HOST:PORT", "[v6]:PORT".
Result<std::pair<std::string, std::uint16_t>> parseListen(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
    return fail(Errc::kInvalidArgument, "--listen", "expected HOST:PORT, got '" + s + "'");
  }
  std::string host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned long port = 0;
  for (char c : s.substr(colon + 1)) {
    if (c < '0' || c > '9') return fail(Errc::kInvalidArgument, "--listen", "bad port in '" + s + "'");
    port = port * 10 + static_cast<unsigned long>(c - '0');
    if (port > 65535) return fail(Errc::kInvalidArgument, "--listen", "port out of range in '" + s + "'");
  }
  return std::pair{host, static_cast<std::uint16_t>(port)};
}

// Writes chunks to a file descriptor on a thread of its own, so a reader that
// stops (a paused player) blocks only this thread, never the node's loop.
// Holds at most `capacity` chunks; `onSpace` runs (on the loop) after each
// write, `onClosed` once if the reader went away (EPIPE) or writing failed.
class FdWriter {
 public:
  FdWriter(asio::io_context& io, int fd, std::size_t capacity) : io_(io), fd_(fd), capacity_(capacity) {
    thread_ = std::thread([this] { run(); });
  }
  ~FdWriter() { close(); }

  std::function<void()> onSpace;
  std::function<void(int err)> onClosed;   // errno
  std::function<void()> onDrained;         // after finish(): everything written

  bool full() const {
    std::lock_guard lk(mu_);
    return queue_.size() >= capacity_;
  }
  void push(Bytes b) {
    std::lock_guard lk(mu_);
    queue_.push_back(std::move(b));
    cv_.notify_one();
  }
  void finish() {
    std::lock_guard lk(mu_);
    finishing_ = true;
    cv_.notify_one();
  }
  void close() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
      cv_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    while (true) {
      Bytes b;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !queue_.empty() || finishing_; });
        if (stop_) return;
        if (queue_.empty()) {  // finishing
          asio::post(io_, [this] {
            if (onDrained) onDrained();
          });
          return;
        }
        b = std::move(queue_.front());
      }
      std::size_t off = 0;
      while (off < b.size()) {
        const ssize_t n = ::write(fd_, b.data() + off, b.size() - off);
        if (n < 0) {
          if (errno == EINTR) continue;
          const int err = errno;
          asio::post(io_, [this, err] {
            if (onClosed) onClosed(err);
          });
          return;
        }
        off += static_cast<std::size_t>(n);
      }
      {
        std::lock_guard lk(mu_);
        queue_.pop_front();
      }
      asio::post(io_, [this] {
        if (onSpace) onSpace();
      });
    }
  }

  asio::io_context& io_;
  int fd_;
  std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Bytes> queue_;
  bool finishing_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace

std::string webAppDir(const std::string& option) {
  if (option == "none") return "";
#ifdef P2PCDN_DEFAULT_APP_DIR
  const std::string dir = option.empty() ? std::string(P2PCDN_DEFAULT_APP_DIR) : option;
#else
  const std::string dir = option;
#endif
  std::error_code ec;
  if (dir.empty() || !std::filesystem::is_regular_file(dir + "/app/index.html", ec)) return "";
  return dir;
}

std::string webAppConfig(const std::string& trackerUrl, const std::vector<std::string>& stun) {
  return nlohmann::json{{"trackerUrl", trackerUrl}, {"iceServers", stun}}.dump();
}

int cmdServe(const Globals& g, const NetArgs& n, const MediaArgs& ma) {
  auto listen = parseListen(ma.listen);
  if (!listen) return report(listen.error());
  auto storeR = openStore(g);
  if (!storeR) return report(storeR.error());
  auto tracker = pickTrackers(n, {});
  if (!tracker) return report(tracker.error());
  Net net(n);
  if (auto st = net.init(g, n, **storeR, *tracker); !st) return report(st.error());
  gateway::GatewayOptions o;
  o.host = listen->first;
  o.allowedHosts = ma.allowHosts;
  o.corsOrigins = ma.cors;
  o.accessToken = ma.token;
  o.port = listen->second;
  o.keyFor = [&g](const FileId& id) { return loadKey(g, id); };
  o.manifestTimeout = std::chrono::milliseconds(static_cast<long>(ma.manifestTimeout * 1000));
  o.appDir = webAppDir(ma.app);
  if (o.appDir.empty() && ma.app != "none") {
    if (!ma.app.empty()) return report(Error(Errc::kInvalidArgument, "--app", "no web app in " + ma.app + " (app/index.html)"));
    std::cerr << "no web app built (./scripts/build.sh wasm): / lists the files\n";
  }
  const std::string& pub = ma.publicTracker;
  if (!pub.empty() && pub.rfind("ws://", 0) != 0 && pub.rfind("wss://", 0) != 0) {
    return report(Error(Errc::kInvalidArgument, "--public-tracker", "expected ws://HOST:PORT or wss://..., got '" + pub + "'"));
  }
  o.appConfig = webAppConfig(pub.empty() ? tracker->front() : pub, n.stun);
  gateway::Gateway gw(net.io, *net.node, **storeR, std::move(o), net.rt.storeQueue());  // chunk reads off the loop
  if (auto st = gw.start(); !st) return report(st.error());
  const std::string host = listen->first.find(':') != std::string::npos ? "[" + listen->first + "]" : listen->first;
  const std::string url = "http://" + host + ":" + std::to_string(gw.port()) + "/";
  if (g.json) {
    std::cout << nlohmann::json{{"url", url}, {"port", gw.port()}, {"peerId", net.node->peerIdHex()}}.dump()
              << std::endl;
  } else {
    std::cout << url << std::endl;
  }
  net.beforeStop = [&gw] { gw.stop(); };
  net.io.run();
  return kExitOk;
}

int cmdStream(const Globals& g, const NetArgs& n, const MediaArgs& ma) {
  // A player that quits closes the pipe: write() then fails with EPIPE and
  // the command ends cleanly instead of dying of SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  auto storeR = openStore(g);
  if (!storeR) return report(storeR.error());
  BlockingStorage store(**storeR);
  auto target = resolveFetch(g, n, store);
  if (!target) return report(target.error());
  const FileId id = target->id;
  const std::optional<EncryptionKey> key = target->key;
  std::optional<Manifest> manifest = std::move(target->manifest);

  Net net(n);
  if (auto st = net.init(g, n, **storeR, target->trackers); !st) return report(st.error());
  const std::size_t lookahead = std::max<std::size_t>(ma.lookahead, 1);
  FdWriter out(net.io, STDOUT_FILENO, 4);
  ProgressBar bar("streaming", ma.progress);

  ChunkIndex next = 0;  // the next chunk to hand to the writer
  std::optional<Error> failure;
  bool finished = false, readerGone = false;

  auto failWith = [&](Error e) {
    if (!failure) failure = std::move(e);
    net.stop();
  };
  // Hands every chunk that is next in order and held to the writer, while it has room.
  std::function<void()> pump = [&] {
    if (!manifest || failure || net.stopping) return;
    const ChunkIndex count = manifest->chunkCount();
    const ChunkIndex before = next;
    while (next < count && net.node->have(id, next) && !out.full()) {
      auto stored = store.getChunk(id, next, ReadOptions{.verify = true});
      if (!stored) return failWith(stored.error());
      Bytes plain;
      if (manifest->encryption) {
        if (!key) {
          return failWith(Error(Errc::kInvalidArgument, "stream",
                             "the file is encrypted; pass a link with k= (or keep its key in the store's keys/)"));
        }
        auto p = ChunkManager::decryptChunk(*key, *manifest, next, *stored);
        if (!p) return failWith(p.error());
        plain = std::move(*p);
      } else {
        plain = std::move(*stored);
      }
      out.push(std::move(plain));
      ++next;
    }
    if (next != before && next < count) net.node->setStreaming(id, true, next, lookahead);
    if (next == count && !finished) {
      finished = true;
      out.finish();
    }
    std::uint64_t done = 0;
    for (ChunkIndex i = 0; i < next; ++i) done += manifest->plainChunkLength(i);
    bar.update(done, manifest->size);
  };
  out.onSpace = [&] { pump(); };
  out.onClosed = [&](int err) {
    if (err == EPIPE) {
      readerGone = true;  // the player quit: a normal end
      net.stop();
    } else {
      failWith(Error(Errc::kIo, "stream", std::string("write to stdout: ") + std::strerror(err)));
    }
  };
  out.onDrained = [&] { net.stop(); };

  // The node posts these, so pump() may move the window; which chunks are
  // held it asks the node (Node::have).
  node::FetchEvents ev;
  ev.onManifest = [&](const Manifest& m) {
    if (!manifest) manifest = m;
    net.node->setStreaming(id, true, next, lookahead);
    pump();
  };
  ev.onChunk = [&](ChunkIndex) { pump(); };
  ev.onComplete = [&] { pump(); };
  ev.onError = [&](const Error& e) { failWith(e); };
  if (auto st = fetchNow(net.io, *net.node, id, manifest, ev); !st) return report(st.error());
  if (auto st = applyWebSeeds(*net.node, *target); !st) return report(st.error());
  net.node->setStreaming(id, true, 0, lookahead);
  net.io.run();
  out.close();
  bar.finish();
  if (failure) return report(*failure);
  if (readerGone) return kExitOk;
  if (!finished || !manifest || next < manifest->chunkCount()) {
    return report(Error(Errc::kCancelled, "stream", "interrupted before the end of the file"));
  }
  return kExitOk;
}

}  // namespace p2pcdn::cli
