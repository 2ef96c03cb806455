// The tracker's state and rules, without I/O: swarms keyed by info_hash, their
// peers (peer_id -> the connection it announced on, seeder or leecher, last
// announce), and what to send where for each decoded client message.
//
// Behaviour follows webtorrent/bittorrent-tracker (docs/signaling.md,
// "Tracker behaviour"): an announce joins or refreshes its peer and is
// answered with the swarm's counts; each of its offers is relayed to one other
// random peer of the swarm (at most numwant of them, never the sender); an
// answer is relayed to to_peer_id and not replied to; "stopped" leaves the
// swarm. The tracker remembers nothing about offers: it routes by peer_id.
// Differences, for safety: a peer_id belongs to the first connection that
// announced it in a swarm (others get a failure until it leaves), a
// connection holds at most maxSwarmsPerConnection peers (one per swarm, or
// several peer_ids in one swarm: bittorrent-tracker's client shares one
// socket among the clients of a page), and scrape never lists all swarms.
//
// Time and randomness come from the caller (`now`, a seed), so tests drive it
// directly. Thread-safety: none; one thread (the tracker's event loop) owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "signaling/signaling.hpp"

namespace p2pcdn::tracker {

using Clock = std::chrono::steady_clock;

// Hash of a client-chosen 20-byte id under a secret per-registry key, so a
// client cannot pick ids that pile into one bucket (WebTorrent peer ids all
// start with the same 8 bytes, "-WW2085-", which alone rules out hashing a
// prefix).
struct KeyedIdHash {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
  std::size_t operator()(const signaling::Id20& id) const noexcept;
};
using TimePoint = Clock::time_point;
using ConnectionId = std::uint64_t;

struct RegistryOptions {
  // The announce interval told to clients. A peer that has not announced for
  // twice as long is dropped by expire().
  std::chrono::milliseconds interval{30'000};
  std::size_t maxSwarmsPerConnection = 100;  // peers one connection may hold (one per swarm, normally)
};

// One text message for one connection.
struct Delivery {
  ConnectionId to = 0;
  std::string text;
};

struct RegistryCounts {
  std::uint64_t swarms = 0;
  std::uint64_t peers = 0;
  std::uint64_t seeders = 0;
  std::uint64_t leechers = 0;
};

struct RegistryCounters {
  std::uint64_t announces = 0;
  std::uint64_t scrapes = 0;
  std::uint64_t offersRelayed = 0;
  std::uint64_t answersRelayed = 0;
  std::uint64_t answersUnroutable = 0;  // to_peer_id not in the swarm
  std::uint64_t refused = 0;            // announces answered with a failure
  std::uint64_t expired = 0;            // peers dropped by expire()
};

class SwarmRegistry {
 public:
  explicit SwarmRegistry(RegistryOptions options = {}, std::uint64_t seed = std::random_device{}());

  // Handles one message that arrived on connection `from`. Appends what to
  // send to `out`: the reply to `from` first (if any), then relayed offers or
  // the relayed answer.
  void handle(ConnectionId from, const signaling::ClientMessage& message, TimePoint now, std::vector<Delivery>& out);

  // The connection closed: its peers leave every swarm.
  void removeConnection(ConnectionId id);

  // Drops peers that have not announced for 2 x interval; returns how many.
  std::size_t expire(TimePoint now);

  RegistryCounts counts() const;
  const RegistryCounters& counters() const { return counters_; }
  std::uint32_t intervalSeconds() const;
  const RegistryOptions& options() const { return options_; }

 private:
  struct Peer {
    signaling::PeerId id{};
    ConnectionId connection = 0;
    TimePoint lastAnnounce{};
    bool seeder = false;
  };
  struct Swarm {
    explicit Swarm(const KeyedIdHash& h) : index(0, h) {}
    std::vector<Peer> peers;  // dense, for uniform random picks
    std::unordered_map<signaling::PeerId, std::uint32_t, KeyedIdHash> index;
    std::uint32_t seeders = 0;
  };
  struct Membership {
    signaling::InfoHash infoHash{};
    signaling::PeerId peerId{};
  };
  using SwarmMap = std::unordered_map<signaling::InfoHash, Swarm, KeyedIdHash>;

  void announce(ConnectionId from, const signaling::AnnounceRequest& a, TimePoint now, std::vector<Delivery>& out);
  void scrape(ConnectionId from, const signaling::ScrapeRequest& s, std::vector<Delivery>& out);
  void refuse(ConnectionId from, const signaling::InfoHash& infoHash, std::string reason, std::vector<Delivery>& out);
  // Removes peers[index] from the swarm (and its connection's membership).
  void removePeer(SwarmMap::iterator swarm, std::uint32_t index, bool dropMembership = true);
  void pickPeers(const Swarm& swarm, std::uint32_t self, std::size_t want, std::vector<std::uint32_t>& picked);

  RegistryOptions options_;
  std::mt19937_64 rng_;
  KeyedIdHash hash_;
  SwarmMap swarms_;
  std::unordered_map<ConnectionId, std::vector<Membership>> memberships_;
  std::uint64_t peerCount_ = 0;
  std::uint64_t seederCount_ = 0;
  RegistryCounters counters_;
  std::vector<std::uint32_t> scratch_;
};

}  // namespace p2pcdn::tracker
