// RedisClient against a real redis-server (Debian's), started by each test on
// a free 127.0.0.1 port with no persistence, and stopped by it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tracker/redis_client.hpp"

namespace p2pcdn::tracker {
namespace {

using namespace std::chrono_literals;

std::uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A redis-server child on 127.0.0.1:port (no RDB, no AOF); killed by the destructor.
class RedisServer {
 public:
  explicit RedisServer(std::uint16_t port) : port_(port) { start(); }
  ~RedisServer() { kill(SIGKILL); }
  void start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      const std::string p = std::to_string(port_);
      ::execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  void kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    if (sig == SIGKILL || sig == SIGTERM) {
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  std::uint16_t port_;
  pid_t pid_ = -1;
};

// Runs the loop until `done()` or the deadline; false on the deadline.
bool runUntil(boost::asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    io.restart();
    io.run_for(10ms);
  }
  return true;
}

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::system("command -v redis-server >/dev/null 2>&1") != 0) {
      GTEST_FAIL() << "redis-server is not installed (scripts/install-deps.sh installs it)";
    }
    port_ = freePort();
    server_.emplace(port_);
  }
  RedisOptions options() {
    RedisOptions o;
    o.port = port_;
    o.reconnectMin = 50ms;
    o.reconnectMax = 200ms;
    o.commandTimeout = 500ms;
    return o;
  }
  Result<RedisReply> run(RedisClient& c, std::vector<std::string> argv) {
    std::optional<Result<RedisReply>> r;
    c.command(std::move(argv), [&](Result<RedisReply> x) { r.emplace(std::move(x)); });
    EXPECT_TRUE(runUntil(io_, [&] { return r.has_value(); }, 5s));
    return r ? std::move(*r) : Result<RedisReply>(fail(Errc::kTimedOut, "test", "no answer"));
  }

  boost::asio::io_context io_;
  std::uint16_t port_ = 0;
  std::optional<RedisServer> server_;
};

TEST(RedisUrl, ParsesHostPortAndDatabaseAndRefusesTheRest) {
  auto a = parseRedisUrl("redis://127.0.0.1:6390/3");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 6390);
  EXPECT_EQ(a->db, 3);
  auto b = parseRedisUrl("redis://localhost");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->port, 6379);
  EXPECT_EQ(b->db, 0);
  for (const char* bad : {"http://x", "redis://", "redis://h:0", "redis://h:70000", "redis://h:12x", "redis://h/-1",
                          "redis://h/", "redis://u@h", "redis://h?x"}) {
    EXPECT_FALSE(parseRedisUrl(bad)) << bad;
  }
}

TEST_F(RedisClientTest, AnswersCommandsWithTypedRepliesAndErrors) {
  auto o = options();
  o.db = 2;
  RedisClient c(io_, o);
  int connects = 0;
  c.onConnected = [&] { ++connects; };
  c.start();
  ASSERT_TRUE(runUntil(io_, [&] { return connects == 1; }, 5s));
  auto set = run(c, {"SET", "k", std::string("v\0w", 3)});
  ASSERT_TRUE(set);
  EXPECT_EQ(set->type, RedisReply::Type::kStatus);
  auto get = run(c, {"GET", "k"});
  ASSERT_TRUE(get);
  EXPECT_EQ(get->type, RedisReply::Type::kString);
  EXPECT_EQ(get->str, std::string("v\0w", 3));  // binary-safe
  auto n = run(c, {"INCRBY", "n", "5"});
  ASSERT_TRUE(n);
  EXPECT_EQ(n->integer, 5);
  auto missing = run(c, {"GET", "nothing"});
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->type, RedisReply::Type::kNil);
  auto arr = run(c, {"MGET", "k", "nothing"});
  ASSERT_TRUE(arr);
  ASSERT_EQ(arr->elements.size(), 2u);
  auto bad = run(c, {"NOSUCHCOMMAND"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("unknown command"), std::string::npos) << bad.error().message();
  // SELECT 2 took: database 0 does not hold the key.
  RedisClient zero(io_, options());
  bool up0 = false;
  zero.onConnected = [&] { up0 = true; };
  zero.start();
  ASSERT_TRUE(runUntil(io_, [&] { return up0; }, 5s));
  auto other = run(zero, {"GET", "k"});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->type, RedisReply::Type::kNil);
  EXPECT_GE(c.stats().rttCount, 5u);
}

TEST_F(RedisClientTest, ASubscriberGetsMessagesAndResubscribesAfterTheServerComesBack) {
  auto so = options();
  so.subscribe = {"tracker.a"};
  RedisClient sub(io_, so);
  std::vector<std::string> got;
  int subUps = 0;
  sub.onMessage = [&](const std::string& ch, const std::string& m) { got.push_back(ch + "=" + m); };
  sub.onConnected = [&] { ++subUps; };
  RedisClient pub(io_, options());
  int pubUps = 0;
  pub.onConnected = [&] { ++pubUps; };
  sub.start();
  pub.start();
  ASSERT_TRUE(runUntil(io_, [&] { return subUps == 1 && pubUps == 1; }, 5s));
  auto n = run(pub, {"PUBLISH", "tracker.a", "hello"});
  ASSERT_TRUE(n);
  EXPECT_EQ(n->integer, 1);  // one subscriber
  ASSERT_TRUE(runUntil(io_, [&] { return got.size() == 1; }, 5s));
  EXPECT_EQ(got[0], "tracker.a=hello");

  // The server dies: an outstanding command fails (not hangs), both reconnect once it is back.
  std::optional<Result<RedisReply>> during;
  server_->kill(SIGKILL);
  pub.command({"BLPOP", "never", "0"}, [&](Result<RedisReply> r) { during.emplace(std::move(r)); });
  ASSERT_TRUE(runUntil(io_, [&] { return during.has_value() && !pub.connected() && !sub.connected(); }, 5s));
  EXPECT_FALSE(*during);
  auto refused = run(pub, {"PING"});
  EXPECT_FALSE(refused);  // not connected: at once, no queueing
  server_.emplace(port_);
  ASSERT_TRUE(runUntil(io_, [&] { return subUps == 2 && pubUps == 2; }, 10s));
  auto again = run(pub, {"PUBLISH", "tracker.a", "back"});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->integer, 1);
  ASSERT_TRUE(runUntil(io_, [&] { return got.size() == 2; }, 5s));
  EXPECT_EQ(got[1], "tracker.a=back");
  EXPECT_EQ(pub.stats().disconnects, 1u);
}

TEST_F(RedisClientTest, AServerThatStopsAnsweringTimesOutEveryCommandAndIsReconnected) {
  RedisClient c(io_, options());  // commandTimeout 500 ms
  int ups = 0;
  c.onConnected = [&] { ++ups; };
  c.start();
  ASSERT_TRUE(runUntil(io_, [&] { return ups == 1; }, 5s));
  server_->kill(SIGSTOP);  // the socket stays open; nothing answers
  std::vector<Result<RedisReply>> rs;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) c.command({"PING"}, [&](Result<RedisReply> r) { rs.push_back(std::move(r)); });
  ASSERT_TRUE(runUntil(io_, [&] { return rs.size() == 3; }, 5s));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(waited, 1500ms);  // the deadline, plus the sweep's granularity
  for (const auto& r : rs) EXPECT_FALSE(r);
  EXPECT_EQ(c.stats().timeouts, 1u);
  server_->kill(SIGCONT);
  ASSERT_TRUE(runUntil(io_, [&] { return ups == 2; }, 10s));
  auto pong = run(c, {"PING"});
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->str, "PONG");
}

TEST_F(RedisClientTest, NoServerYetMeansRetryingUntilOneAppearsAndStopCancels) {
  server_.reset();  // killed: nothing listens on the port
  RedisClient c(io_, options());
  int ups = 0;
  c.onConnected = [&] { ++ups; };
  c.start();
  io_.restart();
  io_.run_for(400ms);  // several refused connects
  EXPECT_EQ(ups, 0);
  EXPECT_FALSE(c.connected());
  server_.emplace(port_);
  ASSERT_TRUE(runUntil(io_, [&] { return ups == 1; }, 10s));
  std::optional<Result<RedisReply>> r;
  c.command({"BLPOP", "never", "0"}, [&](Result<RedisReply> x) { r.emplace(std::move(x)); });
  c.stop();
  ASSERT_TRUE(runUntil(io_, [&] { return r.has_value(); }, 5s));
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code(), Errc::kCancelled);
}

}  // namespace
}  // namespace p2pcdn::tracker
