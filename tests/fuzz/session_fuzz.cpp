// libFuzzer target for swarm::Session, the state machine that untrusted peer
// messages drive. The input is a script of operations on two sessions — a
// publisher that holds the file (super-seeding) and a leecher that starts
// without the manifest — and three peer keys: raw messages (any bytes),
// well-formed messages with fuzzer-chosen fields (so that deep states are
// reachable without a corpus), link events, time steps and back-pressure.
//
// Properties (a violation abort()s): no crash, hang or sanitizer report; a
// session never stores a chunk whose BLAKE3 differs from the manifest, never
// stores a chunk twice, never reports more chunks than the file has; sends
// only messages that decode, and only to peers it has (added, not removed);
// and its resources stay bounded whatever the input: replies queued for a
// peer within kMaxControlBytes plus the manifest and one message, requests
// outstanding at a peer within maxRequestsPerPeer. Raw messages go up to the
// full message size (run with -max_len of 300 KiB).
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/blake3.hpp"
#include "script_reader.hpp"
#include "swarm/session.hpp"

using namespace p2pcdn;
using namespace p2pcdn::swarm;

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "session_fuzz: property violated: %s\n", what);
  std::abort();
}

constexpr std::uint32_t kChunks = 6;
constexpr std::uint32_t kChunkSize = 1024;

struct File {
  Manifest manifest;
  FileId id;
  std::vector<Bytes> chunks;
  File() {
    manifest.name = "f.bin";
    manifest.chunkSize = kChunkSize;
    manifest.size = kChunks * kChunkSize - 100;  // a short last chunk
    for (std::uint32_t i = 0; i < kChunks; ++i) {
      Bytes c(i + 1 == kChunks ? kChunkSize - 100 : kChunkSize, static_cast<std::uint8_t>(i * 31 + 7));
      chunks.push_back(c);
      manifest.chunkHashes.push_back(Blake3::hash(c));
    }
    id = *manifestId(manifest);
  }
};

const File& file() {
  static const File f;
  return f;
}

struct Host : SessionHost {
  bool backPressure = false;
  std::set<PeerKey> live;    // added and not removed
  std::set<ChunkIndex> stored;
  std::vector<std::pair<PeerKey, Bytes>> sent;
  Status send(PeerKey peer, ByteView message) override {
    if (!live.count(peer)) die("sent to a peer it does not have");
    if (!wire::decodeMessage(message)) die("sent a message that does not decode");
    if (backPressure) return fail(Errc::kBackPressure, "send", "full");
    if (sent.size() < 4096) sent.emplace_back(peer, Bytes(message.begin(), message.end()));
    return {};
  }
  void disconnect(PeerKey peer) override {
    if (!live.count(peer)) die("disconnected a peer it does not have");
  }
  // Store requests, completed later by the script (in any order, or never).
  std::vector<ChunkIndex> reads, writes;
  void readChunk(ChunkIndex index) override {
    if (index >= kChunks) die("read out of range");
    if (std::find(reads.begin(), reads.end(), index) != reads.end()) die("a second read of a chunk being read");
    reads.push_back(index);
  }
  void storeChunk(ChunkIndex index, Bytes data) override {
    if (index >= kChunks || Blake3::hash(data) != file().manifest.chunkHashes[index]) die("stored a bad chunk");
    if (!stored.insert(index).second) die("stored a chunk twice");
    writes.push_back(index);
  }
  void storeManifest(const Manifest& m) override {
    if (m != file().manifest) die("stored a wrong manifest");
  }
};

using fuzzing::Reader;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const File& f = file();
  Host hosts[2];
  wire::PeerId ids[2] = {{1}, {2}};
  SessionOptions o;
  o.stallTimeout = std::chrono::seconds(1);
  o.banAfterBadChunks = 2;
  std::unique_ptr<Session> s[2];
  s[0] = std::make_unique<Session>(f.id, ids[0], f.manifest, std::vector<bool>(kChunks, true), hosts[0], o, 1);
  s[1] = std::make_unique<Session>(f.id, ids[1], std::nullopt, std::vector<bool>{}, hosts[1], o, 2);
  Time now{};
  s[1]->setWanted(true, now);
  std::set<PeerKey> added[2];

  Reader in{data, size};
  int steps = 0;
  while (!in.empty() && steps++ < 512) {
    const std::uint8_t op = in.u8();
    const int who = op & 1;
    Session& ses = *s[who];
    Host& host = hosts[who];
    const PeerKey key = (op >> 1) % 3;
    const auto send = [&](Result<Bytes> m) {
      if (m && added[who].count(key)) ses.onMessage(key, *m, now);
    };
    switch ((op >> 3) % 14) {
      case 0:  // a raw message, up to the largest a data channel carries
        if (added[who].count(key)) {
          const std::size_t len = (std::size_t{in.u8()} << 10) | (std::size_t{in.u8()} << 2);
          Bytes b = in.bytes(std::min(len, wire::kMaxMessageBytes));
          ses.onMessage(key, b, now);
        }
        break;
      case 1:
        if (!added[who].count(key)) {
          host.live.insert(key);
          ses.addPeer(key, now);
          added[who].insert(key);
        }
        break;
      case 2:
        ses.removePeer(key, now);
        added[who].erase(key);
        host.live.erase(key);
        break;
      case 3:
        if (added[who].count(key)) ses.onWritable(key, now);
        break;
      case 4:
        now += std::chrono::milliseconds(in.u8() * 50u);
        ses.tick(now);
        break;
      case 5:
        host.backPressure = !host.backPressure;
        break;
      case 6: {  // HANDSHAKE, right or wrong file, some peer id
        wire::Handshake h;
        h.peerId[0] = in.u8() % 4;
        h.capabilities = in.u8();
        h.fileId = (in.u8() & 7) ? f.id : FileId{};
        send(wire::encode(h));
        break;
      }
      case 7: {  // BITFIELD
        Bytes bits(wire::bitfieldBytes(kChunks));
        bits[0] = static_cast<std::uint8_t>(in.u8() & 0xFC);
        send(wire::encode(wire::Bitfield{kChunks, bits}));
        break;
      }
      case 8:
        send(wire::encode(wire::Have{in.u8() % (kChunks + 1)}));
        break;
      case 9: {  // REQUEST
        const std::uint32_t rid = in.u8();
        const ChunkIndex i = in.u8() % kChunks;
        send(wire::encode(wire::Request{rid, i, in.u8() & 1 ? 100u : 0u, f.manifest.storedChunkLength(i) - (in.u8() & 1 ? 100u : 0u)}));
        break;
      }
      case 10: {  // PIECE for a request id the session may have sent: good, corrupt or partial data
        const std::uint32_t rid = in.u8() % 16;
        const ChunkIndex i = in.u8() % kChunks;
        Bytes c = f.chunks[i];
        const std::uint8_t mode = in.u8();
        if (mode & 1) c[c.size() / 2] ^= 1;
        const std::uint32_t off = (mode & 2) ? 512 : 0;
        const std::uint32_t len = (mode & 4) ? 512 : static_cast<std::uint32_t>(c.size()) - off;
        send(wire::encode(wire::Piece{rid, i, static_cast<std::uint32_t>(c.size()), off, ByteView(c).subspan(off, len)}));
        break;
      }
      case 11:  // a read completes: the chunk, or an error (evicted)
        if (!host.reads.empty()) {
          const std::size_t k = in.u8() % host.reads.size();
          const ChunkIndex i = host.reads[k];
          host.reads.erase(host.reads.begin() + static_cast<std::ptrdiff_t>(k));
          if (in.u8() & 1) ses.onChunkRead(i, f.chunks[i], now);
          else ses.onChunkRead(i, fail(Errc::kNotFound, "read", "evicted"), now);
        }
        break;
      case 12:  // a write completes, mostly successfully
        if (!host.writes.empty()) {
          const std::size_t k = in.u8() % host.writes.size();
          const ChunkIndex i = host.writes[k];
          host.writes.erase(host.writes.begin() + static_cast<std::ptrdiff_t>(k));
          ses.onChunkStored(i, (in.u8() & 7) ? Status{} : Status(fail(Errc::kIo, "store", "disk full")), now);
        }
        break;
      default: {  // the manifest, whole or cut, for request id 1..3
        auto enc = encodeManifest(f.manifest);
        auto parts = wire::splitManifest(in.u8() % 4, *enc, 256);
        if (parts) {
          for (std::size_t k = 0; k < parts->size(); ++k) {
            if ((in.u8() & 3) != 0) send(std::move((*parts)[k]));
          }
        }
        break;
      }
    }
    static const std::size_t manifestBytes = encodeManifest(f.manifest)->size();
    for (int w = 0; w < 2; ++w) {
      const auto st = s[w]->stats();
      if (st.chunksHave > kChunks) die("more chunks than the file has");
      if (st.writesPending > o.maxPendingWrites + 16) die("writes pile up past the bound");
      for (const PeerStats& ps : s[w]->peerStats(now)) {
        if (ps.controlBytes > kMaxControlBytes + manifestBytes + wire::kMaxMessageBytes) die("control queue past its bound");
        if (ps.requestsOutstanding > o.maxRequestsPerPeer) die("requests outstanding past maxRequestsPerPeer");
      }
    }
  }
  return 0;
}
