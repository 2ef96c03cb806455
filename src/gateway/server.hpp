// The HTTP gateway: files of the swarm over plain HTTP/1.1 (Boost.Beast), so
// browsers, players (ffplay, mpv, VLC) and tools (curl, ffprobe) can read them
// while they download.
//
//   GET|HEAD /f/<id>[/<name>][?k=<key>]  the file's plaintext: Content-Type,
//        Content-Length, ETag, Accept-Ranges; one Range -> 206 (several: 200,
//        see http.hpp), If-None-Match -> 304, If-Range. Bytes not downloaded yet
//        are answered as their chunks arrive (the fetch starts, or is joined;
//        the node's streaming window moves to the first chunk the request needs).
//   GET /            the web app (appDir), else the file table
//   GET /files       stored files with progress, a player for audio/video
//   GET /api/files   the same as JSON
//   GET /api/config  appConfig (JSON: what the web app needs, e.g. the tracker)
//   GET /<path>      the web app's files (appDir/<path>; "/" is app/index.html)
//   GET /metrics     Prometheus text
//
// Threads: everything runs on the io_context given to the constructor, which
// must be the one the Node runs on (the gateway calls the Node directly; the
// store only on the `reads` queue, below). Call every method on that thread
// (or before it runs); stop() joins the reads queue.
//
// The gateway fetches the files it serves through the Node and listens to
// them (one Node listener per file being fetched); others may fetch and
// listen to the same files. Which chunks are held it asks the node
// (Node::have, Node::progress).
//
// Streaming window policy. The node has one streaming window per file. The
// window belongs to the most recent request that needed a missing chunk (a
// seek moves it); as that response advances, the window follows it. Other
// responses of the same file wait for their chunks, which keep arriving in
// whole-file order after the window's. When the owner ends, the most recent
// other waiting response takes the window; with none, streaming is switched
// off (rarest first over the whole file).
//
// Every store access runs on the `reads` queue when given (chunk reads with
// BLAKE3 verification and decryption, a file's manifest and completeness on
// first use, the stored-files listing), so a response never holds the node's
// loop for the store; the results are posted back to the loop.
//
// Bounds: per connection one chunk in memory (written with back-pressure,
// chunk by chunk); request headers (maxHeaderBytes, else 431); no request
// bodies (413); connections (maxConnections; more are closed at once);
// time-outs for a request that does not arrive (408 or close), a client that
// stops reading (close), a file whose manifest no peer gives (404), a chunk
// that does not come (504 before the headers, else close).
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "node/node.hpp"
#include "node/runtime.hpp"
#include "p2pcdn/chunk_storage.hpp"
#include "p2pcdn/result.hpp"

namespace p2pcdn::gateway {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port (see Gateway::port())
  std::size_t maxConnections = 256;
  std::size_t maxHeaderBytes = 16 * 1024;
  std::chrono::milliseconds requestTimeout{10'000};   // a request's header, once its first byte came
  std::chrono::milliseconds idleTimeout{30'000};      // a kept-alive connection with no request
  std::chrono::milliseconds writeTimeout{30'000};     // a client that reads nothing for this long is dropped
  std::chrono::milliseconds manifestTimeout{20'000};  // an id no peer gives a manifest for: 404
  std::chrono::milliseconds chunkTimeout{60'000};     // a response waiting this long for one chunk: 504 / close
  std::size_t maxManifestLookups = 32;                // ids being looked up at once (beyond: 503)
  // The web app: a folder laid out as the browser package (build/wasm/web:
  // dist/, app/); "" serves none. appConfig is /api/config's body.
  std::string appDir;
  std::string appConfig = "{}";
  // Who may ask (http.hpp, RequestPolicy): names besides 127.0.0.1, localhost
  // and [::1] (the listen host is added when it is a name or address of its
  // own), and origins whose pages may read responses ("*": any). A request
  // with another Host gets 421, a cross-origin one from another origin 403.
  std::vector<std::string> allowedHosts;
  std::vector<std::string> corsOrigins;
  // The key of an encrypted file when the URL has no ?k= (e.g. the CLI's keys/ folder).
  std::function<std::optional<EncryptionKey>(const FileId&)> keyFor;
  // With a token (http.hpp, tokenPresented), a request without it is served
  // only what the store holds, with the URL's own ?k= key: it gets 401
  // instead of making the node fetch an id it does not hold, and keyFor is
  // not used for it. Empty: no token.
  std::string accessToken;
};

struct GatewayStats {
  std::uint64_t connectionsAccepted = 0;
  std::uint64_t connectionsRejected = 0;  // over maxConnections
  std::uint64_t connectionsOpen = 0;
  std::uint64_t requests = 0;
  std::uint64_t bytesSent = 0;            // response body bytes
  std::uint64_t responsesWaiting = 0;     // now: waiting for a manifest or a chunk
  std::uint64_t windowMoves = 0;          // the streaming window moved for a request
  std::uint64_t firstByteCount = 0;       // file responses that sent their first body byte
  double firstByteSecondsSum = 0;         // ... and their time from request to first byte
};

class Gateway {
 public:
  // `reads` (e.g. Runtime::storeQueue()): where chunks are read, verified and
  // decrypted for responses, off the loop; none: on the loop.
  Gateway(boost::asio::io_context& io, node::Node& node, ChunkStorage& storage, GatewayOptions options,
          std::unique_ptr<node::TaskQueue> reads = nullptr);
  ~Gateway();  // stop()
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Binds and starts accepting. With port 0, port() then tells the port.
  Status start();
  // Closes the listener and every connection (waiting responses end).
  void stop();
  std::uint16_t port() const;
  GatewayStats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace p2pcdn::gateway
