#include "view/summary.h"

namespace shardset {

using json = nlohmann::json;

Result<ViewSummary> Summarize(const View& view, std::string_view label_field,
                              const std::function<void(uint64_t)>& progress) {
  ViewSummary out;
  out.source_labels.resize(view.num_sources());
  Sample s;
  for (uint64_t i = 0; i < view.num_samples(); ++i) {
    SHARDSET_RETURN_IF_ERROR(view.Read(i, &s));
    for (const Field& f : s.fields) {
      FieldSummary& fs = out.fields[std::string(f.name)];
      ++fs.samples;
      fs.bytes += f.data.size();
      fs.derived = f.flags & kFieldDerived;
      out.field_bytes += f.data.size();
      if (!(f.flags & kFieldDerived)) out.source_bytes += f.data.size();
    }
    if (auto label = SampleLabel(s, label_field); label.ok()) {
      ++out.labels[*label];
      ++out.source_labels[view.entry(i).source][*label];
    }
    if (progress && i % 8192 == 0) progress(i);
  }
  return out;
}

json SummaryJson(const View& view, const ViewSummary& summary, std::string_view label_field) {
  json fields = json::object();
  for (const auto& [name, fs] : summary.fields) {
    fields[name] = {{"samples", fs.samples}, {"bytes", fs.bytes}, {"derived", fs.derived}};
  }
  if (view.is_view_file()) {
    json sources = json::array();
    for (size_t i = 0; i < view.num_sources(); ++i) {
      const ViewSource& src = view.source(i);
      sources.push_back({{"name", src.name},
                         {"targets", src.targets},
                         {"samples", src.num_samples},
                         {"selected", src.selected},
                         {"shards", src.shards.size()},
                         {"labels", summary.source_labels[i]}});
    }
    return {{"target", view.target()},
            {"view", true},
            {"samples", view.num_samples()},
            {"bytes", view.file_size()},
            {"field_bytes", summary.field_bytes},
            {"fields", fields},
            {"label_field", label_field},
            {"labels", summary.labels},
            {"sources", sources},
            {"recipe", json::parse(view.recipe_json(), nullptr, false)}};
  }
  const Dataset& ds = view.dataset(0);
  const auto& shard_list = ds.manifest().shards;
  uint64_t file_bytes = 0;
  for (const ManifestShard& ms : shard_list) file_bytes += ms.file_size;
  json j;
  j["target"] = ds.target();
  j["samples"] = ds.num_samples();
  j["shards"] = ds.num_shards();
  j["bytes"] = file_bytes;
  j["field_bytes"] = summary.field_bytes;
  j["source_bytes"] = summary.source_bytes;
  j["overhead_percent"] =
      summary.source_bytes
          ? 100.0 * (double(file_bytes) - double(summary.source_bytes)) / double(summary.source_bytes)
          : 0.0;
  j["fields"] = fields;
  j["label_field"] = label_field;
  j["labels"] = summary.labels;
  json shards = json::array();
  for (size_t i = 0; i < ds.num_shards(); ++i) {
    shards.push_back({{"path", ds.shard_location(i)},
                      {"format", std::string(FormatName(shard_list[i].format))},
                      {"samples", shard_list[i].num_samples},
                      {"bytes", shard_list[i].file_size}});
  }
  j["shard_list"] = shards;
  if (ds.has_manifest()) j["recipe"] = json::parse(ds.manifest().recipe_json, nullptr, false);
  return j;
}

}  // namespace shardset
