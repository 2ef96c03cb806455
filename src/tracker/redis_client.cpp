// hiredis' async context driven by an Asio descriptor (see redis_client.hpp).
//
// Lifetime rules of hiredis 0.14 that shape this file:
// - hiredis frees the context itself after a failed connect or a lost
//   connection; ev.cleanup is always called first (there ac becomes null here);
// - redisAsyncFree must not be called from inside one of its callbacks, so no
//   user callback runs inside them: every one is posted;
// - pending commands' callbacks run with a null reply when the context is
//   freed: that is where "connection lost" reaches their callers.
#include "tracker/redis_client.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <map>

namespace p2pcdn::tracker {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::kString; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::kStatus; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::kInteger; out.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default: out.type = RedisReply::Type::kNil; break;
  }
  return out;
}

}  // namespace

Result<RedisOptions> parseRedisUrl(const std::string& url) {
  const std::string scheme = "redis://";
  auto bad = [&](const std::string& why) { return fail(Errc::kInvalidArgument, "--redis", url + ": " + why); };
  if (url.compare(0, scheme.size(), scheme) != 0) return bad("must start with redis://");
  std::string rest = url.substr(scheme.size());
  RedisOptions o;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest.resize(slash);
    int v = 0;
    auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), v);
    if (db.empty() || ec != std::errc() || p != db.data() + db.size() || v < 0 || v > 1023) return bad("bad database number");
    o.db = v;
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos && rest.find(']') == std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    rest.resize(colon);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (port.empty() || ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535) return bad("bad port");
    o.port = static_cast<std::uint16_t>(v);
  }
  if (rest.empty() || rest.find_first_of("@?#") != std::string::npos) return bad("bad host");
  o.host = rest;
  return o;
}

struct RedisClient::State : std::enable_shared_from_this<State> {
  State(asio::io_context& ctx, RedisOptions o, RedisClient& c)
      : io(ctx), opts(std::move(o)), owner(&c), sd(ctx), connectTimer(ctx), sweepTimer(ctx), retryTimer(ctx) {}

  struct Pending {
    std::function<void(Result<RedisReply>)> done;
    Clock::time_point sent;
  };

  asio::io_context& io;
  RedisOptions opts;
  RedisClient* owner;  // null once the client is gone
  redisAsyncContext* ac = nullptr;
  asio::posix::stream_descriptor sd;
  asio::steady_timer connectTimer, sweepTimer, retryTimer;
  bool wantRead = false, wantWrite = false, readArmed = false, writeArmed = false;
  bool started = false, stopped = false, up = false;
  bool sweeping = false;
  std::chrono::milliseconds backoff{0};
  std::uint64_t nextId = 1;
  std::map<std::uint64_t, Pending> pending;  // in the order sent: begin() is the oldest
  RedisStats stats;

  // ---- user callbacks, always posted ----------------------------------------------
  void deliver(std::function<void(Result<RedisReply>)> done, Result<RedisReply> r) {
    asio::post(io, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  }
  void post(std::function<void()> fn) { asio::post(io, std::move(fn)); }

  // ---- connecting -------------------------------------------------------------------
  void connect() {
    if (stopped || ac) return;
    redisAsyncContext* c = redisAsyncConnect(opts.host.c_str(), opts.port);
    if (!c) return retryLater("out of memory");
    if (c->err) {
      std::string why = c->errstr;
      redisAsyncFree(c);
      return retryLater(why);
    }
    ac = c;
    ac->data = this;
    // The descriptor first: setting the connect callback already asks for a write watch.
    boost::system::error_code ec;
    sd.assign(ac->c.fd, ec);
    if (ec) {
      ac = nullptr;
      redisAsyncFree(c);
      return retryLater("watch the socket: " + ec.message());
    }
    ac->ev.data = this;
    ac->ev.addRead = [](void* p) { static_cast<State*>(p)->watch(true, true); };
    ac->ev.delRead = [](void* p) { static_cast<State*>(p)->watch(true, false); };
    ac->ev.addWrite = [](void* p) { static_cast<State*>(p)->watch(false, true); };
    ac->ev.delWrite = [](void* p) { static_cast<State*>(p)->watch(false, false); };
    ac->ev.cleanup = [](void* p) { static_cast<State*>(p)->cleanup(); };
    redisAsyncSetConnectCallback(ac, [](const redisAsyncContext* c2, int status) {
      static_cast<State*>(c2->data)->onConnect(status == REDIS_OK);
    });
    redisAsyncSetDisconnectCallback(ac, [](const redisAsyncContext*, int) {});
    redisEnableKeepAlive(&ac->c);  // a half-open connection (a subscriber sends nothing) is noticed
    watch(false, true);  // the non-blocking connect completes when the socket is writable
    connectTimer.expires_after(opts.connectTimeout);
    connectTimer.async_wait([w = weak_from_this()](boost::system::error_code e) {
      auto s = w.lock();
      if (e || !s || s->up || !s->ac) return;
      s->abort("no connection within " + std::to_string(s->opts.connectTimeout.count()) + " ms");
    });
  }

  void onConnect(bool ok) {
    if (!ok) return;  // hiredis frees the context: cleanup() retries
    // (The connect deadline runs on until SELECT / SUBSCRIBE / PING is answered: becameUp.)
    // SELECT / SUBSCRIBE go first; the connection counts as up once they are answered.
    if (!opts.subscribe.empty()) {
      std::vector<const char*> argv{"SUBSCRIBE"};
      std::vector<std::size_t> len{9};
      for (const auto& ch : opts.subscribe) {
        argv.push_back(ch.c_str());
        len.push_back(ch.size());
      }
      redisAsyncCommandArgv(ac, &State::onSubscribed, nullptr, static_cast<int>(argv.size()), argv.data(), len.data());
      return;
    }
    // A round trip before the connection counts as up (a hung server accepts TCP too):
    // SELECT, or PING for database 0.
    const std::string db = std::to_string(opts.db);
    if (opts.db != 0) {
      const char* argv[] = {"SELECT", db.c_str()};
      const std::size_t len[] = {6, db.size()};
      redisAsyncCommandArgv(ac, &State::onSelected, nullptr, 2, argv, len);
    } else {
      const char* argv[] = {"PING"};
      const std::size_t len[] = {4};
      redisAsyncCommandArgv(ac, &State::onSelected, nullptr, 1, argv, len);
    }
  }

  static void onSelected(redisAsyncContext* c, void* r, void*) {
    auto* s = static_cast<State*>(c->data);
    const auto* reply = static_cast<redisReply*>(r);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
      s->post([w = s->weak_from_this()] {
        if (auto self = w.lock()) self->abort("SELECT or PING refused");
      });
      return;
    }
    s->becameUp();
  }

  static void onSubscribed(redisAsyncContext* c, void* r, void*) {
    auto* s = static_cast<State*>(c->data);
    const auto* reply = static_cast<redisReply*>(r);
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    const std::string kind(reply->element[0]->str ? reply->element[0]->str : "", reply->element[0]->len);
    if (kind == "subscribe") {
      if (!s->up) s->becameUp();
    } else if (kind == "message" && reply->element[1]->str && reply->element[2]->str) {
      ++s->stats.messages;
      std::string ch(reply->element[1]->str, reply->element[1]->len);
      std::string payload(reply->element[2]->str, reply->element[2]->len);
      s->post([w = s->weak_from_this(), ch = std::move(ch), payload = std::move(payload)] {
        auto self = w.lock();
        if (self && self->owner && self->owner->onMessage) self->owner->onMessage(ch, payload);
      });
    }
  }

  void becameUp() {
    connectTimer.cancel();
    up = true;
    backoff = std::chrono::milliseconds(0);
    ++stats.connects;
    post([w = weak_from_this()] {
      auto self = w.lock();
      if (self && self->up && self->owner && self->owner->onConnected) self->owner->onConnected();
    });
  }

  // hiredis is freeing the context (our abort, a failed connect, a lost connection).
  void cleanup() {
    boost::system::error_code ignored;
    sd.cancel(ignored);
    (void)sd.release();
    wantRead = wantWrite = false;
    ac = nullptr;
    connectTimer.cancel();
    const bool wasUp = up;
    up = false;
    if (wasUp) {
      ++stats.disconnects;
      post([w = weak_from_this()] {
        auto self = w.lock();
        if (self && self->owner && self->owner->onDisconnected) {
          self->owner->onDisconnected(Error(Errc::kIo, "redis", "connection lost"));
        }
      });
    }
    if (!stopped) {
      post([w = weak_from_this()] {
        if (auto self = w.lock()) self->retryLater("connection closed");
      });
    }
  }

  // Drops the connection (outside hiredis' callbacks only).
  void abort(const std::string& why) {
    (void)why;
    if (ac) redisAsyncFree(ac);  // pending callbacks get null replies; cleanup() runs
  }

  void retryLater(const std::string&) {
    if (stopped || ac) return;
    backoff = backoff.count() == 0 ? opts.reconnectMin : std::min(opts.reconnectMax, backoff * 2);
    retryTimer.expires_after(backoff);
    retryTimer.async_wait([w = weak_from_this()](boost::system::error_code e) {
      if (auto s = w.lock(); s && !e) s->connect();
    });
  }

  // ---- the socket -------------------------------------------------------------------
  void watch(bool read, bool on) {
    (read ? wantRead : wantWrite) = on;
    arm(read);
  }

  void arm(bool read) {
    bool& armed = read ? readArmed : writeArmed;
    if (!ac || armed || !(read ? wantRead : wantWrite)) return;
    armed = true;
    sd.async_wait(read ? asio::posix::stream_descriptor::wait_read : asio::posix::stream_descriptor::wait_write,
                  [w = weak_from_this(), read](boost::system::error_code e) {
                    auto s = w.lock();
                    if (!s) return;
                    (read ? s->readArmed : s->writeArmed) = false;
                    if (e) {
                      if (e != asio::error::operation_aborted && s->ac) s->abort("socket: " + e.message());
                      return;
                    }
                    if (!s->ac) return;
                    if (read ? s->wantRead : s->wantWrite) {
                      read ? redisAsyncHandleRead(s->ac) : redisAsyncHandleWrite(s->ac);
                    }
                    s->arm(read);  // (ac is null if that freed the context)
                  });
  }

  // ---- commands ---------------------------------------------------------------------
  static void onReply(redisAsyncContext* c, void* r, void* privdata) {
    auto* s = static_cast<State*>(c->data);
    const auto id = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(privdata));
    auto it = s->pending.find(id);
    if (it == s->pending.end()) return;
    Pending p = std::move(it->second);
    s->pending.erase(it);
    const auto* reply = static_cast<redisReply*>(r);
    if (!reply) {
      ++s->stats.errors;
      return s->deliver(std::move(p.done), fail(s->stopped ? Errc::kCancelled : Errc::kIo, "redis",
                                                 s->stopped ? "the client stopped" : "connection lost"));
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      ++s->stats.errors;
      return s->deliver(std::move(p.done), fail(Errc::kIo, "redis", std::string(reply->str, reply->len)));
    }
    const double rtt = std::chrono::duration<double>(Clock::now() - p.sent).count();
    s->stats.rttSecondsSum += rtt;
    s->stats.rttLastSeconds = rtt;
    ++s->stats.rttCount;
    s->deliver(std::move(p.done), convert(reply));
  }

  void command(std::vector<std::string> argv, std::function<void(Result<RedisReply>)> done) {
    ++stats.commands;
    if (stopped || !up || !ac || !opts.subscribe.empty()) {
      ++stats.errors;
      return deliver(std::move(done), fail(Errc::kIo, "redis", stopped ? "stopped" : "not connected"));
    }
    if (argv.empty()) return deliver(std::move(done), fail(Errc::kInvalidArgument, "redis", "empty command"));
    if (pending.size() >= opts.maxPending) {
      ++stats.errors;
      return deliver(std::move(done), fail(Errc::kBackPressure, "redis", "too many commands waiting"));
    }
    std::vector<const char*> a;
    std::vector<std::size_t> len;
    for (const auto& s : argv) {
      a.push_back(s.data());
      len.push_back(s.size());
    }
    const std::uint64_t id = nextId++;
    pending.emplace(id, Pending{std::move(done), Clock::now()});
    if (redisAsyncCommandArgv(ac, &State::onReply, reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)),
                              static_cast<int>(a.size()), a.data(), len.data()) != REDIS_OK) {
      auto it = pending.find(id);
      auto d = std::move(it->second.done);
      pending.erase(it);
      ++stats.errors;
      return deliver(std::move(d), fail(Errc::kIo, "redis", "the command could not be queued"));
    }
    sweep();
  }

  // Every command answered within commandTimeout, else the connection goes.
  void sweep() {
    if (sweeping || pending.empty()) return;
    sweeping = true;
    sweepTimer.expires_after(opts.commandTimeout / 4 + std::chrono::milliseconds(1));
    sweepTimer.async_wait([w = weak_from_this()](boost::system::error_code e) {
      auto s = w.lock();
      if (!s) return;
      s->sweeping = false;
      if (e || s->pending.empty()) return;
      if (Clock::now() - s->pending.begin()->second.sent > s->opts.commandTimeout) {
        ++s->stats.timeouts;
        // The replies still owed would be matched to the wrong commands: drop it all.
        s->abort("command time-out");
      }
      s->sweep();
    });
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    retryTimer.cancel();
    connectTimer.cancel();
    sweepTimer.cancel();
    abort("stopped");
  }
};

RedisClient::RedisClient(asio::io_context& io, RedisOptions options)
    : s_(std::make_shared<State>(io, std::move(options), *this)) {}

RedisClient::~RedisClient() {
  stop();
  s_->owner = nullptr;
}

void RedisClient::start() {
  if (s_->started) return;
  s_->started = true;
  s_->connect();
}

void RedisClient::stop() { s_->stop(); }
bool RedisClient::connected() const { return s_->up; }
RedisStats RedisClient::stats() const { return s_->stats; }

void RedisClient::command(std::vector<std::string> argv, std::function<void(Result<RedisReply>)> done) {
  s_->command(std::move(argv), std::move(done));
}

}  // namespace p2pcdn::tracker
