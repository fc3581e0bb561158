// A process-wide cache of decoded index blocks, shared by every IndexReader
// and bounded in bytes (LevelDB's block cache): random reads decode a block
// once while it stays cached instead of once per read. Least recently used
// blocks go first. Thread-safe: 16 shards, a mutex each.
#ifndef SHARDSET_INDEX_BLOCK_CACHE_H_
#define SHARDSET_INDEX_BLOCK_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "index/index.h"

namespace shardset::index {

using DecodedBlock = std::vector<Entry>;

class BlockCache {
 public:
  // The default capacity; SHARDSET_INDEX_CACHE (bytes, "64MiB" etc.) sets
  // another, 0 turns the cache off.
  static constexpr size_t kDefaultCapacity = size_t{64} << 20;
  static BlockCache& Global();

  explicit BlockCache(size_t capacity);
  std::shared_ptr<const DecodedBlock> Lookup(uint64_t reader_id, uint32_t block);
  // Keeps `value` (charged at its decoded size) unless it alone is larger
  // than a shard of the cache.
  void Insert(uint64_t reader_id, uint32_t block, std::shared_ptr<const DecodedBlock> value);
  size_t capacity() const { return capacity_; }
  size_t usage() const;

  // Approximate heap bytes of a decoded block.
  static size_t Charge(const DecodedBlock& b);

 private:
  static constexpr int kShards = 16;
  struct Node {
    uint64_t key;
    std::shared_ptr<const DecodedBlock> value;
    size_t charge;
  };
  struct Shard {
    std::mutex mu;
    std::list<Node> lru;  // most recently used first
    std::unordered_map<uint64_t, std::list<Node>::iterator> map;
    size_t usage = 0;
  };
  static uint64_t Key(uint64_t reader_id, uint32_t block) {
    return reader_id << 32 | block;
  }
  Shard& ShardOf(uint64_t key) { return shards_[(key * 0x9E3779B97F4A7C15ull) >> 60]; }

  size_t capacity_;
  Shard shards_[kShards];
};

}  // namespace shardset::index

#endif  // SHARDSET_INDEX_BLOCK_CACHE_H_
