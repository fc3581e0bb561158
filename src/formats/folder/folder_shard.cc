#include "formats/folder/folder_shard.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/strings.h"
#include "dataset/source.h"
#include "formats/indexed_reader.h"
#include "formats/sample_key.h"
#include "index/index.h"
#include "shardset/dataset.h"

namespace shardset::folder {
namespace {

// What every message about a folder that no longer matches its index tells
// the user to do.
constexpr std::string_view kRerun = "re-run shardset dataset create";

// Bytes read per call when hashing a file at index time: memory stays bounded
// whatever the file's size.
constexpr size_t kHashChunk = 1 << 20;

// The read end of a file named by the index: refuses anything but a regular
// file. O_NONBLOCK keeps a fifo put where a file was (or named by a hostile
// index) from blocking the open; it changes nothing for regular files.
int OpenRegular(int dir_fd, const std::string& name) {
  return ::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
}

std::string Realpath(const std::string& path, int* err) {
  char* r = ::realpath(path.c_str(), nullptr);
  if (r == nullptr) {
    *err = errno;
    return {};
  }
  std::string out(r);
  ::free(r);
  return out;
}

// True when `path` is `dir` or lies below it (both absolute, canonical).
bool IsInside(std::string_view path, std::string_view dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.substr(0, dir.size()) == dir &&
                         path[dir.size()] == '/');
}

// ---- Writing ----

// Reads the file of `field` to its end into `hash`; returns its size. The
// size fstat reports must equal the bytes read: a file written to while it
// is indexed would otherwise get a checksum of bytes it no longer holds.
Result<uint64_t> HashFile(const PendingField& field, Xxh3Stream* hash, std::string* buffer) {
  const std::string shown = EscapeForDisplay(JoinPath(field.dir->path(), field.file));
  FdCloser fd(OpenRegular(field.dir->fd(), field.file));
  if (fd.get() < 0) return Status::FromErrno(shown, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(shown, errno);
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("{}: not a regular file", shown));
  }
  buffer->resize(kHashChunk);
  uint64_t got = 0;
  for (;;) {
    ssize_t r = ::read(fd.get(), buffer->data(), buffer->size());
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(shown, errno);
    }
    if (r == 0) break;
    hash->Update(std::string_view(buffer->data(), static_cast<size_t>(r)));
    got += static_cast<uint64_t>(r);
  }
  if (got != static_cast<uint64_t>(st.st_size)) {
    return Status::IOError(fmt::format(
        "{}: changed while it was being indexed ({} bytes read, {} listed); index it again "
        "once nothing writes to it",
        shown, got, st.st_size));
  }
  return got;
}

std::string EncodeHeader(uint32_t flags, uint64_t data_size, std::string_view root) {
  std::string out(kIndexMagic);
  PutFixed32(&out, kIndexVersion);
  PutFixed32(&out, flags);
  PutFixed64(&out, data_size);
  PutFixed32(&out, static_cast<uint32_t>(root.size()));
  out.append(root);
  PutFixed32(&out, static_cast<uint32_t>(Xxh3(out)));
  return out;
}

// ---- Reading ----

struct Header {
  uint32_t flags = 0;
  uint64_t data_size = 0;
  std::string root;
  uint64_t index_offset = 0;  // where the index region starts
};

Result<Header> ParseHeader(std::string_view d, const std::string& path) {
  auto corrupt = [&](std::string_view what) {
    return Status::Corruption(fmt::format(
        "{}: not a valid folder index ({}); it is damaged: {} for the folder it indexed", path,
        what, kRerun));
  };
  if (d.size() < kFixedHeaderSize || d.substr(0, kIndexMagic.size()) != kIndexMagic) {
    return corrupt("bad magic or too short");
  }
  const uint32_t root_len = DecodeFixed32(d.data() + 24);
  if (root_len == 0 || root_len > kMaxRootBytes ||
      d.size() < kFixedHeaderSize + root_len + kHeaderChecksumSize) {
    return corrupt("the root path's length is out of range");
  }
  const size_t checked = kFixedHeaderSize + root_len;
  // The checksum comes before the version: a damaged version must read as
  // damage, not as a file from a newer shardset.
  if (DecodeFixed32(d.data() + checked) != static_cast<uint32_t>(Xxh3(d.substr(0, checked)))) {
    return corrupt("header checksum mismatch");
  }
  const uint32_t version = DecodeFixed32(d.data() + 8);
  Header h;
  h.flags = DecodeFixed32(d.data() + 12);
  if (version != kIndexVersion || (h.flags & ~kFlagLabelFromDir) != 0) {
    return Status::NotSupported(fmt::format(
        "{}: folder index version {} with flags {:#x} (this shardset reads version {} with flags "
        "{:#x}); upgrade shardset or {}",
        path, version, h.flags, kIndexVersion, kFlagLabelFromDir, kRerun));
  }
  h.data_size = DecodeFixed64(d.data() + 16);
  h.root.assign(d.substr(kFixedHeaderSize, root_len));
  if (h.root[0] != '/' || h.root.find('\0') != std::string::npos) {
    return corrupt("the root is not an absolute path");
  }
  h.index_offset = checked + kHeaderChecksumSize;
  return h;
}

struct ParsedIndex {
  Header header;
  index::IndexReader index;  // views the bytes ParseIndex was given
};

// The header and the index region after it; nothing outside `d` is read.
Result<ParsedIndex> ParseIndex(std::string_view d, const std::string& path) {
  SHARDSET_ASSIGN_OR_RETURN(Header header, ParseHeader(d, path));
  SHARDSET_ASSIGN_OR_RETURN(index::IndexReader idx,
                            index::IndexReader::Open(d, header.data_size, path));
  if (idx.index_offset() != header.index_offset) {
    return Status::Corruption(fmt::format(
        "{}: the index region does not start after the header; the index is damaged: {}", path,
        kRerun));
  }
  return ParsedIndex{std::move(header), std::move(idx)};
}

// Checks what a hostile index could use to read outside the folder, and
// finds the derived label (`label_from_dir`).
Status CheckEntryNames(const index::IndexReader& idx, bool label_from_dir,
                       const std::string& index_path, uint64_t ordinal, const index::Entry& e,
                       std::string* label) {
  auto damaged = [&](std::string_view what) {
    return Status::Corruption(fmt::format("{}: sample {} (key '{}'): {}; the index is damaged: {}",
                                          index_path, ordinal, EscapeForDisplay(e.key), what,
                                          kRerun));
  };
  // Every sample is at least one file; that also keeps the key's folders
  // (and so the label) plain, as the checks below cover them.
  if (e.fields.empty()) return damaged("a sample without files");
  for (const index::FieldLoc& f : e.fields) {
    const std::string& name = idx.fields()[f.field_id].name;
    // The joined file name, not the key alone, is what must stay inside the
    // folder: a file "..txt" has key "." and is a legitimate sample.
    const std::string file = JoinKeyField(e.key, name);
    if (!IsPlainRelativePath(file)) {
      return damaged(fmt::format(
          "field '{}' names the file '{}', which is not a plain relative path inside the folder",
          EscapeForDisplay(name), EscapeForDisplay(file)));
    }
    if (label_from_dir && name == "cls") {
      return damaged("a cls file next to the derived cls label");
    }
  }
  if (label_from_dir) {
    *label = ParentDirName(e.key);
    if (label->empty()) return damaged("no parent folder to take its label from");
  }
  return Status::OK();
}

class FolderReader : public ShardReader {
 public:
  FolderReader(MappedFile file, index::IndexReader index, Header header, int root_fd,
               const ReadOptions& options)
      : file_(std::move(file)),
        index_(std::move(index)),
        root_(std::move(header.root)),
        label_from_dir_(header.flags & kFlagLabelFromDir),
        root_fd_(root_fd),
        options_(options) {}

  const std::string& path() const override { return file_.path(); }
  ShardFormat format() const override { return ShardFormat::kFolder; }
  uint64_t num_samples() const override { return index_.num_samples(); }
  uint64_t file_size() const override { return file_.size(); }
  bool keys_sorted() const override { return index_.keys_sorted(); }

  Status Read(uint64_t ordinal, Sample* out) const override {
    index::Entry e;
    SHARDSET_RETURN_IF_ERROR(index_.Get(ordinal, &e));
    return ReadEntry(ordinal, e, options_.verify_checksums, out);
  }

  Result<std::string> Key(uint64_t ordinal) const override {
    index::Entry e;
    SHARDSET_RETURN_IF_ERROR(index_.Get(ordinal, &e));
    return std::move(e.key);
  }

  Result<uint64_t> Find(std::string_view key) const override { return index_.Find(key); }

  Status Verify(VerifyReport* report) const override {
    std::vector<index::Entry> entries;
    Sample sample;
    for (uint32_t b = 0; b < index_.num_blocks(); ++b) {
      Status s = index_.GetBlock(b, &entries);
      if (!s.ok()) {
        report->problems.push_back(s.message());
        continue;
      }
      const uint64_t first = uint64_t{b} * index_.block_samples();
      for (size_t i = 0; i < entries.size(); ++i) {
        Status st = ReadEntry(first + i, entries[i], /*verify=*/true, &sample);
        ++report->samples_checked;
        if (st.ok()) {
          for (const Field& f : sample.fields) report->bytes_checked += f.data.size();
        } else {
          report->problems.push_back(st.message());
        }
      }
    }
    Status keys = index_.VerifyKeyTable();
    if (!keys.ok()) report->problems.push_back(keys.message());
    return Status::OK();
  }

  // Each file's time from its inode (a stat, no byte read); the index's own
  // when the file is gone, whose Read then fails naming it.
  Status Stat(uint64_t ordinal, SampleStat* out) const override {
    index::Entry e;
    SHARDSET_RETURN_IF_ERROR(index_.Get(ordinal, &e));
    std::string label;
    SHARDSET_RETURN_IF_ERROR(CheckEntry(ordinal, e, &label));
    const int64_t index_time = file_.mtime_ns() / 1000000000;
    SHARDSET_RETURN_IF_ERROR(StatFromIndex(
        index_, ordinal,
        [&](const index::FieldLoc& f) {
          struct stat st;
          const std::string p = FilePath(e.key, index_.fields()[f.field_id].name);
          return ::stat(p.c_str(), &st) == 0 ? int64_t{st.st_mtim.tv_sec} : index_time;
        },
        out));
    if (label_from_dir_) out->fields.push_back(FieldStat{"cls", label.size(), kFieldDerived, index_time});
    return Status::OK();
  }

  Result<std::vector<FieldFile>> FieldFiles(uint64_t ordinal) const override {
    index::Entry e;
    SHARDSET_RETURN_IF_ERROR(index_.Get(ordinal, &e));
    std::string label;
    SHARDSET_RETURN_IF_ERROR(CheckEntry(ordinal, e, &label));
    std::vector<FieldFile> out;
    out.reserve(e.fields.size() + 1);
    for (const index::FieldLoc& f : e.fields) {
      const std::string& name = index_.fields()[f.field_id].name;
      out.push_back(FieldFile{name, FilePath(e.key, name), f.size, 0});
    }
    if (label_from_dir_) out.push_back(FieldFile{"cls", "", label.size(), kFieldDerived});
    return out;
  }

 private:
  std::string FilePath(std::string_view key, std::string_view field) const {
    return JoinPath(root_, JoinKeyField(key, field));
  }

  Status CheckEntry(uint64_t ordinal, const index::Entry& e, std::string* label) const {
    return CheckEntryNames(index_, label_from_dir_, path(), ordinal, e, label);
  }

  // Reads the files of entry `e` into out->storage, back to back in field
  // order (the order their checksum covers), then the label.
  Status ReadEntry(uint64_t ordinal, const index::Entry& e, bool verify, Sample* out) const {
    out->ordinal = ordinal;
    out->key = e.key;
    out->fields.clear();
    out->storage.clear();
    std::string label;
    SHARDSET_RETURN_IF_ERROR(CheckEntry(ordinal, e, &label));
    const auto& defs = index_.fields();
    uint64_t claimed = label.size();
    for (const index::FieldLoc& f : e.fields) claimed += f.size;
    // Sizes are claims until each file's fstat confirms them: reserve at most
    // a modest amount up front and let the real files grow the buffer.
    out->storage.reserve(std::min<uint64_t>(claimed, uint64_t{64} << 20));
    for (const index::FieldLoc& f : e.fields) {
      SHARDSET_RETURN_IF_ERROR(ReadFile(ordinal, e.key, defs[f.field_id].name, f.size, out));
    }
    const uint64_t file_bytes = out->storage.size();
    if (verify) {
      const uint32_t sum = index::SampleChecksum(out->storage);
      if (sum != e.checksum) {
        std::string files;
        for (size_t i = 0; i < e.fields.size(); ++i) {
          if (i == 3) {
            files += fmt::format(" and {} more", e.fields.size() - 3);
            break;
          }
          if (i > 0) files += ", ";
          files += EscapeForDisplay(FilePath(e.key, defs[e.fields[i].field_id].name));
        }
        const bool one = e.fields.size() == 1;
        return Status::Corruption(fmt::format(
            "{}: sample {} (key '{}') of {}: {} changed since it was indexed (checksum mismatch, "
            "same size); restore {}, or if it was changed on purpose {}",
            files, ordinal, EscapeForDisplay(e.key), path(),
            one ? "the file" : "one of its files", one ? "it" : "them", kRerun));
      }
    }
    out->storage.append(label);
    // Views only now: the buffer no longer moves.
    const std::string_view bytes = out->storage;
    uint64_t pos = 0;
    for (const index::FieldLoc& f : e.fields) {
      out->fields.push_back(Field{defs[f.field_id].name, bytes.substr(pos, f.size), 0});
      pos += f.size;
    }
    if (label_from_dir_) {
      out->fields.push_back(Field{"cls", bytes.substr(file_bytes), kFieldDerived});
    }
    return Status::OK();
  }

  // Appends the bytes of field `name`'s file, which must hold `size` bytes.
  Status ReadFile(uint64_t ordinal, std::string_view key, std::string_view name, uint64_t size,
                  Sample* out) const {
    const std::string rel = JoinKeyField(key, name);
    auto shown = [&] { return EscapeForDisplay(JoinPath(root_, rel)); };
    auto sample = [&] {
      return fmt::format("sample {} (key '{}') of {}", ordinal, EscapeForDisplay(key), path());
    };
    if (size > options_.max_field_bytes) {
      return Status::ResourceExhausted(fmt::format(
          "{}: {}: field '{}' is {} bytes, over the {}-byte limit; raise --max-field-bytes to "
          "read it",
          shown(), sample(), EscapeForDisplay(name), size, options_.max_field_bytes));
    }
    FdCloser fd(OpenRegular(root_fd_.get(), rel));
    if (fd.get() < 0) {
      const int err = errno;
      if (err == ENOENT || err == ENOTDIR) {
        return Status::NotFound(fmt::format(
            "{}: no such file ({}); it was moved or deleted since the folder was indexed: "
            "restore it, or {}",
            shown(), sample(), kRerun));
      }
      return Status::FromErrno(fmt::format("{} ({})", shown(), sample()), err);
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) {
      return Status::FromErrno(fmt::format("{} ({})", shown(), sample()), errno);
    }
    if (!S_ISREG(st.st_mode)) {
      return Status::Corruption(fmt::format(
          "{}: no longer a regular file ({}); restore it, or {}", shown(), sample(), kRerun));
    }
    if (static_cast<uint64_t>(st.st_size) != size) {
      return Status::Corruption(fmt::format(
          "{}: changed since it was indexed ({} bytes, the index records {}; {}); restore it, "
          "or if it was changed on purpose {}",
          shown(), st.st_size, size, sample(), kRerun));
    }
    const size_t start = out->storage.size();
    out->storage.resize(start + size);
    uint64_t got = 0;
    while (got < size) {
      ssize_t r = ::pread(fd.get(), out->storage.data() + start + got, size - got,
                          static_cast<off_t>(got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(fmt::format("{} ({})", shown(), sample()), errno);
      }
      if (r == 0) {
        return Status::Corruption(fmt::format(
            "{}: shrank while it was read ({} of {} bytes; {}); restore it, or {}", shown(), got,
            size, sample(), kRerun));
      }
      got += static_cast<uint64_t>(r);
    }
    return Status::OK();
  }

  MappedFile file_;
  index::IndexReader index_;
  std::string root_;
  bool label_from_dir_;
  FdCloser root_fd_;  // every field file is opened relative to it
  ReadOptions options_;
};

}  // namespace

Result<uint64_t> WriteIndex(const std::string& root, const std::string& index_path,
                            const IndexOptions& options) {
  const std::string shown_root = EscapeForDisplay(root);
  struct stat st;
  if (::stat(root.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::NotFound(fmt::format("{}: no such folder", shown_root));
    }
    return Status::FromErrno(shown_root, err);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(fmt::format(
        "{}: not a folder; a folder shard indexes a folder of loose files (an archive is a shard "
        "of its own)",
        shown_root));
  }
  if (PathExists(JoinPath(root, kManifestName))) {
    return Status::InvalidArgument(fmt::format(
        "{}: holds a shardset dataset ({}), not loose files; use the dataset's shards instead",
        shown_root, kManifestName));
  }
  int err = 0;
  const std::string real_root = Realpath(root, &err);
  if (real_root.empty()) return Status::FromErrno(shown_root, err);
  if (real_root.size() > kMaxRootBytes) {
    return Status::InvalidArgument(
        fmt::format("{}: the folder's path is longer than {} bytes", shown_root, kMaxRootBytes));
  }
  // The index (and the dataset around it) must not be part of what it
  // indexes: a second run would index the first run's index and manifest.
  const std::string real_index_dir = Realpath(DirName(index_path), &err);
  if (real_index_dir.empty()) {
    return Status::FromErrno(EscapeForDisplay(DirName(index_path)), err);
  }
  if (IsInside(real_index_dir, real_root)) {
    return Status::InvalidArgument(fmt::format(
        "{}: the index would lie inside the folder it indexes ({}); write it outside that folder",
        EscapeForDisplay(index_path), shown_root));
  }

  SHARDSET_ASSIGN_OR_RETURN(
      auto source, OpenSource(root, ReadOptions(), options.skip_unreadable, options.warn,
                              options.skipped));
  index::IndexBuilder builder(/*contiguous=*/true);
  const uint32_t flags = options.label_from_dir ? kFlagLabelFromDir : 0;
  PendingSample p;
  std::vector<index::FieldLoc> locs;
  std::vector<uint32_t> ids;
  Xxh3Stream hash;
  std::string buffer;
  uint64_t data_size = 0;  // the next field's virtual offset
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(bool more, source->Next(&p));
    if (!more) break;
    const std::string shown_key = EscapeForDisplay(p.key);
    if (p.key.size() > index::kMaxKeyBytes) {
      return Status::InvalidArgument(fmt::format("{}: key '{}' is longer than {} bytes",
                                                 shown_root, shown_key, index::kMaxKeyBytes));
    }
    if (options.label_from_dir && ParentDirName(p.key).empty()) {
      return Status::InvalidArgument(fmt::format(
          "{}: sample '{}' is not inside a folder, so --label-from-dir has no label for it; move "
          "it into a class folder or drop --label-from-dir",
          shown_root, shown_key));
    }
    ids.clear();
    for (const PendingField& f : p.fields) {
      // The walker yields names as they are on disk, so this holds unless a
      // future walker changes; the reader checks the same rule on every read.
      if (!IsPlainRelativePath(JoinKeyField(p.key, f.name))) {
        return Status::InvalidArgument(fmt::format(
            "{}: '{}' is not a plain relative path; it cannot be indexed", shown_root,
            EscapeForDisplay(JoinKeyField(p.key, f.name))));
      }
      if (options.label_from_dir && f.name == "cls") {
        return Status::InvalidArgument(fmt::format(
            "{}: sample '{}' already has a cls field; drop --label-from-dir", shown_root,
            shown_key));
      }
      ids.push_back(builder.FieldId(f.name, 0));
      if (ids.back() >= index::kMaxFields) {
        return Status::InvalidArgument(fmt::format(
            "{}: more than {} different field names (file extensions); a folder index holds at "
            "most that many",
            shown_root, index::kMaxFields));
      }
    }
    locs.clear();
    hash.Reset();
    uint64_t offset = data_size;
    Status failed;
    for (size_t i = 0; i < p.fields.size(); ++i) {
      Result<uint64_t> size = HashFile(p.fields[i], &hash, &buffer);
      if (!size.ok()) {
        failed = size.status();
        break;
      }
      locs.push_back(index::FieldLoc{ids[i], offset, *size});
      offset += *size;
    }
    if (!failed.ok()) {
      if (!options.skip_unreadable) {
        return failed.WithPrefix(
            "cannot read a source file (fix it, or pass --skip-unreadable to skip such files "
            "with a warning)");
      }
      // The whole sample is left out, as pack leaves it out.
      std::string line = fmt::format("{}, skipped", failed.message());
      if (options.warn) options.warn(line);
      if (options.skipped) options.skipped->push_back(line);
      continue;
    }
    data_size = offset;
    builder.Add(p.key, locs, static_cast<uint32_t>(hash.Digest()));
    if (options.progress) options.progress(builder.num_samples(), data_size);
  }
  std::string bytes = EncodeHeader(flags, data_size, real_root);
  bytes += builder.Finish(bytes.size());
  SHARDSET_RETURN_IF_ERROR(WriteFileAtomic(index_path, bytes, options.sync));
  return builder.num_samples();
}

Status CheckIndex(std::string_view bytes, const std::string& name) {
  SHARDSET_ASSIGN_OR_RETURN(ParsedIndex parsed, ParseIndex(bytes, name));
  const bool label_from_dir = parsed.header.flags & kFlagLabelFromDir;
  std::vector<index::Entry> entries;
  std::string label;
  for (uint32_t b = 0; b < parsed.index.num_blocks(); ++b) {
    SHARDSET_RETURN_IF_ERROR(parsed.index.GetBlock(b, &entries));
    const uint64_t first = uint64_t{b} * parsed.index.block_samples();
    for (size_t i = 0; i < entries.size(); ++i) {
      SHARDSET_RETURN_IF_ERROR(
          CheckEntryNames(parsed.index, label_from_dir, name, first + i, entries[i], &label));
    }
  }
  return parsed.index.VerifyKeyTable();
}

bool Looks(const Probe& probe) {
  return probe.head.size() >= kIndexMagic.size() &&
         std::string_view(probe.head).substr(0, kIndexMagic.size()) == kIndexMagic;
}

Result<std::unique_ptr<ShardReader>> Open(const std::string& index_path,
                                          const ReadOptions& options) {
  SHARDSET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(index_path));
  SHARDSET_ASSIGN_OR_RETURN(ParsedIndex parsed, ParseIndex(file.data(), index_path));
  Header& header = parsed.header;
  const int root_fd = ::open(header.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return Status::NotFound(fmt::format(
          "{}: the folder it indexes, {}, {}: the folder was moved or deleted: {}", index_path,
          EscapeForDisplay(header.root), err == ENOENT ? "does not exist" : "is not a folder",
          kRerun));
    }
    return Status::FromErrno(
        fmt::format("{}: the folder it indexes, {}", index_path, EscapeForDisplay(header.root)),
        err);
  }
  file.AdviseRandom();
  return std::unique_ptr<ShardReader>(
      new FolderReader(std::move(file), std::move(parsed.index), std::move(header), root_fd,
                       options));
}

}  // namespace shardset::folder
