// The index: sample ordinal -> key, field offsets and sizes, checksum.
//
// One encoding serves every shard format (docs/format.md "Index region"):
// native shards embed it after their data; tar (and later zip, tsv) shards
// keep it in a sidecar file. Samples are grouped in blocks of `block_samples`
// (64): a block is found in O(1) through a fixed-width directory, then decoded
// (at most 64 entries). Blocks are columnar and zstd-compressed when that
// pays, which keeps the per-sample cost near 8 bytes (docs/format.md
// "Rationale").
//
// IndexReader is immutable after Open and thread-safe; it borrows the bytes it
// was opened on (a memory map), which must outlive it.
#ifndef SHARDSET_INDEX_INDEX_H_
#define SHARDSET_INDEX_INDEX_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/status.h"

namespace shardset::index {

inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kDefaultBlockSamples = 64;
inline constexpr uint32_t kMaxBlockSamples = 1 << 16;
inline constexpr size_t kFooterSize = 56;
inline constexpr size_t kDirectoryEntrySize = 16;
inline constexpr std::string_view kFooterMagic{"\x89SHIDX\r\n", 8};
// Bounds that protect readers from hostile files (docs/format.md "Resource bounds").
inline constexpr uint32_t kMaxFields = 4096;
inline constexpr uint32_t kMaxKeyBytes = 64 * 1024;
inline constexpr uint64_t kMaxBlockBytes = 64ull << 20;
// What one decoded block may hold, whatever its payload's size: its keys'
// bytes (front coding lets 4 payload bytes repeat a 64 KiB key) at most
// kMaxBlockBytes in total, and at most kMaxBlockFieldEntries field entries
// (24 bytes each in memory). A 64-sample block written by shardset stays far
// below both (4 MiB of keys, 262,144 entries at the other limits' maximum).
inline constexpr uint64_t kMaxBlockFieldEntries = uint64_t{1} << 20;

enum IndexFlags : uint32_t {
  // Fields of consecutive samples are back to back: no gaps are stored.
  kContiguous = 1,
  // Keys strictly increase (bytewise) with the ordinal: Find is a binary search.
  kKeysSorted = 2,
  // Keys are not sorted, and a key table (docs/format.md "Key table") sits
  // just before the field table: Find is a binary search on key hashes.
  kKeyTable = 4,
};

// Bytes per key table entry: fixed32 key hash, fixed32 ordinal.
inline constexpr size_t kKeyTableEntrySize = 8;
// The key hash: low 32 bits of XXH3-64 of the key.
uint32_t KeyHash(std::string_view key);

enum BlockCodec : uint8_t { kRaw = 0, kZstd = 1 };

struct FieldDef {
  std::string name;
  uint8_t flags = 0;
};

struct FieldLoc {
  uint32_t field_id = 0;  // into the field table
  uint64_t offset = 0;    // absolute offset of the field's bytes in the data file
  uint64_t size = 0;
};

struct Entry {
  std::string key;
  std::vector<FieldLoc> fields;  // in increasing offset order
  uint32_t checksum = 0;         // low 32 bits of XXH3-64 over the fields' bytes in order
};

// The low 32 bits of XXH3-64: the per-sample checksum stored in the index.
uint32_t SampleChecksum(std::string_view bytes);

class IndexBuilder {
 public:
  // `contiguous`: each sample's first field starts where the previous sample's
  // last field ended (native shards). `compress`: zstd blocks when smaller.
  explicit IndexBuilder(bool contiguous, bool compress = true,
                        uint32_t block_samples = kDefaultBlockSamples);

  // The id of field `name`, adding it to the field table if new; kMaxFields
  // (nothing added) when the table is full.
  uint32_t FieldId(std::string_view name, uint8_t flags);
  // Appends one sample. Fields must be in increasing offset order and, when
  // contiguous, start where the previous sample ended.
  void Add(std::string_view key, const std::vector<FieldLoc>& fields, uint32_t checksum);
  uint64_t num_samples() const { return num_samples_; }
  // Bytes of index built so far (for shard size accounting).
  uint64_t size_estimate() const { return blocks_.size() + pending_estimate_; }
  const std::string& first_key() const { return first_key_; }
  const std::string& last_key() const { return last_key_; }
  bool keys_sorted() const { return keys_sorted_; }

  // Serializes blocks, field table, directory and footer. `index_offset` is
  // the absolute file offset the returned bytes will be written at.
  std::string Finish(uint64_t index_offset);

 private:
  void FlushBlock();

  bool contiguous_, compress_;
  uint32_t block_samples_;
  std::vector<FieldDef> fields_;
  std::string blocks_;      // encoded blocks, offsets relative to blocks_ start
  std::vector<std::pair<uint64_t, uint32_t>> directory_;  // (relative offset, stored len)
  std::vector<uint8_t> codecs_;
  std::vector<Entry> pending_;
  uint64_t pending_estimate_ = 0;
  uint64_t num_samples_ = 0;
  std::string first_key_, last_key_;
  bool keys_sorted_ = true;
  // (key hash << 32 | ordinal) of every sample, for the key table; dropped
  // if the keys turn out sorted. 8 bytes per sample of the shard.
  std::vector<uint64_t> key_hashes_;
};

class IndexReader {
 public:
  // Opens the index whose footer ends `file`. Field offsets must lie below
  // `data_limit` (the data file's size, or the native index's own start).
  // `name` is used in error messages (the shard or sidecar path).
  static Result<IndexReader> Open(std::string_view file, uint64_t data_limit, std::string name);
  IndexReader() = default;

  uint64_t num_samples() const { return num_samples_; }
  uint32_t flags() const { return flags_; }
  bool keys_sorted() const { return flags_ & kKeysSorted; }
  uint64_t index_offset() const { return index_offset_; }
  uint32_t num_blocks() const { return num_blocks_; }
  uint32_t block_samples() const { return block_samples_; }
  const std::vector<FieldDef>& fields() const { return fields_; }

  // The entry of sample `ordinal`. Corruption names the block. Decoded
  // blocks are kept in the process-wide BlockCache (block_cache.h) and the
  // last one per thread, so a scan decodes each block once and random reads
  // decode each block once while it stays cached. *out is valid until the
  // next Get on this thread.
  Status Get(uint64_t ordinal, const Entry** out) const;
  // The same, copied.
  Status Get(uint64_t ordinal, Entry* out) const;
  // Decodes all entries of block `block`.
  Status GetBlock(uint32_t block, std::vector<Entry>* out) const;
  // Ordinal of `key`, or NotFound.
  Result<uint64_t> Find(std::string_view key) const;
  // For verify: the key table's checksum, and that every entry names an
  // existing sample whose key has the entry's hash. OK when there is none.
  Status VerifyKeyTable() const;

 private:
  Status DecodeBlock(uint32_t block, std::vector<Entry>* out) const;
  Status CheckKeyTable() const;

  std::string_view file_;
  std::string name_;
  uint64_t id_ = 0;  // distinguishes readers in the block cache (never reused)
  uint64_t data_limit_ = 0;
  uint64_t index_offset_ = 0, meta_offset_ = 0, directory_offset_ = 0, num_samples_ = 0;
  uint32_t num_blocks_ = 0, block_samples_ = 0, flags_ = 0;
  uint64_t key_table_offset_ = 0;
  std::vector<FieldDef> fields_;
  // The key table's checksum is checked on the first Find, not at Open, so
  // opening stays independent of the shard's size. Shared by copies.
  struct KeyTableCheck {
    std::once_flag once;
    Status status;
  };
  std::shared_ptr<KeyTableCheck> key_table_check_;
};

}  // namespace shardset::index

#endif  // SHARDSET_INDEX_INDEX_H_
