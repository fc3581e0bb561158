#include "formats/tar/tar_shard.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "base/file.h"
#include "base/strings.h"
#include "formats/indexed_reader.h"
#include "formats/shard_file.h"
#include "formats/tar/tar_header.h"
#include "formats/tar/tar_scan.h"
#include "formats/tar/tar_sidecar.h"
#include "formats/tar/tar_writer.h"
#include "index/index.h"

namespace shardset::tar {
namespace {

// ---- Reading ----

Status IndexMismatch(const std::string& tar, uint64_t ordinal, std::string_view key,
                     std::string_view what) {
  return Status::Corruption(fmt::format(
      "{}: sample {} (key '{}'): the index does not match the tar's members ({}); rerun "
      "shardset index {}",
      tar, ordinal, EscapeForDisplay(key), what, tar));
}

// True when index entry `e` places exactly the fields of `s`.
bool SameSample(const index::IndexReader& idx, const index::Entry& e, const ScannedSample& s) {
  if (e.key != s.key || e.fields.size() != s.fields.size()) return false;
  for (size_t i = 0; i < e.fields.size(); ++i) {
    const index::FieldLoc& f = e.fields[i];
    if (idx.fields()[f.field_id].name != s.fields[i].name || f.offset != s.fields[i].offset ||
        f.size != s.fields[i].size) {
      return false;
    }
  }
  return true;
}

// Tar-only Verify checks: walks the headers again (their checksums and
// lengths) and checks that the index lists exactly the samples the members
// form, which finds a sidecar that does not belong to its tar. Reports the
// first problem only: after a mismatch every later sample would differ too.
void VerifyMembers(const IndexedShardReader& r, VerifyReport* report) {
  const index::IndexReader& idx = r.index();
  uint64_t ordinal = 0;
  index::Entry e;
  Status s = ForEachSample(r.data().data(), r.path(), [&](const ScannedSample& sample) -> Status {
    if (ordinal >= idx.num_samples()) {
      return IndexMismatch(r.path(), ordinal, sample.key, "the index has no such sample");
    }
    // An index block that does not decode was already reported by Verify.
    if (idx.Get(ordinal, &e).ok() && !SameSample(idx, e, sample)) {
      return IndexMismatch(r.path(), ordinal, sample.key,
                           fmt::format("the index has key '{}' with {} fields at other offsets",
                                       EscapeForDisplay(e.key), e.fields.size()));
    }
    ++ordinal;
    return Status::OK();
  });
  if (s.ok() && ordinal != idx.num_samples()) {
    s = Status::Corruption(fmt::format(
        "{}: the index lists {} samples but the tar's members form {}; rerun shardset index {}",
        r.path(), idx.num_samples(), ordinal, r.path()));
  }
  if (!s.ok()) report->problems.push_back(s.message());
}

// A member's time for Stat: the header block right before its data (every
// dialect puts it there; pax and GNU long-name headers come before it).
// nullopt, and the tar's own time is used, when that block is not a valid
// header (its checksum fails).
std::optional<int64_t> MemberTime(const IndexedShardReader& r, const index::FieldLoc& f) {
  if (f.offset < kBlockSize) return std::nullopt;
  const std::string_view block = r.data().data().substr(f.offset - kBlockSize, kBlockSize);
  if (block.size() != kBlockSize || !ChecksumMatches(block)) return std::nullopt;
  Header h;
  if (!DecodeHeader(block, &h).ok()) return std::nullopt;
  return h.mtime;
}

// An index of `tar` built by one scan, serialized for IndexReader.
Result<std::string> ScanIndex(const MappedFile& tar, const ReadOptions& options) {
  tar.AdviseSequential();
  index::IndexBuilder builder(/*contiguous=*/false);
  MemorySource source(tar.data());
  SHARDSET_RETURN_IF_ERROR(BuildIndex(&source, tar.path(), &builder, options));
  return builder.Finish(0);
}

// ---- Writing ----

class TarWriter : public ShardWriter {
 public:
  TarWriter(std::unique_ptr<AtomicFile> file, const WriteOptions& options)
      : file_(std::move(file)),
        options_(options),
        tar_(file_.final_path(), [this](std::string_view b) { return file_.Append(b); }) {}

  Status Add(const InputSample& sample) override {
    SHARDSET_RETURN_IF_ERROR(file_.Usable());
    return tar_.Add(sample);
  }

  uint64_t num_samples() const override { return tar_.num_samples(); }
  uint64_t bytes_written() const override { return file_.offset() + 2 * kBlockSize; }

  Result<ShardInfo> Close() override {
    SHARDSET_RETURN_IF_ERROR(file_.Usable());
    file_.MarkClosed();
    SHARDSET_RETURN_IF_ERROR(tar_.Finish());
    ShardInfo info = SealedShardInfo(file_.atomic(), ShardFormat::kTar, tar_.index(), file_.xxh3());
    SHARDSET_RETURN_IF_ERROR(file_.Commit(options_.sync, options_.overwrite));
    if (options_.sidecar_index) {
      // After the commit: the fingerprint records the final file's mtime.
      Status s = WriteSidecarOf(info.path);
      if (!s.ok()) {
        return s.WithPrefix(fmt::format(
            "{}: the tar was written but its index was not (run shardset index {})", info.path,
            info.path));
      }
    }
    return info;
  }

 private:
  Status WriteSidecarOf(const std::string& path) {
    SHARDSET_ASSIGN_OR_RETURN(MappedFile tar, MappedFile::Open(path));
    return WriteSidecar(path, FingerprintOf(tar), &tar_.index(), options_.sync);
  }

  ShardFile file_;
  WriteOptions options_;
  TarStreamWriter tar_;  // appends to file_
};

}  // namespace

std::string SidecarPath(const std::string& tar_path) { return tar_path + ".idx"; }

bool LooksTar(std::string_view prefix) {
  if (prefix.size() < kBlockSize) return false;
  const std::string_view block = prefix.substr(0, kBlockSize);
  // A zero first block is an empty archive (what Create writes for no samples).
  return IsZeroBlock(block) || ChecksumMatches(block);
}

Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options) {
  SHARDSET_ASSIGN_OR_RETURN(MappedFile tar, MappedFile::Open(path));
  Result<Sidecar> sidecar = OpenSidecar(tar);
  MappedFile sidecar_file;
  std::string storage;
  std::optional<index::IndexReader> idx;
  Status refusal;
  if (sidecar.ok()) {
    sidecar_file = std::move(sidecar->file);
    idx = std::move(sidecar->index);
    refusal = std::move(sidecar->fingerprint);
  } else if (sidecar.status().IsNotFound()) {
    SHARDSET_ASSIGN_OR_RETURN(storage, ScanIndex(tar, options));
    // `storage` moves into the reader below; its heap buffer, which the
    // IndexReader views, moves with it.
    SHARDSET_ASSIGN_OR_RETURN(idx, index::IndexReader::Open(storage, tar.size(), path));
  } else {
    return sidecar.status();
  }
  tar.AdviseRandom();
  auto reader = std::make_unique<IndexedShardReader>(
      ShardFormat::kTar, std::move(tar), std::move(sidecar_file), std::move(storage),
      std::move(*idx), options, VerifyMembers);
  // A tar whose edges no longer match its sidecar is refused by every read
  // (docs/formats/tar-index.md "Opening"); Verify reports that, then checks
  // each sample so that bit rot there is named by sample.
  if (!refusal.ok()) reader->RefuseReads(std::move(refusal));
  reader->SetTimeHook(MemberTime);
  return std::unique_ptr<ShardReader>(std::move(reader));
}

Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options) {
  SHARDSET_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path, options.sync));
  return std::unique_ptr<ShardWriter>(new TarWriter(std::move(file), options));
}

Result<uint64_t> WriteIndex(const std::string& path, const ReadOptions& options, bool sync) {
  SHARDSET_ASSIGN_OR_RETURN(MappedFile tar, MappedFile::Open(path));
  tar.AdviseSequential();
  index::IndexBuilder builder(/*contiguous=*/false);
  MemorySource source(tar.data());
  SHARDSET_RETURN_IF_ERROR(BuildIndex(&source, path, &builder, options));
  const uint64_t n = builder.num_samples();
  SHARDSET_RETURN_IF_ERROR(WriteSidecar(path, FingerprintOf(tar), &builder, sync));
  return n;
}

}  // namespace shardset::tar
