// Node: one peer of the swarm. It announces the files it seeds or wants to a
// tracker (WebTorrent WebSocket protocol), forms WebRTC links with the peers
// the tracker introduces, speaks the peer wire protocol over them, serves
// verified chunks from its ChunkStorage and fetches the ones it lacks.
//
// Threads: everything runs on the loop of the Runtime given to the
// constructor (natively AsioRuntime's io_context; in tests a virtual clock);
// call every method on it. The transport posts its events onto it.
//
// Events: any number of listeners per file (listen / unlisten). Every event
// is posted onto the loop, never delivered inside a Node call or inside the
// engine, so a handler may call any Node method (stop, forget, fetch, ...).
// A listener gets its events in order and is never called once unlistened
// (or once its file is forgotten). What the node holds is asked, not
// mirrored: have() and progress() for chunks, closedLinks() for links gone.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "p2pcdn/chunk_storage.hpp"
#include "p2pcdn/manifest.hpp"
#include "node/runtime.hpp"
#include "swarm/discovery.hpp"
#include "swarm/options.hpp"
#include "swarm/stats.hpp"
#include "transport/peer_link.hpp"

namespace p2pcdn::node {

// The 20-byte WebTorrent info_hash under which a file's swarm meets at the
// tracker (signaling::swarmKey; docs/signaling.md).
std::array<std::uint8_t, 20> swarmKey(const FileId& id);

struct NodeOptions {
  std::string trackerUrl;                           // ws://host:port
  // Further trackers (a link's other tr=): when the one in use has been
  // unreachable for trackerFailover, the node moves to the next (in turn,
  // back to trackerUrl after the last) and announces there.
  std::vector<std::string> trackerFallbacks;
  std::chrono::milliseconds trackerFailover{3000};
  // What kind of peer this is, in the peer id's readable prefix "-P<c>0002-"
  // (clientOf() reads it back): 'C' native (CLI, seed boxes), 'B' browser.
  char client = 'C';
  // The node's key (node/identity.hpp): its peer id is derived from it and
  // every link proves it. Empty: Runtime::makeIdentity(), a key for this run.
  std::shared_ptr<Identity> identity;
  transport::LinkConfig link;                       // ICE servers, loopback, watermarks
  // When to announce, how many offers, peer slots per file, offer and link
  // lifetimes, glare and half-open rules (swarm::Discovery, shared with the
  // simulator and the browser peer).
  swarm::DiscoveryOptions discovery;
  // Every store completion (chunk read or write) reaches the engine this
  // much later: a slow store, for benchmarks and tests. 0: as soon as done.
  std::chrono::milliseconds storeDelay{0};
  // All peers together, bytes/s (0: no limit). One token bucket each way for
  // the whole node, with a quarter second of traffic as its burst (at least
  // 16 KiB; the bucket may go into debt, so a large message never waits for
  // a burst it cannot hold). They replace swarm.globalUp / globalDown.
  std::uint64_t uploadLimit = 0;
  std::uint64_t downloadLimit = 0;
  // The swarm engine's policy (pipelining, choking, per-peer rates, bans); the
  // node fills in maxPiecePayload from the link's message size.
  swarm::SessionOptions swarm;
  // Connection events (offers, answers, glare, links opened and dropped, with
  // the reason), one line each, for diagnosis. The CLI sets it when the
  // environment has P2PCDN_TRACE=1 (lines go to stderr).
  std::function<void(const std::string&)> trace;
};

struct FileProgress {
  FileId fileId;
  bool haveManifest = false;
  std::uint64_t bytesTotal = 0;
  std::uint64_t bytesVerified = 0;     // stored-form bytes held
  std::uint32_t chunksTotal = 0;
  std::uint32_t chunksHave = 0;
  std::uint32_t chunksFetched = 0;     // fetched in this session (from peers or web seeds: swarm.originChunks)
  std::size_t peers = 0;               // open links with a completed handshake
  std::uint64_t bytesUploaded = 0;
  std::uint64_t bytesDownloaded = 0;
  swarm::SessionStats swarm;           // the engine's counters (bad chunks, bans, time-outs, waste)
};

// One peer of one file, as the node sees it: the engine's view plus the link's.
struct NodePeerStats {
  FileId fileId;
  std::string peerId;                  // hex of the 20-byte id
  std::string client;                  // clientOf(peerId)
  swarm::PeerStats swarm;
  std::optional<double> rttSeconds;    // from the link's last stats report
  std::string localCandidateType, remoteCandidateType;
};

// "native", "browser" (a p2pcdn peer's id prefix, NodeOptions::client),
// "webtorrent" ("-WW"), else "other"; `peerIdHex` is the id as hex.
std::string clientOf(std::string_view peerIdHex);

// What a listener of one file hears; any may be empty. All are posted (see
// the top of this file). onManifest and onComplete come at most once per
// listener: a listener that joins a file whose manifest is known gets
// onManifest first, and onComplete if the file is complete already.
struct FetchEvents {
  std::function<void(const Manifest&)> onManifest;
  std::function<void(ChunkIndex)> onChunk;          // verified and stored: have() is true
  std::function<void()> onComplete;
  std::function<void(const Error&)> onError;        // a store write failed: the listener decides
};

using ListenerId = std::uint64_t;

// The closed-link ledger keeps this many links per file (the oldest go first),
// and remembers at most kClosedFilesKept files (forgotten ones included).
inline constexpr std::size_t kClosedLinksPerFile = 128;
inline constexpr std::size_t kClosedFilesKept = 64;

class Node {
 public:
  // `runtime`, `storage` and `links` must outlive the Node.
  Node(Runtime& runtime, ChunkStorage& storage, transport::LinkFactory& links, NodeOptions options);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  Status start();
  // Sends GOODBYE to every peer, closes the links and the tracker connection;
  // `done` runs when that is over (at most ~1 s).
  void stop(std::function<void()> done);

  // Serves a file held in the storage (complete or partial); fetches a file,
  // using `manifest` if given, else asking peers for it (chunks already in
  // the storage are not fetched again; the file stays seeded), then listens.
  // Calling fetch again (another caller, or with the manifest found
  // meanwhile) joins the same fetch. What the store holds is read (and a
  // given manifest written) on the runtime's store queue, so any store works
  // (IndexedDB in the browser); `done` is posted with the outcome.
  void seed(const FileId& id, std::function<void(Status)> done);
  void fetch(const FileId& id, std::optional<Manifest> manifest, FetchEvents events,
             std::function<void(Result<ListenerId>)> done);
  // Hears a file the node seeds or fetches (kNotFound otherwise), from now on.
  Result<ListenerId> listen(const FileId& id, FetchEvents events);
  // No event reaches the listener after this, even one already posted. Idempotent.
  void unlisten(ListenerId id);

  // Whether a chunk is held (its store write completed); false for a file the
  // node does not hold. Set before the onChunk that tells it.
  bool have(const FileId& id, ChunkIndex index) const;
  std::optional<FileProgress> progress(const FileId& id) const;
  // Links open now with a completed handshake.
  std::vector<NodePeerStats> peerStats() const;
  // Links that closed (their last numbers), oldest first, at most
  // kClosedLinksPerFile per file; they outlive forget(). All files, or one.
  std::vector<NodePeerStats> closedLinks() const;
  std::vector<NodePeerStats> closedLinks(const FileId& id) const;
  // Stops serving a file (seedDuration over): requests are rejected, the node
  // leaves its swarm unless it is still fetching it.
  void stopSeeding(const FileId& id);
  // Streaming: fetch in order from `cursor`, at most `lookahead` chunks ahead.
  void setStreaming(const FileId& id, bool on, ChunkIndex cursor, std::size_t lookahead);
  // Web seeds (a link's ws=): HTTP(S) origins serving the file, used for what
  // the swarm cannot give in time (swarm/origin.hpp). kNotFound: the node
  // neither seeds nor fetches the file; kInvalidArgument: bad URLs.
  Status setOrigins(const FileId& id, std::vector<std::string> urls);
  // Who delivered the chunk in this fetch: a peer's id (hex), "web seed", or "" (see Session::chunkSource).
  std::string chunkSource(const FileId& id, ChunkIndex index) const;
  // PeerMesh: asks the peer (hex id, linked for this file) for the chunk
  // first, while the file is fetched (swarm::Session::wish; kNotFound: no such
  // file or peer, or the peer lacks it). peerHas: that peer holds the chunk,
  // as its bitfield and HAVEs say (false if it is not linked for the file).
  Status wish(const FileId& id, const std::string& peerIdHex, ChunkIndex index);
  Status offer(const FileId& id, const std::string& peerIdHex, ChunkIndex index);  // swarm::Session::offer
  bool peerHas(const FileId& id, const std::string& peerIdHex, ChunkIndex index) const;
  // Announces every file now (new offers for the ones being fetched) instead
  // of waiting for the announce interval: "discover peers" (used by src/api).
  void announceNow();
  // Forgets a file (the store is untouched): leaves its swarm, says GOODBYE to
  // its peers, closes their links and drops its state, so a later seed() or
  // fetch() starts afresh from the store. Its listeners are dropped (nothing
  // more reaches them, not even what was already posted).
  void forget(const FileId& id);
  // forget(), then deletes the file from the store on the node's store queue:
  // after every store task of the node already queued (its own writes, loads),
  // before any later one, so a seed() or fetch() of it started afterwards
  // finds nothing. `done` is posted to the loop.
  void removeStored(const FileId& id, std::function<void(Status)> done);
  std::string peerIdHex() const;

  struct Impl;  // node_impl.hpp, internal to src/node

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace p2pcdn::node
