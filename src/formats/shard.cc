// Format dispatch: every shard is recognised by its first bytes.
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/file.h"
#include "formats/native/native_shard.h"
#include "formats/tar/tar_shard.h"
#include "shardset/shard.h"

namespace shardset {

const Field* Sample::Find(std::string_view name) const {
  for (const Field& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string_view FormatName(ShardFormat f) {
  switch (f) {
    case ShardFormat::kNative: return "native";
    case ShardFormat::kTar: return "tar";
  }
  return "unknown";
}

std::string_view FormatExtension(ShardFormat f) {
  switch (f) {
    case ShardFormat::kNative: return ".shard";
    case ShardFormat::kTar: return ".tar";
  }
  return "";
}

Result<ShardFormat> ParseFormat(std::string_view name) {
  if (name == "native") return ShardFormat::kNative;
  if (name == "tar") return ShardFormat::kTar;
  return Status::InvalidArgument(
      fmt::format("unknown shard format '{}'; use native or tar", name));
}

Result<ShardFormat> DetectFormat(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) {
      return Status::NotFound(fmt::format("{}: no such file or directory", path));
    }
    return Status::FromErrno(path, e);
  }
  char buf[512];
  ssize_t n = ::pread(fd, buf, sizeof(buf), 0);
  ::close(fd);
  if (n < 0) return Status::FromErrno(path, errno);
  std::string_view prefix(buf, static_cast<size_t>(n));
  if (native::LooksNative(prefix)) return ShardFormat::kNative;
  if (tar::LooksTar(prefix)) return ShardFormat::kTar;
  // Names never choose the format, but they tell damage from a stranger: a
  // "*.shard" or "*.tar" that does not start like one was truncated or hit.
  for (ShardFormat f : {ShardFormat::kNative, ShardFormat::kTar}) {
    const std::string_view ext = FormatExtension(f);
    if (path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) {
      return Status::Corruption(fmt::format(
          "{}: named like a {} shard but does not start like one ({} bytes); it was truncated "
          "or damaged: restore it from a backup",
          path, FormatName(f), n));
    }
  }
  return Status::NotSupported(fmt::format(
      "{}: not a shard shardset can read (it recognises native shards and tar files by their "
      "content)",
      path));
}

Result<std::unique_ptr<ShardReader>> OpenShard(const std::string& path,
                                               const ReadOptions& options) {
  SHARDSET_ASSIGN_OR_RETURN(ShardFormat format, DetectFormat(path));
  return format == ShardFormat::kNative ? native::Open(path, options)
                                        : tar::Open(path, options);
}

Result<std::unique_ptr<ShardReader>> OpenShardAs(const std::string& path, ShardFormat format,
                                                 const ReadOptions& options) {
  auto r = format == ShardFormat::kNative ? native::Open(path, options) : tar::Open(path, options);
  if (r.ok() || r.status().IsNotFound() || r.status().IsCorruption() ||
      r.status().code() == Status::Code::kIOError) {
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
  switch (format) {
    case ShardFormat::kNative: return native::Create(path, options);
    case ShardFormat::kTar: return tar::Create(path, options);
  }
  return Status::InvalidArgument("unknown shard format");
}

}  // namespace shardset
