// PeerMesh's part of swarm::Session (session_fixture.hpp): a chunk wished of
// a named peer (Session::wish), and the picker asking nothing else while its
// window is past the end (what the browser's requestChunk sets up alone).
#include <gtest/gtest.h>

#include <set>

#include "session_fixture.hpp"

namespace p2pcdn::swarm {
namespace {

using namespace session_testing;

std::set<ChunkIndex> askedOf(Fixture& f, int from, int to) {
  std::set<ChunkIndex> asked;
  for (auto& m : f.net.peek(from, to)) {
    if (auto* r = std::get_if<wire::Request>(&m)) asked.insert(r->index);
  }
  return asked;
}

TEST(Session, AWishedChunkIsAskedOfThatPeerFirst) {
  SessionOptions o;
  o.superSeed = false;
  Fixture f(4, 2, 64, o);  // seeders 0 and 1; 2 streams from chunk 0, 4 ahead; 3 a leecher
  f.s(2).setStreaming(true, 0, 4, f.net.now);
  f.net.connect(2, 0);
  f.net.connect(2, 1);
  f.net.pump(8);  // HANDSHAKEs and BITFIELDs both ways: 2 asks for chunks of its window
  ASSERT_FALSE(askedOf(f, 2, 0).count(40) || askedOf(f, 2, 1).count(40));  // outside the window: the picker never asks
  ASSERT_TRUE(f.s(2).wish(1, 40, f.net.now));
  EXPECT_TRUE(askedOf(f, 2, 1).count(40)) << "the wish did not reach peer 1";
  EXPECT_FALSE(askedOf(f, 2, 0).count(40)) << "the wished chunk was asked of another peer";
  // Bad wishes fail clearly; one for a chunk held is no error and asks nothing.
  EXPECT_EQ(f.s(2).wish(7, 41, f.net.now).error().code(), Errc::kNotFound);      // no such peer
  EXPECT_EQ(f.s(2).wish(1, 64, f.net.now).error().code(), Errc::kInvalidArgument);  // past the end
  f.net.pump();
  EXPECT_TRUE(f.s(2).have(40));
  EXPECT_FALSE(f.s(2).have(41));
  EXPECT_TRUE(f.s(2).peerHas(1, 41));
  EXPECT_FALSE(f.s(2).peerHas(7, 41));
  const std::size_t before = f.net.wire.size();
  EXPECT_TRUE(f.s(2).wish(1, 40, f.net.now));
  EXPECT_EQ(f.net.wire.size(), before);
  // A peer that lacks the chunk: not-found (leecher 3 is linked to 2 alone, which holds few chunks).
  f.net.connect(2, 3);
  f.net.pump();
  ASSERT_FALSE(f.s(2).peerHas(3, 63));
  EXPECT_EQ(f.s(2).wish(3, 63, f.net.now).error().code(), Errc::kNotFound);
}

TEST(Session, WithTheWindowPastTheEndOnlyWishesAreAsked) {
  SessionOptions o;
  o.superSeed = false;
  Fixture f(3, 2, 8, o);
  // Leecher 2 without the manifest, its window past the end set before the
  // manifest comes (the picker made then must take the cursor).
  wire::PeerId pid{};
  pid[0] = 9;
  f.net.sessions[2] = std::make_unique<Session>(f.id, pid, std::nullopt, std::vector<bool>{}, f.h(2), o, 7);
  f.s(2).setWanted(true, f.net.now);
  f.s(2).setStreaming(true, 0xffffffffu, 1, f.net.now);
  f.net.connect(2, 0);
  f.net.connect(2, 1);
  f.net.pump();
  ASSERT_TRUE(f.s(2).manifest().has_value());
  EXPECT_EQ(f.s(2).stats().chunksHave, 0u) << "the picker fetched with its window past the end";
  // The wish of the last chunk but one, then of the very last: endgame (every
  // chunk left is asked for) must not race them at the other seeder.
  ASSERT_TRUE(f.s(2).wish(1, 6, f.net.now));
  f.net.pump();
  EXPECT_TRUE(f.s(2).have(6));
  EXPECT_EQ(f.s(2).stats().chunksHave, 1u);
  for (ChunkIndex i = 0; i < 6; ++i) ASSERT_TRUE(f.s(2).wish(i % 2, i, f.net.now));
  f.net.pump();
  for (ChunkIndex i = 0; i < 7; ++i) EXPECT_TRUE(f.s(2).have(i)) << "wished chunk " << i << " never came";
  ASSERT_TRUE(f.s(2).wish(0, 7, f.net.now));
  f.s(2).setStreaming(true, 0xffffffffu, 1, f.net.now);  // every peer's pipeline topped up again
  EXPECT_TRUE(askedOf(f, 2, 0).count(7));
  EXPECT_FALSE(askedOf(f, 2, 1).count(7)) << "the last chunk was raced at a peer nobody wished it of";
  f.net.pump();
  EXPECT_TRUE(f.s(2).complete());
}

TEST(Session, AnOfferedChunkIsShownAndServedToAChokedPeer) {
  SessionOptions o;
  o.superSeed = true;          // the publisher shows few chunks: the offer must show this one
  o.maxConcurrentUploads = 1;  // the first peer to shake hands takes the one slot
  Fixture f(3, 1, 32, o);
  f.net.connect(0, 1);
  f.net.pump(4);
  f.net.connect(0, 2);
  f.net.pump(6);
  f.net.wire.clear();  // what follows is the offer's doing
  auto reply = [&](ChunkIndex index, std::uint32_t rid) {  // peer 2 asks seeder 0 for the chunk
    f.s(0).onMessage(2, *wire::encode(wire::Request{rid, index, 0, 1024}), f.net.now);
    f.net.settle();
    for (auto& m : f.net.peek(0, 2)) {
      if (auto* x = std::get_if<wire::Piece>(&m); x && x->requestId == rid) return std::string("piece");
      if (auto* x = std::get_if<wire::Reject>(&m); x && x->requestId == rid) return std::string("reject");
    }
    return std::string("nothing");
  };
  ASSERT_EQ(reply(20, 1), "reject") << "peer 2 should be choked (one upload slot, peer 1 has it)";
  f.net.wire.clear();
  ASSERT_TRUE(f.s(0).offer(2, 21, f.net.now));
  bool shown = false;
  for (auto& m : f.net.peek(0, 2)) {
    if (auto* h = std::get_if<wire::Have>(&m)) shown = shown || h->index == 21;
  }
  EXPECT_TRUE(shown) << "no HAVE for the offered chunk";
  EXPECT_EQ(reply(21, 2), "piece") << "the offered chunk was not served to the choked peer";
  EXPECT_EQ(reply(22, 3), "reject") << "an offer opened more than its chunk";
  EXPECT_EQ(f.s(0).offer(7, 21, f.net.now).error().code(), Errc::kNotFound);  // no such peer
  EXPECT_EQ(f.s(1).offer(0, 31, f.net.now).error().code(), Errc::kNotFound);  // leecher 1 lacks chunk 31
}

}  // namespace
}  // namespace p2pcdn::swarm
