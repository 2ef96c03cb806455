// store_writer DB LOG [SEED]: hammers a SqliteStorage until it is killed.
//
// Stores the manifests of the two fixture files, then loops forever over random
// operations: store a chunk, delete a chunk, read a chunk back (verify=true and
// compared with the fixture bytes), and now and then delete file B entirely and
// store its manifest again. Every mutating operation is logged (see
// store_fixture.hpp) so that store_check can tell exactly what the store must
// hold after a SIGKILL. Any failed operation or wrong read is a bug: the writer
// prints it and exits 1 (the test expects it to die of SIGKILL only).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "p2pcdn/chunk_storage.hpp"
#include "store_fixture.hpp"

using namespace p2pcdn;
using namespace p2pcdn::itest;

namespace {

int logFd = -1;

void logLine(const std::string& s) {
  std::string line = s + "\n";
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(logFd, p, left);
    if (n < 0) {
      std::perror("store_writer: write log");
      std::exit(1);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

[[noreturn]] void die(const std::string& what, const Error& e) {
  std::fprintf(stderr, "store_writer: %s: %s\n", what.c_str(), e.message().c_str());
  std::exit(1);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "store_writer: %s\n", what.c_str());
  std::exit(1);
}

struct Tracked {
  const FixtureFile* file;
  FileState state;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: store_writer DB LOG [SEED]\n");
    return 2;
  }
  std::uint64_t seed = static_cast<std::uint32_t>(::getpid());
  seed *= std::uint64_t{0x9e3779b97f4a7c15};
  if (argc > 3) seed = std::strtoull(argv[3], nullptr, 0);
  auto a = makeFileA();
  auto b = makeFileB();
  if (!a) die("fixture A", a.error());
  if (!b) die("fixture B", b.error());

  logFd = ::open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0) {
    std::perror("store_writer: open log");
    return 1;
  }
  auto opened = openSqliteStorage(argv[1]);
  if (!opened) die("open store", opened.error());
  BlockingStorage store(**opened);

  // Start from what the store holds (store_check verified it against the log).
  Tracked files[2] = {{&*a, {}}, {&*b, {}}};
  for (Tracked& t : files) {
    t.state.present.assign(t.file->manifest.chunkCount(), false);
    auto m = store.getManifest(t.file->id);
    if (!m && m.error().code() != Errc::kNotFound) die("get manifest", m.error());
    t.state.exists = m.has_value();
    if (t.state.exists) {
      auto p = store.presentChunks(t.file->id);
      if (!p) die("present chunks", p.error());
      t.state.present = *p;
    }
  }

  auto logged = [&](Tracked& t, LogOp op, const Status& st) {
    if (!st) die(std::string("op ") + op.op + " " + op.file + " " + std::to_string(op.index), st.error());
    logLine("ok");
    applyOp(op, t.state, t.file->manifest.chunkCount());
  };
  auto storeManifest = [&](Tracked& t) {
    LogOp op{'M', t.file->tag, 0};
    logLine(std::string("M ") + t.file->tag);
    auto id = store.storeManifest(t.file->manifest, /*pinned=*/t.file->tag == 'A');
    if (id && *id != t.file->id) die("storeManifest returned the wrong id");
    logged(t, op, id ? Status{} : Status(fail(id.error())));
  };
  auto deleteFile = [&](Tracked& t) {
    LogOp op{'F', t.file->tag, 0};
    logLine(std::string("F ") + t.file->tag);
    logged(t, op, store.deleteFile(t.file->id));
  };
  auto storeChunk = [&](Tracked& t, ChunkIndex i) {
    LogOp op{'s', t.file->tag, i};
    logLine(std::string("s ") + t.file->tag + " " + std::to_string(i));
    logged(t, op, store.storeChunk(t.file->id, i, t.file->chunks[i]));
  };
  auto deleteChunk = [&](Tracked& t, ChunkIndex i) {
    LogOp op{'d', t.file->tag, i};
    logLine(std::string("d ") + t.file->tag + " " + std::to_string(i));
    logged(t, op, store.deleteChunk(t.file->id, i));
  };
  auto readChunk = [&](Tracked& t, ChunkIndex i) {
    auto c = store.getChunk(t.file->id, i, ReadOptions{.verify = true});
    if (t.state.present[i]) {
      if (!c) die("read of a present chunk " + std::to_string(i), c.error());
      if (*c != t.file->chunks[i]) die("read returned wrong bytes for chunk " + std::to_string(i));
    } else if (c || c.error().code() != Errc::kNotFound) {
      die("read of an absent chunk " + std::to_string(i) + " did not report not-found");
    }
  };

  for (Tracked& t : files) {
    if (!t.state.exists || t.file->tag == 'A') storeManifest(t);  // A: idempotent re-store
  }

  SplitMix rng(seed);
  Tracked& fa = files[0];
  Tracked& fb = files[1];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);  // orphan guard
  for (std::uint64_t n = 0;; ++n) {
    if ((n & 1023) == 0 && std::chrono::steady_clock::now() > deadline) die("ran 5 minutes without being killed");
    std::uint64_t r = rng.below(100);
    auto pick = [&](const Tracked& t) { return static_cast<ChunkIndex>(rng.below(t.file->manifest.chunkCount())); };
    if (r < 50) {
      storeChunk(fa, pick(fa));
    } else if (r < 62) {
      deleteChunk(fa, pick(fa));
    } else if (r < 77) {
      readChunk(fa, pick(fa));
    } else if (!fb.state.exists) {
      storeManifest(fb);
    } else if (r < 92) {
      storeChunk(fb, pick(fb));
    } else if (r < 96) {
      deleteChunk(fb, pick(fb));
    } else if (r < 99) {
      readChunk(fb, pick(fb));
    } else {
      deleteFile(fb);
    }
  }
}
