// The native PeerLink implementation on Google's libwebrtc (Debian libtgowt).
// This header is free of libwebrtc types; only webrtc_link.cpp includes them.
#pragma once

#include <cstddef>
#include <memory>

#include "p2pcdn/result.hpp"
#include "transport/peer_link.hpp"

namespace p2pcdn::transport {

enum class WebRtcLog { kNone, kError, kWarning, kInfo, kVerbose };

// Routes libwebrtc's own log to stderr at `level` and above (kNone silences it).
// Process-wide; the factory applies WebRtcFactoryOptions::log when it is made.
void setWebRtcLogging(WebRtcLog level);

struct WebRtcFactoryOptions {
  WebRtcLog log = WebRtcLog::kNone;
  // SO_RCVBUF asked for on every UDP socket (the kernel caps it at
  // net.core.rmem_max); 0 keeps the system default. See webrtc_link.cpp.
  std::size_t udpReceiveBuffer = std::size_t{4} << 20;
};

// Starts libwebrtc's network, worker and signaling threads and its
// PeerConnectionFactory. One per process is enough; destroy it after every
// PeerLink it made (destroying it earlier aborts with a message).
Result<std::unique_ptr<LinkFactory>> makeWebRtcLinkFactory(const WebRtcFactoryOptions& options = {});

}  // namespace p2pcdn::transport
