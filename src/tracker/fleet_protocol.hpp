// The tracker fleet's shared-state formats and rules, without I/O (the
// Redis side is tracker/fleet.cpp). docs/deploy.md has the picture.
//
// In Redis, per swarm (hash-tagged by info hash, so a Redis Cluster keeps a
// swarm's keys on one shard):
//   p2pcdn:{<info hash hex>}:s   sorted set of seeders
//   p2pcdn:{<info hash hex>}:l   sorted set of leechers
// member = peer id (20 bytes) + instance id (8 bytes), score = expiry in
// milliseconds of Redis' own clock (so instances' clocks need not agree).
// Per instance, a pub/sub channel p2pcdn:i:<instance id hex> carries offers
// and answers for the peers connected to that instance (BusMessage).
//
// Everything read back from Redis is checked like any untrusted input.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "signaling/signaling.hpp"

namespace p2pcdn::tracker::fleet {

using InstanceId = std::array<std::uint8_t, 8>;

std::string instanceHex(const InstanceId& id);
std::string seedersKey(const signaling::InfoHash& infoHash);
std::string leechersKey(const signaling::InfoHash& infoHash);
std::string instanceChannel(const InstanceId& id);

struct MemberRef {
  signaling::PeerId peerId{};
  InstanceId instance{};
  bool operator==(const MemberRef&) const = default;
};
std::string encodeMember(const MemberRef& m);
std::optional<MemberRef> decodeMember(std::string_view bytes);

// An offer or an answer for a peer on another instance. `text` is the
// tracker message to hand to that peer's connection as it is.
struct BusMessage {
  enum class Kind : std::uint8_t { kOffer = 'o', kAnswer = 'a' };
  Kind kind = Kind::kOffer;
  signaling::InfoHash infoHash{};
  signaling::PeerId to{};
  signaling::PeerId from{};
  InstanceId fromInstance{};  // where `from` is connected (an answer goes back there)
  std::string text;
  bool operator==(const BusMessage&) const = default;
};
inline constexpr std::size_t kMaxBusTextBytes = signaling::kMaxMessageBytes;
std::string encodeBusMessage(const BusMessage& m);
Result<BusMessage> decodeBusMessage(std::string_view bytes);

// Chooses up to `want` peers uniformly from a swarm of `seeders` + `leechers`
// peers, given random samples of each set (distinct members, as ZRANDMEMBER
// with a positive count returns them), never `self`, never the same peer id
// twice; a seeder (seederPicks empty) gets leechers only.
std::vector<MemberRef> pickPeers(std::uint64_t seeders, std::uint64_t leechers, const std::vector<MemberRef>& seederPicks,
                                 const std::vector<MemberRef>& leecherPicks, const signaling::PeerId& self,
                                 std::size_t want, std::mt19937_64& rng);

// Where the peers that sent offers through this instance are connected, so
// their answers can go back: (swarm, peer) -> instance, for `ttl`, at most
// `capacity` entries (the oldest go first).
class RouteCache {
 public:
  using Clock = std::chrono::steady_clock;
  RouteCache(std::size_t capacity, std::chrono::milliseconds ttl, std::uint64_t seed = std::random_device{}());
  void remember(const signaling::InfoHash& infoHash, const signaling::PeerId& peer, const InstanceId& instance,
                Clock::time_point now);
  std::optional<InstanceId> find(const signaling::InfoHash& infoHash, const signaling::PeerId& peer,
                                 Clock::time_point now) const;
  std::size_t size() const { return map_.size(); }

 private:
  using Key = std::array<std::uint8_t, 40>;
  struct KeyHash {  // keyed: peers choose both halves of a key
    std::uint64_t k0 = 0, k1 = 0;
    std::size_t operator()(const Key& k) const noexcept;
  };
  struct Entry {
    InstanceId instance{};
    Clock::time_point expires{};
    std::uint64_t generation = 0;
  };
  static Key keyOf(const signaling::InfoHash& infoHash, const signaling::PeerId& peer);
  std::size_t capacity_;
  std::chrono::milliseconds ttl_;
  KeyHash hash_;
  std::unordered_map<Key, Entry, KeyHash> map_;
  std::deque<std::pair<Key, std::uint64_t>> order_;  // insertion order, for eviction
  std::uint64_t generation_ = 0;
};

}  // namespace p2pcdn::tracker::fleet
