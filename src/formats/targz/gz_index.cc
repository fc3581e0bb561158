#include "formats/targz/gz_index.h"

#include <algorithm>
#include <cassert>

#include <fmt/format.h>
#include <zstd.h>

#include "base/hash.h"

namespace shardset::targz {
namespace {

// docs/formats/targz-index.md "Windows": level 3 stores a window of tar
// headers and PNG data in 38% of its size (zlib level 6: 38.5%, zstd level
// 19: 37.3% at 50 times the time), at 0.1 to 0.3 ms a window.
constexpr int kWindowZstdLevel = 3;

uint32_t WindowHash(std::string_view window) {
  return static_cast<uint32_t>(Xxh3(window));
}

}  // namespace

CheckpointTable::CheckpointTable(std::string gz_path, std::string name,
                                 std::vector<Checkpoint> points, std::string_view windows)
    : gz_path_(std::move(gz_path)),
      name_(std::move(name)),
      points_(std::move(points)),
      windows_(windows) {}

void CheckpointTable::Add(uint64_t out, uint64_t in, int bits, std::string_view window) {
  assert(points_.empty() || out > points_.back().out);
  assert(window.size() <= kWindowSize);
  if (!arena_) {
    arena_ = std::make_unique<std::string>();
    windows_ = *arena_;
  }
  Checkpoint cp;
  cp.out = out;
  cp.in = in;
  cp.bits = static_cast<uint8_t>(bits);
  cp.window_size = static_cast<uint32_t>(window.size());
  cp.window_hash = WindowHash(window);
  cp.window_offset = arena_->size();
  std::string_view stored = window;
  cp.codec = kWindowRaw;
  if (!window.empty()) {
    scratch_.resize(ZSTD_compressBound(window.size()));
    const size_t n = ZSTD_compress(scratch_.data(), scratch_.size(), window.data(),
                                   window.size(), kWindowZstdLevel);
    if (!ZSTD_isError(n) && n < window.size()) {
      stored = std::string_view(scratch_.data(), n);
      cp.codec = kWindowZstd;
    }
  }
  cp.window_stored = static_cast<uint32_t>(stored.size());
  arena_->append(stored);
  windows_ = *arena_;
  points_.push_back(cp);
}

const Checkpoint& CheckpointTable::Before(uint64_t offset) const {
  assert(!points_.empty());
  auto it = std::upper_bound(points_.begin(), points_.end(), offset,
                             [](uint64_t o, const Checkpoint& cp) { return o < cp.out; });
  return it == points_.begin() ? points_.front() : *std::prev(it);
}

uint64_t CheckpointTable::memory_bytes() const {
  return points_.capacity() * sizeof(Checkpoint) + (arena_ ? arena_->capacity() : 0);
}

Status CheckpointTable::Window(const Checkpoint& cp, std::string* out) const {
  auto bad = [&](std::string_view what) {
    return Status::Corruption(fmt::format(
        "{}: the window of the checkpoint at uncompressed byte {} {}; the index is damaged: "
        "rerun shardset index {}",
        name_, cp.out, what, gz_path_));
  };
  if (cp.window_offset > windows_.size() || cp.window_stored > windows_.size() - cp.window_offset ||
      cp.window_size > kWindowSize) {
    return bad("lies outside the index");
  }
  const std::string_view stored = windows_.substr(cp.window_offset, cp.window_stored);
  out->resize(cp.window_size);
  switch (cp.codec) {
    case kWindowRaw:
      if (stored.size() != cp.window_size) return bad("has the wrong size");
      out->assign(stored);
      break;
    case kWindowZstd: {
      const size_t n =
          ZSTD_decompress(out->data(), out->size(), stored.data(), stored.size());
      if (ZSTD_isError(n) || n != cp.window_size) return bad("does not decompress");
      break;
    }
    default:
      return bad(fmt::format("has unknown codec {}", cp.codec));
  }
  if (WindowHash(*out) != cp.window_hash) return bad("fails its checksum");
  return Status::OK();
}

}  // namespace shardset::targz
