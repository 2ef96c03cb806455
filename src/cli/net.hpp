// What the network commands (seed, get, serve, stream) share: a Node on an
// Asio event loop over libwebrtc links, stopped by SIGINT/SIGTERM.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "node/asio_runtime.hpp"
#include "node/node.hpp"
#include "transport/webrtc/webrtc_link.hpp"

namespace p2pcdn::cli {

// trackers: the first is NodeOptions::trackerUrl, the rest its fallbacks.
node::NodeOptions nodeOptions(const NetArgs& n, const std::vector<std::string>& trackers);
// The node's identity kept in <home>/keys/identity.key (made the first time).
Result<std::shared_ptr<node::Identity>> homeIdentity(const std::filesystem::path& home);
// --tracker, else the link's first tr=, else a usage error.
// --tracker (all given), else the link's tr= (all), else an error.
Result<std::vector<std::string>> pickTrackers(const NetArgs& n, const std::vector<std::string>& fromLink);

// Where a fetching command (get, stream) starts: the file of the link in
// n.target, its key (from the link, else the key store), the tracker, and the
// manifest if the store already has it.
struct FetchTarget {
  FileId id;
  std::optional<EncryptionKey> key;
  std::vector<std::string> trackers;  // the first, then fallbacks
  std::optional<Manifest> manifest;
  std::vector<std::string> webSeeds;  // the link's ws= and --web-seed
};
// After the node's fetch of t.id: its web seeds, if any.
Status applyWebSeeds(node::Node& node, const FetchTarget& t);
Result<FetchTarget> resolveFetch(const Globals& g, const NetArgs& n, BlockingStorage& store);

// Runs `io` until an asynchronous call's `done` has run (the one-shot
// commands' way to call the node's seed/fetch before their loop takes over),
// and gives its result; kCancelled if the loop stopped first (a signal).
template <class T>
T awaitOn(boost::asio::io_context& io, const std::function<void(std::function<void(T)>)>& call) {
  std::optional<T> out;
  call([&out](T r) { out.emplace(std::move(r)); });
  while (!out && !io.stopped()) io.run_one();
  if (out) return std::move(*out);
  return T(fail(Errc::kCancelled, "node", "interrupted"));
}
inline Status seedNow(boost::asio::io_context& io, node::Node& node, const FileId& id) {
  return awaitOn<Status>(io, [&](std::function<void(Status)> done) { node.seed(id, std::move(done)); });
}
inline Result<node::ListenerId> fetchNow(boost::asio::io_context& io, node::Node& node, const FileId& id,
                                         std::optional<Manifest> manifest, node::FetchEvents events) {
  return awaitOn<Result<node::ListenerId>>(io, [&](std::function<void(Result<node::ListenerId>)> done) {
    node.fetch(id, std::move(manifest), std::move(events), std::move(done));
  });
}

struct Net {
  // The CA file of a wss:// tracker (--ca) is the runtime's from its start.
  explicit Net(const NetArgs& n) : caFile_(n.trackerCa) {}

 private:
  std::string caFile_;

 public:
  boost::asio::io_context io;
  node::AsioRuntime rt{io, caFile_};
  std::unique_ptr<transport::LinkFactory> links;
  std::unique_ptr<node::Node> node;
  boost::asio::signal_set signals{io, SIGINT, SIGTERM};
  bool stopping = false;
  std::function<void()> beforeStop;  // runs once, while the node still has its peers

  Status init(const Globals& g, const NetArgs& n, ChunkStorage& store, const std::vector<std::string>& trackers) {
    node::NodeOptions o = nodeOptions(n, trackers);
    auto id = homeIdentity(g.home);
    if (!id) return fail(id.error());
    o.identity = std::move(*id);
    transport::WebRtcFactoryOptions fo;
    fo.log = n.verbose ? transport::WebRtcLog::kWarning : transport::WebRtcLog::kNone;
    if (n.udpReceiveBuffer) fo.udpReceiveBuffer = *n.udpReceiveBuffer;
    auto f = transport::makeWebRtcLinkFactory(fo);
    if (!f) return fail(f.error());
    links = std::move(*f);
    node = std::make_unique<node::Node>(rt, store, *links, std::move(o));
    signals.async_wait([this](auto ec, int) {
      if (!ec) stop();
    });
    return node->start();
  }

  void stop() {
    if (stopping) return;
    stopping = true;
    signals.cancel();
    if (beforeStop) beforeStop();
    node->stop([this] { io.stop(); });
  }

  ~Net() {
    node.reset();  // links before their factory
    links.reset();
  }
};

}  // namespace p2pcdn::cli
