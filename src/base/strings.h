// Small string helpers shared by the library and the CLI.
#ifndef SHARDSET_BASE_STRINGS_H_
#define SHARDSET_BASE_STRINGS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "shardset/status.h"

namespace shardset {

// Printable form of a key or path for messages and `ls`: bytes outside
// printable ASCII/UTF-8 become C escapes (\n, \t, \\, \xNN), like `ls -b`.
std::string EscapeForDisplay(std::string_view s);
bool IsValidUtf8(std::string_view s);
// "256MiB", "1GB", "4096", "1.5GiB" -> bytes. Binary (KiB, MiB, GiB, TiB) and
// decimal (KB, MB, GB, TB) units; a bare number is bytes.
Result<uint64_t> ParseSize(std::string_view text);
// 1536 -> "1.5 KiB".
std::string FormatBytes(uint64_t bytes);

}  // namespace shardset

#endif  // SHARDSET_BASE_STRINGS_H_
