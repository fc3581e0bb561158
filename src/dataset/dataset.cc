#include "shardset/dataset.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hash.h"
#include "base/strings.h"

namespace shardset {
namespace {

using json = nlohmann::json;

// A manifest is small (a line per shard); this bound only stops a hostile
// or mistaken file from being read whole into memory.
constexpr uint64_t kMaxManifestBytes = 256ull << 20;

// JSON must be UTF-8; paths that are not are stored with invalid bytes
// replaced, which only affects the human-readable recipe and skip list.
std::string DumpJson(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

std::string Manifest::ToJson() const {
  json j;
  j["format"] = "shardset-dataset";
  j["version"] = kManifestVersion;
  j["num_samples"] = num_samples;
  j["total_bytes"] = total_bytes;
  json shards_json = json::array();
  for (const ManifestShard& s : shards) {
    shards_json.push_back({{"path", s.path},
                           {"format", std::string(FormatName(s.format))},
                           {"samples", s.num_samples},
                           {"bytes", s.file_size},
                           {"xxh3", Hex64(s.xxh3)}});
  }
  j["shards"] = std::move(shards_json);
  j["recipe"] = json::parse(recipe_json, nullptr, /*allow_exceptions=*/false);
  if (j["recipe"].is_discarded()) j["recipe"] = json::object();
  j["skipped"] = skipped;
  return DumpJson(j);
}

Result<Manifest> Manifest::FromJson(std::string_view text, const std::string& path) {
  auto bad = [&](std::string_view what) {
    return Status::Corruption(fmt::format(
        "{}: {}; the manifest is damaged: restore it from a backup or re-run pack", path, what));
  };
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("not valid JSON");
  // nlohmann reports type mismatches by throwing; they stay inside this
  // function and become a Corruption status.
  try {
    if (j.value("format", "") != "shardset-dataset") return bad("not a shardset manifest");
    int version = j.at("version").get<int>();
    if (version != kManifestVersion) {
      return Status::NotSupported(fmt::format(
          "{}: manifest version {} (this shardset reads version {}); upgrade shardset", path,
          version, kManifestVersion));
    }
    Manifest m;
    for (const json& s : j.at("shards")) {
      ManifestShard ms;
      ms.path = s.at("path").get<std::string>();
      if (ms.path.empty() || ms.path[0] == '/' || ms.path.find("..") != std::string::npos) {
        return bad(fmt::format("shard path '{}' leaves the dataset folder", ms.path));
      }
      auto format = ParseFormat(s.at("format").get<std::string>());
      if (!format.ok()) return bad(format.status().message());
      ms.format = *format;
      ms.num_samples = s.at("samples").get<uint64_t>();
      ms.file_size = s.at("bytes").get<uint64_t>();
      ms.xxh3 = std::stoull(s.at("xxh3").get<std::string>(), nullptr, 16);
      m.num_samples += ms.num_samples;
      m.total_bytes += ms.file_size;
      m.shards.push_back(std::move(ms));
    }
    if (m.num_samples != j.at("num_samples").get<uint64_t>()) {
      return bad("num_samples does not equal the sum over shards");
    }
    if (j.contains("recipe")) m.recipe_json = j["recipe"].dump();
    if (j.contains("skipped")) m.skipped = j["skipped"].get<std::vector<std::string>>();
    return m;
  } catch (const std::exception& e) {
    return bad(fmt::format("malformed ({})", e.what()));
  }
}

Result<Manifest> Manifest::Load(const std::string& dir) {
  const std::string path = JoinPath(dir, kManifestName);
  SHARDSET_ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxManifestBytes));
  return FromJson(text, path);
}

Status Manifest::Save(const std::string& dir, bool sync) const {
  return WriteFileAtomic(JoinPath(dir, kManifestName), ToJson(), sync);
}

Result<std::unique_ptr<Dataset>> Dataset::Open(const std::string& target,
                                               const ReadOptions& options) {
  std::unique_ptr<Dataset> ds(new Dataset());
  ds->target_ = target;
  if (IsDirectory(target)) {
    if (!PathExists(JoinPath(target, kManifestName))) {
      return Status::NotFound(fmt::format(
          "{}: a folder without {}; it is not a dataset (make one with shardset pack)", target,
          kManifestName));
    }
    SHARDSET_ASSIGN_OR_RETURN(ds->manifest_, Manifest::Load(target));
    ds->has_manifest_ = true;
    for (const ManifestShard& ms : ds->manifest_.shards) {
      const std::string path = JoinPath(target, ms.path);
      auto shard = OpenShard(path, options);
      if (!shard.ok()) {
        if (shard.status().IsNotFound()) {
          return Status::NotFound(fmt::format(
              "{}: shard listed in the manifest is missing; restore it from a backup", path));
        }
        return shard.status();
      }
      if ((*shard)->num_samples() != ms.num_samples) {
        return Status::Corruption(fmt::format(
            "{}: holds {} samples but the manifest says {}; the dataset was modified: restore "
            "it or re-pack",
            path, (*shard)->num_samples(), ms.num_samples));
      }
      ds->shards_.push_back(std::move(*shard));
    }
  } else {
    SHARDSET_ASSIGN_OR_RETURN(auto shard, OpenShard(target, options));
    ds->shards_.push_back(std::move(shard));
  }
  ds->starts_.push_back(0);
  for (const auto& s : ds->shards_) {
    ds->total_ += s->num_samples();
    ds->starts_.push_back(ds->total_);
  }
  return ds;
}

Result<std::pair<size_t, uint64_t>> Dataset::Locate(uint64_t ordinal) const {
  if (ordinal >= total_) {
    return Status::NotFound(fmt::format("{}: no sample {} (it has {} samples, 0..{})", target_,
                                        ordinal, total_, total_ == 0 ? 0 : total_ - 1));
  }
  // The last start <= ordinal; empty shards share a start with the next one.
  auto it = std::upper_bound(starts_.begin(), starts_.end(), ordinal);
  size_t shard = static_cast<size_t>(it - starts_.begin()) - 1;
  return std::make_pair(shard, ordinal - starts_[shard]);
}

Status Dataset::Read(uint64_t ordinal, Sample* out) const {
  SHARDSET_ASSIGN_OR_RETURN(auto loc, Locate(ordinal));
  SHARDSET_RETURN_IF_ERROR(shards_[loc.first]->Read(loc.second, out));
  out->ordinal = ordinal;
  return Status::OK();
}

Status Dataset::BuildKeyRanges() const {
  bool sorted = true;
  std::string prev_last;
  bool have_prev = false;
  for (const auto& s : shards_) {
    if (s->num_samples() == 0) {
      first_keys_.emplace_back();
      continue;
    }
    if (!s->keys_sorted()) sorted = false;
    SHARDSET_ASSIGN_OR_RETURN(std::string first, s->Key(0));
    SHARDSET_ASSIGN_OR_RETURN(std::string last, s->Key(s->num_samples() - 1));
    if (have_prev && !(first > prev_last)) sorted = false;
    prev_last = last;
    have_prev = true;
    first_keys_.push_back(std::move(first));
  }
  ranges_sorted_ = sorted;
  return Status::OK();
}

Result<uint64_t> Dataset::Find(std::string_view key) const {
  std::call_once(ranges_once_, [this] { ranges_status_ = BuildKeyRanges(); });
  SHARDSET_RETURN_IF_ERROR(ranges_status_);
  if (ranges_sorted_) {
    // The last non-empty shard whose first key <= key.
    size_t chosen = shards_.size();
    size_t lo = 0, hi = shards_.size();
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (shards_[mid]->num_samples() == 0 || std::string_view(first_keys_[mid]) <= key) {
        if (shards_[mid]->num_samples() != 0) chosen = mid;
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (chosen < shards_.size()) {
      auto r = shards_[chosen]->Find(key);
      if (r.ok()) return starts_[chosen] + *r;
      if (!r.status().IsNotFound()) return r.status();
    }
  } else {
    for (size_t i = 0; i < shards_.size(); ++i) {
      auto r = shards_[i]->Find(key);
      if (r.ok()) return starts_[i] + *r;
      if (!r.status().IsNotFound()) return r.status();
    }
  }
  return Status::NotFound(
      fmt::format("{}: no sample with key '{}'", target_, EscapeForDisplay(key)));
}

Status Dataset::Verify(VerifyReport* report,
                       const std::function<void(const DatasetVerifyProgress&)>& progress) const {
  DatasetVerifyProgress p;
  p.shards_total = shards_.size();
  for (size_t i = 0; i < shards_.size(); ++i) {
    const ShardReader& s = *shards_[i];
    if (has_manifest_) {
      const ManifestShard& ms = manifest_.shards[i];
      if (s.file_size() != ms.file_size) {
        report->problems.push_back(fmt::format(
            "{}: {} bytes but the manifest says {}; the shard was truncated or replaced: restore "
            "it from a backup",
            s.path(), s.file_size(), ms.file_size));
      } else {
        auto file = MappedFile::Open(s.path());
        if (!file.ok()) {
          report->problems.push_back(file.status().message());
        } else {
          file->AdviseSequential();
          if (Xxh3(file->data()) != ms.xxh3) {
            report->problems.push_back(fmt::format(
                "{}: whole-file checksum differs from the manifest; the shard was modified: "
                "restore it from a backup",
                s.path()));
          }
        }
      }
    }
    SHARDSET_RETURN_IF_ERROR(s.Verify(report));
    p.shards_done = i + 1;
    p.bytes_done += s.file_size();
    if (progress) progress(p);
  }
  return Status::OK();
}

}  // namespace shardset
