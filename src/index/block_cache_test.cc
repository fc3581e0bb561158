// BlockCache: hits, least-recently-used eviction within the byte bound, and
// concurrent readers sharing one cache.
#include "index/block_cache.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace shardset::index {
namespace {

std::shared_ptr<const DecodedBlock> Block(int n, int tag) {
  auto b = std::make_shared<DecodedBlock>(n);
  for (int i = 0; i < n; ++i) (*b)[i].checksum = tag * 1000 + i;
  return b;
}

TEST(BlockCacheTest, HitsMissesAndEviction) {
  const size_t one = BlockCache::Charge(*Block(64, 0));
  // Room for about 4 blocks per shard; blocks of reader 1 spread over shards.
  BlockCache cache(16 * 4 * one + 16);
  EXPECT_EQ(cache.Lookup(1, 0), nullptr);
  cache.Insert(1, 0, Block(64, 7));
  auto hit = cache.Lookup(1, 0);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ((*hit)[3].checksum, 7003u);
  EXPECT_EQ(cache.Lookup(2, 0), nullptr);  // another reader
  for (uint32_t b = 1; b < 2000; ++b) cache.Insert(1, b, Block(64, b));
  EXPECT_LE(cache.usage(), cache.capacity());
  EXPECT_EQ(cache.Lookup(1, 0), nullptr);  // evicted long ago
  EXPECT_NE(cache.Lookup(1, 1999), nullptr);  // just inserted
  EXPECT_NE(hit, nullptr);                    // a handle outlives eviction
  EXPECT_EQ((*hit)[0].checksum, 7000u);
}

TEST(BlockCacheTest, OffAndOversize) {
  BlockCache off(0);
  off.Insert(1, 0, Block(4, 1));
  EXPECT_EQ(off.Lookup(1, 0), nullptr);
  BlockCache tiny(16 * 100);
  tiny.Insert(1, 0, Block(1000, 1));  // larger than a shard: not kept
  EXPECT_EQ(tiny.Lookup(1, 0), nullptr);
  EXPECT_EQ(tiny.usage(), 0u);
}

TEST(BlockCacheTest, ConcurrentUse) {
  BlockCache cache(size_t{8} << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (uint32_t i = 0; i < 5000; ++i) {
        const uint32_t b = (i * 7 + t) % 300;
        auto v = cache.Lookup(9, b);
        if (!v) {
          cache.Insert(9, b, Block(16, b));
        } else {
          ASSERT_EQ((*v)[1].checksum, b * 1000 + 1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(cache.usage(), cache.capacity());
}

}  // namespace
}  // namespace shardset::index
