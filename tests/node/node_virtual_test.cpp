// Whole Nodes on a virtual clock (virtual_world.hpp): the node's own code
// (tracker client, discovery, links, store queue, events) over in-memory
// links and the tracker's SwarmRegistry, with no thread, socket or wall
// clock. A run is a function of its seed.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "harness.hpp"
#include "virtual_world.hpp"

namespace p2pcdn::test {
namespace {

using namespace std::chrono_literals;

struct VPeer {
  VPeer(VirtualWorld& w, VirtualTracker& t, std::uint64_t seed, StoreLatency latency) : rt(w, t, seed, std::move(latency)) {}
  FaultyStore store;
  VirtualRuntime rt;
  std::unique_ptr<node::Node> node;
};

// One world: a tracker, links with `linkLatency` one way, and peers.
class VSwarm {
 public:
  explicit VSwarm(std::uint64_t seed, VTime linkLatency = 2ms) : seed_(seed), tracker_(world_, seed) {
    links_.setLatency([this](VTime d, std::function<void()> fn) { world_.after(d, std::move(fn)); }, linkLatency);
  }
  ~VSwarm() {
    for (auto& p : peers_) p->node.reset();
  }

  VPeer& peer(StoreLatency store = {}) {
    const std::uint64_t s = seed_ * 1000 + peers_.size();
    peers_.push_back(std::make_unique<VPeer>(world_, tracker_, s, std::move(store)));
    VPeer& p = *peers_.back();
    node::NodeOptions o;
    o.trackerUrl = "ws://virtual/";
    const std::size_t index = peers_.size() - 1;
    o.trace = [this, index](const std::string& line) { log(index, line); };
    p.node = std::make_unique<node::Node>(p.rt, p.store, links_, std::move(o));
    EXPECT_TRUE(p.node->start());
    return p;
  }

  void log(std::size_t peer, const std::string& what) {
    log_.push_back(std::to_string(world_.now().count()) + " p" + std::to_string(peer) + " " + what);
  }
  // Every leecher fetches `m`; its events go to the log.
  void fetchAll(const FileId& id, std::size_t from) {
    for (std::size_t i = from; i < peers_.size(); ++i) {
      node::FetchEvents ev;
      ev.onChunk = [this, i](ChunkIndex c) { log(i, "chunk " + std::to_string(c)); };
      ev.onComplete = [this, i] { log(i, "complete"); };
      ev.onError = [this, i](const Error& e) { log(i, "error " + e.message()); };
      ASSERT_TRUE(peers_[i]->node->fetch(id, std::nullopt, ev));
    }
  }
  bool allComplete(const FileId& id) const {
    for (const auto& p : peers_) {
      auto pr = p->node->progress(id);
      if (!pr || !pr->haveManifest || pr->chunksHave != pr->chunksTotal) return false;
    }
    return true;
  }

  VirtualWorld& world() { return world_; }
  VirtualTracker& tracker() { return tracker_; }
  std::vector<std::unique_ptr<VPeer>>& peers() { return peers_; }
  const std::vector<std::string>& trace() const { return log_; }

 private:
  std::uint64_t seed_;
  VirtualWorld world_;
  VirtualTracker tracker_;
  MemLinkFactory links_;
  std::vector<std::unique_ptr<VPeer>> peers_;
  std::vector<std::string> log_;
};

// Each leecher's store holds exactly the seeder's chunks.
void expectSameChunks(VSwarm& s, const Manifest& m) {
  const FileId id = *manifestId(m);
  BlockingStorage seeder(s.peers()[0]->store);
  for (std::size_t i = 1; i < s.peers().size(); ++i) {
    BlockingStorage st(s.peers()[i]->store);
    for (ChunkIndex c = 0; c < m.chunkCount(); ++c) {
      auto a = seeder.getChunk(id, c, {});
      auto b = st.getChunk(id, c, {});
      ASSERT_TRUE(a && b) << "peer " << i << " chunk " << c;
      EXPECT_EQ(*a, *b);
    }
  }
}

struct RunResult {
  std::vector<std::string> trace;
  VTime finished{};
  bool complete = false;
};

// 1 seeder and `leechers` leechers of a 64-chunk file.
RunResult runSwarm(std::uint64_t seed, std::size_t leechers, StoreLatency store = {}) {
  VSwarm s(seed);
  auto& seeder = s.peer(store);
  const Manifest m = publishFile(seeder.store, 64, 3);
  const FileId id = *manifestId(m);
  EXPECT_TRUE(seeder.node->seed(id));
  for (std::size_t i = 0; i < leechers; ++i) s.peer(store);
  s.fetchAll(id, 1);
  RunResult r;
  r.complete = s.world().runUntil([&] { return s.allComplete(id); }, 120s);
  r.finished = s.world().now();
  s.world().runFor(1s);  // the posted onComplete events, and a second of seeding
  if (r.complete) expectSameChunks(s, m);
  r.trace = s.trace();
  return r;
}

TEST(VirtualNodes, ASwarmOfWholeNodesCompletesInVirtualTime) {
  auto r = runSwarm(1, 4);
  ASSERT_TRUE(r.complete) << "stuck at virtual " << std::chrono::duration<double>(r.finished).count() << " s";
  // 64 x 16 KiB over 2 ms links: well under the announce interval.
  EXPECT_LT(r.finished, 30s);
  std::size_t completes = 0;
  for (const auto& line : r.trace) completes += line.find(" complete") != std::string::npos;
  EXPECT_EQ(completes, 4u);
}

TEST(VirtualNodes, TheSameSeedGivesTheSameRunEventForEvent) {
  auto a = runSwarm(7, 3);
  auto b = runSwarm(7, 3);
  ASSERT_TRUE(a.complete && b.complete);
  ASSERT_GT(a.trace.size(), 64u * 3);
  EXPECT_EQ(a.trace, b.trace);
  EXPECT_EQ(a.finished, b.finished);
  // And the seed is what decides it: another seed gives another run.
  auto c = runSwarm(8, 3);
  ASSERT_TRUE(c.complete);
  EXPECT_NE(a.trace, c.trace);
}

TEST(VirtualNodes, AStoreWhoseCompletionsComeLateAndOutOfOrderDoesNotStall) {
  // Every store task takes 0-100 ms (so they finish out of order), on every peer.
  StoreLatency jitter = [](std::mt19937_64& rng) {
    return VTime(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 100'000)(rng)));
  };
  auto fast = runSwarm(2, 3);
  auto slow = runSwarm(2, 3, jitter);
  ASSERT_TRUE(fast.complete);
  ASSERT_TRUE(slow.complete) << "stuck at virtual " << std::chrono::duration<double>(slow.finished).count() << " s";
  // 64 chunks through a store 50 ms late on average: a pipeline that waits
  // for each completion in turn would need 64 x 2 x 50 ms = 6.4 s.
  EXPECT_LT(slow.finished - fast.finished, 3s);
  std::printf("virtual seconds to complete: store on time %.3f, store 0-100 ms late %.3f\n",
              std::chrono::duration<double>(fast.finished).count(), std::chrono::duration<double>(slow.finished).count());
}

TEST(VirtualNodes, PeersFindEachOtherAgainAfterTheTrackerRestarts) {
  VSwarm s(5);
  auto& seeder = s.peer();
  const Manifest m = publishFile(seeder.store, 32, 4);
  const FileId id = *manifestId(m);
  ASSERT_TRUE(seeder.node->seed(id));
  s.world().runFor(1s);
  ASSERT_EQ(s.tracker().registry().counts().seeders, 1u);
  // The tracker forgets everyone; the seeder must announce again on reconnection.
  s.tracker().restart(2s);
  EXPECT_EQ(s.tracker().registry().counts().peers, 0u);
  s.world().runFor(3s);
  EXPECT_EQ(s.tracker().registry().counts().seeders, 1u);
  s.peer();
  s.fetchAll(id, 1);
  ASSERT_TRUE(s.world().runUntil([&] { return s.allComplete(id); }, 60s));
  expectSameChunks(s, m);
}

}  // namespace
}  // namespace p2pcdn::test
