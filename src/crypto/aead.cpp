#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <memory>

#include "core/chunk_aead.hpp"
#include "crypto/crypto.hpp"

namespace p2pcdn::crypto {
namespace {

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

Result<Bytes> run(bool encrypt, const Key& key, const EncryptionInfo& info, ChunkIndex index, ByteView in) {
  const char* op = encrypt ? "encrypt chunk" : "decrypt chunk";
  if (info.algorithm != EncryptionAlgorithm::kAes256Gcm) return fail(Errc::kUnsupported, op, "algorithm");
  if (!encrypt && in.size() < kAeadTagSize) return fail(Errc::kIntegrity, op, "shorter than the tag");
  std::size_t plainLen = encrypt ? in.size() : in.size() - kAeadTagSize;
  if (plainLen > kMaxChunkSize) return fail(Errc::kTooLarge, op, "chunk larger than 16 MiB");

  CtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return fail(Errc::kCrypto, op, "EVP_CIPHER_CTX_new");
  Key k = chunkFileKey(key, info);
  auto nonce = chunkNonce(info, index);
  Bytes aad = chunkAad(info, index, static_cast<std::uint32_t>(plainLen));
  int ok = encrypt ? EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, k.data(), nonce.data())
                   : EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, k.data(), nonce.data());
  if (ok != 1) return fail(Errc::kCrypto, op, "init");
  int n = 0;
  ok = encrypt ? EVP_EncryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size()))
               : EVP_DecryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size()));
  if (ok != 1) return fail(Errc::kCrypto, op, "aad");

  Bytes out(encrypt ? plainLen + kAeadTagSize : plainLen);
  int len = static_cast<int>(plainLen);
  if (plainLen > 0) {
    ok = encrypt ? EVP_EncryptUpdate(ctx.get(), out.data(), &n, in.data(), len)
                 : EVP_DecryptUpdate(ctx.get(), out.data(), &n, in.data(), len);
    if (ok != 1) return fail(Errc::kCrypto, op, "update");
  }
  if (encrypt) {
    int fin = 0;
    if (EVP_EncryptFinal_ex(ctx.get(), out.data() + plainLen, &fin) != 1) return fail(Errc::kCrypto, op, "final");
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAeadTagSize),
                            out.data() + plainLen) != 1) {
      return fail(Errc::kCrypto, op, "get tag");
    }
  } else {
    Bytes tag(in.end() - static_cast<std::ptrdiff_t>(kAeadTagSize), in.end());
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAeadTagSize), tag.data()) != 1) {
      return fail(Errc::kCrypto, op, "set tag");
    }
    std::uint8_t scratch[16];
    int fin = 0;
    if (EVP_DecryptFinal_ex(ctx.get(), scratch, &fin) != 1) {
      return fail(Errc::kIntegrity, op,
                  "chunk " + std::to_string(index) + " failed authentication (wrong key, file or index)");
    }
  }
  return out;
}

}  // namespace

Result<Bytes> encryptChunk(const Key& key, const EncryptionInfo& info, ChunkIndex index, ByteView plain) {
  return run(true, key, info, index, plain);
}

Result<Bytes> decryptChunk(const Key& key, const EncryptionInfo& info, ChunkIndex index, ByteView sealed) {
  return run(false, key, info, index, sealed);
}

}  // namespace p2pcdn::crypto
