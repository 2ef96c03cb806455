#include "wire/auth.hpp"

#include <algorithm>
#include <string>

#include "core/byte_io.hpp"

namespace p2pcdn::wire {
namespace {
constexpr std::string_view kTranscriptContext = "p2pcdn link auth v1";
constexpr std::size_t kPeerIdPrefixBytes = 8;  // "-P" client "0002-"
}  // namespace

bool isAuthMessage(ByteView m) { return !m.empty() && (m[0] == kAuthHelloType || m[0] == kAuthProofType); }

Bytes encode(const AuthHello& m) {
  Bytes out;
  out.reserve(kAuthHelloBytes);
  ByteWriter w(out);
  w.u8(kAuthHelloType);
  w.u8(kAuthVersion);
  w.raw(m.key);
  w.raw(m.nonce);
  return out;
}

Bytes encode(const AuthProof& m) {
  Bytes out;
  out.reserve(kAuthProofBytes);
  ByteWriter w(out);
  w.u8(kAuthProofType);
  w.raw(m.signature);
  return out;
}

Result<AuthMessage> decodeAuth(ByteView in) {
  const char* op = "decode auth message";
  if (in.empty()) return fail(Errc::kMalformed, op, "empty message");
  ByteReader r(in);
  std::uint8_t type = 0;
  (void)r.u8(type);
  if (type == kAuthHelloType) {
    std::uint8_t version = 0;
    if (!r.u8(version)) return fail(Errc::kMalformed, op, "truncated AUTH_HELLO");
    if (version != kAuthVersion) {
      return fail(Errc::kUnsupported, op, "link auth version " + std::to_string(version) + " (supported: 1)");
    }
    AuthHello h;
    if (!r.raw(h.key) || !r.raw(h.nonce)) return fail(Errc::kMalformed, op, "truncated AUTH_HELLO");
    if (r.remaining() != 0) return fail(Errc::kMalformed, op, "bytes after AUTH_HELLO");
    return AuthMessage(h);
  }
  if (type == kAuthProofType) {
    AuthProof p;
    if (!r.raw(p.signature)) return fail(Errc::kMalformed, op, "truncated AUTH_PROOF");
    if (r.remaining() != 0) return fail(Errc::kMalformed, op, "bytes after AUTH_PROOF");
    return AuthMessage(p);
  }
  return fail(Errc::kMalformed, op, "message type " + std::to_string(type) + " is not AUTH_HELLO or AUTH_PROOF");
}

std::array<std::uint8_t, 20> peerIdOf(const PublicKey& key, char client) {
  if (client < 'A' || client > 'Z') client = 'C';
  const std::string prefix = std::string("-P") + client + "0002-";
  std::array<std::uint8_t, 20> id{};
  std::copy(prefix.begin(), prefix.end(), id.begin());
  std::copy_n(key.begin(), id.size() - kPeerIdPrefixBytes, id.begin() + kPeerIdPrefixBytes);
  return id;
}

bool idMatchesKey(const std::array<std::uint8_t, 20>& id, const PublicKey& key) {
  const char client = static_cast<char>(id[2]);
  return client >= 'A' && client <= 'Z' && peerIdOf(key, client) == id;
}

Bytes authTranscript(const PublicKey& signerKey, const PublicKey& verifierKey, const Nonce& signerNonce,
                     const Nonce& verifierNonce, std::string_view signerLocalFingerprint,
                     std::string_view signerRemoteFingerprint) {
  Bytes out;
  ByteWriter w(out);
  w.str(kTranscriptContext);
  w.u8(0);
  w.raw(signerKey);
  w.raw(verifierKey);
  w.raw(signerNonce);
  w.raw(verifierNonce);
  // Each fingerprint with its length, so no two pairs give the same bytes.
  w.u16(static_cast<std::uint16_t>(signerLocalFingerprint.size()));
  w.str(signerLocalFingerprint);
  w.u16(static_cast<std::uint16_t>(signerRemoteFingerprint.size()));
  w.str(signerRemoteFingerprint);
  return out;
}

}  // namespace p2pcdn::wire
