// Where the tar walker gets a tar's bytes: a memory map (random access, size
// known up front) or a decompressing stream such as a tar.gz (forward only,
// size known once the end is reached). The walker only asks for header blocks,
// extension payloads and, for checksums, member data in bounded pieces, so a
// stream never needs more than one such piece in memory.
#ifndef SHARDSET_FORMATS_TAR_TAR_SOURCE_H_
#define SHARDSET_FORMATS_TAR_TAR_SOURCE_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "shardset/status.h"

namespace shardset::tar {

class TarSource {
 public:
  // The largest piece Read is ever asked for: a pax extended header at its
  // limit (tar_header.h kMaxPaxHeaderBytes) plus its block.
  static constexpr size_t kMaxRead = (1 << 20) + 512;

  virtual ~TarSource() = default;

  // The tar's size in bytes: known from the start for a file, known for a
  // stream only after a Read has reached its end (nullopt before).
  virtual std::optional<uint64_t> size() const = 0;

  // Up to `n` (<= kMaxRead) bytes at `offset`; fewer only where the tar ends.
  // The view stays valid until the next call. Offsets never go back before
  // the start of the previous view (the walker may peek at a block, then
  // read from that block again), so a stream keeps only its current piece
  // and may drop what lies behind it (and skip, decompressing, what lies
  // between).
  // Errors (a damaged gzip stream, an IO error) name the file.
  virtual Result<std::string_view> Read(uint64_t offset, size_t n) = 0;
};

// A tar held whole in memory (a memory-mapped file).
class MemorySource : public TarSource {
 public:
  explicit MemorySource(std::string_view tar) : tar_(tar) {}
  std::optional<uint64_t> size() const override { return tar_.size(); }
  Result<std::string_view> Read(uint64_t offset, size_t n) override {
    if (offset >= tar_.size()) return std::string_view();
    return tar_.substr(offset, n);
  }

 private:
  std::string_view tar_;
};

}  // namespace shardset::tar

#endif  // SHARDSET_FORMATS_TAR_TAR_SOURCE_H_
