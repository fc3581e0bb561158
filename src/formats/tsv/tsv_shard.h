// TSV files: one sample per line, tab-separated columns, binary columns in
// base64, with the .lineidx / .lineidx.8b row-offset sidecars (docs/formats/tsv.md).
#ifndef SHARDSET_FORMATS_TSV_TSV_SHARD_H_
#define SHARDSET_FORMATS_TSV_TSV_SHARD_H_

#include <memory>
#include <string>
#include <vector>

#include "formats/archive_entry.h"
#include "formats/probe.h"
#include "shardset/shard.h"

namespace shardset::tsv {

// True when the probe's bytes are this format (by content, never by name).
bool Looks(const Probe& probe);

Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options);

// Writes a shard of this format atomically (temporary name, fsync, rename).
Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options);

// Builds the sidecar index of `path` atomically (`shardset index`); returns
// the number of samples indexed.
Result<uint64_t> WriteIndex(const std::string& path, const ReadOptions& options, bool sync);
// The sidecar files of `path` that WriteIndex writes and Open reads.
std::vector<std::string> SidecarPaths(const std::string& path);

}  // namespace shardset::tsv

#endif  // SHARDSET_FORMATS_TSV_TSV_SHARD_H_
