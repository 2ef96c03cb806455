#include "tracker/swarm_registry.hpp"

#include <algorithm>
#include <cstring>

namespace p2pcdn::tracker {

using namespace signaling;

std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ull;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ull;
  x ^= x >> 32;
  return x;
}

std::size_t KeyedIdHash::operator()(const Id20& id) const noexcept {
  std::uint64_t a, b;
  std::uint32_t c;
  std::memcpy(&a, id.data(), 8);
  std::memcpy(&b, id.data() + 8, 8);
  std::memcpy(&c, id.data() + 16, 4);
  std::uint64_t h = mix64(k0 ^ a);
  h = mix64(h ^ b ^ k1);
  return static_cast<std::size_t>(mix64(h ^ c ^ k0));
}

SwarmRegistry::SwarmRegistry(RegistryOptions options, std::uint64_t seed)
    : options_(options), rng_(seed), hash_{rng_(), rng_()}, swarms_(0, hash_) {}

std::uint32_t SwarmRegistry::intervalSeconds() const {
  const auto ms = std::max<std::int64_t>(options_.interval.count(), 1);
  return static_cast<std::uint32_t>(std::min<std::int64_t>((ms + 999) / 1000, 0xffffffff));
}

RegistryCounts SwarmRegistry::counts() const {
  return {swarms_.size(), peerCount_, seederCount_, peerCount_ - seederCount_};
}

void SwarmRegistry::handle(ConnectionId from, const ClientMessage& message, TimePoint now, std::vector<Delivery>& out,
                           FleetAnnounce* fleet) {
  if (fleet) *fleet = FleetAnnounce{};
  if (const auto* a = std::get_if<AnnounceRequest>(&message)) {
    announce(from, *a, now, out, fleet);
  } else {
    scrape(from, std::get<ScrapeRequest>(message), out);
  }
}

void SwarmRegistry::refuse(ConnectionId from, const InfoHash& infoHash, std::string reason, std::vector<Delivery>& out) {
  ++counters_.refused;
  out.push_back({from, encodeTrackerMessage(Failure{std::move(reason), Action::kAnnounce, infoHash})});
}

void SwarmRegistry::announce(ConnectionId from, const AnnounceRequest& a, TimePoint now, std::vector<Delivery>& out,
                             FleetAnnounce* fleet) {
  ++counters_.announces;
  auto swarm = swarms_.find(a.infoHash);
  std::uint32_t self = 0;
  bool present = false;
  if (swarm != swarms_.end()) {
    if (auto p = swarm->second.index.find(a.peerId); p != swarm->second.index.end()) {
      if (swarm->second.peers[p->second].connection != from) {
        return refuse(from, a.infoHash, "peer_id is in use by another connection", out);
      }
      self = p->second;
      present = true;
    }
  }
  std::vector<Membership>* mine = nullptr;
  if (auto m = memberships_.find(from); m != memberships_.end()) mine = &m->second;

  if (fleet) {
    fleet->from = from;
    fleet->member.infoHash = a.infoHash;
    fleet->member.peerId = a.peerId;
    fleet->reply = !a.answer;
  }
  auto reply = [&] {
    if (a.answer) return;  // like bittorrent-tracker: an answer gets no reply
    if (fleet) return;     // the fleet answers with the whole swarm's counts
    replyCounts(from, a.infoHash, out);
  };

  if (a.event == Event::kStopped) {
    if (fleet) {
      fleet->accepted = true;  // the fleet forgets it and replies
      fleet->stopped = true;
      if (present) fleet->member.seeder = swarm->second.peers[self].seeder;
    }
    if (present) {
      removePeer(swarm, self);
      if (swarm->second.peers.empty()) swarms_.erase(swarm);
    }
    return reply();
  }

  if (!present) {
    if (mine && mine->size() >= options_.maxSwarmsPerConnection) {
      return refuse(from, a.infoHash,
                    "too many swarms on one connection (at most " + std::to_string(options_.maxSwarmsPerConnection) + ")",
                    out);  // counted as peers: two peer_ids in one swarm take two
    }
    if (swarm == swarms_.end()) swarm = swarms_.emplace(a.infoHash, Swarm(hash_)).first;
    Swarm& s = swarm->second;
    self = static_cast<std::uint32_t>(s.peers.size());
    s.peers.push_back(Peer{a.peerId, from, now, false});
    s.index.emplace(a.peerId, self);
    ++peerCount_;
    if (!mine) mine = &memberships_[from];
    mine->push_back(Membership{a.infoHash, a.peerId});
  }
  Swarm& s = swarm->second;
  Peer& peer = s.peers[self];
  peer.lastAnnounce = now;
  bool seeder = peer.seeder;
  if (a.left) seeder = *a.left == 0;
  if (a.event == Event::kCompleted) seeder = true;
  if (seeder != peer.seeder) {
    peer.seeder = seeder;
    if (seeder) {
      ++s.seeders;
      ++seederCount_;
    } else {
      --s.seeders;
      --seederCount_;
    }
  }

  reply();
  if (fleet) {
    fleet->accepted = true;
    fleet->member.seeder = seeder;
  }

  if (a.answer) {
    auto to = s.index.find(a.answer->toPeerId);
    if (fleet && to == s.index.end()) {
      fleet->answer = a.answer;  // held by another instance, perhaps
    } else if (to == s.index.end() || to->second == self) {
      ++counters_.answersUnroutable;
    } else {
      out.push_back({s.peers[to->second].connection,
                     encodeTrackerMessage(RelayedAnswer{a.infoHash, a.peerId, a.answer->offerId, a.answer->answer})});
      ++counters_.answersRelayed;
    }
  }

  if (fleet) {
    fleet->want = std::min<std::size_t>(a.offers.size(), a.numwant.value_or(kMaxNumwant));
    fleet->offers.assign(a.offers.begin(), a.offers.begin() + static_cast<std::ptrdiff_t>(fleet->want));
  } else {
    relayOffers(swarm, self, a.offers, std::min<std::size_t>(a.offers.size(), a.numwant.value_or(kMaxNumwant)), out);
  }
}

void SwarmRegistry::replyCounts(ConnectionId to, const InfoHash& infoHash, std::vector<Delivery>& out) const {
  AnnounceResponse r{infoHash, intervalSeconds(), 0, 0};
  if (auto s = swarms_.find(infoHash); s != swarms_.end()) {
    r.complete = s->second.seeders;
    r.incomplete = static_cast<std::uint32_t>(s->second.peers.size()) - s->second.seeders;
  }
  out.push_back({to, encodeTrackerMessage(r)});
}

void SwarmRegistry::relayOffers(SwarmMap::iterator swarm, std::uint32_t self, const std::vector<OfferEntry>& offers,
                                std::size_t want, std::vector<Delivery>& out) {
  if (offers.empty()) return;
  const Swarm& s = swarm->second;
  pickPeers(s, self, want, scratch_);
  for (std::size_t i = 0; i < scratch_.size(); ++i) {
    const OfferEntry& o = offers[i];
    out.push_back({s.peers[scratch_[i]].connection,
                   encodeTrackerMessage(RelayedOffer{swarm->first, s.peers[self].id, o.offerId, o.offer})});
  }
  counters_.offersRelayed += scratch_.size();
}

void SwarmRegistry::relayLocally(const FleetAnnounce& a, std::vector<Delivery>& out) {
  if (!a.accepted) return;
  if (a.reply) replyCounts(a.from, a.member.infoHash, out);
  if (a.answer) ++counters_.answersUnroutable;
  if (a.stopped || a.offers.empty()) return;
  auto swarm = swarms_.find(a.member.infoHash);
  if (swarm == swarms_.end()) return;
  auto self = swarm->second.index.find(a.member.peerId);
  if (self == swarm->second.index.end() || swarm->second.peers[self->second].connection != a.from) return;
  relayOffers(swarm, self->second, a.offers, a.want, out);
}

// Up to `want` distinct random peers other than `self`. A seeder's offers go
// to leechers only (two seeders have nothing to trade).
void SwarmRegistry::pickPeers(const Swarm& swarm, std::uint32_t self, std::size_t want,
                              std::vector<std::uint32_t>& picked) {
  picked.clear();
  if (want == 0) return;
  const bool leechersOnly = swarm.peers[self].seeder;
  const auto n = static_cast<std::uint32_t>(swarm.peers.size());
  auto eligible = [&](std::uint32_t i) { return i != self && !(leechersOnly && swarm.peers[i].seeder); };
  if (n <= 4 * want + 16) {
    // Small swarm: a partial shuffle of every eligible peer.
    for (std::uint32_t i = 0; i < n; ++i) {
      if (eligible(i)) picked.push_back(i);
    }
    const std::size_t k = std::min(want, picked.size());
    for (std::size_t i = 0; i < k; ++i) {
      std::uniform_int_distribution<std::size_t> d(i, picked.size() - 1);
      std::swap(picked[i], picked[d(rng_)]);
    }
    picked.resize(k);
    return;
  }
  // Large swarm: rejection sampling, a bounded number of draws (so a swarm of
  // seeders costs a seeder O(want), and it may get fewer than it asked for).
  std::uniform_int_distribution<std::uint32_t> d(0, n - 1);
  for (std::size_t attempt = 0; attempt < 8 * want && picked.size() < want; ++attempt) {
    const std::uint32_t i = d(rng_);
    if (eligible(i) && std::find(picked.begin(), picked.end(), i) == picked.end()) picked.push_back(i);
  }
}

void SwarmRegistry::scrape(ConnectionId from, const ScrapeRequest& s, std::vector<Delivery>& out) {
  ++counters_.scrapes;
  ScrapeResponse r;
  r.minRequestInterval = intervalSeconds();
  for (const InfoHash& h : s.infoHashes) {
    if (std::any_of(r.files.begin(), r.files.end(), [&](const ScrapeFile& f) { return f.infoHash == h; })) continue;
    ScrapeFile f{h, 0, 0, 0};
    if (auto it = swarms_.find(h); it != swarms_.end()) {
      f.complete = it->second.seeders;
      f.incomplete = static_cast<std::uint32_t>(it->second.peers.size()) - it->second.seeders;
      f.downloaded = f.complete;  // a lower bound, as bittorrent-tracker reports it
    }
    r.files.push_back(f);
  }
  out.push_back({from, encodeTrackerMessage(r)});
}

void SwarmRegistry::removePeer(SwarmMap::iterator swarm, std::uint32_t index, bool dropMembership) {
  Swarm& s = swarm->second;
  const Peer gone = s.peers[index];
  if (gone.seeder) {
    --s.seeders;
    --seederCount_;
  }
  --peerCount_;
  s.index.erase(gone.id);
  if (index + 1 != s.peers.size()) {
    s.peers[index] = s.peers.back();
    s.index[s.peers[index].id] = index;
  }
  s.peers.pop_back();
  if (dropMembership) {
    if (auto m = memberships_.find(gone.connection); m != memberships_.end()) {
      auto& list = m->second;
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (list[i].infoHash == swarm->first && list[i].peerId == gone.id) {
          list[i] = list.back();
          list.pop_back();
          break;
        }
      }
      if (list.empty()) memberships_.erase(m);
    }
  }
}

void SwarmRegistry::removeConnection(ConnectionId id, std::vector<Member>* left) {
  auto m = memberships_.find(id);
  if (m == memberships_.end()) return;
  for (const Membership& member : m->second) {
    auto swarm = swarms_.find(member.infoHash);
    if (swarm == swarms_.end()) continue;
    auto p = swarm->second.index.find(member.peerId);
    if (p == swarm->second.index.end() || swarm->second.peers[p->second].connection != id) continue;
    if (left) left->push_back(Member{member.infoHash, member.peerId, swarm->second.peers[p->second].seeder});
    removePeer(swarm, p->second, /*dropMembership=*/false);
    if (swarm->second.peers.empty()) swarms_.erase(swarm);
  }
  memberships_.erase(m);
}

std::optional<ConnectionId> SwarmRegistry::connectionOf(const InfoHash& infoHash, const PeerId& peerId) const {
  auto swarm = swarms_.find(infoHash);
  if (swarm == swarms_.end()) return std::nullopt;
  auto p = swarm->second.index.find(peerId);
  if (p == swarm->second.index.end()) return std::nullopt;
  return swarm->second.peers[p->second].connection;
}

std::optional<Member> SwarmRegistry::member(const Member& m) const {
  auto swarm = swarms_.find(m.infoHash);
  if (swarm == swarms_.end()) return std::nullopt;
  auto p = swarm->second.index.find(m.peerId);
  if (p == swarm->second.index.end()) return std::nullopt;
  return Member{m.infoHash, m.peerId, swarm->second.peers[p->second].seeder};
}

void SwarmRegistry::forEachPeer(const std::function<void(const Member&)>& fn) const {
  for (const auto& [infoHash, swarm] : swarms_) {
    for (const Peer& p : swarm.peers) fn(Member{infoHash, p.id, p.seeder});
  }
}

std::size_t SwarmRegistry::expire(TimePoint now) {
  const TimePoint cutoff = now - 2 * options_.interval;
  std::size_t dropped = 0;
  for (auto swarm = swarms_.begin(); swarm != swarms_.end();) {
    auto& peers = swarm->second.peers;
    // Backwards, so the peer swapped into a freed slot was already checked.
    for (std::size_t i = peers.size(); i-- > 0;) {
      if (peers[i].lastAnnounce < cutoff) {
        removePeer(swarm, static_cast<std::uint32_t>(i));
        ++dropped;
      }
    }
    if (peers.empty()) {
      swarm = swarms_.erase(swarm);
    } else {
      ++swarm;
    }
  }
  counters_.expired += dropped;
  return dropped;
}

}  // namespace p2pcdn::tracker
