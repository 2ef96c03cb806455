// Peer wire protocol v1: the binary messages two peers exchange over one
// ordered, reliable WebRTC data channel about one file. Pure codec: no I/O, no
// clock, no state. Layout, limits and rules: docs/protocol.md, "Peer wire
// protocol v1".
//
// One message is one data-channel message (at most kMaxMessageBytes), so there
// is no length prefix: the first byte is the type, then fixed big-endian
// fields. Every variable part has an explicit length, so a truncated or padded
// message is always rejected. The encoding is canonical: for every message
// decodeMessage accepts, encodeMessage gives back exactly the same bytes.
//
// Ownership: the variable parts of the structs (Handshake::extension,
// Bitfield::bits, Piece::data, ManifestPart::data, Goodbye::text) are views. A
// decoded Message borrows them from the buffer it was decoded from, which must
// outlive it; copy what you keep. Encoding copies them into the new message.
// This makes decoding a 256 KiB data message free of copies.
//
// Thread-safety: all functions are pure and may be called from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

#include "p2pcdn/manifest.hpp"
#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn::wire {

// ---- Limits (docs/protocol.md) ----------------------------------------------

inline constexpr std::uint8_t kProtocolVersion = 1;
inline constexpr std::array<std::uint8_t, 4> kMagic = {'P', '2', 'P', 'W'};
// Browsers close a data channel that receives a larger message.
inline constexpr std::size_t kMaxMessageBytes = 262144;
inline constexpr std::size_t kPeerIdSize = 20;
inline constexpr std::size_t kMaxExtensionBytes = 1024;
// A chunk as stored and sent: up to 16 MiB of plaintext plus a 16-byte GCM tag.
inline constexpr std::uint32_t kMaxStoredChunkBytes =
    kMaxChunkSize + static_cast<std::uint32_t>(kAeadTagSize);
inline constexpr std::uint32_t kMaxRequestLength = kMaxStoredChunkBytes;
inline constexpr std::uint32_t kMaxRetryAfterMs = 600'000;  // 10 minutes
inline constexpr std::size_t kMaxGoodbyeTextBytes = 256;
static_assert(kMaxManifestBytes <= 0xffffffffu, "manifest lengths travel as u32");

// Fixed header sizes of the messages that carry data.
inline constexpr std::size_t kHandshakeHeaderBytes = 64;     // + extension
inline constexpr std::size_t kBitfieldHeaderBytes = 5;       // + ceil(count / 8)
inline constexpr std::size_t kPieceHeaderBytes = 21;         // + data
inline constexpr std::size_t kManifestPartHeaderBytes = 17;  // + data
inline constexpr std::size_t kGoodbyeHeaderBytes = 4;        // + text

// ---- Message types and codes -------------------------------------------------

enum class MessageType : std::uint8_t {
  kHandshake = 1,
  kBitfield = 2,
  kHave = 3,
  kRequest = 4,
  kCancel = 5,
  kReject = 6,
  kPiece = 7,
  kManifestRequest = 8,
  kManifestPart = 9,
  kKeepAlive = 10,
  kGoodbye = 11,
};
std::string_view messageTypeName(MessageType type);  // "HANDSHAKE", …; "UNKNOWN" otherwise

// Handshake capability bits. Unknown bits are ignored by the receiver.
inline constexpr std::uint32_t kCapEncryption = 1u << 0;   // understands encrypted manifests
inline constexpr std::uint32_t kCapStreaming = 1u << 1;    // plays in order: prefer my requests
inline constexpr std::uint32_t kCapHasManifest = 1u << 2;  // can answer MANIFEST_REQUEST
inline constexpr std::uint32_t kCapSuperSeed = 1u << 3;    // a publisher showing its chunks a few at a time

// Why a request was refused. Values not listed are accepted and mean "refused".
enum class RejectReason : std::uint8_t {
  kUnspecified = 0,
  kNotHave = 1,          // I do not have that chunk (or the manifest)
  kOverloaded = 2,       // back-pressure: try again after retryAfterMs
  kUnknownFile = 3,      // I do not serve this file
  kTooManyRequests = 4,  // you have too many requests outstanding with me
  kInvalidRequest = 5,   // out of range for the manifest
};
std::string_view rejectReasonName(RejectReason r);

// Why a peer ends the conversation. Values not listed are accepted.
enum class GoodbyeReason : std::uint8_t {
  kNormal = 0,              // done, or no longer interested
  kProtocolError = 1,       // you sent something invalid
  kUnsupportedVersion = 2,  // your handshake's version is not one I speak
  kWrongFile = 3,           // your handshake names a file I do not serve
  kDuplicate = 4,           // we already have a channel
  kShutdown = 5,            // I am shutting down
  kIdleTimeout = 6,         // you were silent too long
  kTooManyPeers = 7,        // I am at my connection limit
};
std::string_view goodbyeReasonName(GoodbyeReason r);

using PeerId = std::array<std::uint8_t, kPeerIdSize>;

// ---- Messages ----------------------------------------------------------------

namespace detail {
inline bool sameBytes(ByteView a, ByteView b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}
}  // namespace detail

// First message on a channel, sent by both sides at once. The version is
// always kProtocolVersion (a decoder for v1 rejects others with kUnsupported).
struct Handshake {
  PeerId peerId{};
  std::uint32_t capabilities = 0;
  FileId fileId;          // the one file this channel is about
  ByteView extension;     // opaque, at most kMaxExtensionBytes; empty in v1
  friend bool operator==(const Handshake& a, const Handshake& b) {
    return a.peerId == b.peerId && a.capabilities == b.capabilities && a.fileId == b.fileId &&
           detail::sameBytes(a.extension, b.extension);
  }
};

// Which chunks the sender has: bit i is chunk i, most significant bit first.
// bits.size() == bitfieldBytes(chunkCount) and the unused low bits of the
// last byte are zero.
struct Bitfield {
  std::uint32_t chunkCount = 0;
  ByteView bits;
  bool has(ChunkIndex i) const;  // false past chunkCount
  friend bool operator==(const Bitfield& a, const Bitfield& b) {
    return a.chunkCount == b.chunkCount && detail::sameBytes(a.bits, b.bits);
  }
};

struct Have {
  ChunkIndex index = 0;
  bool operator==(const Have&) const = default;
};

// Asks for bytes [offset, offset + length) of a chunk as stored (ciphertext +
// tag for encrypted files). Answered by PIECE messages covering exactly that
// range, or by one REJECT. The requester picks ids unique among its own
// outstanding requests on this channel.
struct Request {
  std::uint32_t requestId = 0;
  ChunkIndex index = 0;
  std::uint32_t offset = 0;
  std::uint32_t length = 0;  // 1..kMaxRequestLength, offset + length <= kMaxStoredChunkBytes
  bool operator==(const Request&) const = default;
};

struct Cancel {
  std::uint32_t requestId = 0;
  bool operator==(const Cancel&) const = default;
};

struct Reject {
  std::uint32_t requestId = 0;  // of a REQUEST or a MANIFEST_REQUEST
  RejectReason reason = RejectReason::kUnspecified;
  std::uint32_t retryAfterMs = 0;  // 0 = no hint; at most kMaxRetryAfterMs
  bool operator==(const Reject&) const = default;
};

// Bytes [offset, offset + data.size()) of chunk `index`, whose full stored
// length is chunkLength.
struct Piece {
  std::uint32_t requestId = 0;
  ChunkIndex index = 0;
  std::uint32_t chunkLength = 0;  // 1..kMaxStoredChunkBytes
  std::uint32_t offset = 0;
  ByteView data;                  // non-empty; offset + size <= chunkLength
  friend bool operator==(const Piece& a, const Piece& b) {
    return a.requestId == b.requestId && a.index == b.index && a.chunkLength == b.chunkLength &&
           a.offset == b.offset && detail::sameBytes(a.data, b.data);
  }
};

// Asks for the canonical manifest of the channel's file.
struct ManifestRequest {
  std::uint32_t requestId = 0;
  bool operator==(const ManifestRequest&) const = default;
};

// Bytes [offset, offset + data.size()) of the canonical manifest encoding,
// which is totalLength bytes long.
struct ManifestPart {
  std::uint32_t requestId = 0;
  std::uint32_t totalLength = 0;  // 1..kMaxManifestBytes
  std::uint32_t offset = 0;
  ByteView data;                  // non-empty; offset + size <= totalLength
  friend bool operator==(const ManifestPart& a, const ManifestPart& b) {
    return a.requestId == b.requestId && a.totalLength == b.totalLength && a.offset == b.offset &&
           detail::sameBytes(a.data, b.data);
  }
};

struct KeepAlive {
  bool operator==(const KeepAlive&) const = default;
};

// The last message a peer sends before closing (closing a PeerConnection drops
// data still in flight, so the protocol has its own end).
struct Goodbye {
  GoodbyeReason reason = GoodbyeReason::kNormal;
  std::string_view text;  // strict UTF-8, no control characters, at most kMaxGoodbyeTextBytes
  bool operator==(const Goodbye&) const = default;
};

using Message = std::variant<Handshake, Bitfield, Have, Request, Cancel, Reject, Piece, ManifestRequest,
                             ManifestPart, KeepAlive, Goodbye>;

MessageType typeOf(const Message& m);

// ---- Codec -------------------------------------------------------------------

// What the receiver knows that the message alone does not say.
struct DecodeContext {
  // The manifest's chunk count, once known: BITFIELD must have exactly this
  // many bits, HAVE/REQUEST/PIECE indexes must be below it.
  std::optional<std::uint32_t> chunkCount;
};

// Decodes one data-channel message. Errors: kUnsupported for an unknown type
// or a handshake version other than 1; kTooLarge for a message over
// kMaxMessageBytes or a count over a limit; kMalformed for anything else
// (truncated, trailing bytes, bad magic, out-of-range fields).
Result<Message> decodeMessage(ByteView in, const DecodeContext& ctx = {});
// The result would view a buffer destroyed at the end of the statement.
Result<Message> decodeMessage(const Bytes&& temporary, const DecodeContext& ctx = {}) = delete;

// Encoders check the same rules the decoder does (kInvalidArgument otherwise),
// so whatever they produce decodes to an equal message.
Result<Bytes> encode(const Handshake& m);
Result<Bytes> encode(const Bitfield& m);
Result<Bytes> encode(const Have& m);
Result<Bytes> encode(const Request& m);
Result<Bytes> encode(const Cancel& m);
Result<Bytes> encode(const Reject& m);
Result<Bytes> encode(const Piece& m);
Result<Bytes> encode(const ManifestRequest& m);
Result<Bytes> encode(const ManifestPart& m);
Result<Bytes> encode(const KeepAlive& m);
Result<Bytes> encode(const Goodbye& m);
Result<Bytes> encodeMessage(const Message& m);

// Checks a decoded message against the file's manifest: bitfield size, chunk
// indexes, request ranges within the chunk, a piece's chunkLength equal to the
// chunk's stored length. kMalformed on a mismatch.
Status checkAgainstManifest(const Message& m, const Manifest& manifest);

// ---- Bitfield helpers --------------------------------------------------------

inline constexpr std::size_t bitfieldBytes(std::uint32_t chunkCount) { return (std::size_t{chunkCount} + 7) / 8; }
// Packed bits use the wire order: chunk i is bit (7 - i % 8) of byte i / 8.
inline bool testBit(ByteView bits, ChunkIndex i) {
  return i / 8 < bits.size() && (bits[i / 8] & (0x80u >> (i % 8))) != 0;
}
inline void setBit(std::span<std::uint8_t> bits, ChunkIndex i) {
  if (i / 8 < bits.size()) bits[i / 8] = static_cast<std::uint8_t>(bits[i / 8] | (0x80u >> (i % 8)));
}

}  // namespace p2pcdn::wire
