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
//    measured rate x latency (between minRequestsPerPeer and maxRequestsPerPeer);
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
#include "swarm/options.hpp"
#include "swarm/picker.hpp"
#include "swarm/rate.hpp"
#include "swarm/session_host.hpp"
#include "swarm/stats.hpp"
#include "wire/fragment.hpp"
#include "wire/wire.hpp"

namespace p2pcdn::swarm {

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
