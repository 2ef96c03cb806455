// Small value types shared by every layer: hashes/ids and byte buffers.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "p2pcdn/result.hpp"

namespace p2pcdn {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView asBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// A 32-byte BLAKE3 digest. A file id is the Hash of its manifest's canonical encoding.
struct Hash {
  static constexpr std::size_t kSize = 32;
  std::array<std::uint8_t, kSize> bytes{};

  std::string hex() const;
  static Result<Hash> fromHex(std::string_view hex);
  static Hash fromBytes(ByteView b);  // b.size() must be kSize
  bool operator==(const Hash&) const = default;
  // Byte-wise order. Not defaulted: emscripten's libc++ (14) has no operator<=> for std::array.
  std::strong_ordering operator<=>(const Hash& o) const {
    return std::memcmp(bytes.data(), o.bytes.data(), kSize) <=> 0;
  }
};

using FileId = Hash;

// A 256-bit secret for chunk encryption (never in a manifest).
using EncryptionKey = std::array<std::uint8_t, 32>;

// Chunk positions are plain 32-bit indexes; kMaxChunkCount bounds them.
using ChunkIndex = std::uint32_t;

struct HashHasher {
  std::size_t operator()(const Hash& h) const noexcept {
    std::size_t v = 0;
    for (std::size_t i = 0; i < sizeof v; ++i) v = (v << 8) | h.bytes[i];
    return v;
  }
};

}  // namespace p2pcdn
