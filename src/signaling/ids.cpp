#include "core/blake3.hpp"
#include "signaling/signaling.hpp"

namespace p2pcdn::signaling {

InfoHash swarmKey(const FileId& fileId) {
  Blake3 h = Blake3::deriveKey(kSwarmKeyContext);
  h.update(fileId.bytes);
  InfoHash key{};
  h.finalizeXof(key);  // a BLAKE3 output of 20 bytes is the prefix of the 32-byte one
  return key;
}

std::string toBinaryString(ByteView bytes) {
  std::string s;
  s.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    if (b < 0x80) {
      s.push_back(static_cast<char>(b));
    } else {
      s.push_back(static_cast<char>(0xc0 | (b >> 6)));
      s.push_back(static_cast<char>(0x80 | (b & 0x3f)));
    }
  }
  return s;
}

bool fromBinaryString(std::string_view utf8, std::span<std::uint8_t> out) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < utf8.size(); ++i) {
    const auto b0 = static_cast<std::uint8_t>(utf8[i]);
    std::uint8_t value;
    if (b0 < 0x80) {
      value = b0;
    } else if (b0 == 0xc2 || b0 == 0xc3) {  // U+0080..U+00FF; 0xc0/0xc1 would be overlong
      if (i + 1 >= utf8.size()) return false;
      const auto b1 = static_cast<std::uint8_t>(utf8[i + 1]);
      if ((b1 & 0xc0) != 0x80) return false;
      value = static_cast<std::uint8_t>(((b0 & 0x1f) << 6) | (b1 & 0x3f));
      ++i;
    } else {
      return false;  // a code point above U+00FF, or not UTF-8
    }
    if (n == out.size()) return false;
    out[n++] = value;
  }
  return n == out.size();
}

std::string_view actionName(Action a) {
  switch (a) {
    case Action::kAnnounce: return "announce";
    case Action::kScrape: return "scrape";
  }
  return "announce";
}

std::string_view eventName(Event e) {
  switch (e) {
    case Event::kNone: return "";
    case Event::kStarted: return "started";
    case Event::kStopped: return "stopped";
    case Event::kCompleted: return "completed";
    case Event::kUpdate: return "update";
    case Event::kPaused: return "paused";
  }
  return "";
}

}  // namespace p2pcdn::signaling
