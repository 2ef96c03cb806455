#include "sim/sim.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <cstdio>
#include <map>
#include <queue>
#include <random>
#include <set>
#include <sstream>

#include "core/blake3.hpp"
#include "signaling/signaling.hpp"
#include "swarm/discovery.hpp"
#include "tracker/swarm_registry.hpp"

namespace p2pcdn::sim {

namespace {

using swarm::Time;
using swarm::fromSeconds;
using swarm::seconds;

enum class Kind : std::uint8_t {
  kJoin, kTick, kDepart, kArrive, kDeliver, kToTracker, kFromTracker, kLinkOpen, kLinkClose, kLeave,
  kReadDone, kStoreDone,  // store completions (msg: the chunk index)
};

struct Event {
  Time t{};
  std::uint64_t seq = 0;
  Kind kind = Kind::kTick;
  std::uint32_t peer = 0;
  std::uint32_t link = 0;
  std::uint32_t msg = 0;
  std::uint32_t gen = 0;
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

struct Msg {
  Bytes bytes;
  std::uint32_t link = 0;
  std::uint8_t dir = 0;  // 0: a -> b, 1: b -> a
};

constexpr std::uint32_t kNobody = ~std::uint32_t{0};

// A link in the making or open. Both peers name it by its index + 1 (their
// swarm::PeerKey and swarm::LinkKey).
struct Link {
  std::uint32_t a = 0, b = kNobody;  // a made the offer; b answered it (kNobody: not yet)
  signaling::OfferId offerId{};
  bool open = false, closed = false;
  std::size_t buffered[2] = {0, 0};
  bool wantWritable[2] = {false, false};
  std::size_t writableAt[2] = {0, 0};  // onWritable at or below this many bytes queued
  Time lastArrive[2] = {};
};

class Sim;

struct Peer final : swarm::SessionHost {
  Sim* sim = nullptr;
  std::uint32_t index = 0;
  bool seeder = false, corrupt = false, joined = false, left = false;
  double up = 0, down = 0, latency = 0;
  Time joinedAt{};
  Time downFree{};
  // The uplink shares its bytes fairly between its connections (deficit
  // round robin, a quantum of kQuantum bytes per turn): flows sharing a
  // bottleneck get equal byte rates, a fresh chunk on one connection does not
  // wait behind another connection's backlog, and small messages (HAVE,
  // REQUEST) cost their bytes, not a whole turn (SCTP bundles them).
  std::map<std::uint32_t, std::deque<std::uint32_t>> upQueues;  // link -> messages waiting
  std::map<std::uint32_t, std::size_t> upDeficit;                // link -> bytes it may still send this turn
  std::deque<std::uint32_t> upRing;                              // links with messages waiting
  bool turnStarted = false;                                      // upRing.front() has had its quantum
  bool upBusy = false;
  Time tickAt{};
  std::uint32_t tickGen = 0;
  std::unique_ptr<swarm::Session> session;
  std::map<swarm::PeerKey, std::uint32_t> links;  // open links: key (= link index + 1) -> link
  std::optional<swarm::Discovery> discovery;      // the product's rules: announces, offers, glare
  signaling::PeerId id{};
  std::optional<double> completed;

  Status send(swarm::PeerKey key, ByteView message) override;
  void disconnect(swarm::PeerKey key) override;
  void readChunk(ChunkIndex index) override;
  std::optional<std::size_t> buffered(swarm::PeerKey key) const override;
  void notifyWhenBufferedBelow(swarm::PeerKey key, std::size_t bytes) override;
  void storeChunk(ChunkIndex index, Bytes) override;
  void storeManifest(const Manifest&) override {}
  void onComplete() override;
  void noteStored(ChunkIndex chunk);  // for seederLeavesWhenOut and the trace
};

class Sim {
 public:
  explicit Sim(const SimConfig& c) : cfg(c), rng(c.seed), registry(registryOptions(c), c.seed) {}

  static tracker::RegistryOptions registryOptions(const SimConfig& c) {
    tracker::RegistryOptions o;
    o.interval = std::chrono::duration_cast<std::chrono::milliseconds>(c.discovery.announceInterval);
    return o;
  }

  SimResult run();

  // ---- time and events ----
  void at(Time t, Event e) {
    e.t = t;
    e.seq = seq++;
    queue.push(e);
  }
  Time now{};

  // ---- network ----
  Status send(Peer& from, std::uint32_t linkIndex, ByteView bytes) {
    Link& l = links[linkIndex];
    if (!l.open || l.closed) return fail(Errc::kCancelled, "send", "link closed");
    const int dir = l.a == from.index ? 0 : 1;
    if (l.buffered[dir] > 0 && l.buffered[dir] + bytes.size() > cfg.highWatermark) {
      l.wantWritable[dir] = true;
      l.writableAt[dir] = std::max(l.writableAt[dir], cfg.lowWatermark);
      return fail(Errc::kBackPressure, "send", "buffer full");
    }
    l.buffered[dir] += bytes.size();
    std::uint32_t m;
    if (!freeMsgs.empty()) {
      m = freeMsgs.back();
      freeMsgs.pop_back();
    } else {
      m = static_cast<std::uint32_t>(msgs.size());
      msgs.emplace_back();
    }
    msgs[m].bytes.assign(bytes.begin(), bytes.end());
    msgs[m].link = linkIndex;
    msgs[m].dir = static_cast<std::uint8_t>(dir);
    ++messages;
    auto& q = from.upQueues[linkIndex];
    if (q.empty()) from.upRing.push_back(linkIndex);
    q.push_back(m);
    if (!from.upBusy) startUpload(from);
    return {};
  }

  static constexpr std::size_t kQuantum = 16384;

  void startUpload(Peer& p) {
    while (!p.upRing.empty()) {
      const std::uint32_t li = p.upRing.front();
      auto& q = p.upQueues[li];
      std::size_t& deficit = p.upDeficit[li];
      if (q.empty()) {
        p.upRing.pop_front();
        deficit = 0;
        p.turnStarted = false;
        continue;
      }
      if (!p.turnStarted) {
        deficit += kQuantum;
        p.turnStarted = true;
      }
      const std::uint32_t m = q.front();
      const std::size_t size = msgs[m].bytes.size();
      if (size > deficit) {  // its turn is over: the next connection's
        p.upRing.pop_front();
        p.upRing.push_back(li);
        p.turnStarted = false;
        continue;
      }
      deficit -= size;
      q.pop_front();
      if (q.empty()) {
        p.upRing.pop_front();
        deficit = 0;
        p.turnStarted = false;
      }
      p.upBusy = true;
      at(now + fromSeconds(static_cast<double>(size) / p.up),
         Event{.kind = Kind::kDepart, .peer = p.index, .link = li, .msg = m});
      return;
    }
    if (trace && p.upBusy && p.index != 0 && !p.completed && seconds(now) > 8 && (++idleSamples % 50) == 0) classifyIdle(p);
    p.upBusy = false;
  }

  // Trace: when 95 % are done, what the others wait for (printed for the last five).
  std::size_t completions = 0;
  std::map<std::uint32_t, std::string> lateState;
  void snapshotLate() {
    for (Peer& p : peers) {
      if (p.seeder || p.completed || !p.session) continue;
      const auto st = p.session->stats();
      std::size_t outSeeder = 0, outOthers = 0, peersWithOut = 0, completeNeighbours = 0;
      for (auto& [key, li] : p.links) {
        Link& l = links[li];
        Peer& n = peers[l.a == p.index ? l.b : l.a];
        if (n.completed || n.seeder) ++completeNeighbours;
        if (auto ps = p.session->peerStats(key, now)) {
          if (n.seeder) outSeeder += ps->requestsOutstanding; else outOthers += ps->requestsOutstanding;
          peersWithOut += ps->requestsOutstanding > 0 ? 1u : 0u;
        }
      }
      char b[200];
      std::snprintf(b, sizeof b, "at %.2f s: missing %u, requests at the seeder %zu, at others %zu (%zu peers), complete neighbours %zu",
                    seconds(now), st.chunksTotal - st.chunksHave, outSeeder, outOthers, peersWithOut, completeNeighbours);
      std::string detail = b;
      // Each uploader it waits for: our requests there, what it holds queued
      // for us, its queue for everyone, the link's bytes queued each way.
      for (auto& [key, li] : p.links) {
        Link& l = links[li];
        Peer& n = peers[l.a == p.index ? l.b : l.a];
        auto ours = p.session->peerStats(key, now);
        auto theirs = n.session->peerStats(li + 1, now);
        if (!ours || !theirs || ours->requestsOutstanding == 0) continue;
        std::size_t total = 0, unchoked = 0;
        for (auto& ps : n.session->peerStats(now)) {
          total += ps.uploadsQueued;
          unchoked += ps.unchoked ? 1u : 0u;
        }
        const int dir = l.a == p.index ? 0 : 1;
        char d[240];
        std::snprintf(d, sizeof d, "\n    from %u%s: out %zu target %zu choking-us %d | it queues %zu for us (unchoked %d), %zu in all, %zu unchoked, up %.0f B/s to us | link bytes to it %zu, to us %zu",
                      n.index, n.completed ? " (done)" : "", ours->requestsOutstanding, ours->requestTarget, ours->chokingUs,
                      theirs->uploadsQueued, theirs->unchoked, total, unchoked, theirs->upRate, l.buffered[dir], l.buffered[1 - dir]);
        detail += d;
        auto& q = n.upQueues[li];
        const bool inRing = std::find(n.upRing.begin(), n.upRing.end(), li) != n.upRing.end();
        std::snprintf(d, sizeof d, " | its queue here %zu msgs (first type %d), in ring %d, ring %zu, busy %d",
                      q.size(), q.empty() ? -1 : int(msgs[q.front()].bytes[0]), inRing, n.upRing.size(), n.upBusy);
        detail += d;
      }
      lateState[p.index] = detail;
    }
  }

  // Trace: why is a leecher's uplink idle? Counts over sampled idle moments.
  std::uint64_t idleSamples = 0;
  std::array<std::uint64_t, 4> idleWhy{};  // no neighbour lacks what we have / none asks / asks in flight / uploads queued in session
  void classifyIdle(Peer& p) {
    std::size_t interested = 0, asking = 0;
    for (auto& [key, li] : p.links) {
      Link& l = links[li];
      Peer& n = peers[l.a == p.index ? l.b : l.a];
      if (n.completed || n.seeder) continue;
      bool lacks = false;
      for (ChunkIndex i = 0; i < cfg.chunkCount && !lacks; ++i) lacks = p.session->have(i) && !n.session->have(i);
      if (!lacks) continue;
      ++interested;
      if (auto st = n.session->peerStats(li + 1, now); st && st->requestsOutstanding > 0) ++asking;
    }
    std::size_t queued = 0;
    for (auto& [key, li] : p.links) {
      if (auto st = p.session->peerStats(key, now)) queued += st->uploadsQueued;
    }
    ++idleWhy[queued > 0 ? 3 : interested == 0 ? 0 : asking == 0 ? 1 : 2];
  }

  void release(std::uint32_t m) {
    msgs[m].bytes.clear();
    msgs[m].bytes.shrink_to_fit();
    freeMsgs.push_back(m);
  }

  void onDepart(const Event& e) {
    startUpload(peers[e.peer]);
    Msg& msg = msgs[e.msg];
    Link& l = links[msg.link];
    const int dir = msg.dir;
    l.buffered[dir] -= msg.bytes.size();
    Peer& from = peers[dir == 0 ? l.a : l.b];
    Peer& to = peers[dir == 0 ? l.b : l.a];
    if (trace) {
      auto sec = static_cast<std::size_t>(seconds(now));
      if (upBySecond.size() <= sec) {
        upBySecond.resize(sec + 1, {0.0, 0.0});
        distinctBySecond.resize(sec + 1, peers[0].session->stats().distinctServed);
      }
      (from.index == 0 ? upBySecond[sec].first : upBySecond[sec].second) += static_cast<double>(msg.bytes.size());
    }
    Time arrive = now + fromSeconds(from.latency + to.latency);
    if (cfg.loss > 0 && unit(rng) < cfg.loss) arrive += fromSeconds(2 * (from.latency + to.latency) + 0.2);
    arrive = std::max(arrive, l.lastArrive[dir]);
    l.lastArrive[dir] = arrive;
    at(arrive, Event{.kind = Kind::kArrive, .peer = to.index, .link = msg.link, .msg = e.msg});
    if (l.wantWritable[dir] && l.buffered[dir] <= l.writableAt[dir] && l.open && !l.closed && !from.left) {
      l.wantWritable[dir] = false;
      l.writableAt[dir] = 0;
      from.session->onWritable(msg.link + 1, now);
      afterEvent(from);
    }
  }

  void onArrive(const Event& e) {
    Peer& to = peers[e.peer];
    to.downFree = std::max(now, to.downFree) + fromSeconds(static_cast<double>(msgs[e.msg].bytes.size()) / to.down);
    at(to.downFree, Event{.kind = Kind::kDeliver, .peer = e.peer, .link = e.link, .msg = e.msg});
  }

  void onDeliver(const Event& e) {
    Peer& to = peers[e.peer];
    Link& l = links[e.link];
    if (l.open && !l.closed && !to.left) {
      to.session->onMessage(e.link + 1, msgs[e.msg].bytes, now);
      afterEvent(to);
    }
    release(e.msg);
  }

  // Closes a link on both sides: a side whose discovery dropped it has
  // forgotten it already; the other sees an orderly close.
  void closeLink(std::uint32_t linkIndex) {
    Link& l = links[linkIndex];
    if (l.closed) return;
    l.closed = true;
    if (auto pl = pendingLinks.find(l.offerId); pl != pendingLinks.end() && pl->second == linkIndex) pendingLinks.erase(pl);
    for (std::uint32_t side : {l.a, l.b}) {
      if (side == kNobody) continue;
      Peer& p = peers[side];
      p.discovery->closed(linkIndex + 1, now, /*failed=*/false, !p.session->complete());
      if (p.links.erase(linkIndex + 1) && l.open && !p.left) {
        p.session->removePeer(linkIndex + 1, now);
        afterEvent(p);
      }
    }
  }

  // ---- tracker ----
  void toTracker(Peer& p, signaling::ClientMessage msg) {
    trackerInbox.push_back({p.index, std::move(msg)});
    at(now + fromSeconds(p.latency + 0.005),
       Event{.kind = Kind::kToTracker, .peer = p.index, .msg = static_cast<std::uint32_t>(trackerInbox.size() - 1)});
  }

  void onToTracker(const Event& e) {
    auto& [from, msg] = trackerInbox[e.msg];
    std::vector<tracker::Delivery> out;
    registry.handle(from + 1, msg, tracker::TimePoint(std::chrono::duration_cast<tracker::Clock::duration>(now)), out);
    for (auto& d : out) {
      const auto to = static_cast<std::uint32_t>(d.to - 1);
      trackerOutbox.push_back(std::move(d.text));
      at(now + fromSeconds(peers[to].latency + 0.005),
         Event{.kind = Kind::kFromTracker, .peer = to, .msg = static_cast<std::uint32_t>(trackerOutbox.size() - 1)});
    }
    msg = signaling::ScrapeRequest{};  // free the memory
  }

  signaling::AnnounceRequest baseAnnounce(const Peer& p) const {
    const auto st = p.session->stats();
    signaling::AnnounceRequest a;
    a.infoHash = infoHash;
    a.peerId = p.id;
    a.numwant = static_cast<std::uint32_t>(cfg.discovery.offersPerAnnounce);
    a.uploaded = st.uploaded;
    a.downloaded = st.downloaded;
    a.left = st.bytesTotal - st.bytesVerified;
    return a;
  }

  // Offers gather at once here: they ride in the announce that asked for them.
  void announce(Peer& p, signaling::Event event, bool quick) {
    signaling::AnnounceRequest a = baseAnnounce(p);
    a.event = event;
    const std::size_t n = p.discovery->announced(now, !p.session->complete(), quick);
    for (std::size_t i = 0; i < n; ++i) {
      const auto li = static_cast<std::uint32_t>(links.size());
      Link& l = links.emplace_back(Link{.a = p.index});
      for (auto& b : l.offerId) b = static_cast<std::uint8_t>(rng());
      pendingLinks[l.offerId] = li;
      p.discovery->offerMade(li + 1, l.offerId, now);
      p.discovery->offerGathered(li + 1, now);
    }
    for (const auto& o : p.discovery->takeOfferBatch(now)) a.offers.push_back({o.offerId, {"offer", "sim"}});
    toTracker(p, std::move(a));
  }

  void onFromTracker(const Event& e) {
    Peer& p = peers[e.peer];
    if (p.left) return;
    auto msg = signaling::decodeTrackerMessage(trackerOutbox[e.msg]);
    trackerOutbox[e.msg].clear();
    trackerOutbox[e.msg].shrink_to_fit();
    if (!msg) return;
    if (auto* offer = std::get_if<signaling::RelayedOffer>(&*msg)) {
      const std::uint32_t from = peerIndex(offer->peerId);
      if (from == p.index || peers[from].left) return;
      auto d = p.discovery->onOffer(now, offer->peerId);
      if (d.replaces) closeLink(static_cast<std::uint32_t>(*d.replaces - 1));
      auto pl = pendingLinks.find(offer->offerId);
      if (!d.answer || pl == pendingLinks.end()) return;  // (or the offerer withdrew it meanwhile)
      // Accept: a link in the making; the answer goes back through the tracker.
      const std::uint32_t li = pl->second;
      links[li].b = p.index;
      p.discovery->answering(li + 1, offer->peerId, now);
      p.discovery->answerSent(li + 1, now);
      signaling::AnnounceRequest a;
      a.infoHash = infoHash;
      a.peerId = p.id;
      a.answer = signaling::AnswerEntry{offer->peerId, offer->offerId, {"answer", "sim"}};
      toTracker(p, std::move(a));
    } else if (auto* reply = std::get_if<signaling::AnnounceResponse>(&*msg)) {
      p.discovery->trackerCounts(std::size_t{reply->complete} + reply->incomplete);  // as the node does
    } else if (auto* answer = std::get_if<signaling::RelayedAnswer>(&*msg)) {
      auto d = p.discovery->onAnswer(now, answer->offerId, answer->peerId, false);
      for (const auto& drop : d.drops) closeLink(static_cast<std::uint32_t>(drop.key - 1));
      if (!d.apply) return;
      const auto li = static_cast<std::uint32_t>(*d.apply - 1);
      pendingLinks.erase(answer->offerId);
      const std::uint32_t other = peerIndex(answer->peerId);
      // ICE + DTLS + SCTP: about two round trips.
      at(now + fromSeconds(4 * (p.latency + peers[other].latency)), Event{.kind = Kind::kLinkOpen, .link = li});
    }
  }

  void onLinkOpen(const Event& e) {
    Link& l = links[e.link];
    if (l.closed || l.b == kNobody || peers[l.a].left || peers[l.b].left) {
      closeLink(e.link);
      return;
    }
    l.open = true;
    for (std::uint32_t side : {l.a, l.b}) {
      Peer& p = peers[side];
      p.links[e.link + 1] = e.link;
      p.discovery->opened(e.link + 1, now);
      p.session->addPeer(e.link + 1, now);
      afterEvent(p);
    }
  }

  bool linkedToSeeder(const Peer& p) const {
    for (const auto& [key, li] : p.links) {
      if (links[li].a == 0 || links[li].b == 0) return true;
    }
    return false;
  }

  std::uint32_t peerIndex(const signaling::PeerId& id) const {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | id[static_cast<std::size_t>(16 + i)];
    return v;
  }

  // ---- peers ----
  void scheduleTick(Peer& p, Time t) {
    p.tickAt = t;
    ++p.tickGen;
    at(t, Event{.kind = Kind::kTick, .peer = p.index, .gen = p.tickGen});
  }

  void afterEvent(Peer& p) {
    if (p.left || !p.joined) return;
    Time w = p.session->nextWakeup(now);
    if (w < p.tickAt) scheduleTick(p, w);
  }

  void onJoin(Peer& p) {
    p.joined = true;
    p.joinedAt = now;
    p.session->setWanted(!p.seeder, now);
    announce(p, signaling::Event::kStarted, false);
    scheduleTick(p, p.session->nextWakeup(now));
  }

  void onTick(const Event& e) {
    Peer& p = peers[e.peer];
    if (e.gen != p.tickGen || p.left) return;
    p.session->tick(now);
    swarm::SwarmView v;
    v.member = true;
    v.leeching = !p.session->complete();
    v.connected = p.session->stats().peers;
    if (v.leeching && v.connected >= cfg.discovery.maxPeers / 2) v.useful = p.session->usefulPeers();
    auto d = p.discovery->tick(now, v);
    for (const auto& drop : d.drops) closeLink(static_cast<std::uint32_t>(drop.key - 1));
    if (d.announce != swarm::Announce::kNo) announce(p, signaling::Event::kNone, d.announce == swarm::Announce::kQuick);
    const Time wake = std::min(p.session->nextWakeup(now), p.discovery->nextWakeup(now, v));
    scheduleTick(p, std::max(wake, now + std::chrono::milliseconds(1)));
  }

  void onStoreDone(Peer& p, ChunkIndex chunk);
  void onReadDone(Peer& p, ChunkIndex chunk);

  void onLeave(Peer& p) {
    if (p.left) return;
    if (p.seeder) seederLeft = seconds(now);
    std::vector<std::uint32_t> ls;
    for (auto& [k, li] : p.links) ls.push_back(li);
    for (auto li : ls) closeLink(li);
    p.left = true;
    signaling::AnnounceRequest a;
    a.infoHash = infoHash;
    a.peerId = p.id;
    a.event = signaling::Event::kStopped;
    toTracker(p, std::move(a));
  }

  bool allDone() const {
    for (const auto& p : peers) {
      if (!p.seeder && !p.corrupt && !p.completed) return false;
    }
    return true;
  }

  const SimConfig& cfg;
  std::mt19937_64 rng;
  std::uniform_real_distribution<double> unit{0.0, 1.0};
  tracker::SwarmRegistry registry;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue;
  std::uint64_t seq = 0;
  std::vector<Peer> peers;
  std::vector<Link> links;
  std::vector<Msg> msgs;
  std::vector<std::uint32_t> freeMsgs;
  std::vector<std::pair<std::uint32_t, signaling::ClientMessage>> trackerInbox;
  std::vector<std::string> trackerOutbox;
  std::map<signaling::OfferId, std::uint32_t> pendingLinks;  // offer id -> link being made
  signaling::InfoHash infoHash{};
  std::vector<Bytes> chunks;
  std::uint64_t messages = 0;
  bool midSnapshot = false;
  bool trace = std::getenv("P2PCDN_SIM_TRACE") != nullptr;  // per-second upload of the seeder and the leechers
  std::vector<std::pair<double, double>> upBySecond;
  std::vector<std::uint32_t> distinctBySecond;  // chunks the seeder had served at least once
  struct Holders {
    std::size_t count = 0;
    double first = 0, half = 0, all = 0;
  };
  std::map<ChunkIndex, Holders> holders;
  std::vector<bool> heldSomewhere;  // by a leecher, whole
  std::uint32_t chunksOut = 0;
  std::optional<double> seederLeft;  // trace: when each chunk reached its first, half and all leechers
};

Status Peer::send(swarm::PeerKey key, ByteView message) {
  auto it = links.find(key);
  if (it == links.end()) return fail(Errc::kCancelled, "send", "no such link");
  return sim->send(*this, it->second, message);
}

void Peer::disconnect(swarm::PeerKey key) {
  auto it = links.find(key);
  if (it == links.end()) return;
  sim->at(sim->now, Event{.kind = Kind::kLinkClose, .link = it->second});
}

std::optional<std::size_t> Peer::buffered(swarm::PeerKey key) const {
  auto it = links.find(key);
  if (it == links.end()) return std::nullopt;
  const Link& l = sim->links[it->second];
  return l.buffered[l.a == index ? 0 : 1];
}

// The session asks only while more than `bytes` are queued, so a departure
// on that link fires it.
void Peer::notifyWhenBufferedBelow(swarm::PeerKey key, std::size_t bytes) {
  auto it = links.find(key);
  if (it == links.end()) return;
  Link& l = sim->links[it->second];
  const int dir = l.a == index ? 0 : 1;
  l.wantWritable[dir] = true;
  l.writableAt[dir] = std::max(l.writableAt[dir], bytes);
}

// The store completes cfg.storeDelay later (an event, never inside the call).
void Peer::readChunk(ChunkIndex chunk) {
  sim->at(sim->now + sim->cfg.storeDelay, Event{.kind = Kind::kReadDone, .peer = index, .msg = chunk});
}

void Peer::storeChunk(ChunkIndex chunk, Bytes) {
  sim->at(sim->now + sim->cfg.storeDelay, Event{.kind = Kind::kStoreDone, .peer = index, .msg = chunk});
}

void Sim::onStoreDone(Peer& p, ChunkIndex chunk) {
  if (p.left) return;
  p.noteStored(chunk);
  p.session->onChunkStored(chunk, {}, now);
  afterEvent(p);
}

void Sim::onReadDone(Peer& p, ChunkIndex chunk) {
  if (p.left) return;
  Bytes b = chunks[chunk];
  if (p.corrupt && !b.empty()) b[b.size() / 2] ^= 0x5a;
  p.session->onChunkRead(chunk, std::move(b), now);
  afterEvent(p);
}

void Peer::noteStored(ChunkIndex chunk) {
  if (!sim->heldSomewhere[chunk]) {
    sim->heldSomewhere[chunk] = true;
    if (++sim->chunksOut == sim->cfg.chunkCount && sim->cfg.seederLeavesWhenOut) {
      sim->at(sim->now, Event{.kind = Kind::kLeave, .peer = 0});
    }
  }
  if (sim->trace) {
    auto& h = sim->holders[chunk];
    const double t = seconds(sim->now);
    if (h.count++ == 0) h.first = t;
    if (h.count == sim->cfg.leechers / 2) h.half = t;
    if (h.count == sim->cfg.leechers) h.all = t;
  }
}

void Peer::onComplete() {
  if (seeder) return;
  completed = seconds(sim->now);
  if (sim->trace && ++sim->completions == sim->cfg.leechers * 95 / 100) sim->snapshotLate();
}

SimResult Sim::run() {
  auto wallStart = std::chrono::steady_clock::now();
  // The file: random chunks and their manifest.
  chunks.resize(cfg.chunkCount);
  heldSomewhere.assign(cfg.chunkCount, false);
  Manifest m;
  m.name = "sim.bin";
  m.chunkSize = cfg.chunkSize;
  m.size = std::uint64_t{cfg.chunkCount} * cfg.chunkSize;
  for (auto& c : chunks) {
    c.resize(cfg.chunkSize);
    for (std::size_t i = 0; i < c.size(); i += 8) {
      std::uint64_t v = rng();
      std::memcpy(c.data() + i, &v, std::min<std::size_t>(8, c.size() - i));
    }
    m.chunkHashes.push_back(Blake3::hash(c));
  }
  const FileId fileId = *manifestId(m);
  infoHash = signaling::swarmKey(fileId);

  // Peers: [0] the seeder, then the leechers by class.
  const std::size_t n = cfg.leechers + 1;
  peers.resize(n);
  double shareSum = 0;
  for (const auto& c : cfg.classes) shareSum += c.share;
  std::vector<std::size_t> corruptAt;
  for (std::size_t i = 0; i < cfg.corruptPeers && i < cfg.leechers; ++i) corruptAt.push_back(1 + (i * cfg.leechers) / std::max<std::size_t>(cfg.corruptPeers, 1));
  std::uniform_real_distribution<double> lat(cfg.latencyMin, cfg.latencyMax);
  std::uniform_real_distribution<double> join(0.0, cfg.joinSpread);
  for (std::size_t i = 0; i < n; ++i) {
    Peer& p = peers[i];
    p.sim = this;
    p.index = static_cast<std::uint32_t>(i);
    p.seeder = i == 0;
    p.corrupt = std::find(corruptAt.begin(), corruptAt.end(), i) != corruptAt.end();
    p.latency = lat(rng);
    if (p.seeder) {
      p.up = cfg.seederUp;
      p.down = cfg.seederDown;
    } else {  // classes by position, so shares are exact
      double x = (static_cast<double>(i - 1) + 0.5) / static_cast<double>(cfg.leechers) * shareSum;
      const PeerClass* cls = &cfg.classes.back();
      for (const auto& c : cfg.classes) {
        if (x < c.share) {
          cls = &c;
          break;
        }
        x -= c.share;
      }
      p.up = cls->up;
      p.down = cls->down;
    }
    for (std::size_t b = 0; b < 16; ++b) p.id[b] = static_cast<std::uint8_t>("-SIM0001-simpeer"[b]);
    for (int b = 0; b < 4; ++b) p.id[static_cast<std::size_t>(16 + b)] = static_cast<std::uint8_t>(i >> (8 * (3 - b)));
    wire::PeerId wid{};
    std::copy(p.id.begin(), p.id.end(), wid.begin());
    swarm::SessionOptions so = p.seeder && cfg.seederSession ? *cfg.seederSession : cfg.session;
    so.maxPiecePayload = std::min<std::size_t>(so.maxPiecePayload, 262144 - wire::kPieceHeaderBytes);
    std::vector<bool> have(cfg.chunkCount, p.seeder || p.corrupt);
    p.discovery.emplace(p.id, cfg.discovery);
    p.session = std::make_unique<swarm::Session>(fileId, wid, m, std::move(have), p, so, cfg.seed * 1000003 + i);
    const double t = p.seeder ? 0.0 : join(rng);
    at(fromSeconds(t), Event{.kind = Kind::kJoin, .peer = p.index});
  }
  if (cfg.seederLeavesAt >= 0) at(fromSeconds(cfg.seederLeavesAt), Event{.kind = Kind::kLeave, .peer = 0});

  std::uint64_t events = 0;
  const Time limit = fromSeconds(cfg.timeLimit);
  while (!queue.empty()) {
    Event e = queue.top();
    queue.pop();
    if (e.t > limit) break;
    now = e.t;
    ++events;
    if (trace && !midSnapshot && seconds(now) >= 40) {
      // The five slowest peers at 40 s: what they wait for.
      midSnapshot = true;
      snapshotLate();
      std::vector<std::pair<std::uint32_t, std::uint32_t>> slow;
      for (Peer& p : peers) {
        if (!p.seeder && p.session) slow.emplace_back(p.session->stats().chunksHave, p.index);
      }
      std::sort(slow.begin(), slow.end());
      std::uint32_t median = slow[slow.size() / 2].first;
      std::fprintf(stderr, "at 40 s: median peer has %u chunks\n", median);
      for (std::size_t i = 0; i < std::min<std::size_t>(3, slow.size()); ++i) {
        std::fprintf(stderr, "slow %u has %u: %s\n", slow[i].second, slow[i].first, lateState[slow[i].second].c_str());
      }
      lateState.clear();
    }
    switch (e.kind) {
      case Kind::kJoin: onJoin(peers[e.peer]); break;
      case Kind::kTick: onTick(e); break;
      case Kind::kDepart: onDepart(e); break;
      case Kind::kArrive: onArrive(e); break;
      case Kind::kDeliver: onDeliver(e); break;
      case Kind::kToTracker: onToTracker(e); break;
      case Kind::kFromTracker: onFromTracker(e); break;
      case Kind::kLinkOpen: onLinkOpen(e); break;
      case Kind::kLinkClose: closeLink(e.link); break;
      case Kind::kLeave: onLeave(peers[e.peer]); break;
      case Kind::kReadDone: onReadDone(peers[e.peer], e.msg); break;
      case Kind::kStoreDone: onStoreDone(peers[e.peer], e.msg); break;
    }
    if (e.kind == Kind::kStoreDone && allDone()) break;
  }

  SimResult r;
  r.fileBytes = static_cast<double>(m.storedSize());
  r.seederLeft = seederLeft;
  r.events = events;
  r.messages = messages;
  double sumUp = 0, dMin = 1e300;
  r.allCompleted = true;
  for (auto& p : peers) {
    PeerResult pr;
    pr.seeder = p.seeder;
    pr.corrupt = p.corrupt;
    pr.up = p.up;
    pr.down = p.down;
    pr.joined = seconds(p.joinedAt);
    pr.completed = p.completed;
    pr.stats = p.session->stats();
    pr.uploaded = pr.stats.uploaded;
    pr.downloaded = pr.stats.downloaded;
    r.badChunks += pr.stats.badChunks;
    r.bans += pr.stats.bans;
    r.timeouts += pr.stats.timeouts;
    r.wastedBytes += pr.stats.wasted;
    if (!p.seeder) {
      sumUp += p.up;
      dMin = std::min(dMin, p.down);
      if (!p.corrupt) {
        if (p.completed) {
          r.lastCompletion = std::max(r.lastCompletion, *p.completed);
        } else {
          r.allCompleted = false;
        }
      }
    }
    r.peers.push_back(pr);
  }
  if (!r.allCompleted) r.lastCompletion = cfg.timeLimit;
  const double F = r.fileBytes;
  const double N = static_cast<double>(cfg.leechers);
  r.fluidBound = std::max({F / cfg.seederUp, F / dMin, N * F / (cfg.seederUp + sumUp)});
  r.seederCopies = static_cast<double>(r.peers[0].uploaded) / F;
  r.ratio = r.lastCompletion / r.fluidBound;
  if (trace) {  // completion of the seeder's neighbours against the others
    std::vector<double> nb, rest;
    for (std::size_t i = 1; i < peers.size(); ++i) {
      if (!peers[i].completed) continue;
      (linkedToSeeder(peers[i]) ? nb : rest).push_back(*peers[i].completed);
    }
    auto med = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v.empty() ? 0.0 : v[v.size() / 2]; };
    std::fprintf(stderr, "seeder's neighbours: %zu, median done %.2f s; others %zu, median done %.2f s\n", nb.size(), med(nb),
                 rest.size(), med(rest));
  }
  if (trace) {  // the five last finishers
    std::vector<std::pair<double, std::size_t>> order;
    for (std::size_t i = 1; i < peers.size(); ++i) order.emplace_back(peers[i].completed.value_or(1e9), i);
    std::sort(order.rbegin(), order.rend());
    for (std::size_t k = 0; k < std::min<std::size_t>(5, order.size()); ++k) {
      const Peer& p = peers[order[k].second];
      const auto st = p.session->stats();
      std::fprintf(stderr, "straggler %zu done=%.2f joined=%.2f neighbours=%zu linkedToSeeder=%d timeouts=%u wasted=%llu latency=%.3f; %s\n",
                   order[k].second, order[k].first, seconds(p.joinedAt), p.links.size(),
                   linkedToSeeder(p) ? 1 : 0, st.timeouts, static_cast<unsigned long long>(st.wasted), p.latency,
                   lateState.count(p.index) ? lateState[p.index].c_str() : "");
    }
  }
  if (trace) {  // how the last chunks the seeder let out spread
    std::vector<std::pair<double, ChunkIndex>> byFirst;
    for (auto& [i, h] : holders) byFirst.emplace_back(h.first, i);
    std::sort(byFirst.begin(), byFirst.end());
    double spreadSum = 0;
    for (auto& [t, i] : byFirst) spreadSum += holders[i].all - holders[i].first;
    std::fprintf(stderr, "chunk spread (first leecher -> all): mean %.2f s\n", spreadSum / std::max(1.0, static_cast<double>(byFirst.size())));
    for (std::size_t k = byFirst.size() > 12 ? byFirst.size() - 12 : 0; k < byFirst.size(); ++k) {
      const auto& h = holders[byFirst[k].second];
      std::fprintf(stderr, "late chunk %u: first %.2f half %.2f all %.2f\n", byFirst[k].second, h.first, h.half, h.all);
    }
  }
  if (trace) {
    std::fprintf(stderr, "idle leecher uplinks (t > 8 s, sampled): nothing to give %llu, nobody asks %llu, requests in flight %llu, uploads held in session %llu\n",
                 static_cast<unsigned long long>(idleWhy[0]), static_cast<unsigned long long>(idleWhy[1]),
                 static_cast<unsigned long long>(idleWhy[2]), static_cast<unsigned long long>(idleWhy[3]));
  }
  for (std::size_t i = 0; i < upBySecond.size(); ++i) {
    std::fprintf(stderr, "t=%zu seeder %.0f%% leechers %.0f%% seeder-distinct %u\n", i, 100 * upBySecond[i].first / cfg.seederUp,
                 100 * upBySecond[i].second / std::max(sumUp, 1.0), distinctBySecond[i]);
  }
  r.wallSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wallStart).count();
  return r;
}

}  // namespace

SimResult runSimulation(const SimConfig& config) {
  Sim sim(config);
  return sim.run();
}

std::string summarize(const SimConfig& c, const SimResult& r) {
  std::vector<double> done;
  for (const auto& p : r.peers) {
    if (p.completed) done.push_back(*p.completed);
  }
  std::sort(done.begin(), done.end());
  auto pct = [&](double q) { return done.empty() ? 0.0 : done[static_cast<std::size_t>(q * static_cast<double>(done.size() - 1))]; };
  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(3);
  o << "peers=" << c.leechers << " chunks=" << c.chunkCount << "x" << c.chunkSize << " F=" << r.fileBytes / 1e6 << "MB"
    << " completed=" << (r.allCompleted ? "all" : "NOT all") << " last=" << r.lastCompletion << "s"
    << " bound=" << r.fluidBound << "s ratio=" << r.ratio << " seederCopies=" << r.seederCopies << " earlyRepeats=" << r.peers[0].stats.earlyRepeats
    << " bad=" << r.badChunks << " bans=" << r.bans << " timeouts=" << r.timeouts
    << " wasted=" << static_cast<double>(r.wastedBytes) / r.fileBytes << "F"
    << " done(p10/p50/p90)=" << pct(0.1) << "/" << pct(0.5) << "/" << pct(0.9)
    << " events=" << r.events << " messages=" << r.messages << " wall=" << r.wallSeconds << "s";
  return o.str();
}

}  // namespace p2pcdn::sim
