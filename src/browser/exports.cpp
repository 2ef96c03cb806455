// The C ABI of the browser package (web/): the functions JavaScript calls.
// Plain exports, not embind: emscripten 3.1.6's embind builds its call stubs
// with `new Function`, which a page whose CSP forbids eval cannot run
// (docs/browser-peer-plan.md). Bytes and UTF-8 text cross as (pointer,
// length) in memory the JS side took with p2p_alloc. A call returns 0 or an
// Errc code; its text result (JSON, or {"code","message"} on failure) stays
// readable through p2p_result / p2p_result_size until the next call.
// Everything runs on the page's one thread.
#include <emscripten/emscripten.h>

#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "browser/abi.hpp"
#include "core/blake3.hpp"
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

extern "C" {

EMSCRIPTEN_KEEPALIVE std::uint8_t* p2p_alloc(std::size_t n) { return static_cast<std::uint8_t*>(std::malloc(n ? n : 1)); }
EMSCRIPTEN_KEEPALIVE void p2p_free(std::uint8_t* p) { std::free(p); }
EMSCRIPTEN_KEEPALIVE const char* p2p_result() { return result().data(); }
EMSCRIPTEN_KEEPALIVE std::size_t p2p_result_size() { return result().size(); }

// The ABI's version: the JS side refuses a .wasm of another one.
EMSCRIPTEN_KEEPALIVE int p2p_abi_version() { return 1; }

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
  json j{{"fileId", l->fileId.hex()}, {"trackers", l->trackers}};
  if (l->key) j["key"] = p2pcdn::toHex(p2pcdn::ByteView(l->key->data(), l->key->size()));
  return ok(dump(j));
}

}  // extern "C"
