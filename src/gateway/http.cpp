#include "gateway/http.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/hex.hpp"

namespace p2pcdn::gateway {
namespace {

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

bool isOws(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Decimal digits (at least one, nothing else), saturating at 2^64-1.
std::optional<std::uint64_t> parseDecimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!isDigit(c)) return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    v = v > (kU64Max - d) / 10 ? kU64Max : v * 10 + d;
  }
  return v;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hexValue(s[i + 1]), lo = hexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>((hi << 4) | lo));
    i += 2;
  }
  return out;
}

// A token character (RFC 7230 tchar).
bool isTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

Route bad(std::string why) {
  Route r;
  r.kind = RouteKind::kBadRequest;
  r.why = std::move(why);
  return r;
}

Route notFound(std::string why) {
  Route r;
  r.kind = RouteKind::kNotFound;
  r.why = std::move(why);
  return r;
}

}  // namespace

// ---- routing ----------------------------------------------------------------

Route route(std::string_view target) {
  if (target.empty() || target.front() != '/') return bad("the request target must be a path (origin form)");
  if (target.size() > kMaxTargetBytes) return bad("request target too long");
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return bad("control character or space in the request target");
  }
  std::string_view path = target, query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }

  Route r;
  // Query parameters: k=<key>; others are ignored.
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = param.find('=');
    std::string_view name = param.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view{} : param.substr(eq + 1);
    if (name == "k") {
      EncryptionKey key{};
      if (value.size() != 64 || !fromHex(value, key)) return bad("k= must be a 64-hex-digit key");
      r.key = key;
    }
  }

  if (path == "/") {
    r.kind = RouteKind::kIndex;
    return r;
  }
  if (path == "/files") {
    r.kind = RouteKind::kFilesPage;
    return r;
  }
  if (path == "/api/config") {
    r.kind = RouteKind::kConfig;
    return r;
  }
  if (path == "/metrics") {
    r.kind = RouteKind::kMetrics;
    return r;
  }
  if (path == "/api/files") {
    r.kind = RouteKind::kFilesJson;
    return r;
  }
  constexpr std::string_view kManifestPrefix = "/api/manifest/";
  if (path.substr(0, kManifestPrefix.size()) == kManifestPrefix) {
    auto id = Hash::fromHex(path.substr(kManifestPrefix.size()));
    if (path.size() != kManifestPrefix.size() + 64 || !id) return bad("not a file id: expected 64 hex digits");
    r.fileId = *id;
    r.kind = RouteKind::kManifest;
    return r;
  }
  constexpr std::string_view kFilePrefix = "/f/";
  if (path.substr(0, kFilePrefix.size()) != kFilePrefix) {
    auto rel = appPath(path.substr(1));
    if (!rel) return notFound("no such page");
    r.kind = RouteKind::kAppFile;
    r.name = std::move(*rel);
    return r;
  }
  std::string_view rest = path.substr(kFilePrefix.size());
  auto slash = rest.find('/');
  std::string_view idText = rest.substr(0, slash);
  std::string_view nameText = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  if (idText.size() != 64) return bad("not a file id: expected 64 hex digits after /f/");
  auto id = Hash::fromHex(idText);
  if (!id) return bad("not a file id: expected 64 hex digits after /f/");
  r.fileId = *id;
  if (nameText.find('/') != std::string_view::npos) return notFound("no such path: /f/<id>/<name> has one name segment");
  auto name = percentDecode(nameText);
  if (!name) return bad("bad percent-encoding in the file name");
  for (char c : *name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '/') return bad("control character or '/' in the file name");
  }
  r.name = std::move(*name);
  r.kind = RouteKind::kFile;
  return r;
}

std::optional<std::string> appPath(std::string_view whole) {
  if (whole.empty() || whole.size() > 200) return std::nullopt;
  std::string_view path = whole;
  std::size_t segments = 0;
  while (true) {
    const auto slash = path.find('/');
    const std::string_view seg = path.substr(0, slash);
    if (seg.empty() || seg.front() == '.' || ++segments > 4) return std::nullopt;
    for (char c : seg) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '.' || c == '_' || c == '-';
      if (!ok) return std::nullopt;
    }
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return std::string(whole);
}

std::string appContentType(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
      {".wasm", "application/wasm"}, {".json", "application/json"}, {".svg", "image/svg+xml"},
      {".png", "image/png"}, {".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"},
      {".ts", "text/plain; charset=utf-8"},
  };
  for (auto [ext, type] : kTypes) {
    if (path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext) return std::string(type);
  }
  return "application/octet-stream";
}

// ---- ranges -------------------------------------------------------------------

RangeResult parseRange(std::string_view header, std::uint64_t size) {
  RangeResult unsat{RangeOutcome::kUnsatisfiable, {}};
  header = trim(header);
  auto eq = header.find('=');
  if (eq == std::string_view::npos) return {};                 // not a ranges-specifier we know: ignore
  if (!iequals(trim(header.substr(0, eq)), "bytes")) return {};  // another range unit: ignore
  std::string_view set = header.substr(eq + 1);

  constexpr std::size_t kMaxRanges = 64;  // more is "an excessive request" (RFC 7233 4.4)
  std::size_t specs = 0, satisfiable = 0;
  ByteRange only;
  while (true) {
    auto comma = set.find(',');
    std::string_view spec = trim(set.substr(0, comma));
    if (!spec.empty()) {
      if (++specs > kMaxRanges) return unsat;
      auto dash = spec.find('-');
      if (dash == std::string_view::npos) return unsat;
      std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
      if (a.empty()) {
        // suffix-byte-range-spec: the last n bytes.
        auto n = parseDecimal(b);
        if (!n) return unsat;
        if (*n > 0 && size > 0) {
          ++satisfiable;
          only = ByteRange{size - std::min(*n, size), size - 1};
        }
      } else {
        auto first = parseDecimal(a);
        if (!first) return unsat;
        std::uint64_t last = kU64Max;
        if (!b.empty()) {
          auto l = parseDecimal(b);
          if (!l || *l < *first) return unsat;
          last = *l;
        }
        if (*first < size) {
          ++satisfiable;
          only = ByteRange{*first, std::min(last, size - 1)};
        }
      }
    }
    if (comma == std::string_view::npos) break;
    set = set.substr(comma + 1);
  }
  if (specs == 0 || satisfiable == 0) return unsat;
  if (specs > 1) return {};  // several ranges: the whole representation (documented above)
  return {RangeOutcome::kSatisfiable, only};
}

ChunkSpan chunksFor(const ByteRange& range, std::uint32_t chunkSize) {
  const std::uint64_t cs = chunkSize == 0 ? 1 : chunkSize;
  // Saturating: past 2^32 chunks (no manifest has them; the fuzzer's 13 TB
  // file of 1 KiB chunks did) the span stays ordered instead of wrapping.
  const auto index = [cs](std::uint64_t byte) {
    return static_cast<ChunkIndex>(std::min<std::uint64_t>(byte / cs, std::numeric_limits<ChunkIndex>::max()));
  };
  return ChunkSpan{index(range.first), index(range.last)};
}

// ---- validators and types -------------------------------------------------

std::string etagFor(const FileId& id) { return "\"" + id.hex() + "\""; }

bool ifNoneMatchHits(std::string_view header, std::string_view etag) {
  header = trim(header);
  if (header == "*") return true;
  auto opaque = [](std::string_view t) {
    t = trim(t);
    if (t.size() >= 2 && t[0] == 'W' && t[1] == '/') t.remove_prefix(2);
    return t;
  };
  const std::string_view mine = opaque(etag);
  while (true) {
    auto comma = header.find(',');
    if (opaque(header.substr(0, comma)) == mine && !mine.empty()) return true;
    if (comma == std::string_view::npos) return false;
    header = header.substr(comma + 1);
  }
}

bool ifRangeAllows(std::string_view header, std::string_view etag) {
  header = trim(header);
  return !etag.empty() && header == etag && header.substr(0, 2) != "W/";
}

std::string contentType(const Manifest& m) {
  const std::string_view t = m.mimeType;
  auto slash = t.find('/');
  bool ok = !t.empty() && t.size() <= kMaxMimeBytes && slash != std::string_view::npos && slash > 0 &&
            slash + 1 < t.size();
  if (ok) {
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (i != slash && !isTchar(t[i])) ok = false;
    }
  }
  return ok ? std::string(t) : std::string("application/octet-stream");
}

bool isMedia(std::string_view t) { return t.substr(0, 6) == "video/" || t.substr(0, 6) == "audio/"; }

std::string contentDisposition(std::string_view name) {
  std::string ascii;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    ascii.push_back(u < 0x20 || u >= 0x7f || c == '"' || c == '\\' ? '_' : c);
  }
  if (ascii.empty()) ascii = "file";
  return "inline; filename=\"" + ascii + "\"; filename*=UTF-8''" + percentEncode(name);
}

// ---- the response plan -------------------------------------------------------

ResponsePlan planFileResponse(const FileRequest& req, std::uint64_t size, std::string_view etag) {
  ResponsePlan p;
  if (req.ifNoneMatch && ifNoneMatchHits(*req.ifNoneMatch, etag)) {
    p.status = 304;
    return p;
  }
  RangeResult r;
  if (req.range && (!req.ifRange || ifRangeAllows(*req.ifRange, etag))) r = parseRange(*req.range, size);
  switch (r.outcome) {
    case RangeOutcome::kSatisfiable:
      p.status = 206;
      p.body = r.range;
      p.contentLength = r.range.length();
      p.contentRange = "bytes " + std::to_string(r.range.first) + "-" + std::to_string(r.range.last) + "/" +
                       std::to_string(size);
      break;
    case RangeOutcome::kUnsatisfiable:
      p.status = 416;
      p.contentRange = "bytes */" + std::to_string(size);
      break;
    case RangeOutcome::kNone:
      p.status = 200;
      if (size > 0) p.body = ByteRange{0, size - 1};
      p.contentLength = size;
      break;
  }
  return p;
}

// ---- text helpers ---------------------------------------------------------------

std::string htmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string percentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

// ---- Prometheus -------------------------------------------------------------------

void PromText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (char c : help) {
    if (c == '\\') out_ += "\\\\";
    else if (c == '\n') out_ += "\\n";
    else out_.push_back(c);
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PromText::sample(std::string_view name, double value,
                      std::initializer_list<std::pair<std::string_view, std::string_view>> labels) {
  out_ += name;
  if (labels.size() > 0) {
    out_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += k;
      out_ += "=\"";
      for (char c : v) {
        if (c == '\\') out_ += "\\\\";
        else if (c == '"') out_ += "\\\"";
        else if (c == '\n') out_ += "\\n";
        else out_.push_back(c);
      }
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  char buf[64];
  if (std::isnan(value)) {
    out_ += "NaN";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "+Inf" : "-Inf";
  } else if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    std::snprintf(buf, sizeof buf, "%.0f", value);
    out_ += buf;
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", value);
    out_ += buf;
  }
  out_ += '\n';
}

// ---- who may ask ----------------------------------------------------------------

namespace {
bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}
}  // namespace

namespace {
// a.b.c.d (each 0-255, no leading zeros) or [hex and colons].
bool isIpLiteral(std::string_view s) {
  if (s.size() >= 3 && s.front() == '[' && s.back() == ']') {
    return s.substr(1, s.size() - 2).find_first_not_of("0123456789abcdefABCDEF:.") == std::string_view::npos;
  }
  int parts = 0;
  while (true) {
    const auto dot = s.find('.');
    const std::string_view part = s.substr(0, dot);
    if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != std::string_view::npos) return false;
    if (part.size() > 1 && part[0] == '0') return false;
    if (std::stoi(std::string(part)) > 255) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts == 4;
}
}  // namespace

namespace {
bool sameSecret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}
}  // namespace

bool tokenPresented(std::optional<std::string_view> authorization, std::optional<std::string_view> cookie,
                    std::string_view token) {
  if (token.empty()) return true;
  bool ok = false;
  if (authorization) {
    constexpr std::string_view kBearer = "Bearer ";
    std::string_view a = *authorization;
    if (a.size() > kBearer.size() && a.substr(0, kBearer.size()) == kBearer) ok |= sameSecret(a.substr(kBearer.size()), token);
  }
  if (cookie) {  // "a=b; p2pcdn_token=T; c=d"
    std::string_view c = *cookie;
    while (!c.empty()) {
      const std::size_t semi = c.find(';');
      std::string_view pair = c.substr(0, semi);
      c = semi == std::string_view::npos ? std::string_view{} : c.substr(semi + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      constexpr std::string_view kName = "p2pcdn_token=";
      if (pair.substr(0, kName.size()) == kName) ok |= sameSecret(pair.substr(kName.size()), token);
    }
  }
  return ok;
}

bool hostAllowed(std::optional<std::string_view> host, const RequestPolicy& policy) {
  if (!host) return true;  // HTTP/1.0 without Host: no browser sends that
  std::string_view h = *host;
  // "name:port" exactly as an --allow-host entry (a reverse proxy's port).
  for (const std::string& n : policy.hosts) {
    if (n.find(':') != std::string::npos && n.front() != '[' && equalsNoCase(h, n)) return true;
  }
  std::string_view name = h;
  // "name:port" or "[v6]:port"; the port, when given, must be ours.
  const auto close = h.rfind(']');
  const auto colon = h.rfind(':');
  if (colon != std::string_view::npos && (close == std::string_view::npos || colon > close)) {
    const std::string_view port = h.substr(colon + 1);
    if (port != std::to_string(policy.port)) return false;
    name = h.substr(0, colon);
  }
  static constexpr std::string_view kLoopback[] = {"127.0.0.1", "localhost", "[::1]"};
  for (std::string_view n : kLoopback) {
    if (equalsNoCase(name, n)) return true;
  }
  // An address, not a name: DNS rebinding needs a name, so any IP literal
  // (a LAN address of a gateway listening on 0.0.0.0) is fine.
  if (isIpLiteral(name)) return true;
  for (const std::string& n : policy.hosts) {
    if (!n.empty() && equalsNoCase(name, n)) return true;  // "name", with our port or none
  }
  return false;
}

bool originAllowed(std::optional<std::string_view> origin, std::optional<std::string_view> host,
                   const RequestPolicy& policy) {
  if (!origin) return true;
  if (host && (equalsNoCase(*origin, "http://" + std::string(*host)) || equalsNoCase(*origin, "https://" + std::string(*host)))) {
    return true;  // the gateway's own pages (the web app)
  }
  return corsHeader(origin, policy).has_value();
}

bool fetchSiteAllowed(std::optional<std::string_view> site, std::optional<std::string_view> mode,
                      std::optional<std::string_view> origin, const RequestPolicy& policy) {
  if (!site || equalsNoCase(*site, "same-origin") || equalsNoCase(*site, "none")) return true;
  if (mode && equalsNoCase(*mode, "navigate")) return true;
  for (const std::string& o : policy.corsOrigins) {
    if (o == "*" || (origin && equalsNoCase(*origin, o))) return true;
  }
  return false;
}

std::optional<std::string> corsHeader(std::optional<std::string_view> origin, const RequestPolicy& policy) {
  for (const std::string& o : policy.corsOrigins) {
    if (o == "*") return std::string("*");  // the same for every request: cacheable as it is
    if (origin && equalsNoCase(*origin, o)) return std::string(*origin);
  }
  return std::nullopt;
}

}  // namespace p2pcdn::gateway
