// PiecePicker: which chunks of one file to request from which peer. Pure logic
// (no I/O, clock or threads; randomness injected), modelled on libtorrent's
// aux_/piece_picker.hpp: availability counts per chunk, chunks kept in buckets
// by availability so rarest-first does not scan the whole file.
//
// Thread-safety: none; one event loop owns a picker. Untrusted indexes and
// bitfields (from peers) are checked and rejected with an Error, never asserted.
//
// State and complexity, for N chunks and P connected peers:
//  - per chunk: have bit, availability (u32), outstanding requests (u16) and a
//    position; about 11 bytes per chunk (11 MiB for 1 Mi chunks).
//  - a chunk we lack and nobody is requesting lives in bucket[availability]
//    (an unordered vector, O(1) swap-remove); a chunk we lack that is being
//    requested lives in the requested list instead. Chunks we have are in neither.
//  - addPeerBitfield / removePeerBitfield: O(N). peerHas, markHave,
//    markRequested, unmarkRequested: O(1).
//  - pick, whole file: O(P + c) where c is the number of bucket entries looked
//    at; c is about count / (fraction of the bucket the peer has), at worst the
//    size of the buckets below the one that fills the request.
//    Streaming adds O(windowSize). Endgame adds O(R log R), R = requested chunks.
//  - isEndgame: O(1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn::swarm {

enum class PickMode {
  kWholeFile,  // rarest first, random tie-break
  kStreaming,  // the window [cursor, cursor + windowSize) in order, then rarest first
};

struct PickerOptions {
  std::size_t windowSize = 16;     // streaming: chunks after the cursor picked in order
  std::uint16_t maxDuplicates = 2;   // endgame: at most this many outstanding requests per chunk
  // Streaming: chunks at or past cursor + streamLookahead are not picked, so a
  // slow consumer pauses fetching (bounded memory). 0 = no limit. Costs
  // O(streamLookahead log) per pick instead of the bucket walk.
  std::size_t streamLookahead = 0;
};

class PiecePicker {
 public:
  explicit PiecePicker(ChunkIndex chunkCount, PickerOptions options = {});

  ChunkIndex chunkCount() const { return count_; }
  const PickerOptions& options() const { return options_; }

  // Availability. A peer's bitfield must have exactly chunkCount() bits.
  // removePeerBitfield takes the peer's current bitfield (including the chunks
  // later announced through peerHas) when it disconnects.
  Status addPeerBitfield(const std::vector<bool>& bits);
  Status removePeerBitfield(const std::vector<bool>& bits);
  Status peerHas(ChunkIndex index);  // a connected peer announced one more chunk
  Status peerLost(ChunkIndex index);  // a connected peer no longer has a chunk (it rejected a request: not-have)
  std::uint32_t availability(ChunkIndex index) const { return avail_[index]; }

  // Our own progress. markHave also forgets the chunk's outstanding requests:
  // unmarkRequested on it afterwards (for cancelled endgame losers) is a no-op.
  Status markHave(ChunkIndex index);
  // Undoes markHave (a chunk whose write to the store failed): it is picked again.
  Status unmarkHave(ChunkIndex index);
  bool have(ChunkIndex index) const { return have_[index]; }
  std::size_t haveCount() const { return haveCount_; }
  bool complete() const { return haveCount_ == count_; }

  // Outstanding requests: the caller marks every chunk it requests (pick does
  // not) and unmarks it when the request fails, is rejected or is cancelled.
  Status markRequested(ChunkIndex index);
  Status unmarkRequested(ChunkIndex index);
  std::uint16_t requestCount(ChunkIndex index) const { return requested_[index]; }

  // Streaming: a seek. Clamped to chunkCount().
  void setStreamCursor(ChunkIndex index);
  void setStreamLookahead(std::size_t chunks) { options_.streamLookahead = chunks; }
  ChunkIndex streamCursor() const { return cursor_; }

  // True when every chunk we lack is already requested (and there is one):
  // pick then also returns chunks requested from other peers so that the last
  // ones race.
  bool isEndgame() const;

  // Up to `count` chunk indexes to request from a peer whose bitfield is
  // `peerHas` (that bitfield must be counted through addPeerBitfield/peerHas;
  // chunks with availability 0 are never picked outside the streaming window).
  // Never returns a chunk we have or the peer lacks, nor one already requested,
  // except in endgame: then, once nothing else is left, chunks with fewer than
  // maxDuplicates outstanding requests that are not in `inFlightFromPeer` (the
  // requests already sent to this peer). The caller cancels the losers.
  // `rng` is any callable returning uniformly random unsigned integers of at
  // least 32 bits (std::mt19937 works); the same seed gives the same picks.
  template <class Urbg>
  std::vector<ChunkIndex> pick(const std::vector<bool>& peerHas, std::size_t count, PickMode mode,
                               Urbg& rng, std::span<const ChunkIndex> inFlightFromPeer = {}) const {
    RandomSource source{&rng, [](void* g) -> std::uint64_t {
                          return static_cast<std::uint64_t>((*static_cast<Urbg*>(g))());
                        }};
    return pickImpl(peerHas, count, mode, source, inFlightFromPeer);
  }

 private:
  static constexpr ChunkIndex kNowhere = 0xFFFFFFFFu;

  struct RandomSource {
    void* state;
    std::uint64_t (*next)(void*);
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next(state) % n); }
  };

  std::vector<ChunkIndex> pickImpl(const std::vector<bool>& peerHas, std::size_t count,
                                   PickMode mode, RandomSource& rng,
                                   std::span<const ChunkIndex> inFlightFromPeer) const;
  Status checkIndex(ChunkIndex index, const char* op) const;
  void bucketInsert(ChunkIndex index);
  void bucketErase(ChunkIndex index);
  void requestedInsert(ChunkIndex index);
  void requestedErase(ChunkIndex index);
  void changeAvailability(ChunkIndex index, bool up);

  ChunkIndex count_;
  PickerOptions options_;
  ChunkIndex cursor_ = 0;
  std::size_t haveCount_ = 0;
  std::vector<bool> have_;
  std::vector<std::uint32_t> avail_;
  std::vector<std::uint16_t> requested_;
  // Index of the chunk in buckets_[avail_] or in requestedList_ (which one
  // follows from requested_), kNowhere for chunks we have.
  std::vector<ChunkIndex> pos_;
  std::vector<std::vector<ChunkIndex>> buckets_;  // [availability] -> unrequested chunks we lack
  std::size_t bucketed_ = 0;                      // total size of buckets_
  std::vector<ChunkIndex> requestedList_;         // chunks we lack with requests outstanding
};

}  // namespace p2pcdn::swarm
