#include "base/hash.h"

#include <fmt/format.h>

namespace shardset {

std::string Hex64(uint64_t v) { return fmt::format("{:016x}", v); }

}  // namespace shardset
