#include "formats/native/native_shard.h"

#include <fmt/format.h>

#include "base/coding.h"
#include "base/file.h"
#include "base/hash.h"
#include "formats/indexed_reader.h"
#include "index/index.h"

namespace shardset::native {
namespace {

class NativeWriter : public ShardWriter {
 public:
  NativeWriter(std::unique_ptr<AtomicFile> file, const WriteOptions& options)
      : file_(std::move(file)), options_(options), index_(/*contiguous=*/true) {}

  Status Init() {
    std::string header(kMagic);
    PutFixed32(&header, kVersion);
    PutFixed32(&header, 0);  // flags: none defined in version 1
    return Append(header);
  }

  Status Add(const InputSample& sample) override {
    if (closed_) return Status::InvalidArgument("shard writer already closed");
    if (sample.key.size() > index::kMaxKeyBytes) {
      return Status::InvalidArgument(fmt::format("{}: key of {} bytes exceeds the {} byte limit",
                                                 file_->final_path(), sample.key.size(),
                                                 index::kMaxKeyBytes));
    }
    // Refused before any byte is appended: a refused sample must leave the
    // data region as it was (fuzzing found the field bytes before a
    // duplicate left behind, unclaimed by any sample).
    for (size_t i = 0; i < sample.fields.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (sample.fields[i].name == sample.fields[j].name) {
          return Status::InvalidArgument(
              fmt::format("sample '{}' has field '{}' twice", sample.key, sample.fields[i].name));
        }
      }
    }
    locs_.clear();
    for (const InputField& f : sample.fields) {
      const uint32_t id = index_.FieldId(f.name, f.flags);
      if (id >= index::kMaxFields) {
        return Status::InvalidArgument(
            fmt::format("{}: sample '{}': the shard would have more than {} field names",
                        file_->final_path(), sample.key, index::kMaxFields));
      }
      locs_.push_back(index::FieldLoc{id, 0, f.data.size()});
    }
    Xxh3Stream sum;
    for (size_t i = 0; i < sample.fields.size(); ++i) {
      const InputField& f = sample.fields[i];
      locs_[i].offset = file_->offset();
      sum.Update(f.data);
      SHARDSET_RETURN_IF_ERROR(Append(f.data));
    }
    index_.Add(sample.key, locs_, static_cast<uint32_t>(sum.Digest()));
    return Status::OK();
  }

  uint64_t num_samples() const override { return index_.num_samples(); }
  uint64_t bytes_written() const override {
    return file_->offset() + index_.size_estimate() + index::kFooterSize;
  }

  Result<ShardInfo> Close() override {
    if (closed_) return Status::InvalidArgument("shard writer already closed");
    closed_ = true;
    SHARDSET_RETURN_IF_ERROR(Append(index_.Finish(file_->offset())));
    ShardInfo info = SealedShardInfo(*file_, ShardFormat::kNative, index_, file_hash_.Digest());
    SHARDSET_RETURN_IF_ERROR(file_->Commit(options_.sync, options_.overwrite));
    return info;
  }

 private:
  Status Append(std::string_view data) {
    file_hash_.Update(data);
    return file_->Append(data);
  }

  std::unique_ptr<AtomicFile> file_;
  WriteOptions options_;
  index::IndexBuilder index_;
  Xxh3Stream file_hash_;
  std::vector<index::FieldLoc> locs_;
  bool closed_ = false;
};

// Native-only structure checks: samples must cover the data region exactly,
// so bytes that no sample claims (a sign of a damaged index) are reported.
void VerifyCoverage(const IndexedShardReader& r, VerifyReport* report) {
  uint64_t expect = kHeaderSize;
  std::vector<index::Entry> entries;
  for (uint32_t b = 0; b < r.index().num_blocks(); ++b) {
    if (!r.index().GetBlock(b, &entries).ok()) return;  // already reported
    for (const auto& e : entries) {
      for (const auto& f : e.fields) {
        if (f.offset != expect) {
          report->problems.push_back(fmt::format(
              "{}: data region has a gap or overlap at byte {} (sample key '{}'); re-pack it",
              r.path(), expect, e.key));
          return;
        }
        expect += f.size;
      }
    }
  }
  if (expect != r.index().index_offset()) {
    report->problems.push_back(
        fmt::format("{}: data region ends at byte {} but the index starts at {}; re-pack it",
                    r.path(), expect, r.index().index_offset()));
  }
}

}  // namespace

bool LooksNative(std::string_view prefix) {
  return prefix.size() >= kMagic.size() && prefix.substr(0, kMagic.size()) == kMagic;
}

Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options) {
  SHARDSET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  std::string_view data = file.data();
  // The footer first: when it is intact and of a known version, a header
  // that disagrees with it is damage, not a file of another format or version.
  SHARDSET_ASSIGN_OR_RETURN(index::IndexReader idx,
                            index::IndexReader::Open(data, data.size(), path));
  if (data.size() < kHeaderSize || !LooksNative(data) ||
      DecodeFixed32(data.data() + 8) != kVersion || DecodeFixed32(data.data() + 12) != 0) {
    return Status::Corruption(fmt::format(
        "{}: native shard header is damaged (magic, version or flags); restore the shard from "
        "a backup or re-pack",
        path));
  }
  if (idx.index_offset() < kHeaderSize) {
    return Status::Corruption(fmt::format("{}: index overlaps the header; re-pack it", path));
  }
  // Fields lie in the data region, which ends where the index starts
  // (docs/format.md "Reading a sample"): opened again with that limit, a
  // field that points into the index region is refused on every read, not
  // only by verify.
  SHARDSET_ASSIGN_OR_RETURN(idx, index::IndexReader::Open(data, idx.index_offset(), path));
  file.AdviseRandom();
  return std::unique_ptr<ShardReader>(
      new IndexedShardReader(ShardFormat::kNative, std::move(file), MappedFile(), std::string(),
                             std::move(idx), options, VerifyCoverage));
}

Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options) {
  SHARDSET_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path, options.sync));
  auto w = std::make_unique<NativeWriter>(std::move(file), options);
  SHARDSET_RETURN_IF_ERROR(w->Init());
  return std::unique_ptr<ShardWriter>(std::move(w));
}

}  // namespace shardset::native
