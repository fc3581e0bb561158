// Part of a remote object, fetched by ranged GETs as readers need it
// (docs/remote.md "Random access"): the object's bytes live in a sparse
// cache file of its full size, PATH.part, and which 64 KiB blocks of it are
// there in PATH.blocks (a byte per block). Readers memory-map PATH.part and
// call Ensure before touching a range; a miss in a range that starts where
// the previous one ended doubles the read-ahead (up to the client's chunk
// size), so a
// sequential reader streams in large requests while a random one fetches a
// block or two per sample.
//
// Processes sharing the cache take turns fetching through an flock on
// PATH.part.lock; bytes are written before their block is marked, so a
// reader never uses a block that is not all there. Blocks are not checked
// by themselves: the formats' per-sample checksums are, and Invalidate
// drops a range that failed them so it is fetched again.
#ifndef SHARDSET_REMOTE_RANGED_H_
#define SHARDSET_REMOTE_RANGED_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "remote/cache.h"
#include "remote/client.h"
#include "shardset/shard.h"
#include "shardset/status.h"

namespace shardset::remote {

class RangedFile {
 public:
  static constexpr uint64_t kBlockBytes = 64 << 10;

  // `url`'s object of `size` bytes, kept at cache->PathOf(url) + ".part".
  static Result<std::unique_ptr<RangedFile>> Open(Client* client, Cache* cache,
                                                  const std::string& url, uint64_t size);
  ~RangedFile();
  RangedFile(const RangedFile&) = delete;
  RangedFile& operator=(const RangedFile&) = delete;

  // The sparse file readers map.
  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }

  // Bytes [offset, offset + length) are in path() when this returns OK.
  Status Ensure(uint64_t offset, uint64_t length);
  // Every byte, by parallel ranged GETs of the client's chunk size.
  Status EnsureAll();
  // Forgets the blocks of [offset, offset + length): fetched again on the
  // next Ensure (after a checksum failed on them).
  Status Invalidate(uint64_t offset, uint64_t length);
  // Bytes this object fetched from the network.
  uint64_t fetched_bytes() const;

 private:
  RangedFile() = default;
  // Reloads the map from disk (another process may have fetched blocks);
  // under mu_ and the file lock.
  Status LoadMap();
  Status Fetch(uint64_t first_block, uint64_t end_block);
  // Blocks [b, e) by one ranged GET, written and then marked; returns the
  // bytes fetched. Calls on disjoint blocks may run at once (EnsureAll).
  Result<uint64_t> FetchBlocks(uint64_t b, uint64_t e);

  Client* client_ = nullptr;
  Cache* cache_ = nullptr;
  std::string url_, path_, map_path_, lock_path_;
  uint64_t size_ = 0, blocks_ = 0;
  int fd_ = -1, map_fd_ = -1;
  mutable std::mutex mu_;
  std::vector<uint8_t> have_;  // a byte per block, as in the map file
  uint64_t last_end_ = 0;      // the block after the last Ensure's range
  uint64_t window_ = 1;        // read-ahead, in blocks
  uint64_t fetched_ = 0, since_evict_ = 0;
};

// A remote shard opened for random access through a RangedFile: its index
// is fetched at open, each sample's byte range before it is read (again,
// once, if it fails its checksum), everything before Verify. Native shards
// only; NotSupported for other formats (the caller fetches them whole).
Result<std::unique_ptr<ShardReader>> OpenRanged(Client* client, Cache* cache,
                                                const std::string& url, ShardFormat format,
                                                uint64_t size, const ReadOptions& options);

}  // namespace shardset::remote

#endif  // SHARDSET_REMOTE_RANGED_H_
