// SQLite helpers for the store (sqlite_storage.cpp): statements, errors, and
// the schema (its creation at open and the conversion of older versions;
// docs/hacking.md, "The SQLite store").
#pragma once

#include <sqlite3.h>

#include <functional>
#include <string>

#include "p2pcdn/manifest.hpp"
#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn::storage {
class DataFiles;
}

namespace p2pcdn::storage::sql {

// 2: the manifests are version 2 (no createdAt, so other file ids). A schema
// 1 store with files is refused (their ids and encodings changed); an empty
// one is taken over. 3: chunk bytes in data files (files.data, files.slot;
// chunks.blob_id 0); a schema 2 store is converted in place, its chunks left
// in `blobs`.
constexpr int kSchemaVersion = 3;

// A prepared statement, finalized with it.
class Stmt {
 public:
  Stmt() = default;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s_); }
  sqlite3_stmt** out() { return &s_; }
  sqlite3_stmt* get() const { return s_; }
  // Resets and clears bindings when the statement is reused.
  sqlite3_stmt* fresh() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
    return s_;
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

Errc errcFor(int rc);
Unexpected dbError(sqlite3* db, const char* op, int rc);
Status exec(sqlite3* db, const char* sql, const char* op);
Status prepare(sqlite3* db, Stmt& s, const char* sql);
std::string text(sqlite3_stmt* s, int column);  // "" for NULL
bool hasColumn(sqlite3* db, const char* table, const char* column);
// Runs body inside BEGIN IMMEDIATE (the write lock): COMMIT if it succeeds,
// ROLLBACK and its error if not.
Status immediate(sqlite3* db, const char* op, const std::function<Status()>& body);

// Chunk i of a file is at i x slot in its data file.
inline std::uint64_t slotOf(const Manifest& m) { return m.chunkCount() ? m.storedChunkLength(0) : 0; }

// Creates the tables of a new store or brings an older one to kSchemaVersion
// (refusing what cannot be); dropDeadImports runs first where a conversion
// needs it (schema 1's take-over).
Status openSchema(sqlite3* db, const std::function<Status()>& dropDeadImports);

// Data files no row names: left by a crash between a row's deletion and its
// file's. The folder is listed before the rows are read, and a row is always
// committed before its file is created, so a file another process is making
// now is either not listed yet or already has its row.
Status dropOrphanDataFiles(sqlite3* db, DataFiles& files);

// Inside the caller's transaction: copies every chunk of file `num` (in the
// data file `from`, or in `blobs`) to the same offsets in `to`, and marks
// them as in the data file (blob_id 0). Returns the bytes copied.
Result<std::uint64_t> moveChunks(sqlite3* db, DataFiles& files, std::int64_t num, const std::string& from,
                                 std::uint64_t slot, const std::string& to);

// A kept file that is gone (moved or deleted by its owner), is no longer a
// regular file, or whose recorded stamp (size, modification time) changed:
// its chunks are not there any more (or not those), so they count as
// missing, and new ones go to the store's own data file. Runs at open, before the
// store counts what it holds.
Status forgetVanishedKeptFiles(sqlite3* db);

}  // namespace p2pcdn::storage::sql
