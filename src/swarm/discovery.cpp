#include "swarm/discovery.hpp"

#include <algorithm>

namespace p2pcdn::swarm {

// ---- announces -----------------------------------------------------------------

// A leecher looks for more peers when it has none, none with a chunk it
// lacks, or fewer than half its slots filled. (The tracker's counts are no
// guide: in a flash crowd the first announce sees an almost empty swarm.)
bool Discovery::wantsPeers(const SwarmView& v) const {
  return v.leeching && (v.connected == 0 || v.useful == 0 || v.connected < opts_.maxPeers / 2);
}

Time Discovery::quickWait() const {
  return std::min(opts_.backoffBase * (1 << std::min(quickAnnounces_, 5)), opts_.announceInterval);
}

TickDecision Discovery::tick(Time now, const SwarmView& view) {
  TickDecision d;
  for (auto it = links_.begin(); it != links_.end();) {
    const Link& l = it->second;
    const bool unanswered = l.offerer && !l.remote;
    if (l.isOpen() || now <= expires(l)) {
      ++it;
      continue;
    }
    d.drops.push_back({it->first, unanswered ? "offer unanswered" : "never opened (connect limit)"});
    const LinkKey key = it->first;
    ++it;
    remove(key);
  }
  d.sendOffers = !batch_.empty() && (gathering() == 0 || now - batchStarted_ > opts_.batchWait);
  if (!view.member) return d;
  if (!lastAnnounce_) {  // never announced, or a link failed early: now, not counted as quick
    d.announce = Announce::kRegular;
    return d;
  }
  const auto since = [&](Time wait) { return now - *lastAnnounce_ >= wait; };
  if (wantsPeers(view)) {
    if (since(quickWait())) d.announce = Announce::kQuick;
  } else if (view.leeching) {
    quickAnnounces_ = 0;
  }
  if (d.announce == Announce::kNo && since(opts_.announceInterval)) d.announce = Announce::kRegular;
  return d;
}

std::size_t Discovery::announced(Time now, bool leeching, bool quick) {
  lastAnnounce_ = now;
  if (quick) ++quickAnnounces_;
  if (!leeching) return 0;
  const std::size_t room = opts_.maxPeers > links_.size() ? opts_.maxPeers - links_.size() : 0;
  if (batch_.empty() && gathering() == 0) batchStarted_ = now;
  std::size_t want = opts_.offersPerAnnounce;
  if (swarmPeers_ && opts_.offersByTrackerCount) {
    // No offers while the tracker counts no peer we lack a link to (a peer
    // with none makes them anyway: the count may be stale or leave us out).
    // While some peer is unlinked, all of them: the tracker hands each to a
    // random peer, maybe one we have, so fewer would find a newcomer by
    // lottery (a flash-crowd test lost its links to each other that way).
    const std::size_t others = *swarmPeers_ > 0 ? *swarmPeers_ - 1 : 0;
    const std::size_t linked = linkedPeers();
    if (linked > 0 && others <= linked) want = 0;
  }
  return std::min(room, want);
}

Time Discovery::nextWakeup(Time now, const SwarmView& view) const {
  Time next = Time::max();
  auto consider = [&](Time t) { next = std::min(next, std::max(t, now)); };
  if (view.member) {
    if (!lastAnnounce_) {
      consider(now + opts_.backoffBase);  // the host could not announce yet: retry then
    } else {
      consider(*lastAnnounce_ + (wantsPeers(view) ? quickWait() : opts_.announceInterval));
    }
  }
  for (const auto& [key, l] : links_) {
    if (!l.isOpen()) consider(expires(l) + Time(1));
  }
  if (!batch_.empty()) consider(batchStarted_ + opts_.batchWait + Time(1));
  return next;
}

// A link not open by then is dropped: an unanswered offer offerLifetime after
// it went out (gatherLimit after it was made, if it never did), any other
// connectLimit after it was made.
Time Discovery::expires(const Link& l) const {
  if (l.offerer && !l.remote) return l.offerSent ? *l.offerSent + opts_.offerLifetime : l.created + opts_.gatherLimit;
  return l.created + opts_.connectLimit;
}

// ---- links we offer -------------------------------------------------------------

void Discovery::offerMade(LinkKey key, const TrackerId& offerId, Time now) {
  Link& l = links_[key];
  l.offerer = true;
  l.offerId = offerId;
  l.created = now;
  l.gathering = true;
  pendingOffers_[offerId] = key;
}

bool Discovery::offerGathered(LinkKey key, Time) {
  auto it = links_.find(key);
  if (it == links_.end() || !it->second.gathering) return false;
  it->second.gathering = false;
  batch_.push_back(key);
  return gathering() == 0;
}

std::vector<BatchedOffer> Discovery::takeOfferBatch(Time now) {
  std::vector<BatchedOffer> out;
  for (LinkKey key : batch_) {
    auto it = links_.find(key);
    if (it == links_.end()) continue;  // closed while the batch waited
    it->second.offerSent = now;
    out.push_back({key, it->second.offerId});
  }
  batch_.clear();
  batchStarted_ = now;
  return out;
}

AnswerDecision Discovery::onAnswer(Time now, const TrackerId& offerId, const TrackerId& from, bool fromBanned) {
  AnswerDecision d;
  auto pend = pendingOffers_.find(offerId);
  if (pend == pendingOffers_.end()) {
    d.why = "answer to an unknown or withdrawn offer";
    return d;
  }
  const LinkKey key = pend->second;
  pendingOffers_.erase(pend);
  auto it = links_.find(key);
  if (it == links_.end()) {
    d.why = "answer to a closed link";
    return d;
  }
  auto dropLink = [&](LinkKey k, std::string_view why) {
    d.drops.push_back({k, why});
    remove(k);
  };
  if (fromBanned) {
    dropLink(key, "answer from a banned peer");
    d.why = "banned";
    return d;
  }
  if (auto otherKey = linkTo(from)) {
    const Link& other = links_.at(*otherKey);
    if (other.offerer) {
      // Two offers of ours reached the peer and it answered this one: it
      // keeps one link per peer, so it dropped (or never had) the other.
      dropLink(*otherKey, "superseded: the peer answered our newer offer");
    } else {
      // Glare: we offered to each other at once and each answered the
      // other. Both sides keep the link offered by the lower peer id (each
      // closing its own offer left no link at all). A half-open link gives
      // way to the new one.
      const bool stale = halfOpen(other, now);
      if (!stale && (other.isOpen() || !(self_ < from))) {
        dropLink(key, "glare: keep the other link");
        d.why = "glare";
        return d;
      }
      dropLink(*otherKey, stale ? "half-open, superseded by an answer" : "glare: keep our offer");
    }
  }
  Link& l = links_.at(key);
  l.remote = from;
  l.described = now;
  d.apply = key;
  d.why = "answer";
  return d;
}

// ---- links the peer offers ------------------------------------------------------

OfferDecision Discovery::onOffer(Time now, const TrackerId& from) {
  OfferDecision d;
  if (auto oldKey = linkTo(from)) {
    // A link the peer offered that has not opened gives way to its new
    // offer (the peer drops its older offer when our answer to the new one
    // arrives, onAnswer above). A link we offered waits for the half-open
    // limit: the peer may be about to open it.
    const Link& old = links_.at(*oldKey);
    const bool superseded = old.offerer ? halfOpen(old, now) : freshOfferReplaces(old, now);
    if (!superseded) {
      d.why = "linked already";
      return d;
    }
    d.replaces = *oldKey;
    remove(*oldKey);
  }
  // Our own unanswered offers do not take a slot from a peer that calls us.
  if (links_.size() - unansweredOffers() >= opts_.maxPeers) {
    d.why = "full";
    return d;
  }
  d.answer = true;
  d.why = d.replaces ? "answering; the old link to it was not open" : "answering";
  return d;
}

void Discovery::answering(LinkKey key, const TrackerId& from, Time now) {
  Link& l = links_[key];
  l.offerer = false;
  l.created = now;
  l.remote = from;
}

void Discovery::answerSent(LinkKey key, Time now) {
  if (auto it = links_.find(key); it != links_.end()) it->second.described = now;
}

// ---- every link -----------------------------------------------------------------

void Discovery::opened(LinkKey key, Time now) {
  auto it = links_.find(key);
  if (it == links_.end()) return;
  Link& l = it->second;
  l.opened = now;
  if (l.described) {
    openDelays_.push_back(now - *l.described);
    if (openDelays_.size() > opts_.openDelaysKept) openDelays_.pop_front();
  }
}

void Discovery::closed(LinkKey key, Time now, bool failed, bool leeching) {
  auto it = links_.find(key);
  if (it == links_.end()) return;
  const Link& l = it->second;
  // A link that failed while connecting or just after it opened: the peer
  // may still hold its half, so look again now rather than after the back-off.
  const bool early = !l.opened || now - *l.opened < opts_.earlyFailure;
  if (failed && early && leeching) {
    quickAnnounces_ = 0;
    lastAnnounce_.reset();
  }
  remove(key);
}

void Discovery::remove(LinkKey key) {
  auto it = links_.find(key);
  if (it == links_.end()) return;
  if (it->second.offerer) {
    if (auto p = pendingOffers_.find(it->second.offerId); p != pendingOffers_.end() && p->second == key) pendingOffers_.erase(p);
  }
  std::erase(batch_, key);
  links_.erase(it);
}

std::size_t Discovery::gathering() const {
  return static_cast<std::size_t>(std::count_if(links_.begin(), links_.end(), [](const auto& kv) { return kv.second.gathering; }));
}

std::optional<LinkKey> Discovery::linkTo(const TrackerId& peer) const {
  for (const auto& [key, l] : links_) {
    if (l.remote && *l.remote == peer) return key;
  }
  return std::nullopt;
}

bool Discovery::halfOpen(const Link& l, Time now) const {
  if (l.isOpen() || !l.described) return false;
  const Time limit = openDelays_.empty() ? opts_.halfOpenDefault
                                         : std::clamp(3 * slowestOpen(), opts_.halfOpenMin, opts_.halfOpenMax);
  return now - *l.described > limit;
}

// A link the peer offered us, not open yet, gives way to a newer offer from
// it at once while our answer has not gone out (the peer never saw it), else
// once it is older than the slowest recent link took to open (halfOpenMin
// before any opened), so that a re-announce does not restart a link about to open.
bool Discovery::freshOfferReplaces(const Link& l, Time now) const {
  if (l.isOpen()) return false;
  if (!l.described) return true;
  const Time limit = openDelays_.empty() ? opts_.halfOpenMin : std::min(slowestOpen(), opts_.halfOpenMax);
  return now - *l.described > limit;
}

Time Discovery::slowestOpen() const { return *std::max_element(openDelays_.begin(), openDelays_.end()); }

std::size_t Discovery::linkedPeers() const {
  return static_cast<std::size_t>(
      std::count_if(links_.begin(), links_.end(), [](const auto& kv) { return kv.second.remote.has_value(); }));
}

std::size_t Discovery::unansweredOffers() const {
  return static_cast<std::size_t>(std::count_if(links_.begin(), links_.end(), [](const auto& kv) {
    return kv.second.offerer && !kv.second.isOpen() && !kv.second.remote;
  }));
}

}  // namespace p2pcdn::swarm
