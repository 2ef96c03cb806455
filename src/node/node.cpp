#include "node/node.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
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

struct Peer {
  std::uint64_t key = 0;
  Clock::time_point created = Clock::now();
  Clock::time_point lastSent = Clock::now(), lastHeard = Clock::now();
  bool offerer = false;
  std::unique_ptr<transport::PeerLink> link;
  bool open = false;
  bool handshaken = false;
  bool goodbyeSent = false;
  std::optional<Id20> remotePeerId;
  wire::PeerId remoteWireId{};
  std::uint32_t remoteCaps = 0;
  std::vector<bool> remoteHave;
  std::optional<Bytes> pendingBitfield;  // arrived before we knew the chunk count
  // Downloads from this peer.
  std::uint32_t nextRequestId = 1;
  struct Out {
    ChunkIndex index;
    wire::ChunkAssembler assembler;
    Clock::time_point sent;
  };
  std::map<std::uint32_t, Out> outstanding;
  std::optional<std::uint32_t> manifestRequest;
  std::optional<wire::ManifestAssembler> manifestAssembler;
  // Uploads to this peer: requests queued, served as the send buffer drains.
  struct Up {
    std::uint32_t requestId;
    ChunkIndex index;
    std::uint32_t offset, length;
    Bytes chunk;
    std::uint32_t sent = 0;  // bytes of [offset, offset+length) sent
  };
  std::deque<Up> uploads;
  std::deque<Bytes> control;  // small messages refused by back-pressure
  std::uint64_t bytesUp = 0, bytesDown = 0;
};

struct FileState {
  FileId id;
  Id20 infoHash{};
  std::optional<Manifest> manifest;
  std::vector<bool> have;
  std::uint32_t haveCount = 0;
  std::uint32_t fetched = 0;
  std::uint64_t bytesVerified = 0;
  bool wanted = false;  // fetching
  bool completeFired = false;
  FetchEvents events;
  std::map<std::uint64_t, std::shared_ptr<Peer>> peers;
  std::set<ChunkIndex> inFlight;  // requested from some peer
  std::uint64_t uploaded = 0, downloaded = 0;
  Clock::time_point lastAnnounce{};
  int quickAnnounces = 0;  // re-announces while a leecher has no peer (back-off)

  bool complete() const { return manifest && haveCount == manifest->chunkCount(); }
};

// An offer nobody answered within this long is withdrawn (its link closed).
constexpr std::chrono::seconds kOfferLifetime{15};
constexpr std::chrono::seconds kKeepAliveAfter{15};
constexpr std::chrono::seconds kIdleTimeout{60};

struct Node::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& ctx, ChunkStorage& s, transport::LinkFactory& f, NodeOptions o)
      : io(ctx), store(s), links(f), opts(std::move(o)), announceTimer(ctx), tickTimer(ctx) {
    std::random_device rd;
    for (auto& b : peerId) b = static_cast<std::uint8_t>(rd());
    const char prefix[] = "-PC0001-";  // readable prefix, like BitTorrent client ids
    std::copy_n(prefix, 8, peerId.begin());
  }

  asio::io_context& io;
  BlockingStorage store;
  transport::LinkFactory& links;
  NodeOptions opts;
  Id20 peerId{};
  std::unique_ptr<WsClient> tracker;
  asio::steady_timer announceTimer, tickTimer;
  std::map<FileId, FileState> files;
  std::map<Id20, std::pair<FileId, std::uint64_t>> pendingOffers;  // offer_id -> (file, peer key)
  std::uint64_t nextPeerKey = 1;
  bool stopped = false;
  std::mt19937 rng{std::random_device{}()};

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
    for (auto& [id, f] : files) {
      for (auto& [k, p] : f.peers) sendGoodbye(*p, wire::GoodbyeReason::kShutdown, "shutting down");
    }
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
    tickTimer.expires_after(std::chrono::milliseconds(500));
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

  // Re-issues requests that went unanswered too long; drops offers nobody
  // answered; a leecher without peers re-announces with back-off (2 s, 4 s,
  // ... up to the announce interval) instead of waiting a whole interval.
  void tick() {
    auto now = Clock::now();
    for (auto& [id, f] : files) {
      std::vector<std::uint64_t> stale;
      std::size_t connected = 0;
      for (auto& [k, p] : f.peers) {
        if (p->handshaken) ++connected;
        if (p->offerer && !p->open && now - p->created > kOfferLifetime) stale.push_back(k);
      }
      // Liveness (docs/protocol.md): KEEPALIVE after 15 s of our silence; a
      // peer silent for 60 s is dropped with GOODBYE idle-timeout.
      for (auto& [k, p] : f.peers) {
        if (!p->handshaken) continue;
        if (now - p->lastHeard > kIdleTimeout) {
          sendGoodbye(*p, wire::GoodbyeReason::kIdleTimeout, "silent for 60 s");
          stale.push_back(k);
        } else if (now - p->lastSent > kKeepAliveAfter) {
          (void)sendMsg(*p, wire::encode(wire::KeepAlive{}));
        }
      }
      for (auto k : stale) dropPeer(f, k);
      if (f.wanted && !f.complete() && connected == 0) {
        auto wait = std::min<Clock::duration>(std::chrono::seconds(2) * (1 << std::min(f.quickAnnounces, 5)),
                                              opts.announceInterval);
        // Count only announces that went out: while the tracker is away the
        // back-off must not grow, or the first peer is found an interval late.
        if (now - f.lastAnnounce >= wait && announce(f, signaling::Event::kNone)) ++f.quickAnnounces;
      } else if (connected > 0) {
        f.quickAnnounces = 0;
      }
      for (auto& [k, p] : f.peers) {
        for (auto it = p->outstanding.begin(); it != p->outstanding.end();) {
          if (now - it->second.sent > opts.requestTimeout) {
            (void)sendMsg(*p, wire::encode(wire::Cancel{it->first}));
            f.inFlight.erase(it->second.index);
            it = p->outstanding.erase(it);
          } else {
            ++it;
          }
        }
      }
      for (auto& [k, p] : f.peers) requestMore(f, *p);
    }
  }

  // ---- files ----------------------------------------------------------------
  Result<FileState*> addFile(const FileId& id) {
    auto [it, inserted] = files.try_emplace(id);
    FileState& f = it->second;
    if (inserted) {
      f.id = id;
      f.infoHash = swarmKey(id);
    }
    if (!f.manifest) {
      if (auto m = store.getManifest(id)) {
        P2PCDN_TRY(setManifest(f, *m, /*store=*/false));
      } else if (m.error().code() != Errc::kNotFound) {
        return fail(m.error());
      }
    }
    return &f;
  }

  Status setManifest(FileState& f, const Manifest& m, bool storeIt) {
    if (storeIt) {
      auto id = store.storeManifest(m, /*pinned=*/true);
      if (!id) return fail(id.error());
      if (*id != f.id) return fail(Errc::kIntegrity, "set manifest", "manifest does not match the file id");
    }
    auto present = store.presentChunks(f.id);
    if (!present) return fail(present.error());
    f.manifest = m;
    f.have = std::move(*present);
    f.haveCount = 0;
    f.bytesVerified = 0;
    for (ChunkIndex i = 0; i < f.have.size(); ++i) {
      if (f.have[i]) {
        ++f.haveCount;
        f.bytesVerified += m.storedChunkLength(i);
      }
    }
    return {};
  }

  Status seed(const FileId& id) {
    auto f = addFile(id);
    if (!f) return fail(f.error());
    if (!(*f)->manifest) return fail(Errc::kNotFound, "seed", "no manifest for " + id.hex() + " in the store");
    announce(**f, signaling::Event::kStarted);
    return {};
  }

  Status fetch(const FileId& id, std::optional<Manifest> manifest, FetchEvents events) {
    auto fr = addFile(id);
    if (!fr) return fail(fr.error());
    FileState& f = **fr;
    if (manifest && !f.manifest) P2PCDN_TRY(setManifest(f, *manifest, /*store=*/true));
    f.events = std::move(events);
    f.wanted = true;
    if (f.manifest) {
      (void)store.setPinned(id, true);
      if (f.events.onManifest) f.events.onManifest(*f.manifest);
    }
    checkComplete(f);
    announce(f, signaling::Event::kStarted);
    return {};
  }

  void checkComplete(FileState& f) {
    if (!f.complete() || f.completeFired) return;
    f.completeFired = true;
    f.wanted = false;
    for (auto& [k, p] : f.peers) {  // nothing more to ask for
      for (auto& [rid, out] : p->outstanding) (void)sendMsg(*p, wire::encode(wire::Cancel{rid}));
      p->outstanding.clear();
    }
    f.inFlight.clear();
    announce(f, signaling::Event::kCompleted);
    if (f.events.onComplete) {
      auto cb = f.events.onComplete;
      asio::post(io, cb);
    }
  }

  // ---- tracker --------------------------------------------------------------
  // first: a (re)connection to the tracker, which also restarts the back-off.
  void announceAll(bool first) {
    for (auto& [id, f] : files) {
      if (first) f.quickAnnounces = 0;
      announce(f, first ? signaling::Event::kStarted : signaling::Event::kNone);
    }
  }

  std::uint64_t left(const FileState& f) const {
    if (!f.manifest) return 1;  // unknown, but not zero: we are a leecher
    return f.manifest->storedSize() - f.bytesVerified;
  }

  // False when there is no tracker connection to announce on.
  bool announce(FileState& f, signaling::Event event) {
    if (!tracker || !tracker->connected()) return false;
    f.lastAnnounce = Clock::now();
    signaling::AnnounceRequest msg = baseAnnounce(f);
    msg.event = event;
    tracker->send(signaling::encodeClientMessage(msg));
    // Leechers make offers; the tracker hands each to another peer of the swarm.
    if (f.complete() || !f.wanted) return true;
    std::size_t room = opts.maxPeersPerFile > f.peers.size() ? opts.maxPeersPerFile - f.peers.size() : 0;
    std::size_t offers = std::min(room, opts.offersPerAnnounce);
    for (std::size_t i = 0; i < offers; ++i) makeOffer(f);
    return true;
  }

  signaling::AnnounceRequest baseAnnounce(const FileState& f) const {
    signaling::AnnounceRequest a;
    a.infoHash = f.infoHash;
    a.peerId = peerId;
    a.numwant = static_cast<std::uint32_t>(opts.offersPerAnnounce);
    a.uploaded = f.uploaded;
    a.downloaded = f.downloaded;
    a.left = left(f);
    return a;
  }

  void makeOffer(FileState& f) {
    Id20 offerId{};
    for (auto& b : offerId) b = static_cast<std::uint8_t>(rng());
    auto peer = newPeer(f, transport::Role::kOfferer, [this, fid = f.id, offerId](std::string sdp) {
      auto it = files.find(fid);
      if (it == files.end() || !tracker) return;
      signaling::AnnounceRequest msg = baseAnnounce(it->second);
      msg.numwant = 1;
      msg.offers.push_back({offerId, {"offer", std::move(sdp)}});
      tracker->send(signaling::encodeClientMessage(msg));
    });
    if (!peer) return;
    peer->offerer = true;
    pendingOffers[offerId] = {f.id, peer->key};
    if (auto st = peer->link->createOffer(); !st) dropPeer(f, peer->key);
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
      if (!f || offer->peerId == peerId) return;
      if (f->peers.size() >= opts.maxPeersPerFile || connectedTo(*f, offer->peerId)) return;
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
      if (connectedTo(*f, answer->peerId)) {
        dropPeer(*f, key);
        return;
      }
      p->second->remotePeerId = answer->peerId;
      if (auto st = p->second->link->acceptAnswer(answer->answer.sdp); !st) dropPeer(*f, key);
    }
  }

  bool connectedTo(const FileState& f, const Id20& remote) const {
    for (const auto& [k, p] : f.peers) {
      if (p->remotePeerId && *p->remotePeerId == remote) return true;
    }
    return false;
  }

  void onRemoteOffer(FileState& f, const Id20& from, const Id20& offerId, const std::string& sdp) {
    auto peer = newPeer(f, transport::Role::kAnswerer, [this, fid = f.id, from, offerId](std::string answer) {
      auto it = files.find(fid);
      if (it == files.end() || !tracker) return;
      signaling::AnnounceRequest msg;
      msg.infoHash = it->second.infoHash;
      msg.peerId = peerId;
      msg.answer = signaling::AnswerEntry{from, offerId, {"answer", std::move(answer)}};
      tracker->send(signaling::encodeClientMessage(msg));
    });
    if (!peer) return;
    peer->remotePeerId = from;
    if (auto st = peer->link->acceptOffer(sdp); !st) dropPeer(f, peer->key);
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
    ev.onOpen = with([](Impl& self, FileState& file, Peer& p) { self.onOpen(file, p); });
    ev.onMessage = with([](Impl& self, FileState& file, Peer& p, Bytes m) { self.onMessage(file, p, m); });
    ev.onBufferedAmountLow = with([](Impl& self, FileState& file, Peer& p) { self.pump(file, p); });
    ev.onClosed = with([](Impl& self, FileState& file, Peer& p, const Error&) { self.dropPeer(file, p.key); });
    asio::io_context* ioPtr = &io;
    auto link = links.create(role, opts.link, [ioPtr](std::function<void()> task) { asio::post(*ioPtr, std::move(task)); },
                             std::move(ev));
    if (!link) return nullptr;
    peer->link = std::move(*link);
    f.peers[peer->key] = peer;
    return peer;
  }

  void dropPeer(FileState& f, std::uint64_t key) {
    auto it = f.peers.find(key);
    if (it == f.peers.end()) return;
    for (auto& [rid, out] : it->second->outstanding) f.inFlight.erase(out.index);
    auto peer = it->second;
    f.peers.erase(it);
    for (auto p = pendingOffers.begin(); p != pendingOffers.end();) {
      p = p->second.second == key ? pendingOffers.erase(p) : std::next(p);
    }
    if (peer->link) peer->link->close();
    // Keep the link alive until its close completes (events are ignored: the peer is gone).
    asio::post(io, [peer] {});
    for (auto& [k, p] : f.peers) requestMore(f, *p);
  }

  void onOpen(FileState& f, Peer& p) {
    p.open = true;
    wire::Handshake h;
    std::copy(peerId.begin(), peerId.end(), h.peerId.begin());
    h.capabilities = wire::kCapEncryption | (f.manifest ? wire::kCapHasManifest : 0);
    h.fileId = f.id;
    (void)sendMsg(p, wire::encode(h));
  }

  Status sendMsg(Peer& p, Result<Bytes> msg) {
    if (!msg) return fail(msg.error());
    p.lastSent = Clock::now();
    if (!p.control.empty()) {
      p.control.push_back(std::move(*msg));
      return {};
    }
    Status st = p.link->send(*msg);
    if (!st && transport::isBackPressure(st.error())) {
      p.control.push_back(std::move(*msg));
      return {};
    }
    return st;
  }

  void sendGoodbye(Peer& p, wire::GoodbyeReason reason, std::string_view text) {
    if (p.goodbyeSent || !p.open) return;
    p.goodbyeSent = true;
    (void)sendMsg(p, wire::encode(wire::Goodbye{reason, text}));
  }

  void protocolError(FileState& f, Peer& p, std::string_view why) {
    sendGoodbye(p, wire::GoodbyeReason::kProtocolError, why);
    dropPeer(f, p.key);
  }

  void onMessage(FileState& f, Peer& p, const Bytes& bytes) {
    p.lastHeard = Clock::now();
    wire::DecodeContext ctx;
    if (f.manifest) ctx.chunkCount = f.manifest->chunkCount();
    auto m = wire::decodeMessage(ByteView(bytes), ctx);
    if (!m) return protocolError(f, p, "undecodable message");
    if (f.manifest) {
      if (auto st = wire::checkAgainstManifest(*m, *f.manifest); !st) return protocolError(f, p, "out of range");
    }
    if (!p.handshaken && !std::holds_alternative<wire::Handshake>(*m)) {
      return protocolError(f, p, "handshake first");
    }
    std::visit([&](const auto& msg) { handle(f, p, msg); }, *m);
  }

  void handle(FileState& f, Peer& p, const wire::Handshake& h) {
    if (p.handshaken) return protocolError(f, p, "second handshake");
    if (h.fileId != f.id) {
      sendGoodbye(p, wire::GoodbyeReason::kWrongFile, "not this file");
      return dropPeer(f, p.key);
    }
    p.handshaken = true;
    p.remoteWireId = h.peerId;
    p.remoteCaps = h.capabilities;
    if (f.manifest) {
      p.remoteHave.assign(f.manifest->chunkCount(), false);
      sendBitfield(f, p);
    }
    if (f.wanted && !f.manifest && (h.capabilities & wire::kCapHasManifest) && !manifestPending(f)) {
      std::uint32_t rid = p.nextRequestId++;
      p.manifestRequest = rid;
      p.manifestAssembler.emplace(rid);
      (void)sendMsg(p, wire::encode(wire::ManifestRequest{rid}));
    }
    requestMore(f, p);
  }

  bool manifestPending(const FileState& f) const {
    for (const auto& [k, q] : f.peers) {
      if (q->manifestRequest) return true;
    }
    return false;
  }

  void sendBitfield(FileState& f, Peer& p) {
    Bytes bits(wire::bitfieldBytes(f.manifest->chunkCount()));
    for (ChunkIndex i = 0; i < f.have.size(); ++i) {
      if (f.have[i]) wire::setBit(bits, i);
    }
    (void)sendMsg(p, wire::encode(wire::Bitfield{f.manifest->chunkCount(), bits}));
  }

  void handle(FileState& f, Peer& p, const wire::Bitfield& b) {
    if (!f.manifest) {
      p.pendingBitfield = Bytes(b.bits.begin(), b.bits.end());
      return;
    }
    p.remoteHave.assign(b.chunkCount, false);
    for (ChunkIndex i = 0; i < b.chunkCount; ++i) p.remoteHave[i] = b.has(i);
    requestMore(f, p);
  }

  void handle(FileState& f, Peer& p, const wire::Have& h) {
    if (!f.manifest) return;
    if (p.remoteHave.size() != f.manifest->chunkCount()) p.remoteHave.assign(f.manifest->chunkCount(), false);
    p.remoteHave[h.index] = true;
    requestMore(f, p);
  }

  void handle(FileState& f, Peer& p, const wire::Request& r) {
    auto reject = [&](wire::RejectReason why) { (void)sendMsg(p, wire::encode(wire::Reject{r.requestId, why, 0})); };
    if (!f.manifest || r.index >= f.have.size() || !f.have[r.index]) return reject(wire::RejectReason::kNotHave);
    if (p.uploads.size() >= opts.maxUploadRequestsPerPeer) return reject(wire::RejectReason::kTooManyRequests);
    auto chunk = store.getChunk(f.id, r.index, ReadOptions{.verify = true});
    if (!chunk) return reject(wire::RejectReason::kNotHave);  // corrupt or evicted: never serve bad bytes
    if (std::uint64_t{r.offset} + r.length > chunk->size()) return reject(wire::RejectReason::kInvalidRequest);
    p.uploads.push_back(Peer::Up{r.requestId, r.index, r.offset, r.length, std::move(*chunk), 0});
    pump(f, p);
  }

  void handle(FileState&, Peer& p, const wire::Cancel& c) {
    for (auto it = p.uploads.begin(); it != p.uploads.end(); ++it) {
      if (it->requestId == c.requestId && it->sent == 0) {
        p.uploads.erase(it);
        return;
      }
    }
  }

  void handle(FileState& f, Peer& p, const wire::Reject& r) {
    if (p.manifestRequest && *p.manifestRequest == r.requestId) {
      p.manifestRequest.reset();
      p.manifestAssembler.reset();
      return;
    }
    auto it = p.outstanding.find(r.requestId);
    if (it == p.outstanding.end()) return;
    f.inFlight.erase(it->second.index);
    if (p.remoteHave.size() > it->second.index) p.remoteHave[it->second.index] = false;
    p.outstanding.erase(it);
    for (auto& [k, q] : f.peers) requestMore(f, *q);
  }

  void handle(FileState& f, Peer& p, const wire::Piece& piece) {
    auto it = p.outstanding.find(piece.requestId);
    if (it == p.outstanding.end()) return;  // cancelled meanwhile
    if (auto st = it->second.assembler.add(piece); !st) return protocolError(f, p, "bad piece");
    p.bytesDown += piece.data.size();
    f.downloaded += piece.data.size();
    if (!it->second.assembler.complete()) return;
    ChunkIndex index = it->second.index;
    auto data = it->second.assembler.take();
    p.outstanding.erase(it);
    f.inFlight.erase(index);
    if (!data) return protocolError(f, p, "assembly");
    if (f.have[index]) return requestMore(f, p);
    if (auto st = store.storeChunk(f.id, index, *data); !st) {
      if (st.error().code() == Errc::kIntegrity) return protocolError(f, p, "chunk failed verification");
      if (f.events.onError) f.events.onError(st.error());
      return;
    }
    f.have[index] = true;
    ++f.haveCount;
    ++f.fetched;
    f.bytesVerified += data->size();
    for (auto& [k, q] : f.peers) {
      if (q->handshaken) (void)sendMsg(*q, wire::encode(wire::Have{index}));
    }
    if (f.events.onChunk) f.events.onChunk(index);
    checkComplete(f);
    requestMore(f, p);
  }

  void handle(FileState& f, Peer& p, const wire::ManifestRequest& r) {
    if (!f.manifest) {
      (void)sendMsg(p, wire::encode(wire::Reject{r.requestId, wire::RejectReason::kNotHave, 0}));
      return;
    }
    auto enc = encodeManifest(*f.manifest);
    if (!enc) return;
    auto parts = wire::splitManifest(r.requestId, *enc);
    if (!parts) return;
    for (Bytes& part : *parts) (void)sendMsg(p, std::move(part));
  }

  void handle(FileState& f, Peer& p, const wire::ManifestPart& part) {
    if (!p.manifestAssembler || f.manifest) return;
    if (auto st = p.manifestAssembler->add(part); !st) return protocolError(f, p, "bad manifest part");
    if (!p.manifestAssembler->complete()) return;
    auto m = p.manifestAssembler->finish(f.id);
    p.manifestAssembler.reset();
    p.manifestRequest.reset();
    if (!m) return protocolError(f, p, "manifest does not match the file id");
    if (auto st = setManifest(f, *m, /*store=*/true); !st) {
      if (f.events.onError) f.events.onError(st.error());
      return;
    }
    if (f.events.onManifest) f.events.onManifest(*f.manifest);
    for (auto& [k, q] : f.peers) {
      if (!q->handshaken) continue;
      q->remoteHave.assign(f.manifest->chunkCount(), false);
      if (q->pendingBitfield) {
        for (ChunkIndex i = 0; i < f.manifest->chunkCount(); ++i) q->remoteHave[i] = wire::testBit(*q->pendingBitfield, i);
        q->pendingBitfield.reset();
      }
      sendBitfield(f, *q);
    }
    checkComplete(f);
    for (auto& [k, q] : f.peers) requestMore(f, *q);
  }

  void handle(FileState&, Peer&, const wire::KeepAlive&) {}

  void handle(FileState& f, Peer& p, const wire::Goodbye&) {
    p.goodbyeSent = true;  // no reply needed
    dropPeer(f, p.key);
  }

  // Keeps up to requestsPerPeer whole-chunk requests in flight with this peer,
  // lowest missing index first (rarest-first and endgame come with the swarm engine).
  void requestMore(FileState& f, Peer& p) {
    if (!f.wanted || !f.manifest || !p.handshaken || p.remoteHave.size() != f.have.size()) return;
    for (ChunkIndex i = 0; i < f.have.size() && p.outstanding.size() < opts.requestsPerPeer; ++i) {
      if (f.have[i] || !p.remoteHave[i] || f.inFlight.count(i)) continue;
      auto assembler = wire::ChunkAssembler::forManifest(*f.manifest, i);
      if (!assembler) return;
      std::uint32_t rid = p.nextRequestId++;
      wire::Request req{rid, i, 0, f.manifest->storedChunkLength(i)};
      if (auto st = sendMsg(p, wire::encode(req)); !st) return;
      p.outstanding.emplace(rid, Peer::Out{i, std::move(*assembler), Clock::now()});
      f.inFlight.insert(i);
    }
  }

  // Sends queued control messages, then pieces of queued uploads, until the
  // link pushes back; onBufferedAmountLow calls again.
  void pump(FileState& f, Peer& p) {
    if (!p.link || !p.open) return;
    while (!p.control.empty()) {
      Status st = p.link->send(p.control.front());
      if (!st) {
        if (transport::isBackPressure(st.error())) return;
        p.control.clear();
        break;
      }
      p.control.pop_front();
    }
    const std::size_t maxPayload = wire::maxPiecePayload(opts.link.maxMessageSize);
    while (!p.uploads.empty()) {
      Peer::Up& up = p.uploads.front();
      std::uint32_t n = static_cast<std::uint32_t>(std::min<std::size_t>(maxPayload, up.length - up.sent));
      wire::Piece piece{up.requestId, up.index, static_cast<std::uint32_t>(up.chunk.size()), up.offset + up.sent,
                        ByteView(up.chunk).subspan(up.offset + up.sent, n)};
      auto msg = wire::encode(piece);
      if (!msg) {
        p.uploads.pop_front();
        continue;
      }
      Status st = p.link->send(*msg);
      if (!st) return;  // back-pressure (or closing): resume on onBufferedAmountLow
      up.sent += n;
      p.bytesUp += n;
      p.lastSent = Clock::now();
      f.uploaded += n;
      if (up.sent == up.length) p.uploads.pop_front();
    }
  }

  std::optional<FileProgress> progress(const FileId& id) const {
    auto it = files.find(id);
    if (it == files.end()) return std::nullopt;
    const FileState& f = it->second;
    FileProgress out;
    out.fileId = id;
    out.haveManifest = f.manifest.has_value();
    if (f.manifest) {
      out.bytesTotal = f.manifest->storedSize();
      out.chunksTotal = f.manifest->chunkCount();
    }
    out.bytesVerified = f.bytesVerified;
    out.chunksHave = f.haveCount;
    out.chunksFetched = f.fetched;
    for (const auto& [k, p] : f.peers) out.peers += p->handshaken ? 1u : 0u;
    out.bytesUploaded = f.uploaded;
    out.bytesDownloaded = f.downloaded;
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
std::string Node::peerIdHex() const { return toHex(impl_->peerId); }

}  // namespace p2pcdn::node
