// swarm::Session between in-memory hosts (session_fixture.hpp): the wire
// conversation, verification, bans, choking, super-seeding.
#include "swarm/session.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <set>

#include "core/blake3.hpp"
#include "session_fixture.hpp"

namespace p2pcdn::swarm {
namespace {

using namespace session_testing;
using std::chrono::milliseconds;

TEST(Session, LeecherFetchesEveryChunkVerified) {
  Fixture f(2, 1, 20);
  f.net.connect(0, 1);
  f.net.pump();
  EXPECT_TRUE(f.s(1).complete());
  EXPECT_TRUE(f.h(1).completed);
  ASSERT_EQ(f.h(1).stored.size(), 20u);
  for (auto& [i, c] : f.h(1).stored) EXPECT_EQ(c, f.chunks[i]);
  auto st = f.s(1).stats();
  EXPECT_EQ(st.chunksFetched, 20u);
  EXPECT_EQ(st.wasted, 0u);
  EXPECT_EQ(f.s(0).stats().uploaded, 20u * 1024);
}

TEST(Session, PublisherSuperSeedsWithAnEmptyBitfieldAndHaves) {
  SessionOptions o;
  o.superSeedReveal = 2;
  Fixture f(3, 1, 8, o);
  f.net.connect(0, 1);
  f.net.connect(0, 2);
  f.net.pump(4);  // the HANDSHAKEs
  auto msgs = f.net.peek(0, 1);
  ASSERT_EQ(msgs.size(), 3u);  // BITFIELD (empty), HAVE, HAVE
  auto* bf = std::get_if<wire::Bitfield>(&msgs[0]);
  ASSERT_NE(bf, nullptr);
  for (ChunkIndex i = 0; i < 8; ++i) EXPECT_FALSE(bf->has(i));
  EXPECT_TRUE(std::holds_alternative<wire::Have>(msgs[1]));
  EXPECT_TRUE(std::holds_alternative<wire::Have>(msgs[2]));
  f.net.pump();
  EXPECT_TRUE(f.s(1).complete());  // reveals continue as chunks are taken
  EXPECT_TRUE(f.s(2).complete());
}

TEST(Session, ASuperSeederShowsEverythingToAPeerThatStoppedAskingOnASlowLink) {
  // The leecher switches to streaming after the handshake (the seeder still
  // super-seeds it), from a chunk the seeder has not shown it: it asks for
  // nothing more. The seeder must then show it everything. Its per-link rate
  // decays towards zero but never reaches it; the idle time it allowed a slow
  // link (4 chunk-times at the rate *now*) grew faster than the quiet time, so
  // on a link slower than ~5 chunks/s the seeder waited forever (the api's
  // StreamYieldsChunksInOrder stalled after ~10 of 129 chunks, under load).
  SessionOptions o;
  o.superSeedReveal = 2;
  Fixture f(2, 1, 1024, o);
  f.net.connect(0, 1);
  f.net.pump(24);  // handshakes and a few chunks: about 3 KB/s on the seeder's meter
  ASSERT_LT(f.s(1).stats().chunksHave, 1024u);
  // The last chunk: not among the few shown so far (at most 8 of 1024 are
  // shown ahead of requests, so only "show everything" makes it requestable).
  f.s(1).setStreaming(true, 1023, 1, f.net.now);
  ASSERT_FALSE(f.s(1).have(1023));
  for (int i = 0; i < 600 && !f.s(1).have(1023); ++i) {  // 60 s of ticks
    f.net.now += std::chrono::milliseconds(100);
    f.s(0).tick(f.net.now);
    f.s(1).tick(f.net.now);
    f.net.pump();
  }
  EXPECT_TRUE(f.s(1).have(1023)) << "the super-seeder never showed the chunk the peer streams from";
}

TEST(Session, HavesBeforeTheManifestAreKept) {
  SessionOptions o;
  Fixture f(3, 1, 8, o);
  // Leecher 1 starts without the manifest and fetches it from the seeder.
  wire::PeerId pid{};
  pid[0] = 9;
  f.net.sessions[1] = std::make_unique<Session>(f.id, pid, std::nullopt, std::vector<bool>{}, f.h(1), o, 7);
  f.s(1).setWanted(true, f.net.now);
  f.net.connect(0, 2);
  f.net.connect(0, 1);
  f.net.pump();
  EXPECT_TRUE(f.s(1).complete());
  EXPECT_TRUE(f.s(2).complete());
}

TEST(Session, ARejectedManifestRequestGoesToAnotherPeer) {
  SessionOptions o;
  Fixture f(3, 2, 4, o);  // 0 and 1 hold the file
  wire::PeerId pid{};
  pid[0] = 9;
  f.net.sessions[2] = std::make_unique<Session>(f.id, pid, std::nullopt, std::vector<bool>{}, f.h(2), o, 7);
  f.s(2).setWanted(true, f.net.now);
  f.net.connect(0, 2);
  f.net.connect(1, 2);
  f.net.pump(4);  // the HANDSHAKEs reach 2, which asks one of them for the manifest
  int asked = -1;
  std::uint32_t rid = 0;
  for (auto& [from, to, m] : f.net.wire) {
    auto d = wire::decodeMessage(ByteView(m));
    if (from == 2 && d && std::holds_alternative<wire::ManifestRequest>(*d)) {
      asked = to;
      rid = std::get<wire::ManifestRequest>(*d).requestId;
    }
  }
  ASSERT_GE(asked, 0);
  // That peer's answer is lost and it says REJECT instead: 2 must ask the other.
  std::erase_if(f.net.wire, [&](const auto& w) { return std::get<0>(w) == asked && std::get<1>(w) == 2; });
  std::erase_if(f.net.wire, [&](const auto& w) { return std::get<0>(w) == 2 && std::get<1>(w) == asked; });
  f.s(2).onMessage(static_cast<PeerKey>(asked), *wire::encode(wire::Reject{rid, wire::RejectReason::kNotHave, 0}), f.net.now);
  const int other = asked == 0 ? 1 : 0;
  bool askedOther = false;
  for (auto& msg : f.net.peek(2, other)) askedOther = askedOther || std::holds_alternative<wire::ManifestRequest>(msg);
  EXPECT_TRUE(askedOther);
  f.net.pump();
  EXPECT_TRUE(f.s(2).complete());
}

TEST(Session, APeerThatGetsTheManifestLaterIsAskedForIt) {
  SessionOptions o;
  Fixture f(3, 1, 6, o);  // 0 holds the file; 1 and 2 start without the manifest
  for (int i : {1, 2}) {
    wire::PeerId pid{};
    pid[0] = static_cast<std::uint8_t>(10 + i);
    f.net.sessions[static_cast<std::size_t>(i)] =
        std::make_unique<Session>(f.id, pid, std::nullopt, std::vector<bool>{}, f.h(i), o, 7u + static_cast<unsigned>(i));
    f.s(i).setWanted(true, f.net.now);
  }
  f.net.connect(1, 2);  // neither has the manifest: nobody to ask
  f.net.pump();
  EXPECT_FALSE(f.s(2).stats().haveManifest);
  f.net.connect(0, 1);  // 1 gets it from 0 and shows 2 its chunks: 2 asks 1
  f.net.pump();
  EXPECT_TRUE(f.s(1).complete());
  EXPECT_TRUE(f.s(2).complete());
  EXPECT_EQ(f.h(2).stored.size(), 6u);
}

TEST(Session, ASeekCancelsRequestsOutsideTheNewWindow) {
  SessionOptions o;
  o.superSeed = false;
  Fixture f(2, 1, 64, o);
  f.s(1).setStreaming(true, 0, 8, f.net.now);
  f.net.connect(0, 1);
  f.net.pump(4);  // HANDSHAKEs and BITFIELDs: 1 requests the first chunks of its window
  std::set<ChunkIndex> asked;
  for (auto& m : f.net.peek(1, 0)) {
    if (auto* r = std::get_if<wire::Request>(&m)) asked.insert(r->index);
  }
  ASSERT_FALSE(asked.empty());
  EXPECT_LT(*asked.rbegin(), 16u);
  f.s(1).setStreaming(true, 48, 8, f.net.now);  // a far seek before anything arrived
  std::size_t cancels = 0;
  bool askedFar = false;
  for (auto& m : f.net.peek(1, 0)) {
    cancels += std::holds_alternative<wire::Cancel>(m) ? 1u : 0u;
    if (auto* r = std::get_if<wire::Request>(&m)) askedFar = askedFar || r->index == 48;
  }
  EXPECT_EQ(cancels, asked.size());
  EXPECT_TRUE(askedFar);
  f.s(1).setStreaming(true, 49, 8, f.net.now);  // moving on by one is not a seek: nothing cancelled
  std::size_t cancelsAfter = 0;
  for (auto& m : f.net.peek(1, 0)) cancelsAfter += std::holds_alternative<wire::Cancel>(m) ? 1u : 0u;
  EXPECT_EQ(cancelsAfter, cancels);
  // A skip forward within the window is a seek too: what lies behind the new cursor is cancelled.
  std::set<ChunkIndex> askedNow;
  for (auto& m : f.net.peek(1, 0)) {
    if (auto* r = std::get_if<wire::Request>(&m)) askedNow.insert(r->index);
  }
  ASSERT_TRUE(askedNow.count(49) && askedNow.count(50));
  f.s(1).setStreaming(true, 51, 8, f.net.now);
  std::size_t cancelsSkip = 0;
  for (auto& m : f.net.peek(1, 0)) cancelsSkip += std::holds_alternative<wire::Cancel>(m) ? 1u : 0u;
  EXPECT_GE(cancelsSkip, cancelsAfter + 2);
  f.net.pump();
  f.s(1).setStreaming(false, 0, 0, f.net.now);
  f.net.pump();
  EXPECT_TRUE(f.s(1).complete());
  for (auto& [i, c] : f.h(1).stored) EXPECT_EQ(c, f.chunks[i]);
}

TEST(Session, CorruptChunksAreNeverStoredAndTheSenderIsBanned) {
  SessionOptions o;
  o.banAfterBadChunks = 2;
  Fixture f(2, 1, 10, o);
  for (auto& c : f.h(0).chunks) c[5] ^= 1;  // peer 0 serves garbage
  f.net.connect(0, 1);
  f.net.pump();
  EXPECT_TRUE(f.h(1).stored.empty());
  EXPECT_EQ(f.s(1).stats().badChunks, 2u);
  EXPECT_EQ(f.s(1).stats().bans, 1u);
  ASSERT_EQ(f.h(1).banned.size(), 1u);
  EXPECT_EQ(f.h(1).banned[0][0], 1);  // peer 0's id
  EXPECT_EQ(f.h(1).disconnected, (std::vector<PeerKey>{0}));
  // A banned id is refused at the handshake next time.
  f.s(1).removePeer(0, f.net.now);
  f.s(0).removePeer(1, f.net.now);
  f.net.wire.clear();
  f.net.connect(0, 1);
  f.net.pump();
  EXPECT_EQ(f.h(1).disconnected.size(), 2u);
  EXPECT_TRUE(f.h(1).stored.empty());
}

TEST(Session, ChokedPeersAreRejectedWithARetryHint) {
  SessionOptions o;
  o.maxConcurrentUploads = 1;
  o.superSeed = false;
  Fixture f(3, 1, 6, o);
  f.net.connect(0, 1);  // takes the only upload slot
  f.net.connect(0, 2);
  f.net.pump();
  EXPECT_TRUE(f.s(1).complete());
  EXPECT_FALSE(f.s(2).complete());  // choked: REJECT overloaded, nothing served
  auto ps = f.s(2).peerStats(0, f.net.now);
  ASSERT_TRUE(ps);
  EXPECT_TRUE(ps->chokingUs);
  EXPECT_EQ(f.s(0).stats().uploaded, 6u * 1024);
  // Peer 1 is complete and leaves: the next choke round unchokes peer 2.
  f.s(0).removePeer(1, f.net.now);
  f.net.now += std::chrono::seconds(11);
  f.s(0).tick(f.net.now);
  f.s(2).tick(f.net.now);
  f.net.settle();
  f.net.pump();
  EXPECT_TRUE(f.s(2).complete());
}

// PIECE data for a request we never made (or no longer have) is wasted and
// earns the sender nothing: not a download rate, so neither a deeper pipeline
// nor the reciprocation rank of the next choke round. Peer 0 is downloading
// (it lacks chunks 12-15, which nobody has) and has one upload slot: peer 1
// uploads 4 real chunks, peer 2 floods 16 chunks' worth of unsolicited PIECEs.
TEST(Session, UnsolicitedPiecesDoNotRaiseTheSendersStanding) {
  SessionOptions o;
  o.superSeed = false;
  o.maxConcurrentUploads = 1;  // one regular slot, no optimistic unchoke
  Fixture f(3, 0, 16, o);
  for (int i = 0; i < 3; ++i) {
    std::vector<bool> have(16, false);
    for (ChunkIndex c = 0; c < 16; ++c) have[c] = i == 0 ? c < 8 : i == 1 ? (c >= 8 && c < 12) : false;
    wire::PeerId pid{};
    pid[0] = static_cast<std::uint8_t>(i + 1);
    f.net.sessions[static_cast<std::size_t>(i)] =
        std::make_unique<Session>(f.id, pid, f.manifest, have, f.h(i), o, 7u + static_cast<std::uint64_t>(i));
    f.s(i).setWanted(i == 0, f.net.now);  // 1 and 2 only want to be unchoked (they lack 0-7)
  }
  f.s(0).tick(f.net.now);  // schedules the first choke round
  f.net.connect(0, 1);
  f.net.connect(0, 2);
  f.net.pump();
  ASSERT_EQ(f.h(0).stored.size(), 4u);  // chunks 8-11 from peer 1
  const Bytes junk(1024, 0x5a);
  for (std::uint32_t i = 0; i < 16; ++i) {
    f.s(0).onMessage(2, *wire::encode(wire::Piece{9000 + i, i % 8, 1024, 0, junk}), f.net.now);
  }
  EXPECT_EQ(f.s(0).stats().wasted, 16u * 1024);
  auto junkStats = f.s(0).peerStats(2, f.net.now);
  auto honestStats = f.s(0).peerStats(1, f.net.now);
  ASSERT_TRUE(junkStats && honestStats);
  EXPECT_EQ(junkStats->downRate, 0.0);
  EXPECT_EQ(junkStats->bytesDown, 0u);
  EXPECT_GT(honestStats->downRate, 0.0);
  EXPECT_EQ(honestStats->bytesDown, 4u * 1024);

  f.net.now += o.chokeInterval + milliseconds(1);
  f.s(0).tick(f.net.now);
  EXPECT_TRUE(f.s(0).peerStats(1, f.net.now)->unchoked) << "the honest uploader keeps the slot";
  EXPECT_FALSE(f.s(0).peerStats(2, f.net.now)->unchoked) << "junk PIECEs bought the slot";
}

TEST(Session, StalledRequestsTimeOutAndGoElsewhere) {
  SessionOptions o;
  o.superSeed = false;
  o.stallTimeout = std::chrono::seconds(2);
  o.requestTimeout = std::chrono::seconds(4);
  o.picker.maxDuplicates = 1;  // no endgame: only the time-out can save the chunks asked of 0
  Fixture g(3, 2, 8, o);
  g.net.connect(0, 2);
  g.net.connect(1, 2);
  // Deliver only what goes to 0 and to 2 from 1: 0 never answers.
  for (int round = 0; round < 200 && (g.net.settle(), !g.net.wire.empty()); ++round) {
    auto [from, to, m] = std::move(g.net.wire.front());
    g.net.wire.pop_front();
    g.net.now += milliseconds(1);
    if (from == 0 && to == 2) {
      auto d = wire::decodeMessage(ByteView(m));
      if (d && std::holds_alternative<wire::Piece>(*d)) continue;  // lost
    }
    g.s(to).onMessage(static_cast<PeerKey>(from), m, g.net.now);
  }
  g.net.now += std::chrono::seconds(5);
  g.s(2).tick(g.net.now);
  g.net.settle();
  g.net.pump();
  EXPECT_TRUE(g.s(2).complete());
  EXPECT_GT(g.s(2).stats().timeouts, 0u);
}

TEST(Session, RejectsMalformedInputWithGoodbye) {
  Fixture f(2, 1, 4);
  f.net.connect(0, 1);
  f.net.wire.clear();
  const Bytes junk = {1, 2, 3};
  f.s(0).onMessage(1, junk, f.net.now);
  EXPECT_EQ(f.h(0).disconnected, (std::vector<PeerKey>{1}));
  auto msgs = f.net.peek(0, 1);
  ASSERT_EQ(msgs.size(), 1u);
  auto* g = std::get_if<wire::Goodbye>(&msgs[0]);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->reason, wire::GoodbyeReason::kProtocolError);
}

TEST(Session, UploadTokenBucketPacesPieces) {
  SessionOptions o;
  o.superSeed = false;
  o.perPeerUpRate = 2048;  // two chunks per second
  Fixture f(2, 1, 20, o);
  f.net.connect(0, 1);
  f.net.pump();
  const auto first = f.s(0).stats().uploaded;
  EXPECT_LT(first, 20u * 1024);  // the bucket paused the uploads
  for (int i = 0; i < 200 && !f.s(1).complete(); ++i) {
    f.net.now = f.s(0).nextWakeup(f.net.now);
    f.s(0).tick(f.net.now);
    f.net.settle();
    f.net.pump();
  }
  EXPECT_TRUE(f.s(1).complete());
}

// A super-seeder's first pass counts whole chunks only: a peer asking for one
// byte of each chunk must not end it (which would lift the hold on repeats).
TEST(Session, PartialRequestsDoNotCountAsServed) {
  SessionOptions o;
  o.minRequestBytes = 1;  // slivers are served here (by default they are refused: abuse_test)
  Fixture f(2, 1, 8, o);
  f.s(1).setWanted(false, f.net.now);  // peer 1 asks by hand
  f.net.connect(0, 1);
  f.net.pump();
  for (ChunkIndex i = 0; i < 8; ++i) {
    f.s(0).onMessage(1, *wire::encode(wire::Request{100 + i, i, 0, 1}), f.net.now);
    f.net.settle();
  }
  f.net.wire.clear();
  EXPECT_EQ(f.s(0).stats().uploaded, 8u);
  EXPECT_EQ(f.s(0).stats().distinctServed, 0u);
  f.s(0).onMessage(1, *wire::encode(wire::Request{200, 3, 0, 1024}), f.net.now);
  f.net.settle();
  EXPECT_EQ(f.s(0).stats().distinctServed, 1u);
}

// A repeat held back for a first serve that cannot go out (its peer's upload
// is rate-limited) is refused after maxUploadQueue/4 by the session's own
// timer, not only when something else happens to pump its peer.
TEST(Session, AHeldRepeatIsRefusedOnTime) {
  SessionOptions o;
  o.perPeerUpRate = 1024;  // a chunk a second per peer
  o.maxUploadQueue = std::chrono::seconds(1);
  Fixture f(3, 1, 8, o);
  f.s(1).setWanted(false, f.net.now);
  f.s(2).setWanted(false, f.net.now);
  f.net.connect(0, 1);
  f.net.connect(0, 2);
  f.net.pump();
  auto ask = [&](PeerKey from, std::uint32_t rid, ChunkIndex i) {
    f.s(0).onMessage(from, *wire::encode(wire::Request{rid, i, 0, 1024}), f.net.now);
    f.net.settle();
  };
  ask(1, 1, 3);  // served: peer 1's bucket is spent
  ask(1, 2, 5);  // a first serve, waiting for peer 1's bucket
  ask(2, 3, 3);  // a repeat: held while chunk 5 waits
  f.net.wire.clear();
  const Time asked = f.net.now;
  EXPECT_EQ(f.s(0).stats().distinctServed, 1u);
  std::optional<Time> refusedAt;
  for (int i = 0; i < 50 && !refusedAt && f.net.now - asked < std::chrono::seconds(2); ++i) {
    f.net.now = f.s(0).nextWakeup(f.net.now);
    f.s(0).tick(f.net.now);
    f.net.settle();
    for (auto& m : f.net.peek(0, 2)) {
      if (auto* r = std::get_if<wire::Reject>(&m); r && r->requestId == 3) refusedAt = f.net.now - asked;
    }
  }
  ASSERT_TRUE(refusedAt) << "the held repeat was never refused";
  EXPECT_GE(*refusedAt, milliseconds(250));
  EXPECT_LE(*refusedAt, milliseconds(300)) << "refused only when the first serve's bucket refilled";
}

// With every download slot taken, the slowest download peer is rotated out so
// that another neighbour with the chunks gets a chance: a leecher with one
// slot whose first seeder never sends a byte turns to the second one within a
// few rotation periods (long before the stall time-out), and only with
// rotation on.
TEST(Session, TheSlowestDownloadPeerIsRotatedOut) {
  for (bool rotate : {true, false}) {
    SessionOptions o;
    o.superSeed = false;
    o.maxConcurrentDownloads = 1;
    o.rotateDownloadsEvery = rotate ? std::chrono::seconds(1) : Time{};
    Fixture f(3, 2, 8, o);  // 0 and 1 seed, 2 fetches
    f.net.connect(2, 0);
    f.net.connect(2, 1);
    int first = -1;  // the seeder asked first: its PIECEs are lost
    std::map<int, int> requests;
    auto deliver = [&] {
      while ((f.net.settle(), !f.net.wire.empty())) {
        auto [from, to, m] = std::move(f.net.wire.front());
        f.net.wire.pop_front();
        auto d = wire::decodeMessage(ByteView(m));
        ASSERT_TRUE(d.has_value());
        if (from == 2 && std::holds_alternative<wire::Request>(*d)) {
          if (first < 0) first = to;
          ++requests[to];
        }
        if (from == first && std::holds_alternative<wire::Piece>(*d)) continue;
        f.s(to).onMessage(static_cast<PeerKey>(from), m, f.net.now);
      }
    };
    deliver();
    ASSERT_GE(first, 0);
    const int other = 1 - first;
    EXPECT_EQ(requests[other], 0) << "one download slot: one seeder asked";
    for (int step = 0; step < 16; ++step) {  // 4 s, under the 5 s stall time-out
      f.net.now += milliseconds(250);
      f.s(2).tick(f.net.now);
      f.net.settle();
      deliver();
    }
    if (rotate) {
      EXPECT_GT(requests[other], 0) << "the silent seeder was rotated out";
      EXPECT_TRUE(f.s(2).complete());
    } else {
      EXPECT_EQ(requests[other], 0) << "without rotation the slot stays with the silent seeder";
      EXPECT_FALSE(f.s(2).complete());
    }
  }
}

// The uploader keeps about sendBacklogPieces pieces queued on the link (the
// rate here is far too low for sendBacklog to matter), asks to be told when
// it drains, and a tick refills it should that notice not come.
TEST(Session, PieceDataWaitsForTheSendWindow) {
  SessionOptions o;
  o.superSeed = false;
  o.sendBacklogPieces = 2;
  Fixture f(2, 1, 16, o);
  f.h(0).reportQueue = true;
  f.net.connect(0, 1);
  f.net.pump();
  // Two pieces went out; the third waits: 2 x 1024 bytes of data plus headers reached the window.
  EXPECT_EQ(f.h(1).stored.size(), 2u);
  ASSERT_FALSE(f.h(0).notifyAt.empty());
  EXPECT_EQ(f.h(0).notifyAt.back(), 1024u);  // half the window
  EXPECT_GT(f.s(0).stats().windowWaits, 0u);

  f.h(0).queued = 0;  // the link drained and said so
  f.s(0).onWritable(1, f.net.now);
  f.net.pump();
  EXPECT_EQ(f.h(1).stored.size(), 4u);
  EXPECT_EQ(f.s(0).stats().lateRefills, 0u);

  f.h(0).queued = 0;  // drained, but the notice is lost: the tick refills
  f.net.now += milliseconds(100);
  f.s(0).tick(f.net.now);
  f.net.settle();
  f.net.pump();
  EXPECT_EQ(f.h(1).stored.size(), 6u);
  EXPECT_EQ(f.s(0).stats().lateRefills, 1u);

  for (int i = 0; i < 20 && !f.s(1).complete(); ++i) {
    f.h(0).queued = 0;
    f.s(0).onWritable(1, f.net.now);
    f.net.pump();
  }
  EXPECT_TRUE(f.s(1).complete());

  // Without a queue to look at, the session fills the link as before.
  Fixture g(2, 1, 16, o);
  g.net.connect(0, 1);
  g.net.pump();
  EXPECT_TRUE(g.s(1).complete());
  EXPECT_EQ(g.s(0).stats().windowWaits, 0u);
}

// On a link to a peer we are also downloading from, the window's minimum is
// sendBacklogPiecesToUploader (1) pieces, so our REQUESTs to it wait behind
// less of our own data; elsewhere it is sendBacklogPieces (2).
TEST(Session, TheWindowIsShorterTowardsAPeerWeDownloadFrom) {
  SessionOptions o;
  o.superSeed = false;
  o.sendBacklogPieces = 2;
  o.sendBacklogPiecesToUploader = 1;
  Fixture f(2, 0, 16, o);
  // Peer 0 holds chunks 0-7, peer 1 chunks 8-15: each downloads from the other.
  for (int i = 0; i < 2; ++i) {
    std::vector<bool> have(16, false);
    for (ChunkIndex c = 0; c < 16; ++c) have[c] = (c < 8) == (i == 0);
    wire::PeerId pid{};
    pid[0] = static_cast<std::uint8_t>(i + 1);
    f.net.sessions[static_cast<std::size_t>(i)] = std::make_unique<Session>(f.id, pid, f.manifest, have, f.h(i), o, 7u + static_cast<std::uint64_t>(i));
    f.s(i).setWanted(true, f.net.now);
  }
  f.h(0).reportQueue = true;
  f.net.connect(0, 1);
  f.net.pump();
  // Peer 0 has requests out at peer 1: one 1024-byte piece fills its window.
  EXPECT_EQ(f.h(1).stored.size(), 1u);
  ASSERT_FALSE(f.h(0).notifyAt.empty());
  EXPECT_EQ(f.h(0).notifyAt.back(), 512u);
  EXPECT_EQ(f.h(0).stored.size(), 8u);  // peer 1 reports no queue: it sent all 8
  for (int i = 0; i < 40 && !f.s(1).complete(); ++i) {
    f.h(0).queued = 0;
    f.s(0).onWritable(1, f.net.now);
    f.net.pump();
  }
  EXPECT_TRUE(f.s(0).complete());
  EXPECT_TRUE(f.s(1).complete());
  for (auto& [i, c] : f.h(1).stored) EXPECT_EQ(c, f.chunks[i]);
}

// PIECE messages carry about pieceTime of data at the rate it leaves on the
// link, within [minPiecePayload, maxPiecePayload]: a slow link gets small
// pieces (its send window, and the REQUESTs queued behind it, stay short), a
// fast one whole chunks.
// A whole-chunk upload counts as served from its first piece; cancelled
// part-way, it no longer does (the chunk reached nobody).
TEST(Session, AChunkCancelledPartWayIsNotCountedAsServed) {
  SessionOptions o;
  o.superSeed = false;
  o.minPiecePayload = 256;
  o.maxPiecePayload = 256;
  o.sendBacklogPieces = 1;
  o.sendBacklogPiecesToUploader = 1;
  Fixture f(2, 1, 16, o);
  f.h(0).reportQueue = true;
  f.net.connect(0, 1);
  f.net.pump();
  // One 256-byte piece of the first chunk asked for filled the window.
  EXPECT_EQ(f.s(0).stats().distinctServed, 1u);
  EXPECT_TRUE(f.h(1).stored.empty());
  f.s(0).onMessage(1, *wire::encode(wire::Cancel{1}), f.net.now);
  EXPECT_EQ(f.s(0).stats().distinctServed, 0u);
  // Likewise when the peer goes away part-way.
  Fixture g(2, 1, 16, o);
  g.h(0).reportQueue = true;
  g.net.connect(0, 1);
  g.net.pump();
  EXPECT_EQ(g.s(0).stats().distinctServed, 1u);
  g.s(0).removePeer(1, g.net.now);
  EXPECT_EQ(g.s(0).stats().distinctServed, 0u);
  // Without the window the chunks go out whole and all count.
  Fixture h(2, 1, 16, o);
  h.net.connect(0, 1);
  h.net.pump();
  EXPECT_TRUE(h.s(1).complete());
  EXPECT_EQ(h.s(0).stats().distinctServed, 16u);
}

TEST(Session, PieceSizeFollowsTheLinkRate) {
  SessionOptions o;
  o.superSeed = false;
  o.minPiecePayload = 256;
  o.maxPiecePayload = 1024;
  o.pieceTime = milliseconds(50);
  // Delivers everything, `step` of time per message; returns the data size of
  // every PIECE the seeder sent.
  auto run = [&](Time step) {
    Fixture f(2, 1, 16, o);
    f.net.connect(0, 1);
    std::vector<std::size_t> sizes;
    while ((f.net.settle(), !f.net.wire.empty())) {
      auto [from, to, m] = std::move(f.net.wire.front());
      f.net.wire.pop_front();
      f.net.now += step;
      auto d = wire::decodeMessage(ByteView(m));
      if (auto* piece = d ? std::get_if<wire::Piece>(&*d) : nullptr; piece && from == 0) sizes.push_back(piece->data.size());
      f.s(to).onMessage(static_cast<PeerKey>(from), m, f.net.now);
    }
    EXPECT_TRUE(f.s(1).complete());
    for (auto& [i, c] : f.h(1).stored) EXPECT_EQ(c, f.chunks[i]);
    return sizes;
  };
  // Fast: ~1 KiB per ms. The first pieces go out before any rate is known
  // (the minimum), then whole 1 KiB chunks.
  const auto fast = run(milliseconds(1));
  ASSERT_FALSE(fast.empty());
  EXPECT_EQ(fast.front(), 256u);
  EXPECT_EQ(fast.back(), 1024u);
  // Slow: a message per 100 ms (a few KB/s): no piece is a whole chunk.
  const auto slow = run(milliseconds(100));
  EXPECT_GE(slow.size(), 16u * 2);
  EXPECT_LT(*std::max_element(slow.begin(), slow.end()), 1024u);
}

// A store whose every read and write completes 50 ms late, the ones due
// together newest first: every leecher still completes with the right bytes,
// not much later than over a store that answers at once.
TEST(Session, AStoreThatAnswersLateAndOutOfOrderStallsNothing) {
  auto run = [](Time delay) {
    Fixture f(4, 1, 48);
    f.net.storeDelay = delay;
    f.net.connect(0, 1);
    f.net.connect(0, 2);
    f.net.connect(1, 2);
    f.net.connect(1, 3);
    f.net.connect(2, 3);
    f.net.pump();
    for (int i = 1; i < 4; ++i) {
      EXPECT_TRUE(f.s(i).complete()) << "peer " << i << " with delay " << swarm::seconds(delay);
      EXPECT_EQ(f.h(i).stored.size(), 48u);
      for (auto& [k, c] : f.h(i).stored) EXPECT_EQ(c, f.chunks[k]);
      EXPECT_EQ(f.s(i).stats().writesPending, 0u);
    }
    return f.net.now;
  };
  const Time fast = run(Time{});
  const Time slow = run(milliseconds(50));
  std::printf("virtual time to complete: %.3f s at once, %.3f s with 50 ms store completions\n", swarm::seconds(fast),
              swarm::seconds(slow));
  // Writes overlap (up to maxPendingWrites): the delay is paid about once
  // per link's pipeline, not once per chunk (48 x 50 ms = 2.4 s).
  EXPECT_LT(slow - fast, milliseconds(600));
}

// A store that stops confirming writes: the leecher stops asking for more
// once maxPendingWrites chunks wait, and goes on when they are confirmed.
TEST(Session, AStuckStoreStopsNewRequestsUntilItCatchesUp) {
  SessionOptions o;
  o.superSeed = false;
  o.maxPendingWrites = 4;
  Fixture f(2, 1, 40, o);
  f.h(1).holdStores = true;
  f.net.connect(0, 1);
  f.net.pump();
  // At the bound, plus what was already on its way when it was reached.
  EXPECT_GE(f.h(1).held.size(), 4u);
  EXPECT_LE(f.h(1).held.size(), 4u + o.maxRequestsPerPeer);
  EXPECT_EQ(f.s(1).stats().writesPending, f.h(1).held.size());
  EXPECT_EQ(f.s(1).stats().chunksHave, 0u);  // nothing counts as held before the store confirms
  EXPECT_EQ(f.s(1).peerStats(0, f.net.now)->requestsOutstanding, 0u);
  EXPECT_LT(f.s(0).stats().uploaded, 40u * 1024);
  f.h(1).holdStores = false;
  for (auto& done : f.h(1).held) f.net.later(std::move(done));
  f.h(1).held.clear();
  f.net.pump();
  EXPECT_TRUE(f.s(1).complete());
  EXPECT_EQ(f.h(1).stored.size(), 40u);
}

// A read that fails (the chunk was evicted or is corrupt on disk) is refused
// with REJECT not-have, never served.
TEST(Session, AFailedReadIsRejectedNotServed) {
  Fixture f(2, 1, 4);
  f.s(1).setWanted(false, f.net.now);
  f.net.connect(0, 1);
  f.net.pump();
  f.h(0).chunks[2].resize(10);  // the store now returns a short chunk 2
  f.s(0).onMessage(1, *wire::encode(wire::Request{7, 2, 0, 1024}), f.net.now);
  f.net.settle();
  auto msgs = f.net.peek(0, 1);
  ASSERT_FALSE(msgs.empty());
  auto* r = std::get_if<wire::Reject>(&msgs.back());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->requestId, 7u);
  EXPECT_EQ(r->reason, wire::RejectReason::kNotHave);
  EXPECT_EQ(f.s(0).stats().uploaded, 0u);
}

// A chunk whose write failed is not held: it is fetched again. A store that
// was only busy is not an error; any other failure is reported (onError) and
// stops the fetch (no downloading at line rate into a full disk), until the
// host asks again.
TEST(Session, AChunkWhoseWriteFailedIsFetchedAgain) {
  Fixture f(2, 1, 8);
  f.h(1).failOnce[3] = Errc::kBackPressure;
  f.net.connect(0, 1);
  f.net.pump();
  EXPECT_TRUE(f.s(1).complete());
  EXPECT_EQ(f.h(1).stored.size(), 8u);
  EXPECT_EQ(f.h(1).stored[3], f.chunks[3]);
  EXPECT_EQ(f.s(0).stats().uploaded, 9u * 1024);  // chunk 3 twice
  EXPECT_EQ(f.h(1).errors, 0u);
  Fixture g(2, 1, 8);
  g.h(1).failOnce[3] = Errc::kIo;
  g.net.connect(0, 1);
  g.net.pump();
  EXPECT_EQ(g.h(1).errors, 1u);
  EXPECT_FALSE(g.s(1).wanted());
  EXPECT_FALSE(g.s(1).complete());
  const auto uploaded = g.s(0).stats().uploaded;
  g.net.now += std::chrono::seconds(5);
  g.s(1).tick(g.net.now);
  g.net.pump();
  EXPECT_EQ(g.s(0).stats().uploaded, uploaded) << "fetched on after the store failed";
  g.s(1).setWanted(true, g.net.now);  // asked again: chunk 3 is fetched and written
  g.net.pump();
  EXPECT_TRUE(g.s(1).complete());
  EXPECT_EQ(g.h(1).stored[3], g.chunks[3]);
}

// Admission control goes by the measured upload rate, and a meter that has
// only seen the first pieces of a busy period reads the idle time before it,
// not the link. A fresh seeder whose store read completes in the same instant
// it is asked sends a piece or two of the first request before the second
// one is handled: that second one was refused as overloaded (2 pieces over
// the meter's 2 s: a queue of "3 s"), and a lone leecher waited out the retry
// hint each time (1 -> 1 in the simulator stalled at 0.23 of the file in an
// hour). Once the link has been busy for the meter's time constant and is
// really slow, the rule still refuses.
TEST(Session, AFreshUplinkIsNotJudgedByItsFirstPieces) {
  SessionOptions o;
  o.minPiecePayload = 256;  // 4 pieces per chunk
  o.maxUploadQueue = std::chrono::seconds(1);
  Fixture f(2, 1, 8, o);
  f.s(1).setWanted(false, f.net.now);
  f.net.connect(0, 1);
  f.net.pump();
  f.net.wire.clear();
  f.h(0).reportQueue = true;  // the link never drains: the window stops the pieces
  f.h(0).queued = 0;
  auto ask = [&](std::uint32_t rid, ChunkIndex i) {
    f.s(0).onMessage(1, *wire::encode(wire::Request{rid, i, 0, 1024}), f.net.now);
    f.net.settle();  // the read completes in the same instant
  };
  auto refused = [&](std::uint32_t rid) {
    for (auto& m : f.net.peek(0, 1)) {
      if (auto* r = std::get_if<wire::Reject>(&m); r && r->requestId == rid) return true;
    }
    return false;
  };
  ask(1, 3);
  const auto sent = f.s(0).stats().uploaded;
  ASSERT_GT(sent, 0u);  // the first pieces are out
  ASSERT_LT(sent, 1024u);  // and the rest waits: the upload is still queued
  ask(2, 4);  // same instant
  EXPECT_FALSE(refused(2));
  f.net.now += milliseconds(1);
  ask(3, 5);  // 1 ms into the busy period: it sent ~500 B in 1 ms
  EXPECT_FALSE(refused(3));
  f.net.now += std::chrono::seconds(3);  // busy for 3 s, nothing more sent: the link is slow
  ask(4, 6);
  EXPECT_TRUE(refused(4));
}

}  // namespace
}  // namespace p2pcdn::swarm
