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
#include <functional>
#include <optional>
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
// A 64-bit xor-shift-multiply mixer; with secret keys mixed in, the
// keyed hashes below (and fleet::RouteCache's).
std::uint64_t mix64(std::uint64_t x);

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

// A peer of this registry, as the fleet's shared state records it.
struct Member {
  signaling::InfoHash infoHash{};
  signaling::PeerId peerId{};
  bool seeder = false;
};

// Fleet mode (handle() given a FleetAnnounce): the registry still keeps this
// instance's own peers and refuses what it must, but an accepted announce is
// neither answered nor relayed here: the fleet does both with the whole
// swarm's state (tracker/fleet.hpp).
struct FleetAnnounce {
  bool accepted = false;  // false: nothing to do (refused or not an announce; any reply is in `out`)
  ConnectionId from = 0;
  Member member;
  bool stopped = false;   // the peer left the swarm
  bool reply = false;     // the announce wants a reply (an answer-only announce does not)
  std::vector<signaling::OfferEntry> offers;  // to relay to up to `want` other peers of the swarm
  std::size_t want = 0;
  std::optional<signaling::AnswerEntry> answer;  // for a peer not held here
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
  // With `fleet`: fleet mode (above); an answer to a peer held here is still
  // relayed here.
  void handle(ConnectionId from, const signaling::ClientMessage& message, TimePoint now, std::vector<Delivery>& out,
              FleetAnnounce* fleet = nullptr);

  // The connection closed: its peers leave every swarm (appended to `left`).
  void removeConnection(ConnectionId id, std::vector<Member>* left = nullptr);

  // Fleet mode without the fleet (Redis unreachable): does with an accepted
  // announce what handle() alone would have (this registry's peers only).
  void relayLocally(const FleetAnnounce& a, std::vector<Delivery>& out);

  // The connection that holds peerId in the swarm, if this registry has it.
  std::optional<ConnectionId> connectionOf(const signaling::InfoHash& infoHash, const signaling::PeerId& peerId) const;
  // The peer as held here now (its role may have changed since a snapshot).
  std::optional<Member> member(const Member& m) const;
  // Every peer held here (the fleet re-publishes them after Redis returns).
  void forEachPeer(const std::function<void(const Member&)>& fn) const;

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

  void announce(ConnectionId from, const signaling::AnnounceRequest& a, TimePoint now, std::vector<Delivery>& out,
                FleetAnnounce* fleet);
  void scrape(ConnectionId from, const signaling::ScrapeRequest& s, std::vector<Delivery>& out);
  void refuse(ConnectionId from, const signaling::InfoHash& infoHash, std::string reason, std::vector<Delivery>& out);
  // Removes peers[index] from the swarm (and its connection's membership).
  void removePeer(SwarmMap::iterator swarm, std::uint32_t index, bool dropMembership = true);
  void replyCounts(ConnectionId to, const signaling::InfoHash& infoHash, std::vector<Delivery>& out) const;
  void relayOffers(SwarmMap::iterator swarm, std::uint32_t self, const std::vector<signaling::OfferEntry>& offers,
                   std::size_t want, std::vector<Delivery>& out);
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
