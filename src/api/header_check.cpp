// Compiled with only include/ on the include path (src/api/CMakeLists.txt):
// the public API header must not need Boost, libwebrtc or internal headers.
#include "p2pcdn/p2pcdn.hpp"

namespace {
[[maybe_unused]] p2pcdn::P2PCDNOptions defaults;
}  // namespace
