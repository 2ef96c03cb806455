// The web app's static files (GatewayOptions::appDir): read from the folder
// on each request (a rebuilt package is served at once), bounded in size,
// with an ETag from size and modification time, so a browser revalidates
// (Cache-Control: no-cache) and gets 304 when nothing changed.
#pragma once

#include <cstddef>
#include <string>

#include "gateway/http.hpp"
#include "p2pcdn/result.hpp"

namespace p2pcdn::gateway {

struct AppFile {
  std::string body;
  std::string contentType;
  std::string etag;  // strong: "<size>-<mtime ns>"
};

inline constexpr std::size_t kMaxAppFileBytes = 64u << 20;

// `rel` is a checked appPath(); kNotFound for a missing file, a folder, or
// anything over kMaxAppFileBytes.
Result<AppFile> readAppFile(const std::string& dir, const std::string& rel);

}  // namespace p2pcdn::gateway
