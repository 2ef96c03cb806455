#include <malloc.h>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#ifdef P2PCDN_HAVE_NET
#include "swarm/options.hpp"
#include "tracker/serve.hpp"
#include "transport/webrtc/webrtc_link.hpp"
#endif

int main(int argc, char** argv) {
  using namespace p2pcdn::cli;
  // Chunk buffers (256 KiB) come and go thousands of times: keep them on the
  // heap and keep the heap, instead of an mmap/munmap + page faults per chunk.
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  CLI::App app{"p2pcdn: peer-to-peer content delivery over WebRTC.\n"
               "Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 integrity failure, 5 I/O error, "
               "6 incomplete (verify), 130 interrupted."};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand
  Globals g;
  std::string home;
  app.add_option("--home", home, "data folder (default $P2PCDN_HOME or ~/.local/share/p2pcdn)");
  app.add_flag("--json", g.json, "machine-readable output");
  app.add_flag("-q,--quiet", g.quiet, "no progress bar");
  app.add_option("--quota", g.quotaBytes, "store quota in bytes (default 10 GB); LRU eviction of unpinned files");
  app.add_option("--durability", g.durability,
                 "power-loss (default: fsync at checkpoints) or process-crash (no fsync, faster)")
      ->check(CLI::IsMember({"power-loss", "process-crash"}))
      ->envname("P2PCDN_DURABILITY");

  AddArgs add;
  auto* addCmd = app.add_subcommand("add", "add a file to the local store; prints its id and link");
  addCmd->add_option("file", add.file, "file to add")->required();
  addCmd->add_option("--name", add.name, "name recorded in the manifest (default: the file's name)");
  addCmd->add_option("--mime", add.mime, "MIME type (default: guessed from the name)");
  addCmd->add_option("--chunk-size", add.chunkSize, "bytes per chunk, a power of two (default 262144)");
  addCmd->add_flag("--encrypt", add.encrypt, "encrypt chunks with a fresh AES-256-GCM key (put in the link)");
  addCmd->add_flag("--in-place", add.inPlace,
                   "serve the file from where it is, without a copy in the store (plaintext only; if it changes, "
                   "its chunks stop being served)");
  addCmd->add_flag("--json", g.json, "print {fileId, link, ...}");

  auto* lsCmd = app.add_subcommand("ls", "list stored files");
  lsCmd->add_flag("--json", g.json, "JSON array");

  std::string id, key;
  std::string out;
  auto* exportCmd = app.add_subcommand("export", "write a stored file out (verified bytes only)");
  exportCmd->add_option("id", id, "file id, unique id prefix or link")->required();
  exportCmd->add_option("-o,--output", out, "output path")->required();
  exportCmd->add_option("--key", key, "decryption key (64 hex) if not in the link or the key store");

  auto* verifyCmd = app.add_subcommand("verify", "re-hash every stored chunk of a file");
  verifyCmd->add_option("id", id, "file id, unique id prefix or link")->required();
  verifyCmd->add_flag("--json", g.json, "JSON report");

  auto* rmCmd = app.add_subcommand("rm", "delete a file and its chunks from the store");
  rmCmd->add_option("id", id, "file id, unique id prefix or link")->required();

  auto* manifestCmd = app.add_subcommand("manifest", "show a stored manifest");
  manifestCmd->add_option("id", id, "file id, unique id prefix or link")->required();
  manifestCmd->add_flag("--json", g.json, "the manifest's JSON form");

#ifdef P2PCDN_HAVE_NET
  NetArgs net;
  AddArgs seedAdd;
  auto* seedCmd = app.add_subcommand("seed", "serve a file (adding it first if FILE is a path) until interrupted");
  seedCmd->add_option("target", net.target, "FILE to add and seed, or a stored id / prefix / link")->required();
  seedCmd->add_option("--tracker", net.trackers, "tracker URL, ws://host:port; repeat it for fallbacks");
  seedCmd->add_option("--duration", net.duration, "stop after S seconds (default: until interrupted)");
  seedCmd->add_option("--name", seedAdd.name, "name recorded in the manifest when adding");
  seedCmd->add_flag("--encrypt", seedAdd.encrypt, "encrypt when adding (the key goes in the link)");
  seedCmd->add_flag("--in-place", seedAdd.inPlace, "when adding: serve FILE from where it is, without a copy");
  auto* getCmd = app.add_subcommand("get", "download a file by link or id; writes only verified bytes");
  getCmd->add_option("target", net.target, "p2pcdn: link or file id")->required();
  getCmd->add_option("--tracker", net.trackers, "tracker URL, ws://host:port; repeat it for fallbacks (default: the link's tr=)");
  getCmd->add_option("-o,--output", net.output, "write the file here when complete");
  getCmd->add_option("--web-seed", net.webSeeds,
                     "an http:// URL serving the file (Range requests), used for what the swarm cannot give in time "
                     "(repeatable; besides the link's ws=)");
  getCmd->add_option("--manifest", net.manifestFile,
                     "the file's manifest (JSON, as `p2pcdn manifest ID --json` prints it), when no peer may have it");
  getCmd->add_option("--seed", net.seedAfter, "keep serving after completion for S seconds (0: until interrupted)")
      ->expected(0, 1)
      ->default_str("0");
  MediaArgs media;
  auto* serveCmd = app.add_subcommand(
      "serve", "HTTP gateway: GET /f/<id>[/<name>] serves a file (Range, HEAD) while it downloads; / is the web app");
  serveCmd->add_option("--listen", media.listen, "HOST:PORT to listen on (default 127.0.0.1:8080; port 0: any)");
  serveCmd->add_option("--tracker", net.trackers, "tracker URL, ws://host:port")->required();
  serveCmd->add_flag("--json", g.json, "print {url, port, peerId} when listening");
  serveCmd->add_option("--app", media.app,
                       "the web app's folder (the browser package, build/wasm/web; default: that of this source tree "
                       "if built; none: no app)");
  serveCmd->add_option("--public-tracker", media.publicTracker,
                       "the tracker URL the web app's pages join, when browsers reach it by another name than --tracker "
                       "(ws:// or wss://)");
  serveCmd->add_option("--allow-host", media.allowHosts,
                       "a Host name the gateway answers to besides 127.0.0.1, localhost and [::1] (repeatable; others "
                       "get 421, which stops DNS rebinding)");
  serveCmd->add_option("--token", media.token,
                       "an access token: requests without it (Authorization: Bearer TOKEN, or the cookie "
                       "p2pcdn_token) get only what the store holds, without keys/, and 401 for other ids")
      ->envname("P2PCDN_GATEWAY_TOKEN");
  serveCmd->add_option("--cors", media.cors,
                       "an origin whose pages may read the gateway's responses, e.g. https://app.example (repeatable; "
                       "'*': any page; default: none, cross-origin requests get 403)");
  serveCmd->add_option("--manifest-timeout", media.manifestTimeout,
                       "seconds to look for the manifest of an id not in the store before answering 404 (default 20)")
      ->check(CLI::Range(0.1, 3600.0));
  auto* streamCmd = app.add_subcommand(
      "stream", "write a file's bytes to stdout in order as they arrive (e.g. `p2pcdn stream LINK | mpv -`)");
  streamCmd->add_option("target", net.target, "p2pcdn: link or file id")->required();
  streamCmd->add_option("--tracker", net.trackers, "tracker URL, ws://host:port; repeat it for fallbacks (default: the link's tr=)");
  streamCmd->add_option("--web-seed", net.webSeeds, "an http:// URL serving the file (as for get)");
  streamCmd->add_option("--manifest", net.manifestFile, "the file's manifest (as for get)");
  streamCmd->add_option("--lookahead", media.lookahead, "chunks fetched ahead of what stdout has taken (default 32)")
      ->check(CLI::Range(1, 1 << 20));
  streamCmd->add_flag("--progress", media.progress, "a progress line on stderr");
  DemoArgs demo;
  auto* demoCmd = app.add_subcommand(
      "demo", "a local swarm in one process: embedded tracker, a seeder, leechers over WebRTC, a check of every copy, "
              "a summary, and the HTTP gateway where the video plays while a fresh leecher downloads it");
  demoCmd->add_option("--file", demo.file, "the file to share (default: a sample video made with ffmpeg)")
      ->check(CLI::ExistingFile);
  demoCmd->add_option("--seconds", demo.seconds, "length of the sample video (default 30)")->check(CLI::Range(1.0, 600.0));
  demoCmd->add_option("--leechers", demo.leechers, "leechers (default 3)")->check(CLI::Range(1, 16));
  demoCmd->add_option("--seeder-rate", demo.seederRate, "the seeder's upload limit, bytes/s (default 8000000; 0: none)");
  demoCmd->add_option("--viewer-rate", demo.viewerRate,
                      "download limit of the gateway's leecher, bytes/s (default 4000000; 0: none)");
  demoCmd->add_option("--port", demo.port, "the gateway's port on 127.0.0.1 (default: any free port)");
  demoCmd->add_option("--timeout", demo.timeout, "seconds the leechers may take (default 120)")
      ->check(CLI::Range(1.0, 3600.0));
  demoCmd->add_flag("--stay", demo.stay, "keep the gateway up (with a fresh leecher) until Ctrl-C");
  demoCmd->add_option("--app", demo.app, "the web app's folder, as for serve (default: this tree's build/wasm/web if built)");
  demoCmd->add_flag("--keep", demo.keep, "keep the scratch folder (stores, video, logs)");
  p2pcdn::tracker::ServeArgs trackerArgs;
  auto* trackerCmd = app.add_subcommand("tracker", "run the tracker / WebRTC signaling server (WebTorrent protocol)");
  p2pcdn::tracker::addServeOptions(*trackerCmd, trackerArgs);
  for (auto* c : {seedCmd, getCmd, serveCmd, streamCmd}) {
    c->add_option("--stun,--ice", net.stun,
                  "ICE server: stun:host:port, or turn:host:port[?transport=udp|tcp] with --ice-user/--ice-pass "
                  "(repeatable; default none)");
    c->add_option("--ice-user", net.iceUser, "user name for the turn: servers")->envname("P2PCDN_ICE_USER");
    c->add_option("--ice-pass", net.icePass, "password for the turn: servers")->envname("P2PCDN_ICE_PASS");
    c->add_flag("--relay-only", net.relayOnly, "connect to peers only through the turn: servers (ICE policy relay)");
    c->add_option("--ca", net.trackerCa, "PEM CA certificates to trust for a wss:// tracker (default: the system's)")
        ->check(CLI::ExistingFile);
    c->add_flag("--loopback", net.loopback, "gather ICE candidates on loopback only (local tests and demos)");
    c->add_flag("-v,--verbose", net.verbose, "libwebrtc warnings on stderr");
    c->add_option("--udp-rcvbuf", net.udpReceiveBuffer,
                  "kernel receive buffer asked for on each UDP socket, bytes (default " +
                      std::to_string(p2pcdn::transport::WebRtcFactoryOptions{}.udpReceiveBuffer) +
                      ", capped by net.core.rmem_max; 0: the system default)")
        ->envname("P2PCDN_UDP_RCVBUF")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30));
    const p2pcdn::swarm::SessionOptions engine;  // the defaults, for the help text
    c->add_option("--max-uploads", net.maxUploads,
                  "peers served at once (unchoked; default " + std::to_string(engine.maxConcurrentUploads) + ")")
        ->check(CLI::Range(1, 10000));
    c->add_option("--max-downloads", net.maxDownloads,
                  "peers downloaded from at once (default " + std::to_string(engine.maxConcurrentDownloads) + ")")
        ->check(CLI::Range(1, 10000));
    c->add_option("--upload-limit", net.uploadLimit, "upload rate limit in bytes/s, all peers together (default none)")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 50));
    c->add_option("--download-limit", net.downloadLimit,
                  "download rate limit in bytes/s, all peers together (default none)")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 50));
    c->add_flag("--no-super-seed", net.noSuperSeed,
                "when serving a complete file, advertise every chunk at once instead of revealing them a few at a "
                "time to each peer (super-seeding, the default)");
#ifdef P2PCDN_FAULT_INJECTION
    c->add_flag("--fault-corrupt", net.faultCorrupt,
                "TEST TWIN ONLY (p2pcdn-test): flip a byte in every chunk served (a corrupting peer)");
#endif
  }
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  g.home = home.empty() ? defaultHome() : std::filesystem::path(home);
  installSignalHandlers();

  if (*addCmd) return cmdAdd(g, add);
  if (*lsCmd) return cmdLs(g);
  if (*exportCmd) return cmdExport(g, id, out, key);
  if (*verifyCmd) return cmdVerify(g, id);
  if (*rmCmd) return cmdRm(g, id);
  if (*manifestCmd) return cmdManifest(g, id);
#ifdef P2PCDN_HAVE_NET
  if (*trackerCmd) return p2pcdn::tracker::serveUntilSignal(trackerArgs);
  if (*seedCmd) return cmdSeed(g, seedAdd, net);
  if (*serveCmd) return cmdServe(g, net, media);
  if (*demoCmd) return cmdDemo(g, demo);
  if (*streamCmd) return cmdStream(g, net, media);
  if (*getCmd) {
    if (getCmd->count("--seed") && !net.seedAfter) net.seedAfter = 0;
    return cmdGet(g, net);
  }
#endif
  return kExitUsage;
}
