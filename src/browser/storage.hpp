// JsChunkStorage: the node's ChunkStorage over a JavaScript backend
// (web/src/storage.js: IndexedDBStorage, MemoryStorage, or the page's own
// object with the seed's ChunkStorage methods). The store's invariants and
// policy stay here, in C++, over an index of what the backend holds:
//  - a manifest is validated (its id computed) before it is stored;
//  - a chunk is verified against the manifest before it is written, and
//    re-hashed on a verified read (a chunk that fails is deleted, so it is
//    fetched again);
//  - the quota counts chunk bytes held and being written; to make room, whole
//    files are evicted, least recently used first, never a pinned one nor one
//    the node is using (setInUse);
//  - the backend's QuotaExceededError (code quota-exceeded) evicts once more
//    and retries the write once, then fails it with kQuotaExceeded: the store
//    never falls back to memory.
// The backend does the raw work: one request per operation through
// p2p_js_store (op JSON + bytes), answered by p2p_store_done, with a read's
// bytes copied once into room from p2p_store_inbox. Loop only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "browser/runtime.hpp"
#include "p2pcdn/chunk_storage.hpp"

namespace p2pcdn::browser {

class JsChunkStorage final : public ChunkStorage {
 public:
  // Requests in flight at most (a request past it fails with kBackPressure).
  static constexpr std::size_t kMaxPending = 4096;
  // A request the backend has not answered by then fails with kTimedOut (a
  // wedged database must not hold a download or an upload forever).
  static constexpr std::chrono::seconds kRequestDeadline{30};

  // handle: the peer's; the page keeps the backend under it.
  JsChunkStorage(BrowserRuntime& rt, int handle, std::uint64_t quotaBytes);
  ~JsChunkStorage() override;

  // The backend's contents read at open (web/src/storage.js listFiles()):
  // [{"fileId":hex, "manifest":{...}, "pinned":bool, "lastUsed":ms,
  //   "chunks":[index...]}]. A record that does not validate is skipped (and
  // counted): an old or damaged database must not stop the peer.
  Status load(std::string_view indexJson);
  std::size_t skippedAtLoad() const { return skipped_; }
  bool holds(const FileId& id) const { return files_.count(id) != 0; }
  bool pinned(const FileId& id) const {
    auto it = files_.find(id);
    return it != files_.end() && it->second.pinned;
  }
  // The node holds the file (fetching or seeding): it is not evicted.
  void setInUse(const FileId& id, bool inUse);

  void storeManifest(const Manifest& manifest, bool pinned, Callback<FileId> done) override;
  void getManifest(const FileId& id, Callback<Manifest> done) override;
  void storeChunk(const FileId& id, ChunkIndex index, ByteView data, Callback<void> done) override;
  void getChunk(const FileId& id, ChunkIndex index, ReadOptions options, Callback<Bytes> done) override;
  void deleteChunk(const FileId& id, ChunkIndex index, Callback<void> done) override;
  void deleteFile(const FileId& id, Callback<void> done) override;
  void setPinned(const FileId& id, bool pinned, Callback<void> done) override;
  void listFiles(Callback<std::vector<StoredFile>> done) override;
  void presentChunks(const FileId& id, Callback<std::vector<bool>> done) override;
  void usage(Callback<StorageUsage> done) override;
  // The browser has no staging area: upload() makes two passes instead.
  void beginImport(Callback<ImportId> done) override;
  void importChunk(ImportId import, ChunkIndex index, ByteView data, Callback<void> done) override;
  void commitImport(ImportId import, const Manifest& manifest, bool pinned, Callback<FileId> done) override;
  void abortImport(ImportId import, Callback<void> done) override;

  // From JavaScript: room for a read's n bytes (nullptr: no such request or
  // too large), and a request's end (code: an Errc, 0 for success).
  std::uint8_t* inbox(double req, std::size_t n);
  void finish(double req, int code, std::string message);

 private:
  struct File {
    Manifest manifest;
    std::vector<bool> have;
    std::set<ChunkIndex> writing;  // puts in flight
    std::uint32_t chunks = 0;
    std::uint64_t bytes = 0;
    bool pinned = false;
    double lastUsed = 0;  // ms since the epoch
    std::uint64_t gen = 0;  // tells a file deleted and stored anew from its old self
  };
  struct Pending {
    std::function<void(Result<Bytes>)> done;  // a read's bytes, or empty
    Bytes inbox;
    swarm::Time started{};
  };

  File* find(const FileId& id);
  void touch(const FileId& id, File& f);
  // Starts backend request `op` (JSON) with `data`; `done` hears its end on a later turn.
  void request(std::string op, ByteView data, std::function<void(Result<Bytes>)> done);
  // Fails the requests older than kRequestDeadline; re-arms while any is pending.
  void sweep();
  void armSweep();
  void putRecord(const FileId& id, const File& f, std::function<void(Status)> done);
  void write(const FileId& id, ChunkIndex index, Bytes data, bool retried, Callback<void> done);
  // Evicts whole files (LRU, unpinned, unused, not `keep`) until `bytes` fit; false if they cannot.
  bool makeRoom(std::uint64_t bytes, const FileId& keep);
  bool evictOne(const FileId& keep);
  // Evicts until some bytes are freed (not only files that held none); false if none can be.
  bool freeSome(const FileId& keep);
  void forgetFile(const FileId& id);
  void dropChunk(File& f, ChunkIndex index);  // no longer held

  BrowserRuntime& rt_;
  const int h_;
  const std::uint64_t quota_;
  std::map<FileId, File> files_;
  std::map<double, Pending> pending_;
  std::set<FileId> inUse_;  // also files not stored yet
  double nextReq_ = 1;
  bool sweeping_ = false;  // a sweep() is armed
  std::uint64_t used_ = 0;     // bytes of chunks held
  std::uint64_t writing_ = 0;  // bytes of puts in flight
  std::uint64_t evicted_ = 0;  // chunks, since open
  std::uint64_t freed_ = 0;  // bytes evicted, since open
  std::uint64_t nextGen_ = 1;
  std::size_t skipped_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Stores by peer handle (p2p_store_* find theirs, or nothing).
std::map<int, JsChunkStorage*>& liveStores();

}  // namespace p2pcdn::browser
