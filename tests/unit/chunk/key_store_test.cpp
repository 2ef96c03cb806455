// The key files of encrypted files (<home>/keys/<id>.key): private from the
// moment they exist, complete or absent, never replaced.
#include "chunk/key_store.hpp"

#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <fstream>

#include "core/hex.hpp"
#include "test_support.hpp"

namespace p2pcdn {
namespace {

using test::TempDir;

FileId idOf(std::uint8_t seed) {
  FileId id;
  id.bytes.fill(seed);
  return id;
}

EncryptionKey keyOf(std::uint8_t seed) {
  EncryptionKey k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(seed + i);
  return k;
}

unsigned modeOf(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

std::string contents(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Sets the umask for one scope.
struct Umask {
  explicit Umask(mode_t m) : old(::umask(m)) {}
  ~Umask() { ::umask(old); }
  mode_t old;
};

TEST(KeyStore, KeyFilesArePrivateWhateverTheUmask) {
  for (mode_t mask : {mode_t{022}, mode_t{0}}) {
    SCOPED_TRACE(mask);
    TempDir home;
    Umask um(mask);
    const FileId id = idOf(1);
    P2PCDN_ASSERT_OK(writeKeyFile(home.path(), id, keyOf(7)));
    EXPECT_EQ(modeOf(keyFilePath(home.path(), id)), 0600u);
    EXPECT_EQ(modeOf(home.path() / "keys"), 0700u);
    auto k = readKeyFile(home.path(), id);
    ASSERT_TRUE(k.has_value()) << test::describe(k);
    EXPECT_EQ(*k, keyOf(7));
    EXPECT_EQ(contents(keyFilePath(home.path(), id)), toHex(keyOf(7)) + "\n");
    // Nothing else is left in the folder (no temporary file).
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(home.path() / "keys")) names.push_back(e.path().filename().string());
    EXPECT_EQ(names, std::vector<std::string>{id.hex() + ".key"});
  }
}

// Saving the same key again is harmless; a different key (or a file that is
// not a key) is refused and the existing file is left exactly as it was.
TEST(KeyStore, AnExistingKeyFileIsNeverReplaced) {
  TempDir home;
  const FileId id = idOf(2);
  const auto path = keyFilePath(home.path(), id);
  P2PCDN_ASSERT_OK(writeKeyFile(home.path(), id, keyOf(1)));
  const std::string before = contents(path);
  P2PCDN_EXPECT_OK(writeKeyFile(home.path(), id, keyOf(1)));
  P2PCDN_EXPECT_ERRC(writeKeyFile(home.path(), id, keyOf(2)), Errc::kInvalidArgument);
  EXPECT_EQ(contents(path), before);
  EXPECT_EQ(*readKeyFile(home.path(), id), keyOf(1));

  const FileId other = idOf(3);
  {
    std::ofstream f(keyFilePath(home.path(), other));
    f << "not a key\n";
  }
  P2PCDN_EXPECT_ERRC(writeKeyFile(home.path(), other, keyOf(1)), Errc::kInvalidArgument);
  EXPECT_EQ(contents(keyFilePath(home.path(), other)), "not a key\n");
  P2PCDN_EXPECT_ERRC(readKeyFile(home.path(), other), Errc::kMalformed);
  P2PCDN_EXPECT_ERRC(readKeyFile(home.path(), idOf(4)), Errc::kNotFound);
}

// A write that fails part-way (here: a file size limit of 0 bytes) leaves no
// key file, neither empty nor partial.
TEST(KeyStore, AFailedWriteLeavesNoKeyFile) {
  TempDir home;
  const FileId id = idOf(5);
  std::filesystem::create_directories(home.path() / "keys");
  auto oldHandler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit none = old;
  none.rlim_cur = 0;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &none), 0);
  Status st = writeKeyFile(home.path(), id, keyOf(9));
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, oldHandler);
  P2PCDN_EXPECT_ERRC(st, Errc::kIo);
  EXPECT_FALSE(std::filesystem::exists(keyFilePath(home.path(), id)));
  EXPECT_TRUE(std::filesystem::is_empty(home.path() / "keys"));
}

}  // namespace
}  // namespace p2pcdn
