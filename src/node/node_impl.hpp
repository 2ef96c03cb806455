// The inside of node::Node, shared by its source files (internal):
//   node.cpp           lifecycle, the files, seed / fetch / forget, listeners, stats
//   session_host.cpp   the SessionHost of each file: link I/O, store requests on
//                      the worker, and the engine's events posted to listeners
//   tracker_client.cpp announces, offers and answers; tracker messages become
//                      swarm::Discovery inputs
//   links.cpp          the link table: newPeer, dropPeer (closing list), link stats
// Everything here runs on the Runtime's loop, except the tasks handed to its
// store queue. Time, timers and the tracker come from the Runtime only.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string_view>

#include "node/identity.hpp"
#include "node/links.hpp"
#include "node/node.hpp"
#include "node/tracker_client.hpp"
#include "signaling/signaling.hpp"
#include "swarm/session.hpp"

namespace p2pcdn::node {

using Id20 = signaling::Id20;

// How often the node runs the sessions' and discovery's timers (choking,
// time-outs, rate limits, announces, offer lifetimes).
constexpr std::chrono::milliseconds kTickPeriod{100};
// A link that has not proven its peer's key this long after opening is dropped.
constexpr std::chrono::seconds kAuthTimeout{10};
// How often link stats (RTT, candidate types) are refreshed for peerStats().
constexpr std::chrono::seconds kLinkStatsPeriod{5};

struct FileState {
  FileId id;
  // Which life of the file this is: a store completion of a forgotten copy
  // of the same file must not reach a new one (Impl::onWorker).
  std::uint64_t generation = 0;
  Id20 infoHash{};
  std::unique_ptr<swarm::SessionHost> host;  // SessionHostImpl (session_host.cpp)
  std::unique_ptr<swarm::Session> session;
  std::optional<swarm::Discovery> discovery;
  bool wanted = false;  // fetching
  bool serving = true;
  std::map<std::uint64_t, std::shared_ptr<Peer>> peers;

  bool complete() const { return session->complete(); }
  const std::optional<Manifest>& manifest() const { return session->manifest(); }
  bool leeching() const { return wanted && !complete(); }
};

// One listener of one file (Node::listen).
struct Listener {
  FileId file;
  FetchEvents events;
  bool manifestPosted = false;  // onManifest and onComplete go out once per listener
  bool completePosted = false;
};

struct Node::Impl : std::enable_shared_from_this<Impl> {
  Impl(Runtime& r, ChunkStorage& s, transport::LinkFactory& f, NodeOptions o);
  swarm::Time now() const { return rt.now(); }

  void trace(const std::string& what) const {
    if (opts.trace) opts.trace(what);
  }
  static std::string shortId(const Id20& id);

  // ---- lifecycle (node.cpp) ----
  Status start();
  void stop(std::function<void()> done);
  void scheduleTick();
  void tick();
  swarm::SwarmView swarmView(const FileState& f) const;

  // ---- files (node.cpp) ----
  // What the store holds of a file: its manifest, if any, and its chunks.
  struct Stored {
    std::optional<Manifest> manifest;
    std::vector<bool> have;
  };
  // The file's state, made from what the store holds, read on the store
  // queue (`done` runs on a later turn of the loop).
  void loadFile(const FileId& id, std::function<void(Result<FileState*>)> done);
  FileState& makeFile(const FileId& id, Stored stored);
  // Stores a manifest given by the caller, then reads which chunks are held
  // (on the store queue; `done` on the loop).
  void storeGivenManifest(const Manifest& m, std::function<void(Result<std::vector<bool>>)> done);
  // Runs `task` on the store queue; it hands its Result<T> to `back` (from
  // any thread), and `done` gets it on the loop, unless the node is gone. A
  // full queue fails it (kBackPressure, posted). node.cpp only.
  template <class T>
  void storeCall(std::string_view op, std::function<void(ChunkStorage&, std::function<void(Result<T>)>)> task,
                 std::function<void(Result<T>)> done);
  Status seedLoaded(FileState& f);
  void seedAsync(const FileId& id, std::function<void(Status)> done);
  void fetchAsync(const FileId& id, std::optional<Manifest> manifest, std::function<void(Status)> done);
  Status fetchLoaded(FileState& f);
  void stopSeeding(const FileId& id);
  void setStreaming(const FileId& id, bool on, ChunkIndex cursor, std::size_t lookahead);
  // The link of this file to the peer with this hex id (handshaken), or none.
  std::optional<swarm::PeerKey> keyOf(const FileState& f, const std::string& peerIdHex) const;
  void forget(const FileId& id);
  std::optional<FileProgress> progress(const FileId& id) const;
  std::vector<NodePeerStats> peerStats() const;
  std::optional<NodePeerStats> statsOf(const FileState& f, const Peer& p, swarm::Time now) const;

  // ---- listeners (node.cpp) ----
  Result<ListenerId> listen(const FileId& id, FetchEvents events);
  void unlisten(ListenerId id);
  // Posts `deliver(events)` to the listeners of `file` that `pick` selects
  // now; it runs on a later turn for those still listening then.
  void postEvent(const FileId& file, const std::function<bool(Listener&)>& pick,
                 std::function<void(const FetchEvents&)> deliver);
  void postTo(std::vector<ListenerId> to, std::function<void(const FetchEvents&)> deliver);
  void postManifest(const FileId& file, const Manifest& m);
  void postComplete(const FileId& file);

  // ---- the store worker (session_host.cpp) ----
  // The one way to the store: runs `task` on the store queue with `toLoop`,
  // which posts what it is given to the loop (opts.storeDelay later), where it
  // runs unless the node is gone. false: the queue is full (task dropped).
  using ToLoop = std::function<void(std::function<void()>)>;
  bool onStore(std::function<void(ChunkStorage&, const ToLoop&)> task);
  // For a file's session: `done` hands back what to do with the file's state
  // on the loop (nothing if the file is gone or was made again by then). A
  // full queue fails the operation at once (`refused`, posted).
  using SessionTask = std::function<void(FileState&, swarm::Time now)>;
  using Completions = std::function<void(SessionTask)>;
  void onWorker(const FileId& fid, std::function<void(ChunkStorage&, const FileId&, const Completions&)> task,
                std::function<void(FileState&, const Error&, swarm::Time now)> refused);
  std::unique_ptr<swarm::SessionHost> makeHost(const FileId& id);

  // ---- tracker (tracker_client.cpp) ----
  void announceAll(bool first);
  bool announce(FileState& f, signaling::Event event, bool quick = false);
  void sendOffers(FileState& f);
  signaling::AnnounceRequest baseAnnounce(const FileState& f) const;
  std::uint64_t left(const FileState& f) const;
  void makeOffer(FileState& f);
  FileState* fileBySwarm(const Id20& infoHash);
  void onTrackerMessage(const signaling::TrackerMessage& msg);
  void onRemoteOffer(FileState& f, const Id20& from, const Id20& offerId, const std::string& sdp);

  // ---- links (links.cpp) ----
  std::shared_ptr<Peer> newPeer(FileState& f, transport::Role role, std::function<void(std::string)> onSdp);
  void runAuth(FileState& f, Peer& p, LinkAuth::Step step);
  void dropPeer(FileState& f, std::uint64_t key, const std::string& why);
  // Keeps the link's last numbers in the ledger and its link in the closing list.
  void retire(FileState& f, const std::shared_ptr<Peer>& peer);
  void requestLinkStats(FileState& f, Peer& p);

  Runtime& rt;
  ChunkStorage& rawStore;
  transport::LinkFactory& links;
  NodeOptions opts;
  std::shared_ptr<Identity> identity;  // opts.identity, or the runtime's ephemeral one
  Id20 peerId{};                       // wire::peerIdOf(identity's key, opts.client)
  std::unique_ptr<TrackerClient> tracker;
  std::map<FileId, FileState> files;
  std::set<Id20> banned;  // peers that sent chunks failing verification: never connected again
  std::set<wire::PublicKey> bannedKeys;  // and their keys, whatever id they come back under
  std::uint64_t nextPeerKey = 1;
  std::uint64_t nextGeneration = 1;
  // Files with store reads out (loadFile): forget() bumps the epoch, which
  // cancels them; the entry goes with its last read.
  struct Loading {
    std::uint64_t epoch = 0;
    std::uint32_t count = 0;
  };
  std::map<FileId, Loading> loading;
  // The callers' callbacks of store calls in flight (storeCall), kept here on
  // the loop: the store task holds only the request number, so no caller's
  // callback is ever destroyed on the store thread. Each takes a Result<T>*.
  std::uint64_t nextRequest = 1;
  std::map<std::uint64_t, std::function<void(void*)>> pending;
  bool stopped = false;
  std::mt19937_64 rng;
  swarm::Time lastLinkStats{};
  ClosingLinks closing;
  ClosedLinkLedger ledger;
  std::map<ListenerId, Listener> listeners;
  ListenerId nextListener = 1;
  // Last: destroyed first, so no store task runs once the rest is gone.
  std::unique_ptr<TaskQueue> worker;
};

}  // namespace p2pcdn::node
