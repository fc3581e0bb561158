// Writers whose samples are stored as members named "key.field" (tar, zip)
// share one rule for which samples they can store: each member must read back
// as the same key and field (src/formats/sample_key.h), and a sample must not
// be one that readers would merge with the previous one.
#ifndef SHARDSET_FORMATS_MEMBER_SAMPLES_H_
#define SHARDSET_FORMATS_MEMBER_SAMPLES_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/shard.h"

namespace shardset {

class MemberSampleChecker {
 public:
  // `member_kind` names a member in messages ("tar member", "zip entry");
  // `format_rule` returns why a member name breaks the format's own rules
  // (charset, length, NUL bytes), or "" when it does not.
  MemberSampleChecker(std::string_view member_kind,
                      std::function<std::string(std::string_view member)> format_rule);

  // InvalidArgument naming `shard` and the sample when `s` cannot be stored:
  // no fields, a field twice, a name that would not read back as its key and
  // field, or the previous sample's key with no field in common (readers
  // would merge the two).
  Status Check(const std::string& shard, const InputSample& s) const;
  // Records `s` as written (after Check passed and it was stored).
  void Added(const InputSample& s);

  uint64_t num_samples() const { return num_samples_; }
  const std::string& first_key() const { return first_key_; }
  const std::string& last_key() const { return prev_key_; }

 private:
  std::string NameProblem(std::string_view key, std::string_view field,
                          std::string_view member) const;

  std::string kind_;
  std::function<std::string(std::string_view)> format_rule_;
  uint64_t num_samples_ = 0;
  std::string first_key_, prev_key_;
  std::vector<std::string> prev_fields_;
};

}  // namespace shardset

#endif  // SHARDSET_FORMATS_MEMBER_SAMPLES_H_
