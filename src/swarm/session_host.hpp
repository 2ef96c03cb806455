// SessionHost: the I/O side of a swarm::Session, implemented by the node and
// the simulator.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "p2pcdn/manifest.hpp"
#include "p2pcdn/result.hpp"
#include "swarm/stats.hpp"
#include "wire/wire.hpp"

namespace p2pcdn::swarm {

// The I/O side. Every call happens on the owner's loop, from inside a Session
// method; none may call back into the Session synchronously (completions
// included: deliver them on a later turn of the loop).
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  // Queues one encoded message on the peer's link. Errc::kBackPressure means
  // "not sent, full": the session keeps it and waits for onWritable(peer).
  virtual Status send(PeerKey peer, ByteView message) = 0;
  // The session is done with the peer (after a GOODBYE, a ban, a time-out):
  // close the link. The host must still call removePeer when it is gone.
  virtual void disconnect(PeerKey peer) = 0;
  // Reads a stored chunk for serving, verified against its hash: complete
  // with Session::onChunkRead. At most one read per chunk is outstanding.
  virtual void readChunk(ChunkIndex index) = 0;
  // Stores a chunk whose BLAKE3 the session has checked: complete with
  // Session::onChunkStored. The chunk counts as held (HAVE, served,
  // complete) only from then on.
  virtual void storeChunk(ChunkIndex index, Bytes data) = 0;
  // Stores a manifest received from a peer and checked against the file id.
  // Asynchronous like the chunk writes: the session adopts the manifest at
  // once; a failed write is the host's to report (onError). The host must not
  // let a chunk write of this file reach its store before the manifest's.
  virtual void storeManifest(const Manifest& manifest) = 0;
  // Bytes queued on the peer's link and not yet sent, if the host knows.
  // With it the session keeps only about SessionOptions::sendBacklog of PIECE
  // data there, and asks notifyWhenBufferedBelow to be told when to refill; a
  // tick refills too, should that notice be lost.
  virtual std::optional<std::size_t> buffered(PeerKey) const { return std::nullopt; }
  // Call onWritable(peer) once the link's queue holds at most `bytes`.
  virtual void notifyWhenBufferedBelow(PeerKey, std::size_t /*bytes*/) {}
  // Web seeds (swarm/origin.hpp): GET bytes [offset, offset + length) of
  // `url` (a Range request); complete with Session::onOriginData(id, ...):
  // exactly those bytes, or an error. false: this host has no HTTP (the
  // session then uses no origin).
  virtual bool fetchOrigin(std::uint32_t /*id*/, const std::string& /*url*/, std::uint64_t /*offset*/,
                           std::uint32_t /*length*/) {
    return false;
  }
  // No completion is wanted for it any more.
  virtual void cancelOrigin(std::uint32_t /*id*/) {}

  // Events.
  virtual void onManifest(const Manifest&) {}
  virtual void onChunk(ChunkIndex) {}
  virtual void onComplete() {}
  virtual void onBanned(PeerKey, const wire::PeerId&) {}
  // A store write failed (not for busy): the session has stopped fetching
  // (setWanted(true) starts it again); the host tells whoever asked.
  virtual void onError(const Error&) {}
};

}  // namespace p2pcdn::swarm
