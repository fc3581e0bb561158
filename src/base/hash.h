// Checksums: XXH3-64 from xxHash (docs/format.md "Checksums").
#ifndef SHARDSET_BASE_HASH_H_
#define SHARDSET_BASE_HASH_H_

#include <cstdint>
#include <string>
#include <string_view>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace shardset {

inline uint64_t Xxh3(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

// Streaming XXH3-64 over pieces; equals Xxh3 of their concatenation.
class Xxh3Stream {
 public:
  Xxh3Stream() : state_(XXH3_createState()) { XXH3_64bits_reset(state_); }
  ~Xxh3Stream() { XXH3_freeState(state_); }
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void Update(std::string_view data) { XXH3_64bits_update(state_, data.data(), data.size()); }
  uint64_t Digest() const { return XXH3_64bits_digest(state_); }
  void Reset() { XXH3_64bits_reset(state_); }

 private:
  XXH3_state_t* state_;
};

// 16 lowercase hex digits.
std::string Hex64(uint64_t v);

}  // namespace shardset

#endif  // SHARDSET_BASE_HASH_H_
