// make_wire_corpus DIR: writes the seed corpus for wire_fuzz: one valid
// message of every type, and frame streams ([u16 length][message]...) that
// carry a chunk and a manifest in shuffled pieces, with a duplicate and an
// overlap mixed in. All seeds stay under wire_fuzz's 8 KiB input limit.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "wire/fragment.hpp"
#include "wire/wire.hpp"

using namespace p2pcdn;
using namespace p2pcdn::wire;

namespace {

bool write(const std::filesystem::path& p, const Bytes& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return static_cast<bool>(f);
}

void frame(Bytes& out, const Bytes& msg) {
  out.push_back(static_cast<std::uint8_t>(msg.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(msg.size() & 0xff));
  out.insert(out.end(), msg.begin(), msg.end());
}

Bytes pattern(std::size_t n, std::uint8_t seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 13);
  return b;
}

Manifest smallManifest() {
  Manifest m;
  m.name = "clip.webm";
  m.mimeType = "video/webm";
  m.chunkSize = 1024;
  m.size = 3000;
  for (std::uint8_t i = 0; i < 3; ++i) {
    Hash h;
    h.bytes.fill(i);
    m.chunkHashes.push_back(h);
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_wire_corpus DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  bool ok = true;

  PeerId peer{};
  for (std::size_t i = 0; i < peer.size(); ++i) peer[i] = static_cast<std::uint8_t>(i + 1);
  const Bytes manifest = *encodeManifest(smallManifest());
  const FileId file = manifestId(manifest);
  const Bytes ext = pattern(16, 7);
  const Bytes bits = {0xa0};
  const Bytes data = pattern(200, 3);
  const std::vector<Message> messages = {
      Handshake{peer, kCapEncryption | kCapHasManifest, file, {}},
      Handshake{peer, 0, file, ext},
      Bitfield{3, bits},
      Have{2},
      Request{1, 2, 0, 952},
      Cancel{1},
      Reject{1, RejectReason::kOverloaded, 500},
      Piece{1, 2, 952, 100, data},
      ManifestRequest{9},
      ManifestPart{9, static_cast<std::uint32_t>(manifest.size()), 0, manifest},
      KeepAlive{},
      Goodbye{GoodbyeReason::kShutdown, "bye ✓"},
  };
  for (const Message& m : messages) {
    auto b = encodeMessage(m);
    if (!b) {
      std::fprintf(stderr, "make_wire_corpus: %s\n", b.error().message().c_str());
      return 1;
    }
    ok = ok && write(dir / ("msg-" + std::to_string(static_cast<int>(typeOf(m))) + "-" +
                            std::to_string(&m - messages.data()) + ".bin"),
                     *b);
  }

  std::mt19937 rng(1);
  // A 2000-byte chunk in 64-byte messages, shuffled, one piece twice, then a
  // piece overlapping two others. The leading byte selects the chunk count (5).
  const Bytes chunk = pattern(2000, 42);
  auto pieces = splitChunk(3, 4, chunk, 64);
  auto parts = splitManifest(9, manifest, 64);
  if (!pieces || !parts) {
    std::fprintf(stderr, "make_wire_corpus: split failed\n");
    return 1;
  }
  std::shuffle(pieces->begin(), pieces->end(), rng);
  Bytes chunkFrames = {5};
  for (const Bytes& b : *pieces) frame(chunkFrames, b);
  frame(chunkFrames, pieces->front());
  frame(chunkFrames, *encode(Piece{4, 4, 2000, 30, ByteView(chunk).subspan(30, 60)}));
  ok = ok && write(dir / "frames-chunk.bin", chunkFrames);

  std::shuffle(parts->begin(), parts->end(), rng);
  Bytes manifestFrames = {3};
  for (const Bytes& b : *parts) frame(manifestFrames, b);
  ok = ok && write(dir / "frames-manifest.bin", manifestFrames);

  // A whole conversation: handshake, manifest, bitfield, request, pieces, goodbye.
  Bytes talk = {4};
  for (std::size_t i : {std::size_t{0}, std::size_t{8}}) frame(talk, *encodeMessage(messages[i]));
  const auto talkParts = splitManifest(9, manifest, 100);
  const auto talkPieces = splitChunk(1, 2, ByteView(chunk).first(952), 300);
  if (!talkParts || !talkPieces) return 1;
  for (const Bytes& b : *talkParts) frame(talk, b);
  frame(talk, *encodeMessage(messages[2]));
  frame(talk, *encodeMessage(messages[4]));
  for (const Bytes& b : *talkPieces) frame(talk, b);
  frame(talk, *encodeMessage(messages[11]));
  ok = ok && write(dir / "frames-conversation.bin", talk);

  if (!ok) {
    std::fprintf(stderr, "make_wire_corpus: cannot write into %s\n", dir.c_str());
    return 1;
  }
  std::printf("make_wire_corpus: seeds written to %s\n", dir.c_str());
  return 0;
}
