// The node's connection to its tracker (internal): WebTorrent's WebSocket
// tracker protocol (docs/signaling.md) over one WsClient, messages encoded and
// decoded (with their bounds) by signaling/. What to announce and offer, and
// what an offer or answer means, is the node's (tracker_client.cpp) and its
// files' swarm::Discovery's. Loop thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>

#include "node/ws_client.hpp"
#include "signaling/signaling.hpp"

namespace p2pcdn::node {

class TrackerClient {
 public:
  struct Events {
    std::function<void()> onConnected;  // also after every reconnection
    // Untrusted: decoded by signaling/; undecodable messages are dropped.
    std::function<void(const signaling::TrackerMessage&)> onMessage;
  };

  TrackerClient(boost::asio::io_context& io, WsUrl url, Events events);
  void start() { ws_.start(); }
  void stop() { ws_.stop(); }
  bool connected() const { return ws_.connected(); }
  // Dropped when not connected.
  void send(const signaling::AnnounceRequest& msg) { ws_.send(signaling::encodeClientMessage(msg)); }

 private:
  static WsClient::Events wsEvents(Events events);
  WsClient ws_;
};

}  // namespace p2pcdn::node
