// Shared helpers for the unit tests: deterministic data, manifests with real
// chunk hashes (core only, so they work under emscripten too), temp folders.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/blake3.hpp"
#include "p2pcdn/manifest.hpp"
#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn {

// Readable gtest output for error codes (found by ADL).
inline void PrintTo(Errc e, std::ostream* os) { *os << "Errc(" << errcName(e) << ")"; }
inline void PrintTo(const Hash& h, std::ostream* os) { *os << h.hex(); }

}  // namespace p2pcdn

namespace p2pcdn::test {

// Errc::kOk for a success, else the error's code.
template <class T>
Errc codeOf(const Result<T>& r) {
  return r.has_value() ? Errc::kOk : r.error().code();
}

// Prints the error in a failed expectation.
template <class T>
std::string describe(const Result<T>& r) {
  return r.has_value() ? std::string("ok") : r.error().message();
}

#define P2PCDN_EXPECT_OK(expr)                                   \
  do {                                                           \
    const auto& p2pcdn_r_ = (expr);                              \
    EXPECT_TRUE(p2pcdn_r_.has_value()) << ::p2pcdn::test::describe(p2pcdn_r_); \
  } while (0)
#define P2PCDN_ASSERT_OK(expr)                                   \
  do {                                                           \
    const auto& p2pcdn_r_ = (expr);                              \
    ASSERT_TRUE(p2pcdn_r_.has_value()) << ::p2pcdn::test::describe(p2pcdn_r_); \
  } while (0)
#define P2PCDN_EXPECT_ERRC(expr, code)                                            \
  do {                                                                            \
    const auto& p2pcdn_r_ = (expr);                                               \
    EXPECT_EQ(::p2pcdn::test::codeOf(p2pcdn_r_), (code)) << ::p2pcdn::test::describe(p2pcdn_r_); \
  } while (0)

// Deterministic pseudo-random bytes.
inline Bytes randomBytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng() & 0xff);
  return b;
}

inline Hash hashOf(ByteView b) { return Blake3::hash(b); }

// A plaintext file cut into chunks by hand (independent of ChunkManager).
struct TestFile {
  Manifest manifest;
  FileId id;
  Bytes data;
  std::vector<Bytes> chunks;
};

inline TestFile makeTestFile(std::size_t size, std::uint32_t chunkSize, std::uint32_t seed,
                             std::string name = "file.bin") {
  TestFile f;
  f.data = randomBytes(size, seed);
  f.manifest.name = std::move(name);
  f.manifest.size = size;
  f.manifest.chunkSize = chunkSize;
  for (std::size_t off = 0; off < size; off += chunkSize) {
    std::size_t n = std::min<std::size_t>(chunkSize, size - off);
    Bytes c(f.data.begin() + static_cast<std::ptrdiff_t>(off),
            f.data.begin() + static_cast<std::ptrdiff_t>(off + n));
    f.manifest.chunkHashes.push_back(hashOf(c));
    f.chunks.push_back(std::move(c));
  }
  auto id = manifestId(f.manifest);
  EXPECT_TRUE(id.has_value()) << describe(id);
  if (id) f.id = *id;
  return f;
}

// A valid manifest whose hashes are arbitrary (for codec tests).
inline Manifest sampleManifest(bool encrypted = false, std::uint64_t size = 5000, std::uint32_t chunkSize = 1024) {
  Manifest m;
  m.name = "holiday video.mp4";
  m.size = size;
  m.mimeType = "video/mp4";
  m.chunkSize = chunkSize;
  if (encrypted) {
    EncryptionInfo e;
    for (std::size_t i = 0; i < e.salt.size(); ++i) e.salt[i] = static_cast<std::uint8_t>(0xa0 + i);
    m.encryption = e;
  }
  std::uint64_t n = chunkCountFor(size, chunkSize);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint8_t seed[8];
    for (int k = 0; k < 8; ++k) seed[k] = static_cast<std::uint8_t>(i >> (8 * k));
    m.chunkHashes.push_back(hashOf(seed));
  }
  return m;
}

// A fresh, empty folder removed (with its contents) at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<unsigned> counter{0};
    std::random_device rd;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string tag = info ? std::string(info->test_suite_name()) + "." + info->name() : "p2pcdn";
    for (char& c : tag) {
      if (c == '/' || c == ' ') c = '_';
    }
    path_ = std::filesystem::temp_directory_path() /
            ("p2pcdn-unit-" + tag + "-" + std::to_string(rd()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_)) out.push_back(e.path().filename().string());
    return out;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace p2pcdn::test
