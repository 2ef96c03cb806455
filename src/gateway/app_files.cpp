#include "gateway/app_files.hpp"

#include <sys/stat.h>

#include <fstream>

namespace p2pcdn::gateway {

Result<AppFile> readAppFile(const std::string& dir, const std::string& rel) {
  if (!appPath(rel)) return fail(Errc::kNotFound, "app", "no such page");
  const std::string path = dir + "/" + rel;
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return fail(Errc::kNotFound, "app", "no such page");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxAppFileBytes) return fail(Errc::kNotFound, "app", "file too large to serve");
  std::ifstream in(path, std::ios::binary);
  AppFile f;
  f.body.resize(static_cast<std::size_t>(st.st_size));
  if (!in.read(f.body.data(), static_cast<std::streamsize>(f.body.size()))) {
    return fail(Errc::kNotFound, "app", "cannot read " + rel);
  }
  f.contentType = appContentType(rel);
  const auto mtime = static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000LL + st.st_mtim.tv_nsec;
  f.etag = "\"" + std::to_string(st.st_size) + "-" + std::to_string(mtime) + "\"";
  return f;
}

}  // namespace p2pcdn::gateway
