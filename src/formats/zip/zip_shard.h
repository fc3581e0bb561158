// Zip archives read in place through their central directory, and written
// stored or deflated (docs/formats/zip.md).
#ifndef SHARDSET_FORMATS_ZIP_ZIP_SHARD_H_
#define SHARDSET_FORMATS_ZIP_ZIP_SHARD_H_

#include <memory>
#include <string>
#include <vector>

#include "formats/archive_entry.h"
#include "formats/probe.h"
#include "shardset/shard.h"

namespace shardset::zip {

// True when the probe's bytes are this format (by content, never by name).
bool Looks(const Probe& probe);

Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options);

// Writes a shard of this format atomically (temporary name, fsync, rename).
Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options);

// Every entry of the archive, for `ls --entries` and the conformance test.
Status ForEachEntry(const std::string& path, const ReadOptions& options,
                    const EntryVisitor& visit);

}  // namespace shardset::zip

#endif  // SHARDSET_FORMATS_ZIP_ZIP_SHARD_H_
