// The tracker protocol: WebTorrent's WebSocket tracker messages (JSON text
// frames), as spoken by webtorrent/bittorrent-tracker, libtorrent and aquatic,
// so our tracker serves their clients and our peers can use their trackers.
// Pure codec: no I/O, no clock, no state; builds with emscripten. The byte
// layout, limits and the swarm key: docs/signaling.md.
//
// Ids (info_hash, peer_id, offer_id) are 20 raw bytes. On the wire each is a
// JSON string of 20 code points U+0000..U+00FF, one per byte (a "binary
// string": JavaScript's latin1 view of a Buffer). In the UTF-8 that JSON text
// travels in, bytes >= 0x80 take two bytes. Our encoder writes what
// JSON.stringify writes: UTF-8 as is, control characters as \u00XX.
//
// Decoders take untrusted input: they never throw, never assert, bound every
// size (kMax*), and return Errc::kMalformed / kTooLarge with a detail that is
// safe to send back to the client as a "failure reason". Unknown fields are
// ignored (extensions go in extra fields). Encoders never fail.
//
// Thread-safety: all functions are pure and may be called from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn::signaling {

// ---- Limits (docs/signaling.md) ------------------------------------------------

inline constexpr std::size_t kIdSize = 20;
// One WebSocket message, either direction. An SDP offer with all its ICE
// candidates is 1-3 KiB; ten of them fit with room to spare.
inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;
inline constexpr std::size_t kMaxOffers = 10;            // per announce
inline constexpr std::size_t kMaxSdpBytes = 32 * 1024;   // one offer's or answer's "sdp"
inline constexpr std::size_t kMaxSdpTypeBytes = 32;      // "type": "offer" / "answer"
inline constexpr std::size_t kMaxScrapeHashes = 32;      // info hashes in one scrape
inline constexpr std::size_t kMaxFailureReasonBytes = 1024;
inline constexpr std::uint32_t kMaxNumwant = 1000;       // larger values are clamped
inline constexpr int kMaxJsonDepth = 8;                  // the deepest valid message has 4 levels

// BLAKE3 derive_key context for the swarm key (never change: it names swarms).
inline constexpr const char* kSwarmKeyContext = "p2pcdn 2026-11-24 swarm key v1";

// ---- Ids -------------------------------------------------------------------------

using Id20 = std::array<std::uint8_t, kIdSize>;
using InfoHash = Id20;  // the swarm key
using PeerId = Id20;
using OfferId = Id20;

// FNV-1a over all 20 bytes (peer ids share prefixes such as "-WW2085-"). Not
// keyed: where clients choose the ids and a map is large, use a keyed hash
// (the tracker's KeyedIdHash).
struct Id20Hasher {
  std::size_t operator()(const Id20& id) const noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (std::uint8_t b : id) h = (h ^ b) * 0x100000001b3ull;
    return static_cast<std::size_t>(h);
  }
};

// The info_hash under which the peers of a file meet: the first 20 bytes of
// BLAKE3-derive_key(kSwarmKeyContext, fileId). A tracker (or anyone watching
// one) sees only this key; it cannot recover the file id, which is what
// fetches the manifest. Domain-separated from every other use of BLAKE3.
InfoHash swarmKey(const FileId& fileId);

// Bytes -> UTF-8 text of one code point per byte (U+0000..U+00FF).
std::string toBinaryString(ByteView bytes);
// The inverse for exactly out.size() code points; false on any code point
// above U+00FF, invalid UTF-8 or another length. out is unspecified on false.
bool fromBinaryString(std::string_view utf8, std::span<std::uint8_t> out);

// ---- Client -> tracker -----------------------------------------------------------

enum class Action : std::uint8_t { kAnnounce, kScrape };
std::string_view actionName(Action a);  // "announce", "scrape"

// "event": absent (kNone, a periodic update), or one of these strings.
enum class Event : std::uint8_t { kNone, kStarted, kStopped, kCompleted, kUpdate, kPaused };
std::string_view eventName(Event e);  // "" for kNone, else the wire string

// What simple-peer emits as its "signal" data: {"type": "offer", "sdp": "v=0..."}.
struct SessionDescription {
  std::string type;  // "offer" / "answer" (at most kMaxSdpTypeBytes; may be empty)
  std::string sdp;   // at most kMaxSdpBytes
  bool operator==(const SessionDescription&) const = default;
};

struct OfferEntry {
  OfferId offerId{};
  SessionDescription offer;
  bool operator==(const OfferEntry&) const = default;
};

// An announce that carries an answer to a relayed offer.
struct AnswerEntry {
  PeerId toPeerId{};  // the peer whose offer this answers ("to_peer_id")
  OfferId offerId{};  // that offer's id
  SessionDescription answer;
  bool operator==(const AnswerEntry&) const = default;
};

struct AnnounceRequest {
  InfoHash infoHash{};
  PeerId peerId{};
  Event event = Event::kNone;
  // Numbers: absent, null or not a number -> nullopt; negative -> 0; fractions
  // are truncated; numwant is clamped to kMaxNumwant.
  std::optional<std::uint32_t> numwant;
  std::optional<std::uint64_t> uploaded;
  std::optional<std::uint64_t> downloaded;
  std::optional<std::uint64_t> left;  // 0 means seeder
  std::vector<OfferEntry> offers;     // at most kMaxOffers
  std::optional<AnswerEntry> answer;
  bool operator==(const AnnounceRequest&) const = default;
};

struct ScrapeRequest {
  std::vector<InfoHash> infoHashes;  // 1..kMaxScrapeHashes
  bool operator==(const ScrapeRequest&) const = default;
};

using ClientMessage = std::variant<AnnounceRequest, ScrapeRequest>;

// What a decoder learnt before it failed, so a tracker can address its
// "failure reason" to the right swarm (clients ignore failures without it).
struct DecodeContext {
  std::optional<Action> action;
  std::optional<InfoHash> infoHash;
};

Result<ClientMessage> decodeClientMessage(std::string_view text, DecodeContext* context = nullptr);
std::string encodeClientMessage(const ClientMessage& message);

// ---- Tracker -> client -----------------------------------------------------------

// The reply to an announce (none is sent for an announce that carries an answer).
struct AnnounceResponse {
  InfoHash infoHash{};
  std::uint32_t interval = 0;  // seconds until the next announce
  std::uint32_t complete = 0;  // seeders
  std::uint32_t incomplete = 0;  // leechers
  bool operator==(const AnnounceResponse&) const = default;
};

// An offer from peerId, relayed to one other peer of the swarm.
struct RelayedOffer {
  InfoHash infoHash{};
  PeerId peerId{};  // who made the offer
  OfferId offerId{};
  SessionDescription offer;
  bool operator==(const RelayedOffer&) const = default;
};

// An answer from peerId, relayed to the peer whose offer it answers.
struct RelayedAnswer {
  InfoHash infoHash{};
  PeerId peerId{};  // who answered
  OfferId offerId{};
  SessionDescription answer;
  bool operator==(const RelayedAnswer&) const = default;
};

struct ScrapeFile {
  InfoHash infoHash{};
  std::uint32_t complete = 0;
  std::uint32_t incomplete = 0;
  std::uint32_t downloaded = 0;
  bool operator==(const ScrapeFile&) const = default;
};

struct ScrapeResponse {
  std::vector<ScrapeFile> files;  // at most kMaxScrapeHashes, distinct info hashes, any order
  std::uint32_t minRequestInterval = 0;  // "flags": {"min_request_interval"}
  bool operator==(const ScrapeResponse&) const = default;
};

// {"failure reason": "..."}, with "action" and "info_hash" when known.
struct Failure {
  std::string reason;  // at most kMaxFailureReasonBytes (the encoder truncates)
  std::optional<Action> action;
  std::optional<InfoHash> infoHash;
  bool operator==(const Failure&) const = default;
};

using TrackerMessage = std::variant<AnnounceResponse, RelayedOffer, RelayedAnswer, ScrapeResponse, Failure>;

Result<TrackerMessage> decodeTrackerMessage(std::string_view text);
std::string encodeTrackerMessage(const TrackerMessage& message);

}  // namespace p2pcdn::signaling
