#include "node/node.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>

#include "core/blake3.hpp"
#include "core/hex.hpp"
#include "node/ws_client.hpp"
#include "signaling/signaling.hpp"
#include "wire/fragment.hpp"
#include "wire/wire.hpp"

namespace p2pcdn::node {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// The tracker protocol (WebTorrent's, docs/signaling.md) is encoded and
// decoded by signaling/; the node only decides what to say.
using Id20 = signaling::Id20;

}  // namespace

std::array<std::uint8_t, 20> swarmKey(const FileId& id) { return signaling::swarmKey(id); }

// ---- Peers and files --------------------------------------------------------

// A link to one peer for one file. The wire protocol on it is the session's.
struct Peer {
  std::uint64_t key = 0;
  Clock::time_point created = Clock::now();
  bool offerer = false;
  std::optional<Clock::time_point> offerSent;  // our offer went to the tracker (ICE gathering done)
  std::optional<Clock::time_point> described;  // offer and answer both known (answer sent or applied)
  std::optional<Clock::time_point> opened;
  bool gathering = false;  // our offer, its ICE gathering not done yet
  std::unique_ptr<transport::PeerLink> link;
  std::optional<Id20> remotePeerId;
  transport::LinkStats linkStats;  // last full report (rtt, candidate types)

  bool isOpen() const { return opened.has_value(); }
};

struct FileState {
  FileId id;
  Id20 infoHash{};
  std::unique_ptr<swarm::SessionHost> host;  // Node::Impl::Host
  std::unique_ptr<swarm::Session> session;
  bool wanted = false;  // fetching
  bool serving = true;
  FetchEvents events;
  std::map<std::uint64_t, std::shared_ptr<Peer>> peers;
  Clock::time_point lastAnnounce{};
  int quickAnnounces = 0;  // re-announces while a leecher lacks peers (back-off)
  // Offers of one announce go to the tracker together, once all have
  // gathered, so it hands them to distinct peers (sent one by one, they went
  // to random peers each: two or three offers to the same peer, none to another).
  std::vector<signaling::OfferEntry> offerBatch;
  Clock::time_point batchStarted{};

  bool complete() const { return session->complete(); }
  const std::optional<Manifest>& manifest() const { return session->manifest(); }
};

static swarm::Time nowTime() { return Clock::now().time_since_epoch(); }

// An offer nobody answered within this long is withdrawn (its link closed).
// Answers arrive within a round trip through the tracker (~0.1 s on a LAN,
// a second or two across the internet); an offer held longer only blocks a
// peer slot. (15 s filled a leecher's table with its own dead offers during
// quick re-announces, and it then refused the other leechers' offers.)
constexpr std::chrono::seconds kOfferLifetime{5};
constexpr std::chrono::seconds kGatherLimit{20};
// A link that has not opened this long after it was made is closed, whichever
// side made it (an answer whose offerer went away otherwise held a slot, and
// blocked new offers from that peer, until ICE gave up).
constexpr std::chrono::seconds kConnectLimit{15};
// A link to a peer that is still not open this long after offer and answer
// were exchanged gives way to a newer one with the same peer (an offer from
// it, or its answer to ours). Seen on loopback: one side's channel opened and
// failed at once while the other side never saw it open or close; that
// half-open link then blocked both the peer's new offers ("linked already")
// and, through the glare rule, the new link to it. The limit is 3x the
// slowest of the last links to open (offer/answer exchanged -> open: 5-40 ms
// on loopback, ~6 round trips across the internet), within these bounds,
// and kHalfOpenDefault before any link opened.
constexpr std::chrono::milliseconds kHalfOpenMin{250};
constexpr std::chrono::milliseconds kHalfOpenMax{3000};
constexpr std::chrono::milliseconds kHalfOpenDefault{1000};
constexpr std::size_t kOpenDelaysKept = 16;
// Offers that gathered are sent at the latest this long after the announce,
// even if others of the batch are still gathering.
constexpr std::chrono::milliseconds kBatchWait{500};
// How often the node runs the sessions' timers (choking, time-outs, rate limits).
constexpr std::chrono::milliseconds kTickPeriod{100};
// How often link stats (RTT, candidate types) are refreshed for peerStats().
constexpr std::chrono::seconds kLinkStatsPeriod{5};

struct Node::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& ctx, ChunkStorage& s, transport::LinkFactory& f, NodeOptions o)
      : io(ctx), store(s), links(f), opts(std::move(o)), announceTimer(ctx), tickTimer(ctx) {
    std::random_device rd;
    for (auto& b : peerId) b = static_cast<std::uint8_t>(rd());
    const char prefix[] = "-PC0001-";  // readable prefix, like BitTorrent client ids
    std::copy_n(prefix, 8, peerId.begin());
    opts.swarm.maxPiecePayload = wire::maxPiecePayload(opts.link.maxMessageSize);
  }

  void trace(const std::string& what) const {
    if (opts.trace) opts.trace(what);
  }
  static std::string shortId(const Id20& id) { return toHex(ByteView(id.data(), id.size())).substr(16, 8); }

  // The session's I/O for one file.
  struct Host : swarm::SessionHost {
    Impl* impl;
    FileId fid;
    Host(Impl* i, const FileId& f) : impl(i), fid(f) {}
    FileState& file() { return impl->files.at(fid); }
    Status send(swarm::PeerKey key, ByteView message) override {
      auto& f = file();
      auto it = f.peers.find(key);
      if (it == f.peers.end() || !it->second->link) return fail(Errc::kCancelled, "send", "peer gone");
      return it->second->link->send(message);
    }
    void disconnect(swarm::PeerKey key) override {
      // Not from inside the session's call: the link closes on the next turn
      // of the loop, after the GOODBYE has been queued.
      std::weak_ptr<Impl> weak = impl->shared_from_this();
      asio::post(impl->io, [weak, fid = fid, key] {
        if (auto self = weak.lock()) {
          if (auto it = self->files.find(fid); it != self->files.end()) self->dropPeer(it->second, key, "session disconnect");
        }
      });
    }
    Result<Bytes> readChunk(ChunkIndex index) override {
      return impl->store.getChunk(fid, index, ReadOptions{.verify = true});
    }
    std::optional<std::size_t> buffered(swarm::PeerKey key) const override {
      const auto& peers = impl->files.at(fid).peers;
      auto it = peers.find(key);
      if (it == peers.end() || !it->second->link) return std::nullopt;
      return it->second->link->bufferedAmount();
    }
    void notifyWhenBufferedBelow(swarm::PeerKey key, std::size_t bytes) override {
      auto& peers = file().peers;
      if (auto it = peers.find(key); it != peers.end() && it->second->link) it->second->link->notifyWhenBufferedBelow(bytes);
    }
    Status storeChunk(ChunkIndex index, ByteView data) override { return impl->store.storeChunk(fid, index, data); }
    Status storeManifest(const Manifest& m) override {
      auto id = impl->store.storeManifest(m, /*pinned=*/true);
      if (!id) return fail(id.error());
      return {};
    }
    void onManifest(const Manifest& m) override {
      auto& f = file();
      (void)impl->store.setPinned(fid, true);
      if (f.events.onManifest) f.events.onManifest(m);
    }
    void onChunk(ChunkIndex index) override {
      if (auto& cb = file().events.onChunk) cb(index);
    }
    void onComplete() override {
      auto& f = file();
      f.wanted = false;
      impl->announce(f, signaling::Event::kCompleted);
      if (f.events.onComplete) asio::post(impl->io, f.events.onComplete);
    }
    void onBanned(swarm::PeerKey, const wire::PeerId& id) override {
      Id20 banned{};
      std::copy(id.begin(), id.end(), banned.begin());
      impl->banned.insert(banned);
    }
    void onError(const Error& e) override {
      if (auto& cb = file().events.onError) cb(e);
    }
  };

  asio::io_context& io;
  BlockingStorage store;
  transport::LinkFactory& links;
  NodeOptions opts;
  Id20 peerId{};
  std::unique_ptr<WsClient> tracker;
  asio::steady_timer announceTimer, tickTimer;
  std::map<FileId, FileState> files;
  std::map<Id20, std::pair<FileId, std::uint64_t>> pendingOffers;  // offer_id -> (file, peer key)
  std::set<Id20> banned;  // peers that sent chunks failing verification: never connected again
  std::uint64_t nextPeerKey = 1;
  bool stopped = false;
  std::mt19937 rng{std::random_device{}()};
  std::deque<Clock::duration> openDelays;  // offer/answer exchanged -> open, of the last links
  Clock::time_point lastLinkStats{};

  // ---- lifecycle ------------------------------------------------------------
  Status start() {
    auto url = parseWsUrl(opts.trackerUrl);
    if (!url) return fail(url.error());
    std::weak_ptr<Impl> weak = shared_from_this();
    WsClient::Events ev;
    ev.onConnected = [weak] {
      if (auto self = weak.lock()) self->announceAll(true);
    };
    ev.onMessage = [weak](std::string text) {
      if (auto self = weak.lock()) self->onTrackerMessage(text);
    };
    tracker = std::make_unique<WsClient>(io, *url, std::move(ev));
    tracker->start();
    scheduleTick();
    scheduleAnnounce();
    return {};
  }

  void stop(std::function<void()> done) {
    stopped = true;
    announceTimer.cancel();
    tickTimer.cancel();
    for (auto& [id, f] : files) f.session->goodbyeAll(wire::GoodbyeReason::kShutdown, "shutting down");
    if (tracker) tracker->stop();
    // Give GOODBYEs a moment to leave before the links are torn down.
    auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(200));
    auto self = shared_from_this();
    timer->async_wait([self, timer, done = std::move(done)](auto) {
      for (auto& [id, f] : self->files) {
        for (auto& [k, p] : f.peers) {
          if (p->link) p->link->close();
        }
        f.peers.clear();
      }
      if (done) done();
    });
  }

  void scheduleTick() {
    tickTimer.expires_after(kTickPeriod);
    std::weak_ptr<Impl> weak = shared_from_this();
    tickTimer.async_wait([weak](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopped) return;
      self->tick();
      self->scheduleTick();
    });
  }

  void scheduleAnnounce() {
    announceTimer.expires_after(opts.announceInterval);
    std::weak_ptr<Impl> weak = shared_from_this();
    announceTimer.async_wait([weak](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopped) return;
      self->announceAll(false);
      self->scheduleAnnounce();
    });
  }

  // Runs the sessions' timers; drops offers nobody answered; a leecher without
  // peers re-announces with back-off (2 s, 4 s, ... up to the announce
  // interval) instead of waiting a whole interval.
  void tick() {
    auto now = Clock::now();
    bool refreshStats = now - lastLinkStats > kLinkStatsPeriod;
    if (refreshStats) lastLinkStats = now;
    for (auto& [id, f] : files) {
      std::vector<std::uint64_t> stale;
      for (auto& [k, p] : f.peers) {
        // An offer is withdrawn kOfferLifetime after it went out (gathering
        // may take a while with STUN: at most kGatherLimit before that).
        if (p->isOpen()) {
          if (refreshStats && p->link) requestLinkStats(f, *p);
          continue;
        }
        const bool unanswered = p->offerer && !p->remotePeerId;
        if ((unanswered && (p->offerSent ? now - *p->offerSent > kOfferLifetime : now - p->created > kGatherLimit)) ||
            (!unanswered && now - p->created > kConnectLimit)) {
          stale.push_back(k);
        }
      }
      for (auto k : stale) dropPeer(f, k, "never opened (offer unanswered or connect limit)");
      if (!f.offerBatch.empty() && (gatheringOffers(f) == 0 || now - f.batchStarted > kBatchWait)) sendOffers(f);
      f.session->tick(nowTime());
      const std::size_t connected = f.session->stats().peers;
      // No peer, none with anything we lack, or fewer than half the slots
      // filled: look for more, with back-off (1 s, 2 s, ... the interval).
      // (In the simulator, leechers left with 7-10 peers were the last to
      // finish: 1000 peers went from 1.27x to 1.17x the fluid bound.)
      // The tracker's counts are no guide here: in a flash crowd the first
      // announce sees an almost empty swarm (1 seeder -> 3 leechers that
      // started together sometimes never linked to each other: leecher share 0 %).
      const bool fewPeers = connected < opts.maxPeersPerFile / 2;
      if (f.wanted && !f.complete() && (connected == 0 || fewPeers || f.session->usefulPeers() == 0)) {
        auto wait = std::min<Clock::duration>(std::chrono::seconds(1) * (1 << std::min(f.quickAnnounces, 5)),
                                              opts.announceInterval);
        // Count only announces that went out: while the tracker is away the
        // back-off must not grow, or the first peer is found an interval late.
        if (now - f.lastAnnounce >= wait && announce(f, signaling::Event::kNone)) ++f.quickAnnounces;
      } else if (connected > 0 && f.wanted) {
        f.quickAnnounces = 0;
      }
    }
  }

  void requestLinkStats(FileState& f, Peer& p) {
    std::weak_ptr<Impl> weak = shared_from_this();
    p.link->requestStats([weak, fid = f.id, key = p.key](transport::LinkStats st) {
      auto self = weak.lock();
      if (!self) return;
      auto it = self->files.find(fid);
      if (it == self->files.end()) return;
      if (auto q = it->second.peers.find(key); q != it->second.peers.end()) q->second->linkStats = std::move(st);
    });
  }

  // ---- files ----------------------------------------------------------------
  Result<FileState*> addFile(const FileId& id) {
    auto it = files.find(id);
    if (it != files.end()) return &it->second;
    std::optional<Manifest> manifest;
    std::vector<bool> have;
    if (auto m = store.getManifest(id)) {
      auto present = store.presentChunks(id);
      if (!present) return fail(present.error());
      manifest = std::move(*m);
      have = std::move(*present);
    } else if (m.error().code() != Errc::kNotFound) {
      return fail(m.error());
    }
    FileState& f = files[id];
    f.id = id;
    f.infoHash = swarmKey(id);
    f.host = std::make_unique<Host>(this, id);
    wire::PeerId self{};
    std::copy(peerId.begin(), peerId.end(), self.begin());
    f.session = std::make_unique<swarm::Session>(id, self, std::move(manifest), std::move(have), *f.host, opts.swarm, rng());
    for (const Id20& b : banned) {
      wire::PeerId w{};
      std::copy(b.begin(), b.end(), w.begin());
      f.session->banPeerId(w);
    }
    return &f;
  }

  Status seed(const FileId& id) {
    auto f = addFile(id);
    if (!f) return fail(f.error());
    if (!(*f)->manifest()) return fail(Errc::kNotFound, "seed", "no manifest for " + id.hex() + " in the store");
    (*f)->serving = true;
    (*f)->session->setServing(true);
    announce(**f, signaling::Event::kStarted);
    return {};
  }

  void stopSeeding(const FileId& id) {
    auto it = files.find(id);
    if (it == files.end()) return;
    FileState& f = it->second;
    f.serving = false;
    f.session->setServing(false);
    if (!f.wanted) {
      announce(f, signaling::Event::kStopped);
      f.session->goodbyeAll(wire::GoodbyeReason::kNormal, "no longer seeding");
      std::vector<std::uint64_t> keys;
      for (auto& [k, p] : f.peers) keys.push_back(k);
      std::weak_ptr<Impl> weak = shared_from_this();
      asio::post(io, [weak, id, keys] {
        auto self = weak.lock();
        if (!self) return;
        if (auto it2 = self->files.find(id); it2 != self->files.end()) {
          for (auto k : keys) self->dropPeer(it2->second, k, "stopped serving");
        }
      });
    }
  }

  Status fetch(const FileId& id, std::optional<Manifest> manifest, FetchEvents events) {
    auto fr = addFile(id);
    if (!fr) return fail(fr.error());
    FileState& f = **fr;
    if (manifest && !f.manifest()) {
      auto stored = store.storeManifest(*manifest, /*pinned=*/true);
      if (!stored) return fail(stored.error());
      if (*stored != id) return fail(Errc::kIntegrity, "fetch", "manifest does not match the file id");
      auto present = store.presentChunks(id);
      if (!present) return fail(present.error());
      P2PCDN_TRY(f.session->setManifest(*manifest, std::move(*present), nowTime()));
    }
    f.events = std::move(events);
    f.wanted = true;
    if (f.complete() && f.events.onManifest) f.events.onManifest(*f.manifest());
    // Fires onManifest (if known and not complete) and onComplete (if complete).
    f.session->setWanted(true, nowTime());
    announce(f, signaling::Event::kStarted);
    return {};
  }

  void setStreaming(const FileId& id, bool on, ChunkIndex cursor, std::size_t lookahead) {
    if (auto it = files.find(id); it != files.end()) it->second.session->setStreaming(on, cursor, lookahead, nowTime());
  }

  void forget(const FileId& id) {
    auto it = files.find(id);
    if (it == files.end()) return;
    FileState& f = it->second;
    announce(f, signaling::Event::kStopped);
    f.session->goodbyeAll(wire::GoodbyeReason::kNormal, "file removed");
    std::erase_if(pendingOffers, [&](const auto& kv) { return kv.second.first == id; });
    // As in stop(): the links close once the GOODBYEs have had a moment to leave;
    // their events are ignored from now on (the file is gone).
    auto peers = std::make_shared<std::map<std::uint64_t, std::shared_ptr<Peer>>>(std::move(f.peers));
    files.erase(it);
    auto timer = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(200));
    timer->async_wait([timer, peers](auto) {
      for (auto& [k, p] : *peers) {
        if (p->link) p->link->close();
      }
    });
  }

  // ---- tracker --------------------------------------------------------------
  // first: a (re)connection to the tracker, which also restarts the back-off.
  void announceAll(bool first) {
    for (auto& [id, f] : files) {
      if (!f.serving && !f.wanted) continue;
      if (first) f.quickAnnounces = 0;
      announce(f, first ? signaling::Event::kStarted : signaling::Event::kNone);
    }
  }

  std::uint64_t left(const FileState& f) const {
    auto st = f.session->stats();
    if (!st.haveManifest) return 1;  // unknown, but not zero: we are a leecher
    return st.bytesTotal - st.bytesVerified;
  }

  // False when there is no tracker connection to announce on.
  bool announce(FileState& f, signaling::Event event) {
    if (!tracker || !tracker->connected()) return false;
    f.lastAnnounce = Clock::now();
    signaling::AnnounceRequest msg = baseAnnounce(f);
    msg.event = event;
    tracker->send(signaling::encodeClientMessage(msg));
    // Leechers make offers; the tracker hands each to another peer of the swarm.
    if (f.complete() || !f.wanted || event == signaling::Event::kStopped) return true;
    std::size_t room = opts.maxPeersPerFile > f.peers.size() ? opts.maxPeersPerFile - f.peers.size() : 0;
    std::size_t offers = std::min(room, opts.offersPerAnnounce);
    if (f.offerBatch.empty() && gatheringOffers(f) == 0) f.batchStarted = Clock::now();
    for (std::size_t i = 0; i < offers; ++i) makeOffer(f);
    trace("announce with " + std::to_string(offers) + " offers, " + std::to_string(f.peers.size()) + " links");
    return true;
  }

  void sendOffers(FileState& f) {
    if (!tracker) return;
    const auto now = Clock::now();
    signaling::AnnounceRequest msg = baseAnnounce(f);
    auto flush = [&] {
      if (msg.offers.empty()) return;
      msg.numwant = static_cast<std::uint32_t>(msg.offers.size());
      trace("sent " + std::to_string(msg.offers.size()) + " offers");
      tracker->send(signaling::encodeClientMessage(msg));
      msg.offers.clear();
    };
    for (auto& o : f.offerBatch) {
      // An offer whose link was closed while the batch waited is not sent.
      auto pend = pendingOffers.find(o.offerId);
      if (pend == pendingOffers.end()) continue;
      auto q = f.peers.find(pend->second.second);
      if (q == f.peers.end()) continue;
      q->second->offerSent = now;
      msg.offers.push_back(std::move(o));
      if (msg.offers.size() == signaling::kMaxOffers) flush();
    }
    flush();
    f.offerBatch.clear();
    f.batchStarted = now;
  }

  signaling::AnnounceRequest baseAnnounce(const FileState& f) const {
    auto st = f.session->stats();
    signaling::AnnounceRequest a;
    a.infoHash = f.infoHash;
    a.peerId = peerId;
    a.numwant = static_cast<std::uint32_t>(opts.offersPerAnnounce);
    a.uploaded = st.uploaded;
    a.downloaded = st.downloaded;
    a.left = left(f);
    return a;
  }

  void makeOffer(FileState& f) {
    Id20 offerId{};
    for (auto& b : offerId) b = static_cast<std::uint8_t>(rng());
    auto peer = newPeer(f, transport::Role::kOfferer, [this, fid = f.id, offerId](std::string sdp) {
      auto it = files.find(fid);
      if (it == files.end()) return;
      FileState& file = it->second;
      auto pend = pendingOffers.find(offerId);
      if (pend == pendingOffers.end()) return;  // dropped while gathering
      if (auto q = file.peers.find(pend->second.second); q != file.peers.end()) q->second->gathering = false;
      file.offerBatch.push_back({offerId, {"offer", std::move(sdp)}});
      if (gatheringOffers(file) == 0) sendOffers(file);
    });
    if (!peer) return;
    peer->offerer = true;
    pendingOffers[offerId] = {f.id, peer->key};
    peer->gathering = true;
    if (auto st = peer->link->createOffer(); !st) dropPeer(f, peer->key, "createOffer failed");
  }

  FileState* fileBySwarm(const Id20& infoHash) {
    for (auto& [id, fs] : files) {
      if (fs.infoHash == infoHash) return &fs;
    }
    return nullptr;
  }

  // Untrusted: decoded (with its bounds) by signaling/; anything else is ignored.
  void onTrackerMessage(const std::string& text) {
    auto msg = signaling::decodeTrackerMessage(text);
    if (!msg) return;
    if (auto* offer = std::get_if<signaling::RelayedOffer>(&*msg)) {
      FileState* f = fileBySwarm(offer->infoHash);
      if (!f || offer->peerId == peerId || banned.count(offer->peerId)) return;
      if (!f->serving && !f->wanted) return;
      if (Peer* old = linkTo(*f, offer->peerId)) {
        // A link the peer offered that has not opened gives way to its new
        // offer: the peer drops its older offer when our answer to the new
        // one arrives (see the answer below), so the two sides agree. (Held
        // for 3x the slowest open, a link whose offerer had already failed
        // it refused the peer's quick re-offer, and a flash-crowd round
        // ended with two leechers never linked.) A link we offered waits
        // for the half-open limit: the peer may be about to open it.
        const bool superseded = old->offerer ? halfOpen(*old) : freshOfferReplaces(*old);
        if (!superseded) {
          trace("offer from " + shortId(offer->peerId) + " ignored: linked already");
          return;
        }
        dropPeer(*f, old->key, old->offerer ? "half-open, superseded by a new offer" : "not open, superseded by the peer's new offer");
      }
      // Our own unanswered offers do not take a slot from a peer that calls us.
      if (f->peers.size() - unansweredOffers(*f) >= opts.maxPeersPerFile) {
        trace("offer from " + shortId(offer->peerId) + " ignored: full");
        return;
      }
      trace("offer from " + shortId(offer->peerId) + ": answering");
      onRemoteOffer(*f, offer->peerId, offer->offerId, offer->offer.sdp);
    } else if (auto* answer = std::get_if<signaling::RelayedAnswer>(&*msg)) {
      FileState* f = fileBySwarm(answer->infoHash);
      auto pend = pendingOffers.find(answer->offerId);
      if (!f || pend == pendingOffers.end()) return;
      auto [fid, key] = pend->second;
      pendingOffers.erase(pend);
      if (fid != f->id) return;
      auto p = f->peers.find(key);
      if (p == f->peers.end()) return;
      if (banned.count(answer->peerId)) {
        dropPeer(*f, key, "answer from a banned peer");
        return;
      }
      if (Peer* other = linkTo(*f, answer->peerId); other && other->offerer) {
        // Two offers of ours reached the peer and it answered this one: it
        // keeps one link per peer, so it dropped (or never had) the other.
        dropPeer(*f, other->key, "superseded: the peer answered our newer offer");
      } else if (other) {
        // Glare: we offered to each other at once and each answered the
        // other. Both sides keep the link offered by the lower peer id and
        // close the other one. (Each used to close its own offer, which
        // left no link at all: 1 -> 3 rounds where leechers never linked.)
        // A half-open link gives way to the new one.
        const bool stale = halfOpen(*other);
        if (!stale && (other->isOpen() || !(peerId < answer->peerId))) {
          dropPeer(*f, key, "glare: keep the other link");
          return;
        }
        dropPeer(*f, other->key, stale ? "half-open, superseded by an answer" : "glare: keep our offer");
      }
      trace("answer from " + shortId(answer->peerId));
      p->second->remotePeerId = answer->peerId;
      p->second->described = Clock::now();
      if (auto st = p->second->link->acceptAnswer(answer->answer.sdp); !st) dropPeer(*f, key, "bad answer");
    }
  }

  bool halfOpen(const Peer& p) const {
    if (p.isOpen() || !p.described) return false;
    Clock::duration limit = kHalfOpenDefault;
    if (!openDelays.empty()) limit = std::clamp<Clock::duration>(3 * slowestOpen(), kHalfOpenMin, kHalfOpenMax);
    return Clock::now() - *p.described > limit;
  }

  // Whether a link the peer offered us, not open yet, gives way to a newer
  // offer from it: at once while our answer has not gone out (the peer never
  // saw it), else once it is older than the slowest recent link took to open
  // (kHalfOpenMin before any opened), so that a re-announce does not restart
  // a link that is about to open.
  bool freshOfferReplaces(const Peer& p) const {
    if (p.isOpen()) return false;
    if (!p.described) return true;
    const Clock::duration limit = openDelays.empty() ? Clock::duration(kHalfOpenMin) : std::min<Clock::duration>(slowestOpen(), kHalfOpenMax);
    return Clock::now() - *p.described > limit;
  }

  Clock::duration slowestOpen() const { return *std::max_element(openDelays.begin(), openDelays.end()); }

  static std::size_t gatheringOffers(const FileState& f) {
    return static_cast<std::size_t>(std::count_if(f.peers.begin(), f.peers.end(), [](const auto& kv) { return kv.second->gathering; }));
  }

  static std::size_t unansweredOffers(const FileState& f) {
    std::size_t n = 0;
    for (const auto& [k, p] : f.peers) n += (p->offerer && !p->isOpen() && !p->remotePeerId) ? 1u : 0u;
    return n;
  }

  // The link (open or not) we have to `remote`, if any.
  static Peer* linkTo(const FileState& f, const Id20& remote) {
    for (const auto& [k, p] : f.peers) {
      if (p->remotePeerId && *p->remotePeerId == remote) return p.get();
    }
    return nullptr;
  }

  void onRemoteOffer(FileState& f, const Id20& from, const Id20& offerId, const std::string& sdp) {
    // The answer goes out only while its link is still ours (not dropped by
    // glare or superseded meanwhile).
    auto key = std::make_shared<std::uint64_t>(0);
    auto peer = newPeer(f, transport::Role::kAnswerer, [this, fid = f.id, from, offerId, key](std::string answer) {
      auto it = files.find(fid);
      if (it == files.end() || !tracker) return;
      auto q = it->second.peers.find(*key);
      if (q == it->second.peers.end()) return;
      q->second->described = Clock::now();
      signaling::AnnounceRequest msg;
      msg.infoHash = it->second.infoHash;
      msg.peerId = peerId;
      msg.answer = signaling::AnswerEntry{from, offerId, {"answer", std::move(answer)}};
      tracker->send(signaling::encodeClientMessage(msg));
    });
    if (!peer) return;
    *key = peer->key;
    peer->remotePeerId = from;
    if (auto st = peer->link->acceptOffer(sdp); !st) dropPeer(f, peer->key, "bad offer");
  }

  // ---- links ----------------------------------------------------------------
  std::shared_ptr<Peer> newPeer(FileState& f, transport::Role role, std::function<void(std::string)> onSdp) {
    auto peer = std::make_shared<Peer>();
    peer->key = nextPeerKey++;
    std::weak_ptr<Impl> weak = shared_from_this();
    FileId fid = f.id;
    std::uint64_t key = peer->key;
    auto with = [weak, fid, key](auto fn) {
      return [weak, fid, key, fn](auto&&... args) {
        auto self = weak.lock();
        if (!self) return;
        auto it = self->files.find(fid);
        if (it == self->files.end()) return;
        auto p = it->second.peers.find(key);
        if (p == it->second.peers.end()) return;
        auto hold = p->second;  // the handler may drop the peer
        fn(*self, it->second, *hold, std::forward<decltype(args)>(args)...);
      };
    };
    transport::LinkEvents ev;
    ev.onLocalDescription = [onSdp = std::move(onSdp)](std::string sdp) { onSdp(std::move(sdp)); };
    ev.onOpen = with([](Impl& self, FileState& file, Peer& p) {
      p.opened = Clock::now();
      if (p.described) {
        self.openDelays.push_back(*p.opened - *p.described);
        if (self.openDelays.size() > kOpenDelaysKept) self.openDelays.pop_front();
      }
      self.trace("link " + std::to_string(p.key) + (p.remotePeerId ? " to " + shortId(*p.remotePeerId) : std::string()) + " open");
      file.session->addPeer(p.key, nowTime());
    });
    ev.onMessage = with([](Impl&, FileState& file, Peer& p, Bytes m) { file.session->onMessage(p.key, m, nowTime()); });
    ev.onBufferedAmountLow = with([](Impl&, FileState& file, Peer& p) { file.session->onWritable(p.key, nowTime()); });
    ev.onClosed = with([](Impl& self, FileState& file, Peer& p, const Error& e) {
      // A link that failed while connecting or just after it opened: a
      // leecher looks for peers again at its next tick, rather than after
      // the re-announce back-off (the peer may still hold its half).
      const bool early = !p.opened || Clock::now() - *p.opened < std::chrono::seconds(2);
      if (e.code() != Errc::kOk && early && file.wanted && !file.complete()) {
        file.quickAnnounces = 0;
        file.lastAnnounce = {};  // as if it never announced: the tick's back-off has passed
      }
      self.dropPeer(file, p.key, "link closed: " + e.message());
    });
    asio::io_context* ioPtr = &io;
    auto link = links.create(role, opts.link, [ioPtr](std::function<void()> task) { asio::post(*ioPtr, std::move(task)); },
                             std::move(ev));
    if (!link) return nullptr;
    peer->link = std::move(*link);
    f.peers[peer->key] = peer;
    return peer;
  }

  void dropPeer(FileState& f, std::uint64_t key, const std::string& why) {
    auto it = f.peers.find(key);
    if (it == f.peers.end()) return;
    auto peer = it->second;
    if (opts.trace) {
      trace("drop link " + std::to_string(key) + (peer->remotePeerId ? " to " + shortId(*peer->remotePeerId) : std::string()) +
            (peer->isOpen() ? " (open)" : " (not open)") + ": " + why);
    }
    f.peers.erase(it);
    for (auto p = pendingOffers.begin(); p != pendingOffers.end();) {
      p = p->second.second == key ? pendingOffers.erase(p) : std::next(p);
    }
    if (peer->link) peer->link->close();
    // Keep the link alive until its close completes (events are ignored: the peer is gone).
    asio::post(io, [peer] {});
    f.session->removePeer(key, nowTime());
  }

  std::optional<FileProgress> progress(const FileId& id) const {
    auto it = files.find(id);
    if (it == files.end()) return std::nullopt;
    const FileState& f = it->second;
    auto st = f.session->stats();
    FileProgress out;
    out.fileId = id;
    out.haveManifest = st.haveManifest;
    out.bytesTotal = st.bytesTotal;
    out.chunksTotal = st.chunksTotal;
    out.bytesVerified = st.bytesVerified;
    out.chunksHave = st.chunksHave;
    out.chunksFetched = st.chunksFetched;
    out.peers = st.peers;
    out.bytesUploaded = st.uploaded;
    out.bytesDownloaded = st.downloaded;
    out.swarm = st;
    return out;
  }

  std::vector<NodePeerStats> peerStats() const {
    std::vector<NodePeerStats> out;
    auto now = nowTime();
    for (const auto& [id, f] : files) {
      for (const auto& [k, p] : f.peers) {
        auto s = f.session->peerStats(k, now);
        if (!s || !s->handshaken) continue;
        NodePeerStats n;
        n.fileId = id;
        n.peerId = toHex(s->peerId);
        n.swarm = *s;
        n.rttSeconds = p->linkStats.rttSeconds;
        n.localCandidateType = p->linkStats.localCandidateType;
        n.remoteCandidateType = p->linkStats.remoteCandidateType;
        out.push_back(std::move(n));
      }
    }
    return out;
  }
};

Node::Node(asio::io_context& io, ChunkStorage& storage, transport::LinkFactory& links, NodeOptions options)
    : impl_(std::make_shared<Impl>(io, storage, links, std::move(options))) {}
Node::~Node() = default;
Status Node::start() { return impl_->start(); }
void Node::stop(std::function<void()> done) { impl_->stop(std::move(done)); }
Status Node::seed(const FileId& id) { return impl_->seed(id); }
Status Node::fetch(const FileId& id, std::optional<Manifest> m, FetchEvents e) {
  return impl_->fetch(id, std::move(m), std::move(e));
}
std::optional<FileProgress> Node::progress(const FileId& id) const { return impl_->progress(id); }
std::vector<NodePeerStats> Node::peerStats() const { return impl_->peerStats(); }
void Node::stopSeeding(const FileId& id) { impl_->stopSeeding(id); }
void Node::setStreaming(const FileId& id, bool on, ChunkIndex cursor, std::size_t lookahead) {
  impl_->setStreaming(id, on, cursor, lookahead);
}
void Node::announceNow() {
  if (!impl_->stopped) impl_->announceAll(false);
}
void Node::forget(const FileId& id) { impl_->forget(id); }
std::string Node::peerIdHex() const { return toHex(impl_->peerId); }

}  // namespace p2pcdn::node
