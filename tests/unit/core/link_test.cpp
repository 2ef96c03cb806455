// Shareable links: p2pcdn:<id>?tr=<url>&k=<key>.
#include <algorithm>
#include <cctype>

#include "core/hex.hpp"
#include "test_support.hpp"

namespace p2pcdn {
namespace {

FileId someId() { return Blake3::hash(asBytes("some file")); }

EncryptionKey someKey() {
  EncryptionKey k{};
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(0xf0 - i);
  return k;
}

std::string idHex() { return someId().hex(); }

TEST(Link, FormatIsExact) {
  EXPECT_EQ(formatLink({someId(), {}, std::nullopt}), "p2pcdn:" + idHex());
  EXPECT_EQ(formatLink({someId(), {"wss://t.example/announce"}, someKey()}),
            "p2pcdn:" + idHex() + "?tr=wss://t.example/announce&k=" + toHex(someKey()));
  EXPECT_EQ(formatLink({someId(), {}, someKey()}), "p2pcdn:" + idHex() + "?k=" + toHex(someKey()));
  // Reserved characters of the query are escaped.
  EXPECT_EQ(formatLink({someId(), {"ws://h/a?b=c&d e+f%"}, std::nullopt}),
            "p2pcdn:" + idHex() + "?tr=ws://h/a%3Fb%3Dc%26d%20e%2Bf%25");
}

TEST(Link, RoundTripWithTrackersAndKey) {
  Link link;
  link.fileId = someId();
  link.trackers = {
      "wss://tracker.example.com:8443/announce?info=1&x=y",
      "ws://[::1]:8000/a b+c%41#frag",
      "https://tr\xc3\xa4" "cker.example/\xe2\x82\xac",
      "udp://plain.example:6969",
  };
  link.key = someKey();
  std::string text = formatLink(link);
  // Exactly one '?' and the separators we put there: nothing from the trackers leaks.
  EXPECT_EQ(std::count(text.begin(), text.end(), '?'), 1);
  EXPECT_EQ(std::count(text.begin(), text.end(), '&'), 4);
  EXPECT_EQ(text.find(' '), std::string::npos);
  EXPECT_EQ(text.find('#'), std::string::npos);
  auto back = parseLink(text);
  ASSERT_TRUE(back.has_value()) << test::describe(back);
  EXPECT_EQ(back->fileId, link.fileId);
  EXPECT_EQ(back->trackers, link.trackers);
  ASSERT_TRUE(back->key.has_value());
  EXPECT_EQ(*back->key, *link.key);
  EXPECT_EQ(formatLink(*back), text);

  Link noKey{someId(), {"wss://a"}, std::nullopt};
  auto back2 = parseLink(formatLink(noKey));
  ASSERT_TRUE(back2.has_value()) << test::describe(back2);
  EXPECT_FALSE(back2->key.has_value());
  EXPECT_EQ(back2->trackers, noKey.trackers);
}

TEST(Link, BareIdAndSchemeVariants) {
  for (const std::string& text : {idHex(), "p2pcdn:" + idHex(), "P2PCDN:" + idHex(), "p2pcdn://" + idHex(),
                                  "p2pcdn:" + idHex() + "?", "p2pcdn:" + idHex() + "?&&"}) {
    SCOPED_TRACE(text);
    auto r = parseLink(text);
    ASSERT_TRUE(r.has_value()) << test::describe(r);
    EXPECT_EQ(r->fileId, someId());
    EXPECT_TRUE(r->trackers.empty());
    EXPECT_FALSE(r->key.has_value());
  }
  std::string upper = idHex();
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto r = parseLink(upper);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->fileId, someId());
}

TEST(Link, BadIds) {
  std::string id = idHex();
  for (const std::string& text :
       {std::string(), std::string("p2pcdn:"), id.substr(0, 63), "p2pcdn:" + id.substr(0, 63), id + "0",
        "p2pcdn:" + id + "0?tr=x", "g" + id.substr(1), "p2pcdn:" + id.substr(0, 62) + "-1", "magnet:?xt=" + id,
        "http:" + id, " " + id, "p2pcdn:" + id.substr(0, 63) + "?tr=wss://a"}) {
    SCOPED_TRACE(text);
    P2PCDN_EXPECT_ERRC(parseLink(text), Errc::kMalformed);
  }
}

TEST(Link, BadParameters) {
  std::string base = "p2pcdn:" + idHex();
  for (const std::string& q : std::vector<std::string>{"?tr=abc%", "?tr=abc%4", "?tr=%zz", "?tr=%4g", "?tr=%g4x", "?tr=", "?tr",
                               "?k=", "?k=1234", "?k=" + std::string(63, 'a'), "?k=" + std::string(65, 'a'),
                               "?k=" + std::string(63, 'a') + "z", "?tr=wss://a&k=%"}) {
    SCOPED_TRACE(q);
    P2PCDN_EXPECT_ERRC(parseLink(base + q), Errc::kMalformed);
  }
}

TEST(Link, PercentDecoding) {
  std::string base = "p2pcdn:" + idHex();
  auto r = parseLink(base + "?tr=ws%3A%2F%2Fh%2fa+b%20c%41");
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  ASSERT_EQ(r->trackers.size(), 1u);
  EXPECT_EQ(r->trackers[0], "ws://h/a b cA");
  // An escape at the very end of the link.
  r = parseLink(base + "?tr=x%41");
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_EQ(r->trackers[0], "xA");
}

TEST(Link, TrackerLimit) {
  Link link{someId(), {}, someKey(), {}};
  for (int i = 0; i < 16; ++i) link.trackers.push_back("wss://tracker" + std::to_string(i) + ".example");
  auto r = parseLink(formatLink(link));
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_EQ(r->trackers.size(), 16u);
  link.trackers.push_back("wss://one-too-many.example");
  P2PCDN_EXPECT_ERRC(parseLink(formatLink(link)), Errc::kTooLarge);
}

TEST(Link, LongestValidFieldsStillParse) {
  Link link{someId(), {}, someKey(), {}};
  for (int i = 0; i < 16; ++i) link.trackers.push_back(std::string(512, '%'));  // worst case: 3 bytes each
  auto r = parseLink(formatLink(link));
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_EQ(r->trackers, link.trackers);
  link.trackers.back().push_back('x');
  P2PCDN_EXPECT_ERRC(parseLink(formatLink(link)), Errc::kTooLarge);
}

TEST(Link, WebSeeds) {
  Link link{someId(), {"ws://t:1"}, std::nullopt, {"http://o.test/a b.mp4", "https://o2.test/f?x=1&y=2"}};
  auto r = parseLink(formatLink(link));
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_EQ(r->webSeeds, link.webSeeds);
  EXPECT_EQ(r->trackers, link.trackers);
  P2PCDN_EXPECT_ERRC(parseLink("p2pcdn:" + idHex() + "?ws=ftp%3A%2F%2Fx"), Errc::kMalformed);
  for (int i = 0; i < 8; ++i) link.webSeeds.push_back("http://o.test/" + std::string(2030, '%'));
  link.webSeeds.erase(link.webSeeds.begin(), link.webSeeds.begin() + 2);  // 8 of the longest, worst case encoded
  r = parseLink(formatLink(link));
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_EQ(r->webSeeds.size(), 8u);
  link.webSeeds.push_back("http://o.test/9");
  P2PCDN_EXPECT_ERRC(parseLink(formatLink(link)), Errc::kTooLarge);
}

TEST(Link, LengthLimit) {
  std::string base = "p2pcdn:" + idHex() + "?pad=";
  std::string atLimit = base + std::string(81920 - base.size(), 'x');
  ASSERT_EQ(atLimit.size(), 81920u);
  P2PCDN_EXPECT_OK(parseLink(atLimit));
  P2PCDN_EXPECT_ERRC(parseLink(atLimit + "x"), Errc::kTooLarge);
  P2PCDN_EXPECT_ERRC(parseLink(std::string(1'000'000, 'a')), Errc::kTooLarge);
}

TEST(Link, UnknownParametersAreIgnored) {
  std::string text = "p2pcdn:" + idHex() + "?x=1&tr=wss%3A%2F%2Fa&future&dn=My%20File&k=" + toHex(someKey()) +
                     "&xs=%41%42&=novalue";
  auto r = parseLink(text);
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_EQ(r->trackers, std::vector<std::string>{"wss://a"});
  ASSERT_TRUE(r->key.has_value());
  EXPECT_EQ(*r->key, someKey());
}

TEST(Link, NeverCrashesOnNoise) {
  std::mt19937 rng(5);
  std::string alphabet = "p2cdn:?&=%0123456789abcdefABCDEFgz+/ \x80\xff";
  std::string valid = formatLink({someId(), {"wss://t.example/a?b"}, someKey()});
  for (int i = 0; i < 20000; ++i) {
    std::string s = valid;
    int edits = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < edits; ++k) {
      std::size_t pos = rng() % (s.size() + 1);
      switch (rng() % 3) {
        case 0: s.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
        case 1:
          if (pos < s.size()) s.erase(pos, 1);
          break;
        default:
          if (pos < s.size()) s[pos] = alphabet[rng() % alphabet.size()];
      }
    }
    auto r = parseLink(s);
    if (r) {
      // Whatever parses formats to a link that parses to the same thing.
      auto again = parseLink(formatLink(*r));
      ASSERT_TRUE(again.has_value()) << s;
      EXPECT_EQ(again->fileId, r->fileId);
      EXPECT_EQ(again->trackers, r->trackers);
      EXPECT_EQ(again->key, r->key);
    }
  }
}

}  // namespace
}  // namespace p2pcdn
