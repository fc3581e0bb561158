// A label id per view position, for the verbs that group samples by label
// (split --stratify, shuffle --interleave-by, info --order).
#ifndef SHARDSET_VIEW_LABELS_H_
#define SHARDSET_VIEW_LABELS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shardset/status.h"
#include "shardset/view.h"

namespace shardset {

// Non-negative integer labels first, as numbers ("2" < "10"), then the others
// bytewise. (Comparing numbers as numbers but a number and a word bytewise is
// no order at all: "1x" < "9" < "10" < "1x", which std::sort must not get.)
bool LabelLess(const std::string& a, const std::string& b);

// The label ids of a view's samples, kept in an unlinked temporary file that
// is memory-mapped: the page cache holds them, not the heap, so memory does
// not grow with the view (4 bytes per sample on disk). Ids follow LabelLess
// order of the label names, so they do not depend on which label came first.
class LabelColumn {
 public:
  LabelColumn() = default;
  LabelColumn(const LabelColumn&) = delete;
  LabelColumn& operator=(const LabelColumn&) = delete;
  ~LabelColumn();

  struct Options {
    // Folder of the temporary file; empty: $TMPDIR, else /tmp.
    std::string temp_dir;
    // More distinct labels than this is InvalidArgument, ending with `hint`
    // (what the user should do instead).
    size_t max_labels = 65536;
    std::string hint = "choose another label";
    // (samples done, samples)
    std::function<void(uint64_t, uint64_t)> progress;
  };
  // Reads every sample's label (keys only when the spec allows).
  Status Build(const View& v, const LabelSpec& spec, const Options& options);

  uint32_t operator[](uint64_t pos) const { return map_[pos]; }
  // The ids of positions 0 .. size() - 1 (nullptr when empty).
  const uint32_t* data() const { return map_; }
  uint64_t size() const { return size_; }
  const std::vector<std::string>& names() const { return names_; }
  // Samples per label id.
  const std::vector<uint64_t>& counts() const { return counts_; }

 private:
  uint32_t* map_ = nullptr;
  size_t map_bytes_ = 0;
  uint64_t size_ = 0;
  std::vector<uint32_t> remap_;
  std::vector<std::string> names_;
  std::vector<uint64_t> counts_;
};

}  // namespace shardset

#endif  // SHARDSET_VIEW_LABELS_H_
