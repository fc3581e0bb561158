#include "formats/tsv/tsv_columns.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/strings.h"

namespace shardset::tsv {
namespace {

// ---- Base64 tables ----

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0 for a byte of the alphabet, 1 for any other byte: OR-ed over a value so
// the common (valid) case is one branch-free pass.
constexpr std::array<uint8_t, 256> kInvalid = [] {
  std::array<uint8_t, 256> t{};
  t.fill(1);
  for (char c : kAlphabet) t[static_cast<unsigned char>(c)] = 0;
  return t;
}();

// EVP_DecodeBlock and EVP_EncodeBlock take int lengths: larger values go
// through in chunks that keep whole 4-character groups / 3-byte groups.
constexpr size_t kDecodeChunkChars = size_t{1} << 28;
constexpr size_t kEncodeChunkBytes = size_t{3} << 27;

size_t PaddingOf(std::string_view text) {
  size_t pad = 0;
  while (pad < text.size() && pad < 3 && text[text.size() - 1 - pad] == '=') ++pad;
  return pad;
}

// ---- Guess helpers ----

bool IsDecimalInteger(std::string_view v) {
  if (!v.empty() && v[0] == '-') v.remove_prefix(1);
  if (v.empty() || v.size() > 19) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsJsonContainer(std::string_view v) {
  const size_t first = v.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || (v[first] != '{' && v[first] != '[')) return false;
  return nlohmann::json::accept(v);
}

bool IsAllHex(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// Plain text: UTF-8 (a sequence cut at the end of `bytes` allowed: it is a
// prefix) with no control bytes but tab, LF and CR.
bool IsPlainTextPrefix(std::string_view bytes) {
  for (unsigned char c : bytes) {
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
  }
  for (size_t cut = 0; cut <= 3 && cut <= bytes.size(); ++cut) {
    if (IsValidUtf8(bytes.substr(0, bytes.size() - cut))) return true;
  }
  return false;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The field name of a binary value, from its first bytes.
std::string_view SniffType(std::string_view b) {
  if (StartsWith(b, "\x89PNG\r\n\x1a\n")) return "png";
  if (StartsWith(b, "\xff\xd8\xff")) return "jpg";
  if (StartsWith(b, "GIF87a") || StartsWith(b, "GIF89a")) return "gif";
  if (StartsWith(b, "RIFF") && b.substr(8, 4) == "WEBP") return "webp";
  if (StartsWith(b, "RIFF") && b.substr(8, 4) == "WAVE") return "wav";
  if (StartsWith(b, std::string_view("II*\0", 4)) || StartsWith(b, std::string_view("MM\0*", 4))) {
    return "tiff";
  }
  if (StartsWith(b, "\x93NUMPY")) return "npy";
  if (StartsWith(b, "fLaC")) return "flac";
  if (b.substr(4, 4) == "ftyp") return "mp4";
  if (StartsWith(b, "%PDF-")) return "pdf";
  if (StartsWith(b, "\x1f\x8b")) return "gz";
  if (StartsWith(b, "\x28\xb5\x2f\xfd")) return "zst";
  return "bin";
}

// The decoded first bytes of base64 `v` (at most 3072).
std::string DecodedPrefix(std::string_view v) {
  std::string_view head = v.substr(0, std::min<size_t>(v.size(), 4096));
  std::string out(Base64DecodedSize(head), '\0');
  Base64Decode(head, out.data());
  return out;
}

// Parses one column item of a header or --tsv-columns: NAME[:ATTR]... or "-".
// `unknown_attr` receives an attribute this version does not know.
Result<ColumnDef> ParseColumnItem(std::string_view item, std::string* unknown_attr) {
  ColumnDef col;
  if (item == "-") {
    col.name = "-";
    col.skip = true;
    return col;
  }
  size_t colon = item.find(':');
  col.name = std::string(item.substr(0, colon));
  if (std::string why = FieldNameProblem(col.name); !why.empty()) {
    return Status::InvalidArgument(fmt::format("column '{}': {}", EscapeForDisplay(item), why));
  }
  while (colon != std::string_view::npos) {
    const size_t next = item.find(':', colon + 1);
    const std::string_view attr = item.substr(colon + 1, next - colon - 1);
    if (attr == "b64") {
      col.b64 = true;
    } else if (attr == "derived") {
      col.derived = true;
    } else {
      *unknown_attr = std::string(attr);
      return Status::InvalidArgument(fmt::format(
          "column '{}': unknown attribute '{}' (known: b64, derived)", EscapeForDisplay(item),
          EscapeForDisplay(attr)));
    }
    colon = next;
  }
  return col;
}

Status CheckUniqueNames(const std::vector<ColumnDef>& columns) {
  for (size_t i = 1; i < columns.size(); ++i) {
    if (columns[i].skip) continue;
    for (size_t j = 1; j < i; ++j) {
      if (!columns[j].skip && columns[j].name == columns[i].name) {
        return Status::InvalidArgument(fmt::format("columns {} and {} are both named '{}'", j, i,
                                                   EscapeForDisplay(columns[i].name)));
      }
    }
  }
  return Status::OK();
}

}  // namespace

void SplitCells(std::string_view line, std::vector<std::string_view>* cells) {
  cells->clear();
  for (size_t start = 0;;) {
    const size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      cells->push_back(line.substr(start));
      return;
    }
    cells->push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

std::string FieldNameProblem(std::string_view name) {
  if (name.empty()) return "a field name cannot be empty";
  if (name == "-") return "'-' means a skipped column, not a field name";
  for (char c : name) {
    if (c == ':' || c == ',' || c == '\t' || c == '\n' || c == '\r' || c == '\0') {
      return "a field name in a tsv cannot hold ':', ',', tab, newline, CR or NUL";
    }
  }
  if (!IsValidUtf8(name)) return "a field name in a tsv must be UTF-8";
  return {};
}

Result<std::vector<ColumnDef>> ParseColumnSpec(std::string_view spec) {
  std::vector<ColumnDef> columns;
  auto fail = [&](std::string_view what) {
    return Status::InvalidArgument(
        fmt::format("--tsv-columns '{}': {}; write it like 'key,cls,png:b64' (docs/formats/tsv.md "
                    "\"Columns\")",
                    EscapeForDisplay(spec), what));
  };
  for (size_t start = 0;;) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    std::string_view item = spec.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (columns.empty()) {
      if (item != "key") return fail("the first column must be 'key' (column 0 is the sample key)");
      columns.push_back(ColumnDef{"key"});
    } else {
      std::string unknown;
      auto col = ParseColumnItem(item, &unknown);
      if (!col.ok()) return fail(col.status().message());
      columns.push_back(std::move(*col));
    }
    if (comma == spec.size()) break;
    start = comma + 1;
    if (columns.size() == kMaxColumns) {
      return fail(fmt::format("more than {} columns (a sample has at most {} fields)",
                              kMaxColumns, index::kMaxFields));
    }
  }
  if (Status s = CheckUniqueNames(columns); !s.ok()) return fail(s.message());
  return columns;
}

bool IsHeaderLine(std::string_view line) { return StartsWith(line, kHeaderMagic); }

Result<std::vector<ColumnDef>> ParseHeader(std::string_view line) {
  std::vector<std::string_view> cells;
  SplitCells(line, &cells);
  // Before anything per column (the names are compared pairwise).
  if (cells.size() > kMaxColumns) {
    return Status::ResourceExhausted(fmt::format(
        "the header line names {} columns, more than the {} a tsv may have (a sample has at "
        "most {} fields)",
        cells.size(), kMaxColumns, index::kMaxFields));
  }
  const std::string_view version = cells[0].substr(kHeaderMagic.size());
  if (version.empty() || version.size() > 9 ||
      !std::all_of(version.begin(), version.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::Corruption(fmt::format(
        "line 1 starts with '{}' but '{}' is not a format version; the header is damaged", 
        kHeaderMagic, EscapeForDisplay(version)));
  }
  if (std::stoi(std::string(version)) != kVersion) {
    return Status::NotSupported(fmt::format(
        "written in shardset tsv format version {}, and this shardset reads version {}: "
        "upgrade shardset, or pass --tsv-columns to read it with your own columns",
        version, kVersion));
  }
  std::vector<ColumnDef> columns{ColumnDef{"key"}};
  for (size_t i = 1; i < cells.size(); ++i) {
    std::string unknown;
    auto col = ParseColumnItem(cells[i], &unknown);
    if (!col.ok()) {
      if (!unknown.empty()) {
        return Status::NotSupported(fmt::format(
            "the header gives column {} the attribute '{}', which this shardset does not know: "
            "upgrade shardset, or pass --tsv-columns",
            i, EscapeForDisplay(unknown)));
      }
      return Status::Corruption(
          fmt::format("the header line is damaged: {}", col.status().message()));
    }
    columns.push_back(std::move(*col));
  }
  if (Status s = CheckUniqueNames(columns); !s.ok()) {
    return Status::Corruption(fmt::format("the header line is damaged: {}", s.message()));
  }
  return columns;
}

std::string FormatHeader(const std::vector<ColumnDef>& columns) {
  std::string out = fmt::format("{}{}", kHeaderMagic, kVersion);
  for (size_t i = 1; i < columns.size(); ++i) {
    out.push_back('\t');
    out += columns[i].name;
    if (columns[i].b64) out += ":b64";
    if (columns[i].derived) out += ":derived";
  }
  return out;
}

std::vector<ColumnDef> GuessColumns(const std::vector<std::vector<std::string_view>>& rows) {
  std::vector<ColumnDef> columns{ColumnDef{"key"}};
  if (rows.empty()) return columns;
  const size_t n = rows[0].size();
  for (size_t c = 1; c < n; ++c) {
    std::vector<std::string_view> values;
    for (const auto& row : rows) {
      if (row.size() == n) values.push_back(row[c]);
    }
    bool b64 = true;
    std::string_view type;
    for (std::string_view v : values) {
      if (v.size() < kGuessMinBase64Chars || IsAllHex(v) || !Base64Problem(v).empty()) {
        b64 = false;
        break;
      }
      const std::string head = DecodedPrefix(v);
      if (IsPlainTextPrefix(head)) {
        b64 = false;
        break;
      }
      const std::string_view t = SniffType(head);
      type = (type.empty() || type == t) ? t : std::string_view("bin");
    }
    ColumnDef col;
    if (b64) {
      col.b64 = true;
      col.name = std::string(type);
    } else if (std::all_of(values.begin(), values.end(), IsDecimalInteger)) {
      col.name = "cls";
    } else if (std::all_of(values.begin(), values.end(), IsJsonContainer)) {
      col.name = "json";
    } else {
      col.name = "txt";
    }
    columns.push_back(std::move(col));
  }
  // A type that names several columns becomes "<column>.<type>" in each.
  std::map<std::string, int> uses;
  for (size_t c = 1; c < n; ++c) ++uses[columns[c].name];
  for (size_t c = 1; c < n; ++c) {
    if (uses[columns[c].name] > 1) columns[c].name = fmt::format("{}.{}", c, columns[c].name);
  }
  return columns;
}

std::string Base64Problem(std::string_view text) {
  if (text.size() % 4 != 0) {
    return fmt::format("its length {} is not a multiple of 4", text.size());
  }
  const size_t pad = PaddingOf(text);
  if (pad > 2) return "it ends with more than two '='";
  const std::string_view body = text.substr(0, text.size() - pad);
  uint8_t bad = 0;
  for (unsigned char c : body) bad |= kInvalid[c];
  if (!bad) return {};
  for (size_t i = 0; i < body.size(); ++i) {
    const auto c = static_cast<unsigned char>(body[i]);
    if (!kInvalid[c]) continue;
    if (c == '=') return fmt::format("'=' at position {} is not at the end", i);
    return fmt::format("byte 0x{:02x} at position {} is not in the base64 alphabet", c, i);
  }
  return {};
}

uint64_t Base64DecodedSize(std::string_view text) {
  return text.size() / 4 * 3 - PaddingOf(text);
}

void Base64Decode(std::string_view text, char* out) {
  if (text.empty()) return;
  // All groups but the last decode in place; the last one may be padded, and
  // EVP_DecodeBlock writes 3 bytes for it whatever the padding.
  const std::string_view body = text.substr(0, text.size() - 4);
  for (size_t done = 0; done < body.size();) {
    const size_t n = std::min(kDecodeChunkChars, body.size() - done);
    EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out),
                    reinterpret_cast<const unsigned char*>(body.data() + done),
                    static_cast<int>(n));
    out += n / 4 * 3;
    done += n;
  }
  unsigned char last[4];
  EVP_DecodeBlock(last, reinterpret_cast<const unsigned char*>(text.data() + body.size()), 4);
  std::memcpy(out, last, 3 - PaddingOf(text));
}

void Base64Append(std::string_view bytes, std::string* out) {
  for (size_t done = 0; done < bytes.size();) {
    const size_t n = std::min(kEncodeChunkBytes, bytes.size() - done);
    const size_t at = out->size();
    const size_t encoded = (n + 2) / 3 * 4;
    out->resize(at + encoded + 1);  // EVP_EncodeBlock adds a NUL
    EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out->data() + at),
                    reinterpret_cast<const unsigned char*>(bytes.data() + done),
                    static_cast<int>(n));
    out->resize(at + encoded);
    done += n;
  }
}

bool IsTextCell(std::string_view bytes) {
  for (char c : bytes) {
    if (c == '\0' || c == '\t' || c == '\n' || c == '\r') return false;
  }
  return IsValidUtf8(bytes);
}

}  // namespace shardset::tsv
