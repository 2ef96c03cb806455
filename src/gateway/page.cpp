// The gateway's file table (/files), /api/files JSON and /metrics text (pure text generation).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "gateway/http.hpp"

namespace p2pcdn::gateway {
namespace {

std::string humanBytes(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string fileUrl(const IndexEntry& f) {
  std::string url = "/f/" + f.fileId.hex();
  if (!f.name.empty()) url += "/" + percentEncode(f.name);
  return url;
}

}  // namespace

std::string renderIndex(const std::vector<IndexEntry>& files) {
  std::string h =
      "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>p2pcdn gateway</title>\n"
      "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left}"
      "video,audio{max-width:640px;display:block}code{font-size:.85em}</style></head><body>\n"
      "<h1>p2pcdn gateway</h1>\n";
  if (files.empty()) {
    h += "<p>No files yet. Open <code>/f/&lt;file id&gt;</code> to fetch one from the swarm.</p>\n";
  } else {
    h += "<table>\n<tr><th>name</th><th>size</th><th>progress</th><th>peers</th><th>id</th></tr>\n";
    for (const auto& f : files) {
      const std::string url = htmlEscape(fileUrl(f));
      const std::string name = f.name.empty() ? std::string("(manifest not yet known)") : f.name;
      h += "<tr><td><a href=\"" + url + "\">" + htmlEscape(name) + "</a>";
      if (f.encrypted) h += f.keyKnown ? " (encrypted)" : " (encrypted: add ?k=KEY to the URL)";
      h += "</td><td>" + (f.haveManifest ? humanBytes(f.size) : std::string("?")) + "</td><td>";
      h += "<progress max=\"" + std::to_string(f.chunksTotal == 0 ? 1 : f.chunksTotal) + "\" value=\"" +
           std::to_string(f.chunksHave) + "\"></progress> " + std::to_string(f.chunksHave) + "/" +
           std::to_string(f.chunksTotal);
      h += "</td><td>" + std::to_string(f.peers) + "</td><td><code>" + f.fileId.hex().substr(0, 16) +
           "…</code></td></tr>\n";
      if (isMedia(f.contentType) && (!f.encrypted || f.keyKnown)) {
        const char* tag = f.contentType.substr(0, 6) == "video/" ? "video" : "audio";
        h += "<tr><td colspan=\"5\"><" + std::string(tag) + " controls preload=\"metadata\" src=\"" + url +
             "\"></" + tag + "></td></tr>\n";
      }
    }
    h += "</table>\n";
  }
  h += "<p><a href=\"/metrics\">metrics</a> · <a href=\"/api/files\">files as JSON</a></p>\n</body></html>\n";
  return h;
}

std::string renderMetrics(const MetricsSnapshot& m) {
  PromText p;
  auto one = [&p](const char* name, const char* type, const char* help, double v) {
    p.family(name, type, help);
    p.sample(name, v);
  };
  one("p2pcdn_gateway_connections", "gauge", "Open HTTP connections.", m.connections);
  one("p2pcdn_gateway_connections_accepted_total", "counter", "HTTP connections accepted.", m.accepted);
  one("p2pcdn_gateway_connections_rejected_total", "counter", "Connections closed at once: too many open.", m.rejected);
  p.family("p2pcdn_gateway_requests_total", "counter", "HTTP responses by status code.");
  for (const auto& [code, n] : m.byStatus) p.sample("p2pcdn_gateway_requests_total", n, {{"code", std::to_string(code)}});
  one("p2pcdn_gateway_response_bytes_total", "counter", "Response body bytes sent.", m.bytesSent);
  one("p2pcdn_gateway_waiting_responses", "gauge", "Responses waiting for a manifest or a chunk.", m.waiting);
  one("p2pcdn_gateway_window_moves_total", "counter", "Streaming window moves made for requests (seeks).", m.windowMoves);
  p.family("p2pcdn_gateway_first_byte_seconds", "summary", "File responses: request to first body byte.");
  p.sample("p2pcdn_gateway_first_byte_seconds_sum", m.firstByteSecondsSum);
  p.sample("p2pcdn_gateway_first_byte_seconds_count", m.firstByteCount);
  auto each = [&](const char* name, const char* type, const char* help, double MetricsFile::*field) {
    p.family(name, type, help);
    for (const auto& f : m.files) p.sample(name, f.*field, {{"file", f.id}});
  };
  each("p2pcdn_file_chunks", "gauge", "Chunks of the file.", &MetricsFile::chunks);
  each("p2pcdn_file_chunks_held", "gauge", "Verified chunks held.", &MetricsFile::held);
  each("p2pcdn_file_first_missing_chunk", "gauge", "Index of the first chunk not held (= chunks when complete).",
       &MetricsFile::firstMissing);
  each("p2pcdn_file_peers", "gauge", "Open peer links for the file.", &MetricsFile::peers);
  each("p2pcdn_file_downloaded_bytes_total", "counter", "Bytes received from peers.", &MetricsFile::downloaded);
  each("p2pcdn_file_uploaded_bytes_total", "counter", "Bytes sent to peers.", &MetricsFile::uploaded);
  return p.text();
}

std::string renderFilesJson(const std::vector<IndexEntry>& files) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& f : files) {
    a.push_back({{"fileId", f.fileId.hex()},
                 {"name", f.name},
                 {"contentType", f.contentType},
                 {"size", f.size},
                 {"haveManifest", f.haveManifest},
                 {"chunksHave", f.chunksHave},
                 {"chunksTotal", f.chunksTotal},
                 {"peers", f.peers},
                 {"encrypted", f.encrypted},
                 {"url", fileUrl(f)}});
  }
  // Names come from manifests (validated UTF-8); replace anything odd rather than throw.
  return a.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace p2pcdn::gateway
