// libFuzzer target for the tracker fleet's pure parts (src/tracker/
// fleet_protocol, SwarmRegistry's fleet mode). What an instance reads back
// from Redis (members, channel messages) is decoded like untrusted input, and
// the registry is a state machine driven by client messages.
//
// The input is tried as a channel message and as a member (whatever decodes
// re-encodes to the same bytes; text within its limit), then run as a script
// of registry, route-cache and pick operations; a broken property abort()s:
//  - an accepted fleet announce's offers are exactly `want` <= numwant and
//    <= kMaxOffers; its peer is held by the announcing connection unless it
//    stopped; a refusal is answered and not accepted;
//  - counts() agrees with forEachPeer(); a closed connection's reported
//    members are no longer held; relayLocally() sends only to held
//    connections;
//  - the route cache never holds more than its capacity;
//  - pickPeers() never returns self or a peer id twice, nor more than wanted.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tracker/fleet_protocol.hpp"
#include "tracker/swarm_registry.hpp"

using namespace p2pcdn;
using namespace p2pcdn::signaling;
using namespace p2pcdn::tracker;

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fleet_fuzz: property violated: %s\n", what);
  std::abort();
}

struct Reader {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
};

Id20 smallId(std::uint8_t v, std::uint8_t tag) {
  Id20 id{};
  id[0] = tag;
  id[1] = v;
  return id;
}

void checkDecoders(std::string_view bytes) {
  if (auto m = fleet::decodeBusMessage(bytes)) {
    if (m->text.size() > fleet::kMaxBusTextBytes) die("channel text over its limit");
    if (fleet::encodeBusMessage(*m) != bytes) die("a channel message does not re-encode to its bytes");
  }
  if (auto m = fleet::decodeMember(bytes)) {
    if (fleet::encodeMember(*m) != bytes) die("a member does not re-encode to its bytes");
  }
}

void runScript(Reader r) {
  SwarmRegistry reg(RegistryOptions{std::chrono::milliseconds(1000), 3}, 7);
  fleet::RouteCache routes(8, std::chrono::milliseconds(500), 3);
  std::mt19937_64 rng(11);
  std::vector<Delivery> out;
  FleetAnnounce f;
  TimePoint now(std::chrono::hours(1));
  for (int step = 0; step < 256 && r.n > 0; ++step) {
    const std::uint8_t op = r.byte();
    const ConnectionId conn = 1 + r.byte() % 4;
    const PeerId peer = smallId(r.byte() % 6, 0x50);
    const InfoHash swarm = smallId(r.byte() % 3, 0x10);
    now += std::chrono::milliseconds(r.byte() * 10);
    out.clear();
    switch (op % 6) {
      case 0:
      case 1: {  // announce, maybe with offers and an answer
        AnnounceRequest a;
        a.infoHash = swarm;
        a.peerId = peer;
        const std::uint8_t flags = r.byte();
        a.event = static_cast<Event>(flags % 6);
        if (flags & 4) a.left = (flags & 8) ? 0 : 100;
        const std::size_t offers = r.byte() % (kMaxOffers + 1);
        for (std::size_t i = 0; i < offers; ++i) a.offers.push_back({smallId(static_cast<std::uint8_t>(i), 0x70), {"offer", "x"}});
        if (flags & 16) a.numwant = r.byte() % 12;
        if (flags & 32) a.answer = AnswerEntry{smallId(r.byte() % 8, 0x50), smallId(1, 0x71), {"answer", "y"}};
        reg.handle(conn, a, now, out, &f);
        if (f.accepted) {
          if (f.offers.size() != f.want || f.want > a.offers.size() || f.want > kMaxOffers) die("offers not bounded by want");
          if (a.numwant && f.want > *a.numwant) die("want over numwant");
          if (!f.stopped && reg.connectionOf(swarm, peer) != conn) die("an accepted peer is not held by its connection");
          if (f.stopped && reg.connectionOf(swarm, peer) == conn) die("a stopped peer is still held");
          const std::size_t before = out.size();
          reg.relayLocally(f, out);
          for (std::size_t i = before; i < out.size(); ++i) {
            bool held = false;
            reg.forEachPeer([&](const Member& m) { held = held || reg.connectionOf(m.infoHash, m.peerId) == out[i].to; });
            if (!held && out[i].to != conn) die("relayLocally sent to a connection holding no peer");
          }
        } else if (out.empty() && a.event != Event::kStopped) {
          die("an announce neither accepted nor answered");
        }
        break;
      }
      case 2: {
        std::vector<Member> left;
        reg.removeConnection(conn, &left);
        for (const Member& m : left) {
          if (reg.connectionOf(m.infoHash, m.peerId) == conn) die("a closed connection still holds a peer");
        }
        break;
      }
      case 3:
        reg.expire(now);
        break;
      case 4: {
        const fleet::InstanceId inst{r.byte()};
        routes.remember(swarm, peer, inst, fleet::RouteCache::Clock::time_point(now.time_since_epoch()));
        if (routes.size() > 8) die("route cache over its capacity");
        (void)routes.find(swarm, peer, fleet::RouteCache::Clock::time_point(now.time_since_epoch()));
        break;
      }
      case 5: {
        std::vector<fleet::MemberRef> s, l;
        for (int i = r.byte() % 6; i > 0; --i) s.push_back({smallId(r.byte() % 8, 0x50), {r.byte()}});
        for (int i = r.byte() % 6; i > 0; --i) l.push_back({smallId(r.byte() % 8, 0x50), {r.byte()}});
        const std::size_t want = r.byte() % 8;
        auto picks = fleet::pickPeers(r.byte(), r.byte(), s, l, peer, want, rng);
        if (picks.size() > want) die("more picks than wanted");
        std::set<PeerId> ids;
        for (const auto& p : picks) {
          if (p.peerId == peer) die("self picked");
          if (!ids.insert(p.peerId).second) die("a peer picked twice");
        }
        break;
      }
    }
    std::uint64_t listed = 0;
    reg.forEachPeer([&](const Member&) { ++listed; });
    if (listed != reg.counts().peers) die("counts() disagrees with forEachPeer()");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  checkDecoders(std::string_view(reinterpret_cast<const char*>(data), size));
  runScript(Reader{data, size});
  return 0;
}
