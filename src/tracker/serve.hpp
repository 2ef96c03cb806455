// The tracker as a foreground program: listens on HOST:PORT (PORT 0: any free
// port), prints "p2pcdn tracker listening on ws://HOST:PORT", serves until
// SIGINT or SIGTERM, then stops cleanly. Returns the process exit code
// (0 ok, 2 bad --listen, 5 cannot bind).
#pragma once

#include <string>

#include "tracker/tracker_server.hpp"

namespace CLI {
class App;
}

namespace p2pcdn::tracker {

struct ServeArgs {
  std::string listen = "0.0.0.0:8000";
  double interval = 30;  // seconds
  TrackerOptions options;
};

// Registers --listen, --interval, --max-connections, ... on a CLI11 (sub)command.
void addServeOptions(CLI::App& app, ServeArgs& args);
int serveUntilSignal(const ServeArgs& args);

}  // namespace p2pcdn::tracker
