#include "cli/commands.hpp"

#include <atomic>
#include <csignal>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "chunk/key_store.hpp"
#include "cli/progress.hpp"
#include "core/hex.hpp"
#include "crypto/crypto.hpp"
#include "p2pcdn/chunk_manager.hpp"
#include "p2pcdn/chunk_storage.hpp"

namespace p2pcdn::cli {
namespace {

using nlohmann::json;

std::atomic<bool> gInterrupted{false};

int exitCodeFor(const Error& e) {
  switch (e.code()) {
    case Errc::kNotFound: return kExitNotFound;
    case Errc::kIntegrity: return kExitIntegrity;
    case Errc::kIo: return kExitIo;
    case Errc::kCancelled: return kExitInterrupted;
    case Errc::kInvalidArgument:
    case Errc::kMalformed: return kExitUsage;
    default: return kExitFailure;
  }
}

}  // namespace

bool interrupted() { return gInterrupted.load(std::memory_order_relaxed); }

int report(const Error& e) {
  std::fprintf(stderr, "p2pcdn: %s\n", e.message().c_str());
  return exitCodeFor(e);
}

Result<std::unique_ptr<ChunkStorage>> openStore(const Globals& g) {
  StorageOptions o;
  if (g.quotaBytes) o.quotaBytes = g.quotaBytes;
  if (g.durability == "process-crash") o.durability = Durability::kProcessCrash;
  return openSqliteStorage(g.home / "store.db", o);
}

// Keys of encrypted files: <home>/keys/<id>.key (chunk/key_store.hpp, shared
// with the library API).
std::optional<EncryptionKey> loadKey(const Globals& g, const FileId& id) {
  auto k = readKeyFile(g.home, id);
  if (!k) return std::nullopt;
  return *k;
}

// Accepts a link, a full id, or a unique prefix (>= 4 hex digits) of a stored id.
Result<Resolved> resolve(BlockingStorage& store, const std::string& text) {
  if (auto link = parseLink(text)) return Resolved{link->fileId, link->key, link->trackers};
  bool hex = text.size() >= 4 && text.size() < 64 &&
             text.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
  if (!hex) return fail(Errc::kInvalidArgument, "resolve id", "'" + text + "' is not a file id, prefix or link");
  auto files = store.listFiles();
  if (!files) return fail(files.error());
  std::string lower = text;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::optional<FileId> match;
  for (const auto& f : *files) {
    if (f.fileId.hex().starts_with(lower)) {
      if (match) return fail(Errc::kInvalidArgument, "resolve id", "prefix '" + text + "' is ambiguous");
      match = f.fileId;
    }
  }
  if (!match) return fail(Errc::kNotFound, "resolve id", "no stored file id starts with '" + text + "'");
  return Resolved{*match, std::nullopt, {}};
}

std::string humanSize(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

void installSignalHandlers() {
  // SIGINT/SIGTERM end long operations cleanly: partial imports are aborted
  // and partial exports removed, so nothing half-done is left behind.
  struct sigaction sa {};
  sa.sa_handler = [](int) { gInterrupted.store(true); };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::filesystem::path defaultHome() {
  if (const char* h = std::getenv("P2PCDN_HOME"); h && *h) return h;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::filesystem::path(x) / "p2pcdn";
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::filesystem::path(home) / ".local" / "share" / "p2pcdn";
  }
  return ".p2pcdn";
}

Result<Added> addToStore(const Globals& g, BlockingStorage& store, const AddArgs& a) {
  ChunkOptions opts;
  opts.name = a.name;
  opts.mimeType = a.mime;
  if (a.chunkSize) opts.chunkSize = a.chunkSize;
  if (a.encrypt) {
    auto k = crypto::randomKey();
    if (!k) return fail(k.error());
    opts.encryptionKey = *k;
  }
  if (a.inPlace && !a.encrypt) {
    // One pass, no copy: the file is hashed, and the store records it as
    // the stored copy, stamped (size, modification time) before the read.
    auto stamp = stampOf(a.file);
    if (!stamp) return fail(stamp.error());
    Result<Manifest> m = [&] {
      ProgressBar bar("adding", !g.quiet);
      return ChunkManager::chunkFile(
          a.file, opts,
          [&](ChunkIndex, ByteView) -> Status {
            if (interrupted()) return fail(Errc::kCancelled, "add", "interrupted");
            return {};
          },
          [&](auto d, auto t) { bar.update(d, t); });
    }();
    if (!m) return fail(m.error());
    auto id = store.adoptFile(*m, a.file, *stamp, /*pinned=*/true);
    if (!id) return fail(id.error());
    return Added{*id, std::move(*m), std::nullopt};
  }
  if (a.inPlace && !g.quiet) {
    std::fprintf(stderr, "p2pcdn: --in-place does not apply to --encrypt: the ciphertext is kept in the store\n");
  }
  // One pass: chunks are staged in the store while they are hashed, and
  // appear under the file id once the manifest is complete and matches them.
  auto import = store.beginImport();
  if (!import) return fail(import.error());
  Result<Manifest> m = [&] {
    ProgressBar bar("adding", !g.quiet);
    return ChunkManager::chunkFile(
        a.file, opts,
        [&](ChunkIndex i, ByteView c) -> Status {
          if (interrupted()) return fail(Errc::kCancelled, "add", "interrupted");
          return store.importChunk(*import, i, c);
        },
        [&](auto d, auto t) { bar.update(d, t); });
  }();
  if (!m) {
    (void)store.abortImport(*import);
    return fail(m.error());
  }
  if (opts.encryptionKey) {
    // Save the key before the file becomes visible: a kill between the two
    // must not leave a stored file that nobody can decrypt.
    auto expected = manifestId(*m);
    if (!expected) return fail(expected.error());
    if (auto st = writeKeyFile(g.home, *expected, *opts.encryptionKey); !st) {
      (void)store.abortImport(*import);
      return fail(st.error());
    }
  }
  auto id = store.commitImport(*import, *m, /*pinned=*/true);
  if (!id) {
    (void)store.abortImport(*import);
    return fail(id.error());
  }
  return Added{*id, std::move(*m), opts.encryptionKey};
}

int cmdAdd(const Globals& g, const AddArgs& a) {
  auto storeR = openStore(g);
  if (!storeR) return report(storeR.error());
  BlockingStorage store(**storeR);
  auto added = addToStore(g, store, a);
  if (!added) return report(added.error());
  const Manifest& m = added->manifest;
  std::string linkText = formatLink(Link{added->id, {}, added->key, {}});
  if (g.json) {
    json j{{"fileId", added->id.hex()}, {"link", linkText},         {"name", m.name},
           {"size", m.size},            {"chunks", m.chunkCount()}, {"mimeType", m.mimeType},
           {"encrypted", m.encryption.has_value()}};
    std::cout << j.dump() << '\n';
  } else {
    std::cout << added->id.hex() << '\n' << linkText << '\n';
  }
  return kExitOk;
}

int cmdLs(const Globals& g) {
  auto storeR = openStore(g);
  if (!storeR) return report(storeR.error());
  BlockingStorage store(**storeR);
  auto files = store.listFiles();
  if (!files) return report(files.error());
  if (g.json) {
    json arr = json::array();
    for (const auto& f : *files) {
      arr.push_back({{"fileId", f.fileId.hex()},
                     {"name", f.manifest.name},
                     {"size", f.manifest.size},
                     {"mimeType", f.manifest.mimeType},
                     {"chunksPresent", f.chunksPresent},
                     {"chunksTotal", f.manifest.chunkCount()},
                     {"pinned", f.pinned},
                     {"encrypted", f.manifest.encryption.has_value()}});
    }
    std::cout << arr.dump() << '\n';
    return kExitOk;
  }
  for (const auto& f : *files) {
    std::printf("%s  %10s  %6u/%-6u  %s\n", f.fileId.hex().c_str(), humanSize(f.manifest.size).c_str(),
                f.chunksPresent, f.manifest.chunkCount(), f.manifest.name.c_str());
  }
  return kExitOk;
}

int cmdExport(const Globals& g, const std::string& idText, const std::filesystem::path& out,
              const std::string& keyText) {
  auto storeR = openStore(g);
  if (!storeR) return report(storeR.error());
  BlockingStorage store(**storeR);
  auto r = resolve(store, idText);
  if (!r) return report(r.error());
  auto m = store.getManifest(r->id);
  if (!m) return report(m.error());
  std::optional<EncryptionKey> key = r->key;
  if (!keyText.empty()) {
    EncryptionKey k{};
    if (!fromHex(keyText, k)) return report(Error(Errc::kInvalidArgument, "export", "--key must be 64 hex digits"));
    key = k;
  }
  if (!key && m->encryption) key = loadKey(g, r->id);
  ProgressBar bar("exporting", !g.quiet);
  Status st = ChunkManager::exportFile(
      *m,
      [&](ChunkIndex i) -> Result<Bytes> {
        if (interrupted()) return fail(Errc::kCancelled, "export", "interrupted");
        // exportFile verifies every chunk against the manifest itself.
        return store.getChunk(r->id, i, ReadOptions{.verify = false});
      },
      out, key,
      [&](auto d, auto t) { bar.update(d, t); });
  bar.finish();
  if (!st) return report(st.error());
  return kExitOk;
}

int cmdVerify(const Globals& g, const std::string& idText) {
  auto storeR = openStore(g);
  if (!storeR) return report(storeR.error());
  BlockingStorage store(**storeR);
  auto r = resolve(store, idText);
  if (!r) return report(r.error());
  auto m = store.getManifest(r->id);
  if (!m) return report(m.error());
  auto present = store.presentChunks(r->id);
  if (!present) return report(present.error());
  std::vector<ChunkIndex> corrupt, missing;
  std::uint32_t good = 0;
  ProgressBar bar("verifying", !g.quiet);
  for (ChunkIndex i = 0; i < m->chunkCount(); ++i) {
    if (!(*present)[i]) {
      missing.push_back(i);
      continue;
    }
    auto c = store.getChunk(r->id, i, ReadOptions{.verify = true});
    if (c) {
      ++good;
    } else if (c.error().code() == Errc::kIntegrity) {
      corrupt.push_back(i);
      if (!g.json) std::fprintf(stderr, "p2pcdn: %s\n", c.error().message().c_str());
    } else {
      bar.finish();
      return report(c.error());
    }
    bar.update(std::uint64_t{i} + 1, m->chunkCount());
  }
  bar.finish();
  if (g.json) {
    json j{{"fileId", r->id.hex()}, {"chunksTotal", m->chunkCount()}, {"chunksVerified", good},
           {"corrupt", corrupt},    {"missing", missing}};
    std::cout << j.dump() << '\n';
  } else {
    std::printf("%s: %u/%u chunks verified, %zu corrupt, %zu missing\n", r->id.hex().c_str(), good,
                m->chunkCount(), corrupt.size(), missing.size());
  }
  if (!corrupt.empty()) return kExitIntegrity;
  if (!missing.empty()) return kExitIncomplete;
  return kExitOk;
}

int cmdRm(const Globals& g, const std::string& idText) {
  auto storeR = openStore(g);
  if (!storeR) return report(storeR.error());
  BlockingStorage store(**storeR);
  auto r = resolve(store, idText);
  if (!r) return report(r.error());
  if (auto st = store.deleteFile(r->id); !st) return report(st.error());
  std::error_code ec;
  std::filesystem::remove(keyFilePath(g.home, r->id), ec);
  if (!g.quiet) std::fprintf(stderr, "removed %s\n", r->id.hex().c_str());
  return kExitOk;
}

int cmdManifest(const Globals& g, const std::string& idText) {
  auto storeR = openStore(g);
  if (!storeR) return report(storeR.error());
  BlockingStorage store(**storeR);
  auto r = resolve(store, idText);
  if (!r) return report(r.error());
  auto m = store.getManifest(r->id);
  if (!m) return report(m.error());
  if (g.json) {
    auto j = manifestToJson(*m, 2);
    if (!j) return report(j.error());
    std::cout << *j << '\n';
    return kExitOk;
  }
  std::printf("file id:    %s\nname:       %s\nsize:       %llu bytes (%s)\ntype:       %s\n"
              "chunk size: %u\nchunks:     %u\nencryption: %s\n",
              r->id.hex().c_str(), m->name.c_str(), static_cast<unsigned long long>(m->size),
              humanSize(m->size).c_str(), m->mimeType.c_str(), m->chunkSize, m->chunkCount(),
              m->encryption ? "AES-256-GCM" : "none");
  return kExitOk;
}

}  // namespace p2pcdn::cli
