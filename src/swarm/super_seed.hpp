// SuperSeed: super-seeding (BitTorrent's "initial seeding") for a session that
// starts complete, the publisher. It advertises an empty BITFIELD and shows
// each peer a few chunks at a time with HAVE (SessionOptions::superSeedReveal,
// more for a fast peer), always the least loaded: chunks nobody has taken
// first, then the ones shown to fewest peers. One more is shown whenever the
// peer takes one or its queue runs dry. So the origin uploads each chunk about
// once and the leechers spread it. A peer that streams, or stops asking for
// what it was shown, is told everything instead.
//
// The repeat rule (a repeat waits while a never-served chunk waits in another
// queue) is part of the Uploader's send loop, which owns the queues.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "swarm/session_state.hpp"

namespace p2pcdn::swarm {

class SuperSeed {
 public:
  explicit SuperSeed(SessionState& state) : state_(state) {}

  void setOn(bool on) { on_ = on; }
  bool on() const { return on_; }
  // A manifest of `chunks` chunks was adopted: nothing shown or taken yet.
  void reset(ChunkIndex chunks);

  // false: tell this peer everything (not super-seeding, or not this peer).
  bool wanted(const PeerState& p) const;
  // Tops up the peer's revealed chunks to `target` (0: as deep as its pipeline).
  void reveal(PeerState& p, Time now, std::size_t target = 0);
  // Tells the peer every chunk it lacks (HAVE each) and stops super-seeding it.
  void revealAll(PeerState& p, Time now);
  // The peer asked for (took) a chunk: show it the next one now, so it always
  // has some to ask for.
  void taken(PeerState& p, ChunkIndex index, Time now);
  // The peer is gone: its reveals no longer load their chunks.
  void peerGone(const PeerState& p);
  // For the tick: peers that ask for nothing get one more chunk, or everything
  // if they do not want what they were shown. `lastServe`: the last PIECE we
  // sent to anyone.
  void revealToIdle(Time lastServe, Time now);

 private:
  void unreveal(PeerState& p, ChunkIndex index);

  SessionState& state_;
  bool on_ = false;
  std::vector<std::uint32_t> revealedCount_;  // per chunk: peers it is revealed to that have not asked yet
  std::vector<std::uint32_t> assignedCount_;  // per chunk: requests for it we have taken
};

}  // namespace p2pcdn::swarm
