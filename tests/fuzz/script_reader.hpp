// The fuzz input read as a script: bytes taken from the front, zeros once it
// runs out (so every script is complete). Shared by the state-machine fuzzers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "p2pcdn/types.hpp"

namespace p2pcdn::fuzzing {

struct Reader {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint8_t u8() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  std::uint32_t u32() { return std::uint32_t{u8()} | std::uint32_t{u8()} << 8 | std::uint32_t{u8()} << 16 | std::uint32_t{u8()} << 24; }
  Bytes bytes(std::size_t k) {
    k = std::min(k, n);
    Bytes b(p, p + k);
    p += k;
    n -= k;
    return b;
  }
};

}  // namespace p2pcdn::fuzzing
