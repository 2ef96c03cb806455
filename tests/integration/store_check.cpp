// store_check DB LOG: checks a store that store_writer was killed while writing.
//
//  1. PRAGMA integrity_check is "ok" and PRAGMA foreign_key_check finds nothing
//     (no chunk rows of a deleted file), on the raw database, before the store
//     opens it.
//  2. openSqliteStorage succeeds; every manifest that should be there is, and is
//     identical to the fixture's.
//  3. The chunks held are exactly those the log says were stored (every logged
//     "ok" was durable); an operation in flight at the kill may or may not have
//     happened, and the checker appends "ok"/"no" to the log accordingly.
//  4. Every chunk held reads back with verify=true, byte-identical to the fixture.
//  5. usage() and listFiles() agree with the chunks held: bytesUsed is the sum of
//     their stored lengths, chunks their number, files the number of manifests.
// Prints one summary line; exit 0 if all hold, 1 (with reasons on stderr) if not.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "p2pcdn/chunk_storage.hpp"
#include "store_fixture.hpp"

using namespace p2pcdn;
using namespace p2pcdn::itest;

namespace {

int failures = 0;

void problem(const std::string& s) {
  std::fprintf(stderr, "store_check: %s\n", s.c_str());
  ++failures;
}

// Runs a PRAGMA and returns its rows joined by '\n' (or the error).
std::string pragmaRows(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) return std::string("error: ") + sqlite3_errmsg(db);
  std::string out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (!out.empty()) out += '\n';
    for (int c = 0; c < sqlite3_column_count(s); ++c) {
      const unsigned char* t = sqlite3_column_text(s, c);
      if (c) out += '|';
      out += t ? reinterpret_cast<const char*>(t) : "NULL";
    }
  }
  if (rc != SQLITE_DONE) out += std::string("\nerror: ") + sqlite3_errmsg(db);
  sqlite3_finalize(s);
  return out;
}

void checkRaw(const char* path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    problem(std::string("sqlite3_open: ") + (db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close_v2(db);
    return;
  }
  std::string ic = pragmaRows(db, "PRAGMA integrity_check");
  if (ic != "ok") problem("integrity_check: " + ic);
  std::string fk = pragmaRows(db, "PRAGMA foreign_key_check");
  if (!fk.empty()) problem("foreign_key_check (orphaned rows): " + fk);
  sqlite3_close_v2(db);
}

std::string diff(const std::vector<bool>& want, const std::vector<bool>& got) {
  std::string out;
  int shown = 0;
  for (std::size_t i = 0; i < want.size() && i < got.size(); ++i) {
    if (want[i] != got[i] && shown++ < 8) {
      out += " chunk " + std::to_string(i) + (want[i] ? " missing" : " unexpected");
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: store_check DB LOG\n");
    return 2;
  }
  auto a = makeFileA();
  auto b = makeFileB();
  if (!a || !b) {
    std::fprintf(stderr, "store_check: fixtures failed\n");
    return 1;
  }
  const FixtureFile* fixtures[2] = {&*a, &*b};

  // Replay the log; a trailing operation without "ok"/"no" is in flight.
  FileState pre[2], post[2];
  for (int f = 0; f < 2; ++f) {
    pre[f].present.assign(fixtures[f]->manifest.chunkCount(), false);
  }
  std::optional<LogOp> pending;
  std::uint64_t applied = 0;
  bool torn = false;  // the last line has no newline: killed inside write(2), op never started
  {
    std::ifstream log(argv[2], std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    torn = !text.empty() && text.back() != '\n';
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      if (line == "ok" || line == "no") {
        if (!pending) {
          problem("log: '" + line + "' without an operation");
          continue;
        }
        if (line == "ok") {
          int f = pending->file == 'A' ? 0 : 1;
          applyOp(*pending, pre[f], fixtures[f]->manifest.chunkCount());
          ++applied;
        }
        pending.reset();
        continue;
      }
      if (pending) problem("log: two operations in flight (previous round unresolved)");
      pending = parseOp(line).value_or(LogOp{});  // unparsable: a torn line, no effect
    }
    if (torn) pending = LogOp{};
  }
  post[0] = pre[0];
  post[1] = pre[1];
  if (pending) {
    int f = pending->file == 'A' ? 0 : 1;
    applyOp(*pending, post[f], fixtures[f]->manifest.chunkCount());
  }

  checkRaw(argv[1]);

  auto opened = openSqliteStorage(argv[1]);
  if (!opened) {
    problem("open store: " + opened.error().message());
    return 1;
  }
  BlockingStorage store(**opened);

  // What the store holds.
  FileState actual[2];
  for (int f = 0; f < 2; ++f) {
    const FixtureFile& fx = *fixtures[f];
    actual[f].present.assign(fx.manifest.chunkCount(), false);
    auto m = store.getManifest(fx.id);
    if (!m) {
      if (m.error().code() != Errc::kNotFound) problem(std::string("get manifest ") + fx.tag + ": " + m.error().message());
      continue;
    }
    actual[f].exists = true;
    if (*m != fx.manifest) problem(std::string("manifest ") + fx.tag + " differs from the one stored");
    auto p = store.presentChunks(fx.id);
    if (!p) {
      problem(std::string("present chunks ") + fx.tag + ": " + p.error().message());
      continue;
    }
    if (p->size() != fx.manifest.chunkCount()) problem("present chunks has the wrong size");
    actual[f].present = *p;
  }

  // Durability and atomicity: the state is the logged one, or the logged one
  // plus the operation in flight.
  bool isPre = actual[0] == pre[0] && actual[1] == pre[1];
  bool isPost = actual[0] == post[0] && actual[1] == post[1];
  if (!isPre && !isPost) {
    for (int f = 0; f < 2; ++f) {
      char tag = fixtures[f]->tag;
      if (actual[f].exists != pre[f].exists) {
        problem(std::string("file ") + tag + (actual[f].exists ? " present" : " absent") + ", log says otherwise");
      }
      std::string d = diff(pre[f].present, actual[f].present);
      if (!d.empty()) problem(std::string("file ") + tag + " differs from the log:" + d);
    }
    if (pending) {
      problem(std::string("(in flight: ") + pending->op + " " + pending->file + " " + std::to_string(pending->index) + ")");
    }
  }

  // Every chunk held is intact.
  std::uint64_t bytes = 0, chunks = 0, files = 0;
  for (int f = 0; f < 2; ++f) {
    const FixtureFile& fx = *fixtures[f];
    if (!actual[f].exists) continue;
    ++files;
    for (ChunkIndex i = 0; i < fx.manifest.chunkCount(); ++i) {
      if (!actual[f].present[i]) continue;
      auto c = store.getChunk(fx.id, i, ReadOptions{.verify = true});
      if (!c) {
        problem(std::string("chunk ") + fx.tag + " " + std::to_string(i) + ": " + c.error().message());
      } else if (*c != fx.chunks[i]) {
        problem(std::string("chunk ") + fx.tag + " " + std::to_string(i) + " has wrong bytes");
      }
      bytes += fx.manifest.storedChunkLength(i);
      ++chunks;
    }
  }
  auto u = store.usage();
  if (!u) {
    problem("usage: " + u.error().message());
  } else {
    if (u->bytesUsed != bytes) {
      problem("usage().bytesUsed " + std::to_string(u->bytesUsed) + " != " + std::to_string(bytes) +
              " held in chunks");
    }
    if (u->chunks != chunks) problem("usage().chunks " + std::to_string(u->chunks) + " != " + std::to_string(chunks));
    if (u->files != files) problem("usage().files " + std::to_string(u->files) + " != " + std::to_string(files));
  }
  auto list = store.listFiles();
  if (!list) {
    problem("list files: " + list.error().message());
  } else {
    if (list->size() != files) problem("listFiles has " + std::to_string(list->size()) + " files");
    for (const StoredFile& sf : *list) {
      int f = sf.fileId == a->id ? 0 : sf.fileId == b->id ? 1 : -1;
      if (f < 0) {
        problem("listFiles: unknown file " + sf.fileId.hex());
        continue;
      }
      std::uint32_t n = 0;
      std::uint64_t sz = 0;
      for (ChunkIndex i = 0; i < actual[f].present.size(); ++i) {
        if (actual[f].present[i]) {
          ++n;
          sz += fixtures[f]->manifest.storedChunkLength(i);
        }
      }
      if (sf.chunksPresent != n || sf.bytesStored != sz) problem("listFiles counts disagree for " + sf.fileId.hex());
      if (sf.pinned != (f == 0)) problem("listFiles: wrong pin state for " + sf.fileId.hex());
    }
  }

  // Resolve the operation in flight for the next round's replay.
  if (pending && failures == 0) {
    std::ofstream log(argv[2], std::ios::app | std::ios::binary);
    log << (torn ? "\nno" : isPost ? "ok" : "no") << '\n';
  }
  std::printf("store_check: %s; ops replayed %llu; A %s %llu chunks; B %s; held %llu chunks, %llu bytes%s\n",
              failures ? "FAILED" : "ok", static_cast<unsigned long long>(applied),
              actual[0].exists ? "present" : "absent",
              static_cast<unsigned long long>(std::count(actual[0].present.begin(), actual[0].present.end(), true)),
              actual[1].exists ? "present" : "absent", static_cast<unsigned long long>(chunks),
              static_cast<unsigned long long>(bytes),
              pending ? (isPost ? "; in-flight op happened" : "; in-flight op did not happen") : "");
  return failures ? 1 : 0;
}
