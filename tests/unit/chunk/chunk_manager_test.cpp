// ChunkManager: files <-> verified (and optionally encrypted) chunks.
#include "p2pcdn/chunk_manager.hpp"

#include <chrono>
#include <fstream>
#include <thread>

#include "crypto/crypto.hpp"
#include "test_support.hpp"

namespace p2pcdn {
namespace {

using test::codeOf;
using test::TempDir;

constexpr std::uint32_t kCs = 1024;

EncryptionKey testKey(std::uint8_t seed = 1) {
  EncryptionKey k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(seed * 31 + i);
  return k;
}

ChunkOptions options(std::optional<EncryptionKey> key = std::nullopt, std::string name = "test.bin") {
  ChunkOptions o;
  o.name = std::move(name);
  o.chunkSize = kCs;
  o.encryptionKey = key;
  return o;
}

void writeFile(const std::filesystem::path& p, ByteView data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good());
}

Bytes readFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

ChunkSource sourceOf(const std::vector<Bytes>& chunks) {
  return [&chunks](ChunkIndex i) -> Result<Bytes> {
    if (i >= chunks.size()) return fail(Errc::kNotFound, "test source", "no chunk");
    return chunks[i];
  };
}

const std::vector<std::size_t>& sizes() {
  static const std::vector<std::size_t> s = {0, 1, kCs - 1, kCs, kCs + 1, 5 * kCs + 7, 8 * kCs};
  return s;
}

// ---------------------------------------------------------------- chunkBytes / reassemble

TEST(ChunkBytes, RoundTripPlainAndEncrypted) {
  for (bool encrypted : {false, true}) {
    for (std::size_t size : sizes()) {
      SCOPED_TRACE((encrypted ? "encrypted, size " : "plain, size ") + std::to_string(size));
      Bytes data = test::randomBytes(size, static_cast<std::uint32_t>(size));
      std::optional<EncryptionKey> key;
      if (encrypted) key = testKey();
      auto cf = ChunkManager::chunkBytes(data, options(key));
      ASSERT_TRUE(cf.has_value()) << test::describe(cf);
      const Manifest& m = cf->manifest;
      P2PCDN_EXPECT_OK(validateManifest(m));
      EXPECT_EQ(m.size, size);
      EXPECT_EQ(m.chunkSize, kCs);
      EXPECT_EQ(m.name, "test.bin");
      EXPECT_EQ(m.encryption.has_value(), encrypted);
      EXPECT_EQ(m.chunkCount(), chunkCountFor(size, kCs));
      ASSERT_EQ(cf->chunks.size(), m.chunkCount());
      EXPECT_EQ(cf->fileId, *manifestId(m));
      std::uint64_t total = 0;
      for (ChunkIndex i = 0; i < m.chunkCount(); ++i) {
        EXPECT_EQ(cf->chunks[i].size(), m.storedChunkLength(i));
        EXPECT_EQ(m.chunkHashes[i], Blake3::hash(cf->chunks[i]));
        P2PCDN_EXPECT_OK(ChunkManager::verifyChunk(m, i, cf->chunks[i]));
        total += cf->chunks[i].size();
        if (!encrypted) {
          EXPECT_TRUE(std::equal(cf->chunks[i].begin(), cf->chunks[i].end(), data.begin() + i * kCs));
        }
      }
      EXPECT_EQ(total, m.storedSize());
      auto back = ChunkManager::reassembleFile(cf->chunks, m, key);
      ASSERT_TRUE(back.has_value()) << test::describe(back);
      EXPECT_EQ(*back, data);
    }
  }
}

TEST(ChunkBytes, EncryptedChunksDecryptOnlyWithTheKey) {
  Bytes data = test::randomBytes(3 * kCs, 1);
  auto cf = ChunkManager::chunkBytes(data, options(testKey(1)));
  ASSERT_TRUE(cf.has_value()) << test::describe(cf);
  // Ciphertext, not plaintext.
  EXPECT_FALSE(std::equal(data.begin(), data.begin() + 64, cf->chunks[0].begin()));
  auto plain = ChunkManager::decryptChunk(testKey(1), cf->manifest, 1, cf->chunks[1]);
  ASSERT_TRUE(plain.has_value()) << test::describe(plain);
  EXPECT_TRUE(std::equal(plain->begin(), plain->end(), data.begin() + kCs));
  P2PCDN_EXPECT_ERRC(ChunkManager::decryptChunk(testKey(2), cf->manifest, 1, cf->chunks[1]), Errc::kIntegrity);
  P2PCDN_EXPECT_ERRC(ChunkManager::reassembleFile(cf->chunks, cf->manifest, testKey(2)), Errc::kIntegrity);
  P2PCDN_EXPECT_ERRC(ChunkManager::reassembleFile(cf->chunks, cf->manifest), Errc::kInvalidArgument);
  // Re-encrypting with the manifest's salt gives the stored bytes again.
  auto again = ChunkManager::encryptChunk(testKey(1), cf->manifest, 1, *plain);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, cf->chunks[1]);

  // A fresh salt per file: the same data and key give another file.
  auto cf2 = ChunkManager::chunkBytes(data, options(testKey(1)));
  ASSERT_TRUE(cf2.has_value());
  EXPECT_NE(cf2->manifest.encryption->salt, cf->manifest.encryption->salt);
  EXPECT_NE(cf2->fileId, cf->fileId);
  EXPECT_NE(cf2->chunks[0], cf->chunks[0]);

  auto plainFile = ChunkManager::chunkBytes(data, options());
  ASSERT_TRUE(plainFile.has_value());
  P2PCDN_EXPECT_ERRC(ChunkManager::encryptChunk(testKey(1), plainFile->manifest, 0, data),
                     Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(ChunkManager::decryptChunk(testKey(1), plainFile->manifest, 0, data),
                     Errc::kInvalidArgument);
}

TEST(ChunkBytes, PlainIsDeterministic) {
  Bytes data = test::randomBytes(5 * kCs, 4);
  auto a = ChunkManager::chunkBytes(data, options());
  auto b = ChunkManager::chunkBytes(data, options());
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->fileId, b->fileId);
  EXPECT_EQ(a->manifest, b->manifest);
}

// The file id depends only on the content: two publishers chunking the same
// bytes (with the default options, at different moments) get the same id, from
// a path as from memory.
TEST(ChunkBytes, SameContentAtDifferentTimesHasOneId) {
  Bytes data = test::randomBytes(3 * kCs + 5, 9);
  ChunkOptions o;
  o.name = "same.bin";
  o.chunkSize = kCs;
  auto a = ChunkManager::chunkBytes(data, o);
  std::this_thread::sleep_for(std::chrono::milliseconds(3));  // a later publish, by the clock
  auto b = ChunkManager::chunkBytes(data, o);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->fileId, b->fileId);
  EXPECT_EQ(a->manifest, b->manifest);

  TempDir dir;
  const auto path = dir.path() / "same.bin";
  writeFile(path, data);
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  auto c = ChunkManager::chunkFile(path, o);
  ASSERT_TRUE(c.has_value()) << test::describe(c);
  EXPECT_EQ(*manifestId(*c), a->fileId);
}

TEST(ChunkBytes, Options) {
  Bytes data = test::randomBytes(10, 1);
  ChunkOptions o;
  o.chunkSize = kCs;
  auto r = ChunkManager::chunkBytes(data, o);
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_EQ(r->manifest.name, "data");
  EXPECT_EQ(r->manifest.mimeType, "application/octet-stream");

  o.name = "clip.WEBM";
  r = ChunkManager::chunkBytes(data, o);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->manifest.mimeType, "video/webm");
  o.mimeType = "text/x-custom";
  r = ChunkManager::chunkBytes(data, o);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->manifest.mimeType, "text/x-custom");

  for (std::uint32_t bad : {0u, 1000u, 512u, kMaxChunkSize * 2}) {
    SCOPED_TRACE(bad);
    o.chunkSize = bad;
    P2PCDN_EXPECT_ERRC(ChunkManager::chunkBytes(data, o), Errc::kInvalidArgument);
  }
  o.chunkSize = kCs;
  o.name = "bad\nname";
  P2PCDN_EXPECT_ERRC(ChunkManager::chunkBytes(data, o), Errc::kInvalidArgument);
  o.name = "ok";
  o.mimeType = "bad\x01";
  P2PCDN_EXPECT_ERRC(ChunkManager::chunkBytes(data, o), Errc::kInvalidArgument);
}

TEST(ChunkBytes, LongNamesAreShortened) {
  ChunkOptions o = options();
  o.name = std::string(300, 'a') + ".mp4";
  auto r = ChunkManager::chunkBytes(test::randomBytes(10, 1), o);
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_EQ(r->manifest.name, std::string(kMaxNameBytes, 'a'));
  // Multi-byte characters are not cut in half.
  o.name.clear();
  for (int i = 0; i < 80; ++i) o.name += "\xf0\x9f\x8e\xac";  // 320 bytes of U+1F3AC
  r = ChunkManager::chunkBytes(test::randomBytes(10, 1), o);
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_EQ(r->manifest.name, o.name.substr(0, 63 * 4));  // 252 bytes: 63 whole characters
  P2PCDN_EXPECT_OK(validateManifest(r->manifest));
  o.name = std::string(100, 'y');
  for (int i = 0; i < 100; ++i) o.name += "\xc3\xa9";  // 300 bytes: the cut falls inside a character
  r = ChunkManager::chunkBytes(test::randomBytes(10, 1), o);
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_EQ(r->manifest.name, o.name.substr(0, 254));
}

TEST(Reassemble, RejectsBadInput) {
  Bytes data = test::randomBytes(3 * kCs + 5, 2);
  auto cf = ChunkManager::chunkBytes(data, options());
  ASSERT_TRUE(cf.has_value());
  std::vector<Bytes> chunks = cf->chunks;
  // Missing and extra chunks.
  std::vector<Bytes> fewer(chunks.begin(), chunks.end() - 1);
  P2PCDN_EXPECT_ERRC(ChunkManager::reassembleFile(fewer, cf->manifest), Errc::kInvalidArgument);
  std::vector<Bytes> more = chunks;
  more.push_back(chunks[0]);
  P2PCDN_EXPECT_ERRC(ChunkManager::reassembleFile(more, cf->manifest), Errc::kInvalidArgument);
  // Corrupt and swapped chunks.
  std::vector<Bytes> corrupt = chunks;
  corrupt[2][17] ^= 0x04;
  P2PCDN_EXPECT_ERRC(ChunkManager::reassembleFile(corrupt, cf->manifest), Errc::kIntegrity);
  std::vector<Bytes> swapped = chunks;
  std::swap(swapped[0], swapped[1]);
  P2PCDN_EXPECT_ERRC(ChunkManager::reassembleFile(swapped, cf->manifest), Errc::kIntegrity);
  // An invalid manifest.
  Manifest bad = cf->manifest;
  bad.size += kCs;
  P2PCDN_EXPECT_ERRC(ChunkManager::reassembleFile(chunks, bad), Errc::kMalformed);
}

// ---------------------------------------------------------------- files

TEST(ChunkFile, MatchesChunkBytes) {
  TempDir dir;
  for (std::size_t size : sizes()) {
    SCOPED_TRACE(size);
    Bytes data = test::randomBytes(size, static_cast<std::uint32_t>(size + 100));
    auto path = dir / ("f" + std::to_string(size) + ".bin");
    writeFile(path, data);
    std::vector<Bytes> visited;
    std::uint64_t lastDone = 0, calls = 0;
    auto m = ChunkManager::chunkFile(
        path, options(),
        [&](ChunkIndex i, ByteView c) -> Status {
          EXPECT_EQ(i, visited.size());
          visited.emplace_back(c.begin(), c.end());
          return {};
        },
        [&](std::uint64_t done, std::uint64_t total) {
          EXPECT_EQ(total, size);
          EXPECT_GT(done, lastDone);
          lastDone = done;
          ++calls;
        });
    ASSERT_TRUE(m.has_value()) << test::describe(m);
    auto cf = ChunkManager::chunkBytes(data, options());
    ASSERT_TRUE(cf.has_value());
    EXPECT_EQ(*m, cf->manifest);
    EXPECT_EQ(m->chunkHashes, cf->manifest.chunkHashes);
    EXPECT_EQ(visited, cf->chunks);
    EXPECT_EQ(lastDone, size);
    EXPECT_EQ(calls, m->chunkCount());
  }
}

TEST(ChunkFile, Encrypted) {
  TempDir dir;
  Bytes data = test::randomBytes(4 * kCs + 3, 8);
  auto path = dir / "secret.pdf";
  writeFile(path, data);
  std::vector<Bytes> visited;
  ChunkOptions o = options(testKey());
  o.name.clear();  // default: the file's name
  auto m = ChunkManager::chunkFile(path, o, [&](ChunkIndex, ByteView c) -> Status {
    visited.emplace_back(c.begin(), c.end());
    return {};
  });
  ASSERT_TRUE(m.has_value()) << test::describe(m);
  EXPECT_EQ(m->name, "secret.pdf");
  EXPECT_EQ(m->mimeType, "application/pdf");
  ASSERT_TRUE(m->encryption.has_value());
  ASSERT_EQ(visited.size(), 5u);
  for (ChunkIndex i = 0; i < 5; ++i) P2PCDN_EXPECT_OK(verifyChunk(*m, i, visited[i]));
  auto back = ChunkManager::reassembleFile(visited, *m, testKey());
  ASSERT_TRUE(back.has_value()) << test::describe(back);
  EXPECT_EQ(*back, data);
}

TEST(ChunkFile, VisitorErrorStops) {
  TempDir dir;
  writeFile(dir / "a.bin", test::randomBytes(5 * kCs, 1));
  int calls = 0;
  auto m = ChunkManager::chunkFile(dir / "a.bin", options(), [&](ChunkIndex i, ByteView) -> Status {
    ++calls;
    if (i == 2) return fail(Errc::kCancelled, "visit", "stop");
    return {};
  });
  P2PCDN_EXPECT_ERRC(m, Errc::kCancelled);
  EXPECT_EQ(calls, 3);
}

TEST(ChunkFile, Errors) {
  TempDir dir;
  P2PCDN_EXPECT_ERRC(ChunkManager::chunkFile(dir / "missing.bin", options()), Errc::kNotFound);
  P2PCDN_EXPECT_ERRC(ChunkManager::chunkFile(dir.path(), options()), Errc::kInvalidArgument);
  // Too many chunks is refused before reading (a sparse file costs no disk).
  auto big = dir / "sparse.bin";
  writeFile(big, {});
  std::filesystem::resize_file(big, std::uint64_t{kMaxChunkCount} * kCs + 1);
  P2PCDN_EXPECT_ERRC(ChunkManager::chunkFile(big, options()), Errc::kTooLarge);
  ChunkOptions bad = options();
  bad.chunkSize = 1000;
  writeFile(dir / "small.bin", test::randomBytes(10, 1));
  P2PCDN_EXPECT_ERRC(ChunkManager::chunkFile(dir / "small.bin", bad), Errc::kInvalidArgument);
}

TEST(ReadChunks, ReproducesTheChunks) {
  TempDir dir;
  for (bool encrypted : {false, true}) {
    SCOPED_TRACE(encrypted ? "encrypted" : "plain");
    Bytes data = test::randomBytes(6 * kCs + 100, 3);
    auto path = dir / "file.bin";
    writeFile(path, data);
    std::optional<EncryptionKey> key;
    if (encrypted) key = testKey();
    std::vector<Bytes> first, second;
    auto m = ChunkManager::chunkFile(path, options(key), [&](ChunkIndex, ByteView c) -> Status {
      first.emplace_back(c.begin(), c.end());
      return {};
    });
    ASSERT_TRUE(m.has_value()) << test::describe(m);
    std::uint64_t lastDone = 0;
    P2PCDN_ASSERT_OK(ChunkManager::readChunks(
        path, *m, key,
        [&](ChunkIndex i, ByteView c) -> Status {
          EXPECT_EQ(i, second.size());
          second.emplace_back(c.begin(), c.end());
          return {};
        },
        [&](std::uint64_t done, std::uint64_t) { lastDone = done; }));
    EXPECT_EQ(second, first);
    EXPECT_EQ(lastDone, data.size());
  }
}

TEST(ReadChunks, DetectsAFileModifiedAfterHashing) {
  TempDir dir;
  for (bool encrypted : {false, true}) {
    SCOPED_TRACE(encrypted ? "encrypted" : "plain");
    Bytes data = test::randomBytes(4 * kCs, 5);
    auto path = dir / "file.bin";
    writeFile(path, data);
    std::optional<EncryptionKey> key;
    if (encrypted) key = testKey();
    auto m = ChunkManager::chunkFile(path, options(key));
    ASSERT_TRUE(m.has_value()) << test::describe(m);
    auto ignore = [](ChunkIndex, ByteView) -> Status { return {}; };

    // Same size, one byte changed in the third chunk.
    Bytes changed = data;
    changed[2 * kCs + 10] ^= 0xff;
    writeFile(path, changed);
    std::vector<ChunkIndex> seen;
    auto st = ChunkManager::readChunks(path, *m, key, [&](ChunkIndex i, ByteView) -> Status {
      seen.push_back(i);
      return {};
    });
    EXPECT_EQ(codeOf(st), Errc::kIntegrity) << test::describe(st);
    // The changed chunk never reached the visitor.
    EXPECT_EQ(seen, (std::vector<ChunkIndex>{0, 1}));

    // Grown and shrunk.
    Bytes grown = data;
    grown.push_back(1);
    writeFile(path, grown);
    P2PCDN_EXPECT_ERRC(ChunkManager::readChunks(path, *m, key, ignore), Errc::kIntegrity);
    writeFile(path, ByteView(data).first(data.size() - 1));
    P2PCDN_EXPECT_ERRC(ChunkManager::readChunks(path, *m, key, ignore), Errc::kIntegrity);

    // Restored: fine again.
    writeFile(path, data);
    P2PCDN_EXPECT_OK(ChunkManager::readChunks(path, *m, key, ignore));
    if (encrypted) {
      P2PCDN_EXPECT_ERRC(ChunkManager::readChunks(path, *m, std::nullopt, ignore), Errc::kInvalidArgument);
      P2PCDN_EXPECT_ERRC(ChunkManager::readChunks(path, *m, testKey(2), ignore), Errc::kIntegrity);
    }
    std::filesystem::remove(path);
    P2PCDN_EXPECT_ERRC(ChunkManager::readChunks(path, *m, key, ignore), Errc::kNotFound);
  }
}

// ---------------------------------------------------------------- export

TEST(ExportFile, WritesIdenticalBytes) {
  TempDir dir;
  for (bool encrypted : {false, true}) {
    for (std::size_t size : sizes()) {
      SCOPED_TRACE((encrypted ? "encrypted, size " : "plain, size ") + std::to_string(size));
      Bytes data = test::randomBytes(size, static_cast<std::uint32_t>(size + 7));
      std::optional<EncryptionKey> key;
      if (encrypted) key = testKey();
      auto cf = ChunkManager::chunkBytes(data, options(key));
      ASSERT_TRUE(cf.has_value());
      auto out = dir / "out.bin";
      std::uint64_t lastDone = 0;
      P2PCDN_ASSERT_OK(ChunkManager::exportFile(cf->manifest, sourceOf(cf->chunks), out, key,
                                                [&](std::uint64_t d, std::uint64_t t) {
                                                  EXPECT_EQ(t, size);
                                                  lastDone = d;
                                                }));
      EXPECT_EQ(readFile(out), data);
      EXPECT_EQ(std::filesystem::file_size(out), size);
      EXPECT_EQ(lastDone, size);
      EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});  // no leftover .part- file
      std::filesystem::remove(out);
    }
  }
}

void expectNothingWritten(const TempDir& dir) {
  EXPECT_TRUE(dir.entries().empty()) << "left behind: " << (dir.entries().empty() ? "" : dir.entries()[0]);
}

TEST(ExportFile, CorruptChunkLeavesNoFile) {
  TempDir dir;
  for (bool encrypted : {false, true}) {
    SCOPED_TRACE(encrypted ? "encrypted" : "plain");
    std::optional<EncryptionKey> key;
    if (encrypted) key = testKey();
    auto cf = ChunkManager::chunkBytes(test::randomBytes(5 * kCs, 9), options(key));
    ASSERT_TRUE(cf.has_value());
    auto out = dir / "out.bin";
    for (ChunkIndex bad : {0u, 2u, 4u}) {
      SCOPED_TRACE(bad);
      std::vector<Bytes> chunks = cf->chunks;
      chunks[bad][chunks[bad].size() / 2] ^= 0x10;
      P2PCDN_EXPECT_ERRC(ChunkManager::exportFile(cf->manifest, sourceOf(chunks), out, key), Errc::kIntegrity);
      EXPECT_FALSE(std::filesystem::exists(out));
      expectNothingWritten(dir);
      // Wrong length from the source.
      chunks = cf->chunks;
      chunks[bad].pop_back();
      P2PCDN_EXPECT_ERRC(ChunkManager::exportFile(cf->manifest, sourceOf(chunks), out, key), Errc::kIntegrity);
      expectNothingWritten(dir);
    }
    // A source that fails passes its error through.
    int calls = 0;
    ChunkSource failing = [&](ChunkIndex i) -> Result<Bytes> {
      ++calls;
      if (i == 3) return fail(Errc::kNotFound, "source", "gone");
      return cf->chunks[i];
    };
    P2PCDN_EXPECT_ERRC(ChunkManager::exportFile(cf->manifest, failing, out, key), Errc::kNotFound);
    EXPECT_EQ(calls, 4);
    expectNothingWritten(dir);
  }
}

TEST(ExportFile, EncryptedNeedsTheRightKey) {
  TempDir dir;
  auto cf = ChunkManager::chunkBytes(test::randomBytes(3 * kCs, 2), options(testKey(1)));
  ASSERT_TRUE(cf.has_value());
  auto out = dir / "out.bin";
  P2PCDN_EXPECT_ERRC(ChunkManager::exportFile(cf->manifest, sourceOf(cf->chunks), out), Errc::kInvalidArgument);
  expectNothingWritten(dir);
  P2PCDN_EXPECT_ERRC(ChunkManager::exportFile(cf->manifest, sourceOf(cf->chunks), out, testKey(2)),
                     Errc::kIntegrity);
  expectNothingWritten(dir);
}

TEST(ExportFile, BadManifestOrDestination) {
  TempDir dir;
  auto cf = ChunkManager::chunkBytes(test::randomBytes(2 * kCs, 2), options());
  ASSERT_TRUE(cf.has_value());
  Manifest bad = cf->manifest;
  bad.chunkHashes.pop_back();
  P2PCDN_EXPECT_ERRC(ChunkManager::exportFile(bad, sourceOf(cf->chunks), dir / "out.bin"), Errc::kMalformed);
  expectNothingWritten(dir);
  P2PCDN_EXPECT_ERRC(ChunkManager::exportFile(cf->manifest, sourceOf(cf->chunks), dir / "no" / "such" / "dir.bin"),
                     Errc::kIo);
  expectNothingWritten(dir);
}

TEST(ExportFile, ReplacesAnExistingFileOnlyOnSuccess) {
  TempDir dir;
  auto out = dir / "out.bin";
  Bytes old = test::randomBytes(100, 1);
  writeFile(out, old);
  auto cf = ChunkManager::chunkBytes(test::randomBytes(2 * kCs, 2), options());
  ASSERT_TRUE(cf.has_value());
  std::vector<Bytes> corrupt = cf->chunks;
  corrupt[1][0] ^= 1;
  P2PCDN_EXPECT_ERRC(ChunkManager::exportFile(cf->manifest, sourceOf(corrupt), out), Errc::kIntegrity);
  EXPECT_EQ(readFile(out), old);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
  P2PCDN_EXPECT_OK(ChunkManager::exportFile(cf->manifest, sourceOf(cf->chunks), out));
  auto data = ChunkManager::reassembleFile(cf->chunks, cf->manifest);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(readFile(out), *data);
}

// ---------------------------------------------------------------- MIME

TEST(GuessMimeType, KnownAndUnknown) {
  EXPECT_EQ(ChunkManager::guessMimeType("movie.mp4"), "video/mp4");
  EXPECT_EQ(ChunkManager::guessMimeType("MOVIE.MP4"), "video/mp4");
  EXPECT_EQ(ChunkManager::guessMimeType("a.b.webm"), "video/webm");
  EXPECT_EQ(ChunkManager::guessMimeType("song.mp3"), "audio/mpeg");
  EXPECT_EQ(ChunkManager::guessMimeType("page.htm"), "text/html");
  EXPECT_EQ(ChunkManager::guessMimeType("x.json"), "application/json");
  EXPECT_EQ(ChunkManager::guessMimeType("pic.JPeG"), "image/jpeg");
  EXPECT_EQ(ChunkManager::guessMimeType("archive.tar.gz"), "application/gzip");
  EXPECT_EQ(ChunkManager::guessMimeType("noextension"), "application/octet-stream");
  EXPECT_EQ(ChunkManager::guessMimeType("trailingdot."), "application/octet-stream");
  EXPECT_EQ(ChunkManager::guessMimeType(".mp4x"), "application/octet-stream");
  EXPECT_EQ(ChunkManager::guessMimeType(""), "application/octet-stream");
  EXPECT_EQ(ChunkManager::guessMimeType("file.exe"), "application/octet-stream");
  // Every guess is a valid manifest MIME type.
  for (const char* n : {"a.mp4", "a.svg", "a.iso", "a.opus", "a.flac", "a.txt", "a.zip"}) {
    Manifest m = test::sampleManifest();
    m.mimeType = ChunkManager::guessMimeType(n);
    EXPECT_NE(m.mimeType, "application/octet-stream") << n;
    P2PCDN_EXPECT_OK(validateManifest(m));
  }
}

}  // namespace
}  // namespace p2pcdn
