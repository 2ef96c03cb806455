// Faults for tests, compiled into the test twin p2pcdn-test only (never into
// p2pcdn): tests/integration runs it as a corrupting peer.
#pragma once

#include <memory>

#include "p2pcdn/chunk_storage.hpp"

namespace p2pcdn::cli {

// A store whose chunk reads return the chunk with one byte flipped (after
// the inner store verified it), so every chunk served fails the receiver's
// BLAKE3 check. `inner` must outlive it.
std::unique_ptr<ChunkStorage> makeCorruptingReads(ChunkStorage& inner);

}  // namespace p2pcdn::cli
