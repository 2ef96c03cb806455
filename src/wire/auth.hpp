// Link authentication (docs/protocol.md, "Peer identity"): the two messages
// that open every channel before HANDSHAKE, and what their signatures cover.
//
// Each node has an Ed25519 key; its peer id is derived from the public key
// (peerIdOf), so the id the tracker relays and the one in HANDSHAKE are both
// bound to it. Each side sends AUTH_HELLO (its public key and a fresh nonce),
// then AUTH_PROOF: its signature over both keys, both nonces and both DTLS
// certificate fingerprints as it sees them (its own first). Whoever relays the
// SDP cannot splice itself in: to sit between two peers it must terminate
// DTLS with its own certificate, so the fingerprints the two sides see differ
// and neither proof verifies. The nonces make every proof good for one link.
//
// Pure: no I/O, no crypto library (the host signs and verifies).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <variant>

#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn::wire {

using PublicKey = std::array<std::uint8_t, 32>;  // Ed25519 public key (RFC 8032)
using Signature = std::array<std::uint8_t, 64>;
using Nonce = std::array<std::uint8_t, 32>;

inline constexpr std::uint8_t kAuthHelloType = 12;
inline constexpr std::uint8_t kAuthProofType = 13;
inline constexpr std::uint8_t kAuthVersion = 1;
inline constexpr std::size_t kAuthHelloBytes = 1 + 1 + 32 + 32;  // type, version, key, nonce
inline constexpr std::size_t kAuthProofBytes = 1 + 64;           // type, signature
// A DTLS fingerprint as auth covers it: "<hash name> <hex>", lower case,
// e.g. "sha-256 1a2b…" (transport::dtlsFingerprint). Longer is refused.
inline constexpr std::size_t kMaxFingerprintBytes = 200;

struct AuthHello {
  PublicKey key{};
  Nonce nonce{};
  bool operator==(const AuthHello&) const = default;
};
struct AuthProof {
  Signature signature{};
  bool operator==(const AuthProof&) const = default;
};
using AuthMessage = std::variant<AuthHello, AuthProof>;

// Whether a channel message is one of the two above (by its type byte).
bool isAuthMessage(ByteView message);
Bytes encode(const AuthHello& m);
Bytes encode(const AuthProof& m);
// kMalformed for a wrong size or another type, kUnsupported for another version.
Result<AuthMessage> decodeAuth(ByteView message);

// The peer id of a key: "-P<client>0002-" (client: a capital letter, 'C'
// native, 'B' browser; readable, not trusted) and the key's first 12 bytes.
// An Ed25519 public key is an encoded curve point that looks random, so
// finding another key with those 96 bits costs ~2^96 key generations, as a
// hash would; and any peer (a page with only WebCrypto) can compute it.
std::array<std::uint8_t, 20> peerIdOf(const PublicKey& key, char client = 'C');
// Whether `id` is peerIdOf(key, c) for some client letter c.
bool idMatchesKey(const std::array<std::uint8_t, 20>& id, const PublicKey& key);

// What the signer signs (and the verifier rebuilds with the roles named the
// same way): a context string, then the signer's and the verifier's keys and
// nonces, then the fingerprint of the signer's own certificate and that of
// the certificate it sees across the link.
Bytes authTranscript(const PublicKey& signerKey, const PublicKey& verifierKey, const Nonce& signerNonce,
                     const Nonce& verifierNonce, std::string_view signerLocalFingerprint,
                     std::string_view signerRemoteFingerprint);

}  // namespace p2pcdn::wire
