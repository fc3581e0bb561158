// `shardset dataset create`: adopts existing shards, archives and folders of
// loose files as one dataset, in place.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hash.h"
#include "base/strings.h"
#include "formats/folder/folder_shard.h"
#include "shardset/dataset.h"
#include "shardset/view.h"

namespace shardset {
namespace {

namespace fs = std::filesystem;

// `path` as seen from the folder `dir` (both may be relative to the current
// directory): "../raw/a.tar".
std::string RelativeTo(const std::string& path, const std::string& dir) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(fs::absolute(path), ec);
  const fs::path d = fs::weakly_canonical(fs::absolute(dir), ec);
  const fs::path rel = p.lexically_relative(d);
  return rel.empty() ? p.string() : rel.string();
}

// Removes a partly built dataset folder unless released.
class TempDir {
 public:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

Status AddShard(const std::string& path, const std::string& shown_as,
                const CreateDatasetOptions& o, Manifest* m) {
  SHARDSET_ASSIGN_OR_RETURN(ShardFormat format, DetectFormat(path));
  for (const std::string& sidecar : SidecarPaths(path, format)) {
    if (!PathExists(sidecar)) {
      SHARDSET_RETURN_IF_ERROR(WriteShardIndex(path, o.read, o.sync).status());
      break;
    }
  }
  SHARDSET_ASSIGN_OR_RETURN(auto shard, OpenShardAs(path, format, o.read));
  // A reader that opens but refuses reads (a tar whose sidecar fingerprint
  // fails) is not adopted.
  if (shard->num_samples() > 0) SHARDSET_RETURN_IF_ERROR(shard->Key(0).status());
  SHARDSET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  file.AdviseSequential();
  ManifestShard ms;
  ms.path = shown_as;
  ms.format = format;
  ms.num_samples = shard->num_samples();
  ms.file_size = shard->file_size();
  ms.xxh3 = Xxh3(file.data());
  SHARDSET_ASSIGN_OR_RETURN(ms.directory_xxh3, DirectoryChecksum(path, format));
  m->shards.push_back(ms);
  m->num_samples += ms.num_samples;
  m->total_bytes += ms.file_size;
  return Status::OK();
}

// Removes the hidden folders "<prefix><name>.<pid>" that killed runs of
// CreateDataset(dir) left beside it (the crash harness found them piling
// up); those of running processes are kept.
void RemoveStaleTempDirsOf(const std::string& dir) {
  const std::string prefix = fmt::format("{}{}.", kTempPrefix, BaseName(dir));
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(DirName(dir), ec)) {
    const std::string name = e.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    if (pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)) continue;
    std::filesystem::remove_all(e.path(), ec);
  }
}

}  // namespace

Result<Manifest> CreateDataset(const std::string& dir, const std::vector<std::string>& inputs,
                               const CreateDatasetOptions& o) {
  if (inputs.empty()) return Status::InvalidArgument("give the shards, archives or folders");
  struct stat st;
  if (::lstat(dir.c_str(), &st) == 0) {
    return Status::AlreadyExists(fmt::format(
        "{}: already exists; choose a new dataset name (or remove it)", dir));
  }
  std::string parent = DirName(dir);
  RemoveStaleTempDirsOf(dir);
  const std::string tmp =
      JoinPath(parent, fmt::format("{}{}.{}", kTempPrefix, BaseName(dir), ::getpid()));
  if (::mkdir(tmp.c_str(), 0755) != 0) {
    return Status::FromErrno(fmt::format("{}: cannot create the dataset folder", dir), errno);
  }
  TempDir cleanup(tmp);
  Manifest m;
  size_t folders = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string& in = inputs[i];
    if (o.progress) o.progress(i, inputs.size(), in);
    if (!PathExists(in)) {
      return Status::NotFound(fmt::format("{}: no such file or folder", in));
    }
    if (IsDirectory(in)) {
      if (PathExists(JoinPath(in, kManifestName))) {
        SHARDSET_ASSIGN_OR_RETURN(Manifest other, Manifest::Load(in));
        for (const ManifestShard& s : other.shards) {
          const std::string path =
              s.path[0] == '/' ? s.path : JoinPath(in, s.path);
          ManifestShard copy = s;
          copy.path = RelativeTo(path, dir);
          m.shards.push_back(copy);
          m.num_samples += copy.num_samples;
          m.total_bytes += copy.file_size;
          m.source_bytes += copy.source_bytes;
        }
        continue;
      }
      folder::IndexOptions fo;
      fo.label_from_dir = o.label_from_dir;
      fo.skip_unreadable = o.skip_unreadable;
      fo.warn = o.warn;
      fo.skipped = &m.skipped;
      fo.sync = o.sync;
      const std::string name = fmt::format("folder-{:06d}{}", folders++,
                                           FormatExtension(ShardFormat::kFolder));
      SHARDSET_RETURN_IF_ERROR(folder::WriteIndex(in, JoinPath(tmp, name), fo).status());
      SHARDSET_RETURN_IF_ERROR(AddShard(JoinPath(tmp, name), name, o, &m));
      continue;
    }
    if (IsViewFile(in)) {
      return Status::InvalidArgument(fmt::format(
          "{}: a view (a selection of samples), not a shard; read it directly as a TARGET, or "
          "give the datasets it selects from",
          in));
    }
    SHARDSET_RETURN_IF_ERROR(AddShard(in, RelativeTo(in, dir), o, &m));
  }
  m.recipe_json = o.recipe_json;
  SHARDSET_RETURN_IF_ERROR(m.Save(tmp, o.sync));
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    return Status::FromErrno(fmt::format("{}: cannot rename the finished dataset into place", dir),
                             errno);
  }
  cleanup.Release();
  if (o.sync) SHARDSET_RETURN_IF_ERROR(FsyncDir(parent));
  return m;
}

}  // namespace shardset
