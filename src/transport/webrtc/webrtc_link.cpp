// PeerLink on libwebrtc (Debian libtgowt: Chrome's stack with dcsctp).
//
// Threads and ownership
//   - WebRtcFactory owns libwebrtc's network thread (with the socket server),
//     worker thread and signaling thread, and the PeerConnectionFactory.
//   - Each link has a LinkCore (shared_ptr). It is the PeerConnectionObserver and
//     DataChannelObserver. Its libwebrtc objects (pc_, dc_) and its signaling
//     state are touched ONLY on the signaling thread; the owner's loop reaches
//     them with Thread::BlockingCall (what libwebrtc's own proxies do anyway).
//     The loop-side state (events_, state_, detached_) is touched only on the loop.
//   - Every event goes signaling thread -> Executor -> loop. The posted task holds
//     a shared_ptr<LinkCore> and does nothing once the PeerLink is gone.
//   - ~WebRtcLink closes the PeerConnection and drops every libwebrtc reference on
//     the signaling thread, so a LinkCore kept alive by a pending task holds no
//     libwebrtc object and can die on any thread.
//
// Debian's libtgowt is built without NDEBUG: RTC_DCHECK_IS_ON changes class
// layouts (rtc::Thread, sequence checkers), so this file must be compiled the
// same way. CMake removes -DNDEBUG for this target; the checks below enforce it.
#include "transport/webrtc/webrtc_link.hpp"

#ifdef NDEBUG
#error "webrtc_link.cpp must be compiled without NDEBUG (Debian's libtgowt is a debug-checks build)"
#endif

#include <netinet/in.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <mutex>
#include <string>
#include <utility>

#include <api/data_channel_interface.h>
#include <api/jsep.h>
#include <api/make_ref_counted.h>
#include <api/peer_connection_interface.h>
#include <api/set_local_description_observer_interface.h>
#include <api/set_remote_description_observer_interface.h>
#include <api/stats/rtc_stats_collector_callback.h>
#include <api/stats/rtc_stats_report.h>
#include <api/stats/rtcstats_objects.h>
#include <api/task_queue/default_task_queue_factory.h>
#include <api/units/time_delta.h>
#include <p2p/base/basic_packet_socket_factory.h>
#include <p2p/client/basic_port_allocator.h>
#include <rtc_base/checks.h>
#include <rtc_base/ip_address.h>
#include <rtc_base/logging.h>
#include <rtc_base/network.h>
#include <rtc_base/ssl_adapter.h>
#include <rtc_base/thread.h>

static_assert(RTC_DCHECK_IS_ON, "libtgowt's headers must see the same RTC_DCHECK_IS_ON as its build (1)");

namespace p2pcdn::transport {
namespace {

// An SDP from the network larger than this is refused before parsing.
constexpr std::size_t kMaxSdpSize = 64 * 1024;

rtc::LoggingSeverity toSeverity(WebRtcLog level) {
  switch (level) {
    case WebRtcLog::kNone: return rtc::LS_NONE;
    case WebRtcLog::kError: return rtc::LS_ERROR;
    case WebRtcLog::kWarning: return rtc::LS_WARNING;
    case WebRtcLog::kInfo: return rtc::LS_INFO;
    case WebRtcLog::kVerbose: return rtc::LS_VERBOSE;
  }
  return rtc::LS_NONE;
}

// Exposes only 127.0.0.1, so a loopbackOnly link binds nothing else (hermetic
// tests and benchmarks). Lives on, and is called on, the network thread.
class LoopbackNetworkManager final : public rtc::NetworkManagerBase {
 public:
  void StartUpdating() override {
    ++starts_;
    // Announce asynchronously, as the real network manager does.
    rtc::Thread::Current()->PostTask([this] { announce(); });
  }
  void StopUpdating() override {
    if (starts_ > 0) --starts_;
  }

 private:
  void announce() {
    if (starts_ == 0) return;
    if (!merged_) {
      const rtc::IPAddress lo(INADDR_LOOPBACK);
      auto net = std::make_unique<rtc::Network>("lo", "loopback", lo, 8, rtc::ADAPTER_TYPE_LOOPBACK);
      net->AddIP(lo);
      std::vector<std::unique_ptr<rtc::Network>> list;
      list.push_back(std::move(net));
      bool changed = false;
      MergeNetworkList(std::move(list), &changed);
      merged_ = true;
    }
    SignalNetworksChanged();
  }

  int starts_ = 0;
  bool merged_ = false;
};

// Makes libwebrtc's UDP sockets with a larger kernel receive buffer. With
// Linux's default (net.core.rmem_default, 208 KiB) a receiving network thread
// that is not scheduled for a few milliseconds loses datagrams to the full
// buffer (300-2100 per 64 MB loopback transfer), and dcsctp's retransmission
// timer, backing off as retransmissions are lost too, stalls the transfer:
// 64 MB 1 -> 1, 12 runs each, alternating: system default median 1.20 s,
// 3 runs over 1.9 s, worst 16.5 s; 4 MiB: no datagram lost, median 1.16 s,
// worst 1.27 s. The cost: a larger congestion window, and libtgowt's debug
// checks walk the whole outstanding list per SACK (seeder CPU 0.45 -> 0.62 s
// per 64 MB). The kernel caps the size at net.core.rmem_max.
class BufferedPacketSocketFactory final : public rtc::BasicPacketSocketFactory {
 public:
  BufferedPacketSocketFactory(rtc::SocketFactory* sockets, int receiveBuffer)
      : BasicPacketSocketFactory(sockets), receiveBuffer_(receiveBuffer) {}

  rtc::AsyncPacketSocket* CreateUdpSocket(const rtc::SocketAddress& local, uint16_t minPort,
                                          uint16_t maxPort) override {
    rtc::AsyncPacketSocket* socket = BasicPacketSocketFactory::CreateUdpSocket(local, minPort, maxPort);
    if (socket != nullptr && receiveBuffer_ > 0) socket->SetOption(rtc::Socket::OPT_RCVBUF, receiveBuffer_);
    return socket;
  }

 private:
  const int receiveBuffer_;
};

class LinkCore;

// --- libwebrtc callback objects: each holds a weak reference to its link ------
// (not final: rtc::make_ref_counted derives from them)

class SetLocalObserver : public webrtc::SetLocalDescriptionObserverInterface {
 public:
  explicit SetLocalObserver(std::weak_ptr<LinkCore> core) : core_(std::move(core)) {}
  void OnSetLocalDescriptionComplete(webrtc::RTCError error) override;

 private:
  std::weak_ptr<LinkCore> core_;
};

class SetRemoteObserver : public webrtc::SetRemoteDescriptionObserverInterface {
 public:
  explicit SetRemoteObserver(std::weak_ptr<LinkCore> core) : core_(std::move(core)) {}
  void OnSetRemoteDescriptionComplete(webrtc::RTCError error) override;

 private:
  std::weak_ptr<LinkCore> core_;
};

class StatsCallback : public webrtc::RTCStatsCollectorCallback {
 public:
  StatsCallback(std::weak_ptr<LinkCore> core, std::function<void(LinkStats)> done)
      : core_(std::move(core)), done_(std::move(done)) {}
  void OnStatsDelivered(const rtc::scoped_refptr<const webrtc::RTCStatsReport>& report) override;

 private:
  std::weak_ptr<LinkCore> core_;
  std::function<void(LinkStats)> done_;
};

// --- the per-link state ---------------------------------------------------------

class LinkCore final : public webrtc::PeerConnectionObserver,
                       public webrtc::DataChannelObserver,
                       public std::enable_shared_from_this<LinkCore> {
 public:
  LinkCore(Role role, const LinkConfig& config, rtc::Thread* signaling, Executor post, LinkEvents events)
      : role_(role), config_(config), signaling_(signaling), post_(std::move(post)), events_(std::move(events)) {}

  // ===== signaling thread =====================================================

  void setPeerConnection(rtc::scoped_refptr<webrtc::PeerConnectionInterface> pc) { pc_ = std::move(pc); }

  Status startOffer() {
    if (finished_ || !pc_) return fail(Errc::kCancelled, "create offer", "link closed");
    webrtc::DataChannelInit init;
    init.ordered = true;  // and reliable: no maxRetransmits / maxRetransmitTime
    auto dc = pc_->CreateDataChannelOrError(std::string(kChannelLabel), &init);
    if (!dc.ok()) return fail(Errc::kIo, "create offer", dc.error().message());
    attachChannel(dc.MoveValue());
    awaitingDescription_ = true;
    pc_->SetLocalDescription(rtc::make_ref_counted<SetLocalObserver>(weak_from_this()));  // implicit offer
    armConnectTimeout();
    return {};
  }

  Status startAnswer(std::unique_ptr<webrtc::SessionDescriptionInterface> offer) {
    if (finished_ || !pc_) return fail(Errc::kCancelled, "accept offer", "link closed");
    awaitingDescription_ = true;
    pc_->SetRemoteDescription(std::move(offer), rtc::make_ref_counted<SetRemoteObserver>(weak_from_this()));
    armConnectTimeout();
    return {};
  }

  Status applyAnswer(std::unique_ptr<webrtc::SessionDescriptionInterface> answer) {
    if (finished_ || !pc_) return fail(Errc::kCancelled, "accept answer", "link closed");
    pc_->SetRemoteDescription(std::move(answer), rtc::make_ref_counted<SetRemoteObserver>(weak_from_this()));
    return {};
  }

  void onRemoteSet(const webrtc::RTCError& error) {
    if (finished_ || !pc_) return;
    if (!error.ok()) {
      finish(Error(Errc::kMalformed, role_ == Role::kAnswerer ? "accept offer" : "accept answer", error.message()));
      return;
    }
    if (role_ == Role::kAnswerer) {
      pc_->SetLocalDescription(rtc::make_ref_counted<SetLocalObserver>(weak_from_this()));  // implicit answer
    }
  }

  void onLocalSet(const webrtc::RTCError& error) {
    if (finished_ || !pc_) return;
    if (!error.ok()) {
      finish(Error(Errc::kIo, "set local description", error.message()));
      return;
    }
    localSet_ = true;
    maybeEmitDescription();
  }

  Status sendOnSignaling(const webrtc::DataBuffer& buffer) {
    if (finished_ || !dc_) return fail(Errc::kCancelled, "send", "link closed");
    const std::uint64_t size = buffer.size();
    const std::uint64_t queued = buffered_.load(std::memory_order_relaxed);
    if (queued + size > config_.highWatermark) {
      armLow(config_.lowWatermark);
      return fail(kBackPressure, "send",
                  "back-pressure: " + std::to_string(queued) + " bytes queued, wait for onBufferedAmountLow");
    }
    buffered_.store(queued + size, std::memory_order_relaxed);
    // May call OnBufferedAmountChange from inside (handled there: it only posts).
    if (!dc_->Send(buffer)) {
      buffered_.fetch_sub(size, std::memory_order_relaxed);
      return fail(Errc::kCancelled, "send", "channel is not open");
    }
    bytesSent_.fetch_add(size, std::memory_order_relaxed);
    messagesSent_.fetch_add(1, std::memory_order_relaxed);
    if (buffered_.load(std::memory_order_relaxed) > config_.lowWatermark) armLow(config_.lowWatermark);
    return {};
  }

  // onBufferedAmountLow once the queue holds at most `bytes` (now, if it does).
  void notifyBelowOnSignaling(std::uint64_t bytes) {
    if (finished_) return;
    if (buffered_.load(std::memory_order_relaxed) <= bytes) {
      toLoop([](LinkCore& c) { c.deliverLow(); });
      return;
    }
    armLow(bytes);
  }

  void closeOnSignaling() {
    if (finished_) return;
    closeRequested_ = true;
    if (dc_ && dc_->state() == webrtc::DataChannelInterface::kOpen) {
      // Resets the stream once queued data is out; both sides then see kClosed.
      dc_->Close();
      signaling_->PostDelayedTask(
          [weak = weak_from_this()] {
            auto self = weak.lock();
            if (self) self->finish(Error(Errc::kOk, "close", "closed locally (peer did not confirm)"));
          },
          webrtc::TimeDelta::Millis(config_.closeTimeout.count()));
    } else {
      finish(Error(Errc::kOk, "close", "closed locally"));
    }
  }

  void requestStatsOnSignaling(std::function<void(LinkStats)> done) {
    if (pc_ && !finished_) {
      pc_->GetStats(rtc::make_ref_counted<StatsCallback>(weak_from_this(), std::move(done)).get());
    } else {
      deliverStats(counters(), std::move(done));
    }
  }

  void deliverStats(LinkStats stats, std::function<void(LinkStats)> done) {
    toLoop([stats = std::move(stats), done = std::move(done)](LinkCore&) { done(stats); });
  }

  // The PeerLink is going away: no more events; drop every libwebrtc object here.
  Executor shutdownOnSignaling() {
    finished_ = true;
    teardown();
    return std::move(post_);
  }

  LinkStats counters() const {
    LinkStats s;
    s.bytesSent = bytesSent_.load(std::memory_order_relaxed);
    s.bytesReceived = bytesReceived_.load(std::memory_order_relaxed);
    s.messagesSent = messagesSent_.load(std::memory_order_relaxed);
    s.messagesReceived = messagesReceived_.load(std::memory_order_relaxed);
    return s;
  }

  std::size_t bufferedAmount() const { return static_cast<std::size_t>(buffered_.load(std::memory_order_relaxed)); }

  // --- PeerConnectionObserver (signaling thread) ---
  void OnSignalingChange(webrtc::PeerConnectionInterface::SignalingState) override {}
  void OnIceCandidate(const webrtc::IceCandidateInterface*) override {}  // non-trickle: read the full SDP
  void OnIceGatheringChange(webrtc::PeerConnectionInterface::IceGatheringState state) override {
    if (state == webrtc::PeerConnectionInterface::kIceGatheringComplete) {
      gathered_ = true;
      maybeEmitDescription();
    }
  }
  void OnConnectionChange(webrtc::PeerConnectionInterface::PeerConnectionState state) override {
    if (state == webrtc::PeerConnectionInterface::PeerConnectionState::kFailed) {
      finish(Error(Errc::kIo, "connect", "ICE/DTLS connection failed"));
    }
  }
  void OnDataChannel(rtc::scoped_refptr<webrtc::DataChannelInterface> channel) override {
    if (finished_) {
      channel->Close();
      return;
    }
    if (role_ == Role::kOfferer || dc_ || channel->label() != kChannelLabel) {
      channel->Close();  // one channel per link, and only ours
      return;
    }
    if (!channel->ordered() || channel->maxRetransmitsOpt() || channel->maxPacketLifeTime()) {
      channel->Close();
      finish(Error(Errc::kUnsupported, "accept channel", "peer's channel is not ordered and reliable"));
      return;
    }
    attachChannel(std::move(channel));
  }

  // --- DataChannelObserver (signaling thread) ---
  void OnStateChange() override {
    if (!dc_ || finished_) return;
    switch (dc_->state()) {
      case webrtc::DataChannelInterface::kOpen:
        postOpen();
        break;
      case webrtc::DataChannelInterface::kClosed: {
        const webrtc::RTCError error = dc_->error();
        if (!error.ok()) {
          finish(Error(Errc::kIo, "channel", error.message()));
        } else {
          finish(Error(Errc::kOk, "close", closeRequested_ ? "closed locally" : "closed by peer"));
        }
        break;
      }
      default:
        break;
    }
  }
  void OnMessage(const webrtc::DataBuffer& buffer) override {
    if (finished_) return;
    const std::size_t size = buffer.size();
    if (size > config_.maxMessageSize) {
      finish(Error(Errc::kTooLarge, "receive",
                   "peer sent a " + std::to_string(size) + "-byte message (limit " +
                       std::to_string(config_.maxMessageSize) + ")"));
      return;
    }
    bytesReceived_.fetch_add(size, std::memory_order_relaxed);
    messagesReceived_.fetch_add(1, std::memory_order_relaxed);
    Bytes message(buffer.data.cdata(), buffer.data.cdata() + size);
    toLoop([message = std::move(message)](LinkCore& c) mutable { c.deliverMessage(std::move(message)); });
  }
  void OnBufferedAmountChange(std::uint64_t sentDataSize) override {
    // Called for every message handed to SCTP, sometimes from inside Send().
    const std::uint64_t queued = buffered_.load(std::memory_order_relaxed);
    const std::uint64_t now = queued >= sentDataSize ? queued - sentDataSize : 0;
    buffered_.store(now, std::memory_order_relaxed);
    if (lowAt_ && now <= *lowAt_ && !finished_) {
      lowAt_.reset();
      toLoop([](LinkCore& c) { c.deliverLow(); });
    }
  }

  // ===== loop thread ==========================================================

  LinkState state() const { return state_; }
  void setState(LinkState s) { state_ = s; }

  void detachOnLoop() {
    detached_ = true;
    if (!dispatching_) events_ = LinkEvents{};  // destroy the owner's callbacks on its own thread
  }

 private:
  // ===== signaling thread =====

  void armLow(std::uint64_t at) {
    lowAt_ = std::max(lowAt_.value_or(0), at);
  }

  void attachChannel(rtc::scoped_refptr<webrtc::DataChannelInterface> channel) {
    dc_ = std::move(channel);
    // Post open before registering: registering delivers messages that arrived early.
    if (dc_->state() == webrtc::DataChannelInterface::kOpen) postOpen();
    dc_->RegisterObserver(this);
  }

  void postOpen() {
    if (openPosted_) return;
    openPosted_ = true;
    toLoop([](LinkCore& c) { c.deliverOpen(); });
  }

  void maybeEmitDescription() {
    if (!awaitingDescription_ || !localSet_ || !gathered_ || !pc_) return;
    const webrtc::SessionDescriptionInterface* local = pc_->local_description();
    std::string sdp;
    if (local == nullptr || !local->ToString(&sdp)) {
      finish(Error(Errc::kIo, "local description", "could not serialize the local SDP"));
      return;
    }
    awaitingDescription_ = false;
    toLoop([sdp = std::move(sdp)](LinkCore& c) mutable { c.deliverDescription(std::move(sdp)); });
  }

  void armConnectTimeout() {
    signaling_->PostDelayedTask(
        [weak = weak_from_this(), ms = config_.connectTimeout.count()] {
          auto self = weak.lock();
          if (self && !self->openPosted_) {
            self->finish(Error(Errc::kIo, "connect", "not open after " + std::to_string(ms) + " ms"));
          }
        },
        webrtc::TimeDelta::Millis(config_.connectTimeout.count()));
  }

  // Ends the link once: posts onClosed, then tears the connection down outside
  // the current libwebrtc callback.
  void finish(Error reason) {
    if (finished_) return;
    finished_ = true;
    toLoop([reason = std::move(reason)](LinkCore& c) { c.deliverClosed(reason); });
    signaling_->PostTask([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->teardown();
    });
  }

  void teardown() {
    if (dc_) {
      dc_->UnregisterObserver();
      if (dc_->state() != webrtc::DataChannelInterface::kClosed) dc_->Close();
      dc_ = nullptr;
    }
    if (pc_) {
      pc_->Close();  // no observer callback after this returns
      pc_ = nullptr;
    }
  }

  // Posts `f` to the owner's loop; it runs only while the PeerLink exists.
  template <class F>
  void toLoop(F&& f) {
    if (!post_) return;
    post_([self = shared_from_this(), f = std::forward<F>(f)]() mutable {
      if (self->detached_) return;
      self->dispatching_ = true;
      f(*self);
      self->dispatching_ = false;
      if (self->detached_) self->events_ = LinkEvents{};  // the PeerLink died inside the callback
    });
  }

  // ===== loop thread =====

  void deliverDescription(std::string sdp) {
    if (state_ == LinkState::kClosed) return;
    if (events_.onLocalDescription) events_.onLocalDescription(std::move(sdp));
  }
  void deliverOpen() {
    if (state_ != LinkState::kConnecting) return;
    state_ = LinkState::kOpen;
    if (events_.onOpen) events_.onOpen();
  }
  void deliverMessage(Bytes message) {
    if (state_ == LinkState::kClosed) return;
    if (events_.onMessage) events_.onMessage(std::move(message));
  }
  void deliverLow() {
    if (state_ != LinkState::kOpen) return;
    if (events_.onBufferedAmountLow) events_.onBufferedAmountLow();
  }
  void deliverClosed(const Error& reason) {
    if (state_ == LinkState::kClosed) return;
    state_ = LinkState::kClosed;
    if (events_.onClosed) events_.onClosed(reason);
  }

  // Constant.
  const Role role_;
  const LinkConfig config_;
  rtc::Thread* const signaling_;

  // Signaling thread only.
  Executor post_;
  rtc::scoped_refptr<webrtc::PeerConnectionInterface> pc_;
  rtc::scoped_refptr<webrtc::DataChannelInterface> dc_;
  bool finished_ = false;
  bool closeRequested_ = false;
  bool openPosted_ = false;
  bool awaitingDescription_ = false;
  bool localSet_ = false;
  bool gathered_ = false;
  // Armed: fire onBufferedAmountLow once the queue is at or below this (the highest asked for).
  std::optional<std::uint64_t> lowAt_;

  // Written on the signaling thread, read anywhere.
  std::atomic<std::uint64_t> buffered_{0};
  std::atomic<std::uint64_t> bytesSent_{0};
  std::atomic<std::uint64_t> bytesReceived_{0};
  std::atomic<std::uint64_t> messagesSent_{0};
  std::atomic<std::uint64_t> messagesReceived_{0};

  // Loop thread only.
  LinkEvents events_;
  LinkState state_ = LinkState::kNew;
  bool detached_ = false;
  bool dispatching_ = false;
};

void SetLocalObserver::OnSetLocalDescriptionComplete(webrtc::RTCError error) {
  if (auto core = core_.lock()) core->onLocalSet(error);
}

void SetRemoteObserver::OnSetRemoteDescriptionComplete(webrtc::RTCError error) {
  if (auto core = core_.lock()) core->onRemoteSet(error);
}

void StatsCallback::OnStatsDelivered(const rtc::scoped_refptr<const webrtc::RTCStatsReport>& report) {
  auto core = core_.lock();
  if (!core) return;
  LinkStats stats = core->counters();
  const auto candidateType = [&](const webrtc::RTCStatsMember<std::string>& id) -> std::string {
    if (!id.is_defined()) return {};
    const webrtc::RTCStats* c = report->Get(*id);
    if (c == nullptr || (std::string(c->type()) != webrtc::RTCLocalIceCandidateStats::kType &&
                         std::string(c->type()) != webrtc::RTCRemoteIceCandidateStats::kType)) {
      return {};
    }
    const auto& candidate = static_cast<const webrtc::RTCIceCandidateStats&>(*c);
    return candidate.candidate_type.is_defined() ? *candidate.candidate_type : std::string();
  };
  for (const webrtc::RTCTransportStats* transport : report->GetStatsOfType<webrtc::RTCTransportStats>()) {
    if (!transport->selected_candidate_pair_id.is_defined()) continue;
    const webrtc::RTCStats* p = report->Get(*transport->selected_candidate_pair_id);
    if (p == nullptr || std::string(p->type()) != webrtc::RTCIceCandidatePairStats::kType) continue;
    const auto& pair = p->cast_to<webrtc::RTCIceCandidatePairStats>();
    if (pair.current_round_trip_time.is_defined()) stats.rttSeconds = *pair.current_round_trip_time;
    stats.localCandidateType = candidateType(pair.local_candidate_id);
    stats.remoteCandidateType = candidateType(pair.remote_candidate_id);
    break;
  }
  core->deliverStats(std::move(stats), std::move(done_));
}

// --- the PeerLink handle (loop thread) -----------------------------------------------

class WebRtcLink final : public PeerLink {
 public:
  WebRtcLink(Role role, const LinkConfig& config, std::shared_ptr<LinkCore> core, rtc::Thread* signaling,
             std::shared_ptr<std::atomic<int>> live)
      : core_(std::move(core)), signaling_(signaling), live_(std::move(live)), config_(config), role_(role) {
    live_->fetch_add(1);
  }

  ~WebRtcLink() override {
    core_->detachOnLoop();
    Executor post = signaling_->BlockingCall([this] { return core_->shutdownOnSignaling(); });
    post = nullptr;  // the owner's executor dies on the owner's thread
    live_->fetch_sub(1);
  }

  Status createOffer() override {
    if (role() != Role::kOfferer) return fail(Errc::kInvalidArgument, "create offer", "link is the answerer");
    if (core_->state() != LinkState::kNew) return fail(Errc::kInvalidArgument, "create offer", "already started");
    core_->setState(LinkState::kConnecting);
    return signaling_->BlockingCall([this] { return core_->startOffer(); });
  }

  Status acceptOffer(std::string_view sdp) override {
    if (role() != Role::kAnswerer) return fail(Errc::kInvalidArgument, "accept offer", "link is the offerer");
    if (core_->state() != LinkState::kNew) return fail(Errc::kInvalidArgument, "accept offer", "already started");
    auto offer = parse(webrtc::SdpType::kOffer, sdp, "accept offer");
    if (!offer) return fail(offer.error());
    core_->setState(LinkState::kConnecting);
    return signaling_->BlockingCall([&] { return core_->startAnswer(std::move(*offer)); });
  }

  Status acceptAnswer(std::string_view sdp) override {
    if (role() != Role::kOfferer) return fail(Errc::kInvalidArgument, "accept answer", "link is the answerer");
    if (core_->state() != LinkState::kConnecting || answered_) {
      return fail(Errc::kInvalidArgument, "accept answer", "no offer outstanding");
    }
    auto answer = parse(webrtc::SdpType::kAnswer, sdp, "accept answer");
    if (!answer) return fail(answer.error());
    answered_ = true;
    return signaling_->BlockingCall([&] { return core_->applyAnswer(std::move(*answer)); });
  }

  Status send(ByteView message) override {
    const LinkState s = core_->state();
    if (s == LinkState::kClosing || s == LinkState::kClosed) return fail(Errc::kCancelled, "send", "link closed");
    if (s != LinkState::kOpen) return fail(Errc::kInvalidArgument, "send", "link not open");
    if (message.empty()) return fail(Errc::kInvalidArgument, "send", "empty message");
    if (message.size() > config_.maxMessageSize) {
      return fail(Errc::kTooLarge, "send",
                  std::to_string(message.size()) + " bytes > maxMessageSize " + std::to_string(config_.maxMessageSize));
    }
    // Copy on this thread; the signaling thread only queues the buffer.
    const webrtc::DataBuffer buffer(rtc::CopyOnWriteBuffer(message.data(), message.size()), /*binary=*/true);
    return signaling_->BlockingCall([&] { return core_->sendOnSignaling(buffer); });
  }

  std::size_t bufferedAmount() const override { return core_->bufferedAmount(); }

  void notifyWhenBufferedBelow(std::size_t bytes) override {
    if (core_->state() != LinkState::kOpen) return;
    signaling_->BlockingCall([&] { core_->notifyBelowOnSignaling(bytes); });
  }

  void close() override {
    const LinkState s = core_->state();
    if (s == LinkState::kClosing || s == LinkState::kClosed) return;
    core_->setState(LinkState::kClosing);
    signaling_->BlockingCall([this] { core_->closeOnSignaling(); });
  }

  LinkState state() const override { return core_->state(); }
  LinkStats stats() const override { return core_->counters(); }

  void requestStats(std::function<void(LinkStats)> done) override {
    signaling_->BlockingCall([&] { core_->requestStatsOnSignaling(std::move(done)); });
  }

 private:
  Role role() const { return role_; }

  static Result<std::unique_ptr<webrtc::SessionDescriptionInterface>> parse(webrtc::SdpType type,
                                                                            std::string_view sdp,
                                                                            const char* op) {
    if (sdp.size() > kMaxSdpSize) {
      return fail(Errc::kTooLarge, op, "SDP of " + std::to_string(sdp.size()) + " bytes");
    }
    if (sdp.find("m=application") == std::string_view::npos) {
      return fail(Errc::kMalformed, op, "SDP has no data channel section");
    }
    webrtc::SdpParseError error;
    auto desc = webrtc::CreateSessionDescription(type, std::string(sdp), &error);
    if (!desc) return fail(Errc::kMalformed, op, "bad SDP: " + error.description + " (line: " + error.line + ")");
    return desc;
  }

  std::shared_ptr<LinkCore> core_;
  rtc::Thread* signaling_;
  std::shared_ptr<std::atomic<int>> live_;
  LinkConfig config_;
  Role role_;
  bool answered_ = false;
};

// --- the factory ----------------------------------------------------------------------

class WebRtcFactory final : public LinkFactory {
 public:
  explicit WebRtcFactory(const WebRtcFactoryOptions& options) : options_(options) {}
  ~WebRtcFactory() override {
    if (live_->load() != 0) {
      std::fprintf(stderr, "p2pcdn: WebRTC LinkFactory destroyed while %d PeerLink(s) still exist\n", live_->load());
      std::abort();
    }
    factory_ = nullptr;
    if (network_) {
      network_->BlockingCall([this] {
        loopbackNetwork_.reset();
        socketFactory_.reset();
      });
    }
    if (signaling_) signaling_->Stop();
    if (worker_) worker_->Stop();
    if (network_) network_->Stop();
  }

  Status start() {
    network_ = rtc::Thread::CreateWithSocketServer();
    worker_ = rtc::Thread::Create();
    signaling_ = rtc::Thread::Create();
    network_->SetName("p2pcdn-net", nullptr);
    worker_->SetName("p2pcdn-work", nullptr);
    signaling_->SetName("p2pcdn-sig", nullptr);
    if (!network_->Start() || !worker_->Start() || !signaling_->Start()) {
      return fail(Errc::kIo, "start webrtc", "could not start threads");
    }
    webrtc::PeerConnectionFactoryDependencies deps;
    deps.network_thread = network_.get();
    deps.worker_thread = worker_.get();
    deps.signaling_thread = signaling_.get();
    deps.task_queue_factory = webrtc::CreateDefaultTaskQueueFactory();
    const int receiveBuffer = static_cast<int>(std::min<std::size_t>(options_.udpReceiveBuffer, 1u << 30));
    deps.packet_socket_factory =
        std::make_unique<BufferedPacketSocketFactory>(network_->socketserver(), receiveBuffer);
    // No media engine, call factory, codecs or field trials: data channels only.
    factory_ = webrtc::CreateModularPeerConnectionFactory(std::move(deps));
    if (!factory_) return fail(Errc::kIo, "start webrtc", "CreateModularPeerConnectionFactory failed");
    network_->BlockingCall([this, receiveBuffer] {
      socketFactory_ = std::make_unique<BufferedPacketSocketFactory>(network_->socketserver(), receiveBuffer);
      loopbackNetwork_ = std::make_unique<LoopbackNetworkManager>();
    });
    return {};
  }

  Result<std::unique_ptr<PeerLink>> create(Role role, const LinkConfig& config, Executor post,
                                           LinkEvents events) override {
    P2PCDN_TRY(validate(config));
    if (!post) return fail(Errc::kInvalidArgument, "create link", "no executor");
    auto core = std::make_shared<LinkCore>(role, config, signaling_.get(), std::move(post), std::move(events));

    webrtc::PeerConnectionInterface::RTCConfiguration rtc;
    rtc.sdp_semantics = webrtc::SdpSemantics::kUnifiedPlan;
    rtc.tcp_candidate_policy = webrtc::PeerConnectionInterface::kTcpCandidatePolicyDisabled;
    for (const std::string& url : config.iceServers) {
      webrtc::PeerConnectionInterface::IceServer server;
      server.urls.push_back(url);
      if (url.rfind("turn", 0) == 0) {
        server.username = config.iceUsername;
        server.password = config.icePassword;
      }
      rtc.servers.push_back(std::move(server));
    }
    if (config.relayOnly) rtc.type = webrtc::PeerConnectionInterface::kRelay;
    webrtc::PeerConnectionDependencies deps(core.get());
    if (config.loopbackOnly) {
      auto allocator = std::make_unique<cricket::BasicPortAllocator>(loopbackNetwork_.get(), socketFactory_.get());
      allocator->set_flags(allocator->flags() | cricket::PORTALLOCATOR_DISABLE_TCP);
      deps.allocator = std::move(allocator);
    }
    webrtc::PeerConnectionFactoryInterface::Options options;
    options.network_ignore_mask =
        (config.allowLoopback || config.loopbackOnly) ? 0 : rtc::kDefaultNetworkIgnoreMask;

    webrtc::RTCErrorOr<rtc::scoped_refptr<webrtc::PeerConnectionInterface>> pc;
    {
      // The ignore mask is factory-wide state read when a connection is created.
      std::lock_guard<std::mutex> lock(createMutex_);
      factory_->SetOptions(options);
      pc = factory_->CreatePeerConnectionOrError(rtc, std::move(deps));
    }
    if (!pc.ok()) return fail(Errc::kIo, "create link", pc.error().message());
    signaling_->BlockingCall([&] { core->setPeerConnection(pc.MoveValue()); });

    return std::unique_ptr<PeerLink>(
        std::make_unique<WebRtcLink>(role, config, std::move(core), signaling_.get(), live_));
  }

 private:
  std::unique_ptr<rtc::Thread> network_;
  std::unique_ptr<rtc::Thread> worker_;
  std::unique_ptr<rtc::Thread> signaling_;
  rtc::scoped_refptr<webrtc::PeerConnectionFactoryInterface> factory_;
  const WebRtcFactoryOptions options_;
  std::unique_ptr<BufferedPacketSocketFactory> socketFactory_;     // network thread (loopback-only links)
  std::unique_ptr<LoopbackNetworkManager> loopbackNetwork_;        // network thread
  std::mutex createMutex_;
  std::shared_ptr<std::atomic<int>> live_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace

void setWebRtcLogging(WebRtcLog level) { rtc::LogMessage::LogToDebug(toSeverity(level)); }

Result<std::unique_ptr<LinkFactory>> makeWebRtcLinkFactory(const WebRtcFactoryOptions& options) {
  setWebRtcLogging(options.log);
  static const bool sslReady = rtc::InitializeSSL();
  if (!sslReady) return fail(Errc::kCrypto, "start webrtc", "rtc::InitializeSSL failed");
  auto factory = std::make_unique<WebRtcFactory>(options);
  P2PCDN_TRY(factory->start());
  return std::unique_ptr<LinkFactory>(std::move(factory));
}

}  // namespace p2pcdn::transport
