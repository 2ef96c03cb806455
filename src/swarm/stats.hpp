// PeerStats and SessionStats: what a Session reports about itself and each of
// its peers (Session::stats, Session::peerStats). Apart from swarm/session.hpp
// so that hosts can pass them on without the engine's internals.
#pragma once

#include <cstddef>
#include <cstdint>

#include "wire/wire.hpp"

namespace p2pcdn::swarm {

using PeerKey = std::uint64_t;  // the host's name for one link

struct PeerStats {
  PeerKey key = 0;
  wire::PeerId peerId{};
  bool handshaken = false;
  bool seeder = false;            // has every chunk
  std::uint32_t chunksAvailable = 0;
  // Down: PIECE payload answering a request of ours still outstanding (what
  // reciprocation and the pipeline depth go by); unsolicited or late PIECEs
  // count only in SessionStats::wasted.
  std::uint64_t bytesUp = 0, bytesDown = 0;
  double upRate = 0, downRate = 0;  // bytes/s, smoothed
  std::uint32_t chunksServed = 0, chunksReceived = 0;
  std::uint32_t failures = 0;     // timeouts + rejects + bad chunks
  std::uint32_t badChunks = 0;
  std::size_t requestsOutstanding = 0;
  std::size_t requestTarget = 0;  // current pipeline size
  std::size_t uploadsQueued = 0;
  std::size_t controlBytes = 0;   // replies waiting for the link (bounded: kMaxControlBytes + the manifest)
  bool unchoked = false;          // we serve it
  bool chokingUs = false;         // it rejected us as overloaded recently
  double latencySeconds = 0;      // request -> first byte, lowest seen
};

struct SessionStats {
  bool haveManifest = false;
  std::uint32_t chunksTotal = 0, chunksHave = 0, chunksFetched = 0;
  std::uint64_t bytesTotal = 0, bytesVerified = 0;
  std::uint64_t uploaded = 0, downloaded = 0;  // payload bytes of PIECE messages
  std::uint64_t wasted = 0;                    // received but not stored: duplicates, bad chunks,
                                               // PIECEs for requests we never made or cancelled
  std::uint32_t badChunks = 0, timeouts = 0, bans = 0;
  // Web seeds (OriginSource): verified bytes and chunks from HTTP origins, and their failed requests.
  std::uint64_t originBytes = 0;
  std::uint32_t originChunks = 0, originFailures = 0;
  // Chunks uploaded again while another chunk had never been uploaded by us:
  // for a publisher, bandwidth that did not add a new chunk to the swarm.
  std::uint32_t earlyRepeats = 0;
  std::uint32_t distinctServed = 0;            // chunks we have uploaded at least once
  // Send-window refills made by tick(): the link's drain notice had not come
  // (it should, so these count lost or late notices).
  std::uint32_t lateRefills = 0;
  std::uint64_t windowWaits = 0;  // times piece data waited for the send window
  std::size_t readsPending = 0, writesPending = 0;  // store requests not yet completed
  std::uint32_t goodbyesReceived = 0;          // GOODBYE messages from peers
  std::size_t peers = 0;                       // handshaken
  bool complete = false;
};

}  // namespace p2pcdn::swarm
