#include <openssl/rand.h>

#include <climits>

#include "crypto/crypto.hpp"

namespace p2pcdn::crypto {

Status randomBytes(std::span<std::uint8_t> out) {
  if (out.size() > INT_MAX || RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    return fail(Errc::kCrypto, "random bytes", "RAND_bytes failed");
  }
  return {};
}

Result<Key> randomKey() {
  Key k{};
  P2PCDN_TRY(randomBytes(k));
  return k;
}

}  // namespace p2pcdn::crypto
