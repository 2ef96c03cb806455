// libFuzzer target for the peer wire protocol v1 (src/wire/): the message
// decoder and the chunk/manifest assemblers, which take untrusted peer input.
//
// Every input is used three ways; a broken property abort()s:
//  1. One message: if decodeMessage accepts it, encodeMessage gives back
//     exactly the input (canonical form) and re-decoding gives an equal
//     message; a decoder told the chunk count never accepts what the plain
//     decoder refuses.
//  2. A stream of frames ([u16 length][message]...): each is decoded (with a
//     chunk count taken from the input) and every PIECE / MANIFEST_PART is fed
//     to one ChunkAssembler / ManifestAssembler, checked against a byte-level
//     model: accepted iff it fits and overlaps nothing; the received count;
//     completion; the reassembled bytes; the manifest id check.
//  3. The input as a chunk and as a manifest: split at a message size taken
//     from the input, every message within the size, reassembled in a
//     shuffled order, equal to the input.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "wire/fragment.hpp"
#include "wire/wire.hpp"

using namespace p2pcdn;
using namespace p2pcdn::wire;

namespace {

[[noreturn]] void die(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "wire_fuzz: property violated: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
  std::abort();
}

// Chunks the model tracks byte by byte stay small.
constexpr std::uint32_t kModelMaxChunk = 1u << 16;
constexpr std::uint32_t kModelMaxManifest = 1u << 16;

void checkOneMessage(ByteView in, std::optional<std::uint32_t> count) {
  auto m = decodeMessage(in);
  if (count) {
    auto withCount = decodeMessage(in, DecodeContext{count});
    if (withCount && !m) die("the chunk count made the decoder accept more");
    if (withCount && m && !(*withCount == *m)) die("the chunk count changed the decoded message");
  }
  if (!m) return;
  auto enc = encodeMessage(*m);
  if (!enc) die("a decoded message does not encode", enc.error().message());
  if (!std::equal(enc->begin(), enc->end(), in.begin(), in.end())) die("decodeMessage accepted a non-canonical encoding");
  if (enc->size() > kMaxMessageBytes) die("an encoding exceeds the message limit");
  auto again = decodeMessage(*enc);
  if (!again || !(*again == *m)) die("re-decoding changed the message");
  if (static_cast<std::uint8_t>(typeOf(*m)) != in[0]) die("typeOf disagrees with the type byte");
}

// Byte-level model of an assembler: which bytes arrived and what they were.
struct Model {
  std::uint32_t length = 0;
  std::vector<bool> have;
  Bytes bytes;
  std::uint32_t received = 0;

  explicit Model(std::uint32_t len) : length(len), have(len, false), bytes(len, 0) {}
  bool fits(std::uint32_t offset, std::size_t n) const {
    if (n == 0 || std::uint64_t{offset} + n > length) return false;
    for (std::size_t i = 0; i < n; ++i) {
      if (have[offset + i]) return false;
    }
    return true;
  }
  std::size_t runsWith(std::uint32_t offset, std::size_t n) const {
    std::size_t runs = 0;
    bool prev = false;
    for (std::uint32_t i = 0; i < length; ++i) {
      bool h = have[i] || (i >= offset && i < offset + n);
      if (h && !prev) ++runs;
      prev = h;
    }
    return runs;
  }
  void add(std::uint32_t offset, ByteView data) {
    for (std::size_t i = 0; i < data.size(); ++i) {
      have[offset + i] = true;
      bytes[offset + i] = data[i];
    }
    received += static_cast<std::uint32_t>(data.size());
  }
};

void feedPiece(std::optional<ChunkAssembler>& a, std::optional<Model>& model, const Piece& p) {
  if (!a) {
    if (p.chunkLength == 0 || p.chunkLength > kModelMaxChunk) return;
    auto created = ChunkAssembler::create(p.index, p.chunkLength);
    if (!created) die("ChunkAssembler::create refused a valid length", created.error().message());
    a.emplace(std::move(*created));
    model.emplace(p.chunkLength);
  }
  const bool match = p.index == a->index() && p.chunkLength == a->chunkLength();
  const bool fits = match && model->fits(p.offset, p.data.size());
  const bool fragmented = fits && model->runsWith(p.offset, p.data.size()) > kMaxAssemblyRanges;
  auto s = a->add(p);
  if (s.has_value() != (fits && !fragmented)) die("ChunkAssembler accepted or refused against the model", s ? "accepted" : s.error().message());
  if (s) model->add(p.offset, p.data);
  if (a->receivedBytes() != model->received) die("ChunkAssembler counts bytes wrongly");
  if (a->complete() != (model->received == model->length)) die("ChunkAssembler completion is wrong");
  if (a->complete()) {
    auto bytes = a->take();
    if (!bytes || *bytes != model->bytes) die("ChunkAssembler returned other bytes than it was given");
    a.reset();
    model.reset();
  }
}

void feedPart(std::optional<ManifestAssembler>& a, std::optional<Model>& model, std::uint32_t& requestId,
              const ManifestPart& p) {
  // Model only small manifests; larger totals are still given to a fresh
  // assembler below to check that it refuses them or accepts them safely.
  if (p.totalLength > kModelMaxManifest) {
    ManifestAssembler fresh(p.requestId);
    auto s = fresh.add(p);
    if (s.has_value() != (p.totalLength <= kMaxManifestBytes && !p.data.empty() &&
                          std::uint64_t{p.offset} + p.data.size() <= p.totalLength)) {
      die("ManifestAssembler misjudged a large part");
    }
    return;
  }
  if (!a) {
    a.emplace(p.requestId);
    requestId = p.requestId;
  }
  const bool known = model.has_value();
  const bool match = p.requestId == requestId && p.totalLength != 0 && (!known || p.totalLength == model->length);
  if (match && !known) model.emplace(p.totalLength);
  const bool fits = match && model->fits(p.offset, p.data.size());
  auto s = a->add(p);
  if (s.has_value() != fits) die("ManifestAssembler accepted or refused against the model", s ? "accepted" : s.error().message());
  if (!s) {
    if (match && !known) model.reset();  // the first part was refused: still no total
    return;
  }
  model->add(p.offset, p.data);
  if (a->receivedBytes() != model->received || a->totalLength() != model->length) die("ManifestAssembler counts wrongly");
  if (a->complete() != (model->received == model->length)) die("ManifestAssembler completion is wrong");
  if (a->complete()) {
    const FileId id = manifestId(model->bytes);
    auto m = a->finish(id);
    auto direct = decodeManifest(model->bytes);
    if (m.has_value() != direct.has_value()) die("finish() disagrees with decodeManifest on the same bytes");
    FileId other = id;
    other.bytes[0] ^= 1;
    auto wrong = a->finish(other);
    if (wrong || wrong.error().code() != Errc::kIntegrity) die("finish() accepted a manifest under another id");
    a.reset();
    model.reset();
  }
}

void checkFrames(ByteView in) {
  std::optional<std::uint32_t> count;
  if (!in.empty()) count = in[0] % 3 == 0 ? std::nullopt : std::optional<std::uint32_t>(in[0]);
  std::optional<ChunkAssembler> chunk;
  std::optional<Model> chunkModel;
  std::optional<ManifestAssembler> manifest;
  std::optional<Model> manifestModel;
  std::uint32_t manifestRequest = 0;
  std::size_t pos = in.empty() ? 0 : 1;
  while (in.size() - pos >= 2) {
    const std::size_t len = (std::size_t{in[pos]} << 8) | in[pos + 1];
    pos += 2;
    if (in.size() - pos < len) break;
    ByteView frame = in.subspan(pos, len);
    pos += len;
    auto m = decodeMessage(frame, DecodeContext{count});
    if (!m) continue;
    if (const auto* p = std::get_if<Piece>(&*m)) feedPiece(chunk, chunkModel, *p);
    if (const auto* p = std::get_if<ManifestPart>(&*m)) feedPart(manifest, manifestModel, manifestRequest, *p);
  }
}

void checkSplit(ByteView in) {
  if (in.size() < 2) return;
  const std::size_t maxMsg = kMinSplitMessageBytes + ((std::size_t{in[0]} << 8) | in[1]) % (kMaxMessageBytes - kMinSplitMessageBytes + 1);
  std::mt19937 rng(static_cast<std::uint32_t>(in.size() * 2654435761u + in[0]));

  auto msgs = splitChunk(1, 7, in, maxMsg);
  if (!msgs) die("splitChunk refused valid input", msgs.error().message());
  std::vector<Piece> pieces;
  for (const Bytes& b : *msgs) {
    if (b.size() > maxMsg) die("splitChunk made a message over the size");
    auto m = decodeMessage(b);
    if (!m || !std::holds_alternative<Piece>(*m)) die("splitChunk made an undecodable message");
    pieces.push_back(std::get<Piece>(*m));
  }
  std::shuffle(pieces.begin(), pieces.end(), rng);
  auto a = ChunkAssembler::create(7, static_cast<std::uint32_t>(in.size()));
  if (!a) die("ChunkAssembler::create failed");
  for (const Piece& p : pieces) {
    if (!a->add(p)) die("ChunkAssembler refused a piece of a clean split");
  }
  auto back = a->take();
  if (!back || !std::equal(back->begin(), back->end(), in.begin(), in.end())) die("split + reassemble changed the chunk");

  auto parts = splitManifest(2, in, maxMsg);
  if (!parts) die("splitManifest refused valid input", parts.error().message());
  std::vector<ManifestPart> ps;
  for (const Bytes& b : *parts) {
    if (b.size() > maxMsg) die("splitManifest made a message over the size");
    auto m = decodeMessage(b);
    if (!m || !std::holds_alternative<ManifestPart>(*m)) die("splitManifest made an undecodable message");
    ps.push_back(std::get<ManifestPart>(*m));
  }
  std::shuffle(ps.begin(), ps.end(), rng);
  ManifestAssembler ma(2);
  for (const ManifestPart& p : ps) {
    if (!ma.add(p)) die("ManifestAssembler refused a part of a clean split");
  }
  if (!ma.complete()) die("ManifestAssembler incomplete after every part");
  auto got = ma.finish(manifestId(in));
  if (got.has_value() != decodeManifest(in).has_value()) die("finish() disagrees with decodeManifest");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  if (!in.empty()) checkOneMessage(in, in.size() >= 5 ? std::optional<std::uint32_t>(in[in.size() - 1]) : std::nullopt);
  checkFrames(in);
  checkSplit(in);
  return 0;
}
