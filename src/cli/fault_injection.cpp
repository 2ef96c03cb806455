#include "cli/fault_injection.hpp"

#include "storage/forwarding.hpp"

namespace p2pcdn::cli {
namespace {

class CorruptingReads final : public storage::ForwardingStorage {
 public:
  using ForwardingStorage::ForwardingStorage;
  void getChunk(const FileId& id, ChunkIndex i, ReadOptions o, Callback<Bytes> done) override {
    inner().getChunk(id, i, o, [done = std::move(done)](Result<Bytes> r) {
      if (r && !r->empty()) (*r)[r->size() / 2] ^= 0x5a;
      done(std::move(r));
    });
  }
};

}  // namespace

std::unique_ptr<ChunkStorage> makeCorruptingReads(ChunkStorage& inner) { return std::make_unique<CorruptingReads>(inner); }

}  // namespace p2pcdn::cli
