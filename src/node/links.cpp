// The link table: making links (newPeer), dropping them (dropPeer: the
// closing list keeps a dropped link until its GOODBYE is out), link stats.
#include "node/links.hpp"

#include <algorithm>

#include "node/node_impl.hpp"

namespace p2pcdn::node {

void ClosingLinks::sweep(swarm::Time now) {
  std::erase_if(links_, [&](const auto& c) {
    return !c.first->link || c.first->link->state() == transport::LinkState::kClosed || now > c.second;
  });
}

void ClosedLinkLedger::add(NodePeerStats s) {
  File& f = files_[s.fileId];
  f.links.push_back(std::move(s));
  f.lastAdded = ++seq_;
  if (f.links.size() > kClosedLinksPerFile) f.links.pop_front();
  if (files_.size() > kClosedFilesKept) {
    auto oldest = std::min_element(files_.begin(), files_.end(),
                                   [](const auto& a, const auto& b) { return a.second.lastAdded < b.second.lastAdded; });
    files_.erase(oldest);
  }
}

std::vector<NodePeerStats> ClosedLinkLedger::of(const FileId& id) const {
  auto it = files_.find(id);
  if (it == files_.end()) return {};
  return {it->second.links.begin(), it->second.links.end()};
}

std::vector<NodePeerStats> ClosedLinkLedger::all() const {
  std::vector<NodePeerStats> out;
  for (const auto& [id, f] : files_) out.insert(out.end(), f.links.begin(), f.links.end());
  return out;
}

std::shared_ptr<Peer> Node::Impl::newPeer(FileState& f, transport::Role role, std::function<void(std::string)> onSdp) {
  auto peer = std::make_shared<Peer>();
  peer->key = nextPeerKey++;
  std::weak_ptr<Impl> weak = shared_from_this();
  FileId fid = f.id;
  std::uint64_t key = peer->key;
  // Binds a link event to this peer: it runs only while the node, the file
  // and the peer are all still there.
  auto whileLinked = [weak, fid, key](auto fn) {
    return [weak, fid, key, fn](auto&&... args) {
      auto self = weak.lock();
      if (!self) return;
      auto it = self->files.find(fid);
      if (it == self->files.end()) return;
      auto p = it->second.peers.find(key);
      if (p == it->second.peers.end()) return;
      auto hold = p->second;  // the handler may drop the peer
      fn(*self, it->second, *hold, std::forward<decltype(args)>(args)...);
    };
  };
  transport::LinkEvents ev;
  Peer* raw = peer.get();  // the link's events stop when the peer (its owner) is gone
  ev.onLocalDescription = [raw, onSdp = std::move(onSdp)](std::string sdp) {
    raw->localFingerprint = transport::dtlsFingerprint(sdp).value_or("");
    onSdp(std::move(sdp));
  };
  ev.onOpen = whileLinked([](Impl& self, FileState& file, Peer& p) {
    p.opened = true;
    file.discovery->opened(p.key, self.now());
    self.trace("link " + std::to_string(p.key) + (p.remotePeerId ? " to " + shortId(*p.remotePeerId) : std::string()) + " open");
    // The session gets the link once the peer has proven its key (runAuth).
    p.auth.emplace(self.identity->publicKey(), self.identity->freshNonce(), p.localFingerprint, p.remoteFingerprint,
                   p.remotePeerId.value_or(Id20{}), self.now() + kAuthTimeout);
    self.runAuth(file, p, p.auth->start());
    if (p.link) self.requestLinkStats(file, p);  // the candidate types and a first RTT now, not a period later
  });
  ev.onMessage = whileLinked([](Impl& self, FileState& file, Peer& p, Bytes m) {
    if (p.auth && p.auth->proven()) return file.session->onMessage(p.key, m, self.now());
    if (p.auth) self.runAuth(file, p, p.auth->onMessage(m));
  });
  ev.onBufferedAmountLow = whileLinked([](Impl& self, FileState& file, Peer& p) { file.session->onWritable(p.key, self.now()); });
  ev.onClosed = whileLinked([](Impl& self, FileState& file, Peer& p, const Error& e) {
    file.discovery->closed(p.key, self.now(), e.code() != Errc::kOk, file.leeching());
    self.dropPeer(file, p.key, "link closed: " + e.message());
  });
  Runtime* rtPtr = &rt;
  auto link = links.create(role, opts.link, [rtPtr](std::function<void()> task) { rtPtr->post(std::move(task)); },
                           std::move(ev));
  if (!link) return nullptr;
  peer->link = std::move(*link);
  f.peers[peer->key] = peer;
  return peer;
}

// Carries out a step of a link's authentication: messages go out, signing
// and verifying go to the identity (what it answers is posted, then fed
// back), a failure drops the link, and a proven link goes to the session
// under the proven peer id, with the peer's early HANDSHAKE.
void Node::Impl::runAuth(FileState& f, Peer& p, LinkAuth::Step step) {
  const std::uint64_t key = p.key;
  if (step.send && p.link) {
    if (auto st = p.link->send(*step.send); !st) return dropPeer(f, key, "link auth: " + st.error().message());
  }
  std::weak_ptr<Impl> weak = shared_from_this();
  // Feeds what the identity answered back on a later turn, if the link is still there.
  // (The runtime outlives the node, so it may be used after the node is gone.)
  auto back = [weak, rtPtr = &rt, fid = f.id, key](auto feed) {
    return [weak, rtPtr, fid, key, feed](auto result) {
      rtPtr->post([weak, fid, key, feed, result] {
        auto self = weak.lock();
        if (!self) return;
        auto it = self->files.find(fid);
        if (it == self->files.end()) return;
        auto pit = it->second.peers.find(key);
        if (pit == it->second.peers.end() || !pit->second->auth) return;
        auto hold = pit->second;
        self->runAuth(it->second, *hold, feed(*hold->auth, result));
      });
    };
  };
  if (step.sign) {
    identity->sign(std::move(*step.sign), back([](LinkAuth& a, const std::optional<wire::Signature>& sig) {
      return a.onSigned(sig);
    }));
  }
  if (step.verify) {
    identity->verify(step.verify->key, std::move(step.verify->transcript), step.verify->signature,
                     back([](LinkAuth& a, bool ok) { return a.onVerified(ok); }));
  }
  if (step.failed) return dropPeer(f, key, *step.failed);
  if (!step.proven) return;
  if (bannedKeys.contains(p.auth->peerKey())) return dropPeer(f, key, "banned key: sent chunks that failed verification");
  // One link per key and file, whatever client letter its id carries.
  for (const auto& [k, q] : f.peers) {
    if (k != key && q->auth && q->auth->proven() && q->auth->peerKey() == p.auth->peerKey()) {
      return dropPeer(f, key, "already linked to this key");
    }
  }
  trace("link " + std::to_string(key) + " to " + shortId(p.auth->peerId()) + " proven");
  wire::PeerId id{};
  std::copy(p.auth->peerId().begin(), p.auth->peerId().end(), id.begin());
  f.session->addPeer(key, now(), id);
  if (auto early = p.auth->takeEarly()) {
    if (f.peers.contains(key)) f.session->onMessage(key, *early, now());
  }
}

void Node::Impl::dropPeer(FileState& f, std::uint64_t key, const std::string& why) {
  auto it = f.peers.find(key);
  if (it == f.peers.end()) return;
  auto peer = it->second;
  if (opts.trace) {
    trace("drop link " + std::to_string(key) + (peer->remotePeerId ? " to " + shortId(*peer->remotePeerId) : std::string()) +
          (peer->opened ? " (open)" : " (not open)") + ": " + why);
  }
  f.peers.erase(it);
  f.discovery->remove(key);
  retire(f, peer);
  f.session->removePeer(key, now());
}

void Node::Impl::retire(FileState& f, const std::shared_ptr<Peer>& peer) {
  if (auto s = statsOf(f, *peer, now())) ledger.add(std::move(*s));
  // close() lets queued data (a GOODBYE) out before the stream is reset;
  // the link is kept until that completes, at most ClosingLinks::kLimit.
  if (peer->link) {
    peer->link->close();
    closing.add(peer, now());
  }
}

void Node::Impl::requestLinkStats(FileState& f, Peer& p) {
  std::weak_ptr<Impl> weak = shared_from_this();
  p.link->requestStats([weak, fid = f.id, key = p.key](transport::LinkStats st) {
    auto self = weak.lock();
    if (!self) return;
    auto it = self->files.find(fid);
    if (it == self->files.end()) return;
    if (auto q = it->second.peers.find(key); q != it->second.peers.end()) q->second->linkStats = std::move(st);
  });
}

}  // namespace p2pcdn::node
