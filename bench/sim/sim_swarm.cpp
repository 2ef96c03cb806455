// Swarm simulation benchmark: N peers (default 1000) against the fluid lower
// bound T* = max(F/u_s, F/d_min, N F / (u_s + sum u_i)). Scenarios:
//   homogeneous     every peer up = seeder up, down = 4x up
//   heterogeneous   thirds at 0.5x, 1x and 2x the base upload, down = 4x base
// usage: sim_swarm [--peers N] [--chunks C] [--chunk-size B] [--seed S] [--runs R] [--scenario homo|hetero|both]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/resource.h>
#include <vector>
#include <algorithm>

#include "sim/sim.hpp"

using namespace p2pcdn;

int main(int argc, char** argv) {
  sim::SimConfig base;
  base.leechers = 1000;
  base.chunkCount = 128;
  int runs = 3;
  std::string scenario = "both";
  for (int i = 1; i < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h" || i + 1 == argc) {
      // Every option takes a value; a lone word is a mistake, not a default run.
      std::fprintf(a == "--help" || a == "-h" ? stdout : stderr,
                   "usage: sim_swarm [--peers N] [--chunks C] [--seed S] [--runs R] [--scenario homo|hetero|both] "
                   "[--OPTION VALUE ...] (the options: the top of bench/sim/sim_swarm.cpp)\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
    const char* v = argv[i + 1];
    if (a == "--peers") base.leechers = std::strtoul(v, nullptr, 10);
    else if (a == "--chunks") base.chunkCount = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    else if (a == "--chunk-size") base.chunkSize = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    else if (a == "--seed") base.seed = std::strtoull(v, nullptr, 10);
    else if (a == "--runs") runs = std::atoi(v);
    else if (a == "--scenario") scenario = v;
    else if (a == "--loss") base.loss = std::strtod(v, nullptr);
    else if (a == "--seeder-up") base.seederUp = std::strtod(v, nullptr);
    else if (a == "--offers") base.discovery.offersPerAnnounce = std::strtoul(v, nullptr, 10);
    else if (a == "--offers-by-count") base.discovery.offersByTrackerCount = std::atoi(v) != 0;
    else if (a == "--dups") base.session.picker.maxDuplicates = static_cast<std::uint16_t>(std::strtoul(v, nullptr, 10));
    else if (a == "--stall") base.session.stallTimeout = p2pcdn::swarm::fromSeconds(std::strtod(v, nullptr));
    else if (a == "--watermark") {
      base.highWatermark = std::strtoul(v, nullptr, 10);
      base.lowWatermark = base.highWatermark / 2;
    }
    else if (a == "--join-spread") base.joinSpread = std::strtod(v, nullptr);
    else if (a == "--piece-payload") base.session.maxPiecePayload = std::strtoul(v, nullptr, 10);
    else if (a == "--min-piece") base.session.minPiecePayload = std::strtoul(v, nullptr, 10);
    else if (a == "--piece-time") base.session.pieceTime = p2pcdn::swarm::fromSeconds(std::strtod(v, nullptr));
    else if (a == "--slack") base.session.requestSlack = std::strtoul(v, nullptr, 10);
    else if (a == "--headroom") base.session.pipelineHeadroom = std::strtod(v, nullptr);
    else if (a == "--store-delay") base.storeDelay = p2pcdn::swarm::fromSeconds(std::strtod(v, nullptr) / 1000);
    else if (a == "--up") base.classes.front().up = std::strtod(v, nullptr);
    else if (a == "--down") base.classes.front().down = std::strtod(v, nullptr);
    else if (a == "--seeder-down") base.seederDown = std::strtod(v, nullptr);
    else if (a == "--latency-min") base.latencyMin = std::strtod(v, nullptr) / 1000;
    else if (a == "--latency-max") base.latencyMax = std::strtod(v, nullptr) / 1000;
    else if (a == "--min-requests") base.session.minRequestsPerPeer = std::strtoul(v, nullptr, 10);
    else if (a == "--max-downloads") base.session.maxConcurrentDownloads = std::strtoul(v, nullptr, 10);
    else if (a == "--max-uploads") base.session.maxConcurrentUploads = std::strtoul(v, nullptr, 10);
    else if (a == "--max-peers") base.discovery.maxPeers = std::strtoul(v, nullptr, 10);
    else if (a == "--backlog") base.session.sendBacklog = p2pcdn::swarm::fromSeconds(std::strtod(v, nullptr));
    else if (a == "--backlog-pieces") base.session.sendBacklogPieces = std::strtoul(v, nullptr, 10);
    else if (a == "--backlog-pieces-uploader") base.session.sendBacklogPiecesToUploader = std::strtoul(v, nullptr, 10);
    else if (a == "--rotate") base.session.rotateDownloadsEvery = p2pcdn::swarm::fromSeconds(std::strtod(v, nullptr));
    else if (a == "--reveal") base.session.superSeedReveal = std::strtoul(v, nullptr, 10);
    else if (a == "--seeder-super-seed") {
      if (!base.seederSession) base.seederSession = base.session;
      base.seederSession->superSeed = std::strtoul(v, nullptr, 10) != 0;
    }
    else if (a == "--seeder-uploads") {
      if (!base.seederSession) base.seederSession = base.session;
      base.seederSession->maxConcurrentUploads = std::strtoul(v, nullptr, 10);
    }
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  std::vector<std::pair<std::string, sim::SimConfig>> configs;
  if (scenario == "homo" || scenario == "both") configs.emplace_back("homogeneous", base);
  if (scenario == "hetero" || scenario == "both") {
    sim::SimConfig h = base;
    h.classes = {{1.0, 128e3, 1024e3}, {1.0, 256e3, 1024e3}, {1.0, 512e3, 1024e3}};
    configs.emplace_back("heterogeneous", h);
  }
  int failures = 0;
  for (auto& [name, cfg] : configs) {
    std::vector<double> ratios, copies, walls;
    for (int r = 0; r < runs; ++r) {
      sim::SimConfig c = cfg;
      c.seed = cfg.seed + static_cast<std::uint64_t>(r);
      auto res = sim::runSimulation(c);
      std::printf("%s run %d: %s\n", name.c_str(), r, sim::summarize(c, res).c_str());
      std::fflush(stdout);
      ratios.push_back(res.ratio);
      copies.push_back(res.seederCopies);
      walls.push_back(res.wallSeconds);
      if (!res.allCompleted) ++failures;
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    std::printf("%s: median ratio to fluid bound %.3f, seeder copies %.3f, wall %.1f s (runs=%d)\n", name.c_str(),
                median(ratios), median(copies), median(walls), runs);
  }
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("peak RSS %.1f MiB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
  return failures ? 1 : 0;
}
