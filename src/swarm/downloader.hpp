// Downloader: what a Session fetches from whom. Per peer it keeps a pipeline
// of whole-chunk requests sized to cover that peer's rate x latency
// (requestTarget), picks them with the PiecePicker, handles the answers
// (PIECE, REJECT), verifies each chunk against the manifest and hands it to
// the host's store, cancels endgame losers, rotates the slowest download peer
// out when every slot is taken, and expires the requests of stalled peers.
// A chunk that fails verification scores its sender down and
// banAfterBadChunks of them ban it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>

#include "swarm/session_state.hpp"

namespace p2pcdn::swarm {

class Downloader {
 public:
  explicit Downloader(SessionState& state) : state_(state) {}

  // Answers to our chunk requests (the manifest's are the Session's).
  void onReject(PeerState& p, const wire::Reject& r, Time now);
  void onPiece(PeerState& p, const wire::Piece& piece, Time now);

  // The pipeline size for this peer now.
  std::size_t requestTarget(const PeerState& p, Time now) const;
  // Tops up the peer's pipeline (if we want chunks and it has some).
  void requestFrom(PeerState& p, Time now);
  // The same for every peer, fastest first.
  void requestEverywhere(Time now);
  void rotateDownloads(Time now);
  // For the tick: cancels the peer's requests that are overdue, and all of
  // them if it has stalled.
  void expireRequests(PeerState& p, Time now);
  // A seek: cancels requests outside [cursor, end) that have not started
  // arriving (not wished ones: PeerMesh.requestChunk asked for them by name).
  void cancelOutside(ChunkIndex cursor, std::uint64_t end, Time now);
  void cancelAll(PeerState& p, Time now);
  // It has a chunk we lack.
  bool lacksFrom(const PeerState& p) const;
  // A chunk asked of this peer by name (p.download.wished): requested from it
  // first, within the same limits (pipeline, rates, pending writes) except the
  // number of download peers (the caller chose this one).
  void wish(PeerState& p, ChunkIndex index, Time now);

  // A chunk an origin sent, verified already (OriginSource): stored as a
  // peer's would be, and the peers' requests for it cancelled.
  void originChunk(ChunkIndex index, Bytes data, Time now) { chunkArrived(nullptr, index, std::move(data), now); }
  // Store writes of verified chunks not yet confirmed. finishWrite: false if
  // the chunk was not one we handed to the store.
  bool finishWrite(ChunkIndex index) { return writing_.erase(index) != 0; }
  std::size_t writesPending() const { return writing_.size(); }
  // A rate limit holds requests until then (0: none).
  Time wake() const { return wake_; }
  void clearWakeIfDue(Time now) {
    if (wake_ != Time{} && now >= wake_) wake_ = Time{};
  }

 private:
  void forget(PeerState& p, std::uint32_t requestId, bool failed);
  void request(PeerState& p, ChunkIndex index, Time now, bool wished = false);
  std::size_t downloadPeers(Time now) const;
  static bool picking(const DownloadState& d);  // a request of the picker's is outstanding
  void chunkArrived(PeerState* from, ChunkIndex index, Bytes data, Time now);  // from: null for an origin
  void badChunk(PeerState& p, ChunkIndex index, Time now);

  SessionState& state_;
  std::set<ChunkIndex> writing_;  // verified, handed to the host's store, not yet confirmed
  Time wake_{};
};

}  // namespace p2pcdn::swarm
