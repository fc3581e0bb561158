#include "index/block_cache.h"

#include <cstdlib>

#include "base/strings.h"

namespace shardset::index {

BlockCache& BlockCache::Global() {
  static BlockCache* cache = [] {
    size_t capacity = kDefaultCapacity;
    if (const char* env = std::getenv("SHARDSET_INDEX_CACHE")) {
      auto parsed = ParseSize(env);
      if (parsed.ok()) capacity = static_cast<size_t>(*parsed);
    }
    return new BlockCache(capacity);  // lives as long as the process
  }();
  return *cache;
}

BlockCache::BlockCache(size_t capacity) : capacity_(capacity) {}

size_t BlockCache::Charge(const DecodedBlock& b) {
  size_t n = sizeof(DecodedBlock) + b.capacity() * sizeof(Entry);
  for (const Entry& e : b) {
    if (e.key.capacity() > 15) n += e.key.capacity() + 1;  // beyond the inline buffer
    n += e.fields.capacity() * sizeof(FieldLoc) + 16;      // + the allocator's header
  }
  return n;
}

std::shared_ptr<const DecodedBlock> BlockCache::Lookup(uint64_t reader_id, uint32_t block) {
  if (capacity_ == 0) return nullptr;
  const uint64_t key = Key(reader_id, block);
  Shard& s = ShardOf(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return nullptr;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->value;
}

void BlockCache::Insert(uint64_t reader_id, uint32_t block,
                        std::shared_ptr<const DecodedBlock> value) {
  const size_t per_shard = capacity_ / kShards;
  const size_t charge = Charge(*value);
  if (charge > per_shard) return;
  const uint64_t key = Key(reader_id, block);
  Shard& s = ShardOf(key);
  std::lock_guard<std::mutex> lock(s.mu);
  if (auto it = s.map.find(key); it != s.map.end()) {
    s.usage -= it->second->charge;
    s.lru.erase(it->second);
    s.map.erase(it);
  }
  s.lru.push_front(Node{key, std::move(value), charge});
  s.map[key] = s.lru.begin();
  s.usage += charge;
  while (s.usage > per_shard) {
    Node& last = s.lru.back();
    s.usage -= last.charge;
    s.map.erase(last.key);
    s.lru.pop_back();
  }
}

size_t BlockCache::usage() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(s.mu));
    n += s.usage;
  }
  return n;
}

}  // namespace shardset::index
