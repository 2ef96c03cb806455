// The raw WebRTC data-channel baseline: two processes, one PeerLink, N bytes one
// way with watermark flow control, no p2pcdn protocol on top. Later transfers
// are compared against this number.
//
//   bench_raw_datachannel recv --signal-dir DIR            (start first, or in any order)
//   bench_raw_datachannel send --signal-dir DIR --bytes N
//   bench_raw_datachannel run  --bytes N --repeat 3        (forks both, prints the median)
//
// The SDP goes through files in DIR (offer.sdp, answer.sdp; use an empty DIR).
// Each side prints one JSON line: seconds from launch to open, transfer seconds,
// MB/s (1 MB = 1e6 bytes), CPU seconds and peak RSS.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "transport/peer_link.hpp"
#include "transport/webrtc/webrtc_link.hpp"

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace p2pcdn;
using namespace p2pcdn::transport;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr char kHeaderMagic[8] = {'p', '2', 'p', 'r', 'a', 'w', '0', '1'};
constexpr std::string_view kDone = "done";

struct Options {
  std::string signalDir;
  std::uint64_t bytes = std::uint64_t{256} << 20;
  std::size_t msgSize = kMaxMessageSize;
  std::size_t highWatermark = LinkConfig{}.highWatermark;
  std::size_t lowWatermark = LinkConfig{}.lowWatermark;
  std::int64_t t0Ns = 0;  // launch time (steady clock) passed by `run`; else main()
  // 0: the system's default SO_RCVBUF, not p2pcdn's 4 MiB. This sender pushes
  // without limit; with no datagram lost, dcsctp's window grows to MBs and
  // Debian's libtgowt, built with its debug checks on, walks the whole
  // outstanding list on every SACK (OutstandingData::IsConsistent: 68 % of
  // the sender's CPU): 80 -> 15 MB/s. p2pcdn's pull protocol keeps far less
  // in flight (64 MB 1 -> 1: 1.16 s median either way).
  std::size_t udpReceiveBuffer = 0;
  bool anyInterface = false;
  bool verbose = false;
  int repeat = 3;
};

std::int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}
double since(std::int64_t fromNs, std::int64_t toNs) { return static_cast<double>(toNs - fromNs) / 1e9; }

void writeAtomically(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  std::ofstream(tmp, std::ios::binary) << text;
  fs::rename(tmp, path);
}

std::optional<std::string> takeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::error_code ec;
  fs::remove(path, ec);
  return text;
}

json resourceUsage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double user = static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
  const double sys = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
  return {{"cpu_s", user + sys}, {"user_s", user}, {"sys_s", sys},
          {"peak_rss_mib", static_cast<double>(ru.ru_maxrss) / 1024.0}};
}

// One side of the transfer, driven by an io_context on this thread.
class Side {
 public:
  Side(const Options& o, Role role) : opt_(o), role_(role), pollTimer_(io_) {}

  int run() {
    WebRtcFactoryOptions fo;
    fo.log = opt_.verbose ? WebRtcLog::kInfo : WebRtcLog::kNone;
    fo.udpReceiveBuffer = opt_.udpReceiveBuffer;
    auto factory = makeWebRtcLinkFactory(fo);
    if (!factory) return die(factory.error().message());
    LinkConfig config;
    config.loopbackOnly = !opt_.anyInterface;
    config.allowLoopback = true;
    config.highWatermark = opt_.highWatermark;
    config.lowWatermark = opt_.lowWatermark;
    auto link = (*factory)->create(role_, config, [this](std::function<void()> t) { asio::post(io_, std::move(t)); },
                                   events());
    if (!link) return die(link.error().message());
    link_ = std::move(*link);

    if (role_ == Role::kOfferer) {
      Status s = link_->createOffer();
      if (!s) return die(s.error().message());
    } else {
      poll("offer.sdp", [this](std::string sdp) {
        Status s = link_->acceptOffer(sdp);
        if (!s) finish(s.error().message());
      });
    }
    while (!finished_ && io_.run_one() > 0) {
    }
    pollTimer_.cancel();
    link_.reset();
    factory->reset();
    if (!error_.empty()) return die(error_);
    std::printf("%s\n", result_.dump().c_str());
    return 0;
  }

 private:
  LinkEvents events() {
    LinkEvents e;
    e.onLocalDescription = [this](std::string sdp) {
      const fs::path dir(opt_.signalDir);
      writeAtomically(dir / (role_ == Role::kOfferer ? "offer.sdp" : "answer.sdp"), sdp);
      if (role_ == Role::kOfferer) {
        poll("answer.sdp", [this](std::string answer) {
          Status s = link_->acceptAnswer(answer);
          if (!s) finish(s.error().message());
        });
      }
    };
    e.onOpen = [this] {
      openNs_ = nowNs();
      if (role_ == Role::kOfferer) startSending();
    };
    e.onMessage = [this](p2pcdn::Bytes m) { onMessage(std::move(m)); };
    e.onBufferedAmountLow = [this] { pump(); };
    e.onClosed = [this](const Error& reason) {
      if (!done_) {
        finish("link closed before the transfer ended: " + reason.message());
      } else {
        finished_ = true;
      }
    };
    return e;
  }

  void poll(std::string name, std::function<void(std::string)> then) {
    pollTimer_.expires_after(std::chrono::milliseconds(5));
    pollTimer_.async_wait([this, name = std::move(name), then = std::move(then)](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto text = takeFile(fs::path(opt_.signalDir) / name)) {
        then(std::move(*text));
      } else {
        poll(name, then);
      }
    });
  }

  // --- sender ---
  void startSending() {
    payload_.resize(opt_.msgSize);
    std::uint32_t x = 0x9e3779b9u;
    for (auto& b : payload_) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      b = static_cast<std::uint8_t>(x);
    }
    p2pcdn::Bytes header(kHeaderMagic, kHeaderMagic + sizeof kHeaderMagic);
    for (int i = 0; i < 8; ++i) header.push_back(static_cast<std::uint8_t>(opt_.bytes >> (8 * i)));
    Status s = link_->send(header);
    if (!s) return finish(s.error().message());
    startNs_ = nowNs();
    pump();
  }

  void pump() {
    if (role_ != Role::kOfferer || done_) return;
    while (sent_ < opt_.bytes) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(opt_.msgSize, opt_.bytes - sent_));
      Status s = link_->send(p2pcdn::ByteView(payload_.data(), n));
      if (!s) {
        if (isBackPressure(s.error())) {
          ++refusals_;
          return;  // onBufferedAmountLow resumes
        }
        return finish(s.error().message());
      }
      sent_ += n;
    }
  }

  void onMessage(p2pcdn::Bytes m) {
    if (role_ == Role::kOfferer) {
      if (std::string_view(reinterpret_cast<const char*>(m.data()), m.size()) != kDone) {
        return finish("unexpected message from the receiver");
      }
      const std::int64_t end = nowNs();
      done_ = true;
      const double transfer = since(startNs_, end);
      result_ = {{"role", "send"},
                 {"bytes", opt_.bytes},
                 {"msg_size", opt_.msgSize},
                 {"high_watermark", opt_.highWatermark},
                 {"open_s", since(opt_.t0Ns, openNs_)},
                 {"transfer_s", transfer},
                 {"mb_per_s", static_cast<double>(opt_.bytes) / 1e6 / transfer},
                 {"backpressure_refusals", refusals_}};
      result_.update(resourceUsage());
      link_->close();  // onClosed ends the loop
      return;
    }
    // receiver
    if (total_ == 0) {
      if (m.size() != 16 || std::memcmp(m.data(), kHeaderMagic, 8) != 0) return finish("bad header message");
      for (int i = 0; i < 8; ++i) total_ |= std::uint64_t{m[8 + static_cast<std::size_t>(i)]} << (8 * i);
      if (total_ == 0) return finish("zero-byte transfer");
      return;
    }
    if (received_ == 0) startNs_ = nowNs();
    received_ += m.size();
    ++messages_;
    if (received_ >= total_) {
      const std::int64_t end = nowNs();
      done_ = true;
      const double transfer = since(startNs_, end);
      Status s = link_->send(p2pcdn::asBytes(kDone));
      if (!s) return finish(s.error().message());
      result_ = {{"role", "recv"},
                 {"bytes", received_},
                 {"messages", messages_},
                 {"open_s", since(opt_.t0Ns, openNs_)},
                 {"transfer_s", transfer},
                 {"mb_per_s", static_cast<double>(received_) / 1e6 / transfer}};
      result_.update(resourceUsage());
      // Wait for the sender's close (it confirms "done" arrived); onClosed ends the loop.
    }
  }

  void finish(std::string error) {
    error_ = std::move(error);
    finished_ = true;
  }

  int die(const std::string& message) {
    std::fprintf(stderr, "bench_raw_datachannel %s: %s\n", role_ == Role::kOfferer ? "send" : "recv", message.c_str());
    return 1;
  }

  const Options& opt_;
  const Role role_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  asio::steady_timer pollTimer_;
  std::unique_ptr<PeerLink> link_;
  p2pcdn::Bytes payload_;
  std::uint64_t sent_ = 0, received_ = 0, total_ = 0, messages_ = 0;
  int refusals_ = 0;
  std::int64_t openNs_ = 0, startNs_ = 0;
  bool done_ = false, finished_ = false;
  std::string error_;
  json result_;
};

// Starts `self <args...>` with stdout on a pipe; returns pid and read end.
std::pair<pid_t, int> spawn(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return {-1, -1};
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

std::string readAll(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return out;
}

int runBoth(const Options& opt) {
  std::vector<double> rates;
  json runs = json::array();
  for (int i = 0; i < opt.repeat; ++i) {
    char tmpl[] = "/tmp/p2pcdn-raw-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return 1;
    const std::string dir = tmpl;
    const std::string t0 = std::to_string(nowNs());
    std::vector<std::string> common = {"--signal-dir", dir, "--t0-ns", t0, "--udp-rcvbuf",
                                       std::to_string(opt.udpReceiveBuffer)};
    if (opt.anyInterface) common.push_back("--any-interface");
    if (opt.verbose) common.push_back("--verbose");
    std::vector<std::string> recv = {"bench_raw_datachannel", "recv"};
    std::vector<std::string> send = {"bench_raw_datachannel", "send", "--bytes", std::to_string(opt.bytes),
                                     "--msg-size", std::to_string(opt.msgSize),
                                     "--high-watermark", std::to_string(opt.highWatermark),
                                     "--low-watermark", std::to_string(opt.lowWatermark)};
    recv.insert(recv.end(), common.begin(), common.end());
    send.insert(send.end(), common.begin(), common.end());
    auto [rpid, rfd] = spawn(recv);
    auto [spid, sfd] = spawn(send);
    const std::string sendOut = readAll(sfd);
    const std::string recvOut = readAll(rfd);
    int sst = 0, rst = 0;
    waitpid(spid, &sst, 0);
    waitpid(rpid, &rst, 0);
    std::error_code ec;
    fs::remove_all(dir, ec);
    const json s = json::parse(sendOut, nullptr, false);
    const json r = json::parse(recvOut, nullptr, false);
    if (sst != 0 || rst != 0 || s.is_discarded() || r.is_discarded()) {
      std::fprintf(stderr, "run %d failed (send status %d, recv status %d)\n", i + 1, sst, rst);
      return 1;
    }
    json run = {{"run", i + 1}, {"mb_per_s", s["mb_per_s"]}, {"send", s}, {"recv", r}};
    std::printf("%s\n", run.dump().c_str());
    std::fflush(stdout);
    rates.push_back(s["mb_per_s"].get<double>());
    runs.push_back(std::move(run));
  }
  std::vector<double> sorted = rates;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.size() % 2 == 1 ? sorted[sorted.size() / 2]
                                               : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
  json summary = {{"bytes", opt.bytes}, {"msg_size", opt.msgSize}, {"runs", rates.size()},
                  {"median_mb_per_s", median}, {"min_mb_per_s", sorted.front()}, {"max_mb_per_s", sorted.back()}};
  std::printf("%s\n", summary.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  opt.t0Ns = nowNs();
  CLI::App app{"Raw WebRTC data-channel throughput between two processes (the baseline)"};
  app.require_subcommand(1);
  auto addCommon = [&](CLI::App* c) {
    c->add_option("--t0-ns", opt.t0Ns, "launch time (steady clock ns), set by `run`");
    c->add_flag("--any-interface", opt.anyInterface, "gather on every interface, not only 127.0.0.1");
    c->add_flag("--verbose", opt.verbose, "libwebrtc's log on stderr");
    c->add_option("--udp-rcvbuf", opt.udpReceiveBuffer, "SO_RCVBUF asked for on UDP sockets (0: system default)")
        ->capture_default_str();
  };
  auto sizes = [&](CLI::App* c) {
    c->add_option("--bytes", opt.bytes, "bytes to transfer")->capture_default_str();
    c->add_option("--msg-size", opt.msgSize, "bytes per message")
        ->check(CLI::Range(std::size_t{1}, kMaxMessageSize))
        ->capture_default_str();
    c->add_option("--high-watermark", opt.highWatermark, "send() refuses past this many queued bytes")
        ->capture_default_str();
    c->add_option("--low-watermark", opt.lowWatermark, "sending resumes when the queue drains to this")
        ->capture_default_str();
  };
  CLI::App* send = app.add_subcommand("send", "offerer: sends --bytes");
  send->add_option("--signal-dir", opt.signalDir, "folder for offer.sdp / answer.sdp")->required();
  sizes(send);
  addCommon(send);
  CLI::App* recv = app.add_subcommand("recv", "answerer: receives and reports");
  recv->add_option("--signal-dir", opt.signalDir, "folder for offer.sdp / answer.sdp")->required();
  addCommon(recv);
  CLI::App* run = app.add_subcommand("run", "forks recv and send, repeats, prints the median");
  sizes(run);
  run->add_option("--repeat", opt.repeat, "number of runs")->check(CLI::PositiveNumber)->capture_default_str();
  run->add_flag("--any-interface", opt.anyInterface, "gather on every interface, not only 127.0.0.1");
  run->add_flag("--verbose", opt.verbose, "libwebrtc's log on stderr");
  run->add_option("--udp-rcvbuf", opt.udpReceiveBuffer, "SO_RCVBUF asked for on UDP sockets (0: system default)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (run->parsed()) return runBoth(opt);
  if (opt.bytes == 0) {
    std::fprintf(stderr, "--bytes must be > 0\n");
    return 2;
  }
  Side side(opt, send->parsed() ? Role::kOfferer : Role::kAnswerer);
  return side.run();
}
