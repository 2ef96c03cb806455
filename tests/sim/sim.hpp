// A swarm simulator: many peers and the tracker in one process, in virtual
// time, over a modelled network. Each peer runs the production swarm::Session
// (the same code the native node and the browser run); the tracker is the
// production tracker::SwarmRegistry, spoken to in the real signaling JSON.
// Only links and time are simulated.
//
// Network model, per peer: an upload link of `up` bytes/s and a download link
// of `down` bytes/s, each a FIFO shared by all of the peer's connections; a
// one-way latency (a message between a and b takes latency_a + latency_b);
// loss as retransmission delay (a lost message arrives one RTT + 200 ms late
// and, the channel being ordered, holds up the ones behind it). A connection
// accepts at most `highWatermark` bytes not yet on the wire (back-pressure
// like a data channel's bufferedAmount) and reports writable at lowWatermark.
//
// Deterministic: the same SimConfig (seed included) gives the same result.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "swarm/discovery.hpp"
#include "swarm/session.hpp"

namespace p2pcdn::sim {

struct PeerClass {
  double share = 1.0;         // fraction of the leechers in this class
  double up = 256e3;          // bytes/s
  double down = 1024e3;       // bytes/s
};

struct SimConfig {
  std::uint64_t seed = 1;
  std::size_t leechers = 100;
  std::uint32_t chunkCount = 128;
  std::uint32_t chunkSize = 16384;
  double seederUp = 256e3;    // bytes/s
  double seederDown = 1024e3;
  std::vector<PeerClass> classes = {PeerClass{}};
  double latencyMin = 0.010;  // one-way seconds per peer, uniform in [min, max]
  double latencyMax = 0.040;
  double loss = 0.0;          // per message
  double joinSpread = 1.0;    // leechers join uniformly over [0, joinSpread] s
  // The product's discovery rules (announce interval, offers per announce,
  // peer slots, offer lifetime, glare, half-open links).
  swarm::DiscoveryOptions discovery;
  std::size_t highWatermark = 256 * 1024;
  std::size_t lowWatermark = 64 * 1024;
  swarm::SessionOptions session;        // for every peer (rates, slots, ...)
  std::optional<swarm::SessionOptions> seederSession;  // the seeder's, if different
  std::size_t corruptPeers = 0;         // leechers that corrupt every chunk they serve
  double seederLeavesAt = -1;           // seconds; < 0: stays
  // The seeder leaves as soon as every chunk is held whole by some leecher.
  bool seederLeavesWhenOut = false;
  double timeLimit = 3600;              // virtual seconds
  swarm::Time storeDelay{};             // every store read and write completes this much later
};

struct PeerResult {
  bool seeder = false;
  bool corrupt = false;
  double up = 0, down = 0;
  double joined = 0;
  std::optional<double> completed;      // virtual seconds
  std::uint64_t uploaded = 0, downloaded = 0;
  swarm::SessionStats stats;
};

struct SimResult {
  std::vector<PeerResult> peers;         // [0] is the seeder
  double fileBytes = 0;
  double lastCompletion = 0;             // of the honest leechers; timeLimit if one did not finish
  bool allCompleted = false;
  double fluidBound = 0;                 // T* = max(F/u_s, F/d_min, N F / (u_s + sum u_i))
  double seederCopies = 0;               // seeder upload / F
  double ratio = 0;                      // lastCompletion / fluidBound
  std::optional<double> seederLeft;      // virtual seconds
  std::uint64_t events = 0;
  std::uint64_t messages = 0;
  std::uint64_t badChunks = 0, bans = 0, timeouts = 0;
  std::uint64_t wastedBytes = 0;
  double wallSeconds = 0;
};

SimResult runSimulation(const SimConfig& config);

// One line per figure, for logs and the benchmark.
std::string summarize(const SimConfig& config, const SimResult& result);

}  // namespace p2pcdn::sim
