// The node's links (internal): one Peer record per link, the links being
// closed, and the ledger of links that closed. Which links to make and keep
// is swarm::Discovery's; this is only the table. Loop thread only.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node/link_auth.hpp"
#include "node/node.hpp"
#include "signaling/signaling.hpp"
#include "transport/peer_link.hpp"

namespace p2pcdn::node {

// A link to one peer for one file.
struct Peer {
  std::uint64_t key = 0;
  std::unique_ptr<transport::PeerLink> link;
  std::optional<signaling::Id20> remotePeerId;  // known once offered to us or answered
  std::string offerSdp;                         // our gathered offer, until it goes to the tracker
  // transport::dtlsFingerprint of our SDP and of the peer's, for LinkAuth.
  std::string localFingerprint, remoteFingerprint;
  std::optional<LinkAuth> auth;                 // from onOpen; the session has the link once proven
  bool opened = false;
  transport::LinkStats linkStats;               // last full report (rtt, candidate types)
};

// Dropped links whose close has not completed: close() lets queued data (a
// GOODBYE) out before the stream is reset, so each is kept until it is
// closed, at most kLimit. Their events are ignored (the peer is gone).
class ClosingLinks {
 public:
  static constexpr std::chrono::seconds kLimit{6};
  void add(std::shared_ptr<Peer> peer, swarm::Time now) {
    links_.emplace_back(std::move(peer), now + kLimit);
  }
  // Lets go of the links that closed, or ran out of time.
  void sweep(swarm::Time now);
  std::size_t size() const { return links_.size(); }

 private:
  std::vector<std::pair<std::shared_ptr<Peer>, swarm::Time>> links_;
};

// The last numbers of links that closed: at most kClosedLinksPerFile per
// file (the oldest go first) and kClosedFilesKept files (the file whose last
// close is oldest goes first).
class ClosedLinkLedger {
 public:
  void add(NodePeerStats s);
  std::vector<NodePeerStats> of(const FileId& id) const;
  std::vector<NodePeerStats> all() const;

 private:
  struct File {
    std::deque<NodePeerStats> links;  // oldest first
    std::uint64_t lastAdded = 0;
  };
  std::map<FileId, File> files_;
  std::uint64_t seq_ = 0;
};

}  // namespace p2pcdn::node
