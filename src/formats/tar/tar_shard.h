// Tar shards: POSIX ustar + pax, as GNU tar, bsdtar, Python tarfile and
// WebDataset read and write them (docs/formats/tar.md).
//
// Members are grouped into samples by key, the WebDataset way: the key is the
// member path up to the first dot of its basename ("dir/0042.png" -> key
// "dir/0042", field "png"); consecutive members with the same key form one
// sample. Random access comes from an index (src/index, not contiguous) kept
// in a sidecar file "<tar>.idx" (docs/formats/tar-index.md) or, when there is
// none, built by one scan at open.
#ifndef SHARDSET_FORMATS_TAR_TAR_SHARD_H_
#define SHARDSET_FORMATS_TAR_TAR_SHARD_H_

#include <memory>
#include <string>
#include <string_view>

#include "shardset/shard.h"

namespace shardset::tar {

// The sidecar index of `tar_path`.
std::string SidecarPath(const std::string& tar_path);

// True when `prefix` (the first 512 bytes of a file, or fewer) is a tar
// header: a valid header checksum (ustar magic or old-style v7), or a zero
// block (an empty archive, as Create writes for a shard with no samples).
bool LooksTar(std::string_view prefix);

// Opens a tar shard. Uses the sidecar when it exists and matches the tar
// (the size, mtime and edge hash recorded in it): a stale sidecar (size or
// mtime differ) is InvalidArgument, one whose edge hash differs is Corruption;
// both messages say to rerun `shardset index`. Without a sidecar, reads the
// whole tar once to build the index in memory (checksums included), so a
// large tar opens faster with a sidecar. Errors in the tar's structure are
// Corruption naming the member; GNU sparse members are NotSupported.
Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options);

// Writes a tar shard; with options.sidecar_index also its sidecar, written after
// the tar is committed (a crash in between leaves a tar without a sidecar,
// which opens by scanning). Add() refuses (InvalidArgument) samples that
// would not read back as themselves: no fields, a field twice, names that
// split at another '.' or are not plain relative paths, and a sample whose
// key equals the previous sample's key with no field in common (readers would
// merge them). Field flags are not stored.
Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options);

// Scans `path` and writes its sidecar index atomically, replacing an old one
// (`shardset index`). Returns the number of samples indexed.
Result<uint64_t> WriteIndex(const std::string& path, const ReadOptions& options, bool sync);

}  // namespace shardset::tar

#endif  // SHARDSET_FORMATS_TAR_TAR_SHARD_H_
