// The parameters of the AES-256-GCM chunk scheme (docs/protocol.md), apart
// from the cipher itself: natively OpenSSL runs it (src/crypto/aead.cpp), in
// the browser WebCrypto (web/src/crypto.js). Written once here, so both seal
// a chunk the same way.
//   file key  BLAKE3-derive_key(kChunkKeyContext, userKey || salt)
//   nonce     salt[0..8) || be32(chunk index)          (96 bits)
//   aad       "p2pcdn-chunk-v1" || salt || be32(index) || be32(plaintext length)
// A chunk therefore decrypts only at its own index of its own file.
#pragma once

#include <array>
#include <cstdint>

#include "p2pcdn/manifest.hpp"

namespace p2pcdn {

inline constexpr std::size_t kChunkNonceSize = 12;

EncryptionKey chunkFileKey(const EncryptionKey& userKey, const EncryptionInfo& info);
std::array<std::uint8_t, kChunkNonceSize> chunkNonce(const EncryptionInfo& info, ChunkIndex index);
Bytes chunkAad(const EncryptionInfo& info, ChunkIndex index, std::uint32_t plainLength);

}  // namespace p2pcdn
