// The tracker's rules without sockets (src/tracker/swarm_registry, rate_limit,
// stats_format): joining, relaying offers and answers, leaving, expiry,
// limits, the token bucket and the stats formats.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "signaling/signaling.hpp"
#include "tracker/rate_limit.hpp"
#include "tracker/swarm_registry.hpp"
#include "tracker/tracker_server.hpp"

namespace p2pcdn::tracker {
namespace {

using namespace signaling;
using namespace std::chrono_literals;

Id20 id(std::uint8_t a, std::uint8_t b = 0) {
  Id20 v{};
  v[0] = a;
  v[1] = b;
  v[19] = 0xff;
  return v;
}

const InfoHash kSwarm = id(0xaa);
const TimePoint kT0 = TimePoint(std::chrono::hours(1));

AnnounceRequest announce(std::uint8_t peer, Event e = Event::kNone, std::optional<std::uint64_t> left = 100) {
  AnnounceRequest a;
  a.infoHash = kSwarm;
  a.peerId = id(peer);
  a.event = e;
  a.left = left;
  return a;
}

AnnounceRequest withOffers(AnnounceRequest a, std::size_t n, std::optional<std::uint32_t> numwant = std::nullopt) {
  for (std::size_t i = 0; i < n; ++i) {
    a.offers.push_back({id(0xf0, static_cast<std::uint8_t>(i)), {"offer", "sdp" + std::to_string(i)}});
  }
  a.numwant = numwant;
  return a;
}

TrackerMessage decoded(const Delivery& d) {
  auto m = decodeTrackerMessage(d.text);
  EXPECT_TRUE(m.has_value()) << d.text;
  return m ? *m : TrackerMessage{Failure{"undecodable", std::nullopt, std::nullopt}};
}

class RegistryTest : public ::testing::Test {
 protected:
  std::vector<Delivery> send(ConnectionId from, const ClientMessage& m, TimePoint now = kT0) {
    std::vector<Delivery> out;
    reg.handle(from, m, now, out);
    return out;
  }
  // Joins peer `n` on connection `n` and returns the reply.
  AnnounceResponse join(std::uint8_t n, std::optional<std::uint64_t> left = 100) {
    auto out = send(n, announce(n, Event::kStarted, left));
    EXPECT_EQ(out.size(), 1u);
    if (out.empty()) return {};
    EXPECT_EQ(out[0].to, n);
    const TrackerMessage m = decoded(out[0]);
    EXPECT_TRUE(std::holds_alternative<AnnounceResponse>(m)) << out[0].text;
    return std::holds_alternative<AnnounceResponse>(m) ? std::get<AnnounceResponse>(m) : AnnounceResponse{};
  }

  SwarmRegistry reg{RegistryOptions{30s, 3}, 42};
};

TEST_F(RegistryTest, AnnounceJoinsAndRepliesWithCounts) {
  AnnounceResponse r = join(1);
  EXPECT_EQ(r.infoHash, kSwarm);
  EXPECT_EQ(r.interval, 30u);
  EXPECT_EQ(r.complete, 0u);
  EXPECT_EQ(r.incomplete, 1u);
  r = join(2, 0);
  EXPECT_EQ(r.complete, 1u);
  EXPECT_EQ(r.incomplete, 1u);
  const RegistryCounts c = reg.counts();
  EXPECT_EQ(c.swarms, 1u);
  EXPECT_EQ(c.peers, 2u);
  EXPECT_EQ(c.seeders, 1u);
  EXPECT_EQ(c.leechers, 1u);
}

TEST_F(RegistryTest, OffersGoToDistinctOtherPeersUpToNumwant) {
  join(1);
  join(2);
  join(3);
  auto out = send(1, withOffers(announce(1), 5));
  ASSERT_EQ(out.size(), 3u);  // the reply, then one offer for each of the 2 others
  EXPECT_TRUE(std::holds_alternative<AnnounceResponse>(decoded(out[0])));
  std::set<ConnectionId> to;
  for (std::size_t i = 1; i < out.size(); ++i) {
    const auto offer = std::get<RelayedOffer>(decoded(out[i]));
    EXPECT_EQ(offer.peerId, id(1));
    EXPECT_EQ(offer.infoHash, kSwarm);
    EXPECT_EQ(offer.offerId, id(0xf0, static_cast<std::uint8_t>(i - 1)));
    EXPECT_EQ(offer.offer.sdp, "sdp" + std::to_string(i - 1));
    to.insert(out[i].to);
  }
  EXPECT_EQ(to, (std::set<ConnectionId>{2, 3}));
  EXPECT_EQ(reg.counters().offersRelayed, 2u);

  out = send(1, withOffers(announce(1), 5, 1));  // numwant 1
  EXPECT_EQ(out.size(), 2u);
  out = send(1, withOffers(announce(1), 5, 0));
  EXPECT_EQ(out.size(), 1u);
}

TEST_F(RegistryTest, AloneOffersGoNowhere) {
  auto out = send(1, withOffers(announce(1, Event::kStarted), 3));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, 1u);
}

TEST_F(RegistryTest, SeedersOffersGoToLeechersOnly) {
  join(1, 0);
  join(2, 0);
  join(3, 50);
  for (int round = 0; round < 20; ++round) {
    auto out = send(1, withOffers(announce(1, Event::kNone, 0), 3));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[1].to, 3u);
  }
}

TEST_F(RegistryTest, AnswersAreRoutedAndNotReplied) {
  join(1);
  join(2);
  AnnounceRequest a = announce(2);
  a.answer = AnswerEntry{id(1), id(0xf0, 7), {"answer", "v=0 answer"}};
  auto out = send(2, a);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, 1u);
  const auto answer = std::get<RelayedAnswer>(decoded(out[0]));
  EXPECT_EQ(answer.peerId, id(2));
  EXPECT_EQ(answer.offerId, id(0xf0, 7));
  EXPECT_EQ(answer.answer.sdp, "v=0 answer");
  EXPECT_EQ(reg.counters().answersRelayed, 1u);

  a.answer->toPeerId = id(9);  // gone
  out = send(2, a);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(reg.counters().answersUnroutable, 1u);
}

TEST_F(RegistryTest, AnAnswerJoinsTheAnswerer) {
  join(1);
  AnnounceRequest a = announce(5, Event::kNone, std::nullopt);  // libtorrent's answers carry no "left"
  a.answer = AnswerEntry{id(1), id(3), {"answer", "x"}};
  auto out = send(5, a);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(reg.counts().peers, 2u);
  EXPECT_EQ(reg.counts().leechers, 2u);
}

TEST_F(RegistryTest, StoppedLeavesAndEmptySwarmsVanish) {
  join(1);
  join(2);
  auto out = send(1, announce(1, Event::kStopped));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<AnnounceResponse>(decoded(out[0])).incomplete, 1u);
  EXPECT_EQ(reg.counts().peers, 1u);
  out = send(1, withOffers(announce(1, Event::kStopped), 2));  // unknown peer: still a reply, no relay
  ASSERT_EQ(out.size(), 1u);
  send(2, announce(2, Event::kStopped));
  EXPECT_EQ(reg.counts().swarms, 0u);
  EXPECT_EQ(reg.counts().peers, 0u);
  // and it can join again (its membership is gone too)
  join(1);
  EXPECT_EQ(reg.counts().peers, 1u);
}

TEST_F(RegistryTest, APeerIdBelongsToItsConnection) {
  join(1);
  auto out = send(7, announce(1));  // connection 7 claims peer 1
  ASSERT_EQ(out.size(), 1u);
  const auto f = std::get<Failure>(decoded(out[0]));
  EXPECT_EQ(f.action, Action::kAnnounce);
  EXPECT_EQ(f.infoHash, kSwarm);
  out = send(7, announce(1, Event::kStopped));  // nor can it stop it
  EXPECT_TRUE(std::holds_alternative<Failure>(decoded(out[0])));
  EXPECT_EQ(reg.counts().peers, 1u);
  EXPECT_EQ(reg.counters().refused, 2u);
}

TEST_F(RegistryTest, OneConnectionMayCarrySeveralPeersOfASwarm) {
  // bittorrent-tracker's client shares one socket among all clients of a page.
  join(1);
  auto out = send(1, announce(8));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<AnnounceResponse>(decoded(out[0])).incomplete, 2u);
  out = send(1, withOffers(announce(8), 2));
  ASSERT_EQ(out.size(), 2u);  // peer 1 gets peer 8's offer, on the same connection
  EXPECT_EQ(std::get<RelayedOffer>(decoded(out[1])).peerId, id(8));
  send(1, announce(8, Event::kStopped));
  EXPECT_EQ(reg.counts().peers, 1u);
  reg.removeConnection(1);
  EXPECT_EQ(reg.counts().peers, 0u);
}

TEST_F(RegistryTest, SwarmsPerConnectionAreBounded) {
  for (std::uint8_t s = 0; s < 4; ++s) {
    AnnounceRequest a = announce(1);
    a.infoHash = id(0x10, s);
    auto out = send(1, a);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(std::holds_alternative<Failure>(decoded(out[0])), s == 3) << int(s);
  }
  EXPECT_EQ(reg.counts().swarms, 3u);
}

TEST_F(RegistryTest, ClosingAConnectionRemovesItsPeers) {
  for (std::uint8_t s = 0; s < 3; ++s) {
    AnnounceRequest a = announce(1);
    a.infoHash = id(0x10, s);
    send(1, a);
  }
  join(2);
  reg.removeConnection(1);
  EXPECT_EQ(reg.counts().peers, 1u);
  EXPECT_EQ(reg.counts().swarms, 1u);
  reg.removeConnection(1);
  reg.removeConnection(99);
  EXPECT_EQ(reg.counts().peers, 1u);
}

TEST_F(RegistryTest, SilentPeersExpireAfterTwoIntervals) {
  send(1, announce(1), kT0);
  send(2, announce(2), kT0 + 40s);
  EXPECT_EQ(reg.expire(kT0 + 59s), 0u);
  EXPECT_EQ(reg.expire(kT0 + 61s), 1u);
  EXPECT_EQ(reg.counts().peers, 1u);
  send(2, announce(2), kT0 + 90s);  // refreshed
  EXPECT_EQ(reg.expire(kT0 + 140s), 0u);
  EXPECT_EQ(reg.expire(kT0 + 151s), 1u);
  EXPECT_EQ(reg.counts().swarms, 0u);
  EXPECT_EQ(reg.counters().expired, 2u);
  join(1);  // the expired peer's membership is gone too
  EXPECT_EQ(reg.counts().peers, 1u);
}

TEST_F(RegistryTest, SeederStateFollowsLeftAndCompleted) {
  join(1, 100);
  send(1, announce(1, Event::kCompleted, std::nullopt));
  EXPECT_EQ(reg.counts().seeders, 1u);
  send(1, announce(1, Event::kNone, std::nullopt));  // unknown "left" keeps it
  EXPECT_EQ(reg.counts().seeders, 1u);
  send(1, announce(1, Event::kNone, 5));
  EXPECT_EQ(reg.counts().seeders, 0u);
  EXPECT_EQ(reg.counts().leechers, 1u);
}

TEST_F(RegistryTest, ScrapeReportsWithoutCreatingSwarms) {
  join(1, 0);
  join(2);
  auto out = send(3, ScrapeRequest{{kSwarm, id(0x77), kSwarm}});
  ASSERT_EQ(out.size(), 1u);
  const auto s = std::get<ScrapeResponse>(decoded(out[0]));
  ASSERT_EQ(s.files.size(), 2u);
  for (const ScrapeFile& f : s.files) {
    if (f.infoHash == kSwarm) {
      EXPECT_EQ(f.complete, 1u);
      EXPECT_EQ(f.incomplete, 1u);
    } else {
      EXPECT_EQ(f.complete + f.incomplete, 0u);
    }
  }
  EXPECT_EQ(reg.counts().swarms, 1u);
}

TEST(RegistryLarge, RandomPicksAreDistinctAndNeverSelf) {
  SwarmRegistry reg(RegistryOptions{30s, 100}, 7);
  std::vector<Delivery> out;
  for (std::uint32_t p = 1; p <= 1000; ++p) {
    AnnounceRequest a = announce(static_cast<std::uint8_t>(p & 0xff));
    a.peerId[2] = static_cast<std::uint8_t>(p >> 8);
    reg.handle(p, a, kT0, out);
  }
  std::map<ConnectionId, int> hits;
  for (int round = 0; round < 200; ++round) {
    out.clear();
    AnnounceRequest a = withOffers(announce(1), kMaxOffers);
    reg.handle(1, a, kT0, out);
    ASSERT_EQ(out.size(), 1 + kMaxOffers);
    std::set<ConnectionId> to;
    for (std::size_t i = 1; i < out.size(); ++i) {
      EXPECT_NE(out[i].to, 1u);
      to.insert(out[i].to);
      ++hits[out[i].to];
    }
    EXPECT_EQ(to.size(), kMaxOffers);
  }
  EXPECT_GT(hits.size(), 800u);  // 2000 picks spread over the 999 others
}

TEST(TokenBucket, BurstThenRate) {
  const auto t0 = std::chrono::steady_clock::time_point(std::chrono::seconds(10));
  TokenBucket b(10, 5, t0);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.take(t0));
  EXPECT_FALSE(b.take(t0));
  EXPECT_FALSE(b.take(t0 + 50ms));
  EXPECT_TRUE(b.take(t0 + 100ms));
  EXPECT_FALSE(b.take(t0 + 100ms));
  int got = 0;
  for (int i = 0; i < 100; ++i) got += b.take(t0 + 10s) ? 1 : 0;
  EXPECT_EQ(got, 5);  // capped at the burst
  TokenBucket unlimited(0, 0, t0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.take(t0));
}

TEST(StatsFormat, JsonAndPrometheus) {
  TrackerStats s;
  s.connections = 3;
  s.offersRelayed = 12;
  s.errors = 1;
  const auto j = nlohmann::json::parse(statsJson(s));
  EXPECT_EQ(j["connections"], 3);
  EXPECT_EQ(j["offersRelayed"], 12);
  EXPECT_EQ(j["answersRelayed"], 0);
  const std::string p = statsPrometheus(s);
  EXPECT_NE(p.find("# TYPE p2pcdn_tracker_connections gauge\np2pcdn_tracker_connections 3\n"), std::string::npos) << p;
  EXPECT_NE(p.find("# TYPE p2pcdn_tracker_offers_relayed_total counter\np2pcdn_tracker_offers_relayed_total 12\n"),
            std::string::npos);
  EXPECT_NE(p.find("p2pcdn_tracker_errors_total 1\n"), std::string::npos);
}

}  // namespace
}  // namespace p2pcdn::tracker
