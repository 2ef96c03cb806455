// Minimal POSIX file helpers with Result errors (no exceptions, EINTR-safe).
#pragma once

#include <filesystem>

#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn {

class InputFile {
 public:
  static Result<InputFile> open(const std::filesystem::path& path);
  InputFile(InputFile&& o) noexcept : fd_(o.fd_), size_(o.size_) { o.fd_ = -1; }
  InputFile& operator=(InputFile&&) = delete;
  ~InputFile();
  std::uint64_t size() const { return size_; }
  // Reads exactly out.size() bytes at the current position.
  Status readExact(std::span<std::uint8_t> out, const std::filesystem::path& path);

 private:
  InputFile(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  int fd_;
  std::uint64_t size_;
};

// Writes to "<path>.part-<pid>" and renames onto path on commit(); removes the
// temporary file if destroyed uncommitted.
class AtomicOutputFile {
 public:
  static Result<AtomicOutputFile> create(const std::filesystem::path& path);
  AtomicOutputFile(AtomicOutputFile&& o) noexcept;
  AtomicOutputFile& operator=(AtomicOutputFile&&) = delete;
  ~AtomicOutputFile();
  Status write(ByteView data);
  Status commit();

 private:
  AtomicOutputFile(int fd, std::filesystem::path path, std::filesystem::path tmp)
      : fd_(fd), path_(std::move(path)), tmp_(std::move(tmp)) {}
  int fd_;
  std::filesystem::path path_, tmp_;
};

}  // namespace p2pcdn
