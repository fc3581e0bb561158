// The entry table of a view file (docs/formats/view.md "Blocks"): entries in
// blocks of kBlockEntries, each block a run (no payload) or two bit-packed
// arrays (sources, ordinals) relative to per-block bases. A fixed-width
// directory makes entry(pos) O(1) without decoding anything else.
#ifndef SHARDSET_VIEW_VIEW_TABLE_H_
#define SHARDSET_VIEW_VIEW_TABLE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/coding.h"
#include "shardset/view.h"

namespace shardset::view {

inline constexpr std::string_view kMagic{"\x89SHVIEW\n", 8};
inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kFooterSize = 64;
inline constexpr size_t kDirectoryEntrySize = 32;
inline constexpr uint32_t kBlockShift = 12;
inline constexpr uint64_t kBlockEntries = uint64_t{1} << kBlockShift;

enum BlockKind : uint8_t {
  // ordinal = base_ordinal + i, source = base_source: costs no payload.
  kRun = 0,
  // source = base_source + S[i], ordinal = base_ordinal + O[i], with S and O
  // bit-packed at src_bits and ord_bits bits per value.
  kPacked = 1,
};

struct BlockInfo {
  uint64_t offset = 0;  // absolute file offset of the payload
  uint64_t base_ordinal = 0;
  uint32_t base_source = 0;
  uint8_t kind = kRun;
  uint8_t src_bits = 0;
  uint8_t ord_bits = 0;
};

inline void EncodeBlockInfo(const BlockInfo& b, std::string* out) {
  PutFixed64(out, b.offset);
  PutFixed64(out, b.base_ordinal);
  PutFixed32(out, b.base_source);
  out->push_back(static_cast<char>(b.kind));
  out->push_back(static_cast<char>(b.src_bits));
  out->push_back(static_cast<char>(b.ord_bits));
  out->push_back(0);
  PutFixed64(out, 0);  // reserved
}

inline BlockInfo DecodeBlockInfo(const char* p) {
  BlockInfo b;
  b.offset = DecodeFixed64(p);
  b.base_ordinal = DecodeFixed64(p + 8);
  b.base_source = DecodeFixed32(p + 16);
  b.kind = static_cast<uint8_t>(p[20]);
  b.src_bits = static_cast<uint8_t>(p[21]);
  b.ord_bits = static_cast<uint8_t>(p[22]);
  return b;
}

// Bytes of one bit-packed array of `n` values of `bits` bits, padded to 8.
inline uint64_t PackedBytes(uint64_t n, unsigned bits) { return (n * bits + 63) / 64 * 8; }

// Value `i` of a bit-packed array at `p`: bit k of the stream is bit k%8 of
// byte k/8. Reads 16 bytes from the value's first byte, so callers guarantee
// 16 readable bytes past any value (the directory and footer follow the
// payload in a view file).
inline uint64_t GetPacked(const char* p, uint64_t i, unsigned bits) {
  if (bits == 0) return 0;
  const uint64_t bit = i * bits;
  unsigned __int128 v;
  std::memcpy(&v, p + bit / 8, sizeof(v));  // little-endian hosts only (checked in view.cc)
  v >>= (bit % 8);
  const uint64_t mask = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  return static_cast<uint64_t>(v) & mask;
}

// Appends `values` bit-packed at `bits` bits each, padded to 8 bytes.
inline void PutPacked(const std::vector<uint64_t>& values, unsigned bits, std::string* out) {
  const size_t start = out->size();
  out->resize(start + PackedBytes(values.size(), bits), '\0');
  if (bits == 0) return;
  auto* dst = reinterpret_cast<unsigned char*>(out->data() + start);
  uint64_t bit = 0;
  for (uint64_t v : values) {
    for (unsigned done = 0; done < bits;) {
      const unsigned at = bit % 8;
      const unsigned take = std::min(8 - at, bits - done);
      dst[bit / 8] |= static_cast<unsigned char>(((v >> done) & ((1u << take) - 1)) << at);
      done += take;
      bit += take;
    }
  }
}

// Bits needed to hold `v` (0 for 0).
inline unsigned BitsFor(uint64_t v) { return v == 0 ? 0 : 64 - __builtin_clzll(v); }

}  // namespace shardset::view

#endif  // SHARDSET_VIEW_VIEW_TABLE_H_
