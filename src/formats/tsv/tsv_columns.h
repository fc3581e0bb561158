// The pieces of the tsv format that do not touch files: the column model
// (which column is which field, and which are base64), its three sources (the
// --tsv-columns option, the shardset header line, a guess from the first
// rows), and strict base64 (docs/formats/tsv.md "Columns", "Base64").
//
// Everything here is a pure function of its arguments, so it is tested and
// fuzzed without files.
#ifndef SHARDSET_FORMATS_TSV_TSV_COLUMNS_H_
#define SHARDSET_FORMATS_TSV_TSV_COLUMNS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "index/index.h"
#include "shardset/status.h"

namespace shardset::tsv {

// The header line shardset writes starts with this cell, followed by the
// format version (docs/formats/tsv.md "Header line").
inline constexpr std::string_view kHeaderMagic = "#shardset-tsv/";
inline constexpr int kVersion = 1;
// How many data rows the guess looks at (docs/formats/tsv.md "Guessed columns").
inline constexpr size_t kGuessRows = 32;
// A base64 value shorter than this is never guessed to be base64.
inline constexpr size_t kGuessMinBase64Chars = 16;
// The most columns a file may have, the key included: a sample has at most
// index::kMaxFields fields, as in every other format (docs/formats/tsv.md
// "Limits"). Checked before the columns are parsed or compared.
inline constexpr size_t kMaxColumns = size_t{index::kMaxFields} + 1;

// One column of a tsv file. Column 0 is the sample key; its ColumnDef only
// counts (its name is "key").
struct ColumnDef {
  std::string name;
  bool b64 = false;      // the cell is standard base64; the field is its decoding
  bool derived = false;  // the field carries kFieldDerived
  bool skip = false;     // "-": the column is read but not returned as a field
  bool operator==(const ColumnDef&) const = default;
};

// Parses the --tsv-columns option ("key,cls,png:b64"): comma-separated items,
// the first "key", the others "-" (skip) or NAME[:b64][:derived].
// InvalidArgument naming the option and the item.
Result<std::vector<ColumnDef>> ParseColumnSpec(std::string_view spec);

// True when `line` (the file's first line) is meant to be a shardset header.
bool IsHeaderLine(std::string_view line);
// Parses a header line (without its line terminator). NotSupported for a
// version other than kVersion or an unknown attribute; Corruption otherwise.
// Messages do not name the file; the caller prefixes it.
Result<std::vector<ColumnDef>> ParseHeader(std::string_view line);
// The header line for `columns` (columns[0] is the key), without '\n'.
std::string FormatHeader(const std::vector<ColumnDef>& columns);
// Why `name` cannot name a column in a header or --tsv-columns, or "".
std::string FieldNameProblem(std::string_view name);

// Guesses the columns from sampled rows (cells of each row, cell 0 the key;
// rows with another cell count than rows[0] are ignored). See
// docs/formats/tsv.md "Guessed columns" for the rule.
std::vector<ColumnDef> GuessColumns(const std::vector<std::vector<std::string_view>>& rows);

// The cells of a line (without terminator), split at every tab.
void SplitCells(std::string_view line, std::vector<std::string_view>* cells);

// ---- Base64 (RFC 4648 section 4: standard alphabet, '=' padding required) ----

// Why `text` is not strict base64 ("" when it is): its length is a multiple
// of 4, every byte is in A-Z a-z 0-9 + /, and '=' appears only as the last one
// or two bytes.
std::string Base64Problem(std::string_view text);
// The decoded size of strict base64 `text`.
uint64_t Base64DecodedSize(std::string_view text);
// Decodes strict base64 `text` (Base64Problem(text) is "") into `out`, which
// has Base64DecodedSize(text) bytes.
void Base64Decode(std::string_view text, char* out);
// Appends the base64 of `bytes`, padded, without line breaks.
void Base64Append(std::string_view bytes, std::string* out);

// True when `bytes` is valid UTF-8 without NUL, tab, LF or CR: a value a tsv
// text cell holds as is.
bool IsTextCell(std::string_view bytes);

}  // namespace shardset::tsv

#endif  // SHARDSET_FORMATS_TSV_TSV_COLUMNS_H_
