// The tracker and signaling server: WebTorrent's WebSocket tracker protocol
// (docs/signaling.md) on Boost.Beast, plus plain HTTP on the same port:
//   GET /stats    JSON counters (TrackerStats)
//   GET /metrics  the same in the Prometheus text exposition format
// Any other GET with an "Upgrade: websocket" header (any path, e.g.
// ws://host:port/ or /announce) becomes a tracker connection.
//
// One thread runs one io_context that owns all state (the SwarmRegistry and
// every connection); the public methods post onto it. Bounds: message size
// (kMaxMessageBytes; larger closes the connection with 1009), offers per
// announce, swarms per connection, total connections, a per-connection token
// bucket (excess messages get a failure reason, repeated excess closes the
// connection with 1008), a per-connection send queue (a peer that does not
// read is disconnected), handshake and idle timeouts (with pings).
//
// Thread-safety: every public method may be called from any thread;
// stats() and stop() must not be called from the server's own thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "p2pcdn/result.hpp"

namespace p2pcdn::tracker {

struct TrackerOptions {
  std::chrono::milliseconds interval{30'000};  // announce interval told to clients; peers expire after 2x
  std::size_t maxConnections = 10'000;         // TCP connections (HTTP + WebSocket); more are closed at once
  // ... from one IPv4 address or IPv6 /64 (0: no limit; behind a load
  // balancer that hides clients' addresses, set 0 there).
  std::size_t maxConnectionsPerSource = 256;
  std::size_t maxSwarmsPerConnection = 100;
  double rateLimit = 50;        // messages per second per connection (<= 0: unlimited)
  double rateBurst = 100;       // messages a connection may send at once
  std::size_t abuseLimit = 100; // rate-limited messages (refilled at rateLimit / 10 per second) before a close
  std::size_t maxQueuedBytes = 1 << 20;  // unsent bytes per connection before it is dropped as too slow
  std::chrono::milliseconds handshakeTimeout{10'000};  // HTTP request / WebSocket handshake / close
  // No message from the client this long closes its connection: pings keep a
  // dead TCP connection from lingering, and a client that only answers them
  // (holding a slot without announcing) is closed too. 0: 2 x interval + 30 s.
  std::chrono::milliseconds idleTimeout{0};
  // redis://HOST[:PORT][/DB]: one instance of a fleet that shares its swarms
  // in Redis (tracker/fleet.hpp). Empty: swarms in this process only.
  std::string redisUrl;
  // wss://: PEM files of the certificate chain and its private key; every
  // connection on the port is then TLS (HTTP /stats and /metrics too).
  std::string tlsCert, tlsKey;
};

// Counters since start (totals) and the current state (gauges).
struct TrackerStats {
  // gauges
  std::uint64_t connections = 0;  // open WebSocket connections
  std::uint64_t swarms = 0;
  std::uint64_t peers = 0;
  std::uint64_t seeders = 0;
  std::uint64_t leechers = 0;
  // totals
  std::uint64_t connectionsAccepted = 0;  // TCP connections accepted (HTTP and WebSocket)
  std::uint64_t connectionsRejected = 0;  // closed at once: maxConnections (or the per-source limit) reached
  std::uint64_t connectionsRejectedPerSource = 0;  // ... of which by maxConnectionsPerSource
  std::uint64_t messagesIn = 0;           // WebSocket messages received
  std::uint64_t messagesOut = 0;          // WebSocket messages sent
  std::uint64_t bytesIn = 0;
  std::uint64_t bytesOut = 0;
  std::uint64_t announces = 0;
  std::uint64_t scrapes = 0;
  std::uint64_t offersRelayed = 0;
  std::uint64_t answersRelayed = 0;
  std::uint64_t answersUnroutable = 0;
  std::uint64_t errors = 0;          // messages answered with a failure reason (malformed, refused)
  std::uint64_t rateLimited = 0;     // messages dropped by the rate limit
  std::uint64_t closedAbusive = 0;   // connections closed for exceeding the rate limit repeatedly
  std::uint64_t closedSlow = 0;      // connections closed because their send queue overflowed
  std::uint64_t closedOversized = 0; // connections closed for a message over the size limit
  std::uint64_t closedIdle = 0;      // connections that sent no message for idleTimeout (answering pings is not enough)
  std::uint64_t peersExpired = 0;
  std::uint64_t httpRequests = 0;
  // The fleet (--redis); all 0 without it. Gauges: redisUp, redisRttMicros.
  std::uint64_t redisUp = 0;           // 1 while announces go through Redis
  std::uint64_t redisConnects = 0;     // (re)connections, both of the instance's Redis connections
  std::uint64_t redisErrors = 0;       // commands that failed (error reply, lost, timed out)
  std::uint64_t redisTimeouts = 0;
  std::uint64_t redisRttMicros = 0;    // the last command's round trip
  std::uint64_t redisRttMicrosSum = 0; // over redisRttCount commands
  std::uint64_t redisRttCount = 0;
  std::uint64_t fleetAnnounces = 0;    // announces run through Redis
  std::uint64_t fleetFallbacks = 0;    // announces answered with this instance's peers only (Redis unreachable)
  std::uint64_t fleetOffersPublished = 0;  // offers for a peer on another instance
  std::uint64_t fleetOffersReceived = 0;   // offers from another instance, delivered here
  std::uint64_t fleetAnswersPublished = 0;
  std::uint64_t fleetAnswersReceived = 0;
  std::uint64_t fleetUndeliverable = 0;    // the peer or its instance was gone
  std::uint64_t fleetRepublished = 0;      // peers written to Redis again after a (re)connection
};

std::string statsJson(const TrackerStats& s);
std::string statsPrometheus(const TrackerStats& s);

class TrackerServer {
 public:
  explicit TrackerServer(TrackerOptions options = {});
  ~TrackerServer();  // stop()s
  TrackerServer(const TrackerServer&) = delete;
  TrackerServer& operator=(const TrackerServer&) = delete;

  // Binds host:port (port 0: any free port, see port()) and starts the thread.
  Status start(std::string_view host, std::uint16_t port);
  std::uint16_t port() const;
  // Stops accepting, closes every connection (WebSocket close 1001, up to
  // about 2 s for the handshakes) and joins the thread. Idempotent.
  void stop();
  TrackerStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace p2pcdn::tracker
