// Identity: a node's Ed25519 key pair (docs/protocol.md "Peer identity"). The
// node proves it on every link (node/link_auth.hpp) and derives its peer id
// from the public key (wire::peerIdOf). Natively OpenSSL holds the key
// (node/openssl_identity.hpp; the CLI keeps it in <home>/keys/identity.key),
// in the browser WebCrypto (a non-extractable key in IndexedDB).
#pragma once

#include <functional>
#include <optional>

#include "p2pcdn/types.hpp"
#include "wire/auth.hpp"

namespace p2pcdn::node {

class Identity {
 public:
  virtual ~Identity() = default;
  virtual const wire::PublicKey& publicKey() const = 0;
  // 32 unpredictable bytes for one link's AUTH_HELLO.
  virtual wire::Nonce freshNonce() = 0;
  // Signs `message` (Ed25519, RFC 8032). `done` may run inside the call or
  // later, on the loop; nullopt if the key cannot sign. The node posts what
  // it gets before acting on it.
  virtual void sign(Bytes message, std::function<void(std::optional<wire::Signature>)> done) = 0;
  // Whether `signature` is `key`'s over `message`; `done` as for sign.
  virtual void verify(const wire::PublicKey& key, Bytes message, const wire::Signature& signature,
                      std::function<void(bool)> done) = 0;
};

}  // namespace p2pcdn::node
