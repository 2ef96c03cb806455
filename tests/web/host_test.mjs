// web/src/host.js in node, over a fake module and a fake data channel that
// fires onbufferedamountlow as browsers do (when bufferedAmount falls from
// above bufferedAmountLowThreshold to at most it): notifyWhenBufferedBelow
// (transport/peer_link.hpp) must hear every level it asks for, soon if the
// queue is already there. The first version raised the threshold above
// bufferedAmount, so the event never came and a page's uploads stalled.
//   node host_test.mjs
import { Host } from "../../web/src/host.js";
import { check, checks } from "./check.mjs";


const events = [];  // [handle, kind]
const host = new Host();
host.attach({
  HEAPU8: new Uint8Array(1 << 16),
  _p2p_alloc: () => 8,
  _p2p_free: () => {},
  _p2p_link_event: (h, kind) => events.push([h, kind]),
});

// A data channel: drain(n) lowers bufferedAmount and fires the event on the crossing.
function fakeChannel() {
  const dc = { bufferedAmount: 0, bufferedAmountLowThreshold: 0, onbufferedamountlow: null };
  dc.fill = (n) => { dc.bufferedAmount = n; };
  dc.drain = (n) => {
    const before = dc.bufferedAmount;
    dc.bufferedAmount = n;
    if (before > dc.bufferedAmountLowThreshold && n <= dc.bufferedAmountLowThreshold && dc.onbufferedamountlow) {
      dc.onbufferedamountlow();
    }
  };
  return dc;
}
const KiB = 1024;
const low = 1024 * KiB;
function link(h) {
  const rec = { pc: {}, dc: null, offerer: true, low, want: null, closing: false, failed: false };
  host.links.set(h, rec);
  const dc = fakeChannel();
  host.wireChannel(h, rec, dc);
  return dc;
}
const lows = (h) => events.filter((e) => e[0] === h && e[1] === 2).length;
const tick = () => new Promise((r) => setTimeout(r, 0));

// 1. The queue below the usual level already; a lower level asked: it must fire there.
let dc = link(1);
dc.fill(200 * KiB);
host.dcNotifyBelow(1, 64 * KiB);
check(dc.bufferedAmountLowThreshold === 64 * KiB, `threshold ${dc.bufferedAmountLowThreshold} with 200 KiB queued`);
dc.drain(100 * KiB);
check(lows(1) === 0, "no event above the level");
dc.drain(60 * KiB);
check(lows(1) === 1, "the event at the level asked for (the stalled-upload bug)");

// 2. Above both levels: first the usual one, then the one asked for, then back to the usual.
dc = link(2);
dc.fill(2048 * KiB);
host.dcNotifyBelow(2, 64 * KiB);
check(dc.bufferedAmountLowThreshold === low, "the usual level is crossed first");
dc.drain(900 * KiB);
check(lows(2) === 1 && dc.bufferedAmountLowThreshold === 64 * KiB, "then the threshold moves to the level asked for");
dc.drain(10 * KiB);
check(lows(2) === 2 && dc.bufferedAmountLowThreshold === low, "heard at 64 KiB; back to the usual level");

// 3. Already at the level: soon (a microtask), not never.
dc = link(3);
dc.fill(10 * KiB);
host.dcNotifyBelow(3, 64 * KiB);
check(lows(3) === 0, "not inside the call");
await tick();
check(lows(3) === 1, "soon when the queue is already at the level");

// 4. Two levels asked: the one reached first (the higher) is kept.
dc = link(4);
dc.fill(800 * KiB);
host.dcNotifyBelow(4, 64 * KiB);
host.dcNotifyBelow(4, 256 * KiB);
check(dc.bufferedAmountLowThreshold === 256 * KiB, `the higher level first: ${dc.bufferedAmountLowThreshold}`);

// 5. The page's budget of peer connections (RTCPeerConnection is not needed to refuse).
const { MAX_LIVE_PEER_CONNECTIONS } = await import("../../web/src/host.js");
for (let h = 100; host.links.size < MAX_LIVE_PEER_CONNECTIONS; ++h) host.links.set(h, {});
const cfg = JSON.stringify({ iceServers: [], offerer: true, lowWatermark: low });
check(host.withBytes(cfg, (p, n) => host.pcNew(9999, p, n)) === 2, "past the budget, pcNew refuses with 2");

console.log(`web host: ${checks()} checks passed`);
process.exit(0);
