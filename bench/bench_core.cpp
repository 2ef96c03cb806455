// Per-chunk costs: BLAKE3, AES-256-GCM, manifest codec, store writes/reads.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>

#include "core/blake3.hpp"
#include "crypto/crypto.hpp"
#include "p2pcdn/chunk_manager.hpp"
#include "p2pcdn/chunk_storage.hpp"

namespace {

using namespace p2pcdn;

Bytes randomBytes(std::size_t n, std::uint32_t seed = 1) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

void BM_Blake3Chunk(benchmark::State& state) {
  Bytes chunk = randomBytes(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(Blake3::hash(chunk));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Blake3Chunk)->Arg(16 * 1024)->Arg(256 * 1024)->Arg(1024 * 1024);

void BM_AesGcmEncryptChunk(benchmark::State& state) {
  Bytes chunk = randomBytes(256 * 1024);
  EncryptionKey key{};
  EncryptionInfo info{};
  ChunkIndex i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(crypto::encryptChunk(key, info, i++, chunk));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 256 * 1024);
}
BENCHMARK(BM_AesGcmEncryptChunk);

void BM_AesGcmDecryptChunk(benchmark::State& state) {
  Bytes chunk = randomBytes(256 * 1024);
  EncryptionKey key{};
  EncryptionInfo info{};
  Bytes sealed = *crypto::encryptChunk(key, info, 7, chunk);
  for (auto _ : state) benchmark::DoNotOptimize(crypto::decryptChunk(key, info, 7, sealed));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 256 * 1024);
}
BENCHMARK(BM_AesGcmDecryptChunk);

Manifest gibManifest() {
  Manifest m;
  m.name = "one-gib.bin";
  m.size = 1ULL << 30;
  m.chunkHashes.resize(4096);
  for (std::size_t i = 0; i < m.chunkHashes.size(); ++i) m.chunkHashes[i].bytes[0] = static_cast<std::uint8_t>(i);
  return m;
}

void BM_ManifestEncode1GiB(benchmark::State& state) {
  Manifest m = gibManifest();
  for (auto _ : state) benchmark::DoNotOptimize(encodeManifest(m));
}
BENCHMARK(BM_ManifestEncode1GiB);

void BM_ManifestDecode1GiB(benchmark::State& state) {
  Bytes enc = *encodeManifest(gibManifest());
  for (auto _ : state) benchmark::DoNotOptimize(decodeManifest(enc));
}
BENCHMARK(BM_ManifestDecode1GiB);

void BM_ManifestJsonParse1GiB(benchmark::State& state) {
  std::string json = *manifestToJson(gibManifest());
  for (auto _ : state) benchmark::DoNotOptimize(manifestFromJson(json));
}
BENCHMARK(BM_ManifestJsonParse1GiB);

// SQLite store: storing and reading back 256 KiB chunks (verify on read).
void BM_SqliteStoreChunk(benchmark::State& state) {
  auto dir = std::filesystem::temp_directory_path() / ("p2pcdn-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  StorageOptions o;
  o.durability = state.range(0) ? Durability::kPowerLoss : Durability::kProcessCrash;
  auto store = *openSqliteStorage(dir / "store.db", o);
  BlockingStorage s(*store);
  const std::uint32_t n = 1024;  // 256 MiB per round
  Bytes data = randomBytes(std::size_t{n} * kDefaultChunkSize);
  for (auto _ : state) {
    ChunkOptions co;
    co.name = "b";
    auto cf = *ChunkManager::chunkBytes(data, co);
    auto id = *s.storeManifest(cf.manifest);
    for (ChunkIndex i = 0; i < n; ++i) benchmark::DoNotOptimize(s.storeChunk(id, i, cf.chunks[i]));
    state.PauseTiming();
    (void)s.deleteFile(id);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * n * kDefaultChunkSize);
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SqliteStoreChunk)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_SqliteGetChunkVerified(benchmark::State& state) {
  auto dir = std::filesystem::temp_directory_path() / ("p2pcdn-bench-get-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto store = *openSqliteStorage(dir / "store.db");
  BlockingStorage s(*store);
  const std::uint32_t n = 256;
  ChunkOptions co;
  co.name = "g";
  auto cf = *ChunkManager::chunkBytes(randomBytes(std::size_t{n} * kDefaultChunkSize), co);
  auto id = *s.storeManifest(cf.manifest);
  for (ChunkIndex i = 0; i < n; ++i) (void)s.storeChunk(id, i, cf.chunks[i]);
  ChunkIndex i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(s.getChunk(id, i++ % n));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * kDefaultChunkSize);
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_SqliteGetChunkVerified);

}  // namespace

BENCHMARK_MAIN();
