// An in-memory transport::PeerLink for node tests: the "SDP" is a token that
// names the other end in a registry shared by the factory's links, so two
// Nodes in one process connect through a real tracker without WebRTC.
// Messages are delivered in order through each end's Executor (never inline
// from a PeerLink call), close() delivers what was sent before it, then
// onClosed(kOk) on both ends; destroying an end closes the other one.
//
// setLatency() makes every link event take a fixed time to arrive, on a
// virtual clock (virtual_world.hpp); without it, the next loop turn.
//
// deliveryDepth() counts link events being delivered right now on this thread:
// a test can check that a node event did not run inside a link callback.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "swarm/rate.hpp"
#include "core/blake3.hpp"
#include "transport/peer_link.hpp"

namespace p2pcdn::test {

inline int& deliveryDepth() {
  thread_local int depth = 0;
  return depth;
}

class MemLinkFactory : public transport::LinkFactory {
 public:
  Result<std::unique_ptr<transport::PeerLink>> create(transport::Role role, const transport::LinkConfig& config,
                                                      transport::Executor post, transport::LinkEvents events) override;
  std::size_t linksCreated() const { return created_; }
  using Schedule = std::function<void(swarm::Time, std::function<void()>)>;
  void setLatency(Schedule schedule, swarm::Time oneWay) {
    schedule_ = std::move(schedule);
    latency_ = oneWay;
  }

 private:
  struct End;
  class Link;
  std::shared_ptr<std::map<std::string, std::weak_ptr<End>>> registry_ =
      std::make_shared<std::map<std::string, std::weak_ptr<End>>>();
  std::size_t created_ = 0;
  std::uint64_t next_ = 1;
  Schedule schedule_;
  swarm::Time latency_{};
};

struct MemLinkFactory::End : std::enable_shared_from_this<End> {
  transport::Role role{};
  transport::LinkConfig config;
  transport::Executor post;  // how this end's events reach its node
  transport::LinkEvents ev;
  transport::LinkState state = transport::LinkState::kNew;
  transport::LinkStats stats;
  std::string token;
  std::weak_ptr<End> peer;
  bool alive = true;
  bool closedFired = false;

  // Runs `fn(end)` on the end's loop, on a later turn, if the end is still there.
  template <class F>
  static void later(const std::weak_ptr<End>& w, F fn) {
    auto e = w.lock();
    if (!e) return;
    e->post([w, fn = std::move(fn)]() mutable {
      auto self = w.lock();
      if (!self || !self->alive) return;
      ++deliveryDepth();
      fn(*self);
      --deliveryDepth();
    });
  }
  void fireClosed(const Error& why) {
    if (closedFired) return;
    closedFired = true;
    state = transport::LinkState::kClosed;
    auto cb = ev.onClosed;
    if (cb) cb(why);
  }
};

class MemLinkFactory::Link : public transport::PeerLink {
 public:
  Link(std::shared_ptr<End> e, std::shared_ptr<std::map<std::string, std::weak_ptr<End>>> reg)
      : e_(std::move(e)), reg_(std::move(reg)) {}
  ~Link() override {
    e_->alive = false;
    reg_->erase(e_->token);
    if (e_->state != transport::LinkState::kClosed) {
      End::later(e_->peer, [](End& p) { p.fireClosed(Error(Errc::kIo, "link", "the peer went away")); });
    }
  }
  Status createOffer() override {
    e_->state = transport::LinkState::kConnecting;
    End::later(e_, [](End& e) {
      if (e.ev.onLocalDescription) e.ev.onLocalDescription("mem-offer:" + e.token + fingerprintLine(e.token));
    });
    return {};
  }
  Status acceptOffer(std::string_view sdp) override {
    auto other = find(sdp, "mem-offer:");
    if (!other) return fail(Errc::kMalformed, "accept offer", "not a mem link offer");
    e_->peer = other;
    e_->state = transport::LinkState::kConnecting;
    End::later(e_, [](End& e) {
      if (e.ev.onLocalDescription) e.ev.onLocalDescription("mem-answer:" + e.token + fingerprintLine(e.token));
    });
    return {};
  }
  Status acceptAnswer(std::string_view sdp) override {
    auto other = find(sdp, "mem-answer:");
    if (!other) return fail(Errc::kMalformed, "accept answer", "not a mem link answer");
    auto o = other;
    if (o->peer.lock() != e_) return fail(Errc::kInvalidArgument, "accept answer", "answer to another offer");
    e_->peer = o;
    for (const auto& end : {std::weak_ptr<End>(e_), std::weak_ptr<End>(o)}) {
      End::later(end, [](End& e) {
        if (e.state != transport::LinkState::kConnecting) return;
        e.state = transport::LinkState::kOpen;
        if (e.ev.onOpen) e.ev.onOpen();
      });
    }
    return {};
  }
  Status send(ByteView message) override {
    if (e_->state != transport::LinkState::kOpen) return fail(Errc::kCancelled, "send", "not open");
    if (message.empty()) return fail(Errc::kInvalidArgument, "send", "empty message");
    if (message.size() > e_->config.maxMessageSize) return fail(Errc::kTooLarge, "send", "message too large");
    e_->stats.bytesSent += message.size();
    ++e_->stats.messagesSent;
    End::later(e_->peer, [m = Bytes(message.begin(), message.end())](End& p) mutable {
      if (p.state != transport::LinkState::kOpen && p.state != transport::LinkState::kClosing) return;
      p.stats.bytesReceived += m.size();
      ++p.stats.messagesReceived;
      if (p.ev.onMessage) p.ev.onMessage(std::move(m));
    });
    return {};
  }
  std::size_t bufferedAmount() const override { return 0; }
  void notifyWhenBufferedBelow(std::size_t) override {
    End::later(e_, [](End& e) {
      if (e.ev.onBufferedAmountLow) e.ev.onBufferedAmountLow();
    });
  }
  void close() override {
    if (e_->state == transport::LinkState::kClosing || e_->state == transport::LinkState::kClosed) return;
    const bool wasOpen = e_->state == transport::LinkState::kOpen;
    e_->state = transport::LinkState::kClosing;
    // After everything sent before it (the posts run in order).
    End::later(e_->peer, [](End& p) { p.fireClosed(Error(Errc::kOk, "link", "closed by the peer")); });
    End::later(e_, [wasOpen](End& e) {
      e.fireClosed(wasOpen ? Error(Errc::kOk, "link", "closed") : Error(Errc::kCancelled, "link", "closed before open"));
    });
  }
  transport::LinkState state() const override { return e_->state; }
  transport::LinkStats stats() const override { return e_->stats; }
  void requestStats(std::function<void(transport::LinkStats)> done) override {
    End::later(e_, [done = std::move(done)](End& e) {
      transport::LinkStats s = e.stats;
      s.rttSeconds = 0.0001;
      s.localCandidateType = s.remoteCandidateType = "host";
      done(s);
    });
  }

 private:
  // Each end's "certificate": a fingerprint line as WebRTC's SDP has, made
  // from its token (link authentication signs over it).
  static std::string fingerprintLine(const std::string& token) {
    return "\r\na=fingerprint:sha-256 " + Blake3::hash(asBytes(std::string_view(token))).hex() + "\r\n";
  }
  std::shared_ptr<End> find(std::string_view sdp, std::string_view prefix) {
    if (sdp.substr(0, prefix.size()) != prefix) return nullptr;
    sdp.remove_prefix(prefix.size());
    auto it = reg_->find(std::string(sdp.substr(0, sdp.find('\r'))));
    return it == reg_->end() ? nullptr : it->second.lock();
  }
  std::shared_ptr<End> e_;
  std::shared_ptr<std::map<std::string, std::weak_ptr<End>>> reg_;
};

inline Result<std::unique_ptr<transport::PeerLink>> MemLinkFactory::create(transport::Role role,
                                                                           const transport::LinkConfig& config,
                                                                           transport::Executor post,
                                                                           transport::LinkEvents events) {
  auto e = std::make_shared<End>();
  e->role = role;
  e->config = config;
  if (schedule_) {
    e->post = [s = schedule_, lat = latency_](std::function<void()> task) { s(lat, std::move(task)); };
  } else {
    e->post = std::move(post);
  }
  e->ev = std::move(events);
  e->token = std::to_string(next_++);
  (*registry_)[e->token] = e;
  ++created_;
  return std::unique_ptr<transport::PeerLink>(std::make_unique<Link>(std::move(e), registry_));
}

}  // namespace p2pcdn::test
