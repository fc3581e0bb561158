// Writing a dataset folder shard by shard, crash-safe and resumable: what
// pack and shuffle share (and the Python Writer will).
//
// Shards are sealed one by one under their final names (temp + fsync +
// rename, ShardWriter). After each seal a state file records the sealed
// shards and the caller's progress count at each shard's end
// (docs/formats/manifest.md "Pack state"); the manifest is written last, by
// Finish. Opening the writer on a folder holding an interrupted run with the
// same recipe keeps the sealed shards (re-opening any sealed after the state
// was last written) and tells the caller where to continue; on one holding a
// finished dataset with the same recipe it reports already_complete.
#ifndef SHARDSET_DATASET_DATASET_WRITER_H_
#define SHARDSET_DATASET_DATASET_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "shardset/dataset.h"
#include "shardset/shard.h"
#include "shardset/status.h"

namespace shardset {

struct DatasetWriterOptions {
  ShardFormat format = ShardFormat::kNative;
  // A shard is sealed before it would grow past this many bytes (a single
  // sample larger than this gets a shard of its own).
  uint64_t shard_size = 256ull << 20;
  // Also seal after this many samples; 0 = no limit.
  uint64_t shard_samples = 0;
  WriteOptions write;
  // Everything that changes the output's bytes, as a JSON object; a resume
  // or an "already done" check compares it, and the manifest records it.
  std::string recipe_json = "{}";
  // Replace a dataset or interrupted run made with another recipe.
  bool force = false;
  // The verb, for messages ("an interrupted pack").
  std::string verb = "pack";
  // A finished dataset with the same recipe is continued (its shards kept,
  // resumed_progress() at its end) instead of reported as already complete;
  // its manifest stays until Finish writes the new one.
  bool append = false;
};

// Removes a shard shardset wrote and its sidecars, sidecars first: a kill
// between the unlinks leaves a shard without its sidecar (still readable, and
// removed again by the next clear), never a sidecar that names no shard.
void RemoveShard(const std::string& path, ShardFormat format);

class DatasetWriter {
 public:
  static Result<std::unique_ptr<DatasetWriter>> Open(const std::string& out,
                                                     const DatasetWriterOptions& options);
  ~DatasetWriter();
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  // `out` already holds a finished dataset with this recipe; nothing to do
  // (manifest() describes it).
  bool already_complete() const { return already_complete_; }
  const Manifest& manifest() const { return manifest_; }

  // Resume point: the caller's progress count at the end of the last shard
  // kept from an interrupted run (0 when starting afresh), the key of the
  // last sample kept, and the samples kept.
  uint64_t resumed_progress() const { return resumed_progress_; }
  const std::string& resumed_last_key() const { return resumed_last_key_; }
  uint64_t resumed_samples() const { return resumed_samples_; }
  // Caller state saved with the last kept shard (SetExtraState), or null.
  const std::string& resumed_extra() const { return resumed_extra_; }

  // Appends a sample. `progress` is the caller's count of what it has
  // consumed including this sample (more than the samples written when it
  // drops some); a resume continues after the value at the last seal.
  // `source_bytes`: bytes of the sample that came from files.
  Status Add(const InputSample& sample, uint64_t source_bytes, uint64_t progress);
  // Seals the open shard now (at progress `progress`), if it holds samples.
  Status Flush(uint64_t progress) { return Seal(progress); }
  // JSON saved in the state file with each later seal (pack: the files it
  // skipped while reading).
  void SetExtraState(std::string json) { extra_state_ = std::move(json); }

  uint64_t samples_written() const { return manifest_.num_samples + open_samples(); }
  uint64_t shards_sealed() const { return manifest_.shards.size(); }
  uint64_t source_bytes() const { return manifest_.source_bytes + open_source_bytes_; }

  // Seals the last shard (at progress `progress`), writes the manifest with
  // `skipped` lines and removes the state file. InvalidArgument when nothing
  // was written.
  Result<Manifest> Finish(uint64_t progress, std::vector<std::string> skipped);
  // After a failure: removes `out` when this writer created it and nothing
  // was sealed in it.
  void Abandon();

  // "shard-000042.tar"
  static std::string ShardName(uint64_t index, ShardFormat format);
  // The state file of an interrupted run, in the output folder.
  static constexpr std::string_view kStateName = ".shardset-pack-state.json";

 private:
  DatasetWriter(std::string out, DatasetWriterOptions options);
  Status Prepare();
  Status Resume();
  Status ResumeFromState();
  Status ClearStrayShards(uint64_t from);
  Status Seal(uint64_t progress);
  Status SaveState();
  void AddToManifest(const ManifestShard& ms, uint64_t progress);
  uint64_t open_samples() const;

  std::string out_;
  DatasetWriterOptions o_;
  Manifest manifest_;
  std::vector<uint64_t> progress_at_seal_;  // per shard in manifest_
  std::unique_ptr<ShardWriter> writer_;
  uint64_t open_source_bytes_ = 0;
  std::string extra_state_;
  bool created_out_ = false;
  bool already_complete_ = false;
  uint64_t resumed_progress_ = 0, resumed_samples_ = 0;
  std::string resumed_last_key_, resumed_extra_;
};

}  // namespace shardset

#endif  // SHARDSET_DATASET_DATASET_WRITER_H_
