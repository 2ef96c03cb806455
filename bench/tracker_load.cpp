// Load generator for WebSocket trackers (ours, a fleet of ours, or
// bittorrent-tracker's server): bench/tracker_fleet.py drives it and records
// the figures in bench/RESULTS.md.
//
//   tracker_load conns  --url ws://H:P --pid PID --conns N [--sources K] [--swarms S] [--each E]
//       N WebSocket connections from 127.0.0.2..K+1 (bound before connect, so
//       the ephemeral ports of each source address are separate); each
//       announces once and stays open: the tracker's RSS delta / N is its
//       memory per idle connection. Then every connection pipelines E more
//       announces (no offers): announces per second, and per CPU-second of the
//       tracker (its /proc/PID/stat).
//   tracker_load relay  --url ws://A --to ws://B [--rounds R]
//       One peer on B, one on A in the same fresh swarm; A's announce carries
//       one offer: the time until B's peer holds it (A == B: one instance).
//
// Prints one JSON object. Bounded: every phase has a deadline (--timeout).
#include <utility>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "signaling/signaling.hpp"
#include "support/proc_stats.hpp"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;
using namespace p2pcdn::signaling;

struct Url {
  std::string host;
  std::uint16_t port = 0;
};

Url parseUrl(const std::string& u) {
  std::string rest = u.substr(u.find("//") + 2);
  rest = rest.substr(0, rest.find('/'));
  const auto colon = rest.rfind(':');
  return {rest.substr(0, colon), static_cast<std::uint16_t>(std::stoul(rest.substr(colon + 1)))};
}

using p2pcdn::testing::cpuSeconds;
using p2pcdn::testing::rssKiB;

Id20 randomId(std::mt19937_64& rng) {
  Id20 id{};
  for (auto& b : id) b = static_cast<std::uint8_t>(rng());
  return id;
}

std::string announce(const InfoHash& ih, const PeerId& peer, Event e, std::vector<OfferEntry> offers = {}) {
  AnnounceRequest a;
  a.infoHash = ih;
  a.peerId = peer;
  a.event = e;
  a.left = 1000;
  a.uploaded = 0;
  a.downloaded = 0;
  a.numwant = static_cast<std::uint32_t>(offers.size());
  a.offers = std::move(offers);
  return encodeClientMessage(a);
}

// One client connection; a read is always pending (answers pings too).
struct Conn {
  explicit Conn(net::io_context& io) : ws(io) {}
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer buffer;
  std::deque<std::string> queue;
  bool writing = false, open = false, failed = false;
  std::size_t replies = 0;
  std::function<void(const TrackerMessage&)> onMessage;

  void send(std::string text) {
    queue.push_back(std::move(text));
    if (!writing) writeNext();
  }
  void writeNext() {
    writing = true;
    ws.async_write(net::buffer(queue.front()), [this](error_code ec, std::size_t) {
      queue.pop_front();
      writing = false;
      if (ec) failed = true;
      else if (!queue.empty()) writeNext();
    });
  }
  void readLoop() {
    ws.async_read(buffer, [this](error_code ec, std::size_t) {
      if (ec) {
        open = false;
        return;
      }
      auto m = decodeTrackerMessage(beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
      if (m && std::holds_alternative<AnnounceResponse>(*m)) ++replies;
      if (m && onMessage) onMessage(*m);
      readLoop();
    });
  }
  void connect(const tcp::endpoint& to, const net::ip::address& from, std::function<void()> ready) {
    auto& sock = beast::get_lowest_layer(ws).socket();
    error_code ec;
    sock.open(tcp::v4(), ec);
    if (!ec) {
      const int one = 1;
      ::setsockopt(sock.native_handle(), IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */, &one, sizeof one);
      sock.bind(tcp::endpoint(from, 0), ec);
    }
    if (ec) {
      failed = true;
      return;
    }
    beast::get_lowest_layer(ws).async_connect(to, [this, ready = std::move(ready)](error_code e) mutable {
      if (e) {
        failed = true;
        return;
      }
      ws.async_handshake("127.0.0.1", "/", [this, ready = std::move(ready)](error_code e2) {
        if (e2) {
          failed = true;
          return;
        }
        open = true;
        ws.text(true);
        readLoop();
        ready();
      });
    });
  }
};

bool runUntil(net::io_context& io, const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    io.restart();  // run_for() leaves the context stopped whenever it ran out of work
    io.run_for(std::chrono::milliseconds(20));
  }
  return true;
}

int conns(const Url& url, int pid, std::size_t n, std::size_t sources, std::size_t swarms, std::size_t each,
          std::chrono::seconds timeout) {
  net::io_context io;
  std::mt19937_64 rng(1);
  std::vector<InfoHash> swarmIds;
  for (std::size_t i = 0; i < swarms; ++i) swarmIds.push_back(randomId(rng));
  const tcp::endpoint to(net::ip::make_address(url.host), url.port);
  std::vector<std::unique_ptr<Conn>> all;
  std::vector<PeerId> peers;
  const long rss0 = rssKiB(pid);
  const auto t0 = Clock::now();
  std::size_t started = 0, announced = 0;
  auto replies = [&] {
    std::size_t r = 0;
    for (auto& c : all) r += c->replies;
    return r;
  };
  // At most 1000 handshakes in flight (the listen backlog is bounded).
  auto fill = [&] {
    while (started < n && started - std::min(started, announced) < 1000) {
      auto c = std::make_unique<Conn>(io);
      const auto from = net::ip::make_address_v4(0x7f000002u + static_cast<std::uint32_t>(started % sources));
      const PeerId peer = randomId(rng);
      const InfoHash ih = swarmIds[started % swarms];
      Conn* raw = c.get();
      raw->connect(to, from, [raw, ih, peer] { raw->send(announce(ih, peer, Event::kStarted)); });
      all.push_back(std::move(c));
      peers.push_back(peer);
      ++started;
    }
  };
  bool ok = runUntil(io, [&] {
    announced = replies();
    std::size_t failed = 0;
    for (auto& c : all) failed += c->failed ? 1u : 0u;
    fill();
    return announced + failed >= n && started == n;
  }, timeout);
  const double connectSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::size_t open = 0, failed = 0;
  for (auto& c : all) {
    open += c->open ? 1u : 0u;
    failed += c->failed ? 1u : 0u;
  }
  io.run_for(std::chrono::milliseconds(1000));  // let the tracker settle before its RSS is read
  const long rss1 = rssKiB(pid);

  // Pipelined announces.
  for (auto& c : all) c->replies = 0;
  const double cpu0 = cpuSeconds(pid);
  const auto t1 = Clock::now();
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!all[i]->open) continue;
    for (std::size_t k = 0; k < each; ++k) all[i]->send(announce(swarmIds[i % swarms], peers[i], Event::kNone));
  }
  const std::size_t want = open * each;
  const bool ok2 = runUntil(io, [&] { return replies() >= want; }, timeout);
  const double announceSeconds = std::chrono::duration<double>(Clock::now() - t1).count();
  const double cpu = cpuSeconds(pid) - cpu0;
  const std::size_t got = replies();
  nlohmann::json j{{"connections", n},
                   {"open", open},
                   {"failed", failed},
                   {"connectSeconds", connectSeconds},
                   {"rssBeforeKiB", rss0},
                   {"rssAfterKiB", rss1},
                   {"bytesPerConnection", 1024.0 * static_cast<double>(rss1 - rss0) / static_cast<double>(std::max<std::size_t>(open, 1))},
                   {"announces", got},
                   {"announceSeconds", announceSeconds},
                   {"announcesPerSecond", static_cast<double>(got) / announceSeconds},
                   {"trackerCpuSeconds", cpu},
                   {"announcesPerCpuSecond", cpu > 0 ? static_cast<double>(got) / cpu : 0.0},
                   {"complete", ok && ok2}};
  std::printf("%s\n", j.dump().c_str());
  return ok && ok2 ? 0 : 1;
}

int relay(const Url& a, const Url& b, std::size_t rounds, std::chrono::seconds timeout) {
  net::io_context io;
  std::mt19937_64 rng(std::random_device{}());
  std::vector<double> ms;
  std::vector<std::unique_ptr<Conn>> keep;  // closed, not destroyed: their handlers may still be queued
  for (std::size_t r = 0; r < rounds; ++r) {
    keep.push_back(std::make_unique<Conn>(io));
    Conn& ca = *keep.back();
    keep.push_back(std::make_unique<Conn>(io));
    Conn& cb = *keep.back();
    const InfoHash ih = randomId(rng);
    const PeerId pa = randomId(rng), pb = randomId(rng);
    bool readyA = false, readyB = false, got = false;
    Clock::time_point sent;
    double took = -1;
    cb.onMessage = [&got, &took, &sent](const TrackerMessage& m) {
      if (std::holds_alternative<RelayedOffer>(m) && !got) {
        got = true;
        took = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
      }
    };
    const auto lo = net::ip::make_address("127.0.0.1");
    ca.connect(tcp::endpoint(net::ip::make_address(a.host), a.port), lo, [&readyA] { readyA = true; });
    cb.connect(tcp::endpoint(net::ip::make_address(b.host), b.port), lo, [&cb, &readyB, ih, pb] {
      cb.send(announce(ih, pb, Event::kStarted));
      readyB = true;
    });
    if (!runUntil(io, [&] { return (readyA && readyB && cb.replies > 0) || ca.failed || cb.failed; }, timeout) ||
        ca.failed || cb.failed) {
      std::fprintf(stderr, "tracker_load: round %zu: no connection (A %d/%d, B %d/%d)\n", r, readyA, ca.failed, readyB, cb.failed);
      break;
    }
    sent = Clock::now();
    ca.send(announce(ih, pa, Event::kStarted, {OfferEntry{randomId(rng), {"offer", std::string(1200, 's')}}}));
    if (!runUntil(io, [&] { return got; }, timeout)) {
      std::fprintf(stderr, "tracker_load: round %zu: the offer did not arrive\n", r);
      break;
    }
    ms.push_back(took);
    cb.onMessage = nullptr;
    error_code ec;
    beast::get_lowest_layer(ca.ws).socket().close(ec);
    beast::get_lowest_layer(cb.ws).socket().close(ec);
    io.restart();
    io.run_for(std::chrono::milliseconds(2));
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms.empty() ? -1.0 : ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * static_cast<double>(ms.size())))]; };
  nlohmann::json j{{"rounds", ms.size()}, {"p50ms", pct(0.5)}, {"p99ms", pct(0.99)}, {"maxms", ms.empty() ? -1.0 : ms.back()}};
  std::printf("%s\n", j.dump().c_str());
  return ms.size() == rounds ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto opt = [&](const std::string& name, const std::string& def) {
    for (std::size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == name) return args[i + 1];
    }
    return def;
  };
  if (args.empty()) {
    std::fprintf(stderr, "usage: tracker_load conns|relay --url ws://H:P ...\n");
    return 2;
  }
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  const auto timeout = std::chrono::seconds(std::stoul(opt("--timeout", "120")));
  const Url url = parseUrl(opt("--url", "ws://127.0.0.1:8000"));
  if (args[0] == "conns") {
    return conns(url, std::stoi(opt("--pid", "0")), std::stoul(opt("--conns", "1000")),
                 std::stoul(opt("--sources", "8")), std::stoul(opt("--swarms", "100")), std::stoul(opt("--each", "10")),
                 timeout);
  }
  if (args[0] == "relay") return relay(url, parseUrl(opt("--to", opt("--url", ""))), std::stoul(opt("--rounds", "200")), timeout);
  std::fprintf(stderr, "tracker_load: unknown mode %s\n", args[0].c_str());
  return 2;
}
