// PiecePicker (src/swarm/picker.hpp): rarest first, random tie-break, streaming
// window, seeks, endgame, availability bookkeeping, and a property test against
// a plain reference model.
#include "swarm/picker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

namespace p2pcdn::swarm {
namespace {

std::vector<bool> bits(std::size_t n, std::initializer_list<ChunkIndex> set) {
  std::vector<bool> b(n, false);
  for (ChunkIndex i : set) b[i] = true;
  return b;
}

std::vector<bool> all(std::size_t n) { return std::vector<bool>(n, true); }

std::vector<ChunkIndex> sorted(std::vector<ChunkIndex> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// n peers, peer k having the chunks >= n-1-k: chunk i has availability i + 1,
// so chunk 0 is the rarest and chunk n-1 the most common.
void addStaircase(PiecePicker& p, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k) {
    std::vector<bool> b(n, false);
    for (std::size_t i = n - 1 - k; i < n; ++i) b[i] = true;
    ASSERT_TRUE(p.addPeerBitfield(b));
  }
}

TEST(PiecePicker, StartsEmpty) {
  PiecePicker p(8);
  std::mt19937 rng(1);
  EXPECT_EQ(p.chunkCount(), 8u);
  EXPECT_EQ(p.haveCount(), 0u);
  EXPECT_FALSE(p.complete());
  EXPECT_FALSE(p.isEndgame());
  // Nobody counted: nothing to pick.
  EXPECT_TRUE(p.pick(all(8), 4, PickMode::kWholeFile, rng).empty());
}

TEST(PiecePicker, RarestFirstWithKnownAvailability) {
  PiecePicker p(6);
  addStaircase(p, 6);  // availability of chunk i is i + 1
  for (ChunkIndex i = 0; i < 6; ++i) EXPECT_EQ(p.availability(i), i + 1);
  std::mt19937 rng(7);
  EXPECT_EQ(p.pick(all(6), 6, PickMode::kWholeFile, rng),
            (std::vector<ChunkIndex>{0, 1, 2, 3, 4, 5}));
}

TEST(PiecePicker, RarestFirstOrder) {
  // Chunk availabilities 3,1,2,5,4 by hand.
  PiecePicker p(5);
  const std::vector<std::uint32_t> want = {3, 1, 2, 5, 4};
  for (ChunkIndex i = 0; i < 5; ++i) {
    for (std::uint32_t k = 0; k < want[i]; ++k) ASSERT_TRUE(p.peerHas(i));
  }
  std::mt19937 rng(3);
  EXPECT_EQ(p.pick(all(5), 5, PickMode::kWholeFile, rng),
            (std::vector<ChunkIndex>{1, 2, 0, 4, 3}));
  EXPECT_EQ(p.pick(all(5), 2, PickMode::kWholeFile, rng), (std::vector<ChunkIndex>{1, 2}));
  // The peer lacks chunk 1: the next rarest it has.
  EXPECT_EQ(p.pick(bits(5, {0, 3, 4}), 2, PickMode::kWholeFile, rng),
            (std::vector<ChunkIndex>{0, 4}));
}

TEST(PiecePicker, RandomTieBreakDependsOnSeedOnly) {
  constexpr std::size_t n = 200;
  PiecePicker p(n);
  ASSERT_TRUE(p.addPeerBitfield(all(n)));  // all equally rare
  std::set<std::vector<ChunkIndex>> seen;
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 a(seed);
    std::mt19937 b(seed);
    const auto first = p.pick(all(n), 4, PickMode::kWholeFile, a);
    EXPECT_EQ(first, p.pick(all(n), 4, PickMode::kWholeFile, b)) << "seed " << seed;
    EXPECT_EQ(first.size(), 4u);
    seen.insert(first);
  }
  EXPECT_GT(seen.size(), 10u);
}

TEST(PiecePicker, NeverPicksHaveLackedOrRequested) {
  PiecePicker p(10);
  ASSERT_TRUE(p.addPeerBitfield(all(10)));
  ASSERT_TRUE(p.markHave(0));
  ASSERT_TRUE(p.markHave(1));
  ASSERT_TRUE(p.markRequested(2));
  ASSERT_TRUE(p.markRequested(3));
  const auto peer = bits(10, {0, 1, 2, 3, 4, 5, 6, 8});  // lacks 7 and 9
  ASSERT_TRUE(p.addPeerBitfield(peer));
  std::mt19937 rng(5);
  EXPECT_EQ(sorted(p.pick(peer, 10, PickMode::kWholeFile, rng)),
            (std::vector<ChunkIndex>{4, 5, 6, 8}));
  EXPECT_FALSE(p.isEndgame());  // 7 and 9 are still free from the first peer
  // Unmarking makes a chunk pickable again.
  ASSERT_TRUE(p.unmarkRequested(2));
  EXPECT_EQ(sorted(p.pick(peer, 10, PickMode::kWholeFile, rng)),
            (std::vector<ChunkIndex>{2, 4, 5, 6, 8}));
  EXPECT_EQ(p.haveCount(), 2u);
  EXPECT_TRUE(p.have(1));
  EXPECT_FALSE(p.have(2));
}

TEST(PiecePicker, StreamingWindowInOrderThenRarest) {
  constexpr std::size_t n = 20;
  PiecePicker p(n, PickerOptions{.windowSize = 4});
  ASSERT_TRUE(p.addPeerBitfield(all(n)));
  ASSERT_TRUE(p.peerHas(15));  // 15 is common, the others equal...
  ASSERT_TRUE(p.peerHas(15));
  for (ChunkIndex i = 0; i < n; ++i) {
    if (i != 12 && i != 15) {
      ASSERT_TRUE(p.peerHas(i));
    }
  }
  // ...except 12, which is now the rarest (availability 1).
  ASSERT_TRUE(p.markHave(1));
  std::mt19937 rng(9);
  const auto got = p.pick(all(n), 5, PickMode::kStreaming, rng);
  // Window [0, 4) in order minus the chunk we have, then the rarest.
  EXPECT_EQ(got, (std::vector<ChunkIndex>{0, 2, 3, 12, got[4]}));
  EXPECT_TRUE(got[4] >= 4 && got[4] != 12 && got[4] != 15);
  // Fewer than the window: only the first ones.
  EXPECT_EQ(p.pick(all(n), 2, PickMode::kStreaming, rng), (std::vector<ChunkIndex>{0, 2}));
  // Whole-file mode ignores the window.
  EXPECT_EQ(p.pick(all(n), 1, PickMode::kWholeFile, rng), (std::vector<ChunkIndex>{12}));
}

TEST(PiecePicker, SeekMovesTheWindow) {
  constexpr std::size_t n = 100;
  PiecePicker p(n, PickerOptions{.windowSize = 3});
  ASSERT_TRUE(p.addPeerBitfield(all(n)));
  std::mt19937 rng(11);
  EXPECT_EQ(p.pick(all(n), 3, PickMode::kStreaming, rng), (std::vector<ChunkIndex>{0, 1, 2}));
  p.setStreamCursor(50);
  EXPECT_EQ(p.streamCursor(), 50u);
  EXPECT_EQ(p.pick(all(n), 3, PickMode::kStreaming, rng), (std::vector<ChunkIndex>{50, 51, 52}));
  ASSERT_TRUE(p.markRequested(51));
  EXPECT_EQ(p.pick(all(n), 2, PickMode::kStreaming, rng), (std::vector<ChunkIndex>{50, 52}));
  // Near the end the window is cut at the last chunk; the rest is rarest first.
  p.setStreamCursor(98);
  auto got = p.pick(all(n), 3, PickMode::kStreaming, rng);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], 98u);
  EXPECT_EQ(got[1], 99u);
  EXPECT_LT(got[2], 98u);
  EXPECT_NE(got[2], 51u);
  // A seek past the end clamps.
  p.setStreamCursor(1000);
  EXPECT_EQ(p.streamCursor(), 100u);
  EXPECT_EQ(p.pick(all(n), 2, PickMode::kStreaming, rng).size(), 2u);
}

TEST(PiecePicker, EndgameDuplicatesAreBounded) {
  constexpr std::size_t n = 4;
  PiecePicker p(n, PickerOptions{.windowSize = 2, .maxDuplicates = 2});
  ASSERT_TRUE(p.addPeerBitfield(all(n)));
  ASSERT_TRUE(p.addPeerBitfield(all(n)));
  ASSERT_TRUE(p.addPeerBitfield(all(n)));
  ASSERT_TRUE(p.markHave(0));
  ASSERT_TRUE(p.markHave(1));
  std::mt19937 rng(13);
  // Peer A takes 2 and 3.
  auto a = p.pick(all(n), 8, PickMode::kWholeFile, rng);
  EXPECT_EQ(sorted(a), (std::vector<ChunkIndex>{2, 3}));
  EXPECT_FALSE(p.isEndgame());
  for (ChunkIndex i : a) ASSERT_TRUE(p.markRequested(i));
  EXPECT_TRUE(p.isEndgame());
  // A must not get its own requests again.
  EXPECT_TRUE(p.pick(all(n), 8, PickMode::kWholeFile, rng, a).empty());
  // Peer B races both.
  auto b = p.pick(all(n), 8, PickMode::kWholeFile, rng);
  EXPECT_EQ(sorted(b), (std::vector<ChunkIndex>{2, 3}));
  for (ChunkIndex i : b) ASSERT_TRUE(p.markRequested(i));
  EXPECT_EQ(p.requestCount(2), 2u);
  // Peer C: both already have maxDuplicates requests.
  EXPECT_TRUE(p.pick(all(n), 8, PickMode::kWholeFile, rng).empty());
  // B's request for 3 fails: C may take it, once.
  ASSERT_TRUE(p.unmarkRequested(3));
  EXPECT_EQ(p.pick(all(n), 8, PickMode::kWholeFile, rng), (std::vector<ChunkIndex>{3}));
  // 2 arrives: the loser's cancel (unmark) is harmless.
  ASSERT_TRUE(p.markHave(2));
  EXPECT_EQ(p.requestCount(2), 0u);
  ASSERT_TRUE(p.unmarkRequested(2));
  EXPECT_TRUE(p.isEndgame());
  ASSERT_TRUE(p.markHave(3));
  EXPECT_FALSE(p.isEndgame());
  EXPECT_TRUE(p.complete());
  EXPECT_TRUE(p.pick(all(n), 8, PickMode::kWholeFile, rng).empty());
}

TEST(PiecePicker, EndgameStreamingPrefersTheCursor) {
  constexpr std::size_t n = 6;
  PiecePicker p(n, PickerOptions{.windowSize = 2, .maxDuplicates = 3});
  ASSERT_TRUE(p.addPeerBitfield(all(n)));
  for (ChunkIndex i = 0; i < n; ++i) ASSERT_TRUE(p.markRequested(i));
  ASSERT_TRUE(p.markRequested(4));  // 4 already has 2 requests: least duplicated first
  p.setStreamCursor(3);
  std::mt19937 rng(1);
  EXPECT_TRUE(p.isEndgame());
  EXPECT_EQ(p.pick(all(n), 6, PickMode::kStreaming, rng),
            (std::vector<ChunkIndex>{3, 5, 0, 1, 2, 4}));
}

TEST(PiecePicker, RemovingABitfieldRestoresCounts) {
  constexpr std::size_t n = 8;
  PiecePicker p(n);
  const auto a = bits(n, {0, 1, 2, 3});
  const auto b = bits(n, {2, 3, 4, 5});
  ASSERT_TRUE(p.addPeerBitfield(a));
  ASSERT_TRUE(p.markRequested(1));
  ASSERT_TRUE(p.markHave(3));
  ASSERT_TRUE(p.addPeerBitfield(b));
  EXPECT_EQ(p.availability(2), 2u);
  EXPECT_EQ(p.availability(3), 2u);
  ASSERT_TRUE(p.removePeerBitfield(a));
  const std::vector<std::uint32_t> expected = {0, 0, 1, 1, 1, 1, 0, 0};
  for (ChunkIndex i = 0; i < n; ++i) EXPECT_EQ(p.availability(i), expected[i]) << i;
  std::mt19937 rng(2);
  // Chunk 0 is nobody's any more; b's chunks are what is left.
  EXPECT_EQ(sorted(p.pick(all(n), 8, PickMode::kWholeFile, rng)),
            (std::vector<ChunkIndex>{2, 4, 5}));
  ASSERT_TRUE(p.removePeerBitfield(b));
  for (ChunkIndex i = 0; i < n; ++i) EXPECT_EQ(p.availability(i), 0u) << i;
  // Not endgame (chunks 0, 2.. are unrequested), and nothing to pick: no connected peer has anything.
  EXPECT_FALSE(p.isEndgame());
  EXPECT_TRUE(p.pick(all(n), 8, PickMode::kWholeFile, rng).empty());
}

TEST(PiecePicker, RejectsBadInput) {
  PiecePicker p(4);
  EXPECT_EQ(p.addPeerBitfield(std::vector<bool>(5, true)).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(p.removePeerBitfield(std::vector<bool>(3, true)).error().code(),
            Errc::kInvalidArgument);
  EXPECT_FALSE(p.peerHas(4));
  EXPECT_FALSE(p.markHave(4));
  EXPECT_FALSE(p.markRequested(4));
  EXPECT_FALSE(p.unmarkRequested(4));
  ASSERT_TRUE(p.markHave(1));
  EXPECT_FALSE(p.markRequested(1));
  EXPECT_TRUE(p.markHave(1));  // idempotent
  EXPECT_EQ(p.haveCount(), 1u);
  // Removing more than was added clamps at zero.
  EXPECT_TRUE(p.removePeerBitfield(all(4)));
  EXPECT_EQ(p.availability(0), 0u);
  // A short peer bitfield in pick counts missing bits as absent.
  ASSERT_TRUE(p.addPeerBitfield(all(4)));
  std::mt19937 rng(1);
  EXPECT_EQ(p.pick(std::vector<bool>{true}, 4, PickMode::kWholeFile, rng),
            (std::vector<ChunkIndex>{0}));
}

// ---- property test against a reference model ------------------------------

struct Model {
  std::size_t n;
  PickerOptions opt;
  std::vector<bool> have = std::vector<bool>(n, false);
  std::vector<std::uint32_t> avail = std::vector<std::uint32_t>(n, 0);
  std::vector<std::uint32_t> req = std::vector<std::uint32_t>(n, 0);
  ChunkIndex cursor = 0;

  bool free(ChunkIndex i, const std::vector<bool>& peer) const {
    return !have[i] && req[i] == 0 && peer[i];
  }
  bool endgame() const {
    bool anyRequested = false;
    for (ChunkIndex i = 0; i < n; ++i) {
      if (have[i]) continue;
      if (req[i] > 0) anyRequested = true;
      if (req[i] == 0) return false;
    }
    return anyRequested;
  }
};

struct Peer {
  std::vector<bool> bits;
  std::vector<ChunkIndex> inFlight;
};

// Checks one pick against the model; returns a description of what is wrong.
std::string checkPick(const Model& m, const Peer& peer, std::size_t count, PickMode mode,
                      const std::vector<ChunkIndex>& got) {
  const std::size_t n = m.n;
  std::set<ChunkIndex> uniq(got.begin(), got.end());
  if (uniq.size() != got.size()) return "duplicate in pick";
  if (got.size() > count) return "too many";
  const ChunkIndex windowEnd =
      mode == PickMode::kStreaming
          ? static_cast<ChunkIndex>(std::min<std::size_t>(m.cursor + m.opt.windowSize, n))
          : m.cursor;
  // Expected window prefix.
  std::vector<ChunkIndex> window;
  for (ChunkIndex i = m.cursor; i < windowEnd; ++i) {
    if (m.free(i, peer.bits)) window.push_back(i);
  }
  std::size_t w = std::min(window.size(), count);
  if (!std::equal(window.begin(), window.begin() + static_cast<std::ptrdiff_t>(w), got.begin()) ||
      got.size() < w) {
    return "window prefix wrong";
  }
  // Rarest-first part.
  std::vector<ChunkIndex> rare;
  for (ChunkIndex i = 0; i < n; ++i) {
    if (m.free(i, peer.bits) && m.avail[i] > 0 && !(i >= m.cursor && i < windowEnd)) {
      rare.push_back(i);
    }
  }
  const std::size_t r = std::min(rare.size(), count - w);
  std::vector<ChunkIndex> gotRare(got.begin() + static_cast<std::ptrdiff_t>(w),
                                  got.begin() + static_cast<std::ptrdiff_t>(std::min(got.size(), w + r)));
  if (gotRare.size() != r) return "rarest part too short";
  std::uint32_t maxPicked = 0;
  for (ChunkIndex i : gotRare) {
    if (std::find(rare.begin(), rare.end(), i) == rare.end()) return "not a rarest candidate";
    maxPicked = std::max(maxPicked, m.avail[i]);
  }
  for (ChunkIndex i : rare) {
    if (m.avail[i] < maxPicked && std::find(gotRare.begin(), gotRare.end(), i) == gotRare.end()) {
      return "skipped a rarer chunk";
    }
  }
  // Endgame part.
  std::vector<ChunkIndex> dup(got.begin() + static_cast<std::ptrdiff_t>(w + r), got.end());
  if (!m.endgame() || w + r == count) {
    if (!dup.empty()) return "duplicates outside endgame";
    return {};
  }
  std::size_t dupCandidates = 0;
  for (ChunkIndex i = 0; i < n; ++i) {
    const bool sent =
        std::find(peer.inFlight.begin(), peer.inFlight.end(), i) != peer.inFlight.end();
    if (!m.have[i] && m.req[i] > 0 && m.req[i] < m.opt.maxDuplicates && m.avail[i] > 0 &&
        peer.bits[i] && !sent) {
      ++dupCandidates;
      continue;
    }
    if (std::find(dup.begin(), dup.end(), i) != dup.end()) return "bad endgame duplicate";
  }
  if (dup.size() != std::min(dupCandidates, count - w - r)) return "endgame part wrong size";
  return {};
}

TEST(PiecePicker, PropertyAgainstReferenceModel) {
  std::size_t picked = 0;
  std::size_t raced = 0;  // endgame duplicates: the branch must be exercised
  for (std::uint32_t seed = 1; seed <= 300; ++seed) {
    std::mt19937 gen(seed);
    const std::size_t n = 1 + gen() % 16;
    const PickerOptions opt{.windowSize = gen() % 6,
                            .maxDuplicates = static_cast<std::uint16_t>(1 + gen() % 3)};
    PiecePicker p(static_cast<ChunkIndex>(n), opt);
    Model m{n, opt};
    std::vector<Peer> peers;
    const auto idx = [&] { return static_cast<ChunkIndex>(gen() % n); };

    for (int step = 0; step < 400; ++step) {
      switch (gen() % 9) {
        case 0: {  // a peer connects
          Peer peer{std::vector<bool>(n), {}};
          for (std::size_t i = 0; i < n; ++i) peer.bits[i] = gen() % 2 == 0;
          ASSERT_TRUE(p.addPeerBitfield(peer.bits));
          for (std::size_t i = 0; i < n; ++i) m.avail[i] += peer.bits[i] ? 1u : 0u;
          peers.push_back(std::move(peer));
          break;
        }
        case 1: {  // a peer leaves: its requests fail
          if (peers.empty()) break;
          const std::size_t k = gen() % peers.size();
          ASSERT_TRUE(p.removePeerBitfield(peers[k].bits));
          for (std::size_t i = 0; i < n; ++i) m.avail[i] -= peers[k].bits[i] ? 1u : 0u;
          for (ChunkIndex i : peers[k].inFlight) {
            ASSERT_TRUE(p.unmarkRequested(i));
            if (!m.have[i] && m.req[i] > 0) --m.req[i];
          }
          peers.erase(peers.begin() + static_cast<std::ptrdiff_t>(k));
          break;
        }
        case 2: {  // HAVE from a peer
          if (peers.empty()) break;
          Peer& peer = peers[gen() % peers.size()];
          const ChunkIndex i = idx();
          if (peer.bits[i]) break;
          peer.bits[i] = true;
          ASSERT_TRUE(p.peerHas(i));
          ++m.avail[i];
          break;
        }
        case 3: {  // a request completes (the others for that chunk are cancelled)
          Peer* owner = nullptr;
          for (auto& peer : peers) {
            if (!peer.inFlight.empty()) owner = &peer;
          }
          if (owner == nullptr) break;
          const ChunkIndex i = owner->inFlight[gen() % owner->inFlight.size()];
          ASSERT_TRUE(p.markHave(i));
          m.have[i] = true;
          m.req[i] = 0;
          for (auto& peer : peers) {
            auto it = std::find(peer.inFlight.begin(), peer.inFlight.end(), i);
            if (it != peer.inFlight.end()) {
              peer.inFlight.erase(it);
              ASSERT_TRUE(p.unmarkRequested(i));  // no-op after markHave
            }
          }
          break;
        }
        case 4: {  // a request is rejected
          if (peers.empty()) break;
          Peer& peer = peers[gen() % peers.size()];
          if (peer.inFlight.empty()) break;
          const std::size_t k = gen() % peer.inFlight.size();
          const ChunkIndex i = peer.inFlight[k];
          peer.inFlight.erase(peer.inFlight.begin() + static_cast<std::ptrdiff_t>(k));
          ASSERT_TRUE(p.unmarkRequested(i));
          if (!m.have[i] && m.req[i] > 0) --m.req[i];
          break;
        }
        case 5: {  // seek
          const ChunkIndex c = static_cast<ChunkIndex>(gen() % (n + 2));
          p.setStreamCursor(c);
          m.cursor = std::min(c, static_cast<ChunkIndex>(n));
          break;
        }
        case 6: {  // a chunk stored from elsewhere (HTTP fallback)
          if (gen() % 4 != 0) break;
          const ChunkIndex i = idx();
          ASSERT_TRUE(p.markHave(i));
          m.have[i] = true;
          m.req[i] = 0;
          break;
        }
        default: {  // pick for a peer and request what it returned
          if (peers.empty()) break;
          Peer& peer = peers[gen() % peers.size()];
          const std::size_t count = gen() % 5;
          const PickMode mode = gen() % 2 == 0 ? PickMode::kWholeFile : PickMode::kStreaming;
          ASSERT_EQ(p.isEndgame(), m.endgame()) << "seed " << seed << " step " << step;
          const auto got = p.pick(peer.bits, count, mode, gen, peer.inFlight);
          const std::string problem = checkPick(m, peer, count, mode, got);
          ASSERT_TRUE(problem.empty()) << problem << " (seed " << seed << " step " << step << ")";
          for (ChunkIndex i : got) {
            ++picked;
            if (m.req[i] > 0) ++raced;
            ASSERT_TRUE(p.markRequested(i));
            ++m.req[i];
            peer.inFlight.push_back(i);
          }
          break;
        }
      }
      for (ChunkIndex i = 0; i < n; ++i) {
        ASSERT_EQ(p.availability(i), m.avail[i]) << "seed " << seed << " chunk " << i;
        ASSERT_EQ(p.requestCount(i), m.req[i]) << "seed " << seed << " chunk " << i;
        ASSERT_EQ(p.have(i), m.have[i]);
      }
    }
  }
  EXPECT_GT(picked, 1000u);
  EXPECT_GT(raced, 100u);
}

TEST(PiecePicker, LargeFileManyPeers) {
  // 1 Mi chunks, a seeder plus 20 partial peers (each with 1/8 of the chunks):
  // about 7% of the chunks are on the seeder only, and picks come from them.
  constexpr std::size_t n = std::size_t{1} << 20;
  PiecePicker p(static_cast<ChunkIndex>(n));
  ASSERT_TRUE(p.addPeerBitfield(all(n)));
  std::mt19937 gen(42);
  for (int k = 0; k < 20; ++k) {
    std::vector<bool> b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = (gen() & 7) == 0;
    ASSERT_TRUE(p.addPeerBitfield(b));
  }
  std::size_t requested = 0;
  for (int round = 0; round < 2000; ++round) {
    const auto got = p.pick(all(n), 16, PickMode::kWholeFile, gen);
    ASSERT_EQ(got.size(), 16u);
    for (ChunkIndex i : got) {
      ASSERT_EQ(p.availability(i), 1u);  // only the seeder: the rarest
      ASSERT_TRUE(p.markRequested(i));
      ++requested;
    }
  }
  EXPECT_EQ(requested, 32000u);
  EXPECT_FALSE(p.isEndgame());
}

}  // namespace
}  // namespace p2pcdn::swarm
