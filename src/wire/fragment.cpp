// Splitting chunks and manifests into data messages, and reassembling them.
#include "wire/fragment.hpp"

#include <algorithm>
#include <cstring>
#include <string>

namespace p2pcdn::wire {
namespace {

using Ranges = std::vector<std::pair<std::uint32_t, std::uint32_t>>;

std::string num(std::uint64_t v) { return std::to_string(v); }

Status checkMessageSize(const char* op, std::size_t maxMessageBytes) {
  if (maxMessageBytes < kMinSplitMessageBytes || maxMessageBytes > kMaxMessageBytes) {
    return fail(Errc::kInvalidArgument, op,
                "message size " + num(maxMessageBytes) + " outside " + num(kMinSplitMessageBytes) + ".." +
                    num(kMaxMessageBytes));
  }
  return {};
}

// Adds [begin, end) to sorted, disjoint, non-adjacent ranges, merging with
// neighbours it touches. Fails, leaving the ranges unchanged, on an overlap or
// when a new disjoint range would exceed kMaxAssemblyRanges.
Status addRange(Ranges& rs, std::uint32_t begin, std::uint32_t end, const char* op, const char* what) {
  auto next = std::lower_bound(rs.begin(), rs.end(), begin,
                               [](const auto& r, std::uint32_t v) { return r.first < v; });
  const bool overlapsNext = next != rs.end() && next->first < end;
  const bool overlapsPrev = next != rs.begin() && std::prev(next)->second > begin;
  if (overlapsNext || overlapsPrev) {
    return fail(Errc::kMalformed, op,
                std::string(what) + " [" + num(begin) + ", " + num(end) + ") overlaps bytes already received");
  }
  const bool joinPrev = next != rs.begin() && std::prev(next)->second == begin;
  const bool joinNext = next != rs.end() && next->first == end;
  if (joinPrev && joinNext) {
    std::prev(next)->second = next->second;
    rs.erase(next);
  } else if (joinPrev) {
    std::prev(next)->second = end;
  } else if (joinNext) {
    next->first = begin;
  } else {
    if (rs.size() >= kMaxAssemblyRanges) {
      return fail(Errc::kTooLarge, op,
                  std::string(what) + "s split into more than " + num(kMaxAssemblyRanges) + " separate ranges");
    }
    rs.insert(next, {begin, end});
  }
  return {};
}

}  // namespace

// ---- Chunks ----

Result<std::vector<Piece>> planPieces(std::uint32_t requestId, ChunkIndex index, ByteView chunk,
                                      std::uint32_t offset, std::uint32_t length, std::size_t maxMessageBytes) {
  const char* op = "split chunk";
  P2PCDN_TRY(checkMessageSize(op, maxMessageBytes));
  if (index >= kMaxChunkCount) return fail(Errc::kInvalidArgument, op, "chunk index " + num(index) + " beyond the limit");
  if (chunk.empty()) return fail(Errc::kInvalidArgument, op, "empty chunk");
  if (chunk.size() > kMaxStoredChunkBytes) {
    return fail(Errc::kTooLarge, op, "chunk of " + num(chunk.size()) + " bytes (limit " + num(kMaxStoredChunkBytes) + ")");
  }
  if (length == 0 || std::uint64_t{offset} + length > chunk.size()) {
    return fail(Errc::kInvalidArgument, op,
                "range [" + num(offset) + ", +" + num(length) + ") is empty or outside a chunk of " +
                    num(chunk.size()) + " bytes");
  }
  const std::size_t payload = maxPiecePayload(maxMessageBytes);
  std::vector<Piece> out;
  out.reserve((length + payload - 1) / payload);
  for (std::size_t pos = offset, end = std::size_t{offset} + length; pos < end;) {
    const std::size_t n = std::min(payload, end - pos);
    out.push_back(Piece{requestId, index, static_cast<std::uint32_t>(chunk.size()), static_cast<std::uint32_t>(pos),
                        chunk.subspan(pos, n)});
    pos += n;
  }
  return out;
}

Result<std::vector<Bytes>> splitChunk(std::uint32_t requestId, ChunkIndex index, ByteView chunk,
                                      std::size_t maxMessageBytes) {
  if (chunk.size() > kMaxStoredChunkBytes) {
    return fail(Errc::kTooLarge, "split chunk", "chunk of " + num(chunk.size()) + " bytes");
  }
  auto plan = planPieces(requestId, index, chunk, 0, static_cast<std::uint32_t>(chunk.size()), maxMessageBytes);
  if (!plan) return fail(plan.error());
  std::vector<Bytes> out;
  out.reserve(plan->size());
  for (const Piece& p : *plan) {
    auto msg = encode(p);
    if (!msg) return fail(msg.error());
    out.push_back(std::move(*msg));
  }
  return out;
}

Result<ChunkAssembler> ChunkAssembler::create(ChunkIndex index, std::uint32_t chunkLength) {
  if (chunkLength == 0 || chunkLength > kMaxStoredChunkBytes) {
    return fail(Errc::kInvalidArgument, "assemble chunk",
                "chunk length " + num(chunkLength) + " outside 1.." + num(kMaxStoredChunkBytes));
  }
  return ChunkAssembler(index, chunkLength);
}

Result<ChunkAssembler> ChunkAssembler::forManifest(const Manifest& m, ChunkIndex index) {
  if (index >= m.chunkCount()) {
    return fail(Errc::kInvalidArgument, "assemble chunk",
                "chunk index " + num(index) + " out of range (" + num(m.chunkCount()) + " chunks)");
  }
  return create(index, m.storedChunkLength(index));
}

Status ChunkAssembler::add(const Piece& p) {
  const char* op = "assemble chunk";
  if (p.index != index_) {
    return fail(Errc::kMalformed, op, "piece of chunk " + num(p.index) + " given to chunk " + num(index_));
  }
  if (p.chunkLength != length_) {
    return fail(Errc::kMalformed, op,
                "piece says chunk " + num(index_) + " has " + num(p.chunkLength) + " bytes, expected " + num(length_));
  }
  if (p.data.empty()) return fail(Errc::kMalformed, op, "empty piece");
  if (std::uint64_t{p.offset} + p.data.size() > length_) {
    return fail(Errc::kMalformed, op,
                "piece [" + num(p.offset) + ", +" + num(p.data.size()) + ") outside a chunk of " + num(length_) +
                    " bytes");
  }
  const auto end = static_cast<std::uint32_t>(p.offset + p.data.size());
  P2PCDN_TRY(addRange(ranges_, p.offset, end, op, "piece"));
  if (data_.size() != length_) data_.resize(length_);
  std::memcpy(data_.data() + p.offset, p.data.data(), p.data.size());
  received_ += static_cast<std::uint32_t>(p.data.size());
  return {};
}

Result<Bytes> ChunkAssembler::take() {
  if (!complete()) {
    return fail(Errc::kInvalidArgument, "assemble chunk",
                "chunk " + num(index_) + " has " + num(received_) + " of " + num(length_) + " bytes");
  }
  Bytes out = std::move(data_);
  data_ = {};
  ranges_.clear();
  received_ = 0;
  return out;
}

// ---- Manifests ----

Result<std::vector<Bytes>> splitManifest(std::uint32_t requestId, ByteView manifestBytes, std::size_t maxMessageBytes) {
  const char* op = "split manifest";
  P2PCDN_TRY(checkMessageSize(op, maxMessageBytes));
  if (manifestBytes.empty()) return fail(Errc::kInvalidArgument, op, "empty manifest");
  if (manifestBytes.size() > kMaxManifestBytes) {
    return fail(Errc::kTooLarge, op, "manifest of " + num(manifestBytes.size()) + " bytes");
  }
  const std::size_t payload = maxMessageBytes - kManifestPartHeaderBytes;
  std::vector<Bytes> out;
  out.reserve((manifestBytes.size() + payload - 1) / payload);
  for (std::size_t pos = 0; pos < manifestBytes.size();) {
    const std::size_t n = std::min(payload, manifestBytes.size() - pos);
    auto msg = encode(ManifestPart{requestId, static_cast<std::uint32_t>(manifestBytes.size()),
                                   static_cast<std::uint32_t>(pos), manifestBytes.subspan(pos, n)});
    if (!msg) return fail(msg.error());
    out.push_back(std::move(*msg));
    pos += n;
  }
  return out;
}

Status ManifestAssembler::add(const ManifestPart& p) {
  const char* op = "assemble manifest";
  if (p.requestId != requestId_) {
    return fail(Errc::kMalformed, op, "part of request " + num(p.requestId) + ", expected " + num(requestId_));
  }
  if (p.totalLength == 0) return fail(Errc::kMalformed, op, "empty manifest");
  if (p.totalLength > kMaxManifestBytes) {
    return fail(Errc::kTooLarge, op, "manifest of " + num(p.totalLength) + " bytes (limit " + num(kMaxManifestBytes) + ")");
  }
  if (total_ != 0 && p.totalLength != total_) {
    return fail(Errc::kMalformed, op, "part says " + num(p.totalLength) + " bytes, earlier parts " + num(total_));
  }
  if (p.data.empty()) return fail(Errc::kMalformed, op, "empty part");
  if (std::uint64_t{p.offset} + p.data.size() > p.totalLength) {
    return fail(Errc::kMalformed, op,
                "part [" + num(p.offset) + ", +" + num(p.data.size()) + ") outside a manifest of " +
                    num(p.totalLength) + " bytes");
  }
  const auto end = static_cast<std::uint32_t>(p.offset + p.data.size());
  P2PCDN_TRY(addRange(ranges_, p.offset, end, op, "part"));
  total_ = p.totalLength;
  if (data_.size() < end) data_.resize(end);
  std::memcpy(data_.data() + p.offset, p.data.data(), p.data.size());
  received_ += static_cast<std::uint32_t>(p.data.size());
  return {};
}

Result<Manifest> ManifestAssembler::finish(const FileId& expected) const {
  if (!complete()) {
    return fail(Errc::kInvalidArgument, "assemble manifest",
                "have " + num(received_) + " of " + num(total_) + " bytes");
  }
  return verifyManifestBytes(data_, expected);
}

Result<Manifest> verifyManifestBytes(ByteView bytes, const FileId& expected) {
  const char* op = "verify manifest";
  if (bytes.size() > kMaxManifestBytes) {
    return fail(Errc::kTooLarge, op, "manifest of " + num(bytes.size()) + " bytes");
  }
  if (manifestId(bytes) != expected) {
    return fail(Errc::kIntegrity, op, "manifest does not hash to file id " + expected.hex());
  }
  return decodeManifest(bytes);
}

}  // namespace p2pcdn::wire
