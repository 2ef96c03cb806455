#include "node/openssl_identity.hpp"

namespace p2pcdn::node {
namespace {

class OpensslIdentity : public Identity {
 public:
  explicit OpensslIdentity(crypto::Ed25519Key key) : key_(std::move(key)) {}
  const wire::PublicKey& publicKey() const override { return key_.publicKey(); }
  wire::Nonce freshNonce() override {
    wire::Nonce n{};
    if (!crypto::randomBytes(n)) std::abort();  // no randomness: nothing here is safe
    return n;
  }
  void sign(Bytes message, std::function<void(std::optional<wire::Signature>)> done) override {
    auto sig = key_.sign(message);
    done(sig ? std::optional<wire::Signature>(*sig) : std::nullopt);
  }
  void verify(const wire::PublicKey& key, Bytes message, const wire::Signature& signature,
              std::function<void(bool)> done) override {
    done(crypto::ed25519Verify(key, message, signature));
  }

 private:
  crypto::Ed25519Key key_;
};

}  // namespace

Result<std::shared_ptr<Identity>> opensslIdentity(const crypto::Ed25519Seed& seed) {
  auto key = crypto::Ed25519Key::fromSeed(seed);
  if (!key) return fail(key.error());
  return std::shared_ptr<Identity>(std::make_shared<OpensslIdentity>(std::move(*key)));
}

Result<std::shared_ptr<Identity>> ephemeralOpensslIdentity() {
  auto key = crypto::Ed25519Key::generate();
  if (!key) return fail(key.error());
  return std::shared_ptr<Identity>(std::make_shared<OpensslIdentity>(std::move(*key)));
}

}  // namespace p2pcdn::node
