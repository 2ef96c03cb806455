// `p2pcdn seed` and `p2pcdn get`: a Node on an Asio event loop, over
// libwebrtc links, announcing to a WebSocket tracker.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/progress.hpp"
#include "core/hex.hpp"
#include "node/node.hpp"
#include "p2pcdn/chunk_manager.hpp"
#include "transport/webrtc/webrtc_link.hpp"

namespace p2pcdn::cli {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

node::NodeOptions nodeOptions(const NetArgs& n, const std::string& tracker) {
  node::NodeOptions o;
  o.trackerUrl = tracker;
  o.link.loopbackOnly = n.loopback;
  for (const auto& s : n.stun) o.link.iceServers.push_back(s);
  return o;
}

struct Net {
  asio::io_context io;
  std::unique_ptr<transport::LinkFactory> links;
  std::unique_ptr<node::Node> node;
  asio::signal_set signals{io, SIGINT, SIGTERM};
  bool stopping = false;

  Status init(const NetArgs& n, ChunkStorage& store, const std::string& tracker) {
    transport::WebRtcFactoryOptions fo;
    fo.log = n.verbose ? transport::WebRtcLog::kWarning : transport::WebRtcLog::kNone;
    auto f = transport::makeWebRtcLinkFactory(fo);
    if (!f) return fail(f.error());
    links = std::move(*f);
    node = std::make_unique<node::Node>(io, store, *links, nodeOptions(n, tracker));
    signals.async_wait([this](auto ec, int) {
      if (!ec) stop();
    });
    return node->start();
  }

  void stop() {
    if (stopping) return;
    stopping = true;
    signals.cancel();
    node->stop([this] { io.stop(); });
  }

  ~Net() {
    node.reset();  // links before their factory
    links.reset();
  }
};

Result<std::string> pickTracker(const NetArgs& n, const std::vector<std::string>& fromLink) {
  if (!n.trackers.empty()) return n.trackers.front();
  if (!fromLink.empty()) return fromLink.front();
  return fail(Errc::kInvalidArgument, "tracker", "no tracker: pass --tracker ws://host:port or a link with tr=");
}

}  // namespace

int cmdSeed(const Globals& g, const AddArgs& add, const NetArgs& n) {
  auto storeR = openStore(g);
  if (!storeR) return report(storeR.error());
  BlockingStorage store(**storeR);
  Resolved r;
  std::error_code ec;
  if (std::filesystem::is_regular_file(n.target, ec)) {
    AddArgs a = add;
    a.file = n.target;
    auto added = addToStore(g, store, a);
    if (!added) return report(added.error());
    r = Resolved{added->id, added->key, {}};
  } else {
    auto res = resolve(store, n.target);
    if (!res) return report(res.error());
    r = std::move(*res);
    if (!r.key) r.key = loadKey(g, r.id);
  }
  auto tracker = pickTracker(n, r.trackers);
  if (!tracker) return report(tracker.error());
  Net net;
  if (auto st = net.init(n, **storeR, *tracker); !st) return report(st.error());
  if (auto st = net.node->seed(r.id); !st) return report(st.error());
  std::string link = formatLink(Link{r.id, {*tracker}, r.key});
  if (g.json) {
    auto infoHash = node::swarmKey(r.id);
    std::cout << json{{"fileId", r.id.hex()},
                      {"link", link},
                      {"peerId", net.node->peerIdHex()},
                      {"infoHash", toHex(infoHash)}}
                     .dump()
              << std::endl;
  } else {
    std::cout << link << std::endl;
  }
  asio::steady_timer deadline(net.io);
  if (n.duration > 0) {
    deadline.expires_after(std::chrono::milliseconds(static_cast<long>(n.duration * 1000)));
    deadline.async_wait([&](auto e) {
      if (!e) net.stop();
    });
  }
  net.io.run();
  if (!g.quiet) {
    if (auto p = net.node->progress(r.id)) {
      std::fprintf(stderr, "seeded %s: %llu bytes uploaded\n", r.id.hex().c_str(),
                   static_cast<unsigned long long>(p->bytesUploaded));
    }
  }
  return kExitOk;
}

int cmdGet(const Globals& g, const NetArgs& n) {
  auto launched = Clock::now();
  auto storeR = openStore(g);
  if (!storeR) return report(storeR.error());
  BlockingStorage store(**storeR);
  auto link = parseLink(n.target);
  if (!link) return report(link.error());
  auto tracker = pickTracker(n, link->trackers);
  if (!tracker) return report(tracker.error());
  std::optional<EncryptionKey> key = link->key ? link->key : loadKey(g, link->fileId);
  std::optional<Manifest> manifest;
  if (auto m = store.getManifest(link->fileId)) manifest = *m;
  std::uint32_t fromStore = 0;
  if (manifest) {
    if (auto present = store.presentChunks(link->fileId)) {
      for (bool b : *present) fromStore += b ? 1u : 0u;
    }
  }

  Net net;
  if (auto st = net.init(n, **storeR, *tracker); !st) return report(st.error());
  ProgressBar bar("fetching", !g.quiet);
  std::optional<Error> failure;
  std::optional<double> firstChunkAt, completeAt;
  bool done = false;
  asio::steady_timer ticker(net.io), seedTimer(net.io);
  std::function<void()> tick = [&] {
    if (auto p = net.node->progress(link->fileId)) {
      std::string peers = std::to_string(p->peers) + (p->peers == 1 ? " peer" : " peers");
      if (p->chunksTotal) bar.update(p->bytesVerified, p->bytesTotal, peers);
      else bar.update(0, 1, peers + ", fetching manifest");
    }
    ticker.expires_after(std::chrono::milliseconds(200));
    ticker.async_wait([&](auto e) {
      if (!e && !done) tick();
    });
  };
  auto since = [&] { return std::chrono::duration<double>(Clock::now() - launched).count(); };

  node::FetchEvents ev;
  ev.onChunk = [&](ChunkIndex) {
    if (!firstChunkAt) firstChunkAt = since();
  };
  ev.onError = [&](const Error& e) {
    failure = e;
    net.stop();
  };
  ev.onComplete = [&] {
    done = true;
    completeAt = since();
    ticker.cancel();
    if (auto p = net.node->progress(link->fileId)) bar.update(p->bytesTotal, p->bytesTotal);
    bar.finish();
    if (n.seedAfter) {
      if (*n.seedAfter > 0) {
        seedTimer.expires_after(std::chrono::milliseconds(static_cast<long>(*n.seedAfter * 1000)));
        seedTimer.async_wait([&](auto e) {
          if (!e) net.stop();
        });
      }
    } else {
      net.stop();
    }
  };
  if (auto st = net.node->fetch(link->fileId, manifest, ev); !st) return report(st.error());
  tick();
  net.io.run();
  bar.finish();
  if (failure) return report(*failure);
  if (!completeAt) return report(Error(Errc::kCancelled, "get", "interrupted before the download completed"));

  auto m = store.getManifest(link->fileId);
  if (!m) return report(m.error());
  if (!n.output.empty()) {
    Status st = ChunkManager::exportFile(
        *m, [&](ChunkIndex i) { return store.getChunk(link->fileId, i, ReadOptions{.verify = false}); }, n.output,
        key);
    if (!st) return report(st.error());
  }
  auto p = net.node->progress(link->fileId);
  if (g.json) {
    json j{{"fileId", link->fileId.hex()},
           {"size", m->size},
           {"chunks", m->chunkCount()},
           {"chunksFromStore", fromStore},
           {"chunksFetched", p ? p->chunksFetched : 0},
           {"bytesDownloaded", p ? p->bytesDownloaded : 0},
           {"firstChunkSeconds", firstChunkAt ? *firstChunkAt : -1.0},
           {"completeSeconds", *completeAt},
           {"totalSeconds", since()}};
    std::cout << j.dump() << std::endl;
  } else if (!g.quiet) {
    std::fprintf(stderr, "fetched %s (%u chunks from peers, %u already stored) in %.2f s\n", m->name.c_str(),
                 p ? p->chunksFetched : 0, fromStore, *completeAt);
  }
  return kExitOk;
}

}  // namespace p2pcdn::cli
