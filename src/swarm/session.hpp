// Session: the swarm engine for one file, sans I/O. It speaks the peer wire
// protocol (wire/) with every connected peer of the file and decides what to
// request from whom, what to serve to whom and when, and which peers to drop
// or ban. It does no I/O itself: bytes go out, chunks are read and stored and
// links are closed through the SessionHost the caller implements; time is the
// `now` passed into every call. The native node (node/) hosts it over WebRTC
// links and SQLite; the simulator (tests/sim) hosts thousands of them over a
// virtual network in virtual time.
//
// Policy, in short (docs/hacking.md, "Swarm engine"):
//  - picking: PiecePicker — rarest first with random tie-break, or streaming
//    (in-order urgent window, then rarest first within a lookahead), endgame
//    with duplicate requests and CANCEL of the losers;
//  - pipelining: per peer, enough whole-chunk requests to cover that peer's
//    measured rate x latency, with headroom (between minRequestsPerPeer and
//    maxRequestsPerPeer);
//    at most maxConcurrentDownloads peers with requests outstanding;
//  - failures: a stalled peer's requests time out and go elsewhere; a chunk that
//    fails its BLAKE3 check is never stored or served, scores its sender down,
//    and banAfterBadChunks of them ban the sender;
//  - uploads: at most maxConcurrentUploads peers unchoked, re-ranked every
//    chokeInterval (downloading: the peers that give us most; seeding: the
//    fastest takers), plus one optimistic unchoke rotated every third round;
//    requests from choked peers get REJECT overloaded with a retry hint (the
//    v1 wire protocol has no CHOKE message); uploads are served rarest-served
//    first so a seeder spreads distinct chunks;
//  - rate limits: token buckets, global and per peer, up and down.
//
// Thread-safety: none; one event loop owns a Session and its host.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "p2pcdn/manifest.hpp"
#include "p2pcdn/result.hpp"
#include "swarm/picker.hpp"
#include "swarm/rate.hpp"
#include "wire/fragment.hpp"
#include "wire/wire.hpp"

namespace p2pcdn::swarm {

using PeerKey = std::uint64_t;  // the host's name for one link

struct SessionOptions {
  std::size_t maxConcurrentDownloads = 10;  // peers with our requests outstanding at once
  std::size_t maxConcurrentUploads = 20;    // peers unchoked at once (one of them optimistic)
  std::size_t minRequestsPerPeer = 2;
  // Requests kept outstanding at a peer beyond its rate x latency (at least
  // minRequestsPerPeer in all). One: a peer's uplink is shared by many links,
  // so a link briefly empty costs it little, while every request queued there
  // makes the next one wait a whole chunk longer. (1000 simulated peers: with
  // two, the last chunks took ~4 s per hop and reached everyone 8 s after the
  // publisher let them out.)
  std::size_t requestSlack = 1;
  // The pipeline covers this many times rate x latency. The rate it measures
  // is what the pipeline let through, so with 1x a peer whose latency is its
  // store's read settles where rate x latency + slack is what it already has
  // (50 ms store: ~6 requests, a third of the link); with headroom each
  // measurement asks for more until the link, not the pipeline, limits.
  double pipelineHeadroom = 2.0;
  std::size_t maxRequestsPerPeer = 24;      // stay under a peer's upload queue limit
  std::size_t maxUploadRequestsPerPeer = 32;  // queued from one peer; more: REJECT too-many-requests
  // A request that would wait longer than this behind the queued uploads (at
  // the measured upload rate) is rejected as overloaded, unless it is the
  // peer's only one.
  Time maxUploadQueue = std::chrono::seconds(8);
  Time latencyGuess = std::chrono::milliseconds(50);  // before a peer's latency is measured
  // PIECE data kept queued on a link, in time at the rate it is leaving (at
  // least sendBacklogPieces pieces), when the host can tell what is queued
  // (SessionHost::buffered); 0 = fill the link to its watermark. REQUESTs,
  // HAVEs and CANCELs share the ordered channel and wait behind that queue.
  Time sendBacklog = std::chrono::milliseconds(100);
  std::size_t sendBacklogPieces = 2;
  // The minimum on a link to a peer we have requests outstanding at: our
  // next REQUEST to it waits behind less. It matters where pieces are at
  // their minimum size (below ~80 KB/s per link); above, the 100 ms term is
  // already two pieces. (1000 simulated peers: the last
  // finishers were slow uploaders whose chunks everyone wanted, their own
  // requests queued behind their uploads; 1.160 -> 1.147 homogeneous,
  // 1.157 -> 1.132 heterogeneous.)
  std::size_t sendBacklogPiecesToUploader = 1;
  // A peer with requests outstanding that sends nothing for this long has them
  // all cancelled and re-requested elsewhere; any request older than
  // requestTimeout is cancelled too.
  Time stallTimeout = std::chrono::seconds(5);
  Time requestTimeout = std::chrono::seconds(30);
  std::uint32_t banAfterBadChunks = 2;      // chunks failing verification before a ban
  // With all maxConcurrentDownloads slots taken, the slowest download peer is
  // rotated out this often (if another has chunks we lack); 0 = never.
  Time rotateDownloadsEvery = std::chrono::seconds(3);
  Time chokeInterval = std::chrono::seconds(10);
  std::uint32_t optimisticEvery = 3;        // choke rounds between optimistic rotations
  Time keepAliveAfter = std::chrono::seconds(15);
  Time idleTimeout = std::chrono::seconds(60);
  // Rate limits in bytes per second, 0 = unlimited. The global buckets may be
  // shared by several sessions (pass the same ones to each).
  double perPeerUpRate = 0;
  double perPeerDownRate = 0;
  std::shared_ptr<TokenBucket> globalUp;    // null: unlimited
  std::shared_ptr<TokenBucket> globalDown;
  // Super-seeding, for a session that starts complete (the publisher): it
  // advertises an empty bitfield and then reveals chunks to each peer with
  // HAVE, superSeedReveal at a time, always the ones it has served least. So
  // the origin uploads each chunk about once and the leechers spread it
  // (BitTorrent's "initial seeding"). It serves any chunk it is asked for.
  bool superSeed = true;
  std::size_t superSeedReveal = 2;
  PickerOptions picker;
  // PIECE data per message: about pieceTime at the rate data leaves on the
  // link, within [minPiecePayload, maxPiecePayload]. A slow link gets small
  // pieces, so its send window (above) holds little in time even at its
  // minimum of sendBacklogPieces pieces: our REQUESTs to that peer wait behind
  // it. (1000 simulated peers, mixed uplinks: the slow uploaders fell 40 %
  // behind, their requests queued seconds behind two whole chunks.)
  std::size_t maxPiecePayload = 262144 - wire::kPieceHeaderBytes;
  // Verified chunks handed to the host's store and not yet confirmed: at
  // this many, no new requests go out until a write completes (a slow or
  // stuck store must not let received data pile up).
  std::size_t maxPendingWrites = 32;
  // Reads ahead of each link's upload queue: enough chunks to cover the
  // link's send rate x the store's measured read latency (plus the next
  // one), at most this many, so a slow store does not idle a fast link.
  std::size_t maxReadAhead = 16;
  std::size_t minPiecePayload = 4096;
  Time pieceTime = std::chrono::milliseconds(50);
#ifdef P2PCDN_FAULT_INJECTION
  // Test builds only: flip a byte in every chunk served (a corrupting peer).
  bool faultCorruptServedChunks = false;
#endif
};

// The I/O side. Every call happens on the owner's loop, from inside a Session
// method; none may call back into the Session synchronously (completions
// included: deliver them on a later turn of the loop).
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  // Queues one encoded message on the peer's link. Errc::kBackPressure means
  // "not sent, full": the session keeps it and waits for onWritable(peer).
  virtual Status send(PeerKey peer, ByteView message) = 0;
  // The session is done with the peer (after a GOODBYE, a ban, a time-out):
  // close the link. The host must still call removePeer when it is gone.
  virtual void disconnect(PeerKey peer) = 0;
  // Reads a stored chunk for serving, verified against its hash: complete
  // with Session::onChunkRead. At most one read per chunk is outstanding.
  virtual void readChunk(ChunkIndex index) = 0;
  // Stores a chunk whose BLAKE3 the session has checked: complete with
  // Session::onChunkStored. The chunk counts as held (HAVE, served,
  // complete) only from then on.
  virtual void storeChunk(ChunkIndex index, Bytes data) = 0;
  // Stores a manifest received from a peer and checked against the file id.
  virtual Status storeManifest(const Manifest& manifest) = 0;
  // Bytes queued on the peer's link and not yet sent, if the host knows.
  // With it the session keeps only about SessionOptions::sendBacklog of PIECE
  // data there, and asks notifyWhenBufferedBelow to be told when to refill; a
  // tick refills too, should that notice be lost.
  virtual std::optional<std::size_t> buffered(PeerKey) const { return std::nullopt; }
  // Call onWritable(peer) once the link's queue holds at most `bytes`.
  virtual void notifyWhenBufferedBelow(PeerKey, std::size_t /*bytes*/) {}

  // Events.
  virtual void onManifest(const Manifest&) {}
  virtual void onChunk(ChunkIndex) {}
  virtual void onComplete() {}
  virtual void onBanned(PeerKey, const wire::PeerId&) {}
  virtual void onError(const Error&) {}  // a store write failed (not for busy): the host decides whether to go on
};

struct PeerStats {
  PeerKey key = 0;
  wire::PeerId peerId{};
  bool handshaken = false;
  bool seeder = false;            // has every chunk
  std::uint32_t chunksAvailable = 0;
  // Down: PIECE payload answering a request of ours still outstanding (what
  // reciprocation and the pipeline depth go by); unsolicited or late PIECEs
  // count only in SessionStats::wasted.
  std::uint64_t bytesUp = 0, bytesDown = 0;
  double upRate = 0, downRate = 0;  // bytes/s, smoothed
  std::uint32_t chunksServed = 0, chunksReceived = 0;
  std::uint32_t failures = 0;     // timeouts + rejects + bad chunks
  std::uint32_t badChunks = 0;
  std::size_t requestsOutstanding = 0;
  std::size_t requestTarget = 0;  // current pipeline size
  std::size_t uploadsQueued = 0;
  bool unchoked = false;          // we serve it
  bool chokingUs = false;         // it rejected us as overloaded recently
  double latencySeconds = 0;      // request -> first byte, lowest seen
};

struct SessionStats {
  bool haveManifest = false;
  std::uint32_t chunksTotal = 0, chunksHave = 0, chunksFetched = 0;
  std::uint64_t bytesTotal = 0, bytesVerified = 0;
  std::uint64_t uploaded = 0, downloaded = 0;  // payload bytes of PIECE messages
  std::uint64_t wasted = 0;                    // received but not stored: duplicates, bad chunks,
                                               // PIECEs for requests we never made or cancelled
  std::uint32_t badChunks = 0, timeouts = 0, bans = 0;
  // Chunks uploaded again while another chunk had never been uploaded by us:
  // for a publisher, bandwidth that did not add a new chunk to the swarm.
  std::uint32_t earlyRepeats = 0;
  std::uint32_t distinctServed = 0;            // chunks we have uploaded at least once
  // Send-window refills made by tick(): the link's drain notice had not come
  // (it should, so these count lost or late notices).
  std::uint32_t lateRefills = 0;
  std::uint64_t windowWaits = 0;  // times piece data waited for the send window
  std::size_t readsPending = 0, writesPending = 0;  // store requests not yet completed
  std::uint32_t goodbyesReceived = 0;          // GOODBYE messages from peers
  std::size_t peers = 0;                       // handshaken
  bool complete = false;
};

class Session {
 public:
  // `have` is what the store holds (empty if the manifest is not known yet).
  Session(const FileId& fileId, const wire::PeerId& self, std::optional<Manifest> manifest, std::vector<bool> have,
          SessionHost& host, SessionOptions options, std::uint64_t seed);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const FileId& fileId() const { return fileId_; }
  const std::optional<Manifest>& manifest() const { return manifest_; }
  bool complete() const;
  bool have(ChunkIndex index) const { return index < have_.size() && have_[index]; }

  // Fetch missing chunks (true) or only serve (false).
  void setWanted(bool wanted, Time now);
  bool wanted() const { return wanted_; }
  // Serve chunks to peers (seeding). false: requests are rejected (seedDuration over).
  void setServing(bool serving) { serving_ = serving; }
  // Streaming: pick in order from `cursor` (see PickerOptions); whole-file otherwise.
  void setStreaming(bool on, ChunkIndex cursor, std::size_t lookahead, Time now);
  // Adds a manifest learned another way (checked against the file id).
  Status setManifest(const Manifest& manifest, std::vector<bool> have, Time now);
  void banPeerId(const wire::PeerId& id) { banned_.push_back(id); }
  bool isBanned(const wire::PeerId& id) const;

  // Link events from the host.
  void addPeer(PeerKey peer, Time now);                  // the link opened: HANDSHAKE goes out
  void removePeer(PeerKey peer, Time now);               // the link is gone
  void onMessage(PeerKey peer, ByteView message, Time now);
  void onWritable(PeerKey peer, Time now);               // the link drained after back-pressure
  // Sends GOODBYE to every peer (then the host closes the links).
  void goodbyeAll(wire::GoodbyeReason reason, std::string_view text);

  // Store completions from the host (SessionHost::readChunk / storeChunk).
  void onChunkRead(ChunkIndex index, Result<Bytes> data, Time now);
  void onChunkStored(ChunkIndex index, Status status, Time now);

  // Timers: call tick at nextWakeup() (or more often).
  void tick(Time now);
  Time nextWakeup(Time now) const;

  SessionStats stats() const;
  std::vector<PeerStats> peerStats(Time now) const;
  std::optional<PeerStats> peerStats(PeerKey peer, Time now) const;
  // Handshaken peers that have a chunk we lack. A fetch whose peers are all
  // useless should look for more (re-announce). O(peers x chunks).
  std::size_t usefulPeers() const;

 private:
  struct Peer;
  struct Out;
  struct Up;

  Peer* find(PeerKey key);
  void handle(Peer& p, const wire::Handshake& m, Time now);
  void handle(Peer& p, const wire::Bitfield& m, Time now);
  void handle(Peer& p, const wire::Have& m, Time now);
  void handle(Peer& p, const wire::Request& m, Time now);
  void handle(Peer& p, const wire::Cancel& m, Time now);
  void handle(Peer& p, const wire::Reject& m, Time now);
  void handle(Peer& p, const wire::Piece& m, Time now);
  void handle(Peer& p, const wire::ManifestRequest& m, Time now);
  void handle(Peer& p, const wire::ManifestPart& m, Time now);
  void handle(Peer& p, const wire::KeepAlive& m, Time now);
  void handle(Peer& p, const wire::Goodbye& m, Time now);

  void sendTo(Peer& p, Result<Bytes> message, Time now);
  void goodbye(Peer& p, wire::GoodbyeReason reason, std::string_view text);
  void drop(Peer& p, wire::GoodbyeReason reason, std::string_view text);
  void adoptManifest(const Manifest& m, std::vector<bool> have, Time now);
  void learnBitfield(Peer& p, std::vector<bool> bits);
  void sendBitfield(Peer& p, Time now);
  void askManifest(Time now);
  void peerGotManifest(Peer& p, Time now);
  void chunkArrived(Peer& p, ChunkIndex index, Bytes data, Time now);
  void badChunk(Peer& p, ChunkIndex index, Time now);
  void forget(Peer& p, std::uint32_t requestId, bool failed);
  void cancelAll(Peer& p, Time now);
  std::size_t requestTarget(const Peer& p, Time now) const;
  void requestFrom(Peer& p, Time now);
  void requestEverywhere(Time now);
  std::size_t downloadPeers(Time now) const;
  bool lacksFrom(const Peer& p) const;  // it has a chunk we lack
  void rotateDownloads(Time now);
  void pump(Peer& p, Time now);
  void pumpOne(Peer& p, Time now);     // sendQueued, then readAhead
  void sendQueued(Peer& p, Time now);
  void readAhead(Peer& p, Time now);
  std::size_t pieceSize(const Peer& p, Time now) const;
  std::size_t sendWindow(const Peer& p, std::size_t piece, Time now) const;
  bool firstServeWaiting(const Peer& self) const;
  void dropUpload(const Up& up);
  void pumpAll(Time now);
  void chokeRound(Time now);
  bool interested(const Peer& p) const;  // it lacks something we have
  // Super-seeding: top up the peer's revealed chunks to `target` (0: superSeedReveal).
  void reveal(Peer& p, Time now, std::size_t target = 0);
  void unreveal(Peer& p, ChunkIndex index);
  void revealAll(Peer& p, Time now);
  bool superSeedWanted(const Peer& p) const;  // false: tell this peer everything
  void checkComplete(Time now);

  FileId fileId_;
  wire::PeerId self_;
  std::optional<Manifest> manifest_;
  Bytes manifestBytes_;
  std::vector<bool> have_;        // stored (the host confirmed the write)
  std::uint32_t haveCount_ = 0;
  std::map<ChunkIndex, Time> reading_;  // reads asked of the host, not yet completed: when asked
  Time readLatency_{};            // smoothed time a read takes to complete
  std::set<ChunkIndex> writing_;  // verified, handed to the host's store, not yet confirmed
  std::unique_ptr<PiecePicker> picker_;
  SessionHost& host_;
  SessionOptions opts_;
  std::mt19937_64 rng_;
  bool wanted_ = false;
  bool serving_ = true;
  bool streaming_ = false;
  bool completeFired_ = false;
  std::map<PeerKey, std::unique_ptr<Peer>> peers_;
  std::vector<wire::PeerId> banned_;
  std::vector<std::uint32_t> servedCount_;  // per chunk: times uploaded by us
  std::uint32_t neverServed_ = 0;
  bool holding_ = false;      // some link holds back a repeat (super-seeding)
  Time lastServe_{};          // last PIECE handed to any link
  bool releaseHeld_ = false;
  bool superSeeding_ = false;
  std::vector<std::uint32_t> revealedCount_;  // per chunk: peers it is revealed to that have not asked yet
  std::vector<std::uint32_t> assignedCount_;  // per chunk: requests for it we have taken
  Time nextChoke_{};
  Time nextRotate_{};
  std::uint32_t chokeRounds_ = 0;
  std::optional<PeerKey> optimistic_;
  Time uploadWake_{};  // a rate limit holds uploads until then (0: none)
  Time downloadWake_{};
  SessionStats counters_;
};

}  // namespace p2pcdn::swarm
