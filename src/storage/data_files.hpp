// DataFiles: the chunk bytes of the SQLite store, one file per stored file in
// a folder beside the database (docs/hacking.md, "The SQLite store").
//
// A chunk lives at index x slot in its file (slot: the file's stored chunk
// length), written with one positioned write; the database says which chunks
// are present. A file is named by its data name (in the folder) or by an
// absolute path (a file kept outside the store: never removed or punched). Nothing here decides presence: a write that is not followed by
// the database's commit leaves bytes nobody points at, which the next write
// of that chunk overwrites. Names are the database's random data names
// (16 hex digits), never reused, so a descriptor another process still holds
// never reaches a file made later under the same number.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn::storage {

class DataFiles {
 public:
  // durable: sync() calls fdatasync (Durability::kPowerLoss); otherwise it
  // only forgets what was written.
  DataFiles(std::filesystem::path dir, bool durable) : dir_(std::move(dir)), durable_(durable) {}
  DataFiles(const DataFiles&) = delete;
  DataFiles& operator=(const DataFiles&) = delete;
  ~DataFiles();

  const std::filesystem::path& dir() const { return dir_; }
  // Creates the folder (0700: chunk bytes of private files live there).
  Status open();

  // All of `data` at `offset`, or an error (ENOSPC: kQuotaExceeded, "disk full").
  Status write(const std::string& name, std::uint64_t offset, ByteView data);
  // Exactly `length` bytes at `offset`; a file shorter than that (truncated
  // behind the store's back, or never written) is kIntegrity.
  Result<Bytes> read(const std::string& name, std::uint64_t offset, std::size_t length);
  // Frees the disk space of a deleted chunk (a hole; best effort).
  void release(const std::string& name, std::uint64_t offset, std::uint64_t length);
  // Closes a file; one in the folder is unlinked too (a missing one is fine).
  void remove(const std::string& name);
  // Cuts a file to `size`, and fdatasyncs it when durable.
  Status finish(const std::string& name, std::uint64_t size);
  // fdatasync of every file written since the last sync.
  Status sync();
  // The data file names in the folder (other files are ignored).
  std::vector<std::string> list() const;

  static bool validName(const std::string& name);
  static bool external(const std::string& name) { return !name.empty() && name.front() == '/'; }

 private:
  Result<int> fd(const std::string& name, bool create);
  void closeAll();

  std::filesystem::path dir_;
  bool durable_;
  std::unordered_map<std::string, int> fds_;  // bounded: closed all at once past kMaxOpen
  std::unordered_set<int> dirty_;              // fds written since the last sync
};

}  // namespace p2pcdn::storage
