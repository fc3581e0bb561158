#include "formats/tar/tar_writer.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/strings.h"
#include "formats/sample_key.h"
#include "formats/tar/tar_header.h"

namespace shardset::tar {
namespace {

// The tar format's own rule for member names (the shared ones are in
// MemberSampleChecker).
std::string TarNameRule(std::string_view member) {
  if (member.find('\0') != std::string_view::npos) return "tar names cannot hold NUL bytes";
  return {};
}

}  // namespace

TarStreamWriter::TarStreamWriter(std::string shard, Sink sink)
    : shard_(std::move(shard)),
      sink_(std::move(sink)),
      index_(/*contiguous=*/false),
      checker_("tar member", TarNameRule) {}

Status TarStreamWriter::InvalidSample(std::string_view key, std::string_view what) const {
  return Status::InvalidArgument(
      fmt::format("{}: sample '{}': {}", shard_, EscapeForDisplay(key), what));
}

Status TarStreamWriter::Add(const InputSample& sample) {
  SHARDSET_RETURN_IF_ERROR(checker_.Check(shard_, sample));
  std::vector<uint32_t> ids;
  for (const InputField& f : sample.fields) {
    // Field flags are not kept: a tar stores every field as a member, and
    // a scan of the tar must build the same index as the writer.
    ids.push_back(index_.FieldId(f.name, 0));
    if (ids.back() >= index::kMaxFields) {
      return InvalidSample(
          sample.key,
          fmt::format("the shard would have more than {} field names", index::kMaxFields));
    }
  }
  locs_.clear();
  sample_hash_.Reset();
  for (size_t i = 0; i < sample.fields.size(); ++i) {
    const std::string_view data = sample.fields[i].data;
    SHARDSET_ASSIGN_OR_RETURN(uint64_t offset,
                              AppendMember(JoinKeyField(sample.key, sample.fields[i].name), data));
    locs_.push_back(index::FieldLoc{ids[i], offset, data.size()});
    sample_hash_.Update(data);
  }
  index_.Add(sample.key, locs_, static_cast<uint32_t>(sample_hash_.Digest()));
  checker_.Added(sample);
  return Status::OK();
}

Status TarStreamWriter::Finish() {
  uint64_t end = offset_ + 2 * kBlockSize;
  end += (kRecordSize - end % kRecordSize) % kRecordSize;
  return AppendZeros(end - offset_);
}

Status TarStreamWriter::Append(std::string_view bytes) {
  SHARDSET_RETURN_IF_ERROR(sink_(bytes));
  offset_ += bytes.size();
  return Status::OK();
}

Result<uint64_t> TarStreamWriter::AppendMember(const std::string& name, std::string_view data) {
  SHARDSET_RETURN_IF_ERROR(Append(EncodeMemberHeaders(name, data.size())));
  const uint64_t offset = offset_;
  SHARDSET_RETURN_IF_ERROR(Append(data));
  SHARDSET_RETURN_IF_ERROR(AppendZeros(PaddingAfter(data.size())));
  return offset;
}

Status TarStreamWriter::AppendZeros(uint64_t n) {
  static const std::string kZeros(kRecordSize, '\0');
  for (; n > 0; n -= std::min<uint64_t>(n, kZeros.size())) {
    SHARDSET_RETURN_IF_ERROR(Append(std::string_view(kZeros).substr(0, n)));
  }
  return Status::OK();
}

}  // namespace shardset::tar
