// Result/Error, hex and Hash.
#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <set>
#include <unordered_set>

#include "core/hex.hpp"
#include "test_support.hpp"

namespace p2pcdn {
namespace {

TEST(Error, MessageFormat) {
  EXPECT_EQ(Error(Errc::kNotFound, "get chunk", "chunk 3 not stored").message(),
            "get chunk: chunk 3 not stored (not found)");
  EXPECT_EQ(Error(Errc::kIo, "open store").message(), "open store (I/O error)");
  EXPECT_EQ(Error(Errc::kIntegrity, "", "hash mismatch").message(), "hash mismatch (integrity failure)");
  Error e(Errc::kTooLarge, "op", "detail");
  EXPECT_EQ(e.code(), Errc::kTooLarge);
  EXPECT_EQ(e.op(), "op");
  EXPECT_EQ(e.detail(), "detail");
}

TEST(Error, EveryCodeHasADistinctName) {
  std::set<std::string_view> names;
  for (int c = static_cast<int>(Errc::kOk); c <= static_cast<int>(Errc::kTimedOut); ++c) {
    std::string_view n = errcName(static_cast<Errc>(c));
    EXPECT_NE(n, "unknown error") << c;
    EXPECT_TRUE(names.insert(n).second) << n;
  }
  EXPECT_EQ(errcName(Errc::kQuotaExceeded), "quota exceeded");
  EXPECT_EQ(errcName(Errc::kMalformed), "malformed input");
  EXPECT_EQ(errcName(static_cast<Errc>(999)), "unknown error");
}

Result<int> half(int v) {
  if (v % 2 != 0) return fail(Errc::kInvalidArgument, "half", std::to_string(v) + " is odd");
  return v / 2;
}

Result<int> quarter(int v) {
  auto h = half(v);
  P2PCDN_TRY(h);
  P2PCDN_TRY(half(*h));
  return *half(*h);
}

Status checkPositive(int v) {
  if (v <= 0) return fail(Errc::kInvalidArgument, "check", "not positive");
  return {};
}

Status checkBoth(int a, int b) {
  P2PCDN_TRY(checkPositive(a));
  P2PCDN_TRY(checkPositive(b));
  return {};
}

TEST(Result, ValuesAndErrors) {
  Result<int> ok = half(8);
  ASSERT_TRUE(ok.has_value());
  EXPECT_TRUE(static_cast<bool>(ok));
  EXPECT_EQ(*ok, 4);
  EXPECT_EQ(ok.value(), 4);
  EXPECT_EQ(ok.value_or(-1), 4);

  Result<int> bad = half(7);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "half: 7 is odd (invalid argument)");
  EXPECT_EQ(bad.value_or(-1), -1);

  Result<std::string> s = std::string("abc");
  EXPECT_EQ(s->size(), 3u);
  std::string moved = std::move(s).value();
  EXPECT_EQ(moved, "abc");

  Result<std::unique_ptr<int>> owning = std::make_unique<int>(5);
  std::unique_ptr<int> p = *std::move(owning);
  EXPECT_EQ(*p, 5);
}

TEST(Result, TryPropagates) {
  EXPECT_EQ(*quarter(8), 2);
  auto r = quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().detail(), "3 is odd");
  r = quarter(5);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().detail(), "5 is odd");

  Status st;
  EXPECT_TRUE(st.has_value());
  P2PCDN_EXPECT_OK(checkBoth(1, 2));
  auto e = checkBoth(1, 0);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().op(), "check");
  Status fromError = fail(Error(Errc::kCancelled, "shutdown"));
  EXPECT_EQ(test::codeOf(fromError), Errc::kCancelled);
}

TEST(Hex, EncodeDecode) {
  Bytes b = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  EXPECT_EQ(toHex(b), "00017f80abff");
  EXPECT_EQ(toHex({}), "");
  Bytes out(6);
  EXPECT_TRUE(fromHex("00017F80ABff", out));
  EXPECT_EQ(out, b);
  EXPECT_FALSE(fromHex("00017f80abf", out));    // odd length
  EXPECT_FALSE(fromHex("00017f80abff00", out));  // too long
  EXPECT_FALSE(fromHex("00017f80abfg", out));
  EXPECT_FALSE(fromHex("0x017f80abff", out));
  EXPECT_FALSE(fromHex(" 0017f80abff", out));
}

TEST(Hash, FromHex) {
  Hash h = Blake3::hash(asBytes("abc"));
  std::string hex = h.hex();
  ASSERT_EQ(hex.size(), 64u);
  EXPECT_EQ(hex, "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");  // b3sum of "abc"
  auto back = Hash::fromHex(hex);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, h);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(*Hash::fromHex(upper), h);

  for (const std::string& bad : {std::string(), hex.substr(0, 63), hex + "0", hex.substr(0, 62) + "zz",
                                 hex.substr(0, 63) + " ", std::string(64, 'x')}) {
    SCOPED_TRACE(bad);
    P2PCDN_EXPECT_ERRC(Hash::fromHex(bad), Errc::kMalformed);
  }
}

TEST(Hash, FromBytesOrderingAndHashing) {
  Bytes raw(32);
  for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<std::uint8_t>(i);
  Hash a = Hash::fromBytes(raw);
  EXPECT_TRUE(std::equal(raw.begin(), raw.end(), a.bytes.begin()));
  Hash b = a;
  EXPECT_EQ(a, b);
  b.bytes[31] = 0xff;
  EXPECT_LT(a, b);
  EXPECT_NE(a, b);
  Hash zero;
  EXPECT_EQ(zero.hex(), std::string(64, '0'));

  std::unordered_set<Hash, HashHasher> set;
  std::map<Hash, int> map;
  for (int i = 0; i < 1000; ++i) {
    Hash h = Blake3::hash(asBytes(std::to_string(i)));
    set.insert(h);
    map[h] = i;
  }
  EXPECT_EQ(set.size(), 1000u);
  EXPECT_EQ(map.size(), 1000u);
  EXPECT_EQ(map[Blake3::hash(asBytes("42"))], 42);
}

}  // namespace
}  // namespace p2pcdn
