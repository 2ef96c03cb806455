// The tracker server over real sockets on 127.0.0.1 (src/tracker/), driven by
// a Boost.Beast WebSocket client: offer/answer relay, stopped, expiry,
// /stats and /metrics, malformed and oversized input, flooding, connection
// limits, graceful stop, and a load test against the p2pcdn_tracker process
// (2000 concurrent connections, its memory, announces per second).
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "signaling/signaling.hpp"
#include "support/proc_stats.hpp"
#include "tracker/tracker_server.hpp"

extern char** environ;

namespace p2pcdn::tracker {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using namespace std::chrono_literals;
using namespace signaling;
using SteadyClock = std::chrono::steady_clock;

// Under AddressSanitizer the load test runs lighter and only reports its numbers.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

Id20 id(std::uint8_t a, std::uint8_t b = 0) {
  Id20 v{};
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>(a + 31 * i);
  v[1] = b;
  return v;
}

std::string announceText(const InfoHash& ih, const PeerId& peer, Event e = Event::kNone,
                         std::vector<OfferEntry> offers = {}, std::optional<std::uint32_t> numwant = std::nullopt) {
  AnnounceRequest a;
  a.infoHash = ih;
  a.peerId = peer;
  a.event = e;
  a.left = 1000;
  a.uploaded = 0;
  a.downloaded = 0;
  a.numwant = numwant ? numwant : std::optional<std::uint32_t>(static_cast<std::uint32_t>(offers.size()));
  a.offers = std::move(offers);
  return encodeClientMessage(a);
}

// One WebSocket client with its own io_context; every call runs the context
// until its result is in or a deadline passes. A read is always pending, so
// messages (and the close) are collected while sending too.
class Client {
 public:
  Client() : ws_(ioc_) {}
  ~Client() {
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  bool connect(std::uint16_t port, std::chrono::milliseconds timeout = 5s) {
    auto& layer = beast::get_lowest_layer(ws_);
    layer.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), [this](error_code ec) {
      if (ec) {
        connectEc_ = ec;
        connectDone_ = true;
        return;
      }
      ws_.async_handshake("127.0.0.1", "/announce", [this](error_code e) {
        connectEc_ = e;
        connectDone_ = true;
      });
    });
    runUntil([this] { return connectDone_; }, timeout);
    if (!connectDone_ || connectEc_) return false;
    ws_.text(true);
    startRead();
    return true;
  }

  bool send(const std::string& text, bool binary = false) {
    if (closed_) return false;
    outgoing_ = text;
    writeDone_ = false;
    ws_.binary(binary);
    ws_.async_write(net::buffer(outgoing_), [this](error_code ec, std::size_t) {
      writeEc_ = ec;
      writeDone_ = true;
    });
    runUntil([this] { return writeDone_; }, 10s);
    ws_.text(true);
    return writeDone_ && !writeEc_;
  }

  std::optional<std::string> read(std::chrono::milliseconds timeout = 3s) {
    runUntil([this] { return !inbox_.empty() || closed_; }, timeout);
    if (inbox_.empty()) return std::nullopt;
    std::string s = std::move(inbox_.front());
    inbox_.pop_front();
    return s;
  }

  std::optional<TrackerMessage> readMessage(std::chrono::milliseconds timeout = 3s) {
    auto text = read(timeout);
    if (!text) return std::nullopt;
    auto m = decodeTrackerMessage(*text);
    EXPECT_TRUE(m.has_value()) << *text;
    if (!m) return std::nullopt;
    return *m;
  }

  template <class T>
  T expect(std::chrono::milliseconds timeout = 3s) {
    auto m = readMessage(timeout);
    EXPECT_TRUE(m.has_value()) << "nothing arrived";
    if (!m) return T{};
    EXPECT_TRUE(std::holds_alternative<T>(*m)) << encodeTrackerMessage(*m);
    return std::holds_alternative<T>(*m) ? std::get<T>(*m) : T{};
  }

  // Nothing arrives within `d`.
  bool quietFor(std::chrono::milliseconds d) {
    runUntil([this] { return !inbox_.empty(); }, d);
    return inbox_.empty();
  }

  bool waitClosed(std::chrono::milliseconds timeout = 5s) {
    runUntil([this] { return closed_; }, timeout);
    return closed_;
  }

  void close() {
    bool done = false;
    ws_.async_close(websocket::close_code::normal, [&done](error_code) { done = true; });
    runUntil([&] { return done && closed_; }, 3s);
  }

  bool closed() const { return closed_; }
  std::uint16_t closeCode() const { return closeCode_; }
  std::size_t pending() const { return inbox_.size(); }

 private:
  void startRead() {
    ws_.async_read(buffer_, [this](error_code ec, std::size_t) {
      if (ec) {
        closed_ = true;
        closeCode_ = ws_.reason().code;
        return;
      }
      inbox_.push_back(beast::buffers_to_string(buffer_.data()));
      buffer_.consume(buffer_.size());
      startRead();
    });
  }

  void runUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    ioc_.restart();
    while (!done() && SteadyClock::now() < deadline) {
      if (ioc_.run_one_until(deadline) == 0 && ioc_.stopped()) break;
    }
  }

  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::string> inbox_;
  std::string outgoing_;
  bool connectDone_ = false, writeDone_ = false, closed_ = false;
  error_code connectEc_, writeEc_;
  std::uint16_t closeCode_ = 0;
};

struct HttpReply {
  unsigned status = 0;
  std::string contentType;
  std::string body;
};

HttpReply httpGet(std::uint16_t port, const std::string& target) {
  net::io_context ioc;
  beast::tcp_stream s(ioc);
  s.expires_after(5s);
  error_code ec;
  s.socket().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return {};
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  http::write(s, req, ec);
  beast::flat_buffer b;
  http::response<http::string_body> res;
  http::read(s, b, res, ec);
  if (ec) return {};
  return {res.result_int(), std::string(res[http::field::content_type]), res.body()};
}

nlohmann::json httpStats(std::uint16_t port) {
  auto r = httpGet(port, "/stats");
  EXPECT_EQ(r.status, 200u);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.body;
  return j;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

class TrackerTest : public ::testing::Test {
 protected:
  void SetUp() override { startServer({}); }
  void startServer(TrackerOptions o) {
    server = std::make_unique<TrackerServer>(o);
    auto s = server->start("127.0.0.1", 0);
    ASSERT_TRUE(s.has_value()) << s.error().message();
    port = server->port();
    ASSERT_NE(port, 0);
  }
  std::unique_ptr<TrackerServer> server;
  std::uint16_t port = 0;
};

TEST_F(TrackerTest, RelaysAnOfferAndItsAnswer) {
  const InfoHash swarm = swarmKey(FileId{});
  const PeerId peerA = id(0x41), peerB = id(0x42);
  const OfferId offerId = id(0x80, 7);
  Client a, b;
  ASSERT_TRUE(a.connect(port));
  ASSERT_TRUE(b.connect(port));

  ASSERT_TRUE(a.send(announceText(swarm, peerA, Event::kStarted)));
  auto r = a.expect<AnnounceResponse>();
  EXPECT_EQ(r.infoHash, swarm);
  EXPECT_EQ(r.interval, 30u);
  EXPECT_EQ(r.incomplete, 1u);

  const SessionDescription offer{"offer", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"};
  ASSERT_TRUE(b.send(announceText(swarm, peerB, Event::kStarted, {{offerId, offer}})));
  r = b.expect<AnnounceResponse>();
  EXPECT_EQ(r.incomplete, 2u);

  const auto relayed = a.expect<RelayedOffer>();
  EXPECT_EQ(relayed.infoHash, swarm);
  EXPECT_EQ(relayed.peerId, peerB);
  EXPECT_EQ(relayed.offerId, offerId);
  EXPECT_EQ(relayed.offer, offer);

  AnnounceRequest answer;
  answer.infoHash = swarm;
  answer.peerId = peerA;
  answer.answer = AnswerEntry{peerB, offerId, {"answer", "v=0\r\nanswer\r\n"}};
  ASSERT_TRUE(a.send(encodeClientMessage(answer)));
  const auto answered = b.expect<RelayedAnswer>();
  EXPECT_EQ(answered.peerId, peerA);
  EXPECT_EQ(answered.offerId, offerId);
  EXPECT_EQ(answered.answer.sdp, "v=0\r\nanswer\r\n");
  EXPECT_TRUE(a.quietFor(200ms)) << "an answer gets no reply";

  auto st = httpStats(port);
  EXPECT_EQ(st["connections"], 2);
  EXPECT_EQ(st["swarms"], 1);
  EXPECT_EQ(st["peers"], 2);
  EXPECT_EQ(st["leechers"], 2);
  EXPECT_EQ(st["offersRelayed"], 1);
  EXPECT_EQ(st["answersRelayed"], 1);
  EXPECT_EQ(st["errors"], 0);
  EXPECT_GE(st["messagesIn"].get<int>(), 3);
  EXPECT_GE(st["messagesOut"].get<int>(), 4);

  // stopped: A leaves; the reply still counts B.
  ASSERT_TRUE(a.send(announceText(swarm, peerA, Event::kStopped)));
  r = a.expect<AnnounceResponse>();
  EXPECT_EQ(r.incomplete, 1u);
  st = httpStats(port);
  EXPECT_EQ(st["peers"], 1);

  const auto metrics = httpGet(port, "/metrics");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_NE(metrics.contentType.find("text/plain"), std::string::npos);
  EXPECT_NE(metrics.body.find("p2pcdn_tracker_peers 1\n"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("p2pcdn_tracker_offers_relayed_total 1\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("p2pcdn_tracker_answers_relayed_total 1\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("p2pcdn_tracker_connections 2\n"), std::string::npos);
  EXPECT_EQ(httpGet(port, "/nope").status, 404u);

  // Closing B's socket removes its peer.
  b.close();
  EXPECT_TRUE(eventually([&] { return server->stats().peers == 0 && server->stats().connections == 1; }));
  EXPECT_EQ(server->stats().swarms, 0u);
}

TEST_F(TrackerTest, HttpKeepAliveHeadAndMethods) {
  net::io_context ioc;
  beast::tcp_stream s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  beast::flat_buffer b;
  for (http::verb verb : {http::verb::get, http::verb::head, http::verb::get, http::verb::post}) {
    http::request<http::string_body> req{verb, "/stats?pretty=1", 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(true);
    req.prepare_payload();
    http::write(s, req);
    http::response_parser<http::string_body> parser;
    if (verb == http::verb::head) parser.skip(true);
    http::read(s, b, parser);
    const auto& res = parser.get();
    if (verb == http::verb::post) {
      EXPECT_EQ(res.result(), http::status::method_not_allowed);
    } else {
      EXPECT_EQ(res.result(), http::status::ok);
      EXPECT_EQ(res[http::field::content_type], "application/json");
      if (verb == http::verb::head) {
        EXPECT_TRUE(res.body().empty());
        EXPECT_NE(res[http::field::content_length], "0");
      } else {
        EXPECT_FALSE(nlohmann::json::parse(res.body(), nullptr, false).is_discarded());
      }
    }
  }
  EXPECT_EQ(server->stats().httpRequests, 4u);
  EXPECT_EQ(server->stats().connectionsAccepted, 1u);  // one keep-alive connection
  EXPECT_EQ(httpGet(port, "/").status, 200u);
}

TEST_F(TrackerTest, ScrapeCountsSeedersAndLeechers) {
  const InfoHash swarm = id(1);
  Client a, b, c;
  ASSERT_TRUE(a.connect(port) && b.connect(port) && c.connect(port));
  AnnounceRequest seed;
  seed.infoHash = swarm;
  seed.peerId = id(2);
  seed.left = 0;
  ASSERT_TRUE(a.send(encodeClientMessage(seed)));
  EXPECT_EQ(a.expect<AnnounceResponse>().complete, 1u);
  ASSERT_TRUE(b.send(announceText(swarm, id(3))));
  b.expect<AnnounceResponse>();
  ASSERT_TRUE(c.send(encodeClientMessage(ScrapeRequest{{swarm, id(9)}})));
  const auto s = c.expect<ScrapeResponse>();
  ASSERT_EQ(s.files.size(), 2u);
  for (const auto& f : s.files) {
    if (f.infoHash == swarm) {
      EXPECT_EQ(f.complete, 1u);
      EXPECT_EQ(f.incomplete, 1u);
    }
  }
}

TEST_F(TrackerTest, BadInputGetsAFailureAndOthersAreStillServed) {
  Client bad, good;
  ASSERT_TRUE(bad.connect(port));
  ASSERT_TRUE(good.connect(port));
  for (const std::string& text : {std::string("not json"), std::string("[1,2,3]"), std::string("\"announce\""),
                                  std::string("{}"), std::string(R"({"action":"announce","info_hash":"short"})"),
                                  std::string(R"({"action":"announce","info_hash":)") + "[[[[[[[[[[[[]]]]]]]]]]]]}"}) {
    ASSERT_TRUE(bad.send(text));
    const auto f = bad.expect<Failure>();
    EXPECT_FALSE(f.reason.empty()) << text;
  }
  // A failure after the info_hash is known names the swarm, so WebTorrent shows it.
  ASSERT_TRUE(bad.send(nlohmann::json{{"action", "announce"}, {"info_hash", toBinaryString(id(5))}, {"peer_id", 1}}.dump()));
  const auto named = bad.expect<Failure>();
  EXPECT_EQ(named.action, Action::kAnnounce);
  EXPECT_EQ(named.infoHash, id(5));

  ASSERT_TRUE(bad.send(announceText(id(5), id(6)), /*binary=*/true));
  EXPECT_NE(bad.expect<Failure>().reason.find("binary"), std::string::npos);

  // Still a working connection.
  ASSERT_TRUE(bad.send(announceText(id(5), id(6))));
  bad.expect<AnnounceResponse>();

  // Over 64 KiB: closed with 1009 (message too big).
  const std::string huge = R"({"action":"announce","pad":")" + std::string(kMaxMessageBytes, 'x') + "\"}";
  bad.send(huge);  // may fail half-way once the server has closed
  EXPECT_TRUE(bad.waitClosed());
  EXPECT_EQ(bad.closeCode(), static_cast<std::uint16_t>(websocket::close_code::too_big));

  ASSERT_TRUE(good.send(announceText(id(5), id(7))));
  EXPECT_EQ(good.expect<AnnounceResponse>().incomplete, 1u);  // bad's peer left with its socket
  const auto st = server->stats();
  EXPECT_EQ(st.errors, 8u);
  EXPECT_EQ(st.closedOversized, 1u);
  EXPECT_EQ(st.connections, 1u);
}

TEST_F(TrackerTest, APeerIdCannotBeTakenOver) {
  Client owner, thief;
  ASSERT_TRUE(owner.connect(port) && thief.connect(port));
  ASSERT_TRUE(owner.send(announceText(id(1), id(2), Event::kStarted)));
  owner.expect<AnnounceResponse>();
  ASSERT_TRUE(thief.send(announceText(id(1), id(2), Event::kStopped)));
  const auto f = thief.expect<Failure>();
  EXPECT_NE(f.reason.find("in use"), std::string::npos) << f.reason;
  EXPECT_EQ(server->stats().peers, 1u);
}

TEST_F(TrackerTest, AFloodIsRateLimitedAndTheServerStaysResponsive) {
  Client flood, other;
  ASSERT_TRUE(flood.connect(port) && other.connect(port));
  const std::string msg = announceText(id(1), id(2));
  std::size_t sent = 0;
  const auto start = SteadyClock::now();
  for (; sent < 10'000; ++sent) {
    if (!flood.send(msg)) break;
  }
  const double floodSeconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  // The server is still quick for everyone else.
  const auto t0 = SteadyClock::now();
  ASSERT_TRUE(other.send(announceText(id(1), id(3))));
  other.expect<AnnounceResponse>(2s);
  const auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0);
  EXPECT_LT(latency, 1000ms);

  EXPECT_TRUE(flood.waitClosed()) << "sent " << sent;
  const double totalSeconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  EXPECT_EQ(flood.closeCode(), static_cast<std::uint16_t>(websocket::close_code::policy_error));
  std::size_t replies = 0, failures = 0;
  while (auto m = flood.readMessage(0ms)) {
    if (std::holds_alternative<AnnounceResponse>(*m)) ++replies;
    if (std::holds_alternative<Failure>(*m)) ++failures;
  }
  const auto st = server->stats();
  std::printf("[ flood    ] sent %zu of 10000 in %.3f s before the close; %zu replies, %zu rate-limit failures; "
              "another client's reply took %lld ms\n",
              sent, floodSeconds, replies, failures, static_cast<long long>(latency.count()));
  EXPECT_GE(replies, 100u);                      // the burst
  EXPECT_LE(static_cast<double>(replies), 100 + 50 * totalSeconds + 10);  // burst + refill, nothing more
  EXPECT_GT(failures, 0u);
  EXPECT_GT(st.rateLimited, 0u);
  EXPECT_EQ(st.closedAbusive, 1u);
}

TEST_F(TrackerTest, GracefulStopClosesConnectionsWithGoingAway) {
  Client a;
  ASSERT_TRUE(a.connect(port));
  ASSERT_TRUE(a.send(announceText(id(1), id(2))));
  a.expect<AnnounceResponse>();
  std::thread stopper([&] { server->stop(); });
  EXPECT_TRUE(a.waitClosed(4s));
  stopper.join();
  EXPECT_EQ(a.closeCode(), static_cast<std::uint16_t>(websocket::close_code::going_away));
  Client late;
  EXPECT_FALSE(late.connect(port, 1s));
  server->stop();  // idempotent
}

class SmallTrackerTest : public TrackerTest {
 protected:
  void SetUp() override {
    TrackerOptions o;
    o.interval = 400ms;
    o.maxConnections = 4;
    startServer(o);
  }
};

TEST_F(SmallTrackerTest, SilentPeersExpire) {
  Client a;
  ASSERT_TRUE(a.connect(port));
  ASSERT_TRUE(a.send(announceText(id(1), id(2))));
  EXPECT_EQ(a.expect<AnnounceResponse>().interval, 1u);  // rounded up to whole seconds
  EXPECT_EQ(server->stats().peers, 1u);
  EXPECT_TRUE(eventually([&] { return server->stats().peers == 0; }, 3s));
  EXPECT_EQ(server->stats().peersExpired, 1u);
  EXPECT_EQ(server->stats().connections, 1u);  // the socket stays
}

TEST_F(SmallTrackerTest, ConnectionsAreBounded) {
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<Client>());
    ASSERT_TRUE(clients.back()->connect(port)) << i;
  }
  Client extra;
  EXPECT_FALSE(extra.connect(port, 2s));
  EXPECT_EQ(server->stats().connectionsRejected, 1u);
  clients.back()->close();
  clients.pop_back();
  EXPECT_TRUE(eventually([&] { return server->stats().connections == 3; }));
  Client again;
  EXPECT_TRUE(again.connect(port));
}

// A client that answers pings but says nothing is closed after idleTimeout
// (it would hold a connection slot forever); one that announces stays.
TEST_F(TrackerTest, AConnectionThatSaysNothingIsClosed) {
  server->stop();
  TrackerOptions o;
  o.interval = 400ms;
  o.idleTimeout = 1500ms;
  startServer(o);
  Client quiet, busy;
  ASSERT_TRUE(quiet.connect(port));
  ASSERT_TRUE(busy.connect(port));
  ASSERT_TRUE(quiet.send(announceText(id(1), id(2))));
  quiet.expect<AnnounceResponse>();
  const auto t0 = std::chrono::steady_clock::now();
  bool quietClosed = false;
  while (std::chrono::steady_clock::now() - t0 < 4s) {
    ASSERT_TRUE(busy.send(announceText(id(1), id(3))));
    (void)busy.read(400ms);
    if (quiet.waitClosed(10ms)) {
      quietClosed = true;
      break;
    }
  }
  EXPECT_TRUE(quietClosed) << "a connection silent for 4 s with a 1.5 s idle time-out is still open";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1400ms) << "closed before its idle time-out";
  EXPECT_TRUE(busy.send(announceText(id(1), id(3)))) << "the announcing connection was closed too";
  EXPECT_EQ(server->stats().closedIdle, 1u);
}

// ---- load: the p2pcdn_tracker process -----------------------------------------

using p2pcdn::testing::cpuSeconds;
using p2pcdn::testing::rssKiB;

// Runs p2pcdn_tracker on 127.0.0.1:0 and learns its port from its first line.
class TrackerProcess {
 public:
  explicit TrackerProcess(std::vector<std::string> extraArgs) {
    int fds[2];
    if (pipe(fds) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<std::string> args = {P2PCDN_TRACKER_BIN, "--listen", "127.0.0.1:0"};
    args.insert(args.end(), extraArgs.begin(), extraArgs.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, P2PCDN_TRACKER_BIN, &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    std::string line;
    pollfd p{fds[0], POLLIN, 0};
    while (pid_ > 0 && line.find('\n') == std::string::npos && poll(&p, 1, 5000) > 0) {
      char buf[256];
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    close(fds[0]);
    if (auto colon = line.rfind(':'); colon != std::string::npos) {
      port_ = static_cast<std::uint16_t>(std::stoul(line.substr(colon + 1)));
    }
  }
  ~TrackerProcess() { stop(); }
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  pid_t pid() const { return pid_; }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

// Many connections on one io_context.
struct LoadConn {
  explicit LoadConn(net::io_context& ioc) : ws(ioc) {}
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer buffer;
  std::deque<std::string> queue;
  bool writing = false;
  bool open = false;
  bool failed = false;
  std::size_t replies = 0;
  std::size_t offers = 0;
  std::size_t failures = 0;

  void send(std::string text) {
    queue.push_back(std::move(text));
    if (!writing) writeNext();
  }
  void writeNext() {
    writing = true;
    ws.async_write(net::buffer(queue.front()), [this](error_code ec, std::size_t) {
      queue.pop_front();
      writing = false;
      if (ec) {
        failed = true;
        return;
      }
      if (!queue.empty()) writeNext();
    });
  }
  void readLoop() {
    ws.async_read(buffer, [this](error_code ec, std::size_t) {
      if (ec) {
        failed = !open ? true : failed;
        open = false;
        return;
      }
      auto m = decodeTrackerMessage(beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
      if (m && std::holds_alternative<AnnounceResponse>(*m)) ++replies;
      else if (m && std::holds_alternative<RelayedOffer>(*m)) ++offers;
      else ++failures;
      readLoop();
    });
  }
};

TEST(TrackerLoad, TwoThousandConnectionsAndAnnounceRate) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  ASSERT_GE(lim.rlim_cur, 2100u) << "needs more file descriptors";

  TrackerProcess tracker({"--rate-limit", "0", "--max-connections-per-ip", "0"});
  ASSERT_GT(tracker.pid(), 0);
  ASSERT_NE(tracker.port(), 0) << "no port from " << P2PCDN_TRACKER_BIN;
  const std::uint16_t port = tracker.port();
  const long rssBefore = rssKiB(tracker.pid());

  constexpr std::size_t kConns = 2000;
  constexpr std::size_t kSwarms = 100;
  net::io_context ioc;
  std::vector<std::unique_ptr<LoadConn>> conns;
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  const auto t0 = SteadyClock::now();
  for (std::size_t i = 0; i < kConns; ++i) {
    conns.push_back(std::make_unique<LoadConn>(ioc));
    LoadConn* c = conns.back().get();
    const InfoHash swarm = id(static_cast<std::uint8_t>(i % kSwarms), 0xee);
    PeerId peer = id(0x33, static_cast<std::uint8_t>(i & 0xff));
    peer[2] = static_cast<std::uint8_t>(i >> 8);
    beast::get_lowest_layer(c->ws).async_connect(endpoint, [c, swarm, peer, i](error_code ec) {
      if (ec) {
        c->failed = true;
        return;
      }
      c->ws.async_handshake("127.0.0.1", "/", [c, swarm, peer, i](error_code e) {
        if (e) {
          c->failed = true;
          return;
        }
        c->open = true;
        c->ws.text(true);
        c->readLoop();
        OfferEntry offer{id(0x55, static_cast<std::uint8_t>(i)), {"offer", std::string(1500, 's')}};
        c->send(announceText(swarm, peer, Event::kStarted, {offer}));
      });
    });
  }
  auto runUntil = [&](const std::function<bool()>& done, std::chrono::seconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (!done() && SteadyClock::now() < deadline) ioc.run_one_until(deadline);
  };
  auto countReplies = [&] {
    std::size_t n = 0;
    for (auto& c : conns) n += c->replies;
    return n;
  };
  runUntil([&] { return countReplies() == kConns; }, 30s);
  const double connectSeconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  std::size_t failed = 0, open = 0, offers = 0;
  for (auto& c : conns) {
    failed += c->failed ? 1u : 0u;
    open += c->open ? 1u : 0u;
    offers += c->offers;
  }
  EXPECT_EQ(failed, 0u);
  EXPECT_EQ(open, kConns);
  ASSERT_EQ(countReplies(), kConns);
  std::this_thread::sleep_for(200ms);  // let the last offers land
  ioc.poll();
  const long rssAfter = rssKiB(tracker.pid());
  auto st = httpStats(port);
  EXPECT_EQ(st["connections"], kConns);
  EXPECT_EQ(st["peers"], kConns);
  EXPECT_EQ(st["swarms"], kSwarms);
  const double perConn = 1024.0 * static_cast<double>(rssAfter - rssBefore) / kConns;
  std::printf("[ load     ] %zu connections announced (1 offer of 1.5 KiB each) in %.2f s; %zu offers relayed; "
              "tracker RSS %ld -> %ld KiB: %.1f KiB per connection\n",
              kConns, connectSeconds, st["offersRelayed"].get<std::size_t>(), rssBefore, rssAfter, perConn / 1024);
  if (!kSanitized) {
    EXPECT_LT(perConn, 64 * 1024.0) << "memory per connection";
  }

  // Announce rate: every connection pipelines kEach announces (no offers).
  constexpr std::size_t kEach = kSanitized ? 5 : 40;
  for (auto& c : conns) c->replies = 0;
  const double cpu0 = cpuSeconds(tracker.pid());
  const auto t1 = SteadyClock::now();
  for (std::size_t i = 0; i < kConns; ++i) {
    PeerId peer = id(0x33, static_cast<std::uint8_t>(i & 0xff));
    peer[2] = static_cast<std::uint8_t>(i >> 8);
    const std::string text = announceText(id(static_cast<std::uint8_t>(i % kSwarms), 0xee), peer);
    for (std::size_t k = 0; k < kEach; ++k) conns[i]->send(text);
  }
  runUntil([&] { return countReplies() == kConns * kEach; }, 60s);
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - t1).count();
  EXPECT_EQ(countReplies(), kConns * kEach);
  const double rate = static_cast<double>(countReplies()) / seconds;
  const double cpu = cpuSeconds(tracker.pid()) - cpu0;
  std::printf("[ load     ] %zu announces answered in %.2f s: %.0f announces/s (client and tracker share 2 cores); "
              "tracker CPU %.2f s = %.0f announces per CPU-second\n",
              countReplies(), seconds, rate, cpu, cpu > 0 ? static_cast<double>(countReplies()) / cpu : 0.0);
  if (!kSanitized) {
    EXPECT_GT(rate, 2000.0);
  }
  const long rssPeak = rssKiB(tracker.pid());
  std::printf("[ load     ] tracker RSS after the announce burst: %ld KiB\n", rssPeak);

  for (auto& c : conns) {
    error_code ignored;
    beast::get_lowest_layer(c->ws).socket().close(ignored);
  }
  ioc.poll();
  EXPECT_TRUE(eventually([&] { return httpStats(port)["connections"] == 0; }, 10s));
  EXPECT_EQ(httpStats(port)["peers"], 0);
  EXPECT_EQ(tracker.stop(), 0) << "exit status after SIGTERM";
}

// One address cannot take every slot (issue "Trust"): 10 000 TCP connections
// from 127.0.0.2 against a tracker at its defaults (10 000 connections, 256
// per address); a client on 127.0.0.1 is still answered within 1 s.
TEST(TrackerLoad, OneAddressCannotTakeEverySlot) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  ASSERT_GE(lim.rlim_cur, 10'100u) << "needs more file descriptors";
  TrackerProcess tracker({});
  ASSERT_GT(tracker.pid(), 0);
  ASSERT_NE(tracker.port(), 0);
  const std::uint16_t port = tracker.port();

  constexpr std::size_t kFlood = 10'000;
  net::io_context ioc;
  std::vector<std::unique_ptr<tcp::socket>> flood;
  std::size_t done = 0;
  const tcp::endpoint to(net::ip::make_address("127.0.0.1"), port);
  for (std::size_t i = 0; i < kFlood; ++i) {
    auto s = std::make_unique<tcp::socket>(ioc);
    error_code ec;
    s->open(tcp::v4(), ec);
    const int one = 1;
    ::setsockopt(s->native_handle(), IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */, &one, sizeof one);
    s->bind(tcp::endpoint(net::ip::make_address("127.0.0.2"), 0), ec);
    ASSERT_FALSE(ec) << "bind 127.0.0.2: " << ec.message();
    s->async_connect(to, [&done](error_code) { ++done; });
    flood.push_back(std::move(s));
  }
  const auto deadline = SteadyClock::now() + 30s;
  while (done < kFlood && SteadyClock::now() < deadline) ioc.run_one_until(deadline);
  ASSERT_EQ(done, kFlood);
  // The tracker has accepted (and refused) them all once its counter says so.
  ASSERT_TRUE(eventually([&] { return httpStats(port)["connectionsAccepted"].get<std::size_t>() >= kFlood; }, 20s));

  Client c;
  const auto t0 = SteadyClock::now();
  ASSERT_TRUE(c.connect(port, 1s));
  ASSERT_TRUE(c.send(announceText(id(0x77), id(0x78), Event::kStarted)));
  auto reply = c.expect<AnnounceResponse>();
  const double took = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  EXPECT_LT(took, 1.0) << "the client on 127.0.0.1 waited " << took << " s";
  EXPECT_EQ(reply.incomplete, 1u);
  auto st = httpStats(port);
  EXPECT_GE(st["connectionsRejectedPerSource"].get<std::size_t>(), kFlood - 256);
  std::printf("[ per-ip   ] %zu connections from 127.0.0.2: %zu refused by the per-address limit; a client on "
              "127.0.0.1 answered in %.3f s\n",
              kFlood, st["connectionsRejectedPerSource"].get<std::size_t>(), took);
}

}  // namespace
}  // namespace p2pcdn::tracker
