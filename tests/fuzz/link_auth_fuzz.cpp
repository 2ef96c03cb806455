// node::LinkAuth as a state machine, and wire::decodeAuth, under arbitrary
// input. The input is a script: each step feeds a message (raw bytes, or a
// well-formed AUTH_HELLO / AUTH_PROOF so the deeper states are reached), a
// signing or verification result, or a tick. Properties:
//  - decodeAuth of any bytes is canonical: what decodes re-encodes to itself;
//  - every message LinkAuth sends decodes as AUTH_HELLO (first) or AUTH_PROOF;
//  - it asks to sign at most once and to verify at most once;
//  - proven only after a successful signature and a verification that passed,
//    and never after failing; a failed link asks for nothing more;
//  - it keeps at most one early message, of at most 2048 bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "node/link_auth.hpp"
#include "script_reader.hpp"
#include "wire/auth.hpp"

using namespace p2pcdn;

using fuzzing::Reader;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    ByteView in(data, size);
    if (auto m = wire::decodeAuth(in)) {
      const Bytes again = std::visit([](const auto& x) { return wire::encode(x); }, *m);
      check(again == Bytes(in.begin(), in.end()));
    }
  }
  Reader r{data, size};
  wire::PublicKey self{}, peer{};
  self[0] = 1;
  peer[0] = 2;
  const auto expected = wire::peerIdOf(peer);
  const std::string fp = "sha-256 " + std::string(64, 'a');
  node::LinkAuth auth(self, wire::Nonce{}, fp, fp, expected, swarm::Time{} + std::chrono::seconds(10));
  int signs = 0, verifies = 0, sends = 0;
  bool signedOk = false, verifiedOk = false, failed = false, proven = false;
  auto apply = [&](const node::LinkAuth::Step& s) {
    if (failed) check(!s.send && !s.sign && !s.verify && !s.proven);
    if (s.send) {
      auto m = wire::decodeAuth(*s.send);
      check(m.has_value());
      check(sends == 0 ? std::holds_alternative<wire::AuthHello>(*m) : std::holds_alternative<wire::AuthProof>(*m));
      ++sends;
    }
    signs += s.sign ? 1 : 0;
    verifies += s.verify ? 1 : 0;
    check(signs <= 1 && verifies <= 1);
    if (s.failed) failed = true;
    if (s.proven) {
      check(!failed && signedOk && verifiedOk);
      proven = true;
    }
    check(auth.proven() == proven && auth.failed() == failed);
  };
  apply(auth.start());
  std::int64_t clock = 0;
  for (int step = 0; step < 64 && !r.empty(); ++step) {
    const std::uint8_t op = r.u8();
    switch (op % 7) {
      case 0: apply(auth.onMessage(r.bytes(r.u8() * 16u + r.u8()))); break;
      case 1: apply(auth.onMessage(wire::encode(wire::AuthHello{(op & 8) ? peer : self, wire::Nonce{r.u8()}}))); break;
      case 2: apply(auth.onMessage(wire::encode(wire::AuthProof{wire::Signature{r.u8()}}))); break;
      case 3: {
        const bool ok = (op & 8) != 0;
        const bool wasSigning = signs == 1 && !signedOk;
        auto s = auth.onSigned(ok ? std::optional(wire::Signature{}) : std::nullopt);
        if (ok && wasSigning && !failed) signedOk = true;
        apply(s);
        break;
      }
      case 4: {
        const bool ok = (op & 8) != 0;
        const bool wasVerifying = verifies == 1 && !verifiedOk;
        auto s = auth.onVerified(ok);
        if (ok && wasVerifying && !failed) verifiedOk = true;
        apply(s);
        break;
      }
      case 5: clock += r.u8() * 100; apply(auth.tick(swarm::Time{} + std::chrono::milliseconds(clock))); break;
      case 6: {
        auto e = auth.takeEarly();
        if (e) check(e->size() <= 2048);
        break;
      }
    }
  }
  return 0;
}
