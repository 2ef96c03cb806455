// A ChunkStorage that serialises every call on one mutex, so that a store may
// be used from several threads (the node reads and writes chunks on a worker
// thread while its loop, the gateway or the library's callers use the same
// store). Completions run inline, under the lock: they must not block on
// another thread that uses the store.
#pragma once

#include <memory>

#include "p2pcdn/chunk_storage.hpp"

namespace p2pcdn::storage {

std::unique_ptr<ChunkStorage> makeLocked(std::unique_ptr<ChunkStorage> inner);

}  // namespace p2pcdn::storage
