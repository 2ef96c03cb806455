// The node's connection to its tracker (internal): WebTorrent's WebSocket
// tracker protocol (docs/signaling.md) over one TrackerConnection of the
// Runtime, messages encoded and decoded (with their bounds) by signaling/.
// What to announce and offer, and what an offer or answer means, is the
// node's (tracker_client.cpp) and its files' swarm::Discovery's. Loop only.
#pragma once

#include <functional>
#include <memory>

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

  TrackerClient(Runtime& rt, std::string_view url, Events events);
  Status valid() const { return conn_ ? Status{} : fail(conn_.error()); }
  void start() { (*conn_)->start(); }
  void stop() { (*conn_)->stop(); }
  bool connected() const { return (*conn_)->connected(); }
  // Dropped when not connected.
  void send(const signaling::AnnounceRequest& msg) { (*conn_)->send(signaling::encodeClientMessage(msg)); }

 private:
  static TrackerConnection::Events connEvents(Events events);
  Result<std::unique_ptr<TrackerConnection>> conn_;
};

}  // namespace p2pcdn::node
