// Time, rates and token buckets for the swarm engine. The clock is injected:
// every call takes `now`, so the simulator runs the same code in virtual time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace p2pcdn::swarm {

// A monotonic instant from the host's clock (steady_clock's epoch natively,
// zero at the start of a simulation).
using Time = std::chrono::nanoseconds;

inline double seconds(Time t) { return std::chrono::duration<double>(t).count(); }
// Saturates at +-1e9 s (a rate near zero gives huge waits; converting those
// to integer nanoseconds would overflow, which session_fuzz found). NaN -> 0.
inline Time fromSeconds(double s) {
  if (!(s == s)) s = 0;
  s = std::clamp(s, -1e9, 1e9);
  return std::chrono::duration_cast<Time>(std::chrono::duration<double>(s));
}

// Bytes per second, exponentially smoothed with time constant `tau`: a burst
// of B bytes raises the rate by B / tau and decays with e^(-t/tau).
class RateMeter {
 public:
  explicit RateMeter(Time tau = std::chrono::seconds(2)) : tau_(seconds(tau)) {}
  void add(std::uint64_t bytes, Time now) {
    decay(now);
    rate_ += static_cast<double>(bytes) / tau_;
    total_ += bytes;
  }
  double rate(Time now) const {
    const double dt = seconds(now - last_);
    return dt > 0 ? rate_ * std::exp(-dt / tau_) : rate_;
  }
  std::uint64_t total() const { return total_; }
  double tauSeconds() const { return tau_; }

 private:
  void decay(Time now) {
    rate_ = rate(now);
    last_ = std::max(last_, now);
  }
  double tau_;
  double rate_ = 0;
  Time last_{};
  std::uint64_t total_ = 0;
};

// Token bucket with debt: spending is allowed while the balance is not
// negative and may take it below zero; the balance refills at `rate` bytes/s
// up to `burst`. So a limit of R bytes/s holds on average whatever the message
// sizes, and one large message never waits for a burst larger than the bucket.
// rate 0 means unlimited.
class TokenBucket {
 public:
  TokenBucket() = default;
  TokenBucket(double ratePerSecond, double burst) : rate_(ratePerSecond), burst_(std::max(burst, 1.0)), tokens_(burst_) {}
  bool unlimited() const { return rate_ <= 0; }
  bool ready(Time now) {
    refill(now);
    return unlimited() || tokens_ >= 0;
  }
  void spend(double bytes, Time now) {
    if (unlimited()) return;
    refill(now);
    tokens_ -= bytes;
  }
  // When ready() becomes true (now if it already is).
  Time readyAt(Time now) {
    refill(now);
    if (unlimited() || tokens_ >= 0) return now;
    return now + fromSeconds(-tokens_ / rate_) + Time(1);
  }

 private:
  void refill(Time now) {
    if (now > last_) {
      tokens_ = std::min(burst_, tokens_ + rate_ * seconds(now - last_));
      last_ = now;
    }
  }
  double rate_ = 0;
  double burst_ = 1;
  double tokens_ = 1;
  Time last_{};
};

}  // namespace p2pcdn::swarm
