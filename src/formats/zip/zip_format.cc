#include "formats/zip/zip_format.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/strings.h"

namespace shardset::zip {
namespace {

constexpr uint32_t kMax32 = 0xffffffff;
constexpr uint16_t kMax16 = 0xffff;
constexpr std::string_view kDamaged = "the zip is truncated or damaged: restore or re-download it";

// Little-endian fields at `p`; callers have checked the bounds.
uint16_t U16(std::string_view s, uint64_t p) {
  return static_cast<uint16_t>(static_cast<unsigned char>(s[p]) |
                               static_cast<unsigned char>(s[p + 1]) << 8);
}
uint32_t U32(std::string_view s, uint64_t p) { return DecodeFixed32(s.data() + p); }
uint64_t U64(std::string_view s, uint64_t p) { return DecodeFixed64(s.data() + p); }

bool HasSig(std::string_view s, uint64_t p, uint32_t sig) {
  return p <= s.size() && s.size() - p >= 4 && U32(s, p) == sig;
}

// Offset of the last end record signature in the last kEndSearchBytes of
// `s`, if any.
std::optional<uint64_t> LastEndSig(std::string_view s) {
  if (s.size() < kEndSize) return std::nullopt;
  const uint64_t lowest = s.size() - std::min<uint64_t>(s.size(), kEndSearchBytes);
  for (uint64_t i = s.size() - kEndSize + 1; i-- > lowest;) {
    if (s[i] == 'P' && s[i + 1] == 'K' && s[i + 2] == 5 && s[i + 3] == 6) return i;
  }
  return std::nullopt;
}

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; });
}

bool EndHasZip64Markers(uint64_t entries, uint64_t dir_size, uint64_t dir_offset) {
  return entries == kMax16 || dir_size == kMax32 || dir_offset == kMax32;
}

// True when a whole central header (with its variable parts) starts at `p`.
bool CentralHeaderAt(std::string_view file, uint64_t p) {
  if (!HasSig(file, p, kCentralSig) || file.size() - p < kCentralSize) return false;
  const uint64_t var = uint64_t{U16(file, p + 28)} + U16(file, p + 30) + U16(file, p + 32);
  return file.size() - p - kCentralSize >= var;
}

// Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic
// Gregorian date.
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// The extra fields of a header, in order. Stops at a field whose length runs
// past the end (as Go does: the rest is ignored).
template <typename Fn>
void ForEachExtra(std::string_view extra, Fn&& fn) {
  uint64_t p = 0;
  while (extra.size() - p >= 4) {
    const uint16_t tag = U16(extra, p);
    const uint16_t size = U16(extra, p + 2);
    if (extra.size() - p - 4 < size) break;
    fn(tag, extra.substr(p + 4, size));
    p += 4 + uint64_t{size};
  }
}

// Applies a zip64 extra field to the 32-bit fields that hold 0xffffffff, in
// the APPNOTE order (uncompressed size, compressed size, header offset).
// False when the field is too short for one of them.
bool ApplyZip64(std::string_view body, bool* need_usize, uint64_t* usize, bool* need_csize,
                uint64_t* csize, bool* need_offset, uint64_t* offset) {
  uint64_t p = 0;
  auto take = [&](bool* need, uint64_t* v) {
    if (need == nullptr || !*need) return true;
    if (body.size() - p < 8) return false;
    *v = U64(body, p);
    p += 8;
    *need = false;
    return true;
  };
  return take(need_usize, usize) && take(need_csize, csize) && take(need_offset, offset);
}

// Go's reading of the file type and permissions (FileHeader.Mode).
void DecodeMode(CentralHeader* h) {
  const unsigned creator = h->made_by >> 8;
  h->type = ArchiveEntry::Type::kFile;
  h->typeflag = '0';
  h->mode = 0;
  switch (creator) {
    case 3:     // Unix
    case 19: {  // macOS
      const uint32_t m = h->external_attrs >> 16;
      h->mode = m & 07777;
      switch (m & 0170000) {
        case 0040000: h->type = ArchiveEntry::Type::kDirectory, h->typeflag = '5'; break;
        case 0120000: h->type = ArchiveEntry::Type::kSymlink, h->typeflag = '2'; break;
        case 0020000: h->type = ArchiveEntry::Type::kOther, h->typeflag = '3'; break;
        case 0060000: h->type = ArchiveEntry::Type::kOther, h->typeflag = '4'; break;
        case 0010000: h->type = ArchiveEntry::Type::kOther, h->typeflag = '6'; break;
        case 0140000: h->type = ArchiveEntry::Type::kOther, h->typeflag = '0'; break;
        default: break;  // regular, or no type bits at all
      }
      break;
    }
    case 0:     // MS-DOS, OS/2 (FAT)
    case 11:    // NTFS
    case 14: {  // VFAT
      const bool dir = h->external_attrs & 0x10;
      h->mode = dir ? 0777 : 0666;
      if (h->external_attrs & 0x01) h->mode &= ~0222u;  // read-only
      if (dir) h->type = ArchiveEntry::Type::kDirectory, h->typeflag = '5';
      break;
    }
    default: break;
  }
  if (!h->name.empty() && h->name.back() == '/') {
    h->type = ArchiveEntry::Type::kDirectory;
    h->typeflag = '5';
  }
}

Status DirectoryError(std::string_view name, std::string_view what) {
  return Status::Corruption(fmt::format("{}: {}; {}", name, what, kDamaged));
}

Status ParseCentral(std::string_view file, std::string_view name, uint64_t pos, uint64_t index,
                    uint64_t base, CentralHeader* h) {
  auto cut = [&] {
    return DirectoryError(name, fmt::format("central header #{} at byte {} is cut off by the end "
                                            "of the file",
                                            index, pos));
  };
  if (file.size() - pos < kCentralSize) return cut();
  const uint16_t name_len = U16(file, pos + 28);
  const uint16_t extra_len = U16(file, pos + 30);
  const uint16_t comment_len = U16(file, pos + 32);
  if (file.size() - pos - kCentralSize < uint64_t{name_len} + extra_len + comment_len) return cut();
  h->index = index;
  h->record_offset = pos;
  h->made_by = U16(file, pos + 4);
  h->flags = U16(file, pos + 8);
  h->method = U16(file, pos + 10);
  const uint16_t dos_time = U16(file, pos + 12);
  const uint16_t dos_date = U16(file, pos + 14);
  h->crc = U32(file, pos + 16);
  const uint32_t csize32 = U32(file, pos + 20);
  const uint32_t usize32 = U32(file, pos + 24);
  h->external_attrs = U32(file, pos + 38);
  const uint32_t offset32 = U32(file, pos + 42);
  h->raw_name = file.substr(pos + kCentralSize, name_len);
  h->extra = file.substr(pos + kCentralSize + name_len, extra_len);
  h->compressed_size = csize32;
  h->uncompressed_size = usize32;
  uint64_t offset = offset32;
  bool need_usize = usize32 == kMax32, need_csize = csize32 == kMax32,
       need_offset = offset32 == kMax32;
  bool zip64_short = false;
  std::optional<int64_t> mtime;
  std::optional<std::string_view> unicode_name;
  ForEachExtra(h->extra, [&](uint16_t tag, std::string_view body) {
    switch (tag) {
      case kZip64Extra:
        if (!ApplyZip64(body, &need_usize, &h->uncompressed_size, &need_csize,
                        &h->compressed_size, &need_offset, &offset)) {
          zip64_short = true;
        }
        break;
      case kNtfsExtra: {
        // Reserved (4), then attributes: tag 1 of 24 bytes holds mtime, atime
        // and ctime in 100 ns ticks since 1601.
        for (uint64_t p = 4; body.size() >= p && body.size() - p >= 4;) {
          const uint16_t attr = U16(body, p), size = U16(body, p + 2);
          if (body.size() - p - 4 < size) break;
          if (attr == 1 && size == 24) {
            mtime = static_cast<int64_t>(U64(body, p + 4) / 10000000) - int64_t{11644473600};
          }
          p += 4 + uint64_t{size};
        }
        break;
      }
      case kUnixExtra:
      case kInfoZipUnixExtra:
        if (body.size() >= 8) mtime = U32(body, 4);
        break;
      case kTimeExtra:
        if (body.size() >= 5 && (body[0] & 1)) mtime = U32(body, 1);
        break;
      case kUnicodePathExtra:
        // Version 1, then the CRC-32 of the header's name, then the name in
        // UTF-8. A CRC that differs means the name was renamed since.
        if (body.size() >= 5 && body[0] == 1 &&
            U32(body, 1) == crc32_z(0, reinterpret_cast<const Bytef*>(h->raw_name.data()),
                                    h->raw_name.size()) &&
            IsValidUtf8(body.substr(5))) {
          unicode_name = body.substr(5);
        }
        break;
      default: break;
    }
  });
  // An uncompressed size of 0xffffffff without a zip64 field is taken as is
  // (Go's rule: 4 GiB - 1 byte files exist); the other two cannot be.
  if (zip64_short || need_csize || need_offset) {
    return DirectoryError(
        name, fmt::format("central header #{} ('{}') at byte {}: its {} 0xffffffff but its zip64 "
                          "extra field is {}",
                          index, EscapeForDisplay(Cp437ToUtf8(h->raw_name)), pos,
                          need_offset && !need_csize ? "offset is" : "sizes are",
                          zip64_short ? "too short" : "missing"));
  }
  if (offset > UINT64_MAX - base) {
    return DirectoryError(name, fmt::format("central header #{} at byte {}: its local header "
                                            "offset {} is out of range",
                                            index, pos, offset));
  }
  h->header_offset = offset + base;
  if (unicode_name) {
    h->name.assign(*unicode_name);
  } else if (IsAscii(h->raw_name) || IsValidUtf8(h->raw_name) || (h->flags & kFlagUtf8)) {
    h->name.assign(h->raw_name);
  } else {
    h->name = Cp437ToUtf8(h->raw_name);
  }
  h->mtime = mtime ? *mtime : DosTimeToUnix(dos_date, dos_time);
  DecodeMode(h);
  return Status::OK();
}

}  // namespace

std::string MethodName(uint16_t method) {
  switch (method) {
    case 0: return "stored";
    case 1: return "shrink";
    case 6: return "implode";
    case 8: return "deflate";
    case 9: return "deflate64";
    case 12: return "bzip2";
    case 14: return "lzma";
    case 93: return "zstd";
    case 95: return "xz";
    case 96: return "jpeg";
    case 97: return "wavpack";
    case 98: return "ppmd";
    case 99: return "aes";
    default: return fmt::format("method {}", method);
  }
}

std::string Cp437ToUtf8(std::string_view raw) {
  // Code points of bytes 0x80-0xff (Python's cp437 codec); 0x00-0x7f are ASCII.
  static constexpr uint16_t kHigh[128] = {
      0x00C7, 0x00FC, 0x00E9, 0x00E2, 0x00E4, 0x00E0, 0x00E5, 0x00E7, 0x00EA, 0x00EB, 0x00E8,
      0x00EF, 0x00EE, 0x00EC, 0x00C4, 0x00C5, 0x00C9, 0x00E6, 0x00C6, 0x00F4, 0x00F6, 0x00F2,
      0x00FB, 0x00F9, 0x00FF, 0x00D6, 0x00DC, 0x00A2, 0x00A3, 0x00A5, 0x20A7, 0x0192, 0x00E1,
      0x00ED, 0x00F3, 0x00FA, 0x00F1, 0x00D1, 0x00AA, 0x00BA, 0x00BF, 0x2310, 0x00AC, 0x00BD,
      0x00BC, 0x00A1, 0x00AB, 0x00BB, 0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562,
      0x2556, 0x2555, 0x2563, 0x2551, 0x2557, 0x255D, 0x255C, 0x255B, 0x2510, 0x2514, 0x2534,
      0x252C, 0x251C, 0x2500, 0x253C, 0x255E, 0x255F, 0x255A, 0x2554, 0x2569, 0x2566, 0x2560,
      0x2550, 0x256C, 0x2567, 0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256B,
      0x256A, 0x2518, 0x250C, 0x2588, 0x2584, 0x258C, 0x2590, 0x2580, 0x03B1, 0x00DF, 0x0393,
      0x03C0, 0x03A3, 0x03C3, 0x00B5, 0x03C4, 0x03A6, 0x0398, 0x03A9, 0x03B4, 0x221E, 0x03C6,
      0x03B5, 0x2229, 0x2261, 0x00B1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00F7, 0x2248, 0x00B0,
      0x2219, 0x00B7, 0x221A, 0x207F, 0x00B2, 0x25A0, 0x00A0,
  };
  std::string out;
  out.reserve(raw.size());
  for (char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
      continue;
    }
    const uint16_t cp = kHigh[c - 0x80];
    if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | cp >> 6));
    } else {
      out.push_back(static_cast<char>(0xE0 | cp >> 12));
      out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    }
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return out;
}

int64_t DosTimeToUnix(uint16_t dos_date, uint16_t dos_time) {
  int64_t year = 1980 + (dos_date >> 9);
  int64_t month = dos_date >> 5 & 0xf;  // 0 and 13-15 roll over, like time.Date
  const int64_t day = dos_date & 0x1f;
  year += (month - 1 < 0) ? -1 : (month - 1) / 12;
  month = ((month - 1) % 12 + 12) % 12 + 1;
  const int64_t days = DaysFromCivil(year, month, 1) + day - 1;
  return days * 86400 + int64_t{dos_time >> 11} * 3600 + int64_t{dos_time >> 5 & 0x3f} * 60 +
         int64_t{dos_time & 0x1f} * 2;
}

bool TailLooksLikeZip(std::string_view tail, uint64_t file_size) {
  if (tail.size() > file_size) return false;
  const std::optional<uint64_t> at = LastEndSig(tail);
  if (!at) return false;
  const uint64_t i = *at;
  if (tail.size() - i - kEndSize < U16(tail, i + 20)) return false;  // comment past EOF
  const uint64_t tail_start = file_size - tail.size();
  const uint64_t entries = U16(tail, i + 10), dir_size = U32(tail, i + 12),
                 dir_offset = U32(tail, i + 16);
  if (EndHasZip64Markers(entries, dir_size, dir_offset)) {
    return i >= kLocatorSize && HasSig(tail, i - kLocatorSize, kLocatorSig);
  }
  const uint64_t end = tail_start + i;
  if (dir_size > end || entries > dir_size / kCentralSize) return false;
  if (entries == 0) return true;
  // Where the directory is (just before the end record), or where the end
  // record says it is; either may be outside the tail.
  bool visible = false;
  for (uint64_t start : {end - dir_size, dir_offset}) {
    if (start < tail_start) continue;
    visible = true;
    if (HasSig(tail, start - tail_start, kCentralSig)) return true;
  }
  return !visible;
}

Result<Directory> LocateDirectory(std::string_view file, std::string_view name) {
  if (file.size() < kEndSize) {
    return Status::Corruption(fmt::format(
        "{}: {} bytes, too short for a zip (its end record alone is {} bytes); the file is "
        "truncated or not a zip",
        name, file.size(), kEndSize));
  }
  const std::optional<uint64_t> at = LastEndSig(file);
  if (!at) {
    return Status::Corruption(fmt::format(
        "{}: no end of central directory record in its last {} bytes, so it is truncated or not "
        "a zip: restore or re-download it",
        name, std::min<uint64_t>(file.size(), kEndSearchBytes)));
  }
  Directory dir;
  EndRecord& end = dir.end;
  end.offset = *at;
  const uint16_t comment_len = U16(file, end.offset + 20);
  if (file.size() - end.offset - kEndSize < comment_len) {
    // Not skipped for an earlier record: a truncated comment hides another
    // archive from other tools (golang.org/issue/66869).
    return DirectoryError(
        name, fmt::format("the end of central directory record at byte {} has a {}-byte comment "
                          "that runs past the end of the file",
                          end.offset, comment_len));
  }
  end.comment = file.substr(end.offset + kEndSize, comment_len);
  end.entries = U16(file, end.offset + 10);
  end.dir_size = U32(file, end.offset + 12);
  end.dir_offset = U32(file, end.offset + 16);
  end.dir_end = end.offset;
  const uint64_t loc = end.offset - std::min(end.offset, kLocatorSize);
  if (EndHasZip64Markers(end.entries, end.dir_size, end.dir_offset) &&
      end.offset >= kLocatorSize && HasSig(file, loc, kLocatorSig) && U32(file, loc + 4) == 0 &&
      U32(file, loc + 16) <= 1) {
    // The locator's offset is relative to the archive's start; with data
    // prepended, the zip64 end record is found just before the locator.
    uint64_t p = U64(file, loc + 8);
    auto is_end64 = [&](uint64_t q) {
      return q <= loc && loc - q >= kEnd64Size && HasSig(file, q, kEnd64Sig);
    };
    if (!is_end64(p)) {
      if (loc < kEnd64Size || !is_end64(loc - kEnd64Size)) {
        return DirectoryError(name, fmt::format("the zip64 end locator at byte {} points to byte "
                                                "{}, which holds no zip64 end record",
                                                loc, p));
      }
      p = loc - kEnd64Size;
    }
    if (U64(file, p + 4) < kEnd64Size - 12) {
      return DirectoryError(name, fmt::format("the zip64 end record at byte {} is shorter than "
                                              "its fixed fields",
                                              p));
    }
    end.zip64 = true;
    end.entries = U64(file, p + 32);
    end.dir_size = U64(file, p + 40);
    end.dir_offset = U64(file, p + 48);
    end.dir_end = p;
  }
  if (end.dir_size > end.dir_end) {
    return DirectoryError(name, fmt::format("the end record says the central directory has {} "
                                            "bytes, more than the {} bytes before it",
                                            end.dir_size, end.dir_end));
  }
  // The directory ends where the end records begin; what its recorded offset
  // misses is data prepended to the archive. But when a central header sits
  // at the recorded offset itself, that offset is trusted and the recorded
  // size was wrong (Go's rule, archive/zip readDirectoryEnd).
  dir.start = end.dir_end - end.dir_size;
  if (dir.start != end.dir_offset && CentralHeaderAt(file, end.dir_offset)) {
    dir.start = end.dir_offset;
  }
  if (dir.start < end.dir_offset) {
    return DirectoryError(name, fmt::format("the end record says the central directory starts "
                                            "at byte {}, but it would end after byte {}",
                                            end.dir_offset, end.dir_end));
  }
  dir.base = dir.start - end.dir_offset;
  return dir;
}

Status ForEachCentralHeader(std::string_view file, std::string_view name,
                            const ReadOptions& options,
                            const std::function<Status(const CentralHeader&)>& visit,
                            Directory* located) {
  SHARDSET_ASSIGN_OR_RETURN(Directory dir, LocateDirectory(file, name));
  const EndRecord& end = dir.end;
  if (end.entries > options.max_entries) {
    return Status::ResourceExhausted(fmt::format(
        "{}: the end record lists {} entries, more than --max-entries {}; raise --max-entries if "
        "you trust the archive",
        name, end.entries, options.max_entries));
  }
  const uint64_t room = (file.size() - dir.start) / kCentralSize;
  if (end.entries > room) {
    return DirectoryError(
        name, fmt::format("the end record lists {} entries, but the {} bytes from the central "
                          "directory's start (byte {}) hold {} at most",
                          end.entries, file.size() - dir.start, dir.start, room));
  }
  if (located != nullptr) *located = dir;
  // The count is only 16 bits without zip64 and some writers let it wrap:
  // headers are read until the next record is not one (as Go and Info-ZIP
  // do), and the count is checked modulo 65,536 then.
  uint64_t pos = dir.start, count = 0;
  // Entries that do not share bytes store at most the file's size between
  // them. More is the non-recursive zip bomb (many central headers, one
  // deflated stream), which every per-entry limit lets through once per
  // header: refused before the entry that passes the file's size is visited.
  uint64_t stored = 0;
  CentralHeader h;
  while (HasSig(file, pos, kCentralSig)) {
    if (count >= options.max_entries) {
      return Status::ResourceExhausted(fmt::format(
          "{}: the central directory holds more than --max-entries {} entries; raise "
          "--max-entries if you trust the archive",
          name, options.max_entries));
    }
    SHARDSET_RETURN_IF_ERROR(ParseCentral(file, name, pos, count, dir.base, &h));
    if (h.compressed_size > file.size() - stored) {
      return Status::Corruption(fmt::format(
          "{}: central header #{} ('{}') brings the stored bytes its entries claim to more than "
          "the file's {} bytes: entries share bytes, which is how zip bombs multiply their "
          "size; do not trust this archive",
          name, count, EscapeForDisplay(h.name), file.size()));
    }
    stored += h.compressed_size;
    SHARDSET_RETURN_IF_ERROR(visit(h));
    pos += kCentralSize + h.raw_name.size() + h.extra.size() + U16(file, pos + 32);
    ++count;
  }
  const bool match = end.zip64 ? count == end.entries : (count & kMax16) == end.entries;
  if (!match) {
    return DirectoryError(
        name, fmt::format("the end record lists {} entries but the central directory at byte {} "
                          "holds {} (byte {} is not a central header)",
                          end.entries, dir.start, count, pos));
  }
  if (located != nullptr) located->headers_end = pos;
  return Status::OK();
}

EntryLoc LocOf(const CentralHeader& h) {
  return EntryLoc{h.header_offset, h.compressed_size, h.uncompressed_size, h.crc, h.method,
                  h.flags};
}

Result<LocalHeader> ReadLocalHeader(std::string_view file, uint64_t offset) {
  if (offset > file.size() || file.size() - offset < kLocalSize) {
    return Status::Corruption(fmt::format(
        "its local header at byte {} lies past the end of the file ({} bytes)", offset,
        file.size()));
  }
  if (U32(file, offset) != kLocalSig) {
    return Status::Corruption(fmt::format("byte {}, where its local header should be, holds no "
                                          "local header",
                                          offset));
  }
  LocalHeader lh;
  lh.flags = U16(file, offset + 6);
  lh.method = U16(file, offset + 8);
  lh.crc = U32(file, offset + 14);
  const uint32_t csize32 = U32(file, offset + 18), usize32 = U32(file, offset + 22);
  const uint16_t name_len = U16(file, offset + 26), extra_len = U16(file, offset + 28);
  if (file.size() - offset - kLocalSize < uint64_t{name_len} + extra_len) {
    return Status::Corruption(fmt::format("its local header at byte {} is cut off by the end of "
                                          "the file",
                                          offset));
  }
  lh.raw_name = file.substr(offset + kLocalSize, name_len);
  lh.extra = file.substr(offset + kLocalSize + name_len, extra_len);
  lh.compressed_size = csize32;
  lh.uncompressed_size = usize32;
  bool need_usize = usize32 == kMax32, need_csize = csize32 == kMax32;
  ForEachExtra(lh.extra, [&](uint16_t tag, std::string_view body) {
    if (tag == kZip64Extra) {
      ApplyZip64(body, &need_usize, &lh.uncompressed_size, &need_csize, &lh.compressed_size,
                 nullptr, nullptr);
    }
  });
  lh.data_offset = offset + kLocalSize + name_len + extra_len;
  return lh;
}

Result<std::string_view> StoredBytes(std::string_view file, const EntryLoc& e) {
  SHARDSET_ASSIGN_OR_RETURN(LocalHeader lh, ReadLocalHeader(file, e.header_offset));
  if (e.compressed_size > file.size() - lh.data_offset) {
    return Status::Corruption(fmt::format(
        "its {} stored bytes at byte {} run past the end of the file ({} bytes)",
        e.compressed_size, lh.data_offset, file.size()));
  }
  return file.substr(lh.data_offset, e.compressed_size);
}

Status CheckDecodable(const EntryLoc& e, const ReadOptions& options) {
  if ((e.flags & kFlagEncrypted) || e.method == 99) {
    const char* how = e.method == 99                         ? "WinZip AES"
                      : (e.flags & kFlagStrongEncryption) ? "PKWARE strong encryption"
                                                          : "traditional PKWARE encryption";
    return Status::NotSupported(fmt::format(
        "it is encrypted ({}); shardset reads unencrypted entries only: decrypt the archive with "
        "another tool and pack the files",
        how));
  }
  if (e.method != kMethodStored && e.method != kMethodDeflate) {
    return Status::NotSupported(fmt::format(
        "it is compressed with {} (method {}); shardset reads stored (0) and deflate (8) entries "
        "only: re-zip it with deflate (zip -Z deflate) or pack the extracted files",
        MethodName(e.method), e.method));
  }
  if (e.method == kMethodStored) {
    // Stored bytes are read in place: no limit applies, but both sizes must
    // agree or the entry would read as other bytes than its header declares.
    if (e.compressed_size != e.uncompressed_size) {
      return Status::Corruption(fmt::format(
          "it is stored, but its sizes differ ({} bytes stored, {} declared)", e.compressed_size,
          e.uncompressed_size));
    }
    return Status::OK();
  }
  if (e.uncompressed_size > options.max_field_bytes) {
    return Status::ResourceExhausted(fmt::format(
        "it claims {} bytes, more than --max-field-bytes {}; raise --max-field-bytes if you "
        "trust the archive",
        e.uncompressed_size, options.max_field_bytes));
  }
  const unsigned __int128 allowed = std::max<unsigned __int128>(
      static_cast<unsigned __int128>(options.max_ratio) * e.compressed_size,
      ReadOptions::kRatioFloorBytes);
  if (e.uncompressed_size > allowed) {
    return Status::ResourceExhausted(fmt::format(
        "it claims {} bytes from {} compressed bytes, a ratio over --max-ratio {} (a zip "
        "bomb?); raise --max-ratio if you trust the archive",
        e.uncompressed_size, e.compressed_size, options.max_ratio));
  }
  return Status::OK();
}

Status CheckCrc(const EntryLoc& e, std::string_view data) {
  const uint32_t crc =
      static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
  if (crc != e.crc) {
    return Status::Corruption(fmt::format(
        "its bytes have CRC-32 {:08x}, not the {:08x} its header records", crc, e.crc));
  }
  return Status::OK();
}

Status Decode(const EntryLoc& e, std::string_view raw, char* out, bool verify_crc) {
  const uint64_t size = e.uncompressed_size;
  if (e.method == kMethodStored) {
    if (size != 0) std::memcpy(out, raw.data(), size);
  } else {
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
      return Status::ResourceExhausted("zlib could not allocate an inflate state");
    }
    struct End {
      z_stream* zs;
      ~End() { inflateEnd(zs); }
    } end_guard{&zs};
    // zlib counts in 32 bits: input and output are handed over in chunks.
    constexpr uint64_t kChunk = uint64_t{1} << 30;
    uint64_t in_given = 0, out_given = 0;
    char probe[64];
    bool probing = false;  // `out` is full: any further byte is too many
    for (;;) {
      if (zs.avail_in == 0 && in_given < raw.size()) {
        const uint64_t n = std::min(kChunk, raw.size() - in_given);
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data() + in_given));
        zs.avail_in = static_cast<uInt>(n);
        in_given += n;
      }
      if (zs.avail_out == 0) {
        if (out_given < size) {
          const uint64_t n = std::min(kChunk, size - out_given);
          zs.next_out = reinterpret_cast<Bytef*>(out + out_given);
          zs.avail_out = static_cast<uInt>(n);
          out_given += n;
        } else {
          zs.next_out = reinterpret_cast<Bytef*>(probe);
          zs.avail_out = sizeof(probe);
          probing = true;
        }
      }
      const int rc = inflate(&zs, Z_NO_FLUSH);
      if (probing && zs.avail_out != sizeof(probe)) {
        return Status::Corruption(fmt::format(
            "it inflates to more than the {} bytes its header declares", size));
      }
      if (rc == Z_STREAM_END) break;
      if (rc == Z_BUF_ERROR) {
        // No progress with output room left: the input ran out.
        return Status::Corruption(fmt::format(
            "its deflate stream is truncated: it ends after {} of the {} bytes its header "
            "declares",
            out_given - (probing ? 0 : zs.avail_out), size));
      }
      if (rc != Z_OK) {
        return Status::Corruption(fmt::format("its deflate stream is damaged (zlib: {})",
                                              zs.msg != nullptr ? zs.msg : zError(rc)));
      }
    }
    const uint64_t produced = probing ? size : out_given - zs.avail_out;
    if (produced != size) {
      return Status::Corruption(fmt::format(
          "it inflates to {} bytes, fewer than the {} its header declares", produced, size));
    }
  }
  if (verify_crc) return CheckCrc(e, std::string_view(out, size));
  return Status::OK();
}

std::string EntryWhere(std::string_view file, std::string_view entry_name, uint64_t index) {
  return fmt::format("{}: entry '{}' (#{} in the central directory)", file,
                     EscapeForDisplay(entry_name), index);
}

Status EntryError(const Status& fragment, std::string_view where) {
  std::string msg = fmt::format("{}: {}", where, fragment.message());
  if (fragment.IsCorruption()) msg += fmt::format("; {}", kDamaged);
  switch (fragment.code()) {
    case Status::Code::kNotSupported: return Status::NotSupported(std::move(msg));
    case Status::Code::kResourceExhausted: return Status::ResourceExhausted(std::move(msg));
    case Status::Code::kCorruption: return Status::Corruption(std::move(msg));
    default: return fragment.WithPrefix(where);
  }
}

}  // namespace shardset::zip
