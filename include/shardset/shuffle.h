// Shuffling: a uniformly random order of a dataset or view, or a
// label-interleaved one, written as new shards (out of core, bounded memory,
// resumable) or as a view (no bytes copied). docs/shuffle.md.
//
// The order is a function of the number of samples N, the seed and the mode
// only, never of --memory or the machine, so the shards and the view of one
// seed hold the same order (docs/shuffle.md "The order"):
//
// * Uniform (Rao and Sandelius' two-stage shuffle): sample pos goes to
//   bucket MulHi(Score(base, pos), B), B = ceil(N / kShuffleBucketSamples),
//   base = ScoreBase("shuffle", seed); each bucket's samples, in source
//   order, are permuted by Fisher-Yates drawing from Rng(Score(base2, b)),
//   base2 = ScoreBase("shuffle-bucket", seed); buckets follow each other in
//   order. Independent uniform bucket choices and uniform permutations within
//   buckets make every permutation of the N samples equally likely.
// * Interleaved by label: the label sequence spreads each label evenly in
//   proportion to its count and, whenever the counts allow it, never puts a
//   label next to itself; within a label the samples come in an order
//   shuffled by the seed.
#ifndef SHARDSET_SHUFFLE_H_
#define SHARDSET_SHUFFLE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shardset/select.h"
#include "shardset/shard.h"
#include "shardset/status.h"
#include "shardset/view.h"

namespace shardset {

// Expected samples per bucket of the uniform order. Part of the order's
// definition: changing it changes every shuffle.
inline constexpr uint64_t kShuffleBucketSamples = 4096;

struct ShuffleProgress {
  const char* phase = "";  // "labels", "scatter", "gather"
  uint64_t done = 0, total = 0;
};

struct ShuffleOptions {
  uint64_t seed = 0;
  // Empty: uniform. Otherwise where labels come from (LabelSpec::Parse).
  std::string interleave_by;
  // Bytes of samples held in memory at once during the gather (and the
  // scatter's buffers); data larger than this goes through temporary files
  // (docs/shuffle.md "Memory and temporary space").
  uint64_t memory = 1ull << 30;
  // Folder for temporary files; empty: a hidden folder inside the output
  // dataset (or next to the output file).
  std::string temp_dir;

  // Output shards (Shuffle only).
  ShardFormat format = ShardFormat::kNative;
  uint64_t shard_size = 256ull << 20;
  uint64_t shard_samples = 0;
  int zip_deflate_level = 0;
  // tar.gz only: zlib level of the stream.
  int gzip_level = 6;
  bool sync = true;
  // Replace an output made with other arguments.
  bool force = false;
  // Extra recipe members (the command line), a JSON object.
  std::string recipe_json = "{}";

  // How the shards are written (docs/shuffle.md "Memory and temporary
  // space"): kDirect reads the source in output order (random reads, no
  // temporary files); kScatterGather reads it in its own order through
  // temporary files; kAuto picks direct when the source reads in O(1) (not
  // tar.gz) and either fits in --memory or has samples of 64 KiB and more
  // on average (random reads that large cost about what sequential ones do).
  enum class Method { kAuto, kDirect, kScatterGather };
  Method method = Method::kAuto;

  // Test hook: expected samples per bucket of the uniform order (the order
  // then differs from the documented one). 0: kShuffleBucketSamples.
  uint64_t bucket_samples = 0;

  std::function<void(const ShuffleProgress&)> progress;
};

// Where each output position's sample comes from: the order a shuffle of
// `n` samples with these options produces, for samples whose label ids are
// `labels` (interleave only; ignored and may be empty for uniform).
// Materialises the whole order (8 bytes per sample): for tests and small
// views; Shuffle and ShuffleView do not call it.
Result<std::vector<uint64_t>> ShuffleOrder(uint64_t n, const std::vector<uint32_t>& labels,
                                           const ShuffleOptions& options);

struct ShuffleResult {
  uint64_t samples = 0;
  uint64_t shards = 0;
  uint64_t bytes_out = 0;
  uint64_t resumed_samples = 0;  // kept from an interrupted run
  bool already_complete = false;
  // The most bytes of temporary files that existed at once.
  uint64_t temp_bytes = 0;
  // Gather passes that had to read samples one by one from a temporary file
  // because its share of the order did not fit in `memory`.
  uint64_t spilled_groups = 0;
  // The samples were read from the source in output order (no scatter).
  bool direct = false;
};

// Writes the samples of `src` in the shuffled order as new shards. `out` is a
// dataset folder (shard-NNNNNN files and a manifest; crash-safe and
// resumable like pack), or a file path ending in a shard extension (".tar",
// ".tar.gz", ".zip", ".tsv", ".shard"): one shard, written atomically.
Result<ShuffleResult> Shuffle(const View& src, const std::string& out,
                              const ShuffleOptions& options);

// The format of `src`'s shards when they all share one that shardset
// writes; native otherwise (shuffle's default --format).
ShardFormat SourceShardFormat(const View& src);

// Writes the view of `src` in the shuffled order (no bytes copied).
Result<ViewMade> ShuffleView(const View& src, const std::string& out,
                             const ShuffleOptions& options);

}  // namespace shardset

#endif  // SHARDSET_SHUFFLE_H_
