#include "core/chunk_aead.hpp"

#include <algorithm>

#include "core/blake3.hpp"
#include "core/byte_io.hpp"

namespace p2pcdn {

namespace {
constexpr const char* kChunkKeyContext = "p2pcdn 2026-11-24 AES-256-GCM chunk key v1";
}  // namespace

EncryptionKey chunkFileKey(const EncryptionKey& userKey, const EncryptionInfo& info) {
  Blake3 kdf = Blake3::deriveKey(kChunkKeyContext);
  kdf.update(userKey);
  kdf.update(info.salt);
  EncryptionKey out{};
  kdf.finalizeXof(out);
  return out;
}

std::array<std::uint8_t, kChunkNonceSize> chunkNonce(const EncryptionInfo& info, ChunkIndex index) {
  std::array<std::uint8_t, kChunkNonceSize> n{};
  std::copy_n(info.salt.begin(), 8, n.begin());
  for (int i = 0; i < 4; ++i) n[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(index >> (24 - 8 * i));
  return n;
}

Bytes chunkAad(const EncryptionInfo& info, ChunkIndex index, std::uint32_t plainLength) {
  Bytes aad;
  ByteWriter w(aad);
  w.str("p2pcdn-chunk-v1");
  w.raw(info.salt);
  w.u32(index);
  w.u32(plainLength);
  return aad;
}

}  // namespace p2pcdn
