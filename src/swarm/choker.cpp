#include "swarm/choker.hpp"

#include <algorithm>

namespace p2pcdn::swarm {

ChokeDecision chooseUnchoked(std::span<const ChokeCandidate> in, const ChokeRound& round, std::mt19937_64& rng) {
  std::vector<ChokeCandidate> candidates(in.begin(), in.end());
  std::shuffle(candidates.begin(), candidates.end(), rng);
  // Downloading: reciprocate (who gives us most). Seeding: who takes fastest.
  std::stable_sort(candidates.begin(), candidates.end(), [&](const ChokeCandidate& a, const ChokeCandidate& b) {
    return round.seeding ? a.uploadRate > b.uploadRate : a.downloadRate > b.downloadRate;
  });
  const std::size_t slots = round.slots;
  const std::size_t regular = std::min(slots > 1 ? slots - 1 : slots, candidates.size());
  ChokeDecision decision;
  decision.optimistic = round.optimistic;
  for (std::size_t i = 0; i < regular; ++i) decision.unchoked.push_back(candidates[i].key);
  if (slots > 1 && candidates.size() > regular) {
    const ChokeCandidate* current = nullptr;
    if (round.optimistic) {
      for (std::size_t i = regular; i < candidates.size(); ++i) {
        if (candidates[i].key == *round.optimistic) current = &candidates[i];
      }
    }
    if (!current || round.round % round.optimisticEvery == 0) {
      // Rotate: a random choked peer; newcomers count thrice.
      std::vector<const ChokeCandidate*> pool;
      for (std::size_t i = regular; i < candidates.size(); ++i) {
        const ChokeCandidate* c = &candidates[i];
        int weight = c->newcomer ? 3 : 1;
        for (int w = 0; w < weight; ++w) pool.push_back(c);
      }
      current = pool[rng() % pool.size()];
    }
    decision.optimistic = current->key;
    decision.unchoked.push_back(current->key);
  }
  return decision;
}

}  // namespace p2pcdn::swarm
