// Chunk encryption (AES-256-GCM), node identities (Ed25519) and secure
// randomness, through OpenSSL 3. Thread-safe: no shared state.
//
// Each file has a random 32-byte salt (in its manifest, so part of its id);
// the file key, nonce and authenticated data are core/chunk_aead.hpp's.
#pragma once

#include <array>
#include <memory>

#include "p2pcdn/manifest.hpp"

namespace p2pcdn::crypto {

using Key = EncryptionKey;

Status randomBytes(std::span<std::uint8_t> out);
Result<Key> randomKey();

Result<Bytes> encryptChunk(const Key& key, const EncryptionInfo& info, ChunkIndex index, ByteView plain);
Result<Bytes> decryptChunk(const Key& key, const EncryptionInfo& info, ChunkIndex index, ByteView sealed);

// ---- Ed25519 (RFC 8032): a node's identity key (docs/protocol.md "Peer identity") ----

using Ed25519Seed = std::array<std::uint8_t, 32>;  // the private key as RFC 8032 stores it
using Ed25519PublicKey = std::array<std::uint8_t, 32>;
using Ed25519Signature = std::array<std::uint8_t, 64>;

class Ed25519Key {
 public:
  static Result<Ed25519Key> fromSeed(const Ed25519Seed& seed);
  // A new random key; its seed in *seedOut if given (to be kept).
  static Result<Ed25519Key> generate(Ed25519Seed* seedOut = nullptr);
  Ed25519Key(Ed25519Key&&) noexcept;
  Ed25519Key& operator=(Ed25519Key&&) noexcept;
  ~Ed25519Key();
  const Ed25519PublicKey& publicKey() const;
  Result<Ed25519Signature> sign(ByteView message) const;

 private:
  struct Impl;
  explicit Ed25519Key(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

bool ed25519Verify(const Ed25519PublicKey& key, ByteView message, const Ed25519Signature& signature);

}  // namespace p2pcdn::crypto
