// RedisClient: one connection to a Redis server on an Asio io_context, for the
// tracker fleet's shared swarm state (issue "A tracker fleet on Redis").
//
// hiredis (Debian libhiredis-dev) parses and formats the protocol; this class
// is its event-loop adapter (the socket is watched with an Asio descriptor, as
// hiredis' own libuv/libevent adapters do) plus what hiredis 0.14's async API
// lacks: a deadline on every command, a bounded queue, reconnection with
// back-off, and re-subscription.
//
// Threads: every method, and every callback, on the io_context's thread.
//
// Commands: command(argv, done) calls `done` exactly once, posted (also after
// the client is destroyed: kCancelled): with the reply, or with an error (not
// connected, queue full, the server's error reply, connection lost). A
// command waits at most about 1.25 x commandTimeout: the oldest one past it
// drops the connection (replies still owed would be misattributed), which
// fails every command then waiting, and the client reconnects. A connection
// counts as up after one round trip (SELECT, or PING), within connectTimeout.
//
// Subscriber mode: a client given channels in Options::subscribe sends only
// SUBSCRIBE (again after each reconnect) and hands every message to onMessage.
// Redis needs a connection of its own for that, so a tracker uses two clients.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "p2pcdn/result.hpp"

namespace p2pcdn::tracker {

struct RedisReply {
  enum class Type { kString, kStatus, kInteger, kNil, kArray };
  Type type = Type::kNil;
  std::string str;        // kString, kStatus
  long long integer = 0;  // kInteger
  std::vector<RedisReply> elements;  // kArray
};

struct RedisOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  int db = 0;  // SELECT after each connect (not in subscriber mode)
  std::chrono::milliseconds connectTimeout{2000};
  std::chrono::milliseconds commandTimeout{2000};
  std::chrono::milliseconds reconnectMin{100};
  std::chrono::milliseconds reconnectMax{5000};
  std::size_t maxPending = 10000;  // commands sent and not yet answered
  std::vector<std::string> subscribe;  // non-empty: subscriber mode
};

// Parses redis://HOST[:PORT][/DB] (the tracker's --redis).
Result<RedisOptions> parseRedisUrl(const std::string& url);

struct RedisStats {
  std::uint64_t connects = 0, disconnects = 0;
  std::uint64_t commands = 0, errors = 0, timeouts = 0;
  std::uint64_t messages = 0;  // subscriber mode
  double rttSecondsSum = 0;    // over commands answered (not errors)
  std::uint64_t rttCount = 0;
  double rttLastSeconds = 0;
};

class RedisClient {
 public:
  RedisClient(boost::asio::io_context& io, RedisOptions options);
  ~RedisClient();  // stop()
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Connects in the background and keeps reconnecting until stop().
  void start();
  // Disconnects; pending commands fail with kCancelled (posted).
  void stop();
  bool connected() const;

  void command(std::vector<std::string> argv, std::function<void(Result<RedisReply>)> done);

  // After each successful (re)connect (and SELECT / SUBSCRIBE): re-publish state.
  std::function<void()> onConnected;
  std::function<void(const Error&)> onDisconnected;
  // Subscriber mode: (channel, payload).
  std::function<void(const std::string&, const std::string&)> onMessage;

  RedisStats stats() const;

  struct State;

 private:
  std::shared_ptr<State> s_;
};

}  // namespace p2pcdn::tracker
