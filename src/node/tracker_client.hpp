// The node's connection to its tracker (internal): WebTorrent's WebSocket
// tracker protocol (docs/signaling.md) over one TrackerConnection of the
// Runtime, messages encoded and decoded (with their bounds) by signaling/.
// What to announce and offer, and what an offer or answer means, is the
// node's (tracker_client.cpp) and its files' swarm::Discovery's. Loop only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "node/runtime.hpp"
#include "signaling/signaling.hpp"

namespace p2pcdn::node {

class TrackerClient {
 public:
  struct Events {
    std::function<void()> onConnected;  // also after every reconnection
    // Untrusted: decoded by signaling/; undecodable messages are dropped.
    std::function<void(const signaling::TrackerMessage&)> onMessage;
  };

  // One connection at a time, to urls[0] first; tick() moves to the next url
  // (round the list) once the one in use has been down for `failover`.
  TrackerClient(Runtime& rt, const std::vector<std::string>& urls, swarm::Time failover, Events events);
  Status valid() const { return status_; }
  void start();
  void stop();
  bool connected() const { return started_ && conns_[current_]->connected(); }
  // Dropped when not connected.
  void send(const signaling::AnnounceRequest& msg) {
    if (started_) conns_[current_]->send(signaling::encodeClientMessage(msg));
  }
  void tick(swarm::Time now);

 private:
  static TrackerConnection::Events connEvents(Events events);
  Status status_;
  std::vector<std::unique_ptr<TrackerConnection>> conns_;
  std::size_t current_ = 0;
  swarm::Time failover_{};
  swarm::Time lastUp_{};
  bool started_ = false;
  bool ticked_ = false;
  std::size_t failedRounds_ = 0;
  bool stopped_ = false;
};

}  // namespace p2pcdn::node
