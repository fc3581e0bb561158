#include "formats/tar/tar_scan.h"

#include "formats/sample_key.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/hash.h"
#include "base/strings.h"

namespace shardset::tar {
namespace {

constexpr std::string_view kDamaged = "the tar is truncated or damaged: restore or re-download it";

Status MakeStatus(Status::Code code, std::string msg) {
  switch (code) {
    case Status::Code::kNotSupported: return Status::NotSupported(std::move(msg));
    case Status::Code::kResourceExhausted: return Status::ResourceExhausted(std::move(msg));
    default: return Status::Corruption(std::move(msg));
  }
}

// What to tell the user after an error of `code`.
std::string_view Advice(Status::Code code) {
  switch (code) {
    case Status::Code::kNotSupported:
      return "shardset cannot map its bytes: extract the tar and pack the files instead";
    case Status::Code::kResourceExhausted:
      return "shardset refuses such large headers (docs/formats/tar.md \"Limits\")";
    default: return kDamaged;
  }
}

bool IsExtension(char typeflag) {
  return typeflag == kPaxLocal || typeflag == kPaxSolaris || typeflag == kPaxGlobal ||
         typeflag == kGnuLongName || typeflag == kGnuLongLink;
}

// A sparse 1.0 map holds at most this many (offset, numbytes) pairs; GNU tar
// writes one per data run, and real files have far fewer.
constexpr uint64_t kMaxSparseChunks = 1 << 20;

ArchiveEntry::Type TypeOf(char typeflag) {
  switch (typeflag) {
    case kRegular:
    case kContiguous:
    case kGnuSparse: return ArchiveEntry::Type::kFile;
    case kDirectory: return ArchiveEntry::Type::kDirectory;
    case kSymlink: return ArchiveEntry::Type::kSymlink;
    case kHardlink: return ArchiveEntry::Type::kHardlink;
    case '3': return ArchiveEntry::Type::kCharDevice;
    case '4': return ArchiveEntry::Type::kBlockDevice;
    case '6': return ArchiveEntry::Type::kFifo;
    default: return ArchiveEntry::Type::kOther;
  }
}

}  // namespace

std::string_view NormalizeMemberPath(std::string_view path) {
  while (path.substr(0, 2) == "./") path.remove_prefix(2);
  return path;
}

KeyField SplitMemberPath(std::string_view path) {
  auto [key, field] = SplitKeyField(path);
  return {key, field};
}

// ---- EntryWalker ----

EntryWalker::EntryWalker(TarSource* source, std::string_view tar_name)
    : src_(source), tar_name_(tar_name) {}

Status EntryWalker::HeaderError(Status::Code code, uint64_t header_at,
                                std::string_view what) const {
  const std::string after = last_name_.empty()
                                ? std::string("before the first member")
                                : fmt::format("after member '{}'", EscapeForDisplay(last_name_));
  return MakeStatus(code, fmt::format("{}: header at byte {} ({}): {}; {}", tar_name_, header_at,
                                      after, what, Advice(code)));
}

Status EntryWalker::EntryError(Status::Code code, std::string_view name, uint64_t header_at,
                               std::string_view what) const {
  return MakeStatus(code, fmt::format("{}: member '{}' (header at byte {}): {}; {}", tar_name_,
                                      EscapeForDisplay(name), header_at, what, Advice(code)));
}

Result<bool> EntryWalker::Next(Entry* out) {
  if (!error_.ok()) return error_;
  Result<bool> r = NextImpl(out);
  if (!r.ok()) error_ = r.status();
  return r;
}

uint64_t EntryWalker::DataSize(const Header& h) const {
  if (!HasData(h.typeflag)) return 0;
  if (!IsExtension(h.typeflag) && pax_.size) return *pax_.size;
  return h.size;
}

Status EntryWalker::ReadHeaderAt(uint64_t header_at, Header* h, std::string* raw) {
  SHARDSET_ASSIGN_OR_RETURN(std::string_view block, src_->Read(header_at, kBlockSize));
  if (block.size() < kBlockSize) {
    return HeaderError(Status::Code::kCorruption, header_at,
                       fmt::format("the file ends {} bytes into a header block", block.size()));
  }
  raw->assign(block);
  Status s = DecodeHeader(block, h);
  if (!s.ok()) return HeaderError(Status::Code::kCorruption, header_at, s.message());
  return Status::OK();
}

Result<std::string_view> EntryWalker::ReadPayload(uint64_t header_at, uint64_t data,
                                                  uint64_t size) {
  SHARDSET_ASSIGN_OR_RETURN(std::string_view payload, src_->Read(data, size));
  if (payload.size() < size) {
    return HeaderError(Status::Code::kCorruption, header_at,
                       fmt::format("the file ends {} bytes into an extended header of {} bytes",
                                   payload.size(), size));
  }
  return payload;
}

Result<bool> EntryWalker::NextImpl(Entry* out) {
  for (;;) {
    const uint64_t header_at = pos_;
    SHARDSET_ASSIGN_OR_RETURN(std::string_view first, src_->Read(pos_, kBlockSize));
    if (first.empty() || IsZeroBlock(first)) {
      // A stream learns its size only here: the last entry's data may have
      // been cut short.
      const std::optional<uint64_t> size = src_->size();
      if (first.empty() && size && *size < data_end_) {
        return HeaderError(Status::Code::kCorruption, header_at,
                           fmt::format("the file ends {} bytes before the end of the last "
                                       "member's data",
                                       data_end_ - *size));
      }
      // Extended headers left without their member describe nothing: the
      // archive ends here all the same (as Go's archive/tar reads it).
      return false;
    }
    Header h;
    std::string raw;
    SHARDSET_RETURN_IF_ERROR(ReadHeaderAt(header_at, &h, &raw));
    if (chain_start_ == kNone) chain_start_ = header_at;
    const uint64_t data = header_at + kBlockSize;
    uint64_t size = DataSize(h);
    const std::string& raw_name = pax_.path ? *pax_.path : long_name_ ? *long_name_ : h.path;
    const bool directory = h.typeflag == kDirectory ||
                           (IsRegularType(h.typeflag) && !raw_name.empty() && raw_name.back() == '/');
    if (directory && h.size > 0) {
      // Some writers give a directory a size, some of them followed by that
      // much data: when a header (or the end) follows, there is none (as
      // libarchive reads them).
      SHARDSET_ASSIGN_OR_RETURN(std::string_view next, src_->Read(data, kBlockSize));
      const bool header_follows =
          next.size() < kBlockSize || IsZeroBlock(next) || ChecksumMatches(next);
      size = header_follows ? 0 : h.size;
    }
    const std::optional<uint64_t> file_size = src_->size();
    const bool truncated = file_size && size > *file_size - std::min(*file_size, data);
    if (IsExtension(h.typeflag)) {
      if (truncated) {
        return HeaderError(Status::Code::kCorruption, header_at,
                           fmt::format("its extended header claims {} bytes but the file ends "
                                       "first",
                                       size));
      }
      SHARDSET_ASSIGN_OR_RETURN(bool extension, ReadExtension(h.typeflag, header_at, size));
      if (extension) {
        pos_ = data + size + PaddingAfter(size);
        continue;
      }
    }
    Entry e;
    e.header_offset = chain_start_;
    e.info.name = pax_.path ? *pax_.path : long_name_ ? *long_name_ : h.path;
    if (h.typeflag == kPaxGlobal && global_path_) e.info.name = *global_path_;
    e.info.linkname = pax_.linkpath ? *pax_.linkpath : long_link_ ? *long_link_ : h.linkname;
    e.info.typeflag = h.typeflag;
    if (h.typeflag == kRegularOld) {
      const bool dir = !e.info.name.empty() && e.info.name.back() == '/';
      e.info.typeflag = dir ? kDirectory : kRegular;
    }
    e.info.type = TypeOf(e.info.typeflag);
    e.info.mode = h.mode;
    e.info.mtime = pax_.mtime ? *pax_.mtime : h.mtime;
    // Links carry no data; other non-file types report their size field as
    // libarchive does (a directory may claim one without data following).
    const bool link = h.typeflag == kHardlink || h.typeflag == kSymlink;
    e.info.size = link ? 0 : directory ? h.size : HasData(h.typeflag) ? size : h.size;
    e.data_offset = data;
    e.stored_size = size;
    e.truncated = truncated;
    pos_ = data + size + PaddingAfter(size);
    if (file_size) pos_ = std::min(pos_, std::max(*file_size, data));
    if (h.typeflag == kGnuSparse) {
      SHARDSET_RETURN_IF_ERROR(ReadOldGnuSparse(raw, header_at, &e));
    } else if (pax_.sparse && (!pax_.sparse_major.empty() || pax_.has_sparse_map)) {
      e.sparse = true;
      if (pax_.sparse_name) e.info.name = *pax_.sparse_name;
      if (pax_.sparse_size) e.info.size = *pax_.sparse_size;
      if (pax_.sparse_major == "1") {
        if (!truncated) SHARDSET_RETURN_IF_ERROR(ReadSparseMap10(header_at, &e));
      } else {
        if (pax_.sparse_map.size() % 2 != 0) {
          return EntryError(Status::Code::kCorruption, e.info.name, header_at,
                            "its GNU sparse map has an odd number of values");
        }
        for (size_t i = 0; i < pax_.sparse_map.size(); i += 2) {
          e.chunks.push_back({pax_.sparse_map[i], pax_.sparse_map[i + 1]});
        }
      }
    }
    if (e.sparse && !truncated) SHARDSET_RETURN_IF_ERROR(CheckSparse(e));
    // The extended headers before an entry apply to it alone.
    chain_start_ = kNone;
    pax_ = PaxHeader();
    long_name_.reset();
    long_link_.reset();
    last_name_ = e.info.name;
    data_end_ = data + size;
    if (truncated) {
      error_ = EntryError(Status::Code::kCorruption, e.info.name, e.header_offset,
                          fmt::format("its header claims {} bytes of data but the file ends {} "
                                      "bytes after the header",
                                      size, *file_size - std::min(*file_size, data)));
    }
    if (h.typeflag == kGnuVolumeLabel) continue;
    *out = std::move(e);
    return true;
  }
}

Result<bool> EntryWalker::ReadExtension(char typeflag, uint64_t header_at, uint64_t size) {
  const uint64_t data = header_at + kBlockSize;
  switch (typeflag) {
    case kPaxLocal:
    case kPaxSolaris:
    case kPaxGlobal: {
      if (size > kMaxPaxHeaderBytes) {
        return HeaderError(Status::Code::kResourceExhausted, header_at,
                           fmt::format("pax extended header of {} bytes (the limit is {})", size,
                                       kMaxPaxHeaderBytes));
      }
      SHARDSET_ASSIGN_OR_RETURN(std::string_view payload, ReadPayload(header_at, data, size));
      // Global records hold defaults none of which shardset uses, but they
      // are checked like local ones and the header is an entry (as in Go).
      // A later 'x' header before the same member replaces an earlier one
      // (as in Go and GNU tar).
      PaxHeader records;
      Status s = ParsePaxRecords(payload, &records);
      if (!s.ok()) return HeaderError(Status::Code::kCorruption, header_at, s.message());
      if (typeflag == kPaxGlobal) {
        global_path_ = std::move(records.path);
        return false;
      }
      pax_ = std::move(records);
      return true;
    }
    case kGnuLongName:
    case kGnuLongLink: {
      if (size > kMaxLongNameBytes) {
        return HeaderError(Status::Code::kCorruption, header_at,
                           fmt::format("GNU long name of {} bytes (the limit is {})", size,
                                       kMaxLongNameBytes));
      }
      SHARDSET_ASSIGN_OR_RETURN(std::string_view payload, ReadPayload(header_at, data, size));
      // The name ends at its first NUL, like GNU tar reads it; when several
      // precede one member, the last wins (as GNU tar and Go).
      std::string name(payload.substr(0, payload.find('\0')));
      (typeflag == kGnuLongName ? long_name_ : long_link_) = std::move(name);
      return true;
    }
    default:
      return false;
  }
}

Status EntryWalker::ReadOldGnuSparse(std::string_view block, uint64_t header_at, Entry* e) {
  e->sparse = true;
  std::optional<uint64_t> real = ParseNumber(block.substr(kGnuRealSizeField.offset,
                                                          kGnuRealSizeField.size));
  if (!real) {
    return EntryError(Status::Code::kCorruption, e->info.name, header_at,
                      "its GNU sparse real size is malformed");
  }
  e->info.size = *real;
  // Pairs whose offset field starts with NUL end the list (as GNU tar).
  auto read_pairs = [&](std::string_view pairs, size_t n) -> Result<bool> {
    for (size_t i = 0; i < n; ++i) {
      std::string_view entry = pairs.substr(i * kGnuSparseEntrySize, kGnuSparseEntrySize);
      if (entry[0] == '\0') return false;
      std::optional<uint64_t> off = ParseNumber(entry.substr(0, 12));
      std::optional<uint64_t> len = ParseNumber(entry.substr(12, 12));
      if (!off || !len) {
        return EntryError(Status::Code::kCorruption, e->info.name, header_at,
                          "its GNU sparse map holds a malformed number");
      }
      if (e->chunks.size() >= kMaxSparseChunks) {
        return EntryError(Status::Code::kResourceExhausted, e->info.name, header_at,
                          fmt::format("its sparse map has over {} runs", kMaxSparseChunks));
      }
      e->chunks.push_back({*off, *len});
    }
    return true;
  };
  SHARDSET_RETURN_IF_ERROR(
      read_pairs(block.substr(kGnuSparseOffset), kGnuSparseEntries).status());
  bool extended = block[kGnuIsExtendedOffset] != '\0';
  while (extended) {
    // Extension blocks sit between the header and the data.
    SHARDSET_ASSIGN_OR_RETURN(std::string_view ext, src_->Read(e->data_offset, kBlockSize));
    if (ext.size() < kBlockSize) {
      return EntryError(Status::Code::kCorruption, e->info.name, header_at,
                        "the file ends inside its GNU sparse map");
    }
    SHARDSET_RETURN_IF_ERROR(read_pairs(ext, kGnuSparseExtEntries).status());
    extended = ext[kGnuSparseExtFlagOffset] != '\0';
    e->data_offset += kBlockSize;
    pos_ += kBlockSize;
  }
  return Status::OK();
}

Status EntryWalker::ReadSparseMap10(uint64_t header_at, Entry* e) {
  // Decimal numbers, one per line: the count, then offset/numbytes pairs;
  // padded with NULs to a whole block. The stored data follows.
  std::string text;
  uint64_t want = 0;  // numbers still to read; 0 until the count is known
  bool have_count = false;
  std::vector<uint64_t> values;
  uint64_t at = e->data_offset;
  std::string line;
  while (!have_count || want > 0) {
    if (at - e->data_offset >= e->stored_size) {
      return EntryError(Status::Code::kCorruption, e->info.name, header_at,
                        "its GNU sparse 1.0 map runs past its data");
    }
    SHARDSET_ASSIGN_OR_RETURN(std::string_view block, src_->Read(at, kBlockSize));
    if (block.size() < kBlockSize) {
      return EntryError(Status::Code::kCorruption, e->info.name, header_at,
                        "the file ends inside its GNU sparse map");
    }
    at += kBlockSize;
    for (char c : block) {
      if (have_count && want == 0) break;
      if (c != '\n') {
        if (line.size() > 20) {
          return EntryError(Status::Code::kCorruption, e->info.name, header_at,
                            "its GNU sparse 1.0 map holds a malformed number");
        }
        line += c;
        continue;
      }
      std::optional<uint64_t> v = ParseDecimal(line);
      line.clear();
      if (!v) {
        return EntryError(Status::Code::kCorruption, e->info.name, header_at,
                          "its GNU sparse 1.0 map holds a malformed number");
      }
      if (!have_count) {
        if (*v > kMaxSparseChunks) {
          return EntryError(Status::Code::kResourceExhausted, e->info.name, header_at,
                            fmt::format("its sparse map has {} runs (the limit is {})", *v,
                                        kMaxSparseChunks));
        }
        have_count = true;
        want = 2 * *v;
      } else {
        values.push_back(*v);
        --want;
      }
    }
  }
  for (size_t i = 0; i + 1 < values.size(); i += 2) e->chunks.push_back({values[i], values[i + 1]});
  const uint64_t map_bytes = at - e->data_offset;
  e->data_offset = at;
  e->stored_size -= map_bytes;
  return Status::OK();
}

Status EntryWalker::CheckSparse(const Entry& e) const {
  uint64_t end = 0, stored = 0;
  for (const SparseChunk& c : e.chunks) {
    if (c.offset < end || c.size > e.info.size || c.offset > e.info.size - c.size) {
      return EntryError(Status::Code::kCorruption, e.info.name, e.header_offset,
                        "its sparse map has runs out of order or past the file's size");
    }
    end = c.offset + c.size;
    stored += c.size;
  }
  if (stored != e.stored_size) {
    return EntryError(Status::Code::kCorruption, e.info.name, e.header_offset,
                      fmt::format("its sparse map covers {} bytes but {} are stored", stored,
                                  e.stored_size));
  }
  return Status::OK();
}

Result<std::string> EntryWalker::ReadData(const Entry& e, uint64_t limit) {
  if (e.truncated) return error_;
  const uint64_t logical = e.sparse ? e.info.size : e.stored_size;
  if (logical > limit) {
    return EntryError(Status::Code::kResourceExhausted, e.info.name, e.header_offset,
                      fmt::format("its data is {} bytes, over the {} byte limit (raise it with "
                                  "--max-field-bytes)",
                                  logical, limit));
  }
  std::string out;
  out.reserve(logical);
  // Stored bytes in order; for a sparse file each run is placed at its
  // offset and the holes between are zeros.
  size_t chunk = 0;
  uint64_t chunk_done = 0;
  for (uint64_t done = 0; done < e.stored_size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(e.stored_size - done,
                                                            TarSource::kMaxRead));
    SHARDSET_ASSIGN_OR_RETURN(std::string_view piece, src_->Read(e.data_offset + done, n));
    if (piece.empty()) {
      return EntryError(Status::Code::kCorruption, e.info.name, e.header_offset,
                        "the file ends inside its data");
    }
    if (!e.sparse) {
      out.append(piece);
    } else {
      while (!piece.empty()) {
        while (chunk < e.chunks.size() && chunk_done == e.chunks[chunk].size) {
          ++chunk;
          chunk_done = 0;
        }
        const SparseChunk& c = e.chunks[chunk];
        if (out.size() < c.offset + chunk_done) out.resize(c.offset + chunk_done, '\0');
        const size_t take = static_cast<size_t>(std::min<uint64_t>(piece.size(),
                                                                   c.size - chunk_done));
        out.append(piece.substr(0, take));
        piece.remove_prefix(take);
        chunk_done += take;
      }
    }
    done += n;
  }
  out.resize(logical, '\0');
  return out;
}

Status ForEachEntry(TarSource* source, std::string_view tar_name, const ReadOptions& options,
                    const EntryVisitor& visit) {
  EntryWalker walker(source, tar_name);
  Entry e;
  uint64_t count = 0;
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(bool more, walker.Next(&e));
    if (!more) return Status::OK();
    if (++count > options.max_entries) {
      return Status::ResourceExhausted(fmt::format(
          "{}: more than {} entries (raise the limit with --max-entries)", tar_name,
          options.max_entries));
    }
    const EntryDataReader data = [&](uint64_t limit) {
      return walker.ReadData(e, std::min(limit, options.max_field_bytes));
    };
    SHARDSET_RETURN_IF_ERROR(visit(e.info, data));
  }
}

// ---- MemberWalker ----

MemberWalker::MemberWalker(TarSource* source, std::string_view tar_name)
    : entries_(source, tar_name) {}

Result<bool> MemberWalker::Next(Member* out) {
  if (!error_.ok()) return error_;
  Entry e;
  for (;;) {
    Result<bool> more = entries_.Next(&e);
    if (!more.ok()) {
      error_ = more.status();
      return error_;
    }
    if (!*more) return false;
    if (e.truncated) {
      error_ = entries_.Next(&e).status();  // the walker's truncation error
      return error_;
    }
    if (e.sparse) {
      error_ = entries_.EntryError(Status::Code::kNotSupported, e.info.name, e.header_offset,
                                   "it is a GNU sparse file, stored with its holes removed");
      return error_;
    }
    if (e.info.typeflag == kGnuMultiVolume) {
      error_ = entries_.EntryError(
          Status::Code::kNotSupported, e.info.name, e.header_offset,
          "it continues a file from another volume of a multi-volume archive");
      return error_;
    }
    // A "regular file" named with a trailing slash is a directory (v7 tars
    // had no directory type; GNU tar and Python tarfile read it so).
    if (!IsRegularType(e.info.typeflag) || (!e.info.name.empty() && e.info.name.back() == '/')) {
      continue;
    }
    *out = Member{std::string(NormalizeMemberPath(e.info.name)), e.header_offset, e.data_offset,
                  e.stored_size};
    return true;
  }
}

Status ForEachSample(std::string_view tar, std::string_view tar_name,
                     const std::function<Status(const ScannedSample&)>& on_sample) {
  MemorySource source(tar);
  return ForEachSample(&source, tar_name, on_sample);
}

namespace {

// Whether member `m` starts a new sample after `sample` (another key, or a
// field the sample already has), checking the limits on keys and fields.
Result<bool> StartsNewSample(const ScannedSample& sample, const Member& m,
                             std::string_view tar_name) {
  const KeyField kf = SplitMemberPath(m.path);
  const bool repeated = std::any_of(sample.fields.begin(), sample.fields.end(),
                                    [&](const ScannedField& f) { return f.name == kf.field; });
  const bool starts = sample.fields.empty() || kf.key != sample.key || repeated;
  if (starts && kf.key.size() > index::kMaxKeyBytes) {
    return Status::ResourceExhausted(fmt::format(
        "{}: member '{}' (header at byte {}): its key is {} bytes, over the {} byte limit",
        tar_name, EscapeForDisplay(m.path.substr(0, 200)), m.header_offset, kf.key.size(),
        index::kMaxKeyBytes));
  }
  if (!starts && sample.fields.size() >= index::kMaxFields) {
    return Status::ResourceExhausted(fmt::format(
        "{}: sample '{}' has more than {} fields (member '{}'); the key is the member path up "
        "to the first '.' of its basename, so names like 'x.0001.png' put every file in one "
        "sample: rename the files",
        tar_name, EscapeForDisplay(sample.key), index::kMaxFields, EscapeForDisplay(m.path)));
  }
  return starts;
}

}  // namespace

Status ForEachSample(TarSource* source, std::string_view tar_name,
                     const std::function<Status(const ScannedSample&)>& on_sample) {
  MemberWalker walker(source, tar_name);
  ScannedSample sample;
  Member m;
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(bool more, walker.Next(&m));
    if (!more) break;
    SHARDSET_ASSIGN_OR_RETURN(bool starts, StartsNewSample(sample, m, tar_name));
    if (starts && !sample.fields.empty()) {
      SHARDSET_RETURN_IF_ERROR(on_sample(sample));
      sample.fields.clear();
    }
    const KeyField kf = SplitMemberPath(m.path);
    if (sample.fields.empty()) sample.key = kf.key;
    sample.fields.push_back(ScannedField{std::string(kf.field), m.data_offset, m.size});
  }
  if (!sample.fields.empty()) return on_sample(sample);
  return Status::OK();
}

Status BuildIndex(TarSource* source, std::string_view tar_name, index::IndexBuilder* builder,
                  const ReadOptions& options) {
  std::vector<index::FieldLoc> locs;
  Xxh3Stream sum;
  uint64_t members = 0;
  // Samples arrive after their members were walked past; a stream cannot go
  // back, so each member's bytes are hashed when the walker returns it.
  MemberWalker walker(source, tar_name);
  ScannedSample sample;
  Member m;
  auto flush = [&]() -> Status {
    locs.clear();
    for (const ScannedField& f : sample.fields) {
      const uint32_t id = builder->FieldId(f.name, 0);
      if (id >= index::kMaxFields) {
        return Status::ResourceExhausted(fmt::format(
            "{}: more than {} distinct field names (sample '{}' adds '{}'); the field is what "
            "follows the first '.' of a member's basename: rename the files",
            tar_name, index::kMaxFields, EscapeForDisplay(sample.key), EscapeForDisplay(f.name)));
      }
      locs.push_back(index::FieldLoc{id, f.offset, f.size});
    }
    builder->Add(sample.key, locs, static_cast<uint32_t>(sum.Digest()));
    sum.Reset();
    sample.fields.clear();
    return Status::OK();
  };
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(bool more, walker.Next(&m));
    if (!more) break;
    if (++members > options.max_entries) {
      return Status::ResourceExhausted(fmt::format(
          "{}: more than {} members (raise the limit with --max-entries)", tar_name,
          options.max_entries));
    }
    SHARDSET_ASSIGN_OR_RETURN(bool starts, StartsNewSample(sample, m, tar_name));
    if (starts && !sample.fields.empty()) SHARDSET_RETURN_IF_ERROR(flush());
    const KeyField kf = SplitMemberPath(m.path);
    if (sample.fields.empty()) sample.key = kf.key;
    sample.fields.push_back(ScannedField{std::string(kf.field), m.data_offset, m.size});
    for (uint64_t done = 0; done < m.size;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(m.size - done, TarSource::kMaxRead));
      SHARDSET_ASSIGN_OR_RETURN(std::string_view piece, source->Read(m.data_offset + done, n));
      if (piece.empty()) {
        return Status::Corruption(fmt::format("{}: member '{}': the file ends inside its data; {}",
                                              tar_name, EscapeForDisplay(m.path), kDamaged));
      }
      sum.Update(piece);
      done += piece.size();
    }
  }
  if (!sample.fields.empty()) return flush();
  return Status::OK();
}

Status BuildIndex(std::string_view tar, std::string_view tar_name, index::IndexBuilder* builder) {
  MemorySource source(tar);
  return BuildIndex(&source, tar_name, builder);
}

}  // namespace shardset::tar
