// BLAKE3 against the official test vectors (tests/data/blake3_test_vectors.json).
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/blake3.hpp"
#include "core/hex.hpp"
#include "test_support.hpp"

namespace p2pcdn {
namespace {

struct Vector {
  std::size_t inputLen = 0;
  std::string hash, keyedHash, deriveKey;  // hex, 131 bytes each
};

struct Vectors {
  std::array<std::uint8_t, 32> key{};
  std::string context;
  std::vector<Vector> cases;
};

const Vectors& vectors() {
  static const Vectors v = [] {
    Vectors out;
    std::ifstream in(std::string(P2PCDN_TEST_DATA_DIR) + "/blake3_test_vectors.json");
    EXPECT_TRUE(in.good()) << "cannot open the BLAKE3 test vectors";
    std::stringstream ss;
    ss << in.rdbuf();
    auto j = nlohmann::json::parse(ss.str());
    std::string key = j.at("key").get<std::string>();
    EXPECT_EQ(key.size(), out.key.size());
    std::copy_n(key.begin(), std::min(key.size(), out.key.size()), out.key.begin());
    out.context = j.at("context_string").get<std::string>();
    for (const auto& c : j.at("cases")) {
      out.cases.push_back({c.at("input_len").get<std::size_t>(), c.at("hash").get<std::string>(),
                           c.at("keyed_hash").get<std::string>(), c.at("derive_key").get<std::string>()});
    }
    return out;
  }();
  return v;
}

Bytes vectorInput(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i % 251);
  return b;
}

std::string xofHex(const Blake3& h, std::size_t n) {
  Bytes out(n);
  h.finalizeXof(out);
  return toHex(out);
}

TEST(Blake3Vectors, FileHasManyCases) {
  // The official file has 22 cases from 0 bytes to 102400 bytes.
  ASSERT_GE(vectors().cases.size(), 22u);
  EXPECT_EQ(vectors().cases.front().inputLen, 0u);
  EXPECT_EQ(vectors().cases.back().inputLen, 102400u);
}

TEST(Blake3Vectors, DefaultHash) {
  for (const Vector& v : vectors().cases) {
    SCOPED_TRACE("input_len=" + std::to_string(v.inputLen));
    ASSERT_EQ(v.hash.size(), 262u);
    Bytes in = vectorInput(v.inputLen);
    EXPECT_EQ(Blake3::hash(in).hex(), v.hash.substr(0, 64));
    Blake3 h;
    h.update(in);
    EXPECT_EQ(h.finalize().hex(), v.hash.substr(0, 64));
  }
}

TEST(Blake3Vectors, ExtendedOutput) {
  for (const Vector& v : vectors().cases) {
    SCOPED_TRACE("input_len=" + std::to_string(v.inputLen));
    Blake3 h;
    h.update(vectorInput(v.inputLen));
    EXPECT_EQ(xofHex(h, 131), v.hash);
    // A shorter XOF read is a prefix of the longer one.
    EXPECT_EQ(xofHex(h, 7), v.hash.substr(0, 14));
  }
}

TEST(Blake3Vectors, KeyedHash) {
  for (const Vector& v : vectors().cases) {
    SCOPED_TRACE("input_len=" + std::to_string(v.inputLen));
    Blake3 h = Blake3::keyed(vectors().key);
    h.update(vectorInput(v.inputLen));
    EXPECT_EQ(h.finalize().hex(), v.keyedHash.substr(0, 64));
    EXPECT_EQ(xofHex(h, 131), v.keyedHash);
  }
}

TEST(Blake3Vectors, DeriveKey) {
  for (const Vector& v : vectors().cases) {
    SCOPED_TRACE("input_len=" + std::to_string(v.inputLen));
    Blake3 h = Blake3::deriveKey(vectors().context.c_str());
    h.update(vectorInput(v.inputLen));
    EXPECT_EQ(h.finalize().hex(), v.deriveKey.substr(0, 64));
    EXPECT_EQ(xofHex(h, 131), v.deriveKey);
  }
}

TEST(Blake3, IncrementalOddPiecesEqualsOneShot) {
  static constexpr std::size_t kPieces[] = {1, 3, 7, 13, 63, 64, 65, 127, 251, 509, 1023, 1025, 4097};
  for (std::size_t total : {std::size_t{0}, std::size_t{1}, std::size_t{1024}, std::size_t{1025},
                            std::size_t{8193}, std::size_t{100'003}, std::size_t{1'000'000}}) {
    SCOPED_TRACE("total=" + std::to_string(total));
    Bytes in = test::randomBytes(total, static_cast<std::uint32_t>(total));
    Hash oneShot = Blake3::hash(in);
    for (std::size_t start = 0; start < std::size(kPieces); ++start) {
      Blake3 h;
      std::size_t off = 0, k = start;
      while (off < total) {
        std::size_t n = std::min(kPieces[k++ % std::size(kPieces)], total - off);
        h.update(ByteView(in).subspan(off, n));
        off += n;
      }
      h.update({});  // empty updates change nothing
      ASSERT_EQ(h.finalize(), oneShot);
    }
  }
}

TEST(Blake3, IncrementalMatchesVectorsByteByByte) {
  const Vector& v = vectors().cases.back();
  Bytes in = vectorInput(v.inputLen);
  Blake3 h;
  for (std::uint8_t b : in) h.update(ByteView(&b, 1));
  EXPECT_EQ(xofHex(h, 131), v.hash);
}

TEST(Blake3, FinalizeDoesNotConsumeState) {
  Blake3 h;
  h.update(asBytes("hello "));
  Hash first = h.finalize();
  EXPECT_EQ(h.finalize(), first);
  h.update(asBytes("world"));
  EXPECT_EQ(h.finalize(), Blake3::hash(asBytes("hello world")));
  EXPECT_NE(h.finalize(), first);
}

}  // namespace
}  // namespace p2pcdn
