// Chunk encryption (AES-256-GCM) and secure randomness. Thread-safe: no shared state.
//
// Each file has a random 32-byte salt (in its manifest, so part of its id);
// the file key, nonce and authenticated data are core/chunk_aead.hpp's.
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
