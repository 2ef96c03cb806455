// OriginSource: web seeds. An origin is an HTTP(S) URL that serves the file
// itself with Range support (`p2pcdn serve`, or any web server holding the
// file); a Session uses one for what the swarm cannot give in time. Pure
// policy, like the rest of swarm/: the host does the HTTP (SessionHost::
// fetchOrigin) and completes with Session::onOriginData.
//
// The swarm comes first. An origin is asked for a chunk only
//  - when no connected peer has it, `grace` has passed since the fetch began
//    (peers get that long to show up) and no request of ours has been
//    outstanding at any peer for `idleBefore` (the swarm gives nothing now;
//    with no WebRTC at all every chunk goes this way), or
//  - streaming: for the `urgentChunks` at the cursor, when a peer has had the
//    request for longer than `urgentAfter` (the origin's copy races it: a
//    peer's late copy is cancelled; the origin's, once the peer's came first,
//    is cancelled at the next pump, or counted as wasted).
// At most `slots` requests are out at once. Every chunk is verified against
// the manifest like a peer's: `maxBadChunks` bad ones and the origin is
// dropped. An origin that fails (HTTP error, short answer, time-out) rests,
// from restMin doubling to restMax. Encrypted files are not served by
// origins (their stored bytes are the sealed chunks, not the file).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "swarm/session_state.hpp"

namespace p2pcdn::swarm {

class Downloader;

class OriginSource {
 public:
  static constexpr std::size_t kMaxOrigins = 8;
  static constexpr std::size_t kMaxUrl = 2048;

  OriginSource(SessionState& state, Downloader& downloader)
      : state_(state), downloader_(downloader), opts_(state.opts.origin) {}

  // Replaces the origins (http:// or https:// URLs; kInvalidArgument for
  // others, more than kMaxOrigins or longer than kMaxUrl). Requests to
  // origins no longer listed are cancelled.
  Status setOrigins(std::vector<std::string> urls, Time now);
  bool active() const;
  // Starts the requests now due (after events, on ticks).
  void pump(Time now);
  // A completion of SessionHost::fetchOrigin (unknown or cancelled ids are ignored).
  void onData(std::uint32_t id, Result<Bytes> data, Time now);
  // The file is no longer wanted: every request is cancelled.
  void cancelAll();
  // When pump has something to do without an event: a time-out, a rest or the grace ending.
  Time nextWakeup(Time now) const;
  // Chunks an origin is fetching now.
  bool fetching(ChunkIndex index) const;

 private:
  struct Origin {
    std::string url;
    Time restUntil{};
    Time rest{};
    std::uint32_t badChunks = 0;
    bool dropped = false;
  };
  struct Pending {
    ChunkIndex index;
    std::size_t origin;
    Time sent;
  };
  bool allowed() const;
  bool start(ChunkIndex index, Time now);  // false: no origin can take it now
  void failed(std::size_t origin, Time now);  // it rests
  void expire(Time now);
  void prune();
  void release(std::map<std::uint32_t, Pending>::iterator it);
  std::optional<std::size_t> pickOrigin(Time now);
  // The peers' oldest outstanding request for each chunk in [from, to).
  std::map<ChunkIndex, Time> peerRequests(ChunkIndex from, ChunkIndex to) const;

  SessionState& state_;
  Downloader& downloader_;
  OriginOptions opts_;
  std::vector<Origin> origins_;
  std::map<std::uint32_t, Pending> pending_;
  std::uint32_t nextId_ = 1;
  std::size_t nextOrigin_ = 0;   // round robin
  ChunkIndex scan_ = 0;          // whole file: where the next scan for chunks no peer has begins
  std::optional<Time> since_;    // when the fetch (wanted, manifest known) began
  std::optional<Time> lastBusy_; // when a request of ours was last outstanding at a peer
};

}  // namespace p2pcdn::swarm
