/* Under emscripten, BLAKE3's 4-way slot (the one its dispatcher gives NEON:
 * BLAKE3_USE_NEON=1 sets MAX_SIMD_DEGREE to 4) runs BLAKE3's own SSE4.1 code,
 * which emscripten compiles to WebAssembly SIMD (-msimd128 -msse4.1,
 * cmake/Blake3.cmake). The portable code it replaces hashed ~5x slower in the
 * page, and every chunk is hashed twice there (verified on arrival and on read). */
#include "blake3_impl.h"

void blake3_hash_many_sse41(const uint8_t *const *inputs, size_t num_inputs, size_t blocks, const uint32_t key[8],
                            uint64_t counter, bool increment_counter, uint8_t flags, uint8_t flags_start,
                            uint8_t flags_end, uint8_t *out);

void blake3_hash_many_neon(const uint8_t *const *inputs, size_t num_inputs, size_t blocks, const uint32_t key[8],
                           uint64_t counter, bool increment_counter, uint8_t flags, uint8_t flags_start,
                           uint8_t flags_end, uint8_t *out) {
  blake3_hash_many_sse41(inputs, num_inputs, blocks, key, counter, increment_counter, flags, flags_start, flags_end,
                         out);
}
