#include "shardset/pack.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hash.h"
#include "base/strings.h"
#include "dataset/dataset_writer.h"
#include "dataset/source.h"
#include "formats/sample_key.h"
#include "remote/client.h"
#include "shardset/dataset.h"

namespace shardset {
namespace {

using json = nlohmann::json;

constexpr size_t kBatchSamples = 256;
constexpr uint64_t kBatchBytes = 4ull << 20;

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
  if (o.format == ShardFormat::kTarGz) j["gzip_level"] = o.gzip_level;
  if (!o.read.tsv_columns.empty()) j["tsv_columns"] = o.read.tsv_columns;
  if (o.parts > 1) {
    j["part"] = o.part;
    j["parts"] = o.parts;
  }
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
    if (o_.parts > 1) {
      part_root_ = out_;
      out_ = JoinPath(out_, PartFolderName(o_.part, o_.parts));
    }
  }

  Result<PackResult> Run() {
    auto r = RunSteps();
    // A pack that failed before sealing anything leaves no empty folder.
    if (!r.ok() && writer_) writer_->Abandon();
    return r;
  }

 private:
  Result<PackResult> RunSteps() {
    SHARDSET_RETURN_IF_ERROR(Validate());
    if (o_.parts > 1) {
      if (::mkdir(part_root_.c_str(), 0755) != 0 && errno != EEXIST) {
        return Status::FromErrno(fmt::format("{}: cannot create the output folder", part_root_),
                                 errno);
      }
      SHARDSET_RETURN_IF_ERROR(FindPartRange());
    }
    DatasetWriterOptions wo;
    wo.format = o_.format;
    wo.shard_size = o_.shard_size;
    wo.shard_samples = o_.shard_samples;
    wo.write.sync = o_.sync;
    wo.write.zip_deflate_level = o_.zip_deflate_level;
    wo.write.gzip_level = o_.gzip_level;
    wo.recipe_json = RecipeJson(sources_, o_);
    wo.force = o_.force;
    SHARDSET_ASSIGN_OR_RETURN(writer_, DatasetWriter::Open(out_, wo));
    if (writer_->already_complete()) {
      result_.already_complete = true;
      return Summarise(writer_->manifest());
    }
    skip_ = consumed_ = writer_->resumed_progress();
    result_.resumed_samples = writer_->resumed_samples();
    if (!writer_->resumed_extra().empty()) {
      json state = json::parse(writer_->resumed_extra(), nullptr, false);
      if (state.is_object() && state.contains("read_skipped")) {
        read_skipped_ = state["read_skipped"].get<std::vector<std::string>>();
      }
    }
    SHARDSET_RETURN_IF_ERROR(Stream());
    if (writer_->samples_written() == 0) {
      return Status::InvalidArgument(fmt::format(
          "{}: no files to pack (empty folder, or every file was skipped); nothing written",
          fmt::join(sources_, ", ")));
    }
    // Sorted: the walk and the readers find skips in an order that depends
    // on read-ahead timing, and the manifest must not.
    std::vector<std::string> skipped = walk_skipped_;
    skipped.insert(skipped.end(), read_skipped_.begin(), read_skipped_.end());
    std::sort(skipped.begin(), skipped.end());
    SHARDSET_ASSIGN_OR_RETURN(Manifest m, writer_->Finish(consumed_, std::move(skipped)));
    return Summarise(m);
  }

  Result<PackResult> Summarise(const Manifest& m) {
    result_.shards = m.shards.size();
    result_.samples = m.num_samples;
    result_.bytes_out = m.total_bytes;
    result_.bytes_in = m.source_bytes;
    result_.skipped = m.skipped.size();
    return result_;
  }

  Status Validate() {
    if (sources_.empty()) return Status::InvalidArgument("pack needs at least one source");
    if (o_.shard_size == 0) return Status::InvalidArgument("--shard-size must be positive");
    if (o_.jobs < 1) return Status::InvalidArgument("--jobs must be at least 1");
    if (o_.parts == 0 || o_.part >= o_.parts) {
      return Status::InvalidArgument(fmt::format(
          "--part {}/{}: I must be below N (parts are numbered 0..N-1)", o_.part, o_.parts));
    }
    return Status::OK();
  }

  // This part's sample positions: every part walks the sources (names only,
  // no bytes read) to count them, so the N parts agree without talking.
  Status FindPartRange() {
    uint64_t total = 0;
    std::vector<std::string> ignored;
    for (const std::string& src : sources_) {
      SHARDSET_ASSIGN_OR_RETURN(auto source,
                                OpenSource(src, o_.read, o_.skip_unreadable, {}, &ignored));
      PendingSample p;
      for (;;) {
        SHARDSET_ASSIGN_OR_RETURN(bool more, source->Next(&p));
        if (!more) break;
        ++total;
      }
    }
    // 128-bit products: T*I overflows 64 bits only past 2^32 parts.
    begin_ = static_cast<uint64_t>((unsigned __int128)total * o_.part / o_.parts);
    end_ = static_cast<uint64_t>((unsigned __int128)total * (o_.part + 1) / o_.parts);
    if (begin_ == end_) {
      return Status::InvalidArgument(fmt::format(
          "--part {}/{}: the sources hold {} samples, too few for {} parts; use fewer parts",
          o_.part, o_.parts, total, o_.parts));
    }
    return Status::OK();
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

    const std::string& resume_last_key = writer_->resumed_last_key();
    bool resume_key_seen = false;
    uint64_t position = 0;  // of the sample in the whole job (pack --part)
    for (const std::string& src : sources_) {
      if (position >= end_) break;
      SHARDSET_ASSIGN_OR_RETURN(auto source, OpenSource(src, o_.read, o_.skip_unreadable, o_.warn, &walk_skipped_));
      PendingSample p;
      for (;;) {
        SHARDSET_ASSIGN_OR_RETURN(bool more, source->Next(&p));
        if (!more) break;
        const uint64_t at = position++;
        if (at < begin_) continue;
        if (at >= end_) break;
        if (skip_ > 0) {
          // The last sample kept must be among those skipped (the very last
          // skipped one unless --skip-unreadable dropped samples after it).
          resume_key_seen = resume_key_seen || p.key == resume_last_key;
          if (--skip_ == 0 && !resume_key_seen) {
            return Status::InvalidArgument(fmt::format(
                "{}: the sources changed since the interrupted pack (expected key '{}' at the "
                "resume point, found '{}'); pass --force to start over",
                out_, EscapeForDisplay(resume_last_key), EscapeForDisplay(p.key)));
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
    return progress_.samples ? std::max<uint64_t>(1, progress_.bytes_in / progress_.samples)
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
        writer_->SetExtraState(json{{"read_skipped", read_skipped_}}.dump(
            -1, ' ', false, json::error_handler_t::replace));
        continue;
      }
      SHARDSET_RETURN_IF_ERROR(WriteSample(b->samples[i]));
    }
    return Status::OK();
  }

  Status WriteSample(const InputSample& s) {
    uint64_t source = 0;
    for (const auto& f : s.fields) {
      if (!(f.flags & kFieldDerived)) source += f.data.size();
    }
    const uint64_t shards_before = writer_->shards_sealed();
    SHARDSET_RETURN_IF_ERROR(writer_->Add(s, source, consumed_));
    ++progress_.samples;
    progress_.bytes_in += source;
    progress_.shards = writer_->shards_sealed();
    ReportProgress(progress_.shards != shards_before);
    return Status::OK();
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
  std::string part_root_;  // pack --part: OUT, with out_ its part folder
  uint64_t begin_ = 0, end_ = UINT64_MAX;  // the positions this part packs
  PackOptions o_;
  std::unique_ptr<DatasetWriter> writer_;
  // Files skipped by the walk (found again by a resumed walk) and by readers
  // (kept in the state file: a resume does not read those samples again).
  std::vector<std::string> walk_skipped_, read_skipped_;
  uint64_t skip_ = 0;
  uint64_t consumed_ = 0;  // source samples handed to the writer (written or dropped)
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

std::string PartFolderName(uint64_t part, uint64_t parts) {
  return fmt::format("part-{}-of-{}", part, parts);
}

Result<Manifest> MergeParts(const std::string& out, bool sync, const RemoteOptions& remote) {
  // OUT is a folder or an s3:// folder (parts packed with -o s3://...): the
  // few operations the merge needs, on either.
  const bool on_s3 = IsRemote(out);
  std::unique_ptr<remote::Client> client;
  std::vector<std::string> entries;  // the part folders' names
  std::set<std::string> finished;    // those holding a manifest
  if (on_s3) {
    client = std::make_unique<remote::Client>(remote);
    SHARDSET_ASSIGN_OR_RETURN(auto listed, client->List(out));
    for (const auto& o : listed) {
      const size_t slash = o.name.find('/');
      if (slash == std::string::npos) continue;
      const std::string folder = o.name.substr(0, slash);
      if (entries.empty() || entries.back() != folder) entries.push_back(folder);
      if (o.name.substr(slash + 1) == kManifestName) finished.insert(folder);
    }
  } else {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(out, ec)) {
      if (!e.is_directory()) continue;
      const std::string name = e.path().filename().string();
      entries.push_back(name);
      if (PathExists(JoinPath(e.path().string(), kManifestName))) finished.insert(name);
    }
    if (ec) return Status::FromErrno(out, ec.value());
  }
  auto join = [&](const std::string& a, std::string_view b) {
    return on_s3 ? remote::JoinUrl(a, b) : JoinPath(a, std::string(b));
  };
  auto read_manifest = [&](const std::string& dir) -> Result<std::string> {
    if (on_s3) return client->Get(join(dir, kManifestName), kMaxManifestBytes);
    return ReadFile(JoinPath(dir, kManifestName), kMaxManifestBytes);
  };

  // N from the folders' names; every one of 0..N-1 must be there.
  uint64_t parts = 0;
  std::vector<std::string> names;
  for (const std::string& name : entries) {
    unsigned long long i = 0, n = 0;
    char tail = 0;
    if (std::sscanf(name.c_str(), "part-%llu-of-%llu%c", &i, &n, &tail) != 2 ||
        name != PartFolderName(i, n)) {
      continue;
    }
    if (parts != 0 && n != parts) {
      return Status::InvalidArgument(fmt::format(
          "{}: holds parts of {} and of {} parts; keep the folders of one pack job only", out,
          parts, n));
    }
    parts = n;
    names.push_back(name);
  }
  if (parts == 0) {
    return Status::NotFound(fmt::format(
        "{}: no part-I-of-N folders; run `shardset pack ... --part I/N -o {}` for each part first",
        out, out));
  }
  Manifest m;
  std::set<std::string> skipped;
  json first_recipe;
  for (uint64_t i = 0; i < parts; ++i) {
    const std::string name = PartFolderName(i, parts);
    const std::string dir = join(out, name);
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return Status::NotFound(fmt::format(
          "{}: missing; run `shardset pack ... --part {}/{} -o {}`", dir, i, parts, out));
    }
    if (!finished.count(name)) {
      return Status::InvalidArgument(fmt::format(
          "{}: not finished (no {}); rerun its `shardset pack ... --part {}/{}` to finish it",
          dir, kManifestName, i, parts));
    }
    SHARDSET_ASSIGN_OR_RETURN(std::string part_text, read_manifest(dir));
    SHARDSET_ASSIGN_OR_RETURN(Manifest part,
                              Manifest::FromJson(part_text, join(dir, kManifestName)));
    json recipe = json::parse(part.recipe_json, nullptr, false);
    if (!recipe.is_object() || recipe.value("verb", "") != "pack" ||
        recipe.value("part", uint64_t{0}) != i || recipe.value("parts", uint64_t{0}) != parts) {
      return Status::InvalidArgument(fmt::format(
          "{}: was not written by `shardset pack --part {}/{}`; remove it or re-pack it", dir, i,
          parts));
    }
    recipe.erase("part");
    if (i == 0) {
      first_recipe = recipe;
    } else if (recipe != first_recipe) {
      return Status::InvalidArgument(fmt::format(
          "{}: packed with other sources or options than {}; every part must come from the "
          "same pack command but for --part",
          dir, join(out, PartFolderName(0, parts))));
    }
    for (const ManifestShard& s : part.shards) {
      ManifestShard copy = s;
      if (s.path.empty() || s.path[0] != '/') copy.path = JoinPath(name, s.path);
      m.shards.push_back(std::move(copy));
    }
    m.num_samples += part.num_samples;
    m.total_bytes += part.total_bytes;
    m.source_bytes += part.source_bytes;
    skipped.insert(part.skipped.begin(), part.skipped.end());
  }
  first_recipe.erase("parts");
  m.skipped.assign(skipped.begin(), skipped.end());
  m.recipe_json = json{{"verb", "dataset merge"}, {"parts", parts}, {"pack", first_recipe}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
  auto existing = read_manifest(out);
  if (!existing.ok() && !existing.status().IsNotFound()) return existing.status();
  if (existing.ok()) {
    const std::string& text = *existing;
    if (text == m.ToJson()) return m;
    return Status::AlreadyExists(fmt::format(
        "{}: already a dataset other than the merge of its parts; remove its {} or merge "
        "elsewhere",
        out, kManifestName));
  }
  // On s3:// the manifest goes up last, in one PUT: readers see the whole
  // dataset or none.
  SHARDSET_RETURN_IF_ERROR(on_s3 ? client->Put(join(out, kManifestName), m.ToJson())
                                 : m.Save(out, sync));
  return m;
}

}  // namespace shardset
