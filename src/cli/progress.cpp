#include "cli/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace p2pcdn::cli {

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(std::uint64_t done, std::uint64_t total, const std::string& extra) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  drawn_ = true;
  double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  double secs = std::chrono::duration<double>(now - start_).count();
  double mbps = secs > 0 ? static_cast<double>(done) / 1e6 / secs : 0.0;
  constexpr int kWidth = 30;
  int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::string eta = "--:--";
  if (mbps > 0 && total > done) {
    auto left = static_cast<long>(static_cast<double>(total - done) / 1e6 / mbps);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", left / 60, left % 60);
    eta = buf;
  } else if (done >= total) {
    eta = "00:00";
  }
  std::fprintf(stderr, "\r%-10s [%s] %5.1f%%  %7.1f MB/s  ETA %s  %s\033[K", label_.c_str(), bar.c_str(),
               frac * 100.0, mbps, eta.c_str(), extra.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (enabled_ && drawn_) {
    std::fputc('\n', stderr);
    drawn_ = false;
  }
}

}  // namespace p2pcdn::cli
