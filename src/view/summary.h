// What `shardset info` reports about a dataset or view, computed once and
// shared by the CLI and `shardset serve` (so the web page shows exactly the
// numbers `info --json` prints).
#ifndef SHARDSET_VIEW_SUMMARY_H_
#define SHARDSET_VIEW_SUMMARY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shardset/status.h"
#include "shardset/view.h"

namespace shardset {

struct FieldSummary {
  uint64_t samples = 0, bytes = 0;
  bool derived = false;
};

struct ViewSummary {
  std::map<std::string, FieldSummary> fields;
  // Samples per value of the label field, over the whole view and per source.
  std::map<std::string, uint64_t> labels;
  std::vector<std::map<std::string, uint64_t>> source_labels;
  uint64_t field_bytes = 0;   // every field
  uint64_t source_bytes = 0;  // fields that are not derived
};

// Reads every sample of `view` once (checksums as `view` was opened with).
// `progress` is called now and then with the samples done.
Result<ViewSummary> Summarize(const View& view, std::string_view label_field,
                              const std::function<void(uint64_t)>& progress = {});

// The object `shardset info --json` prints (docs/cli.md "info").
nlohmann::json SummaryJson(const View& view, const ViewSummary& summary,
                           std::string_view label_field);

}  // namespace shardset

#endif  // SHARDSET_VIEW_SUMMARY_H_
