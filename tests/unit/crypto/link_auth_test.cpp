// Link authentication end to end in pure code with real Ed25519 (OpenSSL):
// node::LinkAuth on both sides, the wire messages between them, and the
// attacks the channel binding is there for (a relay that terminates DTLS on
// each side, a claimed id, a replayed proof, a reflected hello).
#include <gtest/gtest.h>

#include <deque>
#include <functional>

#include "core/hex.hpp"
#include "crypto/crypto.hpp"
#include "node/link_auth.hpp"
#include "transport/peer_link.hpp"
#include "wire/auth.hpp"

namespace p2pcdn {
namespace {

using node::LinkAuth;
using std::chrono::seconds;

crypto::Ed25519Seed seedFromHex(std::string_view hex) {
  crypto::Ed25519Seed s{};
  EXPECT_TRUE(fromHex(hex, s));
  return s;
}

TEST(Ed25519, Rfc8032FirstVector) {
  auto key = crypto::Ed25519Key::fromSeed(seedFromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  ASSERT_TRUE(key);
  EXPECT_EQ(toHex(key->publicKey()), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  auto sig = key->sign({});
  ASSERT_TRUE(sig);
  EXPECT_EQ(toHex(*sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f059"
            "5bbe24655141438e7a100b");
  EXPECT_TRUE(crypto::ed25519Verify(key->publicKey(), {}, *sig));
  auto bad = *sig;
  bad[10] ^= 1;
  EXPECT_FALSE(crypto::ed25519Verify(key->publicKey(), {}, bad));
  const std::uint8_t one[] = {1};
  EXPECT_FALSE(crypto::ed25519Verify(key->publicKey(), one, *sig));
}

TEST(DtlsFingerprint, ReadsTheOneLineInOneForm) {
  const std::string line =
      "a=fingerprint:SHA-256 "
      "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\r\n";
  const std::string sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" + line;
  EXPECT_EQ(transport::dtlsFingerprint(sdp), "sha-256 abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  // Two lines (a relay adding its own certificate after the real one, where
  // libwebrtc would check the last): refused, whatever their order.
  EXPECT_FALSE(transport::dtlsFingerprint(sdp + "a=fingerprint:sha-256 " + std::string(64, 'c') + "\r\n"));
  EXPECT_FALSE(transport::dtlsFingerprint("v=0\r\na=fingerprint:sha-256 " + std::string(64, 'c') + "\r\n" + sdp));
  EXPECT_FALSE(transport::dtlsFingerprint("v=0\r\n"));
  EXPECT_FALSE(transport::dtlsFingerprint("a=fingerprint:sha-256 zz:11\r\n"));
  EXPECT_FALSE(transport::dtlsFingerprint("a=fingerprint:sha-256 AB:CD\r\n"));  // too short to be a digest
  EXPECT_FALSE(transport::dtlsFingerprint("a=fingerprint:\r\n"));
}

TEST(WireAuth, CodecAndPeerIds) {
  wire::AuthHello h;
  h.key[0] = 7;
  h.nonce[31] = 9;
  auto back = wire::decodeAuth(wire::encode(h));
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<wire::AuthHello>(*back), h);
  Bytes wrongVersion = wire::encode(h);
  wrongVersion[1] = 2;
  EXPECT_EQ(wire::decodeAuth(wrongVersion).error().code(), Errc::kUnsupported);
  Bytes shortProof = wire::encode(wire::AuthProof{});
  shortProof.pop_back();
  EXPECT_EQ(wire::decodeAuth(shortProof).error().code(), Errc::kMalformed);
  const auto id = wire::peerIdOf(h.key, 'B');
  EXPECT_EQ(std::string(id.begin(), id.begin() + 8), "-PB0002-");
  EXPECT_TRUE(wire::idMatchesKey(id, h.key));
  auto other = h.key;
  other[3] ^= 1;
  EXPECT_FALSE(wire::idMatchesKey(id, other));
}

// One side of a link: its key, its LinkAuth, and what it was told to do.
struct Side {
  crypto::Ed25519Key key;
  std::optional<LinkAuth> auth;
  std::optional<std::string> failed;
  bool proven = false;
};

// Runs two sides' steps to the end: messages cross through `relay` (which
// may change or drop them), signatures are real.
struct Duel {
  Side a{*crypto::Ed25519Key::generate(), {}, {}, false};
  Side b{*crypto::Ed25519Key::generate(), {}, {}, false};
  std::function<std::optional<Bytes>(bool toB, Bytes)> relay = [](bool, Bytes m) { return std::optional<Bytes>(m); };
  std::deque<std::function<void()>> work;
  std::vector<Bytes> earlyAtB;

  void start(const std::string& aLocal, const std::string& aRemote, const std::string& bLocal,
             const std::string& bRemote) {
    const auto nonceA = wire::Nonce{1}, nonceB = wire::Nonce{2};
    a.auth.emplace(a.key.publicKey(), nonceA, aLocal, aRemote, wire::peerIdOf(b.key.publicKey()), swarm::Time{} + seconds(10));
    b.auth.emplace(b.key.publicKey(), nonceB, bLocal, bRemote, wire::peerIdOf(a.key.publicKey()), swarm::Time{} + seconds(10));
    apply(a, a.auth->start());
    apply(b, b.auth->start());
    run();
  }
  void run() {
    while (!work.empty()) {
      auto w = std::move(work.front());
      work.pop_front();
      w();
    }
  }
  Side& other(Side& s) { return &s == &a ? b : a; }
  void apply(Side& s, LinkAuth::Step st) {
    if (st.send) {
      Bytes m = *st.send;
      work.push_back([this, &s, m] {
        if (auto out = relay(&s == &a, m)) apply(other(s), other(s).auth->onMessage(*out));
      });
    }
    if (st.sign) {
      auto sig = s.key.sign(*st.sign);
      work.push_back([this, &s, sig] { apply(s, s.auth->onSigned(sig ? std::optional(*sig) : std::nullopt)); });
    }
    if (st.verify) {
      const bool ok = crypto::ed25519Verify(st.verify->key, st.verify->transcript, st.verify->signature);
      work.push_back([this, &s, ok] { apply(s, s.auth->onVerified(ok)); });
    }
    if (st.failed) s.failed = st.failed;
    if (st.proven) s.proven = true;
  }
};

const std::string kFpA = "sha-256 " + std::string(64, 'a');
const std::string kFpB = "sha-256 " + std::string(64, 'b');
const std::string kFpM = "sha-256 " + std::string(64, 'c');  // the relay's own certificate

TEST(LinkAuth, TwoHonestPeersProveEachOther) {
  Duel d;
  d.start(kFpA, kFpB, kFpB, kFpA);
  EXPECT_TRUE(d.a.proven) << d.a.failed.value_or("");
  EXPECT_TRUE(d.b.proven) << d.b.failed.value_or("");
  EXPECT_EQ(d.a.auth->peerKey(), d.b.key.publicKey());
  EXPECT_EQ(d.b.auth->peerId(), wire::peerIdOf(d.a.key.publicKey()));
}

// The relay terminates DTLS on both sides with its own certificate, so A sees
// M's fingerprint where B's should be, and B sees M's where A's should be; it
// passes every message through. Neither proof verifies, so no link is proven.
TEST(LinkAuth, ARelayThatTerminatesDtlsIsRefusedByBothSides) {
  Duel d;
  d.start(kFpA, kFpM, kFpB, kFpM);
  EXPECT_FALSE(d.a.proven);
  EXPECT_FALSE(d.b.proven);
  ASSERT_TRUE(d.a.failed && d.b.failed);
  EXPECT_NE(d.a.failed->find("does not verify"), std::string::npos) << *d.a.failed;
}

// An attacker relays the tracker's id of an honest peer but has only its own key.
TEST(LinkAuth, AKeyThatDoesNotGiveTheClaimedIdIsRefused) {
  Duel d;
  auto honest = *crypto::Ed25519Key::generate();
  d.a.auth.emplace(d.a.key.publicKey(), wire::Nonce{1}, kFpA, kFpB, wire::peerIdOf(honest.publicKey()),
                   swarm::Time{} + seconds(10));
  d.b.auth.emplace(d.b.key.publicKey(), wire::Nonce{2}, kFpB, kFpA, wire::peerIdOf(d.a.key.publicKey()),
                   swarm::Time{} + seconds(10));
  d.apply(d.a, d.a.auth->start());
  d.apply(d.b, d.b.auth->start());
  d.run();
  EXPECT_FALSE(d.a.proven);
  ASSERT_TRUE(d.a.failed);
  EXPECT_NE(d.a.failed->find("peer id"), std::string::npos) << *d.a.failed;
}

// A proof recorded on one link, replayed on another with the same
// certificates (a node that reuses its DTLS certificate): the nonces differ.
TEST(LinkAuth, AProofReplayedOnAnotherLinkFails) {
  Duel first;
  std::optional<Bytes> recorded;
  first.relay = [&](bool toB, Bytes m) {
    if (!toB && m[0] == wire::kAuthProofType) recorded = m;
    return std::optional<Bytes>(m);
  };
  first.start(kFpA, kFpB, kFpB, kFpA);
  ASSERT_TRUE(recorded && first.a.proven);
  // The replayer holds no key of B's: it sends B's old hello (same key) and the old proof.
  Bytes oldHello = wire::encode(wire::AuthHello{first.b.key.publicKey(), wire::Nonce{2}});
  LinkAuth victim(first.a.key.publicKey(), wire::Nonce{77}, kFpA, kFpB, wire::peerIdOf(first.b.key.publicKey()),
                  swarm::Time{} + seconds(10));
  ASSERT_TRUE(victim.start().send);
  auto s1 = victim.onMessage(oldHello);
  ASSERT_TRUE(s1.sign);
  auto s2 = victim.onMessage(*recorded);
  ASSERT_TRUE(s2.verify);
  EXPECT_FALSE(crypto::ed25519Verify(s2.verify->key, s2.verify->transcript, s2.verify->signature));
  EXPECT_TRUE(victim.onVerified(false).failed);
}

TEST(LinkAuth, OrderAndLimits) {
  const auto self = crypto::Ed25519Key::generate()->publicKey();
  const auto peer = crypto::Ed25519Key::generate()->publicKey();
  auto fresh = [&] {
    LinkAuth a(self, wire::Nonce{}, kFpA, kFpB, wire::peerIdOf(peer), swarm::Time{} + seconds(10));
    (void)a.start();
    return a;
  };
  const Bytes handshake(64, 1);
  {  // a wire message before any proof
    auto a = fresh();
    EXPECT_TRUE(a.onMessage(handshake).failed);
  }
  {  // a proof before the hello
    auto a = fresh();
    EXPECT_TRUE(a.onMessage(wire::encode(wire::AuthProof{})).failed);
  }
  {  // our own key reflected back
    LinkAuth a(self, wire::Nonce{}, kFpA, kFpB, wire::peerIdOf(self), swarm::Time{} + seconds(10));
    (void)a.start();
    EXPECT_TRUE(a.onMessage(wire::encode(wire::AuthHello{self, wire::Nonce{}})).failed);
  }
  {  // a second hello; then one early message is kept, a second is too many
    auto a = fresh();
    EXPECT_FALSE(a.onMessage(wire::encode(wire::AuthHello{peer, wire::Nonce{}})).failed);
    EXPECT_TRUE(a.onMessage(wire::encode(wire::AuthHello{peer, wire::Nonce{}})).failed);
    auto b = fresh();
    (void)b.onMessage(wire::encode(wire::AuthHello{peer, wire::Nonce{}}));
    (void)b.onMessage(wire::encode(wire::AuthProof{}));
    EXPECT_FALSE(b.onMessage(handshake).failed);
    EXPECT_TRUE(b.onMessage(handshake).failed);
  }
  {  // an oversized early message
    auto a = fresh();
    (void)a.onMessage(wire::encode(wire::AuthHello{peer, wire::Nonce{}}));
    (void)a.onMessage(wire::encode(wire::AuthProof{}));
    EXPECT_TRUE(a.onMessage(Bytes(4096, 1)).failed);
  }
  {  // the deadline
    auto a = fresh();
    EXPECT_FALSE(a.tick(swarm::Time{} + seconds(9)).failed);
    EXPECT_TRUE(a.tick(swarm::Time{} + seconds(10)).failed);
  }
  {  // no fingerprint in an SDP: refused before anything is sent
    LinkAuth a(self, wire::Nonce{}, "", kFpB, wire::peerIdOf(peer), swarm::Time{} + seconds(10));
    auto s = a.start();
    EXPECT_TRUE(s.failed);
    EXPECT_FALSE(s.send);
  }
}

}  // namespace
}  // namespace p2pcdn
