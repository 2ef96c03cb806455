// `p2pcdn demo`: the README's main job, in one process. An embedded tracker, a
// seeder and several leechers (each a Node with its own SQLite store, all over
// real WebRTC data channels on loopback), a progress table, a check of every
// copy against the original, a summary, and the HTTP gateway on a fresh
// leecher where the video plays while it downloads.
//
// One Asio loop runs every node and the gateway (the tracker has its own
// thread); ffmpeg runs as a child process on a helper thread that posts its
// result back to the loop.
#include <spawn.h>
#include <sys/wait.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.hpp"
#include "cli/net.hpp"
#include "gateway/server.hpp"
#include "node/asio_runtime.hpp"
#include "node/node.hpp"
#include "tracker/tracker_server.hpp"
#include "transport/webrtc/webrtc_link.hpp"

extern char** environ;

namespace p2pcdn::cli {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Runs argv (PATH lookup), stdout and stderr to `log`; the exit status, or an
// error when it cannot start. Blocking.
// `running`, if given, holds the child's pid while it runs (to kill it on a stop).
Result<int> runProcess(const std::vector<std::string>& argv, const fs::path& log,
                       std::atomic<pid_t>* running = nullptr) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return fail(Errc::kNotFound, "run " + argv[0], std::strerror(rc));
  if (running) running->store(pid);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      if (running) running->store(0);
      return fail(Errc::kIo, "wait " + argv[0], std::strerror(errno));
    }
  }
  if (running) running->store(0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string tailOf(const fs::path& p, std::size_t max = 600) {
  std::ifstream in(p, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > max ? s.substr(s.size() - max) : s;
}

// A short H.264/AAC MP4 (test pattern and a tone), moov atom first so a player
// can start before the end has arrived.
Result<fs::path> makeSampleVideo(const fs::path& dir, double seconds) {
  const fs::path out = dir / "sample.mp4", log = dir / "ffmpeg-encode.log";
  const std::string t = std::to_string(seconds);
  auto rc = runProcess({"ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                        "-t", t, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v", "5M",
                        "-maxrate", "5M", "-bufsize", "10M", "-g", "60", "-c:a", "aac", "-b:a", "128k", "-movflags",
                        "+faststart", "-shortest", out.string()},
                       log);
  if (!rc) {
    return fail(Errc::kNotFound, "make the sample video",
                "ffmpeg not found (./scripts/install-deps.sh installs it), or pass --file");
  }
  if (*rc != 0) return fail(Errc::kIo, "make the sample video", "ffmpeg failed: " + tailOf(log));
  return out;
}

// One peer of the demo: its own store and Node.
struct DemoPeer {
  std::string name;
  std::unique_ptr<ChunkStorage> store;
  std::unique_ptr<node::Node> node;
  std::optional<double> doneAt;  // seconds after the leechers started
  std::optional<Error> error;
};

Result<std::unique_ptr<DemoPeer>> makePeer(const std::string& name, const fs::path& root, node::Runtime& rt,
                                           transport::LinkFactory& links, node::NodeOptions options) {
  auto p = std::make_unique<DemoPeer>();
  p->name = name;
  Globals g;
  g.home = root / name;
  g.durability = "process-crash";  // a scratch store: no fsync
  auto store = openStore(g);
  if (!store) return fail(store.error());
  p->store = std::move(*store);
  p->node = std::make_unique<node::Node>(rt, *p->store, links, std::move(options));
  if (auto st = p->node->start(); !st) return fail(st.error());
  return p;
}

// Reads every chunk from the peer's store and compares it with the original
// file, read alongside one chunk at a time (a --file may be large).
Status sameAsOriginal(DemoPeer& p, const FileId& id, const Manifest& m, const fs::path& original) {
  BlockingStorage store(*p.store);
  std::ifstream in(original, std::ios::binary);
  if (!in) return fail(Errc::kNotFound, "compare " + p.name, "cannot read " + original.string());
  Bytes expected;
  for (ChunkIndex i = 0; i < m.chunkCount(); ++i) {
    auto c = store.getChunk(id, i);
    if (!c) return fail(c.error());
    expected.resize(c->size());
    in.read(reinterpret_cast<char*>(expected.data()), static_cast<std::streamsize>(expected.size()));
    if (static_cast<std::size_t>(in.gcount()) != c->size() || expected != *c) {
      return fail(Errc::kIntegrity, "compare " + p.name, "chunk " + std::to_string(i) + " differs from the original");
    }
  }
  if (in.peek() != std::ifstream::traits_type::eof()) return fail(Errc::kIntegrity, "compare " + p.name, "length differs");
  return {};
}

std::string mb(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MB", bytes / 1e6);
  return b;
}

}  // namespace

int cmdDemo(const Globals& gIn, const DemoArgs& a) {
  if (a.leechers < 1 || a.leechers > 16) return report(Error(Errc::kInvalidArgument, "demo", "--leechers must be 1..16"));
  if (a.seconds <= 0 || a.seconds > 600) return report(Error(Errc::kInvalidArgument, "demo", "--seconds must be in (0, 600]"));
  std::error_code ec;
  const fs::path root = fs::temp_directory_path(ec) / ("p2pcdn-demo-" + std::to_string(::getpid()));
  fs::remove_all(root, ec);
  fs::create_directories(root, ec);
  if (ec) return report(Error(Errc::kIo, "demo folder", root.string() + ": " + ec.message()));
  struct Cleanup {
    fs::path dir;
    bool keep;
    ~Cleanup() {
      std::error_code e;
      if (!keep) fs::remove_all(dir, e);
    }
  } cleanup{root, a.keep};
  auto say = [](const std::string& s) { std::cout << s << std::endl; };

  // 1. The file.
  fs::path file = a.file;
  if (file.empty()) {
    say("== making a " + std::to_string(static_cast<int>(a.seconds)) + " s sample video (ffmpeg: test pattern + tone)");
    auto v = makeSampleVideo(root, a.seconds);
    if (!v) return report(v.error());
    file = *v;
  }
  const auto fileSize = fs::file_size(file, ec);
  if (ec) return report(Error(Errc::kNotFound, "demo", "cannot read " + file.string() + ": " + ec.message()));
  if (fileSize == 0) return report(Error(Errc::kInvalidArgument, "demo", file.string() + " is empty"));
  const auto size = static_cast<double>(fileSize);

  // 2. The tracker, on its own thread.
  tracker::TrackerServer trackerServer;
  if (auto st = trackerServer.start("127.0.0.1", 0); !st) return report(st.error());
  const std::string trackerUrl = "ws://127.0.0.1:" + std::to_string(trackerServer.port());
  say("== tracker " + trackerUrl);

  // 3. The peers, on one loop. The factory outlives the loop: handlers still
  // queued at the end may hold the last references to links.
  transport::WebRtcFactoryOptions fo;
  fo.log = transport::WebRtcLog::kNone;
  auto factory = transport::makeWebRtcLinkFactory(fo);
  if (!factory) return report(factory.error());
  asio::io_context io;
  node::AsioRuntime rt(io);
  NetArgs net;
  net.loopback = true;
  auto options = [&](std::optional<std::uint64_t> up, std::optional<std::uint64_t> down) {
    NetArgs n = net;
    n.uploadLimit = up;
    n.downloadLimit = down;
    return nodeOptions(n, {trackerUrl});
  };
  std::vector<std::unique_ptr<DemoPeer>> peers;  // [0] the seeder, then the leechers, then the viewer
  auto seederR = makePeer("seeder", root, rt, **factory,
                          options(a.seederRate > 0 ? std::optional<std::uint64_t>(a.seederRate) : std::nullopt,
                                  std::nullopt));
  if (!seederR) return report(seederR.error());
  DemoPeer& seeder = **seederR;
  peers.push_back(std::move(*seederR));
  Added added;
  {
    BlockingStorage store(*seeder.store);
    AddArgs add;
    add.file = file;
    Globals g = gIn;
    g.home = root / "seeder";
    auto r = addToStore(g, store, add);
    if (!r) return report(r.error());
    added = std::move(*r);
  }
  const FileId id = added.id;
  const Manifest manifest = added.manifest;
  if (auto st = seedNow(io, *seeder.node, id); !st) return report(st.error());
  say("== seeder: " + file.filename().string() + ", " + mb(size) + " in " +
      std::to_string(manifest.chunkCount()) + " chunks, file id " + id.hex().substr(0, 16) + "…" +
      (a.seederRate > 0 ? ", upload limited to " + mb(static_cast<double>(a.seederRate)) + "/s" : ""));
  std::vector<DemoPeer*> leechers;
  for (std::size_t i = 1; i <= a.leechers; ++i) {
    auto p = makePeer("leecher" + std::to_string(i), root, rt, **factory, options(std::nullopt, std::nullopt));
    if (!p) return report(p.error());
    leechers.push_back(p->get());
    peers.push_back(std::move(*p));
  }

  int exitCode = kExitOk;
  bool stopping = false;
  std::unique_ptr<gateway::Gateway> gw;  // on the viewer, once the leechers are done
  std::thread checker;                   // runs ffmpeg against the gateway
  std::atomic<pid_t> ffmpegPid{0};
  auto stopAll = [&] {
    if (stopping) return;
    stopping = true;
    if (gw) gw->stop();  // a player reading from it (ffmpeg) gets the end of its stream
    auto left = std::make_shared<std::size_t>(peers.size());
    for (auto& p : peers) {
      p->node->stop([&io, left] {
        if (--*left == 0) io.stop();
      });
    }
  };
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto e, int) {
    if (e) return;
    say("== interrupted");
    if (exitCode == kExitOk) exitCode = kExitInterrupted;
    stopAll();
  });

  // 4. The leechers start together, given only the file id (the manifest
  // comes from peers); a table line every 500 ms.
  Clock::time_point started{};
  asio::steady_timer timer(io);
  std::function<void()> afterLeechers;

  auto printLine = [&] {
    std::string line = "  " + std::to_string(secondsSince(started)).substr(0, 4) + " s ";
    for (DemoPeer* p : leechers) {
      auto pr = p->node->progress(id);
      int pct = 0;
      std::size_t n = 0;
      if (pr && pr->chunksTotal) pct = static_cast<int>(100.0 * pr->chunksHave / pr->chunksTotal);
      if (pr) n = pr->peers;
      char cell[64];
      std::snprintf(cell, sizeof cell, "| %s %3d%% %zu peers ", p->name.c_str(), pct, n);
      line += cell;
    }
    auto sp = seeder.node->progress(id);
    line += "| seeder sent " + mb(sp ? static_cast<double>(sp->bytesUploaded) : 0);
    say(line);
  };

  std::function<void()> tick = [&] {
    if (stopping) return;
    printLine();
    bool all = true;
    for (DemoPeer* p : leechers) all = all && (p->doneAt || p->error);
    if (all) return afterLeechers();
    if (secondsSince(started) > a.timeout) {
      say("== timed out after " + std::to_string(static_cast<int>(a.timeout)) + " s");
      exitCode = kExitFailure;
      return stopAll();
    }
    timer.expires_after(std::chrono::milliseconds(500));
    timer.async_wait([&](auto e) {
      if (!e) tick();
    });
  };

  afterLeechers = [&] {
    // 5. Every copy against the original, and the summary.
    double last = 0;
    for (DemoPeer* p : leechers) {
      if (p->error) {
        say("  " + p->name + ": FAILED: " + p->error->message());
        exitCode = kExitFailure;
        continue;
      }
      last = std::max(last, *p->doneAt);
      if (auto st = sameAsOriginal(*p, id, manifest, file); !st) {
        say("  " + p->name + ": " + st.error().message());
        exitCode = kExitIntegrity;
      } else {
        say("  " + p->name + ": complete after " + std::to_string(*p->doneAt).substr(0, 4) +
            " s, every chunk verified (BLAKE3) and identical to the original");
      }
    }
    if (exitCode != kExitOk) return stopAll();
    auto sp = seeder.node->progress(id);
    const double total = static_cast<double>(leechers.size()) * size;
    const double seederUp = sp ? static_cast<double>(sp->bytesUploaded) : 0;
    const double share = std::max(0.0, 1.0 - seederUp / total);
    char summary[256];
    std::snprintf(summary, sizeof summary,
                  "== summary: %zu leechers x %s in %.2f s (%.1f MB/s together); the seeder sent %.2f copies, "
                  "%.0f %% of what the leechers received came from each other",
                  leechers.size(), mb(size).c_str(), last, total / 1e6 / last,
                  seederUp / size, share * 100);
    say(summary);

    // 6. A fresh leecher behind the HTTP gateway.
    auto viewerR = makePeer("viewer", root, rt, **factory,
                            options(std::nullopt, a.viewerRate > 0 ? std::optional<std::uint64_t>(a.viewerRate)
                                                                   : std::nullopt));
    if (!viewerR) {
      report(viewerR.error());
      exitCode = kExitFailure;
      return stopAll();
    }
    DemoPeer& viewer = **viewerR;
    peers.push_back(std::move(*viewerR));
    gateway::GatewayOptions go;
    go.host = "127.0.0.1";
    go.port = a.port;
    go.appDir = webAppDir(a.app);  // by default the web app, when the browser package is built (./scripts/build.sh wasm)
    go.appConfig = webAppConfig(trackerUrl, {});
    gw = std::make_unique<gateway::Gateway>(io, *viewer.node, *viewer.store, go, rt.storeQueue());
    if (auto st = gw->start(); !st) {
      report(st.error());
      exitCode = kExitFailure;
      return stopAll();
    }
    const std::string base = "http://127.0.0.1:" + std::to_string(gw->port());
    // The name in the URL only when it needs no escaping (players take the type from it).
    const bool plainName = !manifest.name.empty() && std::all_of(manifest.name.begin(), manifest.name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    });
    const std::string url = base + "/f/" + id.hex() + (plainName ? "/" + manifest.name : std::string());
    const std::string appLink = base + "/#" + formatLink(Link{id, {trackerUrl}, std::nullopt, {}});
    say("== gateway on a fresh leecher" +
        (a.viewerRate > 0 ? " (download limited to " + mb(static_cast<double>(a.viewerRate)) + "/s)" : std::string()) +
        ":\n   " + url + "\n   " +
        (go.appDir.empty() ? base + "/files   (page with a player; ./scripts/build.sh wasm adds the web app)"
                           : appLink + "   (the web app: a browser peer joins the swarm and plays it)"));
    const bool media = manifest.mimeType.rfind("video/", 0) == 0 || manifest.mimeType.rfind("audio/", 0) == 0;
    if (!a.stay && !media) {
      say("   (" + manifest.mimeType + " is not audio or video: no playback check)");
      say("== done: every copy is identical");
      return stopAll();
    }
    if (a.stay) {
      say("   open it in a browser, or: ffplay " + url + "\n   staying up; Ctrl-C to stop");
      return;
    }
    // 7. ffmpeg decodes the file through the gateway, to the end, while the
    // fresh leecher is still downloading it.
    say("== ffmpeg decodes it through the gateway while the fresh leecher downloads it");
    const auto t0 = Clock::now();
    const fs::path log = root / "ffmpeg-decode.log";
    // While ffmpeg reads: when did the fresh leecher hold the whole file?
    auto viewerDone = std::make_shared<std::optional<double>>();
    auto poll = std::make_shared<std::function<void()>>();
    *poll = [&, viewerDone, t0, weak = std::weak_ptr<std::function<void()>>(poll)] {
      auto vp = viewer.node->progress(id);
      if (!*viewerDone && vp && vp->chunksTotal && vp->chunksHave == vp->chunksTotal) *viewerDone = secondsSince(t0);
      if (stopping || *viewerDone) return;
      timer.expires_after(std::chrono::milliseconds(50));
      timer.async_wait([again = weak.lock()](auto e) {
        if (!e && again) (*again)();
      });
    };
    (*poll)();
    auto finish = [&, viewerDone, poll, t0, log](Result<int> rc) {
      const double took = secondsSince(t0);
      const std::string err = tailOf(log);
      if (!rc || *rc != 0 || !err.empty()) {
        say("   ffmpeg FAILED (" + (rc ? "exit " + std::to_string(*rc) : rc.error().message()) + "): " + err);
        exitCode = kExitFailure;
      } else {
        const auto st = gw->stats();
        const double firstByte =
            st.firstByteCount ? st.firstByteSecondsSum / static_cast<double>(st.firstByteCount) : 0.0;
        char b[320];
        std::snprintf(b, sizeof b,
                      "   ffmpeg decoded every frame without an error in %.2f s; first byte %.3f s after its "
                      "request; the fresh leecher held the whole file only %.2f s after ffmpeg started",
                      took, firstByte, viewerDone->value_or(took));
        say(b);
      }
      say(exitCode == kExitOk ? "== done: every copy is identical and the video played through the gateway"
                              : "== done, with errors");
      stopAll();
    };
    checker = std::thread([&io, &ffmpegPid, url, log, finish] {
      auto rc = runProcess({"ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", url, "-f", "null", "-"}, log,
                           &ffmpegPid);
      asio::post(io, [finish, rc] { finish(rc); });
    });
  };

  // The seeder announces first; then the leechers start together.
  timer.expires_after(std::chrono::milliseconds(300));
  timer.async_wait([&](auto e) {
    if (e) return;
    say("== " + std::to_string(leechers.size()) + " leechers start together, each given only the file id");
    started = Clock::now();
    for (DemoPeer* p : leechers) {
      node::FetchEvents ev;
      ev.onComplete = [p, &started] {
        if (!p->doneAt) p->doneAt = secondsSince(started);
      };
      ev.onError = [p](const Error& err) { p->error = err; };
      p->node->fetch(id, std::nullopt, std::move(ev), [p](Result<node::ListenerId> r) {
        if (!r) p->error = r.error();
      });
    }
    tick();
  });

  io.run();
  // Stopped early (a signal, the time limit): ffmpeg may still wait for bytes.
  if (const pid_t pid = ffmpegPid.load(); pid > 0) ::kill(pid, SIGTERM);
  if (checker.joinable()) checker.join();
  gw.reset();
  peers.clear();
  trackerServer.stop();
  return exitCode;
}

}  // namespace p2pcdn::cli
