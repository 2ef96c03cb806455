// A deterministic stand-in for an Ed25519 identity, for whole nodes on the
// virtual clock (which also run in wasm, where there is no OpenSSL): the key
// is a hash of a seed, a "signature" is a keyed hash that anyone who knows the
// public key can make. It exercises the link-auth protocol (messages, order,
// transcripts, fingerprints, ids), not the cryptography: that is
// tests/unit/node/link_auth_test.cpp's, with OpenSSL.
#pragma once

#include <algorithm>
#include <memory>

#include "core/blake3.hpp"
#include "node/identity.hpp"

namespace p2pcdn::test {

class TestIdentity : public node::Identity {
 public:
  explicit TestIdentity(std::uint64_t seed) {
    Bytes s(8);
    for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(seed >> (8 * i));
    const Hash h = Blake3::hash(s);
    std::copy(h.bytes.begin(), h.bytes.end(), key_.begin());
  }
  const wire::PublicKey& publicKey() const override { return key_; }
  wire::Nonce freshNonce() override {
    Bytes in(key_.begin(), key_.end());
    in.push_back(static_cast<std::uint8_t>(++nonces_));
    in.push_back(static_cast<std::uint8_t>(nonces_ >> 8));
    const Hash h = Blake3::hash(in);
    wire::Nonce n{};
    std::copy(h.bytes.begin(), h.bytes.end(), n.begin());
    return n;
  }
  void sign(Bytes message, std::function<void(std::optional<wire::Signature>)> done) override {
    done(signatureOf(key_, message));
  }
  void verify(const wire::PublicKey& key, Bytes message, const wire::Signature& signature,
              std::function<void(bool)> done) override {
    done(signatureOf(key, message) == signature);
  }
  static wire::Signature signatureOf(const wire::PublicKey& key, ByteView message) {
    Bytes in(key.begin(), key.end());
    in.insert(in.end(), message.begin(), message.end());
    const Hash a = Blake3::hash(in);
    const Hash b = Blake3::hash(a.bytes);
    wire::Signature sig{};
    std::copy(a.bytes.begin(), a.bytes.end(), sig.begin());
    std::copy(b.bytes.begin(), b.bytes.end(), sig.begin() + 32);
    return sig;
  }

 private:
  wire::PublicKey key_{};
  unsigned nonces_ = 0;
};

}  // namespace p2pcdn::test
