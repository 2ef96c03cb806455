// Chunk encryption (AES-256-GCM) and secure randomness. Thread-safe: no shared state.
//
// Each file has a random 32-byte salt (in its manifest, so part of its id). The
// AES key for a file is BLAKE3-derive_key(kKeyContext, userKey || salt); the
// 96-bit nonce is salt[0..8) || be32(chunk index); the authenticated data is
// "p2pcdn-chunk-v1" || salt || be32(index) || be32(plaintext length). A chunk
// therefore decrypts only at its own index of its own file.
#pragma once

#include <array>

#include "p2pcdn/manifest.hpp"

namespace p2pcdn::crypto {

using Key = EncryptionKey;

Status randomBytes(std::span<std::uint8_t> out);
Result<Key> randomKey();

Result<Bytes> encryptChunk(const Key& key, const EncryptionInfo& info, ChunkIndex index, ByteView plain);
Result<Bytes> decryptChunk(const Key& key, const EncryptionInfo& info, ChunkIndex index, ByteView sealed);

}  // namespace p2pcdn::crypto
