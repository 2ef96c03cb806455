// Web seeds (swarm/origin.hpp) in a Session: the origin serves what no peer
// can, after the grace, and nothing while the swarm delivers; streaming races
// a late peer for the chunks at the cursor; bad bytes are never stored and
// drop the origin; a failing origin rests; bad URLs are refused.
#include <gtest/gtest.h>

#include "session_fixture.hpp"

namespace p2pcdn::swarm {
namespace {

using namespace session_testing;
using std::chrono::milliseconds;
using std::chrono::seconds;

Bytes wholeFile(const Fixture& f) {
  Bytes out;
  for (const auto& c : f.chunks) out.insert(out.end(), c.begin(), c.end());
  return out;
}

// Pumps, ticking every `step` of virtual time, until peer i completes (or `limit`).
void runUntilComplete(Fixture& f, int i, Time step = milliseconds(100), int limit = 2000) {
  for (int k = 0; k < limit && !f.s(i).complete(); ++k) {
    f.net.pump();
    f.net.now += step;
    for (auto& s : f.net.sessions) s->tick(f.net.now);
  }
  f.net.pump();
}

TEST(Origin, WithNoPeerEveryChunkComesFromTheOriginAfterTheGrace) {
  Fixture f(1, 0, 40);
  f.h(0).http = true;
  f.h(0).originFile = wholeFile(f);
  ASSERT_TRUE(f.s(0).setOrigins({"http://origin.test/f.bin"}, f.net.now));
  f.net.now += milliseconds(1500);
  f.s(0).tick(f.net.now);
  EXPECT_TRUE(f.h(0).originAsked.empty()) << "asked before the grace (2 s) was over";
  EXPECT_LE(f.s(0).nextWakeup(f.net.now), f.net.now + milliseconds(500)) << "no wake-up at the grace's end";
  runUntilComplete(f, 0);
  ASSERT_TRUE(f.s(0).complete());
  for (auto& [i, c] : f.h(0).stored) EXPECT_EQ(c, f.chunks[i]);
  const auto st = f.s(0).stats();
  EXPECT_EQ(st.originChunks, 40u);
  EXPECT_EQ(st.originBytes, 40u * 1024u);
  EXPECT_EQ(f.h(0).originAsked.size(), 40u) << "a chunk was fetched from the origin twice";
  EXPECT_EQ(f.s(0).chunkSource(7), "web seed");
  for (auto& a : f.h(0).originAsked) {
    EXPECT_EQ(a.url, "http://origin.test/f.bin");
    EXPECT_EQ(a.offset % 1024, 0u);
    EXPECT_EQ(a.length, 1024u);
  }
}

TEST(Origin, WithoutWebRtcThereIsNoGrace) {
  SessionOptions o;
  o.origin.grace = Time{};  // a browser without RTCPeerConnection: no peer will ever come
  o.origin.idleBefore = Time{};
  Fixture f(1, 0, 8, o);
  f.h(0).http = true;
  f.h(0).originFile = wholeFile(f);
  ASSERT_TRUE(f.s(0).setOrigins({"http://origin.test/f.bin"}, f.net.now));
  f.s(0).tick(f.net.now);
  EXPECT_FALSE(f.h(0).originAsked.empty()) << "waited for peers that cannot come";
  runUntilComplete(f, 0);
  EXPECT_TRUE(f.s(0).complete());
}

TEST(Origin, PeersComeFirst) {
  SessionOptions o;
  o.perPeerUpRate = 10 * 1024;  // 10 chunks/s: the transfer spans ticks
  Fixture f(2, 1, 60, o);  // a super-seeder: the chunks it has not revealed yet no peer has
  f.h(1).http = true;
  f.h(1).originFile = wholeFile(f);
  ASSERT_TRUE(f.s(1).setOrigins({"http://origin.test/f.bin"}, f.net.now));
  f.net.now += seconds(3);  // past the grace
  f.net.connect(0, 1);
  runUntilComplete(f, 1, milliseconds(20));
  ASSERT_TRUE(f.s(1).complete());
  EXPECT_EQ(f.s(1).stats().originChunks, 0u);
  EXPECT_TRUE(f.h(1).originAsked.empty()) << f.h(1).originAsked.size() << " requests to the origin";
}

TEST(Origin, ChunksNoPeerHasComeFromTheOriginOnceTheSwarmIsIdle) {
  Fixture f(2, 0, 30);
  // Peer 0 holds the first 10 chunks only.
  std::vector<bool> part(30, false);
  for (int i = 0; i < 10; ++i) part[static_cast<std::size_t>(i)] = true;
  SessionOptions o;
  o.superSeed = false;
  wire::PeerId pid{};
  pid[0] = 9;
  f.net.sessions[0] = std::make_unique<Session>(f.id, pid, f.manifest, part, f.h(0), o, 9);
  f.h(1).http = true;
  f.h(1).originFile = wholeFile(f);
  ASSERT_TRUE(f.s(1).setOrigins({"http://origin.test/f.bin"}, f.net.now));
  f.net.connect(0, 1);
  runUntilComplete(f, 1);
  ASSERT_TRUE(f.s(1).complete());
  for (auto& [i, c] : f.h(1).stored) EXPECT_EQ(c, f.chunks[i]);
  // Who delivered each chunk: the peer (its id, hex) for the first 10, the web seed for the rest.
  EXPECT_EQ(f.s(1).chunkSource(3), "09" + std::string(38, '0'));
  EXPECT_EQ(f.s(1).chunkSource(25), "web seed");
  EXPECT_EQ(f.s(1).chunkSource(99), "");
  std::set<std::uint64_t> fromOrigin;
  for (auto& a : f.h(1).originAsked) fromOrigin.insert(a.offset / 1024);
  EXPECT_EQ(fromOrigin.size(), 20u);
  EXPECT_EQ(*fromOrigin.begin(), 10u) << "the origin was asked for a chunk the peer has";
}

TEST(Origin, StreamingRacesALatePeerForTheChunksAtTheCursor) {
  SessionOptions o;
  o.superSeed = false;
  Fixture f(2, 1, 30, o);
  f.h(1).http = true;
  f.h(1).originFile = wholeFile(f);
  f.s(1).setStreaming(true, 0, 8, f.net.now);
  ASSERT_TRUE(f.s(1).setOrigins({"http://origin.test/f.bin"}, f.net.now));
  f.net.connect(0, 1);
  f.net.pump(4);  // handshakes and bitfields: 1 asks 0 for its window
  // Peer 0 never answers: its PIECEs are lost.
  std::erase_if(f.net.wire, [](auto& m) { return std::get<0>(m) == 0; });
  f.net.now += seconds(2) + milliseconds(100);  // past the grace and urgentAfter
  f.s(1).tick(f.net.now);
  std::set<std::uint64_t> asked;
  for (auto& a : f.h(1).originAsked) asked.insert(a.offset / 1024);
  EXPECT_EQ(asked, (std::set<std::uint64_t>{0, 1})) << "want the two chunks at the cursor, and only them";
  f.net.settle();
  EXPECT_TRUE(f.s(1).have(0) && f.s(1).have(1));
  std::size_t cancels = 0;
  for (auto& m : f.net.peek(1, 0)) cancels += std::holds_alternative<wire::Cancel>(m) ? 1u : 0u;
  EXPECT_GE(cancels, 2u) << "the peer's requests for the chunks the origin gave were not cancelled";
}

TEST(Origin, BadBytesAreNeverStoredAndDropTheOrigin) {
  Fixture f(2, 1, 20);
  f.h(1).http = true;
  f.h(1).originFile = wholeFile(f);
  for (std::size_t i = 0; i < f.h(1).originFile.size(); i += 512) f.h(1).originFile[i] ^= 1;
  ASSERT_TRUE(f.s(1).setOrigins({"http://origin.test/f.bin"}, f.net.now));
  for (int k = 0; k < 200; ++k) {
    f.net.now += milliseconds(500);
    f.s(1).tick(f.net.now);
    f.net.pump();
  }
  EXPECT_TRUE(f.h(1).stored.empty()) << "a chunk that fails its hash was stored";
  // The 4 requests in flight when the first bad chunk came, and then none: dropped (3 bad chunks).
  EXPECT_EQ(f.h(1).originAsked.size(), 4u) << "the origin was not dropped after 3 bad chunks";
  EXPECT_EQ(f.s(1).stats().badChunks, 4u);
  f.net.connect(0, 1);  // the swarm still delivers
  runUntilComplete(f, 1);
  EXPECT_TRUE(f.s(1).complete());
}

TEST(Origin, AFailingOriginRests) {
  Fixture f(1, 0, 10);
  f.h(0).http = true;
  f.h(0).originFails = true;
  ASSERT_TRUE(f.s(0).setOrigins({"http://origin.test/f.bin"}, f.net.now));
  f.net.now += seconds(3);
  f.s(0).tick(f.net.now);
  f.net.settle();
  const std::size_t first = f.h(0).originAsked.size();
  EXPECT_EQ(first, 4u);  // the slots
  EXPECT_EQ(f.s(0).stats().originFailures, 4u);
  f.net.now += milliseconds(1900);
  f.s(0).tick(f.net.now);
  EXPECT_EQ(f.h(0).originAsked.size(), first) << "asked again before its 2 s rest";
  f.net.now += milliseconds(200);
  f.s(0).tick(f.net.now);
  EXPECT_GT(f.h(0).originAsked.size(), first);
  f.net.settle();
  f.h(0).originFails = false;  // it recovers: the rest was 4 s now
  f.h(0).originFile = wholeFile(f);
  runUntilComplete(f, 0);
  EXPECT_TRUE(f.s(0).complete());
}

TEST(Origin, ASeekCancelsOriginRequestsOutsideTheWindow) {
  Fixture f(1, 0, 40);
  f.h(0).http = true;
  f.h(0).originFile = wholeFile(f);
  f.s(0).setStreaming(true, 0, 4, f.net.now);
  ASSERT_TRUE(f.s(0).setOrigins({"http://origin.test/f.bin"}, f.net.now));
  f.net.now += seconds(3);
  f.s(0).tick(f.net.now);
  ASSERT_EQ(f.h(0).originAsked.size(), 4u);
  f.s(0).setStreaming(true, 30, 4, f.net.now);  // a seek before any answer came
  EXPECT_EQ(f.h(0).originCancelled.size(), 4u) << "requests behind the new cursor still hold the origin's slots";
  std::set<std::uint64_t> asked;
  for (auto& a : f.h(0).originAsked) asked.insert(a.offset / 1024);
  EXPECT_TRUE(asked.count(30) && asked.count(33)) << "the new window was not asked for";
  f.net.settle();
  for (auto& [i, c] : f.h(0).stored) EXPECT_GE(i, 30u) << "a cancelled request's chunk was stored";
}

TEST(Origin, AnOriginThisHostCannotFetchIsDropped) {
  Fixture f(1, 0, 10);
  f.h(0).http = true;
  f.h(0).originFails = true;
  f.h(0).originErrc = Errc::kUnsupported;  // natively: an https:// origin
  ASSERT_TRUE(f.s(0).setOrigins({"https://origin.test/f.bin"}, f.net.now));
  f.net.now += seconds(3);
  f.s(0).tick(f.net.now);
  f.net.settle();
  const std::size_t first = f.h(0).originAsked.size();
  for (int k = 0; k < 100; ++k) {
    f.net.now += seconds(1);
    f.s(0).tick(f.net.now);
    f.net.settle();
  }
  EXPECT_EQ(f.h(0).originAsked.size(), first) << "an origin that can never be fetched was asked again";
}

TEST(Origin, BadUrlsAndHostsWithoutHttp) {
  Fixture f(2, 1, 10);
  EXPECT_EQ(f.s(1).setOrigins({"ftp://x/y"}, f.net.now).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(f.s(1).setOrigins({"http://"}, f.net.now).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(f.s(1).setOrigins(std::vector<std::string>(9, "http://a/b"), f.net.now).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(f.s(1).setOrigins({"http://a/" + std::string(3000, 'x')}, f.net.now).error().code(), Errc::kInvalidArgument);
  // A host with no HTTP: the origin goes unused and the swarm delivers.
  ASSERT_TRUE(f.s(1).setOrigins({"http://origin.test/f.bin"}, f.net.now));
  f.net.now += seconds(3);
  f.s(1).tick(f.net.now);
  f.net.connect(0, 1);
  runUntilComplete(f, 1);
  EXPECT_TRUE(f.s(1).complete());
  EXPECT_EQ(f.s(1).stats().originChunks, 0u);
}

TEST(Origin, NotWantedCancelsItsRequests) {
  Fixture f(1, 0, 10);
  f.h(0).http = true;
  f.h(0).originFile = wholeFile(f);
  ASSERT_TRUE(f.s(0).setOrigins({"http://origin.test/f.bin"}, f.net.now));
  f.net.now += seconds(3);
  f.s(0).tick(f.net.now);
  ASSERT_EQ(f.h(0).originAsked.size(), 4u);
  f.s(0).setWanted(false, f.net.now);
  EXPECT_EQ(f.h(0).originCancelled.size(), 4u);
  f.net.settle();  // their answers come anyway: ignored
  EXPECT_TRUE(f.h(0).stored.empty());
}

}  // namespace
}  // namespace p2pcdn::swarm
