// The imports of the C++ (src/browser/js.hpp), linked with --js-library.
// Each one hands over to the page's host object (web/src/host.js), given to
// the module factory as the option `p2pHost`: the JS that does the I/O is an
// ordinary ES module, testable and readable, and this file stays a table.
mergeInto(LibraryManager.library, {
  p2p_js_schedule: function () { Module["p2pHost"].schedule(); },
  p2p_js_set_timer: function (ms) { Module["p2pHost"].setTimer(ms); },
  p2p_js_random32: function () { return Module["p2pHost"].random32(); },
  p2p_js_ws_open: function (h, p, n) { Module["p2pHost"].wsOpen(h, p, n); },
  p2p_js_ws_send: function (h, p, n) { return Module["p2pHost"].wsSend(h, p, n); },
  p2p_js_ws_close: function (h) { Module["p2pHost"].wsClose(h); },
  p2p_js_pc_new: function (h, p, n) { return Module["p2pHost"].pcNew(h, p, n); },
  p2p_js_pc_offer: function (h) { Module["p2pHost"].pcOffer(h); },
  p2p_js_pc_accept_offer: function (h, p, n) { Module["p2pHost"].pcAcceptOffer(h, p, n); },
  p2p_js_pc_accept_answer: function (h, p, n) { Module["p2pHost"].pcAcceptAnswer(h, p, n); },
  p2p_js_dc_send: function (h, p, n) { return Module["p2pHost"].dcSend(h, p, n); },
  p2p_js_dc_buffered: function (h) { return Module["p2pHost"].dcBuffered(h); },
  p2p_js_dc_notify_below: function (h, bytes) { Module["p2pHost"].dcNotifyBelow(h, bytes); },
  p2p_js_pc_close: function (h) { Module["p2pHost"].pcClose(h); },
  p2p_js_pc_free: function (h) { Module["p2pHost"].pcFree(h); },
  p2p_js_pc_stats: function (h) { Module["p2pHost"].pcStats(h); },
  p2p_js_store: function (peer, req, p, n, dp, dn) { Module["p2pHost"].storeOp(peer, req, p, n, dp, dn); },
  p2p_js_fetch: function (h, p, n, offset, length, timeoutMs) { Module["p2pHost"].fetchRange(h, p, n, offset, length, timeoutMs); },
  p2p_js_fetch_cancel: function (h) { Module["p2pHost"].fetchCancel(h); },
  p2p_js_sign: function (peer, req, p, n) { Module["p2pHost"].sign(peer, req, p, n); },
  p2p_js_verify: function (peer, req, kp, p, n, sp) { Module["p2pHost"].verify(peer, req, kp, p, n, sp); },
  p2p_js_peer_event: function (peer, p, n) { Module["p2pHost"].peerEvent(peer, p, n); },
  p2p_js_peer_data: function (peer, req, p, n) { Module["p2pHost"].peerData(peer, req, p, n); },
});
