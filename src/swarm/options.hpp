// SessionOptions: the swarm engine's policy knobs (pipelining, choking, time-outs,
// bans, rate limits, super-seeding, piece sizes, store back-pressure). Apart
// from swarm/session.hpp so that hosts (node/, gateway/, api/) can carry them
// without the engine's internals.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "swarm/picker.hpp"
#include "swarm/rate.hpp"
#include "wire/wire.hpp"

namespace p2pcdn::swarm {

// Web seeds (origin.hpp): when the swarm counts as not giving a chunk in
// time, and how origins are used.
struct OriginOptions {
  Time grace = std::chrono::seconds(2);           // peers get this long to show up (0: no WebRTC, none will)
  Time urgentAfter = std::chrono::milliseconds(1500);
  std::size_t urgentChunks = 2;
  Time idleBefore = std::chrono::seconds(1);
  std::size_t slots = 4;
  Time timeout = std::chrono::seconds(30);
  Time restMin = std::chrono::seconds(2);
  Time restMax = std::chrono::seconds(60);
  std::uint32_t maxBadChunks = 3;
};

struct SessionOptions {
  std::size_t maxConcurrentDownloads = 10;  // peers with our requests outstanding at once
  std::size_t maxConcurrentUploads = 20;    // peers unchoked at once (one of them optimistic)
  std::size_t minRequestsPerPeer = 2;
  // Requests kept outstanding at a peer beyond its rate x latency (at least
  // minRequestsPerPeer in all). One: a peer's uplink is shared by many links,
  // so a link briefly empty costs it little, while every request queued there
  // makes the next one wait a whole chunk longer (docs/hacking.md, "Piece size").
  std::size_t requestSlack = 1;
  // The pipeline covers this many times rate x latency. The rate it measures
  // is what the pipeline let through, so with 1x a peer whose latency is its
  // store's read settles where rate x latency + slack is what it already has
  // (50 ms store: ~6 requests, a third of the link); with headroom each
  // measurement asks for more until the link, not the pipeline, limits.
  double pipelineHeadroom = 2.0;
  std::size_t maxRequestsPerPeer = 24;      // stay under a peer's upload queue limit
  std::size_t maxUploadRequestsPerPeer = 32;  // queued from one peer; more: REJECT too-many-requests
  // A request that would wait longer than this behind the queued uploads (at
  // the measured upload rate) is rejected as overloaded, unless it is the
  // peer's only one.
  Time maxUploadQueue = std::chrono::seconds(8);
  Time latencyGuess = std::chrono::milliseconds(50);  // before a peer's latency is measured
  // PIECE data kept queued on a link, in time at the rate it is leaving (at
  // least sendBacklogPieces pieces), when the host can tell what is queued
  // (SessionHost::buffered); 0 = fill the link to its watermark. REQUESTs,
  // HAVEs and CANCELs share the ordered channel and wait behind that queue.
  Time sendBacklog = std::chrono::milliseconds(100);
  std::size_t sendBacklogPieces = 2;
  // The minimum on a link to a peer we have requests outstanding at: our
  // next REQUEST to it waits behind less. It matters where pieces are at
  // their minimum size (below ~80 KB/s per link); above, the 100 ms term is
  // already two pieces. Slow uploaders whose chunks everyone wants would
  // otherwise queue their own requests behind their uploads.
  std::size_t sendBacklogPiecesToUploader = 1;
  // A peer with requests outstanding that sends nothing for this long has them
  // all cancelled and re-requested elsewhere; any request older than
  // requestTimeout is cancelled too. (5 s cut honest peers on a shaped 2 MB/s
  // loopback under CPU load once deadlines stopped receding with the silence;
  // the issue "Trust" bound is 10 s.)
  Time stallTimeout = std::chrono::seconds(8);
  Time requestTimeout = std::chrono::seconds(30);
  // A MANIFEST_REQUEST not answered in full within this is given up and the
  // next peer that has the manifest is asked (the silent one is not again).
  Time manifestTimeout = std::chrono::seconds(10);
  std::uint32_t banAfterBadChunks = 2;      // chunks failing verification before a ban
  // Abuse limits (issue "Trust"). Messages other than PIECE a peer may send,
  // per second with this burst; past it the link is dropped (an honest peer
  // at 1 Gbit/s sends ~1000 HAVEs and REQUESTs a second). 0: no limit.
  double maxMessagesPerSecond = 5000;
  double messageBurst = 10000;
  // A REQUEST shorter than this (or than the rest of its chunk) is refused
  // as invalid: each served request costs a whole chunk's read and re-hash.
  std::uint32_t minRequestBytes = 16384;
  // A peer that showed a chunk (BITFIELD/HAVE) and then refused it as
  // not-have this many times is dropped (an evicting store may do it once
  // in a while; a liar keeps us asking).
  std::uint32_t dropAfterFalseHaves = 8;
  // With all maxConcurrentDownloads slots taken, the slowest download peer is
  // rotated out this often (if another has chunks we lack); 0 = never.
  Time rotateDownloadsEvery = std::chrono::seconds(3);
  Time chokeInterval = std::chrono::seconds(10);
  std::uint32_t optimisticEvery = 3;        // choke rounds between optimistic rotations
  Time keepAliveAfter = std::chrono::seconds(15);
  Time idleTimeout = std::chrono::seconds(60);
  // Rate limits in bytes per second, 0 = unlimited. The global buckets may be
  // shared by several sessions (pass the same ones to each).
  double perPeerUpRate = 0;
  double perPeerDownRate = 0;
  std::shared_ptr<TokenBucket> globalUp;    // null: unlimited
  std::shared_ptr<TokenBucket> globalDown;
  // Super-seeding, for a session that starts complete (the publisher): it
  // advertises an empty bitfield and then reveals chunks to each peer with
  // HAVE, superSeedReveal at a time, always the ones it has served least. So
  // the origin uploads each chunk about once and the leechers spread it
  // (BitTorrent's "initial seeding"). It serves any chunk it is asked for.
  bool superSeed = true;
  std::size_t superSeedReveal = 2;
  PickerOptions picker;
  OriginOptions origin;
  // PIECE data per message: about pieceTime at the rate data leaves on the
  // link, within [minPiecePayload, maxPiecePayload]. A slow link gets small
  // pieces, so its send window (above) holds little in time even at its
  // minimum of sendBacklogPieces pieces: our REQUESTs to that peer wait behind
  // it (with whole chunks as pieces they waited seconds behind two of them).
  std::size_t maxPiecePayload = 262144 - wire::kPieceHeaderBytes;
  // Verified chunks handed to the host's store and not yet confirmed: at
  // this many, no new requests go out until a write completes (a slow or
  // stuck store must not let received data pile up).
  std::size_t maxPendingWrites = 32;
  // Reads ahead of each link's upload queue: enough chunks to cover the
  // link's send rate x the store's measured read latency (plus the next
  // one), at most this many, so a slow store does not idle a fast link.
  std::size_t maxReadAhead = 16;
  std::size_t minPiecePayload = 4096;
  Time pieceTime = std::chrono::milliseconds(50);
};

}  // namespace p2pcdn::swarm
