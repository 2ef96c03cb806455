#include <sys/stat.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>

#include "p2pcdn/chunk_storage.hpp"

namespace p2pcdn {
namespace {

// Runs `start(callback)` and waits for the callback's result.
template <class T, class Start>
Result<T> await(Start&& start) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<T>> out;
  start([&](Result<T> r) {
    std::lock_guard lock(mu);
    out.emplace(std::move(r));
    cv.notify_one();
  });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return out.has_value(); });
  return std::move(*out);
}

}  // namespace

void ChunkStorage::keepFileAt(const FileId&, const std::filesystem::path&, Callback<void> done) {
  done(fail(Errc::kUnsupported, "keep file", "this store keeps chunks only in itself"));
}
void ChunkStorage::finishKeptFile(const FileId&, const std::filesystem::path&, Callback<void> done) {
  done(fail(Errc::kUnsupported, "finish kept file", "this store keeps chunks only in itself"));
}

void ChunkStorage::adoptFile(const Manifest&, const std::filesystem::path&, FileStamp, bool, Callback<FileId> done) {
  done(fail(Errc::kUnsupported, "add in place", "this store keeps chunks only in itself"));
}

Result<FileStamp> stampOf(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return fail(Errc::kNotFound, "stat", path.string() + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return fail(Errc::kInvalidArgument, "stat", path.string() + " is not a regular file");
  return FileStamp{static_cast<std::uint64_t>(st.st_size),
                   static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

Result<FileId> BlockingStorage::adoptFile(const Manifest& m, const std::filesystem::path& path, FileStamp stamp,
                                          bool pinned) {
  return await<FileId>([&](auto cb) { s_.adoptFile(m, path, stamp, pinned, std::move(cb)); });
}

Status BlockingStorage::keepFileAt(const FileId& id, const std::filesystem::path& path) {
  return await<void>([&](auto cb) { s_.keepFileAt(id, path, std::move(cb)); });
}
Status BlockingStorage::finishKeptFile(const FileId& id, const std::filesystem::path& to) {
  return await<void>([&](auto cb) { s_.finishKeptFile(id, to, std::move(cb)); });
}

Result<FileId> BlockingStorage::storeManifest(const Manifest& m, bool pinned) {
  return await<FileId>([&](auto cb) { s_.storeManifest(m, pinned, std::move(cb)); });
}
Result<Manifest> BlockingStorage::getManifest(const FileId& id) {
  return await<Manifest>([&](auto cb) { s_.getManifest(id, std::move(cb)); });
}
Status BlockingStorage::storeChunk(const FileId& id, ChunkIndex index, ByteView data) {
  return await<void>([&](auto cb) { s_.storeChunk(id, index, data, std::move(cb)); });
}
Result<Bytes> BlockingStorage::getChunk(const FileId& id, ChunkIndex index, ReadOptions options) {
  return await<Bytes>([&](auto cb) { s_.getChunk(id, index, options, std::move(cb)); });
}
Status BlockingStorage::deleteChunk(const FileId& id, ChunkIndex index) {
  return await<void>([&](auto cb) { s_.deleteChunk(id, index, std::move(cb)); });
}
Status BlockingStorage::deleteFile(const FileId& id) {
  return await<void>([&](auto cb) { s_.deleteFile(id, std::move(cb)); });
}
Status BlockingStorage::setPinned(const FileId& id, bool pinned) {
  return await<void>([&](auto cb) { s_.setPinned(id, pinned, std::move(cb)); });
}
Result<std::vector<StoredFile>> BlockingStorage::listFiles() {
  return await<std::vector<StoredFile>>([&](auto cb) { s_.listFiles(std::move(cb)); });
}
Result<std::vector<bool>> BlockingStorage::presentChunks(const FileId& id) {
  return await<std::vector<bool>>([&](auto cb) { s_.presentChunks(id, std::move(cb)); });
}
Result<StorageUsage> BlockingStorage::usage() {
  return await<StorageUsage>([&](auto cb) { s_.usage(std::move(cb)); });
}

Result<ImportId> BlockingStorage::beginImport() {
  return await<ImportId>([&](auto cb) { s_.beginImport(std::move(cb)); });
}
Status BlockingStorage::importChunk(ImportId import, ChunkIndex index, ByteView data) {
  return await<void>([&](auto cb) { s_.importChunk(import, index, data, std::move(cb)); });
}
Result<FileId> BlockingStorage::commitImport(ImportId import, const Manifest& m, bool pinned) {
  return await<FileId>([&](auto cb) { s_.commitImport(import, m, pinned, std::move(cb)); });
}
Status BlockingStorage::abortImport(ImportId import) {
  return await<void>([&](auto cb) { s_.abortImport(import, std::move(cb)); });
}

}  // namespace p2pcdn
