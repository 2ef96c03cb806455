// Error values for every fallible operation: an error code, the operation that
// failed and a human-readable detail. Result<T> mirrors std::expected's member
// names (g++ 12 has no std::expected). No exceptions cross module boundaries.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace p2pcdn {

enum class Errc {
  kOk = 0,
  kInvalidArgument,  // caller passed something unusable (bad id, bad option)
  kMalformed,        // untrusted input failed to decode (manifest, link, message)
  kTooLarge,         // a documented limit was exceeded
  kNotFound,         // no such file, chunk or manifest
  kIntegrity,        // a hash or authentication tag did not match
  kIo,               // the operating system or the database failed
  kQuotaExceeded,    // the store is full of pinned data
  kUnsupported,      // a format version or algorithm we do not know
  kCrypto,           // the crypto library failed
  kCancelled,        // the operation was abandoned (shutdown)
  kBackPressure,     // a buffer is full: wait for its drain event and retry
  kTimedOut,         // a deadline the caller set passed first
};

std::string_view errcName(Errc code);

class Error {
 public:
  Error() = default;
  Error(Errc code, std::string op, std::string detail = {})
      : code_(code), op_(std::move(op)), detail_(std::move(detail)) {}

  Errc code() const { return code_; }
  const std::string& op() const { return op_; }
  const std::string& detail() const { return detail_; }
  // "op: detail (code)"
  std::string message() const;

 private:
  Errc code_ = Errc::kOk;
  std::string op_;
  std::string detail_;
};

// Tag type to construct a failed Result, like std::unexpected.
struct Unexpected {
  Error error;
};
inline Unexpected fail(Errc code, std::string op, std::string detail = {}) {
  return Unexpected{Error(code, std::move(op), std::move(detail))};
}
inline Unexpected fail(Error e) { return Unexpected{std::move(e)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Unexpected u) : v_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { assert(!has_value()); return std::get<1>(v_); }

  template <class U>
  T value_or(U&& other) const& { return has_value() ? value() : static_cast<T>(std::forward<U>(other)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;
  Result() = default;
  Result(Unexpected u) : err_(std::move(u.error)), ok_(false) {}  // NOLINT

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  void value() const { assert(ok_); }
  const Error& error() const { assert(!ok_); return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace p2pcdn

// Propagates a failed Result from the enclosing function.
#define P2PCDN_TRY(expr)                                              \
  do {                                                                \
    auto&& p2pcdn_try_r_ = (expr);                                    \
    if (!p2pcdn_try_r_) return ::p2pcdn::fail(p2pcdn_try_r_.error()); \
  } while (0)
