// Helpers of the C ABI (exports.cpp, peer_exports.cpp): a call returns 0 or
// an Errc code (never 0 for a failure) and leaves its text result (JSON, or
// {"code","message"} on failure) for p2p_result / p2p_result_size.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn::browser::abi {

std::string& result();  // the last call's result

inline std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
inline int ok(std::string text) {
  result() = std::move(text);
  return 0;
}
inline int code(const Error& e) { return e.code() == Errc::kOk ? 1 : static_cast<int>(e.code()); }
inline nlohmann::json errorJson(const Error& e) { return {{"code", code(e)}, {"message", e.message()}}; }
inline int failed(const Error& e) {
  result() = dump(errorJson(e));
  return code(e);
}
inline std::string_view text(const char* p, std::size_t n) {
  return n == 0 ? std::string_view() : std::string_view(p, n);
}
inline ByteView bytes(const std::uint8_t* p, std::size_t n) { return n == 0 ? ByteView() : ByteView(p, n); }

}  // namespace p2pcdn::browser::abi
