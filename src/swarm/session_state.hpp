// SessionState: what a Session and its parts (Downloader, Uploader, SuperSeed)
// share: the file as this peer holds it, the peers, the host, the options, the
// one random source, and the ways to talk to a peer (sendTo, goodbye, drop).
// The Session owns it; each part holds a reference. One event loop owns all of
// it: no locks, and no part calls back into the Session.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "p2pcdn/manifest.hpp"
#include "p2pcdn/result.hpp"
#include "swarm/options.hpp"
#include "swarm/peer_state.hpp"
#include "swarm/picker.hpp"
#include "swarm/session_host.hpp"
#include "swarm/stats.hpp"

namespace p2pcdn::swarm {

// Control replies (REJECTs, HAVEs, ...) a back-pressured link may hold before
// its peer is dropped, besides one copy of the manifest.
inline constexpr std::size_t kMaxControlBytes = 1 << 20;

struct SessionState {
  SessionState(const FileId& file, const wire::PeerId& selfId, SessionHost& sessionHost, SessionOptions options,
               std::uint64_t seed)
      : fileId(file), self(selfId), host(sessionHost), opts(std::move(options)), rng(seed) {}

  bool complete() const { return manifest && haveCount == manifest->chunkCount(); }
  PeerState* find(PeerKey key);

  // Queues a message on the peer's link, or behind what the link refused.
  void sendTo(PeerState& p, Result<Bytes> message, Time now);
  void goodbye(PeerState& p, wire::GoodbyeReason reason, std::string_view text);
  // GOODBYE, forget its requests and uploads, ask the host to close the link.
  void drop(PeerState& p, wire::GoodbyeReason reason, std::string_view text);
  // An upload that stops part-way no longer counts as served.
  void unserve(const QueuedUpload& up);

  FileId fileId;
  wire::PeerId self;
  std::optional<Manifest> manifest;
  Bytes manifestBytes;
  std::vector<bool> have;        // stored (the host confirmed the write)
  std::uint32_t haveCount = 0;
  std::unique_ptr<PiecePicker> picker;  // null until the manifest is known
  SessionHost& host;
  SessionOptions opts;
  std::mt19937_64 rng;
  bool wanted = false;
  bool serving = true;
  bool streaming = false;
  ChunkIndex streamCursor = 0;  // the picker's, also for a picker made later (the manifest came after)
  std::map<PeerKey, std::unique_ptr<PeerState>> peers;
  std::vector<wire::PeerId> banned;
  std::vector<std::uint32_t> servedCount;  // per chunk: times uploaded by us
  // Per chunk, who delivered it in this session: 0 nobody (held before, or
  // not yet), 1 a web seed, k + 2 the peer sources[k] (ids kept after the
  // peer left; one entry per peer, so 4 bytes a chunk).
  std::vector<std::uint32_t> chunkFrom;
  std::vector<wire::PeerId> sources;
  void deliveredBy(ChunkIndex index, const PeerState* from);
  std::uint32_t neverServed = 0;
  Time readLatency{};  // smoothed time a store read for an upload takes (Uploader; super-seeding's depth)
  SessionStats counters;
};

}  // namespace p2pcdn::swarm
