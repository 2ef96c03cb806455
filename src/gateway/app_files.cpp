#include "gateway/app_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/beast/http.hpp>
#include <climits>
#include <cstdlib>
#include <sstream>

namespace p2pcdn::gateway {
namespace {

std::string resolved(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : std::string();
}

Unexpected notFound(std::string why = "no such page") { return fail(Errc::kNotFound, "app", std::move(why)); }

// Media and images also from blob: (a downloaded file played in the page);
// connections anywhere (the tracker's WebSocket, web seeds).
constexpr const char* kAppCsp =
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss: http: https:; worker-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

}  // namespace

AppFiles::AppFiles(std::string dir) : dir_(dir.empty() ? std::string() : resolved(dir)) {}

Result<std::shared_ptr<const AppFile>> AppFiles::get(const std::string& rel) {
  if (dir_.empty() || !appPath(rel)) return notFound();
  // Symlinks resolved: what is served must lie under the folder.
  const std::string path = resolved(dir_ + "/" + rel);
  if (path.size() <= dir_.size() + 1 || path.compare(0, dir_.size() + 1, dir_ + "/") != 0) return notFound();
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return notFound();
  const long long mtime = static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000LL + st.st_mtim.tv_nsec;
  if (auto it = cache_.find(rel); it != cache_.end()) {
    if (it->second.size == st.st_size && it->second.mtime == mtime) return it->second.file;
    cachedBytes_ -= it->second.file->body.size();
    cache_.erase(it);
  }
  if (static_cast<std::uint64_t>(st.st_size) > kMaxFileBytes) return notFound("file too large to serve");
  // Non-blocking open: a FIFO swapped in after the stat cannot hold the loop.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return notFound();
  struct stat fst{};
  auto file = std::make_shared<AppFile>();
  bool ok = ::fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) && fst.st_size == st.st_size;
  if (ok) {
    file->body.resize(static_cast<std::size_t>(fst.st_size));
    std::size_t got = 0;
    while (ok && got < file->body.size()) {
      const ssize_t n = ::read(fd, file->body.data() + got, file->body.size() - got);
      ok = n > 0;
      if (ok) got += static_cast<std::size_t>(n);
    }
  }
  ::close(fd);
  if (!ok) return notFound("cannot read " + rel);
  file->contentType = appContentType(rel);
  file->etag = "\"" + std::to_string(st.st_size) + "-" + std::to_string(mtime) + "\"";
  if (cachedBytes_ + file->body.size() <= kMaxCacheBytes) {
    cachedBytes_ += file->body.size();
    cache_[rel] = Entry{file, static_cast<long long>(st.st_size), mtime};
  }
  return std::shared_ptr<const AppFile>(std::move(file));
}

std::string appResponseHead(const AppFile& f, const std::string& rel, bool fresh, bool keepAlive) {
  namespace http = boost::beast::http;
  http::response<http::empty_body> res{fresh ? http::status::not_modified : http::status::ok, 11};
  res.set(http::field::server, "p2pcdn-gateway");
  res.set(http::field::etag, f.etag);
  res.set(http::field::cache_control, "no-cache");
  if (!fresh) {
    res.set(http::field::content_type, f.contentType);
    res.set("X-Content-Type-Options", "nosniff");
    if (rel == "dist/sw.js") res.set("Service-Worker-Allowed", "/");
    if (f.contentType.rfind("text/html", 0) == 0) res.set("Content-Security-Policy", kAppCsp);
    res.content_length(f.body.size());
  }
  res.keep_alive(keepAlive);
  std::ostringstream os;
  os << res.base();
  return os.str();
}

}  // namespace p2pcdn::gateway
