// The peer wire protocol v1 codec (src/wire/): every message, the limits, the
// chunk and manifest splitters and their assemblers.
#include <algorithm>
#include <random>
#include <string>

#include "core/byte_io.hpp"
#include "core/hex.hpp"
#include "test_support.hpp"
#include "wire/fragment.hpp"
#include "wire/wire.hpp"

namespace p2pcdn::wire {
namespace {

using test::codeOf;
using test::describe;

Hash hashOfText(std::string_view s) { return test::hashOf(asBytes(s)); }

PeerId samplePeerId() {
  PeerId id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(0x10 + i);
  return id;
}

// Owns the bytes that the sample messages view.
struct Samples {
  Bytes ext = test::randomBytes(kMaxExtensionBytes, 1);
  Bytes bits13 = {0xa5, 0x50};  // 13 chunks: 1010 0101 0101 0...
  Bytes fullBits = Bytes(bitfieldBytes(kMaxChunkCount), 0xff);
  Bytes data = test::randomBytes(kMaxMessageBytes - kPieceHeaderBytes, 2);
  Bytes manifest = test::randomBytes(kMaxMessageBytes - kManifestPartHeaderBytes, 3);
  std::string longText = std::string(kMaxGoodbyeTextBytes - 4, 'x') + "\xf0\x9f\x8e\xac";  // 256 bytes, ends in U+1F3AC

  std::vector<Message> all() const {
    const FileId file = hashOfText("file");
    return {
        Handshake{samplePeerId(), kCapEncryption | kCapStreaming, file, {}},
        Handshake{samplePeerId(), 0xffffffffu, file, ext},
        Bitfield{0, {}},
        Bitfield{13, bits13},
        Bitfield{kMaxChunkCount, fullBits},
        Have{0},
        Have{kMaxChunkCount - 1},
        Request{7, 3, 0, kDefaultChunkSize},
        Request{0xffffffffu, kMaxChunkCount - 1, kMaxStoredChunkBytes - 1, 1},
        Request{1, 0, 0, kMaxRequestLength},
        Cancel{42},
        Reject{9, RejectReason::kOverloaded, 250},
        Reject{10, RejectReason::kNotHave, 0},
        Reject{11, static_cast<RejectReason>(200), kMaxRetryAfterMs},
        Piece{5, 2, kDefaultChunkSize + 16, 16, ByteView(data).first(1000)},
        Piece{6, 0, kMaxStoredChunkBytes, kMaxStoredChunkBytes - static_cast<std::uint32_t>(data.size()), data},
        ManifestRequest{77},
        ManifestPart{77, 40, 0, ByteView(manifest).first(40)},
        ManifestPart{78, static_cast<std::uint32_t>(kMaxManifestBytes), 12345, manifest},
        KeepAlive{},
        Goodbye{GoodbyeReason::kNormal, ""},
        Goodbye{GoodbyeReason::kShutdown, longText},
        Goodbye{static_cast<GoodbyeReason>(99), "Grüße, 文件"},
    };
  }
};

// The outcome of decoding a buffer that is about to go away (the decoded
// message would view it, so decodeMessage refuses temporaries).
Errc decodeErrc(const Bytes& b, const DecodeContext& ctx = {}) { return codeOf(decodeMessage(ByteView(b), ctx)); }

Bytes encodeOk(const Message& m) {
  auto b = encodeMessage(m);
  EXPECT_TRUE(b.has_value()) << describe(b);
  return b ? *b : Bytes{};
}

// ---- Round trips and framing ----

TEST(WireCodec, EveryMessageRoundTrips) {
  Samples s;
  for (const Message& m : s.all()) {
    SCOPED_TRACE(std::string(messageTypeName(typeOf(m))));
    Bytes b = encodeOk(m);
    ASSERT_FALSE(b.empty());
    EXPECT_LE(b.size(), kMaxMessageBytes);
    EXPECT_EQ(b[0], static_cast<std::uint8_t>(typeOf(m)));
    auto back = decodeMessage(b);
    ASSERT_TRUE(back.has_value()) << describe(back);
    EXPECT_EQ(typeOf(*back), typeOf(m));
    EXPECT_TRUE(*back == m);
    auto again = encodeMessage(*back);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(*again, b);  // canonical
  }
}

TEST(WireCodec, FixedSizesMatchTheDocumentation) {
  Samples s;
  const FileId file = hashOfText("file");
  EXPECT_EQ(encodeOk(Handshake{samplePeerId(), 0, file, {}}).size(), 64u);
  EXPECT_EQ(encodeOk(Handshake{samplePeerId(), 0, file, s.ext}).size(), 64u + kMaxExtensionBytes);
  EXPECT_EQ(encodeOk(Bitfield{13, s.bits13}).size(), 7u);
  EXPECT_EQ(encodeOk(Bitfield{kMaxChunkCount, s.fullBits}).size(), 5u + 131072u);
  EXPECT_EQ(encodeOk(Have{1}).size(), 5u);
  EXPECT_EQ(encodeOk(Request{1, 2, 3, 4}).size(), 17u);
  EXPECT_EQ(encodeOk(Cancel{1}).size(), 5u);
  EXPECT_EQ(encodeOk(Reject{1, RejectReason::kNotHave, 0}).size(), 10u);
  EXPECT_EQ(encodeOk(Piece{1, 0, 10, 0, ByteView(s.data).first(10)}).size(), 31u);
  EXPECT_EQ(encodeOk(Piece{1, 0, kMaxStoredChunkBytes, 0, s.data}).size(), kMaxMessageBytes);
  EXPECT_EQ(encodeOk(ManifestRequest{1}).size(), 5u);
  EXPECT_EQ(encodeOk(ManifestPart{1, 1u << 24, 0, s.manifest}).size(), kMaxMessageBytes);
  EXPECT_EQ(encodeOk(KeepAlive{}).size(), 1u);
  EXPECT_EQ(encodeOk(Goodbye{GoodbyeReason::kNormal, "bye"}).size(), 7u);
}

TEST(WireCodec, ExactBytesOfARequestAndAHandshake) {
  EXPECT_EQ(encodeOk(Request{0x01020304, 5, 0x4000, 0x8000}),
            (Bytes{4, 1, 2, 3, 4, 0, 0, 0, 5, 0, 0, 0x40, 0, 0, 0, 0x80, 0}));
  const FileId file = hashOfText("file");
  Bytes h = encodeOk(Handshake{samplePeerId(), 0x00000005, file, {}});
  ASSERT_EQ(h.size(), 64u);
  EXPECT_EQ(Bytes(h.begin(), h.begin() + 6), (Bytes{1, 'P', '2', 'P', 'W', 1}));
  EXPECT_EQ(h[6], 0x10);
  EXPECT_EQ(Bytes(h.begin() + 26, h.begin() + 30), (Bytes{0, 0, 0, 5}));
  EXPECT_TRUE(std::equal(file.bytes.begin(), file.bytes.end(), h.begin() + 30));
  EXPECT_EQ(h[62], 0);
  EXPECT_EQ(h[63], 0);
}

TEST(WireCodec, EveryTruncationIsRejected) {
  Samples s;
  for (const Message& m : s.all()) {
    SCOPED_TRACE(std::string(messageTypeName(typeOf(m))));
    Bytes b = encodeOk(m);
    for (std::size_t n = 0; n < b.size(); ++n) {
      auto r = decodeMessage(ByteView(b).first(n));
      ASSERT_EQ(codeOf(r), Errc::kMalformed) << "prefix of " << n << " bytes: " << describe(r);
    }
  }
}

TEST(WireCodec, TrailingBytesAreRejected) {
  Samples s;
  for (const Message& m : s.all()) {
    SCOPED_TRACE(std::string(messageTypeName(typeOf(m))));
    Bytes b = encodeOk(m);
    if (b.size() == kMaxMessageBytes) continue;  // one more byte is over the message limit
    b.push_back(0);
    P2PCDN_EXPECT_ERRC(decodeMessage(b), Errc::kMalformed);
  }
}

TEST(WireCodec, UnknownTypesAreUnsupported) {
  for (int t : {0, 12, 13, 0x7f, 0x80, 0xff}) {
    Bytes b = {static_cast<std::uint8_t>(t), 0, 0, 0, 0};
    P2PCDN_EXPECT_ERRC(decodeMessage(b), Errc::kUnsupported);
    P2PCDN_EXPECT_ERRC(decodeMessage(ByteView(b).first(1)), Errc::kUnsupported);
  }
}

TEST(WireCodec, EmptyAndOversizedMessages) {
  P2PCDN_EXPECT_ERRC(decodeMessage(ByteView{}), Errc::kMalformed);
  Bytes big(kMaxMessageBytes + 1, 0);
  big[0] = static_cast<std::uint8_t>(MessageType::kPiece);
  P2PCDN_EXPECT_ERRC(decodeMessage(big), Errc::kTooLarge);
}

TEST(WireCodec, LengthFieldsLargerThanTheMessageDoNotAllocate) {
  // A PIECE claiming 4 GiB of data in a 21-byte message.
  Bytes b = {7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
  P2PCDN_EXPECT_ERRC(decodeMessage(b), Errc::kMalformed);
  // A MANIFEST_PART claiming 4 GiB.
  Bytes p = {9, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
  P2PCDN_EXPECT_ERRC(decodeMessage(p), Errc::kMalformed);
  // A BITFIELD claiming 4 Gi chunks.
  Bytes f = {2, 0xff, 0xff, 0xff, 0xff, 0};
  P2PCDN_EXPECT_ERRC(decodeMessage(f), Errc::kTooLarge);
}

// ---- Handshake ----

TEST(WireHandshake, MagicAndVersion) {
  Bytes b = encodeOk(Handshake{samplePeerId(), 0, hashOfText("f"), {}});
  Bytes badMagic = b;
  badMagic[4] = 'X';
  P2PCDN_EXPECT_ERRC(decodeMessage(badMagic), Errc::kMalformed);
  for (int v : {0, 2, 255}) {
    Bytes other = b;
    other[5] = static_cast<std::uint8_t>(v);
    P2PCDN_EXPECT_ERRC(decodeMessage(other), Errc::kUnsupported);
    // A future version may be laid out differently: only magic and version are read.
    P2PCDN_EXPECT_ERRC(decodeMessage(ByteView(other).first(6)), Errc::kUnsupported);
  }
}

TEST(WireHandshake, ExtensionLimit) {
  Bytes ext = test::randomBytes(kMaxExtensionBytes + 1, 4);
  Handshake h{samplePeerId(), 0, hashOfText("f"), ext};
  P2PCDN_EXPECT_ERRC(encode(h), Errc::kInvalidArgument);
  // Hand-made: extension length 1025 with 1025 bytes following.
  h.extension = ByteView(ext).first(kMaxExtensionBytes);
  Bytes b = encodeOk(h);
  b[62] = static_cast<std::uint8_t>((kMaxExtensionBytes + 1) >> 8);
  b[63] = static_cast<std::uint8_t>((kMaxExtensionBytes + 1) & 0xff);
  b.push_back(0);
  P2PCDN_EXPECT_ERRC(decodeMessage(b), Errc::kTooLarge);
}

TEST(WireHandshake, UnknownCapabilityBitsArePreserved) {
  Handshake h{samplePeerId(), 0x80000001u, hashOfText("f"), {}};
  const Bytes b = encodeOk(h);
  auto back = decodeMessage(b);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(std::get<Handshake>(*back).capabilities, 0x80000001u);
}

// ---- Bitfield ----

TEST(WireBitfield, SmallCountsRoundTrip) {
  struct Case {
    std::uint32_t count;
    Bytes bits;
    std::vector<ChunkIndex> set;
  };
  const Case cases[] = {
      {0, {}, {}},
      {1, {0x80}, {0}},
      {1, {0x00}, {}},
      {7, {0xfe}, {0, 1, 2, 3, 4, 5, 6}},
      {7, {0x42}, {1, 6}},
      {8, {0xff}, {0, 1, 2, 3, 4, 5, 6, 7}},
      {8, {0x01}, {7}},
      {9, {0x00, 0x80}, {8}},
      {9, {0xff, 0x80}, {0, 1, 2, 3, 4, 5, 6, 7, 8}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("count " + std::to_string(c.count));
    Bitfield bf{c.count, c.bits};
    Bytes b = encodeOk(bf);
    EXPECT_EQ(b.size(), 5 + bitfieldBytes(c.count));
    auto back = decodeMessage(b, DecodeContext{c.count});
    ASSERT_TRUE(back.has_value()) << describe(back);
    const auto& got = std::get<Bitfield>(*back);
    EXPECT_EQ(got.chunkCount, c.count);
    for (ChunkIndex i = 0; i < c.count + 9; ++i) {
      bool want = std::find(c.set.begin(), c.set.end(), i) != c.set.end();
      EXPECT_EQ(got.has(i), want) << "chunk " << i;
    }
  }
}

TEST(WireBitfield, NonZeroTrailingBitsAreRejected) {
  for (std::uint32_t count : {1u, 2u, 7u, 9u, 15u, 13u}) {
    const std::size_t n = bitfieldBytes(count);
    for (std::uint32_t spare = count; spare < n * 8; ++spare) {
      Bytes bits(n, 0);
      setBit(bits, spare);
      Bytes b = {2, 0, 0, 0, static_cast<std::uint8_t>(count)};
      b.insert(b.end(), bits.begin(), bits.end());
      P2PCDN_EXPECT_ERRC(decodeMessage(b), Errc::kMalformed);
      P2PCDN_EXPECT_ERRC(encode(Bitfield{count, bits}), Errc::kInvalidArgument);
    }
  }
}

TEST(WireBitfield, WrongByteCountIsRejected) {
  Bytes bits = {0xff, 0x80, 0x00};
  P2PCDN_EXPECT_ERRC(encode(Bitfield{9, ByteView(bits).first(1)}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(encode(Bitfield{9, bits}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(encode(Bitfield{0, ByteView(bits).first(1)}), Errc::kInvalidArgument);
  EXPECT_EQ(decodeErrc(Bytes{2, 0, 0, 0, 9, 0xff}), Errc::kMalformed);
  EXPECT_EQ(decodeErrc(Bytes{2, 0, 0, 0, 9, 0xff, 0x80, 0x00}), Errc::kMalformed);
  EXPECT_EQ(decodeErrc(Bytes{2, 0, 0, 0, 0, 0x00}), Errc::kMalformed);
}

TEST(WireBitfield, CountMustMatchTheManifestWhenKnown) {
  Bytes bits = {0xff, 0x80};
  Bytes b = encodeOk(Bitfield{9, bits});
  P2PCDN_EXPECT_OK(decodeMessage(b));
  P2PCDN_EXPECT_OK(decodeMessage(b, DecodeContext{9}));
  P2PCDN_EXPECT_ERRC(decodeMessage(b, DecodeContext{8}), Errc::kMalformed);
  P2PCDN_EXPECT_ERRC(decodeMessage(b, DecodeContext{10}), Errc::kMalformed);
  EXPECT_EQ(decodeErrc(encodeOk(Bitfield{0, {}}), DecodeContext{1}), Errc::kMalformed);
}

TEST(WireBitfield, LimitIsTheManifestChunkLimit) {
  Bytes bits(bitfieldBytes(kMaxChunkCount) + 1, 0);
  P2PCDN_EXPECT_ERRC(encode(Bitfield{kMaxChunkCount + 1, bits}), Errc::kInvalidArgument);
  Bytes b = {2};
  ByteWriter(b).u32(kMaxChunkCount + 1);
  b.insert(b.end(), bits.begin(), bits.end());
  P2PCDN_EXPECT_ERRC(decodeMessage(b), Errc::kTooLarge);
}

// ---- Requests, rejects, indexes ----

TEST(WireRequest, Limits) {
  P2PCDN_EXPECT_ERRC(encode(Request{1, 0, 0, 0}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(encode(Request{1, 0, 0, kMaxRequestLength + 1}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(encode(Request{1, 0, 1, kMaxRequestLength}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(encode(Request{1, 0, 0xffffffffu, 0xffffffffu}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(encode(Request{1, kMaxChunkCount, 0, 1}), Errc::kInvalidArgument);

  auto raw = [](std::uint32_t index, std::uint32_t offset, std::uint32_t length) {
    Bytes b = {4};
    ByteWriter w(b);
    w.u32(1);
    w.u32(index);
    w.u32(offset);
    w.u32(length);
    return b;
  };
  EXPECT_EQ(decodeErrc(raw(0, 0, kMaxRequestLength)), Errc::kOk);
  EXPECT_EQ(decodeErrc(raw(0, 0, 0)), Errc::kMalformed);
  EXPECT_EQ(decodeErrc(raw(0, 0, kMaxRequestLength + 1)), Errc::kTooLarge);
  EXPECT_EQ(decodeErrc(raw(0, 0xfffffff0u, 0x100)), Errc::kMalformed);  // would wrap in 32 bits
  EXPECT_EQ(decodeErrc(raw(kMaxChunkCount, 0, 1)), Errc::kMalformed);
}

TEST(WireRequest, IndexesAreCheckedAgainstTheChunkCount) {
  const DecodeContext ctx{5};
  EXPECT_EQ(decodeErrc(encodeOk(Have{4}), ctx), Errc::kOk);
  EXPECT_EQ(decodeErrc(encodeOk(Have{5}), ctx), Errc::kMalformed);
  EXPECT_EQ(decodeErrc(encodeOk(Request{1, 4, 0, 10}), ctx), Errc::kOk);
  EXPECT_EQ(decodeErrc(encodeOk(Request{1, 5, 0, 10}), ctx), Errc::kMalformed);
  Bytes d = {1, 2, 3};
  EXPECT_EQ(decodeErrc(encodeOk(Piece{1, 4, 3, 0, d}), ctx), Errc::kOk);
  EXPECT_EQ(decodeErrc(encodeOk(Piece{1, 5, 3, 0, d}), ctx), Errc::kMalformed);
  EXPECT_EQ(decodeErrc(encodeOk(Have{0}), DecodeContext{0}), Errc::kMalformed);
  EXPECT_EQ(decodeErrc(Bytes{3, 0, 0x10, 0, 0}), Errc::kMalformed);  // index 2^20 without a context
}

TEST(WireReject, RetryAfterLimitAndUnknownReasons) {
  P2PCDN_EXPECT_ERRC(encode(Reject{1, RejectReason::kOverloaded, kMaxRetryAfterMs + 1}), Errc::kInvalidArgument);
  Bytes b = encodeOk(Reject{1, RejectReason::kOverloaded, kMaxRetryAfterMs});
  b[9] = static_cast<std::uint8_t>(b[9] + 1);
  P2PCDN_EXPECT_ERRC(decodeMessage(b), Errc::kMalformed);
  const Bytes raw = {6, 0, 0, 0, 3, 0xee, 0, 0, 0, 0};
  auto r = decodeMessage(raw);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(static_cast<int>(std::get<Reject>(*r).reason), 0xee);
  EXPECT_EQ(rejectReasonName(std::get<Reject>(*r).reason), "unknown");
  EXPECT_EQ(rejectReasonName(RejectReason::kTooManyRequests), "too-many-requests");
}

// ---- Piece and manifest part fields ----

TEST(WirePiece, FieldRules) {
  Bytes d = test::randomBytes(100, 5);
  P2PCDN_EXPECT_ERRC(encode(Piece{1, 0, 0, 0, d}), Errc::kInvalidArgument);       // empty chunk
  P2PCDN_EXPECT_ERRC(encode(Piece{1, 0, 100, 0, {}}), Errc::kInvalidArgument);     // no data
  P2PCDN_EXPECT_ERRC(encode(Piece{1, 0, 100, 1, d}), Errc::kInvalidArgument);      // past the end
  P2PCDN_EXPECT_ERRC(encode(Piece{1, 0, kMaxStoredChunkBytes + 1, 0, d}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(encode(Piece{1, 0, 0xffffffffu, 0xffffffa0u, d}), Errc::kInvalidArgument);
  Bytes big = test::randomBytes(kMaxMessageBytes - kPieceHeaderBytes + 1, 6);
  P2PCDN_EXPECT_ERRC(encode(Piece{1, 0, kMaxStoredChunkBytes, 0, big}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_OK(encode(Piece{1, 0, 100, 0, d}));

  Bytes b = encodeOk(Piece{1, 0, 100, 0, d});
  b[12] = 99;  // chunkLength 99 < offset + length
  P2PCDN_EXPECT_ERRC(decodeMessage(b), Errc::kMalformed);
  b[12] = 100;
  b[9] = 0x01;  // chunkLength 16 MiB + 100 > limit
  P2PCDN_EXPECT_ERRC(decodeMessage(b), Errc::kTooLarge);
  Bytes empty = encodeOk(Piece{1, 0, 100, 0, ByteView(d).first(1)});
  empty[20] = 0;  // length 0 ...
  empty.pop_back();  // ... and no data
  P2PCDN_EXPECT_ERRC(decodeMessage(empty), Errc::kMalformed);
}

TEST(WireManifestPart, FieldRules) {
  Bytes d = test::randomBytes(10, 7);
  P2PCDN_EXPECT_ERRC(encode(ManifestPart{1, 0, 0, d}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(encode(ManifestPart{1, 9, 0, d}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(encode(ManifestPart{1, 10, 0, {}}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(encode(ManifestPart{1, static_cast<std::uint32_t>(kMaxManifestBytes) + 1, 0, d}),
                     Errc::kInvalidArgument);
  Bytes b = encodeOk(ManifestPart{1, 10, 0, d});
  b[5] = 0x7f;  // total far over kMaxManifestBytes
  P2PCDN_EXPECT_ERRC(decodeMessage(b), Errc::kTooLarge);
}

// ---- Goodbye ----

TEST(WireGoodbye, TextLimitAndUtf8) {
  P2PCDN_EXPECT_OK(encode(Goodbye{GoodbyeReason::kIdleTimeout, std::string(256, 'a')}));
  std::string tooLong(257, 'a');
  P2PCDN_EXPECT_ERRC(encode(Goodbye{GoodbyeReason::kNormal, tooLong}), Errc::kInvalidArgument);
  Bytes b = {11, 0, 0x01, 0x01};
  b.insert(b.end(), tooLong.begin(), tooLong.end());
  P2PCDN_EXPECT_ERRC(decodeMessage(b), Errc::kTooLarge);

  const std::string bad[] = {
      "line\nbreak", std::string("nul\0x", 5), "del\x7f", "\xc0\xaf",  // overlong '/'
      "\xed\xa0\x80",                                              // surrogate
      "\xf4\x90\x80\x80",                                          // > U+10FFFF
      "\xe2\x82",                                                  // truncated
      "\xc2\x85",                                                  // C1 control (NEL)
      "\x80", "\xff",
  };
  for (const std::string& t : bad) {
    SCOPED_TRACE(toHex(asBytes(t)));
    P2PCDN_EXPECT_ERRC(encode(Goodbye{GoodbyeReason::kNormal, t}), Errc::kInvalidArgument);
    // Built byte by byte: g++ 12 -O2 reports a false -Warray-bounds on insert() here.
    Bytes m = {11, 1, 0, static_cast<std::uint8_t>(t.size())};
    for (char c : t) m.push_back(static_cast<std::uint8_t>(c));
    P2PCDN_EXPECT_ERRC(decodeMessage(m), Errc::kMalformed);
  }
  const Bytes good = encodeOk(Goodbye{GoodbyeReason::kWrongFile, "nicht gefunden ✓ \xc2\xa0"});
  auto ok = decodeMessage(good);
  ASSERT_TRUE(ok.has_value()) << describe(ok);
  EXPECT_EQ(std::get<Goodbye>(*ok).text, "nicht gefunden ✓ \xc2\xa0");
  EXPECT_EQ(goodbyeReasonName(std::get<Goodbye>(*ok).reason), "wrong-file");
}

// ---- Against a manifest ----

TEST(WireCheck, MessagesAgainstTheManifest) {
  Manifest m = test::sampleManifest(true, 5000, 1024);  // 5 chunks: 4 × 1040, 1 × (904 + 16)
  ASSERT_EQ(m.chunkCount(), 5u);
  Bytes bits = {0xf8};
  P2PCDN_EXPECT_OK(checkAgainstManifest(Bitfield{5, bits}, m));
  Bytes bits6 = {0xfc};
  P2PCDN_EXPECT_ERRC(checkAgainstManifest(Bitfield{6, bits6}, m), Errc::kMalformed);
  P2PCDN_EXPECT_OK(checkAgainstManifest(Have{4}, m));
  P2PCDN_EXPECT_ERRC(checkAgainstManifest(Have{5}, m), Errc::kMalformed);
  P2PCDN_EXPECT_OK(checkAgainstManifest(Request{1, 0, 0, 1040}, m));
  P2PCDN_EXPECT_ERRC(checkAgainstManifest(Request{1, 0, 1, 1040}, m), Errc::kMalformed);
  P2PCDN_EXPECT_OK(checkAgainstManifest(Request{1, 4, 900, 20}, m));
  P2PCDN_EXPECT_ERRC(checkAgainstManifest(Request{1, 4, 900, 21}, m), Errc::kMalformed);
  P2PCDN_EXPECT_ERRC(checkAgainstManifest(Request{1, 5, 0, 1}, m), Errc::kMalformed);
  Bytes d = {1};
  P2PCDN_EXPECT_OK(checkAgainstManifest(Piece{1, 4, 920, 0, d}, m));
  P2PCDN_EXPECT_ERRC(checkAgainstManifest(Piece{1, 4, 1040, 0, d}, m), Errc::kMalformed);
  P2PCDN_EXPECT_ERRC(checkAgainstManifest(Piece{1, 7, 920, 0, d}, m), Errc::kMalformed);
  P2PCDN_EXPECT_OK(checkAgainstManifest(KeepAlive{}, m));
}

// ---- Chunk split and reassembly ----

// Decodes every message, checks its size, and returns the pieces (viewing `msgs`).
std::vector<Piece> decodePieces(const std::vector<Bytes>& msgs, std::size_t maxMessageBytes) {
  std::vector<Piece> out;
  for (const Bytes& b : msgs) {
    EXPECT_LE(b.size(), maxMessageBytes);
    auto m = decodeMessage(b);
    EXPECT_TRUE(m.has_value()) << describe(m);
    if (!m) continue;
    EXPECT_TRUE(std::holds_alternative<Piece>(*m));
    if (auto* p = std::get_if<Piece>(&*m)) out.push_back(*p);
  }
  return out;
}

TEST(WireSplit, ChunksOfEverySizeReassembleInAnyOrder) {
  const Bytes source = test::randomBytes(kMaxStoredChunkBytes, 8);
  std::mt19937 rng(9);
  for (std::size_t maxMsg : {std::size_t{16384}, kMaxMessageBytes}) {
    const std::size_t payload = maxPiecePayload(maxMsg);
    const std::size_t sizes[] = {1,          2,           payload - 1,         payload,         payload + 1,
                                 2 * payload, 65536,      kDefaultChunkSize,   kDefaultChunkSize + 16,
                                 (1u << 20) + 7, kMaxChunkSize, kMaxStoredChunkBytes};
    for (std::size_t size : sizes) {
      SCOPED_TRACE("max message " + std::to_string(maxMsg) + ", chunk " + std::to_string(size));
      ByteView chunk = ByteView(source).first(size);
      auto msgs = splitChunk(17, 3, chunk, maxMsg);
      ASSERT_TRUE(msgs.has_value()) << describe(msgs);
      EXPECT_EQ(msgs->size(), (size + payload - 1) / payload);
      std::vector<Piece> pieces = decodePieces(*msgs, maxMsg);
      ASSERT_EQ(pieces.size(), msgs->size());
      std::shuffle(pieces.begin(), pieces.end(), rng);

      auto asm_ = ChunkAssembler::create(3, static_cast<std::uint32_t>(size));
      ASSERT_TRUE(asm_.has_value());
      for (std::size_t i = 0; i < pieces.size(); ++i) {
        EXPECT_FALSE(asm_->complete());
        ASSERT_TRUE(asm_->add(pieces[i]).has_value()) << "piece " << i;
      }
      EXPECT_TRUE(asm_->complete());
      EXPECT_EQ(asm_->receivedBytes(), size);
      auto got = asm_->take();
      ASSERT_TRUE(got.has_value());
      ASSERT_EQ(got->size(), size);
      EXPECT_TRUE(std::equal(got->begin(), got->end(), chunk.begin()));
    }
  }
}

TEST(WireSplit, SubRangeRequestsCoverExactlyTheRange) {
  const Bytes chunk = test::randomBytes(kDefaultChunkSize + 16, 10);
  auto plan = planPieces(4, 1, chunk, 1000, 70000, 16384);
  ASSERT_TRUE(plan.has_value()) << describe(plan);
  std::uint32_t pos = 1000;
  for (const Piece& p : *plan) {
    EXPECT_EQ(p.requestId, 4u);
    EXPECT_EQ(p.index, 1u);
    EXPECT_EQ(p.chunkLength, chunk.size());
    EXPECT_EQ(p.offset, pos);
    EXPECT_TRUE(std::equal(p.data.begin(), p.data.end(), chunk.begin() + static_cast<std::ptrdiff_t>(pos)));
    auto b = encode(p);
    ASSERT_TRUE(b.has_value());
    EXPECT_LE(b->size(), 16384u);
    pos += static_cast<std::uint32_t>(p.data.size());
  }
  EXPECT_EQ(pos, 71000u);
  // Two peers serve the two halves of one chunk; one assembler takes both.
  auto a = ChunkAssembler::create(1, static_cast<std::uint32_t>(chunk.size()));
  ASSERT_TRUE(a.has_value());
  auto first = planPieces(1, 1, chunk, 0, 131072, kMaxMessageBytes);
  auto second = planPieces(2, 1, chunk, 131072, static_cast<std::uint32_t>(chunk.size()) - 131072, 16384);
  ASSERT_TRUE(first && second);
  for (const Piece& p : *second) P2PCDN_ASSERT_OK(a->add(p));
  for (const Piece& p : *first) P2PCDN_ASSERT_OK(a->add(p));
  ASSERT_TRUE(a->complete());
  EXPECT_EQ(*a->take(), chunk);
}

TEST(WireSplit, SplitterArguments) {
  const Bytes chunk = test::randomBytes(1000, 11);
  P2PCDN_EXPECT_ERRC(splitChunk(1, 0, chunk, kMinSplitMessageBytes - 1), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(splitChunk(1, 0, chunk, kMaxMessageBytes + 1), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(splitChunk(1, 0, ByteView{}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(splitChunk(1, kMaxChunkCount, chunk), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(planPieces(1, 0, chunk, 0, 0), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(planPieces(1, 0, chunk, 999, 2), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(planPieces(1, 0, chunk, 0xffffffffu, 2), Errc::kInvalidArgument);
  Bytes huge(kMaxStoredChunkBytes + 1, 0);
  P2PCDN_EXPECT_ERRC(splitChunk(1, 0, huge), Errc::kTooLarge);
  auto smallest = splitChunk(1, 0, chunk, kMinSplitMessageBytes);
  ASSERT_TRUE(smallest.has_value());
  for (const Bytes& b : *smallest) EXPECT_LE(b.size(), kMinSplitMessageBytes);
}

TEST(WireAssembler, RejectsBadPiecesWithoutChangingState) {
  const Bytes chunk = test::randomBytes(100, 12);
  ByteView c(chunk);
  auto a = ChunkAssembler::create(2, 100);
  ASSERT_TRUE(a.has_value());
  P2PCDN_ASSERT_OK(a->add(Piece{1, 2, 100, 10, c.subspan(10, 20)}));  // [10, 30)
  P2PCDN_ASSERT_OK(a->add(Piece{1, 2, 100, 50, c.subspan(50, 10)}));  // [50, 60)
  const Piece bad[] = {
      Piece{1, 2, 100, 10, c.subspan(10, 20)},  // duplicate
      Piece{1, 2, 100, 5, c.subspan(5, 6)},     // overlaps the start
      Piece{1, 2, 100, 29, c.subspan(29, 2)},   // overlaps the end
      Piece{1, 2, 100, 15, c.subspan(15, 5)},   // inside
      Piece{1, 2, 100, 0, c.subspan(0, 70)},    // covers both
      Piece{1, 2, 100, 25, c.subspan(25, 30)},  // bridges both
      Piece{1, 2, 100, 96, c.subspan(95, 5)},   // past the end
      Piece{1, 2, 101, 70, c.subspan(70, 5)},   // other chunk length (oversize)
      Piece{1, 3, 100, 70, c.subspan(70, 5)},   // other chunk
      Piece{1, 2, 100, 70, {}},                 // empty
      Piece{1, 2, 100, 0xffffffffu, c.subspan(0, 2)},
  };
  for (const Piece& p : bad) {
    SCOPED_TRACE("offset " + std::to_string(p.offset) + " size " + std::to_string(p.data.size()));
    auto s = a->add(p);
    EXPECT_FALSE(s.has_value());
    EXPECT_EQ(a->receivedBytes(), 30u);
  }
  P2PCDN_EXPECT_ERRC(a->take(), Errc::kInvalidArgument);
  // Adjacent pieces are fine; the rest completes the chunk.
  P2PCDN_ASSERT_OK(a->add(Piece{9, 2, 100, 30, c.subspan(30, 20)}));
  P2PCDN_ASSERT_OK(a->add(Piece{9, 2, 100, 0, c.subspan(0, 10)}));
  P2PCDN_ASSERT_OK(a->add(Piece{9, 2, 100, 60, c.subspan(60, 40)}));
  ASSERT_TRUE(a->complete());
  P2PCDN_EXPECT_ERRC(a->add(Piece{9, 2, 100, 0, c.subspan(0, 1)}), Errc::kMalformed);
  EXPECT_EQ(*a->take(), chunk);
}

TEST(WireAssembler, CreationAndFragmentationLimits) {
  P2PCDN_EXPECT_ERRC(ChunkAssembler::create(0, 0), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(ChunkAssembler::create(0, kMaxStoredChunkBytes + 1), Errc::kInvalidArgument);
  Manifest m = test::sampleManifest(true, 5000, 1024);
  auto fm = ChunkAssembler::forManifest(m, 4);
  ASSERT_TRUE(fm.has_value());
  EXPECT_EQ(fm->chunkLength(), 904u + 16u);
  P2PCDN_EXPECT_ERRC(ChunkAssembler::forManifest(m, 5), Errc::kInvalidArgument);

  // One-byte pieces at even offsets: each is a separate range.
  const std::uint32_t len = 2 * (kMaxAssemblyRanges + 1);
  const Bytes chunk = test::randomBytes(len, 13);
  ByteView c(chunk);
  auto a = ChunkAssembler::create(0, len);
  ASSERT_TRUE(a.has_value());
  for (std::uint32_t i = 0; i < kMaxAssemblyRanges; ++i) P2PCDN_ASSERT_OK(a->add(Piece{1, 0, len, 2 * i, c.subspan(2 * i, 1)}));
  P2PCDN_EXPECT_ERRC(a->add(Piece{1, 0, len, len - 1, c.subspan(len - 1, 1)}), Errc::kTooLarge);
  // Pieces that join existing ranges are still accepted and merge them.
  for (std::uint32_t i = 0; i < kMaxAssemblyRanges; ++i) P2PCDN_ASSERT_OK(a->add(Piece{1, 0, len, 2 * i + 1, c.subspan(2 * i + 1, 1)}));
  P2PCDN_ASSERT_OK(a->add(Piece{1, 0, len, len - 2, c.subspan(len - 2, 2)}));
  ASSERT_TRUE(a->complete());
  EXPECT_EQ(*a->take(), chunk);
}

// ---- Manifest transfer ----

TEST(WireManifest, SplitReassembleAndVerify) {
  // 40 000 chunks: a 1.28 MB manifest, several messages even at the largest size.
  Manifest m = test::sampleManifest(true, 40'000ull * 1024, 1024);
  auto enc = encodeManifest(m);
  ASSERT_TRUE(enc.has_value());
  const FileId id = manifestId(*enc);
  std::mt19937 rng(14);
  for (std::size_t maxMsg : {std::size_t{16384}, kMaxMessageBytes}) {
    SCOPED_TRACE("max message " + std::to_string(maxMsg));
    auto msgs = splitManifest(5, *enc, maxMsg);
    ASSERT_TRUE(msgs.has_value()) << describe(msgs);
    EXPECT_GT(msgs->size(), 1u);
    std::vector<ManifestPart> parts;
    for (const Bytes& b : *msgs) {
      EXPECT_LE(b.size(), maxMsg);
      auto d = decodeMessage(b);
      ASSERT_TRUE(d.has_value()) << describe(d);
      parts.push_back(std::get<ManifestPart>(*d));
    }
    std::shuffle(parts.begin(), parts.end(), rng);
    ManifestAssembler a(5);
    for (const ManifestPart& p : parts) {
      EXPECT_FALSE(a.complete());
      P2PCDN_EXPECT_ERRC(a.finish(id), Errc::kInvalidArgument);
      P2PCDN_ASSERT_OK(a.add(p));
    }
    ASSERT_TRUE(a.complete());
    EXPECT_EQ(a.totalLength(), enc->size());
    auto got = a.finish(id);
    ASSERT_TRUE(got.has_value()) << describe(got);
    EXPECT_TRUE(*got == m);
    P2PCDN_EXPECT_ERRC(a.finish(hashOfText("another file")), Errc::kIntegrity);
    P2PCDN_EXPECT_ERRC(a.add(parts.front()), Errc::kMalformed);  // duplicate
  }
}

TEST(WireManifest, TamperedManifestIsRejected) {
  Manifest m = test::sampleManifest(false, 3000, 1024);
  Bytes enc = *encodeManifest(m);
  const FileId id = manifestId(enc);
  P2PCDN_EXPECT_OK(verifyManifestBytes(enc, id));
  for (std::size_t pos : {std::size_t{0}, std::size_t{10}, enc.size() - 1}) {
    Bytes bad = enc;
    bad[pos] ^= 0x01;
    P2PCDN_EXPECT_ERRC(verifyManifestBytes(bad, id), Errc::kIntegrity);
    auto msgs = splitManifest(1, bad, 64);
    ASSERT_TRUE(msgs.has_value());
    ManifestAssembler a(1);
    for (const Bytes& b : *msgs) P2PCDN_ASSERT_OK(a.add(std::get<ManifestPart>(*decodeMessage(b))));
    P2PCDN_EXPECT_ERRC(a.finish(id), Errc::kIntegrity);
  }
  // Bytes that hash to the id they are checked against, but are no manifest.
  const Bytes junk = {1, 2, 3};
  P2PCDN_EXPECT_ERRC(verifyManifestBytes(junk, manifestId(junk)), Errc::kMalformed);
}

TEST(WireManifest, AssemblerRules) {
  Bytes d = test::randomBytes(100, 15);
  ByteView v(d);
  ManifestAssembler a(3);
  EXPECT_EQ(a.totalLength(), 0u);
  EXPECT_FALSE(a.complete());
  P2PCDN_EXPECT_ERRC(a.add(ManifestPart{4, 100, 0, v.first(10)}), Errc::kMalformed);  // other request
  P2PCDN_EXPECT_ERRC(a.add(ManifestPart{3, static_cast<std::uint32_t>(kMaxManifestBytes) + 1, 0, v.first(10)}),
                     Errc::kTooLarge);
  P2PCDN_EXPECT_ERRC(a.add(ManifestPart{3, 0, 0, v.first(10)}), Errc::kMalformed);
  P2PCDN_EXPECT_ERRC(a.add(ManifestPart{3, 100, 95, v.first(10)}), Errc::kMalformed);  // past the end
  EXPECT_EQ(a.totalLength(), 0u);
  P2PCDN_ASSERT_OK(a.add(ManifestPart{3, 100, 90, v.subspan(90, 10)}));
  EXPECT_EQ(a.totalLength(), 100u);
  P2PCDN_EXPECT_ERRC(a.add(ManifestPart{3, 101, 0, v.first(10)}), Errc::kMalformed);  // other total
  P2PCDN_EXPECT_ERRC(a.add(ManifestPart{3, 100, 85, v.subspan(85, 10)}), Errc::kMalformed);  // overlap
  P2PCDN_EXPECT_ERRC(a.add(ManifestPart{3, 100, 10, {}}), Errc::kMalformed);
  P2PCDN_ASSERT_OK(a.add(ManifestPart{3, 100, 0, v.first(90)}));
  ASSERT_TRUE(a.complete());
  P2PCDN_EXPECT_ERRC(a.finish(manifestId(d)), Errc::kMalformed);  // right hash, not a manifest
  P2PCDN_EXPECT_ERRC(splitManifest(1, ByteView{}), Errc::kInvalidArgument);
  P2PCDN_EXPECT_ERRC(splitManifest(1, d, 16), Errc::kInvalidArgument);
}

// A short conversation, as the session layer will drive it.
TEST(WireConversation, FetchAManifestAndAChunk) {
  test::TestFile f = test::makeTestFile(3 * 262144 + 5, 262144, 16);
  const Bytes manifestBytes = *encodeManifest(f.manifest);

  // Leecher → seeder: HANDSHAKE, MANIFEST_REQUEST.
  Bytes hs = encodeOk(Handshake{samplePeerId(), kCapEncryption, f.id, {}});
  auto seen = decodeMessage(hs);
  ASSERT_TRUE(seen.has_value());
  ASSERT_EQ(std::get<Handshake>(*seen).fileId, f.id);
  Bytes mreq = encodeOk(ManifestRequest{1});
  const std::uint32_t mreqId = std::get<ManifestRequest>(*decodeMessage(mreq)).requestId;

  // Seeder → leecher: the manifest in parts, then its bitfield.
  auto parts = splitManifest(mreqId, manifestBytes);
  ASSERT_TRUE(parts.has_value());
  ManifestAssembler ma(1);
  for (const Bytes& b : *parts) P2PCDN_ASSERT_OK(ma.add(std::get<ManifestPart>(*decodeMessage(b))));
  auto manifest = ma.finish(f.id);
  ASSERT_TRUE(manifest.has_value()) << describe(manifest);
  const DecodeContext ctx{manifest->chunkCount()};
  Bytes bits(bitfieldBytes(ctx.chunkCount.value()), 0);
  for (ChunkIndex i = 0; i < *ctx.chunkCount; ++i) setBit(bits, i);
  const Bytes bfBytes = encodeOk(Bitfield{*ctx.chunkCount, bits});
  auto bf = decodeMessage(bfBytes, ctx);
  ASSERT_TRUE(bf.has_value()) << describe(bf);
  ASSERT_TRUE(std::get<Bitfield>(*bf).has(3));

  // Leecher requests the last chunk whole; the seeder answers in pieces.
  const Request req{2, 3, 0, manifest->storedChunkLength(3)};
  const Bytes rqBytes = encodeOk(req);
  auto rq = decodeMessage(rqBytes, ctx);
  ASSERT_TRUE(rq.has_value());
  P2PCDN_ASSERT_OK(checkAgainstManifest(*rq, *manifest));
  const auto& r = std::get<Request>(*rq);
  auto plan = planPieces(r.requestId, r.index, f.chunks[3], r.offset, r.length);
  ASSERT_TRUE(plan.has_value());
  auto ca = ChunkAssembler::forManifest(*manifest, 3);
  ASSERT_TRUE(ca.has_value());
  for (const Piece& p : *plan) {
    Bytes wireBytes = *encode(p);
    auto got = decodeMessage(wireBytes, ctx);
    ASSERT_TRUE(got.has_value());
    P2PCDN_ASSERT_OK(checkAgainstManifest(*got, *manifest));
    P2PCDN_ASSERT_OK(ca->add(std::get<Piece>(*got)));
  }
  auto chunk = ca->take();
  ASSERT_TRUE(chunk.has_value());
  P2PCDN_EXPECT_OK(verifyChunk(*manifest, 3, *chunk));

  const Bytes byeBytes = encodeOk(Goodbye{GoodbyeReason::kNormal, "done"});
  auto bye = decodeMessage(byeBytes);
  ASSERT_TRUE(bye.has_value());
  EXPECT_EQ(typeOf(*bye), MessageType::kGoodbye);
}

}  // namespace
}  // namespace p2pcdn::wire
