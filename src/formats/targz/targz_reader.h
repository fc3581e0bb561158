// The tar.gz ShardReader: samples found through the tar index (sidecar or
// scan), their bytes inflated from the nearest checkpoint or from an open
// cursor already close behind them (docs/formats/targz-index.md "Reading").
#ifndef SHARDSET_FORMATS_TARGZ_TARGZ_READER_H_
#define SHARDSET_FORMATS_TARGZ_TARGZ_READER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/file.h"
#include "formats/tar/tar_source.h"
#include "formats/targz/gz_index.h"
#include "formats/targz/gz_stream.h"
#include "formats/targz/targz_sidecar.h"
#include "index/index.h"
#include "shardset/shard.h"

namespace shardset::targz {

// The uncompressed bytes between checkpoints that WriteIndex and the scan at
// open record (docs/formats/targz-index.md "Choice of span").
inline constexpr uint64_t kDefaultSpan = uint64_t{1} << 20;

// A tar read forward out of a GzStream: what the tar walker runs on.
class GzipTarSource : public tar::TarSource {
 public:
  explicit GzipTarSource(GzStream* stream) : stream_(stream) {}
  std::optional<uint64_t> size() const override { return stream_->size(); }
  Result<std::string_view> Read(uint64_t offset, size_t n) override;

  // After a walk: drains the stream (every remaining member's CRC-32 and
  // length checked) and refuses trailing garbage unless the walk ended at
  // the tar's end-of-archive block (docs/formats/targz-index.md "Reading the
  // gzip stream").
  Status Finish();

 private:
  GzStream* stream_;
  bool last_read_zero_block_ = false;
};

// Everything one sequential pass learns: the stream's size, its checkpoints
// and the sample index (the scan at open, WriteIndex, Verify). Every gzip
// member's CRC-32 and length is checked.
struct ScanOutput {
  explicit ScanOutput(std::string gz_path) : table(std::move(gz_path)) {}
  ScanResult scan;
  // Where bytes that are not a gzip member follow the last member (ignored).
  std::optional<uint64_t> trailing_garbage_at;
  CheckpointTable table;
  index::IndexBuilder builder{/*contiguous=*/false};
};
Status ScanTarGz(const GzFile& file, const ReadOptions& options, uint64_t span, ScanOutput* out);

// Thread-safe: Read, Key, Find and Verify may run on many threads at once.
class TarGzReader final : public ShardReader {
 public:
  TarGzReader(std::unique_ptr<GzFile> file, MappedFile sidecar, std::string index_storage,
              index::IndexReader index, CheckpointTable table, ScanResult scan,
              const ReadOptions& options);

  const std::string& path() const override { return file_->path(); }
  ShardFormat format() const override { return ShardFormat::kTarGz; }
  uint64_t num_samples() const override { return index_.num_samples(); }
  uint64_t file_size() const override { return file_->size(); }
  bool keys_sorted() const override { return index_.keys_sorted(); }
  Status Read(uint64_t ordinal, Sample* out) const override;
  Result<std::string> Key(uint64_t ordinal) const override;
  Result<uint64_t> Find(std::string_view key) const override;
  Status Verify(VerifyReport* report) const override;
  // Members' headers are inside the compressed stream: every field gets the
  // tar.gz file's time rather than an inflate per stat.
  Status Stat(uint64_t ordinal, SampleStat* out) const override;

  // Compressed bytes read from the file since it was opened (the sidecar
  // and the probe of format detection not included).
  uint64_t compressed_bytes_read() const { return file_->bytes_read(); }
  const CheckpointTable& checkpoints() const { return table_; }
  uint64_t tar_size() const { return scan_.tar_size; }
  // Times a Read started inflating at a checkpoint rather than continuing
  // an open cursor (for tests and benchmarks).
  uint64_t cursor_seeks() const;

 private:
  struct Cursor {
    explicit Cursor(const GzFile* file, uint64_t max_ratio) : stream(file, max_ratio) {}
    GzStream stream;
    std::string window;  // scratch for checkpoint windows
  };
  // A cursor at or before `offset`: an idle one close behind it, or one
  // started at the checkpoint before it.
  Result<std::unique_ptr<Cursor>> Acquire(uint64_t offset) const;
  void Release(std::unique_ptr<Cursor> cursor) const;
  Status ReadFields(uint64_t ordinal, const index::Entry& e, Sample* out) const;
  void VerifyPass(VerifyReport* report) const;

  std::unique_ptr<GzFile> file_;
  MappedFile sidecar_;
  std::string index_storage_;
  index::IndexReader index_;
  CheckpointTable table_;
  ScanResult scan_;
  ReadOptions options_;
  size_t max_idle_;

  mutable std::mutex mu_;
  mutable std::vector<std::unique_ptr<Cursor>> idle_;  // least recently used first
  mutable uint64_t seeks_ = 0;
};

}  // namespace shardset::targz

#endif  // SHARDSET_FORMATS_TARGZ_TARGZ_READER_H_
