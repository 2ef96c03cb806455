// Bounds-checked big-endian readers and writers for the binary codecs.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "p2pcdn/types.hpp"

namespace p2pcdn {

class ByteWriter {
 public:
  explicit ByteWriter(Bytes& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) { be(v, 2); }
  void u32(std::uint32_t v) { be(v, 4); }
  void u64(std::uint64_t v) { be(v, 8); }
  void raw(ByteView b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void str(std::string_view s) { raw(asBytes(s)); }

 private:
  void be(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  Bytes& out_;
};

// Every read reports failure instead of reading past the end.
class ByteReader {
 public:
  explicit ByteReader(ByteView in) : in_(in) {}
  std::size_t remaining() const { return in_.size() - pos_; }
  std::size_t position() const { return pos_; }
  bool u8(std::uint8_t& v) { return be(v, 1); }
  bool u16(std::uint16_t& v) { return be(v, 2); }
  bool u32(std::uint32_t& v) { return be(v, 4); }
  bool u64(std::uint64_t& v) { return be(v, 8); }
  bool raw(std::span<std::uint8_t> out) {
    if (remaining() < out.size()) return false;
    if (!out.empty()) std::memcpy(out.data(), in_.data() + pos_, out.size());
    pos_ += out.size();
    return true;
  }
  bool view(std::size_t n, ByteView& out) {
    if (remaining() < n) return false;
    out = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool str(std::size_t n, std::string& out) {
    ByteView v;
    if (!view(n, v)) return false;
    out.assign(reinterpret_cast<const char*>(v.data()), v.size());
    return true;
  }

 private:
  template <class T>
  bool be(T& v, int n) {
    if (remaining() < static_cast<std::size_t>(n)) return false;
    std::uint64_t acc = 0;
    for (int i = 0; i < n; ++i) acc = (acc << 8) | in_[pos_++];
    v = static_cast<T>(acc);
    return true;
  }
  ByteView in_;
  std::size_t pos_ = 0;
};

}  // namespace p2pcdn
