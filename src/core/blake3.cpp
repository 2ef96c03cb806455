#include "core/blake3.hpp"

namespace p2pcdn {

Blake3 Blake3::keyed(const std::array<std::uint8_t, 32>& key) {
  Blake3 b;
  blake3_hasher_init_keyed(&b.h_, key.data());
  return b;
}

Blake3 Blake3::deriveKey(const char* context) {
  Blake3 b;
  blake3_hasher_init_derive_key(&b.h_, context);
  return b;
}

Hash Blake3::finalize() const {
  Hash out;
  blake3_hasher_finalize(&h_, out.bytes.data(), out.bytes.size());
  return out;
}

Hash Blake3::hash(ByteView data) {
  Blake3 b;
  b.update(data);
  return b.finalize();
}

}  // namespace p2pcdn
