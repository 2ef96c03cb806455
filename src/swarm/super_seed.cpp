#include "swarm/super_seed.hpp"

#include <algorithm>
#include <cmath>

namespace p2pcdn::swarm {

namespace {
// Super-seeding falls back to telling a peer everything when it has not asked
// us for anything this long (or 4 chunk-times at its rate, if longer) although
// it lacks chunks we showed it.
constexpr Time kRevealIdle = std::chrono::seconds(1);
constexpr Time kRevealIdleMax = std::chrono::seconds(10);
}  // namespace

void SuperSeed::reset(ChunkIndex chunks) {
  revealedCount_.assign(chunks, 0);
  assignedCount_.assign(chunks, 0);
}

void SuperSeed::revealAll(PeerState& p, Time now) {
  if (p.reveal.full || !p.inPicker || p.dropping) return;
  p.reveal.full = true;
  for (ChunkIndex i : p.reveal.revealed) --revealedCount_[i];
  p.reveal.revealed.clear();
  for (ChunkIndex i = 0; i < state_.have.size(); ++i) {
    if (state_.have[i] && !p.has[i]) state_.sendTo(p, wire::encode(wire::Have{i}), now);
  }
}

// A peer that streams (asks in its own order) is not super-seeded; nor is
// one that has neither asked nor been sent anything for kRevealIdle although
// it lacks what we showed it (revealToIdle): both are told everything.
bool SuperSeed::wanted(const PeerState& p) const {
  if (!on_ || p.reveal.full || !p.inPicker || p.dropping) return false;
  return !(p.caps & wire::kCapStreaming);
}

// Keeps `target` chunks revealed to the peer and not yet requested by it,
// choosing the chunks with the least load (requests taken, then peers they are
// revealed to), scanning from a random start so equal loads spread. O(chunks)
// per reveal.
void SuperSeed::reveal(PeerState& p, Time now, std::size_t target) {
  if (!on_ || p.reveal.full || !p.inPicker || p.dropping) return;
  if (!wanted(p)) return revealAll(p, now);
  const SessionOptions& opts = state_.opts;
  if (target == 0) {
    // As deep as the peer's request pipeline would be: a fast lone peer must
    // not be held to a couple of chunks in flight. A slow store's reads are
    // part of the latency, with the pipeline's headroom: the rate is what the
    // reveals let through, so sized by rate x latency alone it would stay
    // wherever it is (the downloader's fixpoint, Downloader::requestTarget).
    const double chunk = static_cast<double>(state_.manifest->chunkSize);
    const double latency = seconds(opts.latencyGuess) + opts.pipelineHeadroom * seconds(state_.readLatency);
    const auto deep = static_cast<std::size_t>(std::ceil(p.upload.served.rate(now) * latency / chunk));
    target = std::max(opts.superSeedReveal, std::min(deep + 1, opts.maxRequestsPerPeer));
  }
  auto& revealed = p.reveal.revealed;
  std::erase_if(revealed, [&](ChunkIndex i) {
    if (!p.has[i]) return false;
    --revealedCount_[i];
    return true;
  });
  const auto n = static_cast<ChunkIndex>(state_.have.size());
  while (revealed.size() < target && p.hasCount + revealed.size() < n) {
    const auto start = static_cast<ChunkIndex>(state_.rng() % n);
    std::optional<ChunkIndex> best;
    std::uint64_t bestLoad = UINT64_MAX;
    for (ChunkIndex j = 0; j < n; ++j) {
      const ChunkIndex i = (start + j) % n;
      if (p.has[i] || std::find(revealed.begin(), revealed.end(), i) != revealed.end()) continue;
      // Never-taken chunks first (even if revealed elsewhere), then the least revealed.
      const std::uint64_t load = (std::uint64_t{assignedCount_[i]} << 32) + revealedCount_[i];
      if (load < bestLoad) {
        bestLoad = load;
        best = i;
        if (load == 0) break;
      }
    }
    if (!best) break;
    // Beyond the usual count only chunks nobody has taken or been shown:
    // extra reveals keep an idle link busy, they must not start repeats.
    if (revealed.size() >= opts.superSeedReveal && bestLoad != 0) break;
    revealed.push_back(*best);
    ++revealedCount_[*best];
    state_.sendTo(p, wire::encode(wire::Have{*best}), now);
  }
}

void SuperSeed::unreveal(PeerState& p, ChunkIndex index) {
  auto it = std::find(p.reveal.revealed.begin(), p.reveal.revealed.end(), index);
  if (it == p.reveal.revealed.end()) return;
  --revealedCount_[index];
  p.reveal.revealed.erase(it);
}

void SuperSeed::taken(PeerState& p, ChunkIndex index, Time now) {
  unreveal(p, index);
  ++assignedCount_[index];
  reveal(p, now);
}

void SuperSeed::peerGone(const PeerState& p) {
  for (ChunkIndex i : p.reveal.revealed) --revealedCount_[i];
}

void SuperSeed::revealToIdle(Time lastServe, Time now) {
  for (auto& [k, p] : state_.peers) {
    if (!p->upload.unchoked || !p->upload.queue.empty() || p->reveal.full || !p->inPicker || p->dropping) continue;
    // Stalled: it asked for nothing, we sent it nothing and served nobody
    // for kRevealIdle although it lacks chunks we showed it (it wants
    // others: a streaming window that started after the handshake).
    // Only while we serve nobody: a busy seeder is not stalled, and showing
    // everything to a peer that merely gets its chunks elsewhere for a while
    // undoes super-seeding (1 seeder -> 3 leechers: leecher share 54 % -> 31 %).
    const Time quiet = now - std::max({p->upload.lastPieceSent, p->upload.lastRequest, p->connected, lastServe});
    // A slow link is quiet for a while between chunks: allow it 4 chunk-times
    // at the rate it had when it last sent (the meter decays towards zero
    // and never reaches it: at the rate *now* the allowance grew faster than
    // the quiet time, and a link that had been slower than ~5 chunks/s
    // (4 chunk-times > 2 tau / e) waited forever),
    // and never more than kRevealIdleMax.
    const double rate = p->upload.served.rate(std::min(now, p->upload.lastPieceSent));
    const Time slow = rate > 0 ? fromSeconds(4.0 * state_.manifest->chunkSize / rate) : kRevealIdle;
    const Time idle = std::clamp(slow, kRevealIdle, kRevealIdleMax);
    if (quiet > idle && !p->reveal.revealed.empty()) {
      revealAll(*p, now);  // it does not want what we show it (streaming window, endgame): show everything
    } else if (p->reveal.revealed.size() < 4 * state_.opts.superSeedReveal) {
      reveal(*p, now, p->reveal.revealed.size() + 1);  // idle link: one more
    }
  }
}

}  // namespace p2pcdn::swarm
