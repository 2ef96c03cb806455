#include "transport/peer_link.hpp"

#include <string>

namespace p2pcdn::transport {

namespace {
// libwebrtc closes a data channel whose send queue would pass 16 MiB.
constexpr std::size_t kStackQueueLimit = std::size_t{16} << 20;
}  // namespace

bool isBackPressure(const Error& e) { return e.code() == Errc::kBackPressure; }

Status validate(const LinkConfig& c) {
  const auto bad = [](std::string detail) { return fail(Errc::kInvalidArgument, "link config", std::move(detail)); };
  if (c.maxMessageSize == 0 || c.maxMessageSize > kMaxMessageSize) {
    return bad("maxMessageSize must be 1.." + std::to_string(kMaxMessageSize));
  }
  if (c.highWatermark > kStackQueueLimit) {
    return bad("highWatermark must not exceed " + std::to_string(kStackQueueLimit));
  }
  if (c.lowWatermark + c.maxMessageSize > c.highWatermark) {
    return bad("lowWatermark + maxMessageSize must not exceed highWatermark");
  }
  if (c.connectTimeout.count() <= 0 || c.closeTimeout.count() < 0) {
    return bad("timeouts must be positive");
  }
  for (const std::string& url : c.iceServers) {
    // TURN needs credentials, which LinkConfig does not carry yet.
    if (url.rfind("stun:", 0) != 0 && url.rfind("stuns:", 0) != 0) {
      return bad("ICE server URL must start with stun: or stuns: (" + url + ")");
    }
  }
  return {};
}

std::string_view linkStateName(LinkState s) {
  switch (s) {
    case LinkState::kNew: return "new";
    case LinkState::kConnecting: return "connecting";
    case LinkState::kOpen: return "open";
    case LinkState::kClosing: return "closing";
    case LinkState::kClosed: return "closed";
  }
  return "?";
}

}  // namespace p2pcdn::transport
