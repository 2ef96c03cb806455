#include "swarm/origin.hpp"

#include <algorithm>

#include "core/blake3.hpp"
#include "swarm/downloader.hpp"

namespace p2pcdn::swarm {

namespace {
// Chunks looked at per pump when searching the whole file for ones no peer has.
constexpr ChunkIndex kScanPerPump = 4096;
}  // namespace

Status OriginSource::setOrigins(std::vector<std::string> urls, Time now) {
  if (urls.size() > kMaxOrigins) return fail(Errc::kInvalidArgument, "origins", "at most 8 web seeds per file");
  for (const auto& u : urls) {
    if (u.size() > kMaxUrl || !(u.starts_with("http://") || u.starts_with("https://")) || u.size() < 9) {
      return fail(Errc::kInvalidArgument, "origins", "a web seed is an http:// or https:// URL of at most 2048 bytes");
    }
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    const bool kept = std::find(urls.begin(), urls.end(), origins_[it->second.origin].url) != urls.end();
    if (kept) {
      ++it;
      continue;
    }
    state_.host.cancelOrigin(it->first);
    auto gone = it++;
    release(gone);
  }
  std::vector<Origin> next;
  for (auto& u : urls) {
    auto old = std::find_if(origins_.begin(), origins_.end(), [&](const Origin& o) { return o.url == u; });
    next.push_back(old != origins_.end() ? *old : Origin{u});
  }
  // Pending requests name origins by index: re-point them.
  for (auto& [id, p] : pending_) {
    const auto& url = origins_[p.origin].url;
    p.origin = static_cast<std::size_t>(std::find_if(next.begin(), next.end(), [&](const Origin& o) { return o.url == url; }) - next.begin());
  }
  origins_ = std::move(next);
  pump(now);
  return {};
}

bool OriginSource::active() const {
  return std::any_of(origins_.begin(), origins_.end(), [](const Origin& o) { return !o.dropped; });
}

bool OriginSource::allowed() const {
  return state_.wanted && state_.manifest && state_.picker && !state_.manifest->encryption && active() &&
         !state_.picker->complete();
}

bool OriginSource::fetching(ChunkIndex index) const {
  return std::any_of(pending_.begin(), pending_.end(), [&](const auto& kv) { return kv.second.index == index; });
}

std::optional<std::size_t> OriginSource::pickOrigin(Time now) {
  for (std::size_t k = 0; k < origins_.size(); ++k) {
    const std::size_t i = (nextOrigin_ + k) % origins_.size();
    if (!origins_[i].dropped && origins_[i].restUntil <= now) {
      nextOrigin_ = i + 1;
      return i;
    }
  }
  return std::nullopt;
}

std::map<ChunkIndex, Time> OriginSource::peerRequests(ChunkIndex from, ChunkIndex to) const {
  std::map<ChunkIndex, Time> oldest;
  for (const auto& [k, p] : state_.peers) {
    for (const auto& [rid, o] : p->download.out) {
      if (o.index < from || o.index >= to) continue;
      auto [it, fresh] = oldest.emplace(o.index, o.sent);
      if (!fresh) it->second = std::min(it->second, o.sent);
    }
  }
  return oldest;
}

void OriginSource::pump(Time now) {
  prune();
  if (!allowed()) {
    if (!state_.wanted) since_.reset();
    return;
  }
  if (!since_) since_ = now;
  expire(now);
  const PiecePicker& picker = *state_.picker;
  const ChunkIndex count = picker.chunkCount();
  const bool graceOver = now - *since_ >= opts_.grace;
  auto free = [&] {
    return pending_.size() < opts_.slots && downloader_.writesPending() < state_.opts.maxPendingWrites;
  };
  auto wantable = [&](ChunkIndex i) { return !picker.have(i) && !fetching(i); };
  // Streaming: the chunks at the cursor first, racing a slow peer.
  ChunkIndex from = 0, to = count;
  if (state_.streaming) {
    from = std::min(picker.streamCursor(), count);
    const std::size_t look = state_.opts.picker.streamLookahead;
    to = look ? static_cast<ChunkIndex>(std::min<std::uint64_t>(count, std::uint64_t{from} + look)) : count;
    const ChunkIndex urgentEnd = static_cast<ChunkIndex>(std::min<std::uint64_t>(to, std::uint64_t{from} + opts_.urgentChunks));
    const auto asked = peerRequests(from, urgentEnd);
    for (ChunkIndex i = from; i < urgentEnd && free() && graceOver; ++i) {
      if (!wantable(i)) continue;
      auto it = asked.find(i);
      const bool late = it != asked.end() && now - it->second >= opts_.urgentAfter;
      if ((late || picker.availability(i) == 0) && !start(i, now)) return;
    }
  }
  // The rest only while the swarm gives us nothing: no request of ours
  // outstanding at any peer for idleBefore (a super-seeder's reveals leave
  // gaps of a round trip; they are not idleness).
  const bool busy = std::any_of(state_.peers.begin(), state_.peers.end(),
                                [](const auto& kv) { return !kv.second->download.out.empty(); });
  if (busy || !lastBusy_) lastBusy_ = now;
  if (!graceOver || now - *lastBusy_ < opts_.idleBefore) return;
  // Chunks no connected peer has and none is fetching, in order from the
  // cursor (streaming) or from where the last scan ended.
  const ChunkIndex span = to - from;
  if (span == 0) return;
  ChunkIndex at = state_.streaming ? from : std::clamp(scan_, from, static_cast<ChunkIndex>(to - 1));
  for (ChunkIndex looked = 0; looked < std::min(span, kScanPerPump) && free(); ++looked) {
    if (wantable(at) && picker.availability(at) == 0 && picker.requestCount(at) == 0 && !start(at, now)) break;
    at = at + 1 >= to ? from : at + 1;
  }
  scan_ = at;
}

bool OriginSource::start(ChunkIndex index, Time now) {
  auto o = pickOrigin(now);
  if (!o) return false;
  const Manifest& m = *state_.manifest;
  const std::uint32_t id = nextId_++;
  const std::uint64_t offset = std::uint64_t{index} * m.chunkSize;
  if (!state_.host.fetchOrigin(id, origins_[*o].url, offset, static_cast<std::uint32_t>(m.storedChunkLength(index)))) {
    for (auto& x : origins_) x.dropped = true;  // this host has no HTTP
    return false;
  }
  pending_.emplace(id, Pending{index, *o, now});
  (void)state_.picker->markRequested(index);
  return true;
}

void OriginSource::release(std::map<std::uint32_t, Pending>::iterator it) {
  if (state_.picker) (void)state_.picker->unmarkRequested(it->second.index);
  pending_.erase(it);
}

void OriginSource::failed(std::size_t origin, Time now) {
  ++state_.counters.originFailures;
  Origin& o = origins_[origin];
  if (now < o.restUntil) return;  // resting already: requests sent before it failing too are one failure
  o.rest = o.rest == Time{} ? opts_.restMin : std::min(o.rest * 2, opts_.restMax);
  o.restUntil = now + o.rest;
}

// Requests no longer worth their bytes: the chunk came from a peer, the file
// is complete, or (streaming) a seek left it outside the window.
void OriginSource::prune() {
  if (pending_.empty()) return;
  const PiecePicker* picker = state_.picker.get();
  ChunkIndex from = 0, to = picker ? picker->chunkCount() : 0;
  if (picker && state_.streaming && state_.opts.picker.streamLookahead) {
    from = picker->streamCursor();
    to = static_cast<ChunkIndex>(std::min<std::uint64_t>(to, std::uint64_t{from} + state_.opts.picker.streamLookahead));
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    const ChunkIndex i = it->second.index;
    if (picker && !picker->complete() && !picker->have(i) && i >= from && i < to) {
      ++it;
      continue;
    }
    state_.host.cancelOrigin(it->first);
    auto gone = it++;
    release(gone);
  }
}

void OriginSource::expire(Time now) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now - it->second.sent < opts_.timeout) {
      ++it;
      continue;
    }
    state_.host.cancelOrigin(it->first);
    failed(it->second.origin, now);
    auto gone = it++;
    release(gone);
  }
}

void OriginSource::onData(std::uint32_t id, Result<Bytes> data, Time now) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  const ChunkIndex index = it->second.index;
  const std::size_t origin = it->second.origin;
  release(it);
  if (!state_.manifest) return;
  if (!data) {
    failed(origin, now);
    // This host can never fetch it (https:// natively, a URL it refuses): not worth retrying.
    const Errc code = data.error().code();
    if (code == Errc::kUnsupported || code == Errc::kInvalidArgument) origins_[origin].dropped = true;
  } else if (state_.picker->have(index)) {
    state_.counters.wasted += data->size();  // a peer's copy came first
  } else if (data->size() != state_.manifest->storedChunkLength(index) ||
             Blake3::hash(*data) != state_.manifest->chunkHashes[index]) {
    ++state_.counters.badChunks;
    state_.counters.wasted += data->size();
    failed(origin, now);
    if (++origins_[origin].badChunks >= opts_.maxBadChunks) origins_[origin].dropped = true;
  } else {
    origins_[origin].rest = Time{};
    state_.counters.originBytes += data->size();
    ++state_.counters.originChunks;
    downloader_.originChunk(index, std::move(*data), now);
  }
  pump(now);
}

void OriginSource::cancelAll() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    state_.host.cancelOrigin(it->first);
    auto gone = it++;
    release(gone);
  }
  since_.reset();
  lastBusy_.reset();
}

Time OriginSource::nextWakeup(Time now) const {
  Time next = Time::max();
  if (!allowed()) return next;
  for (const auto& [id, p] : pending_) next = std::min(next, p.sent + opts_.timeout);
  for (const auto& o : origins_) {
    if (!o.dropped && o.restUntil > now) next = std::min(next, o.restUntil);
  }
  if (since_ && now - *since_ < opts_.grace) next = std::min(next, *since_ + opts_.grace);
  if (lastBusy_ && now - *lastBusy_ < opts_.idleBefore) next = std::min(next, *lastBusy_ + opts_.idleBefore);
  if (state_.streaming) next = std::min(next, now + opts_.urgentAfter / 3);  // a peer's request may become late
  return next;
}

}  // namespace p2pcdn::swarm
