// The web app's static files (GatewayOptions::appDir), for the gateway's
// loop: looked up by a checked appPath(), each file read once and shared by
// every response while its size and modification time stay the same (a
// rebuilt package is served at once), with an ETag from those, so a browser
// revalidates (Cache-Control: no-cache) and gets 304 when nothing changed.
// Only regular files under the folder (after resolving symlinks) are served.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "gateway/http.hpp"
#include "p2pcdn/result.hpp"

namespace p2pcdn::gateway {

struct AppFile {
  std::string body;
  std::string contentType;
  std::string etag;  // strong: "<size>-<mtime ns>"
};

class AppFiles {
 public:
  static constexpr std::size_t kMaxFileBytes = 16u << 20;   // one file
  static constexpr std::size_t kMaxCacheBytes = 64u << 20;  // all cached files (past it: read per request)

  explicit AppFiles(std::string dir);
  bool enabled() const { return !dir_.empty(); }
  // kNotFound for a missing file, a folder, anything outside the folder or
  // over kMaxFileBytes.
  Result<std::shared_ptr<const AppFile>> get(const std::string& rel);

 private:
  std::string dir_;  // resolved (realpath); "" when none
  struct Entry {
    std::shared_ptr<const AppFile> file;
    long long size = 0, mtime = 0;
  };
  std::map<std::string, Entry> cache_;
  std::size_t cachedBytes_ = 0;
};

// The response header for `f` at `rel` (200, or 304 when `fresh`): no-cache
// with its ETag, nosniff; the service worker (dist/sw.js) may control the
// whole site; the app's pages run under a CSP (scripts and workers from the
// origin only, wasm allowed; no plugins, no framing).
std::string appResponseHead(const AppFile& f, const std::string& rel, bool fresh, bool keepAlive);

}  // namespace p2pcdn::gateway
