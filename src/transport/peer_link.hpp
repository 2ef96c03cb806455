// PeerLink: one peer connection carrying ONE ordered, reliable message channel,
// with non-trickle signaling (a complete offer, a complete answer) as the
// WebTorrent tracker protocol carries it. Implementations: webrtc/ (native,
// libwebrtc); browser/ and loopback/ later. No libwebrtc type appears here.
//
// Threads: a link belongs to one event loop, the one its Executor posts onto.
// Call every PeerLink method on that loop's thread; every event is delivered
// there, through the Executor, never on a transport thread and never from
// inside a PeerLink method. After the PeerLink is destroyed no event fires.
//
// Life of a link:
//   offerer:  create -> createOffer() -> onLocalDescription(offer) -> [offer to peer]
//             [answer from peer] -> acceptAnswer(answer) -> onOpen
//   answerer: create -> acceptOffer(offer) -> onLocalDescription(answer) -> [answer to peer] -> onOpen
//   then send()/onMessage both ways; close() or a failure -> onClosed(reason), exactly once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn::transport {

// Posts a task onto the owner's event loop (for Asio: `asio::post(io, std::move(task))`).
// Called from transport threads; must be thread-safe and must not run the task inline.
using Executor = std::function<void(std::function<void()>)>;

enum class Role { kOfferer, kAnswerer };

// The channel label both sides use; the offerer creates the channel in-band.
inline constexpr std::string_view kChannelLabel = "p2pcdn";
// Browsers close a data channel that receives a message above 256 KiB.
inline constexpr std::size_t kMaxMessageSize = 262144;

// send() refuses a message that would push bufferedAmount() past the high
// watermark with this code; wait for onBufferedAmountLow and send again.
inline constexpr Errc kBackPressure = Errc::kBackPressure;
bool isBackPressure(const Error& e);

struct LinkConfig {
  // "stun:host:port" and "turn:host:port[?transport=udp|tcp]" (or turns:)
  // URLs. Empty: host candidates only (LAN, loopback, tests).
  std::vector<std::string> iceServers;
  // The credentials of the turn: servers (long-term credentials, RFC 8489).
  std::string iceUsername, icePassword;
  // Relay candidates only (ICE transport policy "relay"): every byte goes
  // through a TURN server, and no host address reaches the peer.
  bool relayOnly = false;
  // Gather candidates on loopback interfaces too (libwebrtc skips them by default).
  bool allowLoopback = false;
  // Gather ONLY on loopback interfaces: hermetic tests and benchmarks. Implies allowLoopback.
  bool loopbackOnly = false;
  // Back-pressure: send() refuses past highWatermark bytes queued; onBufferedAmountLow
  // fires when the queue drains to lowWatermark. lowWatermark + maxMessageSize must
  // not exceed highWatermark, and highWatermark stays under libwebrtc's 16 MiB limit.
  std::size_t highWatermark = std::size_t{4} << 20;
  std::size_t lowWatermark = std::size_t{1} << 20;
  // Largest message send() accepts and the largest accepted from the peer (a peer
  // sending more is a protocol violation: the link closes with kTooLarge).
  std::size_t maxMessageSize = kMaxMessageSize;
  // The link fails with kIo if it is not open this long after createOffer/acceptOffer.
  std::chrono::milliseconds connectTimeout{30000};
  // close() waits this long for the peer to confirm before tearing down.
  std::chrono::milliseconds closeTimeout{5000};
};

// Checks the limits above; create() refuses a config that fails it.
Status validate(const LinkConfig& config);

struct LinkStats {
  std::uint64_t bytesSent = 0;         // payload bytes accepted by send()
  std::uint64_t bytesReceived = 0;     // payload bytes delivered by onMessage
  std::uint64_t messagesSent = 0;
  std::uint64_t messagesReceived = 0;
  std::optional<double> rttSeconds;    // current round trip of the selected candidate pair
  std::string localCandidateType;      // "host", "srflx", "prflx", "relay"; empty if unknown
  std::string remoteCandidateType;
};

// The callbacks of one link. Any may be empty. All run on the owner's loop.
struct LinkEvents {
  // Complete SDP (all candidates included): the offer after createOffer(), the
  // answer after acceptOffer(). Hand it to the peer through signaling.
  std::function<void(std::string sdp)> onLocalDescription;
  std::function<void()> onOpen;
  std::function<void(Bytes message)> onMessage;
  // The queue drained to lowWatermark after it was above it (or after a
  // back-pressure refusal). Refill from here.
  std::function<void()> onBufferedAmountLow;
  // Fired once; no event follows. reason.code() == Errc::kOk for an orderly close
  // (by either side; detail says which); otherwise why the link failed.
  std::function<void(const Error& reason)> onClosed;
};

enum class LinkState { kNew, kConnecting, kOpen, kClosing, kClosed };
std::string_view linkStateName(LinkState s);

class PeerLink {
 public:
  virtual ~PeerLink() = default;  // tears the connection down without events

  // Offerer: creates the channel and the offer; onLocalDescription(offer) once
  // ICE gathering has finished.
  virtual Status createOffer() = 0;
  // Answerer: applies the peer's offer; onLocalDescription(answer) when ready.
  // kMalformed if the SDP does not parse; later failures arrive as onClosed.
  virtual Status acceptOffer(std::string_view sdp) = 0;
  // Offerer: applies the peer's answer.
  virtual Status acceptAnswer(std::string_view sdp) = 0;

  // Queues one message. Errors (nothing is sent): kTooLarge above maxMessageSize,
  // kInvalidArgument if empty or not open yet, kCancelled once closing/closed,
  // kBackPressure (see isBackPressure) if bufferedAmount() + size > highWatermark.
  virtual Status send(ByteView message) = 0;
  // Bytes accepted by send() and not yet handed to the network stack.
  virtual std::size_t bufferedAmount() const = 0;
  // onBufferedAmountLow fires once the queue holds at most `bytes` (soon, if
  // it already does), besides its usual firing at lowWatermark: a sender that
  // keeps its own queue shorter asks to be told when to refill.
  virtual void notifyWhenBufferedBelow(std::size_t bytes) = 0;

  // Orderly close: onClosed(kOk) follows on both sides. Idempotent. Data still
  // queued may be DROPPED (libwebrtc's dcsctp discards unsent messages when the
  // stream is reset): finish the conversation in the protocol (goodbye + reply)
  // before closing. Destroying the link closes the peer's side at once, too.
  virtual void close() = 0;

  virtual LinkState state() const = 0;
  // Counters, now. rtt and candidate types need requestStats().
  virtual LinkStats stats() const = 0;
  // Full stats, delivered through the Executor (not called if the link is gone).
  virtual void requestStats(std::function<void(LinkStats)> done) = 0;
};

// The DTLS certificate fingerprint an SDP names (its one a=fingerprint
// line) as "<hash name> <hex digits>", both in lower case without colons,
// e.g. "sha-256 1a2b…": the form link authentication signs (wire/auth.hpp).
// The DTLS handshake checks the certificate the peer shows against the
// fingerprint in the remote description, so this is the certificate that
// really terminates the link. nullopt: no well-formed fingerprint line, or
// more than one (a link has one media section; with several lines, which
// one DTLS checks is the stack's choice, and a relay could add its own).
std::optional<std::string> dtlsFingerprint(std::string_view sdp);

// Creates links. Owns the transport's threads; create once per process and
// destroy only after every PeerLink it created. create() may be called from any thread.
class LinkFactory {
 public:
  virtual ~LinkFactory() = default;
  virtual Result<std::unique_ptr<PeerLink>> create(Role role, const LinkConfig& config, Executor post,
                                                   LinkEvents events) = 0;
};

}  // namespace p2pcdn::transport
