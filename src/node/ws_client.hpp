// A WebSocket client for the tracker: one connection, text messages, and
// reconnection with exponential back-off (1 s doubling to 30 s, ±20 % jitter)
// whenever the tracker goes away. ws:// and wss:// (TLS through OpenSSL: the
// server's certificate is checked against the system's CAs, or a given CA
// file, and the URL's host name).
//
// Threads: lives on one io_context; every method must be called, and every
// callback runs, on that io_context's thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "p2pcdn/result.hpp"

namespace p2pcdn::node {

struct WsUrl {
  std::string host;
  std::string port;
  std::string target;  // path + query, at least "/"
  bool tls = false;    // wss://
};
Result<WsUrl> parseWsUrl(std::string_view url);

class WsClient {
 public:
  struct Events {
    std::function<void()> onConnected;
    std::function<void(std::string text)> onMessage;
    std::function<void(const Error& why, std::chrono::milliseconds retryIn)> onDisconnected;
  };

  // caFile: PEM CA certificates to trust for wss:// instead of the system's
  // (a private CA); empty: the system's.
  WsClient(boost::asio::io_context& io, WsUrl url, Events events, std::string caFile = {});
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  void start();
  void stop();
  bool connected() const;
  // Queues a text message; dropped (false) when not connected.
  bool send(std::string text);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace p2pcdn::node
