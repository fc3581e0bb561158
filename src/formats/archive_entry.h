// Archive entries: every member of a tar or zip as the archive lists it
// (files, directories, links, pax global headers, ...), before members are
// grouped into samples. `shardset ls --entries` prints them, and the
// conformance test (src/formats/conformance_test.cc) compares them with what
// other tools' test suites expect.
#ifndef SHARDSET_FORMATS_ARCHIVE_ENTRY_H_
#define SHARDSET_FORMATS_ARCHIVE_ENTRY_H_

#include <cstdint>
#include <functional>
#include <string>

#include "shardset/shard.h"
#include "shardset/status.h"

namespace shardset {

struct ArchiveEntry {
  enum class Type { kFile, kDirectory, kSymlink, kHardlink, kCharDevice, kBlockDevice, kFifo, kOther };
  // The name as stored (after pax / GNU long-name headers for tar), bytes
  // unchanged: no "./" stripping, no '\\' rewriting, no charset conversion
  // except zip's CP437 names, which are decoded to UTF-8 like Go and CPython do.
  std::string name;
  Type type = Type::kFile;
  // tar: the raw typeflag ('0', '5', 'S', 'g', ...); zip: '0' file, '5'
  // directory, '2' symlink.
  char typeflag = '0';
  // The logical size: a sparse file's expanded size, a zip entry's
  // uncompressed size.
  uint64_t size = 0;
  std::string linkname;  // links only
  uint32_t mode = 0;     // permission bits
  int64_t mtime = 0;     // unix seconds
};

// Reads the data of the entry being visited, at most `limit` bytes
// (ResourceExhausted past it). Valid only during the visit.
using EntryDataReader = std::function<Result<std::string>(uint64_t limit)>;
// Called for each entry in archive order; a non-OK status stops the walk and
// is returned.
using EntryVisitor = std::function<Status(const ArchiveEntry&, const EntryDataReader&)>;

// Walks every entry of the archive at `path` (tar, tar.gz or zip, recognised
// by content). Errors name the file and the entry, as readers' do.
// `options` bounds what is read (max_entries, max_field_bytes, max_ratio).
Status ForEachEntry(const std::string& path, const ReadOptions& options,
                    const EntryVisitor& visit);

// "file", "dir", "symlink", "hardlink", "char", "block", "fifo", "other"
// (the words libarchive's tests use).
std::string_view EntryTypeName(ArchiveEntry::Type t);

}  // namespace shardset

#endif  // SHARDSET_FORMATS_ARCHIVE_ENTRY_H_
