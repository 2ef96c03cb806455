#include "swarm/picker.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <string>

namespace p2pcdn::swarm {

PiecePicker::PiecePicker(ChunkIndex chunkCount, PickerOptions options)
    : count_(std::min(chunkCount, kNowhere)),  // kNowhere itself is never a valid index
      options_(options),
      have_(count_, false),
      avail_(count_, 0),
      requested_(count_, 0),
      pos_(count_),
      buckets_(1) {
  std::iota(pos_.begin(), pos_.end(), ChunkIndex{0});
  buckets_[0] = pos_;  // every chunk: lacked, unrequested, availability 0
  bucketed_ = count_;
}

Status PiecePicker::checkIndex(ChunkIndex index, const char* op) const {
  if (index >= count_) {
    return fail(Errc::kInvalidArgument, op,
                "chunk " + std::to_string(index) + " out of range (" + std::to_string(count_) +
                    " chunks)");
  }
  return {};
}

void PiecePicker::bucketInsert(ChunkIndex index) {
  const std::uint32_t a = avail_[index];
  if (a >= buckets_.size()) buckets_.resize(std::size_t{a} + 1);
  auto& bucket = buckets_[a];
  pos_[index] = static_cast<ChunkIndex>(bucket.size());
  bucket.push_back(index);
  ++bucketed_;
}

void PiecePicker::bucketErase(ChunkIndex index) {
  auto& bucket = buckets_[avail_[index]];
  const ChunkIndex p = pos_[index];
  const ChunkIndex last = bucket.back();
  bucket[p] = last;
  pos_[last] = p;
  bucket.pop_back();
  pos_[index] = kNowhere;
  --bucketed_;
}

void PiecePicker::requestedInsert(ChunkIndex index) {
  pos_[index] = static_cast<ChunkIndex>(requestedList_.size());
  requestedList_.push_back(index);
}

void PiecePicker::requestedErase(ChunkIndex index) {
  const ChunkIndex p = pos_[index];
  const ChunkIndex last = requestedList_.back();
  requestedList_[p] = last;
  pos_[last] = p;
  requestedList_.pop_back();
  pos_[index] = kNowhere;
}

void PiecePicker::changeAvailability(ChunkIndex index, bool up) {
  std::uint32_t& a = avail_[index];
  if (up ? a == std::numeric_limits<std::uint32_t>::max() : a == 0) return;  // clamp
  const bool bucketed = !have_[index] && requested_[index] == 0;
  if (bucketed) bucketErase(index);
  a = up ? a + 1 : a - 1;
  if (bucketed) bucketInsert(index);
}

Status PiecePicker::addPeerBitfield(const std::vector<bool>& bits) {
  if (bits.size() != count_) {
    return fail(Errc::kInvalidArgument, "add peer bitfield",
                std::to_string(bits.size()) + " bits for " + std::to_string(count_) + " chunks");
  }
  for (ChunkIndex i = 0; i < count_; ++i) {
    if (bits[i]) changeAvailability(i, true);
  }
  return {};
}

Status PiecePicker::removePeerBitfield(const std::vector<bool>& bits) {
  if (bits.size() != count_) {
    return fail(Errc::kInvalidArgument, "remove peer bitfield",
                std::to_string(bits.size()) + " bits for " + std::to_string(count_) + " chunks");
  }
  for (ChunkIndex i = 0; i < count_; ++i) {
    if (bits[i]) changeAvailability(i, false);
  }
  return {};
}

Status PiecePicker::peerHas(ChunkIndex index) {
  P2PCDN_TRY(checkIndex(index, "peer has"));
  changeAvailability(index, true);
  return {};
}

Status PiecePicker::peerLost(ChunkIndex index) {
  P2PCDN_TRY(checkIndex(index, "peer lost"));
  if (avail_[index] == 0) return fail(Errc::kInvalidArgument, "peer lost", "availability already 0");
  changeAvailability(index, false);
  return {};
}

Status PiecePicker::markHave(ChunkIndex index) {
  P2PCDN_TRY(checkIndex(index, "mark have"));
  if (have_[index]) return {};
  if (requested_[index] > 0) {
    requestedErase(index);
  } else {
    bucketErase(index);
  }
  requested_[index] = 0;
  have_[index] = true;
  ++haveCount_;
  return {};
}

Status PiecePicker::unmarkHave(ChunkIndex index) {
  P2PCDN_TRY(checkIndex(index, "unmark have"));
  if (!have_[index]) return {};
  have_[index] = false;
  --haveCount_;
  bucketInsert(index);
  return {};
}

Status PiecePicker::markRequested(ChunkIndex index) {
  P2PCDN_TRY(checkIndex(index, "mark requested"));
  if (have_[index]) {
    return fail(Errc::kInvalidArgument, "mark requested",
                "chunk " + std::to_string(index) + " is already stored");
  }
  std::uint16_t& r = requested_[index];
  if (r == std::numeric_limits<std::uint16_t>::max()) return {};  // saturate
  if (r == 0) {
    bucketErase(index);
    requestedInsert(index);
  }
  ++r;
  return {};
}

Status PiecePicker::unmarkRequested(ChunkIndex index) {
  P2PCDN_TRY(checkIndex(index, "unmark requested"));
  std::uint16_t& r = requested_[index];
  if (have_[index] || r == 0) return {};
  --r;
  if (r == 0) {
    requestedErase(index);
    bucketInsert(index);
  }
  return {};
}

void PiecePicker::setStreamCursor(ChunkIndex index) { cursor_ = std::min(index, count_); }

bool PiecePicker::isEndgame() const {
  // Every chunk we lack is requested. (Not "every chunk some peer has": early
  // on, when the neighbours hold a few chunks each, that would race them all.)
  return !requestedList_.empty() && bucketed_ == 0;
}

std::vector<ChunkIndex> PiecePicker::pickImpl(const std::vector<bool>& peerHas,
                                              std::size_t count, PickMode mode,
                                              RandomSource& rng,
                                              std::span<const ChunkIndex> inFlightFromPeer) const {
  std::vector<ChunkIndex> out;
  if (count == 0) return out;
  const auto peerHasChunk = [&](ChunkIndex i) { return i < peerHas.size() && peerHas[i]; };

  // 1. Streaming: the urgent window, in order (deadline priority).
  ChunkIndex windowEnd = cursor_;  // empty window in whole-file mode
  if (mode == PickMode::kStreaming) {
    std::uint64_t window = options_.windowSize;
    if (options_.streamLookahead != 0) window = std::min<std::uint64_t>(window, options_.streamLookahead);
    windowEnd = static_cast<ChunkIndex>(std::min<std::uint64_t>(std::uint64_t{cursor_} + window, count_));
    for (ChunkIndex i = cursor_; i < windowEnd && out.size() < count; ++i) {
      if (!have_[i] && requested_[i] == 0 && peerHasChunk(i)) out.push_back(i);
    }
  }
  const auto inWindow = [&](ChunkIndex i) { return i >= cursor_ && i < windowEnd; };
  const bool bounded = mode == PickMode::kStreaming && options_.streamLookahead != 0;
  const ChunkIndex limit =
      bounded ? static_cast<ChunkIndex>(std::min<std::uint64_t>(std::uint64_t{cursor_} + options_.streamLookahead, count_))
              : count_;

  // 2a. Bounded streaming: rarest first inside [windowEnd, limit) only.
  if (bounded) {
    std::vector<std::pair<std::uint64_t, ChunkIndex>> candidates;  // (availability, random) -> chunk
    for (ChunkIndex i = windowEnd; i < limit; ++i) {
      if (!have_[i] && requested_[i] == 0 && peerHasChunk(i)) {
        candidates.emplace_back((std::uint64_t{avail_[i]} << 32) | (rng.below(1u << 31)), i);
      }
    }
    std::sort(candidates.begin(), candidates.end());
    for (std::size_t j = 0; j < candidates.size() && out.size() < count; ++j) out.push_back(candidates[j].second);
  }

  // 2. Rarest first: buckets by increasing availability; inside a bucket, start
  // at a random position and wrap, so that peers spread over equally rare chunks.
  for (std::size_t a = 1; !bounded && a < buckets_.size() && out.size() < count; ++a) {
    const auto& bucket = buckets_[a];
    if (bucket.empty()) continue;
    const std::size_t start = rng.below(bucket.size());
    for (std::size_t j = 0; j < bucket.size() && out.size() < count; ++j) {
      std::size_t k = start + j;
      if (k >= bucket.size()) k -= bucket.size();
      const ChunkIndex i = bucket[k];
      if (peerHasChunk(i) && !inWindow(i)) out.push_back(i);
    }
  }

  // 3. Endgame: race chunks already requested from others, least duplicated
  // first, then in stream order (streaming) or at random (whole file).
  // (Not when a bounded window is empty: the cursor past the end asks for
  // nothing, PeerMesh.requestChunk's wishes only.)
  if (out.size() < count && isEndgame() && !(bounded && cursor_ >= count_)) {
    std::vector<ChunkIndex> sent(inFlightFromPeer.begin(), inFlightFromPeer.end());
    std::sort(sent.begin(), sent.end());
    std::vector<ChunkIndex> candidates;
    for (ChunkIndex i : requestedList_) {
      if (requested_[i] < options_.maxDuplicates && avail_[i] > 0 && peerHasChunk(i) && i < limit &&
          !std::binary_search(sent.begin(), sent.end(), i)) {
        candidates.push_back(i);
      }
    }
    if (mode == PickMode::kStreaming) {
      // From the cursor to the end, then the chunks before the cursor.
      std::sort(candidates.begin(), candidates.end(), [&](ChunkIndex x, ChunkIndex y) {
        const bool xBefore = x < cursor_;
        const bool yBefore = y < cursor_;
        return xBefore != yBefore ? yBefore : x < y;
      });
    } else {
      std::sort(candidates.begin(), candidates.end());  // requestedList_ order is history
      for (std::size_t j = candidates.size(); j > 1; --j) {
        std::swap(candidates[j - 1], candidates[rng.below(j)]);
      }
    }
    std::stable_sort(candidates.begin(), candidates.end(), [&](ChunkIndex x, ChunkIndex y) {
      return requested_[x] < requested_[y];
    });
    for (std::size_t j = 0; j < candidates.size() && out.size() < count; ++j) {
      out.push_back(candidates[j]);
    }
  }
  return out;
}

}  // namespace p2pcdn::swarm
