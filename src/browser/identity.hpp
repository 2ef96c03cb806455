// The browser's node::Identity: an Ed25519 key in WebCrypto, held by the page
// (web/src/identity.js: made non-extractable, so not even the page's own
// scripts can read its private half). Signing and verifying are WebCrypto
// promises: p2p_js_sign / p2p_js_verify start them, p2p_identity_done ends
// them, and the callback runs on the loop (posted). One per peer handle.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>

#include "node/identity.hpp"

namespace p2pcdn::browser {

class JsIdentity final : public node::Identity {
 public:
  JsIdentity(int peerHandle, const wire::PublicKey& key);
  ~JsIdentity() override;
  const wire::PublicKey& publicKey() const override { return key_; }
  wire::Nonce freshNonce() override;  // crypto.getRandomValues
  void sign(Bytes message, std::function<void(std::optional<wire::Signature>)> done) override;
  void verify(const wire::PublicKey& key, Bytes message, const wire::Signature& signature,
              std::function<void(bool)> done) override;
  // From p2p_identity_done (on the loop): request `req` ended; `sig` holds a
  // signature's 64 bytes, or is empty (a verification, or a failure).
  void finish(double req, bool ok, ByteView sig);
  static JsIdentity* byHandle(int peerHandle);

 private:
  // A request still out; WebCrypto answers each once. Bounded by the links'
  // own limits (two per link being proven).
  struct Pending {
    std::function<void(std::optional<wire::Signature>)> signed_;
    std::function<void(bool)> verified;
  };
  const int h_;
  wire::PublicKey key_;
  double nextReq_ = 1;
  std::map<double, Pending> pending_;
};

}  // namespace p2pcdn::browser
