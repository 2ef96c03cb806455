// LinkAuth: the authentication of one link, sans I/O (wire/auth.hpp has the
// messages and docs/protocol.md "Peer identity" the rules). The node makes one
// per link when it opens, sends hello(), feeds it every message until it is
// proven, and carries out what each step asks: send, sign, verify, fail. Once
// proven, the link goes to the swarm session under the proven peer id, with
// the one message the peer may have sent after its proof (its HANDSHAKE).
//
// A peer is proven when its AUTH_PROOF verifies under the key of its
// AUTH_HELLO over this link's nonces and DTLS fingerprints, its key is not
// ours, and (when the tracker named it) its peer id is the one derived from
// that key. Anything else fails the link: a message out of order, a second
// HELLO or PROOF, more than one early message, a bad signature, the deadline.
#pragma once

#include <optional>
#include <string>

#include "swarm/rate.hpp"
#include "wire/auth.hpp"

namespace p2pcdn::node {

class LinkAuth {
 public:
  using PeerId = std::array<std::uint8_t, 20>;
  struct Verify {
    wire::PublicKey key;
    Bytes transcript;
    wire::Signature signature;
  };
  // What to do after an input; several may be set (send first).
  struct Step {
    std::optional<Bytes> send;          // a message for the peer
    std::optional<Bytes> sign;          // sign this with our key, then call onSigned()
    std::optional<Verify> verify;       // verify this, then call onVerified()
    std::optional<std::string> failed;  // close the link: why
    bool proven = false;                // hand the link to the session (peerId(), takeEarly())
  };

  // `expected`: the peer id the tracker gave for this link; the peer's key
  // must give it (wire::idMatchesKey). Fingerprints: transport::dtlsFingerprint
  // of our and the peer's SDP.
  LinkAuth(const wire::PublicKey& self, const wire::Nonce& nonce, std::string localFingerprint,
           std::string remoteFingerprint, const PeerId& expected, swarm::Time deadline);

  // The first message on the link; call once, when it opens. It fails the
  // link at once if a fingerprint is missing or too long.
  Step start();
  Step onMessage(ByteView message);
  Step onSigned(const std::optional<wire::Signature>& signature);  // nullopt: signing failed
  Step onVerified(bool ok);
  // Fails the link if it is not proven by the deadline.
  Step tick(swarm::Time now);

  bool proven() const { return state_ == State::kProven; }
  bool failed() const { return state_ == State::kFailed; }
  // The peer's id (the expected one, now proven) and key, once it has sent its AUTH_HELLO.
  const PeerId& peerId() const { return expected_; }
  const wire::PublicKey& peerKey() const { return peerKey_; }
  // The message that came after the peer's proof while ours was not yet out
  // or its proof not yet checked (at most one), for the session.
  std::optional<Bytes> takeEarly();

 private:
  enum class State { kNew, kRunning, kProven, kFailed };
  Step fail(std::string why);
  Step progress(Step s);  // proven once our proof is out and theirs checked

  wire::PublicKey self_;
  wire::Nonce nonce_;
  std::string localFp_, remoteFp_;
  PeerId expected_;
  swarm::Time deadline_;
  State state_ = State::kNew;
  std::optional<wire::AuthHello> hello_;  // theirs
  bool signing_ = false, proofSent_ = false;
  bool proofSeen_ = false, verifying_ = false, verifiedOk_ = false;
  wire::PublicKey peerKey_{};
  std::optional<Bytes> early_;
};

}  // namespace p2pcdn::node
