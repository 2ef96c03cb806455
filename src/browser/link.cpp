#include "browser/link.hpp"

#include <nlohmann/json.hpp>

#include "browser/js.hpp"

namespace p2pcdn::browser {

using transport::LinkState;
using nlohmann::json;

std::map<int, JsPeerLink*>& liveLinks() {
  static std::map<int, JsPeerLink*> links;
  return links;
}

Result<std::unique_ptr<transport::PeerLink>> JsLinkFactory::create(transport::Role role,
                                                                   const transport::LinkConfig& config,
                                                                   transport::Executor post,
                                                                   transport::LinkEvents events) {
  if (auto st = transport::validate(config); !st) return fail(st.error());
  const int h = rt_.newHandle();
  json cfg{{"iceServers", json::array()},
           {"offerer", role == transport::Role::kOfferer},
           {"lowWatermark", config.lowWatermark}};
  for (const auto& url : config.iceServers) {
    json server{{"urls", url}};
    if (url.rfind("turn", 0) == 0) {
      server["username"] = config.iceUsername;
      server["credential"] = config.icePassword;
    }
    cfg["iceServers"].push_back(std::move(server));
  }
  if (config.relayOnly) cfg["iceTransportPolicy"] = "relay";
  const std::string text = cfg.dump(-1, ' ', false, json::error_handler_t::replace);
  const int rc = p2p_js_pc_new(h, text.data(), text.size());
  if (rc == 2) {
    return fail(Errc::kBackPressure, "RTCPeerConnection", "the page holds as many as it may (web/src/host.js)");
  }
  if (rc != 0) return fail(Errc::kIo, "RTCPeerConnection", "the browser refused to create one");
  ++created_;
  return std::unique_ptr<transport::PeerLink>(
      std::make_unique<JsPeerLink>(rt_, h, role, config, std::move(post), std::move(events), live_));
}

JsPeerLink::JsPeerLink(BrowserRuntime& rt, int handle, transport::Role role, transport::LinkConfig config,
                       transport::Executor post, transport::LinkEvents events, std::shared_ptr<std::size_t> live)
    : rt_(rt), h_(handle), role_(role), config_(std::move(config)), post_(std::move(post)),
      events_(std::move(events)), live_(std::move(live)) {
  liveLinks()[h_] = this;
  ++*live_;
}

JsPeerLink::~JsPeerLink() {
  *alive_ = false;
  --*live_;
  liveLinks().erase(h_);
  p2p_js_pc_free(h_);
}

void JsPeerLink::startConnectTimer() {
  rt_.after(config_.connectTimeout, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired() || state_ != LinkState::kConnecting) return;
    finish(Error(Errc::kIo, "link", "not open " + std::to_string(config_.connectTimeout.count()) + " ms after it began"));
  });
}

Status JsPeerLink::createOffer() {
  if (role_ != transport::Role::kOfferer || state_ != LinkState::kNew) {
    return fail(Errc::kInvalidArgument, "createOffer", "not a new offerer");
  }
  state_ = LinkState::kConnecting;
  startConnectTimer();
  p2p_js_pc_offer(h_);
  return {};
}

Status JsPeerLink::acceptOffer(std::string_view sdp) {
  if (role_ != transport::Role::kAnswerer || state_ != LinkState::kNew) {
    return fail(Errc::kInvalidArgument, "acceptOffer", "not a new answerer");
  }
  if (sdp.rfind("v=0", 0) != 0) return fail(Errc::kMalformed, "acceptOffer", "not an SDP offer");
  state_ = LinkState::kConnecting;
  startConnectTimer();
  p2p_js_pc_accept_offer(h_, sdp.data(), sdp.size());
  return {};
}

Status JsPeerLink::acceptAnswer(std::string_view sdp) {
  if (role_ != transport::Role::kOfferer || state_ != LinkState::kConnecting || answered_) {
    return fail(Errc::kInvalidArgument, "acceptAnswer", "no offer waiting for an answer");
  }
  if (sdp.rfind("v=0", 0) != 0) return fail(Errc::kMalformed, "acceptAnswer", "not an SDP answer");
  answered_ = true;
  p2p_js_pc_accept_answer(h_, sdp.data(), sdp.size());
  return {};
}

Status JsPeerLink::send(ByteView message) {
  if (state_ == LinkState::kClosing || state_ == LinkState::kClosed) {
    return fail(Errc::kCancelled, "send", "link closed");
  }
  if (state_ != LinkState::kOpen) return fail(Errc::kInvalidArgument, "send", "link not open");
  if (message.empty()) return fail(Errc::kInvalidArgument, "send", "empty message");
  if (message.size() > config_.maxMessageSize) {
    return fail(Errc::kTooLarge, "send", std::to_string(message.size()) + " bytes");
  }
  if (bufferedAmount() + message.size() > config_.highWatermark) {
    p2p_js_dc_notify_below(h_, static_cast<double>(config_.lowWatermark));
    return fail(transport::kBackPressure, "send", "queue full");
  }
  if (p2p_js_dc_send(h_, message.data(), message.size()) != 0) {
    finish(Error(Errc::kIo, "send", "the data channel refused the message"));
    return fail(Errc::kIo, "send", "the data channel refused the message");
  }
  stats_.bytesSent += message.size();
  ++stats_.messagesSent;
  return {};
}

std::size_t JsPeerLink::bufferedAmount() const {
  if (state_ != LinkState::kOpen) return 0;
  return static_cast<std::size_t>(p2p_js_dc_buffered(h_));
}

void JsPeerLink::notifyWhenBufferedBelow(std::size_t bytes) {
  if (state_ == LinkState::kOpen) p2p_js_dc_notify_below(h_, static_cast<double>(bytes));
}

void JsPeerLink::close() {
  if (state_ == LinkState::kClosing || state_ == LinkState::kClosed) return;
  if (state_ != LinkState::kOpen) return finish(Error(Errc::kOk, "closed", "before it opened"));
  state_ = LinkState::kClosing;
  p2p_js_pc_close(h_);
  rt_.after(config_.closeTimeout, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired() && state_ == LinkState::kClosing) finish(Error(Errc::kOk, "closed", "by us (timed out)"));
  });
}

void JsPeerLink::requestStats(std::function<void(transport::LinkStats)> done) {
  if (state_ != LinkState::kOpen) {
    post_([done = std::move(done), s = stats_] { done(s); });
    return;
  }
  statsWaiting_.push_back(std::move(done));
  if (statsWaiting_.size() == 1) p2p_js_pc_stats(h_);
}

std::uint8_t* JsPeerLink::inbox(std::size_t n) {
  if (n == 0 || n > config_.maxMessageSize || inboxFull_) return nullptr;
  inbox_.resize(n);
  inboxFull_ = true;
  return inbox_.data();
}

void JsPeerLink::message() {
  if (!inboxFull_) return;
  inboxFull_ = false;
  if (undelivered_ + inbox_.size() > kMaxUndelivered) {
    inbox_ = Bytes();
    return event(3, "more than " + std::to_string(kMaxUndelivered) + " bytes received and not yet handled");
  }
  undelivered_ += inbox_.size();
  post_([this, alive = std::weak_ptr<bool>(alive_), m = std::move(inbox_)]() mutable {
    if (alive.expired()) return;
    undelivered_ -= m.size();
    if (state_ != LinkState::kOpen) return;
    stats_.bytesReceived += m.size();
    ++stats_.messagesReceived;
    if (events_.onMessage) events_.onMessage(std::move(m));
  });
  inbox_ = Bytes();
}

void JsPeerLink::event(int kind, std::string text) {
  post_([this, alive = std::weak_ptr<bool>(alive_), kind, text = std::move(text)]() mutable {
    if (alive.expired() || state_ == LinkState::kClosed) return;
    switch (kind) {
      case 0:
        if (state_ == LinkState::kConnecting && events_.onLocalDescription) events_.onLocalDescription(std::move(text));
        return;
      case 1:
        if (state_ != LinkState::kConnecting) return;
        state_ = LinkState::kOpen;
        if (events_.onOpen) events_.onOpen();
        return;
      case 2:
        if (state_ == LinkState::kOpen && events_.onBufferedAmountLow) events_.onBufferedAmountLow();
        return;
      case 3:
        if (text.empty()) return finish(Error(Errc::kOk, "closed", state_ == LinkState::kClosing ? "by us" : "by the peer"));
        return finish(Error(Errc::kIo, "link", text));
      case 4: {
        auto j = json::parse(text, nullptr, false);
        if (j.is_object()) {
          if (j.contains("rtt") && j["rtt"].is_number()) stats_.rttSeconds = j["rtt"].get<double>();
          if (j.contains("local") && j["local"].is_string()) stats_.localCandidateType = j["local"].get<std::string>();
          if (j.contains("remote") && j["remote"].is_string()) stats_.remoteCandidateType = j["remote"].get<std::string>();
        }
        auto waiting = std::move(statsWaiting_);
        statsWaiting_.clear();
        for (auto& done : waiting) done(stats_);
        return;
      }
      default:
        return;
    }
  });
}

void JsPeerLink::finish(const Error& why) {
  if (state_ == LinkState::kClosed) return;
  state_ = LinkState::kClosed;
  p2p_js_pc_free(h_);  // frees the RTCPeerConnection now; the handle stays ours until destroyed
  auto waiting = std::move(statsWaiting_);
  statsWaiting_.clear();
  post_([this, alive = std::weak_ptr<bool>(alive_), why, waiting = std::move(waiting)] {
    if (alive.expired()) return;
    for (auto& done : waiting) done(stats_);
    if (events_.onClosed) events_.onClosed(why);
  });
}

}  // namespace p2pcdn::browser
