// Walking a tar archive: its members with extended headers applied, and the
// grouping of members into samples (docs/formats/tar.md "Reading" and
// "Samples"). Used by the reader's scan at open, by `shardset index` and by
// Verify; all work on the bytes of a memory-mapped tar.
#ifndef SHARDSET_FORMATS_TAR_TAR_SCAN_H_
#define SHARDSET_FORMATS_TAR_TAR_SCAN_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/tar/tar_header.h"
#include "index/index.h"
#include "shardset/status.h"

namespace shardset::tar {

// A regular-file member.
struct Member {
  std::string path;            // pax path > GNU long name > ustar fields; "./" removed
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

// Iterates over the regular-file members of the tar in `tar` (a whole file),
// in archive order. Directories, links, devices, FIFOs, volume labels, pax
// global headers and unknown types are skipped. The archive ends at its first
// zero block or at EOF on a block boundary.
//
// Every length is checked against the file before use. Errors name the tar
// (`tar_name`), the member or header offset and what to do: Corruption for a
// bad header checksum, a malformed number or pax record, or data past EOF;
// NotSupported for GNU sparse and multi-volume members (their bytes are not
// the file); ResourceExhausted past the limits in tar_header.h. After an
// error the walker keeps returning it.
class MemberWalker {
 public:
  MemberWalker(std::string_view tar, std::string_view tar_name);
  // The next member in *out and true, or false at the end of the archive.
  Result<bool> Next(Member* out);

 private:
  static constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();

  Result<bool> NextImpl(Member* out);
  // Decodes the header block at `header_at`, which must be whole.
  Status DecodeHeaderAt(uint64_t header_at, Header* h) const;
  // Consumes an extension header ('x', 'g', 'L', 'K'); false for a member.
  Result<bool> ReadExtension(char typeflag, uint64_t header_at, std::string_view payload);
  // Ends the member whose last header has `typeflag`: clears the extended
  // header state; true when it is a regular file.
  Result<bool> EndMember(char typeflag, const std::string& path);
  // The size of the data that follows header `h`.
  uint64_t DataSize(const Header& h) const;
  Status HeaderError(Status::Code code, uint64_t header_at, std::string_view what) const;
  Status MemberError(Status::Code code, std::string_view path, uint64_t header_at,
                     std::string_view what) const;

  std::string_view tar_, tar_name_;
  uint64_t pos_ = 0;
  uint64_t chain_start_ = kNone;  // first header of the member being read
  uint64_t last_member_at_ = 0;   // first header of the member last ended
  PaxHeader pax_;                 // from this member's 'x' headers
  std::optional<std::string> long_name_;  // from this member's 'L' header
  std::string last_path_;                 // for messages
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

// Walks `tar` and groups consecutive members with the same key into samples;
// a member whose field the current sample already has starts a new sample
// with the same key. Calls `on_sample` for each sample in order and stops at
// the first error (its own or the walker's). ResourceExhausted for a key over
// index::kMaxKeyBytes or a sample over index::kMaxFields fields.
Status ForEachSample(std::string_view tar, std::string_view tar_name,
                     const std::function<Status(const ScannedSample&)>& on_sample);

// Scans `tar` into *builder (not contiguous): field offsets are absolute in
// the tar, checksums are XXH3 over each sample's field bytes. Reads every
// byte once.
Status BuildIndex(std::string_view tar, std::string_view tar_name, index::IndexBuilder* builder);

}  // namespace shardset::tar

#endif  // SHARDSET_FORMATS_TAR_TAR_SCAN_H_
