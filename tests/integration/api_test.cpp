// The library API (include/p2pcdn/p2pcdn.hpp) end to end: P2PCDN objects in
// this process, our tracker as a real process (tests/integration/with_tracker.py
// starts it and passes its URL in P2PCDN_TEST_TRACKER), real WebRTC on
// loopback, real SQLite stores in temporary folders (and memory stores).
//
//   ctest --test-dir build/release -R api --output-on-failure
//   tests/integration/with_tracker.py --p2pcdn build/release/src/cli/p2pcdn -- build/release/tests/api/api_test
#include <cstdio>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include "p2pcdn/p2pcdn.hpp"

namespace {

using namespace p2pcdn;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kChunk = 16 * 1024;  // many chunks from small files

Bytes randomBytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

Bytes readFile(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string describe(const std::vector<ChunkIndex>& v, std::size_t max = 24) {
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < max; ++i) s += (i ? " " : "") + std::to_string(v[i]);
  if (v.size() > max) s += " ...";
  return s;
}

const StoredFile* findFile(const std::vector<StoredFile>& files, const FileId& id) {
  for (const auto& f : files) {
    if (f.fileId == id) return &f;
  }
  return nullptr;
}

class Api : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = std::getenv("P2PCDN_TEST_TRACKER");
    ASSERT_TRUE(t && *t) << "P2PCDN_TEST_TRACKER is not set: run this test through "
                            "tests/integration/with_tracker.py (ctest does)";
    url_ = t;
    std::string tmpl = (fs::temp_directory_path() / "p2pcdn-api-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!std::getenv("P2PCDN_KEEP_TMP")) fs::remove_all(dir_, ec);
  }

  P2PCDNOptions options(const std::string& storage = kMemoryStorage) const {
    P2PCDNOptions o;
    o.trackerUrl = url_;
    o.loopbackOnly = true;
    o.chunkSize = kChunk;
    o.storage = storage;
    return o;
  }
  std::unique_ptr<P2PCDN> connected(P2PCDNOptions o) {
    auto p = std::make_unique<P2PCDN>(std::move(o));
    Status st = p->connect();
    EXPECT_TRUE(st) << st.error().message();
    return p;
  }
  std::unique_ptr<P2PCDN> connected(const std::string& storage = kMemoryStorage) {
    return connected(options(storage));
  }

  std::string url_;
  fs::path dir_;
};

// ---- transfers -----------------------------------------------------------------

TEST_F(Api, UploadAndDownloadBytesRoundTrip) {
  auto seeder = connected((dir_ / "seeder").string());  // SQLite, as `p2pcdn --home`
  auto leecher = connected();                            // memory
  const Bytes data = randomBytes(300 * 1024 + 123, 1);
  FileMetadata md;
  md.name = "round.bin";
  auto up = seeder->upload(ByteView(data), md);
  ASSERT_TRUE(up) << up.error().message();
  EXPECT_EQ(up->manifest.chunkCount(), (data.size() + kChunk - 1) / kChunk);
  EXPECT_EQ(up->manifest.name, "round.bin");
  EXPECT_TRUE(fs::exists(dir_ / "seeder" / "store.db"));
  auto link = parseLink(up->link);
  ASSERT_TRUE(link) << up->link;
  EXPECT_EQ(link->fileId, up->fileId);
  EXPECT_EQ(link->trackers, std::vector<std::string>{url_});
  EXPECT_FALSE(link->key);

  std::mutex mu;
  std::size_t calls = 0;
  double last = 0;
  std::thread::id cbThread;
  DownloadOptions o;
  o.timeout = 60s;
  auto got = leecher->download(
      up->fileId, up->manifest,
      [&](const Progress& p) {
        std::lock_guard lock(mu);
        ++calls;
        last = p.progress;
        cbThread = std::this_thread::get_id();
      },
      o);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, data);
  std::lock_guard lock(mu);
  EXPECT_GE(calls, up->manifest.chunkCount());
  EXPECT_DOUBLE_EQ(last, 1.0);
  EXPECT_NE(cbThread, std::this_thread::get_id()) << "progress runs on the library's loop thread";
}

TEST_F(Api, DownloadToWritesTheFileAtomicallyFromALinkAlone) {
  // Encrypted, and the leecher knows only the link (manifest from the peer).
  const Bytes data = randomBytes(200 * 1024 + 7, 2);
  const fs::path in = dir_ / "in.bin";
  std::ofstream(in, std::ios::binary).write(reinterpret_cast<const char*>(data.data()),
                                            static_cast<std::streamsize>(data.size()));
  auto seeder = connected((dir_ / "seeder").string());
  auto leecher = connected((dir_ / "leecher" / "store.db").string());
  FileMetadata md;
  md.encrypt = true;
  auto up = seeder->upload(in, md);
  ASSERT_TRUE(up) << up.error().message();
  ASSERT_TRUE(up->key);
  EXPECT_EQ(up->manifest.name, "in.bin");
  EXPECT_TRUE(fs::exists(dir_ / "seeder" / "keys" / (up->fileId.hex() + ".key"))) << "the CLI's key file";
  auto link = parseLink(up->link);
  ASSERT_TRUE(link && link->key) << up->link;

  DownloadOptions o;
  o.key = link->key;
  o.timeout = 60s;
  const fs::path out = dir_ / "out.bin";
  Status st = leecher->downloadTo(link->fileId, std::nullopt, out, {}, o);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(readFile(out), data);
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().find(".part"), std::string::npos) << e.path();
  }
  // Without the key: a clear error, and nothing written.
  DownloadOptions noKey;
  noKey.timeout = 10s;
  Status bad = leecher->downloadTo(link->fileId, std::nullopt, dir_ / "nokey.bin", {}, noKey);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument) << bad.error().message();
  EXPECT_NE(bad.error().message().find("key"), std::string::npos) << bad.error().message();
  EXPECT_FALSE(fs::exists(dir_ / "nokey.bin"));
}

TEST_F(Api, TheCliReadsTheLibrarysStore) {
  // storage = a folder is the CLI's --home: store.db and keys/ (encrypted files).
  const char* cli = std::getenv("P2PCDN_TEST_CLI");
  ASSERT_TRUE(cli && *cli) << "P2PCDN_TEST_CLI is not set (with_tracker.py sets it)";
  const Bytes data = randomBytes(100 * 1024 + 1, 11);
  FileId id;
  {
    auto p = connected((dir_ / "home").string());
    FileMetadata md;
    md.name = "shared.bin";
    md.encrypt = true;
    auto up = p->upload(ByteView(data), md);
    ASSERT_TRUE(up) << up.error().message();
    id = up->fileId;
  }  // disconnected: the store is closed
  const fs::path out = dir_ / "exported.bin";
  std::string cmd = std::string(cli) + " --home '" + (dir_ / "home").string() + "' -q export " + id.hex() + " -o '" +
                    out.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_EQ(readFile(out), data);
}

TEST_F(Api, StreamYieldsChunksInOrderWhileTheyArriveOutOfOrder) {
  // A whole-file download starts first (rarest first: random order among
  // equally rare chunks); the stream opens once a few chunks are in and must
  // still yield 0, 1, 2, ... The seeder is rate-limited so the stream waits.
  P2PCDNOptions so = options();
  so.uploadLimit = 1 << 20;  // 1 MiB/s: ~2 s for the file
  auto seeder = connected(so);
  auto leecher = connected();
  const Bytes data = randomBytes(2 * 1024 * 1024 + 999, 3);
  auto up = seeder->upload(ByteView(data));
  ASSERT_TRUE(up) << up.error().message();
  const std::uint32_t n = up->manifest.chunkCount();

  // Shared with the download's callbacks, which may still run after a failed
  // ASSERT has left this function (they did, and crashed the test).
  struct Seen {
    std::mutex mu;
    std::vector<ChunkIndex> arrivals;  // the node's onChunk order
    std::promise<Result<Bytes>> whole;
  };
  auto seen = std::make_shared<Seen>();
  std::mutex& mu = seen->mu;
  std::vector<ChunkIndex>& arrivals = seen->arrivals;
  std::promise<Result<Bytes>>& whole = seen->whole;
  DownloadOptions wo;
  wo.timeout = 120s;
  const auto t0 = Clock::now();
  leecher->downloadAsync(
      up->fileId, up->manifest,
      [seen](const Progress& p) {
        std::lock_guard lock(seen->mu);
        if (p.chunk) seen->arrivals.push_back(*p.chunk);
      },
      [seen](Result<Bytes> r) { seen->whole.set_value(std::move(r)); }, wo);
  for (auto deadline = Clock::now() + 60s; Clock::now() < deadline;) {
    {
      std::lock_guard lock(mu);
      if (arrivals.size() >= 8) break;
    }
    std::this_thread::sleep_for(5ms);
  }

  DownloadOptions o;
  o.timeout = 30s;  // per next()
  auto s = leecher->stream(up->fileId, up->manifest, {}, o);
  ASSERT_TRUE(s) << s.error().message();
  std::vector<ChunkIndex> yielded;
  Bytes joined;
  // What each side's links say, for a failure message.
  auto links = [&] {
    std::string out;
    for (auto* who : {&seeder, &leecher}) {
      out += who == &seeder ? "\n seeder:" : "\n leecher:";
      if (auto ps = (*who)->getPeerStats()) {
        for (const auto& p : *ps) {
          out += " [connected " + std::to_string(p.connected) + " up " + std::to_string(p.bytesUp) + " down " +
                 std::to_string(p.bytesDown) + " served " + std::to_string(p.chunksServed) + " received " +
                 std::to_string(p.chunksReceived) + " failures " + std::to_string(p.failures) +
                 " outstanding " + std::to_string(p.requestsOutstanding) + " queued " +
                 std::to_string(p.uploadsQueued) + " unchoked " + std::to_string(p.unchoked) + "]";
        }
      }
    }
    return out;
  };
  for (;;) {
    auto c = s->next();
    if (!c) std::fprintf(stderr, "links at the failure:%s\n", links().c_str());
    ASSERT_TRUE(c) << c.error().message();
    if (!*c) break;
    yielded.push_back(s->position() - 1);
    joined.insert(joined.end(), (*c)->begin(), (*c)->end());
  }
  EXPECT_FALSE(*s->next()) << "the end stays the end";
  auto w = whole.get_future();
  ASSERT_EQ(w.wait_for(60s), std::future_status::ready);
  auto wr = w.get();
  ASSERT_TRUE(wr) << wr.error().message();
  EXPECT_EQ(*wr, data);
  // 2 MiB at 1 MiB/s with a quarter-second burst: the seeder's uploadLimit held.
  EXPECT_GE(Clock::now() - t0, 1200ms);

  std::vector<ChunkIndex> inOrder(n);
  std::iota(inOrder.begin(), inOrder.end(), 0u);
  EXPECT_EQ(yielded, inOrder);
  EXPECT_EQ(joined, data);
  std::lock_guard lock(mu);
  std::cout << "  onChunk order: " << describe(arrivals) << "\n  yielded order: " << describe(yielded) << "\n";
  EXPECT_EQ(arrivals.size(), n);
  EXPECT_FALSE(std::is_sorted(arrivals.begin(), arrivals.end())) << "chunks arrived in order: the test proves nothing";
  auto sorted = arrivals;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, inOrder) << "every chunk arrived exactly once";
}

TEST_F(Api, StreamFetchesNoFurtherThanTheLookahead) {
  auto seeder = connected();
  auto leecher = connected((dir_ / "leecher").string());
  const Bytes data = randomBytes(64 * kChunk, 4);
  auto up = seeder->upload(ByteView(data));
  ASSERT_TRUE(up) << up.error().message();
  DownloadOptions o;
  o.lookahead = 24;  // above the picker's 16-chunk urgent window, which it fetches regardless
  o.timeout = 30s;
  auto s = leecher->stream(up->fileId, std::nullopt, {}, o);  // manifest from the peer
  ASSERT_TRUE(s) << s.error().message();
  Bytes joined;
  for (int i = 0; i < 4; ++i) {
    auto c = s->next();
    ASSERT_TRUE(c && *c) << (c ? "early end" : c.error().message());
    joined.insert(joined.end(), (*c)->begin(), (*c)->end());
  }
  std::this_thread::sleep_for(1500ms);  // a slow consumer: fetching must pause
  auto files = leecher->getStoredFiles();
  ASSERT_TRUE(files) << files.error().message();
  const StoredFile* f = findFile(*files, up->fileId);
  ASSERT_NE(f, nullptr);
  std::cout << "  after 4 chunks read and a pause: " << f->chunksPresent << "/64 chunks stored\n";
  EXPECT_GE(f->chunksPresent, 4u);
  EXPECT_LE(f->chunksPresent, 4u + 24u) << "fetched beyond cursor + lookahead";
  for (;;) {
    auto c = s->next();
    ASSERT_TRUE(c) << c.error().message();
    if (!*c) break;
    joined.insert(joined.end(), (*c)->begin(), (*c)->end());
  }
  EXPECT_EQ(joined, data);
}

TEST_F(Api, RemoveDeletesAndForgets) {
  auto p = connected((dir_ / "home").string());
  const Bytes data = randomBytes(50 * 1024, 5);
  auto up = p->upload(ByteView(data));
  ASSERT_TRUE(up) << up.error().message();
  auto files = p->getStoredFiles();
  ASSERT_TRUE(files);
  EXPECT_NE(findFile(*files, up->fileId), nullptr);
  auto stats = p->getStats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->files, 1u);
  EXPECT_EQ(stats->seeding, 1u);

  Status st = p->remove(up->fileId);
  ASSERT_TRUE(st) << st.error().message();
  files = p->getStoredFiles();
  ASSERT_TRUE(files);
  EXPECT_EQ(findFile(*files, up->fileId), nullptr);
  stats = p->getStats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->files, 0u);
  EXPECT_EQ(stats->seeding, 0u);
  Status again = p->remove(up->fileId);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kNotFound) << again.error().message();
  // The node forgot it too: nothing local any more, so it must come from peers.
  DownloadOptions o;
  o.timeout = 1s;
  auto got = p->download(up->fileId, up->manifest, {}, o);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::kTimedOut) << got.error().message();
}

TEST_F(Api, PeerStatsShowTheSeederAfterADownload) {
  auto seeder = connected();
  auto leecher = connected();
  const Bytes data = randomBytes(512 * 1024, 6);
  auto up = seeder->upload(ByteView(data));
  ASSERT_TRUE(up) << up.error().message();
  std::mutex mu;
  std::optional<std::vector<std::string>> peersSeen;  // asked from inside a callback
  std::promise<Result<Bytes>> done;
  DownloadOptions o;
  o.timeout = 60s;
  leecher->downloadAsync(
      up->fileId, up->manifest,
      [&](const Progress& p) {
        std::lock_guard lock(mu);
        if (p.chunk && !peersSeen) {
          auto ids = leecher->getConnectedPeers();  // non-blocking calls are fine on the loop
          if (ids) peersSeen = *ids;
        }
      },
      [&](Result<Bytes> r) { done.set_value(std::move(r)); }, o);
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
  auto got = f.get();
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, data);
  {
    std::lock_guard lock(mu);
    ASSERT_TRUE(peersSeen);
    EXPECT_NE(std::find(peersSeen->begin(), peersSeen->end(), seeder->peerId()), peersSeen->end());
  }

  auto ps = leecher->getPeerStats();
  ASSERT_TRUE(ps) << ps.error().message();
  auto it = std::find_if(ps->begin(), ps->end(), [&](const PeerStats& s) {
    return s.peerId == seeder->peerId() && s.fileId == up->fileId;
  });
  ASSERT_NE(it, ps->end()) << "the seeder is not in the leecher's getPeerStats()";
  std::cout << "  seeder as the leecher sees it: down " << it->bytesDown << " B, " << it->chunksReceived
            << " chunks, rtt " << (it->rttSeconds ? std::to_string(*it->rttSeconds * 1000) + " ms" : "n/a")
            << ", candidates " << it->localCandidateType << "/" << it->remoteCandidateType
            << (it->connected ? ", connected" : ", closed") << "\n";
  EXPECT_GE(it->bytesDown, data.size());
  EXPECT_EQ(it->chunksReceived, up->manifest.chunkCount());
  EXPECT_TRUE(it->seeder);
  EXPECT_EQ(it->failures, 0u);

  auto ss = seeder->getPeerStats();
  ASSERT_TRUE(ss);
  auto back = std::find_if(ss->begin(), ss->end(), [&](const PeerStats& s) { return s.peerId == leecher->peerId(); });
  ASSERT_NE(back, ss->end());
  EXPECT_GE(back->bytesUp, data.size());
  EXPECT_EQ(back->chunksServed, up->manifest.chunkCount());

  auto stats = leecher->getStats();
  ASSERT_TRUE(stats);
  EXPECT_GE(stats->bytesDownloaded, data.size());
  EXPECT_EQ(stats->chunksDownloaded, up->manifest.chunkCount());
  auto sstats = seeder->getStats();
  ASSERT_TRUE(sstats);
  EXPECT_GE(sstats->bytesUploaded, data.size());
  EXPECT_TRUE(leecher->discoverPeers());
}

TEST_F(Api, AsyncUploadAndDownloadRunCallbacksOnTheLoopThread) {
  auto p = connected();
  const Bytes data = randomBytes(70 * 1024, 7);
  std::promise<std::pair<Result<UploadResult>, std::thread::id>> upP;
  p->uploadAsync(data, {}, [&](Result<UploadResult> r) { upP.set_value({std::move(r), std::this_thread::get_id()}); });
  auto upF = upP.get_future();
  ASSERT_EQ(upF.wait_for(30s), std::future_status::ready);
  auto [up, upThread] = upF.get();
  ASSERT_TRUE(up) << up.error().message();
  EXPECT_NE(upThread, std::this_thread::get_id());

  // Our own file: complete locally, no network. From the callback, a blocking
  // call fails instead of deadlocking; a non-blocking one works.
  std::promise<void> doneP;
  std::optional<Errc> nested;
  bool statsOk = false, same = false;
  p->downloadAsync(up->fileId, std::nullopt, {}, [&](Result<Bytes> r) {
    same = r && *r == data;
    auto inner = p->download(up->fileId);
    nested = inner ? Errc::kOk : inner.error().code();
    statsOk = static_cast<bool>(p->getStats());
    doneP.set_value();
  });
  ASSERT_EQ(doneP.get_future().wait_for(30s), std::future_status::ready);
  EXPECT_TRUE(same);
  EXPECT_EQ(nested, Errc::kInvalidArgument);
  EXPECT_TRUE(statsOk);
}

TEST_F(Api, SeedingStopsAfterSeedDurationOrWhenDisabled) {
  P2PCDNOptions brief = options();
  brief.seedDuration = 1s;
  auto seeder = connected(brief);
  P2PCDNOptions off = options();
  off.enableSeeding = false;
  auto quiet = connected(off);
  auto leecher = connected(off);  // does not pass A on either
  const Bytes a = randomBytes(40 * 1024, 9), b = randomBytes(40 * 1024, 10);
  auto upA = seeder->upload(ByteView(a));
  auto upB = quiet->upload(ByteView(b));
  ASSERT_TRUE(upA && upB);
  auto st = quiet->getStats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->seeding, 0u) << "enableSeeding = false: stored, not served";
  EXPECT_EQ(st->files, 1u);
  DownloadOptions o;
  o.timeout = 20s;
  auto gotA = leecher->download(upA->fileId, upA->manifest, {}, o);  // within seedDuration
  ASSERT_TRUE(gotA) << gotA.error().message();
  EXPECT_EQ(*gotA, a);
  std::this_thread::sleep_for(1500ms);
  st = seeder->getStats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->seeding, 0u) << "seedDuration is over";
  auto late = connected();
  o.timeout = 2s;
  auto gotLate = late->download(upA->fileId, upA->manifest, {}, o);
  ASSERT_FALSE(gotLate) << "served after seedDuration";
  EXPECT_EQ(gotLate.error().code(), Errc::kTimedOut) << gotLate.error().message();
  auto gotB = leecher->download(upB->fileId, upB->manifest, {}, o);
  ASSERT_FALSE(gotB) << "served with enableSeeding = false";
  EXPECT_EQ(gotB.error().code(), Errc::kTimedOut) << gotB.error().message();
}

// ---- errors --------------------------------------------------------------------

TEST_F(Api, CallsBeforeConnectFailCleanly) {
  P2PCDN p(options());
  EXPECT_FALSE(p.connected());
  EXPECT_EQ(p.peerId(), "");
  const Bytes data = randomBytes(10, 8);
  auto expectNotConnected = [](const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidArgument) << e.message();
    EXPECT_NE(e.message().find("connect"), std::string::npos) << e.message();
  };
  auto up = p.upload(ByteView(data));
  ASSERT_FALSE(up);
  expectNotConnected(up.error());
  auto down = p.download(FileId{});
  ASSERT_FALSE(down);
  expectNotConnected(down.error());
  Status to = p.downloadTo(FileId{}, std::nullopt, dir_ / "x");
  ASSERT_FALSE(to);
  expectNotConnected(to.error());
  auto s = p.stream(FileId{});
  ASSERT_FALSE(s);
  expectNotConnected(s.error());
  Status rm = p.remove(FileId{});
  ASSERT_FALSE(rm);
  expectNotConnected(rm.error());
  EXPECT_FALSE(p.getStats());
  EXPECT_FALSE(p.getStoredFiles());
  EXPECT_FALSE(p.discoverPeers());
  EXPECT_FALSE(p.getConnectedPeers());
  EXPECT_FALSE(p.getPeerStats());
  int fired = 0;
  p.uploadAsync(Bytes(data), {}, [&](Result<UploadResult> r) { fired += r ? 0 : 1; });
  p.downloadAsync(FileId{}, std::nullopt, {}, [&](Result<Bytes> r) { fired += r ? 0 : 1; });
  p.downloadToAsync(FileId{}, std::nullopt, dir_ / "y", {}, [&](Status r) { fired += r ? 0 : 1; });
  EXPECT_EQ(fired, 3) << "async forms report at once, exactly once";
  p.disconnect();  // harmless
  EXPECT_FALSE(fs::exists(dir_ / "x"));
}

TEST_F(Api, ConnectRejectsBadOptions) {
  P2PCDNOptions o = options();
  o.trackerUrl.clear();
  Status st = P2PCDN(o).connect();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::kInvalidArgument);
  o = options();
  o.chunkSize = 1000;
  st = P2PCDN(o).connect();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), Errc::kInvalidArgument) << st.error().message();
  o = options();
  o.trackerUrl = "http://not-a-websocket";
  st = P2PCDN(o).connect();
  ASSERT_FALSE(st);
}

TEST_F(Api, UploadOfAMissingPathIsNotFound) {
  auto p = connected((dir_ / "home").string());
  auto up = p->upload(dir_ / "no-such-file.bin");
  ASSERT_FALSE(up);
  EXPECT_EQ(up.error().code(), Errc::kNotFound) << up.error().message();
  auto files = p->getStoredFiles();
  ASSERT_TRUE(files);
  EXPECT_TRUE(files->empty()) << "the aborted import left something behind";
}

TEST_F(Api, DownloadOfAnUnknownIdTimesOut) {
  auto p = connected();
  FileId unknown;
  for (std::size_t i = 0; i < unknown.bytes.size(); ++i) unknown.bytes[i] = static_cast<std::uint8_t>(i * 7 + 1);
  DownloadOptions o;
  o.timeout = 1500ms;
  auto t0 = Clock::now();
  auto got = p->download(unknown, std::nullopt, {}, o);
  auto took = Clock::now() - t0;
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::kTimedOut) << got.error().message();
  EXPECT_NE(got.error().message().find("1500 ms"), std::string::npos) << got.error().message();
  EXPECT_NE(got.error().message().find("manifest not received"), std::string::npos) << got.error().message();
  EXPECT_GE(took, 1400ms);
  EXPECT_LT(took, 10s);
  std::cout << "  " << got.error().message() << "\n";
  auto stats = p->getStats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->activeDownloads, 0u) << "a timed-out download nobody waits for stops";
}

TEST_F(Api, DisconnectCancelsPendingWorkAndOutlivingStreams) {
  auto p = connected();
  FileId unknown;
  unknown.bytes.fill(0xab);
  std::promise<Result<Bytes>> pending;
  p->downloadAsync(unknown, std::nullopt, {}, [&](Result<Bytes> r) { pending.set_value(std::move(r)); });
  auto s = p->stream(unknown);
  ASSERT_TRUE(s) << s.error().message();
  p->disconnect();
  auto f = pending.get_future();
  ASSERT_EQ(f.wait_for(15s), std::future_status::ready);
  auto r = f.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::kCancelled) << r.error().message();
  EXPECT_FALSE(s->next());
  p.reset();
  auto after = s->next();  // the P2PCDN is gone; the stream is still safe to use
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code(), Errc::kCancelled);
  // connect() again after a disconnect.
  auto q = connected();
  EXPECT_TRUE(q->connected());
  q->disconnect();
  EXPECT_TRUE(q->connect());
  EXPECT_TRUE(q->getStats());
}

}  // namespace
