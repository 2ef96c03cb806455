// A peer that floods and does not read (issue "Trust", work item 1 of
// ../shared/reviews/security-2026-12-02.md): what the seeder queues for it
// stays bounded, the manifest goes once per link, and the others still
// complete.
#include <gtest/gtest.h>

#include <optional>

#include "session_fixture.hpp"
#include "swarm/session.hpp"

namespace p2pcdn::swarm {
namespace {

using namespace session_testing;

// A copy: peerStats() returns a temporary.
std::optional<PeerStats> statsOf(const std::vector<PeerStats>& all, PeerKey key) {
  for (const auto& s : all) {
    if (s.key == key) return s;
  }
  return std::nullopt;
}

bool dropped(const Host& h, PeerKey key) {
  return std::find(h.disconnected.begin(), h.disconnected.end(), key) != h.disconnected.end();
}

// No message-rate limit: the queue bounds below must hold by themselves.
SessionOptions unlimitedRate() {
  SessionOptions o;
  o.maxMessagesPerSecond = 0;
  return o;
}

// Peer 1 asks for the manifest 100 000 times and never reads: one copy is
// queued, not 100 000, and it is not dropped for the copy it asked for.
TEST(Abuse, TheManifestIsQueuedOncePerLink) {
  Fixture f(3, 1, 64, unlimitedRate());
  f.net.connect(0, 1);
  f.net.pump();
  ASSERT_TRUE(f.s(1).complete());
  f.h(0).refuse.insert(1);
  const auto request = *wire::encode(wire::ManifestRequest{7});
  for (int i = 0; i < 100000; ++i) f.s(0).onMessage(1, request, f.net.now);
  const auto s = statsOf(f.s(0).peerStats(f.net.now), 1);
  ASSERT_TRUE(s);
  EXPECT_GT(s->controlBytes, 0u) << "the one copy waits for the link";
  EXPECT_LT(s->controlBytes, 64u * 1024) << "more than one manifest copy queued";
  EXPECT_FALSE(dropped(f.h(0), 1));
  // Another leecher still gets the whole file.
  f.net.connect(0, 2);
  f.net.pump();
  EXPECT_TRUE(f.s(2).complete());
}

// Peer 1 floods REQUESTs while we cannot write to it: each would get a
// REJECT queued. The queue stops at kMaxControlBytes and the peer is dropped
// (at the end of the message that crossed it, or at the next tick).
TEST(Abuse, APeerThatFloodsAndDoesNotReadIsDropped) {
  Fixture f(3, 1, 64, unlimitedRate());
  f.net.connect(0, 1);
  f.net.connect(0, 2);
  f.net.pump(6);  // handshakes
  f.h(0).refuse.insert(1);
  std::size_t most = 0;
  for (std::uint32_t i = 0; i < 1000000 && !dropped(f.h(0), 1); ++i) {
    auto req = wire::encode(wire::Request{i + 100, i % 64, 0, 1024});
    ASSERT_TRUE(req);
    f.s(0).onMessage(1, *req, f.net.now);
    if (i % 1024 == 0) {
      if (const auto s = statsOf(f.s(0).peerStats(f.net.now), 1)) most = std::max(most, s->controlBytes);
      f.s(0).tick(f.net.now);
    }
  }
  EXPECT_TRUE(dropped(f.h(0), 1)) << "a million unread replies and still linked";
  EXPECT_LE(most, kMaxControlBytes);
  f.net.pump();
  EXPECT_TRUE(f.s(2).complete()) << "the honest leecher did not complete";
}

// Peer 0 sends two chunks, then only KEEPALIVEs. Its requests must go
// elsewhere within seconds: the deadline is computed from its rate at its
// last progress, not from a meter that decays towards zero while it is
// silent (then the deadline grew faster than the silence and never came).
TEST(Abuse, APeerThatGoesSilentLosesItsRequests) {
  Fixture f(3, 2, 64);  // peers 0 and 1 hold the file, 2 wants it
  f.net.connect(2, 0);
  while (f.s(2).stats().chunksHave < 2 && f.net.pump(1) == 1) {
  }
  ASSERT_GE(f.s(2).stats().chunksHave, 2u);
  ASSERT_LT(f.s(2).stats().chunksHave, 64u);
  const Time silentAt = f.net.now;
  const std::uint32_t timeoutsBefore = f.s(2).stats().timeouts;
  const auto keepAlive = *wire::encode(wire::KeepAlive{});
  auto lose0 = [&] { std::erase_if(f.net.wire, [](const auto& m) { return std::get<0>(m) == 0; }); };
  auto step = [&] {
    f.net.now += std::chrono::milliseconds(100);
    lose0();  // everything peer 0 sends is lost from now on, but it keeps saying hello
    for (int i = 0; i < 3; ++i) f.s(i).tick(f.net.now);
    while (f.net.pump(1) == 1) lose0();
  };
  std::optional<Time> released;
  for (int i = 0; i < 300 && !released; ++i) {  // 30 s
    if (i % 10 == 0) f.s(2).onMessage(0, keepAlive, f.net.now);
    step();
    const auto a = statsOf(f.s(2).peerStats(f.net.now), 0);
    if (a && a->requestsOutstanding == 0 && f.s(2).stats().timeouts > timeoutsBefore) released = f.net.now;
  }
  ASSERT_TRUE(released) << "the silent peer kept its requests for 30 s";
  EXPECT_LT(seconds(*released - silentAt), 10.0);
  // Another peer then gets the file done.
  f.net.connect(2, 1);
  for (int i = 0; i < 50 && !f.s(2).complete(); ++i) step();
  EXPECT_TRUE(f.s(2).complete());
}

// A leecher with only the link asks peer 0 for the manifest; peer 0 never
// answers (but keeps the link alive). After manifestTimeout the leecher asks
// peer 1, which has it too, and gets the file.
TEST(Abuse, ASilentManifestHolderIsPassedOver) {
  Fixture f(3, 2, 16);
  wire::PeerId pid{};
  pid[0] = 3;
  f.net.sessions[2] = std::make_unique<Session>(f.id, pid, std::nullopt, std::vector<bool>{}, f.h(2), SessionOptions{}, 3);
  f.s(2).setWanted(true, f.net.now);
  auto lose0 = [&] { std::erase_if(f.net.wire, [](const auto& m) { return std::get<0>(m) == 0 && std::get<1>(m) == 2; }); };
  f.net.connect(2, 0);
  // Only the handshakes from 0 get through; then 0 goes silent.
  for (int i = 0; i < 4; ++i) f.net.pump(1);
  lose0();
  f.net.connect(2, 1);
  const auto keepAlive = *wire::encode(wire::KeepAlive{});
  const Time t0 = f.net.now;
  for (int i = 0; i < 300 && !f.s(2).complete(); ++i) {
    f.net.now += std::chrono::milliseconds(100);
    if (i % 10 == 0) f.s(2).onMessage(0, keepAlive, f.net.now);
    for (int k = 0; k < 3; ++k) f.s(k).tick(f.net.now);
    lose0();
    while (f.net.pump(1) == 1) lose0();
  }
  ASSERT_TRUE(f.s(2).complete()) << "the leecher waited 30 s for the silent peer's manifest";
  EXPECT_LT(seconds(f.net.now - t0), 15.0);
}

// The host proved the link's peer id (node::LinkAuth); a HANDSHAKE naming
// another id (a peer posing as one it proved it is not) is dropped, and the
// one naming the proven id is taken.
TEST(Abuse, AHandshakeMustNameTheProvenPeerId) {
  Fixture f(2, 1, 4);
  wire::PeerId proven{};
  proven[0] = 99;  // peer 1's HANDSHAKE says 2 (the fixture's id for it)
  f.s(0).addPeer(1, f.net.now, proven);
  f.s(1).addPeer(0, f.net.now);
  f.net.pump();
  auto st = statsOf(f.s(0).peerStats(f.net.now), 1);
  EXPECT_FALSE(st && st->handshaken) << "took a HANDSHAKE that named another id than the proven one";
  Fixture g(2, 1, 4);
  wire::PeerId right{};
  right[0] = 2;
  g.s(0).addPeer(1, g.net.now, right);
  g.s(1).addPeer(0, g.net.now);
  g.net.pump();
  auto ok = statsOf(g.s(0).peerStats(g.net.now), 1);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->handshaken);
}

// With the default rate limit, the same 100 000 MANIFEST_REQUESTs (or any
// flood of small messages) drop the peer once its burst is spent; the
// others are not affected.
TEST(Abuse, AMessageFloodDropsThePeer) {
  Fixture f(3, 1, 64);
  f.net.connect(0, 1);
  f.net.pump();
  const auto request = *wire::encode(wire::ManifestRequest{7});
  int sent = 0;
  for (; sent < 100000 && !dropped(f.h(0), 1); ++sent) f.s(0).onMessage(1, request, f.net.now);
  EXPECT_TRUE(dropped(f.h(0), 1));
  EXPECT_LE(sent, 10001) << "dropped only after " << sent << " messages in one instant";
  // Spread out at an honest pace (1000 a second for 20 s), nobody is dropped.
  f.net.connect(0, 2);
  f.net.pump();
  const auto keepAlive = *wire::encode(wire::KeepAlive{});
  for (int i = 0; i < 20000; ++i) {
    f.net.now += std::chrono::milliseconds(1);
    f.s(0).onMessage(2, keepAlive, f.net.now);
  }
  EXPECT_FALSE(dropped(f.h(0), 2));
}

// A REQUEST for a sliver of a chunk is refused as invalid (each served
// request costs a whole chunk's read and re-hash); the rest of a chunk, however
// short, is fine.
TEST(Abuse, RequestsForSliversAreRefused) {
  Fixture f(2, 1, 4);
  f.net.connect(0, 1);
  f.net.pump(2);  // the handshakes: 1 is unchoked
  f.s(0).onMessage(1, *wire::encode(wire::Request{500, 0, 0, 100}), f.net.now);
  f.s(0).onMessage(1, *wire::encode(wire::Request{501, 1, 1000, 24}), f.net.now);  // the last 24 bytes
  f.net.settle();
  bool refused = false, served = false;
  for (const auto& [from, to, m] : f.net.wire) {
    auto d = wire::decodeMessage(m);
    if (!d) continue;
    if (const auto* r = std::get_if<wire::Reject>(&*d)) {
      refused = refused || (r->requestId == 500 && r->reason == wire::RejectReason::kInvalidRequest);
    }
    if (const auto* p = std::get_if<wire::Piece>(&*d)) served = served || p->requestId == 501;
  }
  EXPECT_TRUE(refused) << "a 100-byte REQUEST of a 1024-byte chunk was not refused";
  EXPECT_TRUE(served) << "the last 24 bytes of a chunk were not served";
}

// A peer shows every chunk and refuses each request as not-have: after
// dropAfterFalseHaves such lies it is dropped (and asked no more).
TEST(Abuse, APeerThatRefusesWhatItShowedIsDropped) {
  Fixture f(2, 0, 64);  // 0 and 1 both want the file; 1 plays the liar by hand
  f.s(0).addPeer(9, f.net.now);
  wire::Handshake h;
  h.peerId[0] = 42;
  h.capabilities = wire::kCapHasManifest;
  h.fileId = f.id;
  f.s(0).onMessage(9, *wire::encode(h), f.net.now);
  std::vector<std::uint8_t> bits(wire::bitfieldBytes(64), 0xff);
  f.s(0).onMessage(9, *wire::encode(wire::Bitfield{64, bits}), f.net.now);
  int lies = 0;
  for (int round = 0; round < 50 && !dropped(f.h(0), 9); ++round) {
    std::vector<std::uint32_t> asked;
    for (const auto& [from, to, msg] : f.net.wire) {
      if (to != 9) continue;
      auto d = wire::decodeMessage(msg);
      if (d && std::holds_alternative<wire::Request>(*d)) asked.push_back(std::get<wire::Request>(*d).requestId);
    }
    f.net.wire.clear();
    for (std::uint32_t rid : asked) {
      if (dropped(f.h(0), 9)) break;
      f.s(0).onMessage(9, *wire::encode(wire::Reject{rid, wire::RejectReason::kNotHave, 0}), f.net.now);
      ++lies;
    }
    f.net.now += std::chrono::milliseconds(100);
    f.s(0).tick(f.net.now);
  }
  EXPECT_TRUE(dropped(f.h(0), 9)) << "still linked after " << lies << " refusals of chunks it showed";
  EXPECT_LE(lies, 8);
}

// A super-seeder reveals every chunk at once (one HAVE each) when a peer goes
// idle: new HAVEs cost no budget, so a 20 000-chunk reveal is no flood; the
// same HAVE over and over is.
TEST(Abuse, NewHavesAreFreeRepeatsAreNot) {
  Fixture f(1, 0, 20000);
  f.s(0).addPeer(9, f.net.now);
  wire::Handshake h;
  h.peerId[0] = 42;
  h.capabilities = wire::kCapHasManifest | wire::kCapSuperSeed;
  h.fileId = f.id;
  f.s(0).onMessage(9, *wire::encode(h), f.net.now);
  std::vector<std::uint8_t> none(wire::bitfieldBytes(20000), 0);
  f.s(0).onMessage(9, *wire::encode(wire::Bitfield{20000, none}), f.net.now);
  for (std::uint32_t i = 0; i < 20000; ++i) f.s(0).onMessage(9, *wire::encode(wire::Have{i}), f.net.now);
  EXPECT_FALSE(dropped(f.h(0), 9)) << "a super-seeder's reveal of 20 000 chunks counted as a flood";
  for (int i = 0; i < 20000 && !dropped(f.h(0), 9); ++i) f.s(0).onMessage(9, *wire::encode(wire::Have{0}), f.net.now);
  EXPECT_TRUE(dropped(f.h(0), 9)) << "20 000 repeats of one HAVE in an instant";
}

}  // namespace
}  // namespace p2pcdn::swarm
