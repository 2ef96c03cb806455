// The tracker fleet's pure parts (src/tracker/fleet_protocol, SwarmRegistry's
// fleet mode): what an instance leaves to Redis, the formats it writes there,
// the uniform pick over a swarm spread across instances, the answer routes.
// tests/integration/fleet_test.py runs them against a real Redis (test tracker_fleet).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "signaling/signaling.hpp"
#include "tracker/fleet_protocol.hpp"
#include "tracker/swarm_registry.hpp"

namespace p2pcdn::tracker {
namespace {

using namespace signaling;
using namespace std::chrono_literals;
using fleet::MemberRef;

Id20 id(std::uint8_t a, std::uint8_t b = 0) {
  Id20 v{};
  v[0] = a;
  v[1] = b;
  v[19] = 0x5a;
  return v;
}

const InfoHash kSwarm = id(0xaa);
const TimePoint kT0 = TimePoint(std::chrono::hours(1));

AnnounceRequest announce(std::uint8_t peer, std::optional<std::uint64_t> left = 100, Event e = Event::kNone) {
  AnnounceRequest a;
  a.infoHash = kSwarm;
  a.peerId = id(peer);
  a.event = e;
  a.left = left;
  return a;
}

TEST(FleetMode, AnAcceptedAnnounceIsLeftToTheFleet) {
  SwarmRegistry reg(RegistryOptions{30s, 4}, 1);
  std::vector<Delivery> out;
  FleetAnnounce f;
  AnnounceRequest a = announce(1);
  a.offers.push_back({id(0xf0), {"offer", "sdp"}});
  a.offers.push_back({id(0xf1), {"offer", "sdp"}});
  a.numwant = 1;
  reg.handle(1, a, kT0, out, &f);
  EXPECT_TRUE(out.empty()) << "fleet mode answers nothing itself";
  ASSERT_TRUE(f.accepted);
  EXPECT_EQ(f.from, 1u);
  EXPECT_EQ(f.member.infoHash, kSwarm);
  EXPECT_EQ(f.member.peerId, id(1));
  EXPECT_FALSE(f.member.seeder);
  EXPECT_TRUE(f.reply);
  EXPECT_EQ(f.want, 1u);
  ASSERT_EQ(f.offers.size(), 1u) << "offers beyond numwant are dropped";
  EXPECT_EQ(reg.connectionOf(kSwarm, id(1)), 1u) << "the registry still holds its own peer";
  EXPECT_EQ(reg.counts().peers, 1u);

  reg.handle(1, announce(1, 0), kT0, out, &f);
  EXPECT_TRUE(f.accepted);
  EXPECT_TRUE(f.member.seeder);
  EXPECT_TRUE(f.offers.empty());
}

TEST(FleetMode, ARefusalIsStillAnsweredHere) {
  SwarmRegistry reg(RegistryOptions{30s, 4}, 1);
  std::vector<Delivery> out;
  FleetAnnounce f;
  reg.handle(1, announce(1), kT0, out, &f);
  reg.handle(2, announce(1), kT0, out, &f);  // peer 1's id from another connection
  EXPECT_FALSE(f.accepted);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, 2u);
  EXPECT_TRUE(std::holds_alternative<Failure>(*decodeTrackerMessage(out[0].text)));
}

TEST(FleetMode, AnswersToLocalPeersAreRelayedHereOthersGoToTheFleet) {
  SwarmRegistry reg(RegistryOptions{30s, 4}, 1);
  std::vector<Delivery> out;
  FleetAnnounce f;
  reg.handle(1, announce(1), kT0, out, &f);
  AnnounceRequest a = announce(2);
  a.answer = AnswerEntry{id(1), id(0xf0), {"answer", "sdp"}};
  reg.handle(2, a, kT0, out, &f);
  ASSERT_EQ(out.size(), 1u) << "peer 1 is held here";
  EXPECT_EQ(out[0].to, 1u);
  EXPECT_FALSE(f.answer);
  EXPECT_FALSE(f.reply) << "an answer gets no reply";
  out.clear();
  a.answer->toPeerId = id(9);  // on another instance, perhaps
  reg.handle(2, a, kT0, out, &f);
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(f.answer);
  EXPECT_EQ(f.answer->toPeerId, id(9));
}

TEST(FleetMode, StoppedAndClosedPeersAreReportedAsLeft) {
  SwarmRegistry reg(RegistryOptions{30s, 4}, 1);
  std::vector<Delivery> out;
  FleetAnnounce f;
  reg.handle(1, announce(1, 0), kT0, out, &f);
  reg.handle(2, announce(2), kT0, out, &f);
  reg.handle(2, announce(2, 100, Event::kStopped), kT0, out, &f);
  EXPECT_TRUE(f.accepted);
  EXPECT_TRUE(f.stopped);
  EXPECT_FALSE(reg.connectionOf(kSwarm, id(2)));
  std::vector<Member> left;
  reg.removeConnection(1, &left);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].peerId, id(1));
  EXPECT_TRUE(left[0].seeder);
  EXPECT_EQ(reg.counts().peers, 0u);
}

TEST(FleetMode, WithoutRedisTheInstanceServesItsOwnPeers) {
  SwarmRegistry reg(RegistryOptions{30s, 4}, 1);
  std::vector<Delivery> out;
  FleetAnnounce f;
  reg.handle(1, announce(1, 0), kT0, out, &f);
  AnnounceRequest a = announce(2);
  a.offers.push_back({id(0xf0), {"offer", "sdp"}});
  a.numwant = 5;
  reg.handle(2, a, kT0, out, &f);
  reg.relayLocally(f, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].to, 2u);
  auto r = std::get<AnnounceResponse>(*decodeTrackerMessage(out[0].text));
  EXPECT_EQ(r.complete, 1u);
  EXPECT_EQ(r.incomplete, 1u);
  EXPECT_EQ(out[1].to, 1u) << "the offer goes to the local seeder";
  EXPECT_TRUE(std::holds_alternative<RelayedOffer>(*decodeTrackerMessage(out[1].text)));
}

TEST(FleetMode, EveryPeerCanBeListedForRepublishing) {
  SwarmRegistry reg(RegistryOptions{30s, 4}, 1);
  std::vector<Delivery> out;
  FleetAnnounce f;
  for (std::uint8_t p = 1; p <= 3; ++p) reg.handle(p, announce(p, p == 1 ? 0 : 100), kT0, out, &f);
  std::map<std::uint8_t, bool> seen;
  reg.forEachPeer([&](const Member& m) { seen[m.peerId[0]] = m.seeder; });
  EXPECT_EQ(seen, (std::map<std::uint8_t, bool>{{1, true}, {2, false}, {3, false}}));
}

TEST(FleetFormats, MembersAndBusMessagesRoundTripAndRejectJunk) {
  const fleet::InstanceId inst{1, 2, 3, 4, 5, 6, 7, 8};
  const MemberRef m{id(7), inst};
  const std::string bytes = fleet::encodeMember(m);
  EXPECT_EQ(bytes.size(), 28u);
  EXPECT_EQ(fleet::decodeMember(bytes), m);
  EXPECT_FALSE(fleet::decodeMember(bytes.substr(1)));
  EXPECT_FALSE(fleet::decodeMember(bytes + "x"));

  fleet::BusMessage b{fleet::BusMessage::Kind::kAnswer, kSwarm, id(1), id(2), inst, "{\"x\":1}"};
  const std::string wire = fleet::encodeBusMessage(b);
  auto back = fleet::decodeBusMessage(wire);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, b);
  EXPECT_FALSE(fleet::decodeBusMessage(wire.substr(0, 68)));
  std::string badKind = wire;
  badKind[0] = 'z';
  EXPECT_FALSE(fleet::decodeBusMessage(badKind));
  EXPECT_FALSE(fleet::decodeBusMessage(wire.substr(0, 69) + std::string(kMaxMessageBytes + 1, 'x')));

  EXPECT_EQ(fleet::seedersKey(kSwarm).substr(0, 8), "p2pcdn:{") << "hash-tagged: one Cluster slot per swarm";
  EXPECT_EQ(fleet::seedersKey(kSwarm).substr(8 + 40), "}:s");
  EXPECT_EQ(fleet::leechersKey(kSwarm).substr(8 + 40), "}:l");
  EXPECT_EQ(fleet::instanceChannel(inst), "p2pcdn:i:0102030405060708");
}

std::vector<MemberRef> members(std::uint8_t first, std::size_t n, std::uint8_t instance) {
  std::vector<MemberRef> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back({id(static_cast<std::uint8_t>(first + i)), {instance}});
  return v;
}

TEST(FleetPick, NeverSelfNeverTwiceAtMostWant) {
  std::mt19937_64 rng(3);
  auto s = members(1, 3, 1);
  auto l = members(10, 4, 2);
  l.push_back({id(1), {9}});  // peer 1 again, through another (older) instance
  l.push_back({id(20), {2}});  // self
  for (int round = 0; round < 200; ++round) {
    auto picks = fleet::pickPeers(3, 6, s, l, id(20), 5, rng);
    EXPECT_EQ(picks.size(), 5u);
    std::set<PeerId> ids;
    for (const auto& p : picks) {
      EXPECT_NE(p.peerId, id(20));
      EXPECT_TRUE(ids.insert(p.peerId).second) << "a peer twice";
    }
  }
  EXPECT_TRUE(fleet::pickPeers(3, 6, s, l, id(20), 0, rng).empty());
  EXPECT_EQ(fleet::pickPeers(0, 2, {}, members(1, 2, 1), id(20), 10, rng).size(), 2u) << "fewer than wanted";
}

// One seeder among 1000 leechers: a uniform pick of 10 meets it about 1 % of
// the time, not every time (a flash crowd must not all offer to the seeder).
TEST(FleetPick, TheUnionIsSampledUniformly) {
  std::mt19937_64 rng(5);
  const auto seeders = members(1, 1, 1);
  const auto leechers = members(10, 11, 2);  // ZRANDMEMBER's sample: want + 1 of 1000
  int seederPicked = 0;
  const int rounds = 20000;
  for (int round = 0; round < rounds; ++round) {
    for (const auto& p : fleet::pickPeers(1, 1000, seeders, leechers, id(250), 10, rng)) {
      if (p.peerId == id(1)) ++seederPicked;
    }
  }
  const double rate = static_cast<double>(seederPicked) / rounds;
  EXPECT_GT(rate, 0.005);
  EXPECT_LT(rate, 0.02) << "expected about 10/1001";
}

TEST(FleetRoutes, RememberedUntilTheirTimeOrCapacity) {
  using C = fleet::RouteCache::Clock;
  const C::time_point t0{std::chrono::hours(1)};
  fleet::RouteCache routes(3, 10s, 7);
  const fleet::InstanceId a{1}, b{2};
  routes.remember(kSwarm, id(1), a, t0);
  EXPECT_EQ(routes.find(kSwarm, id(1), t0 + 9s), a);
  EXPECT_FALSE(routes.find(kSwarm, id(1), t0 + 11s)) << "expired";
  EXPECT_FALSE(routes.find(id(0xbb), id(1), t0)) << "another swarm";
  routes.remember(kSwarm, id(1), b, t0 + 1s);  // moved instance
  EXPECT_EQ(routes.find(kSwarm, id(1), t0 + 1s), b);
  for (std::uint8_t p = 2; p < 200; ++p) routes.remember(kSwarm, id(p), a, t0);
  EXPECT_LE(routes.size(), 3u);
  EXPECT_EQ(routes.find(kSwarm, id(199), t0), a) << "the newest stay";
  EXPECT_FALSE(routes.find(kSwarm, id(2), t0)) << "the oldest go";
  // Refreshing one key over and over keeps the bookkeeping bounded too.
  for (int i = 0; i < 1000; ++i) routes.remember(kSwarm, id(7), a, t0);
  EXPECT_LE(routes.size(), 3u);
}

}  // namespace
}  // namespace p2pcdn::tracker
