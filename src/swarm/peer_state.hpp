// One connected peer as a Session sees it: the link and what the peer has
// (PeerState), what we fetch from it (DownloadState), what we serve it
// (UploadState) and what super-seeding has shown it (RevealState). Plain data:
// the rules are in the Session and its parts (Downloader, Uploader, SuperSeed,
// chooseUnchoked).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "p2pcdn/types.hpp"
#include "swarm/rate.hpp"
#include "swarm/stats.hpp"
#include "wire/fragment.hpp"
#include "wire/wire.hpp"

namespace p2pcdn::swarm {

// A REQUEST of ours the peer has not fully answered yet.
struct OutstandingRequest {
  ChunkIndex index;
  wire::ChunkAssembler assembler;
  Time sent;
  bool gotFirstByte = false;
  // Sent while nothing else was outstanding at the peer: its first byte
  // measures the peer's own latency (round trip + its store's read), not a
  // wait behind our other requests or a read done ahead of time.
  bool probe = false;
  bool wished = false;  // asked by name (Session::wish): a seek leaves it be
};

// A REQUEST of the peer's we have admitted and not fully served yet.
struct QueuedUpload {
  std::uint32_t requestId;
  ChunkIndex index;
  std::uint32_t offset, length;
  std::shared_ptr<const Bytes> chunk;  // read ahead of its turn (Uploader::readAhead)
  std::uint32_t sent = 0;  // bytes of [offset, offset + length) sent
  Time queued{};
  bool countsAsServed = false;  // counted in SessionState::servedCount (a whole chunk, its first piece sent)
};

// Downloads from the peer.
struct DownloadState {
  std::uint32_t nextRequestId = 1;  // shared by chunk and manifest requests
  std::map<std::uint32_t, OutstandingRequest> out;
  Time lastProgress{};   // last PIECE answering a request (or the first request after an idle spell)
  double rateAtProgress = 0;  // received.rate() at the last such PIECE (what the deadlines go by)
  Time chokedUntil{};
  Time restUntil{};      // rotated out of the download peers: no new requests until then
  std::optional<Time> downloadingSince;  // a download peer since
  std::size_t requestCap = SIZE_MAX;
  RateMeter received;    // PIECE payload answering a request of ours still outstanding
  // Sizes the pipeline: quick to follow, since each request added raises the
  // rate only once the meter catches up (with a 2 s meter a 50 ms store
  // latency took ~10 s to grow the pipeline to rate x latency).
  RateMeter pipeRate{std::chrono::milliseconds(250)};
  Time minLatency{};
  bool latencyKnown = false;
  TokenBucket bucket;
  std::uint32_t chunksReceived = 0, failures = 0, badChunks = 0;
  // Chunks asked of this peer by name (Session::wish: PeerMesh.requestChunk),
  // requested before the picker's, oldest first; at most kMaxWished.
  std::deque<ChunkIndex> wished;
};
inline constexpr std::size_t kMaxWished = 64;

// Uploads to the peer.
struct UploadState {
  std::deque<QueuedUpload> queue;
  bool unchoked = false;
  // Chunks offered to this peer by name (Session::offer: PeerMesh.sendChunk):
  // one request for each is served even while it is choked; at most kMaxWished.
  std::deque<ChunkIndex> offered;
  Time lastRequest{};    // its last REQUEST
  Time lastPieceSent{};
  RateMeter served;      // PIECE payload sent to it
  RateMeter sendRate{std::chrono::milliseconds(250)};  // PIECE data leaving, quick to follow: sizes the send window
  double sendPeak = 0;    // recent peak of sendRate, decaying (kSendPeakTau): sizes the read-ahead
  Time sendPeakAt{};
  bool windowFull = false;  // pieces wait for the link's queue to drain (notice asked; tick as fallback)
  TokenBucket bucket;
  std::uint32_t chunksServed = 0;
};

// Super-seeding's view of the peer.
struct RevealState {
  bool full = false;                 // super-seeding is off for this peer: it was told everything
  std::vector<ChunkIndex> revealed;  // told with HAVE, not yet served to it
};

struct PeerState {
  PeerKey key = 0;
  Time connected{}, lastSent{}, lastHeard{};
  bool handshaken = false;
  bool bitfieldSeen = false;  // its BITFIELD came (what `has` says is its word, not our blank)
  bool dropping = false;  // GOODBYE sent or disconnect asked: ignore it from now on
  bool goodbyeSent = false;
  wire::PeerId id{};
  std::optional<wire::PeerId> proven;  // the id the link proved (node/link_auth.hpp), if the host checks one
  TokenBucket inbound;                  // messages other than PIECE (SessionOptions::maxMessagesPerSecond)
  std::uint32_t falseHaves = 0;         // chunks it showed, then refused as not-have
  std::uint32_t caps = 0;
  // Messages the link refused (back-pressure), in order, and their bytes:
  // bounded (SessionState::sendTo), so a peer that sends requests and does
  // not read cannot make us queue without end.
  std::deque<Bytes> control;
  std::size_t controlBytes = 0;
  bool manifestServed = false;  // it got the manifest on this link (once per link)
  bool overflowed = false;      // control went past its bound: dropped at the next safe point

  // What it has.
  std::vector<bool> has;
  std::uint32_t hasCount = 0;
  bool inPicker = false;  // `has` is counted in the picker's availability
  std::optional<Bytes> pendingBitfield;  // arrived before we knew the manifest
  std::vector<ChunkIndex> pendingHaves;  // likewise (bounded by kMaxPendingHaves)

  // The manifest exchange (one MANIFEST_REQUEST at a time, to one peer).
  std::optional<std::uint32_t> manifestRequest;
  Time manifestAsked{};  // when, or its last part came (past SessionOptions::manifestTimeout it is given up)
  std::uint32_t manifestTimeouts = 0;  // asked and given up: others with fewer are asked first
  Time manifestServedAt{};
  std::optional<wire::ManifestAssembler> manifestAssembler;

  DownloadState download;
  UploadState upload;
  RevealState reveal;
};

}  // namespace p2pcdn::swarm
