#include "swarm/downloader.hpp"

#include <algorithm>
#include <cmath>

#include "core/blake3.hpp"

namespace p2pcdn::swarm {

// ---- answers ------------------------------------------------------------------

void Downloader::forget(PeerState& p, std::uint32_t requestId, bool failed) {
  auto it = p.download.out.find(requestId);
  if (it == p.download.out.end()) return;
  if (state_.picker) (void)state_.picker->unmarkRequested(it->second.index);
  p.download.out.erase(it);
  if (failed) ++p.download.failures;
}

void Downloader::onReject(PeerState& p, const wire::Reject& r, Time now) {
  DownloadState& d = p.download;
  auto it = d.out.find(r.requestId);
  if (it == d.out.end()) return;
  const ChunkIndex index = it->second.index;
  switch (r.reason) {
    case wire::RejectReason::kOverloaded: {  // choked (or busy): come back after the hint
      Time wait = r.retryAfterMs ? Time(std::chrono::milliseconds(r.retryAfterMs)) : Time(std::chrono::seconds(2));
      d.chokedUntil = now + wait;
      forget(p, r.requestId, false);
      break;
    }
    case wire::RejectReason::kTooManyRequests:
      d.requestCap = std::max<std::size_t>(1, d.out.size() - 1);
      forget(p, r.requestId, false);
      break;
    case wire::RejectReason::kNotHave:
      forget(p, r.requestId, true);
      if (p.inPicker && p.has[index]) {
        p.has[index] = false;
        --p.hasCount;
        (void)state_.picker->peerLost(index);
        // It showed the chunk and refused it: a lie, or an eviction.
        if (state_.opts.dropAfterFalseHaves && ++p.falseHaves >= state_.opts.dropAfterFalseHaves) {
          return state_.drop(p, wire::GoodbyeReason::kProtocolError, "refuses chunks it says it has");
        }
      }
      break;
    default:  // unknown file (it stopped seeding), invalid: ask elsewhere
      forget(p, r.requestId, true);
      if (r.reason == wire::RejectReason::kUnknownFile) d.chokedUntil = now + state_.opts.chokeInterval;
      break;
  }
  requestEverywhere(now);
}

void Downloader::onPiece(PeerState& p, const wire::Piece& piece, Time now) {
  DownloadState& d = p.download;
  auto it = d.out.find(piece.requestId);
  state_.counters.downloaded += piece.data.size();
  // Only bytes that answer a request of ours count towards the peer's rate
  // (its reciprocation rank and pipeline depth): unsolicited PIECEs would
  // otherwise buy an unchoke. Late answers to a cancelled request are wasted too.
  if (it == d.out.end()) {
    state_.counters.wasted += piece.data.size();
    return;
  }
  OutstandingRequest& out = it->second;
  if (auto st = out.assembler.add(piece); !st) return state_.drop(p, wire::GoodbyeReason::kProtocolError, "bad piece");
  d.received.add(piece.data.size(), now);
  d.pipeRate.add(piece.data.size(), now);
  d.lastProgress = now;
  d.rateAtProgress = d.received.rate(now);
  if (!out.gotFirstByte) {
    out.gotFirstByte = true;
    // The pipeline covers rate x this latency. Only probes count: a request
    // whose chunk the peer had read ahead answers in a round trip, and the
    // pipeline sized by that would not cover the reads (a 50 ms store
    // answered at ~2 chunks per 50 ms).
    if (out.probe) {
      const Time latency = now - out.sent;
      if (!d.latencyKnown || latency < d.minLatency) d.minLatency = latency;
      d.latencyKnown = true;
    }
  }
  if (!out.assembler.complete()) return;
  const ChunkIndex index = out.index;
  auto data = out.assembler.take();
  d.out.erase(it);
  if (!data) return state_.drop(p, wire::GoodbyeReason::kProtocolError, "piece assembly");
  if (state_.picker->have(index)) {  // an endgame duplicate that crossed our CANCEL (or one being stored)
    state_.counters.wasted += data->size();
    return requestFrom(p, now);
  }
  const Manifest& manifest = *state_.manifest;
  if (data->size() != manifest.storedChunkLength(index) || Blake3::hash(*data) != manifest.chunkHashes[index]) {
    return badChunk(p, index, now);
  }
  chunkArrived(&p, index, std::move(*data), now);
}

void Downloader::badChunk(PeerState& p, ChunkIndex index, Time now) {
  (void)state_.picker->unmarkRequested(index);
  ++state_.counters.badChunks;
  state_.counters.wasted += state_.manifest->storedChunkLength(index);
  ++p.download.badChunks;
  ++p.download.failures;
  if (p.download.badChunks >= state_.opts.banAfterBadChunks) {
    state_.banned.push_back(p.id);
    ++state_.counters.bans;
    state_.host.onBanned(p.key, p.id);
    state_.drop(p, wire::GoodbyeReason::kProtocolError, "banned: sent chunks that failed verification");
  } else {
    p.download.chokedUntil = now + state_.opts.chokeInterval;  // scored down: others first for a while
  }
  requestEverywhere(now);
}

// A verified chunk: never picked again; it goes to the store and counts as
// held once the store confirms (Session::onChunkStored).
void Downloader::chunkArrived(PeerState* from, ChunkIndex index, Bytes data, Time now) {
  (void)state_.picker->markHave(index);
  state_.deliveredBy(index, from);
  if (from) {
    ++from->download.chunksReceived;
    from->falseHaves = 0;  // it serves: an earlier refusal was an eviction, not a lie
  }
  // Endgame: cancel the same chunk elsewhere.
  std::vector<PeerState*> freed;
  for (auto& [k, q] : state_.peers) {
    if (q->dropping || !q->handshaken) continue;
    auto& out = q->download.out;
    for (auto o = out.begin(); o != out.end();) {
      if (o->second.index == index) {
        state_.sendTo(*q, wire::encode(wire::Cancel{o->first}), now);
        o = out.erase(o);
        freed.push_back(q.get());
      } else {
        ++o;
      }
    }
  }
  writing_.insert(index);
  state_.host.storeChunk(index, std::move(data));
  if (from) requestFrom(*from, now);
  for (PeerState* q : freed) requestFrom(*q, now);
}

// ---- requesting ---------------------------------------------------------------

// Enough whole-chunk requests to cover pipelineHeadroom x the peer's rate x
// latency, plus requestSlack (one being transmitted).
std::size_t Downloader::requestTarget(const PeerState& p, Time now) const {
  const DownloadState& d = p.download;
  const SessionOptions& opts = state_.opts;
  const double rate = d.pipeRate.rate(now);
  const double latency = seconds(d.latencyKnown ? d.minLatency : opts.latencyGuess);
  const double chunk = state_.manifest ? static_cast<double>(state_.manifest->chunkSize) : 262144.0;
  const double covered = opts.pipelineHeadroom * rate * latency / chunk;
  std::size_t target = static_cast<std::size_t>(std::ceil(covered)) + opts.requestSlack;
  if (d.chunksReceived == 0) target = std::max<std::size_t>(target, 4);  // start before measuring
  target = std::clamp(target, opts.minRequestsPerPeer, opts.maxRequestsPerPeer);
  return std::min(target, d.requestCap);
}

void Downloader::requestFrom(PeerState& p, Time now) {
  DownloadState& d = p.download;
  const SessionOptions& opts = state_.opts;
  PiecePicker* picker = state_.picker.get();
  if (!state_.wanted || !picker || !p.handshaken || p.dropping || !p.inPicker || p.hasCount == 0) return;
  if (now < d.chokedUntil || now < d.restUntil) return;
  if (writing_.size() >= opts.maxPendingWrites) return;  // the store is behind: onChunkStored asks again
  const std::size_t target = requestTarget(p, now);
  if (d.out.size() >= target) return;
  // The download-peer limit leaves out a super-seeder: it shows a peer only
  // the chunks nobody else has, a few at a time, at a share of its uplink.
  // Counted, it took a slot from each of its neighbours, and they finished
  // last (1000 peers: their median ~1 s after the others'). Endgame: race the
  // last chunks from anyone. Decided before any wish is sent (a wished
  // request must not make the peer a download peer for the picker); wishes
  // go out without a slot.
  const bool slot = picking(d) || picker->isEndgame() || (p.caps & wire::kCapSuperSeed) ||
                    downloadPeers(now) < opts.maxConcurrentDownloads;
  if (!slot && d.wished.empty()) return;
  if ((opts.globalDown && !opts.globalDown->ready(now)) || !d.bucket.ready(now)) {
    Time at = d.bucket.readyAt(now);
    if (opts.globalDown) at = std::max(at, opts.globalDown->readyAt(now));
    if (wake_ == Time{} || at < wake_) wake_ = at;
    return;
  }
  std::vector<ChunkIndex> inFlight;
  inFlight.reserve(d.out.size());
  for (auto& [rid, o] : d.out) inFlight.push_back(o.index);
  // Wished chunks first: one this peer lacks, or that we hold or already
  // asked it for, is dropped (the caller learns from the chunk's arrival).
  while (!d.wished.empty() && d.out.size() < target) {
    const ChunkIndex i = d.wished.front();
    d.wished.pop_front();
    if (i >= p.has.size() || !p.has[i] || picker->have(i) ||
        std::find(inFlight.begin(), inFlight.end(), i) != inFlight.end()) {
      continue;
    }
    if (d.out.empty()) d.lastProgress = now;
    if (!d.downloadingSince) d.downloadingSince = now;
    request(p, i, now, true);
    inFlight.push_back(i);
  }
  if (d.out.size() >= target || !slot) return;
  auto picks = picker->pick(p.has, target - d.out.size(), state_.streaming ? PickMode::kStreaming : PickMode::kWholeFile,
                            state_.rng, inFlight);
  if (d.out.empty() && !picks.empty()) d.lastProgress = now;
  if (!picks.empty() && !d.downloadingSince) d.downloadingSince = now;
  for (ChunkIndex i : picks) request(p, i, now);
}

void Downloader::request(PeerState& p, ChunkIndex i, Time now, bool wished) {
  DownloadState& d = p.download;
  auto assembler = wire::ChunkAssembler::forManifest(*state_.manifest, i);
  if (!assembler) return;
  const std::uint32_t length = state_.manifest->storedChunkLength(i);
  const std::uint32_t rid = d.nextRequestId++;
  state_.sendTo(p, wire::encode(wire::Request{rid, i, 0, length}), now);
  const bool probe = d.out.empty();
  d.out.emplace(rid, OutstandingRequest{i, std::move(*assembler), now, false, probe, wished});
  (void)state_.picker->markRequested(i);
  d.bucket.spend(length, now);
  if (state_.opts.globalDown) state_.opts.globalDown->spend(length, now);
}

void Downloader::wish(PeerState& p, ChunkIndex index, Time now) {
  std::deque<ChunkIndex>& w = p.download.wished;
  if (std::find(w.begin(), w.end(), index) == w.end()) {
    if (w.size() >= kMaxWished) w.pop_front();  // the oldest wish gives way
    w.push_back(index);
  }
  requestFrom(p, now);
}

// Peers taking one of the maxConcurrentDownloads slots: requests of the
// picker's outstanding (a wished one takes none), not a super-seeder, not
// rotated out.
std::size_t Downloader::downloadPeers(Time now) const {
  std::size_t n = 0;
  for (auto& [k, q] : state_.peers) {
    n += (!picking(q->download) || (q->caps & wire::kCapSuperSeed) || now < q->download.restUntil) ? 0u : 1u;
  }
  return n;
}

bool Downloader::picking(const DownloadState& d) {
  return std::any_of(d.out.begin(), d.out.end(), [](const auto& r) { return !r.second.wished; });
}

bool Downloader::lacksFrom(const PeerState& p) const {
  if (!p.inPicker || p.hasCount == 0) return false;
  for (ChunkIndex i = 0; i < p.has.size(); ++i) {
    if (p.has[i] && !state_.picker->have(i)) return true;
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
void Downloader::rotateDownloads(Time now) {
  const SessionOptions& opts = state_.opts;
  if (!state_.wanted || !state_.picker || state_.complete() || state_.picker->isEndgame() ||
      opts.rotateDownloadsEvery == Time{}) {
    return;
  }
  if (downloadPeers(now) < opts.maxConcurrentDownloads) return;
  PeerState* slowest = nullptr;
  bool candidate = false;
  for (auto& [k, pp] : state_.peers) {
    PeerState& p = *pp;
    const DownloadState& d = p.download;
    if (!p.handshaken || p.dropping || (p.caps & wire::kCapSuperSeed)) continue;
    if (d.out.empty()) {
      if (!candidate && now >= d.chokedUntil && now >= d.restUntil && lacksFrom(p)) candidate = true;
      continue;
    }
    if (now < d.restUntil || !d.downloadingSince || now - *d.downloadingSince < 2 * opts.rotateDownloadsEvery) continue;
    if (!slowest || d.received.rate(now) < slowest->download.received.rate(now)) slowest = &p;
  }
  if (!candidate || !slowest) return;
  slowest->download.restUntil = now + 2 * opts.rotateDownloadsEvery;
  slowest->download.downloadingSince.reset();
  requestEverywhere(now);
}

void Downloader::requestEverywhere(Time now) {
  if (!state_.wanted || !state_.picker) return;
  // Fastest peers first, so that they fill their pipelines before slow ones.
  std::vector<PeerState*> order;
  for (auto& [k, p] : state_.peers) order.push_back(p.get());
  std::sort(order.begin(), order.end(), [&](PeerState* a, PeerState* b) {
    return a->download.received.rate(now) > b->download.received.rate(now);
  });
  for (PeerState* p : order) requestFrom(*p, now);
}

// ---- cancelling -----------------------------------------------------------------

void Downloader::cancelAll(PeerState& p, Time now) {
  for (auto& [rid, out] : p.download.out) {
    state_.sendTo(p, wire::encode(wire::Cancel{rid}), now);
    if (state_.picker) (void)state_.picker->unmarkRequested(out.index);
  }
  p.download.out.clear();
}

void Downloader::cancelOutside(ChunkIndex cursor, std::uint64_t end, Time now) {
  for (auto& [k, p] : state_.peers) {
    std::vector<std::uint32_t> drop;
    for (auto& [rid, o] : p->download.out) {
      if (!o.gotFirstByte && !o.wished && (o.index < cursor || o.index >= end)) drop.push_back(rid);
    }
    for (auto rid : drop) {
      state_.sendTo(*p, wire::encode(wire::Cancel{rid}), now);
      forget(*p, rid, false);
    }
  }
}

namespace {
constexpr Time kMaxStall = std::chrono::seconds(60);
constexpr Time kMaxRequestWait = std::chrono::seconds(900);
}  // namespace

void Downloader::expireRequests(PeerState& p, Time now) {
  DownloadState& d = p.download;
  const SessionOptions& opts = state_.opts;
  const std::optional<Manifest>& manifest = state_.manifest;
  if (d.out.empty()) return;
  // A stalled peer: nothing for stallTimeout (or 4 chunk-times at its rate).
  // The rate as it was at its last PIECE: the meter decays while the peer is
  // silent, and a deadline divided by a decaying rate never comes (a peer
  // that had sent 2 chunks and then only KEEPALIVEs held its requests for
  // ~25 min). Both deadlines are capped too (60 s, 900 s).
  const double rate = d.rateAtProgress;
  Time stall = opts.stallTimeout;
  if (rate > 0 && manifest) stall = std::max(stall, fromSeconds(4.0 * manifest->chunkSize / rate));
  if (d.chunksReceived == 0) stall = std::max(stall, opts.requestTimeout);
  stall = std::min(stall, std::max(opts.stallTimeout, kMaxStall));
  bool stalled = now - d.lastProgress > stall;
  // A request may wait behind every other one outstanding at that peer (an
  // uploader need not serve in order): on a slow link (a 256 KiB chunk over
  // a 2 Mbit/s uplink shared by ten takers takes ~10 s) the deadline grows
  // with the requests outstanding and the link's rate.
  Time limit = opts.requestTimeout;
  if (rate > 0 && manifest) {
    limit = std::max(limit, fromSeconds(3.0 * static_cast<double>(d.out.size()) * manifest->chunkSize / rate));
  }
  limit = std::min(limit, std::max(opts.requestTimeout, kMaxRequestWait));
  std::vector<std::uint32_t> expired;
  for (auto& [rid, o] : d.out) {
    // Once its bytes are arriving the stall check covers it; a request that
    // only trickles is cut at 4x the limit.
    if (stalled || now - o.sent > (o.gotFirstByte ? 4 * limit : limit)) {
      expired.push_back(rid);
    }
  }
  for (auto rid : expired) {
    state_.sendTo(p, wire::encode(wire::Cancel{rid}), now);
    forget(p, rid, true);
    ++state_.counters.timeouts;
  }
  if (stalled) d.chokedUntil = now + opts.chokeInterval;  // snubbed: ask others for a while
}

}  // namespace p2pcdn::swarm
