// The C ABI of the browser package (web/): the functions JavaScript calls.
// Plain exports, not embind: emscripten 3.1.6's embind builds its call stubs
// with `new Function`, which a page whose CSP forbids eval cannot run
// (docs/browser-peer-plan.md). Bytes and UTF-8 text cross as (pointer,
// length) in memory the JS side took with p2p_alloc. A call returns 0 or an
// Errc code; its text result (JSON, or {"code","message"} on failure) stays
// readable through p2p_result / p2p_result_size until the next call.
// Everything runs on the page's one thread.
#include <emscripten/emscripten.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "browser/abi.hpp"
#include "core/blake3.hpp"
#include "core/chunk_aead.hpp"
#include "core/hex.hpp"
#include "p2pcdn/manifest.hpp"

namespace p2pcdn::browser::abi {
std::string& result() {
  static std::string r;
  return r;
}
}  // namespace p2pcdn::browser::abi

using namespace p2pcdn::browser::abi;
using p2pcdn::Errc;
using nlohmann::json;

namespace {
// j[key] as exactly out.size() bytes of hex.
template <std::size_t N>
bool hexField(const json& j, const char* key, std::array<std::uint8_t, N>& out) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return false;
  const auto& s = j[key].get_ref<const std::string&>();
  return s.size() == 2 * N && p2pcdn::fromHex(s, out);
}
}  // namespace

extern "C" {

EMSCRIPTEN_KEEPALIVE std::uint8_t* p2p_alloc(std::size_t n) { return static_cast<std::uint8_t*>(std::malloc(n ? n : 1)); }
EMSCRIPTEN_KEEPALIVE void p2p_free(std::uint8_t* p) { std::free(p); }
EMSCRIPTEN_KEEPALIVE const char* p2p_result() { return result().data(); }
EMSCRIPTEN_KEEPALIVE std::size_t p2p_result_size() { return result().size(); }

// The ABI's version: the JS side refuses a .wasm of another one.
EMSCRIPTEN_KEEPALIVE int p2p_abi_version() { return 2; }  // 2: peers take identityKey, sign/verify imports

// BLAKE3 of the bytes, as 64 hex digits.
EMSCRIPTEN_KEEPALIVE int p2p_hash(const std::uint8_t* p, std::size_t n) {
  const auto h = p2pcdn::Blake3::hash(bytes(p, n));
  return ok(p2pcdn::toHex(p2pcdn::ByteView(h.bytes.data(), h.bytes.size())));
}

// A manifest in its JSON form (docs/protocol.md), checked against every
// limit (and against its "fileId", if present): the result is its canonical
// JSON form, "fileId" included.
EMSCRIPTEN_KEEPALIVE int p2p_manifest_from_json(const char* p, std::size_t n) {
  auto m = p2pcdn::manifestFromJson(text(p, n));
  if (!m) return failed(m.error());
  auto j = p2pcdn::manifestToJson(*m);
  if (!j) return failed(j.error());
  return ok(std::move(*j));
}

// Whether `data` is chunk `index` of the manifest (length and BLAKE3).
EMSCRIPTEN_KEEPALIVE int p2p_verify_chunk(const char* manifest, std::size_t n, std::uint32_t index,
                                          const std::uint8_t* data, std::size_t len) {
  auto m = p2pcdn::manifestFromJson(text(manifest, n));
  if (!m) return failed(m.error());
  if (auto st = p2pcdn::verifyChunk(*m, index, bytes(data, len)); !st) return failed(st.error());
  return ok("true");
}

// A link (or a bare id): {"fileId","trackers":[...],"key"?}.
EMSCRIPTEN_KEEPALIVE int p2p_parse_link(const char* p, std::size_t n) {
  auto l = p2pcdn::parseLink(text(p, n));
  if (!l) return failed(l.error());
  json j{{"fileId", l->fileId.hex()}, {"trackers", l->trackers}, {"webSeeds", l->webSeeds}};
  if (l->key) j["key"] = p2pcdn::toHex(p2pcdn::ByteView(l->key->data(), l->key->size()));
  return ok(dump(j));
}

// The MIME type for a file name (as `p2pcdn add` picks it).
EMSCRIPTEN_KEEPALIVE int p2p_guess_mime(const char* p, std::size_t n) { return ok(p2pcdn::guessMimeType(text(p, n))); }

// {"fileId", "trackers":[url...]?, "key"?: 64 hex} as a link "p2pcdn:<id>?tr=...&k=...".
EMSCRIPTEN_KEEPALIVE int p2p_format_link(const char* p, std::size_t n) {
  auto j = json::parse(text(p, n), nullptr, false);
  const char* op = "format link";
  if (j.is_discarded() || !j.is_object() || !j.contains("fileId") || !j["fileId"].is_string()) {
    return failed(p2pcdn::Error(p2pcdn::Errc::kInvalidArgument, op, "needs {\"fileId\": hex}"));
  }
  auto id = p2pcdn::FileId::fromHex(j["fileId"].get<std::string>());
  if (!id) return failed(id.error());
  p2pcdn::Link link{*id, {}, std::nullopt, {}};
  if (j.contains("trackers")) {
    if (!j["trackers"].is_array()) return failed(p2pcdn::Error(p2pcdn::Errc::kInvalidArgument, op, "trackers: an array"));
    for (const auto& t : j["trackers"]) {
      if (!t.is_string()) return failed(p2pcdn::Error(p2pcdn::Errc::kInvalidArgument, op, "a tracker is a URL string"));
      link.trackers.push_back(t.get<std::string>());
    }
  }
  if (j.contains("key") && !j["key"].is_null()) {
    p2pcdn::EncryptionKey key{};
    if (!hexField(j, "key", key)) {
      return failed(p2pcdn::Error(p2pcdn::Errc::kInvalidArgument, op, "a key is 64 hex digits"));
    }
    link.key = key;
  }
  // Parsed back, so that a link this makes is one parseLink takes.
  const std::string text = p2pcdn::formatLink(link);
  if (auto back = p2pcdn::parseLink(text); !back) return failed(back.error());
  return ok(text);
}

// The AES-256-GCM chunk scheme (core/chunk_aead.hpp) for WebCrypto, which
// runs the cipher: {"key": hex (the link's k=), "salt": hex (the manifest's)}
// -> the file's AES key as hex.
EMSCRIPTEN_KEEPALIVE int p2p_file_key(const char* p, std::size_t n) {
  auto j = json::parse(text(p, n), nullptr, false);
  p2pcdn::EncryptionKey key{};
  p2pcdn::EncryptionInfo info;
  if (!hexField(j, "key", key) || !hexField(j, "salt", info.salt)) {
    return failed(p2pcdn::Error(p2pcdn::Errc::kInvalidArgument, "file key", "needs {key, salt}: 64 hex digits each"));
  }
  const auto k = p2pcdn::chunkFileKey(key, info);
  return ok(p2pcdn::toHex(p2pcdn::ByteView(k.data(), k.size())));
}
// {"salt": hex, "index", "plainLength"} -> {"nonce": hex, "aad": hex} of that chunk.
EMSCRIPTEN_KEEPALIVE int p2p_chunk_aead(const char* p, std::size_t n) {
  auto j = json::parse(text(p, n), nullptr, false);
  p2pcdn::EncryptionInfo info;
  const auto u32 = [&j](const char* k) {
    return j.is_object() && j.contains(k) && j[k].is_number_unsigned() && j[k].get<std::uint64_t>() <= 0xffffffffu;
  };
  if (!hexField(j, "salt", info.salt) || !u32("index") || !u32("plainLength")) {
    return failed(p2pcdn::Error(p2pcdn::Errc::kInvalidArgument, "chunk aead", "needs {salt, index, plainLength}"));
  }
  const auto index = j["index"].get<std::uint32_t>();
  const auto nonce = p2pcdn::chunkNonce(info, index);
  const auto aad = p2pcdn::chunkAad(info, index, j["plainLength"].get<std::uint32_t>());
  return ok(dump({{"nonce", p2pcdn::toHex(p2pcdn::ByteView(nonce.data(), nonce.size()))},
                  {"aad", p2pcdn::toHex(aad)}}));
}

}  // extern "C"
