// Stores for node tests (no asio, no threads: native and emscripten): a
// memory store that can be told to fail, and a published file.
#pragma once

#include <cstdlib>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/blake3.hpp"
#include "p2pcdn/chunk_storage.hpp"
#include "p2pcdn/manifest.hpp"
#include "storage/forwarding.hpp"

namespace p2pcdn::test {

// A memory store whose manifest or chunk writes can be made to fail.
struct OwnedMemoryStore {
  std::unique_ptr<ChunkStorage> memory = makeMemoryStorage();
};
// (The memory store is a base listed first, so it is built before the
// forwarding base that keeps a reference to it.)
class FaultyStore : private OwnedMemoryStore, public storage::ForwardingStorage {
 public:
  FaultyStore() : storage::ForwardingStorage(*memory) {}
  bool failManifests = false;
  std::set<ChunkIndex> failChunks;  // storeChunk of these fails with kIo

  void storeManifest(const Manifest& m, bool pinned, Callback<FileId> done) override {
    if (failManifests) return done(fail(Errc::kIo, "store manifest", "injected failure"));
    ForwardingStorage::storeManifest(m, pinned, std::move(done));
  }
  void storeChunk(const FileId& id, ChunkIndex i, ByteView d, Callback<void> done) override {
    if (failChunks.count(i)) return done(fail(Errc::kIo, "store chunk", "injected failure"));
    ForwardingStorage::storeChunk(id, i, d, std::move(done));
  }
};

// A file of `chunks` chunks of 16 KiB (random bytes from `seed`), held
// complete in `store`. Built from core alone (no ChunkManager), so it also
// runs under emscripten.
inline Manifest publishFile(ChunkStorage& store, std::uint32_t chunks, std::uint32_t seed = 1) {
  constexpr std::size_t kChunk = 16384;
  std::mt19937 rng(seed);
  std::vector<Bytes> parts(chunks, Bytes(kChunk));
  Manifest m;
  m.name = "f" + std::to_string(seed) + ".bin";
  m.size = std::uint64_t{chunks} * kChunk;
  m.chunkSize = kChunk;
  for (auto& part : parts) {
    for (auto& b : part) b = static_cast<std::uint8_t>(rng());
    m.chunkHashes.push_back(Blake3::hash(part));
  }
  BlockingStorage bs(store);
  auto id = bs.storeManifest(m, true);
  if (!id) std::abort();
  for (std::uint32_t i = 0; i < chunks; ++i) {
    if (!bs.storeChunk(*id, i, parts[i])) std::abort();
  }
  return m;
}
}  // namespace p2pcdn::test
