// Checks on untrusted text shared by the decoders.
#pragma once

#include <string_view>

namespace p2pcdn {

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF) without
// C0/C1 control characters or DEL. The empty string passes.
bool isCleanUtf8(std::string_view s);

// True if JSON text nests arrays/objects at most `limit` deep (brackets inside
// strings do not count). nlohmann's parser recurses per level, so decoders
// refuse deep nesting before parsing.
bool jsonNestingWithin(std::string_view s, int limit);

}  // namespace p2pcdn
