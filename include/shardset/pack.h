// Pack: many small files (a folder tree or a tar) into a dataset of shards.
//
// Sources are walked in bytewise order of their relative paths, so a pack is
// deterministic and keys come out sorted. Files sharing a stem form one sample
// (docs/cli.md "Samples and keys"). Memory is bounded by the read-ahead
// window (PackOptions::max_inflight_bytes), one directory listing and one
// shard's index, not by the dataset size.
//
// Crash safety and resume: shards are sealed one by one under their final
// names (temp + fsync + rename); a state file records progress; the manifest
// is written last. Re-running the same pack after a crash keeps the sealed
// shards and continues after them; re-running a finished pack is a no-op.
#ifndef SHARDSET_PACK_H_
#define SHARDSET_PACK_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shardset/dataset.h"
#include "shardset/shard.h"
#include "shardset/remote.h"
#include "shardset/status.h"

namespace shardset {

struct PackProgress {
  uint64_t samples = 0;
  uint64_t bytes_in = 0;
  uint64_t shards = 0;
};

struct PackOptions {
  ShardFormat format = ShardFormat::kNative;
  // A shard is sealed before it would grow past this many bytes (a single
  // sample larger than this gets a shard of its own).
  uint64_t shard_size = 256ull << 20;
  // Also seal after this many samples; 0 = no limit.
  uint64_t shard_samples = 0;
  // Add a derived field "cls" holding the name of each file's parent folder.
  bool label_from_dir = false;
  // Threads reading source files; the writer is one more.
  int jobs = 1;
  // Skip files that cannot be read (permission denied, vanished, special
  // files) with a warning and a line in the manifest, instead of failing.
  bool skip_unreadable = false;
  // fsync shards and the manifest (off only for benchmarks on scratch disks).
  bool sync = true;
  // Bytes of source files read ahead of the writer.
  uint64_t max_inflight_bytes = 64ull << 20;
  // How shard and archive SRCs are read (limits, tsv columns).
  ReadOptions read;
  // zip only: deflate level of the fields written (0 stores them).
  int zip_deflate_level = 0;
  // tar.gz only: zlib level of each shard's gzip stream (1-9).
  int gzip_level = 6;
  // Overwrite a finished dataset made with other arguments.
  bool force = false;
  // Part `part` of `parts` independent parts of this pack (pack --part I/N,
  // for N machines or a cluster's array job): the samples from position
  // floor(T*I/N) to floor(T*(I+1)/N) of the T the sources hold, in the
  // order a whole pack writes them, into the dataset OUT/part-I-of-N.
  // MergeParts(OUT) then joins the N parts into the dataset OUT, which
  // lists the same samples in the same order as one pack of the whole.
  uint64_t part = 0, parts = 1;

  std::function<void(const PackProgress&)> progress;  // called now and then
  std::function<void(const std::string&)> warn;       // one line per warning
};

struct PackResult {
  uint64_t samples = 0;
  uint64_t shards = 0;
  uint64_t bytes_in = 0;   // source field bytes (derived fields excluded)
  uint64_t bytes_out = 0;  // shard files
  uint64_t skipped = 0;    // files skipped with a warning
  uint64_t resumed_samples = 0;  // samples kept from an interrupted run
  bool already_complete = false;
};

// Packs `sources` (folders or tar files) into the dataset folder `out`.
Result<PackResult> Pack(const std::vector<std::string>& sources, const std::string& out,
                        const PackOptions& options);

// "part-I-of-N": the folder of part I of N inside OUT.
std::string PartFolderName(uint64_t part, uint64_t parts);

// Joins the finished parts OUT/part-I-of-N (I = 0..N-1, one pack job: the
// same sources and options) into the dataset OUT: its manifest lists every
// part's shards in part order, checksums taken from the parts' manifests (no
// byte is read or moved). A part missing or unfinished, parts of different
// jobs or of different N, or OUT already a different dataset are
// InvalidArgument/NotFound naming what to do. Rerunning it is harmless.
// OUT may be an s3:// folder the parts were packed to (`pack --part I/N -o
// s3://...`): its listing finds them, and the manifest is uploaded last.
Result<Manifest> MergeParts(const std::string& out, bool sync = true,
                            const RemoteOptions& remote = {});

}  // namespace shardset

#endif  // SHARDSET_PACK_H_
