// Datasets: an ordered set of shards seen as one sequence of samples,
// described by a manifest (docs/formats/manifest.md).
//
// Dataset::Open accepts any TARGET the CLI takes: a dataset folder (with
// manifest.json), a single shard or archive of any format (native, tar, zip,
// tsv, tar.gz), or several of those. Ordinals are global across shards.
//
// The shards of a dataset folder are opened lazily, on first use, and checked
// against the manifest then (format, size, sample count): opening a dataset
// costs the same for 1 or 10,000 shards, and one damaged shard makes only its
// own samples unreadable.
//
// Thread safety: a Dataset is immutable after Open (lazy opening is
// synchronised); all const methods may be called from many threads.
#ifndef SHARDSET_DATASET_H_
#define SHARDSET_DATASET_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "shardset/shard.h"
#include "shardset/status.h"

namespace shardset {

inline constexpr std::string_view kManifestName = "manifest.json";
inline constexpr int kManifestVersion = 1;

// One shard as the manifest records it. `path` is relative to the dataset folder.
struct ManifestShard {
  std::string path;
  ShardFormat format = ShardFormat::kNative;
  uint64_t num_samples = 0;
  uint64_t file_size = 0;
  uint64_t xxh3 = 0;
  // Bytes of the fields that came from files (derived fields excluded); 0
  // when unknown (single shards opened directly).
  uint64_t source_bytes = 0;
};

struct Manifest {
  std::vector<ManifestShard> shards;
  uint64_t num_samples = 0;
  uint64_t total_bytes = 0;
  uint64_t source_bytes = 0;
  // The command and options that made the dataset, as JSON text (kept
  // verbatim so it can be audited and re-run).
  std::string recipe_json = "{}";
  // Files the pack skipped, with the reason, so nothing is lost silently.
  std::vector<std::string> skipped;

  std::string ToJson() const;
  static Result<Manifest> FromJson(std::string_view text, const std::string& path_for_errors);
  // Reads `dir`/manifest.json.
  static Result<Manifest> Load(const std::string& dir);
  // Writes `dir`/manifest.json atomically (temp + fsync + rename).
  Status Save(const std::string& dir, bool sync) const;
};

struct DatasetVerifyProgress {
  size_t shards_done = 0, shards_total = 0;
  uint64_t bytes_done = 0;
};

class Dataset {
 public:
  static Result<std::unique_ptr<Dataset>> Open(const std::string& target,
                                               const ReadOptions& options = {});
  // Several shard or archive files of any formats, seen as one dataset in
  // this order (e.g. the parts of a big TSV); one target is Open(target).
  static Result<std::unique_ptr<Dataset>> Open(const std::vector<std::string>& targets,
                                               const ReadOptions& options = {});
  Dataset(const Dataset&) = delete;
  Dataset& operator=(const Dataset&) = delete;

  const std::string& target() const { return target_; }
  // True for a dataset folder; false for a single shard or archive.
  bool has_manifest() const { return has_manifest_; }
  // For a single shard or archive, a manifest describing it (its xxh3 is 0).
  const Manifest& manifest() const { return manifest_; }
  uint64_t num_samples() const { return total_; }
  size_t num_shards() const { return slots_.size(); }
  // The path of shard i (as given, or joined to the dataset folder).
  const std::string& shard_path(size_t i) const { return slots_[i]->path; }
  // Shard i, opened on first use; Corruption/NotFound naming it when it
  // cannot be opened or does not match the manifest.
  Result<const ShardReader*> shard(size_t i) const;
  // First global ordinal of shard i.
  uint64_t shard_start(size_t i) const { return starts_[i]; }

  // Sample `ordinal` (global); out->ordinal is the global ordinal.
  Status Read(uint64_t ordinal, Sample* out) const;
  // Only the key of sample `ordinal` (no field bytes touched).
  Result<std::string> Key(uint64_t ordinal) const;
  // (shard index, ordinal within the shard) of a global ordinal.
  Result<std::pair<size_t, uint64_t>> Locate(uint64_t ordinal) const;
  // Global ordinal of `key`: a binary search over shards when every shard's
  // keys are sorted and shards do not overlap (what pack writes), otherwise
  // each shard is asked in turn.
  Result<uint64_t> Find(std::string_view key) const;
  // Every shard's structure and checksums, plus (for a dataset folder) each
  // shard file's size and XXH3 against the manifest.
  Status Verify(VerifyReport* report,
                const std::function<void(const DatasetVerifyProgress&)>& progress = {}) const;

 private:
  Dataset() = default;
  Status BuildKeyRanges() const;
  // Opens a shard file now and appends it (single-file targets).
  Status AddShardFile(const std::string& path);

  struct Slot {
    std::string path;
    std::once_flag once;
    std::unique_ptr<ShardReader> reader;
    Status status;
  };
  Status OpenSlot(size_t i) const;
  // Shard files in the folder that the manifest does not list.
  void FindUnlistedShards(VerifyReport* report) const;

  std::string target_;
  bool has_manifest_ = false;
  Manifest manifest_;
  ReadOptions options_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<uint64_t> starts_;  // prefix sums; starts_[num_shards] == total_
  uint64_t total_ = 0;

  mutable std::once_flag ranges_once_;
  mutable Status ranges_status_;
  mutable bool ranges_sorted_ = false;
  mutable std::vector<std::string> first_keys_;
};

struct ExtractOptions {
  // Also write derived fields (made by pack, e.g. the cls label).
  bool derived = false;
  // Called after each sample with (samples done, files written).
  std::function<void(uint64_t, uint64_t)> progress;
};

struct ExtractResult {
  uint64_t files = 0;
  uint64_t bytes = 0;
};

// Writes every sample's fields to `out`/key.field. Nothing is ever written
// outside `out`: keys that are absolute or contain "." / ".." / empty
// components are refused (InvalidArgument naming the sample), and folders are
// entered with O_NOFOLLOW relative to `out`, so a symlink inside `out` cannot
// redirect a write elsewhere. Each file appears under its name complete
// (written to a temporary name, then renamed).
Result<ExtractResult> Extract(const Dataset& dataset, const std::string& out,
                              const ExtractOptions& options = {});

}  // namespace shardset

#endif  // SHARDSET_DATASET_H_
