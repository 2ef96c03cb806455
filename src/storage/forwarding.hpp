// A ChunkStorage that hands every call to another one: derive from it and
// override only the calls to change (a test store that fails some writes, the
// test build's corrupting store). The inner store must outlive it.
#pragma once

#include "p2pcdn/chunk_storage.hpp"

namespace p2pcdn::storage {

class ForwardingStorage : public ChunkStorage {
 public:
  explicit ForwardingStorage(ChunkStorage& inner) : inner_(inner) {}

  void storeManifest(const Manifest& m, bool pinned, Callback<FileId> done) override {
    inner_.storeManifest(m, pinned, std::move(done));
  }
  void getManifest(const FileId& id, Callback<Manifest> done) override { inner_.getManifest(id, std::move(done)); }
  void storeChunk(const FileId& id, ChunkIndex i, ByteView d, Callback<void> done) override {
    inner_.storeChunk(id, i, d, std::move(done));
  }
  void getChunk(const FileId& id, ChunkIndex i, ReadOptions o, Callback<Bytes> done) override {
    inner_.getChunk(id, i, o, std::move(done));
  }
  void deleteChunk(const FileId& id, ChunkIndex i, Callback<void> done) override {
    inner_.deleteChunk(id, i, std::move(done));
  }
  void deleteFile(const FileId& id, Callback<void> done) override { inner_.deleteFile(id, std::move(done)); }
  void setPinned(const FileId& id, bool p, Callback<void> done) override { inner_.setPinned(id, p, std::move(done)); }
  void listFiles(Callback<std::vector<StoredFile>> done) override { inner_.listFiles(std::move(done)); }
  void presentChunks(const FileId& id, Callback<std::vector<bool>> done) override {
    inner_.presentChunks(id, std::move(done));
  }
  void usage(Callback<StorageUsage> done) override { inner_.usage(std::move(done)); }
  void beginImport(Callback<ImportId> done) override { inner_.beginImport(std::move(done)); }
  void importChunk(ImportId im, ChunkIndex i, ByteView d, Callback<void> done) override {
    inner_.importChunk(im, i, d, std::move(done));
  }
  void commitImport(ImportId im, const Manifest& m, bool p, Callback<FileId> done) override {
    inner_.commitImport(im, m, p, std::move(done));
  }
  void abortImport(ImportId im, Callback<void> done) override { inner_.abortImport(im, std::move(done)); }
  void keepFileAt(const FileId& id, const std::filesystem::path& p, Callback<void> done) override {
    inner_.keepFileAt(id, p, std::move(done));
  }
  void finishKeptFile(const FileId& id, const std::filesystem::path& to, Callback<void> done) override {
    inner_.finishKeptFile(id, to, std::move(done));
  }
  void adoptFile(const Manifest& m, const std::filesystem::path& p, FileStamp st, bool pinned,
                 Callback<FileId> done) override {
    inner_.adoptFile(m, p, st, pinned, std::move(done));
  }

 protected:
  ChunkStorage& inner() { return inner_; }

 private:
  ChunkStorage& inner_;
};

}  // namespace p2pcdn::storage
