// The manifest's JSON form, for tools and humans. The binary form stays canonical.
#include <nlohmann/json.hpp>

#include "core/hex.hpp"
#include "core/text.hpp"
#include "p2pcdn/manifest.hpp"

namespace p2pcdn {
namespace {

using nlohmann::json;
constexpr int kMaxJsonDepth = 8;

const char* kOp = "parse manifest JSON";

Result<std::uint64_t> getU64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) {
    return fail(Errc::kMalformed, kOp, std::string("\"") + key + "\" must be a non-negative integer");
  }
  return it->get<std::uint64_t>();
}

Result<std::string> getString(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return fail(Errc::kMalformed, kOp, std::string("\"") + key + "\" must be a string");
  }
  return it->get<std::string>();
}

}  // namespace

Result<std::string> manifestToJson(const Manifest& m, int indent) {
  auto id = manifestId(m);
  if (!id) return fail(id.error());
  json j;
  j["fileId"] = id->hex();
  j["version"] = m.version;
  j["name"] = m.name;
  j["size"] = m.size;
  j["mimeType"] = m.mimeType;
  j["chunkSize"] = m.chunkSize;
  if (m.encryption) {
    j["encryption"] = {{"algorithm", "AES-256-GCM"}, {"salt", toHex(m.encryption->salt)}};
  }
  json chunks = json::array();
  for (const Hash& h : m.chunkHashes) chunks.push_back(h.hex());
  j["chunks"] = std::move(chunks);
  return j.dump(indent);
}

Result<Manifest> manifestFromJson(std::string_view text) {
  if (text.size() > kMaxManifestJsonBytes) return fail(Errc::kTooLarge, kOp, "document too large");
  if (!jsonNestingWithin(text, kMaxJsonDepth)) return fail(Errc::kMalformed, kOp, "nested too deeply");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(Errc::kMalformed, kOp, "not valid JSON");
  if (!j.is_object()) return fail(Errc::kMalformed, kOp, "top level must be an object");

  Manifest m;
  auto version = getU64(j, "version");
  if (!version) return fail(version.error());
  if (*version != kManifestVersion) {
    return fail(Errc::kUnsupported, kOp,
                "version " + std::to_string(*version) + " (supported: " + std::to_string(kManifestVersion) + ")");
  }
  m.version = kManifestVersion;
  auto name = getString(j, "name");
  if (!name) return fail(name.error());
  m.name = std::move(*name);
  auto size = getU64(j, "size");
  if (!size) return fail(size.error());
  m.size = *size;
  auto mime = getString(j, "mimeType");
  if (!mime) return fail(mime.error());
  m.mimeType = std::move(*mime);
  auto chunkSize = getU64(j, "chunkSize");
  if (!chunkSize) return fail(chunkSize.error());
  if (*chunkSize > kMaxChunkSize) return fail(Errc::kMalformed, kOp, "chunkSize out of range");
  m.chunkSize = static_cast<std::uint32_t>(*chunkSize);

  if (auto it = j.find("encryption"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return fail(Errc::kMalformed, kOp, "\"encryption\" must be an object");
    auto alg = getString(*it, "algorithm");
    if (!alg) return fail(alg.error());
    if (*alg != "AES-256-GCM") return fail(Errc::kUnsupported, kOp, "encryption algorithm " + *alg);
    auto salt = getString(*it, "salt");
    if (!salt) return fail(salt.error());
    EncryptionInfo e;
    if (!fromHex(*salt, e.salt)) return fail(Errc::kMalformed, kOp, "encryption salt must be 64 hex characters");
    m.encryption = e;
  }

  auto chunks = j.find("chunks");
  if (chunks == j.end() || !chunks->is_array()) return fail(Errc::kMalformed, kOp, "\"chunks\" must be an array");
  if (chunks->size() > kMaxChunkCount) return fail(Errc::kTooLarge, kOp, "too many chunks");
  m.chunkHashes.reserve(chunks->size());
  for (const json& c : *chunks) {
    if (!c.is_string()) return fail(Errc::kMalformed, kOp, "chunk hashes must be strings");
    auto h = Hash::fromHex(c.get_ref<const std::string&>());
    if (!h) return fail(Errc::kMalformed, kOp, "chunk hash is not 64 hex characters");
    m.chunkHashes.push_back(*h);
  }
  P2PCDN_TRY(validateManifest(m));

  if (auto it = j.find("fileId"); it != j.end()) {
    if (!it->is_string()) return fail(Errc::kMalformed, kOp, "\"fileId\" must be a string");
    auto claimed = Hash::fromHex(it->get_ref<const std::string&>());
    if (!claimed) return fail(Errc::kMalformed, kOp, "fileId is not 64 hex characters");
    auto actual = manifestId(m);
    if (!actual) return fail(actual.error());
    if (*claimed != *actual) {
      return fail(Errc::kIntegrity, kOp, "fileId does not match the manifest's contents (tampered?)");
    }
  }
  return m;
}

}  // namespace p2pcdn
