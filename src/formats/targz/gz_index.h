// Checkpoints of a gzip stream: places where inflate can start without
// decompressing what comes before them (docs/formats/targz-index.md
// "Checkpoints"). The approach of zlib's examples/zran.c: at the end of a
// deflate block, the compressed bit position and the 32 KiB of output before
// it (the most a back-reference can reach) are all inflate needs to go on.
//
// A CheckpointTable is built by a GzStream during one sequential pass
// (gz_stream.h) or loaded from a sidecar; it is immutable afterwards and safe
// to read from many threads.
#ifndef SHARDSET_FORMATS_TARGZ_GZ_INDEX_H_
#define SHARDSET_FORMATS_TARGZ_GZ_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/status.h"

namespace shardset::targz {

// Deflate's window: the farthest a back-reference reaches.
inline constexpr uint32_t kWindowSize = 32768;

// How a checkpoint's window is stored (docs/formats/targz-index.md "Windows").
enum WindowCodec : uint8_t { kWindowRaw = 0, kWindowZstd = 1 };

struct Checkpoint {
  uint64_t out = 0;  // offset in the uncompressed stream
  // Offset in the compressed file of the first byte inflate reads whole;
  // when bits > 0, the high `bits` bits of the byte before it come first.
  uint64_t in = 0;
  uint8_t bits = 0;  // 0..7
  uint8_t codec = kWindowRaw;
  // The bytes of output before `out` that back-references may reach: 32 KiB,
  // fewer near the start of a gzip member (history does not cross members).
  uint32_t window_size = 0;
  uint32_t window_hash = 0;    // low 32 bits of XXH3 of the window
  uint64_t window_offset = 0;  // of the stored window in the table's window bytes
  uint32_t window_stored = 0;  // its stored size
};

class CheckpointTable {
 public:
  // An empty table of the gzip file `gz_path`, to be filled by Add (the
  // windows are kept in memory).
  explicit CheckpointTable(std::string gz_path) : gz_path_(gz_path), name_(std::move(gz_path)) {}
  // A table loaded from sidecar `name`, whose windows live in `windows` (its
  // map, which must outlive the table); `points` were checked by the caller
  // (sorted by `out`, windows inside `windows`).
  CheckpointTable(std::string gz_path, std::string name, std::vector<Checkpoint> points,
                  std::string_view windows);
  CheckpointTable(CheckpointTable&&) = default;
  CheckpointTable& operator=(CheckpointTable&&) = default;

  // Appends a checkpoint at `out` (greater than the last one's), compressing
  // `window` (the window_size bytes of output before `out`).
  void Add(uint64_t out, uint64_t in, int bits, std::string_view window);

  const std::vector<Checkpoint>& points() const { return points_; }
  size_t size() const { return points_.size(); }
  bool empty() const { return points_.empty(); }
  // The last checkpoint at or before uncompressed offset `offset`; the table
  // must not be empty (its first point is at offset 0).
  const Checkpoint& Before(uint64_t offset) const;
  // The stored windows (what Add kept, or the sidecar's bytes they view).
  std::string_view windows() const { return windows_; }
  // Memory the table holds: entries plus stored windows.
  uint64_t memory_bytes() const;

  // Decodes the window of `cp` into *out and checks its hash; Corruption
  // naming the table (the sidecar) when it does not decode or match.
  Status Window(const Checkpoint& cp, std::string* out) const;

 private:
  std::string gz_path_, name_;
  std::vector<Checkpoint> points_;
  std::unique_ptr<std::string> arena_;  // windows added by Add (stable address)
  std::string_view windows_;            // *arena_ or the sidecar's bytes
  std::string scratch_;                 // Add's compression buffer
};

}  // namespace shardset::targz

#endif  // SHARDSET_FORMATS_TARGZ_GZ_INDEX_H_
