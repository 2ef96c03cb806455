// MemoryStorage: chunks in RAM, for tests, the simulator and the browser's
// fallback. LRU is a per-chunk access tick; eviction scans (fine at its sizes).
#include <map>
#include <optional>

#include "p2pcdn/chunk_storage.hpp"
#include "storage/locked.hpp"
#include "storage/staged.hpp"

namespace p2pcdn {
namespace {

class MemoryStorage final : public ChunkStorage {
 public:
  explicit MemoryStorage(StorageOptions o) : options_(o) {}

  void storeManifest(const Manifest& m, bool pinned, Callback<FileId> done) override {
    auto id = manifestId(m);
    if (!id) return done(fail(id.error()));
    auto [it, inserted] = files_.try_emplace(*id);
    if (inserted) {
      it->second.manifest = m;
      it->second.chunks.resize(m.chunkCount());
    }
    it->second.pinned = it->second.pinned || pinned;
    done(*id);
  }

  void getManifest(const FileId& id, Callback<Manifest> done) override {
    auto* f = find(id);
    if (!f) return done(notFound("get manifest", id));
    done(f->manifest);
  }

  void storeChunk(const FileId& id, ChunkIndex index, ByteView data, Callback<void> done) override {
    auto* f = find(id);
    if (!f) return done(notFound("store chunk", id));
    if (auto v = verifyChunk(f->manifest, index, data); !v) return done(v);
    Slot& slot = f->chunks[index];
    if (slot.data) return done({});
    if (auto q = makeRoom(data.size(), id); !q) return done(q);
    slot.data.emplace(data.begin(), data.end());
    slot.tick = ++tick_;
    used_ += data.size();
    ++chunkCount_;
    done({});
  }

  void getChunk(const FileId& id, ChunkIndex index, ReadOptions o, Callback<Bytes> done) override {
    auto* f = find(id);
    if (!f) return done(notFound("get chunk", id));
    if (index >= f->chunks.size() || !f->chunks[index].data) {
      return done(fail(Errc::kNotFound, "get chunk", "chunk " + std::to_string(index) + " not stored"));
    }
    Slot& slot = f->chunks[index];
    if (o.verify) {
      if (auto v = verifyChunk(f->manifest, index, *slot.data); !v) return done(fail(v.error()));
    }
    slot.tick = ++tick_;
    done(*slot.data);
  }

  void deleteChunk(const FileId& id, ChunkIndex index, Callback<void> done) override {
    auto* f = find(id);
    if (!f) return done(notFound("delete chunk", id));
    if (index < f->chunks.size()) drop(f->chunks[index]);
    done({});
  }

  void deleteFile(const FileId& id, Callback<void> done) override {
    auto* f = find(id);
    if (!f) return done(notFound("delete file", id));
    for (Slot& s : f->chunks) drop(s);
    files_.erase(id);
    done({});
  }

  void setPinned(const FileId& id, bool pinned, Callback<void> done) override {
    auto* f = find(id);
    if (!f) return done(notFound("pin", id));
    f->pinned = pinned;
    done({});
  }

  void listFiles(Callback<std::vector<StoredFile>> done) override {
    std::vector<StoredFile> out;
    for (auto& [id, f] : files_) {
      StoredFile s{id, f.manifest, 0, 0, f.pinned};
      for (const Slot& c : f.chunks) {
        if (c.data) {
          ++s.chunksPresent;
          s.bytesStored += c.data->size();
        }
      }
      out.push_back(std::move(s));
    }
    done(std::move(out));
  }

  void presentChunks(const FileId& id, Callback<std::vector<bool>> done) override {
    auto* f = find(id);
    if (!f) return done(notFound("present chunks", id));
    std::vector<bool> bits(f->chunks.size());
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = f->chunks[i].data.has_value();
    done(std::move(bits));
  }

  void usage(Callback<StorageUsage> done) override {
    done(StorageUsage{used_, options_.quotaBytes, chunkCount_, files_.size(), evicted_});
  }

  void beginImport(Callback<ImportId> done) override {
    imports_[++nextImport_];
    done(nextImport_);
  }

  void importChunk(ImportId import, ChunkIndex index, ByteView data, Callback<void> done) override {
    auto it = imports_.find(import);
    if (it == imports_.end()) return done(fail(Errc::kNotFound, "import chunk", "no such import"));
    if (index >= kMaxChunkCount || data.size() > kMaxChunkSize + kAeadTagSize) {
      return done(fail(Errc::kInvalidArgument, "import chunk", "index or size out of range"));
    }
    if (it->second.data.count(index)) return done(fail(Errc::kInvalidArgument, "import chunk", "chunk imported twice"));
    it->second.staged.add(index, data);
    it->second.data[index] = Bytes(data.begin(), data.end());
    done({});
  }

  void commitImport(ImportId import, const Manifest& m, bool pinned, Callback<FileId> done) override {
    auto it = imports_.find(import);
    if (it == imports_.end()) return done(fail(Errc::kNotFound, "commit import", "no such import"));
    if (auto st = it->second.staged.matches(m); !st) return done(fail(st.error()));
    Import imp = std::move(it->second);
    imports_.erase(it);
    FileId id{};
    Status failed;
    storeManifest(m, pinned, [&](Result<FileId> r) {
      if (r) id = *r;
      else failed = fail(r.error());
    });
    if (!failed) return done(fail(failed.error()));
    for (auto& [i, bytes] : imp.data) {
      storeChunk(id, i, bytes, [&](Status st) {
        if (!st && failed) failed = st;
      });
    }
    if (!failed) return done(fail(failed.error()));
    done(id);
  }

  void abortImport(ImportId import, Callback<void> done) override {
    if (imports_.erase(import) == 0) return done(fail(Errc::kNotFound, "abort import", "no such import"));
    done({});
  }

 private:
  struct Import {
    StagedChunks staged;
    std::map<ChunkIndex, Bytes> data;
  };
  struct Slot {
    std::optional<Bytes> data;
    std::uint64_t tick = 0;
  };
  struct File {
    Manifest manifest;
    std::vector<Slot> chunks;
    bool pinned = false;
  };

  File* find(const FileId& id) {
    auto it = files_.find(id);
    return it == files_.end() ? nullptr : &it->second;
  }
  static Unexpected notFound(const char* op, const FileId& id) {
    return fail(Errc::kNotFound, op, "no file " + id.hex());
  }
  void drop(Slot& s) {
    if (!s.data) return;
    used_ -= s.data->size();
    --chunkCount_;
    s.data.reset();
  }

  // Evicts least-recently-used chunks of unpinned files (never of `keep`).
  Status makeRoom(std::size_t bytes, const FileId& keep) {
    while (used_ + bytes > options_.quotaBytes) {
      Slot* victim = nullptr;
      for (auto& [id, f] : files_) {
        if (f.pinned || id == keep) continue;
        for (Slot& s : f.chunks) {
          if (s.data && (!victim || s.tick < victim->tick)) victim = &s;
        }
      }
      if (!victim) {
        return fail(Errc::kQuotaExceeded, "store chunk",
                    "quota of " + std::to_string(options_.quotaBytes) + " bytes is full of pinned chunks");
      }
      drop(*victim);
      ++evicted_;
    }
    return {};
  }

  StorageOptions options_;
  std::map<FileId, File> files_;
  std::uint64_t used_ = 0;
  std::uint64_t chunkCount_ = 0;
  std::uint64_t tick_ = 0;
  std::uint64_t evicted_ = 0;
  std::map<ImportId, Import> imports_;
  ImportId nextImport_ = 0;
};

}  // namespace

std::unique_ptr<ChunkStorage> makeMemoryStorage(StorageOptions options) {
  return storage::makeLocked(std::make_unique<MemoryStorage>(options));
}

}  // namespace p2pcdn
