// A signaling relay that splices itself into the media path, over real WebRTC
// (libwebrtc on 127.0.0.1) between two real Nodes and our tracker.
//
// The leecher's tracker connection runs through a relay (as a tracker, or a
// proxy in front of one, could): each offer the leecher sends is answered by
// the relay's own link, and the seeder gets the relay's own offer instead;
// the seeder's answer goes to the relay's offer, and the leecher gets the
// relay's answer. So the seeder and the leecher each complete DTLS with the
// relay, whose certificate fingerprints are the ones in the SDP they saw, and
// the relay passes every data-channel message across. Link authentication
// (docs/protocol.md "Peer identity") must refuse both links: no HANDSHAKE,
// no PIECE through, no chunk at the leecher. With the relay passing the SDP
// untouched (the control), the same two nodes complete the file. A third
// mode puts the honest peer's fingerprint line before the relay's own in each
// SDP it hands on (libwebrtc then checks DTLS against the last one, the
// relay's): links whose SDP has two fingerprint lines are refused.
#include <gtest/gtest.h>

#include <array>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>

#include "node/asio_runtime.hpp"
#include "node/node.hpp"
#include "store_support.hpp"
#include "tracker/tracker_server.hpp"
#include "transport/webrtc/webrtc_link.hpp"
#include "wire/auth.hpp"

namespace p2pcdn::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// The relay's two links for one of the leecher's offers, and what crossed.
struct Splice {
  std::unique_ptr<transport::PeerLink> toLeecher;  // answers the leecher's offer
  std::unique_ptr<transport::PeerLink> toSeeder;   // offers to the seeder
  std::string offerToSeeder, answerToLeecher;      // their gathered SDPs
  std::string leecherOffer, seederAnswer;          // the honest SDPs it replaces
  std::deque<Bytes> pendingToLeecher, pendingToSeeder;  // before a side opens
  bool leecherOpen = false, seederOpen = false;
};

struct Counts {
  std::array<int, 256> toSeeder{}, toLeecher{};  // by message type byte
};

class RelayRuntime;

// The leecher's tracker connection, through the relay.
class RelayConnection : public node::TrackerConnection {
 public:
  RelayConnection(RelayRuntime& rt, std::unique_ptr<node::TrackerConnection> inner, Events outer)
      : rt_(rt), inner_(std::move(inner)), outer_(std::move(outer)) {}
  void start() override { inner_->start(); }
  void stop() override { inner_->stop(); }
  bool connected() const override { return inner_->connected(); }
  bool send(std::string text) override;
  void fromTracker(std::string text);

 private:
  void sendHeld();
  RelayRuntime& rt_;
  std::unique_ptr<node::TrackerConnection> inner_;
  Events outer_;
  // Announces held until the relay's own offers for them are gathered.
  std::deque<json> held_;
};

enum class Mode { kPassThrough, kSplice, kSpliceTwoFingerprints };

// `relay`'s SDP with the honest side's fingerprint line put before its own.
std::string withHonestFingerprint(const std::string& relay, const std::string& honest) {
  const auto h = honest.find("a=fingerprint:");
  const auto r = relay.find("a=fingerprint:");
  if (h == std::string::npos || r == std::string::npos) return relay;
  const std::string line = honest.substr(h, honest.find('\n', h) + 1 - h);
  return relay.substr(0, r) + line + relay.substr(r);
}

class RelayRuntime : public node::AsioRuntime {
 public:
  RelayRuntime(asio::io_context& io, transport::LinkFactory& links, Mode mode)
      : AsioRuntime(io), links_(links), mode_(mode) {}
  Result<std::unique_ptr<node::TrackerConnection>> connectTracker(std::string_view url,
                                                                  node::TrackerConnection::Events ev) override {
    auto conn = std::make_shared<RelayConnection*>(nullptr);
    node::TrackerConnection::Events inner;
    inner.onConnected = [ev] {
      if (ev.onConnected) ev.onConnected();
    };
    inner.onMessage = [conn](std::string text) {
      if (*conn) (*conn)->fromTracker(std::move(text));
    };
    auto c = AsioRuntime::connectTracker(url, std::move(inner));
    if (!c) return c;
    auto relay = std::make_unique<RelayConnection>(*this, std::move(*c), std::move(ev));
    *conn = relay.get();
    return std::unique_ptr<node::TrackerConnection>(std::move(relay));
  }

  bool splice() const { return mode_ != Mode::kPassThrough; }
  bool twoFingerprints() const { return mode_ == Mode::kSpliceTwoFingerprints; }
  Counts counts;
  std::map<std::string, std::unique_ptr<Splice>> splices;  // by offer id

  // Makes the relay's two links for an offer of the leecher's; `gathered`
  // runs once the offer to the seeder is ready.
  Splice* makeSplice(const std::string& offerId, const std::string& leecherOffer, std::function<void()> gathered) {
    if (splices.size() >= 32) return nullptr;  // bounded: later offers pass unanswered
    auto s = std::make_unique<Splice>();
    Splice* sp = s.get();
    transport::LinkConfig cfg;
    cfg.loopbackOnly = true;
    auto post = [this](std::function<void()> t) { this->post(std::move(t)); };
    transport::LinkEvents toL, toS;
    toL.onLocalDescription = [sp](std::string sdp) { sp->answerToLeecher = std::move(sdp); };
    toL.onOpen = [sp] {
      sp->leecherOpen = true;
      for (auto& m : sp->pendingToLeecher) (void)sp->toLeecher->send(m);
      sp->pendingToLeecher.clear();
    };
    toL.onMessage = [this, sp](Bytes m) {
      ++counts.toSeeder[m.empty() ? 0 : m[0]];
      if (sp->seederOpen) (void)sp->toSeeder->send(m);
      else sp->pendingToSeeder.push_back(std::move(m));
    };
    toS.onLocalDescription = [sp, gathered](std::string sdp) {
      sp->offerToSeeder = std::move(sdp);
      gathered();
    };
    toS.onOpen = [sp] {
      sp->seederOpen = true;
      for (auto& m : sp->pendingToSeeder) (void)sp->toSeeder->send(m);
      sp->pendingToSeeder.clear();
    };
    toS.onMessage = [this, sp](Bytes m) {
      ++counts.toLeecher[m.empty() ? 0 : m[0]];
      if (sp->leecherOpen) (void)sp->toLeecher->send(m);
      else sp->pendingToLeecher.push_back(std::move(m));
    };
    auto l = links_.create(transport::Role::kAnswerer, cfg, post, std::move(toL));
    auto r = links_.create(transport::Role::kOfferer, cfg, post, std::move(toS));
    if (!l || !r) return nullptr;
    s->toLeecher = std::move(*l);
    s->toSeeder = std::move(*r);
    s->leecherOffer = leecherOffer;
    if (!s->toLeecher->acceptOffer(leecherOffer) || !s->toSeeder->createOffer()) return nullptr;
    splices[offerId] = std::move(s);
    return sp;
  }

 private:
  transport::LinkFactory& links_;
  Mode mode_;
};

bool RelayConnection::send(std::string text) {
  auto j = json::parse(text, nullptr, false);
  if (!rt_.splice() || j.is_discarded() || !j.contains("offers") || !j["offers"].is_array()) {
    return inner_->send(std::move(text));
  }
  // Each offer of the leecher's is answered by the relay; the seeder gets the relay's.
  for (auto& o : j["offers"]) {
    const std::string id = o.value("offer_id", "");
    const std::string sdp = o.contains("offer") ? o["offer"].value("sdp", "") : "";
    (void)rt_.makeSplice(id, sdp, [this] { sendHeld(); });
  }
  held_.push_back(std::move(j));
  return true;
}

// Sends the held announces whose relay offers are all gathered, with those offers.
void RelayConnection::sendHeld() {
  while (!held_.empty()) {
    json& j = held_.front();
    for (auto& o : j["offers"]) {
      auto it = rt_.splices.find(o.value("offer_id", ""));
      if (it != rt_.splices.end() && it->second->offerToSeeder.empty()) return;  // still gathering
    }
    json out = j;
    out["offers"] = json::array();
    for (auto& o : j["offers"]) {
      auto it = rt_.splices.find(o.value("offer_id", ""));
      if (it == rt_.splices.end()) continue;
      json x = o;
      const Splice& sp = *it->second;
      x["offer"]["sdp"] = rt_.twoFingerprints() ? withHonestFingerprint(sp.offerToSeeder, sp.leecherOffer) : sp.offerToSeeder;
      out["offers"].push_back(std::move(x));
    }
    inner_->send(out.dump());
    held_.pop_front();
  }
}

void RelayConnection::fromTracker(std::string text) {
  auto j = json::parse(text, nullptr, false);
  if (rt_.splice() && !j.is_discarded() && j.contains("answer") && j.contains("offer_id")) {
    auto it = rt_.splices.find(j.value("offer_id", ""));
    if (it == rt_.splices.end()) return;  // an answer to an offer the relay did not splice: dropped
    Splice& s = *it->second;
    if (!j.contains("relayed")) {
      s.seederAnswer = j["answer"].value("sdp", "");
      (void)s.toSeeder->acceptAnswer(s.seederAnswer);
    }
    if (s.answerToLeecher.empty()) {  // the relay's answer is still gathering: a little later
      j["relayed"] = true;
      rt_.after(10ms, [this, t = j.dump()] { fromTracker(t); });
      return;
    }
    // The leecher gets the relay's answer instead of the seeder's.
    j.erase("relayed");
    j["answer"]["sdp"] = rt_.twoFingerprints() ? withHonestFingerprint(s.answerToLeecher, s.seederAnswer) : s.answerToLeecher;
    text = j.dump();
  }
  if (outer_.onMessage) outer_.onMessage(std::move(text));
}

struct Outcome {
  std::uint32_t leecherChunks = 0;
  bool complete = false;
  Counts counts;
  std::size_t splices = 0;
};

// A seeder and a leecher of a 16-chunk file; the leecher's signaling runs
// through the relay (splicing or not) for `wait`.
Outcome transfer(Mode mode, Clock::duration wait) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  transport::WebRtcFactoryOptions fo;
  auto links = transport::makeWebRtcLinkFactory(fo);
  EXPECT_TRUE(links);
  tracker::TrackerOptions to;
  to.interval = 2s;
  tracker::TrackerServer tr(to);
  EXPECT_TRUE(tr.start("127.0.0.1", 0));
  node::AsioRuntime seedRt(io);
  RelayRuntime leechRt(io, **links, mode);
  node::NodeOptions o;
  o.trackerUrl = "ws://127.0.0.1:" + std::to_string(tr.port());
  o.link.loopbackOnly = true;
  o.discovery.backoffBase = 200ms;
  FaultyStore seedStore, leechStore;
  const Manifest m = publishFile(seedStore, 16, 7);
  const FileId id = *manifestId(m);
  Outcome run;
  {
    node::Node seeder(seedRt, seedStore, **links, o);
    node::Node leecher(leechRt, leechStore, **links, o);
    EXPECT_TRUE(seeder.start());
    EXPECT_TRUE(leecher.start());
    auto runUntil = [&](const std::function<bool()>& pred, Clock::duration timeout) {
      const auto end = Clock::now() + timeout;
      while (!pred() && Clock::now() < end) io.run_one_for(20ms);
      return pred();
    };
    bool seeded = false;
    seeder.seed(id, [&](Status st) { seeded = static_cast<bool>(st); });
    EXPECT_TRUE(runUntil([&] { return seeded && tr.stats().seeders >= 1; }, 10s));
    node::FetchEvents ev;
    ev.onChunk = [&](ChunkIndex) { ++run.leecherChunks; };
    ev.onComplete = [&] { run.complete = true; };
    leecher.fetch(id, m, ev, [](Result<node::ListenerId>) {});
    runUntil([&] { return run.complete; }, wait);
    bool a = false, b = false;
    seeder.stop([&] { a = true; });
    leecher.stop([&] { b = true; });
    runUntil([&] { return a && b; }, 5s);
    run.counts = leechRt.counts;
    run.splices = leechRt.splices.size();
    leechRt.splices.clear();  // links before their factory
  }
  tr.stop();
  return run;
}

TEST(RelayAttack, ARelayThatTerminatesDtlsOnBothSidesGetsNoPieceThrough) {
  const Outcome r = transfer(Mode::kSplice, 15s);
  EXPECT_GT(r.splices, 0u) << "the relay spliced no offer";
  // The relay did carry the links: both sides' AUTH_HELLO and AUTH_PROOF crossed it.
  EXPECT_GT(r.counts.toSeeder[wire::kAuthHelloType], 0);
  EXPECT_GT(r.counts.toLeecher[wire::kAuthHelloType], 0);
  EXPECT_GT(r.counts.toSeeder[wire::kAuthProofType] + r.counts.toLeecher[wire::kAuthProofType], 0);
  // ... and nothing after: no HANDSHAKE (1), no PIECE (7), no chunk.
  EXPECT_EQ(r.counts.toSeeder[1] + r.counts.toLeecher[1], 0) << "a HANDSHAKE crossed: a spliced link was proven";
  EXPECT_EQ(r.counts.toLeecher[7], 0) << "PIECE data crossed the relay";
  EXPECT_EQ(r.leecherChunks, 0u);
  EXPECT_FALSE(r.complete);
}

// The relay also hands on the honest fingerprint, before its own: the links
// are refused before any message (no AUTH_PROOF, which would sign the honest
// fingerprint and verify), so nothing crosses but, at most, AUTH_HELLOs.
TEST(RelayAttack, AnSdpWithTheHonestFingerprintBeforeTheRelaysIsRefused) {
  const Outcome r = transfer(Mode::kSpliceTwoFingerprints, 15s);
  EXPECT_GT(r.splices, 0u) << "the relay spliced no offer";
  EXPECT_EQ(r.counts.toSeeder[wire::kAuthProofType] + r.counts.toLeecher[wire::kAuthProofType], 0)
      << "a side signed an SDP with two fingerprint lines";
  EXPECT_EQ(r.counts.toSeeder[1] + r.counts.toLeecher[1], 0) << "a HANDSHAKE crossed";
  EXPECT_EQ(r.counts.toLeecher[7], 0) << "PIECE data crossed the relay";
  EXPECT_EQ(r.leecherChunks, 0u);
  EXPECT_FALSE(r.complete);
}

// The control: the same relay, passing the SDP untouched, and the file arrives.
TEST(RelayAttack, ThePassThroughRelayLetsTheTransferComplete) {
  const Outcome r = transfer(Mode::kPassThrough, 30s);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.leecherChunks, 16u);
  EXPECT_EQ(r.splices, 0u);
}

}  // namespace
}  // namespace p2pcdn::test
