#include "storage/locked.hpp"

#include <mutex>

namespace p2pcdn::storage {
namespace {

class LockedStorage final : public ChunkStorage {
 public:
  explicit LockedStorage(std::unique_ptr<ChunkStorage> inner) : inner_(std::move(inner)) {}

  void storeManifest(const Manifest& m, bool pinned, Callback<FileId> done) override {
    Lock l(mu_);
    inner_->storeManifest(m, pinned, std::move(done));
  }
  void getManifest(const FileId& id, Callback<Manifest> done) override {
    Lock l(mu_);
    inner_->getManifest(id, std::move(done));
  }
  void storeChunk(const FileId& id, ChunkIndex index, ByteView data, Callback<void> done) override {
    Lock l(mu_);
    inner_->storeChunk(id, index, data, std::move(done));
  }
  void getChunk(const FileId& id, ChunkIndex index, ReadOptions options, Callback<Bytes> done) override {
    Lock l(mu_);
    inner_->getChunk(id, index, options, std::move(done));
  }
  void deleteChunk(const FileId& id, ChunkIndex index, Callback<void> done) override {
    Lock l(mu_);
    inner_->deleteChunk(id, index, std::move(done));
  }
  void deleteFile(const FileId& id, Callback<void> done) override {
    Lock l(mu_);
    inner_->deleteFile(id, std::move(done));
  }
  void setPinned(const FileId& id, bool pinned, Callback<void> done) override {
    Lock l(mu_);
    inner_->setPinned(id, pinned, std::move(done));
  }
  void listFiles(Callback<std::vector<StoredFile>> done) override {
    Lock l(mu_);
    inner_->listFiles(std::move(done));
  }
  void presentChunks(const FileId& id, Callback<std::vector<bool>> done) override {
    Lock l(mu_);
    inner_->presentChunks(id, std::move(done));
  }
  void usage(Callback<StorageUsage> done) override {
    Lock l(mu_);
    inner_->usage(std::move(done));
  }
  void beginImport(Callback<ImportId> done) override {
    Lock l(mu_);
    inner_->beginImport(std::move(done));
  }
  void importChunk(ImportId import, ChunkIndex index, ByteView data, Callback<void> done) override {
    Lock l(mu_);
    inner_->importChunk(import, index, data, std::move(done));
  }
  void commitImport(ImportId import, const Manifest& m, bool pinned, Callback<FileId> done) override {
    Lock l(mu_);
    inner_->commitImport(import, m, pinned, std::move(done));
  }
  void abortImport(ImportId import, Callback<void> done) override {
    Lock l(mu_);
    inner_->abortImport(import, std::move(done));
  }
  void keepFileAt(const FileId& id, const std::filesystem::path& path, Callback<void> done) override {
    Lock l(mu_);
    inner_->keepFileAt(id, path, std::move(done));
  }
  void finishKeptFile(const FileId& id, const std::filesystem::path& to, Callback<void> done) override {
    Lock l(mu_);
    inner_->finishKeptFile(id, to, std::move(done));
  }
  void adoptFile(const Manifest& m, const std::filesystem::path& p, FileStamp st, bool pinned,
                 Callback<FileId> done) override {
    Lock l(mu_);
    inner_->adoptFile(m, p, st, pinned, std::move(done));
  }

 private:
  // Recursive: a completion may call the store again on the same thread.
  using Lock = std::lock_guard<std::recursive_mutex>;
  std::recursive_mutex mu_;
  std::unique_ptr<ChunkStorage> inner_;
};

}  // namespace

std::unique_ptr<ChunkStorage> makeLocked(std::unique_ptr<ChunkStorage> inner) {
  return std::make_unique<LockedStorage>(std::move(inner));
}

}  // namespace p2pcdn::storage
