// Peer wire protocol v1 codec. Layout: docs/protocol.md, "Peer wire protocol v1".
#include "wire/wire.hpp"

#include <string>
#include <type_traits>

#include "core/byte_io.hpp"
#include "core/text.hpp"

namespace p2pcdn::wire {
namespace {

// How a broken rule is reported: the decoder says kMalformed / kTooLarge
// (untrusted input), the encoder kInvalidArgument (a caller's mistake).
struct Rules {
  const char* op;
  Errc bad;
  Errc tooLarge;
  const DecodeContext& ctx;
};

const DecodeContext kNoContext{};

Rules decodeRules(const DecodeContext& ctx) { return {"decode wire message", Errc::kMalformed, Errc::kTooLarge, ctx}; }
Rules encodeRules() { return {"encode wire message", Errc::kInvalidArgument, Errc::kInvalidArgument, kNoContext}; }

std::string num(std::uint64_t v) { return std::to_string(v); }

// GOODBYE text ends up in logs: strict UTF-8 without control characters.
bool validText(std::string_view s) { return isCleanUtf8(s); }

Status checkIndex(const Rules& r, const char* what, ChunkIndex index) {
  if (r.ctx.chunkCount) {
    if (index >= *r.ctx.chunkCount) {
      return fail(r.bad, r.op,
                  std::string(what) + " chunk index " + num(index) + " out of range (" + num(*r.ctx.chunkCount) +
                      " chunks)");
    }
  } else if (index >= kMaxChunkCount) {
    return fail(r.bad, r.op, std::string(what) + " chunk index " + num(index) + " beyond the chunk limit");
  }
  return {};
}

// ---- Rules per message (shared by encoder and decoder) ----

Status validate(const Rules& r, const Handshake& m) {
  if (m.extension.size() > kMaxExtensionBytes) {
    return fail(r.tooLarge, r.op, "HANDSHAKE extension of " + num(m.extension.size()) + " bytes (limit " +
                                      num(kMaxExtensionBytes) + ")");
  }
  return {};
}

Status validate(const Rules& r, const Bitfield& m) {
  if (m.chunkCount > kMaxChunkCount) {
    return fail(r.tooLarge, r.op, "BITFIELD of " + num(m.chunkCount) + " chunks (limit " + num(kMaxChunkCount) + ")");
  }
  if (m.bits.size() != bitfieldBytes(m.chunkCount)) {
    return fail(r.bad, r.op,
                "BITFIELD of " + num(m.chunkCount) + " chunks needs " + num(bitfieldBytes(m.chunkCount)) +
                    " bytes, has " + num(m.bits.size()));
  }
  if (m.chunkCount % 8 != 0) {
    auto spare = static_cast<std::uint8_t>(0xffu >> (m.chunkCount % 8));
    if ((m.bits.back() & spare) != 0) return fail(r.bad, r.op, "BITFIELD has bits set past its chunk count");
  }
  if (r.ctx.chunkCount && m.chunkCount != *r.ctx.chunkCount) {
    return fail(r.bad, r.op,
                "BITFIELD of " + num(m.chunkCount) + " chunks, the manifest has " + num(*r.ctx.chunkCount));
  }
  return {};
}

Status validate(const Rules& r, const Have& m) { return checkIndex(r, "HAVE", m.index); }

Status validate(const Rules& r, const Request& m) {
  P2PCDN_TRY(checkIndex(r, "REQUEST", m.index));
  if (m.length == 0) return fail(r.bad, r.op, "REQUEST of 0 bytes");
  if (m.length > kMaxRequestLength) {
    return fail(r.tooLarge, r.op, "REQUEST of " + num(m.length) + " bytes (limit " + num(kMaxRequestLength) + ")");
  }
  if (std::uint64_t{m.offset} + m.length > kMaxStoredChunkBytes) {
    return fail(r.bad, r.op, "REQUEST range ends past the largest possible chunk");
  }
  return {};
}

Status validate(const Rules&, const Cancel&) { return {}; }

Status validate(const Rules& r, const Reject& m) {
  if (m.retryAfterMs > kMaxRetryAfterMs) {
    return fail(r.bad, r.op, "REJECT retry-after " + num(m.retryAfterMs) + " ms (limit " + num(kMaxRetryAfterMs) + ")");
  }
  return {};
}

Status validate(const Rules& r, const Piece& m) {
  P2PCDN_TRY(checkIndex(r, "PIECE", m.index));
  if (m.chunkLength == 0) return fail(r.bad, r.op, "PIECE of an empty chunk");
  if (m.chunkLength > kMaxStoredChunkBytes) {
    return fail(r.tooLarge, r.op, "PIECE chunk length " + num(m.chunkLength) + " (limit " + num(kMaxStoredChunkBytes) + ")");
  }
  if (m.data.empty()) return fail(r.bad, r.op, "PIECE without data");
  if (kPieceHeaderBytes + m.data.size() > kMaxMessageBytes) {
    return fail(r.tooLarge, r.op, "PIECE of " + num(m.data.size()) + " bytes does not fit one message");
  }
  if (std::uint64_t{m.offset} + m.data.size() > m.chunkLength) {
    return fail(r.bad, r.op,
                "PIECE [" + num(m.offset) + ", +" + num(m.data.size()) + ") outside a chunk of " + num(m.chunkLength) +
                    " bytes");
  }
  return {};
}

Status validate(const Rules&, const ManifestRequest&) { return {}; }

Status validate(const Rules& r, const ManifestPart& m) {
  if (m.totalLength == 0) return fail(r.bad, r.op, "MANIFEST_PART of an empty manifest");
  if (m.totalLength > kMaxManifestBytes) {
    return fail(r.tooLarge, r.op, "MANIFEST_PART total " + num(m.totalLength) + " bytes (limit " + num(kMaxManifestBytes) + ")");
  }
  if (m.data.empty()) return fail(r.bad, r.op, "MANIFEST_PART without data");
  if (kManifestPartHeaderBytes + m.data.size() > kMaxMessageBytes) {
    return fail(r.tooLarge, r.op, "MANIFEST_PART of " + num(m.data.size()) + " bytes does not fit one message");
  }
  if (std::uint64_t{m.offset} + m.data.size() > m.totalLength) {
    return fail(r.bad, r.op,
                "MANIFEST_PART [" + num(m.offset) + ", +" + num(m.data.size()) + ") outside a manifest of " +
                    num(m.totalLength) + " bytes");
  }
  return {};
}

Status validate(const Rules&, const KeepAlive&) { return {}; }

Status validate(const Rules& r, const Goodbye& m) {
  if (m.text.size() > kMaxGoodbyeTextBytes) {
    return fail(r.tooLarge, r.op, "GOODBYE text of " + num(m.text.size()) + " bytes (limit " + num(kMaxGoodbyeTextBytes) + ")");
  }
  if (!validText(m.text)) return fail(r.bad, r.op, "GOODBYE text is not UTF-8 without control characters");
  return {};
}

// ---- Writers (after validation) ----

Bytes start(MessageType t, std::size_t size) {
  Bytes out;
  out.reserve(size);
  out.push_back(static_cast<std::uint8_t>(t));
  return out;
}

Bytes write(const Handshake& m) {
  Bytes out = start(MessageType::kHandshake, kHandshakeHeaderBytes + m.extension.size());
  ByteWriter w(out);
  w.raw(kMagic);
  w.u8(kProtocolVersion);
  w.raw(m.peerId);
  w.u32(m.capabilities);
  w.raw(m.fileId.bytes);
  w.u16(static_cast<std::uint16_t>(m.extension.size()));
  w.raw(m.extension);
  return out;
}

Bytes write(const Bitfield& m) {
  Bytes out = start(MessageType::kBitfield, kBitfieldHeaderBytes + m.bits.size());
  ByteWriter w(out);
  w.u32(m.chunkCount);
  w.raw(m.bits);
  return out;
}

Bytes write(const Have& m) {
  Bytes out = start(MessageType::kHave, 5);
  ByteWriter(out).u32(m.index);
  return out;
}

Bytes write(const Request& m) {
  Bytes out = start(MessageType::kRequest, 17);
  ByteWriter w(out);
  w.u32(m.requestId);
  w.u32(m.index);
  w.u32(m.offset);
  w.u32(m.length);
  return out;
}

Bytes write(const Cancel& m) {
  Bytes out = start(MessageType::kCancel, 5);
  ByteWriter(out).u32(m.requestId);
  return out;
}

Bytes write(const Reject& m) {
  Bytes out = start(MessageType::kReject, 10);
  ByteWriter w(out);
  w.u32(m.requestId);
  w.u8(static_cast<std::uint8_t>(m.reason));
  w.u32(m.retryAfterMs);
  return out;
}

Bytes write(const Piece& m) {
  Bytes out = start(MessageType::kPiece, kPieceHeaderBytes + m.data.size());
  ByteWriter w(out);
  w.u32(m.requestId);
  w.u32(m.index);
  w.u32(m.chunkLength);
  w.u32(m.offset);
  w.u32(static_cast<std::uint32_t>(m.data.size()));
  w.raw(m.data);
  return out;
}

Bytes write(const ManifestRequest& m) {
  Bytes out = start(MessageType::kManifestRequest, 5);
  ByteWriter(out).u32(m.requestId);
  return out;
}

Bytes write(const ManifestPart& m) {
  Bytes out = start(MessageType::kManifestPart, kManifestPartHeaderBytes + m.data.size());
  ByteWriter w(out);
  w.u32(m.requestId);
  w.u32(m.totalLength);
  w.u32(m.offset);
  w.u32(static_cast<std::uint32_t>(m.data.size()));
  w.raw(m.data);
  return out;
}

Bytes write(const KeepAlive&) { return start(MessageType::kKeepAlive, 1); }

Bytes write(const Goodbye& m) {
  Bytes out = start(MessageType::kGoodbye, kGoodbyeHeaderBytes + m.text.size());
  ByteWriter w(out);
  w.u8(static_cast<std::uint8_t>(m.reason));
  w.u16(static_cast<std::uint16_t>(m.text.size()));
  w.str(m.text);
  return out;
}

template <class M>
Result<Bytes> encodeChecked(const M& m) {
  P2PCDN_TRY(validate(encodeRules(), m));
  return write(m);
}

// ---- Readers (before validation) ----
// Each returns false when the message ends early.

bool read(ByteReader& r, Bitfield& m) {
  if (!r.u32(m.chunkCount)) return false;
  // A count over the limit is reported as kTooLarge by validate(), not as truncation.
  if (m.chunkCount > kMaxChunkCount) return r.view(r.remaining(), m.bits);
  return r.view(bitfieldBytes(m.chunkCount), m.bits);
}
bool read(ByteReader& r, Have& m) { return r.u32(m.index); }
bool read(ByteReader& r, Request& m) { return r.u32(m.requestId) && r.u32(m.index) && r.u32(m.offset) && r.u32(m.length); }
bool read(ByteReader& r, Cancel& m) { return r.u32(m.requestId); }
bool read(ByteReader& r, Reject& m) {
  std::uint8_t reason = 0;
  if (!r.u32(m.requestId) || !r.u8(reason) || !r.u32(m.retryAfterMs)) return false;
  m.reason = static_cast<RejectReason>(reason);
  return true;
}
bool read(ByteReader& r, Piece& m) {
  std::uint32_t len = 0;
  return r.u32(m.requestId) && r.u32(m.index) && r.u32(m.chunkLength) && r.u32(m.offset) && r.u32(len) &&
         r.view(len, m.data);
}
bool read(ByteReader& r, ManifestRequest& m) { return r.u32(m.requestId); }
bool read(ByteReader& r, ManifestPart& m) {
  std::uint32_t len = 0;
  return r.u32(m.requestId) && r.u32(m.totalLength) && r.u32(m.offset) && r.u32(len) && r.view(len, m.data);
}
bool read(ByteReader&, KeepAlive&) { return true; }
bool read(ByteReader& r, Goodbye& m) {
  std::uint8_t reason = 0;
  std::uint16_t len = 0;
  ByteView text;
  if (!r.u8(reason) || !r.u16(len) || !r.view(len, text)) return false;
  m.reason = static_cast<GoodbyeReason>(reason);
  m.text = std::string_view(reinterpret_cast<const char*>(text.data()), text.size());
  return true;
}

// The handshake reads its magic and version first so that a peer speaking
// another version gets kUnsupported rather than a layout complaint.
Result<Message> decodeHandshake(ByteReader& r, const Rules& rules) {
  std::array<std::uint8_t, 4> magic{};
  std::uint8_t version = 0;
  if (!r.raw(magic) || !r.u8(version)) return fail(Errc::kMalformed, rules.op, "truncated HANDSHAKE");
  if (magic != kMagic) return fail(Errc::kMalformed, rules.op, "HANDSHAKE without the P2PW magic");
  if (version != kProtocolVersion) {
    return fail(Errc::kUnsupported, rules.op, "peer wire protocol version " + num(version) + " (supported: 1)");
  }
  Handshake m;
  std::uint16_t extLen = 0;
  if (!r.raw(m.peerId) || !r.u32(m.capabilities) || !r.raw(m.fileId.bytes) || !r.u16(extLen)) {
    return fail(Errc::kMalformed, rules.op, "truncated HANDSHAKE");
  }
  if (extLen > kMaxExtensionBytes) {
    return fail(Errc::kTooLarge, rules.op, "HANDSHAKE extension of " + num(extLen) + " bytes (limit " +
                                               num(kMaxExtensionBytes) + ")");
  }
  if (!r.view(extLen, m.extension)) return fail(Errc::kMalformed, rules.op, "truncated HANDSHAKE");
  if (r.remaining() != 0) return fail(Errc::kMalformed, rules.op, num(r.remaining()) + " bytes after HANDSHAKE");
  return Message(m);
}

template <class M>
Result<Message> decodeAs(ByteReader& r, const Rules& rules, MessageType t) {
  M m;
  if (!read(r, m)) return fail(Errc::kMalformed, rules.op, "truncated " + std::string(messageTypeName(t)));
  if (r.remaining() != 0) {
    return fail(Errc::kMalformed, rules.op,
                num(r.remaining()) + " bytes after " + std::string(messageTypeName(t)));
  }
  P2PCDN_TRY(validate(rules, m));
  return Message(std::move(m));
}

}  // namespace

std::string_view messageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kHandshake: return "HANDSHAKE";
    case MessageType::kBitfield: return "BITFIELD";
    case MessageType::kHave: return "HAVE";
    case MessageType::kRequest: return "REQUEST";
    case MessageType::kCancel: return "CANCEL";
    case MessageType::kReject: return "REJECT";
    case MessageType::kPiece: return "PIECE";
    case MessageType::kManifestRequest: return "MANIFEST_REQUEST";
    case MessageType::kManifestPart: return "MANIFEST_PART";
    case MessageType::kKeepAlive: return "KEEPALIVE";
    case MessageType::kGoodbye: return "GOODBYE";
  }
  return "UNKNOWN";
}

std::string_view rejectReasonName(RejectReason r) {
  switch (r) {
    case RejectReason::kUnspecified: return "unspecified";
    case RejectReason::kNotHave: return "not-have";
    case RejectReason::kOverloaded: return "overloaded";
    case RejectReason::kUnknownFile: return "unknown-file";
    case RejectReason::kTooManyRequests: return "too-many-requests";
    case RejectReason::kInvalidRequest: return "invalid-request";
  }
  return "unknown";
}

std::string_view goodbyeReasonName(GoodbyeReason r) {
  switch (r) {
    case GoodbyeReason::kNormal: return "normal";
    case GoodbyeReason::kProtocolError: return "protocol-error";
    case GoodbyeReason::kUnsupportedVersion: return "unsupported-version";
    case GoodbyeReason::kWrongFile: return "wrong-file";
    case GoodbyeReason::kDuplicate: return "duplicate";
    case GoodbyeReason::kShutdown: return "shutdown";
    case GoodbyeReason::kIdleTimeout: return "idle-timeout";
    case GoodbyeReason::kTooManyPeers: return "too-many-peers";
  }
  return "unknown";
}

bool Bitfield::has(ChunkIndex i) const { return i < chunkCount && testBit(bits, i); }

// typeOf relies on the variant's alternatives being in type-code order.
template <std::size_t I, class T, MessageType t>
constexpr bool kAt = std::is_same_v<std::variant_alternative_t<I, Message>, T> &&
                     static_cast<std::size_t>(t) == I + 1;
static_assert(kAt<0, Handshake, MessageType::kHandshake> && kAt<1, Bitfield, MessageType::kBitfield> &&
              kAt<2, Have, MessageType::kHave> && kAt<3, Request, MessageType::kRequest> &&
              kAt<4, Cancel, MessageType::kCancel> && kAt<5, Reject, MessageType::kReject> &&
              kAt<6, Piece, MessageType::kPiece> && kAt<7, ManifestRequest, MessageType::kManifestRequest> &&
              kAt<8, ManifestPart, MessageType::kManifestPart> && kAt<9, KeepAlive, MessageType::kKeepAlive> &&
              kAt<10, Goodbye, MessageType::kGoodbye> && std::variant_size_v<Message> == 11);

MessageType typeOf(const Message& m) { return static_cast<MessageType>(m.index() + 1); }

Result<Message> decodeMessage(ByteView in, const DecodeContext& ctx) {
  const Rules rules = decodeRules(ctx);
  if (in.empty()) return fail(Errc::kMalformed, rules.op, "empty message");
  if (in.size() > kMaxMessageBytes) {
    return fail(Errc::kTooLarge, rules.op, "message of " + num(in.size()) + " bytes (limit " + num(kMaxMessageBytes) + ")");
  }
  ByteReader r(in);
  std::uint8_t type = 0;
  (void)r.u8(type);
  const auto t = static_cast<MessageType>(type);
  switch (t) {
    case MessageType::kHandshake: return decodeHandshake(r, rules);
    case MessageType::kBitfield: return decodeAs<Bitfield>(r, rules, t);
    case MessageType::kHave: return decodeAs<Have>(r, rules, t);
    case MessageType::kRequest: return decodeAs<Request>(r, rules, t);
    case MessageType::kCancel: return decodeAs<Cancel>(r, rules, t);
    case MessageType::kReject: return decodeAs<Reject>(r, rules, t);
    case MessageType::kPiece: return decodeAs<Piece>(r, rules, t);
    case MessageType::kManifestRequest: return decodeAs<ManifestRequest>(r, rules, t);
    case MessageType::kManifestPart: return decodeAs<ManifestPart>(r, rules, t);
    case MessageType::kKeepAlive: return decodeAs<KeepAlive>(r, rules, t);
    case MessageType::kGoodbye: return decodeAs<Goodbye>(r, rules, t);
  }
  return fail(Errc::kUnsupported, rules.op, "unknown message type " + num(type));
}

Result<Bytes> encode(const Handshake& m) { return encodeChecked(m); }
Result<Bytes> encode(const Bitfield& m) { return encodeChecked(m); }
Result<Bytes> encode(const Have& m) { return encodeChecked(m); }
Result<Bytes> encode(const Request& m) { return encodeChecked(m); }
Result<Bytes> encode(const Cancel& m) { return encodeChecked(m); }
Result<Bytes> encode(const Reject& m) { return encodeChecked(m); }
Result<Bytes> encode(const Piece& m) { return encodeChecked(m); }
Result<Bytes> encode(const ManifestRequest& m) { return encodeChecked(m); }
Result<Bytes> encode(const ManifestPart& m) { return encodeChecked(m); }
Result<Bytes> encode(const KeepAlive& m) { return encodeChecked(m); }
Result<Bytes> encode(const Goodbye& m) { return encodeChecked(m); }

Result<Bytes> encodeMessage(const Message& m) {
  return std::visit([](const auto& x) { return encode(x); }, m);
}

Status checkAgainstManifest(const Message& msg, const Manifest& manifest) {
  const char* op = "check wire message";
  const std::uint32_t count = manifest.chunkCount();
  auto index = [&](const char* what, ChunkIndex i) -> Status {
    if (i >= count) {
      return fail(Errc::kMalformed, op,
                  std::string(what) + " chunk index " + num(i) + " out of range (" + num(count) + " chunks)");
    }
    return {};
  };
  if (const auto* b = std::get_if<Bitfield>(&msg)) {
    if (b->chunkCount != count) {
      return fail(Errc::kMalformed, op, "BITFIELD of " + num(b->chunkCount) + " chunks, the manifest has " + num(count));
    }
  } else if (const auto* h = std::get_if<Have>(&msg)) {
    return index("HAVE", h->index);
  } else if (const auto* q = std::get_if<Request>(&msg)) {
    P2PCDN_TRY(index("REQUEST", q->index));
    const std::uint32_t len = manifest.storedChunkLength(q->index);
    if (std::uint64_t{q->offset} + q->length > len) {
      return fail(Errc::kMalformed, op,
                  "REQUEST [" + num(q->offset) + ", +" + num(q->length) + ") outside chunk " + num(q->index) + " of " +
                      num(len) + " bytes");
    }
  } else if (const auto* p = std::get_if<Piece>(&msg)) {
    P2PCDN_TRY(index("PIECE", p->index));
    const std::uint32_t len = manifest.storedChunkLength(p->index);
    if (p->chunkLength != len) {
      return fail(Errc::kMalformed, op,
                  "PIECE says chunk " + num(p->index) + " has " + num(p->chunkLength) + " bytes, the manifest " +
                      num(len));
    }
  }
  return {};
}

}  // namespace p2pcdn::wire
