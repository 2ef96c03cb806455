// A peer that floods and does not read (issue "Trust", work item 1 of
// ../shared/reviews/security-2026-12-02.md): what the seeder queues for it
// stays bounded, the manifest goes once per link, and the others still
// complete.
#include <gtest/gtest.h>

#include "session_fixture.hpp"
#include "swarm/session.hpp"

namespace p2pcdn::swarm {
namespace {

using namespace session_testing;

const PeerStats* statsOf(const std::vector<PeerStats>& all, PeerKey key) {
  for (const auto& s : all) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

bool dropped(const Host& h, PeerKey key) {
  return std::find(h.disconnected.begin(), h.disconnected.end(), key) != h.disconnected.end();
}

// Peer 1 asks for the manifest 100 000 times and never reads: one copy is
// queued, not 100 000, and it is not dropped for the copy it asked for.
TEST(Abuse, TheManifestIsQueuedOncePerLink) {
  Fixture f(3, 1, 64);
  f.net.connect(0, 1);
  f.net.pump();
  ASSERT_TRUE(f.s(1).complete());
  f.h(0).refuse.insert(1);
  const auto request = *wire::encode(wire::ManifestRequest{7});
  for (int i = 0; i < 100000; ++i) f.s(0).onMessage(1, request, f.net.now);
  const PeerStats* s = statsOf(f.s(0).peerStats(f.net.now), 1);
  ASSERT_NE(s, nullptr);
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
  Fixture f(3, 1, 64);
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
      if (const PeerStats* s = statsOf(f.s(0).peerStats(f.net.now), 1)) most = std::max(most, s->controlBytes);
      f.s(0).tick(f.net.now);
    }
  }
  EXPECT_TRUE(dropped(f.h(0), 1)) << "a million unread replies and still linked";
  EXPECT_LE(most, kMaxControlBytes);
  f.net.pump();
  EXPECT_TRUE(f.s(2).complete()) << "the honest leecher did not complete";
}

}  // namespace
}  // namespace p2pcdn::swarm
