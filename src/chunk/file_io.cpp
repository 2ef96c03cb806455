#include "chunk/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace p2pcdn {
namespace {
Unexpected ioError(const std::string& op, const std::filesystem::path& p, int err) {
  return fail(Errc::kIo, op + " " + p.string(), std::strerror(err));
}
}  // namespace

Result<InputFile> InputFile::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return fail(e == ENOENT ? Errc::kNotFound : Errc::kIo, "open " + path.string(), std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return ioError("stat", path, e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(Errc::kInvalidArgument, "open " + path.string(), "not a regular file");
  }
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return InputFile(fd, static_cast<std::uint64_t>(st.st_size));
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status InputFile::readExact(std::span<std::uint8_t> out, const std::filesystem::path& path) {
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd_, out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ioError("read", path, errno);
    }
    if (n == 0) return fail(Errc::kIntegrity, "read " + path.string(), "file shrank while being read");
    got += static_cast<std::size_t>(n);
  }
  return {};
}

Result<AtomicOutputFile> AtomicOutputFile::create(const std::filesystem::path& path) {
  std::filesystem::path tmp = path;
  tmp += ".part-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ioError("create", tmp, errno);
  return AtomicOutputFile(fd, path, tmp);
}

AtomicOutputFile::AtomicOutputFile(AtomicOutputFile&& o) noexcept
    : fd_(o.fd_), path_(std::move(o.path_)), tmp_(std::move(o.tmp_)) {
  o.fd_ = -1;
  o.tmp_.clear();
}

AtomicOutputFile::~AtomicOutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

Status AtomicOutputFile::write(ByteView data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ioError("write", tmp_, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Status AtomicOutputFile::commit() {
  if (::close(fd_) != 0) {
    fd_ = -1;
    return ioError("close", tmp_, errno);
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) return ioError("rename to", path_, errno);
  tmp_.clear();
  return {};
}

}  // namespace p2pcdn
