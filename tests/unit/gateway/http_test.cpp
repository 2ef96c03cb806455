#include "gateway/http.hpp"

#include <gtest/gtest.h>

#include <limits>

#include <random>

namespace p2pcdn::gateway {
namespace {

const std::string kId = "5a378ec5c725940a90007a0c170d434fe293d368fb277e0c3335c04649a17590";

RangeResult sat(std::uint64_t a, std::uint64_t b) { return {RangeOutcome::kSatisfiable, ByteRange{a, b}}; }

void expectRange(std::string_view h, std::uint64_t size, RangeResult want) {
  RangeResult got = parseRange(h, size);
  EXPECT_EQ(got.outcome, want.outcome) << "'" << h << "' size " << size;
  if (want.outcome == RangeOutcome::kSatisfiable) {
    EXPECT_EQ(got.range, want.range) << "'" << h << "'";
  }
}

constexpr RangeResult kNone{RangeOutcome::kNone, {}};
constexpr RangeResult kUnsat{RangeOutcome::kUnsatisfiable, {}};

TEST(Range, FirstLast) {
  expectRange("bytes=0-0", 100, sat(0, 0));
  expectRange("bytes=0-99", 100, sat(0, 99));
  expectRange("bytes=10-20", 100, sat(10, 20));
  expectRange("bytes=10-2000", 100, sat(10, 99));             // last clamped
  expectRange("bytes=99-99", 100, sat(99, 99));
  expectRange("bytes=0-18446744073709551615", 100, sat(0, 99));
  expectRange("bytes=0-99999999999999999999999", 100, sat(0, 99));  // saturates, still clamped
}

TEST(Range, OpenEndedAndSuffix) {
  expectRange("bytes=0-", 100, sat(0, 99));
  expectRange("bytes=42-", 100, sat(42, 99));
  expectRange("bytes=-1", 100, sat(99, 99));
  expectRange("bytes=-30", 100, sat(70, 99));
  expectRange("bytes=-100", 100, sat(0, 99));
  expectRange("bytes=-5000", 100, sat(0, 99));  // longer than the file: all of it
}

TEST(Range, Unsatisfiable) {
  expectRange("bytes=100-", 100, kUnsat);
  expectRange("bytes=100-200", 100, kUnsat);
  expectRange("bytes=-0", 100, kUnsat);
  expectRange("bytes=0-", 0, kUnsat);   // nothing of an empty file
  expectRange("bytes=-10", 0, kUnsat);
  expectRange("bytes=99999999999999999999999-", 100, kUnsat);
}

TEST(Range, Malformed) {
  for (const char* h : {"bytes=", "bytes=-", "bytes=abc", "bytes=5-3", "bytes=1-2-3", "bytes=--1", "bytes=+1-2",
                        "bytes=0x10-20", "bytes= , ", "bytes=1 -2", "bytes=1-2junk", "bytes=1.5-2"}) {
    expectRange(h, 100, kUnsat);
  }
}

TEST(Range, IgnoredUnitsAndShapes) {
  expectRange("items=0-5", 100, kNone);    // another unit: ignore the header (RFC 7233 3.1)
  expectRange("0-5", 100, kNone);          // not a ranges-specifier
  expectRange("BYTES=0-5", 100, sat(0, 5));  // the unit is case-insensitive
  expectRange("  bytes=0-5  ", 100, sat(0, 5));
  expectRange("bytes=0-5,", 100, sat(0, 5));  // empty list elements are allowed
}

TEST(Range, SeveralRangesServeTheWhole) {
  expectRange("bytes=0-5, 10-20", 100, kNone);
  expectRange("bytes=0-5,200-300", 100, kNone);   // one satisfiable is enough
  expectRange("bytes=200-300,400-", 100, kUnsat);  // none satisfiable
  expectRange("bytes=0-5,7-3", 100, kUnsat);      // one malformed spoils the set
  std::string many = "bytes=0-1";
  for (int i = 0; i < 100; ++i) many += ",0-1";
  expectRange(many, 100, kUnsat);  // an excessive request
}

TEST(Range, ChunksCovered) {
  const std::uint32_t cs = 256 * 1024;
  EXPECT_EQ(chunksFor({0, 0}, cs), (ChunkSpan{0, 0}));
  EXPECT_EQ(chunksFor({0, cs - 1}, cs), (ChunkSpan{0, 0}));
  EXPECT_EQ(chunksFor({0, cs}, cs), (ChunkSpan{0, 1}));
  EXPECT_EQ(chunksFor({cs - 1, cs}, cs), (ChunkSpan{0, 1}));
  EXPECT_EQ(chunksFor({5 * std::uint64_t{cs} + 7, 9 * std::uint64_t{cs}}, cs), (ChunkSpan{5, 9}));
  // Past 2^32 chunks (a 13 TB range over 1 KiB chunks, found by gateway_fuzz): saturates, stays ordered.
  const std::uint64_t far = std::uint64_t{0xc00000001ff};
  const ChunkSpan s = chunksFor({far - 520, far - 1}, 1024);
  EXPECT_LE(s.first, s.last);
  EXPECT_EQ(s.last, std::numeric_limits<ChunkIndex>::max());
}

// Random ranges against a reference computed the obvious way.
TEST(Range, RandomAgainstReference) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t size = rng() % 1000;
    const std::uint64_t a = rng() % 1100, b = rng() % 1100;
    switch (rng() % 3) {
      case 0: {
        auto r = parseRange("bytes=" + std::to_string(a) + "-" + std::to_string(b), size);
        if (b < a) EXPECT_EQ(r.outcome, RangeOutcome::kUnsatisfiable);
        else if (a >= size) EXPECT_EQ(r.outcome, RangeOutcome::kUnsatisfiable);
        else EXPECT_EQ(r.range, (ByteRange{a, std::min(b, size - 1)}));
        break;
      }
      case 1: {
        auto r = parseRange("bytes=" + std::to_string(a) + "-", size);
        if (a >= size) EXPECT_EQ(r.outcome, RangeOutcome::kUnsatisfiable);
        else EXPECT_EQ(r.range, (ByteRange{a, size - 1}));
        break;
      }
      default: {
        auto r = parseRange("bytes=-" + std::to_string(a), size);
        if (a == 0 || size == 0) EXPECT_EQ(r.outcome, RangeOutcome::kUnsatisfiable);
        else EXPECT_EQ(r.range, (ByteRange{size - std::min(a, size), size - 1}));
      }
    }
  }
}

using Sv = std::optional<std::string_view>;
FileRequest req(Sv range = {}, Sv ifRange = {}, Sv ifNoneMatch = {}) {
  return FileRequest{false, range, ifRange, ifNoneMatch};
}

TEST(Plan, Statuses) {
  const std::string etag = "\"" + kId + "\"";
  auto plan = [&](FileRequest r, std::uint64_t size = 1000) { return planFileResponse(r, size, etag); };
  auto full = plan(req());
  EXPECT_EQ(full.status, 200u);
  EXPECT_EQ(full.contentLength, 1000u);
  EXPECT_EQ(full.body, (ByteRange{0, 999}));
  EXPECT_EQ(full.contentRange, "");

  auto part = plan(req("bytes=10-19"));
  EXPECT_EQ(part.status, 206u);
  EXPECT_EQ(part.contentLength, 10u);
  EXPECT_EQ(part.contentRange, "bytes 10-19/1000");

  auto bad = plan(req("bytes=5000-"));
  EXPECT_EQ(bad.status, 416u);
  EXPECT_FALSE(bad.body);
  EXPECT_EQ(bad.contentRange, "bytes */1000");

  auto empty = plan(req(), 0);
  EXPECT_EQ(empty.status, 200u);
  EXPECT_FALSE(empty.body);
  EXPECT_EQ(empty.contentLength, 0u);

  EXPECT_EQ(plan(req({}, {}, etag)).status, 304u);
  EXPECT_EQ(plan(req({}, {}, "\"other\", " + etag)).status, 304u);
  EXPECT_EQ(plan(req({}, {}, "W/" + etag)).status, 304u);  // weak comparison
  EXPECT_EQ(plan(req({}, {}, "*")).status, 304u);
  EXPECT_EQ(plan(req({}, {}, "\"other\"")).status, 200u);

  EXPECT_EQ(plan(req("bytes=0-9", etag)).status, 206u);
  EXPECT_EQ(plan(req("bytes=0-9", "\"stale\"")).status, 200u);  // If-Range mismatch: whole
  EXPECT_EQ(plan(req("bytes=0-9", "W/" + etag)).status, 200u);  // weak never matches
  EXPECT_EQ(plan(req("bytes=0-9", "Tue, 15 Nov 1994 08:12:31 GMT")).status, 200u);
}

TEST(Route, Pages) {
  EXPECT_EQ(route("/").kind, RouteKind::kIndex);
  EXPECT_EQ(route("/?x=1").kind, RouteKind::kIndex);
  EXPECT_EQ(route("/metrics").kind, RouteKind::kMetrics);
  EXPECT_EQ(route("/api/files").kind, RouteKind::kFilesJson);
  EXPECT_EQ(route("/files").kind, RouteKind::kFilesPage);
  EXPECT_EQ(route("/api/config").kind, RouteKind::kConfig);
  EXPECT_EQ(route("/api/manifest/" + kId).kind, RouteKind::kManifest);
  EXPECT_EQ(route("/api/manifest/" + kId + "0").kind, RouteKind::kBadRequest);
  EXPECT_EQ(route("/api/manifest/xyz").kind, RouteKind::kBadRequest);
  auto app = route("/dist/sw.js?v=2");
  EXPECT_EQ(app.kind, RouteKind::kAppFile);
  EXPECT_EQ(app.name, "dist/sw.js");
  EXPECT_EQ(route("/favicon.ico").kind, RouteKind::kAppFile);
  EXPECT_EQ(route("/f").kind, RouteKind::kAppFile);  // a file named f (the server 404s what the app lacks)
  EXPECT_EQ(route("/../etc/passwd").kind, RouteKind::kNotFound);
  EXPECT_EQ(route("/app/.hidden").kind, RouteKind::kNotFound);
  EXPECT_EQ(route("/app//x.js").kind, RouteKind::kNotFound);
  EXPECT_EQ(route("/app/").kind, RouteKind::kNotFound);
  EXPECT_EQ(route("/a%2e%2e/x").kind, RouteKind::kNotFound);
  EXPECT_EQ(route("").kind, RouteKind::kBadRequest);
  EXPECT_EQ(route("http://host/f/x").kind, RouteKind::kBadRequest);  // absolute form
  EXPECT_EQ(route("*").kind, RouteKind::kBadRequest);
  EXPECT_EQ(route("/a b").kind, RouteKind::kBadRequest);
  EXPECT_EQ(route(std::string(5000, '/')).kind, RouteKind::kBadRequest);
}

TEST(Route, AppPaths) {
  EXPECT_EQ(appPath("app/index.html"), "app/index.html");
  EXPECT_EQ(appPath("a/b/c/d.js"), "a/b/c/d.js");
  EXPECT_EQ(appPath("a/b/c/d/e.js"), std::nullopt);  // deeper than 4
  for (const char* bad : {"", "..", "a/..", "./a", "a/./b", "a\\b", "a b", "a:b", "/a", "a/", "é"}) {
    EXPECT_EQ(appPath(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(appPath(std::string(201, 'a')), std::nullopt);
  EXPECT_EQ(appContentType("dist/p2pcdn_core.wasm"), "application/wasm");
  EXPECT_EQ(appContentType("app/app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(appContentType("x.bin"), "application/octet-stream");
}

TEST(Route, Files) {
  auto r = route("/f/" + kId);
  ASSERT_EQ(r.kind, RouteKind::kFile);
  EXPECT_EQ(r.fileId.hex(), kId);
  EXPECT_EQ(r.name, "");
  EXPECT_FALSE(r.key);

  r = route("/f/" + kId + "/");
  EXPECT_EQ(r.kind, RouteKind::kFile);

  std::string upper = kId;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  r = route("/f/" + upper + "/My%20Movie%C3%A9.mp4");
  ASSERT_EQ(r.kind, RouteKind::kFile);
  EXPECT_EQ(r.fileId.hex(), kId);
  EXPECT_EQ(r.name, "My Movie\xC3\xA9.mp4");

  r = route("/f/" + kId + "/v.mp4?k=" + std::string(64, 'a') + "&t=5");
  ASSERT_EQ(r.kind, RouteKind::kFile);
  ASSERT_TRUE(r.key);
  EXPECT_EQ((*r.key)[0], 0xaa);

  EXPECT_EQ(route("/f/" + kId.substr(1)).kind, RouteKind::kBadRequest);        // 63 digits
  EXPECT_EQ(route("/f/" + kId + "0").kind, RouteKind::kBadRequest);            // 65
  EXPECT_EQ(route("/f/" + kId.substr(1) + "g").kind, RouteKind::kBadRequest);  // not hex
  EXPECT_EQ(route("/f/" + kId + "/a/b").kind, RouteKind::kNotFound);
  EXPECT_EQ(route("/f/" + kId + "/a%2").kind, RouteKind::kBadRequest);
  EXPECT_EQ(route("/f/" + kId + "/a%zz").kind, RouteKind::kBadRequest);
  EXPECT_EQ(route("/f/" + kId + "/a%00b").kind, RouteKind::kBadRequest);
  EXPECT_EQ(route("/f/" + kId + "/a%2Fb").kind, RouteKind::kBadRequest);
  EXPECT_EQ(route("/f/" + kId + "?k=12").kind, RouteKind::kBadRequest);
  EXPECT_FALSE(route("/f/" + kId + "?k=12").why.empty());
}

TEST(Types, ContentType) {
  Manifest m;
  m.name = "a.mp4";
  m.mimeType = "video/mp4";
  EXPECT_EQ(contentType(m), "video/mp4");
  m.mimeType = "video/mp4\r\nSet-Cookie: x=1";  // header injection from a peer's manifest
  EXPECT_EQ(contentType(m), "application/octet-stream");
  m.mimeType = "nonsense";
  EXPECT_EQ(contentType(m), "application/octet-stream");
  m.mimeType = "/mp4";
  EXPECT_EQ(contentType(m), "application/octet-stream");
  m.mimeType = "video/";
  EXPECT_EQ(contentType(m), "application/octet-stream");
  m.mimeType = "video/a/b";
  EXPECT_EQ(contentType(m), "application/octet-stream");
  EXPECT_TRUE(isMedia("video/mp2t"));
  EXPECT_TRUE(isMedia("audio/ogg"));
  EXPECT_FALSE(isMedia("text/html"));
}

TEST(Types, EtagAndDisposition) {
  auto id = Hash::fromHex(kId);
  ASSERT_TRUE(id);
  EXPECT_EQ(etagFor(*id), "\"" + kId + "\"");
  EXPECT_EQ(contentDisposition("a \"b\".mp4"), "inline; filename=\"a _b_.mp4\"; filename*=UTF-8''a%20%22b%22.mp4");
  EXPECT_EQ(contentDisposition("\xC3\xA9\r\n"), "inline; filename=\"____\"; filename*=UTF-8''%C3%A9%0D%0A");
}

TEST(Text, Escapes) {
  EXPECT_EQ(htmlEscape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  EXPECT_EQ(percentEncode("a b/c~"), "a%20b%2Fc~");
}

TEST(Prometheus, Format) {
  PromText p;
  p.family("x_total", "counter", "Things.\nMore\\");
  p.sample("x_total", 3);
  p.sample("x_total", 1e20, {{"a", "q\"\\\n"}, {"b", "2"}});
  p.sample("x_total", 0.5);
  EXPECT_EQ(p.text(),
            "# HELP x_total Things.\\nMore\\\\\n"
            "# TYPE x_total counter\n"
            "x_total 3\n"
            "x_total{a=\"q\\\"\\\\\\n\",b=\"2\"} 1e+20\n"
            "x_total 0.5\n");
}

TEST(Page, EscapesNamesAndShowsPlayers) {
  IndexEntry video;
  video.fileId = *Hash::fromHex(kId);
  video.name = "<script>.mp4";
  video.contentType = "video/mp4";
  video.haveManifest = true;
  video.size = 1 << 20;
  video.chunksHave = 2;
  video.chunksTotal = 4;
  IndexEntry locked = video;
  locked.encrypted = true;
  locked.name = "secret.mp3";
  locked.contentType = "audio/mpeg";
  IndexEntry unknown;
  unknown.fileId = video.fileId;
  const std::string page = renderIndex({video, locked, unknown});
  EXPECT_EQ(page.find("<script>"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;.mp4"), std::string::npos);
  EXPECT_NE(page.find("<video controls"), std::string::npos);
  EXPECT_NE(page.find("/f/" + kId + "/%3Cscript%3E.mp4"), std::string::npos);
  EXPECT_EQ(page.find("<audio"), std::string::npos);  // encrypted, no key: no player
  EXPECT_NE(page.find("manifest not yet known"), std::string::npos);
  EXPECT_NE(page.find("<progress max=\"4\" value=\"2\">"), std::string::npos);
  const std::string json = renderFilesJson({video});
  EXPECT_NE(json.find("\"chunksHave\":2"), std::string::npos);
  EXPECT_NE(json.find("\"name\":\"<script>.mp4\""), std::string::npos);
}

}  // namespace
}  // namespace p2pcdn::gateway

namespace p2pcdn::gateway {
namespace {

TEST(RequestPolicy, HostMustNameThisGateway) {
  RequestPolicy p;
  p.port = 8080;
  p.hosts = {"cdn.example"};
  EXPECT_TRUE(hostAllowed(std::nullopt, p)) << "HTTP/1.0 without Host";
  p.hosts.push_back("proxy.example:443");
  for (std::string_view h : {"127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "[::1]", "127.0.0.1",
                             "cdn.example:8080", "CDN.example", "192.168.1.5:8080", "0.0.0.0:8080", "[fe80::1]:8080",
                             "proxy.example:443"}) {
    EXPECT_TRUE(hostAllowed(h, p)) << h;  // loopback, our names, and IP literals (rebinding needs a name)
  }
  for (std::string_view h : {"evil.example", "evil.example:8080", "127.0.0.1:8081", "localhost.evil:8080", "", ":8080",
                             "127.0.0.1:", "cdn.example:80", "127.0.0.1:08080x", "1.2.3:8080", "1.2.3.256:8080",
                             "01.2.3.4:8080", "1.2.3.4.5:8080", "proxy.example:8080", "proxy.example"}) {
    EXPECT_FALSE(hostAllowed(h, p)) << h;
  }
}

TEST(RequestPolicy, OnlyOurOwnOriginOrNamedOnesMayRead) {
  RequestPolicy p;
  p.port = 8080;
  EXPECT_TRUE(originAllowed(std::nullopt, "127.0.0.1:8080", p)) << "no Origin: not a cross-origin page";
  EXPECT_TRUE(originAllowed("http://127.0.0.1:8080", "127.0.0.1:8080", p));
  EXPECT_FALSE(originAllowed("http://evil.example", "127.0.0.1:8080", p));
  EXPECT_FALSE(originAllowed("null", "127.0.0.1:8080", p));
  EXPECT_FALSE(originAllowed("http://127.0.0.1:8080", std::nullopt, p));
  EXPECT_FALSE(corsHeader("http://127.0.0.1:8080", p)) << "same origin needs no CORS header";
  p.corsOrigins = {"https://app.example"};
  EXPECT_TRUE(originAllowed("https://app.example", "127.0.0.1:8080", p));
  EXPECT_EQ(corsHeader("https://APP.example", p), "https://APP.example");
  EXPECT_FALSE(corsHeader("https://app.example.evil", p));
  EXPECT_TRUE(fetchSiteAllowed(std::nullopt, std::nullopt, std::nullopt, p));
  EXPECT_TRUE(fetchSiteAllowed("same-origin", "cors", std::nullopt, p));
  EXPECT_TRUE(fetchSiteAllowed("none", "navigate", std::nullopt, p));
  EXPECT_TRUE(fetchSiteAllowed("cross-site", "navigate", std::nullopt, p)) << "a link the user followed";
  EXPECT_FALSE(fetchSiteAllowed("cross-site", "no-cors", std::nullopt, p)) << "<img>/<video> on another site";
  EXPECT_FALSE(fetchSiteAllowed("same-site", "no-cors", std::nullopt, p));
  EXPECT_TRUE(fetchSiteAllowed("cross-site", "cors", "https://app.example", p));
  p.corsOrigins = {"*"};
  EXPECT_EQ(corsHeader("http://anything", p), "*");
  EXPECT_EQ(corsHeader(std::nullopt, p), "*") << "the same for every request";
  EXPECT_TRUE(fetchSiteAllowed("cross-site", "no-cors", std::nullopt, p));
}

}  // namespace
TEST(RequestPolicy, TheAccessTokenComesAsBearerOrCookie) {
  EXPECT_TRUE(tokenPresented(std::nullopt, std::nullopt, ""));  // none configured
  EXPECT_FALSE(tokenPresented(std::nullopt, std::nullopt, "s3cret"));
  EXPECT_TRUE(tokenPresented("Bearer s3cret", std::nullopt, "s3cret"));
  EXPECT_FALSE(tokenPresented("Bearer s3cre", std::nullopt, "s3cret"));
  EXPECT_FALSE(tokenPresented("Bearer s3cretX", std::nullopt, "s3cret"));
  EXPECT_FALSE(tokenPresented("Basic s3cret", std::nullopt, "s3cret"));
  EXPECT_FALSE(tokenPresented("Bearer ", std::nullopt, "s3cret"));
  EXPECT_TRUE(tokenPresented(std::nullopt, "a=1; p2pcdn_token=s3cret; b=2", "s3cret"));
  EXPECT_TRUE(tokenPresented(std::nullopt, "p2pcdn_token=s3cret", "s3cret"));
  EXPECT_FALSE(tokenPresented(std::nullopt, "x_p2pcdn_token=s3cret", "s3cret"));
  EXPECT_FALSE(tokenPresented(std::nullopt, "p2pcdn_token=nope", "s3cret"));
}

}  // namespace p2pcdn::gateway
