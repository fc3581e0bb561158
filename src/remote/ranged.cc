#include "remote/ranged.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/file.h"
#include "formats/indexed_reader.h"
#include "index/index.h"

namespace shardset::remote {
namespace {

// Eviction scans the whole cache, so a ranged reader asks for it only after
// this many new bytes.
constexpr uint64_t kEvictEvery = uint64_t{64} << 20;
// Present blocks a fetch fetches again rather than split in two requests.
constexpr uint64_t kMaxRefetch = 8;

Status PwriteAll(int fd, std::string_view data, uint64_t offset, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(fmt::format("{}: cannot write to the cache", path), errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<RangedFile>> RangedFile::Open(Client* client, Cache* cache,
                                                     const std::string& url, uint64_t size) {
  std::unique_ptr<RangedFile> f(new RangedFile());
  f->client_ = client;
  f->cache_ = cache;
  f->url_ = url;
  const std::string base = cache->PathOf(url);
  f->path_ = base + std::string(kPartSuffix);
  f->map_path_ = base + std::string(kBlocksSuffix);
  f->lock_path_ = f->path_ + ".lock";
  f->size_ = size;
  f->blocks_ = (size + kBlockBytes - 1) / kBlockBytes;
  SHARDSET_RETURN_IF_ERROR(MakeDirs(DirName(base)));
  SHARDSET_ASSIGN_OR_RETURN(FileLock lock, FileLock::Take(f->lock_path_, /*wait=*/true));
  f->fd_ = ::open(f->path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (f->fd_ < 0) return Status::FromErrno(f->path_, errno);
  f->map_fd_ = ::open(f->map_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (f->map_fd_ < 0) return Status::FromErrno(f->map_path_, errno);
  struct stat st;
  if (::fstat(f->fd_, &st) != 0) return Status::FromErrno(f->path_, errno);
  struct stat mst;
  if (::fstat(f->map_fd_, &mst) != 0) return Status::FromErrno(f->map_path_, errno);
  if (static_cast<uint64_t>(st.st_size) != size || static_cast<uint64_t>(mst.st_size) != f->blocks_) {
    // New, or left by an object of another size under this name: start over
    // (map first, so no block is ever marked over bytes of the old object).
    if (::ftruncate(f->map_fd_, 0) != 0 ||
        ::ftruncate(f->map_fd_, static_cast<off_t>(f->blocks_)) != 0) {
      return Status::FromErrno(f->map_path_, errno);
    }
    if (::ftruncate(f->fd_, 0) != 0 || ::ftruncate(f->fd_, static_cast<off_t>(size)) != 0) {
      return Status::FromErrno(fmt::format("{}: no room for it", f->path_), errno);
    }
  }
  ::futimens(f->fd_, nullptr);  // most recently used
  std::lock_guard<std::mutex> guard(f->mu_);
  SHARDSET_RETURN_IF_ERROR(f->LoadMap());
  return f;
}

RangedFile::~RangedFile() {
  if (fd_ >= 0) ::close(fd_);
  if (map_fd_ >= 0) ::close(map_fd_);
}

uint64_t RangedFile::fetched_bytes() const {
  std::lock_guard<std::mutex> guard(mu_);
  return fetched_;
}

Status RangedFile::LoadMap() {
  have_.assign(blocks_, 0);
  uint64_t done = 0;
  while (done < blocks_) {
    const ssize_t n = ::pread(map_fd_, have_.data() + done, blocks_ - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(map_path_, errno);
    if (n == 0) break;  // shorter than it should be: the rest is missing
    done += static_cast<uint64_t>(n);
  }
  return Status::OK();
}

Result<uint64_t> RangedFile::FetchBlocks(uint64_t b, uint64_t e) {
  const uint64_t offset = b * kBlockBytes;
  const uint64_t length = std::min(size_, e * kBlockBytes) - offset;
  SHARDSET_RETURN_IF_ERROR(client_->GetRange(
      url_, offset, length,
      [&](uint64_t at, std::string_view piece) { return PwriteAll(fd_, piece, at, path_); }));
  // Marked only once their bytes are written.
  std::fill(have_.begin() + static_cast<ptrdiff_t>(b), have_.begin() + static_cast<ptrdiff_t>(e),
            uint8_t{1});
  SHARDSET_RETURN_IF_ERROR(PwriteAll(
      map_fd_, std::string_view(reinterpret_cast<const char*>(have_.data() + b), e - b), b,
      map_path_));
  return length;
}

// Fetches blocks [first, end) that are missing, a run of missing blocks per
// request; under mu_ and the file lock.
Status RangedFile::Fetch(uint64_t first, uint64_t end) {
  for (uint64_t b = first; b < end;) {
    if (have_[b]) {
      ++b;
      continue;
    }
    // The run of missing blocks, and past a few present ones into the next
    // run: fetching a present block again is cheaper than another request.
    uint64_t e = b;
    for (uint64_t gap = 0; e < end && gap <= kMaxRefetch;) {
      gap = have_[e] ? gap + 1 : 0;
      ++e;
    }
    while (e > b && have_[e - 1]) --e;
    SHARDSET_ASSIGN_OR_RETURN(uint64_t length, FetchBlocks(b, e));
    fetched_ += length;
    since_evict_ += length;
    b = e;
  }
  return Status::OK();
}

Status RangedFile::Ensure(uint64_t offset, uint64_t length) {
  if (length == 0) return Status::OK();
  if (offset > size_ || length > size_ - offset) {
    return Status::Corruption(fmt::format("{}: bytes {}..{} lie past its end ({} bytes)", url_,
                                          offset, offset + length, size_));
  }
  const uint64_t first = offset / kBlockBytes;
  const uint64_t end = (offset + length + kBlockBytes - 1) / kBlockBytes;
  bool evict = false;
  {
    std::lock_guard<std::mutex> guard(mu_);
    // A request that starts where the previous one ended is a sequential
    // reader: each of its misses doubles the read-ahead.
    const bool sequential = first + 1 >= last_end_ && first <= last_end_;
    last_end_ = end;
    if (std::all_of(have_.begin() + static_cast<ptrdiff_t>(first),
                    have_.begin() + static_cast<ptrdiff_t>(end), [](uint8_t h) { return h; })) {
      return Status::OK();
    }
    const uint64_t max_window = std::max<uint64_t>(1, client_->options().chunk_bytes / kBlockBytes);
    window_ = sequential ? std::min(window_ * 2, max_window) : 1;
    const uint64_t stop = std::min(blocks_, std::max(end, first + window_));
    SHARDSET_ASSIGN_OR_RETURN(FileLock lock, FileLock::Take(lock_path_, /*wait=*/true));
    SHARDSET_RETURN_IF_ERROR(LoadMap());
    SHARDSET_RETURN_IF_ERROR(Fetch(first, stop));
    if (since_evict_ >= kEvictEvery) {
      since_evict_ = 0;
      evict = true;
    }
  }
  if (evict) (void)cache_->Evict(path_);
  return Status::OK();
}

Status RangedFile::EnsureAll() {
  const uint64_t chunk = std::max<uint64_t>(1, client_->options().chunk_bytes / kBlockBytes);
  std::lock_guard<std::mutex> guard(mu_);
  SHARDSET_ASSIGN_OR_RETURN(FileLock lock, FileLock::Take(lock_path_, /*wait=*/true));
  SHARDSET_RETURN_IF_ERROR(LoadMap());
  std::vector<uint64_t> starts;  // chunks holding a missing block
  for (uint64_t b = 0; b < blocks_; b += chunk) {
    const uint64_t e = std::min(blocks_, b + chunk);
    if (!std::all_of(have_.begin() + static_cast<ptrdiff_t>(b),
                     have_.begin() + static_cast<ptrdiff_t>(e), [](uint8_t h) { return h; })) {
      starts.push_back(b);
    }
  }
  // Chunks are disjoint, so their fetches write disjoint bytes of have_
  // and of the files; fetched_ is summed after.
  std::vector<uint64_t> bytes(starts.size(), 0);
  Status s = ParallelFor(starts.size(), client_->options().parallel, [&](uint64_t i) {
    SHARDSET_ASSIGN_OR_RETURN(bytes[i], FetchBlocks(starts[i], std::min(blocks_, starts[i] + chunk)));
    return Status::OK();
  });
  for (uint64_t n : bytes) fetched_ += n;
  return s;
}

Status RangedFile::Invalidate(uint64_t offset, uint64_t length) {
  if (length == 0 || offset >= size_) return Status::OK();
  const uint64_t first = offset / kBlockBytes;
  const uint64_t end = std::min(blocks_, (offset + length + kBlockBytes - 1) / kBlockBytes);
  std::lock_guard<std::mutex> guard(mu_);
  SHARDSET_ASSIGN_OR_RETURN(FileLock lock, FileLock::Take(lock_path_, /*wait=*/true));
  std::fill(have_.begin() + static_cast<ptrdiff_t>(first),
            have_.begin() + static_cast<ptrdiff_t>(end), uint8_t{0});
  return PwriteAll(map_fd_,
                   std::string_view(reinterpret_cast<const char*>(have_.data() + first),
                                    end - first),
                   first, map_path_);
}

namespace {

class RangedShardReader : public ShardReader {
 public:
  RangedShardReader(std::unique_ptr<RangedFile> file, std::unique_ptr<ShardReader> inner,
                    const IndexedShardReader* indexed)
      : file_(std::move(file)), inner_(std::move(inner)), indexed_(indexed) {}

  const std::string& path() const override { return inner_->path(); }
  ShardFormat format() const override { return inner_->format(); }
  uint64_t num_samples() const override { return inner_->num_samples(); }
  uint64_t file_size() const override { return inner_->file_size(); }
  bool keys_sorted() const override { return inner_->keys_sorted(); }
  Result<std::string> Key(uint64_t ordinal) const override { return inner_->Key(ordinal); }
  Result<uint64_t> Find(std::string_view key) const override { return inner_->Find(key); }
  Status Stat(uint64_t ordinal, SampleStat* out) const override {
    return inner_->Stat(ordinal, out);
  }

  Status Read(uint64_t ordinal, Sample* out) const override {
    const index::Entry* e = nullptr;
    SHARDSET_RETURN_IF_ERROR(indexed_->index().Get(ordinal, &e));
    if (e->fields.empty()) return inner_->Read(ordinal, out);
    // Fields are in increasing offset order (index.h).
    const uint64_t begin = e->fields.front().offset;
    const uint64_t end = e->fields.back().offset + e->fields.back().size;
    if (end < begin) return inner_->Read(ordinal, out);  // the reader names the damage
    SHARDSET_RETURN_IF_ERROR(file_->Ensure(begin, end - begin));
    Status s = inner_->Read(ordinal, out);
    if (s.IsCorruption()) {
      // A corrupted answer: fetched once more before it is reported.
      SHARDSET_RETURN_IF_ERROR(file_->Invalidate(begin, end - begin));
      SHARDSET_RETURN_IF_ERROR(file_->Ensure(begin, end - begin));
      s = inner_->Read(ordinal, out);
    }
    return s;
  }

  Status Verify(VerifyReport* report) const override {
    SHARDSET_RETURN_IF_ERROR(file_->EnsureAll());
    VerifyReport first;
    SHARDSET_RETURN_IF_ERROR(inner_->Verify(&first));
    if (first.ok()) {
      report->samples_checked += first.samples_checked;
      report->bytes_checked += first.bytes_checked;
      return Status::OK();
    }
    // Damage in the cache may be an answer corrupted on the way (a block
    // read by a reader that skipped checksums): everything is fetched once
    // more, and what still fails is the shard's.
    SHARDSET_RETURN_IF_ERROR(file_->Invalidate(0, file_->size()));
    SHARDSET_RETURN_IF_ERROR(file_->EnsureAll());
    return inner_->Verify(report);
  }

 private:
  std::unique_ptr<RangedFile> file_;
  std::unique_ptr<ShardReader> inner_;
  const IndexedShardReader* indexed_;
};

// Fetches what opening a native shard reads (the header, the footer, and
// from the footer's index_offset the index: docs/format.md "Footer"), opens
// it, and decodes every index block, so that damage there is found now.
Result<std::unique_ptr<ShardReader>> OpenIndexOf(RangedFile* file, const std::string& url,
                                                 ShardFormat format, uint64_t size,
                                                 const ReadOptions& options) {
  SHARDSET_RETURN_IF_ERROR(file->Ensure(0, std::min<uint64_t>(size, 16)));
  SHARDSET_RETURN_IF_ERROR(file->Ensure(size - index::kFooterSize, index::kFooterSize));
  char footer[8];
  {
    FdCloser fd(::open(file->path().c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return Status::FromErrno(file->path(), errno);
    if (::pread(fd.get(), footer, sizeof(footer),
                static_cast<off_t>(size - index::kFooterSize)) != sizeof(footer)) {
      return Status::FromErrno(file->path(), errno);
    }
  }
  const uint64_t index_offset = DecodeFixed64(footer);
  // A footer that points nowhere: everything is fetched, and the reader
  // says what is wrong.
  SHARDSET_RETURN_IF_ERROR(index_offset <= size - index::kFooterSize
                               ? file->Ensure(index_offset, size - index_offset)
                               : file->EnsureAll());
  SHARDSET_ASSIGN_OR_RETURN(auto inner, OpenShardAs(file->path(), format, options));
  if (const auto* indexed = dynamic_cast<const IndexedShardReader*>(inner.get())) {
    std::vector<index::Entry> entries;
    for (uint32_t b = 0; b < indexed->index().num_blocks(); ++b) {
      SHARDSET_RETURN_IF_ERROR(indexed->index().GetBlock(b, &entries));
    }
    SHARDSET_RETURN_IF_ERROR(indexed->index().VerifyKeyTable());
  }
  return inner;
}

}  // namespace

Result<std::unique_ptr<ShardReader>> OpenRanged(Client* client, Cache* cache,
                                                const std::string& url, ShardFormat format,
                                                uint64_t size, const ReadOptions& options) {
  if (format != ShardFormat::kNative) {
    return Status::NotSupported(fmt::format("{}: only native shards are read by range", url));
  }
  if (size < index::kFooterSize) {
    return Status::Corruption(fmt::format("{}: {} bytes is too short for a native shard", url,
                                          size));
  }
  SHARDSET_ASSIGN_OR_RETURN(auto file, RangedFile::Open(client, cache, url, size));
  // Bytes that crossed a network are checked on every read, whatever the
  // caller asked: a corrupted answer is fetched again instead of delivered.
  ReadOptions checked = options;
  checked.verify_checksums = true;
  // A corrupted answer in what opening reads fails the footer's, the
  // directory's or an index block's checksum: fetched once more.
  for (int attempt = 0;; ++attempt) {
    auto inner = OpenIndexOf(file.get(), url, format, size, checked);
    if (inner.ok()) {
      const auto* indexed = dynamic_cast<const IndexedShardReader*>(inner->get());
      if (!indexed) return Status::NotSupported(fmt::format("{}: not read by range", url));
      return std::unique_ptr<ShardReader>(
          new RangedShardReader(std::move(file), std::move(*inner), indexed));
    }
    if (!inner.status().IsCorruption() || attempt == 1) return inner.status();
    SHARDSET_RETURN_IF_ERROR(file->Invalidate(0, size));
  }
}

}  // namespace shardset::remote
