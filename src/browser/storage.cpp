#include "browser/storage.hpp"

#include <emscripten/html5.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "browser/abi.hpp"
#include "browser/js.hpp"

namespace p2pcdn::browser {

using nlohmann::json;

namespace {

Unexpected notFound(const char* op, const FileId& id) { return fail(Errc::kNotFound, op, "no file " + id.hex()); }

std::string chunkOp(const char* op, const FileId& id, ChunkIndex index) {
  return abi::dump({{"op", op}, {"fileId", id.hex()}, {"index", index}});
}

}  // namespace

std::map<int, JsChunkStorage*>& liveStores() {
  static std::map<int, JsChunkStorage*> m;
  return m;
}

JsChunkStorage::JsChunkStorage(BrowserRuntime& rt, int handle, std::uint64_t quotaBytes)
    : rt_(rt), h_(handle), quota_(quotaBytes) {
  liveStores()[h_] = this;
}

JsChunkStorage::~JsChunkStorage() {
  liveStores().erase(h_);
  *alive_ = false;
  // Requests still in flight are answered into nothing; their callers are gone too.
}

Status JsChunkStorage::load(std::string_view indexJson) {
  auto j = json::parse(indexJson, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return fail(Errc::kMalformed, "storage index", "not a JSON array");
  for (const auto& rec : j) {
    if (!rec.is_object() || !rec.contains("manifest") || !rec.contains("chunks") || !rec["chunks"].is_array()) {
      ++skipped_;
      continue;
    }
    auto m = manifestFromJson(abi::dump(rec["manifest"]));  // also checks a "fileId" inside it
    auto id = m ? manifestId(*m) : Result<FileId>(fail(m.error()));
    if (!id || files_.count(*id)) {
      ++skipped_;
      continue;
    }
    File f;
    f.manifest = std::move(*m);
    f.have.assign(f.manifest.chunkCount(), false);
    // Pinned and incomplete: a download an earlier page left unfinished. It may
    // resume, but it no longer holds its room against eviction (only a
    // complete pinned file, an upload, does).
    const bool pinned = rec.contains("pinned") && rec["pinned"].is_boolean() && rec["pinned"].get<bool>();
    f.lastUsed = rec.contains("lastUsed") && rec["lastUsed"].is_number() ? rec["lastUsed"].get<double>() : 0;
    for (const auto& c : rec["chunks"]) {
      if (!c.is_number_unsigned() || c.get<std::uint64_t>() >= f.have.size()) continue;  // not a chunk of it
      const auto i = static_cast<ChunkIndex>(c.get<std::uint64_t>());
      if (f.have[i]) continue;
      f.have[i] = true;
      ++f.chunks;
      f.bytes += f.manifest.storedChunkLength(i);
    }
    f.pinned = pinned && f.chunks == f.have.size();
    used_ += f.bytes;
    f.gen = nextGen_++;
    files_.emplace(*id, std::move(f));
  }
  return {};
}

void JsChunkStorage::setInUse(const FileId& id, bool inUse) {
  if (inUse) {
    inUse_.insert(id);
    return;
  }
  inUse_.erase(id);
  // Its last use, kept for the LRU order of a later page.
  if (File* f = find(id)) {
    touch(id, *f);
    putRecord(id, *f, [](Status) {});
  }
}

JsChunkStorage::File* JsChunkStorage::find(const FileId& id) {
  auto it = files_.find(id);
  return it == files_.end() ? nullptr : &it->second;
}

void JsChunkStorage::touch(const FileId&, File& f) { f.lastUsed = emscripten_date_now(); }

// ---- requests to the backend ----------------------------------------------

void JsChunkStorage::request(std::string op, ByteView data, std::function<void(Result<Bytes>)> done) {
  if (pending_.size() >= kMaxPending) {
    return rt_.post([alive = std::weak_ptr<bool>(alive_), done = std::move(done)] {
      if (!alive.expired()) done(fail(Errc::kBackPressure, "storage", "too many requests in flight"));
    });
  }
  const double req = nextReq_++;
  pending_[req] = Pending{std::move(done), {}, rt_.now()};
  armSweep();
  p2p_js_store(h_, req, op.data(), op.size(), data.data(), data.size());
}

void JsChunkStorage::sweep() {
  sweeping_ = false;
  const auto now = rt_.now();
  std::vector<double> late;
  for (const auto& [req, p] : pending_) {
    if (now - p.started >= kRequestDeadline) late.push_back(req);
  }
  for (double req : late) {
    finish(req, static_cast<int>(Errc::kTimedOut),
           "the storage backend did not answer in " + std::to_string(kRequestDeadline.count()) + " s");
  }
  armSweep();
}

void JsChunkStorage::armSweep() {
  if (sweeping_ || pending_.empty()) return;
  sweeping_ = true;
  rt_.after(kRequestDeadline / 3, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) sweep();
  });
}

std::uint8_t* JsChunkStorage::inbox(double req, std::size_t n) {
  auto it = pending_.find(req);
  if (it == pending_.end() || n == 0 || n > kMaxChunkSize + kAeadTagSize) return nullptr;
  it->second.inbox.resize(n);
  return it->second.inbox.data();
}

void JsChunkStorage::finish(double req, int code, std::string message) {
  auto it = pending_.find(req);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (code == 0) return p.done(std::move(p.inbox));
  const auto errc = code > 0 && code <= static_cast<int>(Errc::kTimedOut) ? static_cast<Errc>(code) : Errc::kIo;
  p.done(fail(errc, "storage", std::move(message)));
}

void JsChunkStorage::putRecord(const FileId& id, const File& f, std::function<void(Status)> done) {
  auto text = manifestToJson(f.manifest);
  if (!text) return done(fail(text.error()));
  std::string op = abi::dump({{"op", "manifest"}, {"fileId", id.hex()}, {"pinned", f.pinned}, {"lastUsed", f.lastUsed}});
  op.pop_back();  // the manifest goes in as the text it already is
  op += ",\"manifest\":" + *text + "}";
  request(std::move(op), {}, [done = std::move(done)](Result<Bytes> r) { done(r ? Status{} : Status(fail(r.error()))); });
}

// ---- manifests and files --------------------------------------------------

void JsChunkStorage::storeManifest(const Manifest& m, bool pinned, Callback<FileId> done) {
  auto id = manifestId(m);
  if (!id) return done(fail(id.error()));
  if (File* f = find(*id)) {
    touch(*id, *f);
    if (!pinned || f->pinned) return done(*id);
    f->pinned = true;
    return putRecord(*id, *f, [done, id = *id](Status st) { st ? done(id) : done(fail(st.error())); });
  }
  File f;
  f.manifest = m;
  f.have.assign(m.chunkCount(), false);
  f.pinned = pinned;
  f.gen = nextGen_++;
  touch(*id, f);
  auto& added = files_[*id] = std::move(f);
  putRecord(*id, added, [this, alive = std::weak_ptr<bool>(alive_), done, id = *id](Status st) {
    if (st) return done(id);
    if (!alive.expired()) {
      if (File* gone = find(id); gone && gone->chunks == 0 && gone->writing.empty()) files_.erase(id);
    }
    done(fail(st.error()));
  });
}

void JsChunkStorage::getManifest(const FileId& id, Callback<Manifest> done) {
  File* f = find(id);
  if (!f) return done(notFound("get manifest", id));
  touch(id, *f);
  done(f->manifest);
}

void JsChunkStorage::forgetFile(const FileId& id) {
  auto it = files_.find(id);
  if (it == files_.end()) return;
  used_ -= it->second.bytes;
  files_.erase(it);
  // Puts still in flight for it complete into nothing (their bytes are no
  // longer counted); the backend drops the chunks it was still batching.
}

void JsChunkStorage::deleteFile(const FileId& id, Callback<void> done) {
  if (!find(id)) return done(notFound("delete file", id));
  forgetFile(id);
  request(abi::dump({{"op", "deleteFile"}, {"fileId", id.hex()}}), {},
          [done](Result<Bytes> r) { done(r ? Status{} : Status(fail(r.error()))); });
}

void JsChunkStorage::setPinned(const FileId& id, bool pinned, Callback<void> done) {
  File* f = find(id);
  if (!f) return done(notFound("pin", id));
  if (f->pinned == pinned) return done({});
  f->pinned = pinned;
  putRecord(id, *f, std::move(done));
}

void JsChunkStorage::listFiles(Callback<std::vector<StoredFile>> done) {
  std::vector<StoredFile> out;
  for (const auto& [id, f] : files_) out.push_back(StoredFile{id, f.manifest, f.chunks, f.bytes, f.pinned});
  done(std::move(out));
}

void JsChunkStorage::presentChunks(const FileId& id, Callback<std::vector<bool>> done) {
  File* f = find(id);
  if (!f) return done(notFound("present chunks", id));
  done(f->have);
}

void JsChunkStorage::usage(Callback<StorageUsage> done) {
  std::uint64_t chunks = 0;
  for (const auto& [id, f] : files_) chunks += f.chunks;
  done(StorageUsage{used_, quota_, chunks, files_.size(), evicted_});
}

// ---- chunks ---------------------------------------------------------------

bool JsChunkStorage::evictOne(const FileId& keep) {
  const FileId* victim = nullptr;
  double oldest = 0;
  for (const auto& [id, f] : files_) {
    if (f.pinned || inUse_.count(id) || id == keep) continue;
    if (!victim || f.lastUsed < oldest) {
      victim = &id;
      oldest = f.lastUsed;
    }
  }
  if (!victim) return false;
  const FileId id = *victim;
  evicted_ += files_[id].chunks;
  freed_ += files_[id].bytes;
  forgetFile(id);
  request(abi::dump({{"op", "deleteFile"}, {"fileId", id.hex()}}), {}, [](Result<Bytes>) {});
  return true;
}

bool JsChunkStorage::freeSome(const FileId& keep) {
  const std::uint64_t before = freed_;
  while (freed_ == before) {
    if (!evictOne(keep)) return false;  // (files holding no bytes go too, on the way)
  }
  return true;
}

bool JsChunkStorage::makeRoom(std::uint64_t bytes, const FileId& keep) {
  while (used_ + writing_ + bytes > quota_) {
    if (!evictOne(keep)) return false;
  }
  return true;
}

void JsChunkStorage::storeChunk(const FileId& id, ChunkIndex index, ByteView data, Callback<void> done) {
  File* f = find(id);
  if (!f) return done(notFound("store chunk", id));
  if (auto v = verifyChunk(f->manifest, index, data); !v) return done(v);
  if (f->have[index] || f->writing.count(index)) return done({});
  write(id, index, Bytes(data.begin(), data.end()), false, std::move(done));
}

void JsChunkStorage::write(const FileId& id, ChunkIndex index, Bytes data, bool retried, Callback<void> done) {
  File* f = find(id);
  if (!f) return done(fail(Errc::kCancelled, "store chunk", "the file was deleted meanwhile"));
  if (!makeRoom(data.size(), id)) {
    return done(fail(Errc::kQuotaExceeded, "store chunk",
                     "the storage quota of " + std::to_string(quota_) + " bytes is full of files in use or pinned"));
  }
  f->writing.insert(index);
  writing_ += data.size();
  auto shared = std::make_shared<Bytes>(std::move(data));
  const std::uint64_t gen = f->gen;
  const std::uint64_t freed = freed_;
  request(chunkOp("put", id, index), *shared,
          [this, alive = std::weak_ptr<bool>(alive_), id, index, shared, retried, gen, freed, done](Result<Bytes> r) {
            if (alive.expired()) return;  // its caller went with it
            writing_ -= shared->size();
            File* file = find(id);
            if (file && file->gen != gen) file = nullptr;  // deleted meanwhile, and stored anew
            if (file) file->writing.erase(index);
            // The browser's own quota: free some room and retry once. A batch of
            // puts fails together: bytes freed since they were issued serve all.
            if (!r && r.error().code() == Errc::kQuotaExceeded && !retried && file &&
                (freed_ != freed || freeSome(id))) {
              return write(id, index, std::move(*shared), true, done);
            }
            if (!r) {
              if (r.error().code() != Errc::kQuotaExceeded) return done(fail(r.error()));
              return done(fail(Errc::kQuotaExceeded, "store chunk",
                               "the browser's storage is full and nothing more can be evicted (" +
                                   r.error().message() + ")"));
            }
            if (!file) return done(fail(Errc::kCancelled, "store chunk", "the file was deleted meanwhile"));
            if (!file->have[index]) {
              file->have[index] = true;
              ++file->chunks;
              file->bytes += shared->size();
              used_ += shared->size();
            }
            done({});
          });
}

void JsChunkStorage::getChunk(const FileId& id, ChunkIndex index, ReadOptions o, Callback<Bytes> done) {
  File* f = find(id);
  if (!f) return done(notFound("get chunk", id));
  if (index >= f->have.size() || !f->have[index]) {
    return done(fail(Errc::kNotFound, "get chunk", "chunk " + std::to_string(index) + " not stored"));
  }
  f->lastUsed = emscripten_date_now();
  request(chunkOp("get", id, index), {},
          [this, alive = std::weak_ptr<bool>(alive_), id, index, o, done](Result<Bytes> r) {
            if (alive.expired()) return;
            File* file = find(id);
            if (!file) return done(notFound("get chunk", id));
            if (r) {
              Status check = o.verify ? verifyChunk(file->manifest, index, *r) : Status{};
              if (check) return done(std::move(r));
              // Damaged in the backend: no longer held, so it is fetched again.
              dropChunk(*file, index);
              request(chunkOp("delete", id, index), {}, [](Result<Bytes>) {});
              return done(fail(check.error()));
            }
            if (r.error().code() == Errc::kNotFound) dropChunk(*file, index);  // lost in the backend
            done(fail(r.error()));
          });
}

void JsChunkStorage::dropChunk(File& f, ChunkIndex index) {
  if (index >= f.have.size() || !f.have[index]) return;
  f.have[index] = false;
  --f.chunks;
  const auto len = f.manifest.storedChunkLength(index);
  f.bytes -= len;
  used_ -= len;
}

void JsChunkStorage::deleteChunk(const FileId& id, ChunkIndex index, Callback<void> done) {
  File* f = find(id);
  if (!f) return done(notFound("delete chunk", id));
  dropChunk(*f, index);
  request(chunkOp("delete", id, index), {}, [done](Result<Bytes> r) { done(r ? Status{} : Status(fail(r.error()))); });
}

// ---- imports --------------------------------------------------------------

namespace {
Unexpected noImports() {
  return fail(Errc::kUnsupported, "import", "the browser store has no staging area (upload hashes first)");
}
}  // namespace

void JsChunkStorage::beginImport(Callback<ImportId> done) { done(noImports()); }
void JsChunkStorage::importChunk(ImportId, ChunkIndex, ByteView, Callback<void> done) { done(noImports()); }
void JsChunkStorage::commitImport(ImportId, const Manifest&, bool, Callback<FileId> done) { done(noImports()); }
void JsChunkStorage::abortImport(ImportId, Callback<void> done) { done(noImports()); }

}  // namespace p2pcdn::browser
