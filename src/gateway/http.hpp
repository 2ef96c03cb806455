// The HTTP gateway's decisions, with no I/O (no Beast, no sockets): routing
// of request targets, Range headers (RFC 7233, single range), conditional
// requests (ETag, If-None-Match, If-Range), which chunks a byte range covers,
// Content-Type, and the Prometheus text format. The server (server.hpp) reads
// requests and writes bytes; everything it decides comes from here, so it is
// unit-tested and fuzzed without a socket.
//
// All input is untrusted: every function here accepts any bytes and never
// asserts; anything malformed becomes a status code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2pcdn/manifest.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn::gateway {

// ---- routing ----------------------------------------------------------------

enum class RouteKind {
  kIndex,     // GET /: the web app (GatewayOptions::appDir), else the file table
  kFilesPage, // GET /files: the file table
  kFile,      // GET /f/<id> or /f/<id>/<name>
  kFilesJson, // GET /api/files
  kConfig,    // GET /api/config: what the web app needs (tracker URL, web seed)
  kManifest,  // GET /api/manifest/<id>: the file's manifest as JSON (from the store or the swarm)
  kMetrics,   // GET /metrics
  kAppFile,   // GET /<path> of the web app's files (Route::name: the relative path)
  kNotFound,  // any other path
  kBadRequest // not an origin-form target, bad percent-encoding, bad id, bad key
};

struct Route {
  RouteKind kind = RouteKind::kNotFound;
  FileId fileId{};
  std::string name;                  // /f/<id>/<name>, percent-decoded ("" when absent); kAppFile: the path
  std::optional<EncryptionKey> key;  // ?k=<64 hex>: the key of an encrypted file (as in a link)
  std::string why;                   // kBadRequest / kNotFound: a short reason for the body
};

// Longest request target accepted (the server's header limit bounds it too).
inline constexpr std::size_t kMaxTargetBytes = 2048;

// `target` is the request-target as received ("/f/<id>?k=..."). Ids are 64 hex
// digits (either case). A name is one path segment, any UTF-8 but no '/', no
// control characters after decoding; it is decoration for players and
// browsers (the id alone says what is served), so any name is accepted.
Route route(std::string_view target);

// ---- who may ask ---------------------------------------------------------------
//
// The gateway applies the store's keys and fetches whatever id it is asked
// for, so it must answer only requests meant for it: a page on another site
// that points a DNS name at 127.0.0.1 (rebinding) sends its own name as Host,
// and a cross-origin fetch() carries its page's Origin.

struct RequestPolicy {
  std::uint16_t port = 0;                   // the gateway's
  std::vector<std::string> hosts;           // names it answers to besides 127.0.0.1, localhost, [::1]
  std::vector<std::string> corsOrigins;     // origins other pages may read from ("*": any)
};

// Host as received (absent: HTTP/1.0): one of the names, with our port or none.
bool hostAllowed(std::optional<std::string_view> host, const RequestPolicy& policy);
// Origin (absent: not a cross-origin request by a browser; "null": an opaque
// one): the gateway's own (http://<Host>), or one of corsOrigins.
bool originAllowed(std::optional<std::string_view> origin, std::optional<std::string_view> host,
                   const RequestPolicy& policy);
// Sec-Fetch-Site / Sec-Fetch-Mode (sent by current browsers on every
// request, also on the no-cors ones that carry no Origin: <img>, <video>,
// <script>): a request made by another site's page is refused unless it is a
// top-level navigation (a link the user followed) or its Origin is a --cors one.
bool fetchSiteAllowed(std::optional<std::string_view> site, std::optional<std::string_view> mode,
                      std::optional<std::string_view> origin, const RequestPolicy& policy);
// The access token (serve --token): whether the request presents `token` as
// "Authorization: Bearer <token>" or as the cookie p2pcdn_token=<token>
// (what <video src> can carry). Compared in constant time. An empty token:
// every request qualifies (no token configured).
bool tokenPresented(std::optional<std::string_view> authorization, std::optional<std::string_view> cookie,
                    std::string_view token);

// The Access-Control-Allow-Origin to send for this Origin, if any ("*" for
// every request when corsOrigins has it). With named origins, responses must
// carry Vary: Origin whether or not this one gets the header (caches).
std::optional<std::string> corsHeader(std::optional<std::string_view> origin, const RequestPolicy& policy);

// A web-app path ("app/app.js"): 1-4 segments of [A-Za-z0-9._-], none
// starting with '.', at most 200 bytes; else nullopt. Nothing outside the
// app's folder can be named (no "..", no percent-encoding, no hidden files).
std::optional<std::string> appPath(std::string_view path);
// The Content-Type of a web-app file, from its extension.
std::string appContentType(std::string_view path);

// ---- ranges (RFC 7233) -----------------------------------------------------

// An inclusive byte range [first, last] of a representation.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t length() const { return last - first + 1; }
  bool operator==(const ByteRange&) const = default;
};

enum class RangeOutcome {
  kNone,           // no Range header, or one to ignore: 200 with the whole representation
  kSatisfiable,    // 206 with `range`
  kUnsatisfiable,  // 416 with "Content-Range: bytes */<size>"
};

struct RangeResult {
  RangeOutcome outcome = RangeOutcome::kNone;
  ByteRange range;
};

// Parses a Range header value against a representation of `size` bytes:
//  - "bytes=a-b" (b clamped to size-1), "bytes=a-" and the suffix "bytes=-n"
//    (the last n bytes, all of them when n >= size);
//  - a range unit other than "bytes" is ignored (kNone, RFC 7233 3.1);
//  - a malformed byte-range-set (no digits, b < a, junk, overflow of a
//    position that must fit) is rejected: kUnsatisfiable;
//  - none of the ranges satisfiable (a >= size, "-0", any range of an empty
//    representation): kUnsatisfiable;
//  - several ranges, at least one satisfiable: kNone, i.e. 200 with the whole
//    representation. RFC 7233 lets a server ignore Range; we serve no
//    multipart/byteranges (players send one range; a multipart body would have
//    to wait for every part's chunks anyway).
// Whitespace around the value and around commas is allowed (OWS).
RangeResult parseRange(std::string_view header, std::uint64_t size);

// The chunks of a file with `chunkSize`-byte chunks that hold bytes [first, last].
struct ChunkSpan {
  ChunkIndex first = 0;
  ChunkIndex last = 0;
  bool operator==(const ChunkSpan&) const = default;
};
ChunkSpan chunksFor(const ByteRange& range, std::uint32_t chunkSize);

// ---- validators and types -------------------------------------------------

// A strong ETag: a file's bytes never change under its id. "\"<64 hex>\"".
std::string etagFor(const FileId& id);

// True when an If-None-Match value (a list of entity tags, or "*") matches
// `etag` by the weak comparison (RFC 7232 3.2).
bool ifNoneMatchHits(std::string_view header, std::string_view etag);
// True when an If-Range value allows the Range: it is exactly `etag` (a strong
// comparison; an HTTP date or a weak tag never matches: we have no dates).
bool ifRangeAllows(std::string_view header, std::string_view etag);

// The Content-Type to send: the manifest's MIME type when it is a plain
// "type/subtype" of token characters (the manifest comes from peers; anything
// else could inject header text), else a guess from the name, else
// application/octet-stream.
std::string contentType(const Manifest& m);
// True for audio/* and video/* (the index page shows a player).
bool isMedia(std::string_view contentType);

// Content-Disposition for a name: inline, with an RFC 5987/6266 filename*.
std::string contentDisposition(std::string_view name);

// ---- the response plan for GET/HEAD /f/<id> ------------------------------

struct FileRequest {
  bool head = false;
  std::optional<std::string_view> range;        // Range
  std::optional<std::string_view> ifRange;      // If-Range
  std::optional<std::string_view> ifNoneMatch;  // If-None-Match
};

struct ResponsePlan {
  unsigned status = 200;           // 200, 206, 304, 416
  std::optional<ByteRange> body;   // bytes to send (none: empty body; HEAD keeps it for Content-Length)
  std::uint64_t contentLength = 0;
  std::string contentRange;        // "bytes a-b/size" (206) or "bytes */size" (416); "" otherwise
};

// What to answer for a file of plaintext `size` bytes whose ETag is `etag`.
ResponsePlan planFileResponse(const FileRequest& req, std::uint64_t size, std::string_view etag);

// ---- text helpers ---------------------------------------------------------------

std::string htmlEscape(std::string_view s);
// Percent-encodes everything but unreserved characters (RFC 3986), for URLs in the page.
std::string percentEncode(std::string_view s);

// ---- Prometheus text exposition format (version 0.0.4) --------------------------

class PromText {
 public:
  // Starts a metric family: "# HELP name help" and "# TYPE name type" (type:
  // "counter" or "gauge"). Each family must be started once, before its samples.
  void family(std::string_view name, std::string_view type, std::string_view help);
  // One sample; labels as (name, value) pairs, values escaped as the format wants.
  void sample(std::string_view name, double value,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels = {});
  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

// ---- the gateway's /metrics ------------------------------------------------------

struct MetricsFile {
  std::string id;  // hex
  double chunks = 0, held = 0, firstMissing = 0, peers = 0, downloaded = 0, uploaded = 0;
};
struct MetricsSnapshot {
  double connections = 0, accepted = 0, rejected = 0, bytesSent = 0, waiting = 0, windowMoves = 0;
  double firstByteSecondsSum = 0, firstByteCount = 0;
  std::vector<std::pair<unsigned, double>> byStatus;  // HTTP status -> responses
  std::vector<MetricsFile> files;
};
// The Prometheus text of the gateway and the files it serves.
std::string renderMetrics(const MetricsSnapshot& m);

// ---- the index page -------------------------------------------------------------

struct IndexEntry {
  FileId fileId;
  std::string name;
  std::string contentType;
  std::uint64_t size = 0;        // 0 with haveManifest false
  bool haveManifest = false;
  std::uint32_t chunksHave = 0;
  std::uint32_t chunksTotal = 0;
  std::size_t peers = 0;
  bool encrypted = false;
  bool keyKnown = false;         // encrypted and a key is known to the gateway
};

// The "/" page: every file with its progress, a <video>/<audio> player for media.
std::string renderIndex(const std::vector<IndexEntry>& files);
// The "/api/files" JSON array (the same facts, for scripts and the demo).
std::string renderFilesJson(const std::vector<IndexEntry>& files);

}  // namespace p2pcdn::gateway
