// The HTTP gateway's request path without sockets: raw bytes go through
// Beast's request parser with the gateway's limits (as in server.cpp), and
// what parses goes through route() and planFileResponse() for a file size
// taken from the input. Also the text helpers with the input as a name.
// Checks the invariants the server relies on: a 206 range lies inside the
// file and matches Content-Length and Content-Range; chunk spans are ordered;
// nothing that reaches a header (Content-Type, Content-Disposition) carries
// CR, LF or NUL; escaped HTML has no raw markup.
#include <algorithm>
#include <boost/beast/core/flat_buffer.hpp>
#include <cctype>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gateway/http.hpp"

namespace http = boost::beast::http;
using namespace p2pcdn;
using namespace p2pcdn::gateway;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

bool headerSafe(const std::string& s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

void checkPlan(const FileRequest& req, std::uint64_t size) {
  const std::string etag = "\"" + std::string(64, 'a') + "\"";
  const ResponsePlan p = planFileResponse(req, size, etag);
  switch (p.status) {
    case 200:
      require(p.contentLength == size);
      require(size == 0 ? !p.body : (p.body && p.body->first == 0 && p.body->last == size - 1));
      break;
    case 206:
      require(p.body && p.body->first <= p.body->last && p.body->last < size);
      require(p.contentLength == p.body->length());
      require(p.contentRange == "bytes " + std::to_string(p.body->first) + "-" + std::to_string(p.body->last) + "/" +
                                    std::to_string(size));
      {
        auto span = chunksFor(*p.body, 1024);
        require(span.first <= span.last);
      }
      break;
    case 416:
      require(!p.body && p.contentRange == "bytes */" + std::to_string(size));
      break;
    case 304:
      require(!p.body);
      break;
    default:
      std::abort();
  }
}

std::optional<std::string_view> field(const http::request<http::empty_body>& req, http::field f) {
  auto it = req.find(f);
  if (it == req.end()) return std::nullopt;
  return std::string_view(it->value().data(), it->value().size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 8) return 0;
  std::uint64_t fileSize = 0;
  std::memcpy(&fileSize, data, 8);
  // Mostly small sizes (edge cases around 0), sometimes anything.
  if ((fileSize & 0xff) < 200) fileSize = (fileSize >> 8) % 5000;
  const std::string_view text(reinterpret_cast<const char*>(data + 8), size - 8);

  // 1. A whole request through Beast's parser, as the server reads it.
  http::request_parser<http::empty_body> parser;
  parser.header_limit(16 * 1024);
  parser.eager(true);
  boost::system::error_code ec;
  parser.put(boost::asio::buffer(text.data(), text.size()), ec);
  if (!ec && parser.is_header_done()) {
    const auto& req = parser.get();
    // Who may ask: any Host and Origin; a CORS header only ever echoes an allowed origin.
    RequestPolicy policy;
    policy.port = static_cast<std::uint16_t>(fileSize);
    policy.hosts = {"cdn.example"};
    policy.corsOrigins = {"https://app.example"};
    const auto host = field(req, http::field::host);
    const auto origin = field(req, http::field::origin);
    (void)hostAllowed(host, policy);
    (void)originAllowed(origin, host, policy);
    if (auto cors = corsHeader(origin, policy)) require(origin && cors->size() == origin->size());
    const Route r = route(std::string_view(req.target().data(), req.target().size()));
    if (r.kind == RouteKind::kFile) {
      require(r.fileId.hex().size() == 64);
      for (char c : r.name) require(c != '/' && static_cast<unsigned char>(c) >= 0x20);
      checkPlan(FileRequest{req.method() == http::verb::head, field(req, http::field::range),
                            field(req, http::field::if_range), field(req, http::field::if_none_match)},
                fileSize);
    }
  }

  // 2. The pieces directly: the text as a target, as a Range header, as a name.
  (void)route(text);
  // A web-app path names nothing outside the app's folder.
  if (auto app = appPath(text)) {
    require(*app == text && app->size() <= 200 && app->front() != '/' && app->back() != '/');
    std::string_view rest = *app;
    while (!rest.empty()) {
      const auto seg = rest.substr(0, rest.find('/'));
      require(!seg.empty() && seg.front() != '.');
      for (char c : seg) require(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
      rest.remove_prefix(std::min(rest.size(), seg.size() + 1));
    }
  }
  const RangeResult rr = parseRange(text, fileSize);
  if (rr.outcome == RangeOutcome::kSatisfiable) require(rr.range.first <= rr.range.last && rr.range.last < fileSize);
  checkPlan(FileRequest{false, text, std::nullopt, std::nullopt}, fileSize);
  checkPlan(FileRequest{false, "bytes=0-", text, text}, fileSize);

  Manifest m;
  m.name = std::string(text.substr(0, 300));
  m.mimeType = std::string(text);
  require(headerSafe(contentType(m)));
  require(headerSafe(contentDisposition(m.name)));
  const std::string escaped = htmlEscape(text);
  require(escaped.find('<') == std::string::npos && escaped.find('"') == std::string::npos);
  const std::string enc = percentEncode(text);
  require(headerSafe(enc) && enc.find(' ') == std::string::npos);
  PromText p;
  p.family("x", "gauge", text);
  p.sample("x", static_cast<double>(fileSize), {{"file", text}});
  // One HELP line, one TYPE line, one sample line: no raw newline escaped the labels or help.
  std::size_t lines = 0;
  for (char c : p.text()) lines += c == '\n' ? 1u : 0u;
  require(lines == 3);
  return 0;
}
