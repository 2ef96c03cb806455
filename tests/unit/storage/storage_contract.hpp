// The ChunkStorage contract, as a typed test suite every backend instantiates:
//   using Backends = ::testing::Types<MyBackend>;
//   INSTANTIATE_TYPED_TEST_SUITE_P(My, StorageContract, Backends);
// where MyBackend has `static Result<std::unique_ptr<ChunkStorage>> open(const
// std::filesystem::path& dir, StorageOptions)` (dir is an empty folder of the test's own).
// Include this header from exactly one source file per test executable.
#pragma once

#include <algorithm>
#include <memory>

#include "p2pcdn/chunk_storage.hpp"
#include "test_support.hpp"

namespace p2pcdn::test {

constexpr std::uint32_t kChunk = 1024;

template <class Backend>
class StorageContract : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  void reopen(StorageOptions o = {}) {
    blocking_.reset();
    store_.reset();
    auto s = Backend::open(dir_.path(), o);
    ASSERT_TRUE(s.has_value()) << describe(s);
    store_ = std::move(*s);
    blocking_ = std::make_unique<BlockingStorage>(*store_);
  }
  void withQuota(std::uint64_t quotaBytes) {
    StorageOptions o;
    o.quotaBytes = quotaBytes;
    reopen(o);
  }

  BlockingStorage& store() { return *blocking_; }

  // Stores the manifest and (some of) the chunks of `f`.
  void put(const TestFile& f, bool pinned, std::vector<ChunkIndex> which = {}) {
    auto id = store().storeManifest(f.manifest, pinned);
    ASSERT_TRUE(id.has_value()) << describe(id);
    ASSERT_EQ(*id, f.id);
    if (which.empty()) {
      for (ChunkIndex i = 0; i < f.chunks.size(); ++i) which.push_back(i);
    }
    for (ChunkIndex i : which) {
      auto st = store().storeChunk(f.id, i, f.chunks[i]);
      ASSERT_TRUE(st.has_value()) << "chunk " << i << ": " << describe(st);
    }
  }

  std::vector<bool> present(const TestFile& f) {
    auto p = store().presentChunks(f.id);
    EXPECT_TRUE(p.has_value()) << describe(p);
    return p ? *p : std::vector<bool>{};
  }

  StorageUsage usage() {
    auto u = store().usage();
    EXPECT_TRUE(u.has_value()) << describe(u);
    return u ? *u : StorageUsage{};
  }

  std::optional<StoredFile> listed(const FileId& id) {
    auto files = store().listFiles();
    EXPECT_TRUE(files.has_value()) << describe(files);
    if (!files) return std::nullopt;
    for (const StoredFile& f : *files) {
      if (f.fileId == id) return f;
    }
    return std::nullopt;
  }

  TempDir dir_;
  std::unique_ptr<ChunkStorage> store_;
  std::unique_ptr<BlockingStorage> blocking_;
};

TYPED_TEST_SUITE_P(StorageContract);

TYPED_TEST_P(StorageContract, StartsEmpty) {
  StorageUsage u = this->usage();
  EXPECT_EQ(u.bytesUsed, 0u);
  EXPECT_EQ(u.chunks, 0u);
  EXPECT_EQ(u.files, 0u);
  EXPECT_EQ(u.evictedChunks, 0u);
  EXPECT_EQ(u.quotaBytes, kDefaultQuotaBytes);
  auto files = this->store().listFiles();
  ASSERT_TRUE(files.has_value());
  EXPECT_TRUE(files->empty());
}

TYPED_TEST_P(StorageContract, StoreAndGetManifest) {
  TestFile f = makeTestFile(3 * kChunk + 10, kChunk, 1);
  auto id = this->store().storeManifest(f.manifest, false);
  ASSERT_TRUE(id.has_value()) << describe(id);
  EXPECT_EQ(*id, f.id);
  auto m = this->store().getManifest(f.id);
  ASSERT_TRUE(m.has_value()) << describe(m);
  EXPECT_EQ(*m, f.manifest);
  // Encrypted manifests (hashes of the stored form) too.
  Manifest enc = sampleManifest(true);
  auto encId = this->store().storeManifest(enc, true);
  ASSERT_TRUE(encId.has_value()) << describe(encId);
  EXPECT_EQ(*this->store().getManifest(*encId), enc);
  EXPECT_EQ(this->usage().files, 2u);

  TestFile other = makeTestFile(10, kChunk, 2);
  EXPECT_EQ(codeOf(this->store().getManifest(other.id)), Errc::kNotFound);
  Manifest bad = f.manifest;
  bad.chunkHashes.pop_back();
  EXPECT_EQ(codeOf(this->store().storeManifest(bad, false)), Errc::kMalformed);
  bad = f.manifest;
  bad.name.clear();
  EXPECT_EQ(codeOf(this->store().storeManifest(bad, false)), Errc::kMalformed);
  EXPECT_EQ(this->usage().files, 2u);
}

TYPED_TEST_P(StorageContract, StoreChunkAcceptsOnlyVerifiedBytes) {
  TestFile f = makeTestFile(3 * kChunk + 10, kChunk, 1);
  // Unknown file.
  EXPECT_EQ(codeOf(this->store().storeChunk(f.id, 0, f.chunks[0])), Errc::kNotFound);
  ASSERT_TRUE(this->store().storeManifest(f.manifest, false).has_value());
  // Wrong bytes: flipped bit, wrong chunk, short, long, empty.
  Bytes flipped = f.chunks[1];
  flipped[100] ^= 1;
  EXPECT_EQ(codeOf(this->store().storeChunk(f.id, 1, flipped)), Errc::kIntegrity);
  EXPECT_EQ(codeOf(this->store().storeChunk(f.id, 1, f.chunks[0])), Errc::kIntegrity);
  EXPECT_EQ(codeOf(this->store().storeChunk(f.id, 3, f.chunks[0])), Errc::kIntegrity);
  EXPECT_EQ(codeOf(this->store().storeChunk(f.id, 1, ByteView(f.chunks[1]).first(kChunk - 1))), Errc::kIntegrity);
  Bytes longer = f.chunks[1];
  longer.push_back(0);
  EXPECT_EQ(codeOf(this->store().storeChunk(f.id, 1, longer)), Errc::kIntegrity);
  EXPECT_EQ(codeOf(this->store().storeChunk(f.id, 1, {})), Errc::kIntegrity);
  // Index out of range.
  EXPECT_EQ(codeOf(this->store().storeChunk(f.id, 4, f.chunks[0])), Errc::kInvalidArgument);
  // Nothing bad was stored.
  EXPECT_EQ(this->present(f), std::vector<bool>(4, false));
  StorageUsage u = this->usage();
  EXPECT_EQ(u.bytesUsed, 0u);
  EXPECT_EQ(u.chunks, 0u);
  EXPECT_EQ(codeOf(this->store().getChunk(f.id, 1)), Errc::kNotFound);

  P2PCDN_EXPECT_OK(this->store().storeChunk(f.id, 1, f.chunks[1]));
  auto got = this->store().getChunk(f.id, 1);
  ASSERT_TRUE(got.has_value()) << describe(got);
  EXPECT_EQ(*got, f.chunks[1]);
}

TYPED_TEST_P(StorageContract, GetChunk) {
  TestFile f = makeTestFile(3 * kChunk + 10, kChunk, 1);
  this->put(f, false, {0, 3});
  for (ReadOptions o : {ReadOptions{true}, ReadOptions{false}}) {
    auto c0 = this->store().getChunk(f.id, 0, o);
    ASSERT_TRUE(c0.has_value()) << describe(c0);
    EXPECT_EQ(*c0, f.chunks[0]);
    auto c3 = this->store().getChunk(f.id, 3, o);
    ASSERT_TRUE(c3.has_value()) << describe(c3);
    EXPECT_EQ(*c3, f.chunks[3]);
    EXPECT_EQ(c3->size(), 10u);
  }
  EXPECT_EQ(codeOf(this->store().getChunk(f.id, 1)), Errc::kNotFound);
  EXPECT_EQ(codeOf(this->store().getChunk(f.id, 4)), Errc::kNotFound);
  EXPECT_EQ(codeOf(this->store().getChunk(f.id, 0xffffffffu)), Errc::kNotFound);
  TestFile other = makeTestFile(10, kChunk, 2);
  EXPECT_EQ(codeOf(this->store().getChunk(other.id, 0)), Errc::kNotFound);
}

TYPED_TEST_P(StorageContract, PresentChunksAndDeleteChunk) {
  TestFile f = makeTestFile(5 * kChunk, kChunk, 3);
  ASSERT_TRUE(this->store().storeManifest(f.manifest, false).has_value());
  EXPECT_EQ(this->present(f), std::vector<bool>(5, false));
  this->put(f, false, {1, 4});
  EXPECT_EQ(this->present(f), (std::vector<bool>{false, true, false, false, true}));
  StorageUsage u = this->usage();
  EXPECT_EQ(u.bytesUsed, 2 * kChunk);
  EXPECT_EQ(u.chunks, 2u);

  P2PCDN_EXPECT_OK(this->store().deleteChunk(f.id, 4));
  EXPECT_EQ(this->present(f), (std::vector<bool>{false, true, false, false, false}));
  EXPECT_EQ(codeOf(this->store().getChunk(f.id, 4)), Errc::kNotFound);
  u = this->usage();
  EXPECT_EQ(u.bytesUsed, kChunk);
  EXPECT_EQ(u.chunks, 1u);
  // Deleting an absent chunk is not an error and changes nothing.
  P2PCDN_EXPECT_OK(this->store().deleteChunk(f.id, 4));
  P2PCDN_EXPECT_OK(this->store().deleteChunk(f.id, 2));
  EXPECT_EQ(this->usage().bytesUsed, kChunk);
  // The manifest stays.
  P2PCDN_EXPECT_OK(this->store().getManifest(f.id));
  // And the chunk can come back.
  P2PCDN_EXPECT_OK(this->store().storeChunk(f.id, 4, f.chunks[4]));
  EXPECT_EQ(this->usage().bytesUsed, 2 * kChunk);

  TestFile other = makeTestFile(10, kChunk, 4);
  EXPECT_EQ(codeOf(this->store().presentChunks(other.id)), Errc::kNotFound);
  EXPECT_EQ(codeOf(this->store().deleteChunk(other.id, 0)), Errc::kNotFound);
}

TYPED_TEST_P(StorageContract, DeleteFile) {
  TestFile a = makeTestFile(3 * kChunk, kChunk, 5);
  TestFile b = makeTestFile(2 * kChunk, kChunk, 6);
  this->put(a, true);
  this->put(b, false);
  EXPECT_EQ(this->usage().chunks, 5u);
  P2PCDN_EXPECT_OK(this->store().deleteFile(a.id));
  EXPECT_EQ(codeOf(this->store().getManifest(a.id)), Errc::kNotFound);
  EXPECT_EQ(codeOf(this->store().getChunk(a.id, 0)), Errc::kNotFound);
  EXPECT_EQ(codeOf(this->store().presentChunks(a.id)), Errc::kNotFound);
  EXPECT_EQ(codeOf(this->store().deleteFile(a.id)), Errc::kNotFound);
  StorageUsage u = this->usage();
  EXPECT_EQ(u.files, 1u);
  EXPECT_EQ(u.chunks, 2u);
  EXPECT_EQ(u.bytesUsed, 2 * kChunk);
  EXPECT_EQ(u.evictedChunks, 0u);
  // b is untouched.
  EXPECT_EQ(*this->store().getChunk(b.id, 1), b.chunks[1]);
  // a can be stored again from scratch.
  this->put(a, false, {2});
  EXPECT_EQ(this->present(a), (std::vector<bool>{false, false, true}));
  P2PCDN_EXPECT_OK(this->store().deleteFile(b.id));
  P2PCDN_EXPECT_OK(this->store().deleteFile(a.id));
  u = this->usage();
  EXPECT_EQ(u.files, 0u);
  EXPECT_EQ(u.chunks, 0u);
  EXPECT_EQ(u.bytesUsed, 0u);
}

TYPED_TEST_P(StorageContract, ListFilesCounts) {
  TestFile a = makeTestFile(3 * kChunk + 1, kChunk, 7);
  TestFile b = makeTestFile(2 * kChunk, kChunk, 8);
  TestFile empty = makeTestFile(0, kChunk, 9, "empty.txt");
  this->put(a, true, {0, 3});
  this->put(b, false);
  ASSERT_TRUE(this->store().storeManifest(empty.manifest, false).has_value());
  auto files = this->store().listFiles();
  ASSERT_TRUE(files.has_value()) << describe(files);
  EXPECT_EQ(files->size(), 3u);

  auto la = this->listed(a.id);
  ASSERT_TRUE(la.has_value());
  EXPECT_EQ(la->manifest, a.manifest);
  EXPECT_EQ(la->chunksPresent, 2u);
  EXPECT_EQ(la->bytesStored, kChunk + 1u);
  EXPECT_TRUE(la->pinned);
  EXPECT_FALSE(la->complete());

  auto lb = this->listed(b.id);
  ASSERT_TRUE(lb.has_value());
  EXPECT_EQ(lb->chunksPresent, 2u);
  EXPECT_EQ(lb->bytesStored, 2u * kChunk);
  EXPECT_FALSE(lb->pinned);
  EXPECT_TRUE(lb->complete());

  auto le = this->listed(empty.id);
  ASSERT_TRUE(le.has_value());
  EXPECT_EQ(le->chunksPresent, 0u);
  EXPECT_TRUE(le->complete());  // nothing to hold

  StorageUsage u = this->usage();
  EXPECT_EQ(u.files, 3u);
  EXPECT_EQ(u.chunks, 4u);
  EXPECT_EQ(u.bytesUsed, 3u * kChunk + 1u);
}

TYPED_TEST_P(StorageContract, StoringIsIdempotent) {
  TestFile f = makeTestFile(2 * kChunk, kChunk, 10);
  this->put(f, false);
  this->put(f, false);
  P2PCDN_EXPECT_OK(this->store().storeChunk(f.id, 0, f.chunks[0]));
  StorageUsage u = this->usage();
  EXPECT_EQ(u.files, 1u);
  EXPECT_EQ(u.chunks, 2u);
  EXPECT_EQ(u.bytesUsed, 2u * kChunk);
  auto files = this->store().listFiles();
  ASSERT_TRUE(files.has_value());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ(files->front().chunksPresent, 2u);
}

TYPED_TEST_P(StorageContract, PinningIsStickyUntilCleared) {
  TestFile f = makeTestFile(kChunk, kChunk, 11);
  ASSERT_TRUE(this->store().storeManifest(f.manifest, true).has_value());
  ASSERT_TRUE(this->store().storeManifest(f.manifest, false).has_value());  // does not unpin
  EXPECT_TRUE(this->listed(f.id)->pinned);
  P2PCDN_EXPECT_OK(this->store().setPinned(f.id, false));
  EXPECT_FALSE(this->listed(f.id)->pinned);
  ASSERT_TRUE(this->store().storeManifest(f.manifest, true).has_value());  // pins again
  EXPECT_TRUE(this->listed(f.id)->pinned);
  TestFile other = makeTestFile(10, kChunk, 12);
  EXPECT_EQ(codeOf(this->store().setPinned(other.id, true)), Errc::kNotFound);
}

TYPED_TEST_P(StorageContract, RestoringAChunkOfAFullStoreEvictsNothing) {
  this->withQuota(4 * kChunk);
  TestFile a = makeTestFile(2 * kChunk, kChunk, 13);
  TestFile b = makeTestFile(2 * kChunk, kChunk, 14);
  this->put(a, true);
  this->put(b, false);
  ASSERT_EQ(this->usage().bytesUsed, 4u * kChunk);
  // The store is exactly full; storing chunks it already holds needs no room.
  P2PCDN_EXPECT_OK(this->store().storeChunk(a.id, 0, a.chunks[0]));
  P2PCDN_EXPECT_OK(this->store().storeChunk(b.id, 1, b.chunks[1]));
  StorageUsage u = this->usage();
  EXPECT_EQ(u.evictedChunks, 0u);
  EXPECT_EQ(u.chunks, 4u);
  EXPECT_EQ(this->present(a), std::vector<bool>(2, true));
  EXPECT_EQ(this->present(b), std::vector<bool>(2, true));
}

TYPED_TEST_P(StorageContract, EvictsLeastRecentlyUsedFirst) {
  this->withQuota(4 * kChunk);
  EXPECT_EQ(this->usage().quotaBytes, 4u * kChunk);
  TestFile a = makeTestFile(4 * kChunk, kChunk, 15);
  TestFile b = makeTestFile(4 * kChunk, kChunk, 16);
  this->put(a, false);  // stored in order 0, 1, 2, 3
  ASSERT_TRUE(this->store().getChunk(a.id, 0).has_value());  // 0 is now the most recent
  ASSERT_TRUE(this->store().storeManifest(b.manifest, false).has_value());

  P2PCDN_ASSERT_OK(this->store().storeChunk(b.id, 0, b.chunks[0]));
  EXPECT_EQ(this->present(a), (std::vector<bool>{true, false, true, true}));
  StorageUsage u = this->usage();
  EXPECT_EQ(u.evictedChunks, 1u);
  EXPECT_EQ(u.bytesUsed, 4u * kChunk);
  EXPECT_EQ(u.chunks, 4u);

  P2PCDN_ASSERT_OK(this->store().storeChunk(b.id, 1, b.chunks[1]));
  EXPECT_EQ(this->present(a), (std::vector<bool>{true, false, false, true}));

  // Reading a chunk without verification also counts as a use.
  ASSERT_TRUE(this->store().getChunk(a.id, 3, ReadOptions{false}).has_value());
  P2PCDN_ASSERT_OK(this->store().storeChunk(b.id, 2, b.chunks[2]));
  EXPECT_EQ(this->present(a), (std::vector<bool>{false, false, false, true}));
  EXPECT_EQ(this->present(b), (std::vector<bool>{true, true, true, false}));
  u = this->usage();
  EXPECT_EQ(u.evictedChunks, 3u);
  EXPECT_EQ(u.bytesUsed, 4u * kChunk);
  EXPECT_EQ(u.chunks, 4u);
  auto la = this->listed(a.id);
  ASSERT_TRUE(la.has_value());
  EXPECT_EQ(la->chunksPresent, 1u);
  EXPECT_EQ(la->bytesStored, kChunk);
  // The evicted file's manifest stays.
  P2PCDN_EXPECT_OK(this->store().getManifest(a.id));
}

TYPED_TEST_P(StorageContract, EvictsSeveralSmallChunksForABigOne) {
  this->withQuota(3 * kChunk);
  // Files with different chunk sizes: three 1 KiB chunks, then one 2 KiB chunk.
  TestFile a = makeTestFile(3 * kChunk, kChunk, 18);
  TestFile big = makeTestFile(2 * kChunk, 2 * kChunk, 19);
  this->put(a, false);
  this->put(big, false);
  EXPECT_EQ(this->present(a), (std::vector<bool>{false, false, true}));
  StorageUsage u = this->usage();
  EXPECT_EQ(u.evictedChunks, 2u);
  EXPECT_EQ(u.bytesUsed, 3u * kChunk);
}

TYPED_TEST_P(StorageContract, PinnedFilesAreNeverEvicted) {
  this->withQuota(4 * kChunk);
  TestFile pinned = makeTestFile(2 * kChunk, kChunk, 20);
  TestFile loose = makeTestFile(2 * kChunk, kChunk, 21);
  TestFile incoming = makeTestFile(4 * kChunk, kChunk, 22);
  this->put(pinned, true);  // the oldest chunks
  this->put(loose, false);
  ASSERT_TRUE(this->store().storeManifest(incoming.manifest, false).has_value());
  P2PCDN_ASSERT_OK(this->store().storeChunk(incoming.id, 0, incoming.chunks[0]));
  P2PCDN_ASSERT_OK(this->store().storeChunk(incoming.id, 1, incoming.chunks[1]));
  EXPECT_EQ(this->present(pinned), std::vector<bool>(2, true));
  EXPECT_EQ(this->present(loose), std::vector<bool>(2, false));
  // Only pinned chunks and the incoming file's own remain: no room.
  EXPECT_EQ(codeOf(this->store().storeChunk(incoming.id, 2, incoming.chunks[2])), Errc::kQuotaExceeded);
  EXPECT_EQ(this->present(pinned), std::vector<bool>(2, true));
  EXPECT_EQ(this->present(incoming), (std::vector<bool>{true, true, false, false}));
  StorageUsage u = this->usage();
  EXPECT_EQ(u.bytesUsed, 4u * kChunk);
  EXPECT_EQ(u.evictedChunks, 2u);
  // Unpinning makes the chunks evictable.
  P2PCDN_EXPECT_OK(this->store().setPinned(pinned.id, false));
  P2PCDN_EXPECT_OK(this->store().storeChunk(incoming.id, 2, incoming.chunks[2]));
  EXPECT_EQ(this->present(pinned), (std::vector<bool>{false, true}));
}

TYPED_TEST_P(StorageContract, QuotaExceededWhenEverythingIsPinned) {
  this->withQuota(3 * kChunk);
  TestFile a = makeTestFile(3 * kChunk, kChunk, 23);
  TestFile b = makeTestFile(kChunk, kChunk, 24);
  this->put(a, true);
  ASSERT_TRUE(this->store().storeManifest(b.manifest, true).has_value());
  EXPECT_EQ(codeOf(this->store().storeChunk(b.id, 0, b.chunks[0])), Errc::kQuotaExceeded);
  ASSERT_TRUE(this->store().setPinned(b.id, false).has_value());
  EXPECT_EQ(codeOf(this->store().storeChunk(b.id, 0, b.chunks[0])), Errc::kQuotaExceeded);
  EXPECT_EQ(this->present(a), std::vector<bool>(3, true));
  EXPECT_EQ(this->present(b), std::vector<bool>{false});
  StorageUsage u = this->usage();
  EXPECT_EQ(u.evictedChunks, 0u);
  EXPECT_EQ(u.bytesUsed, 3u * kChunk);
  // A chunk larger than the whole quota never fits.
  this->withQuota(kChunk - 1);
  TestFile c = makeTestFile(kChunk, kChunk, 25);
  ASSERT_TRUE(this->store().storeManifest(c.manifest, false).has_value());
  EXPECT_EQ(codeOf(this->store().storeChunk(c.id, 0, c.chunks[0])), Errc::kQuotaExceeded);
}

TYPED_TEST_P(StorageContract, AFileDoesNotEvictItself) {
  this->withQuota(2 * kChunk);
  TestFile f = makeTestFile(3 * kChunk, kChunk, 26);
  ASSERT_TRUE(this->store().storeManifest(f.manifest, false).has_value());
  P2PCDN_ASSERT_OK(this->store().storeChunk(f.id, 0, f.chunks[0]));
  P2PCDN_ASSERT_OK(this->store().storeChunk(f.id, 1, f.chunks[1]));
  EXPECT_EQ(codeOf(this->store().storeChunk(f.id, 2, f.chunks[2])), Errc::kQuotaExceeded);
  EXPECT_EQ(this->present(f), (std::vector<bool>{true, true, false}));
}

TYPED_TEST_P(StorageContract, CompletesInline) {
  // The documented behaviour of these backends: the callback runs before the call returns.
  TestFile f = makeTestFile(kChunk, kChunk, 27);
  bool called = false;
  this->store_->storeManifest(f.manifest, false, [&](Result<FileId> r) {
    called = true;
    EXPECT_TRUE(r.has_value());
  });
  EXPECT_TRUE(called);
  called = false;
  this->store_->usage([&](Result<StorageUsage> r) {
    called = true;
    EXPECT_TRUE(r.has_value());
  });
  EXPECT_TRUE(called);
}

TYPED_TEST_P(StorageContract, ImportAppearsOnlyOnCommit) {
  TestFile f = makeTestFile(4 * kChunk + 3, kChunk, 28);
  auto imp = this->store().beginImport();
  ASSERT_TRUE(imp.has_value()) << describe(imp);
  for (ChunkIndex i : {4u, 0u, 2u, 1u, 3u}) {  // any order
    P2PCDN_ASSERT_OK(this->store().importChunk(*imp, i, f.chunks[i]));
  }
  // Invisible until committed.
  EXPECT_EQ(codeOf(this->store().getManifest(f.id)), Errc::kNotFound);
  EXPECT_EQ(codeOf(this->store().getChunk(f.id, 0)), Errc::kNotFound);
  EXPECT_EQ(this->usage().files, 0u);
  EXPECT_TRUE(this->store().listFiles()->empty());

  auto id = this->store().commitImport(*imp, f.manifest, true);
  ASSERT_TRUE(id.has_value()) << describe(id);
  EXPECT_EQ(*id, f.id);
  EXPECT_EQ(*this->store().getManifest(f.id), f.manifest);
  EXPECT_EQ(this->present(f), std::vector<bool>(5, true));
  for (ChunkIndex i = 0; i < 5; ++i) EXPECT_EQ(*this->store().getChunk(f.id, i), f.chunks[i]);
  auto l = this->listed(f.id);
  ASSERT_TRUE(l.has_value());
  EXPECT_TRUE(l->pinned);
  EXPECT_TRUE(l->complete());
  StorageUsage u = this->usage();
  EXPECT_EQ(u.files, 1u);
  EXPECT_EQ(u.chunks, 5u);
  EXPECT_EQ(u.bytesUsed, 4u * kChunk + 3u);
  // The import is finished.
  EXPECT_EQ(codeOf(this->store().importChunk(*imp, 0, f.chunks[0])), Errc::kNotFound);
  EXPECT_EQ(codeOf(this->store().commitImport(*imp, f.manifest)), Errc::kNotFound);
}

TYPED_TEST_P(StorageContract, ImportCommitChecksEveryChunk) {
  TestFile f = makeTestFile(3 * kChunk, kChunk, 29);
  // A chunk missing.
  auto imp = this->store().beginImport();
  ASSERT_TRUE(imp.has_value()) << describe(imp);
  P2PCDN_ASSERT_OK(this->store().importChunk(*imp, 0, f.chunks[0]));
  P2PCDN_ASSERT_OK(this->store().importChunk(*imp, 2, f.chunks[2]));
  EXPECT_EQ(codeOf(this->store().commitImport(*imp, f.manifest)), Errc::kInvalidArgument);
  EXPECT_EQ(codeOf(this->store().getManifest(f.id)), Errc::kNotFound);
  P2PCDN_EXPECT_OK(this->store().abortImport(*imp));

  // A chunk that does not match its hash.
  imp = this->store().beginImport();
  ASSERT_TRUE(imp.has_value());
  Bytes bad = f.chunks[1];
  bad[5] ^= 1;
  P2PCDN_ASSERT_OK(this->store().importChunk(*imp, 0, f.chunks[0]));
  P2PCDN_ASSERT_OK(this->store().importChunk(*imp, 1, bad));
  P2PCDN_ASSERT_OK(this->store().importChunk(*imp, 2, f.chunks[2]));
  EXPECT_EQ(codeOf(this->store().commitImport(*imp, f.manifest)), Errc::kIntegrity);
  EXPECT_EQ(codeOf(this->store().getManifest(f.id)), Errc::kNotFound);
  // A chunk beyond the manifest's end.
  Manifest shorter = makeTestFile(2 * kChunk, kChunk, 29).manifest;
  EXPECT_FALSE(this->store().commitImport(*imp, shorter).has_value());
  // An invalid manifest.
  Manifest invalid = f.manifest;
  invalid.name.clear();
  EXPECT_FALSE(this->store().commitImport(*imp, invalid).has_value());
  P2PCDN_EXPECT_OK(this->store().abortImport(*imp));

  StorageUsage u = this->usage();
  EXPECT_EQ(u.files, 0u);
  EXPECT_EQ(u.chunks, 0u);
  EXPECT_EQ(u.bytesUsed, 0u);
  EXPECT_TRUE(this->store().listFiles()->empty());
}

TYPED_TEST_P(StorageContract, AbortedImportLeavesNothing) {
  TestFile f = makeTestFile(2 * kChunk, kChunk, 30);
  TestFile other = makeTestFile(kChunk, kChunk, 31);
  this->put(other, false);
  auto imp = this->store().beginImport();
  ASSERT_TRUE(imp.has_value()) << describe(imp);
  P2PCDN_ASSERT_OK(this->store().importChunk(*imp, 0, f.chunks[0]));
  P2PCDN_ASSERT_OK(this->store().importChunk(*imp, 1, f.chunks[1]));
  P2PCDN_ASSERT_OK(this->store().abortImport(*imp));
  EXPECT_EQ(codeOf(this->store().commitImport(*imp, f.manifest)), Errc::kNotFound);
  EXPECT_EQ(codeOf(this->store().getManifest(f.id)), Errc::kNotFound);
  StorageUsage u = this->usage();
  EXPECT_EQ(u.files, 1u);
  EXPECT_EQ(u.chunks, 1u);
  EXPECT_EQ(u.bytesUsed, kChunk);
  EXPECT_EQ(*this->store().getChunk(other.id, 0), other.chunks[0]);
  EXPECT_EQ(codeOf(this->store().importChunk(*imp, 0, f.chunks[0])), Errc::kNotFound);
}

TYPED_TEST_P(StorageContract, ImportOfAFileAlreadyStored) {
  TestFile f = makeTestFile(2 * kChunk, kChunk, 32);
  this->put(f, false);
  auto imp = this->store().beginImport();
  ASSERT_TRUE(imp.has_value()) << describe(imp);
  P2PCDN_ASSERT_OK(this->store().importChunk(*imp, 0, f.chunks[0]));
  P2PCDN_ASSERT_OK(this->store().importChunk(*imp, 1, f.chunks[1]));
  auto id = this->store().commitImport(*imp, f.manifest, true);
  ASSERT_TRUE(id.has_value()) << describe(id);
  EXPECT_EQ(*id, f.id);
  StorageUsage u = this->usage();
  EXPECT_EQ(u.files, 1u);
  EXPECT_EQ(u.chunks, 2u);
  EXPECT_EQ(u.bytesUsed, 2u * kChunk);
  EXPECT_TRUE(this->listed(f.id)->pinned);
  EXPECT_EQ(*this->store().getChunk(f.id, 1), f.chunks[1]);
}

REGISTER_TYPED_TEST_SUITE_P(StorageContract, StartsEmpty, StoreAndGetManifest, StoreChunkAcceptsOnlyVerifiedBytes,
                            GetChunk, PresentChunksAndDeleteChunk, DeleteFile, ListFilesCounts,
                            StoringIsIdempotent, PinningIsStickyUntilCleared,
                            RestoringAChunkOfAFullStoreEvictsNothing, EvictsLeastRecentlyUsedFirst,
                            EvictsSeveralSmallChunksForABigOne, PinnedFilesAreNeverEvicted,
                            QuotaExceededWhenEverythingIsPinned, AFileDoesNotEvictItself, CompletesInline,
                            ImportAppearsOnlyOnCommit, ImportCommitChecksEveryChunk, AbortedImportLeavesNothing,
                            ImportOfAFileAlreadyStored);

}  // namespace p2pcdn::test
