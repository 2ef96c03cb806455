// Whole Nodes on a virtual clock (virtual_world.hpp): the node's own code
// (tracker client, discovery, links, store queue, events) over in-memory
// links and the tracker's SwarmRegistry, with no thread, socket or wall
// clock. A run is a function of its seed.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "mem_link.hpp"
#include "core/hex.hpp"
#include "node/node.hpp"
#include "store_support.hpp"
#include "storage/forwarding.hpp"
#include "virtual_world.hpp"

namespace p2pcdn::test {
namespace {

using namespace std::chrono_literals;

// A store whose every completion comes on a later event of the world, 0-20
// ms after the call, never inside it (as IndexedDB's do). A node that waited
// for one inline (BlockingStorage) would never wake. A manifest write takes
// effect only 50 ms after the call, so a chunk write sent meanwhile fails.
class DeferredStore : public storage::ForwardingStorage {
 public:
  DeferredStore(ChunkStorage& inner, VirtualWorld& w, std::uint64_t seed) : ForwardingStorage(inner), world_(w), rng_(seed) {}
  void storeManifest(const Manifest& m, bool pinned, Callback<FileId> done) override {
    world_.after(std::chrono::milliseconds(50), [this, alive = alive_, m, pinned, done = later(std::move(done))]() mutable {
      if (*alive) ForwardingStorage::storeManifest(m, pinned, std::move(done));
    });
  }
  void getManifest(const FileId& id, Callback<Manifest> done) override {
    ForwardingStorage::getManifest(id, later(std::move(done)));
  }
  void storeChunk(const FileId& id, ChunkIndex i, ByteView d, Callback<void> done) override {
    ForwardingStorage::storeChunk(id, i, d, later(std::move(done)));
  }
  void getChunk(const FileId& id, ChunkIndex i, ReadOptions o, Callback<Bytes> done) override {
    ForwardingStorage::getChunk(id, i, o, later(std::move(done)));
  }
  void setPinned(const FileId& id, bool p, Callback<void> done) override {
    ForwardingStorage::setPinned(id, p, later(std::move(done)));
  }
  void presentChunks(const FileId& id, Callback<std::vector<bool>> done) override {
    ForwardingStorage::presentChunks(id, later(std::move(done)));
  }

 private:
  template <class T>
  Callback<T> later(Callback<T> done) {
    const VTime d = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 20'000)(rng_));
    return [this, alive = alive_, d, done = std::move(done)](Result<T> r) {
      if (!*alive) return;
      world_.after(d, [done, r = std::move(r)]() mutable { done(std::move(r)); });
    };
  }
  VirtualWorld& world_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

 public:
  ~DeferredStore() override { *alive_ = false; }

 private:
  std::mt19937_64 rng_;
};

struct VPeer {
  VPeer(VirtualWorld& w, VirtualTracker& t, std::uint64_t seed, StoreLatency latency, bool deferredStore)
      : rt(w, t, seed, std::move(latency)) {
    if (deferredStore) deferred = std::make_unique<DeferredStore>(store, w, seed);
  }
  FaultyStore store;  // what the peer holds (the test reads it directly)
  std::unique_ptr<DeferredStore> deferred;
  ChunkStorage& nodeStore() { return deferred ? static_cast<ChunkStorage&>(*deferred) : store; }
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

  VPeer& peer(StoreLatency store = {}, bool deferredStore = false, char client = 'C') {
    const std::uint64_t s = seed_ * 1000 + peers_.size();
    peers_.push_back(std::make_unique<VPeer>(world_, tracker_, s, std::move(store), deferredStore));
    VPeer& p = *peers_.back();
    node::NodeOptions o;
    o.trackerUrl = "ws://virtual/";
    o.client = client;
    const std::size_t index = peers_.size() - 1;
    o.trace = [this, index](const std::string& line) { log(index, line); };
    p.node = std::make_unique<node::Node>(p.rt, p.nodeStore(), links_, std::move(o));
    EXPECT_TRUE(p.node->start());
    return p;
  }

  void log(std::size_t peer, const std::string& what) {
    log_.push_back(std::to_string(world_.now().count()) + " p" + std::to_string(peer) + " " + what);
  }
  node::FetchEvents logged(std::size_t i) {
    node::FetchEvents ev;
    ev.onChunk = [this, i](ChunkIndex c) { log(i, "chunk " + std::to_string(c)); };
    ev.onComplete = [this, i] { log(i, "complete"); };
    ev.onError = [this, i](const Error& e) { log(i, "error " + e.message()); };
    return ev;
  }
  // Every peer from `from` on fetches `id`; its events go to the log.
  void fetchAll(const FileId& id, std::size_t from) {
    for (std::size_t i = from; i < peers_.size(); ++i) {
      peers_[i]->node->fetch(id, std::nullopt, logged(i), [](Result<node::ListenerId> r) { EXPECT_TRUE(r); });
    }
  }
  bool allComplete(const FileId& id) const {
    for (const auto& p : peers_) {
      auto pr = p->node->progress(id);
      if (!pr || !pr->haveManifest || pr->chunksHave != pr->chunksTotal) return false;
    }
    return true;
  }

  // Peer 0: holds a file of `chunks` chunks (publishFile with `fileSeed`) and seeds it.
  Manifest seeder(std::uint32_t chunks, std::uint32_t fileSeed, StoreLatency store = {}) {
    auto& p = peer(std::move(store));
    const Manifest m = publishFile(p.store, chunks, fileSeed);
    // Seeding (read on the store queue, then announced) before any leecher asks.
    auto seeded = std::make_shared<bool>(false);
    p.node->seed(*manifestId(m), [seeded](Status st) {
      EXPECT_TRUE(st);
      *seeded = true;
    });
    EXPECT_TRUE(world_.runUntil([&] { return *seeded; }, 10s));
    return m;
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
  const Manifest m = s.seeder(64, 3, store);
  const FileId id = *manifestId(m);
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

TEST(VirtualNodes, TheNodeNeverWaitsForAStoreInline) {
  // Every store (seeder's and leechers') completes on a later event; the
  // asynchronous seed / fetch read it on the store queue. One leecher is
  // given the manifest (written through the same store), the others get it
  // from peers (written by the session's host). Store tasks take 0-30 ms
  // each, so they run out of order: no chunk write may overtake the
  // manifest's.
  StoreLatency jitter = [](std::mt19937_64& rng) {
    return VTime(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 30'000)(rng)));
  };
  VSwarm s(11);
  auto& seeder = s.peer(jitter, true);
  const Manifest m = publishFile(seeder.store, 48, 6);
  const FileId id = *manifestId(m);
  std::optional<Status> seeded;
  seeder.node->seed(id, [&](Status st) { seeded = st; });
  EXPECT_FALSE(seeded) << "done ran inside seed()";
  for (int i = 0; i < 3; ++i) s.peer(jitter, true);
  std::vector<std::optional<Result<node::ListenerId>>> fetched(4);
  for (std::size_t i = 1; i < 4; ++i) {
    s.peers()[i]->node->fetch(id, i == 1 ? std::optional<Manifest>(m) : std::nullopt, s.logged(i),
                              [&fetched, i](Result<node::ListenerId> r) { fetched[i] = std::move(r); });
    EXPECT_FALSE(fetched[i]) << "done ran inside fetch()";
  }
  ASSERT_TRUE(s.world().runUntil([&] { return s.allComplete(id); }, 60s));
  for (const auto& line : s.trace()) EXPECT_EQ(line.find(" error "), std::string::npos) << line;
  ASSERT_TRUE(seeded && *seeded) << (seeded ? seeded->error().message() : "seed never answered");
  for (std::size_t i = 1; i < 4; ++i) ASSERT_TRUE(fetched[i] && *fetched[i]) << "leecher " << i;
  expectSameChunks(s, m);
  // A file the store does not hold: seed says so, later.
  std::optional<Status> missing;
  seeder.node->seed(FileId{}, [&](Status st) { missing = st; });
  s.world().runFor(1s);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->error().code(), Errc::kNotFound);
  // A manifest that is not the file's: refused before the store is touched.
  std::optional<Result<node::ListenerId>> wrong;
  s.peers()[1]->node->fetch(FileId{}, m, {}, [&](Result<node::ListenerId> r) { wrong = std::move(r); });
  s.world().runFor(1s);
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->error().code(), Errc::kIntegrity);
}

TEST(VirtualNodes, AFailedManifestWriteIsRetriedAndHoldsTheChunkWrites) {
  // The leecher's store refuses the manifest it got from the seeder for 3 s:
  // each failure is reported, the write is tried again, and no chunk write
  // reaches the store before the manifest's (the store would refuse it).
  VSwarm s(13);
  const Manifest m = s.seeder(32, 7);
  const FileId id = *manifestId(m);
  auto& leecher = s.peer();
  leecher.store.failManifests = true;
  s.fetchAll(id, 1);
  s.world().runFor(3s);
  leecher.store.failManifests = false;
  ASSERT_TRUE(s.world().runUntil([&] { return s.allComplete(id); }, 60s));
  std::size_t manifestErrors = 0, otherErrors = 0;
  for (const auto& line : s.trace()) {
    if (line.find(" error ") == std::string::npos) continue;
    ++(line.find("store manifest") != std::string::npos ? manifestErrors : otherErrors);
  }
  EXPECT_GE(manifestErrors, 2u);  // at 0, 1 and 3 s (back-off 1 s, doubling)
  EXPECT_LE(manifestErrors, 3u);
  EXPECT_EQ(otherErrors, 0u) << "a chunk write reached the store before its manifest";
  expectSameChunks(s, m);
}

TEST(VirtualNodes, PeersFindEachOtherAgainAfterTheTrackerRestarts) {
  VSwarm s(5);
  const Manifest m = s.seeder(32, 4);
  const FileId id = *manifestId(m);
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

namespace p2pcdn::test {
namespace {

// forget() while a seed's or fetch's store read is out cancels it: the file
// is not made again behind the caller's back (it was re-fetched, and a given
// manifest re-stored, after the api removed it).
TEST(VirtualNodes, ForgetCancelsASeedOrFetchWhoseStoreReadIsOut) {
  VSwarm s(11);
  auto& p = s.peer();
  const Manifest m = publishFile(p.store, 4, 5);
  const FileId id = *manifestId(m);
  std::optional<Result<node::ListenerId>> fetched;
  std::optional<Status> seeded;
  p.node->fetch(id, m, {}, [&](Result<node::ListenerId> r) { fetched.emplace(std::move(r)); });
  p.node->seed(id, [&](Status st) { seeded.emplace(std::move(st)); });
  p.node->forget(id);
  s.world().runFor(1s);
  ASSERT_TRUE(fetched && seeded);
  ASSERT_FALSE(*fetched);
  EXPECT_EQ(fetched->error().code(), Errc::kCancelled);
  ASSERT_FALSE(*seeded);
  EXPECT_EQ(seeded->error().code(), Errc::kCancelled);
  EXPECT_FALSE(p.node->progress(id)) << "the forgotten file was made again";
  // A fetch started after the forget is not cancelled.
  std::optional<Result<node::ListenerId>> again;
  p.node->fetch(id, m, {}, [&](Result<node::ListenerId> r) { again.emplace(std::move(r)); });
  s.world().runFor(1s);
  ASSERT_TRUE(again);
  EXPECT_TRUE(*again);
  EXPECT_TRUE(p.node->progress(id));
}

// The peer id says what kind of peer it is (the web app's peers table shows it).
// removeStored deletes on the node's store queue, in order with its loads: a
// seed of the id asked for right after it finds nothing (a delete run on
// another thread, as the api's remove() first did, could come after the
// seed's load and leave the node serving a file the store no longer has).
TEST(VirtualNodes, RemoveStoredDeletesInOrderWithTheNodesOwnLoads) {
  VSwarm s(12);
  auto& p = s.peer();
  const Manifest m = publishFile(p.store, 4, 6);
  const FileId id = *manifestId(m);
  std::optional<Status> first, removed, again;
  p.node->seed(id, [&](Status st) { first.emplace(std::move(st)); });
  s.world().runFor(1s);
  ASSERT_TRUE(first && *first);
  ASSERT_TRUE(p.node->progress(id));
  p.node->removeStored(id, [&](Status st) { removed.emplace(std::move(st)); });
  p.node->seed(id, [&](Status st) { again.emplace(std::move(st)); });  // asked after the delete
  s.world().runFor(1s);
  ASSERT_TRUE(removed && again);
  EXPECT_TRUE(*removed) << removed->error().message();
  EXPECT_FALSE(*again) << "seeded a file the store was told to delete first";
  const auto left = p.node->progress(id);  // (a failed seed leaves an empty entry)
  EXPECT_TRUE(!left || !left->haveManifest);
  EXPECT_FALSE(BlockingStorage(p.store).getManifest(id));
}

TEST(VirtualNodes, PeerIdsSayWhatKindOfPeerTheyAre) {
  EXPECT_EQ(node::clientOf(toHex(asBytes(std::string_view("-PC0002-abcdefghijkl")))), "native");
  EXPECT_EQ(node::clientOf(toHex(asBytes(std::string_view("-PB0002-abcdefghijkl")))), "browser");
  EXPECT_EQ(node::clientOf(toHex(asBytes(std::string_view("-WW0204-abcdefghijkl")))), "webtorrent");
  EXPECT_EQ(node::clientOf(toHex(asBytes(std::string_view("-PB0001-abcdefghijkl")))), "other");
  EXPECT_EQ(node::clientOf(""), "other");
  VSwarm s(3);
  const Manifest m = s.seeder(8, 9);  // native
  const FileId id = *manifestId(m);
  s.peer({}, false, 'B');             // a browser's
  s.fetchAll(id, 1);
  ASSERT_TRUE(s.world().runUntil([&] { return s.allComplete(id); }, 60s));
  EXPECT_EQ(node::clientOf(s.peers()[0]->node->peerIdHex()), "native");
  EXPECT_EQ(node::clientOf(s.peers()[1]->node->peerIdHex()), "browser");
  const auto seen = [&](std::size_t i) {
    const auto peers = s.peers()[i]->node->peerStats();
    return peers.empty() ? std::string("none") : peers.front().client;
  };
  EXPECT_EQ(seen(0), "browser");  // the seeder sees the browser peer as one
  EXPECT_EQ(seen(1), "native");
}

}  // namespace
}  // namespace p2pcdn::test
