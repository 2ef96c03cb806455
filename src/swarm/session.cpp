#include "swarm/session.hpp"

#include <algorithm>
#include <cmath>

#include "core/blake3.hpp"

namespace p2pcdn::swarm {

struct Session::Out {
  ChunkIndex index;
  wire::ChunkAssembler assembler;
  Time sent;
  bool gotFirstByte = false;
  // Sent while nothing else was outstanding at the peer: its first byte
  // measures the peer's own latency (round trip + its store's read), not a
  // wait behind our other requests or a read done ahead of time.
  bool probe = false;
};

struct Session::Up {
  std::uint32_t requestId;
  ChunkIndex index;
  std::uint32_t offset, length;
  std::shared_ptr<const Bytes> chunk;  // read ahead of its turn (readAhead)
  std::uint32_t sent = 0;  // bytes of [offset, offset + length) sent
  Time queued{};
  bool counted = false;    // counted in servedCount_ (a whole chunk, its first piece sent)
};

struct Session::Peer {
  PeerKey key = 0;
  Time connected{}, lastSent{}, lastHeard{}, lastProgress{}, lastRequest{}, lastPieceSent{};
  bool handshaken = false;
  bool dropping = false;  // GOODBYE sent or disconnect asked: ignore it from now on
  bool goodbyeSent = false;
  bool counted = false;   // `has` is counted in the picker
  wire::PeerId id{};
  std::uint32_t caps = 0;
  std::vector<bool> has;
  std::uint32_t hasCount = 0;
  std::optional<Bytes> pendingBitfield;  // arrived before we knew the manifest
  std::vector<ChunkIndex> pendingHaves;  // likewise (bounded by kMaxPendingHaves)
  bool fullReveal = false;               // super-seeding is off for this peer: it was told everything

  // Downloads from it.
  std::uint32_t nextRequestId = 1;
  std::map<std::uint32_t, Out> out;
  std::optional<std::uint32_t> manifestRequest;
  std::optional<wire::ManifestAssembler> manifestAssembler;
  Time chokedUntil{};
  Time restUntil{};      // rotated out of the download peers: no new requests until then
  std::optional<Time> downloadingSince;  // a download peer since
  std::size_t requestCap = SIZE_MAX;
  RateMeter down, up;
  // Sizes the pipeline: quick to follow, since each request added raises the
  // rate only once the meter catches up (with a 2 s meter a 50 ms store
  // latency took ~10 s to grow the pipeline to rate x latency).
  RateMeter pipeRate{std::chrono::milliseconds(250)};
  Time minLatency{};
  bool latencyKnown = false;
  TokenBucket downBucket, upBucket;

  // Uploads to it.
  std::deque<Up> uploads;
  std::deque<Bytes> control;  // messages the link refused (back-pressure), in order
  bool unchoked = false;
  RateMeter sendRate{std::chrono::milliseconds(250)};  // PIECE data leaving, quick to follow: sizes the send window
  double sendPeak = 0;    // recent peak of sendRate, decaying (kSendPeakTau): sizes the read-ahead
  Time sendPeakAt{};
  bool windowFull = false;  // pieces wait for the link's queue to drain (notice asked; tick as fallback)

  std::uint32_t chunksServed = 0, chunksReceived = 0, failures = 0, badChunks = 0;
  std::vector<ChunkIndex> revealed;  // super-seeding: told with HAVE, not yet served to it
};

namespace {
constexpr std::size_t kMaxPendingHaves = 65536;
// Super-seeding falls back to telling a peer everything when it has not asked
// us for anything this long (or 4 chunk-times at its rate, if longer) although
// it lacks chunks we showed it.
constexpr Time kRevealIdle = std::chrono::seconds(1);
constexpr double kBurstSeconds = 0.25;  // token bucket depth, in seconds of rate
constexpr double kSendPeakTau = 5.0;    // seconds: the read-ahead's peak send rate decays this slowly
// REJECT overloaded's retry hint: `wait` in ms, within what the wire allows.
std::uint32_t retryHint(Time wait) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait).count();
  return static_cast<std::uint32_t>(std::clamp<long long>(ms, 1, wire::kMaxRetryAfterMs));
}

TokenBucket bucketFor(double rate) { return rate > 0 ? TokenBucket(rate, rate * kBurstSeconds) : TokenBucket(); }
}  // namespace

Session::Session(const FileId& fileId, const wire::PeerId& self, std::optional<Manifest> manifest,
                 std::vector<bool> have, SessionHost& host, SessionOptions options, std::uint64_t seed)
    : fileId_(fileId), self_(self), host_(host), opts_(std::move(options)), rng_(seed) {
  if (manifest) adoptManifest(*manifest, std::move(have), Time{});
  superSeeding_ = opts_.superSeed && complete();
}

Session::~Session() = default;

bool Session::complete() const { return manifest_ && haveCount_ == manifest_->chunkCount(); }

bool Session::isBanned(const wire::PeerId& id) const {
  return std::find(banned_.begin(), banned_.end(), id) != banned_.end();
}

Session::Peer* Session::find(PeerKey key) {
  auto it = peers_.find(key);
  return it == peers_.end() ? nullptr : it->second.get();
}

// ---- manifest and have ------------------------------------------------------

void Session::adoptManifest(const Manifest& m, std::vector<bool> have, Time now) {
  manifest_ = m;
  if (auto enc = encodeManifest(m)) manifestBytes_ = std::move(*enc);
  const ChunkIndex n = m.chunkCount();
  have_ = std::move(have);
  have_.resize(n, false);
  haveCount_ = 0;
  counters_ = SessionStats{.uploaded = counters_.uploaded, .downloaded = counters_.downloaded};
  picker_ = std::make_unique<PiecePicker>(n, opts_.picker);
  servedCount_.assign(n, 0);
  neverServed_ = n;
  revealedCount_.assign(n, 0);
  assignedCount_.assign(n, 0);
  for (ChunkIndex i = 0; i < n; ++i) {
    if (have_[i]) {
      ++haveCount_;
      (void)picker_->markHave(i);
      counters_.bytesVerified += m.storedChunkLength(i);
    }
  }
  for (auto& [k, p] : peers_) {
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
  if (manifest_) return {};
  auto enc = encodeManifest(m);
  if (!enc) return fail(enc.error());
  if (manifestId(*enc) != fileId_) return fail(Errc::kIntegrity, "set manifest", "manifest does not match the file id");
  adoptManifest(m, std::move(have), now);
  if (wanted_) host_.onManifest(*manifest_);
  checkComplete(now);
  requestEverywhere(now);
  return {};
}

void Session::learnBitfield(Peer& p, std::vector<bool> bits) {
  if (!picker_) return;
  if (p.counted) (void)picker_->removePeerBitfield(p.has);
  p.has = std::move(bits);
  p.hasCount = static_cast<std::uint32_t>(std::count(p.has.begin(), p.has.end(), true));
  p.counted = picker_->addPeerBitfield(p.has).has_value();
}

void Session::sendBitfield(Peer& p, Time now) {
  Bytes bits(wire::bitfieldBytes(manifest_->chunkCount()));
  const bool selective = superSeedWanted(p);
  if (!selective) {
    p.fullReveal = true;
    for (ChunkIndex i = 0; i < have_.size(); ++i) {
      if (have_[i]) wire::setBit(bits, i);
    }
  }
  sendTo(p, wire::encode(wire::Bitfield{manifest_->chunkCount(), bits}), now);
  if (selective) reveal(p, now);
}

// Super-seeding: keep superSeedReveal chunks revealed to the peer and not yet
// requested by it, choosing the chunks with the least load (requests taken,
// then peers they are revealed to),
// scanning from a random start so equal loads spread. O(chunks) per reveal.
// Tells the peer every chunk it lacks (HAVE each) and stops super-seeding it.
void Session::revealAll(Peer& p, Time now) {
  if (p.fullReveal || !p.counted || p.dropping) return;
  p.fullReveal = true;
  for (ChunkIndex i : p.revealed) --revealedCount_[i];
  p.revealed.clear();
  for (ChunkIndex i = 0; i < have_.size(); ++i) {
    if (have_[i] && !p.has[i]) sendTo(p, wire::encode(wire::Have{i}), now);
  }
}

// A peer that streams (asks in its own order) is not super-seeded; nor is
// one that has neither asked nor been sent anything for kRevealIdle although
// it lacks what we showed it (tick): both are told everything.
bool Session::superSeedWanted(const Peer& p) const {
  if (!superSeeding_ || p.fullReveal || !p.counted || p.dropping) return false;
  return !(p.caps & wire::kCapStreaming);
}

void Session::reveal(Peer& p, Time now, std::size_t target) {
  if (!superSeeding_ || p.fullReveal || !p.counted || p.dropping) return;
  if (!superSeedWanted(p)) return revealAll(p, now);
  if (target == 0) {
    // As deep as the peer's request pipeline would be: a fast lone peer must
    // not be held to a couple of chunks in flight.
    const double chunk = static_cast<double>(manifest_->chunkSize);
    const auto deep = static_cast<std::size_t>(std::ceil(p.up.rate(now) * seconds(opts_.latencyGuess) / chunk));
    target = std::max(opts_.superSeedReveal, std::min(deep + 1, opts_.maxRequestsPerPeer));
  }
  std::erase_if(p.revealed, [&](ChunkIndex i) {
    if (!p.has[i]) return false;
    --revealedCount_[i];
    return true;
  });
  const auto n = static_cast<ChunkIndex>(have_.size());
  while (p.revealed.size() < target && p.hasCount + p.revealed.size() < n) {
    const auto start = static_cast<ChunkIndex>(rng_() % n);
    std::optional<ChunkIndex> best;
    std::uint64_t bestLoad = UINT64_MAX;
    for (ChunkIndex j = 0; j < n; ++j) {
      const ChunkIndex i = (start + j) % n;
      if (p.has[i] || std::find(p.revealed.begin(), p.revealed.end(), i) != p.revealed.end()) continue;
      // Never-taken chunks first (even if revealed elsewhere), then the least revealed.
      const std::uint64_t load = (std::uint64_t{assignedCount_[i]} << 32) + revealedCount_[i];
      if (load < bestLoad) {
        bestLoad = load;
        best = i;
        if (load == 0) break;
      }
    }
    if (!best) break;
    // Beyond the usual count only chunks nobody has taken or been shown:
    // extra reveals keep an idle link busy, they must not start repeats.
    if (p.revealed.size() >= opts_.superSeedReveal && bestLoad != 0) break;
    p.revealed.push_back(*best);
    ++revealedCount_[*best];
    sendTo(p, wire::encode(wire::Have{*best}), now);
  }
}

void Session::unreveal(Peer& p, ChunkIndex index) {
  auto it = std::find(p.revealed.begin(), p.revealed.end(), index);
  if (it == p.revealed.end()) return;
  --revealedCount_[index];
  p.revealed.erase(it);
}

void Session::setWanted(bool wanted, Time now) {
  wanted_ = wanted && !complete();
  if (wanted && complete() && completeFired_) host_.onComplete();  // a new fetch of a file we hold
  if (wanted_ && manifest_) host_.onManifest(*manifest_);
  askManifest(now);
  checkComplete(now);
  requestEverywhere(now);
}

void Session::setStreaming(bool on, ChunkIndex cursor, std::size_t lookahead, Time now) {
  const bool wasStreaming = streaming_;
  streaming_ = on;
  opts_.picker.streamLookahead = on ? lookahead : 0;
  if (picker_) {
    const ChunkIndex old = picker_->streamCursor();
    const std::size_t span = std::max<std::size_t>(opts_.picker.windowSize, lookahead);
    picker_->setStreamCursor(cursor);
    picker_->setStreamLookahead(opts_.picker.streamLookahead);
    // A seek (the cursor jumped out of the old window): requests for chunks
    // outside the new window that have not started arriving are cancelled, so
    // the window's chunks do not queue behind them at a slow peer. (At a
    // 2 MB/s seeder a far seek's first byte waited ~0.5 s for them.)
    const bool jumped = !wasStreaming || cursor < old || cursor >= old + span;
    if (on && jumped) {
      const std::uint64_t end = std::uint64_t{cursor} + span;
      for (auto& [k, p] : peers_) {
        std::vector<std::uint32_t> drop;
        for (auto& [rid, o] : p->out) {
          if (!o.gotFirstByte && (o.index < cursor || o.index >= end)) drop.push_back(rid);
        }
        for (auto rid : drop) {
          sendTo(*p, wire::encode(wire::Cancel{rid}), now);
          forget(*p, rid, false);
        }
      }
    }
  }
  requestEverywhere(now);
}

void Session::checkComplete(Time now) {
  if (!complete() || completeFired_) return;
  completeFired_ = true;
  wanted_ = false;
  for (auto& [k, p] : peers_) cancelAll(*p, now);
  host_.onComplete();
}

// ---- peers ------------------------------------------------------------------

void Session::addPeer(PeerKey key, Time now) {
  auto [it, inserted] = peers_.try_emplace(key, std::make_unique<Peer>());
  if (!inserted) return;
  Peer& p = *it->second;
  if (nextChoke_ == Time{}) nextChoke_ = now + opts_.chokeInterval;
  p.key = key;
  p.connected = p.lastSent = p.lastHeard = p.lastProgress = now;
  p.downBucket = bucketFor(opts_.perPeerDownRate);
  p.upBucket = bucketFor(opts_.perPeerUpRate);
  wire::Handshake h;
  h.peerId = self_;
  h.capabilities = wire::kCapEncryption | (manifest_ ? wire::kCapHasManifest : 0) | (streaming_ ? wire::kCapStreaming : 0) |
                   (superSeeding_ ? wire::kCapSuperSeed : 0);
  h.fileId = fileId_;
  sendTo(p, wire::encode(h), now);
}

// An upload that stops part-way (CANCEL, the peer gone) did not serve its
// chunk: it no longer counts (super-seeding would otherwise hold back and
// refuse repeats of a chunk nobody received).
void Session::dropUpload(const Up& up) {
  if (!up.counted || up.sent >= up.length) return;
  if (--servedCount_[up.index] == 0) ++neverServed_;
}

void Session::removePeer(PeerKey key, Time now) {
  auto it = peers_.find(key);
  if (it == peers_.end()) return;
  Peer& p = *it->second;
  for (auto& [rid, out] : p.out) {
    if (picker_) (void)picker_->unmarkRequested(out.index);
  }
  if (p.counted && picker_) (void)picker_->removePeerBitfield(p.has);
  for (ChunkIndex i : p.revealed) --revealedCount_[i];
  if (optimistic_ == key) optimistic_.reset();
  for (const Up& up : p.uploads) dropUpload(up);
  peers_.erase(it);
  askManifest(now);  // if the manifest was being asked of it
  requestEverywhere(now);
}

void Session::goodbye(Peer& p, wire::GoodbyeReason reason, std::string_view text) {
  if (p.goodbyeSent) return;
  p.goodbyeSent = true;
  auto msg = wire::encode(wire::Goodbye{reason, text});
  if (msg) sendTo(p, std::move(msg), p.lastSent);
}

void Session::goodbyeAll(wire::GoodbyeReason reason, std::string_view text) {
  for (auto& [k, p] : peers_) goodbye(*p, reason, text);
}

void Session::drop(Peer& p, wire::GoodbyeReason reason, std::string_view text) {
  if (p.dropping) return;
  goodbye(p, reason, text);
  p.dropping = true;
  for (auto& [rid, out] : p.out) {
    if (picker_) (void)picker_->unmarkRequested(out.index);
  }
  p.out.clear();
  for (const Up& up : p.uploads) dropUpload(up);
  p.uploads.clear();
  host_.disconnect(p.key);
}

void Session::sendTo(Peer& p, Result<Bytes> message, Time now) {
  if (!message) return;
  p.lastSent = std::max(p.lastSent, now);
  if (p.control.empty()) {
    Status st = host_.send(p.key, *message);
    if (st.has_value() || st.error().code() != Errc::kBackPressure) return;  // other errors: the link is going away
  }
  p.control.push_back(std::move(*message));
}

void Session::onWritable(PeerKey key, Time now) {
  if (Peer* p = find(key)) pump(*p, now);
}

void Session::onMessage(PeerKey key, ByteView bytes, Time now) {
  Peer* pp = find(key);
  if (!pp || pp->dropping) return;
  Peer& p = *pp;
  p.lastHeard = now;
  wire::DecodeContext ctx;
  if (manifest_) ctx.chunkCount = manifest_->chunkCount();
  auto m = wire::decodeMessage(bytes, ctx);
  if (!m) return drop(p, wire::GoodbyeReason::kProtocolError, "undecodable message");
  if (manifest_) {
    if (auto st = wire::checkAgainstManifest(*m, *manifest_); !st) {
      return drop(p, wire::GoodbyeReason::kProtocolError, "out of range for the manifest");
    }
  }
  if (!p.handshaken && !std::holds_alternative<wire::Handshake>(*m)) {
    return drop(p, wire::GoodbyeReason::kProtocolError, "handshake first");
  }
  std::visit([&](const auto& msg) { handle(p, msg, now); }, *m);
}

void Session::handle(Peer& p, const wire::Handshake& h, Time now) {
  if (p.handshaken) return drop(p, wire::GoodbyeReason::kProtocolError, "second handshake");
  if (h.fileId != fileId_) return drop(p, wire::GoodbyeReason::kWrongFile, "not this file");
  if (isBanned(h.peerId)) return drop(p, wire::GoodbyeReason::kProtocolError, "banned: sent chunks that failed verification");
  for (auto& [k, q] : peers_) {
    if (q.get() != &p && q->handshaken && !q->dropping && q->id == h.peerId) {
      return drop(p, wire::GoodbyeReason::kDuplicate, "already connected");
    }
  }
  p.handshaken = true;
  p.id = h.peerId;
  p.caps = h.capabilities;
  if (manifest_) {
    learnBitfield(p, std::vector<bool>(manifest_->chunkCount(), false));
    sendBitfield(p, now);
  }
  std::size_t unchoked = 0;
  for (auto& [k, q] : peers_) unchoked += q->unchoked ? 1u : 0u;
  if (unchoked < opts_.maxConcurrentUploads) p.unchoked = true;
  askManifest(now);
  requestFrom(p, now);
}

// One MANIFEST_REQUEST at a time, to a peer that has the manifest; asked again
// when that peer rejects it or goes away.
void Session::askManifest(Time now) {
  if (!wanted_ || manifest_) return;
  for (auto& [k, q] : peers_) {
    if (q->manifestRequest) return;
  }
  for (auto& [k, p] : peers_) {
    if (p->handshaken && !p->dropping && (p->caps & wire::kCapHasManifest)) {
      const std::uint32_t rid = p->nextRequestId++;
      p->manifestRequest = rid;
      p->manifestAssembler.emplace(rid);
      sendTo(*p, wire::encode(wire::ManifestRequest{rid}), now);
      return;
    }
  }
}

// A peer that said at its handshake that it had no manifest now shows chunks
// (BITFIELD or HAVE), so it has one: it may be asked. (Leechers that linked
// before either had the manifest waited for a new peer instead: 1 s at 0 %.)
void Session::peerGotManifest(Peer& p, Time now) {
  if (p.caps & wire::kCapHasManifest) return;
  p.caps |= wire::kCapHasManifest;
  askManifest(now);
}

void Session::handle(Peer& p, const wire::Bitfield& b, Time now) {
  if (!manifest_) {
    p.pendingBitfield = Bytes(b.bits.begin(), b.bits.end());
    return peerGotManifest(p, now);
  }
  std::vector<bool> bits(b.chunkCount);
  for (ChunkIndex i = 0; i < b.chunkCount; ++i) bits[i] = b.has(i);
  learnBitfield(p, std::move(bits));
  if (superSeeding_) reveal(p, now);
  requestFrom(p, now);
}

void Session::handle(Peer& p, const wire::Have& h, Time now) {
  if (!manifest_) {  // kept for when the manifest arrives (a super-seeder's reveals come this early)
    if (p.pendingHaves.size() < kMaxPendingHaves) p.pendingHaves.push_back(h.index);
    return peerGotManifest(p, now);
  }
  if (!p.counted || p.has[h.index]) return;
  p.has[h.index] = true;
  ++p.hasCount;
  (void)picker_->peerHas(h.index);
  if (superSeeding_) reveal(p, now);
  requestFrom(p, now);
}

void Session::handle(Peer& p, const wire::Request& r, Time now) {
  auto reject = [&](wire::RejectReason why, std::uint32_t retryMs = 0) {
    sendTo(p, wire::encode(wire::Reject{r.requestId, why, retryMs}), now);
  };
  p.lastRequest = now;
  if (!serving_) return reject(wire::RejectReason::kUnknownFile);
  if (!manifest_ || !have(r.index)) return reject(wire::RejectReason::kNotHave);
  if (!p.unchoked) {
    return reject(wire::RejectReason::kOverloaded, retryHint(nextChoke_ - now));
  }
  if (p.uploads.size() >= opts_.maxUploadRequestsPerPeer) return reject(wire::RejectReason::kTooManyRequests);
  // Admission: beyond one request per peer, none that would wait longer than
  // maxUploadQueue behind what is already queued at our measured upload rate;
  // the taker asks elsewhere and comes back after the hint. (On slow uplinks
  // every taker's pipeline queued here: requests waited 30 s and more, timed
  // out and were fetched twice.)
  if (!p.uploads.empty()) {
    double rate = 0, queued = r.length;
    for (auto& [k, q] : peers_) {
      rate += q->up.rate(now);
      for (const Up& up : q->uploads) queued += up.length - up.sent;
    }
    if (rate > 0 && queued / rate > seconds(opts_.maxUploadQueue)) {
      return reject(wire::RejectReason::kOverloaded, retryHint(fromSeconds(0.5 * queued / rate)));  // half the queue
    }
  }
  if (std::uint64_t{r.offset} + r.length > manifest_->storedChunkLength(r.index)) {
    return reject(wire::RejectReason::kInvalidRequest);
  }
  p.uploads.push_back(Up{r.requestId, r.index, r.offset, r.length, {}, 0, now});
  if (superSeeding_) {  // taken: reveal the next one now, so the peer always has some to ask for
    unreveal(p, r.index);
    ++assignedCount_[r.index];
    reveal(p, now);
  }
  pump(p, now);
}

void Session::handle(Peer& p, const wire::Cancel& c, Time) {
  for (auto it = p.uploads.begin(); it != p.uploads.end(); ++it) {
    if (it->requestId == c.requestId) {
      dropUpload(*it);
      p.uploads.erase(it);  // a partly sent chunk stops too: the taker discards it
      return;
    }
  }
}

void Session::forget(Peer& p, std::uint32_t requestId, bool failed) {
  auto it = p.out.find(requestId);
  if (it == p.out.end()) return;
  if (picker_) (void)picker_->unmarkRequested(it->second.index);
  p.out.erase(it);
  if (failed) ++p.failures;
}

void Session::handle(Peer& p, const wire::Reject& r, Time now) {
  if (p.manifestRequest && *p.manifestRequest == r.requestId) {
    p.manifestRequest.reset();
    p.manifestAssembler.reset();
    p.caps &= ~wire::kCapHasManifest;  // it said it has none: ask another peer
    return askManifest(now);
  }
  auto it = p.out.find(r.requestId);
  if (it == p.out.end()) return;
  const ChunkIndex index = it->second.index;
  switch (r.reason) {
    case wire::RejectReason::kOverloaded: {  // choked (or busy): come back after the hint
      Time wait = r.retryAfterMs ? Time(std::chrono::milliseconds(r.retryAfterMs)) : Time(std::chrono::seconds(2));
      p.chokedUntil = now + wait;
      forget(p, r.requestId, false);
      break;
    }
    case wire::RejectReason::kTooManyRequests:
      p.requestCap = std::max<std::size_t>(1, p.out.size() - 1);
      forget(p, r.requestId, false);
      break;
    case wire::RejectReason::kNotHave:
      forget(p, r.requestId, true);
      if (p.counted && p.has[index]) {
        p.has[index] = false;
        --p.hasCount;
        (void)picker_->peerLost(index);
      }
      break;
    default:  // unknown file (it stopped seeding), invalid: ask elsewhere
      forget(p, r.requestId, true);
      if (r.reason == wire::RejectReason::kUnknownFile) p.chokedUntil = now + opts_.chokeInterval;
      break;
  }
  requestEverywhere(now);
}

void Session::handle(Peer& p, const wire::Piece& piece, Time now) {
  auto it = p.out.find(piece.requestId);
  counters_.downloaded += piece.data.size();
  // Only bytes that answer a request of ours count towards the peer's rate
  // (its reciprocation rank and pipeline depth): unsolicited PIECEs would
  // otherwise buy an unchoke. Late answers to a cancelled request are wasted too.
  if (it == p.out.end()) {
    counters_.wasted += piece.data.size();
    return;
  }
  Out& out = it->second;
  if (auto st = out.assembler.add(piece); !st) return drop(p, wire::GoodbyeReason::kProtocolError, "bad piece");
  p.down.add(piece.data.size(), now);
  p.pipeRate.add(piece.data.size(), now);
  p.lastProgress = now;
  if (!out.gotFirstByte) {
    out.gotFirstByte = true;
    // The pipeline covers rate x this latency. Only probes count: a request
    // whose chunk the peer had read ahead answers in a round trip, and the
    // pipeline sized by that would not cover the reads (a 50 ms store
    // answered at ~2 chunks per 50 ms).
    if (out.probe) {
      const Time latency = now - out.sent;
      if (!p.latencyKnown || latency < p.minLatency) p.minLatency = latency;
      p.latencyKnown = true;
    }
  }
  if (!out.assembler.complete()) return;
  const ChunkIndex index = out.index;
  auto data = out.assembler.take();
  p.out.erase(it);
  if (!data) return drop(p, wire::GoodbyeReason::kProtocolError, "piece assembly");
  if (picker_->have(index)) {  // an endgame duplicate that crossed our CANCEL (or one being stored)
    counters_.wasted += data->size();
    return requestFrom(p, now);
  }
  if (data->size() != manifest_->storedChunkLength(index) || Blake3::hash(*data) != manifest_->chunkHashes[index]) {
    return badChunk(p, index, now);
  }
  chunkArrived(p, index, std::move(*data), now);
}

void Session::badChunk(Peer& p, ChunkIndex index, Time now) {
  (void)picker_->unmarkRequested(index);
  ++counters_.badChunks;
  counters_.wasted += manifest_->storedChunkLength(index);
  ++p.badChunks;
  ++p.failures;
  if (p.badChunks >= opts_.banAfterBadChunks) {
    banned_.push_back(p.id);
    ++counters_.bans;
    host_.onBanned(p.key, p.id);
    drop(p, wire::GoodbyeReason::kProtocolError, "banned: sent chunks that failed verification");
  } else {
    p.chokedUntil = now + opts_.chokeInterval;  // scored down: others first for a while
  }
  requestEverywhere(now);
}

// A verified chunk: never picked again; it goes to the store and counts as
// held once the store confirms (onChunkStored).
void Session::chunkArrived(Peer& p, ChunkIndex index, Bytes data, Time now) {
  (void)picker_->markHave(index);
  ++p.chunksReceived;
  // Endgame: cancel the same chunk elsewhere.
  std::vector<Peer*> freed;
  for (auto& [k, q] : peers_) {
    if (q->dropping || !q->handshaken) continue;
    for (auto o = q->out.begin(); o != q->out.end();) {
      if (o->second.index == index) {
        sendTo(*q, wire::encode(wire::Cancel{o->first}), now);
        o = q->out.erase(o);
        freed.push_back(q.get());
      } else {
        ++o;
      }
    }
  }
  writing_.insert(index);
  host_.storeChunk(index, std::move(data));
  requestFrom(p, now);
  for (Peer* q : freed) requestFrom(*q, now);
}

void Session::onChunkStored(ChunkIndex index, Status status, Time now) {
  if (writing_.erase(index) == 0 || !manifest_) return;  // not one we asked for
  const bool wasFull = writing_.size() + 1 >= opts_.maxPendingWrites;
  if (!status) {
    (void)picker_->unmarkHave(index);  // not held after all: pick it again
    if (status.error().code() == Errc::kBackPressure) {  // the store was busy: fetch it again later
      requestEverywhere(now);
    } else {
      host_.onError(status.error());  // reported; the host decides whether the fetch goes on
    }
    return;
  }
  have_[index] = true;
  ++haveCount_;
  ++counters_.chunksFetched;
  counters_.bytesVerified += manifest_->storedChunkLength(index);
  for (auto& [k, q] : peers_) {  // tell everyone who lacks it
    if (q->dropping || !q->handshaken) continue;
    if (!q->counted || !q->has[index]) sendTo(*q, wire::encode(wire::Have{index}), now);
  }
  host_.onChunk(index);
  checkComplete(now);
  if (wasFull) requestEverywhere(now);
}

void Session::onChunkRead(ChunkIndex index, Result<Bytes> data, Time now) {
  auto asked = reading_.find(index);
  if (asked == reading_.end()) return;
  const Time took = now - asked->second;
  readLatency_ = readLatency_ == Time{} ? took : (readLatency_ * 7 + took) / 8;
  reading_.erase(asked);
  std::shared_ptr<const Bytes> chunk;
  if (data) {
#ifdef P2PCDN_FAULT_INJECTION
    if (opts_.faultCorruptServedChunks && !data->empty()) (*data)[data->size() / 2] ^= 0x5a;
#endif
    chunk = std::make_shared<const Bytes>(std::move(*data));
  }
  // Every queued upload of this chunk within its link's read-ahead gets it;
  // links whose next upload waited for a read go on (with this chunk, or to
  // ask for the one they wait for now: their queues may have changed).
  for (auto& [k, q] : peers_) {
    if (q->dropping || q->uploads.empty()) continue;
    const bool waited = !q->uploads.front().chunk;
    for (auto it = q->uploads.begin(); it != q->uploads.end();) {
      if (it->index != index || it->chunk) {
        ++it;
      } else if (!chunk || chunk->size() < std::uint64_t{it->offset} + it->length) {  // evicted or corrupt: never serve bad bytes
        sendTo(*q, wire::encode(wire::Reject{it->requestId, wire::RejectReason::kNotHave, 0}), now);
        it = q->uploads.erase(it);
      } else {
        it->chunk = chunk;
        ++it;
      }
    }
    if (waited) pumpOne(*q, now);
  }
}

// Asks the host for the chunks of the first few queued uploads, so that
// they are in memory when their turn comes: twice what the link sends in one
// read latency, at its recent peak rate (the current rate drops while the
// link waits for a read, which would shrink the read-ahead that keeps it busy).
void Session::readAhead(Peer& p, Time now) {
  const double decayed = p.sendPeak * std::exp(-seconds(now - p.sendPeakAt) / kSendPeakTau);
  const double current = p.sendRate.rate(now);
  if (current >= decayed) {
    p.sendPeak = current;
    p.sendPeakAt = now;
  }
  const double rate = std::max(current, decayed);
  const std::size_t chunk = manifest_ ? manifest_->chunkSize : 1;
  const double inFlight = 2 * rate * seconds(readLatency_);
  const auto ahead = std::min<std::size_t>(opts_.maxReadAhead, 2 + static_cast<std::size_t>(inFlight / static_cast<double>(chunk)));
  std::size_t n = 0;
  for (auto it = p.uploads.begin(); it != p.uploads.end() && n < ahead; ++it, ++n) {
    if (it->chunk || reading_.count(it->index)) continue;
    reading_.emplace(it->index, now);
    host_.readChunk(it->index);
  }
}

void Session::handle(Peer& p, const wire::ManifestRequest& r, Time now) {
  if (!manifest_ || manifestBytes_.empty()) {
    return sendTo(p, wire::encode(wire::Reject{r.requestId, wire::RejectReason::kNotHave, 0}), now);
  }
  auto parts = wire::splitManifest(r.requestId, manifestBytes_);
  if (!parts) return;
  for (Bytes& part : *parts) sendTo(p, std::move(part), now);
}

void Session::handle(Peer& p, const wire::ManifestPart& part, Time now) {
  if (!p.manifestAssembler || manifest_) return;
  if (auto st = p.manifestAssembler->add(part); !st) return drop(p, wire::GoodbyeReason::kProtocolError, "bad manifest part");
  if (!p.manifestAssembler->complete()) return;
  auto m = p.manifestAssembler->finish(fileId_);
  p.manifestAssembler.reset();
  p.manifestRequest.reset();
  if (!m) return drop(p, wire::GoodbyeReason::kProtocolError, "manifest does not match the file id");
  if (auto st = host_.storeManifest(*m); !st) return host_.onError(st.error());
  adoptManifest(*m, {}, now);
  if (wanted_) host_.onManifest(*manifest_);
  checkComplete(now);
  requestEverywhere(now);
}

void Session::handle(Peer&, const wire::KeepAlive&, Time) {}

void Session::handle(Peer& p, const wire::Goodbye&, Time) {
  ++counters_.goodbyesReceived;
  p.goodbyeSent = true;  // no reply
  drop(p, wire::GoodbyeReason::kNormal, {});
}

// ---- requesting ---------------------------------------------------------------

// Enough whole-chunk requests to cover pipelineHeadroom x the peer's rate x
// latency, plus requestSlack (one being transmitted).
std::size_t Session::requestTarget(const Peer& p, Time now) const {
  const double rate = p.pipeRate.rate(now);
  const double latency = seconds(p.latencyKnown ? p.minLatency : opts_.latencyGuess);
  const double chunk = manifest_ ? static_cast<double>(manifest_->chunkSize) : 262144.0;
  const double covered = opts_.pipelineHeadroom * rate * latency / chunk;
  std::size_t target = static_cast<std::size_t>(std::ceil(covered)) + opts_.requestSlack;
  if (p.chunksReceived == 0) target = std::max<std::size_t>(target, 4);  // start before measuring
  target = std::clamp(target, opts_.minRequestsPerPeer, opts_.maxRequestsPerPeer);
  return std::min(target, p.requestCap);
}

void Session::requestFrom(Peer& p, Time now) {
  if (!wanted_ || !picker_ || !p.handshaken || p.dropping || !p.counted || p.hasCount == 0) return;
  if (now < p.chokedUntil || now < p.restUntil) return;
  if (writing_.size() >= opts_.maxPendingWrites) return;  // the store is behind: onChunkStored asks again
  const std::size_t target = requestTarget(p, now);
  if (p.out.size() >= target) return;
  // The download-peer limit leaves out a super-seeder: it shows a peer only
  // the chunks nobody else has, a few at a time, at a share of its uplink.
  // Counted, it took a slot from each of its neighbours, and they finished
  // last (1000 peers: their median ~1 s after the others').
  if (p.out.empty() && !picker_->isEndgame() && !(p.caps & wire::kCapSuperSeed)) {  // endgame: race the last chunks from anyone
    if (downloadPeers(now) >= opts_.maxConcurrentDownloads) return;
  }
  if ((opts_.globalDown && !opts_.globalDown->ready(now)) || !p.downBucket.ready(now)) {
    Time at = p.downBucket.readyAt(now);
    if (opts_.globalDown) at = std::max(at, opts_.globalDown->readyAt(now));
    if (downloadWake_ == Time{} || at < downloadWake_) downloadWake_ = at;
    return;
  }
  std::vector<ChunkIndex> inFlight;
  inFlight.reserve(p.out.size());
  for (auto& [rid, o] : p.out) inFlight.push_back(o.index);
  auto picks = picker_->pick(p.has, target - p.out.size(), streaming_ ? PickMode::kStreaming : PickMode::kWholeFile,
                             rng_, inFlight);
  if (p.out.empty() && !picks.empty()) p.lastProgress = now;
  if (!picks.empty() && !p.downloadingSince) p.downloadingSince = now;
  for (ChunkIndex i : picks) {
    auto assembler = wire::ChunkAssembler::forManifest(*manifest_, i);
    if (!assembler) return;
    const std::uint32_t length = manifest_->storedChunkLength(i);
    const std::uint32_t rid = p.nextRequestId++;
    sendTo(p, wire::encode(wire::Request{rid, i, 0, length}), now);
    const bool probe = p.out.empty();
    p.out.emplace(rid, Out{i, std::move(*assembler), now, false, probe});
    (void)picker_->markRequested(i);
    p.downBucket.spend(length, now);
    if (opts_.globalDown) opts_.globalDown->spend(length, now);
  }
}

// Peers taking one of the maxConcurrentDownloads slots: requests outstanding,
// not a super-seeder, not rotated out.
std::size_t Session::downloadPeers(Time now) const {
  std::size_t n = 0;
  for (auto& [k, q] : peers_) n += (q->out.empty() || (q->caps & wire::kCapSuperSeed) || now < q->restUntil) ? 0u : 1u;
  return n;
}

bool Session::lacksFrom(const Peer& p) const {
  if (!p.counted || p.hasCount == 0) return false;
  for (ChunkIndex i = 0; i < p.has.size(); ++i) {
    if (p.has[i] && !picker_->have(i)) return true;
  }
  return false;
}

// With every download slot taken and a neighbour with chunks we lack left
// out, the slowest download peer (downloading for at least two periods) rests
// for a while and its slot goes to another. Slots are taken first come, first
// served, so a peer can end up downloading from uploaders that serve twenty
// takers each while others serve five; rotating the slowest out finds the
// faster ones (1000 simulated peers: a cluster of early joiners finished 7 s
// after the rest without it).
void Session::rotateDownloads(Time now) {
  if (!wanted_ || !picker_ || complete() || picker_->isEndgame() || opts_.rotateDownloadsEvery == Time{}) return;
  if (downloadPeers(now) < opts_.maxConcurrentDownloads) return;
  Peer* slowest = nullptr;
  bool candidate = false;
  for (auto& [k, pp] : peers_) {
    Peer& p = *pp;
    if (!p.handshaken || p.dropping || (p.caps & wire::kCapSuperSeed)) continue;
    if (p.out.empty()) {
      if (!candidate && now >= p.chokedUntil && now >= p.restUntil && lacksFrom(p)) candidate = true;
      continue;
    }
    if (now < p.restUntil || !p.downloadingSince || now - *p.downloadingSince < 2 * opts_.rotateDownloadsEvery) continue;
    if (!slowest || p.down.rate(now) < slowest->down.rate(now)) slowest = &p;
  }
  if (!candidate || !slowest) return;
  slowest->restUntil = now + 2 * opts_.rotateDownloadsEvery;
  slowest->downloadingSince.reset();
  requestEverywhere(now);
}

void Session::requestEverywhere(Time now) {
  if (!wanted_ || !picker_) return;
  // Fastest peers first, so that they fill their pipelines before slow ones.
  std::vector<Peer*> order;
  for (auto& [k, p] : peers_) order.push_back(p.get());
  std::sort(order.begin(), order.end(), [&](Peer* a, Peer* b) { return a->down.rate(now) > b->down.rate(now); });
  for (Peer* p : order) requestFrom(*p, now);
}

void Session::cancelAll(Peer& p, Time now) {
  for (auto& [rid, out] : p.out) {
    sendTo(p, wire::encode(wire::Cancel{rid}), now);
    if (picker_) (void)picker_->unmarkRequested(out.index);
  }
  p.out.clear();
}

// ---- uploading ----------------------------------------------------------------

// Super-seeding: is a chunk nobody has yet waiting in another peer's queue?
bool Session::firstServeWaiting(const Peer& self) const {
  for (const auto& [k, q] : peers_) {
    if (q.get() == &self || q->dropping || !q->unchoked) continue;
    for (const Up& up : q->uploads) {
      if (servedCount_[up.index] == 0) return true;
    }
  }
  return false;
}

// PIECE data per message: about pieceTime at the link's send rate, within
// [minPiecePayload, maxPiecePayload] (at least one byte whatever the options).
std::size_t Session::pieceSize(const Peer& p, Time now) const {
  const std::size_t hi = std::max<std::size_t>(1, opts_.maxPiecePayload);
  const std::size_t lo = std::clamp<std::size_t>(opts_.minPiecePayload, 1, hi);
  return std::clamp(static_cast<std::size_t>(std::max(0.0, p.sendRate.rate(now) * seconds(opts_.pieceTime))), lo, hi);
}

// PIECE bytes a link may hold: sendBacklog at its send rate, at least
// sendBacklogPieces pieces (sendBacklogPiecesToUploader towards a peer we
// have requests outstanding at), at least one.
std::size_t Session::sendWindow(const Peer& p, std::size_t piece, Time now) const {
  const std::size_t pieces = std::max<std::size_t>(1, p.out.empty() ? opts_.sendBacklogPieces : opts_.sendBacklogPiecesToUploader);
  const double minimum = static_cast<double>(pieces * std::min<std::size_t>(piece, manifest_->chunkSize));
  return static_cast<std::size_t>(std::max(minimum, p.sendRate.rate(now) * seconds(opts_.sendBacklog)));
}

void Session::pump(Peer& p, Time now) {
  pumpOne(p, now);
  if (releaseHeld_) {  // a first serve finished: links held back may go on
    releaseHeld_ = false;
    for (auto& [k, q] : peers_) {
      if (q.get() != &p) pumpOne(*q, now);
    }
  }
}

void Session::pumpOne(Peer& p, Time now) {
  sendQueued(p, now);
  if (!p.dropping && !p.uploads.empty()) readAhead(p, now);
}

void Session::sendQueued(Peer& p, Time now) {
  if (p.dropping && p.control.empty()) return;
  while (!p.control.empty()) {
    Status st = host_.send(p.key, p.control.front());
    if (!st) {
      if (st.error().code() == Errc::kBackPressure) return;
      p.control.clear();
      return;
    }
    p.control.pop_front();
  }
  const bool seeding = complete();
  while (!p.uploads.empty() && !p.dropping) {
    if ((opts_.globalUp && !opts_.globalUp->ready(now)) || !p.upBucket.ready(now)) {
      Time at = p.upBucket.readyAt(now);
      if (opts_.globalUp) at = std::max(at, opts_.globalUp->readyAt(now));
      if (uploadWake_ == Time{} || at < uploadWake_) uploadWake_ = at;
      return;
    }
    if (p.uploads.front().sent == 0 && seeding && !(p.caps & wire::kCapStreaming)) {
      // A seeder serves the chunk it has served least first: distinct chunks
      // leave it sooner and the leechers trade the rest among themselves.
      // A request that has waited maxUploadQueue goes first (no starvation).
      auto best = p.uploads.begin();
      for (auto it = p.uploads.begin(); it != p.uploads.end(); ++it) {
        if (it->sent != 0) continue;
        if (now - it->queued > opts_.maxUploadQueue) {
          best = it;
          break;
        }
        if (servedCount_[it->index] < servedCount_[best->index]) best = it;
      }
      if (best != p.uploads.begin()) {
        // The old front keeps its read unless it moves past the read-ahead
        // window (then it is read again when its turn comes).
        if (std::distance(p.uploads.begin(), best) >= static_cast<std::ptrdiff_t>(opts_.maxReadAhead)) {
          p.uploads.front().chunk.reset();
        }
        std::iter_swap(best, p.uploads.begin());
      }
    }
    Up& up = p.uploads.front();
    // Super-seeding: while chunks nobody has wait in other queues, a repeat
    // waits too; the shared uplink goes to the new chunks first. A repeat held
    // for a quarter of maxUploadQueue is refused instead (the taker gets it
    // from whoever has it): on slow links new chunks are always waiting, and
    // held repeats waited until the taker's time-out.
    if (superSeeding_ && neverServed_ > 0 && up.sent == 0 && servedCount_[up.index] > 0 && firstServeWaiting(p)) {
      if (now - up.queued > opts_.maxUploadQueue / 4) {
        sendTo(p, wire::encode(wire::Reject{up.requestId, wire::RejectReason::kOverloaded, retryHint(opts_.maxUploadQueue / 4)}),
               now);
        p.uploads.pop_front();
        continue;
      }
      holding_ = true;
      // Look again when the hold expires, even if no first serve ends first
      // (the peer it waits for may be choked, dropped or back-pressured).
      const Time expires = up.queued + opts_.maxUploadQueue / 4 + std::chrono::milliseconds(1);
      if (uploadWake_ == Time{} || expires < uploadWake_) uploadWake_ = expires;
      return;
    }
    if (!up.chunk) return;  // its read completes later (onChunkRead pumps this link again)
    const std::size_t size = pieceSize(p, now);
    const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(size, up.length - up.sent));
    if (const auto queued = opts_.sendBacklog > Time{} ? host_.buffered(p.key) : std::nullopt) {
      // Keep the link's queue short in time: our REQUESTs, HAVEs and CANCELs
      // to this peer queue behind it. (1000 simulated peers: the publisher's
      // neighbours, which everyone downloads from, sent their own requests
      // seconds late and finished last.)
      const std::size_t window = sendWindow(p, size, now);
      if (*queued >= window) {
        p.windowFull = true;
        ++counters_.windowWaits;
        host_.notifyWhenBufferedBelow(p.key, window / 2);
        return;
      }
    }
    p.windowFull = false;
    wire::Piece piece{up.requestId, up.index, static_cast<std::uint32_t>(up.chunk->size()), up.offset + up.sent,
                      ByteView(*up.chunk).subspan(up.offset + up.sent, n)};
    auto msg = wire::encode(piece);
    if (!msg) {
      dropUpload(up);
      p.uploads.pop_front();
      continue;
    }
    Status st = host_.send(p.key, *msg);
    if (!st) return;  // back-pressure (or closing): onWritable resumes
    p.lastSent = std::max(p.lastSent, now);
    p.up.add(n, now);
    p.sendRate.add(n, now);
    counters_.uploaded += n;
    p.upBucket.spend(n, now);
    if (opts_.globalUp) opts_.globalUp->spend(n, now);
    const bool first = up.sent == 0;
    up.sent += n;
    p.lastPieceSent = now;
    lastServe_ = now;
    // Only a whole chunk counts as served: a peer asking for a byte of each
    // must not end super-seeding's first pass. It counts from its first
    // piece: sent in several pieces, a chunk on its way to one peer must not
    // look never-served to the next taker (the least-served order and the
    // repeat rule). No measurable change in the simulator.
    const bool whole = up.offset == 0 && up.length == up.chunk->size();
    if (first && whole) {
      up.counted = true;
      if (servedCount_[up.index]++ == 0) {
        --neverServed_;
        if (holding_) {
          holding_ = false;
          releaseHeld_ = true;
        }
      } else if (neverServed_ > 0) {
        ++counters_.earlyRepeats;
      }
    }
    if (up.sent == up.length) {
      ++p.chunksServed;
      // It has it now (peers send no HAVE for a chunk we have): remember, so
      // super-seeding does not show it again and interest stays exact.
      if (p.counted && whole && !p.has[up.index]) {
        p.has[up.index] = true;
        ++p.hasCount;
        (void)picker_->peerHas(up.index);
      }
      p.uploads.pop_front();
      // Super-seeding: the peer is not asking for what we revealed (it gets it
      // elsewhere): reveal one more rather than let the link idle.
      if (superSeeding_ && p.uploads.empty() && p.unchoked) reveal(p, now, p.revealed.size() + 1);
    }
  }
}

void Session::pumpAll(Time now) {
  // Start at a random peer so a global limit is shared fairly.
  if (peers_.empty()) return;
  std::vector<Peer*> order;
  for (auto& [k, p] : peers_) order.push_back(p.get());
  std::rotate(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(rng_() % order.size()), order.end());
  for (Peer* p : order) pump(*p, now);
}

// O(chunks); called once per peer per choke round.
bool Session::interested(const Peer& p) const {
  if (!p.handshaken || p.dropping) return false;
  if (!p.counted) return true;  // no manifest yet: it may want the manifest or anything
  if (p.hasCount >= have_.size()) return false;
  for (ChunkIndex i = 0; i < have_.size(); ++i) {
    if (have_[i] && !p.has[i]) return true;
  }
  return false;
}

std::size_t Session::usefulPeers() const {
  std::size_t n = 0;
  for (const auto& [k, p] : peers_) {
    if (p->handshaken && !p->dropping && lacksFrom(*p)) ++n;
  }
  return n;
}

void Session::chokeRound(Time now) {
  ++chokeRounds_;
  const bool seeding = complete();
  std::vector<Peer*> candidates;
  for (auto& [k, p] : peers_) {
    if (interested(*p)) candidates.push_back(p.get());
  }
  std::shuffle(candidates.begin(), candidates.end(), rng_);
  // Downloading: reciprocate (who gives us most). Seeding: who takes fastest.
  std::stable_sort(candidates.begin(), candidates.end(), [&](Peer* a, Peer* b) {
    return seeding ? a->up.rate(now) > b->up.rate(now) : a->down.rate(now) > b->down.rate(now);
  });
  const std::size_t slots = opts_.maxConcurrentUploads;
  const std::size_t regular = slots > 1 ? slots - 1 : slots;
  std::vector<Peer*> unchoke(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(std::min(regular, candidates.size())));
  if (slots > 1 && candidates.size() > unchoke.size()) {
    Peer* current = nullptr;
    if (optimistic_) {
      for (std::size_t i = unchoke.size(); i < candidates.size(); ++i) {
        if (candidates[i]->key == *optimistic_) current = candidates[i];
      }
    }
    if (!current || chokeRounds_ % opts_.optimisticEvery == 0) {
      // Rotate: a random choked peer; newcomers (connected < 3 rounds) count thrice.
      std::vector<Peer*> pool;
      for (std::size_t i = unchoke.size(); i < candidates.size(); ++i) {
        Peer* c = candidates[i];
        int weight = now - c->connected < opts_.chokeInterval * 3 ? 3 : 1;
        for (int w = 0; w < weight; ++w) pool.push_back(c);
      }
      current = pool[rng_() % pool.size()];
    }
    optimistic_ = current->key;
    unchoke.push_back(current);
  }
  for (auto& [k, p] : peers_) {
    bool on = std::find(unchoke.begin(), unchoke.end(), p.get()) != unchoke.end();
    if (p->unchoked && !on) {  // choke: queued requests are refused with a retry hint
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(opts_.chokeInterval).count();
      for (auto& up : p->uploads) {
        if (up.sent == 0) {
          sendTo(*p, wire::encode(wire::Reject{up.requestId, wire::RejectReason::kOverloaded, static_cast<std::uint32_t>(wait)}), now);
        }
      }
      std::erase_if(p->uploads, [](const Up& up) { return up.sent == 0; });
    }
    p->unchoked = on || (!interested(*p) && p->unchoked);
  }
  // Two complete peers have nothing to trade: free the link for leechers.
  if (seeding) {
    for (auto& [k, p] : peers_) {
      if (p->handshaken && p->counted && p->hasCount == have_.size() && !p->dropping) {
        drop(*p, wire::GoodbyeReason::kNormal, "both complete");
      }
    }
  }
}

// ---- timers -------------------------------------------------------------------

void Session::tick(Time now) {
  if (nextChoke_ == Time{}) nextChoke_ = now + opts_.chokeInterval;
  if (now >= nextChoke_) {
    chokeRound(now);
    nextChoke_ = now + opts_.chokeInterval;
  }
  if (opts_.rotateDownloadsEvery > Time{} && now >= nextRotate_) {
    if (nextRotate_ != Time{}) rotateDownloads(now);
    nextRotate_ = now + opts_.rotateDownloadsEvery;
  }
  std::vector<Peer*> stale;
  for (auto& [k, pp] : peers_) {
    Peer& p = *pp;
    if (p.dropping) continue;
    if (now - p.lastHeard > opts_.idleTimeout) {
      stale.push_back(&p);
      continue;
    }
    if (p.handshaken && now - p.lastSent > opts_.keepAliveAfter) sendTo(p, wire::encode(wire::KeepAlive{}), now);
    if (p.windowFull) {  // in case the drain notice was lost
      const auto before = counters_.uploaded;
      pumpOne(p, now);
      if (counters_.uploaded != before) ++counters_.lateRefills;
    }
    if (p.out.empty()) continue;
    // A stalled peer: nothing for stallTimeout (or 4 chunk-times at its rate).
    const double rate = p.down.rate(now);
    Time stall = opts_.stallTimeout;
    if (rate > 0 && manifest_) stall = std::max(stall, fromSeconds(4.0 * manifest_->chunkSize / rate));
    if (p.chunksReceived == 0) stall = std::max(stall, opts_.requestTimeout);
    bool stalled = now - p.lastProgress > stall;
    // A request may wait behind every other one outstanding at that peer (an
    // uploader need not serve in order): on a slow link (a 256 KiB chunk over
    // a 2 Mbit/s uplink shared by ten takers takes ~10 s) the deadline grows
    // with the requests outstanding and the link's rate.
    Time limit = opts_.requestTimeout;
    if (rate > 0 && manifest_) {
      limit = std::max(limit, fromSeconds(3.0 * static_cast<double>(p.out.size()) * manifest_->chunkSize / rate));
    }
    std::vector<std::uint32_t> expired;
    for (auto& [rid, o] : p.out) {
      // Once its bytes are arriving the stall check covers it; a request that
      // only trickles is cut at 4x the limit.
      if (stalled || now - o.sent > (o.gotFirstByte ? 4 * limit : limit)) {
        expired.push_back(rid);
      }
    }
    for (auto rid : expired) {
      sendTo(p, wire::encode(wire::Cancel{rid}), now);
      forget(p, rid, true);
      ++counters_.timeouts;
    }
    if (stalled) p.chokedUntil = now + opts_.chokeInterval;  // snubbed: ask others for a while
  }
  for (Peer* p : stale) drop(*p, wire::GoodbyeReason::kIdleTimeout, "silent too long");
  if (superSeeding_) {
    for (auto& [k, p] : peers_) {
      if (!p->unchoked || !p->uploads.empty() || p->fullReveal || !p->counted || p->dropping) continue;
      // Stalled: it asked for nothing, we sent it nothing and served nobody
      // for kRevealIdle although it lacks chunks we showed it (it wants
      // others: a streaming window that started after the handshake).
      // Only while we serve nobody: a busy seeder is not stalled, and showing
      // everything to a peer that merely gets its chunks elsewhere for a while
      // undoes super-seeding (1 seeder -> 3 leechers: leecher share 54 % -> 31 %).
      const Time quiet = now - std::max({p->lastPieceSent, p->lastRequest, p->connected, lastServe_});
      const double rate = p->up.rate(now);  // a slow link is quiet for a while between chunks
      const Time idle = std::max(kRevealIdle, rate > 0 ? fromSeconds(4.0 * manifest_->chunkSize / rate) : kRevealIdle);
      if (quiet > idle && !p->revealed.empty()) {
        revealAll(*p, now);  // it does not want what we show it (streaming window, endgame): show everything
      } else if (p->revealed.size() < 4 * opts_.superSeedReveal) {
        reveal(*p, now, p->revealed.size() + 1);  // idle link: one more
      }
    }
  }
  if (uploadWake_ != Time{} && now >= uploadWake_) {
    uploadWake_ = Time{};
    pumpAll(now);
  }
  if (downloadWake_ != Time{} && now >= downloadWake_) downloadWake_ = Time{};
  requestEverywhere(now);
}

Time Session::nextWakeup(Time now) const {
  Time next = now + std::chrono::seconds(1);
  if (nextChoke_ != Time{}) next = std::min(next, nextChoke_);
  if (nextRotate_ != Time{}) next = std::min(next, nextRotate_);
  if (uploadWake_ != Time{}) next = std::min(next, uploadWake_);
  if (downloadWake_ != Time{}) next = std::min(next, downloadWake_);
  for (auto& [k, p] : peers_) {
    if (p->chokedUntil > now) next = std::min(next, p->chokedUntil);
  }
  return std::max(next, now);
}

// ---- stats --------------------------------------------------------------------

SessionStats Session::stats() const {
  SessionStats s = counters_;
  s.haveManifest = manifest_.has_value();
  if (manifest_) {
    s.chunksTotal = manifest_->chunkCount();
    s.bytesTotal = manifest_->storedSize();
    s.distinctServed = manifest_->chunkCount() - neverServed_;
  }
  s.chunksHave = haveCount_;
  s.readsPending = reading_.size();
  s.writesPending = writing_.size();
  s.complete = complete();
  s.peers = 0;
  for (auto& [k, p] : peers_) s.peers += p->handshaken && !p->dropping ? 1u : 0u;
  return s;
}

std::optional<PeerStats> Session::peerStats(PeerKey key, Time now) const {
  auto it = peers_.find(key);
  if (it == peers_.end()) return std::nullopt;
  const Peer& p = *it->second;
  PeerStats s;
  s.key = p.key;
  s.peerId = p.id;
  s.handshaken = p.handshaken;
  s.chunksAvailable = p.hasCount;
  s.seeder = p.counted && p.hasCount == p.has.size() && !p.has.empty();
  s.bytesUp = p.up.total();
  s.bytesDown = p.down.total();
  s.upRate = p.up.rate(now);
  s.downRate = p.down.rate(now);
  s.chunksServed = p.chunksServed;
  s.chunksReceived = p.chunksReceived;
  s.failures = p.failures;
  s.badChunks = p.badChunks;
  s.requestsOutstanding = p.out.size();
  s.requestTarget = manifest_ ? requestTarget(p, now) : 0;
  s.uploadsQueued = p.uploads.size();
  s.unchoked = p.unchoked;
  s.chokingUs = now < p.chokedUntil;
  s.latencySeconds = p.latencyKnown ? seconds(p.minLatency) : 0;
  return s;
}

std::vector<PeerStats> Session::peerStats(Time now) const {
  std::vector<PeerStats> out;
  for (auto& [k, p] : peers_) {
    if (auto s = peerStats(k, now)) out.push_back(*s);
  }
  return out;
}

}  // namespace p2pcdn::swarm
