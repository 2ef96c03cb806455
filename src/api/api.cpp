// The public P2PCDN and ChunkStream: each call carried onto the loop (or run
// on the caller's thread / the worker when it is slow and touches the store
// only through call()), plus upload, download and stream.
#include "api/core.hpp"
#include "chunk/key_store.hpp"
#include "crypto/crypto.hpp"
#include "p2pcdn/chunk_manager.hpp"

namespace p2pcdn {

using Core = P2PCDN::Core;
namespace asio = boost::asio;
using api::Completion;

namespace {

// Keys of encrypted files live next to the store, as the CLI keeps them
// (chunk/key_store.hpp): <home>/keys/<file id>.key.
std::optional<EncryptionKey> loadKey(const std::filesystem::path& home, const FileId& id) {
  auto k = readKeyFile(home, id);
  if (!k) return std::nullopt;
  return *k;
}

std::string shortId(const FileId& id) { return id.hex().substr(0, 16); }

}  // namespace

// ---- data (loop) ---------------------------------------------------------------

std::optional<EncryptionKey> Core::keyFor(const FileId& id, const std::optional<EncryptionKey>& given) {
  if (given) return given;
  if (auto it = keys.find(id); it != keys.end()) return it->second;
  if (!layout.home.empty()) return loadKey(layout.home, id);
  return std::nullopt;
}

Result<Bytes> Core::readAll(const FileId& id, const std::optional<EncryptionKey>& given) {
  const std::string op = "download " + shortId(id);
  auto m = storeCall<Manifest>(op, [id](BlockingStorage& st) { return st.getManifest(id); });
  if (!m) return fail(m.error());
  auto key = call<std::optional<EncryptionKey>>(op, [this, id, given]() -> Result<std::optional<EncryptionKey>> {
    return keyFor(id, given);
  });
  if (!key) return fail(key.error());
  std::vector<Bytes> chunks;
  chunks.reserve(m->chunkCount());
  for (ChunkIndex i = 0; i < m->chunkCount(); ++i) {
    auto c = storeCall<Bytes>(op, [id, i](BlockingStorage& st) {
      return st.getChunk(id, i, ReadOptions{.verify = false});  // reassembleFile verifies
    });
    if (!c) return fail(c.error());
    chunks.push_back(std::move(*c));
  }
  return ChunkManager::reassembleFile(chunks, *m, *key);
}

// ---- upload and export (caller or worker thread) --------------------------------

Result<UploadResult> Core::importFile(const std::filesystem::path* path, ByteView data, const FileMetadata& md) {
  const std::string op = "upload";
  P2PCDN_TRY(blockingAllowed(op));
  if (!running()) return api::notConnected(op);
  ChunkOptions o;
  o.name = md.name;
  o.mimeType = md.mimeType;
  o.chunkSize = md.chunkSize ? md.chunkSize : opts.chunkSize;
  if (md.key) {
    o.encryptionKey = md.key;
  } else if (md.encrypt) {
    auto k = crypto::randomKey();
    if (!k) return fail(k.error());
    o.encryptionKey = *k;
  }
  // As `p2pcdn add`: chunks are staged in the store while they are hashed and
  // appear under the file id once the manifest is complete and matches them.
  // Each store call is one trip to the store queue; hashing stays on this thread.
  auto imp = storeCall<ImportId>(op, [](BlockingStorage& st) { return st.beginImport(); });
  if (!imp) return fail(imp.error());
  const ImportId import = *imp;
  auto importChunk = [&](ChunkIndex i, ByteView c) -> Status {
    return storeCall<void>(op, [import, i, c](BlockingStorage& st) { return st.importChunk(import, i, c); });
  };
  auto abort = [&] {
    (void)storeCall<void>(op, [import](BlockingStorage& st) { return st.abortImport(import); });
  };
  Result<Manifest> m = [&]() -> Result<Manifest> {
    if (path) return ChunkManager::chunkFile(*path, o, importChunk);
    auto cf = ChunkManager::chunkBytes(data, o);
    if (!cf) return fail(cf.error());
    for (ChunkIndex i = 0; i < cf->chunks.size(); ++i) P2PCDN_TRY(importChunk(i, cf->chunks[i]));
    return std::move(cf->manifest);
  }();
  if (!m) {
    abort();
    return fail(m.error());
  }
  if (o.encryptionKey && !layout.home.empty()) {
    // Saved before the file becomes visible (as the CLI does), so `p2pcdn
    // export` on the same store can decrypt it.
    auto expected = manifestId(*m);
    Status st = expected ? writeKeyFile(layout.home, *expected, *o.encryptionKey) : Status(fail(expected.error()));
    if (!st) {
      abort();
      return fail(st.error());
    }
  }
  auto id = storeCall<FileId>(op, [import, &m](BlockingStorage& st) {
    auto r = st.commitImport(import, *m, /*pinned=*/true);
    if (!r) (void)st.abortImport(import);
    return r;
  });
  if (!id) return fail(id.error());
  Status seeded = call<void>(op, [&]() -> Status {
    if (!ready()) return api::notConnected(op);
    if (o.encryptionKey) keys[*id] = *o.encryptionKey;
    if (opts.enableSeeding) startSeeding(*id);
    return {};
  });
  if (!seeded) return fail(seeded.error());
  UploadResult out;
  out.fileId = *id;
  out.manifest = std::move(*m);
  out.key = o.encryptionKey;
  out.link = formatLink(Link{*id, {opts.trackerUrl}, o.encryptionKey, {}});
  return out;
}

Status Core::exportTo(const FileId& id, const std::filesystem::path& out, const std::optional<EncryptionKey>& given) {
  const std::string op = "download to " + out.string();
  using Info = std::pair<Manifest, std::optional<EncryptionKey>>;
  auto m = storeCall<Manifest>(op, [id](BlockingStorage& st) { return st.getManifest(id); });
  if (!m) return fail(m.error());
  auto info = call<Info>(op, [&]() -> Result<Info> {
    if (!ready()) return api::notConnected(op);
    return Info{std::move(*m), keyFor(id, given)};
  });
  if (!info) return fail(info.error());
  // The CLI's export: verified chunks into a temporary file renamed at the end.
  return ChunkManager::exportFile(
      info->first,
      [&](ChunkIndex i) {
        return storeCall<Bytes>(op, [id, i](BlockingStorage& st) {
          return st.getChunk(id, i, ReadOptions{.verify = false});  // exportFile verifies
        });
      },
      out, info->second);
}

void Core::startDownloadTo(const FileId& id, std::optional<Manifest> manifest, std::filesystem::path out,
                           ProgressCallback onProgress, Completion<void> done, DownloadOptions options) {
  api::Listener l;
  l.onProgress = std::move(onProgress);
  std::weak_ptr<Core> weak = shared_from_this();
  l.onDone = [weak, id, out, key = options.key, done](Status st) {
    if (!st) return done(st);
    auto self = weak.lock();
    if (!self) return;  // done fires kCancelled when dropped
    self->worker.add([weak, id, out, key, done] {
      auto c = weak.lock();
      if (!c) return;
      auto r = std::make_shared<Status>(c->exportTo(id, out, key));
      if (!c->post([done, r] { done(*r); })) done(*r);
    });
  };
  auto lid = listen(id, manifest, std::move(l), options.timeout, "download " + shortId(id));
  if (!lid) done(fail(lid.error()));
}

// ---- streams (loop) ----------------------------------------------------------------

Status Core::startStream(const std::shared_ptr<ChunkStream::State>& s, const std::optional<Manifest>& manifest,
                         ProgressCallback onProgress) {
  if (!ready()) return api::notConnected("stream");
  s->key = keyFor(s->id, s->options.key);
  std::weak_ptr<ChunkStream::State> ws = s;
  std::weak_ptr<Core> wc = shared_from_this();
  api::Listener l;
  l.onProgress = std::move(onProgress);
  l.onManifest = [ws, wc](const Manifest& m) {
    auto st = ws.lock();
    auto c = wc.lock();
    if (!st || !c || st->closed || !c->ready()) return;
    st->manifest = m;
    if (m.encryption && !st->key && !st->error) {
      st->error = Error(Errc::kInvalidArgument, "stream " + shortId(st->id),
                        "the file is encrypted; a key is needed (DownloadOptions::key, or a link with k=)");
    }
    c->streamPump(st);
  };
  l.onChunk = [ws, wc](ChunkIndex i) {
    auto st = ws.lock();
    auto c = wc.lock();
    if (!st || !c || st->closed) return;
    if (i == st->cursor) c->streamPump(st);
  };
  l.onDone = [ws, wc](Status done) {
    auto st = ws.lock();
    auto c = wc.lock();
    if (!st || !c) return;
    st->listener = 0;
    if (!done) {
      if (!st->error) st->error = done.error();
    } else {
      st->complete = true;
      if (!st->manifest && c->ready()) {  // (held complete all along: no onManifest came)
        return c->storeAsync<Manifest>([id = st->id](BlockingStorage& bs) { return bs.getManifest(id); },
                                       [ws, wc](Result<Manifest> m) {
                                         auto st2 = ws.lock();
                                         auto c2 = wc.lock();
                                         if (!st2 || !c2) return;
                                         if (m && !st2->manifest) st2->manifest = std::move(*m);
                                         c2->streamPump(st2);
                                       });
      }
    }
    c->streamPump(st);
  };
  // The window, once the node holds the file (its fetch is set up on the store queue).
  l.onStarted = [ws, wc] {
    auto st = ws.lock();
    auto c = wc.lock();
    if (st && c && c->ready() && !st->complete && !st->closed) {
      c->node->setStreaming(st->id, true, st->cursor, st->options.lookahead);
    }
  };
  auto lid = listen(s->id, manifest, std::move(l), std::chrono::milliseconds(0), "stream " + shortId(s->id));
  if (!lid) return fail(lid.error());
  s->listener = *lid;
  std::erase_if(streams, [](const auto& w) { return w.expired(); });
  streams.push_back(s);
  return {};
}

void Core::streamFinishWait(ChunkStream::State& s, Result<std::optional<Bytes>> r) {
  s.timer.reset();
  s.waiting = false;
  Completion<std::optional<Bytes>> w = std::move(s.waiter);
  s.waiter = {};
  w(std::move(r));
}

void Core::streamNext(const std::shared_ptr<ChunkStream::State>& s, Completion<std::optional<Bytes>> done) {
  if (s->waiting) return done(fail(Errc::kInvalidArgument, "stream next", "another next() is still waiting"));
  s->waiter = std::move(done);
  s->waiting = true;
  if (s->options.timeout.count() > 0 && io) {
    s->timer = std::make_unique<asio::steady_timer>(*io, s->options.timeout);
    std::weak_ptr<ChunkStream::State> ws = s;
    std::weak_ptr<Core> wc = shared_from_this();
    s->timer->async_wait([ws, wc](boost::system::error_code ec) {
      auto st = ws.lock();
      auto c = wc.lock();
      if (ec || !st || !c || !st->waiting) return;
      Progress p = c->progressOf(st->id, std::nullopt);
      c->streamFinishWait(*st, fail(Errc::kTimedOut, "stream " + shortId(st->id),
                                    "chunk " + std::to_string(st->cursor) + " not received within " +
                                        std::to_string(st->options.timeout.count()) + " ms (" +
                                        std::to_string(p.peers) + " peers)"));
    });
  }
  streamPump(s);
}

// Hands the chunk at the cursor to a waiting next() once it is stored, and
// moves the node's streaming window along.
void Core::streamPump(const std::shared_ptr<ChunkStream::State>& s) {
  if (!s->waiting) return;
  const std::string op = "stream " + shortId(s->id);
  if (s->error) return streamFinishWait(*s, fail(*s->error));
  if (s->closed) return streamFinishWait(*s, fail(Errc::kCancelled, op, "the stream was closed"));
  if (!ready()) return streamFinishWait(*s, api::notConnected(op));
  if (!s->manifest) return;  // waiting for it
  const Manifest& m = *s->manifest;
  if (s->cursor >= m.chunkCount()) return streamFinishWait(*s, std::optional<Bytes>{});
  if (!s->complete && !node->have(s->id, s->cursor)) return;  // waiting for it
  if (s->reading) return;
  // Read, verified and decrypted on the store queue; handed over on the loop.
  s->reading = true;
  const ChunkIndex at = s->cursor;
  if (m.encryption && !s->sharedManifest) s->sharedManifest = std::make_shared<const Manifest>(m);
  auto task = [id = s->id, m = m.encryption ? s->sharedManifest : nullptr, key = s->key, at](BlockingStorage& st) -> Result<Bytes> {
    auto stored = st.getChunk(id, at, ReadOptions{.verify = true});
    if (!stored || !m) return stored;
    if (!key) return fail(Errc::kInvalidArgument, "stream " + id.hex().substr(0, 16), "the file is encrypted; a key is needed");
    return ChunkManager::decryptChunk(*key, *m, at, *stored);
  };
  std::weak_ptr<ChunkStream::State> ws = s;
  std::weak_ptr<Core> wc = shared_from_this();
  storeAsync<Bytes>(std::move(task), [ws, wc, at](Result<Bytes> r) {
    auto st = ws.lock();
    auto c = wc.lock();
    if (!st || !c) return;
    st->reading = false;
    if (!st->waiting || st->closed || st->error || st->cursor != at) return c->streamPump(st);
    if (!r) {
      st->error = r.error();
      return c->streamFinishWait(*st, fail(r.error()));
    }
    ++st->cursor;
    st->position = st->cursor;
    if (!st->complete && st->listener && c->ready()) c->node->setStreaming(st->id, true, st->cursor, st->options.lookahead);
    c->streamFinishWait(*st, std::optional<Bytes>(std::move(*r)));
  });
}

void Core::streamClose(const std::shared_ptr<ChunkStream::State>& s) {
  if (s->closed) return;
  s->closed = true;
  if (s->listener) {
    unlisten(s->listener);
    s->listener = 0;
    // The fetch goes on in whole-file order (and the file is seeded when done).
    if (ready()) node->setStreaming(s->id, false, 0, 0);
  }
  if (s->waiting) streamFinishWait(*s, fail(Errc::kCancelled, "stream next", "the stream was closed"));
  s->timer.reset();
}

// ---- ChunkStream -------------------------------------------------------------------

ChunkStream::ChunkStream(std::shared_ptr<State> state) : s_(std::move(state)) {}
ChunkStream::ChunkStream(ChunkStream&&) noexcept = default;
ChunkStream& ChunkStream::operator=(ChunkStream&& o) noexcept {
  if (this != &o) {
    close();
    s_ = std::move(o.s_);
  }
  return *this;
}
ChunkStream::~ChunkStream() { close(); }

void ChunkStream::close() {
  if (!s_) return;
  auto c = s_->core.lock();
  if (!c) return;
  if (c->onLoop()) {
    c->streamClose(s_);
  } else {
    (void)c->post([c, s = s_] { c->streamClose(s); });
  }
}

Result<std::optional<Bytes>> ChunkStream::next() {
  if (!s_) return fail(Errc::kInvalidArgument, "stream next", "moved-from ChunkStream");
  auto c = s_->core.lock();
  if (!c) return fail(Errc::kCancelled, "stream next", "the P2PCDN is gone");
  P2PCDN_TRY(c->blockingAllowed("stream next"));
  auto w = std::make_shared<api::Waiter<std::optional<Bytes>>>();
  nextAsync([w](Result<std::optional<Bytes>> r) { w->set(std::move(r)); });
  return w->wait();
}

void ChunkStream::nextAsync(std::function<void(Result<std::optional<Bytes>>)> done) {
  Completion<std::optional<Bytes>> d(std::move(done), "stream next");
  if (!s_) return d(fail(Errc::kInvalidArgument, "stream next", "moved-from ChunkStream"));
  auto c = s_->core.lock();
  if (!c) return d(fail(Errc::kCancelled, "stream next", "the P2PCDN is gone"));
  if (!c->post([c, s = s_, d] { c->streamNext(s, d); })) d(api::notConnected("stream next"));
}

ChunkIndex ChunkStream::position() const { return s_ ? s_->position.load() : 0; }

const FileId& ChunkStream::fileId() const {
  static const FileId none{};
  return s_ ? s_->id : none;
}

// ---- P2PCDN --------------------------------------------------------------------------

P2PCDN::P2PCDN(P2PCDNOptions options) : core_(std::make_shared<Core>(std::move(options))) {}
P2PCDN::~P2PCDN() { core_->disconnect(); }

Status P2PCDN::connect() { return core_->connect(); }
void P2PCDN::disconnect() { core_->disconnect(); }
bool P2PCDN::connected() const { return core_->running(); }
std::string P2PCDN::peerId() const {
  std::lock_guard lock(core_->mu);
  return core_->state == Core::State::kRunning ? core_->peerIdHex : std::string();
}

Result<UploadResult> P2PCDN::upload(const std::filesystem::path& path, const FileMetadata& metadata) {
  return core_->importFile(&path, {}, metadata);
}

Result<UploadResult> P2PCDN::upload(ByteView data, const FileMetadata& metadata) {
  return core_->importFile(nullptr, data, metadata);
}

void P2PCDN::uploadAsync(std::filesystem::path path, FileMetadata metadata,
                         std::function<void(Result<UploadResult>)> done) {
  Completion<UploadResult> d(std::move(done), "upload");
  if (!core_->running()) return d(api::notConnected("upload"));
  std::weak_ptr<Core> weak = core_;
  core_->worker.add([weak, path = std::move(path), metadata = std::move(metadata), d] {
    auto c = weak.lock();
    if (!c) return;
    auto r = std::make_shared<Result<UploadResult>>(c->importFile(&path, {}, metadata));
    if (!c->post([d, r] { d(std::move(*r)); })) d(std::move(*r));
  });
}

void P2PCDN::uploadAsync(Bytes data, FileMetadata metadata, std::function<void(Result<UploadResult>)> done) {
  Completion<UploadResult> d(std::move(done), "upload");
  if (!core_->running()) return d(api::notConnected("upload"));
  std::weak_ptr<Core> weak = core_;
  core_->worker.add([weak, data = std::move(data), metadata = std::move(metadata), d] {
    auto c = weak.lock();
    if (!c) return;
    auto r = std::make_shared<Result<UploadResult>>(c->importFile(nullptr, data, metadata));
    if (!c->post([d, r] { d(std::move(*r)); })) d(std::move(*r));
  });
}

void P2PCDN::downloadAsync(const FileId& id, std::optional<Manifest> manifest, ProgressCallback onProgress,
                           std::function<void(Result<Bytes>)> onDone, DownloadOptions options) {
  const std::string op = "download " + shortId(id);
  Completion<Bytes> done(std::move(onDone), op);
  auto c = core_;
  bool posted = c->post([c, id, manifest = std::move(manifest), onProgress = std::move(onProgress), done,
                         options = std::move(options), op]() mutable {
    api::Listener l;
    l.onProgress = std::move(onProgress);
    std::weak_ptr<Core> weak = c;
    l.onDone = [weak, id, key = options.key, done](Status st) {
      if (!st) return done(fail(st.error()));
      auto self = weak.lock();
      if (!self || !self->ready()) return done(api::notConnected("download"));
      // Read back on the worker (the store on its queue), answered on the loop.
      self->worker.add([weak, id, key, done] {
        auto core = weak.lock();
        if (!core) return;  // done fires kCancelled when dropped
        auto r = std::make_shared<Result<Bytes>>(core->readAll(id, key));
        if (!core->post([done, r] { done(std::move(*r)); })) done(std::move(*r));
      });
    };
    auto lid = c->listen(id, manifest, std::move(l), options.timeout, op);
    if (!lid) done(fail(lid.error()));
  });
  if (!posted) done(api::notConnected(op));
}

Result<Bytes> P2PCDN::download(const FileId& id, std::optional<Manifest> manifest, ProgressCallback onProgress,
                               const DownloadOptions& options) {
  P2PCDN_TRY(core_->blockingAllowed("download"));
  auto w = std::make_shared<api::Waiter<Bytes>>();
  downloadAsync(id, std::move(manifest), std::move(onProgress), [w](Result<Bytes> r) { w->set(std::move(r)); },
                options);
  return w->wait();
}

void P2PCDN::downloadToAsync(const FileId& id, std::optional<Manifest> manifest, std::filesystem::path out,
                             ProgressCallback onProgress, std::function<void(Status)> onDone,
                             DownloadOptions options) {
  const std::string op = "download " + shortId(id);
  Completion<void> done(std::move(onDone), op);
  auto c = core_;
  bool posted = c->post([c, id, manifest = std::move(manifest), out = std::move(out),
                         onProgress = std::move(onProgress), done, options = std::move(options)]() mutable {
    c->startDownloadTo(id, std::move(manifest), std::move(out), std::move(onProgress), done, std::move(options));
  });
  if (!posted) done(api::notConnected(op));
}

Status P2PCDN::downloadTo(const FileId& id, std::optional<Manifest> manifest, const std::filesystem::path& out,
                          ProgressCallback onProgress, const DownloadOptions& options) {
  P2PCDN_TRY(core_->blockingAllowed("download"));
  auto w = std::make_shared<api::Waiter<void>>();
  downloadToAsync(id, std::move(manifest), out, std::move(onProgress), [w](Status st) { w->set(std::move(st)); },
                  options);
  return w->wait();
}

Result<ChunkStream> P2PCDN::stream(const FileId& id, std::optional<Manifest> manifest, ProgressCallback onProgress,
                                   const DownloadOptions& options) {
  auto s = std::make_shared<ChunkStream::State>();
  s->core = core_;
  s->id = id;
  s->options = options;
  if (s->options.lookahead == 0) s->options.lookahead = 1;
  auto c = core_;
  Status st = c->call<void>("stream", [&]() -> Status { return c->startStream(s, manifest, std::move(onProgress)); });
  if (!st) return fail(st.error());
  return ChunkStream(std::move(s));
}

Status P2PCDN::remove(const FileId& id) {
  auto c = core_;
  auto w = std::make_shared<api::Waiter<void>>();
  // Only the node's callback holds it once the call has run: dropped (a stop), it fires kCancelled.
  api::Completion<void> deleted([w](Status s) { w->set(std::move(s)); }, "remove");
  Status st = c->call<void>("remove", [c, id, deleted = std::move(deleted)]() -> Status {
    if (!c->ready()) return api::notConnected("remove");
    c->endListeners(id, "the file was removed");
    c->forgetInNode(id);
    c->keys.erase(id);
    // Deleted on the node's store queue (after its loads already queued, before any
    // later one: a download of the id started meanwhile finds nothing); then its key.
    c->node->removeStored(id, [home = c->layout.home, id, deleted](Status s) {
      if (s && !home.empty()) {
        std::error_code ec;
        std::filesystem::remove(keyFilePath(home, id), ec);
      }
      deleted(std::move(s));
    });
    return {};
  });
  if (!st) return st;
  if (c->onLoop()) return {};  // called from a callback: the delete completes later
  return w->wait();
}

Result<CDNStats> P2PCDN::getStats() const {
  auto c = core_;
  auto u = c->storeCall<StorageUsage>("stats", [](BlockingStorage& s) { return s.usage(); });
  if (!u) return fail(u.error());
  return c->call<CDNStats>("stats", [c, &u]() -> Result<CDNStats> {
    if (!c->ready()) return api::notConnected("stats");
    CDNStats s;
    s.files = u->files;
    s.chunksStored = u->chunks;
    s.bytesStored = u->bytesUsed;
    s.bytesUploaded = c->retiredUp;
    s.bytesDownloaded = c->retiredDown;
    s.chunksDownloaded = c->retiredChunks;
    for (const FileId& id : c->inNode) {
      if (auto p = c->node->progress(id)) {
        s.bytesUploaded += p->bytesUploaded;
        s.bytesDownloaded += p->bytesDownloaded;
        s.chunksDownloaded += p->chunksFetched;
      }
    }
    std::set<std::string> peers;
    for (const auto& p : c->node->peerStats()) peers.insert(p.peerId);
    s.peers = peers.size();
    std::set<FileId> fetching;
    for (const auto& [k, l] : c->listeners) fetching.insert(l.file);
    s.activeDownloads = fetching.size();
    s.seeding = c->serving.size();
    return s;
  });
}

Result<std::vector<StoredFile>> P2PCDN::getStoredFiles() const {
  auto c = core_;
  return c->storeCall<std::vector<StoredFile>>("stored files", [](BlockingStorage& s) { return s.listFiles(); });
}

Status P2PCDN::discoverPeers() {
  auto c = core_;
  return c->call<void>("discover peers", [c]() -> Status {
    if (!c->ready()) return api::notConnected("discover peers");
    c->node->announceNow();
    return {};
  });
}

Result<std::vector<std::string>> P2PCDN::getConnectedPeers() const {
  auto c = core_;
  return c->call<std::vector<std::string>>("connected peers", [c]() -> Result<std::vector<std::string>> {
    if (!c->ready()) return api::notConnected("connected peers");
    std::set<std::string> ids;
    for (const auto& p : c->node->peerStats()) ids.insert(p.peerId);
    return std::vector<std::string>(ids.begin(), ids.end());
  });
}

Result<std::vector<PeerStats>> P2PCDN::getPeerStats() const {
  auto c = core_;
  return c->call<std::vector<PeerStats>>("peer stats", [c]() -> Result<std::vector<PeerStats>> {
    if (!c->ready()) return api::notConnected("peer stats");
    return c->peerStats();
  });
}

}  // namespace p2pcdn
