// Shareable links: p2pcdn:<id>?tr=<url>&ws=<url>&k=<key>. Grammar: docs/protocol.md.
#include <algorithm>

#include "core/hex.hpp"
#include "p2pcdn/manifest.hpp"

namespace p2pcdn {
namespace {

constexpr std::string_view kScheme = "p2pcdn:";
// 16 trackers of up to 512 bytes and 8 web seeds of up to 2048, fully
// percent-encoded, fit: every link formatted from fields parseLink accepts
// parses again.
constexpr std::size_t kMaxLinkBytes = 81920;
constexpr std::size_t kMaxTrackerBytes = 512;
constexpr std::size_t kMaxTrackers = 16;
constexpr std::size_t kMaxWebSeedBytes = 2048;  // swarm::OriginSource's limits
constexpr std::size_t kMaxWebSeeds = 8;

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~' || c == ':' || c == '/';
}

std::string percentEncode(std::string_view s) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (unreserved(c)) {
      out += ch;
    } else {
      out += '%';
      out += kDigits[c >> 4];
      out += kDigits[c & 0xf];
    }
  }
  return out;
}

bool percentDecode(std::string_view s, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      std::uint8_t b = 0;
      if (i + 2 >= s.size()) return false;
      if (!fromHex(s.substr(i + 1, 2), std::span<std::uint8_t>(&b, 1))) return false;
      out += static_cast<char>(b);
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return true;
}

}  // namespace

std::string formatLink(const Link& link) {
  std::string s(kScheme);
  s += link.fileId.hex();
  char sep = '?';
  for (const std::string& t : link.trackers) {
    s += sep;
    s += "tr=";
    s += percentEncode(t);
    sep = '&';
  }
  for (const std::string& w : link.webSeeds) {
    s += sep;
    s += "ws=";
    s += percentEncode(w);
    sep = '&';
  }
  if (link.key) {
    s += sep;
    s += "k=";
    s += toHex(*link.key);
  }
  return s;
}

Result<Link> parseLink(std::string_view text) {
  const char* op = "parse link";
  if (text.size() > kMaxLinkBytes) return fail(Errc::kTooLarge, op, "link longer than 81920 bytes");
  std::string_view rest = text;
  if (rest.size() >= kScheme.size() &&
      std::equal(kScheme.begin(), kScheme.end(), rest.begin(),
                 [](char a, char b) { return a == (b >= 'A' && b <= 'Z' ? static_cast<char>(b - 'A' + 'a') : b); })) {
    rest.remove_prefix(kScheme.size());
    if (rest.starts_with("//")) rest.remove_prefix(2);
  }
  std::string_view idPart = rest.substr(0, rest.find('?'));
  Link link;
  auto id = Hash::fromHex(idPart);
  if (!id) return fail(Errc::kMalformed, op, "expected p2pcdn:<64 hex file id>");
  link.fileId = *id;
  if (idPart.size() == rest.size()) return link;

  std::string_view query = rest.substr(idPart.size() + 1);
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (param.empty()) continue;
    std::size_t eq = param.find('=');
    std::string_view key = param.substr(0, eq);
    std::string value;
    if (!percentDecode(eq == std::string_view::npos ? std::string_view{} : param.substr(eq + 1), value)) {
      return fail(Errc::kMalformed, op, "bad percent-encoding in parameter " + std::string(key));
    }
    if (key == "tr") {
      if (value.empty()) return fail(Errc::kMalformed, op, "empty tracker");
      if (value.size() > kMaxTrackerBytes) return fail(Errc::kTooLarge, op, "tracker URL longer than 512 bytes");
      if (link.trackers.size() >= kMaxTrackers) return fail(Errc::kTooLarge, op, "more than 16 trackers");
      link.trackers.push_back(std::move(value));
    } else if (key == "ws") {
      if (!(value.starts_with("http://") || value.starts_with("https://")) || value.size() < 9) {
        return fail(Errc::kMalformed, op, "a web seed (ws=) is an http:// or https:// URL");
      }
      if (value.size() > kMaxWebSeedBytes) return fail(Errc::kTooLarge, op, "web seed URL longer than 2048 bytes");
      if (link.webSeeds.size() >= kMaxWebSeeds) return fail(Errc::kTooLarge, op, "more than 8 web seeds");
      link.webSeeds.push_back(std::move(value));
    } else if (key == "k") {
      std::array<std::uint8_t, 32> k{};
      if (!fromHex(value, k)) return fail(Errc::kMalformed, op, "key must be 64 hex characters");
      link.key = k;
    }  // unknown parameters are ignored for forward compatibility
  }
  return link;
}

}  // namespace p2pcdn
