#include "tracker/fleet_protocol.hpp"

#include <algorithm>
#include <cstring>

#include "core/hex.hpp"
#include "tracker/swarm_registry.hpp"

namespace p2pcdn::tracker::fleet {

using signaling::InfoHash;
using signaling::PeerId;

namespace {
std::string hex(const std::uint8_t* p, std::size_t n) { return toHex(ByteView(p, n)); }

}  // namespace

std::string instanceHex(const InstanceId& id) { return hex(id.data(), id.size()); }
std::string seedersKey(const InfoHash& h) { return "p2pcdn:{" + hex(h.data(), h.size()) + "}:s"; }
std::string leechersKey(const InfoHash& h) { return "p2pcdn:{" + hex(h.data(), h.size()) + "}:l"; }
std::string instanceChannel(const InstanceId& id) { return "p2pcdn:i:" + instanceHex(id); }

std::string encodeMember(const MemberRef& m) {
  std::string out(m.peerId.size() + m.instance.size(), '\0');
  std::memcpy(out.data(), m.peerId.data(), m.peerId.size());
  std::memcpy(out.data() + m.peerId.size(), m.instance.data(), m.instance.size());
  return out;
}

std::optional<MemberRef> decodeMember(std::string_view bytes) {
  MemberRef m;
  if (bytes.size() != m.peerId.size() + m.instance.size()) return std::nullopt;
  std::memcpy(m.peerId.data(), bytes.data(), m.peerId.size());
  std::memcpy(m.instance.data(), bytes.data() + m.peerId.size(), m.instance.size());
  return m;
}

// kind (1) | info hash (20) | to (20) | from (20) | from's instance (8) | text
namespace {
constexpr std::size_t kBusHeader = 1 + 20 + 20 + 20 + 8;
}

std::string encodeBusMessage(const BusMessage& m) {
  std::string out;
  out.reserve(kBusHeader + m.text.size());
  out.push_back(static_cast<char>(m.kind));
  auto put = [&](const auto& a) { out.append(reinterpret_cast<const char*>(a.data()), a.size()); };
  put(m.infoHash);
  put(m.to);
  put(m.from);
  put(m.fromInstance);
  out += m.text;
  return out;
}

Result<BusMessage> decodeBusMessage(std::string_view bytes) {
  constexpr const char* op = "fleet message";
  if (bytes.size() < kBusHeader) return fail(Errc::kMalformed, op, "shorter than its header");
  if (bytes.size() - kBusHeader > kMaxBusTextBytes) return fail(Errc::kTooLarge, op, "text over the message limit");
  BusMessage m;
  const auto kind = static_cast<BusMessage::Kind>(bytes[0]);
  if (kind != BusMessage::Kind::kOffer && kind != BusMessage::Kind::kAnswer) {
    return fail(Errc::kMalformed, op, "unknown kind");
  }
  m.kind = kind;
  std::size_t at = 1;
  auto take = [&](auto& a) {
    std::memcpy(a.data(), bytes.data() + at, a.size());
    at += a.size();
  };
  take(m.infoHash);
  take(m.to);
  take(m.from);
  take(m.fromInstance);
  m.text.assign(bytes.substr(at));
  return m;
}

std::vector<MemberRef> pickPeers(std::uint64_t seeders, std::uint64_t leechers, const std::vector<MemberRef>& seederPicks,
                                 const std::vector<MemberRef>& leecherPicks, const PeerId& self, std::size_t want,
                                 std::mt19937_64& rng) {
  std::vector<MemberRef> out;
  if (want == 0) return out;
  // Sampling without replacement from the union: each draw takes the next
  // sample of a set with probability proportional to the peers of that set
  // not drawn yet (self and repeats are skipped, not drawn).
  std::uint64_t restS = seederPicks.empty() ? 0 : std::max<std::uint64_t>(seeders, seederPicks.size());
  std::uint64_t restL = leecherPicks.empty() ? 0 : std::max<std::uint64_t>(leechers, leecherPicks.size());
  std::size_t nextS = 0, nextL = 0;
  while (out.size() < want) {
    const bool haveS = nextS < seederPicks.size() && restS > 0;
    const bool haveL = nextL < leecherPicks.size() && restL > 0;
    if (!haveS && !haveL) break;
    bool fromS = haveS;
    if (haveS && haveL) fromS = std::uniform_int_distribution<std::uint64_t>(0, restS + restL - 1)(rng) < restS;
    const MemberRef& m = fromS ? seederPicks[nextS++] : leecherPicks[nextL++];
    (fromS ? restS : restL) -= 1;
    if (m.peerId == self) continue;
    if (std::any_of(out.begin(), out.end(), [&](const MemberRef& o) { return o.peerId == m.peerId; })) continue;
    out.push_back(m);
  }
  return out;
}

RouteCache::RouteCache(std::size_t capacity, std::chrono::milliseconds ttl, std::uint64_t seed)
    : capacity_(std::max<std::size_t>(capacity, 1)), ttl_(ttl), hash_{mix64(seed), mix64(seed + 1)}, map_(0, hash_) {}

std::size_t RouteCache::KeyHash::operator()(const Key& k) const noexcept {
  std::uint64_t h = k0;
  for (std::size_t i = 0; i < k.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, k.data() + i, 8);
    h = mix64(h ^ w ^ k1);
  }
  return static_cast<std::size_t>(h);
}

RouteCache::Key RouteCache::keyOf(const InfoHash& infoHash, const PeerId& peer) {
  Key k{};
  std::copy(infoHash.begin(), infoHash.end(), k.begin());
  std::copy(peer.begin(), peer.end(), k.begin() + infoHash.size());
  return k;
}

void RouteCache::remember(const InfoHash& infoHash, const PeerId& peer, const InstanceId& instance,
                          Clock::time_point now) {
  const Key k = keyOf(infoHash, peer);
  const std::uint64_t g = ++generation_;
  map_[k] = Entry{instance, now + ttl_, g};
  order_.emplace_back(k, g);
  // Oldest first; entries refreshed since are skipped (their generation moved on).
  while (map_.size() > capacity_ || order_.size() > 2 * capacity_) {
    auto [key, gen] = order_.front();
    order_.pop_front();
    if (auto it = map_.find(key); it != map_.end() && it->second.generation == gen) map_.erase(it);
  }
}

std::optional<InstanceId> RouteCache::find(const InfoHash& infoHash, const PeerId& peer, Clock::time_point now) const {
  auto it = map_.find(keyOf(infoHash, peer));
  if (it == map_.end() || it->second.expires < now) return std::nullopt;
  return it->second.instance;
}

}  // namespace p2pcdn::tracker::fleet
