#include "node/node.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "core/blake3.hpp"
#include "core/hex.hpp"
#include "node/store_worker.hpp"
#include "node/ws_client.hpp"
#include "signaling/signaling.hpp"
#include "swarm/session.hpp"
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

// A link to one peer for one file. Which links to make and keep is the
// file's swarm::Discovery's; the node holds the links themselves.
struct Peer {
  std::uint64_t key = 0;
  std::unique_ptr<transport::PeerLink> link;
  std::optional<Id20> remotePeerId;  // known once offered to us or answered
  std::string offerSdp;              // our gathered offer, until it goes to the tracker
  bool opened = false;
  transport::LinkStats linkStats;    // last full report (rtt, candidate types)
};

struct FileState {
  FileId id;
  Id20 infoHash{};
  std::unique_ptr<swarm::SessionHost> host;  // Node::Impl::Host
  std::unique_ptr<swarm::Session> session;
  std::optional<swarm::Discovery> discovery;
  bool wanted = false;  // fetching
  bool serving = true;
  FetchEvents events;
  std::map<std::uint64_t, std::shared_ptr<Peer>> peers;

  bool complete() const { return session->complete(); }
  const std::optional<Manifest>& manifest() const { return session->manifest(); }
  bool leeching() const { return wanted && !complete(); }
};

static swarm::Time nowTime() { return Clock::now().time_since_epoch(); }

// How often the node runs the sessions' and discovery's timers (choking,
// time-outs, rate limits, announces, offer lifetimes).
constexpr std::chrono::milliseconds kTickPeriod{100};
// How often link stats (RTT, candidate types) are refreshed for peerStats().
constexpr std::chrono::seconds kLinkStatsPeriod{5};
// A dropped link is kept until its close completes (its GOODBYE, queued just
// before, goes out first), at most this long.
constexpr std::chrono::seconds kClosingLimit{6};

struct Node::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& ctx, ChunkStorage& s, transport::LinkFactory& f, NodeOptions o)
      : io(ctx), rawStore(s), store(s), links(f), opts(std::move(o)), tickTimer(ctx) {
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
    // Reads (with their re-hash) and writes run on the store worker; the
    // completions come back to the loop as posted events.
    void readChunk(ChunkIndex index) override {
      impl->onWorker(fid, [index](ChunkStorage& store, const FileId& f, const Completions& done) {
        store.getChunk(f, index, ReadOptions{.verify = true}, [index, done](Result<Bytes> r) {
          done([index, r = std::move(r)](swarm::Session& s) mutable { s.onChunkRead(index, std::move(r), nowTime()); });
        });
      }, [index](swarm::Session& s, const Error& e) { s.onChunkRead(index, fail(e), nowTime()); });
    }
    void storeChunk(ChunkIndex index, Bytes data) override {
      auto shared = std::make_shared<Bytes>(std::move(data));
      impl->onWorker(fid, [index, shared](ChunkStorage& store, const FileId& f, const Completions& done) {
        store.storeChunk(f, index, *shared, [index, done, shared](Status st) {
          done([index, st = std::move(st)](swarm::Session& s) mutable { s.onChunkStored(index, std::move(st), nowTime()); });
        });
      }, [index](swarm::Session& s, const Error& e) { s.onChunkStored(index, fail(e), nowTime()); });
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

  // Runs `task` on the store worker; it hands `done` what to do with the
  // file's session back on the loop (nothing if the file is gone by then).
  // A full worker queue fails the operation at once (`refused`, posted).
  using SessionTask = std::function<void(swarm::Session&)>;
  using Completions = std::function<void(SessionTask)>;
  void onWorker(const FileId& fid, std::function<void(ChunkStorage&, const FileId&, const Completions&)> task,
                std::function<void(swarm::Session&, const Error&)> refused) {
    std::weak_ptr<Impl> weak = shared_from_this();
    Completions done = [weak, fid, io = &io, delay = opts.storeDelay](SessionTask then) {
      auto run = [weak, fid, then = std::move(then)] {
        auto self = weak.lock();
        if (!self) return;
        if (auto it = self->files.find(fid); it != self->files.end()) then(*it->second.session);
      };
      if (delay.count() == 0) return asio::post(*io, std::move(run));
      asio::post(*io, [io, delay, run = std::move(run)]() mutable {
        auto timer = std::make_shared<asio::steady_timer>(*io, delay);
        timer->async_wait([timer, run = std::move(run)](boost::system::error_code) { run(); });
      });
    };
    ChunkStorage* st = &rawStore;
    const bool queued = worker.post([st, fid, task = std::move(task), done] { task(*st, fid, done); });
    if (!queued) {
      done([refused = std::move(refused)](swarm::Session& s) {
        refused(s, Error(Errc::kBackPressure, "store", "the store worker's queue is full"));
      });
    }
  }

  asio::io_context& io;
  ChunkStorage& rawStore;
  BlockingStorage store;
  transport::LinkFactory& links;
  NodeOptions opts;
  Id20 peerId{};
  std::unique_ptr<WsClient> tracker;
  asio::steady_timer tickTimer;
  std::map<FileId, FileState> files;
  std::set<Id20> banned;  // peers that sent chunks failing verification: never connected again
  std::uint64_t nextPeerKey = 1;
  bool stopped = false;
  std::mt19937 rng{std::random_device{}()};
  Clock::time_point lastLinkStats{};
  // Dropped links whose close has not completed, and when to give up on it.
  std::vector<std::pair<std::shared_ptr<Peer>, Clock::time_point>> closing;
  // Last: destroyed first, so no store task runs once the rest is gone.
  StoreWorker worker;

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
    return {};
  }

  void stop(std::function<void()> done) {
    stopped = true;
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

  // Runs the sessions' and discovery's timers: drops links that never
  // opened in time, sends gathered offers, announces when discovery says so.
  void tick() {
    const auto now = Clock::now();
    const swarm::Time t = nowTime();
    const bool refreshStats = now - lastLinkStats > kLinkStatsPeriod;
    if (refreshStats) lastLinkStats = now;
    std::erase_if(closing, [&](const auto& c) {
      return !c.first->link || c.first->link->state() == transport::LinkState::kClosed || now > c.second;
    });
    for (auto& [id, f] : files) {
      if (refreshStats) {
        for (auto& [k, p] : f.peers) {
          if (p->opened && p->link) requestLinkStats(f, *p);
        }
      }
      f.session->tick(t);
      auto d = f.discovery->tick(t, swarmView(f));
      for (const auto& drop : d.drops) dropPeer(f, drop.key, std::string(drop.why));
      if (d.sendOffers) sendOffers(f);
      if (d.announce != swarm::Announce::kNo) announce(f, signaling::Event::kNone, d.announce == swarm::Announce::kQuick);
    }
  }

  swarm::SwarmView swarmView(const FileState& f) const {
    swarm::SwarmView v;
    v.member = f.serving || f.wanted;
    v.leeching = f.leeching();
    v.connected = f.session->stats().peers;
    // usefulPeers() is O(peers x chunks); it only matters with enough peers.
    if (v.leeching && v.connected >= f.discovery->options().maxPeers / 2) v.useful = f.session->usefulPeers();
    return v;
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
    f.discovery.emplace(peerId, opts.discovery);
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
    // As in dropPeer: close() lets the GOODBYEs out first, and each link is
    // kept until its close completes; its events are ignored (the file is gone).
    for (auto& [k, p] : f.peers) {
      if (!p->link) continue;
      p->link->close();
      closing.emplace_back(p, Clock::now() + kClosingLimit);
    }
    files.erase(it);
  }

  // ---- tracker --------------------------------------------------------------
  // first: a (re)connection to the tracker, which also restarts the back-off.
  void announceAll(bool first) {
    for (auto& [id, f] : files) {
      if (!f.serving && !f.wanted) continue;
      if (first) f.discovery->trackerConnected();
      announce(f, first ? signaling::Event::kStarted : signaling::Event::kNone);
    }
  }

  std::uint64_t left(const FileState& f) const {
    auto st = f.session->stats();
    if (!st.haveManifest) return 1;  // unknown, but not zero: we are a leecher
    return st.bytesTotal - st.bytesVerified;
  }

  // False when there is no tracker connection to announce on. A leecher's
  // announce is followed by the offers discovery asks for (sent once gathered).
  bool announce(FileState& f, signaling::Event event, bool quick = false) {
    if (!tracker || !tracker->connected()) return false;
    signaling::AnnounceRequest msg = baseAnnounce(f);
    msg.event = event;
    tracker->send(signaling::encodeClientMessage(msg));
    const bool leeching = f.leeching() && event != signaling::Event::kStopped;
    const std::size_t offers = f.discovery->announced(nowTime(), leeching, quick);
    for (std::size_t i = 0; i < offers; ++i) makeOffer(f);
    if (leeching) trace("announce with " + std::to_string(offers) + " offers, " + std::to_string(f.peers.size()) + " links");
    return true;
  }

  void sendOffers(FileState& f) {
    if (!tracker) return;
    signaling::AnnounceRequest msg = baseAnnounce(f);
    auto flush = [&] {
      if (msg.offers.empty()) return;
      msg.numwant = static_cast<std::uint32_t>(msg.offers.size());
      trace("sent " + std::to_string(msg.offers.size()) + " offers");
      tracker->send(signaling::encodeClientMessage(msg));
      msg.offers.clear();
    };
    for (const auto& o : f.discovery->takeOfferBatch(nowTime())) {
      auto q = f.peers.find(o.key);
      if (q == f.peers.end()) continue;
      msg.offers.push_back({o.offerId, {"offer", std::move(q->second->offerSdp)}});
      if (msg.offers.size() == signaling::kMaxOffers) flush();
    }
    flush();
  }

  signaling::AnnounceRequest baseAnnounce(const FileState& f) const {
    auto st = f.session->stats();
    signaling::AnnounceRequest a;
    a.infoHash = f.infoHash;
    a.peerId = peerId;
    a.numwant = static_cast<std::uint32_t>(opts.discovery.offersPerAnnounce);
    a.uploaded = st.uploaded;
    a.downloaded = st.downloaded;
    a.left = left(f);
    return a;
  }

  void makeOffer(FileState& f) {
    Id20 offerId{};
    for (auto& b : offerId) b = static_cast<std::uint8_t>(rng());
    auto key = std::make_shared<std::uint64_t>(0);
    auto peer = newPeer(f, transport::Role::kOfferer, [this, fid = f.id, key](std::string sdp) {
      auto it = files.find(fid);
      if (it == files.end()) return;
      FileState& file = it->second;
      auto q = file.peers.find(*key);
      if (q == file.peers.end()) return;  // dropped while gathering
      q->second->offerSdp = std::move(sdp);
      if (file.discovery->offerGathered(*key, nowTime())) sendOffers(file);
    });
    if (!peer) return;
    *key = peer->key;
    f.discovery->offerMade(peer->key, offerId, nowTime());
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
      auto d = f->discovery->onOffer(nowTime(), offer->peerId);
      if (d.replaces) dropPeer(*f, *d.replaces, "not open, superseded by the peer's new offer");
      trace("offer from " + shortId(offer->peerId) + ": " + std::string(d.why));
      if (d.answer) onRemoteOffer(*f, offer->peerId, offer->offerId, offer->offer.sdp);
    } else if (auto* answer = std::get_if<signaling::RelayedAnswer>(&*msg)) {
      FileState* f = fileBySwarm(answer->infoHash);
      if (!f) return;
      auto d = f->discovery->onAnswer(nowTime(), answer->offerId, answer->peerId, banned.count(answer->peerId) != 0);
      for (const auto& drop : d.drops) dropPeer(*f, drop.key, std::string(drop.why));
      if (!d.apply) return;
      auto p = f->peers.find(*d.apply);
      if (p == f->peers.end()) return;
      trace("answer from " + shortId(answer->peerId));
      p->second->remotePeerId = answer->peerId;
      if (auto st = p->second->link->acceptAnswer(answer->answer.sdp); !st) dropPeer(*f, p->first, "bad answer");
    }
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
      it->second.discovery->answerSent(*key, nowTime());
      signaling::AnnounceRequest msg;
      msg.infoHash = it->second.infoHash;
      msg.peerId = peerId;
      msg.answer = signaling::AnswerEntry{from, offerId, {"answer", std::move(answer)}};
      tracker->send(signaling::encodeClientMessage(msg));
    });
    if (!peer) return;
    *key = peer->key;
    peer->remotePeerId = from;
    f.discovery->answering(peer->key, from, nowTime());
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
      p.opened = true;
      file.discovery->opened(p.key, nowTime());
      self.trace("link " + std::to_string(p.key) + (p.remotePeerId ? " to " + shortId(*p.remotePeerId) : std::string()) + " open");
      file.session->addPeer(p.key, nowTime());
    });
    ev.onMessage = with([](Impl&, FileState& file, Peer& p, Bytes m) { file.session->onMessage(p.key, m, nowTime()); });
    ev.onBufferedAmountLow = with([](Impl&, FileState& file, Peer& p) { file.session->onWritable(p.key, nowTime()); });
    ev.onClosed = with([](Impl& self, FileState& file, Peer& p, const Error& e) {
      file.discovery->closed(p.key, nowTime(), e.code() != Errc::kOk, file.leeching());
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
            (peer->opened ? " (open)" : " (not open)") + ": " + why);
    }
    f.peers.erase(it);
    f.discovery->remove(key);
    // close() lets queued data (a GOODBYE) out before the stream is reset;
    // the link is kept until that completes (its events are ignored: the
    // peer is gone), at most kClosingLimit.
    if (peer->link) {
      peer->link->close();
      closing.emplace_back(peer, Clock::now() + kClosingLimit);
    }
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
