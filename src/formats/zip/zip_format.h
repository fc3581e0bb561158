// Zip records (PKWARE APPNOTE 6.3.10): the end records, the central
// directory and local headers as shardset reads them, and the decoding of an
// entry's bytes (docs/formats/zip.md "Reading").
//
// Everything works on a whole file in memory (a read-only map) and checks
// every length against it before use: nothing is allocated for what an
// archive merely claims. Errors name the file and the entry (its name and its
// position in the central directory) and say what to do.
#ifndef SHARDSET_FORMATS_ZIP_ZIP_FORMAT_H_
#define SHARDSET_FORMATS_ZIP_ZIP_FORMAT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "formats/archive_entry.h"
#include "shardset/shard.h"
#include "shardset/status.h"

namespace shardset::zip {

// Record signatures (APPNOTE 4.3.7, 4.3.12, 4.3.14-16, 4.3.9.3).
inline constexpr uint32_t kLocalSig = 0x04034b50;       // "PK\3\4"
inline constexpr uint32_t kCentralSig = 0x02014b50;     // "PK\1\2"
inline constexpr uint32_t kEndSig = 0x06054b50;         // "PK\5\6"
inline constexpr uint32_t kEnd64Sig = 0x06064b50;       // "PK\6\6"
inline constexpr uint32_t kLocatorSig = 0x07064b50;     // "PK\6\7"
inline constexpr uint32_t kDescriptorSig = 0x08074b50;  // "PK\7\b"

// Fixed sizes of the records, without their variable parts.
inline constexpr uint64_t kLocalSize = 30;
inline constexpr uint64_t kCentralSize = 46;
inline constexpr uint64_t kEndSize = 22;
inline constexpr uint64_t kEnd64Size = 56;
inline constexpr uint64_t kLocatorSize = 20;
// The end record sits in the last kEndSize + 65,535 (its longest comment) bytes.
inline constexpr uint64_t kEndSearchBytes = kEndSize + 0xffff;

// Extra field ids (APPNOTE 4.5, 4.6).
inline constexpr uint16_t kZip64Extra = 0x0001;
inline constexpr uint16_t kNtfsExtra = 0x000a;
inline constexpr uint16_t kUnixExtra = 0x000d;
inline constexpr uint16_t kTimeExtra = 0x5455;         // Info-ZIP extended timestamp
inline constexpr uint16_t kInfoZipUnixExtra = 0x5855;  // Info-ZIP Unix, type 1
inline constexpr uint16_t kUnicodePathExtra = 0x7075;  // Info-ZIP Unicode path

// General purpose flags (APPNOTE 4.4.4).
inline constexpr uint16_t kFlagEncrypted = 0x0001;
inline constexpr uint16_t kFlagDescriptor = 0x0008;
inline constexpr uint16_t kFlagStrongEncryption = 0x0040;
inline constexpr uint16_t kFlagUtf8 = 0x0800;

inline constexpr uint16_t kMethodStored = 0;
inline constexpr uint16_t kMethodDeflate = 8;

// "stored", "deflate", "bzip2", ..., or "method N".
std::string MethodName(uint16_t method);

// The end of central directory record, and the zip64 one when present.
struct EndRecord {
  uint64_t offset = 0;   // of the "PK\5\6" record
  // Where the central directory ends: the zip64 end record, else `offset`.
  uint64_t dir_end = 0;
  uint64_t entries = 0;  // as recorded (16 bits unless zip64)
  uint64_t dir_size = 0, dir_offset = 0;  // as recorded
  bool zip64 = false;
  std::string_view comment;
};

// The central directory of a whole file, located.
struct Directory {
  EndRecord end;
  uint64_t start = 0;  // absolute offset of the first central header
  // Bytes of data prepended to the archive (a self-extractor's stub), added
  // to every recorded offset. Go's archive/zip rule: end.dir_end - dir_size -
  // dir_offset, unless a central header sits at the recorded offset itself.
  uint64_t base = 0;
  // Set by ForEachCentralHeader after the walk: where the headers end.
  uint64_t headers_end = 0;
};

// True when `tail`, the last bytes of a file of `file_size` bytes, ends like
// a zip: an end record whose comment fits, whose central directory lies
// inside the file and, where `tail` shows it, starts with a central header.
bool TailLooksLikeZip(std::string_view tail, uint64_t file_size);

// Finds the end records and the central directory of `file` (named `name` in
// messages). Corruption when there is no end record in the last
// kEndSearchBytes, when the last one's comment runs past the end of the file
// (never skipped for an earlier one: golang.org/issue/66869), or when the
// recorded directory does not lie inside the file.
Result<Directory> LocateDirectory(std::string_view file, std::string_view name);

// One central directory header, decoded.
struct CentralHeader {
  uint64_t index = 0;          // position in the central directory, from 0
  uint64_t record_offset = 0;  // of this central header
  uint16_t made_by = 0, flags = 0, method = 0;
  uint32_t crc = 0, external_attrs = 0;
  uint64_t compressed_size = 0, uncompressed_size = 0;
  uint64_t header_offset = 0;  // of the local header, Directory::base applied
  std::string_view raw_name, extra;
  // The name in UTF-8: the Info-ZIP Unicode path extra field when it matches
  // the raw name's CRC, else the raw name when it is valid UTF-8 (flagged or
  // not), else the raw name decoded from CP437 (what the spec says unflagged
  // names are). A flagged name that is not valid UTF-8 is kept as is.
  std::string name;
  // Go's reading: unix modes for Unix and macOS creators, MS-DOS attributes
  // for FAT/NTFS/VFAT creators; a name ending in '/' is a directory.
  ArchiveEntry::Type type = ArchiveEntry::Type::kFile;
  char typeflag = '0';  // '0' file, '5' directory, '2' symlink
  uint32_t mode = 0;    // permission bits
  // Unix seconds: the last of the extended timestamp, NTFS and Info-ZIP Unix
  // extra fields, else the MS-DOS time read as UTC (as Go does).
  int64_t mtime = 0;
};

// Calls `visit` for every central header of `file` in order; stops at the
// first non-OK status. ResourceExhausted (naming --max-entries) when the end
// record or the directory holds more than options.max_entries; Corruption
// when the recorded count cannot fit in the bytes after the directory's start
// (kCentralSize bytes at least each) or does not match the headers found
// (modulo 65,536 without zip64, as Go and Info-ZIP allow). `located`, when
// given, receives the directory before the first visit (its entry count is
// then known to fit in the file) and its headers_end after the last.
Status ForEachCentralHeader(std::string_view file, std::string_view name,
                            const ReadOptions& options,
                            const std::function<Status(const CentralHeader&)>& visit,
                            Directory* located = nullptr);

// What reading an entry's bytes needs from its central header.
struct EntryLoc {
  uint64_t header_offset = 0;
  uint64_t compressed_size = 0, uncompressed_size = 0;
  uint32_t crc = 0;
  uint16_t method = 0, flags = 0;
};
EntryLoc LocOf(const CentralHeader& h);

// A local file header with its zip64 extra field applied.
struct LocalHeader {
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t compressed_size = 0, uncompressed_size = 0;
  std::string_view raw_name, extra;
  uint64_t data_offset = 0;  // of the entry's stored bytes
};

// Parses the local header at `offset`. Corruption with a message fragment
// (no file or entry name) when it is not one or does not fit in the file.
Result<LocalHeader> ReadLocalHeader(std::string_view file, uint64_t offset);

// The entry's stored (maybe compressed) bytes, found through its local
// header. Corruption fragments as ReadLocalHeader.
Result<std::string_view> StoredBytes(std::string_view file, const EntryLoc& e);

// Whether the entry can be decoded within `options`: NotSupported for
// encrypted entries and methods other than stored and deflate,
// ResourceExhausted (naming --max-field-bytes or --max-ratio) past the
// limits, Corruption for a stored entry whose two sizes differ. Fragments.
Status CheckDecodable(const EntryLoc& e, const ReadOptions& options);

// Decodes stored bytes `raw` into exactly e.uncompressed_size bytes at `out`
// (stored: a copy; deflate: raw inflate, never writing more), and checks the
// CRC-32 when
// `verify_crc`. Corruption fragments when the stream is damaged, longer or
// shorter than declared, or the CRC differs. Call CheckDecodable first.
Status Decode(const EntryLoc& e, std::string_view raw, char* out, bool verify_crc);
// CRC-32 check of bytes that need no decoding (a stored entry).
Status CheckCrc(const EntryLoc& e, std::string_view data);

// "<file>: entry '<name>' (#<index> in the central directory)": where an
// entry is, for messages.
std::string EntryWhere(std::string_view file, std::string_view entry_name, uint64_t index);
// "<where>: <fragment>; <what to do>", with the fragment's code.
Status EntryError(const Status& fragment, std::string_view where);

// Helpers shared with the writer and tests.
std::string Cp437ToUtf8(std::string_view raw);
// MS-DOS date and time (APPNOTE 4.4.6) as unix seconds, read as UTC; out of
// range fields roll over like Go's time.Date (date 0 is 1979-11-30).
int64_t DosTimeToUnix(uint16_t dos_date, uint16_t dos_time);

}  // namespace shardset::zip

#endif  // SHARDSET_FORMATS_ZIP_ZIP_FORMAT_H_
