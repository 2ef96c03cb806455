// swarm::Discovery: announces and back-off, offer batches and lifetimes,
// glare, half-open links, slots. Two or three Discovery objects stand for
// peers; the test carries their offers and answers by hand, so each case
// sets the exact order the tracker delivered them in.
#include "swarm/discovery.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace p2pcdn::swarm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TrackerId id(std::uint8_t first) {
  TrackerId t{};
  t[0] = first;
  return t;
}

constexpr SwarmView kAlone{.member = true, .leeching = true, .connected = 0, .useful = 0};

// Makes one offer at `d` and sends it (gathered at once).
TrackerId offer(Discovery& d, LinkKey key, std::uint8_t offerIdByte, Time now) {
  const TrackerId oid = id(offerIdByte);
  d.offerMade(key, oid, now);
  d.offerGathered(key, now);
  (void)d.takeOfferBatch(now);
  return oid;
}

TEST(Discovery, QuickReAnnouncesBackOffUpToTheInterval) {
  Discovery d(id(1), DiscoveryOptions{});
  std::vector<double> at;
  for (Time now{}; now < seconds(70); now += milliseconds(100)) {
    auto t = d.tick(now, kAlone);
    if (t.announce != Announce::kNo) {
      // The first announce is not a re-announce: it does not count in the back-off.
      EXPECT_EQ(t.announce, at.empty() ? Announce::kRegular : Announce::kQuick);
      d.announced(now, true, t.announce == Announce::kQuick);
      at.push_back(std::round(swarm::seconds(now) * 10) / 10);
    }
  }
  // 1 s, 2 s, 4 s, 8 s, 16 s apart, then the 30 s interval (2^5 s is more).
  EXPECT_EQ(at, (std::vector<double>{0, 1, 3, 7, 15, 31, 61}));
}

TEST(Discovery, EnoughUsefulPeersResetTheBackOffAndLeaveTheInterval) {
  Discovery d(id(1), DiscoveryOptions{});
  for (int i = 0; i < 4; ++i) d.announced(seconds(i), true, true);  // back-off now 16 s
  const SwarmView served{.member = true, .leeching = true, .connected = 12, .useful = 5};
  EXPECT_EQ(d.tick(seconds(10), served).announce, Announce::kNo);
  EXPECT_EQ(d.tick(seconds(33), served).announce, Announce::kRegular);  // 30 s after the last
  d.announced(seconds(33), true, false);
  // Peers lost again: the back-off starts over at 1 s.
  EXPECT_EQ(d.tick(seconds(33) + milliseconds(900), kAlone).announce, Announce::kNo);
  EXPECT_EQ(d.tick(seconds(34), kAlone).announce, Announce::kQuick);
}

TEST(Discovery, PeersWithNothingWeLackCountAsNone) {
  Discovery d(id(1), DiscoveryOptions{});
  d.announced(Time{}, true, false);
  const SwarmView useless{.member = true, .leeching = true, .connected = 15, .useful = 0};
  EXPECT_EQ(d.tick(seconds(1), useless).announce, Announce::kQuick);
  const SwarmView fewSlots{.member = true, .leeching = true, .connected = 9, .useful = 9};  // < 20 / 2
  EXPECT_EQ(d.tick(seconds(1), fewSlots).announce, Announce::kQuick);
}

TEST(Discovery, ASeederOnlyAnnouncesEachIntervalAndMakesNoOffers) {
  Discovery d(id(1), DiscoveryOptions{});
  const SwarmView seeding{.member = true, .leeching = false, .connected = 0};
  EXPECT_EQ(d.tick(Time{}, seeding).announce, Announce::kRegular);
  EXPECT_EQ(d.announced(Time{}, false, false), 0u);
  EXPECT_EQ(d.tick(seconds(29), seeding).announce, Announce::kNo);
  EXPECT_EQ(d.tick(seconds(30), seeding).announce, Announce::kRegular);
  EXPECT_EQ(d.tick(seconds(31), SwarmView{}).announce, Announce::kNo);  // not a member
}

TEST(Discovery, NoOffersWhileLinkedToEveryPeerTheTrackerCounts) {
  Discovery d(id(1), {});
  EXPECT_EQ(d.announced(Time{}, true, false), 4u);  // no count yet: offersPerAnnounce
  d.trackerCounts(2);  // a seeder and us
  EXPECT_EQ(d.announced(seconds(1), true, true), 4u);  // no link yet: offers, whatever the count
  const TrackerId oid = offer(d, 1, 50, seconds(1));
  ASSERT_TRUE(d.onAnswer(seconds(2), oid, id(2), false).apply);
  EXPECT_EQ(d.announced(seconds(3), true, true), 0u);  // linked to the only other peer
  d.trackerCounts(3);  // one more joined: the usual offers, so that one of them reaches it
  EXPECT_EQ(d.announced(seconds(4), true, true), 4u);
  d.trackerCounts(0);  // a reply without counts: unknown again
  EXPECT_EQ(d.announced(seconds(6), true, true), 4u);
  DiscoveryOptions off;
  off.offersByTrackerCount = false;
  Discovery e(id(3), off);
  e.trackerCounts(2);
  EXPECT_EQ(e.announced(Time{}, true, false), 4u);
}

TEST(Discovery, AnEarlyLinkFailureAnnouncesAtTheNextTick) {
  Discovery d(id(1), DiscoveryOptions{});
  for (int i = 0; i < 5; ++i) d.announced(seconds(i), true, true);
  const auto oid = offer(d, 7, 9, seconds(5));
  ASSERT_TRUE(d.onAnswer(seconds(5), oid, id(2), false).apply);
  d.opened(7, seconds(5) + milliseconds(30));
  d.closed(7, seconds(6), /*failed=*/true, /*leeching=*/true);
  EXPECT_NE(d.tick(seconds(6), kAlone).announce, Announce::kNo);
  // An orderly close, or one long after opening, keeps the back-off.
  Discovery e(id(1), DiscoveryOptions{});
  for (int i = 0; i < 5; ++i) e.announced(seconds(i), true, true);
  const auto oid2 = offer(e, 7, 9, seconds(5));
  ASSERT_TRUE(e.onAnswer(seconds(5), oid2, id(2), false).apply);
  e.opened(7, seconds(5));
  e.closed(7, seconds(9), true, true);
  EXPECT_EQ(e.tick(seconds(9), kAlone).announce, Announce::kNo);
}

TEST(Discovery, OffersGoOutTogetherOnceAllGatheredOrAfterTheBatchWait) {
  Discovery d(id(1), DiscoveryOptions{});
  ASSERT_EQ(d.announced(Time{}, true, false), 4u);
  for (LinkKey k = 1; k <= 3; ++k) d.offerMade(k, id(static_cast<std::uint8_t>(10 + k)), Time{});
  EXPECT_FALSE(d.offerGathered(1, milliseconds(10)));
  EXPECT_FALSE(d.tick(milliseconds(100), kAlone).sendOffers);
  EXPECT_FALSE(d.offerGathered(2, milliseconds(120)));
  EXPECT_TRUE(d.offerGathered(3, milliseconds(130)));  // the last one: send now
  auto batch = d.takeOfferBatch(milliseconds(130));
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[2].offerId, id(13));
  // One that never gathers does not hold the others back past the batch wait.
  d.announced(seconds(1), true, false);
  d.offerMade(4, id(20), seconds(1));
  d.offerMade(5, id(21), seconds(1));
  d.offerGathered(4, seconds(1));
  EXPECT_FALSE(d.tick(seconds(1) + milliseconds(400), kAlone).sendOffers);
  EXPECT_TRUE(d.tick(seconds(1) + milliseconds(501), kAlone).sendOffers);
  EXPECT_EQ(d.takeOfferBatch(seconds(1) + milliseconds(501)).size(), 1u);
}

TEST(Discovery, AnUnansweredOfferIsWithdrawnAfterItsLifetime) {
  Discovery d(id(1), DiscoveryOptions{});
  offer(d, 1, 1, seconds(2));
  EXPECT_TRUE(d.tick(seconds(7), kAlone).drops.empty());
  auto t = d.tick(seconds(7) + milliseconds(1), kAlone);
  ASSERT_EQ(t.drops.size(), 1u);
  EXPECT_EQ(t.drops[0].key, 1u);
  EXPECT_FALSE(d.knows(1));
  // Its late answer finds nothing.
  EXPECT_FALSE(d.onAnswer(seconds(8), id(1), id(2), false).apply);
  // Still gathering: the gather limit applies instead.
  d.offerMade(2, id(2), seconds(10));
  EXPECT_TRUE(d.tick(seconds(29), kAlone).drops.empty());
  EXPECT_EQ(d.tick(seconds(31), kAlone).drops.size(), 1u);
}

TEST(Discovery, ADescribedLinkThatNeverOpensIsDroppedAtTheConnectLimit) {
  Discovery d(id(1), DiscoveryOptions{});
  ASSERT_TRUE(d.onOffer(Time{}, id(2)).answer);
  d.answering(1, id(2), Time{});
  d.answerSent(1, milliseconds(5));
  EXPECT_TRUE(d.tick(seconds(15), kAlone).drops.empty());
  EXPECT_EQ(d.tick(seconds(16), kAlone).drops.size(), 1u);
}

// The two sides of a glare: each offered to the other and each answered
// the other's offer. Both must keep the same link: the lower id's offer.
TEST(Discovery, GlareKeepsTheLinkOfferedByTheLowerPeerIdOnBothSides) {
  const TrackerId low = id(1), high = id(2);
  Discovery a(low, DiscoveryOptions{}), b(high, DiscoveryOptions{});
  const auto oa = offer(a, /*key=*/10, 0xa0, Time{});  // a's link 10 carries a's offer
  const auto ob = offer(b, /*key=*/20, 0xb0, Time{});  // b's link 20 carries b's offer
  // The tracker hands each offer to the other peer; neither has a link to the other yet.
  ASSERT_TRUE(b.onOffer(milliseconds(10), low).answer);
  b.answering(21, low, milliseconds(10));  // b's link 21 answers a's offer
  b.answerSent(21, milliseconds(11));
  ASSERT_TRUE(a.onOffer(milliseconds(10), high).answer);
  a.answering(11, high, milliseconds(10));  // a's link 11 answers b's offer
  a.answerSent(11, milliseconds(11));
  // The answers cross.
  auto atA = a.onAnswer(milliseconds(20), oa, high, false);
  auto atB = b.onAnswer(milliseconds(20), ob, low, false);
  // a keeps its own offer (10) and drops its answer (11); b drops its offer
  // (20) and keeps its answer to a's offer (21): the same connection.
  ASSERT_TRUE(atA.apply);
  EXPECT_EQ(*atA.apply, 10u);
  ASSERT_EQ(atA.drops.size(), 1u);
  EXPECT_EQ(atA.drops[0].key, 11u);
  EXPECT_FALSE(atB.apply);
  ASSERT_EQ(atB.drops.size(), 1u);
  EXPECT_EQ(atB.drops[0].key, 20u);
  EXPECT_TRUE(b.knows(21));
  EXPECT_EQ(a.links(), 1u);
  EXPECT_EQ(b.links(), 1u);
}

TEST(Discovery, GlareNeverReplacesAnOpenLink) {
  Discovery b(id(2), DiscoveryOptions{});
  const auto ob = offer(b, 20, 0xb0, Time{});
  ASSERT_TRUE(b.onOffer(milliseconds(1), id(3)).answer);  // from a higher id, so b's offer would win
  b.answering(21, id(3), milliseconds(1));
  b.answerSent(21, milliseconds(1));
  b.opened(21, milliseconds(15));
  auto d = b.onAnswer(milliseconds(20), ob, id(3), false);
  EXPECT_FALSE(d.apply);
  ASSERT_EQ(d.drops.size(), 1u);
  EXPECT_EQ(d.drops[0].key, 20u);
}

TEST(Discovery, AHalfOpenLinkWeOfferedGivesWayToThePeersNewOffer) {
  Discovery d(id(1), DiscoveryOptions{});
  const auto oid = offer(d, 1, 1, Time{});
  ASSERT_TRUE(d.onAnswer(milliseconds(50), oid, id(2), false).apply);  // described at 50 ms, never opens
  // Before any link opened the limit is halfOpenDefault (1 s).
  auto early = d.onOffer(milliseconds(900), id(2));
  EXPECT_FALSE(early.answer);
  EXPECT_EQ(early.why, "linked already");
  auto late = d.onOffer(milliseconds(1100), id(2));
  EXPECT_TRUE(late.answer);
  ASSERT_TRUE(late.replaces);
  EXPECT_EQ(*late.replaces, 1u);
  EXPECT_FALSE(d.knows(1));
}

TEST(Discovery, TheHalfOpenLimitFollowsTheSlowestRecentOpen) {
  Discovery d(id(1), DiscoveryOptions{});
  const auto o1 = offer(d, 1, 1, Time{});
  ASSERT_TRUE(d.onAnswer(Time{}, o1, id(2), false).apply);
  d.opened(1, milliseconds(200));  // took 200 ms: limit 600 ms
  const auto o2 = offer(d, 2, 2, seconds(1));
  ASSERT_TRUE(d.onAnswer(seconds(1), o2, id(3), false).apply);
  EXPECT_FALSE(d.onOffer(seconds(1) + milliseconds(550), id(3)).answer);
  EXPECT_TRUE(d.onOffer(seconds(1) + milliseconds(650), id(3)).answer);
}

TEST(Discovery, AHalfOpenLinkGivesWayToANewAnswerFromThatPeer) {
  Discovery d(id(5), DiscoveryOptions{});
  ASSERT_TRUE(d.onOffer(Time{}, id(2)).answer);  // the peer offered; we answered
  d.answering(1, id(2), Time{});
  d.answerSent(1, Time{});
  const auto oid = offer(d, 2, 9, seconds(2));
  // Peer id 2 < 5, so glare alone would keep the peer's link; it is half-open.
  auto a = d.onAnswer(seconds(2), oid, id(2), false);
  ASSERT_TRUE(a.apply);
  EXPECT_EQ(*a.apply, 2u);
  ASSERT_EQ(a.drops.size(), 1u);
  EXPECT_EQ(a.drops[0].key, 1u);
  EXPECT_EQ(a.drops[0].why, "half-open, superseded by an answer");
}

TEST(Discovery, APeersNewOfferReplacesItsOlderOneAtOnceIfWeHadNotAnswered) {
  Discovery d(id(1), DiscoveryOptions{});
  ASSERT_TRUE(d.onOffer(Time{}, id(2)).answer);
  d.answering(1, id(2), Time{});
  // Our answer is still being made: the peer's newer offer wins at once.
  auto again = d.onOffer(milliseconds(10), id(2));
  EXPECT_TRUE(again.answer);
  EXPECT_EQ(again.replaces, std::optional<LinkKey>(1));
  d.answering(2, id(2), milliseconds(10));
  d.answerSent(2, milliseconds(20));
  // Answered: it waits halfOpenMin (250 ms, no link opened yet) first.
  EXPECT_FALSE(d.onOffer(milliseconds(200), id(2)).answer);
  EXPECT_TRUE(d.onOffer(milliseconds(300), id(2)).answer);
}

TEST(Discovery, WhenThePeerAnswersOurNewerOfferTheOlderOneGoes) {
  Discovery d(id(1), DiscoveryOptions{});
  const auto o1 = offer(d, 1, 1, Time{});
  ASSERT_TRUE(d.onAnswer(milliseconds(10), o1, id(2), false).apply);
  const auto o2 = offer(d, 2, 2, seconds(3));
  auto a = d.onAnswer(seconds(3), o2, id(2), false);
  ASSERT_TRUE(a.apply);
  EXPECT_EQ(*a.apply, 2u);
  ASSERT_EQ(a.drops.size(), 1u);
  EXPECT_EQ(a.drops[0].key, 1u);
}

TEST(Discovery, SlotsAreBoundedButOurUnansweredOffersDoNotTakeThem) {
  DiscoveryOptions o;
  o.maxPeers = 3;
  Discovery d(id(1), o);
  ASSERT_EQ(d.announced(Time{}, true, false), 3u);
  for (std::uint8_t k = 1; k <= 3; ++k) offer(d, k, k, Time{});
  EXPECT_EQ(d.announced(seconds(1), true, false), 0u);  // no room for more offers
  for (std::uint8_t k = 0; k < 3; ++k) {
    auto in = d.onOffer(milliseconds(10), id(static_cast<std::uint8_t>(100 + k)));
    ASSERT_TRUE(in.answer) << int(k);
    d.answering(10 + k, id(static_cast<std::uint8_t>(100 + k)), milliseconds(10));
  }
  auto full = d.onOffer(milliseconds(10), id(200));
  EXPECT_FALSE(full.answer);
  EXPECT_EQ(full.why, "full");
}

TEST(Discovery, AnAnswerFromABannedPeerDropsItsLink) {
  Discovery d(id(1), DiscoveryOptions{});
  const auto oid = offer(d, 1, 1, Time{});
  auto a = d.onAnswer(milliseconds(5), oid, id(2), /*fromBanned=*/true);
  EXPECT_FALSE(a.apply);
  ASSERT_EQ(a.drops.size(), 1u);
  EXPECT_FALSE(d.knows(1));
}

TEST(Discovery, NextWakeupCoversEveryDeadlineTickActsOn) {
  Discovery d(id(1), DiscoveryOptions{});
  d.announced(Time{}, true, true);                // next quick announce at 2 s
  offer(d, 1, 1, milliseconds(100));              // withdrawn just after 5.1 s
  const SwarmView v = kAlone;
  Time w = d.nextWakeup(milliseconds(200), v);
  EXPECT_EQ(w, seconds(2));
  EXPECT_EQ(d.tick(w - Time(1), v).announce, Announce::kNo);
  EXPECT_EQ(d.tick(w, v).announce, Announce::kQuick);
  d.announced(w, true, true);                     // next at 2 + 4 = 6 s
  Time w2 = d.nextWakeup(w, v);
  EXPECT_EQ(w2, milliseconds(5100) + Time(1));
  EXPECT_EQ(d.tick(w2, v).drops.size(), 1u);
}

}  // namespace
}  // namespace p2pcdn::swarm
