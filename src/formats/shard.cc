// Format dispatch: every shard is recognised by its content, and each format
// contributes one row of kFormats.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>

#include <fmt/format.h>

#include "base/file.h"
#include "formats/folder/folder_shard.h"
#include "formats/native/native_shard.h"
#include "formats/probe.h"
#include "formats/tar/tar_shard.h"
#include "formats/targz/targz_shard.h"
#include "formats/tsv/tsv_shard.h"
#include "formats/zip/zip_shard.h"
#include "shardset/shard.h"

namespace shardset {
namespace {

using OpenFn = Result<std::unique_ptr<ShardReader>> (*)(const std::string&, const ReadOptions&);
using CreateFn = Result<std::unique_ptr<ShardWriter>> (*)(const std::string&,
                                                          const WriteOptions&);
using IndexFn = Result<uint64_t> (*)(const std::string&, const ReadOptions&, bool);
using SidecarsFn = std::vector<std::string> (*)(const std::string&);

struct FormatOps {
  ShardFormat format;
  std::string_view name, extension;
  bool (*looks)(const Probe&);
  OpenFn open;
  CreateFn create;       // nullptr: read only
  IndexFn write_index;   // nullptr: the index is built in
  SidecarsFn sidecars;   // nullptr: no sidecar files
};

bool LooksNative(const Probe& p) { return native::LooksNative(p.head); }
bool LooksTar(const Probe& p) { return tar::LooksTar(p.head); }
Result<uint64_t> TarIndex(const std::string& path, const ReadOptions& options, bool sync) {
  return tar::WriteIndex(path, options, sync);
}
std::vector<std::string> TarSidecars(const std::string& path) { return {tar::SidecarPath(path)}; }

// In detection order: formats with a magic number first; tar's header
// checksum next; tsv, which is only "text with tabs", last.
constexpr std::array<FormatOps, 6> kFormats{{
    {ShardFormat::kNative, "native", ".shard", LooksNative, native::Open, native::Create, nullptr,
     nullptr},
    {ShardFormat::kFolder, "folder", ".fidx", folder::Looks, folder::Open, nullptr, nullptr,
     nullptr},
    {ShardFormat::kZip, "zip", ".zip", zip::Looks, zip::Open, zip::Create, nullptr, nullptr},
    {ShardFormat::kTarGz, "tar.gz", ".tar.gz", targz::Looks, targz::Open, targz::Create,
     targz::WriteIndex, targz::SidecarPaths},
    {ShardFormat::kTar, "tar", ".tar", LooksTar, tar::Open, tar::Create, TarIndex, TarSidecars},
    {ShardFormat::kTsv, "tsv", ".tsv", tsv::Looks, tsv::Open, tsv::Create, tsv::WriteIndex,
     tsv::SidecarPaths},
}};

const FormatOps& Ops(ShardFormat f) {
  for (const FormatOps& ops : kFormats) {
    if (ops.format == f) return ops;
  }
  return kFormats[0];  // unreachable: every enumerator has a row
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string FormatList() {
  std::string out;
  for (const FormatOps& ops : kFormats) {
    if (!out.empty()) out += ", ";
    out += ops.name;
  }
  return out;
}

}  // namespace

Result<std::vector<FieldFile>> ShardReader::FieldFiles(uint64_t) const {
  return Status::NotSupported(fmt::format(
      "{}: a {} shard; its fields live inside the shard file, not in files of their own",
      path(), FormatName(format())));
}

Status ShardReader::Stat(uint64_t ordinal, SampleStat* out) const {
  Sample sample;
  SHARDSET_RETURN_IF_ERROR(Read(ordinal, &sample));
  struct stat st;
  const int64_t mtime = ::stat(path().c_str(), &st) == 0 ? int64_t{st.st_mtim.tv_sec} : 0;
  out->key = std::move(sample.key);
  out->fields.resize(sample.fields.size());
  for (size_t i = 0; i < sample.fields.size(); ++i) {
    const Field& f = sample.fields[i];
    out->fields[i] = FieldStat{std::string(f.name), f.data.size(), f.flags, mtime};
  }
  return Status::OK();
}

const Field* Sample::Find(std::string_view name) const {
  for (const Field& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string_view FormatName(ShardFormat f) { return Ops(f).name; }
std::string_view FormatExtension(ShardFormat f) { return Ops(f).extension; }
bool FormatWritable(ShardFormat f) { return Ops(f).create != nullptr; }

Result<ShardFormat> ParseFormat(std::string_view name) {
  if (name == "tgz") return ShardFormat::kTarGz;
  for (const FormatOps& ops : kFormats) {
    if (ops.name == name) return ops.format;
  }
  return Status::InvalidArgument(
      fmt::format("unknown shard format '{}'; use one of {}", name, FormatList()));
}

Result<Probe> ReadProbe(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) {
      return Status::NotFound(fmt::format("{}: no such file or directory", path));
    }
    return Status::FromErrno(path, e);
  }
  FdCloser closer(fd);
  Probe p;
  p.path = path;
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(path, errno);
  if (S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("{}: is a folder, not a shard", path));
  }
  p.size = static_cast<uint64_t>(st.st_size);
  auto read_at = [&](uint64_t offset, size_t n, std::string* out) -> Status {
    out->resize(n);
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd, out->data() + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Status::FromErrno(path, errno);
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    out->resize(done);
    return Status::OK();
  };
  SHARDSET_RETURN_IF_ERROR(read_at(0, std::min<uint64_t>(p.size, Probe::kHeadBytes), &p.head));
  const uint64_t tail = std::min<uint64_t>(p.size, Probe::kTailBytes);
  SHARDSET_RETURN_IF_ERROR(read_at(p.size - tail, tail, &p.tail));
  return p;
}

Result<ShardFormat> DetectFormat(const std::string& path) {
  SHARDSET_ASSIGN_OR_RETURN(Probe probe, ReadProbe(path));
  for (const FormatOps& ops : kFormats) {
    if (ops.looks(probe)) return ops.format;
  }
  // Names never choose the format, but they tell damage from a stranger: a
  // "*.shard" or "*.tar" that does not start like one was truncated or hit.
  for (const FormatOps& ops : kFormats) {
    if (EndsWith(path, ops.extension)) {
      return Status::Corruption(fmt::format(
          "{}: named like a {} shard but its content is not one ({} bytes); it was truncated "
          "or damaged: restore it from a backup",
          path, ops.name, probe.size));
    }
  }
  return Status::NotSupported(fmt::format(
      "{}: not a shard shardset can read (it recognises {} by their content)", path,
      FormatList()));
}

Result<std::unique_ptr<ShardReader>> OpenShard(const std::string& path,
                                               const ReadOptions& options) {
  SHARDSET_ASSIGN_OR_RETURN(ShardFormat format, DetectFormat(path));
  return Ops(format).open(path, options);
}

Result<std::unique_ptr<ShardReader>> OpenShardAs(const std::string& path, ShardFormat format,
                                                 const ReadOptions& options) {
  auto r = Ops(format).open(path, options);
  if (r.ok() || r.status().IsNotFound() || r.status().IsCorruption() ||
      r.status().code() == Status::Code::kIOError ||
      r.status().code() == Status::Code::kResourceExhausted) {
    return r;
  }
  return Status::Corruption(fmt::format(
      "{} (the manifest says it is a {} shard, so it is damaged or was replaced: restore it from "
      "a backup)",
      r.status().message(), FormatName(format)));
}

Result<std::unique_ptr<ShardWriter>> CreateShardWriter(const std::string& path,
                                                       ShardFormat format,
                                                       const WriteOptions& options) {
  const FormatOps& ops = Ops(format);
  if (ops.create == nullptr) {
    return Status::NotSupported(fmt::format(
        "{}: shardset reads {} but does not write it; pack to one of the writable formats",
        path, ops.name));
  }
  return ops.create(path, options);
}

Result<uint64_t> WriteShardIndex(const std::string& path, const ReadOptions& options, bool sync) {
  SHARDSET_ASSIGN_OR_RETURN(ShardFormat format, DetectFormat(path));
  const FormatOps& ops = Ops(format);
  if (ops.write_index == nullptr) {
    return Status::NotSupported(fmt::format("{}: a {} shard; its index is built in", path,
                                            ops.name));
  }
  return ops.write_index(path, options, sync);
}

std::vector<std::string> SidecarPaths(const std::string& path, ShardFormat format) {
  const FormatOps& ops = Ops(format);
  return ops.sidecars ? ops.sidecars(path) : std::vector<std::string>{};
}

}  // namespace shardset
