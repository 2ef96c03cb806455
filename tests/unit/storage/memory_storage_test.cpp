// The ChunkStorage contract for the in-memory backend (native and wasm).
#include "storage_contract.hpp"

namespace p2pcdn::test {
namespace {

struct MemoryBackend {
  static Result<std::unique_ptr<ChunkStorage>> open(const std::filesystem::path&, StorageOptions o) {
    return makeMemoryStorage(o);
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, StorageContract, ::testing::Types<MemoryBackend>);

TEST(MemoryStorage, ReopeningStartsEmpty) {
  auto s = makeMemoryStorage();
  BlockingStorage b(*s);
  TestFile f = makeTestFile(kChunk, kChunk, 1);
  ASSERT_TRUE(b.storeManifest(f.manifest).has_value());
  P2PCDN_ASSERT_OK(b.storeChunk(f.id, 0, f.chunks[0]));
  s = makeMemoryStorage();
  BlockingStorage fresh(*s);
  EXPECT_EQ(codeOf(fresh.getManifest(f.id)), Errc::kNotFound);
}

}  // namespace
}  // namespace p2pcdn::test
