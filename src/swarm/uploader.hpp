// Uploader: what a Session serves to whom and when. It admits REQUESTs (only
// from unchoked peers, and none that would wait longer than maxUploadQueue
// behind the queued uploads), reads chunks from the host's store ahead of
// their turn, and sends PIECE data: a seeder's least-served chunk first,
// super-seeding's repeats held back while a never-served chunk waits
// elsewhere, pieces sized to the link's rate, and no more queued on a link
// than its send window. Choking itself is chooseUnchoked's (choker.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

#include "swarm/session_state.hpp"
#include "swarm/super_seed.hpp"

namespace p2pcdn::swarm {

class Uploader {
 public:
  Uploader(SessionState& state, SuperSeed& superSeed) : state_(state), superSeed_(superSeed) {}

  // `nextChoke`: when the next choke round is (a choked peer's retry hint).
  void onRequest(PeerState& p, const wire::Request& r, Time nextChoke, Time now);
  void onCancel(PeerState& p, const wire::Cancel& c);
  void onChunkRead(ChunkIndex index, Result<Bytes> data, Time now);

  // Sends what the peer's link can take now; then links held back for a
  // first serve that just went out.
  void pump(PeerState& p, Time now);
  // Sends what the peer's link can take now, then reads ahead.
  void pumpOne(PeerState& p, Time now);
  // The peer is choked: its requests not yet started are refused with a
  // retry hint of one choke interval.
  void choke(PeerState& p, Time now);
  // For the tick: a link whose drain notice did not come is refilled.
  void refillLate(PeerState& p, Time now);
  // For the tick: a rate limit or a held repeat is due.
  void resumeIfDue(Time now);

  Time wake() const { return wake_; }  // a rate limit or a hold keeps uploads until then (0: none)
  Time lastServe() const { return lastServe_; }
  std::size_t readsPending() const { return reading_.size(); }

 private:
  enum class Hold { kNo, kRefused, kHeld };

  void pumpAll(Time now);
  void sendQueued(PeerState& p, Time now);
  bool flushControl(PeerState& p);
  bool rateLimited(PeerState& p, Time now);
  void reorderLeastServed(PeerState& p, Time now);
  Hold holdRepeat(PeerState& p, const QueuedUpload& up, Time now);
  bool windowOpen(PeerState& p, std::size_t piece, Time now);
  bool sendPiece(PeerState& p, std::size_t piece, Time now);
  void accountServed(QueuedUpload& up, bool first, bool whole);
  void readAhead(PeerState& p, Time now);
  std::size_t pieceSize(const PeerState& p, Time now) const;
  std::size_t sendWindow(const PeerState& p, std::size_t piece, Time now) const;
  bool firstServeWaiting(const PeerState& self) const;
  void wakeAt(Time at);

  SessionState& state_;
  SuperSeed& superSeed_;
  std::map<ChunkIndex, Time> reading_;  // reads asked of the host, not yet completed: when asked
  Time lastServe_{};     // last PIECE handed to any link
  Time warmSince_{};     // uploads began after the uplink was idle (admission's rate)
  std::uint64_t uploadedAtWarm_ = 0;  // counters.uploaded then
  Time wake_{};
  bool holding_ = false;      // some link holds back a repeat (super-seeding)
  bool releaseHeld_ = false;  // a first serve went out: held links may go on
};

}  // namespace p2pcdn::swarm
