#include "swarm/session_state.hpp"

#include <algorithm>

namespace p2pcdn::swarm {

PeerState* SessionState::find(PeerKey key) {
  auto it = peers.find(key);
  return it == peers.end() ? nullptr : it->second.get();
}

void SessionState::sendTo(PeerState& p, Result<Bytes> message, Time now) {
  if (!message) return;
  p.lastSent = std::max(p.lastSent, now);
  if (p.control.empty()) {
    Status st = host.send(p.key, *message);
    if (st.has_value() || st.error().code() != Errc::kBackPressure) return;  // other errors: the link is going away
  }
  // kMaxControlBytes of replies, plus the manifest if it asked for it. Past
  // that the peer is marked, not dropped here: callers may be walking its
  // queues (the Session drops it at the end of the message or tick).
  if (p.overflowed) return;
  if (p.controlBytes + message->size() > kMaxControlBytes + (p.manifestServed ? manifestBytes.size() : 0)) {
    p.overflowed = true;
    return;
  }
  p.controlBytes += message->size();
  p.control.push_back(std::move(*message));
}

void SessionState::goodbye(PeerState& p, wire::GoodbyeReason reason, std::string_view text) {
  if (p.goodbyeSent) return;
  p.goodbyeSent = true;
  auto msg = wire::encode(wire::Goodbye{reason, text});
  if (msg) sendTo(p, std::move(msg), p.lastSent);
}

void SessionState::drop(PeerState& p, wire::GoodbyeReason reason, std::string_view text) {
  if (p.dropping) return;
  goodbye(p, reason, text);
  p.dropping = true;
  for (auto& [rid, out] : p.download.out) {
    if (picker) (void)picker->unmarkRequested(out.index);
  }
  p.download.out.clear();
  for (const QueuedUpload& up : p.upload.queue) unserve(up);
  p.upload.queue.clear();
  host.disconnect(p.key);
}

// An upload that stops part-way (CANCEL, the peer gone) did not serve its
// chunk: it no longer counts (super-seeding would otherwise hold back and
// refuse repeats of a chunk nobody received).
void SessionState::unserve(const QueuedUpload& up) {
  if (!up.countsAsServed || up.sent >= up.length) return;
  if (--servedCount[up.index] == 0) ++neverServed;
}

void SessionState::deliveredBy(ChunkIndex index, const PeerState* from) {
  if (index >= chunkFrom.size()) return;
  if (!from) {
    chunkFrom[index] = 1;
    return;
  }
  auto it = std::find(sources.begin(), sources.end(), from->id);
  if (it == sources.end()) it = sources.insert(sources.end(), from->id);
  chunkFrom[index] = static_cast<std::uint32_t>(it - sources.begin()) + 2;
}

}  // namespace p2pcdn::swarm
