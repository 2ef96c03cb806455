// make_signaling_corpus DIR: writes the seed corpus for signaling_fuzz: every
// client and tracker message kind as our encoder writes it (ids with control
// characters, quotes and bytes >= 0x80), and the same messages in the shapes
// bittorrent-tracker and libtorrent send (escaped ids, extra fields).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "signaling/signaling.hpp"

using namespace p2pcdn::signaling;

namespace {

bool write(const std::filesystem::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
  return static_cast<bool>(f);
}

Id20 id(std::uint8_t seed) {
  Id20 v{};
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>(seed + 37 * i);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir(argv[1]);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string sdp =
      "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\n"
      "a=ice-pwd:0123456789abcdefghijklmn\r\na=fingerprint:sha-256 AA:BB:CC\r\na=setup:actpass\r\n"
      "a=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";

  AnnounceRequest announce;
  announce.infoHash = id(0);
  announce.peerId = id(0x80);
  announce.event = Event::kStarted;
  announce.numwant = 3;
  announce.uploaded = 0;
  announce.downloaded = 0;
  announce.left = 1 << 20;
  for (std::uint8_t i = 0; i < 3; ++i) announce.offers.push_back({id(i), {"offer", sdp}});
  AnnounceRequest answer;
  answer.infoHash = id(0);
  answer.peerId = id(0x90);
  answer.answer = AnswerEntry{id(0x80), id(1), {"answer", sdp}};
  AnnounceRequest stopped;
  stopped.infoHash = id(5);
  stopped.peerId = id(6);
  stopped.event = Event::kStopped;

  std::vector<std::pair<std::string, std::string>> seeds = {
      {"announce-offers", encodeClientMessage(announce)},
      {"announce-answer", encodeClientMessage(answer)},
      {"announce-stopped", encodeClientMessage(stopped)},
      {"scrape-one", encodeClientMessage(ScrapeRequest{{id(1)}})},
      {"scrape-two", encodeClientMessage(ScrapeRequest{{id(1), id(2)}})},
      {"reply", encodeTrackerMessage(AnnounceResponse{id(0), 120, 3, 7})},
      {"relayed-offer", encodeTrackerMessage(RelayedOffer{id(0), id(0x80), id(2), {"offer", sdp}})},
      {"relayed-answer", encodeTrackerMessage(RelayedAnswer{id(0), id(0x90), id(2), {"answer", sdp}})},
      {"scrape-reply", encodeTrackerMessage(ScrapeResponse{{{id(1), 1, 2, 1}, {id(2), 0, 0, 0}}, 120})},
      {"failure", encodeTrackerMessage(Failure{"invalid info_hash", Action::kAnnounce, id(0)})},
      {"failure-bare", encodeTrackerMessage(Failure{"rate limit exceeded", std::nullopt, std::nullopt})},
      // libtorrent's announce: extra fields, "paused", ids as \u escapes
      {"libtorrent-announce",
       R"({"action":"announce","corrupt":0,"downloaded":0,"event":"paused","info_hash":"\u00aa\u00bb\u0001\u0002)"
       R"(abcdefghijklmnop","key":"0A0B0C0D","left":0,"numwant":10,"offers":[],"peer_id":"-LT2000-abcdefghijkl",)"
       R"("uploaded":0})"},
  };
  for (const auto& [name, text] : seeds) {
    if (!write(dir / (name + ".json"), text)) {
      std::fprintf(stderr, "make_signaling_corpus: cannot write %s\n", name.c_str());
      return 1;
    }
  }
  return 0;
}
