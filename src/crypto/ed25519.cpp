// Ed25519 (RFC 8032) through OpenSSL 3's EVP one-shot interface.
#include <openssl/evp.h>

#include <memory>

#include "crypto/crypto.hpp"

namespace p2pcdn::crypto {
namespace {
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
}  // namespace

struct Ed25519Key::Impl {
  Pkey key;
  Ed25519PublicKey pub{};
};

Ed25519Key::Ed25519Key(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ed25519Key::Ed25519Key(Ed25519Key&&) noexcept = default;
Ed25519Key& Ed25519Key::operator=(Ed25519Key&&) noexcept = default;
Ed25519Key::~Ed25519Key() = default;

Result<Ed25519Key> Ed25519Key::fromSeed(const Ed25519Seed& seed) {
  auto impl = std::make_unique<Impl>();
  impl->key.reset(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  std::size_t len = impl->pub.size();
  if (!impl->key || EVP_PKEY_get_raw_public_key(impl->key.get(), impl->pub.data(), &len) != 1 ||
      len != impl->pub.size()) {
    return fail(Errc::kCrypto, "ed25519 key", "OpenSSL refused the private key");
  }
  return Ed25519Key(std::move(impl));
}

Result<Ed25519Key> Ed25519Key::generate(Ed25519Seed* seedOut) {
  Ed25519Seed seed{};
  P2PCDN_TRY(randomBytes(seed));
  if (seedOut) *seedOut = seed;
  return fromSeed(seed);
}

const Ed25519PublicKey& Ed25519Key::publicKey() const { return impl_->pub; }

Result<Ed25519Signature> Ed25519Key::sign(ByteView message) const {
  MdCtx ctx(EVP_MD_CTX_new());
  Ed25519Signature sig{};
  std::size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1 || len != sig.size()) {
    return fail(Errc::kCrypto, "ed25519 sign", "OpenSSL failed");
  }
  return sig;
}

bool ed25519Verify(const Ed25519PublicKey& key, ByteView message, const Ed25519Signature& signature) {
  Pkey pk(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size()));
  MdCtx ctx(EVP_MD_CTX_new());
  return pk && ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pk.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(), message.size()) == 1;
}

}  // namespace p2pcdn::crypto
