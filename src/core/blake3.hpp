// BLAKE3 over the official C implementation (runtime-dispatched SIMD natively).
#pragma once

#include <blake3.h>

#include "p2pcdn/types.hpp"

namespace p2pcdn {

class Blake3 {
 public:
  Blake3() { blake3_hasher_init(&h_); }
  static Blake3 keyed(const std::array<std::uint8_t, 32>& key);
  static Blake3 deriveKey(const char* context);

  void update(ByteView data) { blake3_hasher_update(&h_, data.data(), data.size()); }
  Hash finalize() const;
  void finalizeXof(std::span<std::uint8_t> out) const {
    blake3_hasher_finalize(&h_, out.data(), out.size());
  }

  static Hash hash(ByteView data);

 private:
  blake3_hasher h_;
};

}  // namespace p2pcdn
