#include "browser/identity.hpp"

#include <algorithm>

#include "browser/js.hpp"

namespace p2pcdn::browser {
namespace {
std::map<int, JsIdentity*>& registry() {
  static std::map<int, JsIdentity*> r;
  return r;
}
}  // namespace

JsIdentity::JsIdentity(int peerHandle, const wire::PublicKey& key) : h_(peerHandle), key_(key) {
  registry()[h_] = this;
}

JsIdentity::~JsIdentity() {
  auto it = registry().find(h_);
  if (it != registry().end() && it->second == this) registry().erase(it);
}

JsIdentity* JsIdentity::byHandle(int peerHandle) {
  auto it = registry().find(peerHandle);
  return it == registry().end() ? nullptr : it->second;
}

wire::Nonce JsIdentity::freshNonce() {
  wire::Nonce n{};
  for (std::size_t i = 0; i < n.size(); i += 4) {
    const std::uint32_t r = p2p_js_random32();
    for (std::size_t k = 0; k < 4; ++k) n[i + k] = static_cast<std::uint8_t>(r >> (8 * k));
  }
  return n;
}

void JsIdentity::sign(Bytes message, std::function<void(std::optional<wire::Signature>)> done) {
  const double req = nextReq_++;
  pending_[req].signed_ = std::move(done);
  p2p_js_sign(h_, req, message.data(), message.size());
}

void JsIdentity::verify(const wire::PublicKey& key, Bytes message, const wire::Signature& signature,
                        std::function<void(bool)> done) {
  const double req = nextReq_++;
  pending_[req].verified = std::move(done);
  p2p_js_verify(h_, req, key.data(), message.data(), message.size(), signature.data());
}

void JsIdentity::finish(double req, bool ok, ByteView sig) {
  auto it = pending_.find(req);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (p.signed_) {
    std::optional<wire::Signature> s;
    if (ok && sig.size() == wire::Signature{}.size()) {
      s.emplace();
      std::copy(sig.begin(), sig.end(), s->begin());
    }
    p.signed_(s);
  } else if (p.verified) {
    p.verified(ok);
  }
}

}  // namespace p2pcdn::browser
