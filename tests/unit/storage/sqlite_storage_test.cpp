// The ChunkStorage contract for the SQLite backend, plus what only a persistent
// store can get wrong: reopening, on-disk corruption and schema versions.
#include <sqlite3.h>

#include <fstream>

#include "storage_contract.hpp"

namespace p2pcdn::test {
namespace {

struct SqliteBackend {
  static Result<std::unique_ptr<ChunkStorage>> open(const std::filesystem::path& dir, StorageOptions o) {
    return openSqliteStorage(dir / "store.db", o);
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, StorageContract, ::testing::Types<SqliteBackend>);

// Runs one SQL statement on the database file directly, behind the store's back;
// ?1, if present, is bound to `blob`. Returns the number of rows changed.
int execSql(const std::filesystem::path& db, const std::string& sql, ByteView blob = {}) {
  sqlite3* h = nullptr;
  int changed = -1;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "open " << db << ": " << sqlite3_errmsg(h);
  } else {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(h);
    } else {
      if (sql.find("?1") != std::string::npos) {
        sqlite3_bind_blob(s, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
      }
      int rc = sqlite3_step(s);
      EXPECT_TRUE(rc == SQLITE_DONE || rc == SQLITE_ROW) << sql << ": " << sqlite3_errmsg(h);
      changed = sqlite3_changes(h);
    }
    sqlite3_finalize(s);
  }
  EXPECT_EQ(sqlite3_close(h), SQLITE_OK);
  return changed;
}

// Whether a query returns at least one row.
bool hasRow(const std::filesystem::path& db, const char* sql) {
  sqlite3* h = nullptr;
  bool found = false;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    found = sqlite3_prepare_v2(h, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
  }
  sqlite3_close(h);
  return found;
}

// One integer or text column of the first row of a query.
std::string queryText(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  std::string out;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW &&
        sqlite3_column_text(s, 0)) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(h);
  EXPECT_FALSE(out.empty()) << sql;
  return out;
}

// The data file of the store's only file.
std::filesystem::path dataFileOf(const std::filesystem::path& db) {
  return std::filesystem::path(db.string() + "-chunks") / queryText(db, "SELECT data FROM files");
}

// Overwrites the stored bytes of chunk `idx` (of the only file) in its data file.
void corruptChunk(const std::filesystem::path& db, ChunkIndex idx, ByteView bytes) {
  const std::uint64_t slot = std::stoull(queryText(db, "SELECT slot FROM files"));
  std::fstream f(dataFileOf(db), std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << dataFileOf(db);
  f.seekp(static_cast<std::streamoff>(idx * slot));
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f);
}

class SqliteStorageTest : public ::testing::Test {
 protected:
  std::filesystem::path dbPath() const { return dir_ / "store.db"; }

  std::unique_ptr<ChunkStorage> open(StorageOptions o = {}) {
    auto s = openSqliteStorage(dbPath(), o);
    EXPECT_TRUE(s.has_value()) << describe(s);
    return s ? std::move(*s) : nullptr;
  }

  TempDir dir_;
};

TEST_F(SqliteStorageTest, DataSurvivesReopen) {
  TestFile a = makeTestFile(3 * kChunk + 5, kChunk, 1);
  Manifest encrypted = sampleManifest(true);
  FileId encId;
  {
    auto s = open();
    ASSERT_TRUE(s);
    BlockingStorage b(*s);
    ASSERT_TRUE(b.storeManifest(a.manifest, true).has_value());
    for (ChunkIndex i : {0u, 1u, 3u}) P2PCDN_ASSERT_OK(b.storeChunk(a.id, i, a.chunks[i]));
    auto id = b.storeManifest(encrypted, false);
    ASSERT_TRUE(id.has_value());
    encId = *id;
  }
  auto s = open();
  ASSERT_TRUE(s);
  BlockingStorage b(*s);
  EXPECT_EQ(*b.getManifest(a.id), a.manifest);
  EXPECT_EQ(*b.getManifest(encId), encrypted);
  for (ChunkIndex i : {0u, 1u, 3u}) {
    auto c = b.getChunk(a.id, i);
    ASSERT_TRUE(c.has_value()) << describe(c);
    EXPECT_EQ(*c, a.chunks[i]);
  }
  EXPECT_EQ(codeOf(b.getChunk(a.id, 2)), Errc::kNotFound);
  EXPECT_EQ(*b.presentChunks(a.id), (std::vector<bool>{true, true, false, true}));
  // Usage is recomputed from the database.
  auto u = b.usage();
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->bytesUsed, 2u * kChunk + 5u);
  EXPECT_EQ(u->chunks, 3u);
  EXPECT_EQ(u->files, 2u);
  auto files = b.listFiles();
  ASSERT_TRUE(files.has_value());
  ASSERT_EQ(files->size(), 2u);
  for (const StoredFile& f : *files) {
    if (f.fileId == a.id) {
      EXPECT_TRUE(f.pinned);
      EXPECT_EQ(f.chunksPresent, 3u);
    } else {
      EXPECT_EQ(f.fileId, encId);
      EXPECT_FALSE(f.pinned);
    }
  }
  // Deletions persist too.
  P2PCDN_ASSERT_OK(b.deleteChunk(a.id, 0));
  s.reset();
  s = open();
  BlockingStorage b2(*s);
  EXPECT_EQ(*b2.presentChunks(a.id), (std::vector<bool>{false, true, false, true}));
  EXPECT_EQ(b2.usage()->bytesUsed, kChunk + 5u);
}

TEST_F(SqliteStorageTest, RecencySurvivesReopen) {
  StorageOptions o;
  o.quotaBytes = 3 * kChunk;
  TestFile a = makeTestFile(3 * kChunk, kChunk, 2);
  TestFile b = makeTestFile(kChunk, kChunk, 3);
  {
    auto s = open(o);
    ASSERT_TRUE(s);
    BlockingStorage st(*s);
    ASSERT_TRUE(st.storeManifest(a.manifest).has_value());
    for (ChunkIndex i = 0; i < 3; ++i) P2PCDN_ASSERT_OK(st.storeChunk(a.id, i, a.chunks[i]));
    ASSERT_TRUE(st.getChunk(a.id, 0).has_value());  // 1 is now the least recently used
  }
  auto s = open(o);
  ASSERT_TRUE(s);
  BlockingStorage st(*s);
  ASSERT_TRUE(st.storeManifest(b.manifest).has_value());
  P2PCDN_ASSERT_OK(st.storeChunk(b.id, 0, b.chunks[0]));
  EXPECT_EQ(*st.presentChunks(a.id), (std::vector<bool>{true, false, true}));
  // Newly stored chunks are newer than anything from before the reopen.
  ASSERT_TRUE(st.getChunk(a.id, 0).has_value());
  TestFile c = makeTestFile(kChunk, kChunk, 4);
  ASSERT_TRUE(st.storeManifest(c.manifest).has_value());
  P2PCDN_ASSERT_OK(st.storeChunk(c.id, 0, c.chunks[0]));
  EXPECT_EQ(*st.presentChunks(a.id), (std::vector<bool>{true, false, false}));
  EXPECT_EQ(*st.presentChunks(b.id), (std::vector<bool>{true}));
}

TEST_F(SqliteStorageTest, CorruptChunkInTheStoreIsDetected) {
  TestFile a = makeTestFile(3 * kChunk, kChunk, 5);
  {
    auto s = open();
    ASSERT_TRUE(s);
    BlockingStorage b(*s);
    ASSERT_TRUE(b.storeManifest(a.manifest).has_value());
    for (ChunkIndex i = 0; i < 3; ++i) P2PCDN_ASSERT_OK(b.storeChunk(a.id, i, a.chunks[i]));
  }
  Bytes flipped = a.chunks[1];
  flipped[77] ^= 0x20;
  corruptChunk(dbPath(), 1, flipped);
  // The data file cut one byte into chunk 2 (behind the store's back).
  std::filesystem::resize_file(dataFileOf(dbPath()), 2 * kChunk + 1);

  auto s = open();
  ASSERT_TRUE(s);
  BlockingStorage b(*s);
  auto r = b.getChunk(a.id, 1);
  EXPECT_EQ(codeOf(r), Errc::kIntegrity) << describe(r);
  EXPECT_EQ(codeOf(b.getChunk(a.id, 2)), Errc::kIntegrity);
  // Unverified reads return what is there.
  auto raw = b.getChunk(a.id, 1, ReadOptions{false});
  ASSERT_TRUE(raw.has_value()) << describe(raw);
  EXPECT_EQ(*raw, flipped);
  // Bytes that are not there are an integrity error even unverified.
  auto rawShort = b.getChunk(a.id, 2, ReadOptions{false});
  EXPECT_EQ(codeOf(rawShort), Errc::kIntegrity) << describe(rawShort);
  // The intact chunk is fine, and a good copy can replace a bad one.
  EXPECT_EQ(*b.getChunk(a.id, 0), a.chunks[0]);
  for (ChunkIndex i : {1u, 2u}) {
    P2PCDN_ASSERT_OK(b.deleteChunk(a.id, i));
    P2PCDN_ASSERT_OK(b.storeChunk(a.id, i, a.chunks[i]));
    EXPECT_EQ(*b.getChunk(a.id, i), a.chunks[i]);
  }
  // A data file removed behind the store's back: every chunk is an integrity error.
  s.reset();
  std::filesystem::remove(dataFileOf(dbPath()));
  auto again = open();
  ASSERT_TRUE(again);
  auto gone = BlockingStorage(*again).getChunk(a.id, 0);
  EXPECT_EQ(codeOf(gone), Errc::kIntegrity) << describe(gone);
}

// Chunk bytes are written once, into the file's data file at index x chunk
// length; the database holds only metadata. A deleted file takes its data
// file along, and a data file no row names (a crash between the two) is
// removed at the next open.
TEST_F(SqliteStorageTest, ChunkBytesLiveInDataFilesBesideTheDatabase) {
  constexpr std::uint32_t kBig = 256 * 1024;
  TestFile a = makeTestFile(8 * kBig + 5, kBig, 31);
  const std::filesystem::path chunks = dbPath().string() + "-chunks";
  {
    auto s = open();
    ASSERT_TRUE(s);
    BlockingStorage b(*s);
    ASSERT_TRUE(b.storeManifest(a.manifest).has_value());
    for (ChunkIndex i : {8u, 3u, 0u, 5u}) P2PCDN_ASSERT_OK(b.storeChunk(a.id, i, a.chunks[i]));
    std::ifstream f(dataFileOf(dbPath()), std::ios::binary);
    for (ChunkIndex i : {8u, 3u, 0u, 5u}) {
      Bytes got(a.chunks[i].size());
      f.seekg(static_cast<std::streamoff>(std::uint64_t{i} * kBig));
      f.read(reinterpret_cast<char*>(got.data()), static_cast<std::streamsize>(got.size()));
      EXPECT_EQ(got, a.chunks[i]) << "chunk " << i << " is not at its offset";
    }
  }
  // No chunk's bytes in the database or its WAL (a 64-byte run of each looked for).
  for (const std::string name : {"", "-wal"}) {
    std::ifstream f(dbPath().string() + name, std::ios::binary);
    const std::string db((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    for (ChunkIndex i : {3u, 0u, 5u}) {
      const std::string run(reinterpret_cast<const char*>(a.chunks[i].data()) + 1000, 64);
      EXPECT_EQ(db.find(run), std::string::npos) << "chunk " << i << " is in store.db" << name;
    }
  }

  // An orphan (a name like a data file's, no row) goes at open; other files stay.
  { std::ofstream(chunks / "0123456789abcdef") << "left by a crash"; }
  { std::ofstream(chunks / "notes.txt") << "not ours"; }
  {
    auto s = open();
    ASSERT_TRUE(s);
    EXPECT_FALSE(std::filesystem::exists(chunks / "0123456789abcdef"));
    EXPECT_TRUE(std::filesystem::exists(chunks / "notes.txt"));
    BlockingStorage b(*s);
    EXPECT_EQ(*b.getChunk(a.id, 5), a.chunks[5]);
    const auto file = dataFileOf(dbPath());
    P2PCDN_ASSERT_OK(b.deleteFile(a.id));
    EXPECT_FALSE(std::filesystem::exists(file));
  }
}

// A file kept outside the store (a download written into its output): asked
// for before its manifest is known, its chunks land in OUT.part at their
// offsets; finishing renames it to OUT, which the store goes on serving. The
// store never deletes it, never evicts from it, and does not count it in its
// quota; a vanished kept file's chunks count as missing at the next open.
TEST_F(SqliteStorageTest, AKeptFileIsWrittenInPlaceAndServedFromThere) {
  constexpr std::uint32_t kBig = 64 * 1024;
  TestFile a = makeTestFile(5 * kBig + 77, kBig, 41);
  TestFile b = makeTestFile(3 * kBig, kBig, 42);
  const std::filesystem::path part = dir_ / "out.bin.part", out = dir_ / "out.bin";
  {
    auto s = open(StorageOptions{.quotaBytes = 4 * kBig});
    ASSERT_TRUE(s);
    BlockingStorage st(*s);
    P2PCDN_ASSERT_OK(st.keepFileAt(a.id, part));  // before the manifest
    ASSERT_TRUE(st.storeManifest(a.manifest).has_value());
    for (ChunkIndex i : {5u, 0u, 2u, 1u}) P2PCDN_ASSERT_OK(st.storeChunk(a.id, i, a.chunks[i]));
    EXPECT_EQ(st.usage()->bytesUsed, 0u) << "a kept file counts in the quota";
    EXPECT_EQ(codeOf(st.finishKeptFile(a.id, out)), Errc::kInvalidArgument) << "finished while incomplete";
    // Another file fills the quota: nothing of the kept file is evicted.
    ASSERT_TRUE(st.storeManifest(b.manifest).has_value());
    for (ChunkIndex i = 0; i < 3; ++i) P2PCDN_ASSERT_OK(st.storeChunk(b.id, i, b.chunks[i]));
    for (ChunkIndex i : {3u, 4u}) P2PCDN_ASSERT_OK(st.storeChunk(a.id, i, a.chunks[i]));
    EXPECT_EQ(*st.presentChunks(a.id), std::vector<bool>(6, true));
    P2PCDN_ASSERT_OK(st.finishKeptFile(a.id, out));
    EXPECT_FALSE(std::filesystem::exists(part));
    std::ifstream f(out, std::ios::binary);
    const Bytes got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(got, a.data) << "the kept file is not the file";
    EXPECT_EQ(*st.getChunk(a.id, 3), a.chunks[3]);
  }
  {
    auto s = open();
    ASSERT_TRUE(s);
    BlockingStorage st(*s);
    EXPECT_EQ(*st.getChunk(a.id, 5), a.chunks[5]) << "not served from the kept file after reopening";
    // A second keep moves the chunks of a file held in the store.
    P2PCDN_ASSERT_OK(st.keepFileAt(b.id, dir_ / "b.part"));
    P2PCDN_ASSERT_OK(st.finishKeptFile(b.id, dir_ / "b.bin"));
    EXPECT_EQ(std::filesystem::file_size(dir_ / "b.bin"), b.data.size());
    EXPECT_EQ(st.usage()->bytesUsed, 0u);
    P2PCDN_ASSERT_OK(st.deleteFile(a.id));
    EXPECT_TRUE(std::filesystem::exists(out)) << "deleting the file from the store deleted the user's copy";
    EXPECT_TRUE(std::filesystem::is_empty(dbPath().string() + "-chunks"));
  }
  std::filesystem::remove(dir_ / "b.bin");
  auto s = open();
  ASSERT_TRUE(s);
  BlockingStorage st(*s);
  EXPECT_EQ(*st.presentChunks(b.id), std::vector<bool>(3, false)) << "a vanished kept file's chunks still count";
  P2PCDN_ASSERT_OK(st.storeChunk(b.id, 1, b.chunks[1]));  // back into the store
  EXPECT_EQ(*st.getChunk(b.id, 1), b.chunks[1]);
  EXPECT_EQ(st.usage()->bytesUsed, kBig);
}

// Seeding in place: a file adopted as its own stored copy is served from
// where it is, nothing copied; a held copy is dropped; a change to the file
// (its stamp) makes its chunks count as missing at the next open.
TEST_F(SqliteStorageTest, AnAdoptedFileIsServedInPlaceUntilItChanges) {
  constexpr std::uint32_t kBig = 64 * 1024;
  TestFile a = makeTestFile(4 * kBig + 9, kBig, 51);
  const std::filesystem::path orig = dir_ / "orig.bin";
  { std::ofstream(orig, std::ios::binary).write(reinterpret_cast<const char*>(a.data.data()),
                                               static_cast<std::streamsize>(a.data.size())); }
  auto stamp = stampOf(orig);
  ASSERT_TRUE(stamp.has_value()) << describe(stamp);
  {
    auto s = open();
    ASSERT_TRUE(s);
    BlockingStorage st(*s);
    ASSERT_TRUE(st.storeManifest(a.manifest).has_value());  // a copy held before (two chunks)
    for (ChunkIndex i : {0u, 3u}) P2PCDN_ASSERT_OK(st.storeChunk(a.id, i, a.chunks[i]));
    FileStamp moved = *stamp;
    moved.mtimeNs += 1;
    EXPECT_EQ(codeOf(st.adoptFile(a.manifest, orig, moved)), Errc::kInvalidArgument) << "a stale stamp was taken";
    auto id = st.adoptFile(a.manifest, orig, *stamp);
    ASSERT_TRUE(id.has_value()) << describe(id);
    EXPECT_EQ(*id, a.id);
    EXPECT_EQ(*st.presentChunks(a.id), std::vector<bool>(5, true));
    for (ChunkIndex i = 0; i < 5; ++i) EXPECT_EQ(*st.getChunk(a.id, i), a.chunks[i]);
    EXPECT_EQ(st.usage()->bytesUsed, 0u);
    EXPECT_TRUE(std::filesystem::is_empty(dbPath().string() + "-chunks")) << "the held copy was kept";
  }
  EXPECT_EQ(*stampOf(orig), *stamp) << "adopting or serving changed the file";
  {
    auto s = open();
    ASSERT_TRUE(s);
    EXPECT_EQ(*BlockingStorage(*s).getChunk(a.id, 4), a.chunks[4]) << "not served in place after reopening";
  }
  // The file changes behind the store's back (same size, new time): gone at open.
  {
    std::fstream f(orig, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5);
    f.put('x');
  }
  std::filesystem::last_write_time(orig, std::filesystem::last_write_time(orig) + std::chrono::seconds(2));
  auto s = open();
  ASSERT_TRUE(s);
  BlockingStorage st(*s);
  EXPECT_EQ(*st.presentChunks(a.id), std::vector<bool>(5, false)) << "a changed file's chunks still count";
  EXPECT_TRUE(st.getManifest(a.id).has_value());
  TestFile e = makeTestFile(kBig, kBig, 52);
  e.manifest.encryption = EncryptionInfo{};
  EXPECT_EQ(codeOf(st.adoptFile(e.manifest, orig, *stampOf(orig))), Errc::kUnsupported);
}

// An encrypted file's stored chunks are ciphertext: it is never kept outside.
TEST_F(SqliteStorageTest, AnEncryptedFileIsNotKeptOutside) {
  TestFile e = makeTestFile(2 * kChunk, kChunk, 43);
  e.manifest.encryption = EncryptionInfo{};  // stored chunks: "ciphertext" with room for the tag
  e.manifest.chunkHashes.clear();
  for (Bytes& c : e.chunks) {
    c.resize(c.size() + kAeadTagSize, 0x5a);
    e.manifest.chunkHashes.push_back(hashOf(c));
  }
  e.id = *manifestId(e.manifest);
  auto s = open();
  ASSERT_TRUE(s);
  BlockingStorage st(*s);
  P2PCDN_ASSERT_OK(st.keepFileAt(e.id, dir_ / "e.part"));  // unknown yet: dropped when the manifest says encrypted
  ASSERT_TRUE(st.storeManifest(e.manifest).has_value());
  P2PCDN_ASSERT_OK(st.storeChunk(e.id, 0, e.chunks[0]));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "e.part"));
  EXPECT_EQ(codeOf(st.keepFileAt(e.id, dir_ / "e.part")), Errc::kUnsupported);
  EXPECT_EQ(codeOf(st.finishKeptFile(e.id, dir_ / "e.bin")), Errc::kUnsupported);
}

// A store written by the previous version (schema 2: chunk bytes in `blobs`)
// is converted in place: its chunks are read where they are, new ones go to
// the data file, and deleting the file removes both.
TEST_F(SqliteStorageTest, ASchema2StoreIsConvertedKeepingItsChunks) {
  TestFile a = makeTestFile(3 * kChunk, kChunk, 32);
  auto enc = encodeManifest(a.manifest);
  ASSERT_TRUE(enc.has_value());
  for (const char* sql : {
           "PRAGMA journal_mode=WAL",
           "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
           "INSERT INTO meta VALUES('schema', 2)",
           "CREATE TABLE files(num INTEGER PRIMARY KEY, file_id BLOB NOT NULL UNIQUE, pinned INTEGER NOT NULL DEFAULT 0,"
           " staging INTEGER NOT NULL DEFAULT 0, added_at INTEGER NOT NULL DEFAULT (unixepoch()), manifest BLOB NOT NULL)",
           "CREATE TABLE chunks(file_num INTEGER NOT NULL REFERENCES files(num) ON DELETE CASCADE, idx INTEGER NOT NULL,"
           " size INTEGER NOT NULL, last_access INTEGER NOT NULL, blob_id INTEGER NOT NULL,"
           " PRIMARY KEY(file_num, idx)) WITHOUT ROWID",
           "CREATE INDEX chunks_lru ON chunks(last_access)",
           "CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB NOT NULL)",
           "CREATE TRIGGER chunks_drop_blob AFTER DELETE ON chunks BEGIN DELETE FROM blobs WHERE id = old.blob_id; END",
       }) {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(dbPath().c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql << ": " << sqlite3_errmsg(h);
    sqlite3_close(h);
  }
  execSql(dbPath(), "INSERT INTO files(num, file_id, manifest) VALUES(1, x'" + a.id.hex() + "', ?1)", *enc);
  for (ChunkIndex i : {0u, 1u}) {
    const std::string n = std::to_string(i);
    execSql(dbPath(), "INSERT INTO blobs(id, data) VALUES(" + std::to_string(i + 10) + ", ?1)", a.chunks[i]);
    execSql(dbPath(), "INSERT INTO chunks VALUES(1, " + n + ", " + std::to_string(a.chunks[i].size()) + ", " + n +
                          ", " + std::to_string(i + 10) + ")");
  }
  {
    auto s = open();
    ASSERT_TRUE(s);
    BlockingStorage b(*s);
    EXPECT_TRUE(hasRow(dbPath(), "SELECT 1 FROM meta WHERE key='schema' AND value=3"));
    EXPECT_EQ(*b.presentChunks(a.id), (std::vector<bool>{true, true, false}));
    for (ChunkIndex i : {0u, 1u}) EXPECT_EQ(*b.getChunk(a.id, i), a.chunks[i]);
    P2PCDN_ASSERT_OK(b.storeChunk(a.id, 2, a.chunks[2]));
    EXPECT_EQ(*b.getChunk(a.id, 2), a.chunks[2]);
    EXPECT_EQ(std::filesystem::file_size(dataFileOf(dbPath())), 2 * kChunk + a.chunks[2].size());
    P2PCDN_ASSERT_OK(b.deleteChunk(a.id, 0));
    EXPECT_FALSE(hasRow(dbPath(), "SELECT 1 FROM blobs WHERE id=10"));
    EXPECT_EQ(b.usage()->bytesUsed, 2 * kChunk);
  }
  auto s = open();  // converted once: opens as schema 3
  ASSERT_TRUE(s);
  BlockingStorage b(*s);
  EXPECT_EQ(*b.getChunk(a.id, 1), a.chunks[1]);
  P2PCDN_ASSERT_OK(b.deleteFile(a.id));
  EXPECT_FALSE(hasRow(dbPath(), "SELECT 1 FROM blobs"));
  EXPECT_FALSE(hasRow(dbPath(), "SELECT 1 FROM files"));
}

TEST_F(SqliteStorageTest, CorruptManifestInTheDatabaseIsDetected) {
  TestFile a = makeTestFile(2 * kChunk, kChunk, 6);
  {
    auto s = open();
    ASSERT_TRUE(s);
    BlockingStorage b(*s);
    ASSERT_TRUE(b.storeManifest(a.manifest).has_value());
  }
  // A manifest that decodes but is not the one the id names.
  Manifest other = a.manifest;
  other.name = "swapped.bin";
  auto enc = encodeManifest(other);
  ASSERT_TRUE(enc.has_value());
  EXPECT_EQ(execSql(dbPath(), "UPDATE files SET manifest=?1", *enc), 1);
  {
    auto s = open();
    ASSERT_TRUE(s);
    BlockingStorage b(*s);
    EXPECT_EQ(codeOf(b.getManifest(a.id)), Errc::kIntegrity);
    EXPECT_EQ(codeOf(b.storeChunk(a.id, 0, a.chunks[0])), Errc::kIntegrity);
  }
  Bytes garbage = {1, 2, 3};
  EXPECT_EQ(execSql(dbPath(), "UPDATE files SET manifest=?1", garbage), 1);
  auto s = open();
  ASSERT_TRUE(s);
  BlockingStorage b(*s);
  EXPECT_EQ(codeOf(b.getManifest(a.id)), Errc::kIntegrity);
  EXPECT_EQ(codeOf(b.listFiles()), Errc::kIntegrity);
}

TEST_F(SqliteStorageTest, UncommittedImportIsDroppedOnReopen) {
  TestFile f = makeTestFile(3 * kChunk, kChunk, 7);
  TestFile kept = makeTestFile(kChunk, kChunk, 8);
  {
    auto s = open();
    ASSERT_TRUE(s);
    BlockingStorage b(*s);
    ASSERT_TRUE(b.storeManifest(kept.manifest).has_value());
    P2PCDN_ASSERT_OK(b.storeChunk(kept.id, 0, kept.chunks[0]));
    auto imp = b.beginImport();
    ASSERT_TRUE(imp.has_value()) << describe(imp);
    for (ChunkIndex i = 0; i < 3; ++i) P2PCDN_ASSERT_OK(b.importChunk(*imp, i, f.chunks[i]));
    // Closed without commit, as if the publisher had crashed.
  }
  auto s = open();
  ASSERT_TRUE(s);
  BlockingStorage b(*s);
  EXPECT_EQ(codeOf(b.getManifest(f.id)), Errc::kNotFound);
  auto u = b.usage();
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->files, 1u);
  EXPECT_EQ(u->chunks, 1u);
  EXPECT_EQ(u->bytesUsed, kChunk);
  auto files = b.listFiles();
  ASSERT_TRUE(files.has_value());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ(files->front().fileId, kept.id);
  EXPECT_TRUE(hasRow(dbPath(), "SELECT 1 FROM files"));
}

TEST_F(SqliteStorageTest, OtherSchemaVersionIsRefused) {
  ASSERT_TRUE(open());
  for (int v : {0, 4, 99}) {
    SCOPED_TRACE(v);
    EXPECT_EQ(execSql(dbPath(), "UPDATE meta SET value=" + std::to_string(v) + " WHERE key='schema'"), 1);
    auto s = openSqliteStorage(dbPath());
    EXPECT_EQ(codeOf(s), Errc::kUnsupported) << describe(s);
  }
  EXPECT_EQ(execSql(dbPath(), "UPDATE meta SET value=3 WHERE key='schema'"), 1);
  EXPECT_TRUE(open());
}

// Schema 1 stores hold version 1 manifests (file ids that covered a creation
// time): an empty one becomes schema 2 (then 3), one with files is refused.
TEST_F(SqliteStorageTest, ASchema1StoreIsTakenOverOnlyWhenEmpty) {
  ASSERT_TRUE(open());
  EXPECT_EQ(execSql(dbPath(), "UPDATE meta SET value=1 WHERE key='schema'"), 1);
  ASSERT_TRUE(open());
  EXPECT_TRUE(hasRow(dbPath(), "SELECT 1 FROM meta WHERE key='schema' AND value=3"));

  TestFile a = makeTestFile(kChunk, kChunk, 11);
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(BlockingStorage(*s).storeManifest(a.manifest).has_value());
  }
  EXPECT_EQ(execSql(dbPath(), "UPDATE meta SET value=1 WHERE key='schema'"), 1);
  auto s = openSqliteStorage(dbPath());
  EXPECT_EQ(codeOf(s), Errc::kUnsupported) << describe(s);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().detail().find("version 1"), std::string::npos) << s.error().message();
}

TEST_F(SqliteStorageTest, NotADatabase) {
  {
    std::ofstream out(dbPath(), std::ios::binary);
    out << std::string(70000, 'x');
  }
  auto s = openSqliteStorage(dbPath());
  EXPECT_FALSE(s.has_value());
}

TEST_F(SqliteStorageTest, CreatesParentFolders) {
  auto s = openSqliteStorage(dir_ / "a" / "b" / "store.db");
  ASSERT_TRUE(s.has_value()) << describe(s);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "a" / "b" / "store.db"));
}

TEST_F(SqliteStorageTest, UnwritableLocationFails) {
  // A regular file where the folder should be.
  { std::ofstream(dir_ / "file") << "x"; }
  auto s = openSqliteStorage(dir_ / "file" / "store.db");
  EXPECT_EQ(codeOf(s), Errc::kIo) << describe(s);
}

}  // namespace
}  // namespace p2pcdn::test
