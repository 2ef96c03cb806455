// The HTTP answers of the page's service-worker path (web/src/sw.js,
// web/src/swserve.js): the native gateway's own decisions (src/gateway/http.hpp:
// Range per RFC 7233, If-Range, If-None-Match, ETag, Content-Type,
// Content-Disposition), compiled to wasm, so that a <video src> served by a
// page's peer answers exactly as `p2pcdn serve` does.
#include <emscripten/emscripten.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "browser/abi.hpp"
#include "gateway/http.hpp"
#include "p2pcdn/manifest.hpp"

using namespace p2pcdn::browser::abi;
using nlohmann::json;

extern "C" {

// {"manifest": {...}, "method": "GET"|"HEAD", "range"?, "ifRange"?, "ifNoneMatch"?: header values}
// -> {"status", "contentLength", "contentRange", "first"?, "last"?: the body's bytes (inclusive),
//     "headers": {name: value}} for the file's plaintext.
EMSCRIPTEN_KEEPALIVE int p2p_plan_response(const char* p, std::size_t n) {
  namespace gw = p2pcdn::gateway;
  const char* op = "plan response";
  auto j = json::parse(text(p, n), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("manifest")) {
    return failed(p2pcdn::Error(p2pcdn::Errc::kInvalidArgument, op, "needs {\"manifest\": {...}}"));
  }
  auto m = p2pcdn::manifestFromJson(j["manifest"].dump());
  if (!m) return failed(m.error());
  auto id = p2pcdn::manifestId(*m);
  if (!id) return failed(id.error());
  // Header values stay alive (in these strings) while the plan reads their views.
  auto header = [&](const char* key) -> std::optional<std::string> {
    if (!j.contains(key) || !j[key].is_string()) return std::nullopt;
    return j[key].get<std::string>();
  };
  const auto range = header("range"), ifRange = header("ifRange"), ifNoneMatch = header("ifNoneMatch");
  gw::FileRequest req;
  req.head = j.contains("method") && j["method"].is_string() && j["method"].get<std::string>() == "HEAD";
  if (range) req.range = *range;
  if (ifRange) req.ifRange = *ifRange;
  if (ifNoneMatch) req.ifNoneMatch = *ifNoneMatch;
  const std::string etag = gw::etagFor(*id);
  const gw::ResponsePlan plan = gw::planFileResponse(req, m->size, etag);
  json headers{{"ETag", etag}, {"Accept-Ranges", "bytes"}, {"Cache-Control", "no-store"}};
  if (plan.status != 304) {
    headers["Content-Type"] = gw::contentType(*m);
    headers["Content-Disposition"] = gw::contentDisposition(m->name);
    headers["Content-Length"] = std::to_string(plan.contentLength);
    headers["X-Content-Type-Options"] = "nosniff";
    // The file comes from peers: never let it run as a page of this origin (as the gateway says too).
    headers["Content-Security-Policy"] = "sandbox";
  }
  if (!plan.contentRange.empty()) headers["Content-Range"] = plan.contentRange;
  json out{{"status", plan.status}, {"contentLength", plan.contentLength}, {"contentRange", plan.contentRange},
           {"headers", std::move(headers)}};
  if (plan.body) {
    out["first"] = plan.body->first;
    out["last"] = plan.body->last;
  }
  return ok(dump(out));
}

}  // extern "C"
