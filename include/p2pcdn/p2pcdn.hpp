// P2PCDN: the library API, with the seed's names (P2PCDN, P2PCDNOptions,
// upload/download/stream/delete, PeerMesh's discoverPeers/getConnectedPeers/
// getPeerStats). One P2PCDN object is one peer: a chunk store, a connection to
// a WebSocket tracker and WebRTC links to other peers, all driven by one event
// loop thread that the object starts in connect() and ends in disconnect().
//
// Threads. Every method may be called from any thread; the call is carried
// onto the loop thread and its result back. Two forms:
//  - blocking (upload, download, downloadTo, stream + ChunkStream::next, ...):
//    for tools and tests; they wait for the loop.
//  - asynchronous (uploadAsync, downloadAsync, downloadToAsync,
//    ChunkStream::nextAsync): return at once; `done` runs exactly once, ON THE
//    LIBRARY'S LOOP THREAD (so does every ProgressCallback). Keep callbacks
//    short. From a callback, the non-blocking calls (getStats, getStoredFiles,
//    getPeerStats, remove, discoverPeers, the *Async forms) are fine; a
//    blocking call fails with Errc::kInvalidArgument instead of deadlocking.
//    After disconnect() (or when it races one), pending callbacks run with
//    Errc::kCancelled, possibly on the thread that is disconnecting.
//
// Errors: every fallible call returns Result/Status (p2pcdn/result.hpp); no
// exception leaves the library. Calls before connect() or after disconnect()
// fail with kInvalidArgument ("not connected").
//
// This header needs only the standard library and the other p2pcdn/ headers;
// Boost.Asio, libwebrtc and the internal modules stay behind the pimpl.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "p2pcdn/chunk_storage.hpp"
#include "p2pcdn/manifest.hpp"
#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn {

// P2PCDNOptions::storage value for a store that lives in memory only.
inline constexpr const char* kMemoryStorage = "memory";

struct P2PCDNOptions {
  std::string trackerUrl{};                            // ws://host:port (required)
  std::uint32_t chunkSize = kDefaultChunkSize;         // 256 KiB; uploads (a power of two, 1 KiB..16 MiB)
  std::size_t maxConcurrentDownloads = 10;             // per file: peers with our requests outstanding
  std::size_t maxConcurrentUploads = 20;               // per file: peers we serve at once
  bool enableSeeding = true;                           // serve uploads and finished downloads
  std::chrono::seconds seedDuration{3600};             // then stop serving that file; 0 = until remove()/disconnect()
  std::chrono::milliseconds discoveryInterval{30000};  // tracker re-announce period
  // "memory", or a SQLite store shared with the p2pcdn CLI: a directory (it
  // holds store.db and keys/, like `p2pcdn --home DIR`) or a file ending in
  // ".db" (keys/ goes next to it).
  std::string storage = kMemoryStorage;
  std::uint64_t storageQuota = 0;                      // bytes; 0 = 10 GB
  // Rate limits in bytes per second; 0 = unlimited. The global ones are shared
  // by every file of this P2PCDN.
  std::uint64_t uploadLimit = 0;
  std::uint64_t downloadLimit = 0;
  std::uint64_t perPeerUploadLimit = 0;
  std::uint64_t perPeerDownloadLimit = 0;
  // Super-seeding ("initial seeding") of the files this peer uploads: peers
  // are shown a few chunks at a time, so the origin sends each about once and
  // the downloaders trade the rest. Streaming peers, and peers that stop
  // asking for what they are shown, are shown everything.
  bool superSeed = true;
  std::vector<std::string> iceServers{};               // "stun:host:port"; none: host candidates only
  bool loopbackOnly = false;                           // ICE on 127.0.0.1 only: tests, one-machine demos
};

// The seed's upload(file, metadata). Every field is optional.
struct FileMetadata {
  std::string name{};                 // default: the file's name ("data" for bytes)
  std::string mimeType{};             // default: guessed from the name
  bool encrypt = false;               // AES-256-GCM under a fresh random key (returned, and in the link)
  std::optional<EncryptionKey> key{}; // encrypt under this key instead
  std::uint32_t chunkSize = 0;        // 0: P2PCDNOptions::chunkSize
};

struct UploadResult {
  FileId fileId;
  Manifest manifest;
  std::string link;                   // p2pcdn:<id>?tr=<tracker>[&k=<key>]: all another peer needs
  std::optional<EncryptionKey> key;   // set when encrypted
};

// Where a download or stream is. Delivered on the loop thread.
struct Progress {
  FileId fileId;
  std::uint64_t bytesVerified = 0;    // held and verified (stored form)
  std::uint64_t bytesTotal = 0;       // 0 until the manifest is known
  std::uint32_t chunksHave = 0;
  std::uint32_t chunksTotal = 0;
  std::size_t peers = 0;
  std::optional<ChunkIndex> chunk;    // the chunk that just arrived, in network order (none: other news)
  double progress = 0;                // 0..1, the seed's progress.progress
};
using ProgressCallback = std::function<void(const Progress&)>;

struct DownloadOptions {
  // For encrypted files. Default: the key of this P2PCDN's own upload, else
  // the store's keys/ folder (what `p2pcdn add --encrypt` saved).
  std::optional<EncryptionKey> key{};
  // 0 = none. download*: the whole download; on expiry it fails with
  // Errc::kTimedOut, and if no one else waits for the file the fetch stops
  // (chunks already stored are kept: a later call resumes). stream: each
  // next(); its kTimedOut is not sticky (next() may be called again).
  std::chrono::milliseconds timeout{0};
  // stream(): chunks fetched ahead of the consumer; fetching pauses beyond.
  // (The swarm's picker currently fetches its 16-chunk urgent window even
  // when lookahead is smaller.)
  std::size_t lookahead = 32;
};

// Per peer and file, as this peer sees it. "Up" is what we sent to that peer,
// "down" what we received from it. Links that have closed stay listed (with
// connected = false and their last numbers) until 256 newer ones have closed.
struct PeerStats {
  std::string peerId;                 // 40 hex digits
  FileId fileId;
  bool connected = false;
  bool seeder = false;                // it has the whole file
  std::uint64_t bytesUp = 0, bytesDown = 0;
  double upRate = 0, downRate = 0;    // bytes/s, smoothed
  std::optional<double> rttSeconds;   // the link's round trip (refreshed every ~5 s)
  std::string localCandidateType, remoteCandidateType;  // "host", "srflx", "prflx", "relay"
  std::uint32_t chunksServed = 0, chunksReceived = 0;
  std::uint32_t failures = 0;         // time-outs, rejects, bad chunks
  std::uint32_t badChunks = 0;
  std::size_t requestsOutstanding = 0;  // ours, to that peer
  std::size_t uploadsQueued = 0;        // its requests we have not finished serving
  bool unchoked = false;                // we serve it
};

struct CDNStats {
  std::size_t files = 0;              // in the store
  std::uint64_t chunksStored = 0;
  std::uint64_t bytesStored = 0;
  std::uint64_t bytesUploaded = 0;    // payload sent to peers since connect()
  std::uint64_t bytesDownloaded = 0;  // payload received from peers since connect()
  std::uint64_t chunksDownloaded = 0; // verified chunks fetched from peers since connect()
  std::size_t peers = 0;              // distinct peers with an open link
  std::size_t activeDownloads = 0;    // files being fetched
  std::size_t seeding = 0;            // files being served
};

class P2PCDN;

// The seed's `for await (const chunk of cdn.stream(...))`: chunks strictly in
// order, as plaintext (decrypted when the file is encrypted). Memory stays
// bounded: the library fetches at most DownloadOptions::lookahead chunks past
// the consumer's position and hands over one chunk per next(). Movable; the
// destructor (or close()) ends streaming mode (an unfinished fetch goes on in
// the background in whole-file order). A stream may outlive its P2PCDN: next()
// then fails with kCancelled. The node has one streaming window per file: two
// streams of the same file move the same window (the last next() wins).
class ChunkStream {
 public:
  ChunkStream(ChunkStream&&) noexcept;
  ChunkStream& operator=(ChunkStream&&) noexcept;
  ~ChunkStream();

  // The next chunk, or std::nullopt after the last one. Blocks until it is
  // verified and stored. Errors are sticky (fetch failure, timeout, disconnect).
  Result<std::optional<Bytes>> next();
  // The same without blocking; `done` runs on the loop thread. One at a time.
  void nextAsync(std::function<void(Result<std::optional<Bytes>>)> done);
  // The index of the chunk next() returns.
  ChunkIndex position() const;
  const FileId& fileId() const;
  void close();

  struct State;  // internal

 private:
  friend class P2PCDN;
  explicit ChunkStream(std::shared_ptr<State> state);
  std::shared_ptr<State> s_;
};

class P2PCDN {
 public:
  explicit P2PCDN(P2PCDNOptions options);
  ~P2PCDN();  // disconnect()
  P2PCDN(const P2PCDN&) = delete;
  P2PCDN& operator=(const P2PCDN&) = delete;

  // Opens the store, starts the loop thread and the node (which connects to
  // the tracker in the background and keeps reconnecting). Returns once the
  // node has started. Idempotent while connected.
  Status connect();
  // Says GOODBYE to peers, leaves the tracker, stops the loop thread and
  // closes the store; pending operations fail with kCancelled. Idempotent.
  void disconnect();
  bool connected() const;
  std::string peerId() const;  // 40 hex digits; empty when not connected

  // Chunks a file (or bytes) into the store, like `p2pcdn add`, and seeds it
  // if enableSeeding (for seedDuration). A missing path fails with kNotFound.
  Result<UploadResult> upload(const std::filesystem::path& path, const FileMetadata& metadata = {});
  Result<UploadResult> upload(ByteView data, const FileMetadata& metadata = {});
  void uploadAsync(std::filesystem::path path, FileMetadata metadata, std::function<void(Result<UploadResult>)> done);
  void uploadAsync(Bytes data, FileMetadata metadata, std::function<void(Result<UploadResult>)> done);

  // Fetches a file into the store (manifest from peers when not given) and
  // returns its plaintext. Chunks already stored are not fetched again; the
  // file is then seeded like an upload.
  Result<Bytes> download(const FileId& id, std::optional<Manifest> manifest = std::nullopt,
                         ProgressCallback onProgress = {}, const DownloadOptions& options = {});
  // The same, written to `out` atomically (a temporary file renamed at the
  // end, as `p2pcdn export`); on failure nothing is left at `out`.
  Status downloadTo(const FileId& id, std::optional<Manifest> manifest, const std::filesystem::path& out,
                    ProgressCallback onProgress = {}, const DownloadOptions& options = {});
  void downloadAsync(const FileId& id, std::optional<Manifest> manifest, ProgressCallback onProgress,
                     std::function<void(Result<Bytes>)> onDone, DownloadOptions options = {});
  void downloadToAsync(const FileId& id, std::optional<Manifest> manifest, std::filesystem::path out,
                       ProgressCallback onProgress, std::function<void(Status)> onDone, DownloadOptions options = {});

  // Starts fetching in streaming order and returns at once (errors surface in next()).
  Result<ChunkStream> stream(const FileId& id, std::optional<Manifest> manifest = std::nullopt,
                             ProgressCallback onProgress = {}, const DownloadOptions& options = {});

  // The seed's delete(fileId) (`delete` is a C++ keyword): stops fetching and
  // serving the file, deletes it from the store (and its saved key). Pending
  // downloads and streams of it fail with kCancelled.
  Status remove(const FileId& id);

  Result<CDNStats> getStats() const;
  Result<std::vector<StoredFile>> getStoredFiles() const;

  // PeerMesh.
  // Announces every active file to the tracker now instead of at the next
  // discoveryInterval (new offers for the files being fetched).
  Status discoverPeers();
  // Distinct peers with an open link, 40 hex digits each.
  Result<std::vector<std::string>> getConnectedPeers() const;
  Result<std::vector<PeerStats>> getPeerStats() const;

  struct Core;  // internal

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace p2pcdn
