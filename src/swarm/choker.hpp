// The choke round, pure: which of the interested peers we serve until the
// next round. maxConcurrentUploads slots: all but one go to the best ranked
// (downloading: who gives us most, reciprocation; seeding: who takes fastest),
// and one is an optimistic unchoke, a random choked peer (newcomers weighted
// three times), kept for optimisticEvery rounds so that peers we do not know
// yet get a chance to show what they give. With one slot there is no
// optimistic unchoke. No clock and no peers: the Session passes in what the
// round needs and applies the result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "swarm/stats.hpp"

namespace p2pcdn::swarm {

struct ChokeCandidate {
  PeerKey key = 0;
  double downloadRate = 0;  // what it gives us, bytes/s (PIECE data answering our requests)
  double uploadRate = 0;    // what it takes from us, bytes/s
  bool newcomer = false;    // connected less than three choke intervals ago
};

struct ChokeRound {
  std::size_t slots = 0;       // maxConcurrentUploads
  bool seeding = false;        // rank by uploadRate, else by downloadRate
  std::uint32_t round = 0;     // this round's number, counting from 1
  std::uint32_t optimisticEvery = 3;  // the optimistic unchoke rotates on rounds divisible by this (> 0)
  std::optional<PeerKey> optimistic;  // the current optimistic unchoke
};

struct ChokeDecision {
  std::vector<PeerKey> unchoked;      // the regular ones in rank order, then the optimistic one
  std::optional<PeerKey> optimistic;  // the round's optimistic unchoke; the old one if it had no slot for one
};

// Ties in rank are broken at random (the candidates are shuffled first).
ChokeDecision chooseUnchoked(std::span<const ChokeCandidate> candidates, const ChokeRound& round, std::mt19937_64& rng);

}  // namespace p2pcdn::swarm
