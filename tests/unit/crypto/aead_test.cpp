// AES-256-GCM chunk encryption: a chunk decrypts only with its key, file (salt) and index.
#include "crypto/crypto.hpp"
#include "test_support.hpp"

namespace p2pcdn::crypto {
namespace {

using test::codeOf;

Key fixedKey(std::uint8_t seed) {
  Key k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(seed + 7 * i);
  return k;
}

EncryptionInfo fixedInfo(std::uint8_t seed) {
  EncryptionInfo e;
  for (std::size_t i = 0; i < e.salt.size(); ++i) e.salt[i] = static_cast<std::uint8_t>(seed ^ (3 * i));
  return e;
}

Bytes seal(const Key& k, const EncryptionInfo& e, ChunkIndex i, ByteView plain) {
  auto r = encryptChunk(k, e, i, plain);
  EXPECT_TRUE(r.has_value()) << test::describe(r);
  return r ? *r : Bytes{};
}

TEST(Aead, RoundTripAndLength) {
  Key k = fixedKey(1);
  EncryptionInfo e = fixedInfo(2);
  for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 1000u, 1024u, 65536u, 65537u}) {
    SCOPED_TRACE(n);
    Bytes plain = test::randomBytes(n, static_cast<std::uint32_t>(n));
    Bytes sealed = seal(k, e, 3, plain);
    EXPECT_EQ(sealed.size(), n + kAeadTagSize);
    if (n >= 16) {
      EXPECT_NE(Bytes(sealed.begin(), sealed.begin() + 16), Bytes(plain.begin(), plain.begin() + 16));
    }
    auto back = decryptChunk(k, e, 3, sealed);
    ASSERT_TRUE(back.has_value()) << test::describe(back);
    EXPECT_EQ(*back, plain);
  }
}

TEST(Aead, EmptyChunk) {
  Key k = fixedKey(1);
  EncryptionInfo e = fixedInfo(2);
  Bytes sealed = seal(k, e, 0, {});
  ASSERT_EQ(sealed.size(), kAeadTagSize);
  auto back = decryptChunk(k, e, 0, sealed);
  ASSERT_TRUE(back.has_value()) << test::describe(back);
  EXPECT_TRUE(back->empty());
  sealed[0] ^= 1;
  P2PCDN_EXPECT_ERRC(decryptChunk(k, e, 0, sealed), Errc::kIntegrity);
  P2PCDN_EXPECT_ERRC(decryptChunk(k, e, 1, seal(k, e, 0, {})), Errc::kIntegrity);
}

TEST(Aead, Deterministic) {
  Key k = fixedKey(9);
  EncryptionInfo e = fixedInfo(4);
  Bytes plain = test::randomBytes(4096, 1);
  EXPECT_EQ(seal(k, e, 5, plain), seal(k, e, 5, plain));
  // Every input changes the output.
  Bytes base = seal(k, e, 5, plain);
  EXPECT_NE(seal(k, e, 6, plain), base);
  EXPECT_NE(seal(fixedKey(10), e, 5, plain), base);
  EXPECT_NE(seal(k, fixedInfo(5), 5, plain), base);
  // Same nonce prefix (first 8 salt bytes) but different salt: still different keys.
  EncryptionInfo e2 = e;
  e2.salt[31] ^= 1;
  EXPECT_NE(seal(k, e2, 5, plain), base);
}

TEST(Aead, EveryTamperedByteIsDetected) {
  Key k = fixedKey(1);
  EncryptionInfo e = fixedInfo(2);
  Bytes plain = test::randomBytes(100, 2);
  Bytes sealed = seal(k, e, 7, plain);
  ASSERT_EQ(sealed.size(), 116u);
  for (std::size_t pos = 0; pos < sealed.size(); ++pos) {
    for (std::uint8_t bit : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
      Bytes bad = sealed;
      bad[pos] ^= bit;
      ASSERT_EQ(codeOf(decryptChunk(k, e, 7, bad)), Errc::kIntegrity) << "byte " << pos;
    }
  }
}

TEST(Aead, TruncatedOrExtended) {
  Key k = fixedKey(1);
  EncryptionInfo e = fixedInfo(2);
  Bytes sealed = seal(k, e, 0, test::randomBytes(64, 3));
  for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 79u}) {
    SCOPED_TRACE(n);
    P2PCDN_EXPECT_ERRC(decryptChunk(k, e, 0, ByteView(sealed).first(n)), Errc::kIntegrity);
  }
  Bytes longer = sealed;
  longer.push_back(0);
  P2PCDN_EXPECT_ERRC(decryptChunk(k, e, 0, longer), Errc::kIntegrity);
}

TEST(Aead, WrongKeyIndexOrFile) {
  Key k = fixedKey(1);
  EncryptionInfo e = fixedInfo(2);
  Bytes c0 = seal(k, e, 0, test::randomBytes(1024, 10));
  Bytes c1 = seal(k, e, 1, test::randomBytes(1024, 11));
  P2PCDN_EXPECT_OK(decryptChunk(k, e, 0, c0));
  P2PCDN_EXPECT_OK(decryptChunk(k, e, 1, c1));
  // Wrong key.
  P2PCDN_EXPECT_ERRC(decryptChunk(fixedKey(2), e, 0, c0), Errc::kIntegrity);
  Key oneBit = k;
  oneBit[31] ^= 0x40;
  P2PCDN_EXPECT_ERRC(decryptChunk(oneBit, e, 0, c0), Errc::kIntegrity);
  // Chunks swapped.
  P2PCDN_EXPECT_ERRC(decryptChunk(k, e, 1, c0), Errc::kIntegrity);
  P2PCDN_EXPECT_ERRC(decryptChunk(k, e, 0, c1), Errc::kIntegrity);
  P2PCDN_EXPECT_ERRC(decryptChunk(k, e, 0x01000000, c0), Errc::kIntegrity);
  // Another file (different salt), same key and index.
  P2PCDN_EXPECT_ERRC(decryptChunk(k, fixedInfo(3), 0, c0), Errc::kIntegrity);
  EncryptionInfo lastByte = e;
  lastByte.salt[31] ^= 1;
  P2PCDN_EXPECT_ERRC(decryptChunk(k, lastByte, 0, c0), Errc::kIntegrity);
}

TEST(Aead, LimitsAndAlgorithm) {
  Key k = fixedKey(1);
  EncryptionInfo e = fixedInfo(2);
  Bytes big(std::size_t{kMaxChunkSize} + 1);
  P2PCDN_EXPECT_ERRC(encryptChunk(k, e, 0, big), Errc::kTooLarge);
  Bytes bigSealed(std::size_t{kMaxChunkSize} + 1 + kAeadTagSize);
  P2PCDN_EXPECT_ERRC(decryptChunk(k, e, 0, bigSealed), Errc::kTooLarge);
  Bytes max(kMaxChunkSize, 0x5a);
  Bytes sealed = seal(k, e, 0, max);
  ASSERT_EQ(sealed.size(), std::size_t{kMaxChunkSize} + kAeadTagSize);
  auto back = decryptChunk(k, e, 0, sealed);
  ASSERT_TRUE(back.has_value()) << test::describe(back);
  EXPECT_EQ(*back, max);

  EncryptionInfo none = e;
  none.algorithm = EncryptionAlgorithm::kNone;
  P2PCDN_EXPECT_ERRC(encryptChunk(k, none, 0, Bytes(10)), Errc::kUnsupported);
  P2PCDN_EXPECT_ERRC(decryptChunk(k, none, 0, Bytes(26)), Errc::kUnsupported);
}

TEST(Random, KeysAndBytesDiffer) {
  auto a = randomKey();
  auto b = randomKey();
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_NE(*a, *b);
  EXPECT_NE(*a, Key{});
  Bytes x(64), y(64);
  P2PCDN_ASSERT_OK(randomBytes(x));
  P2PCDN_ASSERT_OK(randomBytes(y));
  EXPECT_NE(x, y);
  P2PCDN_EXPECT_OK(randomBytes({}));
}

}  // namespace
}  // namespace p2pcdn::crypto
