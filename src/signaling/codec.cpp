// JSON codec of the WebTorrent tracker messages (docs/signaling.md).
#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/text.hpp"
#include "signaling/signaling.hpp"

namespace p2pcdn::signaling {
namespace {

using nlohmann::json;

constexpr const char* kClientOp = "decode tracker request";
constexpr const char* kTrackerOp = "decode tracker message";


Result<json> parseObject(std::string_view text, const char* op) {
  if (text.size() > kMaxMessageBytes) {
    return fail(Errc::kTooLarge, op, "message larger than " + std::to_string(kMaxMessageBytes) + " bytes");
  }
  if (!jsonNestingWithin(text, kMaxJsonDepth)) return fail(Errc::kMalformed, op, "JSON nested too deeply");
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(Errc::kMalformed, op, "invalid JSON");
  if (!j.is_object()) return fail(Errc::kMalformed, op, "message must be a JSON object");
  return j;
}

std::string dump(const json& j) {
  // Like JSON.stringify: UTF-8 as is, only '"', '\\' and control characters
  // escaped, so a decoded message never grows when encoded again (a binary
  // string's byte >= 0x80 is 2 bytes, not 6). replace: never throws on a
  // string that is not UTF-8.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

const json* find(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// A present, non-null member.
const json* findValue(const json& obj, const char* key) {
  const json* v = find(obj, key);
  return v && !v->is_null() ? v : nullptr;
}

Status getId(const json& obj, const char* key, Id20& out, const char* op) {
  const json* v = find(obj, key);
  if (!v || !v->is_string()) return fail(Errc::kMalformed, op, std::string("invalid ") + key);
  if (!fromBinaryString(v->get_ref<const std::string&>(), out)) {
    return fail(Errc::kMalformed, op, std::string("invalid ") + key);
  }
  return {};
}

std::optional<std::uint64_t> asU64(const json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) {
    const auto x = v.get<std::int64_t>();
    return x < 0 ? 0 : static_cast<std::uint64_t>(x);
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!(d > 0)) return 0;
    if (d >= 18446744073709551615.0) return std::numeric_limits<std::uint64_t>::max();
    return static_cast<std::uint64_t>(d);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> optionalU64(const json& obj, const char* key) {
  const json* v = find(obj, key);
  return v ? asU64(*v) : std::nullopt;
}

std::uint32_t clampU32(std::uint64_t v, std::uint32_t max = std::numeric_limits<std::uint32_t>::max()) {
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(v, max));
}

Status getDescription(const json& v, const char* what, SessionDescription& out, const char* op) {
  if (!v.is_object()) return fail(Errc::kMalformed, op, std::string(what) + " must be an object");
  const json* sdp = find(v, "sdp");
  if (!sdp || !sdp->is_string()) return fail(Errc::kMalformed, op, std::string(what) + " has no sdp string");
  const auto& sdpText = sdp->get_ref<const std::string&>();
  if (sdpText.size() > kMaxSdpBytes) return fail(Errc::kTooLarge, op, std::string(what) + " sdp too large");
  out.sdp = sdpText;
  out.type.clear();
  if (const json* type = findValue(v, "type")) {
    if (!type->is_string()) return fail(Errc::kMalformed, op, std::string(what) + " type must be a string");
    const auto& typeText = type->get_ref<const std::string&>();
    if (typeText.size() > kMaxSdpTypeBytes) return fail(Errc::kTooLarge, op, std::string(what) + " type too long");
    out.type = typeText;
  }
  return {};
}

json descriptionJson(const SessionDescription& d) {
  json j = json::object();
  if (!d.type.empty()) j["type"] = d.type;
  j["sdp"] = d.sdp;
  return j;
}

std::string binary(const Id20& id) { return toBinaryString(id); }

std::optional<Action> actionOf(const json& obj) {
  const json* a = find(obj, "action");
  if (!a || !a->is_string()) return std::nullopt;
  const auto& s = a->get_ref<const std::string&>();
  if (s == "announce") return Action::kAnnounce;
  if (s == "scrape") return Action::kScrape;
  return std::nullopt;
}

// ---- client -> tracker ----

Result<AnnounceRequest> decodeAnnounce(const json& j, DecodeContext* ctx) {
  AnnounceRequest a;
  P2PCDN_TRY(getId(j, "info_hash", a.infoHash, kClientOp));
  if (ctx) ctx->infoHash = a.infoHash;
  P2PCDN_TRY(getId(j, "peer_id", a.peerId, kClientOp));

  if (const json* e = findValue(j, "event")) {
    if (!e->is_string()) return fail(Errc::kMalformed, kClientOp, "invalid event");
    const auto& s = e->get_ref<const std::string&>();
    if (s.empty()) a.event = Event::kNone;
    else if (s == "started") a.event = Event::kStarted;
    else if (s == "stopped") a.event = Event::kStopped;
    else if (s == "completed") a.event = Event::kCompleted;
    else if (s == "update") a.event = Event::kUpdate;
    else if (s == "paused") a.event = Event::kPaused;
    else return fail(Errc::kMalformed, kClientOp, "invalid event");
  }

  if (auto n = optionalU64(j, "numwant")) a.numwant = clampU32(*n, kMaxNumwant);
  a.uploaded = optionalU64(j, "uploaded");
  a.downloaded = optionalU64(j, "downloaded");
  a.left = optionalU64(j, "left");

  if (const json* offers = findValue(j, "offers")) {
    if (!offers->is_array()) return fail(Errc::kMalformed, kClientOp, "offers must be an array");
    if (offers->size() > kMaxOffers) {
      return fail(Errc::kTooLarge, kClientOp, "more than " + std::to_string(kMaxOffers) + " offers");
    }
    a.offers.reserve(offers->size());
    for (const json& o : *offers) {
      if (!o.is_object()) return fail(Errc::kMalformed, kClientOp, "an offer must be an object");
      OfferEntry entry;
      P2PCDN_TRY(getId(o, "offer_id", entry.offerId, kClientOp));
      const json* offer = find(o, "offer");
      if (!offer) return fail(Errc::kMalformed, kClientOp, "an offer has no offer");
      P2PCDN_TRY(getDescription(*offer, "offer", entry.offer, kClientOp));
      a.offers.push_back(std::move(entry));
    }
  }

  if (const json* answer = findValue(j, "answer")) {
    AnswerEntry entry;
    P2PCDN_TRY(getDescription(*answer, "answer", entry.answer, kClientOp));
    if (auto s = getId(j, "to_peer_id", entry.toPeerId, kClientOp); !s) {
      return fail(Errc::kMalformed, kClientOp, "invalid to_peer_id (required with answer)");
    }
    if (auto s = getId(j, "offer_id", entry.offerId, kClientOp); !s) {
      return fail(Errc::kMalformed, kClientOp, "invalid offer_id (required with answer)");
    }
    a.answer = std::move(entry);
  }
  return a;
}

Result<ScrapeRequest> decodeScrape(const json& j, DecodeContext* ctx) {
  ScrapeRequest s;
  const json* ih = findValue(j, "info_hash");
  if (!ih) return fail(Errc::kMalformed, kClientOp, "scrape needs info_hash");
  auto add = [&](const json& v) -> Status {
    InfoHash h{};
    if (!v.is_string() || !fromBinaryString(v.get_ref<const std::string&>(), h)) {
      return fail(Errc::kMalformed, kClientOp, "invalid info_hash");
    }
    if (ctx && !ctx->infoHash) ctx->infoHash = h;
    s.infoHashes.push_back(h);
    return {};
  };
  if (ih->is_array()) {
    if (ih->empty()) return fail(Errc::kMalformed, kClientOp, "scrape needs info_hash");
    if (ih->size() > kMaxScrapeHashes) {
      return fail(Errc::kTooLarge, kClientOp, "more than " + std::to_string(kMaxScrapeHashes) + " info hashes");
    }
    for (const json& v : *ih) P2PCDN_TRY(add(v));
  } else {
    P2PCDN_TRY(add(*ih));
  }
  return s;
}

json announceJson(const AnnounceRequest& a) {
  json j = json::object();
  j["action"] = "announce";
  j["info_hash"] = binary(a.infoHash);
  j["peer_id"] = binary(a.peerId);
  if (a.event != Event::kNone) j["event"] = std::string(eventName(a.event));
  if (a.numwant) j["numwant"] = *a.numwant;
  if (a.uploaded) j["uploaded"] = *a.uploaded;
  if (a.downloaded) j["downloaded"] = *a.downloaded;
  if (a.left) j["left"] = *a.left;
  if (!a.offers.empty()) {
    json offers = json::array();
    for (const OfferEntry& o : a.offers) {
      offers.push_back({{"offer_id", binary(o.offerId)}, {"offer", descriptionJson(o.offer)}});
    }
    j["offers"] = std::move(offers);
  }
  if (a.answer) {
    j["answer"] = descriptionJson(a.answer->answer);
    j["to_peer_id"] = binary(a.answer->toPeerId);
    j["offer_id"] = binary(a.answer->offerId);
  }
  return j;
}

// ---- tracker -> client ----

Result<TrackerMessage> decodeFailure(const json& j, const json& reason) {
  if (!reason.is_string()) return fail(Errc::kMalformed, kTrackerOp, "failure reason must be a string");
  Failure f;
  f.reason = reason.get<std::string>();
  if (f.reason.size() > kMaxFailureReasonBytes) return fail(Errc::kTooLarge, kTrackerOp, "failure reason too long");
  f.action = actionOf(j);
  InfoHash h{};
  if (const json* ih = find(j, "info_hash");
      ih && ih->is_string() && fromBinaryString(ih->get_ref<const std::string&>(), h)) {
    f.infoHash = h;
  }
  return TrackerMessage{std::move(f)};
}

Result<TrackerMessage> decodeTrackerAnnounce(const json& j) {
  InfoHash infoHash{};
  P2PCDN_TRY(getId(j, "info_hash", infoHash, kTrackerOp));
  if (const json* offer = findValue(j, "offer")) {
    RelayedOffer r;
    r.infoHash = infoHash;
    P2PCDN_TRY(getDescription(*offer, "offer", r.offer, kTrackerOp));
    P2PCDN_TRY(getId(j, "offer_id", r.offerId, kTrackerOp));
    P2PCDN_TRY(getId(j, "peer_id", r.peerId, kTrackerOp));
    return TrackerMessage{std::move(r)};
  }
  if (const json* answer = findValue(j, "answer")) {
    RelayedAnswer r;
    r.infoHash = infoHash;
    P2PCDN_TRY(getDescription(*answer, "answer", r.answer, kTrackerOp));
    P2PCDN_TRY(getId(j, "offer_id", r.offerId, kTrackerOp));
    P2PCDN_TRY(getId(j, "peer_id", r.peerId, kTrackerOp));
    return TrackerMessage{std::move(r)};
  }
  const json* interval = find(j, "interval");
  auto seconds = interval ? asU64(*interval) : std::nullopt;
  if (!seconds) return fail(Errc::kMalformed, kTrackerOp, "announce response without interval");
  AnnounceResponse r;
  r.infoHash = infoHash;
  r.interval = clampU32(*seconds);
  r.complete = clampU32(optionalU64(j, "complete").value_or(0));
  r.incomplete = clampU32(optionalU64(j, "incomplete").value_or(0));
  return TrackerMessage{r};
}

Result<TrackerMessage> decodeTrackerScrape(const json& j) {
  const json* files = find(j, "files");
  if (!files || !files->is_object()) return fail(Errc::kMalformed, kTrackerOp, "scrape response without files");
  if (files->size() > kMaxScrapeHashes) return fail(Errc::kTooLarge, kTrackerOp, "too many files in scrape response");
  ScrapeResponse r;
  for (auto it = files->begin(); it != files->end(); ++it) {
    ScrapeFile f;
    if (!fromBinaryString(it.key(), f.infoHash)) return fail(Errc::kMalformed, kTrackerOp, "invalid info_hash in files");
    if (!it->is_object()) return fail(Errc::kMalformed, kTrackerOp, "a scrape file must be an object");
    f.complete = clampU32(optionalU64(*it, "complete").value_or(0));
    f.incomplete = clampU32(optionalU64(*it, "incomplete").value_or(0));
    f.downloaded = clampU32(optionalU64(*it, "downloaded").value_or(0));
    r.files.push_back(f);
  }
  if (const json* flags = find(j, "flags"); flags && flags->is_object()) {
    r.minRequestInterval = clampU32(optionalU64(*flags, "min_request_interval").value_or(0));
  }
  return TrackerMessage{std::move(r)};
}

// Cuts s to at most max bytes without splitting a UTF-8 sequence.
std::string truncateUtf8(const std::string& s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<std::uint8_t>(s[n]) & 0xc0) == 0x80) --n;
  return s.substr(0, n);
}

struct TrackerEncoder {
  json operator()(const AnnounceResponse& r) const {
    return {{"action", "announce"},
            {"info_hash", binary(r.infoHash)},
            {"interval", r.interval},
            {"complete", r.complete},
            {"incomplete", r.incomplete}};
  }
  json operator()(const RelayedOffer& r) const {
    return {{"action", "announce"},
            {"info_hash", binary(r.infoHash)},
            {"peer_id", binary(r.peerId)},
            {"offer_id", binary(r.offerId)},
            {"offer", descriptionJson(r.offer)}};
  }
  json operator()(const RelayedAnswer& r) const {
    return {{"action", "announce"},
            {"info_hash", binary(r.infoHash)},
            {"peer_id", binary(r.peerId)},
            {"offer_id", binary(r.offerId)},
            {"answer", descriptionJson(r.answer)}};
  }
  json operator()(const ScrapeResponse& r) const {
    json files = json::object();
    for (const ScrapeFile& f : r.files) {
      files[binary(f.infoHash)] = {{"complete", f.complete}, {"incomplete", f.incomplete}, {"downloaded", f.downloaded}};
    }
    return {{"action", "scrape"}, {"files", std::move(files)}, {"flags", {{"min_request_interval", r.minRequestInterval}}}};
  }
  json operator()(const Failure& f) const {
    json j = json::object();
    j["failure reason"] = truncateUtf8(f.reason, kMaxFailureReasonBytes);
    if (f.action) j["action"] = std::string(actionName(*f.action));
    if (f.infoHash) j["info_hash"] = binary(*f.infoHash);
    return j;
  }
};

}  // namespace

Result<ClientMessage> decodeClientMessage(std::string_view text, DecodeContext* context) {
  auto j = parseObject(text, kClientOp);
  if (!j) return fail(j.error());
  const json* action = find(*j, "action");
  if (!action || !action->is_string()) return fail(Errc::kMalformed, kClientOp, "invalid action");
  const auto& name = action->get_ref<const std::string&>();
  if (name == "announce") {
    if (context) context->action = Action::kAnnounce;
    auto a = decodeAnnounce(*j, context);
    if (!a) return fail(a.error());
    return ClientMessage{std::move(*a)};
  }
  if (name == "scrape") {
    if (context) context->action = Action::kScrape;
    auto s = decodeScrape(*j, context);
    if (!s) return fail(s.error());
    return ClientMessage{std::move(*s)};
  }
  return fail(Errc::kMalformed, kClientOp, "invalid action");
}

std::string encodeClientMessage(const ClientMessage& message) {
  if (const auto* a = std::get_if<AnnounceRequest>(&message)) return dump(announceJson(*a));
  const auto& s = std::get<ScrapeRequest>(message);
  json j = json::object();
  j["action"] = "scrape";
  if (s.infoHashes.size() == 1) {
    j["info_hash"] = binary(s.infoHashes.front());
  } else {
    json list = json::array();
    for (const InfoHash& h : s.infoHashes) list.push_back(binary(h));
    j["info_hash"] = std::move(list);
  }
  return dump(j);
}

Result<TrackerMessage> decodeTrackerMessage(std::string_view text) {
  auto j = parseObject(text, kTrackerOp);
  if (!j) return fail(j.error());
  if (const json* reason = find(*j, "failure reason")) return decodeFailure(*j, *reason);
  const auto action = actionOf(*j);
  if (action == Action::kAnnounce) return decodeTrackerAnnounce(*j);
  if (action == Action::kScrape) return decodeTrackerScrape(*j);
  return fail(Errc::kMalformed, kTrackerOp, "invalid action");
}

std::string encodeTrackerMessage(const TrackerMessage& message) {
  return dump(std::visit(TrackerEncoder{}, message));
}

}  // namespace p2pcdn::signaling
