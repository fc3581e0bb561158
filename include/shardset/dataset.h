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
// The largest manifest read: a manifest is small (a line per shard); the
// bound only stops a hostile or mistaken file from being read whole.
inline constexpr uint64_t kMaxManifestBytes = 256ull << 20;

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
  // Zip shards: XXH3-64 of the central directory and the end records (the
  // bytes from the first central header to the end of the file), checked
  // when the shard is opened, since nothing in a zip checksums them. 0 for
  // other formats, or when unknown (older manifests).
  uint64_t directory_xxh3 = 0;
};

// What ManifestShard::directory_xxh3 records for the shard at `path`: the
// XXH3-64 of a zip's central directory and end records; 0 for other formats.
Result<uint64_t> DirectoryChecksum(const std::string& path, ShardFormat format);

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
  // Set by FromJson: the text carried a checksum of itself (manifest_xxh3,
  // checked there), and it is byte for byte the text ToJson writes. Verify
  // reports a manifest that lacks either.
  bool has_checksum = false;
  bool canonical = false;

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
  // The path of shard i (as given, or joined to the dataset folder; for
  // s3:// and http(s):// datasets, where the cache keeps it).
  const std::string& shard_path(size_t i) const { return slots_[i]->path; }
  // Where shard i is, for people: its URL for remote datasets, else its path.
  const std::string& shard_location(size_t i) const {
    return slots_[i]->url.empty() ? slots_[i]->path : slots_[i]->url;
  }
  // Bytes [offset, offset + length) of shard i as stored: read from the
  // file, or for an s3:// or http(s):// dataset by one ranged GET (nothing
  // is cached).
  Result<std::string> ReadShardBytes(size_t i, uint64_t offset, uint64_t length) const;
  // Shard i, opened on first use; Corruption/NotFound naming it when it
  // cannot be opened or does not match the manifest.
  Result<const ShardReader*> shard(size_t i) const;
  // First global ordinal of shard i.
  uint64_t shard_start(size_t i) const { return starts_[i]; }

  // Sample `ordinal` (global); out->ordinal is the global ordinal.
  Status Read(uint64_t ordinal, Sample* out) const;
  // Only the key of sample `ordinal` (no field bytes touched).
  Result<std::string> Key(uint64_t ordinal) const;
  // Key, field names, sizes and times of sample `ordinal` (ShardReader::Stat).
  Status Stat(uint64_t ordinal, SampleStat* out) const;
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
  // s3:// and http(s):// targets (docs/remote.md): the manifest is read
  // now, each shard fetched into the local cache when first used.
  static Result<std::unique_ptr<Dataset>> OpenRemote(const std::string& target,
                                                     const ReadOptions& options);

  struct Slot {
    std::string path;
    std::string url;  // remote shards: where path is fetched from
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
  struct Remote;
  std::shared_ptr<Remote> remote_;  // set for s3:// and http(s):// targets
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<uint64_t> starts_;  // prefix sums; starts_[num_shards] == total_
  uint64_t total_ = 0;

  mutable std::once_flag ranges_once_;
  mutable Status ranges_status_;
  mutable bool ranges_sorted_ = false;
  mutable std::vector<std::string> first_keys_;
};

struct CreateDatasetOptions {
  // Folders of loose files: add a derived "cls" field holding each sample's
  // parent folder name (as pack --label-from-dir).
  bool label_from_dir = false;
  // Folders of loose files: skip unreadable files with a warning.
  bool skip_unreadable = false;
  ReadOptions read;
  bool sync = true;
  // The command that made it, recorded in the manifest's recipe.
  std::string recipe_json = "{}";
  std::function<void(const std::string&)> warn;
  // Called as each input starts: (input index, inputs, path).
  std::function<void(size_t, size_t, const std::string&)> progress;
};

// Makes the dataset folder `dir` from existing data, in place, in the given
// order, without rewriting a byte of it (`shardset dataset create`):
// - a shard or archive file (any format) is listed where it is; a tar, tar.gz
//   or tsv missing its sidecar index gets one, written next to it;
// - a folder of loose files is indexed in place into dir/folder-NNNNNN.fidx
//   (a folder shard, docs/formats/folder-index.md);
// - a dataset folder contributes its shards.
// The manifest lists shards by paths relative to `dir` ("../raw/a.tar"), so
// `dir` and its sources can move together. `dir` must not exist; it is built
// under a temporary name and renamed when complete.
Result<Manifest> CreateDataset(const std::string& dir, const std::vector<std::string>& inputs,
                               const CreateDatasetOptions& options = {});

}  // namespace shardset

#endif  // SHARDSET_DATASET_H_
