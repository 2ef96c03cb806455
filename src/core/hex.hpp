// Hex encoding of byte strings (lower case).
#pragma once

#include <string>
#include <string_view>

#include "p2pcdn/types.hpp"

namespace p2pcdn {

std::string toHex(ByteView bytes);
// Decodes exactly out.size() bytes from hex (either case); false on any bad character or length.
bool fromHex(std::string_view hex, std::span<std::uint8_t> out);

}  // namespace p2pcdn
