// A token bucket: `rate` tokens per second, at most `burst` saved up. Pure:
// the caller passes the time. A rate of 0 or less means "unlimited".
#pragma once

#include <algorithm>
#include <chrono>

namespace p2pcdn::tracker {

class TokenBucket {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  TokenBucket() = default;
  TokenBucket(double rate, double burst, TimePoint now) : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

  // Takes one token if there is one.
  bool take(TimePoint now) {
    if (rate_ <= 0) return true;
    refill(now);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  double tokens(TimePoint now) {
    refill(now);
    return tokens_;
  }

 private:
  void refill(TimePoint now) {
    if (now <= last_) return;
    const double seconds = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + seconds * rate_);
    last_ = now;
  }

  double rate_ = 0;
  double burst_ = 0;
  double tokens_ = 0;
  TimePoint last_{};
};

}  // namespace p2pcdn::tracker
