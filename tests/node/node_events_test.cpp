// Node events: posted, to any number of listeners, in order; the node's own
// have() and closed-link ledger. Whole Nodes over in-memory links and our
// tracker on 127.0.0.1 (harness.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "harness.hpp"
#include "node/links.hpp"

namespace p2pcdn::test {
namespace {

// Set while the test itself is inside a Node call.
bool gInNodeCall = false;

struct Log {
  std::vector<std::string> seq;  // "m", "c<i>", "done", "error"
  int manifests = 0, chunks = 0, completes = 0, errors = 0;
  int insideLink = 0;      // events that ran inside a link callback
  int insideNodeCall = 0;  // events that ran while the test was inside a Node call
  int notHeld = 0;         // onChunk(i) while have(i) was false
  const node::Node* node = nullptr;
  FileId id;
};

node::FetchEvents record(Log& log) {
  auto note = [&log] {
    if (deliveryDepth() > 0) ++log.insideLink;
    if (gInNodeCall) ++log.insideNodeCall;
  };
  node::FetchEvents ev;
  ev.onManifest = [&log, note](const Manifest&) {
    note();
    ++log.manifests;
    log.seq.push_back("m");
  };
  ev.onChunk = [&log, note](ChunkIndex i) {
    note();
    ++log.chunks;
    if (log.node && !log.node->have(log.id, i)) ++log.notHeld;
    log.seq.push_back("c" + std::to_string(i));
  };
  ev.onComplete = [&log, note] {
    note();
    ++log.completes;
    log.seq.push_back("done");
  };
  ev.onError = [&log, note](const Error&) {
    note();
    ++log.errors;
    log.seq.push_back("error");
  };
  return ev;
}

// Manifest first, then each chunk once, then the end.
void expectWholeFetch(const Log& log, std::uint32_t chunks) {
  ASSERT_EQ(log.seq.size(), chunks + 2u);
  EXPECT_EQ(log.seq.front(), "m");
  EXPECT_EQ(log.seq.back(), "done");
  std::vector<std::string> mid(log.seq.begin() + 1, log.seq.end() - 1);
  std::sort(mid.begin(), mid.end());
  EXPECT_EQ(std::unique(mid.begin(), mid.end()), mid.end()) << "a chunk told twice";
  for (const auto& s : mid) EXPECT_EQ(s[0], 'c');
}

struct Fixture : ::testing::Test {
  TestSwarm swarm;
  TestPeer* seeder = nullptr;
  Manifest manifest;
  FileId id;
  static constexpr std::uint32_t kChunks = 8;

  void SetUp() override { ASSERT_TRUE(swarm.ok()); }
  // A seeder of a kChunks file, known to the tracker.
  void seed(std::optional<node::NodeOptions> o = std::nullopt) {
    seeder = &swarm.peer(std::move(o));
    manifest = swarm.publish(*seeder, kChunks);
    id = *manifestId(manifest);
    ASSERT_TRUE(seeder->node->start());
    ASSERT_TRUE(swarm.seedNow(*seeder->node, id));
    ASSERT_TRUE(swarm.seeders(1));
  }
  TestPeer& leecher() {
    auto& p = swarm.peer();
    EXPECT_TRUE(p.node->start());
    return p;
  }
};

using NodeEvents = Fixture;

TEST_F(NodeEvents, TwoCallersOfFetchBothHearEveryEventInOrder) {
  seed();
  auto& l = leecher();
  Log a, b;
  a.node = b.node = l.node.get();
  a.id = b.id = id;
  // The second fetch of the same file (started before the first's done) must
  // not take the first caller's events.
  std::optional<Result<node::ListenerId>> la, lb;
  l.node->fetch(id, std::nullopt, record(a), [&](Result<node::ListenerId> r) { la.emplace(std::move(r)); });
  l.node->fetch(id, manifest, record(b), [&](Result<node::ListenerId> r) { lb.emplace(std::move(r)); });
  ASSERT_TRUE(swarm.runUntil([&] { return la && lb; }));
  ASSERT_TRUE(*la);
  ASSERT_TRUE(*lb);
  EXPECT_NE(**la, **lb);
  ASSERT_TRUE(swarm.runUntil([&] { return a.completes > 0 && b.completes > 0; }));
  swarm.runFor(100ms);
  expectWholeFetch(a, kChunks);
  expectWholeFetch(b, kChunks);
  EXPECT_EQ(a.seq, b.seq) << "both hear the same events in the same order";
  EXPECT_EQ(a.notHeld + b.notHeld, 0) << "onChunk(i) before have(i)";
  EXPECT_EQ(a.insideLink + b.insideLink, 0);
}

TEST_F(NodeEvents, NoEventRunsInsideANodeCall) {
  // A file held complete: fetch() and listen() know the manifest and the end
  // at once, and must still only post them.
  auto& p = swarm.peer();
  Manifest m = swarm.publish(p, 4);
  const FileId fid = *manifestId(m);
  ASSERT_TRUE(p.node->start());
  Log first, late;
  // fetch's done is posted; the file's events come after it, never inside a call.
  std::optional<Result<node::ListenerId>> r;
  std::size_t seenAtDone = 99;
  gInNodeCall = true;
  p.node->fetch(fid, m, record(first), [&](Result<node::ListenerId> x) {
    seenAtDone = first.seq.size();
    r.emplace(std::move(x));
  });
  gInNodeCall = false;
  EXPECT_FALSE(r) << "done ran inside fetch()";
  ASSERT_TRUE(swarm.runUntil([&] { return r && first.completes > 0; }));
  ASSERT_TRUE(*r);
  EXPECT_EQ(seenAtDone, 0u) << "an event before fetch's done";
  bool again = false;
  int lateAtDone = 99;
  gInNodeCall = true;
  auto r2 = p.node->listen(fid, record(late));  // joins a complete file: manifest, then the end
  p.node->fetch(fid, m, {}, [&](Result<node::ListenerId> x) {  // the engine fires onComplete again: heard once
    EXPECT_TRUE(x);
    lateAtDone = late.completes;
    again = true;
  });
  gInNodeCall = false;
  ASSERT_TRUE(r2);
  EXPECT_EQ(late.seq.size(), 0u) << "listen() delivered inline";
  ASSERT_TRUE(swarm.runUntil([&] { return again && late.completes > 0; }));
  swarm.runFor(50ms);
  EXPECT_LE(lateAtDone, 1);
  EXPECT_EQ(first.insideNodeCall + late.insideNodeCall, 0);
  EXPECT_EQ(first.seq, (std::vector<std::string>{"m", "done"}));
  EXPECT_EQ(late.seq, (std::vector<std::string>{"m", "done"}));
}

TEST_F(NodeEvents, AManifestFromAPeerIsNotToldInsideTheLinkCallback) {
  seed();
  auto& l = leecher();
  Log log;
  ASSERT_TRUE(swarm.fetchNow(*l.node, id, std::nullopt, record(log)));  // the manifest comes over a link
  ASSERT_TRUE(swarm.runUntil([&] { return log.completes > 0; }));
  EXPECT_EQ(log.manifests, 1);
  EXPECT_EQ(log.insideLink, 0);
}

TEST_F(NodeEvents, StopFromOnErrorDoesNotReEnterTheNode) {
  seed();
  auto& l = leecher();
  l.store.failManifests = true;  // the manifest a peer gives cannot be stored: onError
  Log log;
  bool stopped = false;
  int errorsInsideLink = 0;
  node::FetchEvents ev = record(log);
  ev.onError = [&](const Error&) {
    if (deliveryDepth() > 0) ++errorsInsideLink;
    ++log.errors;
    if (log.errors == 1) l.node->stop([&] { stopped = true; });  // what `p2pcdn get` does
  };
  ASSERT_TRUE(swarm.fetchNow(*l.node, id, std::nullopt, ev));
  ASSERT_TRUE(swarm.runUntil([&] { return stopped; }));
  EXPECT_GE(log.errors, 1);
  EXPECT_EQ(errorsInsideLink, 0);
}

TEST_F(NodeEvents, ForgetFromOnChunkSilencesEveryListenerOfTheFile) {
  seed();
  auto& l = leecher();
  Log a, b;
  node::FetchEvents ev = record(a);
  ev.onChunk = [&](ChunkIndex) {
    ++a.chunks;
    l.node->forget(id);  // inside the engine's store completion, were it not posted
  };
  ASSERT_TRUE(swarm.fetchNow(*l.node, id, manifest, ev));
  ASSERT_TRUE(l.node->listen(id, record(b)));
  ASSERT_TRUE(swarm.runUntil([&] { return a.chunks > 0; }));
  const auto bAtForget = b.seq.size();
  swarm.runFor(300ms);
  EXPECT_EQ(a.chunks, 1);
  EXPECT_EQ(a.completes, 0);
  EXPECT_EQ(b.seq.size(), bAtForget) << "a forgotten file's listeners hear nothing more";
  EXPECT_FALSE(l.node->listen(id, {})) << "forgotten: nothing to listen to";
  // The node is intact: the same file fetched again completes.
  Log again;
  again.node = l.node.get();
  again.id = id;
  ASSERT_TRUE(swarm.fetchNow(*l.node, id, manifest, record(again)));
  ASSERT_TRUE(swarm.runUntil([&] { return again.completes > 0; }));
  EXPECT_EQ(again.notHeld, 0);
  for (ChunkIndex i = 0; i < kChunks; ++i) EXPECT_TRUE(l.node->have(id, i)) << i;
}

TEST_F(NodeEvents, UnlistenStopsDeliveryEvenOfEventsAlreadyPosted) {
  seed();
  auto& l = leecher();
  Log a, b, self;
  node::ListenerId lb = 0, lself = 0;
  std::size_t bAtUnlisten = 0;
  node::FetchEvents ev = record(a);
  ev.onChunk = [&](ChunkIndex) {
    if (++a.chunks == 1) {
      // The event for this same chunk is already posted for b (after a).
      bAtUnlisten = b.seq.size();
      l.node->unlisten(lb);
    }
  };
  auto la = swarm.fetchNow(*l.node, id, manifest, ev);
  ASSERT_TRUE(la);
  auto rb = l.node->listen(id, record(b));
  ASSERT_TRUE(rb);
  lb = *rb;
  node::FetchEvents once = record(self);
  once.onChunk = [&](ChunkIndex) {
    ++self.chunks;
    l.node->unlisten(lself);  // a listener may remove itself
  };
  auto rs = l.node->listen(id, once);
  ASSERT_TRUE(rs);
  lself = *rs;
  ASSERT_TRUE(swarm.runUntil([&] { return a.completes > 0; }));
  swarm.runFor(100ms);
  EXPECT_EQ(a.chunks, static_cast<int>(kChunks));
  EXPECT_EQ(b.seq.size(), bAtUnlisten);
  EXPECT_EQ(b.chunks, 0);
  EXPECT_EQ(self.chunks, 1);
  EXPECT_EQ(self.completes, 0);
  l.node->unlisten(lb);  // idempotent
  l.node->unlisten(12345);
}

TEST_F(NodeEvents, HaveIsTheNodesOwnAndMatchesWhatWasTold) {
  seed();
  auto& l = leecher();
  EXPECT_FALSE(l.node->have(id, 0)) << "a file the node does not hold";
  Log log;
  log.node = l.node.get();
  log.id = id;
  std::vector<bool> told(kChunks, false);
  node::FetchEvents ev = record(log);
  auto inner = ev.onChunk;
  ev.onChunk = [&, inner](ChunkIndex i) {
    inner(i);
    told[i] = true;
    for (ChunkIndex k = 0; k < kChunks; ++k) {
      // Held chunks not yet told are fine (their events are on the way); a
      // told chunk that is not held is not.
      if (told[k]) {
        EXPECT_TRUE(l.node->have(id, k)) << k;
      }
    }
  };
  ASSERT_TRUE(swarm.fetchNow(*l.node, id, manifest, ev));
  ASSERT_TRUE(swarm.runUntil([&] { return log.completes > 0; }));
  EXPECT_EQ(log.notHeld, 0);
  EXPECT_EQ(std::count(told.begin(), told.end(), true), kChunks);
  for (ChunkIndex i = 0; i < kChunks; ++i) EXPECT_TRUE(l.node->have(id, i));
  EXPECT_FALSE(l.node->have(id, kChunks)) << "past the end";
  auto p = l.node->progress(id);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->chunksHave, kChunks);
}

TEST_F(NodeEvents, ClosedLinksStayInTheLedger) {
  seed();
  auto& l = leecher();
  Log log;
  ASSERT_TRUE(swarm.fetchNow(*l.node, id, manifest, record(log)));
  ASSERT_TRUE(swarm.runUntil([&] { return log.completes > 0; }));
  EXPECT_TRUE(l.node->closedLinks(id).empty() || l.node->peerStats().empty());
  std::uint32_t openReceived = 0;
  for (const auto& s : l.node->peerStats()) openReceived += s.swarm.chunksReceived;
  // The seeder goes: its links close, and the leecher keeps their numbers.
  const std::string seederId = seeder->node->peerIdHex();
  seeder->node->forget(id);
  ASSERT_TRUE(swarm.runUntil([&] { return l.node->peerStats().empty() && !l.node->closedLinks(id).empty(); }, 10s));
  std::uint32_t received = 0;
  bool fromSeeder = false;
  for (const auto& s : l.node->closedLinks(id)) {
    EXPECT_EQ(s.fileId, id);
    received += s.swarm.chunksReceived;
    fromSeeder = fromSeeder || s.peerId == seederId;
  }
  EXPECT_TRUE(fromSeeder);
  EXPECT_EQ(received, kChunks);
  EXPECT_GE(received, openReceived);
  EXPECT_EQ(l.node->closedLinks().size(), l.node->closedLinks(id).size());
  // The seeder's side, recorded by forget(): what it served.
  std::uint32_t served = 0;
  for (const auto& s : seeder->node->closedLinks(id)) served += s.swarm.chunksServed;
  EXPECT_EQ(served, kChunks);
}

TEST_F(NodeEvents, TheGlobalUploadLimitIsANodeOption) {
  // 128 KiB at 64 KiB/s with a 16 KiB burst: at least ~1.75 s.
  node::NodeOptions o = swarm.options();
  o.uploadLimit = 64 * 1024;
  seed(o);
  auto& l = leecher();
  Log log;
  const auto t0 = Clock::now();
  ASSERT_TRUE(swarm.fetchNow(*l.node, id, manifest, record(log)));
  ASSERT_TRUE(swarm.runUntil([&] { return log.completes > 0; }, 30s));
  EXPECT_GE(Clock::now() - t0, 1500ms);
}

TEST(ClosedLinkLedger, KeepsTheNewestLinksOfTheNewestFiles) {
  node::ClosedLinkLedger ledger;
  auto fileNo = [](std::uint8_t n) {
    FileId f{};
    f.bytes[0] = n;
    return f;
  };
  for (std::uint32_t i = 0; i < node::kClosedLinksPerFile + 10; ++i) {
    node::NodePeerStats s;
    s.fileId = fileNo(0);
    s.swarm.key = i;
    ledger.add(s);
  }
  auto kept = ledger.of(fileNo(0));
  ASSERT_EQ(kept.size(), node::kClosedLinksPerFile);
  EXPECT_EQ(kept.front().swarm.key, 10u) << "the oldest went first";
  EXPECT_EQ(kept.back().swarm.key, node::kClosedLinksPerFile + 9);
  for (std::uint8_t f = 1; f <= node::kClosedFilesKept; ++f) {
    node::NodePeerStats s;
    s.fileId = fileNo(f);
    ledger.add(s);
  }
  EXPECT_TRUE(ledger.of(fileNo(0)).empty()) << "the file whose last close is oldest went";
  EXPECT_EQ(ledger.of(fileNo(1)).size(), 1u);
  EXPECT_EQ(ledger.all().size(), node::kClosedFilesKept);
}

}  // namespace
}  // namespace p2pcdn::test
