#include "formats/member_samples.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/strings.h"
#include "formats/sample_key.h"
#include "index/index.h"

namespace shardset {

MemberSampleChecker::MemberSampleChecker(
    std::string_view member_kind, std::function<std::string(std::string_view)> format_rule)
    : kind_(member_kind), format_rule_(std::move(format_rule)) {}

std::string MemberSampleChecker::NameProblem(std::string_view key, std::string_view field,
                                             std::string_view member) const {
  if (key.empty()) return "the key is empty";
  if (key.size() > index::kMaxKeyBytes) {
    return fmt::format("the key is longer than {} bytes", index::kMaxKeyBytes);
  }
  if (std::string why = format_rule_(member); !why.empty()) return why;
  if (!IsPlainRelativePath(member)) {
    return fmt::format("a {} needs a relative path without empty, '.' or '..' components", kind_);
  }
  if (SplitKeyField(member) != std::pair<std::string_view, std::string_view>{key, field}) {
    return "it would read back split at another '.' (the key's last component may not hold a "
           "'.' after its first byte, and a field may not hold a '/')";
  }
  return {};
}

Status MemberSampleChecker::Check(const std::string& shard, const InputSample& s) const {
  auto invalid = [&](std::string_view what) {
    return Status::InvalidArgument(
        fmt::format("{}: sample '{}': {}", shard, EscapeForDisplay(s.key), what));
  };
  if (s.fields.empty()) {
    return invalid(fmt::format("has no fields; a sample is stored as its {}s, so it needs one",
                               kind_));
  }
  for (size_t i = 0; i < s.fields.size(); ++i) {
    const std::string_view name = s.fields[i].name;
    const std::string member = JoinKeyField(s.key, name);
    if (std::string why = NameProblem(s.key, name, member); !why.empty()) {
      return invalid(fmt::format("field '{}' cannot be {} '{}': {}", EscapeForDisplay(name),
                                 kind_, EscapeForDisplay(member), why));
    }
    for (size_t j = 0; j < i; ++j) {
      if (s.fields[j].name == name) {
        return invalid(fmt::format("has field '{}' twice", EscapeForDisplay(name)));
      }
    }
  }
  // Readers join consecutive members with one key into one sample until a
  // field repeats; a sample that would join the previous one is refused.
  const std::string& first = s.fields[0].name;
  if (num_samples_ > 0 && s.key == prev_key_ &&
      std::find(prev_fields_.begin(), prev_fields_.end(), first) == prev_fields_.end()) {
    return invalid(
        "has the previous sample's key and no field in common with it, so readers would merge "
        "the two; write their fields as one sample");
  }
  return Status::OK();
}

void MemberSampleChecker::Added(const InputSample& s) {
  if (num_samples_ == 0) first_key_ = s.key;
  ++num_samples_;
  prev_key_ = s.key;
  prev_fields_.clear();
  for (const InputField& f : s.fields) prev_fields_.push_back(f.name);
}

}  // namespace shardset
