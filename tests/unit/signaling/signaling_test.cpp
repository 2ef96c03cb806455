// The WebTorrent tracker protocol codec (src/signaling/): binary strings, the
// swarm key, every message both ways, the limits and malformed input.
#include <nlohmann/json.hpp>
#include <string>

#include "core/blake3.hpp"
#include "core/hex.hpp"
#include "signaling/signaling.hpp"
#include "test_support.hpp"

namespace p2pcdn::signaling {
namespace {

using test::codeOf;
using test::describe;

Id20 idOf(std::uint8_t first) {
  Id20 id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(first + i * 13);
  return id;
}

// JavaScript's JSON.stringify of a binary string: raw UTF-8, control
// characters as \u00XX, '"' and '\' escaped.
std::string jsString(const Id20& id) {
  std::string out = "\"";
  for (std::uint8_t b : id) {
    if (b < 0x20) {
      static const char* kHex = "0123456789abcdef";
      out += "\\u00";
      out += kHex[b >> 4];
      out += kHex[b & 15];
    } else if (b == '"' || b == '\\') {
      out += '\\';
      out += static_cast<char>(b);
    } else {
      out += toBinaryString(ByteView(&b, 1));
    }
  }
  return out + "\"";
}

const std::string kSdp =
    "v=0\r\no=- 123 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
    "a=candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host\r\na=sctp-port:5000\r\n";

AnnounceRequest decodeAnnounce(const std::string& text) {
  auto m = decodeClientMessage(text);
  EXPECT_TRUE(m.has_value()) << describe(m);
  if (!m || !std::holds_alternative<AnnounceRequest>(*m)) return {};
  return std::get<AnnounceRequest>(*m);
}

// ---- ids ----

TEST(BinaryString, EveryByteRoundTrips) {
  Bytes all(256);
  for (std::size_t i = 0; i < 256; ++i) all[i] = static_cast<std::uint8_t>(i);
  const std::string s = toBinaryString(all);
  EXPECT_EQ(s.size(), 128u + 2 * 128u);
  Bytes back(256);
  ASSERT_TRUE(fromBinaryString(s, back));
  EXPECT_EQ(back, all);
}

TEST(BinaryString, RejectsWhatIsNotOneCodePointPerByte) {
  std::array<std::uint8_t, 2> out{};
  EXPECT_TRUE(fromBinaryString("a\xc3\xbf", out));    // 'a', U+00FF
  EXPECT_FALSE(fromBinaryString("a", out));           // too short
  EXPECT_FALSE(fromBinaryString("abc", out));         // too long
  EXPECT_FALSE(fromBinaryString("a\xc4\x80", out));   // U+0100
  EXPECT_FALSE(fromBinaryString("a\xc0\x80", out));   // overlong NUL
  EXPECT_FALSE(fromBinaryString("a\xc3", out));       // truncated sequence
  EXPECT_FALSE(fromBinaryString("a\xc3\x41", out));   // bad continuation byte
  EXPECT_FALSE(fromBinaryString("a\x80", out));       // lone continuation byte
  EXPECT_FALSE(fromBinaryString("\xe2\x82\xac", out));  // U+20AC
  EXPECT_TRUE(fromBinaryString(std::string_view("\0\0", 2), out));
  EXPECT_EQ(out[0], 0);
}

TEST(SwarmKey, IsTheDerivedKeyPrefix) {
  FileId id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<std::uint8_t>(i);
  Blake3 h = Blake3::deriveKey("p2pcdn 2026-11-24 swarm key v1");
  h.update(id.bytes);
  const Hash full = h.finalize();
  const InfoHash key = swarmKey(id);
  EXPECT_TRUE(std::equal(key.begin(), key.end(), full.bytes.begin()));
  FileId other = id;
  other.bytes[31] ^= 1;
  EXPECT_NE(swarmKey(other), key);
  EXPECT_EQ(swarmKey(id), key);
}

TEST(SwarmKey, PinnedVector) {
  // b3sum --derive-key "p2pcdn 2026-11-24 swarm key v1" over 32 zero bytes, first 20 bytes.
  // Changing the derivation splits every swarm: this must never change.
  const FileId zero;
  EXPECT_EQ(toHex(swarmKey(zero)), "45ce1185011b1aa4c3ebe9c12bac6539e0c9bdbc");
}

// ---- client -> tracker ----

TEST(ClientMessage, DecodesABittorrentTrackerAnnounceWithOffers) {
  const Id20 ih = idOf(0x00), pid = idOf(0x80), o1 = idOf(0x7f), o2 = idOf(0xf0);
  const std::string text = R"({"action":"announce","info_hash":)" + jsString(ih) + R"(,"peer_id":)" + jsString(pid) +
                           R"(,"numwant":2,"uploaded":0,"downloaded":10,"left":1024,"event":"started","offers":[)" +
                           R"({"offer":{"type":"offer","sdp":)" + nlohmann::json(kSdp).dump() + R"(},"offer_id":)" +
                           jsString(o1) + "}," + R"({"offer":{"type":"offer","sdp":"x"},"offer_id":)" + jsString(o2) +
                           "}]}";
  const AnnounceRequest a = decodeAnnounce(text);
  EXPECT_EQ(a.infoHash, ih);
  EXPECT_EQ(a.peerId, pid);
  EXPECT_EQ(a.event, Event::kStarted);
  EXPECT_EQ(a.numwant, 2u);
  EXPECT_EQ(a.uploaded, 0u);
  EXPECT_EQ(a.downloaded, 10u);
  EXPECT_EQ(a.left, 1024u);
  ASSERT_EQ(a.offers.size(), 2u);
  EXPECT_EQ(a.offers[0].offerId, o1);
  EXPECT_EQ(a.offers[0].offer.type, "offer");
  EXPECT_EQ(a.offers[0].offer.sdp, kSdp);
  EXPECT_EQ(a.offers[1].offerId, o2);
  EXPECT_FALSE(a.answer.has_value());
}

TEST(ClientMessage, DecodesALibtorrentAnnounce) {
  // libtorrent adds "corrupt" and "key", may send "paused" and always sends "offers".
  const Id20 ih = idOf(3), pid = idOf(200);
  const std::string text = R"({"action":"announce","corrupt":0,"downloaded":0,"event":"paused","info_hash":)" +
                           jsString(ih) + R"(,"key":"0A0B0C0D","left":0,"numwant":10,"offers":[],"peer_id":)" +
                           jsString(pid) + R"(,"uploaded":7})";
  const AnnounceRequest a = decodeAnnounce(text);
  EXPECT_EQ(a.event, Event::kPaused);
  EXPECT_EQ(a.left, 0u);
  EXPECT_TRUE(a.offers.empty());
}

TEST(ClientMessage, DecodesAnAnswer) {
  const Id20 ih = idOf(1), pid = idOf(2), to = idOf(3), oid = idOf(4);
  const std::string text = R"({"action":"announce","info_hash":)" + jsString(ih) + R"(,"peer_id":)" + jsString(pid) +
                           R"(,"to_peer_id":)" + jsString(to) + R"(,"offer_id":)" + jsString(oid) +
                           R"(,"answer":{"type":"answer","sdp":"v=0"}})";
  const AnnounceRequest a = decodeAnnounce(text);
  ASSERT_TRUE(a.answer.has_value());
  EXPECT_EQ(a.answer->toPeerId, to);
  EXPECT_EQ(a.answer->offerId, oid);
  EXPECT_EQ(a.answer->answer, (SessionDescription{"answer", "v=0"}));
  EXPECT_EQ(a.event, Event::kNone);
  EXPECT_FALSE(a.left.has_value());
}

TEST(ClientMessage, NumbersAreLenient) {
  const std::string head =
      R"({"action":"announce","info_hash":)" + jsString(idOf(1)) + R"(,"peer_id":)" + jsString(idOf(2)) + ",";
  AnnounceRequest a = decodeAnnounce(head + R"("numwant":1e9,"left":null,"uploaded":-5,"downloaded":"12"})");
  EXPECT_EQ(a.numwant, kMaxNumwant);
  EXPECT_FALSE(a.left.has_value());  // JSON.stringify(Infinity) is null
  EXPECT_EQ(a.uploaded, 0u);
  EXPECT_FALSE(a.downloaded.has_value());
  a = decodeAnnounce(head + R"("left":12.9,"uploaded":18446744073709551615,"downloaded":1e300})");
  EXPECT_EQ(a.left, 12u);
  EXPECT_EQ(a.uploaded, 18446744073709551615ull);
  EXPECT_EQ(a.downloaded, 18446744073709551615ull);
  a = decodeAnnounce(head + R"("event":"","offers":null,"answer":null})");
  EXPECT_EQ(a.event, Event::kNone);
}

TEST(ClientMessage, DecodesScrape) {
  auto m = decodeClientMessage(R"({"action":"scrape","info_hash":)" + jsString(idOf(9)) + "}");
  ASSERT_TRUE(m.has_value()) << describe(m);
  EXPECT_EQ(std::get<ScrapeRequest>(*m).infoHashes, std::vector<InfoHash>{idOf(9)});
  m = decodeClientMessage(R"({"action":"scrape","info_hash":[)" + jsString(idOf(9)) + "," + jsString(idOf(10)) + "]}");
  ASSERT_TRUE(m.has_value()) << describe(m);
  EXPECT_EQ(std::get<ScrapeRequest>(*m).infoHashes.size(), 2u);
  P2PCDN_EXPECT_ERRC(decodeClientMessage(R"({"action":"scrape","info_hash":[]})"), Errc::kMalformed);
  P2PCDN_EXPECT_ERRC(decodeClientMessage(R"({"action":"scrape"})"), Errc::kMalformed);
  std::string many = R"({"action":"scrape","info_hash":[)";
  for (std::size_t i = 0; i <= kMaxScrapeHashes; ++i) many += (i ? "," : "") + jsString(idOf(static_cast<std::uint8_t>(i)));
  P2PCDN_EXPECT_ERRC(decodeClientMessage(many + "]}"), Errc::kTooLarge);
}

TEST(ClientMessage, RoundTrips) {
  AnnounceRequest a;
  a.infoHash = idOf(0x10);
  a.peerId = idOf(0x90);
  a.event = Event::kCompleted;
  a.numwant = 5;
  a.uploaded = 1;
  a.downloaded = 2;
  a.left = 0;
  for (std::uint8_t i = 0; i < kMaxOffers; ++i) a.offers.push_back({idOf(i), {"offer", kSdp}});
  a.answer = AnswerEntry{idOf(0xee), idOf(0xdd), {"answer", "sdp\"\\\x01"}};
  for (const ClientMessage& m : {ClientMessage{a}, ClientMessage{AnnounceRequest{}},
                                 ClientMessage{ScrapeRequest{{idOf(1)}}}, ClientMessage{ScrapeRequest{{idOf(1), idOf(2)}}}}) {
    const std::string text = encodeClientMessage(m);
    auto back = decodeClientMessage(text);
    ASSERT_TRUE(back.has_value()) << describe(back) << " for " << text;
    EXPECT_TRUE(*back == m) << text;
  }
}

TEST(ClientMessage, RejectsMalformedInput) {
  const std::string ih = jsString(idOf(1)), pid = jsString(idOf(2));
  const std::string head = R"({"action":"announce","info_hash":)" + ih + R"(,"peer_id":)" + pid;
  struct Case {
    std::string text;
    Errc code;
  };
  const std::vector<Case> cases = {
      {"", Errc::kMalformed},
      {"{", Errc::kMalformed},
      {"not json", Errc::kMalformed},
      {"[1,2]", Errc::kMalformed},
      {"42", Errc::kMalformed},
      {R"("announce")", Errc::kMalformed},
      {"null", Errc::kMalformed},
      {"{}", Errc::kMalformed},
      {R"({"action":"connect"})", Errc::kMalformed},
      {R"({"action":7})", Errc::kMalformed},
      {R"({"action":"announce"})", Errc::kMalformed},
      {R"({"action":"announce","info_hash":"short","peer_id":)" + pid + "}", Errc::kMalformed},
      {R"({"action":"announce","info_hash":"\u0100234567890123456789","peer_id":)" + pid + "}", Errc::kMalformed},
      {R"({"action":"announce","info_hash":)" + ih + "}", Errc::kMalformed},
      {R"({"action":"announce","info_hash":)" + ih + R"(,"peer_id":12})", Errc::kMalformed},
      {head + R"(,"event":"bogus"})", Errc::kMalformed},
      {head + R"(,"event":3})", Errc::kMalformed},
      {head + R"(,"offers":{}})", Errc::kMalformed},
      {head + R"(,"offers":[1]})", Errc::kMalformed},
      {head + R"(,"offers":[{"offer_id":)" + ih + "}]}", Errc::kMalformed},
      {head + R"(,"offers":[{"offer":{"sdp":"x"}}]})", Errc::kMalformed},
      {head + R"(,"offers":[{"offer_id":)" + ih + R"(,"offer":{"type":"offer"}}]})", Errc::kMalformed},
      {head + R"(,"offers":[{"offer_id":)" + ih + R"(,"offer":"sdp"}]})", Errc::kMalformed},
      {head + R"(,"offers":[{"offer_id":)" + ih + R"(,"offer":{"sdp":"x","type":1}}]})", Errc::kMalformed},
      {head + R"(,"answer":{"sdp":"x"}})", Errc::kMalformed},
      {head + R"(,"answer":{"sdp":"x"},"to_peer_id":)" + ih + "}", Errc::kMalformed},
      {head + R"(,"answer":{"sdp":"x"},"offer_id":)" + ih + "}", Errc::kMalformed},
      {head + R"(,"answer":"x","offer_id":)" + ih + R"(,"to_peer_id":)" + ih + "}", Errc::kMalformed},
      {head + "}" + "}", Errc::kMalformed},
      {"\xff\xfe{}", Errc::kMalformed},
      {R"({"action":"announce","info_hash":")" + std::string("\xc3\x28") + R"("})", Errc::kMalformed},
  };
  for (const Case& c : cases) {
    DecodeContext ctx;
    auto m = decodeClientMessage(c.text, &ctx);
    EXPECT_EQ(codeOf(m), c.code) << c.text << " -> " << describe(m);
    if (!m) {
      EXPECT_FALSE(m.error().detail().empty());
    }
  }
}

TEST(ClientMessage, EnforcesLimits) {
  const std::string head = R"({"action":"announce","info_hash":)" + jsString(idOf(1)) + R"(,"peer_id":)" + jsString(idOf(2));
  auto offer = [&](std::size_t sdpBytes, std::uint8_t id) {
    return R"({"offer_id":)" + jsString(idOf(id)) + R"(,"offer":{"type":"offer","sdp":")" + std::string(sdpBytes, 'a') + "\"}}";
  };
  std::string ten = head + R"(,"offers":[)";
  for (std::uint8_t i = 0; i < kMaxOffers; ++i) ten += (i ? "," : "") + offer(100, i);
  P2PCDN_EXPECT_OK(decodeClientMessage(ten + "]}"));
  P2PCDN_EXPECT_ERRC(decodeClientMessage(ten + "," + offer(100, 99) + "]}"), Errc::kTooLarge);

  P2PCDN_EXPECT_OK(decodeClientMessage(head + R"(,"offers":[)" + offer(kMaxSdpBytes, 1) + "]}"));
  P2PCDN_EXPECT_ERRC(decodeClientMessage(head + R"(,"offers":[)" + offer(kMaxSdpBytes + 1, 1) + "]}"), Errc::kTooLarge);

  const std::string big = head + R"(,"pad":")" + std::string(kMaxMessageBytes, 'p') + "\"}";
  P2PCDN_EXPECT_ERRC(decodeClientMessage(big), Errc::kTooLarge);

  std::string deep = head + R"(,"x":)" + std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']') + "}";
  P2PCDN_EXPECT_ERRC(decodeClientMessage(deep), Errc::kMalformed);
  std::string deepInString = head + R"(,"x":")" + std::string(100, '[') + "\"}";
  P2PCDN_EXPECT_OK(decodeClientMessage(deepInString));
}

TEST(ClientMessage, ContextNamesTheSwarmOfAFailedAnnounce) {
  DecodeContext ctx;
  auto m = decodeClientMessage(R"({"action":"announce","info_hash":)" + jsString(idOf(5)) + R"(,"peer_id":"x"})", &ctx);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(ctx.action, Action::kAnnounce);
  EXPECT_EQ(ctx.infoHash, idOf(5));

  DecodeContext none;
  (void)decodeClientMessage("[]", &none);
  EXPECT_FALSE(none.action.has_value());
  EXPECT_FALSE(none.infoHash.has_value());
}

// ---- tracker -> client ----

TEST(TrackerMessage, EncodesWhatWebTorrentExpects) {
  const InfoHash ih = idOf(0xa0);
  const std::string text = encodeTrackerMessage(AnnounceResponse{ih, 30, 2, 3});
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["action"], "announce");
  EXPECT_EQ(j["interval"], 30);
  EXPECT_EQ(j["complete"], 2);
  EXPECT_EQ(j["incomplete"], 3);
  EXPECT_EQ(j["info_hash"].get<std::string>(), toBinaryString(ih));

  const auto offer = nlohmann::json::parse(encodeTrackerMessage(RelayedOffer{ih, idOf(1), idOf(2), {"offer", kSdp}}));
  EXPECT_EQ(offer["offer"]["type"], "offer");
  EXPECT_EQ(offer["offer"]["sdp"], kSdp);
  EXPECT_EQ(offer["peer_id"].get<std::string>(), toBinaryString(idOf(1)));
  EXPECT_EQ(offer["offer_id"].get<std::string>(), toBinaryString(idOf(2)));

  EXPECT_EQ(encodeTrackerMessage(Failure{"bad", std::nullopt, std::nullopt}), R"({"failure reason":"bad"})");
  const auto f = nlohmann::json::parse(encodeTrackerMessage(Failure{"bad", Action::kAnnounce, ih}));
  EXPECT_EQ(f["action"], "announce");
  EXPECT_EQ(f["info_hash"].get<std::string>(), toBinaryString(ih));
}

TEST(TrackerMessage, BinaryStringsAreWrittenLikeJsonStringify) {
  Id20 ih{};
  ih[0] = 0x00;
  ih[1] = '"';
  ih[2] = '\\';
  ih[3] = 0x7f;
  ih[4] = 0x80;
  ih[5] = 0xff;
  ih[6] = '\n';
  const std::string text = encodeTrackerMessage(AnnounceResponse{ih, 1, 0, 0});
  // What JSON.stringify(buffer.toString('binary')) gives for the first 7 bytes.
  EXPECT_NE(text.find(R"("info_hash":"\u0000\"\\)" "\x7f\xc2\x80\xc3\xbf" R"(\n\u0000)"), std::string::npos) << text;
}

TEST(TrackerMessage, RoundTrips) {
  const InfoHash ih = idOf(0xa0);
  const std::vector<TrackerMessage> all = {
      AnnounceResponse{ih, 30, 0, 4000000000u},
      RelayedOffer{ih, idOf(1), idOf(2), {"offer", kSdp}},
      RelayedOffer{ih, idOf(1), idOf(2), {"", ""}},
      RelayedAnswer{ih, idOf(3), idOf(4), {"answer", "v=0\r\n"}},
      ScrapeResponse{{ScrapeFile{ih, 1, 2, 3}}, 30},
      ScrapeResponse{{}, 0},
      Failure{"no", std::nullopt, std::nullopt},
      Failure{"rate limit \xe2\x9c\x8b", Action::kScrape, ih},
  };
  for (const TrackerMessage& m : all) {
    const std::string text = encodeTrackerMessage(m);
    auto back = decodeTrackerMessage(text);
    ASSERT_TRUE(back.has_value()) << describe(back) << " for " << text;
    EXPECT_TRUE(*back == m) << text;
  }
}

TEST(TrackerMessage, LongFailureReasonsAreTruncated) {
  const std::string reason = std::string(kMaxFailureReasonBytes - 1, 'x') + "\xc3\xa9";  // é straddles the limit
  auto back = decodeTrackerMessage(encodeTrackerMessage(Failure{reason, std::nullopt, std::nullopt}));
  ASSERT_TRUE(back.has_value()) << describe(back);
  EXPECT_EQ(std::get<Failure>(*back).reason, std::string(kMaxFailureReasonBytes - 1, 'x'));
}

TEST(TrackerMessage, RejectsMalformedInput) {
  const std::string ih = jsString(idOf(1));
  for (const std::string& text : {
           std::string("[]"),
           std::string(R"({"action":"announce"})"),
           R"({"action":"announce","info_hash":)" + ih + "}",  // no interval, offer or answer
           R"({"action":"announce","info_hash":)" + ih + R"(,"interval":"30"})",
           R"({"action":"announce","info_hash":)" + ih + R"(,"offer":{"sdp":"x"}})",  // no ids
           R"({"action":"announce","info_hash":)" + ih + R"(,"answer":{"sdp":"x"},"offer_id":)" + ih + "}",
           std::string(R"({"action":"scrape","files":[]})"),
           std::string(R"({"action":"scrape","files":{"short":{}}})"),
           std::string(R"({"action":"other"})"),
           std::string(R"({"failure reason":5})"),
       }) {
    auto m = decodeTrackerMessage(text);
    EXPECT_FALSE(m.has_value()) << text;
  }
}

}  // namespace
}  // namespace p2pcdn::signaling
