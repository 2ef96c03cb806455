// ChunkStorage: where verified chunks and manifests live (the seed's interface).
//
// Every operation reports through a completion so that asynchronous backends
// (IndexedDB in the browser, a worker thread natively) fit the same interface.
// The backends here (memory, SQLite) complete inline, before the call returns;
// callers must not rely on either order. They may be called from any thread
// (one lock per store): the node reads and writes chunks on a worker thread of
// its own while other callers use the same store. A store given to the node
// must allow that, and may complete on any thread.
//
// Invariants every backend keeps:
//  - storeChunk accepts only bytes that match the stored manifest's length and
//    BLAKE3 hash for that index; a bad chunk is never stored.
//  - getChunk with verify=true re-hashes and reports Errc::kIntegrity instead
//    of returning bytes that do not match the manifest.
//  - When the quota would be exceeded, least-recently-used chunks of unpinned
//    files are evicted; pinned files (being downloaded or published) never are.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "p2pcdn/manifest.hpp"
#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn {

inline constexpr std::uint64_t kDefaultQuotaBytes = 10'000'000'000ULL;  // 10 GB

struct StoredFile {
  FileId fileId;
  Manifest manifest;
  std::uint32_t chunksPresent = 0;
  std::uint64_t bytesStored = 0;
  bool pinned = false;
  bool complete() const { return chunksPresent == manifest.chunkCount(); }
};

struct StorageUsage {
  std::uint64_t bytesUsed = 0;   // chunk bytes held
  std::uint64_t quotaBytes = 0;
  std::uint64_t chunks = 0;
  std::uint64_t files = 0;
  std::uint64_t evictedChunks = 0;  // since open
};

using ImportId = std::uint64_t;

// A file's size and modification time (ns since the epoch): how a file kept
// outside the store is recognised as unchanged.
struct FileStamp {
  std::uint64_t size = 0;
  std::int64_t mtimeNs = 0;
  bool operator==(const FileStamp&) const = default;
};

struct ReadOptions {
  bool verify = true;  // re-hash against the manifest before returning
};

class ChunkStorage {
 public:
  template <class T>
  using Callback = std::function<void(Result<T>)>;

  virtual ~ChunkStorage() = default;

  // Validates and stores a manifest; completes with its file id. Idempotent.
  virtual void storeManifest(const Manifest& manifest, bool pinned, Callback<FileId> done) = 0;
  virtual void getManifest(const FileId& id, Callback<Manifest> done) = 0;
  virtual void storeChunk(const FileId& id, ChunkIndex index, ByteView data, Callback<void> done) = 0;
  virtual void getChunk(const FileId& id, ChunkIndex index, ReadOptions options, Callback<Bytes> done) = 0;
  virtual void deleteChunk(const FileId& id, ChunkIndex index, Callback<void> done) = 0;
  // Removes a file's manifest and every chunk of it.
  virtual void deleteFile(const FileId& id, Callback<void> done) = 0;
  virtual void setPinned(const FileId& id, bool pinned, Callback<void> done) = 0;
  virtual void listFiles(Callback<std::vector<StoredFile>> done) = 0;
  // Which chunks of the file are held (size = chunk count).
  virtual void presentChunks(const FileId& id, Callback<std::vector<bool>> done) = 0;
  virtual void usage(Callback<StorageUsage> done) = 0;

  // Imports: publishing a file whose id is not known until every chunk has
  // been hashed, in one pass. Chunks are staged under an ImportId and appear
  // under the file id only when commitImport succeeds, which checks that every
  // chunk is staged and matches the manifest's hash. Staged chunks of an import
  // that is aborted, or never committed before a crash, are dropped.
  virtual void beginImport(Callback<ImportId> done) = 0;
  virtual void importChunk(ImportId import, ChunkIndex index, ByteView data, Callback<void> done) = 0;
  virtual void commitImport(ImportId import, const Manifest& manifest, bool pinned, Callback<FileId> done) = 0;
  virtual void abortImport(ImportId import, Callback<void> done) = 0;

  // Files kept outside the store (a download written straight into its
  // output). keepFileAt: from now on this file's chunk bytes live in `path`,
  // chunk i at i x chunk size, so that once every chunk is present `path` is
  // the file; chunks already stored are moved there. Only for plaintext
  // files (an encrypted file's stored chunks are ciphertext): for one the
  // placement is refused (kUnsupported), or, when asked before its manifest
  // is stored, dropped when the manifest comes. The store never deletes or
  // punches `path`; deleting the file from the store leaves it. finishKeptFile:
  // the file is complete; `path` is cut to the file's size, synced (under the
  // store's durability) and renamed to `to`, where the store goes on reading
  // it. A kept file that vanished is found at open: its chunks count as
  // missing. The default: kUnsupported (memory, browser).
  virtual void keepFileAt(const FileId& id, const std::filesystem::path& path, Callback<void> done);
  virtual void finishKeptFile(const FileId& id, const std::filesystem::path& to, Callback<void> done);
  // Seeding in place: records the file at `path` as the stored copy of
  // `manifest`, which the caller has just computed from it, with `stamp`
  // taken before it read the file. It becomes a kept file with every chunk
  // present; nothing is read or copied (reads are verified, as always). A
  // copy the store already held is dropped. Refused if the file is not a
  // regular file or its stamp changed (kInvalidArgument), and for an
  // encrypted manifest (kUnsupported). A kept file whose stamp changes later
  // counts as missing at the next open.
  virtual void adoptFile(const Manifest& manifest, const std::filesystem::path& path, FileStamp stamp, bool pinned,
                         Callback<FileId> done);
};

// The stamp of the file at `path`, or an error if it is not a regular file.
Result<FileStamp> stampOf(const std::filesystem::path& path);

// What a persistent store survives without losing its consistency.
enum class Durability {
  // Process crashes and power loss (SQLite WAL, synchronous=NORMAL: fsync at
  // every checkpoint). The last transactions may roll back after power loss.
  kPowerLoss,
  // Process crashes only (synchronous=OFF: no fsync). A power loss or kernel
  // crash may corrupt the store. About 1.7x faster bulk writes on this machine.
  kProcessCrash,
};

struct StorageOptions {
  std::uint64_t quotaBytes = kDefaultQuotaBytes;
  Durability durability = Durability::kPowerLoss;
};

std::unique_ptr<ChunkStorage> makeMemoryStorage(StorageOptions options = {});

// Native persistent store: one SQLite database file in WAL mode. A chunk is
// visible only once its transaction committed; after a crash the store holds
// only complete chunks.
Result<std::unique_ptr<ChunkStorage>> openSqliteStorage(const std::filesystem::path& file,
                                                        StorageOptions options = {});

// Blocking conveniences for tools and tests. They require a backend that
// completes inline or on a thread of its own (never one that posts the
// completion to the calling thread's event loop).
class BlockingStorage {
 public:
  explicit BlockingStorage(ChunkStorage& s) : s_(s) {}
  Result<FileId> storeManifest(const Manifest& m, bool pinned = false);
  Result<Manifest> getManifest(const FileId& id);
  Status storeChunk(const FileId& id, ChunkIndex index, ByteView data);
  Result<Bytes> getChunk(const FileId& id, ChunkIndex index, ReadOptions options = {});
  Status deleteChunk(const FileId& id, ChunkIndex index);
  Status deleteFile(const FileId& id);
  Status setPinned(const FileId& id, bool pinned);
  Result<std::vector<StoredFile>> listFiles();
  Result<std::vector<bool>> presentChunks(const FileId& id);
  Result<StorageUsage> usage();
  Result<ImportId> beginImport();
  Status importChunk(ImportId import, ChunkIndex index, ByteView data);
  Result<FileId> commitImport(ImportId import, const Manifest& m, bool pinned = false);
  Status abortImport(ImportId import);
  Status keepFileAt(const FileId& id, const std::filesystem::path& path);
  Status finishKeptFile(const FileId& id, const std::filesystem::path& to);
  Result<FileId> adoptFile(const Manifest& m, const std::filesystem::path& path, FileStamp stamp, bool pinned = false);

 private:
  ChunkStorage& s_;
};

}  // namespace p2pcdn
