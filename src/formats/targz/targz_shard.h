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

// Writes a tar.gz shard (targz_writer.cc): the tar that tar::Create writes
// for the same samples (same members, headers and end of archive; the same
// samples refused), deflated by zlib in gzip mode at options.gzip_level
// (1-9, else InvalidArgument). With options.sidecar_index also its sidecar,
// after the file is committed, from what the writer recorded while
// compressing: no second pass (docs/formats/targz-index.md "Writing").
// bytes_written() is the compressed size so far, behind by what deflate
// still holds (at most one block).
Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options);

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
