// TrackerFleet: one tracker instance's share of a fleet that keeps its swarms
// in Redis (`p2pcdn tracker --redis URL`; formats in fleet_protocol.hpp).
//
// The instance's SwarmRegistry keeps its own connections' peers; every
// accepted announce is also written to Redis by one Lua script (join or
// refresh with an expiry, leave, prune what expired, count, and sample peers
// for the offers), and answered with the whole swarm's counts. Offers go to
// peers of the whole swarm: straight to a connection of this instance, or
// published on the owning instance's channel, which hands them on; answers go
// back the same way (RouteCache remembers where each offer came from). A
// message for an instance nobody listens to any more (PUBLISH reaches no
// subscriber: it died) drops that instance's member at once.
//
// Without Redis (not yet connected, lost, or a command that failed) an
// announce is handled as a single tracker would: this instance's own peers
// only. After every (re)connection the instance re-publishes all its peers,
// so a restarted Redis (or a flushed one) gets the swarms back within one
// round of scripts.
//
// Needs Redis >= 6.2 (ZRANDMEMBER in the script). Not Redis Cluster yet: the
// keys are hash-tagged per swarm for it, but RedisClient follows no MOVED/ASK
// redirects and a cluster's PUBLISH counts only one node's subscribers.
//
// Threads: the tracker's io_context thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "tracker/fleet_protocol.hpp"
#include "tracker/redis_client.hpp"
#include "tracker/swarm_registry.hpp"

namespace p2pcdn::tracker {

struct FleetOptions {
  RedisOptions redis;
  std::chrono::milliseconds peerTtl{60'000};  // a member's life in Redis without a new announce
  std::size_t routeCacheEntries = 1 << 18;    // remembered offer senders (for their answers)
  std::size_t republishWindow = 256;          // scripts in flight while re-publishing
};

struct FleetStats {
  bool redisUp = false;
  RedisStats redis;          // the command connection
  RedisStats bus;            // the subscriber connection
  std::uint64_t announces = 0;        // announces run through Redis
  std::uint64_t localFallbacks = 0;   // announces handled with this instance's peers only (no Redis)
  std::uint64_t offersLocal = 0;      // offers to a peer on this instance
  std::uint64_t offersPublished = 0;  // offers sent to another instance
  std::uint64_t offersReceived = 0;   // offers from another instance, delivered
  std::uint64_t answersPublished = 0;
  std::uint64_t answersReceived = 0;
  std::uint64_t undeliverable = 0;    // for a peer no longer here, or an instance gone
  std::uint64_t answersUnroutable = 0;  // no route to the offer's sender
  std::uint64_t busErrors = 0;        // malformed channel messages
  std::uint64_t republished = 0;      // peers written again after a (re)connection
};

class TrackerFleet {
 public:
  using Deliver = std::function<void(ConnectionId, std::string)>;
  TrackerFleet(boost::asio::io_context& io, FleetOptions options, SwarmRegistry& registry, Deliver deliver);
  ~TrackerFleet();
  TrackerFleet(const TrackerFleet&) = delete;
  TrackerFleet& operator=(const TrackerFleet&) = delete;

  void start();
  void stop();
  // Whether announces go through Redis now.
  bool usable() const;
  // An announce the registry accepted in fleet mode (SwarmRegistry::handle).
  void announce(FleetAnnounce a);
  // Peers whose connection closed.
  void left(const std::vector<Member>& members);
  // Graceful stop: this instance's peers leave Redis, then `done` (posted
  // replies, each within the command deadline).
  void leaveAll(std::function<void()> done);
  FleetStats stats() const;

  struct State;

 private:
  std::shared_ptr<State> s_;
};

}  // namespace p2pcdn::tracker
