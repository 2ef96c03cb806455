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
  bool turn = false;
  for (const std::string& url : c.iceServers) {
    const bool isTurn = url.rfind("turn:", 0) == 0 || url.rfind("turns:", 0) == 0;
    if (!isTurn && url.rfind("stun:", 0) != 0 && url.rfind("stuns:", 0) != 0) {
      return bad("ICE server URL must start with stun:, stuns:, turn: or turns: (" + url + ")");
    }
    if (url.size() > 512) return bad("ICE server URL longer than 512 bytes");
    turn = turn || isTurn;
  }
  if (turn && (c.iceUsername.empty() || c.icePassword.empty())) {
    return bad("a turn: server needs a user name and a password");
  }
  if (c.relayOnly && !turn) return bad("relay-only needs a turn: server");
  return {};
}

std::optional<std::string> dtlsFingerprint(std::string_view sdp) {
  constexpr std::string_view kAttr = "a=fingerprint:";
  std::optional<std::string> found;
  std::size_t at = 0;
  while (at < sdp.size()) {
    std::size_t end = sdp.find('\n', at);
    if (end == std::string_view::npos) end = sdp.size();
    std::string_view line = sdp.substr(at, end - at);
    at = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.substr(0, kAttr.size()) != kAttr) continue;
    // A second line: which one DTLS checks against depends on the stack
    // (libwebrtc takes the media section's, the last of several; Firefox any
    // of them), so what auth signs could differ from what DTLS checks.
    if (found) return std::nullopt;
    line.remove_prefix(kAttr.size());
    const std::size_t space = line.find(' ');
    if (space == 0 || space == std::string_view::npos || space > 16) return std::nullopt;
    std::string out;
    for (char c : line.substr(0, space)) {
      const char l = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      if (!((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '-')) return std::nullopt;
      out += l;
    }
    out += ' ';
    std::size_t digits = 0;
    for (char c : line.substr(space + 1)) {
      if (c == ':') continue;
      const char l = static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
      if (!((l >= '0' && l <= '9') || (l >= 'a' && l <= 'f'))) return std::nullopt;
      out += l;
      ++digits;
    }
    // SHA-1 (40 digits) up to SHA-512 (128); odd counts are not a digest.
    if (digits < 40 || digits > 128 || digits % 2 != 0) return std::nullopt;
    found = std::move(out);
  }
  return found;
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
