// Writer: samples written one by one into a dataset folder, as a program
// makes them (seed 003: a notebook generating 800,000 images), crash-safe
// and resumable. docs/python.md "Writing while generating".
//
// Samples go into shards of the chosen format; a shard is sealed (temp file,
// fsync, rename, then a state file naming it) when it would pass shard_size
// or shard_samples, when Flush() is called, and at Close(), which writes the
// manifest. A crash or kill loses only the samples of the open shard: opening
// the folder again with resume set keeps every sealed shard and reports how
// many samples they hold (resumed_samples()), so the program continues after
// them; nothing sealed is lost or duplicated. Resuming a finished dataset
// appends to it: its manifest stays as it was until the next Close().
//
// Thread safety: one thread at a time; a Writer is movable only by pointer.
#ifndef SHARDSET_WRITER_H_
#define SHARDSET_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "shardset/dataset.h"
#include "shardset/shard.h"
#include "shardset/status.h"

namespace shardset {

class DatasetWriter;

struct WriterOptions {
  ShardFormat format = ShardFormat::kNative;
  // Seal a shard before it would grow past this many bytes (a larger sample
  // gets a shard of its own). Smaller than pack's default: a crash loses at
  // most one open shard.
  uint64_t shard_size = 64ull << 20;
  // Also seal after this many samples; 0: no limit.
  uint64_t shard_samples = 0;
  // Continue what the folder holds (an interrupted or a finished dataset
  // written with the same format and shard limits). Without it, a folder
  // that holds anything of shardset's is AlreadyExists.
  bool resume = false;
  // Replace what the folder holds.
  bool overwrite = false;
  // fsync shards, the state file and the manifest.
  bool sync = true;
  int zip_deflate_level = 0;  // zip only
  int gzip_level = 6;         // tar.gz only
};

class Writer {
 public:
  static Result<std::unique_ptr<Writer>> Open(const std::string& path,
                                              const WriterOptions& options = {});
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Samples the folder held when it was opened (0 unless resuming).
  uint64_t resumed_samples() const { return resumed_samples_; }
  // Samples written so far, the resumed ones included.
  uint64_t samples() const;
  uint64_t shards_sealed() const;
  const std::string& path() const { return path_; }

  // Appends a sample. InvalidArgument (naming the sample) for keys or field
  // names the format cannot hold; the sample is then not written.
  Status Add(const InputSample& sample);
  // Seals the open shard now: everything added so far is durable.
  Status Flush();
  // Seals the open shard and writes the manifest; the dataset is then
  // readable. The Writer takes no more samples.
  Result<Manifest> Close();

 private:
  Writer(std::string path, std::unique_ptr<DatasetWriter> w);
  std::string path_;
  std::unique_ptr<DatasetWriter> w_;
  uint64_t resumed_samples_ = 0;
  bool closed_ = false;
};

}  // namespace shardset

#endif  // SHARDSET_WRITER_H_
