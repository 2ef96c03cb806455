// Cutting a chunk (or a manifest) into data messages that fit the data
// channel's message limit, and putting them back together on the other side.
// Pure; no I/O. Rules: docs/protocol.md, "Peer wire protocol v1".
//
// The assemblers take pieces in any order and reject, without changing their
// state, a piece that overlaps what they already hold (duplicates included),
// falls outside the chunk, or disagrees with the chunk's length. Their memory
// is bounded by the length they were created with (chunk) or by
// kMaxManifestBytes (manifest), never by a length field alone.
//
// Thread-safety: an assembler is used by one thread (the session's loop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "p2pcdn/manifest.hpp"
#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"
#include "wire/wire.hpp"

namespace p2pcdn::wire {

// The smallest message size the splitters accept (a sender's setting; a
// receiver takes any size up to kMaxMessageBytes).
inline constexpr std::size_t kMinSplitMessageBytes = 64;
// How many disjoint byte ranges an assembler tracks before it refuses more
// fragmentation (kTooLarge). Pieces arriving in order merge into one range.
inline constexpr std::size_t kMaxAssemblyRanges = 4096;

// Bytes of chunk data one PIECE message of maxMessageBytes can carry.
inline constexpr std::size_t maxPiecePayload(std::size_t maxMessageBytes) {
  return maxMessageBytes > kPieceHeaderBytes ? maxMessageBytes - kPieceHeaderBytes : 0;
}

// Cuts bytes [offset, offset + length) of a stored chunk (the whole chunk is
// `chunk`) into PIECE messages of at most maxMessageBytes each, in ascending
// offset order. The Pieces view `chunk`; encode each when it is time to send
// it. kInvalidArgument for an empty or out-of-range range or a message size
// outside [kMinSplitMessageBytes, kMaxMessageBytes]; kTooLarge for a chunk
// over kMaxStoredChunkBytes.
Result<std::vector<Piece>> planPieces(std::uint32_t requestId, ChunkIndex index, ByteView chunk,
                                      std::uint32_t offset, std::uint32_t length,
                                      std::size_t maxMessageBytes = kMaxMessageBytes);
// The whole chunk, encoded.
Result<std::vector<Bytes>> splitChunk(std::uint32_t requestId, ChunkIndex index, ByteView chunk,
                                      std::size_t maxMessageBytes = kMaxMessageBytes);

// Collects the pieces of one chunk. Create it with the chunk's stored length
// from the manifest (not from a piece).
class ChunkAssembler {
 public:
  // kInvalidArgument unless 1 <= chunkLength <= kMaxStoredChunkBytes.
  static Result<ChunkAssembler> create(ChunkIndex index, std::uint32_t chunkLength);
  static Result<ChunkAssembler> forManifest(const Manifest& m, ChunkIndex index);

  // kMalformed: other chunk index, other chunkLength, empty, out of range or
  // overlapping; kTooLarge: more than kMaxAssemblyRanges disjoint ranges.
  Status add(const Piece& piece);
  bool complete() const { return received_ == length_; }
  std::uint32_t receivedBytes() const { return received_; }
  std::uint32_t chunkLength() const { return length_; }
  ChunkIndex index() const { return index_; }
  // The chunk once complete (kInvalidArgument before); leaves the assembler empty.
  // The caller still verifies it (verifyChunk) before storing or serving it.
  Result<Bytes> take();

 private:
  ChunkAssembler(ChunkIndex index, std::uint32_t length) : index_(index), length_(length) {}
  ChunkIndex index_;
  std::uint32_t length_;
  std::uint32_t received_ = 0;
  Bytes data_;                                                // allocated at the first piece
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges_;  // sorted, disjoint, non-adjacent [begin, end)
};

// Cuts a canonical manifest encoding into MANIFEST_PART messages.
Result<std::vector<Bytes>> splitManifest(std::uint32_t requestId, ByteView manifestBytes,
                                         std::size_t maxMessageBytes = kMaxMessageBytes);

// Collects the parts answering one MANIFEST_REQUEST.
class ManifestAssembler {
 public:
  explicit ManifestAssembler(std::uint32_t requestId) : requestId_(requestId) {}
  // kMalformed: other request id, a totalLength different from the first
  // part's, empty, out of range or overlapping; kTooLarge: totalLength over
  // kMaxManifestBytes or too fragmented.
  Status add(const ManifestPart& part);
  bool complete() const { return total_ != 0 && received_ == total_; }
  std::uint32_t receivedBytes() const { return received_; }
  std::uint32_t totalLength() const { return total_; }  // 0 before the first part
  // Once complete: checks BLAKE3(bytes) == expected (kIntegrity) and decodes.
  Result<Manifest> finish(const FileId& expected) const;

 private:
  std::uint32_t requestId_;
  std::uint32_t total_ = 0;
  std::uint32_t received_ = 0;
  Bytes data_;  // grows to the highest byte received, at most total_
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges_;
};

// A manifest received from a peer is usable only if it hashes to the file id
// the channel is about: kIntegrity otherwise, then decodeManifest's errors.
Result<Manifest> verifyManifestBytes(ByteView bytes, const FileId& expected);

}  // namespace p2pcdn::wire
