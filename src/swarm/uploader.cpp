#include "swarm/uploader.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>

namespace p2pcdn::swarm {

namespace {
constexpr double kSendPeakTau = 5.0;    // seconds: the read-ahead's peak send rate decays this slowly
// REJECT overloaded's retry hint: `wait` in ms, within what the wire allows.
std::uint32_t retryHint(Time wait) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wait).count();
  return static_cast<std::uint32_t>(std::clamp<long long>(ms, 1, wire::kMaxRetryAfterMs));
}
}  // namespace

// ---- requests -------------------------------------------------------------------

void Uploader::onRequest(PeerState& p, const wire::Request& r, Time nextChoke, Time now) {
  const SessionOptions& opts = state_.opts;
  auto reject = [&](wire::RejectReason why, std::uint32_t retryMs = 0) {
    state_.sendTo(p, wire::encode(wire::Reject{r.requestId, why, retryMs}), now);
  };
  p.upload.lastRequest = now;
  if (!state_.serving) return reject(wire::RejectReason::kUnknownFile);
  if (!state_.manifest || !(r.index < state_.have.size() && state_.have[r.index])) {
    return reject(wire::RejectReason::kNotHave);
  }
  // Each served request costs a whole chunk's read and re-hash: no slivers.
  const std::uint32_t rest = state_.manifest->storedChunkLength(r.index) - r.offset;  // offset checked by the decoder
  if (r.length < std::min(opts.minRequestBytes, rest)) return reject(wire::RejectReason::kInvalidRequest);
  if (!p.upload.unchoked) {
    // Offered by name (Session::offer): served once, choked or not.
    auto o = std::find(p.upload.offered.begin(), p.upload.offered.end(), r.index);
    if (o == p.upload.offered.end()) return reject(wire::RejectReason::kOverloaded, retryHint(nextChoke - now));
    p.upload.offered.erase(o);
  }
  if (p.upload.queue.size() >= opts.maxUploadRequestsPerPeer) return reject(wire::RejectReason::kTooManyRequests);
  // Admission: beyond one request per peer, none that would wait longer than
  // maxUploadQueue behind what is already queued at our measured upload rate;
  // the taker asks elsewhere and comes back after the hint. (On slow uplinks
  // every taker's pipeline queued here: requests waited 30 s and more, timed
  // out and were fetched twice.) After the uplink was idle, the meters read
  // the idle time until they have seen their time constant of uploads: a
  // fresh seeder's first two 4 KiB pieces read 4 KB/s on a 72 MB/s link, and
  // whenever the store read completed in the instant it was asked, a lone
  // leecher's second request was refused with a 15-64 s retry hint, every
  // time. So for that long the rate is at least what went out since the
  // uploads began, and unknown before their first piece. (Not after a short
  // break: the meter still holds the rate, and what went out over the first
  // moments is only what the link's buffer took.)
  double rate = 0, queued = r.length;
  bool idle = true;
  for (auto& [k, q] : state_.peers) {
    rate += q->upload.served.rate(now);
    for (const QueuedUpload& up : q->upload.queue) queued += up.length - up.sent;
    idle = idle && q->upload.queue.empty();
  }
  const double tau = p.upload.served.tauSeconds();
  if (idle && (state_.counters.uploaded == 0 || seconds(now - lastServe_) >= tau)) {
    warmSince_ = now;
    uploadedAtWarm_ = state_.counters.uploaded;
  }
  const double warm = seconds(now - warmSince_);
  if (warm < tau) {
    const auto sent = static_cast<double>(state_.counters.uploaded - uploadedAtWarm_);
    rate = sent > 0 && warm > 0 ? std::max(rate, sent / warm) : 0;
  }
  if (!p.upload.queue.empty() && rate > 0 && queued / rate > seconds(opts.maxUploadQueue)) {
    return reject(wire::RejectReason::kOverloaded, retryHint(fromSeconds(0.5 * queued / rate)));  // half the queue
  }
  if (std::uint64_t{r.offset} + r.length > state_.manifest->storedChunkLength(r.index)) {
    return reject(wire::RejectReason::kInvalidRequest);
  }
  p.upload.queue.push_back(QueuedUpload{r.requestId, r.index, r.offset, r.length, {}, 0, now});
  if (superSeed_.on()) superSeed_.taken(p, r.index, now);
  pump(p, now);
}

void Uploader::onCancel(PeerState& p, const wire::Cancel& c) {
  auto& queue = p.upload.queue;
  for (auto it = queue.begin(); it != queue.end(); ++it) {
    if (it->requestId == c.requestId) {
      state_.unserve(*it);
      queue.erase(it);  // a partly sent chunk stops too: the taker discards it
      return;
    }
  }
}

void Uploader::choke(PeerState& p, Time now) {
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(state_.opts.chokeInterval).count();
  for (auto& up : p.upload.queue) {
    if (up.sent == 0) {
      state_.sendTo(p, wire::encode(wire::Reject{up.requestId, wire::RejectReason::kOverloaded, static_cast<std::uint32_t>(wait)}),
                    now);
    }
  }
  std::erase_if(p.upload.queue, [](const QueuedUpload& up) { return up.sent == 0; });
}

// ---- reads ------------------------------------------------------------------------

void Uploader::onChunkRead(ChunkIndex index, Result<Bytes> data, Time now) {
  auto asked = reading_.find(index);
  if (asked == reading_.end()) return;
  const Time took = now - asked->second;
  state_.readLatency = state_.readLatency == Time{} ? took : (state_.readLatency * 7 + took) / 8;
  reading_.erase(asked);
  std::shared_ptr<const Bytes> chunk;
  // A busy store is not "I do not have it" (the taker counts those as lies).
  const bool busy = !data && data.error().code() == Errc::kBackPressure;
  if (data) {
    chunk = std::make_shared<const Bytes>(std::move(*data));
  }
  // Every queued upload of this chunk within its link's read-ahead gets it;
  // links whose next upload waited for a read go on (with this chunk, or to
  // ask for the one they wait for now: their queues may have changed).
  for (auto& [k, q] : state_.peers) {
    auto& queue = q->upload.queue;
    if (q->dropping || queue.empty()) continue;
    const bool waited = !queue.front().chunk;
    for (auto it = queue.begin(); it != queue.end();) {
      if (it->index != index || it->chunk) {
        ++it;
      } else if (!chunk || chunk->size() < std::uint64_t{it->offset} + it->length) {  // evicted or corrupt: never serve bad bytes
        state_.sendTo(*q, wire::encode(busy ? wire::Reject{it->requestId, wire::RejectReason::kOverloaded, 1000}
                                            : wire::Reject{it->requestId, wire::RejectReason::kNotHave, 0}),
                      now);
        it = queue.erase(it);
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
void Uploader::readAhead(PeerState& p, Time now) {
  UploadState& u = p.upload;
  const double decayed = u.sendPeak * std::exp(-seconds(now - u.sendPeakAt) / kSendPeakTau);
  const double current = u.sendRate.rate(now);
  if (current >= decayed) {
    u.sendPeak = current;
    u.sendPeakAt = now;
  }
  const double rate = std::max(current, decayed);
  const std::size_t chunk = state_.manifest ? state_.manifest->chunkSize : 1;
  const double inFlight = 2 * rate * seconds(state_.readLatency);
  const auto ahead = std::min<std::size_t>(state_.opts.maxReadAhead, 2 + static_cast<std::size_t>(inFlight / static_cast<double>(chunk)));
  std::size_t n = 0;
  for (auto it = u.queue.begin(); it != u.queue.end() && n < ahead; ++it, ++n) {
    if (it->chunk || reading_.count(it->index)) continue;
    reading_.emplace(it->index, now);
    state_.host.readChunk(it->index);
  }
}

// ---- sizes ------------------------------------------------------------------------

// PIECE data per message: about pieceTime at the link's send rate, within
// [minPiecePayload, maxPiecePayload] (at least one byte whatever the options).
std::size_t Uploader::pieceSize(const PeerState& p, Time now) const {
  const SessionOptions& opts = state_.opts;
  const std::size_t hi = std::max<std::size_t>(1, opts.maxPiecePayload);
  const std::size_t lo = std::clamp<std::size_t>(opts.minPiecePayload, 1, hi);
  return std::clamp(static_cast<std::size_t>(std::max(0.0, p.upload.sendRate.rate(now) * seconds(opts.pieceTime))), lo, hi);
}

// PIECE bytes a link may hold: sendBacklog at its send rate, at least
// sendBacklogPieces pieces (sendBacklogPiecesToUploader towards a peer we
// have requests outstanding at), at least one.
std::size_t Uploader::sendWindow(const PeerState& p, std::size_t piece, Time now) const {
  const SessionOptions& opts = state_.opts;
  const std::size_t pieces =
      std::max<std::size_t>(1, p.download.out.empty() ? opts.sendBacklogPieces : opts.sendBacklogPiecesToUploader);
  const double minimum = static_cast<double>(pieces * std::min<std::size_t>(piece, state_.manifest->chunkSize));
  return static_cast<std::size_t>(std::max(minimum, p.upload.sendRate.rate(now) * seconds(opts.sendBacklog)));
}

// ---- sending ----------------------------------------------------------------------

void Uploader::pump(PeerState& p, Time now) {
  pumpOne(p, now);
  if (releaseHeld_) {  // a first serve finished: links held back may go on
    releaseHeld_ = false;
    for (auto& [k, q] : state_.peers) {
      if (q.get() != &p) pumpOne(*q, now);
    }
  }
}

void Uploader::pumpOne(PeerState& p, Time now) {
  sendQueued(p, now);
  if (!p.dropping && !p.upload.queue.empty()) readAhead(p, now);
}

void Uploader::pumpAll(Time now) {
  // Start at a random peer so a global limit is shared fairly.
  if (state_.peers.empty()) return;
  std::vector<PeerState*> order;
  for (auto& [k, p] : state_.peers) order.push_back(p.get());
  std::rotate(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(state_.rng() % order.size()), order.end());
  for (PeerState* p : order) pump(*p, now);
}

void Uploader::refillLate(PeerState& p, Time now) {
  if (!p.upload.windowFull) return;
  const auto before = state_.counters.uploaded;
  pumpOne(p, now);
  if (state_.counters.uploaded != before) ++state_.counters.lateRefills;
}

void Uploader::resumeIfDue(Time now) {
  if (wake_ == Time{} || now < wake_) return;
  wake_ = Time{};
  pumpAll(now);
}

void Uploader::wakeAt(Time at) {
  if (wake_ == Time{} || at < wake_) wake_ = at;
}

// The control messages first (in order), then PIECE data from the front of
// the queue for as long as the limits, the holds and the link allow.
void Uploader::sendQueued(PeerState& p, Time now) {
  if (p.dropping && p.control.empty()) return;
  if (!flushControl(p)) return;
  const bool seeding = state_.complete();
  auto& queue = p.upload.queue;
  while (!queue.empty() && !p.dropping) {
    if (rateLimited(p, now)) return;
    if (queue.front().sent == 0 && seeding && !(p.caps & wire::kCapStreaming)) reorderLeastServed(p, now);
    const Hold hold = holdRepeat(p, queue.front(), now);
    if (hold == Hold::kRefused) continue;
    if (hold == Hold::kHeld) return;
    if (!queue.front().chunk) return;  // its read completes later (onChunkRead pumps this link again)
    const std::size_t size = pieceSize(p, now);
    if (!windowOpen(p, size, now)) return;
    if (!sendPiece(p, size, now)) return;  // back-pressure (or closing): onWritable resumes
  }
}

// false: the link refused one (it drains later, or is going away).
bool Uploader::flushControl(PeerState& p) {
  while (!p.control.empty()) {
    Status st = state_.host.send(p.key, p.control.front());
    if (!st) {
      if (st.error().code() == Errc::kBackPressure) return false;
      p.control.clear();
      p.controlBytes = 0;
      return false;
    }
    p.controlBytes -= p.control.front().size();
    p.control.pop_front();
  }
  return true;
}

// A global or per-peer upload limit: wake when it allows again.
bool Uploader::rateLimited(PeerState& p, Time now) {
  const SessionOptions& opts = state_.opts;
  if ((opts.globalUp && !opts.globalUp->ready(now)) || !p.upload.bucket.ready(now)) {
    Time at = p.upload.bucket.readyAt(now);
    if (opts.globalUp) at = std::max(at, opts.globalUp->readyAt(now));
    wakeAt(at);
    return true;
  }
  return false;
}

// A seeder serves the chunk it has served least first: distinct chunks
// leave it sooner and the leechers trade the rest among themselves.
// A request that has waited maxUploadQueue goes first (no starvation).
void Uploader::reorderLeastServed(PeerState& p, Time now) {
  auto& queue = p.upload.queue;
  const auto& servedCount = state_.servedCount;
  auto best = queue.begin();
  for (auto it = queue.begin(); it != queue.end(); ++it) {
    if (it->sent != 0) continue;
    if (now - it->queued > state_.opts.maxUploadQueue) {
      best = it;
      break;
    }
    if (servedCount[it->index] < servedCount[best->index]) best = it;
  }
  if (best != queue.begin()) {
    // The old front keeps its read unless it moves past the read-ahead
    // window (then it is read again when its turn comes).
    if (std::distance(queue.begin(), best) >= static_cast<std::ptrdiff_t>(state_.opts.maxReadAhead)) {
      queue.front().chunk.reset();
    }
    std::iter_swap(best, queue.begin());
  }
}

// Super-seeding: while chunks nobody has wait in other queues, a repeat
// waits too; the shared uplink goes to the new chunks first. A repeat held
// for a quarter of maxUploadQueue is refused instead (the taker gets it
// from whoever has it): on slow links new chunks are always waiting, and
// held repeats waited until the taker's time-out.
Uploader::Hold Uploader::holdRepeat(PeerState& p, const QueuedUpload& up, Time now) {
  const Time maxHold = state_.opts.maxUploadQueue / 4;
  if (!(superSeed_.on() && state_.neverServed > 0 && up.sent == 0 && state_.servedCount[up.index] > 0 &&
        firstServeWaiting(p))) {
    return Hold::kNo;
  }
  if (now - up.queued > maxHold) {
    state_.sendTo(p, wire::encode(wire::Reject{up.requestId, wire::RejectReason::kOverloaded, retryHint(maxHold)}), now);
    p.upload.queue.pop_front();
    return Hold::kRefused;
  }
  holding_ = true;
  // Look again when the hold expires, even if no first serve ends first
  // (the peer it waits for may be choked, dropped or back-pressured).
  wakeAt(up.queued + maxHold + std::chrono::milliseconds(1));
  return Hold::kHeld;
}

// Super-seeding: is a chunk nobody has yet waiting in another peer's queue?
bool Uploader::firstServeWaiting(const PeerState& self) const {
  for (const auto& [k, q] : state_.peers) {
    if (q.get() == &self || q->dropping || !q->upload.unchoked) continue;
    for (const QueuedUpload& up : q->upload.queue) {
      if (state_.servedCount[up.index] == 0) return true;
    }
  }
  return false;
}

// Keep the link's queue short in time: our REQUESTs, HAVEs and CANCELs
// to this peer queue behind it. (1000 simulated peers: the publisher's
// neighbours, which everyone downloads from, sent their own requests
// seconds late and finished last.) false: wait for the link to drain.
bool Uploader::windowOpen(PeerState& p, std::size_t piece, Time now) {
  if (const auto queued = state_.opts.sendBacklog > Time{} ? state_.host.buffered(p.key) : std::nullopt) {
    const std::size_t window = sendWindow(p, piece, now);
    if (*queued >= window) {
      p.upload.windowFull = true;
      ++state_.counters.windowWaits;
      state_.host.notifyWhenBufferedBelow(p.key, window / 2);
      return false;
    }
  }
  p.upload.windowFull = false;
  return true;
}

// One PIECE of the front upload; false: the link refused it.
bool Uploader::sendPiece(PeerState& p, std::size_t piece, Time now) {
  UploadState& u = p.upload;
  QueuedUpload& up = u.queue.front();
  const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(piece, up.length - up.sent));
  wire::Piece message{up.requestId, up.index, static_cast<std::uint32_t>(up.chunk->size()), up.offset + up.sent,
                      ByteView(*up.chunk).subspan(up.offset + up.sent, n)};
  auto msg = wire::encode(message);
  if (!msg) {
    state_.unserve(up);
    u.queue.pop_front();
    return true;
  }
  Status st = state_.host.send(p.key, *msg);
  if (!st) return false;
  p.lastSent = std::max(p.lastSent, now);
  u.served.add(n, now);
  u.sendRate.add(n, now);
  state_.counters.uploaded += n;
  u.bucket.spend(n, now);
  if (state_.opts.globalUp) state_.opts.globalUp->spend(n, now);
  const bool first = up.sent == 0;
  up.sent += n;
  u.lastPieceSent = now;
  lastServe_ = now;
  const bool whole = up.offset == 0 && up.length == up.chunk->size();
  accountServed(up, first, whole);
  if (up.sent == up.length) {
    ++u.chunksServed;
    // It has it now (peers send no HAVE for a chunk we have): remember, so
    // super-seeding does not show it again and interest stays exact.
    if (p.inPicker && whole && !p.has[up.index]) {
      p.has[up.index] = true;
      ++p.hasCount;
      (void)state_.picker->peerHas(up.index);
    }
    u.queue.pop_front();
    // Super-seeding: the peer is not asking for what we revealed (it gets it
    // elsewhere): reveal one more rather than let the link idle.
    if (superSeed_.on() && u.queue.empty() && u.unchoked) superSeed_.reveal(p, now, p.reveal.revealed.size() + 1);
  }
  return true;
}

// Only a whole chunk counts as served: a peer asking for a byte of each
// must not end super-seeding's first pass. It counts from its first
// piece: sent in several pieces, a chunk on its way to one peer must not
// look never-served to the next taker (the least-served order and the
// repeat rule).
void Uploader::accountServed(QueuedUpload& up, bool first, bool whole) {
  if (!first || !whole) return;
  up.countsAsServed = true;
  if (state_.servedCount[up.index]++ == 0) {
    --state_.neverServed;
    if (holding_) {
      holding_ = false;
      releaseHeld_ = true;
    }
  } else if (state_.neverServed > 0) {
    ++state_.counters.earlyRepeats;
  }
}

}  // namespace p2pcdn::swarm
