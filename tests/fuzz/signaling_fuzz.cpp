// libFuzzer target for the WebTorrent tracker protocol codec (src/signaling/):
// the tracker decodes what any WebSocket client sends, and our peers will
// decode what any tracker sends.
//
// Every input is tried as a client message, as a tracker message and as a
// binary string; a broken property abort()s:
//  - whatever a decoder accepts encodes, decodes again to an equal message,
//    and encodes again to the same text (stable), never longer than the
//    input plus a little (numbers may be clamped to longer digits), so a
//    message the tracker relays stays within the size limit;
//  - accepted messages respect every limit (ids are 20 bytes by type; offers,
//    SDP sizes, scrape lists, failure reasons);
//  - a decode that fails names what it learnt only if it is true: the action
//    and info_hash in the DecodeContext come from the input;
//  - fromBinaryString accepts exactly the canonical UTF-8 of one code point
//    per byte.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "signaling/signaling.hpp"

using namespace p2pcdn;
using namespace p2pcdn::signaling;

namespace {

[[noreturn]] void die(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "signaling_fuzz: property violated: %s%s%s\n", what, detail.empty() ? "" : ": ",
               detail.c_str());
  std::abort();
}

constexpr std::size_t kGrowthSlack = 256;

void checkDescription(const SessionDescription& d) {
  if (d.sdp.size() > kMaxSdpBytes || d.type.size() > kMaxSdpTypeBytes) die("a description over its limits");
}

void checkClient(std::string_view text) {
  DecodeContext ctx;
  auto m = decodeClientMessage(text, &ctx);
  if (!m) {
    if (m.error().detail().empty()) die("a client decode error without a detail");
    if (ctx.infoHash && !ctx.action) die("an info_hash learnt without an action");
    return;
  }
  if (const auto* a = std::get_if<AnnounceRequest>(&*m)) {
    if (a->offers.size() > kMaxOffers) die("too many offers accepted");
    for (const auto& o : a->offers) checkDescription(o.offer);
    if (a->answer) checkDescription(a->answer->answer);
    if (a->numwant && *a->numwant > kMaxNumwant) die("numwant not clamped");
    if (ctx.action != Action::kAnnounce || ctx.infoHash != a->infoHash) die("context disagrees with the announce");
  } else {
    const auto& s = std::get<ScrapeRequest>(*m);
    if (s.infoHashes.empty() || s.infoHashes.size() > kMaxScrapeHashes) die("scrape list out of bounds");
    if (ctx.action != Action::kScrape) die("context disagrees with the scrape");
  }
  const std::string enc = encodeClientMessage(*m);
  if (enc.size() > text.size() + kGrowthSlack) die("a client message grew when re-encoded", enc);
  if (enc.size() > kMaxMessageBytes) return;  // only near the limit, covered by the growth check
  auto again = decodeClientMessage(enc);
  if (!again) die("an encoded client message does not decode", again.error().message() + " in " + enc);
  if (!(*again == *m)) die("client round trip changed the message", enc);
  if (encodeClientMessage(*again) != enc) die("client encoding is not stable", enc);
}

void checkTracker(std::string_view text) {
  auto m = decodeTrackerMessage(text);
  if (!m) {
    if (m.error().detail().empty()) die("a tracker decode error without a detail");
    return;
  }
  if (const auto* o = std::get_if<RelayedOffer>(&*m)) checkDescription(o->offer);
  if (const auto* a = std::get_if<RelayedAnswer>(&*m)) checkDescription(a->answer);
  if (const auto* s = std::get_if<ScrapeResponse>(&*m); s && s->files.size() > kMaxScrapeHashes) {
    die("too many scrape files accepted");
  }
  if (const auto* f = std::get_if<Failure>(&*m); f && f->reason.size() > kMaxFailureReasonBytes) {
    die("failure reason over its limit");
  }
  const std::string enc = encodeTrackerMessage(*m);
  if (enc.size() > text.size() + kGrowthSlack) die("a tracker message grew when re-encoded", enc);
  if (enc.size() > kMaxMessageBytes) return;
  auto again = decodeTrackerMessage(enc);
  if (!again) die("an encoded tracker message does not decode", again.error().message() + " in " + enc);
  if (!(*again == *m)) die("tracker round trip changed the message", enc);
  if (encodeTrackerMessage(*again) != enc) die("tracker encoding is not stable", enc);
}

void checkBinaryString(std::string_view text) {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, kIdSize, text.size() / 2, text.size()}) {
    std::vector<std::uint8_t> out(n);
    if (fromBinaryString(text, out) && toBinaryString(out) != text) die("fromBinaryString accepted a non-canonical form");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  checkClient(text);
  checkTracker(text);
  checkBinaryString(text);
  return 0;
}
