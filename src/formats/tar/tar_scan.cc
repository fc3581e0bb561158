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

}  // namespace

std::string_view NormalizeMemberPath(std::string_view path) {
  while (path.substr(0, 2) == "./") path.remove_prefix(2);
  return path;
}

KeyField SplitMemberPath(std::string_view path) {
  auto [key, field] = SplitKeyField(path);
  return {key, field};
}

MemberWalker::MemberWalker(std::string_view tar, std::string_view tar_name)
    : tar_(tar), tar_name_(tar_name) {}

Status MemberWalker::HeaderError(Status::Code code, uint64_t header_at,
                                 std::string_view what) const {
  const std::string after = last_path_.empty()
                                ? std::string("before the first member")
                                : fmt::format("after member '{}'", EscapeForDisplay(last_path_));
  return MakeStatus(code, fmt::format("{}: header at byte {} ({}): {}; {}", tar_name_, header_at,
                                      after, what, Advice(code)));
}

Status MemberWalker::MemberError(Status::Code code, std::string_view path, uint64_t header_at,
                                 std::string_view what) const {
  return MakeStatus(code, fmt::format("{}: member '{}' (header at byte {}): {}; {}", tar_name_,
                                      EscapeForDisplay(path), header_at, what, Advice(code)));
}

Result<bool> MemberWalker::Next(Member* out) {
  if (!error_.ok()) return error_;
  Result<bool> r = NextImpl(out);
  if (!r.ok()) error_ = r.status();
  return r;
}

uint64_t MemberWalker::DataSize(const Header& h) const {
  if (!HasData(h.typeflag)) return 0;
  if (!IsExtension(h.typeflag) && pax_.size) return *pax_.size;
  return h.size;
}

Result<bool> MemberWalker::NextImpl(Member* out) {
  for (;;) {
    const uint64_t header_at = pos_;
    if (pos_ == tar_.size() || IsZeroBlock(tar_.substr(pos_, kBlockSize))) {
      if (chain_start_ == kNone) return false;
      return HeaderError(Status::Code::kCorruption, header_at,
                         "the archive ends after an extended header, without its member");
    }
    Header h;
    SHARDSET_RETURN_IF_ERROR(DecodeHeaderAt(header_at, &h));
    if (chain_start_ == kNone) chain_start_ = header_at;
    const std::string& raw = pax_.path ? *pax_.path : long_name_ ? *long_name_ : h.path;
    std::string path(NormalizeMemberPath(raw));
    const uint64_t data = header_at + kBlockSize;
    const uint64_t size = DataSize(h);
    if (size > tar_.size() - data) {
      return MemberError(Status::Code::kCorruption, path, header_at,
                         fmt::format("its header claims {} bytes of data but the file ends {} "
                                     "bytes after the header",
                                     size, tar_.size() - data));
    }
    // The last member's padding may be missing; the next loop then ends at EOF.
    pos_ = data + std::min(size + PaddingAfter(size), tar_.size() - data);
    SHARDSET_ASSIGN_OR_RETURN(bool extension,
                              ReadExtension(h.typeflag, header_at, tar_.substr(data, size)));
    if (extension) continue;
    SHARDSET_ASSIGN_OR_RETURN(bool regular, EndMember(h.typeflag, path));
    if (!regular) continue;
    *out = Member{std::move(path), last_member_at_, data, size};
    return true;
  }
}

Status MemberWalker::DecodeHeaderAt(uint64_t header_at, Header* h) const {
  if (tar_.size() - header_at < kBlockSize) {
    return HeaderError(Status::Code::kCorruption, header_at,
                       fmt::format("the file ends {} bytes into a header block",
                                   tar_.size() - header_at));
  }
  Status s = DecodeHeader(tar_.substr(header_at, kBlockSize), h);
  if (!s.ok()) return HeaderError(Status::Code::kCorruption, header_at, s.message());
  return Status::OK();
}

Result<bool> MemberWalker::EndMember(char typeflag, const std::string& path) {
  // The extended headers before a member apply to it alone.
  last_member_at_ = chain_start_;
  const bool sparse = pax_.sparse;
  chain_start_ = kNone;
  pax_ = PaxHeader();
  long_name_.reset();
  last_path_ = path;
  if (typeflag == kGnuSparse || sparse) {
    return MemberError(Status::Code::kNotSupported, path, last_member_at_,
                       "it is a GNU sparse file, stored with its holes removed");
  }
  if (typeflag == kGnuMultiVolume) {
    return MemberError(Status::Code::kNotSupported, path, last_member_at_,
                       "it continues a file from another volume of a multi-volume archive");
  }
  // A "regular file" named with a trailing slash is a directory (v7 tars had
  // no directory type; GNU tar and Python tarfile read it so).
  return IsRegularType(typeflag) && (path.empty() || path.back() != '/');
}

Result<bool> MemberWalker::ReadExtension(char typeflag, uint64_t header_at,
                                         std::string_view payload) {
  switch (typeflag) {
    case kPaxLocal:
    case kPaxSolaris: {
      if (payload.size() > kMaxPaxHeaderBytes) {
        return HeaderError(Status::Code::kResourceExhausted, header_at,
                           fmt::format("pax extended header of {} bytes (the limit is {})",
                                       payload.size(), kMaxPaxHeaderBytes));
      }
      Status s = ParsePaxRecords(payload, &pax_);
      if (!s.ok()) return HeaderError(Status::Code::kCorruption, header_at, s.message());
      return true;
    }
    case kPaxGlobal:  // defaults for all later members; none that shardset uses
      return true;
    case kGnuLongName:
    case kGnuLongLink: {
      if (payload.size() > kMaxLongNameBytes) {
        return HeaderError(Status::Code::kCorruption, header_at,
                           fmt::format("GNU long name of {} bytes (the limit is {})",
                                       payload.size(), kMaxLongNameBytes));
      }
      // The name ends at its first NUL, like GNU tar reads it. Long link
      // names are read for their bounds only: links are skipped.
      if (typeflag == kGnuLongName) long_name_ = std::string(payload.substr(0, payload.find('\0')));
      return true;
    }
    default:
      return false;
  }
}

Status ForEachSample(std::string_view tar, std::string_view tar_name,
                     const std::function<Status(const ScannedSample&)>& on_sample) {
  MemberWalker walker(tar, tar_name);
  ScannedSample sample;
  Member m;
  for (;;) {
    SHARDSET_ASSIGN_OR_RETURN(bool more, walker.Next(&m));
    if (!more) break;
    const KeyField kf = SplitMemberPath(m.path);
    const bool repeated = std::any_of(sample.fields.begin(), sample.fields.end(),
                                      [&](const ScannedField& f) { return f.name == kf.field; });
    if (!sample.fields.empty() && (kf.key != sample.key || repeated)) {
      SHARDSET_RETURN_IF_ERROR(on_sample(sample));
      sample.fields.clear();
    }
    if (sample.fields.empty()) {
      if (kf.key.size() > index::kMaxKeyBytes) {
        return Status::ResourceExhausted(fmt::format(
            "{}: member '{}' (header at byte {}): its key is {} bytes, over the {} byte limit",
            tar_name, EscapeForDisplay(m.path.substr(0, 200)), m.header_offset, kf.key.size(),
            index::kMaxKeyBytes));
      }
      sample.key = kf.key;
    } else if (sample.fields.size() >= index::kMaxFields) {
      return Status::ResourceExhausted(fmt::format(
          "{}: sample '{}' has more than {} fields (member '{}'); the key is the member path up "
          "to the first '.' of its basename, so names like 'x.0001.png' put every file in one "
          "sample: rename the files",
          tar_name, EscapeForDisplay(sample.key), index::kMaxFields, EscapeForDisplay(m.path)));
    }
    sample.fields.push_back(ScannedField{std::string(kf.field), m.data_offset, m.size});
  }
  if (!sample.fields.empty()) return on_sample(sample);
  return Status::OK();
}

Status BuildIndex(std::string_view tar, std::string_view tar_name, index::IndexBuilder* builder) {
  std::vector<index::FieldLoc> locs;
  Xxh3Stream sum;
  return ForEachSample(tar, tar_name, [&](const ScannedSample& s) -> Status {
    locs.clear();
    sum.Reset();
    for (const ScannedField& f : s.fields) {
      const uint32_t id = builder->FieldId(f.name, 0);
      if (id >= index::kMaxFields) {
        return Status::ResourceExhausted(fmt::format(
            "{}: more than {} distinct field names (sample '{}' adds '{}'); the field is what "
            "follows the first '.' of a member's basename: rename the files",
            tar_name, index::kMaxFields, EscapeForDisplay(s.key), EscapeForDisplay(f.name)));
      }
      locs.push_back(index::FieldLoc{id, f.offset, f.size});
      sum.Update(tar.substr(f.offset, f.size));
    }
    builder->Add(s.key, locs, static_cast<uint32_t>(sum.Digest()));
    return Status::OK();
  });
}

}  // namespace shardset::tar
