#include "formats/tsv/tsv_shard.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/strings.h"
#include "formats/shard_file.h"
#include "formats/tsv/tsv_columns.h"

namespace shardset::tsv {
namespace {

// Verify reports at most this many damaged rows one by one, then a count.
constexpr size_t kMaxRowProblems = 100;

// ---- Sidecar names ----

// os.path.splitext(path)[0], as TSVFile names its sidecars: the extension is
// the last '.' of the basename and what follows, unless the basename has only
// dots before it.
std::string StemOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const size_t base = (slash == std::string::npos) ? 0 : slash + 1;
  const size_t dot = path.rfind('.');
  if (dot == std::string::npos || dot < base) return path;
  for (size_t i = base; i < dot; ++i) {
    if (path[i] != '.') return path.substr(0, dot);
  }
  return path;
}

std::string TextIndexPath(const std::string& path) { return StemOf(path) + ".lineidx"; }
std::string BinaryIndexPath(const std::string& path) { return StemOf(path) + ".lineidx.8b"; }

// ---- Rows ----

// Where data rows start: after the shardset header line, if the file has one.
uint64_t DataStart(std::string_view data) {
  if (!IsHeaderLine(data.substr(0, kHeaderMagic.size()))) return 0;
  const size_t nl = data.find('\n');
  return nl == std::string_view::npos ? data.size() : nl + 1;
}

// The first line of `data` without its terminator.
std::string_view FirstLine(std::string_view data) {
  std::string_view line = data.substr(0, data.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

Status TooManyRows(const std::string& path, uint64_t limit) {
  return Status::ResourceExhausted(fmt::format(
      "{}: has more than {} rows, the limit (--max-entries); raise --max-entries if the file is "
      "trusted",
      path, limit));
}

// Calls add(offset) for the start of every data row, in order: one memchr
// pass. A last line without '\n' is a row; a final '\n' does not start one
// (the rows TSVFile's generate_lineidx lists).
template <typename Add>
Status ForEachRowStart(const MappedFile& file, uint64_t start, uint64_t max_entries, Add add) {
  const char* p = file.data().data();
  const uint64_t size = file.size();
  uint64_t n = 0;
  for (uint64_t pos = start; pos < size;) {
    if (++n > max_entries) return TooManyRows(file.path(), max_entries);
    SHARDSET_RETURN_IF_ERROR(add(pos));
    const void* nl = std::memchr(p + pos, '\n', size - pos);
    if (nl == nullptr) break;
    pos = static_cast<uint64_t>(static_cast<const char*>(nl) - p) + 1;
  }
  return Status::OK();
}

// Parses a text line index (one decimal offset per line, surrounding blanks
// allowed as Python's int(line.strip()) does). Offsets must strictly
// increase and lie inside the tsv, which also bounds the row count by the
// tsv's size before anything is allocated per row.
Result<std::vector<uint64_t>> ParseTextIndex(std::string_view text, const std::string& name,
                                             const std::string& tsv, uint64_t tsv_size,
                                             uint64_t max_entries) {
  std::vector<uint64_t> offsets;
  uint64_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    ++line_no;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
    if (line.empty() || ec != std::errc() || ptr != line.data() + line.size()) {
      return Status::Corruption(fmt::format(
          "{}: line {}: '{}' is not a byte offset; the line index is damaged: rerun shardset "
          "index {}",
          name, line_no, EscapeForDisplay(line.substr(0, 40)), tsv));
    }
    if (v >= tsv_size || (!offsets.empty() && v <= offsets.back())) {
      return Status::Corruption(fmt::format(
          "{}: line {}: offset {} is {}; the line index is stale or belongs to another file: "
          "rerun shardset index {}",
          name, line_no, v,
          v >= tsv_size ? fmt::format("past the end of {} ({} bytes)", tsv, tsv_size)
                        : fmt::format("not after the previous one ({})", offsets.back()),
          tsv));
    }
    if (offsets.size() >= max_entries) return TooManyRows(tsv, max_entries);
    offsets.push_back(v);
  }
  return offsets;
}

// How `offsets` (a sidecar's) differ from the rows a scan found, or "".
template <typename Get>
std::string OffsetsMismatch(uint64_t n, Get get, const std::vector<uint64_t>& truth) {
  const uint64_t common = std::min<uint64_t>(n, truth.size());
  for (uint64_t i = 0; i < common; ++i) {
    if (get(i) != truth[i]) {
      return fmt::format("row {} starts at byte {} in it but at byte {} in the file", i, get(i),
                         truth[i]);
    }
  }
  if (n != truth.size()) {
    return fmt::format("it lists {} rows but the file has {}", n, truth.size());
  }
  return {};
}

// Streams both line indexes of a tsv to temporary files and commits them;
// the binary one first, which readers prefer, so a crash in between leaves a
// current .lineidx.8b beside the old text one, never the reverse.
class LineIndexWriter {
 public:
  static Result<LineIndexWriter> Create(const std::string& tsv) {
    LineIndexWriter w;
    SHARDSET_ASSIGN_OR_RETURN(w.binary_, AtomicFile::Create(BinaryIndexPath(tsv)));
    SHARDSET_ASSIGN_OR_RETURN(w.text_, AtomicFile::Create(TextIndexPath(tsv)));
    return w;
  }

  Status Add(uint64_t offset) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof(buf) - 1, offset);
    *r.ptr++ = '\n';
    SHARDSET_RETURN_IF_ERROR(text_->Append(std::string_view(buf, r.ptr - buf)));
    std::string bin;
    PutFixed64(&bin, offset);
    return binary_->Append(bin);
  }

  Status Commit(bool sync) {
    SHARDSET_RETURN_IF_ERROR(binary_->Commit(sync, /*overwrite=*/true));
    return text_->Commit(sync, /*overwrite=*/true);
  }

 private:
  std::unique_ptr<AtomicFile> binary_, text_;
};

// ---- Reading ----

enum class ColumnsFrom { kOption, kHeader, kGuess };

class TsvReader final : public ShardReader {
 public:
  static Result<std::unique_ptr<ShardReader>> Open(const std::string& path,
                                                   const ReadOptions& options);

  const std::string& path() const override { return data_.path(); }
  ShardFormat format() const override { return ShardFormat::kTsv; }
  uint64_t num_samples() const override { return num_rows_; }
  uint64_t file_size() const override { return data_.size(); }
  // Keys are whatever the file holds; Find uses a hash table (see Find).
  bool keys_sorted() const override { return false; }

  Status Read(uint64_t ordinal, Sample* out) const override {
    SHARDSET_ASSIGN_OR_RETURN(std::string_view line, Line(ordinal));
    return ParseRow(ordinal, line, out);
  }

  Result<std::string> Key(uint64_t ordinal) const override {
    SHARDSET_ASSIGN_OR_RETURN(std::string_view line, Line(ordinal));
    return std::string(line.substr(0, line.find('\t')));
  }

  // The first call reads every row's key (checking that each row is one
  // whole line) into a table of key hashes; later calls are O(1). With
  // duplicate keys, the first row wins. A key not found in a file with rows
  // that do not read is Corruption, not NotFound.
  Result<uint64_t> Find(std::string_view key) const override;

  Status Verify(VerifyReport* report) const override;

 private:
  TsvReader(MappedFile data, const ReadOptions& options) : data_(std::move(data)), options_(options) {}

  Status LoadRowOffsets();
  Status LoadColumns();

  uint64_t RowStart(uint64_t i) const {
    if (!binary_index_.data().empty()) return DecodeFixed64(binary_index_.data().data() + 8 * i);
    return offsets_[i];
  }

  // Row `i`'s line without its terminator ("\n" or "\r\n"), after checking
  // that the row offsets place exactly one whole line there.
  Result<std::string_view> Line(uint64_t i) const {
    if (i >= num_rows_) {
      return Status::NotFound(fmt::format("{}: no row {} (it has {} rows)", path(), i, num_rows_));
    }
    const uint64_t end = (i + 1 < num_rows_) ? RowStart(i + 1) : data_.size();
    return LineAt(i, RowStart(i), end, i + 1 == num_rows_, index_name_);
  }

  // The line in [start, end): `end` is just past its '\n' or, for the last
  // row, the end of the file. `index` names where the offsets came from.
  Result<std::string_view> LineAt(uint64_t i, uint64_t start, uint64_t end, bool last,
                                  const std::string& index) const;

  Status ParseRow(uint64_t i, std::string_view line, Sample* out) const;

  Status StaleIndex(uint64_t row, std::string_view what, const std::string& index) const;
  Status RowProblem(uint64_t i, std::string_view key, std::string_view what) const {
    return Status::Corruption(fmt::format("{}: row {} (key '{}'): {}", path(), i,
                                          EscapeForDisplay(key), what));
  }
  // What to do about a row that does not fit the columns, by their source.
  std::string ColumnsAdvice() const;

  MappedFile data_;
  ReadOptions options_;
  uint64_t data_start_ = 0;  // after the header line
  uint64_t num_rows_ = 0;
  // Row starts: the mapped .lineidx.8b, or parsed / scanned offsets.
  MappedFile binary_index_;
  std::vector<uint64_t> offsets_;
  std::string index_name_;  // the sidecar in use, or "" after a scan
  std::vector<ColumnDef> columns_;
  ColumnsFrom columns_from_ = ColumnsFrom::kGuess;

  struct KeyTable {
    std::once_flag once;
    std::vector<std::pair<uint64_t, uint64_t>> entries;  // (XXH3 of key, row), sorted
    Status damaged;  // the first row left out because it is not one whole line
  };
  std::unique_ptr<KeyTable> keys_ = std::make_unique<KeyTable>();
};

Status TsvReader::StaleIndex(uint64_t row, std::string_view what,
                             const std::string& index) const {
  if (index.empty()) {
    return Status::Corruption(fmt::format(
        "{}: row {}: the file changed while it was open ({}); reopen it", path(), row, what));
  }
  return Status::Corruption(fmt::format(
      "{}: row {}: the line index {} does not match the file ({}); it is stale or belongs to "
      "another file: rerun shardset index {}",
      path(), row, index, what, path()));
}

Result<std::string_view> TsvReader::LineAt(uint64_t i, uint64_t start, uint64_t end, bool last,
                                           const std::string& index) const {
  const uint64_t size = data_.size();
  const char* p = data_.data().data();
  if (start >= size || end > size || start >= end) {
    return StaleIndex(i, fmt::format("the row would span bytes {} to {} of a {}-byte file", start,
                                     end, size),
                      index);
  }
  if (start < data_start_) {
    return StaleIndex(i,
                      fmt::format("it starts at byte {}, inside the shardset header line; a "
                                  "tool that does not skip that line made it",
                                  start),
                      index);
  }
  if (start > data_start_ && p[start - 1] != '\n') {
    return StaleIndex(i, fmt::format("byte {} is not the start of a line", start), index);
  }
  const void* nl = std::memchr(p + start, '\n', end - start);
  const uint64_t nl_at = nl ? static_cast<uint64_t>(static_cast<const char*>(nl) - p) : end;
  if (nl_at + 1 != end && !(last && nl == nullptr)) {
    std::string what;
    if (last) {
      what = fmt::format("the last row, at byte {}, is followed by more lines", start);
    } else if (nl == nullptr) {
      what = fmt::format("the row at byte {} has no line end before the next row (byte {})",
                         start, end);
    } else {
      what = fmt::format("the row at byte {} ends at byte {}, not where the next row starts ({})",
                         start, nl_at + 1, end);
    }
    return StaleIndex(i, what, index);
  }
  std::string_view line(p + start, nl_at - start);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

std::string TsvReader::ColumnsAdvice() const {
  switch (columns_from_) {
    case ColumnsFrom::kOption:
      return "check --tsv-columns";
    case ColumnsFrom::kHeader:
      return "the file is damaged: re-create it";
    case ColumnsFrom::kGuess:
      break;
  }
  return fmt::format(
      "the columns were guessed from the first {} rows: pass --tsv-columns to set them "
      "(docs/formats/tsv.md \"Columns\")",
      kGuessRows);
}

Status TsvReader::ParseRow(uint64_t i, std::string_view line, Sample* out) const {
  std::vector<std::string_view> cells;
  cells.reserve(columns_.size());
  SplitCells(line, &cells);
  if (cells.size() != columns_.size()) {
    return RowProblem(
        i, cells[0],
        fmt::format("has {} columns but the file has {}; the row is damaged or the file mixes "
                    "layouts: fix or remove the row{}",
                    cells.size(), columns_.size(),
                    index_name_.empty() ? "" : ", then rerun shardset index " + path()));
  }
  out->ordinal = i;
  out->key.assign(cells[0]);
  out->fields.clear();
  out->storage.clear();
  // Decode sizes first: field views into `storage` are set only after it
  // stops growing.
  uint64_t decoded = 0;
  for (size_t c = 1; c < cells.size(); ++c) {
    const ColumnDef& col = columns_[c];
    if (col.skip || !col.b64) continue;
    if (std::string why = Base64Problem(cells[c]); !why.empty()) {
      return RowProblem(i, cells[0],
                        fmt::format("column {} ('{}') is not valid base64: {}; {}", c,
                                    EscapeForDisplay(col.name), why, ColumnsAdvice()));
    }
    const uint64_t size = Base64DecodedSize(cells[c]);
    if (size > options_.max_field_bytes) {
      return Status::ResourceExhausted(fmt::format(
          "{}: row {} (key '{}'): column {} ('{}') decodes to {} bytes, more than the limit of "
          "{} (--max-field-bytes); raise --max-field-bytes if the file is trusted",
          path(), i, EscapeForDisplay(cells[0]), c, EscapeForDisplay(col.name), size,
          options_.max_field_bytes));
    }
    decoded += size;
  }
  out->storage.resize(decoded);
  uint64_t at = 0;
  for (size_t c = 1; c < cells.size(); ++c) {
    const ColumnDef& col = columns_[c];
    if (col.skip || !col.b64) continue;
    Base64Decode(cells[c], out->storage.data() + at);
    at += Base64DecodedSize(cells[c]);
  }
  at = 0;
  const std::string_view storage = out->storage;
  for (size_t c = 1; c < cells.size(); ++c) {
    const ColumnDef& col = columns_[c];
    if (col.skip) continue;
    std::string_view bytes = cells[c];
    if (col.b64) {
      const uint64_t size = Base64DecodedSize(cells[c]);
      bytes = storage.substr(at, size);
      at += size;
    }
    out->fields.push_back(Field{col.name, bytes, col.derived ? uint8_t{kFieldDerived} : uint8_t{0}});
  }
  return Status::OK();
}

Status TsvReader::LoadRowOffsets() {
  const std::string tsv = path();
  const std::string binary = BinaryIndexPath(tsv), text = TextIndexPath(tsv);
  auto bin = MappedFile::Open(binary);
  if (bin.ok()) {
    if (bin->size() % 8 != 0) {
      return Status::Corruption(fmt::format(
          "{}: its size ({} bytes) is not a multiple of 8, so it is not a line index of 8-byte "
          "offsets; rerun shardset index {}",
          binary, bin->size(), tsv));
    }
    num_rows_ = bin->size() / 8;
    if (num_rows_ > options_.max_entries) return TooManyRows(tsv, options_.max_entries);
    binary_index_ = std::move(*bin);
    index_name_ = binary;
  } else if (!bin.status().IsNotFound()) {
    return bin.status();
  } else if (auto txt = MappedFile::Open(text); txt.ok()) {
    SHARDSET_ASSIGN_OR_RETURN(
        offsets_, ParseTextIndex(txt->data(), text, tsv, data_.size(), options_.max_entries));
    num_rows_ = offsets_.size();
    index_name_ = text;
  } else if (!txt.status().IsNotFound()) {
    return txt.status();
  } else {
    data_.AdviseSequential();
    SHARDSET_RETURN_IF_ERROR(
        ForEachRowStart(data_, data_start_, options_.max_entries, [&](uint64_t offset) {
          offsets_.push_back(offset);
          return Status::OK();
        }));
    num_rows_ = offsets_.size();
    return Status::OK();
  }
  // What a sidecar is checked against at open, in O(1) of its size: it
  // starts at the first data row and its last row ends the file, so a file
  // that grew, shrank or gained a header since indexing is caught here; the
  // rows in between are checked as they are read.
  if (num_rows_ == 0) {
    if (data_start_ < data_.size()) {
      return StaleIndex(0, "it lists no rows but the file has some", index_name_);
    }
    return Status::OK();
  }
  if (RowStart(0) != data_start_) {
    return StaleIndex(0,
                      fmt::format("the first row starts at byte {} in it but at byte {} in the file",
                                  RowStart(0), data_start_),
                      index_name_);
  }
  if (num_rows_ > data_.size()) {
    return StaleIndex(num_rows_ - 1,
                      fmt::format("it lists {} rows, more than the file's {} bytes", num_rows_,
                                  data_.size()),
                      index_name_);
  }
  return Line(num_rows_ - 1).status();
}

Status TsvReader::LoadColumns() {
  const std::string_view data = data_.data();
  if (!options_.tsv_columns.empty()) {
    SHARDSET_ASSIGN_OR_RETURN(columns_, ParseColumnSpec(options_.tsv_columns));
    columns_from_ = ColumnsFrom::kOption;
  } else if (data_start_ > 0) {
    auto header = ParseHeader(FirstLine(data));
    if (!header.ok()) return header.status().WithPrefix(path());
    columns_ = std::move(*header);
    columns_from_ = ColumnsFrom::kHeader;
  } else {
    std::vector<std::vector<std::string_view>> rows;
    for (uint64_t i = 0; i < std::min<uint64_t>(num_rows_, kGuessRows); ++i) {
      SHARDSET_ASSIGN_OR_RETURN(std::string_view line, Line(i));
      SplitCells(line, &rows.emplace_back());
    }
    // The columns are guessed from row 0's cells.
    if (!rows.empty() && rows[0].size() > kMaxColumns) {
      return Status::ResourceExhausted(fmt::format(
          "{}: row 0 has {} columns, more than the {} a tsv may have (a sample has at most {} "
          "fields)",
          path(), rows[0].size(), kMaxColumns, index::kMaxFields));
    }
    columns_ = GuessColumns(rows);
    columns_from_ = ColumnsFrom::kGuess;
    return Status::OK();
  }
  if (num_rows_ == 0) return Status::OK();
  SHARDSET_ASSIGN_OR_RETURN(std::string_view line, Line(0));
  const size_t n = std::count(line.begin(), line.end(), '\t') + 1;
  if (n == columns_.size()) return Status::OK();
  if (columns_from_ == ColumnsFrom::kOption) {
    return Status::InvalidArgument(fmt::format(
        "{}: --tsv-columns names {} columns but row 0 has {}; name every column, '-' for one "
        "to skip",
        path(), columns_.size(), n));
  }
  return Status::Corruption(fmt::format(
      "{}: the header line names {} columns but row 0 has {}; the file is damaged: re-create it",
      path(), columns_.size(), n));
}

Result<std::unique_ptr<ShardReader>> TsvReader::Open(const std::string& path,
                                                     const ReadOptions& options) {
  SHARDSET_ASSIGN_OR_RETURN(MappedFile data, MappedFile::Open(path));
  std::unique_ptr<TsvReader> r(new TsvReader(std::move(data), options));
  r->data_start_ = DataStart(r->data_.data());
  SHARDSET_RETURN_IF_ERROR(r->LoadRowOffsets());
  SHARDSET_RETURN_IF_ERROR(r->LoadColumns());
  r->data_.AdviseRandom();
  return std::unique_ptr<ShardReader>(std::move(r));
}

Result<uint64_t> TsvReader::Find(std::string_view key) const {
  std::call_once(keys_->once, [this] {
    auto& entries = keys_->entries;
    entries.reserve(num_rows_);
    for (uint64_t i = 0; i < num_rows_; ++i) {
      // Each row is checked to be one whole line, as a read checks it: a row
      // that is not (a damaged line index, damaged line ends) is left out,
      // and a key not found then says the file is damaged rather than that
      // the key is absent.
      auto line = Line(i);
      if (!line.ok()) {
        if (keys_->damaged.ok()) keys_->damaged = line.status();
        continue;
      }
      const std::string_view key_of_row = line->substr(0, line->find('\t'));
      entries.emplace_back(Xxh3(key_of_row), i);
    }
    std::sort(entries.begin(), entries.end());
  });
  const auto& entries = keys_->entries;
  const uint64_t h = Xxh3(key);
  for (auto it = std::lower_bound(entries.begin(), entries.end(), std::make_pair(h, uint64_t{0}));
       it != entries.end() && it->first == h; ++it) {
    // Hashes can collide: the answer is checked.
    SHARDSET_ASSIGN_OR_RETURN(std::string k, Key(it->second));
    if (k == key) return it->second;
  }
  if (!keys_->damaged.ok()) {
    return Status::Corruption(fmt::format(
        "{}: no readable row has the key '{}', and the file is damaged, so it may be in a row "
        "that does not read: {}",
        path(), EscapeForDisplay(key), keys_->damaged.message()));
  }
  return Status::NotFound(fmt::format("{}: no row with key '{}'", path(), EscapeForDisplay(key)));
}

Status TsvReader::Verify(VerifyReport* report) const {
  std::vector<uint64_t> truth;
  data_.AdviseSequential();
  Status scan = ForEachRowStart(data_, data_start_, options_.max_entries, [&](uint64_t offset) {
    truth.push_back(offset);
    return Status::OK();
  });
  if (!scan.ok()) {
    report->problems.push_back(scan.message());
    return Status::OK();
  }
  // Both line indexes, whichever one reads use.
  const std::string binary = BinaryIndexPath(path()), text = TextIndexPath(path());
  auto stale = [&](const std::string& index, std::string_view what) {
    report->problems.push_back(fmt::format(
        "{}: the line index {} does not match the file ({}); rerun shardset index {}", path(),
        index, what, path()));
  };
  if (auto bin = MappedFile::Open(binary); bin.ok()) {
    if (bin->size() % 8 != 0) {
      stale(binary, fmt::format("its size, {} bytes, is not a multiple of 8", bin->size()));
    } else {
      const char* b = bin->data().data();
      std::string what = OffsetsMismatch(
          bin->size() / 8, [&](uint64_t i) { return DecodeFixed64(b + 8 * i); }, truth);
      if (!what.empty()) stale(binary, what);
    }
  } else if (!bin.status().IsNotFound()) {
    report->problems.push_back(bin.status().message());
  }
  if (auto txt = MappedFile::Open(text); txt.ok()) {
    auto offsets = ParseTextIndex(txt->data(), text, path(), data_.size(), UINT64_MAX);
    if (!offsets.ok()) {
      report->problems.push_back(offsets.status().message());
    } else {
      std::string what = OffsetsMismatch(
          offsets->size(), [&](uint64_t i) { return (*offsets)[i]; }, truth);
      if (!what.empty()) {
        stale(text, what);
      } else {
        // Readers accept blanks, a CR and a missing last newline (as
        // Python's int(line.strip()) does); verify wants the bytes `shardset
        // index` writes, so that no damage passes as a harmless variant.
        std::string canonical;
        canonical.reserve(txt->size());
        for (uint64_t o : *offsets) canonical.append(std::to_string(o)).push_back('\n');
        if (canonical != txt->data()) {
          report->problems.push_back(fmt::format(
              "{}: the line index {} holds the right offsets but not in the form shardset "
              "index writes (one decimal number and a newline per row: blanks, a CR or the "
              "last newline differ); it was damaged or edited: rerun shardset index {}",
              path(), text, path()));
        }
      }
    }
  } else if (!txt.status().IsNotFound()) {
    report->problems.push_back(txt.status().message());
  }
  // Every row, at the offsets the scan found (a stale index is reported once
  // above, not once per row).
  Sample sample;
  uint64_t damaged = 0;
  for (uint64_t i = 0; i < truth.size(); ++i) {
    const uint64_t end = (i + 1 < truth.size()) ? truth[i + 1] : data_.size();
    auto line = LineAt(i, truth[i], end, i + 1 == truth.size(), "");
    Status s = line.ok() ? ParseRow(i, *line, &sample) : line.status();
    ++report->samples_checked;
    if (!s.ok()) {
      if (++damaged <= kMaxRowProblems) report->problems.push_back(s.message());
      continue;
    }
    for (const Field& f : sample.fields) report->bytes_checked += f.data.size();
  }
  if (damaged > kMaxRowProblems) {
    report->problems.push_back(fmt::format("{}: {} more damaged rows not listed", path(),
                                           damaged - kMaxRowProblems));
  }
  data_.AdviseRandom();
  return Status::OK();
}

// ---- Writing ----

class TsvWriter final : public ShardWriter {
 public:
  TsvWriter(std::unique_ptr<AtomicFile> file, const WriteOptions& options)
      : file_(std::move(file)), options_(options) {}

  Status Add(const InputSample& sample) override {
    SHARDSET_RETURN_IF_ERROR(file_.Usable());
    if (std::string why = KeyProblem(sample.key); !why.empty()) {
      return file_.InvalidSample(sample.key, why);
    }
    if (columns_.empty()) SHARDSET_RETURN_IF_ERROR(StartColumns(sample));
    // Field i of the row: the sample's field for column i.
    order_.assign(columns_.size(), nullptr);
    for (const InputField& f : sample.fields) {
      auto col = std::find_if(columns_.begin() + 1, columns_.end(),
                              [&](const ColumnDef& c) { return c.name == f.name; });
      if (col == columns_.end() || order_[col - columns_.begin()] != nullptr) {
        return FieldSetMismatch(sample);
      }
      order_[col - columns_.begin()] = &f;
    }
    if (sample.fields.size() + 1 != columns_.size()) return FieldSetMismatch(sample);
    line_.assign(sample.key);
    for (size_t c = 1; c < columns_.size(); ++c) {
      line_.push_back('\t');
      const std::string& data = order_[c]->data;
      if (columns_[c].b64) {
        Base64Append(data, &line_);
      } else if (IsTextCell(data)) {
        line_ += data;
      } else {
        return file_.InvalidSample(
            sample.key,
            fmt::format("field '{}' is not UTF-8 text without tab, newline, CR or NUL, but its "
                        "column holds text as is (the first sample, '{}', made it a text "
                        "column); a tsv cannot store it: pack to native, tar or zip",
                        EscapeForDisplay(columns_[c].name), EscapeForDisplay(first_key_)));
      }
    }
    line_.push_back('\n');
    const uint64_t offset = file_.offset();
    SHARDSET_RETURN_IF_ERROR(file_.Append(line_));
    offsets_.push_back(offset);
    if (offsets_.size() == 1) first_key_ = sample.key;
    last_key_ = sample.key;
    return Status::OK();
  }

  uint64_t num_samples() const override { return offsets_.size(); }
  uint64_t bytes_written() const override { return file_.offset(); }

  Result<ShardInfo> Close() override {
    SHARDSET_RETURN_IF_ERROR(file_.Usable());
    file_.MarkClosed();
    if (columns_.empty()) {
      // No samples, so no columns: a header alone keeps the file a tsv.
      SHARDSET_RETURN_IF_ERROR(file_.Append(FormatHeader({ColumnDef{"key"}}) + "\n"));
    }
    ShardInfo info;
    info.path = file_.final_path();
    info.format = ShardFormat::kTsv;
    info.num_samples = offsets_.size();
    info.file_size = file_.offset();
    info.xxh3 = file_.xxh3();
    info.first_key = first_key_;
    info.last_key = last_key_;
    SHARDSET_RETURN_IF_ERROR(file_.Commit(options_.sync, options_.overwrite));
    if (options_.sidecar_index) {
      Status s = WriteSidecars(info.path);
      if (!s.ok()) {
        return s.WithPrefix(fmt::format(
            "{}: the tsv was written but its line index was not (run shardset index {})",
            info.path, info.path));
      }
    }
    return info;
  }

 private:
  static std::string KeyProblem(std::string_view key) {
    if (key.empty()) return "the key is empty; a tsv row starts with its key";
    if (!IsTextCell(key)) {
      return "a key in a tsv must be UTF-8 without tab, newline, CR or NUL (they would split "
             "the row); pack to native, tar or zip";
    }
    return {};
  }

  // The first sample fixes the columns: its fields in its order; a field
  // that is text (IsTextCell) is a text column, any other base64.
  Status StartColumns(const InputSample& s) {
    std::vector<ColumnDef> columns{ColumnDef{"key"}};
    for (const InputField& f : s.fields) {
      if (std::string why = FieldNameProblem(f.name); !why.empty()) {
        return file_.InvalidSample(s.key,
                                   fmt::format("field '{}': {}", EscapeForDisplay(f.name), why));
      }
      ColumnDef col;
      col.name = f.name;
      col.b64 = !IsTextCell(f.data);
      col.derived = f.flags & kFieldDerived;
      columns.push_back(std::move(col));
    }
    for (size_t i = 1; i < columns.size(); ++i) {
      for (size_t j = 1; j < i; ++j) {
        if (columns[i].name == columns[j].name) {
          return file_.InvalidSample(
              s.key, fmt::format("has field '{}' twice", EscapeForDisplay(columns[i].name)));
        }
      }
    }
    SHARDSET_RETURN_IF_ERROR(file_.Append(FormatHeader(columns) + "\n"));
    columns_ = std::move(columns);
    return Status::OK();
  }

  Status FieldSetMismatch(const InputSample& s) const {
    std::string want, got;
    for (size_t c = 1; c < columns_.size(); ++c) want += (c > 1 ? ", " : "") + columns_[c].name;
    for (const InputField& f : s.fields) got += (got.empty() ? "" : ", ") + EscapeForDisplay(f.name);
    return file_.InvalidSample(s.key, fmt::format(
        "has fields ({}) but the tsv's columns, fixed by its first sample, are ({}); every row of "
        "a tsv has the same columns: pack samples with varying fields to native, tar or zip",
        got, want));
  }

  Status WriteSidecars(const std::string& path) const {
    SHARDSET_ASSIGN_OR_RETURN(LineIndexWriter w, LineIndexWriter::Create(path));
    for (uint64_t offset : offsets_) SHARDSET_RETURN_IF_ERROR(w.Add(offset));
    return w.Commit(options_.sync);
  }

  ShardFile file_;
  WriteOptions options_;
  std::vector<ColumnDef> columns_;  // empty until the first sample
  std::vector<const InputField*> order_;
  std::vector<uint64_t> offsets_;  // row starts, for the line indexes
  std::string line_;
  std::string first_key_, last_key_;
};

}  // namespace

bool Looks(const Probe& probe) {
  const std::string_view head = probe.head;
  if (head.empty()) return false;
  if (IsHeaderLine(head.substr(0, kHeaderMagic.size()))) return true;
  // Text: no control bytes but tab, LF, VT, FF and CR (which also rules out
  // the binary .lineidx.8b and every format with NUL bytes).
  for (unsigned char c : head) {
    if (c < 0x20 && (c < '\t' || c > '\r')) return false;
  }
  // The first line has a tab, and at least 3 in 4 of the lines the probe
  // holds whole have as many: prose and code that merely contain tabs are
  // not claimed, and a file with a damaged row still is (so that reading it
  // names the row).
  const bool whole_file = head.size() == probe.size;
  size_t tabs = 0, lines = 0, same = 0;
  for (size_t start = 0; start < head.size();) {
    size_t nl = head.find('\n', start);
    if (nl == std::string_view::npos && !whole_file) {
      // A line cut by the probe: only the first line is judged from a part.
      if (lines == 0) return std::count(head.begin(), head.end(), '\t') > 0;
      break;
    }
    if (nl == std::string_view::npos) nl = head.size();
    const size_t n = std::count(head.begin() + start, head.begin() + nl, '\t');
    if (lines++ == 0) tabs = n;
    if (n == tabs) ++same;
    start = nl + 1;
  }
  return tabs > 0 && same * 4 >= lines * 3;
}

Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options) {
  return TsvReader::Open(path, options);
}

Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options) {
  SHARDSET_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path, options.sync));
  return std::unique_ptr<ShardWriter>(new TsvWriter(std::move(file), options));
}

Result<uint64_t> WriteIndex(const std::string& path, const ReadOptions& options, bool sync) {
  SHARDSET_ASSIGN_OR_RETURN(MappedFile tsv, MappedFile::Open(path));
  tsv.AdviseSequential();
  SHARDSET_ASSIGN_OR_RETURN(LineIndexWriter w, LineIndexWriter::Create(path));
  uint64_t n = 0;
  SHARDSET_RETURN_IF_ERROR(
      ForEachRowStart(tsv, DataStart(tsv.data()), options.max_entries, [&](uint64_t offset) {
        ++n;
        return w.Add(offset);
      }));
  SHARDSET_RETURN_IF_ERROR(w.Commit(sync));
  return n;
}

std::vector<std::string> SidecarPaths(const std::string& path) {
  return {TextIndexPath(path), BinaryIndexPath(path)};
}

}  // namespace shardset::tsv
