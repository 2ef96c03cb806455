// The native Identity: an Ed25519 key held by OpenSSL (crypto::Ed25519Key);
// signing and verifying run inside the call (tens of microseconds).
#pragma once

#include <memory>

#include "crypto/crypto.hpp"
#include "node/identity.hpp"

namespace p2pcdn::node {

// The identity of this seed (the CLI keeps it in <home>/keys/identity.key).
Result<std::shared_ptr<Identity>> opensslIdentity(const crypto::Ed25519Seed& seed);
// A new random identity, for one run.
Result<std::shared_ptr<Identity>> ephemeralOpensslIdentity();

}  // namespace p2pcdn::node
