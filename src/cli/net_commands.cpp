// `p2pcdn seed` and `p2pcdn get`: a Node on an Asio event loop, over
// libwebrtc links, announcing to a WebSocket tracker.
#include <fstream>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.hpp"
#include "cli/net.hpp"
#include "cli/progress.hpp"
#ifdef P2PCDN_FAULT_INJECTION
#include "cli/fault_injection.hpp"
#endif
#include "chunk/key_store.hpp"
#include "core/hex.hpp"
#include "crypto/crypto.hpp"
#include "node/node.hpp"
#include "node/openssl_identity.hpp"
#include "p2pcdn/chunk_manager.hpp"
#include "transport/webrtc/webrtc_link.hpp"

namespace p2pcdn::cli {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// Per-peer statistics for the --json reports: the links of the file open now
// and the ones that closed (the node's ledger; after stop() every link is
// there), one entry per remote peer id (a peer may have had several links).
json peersJson(const node::Node& node, const FileId& id) {
  std::vector<node::NodePeerStats> links = node.closedLinks(id);
  for (auto& s : node.peerStats()) {
    if (s.fileId == id) links.push_back(std::move(s));
  }
  std::map<std::string, json> byPeer;
  for (const auto& s : links) {
    json& e = byPeer[s.peerId];
    if (e.is_null()) {
      e = json{{"peerId", s.peerId}, {"bytesDown", 0}, {"bytesUp", 0}, {"chunksReceived", 0},
               {"chunksServed", 0},  {"failures", 0},  {"badChunks", 0}};
    }
    auto add = [&e](const char* k, std::uint64_t v) { e[k] = e[k].get<std::uint64_t>() + v; };
    add("bytesDown", s.swarm.bytesDown);
    add("bytesUp", s.swarm.bytesUp);
    add("chunksReceived", s.swarm.chunksReceived);
    add("chunksServed", s.swarm.chunksServed);
    add("failures", s.swarm.failures);
    add("badChunks", s.swarm.badChunks);
    // How the (last) link went: "host", "srflx", "prflx" or "relay" (TURN).
    if (!s.localCandidateType.empty()) e["localCandidateType"] = s.localCandidateType;
    if (!s.remoteCandidateType.empty()) e["remoteCandidateType"] = s.remoteCandidateType;
  }
  json out = json::array();
  for (auto& [peer, e] : byPeer) out.push_back(std::move(e));
  return out;
}

// The engine's counters, for the final --json line.
void addSwarmCounters(json& j, const std::optional<node::FileProgress>& p) {
  j["bytesUploaded"] = p ? p->bytesUploaded : 0;
  j["badChunks"] = p ? p->swarm.badChunks : 0;
  j["bans"] = p ? p->swarm.bans : 0;
  j["timeouts"] = p ? p->swarm.timeouts : 0;
  j["wasted"] = p ? p->swarm.wasted : 0;
  j["windowWaits"] = p ? p->swarm.windowWaits : 0;
  j["lateRefills"] = p ? p->swarm.lateRefills : 0;
  j["goodbyesReceived"] = p ? p->swarm.goodbyesReceived : 0;
  j["originBytes"] = p ? p->swarm.originBytes : 0;
  j["originChunks"] = p ? p->swarm.originChunks : 0;
  j["originFailures"] = p ? p->swarm.originFailures : 0;
}

// Hex of the node's chunk bitfield of a file as on the wire (wire::setBit:
// bit i is chunk i, most significant bit first in each byte).
std::string bitfieldHex(const node::Node& node, const FileId& id, std::uint32_t chunks) {
  Bytes bits((std::size_t{chunks} + 7) / 8, 0);
  for (ChunkIndex i = 0; i < chunks; ++i) {
    if (node.have(id, i)) bits[i / 8] = static_cast<std::uint8_t>(bits[i / 8] | (0x80u >> (i % 8)));
  }
  return toHex(bits);
}

// How often `get --json` prints a progress line.
constexpr std::chrono::milliseconds kProgressLinePeriod{500};

// Runs `each` now and every `period` until the node stops; cancelling the
// timer ends it.
void every(Net& net, asio::steady_timer& timer, std::chrono::milliseconds period, std::function<void()> each) {
  auto tick = std::make_shared<std::function<void()>>();
  *tick = [&net, &timer, period, each = std::move(each), weak = std::weak_ptr<std::function<void()>>(tick)] {
    each();
    timer.expires_after(period);
    timer.async_wait([&net, again = weak.lock()](auto e) {
      if (!e && !net.stopping && again) (*again)();
    });
  };
  net.beforeStop = [&timer] { timer.cancel(); };
  (*tick)();
}

}  // namespace

// ---- shared with the other network commands (net.hpp) ----

Result<std::shared_ptr<node::Identity>> homeIdentity(const std::filesystem::path& home) {
  auto seed = loadOrCreateIdentitySeed(home, crypto::randomKey);
  if (!seed) return fail(seed.error());
  return node::opensslIdentity(*seed);
}

node::NodeOptions nodeOptions(const NetArgs& n, const std::vector<std::string>& trackers) {
  node::NodeOptions o;
  if (!trackers.empty()) {
    o.trackerUrl = trackers.front();
    o.trackerFallbacks.assign(trackers.begin() + 1, trackers.end());
  }
  o.link.loopbackOnly = n.loopback;
  for (const auto& s : n.stun) o.link.iceServers.push_back(s);
  o.link.iceUsername = n.iceUser;
  o.link.icePassword = n.icePass;
  o.link.relayOnly = n.relayOnly;
  if (n.maxUploads) o.swarm.maxConcurrentUploads = *n.maxUploads;
  if (n.maxDownloads) o.swarm.maxConcurrentDownloads = *n.maxDownloads;
  o.uploadLimit = n.uploadLimit.value_or(0);
  o.downloadLimit = n.downloadLimit.value_or(0);
  if (n.noSuperSeed) o.swarm.superSeed = false;
  if (const char* t = std::getenv("P2PCDN_TRACE"); t && std::string_view(t) == "1") {
    const auto t0 = std::chrono::steady_clock::now();
    o.trace = [t0](const std::string& line) {
      const std::chrono::duration<double> at = std::chrono::steady_clock::now() - t0;
      std::fprintf(stderr, "[%8.3f] %s\n", at.count(), line.c_str());
    };
  }
#ifdef P2PCDN_FAULT_INJECTION
  // The test twin only: every store completion reaches the engine this much
  // later (bench/transfer_1to1.py's slow-store run).
  if (const char* d = std::getenv("P2PCDN_STORE_DELAY_MS")) o.storeDelay = std::chrono::milliseconds(std::atoi(d));
#endif
  return o;
}

Result<std::vector<std::string>> pickTrackers(const NetArgs& n, const std::vector<std::string>& fromLink) {
  if (!n.trackers.empty()) return n.trackers;
  if (!fromLink.empty()) return fromLink;
  return fail(Errc::kInvalidArgument, "tracker", "no tracker: pass --tracker ws://host:port or a link with tr=");
}

// A file of at most `cap` bytes, whole.
static Result<std::string> readSmallFile(const std::filesystem::path& path, std::size_t cap) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errc::kIo, "read " + path.string(), "cannot open it");
  std::string text(cap + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return fail(Errc::kIo, "read " + path.string(), "read error");
  if (static_cast<std::size_t>(in.gcount()) > cap) return fail(Errc::kTooLarge, "read " + path.string(), "larger than a manifest can be");
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

Result<FetchTarget> resolveFetch(const Globals& g, const NetArgs& n, BlockingStorage& store) {
  auto link = parseLink(n.target);
  if (!link) return fail(link.error());
  auto tracker = pickTrackers(n, link->trackers);
  if (!tracker) return fail(tracker.error());
  FetchTarget t{link->fileId, link->key ? link->key : loadKey(g, link->fileId), std::move(*tracker), std::nullopt,
                link->webSeeds};
  for (const auto& w : n.webSeeds) {
    if (std::find(t.webSeeds.begin(), t.webSeeds.end(), w) == t.webSeeds.end()) t.webSeeds.push_back(w);
  }
  if (auto m = store.getManifest(t.id)) t.manifest = std::move(*m);
  if (!t.manifest && !n.manifestFile.empty()) {  // given: no peer needs to send it (a web seed alone will do)
    auto text = readSmallFile(n.manifestFile, kMaxManifestJsonBytes);
    if (!text) return fail(text.error());
    auto m = manifestFromJson(*text);
    if (!m) return fail(m.error());
    auto id = manifestId(*m);
    if (!id) return fail(id.error());
    if (*id != t.id) return fail(Errc::kIntegrity, "--manifest", "the manifest in " + n.manifestFile.string() + " is not that of " + t.id.hex());
    t.manifest = std::move(*m);
  }
  return t;
}

Status applyWebSeeds(node::Node& node, const FetchTarget& t) {
  if (t.webSeeds.empty()) return {};
  return node.setOrigins(t.id, t.webSeeds);
}

// The store the node serves from. Only the test twin (p2pcdn-test, built
// with P2PCDN_FAULT_INJECTION; p2pcdn never is) can make it corrupt every
// chunk it reads (--fault-corrupt): a corrupting peer, for tests.
static ChunkStorage& servedStore(const NetArgs& n, ChunkStorage& store, std::unique_ptr<ChunkStorage>& holder) {
#ifdef P2PCDN_FAULT_INJECTION
  if (n.faultCorrupt) {
    holder = makeCorruptingReads(store);
    return *holder;
  }
#else
  (void)n;
  (void)holder;
#endif
  return store;
}

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
  auto tracker = pickTrackers(n, r.trackers);
  if (!tracker) return report(tracker.error());
  std::unique_ptr<ChunkStorage> corrupting;
  Net net(n);
  if (auto st = net.init(g, n, servedStore(n, **storeR, corrupting), *tracker); !st) return report(st.error());
  if (auto st = seedNow(net.io, *net.node, r.id); !st) return report(st.error());
  std::string link = formatLink(Link{r.id, *tracker, r.key, {}});
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
  auto p = net.node->progress(r.id);
  if (g.json) {
    json j{{"event", "done"}, {"fileId", r.id.hex()}, {"peerId", net.node->peerIdHex()}};
    addSwarmCounters(j, p);
    j["peers"] = peersJson(*net.node, r.id);
    std::cout << j.dump() << std::endl;
  }
  if (!g.quiet && p) {
    std::fprintf(stderr, "seeded %s: %llu bytes uploaded\n", r.id.hex().c_str(),
                 static_cast<unsigned long long>(p->bytesUploaded));
  }
  return kExitOk;
}

// Bytes this process had written to storage so far (/proc/self/io
// write_bytes, counted when pages are dirtied), -1 if unknown: `get -o`
// should write the file's bytes once.
long long ioWriteBytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  long long v = 0;
  while (io >> key >> v) {
    if (key == "write_bytes:") return v;
  }
  return -1;
}

int cmdGet(const Globals& g, const NetArgs& n) {
  auto launched = Clock::now();
  auto storeR = openStore(g);
  if (!storeR) return report(storeR.error());
  BlockingStorage store(**storeR);
  auto target = resolveFetch(g, n, store);
  if (!target) return report(target.error());
  const FileId id = target->id;
  const std::optional<EncryptionKey> key = target->key;
  std::optional<Manifest> manifest = std::move(target->manifest);
  std::uint32_t fromStore = 0;  // chunks held before the fetch (known now if the manifest is)

  std::unique_ptr<ChunkStorage> corrupting;
  Net net(n);
  if (auto st = net.init(g, n, servedStore(n, **storeR, corrupting), target->trackers); !st) return report(st.error());
  ProgressBar bar("fetching", !g.quiet);
  std::optional<Error> failure;
  std::optional<double> firstChunkAt, completeAt;
  bool done = false;
  asio::steady_timer ticker(net.io), seedTimer(net.io), lineTimer(net.io);
  std::function<void()> tick = [&] {
    if (auto p = net.node->progress(id)) {
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

  // --json: a progress line every 500 ms (also while seeding after
  // completion), until the node stops.
  auto progressLine = [&] {
    auto p = net.node->progress(id);
    if (!p) return;
    json j{{"event", "progress"},
           {"seconds", since()},
           {"chunksHave", p->chunksHave},
           {"chunksTotal", p->chunksTotal},
           {"have", bitfieldHex(*net.node, id, p->chunksTotal)},
           {"peers", p->peers},
           {"bytesDownloaded", p->bytesDownloaded},
           {"bytesUploaded", p->bytesUploaded},
           {"badChunks", p->swarm.badChunks},
           {"bans", p->swarm.bans}};
    std::cout << j.dump() << std::endl;
  };

  // The node posts these: they may stop it.
  node::FetchEvents ev;
  ev.onChunk = [&](ChunkIndex) {
    if (!firstChunkAt) firstChunkAt = since();
  };
  ev.onError = [&](const Error& e) {
    failure = e;
    net.stop();
  };
  // -o OUT: the store keeps the file's chunks in OUT.part at their offsets
  // (each byte written once), and at completion cuts, syncs and renames it to
  // OUT, then goes on seeding from OUT. An encrypted file's chunks are
  // ciphertext, so it stays in the store and is exported instead. Either runs
  // on a thread (the export with its own connection to the store: SQLite WAL
  // readers do not block the loop's), which then tells the loop.
  bool keptOut = false;
  if (!n.output.empty()) {
    std::filesystem::path part = n.output;
    part += ".part";
    keptOut = store.keepFileAt(id, part).has_value();
  }
  ChunkStorage* shared = storeR->get();
  std::thread exporter;
  std::optional<double> exportedAt;
  std::optional<Status> exportResult;  // written by the thread, read after join()
  bool exportPending = false;
  auto startExport = [&] {
    exportPending = true;
    exporter = std::thread([&g, &net, &n, id, key, &exportedAt, &exportPending, &failure, &since, &exportResult,
                            keptOut, shared] {
      Status st = [&]() -> Status {
        if (keptOut) {
          Status kept = BlockingStorage(*shared).finishKeptFile(id, n.output);
          if (kept || kept.error().code() != Errc::kUnsupported) return kept;
        }
        auto own = openStore(g);
        if (!own) return fail(own.error());
        BlockingStorage reader(**own);
        auto m = reader.getManifest(id);
        if (!m) return fail(m.error());
        return ChunkManager::exportFile(
            *m, [&](ChunkIndex i) { return reader.getChunk(id, i, ReadOptions{.verify = false}); }, n.output, key);
      }();
      exportResult = st;
      asio::post(net.io, [&, st = std::move(st)] {
        exportPending = false;
        if (!st) {
          failure = st.error();
          net.stop();
          return;
        }
        exportedAt = since();
        if (g.json) std::cout << json{{"event", "exported"}, {"seconds", *exportedAt}, {"path", n.output.string()}}.dump() << std::endl;
        if (!n.seedAfter) net.stop();
      });
    });
  };
  ev.onComplete = [&] {
    done = true;
    completeAt = since();
    ticker.cancel();
    if (auto p = net.node->progress(id)) bar.update(p->bytesTotal, p->bytesTotal);
    bar.finish();
    if (!n.output.empty()) startExport();
    if (n.seedAfter) {
      if (*n.seedAfter > 0) {
        seedTimer.expires_after(std::chrono::milliseconds(static_cast<long>(*n.seedAfter * 1000)));
        seedTimer.async_wait([&](auto e) {
          if (!e) net.stop();
        });
      }
    } else {
      if (g.json) progressLine();  // the last one: every chunk
      if (!exportPending) net.stop();  // else once the file is written
    }
  };
  if (auto st = fetchNow(net.io, *net.node, id, manifest, ev); !st) return report(st.error());
  if (auto st = applyWebSeeds(*net.node, *target); !st) return report(st.error());
  if (auto p = net.node->progress(id); p && manifest) fromStore = p->chunksHave;
  tick();
  if (g.json) every(net, lineTimer, kProgressLinePeriod, progressLine);
  net.io.run();
  if (exporter.joinable()) exporter.join();  // interrupted while writing: the file is complete or absent
  // The loop may have stopped (seed time over, Ctrl-C) before the export's
  // completion ran: the thread's own result says how it ended.
  if (exportResult && !*exportResult && !failure) failure = exportResult->error();
  if (exportResult && *exportResult && !exportedAt) exportedAt = since();
  bar.finish();
  if (failure) return report(*failure);
  if (!completeAt) return report(Error(Errc::kCancelled, "get", "interrupted before the download completed"));
  if (!n.output.empty() && !exportedAt) return report(Error(Errc::kCancelled, "get", "interrupted before " + n.output.string() + " was written"));

  auto m = store.getManifest(id);
  if (!m) return report(m.error());
  auto p = net.node->progress(id);
  if (g.json) {
    json j{{"event", "done"},
           {"fileId", id.hex()},
           {"peerId", net.node->peerIdHex()},
           {"size", m->size},
           {"chunks", m->chunkCount()},
           {"chunksFromStore", fromStore},
           {"chunksFetched", p ? p->chunksFetched : 0},
           {"bytesDownloaded", p ? p->bytesDownloaded : 0},
           {"firstChunkSeconds", firstChunkAt ? *firstChunkAt : -1.0},
           {"completeSeconds", *completeAt},
           {"totalSeconds", since()},
           {"ioWriteBytes", ioWriteBytes()}};
    addSwarmCounters(j, p);
    j["peers"] = peersJson(*net.node, id);
    std::cout << j.dump() << std::endl;
  } else if (!g.quiet) {
    const std::uint32_t fetched = p ? p->chunksFetched : 0, fromOrigin = std::min(fetched, p ? p->swarm.originChunks : 0u);
    std::fprintf(stderr, "fetched %s (%u chunks from peers, %u from web seeds, %u already stored) in %.2f s\n",
                 m->name.c_str(), fetched - fromOrigin, fromOrigin, fromStore, *completeAt);
  }
  return kExitOk;
}

}  // namespace p2pcdn::cli
