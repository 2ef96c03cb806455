// p2pcdn_tracker: runs the tracker/signaling server until SIGINT or SIGTERM.
//   p2pcdn_tracker --listen 0.0.0.0:8000 --interval 30
// Prints "p2pcdn tracker listening on ws://HOST:PORT" once it accepts
// connections (the bound port when PORT is 0). To become `p2pcdn tracker`.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <string>

#include "tracker/serve.hpp"

int main(int argc, char** argv) {
  CLI::App app{"p2pcdn tracker: WebTorrent-compatible WebSocket tracker and WebRTC signaling server"};
  p2pcdn::tracker::ServeArgs args;
  p2pcdn::tracker::addServeOptions(app, args);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return p2pcdn::tracker::serveUntilSignal(args);
}
