// PeerLink over the page's RTCPeerConnection and RTCDataChannel (web/src/host.js
// does the JS side). Non-trickle like the native link: a description is
// handed over only once ICE gathering completed. Every event from JS is
// posted through the link's Executor, so none runs inside a PeerLink call.
// A received message is copied once, from the ArrayBuffer into a Bytes this
// side owns (p2p_link_inbox), and moved from there into onMessage.
#pragma once

#include <map>
#include <memory>

#include "browser/runtime.hpp"
#include "transport/peer_link.hpp"

namespace p2pcdn::browser {

class JsPeerLink;

class JsLinkFactory final : public transport::LinkFactory {
 public:
  explicit JsLinkFactory(BrowserRuntime& rt) : rt_(rt) {}
  Result<std::unique_ptr<transport::PeerLink>> create(transport::Role role, const transport::LinkConfig& config,
                                                      transport::Executor post,
                                                      transport::LinkEvents events) override;
  // RTCPeerConnections created so far, and open now (Chromium refuses past
  // about 500 per page lifetime, so every closed link frees its own).
  std::uint64_t created() const { return created_; }
  std::size_t live() const { return *live_; }

 private:
  BrowserRuntime& rt_;
  std::uint64_t created_ = 0;
  std::shared_ptr<std::size_t> live_ = std::make_shared<std::size_t>(0);  // links of this factory alive
};

// Links by handle, for the JS events (a link destroyed meanwhile is not found).
std::map<int, JsPeerLink*>& liveLinks();

class JsPeerLink final : public transport::PeerLink {
 public:
  // Received messages posted and not yet delivered may hold at most this many
  // bytes; past it the link fails rather than fill the wasm heap (a busy page).
  static constexpr std::size_t kMaxUndelivered = std::size_t{8} << 20;

  JsPeerLink(BrowserRuntime& rt, int handle, transport::Role role, transport::LinkConfig config,
             transport::Executor post, transport::LinkEvents events, std::shared_ptr<std::size_t> live);
  ~JsPeerLink() override;

  Status createOffer() override;
  Status acceptOffer(std::string_view sdp) override;
  Status acceptAnswer(std::string_view sdp) override;
  Status send(ByteView message) override;
  std::size_t bufferedAmount() const override;
  void notifyWhenBufferedBelow(std::size_t bytes) override;
  void close() override;
  transport::LinkState state() const override { return state_; }
  transport::LinkStats stats() const override { return stats_; }
  void requestStats(std::function<void(transport::LinkStats)> done) override;

  // From JavaScript. A message's bytes go into the inbox first (at most the
  // configured message size; 0 refuses a bigger one), then message() posts it.
  std::uint8_t* inbox(std::size_t n);
  void message();
  // kind: 0 local description (text = SDP), 1 open, 2 buffered amount low,
  // 3 closed (text: "" orderly, else why it failed), 4 stats (text = JSON).
  void event(int kind, std::string text);

 private:
  void finish(const Error& why);  // onClosed once, then nothing
  void startConnectTimer();

  BrowserRuntime& rt_;
  const int h_;
  const transport::Role role_;
  const transport::LinkConfig config_;
  transport::Executor post_;
  transport::LinkEvents events_;
  transport::LinkState state_ = transport::LinkState::kNew;
  transport::LinkStats stats_;
  Bytes inbox_;
  bool inboxFull_ = false;
  bool answered_ = false;       // acceptAnswer applied (a second one is refused)
  std::size_t undelivered_ = 0;  // bytes of messages posted, not yet delivered
  std::shared_ptr<std::size_t> live_;
  std::vector<std::function<void(transport::LinkStats)>> statsWaiting_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace p2pcdn::browser
