// make_corpus DIR: writes the seed corpus for manifest_fuzz: valid binary
// manifests (plain, encrypted, empty file, many small chunks, UTF-8 name),
// their JSON forms, and links (bare id, with trackers, with a key).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "p2pcdn/manifest.hpp"

using namespace p2pcdn;

namespace {

Hash fakeHash(std::uint8_t seed) {
  Hash h;
  for (std::size_t i = 0; i < h.bytes.size(); ++i) h.bytes[i] = static_cast<std::uint8_t>(seed * 31 + i * 7);
  return h;
}

Manifest make(std::string name, std::uint64_t size, std::uint32_t chunkSize, bool encrypted) {
  Manifest m;
  m.name = std::move(name);
  m.size = size;
  m.chunkSize = chunkSize;
  m.mimeType = "video/mp4";
  if (encrypted) {
    EncryptionInfo e;
    for (std::size_t i = 0; i < e.salt.size(); ++i) e.salt[i] = static_cast<std::uint8_t>(0xA0 + i);
    m.encryption = e;
  }
  for (std::uint64_t i = 0; i < chunkCountFor(size, chunkSize); ++i) m.chunkHashes.push_back(fakeHash(static_cast<std::uint8_t>(i)));
  return m;
}

bool write(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  const Manifest manifests[] = {
      make("movie.mp4", 3 * 262144 + 17, 262144, false),
      make("secret.bin", 2 * 262144, 262144, true),
      make("empty", 0, 262144, false),
      make("small-chunks.dat", 10 * 1024 + 1, 1024, false),
      make("Grüße 文件 🎬.mkv", 5, 16 * 1024 * 1024, true),
  };
  int n = 0;
  for (const Manifest& m : manifests) {
    auto enc = encodeManifest(m);
    auto json = manifestToJson(m);
    auto id = manifestId(m);
    if (!enc || !json || !id) {
      std::fprintf(stderr, "make_corpus: manifest %d is invalid\n", n);
      return 1;
    }
    std::string base = "seed-" + std::to_string(n++);
    bool ok = write(dir / (base + ".bin"), std::string_view(reinterpret_cast<const char*>(enc->data()), enc->size())) &&
              write(dir / (base + ".json"), *json);
    Link link{*id, {}, std::nullopt, {}};
    ok = ok && write(dir / (base + "-link.txt"), formatLink(link));
    link.trackers = {"wss://tracker.example:8000/announce", "ws://127.0.0.1:9000/a b?c=d&e"};
    EncryptionKey key{};
    for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(255 - i);
    link.key = key;
    ok = ok && write(dir / (base + "-link-full.txt"), formatLink(link)) && write(dir / (base + "-id.txt"), id->hex());
    if (!ok) {
      std::fprintf(stderr, "make_corpus: cannot write into %s\n", dir.c_str());
      return 1;
    }
  }
  std::printf("make_corpus: %d manifests written to %s\n", n, dir.c_str());
  return 0;
}
