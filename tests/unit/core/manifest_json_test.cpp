// The manifest's JSON form.
#include <cctype>
#include <functional>
#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace p2pcdn {
namespace {

using nlohmann::json;
using test::sampleManifest;

json toJson(const Manifest& m) {
  auto s = manifestToJson(m);
  EXPECT_TRUE(s.has_value()) << test::describe(s);
  return s ? json::parse(*s) : json();
}

TEST(ManifestJson, RoundTrip) {
  std::vector<Manifest> cases = {sampleManifest(false), sampleManifest(true), sampleManifest(false, 0)};
  Manifest tricky = sampleManifest(true);
  // Characters JSON must escape, and brackets that must not count as nesting.
  tricky.name = "a \"quoted\" \\ name [[[[[[[[[[{{{{{{{{{{ \xe2\x82\xac.txt";
  cases.push_back(tricky);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    for (int indent : {-1, 2}) {
      auto text = manifestToJson(cases[i], indent);
      ASSERT_TRUE(text.has_value()) << test::describe(text);
      auto back = manifestFromJson(*text);
      ASSERT_TRUE(back.has_value()) << test::describe(back) << "\n" << *text;
      EXPECT_EQ(*back, cases[i]);
    }
  }
}

TEST(ManifestJson, Fields) {
  Manifest m = sampleManifest(true);
  json j = toJson(m);
  EXPECT_EQ(j.at("fileId").get<std::string>(), manifestId(m)->hex());
  EXPECT_EQ(j.at("version").get<int>(), 2);
  EXPECT_EQ(j.at("name").get<std::string>(), m.name);
  EXPECT_EQ(j.at("size").get<std::uint64_t>(), m.size);
  EXPECT_EQ(j.at("mimeType").get<std::string>(), m.mimeType);
  EXPECT_EQ(j.at("chunkSize").get<std::uint32_t>(), m.chunkSize);
  EXPECT_FALSE(j.contains("createdAt"));  // version 1 only: not part of the content
  EXPECT_EQ(j.at("encryption").at("algorithm").get<std::string>(), "AES-256-GCM");
  EXPECT_EQ(j.at("encryption").at("salt").get<std::string>().size(), 64u);
  ASSERT_EQ(j.at("chunks").size(), m.chunkCount());
  EXPECT_EQ(j.at("chunks")[0].get<std::string>(), m.chunkHashes[0].hex());
  EXPECT_FALSE(toJson(sampleManifest(false)).contains("encryption"));
}

TEST(ManifestJson, FileIdIsOptionalButChecked) {
  Manifest m = sampleManifest(true);
  json j = toJson(m);

  json noId = j;
  noId.erase("fileId");
  auto r = manifestFromJson(noId.dump());
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_EQ(*r, m);

  // Tampering with any field breaks the id.
  for (const char* field : {"name", "size", "mimeType", "chunkSize", "chunks", "salt", "fileId"}) {
    SCOPED_TRACE(field);
    json t = j;
    std::string f = field;
    if (f == "name") t["name"] = "other.mp4";
    if (f == "size") t["size"] = m.size - 1;
    if (f == "mimeType") t["mimeType"] = "video/webm";
    if (f == "chunkSize") {  // still consistent: 5000 bytes are 3 chunks of 2 KiB
      t["chunkSize"] = 2048;
      t["chunks"].erase(4);
      t["chunks"].erase(3);
    }
    if (f == "chunks") t["chunks"][1] = m.chunkHashes[2].hex();
    if (f == "salt") t["encryption"]["salt"] = std::string(64, '0');
    if (f == "fileId") t["fileId"] = std::string(64, 'a');
    P2PCDN_EXPECT_ERRC(manifestFromJson(t.dump()), Errc::kIntegrity);
  }
  // Upper-case hex in the id is still the same id.
  json upper = j;
  std::string id = j["fileId"].get<std::string>();
  for (char& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  upper["fileId"] = id;
  P2PCDN_EXPECT_OK(manifestFromJson(upper.dump()));
}

TEST(ManifestJson, DeepNestingIsRejectedWithoutCrashing) {
  P2PCDN_EXPECT_ERRC(manifestFromJson(std::string(100000, '[')), Errc::kMalformed);
  P2PCDN_EXPECT_ERRC(manifestFromJson(std::string(100000, '[') + std::string(100000, ']')), Errc::kMalformed);
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  P2PCDN_EXPECT_ERRC(manifestFromJson(objects), Errc::kMalformed);
  // Deep nesting inside an otherwise valid manifest.
  json j = toJson(sampleManifest());
  std::string text = j.dump();
  text.insert(text.size() - 1, ",\"extra\":" + std::string(50000, '[') + std::string(50000, ']'));
  P2PCDN_EXPECT_ERRC(manifestFromJson(text), Errc::kMalformed);
}

TEST(ManifestJson, NotJson) {
  for (const char* text : {"", " ", "{", "}", "nul", "{\"name\":}", "[1,2", "\"str\"", "42", "[]", "null",
                           "{\"version\":1}garbage", "\xff\xfe"}) {
    SCOPED_TRACE(text);
    P2PCDN_EXPECT_ERRC(manifestFromJson(text), Errc::kMalformed);
  }
}

TEST(ManifestJson, WrongTypesAndValues) {
  json base = toJson(sampleManifest(true));
  base.erase("fileId");
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
    Errc want;
  };
  const std::vector<Case> cases = {
      {"size as string", [](json& j) { j["size"] = "5000"; }, Errc::kMalformed},
      {"size negative", [](json& j) { j["size"] = -1; }, Errc::kMalformed},
      {"size fractional", [](json& j) { j["size"] = 5000.5; }, Errc::kMalformed},
      {"size missing", [](json& j) { j.erase("size"); }, Errc::kMalformed},
      {"name as number", [](json& j) { j["name"] = 7; }, Errc::kMalformed},
      {"name null", [](json& j) { j["name"] = nullptr; }, Errc::kMalformed},
      {"name empty", [](json& j) { j["name"] = ""; }, Errc::kMalformed},
      {"name with newline", [](json& j) { j["name"] = "a\nb"; }, Errc::kMalformed},
      {"mime as array", [](json& j) { j["mimeType"] = json::array(); }, Errc::kMalformed},
      {"chunkSize as bool", [](json& j) { j["chunkSize"] = true; }, Errc::kMalformed},
      {"chunkSize not power of two", [](json& j) { j["chunkSize"] = 1000; }, Errc::kMalformed},
      {"chunkSize above 32 bits", [](json& j) { j["chunkSize"] = (1ULL << 32) + 1024; }, Errc::kMalformed},
      {"version missing", [](json& j) { j.erase("version"); }, Errc::kMalformed},
      {"version as string", [](json& j) { j["version"] = "1"; }, Errc::kMalformed},
      {"version 1", [](json& j) { j["version"] = 1; }, Errc::kUnsupported},
      {"version 3", [](json& j) { j["version"] = 3; }, Errc::kUnsupported},
      {"chunks as object", [](json& j) { j["chunks"] = json::object(); }, Errc::kMalformed},
      {"chunks missing", [](json& j) { j.erase("chunks"); }, Errc::kMalformed},
      {"chunk as number", [](json& j) { j["chunks"][0] = 1; }, Errc::kMalformed},
      {"chunk short hex", [](json& j) { j["chunks"][0] = std::string(63, 'a'); }, Errc::kMalformed},
      {"chunk bad hex", [](json& j) { j["chunks"][0] = std::string(63, 'a') + "g"; }, Errc::kMalformed},
      {"one chunk too few", [](json& j) { j["chunks"].erase(0); }, Errc::kMalformed},
      {"encryption as string", [](json& j) { j["encryption"] = "AES"; }, Errc::kMalformed},
      {"unknown algorithm", [](json& j) { j["encryption"]["algorithm"] = "ChaCha20"; }, Errc::kUnsupported},
      {"algorithm missing", [](json& j) { j["encryption"].erase("algorithm"); }, Errc::kMalformed},
      {"salt short", [](json& j) { j["encryption"]["salt"] = "abcd"; }, Errc::kMalformed},
      {"salt as number", [](json& j) { j["encryption"]["salt"] = 5; }, Errc::kMalformed},
      {"fileId as number", [](json& j) { j["fileId"] = 5; }, Errc::kMalformed},
      {"fileId short", [](json& j) { j["fileId"] = "abc"; }, Errc::kMalformed},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    json j = base;
    c.edit(j);
    P2PCDN_EXPECT_ERRC(manifestFromJson(j.dump()), c.want);
  }
  // Encryption explicitly null means "not encrypted".
  json plain = base;
  plain["encryption"] = nullptr;
  auto r = manifestFromJson(plain.dump());
  ASSERT_TRUE(r.has_value()) << test::describe(r);
  EXPECT_FALSE(r->encryption.has_value());
  // Unknown fields are ignored, a creation time among them: it is not part of
  // the manifest, so it cannot change the file id.
  json extra = base;
  extra["comment"] = {{"anything", 1}};
  extra["createdAt"] = 1795000000000;
  auto withExtra = manifestFromJson(extra.dump());
  ASSERT_TRUE(withExtra.has_value()) << test::describe(withExtra);
  EXPECT_EQ(*manifestId(*withExtra), *manifestId(sampleManifest(true)));
}

TEST(ManifestJson, InvalidManifestIsNotWritten) {
  Manifest m = sampleManifest();
  m.name = "bad\xff";
  P2PCDN_EXPECT_ERRC(manifestToJson(m), Errc::kMalformed);
}

}  // namespace
}  // namespace p2pcdn
