#include <p2pcdn/p2pcdn.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

int main(int argc, char** argv) {  // quickstart ws://127.0.0.1:8000 FILE
  if (argc != 3) return std::fprintf(stderr, "usage: quickstart TRACKER_URL FILE\n"), 2;
  p2pcdn::P2PCDNOptions options{.trackerUrl = argv[1], .loopbackOnly = true};  // both peers on this machine
  p2pcdn::P2PCDN seeder(options), leecher(options);                             // storage: "memory"
  if (!seeder.connect() || !leecher.connect()) return 1;
  auto up = seeder.upload(argv[2]);  // chunked, hashed, seeded
  if (!up) return std::fprintf(stderr, "%s\n", up.error().message().c_str()), 1;
  auto got = leecher.download(up->fileId, up->manifest, [](const p2pcdn::Progress& p) {
    std::printf("\r%3.0f%% from %zu peer(s)", p.progress * 100, p.peers);
  });
  if (!got) return std::fprintf(stderr, "\n%s\n", got.error().message().c_str()), 1;
  std::ifstream in(argv[2], std::ios::binary);
  bool same = std::string(std::istreambuf_iterator<char>(in), {}) == std::string(got->begin(), got->end());
  std::printf("\n%s\n%zu bytes over WebRTC, %s\n", up->link.c_str(), got->size(), same ? "identical" : "DIFFERENT");
  return same ? 0 : 1;
}
