// Runs the tracker in the foreground until SIGINT/SIGTERM (p2pcdn_tracker and
// `p2pcdn tracker`).
#include "tracker/serve.hpp"

#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <string>

#include "tracker/redis_client.hpp"
#include "tracker/tracker_server.hpp"

namespace p2pcdn::tracker {
namespace {

// "HOST:PORT", "[V6]:PORT" or ":PORT".
bool splitHostPort(const std::string& s, std::string& host, std::uint16_t& port) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  const std::string p = s.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  const unsigned long v = std::stoul(p);
  if (v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return true;
}

}  // namespace


void addServeOptions(CLI::App& app, ServeArgs& a) {
  app.add_option("--listen", a.listen, "HOST:PORT to listen on (PORT 0: any free port)")->capture_default_str();
  app.add_option("--interval", a.interval, "announce interval in seconds told to clients; peers expire after twice that")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  app.add_option("--max-connections", a.options.maxConnections, "TCP connections at once")->capture_default_str();
  app.add_option("--max-connections-per-ip", a.options.maxConnectionsPerSource,
                 "TCP connections from one IPv4 address or IPv6 /64 (0: no limit, e.g. behind a load balancer)")
      ->capture_default_str();
  app.add_option("--max-swarms-per-connection", a.options.maxSwarmsPerConnection,
                 "peers one connection may hold (one per swarm)")
      ->capture_default_str();
  app.add_option("--rate-limit", a.options.rateLimit, "messages per second per connection (0: unlimited)")
      ->capture_default_str();
  app.add_option("--rate-burst", a.options.rateBurst, "messages a connection may send at once")->capture_default_str();
  app.add_option("--redis", a.options.redisUrl,
                 "redis://HOST[:PORT][/DB]: share swarms with the other tracker instances on that Redis (a fleet)");
  app.add_option("--tls-cert", a.options.tlsCert, "PEM certificate chain: serve wss:// (and https /stats) instead of ws://")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", a.options.tlsKey, "PEM private key of --tls-cert")->check(CLI::ExistingFile);
}

int serveUntilSignal(const ServeArgs& args) {
  const std::string& listen = args.listen;
  const double interval = args.interval;
  TrackerOptions options = args.options;
  std::string host;
  std::uint16_t port = 0;
  if (!splitHostPort(listen, host, port)) {
    std::fprintf(stderr, "p2pcdn tracker: --listen wants HOST:PORT, got \"%s\"\n", listen.c_str());
    return 2;
  }
  options.interval = std::chrono::milliseconds(static_cast<long long>(interval * 1000));
  if (!options.redisUrl.empty()) {
    if (auto r = parseRedisUrl(options.redisUrl); !r) {
      std::fprintf(stderr, "p2pcdn tracker: %s\n", r.error().message().c_str());
      return 2;
    }
  }

  // Wait for the signals in this thread; the server has its own.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  TrackerServer server(options);
  if (auto s = server.start(host, port); !s) {
    std::fprintf(stderr, "p2pcdn tracker: %s\n", s.error().message().c_str());
    return 5;
  }
  const bool v6 = host.find(':') != std::string::npos;
  if (!options.redisUrl.empty()) std::fprintf(stderr, "p2pcdn tracker: swarms shared in %s\n", options.redisUrl.c_str());
  std::printf("p2pcdn tracker listening on ws://%s%s%s:%u\n", v6 ? "[" : "", host.c_str(), v6 ? "]" : "",
              static_cast<unsigned>(server.port()));
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "p2pcdn tracker: signal %d, stopping\n", sig);
  server.stop();
  const auto st = server.stats();
  std::fprintf(stderr, "p2pcdn tracker: served %llu messages in, %llu out, %llu offers and %llu answers relayed\n",
               static_cast<unsigned long long>(st.messagesIn), static_cast<unsigned long long>(st.messagesOut),
               static_cast<unsigned long long>(st.offersRelayed), static_cast<unsigned long long>(st.answersRelayed));
  return 0;
}

}  // namespace p2pcdn::tracker
