#include "dataset/dataset_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hash.h"
#include "base/json_depth.h"
#include "base/json_number.h"
#include "base/strings.h"

namespace shardset {
namespace {

using json = nlohmann::json;

std::string Canonical(const std::string& json_text) { return json::parse(json_text).dump(); }

}  // namespace

void RemoveShard(const std::string& path, ShardFormat format) {
  for (const std::string& sidecar : SidecarPaths(path, format)) ::unlink(sidecar.c_str());
  ::unlink(path.c_str());
}

std::string DatasetWriter::ShardName(uint64_t index, ShardFormat format) {
  return fmt::format("shard-{:06d}{}", index, FormatExtension(format));
}

DatasetWriter::DatasetWriter(std::string out, DatasetWriterOptions options)
    : out_(std::move(out)), o_(std::move(options)) {}

DatasetWriter::~DatasetWriter() = default;

Result<std::unique_ptr<DatasetWriter>> DatasetWriter::Open(const std::string& out,
                                                           const DatasetWriterOptions& options) {
  if (options.shard_size == 0) return Status::InvalidArgument("--shard-size must be positive");
  if (!FormatWritable(options.format)) {
    return Status::InvalidArgument(
        fmt::format("{}: shardset cannot write {} shards", out, FormatName(options.format)));
  }
  if (json::parse(options.recipe_json, nullptr, false).is_discarded()) {
    return Status::InvalidArgument("DatasetWriter: recipe_json is not JSON");
  }
  std::unique_ptr<DatasetWriter> w(new DatasetWriter(out, options));
  Status s = w->Prepare();
  if (s.ok() && !w->already_complete_) s = w->Resume();
  if (!s.ok()) {
    w->Abandon();
    return s;
  }
  return w;
}

// Creates `out`, or recognises a finished or interrupted run in it.
Status DatasetWriter::Prepare() {
  if (::mkdir(out_.c_str(), 0755) == 0) {
    created_out_ = true;
  } else if (errno != EEXIST) {
    return Status::FromErrno(fmt::format("{}: cannot create output folder", out_), errno);
  }
  if (!IsDirectory(out_)) {
    return Status::InvalidArgument(fmt::format("{}: exists and is not a folder", out_));
  }
  if (PathExists(JoinPath(out_, kManifestName))) {
    auto m = Manifest::Load(out_);
    if (m.ok() && m->recipe_json == Canonical(o_.recipe_json) && o_.append) {
      // Continued like an interrupted run whose state names the manifest's
      // shards (a state file already there is newer: it wins).
      if (!PathExists(JoinPath(out_, kStateName))) {
        manifest_ = std::move(*m);
        uint64_t progress = 0;
        for (const ManifestShard& ms : manifest_.shards) {
          progress += ms.num_samples;
          progress_at_seal_.push_back(progress);
        }
        SHARDSET_RETURN_IF_ERROR(SaveState());
        manifest_ = Manifest();
        progress_at_seal_.clear();
      }
      return RemoveStaleTempFiles(out_).status();
    }
    if (m.ok() && m->recipe_json == Canonical(o_.recipe_json)) {
      already_complete_ = true;
      // Killed between writing the manifest and removing the state file.
      ::unlink(JoinPath(out_, kStateName).c_str());
      manifest_ = std::move(*m);
      return Status::OK();
    }
    if (!o_.force) {
      return Status::AlreadyExists(fmt::format(
          "{}: already holds a dataset made with other arguments; choose another -o, or pass "
          "--force to replace it",
          out_));
    }
    if (m.ok()) {
      for (const auto& s : m->shards) {
        // Only shards inside the folder: an adopted shard ("../raw/a.tar")
        // belongs to someone else.
        if (s.path.find('/') == std::string::npos) RemoveShard(JoinPath(out_, s.path), s.format);
      }
    }
    ::unlink(JoinPath(out_, kManifestName).c_str());
  }
  return RemoveStaleTempFiles(out_).status();
}

Status DatasetWriter::Resume() {
  // nlohmann reports a state file of the wrong shape by throwing; that stays
  // here and becomes an error that says what to do.
  try {
    return ResumeFromState();
  } catch (const std::exception& e) {
    return Status::Corruption(fmt::format(
        "{}: the interrupted {}'s state file is damaged ({}); pass --force to start over",
        JoinPath(out_, kStateName), o_.verb, e.what()));
  }
}

Status DatasetWriter::ResumeFromState() {
  const std::string state_path = JoinPath(out_, kStateName);
  if (!PathExists(state_path)) return ClearStrayShards(0);
  SHARDSET_ASSIGN_OR_RETURN(std::string text, ReadFile(state_path, 64ull << 20));
  // Too deep to copy or dump safely: read as a state file that does not
  // parse (docs/formats/manifest.md "Resource bounds").
  json state = JsonDepthWithin(text) ? json::parse(text, nullptr, false)
                                     : json(json::value_t::discarded);
  if (state.is_discarded() || !state.contains("recipe") ||
      state["recipe"].dump() != Canonical(o_.recipe_json)) {
    if (!o_.force) {
      return Status::AlreadyExists(fmt::format(
          "{}: holds an interrupted {} made with other arguments; rerun it with the same "
          "arguments to resume, or pass --force to start over",
          out_, o_.verb));
    }
    return ClearStrayShards(0);
  }
  // Only the shards the state records are kept. A shard sealed after the
  // state was last written (killed between its rename and SaveState) is
  // written again with the rest: its manifest entry cannot be rebuilt from
  // the file alone (tar, tar.gz, zip and tsv shards do not keep the derived
  // flag of a field such as --label-from-dir's cls, so its source_bytes would
  // count it and the manifest would differ from an uninterrupted run's), and
  // no caller was told it was durable (Flush and Seal return after SaveState).
  uint64_t progress = 0;
  for (uint64_t k = 0;; ++k) {
    const std::string name = ShardName(k, o_.format);
    const std::string path = JoinPath(out_, name);
    if (!PathExists(path)) break;
    auto shard = OpenShard(path);
    if (!shard.ok()) break;  // cannot happen for a sealed shard; start over from here
    ManifestShard ms;
    ms.path = name;
    ms.format = o_.format;
    ms.num_samples = (*shard)->num_samples();
    ms.file_size = (*shard)->file_size();
    if (k >= state["shards"].size()) break;
    const json& recorded = state["shards"][k];
    if (JsonU64(recorded, "bytes", 0) != ms.file_size) break;
    ms.xxh3 = std::stoull(recorded.value("xxh3", std::string("0")), nullptr, 16);
    SHARDSET_ASSIGN_OR_RETURN(ms.directory_xxh3, DirectoryChecksum(path, ms.format));
    ms.source_bytes = JsonU64(recorded, "source_bytes", 0);
    progress = JsonU64(recorded, "consumed", progress + ms.num_samples);
    const std::vector<std::string> sidecars = SidecarPaths(path, o_.format);
    if (std::any_of(sidecars.begin(), sidecars.end(),
                    [](const std::string& p) { return !PathExists(p); })) {
      // A recorded shard whose sidecar index is gone (deleted since).
      SHARDSET_RETURN_IF_ERROR(WriteShardIndex(path, {}, o_.write.sync).status());
    }
    if (ms.num_samples > 0) {
      SHARDSET_ASSIGN_OR_RETURN(resumed_last_key_, (*shard)->Key(ms.num_samples - 1));
    }
    AddToManifest(ms, progress);
  }
  resumed_progress_ = progress;
  resumed_samples_ = manifest_.num_samples;
  if (!manifest_.shards.empty()) resumed_extra_ = text;
  return ClearStrayShards(manifest_.shards.size());
}

Status DatasetWriter::ClearStrayShards(uint64_t from) {
  // The highest shard number present, from the folder itself: with --jobs 2
  // shards seal out of order, so stray shards may follow a gap, and a kill
  // during an earlier clear may have left only a sidecar.
  uint64_t last = 0;
  bool any = false;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(out_, ec)) {
    const std::string name = e.path().filename().string();
    unsigned long long k = 0;
    if (std::sscanf(name.c_str(), "shard-%6llu", &k) != 1 || k < from) continue;
    last = any ? std::max<uint64_t>(last, k) : k;
    any = true;
  }
  if (ec) return Status::FromErrno(out_, ec.value());
  for (uint64_t k = from; any && k <= last; ++k) {
    RemoveShard(JoinPath(out_, ShardName(k, o_.format)), o_.format);
  }
  return Status::OK();
}

void DatasetWriter::AddToManifest(const ManifestShard& ms, uint64_t progress) {
  manifest_.num_samples += ms.num_samples;
  manifest_.total_bytes += ms.file_size;
  manifest_.source_bytes += ms.source_bytes;
  manifest_.shards.push_back(ms);
  progress_at_seal_.push_back(progress);
}

uint64_t DatasetWriter::open_samples() const { return writer_ ? writer_->num_samples() : 0; }

Status DatasetWriter::Add(const InputSample& s, uint64_t source_bytes, uint64_t progress) {
  uint64_t size = 0;
  for (const auto& f : s.fields) size += f.data.size();
  if (writer_ && writer_->num_samples() > 0 &&
      (writer_->bytes_written() + size > o_.shard_size ||
       (o_.shard_samples > 0 && writer_->num_samples() >= o_.shard_samples))) {
    // The sample being added was consumed but belongs to the next shard.
    SHARDSET_RETURN_IF_ERROR(Seal(progress - 1));
  }
  if (!writer_) {
    const std::string path = JoinPath(out_, ShardName(manifest_.shards.size(), o_.format));
    SHARDSET_ASSIGN_OR_RETURN(writer_, CreateShardWriter(path, o_.format, o_.write));
  }
  SHARDSET_RETURN_IF_ERROR(writer_->Add(s));
  open_source_bytes_ += source_bytes;
  return Status::OK();
}

Status DatasetWriter::Seal(uint64_t progress) {
  if (!writer_) return Status::OK();
  SHARDSET_ASSIGN_OR_RETURN(ShardInfo info, writer_->Close());
  writer_.reset();
  ManifestShard ms;
  ms.path = BaseName(info.path);
  ms.format = info.format;
  ms.num_samples = info.num_samples;
  ms.file_size = info.file_size;
  ms.xxh3 = info.xxh3;
  SHARDSET_ASSIGN_OR_RETURN(ms.directory_xxh3, DirectoryChecksum(info.path, info.format));
  ms.source_bytes = open_source_bytes_;
  open_source_bytes_ = 0;
  AddToManifest(ms, progress);
  return SaveState();
}

Status DatasetWriter::SaveState() {
  json shards = json::array();
  for (size_t i = 0; i < manifest_.shards.size(); ++i) {
    const ManifestShard& s = manifest_.shards[i];
    shards.push_back({{"path", s.path},
                      {"bytes", s.file_size},
                      {"xxh3", Hex64(s.xxh3)},
                      {"source_bytes", s.source_bytes},
                      {"consumed", progress_at_seal_[i]}});
  }
  json state = json::object();
  if (!extra_state_.empty()) {
    json extra = json::parse(extra_state_, nullptr, false);
    if (extra.is_object()) state = std::move(extra);
  }
  state["recipe"] = json::parse(o_.recipe_json);
  state["shards"] = std::move(shards);
  return WriteFileAtomic(JoinPath(out_, kStateName),
                         state.dump(-1, ' ', false, json::error_handler_t::replace),
                         o_.write.sync);
}

Result<Manifest> DatasetWriter::Finish(uint64_t progress, std::vector<std::string> skipped) {
  if (already_complete_) return manifest_;
  SHARDSET_RETURN_IF_ERROR(Seal(progress));
  if (manifest_.num_samples == 0) {
    return Status::InvalidArgument(
        fmt::format("{}: no samples to write (empty source, or every sample was skipped); "
                    "nothing written",
                    out_));
  }
  manifest_.recipe_json = Canonical(o_.recipe_json);
  manifest_.skipped = std::move(skipped);
  SHARDSET_RETURN_IF_ERROR(manifest_.Save(out_, o_.write.sync));
  ::unlink(JoinPath(out_, kStateName).c_str());
  return manifest_;
}

void DatasetWriter::Abandon() {
  writer_.reset();  // removes its temporary file
  if (created_out_ && manifest_.shards.empty()) {
    ::unlink(JoinPath(out_, kStateName).c_str());
    ::rmdir(out_.c_str());
  }
}

}  // namespace shardset
