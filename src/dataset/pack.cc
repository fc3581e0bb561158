#include "shardset/pack.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <deque>
#include <future>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hash.h"
#include "base/strings.h"
#include "dataset/source.h"
#include "formats/sample_key.h"
#include "shardset/dataset.h"

namespace shardset {
namespace {

using json = nlohmann::json;

// Progress of an interrupted pack, rewritten atomically after each sealed
// shard (docs/formats/manifest.md "Pack state").
constexpr std::string_view kStateName = ".shardset-pack-state.json";
constexpr size_t kBatchSamples = 256;
constexpr uint64_t kBatchBytes = 4ull << 20;

std::string ShardName(uint64_t index, ShardFormat format) {
  return fmt::format("shard-{:06d}{}", index, FormatExtension(format));
}

// Everything that changes the bytes of the output; a resume or an "already
// done" check compares it. jobs and sync do not change the bytes.
std::string RecipeJson(const std::vector<std::string>& sources, const PackOptions& o) {
  json srcs = json::array();
  for (const auto& s : sources) {
    char buf[PATH_MAX];
    srcs.push_back(::realpath(s.c_str(), buf) ? std::string(buf) : s);
  }
  json j = {{"verb", "pack"},
            {"sources", srcs},
            {"format", std::string(FormatName(o.format))},
            {"shard_size", o.shard_size},
            {"shard_samples", o.shard_samples},
            {"label_from_dir", o.label_from_dir},
            {"skip_unreadable", o.skip_unreadable}};
  // Recorded only when set, so recipes of earlier packs still match.
  if (o.zip_deflate_level != 0) j["zip_deflate_level"] = o.zip_deflate_level;
  if (!o.read.tsv_columns.empty()) j["tsv_columns"] = o.read.tsv_columns;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct ReadBatch {
  std::vector<PendingSample> pending;
  std::vector<InputSample> samples;
  std::vector<Status> errors;  // per sample; OK or the first read error
  uint64_t bytes = 0;          // estimated before reading (SizeGuess)
};

void ReadBatchFiles(ReadBatch* b) {
  b->samples.resize(b->pending.size());
  b->errors.resize(b->pending.size());
  for (size_t i = 0; i < b->pending.size(); ++i) {
    PendingSample& p = b->pending[i];
    InputSample& s = b->samples[i];
    s.key = std::move(p.key);
    s.fields.resize(p.fields.size());
    for (size_t j = 0; j < p.fields.size(); ++j) {
      PendingField& pf = p.fields[j];
      InputField& f = s.fields[j];
      f.name = std::move(pf.name);
      f.flags = pf.flags;
      if (pf.inline_data) {
        f.data = std::move(pf.data);
        continue;
      }
      auto data = ReadSourceFile(pf);
      if (!data.ok()) {
        b->errors[i] = data.status();
        break;
      }
      f.data = std::move(*data);
    }
  }
}

class Packer {
 public:
  Packer(std::vector<std::string> sources, std::string out, const PackOptions& o)
      : sources_(std::move(sources)), out_(std::move(out)), o_(o) {
    recipe_ = RecipeJson(sources_, o_);
  }

  Result<PackResult> Run() {
    auto r = RunSteps();
    // A pack that failed before sealing anything leaves no empty folder
    // behind (rmdir fails, as it should, on a folder with sealed shards).
    if (!r.ok() && created_out_) ::rmdir(out_.c_str());
    return r;
  }

 private:
  Result<PackResult> RunSteps() {
    SHARDSET_RETURN_IF_ERROR(Validate());
    SHARDSET_RETURN_IF_ERROR(PrepareOutput());
    if (result_.already_complete) return result_;
    SHARDSET_RETURN_IF_ERROR(Resume());
    SHARDSET_RETURN_IF_ERROR(Stream());
    SHARDSET_RETURN_IF_ERROR(SealShard(consumed_));
    if (manifest_.num_samples == 0) {
      return Status::InvalidArgument(fmt::format(
          "{}: no files to pack (empty folder, or every file was skipped); nothing written",
          fmt::join(sources_, ", ")));
    }
    manifest_.recipe_json = recipe_;
    // Sorted: the walk and the readers find skips in an order that depends
    // on read-ahead timing, and the manifest must not.
    manifest_.skipped = walk_skipped_;
    manifest_.skipped.insert(manifest_.skipped.end(), read_skipped_.begin(), read_skipped_.end());
    std::sort(manifest_.skipped.begin(), manifest_.skipped.end());
    SHARDSET_RETURN_IF_ERROR(manifest_.Save(out_, o_.sync));
    ::unlink(JoinPath(out_, kStateName).c_str());
    result_.shards = manifest_.shards.size();
    result_.samples = manifest_.num_samples;
    result_.bytes_out = manifest_.total_bytes;
    result_.skipped = manifest_.skipped.size();
    return result_;
  }

  Status Validate() {
    if (sources_.empty()) return Status::InvalidArgument("pack needs at least one source");
    if (o_.shard_size == 0) return Status::InvalidArgument("--shard-size must be positive");
    if (o_.jobs < 1) return Status::InvalidArgument("--jobs must be at least 1");
    return Status::OK();
  }

  // Creates `out`, or recognises a finished or interrupted pack in it.
  Status PrepareOutput() {
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
      if (m.ok() && m->recipe_json == json::parse(recipe_).dump()) {
        result_.already_complete = true;
        // Killed between writing the manifest and removing the state file.
        ::unlink(JoinPath(out_, kStateName).c_str());
        result_.samples = m->num_samples;
        result_.shards = m->shards.size();
        result_.bytes_out = m->total_bytes;
        return Status::OK();
      }
      if (!o_.force) {
        return Status::AlreadyExists(fmt::format(
            "{}: already holds a dataset made with other arguments; choose another -o, or pass "
            "--force to replace it",
            out_));
      }
      if (m.ok()) {
        for (const auto& s : m->shards) ::unlink(JoinPath(out_, s.path).c_str());
      }
      ::unlink(JoinPath(out_, kManifestName).c_str());
    }
    SHARDSET_ASSIGN_OR_RETURN(int removed, RemoveStaleTempFiles(out_));
    (void)removed;
    return Status::OK();
  }

  // Keeps the shards an interrupted run sealed; sets skip_ to the number of
  // source samples they hold.
  Status Resume() {
    // nlohmann reports a state file of the wrong shape by throwing; that
    // stays here and becomes an error that says what to do.
    try {
      return ResumeFromState();
    } catch (const std::exception& e) {
      return Status::Corruption(fmt::format(
          "{}: the interrupted pack's state file is damaged ({}); pass --force to start over",
          JoinPath(out_, kStateName), e.what()));
    }
  }

  Status ResumeFromState() {
    const std::string state_path = JoinPath(out_, kStateName);
    if (!PathExists(state_path)) return ClearStrayShards(0);
    SHARDSET_ASSIGN_OR_RETURN(std::string text, ReadFile(state_path, 64ull << 20));
    json state = json::parse(text, nullptr, false);
    if (state.is_discarded() || !state.contains("recipe") ||
        state["recipe"].dump() != json::parse(recipe_).dump()) {
      if (!o_.force) {
        return Status::AlreadyExists(fmt::format(
            "{}: holds an interrupted pack made with other arguments; rerun it with the same "
            "arguments to resume, or pass --force to start over",
            out_));
      }
      return ClearStrayShards(0);
    }
    // A shard sealed after the state was last written is reopened and kept.
    for (uint64_t k = 0;; ++k) {
      const std::string path = JoinPath(out_, ShardName(k, o_.format));
      if (!PathExists(path)) break;
      auto shard = OpenShard(path);
      if (!shard.ok()) break;  // cannot happen for a sealed shard; start over from here
      ManifestShard ms;
      ms.path = ShardName(k, o_.format);
      ms.format = o_.format;
      ms.num_samples = (*shard)->num_samples();
      ms.file_size = (*shard)->file_size();
      bool recorded = false;
      if (k < state["shards"].size()) {
        const json& s = state["shards"][k];
        if (s.value("bytes", uint64_t{0}) == ms.file_size) {
          ms.xxh3 = std::stoull(s.value("xxh3", std::string("0")), nullptr, 16);
          ms.source_bytes = s.value("source_bytes", uint64_t{0});
          recorded = true;
        }
      }
      if (!recorded) {
        SHARDSET_ASSIGN_OR_RETURN(MappedFile f, MappedFile::Open(path));
        ms.xxh3 = Xxh3(f.data());
        SHARDSET_ASSIGN_OR_RETURN(ms.source_bytes, SourceBytes(**shard));
      }
      // Source samples consumed up to this shard's end: more than the
      // samples written when --skip-unreadable dropped some.
      uint64_t consumed = skip_ + ms.num_samples;
      if (recorded) {
        consumed = state["shards"][k].value("consumed", consumed);
      }
      skip_ = consumed;
      consumed_at_seal_.push_back(consumed);
      const std::vector<std::string> sidecars = SidecarPaths(path, o_.format);
      if (std::any_of(sidecars.begin(), sidecars.end(),
                      [](const std::string& p) { return !PathExists(p); })) {
        // Killed between sealing the shard and writing its sidecar index.
        SHARDSET_RETURN_IF_ERROR(WriteShardIndex(path, {}, o_.sync).status());
      }
      result_.bytes_in += ms.source_bytes;
      if (ms.num_samples > 0) {
        SHARDSET_ASSIGN_OR_RETURN(resume_last_key_, (*shard)->Key(ms.num_samples - 1));
      }
      AddToManifest(ms);
    }
    consumed_ = skip_;
    if (!manifest_.shards.empty() && state.contains("read_skipped")) {
      read_skipped_ = state["read_skipped"].get<std::vector<std::string>>();
    }
    result_.resumed_samples = manifest_.num_samples;
    shard_start_bytes_in_ = result_.bytes_in;
    return ClearStrayShards(manifest_.shards.size());
  }

  // Bytes of a shard's fields that came from files (derived ones excluded).
  static Result<uint64_t> SourceBytes(const ShardReader& shard) {
    uint64_t n = 0;
    Sample s;
    for (uint64_t i = 0; i < shard.num_samples(); ++i) {
      SHARDSET_RETURN_IF_ERROR(shard.Read(i, &s));
      for (const Field& f : s.fields) n += (f.flags & kFieldDerived) ? 0 : f.data.size();
    }
    return n;
  }

  Status ClearStrayShards(uint64_t from) {
    for (uint64_t k = from;; ++k) {
      const std::string path = JoinPath(out_, ShardName(k, o_.format));
      if (!PathExists(path)) break;
      ::unlink(path.c_str());
      for (const std::string& sidecar : SidecarPaths(path, o_.format)) ::unlink(sidecar.c_str());
    }
    return Status::OK();
  }

  // Resumed shards record their consumed count here too (see Resume).
  void AddToManifest(const ManifestShard& ms) {
    manifest_.num_samples += ms.num_samples;
    manifest_.total_bytes += ms.file_size;
    manifest_.source_bytes += ms.source_bytes;
    manifest_.shards.push_back(ms);
  }

  Status SaveState() {
    json shards = json::array();
    for (const auto& s : manifest_.shards) {
      shards.push_back({{"path", s.path},
                        {"bytes", s.file_size},
                        {"xxh3", Hex64(s.xxh3)},
                        {"source_bytes", s.source_bytes},
                        {"consumed", consumed_at_seal_[&s - manifest_.shards.data()]}});
    }
    json state = {{"recipe", json::parse(recipe_)},
                  {"shards", shards},
                  {"read_skipped", read_skipped_}};
    return WriteFileAtomic(JoinPath(out_, kStateName),
                           state.dump(-1, ' ', false, json::error_handler_t::replace), o_.sync);
  }

  Status Stream() {
    std::deque<std::future<ReadBatch*>> inflight;
    std::deque<std::unique_ptr<ReadBatch>> owned;
    uint64_t inflight_bytes = 0;
    auto drain_one = [&]() -> Status {
      ReadBatch* b = inflight.front().get();
      inflight.pop_front();
      std::unique_ptr<ReadBatch> batch = std::move(owned.front());
      owned.pop_front();
      inflight_bytes -= b->bytes;
      return WriteBatch(b);
    };
    auto batch = std::make_unique<ReadBatch>();
    auto submit = [&]() -> Status {
      if (batch->pending.empty()) return Status::OK();
      inflight_bytes += batch->bytes;
      ReadBatch* raw = batch.get();
      if (o_.jobs > 1) {
        inflight.push_back(std::async(std::launch::async, [raw] {
          ReadBatchFiles(raw);
          return raw;
        }));
      } else {
        std::promise<ReadBatch*> done;
        ReadBatchFiles(raw);
        done.set_value(raw);
        inflight.push_back(done.get_future());
      }
      owned.push_back(std::move(batch));
      batch = std::make_unique<ReadBatch>();
      while (!inflight.empty() && (inflight.size() > static_cast<size_t>(2 * o_.jobs) ||
                                   inflight_bytes > o_.max_inflight_bytes)) {
        SHARDSET_RETURN_IF_ERROR(drain_one());
      }
      return Status::OK();
    };

    for (const std::string& src : sources_) {
      SHARDSET_ASSIGN_OR_RETURN(auto source, OpenSource(src, o_.read, o_.skip_unreadable, o_.warn, &walk_skipped_));
      PendingSample p;
      for (;;) {
        SHARDSET_ASSIGN_OR_RETURN(bool more, source->Next(&p));
        if (!more) break;
        if (skip_ > 0) {
          // The last sample kept must be among those skipped (the very last
          // skipped one unless --skip-unreadable dropped samples after it).
          resume_key_seen_ = resume_key_seen_ || p.key == resume_last_key_;
          if (--skip_ == 0 && !resume_key_seen_) {
            return Status::InvalidArgument(fmt::format(
                "{}: the sources changed since the interrupted pack (expected key '{}' at the "
                "resume point, found '{}'); pass --force to start over",
                out_, EscapeForDisplay(resume_last_key_), EscapeForDisplay(p.key)));
          }
          continue;
        }
        SHARDSET_RETURN_IF_ERROR(AddLabel(&p));
        batch->bytes += p.size(SizeGuess());
        batch->pending.push_back(std::move(p));
        if (batch->pending.size() >= kBatchSamples || batch->bytes >= kBatchBytes) {
          SHARDSET_RETURN_IF_ERROR(submit());
        }
      }
    }
    if (skip_ > 0) {
      return Status::InvalidArgument(fmt::format(
          "{}: the sources hold fewer samples than the interrupted pack already packed; pass "
          "--force to start over",
          out_));
    }
    SHARDSET_RETURN_IF_ERROR(submit());
    while (!inflight.empty()) SHARDSET_RETURN_IF_ERROR(drain_one());
    return Status::OK();
  }

  // What an unstatted file is assumed to weigh when sizing read-ahead: the
  // mean field size so far (64 KiB before anything is known, which keeps the
  // first batches small when files turn out to be large).
  uint64_t SizeGuess() const {
    return progress_.samples ? std::max<uint64_t>(1, result_.bytes_in / progress_.samples)
                             : 64 << 10;
  }

  Status AddLabel(PendingSample* p) {
    if (!o_.label_from_dir) return Status::OK();
    std::string_view label = ParentDirName(p->key);
    if (label.empty()) {
      return Status::InvalidArgument(fmt::format(
          "{}: sample '{}' is not inside a folder, so --label-from-dir has no label for it; "
          "move it into a class folder or drop --label-from-dir",
          fmt::join(sources_, ", "), EscapeForDisplay(p->key)));
    }
    for (const auto& f : p->fields) {
      if (f.name == "cls") {
        return Status::InvalidArgument(fmt::format(
            "sample '{}' already has a cls field; drop --label-from-dir",
            EscapeForDisplay(p->key)));
      }
    }
    PendingField f;
    f.name = "cls";
    f.inline_data = true;
    f.data = label;
    f.flags = kFieldDerived;
    p->fields.push_back(std::move(f));
    return Status::OK();
  }

  Status WriteBatch(ReadBatch* b) {
    for (size_t i = 0; i < b->samples.size(); ++i) {
      ++consumed_;
      if (!b->errors[i].ok()) {
        if (!o_.skip_unreadable) {
          return b->errors[i].WithPrefix(
              "cannot read a source file (fix it, or pass --skip-unreadable to skip such files "
              "with a warning)");
        }
        std::string line = fmt::format("{}, skipped", b->errors[i].message());
        if (o_.warn) o_.warn(line);
        read_skipped_.push_back(line);
        continue;
      }
      SHARDSET_RETURN_IF_ERROR(WriteSample(b->samples[i]));
    }
    return Status::OK();
  }

  Status WriteSample(const InputSample& s) {
    uint64_t size = 0, source = 0;
    for (const auto& f : s.fields) {
      size += f.data.size();
      if (!(f.flags & kFieldDerived)) source += f.data.size();
    }
    if (writer_ && writer_->num_samples() > 0 &&
        (writer_->bytes_written() + size > o_.shard_size ||
         (o_.shard_samples > 0 && writer_->num_samples() >= o_.shard_samples))) {
      // The sample being written was consumed but belongs to the next shard.
      SHARDSET_RETURN_IF_ERROR(SealShard(consumed_ - 1));
    }
    if (!writer_) {
      const std::string path = JoinPath(out_, ShardName(manifest_.shards.size(), o_.format));
      WriteOptions wo;
      wo.sync = o_.sync;
      wo.zip_deflate_level = o_.zip_deflate_level;
      SHARDSET_ASSIGN_OR_RETURN(writer_, CreateShardWriter(path, o_.format, wo));
    }
    SHARDSET_RETURN_IF_ERROR(writer_->Add(s));
    result_.bytes_in += source;  // after a rollover: it belongs to the new shard
    ++progress_.samples;
    progress_.bytes_in = result_.bytes_in;
    ReportProgress(false);
    return Status::OK();
  }

  // `consumed`: source samples consumed up to the end of this shard.
  Status SealShard(uint64_t consumed) {
    if (!writer_) return Status::OK();
    SHARDSET_ASSIGN_OR_RETURN(ShardInfo info, writer_->Close());
    writer_.reset();
    ManifestShard ms;
    ms.path = BaseName(info.path);
    ms.format = info.format;
    ms.num_samples = info.num_samples;
    ms.file_size = info.file_size;
    ms.xxh3 = info.xxh3;
    ms.source_bytes = result_.bytes_in - shard_start_bytes_in_;
    shard_start_bytes_in_ = result_.bytes_in;
    AddToManifest(ms);
    consumed_at_seal_.push_back(consumed);
    progress_.shards = manifest_.shards.size();
    ReportProgress(true);
    return SaveState();
  }

  void ReportProgress(bool force) {
    if (!o_.progress) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_progress_ < std::chrono::milliseconds(100)) return;
    last_progress_ = now;
    o_.progress(progress_);
  }

  std::vector<std::string> sources_;
  std::string out_;
  PackOptions o_;
  std::string recipe_;
  Manifest manifest_;
  // Files skipped by the walk (found again by a resumed walk) and by readers
  // (kept in the state file: a resume does not read those samples again).
  std::vector<std::string> walk_skipped_, read_skipped_;
  std::unique_ptr<ShardWriter> writer_;
  uint64_t skip_ = 0;
  uint64_t consumed_ = 0;  // source samples handed to the writer (written or dropped)
  std::vector<uint64_t> consumed_at_seal_;  // per shard in manifest_, for the state file
  uint64_t shard_start_bytes_in_ = 0;
  bool created_out_ = false;
  std::string resume_last_key_;
  bool resume_key_seen_ = false;
  PackResult result_;
  PackProgress progress_;
  std::chrono::steady_clock::time_point last_progress_;
};

}  // namespace

Result<PackResult> Pack(const std::vector<std::string>& sources, const std::string& out,
                        const PackOptions& options) {
  Packer p(sources, out, options);
  return p.Run();
}

}  // namespace shardset
