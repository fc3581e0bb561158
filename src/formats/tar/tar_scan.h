// Walking a tar archive: its entries with extended headers applied, the
// regular-file members among them, and the grouping of members into samples
// (docs/formats/tar.md "Reading" and "Samples"). Used by the reader's scan at
// open, by `shardset index`, by Verify and by `ls --entries`; all read the
// tar through a TarSource (a memory map, or a tar.gz's inflating stream).
#ifndef SHARDSET_FORMATS_TAR_TAR_SCAN_H_
#define SHARDSET_FORMATS_TAR_TAR_SCAN_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/archive_entry.h"
#include "formats/tar/tar_header.h"
#include "formats/tar/tar_source.h"
#include "index/index.h"
#include "shardset/shard.h"
#include "shardset/status.h"

namespace shardset::tar {

// A run of a sparse file's data: `size` stored bytes that belong at logical
// offset `offset`; the rest of the file is zeros.
struct SparseChunk {
  uint64_t offset = 0, size = 0;
};

// One archive entry with its extended headers applied.
struct Entry {
  // name: pax path > GNU long name > ustar fields, raw (no "./" stripping);
  // for GNU sparse in pax, GNU.sparse.name. typeflag: '\0' reads as '0', or
  // '5' with a trailing slash (as Go's archive/tar). size: the expanded size
  // of a sparse file; 0 for links.
  ArchiveEntry info;
  uint64_t header_offset = 0;  // of its first header block, extended headers included
  uint64_t data_offset = 0;    // of its stored data (after a sparse 1.0 map)
  uint64_t stored_size = 0;    // bytes of stored data
  bool sparse = false;
  std::vector<SparseChunk> chunks;  // sparse only, in stored order
  // The archive ends inside this entry's data: the entry's headers parsed,
  // reading its data fails, and the walk fails after it.
  bool truncated = false;
};

// Walks every entry of a tar in archive order: files, directories, links,
// devices, pax global headers ('g', reported as entries the way Go does).
// GNU volume labels are skipped. The archive ends at its first zero block or
// at EOF on a block boundary.
//
// Every length is checked against the limits before anything is read or
// allocated, and against the file where its size is known. Errors name the
// tar (`tar_name`), the entry or header offset and what to do: Corruption
// for a bad header checksum, a malformed number or pax record, or data past
// EOF; ResourceExhausted past the limits in tar_header.h. After an error the
// walker keeps returning it.
class EntryWalker {
 public:
  EntryWalker(TarSource* source, std::string_view tar_name);
  // The next entry in *out and true, or false at the end of the archive.
  Result<bool> Next(Entry* out);
  // The data of `e` (the entry Next returned last), expanded if sparse; at
  // most `limit` bytes (ResourceExhausted past it, naming the entry).
  Result<std::string> ReadData(const Entry& e, uint64_t limit);

  std::string_view tar_name() const { return tar_name_; }
  Status HeaderError(Status::Code code, uint64_t header_at, std::string_view what) const;
  Status EntryError(Status::Code code, std::string_view name, uint64_t header_at,
                    std::string_view what) const;

 private:
  static constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();

  Result<bool> NextImpl(Entry* out);
  // Reads and decodes the header block at `header_at`; *raw keeps its bytes.
  Status ReadHeaderAt(uint64_t header_at, Header* h, std::string* raw);
  // Consumes an extension header ('x', 'X', 'L', 'K'); false for an entry.
  Result<bool> ReadExtension(char typeflag, uint64_t header_at, uint64_t size);
  // The stored data of a pax header or long name: all `size` bytes or an error.
  Result<std::string_view> ReadPayload(uint64_t header_at, uint64_t data, uint64_t size);
  // Old GNU sparse ('S'): the map in the header and its extension blocks.
  Status ReadOldGnuSparse(std::string_view block, uint64_t header_at, Entry* e);
  // Pax GNU sparse 1.0: the map at the start of the data.
  Status ReadSparseMap10(uint64_t header_at, Entry* e);
  Status CheckSparse(const Entry& e) const;
  uint64_t DataSize(const Header& h) const;

  TarSource* src_;
  std::string_view tar_name_;
  uint64_t pos_ = 0;
  uint64_t chain_start_ = kNone;  // first header of the entry being read
  uint64_t data_end_ = 0;         // end of the last entry's data
  PaxHeader pax_;                 // from this entry's 'x' headers
  std::optional<std::string> long_name_, long_link_;  // from 'L' / 'K' headers
  std::optional<std::string> global_path_;            // a 'g' header's own name
  std::string last_name_;                             // for messages
  Status error_;
};

// Walks every entry of the tar read from `source`; `visit` may read the
// entry's data through its EntryDataReader. `options` bounds what is read.
Status ForEachEntry(TarSource* source, std::string_view tar_name, const ReadOptions& options,
                    const EntryVisitor& visit);

// A regular-file member, as samples are made of.
struct Member {
  std::string path;            // the entry's name without leading "./"
  uint64_t header_offset = 0;  // of its first header block, extended headers included
  uint64_t data_offset = 0;
  uint64_t size = 0;
};

// `path` without leading "./" components ("././a/b" -> "a/b").
std::string_view NormalizeMemberPath(std::string_view path);

// The key and field a member path stands for: the key ends at the first '.'
// of the basename that is not the basename's first byte ("dir/0042.png" ->
// "dir/0042" + "png", ".hidden.png" -> ".hidden" + "png", "README" ->
// "README" + ""). Views into `path`.
struct KeyField {
  std::string_view key, field;
  bool operator==(const KeyField&) const = default;
};
KeyField SplitMemberPath(std::string_view path);

// The regular-file members of a tar, in archive order (an EntryWalker that
// skips directories, links, devices, FIFOs and pax global headers). Errors
// are the EntryWalker's, plus NotSupported for GNU sparse and multi-volume
// members (their bytes in the archive are not the file: shardset cannot map
// them) and Corruption for a member whose data passes the end of the file.
class MemberWalker {
 public:
  MemberWalker(TarSource* source, std::string_view tar_name);
  // The next member in *out and true, or false at the end of the archive.
  Result<bool> Next(Member* out);

 private:
  EntryWalker entries_;
  Status error_;
};

struct ScannedField {
  std::string name;
  uint64_t offset = 0, size = 0;
};
struct ScannedSample {
  std::string key;
  std::vector<ScannedField> fields;  // in member order
};

// Walks the tar and groups consecutive members with the same key into
// samples; a member whose field the current sample already has starts a new
// sample with the same key. Calls `on_sample` for each sample in order and
// stops at the first error (its own or the walker's). ResourceExhausted for a
// key over index::kMaxKeyBytes or a sample over index::kMaxFields fields.
Status ForEachSample(TarSource* source, std::string_view tar_name,
                     const std::function<Status(const ScannedSample&)>& on_sample);
Status ForEachSample(std::string_view tar, std::string_view tar_name,
                     const std::function<Status(const ScannedSample&)>& on_sample);

// Scans the tar into *builder (not contiguous): field offsets are absolute in
// the (uncompressed) tar, checksums are XXH3 over each sample's field bytes,
// read through `source` in pieces of at most TarSource::kMaxRead. Reads every
// byte once, forward. ResourceExhausted past options.max_entries members.
Status BuildIndex(TarSource* source, std::string_view tar_name, index::IndexBuilder* builder,
                  const ReadOptions& options = {});
Status BuildIndex(std::string_view tar, std::string_view tar_name, index::IndexBuilder* builder);

}  // namespace shardset::tar

#endif  // SHARDSET_FORMATS_TAR_TAR_SCAN_H_
