// SqliteStorage: the native persistent chunk store (layout in docs/hacking.md).
//
// Metadata (manifests, which chunks are present, pins, LRU ticks) in one
// database file in WAL mode with synchronous=NORMAL (or OFF with
// Durability::kProcessCrash, see chunk_storage.hpp); chunk bytes in one data
// file per stored file (DataFiles), each chunk written once at its offset.
// A chunk is written and its row inserted in one transaction (the write lock
// held across both, so another process's eviction cannot punch a hole under
// it): after a crash (kill -9 at any moment) a reopened store holds only
// chunks whose row committed, whose bytes the kernel already had. Before each
// checkpoint (the moment WAL commits become durable) the data files written
// since are fdatasync'ed, so a row that survives a power loss has its bytes.
// Every read can be verified against the manifest. Access ticks for LRU are
// batched in memory and flushed in one transaction, so reads cost no write
// each. Chunks of a schema 2 store stay in its `blobs` table and are read there.
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "p2pcdn/chunk_storage.hpp"
#include "storage/data_files.hpp"
#include "storage/locked.hpp"
#include "storage/sqlite_db.hpp"
#include "storage/staged.hpp"

namespace p2pcdn {
namespace {

namespace sql = storage::sql;
using sql::Stmt;
using sql::slotOf;

// WAL size at which it is checkpointed. Each checkpoint syncs the data files,
// the WAL and the database: SQLite's default (1000 pages, 4 MiB here) made a
// 1 GiB add checkpoint ~12 times (RESULTS.md, 2026-12-04).
constexpr std::int64_t kCheckpointBytes = 32 << 20;

constexpr std::size_t kTouchFlushThreshold = 1024;

class SqliteStorage final : public ChunkStorage {
  // Where a file's chunks are: its data file, chunk i at i x slot; or, for
  // a file kept outside the store, `path`.
  struct Place {
    std::string data;
    std::uint64_t slot = 0;
    std::string path;
    bool external() const { return !path.empty(); }
    const std::string& key() const { return external() ? path : data; }  // for DataFiles
  };
  struct FileEntry {
    std::int64_t num = 0;
    Manifest manifest;
    Place place;
  };
  struct Victim {  // a chunk to delete
    std::int64_t num = 0, idx = 0;
    Place place;
    std::uint64_t size = 0;
  };
  struct Import {
    StagedChunks staged;
    Place place;  // slot: the first chunk's length
  };


 public:
  SqliteStorage(sqlite3* db, StorageOptions o, std::filesystem::path dataDir)
      : db_(db), options_(o), files_(std::move(dataDir), o.durability == Durability::kPowerLoss) {}
  ~SqliteStorage() override {
    (void)flushTouches();
    (void)files_.sync();  // before the last connection's checkpoint in close
    for (auto& s : stmts_) s.reset();
    sqlite3_close_v2(db_);
  }

  Status init() {
    P2PCDN_TRY(files_.open());
    P2PCDN_TRY(sql::openSchema(db_, [this] { return dropDeadImports(); }));
    // Imports that never committed (their process died) are dropped. An
    // import's row holds its process id in `staging`, so the imports of other
    // live processes sharing the store are left alone.
    P2PCDN_TRY(dropDeadImports());
    P2PCDN_TRY(sql::dropOrphanDataFiles(db_, files_));
    P2PCDN_TRY(sql::forgetVanishedKeptFiles(db_));
    {
      Stmt ps;
      P2PCDN_TRY(prepare(ps, "PRAGMA page_size"));
      if (sqlite3_step(ps.get()) == SQLITE_ROW) pageSize_ = std::max<std::int64_t>(sqlite3_column_int64(ps.get(), 0), 512);
    }
    sqlite3_wal_hook(db_, &SqliteStorage::walHook, this);
    Stmt s;
    // The quota counts the store's own files, not the kept ones (the user's).
    P2PCDN_TRY(prepare(s,
                       "SELECT COALESCE(SUM(CASE WHEN f.path IS NULL THEN c.size ELSE 0 END),0), COUNT(*), "
                       "COALESCE(MAX(c.last_access),0) FROM chunks c JOIN files f ON f.num=c.file_num"));
    int rc = sqlite3_step(s.get());
    if (rc != SQLITE_ROW) return dbError("open store", rc);
    used_ = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 0));
    chunkCount_ = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 1));
    tick_ = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 2));
    if (options_.durability == Durability::kProcessCrash) {
      P2PCDN_TRY(exec("PRAGMA synchronous=OFF", "open store"));
    }
    return {};
  }

  // Called by SQLite after each commit in WAL mode (it replaces the
  // auto-checkpoint): at kCheckpointBytes, the data files written since the
  // last checkpoint are synced first, then the WAL is checkpointed (which
  // syncs the WAL, making its commits durable). A failed sync skips it.
  static int walHook(void* self, sqlite3* db, const char* name, int pages) {
    auto* me = static_cast<SqliteStorage*>(self);
    if (std::int64_t{pages} * me->pageSize_ < kCheckpointBytes) return SQLITE_OK;
    if (!me->files_.sync()) return SQLITE_OK;
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
  }

  // The files row of a manifest (made, or its pin raised).
  Result<FileId> insertManifest(const Manifest& m, bool pinned) {
    auto enc = encodeManifest(m);
    if (!enc) return fail(enc.error());
    FileId id = manifestId(*enc);
    sqlite3_stmt* s = stmt(kInsertFile,
                           "INSERT INTO files(file_id, pinned, manifest, slot, data) "
                           "VALUES(?1, ?2, ?3, ?4, lower(hex(randomblob(8)))) "
                           "ON CONFLICT(file_id) DO UPDATE SET pinned = MAX(pinned, excluded.pinned)");
    if (!s) return dbError("store manifest", SQLITE_ERROR);
    sqlite3_bind_blob(s, 1, id.bytes.data(), Hash::kSize, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, pinned ? 1 : 0);
    sqlite3_bind_blob(s, 3, enc->data(), static_cast<int>(enc->size()), SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, static_cast<sqlite3_int64>(slotOf(m)));
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return dbError("store manifest", rc);
    return id;
  }

  void storeManifest(const Manifest& m, bool pinned, Callback<FileId> done) override {
    auto inserted = insertManifest(m, pinned);
    if (!inserted) return done(inserted);
    const FileId id = *inserted;
    if (auto p = pendingKeep_.find(id); p != pendingKeep_.end()) {
      const std::string path = p->second;
      pendingKeep_.erase(p);
      if (!m.encryption) {  // an encrypted file's chunks stay in the store
        auto f = lookup(id, "store manifest");
        if (!f) return done(fail(f.error()));
        if (auto st = keep(**f, path); !st) return done(fail(st.error()));
      }
    }
    done(id);
  }

  void adoptFile(const Manifest& m, const std::filesystem::path& path, FileStamp stamp, bool pinned,
                 Callback<FileId> done) override {
    const char* op = "add in place";
    if (m.encryption) {
      return done(fail(Errc::kUnsupported, op, "an encrypted file's chunks are ciphertext: they are kept in the store"));
    }
    std::error_code ec;
    const std::string abs = std::filesystem::absolute(path, ec).lexically_normal().string();
    if (ec || abs.empty()) return done(fail(Errc::kInvalidArgument, op, "bad path " + path.string()));
    auto now = stampOf(abs);
    if (!now) return done(fail(now.error()));
    if (*now != stamp || now->size != m.size) {
      return done(fail(Errc::kInvalidArgument, op, abs + " changed while it was being added"));
    }
    FileId id;
    FileEntry* entry = nullptr;
    if (Status tx = immediate(op, [&]() -> Status {
          auto inserted = insertManifest(m, pinned);
          if (!inserted) return fail(inserted.error());
          id = *inserted;
          auto f = lookup(id, op);
          if (!f) return fail(f.error());
          entry = *f;
          P2PCDN_TRY(deleteWhere(entry->num));  // a copy it held before
          P2PCDN_TRY(setPath(entry->num, abs, *now));
          Stmt s;
          P2PCDN_TRY(prepare(s, "INSERT INTO chunks(file_num, idx, size, last_access, blob_id) VALUES(?1, ?2, ?3, ?4, 0)"));
          for (ChunkIndex i = 0; i < m.chunkCount(); ++i) {
            sqlite3_stmt* q = s.fresh();
            sqlite3_bind_int64(q, 1, entry->num);
            sqlite3_bind_int64(q, 2, i);
            sqlite3_bind_int64(q, 3, static_cast<sqlite3_int64>(m.storedChunkLength(i)));
            sqlite3_bind_int64(q, 4, static_cast<sqlite3_int64>(++tick_));
            if (int rc = sqlite3_step(q); rc != SQLITE_DONE) return dbError(op, rc);
          }
          return {};
        });
        !tx) {
      cache_.erase(id);  // the counters are re-read at the next open; the cache must not lie meanwhile
      return done(fail(tx.error()));
    }
    chunkCount_ += m.chunkCount();
    const Place old = entry->place;
    entry->place.path = abs;
    if (old.path != abs) files_.remove(old.key());  // the store's own copy goes; a kept one elsewhere is left
    done(id);
  }

  void keepFileAt(const FileId& id, const std::filesystem::path& path, Callback<void> done) override {
    std::error_code ec;
    const std::string abs = std::filesystem::absolute(path, ec).lexically_normal().string();
    if (ec || abs.empty()) return done(fail(Errc::kInvalidArgument, "keep file", "bad path " + path.string()));
    auto f = lookup(id, "keep file");
    if (!f) {
      if (f.error().code() != Errc::kNotFound) return done(fail(f.error()));
      pendingKeep_[id] = abs;  // applied when its manifest is stored
      return done({});
    }
    done(keep(**f, abs));
  }

  void finishKeptFile(const FileId& id, const std::filesystem::path& to, Callback<void> done) override {
    const char* op = "finish kept file";
    auto f = lookup(id, op);
    if (!f) return done(fail(f.error()));
    FileEntry& file = **f;
    if (file.place.path.empty()) return done(fail(Errc::kUnsupported, op, id.hex() + " is kept in the store"));
    auto present = presentCount(file.num);
    if (!present) return done(fail(present.error()));
    if (*present != file.manifest.chunkCount()) {
      return done(fail(Errc::kInvalidArgument, op, id.hex() + " is not complete"));
    }
    std::error_code ec;
    const std::string target = std::filesystem::absolute(to, ec).lexically_normal().string();
    if (ec) return done(fail(Errc::kInvalidArgument, op, "bad path " + to.string()));
    if (auto st = files_.finish(file.place.path, file.manifest.size); !st) return done(st);
    if (auto b = exec("BEGIN IMMEDIATE", op); !b) return done(b);
    std::filesystem::rename(file.place.path, target, ec);
    if (ec) {
      (void)exec("ROLLBACK", op);
      return done(fail(Errc::kIo, op, "rename " + file.place.path + " -> " + target + ": " + ec.message()));
    }
    auto stamp = stampOf(target);
    if (auto st = stamp ? setPath(file.num, target, *stamp) : Status(fail(stamp.error())); !st) {
      std::filesystem::rename(target, file.place.path, ec);
      (void)exec("ROLLBACK", op);
      return done(st);
    }
    if (auto c = exec("COMMIT", op); !c) return done(c);
    files_.remove(file.place.path);  // closes it (a kept file is never unlinked)
    file.place.path = target;
    done({});
  }

  void getManifest(const FileId& id, Callback<Manifest> done) override {
    auto f = lookup(id, "get manifest");
    if (!f) return done(fail(f.error()));
    done((*f)->manifest);
  }

  void storeChunk(const FileId& id, ChunkIndex index, ByteView data, Callback<void> done) override {
    const char* op = "store chunk";
    auto f = lookup(id, op);
    if (!f) return done(fail(f.error()));
    const FileEntry& file = **f;
    if (auto v = verifyChunk(file.manifest, index, data); !v) return done(v);
    // Already held: nothing to store, so nothing to evict for it.
    if (auto has = hasChunk(file.num, index); !has) {
      return done(fail(has.error()));
    } else if (*has) {
      return done({});
    }
    if (auto q = makeRoom(data.size(), file.num); !q) return done(q);
    if (auto st = insertChunk(file.num, file.place, index, data); !st) return done(st);
    done({});
  }

  void getChunk(const FileId& id, ChunkIndex index, ReadOptions o, Callback<Bytes> done) override {
    const char* op = "get chunk";
    auto f = lookup(id, op);
    if (!f) return done(fail(f.error()));
    const FileEntry& file = **f;
    // blob_id 0: in the data file; otherwise a schema 2 chunk in `blobs`.
    sqlite3_stmt* s = stmt(kGetChunk,
                           "SELECT c.size, c.blob_id, b.data FROM chunks c LEFT JOIN blobs b "
                           "ON c.blob_id<>0 AND b.id=c.blob_id WHERE c.file_num=?1 AND c.idx=?2");
    if (!s) return done(dbError(op, SQLITE_ERROR));
    sqlite3_bind_int64(s, 1, file.num);
    sqlite3_bind_int64(s, 2, index);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
      sqlite3_reset(s);
      return done(fail(Errc::kNotFound, op, "chunk " + std::to_string(index) + " of " + id.hex() + " not stored"));
    }
    if (rc != SQLITE_ROW) {
      sqlite3_reset(s);
      return done(dbError(op, rc));
    }
    const auto size = static_cast<std::size_t>(sqlite3_column_int64(s, 0));
    const bool inBlobs = sqlite3_column_int64(s, 1) != 0;
    Bytes out;
    if (inBlobs) {
      auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s, 2));
      out.assign(p, p + sqlite3_column_bytes(s, 2));
    }
    sqlite3_reset(s);
    if (!inBlobs) {
      auto kept = keptPath(file.num);  // as the database says now (see insertChunk)
      if (!kept) return done(fail(kept.error()));
      const Place here{file.place.data, file.place.slot, *kept};
      auto r = files_.read(here.key(), std::uint64_t{index} * here.slot, size);
      if (!r) {
        return done(fail(r.error().code(), op,
                         "chunk " + std::to_string(index) + " of " + id.hex() + ": " + r.error().detail()));
      }
      out = std::move(*r);
    }
    if (o.verify) {
      if (auto v = verifyChunk(file.manifest, index, out); !v) {
        return done(fail(Errc::kIntegrity, op,
                         "chunk " + std::to_string(index) + " of " + id.hex() + " is corrupt in the store (" +
                             v.error().detail() + ")"));
      }
    }
    touches_[{file.num, index}] = ++tick_;
    if (touches_.size() >= kTouchFlushThreshold) (void)flushTouches();
    done(std::move(out));
  }

  void deleteChunk(const FileId& id, ChunkIndex index, Callback<void> done) override {
    const char* op = "delete chunk";
    auto f = lookup(id, op);
    if (!f) return done(fail(f.error()));
    std::vector<Victim> deleted;
    if (auto st = immediate(op, [&] { return deleteOne(Victim{(*f)->num, index, (*f)->place}, deleted); }); !st) {
      return done(st);
    }
    releaseSpace(deleted);
    done({});
  }

  void deleteFile(const FileId& id, Callback<void> done) override {
    const char* op = "delete file";
    auto f = lookup(id, op);
    if (!f) return done(fail(f.error()));
    const std::int64_t num = (*f)->num;
    cache_.erase(id);
    done(dropFileRow(num, "DELETE FROM files WHERE num=?1 RETURNING data, path", op));
  }

  void setPinned(const FileId& id, bool pinned, Callback<void> done) override {
    auto f = lookup(id, "pin");
    if (!f) return done(fail(f.error()));
    Stmt s;
    if (auto p = prepare(s, "UPDATE files SET pinned=?1 WHERE num=?2"); !p) return done(p);
    sqlite3_bind_int(s.get(), 1, pinned ? 1 : 0);
    sqlite3_bind_int64(s.get(), 2, (*f)->num);
    int rc = sqlite3_step(s.get());
    if (rc != SQLITE_DONE) return done(dbError("pin", rc));
    done({});
  }

  void listFiles(Callback<std::vector<StoredFile>> done) override {
    const char* op = "list files";
    Stmt s;
    if (auto p = prepare(s,
                         "SELECT f.manifest, f.pinned, "
                         "  (SELECT COUNT(*) FROM chunks c WHERE c.file_num=f.num), "
                         "  (SELECT COALESCE(SUM(size),0) FROM chunks c WHERE c.file_num=f.num) "
                         "FROM files f WHERE f.staging=0 ORDER BY f.num");
        !p) {
      return done(fail(p.error()));
    }
    std::vector<StoredFile> out;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s.get(), 0));
      ByteView enc(p, static_cast<std::size_t>(sqlite3_column_bytes(s.get(), 0)));
      auto m = decodeManifest(enc);
      if (!m) {
        return done(fail(Errc::kIntegrity, op, "a stored manifest is corrupt: " + m.error().detail()));
      }
      StoredFile f;
      f.fileId = manifestId(enc);
      f.manifest = std::move(*m);
      f.pinned = sqlite3_column_int(s.get(), 1) != 0;
      f.chunksPresent = static_cast<std::uint32_t>(sqlite3_column_int64(s.get(), 2));
      f.bytesStored = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 3));
      out.push_back(std::move(f));
    }
    if (rc != SQLITE_DONE) return done(dbError(op, rc));
    done(std::move(out));
  }

  void presentChunks(const FileId& id, Callback<std::vector<bool>> done) override {
    const char* op = "present chunks";
    auto f = lookup(id, op);
    if (!f) return done(fail(f.error()));
    Stmt s;
    if (auto p = prepare(s, "SELECT idx FROM chunks WHERE file_num=?1"); !p) return done(fail(p.error()));
    sqlite3_bind_int64(s.get(), 1, (*f)->num);
    std::vector<bool> bits((*f)->manifest.chunkCount());
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      auto i = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 0));
      if (i < bits.size()) bits[i] = true;
    }
    if (rc != SQLITE_DONE) return done(dbError(op, rc));
    done(std::move(bits));
  }

  void usage(Callback<StorageUsage> done) override {
    Stmt s;
    if (auto p = prepare(s, "SELECT COUNT(*) FROM files WHERE staging=0"); !p) return done(fail(p.error()));
    int rc = sqlite3_step(s.get());
    if (rc != SQLITE_ROW) return done(dbError("usage", rc));
    done(StorageUsage{used_, options_.quotaBytes, chunkCount_,
                      static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 0)), evicted_});
  }

  Status dropDeadImports() {
    std::vector<std::int64_t> dead;
    {
      Stmt s;
      P2PCDN_TRY(prepare(s, "SELECT num, staging FROM files WHERE staging<>0"));
      int rc;
      while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
        auto pid = static_cast<pid_t>(sqlite3_column_int64(s.get(), 1));
        bool alive = pid > 0 && pid != ::getpid() && (::kill(pid, 0) == 0 || errno == EPERM);
        if (!alive) dead.push_back(sqlite3_column_int64(s.get(), 0));
      }
      if (rc != SQLITE_DONE) return dbError("open store", rc);
    }
    for (std::int64_t num : dead) P2PCDN_TRY(dropStaged(num));
    return {};
  }

  void beginImport(Callback<ImportId> done) override {
    Stmt s;
    if (auto p = prepare(s,
                         "INSERT INTO files(file_id, staging, manifest, data) "
                         "VALUES(randomblob(32), ?1, x'', lower(hex(randomblob(8)))) RETURNING num, data");
        !p) {
      return done(fail(p.error()));
    }
    sqlite3_bind_int64(s.get(), 1, ::getpid());
    int rc = sqlite3_step(s.get());
    if (rc != SQLITE_ROW) return done(dbError("begin import", rc));
    auto num = static_cast<ImportId>(sqlite3_column_int64(s.get(), 0));
    imports_[num].place.data = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 1));
    rc = sqlite3_step(s.get());
    if (rc != SQLITE_DONE) return done(dbError("begin import", rc));
    done(num);
  }

  void importChunk(ImportId import, ChunkIndex index, ByteView data, Callback<void> done) override {
    const char* op = "import chunk";
    auto it = imports_.find(import);
    if (it == imports_.end()) return done(fail(Errc::kNotFound, op, "no such import"));
    if (index >= kMaxChunkCount || data.size() > kMaxChunkSize + kAeadTagSize) {
      return done(fail(Errc::kInvalidArgument, op, "index or size out of range"));
    }
    Import& imp = it->second;
    if (imp.staged.chunks.count(index)) return done(fail(Errc::kInvalidArgument, op, "chunk imported twice"));
    // The slot is the longest chunk so far (every chunk but the last has the
    // manifest's length; commitImport checks it). A longer one moves those
    // already staged: the last chunk first is the one case.
    if (data.size() > imp.place.slot) {
      if (auto st = relocate(imp, data.size()); !st) return done(st);
    }
    auto num = static_cast<std::int64_t>(import);
    if (auto q = makeRoom(data.size(), num); !q) return done(q);
    if (auto st = insertChunk(num, imp.place, index, data); !st) return done(st);
    imp.staged.add(index, data);
    done({});
  }

  void commitImport(ImportId import, const Manifest& m, bool pinned, Callback<FileId> done) override {
    const char* op = "commit import";
    auto it = imports_.find(import);
    if (it == imports_.end()) return done(fail(Errc::kNotFound, op, "no such import"));
    if (auto st = it->second.staged.matches(m); !st) return done(fail(st.error()));
    if (m.chunkCount() > 1 && it->second.place.slot != slotOf(m)) {
      return done(fail(Errc::kInvalidArgument, op, "the staged chunks are not at the manifest's chunk length"));
    }
    auto enc = encodeManifest(m);
    if (!enc) return done(fail(enc.error()));
    FileId id = manifestId(*enc);
    auto num = static_cast<std::int64_t>(import);
    if (auto existing = lookup(id, op); existing) {
      // Already stored (the same manifest added twice): keep the old copy.
      imports_.erase(it);
      (void)dropStaged(num);
      if (pinned) setPinned(id, true, [](Status) {});
      return done(id);
    }
    Stmt s;
    if (auto p = prepare(s, "UPDATE files SET file_id=?1, manifest=?2, pinned=?3, staging=0, slot=?4 WHERE num=?5");
        !p) {
      return done(fail(p.error()));
    }
    sqlite3_bind_blob(s.get(), 1, id.bytes.data(), Hash::kSize, SQLITE_STATIC);
    sqlite3_bind_blob(s.get(), 2, enc->data(), static_cast<int>(enc->size()), SQLITE_STATIC);
    sqlite3_bind_int(s.get(), 3, pinned ? 1 : 0);
    sqlite3_bind_int64(s.get(), 4, static_cast<sqlite3_int64>(it->second.place.slot));
    sqlite3_bind_int64(s.get(), 5, num);
    int rc = sqlite3_step(s.get());
    if (rc != SQLITE_DONE) return done(dbError(op, rc));
    imports_.erase(it);
    done(id);
  }

  void abortImport(ImportId import, Callback<void> done) override {
    if (imports_.erase(import) == 0) return done(fail(Errc::kNotFound, "abort import", "no such import"));
    done(dropStaged(static_cast<std::int64_t>(import)));
  }

 private:
  // Moves a file's chunks into `path` (kept outside the store) and records
  // it, under one write lock; the store's own data file then goes.
  Status keep(FileEntry& file, const std::string& path) {
    const char* op = "keep file";
    if (file.manifest.encryption) {
      return fail(Errc::kUnsupported, op, "an encrypted file's chunks are ciphertext: it stays in the store");
    }
    if (file.place.path == path) return {};
    // Made now, so that another process opening the store meanwhile does not
    // take a kept file without chunks yet for one that vanished.
    P2PCDN_TRY(files_.write(path, 0, {}));
    std::uint64_t ownBytes = 0;
    if (Status tx = immediate(op, [&]() -> Status {
          auto moved = sql::moveChunks(db_, files_, file.num, file.place.key(), file.place.slot, path);
          if (!moved) return fail(moved.error());
          if (!file.place.external()) ownBytes = *moved;
          return setPath(file.num, path);
        });
        !tx) {
      return tx;
    }
    used_ -= ownBytes;
    const Place old = file.place;
    file.place.path = path;
    files_.remove(old.key());  // the store's own data file is unlinked; a kept one only closed
    return {};
  }

  // A kept file's path ("": none) and, once its content is complete, its stamp.
  Status setPath(std::int64_t num, const std::string& path, std::optional<FileStamp> stamp = std::nullopt) {
    Stmt s;
    P2PCDN_TRY(prepare(s, "UPDATE files SET path=?1, path_size=?2, path_mtime=?3 WHERE num=?4"));
    if (path.empty()) {
      sqlite3_bind_null(s.get(), 1);
    } else {
      sqlite3_bind_text(s.get(), 1, path.c_str(), -1, SQLITE_TRANSIENT);
    }
    if (stamp) {
      sqlite3_bind_int64(s.get(), 2, static_cast<sqlite3_int64>(stamp->size));
      sqlite3_bind_int64(s.get(), 3, stamp->mtimeNs);
    }
    sqlite3_bind_int64(s.get(), 4, num);
    if (int rc = sqlite3_step(s.get()); rc != SQLITE_DONE) return dbError("keep file", rc);
    return {};
  }

  Result<std::string> keptPath(std::int64_t num) {
    sqlite3_stmt* s = stmt(kKeptPath, "SELECT path FROM files WHERE num=?1");
    if (!s) return dbError("store chunk", SQLITE_ERROR);
    sqlite3_bind_int64(s, 1, num);
    int rc = sqlite3_step(s);
    std::string path = rc == SQLITE_ROW ? text(s, 0) : "";
    sqlite3_reset(s);
    if (rc != SQLITE_ROW) return dbError("store chunk", rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc);
    return path;
  }

  Result<std::uint64_t> presentCount(std::int64_t num) {
    Stmt s;
    P2PCDN_TRY(prepare(s, "SELECT COUNT(*) FROM chunks WHERE file_num=?1"));
    sqlite3_bind_int64(s.get(), 1, num);
    if (int rc = sqlite3_step(s.get()); rc != SQLITE_ROW) return dbError("count chunks", rc);
    return static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 0));
  }

  // A staged import's data file goes first: nobody reads staged chunks, and
  // on a full disk the rows cannot be deleted (the WAL needs room) until it
  // is gone.
  Status dropStaged(std::int64_t num) {
    Stmt s;
    P2PCDN_TRY(prepare(s, "SELECT data FROM files WHERE num=?1 AND staging<>0"));
    sqlite3_bind_int64(s.get(), 1, num);
    if (sqlite3_step(s.get()) == SQLITE_ROW) files_.remove(text(s.get(), 0));
    sqlite3_reset(s.get());
    return dropFileRow(num, "DELETE FROM files WHERE num=?1 AND staging<>0 RETURNING data, path", "drop import");
  }

  // Deletes a file's chunk rows and its row (`sql`, binding ?1 to num and
  // returning the data file name and kept path) in one transaction, then its
  // data file: a crash in between leaves an orphan that the next open
  // removes. A kept file is left where it is.
  Status dropFileRow(std::int64_t num, const char* sql, const char* op) {
    std::string data, path;
    if (Status tx = immediate(op, [&]() -> Status {
      P2PCDN_TRY(deleteWhere(num));
      Stmt s;
      P2PCDN_TRY(prepare(s, sql));
      sqlite3_bind_int64(s.get(), 1, num);
      int rc;
      while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
        data = text(s.get(), 0);
        path = text(s.get(), 1);
      }
      return rc == SQLITE_DONE ? Status{} : Status(dbError(op, rc));
    }); !tx) {
      return tx;
    }
    if (!data.empty()) files_.remove(data);
    if (!path.empty()) files_.remove(path);  // closed, not removed
    return {};
  }


  // Moves an import's staged chunks to a longer slot, highest index first so
  // that no chunk is overwritten before it moved. Staged chunks are dropped
  // by a crash anyway, so this needs no transaction.
  Status relocate(Import& imp, std::uint64_t slot) {
    for (auto it = imp.staged.chunks.rbegin(); it != imp.staged.chunks.rend(); ++it) {
      const std::uint64_t i = it->first;
      auto bytes = files_.read(imp.place.data, i * imp.place.slot, it->second.second);
      if (!bytes) return fail(bytes.error());
      P2PCDN_TRY(files_.write(imp.place.data, i * slot, *bytes));
    }
    imp.place.slot = slot;
    return {};
  }
  enum StmtId { kInsertFile, kInsertChunk, kGetChunk, kHasChunk, kKeptPath, kStmtCount };

  // The SQLite helpers (sqlite_db.hpp) on this store's connection.
  Unexpected dbError(const char* op, int rc) { return sql::dbError(db_, op, rc); }
  Status exec(const char* q, const char* op) { return sql::exec(db_, q, op); }
  Status immediate(const char* op, const std::function<Status()>& body) { return sql::immediate(db_, op, body); }
  Status prepare(Stmt& st, const char* q) { return sql::prepare(db_, st, q); }
  static std::string text(sqlite3_stmt* st, int column) { return sql::text(st, column); }

  // The bytes go to the data file and the row to the database under one
  // write lock (BEGIN IMMEDIATE), so that no other process's eviction of the
  // same chunk punches its hole between the two.
  Status insertChunk(std::int64_t num, const Place& place, ChunkIndex index, ByteView data) {
    const char* op = "store chunk";
    P2PCDN_TRY(exec("BEGIN IMMEDIATE", op));
    auto has = hasChunk(num, index);  // another process may have stored it since we looked
    if (!has) {
      (void)exec("ROLLBACK", op);
      return fail(has.error());
    }
    if (*has) return exec("COMMIT", op);
    // Where the file's chunks go, as the database says now: another process
    // may have moved them since this one cached the file.
    auto kept = keptPath(num);
    if (!kept) {
      (void)exec("ROLLBACK", op);
      return fail(kept.error());
    }
    const Place here{place.data, place.slot, *kept};
    if (auto w = files_.write(here.key(), std::uint64_t{index} * here.slot, data); !w) {
      (void)exec("ROLLBACK", op);
      return w;
    }
    sqlite3_stmt* s = stmt(kInsertChunk,
                           "INSERT INTO chunks(file_num, idx, size, last_access, blob_id) VALUES(?1, ?2, ?3, ?4, 0)");
    if (!s) return rollback(op, SQLITE_ERROR);
    sqlite3_bind_int64(s, 1, num);
    sqlite3_bind_int64(s, 2, index);
    sqlite3_bind_int64(s, 3, static_cast<sqlite3_int64>(data.size()));
    sqlite3_bind_int64(s, 4, static_cast<sqlite3_int64>(++tick_));
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return rollback(op, rc);
    P2PCDN_TRY(exec("COMMIT", op));
    if (!here.external()) used_ += data.size();
    ++chunkCount_;
    return {};
  }

  Unexpected rollback(const char* op, int rc) {
    Unexpected e = dbError(op, rc);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  }

  Result<bool> hasChunk(std::int64_t num, ChunkIndex index) {
    sqlite3_stmt* s = stmt(kHasChunk, "SELECT 1 FROM chunks WHERE file_num=?1 AND idx=?2");
    if (!s) return dbError("store chunk", SQLITE_ERROR);
    sqlite3_bind_int64(s, 1, num);
    sqlite3_bind_int64(s, 2, index);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return dbError("store chunk", rc);
  }

  // Cached prepared statements for the hot paths.
  sqlite3_stmt* stmt(StmtId id, const char* sql) {
    auto& s = stmts_[id];
    if (!s) {
      s = std::make_unique<Stmt>();
      if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, s->out(), nullptr) != SQLITE_OK) {
        s.reset();
        return nullptr;
      }
    }
    return s->fresh();
  }

  Result<FileEntry*> lookup(const FileId& id, const char* op) {
    if (auto it = cache_.find(id); it != cache_.end()) return &it->second;
    Stmt s;
    P2PCDN_TRY(prepare(s, "SELECT num, manifest, data, slot, path FROM files WHERE file_id=?1 AND staging=0"));
    sqlite3_bind_blob(s.get(), 1, id.bytes.data(), Hash::kSize, SQLITE_STATIC);
    int rc = sqlite3_step(s.get());
    if (rc == SQLITE_DONE) return fail(Errc::kNotFound, op, "no file " + id.hex() + " in the store");
    if (rc != SQLITE_ROW) return dbError(op, rc);
    auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s.get(), 1));
    ByteView enc(p, static_cast<std::size_t>(sqlite3_column_bytes(s.get(), 1)));
    auto m = decodeManifest(enc);
    if (!m || manifestId(enc) != id) {
      return fail(Errc::kIntegrity, op, "stored manifest of " + id.hex() + " is corrupt");
    }
    FileEntry e{sqlite3_column_int64(s.get(), 0), std::move(*m),
                Place{text(s.get(), 2), static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 3)), text(s.get(), 4)}};
    return &cache_.emplace(id, std::move(e)).first->second;
  }

  // Every chunk row of a file (its data file goes as a whole).
  Status deleteWhere(std::int64_t num) {
    Stmt s;
    P2PCDN_TRY(prepare(s,
                       "DELETE FROM chunks WHERE file_num=?1 RETURNING size, "
                       "(SELECT path IS NOT NULL FROM files WHERE num=?1)"));
    sqlite3_bind_int64(s.get(), 1, num);
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      if (sqlite3_column_int(s.get(), 1) == 0) used_ -= static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 0));
      --chunkCount_;
    }
    if (rc != SQLITE_DONE) return dbError("delete chunk", rc);
    return {};
  }

  // One chunk's row, inside the caller's transaction; a chunk whose bytes
  // are in its data file is added to `inFiles`, for releaseSpace once the
  // deletion committed (a hole punched before could outlive a rollback).
  Status deleteOne(const Victim& v, std::vector<Victim>& inFiles) {
    Stmt s;
    P2PCDN_TRY(prepare(s, "DELETE FROM chunks WHERE file_num=?1 AND idx=?2 RETURNING size, blob_id"));
    sqlite3_bind_int64(s.get(), 1, v.num);
    sqlite3_bind_int64(s.get(), 2, v.idx);
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      const auto size = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 0));
      if (!v.place.external()) used_ -= size;
      --chunkCount_;
      if (sqlite3_column_int64(s.get(), 1) == 0 && !v.place.external()) {
        inFiles.push_back(Victim{v.num, v.idx, v.place, size});
      }
    }
    if (rc != SQLITE_DONE) return dbError("delete chunk", rc);
    return {};
  }

  // Punches the holes of deleted chunks, under the write lock and only where
  // no row came back since (another process may have stored the chunk
  // again; its write and row share one such lock). Best effort: a crash
  // before leaves bytes nobody points at until the file goes.
  void releaseSpace(const std::vector<Victim>& deleted) {
    if (deleted.empty() || !exec("BEGIN IMMEDIATE", "evict")) return;
    for (const Victim& v : deleted) {
      auto has = hasChunk(v.num, static_cast<ChunkIndex>(v.idx));
      if (has && !*has) files_.release(v.place.data, static_cast<std::uint64_t>(v.idx) * v.place.slot, v.size);
    }
    (void)exec("COMMIT", "evict");
  }

  Status flushTouches() {
    if (touches_.empty()) return {};
    P2PCDN_TRY(exec("BEGIN", "record access"));
    Stmt s;
    Status st = prepare(s, "UPDATE chunks SET last_access=?1 WHERE file_num=?2 AND idx=?3");
    if (st) {
      for (const auto& [key, tick] : touches_) {
        sqlite3_stmt* q = s.fresh();
        sqlite3_bind_int64(q, 1, static_cast<sqlite3_int64>(tick));
        sqlite3_bind_int64(q, 2, key.first);
        sqlite3_bind_int64(q, 3, key.second);
        int rc = sqlite3_step(q);
        if (rc != SQLITE_DONE) {
          st = dbError("record access", rc);
          break;
        }
      }
    }
    touches_.clear();
    if (!st) {
      (void)exec("ROLLBACK", "record access");
      return st;
    }
    return exec("COMMIT", "record access");
  }

  // Evicts least-recently-used chunks of unpinned files other than `keepNum`.
  Status makeRoom(std::size_t bytes, std::int64_t keepNum) {
    if (used_ + bytes <= options_.quotaBytes) return {};
    P2PCDN_TRY(flushTouches());
    Stmt s;
    P2PCDN_TRY(prepare(s,
                       "SELECT c.file_num, c.idx, c.size, f.data, f.slot FROM chunks c JOIN files f ON f.num=c.file_num "
                       "WHERE f.pinned=0 AND f.path IS NULL AND c.file_num<>?1 ORDER BY c.last_access LIMIT 64"));
    while (used_ + bytes > options_.quotaBytes) {
      sqlite3_stmt* q = s.fresh();
      sqlite3_bind_int64(q, 1, keepNum);
      std::vector<Victim> victims;
      int rc;
      std::uint64_t freed = 0;
      while ((rc = sqlite3_step(q)) == SQLITE_ROW && used_ + bytes > options_.quotaBytes + freed) {
        victims.push_back(Victim{sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1),
                                 Place{text(q, 3), static_cast<std::uint64_t>(sqlite3_column_int64(q, 4)), {}}});
        freed += static_cast<std::uint64_t>(sqlite3_column_int64(q, 2));
      }
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) return dbError("evict", rc);
      sqlite3_reset(q);
      if (victims.empty()) {
        return fail(Errc::kQuotaExceeded, "store chunk",
                    "quota of " + std::to_string(options_.quotaBytes) + " bytes is full of pinned chunks");
      }
      std::vector<Victim> deleted;
      if (Status tx = immediate("evict", [&]() -> Status {
        for (const Victim& v : victims) P2PCDN_TRY(deleteOne(v, deleted));
        return {};
      }); !tx) {
        return tx;
      }
      evicted_ += victims.size();
      releaseSpace(deleted);
    }
    return {};
  }

  sqlite3* db_;
  StorageOptions options_;
  std::unique_ptr<Stmt> stmts_[kStmtCount];
  std::unordered_map<FileId, FileEntry, HashHasher> cache_;
  std::map<std::pair<std::int64_t, std::int64_t>, std::uint64_t> touches_;
  std::uint64_t used_ = 0;
  std::uint64_t chunkCount_ = 0;
  std::uint64_t tick_ = 0;
  std::uint64_t evicted_ = 0;
  std::map<ImportId, Import> imports_;
  std::unordered_map<FileId, std::string, HashHasher> pendingKeep_;  // keepFileAt before the manifest
  storage::DataFiles files_;
  std::int64_t pageSize_ = 4096;
};

}  // namespace

Result<std::unique_ptr<ChunkStorage>> openSqliteStorage(const std::filesystem::path& file, StorageOptions options) {
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return fail(Errc::kIo, "open store " + file.string(), detail);
  }
  sqlite3_extended_result_codes(db, 1);
  // The data files' folder sits beside the database, named like its -wal.
  auto s = std::make_unique<SqliteStorage>(db, options, std::filesystem::path(file.string() + "-chunks"));
  if (auto st = s->init(); !st) {
    return fail(st.error().code(), "open store " + file.string(), st.error().detail());
  }
  return storage::makeLocked(std::move(s));
}

}  // namespace p2pcdn
