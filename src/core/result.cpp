#include "p2pcdn/result.hpp"

namespace p2pcdn {

std::string_view errcName(Errc code) {
  switch (code) {
    case Errc::kOk: return "ok";
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kMalformed: return "malformed input";
    case Errc::kTooLarge: return "too large";
    case Errc::kNotFound: return "not found";
    case Errc::kIntegrity: return "integrity failure";
    case Errc::kIo: return "I/O error";
    case Errc::kQuotaExceeded: return "quota exceeded";
    case Errc::kUnsupported: return "unsupported";
    case Errc::kCrypto: return "crypto failure";
    case Errc::kCancelled: return "cancelled";
    case Errc::kBackPressure: return "back-pressure";
    case Errc::kTimedOut: return "timed out";
  }
  return "unknown error";
}

std::string Error::message() const {
  std::string s = op_;
  if (!detail_.empty()) {
    if (!s.empty()) s += ": ";
    s += detail_;
  }
  if (!s.empty()) s += ' ';
  s += "(";
  s += errcName(code_);
  s += ")";
  return s;
}

}  // namespace p2pcdn
