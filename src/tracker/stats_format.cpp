// /stats (JSON) and /metrics (Prometheus text exposition format 0.0.4).
#include <nlohmann/json.hpp>

#include "tracker/tracker_server.hpp"

namespace p2pcdn::tracker {
namespace {

struct Field {
  const char* json;     // key in /stats
  const char* metric;   // name in /metrics (p2pcdn_tracker_ prefix added)
  bool counter;
  const char* help;
  std::uint64_t TrackerStats::*member;
};

constexpr Field kFields[] = {
    {"connections", "connections", false, "Open WebSocket connections.", &TrackerStats::connections},
    {"swarms", "swarms", false, "Swarms with at least one peer.", &TrackerStats::swarms},
    {"peers", "peers", false, "Peers in all swarms.", &TrackerStats::peers},
    {"seeders", "seeders", false, "Peers with the whole file.", &TrackerStats::seeders},
    {"leechers", "leechers", false, "Peers still downloading.", &TrackerStats::leechers},
    {"connectionsAccepted", "connections_accepted_total", true, "TCP connections accepted.",
     &TrackerStats::connectionsAccepted},
    {"connectionsRejected", "connections_rejected_total", true, "TCP connections closed at the connection limit.",
     &TrackerStats::connectionsRejected},
    {"connectionsRejectedPerSource", "connections_rejected_per_source_total", true,
     "TCP connections closed at once: their address (IPv4, or IPv6 /64) held its limit.",
     &TrackerStats::connectionsRejectedPerSource},
    {"messagesIn", "messages_in_total", true, "WebSocket messages received.", &TrackerStats::messagesIn},
    {"messagesOut", "messages_out_total", true, "WebSocket messages sent.", &TrackerStats::messagesOut},
    {"bytesIn", "bytes_in_total", true, "WebSocket payload bytes received.", &TrackerStats::bytesIn},
    {"bytesOut", "bytes_out_total", true, "WebSocket payload bytes sent.", &TrackerStats::bytesOut},
    {"announces", "announces_total", true, "Announce requests handled.", &TrackerStats::announces},
    {"scrapes", "scrapes_total", true, "Scrape requests handled.", &TrackerStats::scrapes},
    {"offersRelayed", "offers_relayed_total", true, "WebRTC offers relayed to a peer.", &TrackerStats::offersRelayed},
    {"answersRelayed", "answers_relayed_total", true, "WebRTC answers relayed to a peer.",
     &TrackerStats::answersRelayed},
    {"answersUnroutable", "answers_unroutable_total", true, "Answers for a peer no longer in the swarm.",
     &TrackerStats::answersUnroutable},
    {"errors", "errors_total", true, "Messages answered with a failure reason.", &TrackerStats::errors},
    {"rateLimited", "rate_limited_total", true, "Messages dropped by the per-connection rate limit.",
     &TrackerStats::rateLimited},
    {"closedAbusive", "closed_abusive_total", true, "Connections closed for flooding.", &TrackerStats::closedAbusive},
    {"closedSlow", "closed_slow_total", true, "Connections closed because they did not read.",
     &TrackerStats::closedSlow},
    {"closedOversized", "closed_oversized_total", true, "Connections closed for an oversized message.",
     &TrackerStats::closedOversized},
    {"closedIdle", "closed_idle_total", true, "Connections closed for sending nothing for the idle time-out.",
     &TrackerStats::closedIdle},
    {"peersExpired", "peers_expired_total", true, "Peers dropped for not announcing.", &TrackerStats::peersExpired},
    {"httpRequests", "http_requests_total", true, "Plain HTTP requests (stats, metrics).", &TrackerStats::httpRequests},
    {"redisUp", "redis_up", false, "1 while announces go through Redis (--redis).", &TrackerStats::redisUp},
    {"redisConnects", "redis_connects_total", true, "Redis (re)connections.", &TrackerStats::redisConnects},
    {"redisErrors", "redis_errors_total", true, "Redis commands that failed.", &TrackerStats::redisErrors},
    {"redisTimeouts", "redis_timeouts_total", true, "Redis commands past their deadline.", &TrackerStats::redisTimeouts},
    {"redisRttMicros", "redis_rtt_microseconds", false, "The last Redis command's round trip.",
     &TrackerStats::redisRttMicros},
    {"redisRttMicrosSum", "redis_rtt_microseconds_sum", true, "Sum of Redis round trips.",
     &TrackerStats::redisRttMicrosSum},
    {"redisRttCount", "redis_rtt_count", true, "Redis round trips summed.", &TrackerStats::redisRttCount},
    {"fleetAnnounces", "fleet_announces_total", true, "Announces run through Redis.", &TrackerStats::fleetAnnounces},
    {"fleetFallbacks", "fleet_fallbacks_total", true, "Announces answered from this instance alone (no Redis).",
     &TrackerStats::fleetFallbacks},
    {"fleetOffersPublished", "fleet_offers_published_total", true, "Offers sent to another instance.",
     &TrackerStats::fleetOffersPublished},
    {"fleetOffersReceived", "fleet_offers_received_total", true, "Offers from another instance, delivered.",
     &TrackerStats::fleetOffersReceived},
    {"fleetAnswersPublished", "fleet_answers_published_total", true, "Answers sent to another instance.",
     &TrackerStats::fleetAnswersPublished},
    {"fleetAnswersReceived", "fleet_answers_received_total", true, "Answers from another instance, delivered.",
     &TrackerStats::fleetAnswersReceived},
    {"fleetUndeliverable", "fleet_undeliverable_total", true, "Fleet messages whose peer or instance was gone.",
     &TrackerStats::fleetUndeliverable},
    {"fleetRepublished", "fleet_republished_total", true, "Peers written to Redis again after a reconnection.",
     &TrackerStats::fleetRepublished},
};

}  // namespace

std::string statsJson(const TrackerStats& s) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const Field& f : kFields) j[f.json] = s.*f.member;
  return j.dump(2) + "\n";
}

std::string statsPrometheus(const TrackerStats& s) {
  std::string out;
  out.reserve(4096);
  for (const Field& f : kFields) {
    const std::string name = std::string("p2pcdn_tracker_") + f.metric;
    out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + (f.counter ? " counter\n" : " gauge\n");
    out += name + " " + std::to_string(s.*f.member) + "\n";
  }
  return out;
}

}  // namespace p2pcdn::tracker
