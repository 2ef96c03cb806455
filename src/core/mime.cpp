// The MIME type a manifest gets from a file's name (its extension), where the
// publisher gave none: the native `add` and the browser's upload agree, so
// the same file gets the same id from both.
#include <algorithm>
#include <cctype>
#include <string>

#include "p2pcdn/manifest.hpp"

namespace p2pcdn {

std::string guessMimeType(std::string_view fileName) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {"mp4", "video/mp4"},        {"m4v", "video/mp4"},         {"webm", "video/webm"},
      {"mkv", "video/x-matroska"}, {"mov", "video/quicktime"},   {"ogv", "video/ogg"},
      {"ts", "video/mp2t"},        {"mp3", "audio/mpeg"},        {"m4a", "audio/mp4"},
      {"ogg", "audio/ogg"},        {"opus", "audio/opus"},       {"flac", "audio/flac"},
      {"wav", "audio/wav"},        {"txt", "text/plain"},        {"html", "text/html"},
      {"htm", "text/html"},        {"css", "text/css"},          {"js", "text/javascript"},
      {"json", "application/json"}, {"pdf", "application/pdf"},  {"zip", "application/zip"},
      {"gz", "application/gzip"},  {"tar", "application/x-tar"}, {"png", "image/png"},
      {"jpg", "image/jpeg"},       {"jpeg", "image/jpeg"},       {"gif", "image/gif"},
      {"webp", "image/webp"},      {"svg", "image/svg+xml"},     {"iso", "application/x-iso9660-image"},
  };
  auto dot = fileName.rfind('.');
  if (dot != std::string_view::npos) {
    std::string ext(fileName.substr(dot + 1));
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (auto [e, t] : kTypes) {
      if (e == ext) return std::string(t);
    }
  }
  return "application/octet-stream";
}

}  // namespace p2pcdn
