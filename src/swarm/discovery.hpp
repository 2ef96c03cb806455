// Discovery: which links to make, keep and drop for one file's swarm, sans I/O.
// The host (the native node, the simulator, the browser peer) talks to the
// tracker and creates the links; this class holds the rules it follows:
// when to announce (the interval, and quick re-announces with back-off while
// a leecher lacks peers), how many offers to make, when gathered offers go
// to the tracker (together, so it hands them to distinct peers), how long an
// offer or a connecting link may live, and which of two links to the same
// peer survives (glare, a newer offer, a half-open link).
//
// Time is passed in; decisions are returned. A decision that drops a link has
// already forgotten it here: the host closes it (and tells the Session). A
// link the host drops for its own reasons is reported with remove(); a link
// that closed by itself with closed().
//
// Half-open links: seen over real WebRTC, one side's channel opened and
// failed at once while the other side never saw it open or close. Such a
// link gives way to a newer one with the same peer once it has been
// described (offer and answer exchanged) for longer than 3x the slowest of
// the last links to open (within halfOpenMin..halfOpenMax).
//
// Thread-safety: none; one event loop owns it.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "swarm/rate.hpp"

namespace p2pcdn::swarm {

using LinkKey = std::uint64_t;                     // the host's name for one link
using TrackerId = std::array<std::uint8_t, 20>;    // peer ids and offer ids on the tracker

struct DiscoveryOptions {
  Time announceInterval = std::chrono::seconds(30);
  std::size_t offersPerAnnounce = 4;   // offers a leecher makes per announce
  std::size_t maxPeers = 20;           // links per file, open or being made
  // An offer nobody answered this long after it went to the tracker is
  // withdrawn; answers come within a round trip through the tracker, and a
  // dead offer holds a peer slot (longer lifetimes filled a leecher's table
  // with its own dead offers during quick re-announces).
  Time offerLifetime = std::chrono::seconds(5);
  Time gatherLimit = std::chrono::seconds(20);   // an offer still gathering ICE candidates
  Time connectLimit = std::chrono::seconds(15);  // a described link that has not opened
  Time halfOpenMin = std::chrono::milliseconds(250);
  Time halfOpenMax = std::chrono::milliseconds(3000);
  Time halfOpenDefault = std::chrono::milliseconds(1000);  // before any link opened
  std::size_t openDelaysKept = 16;
  // Gathered offers go out at the latest this long after the announce, even
  // if others of the batch are still gathering.
  Time batchWait = std::chrono::milliseconds(500);
  // Quick re-announces while leeching with too few useful peers: after 1x,
  // 2x, 4x ... this (at most 2^5x, at most announceInterval).
  Time backoffBase = std::chrono::seconds(1);
  // A link that fails before opening or this soon after: a leecher
  // re-announces at its next tick, not after the back-off.
  Time earlyFailure = std::chrono::seconds(2);
  // Offers bounded by the tracker's count of peers we have no link to (trackerCounts()).
  bool offersByTrackerCount = true;
};

// What the host knows of the file's swarm, at a tick.
struct SwarmView {
  bool member = false;      // in the swarm: seeding or fetching
  bool leeching = false;    // fetching and not complete
  std::size_t connected = 0;  // handshaken peers
  std::size_t useful = 0;     // of them, peers with a chunk we lack
};

enum class Announce : std::uint8_t { kNo, kRegular, kQuick };

struct LinkDrop {
  LinkKey key = 0;
  std::string_view why;     // static text, for traces
};

struct TickDecision {
  std::vector<LinkDrop> drops;   // links that never opened in time
  bool sendOffers = false;       // call takeOfferBatch() and send it
  Announce announce = Announce::kNo;
};

struct OfferDecision {
  bool answer = false;             // create an answering link, then answering()
  std::optional<LinkKey> replaces;  // drop this link to the same peer first
  std::string_view why;
};

struct AnswerDecision {
  std::optional<LinkKey> apply;    // give the answer to this link
  std::vector<LinkDrop> drops;
  std::string_view why;
};

struct BatchedOffer {
  LinkKey key = 0;
  TrackerId offerId{};
};

class Discovery {
 public:
  Discovery(const TrackerId& self, DiscoveryOptions options) : self_(self), opts_(options) {}

  const DiscoveryOptions& options() const { return opts_; }

  // ---- announces ----
  TickDecision tick(Time now, const SwarmView& view);
  // The host's announce reached the tracker (`quick`: the one tick() asked
  // for as Announce::kQuick). Returns how many offers to make now; make each
  // with offerMade().
  std::size_t announced(Time now, bool leeching, bool quick);
  // The tracker's count of the swarm's peers (seeders + leechers, us
  // included) from its reply to an announce. A leecher linked to every peer
  // the count shows makes no offers (they would only make connections nobody
  // answers: in a browser they spend a budget of ~500 RTCPeerConnections per
  // page); while the count shows a peer it has no link to, it makes the usual
  // number. 0 (a reply without counts) means unknown.
  void trackerCounts(std::size_t swarmPeers) {
    swarmPeers_ = swarmPeers > 0 ? std::optional<std::size_t>(swarmPeers) : std::nullopt;
  }
  // The tracker connection was (re)established: the back-off starts over.
  void trackerConnected() { quickAnnounces_ = 0; }
  // Earliest time tick() may decide something new (for event-driven hosts).
  Time nextWakeup(Time now, const SwarmView& view) const;

  // ---- links we offer ----
  void offerMade(LinkKey key, const TrackerId& offerId, Time now);
  // ICE gathering finished: the offer waits in the batch. True: the batch is
  // whole, call takeOfferBatch() now.
  bool offerGathered(LinkKey key, Time now);
  // The gathered offers to send, in order; they count as sent from now.
  std::vector<BatchedOffer> takeOfferBatch(Time now);
  AnswerDecision onAnswer(Time now, const TrackerId& offerId, const TrackerId& from, bool fromBanned);

  // ---- links the peer offers ----
  // Whether to answer an offer from `from` (the host has already refused
  // itself, banned peers and files it neither serves nor fetches). Drop
  // `replaces` if set, whether or not the answer goes out.
  OfferDecision onOffer(Time now, const TrackerId& from);
  void answering(LinkKey key, const TrackerId& from, Time now);
  void answerSent(LinkKey key, Time now);  // our answer went to the tracker

  // ---- every link ----
  void opened(LinkKey key, Time now);
  // The link closed by itself (failed: not an orderly close).
  void closed(LinkKey key, Time now, bool failed, bool leeching);
  void remove(LinkKey key);

  std::size_t links() const { return links_.size(); }
  std::size_t gathering() const;
  bool knows(LinkKey key) const { return links_.count(key) != 0; }
  // The link (open or not) to `peer`, if any.
  std::optional<LinkKey> linkTo(const TrackerId& peer) const;

 private:
  struct Link {
    bool offerer = false;
    TrackerId offerId{};
    Time created{};
    bool gathering = false;
    std::optional<Time> offerSent;   // our offer went to the tracker
    std::optional<Time> described;   // offer and answer both known
    std::optional<Time> opened;
    std::optional<TrackerId> remote;
    bool isOpen() const { return opened.has_value(); }
  };

  Time expires(const Link& l) const;
  bool halfOpen(const Link& l, Time now) const;
  bool freshOfferReplaces(const Link& l, Time now) const;
  Time slowestOpen() const;
  std::size_t unansweredOffers() const;
  std::size_t linkedPeers() const;  // links with a known remote, open or being made
  bool wantsPeers(const SwarmView& view) const;
  Time quickWait() const;

  TrackerId self_;
  DiscoveryOptions opts_;
  std::map<LinkKey, Link> links_;
  std::map<TrackerId, LinkKey> pendingOffers_;  // offer id -> our link awaiting its answer
  std::vector<LinkKey> batch_;                  // gathered offers not yet sent
  Time batchStarted_{};
  std::optional<Time> lastAnnounce_;
  std::optional<std::size_t> swarmPeers_;  // the tracker's last count
  int quickAnnounces_ = 0;
  std::deque<Time> openDelays_;  // described -> open, of the last links
};

}  // namespace p2pcdn::swarm
