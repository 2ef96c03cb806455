#include "storage/sqlite_db.hpp"

#include <filesystem>
#include <unordered_set>
#include <vector>

#include "p2pcdn/chunk_storage.hpp"
#include "storage/data_files.hpp"

namespace p2pcdn::storage::sql {
namespace {

// A new data file's name: 16 random hex digits, from SQLite's randomness.
constexpr const char* kNewDataName = "lower(hex(randomblob(8)))";

// A schema 1 store holds version 1 manifests under their old ids. Empty
// (once the imports of dead processes are dropped) it is taken over; with a
// file, or an import of a live (older) process, it is refused.
Status takeOverSchema1(sqlite3* db, const std::function<Status()>& dropDeadImports) {
  P2PCDN_TRY(dropDeadImports());
  Stmt s;
  P2PCDN_TRY(prepare(db, s, "SELECT COUNT(*) FROM files"));
  int rc = sqlite3_step(s.get());
  if (rc != SQLITE_ROW) return dbError(db, "open store", rc);
  if (sqlite3_column_int64(s.get(), 0) != 0) {
    return fail(Errc::kUnsupported, "open store",
                "schema version 1: its files have version 1 manifests, whose file ids changed in version 2; "
                "move the store aside and add the files again");
  }
  return exec(db, "UPDATE meta SET value=2 WHERE key='schema'", "open store");
}

Status convertSchema2Rows(sqlite3* db);

// Schema 2 -> 3 in one transaction: every file gets a data file name and
// its slot; its chunks stay in `blobs` (blob_id <> 0) and are read there.
Status convertSchema2(sqlite3* db) {
  return immediate(db, "open store", [db] { return convertSchema2Rows(db); });
}

Status convertSchema2Rows(sqlite3* db) {
  const char* op = "open store";
  {
    Stmt v;  // another process may have converted it since we looked
    P2PCDN_TRY(prepare(db, v, "SELECT value FROM meta WHERE key='schema'"));
    if (sqlite3_step(v.get()) == SQLITE_ROW && sqlite3_column_int(v.get(), 0) == kSchemaVersion) return {};
  }
  // (A store made as schema 3 and labelled older by hand has the columns.)
  if (!hasColumn(db, "files", "data")) P2PCDN_TRY(exec(db, "ALTER TABLE files ADD COLUMN data TEXT", op));
  if (!hasColumn(db, "files", "slot")) {
    P2PCDN_TRY(exec(db, "ALTER TABLE files ADD COLUMN slot INTEGER NOT NULL DEFAULT 0", op));
  }
  P2PCDN_TRY(exec(db, (std::string("UPDATE files SET data=") + kNewDataName + " WHERE data IS NULL").c_str(), op));
  std::vector<std::pair<std::int64_t, std::uint64_t>> slots;
  {
    Stmt q;
    P2PCDN_TRY(prepare(db, q, "SELECT num, manifest FROM files WHERE staging=0"));
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
      auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(q.get(), 1));
      auto m = decodeManifest(ByteView(p, static_cast<std::size_t>(sqlite3_column_bytes(q.get(), 1))));
      if (m) slots.emplace_back(sqlite3_column_int64(q.get(), 0), slotOf(*m));
    }
    if (rc != SQLITE_DONE) return dbError(db, op, rc);
  }
  Stmt u;
  P2PCDN_TRY(prepare(db, u, "UPDATE files SET slot=?1 WHERE num=?2"));
  for (auto [num, slot] : slots) {
    sqlite3_stmt* q = u.fresh();
    sqlite3_bind_int64(q, 1, static_cast<sqlite3_int64>(slot));
    sqlite3_bind_int64(q, 2, num);
    if (int rc = sqlite3_step(q); rc != SQLITE_DONE) return dbError(db, op, rc);
  }
  return exec(db, "UPDATE meta SET value=3 WHERE key='schema'", op);
}

}  // namespace

Errc errcFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Errc::kIntegrity;
    case SQLITE_FULL: return Errc::kQuotaExceeded;
    default: return Errc::kIo;
  }
}

Unexpected dbError(sqlite3* db, const char* op, int rc) {
  std::string detail = sqlite3_errmsg(db);
  if (rc != SQLITE_ERROR) detail += std::string(" [") + sqlite3_errstr(rc) + "]";
  return fail(errcFor(rc), op, detail);
}

Status exec(sqlite3* db, const char* sql, const char* op) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string detail = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return fail(errcFor(rc), op, detail);
  }
  return {};
}

Status prepare(sqlite3* db, Stmt& s, const char* sql) {
  int rc = sqlite3_prepare_v2(db, sql, -1, s.out(), nullptr);
  if (rc != SQLITE_OK) return dbError(db, "prepare", rc);
  return {};
}

std::string text(sqlite3_stmt* s, int column) {
  auto* t = sqlite3_column_text(s, column);
  return t ? reinterpret_cast<const char*>(t) : "";
}

bool hasColumn(sqlite3* db, const char* table, const char* column) {
  Stmt s;
  if (!prepare(db, s, (std::string("SELECT 1 FROM pragma_table_info('") + table + "') WHERE name=?1").c_str())) {
    return false;
  }
  sqlite3_bind_text(s.get(), 1, column, -1, SQLITE_STATIC);
  return sqlite3_step(s.get()) == SQLITE_ROW;
}

Status immediate(sqlite3* db, const char* op, const std::function<Status()>& body) {
  P2PCDN_TRY(exec(db, "BEGIN IMMEDIATE", op));
  if (Status st = body(); !st) {
    (void)exec(db, "ROLLBACK", op);
    return st;
  }
  return exec(db, "COMMIT", op);
}

Status openSchema(sqlite3* db, const std::function<Status()>& dropDeadImports) {
const char* setup =
      "PRAGMA page_size=4096;"  // a new store's: rows only (a schema 2 store keeps its 64 KiB pages)
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=NORMAL;"
      "PRAGMA foreign_keys=ON;"
      "PRAGMA busy_timeout=5000;"
      "PRAGMA journal_size_limit=67108864;"
      "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS files("
      "  num INTEGER PRIMARY KEY,"
      "  file_id BLOB NOT NULL UNIQUE,"
      "  pinned INTEGER NOT NULL DEFAULT 0,"
      "  staging INTEGER NOT NULL DEFAULT 0,"
      "  added_at INTEGER NOT NULL DEFAULT (unixepoch()),"
      "  manifest BLOB NOT NULL,"
      "  data TEXT,"
      "  slot INTEGER NOT NULL DEFAULT 0,"
      "  path TEXT,"
      "  path_size INTEGER,"
      "  path_mtime INTEGER);"
      "CREATE TABLE IF NOT EXISTS chunks("
      "  file_num INTEGER NOT NULL REFERENCES files(num) ON DELETE CASCADE,"
      "  idx INTEGER NOT NULL,"
      "  size INTEGER NOT NULL,"
      "  last_access INTEGER NOT NULL,"
      "  blob_id INTEGER NOT NULL,"
      "  PRIMARY KEY(file_num, idx)) WITHOUT ROWID;"
      "CREATE INDEX IF NOT EXISTS chunks_lru ON chunks(last_access);"
      "CREATE TABLE IF NOT EXISTS blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
      "CREATE TRIGGER IF NOT EXISTS chunks_drop_blob AFTER DELETE ON chunks "
      "  BEGIN DELETE FROM blobs WHERE id = old.blob_id; END;";
  P2PCDN_TRY(exec(db, setup, "open store"));
  {
    Stmt s;
    P2PCDN_TRY(prepare(db, s, "SELECT value FROM meta WHERE key='schema'"));
    int rc = sqlite3_step(s.get());
    if (rc == SQLITE_ROW) {
      auto v = sqlite3_column_int(s.get(), 0);
      sqlite3_reset(s.get());
      if (v == 1) P2PCDN_TRY(takeOverSchema1(db, dropDeadImports));
      if (v == 1 || v == 2) {
        P2PCDN_TRY(convertSchema2(db));
      } else if (v != kSchemaVersion) {
        return fail(Errc::kUnsupported, "open store", "schema version " + std::to_string(v));
      }
    } else if (rc == SQLITE_DONE) {
      P2PCDN_TRY(exec(db, "INSERT INTO meta(key, value) VALUES('schema', 3)", "open store"));
    } else {
      return dbError(db, "open store", rc);
    }
  }
  // Schema 3 as first committed had no kept files (files.path, and the
  // stamp of one whose content is complete).
  for (auto [column, type] : {std::pair{"path", "TEXT"}, {"path_size", "INTEGER"}, {"path_mtime", "INTEGER"}}) {
    if (!hasColumn(db, "files", column)) {
      const std::string alter = std::string("ALTER TABLE files ADD COLUMN ") + column + " " + type;
      P2PCDN_TRY(exec(db, alter.c_str(), "open store"));
    }
  }
  return {};
}

Status dropOrphanDataFiles(sqlite3* db, DataFiles& files) {
  const std::vector<std::string> listed = files.list();
  if (listed.empty()) return {};
  std::unordered_set<std::string> named;
  Stmt s;
  P2PCDN_TRY(prepare(db, s, "SELECT data FROM files WHERE data IS NOT NULL"));
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    named.insert(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0)));
  }
  if (rc != SQLITE_DONE) return dbError(db, "open store", rc);
  for (const std::string& name : listed) {
    if (!named.count(name)) files.remove(name);
  }
  return {};
}

Result<std::uint64_t> moveChunks(sqlite3* db, DataFiles& files, std::int64_t num, const std::string& from,
                                 std::uint64_t slot, const std::string& to) {
  const char* op = "keep file";
  std::uint64_t moved = 0;
  Stmt s;
  P2PCDN_TRY(prepare(db, s,
                     "SELECT c.idx, c.size, c.blob_id, b.data FROM chunks c LEFT JOIN blobs b "
                     "ON c.blob_id<>0 AND b.id=c.blob_id WHERE c.file_num=?1"));
  sqlite3_bind_int64(s.get(), 1, num);
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    const auto idx = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 0));
    const auto size = static_cast<std::size_t>(sqlite3_column_int64(s.get(), 1));
    Bytes bytes;
    if (sqlite3_column_int64(s.get(), 2) != 0) {
      auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s.get(), 3));
      bytes.assign(p, p + sqlite3_column_bytes(s.get(), 3));
    } else {
      auto r = files.read(from, idx * slot, size);
      if (!r) return fail(r.error());
      bytes = std::move(*r);
    }
    P2PCDN_TRY(files.write(to, idx * slot, bytes));
    moved += size;
  }
  if (rc != SQLITE_DONE) return dbError(db, op, rc);
  for (const char* q : {"DELETE FROM blobs WHERE id IN (SELECT blob_id FROM chunks WHERE file_num=?1 AND blob_id<>0)",
                        "UPDATE chunks SET blob_id=0 WHERE file_num=?1"}) {
    Stmt u;
    P2PCDN_TRY(prepare(db, u, q));
    sqlite3_bind_int64(u.get(), 1, num);
    if (int r = sqlite3_step(u.get()); r != SQLITE_DONE) return dbError(db, op, r);
  }
  return moved;
}

Status forgetVanishedKeptFiles(sqlite3* db) {
  std::vector<std::int64_t> gone;
  {
    Stmt s;
    P2PCDN_TRY(prepare(db, s, "SELECT num, path, path_size, path_mtime FROM files WHERE path IS NOT NULL"));
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      auto now = stampOf(text(s.get(), 1));
      const bool stamped = sqlite3_column_type(s.get(), 2) != SQLITE_NULL;
      const FileStamp then{static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 2)), sqlite3_column_int64(s.get(), 3)};
      if (!now || (stamped && *now != then)) gone.push_back(sqlite3_column_int64(s.get(), 0));
    }
    if (rc != SQLITE_DONE) return dbError(db, "open store", rc);
  }
  for (std::int64_t num : gone) {
    if (Status tx = immediate(db, "open store", [&]() -> Status {
      for (const char* q : {"DELETE FROM chunks WHERE file_num=?1",
                            "UPDATE files SET path=NULL, path_size=NULL, path_mtime=NULL WHERE num=?1"}) {
        Stmt s;
        P2PCDN_TRY(prepare(db, s, q));
        sqlite3_bind_int64(s.get(), 1, num);
        if (int rc = sqlite3_step(s.get()); rc != SQLITE_DONE) return dbError(db, "open store", rc);
      }
      return {};
    }); !tx) {
      return tx;
    }
  }
  return {};
}

}  // namespace p2pcdn::storage::sql
