// The gateway's state, shared by the server (server.cpp: files, the accept
// loop, the public methods) and its HTTP connections (connection.cpp). Not a
// public header: everything here runs on the gateway's io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "gateway/app_files.hpp"
#include "gateway/http.hpp"
#include "gateway/server.hpp"
#include "p2pcdn/chunk_storage.hpp"

namespace p2pcdn::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Someone waiting for a file's manifest (chunk unset) or for one chunk.
struct Waiter {
  std::uint64_t seq = 0;  // order of arrival: the most recent may take the window
  std::optional<ChunkIndex> chunk;
  std::function<void(Status)> wake;
};

// What the gateway knows of one file it has served or is serving. Which
// chunks are held is the node's (Node::have); a file held complete in the
// store is served from it without the node.
struct FileEntry {
  FileId id;
  std::optional<Manifest> manifest;
  bool complete = false;                    // every chunk is in the store
  std::optional<node::ListenerId> listener; // fetching: listening to the node, not ended
  std::uint64_t starting = 0;               // the node's fetch is being set up: its number (0: none)
  std::map<std::uint64_t, Waiter> waiters;  // by connection
  std::optional<std::uint64_t> owner;       // the connection whose position the window follows
  std::optional<ChunkIndex> window;         // the cursor last given to the node
  bool loaded = false;                      // the store was looked at (entry(), onLoaded): manifest, completeness

  bool fetching() const { return listener.has_value() || starting != 0; }
};

class Conn;
// connection.cpp: a connection for an accepted socket; run() reads its first request.
std::shared_ptr<Conn> makeConnection(std::shared_ptr<Gateway::Impl> gw, tcp::socket socket, std::uint64_t id);
void runConnection(Conn& c);
void closeConnection(Conn& c);

struct Gateway::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& ctx, node::Node& n, ChunkStorage& s, GatewayOptions o)
      : io(ctx), node(n), store(s), opts(std::move(o)), acceptor(ctx), app(opts.appDir) {}

  asio::io_context& io;
  node::Node& node;
  BlockingStorage store;
  GatewayOptions opts;
  RequestPolicy policy;  // from opts (hosts, CORS) and the bound port
  tcp::acceptor acceptor;
  AppFiles app;  // the web app's files (opts.appDir)
  std::unique_ptr<node::TaskQueue> reads;  // chunk reads off the loop (none: inline)
  bool stopped = false;
  std::uint16_t boundPort = 0;
  GatewayStats stats;
  std::map<unsigned, std::uint64_t> byStatus;
  std::map<FileId, FileEntry> files;
  std::uint64_t fetchSeq = 0;  // numbers the node fetches started (FileEntry::starting)
  std::map<std::uint64_t, std::weak_ptr<Conn>> conns;
  std::uint64_t nextConnId = 1, nextSeq = 1;

  void doAccept();

  // ---- files (server.cpp) ----------------------------------------------------------

  // The entry of a file, created on first use; its manifest and completeness
  // are read from the store on the reads queue (loaded, then waiters wake).
  FileEntry& entry(const FileId& id);
  void onLoaded(const FileId& id, std::optional<Manifest> m, bool complete);
  // Runs `task` on the reads queue (inline without one, or when it is full)
  // and `then` with its result on the loop, always later (posted).
  template <class T>
  void offLoop(std::function<T()> task, std::function<void(T)> then) {
    auto run = [io = &io, task = std::move(task), then = std::move(then)]() mutable {
      asio::post(*io, [then = std::move(then), r = task()]() mutable { then(std::move(r)); });
    };
    if (reads && reads->post(run)) return;
    run();
  }

  void setManifest(FileEntry& f, Manifest m);

  bool has(const FileEntry& f, ChunkIndex i) const { return f.complete || node.have(f.id, i); }

  // Chunks held, if known: all of a complete file, else the node's count while it holds the file.
  std::optional<std::uint32_t> held(const FileEntry& f) const;

  ChunkIndex firstMissing(const FileEntry& f) const;

  std::size_t lookups() const;

  // Starts (or joins) the node's fetch of a file and listens to it, unless
  // the file is complete or we listen already.
  Status ensureFetch(FileEntry& f, std::optional<Manifest> hint = std::nullopt);

  void fetchStarted(const FileId& id, std::uint64_t seq, Result<node::ListenerId> lid);

  // Wakes the waiters `pick` selects (outside the iteration: a wake may wait again).
  void wake(FileEntry& f, const std::function<bool(const Waiter&)>& pick, const Status& st);

  void onManifest(const FileId& id, const Manifest& m);

  void onChunk(const FileId& id, ChunkIndex i);

  // The fetch is over: we stop listening (a fetch being set up is dropped when it is).
  void endFetch(FileEntry& f);

  void onComplete(const FileId& id);

  void onError(const FileId& id, const Error& e);

  void setWindow(FileEntry& f, ChunkIndex c);

  // A response of connection `conn` is at chunk `c` (about to send it, or to
  // wait for it). `fresh`: its first chunk (a new request, perhaps a seek).
  void position(FileEntry& f, std::uint64_t conn, ChunkIndex c, bool fresh);

  void wait(FileEntry& f, std::uint64_t conn, std::optional<ChunkIndex> chunk, std::function<void(Status)> w);

  void stopWaiting(const FileId& id, std::uint64_t conn);

  // The response of `conn` on this file is over.
  void release(const FileId& id, std::uint64_t conn);

  // ---- pages ------------------------------------------------------------------------
  // The stored files (read off the loop) and those being served, to `done`.
  void listing(std::function<void(std::vector<IndexEntry>)> done);

  std::string metrics();

};

}  // namespace p2pcdn::gateway
