#include "chunk/key_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "core/hex.hpp"

namespace p2pcdn {
namespace {

constexpr std::size_t kMaxKeyFileBytes = 256;  // 64 hex digits and some whitespace

Unexpected ioError(const std::string& op, const std::filesystem::path& p, int err) {
  return fail(err == ENOENT ? Errc::kNotFound : Errc::kIo, op + " " + p.string(), std::strerror(err));
}

Status writeAll(int fd, std::string_view s, const std::filesystem::path& p) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ioError("write", p, errno);
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

// <home>/keys, created 0700 (and made 0700 if it exists).
Status makeKeysDir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ioError("create", dir, errno);
  if (::chmod(dir.c_str(), 0700) != 0) return ioError("chmod", dir, errno);
  return {};
}

Status syncDir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ioError("open", dir, errno);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return ioError("sync", dir, e);
  return {};
}

// Creates "<dir>/.<name>.tmp-<pid>-<n>" with mode 0600; a name left by a dead
// process is skipped.
Result<int> createTemp(const std::filesystem::path& dir, const std::string& name, std::filesystem::path& tmp) {
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp = dir / ("." + name + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    int fd = ::open(tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    if (errno != EEXIST) return ioError("create", tmp, errno);
  }
  return fail(Errc::kIo, "create " + tmp.string(), "no free temporary name");
}

}  // namespace

std::filesystem::path keyFilePath(const std::filesystem::path& home, const FileId& id) {
  return home / "keys" / (id.hex() + ".key");
}

namespace {
Result<EncryptionKey> readSecret(const std::filesystem::path& path);

// Writes a 32-byte secret as 64 hex digits at `path` (in a 0700 folder), 0600
// from creation, complete or absent, never replacing another.
Status writeSecret(const std::filesystem::path& path, const EncryptionKey& key) {
  const std::filesystem::path dir = path.parent_path();
  const std::string op = "save key " + path.string();
  P2PCDN_TRY(makeKeysDir(dir));
  std::filesystem::path tmp;
  auto fd = createTemp(dir, path.filename().string(), tmp);
  if (!fd) return fail(fd.error());
  Status st = writeAll(*fd, toHex(key) + "\n", tmp);
  if (st && ::fsync(*fd) != 0) st = ioError("sync", tmp, errno);
  if (::close(*fd) != 0 && st) st = ioError("close", tmp, errno);
  if (st && ::link(tmp.c_str(), path.c_str()) != 0) {
    if (errno != EEXIST) {
      st = ioError("link", path, errno);
    } else if (auto old = readSecret(path); !old || *old != key) {
      st = fail(Errc::kInvalidArgument, op, "a key file for this id exists with other contents; not replaced");
    }
  }
  ::unlink(tmp.c_str());
  if (!st) return st;
  return syncDir(dir);
}

Result<EncryptionKey> readSecret(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ioError("read key", path, errno);
  char buf[kMaxKeyFileBytes + 1];
  std::size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = ::read(fd, buf + got, sizeof buf - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return ioError("read key", path, e);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  std::string_view text(buf, got);
  const char* ws = " \t\r\n";
  const auto first = text.find_first_not_of(ws);
  text = first == std::string_view::npos ? std::string_view{} : text.substr(first, text.find_last_not_of(ws) - first + 1);
  EncryptionKey key{};
  if (got > kMaxKeyFileBytes || !fromHex(text, key)) {
    return fail(Errc::kMalformed, "read key " + path.string(), "not 64 hex digits");
  }
  return key;
}
}  // namespace

Status writeKeyFile(const std::filesystem::path& home, const FileId& id, const EncryptionKey& key) {
  return writeSecret(keyFilePath(home, id), key);
}

Result<EncryptionKey> readKeyFile(const std::filesystem::path& home, const FileId& id) {
  return readSecret(keyFilePath(home, id));
}

std::filesystem::path identityKeyPath(const std::filesystem::path& home) { return home / "keys" / "identity.key"; }

Result<EncryptionKey> loadOrCreateIdentitySeed(const std::filesystem::path& home,
                                               const std::function<Result<EncryptionKey>()>& generate) {
  const std::filesystem::path path = identityKeyPath(home);
  auto have = readSecret(path);
  if (have || have.error().code() != Errc::kNotFound) return have;
  auto fresh = generate();
  if (!fresh) return fresh;
  if (auto st = writeSecret(path, *fresh); !st) {
    // Another process made it first: theirs is the identity.
    if (auto again = readSecret(path)) return again;
    return fail(st.error());
  }
  return *fresh;
}

}  // namespace p2pcdn
