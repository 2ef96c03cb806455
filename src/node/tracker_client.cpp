// What the node says to its tracker (announces, offers, answers) and what it
// makes of what the tracker relays (offers and answers of other peers, turned
// into swarm::Discovery inputs and link operations).
#include "node/tracker_client.hpp"

#include "node/node_impl.hpp"

namespace p2pcdn::node {

TrackerClient::TrackerClient(Runtime& rt, const std::vector<std::string>& urls, swarm::Time failover, Events events)
    : failover_(failover) {
  if (urls.empty()) {
    status_ = fail(Errc::kInvalidArgument, "tracker", "no tracker URL");
    return;
  }
  // A fallback this runtime cannot use (e.g. wss:// natively) is skipped;
  // only if none is usable does the client fail, with the first one's error.
  for (const auto& url : urls) {
    auto conn = rt.connectTracker(url, connEvents(events));
    if (conn) {
      conns_.push_back(std::move(*conn));
    } else if (status_) {
      status_ = fail(conn.error());
    }
  }
  if (!conns_.empty()) status_ = {};
}

void TrackerClient::start() {
  if (!status_ || started_ || stopped_) return;
  started_ = true;
  conns_[current_]->start();
}

void TrackerClient::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  conns_[current_]->stop();
}

void TrackerClient::tick(swarm::Time now) {
  if (!started_ || stopped_) return;
  if (!ticked_ || conns_[current_]->connected()) {
    if (ticked_) failedRounds_ = 0;
    ticked_ = true;
    lastUp_ = now;
    return;
  }
  // Each tracker gets failover x (1 + full rounds without success, at most 8)
  // to connect, so a slow handshake to a loaded fleet is not always cut short.
  const auto wait = failover_ * static_cast<std::int64_t>(1 + std::min<std::size_t>(failedRounds_, 7));
  if (conns_.size() < 2 || now - lastUp_ < wait) return;
  // Down for long enough: the next tracker (onConnected announces there).
  conns_[current_]->stop();
  current_ = (current_ + 1) % conns_.size();
  if (current_ == 0) ++failedRounds_;
  conns_[current_]->start();
  lastUp_ = now;
}

TrackerConnection::Events TrackerClient::connEvents(Events events) {
  TrackerConnection::Events ev;
  ev.onConnected = std::move(events.onConnected);
  ev.onMessage = [onMessage = std::move(events.onMessage)](std::string text) {
    auto msg = signaling::decodeTrackerMessage(text);
    if (msg && onMessage) onMessage(*msg);
  };
  return ev;
}

// first: a (re)connection to the tracker, which also restarts the back-off.
void Node::Impl::announceAll(bool first) {
  for (auto& [id, f] : files) {
    if (!f.serving && !f.wanted) continue;
    if (first) f.discovery->trackerConnected();
    announce(f, first ? signaling::Event::kStarted : signaling::Event::kNone);
  }
}

std::uint64_t Node::Impl::left(const FileState& f) const {
  auto st = f.session->stats();
  if (!st.haveManifest) return 1;  // unknown, but not zero: we are a leecher
  return st.bytesTotal - st.bytesVerified;
}

// False when there is no tracker connection to announce on. A leecher's
// announce is followed by the offers discovery asks for (sent once gathered).
bool Node::Impl::announce(FileState& f, signaling::Event event, bool quick) {
  if (!tracker || !tracker->connected()) return false;
  signaling::AnnounceRequest msg = baseAnnounce(f);
  msg.event = event;
  tracker->send(msg);
  const bool leeching = f.leeching() && event != signaling::Event::kStopped;
  const std::size_t offers = f.discovery->announced(now(), leeching, quick);
  for (std::size_t i = 0; i < offers; ++i) makeOffer(f);
  if (leeching) trace("announce with " + std::to_string(offers) + " offers, " + std::to_string(f.peers.size()) + " links");
  return true;
}

void Node::Impl::sendOffers(FileState& f) {
  if (!tracker) return;
  signaling::AnnounceRequest msg = baseAnnounce(f);
  auto flush = [&] {
    if (msg.offers.empty()) return;
    msg.numwant = static_cast<std::uint32_t>(msg.offers.size());
    trace("sent " + std::to_string(msg.offers.size()) + " offers");
    tracker->send(msg);
    msg.offers.clear();
  };
  for (const auto& o : f.discovery->takeOfferBatch(now())) {
    auto q = f.peers.find(o.key);
    if (q == f.peers.end()) continue;
    msg.offers.push_back({o.offerId, {"offer", std::move(q->second->offerSdp)}});
    if (msg.offers.size() == signaling::kMaxOffers) flush();
  }
  flush();
}

signaling::AnnounceRequest Node::Impl::baseAnnounce(const FileState& f) const {
  auto st = f.session->stats();
  signaling::AnnounceRequest a;
  a.infoHash = f.infoHash;
  a.peerId = peerId;
  a.numwant = static_cast<std::uint32_t>(opts.discovery.offersPerAnnounce);
  a.uploaded = st.uploaded;
  a.downloaded = st.downloaded;
  a.left = left(f);
  return a;
}

void Node::Impl::makeOffer(FileState& f) {
  Id20 offerId{};
  for (auto& b : offerId) b = static_cast<std::uint8_t>(rng());
  auto key = std::make_shared<std::uint64_t>(0);
  auto peer = newPeer(f, transport::Role::kOfferer, [this, fid = f.id, key](std::string sdp) {
    auto it = files.find(fid);
    if (it == files.end()) return;
    FileState& file = it->second;
    auto q = file.peers.find(*key);
    if (q == file.peers.end()) return;  // dropped while gathering
    q->second->offerSdp = std::move(sdp);
    if (file.discovery->offerGathered(*key, now())) sendOffers(file);
  });
  if (!peer) return;
  *key = peer->key;
  f.discovery->offerMade(peer->key, offerId, now());
  if (auto st = peer->link->createOffer(); !st) dropPeer(f, peer->key, "createOffer failed");
}

FileState* Node::Impl::fileBySwarm(const Id20& infoHash) {
  for (auto& [id, fs] : files) {
    if (fs.infoHash == infoHash) return &fs;
  }
  return nullptr;
}

// Untrusted (decoded, with its bounds, by signaling/); anything else is ignored.
void Node::Impl::onTrackerMessage(const signaling::TrackerMessage& msg) {
  if (auto* offer = std::get_if<signaling::RelayedOffer>(&msg)) {
    FileState* f = fileBySwarm(offer->infoHash);
    if (!f || offer->peerId == peerId || banned.count(offer->peerId)) return;
    if (!f->serving && !f->wanted) return;
    auto d = f->discovery->onOffer(now(), offer->peerId);
    if (d.replaces) dropPeer(*f, *d.replaces, "not open, superseded by the peer's new offer");
    trace("offer from " + shortId(offer->peerId) + ": " + std::string(d.why));
    if (d.answer) onRemoteOffer(*f, offer->peerId, offer->offerId, offer->offer.sdp);
  } else if (auto* reply = std::get_if<signaling::AnnounceResponse>(&msg)) {
    if (FileState* f = fileBySwarm(reply->infoHash)) {
      f->discovery->trackerCounts(std::size_t{reply->complete} + reply->incomplete);
    }
  } else if (auto* answer = std::get_if<signaling::RelayedAnswer>(&msg)) {
    FileState* f = fileBySwarm(answer->infoHash);
    if (!f) return;
    auto d = f->discovery->onAnswer(now(), answer->offerId, answer->peerId, banned.count(answer->peerId) != 0);
    for (const auto& drop : d.drops) dropPeer(*f, drop.key, std::string(drop.why));
    if (!d.apply) return;
    auto p = f->peers.find(*d.apply);
    if (p == f->peers.end()) return;
    trace("answer from " + shortId(answer->peerId));
    p->second->remotePeerId = answer->peerId;
    p->second->remoteFingerprint = transport::dtlsFingerprint(answer->answer.sdp).value_or("");
    if (auto st = p->second->link->acceptAnswer(answer->answer.sdp); !st) dropPeer(*f, p->first, "bad answer");
  }
}

void Node::Impl::onRemoteOffer(FileState& f, const Id20& from, const Id20& offerId, const std::string& sdp) {
  // The answer goes out only while its link is still ours (not dropped by
  // glare or superseded meanwhile).
  auto key = std::make_shared<std::uint64_t>(0);
  auto peer = newPeer(f, transport::Role::kAnswerer, [this, fid = f.id, from, offerId, key](std::string answer) {
    auto it = files.find(fid);
    if (it == files.end() || !tracker) return;
    auto q = it->second.peers.find(*key);
    if (q == it->second.peers.end()) return;
    it->second.discovery->answerSent(*key, now());
    signaling::AnnounceRequest msg;
    msg.infoHash = it->second.infoHash;
    msg.peerId = peerId;
    msg.answer = signaling::AnswerEntry{from, offerId, {"answer", std::move(answer)}};
    tracker->send(msg);
  });
  if (!peer) return;
  *key = peer->key;
  peer->remotePeerId = from;
  peer->remoteFingerprint = transport::dtlsFingerprint(sdp).value_or("");
  f.discovery->answering(peer->key, from, now());
  if (auto st = peer->link->acceptOffer(sdp); !st) dropPeer(f, peer->key, "bad offer");
}

}  // namespace p2pcdn::node
