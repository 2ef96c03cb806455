// Canonical binary manifest codec and validation. Layout: docs/protocol.md.
#include "p2pcdn/manifest.hpp"

#include <bit>

#include "core/blake3.hpp"
#include "core/byte_io.hpp"
#include "core/text.hpp"

namespace p2pcdn {
namespace {

constexpr std::uint8_t kMagic[4] = {'P', '2', 'P', 'M'};
constexpr std::uint8_t kFlagEncrypted = 0x01;

bool validName(std::string_view s) { return !s.empty() && s.size() <= kMaxNameBytes && isCleanUtf8(s); }

bool validMime(std::string_view s) {
  if (s.empty() || s.size() > kMaxMimeBytes) return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

std::uint64_t chunkCountFor(std::uint64_t size, std::uint32_t chunkSize) {
  if (chunkSize == 0) return 0;
  return size / chunkSize + (size % chunkSize != 0 ? 1 : 0);
}

std::uint32_t Manifest::plainChunkLength(ChunkIndex i) const {
  std::uint64_t start = std::uint64_t{i} * chunkSize;
  if (start >= size) return 0;
  std::uint64_t left = size - start;
  return static_cast<std::uint32_t>(left < chunkSize ? left : chunkSize);
}

std::uint32_t Manifest::storedChunkLength(ChunkIndex i) const {
  std::uint32_t n = plainChunkLength(i);
  return encryption ? n + static_cast<std::uint32_t>(kAeadTagSize) : n;
}

std::uint64_t Manifest::storedSize() const {
  return size + (encryption ? std::uint64_t{chunkCount()} * kAeadTagSize : 0);
}

Status validateManifest(const Manifest& m) {
  const char* op = "validate manifest";
  if (m.version != kManifestVersion) {
    return fail(Errc::kUnsupported, op,
                "version " + std::to_string(m.version) + " (supported: " + std::to_string(kManifestVersion) + ")");
  }
  if (!validName(m.name)) {
    return fail(Errc::kMalformed, op, "name must be 1-255 bytes of UTF-8 without control characters");
  }
  if (!validMime(m.mimeType)) {
    return fail(Errc::kMalformed, op, "MIME type must be 1-127 printable ASCII characters");
  }
  if (m.chunkSize < kMinChunkSize || m.chunkSize > kMaxChunkSize || !std::has_single_bit(m.chunkSize)) {
    return fail(Errc::kMalformed, op,
                "chunk size " + std::to_string(m.chunkSize) + " must be a power of two in 1 KiB..16 MiB");
  }
  std::uint64_t want = chunkCountFor(m.size, m.chunkSize);
  if (want > kMaxChunkCount) {
    return fail(Errc::kTooLarge, op,
                "file needs " + std::to_string(want) + " chunks; the limit is " + std::to_string(kMaxChunkCount));
  }
  if (m.chunkHashes.size() != want) {
    return fail(Errc::kMalformed, op,
                "size " + std::to_string(m.size) + " needs " + std::to_string(want) + " chunk hashes, found " +
                    std::to_string(m.chunkHashes.size()));
  }
  if (m.encryption && m.encryption->algorithm != EncryptionAlgorithm::kAes256Gcm) {
    return fail(Errc::kUnsupported, op, "unknown encryption algorithm");
  }
  return {};
}

Result<Bytes> encodeManifest(const Manifest& m) {
  P2PCDN_TRY(validateManifest(m));
  Bytes out;
  out.reserve(64 + m.name.size() + m.mimeType.size() + m.chunkHashes.size() * Hash::kSize);
  ByteWriter w(out);
  w.raw(kMagic);
  w.u8(m.version);
  w.u8(m.encryption ? kFlagEncrypted : 0);
  w.u32(m.chunkSize);
  w.u64(m.size);
  w.u8(static_cast<std::uint8_t>(m.name.size()));
  w.str(m.name);
  w.u8(static_cast<std::uint8_t>(m.mimeType.size()));
  w.str(m.mimeType);
  if (m.encryption) {
    w.u8(static_cast<std::uint8_t>(m.encryption->algorithm));
    w.raw(m.encryption->salt);
  }
  w.u32(m.chunkCount());
  for (const Hash& h : m.chunkHashes) w.raw(h.bytes);
  return out;
}

Result<Manifest> decodeManifest(ByteView bytes) {
  const char* op = "decode manifest";
  if (bytes.size() > kMaxManifestBytes) {
    return fail(Errc::kTooLarge, op, std::to_string(bytes.size()) + " bytes exceeds the limit");
  }
  ByteReader r(bytes);
  std::array<std::uint8_t, 4> magic{};
  if (!r.raw(magic) || !std::equal(magic.begin(), magic.end(), kMagic)) {
    return fail(Errc::kMalformed, op, "not a p2pcdn manifest (bad magic)");
  }
  Manifest m;
  std::uint8_t flags = 0;
  std::uint8_t nameLen = 0, mimeLen = 0;
  if (!r.u8(m.version)) return fail(Errc::kMalformed, op, "truncated header");
  if (m.version == 1) {
    return fail(Errc::kUnsupported, op,
                "manifest version 1 is no longer supported: its file id covered the publish time, so the same "
                "content had one id per publisher; publish the file again to get its version 2 id");
  }
  if (m.version != kManifestVersion) {
    return fail(Errc::kUnsupported, op,
                "manifest version " + std::to_string(m.version) + " (supported: " + std::to_string(kManifestVersion) +
                    ")");
  }
  if (!r.u8(flags) || !r.u32(m.chunkSize) || !r.u64(m.size) || !r.u8(nameLen) ||
      !r.str(nameLen, m.name) || !r.u8(mimeLen) || !r.str(mimeLen, m.mimeType)) {
    return fail(Errc::kMalformed, op, "truncated header");
  }
  if ((flags & ~kFlagEncrypted) != 0) return fail(Errc::kMalformed, op, "unknown flag bits");
  if (flags & kFlagEncrypted) {
    EncryptionInfo e;
    std::uint8_t alg = 0;
    if (!r.u8(alg) || !r.raw(e.salt)) return fail(Errc::kMalformed, op, "truncated encryption descriptor");
    if (alg != static_cast<std::uint8_t>(EncryptionAlgorithm::kAes256Gcm)) {
      return fail(Errc::kUnsupported, op, "encryption algorithm " + std::to_string(alg));
    }
    e.algorithm = EncryptionAlgorithm::kAes256Gcm;
    m.encryption = e;
  }
  std::uint32_t count = 0;
  if (!r.u32(count)) return fail(Errc::kMalformed, op, "truncated chunk count");
  if (count > kMaxChunkCount) return fail(Errc::kTooLarge, op, "chunk count " + std::to_string(count));
  if (r.remaining() != std::size_t{count} * Hash::kSize) {
    return fail(Errc::kMalformed, op,
                "expected " + std::to_string(count) + " chunk hashes and nothing after them");
  }
  m.chunkHashes.resize(count);
  for (Hash& h : m.chunkHashes) (void)r.raw(h.bytes);
  P2PCDN_TRY(validateManifest(m));
  return m;
}

// The one definition of the file id. Everything that describes the content is
// in the canonical encoding and nothing else is, so hashing it is enough.
FileId manifestId(ByteView canonicalEncoding) { return Blake3::hash(canonicalEncoding); }

Result<FileId> manifestId(const Manifest& m) {
  auto enc = encodeManifest(m);
  if (!enc) return fail(enc.error());
  return manifestId(*enc);
}

Status verifyChunk(const Manifest& m, ChunkIndex index, ByteView bytes) {
  const char* op = "verify chunk";
  if (index >= m.chunkCount()) {
    return fail(Errc::kInvalidArgument, op, "index " + std::to_string(index) + " out of range");
  }
  if (bytes.size() != m.storedChunkLength(index)) {
    return fail(Errc::kIntegrity, op,
                "chunk " + std::to_string(index) + " has " + std::to_string(bytes.size()) + " bytes, expected " +
                    std::to_string(m.storedChunkLength(index)));
  }
  if (Blake3::hash(bytes) != m.chunkHashes[index]) {
    return fail(Errc::kIntegrity, op, "chunk " + std::to_string(index) + " hash mismatch");
  }
  return {};
}

}  // namespace p2pcdn
