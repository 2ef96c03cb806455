// The harness of the swarm::Session tests (session_test.cpp, mesh_test.cpp):
// sessions between in-memory hosts. Messages are delivered by hand (pump()),
// so each test controls the order; time is a plain counter.
#pragma once

#include "swarm/session.hpp"


#include <deque>
#include <functional>
#include <map>
#include <set>

#include "core/blake3.hpp"

namespace p2pcdn::swarm::session_testing {

using std::chrono::milliseconds;

struct Net;

struct Host : SessionHost {
  Net* net = nullptr;
  int self = 0;
  std::vector<Bytes> chunks;  // served bytes (may be corrupt)
  std::map<ChunkIndex, Bytes> stored;
  std::vector<PeerKey> disconnected;
  std::vector<wire::PeerId> banned;
  bool completed = false;
  std::size_t errors = 0;
  void onError(const Error&) override { ++errors; }
  Status send(PeerKey peer, ByteView message) override;
  void disconnect(PeerKey peer) override { disconnected.push_back(peer); }
  void readChunk(ChunkIndex index) override;
  void storeChunk(ChunkIndex index, Bytes data) override;
  void storeManifest(const Manifest&) override {}
  void onComplete() override { completed = true; }
  void onBanned(PeerKey, const wire::PeerId& id) override { banned.push_back(id); }
  // Links that refuse every message (back-pressure): a peer that does not read.
  std::set<PeerKey> refuse;
  // A link queue the test drains by hand (when `reportQueue`).
  bool reportQueue = false;
  std::size_t queued = 0;
  std::vector<std::size_t> notifyAt;
  std::optional<std::size_t> buffered(PeerKey) const override {
    return reportQueue ? std::optional<std::size_t>(queued) : std::nullopt;
  }
  void notifyWhenBufferedBelow(PeerKey, std::size_t bytes) override { notifyAt.push_back(bytes); }
  // A stuck store: writes are not confirmed until released.
  bool holdStores = false;
  // Writes of these chunks fail once, with this code.
  std::map<ChunkIndex, Errc> failOnce;
  std::vector<std::function<void()>> held;
  // Web seeds: with `http`, fetchOrigin answers (a store completion later)
  // with originFile's bytes (a request past its end, or with originFails,
  // fails); every request is recorded.
  bool http = false;
  bool originFails = false;
  Errc originErrc = Errc::kIo;  // what a failing origin answers
  Bytes originFile;
  struct OriginAsk {
    std::uint32_t id;
    std::string url;
    std::uint64_t offset;
    std::uint32_t length;
  };
  std::vector<OriginAsk> originAsked;
  std::set<std::uint32_t> originCancelled;
  bool fetchOrigin(std::uint32_t id, const std::string& url, std::uint64_t offset, std::uint32_t length) override;
  void cancelOrigin(std::uint32_t id) override { originCancelled.insert(id); }
};

// Peers 0..n-1; the link between a and b is key b in a's session and key a in b's.
struct Net {
  std::vector<Host> hosts;
  std::vector<std::unique_ptr<Session>> sessions;
  std::deque<std::tuple<int, int, Bytes>> wire;  // from, to, message
  // Store completions, delivered by pump() before the next message (a fast
  // store) unless `storeDelay`: then each waits that long, and those due at
  // once are delivered newest first (out of order).
  struct Completion {
    Time due;
    std::function<void()> run;
  };
  std::vector<Completion> completions;
  Time storeDelay{};
  Time now{};

  Status send(int from, PeerKey to, ByteView m) {
    wire.emplace_back(from, static_cast<int>(to), Bytes(m.begin(), m.end()));
    return {};
  }
  void connect(int a, int b) {
    sessions[static_cast<std::size_t>(a)]->addPeer(static_cast<PeerKey>(b), now);
    sessions[static_cast<std::size_t>(b)]->addPeer(static_cast<PeerKey>(a), now);
  }
  // Delivers messages until none is left (or `limit`); returns how many.
  std::size_t pump(std::size_t limit = 1000000) {
    std::size_t n = 0;
    while ((!wire.empty() || !completions.empty()) && n < limit) {
      if (completeDue()) continue;
      if (wire.empty()) {  // only delayed completions left: time passes
        now += milliseconds(1);
        continue;
      }
      auto [from, to, m] = std::move(wire.front());
      wire.pop_front();
      now += milliseconds(1);
      sessions[static_cast<std::size_t>(to)]->onMessage(static_cast<PeerKey>(from), m, now);
      ++n;
    }
    return n;
  }
  // Runs the newest due completion; false if none is due.
  bool completeDue() {
    for (auto it = completions.rbegin(); it != completions.rend(); ++it) {
      if (it->due <= now) {
        auto run = std::move(it->run);
        completions.erase(std::next(it).base());
        run();
        return true;
      }
    }
    return false;
  }
  void later(std::function<void()> run) { completions.push_back({now + storeDelay, std::move(run)}); }
  // Runs every store completion that is due (for tests that deliver by hand).
  void settle() {
    while (completeDue()) {
    }
  }
  std::vector<wire::Message> peek(int from, int to) {  // undelivered messages from -> to
    std::vector<wire::Message> out;
    for (auto& [f, t, m] : wire) {
      if (f == from && t == to) {
        auto d = wire::decodeMessage(ByteView(m));
        if (d) out.push_back(*d);
      }
    }
    return out;
  }
};

inline Status Host::send(PeerKey peer, ByteView message) {
  if (refuse.count(peer)) return fail(Errc::kBackPressure, "link", "full");
  queued += message.size();
  return net->send(self, peer, message);
}

inline void Host::readChunk(ChunkIndex index) {
  net->later([this, index] { net->sessions[static_cast<std::size_t>(self)]->onChunkRead(index, chunks.at(index), net->now); });
}

inline void Host::storeChunk(ChunkIndex index, Bytes data) {
  if (auto f = failOnce.find(index); f != failOnce.end()) {
    const Errc code = f->second;
    failOnce.erase(f);
    net->later([this, index, code] {
      net->sessions[static_cast<std::size_t>(self)]->onChunkStored(index, Status(fail(code, "store", "refused")), net->now);
    });
    return;
  }
  auto done = [this, index, data = std::move(data)] {
    stored[index] = data;
    net->sessions[static_cast<std::size_t>(self)]->onChunkStored(index, {}, net->now);
  };
  if (holdStores) {
    held.push_back(std::move(done));
  } else {
    net->later(std::move(done));
  }
}

inline bool Host::fetchOrigin(std::uint32_t id, const std::string& url, std::uint64_t offset, std::uint32_t length) {
  if (!http) return false;
  originAsked.push_back({id, url, offset, length});
  net->later([this, id, offset, length] {
    Result<Bytes> r = fail(originErrc, "origin", "HTTP 503");
    if (!originFails && offset + length <= originFile.size()) {
      r = Bytes(originFile.begin() + static_cast<std::ptrdiff_t>(offset), originFile.begin() + static_cast<std::ptrdiff_t>(offset + length));
    }
    net->sessions[static_cast<std::size_t>(self)]->onOriginData(id, std::move(r), net->now);
  });
  return true;
}

struct Fixture {
  Manifest manifest;
  FileId id;
  std::vector<Bytes> chunks;
  Net net;

  // seeders: peers that hold the file; the rest start empty and want it.
  Fixture(int peers, int seeders, std::uint32_t chunkCount, SessionOptions options = {}) {
    manifest.name = "t.bin";
    manifest.chunkSize = 1024;
    manifest.size = std::uint64_t{chunkCount} * 1024;
    for (std::uint32_t i = 0; i < chunkCount; ++i) {
      Bytes c(1024, static_cast<std::uint8_t>(i * 7 + 1));
      chunks.push_back(c);
      manifest.chunkHashes.push_back(Blake3::hash(c));
    }
    id = *manifestId(manifest);
    net.hosts.resize(static_cast<std::size_t>(peers));
    for (int i = 0; i < peers; ++i) {
      Host& h = net.hosts[static_cast<std::size_t>(i)];
      h.net = &net;
      h.self = i;
      h.chunks = chunks;
      wire::PeerId pid{};
      pid[0] = static_cast<std::uint8_t>(i + 1);
      const bool seeder = i < seeders;
      net.sessions.push_back(std::make_unique<Session>(id, pid, manifest, std::vector<bool>(chunkCount, seeder), h,
                                                       options, static_cast<std::uint64_t>(i + 1)));
      if (!seeder) net.sessions.back()->setWanted(true, net.now);
    }
  }
  Session& s(int i) { return *net.sessions[static_cast<std::size_t>(i)]; }
  Host& h(int i) { return net.hosts[static_cast<std::size_t>(i)]; }
};

}  // namespace p2pcdn::swarm::session_testing
