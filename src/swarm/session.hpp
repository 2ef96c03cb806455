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
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2pcdn/manifest.hpp"
#include "p2pcdn/result.hpp"
#include "swarm/downloader.hpp"
#include "swarm/options.hpp"
#include "swarm/origin.hpp"
#include "swarm/session_host.hpp"
#include "swarm/session_state.hpp"
#include "swarm/stats.hpp"
#include "swarm/super_seed.hpp"
#include "swarm/uploader.hpp"
#include "wire/wire.hpp"

namespace p2pcdn::swarm {

// The coordinator: it owns the peers and the file's state (SessionState) and
// dispatches each message to the part whose rule it is: the handshake,
// BITFIELD/HAVE and the manifest exchange here, requests and answers to the
// Downloader, REQUEST/CANCEL and sending to the Uploader, reveals to SuperSeed,
// the choke round to chooseUnchoked.
class Session {
 public:
  // `have` is what the store holds (empty if the manifest is not known yet).
  Session(const FileId& fileId, const wire::PeerId& self, std::optional<Manifest> manifest, std::vector<bool> have,
          SessionHost& host, SessionOptions options, std::uint64_t seed);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const FileId& fileId() const { return state_.fileId; }
  const std::optional<Manifest>& manifest() const { return state_.manifest; }
  bool complete() const { return state_.complete(); }
  bool have(ChunkIndex index) const { return index < state_.have.size() && state_.have[index]; }

  // Fetch missing chunks (true) or only serve (false).
  void setWanted(bool wanted, Time now);
  bool wanted() const { return state_.wanted; }
  // Serve chunks to peers (seeding). false: requests are rejected (seedDuration over).
  void setServing(bool serving) { state_.serving = serving; }
  // Streaming: pick in order from `cursor` (see PickerOptions); whole-file otherwise.
  void setStreaming(bool on, ChunkIndex cursor, std::size_t lookahead, Time now);
  // Asks this peer for this chunk first (PeerMesh.requestChunk), while the
  // file is wanted. kNotFound: no such peer yet ("no link": it has not sent
  // its handshake and bitfield), no manifest yet, or the peer lacks the
  // chunk; kInvalidArgument: no such chunk. A chunk held
  // already is no error (nothing is asked). It arrives as any other (onChunkStored).
  Status wish(PeerKey peer, ChunkIndex index, Time now);
  // Offers a chunk we hold to this peer (PeerMesh.sendChunk): a HAVE for it
  // (a super-seeder may not have shown it), and its request for it is served
  // even while the peer is choked. kNotFound: no such peer ("no link"), or we
  // do not hold the chunk. Nothing is pushed: the peer asks if it wants it.
  Status offer(PeerKey peer, ChunkIndex index, Time now);
  // The peer's last bitfield and HAVEs say it holds the chunk (false for an
  // unknown peer).
  bool peerHas(PeerKey peer, ChunkIndex index) const;
  // Web seeds: HTTP(S) origins serving the file, used for what the swarm
  // cannot give in time (swarm/origin.hpp has the rule). kInvalidArgument:
  // not http(s) URLs, or more than 8.
  Status setOrigins(std::vector<std::string> urls, Time now);
  // Who delivered chunk `index` in this session: a peer's id (hex), "web
  // seed", or "" (held before, or not fetched yet).
  std::string chunkSource(ChunkIndex index) const;
  // A completion of SessionHost::fetchOrigin.
  void onOriginData(std::uint32_t id, Result<Bytes> data, Time now);
  // Adds a manifest learned another way (checked against the file id).
  Status setManifest(const Manifest& manifest, std::vector<bool> have, Time now);
  void banPeerId(const wire::PeerId& id) { state_.banned.push_back(id); }
  bool isBanned(const wire::PeerId& id) const;

  // Link events from the host.
  // The link opened: HANDSHAKE goes out. `proven`: the peer id the link
  // proved (node/link_auth.hpp); its HANDSHAKE must name it.
  void addPeer(PeerKey peer, Time now, const std::optional<wire::PeerId>& proven = std::nullopt);
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
  void handle(PeerState& p, const wire::Handshake& m, Time now);
  void handle(PeerState& p, const wire::Bitfield& m, Time now);
  void handle(PeerState& p, const wire::Have& m, Time now);
  void handle(PeerState& p, const wire::Request& m, Time now);
  void handle(PeerState& p, const wire::Cancel& m, Time now);
  void handle(PeerState& p, const wire::Reject& m, Time now);
  void handle(PeerState& p, const wire::Piece& m, Time now);
  void handle(PeerState& p, const wire::ManifestRequest& m, Time now);
  void handle(PeerState& p, const wire::ManifestPart& m, Time now);
  void handle(PeerState& p, const wire::KeepAlive& m, Time now);
  void handle(PeerState& p, const wire::Goodbye& m, Time now);

  bool charged(const PeerState& p, const wire::Message& m) const;
  void adoptManifest(const Manifest& m, std::vector<bool> have, Time now);
  void learnBitfield(PeerState& p, std::vector<bool> bits);
  void sendBitfield(PeerState& p, Time now);
  void askManifest(Time now);
  void peerGotManifest(PeerState& p, Time now);
  void chokeRound(Time now);
  bool interested(const PeerState& p) const;  // it lacks something we have
  void fetchMore(Time now);  // requests to peers, then to origins
  void checkComplete(Time now);

  SessionState state_;
  SuperSeed superSeed_{state_};
  Downloader downloader_{state_};
  Uploader uploader_{state_, superSeed_};
  OriginSource origins_{state_, downloader_};
  bool completeFired_ = false;
  Time nextChoke_{};
  Time nextRotate_{};
  std::uint32_t chokeRounds_ = 0;
  std::optional<PeerKey> optimistic_;
};

}  // namespace p2pcdn::swarm
