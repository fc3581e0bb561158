// Zip archives read in place through their central directory, and written
// stored or deflated (docs/formats/zip.md).
//
// Regular-file entries are grouped into samples exactly as tar members are
// (formats/sample_key.h: "dir/0042.png" -> key "dir/0042", field "png";
// consecutive entries with one key form a sample until a field repeats).
// Directories and symlinks are entries but not samples.
#ifndef SHARDSET_FORMATS_ZIP_ZIP_SHARD_H_
#define SHARDSET_FORMATS_ZIP_ZIP_SHARD_H_

#include <memory>
#include <string>
#include <vector>

#include "formats/archive_entry.h"
#include "formats/probe.h"
#include "shardset/shard.h"

namespace shardset::zip {

// True when the probe's bytes are this format (by content, never by name): a
// local header at byte 0, or (data prepended, e.g. a self-extractor) an end
// record in the tail whose central directory is where it says, unless the
// file starts like a tar or gzip stream (which may end with a zip member).
bool Looks(const Probe& probe);

// Opens a zip: maps it and reads its central directory only (no local
// header is touched until a sample is read). Stored fields are views into the
// map, deflated ones are inflated into Sample::storage on each Read, CRC-32
// checked when options.verify_checksums. Find is a binary search, over the
// samples when their keys are sorted, else over a key-ordered permutation
// built at open. Errors name the zip and the entry: Corruption for damaged
// records, NotSupported for methods other than stored/deflate and encrypted
// entries (when read), ResourceExhausted past options' limits (naming the
// CLI flag). Thread-safe after Open.
Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options);

// Writes a shard of this format atomically (temporary name, fsync, rename):
// one entry "key.field" per field, stored, or deflated at
// options.zip_deflate_level (1-9) when that is smaller; CRC and sizes in the
// local headers, fixed times and attributes (the same samples give the same
// bytes), zip64 records past 65,534 entries or 4 GiB. Add() refuses
// (InvalidArgument) samples that would not read back as themselves, by the
// tar writer's rules plus UTF-8 names.
Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options);

// Every entry of the archive in central directory order, for `ls --entries`
// and the conformance test. The data reader decodes an entry (within
// `options`' limits and its `limit` argument); a symlink's target is read
// into ArchiveEntry::linkname before the visit.
Status ForEachEntry(const std::string& path, const ReadOptions& options,
                    const EntryVisitor& visit);

}  // namespace shardset::zip

#endif  // SHARDSET_FORMATS_ZIP_ZIP_SHARD_H_
