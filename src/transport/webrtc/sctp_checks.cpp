// Replaces one debug-only consistency check of Debian's libtgowt.
//
// Debian builds libtgowt without NDEBUG, so dcsctp's RTC_DCHECK(IsConsistent())
// runs in our product. OutstandingData::IsConsistent() copies every
// unacknowledged TSN into a std::set and walks it on every SACK, every chunk
// sent and every retransmission scan: its cost grows with the data in flight,
// and it took 28 % of a seeder's busy CPU at 25-57 MB/s on loopback (perf,
// bench/RESULTS.md 2026-12-04). libwebrtc as Chrome ships it has the check
// compiled out. The build copies libtg_owt.a with that symbol made weak
// (objcopy, src/transport/webrtc/CMakeLists.txt), and this strong definition
// wins at link time (`-Wl,-u` makes the linker take this archive member, which
// nothing else references).
//
// The check has no side effects: it only reports whether the bookkeeping agrees
// with itself. -DP2PCDN_SCTP_DEBUG_CHECKS=ON keeps it.

// The mangled name of `bool dcsctp::OutstandingData::IsConsistent() const`: a
// const member function takes `this` as its one argument, so a free function of
// a pointer has the same calling convention, and no libtgowt header is needed.
bool p2pcdnOutstandingDataIsConsistent(const void* self) __asm__("_ZNK6dcsctp15OutstandingData12IsConsistentEv");
bool p2pcdnOutstandingDataIsConsistent(const void*) { return true; }
