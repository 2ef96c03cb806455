// The local commands of the p2pcdn CLI. Each returns a process exit code.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "p2pcdn/chunk_storage.hpp"
#include "p2pcdn/manifest.hpp"

namespace p2pcdn::cli {

// Documented in README.md and `p2pcdn --help`.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,    // anything not listed below
  kExitUsage = 2,      // bad command line
  kExitNotFound = 3,   // no such file id / path
  kExitIntegrity = 4,  // a chunk or manifest failed verification
  kExitIo = 5,         // disk or database error
  kExitIncomplete = 6, // verify: chunks are missing (none corrupt)
  kExitInterrupted = 130,  // SIGINT/SIGTERM (partial work undone)
};

struct Globals {
  std::filesystem::path home;  // $P2PCDN_HOME or ~/.local/share/p2pcdn
  bool json = false;
  bool quiet = false;
  std::uint64_t quotaBytes = 0;  // 0: the store's default (10 GB)
  std::string durability = "power-loss";
};

struct AddArgs {
  std::filesystem::path file;
  std::string name, mime;
  std::uint32_t chunkSize = 0;
  bool encrypt = false;
  bool inPlace = false;  // seed from the file itself (a plaintext file): no copy in the store
};

struct NetArgs {
  std::string target;                  // FILE or ID/link (seed), link or ID (get)
  std::vector<std::string> trackers;   // --tracker (else the link's tr=)
  std::vector<std::string> stun;       // --stun stun:host:port, --ice URL (stun: or turn:)
  std::string iceUser, icePass;        // --ice-user, --ice-pass: the turn: servers' credentials
  bool relayOnly = false;              // --relay-only: TURN relay candidates only
  std::string trackerCa;               // --ca FILE: CA certificates for a wss:// tracker
  std::vector<std::string> webSeeds;   // get/stream --web-seed URL (besides the link's ws=)
  std::filesystem::path manifestFile;  // get/stream --manifest FILE: the manifest's JSON (`manifest ID --json`)
  bool loopback = false;               // gather ICE candidates on loopback only (local tests)
  double duration = 0;                 // seed: seconds to serve (0: until interrupted)
  std::filesystem::path output;        // get -o
  std::optional<double> seedAfter;     // get --seed[=S]: keep serving after completion (0 = forever)
  bool verbose = false;
  std::optional<std::size_t> udpReceiveBuffer;  // --udp-rcvbuf: SO_RCVBUF of the UDP sockets (0: system default)
  // The swarm engine (swarm::SessionOptions); unset: the engine's defaults.
  std::optional<std::size_t> maxUploads;      // --max-uploads: peers unchoked at once
  std::optional<std::size_t> maxDownloads;    // --max-downloads: peers with our requests outstanding
  std::optional<std::uint64_t> uploadLimit;   // --upload-limit: bytes/s, global token bucket
  std::optional<std::uint64_t> downloadLimit; // --download-limit: bytes/s, global token bucket
  bool noSuperSeed = false;    // --no-super-seed: a complete seeder advertises all its chunks at once
  bool faultCorrupt = false;  // --fault-corrupt (p2pcdn-test only, fault_injection.hpp): corrupt served chunks
};

int cmdAdd(const Globals& g, const AddArgs& a);
int cmdSeed(const Globals& g, const AddArgs& add, const NetArgs& n);
int cmdGet(const Globals& g, const NetArgs& n);

// `serve` (the HTTP gateway) and `stream` (plaintext to stdout in order).
struct MediaArgs {
  std::string listen = "127.0.0.1:8080";  // serve --listen HOST:PORT (port 0: any free port)
  std::size_t lookahead = 32;             // stream --lookahead: chunks fetched ahead of stdout
  bool progress = false;                  // stream --progress: a progress line on stderr
  double manifestTimeout = 20;            // serve --manifest-timeout: seconds before an unknown id is a 404
  std::string app;                        // serve --app DIR: the web app (default: the built package, if any)
  std::vector<std::string> allowHosts;   // serve --allow-host NAME: Host names the gateway answers to
  std::vector<std::string> cors;         // serve --cors ORIGIN: origins whose pages may read responses ("*": any)
  std::string token;                     // serve --token T: needed to fetch ids not held and to use keys/
  std::string publicTracker;              // serve --public-tracker URL: the tracker the app's pages join (default --tracker)
};
int cmdServe(const Globals& g, const NetArgs& n, const MediaArgs& m);
// The web app's folder for `--app` (empty: the built browser package,
// build/wasm/web, if it holds the app; "none": no app): "" when there is none.
std::string webAppDir(const std::string& option);
// /api/config for the web app: the tracker browser peers join, their STUN servers.
std::string webAppConfig(const std::string& trackerUrl, const std::vector<std::string>& stun);

// `p2pcdn demo` (demo_command.cpp).
struct DemoArgs {
  std::filesystem::path file;       // --file: default, a sample video made with ffmpeg
  double seconds = 30;              // --seconds: length of the sample video
  std::size_t leechers = 3;         // --leechers
  std::uint64_t seederRate = 8'000'000;   // --seeder-rate: bytes/s (0: unlimited), so progress is visible
  std::uint64_t viewerRate = 4'000'000;   // --viewer-rate: the gateway's leecher, bytes/s (0: unlimited)
  std::uint16_t port = 0;           // --port: the gateway's (0: any free port)
  double timeout = 120;             // --timeout: seconds for the leechers
  bool stay = false;                // --stay: keep the gateway up until Ctrl-C
  std::string app;                  // --app DIR: the web app the gateway serves (as for serve)
  bool keep = false;                // --keep: keep the scratch folder
};
int cmdDemo(const Globals& g, const DemoArgs& a);
int cmdStream(const Globals& g, const NetArgs& n, const MediaArgs& m);

// Shared by the commands.
struct Added {
  FileId id;
  Manifest manifest;
  std::optional<EncryptionKey> key;
};
struct Resolved {
  FileId id;
  std::optional<EncryptionKey> key;
  std::vector<std::string> trackers;
};
Result<std::unique_ptr<ChunkStorage>> openStore(const Globals& g);
Result<Added> addToStore(const Globals& g, BlockingStorage& store, const AddArgs& a);
Result<Resolved> resolve(BlockingStorage& store, const std::string& text);
std::optional<EncryptionKey> loadKey(const Globals& g, const FileId& id);
int report(const Error& e);
bool interrupted();
int cmdLs(const Globals& g);
int cmdExport(const Globals& g, const std::string& id, const std::filesystem::path& out, const std::string& key);
int cmdVerify(const Globals& g, const std::string& id);
int cmdRm(const Globals& g, const std::string& id);
int cmdManifest(const Globals& g, const std::string& id);

std::filesystem::path defaultHome();
void installSignalHandlers();

}  // namespace p2pcdn::cli
