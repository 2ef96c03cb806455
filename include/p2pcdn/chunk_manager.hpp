// ChunkManager: cutting files into verified chunks and putting them back together
// (the seed's API). Reading a path streams it with memory bounded by ~2 chunks.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "p2pcdn/manifest.hpp"

namespace p2pcdn {

struct ChunkOptions {
  std::string name;                              // default: the file's name
  std::string mimeType;                          // default: guessed from the name
  std::uint32_t chunkSize = kDefaultChunkSize;
  std::optional<EncryptionKey> encryptionKey;    // set: AES-256-GCM, fresh random salt
};

// Receives every chunk in order, in its stored form (encrypted when the file is).
using ChunkVisitor = std::function<Status(ChunkIndex index, ByteView stored)>;
using ProgressFn = std::function<void(std::uint64_t doneBytes, std::uint64_t totalBytes)>;
// Supplies chunk `index` in stored form (from a store, the network, ...).
using ChunkSource = std::function<Result<Bytes>(ChunkIndex index)>;

struct ChunkedFile {
  FileId fileId;
  Manifest manifest;
  std::vector<Bytes> chunks;  // stored form
};

class ChunkManager {
 public:
  // Hashes (and encrypts) a file to produce its manifest; `visit` sees each chunk.
  static Result<Manifest> chunkFile(const std::filesystem::path& path, const ChunkOptions& options,
                                    const ChunkVisitor& visit = {}, const ProgressFn& progress = {});
  // Re-reads a file described by `manifest` and hands each stored-form chunk to
  // `visit`, failing with kIntegrity if the file no longer matches.
  static Status readChunks(const std::filesystem::path& path, const Manifest& manifest,
                           const std::optional<EncryptionKey>& key, const ChunkVisitor& visit,
                           const ProgressFn& progress = {});
  static Result<ChunkedFile> chunkBytes(ByteView data, const ChunkOptions& options);

  static Result<Bytes> reassembleFile(const std::vector<Bytes>& chunks, const Manifest& manifest,
                                      const std::optional<EncryptionKey>& key = std::nullopt);
  // Writes the file to `out` (via a temporary file renamed at the end), verifying
  // every chunk first; on any failure nothing is left at `out`.
  static Status exportFile(const Manifest& manifest, const ChunkSource& source, const std::filesystem::path& out,
                           const std::optional<EncryptionKey>& key = std::nullopt, const ProgressFn& progress = {});

  static Status verifyChunk(const Manifest& m, ChunkIndex index, ByteView stored) {
    return p2pcdn::verifyChunk(m, index, stored);
  }
  static Result<Bytes> encryptChunk(const EncryptionKey& key, const Manifest& m, ChunkIndex index, ByteView plain);
  static Result<Bytes> decryptChunk(const EncryptionKey& key, const Manifest& m, ChunkIndex index, ByteView stored);

  static std::string guessMimeType(std::string_view fileName) { return p2pcdn::guessMimeType(fileName); }
};

}  // namespace p2pcdn
