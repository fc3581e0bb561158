// Writer (include/shardset/writer.h): DatasetWriter with a recipe of its
// own and a progress count that is simply the samples written, so a resume
// continues after exactly the samples the sealed shards hold.
#include "shardset/writer.h"

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "dataset/dataset_writer.h"

namespace shardset {

namespace {

using json = nlohmann::json;

// What changes the bytes written, so a resume with other settings is refused
// instead of mixing two kinds of shard in one dataset.
std::string Recipe(const WriterOptions& o) {
  json r = {{"verb", "write"},
            {"format", std::string(FormatName(o.format))},
            {"shard_size", o.shard_size},
            {"shard_samples", o.shard_samples}};
  if (o.format == ShardFormat::kZip) r["zip_deflate_level"] = o.zip_deflate_level;
  if (o.format == ShardFormat::kTarGz) r["gzip_level"] = o.gzip_level;
  return r.dump();
}

// Removes the dataset or interrupted write in `dir` (shards inside it, the
// manifest, the state file); files that are not shardset's stay.
Status Clear(const std::string& dir) {
  if (auto m = Manifest::Load(dir); m.ok()) {
    for (const ManifestShard& s : m->shards) {
      if (s.path.find('/') != std::string::npos) continue;  // adopted: not ours
      RemoveShard(JoinPath(dir, s.path), s.format);
    }
  }
  ::unlink(JoinPath(dir, kManifestName).c_str());
  ::unlink(JoinPath(dir, DatasetWriter::kStateName).c_str());
  return Status::OK();
}

}  // namespace

Writer::Writer(std::string path, std::unique_ptr<DatasetWriter> w)
    : path_(std::move(path)), w_(std::move(w)), resumed_samples_(w_->resumed_samples()) {}

Writer::~Writer() {
  // Not closed: what was sealed stays (an interrupted write, resumable);
  // the open shard's temporary file goes.
}

Result<std::unique_ptr<Writer>> Writer::Open(const std::string& path,
                                             const WriterOptions& options) {
  if (options.resume && options.overwrite) {
    return Status::InvalidArgument(
        fmt::format("{}: resume and overwrite exclude each other; choose one", path));
  }
  const bool holds = PathExists(JoinPath(path, kManifestName)) ||
                     PathExists(JoinPath(path, DatasetWriter::kStateName));
  if (holds && options.overwrite) SHARDSET_RETURN_IF_ERROR(Clear(path));
  if (holds && !options.resume && !options.overwrite) {
    return Status::AlreadyExists(fmt::format(
        "{}: already holds a dataset or an interrupted write; pass resume=True to continue it "
        "or overwrite=True to replace it",
        path));
  }
  DatasetWriterOptions o;
  o.format = options.format;
  o.shard_size = options.shard_size;
  o.shard_samples = options.shard_samples;
  o.write.sync = options.sync;
  o.write.zip_deflate_level = options.zip_deflate_level;
  o.write.gzip_level = options.gzip_level;
  o.recipe_json = Recipe(options);
  o.verb = "write";
  o.append = true;
  auto w = DatasetWriter::Open(path, o);
  if (!w.ok()) {
    if (w.status().code() == Status::Code::kAlreadyExists) {
      return Status::AlreadyExists(fmt::format(
          "{}: holds a dataset written with another format or shard size; open it with the "
          "same ones to resume, or pass overwrite=True to replace it",
          path));
    }
    return w.status();
  }
  return std::unique_ptr<Writer>(new Writer(path, std::move(*w)));
}

uint64_t Writer::samples() const { return w_->samples_written(); }

uint64_t Writer::shards_sealed() const { return w_->shards_sealed(); }

Status Writer::Add(const InputSample& sample) {
  if (closed_) return Status::InvalidArgument(fmt::format("{}: the writer is closed", path_));
  uint64_t bytes = 0;
  for (const InputField& f : sample.fields) bytes += f.data.size();
  return w_->Add(sample, bytes, samples() + 1);
}

Status Writer::Flush() {
  if (closed_) return Status::OK();
  return w_->Flush(samples());
}

Result<Manifest> Writer::Close() {
  if (closed_) return Status::InvalidArgument(fmt::format("{}: the writer is closed", path_));
  closed_ = true;
  return w_->Finish(samples(), {});
}

}  // namespace shardset
