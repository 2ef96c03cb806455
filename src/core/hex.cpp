#include "core/hex.hpp"

#include <algorithm>

namespace p2pcdn {
namespace {
int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string toHex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(bytes.size() * 2, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = kDigits[bytes[i] >> 4];
    s[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return s;
}

bool fromHex(std::string_view hex, std::span<std::uint8_t> out) {
  if (hex.size() != out.size() * 2) return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return true;
}

std::string Hash::hex() const { return toHex(bytes); }

Result<Hash> Hash::fromHex(std::string_view hex) {
  Hash h;
  if (!p2pcdn::fromHex(hex, h.bytes)) {
    return fail(Errc::kMalformed, "parse hash", "expected 64 hexadecimal characters");
  }
  return h;
}

Hash Hash::fromBytes(ByteView b) {
  Hash h;
  std::copy_n(b.begin(), std::min(b.size(), kSize), h.bytes.begin());
  return h;
}

}  // namespace p2pcdn
