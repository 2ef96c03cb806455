// Bookkeeping shared by the backends for imports: the hash and length of every
// staged chunk, checked against the manifest at commit.
#pragma once

#include <map>

#include "core/blake3.hpp"
#include "p2pcdn/manifest.hpp"

namespace p2pcdn {

struct StagedChunks {
  std::map<ChunkIndex, std::pair<Hash, std::size_t>> chunks;

  void add(ChunkIndex i, ByteView data) { chunks[i] = {Blake3::hash(data), data.size()}; }

  Status matches(const Manifest& m) const {
    const char* op = "commit import";
    P2PCDN_TRY(validateManifest(m));
    if (chunks.size() != m.chunkCount()) {
      return fail(Errc::kInvalidArgument, op,
                  std::to_string(chunks.size()) + " chunks staged, the manifest has " +
                      std::to_string(m.chunkCount()));
    }
    for (const auto& [i, hl] : chunks) {
      if (i >= m.chunkCount() || hl.first != m.chunkHashes[i] || hl.second != m.storedChunkLength(i)) {
        return fail(Errc::kIntegrity, op, "staged chunk " + std::to_string(i) + " does not match the manifest");
      }
    }
    return {};
  }
};

}  // namespace p2pcdn
