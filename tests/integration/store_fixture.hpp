// Deterministic files and the operation log shared by store_writer (which is
// killed at random moments) and store_check (which reopens the store after each
// kill). Both programs rebuild the same two files from fixed seeds, so the
// checker knows every manifest and every chunk byte without reading the writer.
//
// The writer appends to a log with write(2): "<op> <file> [<index>]\n" before
// each store operation and "ok\n" after it returned success. A SIGKILL can land
// between the two, leaving one operation in flight; the checker decides from the
// store whether it happened and appends "ok" or "no", so every later replay is
// exact. Ops: M (store manifest), F (delete file), s (store chunk), d (delete chunk).
#pragma once

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/blake3.hpp"
#include "p2pcdn/chunk_manager.hpp"
#include "p2pcdn/manifest.hpp"

namespace p2pcdn::itest {

inline constexpr std::uint32_t kCrashChunkSize = 4096;

struct FixtureFile {
  char tag = 'A';
  Manifest manifest;
  FileId id;
  std::vector<Bytes> chunks;  // stored form
};

// SplitMix64: a fixed, portable pseudo-random stream.
class SplitMix {
 public:
  explicit SplitMix(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }

 private:
  std::uint64_t s_;
};

inline Bytes pseudoRandomBytes(std::uint64_t seed, std::size_t n) {
  SplitMix rng(seed);
  Bytes out(n);
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t v = rng.next();
    for (std::size_t k = 0; k < 8 && i + k < n; ++k) out[i + k] = static_cast<std::uint8_t>(v >> (8 * k));
  }
  return out;
}

// File A: plaintext, 2999 full 4 KiB chunks and a short last one (~12 MiB).
inline Result<FixtureFile> makeFileA() {
  Bytes data = pseudoRandomBytes(0xA11CE, std::size_t{2999} * kCrashChunkSize + 1234);
  ChunkOptions o;
  o.name = "crash-a.bin";
  o.mimeType = "application/octet-stream";
  o.chunkSize = kCrashChunkSize;
  auto cf = ChunkManager::chunkBytes(data, o);
  if (!cf) return fail(cf.error());
  return FixtureFile{'A', std::move(cf->manifest), cf->fileId, std::move(cf->chunks)};
}

// File B: AES-256-GCM with a fixed key and salt (so its id is fixed), 301 chunks.
inline Result<FixtureFile> makeFileB() {
  Bytes data = pseudoRandomBytes(0xB0B, std::size_t{300} * kCrashChunkSize + 77);
  EncryptionKey key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i * 7 + 1);
  Manifest m;
  m.name = "crash-b.bin";
  m.mimeType = "application/octet-stream";
  m.chunkSize = kCrashChunkSize;
  m.size = data.size();
  EncryptionInfo e;
  for (std::size_t i = 0; i < e.salt.size(); ++i) e.salt[i] = static_cast<std::uint8_t>(0xC0 ^ i);
  m.encryption = e;
  FixtureFile f;
  f.tag = 'B';
  for (ChunkIndex i = 0; std::uint64_t{i} * m.chunkSize < data.size(); ++i) {
    std::size_t start = std::size_t{i} * m.chunkSize;
    ByteView plain = ByteView(data).subspan(start, std::min<std::size_t>(m.chunkSize, data.size() - start));
    auto sealed = ChunkManager::encryptChunk(key, m, i, plain);
    if (!sealed) return fail(sealed.error());
    f.chunks.push_back(std::move(*sealed));
  }
  for (const Bytes& c : f.chunks) m.chunkHashes.push_back(Blake3::hash(c));  // of the stored bytes
  auto id = manifestId(m);
  if (!id) return fail(id.error());
  f.manifest = std::move(m);
  f.id = *id;
  return f;
}

// The state the log describes: which files exist and which of their chunks are held.
struct FileState {
  bool exists = false;
  std::vector<bool> present;
  bool operator==(const FileState&) const = default;
};

struct LogOp {
  char op = 0;    // M F s d
  char file = 0;  // A B
  std::uint32_t index = 0;
};

inline std::optional<LogOp> parseOp(const std::string& line) {
  std::istringstream in(line);
  std::string op, file;
  LogOp r;
  if (!(in >> op >> file) || op.size() != 1 || file.size() != 1 || (file[0] != 'A' && file[0] != 'B')) {
    return std::nullopt;
  }
  r.op = op[0];
  r.file = file[0];
  if (r.op == 's' || r.op == 'd') {
    if (!(in >> r.index)) return std::nullopt;
  } else if (r.op != 'M' && r.op != 'F') {
    return std::nullopt;
  }
  return r;
}

inline void applyOp(const LogOp& op, FileState& s, std::size_t chunkCount) {
  if (s.present.size() != chunkCount) s.present.assign(chunkCount, false);
  switch (op.op) {
    case 'M': s.exists = true; break;
    case 'F': s.exists = false; s.present.assign(chunkCount, false); break;
    case 's': if (s.exists && op.index < chunkCount) s.present[op.index] = true; break;
    case 'd': if (op.index < chunkCount) s.present[op.index] = false; break;
    default: break;
  }
}

}  // namespace p2pcdn::itest
