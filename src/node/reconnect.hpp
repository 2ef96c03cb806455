// When to reconnect to the tracker after losing it: 1 s doubling to 30 s,
// each wait jittered by ±20 % so that peers a tracker restart dropped do not
// come back in lock-step. Shared by the native WebSocket client and the
// browser's. Pure.
#pragma once

#include <algorithm>
#include <chrono>

namespace p2pcdn::node {

class ReconnectBackoff {
 public:
  static constexpr std::chrono::milliseconds kFirst{1000};
  static constexpr std::chrono::milliseconds kMax{30000};

  // The wait before the next attempt; `unit` is uniform in [0, 1).
  std::chrono::milliseconds next(double unit) {
    const double jitter = 0.8 + 0.4 * std::clamp(unit, 0.0, 1.0);
    const auto wait = std::chrono::milliseconds(static_cast<long>(static_cast<double>(backoff_.count()) * jitter));
    backoff_ = std::min(backoff_ * 2, kMax);
    return wait;
  }
  // Connected: the next loss waits kFirst again.
  void reset() { backoff_ = kFirst; }

 private:
  std::chrono::milliseconds backoff_ = kFirst;
};

}  // namespace p2pcdn::node
