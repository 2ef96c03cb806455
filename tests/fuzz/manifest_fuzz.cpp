// libFuzzer target for the manifest and link decoders (untrusted input from
// peers, trackers, files and the command line).
//
// Each input is fed to decodeManifest, manifestFromJson and parseLink. Beyond
// "no crash, no sanitizer report", it checks the properties the rest of the
// system relies on, and abort()s if one fails:
//  - the binary form is canonical: if bytes decode, encodeManifest gives back
//    exactly those bytes (so the file id, their hash, is unique per manifest);
//  - anything either decoder accepts is valid: it re-encodes, the binary and
//    JSON forms convert into each other without loss;
//  - a parsed link formats to a link that parses to the same thing.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "p2pcdn/manifest.hpp"

using namespace p2pcdn;

namespace {

[[noreturn]] void die(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "manifest_fuzz: property violated: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
  std::abort();
}

// The JSON form of a valid manifest must convert back to the same manifest.
void checkJsonRoundTrip(const Manifest& m) {
  auto json = manifestToJson(m);
  if (!json) die("manifestToJson failed on a valid manifest", json.error().message());
  auto back = manifestFromJson(*json);
  if (!back) die("manifestFromJson rejected manifestToJson's output", back.error().message());
  if (*back != m) die("JSON round trip changed the manifest");
  auto pretty = manifestToJson(m, 2);
  if (!pretty) die("manifestToJson(indent 2) failed", pretty.error().message());
  auto back2 = manifestFromJson(*pretty);
  if (!back2 || *back2 != m) die("indented JSON round trip changed the manifest");
}

// Accessors a peer calls with indexes from the wire must stay in bounds.
void touchAccessors(const Manifest& m, ByteView data) {
  const ChunkIndex n = m.chunkCount();
  std::uint64_t total = 0;
  for (ChunkIndex i : {ChunkIndex{0}, n ? n - 1 : 0, n, n + 1, ~ChunkIndex{0}}) {
    (void)m.plainChunkLength(i);
    (void)m.storedChunkLength(i);
    (void)verifyChunk(m, i, data);
  }
  for (ChunkIndex i = 0; i < n && i < 64; ++i) total += m.plainChunkLength(i);
  (void)total;
  if (n > 0 && m.plainChunkLength(n - 1) == 0) die("the last chunk is empty");
  if (m.plainChunkLength(n) != 0) die("a chunk past the end has a length");
  (void)m.storedSize();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto m = decodeManifest(in)) {
    auto enc = encodeManifest(*m);
    if (!enc) die("a decoded manifest does not encode", enc.error().message());
    if (!std::equal(enc->begin(), enc->end(), in.begin(), in.end())) die("decodeManifest accepted a non-canonical encoding");
    auto id = manifestId(*m);
    if (!id || *id != manifestId(in)) die("manifestId(manifest) differs from the hash of its encoding");
    checkJsonRoundTrip(*m);
    touchAccessors(*m, in);
  }

  if (auto m = manifestFromJson(text)) {
    if (auto v = validateManifest(*m); !v) die("manifestFromJson returned an invalid manifest", v.error().message());
    auto enc = encodeManifest(*m);
    if (!enc) die("a manifest from JSON does not encode", enc.error().message());
    auto dec = decodeManifest(*enc);
    if (!dec) die("the encoding of a JSON manifest does not decode", dec.error().message());
    if (*dec != *m) die("binary round trip of a JSON manifest changed it");
    checkJsonRoundTrip(*m);
    touchAccessors(*m, in);
  }

  if (auto link = parseLink(text)) {
    std::string formatted = formatLink(*link);
    // Every link parseLink accepts must format to one it accepts again.
    {
      auto back = parseLink(formatted);
      if (!back) die("parseLink rejected formatLink's output", back.error().message() + " for " + formatted);
      if (back->fileId != link->fileId || back->trackers != link->trackers || back->key != link->key) {
        die("link round trip changed it", formatted);
      }
      if (formatLink(*back) != formatted) die("formatLink is not stable", formatted);
    }
  }
  return 0;
}
