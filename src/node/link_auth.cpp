#include "node/link_auth.hpp"

namespace p2pcdn::node {
namespace {
// A HANDSHAKE with the largest extension fits (wire.hpp).
constexpr std::size_t kMaxEarlyBytes = 2048;
}  // namespace

LinkAuth::LinkAuth(const wire::PublicKey& self, const wire::Nonce& nonce, std::string localFingerprint,
                   std::string remoteFingerprint, const PeerId& expected, swarm::Time deadline)
    : self_(self),
      nonce_(nonce),
      localFp_(std::move(localFingerprint)),
      remoteFp_(std::move(remoteFingerprint)),
      expected_(expected),
      deadline_(deadline) {}

LinkAuth::Step LinkAuth::fail(std::string why) {
  state_ = State::kFailed;
  Step s;
  s.failed = std::move(why);
  return s;
}

LinkAuth::Step LinkAuth::start() {
  if (state_ != State::kNew) return {};
  if (localFp_.empty() || remoteFp_.empty()) return fail("link auth: no DTLS fingerprint in the SDP");
  if (localFp_.size() > wire::kMaxFingerprintBytes || remoteFp_.size() > wire::kMaxFingerprintBytes) {
    return fail("link auth: DTLS fingerprint too long");
  }
  state_ = State::kRunning;
  Step s;
  s.send = wire::encode(wire::AuthHello{self_, nonce_});
  return s;
}

LinkAuth::Step LinkAuth::onMessage(ByteView message) {
  if (state_ != State::kRunning) return {};
  if (!wire::isAuthMessage(message)) {
    // Only the peer's HANDSHAKE may come before we are done, and only after its proof.
    if (!proofSeen_) return fail("link auth: a message before AUTH_PROOF");
    if (early_) return fail("link auth: more than one message before the link was proven");
    if (message.size() > kMaxEarlyBytes) return fail("link auth: an oversized message before the link was proven");
    early_ = Bytes(message.begin(), message.end());
    return {};
  }
  auto m = wire::decodeAuth(message);
  if (!m) return fail("link auth: " + m.error().message());
  if (const auto* h = std::get_if<wire::AuthHello>(&*m)) {
    if (hello_) return fail("link auth: a second AUTH_HELLO");
    if (h->key == self_) return fail("link auth: the peer has our own key");
    if (!wire::idMatchesKey(expected_, h->key)) {
      return fail("link auth: the peer's key does not give the peer id the tracker named");
    }
    hello_ = *h;
    peerKey_ = h->key;
    signing_ = true;
    Step s;
    s.sign = wire::authTranscript(self_, h->key, nonce_, h->nonce, localFp_, remoteFp_);
    return s;
  }
  const auto& proof = std::get<wire::AuthProof>(*m);
  if (!hello_) return fail("link auth: AUTH_PROOF before AUTH_HELLO");
  if (proofSeen_) return fail("link auth: a second AUTH_PROOF");
  proofSeen_ = true;
  verifying_ = true;
  Step s;
  // The peer signed as the signer: its fingerprints are ours swapped.
  s.verify = Verify{hello_->key, wire::authTranscript(hello_->key, self_, hello_->nonce, nonce_, remoteFp_, localFp_),
                    proof.signature};
  return s;
}

LinkAuth::Step LinkAuth::onSigned(const std::optional<wire::Signature>& signature) {
  if (state_ != State::kRunning || !signing_) return {};
  signing_ = false;
  if (!signature) return fail("link auth: could not sign with our key");
  proofSent_ = true;
  Step s;
  s.send = wire::encode(wire::AuthProof{*signature});
  return progress(std::move(s));
}

LinkAuth::Step LinkAuth::onVerified(bool ok) {
  if (state_ != State::kRunning || !verifying_) return {};
  verifying_ = false;
  if (!ok) return fail("link auth: the peer's AUTH_PROOF does not verify (a relay between us, or a forged key)");
  verifiedOk_ = true;
  return progress({});
}

LinkAuth::Step LinkAuth::progress(Step s) {
  if (proofSent_ && verifiedOk_) {
    state_ = State::kProven;
    s.proven = true;
  }
  return s;
}

LinkAuth::Step LinkAuth::tick(swarm::Time now) {
  if ((state_ == State::kRunning || state_ == State::kNew) && now >= deadline_) {
    return fail("link auth: not proven in time");
  }
  return {};
}

std::optional<Bytes> LinkAuth::takeEarly() {
  std::optional<Bytes> e = std::move(early_);
  early_.reset();
  return e;
}

}  // namespace p2pcdn::node
