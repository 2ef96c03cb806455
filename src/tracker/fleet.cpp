// TrackerFleet (see fleet.hpp): the Redis side of a tracker instance.
#include "tracker/fleet.hpp"

#include <algorithm>
#include <random>

namespace p2pcdn::tracker {

using namespace signaling;
using fleet::MemberRef;

namespace {

// KEYS[1] seeders, KEYS[2] leechers of one swarm; ARGV[1] member, ARGV[2]
// role ('s' seeder, 'l' leecher, 'x' left), ARGV[3] its life in ms, ARGV[4]
// peers wanted for its offers. Scores are expiry times on Redis' own clock.
// Returns {seeders, leechers, sample of seeders, sample of leechers}; a
// seeder gets no seeders (two seeders have nothing to trade).
constexpr const char* kAnnounceScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local role, ttl, want = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if role == 'x' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  local mine, other = KEYS[2], KEYS[1]
  if role == 's' then mine, other = KEYS[1], KEYS[2] end
  redis.call('ZREM', other, ARGV[1])
  redis.call('ZADD', mine, now + ttl, ARGV[1])
  redis.call('PEXPIRE', mine, ttl)
end
local s = redis.call('ZCARD', KEYS[1])
local l = redis.call('ZCARD', KEYS[2])
local sp, lp = {}, {}
if want > 0 then
  if role ~= 's' and s > 0 then sp = redis.call('ZRANDMEMBER', KEYS[1], want + 1) end
  if l > 0 then lp = redis.call('ZRANDMEMBER', KEYS[2], want + 1) end
end
return {s, l, sp, lp}
)lua";

struct ScriptReply {
  std::uint64_t seeders = 0, leechers = 0;
  std::vector<MemberRef> seederPicks, leecherPicks;
};

// The script's reply, checked: anything else is an error (a foreign Redis?).
std::optional<ScriptReply> parseScriptReply(const RedisReply& r) {
  using T = RedisReply::Type;
  if (r.type != T::kArray || r.elements.size() != 4) return std::nullopt;
  if (r.elements[0].type != T::kInteger || r.elements[1].type != T::kInteger) return std::nullopt;
  ScriptReply out;
  out.seeders = static_cast<std::uint64_t>(std::max(0LL, r.elements[0].integer));
  out.leechers = static_cast<std::uint64_t>(std::max(0LL, r.elements[1].integer));
  for (std::size_t k = 2; k < 4; ++k) {
    const RedisReply& list = r.elements[k];
    if (list.type != T::kArray || list.elements.size() > kMaxNumwant + 1) return std::nullopt;
    auto& picks = k == 2 ? out.seederPicks : out.leecherPicks;
    for (const RedisReply& e : list.elements) {
      if (e.type != T::kString) return std::nullopt;
      if (auto m = fleet::decodeMember(e.str)) picks.push_back(*m);
    }
  }
  return out;
}

}  // namespace

struct TrackerFleet::State : std::enable_shared_from_this<TrackerFleet::State> {
  State(boost::asio::io_context& io, FleetOptions o, SwarmRegistry& r, Deliver d)
      : options(std::move(o)), registry(r), deliver(std::move(d)), rng(std::random_device{}()),
        routes(options.routeCacheEntries, 2 * options.peerTtl, rng()) {
    for (auto& b : instance) b = static_cast<std::uint8_t>(rng());
    RedisOptions busOptions = options.redis;
    busOptions.subscribe = {fleet::instanceChannel(instance)};
    redis = std::make_unique<RedisClient>(io, options.redis);
    bus = std::make_unique<RedisClient>(io, busOptions);
  }

  FleetOptions options;
  SwarmRegistry& registry;
  Deliver deliver;
  std::mt19937_64 rng;
  fleet::InstanceId instance{};
  fleet::RouteCache routes;
  std::unique_ptr<RedisClient> redis;  // commands
  std::unique_ptr<RedisClient> bus;    // this instance's channel
  FleetStats counters;
  bool stopped = false;
  bool leaving = false;  // leaveAll() ran: this instance writes no member any more
  std::uint64_t republishGeneration = 0;
  std::vector<Delivery> out;

  std::string member(const PeerId& peer) const { return fleet::encodeMember(MemberRef{peer, instance}); }

  void run(const Member& m, char role, std::size_t want, std::function<void(Result<RedisReply>)> done) {
    redis->command({"EVAL", kAnnounceScript, "2", fleet::seedersKey(m.infoHash), fleet::leechersKey(m.infoHash),
                    member(m.peerId), std::string(1, role), std::to_string(options.peerTtl.count()),
                    std::to_string(want)},
                   std::move(done));
  }

  void flush() {
    for (Delivery& d : out) deliver(d.to, std::move(d.text));
    out.clear();
  }

  void fallback(const FleetAnnounce& a) {
    ++counters.localFallbacks;
    registry.relayLocally(a, out);
    flush();
  }

  void announce(FleetAnnounce a) {
    if (a.answer) routeAnswer(a);
    const char role = a.stopped ? 'x' : (a.member.seeder ? 's' : 'l');
    const std::size_t want = a.stopped ? 0 : a.want;
    std::weak_ptr<State> weak = shared_from_this();
    run(a.member, role, want, [weak, a = std::move(a)](Result<RedisReply> r) mutable {
      auto self = weak.lock();
      if (!self || self->stopped) return;
      std::optional<ScriptReply> reply;
      if (r) reply = parseScriptReply(*r);
      if (!reply) {
        a.answer.reset();  // routed already
        return self->fallback(a);
      }
      ++self->counters.announces;
      self->answered(a, *reply);
    });
  }

  void answered(const FleetAnnounce& a, const ScriptReply& r) {
    const InfoHash& ih = a.member.infoHash;
    if (a.reply) {
      AnnounceResponse resp{ih, registry.intervalSeconds(), static_cast<std::uint32_t>(std::min<std::uint64_t>(r.seeders, 0xffffffff)),
                            static_cast<std::uint32_t>(std::min<std::uint64_t>(r.leechers, 0xffffffff))};
      deliver(a.from, encodeTrackerMessage(resp));
    }
    if (a.offers.empty()) return;
    // The offerer must still be this connection's (it may have left while the script ran).
    if (registry.connectionOf(ih, a.member.peerId) != a.from) return;
    auto picks = fleet::pickPeers(r.seeders, r.leechers, r.seederPicks, r.leecherPicks, a.member.peerId, a.want, rng);
    for (std::size_t i = 0; i < picks.size(); ++i) {
      const OfferEntry& o = a.offers[i];
      std::string text = encodeTrackerMessage(RelayedOffer{ih, a.member.peerId, o.offerId, o.offer});
      const MemberRef& to = picks[i];
      if (to.instance == instance) {
        if (auto c = registry.connectionOf(ih, to.peerId)) {
          ++counters.offersLocal;
          deliver(*c, std::move(text));
        } else {
          ++counters.undeliverable;  // left since the script ran, or a stale member of ours
        }
        continue;
      }
      ++counters.offersPublished;
      publish(to, fleet::BusMessage{fleet::BusMessage::Kind::kOffer, ih, to.peerId, a.member.peerId, instance,
                                    std::move(text)});
    }
  }

  // An answer for a peer this instance does not hold: back to the instance
  // its offer came through.
  void routeAnswer(const FleetAnnounce& a) {
    const InfoHash& ih = a.member.infoHash;
    auto where = routes.find(ih, a.answer->toPeerId, std::chrono::steady_clock::now());
    if (!where || *where == instance) {
      ++counters.answersUnroutable;
      return;
    }
    ++counters.answersPublished;
    std::string text = encodeTrackerMessage(RelayedAnswer{ih, a.member.peerId, a.answer->offerId, a.answer->answer});
    publish(MemberRef{a.answer->toPeerId, *where},
            fleet::BusMessage{fleet::BusMessage::Kind::kAnswer, ih, a.answer->toPeerId, a.member.peerId, instance,
                              std::move(text)});
  }

  void publish(const MemberRef& to, const fleet::BusMessage& m) {
    std::weak_ptr<State> weak = shared_from_this();
    const InfoHash ih = m.infoHash;
    redis->command({"PUBLISH", fleet::instanceChannel(to.instance), fleet::encodeBusMessage(m)},
                   [weak, to, ih](Result<RedisReply> r) {
                     auto self = weak.lock();
                     if (!self || self->stopped || !r) return;
                     if (r->type != RedisReply::Type::kInteger || r->integer > 0) return;
                     // Nobody listens on that instance's channel: it is gone. Its
                     // member goes now rather than at its expiry.
                     ++self->counters.undeliverable;
                     const std::string member = fleet::encodeMember(to);
                     self->redis->command({"ZREM", fleet::seedersKey(ih), member}, [](Result<RedisReply>) {});
                     self->redis->command({"ZREM", fleet::leechersKey(ih), member}, [](Result<RedisReply>) {});
                   });
  }

  void onBusMessage(const std::string& payload) {
    auto m = fleet::decodeBusMessage(payload);
    if (!m) {
      ++counters.busErrors;
      return;
    }
    // The text goes to our client as it is: it must be the relay the header says.
    auto text = decodeTrackerMessage(m->text);
    const bool offer = m->kind == fleet::BusMessage::Kind::kOffer;
    const bool matches =
        text && (offer ? std::holds_alternative<RelayedOffer>(*text) && std::get<RelayedOffer>(*text).infoHash == m->infoHash &&
                             std::get<RelayedOffer>(*text).peerId == m->from
                       : std::holds_alternative<RelayedAnswer>(*text) &&
                             std::get<RelayedAnswer>(*text).infoHash == m->infoHash &&
                             std::get<RelayedAnswer>(*text).peerId == m->from);
    if (!matches) {
      ++counters.busErrors;
      return;
    }
    auto c = registry.connectionOf(m->infoHash, m->to);
    if (!c) {
      ++counters.undeliverable;
      return;
    }
    if (offer) {
      routes.remember(m->infoHash, m->from, m->fromInstance, std::chrono::steady_clock::now());
      ++counters.offersReceived;
    } else {
      ++counters.answersReceived;
    }
    deliver(*c, std::move(m->text));
  }

  // After a (re)connection: every peer of this instance into Redis again, a
  // bounded number of scripts at a time, each with the peer's role as it is
  // when its script goes out. A newer connection restarts it; an error ends it
  // (the next connection starts it again).
  void republish() {
    if (leaving) return;
    auto list = std::make_shared<std::vector<Member>>();
    registry.forEachPeer([&](const Member& m) { list->push_back(m); });
    const std::uint64_t generation = ++republishGeneration;
    auto next = std::make_shared<std::size_t>(0);
    for (std::size_t i = 0; i < options.republishWindow; ++i) republishNext(list, next, generation);
  }

  void republishNext(const std::shared_ptr<std::vector<Member>>& list, const std::shared_ptr<std::size_t>& next,
                     std::uint64_t generation) {
    while (generation == republishGeneration && *next < list->size()) {
      auto now = registry.member((*list)[(*next)++]);
      if (!now) continue;  // left meanwhile
      std::weak_ptr<State> weak = shared_from_this();
      run(*now, now->seeder ? 's' : 'l', 0, [weak, list, next, generation](Result<RedisReply> r) {
        auto self = weak.lock();
        if (!self || self->stopped) return;
        if (!r) {
          if (generation == self->republishGeneration) ++self->republishGeneration;  // stop this pass
          return;
        }
        ++self->counters.republished;
        self->republishNext(list, next, generation);
      });
      return;
    }
  }

  // Graceful stop: every peer of this instance leaves Redis, a bounded
  // number of scripts at a time (as republish), then `done`. From here on
  // nothing is written for this instance: republishing stops and announces
  // go unanswered by Redis (the connections are closing anyway).
  void leaveAll(std::function<void()> done) {
    leaving = true;
    ++republishGeneration;
    auto list = std::make_shared<std::vector<Member>>();
    registry.forEachPeer([&](const Member& m) { list->push_back(m); });
    if (list->empty() || !redis->connected()) return done();
    auto job = std::make_shared<LeaveJob>(LeaveJob{list, 0, 0, std::move(done)});
    for (std::size_t i = 0; i < options.republishWindow; ++i) leaveNext(job);
  }

  struct LeaveJob {
    std::shared_ptr<std::vector<Member>> list;
    std::size_t next = 0, inFlight = 0;
    std::function<void()> done;
  };

  void leaveNext(const std::shared_ptr<LeaveJob>& job) {
    if (job->next >= job->list->size()) {
      if (job->inFlight == 0 && job->done) std::exchange(job->done, nullptr)();
      return;
    }
    const Member m = (*job->list)[job->next++];
    ++job->inFlight;
    std::weak_ptr<State> weak = shared_from_this();
    run(m, 'x', 0, [weak, job](Result<RedisReply> r) {
      --job->inFlight;
      auto self = weak.lock();
      if (!self || self->stopped) return;
      if (!r) job->next = job->list->size();  // Redis is gone: the rest expire there
      self->leaveNext(job);
    });
  }
};

TrackerFleet::TrackerFleet(boost::asio::io_context& io, FleetOptions options, SwarmRegistry& registry, Deliver deliver)
    : s_(std::make_shared<State>(io, std::move(options), registry, std::move(deliver))) {}

TrackerFleet::~TrackerFleet() { stop(); }

void TrackerFleet::start() {
  std::weak_ptr<State> weak = s_;
  // Republished after either connection returns: while our channel was down,
  // other instances took our members for gone (PUBLISH reached nobody).
  s_->redis->onConnected = [weak] {
    if (auto self = weak.lock()) self->republish();
  };
  s_->bus->onConnected = [weak] {
    if (auto self = weak.lock(); self && self->redis->connected()) self->republish();
  };
  s_->bus->onMessage = [weak](const std::string&, const std::string& payload) {
    if (auto self = weak.lock()) self->onBusMessage(payload);
  };
  s_->redis->start();
  s_->bus->start();
}

void TrackerFleet::stop() {
  if (s_->stopped) return;
  s_->stopped = true;
  s_->redis->stop();
  s_->bus->stop();
}

bool TrackerFleet::usable() const {
  return !s_->stopped && !s_->leaving && s_->redis->connected() && s_->bus->connected();
}

void TrackerFleet::leaveAll(std::function<void()> done) {
  if (s_->stopped) return done();
  s_->leaveAll(std::move(done));
}

void TrackerFleet::announce(FleetAnnounce a) {
  if (!usable()) {
    s_->fallback(a);
    return;
  }
  s_->announce(std::move(a));
}

void TrackerFleet::left(const std::vector<Member>& members) {
  if (!usable()) return;  // their members expire in Redis
  for (const Member& m : members) s_->run(m, 'x', 0, [](Result<RedisReply>) {});
}

FleetStats TrackerFleet::stats() const {
  FleetStats st = s_->counters;
  st.redisUp = usable();
  st.redis = s_->redis->stats();
  st.bus = s_->bus->stats();
  return st;
}

}  // namespace p2pcdn::tracker
