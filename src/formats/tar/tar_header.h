// Tar header blocks: the POSIX ustar layout and its GNU, star and v7
// variants, and pax extended-header records (docs/formats/tar.md).
//
// Everything here is a pure function of bytes (no IO, no state), so the
// scanner (tar_scan.h) and the writer (tar_shard.cc) share one definition of
// every field. Decoders take untrusted bytes and never read outside the
// string_views they are given.
#ifndef SHARDSET_FORMATS_TAR_TAR_HEADER_H_
#define SHARDSET_FORMATS_TAR_TAR_HEADER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/status.h"

namespace shardset::tar {

inline constexpr size_t kBlockSize = 512;
// GNU tar and Python tarfile pad archives to 20 blocks; so do we
// (docs/formats/tar.md "What we write").
inline constexpr size_t kRecordSize = 20 * kBlockSize;

// Limits that protect the reader from hostile files (docs/formats/tar.md
// "Limits"). A GNU long name ('L') longer than this is Corruption: no file
// system has such paths. A pax header larger than this is ResourceExhausted.
inline constexpr uint64_t kMaxLongNameBytes = 64 * 1024;
inline constexpr uint64_t kMaxPaxHeaderBytes = 1024 * 1024;

// Values every member we write carries (docs/formats/tar.md "Deterministic
// headers"): the same samples always give the same bytes.
inline constexpr uint32_t kWriteMode = 0644;
inline constexpr uint64_t kWriteMtime = 0;  // 1970-01-01; change here only
// The largest size an octal ustar size field holds (8 GiB - 1); larger sizes
// go in a pax "size" record.
inline constexpr uint64_t kMaxOctalSize = 077777777777;

// A field of the 512-byte header block: [offset, offset + size).
struct HeaderField {
  size_t offset, size;
};
// POSIX.1-2017 "ustar Interchange Format"; GNU and v7 share the first 257 bytes.
inline constexpr HeaderField kNameField{0, 100};
inline constexpr HeaderField kModeField{100, 8};
inline constexpr HeaderField kUidField{108, 8};
inline constexpr HeaderField kGidField{116, 8};
inline constexpr HeaderField kSizeField{124, 12};
inline constexpr HeaderField kMtimeField{136, 12};
inline constexpr HeaderField kChecksumField{148, 8};
inline constexpr size_t kTypeflagOffset = 156;
inline constexpr HeaderField kMagicField{257, 6};
inline constexpr HeaderField kVersionField{263, 2};
inline constexpr HeaderField kDevMajorField{329, 8};
inline constexpr HeaderField kDevMinorField{337, 8};
inline constexpr HeaderField kPrefixField{345, 155};
inline constexpr HeaderField kLinknameField{157, 100};
inline constexpr HeaderField kGnuAtimeField{345, 12};
// Old GNU sparse headers ('S'): up to 4 (offset, numbytes) pairs in the
// header, a flag saying extension blocks follow, and the expanded size.
inline constexpr size_t kGnuSparseOffset = 386;
inline constexpr size_t kGnuSparseEntries = 4;
inline constexpr size_t kGnuSparseEntrySize = 24;  // offset[12], numbytes[12]
inline constexpr size_t kGnuIsExtendedOffset = 482;
inline constexpr HeaderField kGnuRealSizeField{483, 12};
// A sparse extension block: 21 pairs, then its own "is extended" flag.
inline constexpr size_t kGnuSparseExtEntries = 21;
inline constexpr size_t kGnuSparseExtFlagOffset = 504;
// star keeps atime/ctime after a 131-byte prefix and marks it with "tar\0".
inline constexpr size_t kStarPrefixSize = 131;
inline constexpr HeaderField kStarTrailerField{508, 4};

inline constexpr std::string_view kUstarMagic{"ustar\0", 6};
inline constexpr std::string_view kUstarVersion{"00", 2};
inline constexpr std::string_view kGnuMagic{"ustar ", 6};  // version " \0"

enum class Dialect { kV7, kUstar, kGnu, kStar };

// One header block, decoded, before any extended header is applied.
struct Header {
  Dialect dialect = Dialect::kV7;
  char typeflag = '\0';
  // name, or prefix + "/" + name for ustar and star; raw bytes up to the
  // first NUL of each field.
  std::string path;
  uint64_t size = 0;  // the size field; see HasData() for whether data follows
  std::string linkname;  // raw bytes up to the first NUL
  uint32_t mode = 0;     // permission and type bits as stored; 0 if malformed
  int64_t mtime = 0;     // unix seconds; 0 if malformed
};

// True when every byte of `block` is zero (the end-of-archive marker).
bool IsZeroBlock(std::string_view block);
// True when the checksum field of `block` (512 bytes) matches the sum of its
// bytes, counted unsigned or signed (GNU tar accepts both; old Sun and
// Apple tars summed signed chars), with the checksum field as spaces.
bool ChecksumMatches(std::string_view block);
// A numeric field: octal digits padded with spaces or NULs, or GNU base-256
// (high bit of the first byte set). nullopt when malformed, negative or over
// 2^63 - 1.
std::optional<uint64_t> ParseNumber(std::string_view field);
// A decimal number as pax records hold it (leading zeros allowed).
std::optional<uint64_t> ParseDecimal(std::string_view s);
// Decodes a 512-byte block that is not all zeros. Corruption (message without
// the file name: the caller knows where the block is) on a checksum mismatch
// or a malformed size field.
Status DecodeHeader(std::string_view block, Header* out);

// Typeflags (POSIX, plus the GNU and Solaris extensions we act on).
inline constexpr char kRegular = '0', kRegularOld = '\0', kContiguous = '7';
inline constexpr char kPaxLocal = 'x', kPaxSolaris = 'X', kPaxGlobal = 'g';
inline constexpr char kGnuLongName = 'L', kGnuLongLink = 'K';
inline constexpr char kGnuSparse = 'S', kGnuMultiVolume = 'M';

inline constexpr char kHardlink = '1', kSymlink = '2', kDirectory = '5';
inline constexpr char kGnuVolumeLabel = 'V';

bool IsRegularType(char typeflag);
// False for the types whose size field does not count data blocks: links,
// devices, FIFOs and directories (as Go archive/tar and Python tarfile read
// them; some old writers put the target's size in a hard link's header).
bool HasData(char typeflag);

// What a pax extended header ('x') says about the next member. Only the
// records shardset acts on are kept; others are ignored.
struct PaxHeader {
  std::optional<std::string> path;
  std::optional<std::string> linkpath;
  std::optional<uint64_t> size;
  std::optional<int64_t> mtime;  // whole seconds, rounded towards -inf
  bool sparse = false;  // any GNU.sparse.* record: data is not the file
  // GNU sparse in pax (formats 0.0, 0.1 and 1.0, docs/formats/tar.md
  // "Sparse files"): the version, the real name and size, and the map of
  // (offset, numbytes) pairs for 0.0 (repeated records) and 0.1 ("map").
  std::string sparse_major, sparse_minor;
  std::optional<std::string> sparse_name;
  std::optional<uint64_t> sparse_size;
  std::vector<uint64_t> sparse_map;
  bool has_sparse_map = false;
};
// Applies the records in `data` ("<len> <key>=<value>\n"...) to *out; later
// records win, an empty value unsets. Corruption (message without the file
// name) when a record is malformed, a key holds a NUL, a path holds a NUL, a
// size or sparse number is not a decimal number or an mtime not a decimal
// time (as Go's archive/tar, which rejects these headers too).
Status ParsePaxRecords(std::string_view data, PaxHeader* out);
// Appends one pax record, its length prefix computed as POSIX specifies.
void AppendPaxRecord(std::string* out, std::string_view key, std::string_view value);

// The ustar (prefix, name) split of `path` as GNU tar chooses it (the longest
// prefix of at most 155 bytes ending before a '/', leaving a name of 1 to 100
// bytes), or nullopt when no split fits. Paths of at most 100 bytes have an
// empty prefix.
std::optional<std::pair<std::string_view, std::string_view>> SplitUstarPath(
    std::string_view path);

// The header blocks that precede the data of a regular member `path` of
// `size` bytes: a pax 'x' header when `path` is not ASCII, does not fit the
// ustar name fields or `size` exceeds kMaxOctalSize, then the ustar header.
// Deterministic (kWriteMode, kWriteMtime, uid/gid 0, no user names).
std::string EncodeMemberHeaders(std::string_view path, uint64_t size);

// Bytes of zero padding that follow `size` bytes of data.
inline uint64_t PaddingAfter(uint64_t size) {
  return (kBlockSize - size % kBlockSize) % kBlockSize;
}

}  // namespace shardset::tar

#endif  // SHARDSET_FORMATS_TAR_TAR_HEADER_H_
