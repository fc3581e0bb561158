#include "formats/zip/zip_shard.h"

#include <zlib.h>

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/strings.h"
#include "formats/member_samples.h"
#include "formats/sample_key.h"
#include "formats/shard_file.h"
#include "formats/tar/tar_shard.h"
#include "formats/zip/zip_format.h"
#include "index/index.h"

namespace shardset::zip {
namespace {

// ---- Reading ----

// One central directory entry, as the reader keeps it: 56 bytes plus its
// name in ZipReader::names_.
struct EntryRec {
  uint64_t header_offset = 0;
  int64_t mtime = 0;  // unix seconds (CentralHeader::mtime)
  uint64_t compressed_size = 0, uncompressed_size = 0;
  uint64_t name_offset = 0;  // into names_
  uint32_t name_size = 0;
  uint32_t crc = 0;
  uint16_t method = 0, flags = 0;
  ArchiveEntry::Type type = ArchiveEntry::Type::kFile;

  EntryLoc loc() const {
    return EntryLoc{header_offset, compressed_size, uncompressed_size, crc, method, flags};
  }
};

// A field: an entry, and where its field name starts within the entry name.
struct FieldRec {
  uint32_t entry = 0;
  uint32_t name_start = 0;
};

// A sample: consecutive fields; its key is a prefix of the first field's
// entry name after `key_start` bytes of "./".
struct SampleRec {
  uint32_t first_field = 0, num_fields = 0;
  uint32_t key_start = 0, key_size = 0;
};

// The largest central directory the reader indexes: entry and field numbers
// are 32 bits.
constexpr uint64_t kMaxReaderEntries = uint64_t{1} << 32;

class ZipReader : public ShardReader {
 public:
  ZipReader(MappedFile file, const ReadOptions& options)
      : file_(std::move(file)), options_(options) {}

  const std::string& path() const override { return file_.path(); }
  ShardFormat format() const override { return ShardFormat::kZip; }
  uint64_t num_samples() const override { return samples_.size(); }
  uint64_t file_size() const override { return file_.size(); }
  bool keys_sorted() const override { return keys_sorted_; }

  // Reads the central directory (and nothing else) and groups its regular
  // files into samples.
  Status Load() {
    const std::string_view data = file_.data();
    ReadOptions limits = options_;
    limits.max_entries = std::min(limits.max_entries, kMaxReaderEntries - 1);
    bool reserved = false;
    SHARDSET_RETURN_IF_ERROR(ForEachCentralHeader(
        data, path(), limits,
        [&](const CentralHeader& h) -> Status {
          if (!reserved) {  // the count is known to fit in the file by now
            entries_.reserve(dir_.end.entries);
            reserved = true;
          }
          return AddEntry(h);
        },
        &dir_));
    if (open_) CloseSample();
    keys_sorted_ = true;
    for (uint64_t i = 1; i < samples_.size() && keys_sorted_; ++i) {
      keys_sorted_ = KeyOf(i - 1) < KeyOf(i);
    }
    if (!keys_sorted_) {
      by_key_.resize(samples_.size());
      std::iota(by_key_.begin(), by_key_.end(), 0);
      std::stable_sort(by_key_.begin(), by_key_.end(),
                       [&](uint32_t a, uint32_t b) { return KeyOf(a) < KeyOf(b); });
    }
    file_.AdviseRandom();
    return Status::OK();
  }

  Status Read(uint64_t ordinal, Sample* out) const override {
    if (ordinal >= samples_.size()) return NoSample(ordinal);
    const SampleRec& s = samples_[ordinal];
    out->ordinal = ordinal;
    out->key.assign(KeyOf(ordinal));
    out->fields.resize(s.num_fields);
    out->storage.clear();
    // Every field is checked and located before anything is decoded. The
    // decoded ones go to one buffer, grown field by field as inflate confirms
    // each claim, so the views are set after the last. (Entries whose stored
    // bytes together pass the file's size were refused at Load.)
    uint64_t decoded = 0;
    for (uint32_t i = 0; i < s.num_fields; ++i) {
      const FieldRec& f = fields_[s.first_field + i];
      const EntryRec& e = entries_[f.entry];
      const EntryLoc loc = e.loc();
      // The method and the encryption flag decide how the bytes are read;
      // the central directory has no checksum, so a damaged one would read
      // as "not supported" (or inflate stored bytes): the local header,
      // read anyway, must agree.
      Status st = CheckLocalAgrees(loc);
      if (st.ok()) st = CheckDecodable(loc, options_);
      Result<std::string_view> raw =
          st.ok() ? StoredBytes(file_.data(), loc) : Result<std::string_view>(st);
      if (!raw.ok()) return SampleError(ordinal, f.entry, raw.status());
      out->fields[i] = Field{FieldName(f), *raw, 0};
      if (e.method != kMethodDeflate) continue;
      if (e.uncompressed_size > out->storage.max_size() - decoded) {  // raised limits only
        return SampleError(ordinal, f.entry,
                           Status::ResourceExhausted(fmt::format(
                               "the sample's fields decode to more than {} bytes in all",
                               out->storage.max_size())));
      }
      decoded += e.uncompressed_size;
    }
    for (uint32_t i = 0; i < s.num_fields; ++i) {
      const FieldRec& f = fields_[s.first_field + i];
      const EntryRec& e = entries_[f.entry];
      Field& field = out->fields[i];
      Status st;
      if (e.method == kMethodDeflate) {
        const size_t at = out->storage.size();
        out->storage.resize(at + e.uncompressed_size);
        st = Decode(e.loc(), field.data, out->storage.data() + at, options_.verify_checksums);
      } else if (options_.verify_checksums) {
        st = CheckCrc(e.loc(), field.data);
      }
      if (!st.ok()) return SampleError(ordinal, f.entry, st);
    }
    uint64_t pos = 0;
    for (uint32_t i = 0; i < s.num_fields; ++i) {
      const EntryRec& e = entries_[fields_[s.first_field + i].entry];
      if (e.method != kMethodDeflate) continue;
      out->fields[i].data = std::string_view(out->storage).substr(pos, e.uncompressed_size);
      pos += e.uncompressed_size;
    }
    return Status::OK();
  }

  Result<std::string> Key(uint64_t ordinal) const override {
    if (ordinal >= samples_.size()) return NoSample(ordinal);
    return std::string(KeyOf(ordinal));
  }

  // From the central directory: uncompressed sizes and the entries' times.
  Status Stat(uint64_t ordinal, SampleStat* out) const override {
    if (ordinal >= samples_.size()) return NoSample(ordinal);
    const SampleRec& s = samples_[ordinal];
    out->key.assign(KeyOf(ordinal));
    out->fields.resize(s.num_fields);
    for (uint32_t i = 0; i < s.num_fields; ++i) {
      const FieldRec& f = fields_[s.first_field + i];
      const EntryRec& e = entries_[f.entry];
      out->fields[i] = FieldStat{std::string(FieldName(f)), e.uncompressed_size, 0, e.mtime};
    }
    return Status::OK();
  }

  Result<uint64_t> Find(std::string_view key) const override {
    if (keys_sorted_) {
      uint64_t lo = 0, hi = samples_.size();
      while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        if (KeyOf(mid) < key) lo = mid + 1; else hi = mid;
      }
      if (lo < samples_.size() && KeyOf(lo) == key) return lo;
    } else {
      auto it = std::lower_bound(by_key_.begin(), by_key_.end(), key,
                                 [&](uint32_t s, std::string_view k) { return KeyOf(s) < k; });
      if (it != by_key_.end() && KeyOf(*it) == key) return uint64_t{*it};
    }
    return Status::NotFound(
        fmt::format("{}: no sample with key '{}'", path(), EscapeForDisplay(key)));
  }

  Status Verify(VerifyReport* report) const override;

 private:
  std::string_view NameOf(const EntryRec& e) const {
    return std::string_view(names_).substr(e.name_offset, e.name_size);
  }
  std::string_view KeyOf(uint64_t ordinal) const {
    const SampleRec& s = samples_[ordinal];
    const EntryRec& e = entries_[fields_[s.first_field].entry];
    return NameOf(e).substr(s.key_start, s.key_size);
  }
  std::string_view FieldName(const FieldRec& f) const {
    return NameOf(entries_[f.entry]).substr(f.name_start);
  }

  // Corruption (a fragment) when the local header of `loc` disagrees with the
  // central directory on the method or on encryption; what else differs is
  // left to Verify (names may differ in archives other tools read:
  // libarchive's test_read_format_zip_7075_utf8_paths.zip).
  Status CheckLocalAgrees(const EntryLoc& loc) const {
    SHARDSET_ASSIGN_OR_RETURN(LocalHeader lh, ReadLocalHeader(file_.data(), loc.header_offset));
    constexpr uint16_t kEncryption = kFlagEncrypted | kFlagStrongEncryption;
    if (lh.method != loc.method || ((lh.flags ^ loc.flags) & kEncryption) != 0) {
      return Status::Corruption(fmt::format(
          "its local header at byte {} disagrees with the central directory (method {} and "
          "flags {:#06x} there, {} and {:#06x} here): one of them is damaged",
          loc.header_offset, lh.method, lh.flags, loc.method, loc.flags));
    }
    return Status::OK();
  }

  Status NoSample(uint64_t ordinal) const {
    return Status::NotFound(fmt::format("{}: no sample {} (it has {})", path(), ordinal,
                                        samples_.size()));
  }

  Status SampleError(uint64_t ordinal, uint32_t entry, const Status& fragment) const {
    return EntryError(fragment,
                      fmt::format("{}: sample {} (key '{}'), entry '{}' (#{} in the central "
                                  "directory)",
                                  path(), ordinal, EscapeForDisplay(KeyOf(ordinal)),
                                  EscapeForDisplay(NameOf(entries_[entry])), entry));
  }

  Status AddEntry(const CentralHeader& h) {
    EntryRec e;
    e.header_offset = h.header_offset;
    e.compressed_size = h.compressed_size;
    e.uncompressed_size = h.uncompressed_size;
    e.mtime = h.mtime;
    e.name_offset = names_.size();
    e.name_size = static_cast<uint32_t>(h.name.size());
    e.crc = h.crc;
    e.method = h.method;
    e.flags = h.flags;
    e.type = h.type;
    names_.append(h.name);
    const uint32_t index = static_cast<uint32_t>(entries_.size());
    entries_.push_back(e);
    // Only regular files are samples' fields, as in a tar.
    if (h.type != ArchiveEntry::Type::kFile) return Status::OK();
    std::string_view name = h.name;
    uint32_t key_start = 0;
    while (name.substr(key_start, 2) == "./") key_start += 2;
    const auto [key, field] = SplitKeyField(name.substr(key_start));
    const uint32_t name_start =
        field.empty() ? e.name_size : static_cast<uint32_t>(field.data() - name.data());
    if (open_) {
      const SampleRec& s = samples_.back();
      bool repeated = KeyOf(samples_.size() - 1) != key;
      for (uint32_t i = 0; i < s.num_fields && !repeated; ++i) {
        repeated = FieldName(fields_[s.first_field + i]) == field;
      }
      if (repeated) CloseSample();
    }
    if (!open_) {
      if (key.size() > index::kMaxKeyBytes) {
        return Status::ResourceExhausted(fmt::format(
            "{}: entry '{}' (#{} in the central directory): its key is {} bytes, over the {} "
            "byte limit",
            path(), EscapeForDisplay(name.substr(0, 200)), index, key.size(),
            index::kMaxKeyBytes));
      }
      samples_.push_back(SampleRec{static_cast<uint32_t>(fields_.size()), 0, key_start,
                                   static_cast<uint32_t>(key.size())});
      open_ = true;
    } else if (samples_.back().num_fields >= index::kMaxFields) {
      return Status::ResourceExhausted(fmt::format(
          "{}: sample '{}' has more than {} fields (entry '{}'); the key is the entry name up to "
          "the first '.' of its basename, so names like 'x.0001.png' put every file in one "
          "sample: rename the files",
          path(), EscapeForDisplay(key), index::kMaxFields, EscapeForDisplay(name)));
    }
    fields_.push_back(FieldRec{index, name_start});
    ++samples_.back().num_fields;
    return Status::OK();
  }

  void CloseSample() { open_ = false; }

  MappedFile file_;
  ReadOptions options_;
  Directory dir_;
  std::string names_;  // decoded entry names, back to back
  std::vector<EntryRec> entries_;  // the central directory, in order
  std::vector<FieldRec> fields_;
  std::vector<SampleRec> samples_;
  bool open_ = false;  // while loading: the last sample may take more fields
  bool keys_sorted_ = true;
  std::vector<uint32_t> by_key_;  // ordinals in key order, when keys are not sorted
};

// A byte range of the archive that one entry (or the central directory)
// owns, for the overlap check.
struct Span {
  uint64_t begin = 0, end = 0;
  uint64_t entry = 0;  // kDirectorySpan: the central directory
};
constexpr uint64_t kDirectorySpan = ~uint64_t{0};
// Overlaps reported one by one before a summary line: a zip bomb has as many
// as it has entries.
constexpr uint64_t kMaxOverlapLines = 10;

Status ZipReader::Verify(VerifyReport* report) const {
  const std::string_view data = file_.data();
  auto problem = [&](const Status& s) { report->problems.push_back(s.message()); };
  std::vector<Span> spans;
  spans.reserve(entries_.size() + 1);
  std::string buf;
  uint64_t bytes = 0;
  Directory dir;
  // The central directory again, for what the reader does not keep (raw
  // names): every local header must agree with it, every entry's bytes must
  // decode to their CRC, and no two entries may share bytes.
  Status walk = ForEachCentralHeader(
      data, path(), options_,
      [&](const CentralHeader& h) -> Status {
        const std::string where = EntryWhere(path(), h.name, h.index);
        Result<LocalHeader> lh = ReadLocalHeader(data, h.header_offset);
        if (!lh.ok()) {
          problem(EntryError(lh.status(), where));
          return Status::OK();
        }
        std::vector<std::string> diffs;
        if (lh->raw_name != h.raw_name) {
          diffs.push_back(fmt::format("name '{}'", EscapeForDisplay(lh->raw_name)));
        }
        if (lh->method != h.method) diffs.push_back(fmt::format("method {}", lh->method));
        // With a data descriptor the local header's CRC and sizes may be zero.
        if (!(lh->flags & kFlagDescriptor)) {
          if (lh->crc != h.crc) diffs.push_back(fmt::format("CRC-32 {:08x}", lh->crc));
          if (lh->compressed_size != h.compressed_size) {
            diffs.push_back(fmt::format("compressed size {}", lh->compressed_size));
          }
          if (lh->uncompressed_size != h.uncompressed_size) {
            diffs.push_back(fmt::format("size {}", lh->uncompressed_size));
          }
        }
        if (!diffs.empty()) {
          std::string list;
          for (const std::string& d : diffs) list += (list.empty() ? "" : ", ") + d;
          problem(EntryError(
              Status::Corruption(fmt::format(
                  "its local header at byte {} disagrees with the central directory ({})",
                  h.header_offset, list)),
              where));
        }
        const EntryLoc loc = LocOf(h);
        if (h.compressed_size > data.size() - lh->data_offset) {
          problem(EntryError(StoredBytes(data, loc).status(), where));
          return Status::OK();
        }
        uint64_t end = lh->data_offset + h.compressed_size;
        if (lh->flags & kFlagDescriptor) {
          const uint64_t dd = data.size() - end >= 4 && DecodeFixed32(data.data() + end) ==
                                                             kDescriptorSig
                                  ? 16
                                  : 12;
          end += std::min(dd, data.size() - end);
        }
        spans.push_back(Span{h.header_offset, end, h.index});
        Status st = CheckDecodable(loc, options_);
        if (st.ok()) {
          const std::string_view raw = data.substr(lh->data_offset, h.compressed_size);
          if (h.method == kMethodDeflate) {
            buf.resize(h.uncompressed_size);
            st = Decode(loc, raw, buf.data(), /*verify_crc=*/true);
          } else {
            st = CheckCrc(loc, raw);
          }
        }
        if (!st.ok()) {
          problem(EntryError(st, where));
        } else if (h.type == ArchiveEntry::Type::kFile) {
          bytes += h.uncompressed_size;
        }
        return Status::OK();
      },
      &dir);
  if (!walk.ok()) problem(walk);
  if (dir.headers_end > dir.start) spans.push_back(Span{dir.start, dir.headers_end, kDirectorySpan});
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  auto describe = [&](const Span& s) {
    if (s.entry == kDirectorySpan) {
      return fmt::format("the central directory (bytes {}-{})", s.begin, s.end);
    }
    return fmt::format("entry '{}' (#{}, bytes {}-{})",
                       EscapeForDisplay(NameOf(entries_[s.entry])), s.entry, s.begin, s.end);
  };
  uint64_t overlaps = 0;
  const Span* widest = nullptr;  // the span reaching furthest so far
  for (const Span& s : spans) {
    if (widest != nullptr && s.begin < widest->end) {
      if (++overlaps <= kMaxOverlapLines) {
        report->problems.push_back(fmt::format(
            "{}: {} overlaps {}: entries that share bytes are how zip bombs multiply their size; "
            "do not trust this archive",
            path(), describe(s), describe(*widest)));
      }
    }
    if (widest == nullptr || s.end > widest->end) widest = &s;
  }
  if (overlaps > kMaxOverlapLines) {
    report->problems.push_back(fmt::format("{}: {} more overlapping entries not listed", path(),
                                           overlaps - kMaxOverlapLines));
  }
  report->samples_checked += samples_.size();
  report->bytes_checked += bytes;
  return Status::OK();
}

// ---- Writing ----

constexpr uint32_t kMax32 = 0xffffffff;
// Version made by: Unix (3), APPNOTE 4.5 (zip64); version needed: 2.0
// (deflate, folders) or 4.5 for entries with zip64 fields.
constexpr uint16_t kMadeBy = 3 << 8 | 45;
constexpr uint16_t kNeeded = 20, kNeededZip64 = 45;
// 1980-01-01 00:00:00, the earliest MS-DOS time: the same bytes every run.
constexpr uint16_t kDosTime = 0, kDosDate = 1 << 5 | 1;
// Regular file, rw-r--r--, in the high 16 bits (Unix creator).
constexpr uint32_t kExternalAttrs = uint32_t{0100644} << 16;

void Put16(std::string* dst, uint16_t v) {
  dst->push_back(static_cast<char>(v));
  dst->push_back(static_cast<char>(v >> 8));
}

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// The zip format's own rules for entry names (the shared ones are in
// MemberSampleChecker).
std::string ZipNameRule(std::string_view name) {
  if (name.find('\0') != std::string_view::npos) return "zip names cannot hold NUL bytes";
  if (name.size() > 0xffff) return "a zip name is at most 65,535 bytes";
  if (!IsValidUtf8(name)) {
    return "zip names are UTF-8 (or CP437), and this one is neither: other tools would read it "
           "back as other characters";
  }
  return {};
}

// `data` deflated (raw, no zlib header) at `level` into *out, or false when
// that would not be smaller than `data` (the entry is then stored).
Result<bool> DeflateSmaller(std::string_view data, int level, std::string* out) {
  if (data.size() < 2) return false;
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::ResourceExhausted("zlib could not allocate a deflate state");
  }
  struct End {
    z_stream* zs;
    ~End() { deflateEnd(zs); }
  } end_guard{&zs};
  // Room for one byte less than the input: running out of it means storing.
  out->resize(data.size() - 1);
  constexpr uint64_t kChunk = uint64_t{1} << 30;
  uint64_t in_given = 0, out_given = 0;
  for (;;) {
    if (zs.avail_in == 0 && in_given < data.size()) {
      const uint64_t n = std::min(kChunk, data.size() - in_given);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + in_given));
      zs.avail_in = static_cast<uInt>(n);
      in_given += n;
    }
    if (zs.avail_out == 0) {
      if (out_given == out->size()) return false;
      const uint64_t n = std::min(kChunk, out->size() - out_given);
      zs.next_out = reinterpret_cast<Bytef*>(out->data() + out_given);
      zs.avail_out = static_cast<uInt>(n);
      out_given += n;
    }
    const int rc = deflate(&zs, in_given == data.size() ? Z_FINISH : Z_NO_FLUSH);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return Status::IOError(fmt::format("zlib deflate failed ({})", zError(rc)));
    }
  }
  out->resize(out_given - zs.avail_out);
  return true;
}

class ZipWriter : public ShardWriter {
 public:
  ZipWriter(std::unique_ptr<AtomicFile> file, const WriteOptions& options)
      : file_(std::move(file)), options_(options), checker_("zip entry", ZipNameRule) {}

  Status Add(const InputSample& sample) override {
    SHARDSET_RETURN_IF_ERROR(file_.Usable());
    SHARDSET_RETURN_IF_ERROR(checker_.Check(file_.final_path(), sample));
    for (const InputField& f : sample.fields) {
      // Field flags are not kept: every field is an entry, and a reader
      // must find the same samples the writer was given.
      Status s = AppendEntry(JoinKeyField(sample.key, f.name), f.data);
      if (!s.ok()) {
        file_.Fail(s);  // the file may hold part of the sample
        return s;
      }
    }
    checker_.Added(sample);
    return Status::OK();
  }

  uint64_t num_samples() const override { return checker_.num_samples(); }
  uint64_t bytes_written() const override {
    return file_.offset() + directory_.size() + kEndSize;
  }

  Result<ShardInfo> Close() override {
    SHARDSET_RETURN_IF_ERROR(file_.Usable());
    file_.MarkClosed();
    const uint64_t dir_offset = file_.offset();
    const uint64_t dir_size = directory_.size();
    SHARDSET_RETURN_IF_ERROR(file_.Append(directory_));
    std::string end;
    if (entries_ >= 0xffff || dir_size >= kMax32 || dir_offset >= kMax32) {
      // Zip64 end record and locator (APPNOTE 4.3.14, 4.3.15).
      const uint64_t end64 = file_.offset();
      PutFixed32(&end, kEnd64Sig);
      PutFixed64(&end, kEnd64Size - 12);
      Put16(&end, kMadeBy);
      Put16(&end, kNeededZip64);
      PutFixed32(&end, 0);  // this disk
      PutFixed32(&end, 0);  // the directory's disk
      PutFixed64(&end, entries_);
      PutFixed64(&end, entries_);
      PutFixed64(&end, dir_size);
      PutFixed64(&end, dir_offset);
      PutFixed32(&end, kLocatorSig);
      PutFixed32(&end, 0);  // the zip64 end record's disk
      PutFixed64(&end, end64);
      PutFixed32(&end, 1);  // disks
    }
    PutFixed32(&end, kEndSig);
    Put16(&end, 0);
    Put16(&end, 0);
    Put16(&end, static_cast<uint16_t>(std::min<uint64_t>(entries_, 0xffff)));
    Put16(&end, static_cast<uint16_t>(std::min<uint64_t>(entries_, 0xffff)));
    PutFixed32(&end, static_cast<uint32_t>(std::min<uint64_t>(dir_size, kMax32)));
    PutFixed32(&end, static_cast<uint32_t>(std::min<uint64_t>(dir_offset, kMax32)));
    Put16(&end, 0);  // no comment
    SHARDSET_RETURN_IF_ERROR(file_.Append(end));
    ShardInfo info;
    info.path = file_.final_path();
    info.format = ShardFormat::kZip;
    info.num_samples = checker_.num_samples();
    info.file_size = file_.offset();
    info.xxh3 = file_.xxh3();
    info.first_key = checker_.first_key();
    info.last_key = checker_.last_key();
    SHARDSET_RETURN_IF_ERROR(file_.Commit(options_.sync, options_.overwrite));
    return info;
  }

 private:
  // Local header (CRC and sizes in it: no data descriptor), bytes, and the
  // central header kept for Close().
  Status AppendEntry(const std::string& name, std::string_view data) {
    std::string deflated;
    std::string_view stored = data;
    uint16_t method = kMethodStored;
    if (options_.zip_deflate_level >= 1 && options_.zip_deflate_level <= 9) {
      SHARDSET_ASSIGN_OR_RETURN(bool smaller,
                                DeflateSmaller(data, options_.zip_deflate_level, &deflated));
      if (smaller) {
        stored = deflated;
        method = kMethodDeflate;
      }
    }
    const uint32_t crc =
        static_cast<uint32_t>(crc32_z(0, reinterpret_cast<const Bytef*>(data.data()), data.size()));
    const uint64_t offset = file_.offset();
    const bool big = data.size() >= kMax32 || stored.size() >= kMax32;
    const uint16_t flags = IsAscii(name) ? 0 : kFlagUtf8;

    std::string local;
    PutFixed32(&local, kLocalSig);
    Put16(&local, big ? kNeededZip64 : kNeeded);
    Put16(&local, flags);
    Put16(&local, method);
    Put16(&local, kDosTime);
    Put16(&local, kDosDate);
    PutFixed32(&local, crc);
    PutFixed32(&local, big ? kMax32 : static_cast<uint32_t>(stored.size()));
    PutFixed32(&local, big ? kMax32 : static_cast<uint32_t>(data.size()));
    Put16(&local, static_cast<uint16_t>(name.size()));
    Put16(&local, big ? 20 : 0);
    local += name;
    if (big) {  // a local zip64 field holds both sizes (APPNOTE 4.5.3)
      Put16(&local, kZip64Extra);
      Put16(&local, 16);
      PutFixed64(&local, data.size());
      PutFixed64(&local, stored.size());
    }
    SHARDSET_RETURN_IF_ERROR(file_.Append(local));
    SHARDSET_RETURN_IF_ERROR(file_.Append(stored));

    // The central zip64 field holds only the values that do not fit.
    std::string zip64;
    if (data.size() >= kMax32) PutFixed64(&zip64, data.size());
    if (stored.size() >= kMax32) PutFixed64(&zip64, stored.size());
    if (offset >= kMax32) PutFixed64(&zip64, offset);
    std::string& c = directory_;
    PutFixed32(&c, kCentralSig);
    Put16(&c, kMadeBy);
    Put16(&c, zip64.empty() ? kNeeded : kNeededZip64);
    Put16(&c, flags);
    Put16(&c, method);
    Put16(&c, kDosTime);
    Put16(&c, kDosDate);
    PutFixed32(&c, crc);
    PutFixed32(&c, static_cast<uint32_t>(std::min<uint64_t>(stored.size(), kMax32)));
    PutFixed32(&c, static_cast<uint32_t>(std::min<uint64_t>(data.size(), kMax32)));
    Put16(&c, static_cast<uint16_t>(name.size()));
    Put16(&c, static_cast<uint16_t>(zip64.empty() ? 0 : 4 + zip64.size()));
    Put16(&c, 0);  // comment
    Put16(&c, 0);  // disk
    Put16(&c, 0);  // internal attributes
    PutFixed32(&c, kExternalAttrs);
    PutFixed32(&c, static_cast<uint32_t>(std::min<uint64_t>(offset, kMax32)));
    c += name;
    if (!zip64.empty()) {
      Put16(&c, kZip64Extra);
      Put16(&c, static_cast<uint16_t>(zip64.size()));
      c += zip64;
    }
    ++entries_;
    return Status::OK();
  }

  ShardFile file_;
  WriteOptions options_;
  std::string directory_;  // central headers of the entries written so far
  uint64_t entries_ = 0;
  MemberSampleChecker checker_;
};

// The bytes of an entry for ForEachEntry's visitor: decoded, CRC-checked
// when asked, at most `limit` bytes.
Result<std::string> ReadEntryData(std::string_view file, const EntryLoc& loc,
                                  const ReadOptions& options, uint64_t limit,
                                  const std::string& where) {
  if (loc.uncompressed_size > limit) {
    return Status::ResourceExhausted(fmt::format(
        "{}: it holds {} bytes, more than the {} bytes this read allows", where,
        loc.uncompressed_size, limit));
  }
  Status st = CheckDecodable(loc, options);
  if (!st.ok()) return EntryError(st, where);
  Result<std::string_view> raw = StoredBytes(file, loc);
  if (!raw.ok()) return EntryError(raw.status(), where);
  std::string out(loc.uncompressed_size, '\0');
  st = Decode(loc, *raw, out.data(), options.verify_checksums);
  if (!st.ok()) return EntryError(st, where);
  return out;
}

// The longest symlink target ForEachEntry reads (PATH_MAX).
constexpr uint64_t kMaxLinkBytes = 4096;

}  // namespace

bool Looks(const Probe& probe) {
  const std::string_view head = probe.head;
  if (head.size() >= 4) {
    const uint32_t sig = DecodeFixed32(head.data());
    // A local header first, or the end record of an empty archive.
    if (sig == kLocalSig || (sig == kEndSig && probe.size >= kEndSize)) return true;
  }
  // Otherwise data is prepended (a self-extractor's stub): the end record
  // decides. Archives that hold a zip as their last member end like one too,
  // so tars and gzip streams are left to their own formats.
  if (tar::LooksTar(head)) return false;
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
      static_cast<unsigned char>(head[1]) == 0x8b) {
    return false;
  }
  return TailLooksLikeZip(probe.tail, probe.size);
}

Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options) {
  SHARDSET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  auto reader = std::make_unique<ZipReader>(std::move(file), options);
  SHARDSET_RETURN_IF_ERROR(reader->Load());
  return std::unique_ptr<ShardReader>(std::move(reader));
}

Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options) {
  if (options.zip_deflate_level < 0 || options.zip_deflate_level > 9) {
    return Status::InvalidArgument(fmt::format(
        "{}: zip deflate level {} is out of range; use 0 (store) or 1-9", path,
        options.zip_deflate_level));
  }
  SHARDSET_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path, options.sync));
  return std::unique_ptr<ShardWriter>(new ZipWriter(std::move(file), options));
}

Status ForEachEntry(const std::string& path, const ReadOptions& options,
                    const EntryVisitor& visit) {
  SHARDSET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  file.AdviseSequential();
  const std::string_view data = file.data();
  return ForEachCentralHeader(data, path, options, [&](const CentralHeader& h) -> Status {
    ArchiveEntry a;
    a.name = h.name;
    a.type = h.type;
    a.typeflag = h.typeflag;
    a.size = h.uncompressed_size;
    a.mode = h.mode;
    a.mtime = h.mtime;
    const EntryLoc loc = LocOf(h);
    const std::string where = EntryWhere(path, h.name, h.index);
    const EntryDataReader reader = [&](uint64_t limit) {
      return ReadEntryData(data, loc, options, limit, where);
    };
    if (h.type == ArchiveEntry::Type::kSymlink) {
      SHARDSET_ASSIGN_OR_RETURN(a.linkname, reader(kMaxLinkBytes));
    }
    return visit(a, reader);
  });
}

}  // namespace shardset::zip
