#include "p2pcdn/chunk_manager.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "chunk/file_io.hpp"
#include "core/blake3.hpp"
#include "crypto/crypto.hpp"

namespace p2pcdn {
namespace {

Result<Manifest> skeleton(const ChunkOptions& o, std::string defaultName, std::uint64_t size) {
  Manifest m;
  m.name = o.name.empty() ? std::move(defaultName) : o.name;
  if (m.name.size() > kMaxNameBytes) {
    // Cut before the character that crosses the limit, never inside its UTF-8 sequence.
    std::size_t n = kMaxNameBytes;
    while (n > 0 && (static_cast<unsigned char>(m.name[n]) & 0xc0) == 0x80) --n;
    m.name.resize(n);
  }
  m.mimeType = o.mimeType.empty() ? ChunkManager::guessMimeType(m.name) : o.mimeType;
  m.chunkSize = o.chunkSize;
  m.size = size;
  if (o.encryptionKey) {
    EncryptionInfo e;
    P2PCDN_TRY(crypto::randomBytes(e.salt));
    m.encryption = e;
  }
  // Validate everything but the hashes before reading a byte.
  std::uint64_t count = chunkCountFor(size, m.chunkSize);
  if (count > kMaxChunkCount) {
    return fail(Errc::kTooLarge, "chunk file",
                std::to_string(size) + " bytes need " + std::to_string(count) + " chunks; the limit is " +
                    std::to_string(kMaxChunkCount) + " (use a larger chunk size)");
  }
  m.chunkHashes.resize(count);
  if (auto v = validateManifest(m); !v) return fail(Errc::kInvalidArgument, "chunk file", v.error().detail());
  m.chunkHashes.clear();
  return m;
}

// Turns plaintext chunk i into its stored form (encrypting when the manifest says so).
Result<Bytes> sealed(const Manifest& m, const std::optional<EncryptionKey>& key, ChunkIndex i, ByteView plain) {
  if (!m.encryption) return Bytes(plain.begin(), plain.end());
  if (!key) return fail(Errc::kInvalidArgument, "encrypt chunk", "the file is encrypted but no key was given");
  return crypto::encryptChunk(*key, *m.encryption, i, plain);
}

// Streams the plaintext chunks of a file of known size.
template <class Fn>
Status streamFile(InputFile& in, const std::filesystem::path& path, std::uint32_t chunkSize, std::uint64_t size,
                  const ProgressFn& progress, Fn&& fn) {
  Bytes buf(std::min<std::uint64_t>(chunkSize, size));
  std::uint64_t done = 0;
  for (ChunkIndex i = 0; done < size; ++i) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunkSize, size - done));
    std::span<std::uint8_t> piece(buf.data(), n);
    P2PCDN_TRY(in.readExact(piece, path));
    P2PCDN_TRY(fn(i, ByteView(piece)));
    done += n;
    if (progress) progress(done, size);
  }
  return {};
}

}  // namespace

Result<Manifest> ChunkManager::chunkFile(const std::filesystem::path& path, const ChunkOptions& options,
                                         const ChunkVisitor& visit, const ProgressFn& progress) {
  auto in = InputFile::open(path);
  if (!in) return fail(in.error());
  auto m = skeleton(options, path.filename().string(), in->size());
  if (!m) return m;
  Manifest& man = *m;
  const std::uint64_t count = chunkCountFor(man.size, man.chunkSize);
  man.chunkHashes.resize(count);

  // A reader thread reads, encrypts and hashes ahead (at most kDepth chunks in
  // flight, so memory stays bounded) while this thread hands chunks to
  // `visit`, typically a store whose writes then overlap with the reading.
  constexpr std::size_t kDepth = 4;
  struct Slot {
    ChunkIndex index = 0;
    Bytes data;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Slot> ready, spare;
  for (std::size_t i = 0; i < kDepth; ++i) spare.emplace_back();
  bool stop = false, producerDone = false;
  Status producerStatus;

  std::thread reader([&] {
    Bytes plain(static_cast<std::size_t>(std::min<std::uint64_t>(man.chunkSize, man.size)));
    std::uint64_t offset = 0;
    for (ChunkIndex i = 0; i < count; ++i) {
      Slot slot;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || !spare.empty(); });
        if (stop) break;
        slot = std::move(spare.front());
        spare.pop_front();
      }
      auto n = static_cast<std::size_t>(std::min<std::uint64_t>(man.chunkSize, man.size - offset));
      Status st;
      if (man.encryption) {
        std::span<std::uint8_t> piece(plain.data(), n);
        st = in->readExact(piece, path);
        if (st) {
          auto sealedChunk = crypto::encryptChunk(*options.encryptionKey, *man.encryption, i, piece);
          if (sealedChunk) slot.data = std::move(*sealedChunk);
          else st = fail(sealedChunk.error());
        }
      } else {
        slot.data.resize(n);
        st = in->readExact(slot.data, path);
      }
      offset += n;
      if (st) man.chunkHashes[i] = Blake3::hash(slot.data);  // each index written by this thread only
      std::lock_guard lock(mu);
      if (!st) {
        producerStatus = st;
        break;
      }
      slot.index = i;
      ready.push_back(std::move(slot));
      cv.notify_all();
    }
    std::lock_guard lock(mu);
    producerDone = true;
    cv.notify_all();
  });

  Status result;
  std::uint64_t done = 0;
  for (std::uint64_t received = 0; received < count;) {
    Slot slot;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return !ready.empty() || producerDone; });
      if (ready.empty()) break;  // the reader failed
      slot = std::move(ready.front());
      ready.pop_front();
    }
    if (visit) result = visit(slot.index, slot.data);
    done += man.plainChunkLength(slot.index);
    ++received;
    if (progress) progress(done, man.size);
    std::lock_guard lock(mu);
    spare.push_back(std::move(slot));
    cv.notify_all();
    if (!result) break;
  }
  {
    std::lock_guard lock(mu);
    stop = true;
    cv.notify_all();
  }
  reader.join();
  if (!producerStatus) return fail(producerStatus.error());
  if (!result) return fail(result.error());
  P2PCDN_TRY(validateManifest(man));
  return m;
}

Status ChunkManager::readChunks(const std::filesystem::path& path, const Manifest& manifest,
                                const std::optional<EncryptionKey>& key, const ChunkVisitor& visit,
                                const ProgressFn& progress) {
  auto in = InputFile::open(path);
  if (!in) return fail(in.error());
  if (in->size() != manifest.size) {
    return fail(Errc::kIntegrity, "read " + path.string(), "file size changed since it was hashed");
  }
  P2PCDN_TRY(validateManifest(manifest));
  return streamFile(*in, path, manifest.chunkSize, manifest.size, progress,
                    [&](ChunkIndex i, ByteView plain) -> Status {
                      Bytes sealedChunk;
                      ByteView stored = plain;
                      if (manifest.encryption) {
                        auto s = sealed(manifest, key, i, plain);
                        if (!s) return fail(s.error());
                        sealedChunk = std::move(*s);
                        stored = sealedChunk;
                      }
                      // The file may have changed since it was hashed (or the key is wrong):
                      // never hand on a chunk that does not match the manifest.
                      if (auto v = verifyChunk(manifest, i, stored); !v) {
                        return fail(Errc::kIntegrity, "read " + path.string(),
                                    "chunk " + std::to_string(i) + " no longer matches the manifest (" +
                                        v.error().detail() + ")");
                      }
                      return visit(i, stored);
                    });
}

Result<ChunkedFile> ChunkManager::chunkBytes(ByteView data, const ChunkOptions& options) {
  auto m = skeleton(options, options.name.empty() ? "data" : options.name, data.size());
  if (!m) return fail(m.error());
  ChunkedFile out;
  out.manifest = std::move(*m);
  Manifest& man = out.manifest;
  for (ChunkIndex i = 0; std::uint64_t{i} * man.chunkSize < data.size(); ++i) {
    std::size_t start = std::size_t{i} * man.chunkSize;
    auto piece = data.subspan(start, std::min<std::size_t>(man.chunkSize, data.size() - start));
    auto s = sealed(man, options.encryptionKey, i, piece);
    if (!s) return fail(s.error());
    man.chunkHashes.push_back(Blake3::hash(*s));
    out.chunks.push_back(std::move(*s));
  }
  auto id = manifestId(man);
  if (!id) return fail(id.error());
  out.fileId = *id;
  return out;
}

Result<Bytes> ChunkManager::reassembleFile(const std::vector<Bytes>& chunks, const Manifest& manifest,
                                           const std::optional<EncryptionKey>& key) {
  const char* op = "reassemble file";
  P2PCDN_TRY(validateManifest(manifest));
  if (chunks.size() != manifest.chunkCount()) {
    return fail(Errc::kInvalidArgument, op,
                "have " + std::to_string(chunks.size()) + " chunks, need " + std::to_string(manifest.chunkCount()));
  }
  if (manifest.encryption && !key) return fail(Errc::kInvalidArgument, op, "the file is encrypted; a key is needed");
  Bytes out;
  out.reserve(manifest.size);
  for (ChunkIndex i = 0; i < manifest.chunkCount(); ++i) {
    P2PCDN_TRY(verifyChunk(manifest, i, chunks[i]));
    if (manifest.encryption) {
      auto plain = crypto::decryptChunk(*key, *manifest.encryption, i, chunks[i]);
      if (!plain) return fail(plain.error());
      out.insert(out.end(), plain->begin(), plain->end());
    } else {
      out.insert(out.end(), chunks[i].begin(), chunks[i].end());
    }
  }
  return out;
}

Status ChunkManager::exportFile(const Manifest& manifest, const ChunkSource& source,
                                const std::filesystem::path& out, const std::optional<EncryptionKey>& key,
                                const ProgressFn& progress) {
  P2PCDN_TRY(validateManifest(manifest));
  if (manifest.encryption && !key) {
    return fail(Errc::kInvalidArgument, "export", "the file is encrypted; a key is needed (link with k=...)");
  }
  auto file = AtomicOutputFile::create(out);
  if (!file) return fail(file.error());
  std::uint64_t done = 0;
  for (ChunkIndex i = 0; i < manifest.chunkCount(); ++i) {
    auto stored = source(i);
    if (!stored) return fail(stored.error());
    P2PCDN_TRY(verifyChunk(manifest, i, *stored));
    if (manifest.encryption) {
      auto plain = crypto::decryptChunk(*key, *manifest.encryption, i, *stored);
      if (!plain) return fail(plain.error());
      P2PCDN_TRY(file->write(*plain));
    } else {
      P2PCDN_TRY(file->write(*stored));
    }
    done += manifest.plainChunkLength(i);
    if (progress) progress(done, manifest.size);
  }
  return file->commit();
}

Result<Bytes> ChunkManager::encryptChunk(const EncryptionKey& key, const Manifest& m, ChunkIndex index,
                                         ByteView plain) {
  if (!m.encryption) return fail(Errc::kInvalidArgument, "encrypt chunk", "the manifest has no encryption");
  return crypto::encryptChunk(key, *m.encryption, index, plain);
}

Result<Bytes> ChunkManager::decryptChunk(const EncryptionKey& key, const Manifest& m, ChunkIndex index,
                                         ByteView stored) {
  if (!m.encryption) return fail(Errc::kInvalidArgument, "decrypt chunk", "the manifest has no encryption");
  return crypto::decryptChunk(key, *m.encryption, index, stored);
}

}  // namespace p2pcdn
