// One peer of the swarm in a page: a node::Node on the BrowserRuntime, with
// JsLinkFactory links and a store. What it hears goes to the page as JSON
// events through p2p_js_peer_event (web/src/peer.js turns them into promises
// and callbacks):
//   {"req":R,"listener":L} / {"req":R}         a request R completed
//   {"req":R,"error":{"code","message"}}        a request R failed
//   {"listener":L,"event":"manifest","manifest":{...}} | "chunk","index":i
//                 | "complete" | "error","error":{...}
// and chunk bytes read for request R through p2p_js_peer_data.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>
#include <string>

#include "browser/link.hpp"
#include "node/node.hpp"
#include "p2pcdn/chunk_storage.hpp"

namespace p2pcdn::browser {

class BrowserPeer {
 public:
  // options: {"trackerUrl", "iceServers":[url...], "maxConcurrentDownloads",
  // "maxConcurrentUploads", "discoveryInterval" (ms), "storageQuota" (bytes)}.
  // The store lives in the wasm heap (at most 512 MiB): its quota is capped
  // at kMaxMemoryQuota, so a full store fails a write instead of aborting.
  static constexpr std::uint64_t kMaxMemoryQuota = std::uint64_t{256} << 20;
  static Result<std::unique_ptr<BrowserPeer>> create(int handle, std::string_view options);
  ~BrowserPeer();

  std::string peerIdHex() const { return node_->peerIdHex(); }
  void fetch(double req, const FileId& id, std::optional<Manifest> manifest);
  void seed(double req, const FileId& id);
  void read(double req, const FileId& id, ChunkIndex index);
  void unlisten(node::ListenerId id) { node_->unlisten(id); }
  // Leaves the file's swarm and frees its bytes (the store is in the wasm heap).
  void remove(const FileId& id);
  void setStreaming(const FileId& id, bool on, ChunkIndex cursor, std::size_t lookahead) {
    node_->setStreaming(id, on, cursor, lookahead);
  }
  void announceNow() { node_->announceNow(); }
  std::string progressJson(const FileId& id) const;
  std::string statsJson() const;
  void stop(double req);

 private:
  BrowserPeer(int handle, std::unique_ptr<ChunkStorage> store, node::NodeOptions options);
  void emit(const nlohmann::json& event) const;
  void emitDone(double req, const Status& st) const;

  const int h_;
  std::unique_ptr<ChunkStorage> store_;
  JsLinkFactory links_;
  std::unique_ptr<node::Node> node_;
  // Completions posted outside the node (store reads) check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace p2pcdn::browser
