// The native shard format (docs/format.md): a 16-byte header, the samples'
// field bytes back to back, then the index region (src/index) and its footer.
#ifndef SHARDSET_FORMATS_NATIVE_NATIVE_SHARD_H_
#define SHARDSET_FORMATS_NATIVE_NATIVE_SHARD_H_

#include <memory>
#include <string>
#include <string_view>

#include "shardset/shard.h"

namespace shardset::native {

inline constexpr std::string_view kMagic{"\x89SHARD\r\n", 8};
inline constexpr uint32_t kVersion = 1;
inline constexpr size_t kHeaderSize = 16;

// True when `prefix` (the first bytes of a file) starts like a native shard.
bool LooksNative(std::string_view prefix);

Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options);
Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options);

}  // namespace shardset::native

#endif  // SHARDSET_FORMATS_NATIVE_NATIVE_SHARD_H_
