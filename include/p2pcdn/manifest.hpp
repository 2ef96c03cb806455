// The manifest describes one file's content: its name, size, type, chunk size,
// encryption descriptor and the BLAKE3 hash of every chunk, and nothing else
// (no time, no publisher), so two publishers of the same content produce the
// same manifest. Its canonical binary encoding is hashed to give the file id
// (manifestId, the only place the id is computed), so a manifest proves itself
// against its id. Format: docs/protocol.md.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn {

// Limits every decoder enforces (documented in docs/protocol.md).
// Version 2 dropped version 1's createdAt field, which made the id of the
// same content differ between publishers; version 1 is refused (kUnsupported).
inline constexpr std::uint8_t kManifestVersion = 2;
inline constexpr std::uint32_t kDefaultChunkSize = 256 * 1024;
inline constexpr std::uint32_t kMinChunkSize = 1024;             // 1 KiB
inline constexpr std::uint32_t kMaxChunkSize = 16 * 1024 * 1024;  // 16 MiB
inline constexpr std::uint32_t kMaxChunkCount = 1u << 20;         // 1 Mi chunks
inline constexpr std::size_t kMaxNameBytes = 255;
inline constexpr std::size_t kMaxMimeBytes = 127;
// Largest canonical encoding: header + name + mime + encryption + hashes.
inline constexpr std::size_t kMaxManifestBytes = 64 + kMaxNameBytes + kMaxMimeBytes + 64 +
                                                 std::size_t{kMaxChunkCount} * Hash::kSize;
inline constexpr std::size_t kMaxManifestJsonBytes = 3 * kMaxManifestBytes;

enum class EncryptionAlgorithm : std::uint8_t { kNone = 0, kAes256Gcm = 1 };
inline constexpr std::size_t kEncryptionSaltSize = 32;
inline constexpr std::size_t kAeadTagSize = 16;

// Describes how chunks were encrypted, never the key. With encryption, chunk
// hashes cover the encrypted bytes, so peers without the key can verify and seed.
struct EncryptionInfo {
  EncryptionAlgorithm algorithm = EncryptionAlgorithm::kAes256Gcm;
  std::array<std::uint8_t, kEncryptionSaltSize> salt{};  // random per file
  bool operator==(const EncryptionInfo&) const = default;
};

struct Manifest {
  std::uint8_t version = kManifestVersion;
  std::string name;                     // UTF-8, no control characters
  std::uint64_t size = 0;               // plaintext bytes
  std::string mimeType = "application/octet-stream";
  std::uint32_t chunkSize = kDefaultChunkSize;  // plaintext bytes per chunk (power of two)
  std::optional<EncryptionInfo> encryption;
  std::vector<Hash> chunkHashes;        // of the bytes as stored and sent

  bool operator==(const Manifest&) const = default;

  std::uint32_t chunkCount() const { return static_cast<std::uint32_t>(chunkHashes.size()); }
  // Plaintext length of chunk i.
  std::uint32_t plainChunkLength(ChunkIndex i) const;
  // Length of chunk i as stored and sent (plaintext + tag when encrypted).
  std::uint32_t storedChunkLength(ChunkIndex i) const;
  std::uint64_t storedSize() const;
};

// Number of chunks a file of `size` bytes has at `chunkSize`.
std::uint64_t chunkCountFor(std::uint64_t size, std::uint32_t chunkSize);

// The MIME type for a file name, by its extension (case-insensitive);
// "application/octet-stream" when unknown.
std::string guessMimeType(std::string_view fileName);

// Checks every field against the limits and the size/chunk-count relation.
Status validateManifest(const Manifest& m);

Result<Bytes> encodeManifest(const Manifest& m);  // canonical binary form
Result<Manifest> decodeManifest(ByteView bytes);   // rejects anything non-canonical
// The file id: BLAKE3 of the canonical encoding. The second form encodes first.
FileId manifestId(ByteView canonicalEncoding);
Result<FileId> manifestId(const Manifest& m);

// The JSON form: {"fileId","version","name","size","mimeType","chunkSize",
// "encryption"?,"chunks":[hex...]}. fromJson checks "fileId" if present and
// ignores keys it does not know.
Result<std::string> manifestToJson(const Manifest& m, int indent = -1);
Result<Manifest> manifestFromJson(std::string_view json);

// Checks that `bytes` is chunk `index` of the manifest (length and BLAKE3 hash).
Status verifyChunk(const Manifest& m, ChunkIndex index, ByteView bytes);

// A shareable link: "p2pcdn:<64 hex id>[?tr=<tracker url>][&k=<64 hex key>]".
struct Link {
  FileId fileId;
  std::vector<std::string> trackers;
  std::optional<EncryptionKey> key;
  std::vector<std::string> webSeeds = {};  // ws=: HTTP(S) origins serving the file (Range requests)
};
std::string formatLink(const Link& link);
Result<Link> parseLink(std::string_view text);  // also accepts a bare 64-hex id

}  // namespace p2pcdn
