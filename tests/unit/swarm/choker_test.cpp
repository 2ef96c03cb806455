// swarm::chooseUnchoked, the choke round as a pure function (after
// libtorrent's test_optimistic_unchoke and choker tests): regular slots by
// reciprocation, by upload rate when seeding, the optimistic slot and its
// rotation, newcomer weighting, slot counts.
#include "swarm/choker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace p2pcdn::swarm {
namespace {

// Peers 1..n; peer i gives us i KB/s and takes (n + 1 - i) KB/s.
std::vector<ChokeCandidate> peers(std::size_t n) {
  std::vector<ChokeCandidate> out;
  for (std::size_t i = 1; i <= n; ++i) {
    out.push_back(ChokeCandidate{.key = i,
                                 .downloadRate = 1000.0 * static_cast<double>(i),
                                 .uploadRate = 1000.0 * static_cast<double>(n + 1 - i),
                                 .newcomer = false});
  }
  return out;
}

// A round with `slots` slots, numbered `number` (rotation every third).
ChokeRound roundOf(std::size_t slots, std::uint32_t number, bool seeding = false,
                   std::optional<PeerKey> optimistic = std::nullopt) {
  ChokeRound r;
  r.slots = slots;
  r.seeding = seeding;
  r.round = number;
  r.optimisticEvery = 3;
  r.optimistic = optimistic;
  return r;
}

std::set<PeerKey> regularOf(const ChokeDecision& d) {
  // The optimistic one is last when there is one.
  std::vector<PeerKey> regular = d.unchoked;
  if (d.optimistic && !regular.empty() && regular.back() == *d.optimistic) regular.pop_back();
  return {regular.begin(), regular.end()};
}

TEST(Choker, RegularSlotsGoToWhoGivesUsMost) {
  const auto candidates = peers(10);
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    const auto d = chooseUnchoked(candidates, roundOf(4, 1), rng);
    EXPECT_EQ(regularOf(d), (std::set<PeerKey>{10, 9, 8})) << "seed " << seed;
    // In rank order.
    ASSERT_GE(d.unchoked.size(), 3u);
    EXPECT_EQ(d.unchoked[0], 10u);
    EXPECT_EQ(d.unchoked[1], 9u);
    EXPECT_EQ(d.unchoked[2], 8u);
  }
}

TEST(Choker, SeedingRanksByHowFastTheyTake) {
  const auto candidates = peers(10);  // peer 1 takes fastest, peer 10 gives us most
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    const auto d = chooseUnchoked(candidates, roundOf(4, 1, true), rng);
    EXPECT_EQ(regularOf(d), (std::set<PeerKey>{1, 2, 3})) << "seed " << seed;
  }
}

TEST(Choker, EqualRatesAreTiedAtRandom) {
  std::vector<ChokeCandidate> candidates(8);
  for (std::size_t i = 0; i < candidates.size(); ++i) candidates[i].key = i + 1;
  std::set<PeerKey> firsts;
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    std::mt19937_64 rng(seed);
    firsts.insert(chooseUnchoked(candidates, roundOf(2, 1), rng).unchoked.front());
  }
  EXPECT_GT(firsts.size(), 4u);  // not always the first candidate
}

TEST(Choker, SlotCounts) {
  std::mt19937_64 rng(1);
  // slots - 1 regular + 1 optimistic.
  auto d = chooseUnchoked(peers(10), roundOf(4, 1), rng);
  EXPECT_EQ(d.unchoked.size(), 4u);
  ASSERT_TRUE(d.optimistic);
  EXPECT_EQ(d.unchoked.back(), *d.optimistic);
  // One slot: the best ranked only, no optimistic unchoke.
  d = chooseUnchoked(peers(10), roundOf(1, 1), rng);
  EXPECT_EQ(d.unchoked, (std::vector<PeerKey>{10}));
  EXPECT_FALSE(d.optimistic);
  // Fewer candidates than regular slots: all of them, no optimistic slot to fill.
  d = chooseUnchoked(peers(3), roundOf(4, 1), rng);
  EXPECT_EQ(d.unchoked.size(), 3u);
  EXPECT_FALSE(d.optimistic);
  // As many as the regular slots plus one: everyone, the last one optimistic.
  d = chooseUnchoked(peers(4), roundOf(4, 1), rng);
  EXPECT_EQ(d.unchoked.size(), 4u);
  EXPECT_EQ(d.optimistic, std::optional<PeerKey>(1));
  // No candidates.
  d = chooseUnchoked({}, roundOf(4, 1), rng);
  EXPECT_TRUE(d.unchoked.empty());
}

TEST(Choker, OptimisticIsAChokedPeer) {
  const auto candidates = peers(10);
  std::set<PeerKey> seen;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    std::mt19937_64 rng(seed);
    const auto d = chooseUnchoked(candidates, roundOf(4, 1), rng);
    ASSERT_TRUE(d.optimistic);
    EXPECT_LE(*d.optimistic, 7u) << "seed " << seed;  // never one of the regular three
    seen.insert(*d.optimistic);
  }
  EXPECT_EQ(seen.size(), 7u);  // any of the choked ones
}

// The optimistic unchoke stays for optimisticEvery rounds, then moves on.
TEST(Choker, OptimisticRotatesEveryThirdRound) {
  const auto candidates = peers(20);
  std::mt19937_64 rng(7);
  std::optional<PeerKey> optimistic;
  std::vector<PeerKey> history;
  for (std::uint32_t round = 1; round <= 60; ++round) {
    const auto d = chooseUnchoked(
        candidates, roundOf(4, round, false, optimistic), rng);
    ASSERT_TRUE(d.optimistic);
    optimistic = d.optimistic;
    history.push_back(*optimistic);
  }
  std::size_t changes = 0;
  for (std::size_t i = 1; i < history.size(); ++i) {
    const std::uint32_t round = static_cast<std::uint32_t>(i + 1);
    if (round % 3 != 0) {
      EXPECT_EQ(history[i], history[i - 1]) << "round " << round << " kept the optimistic unchoke";
    } else if (history[i] != history[i - 1]) {
      ++changes;
    }
  }
  // 19 rotations among 17 choked peers: most of them pick someone new.
  EXPECT_GE(changes, 12u);
}

// An optimistic unchoke that now ranks among the regular ones leaves the
// optimistic slot to another choked peer at once.
TEST(Choker, OptimisticThatRanksRegularIsReplaced) {
  const auto candidates = peers(10);
  std::mt19937_64 rng(3);
  const auto d = chooseUnchoked(candidates, roundOf(4, 2, false, PeerKey{10}), rng);
  ASSERT_TRUE(d.optimistic);
  EXPECT_NE(*d.optimistic, 10u);
  EXPECT_EQ(d.unchoked.size(), 4u);
}

// Newcomers have no rate yet: they get three times the chance of the others.
TEST(Choker, NewcomersAreThriceAsLikelyToBeOptimistic) {
  auto candidates = peers(12);  // 9 choked: 1..9
  for (auto& c : candidates) c.newcomer = c.key <= 3;
  std::map<bool, std::size_t> picked;
  for (std::uint64_t seed = 0; seed < 3000; ++seed) {
    std::mt19937_64 rng(seed);
    const auto d = chooseUnchoked(candidates, roundOf(4, 1), rng);
    ASSERT_TRUE(d.optimistic);
    ++picked[*d.optimistic <= 3];
  }
  // 3 newcomers x 3 against 6 others x 1: 60 % newcomers (33 % unweighted).
  const double share = static_cast<double>(picked[true]) / 3000.0;
  EXPECT_NEAR(share, 0.6, 0.05);
}

}  // namespace
}  // namespace p2pcdn::swarm
