// Gzip-compressed tars read in place: sequentially at zlib speed, and at
// random through a checkpoint index sidecar (docs/formats/targz-index.md).
#ifndef SHARDSET_FORMATS_TARGZ_TARGZ_SHARD_H_
#define SHARDSET_FORMATS_TARGZ_TARGZ_SHARD_H_

#include <memory>
#include <string>
#include <vector>

#include "formats/archive_entry.h"
#include "formats/probe.h"
#include "shardset/shard.h"

namespace shardset::targz {

// True when the probe's bytes are this format (by content, never by name).
bool Looks(const Probe& probe);

Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options);

// Builds the sidecar index of `path` atomically (`shardset index`); returns
// the number of samples indexed.
Result<uint64_t> WriteIndex(const std::string& path, const ReadOptions& options, bool sync);
// The sidecar files of `path` that WriteIndex writes and Open reads.
std::vector<std::string> SidecarPaths(const std::string& path);

// Every entry of the archive, for `ls --entries` and the conformance test.
Status ForEachEntry(const std::string& path, const ReadOptions& options,
                    const EntryVisitor& visit);

}  // namespace shardset::targz

#endif  // SHARDSET_FORMATS_TARGZ_TARGZ_SHARD_H_
