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
#include "browser/storage.hpp"
#include "node/node.hpp"
#include "p2pcdn/chunk_storage.hpp"

namespace p2pcdn::browser {

class BrowserPeer {
 public:
  // options: {"trackerUrl", "iceServers":[url...], "maxConcurrentDownloads",
  // "maxConcurrentUploads", "discoveryInterval" (ms), "storageQuota" (bytes,
  // default 10 GB)}. The store is the page's backend under this handle
  // (JsChunkStorage); `index` is what it held at open (storage.hpp: load).
  static Result<std::unique_ptr<BrowserPeer>> create(int handle, std::string_view options, std::string_view index);
  ~BrowserPeer();

  std::string peerIdHex() const { return node_->peerIdHex(); }
  void fetch(double req, const FileId& id, std::optional<Manifest> manifest);
  void seed(double req, const FileId& id);
  void read(double req, const FileId& id, ChunkIndex index);
  // An upload, in two passes (the page hashed every chunk first): the
  // manifest is stored pinned ({"req":R,"fileId":hex,"existed":bool,"wasPinned":bool}), then each chunk is
  // stored verified against it (put), then seed() serves it.
  void publish(double req, const Manifest& manifest);
  void put(double req, const FileId& id, ChunkIndex index, ByteView data);
  void unlisten(node::ListenerId id) { node_->unlisten(id); }
  // Leaves the file's swarm and deletes it from the store.
  void remove(const FileId& id);
  // Pins the stored file (never evicted) or unpins it.
  void pin(const FileId& id, bool pinned);
  // Leaves the file's swarm; the store keeps it (evictable unless pinned).
  void release(const FileId& id);
  void setStreaming(const FileId& id, bool on, ChunkIndex cursor, std::size_t lookahead) {
    node_->setStreaming(id, on, cursor, lookahead);
  }
  Status setOrigins(const FileId& id, std::vector<std::string> urls) { return node_->setOrigins(id, std::move(urls)); }
  void announceNow() { node_->announceNow(); }
  // PeerMesh (node::Node::wish, peerHas).
  Status wish(const FileId& id, const std::string& peerIdHex, ChunkIndex index) {
    return node_->wish(id, peerIdHex, index);
  }
  Status offer(const FileId& id, const std::string& peerIdHex, ChunkIndex index) {
    return node_->offer(id, peerIdHex, index);
  }
  bool peerHas(const FileId& id, const std::string& peerIdHex, ChunkIndex index) const {
    return node_->peerHas(id, peerIdHex, index);
  }
  std::string progressJson(const FileId& id) const;
  std::string statsJson() const;
  std::string storageJson() const;  // usage and the files held
  void stop(double req);

 private:
  BrowserPeer(int handle, std::unique_ptr<JsChunkStorage> store, node::NodeOptions options);
  void emit(const nlohmann::json& event) const;
  void emitDone(double req, const Status& st) const;
  // emitDone on a later turn, unless the peer is gone by then.
  void emitDoneLater(double req, Status st);

  const int h_;
  std::unique_ptr<JsChunkStorage> store_;
  JsLinkFactory links_;
  std::unique_ptr<node::Node> node_;
  // Completions posted outside the node (store reads) check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace p2pcdn::browser
