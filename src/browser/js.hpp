// The browser's side of the ABI: functions JavaScript provides to the C++
// (web/glue/library.js, a --js-library whose functions call the page's host
// object, web/src/host.js). Objects on the JS side (WebSocket,
// RTCPeerConnection) are named by integer handles the C++ picks and never
// reuses. JS answers through the exports of js_events.cpp / exports.cpp;
// those events are always posted onto the loop, never run inside a call of
// these functions. Text and bytes cross as (pointer, length): JS reads them
// out of the heap during the call and keeps no view of it.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {
// The loop: one macrotask (MessageChannel) that calls p2p_run_posted.
void p2p_js_schedule();
// The one timer: calls p2p_run_timers after `ms` (replaces the previous one).
void p2p_js_set_timer(double ms);
// 32 bits from crypto.getRandomValues.
std::uint32_t p2p_js_random32();

// Tracker WebSocket h: events open / message / closed (p2p_ws_event).
void p2p_js_ws_open(int h, const char* url, std::size_t n);
// 0 if queued.
int p2p_js_ws_send(int h, const char* text, std::size_t n);
void p2p_js_ws_close(int h);  // no event follows

// RTCPeerConnection h with one "p2pcdn" data channel (p2p_link_* events).
// config: {"iceServers":[...],"offerer":bool,"lowWatermark":n}. 0 if created,
// 2 if the page already holds its budget of them, 1 if the browser refused.
int p2p_js_pc_new(int h, const char* config, std::size_t n);
void p2p_js_pc_offer(int h);
void p2p_js_pc_accept_offer(int h, const char* sdp, std::size_t n);
void p2p_js_pc_accept_answer(int h, const char* sdp, std::size_t n);
// 0 if queued (the data channel copies the bytes during the call).
int p2p_js_dc_send(int h, const std::uint8_t* p, std::size_t n);
double p2p_js_dc_buffered(int h);
// onbufferedamountlow also at `bytes` (soon if already at or below).
void p2p_js_dc_notify_below(int h, double bytes);
void p2p_js_pc_close(int h);  // orderly: a closed event follows
void p2p_js_pc_free(int h);   // torn down, no event follows
void p2p_js_pc_stats(int h);  // a stats event follows

// Storage request `req` of peer `peer` (browser/storage.hpp): op JSON
// {"op":"put"|"get"|"delete","fileId","index"} | {"op":"manifest","fileId",
// "manifest","pinned","lastUsed"} | {"op":"deleteFile","fileId"}, with a
// put's bytes. Answered by p2p_store_done (a get's bytes first into
// p2p_store_inbox).
void p2p_js_store(int peer, double req, const char* op, std::size_t n, const std::uint8_t* p, std::size_t pn);

// Web seed fetch h: GET bytes [offset, offset + length) of the URL (a Range
// request), abandoned after timeoutMs. Answered by p2p_fetch_inbox (room for
// the bytes) then p2p_fetch_done; nothing follows p2p_js_fetch_cancel.
void p2p_js_fetch(int h, const char* url, std::size_t n, double offset, double length, double timeoutMs);
void p2p_js_fetch_cancel(int h);

// Identity of peer `peer` (browser/identity.hpp), WebCrypto Ed25519:
// sign `n` bytes with its key; verify a 64-byte signature by a 32-byte key.
// Each answered by p2p_identity_done(peer, req, ok, signature bytes or none).
void p2p_js_sign(int peer, double req, const std::uint8_t* p, std::size_t n);
void p2p_js_verify(int peer, double req, const std::uint8_t* key, const std::uint8_t* p, std::size_t n,
                   const std::uint8_t* sig);

// A peer's event for the page (JSON), and chunk bytes read for request `req`.
void p2p_js_peer_event(int peer, const char* json, std::size_t n);
void p2p_js_peer_data(int peer, double req, const std::uint8_t* p, std::size_t n);
}
