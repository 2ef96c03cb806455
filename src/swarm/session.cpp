#include "swarm/session.hpp"

#include <algorithm>

#include "core/hex.hpp"
#include "swarm/choker.hpp"

namespace p2pcdn::swarm {

namespace {
constexpr std::size_t kMaxPendingHaves = 65536;
constexpr double kBurstSeconds = 0.25;  // token bucket depth, in seconds of rate

TokenBucket bucketFor(double rate) { return rate > 0 ? TokenBucket(rate, rate * kBurstSeconds) : TokenBucket(); }
}  // namespace

Session::Session(const FileId& fileId, const wire::PeerId& self, std::optional<Manifest> manifest,
                 std::vector<bool> have, SessionHost& host, SessionOptions options, std::uint64_t seed)
    : state_(fileId, self, host, std::move(options), seed) {
  if (manifest) adoptManifest(*manifest, std::move(have), Time{});
  superSeed_.setOn(state_.opts.superSeed && complete());
}

Session::~Session() = default;

bool Session::isBanned(const wire::PeerId& id) const {
  return std::find(state_.banned.begin(), state_.banned.end(), id) != state_.banned.end();
}

// ---- manifest and have ------------------------------------------------------

void Session::adoptManifest(const Manifest& m, std::vector<bool> have, Time now) {
  SessionState& s = state_;
  s.manifest = m;
  if (auto enc = encodeManifest(m)) s.manifestBytes = std::move(*enc);
  const ChunkIndex n = m.chunkCount();
  s.have = std::move(have);
  s.have.resize(n, false);
  s.haveCount = 0;
  s.counters = SessionStats{.uploaded = s.counters.uploaded, .downloaded = s.counters.downloaded};
  s.picker = std::make_unique<PiecePicker>(n, s.opts.picker);
  if (s.streaming) s.picker->setStreamCursor(s.streamCursor);
  s.servedCount.assign(n, 0);
  s.chunkFrom.assign(n, 0);
  s.neverServed = n;
  superSeed_.reset(n);
  for (ChunkIndex i = 0; i < n; ++i) {
    if (s.have[i]) {
      ++s.haveCount;
      (void)s.picker->markHave(i);
      s.counters.bytesVerified += m.storedChunkLength(i);
    }
  }
  for (auto& [k, p] : s.peers) {
    if (!p->handshaken || p->dropping) continue;
    std::vector<bool> bits(n, false);
    if (p->pendingBitfield) {
      for (ChunkIndex i = 0; i < n; ++i) bits[i] = wire::testBit(*p->pendingBitfield, i);
      p->pendingBitfield.reset();
    }
    for (ChunkIndex i : p->pendingHaves) {
      if (i < n) bits[i] = true;  // out of range: the peer lied before we could check; ignore
    }
    p->pendingHaves.clear();
    learnBitfield(*p, std::move(bits));
    sendBitfield(*p, now);
  }
}

Status Session::setManifest(const Manifest& m, std::vector<bool> have, Time now) {
  if (state_.manifest) return {};
  auto enc = encodeManifest(m);
  if (!enc) return fail(enc.error());
  if (manifestId(*enc) != state_.fileId) {
    return fail(Errc::kIntegrity, "set manifest", "manifest does not match the file id");
  }
  adoptManifest(m, std::move(have), now);
  if (state_.wanted) state_.host.onManifest(*state_.manifest);
  checkComplete(now);
  fetchMore(now);
  return {};
}

void Session::learnBitfield(PeerState& p, std::vector<bool> bits) {
  if (!state_.picker) return;
  if (p.inPicker) (void)state_.picker->removePeerBitfield(p.has);
  p.has = std::move(bits);
  p.hasCount = static_cast<std::uint32_t>(std::count(p.has.begin(), p.has.end(), true));
  p.inPicker = state_.picker->addPeerBitfield(p.has).has_value();
}

// A super-seeder sends an empty bitfield and reveals chunks one by one.
void Session::sendBitfield(PeerState& p, Time now) {
  Bytes bits(wire::bitfieldBytes(state_.manifest->chunkCount()));
  const bool selective = superSeed_.wanted(p);
  if (!selective) {
    p.reveal.full = true;
    for (ChunkIndex i = 0; i < state_.have.size(); ++i) {
      if (state_.have[i]) wire::setBit(bits, i);
    }
  }
  state_.sendTo(p, wire::encode(wire::Bitfield{state_.manifest->chunkCount(), bits}), now);
  if (selective) superSeed_.reveal(p, now);
}

void Session::setWanted(bool wanted, Time now) {
  state_.wanted = wanted && !complete();
  if (wanted && complete() && completeFired_) state_.host.onComplete();  // a new fetch of a file we hold
  if (state_.wanted && state_.manifest) state_.host.onManifest(*state_.manifest);
  askManifest(now);
  checkComplete(now);
  if (!state_.wanted) origins_.cancelAll();
  fetchMore(now);
}

void Session::setStreaming(bool on, ChunkIndex cursor, std::size_t lookahead, Time now) {
  const bool wasStreaming = state_.streaming;
  const ChunkIndex old = state_.streamCursor;  // as asked (the picker's is clamped to the end)
  PickerOptions& picking = state_.opts.picker;
  state_.streaming = on;
  state_.streamCursor = on ? cursor : 0;
  picking.streamLookahead = on ? lookahead : 0;
  if (state_.picker) {
    const std::size_t span = std::max<std::size_t>(picking.windowSize, lookahead);
    state_.picker->setStreamCursor(cursor);
    state_.picker->setStreamLookahead(picking.streamLookahead);
    // A seek (the cursor moved other than on by one, which is a reader
    // taking the next chunk): requests for chunks outside the new window that
    // have not started arriving are cancelled, so the window's chunks do not
    // queue behind them at a slow peer (bench/RESULTS.md has what they cost).
    const bool jumped = !wasStreaming || cursor < old || std::uint64_t{cursor} > std::uint64_t{old} + 1;
    if (on && jumped) downloader_.cancelOutside(cursor, std::uint64_t{cursor} + span, now);
  }
  fetchMore(now);
}

Status Session::wish(PeerKey key, ChunkIndex index, Time now) {
  auto it = state_.peers.find(key);
  if (it == state_.peers.end() || !it->second->handshaken || !it->second->bitfieldSeen) {
    return fail(Errc::kNotFound, "wish", "no link to the peer (yet): no handshake and bitfield from it");
  }
  if (!state_.manifest) return fail(Errc::kNotFound, "wish", "the manifest is not known yet");
  if (index >= state_.manifest->chunkCount()) {
    return fail(Errc::kInvalidArgument, "wish", "chunk " + std::to_string(index) + " is past the file's end");
  }
  PeerState& p = *it->second;
  if (have(index)) return {};
  if (!peerHas(key, index)) {
    return fail(Errc::kNotFound, "wish", "the peer does not have chunk " + std::to_string(index));
  }
  downloader_.wish(p, index, now);
  return {};
}

Status Session::offer(PeerKey key, ChunkIndex index, Time now) {
  auto it = state_.peers.find(key);
  if (it == state_.peers.end() || !it->second->handshaken || it->second->dropping) {
    return fail(Errc::kNotFound, "offer", "no link to the peer (yet): no handshake from it");
  }
  if (!have(index)) return fail(Errc::kNotFound, "offer", "we do not hold chunk " + std::to_string(index));
  PeerState& p = *it->second;
  if (peerHas(key, index)) return {};
  std::deque<ChunkIndex>& o = p.upload.offered;
  if (std::find(o.begin(), o.end(), index) != o.end()) return {};  // offered already (and told)
  if (o.size() >= kMaxWished) o.pop_front();
  o.push_back(index);
  state_.sendTo(p, wire::encode(wire::Have{index}), now);
  return {};
}

bool Session::peerHas(PeerKey key, ChunkIndex index) const {
  auto it = state_.peers.find(key);
  return it != state_.peers.end() && index < it->second->has.size() && it->second->has[index];
}

void Session::checkComplete(Time now) {
  if (!complete() || completeFired_) return;
  completeFired_ = true;
  state_.wanted = false;
  for (auto& [k, p] : state_.peers) downloader_.cancelAll(*p, now);
  state_.host.onComplete();
}

// ---- peers ------------------------------------------------------------------

void Session::addPeer(PeerKey key, Time now, const std::optional<wire::PeerId>& proven) {
  auto [it, inserted] = state_.peers.try_emplace(key, std::make_unique<PeerState>());
  if (!inserted) return;
  PeerState& p = *it->second;
  p.proven = proven;
  if (nextChoke_ == Time{}) nextChoke_ = now + state_.opts.chokeInterval;
  p.key = key;
  p.connected = p.lastSent = p.lastHeard = p.download.lastProgress = now;
  p.download.bucket = bucketFor(state_.opts.perPeerDownRate);
  p.inbound = TokenBucket(state_.opts.maxMessagesPerSecond, state_.opts.messageBurst);
  p.upload.bucket = bucketFor(state_.opts.perPeerUpRate);
  wire::Handshake h;
  h.peerId = state_.self;
  h.capabilities = wire::kCapEncryption | (state_.manifest ? wire::kCapHasManifest : 0) |
                   (state_.streaming ? wire::kCapStreaming : 0) | (superSeed_.on() ? wire::kCapSuperSeed : 0);
  h.fileId = state_.fileId;
  state_.sendTo(p, wire::encode(h), now);
}

void Session::removePeer(PeerKey key, Time now) {
  auto it = state_.peers.find(key);
  if (it == state_.peers.end()) return;
  PeerState& p = *it->second;
  for (auto& [rid, out] : p.download.out) {
    if (state_.picker) (void)state_.picker->unmarkRequested(out.index);
  }
  if (p.inPicker && state_.picker) (void)state_.picker->removePeerBitfield(p.has);
  superSeed_.peerGone(p);
  if (optimistic_ == key) optimistic_.reset();
  for (const QueuedUpload& up : p.upload.queue) state_.unserve(up);
  state_.peers.erase(it);
  askManifest(now);  // if the manifest was being asked of it
  fetchMore(now);
}

void Session::goodbyeAll(wire::GoodbyeReason reason, std::string_view text) {
  for (auto& [k, p] : state_.peers) state_.goodbye(*p, reason, text);
}

void Session::onWritable(PeerKey key, Time now) {
  if (PeerState* p = state_.find(key)) uploader_.pump(*p, now);
}

void Session::onMessage(PeerKey key, ByteView bytes, Time now) {
  PeerState* pp = state_.find(key);
  if (!pp || pp->dropping || pp->overflowed) return;
  PeerState& p = *pp;
  const std::optional<Manifest>& manifest = state_.manifest;
  p.lastHeard = now;
  wire::DecodeContext ctx;
  if (manifest) ctx.chunkCount = manifest->chunkCount();
  auto m = wire::decodeMessage(bytes, ctx);
  if (!m) return state_.drop(p, wire::GoodbyeReason::kProtocolError, "undecodable message");
  if (manifest) {
    if (auto st = wire::checkAgainstManifest(*m, *manifest); !st) {
      return state_.drop(p, wire::GoodbyeReason::kProtocolError, "out of range for the manifest");
    }
  }
  if (!p.handshaken && !std::holds_alternative<wire::Handshake>(*m)) {
    return state_.drop(p, wire::GoodbyeReason::kProtocolError, "handshake first");
  }
  if (charged(p, *m)) {
    p.inbound.spend(1, now);
    if (!p.inbound.ready(now)) return state_.drop(p, wire::GoodbyeReason::kProtocolError, "too many messages");
  }
  std::visit([&](const auto& msg) { handle(p, msg, now); }, *m);
  if (p.overflowed && !p.dropping) state_.drop(p, wire::GoodbyeReason::kProtocolError, "too many unread replies");
}

// Whether a message spends the peer's message budget. Not PIECEs (bounded by
// our requests), REQUESTs (bounded by the upload queue; a flood of them fills
// the bounded control queue with REJECTs and is dropped there), or a HAVE
// for a chunk the peer had not shown (at most one per chunk: a super-seeder
// reveals thousands at once when a peer goes idle).
bool Session::charged(const PeerState& p, const wire::Message& m) const {
  if (std::holds_alternative<wire::Piece>(m) || std::holds_alternative<wire::Request>(m)) return false;
  if (const auto* h = std::get_if<wire::Have>(&m)) return p.inPicker && h->index < p.has.size() && p.has[h->index];
  return true;
}

void Session::handle(PeerState& p, const wire::Handshake& h, Time now) {
  auto drop = [&](wire::GoodbyeReason reason, std::string_view text) { state_.drop(p, reason, text); };
  if (p.handshaken) return drop(wire::GoodbyeReason::kProtocolError, "second handshake");
  if (h.fileId != state_.fileId) return drop(wire::GoodbyeReason::kWrongFile, "not this file");
  if (p.proven && h.peerId != *p.proven) return drop(wire::GoodbyeReason::kProtocolError, "not the peer id the link proved");
  if (isBanned(h.peerId)) return drop(wire::GoodbyeReason::kProtocolError, "banned: sent chunks that failed verification");
  for (auto& [k, q] : state_.peers) {
    if (q.get() != &p && q->handshaken && !q->dropping && q->id == h.peerId) {
      return drop(wire::GoodbyeReason::kDuplicate, "already connected");
    }
  }
  p.handshaken = true;
  p.id = h.peerId;
  p.caps = h.capabilities;
  if (state_.manifest) {
    learnBitfield(p, std::vector<bool>(state_.manifest->chunkCount(), false));
    sendBitfield(p, now);
  }
  std::size_t unchoked = 0;
  for (auto& [k, q] : state_.peers) unchoked += q->upload.unchoked ? 1u : 0u;
  if (unchoked < state_.opts.maxConcurrentUploads) p.upload.unchoked = true;
  askManifest(now);
  downloader_.requestFrom(p, now);
}

// One MANIFEST_REQUEST at a time, to a peer that has the manifest; asked again
// when that peer rejects it or goes away.
void Session::askManifest(Time now) {
  if (!state_.wanted || state_.manifest) return;
  for (auto& [k, q] : state_.peers) {
    if (q->manifestRequest) return;
  }
  PeerState* best = nullptr;  // the holder given up on least often (first among equals)
  for (auto& [k, p] : state_.peers) {
    if (p->handshaken && !p->dropping && (p->caps & wire::kCapHasManifest) &&
        (!best || p->manifestTimeouts < best->manifestTimeouts)) {
      best = p.get();
    }
  }
  if (!best) return;
  const std::uint32_t rid = best->download.nextRequestId++;
  best->manifestRequest = rid;
  best->manifestAsked = now;
  best->manifestAssembler.emplace(rid);
  state_.sendTo(*best, wire::encode(wire::ManifestRequest{rid}), now);
}

// A peer that said at its handshake that it had no manifest now shows chunks
// (BITFIELD or HAVE), so it has one: it may be asked. (Leechers that linked
// before either had the manifest waited for a new peer instead: 1 s at 0 %.)
void Session::peerGotManifest(PeerState& p, Time now) {
  if (p.caps & wire::kCapHasManifest) return;
  p.caps |= wire::kCapHasManifest;
  askManifest(now);
}

void Session::handle(PeerState& p, const wire::Bitfield& b, Time now) {
  p.bitfieldSeen = true;
  if (!state_.manifest) {
    p.pendingBitfield = Bytes(b.bits.begin(), b.bits.end());
    return peerGotManifest(p, now);
  }
  std::vector<bool> bits(b.chunkCount);
  for (ChunkIndex i = 0; i < b.chunkCount; ++i) bits[i] = b.has(i);
  learnBitfield(p, std::move(bits));
  if (superSeed_.on()) superSeed_.reveal(p, now);
  downloader_.requestFrom(p, now);
}

void Session::handle(PeerState& p, const wire::Have& h, Time now) {
  if (!state_.manifest) {  // kept for when the manifest arrives (a super-seeder's reveals come this early)
    if (p.pendingHaves.size() < kMaxPendingHaves) p.pendingHaves.push_back(h.index);
    return peerGotManifest(p, now);
  }
  if (!p.inPicker || p.has[h.index]) return;
  p.has[h.index] = true;
  ++p.hasCount;
  (void)state_.picker->peerHas(h.index);
  if (superSeed_.on()) superSeed_.reveal(p, now);
  downloader_.requestFrom(p, now);
}

void Session::handle(PeerState& p, const wire::Request& r, Time now) { uploader_.onRequest(p, r, nextChoke_, now); }

void Session::handle(PeerState& p, const wire::Cancel& c, Time) { uploader_.onCancel(p, c); }

void Session::handle(PeerState& p, const wire::Reject& r, Time now) {
  if (p.manifestRequest && *p.manifestRequest == r.requestId) {
    p.manifestRequest.reset();
    p.manifestAssembler.reset();
    p.caps &= ~wire::kCapHasManifest;  // it said it has none: ask another peer
    return askManifest(now);
  }
  downloader_.onReject(p, r, now);
}

void Session::handle(PeerState& p, const wire::Piece& piece, Time now) { downloader_.onPiece(p, piece, now); }

void Session::onChunkStored(ChunkIndex index, Status status, Time now) {
  if (!downloader_.finishWrite(index) || !state_.manifest) return;  // not one we asked for
  const bool wasFull = downloader_.writesPending() + 1 >= state_.opts.maxPendingWrites;
  if (!status) {
    (void)state_.picker->unmarkHave(index);  // not held after all: pick it again
    if (status.error().code() == Errc::kBackPressure) {  // the store was busy: fetch it again later
      fetchMore(now);
    } else if (state_.wanted) {
      // Quota, disk full, I/O: fetching on would download and discard at
      // line rate. The fetch stops (a new setWanted(true) starts it again);
      // the writes still in flight fail quietly.
      state_.wanted = false;
      origins_.cancelAll();
      for (auto& [k, p] : state_.peers) downloader_.cancelAll(*p, now);
      state_.host.onError(status.error());
    }
    return;
  }
  state_.have[index] = true;
  ++state_.haveCount;
  ++state_.counters.chunksFetched;
  state_.counters.bytesVerified += state_.manifest->storedChunkLength(index);
  for (auto& [k, q] : state_.peers) {  // tell everyone who lacks it
    if (q->dropping || !q->handshaken) continue;
    if (!q->inPicker || !q->has[index]) state_.sendTo(*q, wire::encode(wire::Have{index}), now);
  }
  state_.host.onChunk(index);
  checkComplete(now);
  if (wasFull) fetchMore(now);
}

void Session::onChunkRead(ChunkIndex index, Result<Bytes> data, Time now) {
  uploader_.onChunkRead(index, std::move(data), now);
}

void Session::handle(PeerState& p, const wire::ManifestRequest& r, Time now) {
  if (!state_.manifest || state_.manifestBytes.empty()) {
    return state_.sendTo(p, wire::encode(wire::Reject{r.requestId, wire::RejectReason::kNotHave, 0}), now);
  }
  // One copy per link at a time (each may be 32 MiB): again only once the
  // last one has left our queue and a while has passed (a peer that gave up
  // on a slow copy asks again).
  if (p.manifestServed && (!p.control.empty() || now - p.manifestServedAt < state_.opts.manifestTimeout)) return;
  auto parts = wire::splitManifest(r.requestId, state_.manifestBytes);
  if (!parts) return;
  p.manifestServed = true;
  p.manifestServedAt = now;
  for (Bytes& part : *parts) state_.sendTo(p, std::move(part), now);
}

void Session::handle(PeerState& p, const wire::ManifestPart& part, Time now) {
  if (!p.manifestAssembler || state_.manifest) return;
  p.manifestAsked = now;  // progress: the deadline counts from the last part
  if (auto st = p.manifestAssembler->add(part); !st) {
    return state_.drop(p, wire::GoodbyeReason::kProtocolError, "bad manifest part");
  }
  if (!p.manifestAssembler->complete()) return;
  auto m = p.manifestAssembler->finish(state_.fileId);
  p.manifestAssembler.reset();
  p.manifestRequest.reset();
  if (!m) return state_.drop(p, wire::GoodbyeReason::kProtocolError, "manifest does not match the file id");
  state_.host.storeManifest(*m);
  adoptManifest(*m, {}, now);
  if (state_.wanted) state_.host.onManifest(*state_.manifest);
  checkComplete(now);
  fetchMore(now);
}

void Session::handle(PeerState&, const wire::KeepAlive&, Time) {}

void Session::handle(PeerState& p, const wire::Goodbye&, Time) {
  ++state_.counters.goodbyesReceived;
  p.goodbyeSent = true;  // no reply
  state_.drop(p, wire::GoodbyeReason::kNormal, {});
}

// ---- choking --------------------------------------------------------------------

// O(chunks); called once per peer per choke round.
bool Session::interested(const PeerState& p) const {
  if (!p.handshaken || p.dropping) return false;
  if (!p.inPicker) return true;  // no manifest yet: it may want the manifest or anything
  const std::vector<bool>& have = state_.have;
  if (p.hasCount >= have.size()) return false;
  for (ChunkIndex i = 0; i < have.size(); ++i) {
    if (have[i] && !p.has[i]) return true;
  }
  return false;
}

std::size_t Session::usefulPeers() const {
  std::size_t n = 0;
  for (const auto& [k, p] : state_.peers) {
    if (p->handshaken && !p->dropping && downloader_.lacksFrom(*p)) ++n;
  }
  return n;
}

void Session::chokeRound(Time now) {
  ++chokeRounds_;
  const bool seeding = complete();
  std::vector<ChokeCandidate> candidates;
  for (auto& [k, p] : state_.peers) {
    if (!interested(*p)) continue;
    candidates.push_back(ChokeCandidate{.key = p->key,
                                        .downloadRate = p->download.received.rate(now),
                                        .uploadRate = p->upload.served.rate(now),
                                        .newcomer = now - p->connected < state_.opts.chokeInterval * 3});
  }
  const ChokeDecision decision = chooseUnchoked(candidates,
                                                ChokeRound{.slots = state_.opts.maxConcurrentUploads,
                                                           .seeding = seeding,
                                                           .round = chokeRounds_,
                                                           .optimisticEvery = state_.opts.optimisticEvery,
                                                           .optimistic = optimistic_},
                                                state_.rng);
  optimistic_ = decision.optimistic;
  for (auto& [k, p] : state_.peers) {
    const bool on = std::find(decision.unchoked.begin(), decision.unchoked.end(), p->key) != decision.unchoked.end();
    if (p->upload.unchoked && !on) uploader_.choke(*p, now);  // queued requests are refused with a retry hint
    p->upload.unchoked = on || (!interested(*p) && p->upload.unchoked);
  }
  // Two complete peers have nothing to trade: free the link for leechers.
  if (seeding) {
    for (auto& [k, p] : state_.peers) {
      if (p->handshaken && p->inPicker && p->hasCount == state_.have.size() && !p->dropping) {
        state_.drop(*p, wire::GoodbyeReason::kNormal, "both complete");
      }
    }
  }
}

std::string Session::chunkSource(ChunkIndex index) const {
  if (index >= state_.chunkFrom.size() || state_.chunkFrom[index] == 0) return "";
  if (state_.chunkFrom[index] == 1) return "web seed";
  const wire::PeerId& id = state_.sources[state_.chunkFrom[index] - 2];
  return toHex(ByteView(id.data(), id.size()));
}

// ---- web seeds -------------------------------------------------------------

Status Session::setOrigins(std::vector<std::string> urls, Time now) { return origins_.setOrigins(std::move(urls), now); }

void Session::onOriginData(std::uint32_t id, Result<Bytes> data, Time now) { origins_.onData(id, std::move(data), now); }

void Session::fetchMore(Time now) {
  downloader_.requestEverywhere(now);
  origins_.pump(now);
}

// ---- timers -------------------------------------------------------------------

void Session::tick(Time now) {
  const SessionOptions& opts = state_.opts;
  if (nextChoke_ == Time{}) nextChoke_ = now + opts.chokeInterval;
  if (now >= nextChoke_) {
    chokeRound(now);
    nextChoke_ = now + opts.chokeInterval;
  }
  if (opts.rotateDownloadsEvery > Time{} && now >= nextRotate_) {
    if (nextRotate_ != Time{}) downloader_.rotateDownloads(now);
    nextRotate_ = now + opts.rotateDownloadsEvery;
  }
  std::vector<PeerKey> flooded;  // collected first: a host may remove the peer inside drop()
  for (auto& [k, pp] : state_.peers) {
    if (pp->overflowed && !pp->dropping) flooded.push_back(k);
  }
  for (PeerKey k : flooded) {
    if (PeerState* p = state_.find(k)) state_.drop(*p, wire::GoodbyeReason::kProtocolError, "too many unread replies");
  }
  std::vector<PeerState*> stale;
  bool askAgain = false;
  for (auto& [k, pp] : state_.peers) {
    PeerState& p = *pp;
    if (p.dropping) continue;
    if (now - p.lastHeard > opts.idleTimeout) {
      stale.push_back(&p);
      continue;
    }
    if (p.handshaken && now - p.lastSent > opts.keepAliveAfter) state_.sendTo(p, wire::encode(wire::KeepAlive{}), now);
    uploader_.refillLate(p, now);  // in case the drain notice was lost
    downloader_.expireRequests(p, now);
    if (p.manifestRequest && !state_.manifest && now - p.manifestAsked > opts.manifestTimeout) {
      p.manifestRequest.reset();
      p.manifestAssembler.reset();
      ++p.manifestTimeouts;  // others first; asked again if it is the only one
      ++state_.counters.timeouts;
      askAgain = true;
    }
  }
  for (PeerState* p : stale) state_.drop(*p, wire::GoodbyeReason::kIdleTimeout, "silent too long");
  if (askAgain) askManifest(now);
  if (superSeed_.on()) superSeed_.revealToIdle(uploader_.lastServe(), now);
  uploader_.resumeIfDue(now);
  downloader_.clearWakeIfDue(now);
  fetchMore(now);
}

Time Session::nextWakeup(Time now) const {
  Time next = std::min(now + std::chrono::seconds(1), origins_.nextWakeup(now));
  if (nextChoke_ != Time{}) next = std::min(next, nextChoke_);
  if (nextRotate_ != Time{}) next = std::min(next, nextRotate_);
  if (uploader_.wake() != Time{}) next = std::min(next, uploader_.wake());
  if (downloader_.wake() != Time{}) next = std::min(next, downloader_.wake());
  for (auto& [k, p] : state_.peers) {
    if (p->download.chokedUntil > now) next = std::min(next, p->download.chokedUntil);
  }
  return std::max(next, now);
}

// ---- stats --------------------------------------------------------------------

SessionStats Session::stats() const {
  SessionStats s = state_.counters;
  const std::optional<Manifest>& manifest = state_.manifest;
  s.haveManifest = manifest.has_value();
  if (manifest) {
    s.chunksTotal = manifest->chunkCount();
    s.bytesTotal = manifest->storedSize();
    s.distinctServed = manifest->chunkCount() - state_.neverServed;
  }
  s.chunksHave = state_.haveCount;
  s.readsPending = uploader_.readsPending();
  s.writesPending = downloader_.writesPending();
  s.complete = complete();
  s.peers = 0;
  for (auto& [k, p] : state_.peers) s.peers += p->handshaken && !p->dropping ? 1u : 0u;
  return s;
}

std::optional<PeerStats> Session::peerStats(PeerKey key, Time now) const {
  auto it = state_.peers.find(key);
  if (it == state_.peers.end()) return std::nullopt;
  const PeerState& p = *it->second;
  const DownloadState& d = p.download;
  const UploadState& u = p.upload;
  PeerStats s;
  s.key = p.key;
  s.peerId = p.id;
  s.handshaken = p.handshaken;
  s.chunksAvailable = p.hasCount;
  s.seeder = p.inPicker && p.hasCount == p.has.size() && !p.has.empty();
  s.bytesUp = u.served.total();
  s.bytesDown = d.received.total();
  s.upRate = u.served.rate(now);
  s.downRate = d.received.rate(now);
  s.chunksServed = u.chunksServed;
  s.chunksReceived = d.chunksReceived;
  s.failures = d.failures;
  s.badChunks = d.badChunks;
  s.requestsOutstanding = d.out.size();
  s.requestTarget = state_.manifest ? downloader_.requestTarget(p, now) : 0;
  s.uploadsQueued = u.queue.size();
  s.controlBytes = p.controlBytes;
  s.unchoked = u.unchoked;
  s.chokingUs = now < d.chokedUntil;
  s.latencySeconds = d.latencyKnown ? seconds(d.minLatency) : 0;
  return s;
}

std::vector<PeerStats> Session::peerStats(Time now) const {
  std::vector<PeerStats> out;
  for (auto& [k, p] : state_.peers) {
    if (auto s = peerStats(k, now)) out.push_back(*s);
  }
  return out;
}

}  // namespace p2pcdn::swarm
