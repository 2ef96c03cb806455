// The manifest's canonical binary codec, its validation and chunk verification.
#include <random>

#include "core/byte_io.hpp"
#include "test_support.hpp"

namespace p2pcdn {
namespace {

using test::codeOf;
using test::sampleManifest;

// Fields of an encoding, written without any validation, to craft bad inputs.
struct RawManifest {
  std::array<std::uint8_t, 4> magic{'P', '2', 'P', 'M'};
  std::uint8_t version = 2;
  std::uint8_t flags = 0;
  std::uint32_t chunkSize = 1024;
  std::uint64_t size = 0;
  std::string name = "a";
  std::string mime = "application/octet-stream";
  std::uint8_t algorithm = 1;
  std::array<std::uint8_t, kEncryptionSaltSize> salt{};
  std::uint32_t count = 0;
  std::vector<Hash> hashes;

  static RawManifest from(const Manifest& m) {
    RawManifest r;
    r.version = m.version;
    r.flags = m.encryption ? 1 : 0;
    r.chunkSize = m.chunkSize;
    r.size = m.size;
    r.name = m.name;
    r.mime = m.mimeType;
    if (m.encryption) {
      r.algorithm = static_cast<std::uint8_t>(m.encryption->algorithm);
      r.salt = m.encryption->salt;
    }
    r.count = m.chunkCount();
    r.hashes = m.chunkHashes;
    return r;
  }

  Bytes encode() const {
    Bytes out;
    ByteWriter w(out);
    w.raw(magic);
    w.u8(version);
    w.u8(flags);
    w.u32(chunkSize);
    w.u64(size);
    w.u8(static_cast<std::uint8_t>(name.size()));
    w.str(name);
    w.u8(static_cast<std::uint8_t>(mime.size()));
    w.str(mime);
    if (flags & 1) {
      w.u8(algorithm);
      w.raw(salt);
    }
    w.u32(count);
    for (const Hash& h : hashes) w.raw(h.bytes);
    return out;
  }
};

Bytes mustEncode(const Manifest& m) {
  auto e = encodeManifest(m);
  EXPECT_TRUE(e.has_value()) << test::describe(e);
  return e ? *e : Bytes{};
}

// ---------------------------------------------------------------- layout

TEST(ManifestCodec, LayoutMatchesTheDocumentedFormat) {
  for (bool encrypted : {false, true}) {
    SCOPED_TRACE(encrypted ? "encrypted" : "plain");
    Manifest m = sampleManifest(encrypted);
    Bytes enc = mustEncode(m);
    // An independent writer of the same layout produces the same bytes.
    EXPECT_EQ(enc, RawManifest::from(m).encode());
    std::size_t want = 4 + 1 + 1 + 4 + 8 + 1 + m.name.size() + 1 + m.mimeType.size() +
                       (encrypted ? 1 + kEncryptionSaltSize : 0) + 4 + m.chunkCount() * Hash::kSize;
    EXPECT_EQ(enc.size(), want);
    ASSERT_GE(enc.size(), 10u);
    EXPECT_EQ(enc[0], 'P');
    EXPECT_EQ(enc[1], '2');
    EXPECT_EQ(enc[2], 'P');
    EXPECT_EQ(enc[3], 'M');
    EXPECT_EQ(enc[4], 2);                    // version
    EXPECT_EQ(enc[5], encrypted ? 1 : 0);    // flags
    EXPECT_EQ(enc[6], 0);                    // chunk size, big-endian: 1024 = 00 00 04 00
    EXPECT_EQ(enc[8], 4);
    EXPECT_EQ(enc[17], 5000 & 0xff);         // size, big-endian, ends at offset 17
    EXPECT_EQ(enc[18], m.name.size());       // name length right after it
    EXPECT_EQ(std::string(enc.begin() + 19, enc.begin() + 19 + static_cast<std::ptrdiff_t>(m.name.size())), m.name);
    EXPECT_EQ(enc[19 + m.name.size()], m.mimeType.size());
  }
}

// Version 1 carried a creation time inside the hashed bytes; its manifests are
// refused with an error that says why, not misread as version 2.
TEST(ManifestCodec, Version1IsRefusedWithAClearError) {
  Bytes v1 = mustEncode(sampleManifest());
  v1[4] = 1;
  v1.insert(v1.begin() + 18, 8, 0x11);  // createdAt after size, as version 1 had it
  auto r = decodeManifest(v1);
  P2PCDN_EXPECT_ERRC(r, Errc::kUnsupported);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().detail().find("version 1"), std::string::npos) << r.error().message();
  Manifest m = sampleManifest();
  m.version = 1;
  P2PCDN_EXPECT_ERRC(encodeManifest(m), Errc::kUnsupported);
}

TEST(ManifestCodec, GoldenIdIsStable) {
  // Pins the format: a change to the encoding changes every file id.
  Manifest m = sampleManifest(false);
  auto id = manifestId(m);
  ASSERT_TRUE(id.has_value());
  auto enc = encodeManifest(m);
  ASSERT_TRUE(enc.has_value());
  EXPECT_EQ(*id, manifestId(*enc));
  EXPECT_EQ(*id, Blake3::hash(*enc));
  EXPECT_EQ(*manifestId(m), *id);  // deterministic
  // Computed independently: the documented layout in Python, hashed by b3sum.
  EXPECT_EQ(id->hex(), "9b835a13a69db06753091713cd25b86144f09da487b14b4feffd8711c4b745a7");
}

TEST(ManifestCodec, IdChangesWithEveryField) {
  Manifest base = sampleManifest(true);
  FileId id = *manifestId(base);
  std::vector<Manifest> variants(7, base);
  variants[0].name = "holiday video2.mp4";
  variants[1].mimeType = "video/webm";
  variants[2].size -= 1;  // same chunk count
  variants[3].chunkHashes[2].bytes[31] ^= 1;
  variants[4].encryption->salt[31] ^= 1;
  variants[5].encryption.reset();
  variants[6].chunkSize = 2048;
  variants[6].chunkHashes.resize(3);
  for (std::size_t i = 0; i < variants.size(); ++i) {
    SCOPED_TRACE(i);
    auto other = manifestId(variants[i]);
    ASSERT_TRUE(other.has_value()) << test::describe(other);
    EXPECT_NE(*other, id);
  }
}

// ---------------------------------------------------------------- round trips

TEST(ManifestCodec, RoundTripIsCanonical) {
  std::vector<Manifest> cases = {sampleManifest(false), sampleManifest(true), sampleManifest(false, 0),
                                 sampleManifest(true, 0), sampleManifest(false, 1, kMinChunkSize),
                                 sampleManifest(false, 3 * std::uint64_t{kMaxChunkSize}, kMaxChunkSize)};
  Manifest unicode = sampleManifest(false);
  unicode.name = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x8e\xac \xc3\xa9t\xc3\xa9.mkv";  // 日本語 🎬 été.mkv
  cases.push_back(unicode);
  Manifest longName = sampleManifest(true);
  longName.name = std::string(kMaxNameBytes, 'n');
  longName.mimeType = std::string(kMaxMimeBytes, 'm');
  cases.push_back(longName);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    Bytes enc = mustEncode(cases[i]);
    auto dec = decodeManifest(enc);
    ASSERT_TRUE(dec.has_value()) << test::describe(dec);
    EXPECT_EQ(*dec, cases[i]);
    EXPECT_EQ(mustEncode(*dec), enc);
  }
}

TEST(ManifestCodec, EmptyFileHasNoChunks) {
  Manifest m = sampleManifest(false, 0);
  EXPECT_EQ(m.chunkCount(), 0u);
  P2PCDN_EXPECT_OK(validateManifest(m));
  m.chunkHashes.push_back(Hash{});
  P2PCDN_EXPECT_ERRC(validateManifest(m), Errc::kMalformed);
}

// ---------------------------------------------------------------- rejections

TEST(ManifestCodec, EveryTruncationIsMalformed) {
  for (bool encrypted : {false, true}) {
    SCOPED_TRACE(encrypted ? "encrypted" : "plain");
    Bytes enc = mustEncode(sampleManifest(encrypted));
    for (std::size_t n = 0; n < enc.size(); ++n) {
      Bytes prefix(enc.begin(), enc.begin() + static_cast<std::ptrdiff_t>(n));
      auto r = decodeManifest(prefix);
      ASSERT_EQ(codeOf(r), Errc::kMalformed) << "prefix of " << n << " bytes: " << test::describe(r);
    }
  }
}

TEST(ManifestCodec, BadMagic) {
  Bytes enc = mustEncode(sampleManifest());
  for (std::size_t i = 0; i < 4; ++i) {
    Bytes b = enc;
    b[i] ^= 0x20;
    P2PCDN_EXPECT_ERRC(decodeManifest(b), Errc::kMalformed);
  }
}

TEST(ManifestCodec, UnknownVersionIsUnsupported) {
  for (std::uint8_t v : {std::uint8_t{0}, std::uint8_t{1}, std::uint8_t{3}, std::uint8_t{255}}) {
    SCOPED_TRACE(int{v});
    RawManifest r = RawManifest::from(sampleManifest());
    r.version = v;
    P2PCDN_EXPECT_ERRC(decodeManifest(r.encode()), Errc::kUnsupported);
    Manifest m = sampleManifest();
    m.version = v;
    P2PCDN_EXPECT_ERRC(encodeManifest(m), Errc::kUnsupported);
  }
}

TEST(ManifestCodec, UnknownFlagBits) {
  for (std::uint8_t f : {std::uint8_t{0x02}, std::uint8_t{0x03}, std::uint8_t{0x80}, std::uint8_t{0xff}}) {
    SCOPED_TRACE(int{f});
    RawManifest r = RawManifest::from(sampleManifest(true));
    r.flags = f;
    P2PCDN_EXPECT_ERRC(decodeManifest(r.encode()), Errc::kMalformed);
  }
}

TEST(ManifestCodec, UnknownEncryptionAlgorithmIsUnsupported) {
  for (std::uint8_t a : {std::uint8_t{0}, std::uint8_t{2}, std::uint8_t{255}}) {
    RawManifest r = RawManifest::from(sampleManifest(true));
    r.algorithm = a;
    P2PCDN_EXPECT_ERRC(decodeManifest(r.encode()), Errc::kUnsupported);
  }
  Manifest m = sampleManifest(true);
  m.encryption->algorithm = EncryptionAlgorithm::kNone;
  P2PCDN_EXPECT_ERRC(encodeManifest(m), Errc::kUnsupported);
}

TEST(ManifestCodec, TrailingBytes) {
  for (std::size_t extra : {1u, 31u, 32u, 33u}) {
    Bytes b = mustEncode(sampleManifest(true));
    b.insert(b.end(), extra, 0);
    P2PCDN_EXPECT_ERRC(decodeManifest(b), Errc::kMalformed);
  }
}

TEST(ManifestCodec, ChunkCountMismatch) {
  Manifest m = sampleManifest();  // 5000 bytes at 1 KiB: 5 chunks
  ASSERT_EQ(m.chunkCount(), 5u);
  for (std::size_t n : {0u, 4u, 6u}) {
    SCOPED_TRACE(n);
    RawManifest r = RawManifest::from(m);
    r.hashes.resize(n);
    r.count = static_cast<std::uint32_t>(n);  // consistent with the bytes, not with the size
    P2PCDN_EXPECT_ERRC(decodeManifest(r.encode()), Errc::kMalformed);
    Manifest bad = m;
    bad.chunkHashes.resize(n);
    P2PCDN_EXPECT_ERRC(encodeManifest(bad), Errc::kMalformed);
    // Count field disagreeing with the hashes that follow.
    RawManifest r2 = RawManifest::from(m);
    r2.count = static_cast<std::uint32_t>(n);
    P2PCDN_EXPECT_ERRC(decodeManifest(r2.encode()), Errc::kMalformed);
  }
}

TEST(ManifestCodec, TooManyChunks) {
  RawManifest r = RawManifest::from(sampleManifest(false, 0));
  r.size = (std::uint64_t{kMaxChunkCount} + 1) * 1024;
  r.count = kMaxChunkCount + 1;  // and no hashes: must be refused before allocating
  P2PCDN_EXPECT_ERRC(decodeManifest(r.encode()), Errc::kTooLarge);
  r.count = 0xffffffffu;
  P2PCDN_EXPECT_ERRC(decodeManifest(r.encode()), Errc::kTooLarge);

  Manifest m = sampleManifest(false, 0);
  m.size = (std::uint64_t{kMaxChunkCount} + 1) * m.chunkSize;
  P2PCDN_EXPECT_ERRC(validateManifest(m), Errc::kTooLarge);
  m.size = ~std::uint64_t{0};
  P2PCDN_EXPECT_ERRC(validateManifest(m), Errc::kTooLarge);
}

TEST(ManifestCodec, MaximumChunkCountIsAccepted) {
  Manifest m = sampleManifest(false, std::uint64_t{kMaxChunkCount} * kMinChunkSize, kMinChunkSize);
  ASSERT_EQ(m.chunkCount(), kMaxChunkCount);
  Bytes enc = mustEncode(m);
  EXPECT_LE(enc.size(), kMaxManifestBytes);
  auto dec = decodeManifest(enc);
  ASSERT_TRUE(dec.has_value()) << test::describe(dec);
  EXPECT_EQ(*dec, m);
}

TEST(ManifestCodec, OversizedInputIsTooLarge) {
  Bytes b(kMaxManifestBytes + 1, 0);
  P2PCDN_EXPECT_ERRC(decodeManifest(b), Errc::kTooLarge);
}

struct NameCase {
  const char* what;
  std::string name;
  bool valid;
};

TEST(ManifestCodec, NameValidation) {
  const std::vector<NameCase> cases = {
      {"empty", "", false},
      {"max length", std::string(kMaxNameBytes, 'x'), true},
      {"one too long", std::string(kMaxNameBytes + 1, 'x'), false},
      {"two-byte", "caf\xc3\xa9", true},
      {"three-byte", "\xe2\x82\xac", true},
      {"four-byte", "\xf0\x9f\x98\x80", true},
      {"U+10FFFF", "\xf4\x8f\xbf\xbf", true},
      {"lone continuation", "a\x80", false},
      {"invalid lead 0xff", "a\xff", false},
      {"invalid lead 0xf8", "\xf8\x88\x80\x80\x80", false},
      {"overlong slash", "\xc0\xaf", false},
      {"overlong 3-byte", "\xe0\x80\xaf", false},
      {"overlong 4-byte", "\xf0\x80\x80\xaf", false},
      {"surrogate", "\xed\xa0\x80", false},
      {"above U+10FFFF", "\xf4\x90\x80\x80", false},
      {"truncated 2-byte", "ab\xc3", false},
      {"truncated 3-byte", "ab\xe2\x82", false},
      {"truncated 4-byte at end", "\xf0\x9f\x98", false},
      {"bad continuation", "\xe2\x28\xa1", false},
      {"newline", "a\nb", false},
      {"tab", "a\tb", false},
      {"NUL", std::string("a\0b", 3), false},
      {"DEL", "a\x7f", false},
      {"C1 control U+0085", "a\xc2\x85", false},
      {"U+00A0 is fine", "a\xc2\xa0", true},
      {"slash and spaces", "dir/file name.txt", true},
  };
  for (const NameCase& c : cases) {
    SCOPED_TRACE(c.what);
    Manifest m = sampleManifest();
    m.name = c.name;
    Errc want = c.valid ? Errc::kOk : Errc::kMalformed;
    P2PCDN_EXPECT_ERRC(validateManifest(m), want);
    P2PCDN_EXPECT_ERRC(encodeManifest(m), want);
    if (c.name.size() <= 255) {
      P2PCDN_EXPECT_ERRC(decodeManifest(RawManifest::from(m).encode()), want);
    }
  }
}

TEST(ManifestCodec, MimeValidation) {
  const std::vector<NameCase> cases = {
      {"empty", "", false},
      {"max", std::string(kMaxMimeBytes, 'a'), true},
      {"too long", std::string(kMaxMimeBytes + 1, 'a'), false},
      {"parameters", "text/plain; charset=utf-8", true},
      {"non-ASCII", "text/pl\xc3\xa4in", false},
      {"control", "text/plain\r\n", false},
      {"DEL", "text/\x7f", false},
  };
  for (const NameCase& c : cases) {
    SCOPED_TRACE(c.what);
    Manifest m = sampleManifest();
    m.mimeType = c.name;
    Errc want = c.valid ? Errc::kOk : Errc::kMalformed;
    P2PCDN_EXPECT_ERRC(encodeManifest(m), want);
    P2PCDN_EXPECT_ERRC(decodeManifest(RawManifest::from(m).encode()), want);
  }
}

TEST(ManifestCodec, ChunkSizeValidation) {
  struct C {
    std::uint32_t size;
    bool valid;
  };
  for (C c : {C{0, false}, C{1, false}, C{512, false}, C{1023, false}, C{1024, true}, C{1536, false},
              C{3 * 1024, false}, C{65536, true}, C{kMaxChunkSize, true}, C{kMaxChunkSize - 1, false},
              C{kMaxChunkSize * 2, false}, C{0x80000000u, false}, C{0xffffffffu, false}}) {
    SCOPED_TRACE(c.size);
    Manifest m = sampleManifest(false, 0);
    m.chunkSize = c.size;
    Errc want = c.valid ? Errc::kOk : Errc::kMalformed;
    P2PCDN_EXPECT_ERRC(encodeManifest(m), want);
    P2PCDN_EXPECT_ERRC(decodeManifest(RawManifest::from(m).encode()), want);
  }
}

TEST(ManifestCodec, RandomByteFlipsNeverCrash) {
  for (bool encrypted : {false, true}) {
    Manifest m = sampleManifest(encrypted);
    Bytes enc = mustEncode(m);
    FileId id = manifestId(enc);
    std::mt19937 rng(encrypted ? 7 : 11);
    int accepted = 0;
    for (int iter = 0; iter < 5000; ++iter) {
      Bytes b = enc;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) {
        b[rng() % b.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
      }
      if (rng() % 8 == 0) b.resize(rng() % (b.size() + 1));
      auto dec = decodeManifest(b);
      if (!dec) continue;
      ++accepted;
      // Anything accepted is canonical and has a different id.
      Bytes again = mustEncode(*dec);
      ASSERT_EQ(again, b);
      if (b != enc) {
        ASSERT_NE(manifestId(b), id);
      }
    }
    // Flips in names and hashes are legitimate manifests.
    EXPECT_GT(accepted, 0);
  }
}

// ---------------------------------------------------------------- sizes and verifyChunk

TEST(Manifest, ChunkLengths) {
  EXPECT_EQ(chunkCountFor(0, 1024), 0u);
  EXPECT_EQ(chunkCountFor(1, 1024), 1u);
  EXPECT_EQ(chunkCountFor(1024, 1024), 1u);
  EXPECT_EQ(chunkCountFor(1025, 1024), 2u);
  EXPECT_EQ(chunkCountFor(5, 0), 0u);

  Manifest m = sampleManifest(false, 5000, 1024);
  EXPECT_EQ(m.plainChunkLength(0), 1024u);
  EXPECT_EQ(m.plainChunkLength(4), 5000u - 4096u);
  EXPECT_EQ(m.plainChunkLength(5), 0u);
  EXPECT_EQ(m.storedChunkLength(4), 904u);
  EXPECT_EQ(m.storedSize(), 5000u);

  Manifest e = sampleManifest(true, 5000, 1024);
  EXPECT_EQ(e.storedChunkLength(0), 1024u + kAeadTagSize);
  EXPECT_EQ(e.storedChunkLength(4), 904u + kAeadTagSize);
  EXPECT_EQ(e.storedSize(), 5000u + 5 * kAeadTagSize);
}

TEST(VerifyChunk, AcceptsOnlyTheRightBytes) {
  test::TestFile f = test::makeTestFile(3000, 1024, 1);
  ASSERT_EQ(f.chunks.size(), 3u);
  for (ChunkIndex i = 0; i < 3; ++i) P2PCDN_EXPECT_OK(verifyChunk(f.manifest, i, f.chunks[i]));

  // Right bytes, wrong index.
  P2PCDN_EXPECT_ERRC(verifyChunk(f.manifest, 1, f.chunks[0]), Errc::kIntegrity);
  // Wrong length: one short, one long, empty, last chunk given a full chunk's length.
  Bytes shortChunk(f.chunks[0].begin(), f.chunks[0].end() - 1);
  P2PCDN_EXPECT_ERRC(verifyChunk(f.manifest, 0, shortChunk), Errc::kIntegrity);
  Bytes longChunk = f.chunks[0];
  longChunk.push_back(0);
  P2PCDN_EXPECT_ERRC(verifyChunk(f.manifest, 0, longChunk), Errc::kIntegrity);
  P2PCDN_EXPECT_ERRC(verifyChunk(f.manifest, 0, {}), Errc::kIntegrity);
  P2PCDN_EXPECT_ERRC(verifyChunk(f.manifest, 2, f.chunks[0]), Errc::kIntegrity);
  // Right length, one bit wrong.
  for (std::size_t pos : {std::size_t{0}, std::size_t{500}, std::size_t{1023}}) {
    Bytes bad = f.chunks[0];
    bad[pos] ^= 0x01;
    P2PCDN_EXPECT_ERRC(verifyChunk(f.manifest, 0, bad), Errc::kIntegrity);
  }
  // Out of range.
  P2PCDN_EXPECT_ERRC(verifyChunk(f.manifest, 3, f.chunks[0]), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(verifyChunk(f.manifest, 0xffffffffu, f.chunks[0]), Errc::kInvalidArgument);
  Manifest empty = sampleManifest(false, 0);
  P2PCDN_EXPECT_ERRC(verifyChunk(empty, 0, {}), Errc::kInvalidArgument);
}

TEST(VerifyChunk, EncryptedLengthIncludesTag) {
  Manifest m = sampleManifest(true, 1500, 1024);
  Bytes stored = test::randomBytes(1024 + kAeadTagSize, 3);
  m.chunkHashes[0] = Blake3::hash(stored);
  P2PCDN_EXPECT_OK(verifyChunk(m, 0, stored));
  stored.resize(1024);
  P2PCDN_EXPECT_ERRC(verifyChunk(m, 0, stored), Errc::kIntegrity);
}

}  // namespace
}  // namespace p2pcdn
