#include "browser/peer.hpp"

#include "browser/abi.hpp"
#include "browser/identity.hpp"
#include "browser/js.hpp"
#include "core/hex.hpp"

namespace p2pcdn::browser {

using nlohmann::json;

namespace {

// An integer option in [min, max], or `fallback` when absent.
Result<std::uint64_t> count(const json& j, const char* key, std::uint64_t fallback, std::uint64_t min,
                            std::uint64_t max) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const auto& v = j[key];
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() < min || v.get<std::uint64_t>() > max) {
    return fail(Errc::kInvalidArgument, "options",
                std::string(key) + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return v.get<std::uint64_t>();
}

json peerJson(const node::NodePeerStats& p) {
  json j{{"fileId", p.fileId.hex()},
         {"peerId", p.peerId},
         {"client", p.client},
         {"seeder", p.swarm.seeder},
         {"chunksAvailable", p.swarm.chunksAvailable},
         {"bytesUp", p.swarm.bytesUp},
         {"bytesDown", p.swarm.bytesDown},
         {"upRate", p.swarm.upRate},
         {"downRate", p.swarm.downRate},
         {"chunksServed", p.swarm.chunksServed},
         {"chunksReceived", p.swarm.chunksReceived},
         {"badChunks", p.swarm.badChunks},
         {"requestsOutstanding", p.swarm.requestsOutstanding},
         {"unchoked", p.swarm.unchoked}};
  if (p.rttSeconds) j["rttSeconds"] = *p.rttSeconds;
  if (!p.localCandidateType.empty()) j["localCandidateType"] = p.localCandidateType;
  if (!p.remoteCandidateType.empty()) j["remoteCandidateType"] = p.remoteCandidateType;
  return j;
}

}  // namespace

Result<std::unique_ptr<BrowserPeer>> BrowserPeer::create(int handle, std::string_view options,
                                                         std::string_view index) {
  auto j = json::parse(options, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(Errc::kMalformed, "options", "not a JSON object");
  node::NodeOptions no;
  no.client = 'B';
  if (!j.contains("trackerUrl") || !j["trackerUrl"].is_string()) {
    return fail(Errc::kInvalidArgument, "options", "no trackerUrl (ws://host:port)");
  }
  no.trackerUrl = j["trackerUrl"].get<std::string>();
  // The public half of the page's WebCrypto key (web/src/identity.js).
  wire::PublicKey key{};
  if (!j.contains("identityKey") || !j["identityKey"].is_string() ||
      !fromHex(j["identityKey"].get<std::string>(), key)) {
    return fail(Errc::kInvalidArgument, "options", "identityKey must be an Ed25519 public key (64 hex digits)");
  }
  no.identity = std::make_shared<JsIdentity>(handle, key);
  // A page without RTCPeerConnection: no peer will come, so web seeds need not wait for one.
  if (j.contains("webrtc") && j["webrtc"].is_boolean() && !j["webrtc"].get<bool>()) {
    no.swarm.origin.grace = swarm::Time{};
    no.swarm.origin.idleBefore = swarm::Time{};
  }
  if (j.contains("iceServers")) {
    if (!j["iceServers"].is_array()) return fail(Errc::kInvalidArgument, "options", "iceServers must be an array");
    for (const auto& s : j["iceServers"]) {
      if (!s.is_string()) return fail(Errc::kInvalidArgument, "options", "an ICE server is a URL string");
      no.link.iceServers.push_back(s.get<std::string>());
    }
  }
  // TURN: one user name and password for the turn: servers; "relay" policy.
  if (j.contains("iceUsername") && j["iceUsername"].is_string()) no.link.iceUsername = j["iceUsername"].get<std::string>();
  if (j.contains("icePassword") && j["icePassword"].is_string()) no.link.icePassword = j["icePassword"].get<std::string>();
  if (j.contains("iceTransportPolicy") && j["iceTransportPolicy"] == "relay") no.link.relayOnly = true;
  auto downloads = count(j, "maxConcurrentDownloads", no.swarm.maxConcurrentDownloads, 1, 1000);
  auto uploads = count(j, "maxConcurrentUploads", no.swarm.maxConcurrentUploads, 1, 1000);
  auto interval = count(j, "discoveryInterval", 30000, 1000, 24 * 3600 * 1000);
  auto quota = count(j, "storageQuota", kDefaultQuotaBytes, 1, std::uint64_t{1} << 50);
  for (const auto* r : {&downloads, &uploads, &interval, &quota}) {
    if (!*r) return fail(r->error());
  }
  no.swarm.maxConcurrentDownloads = static_cast<std::size_t>(*downloads);
  no.swarm.maxConcurrentUploads = static_cast<std::size_t>(*uploads);
  no.discovery.announceInterval = std::chrono::milliseconds(*interval);
  auto store = std::make_unique<JsChunkStorage>(BrowserRuntime::get(), handle, *quota);
  if (auto st = store->load(index); !st) return fail(st.error());
  auto peer = std::unique_ptr<BrowserPeer>(new BrowserPeer(handle, std::move(store), std::move(no)));
  if (auto st = peer->node_->start(); !st) return fail(st.error());
  return peer;
}

BrowserPeer::BrowserPeer(int handle, std::unique_ptr<JsChunkStorage> store, node::NodeOptions options)
    : h_(handle), store_(std::move(store)), links_(BrowserRuntime::get()) {
  node_ = std::make_unique<node::Node>(BrowserRuntime::get(), *store_, links_, std::move(options));
}

BrowserPeer::~BrowserPeer() = default;

void BrowserPeer::emit(const json& event) const {
  const std::string text = abi::dump(event);
  p2p_js_peer_event(h_, text.data(), text.size());
}

void BrowserPeer::emitDone(double req, const Status& st) const {
  if (st) return emit({{"req", req}});
  emit({{"req", req}, {"error", abi::errorJson(st.error())}});
}

void BrowserPeer::fetch(double req, const FileId& id, std::optional<Manifest> manifest) {
  // The listener's events carry its id, which is known only when the fetch
  // has begun: they are posted, so none comes before `done`.
  auto listener = std::make_shared<node::ListenerId>(0);
  node::FetchEvents ev;
  ev.onManifest = [this, listener](const Manifest& m) {
    auto text = manifestToJson(m);
    if (!text) return;
    emit({{"listener", *listener}, {"event", "manifest"}, {"manifest", json::parse(*text, nullptr, false)}});
  };
  ev.onChunk = [this, listener, id](ChunkIndex i) {
    emit({{"listener", *listener}, {"event", "chunk"}, {"index", i}, {"from", node_->chunkSource(id, i)}});
  };
  ev.onComplete = [this, listener, id] {
    // Complete: no longer pinned (it may be evicted once the node lets it go).
    store_->setPinned(id, false, [](Status) {});
    emit({{"listener", *listener}, {"event", "complete"}});
  };
  ev.onError = [this, listener](const Error& e) {
    emit({{"listener", *listener}, {"event", "error"}, {"error", abi::errorJson(e)}});
  };
  store_->setInUse(id, true);
  node_->fetch(id, std::move(manifest), std::move(ev), [this, req, listener](Result<node::ListenerId> r) {
    if (!r) return emit({{"req", req}, {"error", abi::errorJson(r.error())}});
    *listener = *r;
    emit({{"req", req}, {"listener", *r}});
  });
}

void BrowserPeer::seed(double req, const FileId& id) {
  store_->setInUse(id, true);
  node_->seed(id, [this, req](Status st) { emitDone(req, st); });
}

void BrowserPeer::emitDoneLater(double req, Status st) {
  BrowserRuntime::get().post([this, req, alive = std::weak_ptr<bool>(alive_), st = std::move(st)] {
    if (!alive.expired()) emitDone(req, st);
  });
}

void BrowserPeer::publish(double req, const Manifest& manifest) {
  auto id = manifestId(manifest);
  // "existed": the store held the file already (a failed upload must leave it be).
  const bool existed = id && store_->holds(*id);
  const bool wasPinned = id && store_->pinned(*id);
  store_->storeManifest(manifest, true,
                        [this, req, existed, wasPinned, alive = std::weak_ptr<bool>(alive_)](Result<FileId> r) {
    BrowserRuntime::get().post([this, req, existed, wasPinned, alive, r = std::move(r)] {
      if (alive.expired()) return;
      if (!r) return emitDone(req, fail(r.error()));
      store_->setInUse(*r, true);  // pinned too; the node seeds it next
      emit({{"req", req}, {"fileId", r->hex()}, {"existed", existed}, {"wasPinned", wasPinned}});
    });
  });
}

void BrowserPeer::put(double req, const FileId& id, ChunkIndex index, ByteView data) {
  store_->storeChunk(id, index, data,
                     [this, req, alive = std::weak_ptr<bool>(alive_)](Status st) {
                       if (!alive.expired()) emitDoneLater(req, std::move(st));
                     });
}

void BrowserPeer::remove(const FileId& id) {
  node_->forget(id);
  store_->setInUse(id, false);
  store_->deleteFile(id, [](Result<void>) {});  // a file the store never held is fine
}

void BrowserPeer::pin(const FileId& id, bool pinned) {
  store_->setPinned(id, pinned, [](Status) {});  // a file the store does not hold is fine
}

void BrowserPeer::release(const FileId& id) {
  node_->forget(id);
  store_->setInUse(id, false);
}

void BrowserPeer::read(double req, const FileId& id, ChunkIndex index) {
  // The store completes later or inline; the page hears it on a later turn either way.
  store_->getChunk(id, index, ReadOptions{true}, [this, req, alive = std::weak_ptr<bool>(alive_)](Result<Bytes> r) {
    BrowserRuntime::get().post([this, req, alive, r = std::move(r)] {
      if (alive.expired()) return;
      if (!r) return emit({{"req", req}, {"error", abi::errorJson(r.error())}});
      p2p_js_peer_data(h_, req, r->data(), r->size());
    });
  });
}

std::string BrowserPeer::progressJson(const FileId& id) const {
  auto p = node_->progress(id);
  if (!p) return "null";
  return abi::dump({{"fileId", p->fileId.hex()},
                    {"haveManifest", p->haveManifest},
                    {"bytesTotal", p->bytesTotal},
                    {"bytesVerified", p->bytesVerified},
                    {"chunksTotal", p->chunksTotal},
                    {"chunksHave", p->chunksHave},
                    {"chunksFetched", p->chunksFetched},
                    {"peers", p->peers},
                    {"bytesUploaded", p->bytesUploaded},
                    {"bytesDownloaded", p->bytesDownloaded},
                    {"badChunks", p->swarm.badChunks},
                    {"wasted", p->swarm.wasted},
                    {"originBytes", p->swarm.originBytes},
                    {"originChunks", p->swarm.originChunks},
                    {"originFailures", p->swarm.originFailures}});
}

std::string BrowserPeer::statsJson() const {
  json peers = json::array();
  for (const auto& p : node_->peerStats()) peers.push_back(peerJson(p));
  json closed = json::array();
  for (const auto& p : node_->closedLinks()) closed.push_back(peerJson(p));
  return abi::dump({{"peerId", node_->peerIdHex()},
                    {"peers", std::move(peers)},
                    {"closedLinks", std::move(closed)},
                    {"peerConnectionsCreated", links_.created()},
                    {"peerConnectionsLive", links_.live()}});
}

std::string BrowserPeer::storageJson() const {
  json files = json::array();
  store_->listFiles([&files](Result<std::vector<StoredFile>> r) {  // the index answers inline
    if (!r) return;
    for (const auto& f : *r) {
      files.push_back({{"fileId", f.fileId.hex()},
                       {"name", f.manifest.name},
                       {"size", f.manifest.size},
                       {"mimeType", f.manifest.mimeType},
                       {"chunksTotal", f.manifest.chunkCount()},
                       {"chunksStored", f.chunksPresent},
                       {"bytesStored", f.bytesStored},
                       {"encrypted", f.manifest.encryption.has_value()},
                       {"pinned", f.pinned},
                       {"complete", f.complete()}});
    }
  });
  json usage;
  store_->usage([&usage](Result<StorageUsage> u) {
    if (u) usage = {{"bytesUsed", u->bytesUsed}, {"quotaBytes", u->quotaBytes}, {"chunks", u->chunks},
                    {"files", u->files}, {"evictedChunks", u->evictedChunks}};
  });
  return abi::dump({{"files", std::move(files)}, {"usage", std::move(usage)}, {"skippedAtLoad", store_->skippedAtLoad()}});
}

void BrowserPeer::stop(double req) {
  node_->stop([this, req, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) emitDone(req, {});
  });
}

}  // namespace p2pcdn::browser
