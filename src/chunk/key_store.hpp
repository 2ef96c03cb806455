// The keys of encrypted files, kept next to a store as the CLI and the library
// both lay them out: <home>/keys/<file id>.key, one line of 64 hex digits; and
// the node's identity key, <home>/keys/identity.key.
// The folder is 0700 and every key file 0600 from the moment it exists,
// whatever the umask. Native only (POSIX files).
#pragma once

#include <filesystem>
#include <functional>

#include "p2pcdn/result.hpp"
#include "p2pcdn/types.hpp"

namespace p2pcdn {

std::filesystem::path keyFilePath(const std::filesystem::path& home, const FileId& id);

// Saves the key of file `id`. The key is written and fsynced under a temporary
// name created with O_CREAT|O_EXCL and mode 0600, then hard-linked to its own
// name, which fails if that exists: a key file is complete or absent (a crash
// leaves at most a hidden temporary file), and an existing one is never
// replaced or truncated. If it already holds this key, that is success;
// anything else there is kInvalidArgument, the old file untouched.
Status writeKeyFile(const std::filesystem::path& home, const FileId& id, const EncryptionKey& key);

// The key of file `id`: kNotFound without a key file, kMalformed if it holds
// anything but 64 hex digits (surrounding whitespace allowed), kIo otherwise.
Result<EncryptionKey> readKeyFile(const std::filesystem::path& home, const FileId& id);

// The node's identity (docs/protocol.md "Peer identity"): the Ed25519 seed in
// <home>/keys/identity.key, written like a key file. Made with `generate` the
// first time; when two processes race, both end up with the one written first.
std::filesystem::path identityKeyPath(const std::filesystem::path& home);
Result<EncryptionKey> loadOrCreateIdentitySeed(const std::filesystem::path& home,
                                               const std::function<Result<EncryptionKey>()>& generate);

}  // namespace p2pcdn
