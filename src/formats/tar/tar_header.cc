#include "formats/tar/tar_header.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include <fmt/format.h>

#include "base/strings.h"

namespace shardset::tar {
namespace {

std::string_view FieldOf(std::string_view block, HeaderField f) {
  return block.substr(f.offset, f.size);
}

// A NUL-terminated string field; a full field has no terminator.
std::string_view CString(std::string_view field) {
  size_t nul = field.find('\0');
  return nul == std::string_view::npos ? field : field.substr(0, nul);
}

std::optional<uint64_t> ParseBase256(std::string_view field) {
  const auto first = static_cast<unsigned char>(field[0]);
  if (first & 0x40) return std::nullopt;  // negative (0xff prefix)
  uint64_t v = first & 0x3f;
  for (size_t i = 1; i < field.size(); ++i) {
    if (v >> 55) return std::nullopt;  // the next shift would pass 2^63
    v = (v << 8) | static_cast<unsigned char>(field[i]);
  }
  return v;
}

std::optional<uint64_t> ParseOctal(std::string_view field) {
  size_t i = 0;
  while (i < field.size() && (field[i] == ' ' || field[i] == '\0')) ++i;
  uint64_t v = 0;
  for (; i < field.size() && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (v >> 60) return std::nullopt;
    v = v * 8 + static_cast<uint64_t>(field[i] - '0');
  }
  // Digits end at a space, a NUL or the end of the field (GNU tar's rule);
  // what follows the terminator is not read.
  if (i < field.size() && field[i] != ' ' && field[i] != '\0') return std::nullopt;
  return v;
}

void PutString(std::string* block, HeaderField f, std::string_view s) {
  assert(s.size() <= f.size);
  std::copy(s.begin(), s.end(), block->begin() + static_cast<std::ptrdiff_t>(f.offset));
}

// `v` as `digits` zero-padded octal digits at `p`.
void PutOctalDigits(char* p, size_t digits, uint64_t v) {
  for (size_t i = digits; i-- > 0; v >>= 3) p[i] = static_cast<char>('0' + (v & 7));
  assert(v == 0 && "value does not fit the field");
}

// `v` as f.size - 1 zero-padded octal digits and a NUL ("0000644\0"), the
// layout GNU tar writes.
void PutOctal(std::string* block, HeaderField f, uint64_t v) {
  PutOctalDigits(block->data() + f.offset, f.size - 1, v);
  (*block)[f.offset + f.size - 1] = '\0';
}

// The longest prefix of `s` of at most `n` bytes that does not end inside a
// UTF-8 sequence.
std::string_view TruncateUtf8(std::string_view s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// One header block with the fields every member we write shares.
std::string UstarBlock(char typeflag, std::string_view prefix, std::string_view name,
                       uint64_t size) {
  std::string b(kBlockSize, '\0');
  PutString(&b, kNameField, name);
  PutOctal(&b, kModeField, kWriteMode);
  PutOctal(&b, kUidField, 0);
  PutOctal(&b, kGidField, 0);
  PutOctal(&b, kSizeField, size);
  PutOctal(&b, kMtimeField, kWriteMtime);
  b[kTypeflagOffset] = typeflag;
  PutString(&b, kMagicField, kUstarMagic);
  PutString(&b, kVersionField, kUstarVersion);
  if (typeflag == kRegular) {  // as GNU tar: device numbers on members only
    PutOctal(&b, kDevMajorField, 0);
    PutOctal(&b, kDevMinorField, 0);
  }
  PutString(&b, kPrefixField, prefix);
  // Checksum: six octal digits, NUL, space (the layout GNU tar writes),
  // summed with the field itself as spaces.
  std::memset(b.data() + kChecksumField.offset, ' ', kChecksumField.size);
  uint32_t sum = 0;
  for (char c : b) sum += static_cast<unsigned char>(c);
  PutOctalDigits(b.data() + kChecksumField.offset, 6, sum);
  b[kChecksumField.offset + 6] = '\0';
  return b;
}

// A pax time "[-]sec[.frac]": whole seconds, rounded towards -inf.
std::optional<int64_t> ParsePaxTime(std::string_view s) {
  bool negative = !s.empty() && s[0] == '-';
  if (negative) s.remove_prefix(1);
  const size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot), frac;
  if (dot != std::string_view::npos) {
    // Only whole seconds are kept, so the fraction is read up to its first
    // non-digit (libarchive reads "…467a" so; Go refuses garbage in the
    // seconds, and so do we).
    frac = s.substr(dot + 1);
    frac = frac.substr(0, std::min(frac.size(), frac.find_first_not_of("0123456789")));
  }
  std::optional<uint64_t> sec = ParseDecimal(whole);
  if (!sec) return std::nullopt;
  const bool fractional = frac.find_first_not_of('0') != std::string_view::npos;
  int64_t v = static_cast<int64_t>(*sec);
  return negative ? -v - (fractional ? 1 : 0) : v;
}

}  // namespace

std::optional<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  while (s.size() > 1 && s[0] == '0') s.remove_prefix(1);  // "000999" is 999
  if (s.size() > 18) return std::nullopt;                  // 18 digits stay below 2^63
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

bool IsZeroBlock(std::string_view block) {
  return std::all_of(block.begin(), block.end(), [](char c) { return c == '\0'; });
}

bool ChecksumMatches(std::string_view block) {
  if (block.size() < kBlockSize) return false;
  std::optional<uint64_t> want = ParseOctal(FieldOf(block, kChecksumField));
  if (!want) return false;
  int64_t sum_unsigned = 0, sum_signed = 0;
  for (size_t i = 0; i < kBlockSize; ++i) {
    const bool in_field =
        i >= kChecksumField.offset && i < kChecksumField.offset + kChecksumField.size;
    const char c = in_field ? ' ' : block[i];
    sum_unsigned += static_cast<unsigned char>(c);
    sum_signed += static_cast<signed char>(c);
  }
  // An all-zero block sums to 256 (the checksum field counted as spaces), so
  // a zero checksum never matches: empty blocks are not headers.
  return *want == static_cast<uint64_t>(sum_unsigned) || static_cast<int64_t>(*want) == sum_signed;
}

std::optional<uint64_t> ParseNumber(std::string_view field) {
  if (field.empty()) return std::nullopt;
  if (static_cast<unsigned char>(field[0]) & 0x80) return ParseBase256(field);
  return ParseOctal(field);
}

Status DecodeHeader(std::string_view block, Header* out) {
  assert(block.size() == kBlockSize);
  if (!ChecksumMatches(block)) {
    return Status::Corruption("header checksum mismatch (not a tar header)");
  }
  const std::string_view magic = FieldOf(block, kMagicField);
  if (magic == kUstarMagic) {
    out->dialect = FieldOf(block, kStarTrailerField) == std::string_view("tar\0", 4)
                       ? Dialect::kStar
                       : Dialect::kUstar;
  } else if (magic == kGnuMagic) {
    out->dialect = Dialect::kGnu;  // its prefix area holds atime/ctime
  } else {
    out->dialect = Dialect::kV7;
  }
  out->typeflag = block[kTypeflagOffset];
  out->path = CString(FieldOf(block, kNameField));
  if (out->dialect == Dialect::kGnu && !ParseNumber(FieldOf(block, kGnuAtimeField)) &&
      IsAscii(CString(FieldOf(block, kPrefixField)))) {
    // Go before 1.8 wrote a ustar prefix into GNU headers, where atime and
    // ctime live; when those do not parse, read the prefix as Go does.
    out->dialect = Dialect::kUstar;
  }
  if (out->dialect == Dialect::kUstar || out->dialect == Dialect::kStar) {
    const size_t n = out->dialect == Dialect::kStar ? kStarPrefixSize : kPrefixField.size;
    std::string_view prefix = CString(block.substr(kPrefixField.offset, n));
    if (!prefix.empty()) out->path = fmt::format("{}/{}", prefix, out->path);
  }
  std::optional<uint64_t> size = ParseNumber(FieldOf(block, kSizeField));
  if (!size) return Status::Corruption("size field is malformed or negative");
  out->size = *size;
  out->linkname = CString(FieldOf(block, kLinknameField));
  out->mode = static_cast<uint32_t>(ParseNumber(FieldOf(block, kModeField)).value_or(0));
  // Base-256 mtimes may be negative; they are metadata only, so a malformed
  // one reads as 0 rather than failing the member (GNU tar warns likewise).
  const std::string_view mtime = FieldOf(block, kMtimeField);
  if ((static_cast<unsigned char>(mtime[0]) & 0xC0) == 0xC0) {
    // Two's complement over the whole field: it fits an int64 only when
    // every byte before the last 8 is 0xFF and those 8 start with a set bit.
    bool fits = true;
    for (size_t i = 0; i + 8 < mtime.size(); ++i) {
      fits &= static_cast<unsigned char>(mtime[i]) == 0xFF;
    }
    uint64_t v = 0;
    for (size_t i = mtime.size() - 8; i < mtime.size(); ++i) {
      v = v << 8 | static_cast<unsigned char>(mtime[i]);
    }
    fits &= (v >> 63) != 0;
    out->mtime = fits ? static_cast<int64_t>(v) : 0;
  } else {
    out->mtime = static_cast<int64_t>(ParseNumber(mtime).value_or(0));
  }
  return Status::OK();
}

bool IsRegularType(char typeflag) {
  return typeflag == kRegular || typeflag == kRegularOld || typeflag == kContiguous;
}

bool HasData(char typeflag) { return typeflag < '1' || typeflag > '6'; }

Status ParsePaxRecords(std::string_view data, PaxHeader* out) {
  while (!data.empty()) {
    if (IsZeroBlock(data)) break;  // some writers pad the records with NULs
    const size_t space = data.find(' ');
    std::optional<uint64_t> len =
        space == std::string_view::npos ? std::nullopt : ParseDecimal(data.substr(0, space));
    if (!len || *len <= space + 1 || *len > data.size()) {
      return Status::Corruption("pax record has a malformed length");
    }
    std::string_view record = data.substr(space + 1, *len - space - 1);
    data.remove_prefix(*len);
    if (record.back() == '\n') {
      record.remove_suffix(1);
    } else if (record.back() != '=') {
      // A record "<len> key=" without its newline is read as an empty value
      // (libarchive's tolerance); anything else unterminated is damage.
      return Status::Corruption("pax record does not end in a newline");
    }
    const size_t eq = record.find('=');
    if (eq == 0 || eq == std::string_view::npos) {
      return Status::Corruption("pax record has no key");
    }
    const std::string_view key = record.substr(0, eq), value = record.substr(eq + 1);
    if (key.find('\0') != std::string_view::npos) {
      return Status::Corruption("pax record key contains a NUL byte");
    }
    if (key == "path") {
      if (value.find('\0') != std::string_view::npos) {
        return Status::Corruption("pax path contains a NUL byte");
      }
      out->path = value.empty() ? std::nullopt : std::optional<std::string>(value);
    } else if (key == "size") {
      std::optional<uint64_t> size = ParseDecimal(value);
      if (!value.empty() && !size) return Status::Corruption("pax size is not a decimal number");
      out->size = size;
    } else if (key == "linkpath") {
      out->linkpath = value.empty() ? std::nullopt : std::optional<std::string>(value);
    } else if (key == "mtime") {
      std::optional<int64_t> t = ParsePaxTime(value);
      if (!value.empty() && !t) return Status::Corruption("pax mtime is not a decimal time");
      out->mtime = t;
    } else if (key.substr(0, 11) == "GNU.sparse.") {
      out->sparse = true;
      const std::string_view sub = key.substr(11);
      auto number = [&](std::optional<uint64_t>* dst) -> Status {
        *dst = ParseDecimal(value);
        if (!*dst) return Status::Corruption(fmt::format("pax record {} is not a number", key));
        return Status::OK();
      };
      if (sub == "major") {
        out->sparse_major = value;
      } else if (sub == "minor") {
        out->sparse_minor = value;
      } else if (sub == "name") {
        out->sparse_name = std::string(value);
      } else if (sub == "size" || sub == "realsize") {
        SHARDSET_RETURN_IF_ERROR(number(&out->sparse_size));
      } else if (sub == "offset" || sub == "numbytes") {
        // Format 0.0: the map as repeated (offset, numbytes) records.
        std::optional<uint64_t> n;
        SHARDSET_RETURN_IF_ERROR(number(&n));
        out->sparse_map.push_back(*n);
        out->has_sparse_map = true;
      } else if (sub == "map") {
        // Format 0.1: "offset,numbytes,offset,numbytes...".
        out->sparse_map.clear();
        out->has_sparse_map = true;
        std::string_view rest = value;
        while (!rest.empty()) {
          const size_t comma = rest.find(',');
          std::optional<uint64_t> n = ParseDecimal(rest.substr(0, comma));
          if (!n) return Status::Corruption("pax record GNU.sparse.map is malformed");
          out->sparse_map.push_back(*n);
          rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
          if (comma != std::string_view::npos && rest.empty()) {
            return Status::Corruption("pax record GNU.sparse.map is malformed");
          }
        }
      }
    }
  }
  return Status::OK();
}

void AppendPaxRecord(std::string* out, std::string_view key, std::string_view value) {
  // The length counts its own digits: grow the guess until it is stable.
  const size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  size_t len = body + 1;
  while (len != body + fmt::formatted_size("{}", len)) len = body + fmt::formatted_size("{}", len);
  fmt::format_to(std::back_inserter(*out), "{} {}={}\n", len, key, value);
}

std::optional<std::pair<std::string_view, std::string_view>> SplitUstarPath(std::string_view path) {
  if (path.size() <= kNameField.size) return std::make_pair(std::string_view(), path);
  const size_t slash = path.rfind('/', std::min(path.size() - 1, kPrefixField.size));
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  const std::string_view name = path.substr(slash + 1);
  if (name.empty() || name.size() > kNameField.size) return std::nullopt;
  return std::make_pair(path.substr(0, slash), name);
}

std::string EncodeMemberHeaders(std::string_view path, uint64_t size) {
  const auto split = SplitUstarPath(path);
  const bool pax_path = !split || !IsAscii(path);
  const bool pax_size = size > kMaxOctalSize;
  std::string out;
  if (pax_path || pax_size) {
    std::string records;
    // Names that are not UTF-8 are stored as raw bytes, flagged the way GNU
    // tar and Python tarfile flag them.
    if (pax_path && !IsValidUtf8(path)) AppendPaxRecord(&records, "hdrcharset", "BINARY");
    if (pax_path) AppendPaxRecord(&records, "path", path);
    if (pax_size) AppendPaxRecord(&records, "size", fmt::format("{}", size));
    const size_t slash = path.rfind('/');
    const std::string pax_name = fmt::format(
        "PaxHeaders/{}", slash == std::string_view::npos ? path : path.substr(slash + 1));
    out += UstarBlock(kPaxLocal, {}, TruncateUtf8(pax_name, kNameField.size), records.size());
    out += records;
    out.append(PaddingAfter(records.size()), '\0');
  }
  // Readers without pax support see the ustar fields: the split path when it
  // fits, else its first 100 bytes; the size field is 0 when pax carries it.
  const auto [prefix, name] =
      split ? *split : std::make_pair(std::string_view(), TruncateUtf8(path, kNameField.size));
  out += UstarBlock(kRegular, prefix, name, pax_size ? 0 : size);
  return out;
}

}  // namespace shardset::tar
