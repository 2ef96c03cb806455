// Swarm simulations (label "sim"): >= 100 peers running the production
// swarm::Session and tracker::SwarmRegistry in virtual time. Each test is
// deterministic for its seed; the thresholds are the figures measured when
// the test was written plus a margin, so a regression in the engine's policy
// (picking, pipelining, super-seeding, choking) shows up as a failure.
#include "sim/sim.hpp"

#include <gtest/gtest.h>

namespace p2pcdn::sim {
namespace {

SimConfig hundred() {
  SimConfig c;
  c.leechers = 100;
  c.chunkCount = 512;  // 8 MiB in 16 KiB chunks: enough chunks that the tail is not the whole story
  return c;
}

TEST(Sim, HundredPeersNearTheFluidBound) {
  SimConfig c = hundred();
  auto r = runSimulation(c);
  std::printf("%s\n", summarize(c, r).c_str());
  ASSERT_TRUE(r.allCompleted);
  EXPECT_LE(r.ratio, 1.3);         // measured 1.158 (1000 peers: bench/RESULTS.md)
  EXPECT_LE(r.seederCopies, 1.3);  // super-seeding: measured 1.119
  EXPECT_EQ(r.badChunks, 0u);
  // Everyone uploaded: the leechers delivered most of the bytes.
  double leecherUp = 0;
  for (const auto& p : r.peers) leecherUp += p.seeder ? 0.0 : static_cast<double>(p.uploaded);
  EXPECT_GT(leecherUp, 0.9 * static_cast<double>(c.leechers) * r.fileBytes);
}

// Slow uplinks and full-size chunks: a 256 KiB chunk takes 1 s at a peer's
// whole 256 KB/s uplink, so every taker's pipeline queues at each uploader.
// Before admission control, queue-aware deadlines and no starving of held
// repeats: 2.73x the bound and 1067 time-outs; with admission only 1.90x, 291.
TEST(Sim, SlowUplinksWithFullSizeChunks) {
  SimConfig c = hundred();
  c.chunkCount = 128;
  c.chunkSize = 262144;
  auto r = runSimulation(c);
  std::printf("%s\n", summarize(c, r).c_str());
  ASSERT_TRUE(r.allCompleted);
  // Measured 1.399 (1.626 before PIECE sizes followed the link rate,
  // pipelines kept one request of slack, not two, and the window towards an
  // uploader shrank to one piece).
  EXPECT_LE(r.ratio, 1.55);
  EXPECT_LE(r.seederCopies, 1.5);   // measured 1.327
  std::uint64_t timeouts = 0;
  for (const auto& p : r.peers) timeouts += p.stats.timeouts;
  EXPECT_LE(timeouts, 50u);         // measured 0 (162 before, as above)
}

TEST(Sim, SameSeedSameResult) {
  SimConfig c = hundred();
  c.leechers = 40;
  auto a = runSimulation(c);
  auto b = runSimulation(c);
  ASSERT_EQ(a.peers.size(), b.peers.size());
  EXPECT_EQ(a.lastCompletion, b.lastCompletion);
  EXPECT_EQ(a.events, b.events);
  for (std::size_t i = 0; i < a.peers.size(); ++i) {
    EXPECT_EQ(a.peers[i].uploaded, b.peers[i].uploaded) << i;
    EXPECT_EQ(a.peers[i].completed, b.peers[i].completed) << i;
  }
  c.seed = 2;
  auto d = runSimulation(c);
  EXPECT_NE(a.events, d.events);  // the seed matters
}

TEST(Sim, HeterogeneousLossyPeersAllFinish) {
  SimConfig c = hundred();
  c.classes = {{1.0, 64e3, 512e3}, {1.0, 256e3, 1024e3}, {1.0, 1024e3, 4096e3}};
  c.loss = 0.01;
  c.latencyMax = 0.150;
  auto r = runSimulation(c);
  std::printf("%s\n", summarize(c, r).c_str());
  ASSERT_TRUE(r.allCompleted);
  // Measured 1.487 with PIECE sizes following the link rate (1.98 with the
  // send window alone, 2.45 without it: on the 64 KB/s uplinks a REQUEST
  // waited behind the PIECEs queued on its link; bench/RESULTS.md).
  EXPECT_LE(r.ratio, 1.75);
  // Fast peers finish first (they get more: pipelines sized by rate), or
  // within 1 % of the slow ones: the seeder's uplink bounds everyone here, and
  // the two means were 0.1-0.65 s apart in ~50 s for seeds 1-3 (seed 1: 47.49
  // vs 47.69 s). Once admission stopped refusing a fresh uplink's second
  // request, everyone finished ~2.4 s sooner and seed 1 tied (45.19 vs 45.13).
  double fastSum = 0, slowSum = 0;
  int fast = 0, slow = 0;
  for (const auto& p : r.peers) {
    if (p.seeder || !p.completed) continue;
    if (p.up >= 1024e3) fastSum += *p.completed, ++fast;
    if (p.up <= 64e3) slowSum += *p.completed, ++slow;
  }
  ASSERT_GT(fast, 0);
  ASSERT_GT(slow, 0);
  std::printf("mean completion: fast %.2f s, slow %.2f s\n", fastSum / fast, slowSum / slow);
  EXPECT_LT(fastSum / fast, 1.01 * slowSum / slow);
}

TEST(Sim, CorruptingPeersAreBannedAndNothingBadIsStored) {
  SimConfig c = hundred();
  c.corruptPeers = 5;  // they hold the whole file and serve every chunk corrupted
  auto r = runSimulation(c);
  std::printf("%s\n", summarize(c, r).c_str());
  ASSERT_TRUE(r.allCompleted);  // every honest peer completed with verified chunks only
  EXPECT_GT(r.badChunks, 0u);
  EXPECT_GT(r.bans, 0u);
  // A ban takes banAfterBadChunks (2) bad chunks: each honest peer loses at most
  // that many per corrupt neighbour.
  for (const auto& p : r.peers) {
    if (p.corrupt || p.seeder) continue;
    EXPECT_LE(p.stats.badChunks, 2u * c.corruptPeers);
  }
}

TEST(Sim, SeederLeavesOnceEveryChunkIsOut) {
  SimConfig c = hundred();
  c.leechers = 100;
  // The seeder pushes a copy in F/u_s = 32.8 s (plus a few repeats) and
  // leaves the moment the last chunk is whole at some leecher: the others
  // must finish from each other.
  c.seederLeavesWhenOut = true;
  auto r = runSimulation(c);
  std::printf("%s\n", summarize(c, r).c_str());
  ASSERT_TRUE(r.seederLeft);
  std::printf("seeder left at %.2f s\n", *r.seederLeft);
  ASSERT_TRUE(r.allCompleted);
  EXPECT_LE(r.seederCopies, 1.3);
  std::size_t finishedWithoutSeeder = 0;
  for (const auto& p : r.peers) finishedWithoutSeeder += (p.completed && *p.completed > *r.seederLeft) ? 1u : 0u;
  EXPECT_EQ(finishedWithoutSeeder, c.leechers);  // it really left first: everyone finished without it
}

TEST(Sim, UploadRateLimitIsHonoured) {
  SimConfig c = hundred();
  c.leechers = 30;
  c.seederSession = c.session;
  const double limit = 64e3;  // a quarter of the seeder's link
  c.seederSession->globalUp = std::make_shared<swarm::TokenBucket>(limit, 65536.0);
  c.seederLeavesAt = 20.0;
  auto r = runSimulation(c);
  std::printf("%s\n", summarize(c, r).c_str());
  // In 20 s the seeder may upload at most limit x 20 s + one burst + one piece.
  EXPECT_LE(static_cast<double>(r.peers[0].uploaded), limit * 20.0 + 65536.0 + 16384.0);
  EXPECT_GE(static_cast<double>(r.peers[0].uploaded), 0.8 * limit * 20.0);  // and used it
}

// One seeder, one leecher on fast links (72 MB/s), store reads and writes
// completing in the instant they are asked (storeDelay 0: a coarse clock, as
// the browser's, gives that too) against the same run with a 1 ms store. The
// instant store stalled: the seeder's admission control judged its uplink by
// the first pieces of the first upload (4 KB/s) and refused the leecher's
// second request with a 15-64 s retry hint, every time (64 KiB chunks: 9 of
// 256 in 120 s, when this test stops it). Both now take
// 5.5-8.5 s, which is a limit of its own (reveals and the request pipeline
// cover ~5 chunks per ~110 ms round trip, whatever the chunk size), so the
// ratio caps are loose.
TEST(Sim, OneToOneWithAnInstantStore) {
  struct Case {
    std::uint32_t chunkSize;
    double maxRatio;  // measured: 94.3, 32.3, 7.5
  };
  for (const Case& k : {Case{16384, 130}, Case{65536, 45}, Case{262144, 10}}) {
    SimConfig c;
    c.leechers = 1;
    c.chunkCount = 256;
    c.chunkSize = k.chunkSize;
    c.seederUp = c.seederDown = 72e6;
    c.classes = {{1.0, 72e6, 72e6}};
    c.joinSpread = 0;
    c.timeLimit = 120;
    c.storeDelay = std::chrono::milliseconds(1);
    auto slow = runSimulation(c);
    std::printf("store 1 ms: %s\n", summarize(c, slow).c_str());
    c.storeDelay = {};
    auto r = runSimulation(c);
    std::printf("store 0:    %s\n", summarize(c, r).c_str());
    ASSERT_TRUE(slow.allCompleted) << k.chunkSize;
    ASSERT_TRUE(r.allCompleted) << k.chunkSize;
    EXPECT_LE(r.ratio, k.maxRatio) << k.chunkSize;
    EXPECT_LE(r.lastCompletion, 1.5 * slow.lastCompletion) << k.chunkSize << ": a faster store must not be slower";
    EXPECT_LE(r.seederCopies, 1.05) << k.chunkSize;
  }
}

}  // namespace
}  // namespace p2pcdn::sim
