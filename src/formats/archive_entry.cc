#include "formats/archive_entry.h"

#include <fmt/format.h>

#include "base/file.h"
#include "formats/tar/tar_scan.h"
#include "formats/targz/targz_shard.h"
#include "formats/zip/zip_shard.h"

namespace shardset {

std::string_view EntryTypeName(ArchiveEntry::Type t) {
  switch (t) {
    case ArchiveEntry::Type::kFile: return "file";
    case ArchiveEntry::Type::kDirectory: return "dir";
    case ArchiveEntry::Type::kSymlink: return "symlink";
    case ArchiveEntry::Type::kHardlink: return "hardlink";
    case ArchiveEntry::Type::kCharDevice: return "char";
    case ArchiveEntry::Type::kBlockDevice: return "block";
    case ArchiveEntry::Type::kFifo: return "fifo";
    case ArchiveEntry::Type::kOther: return "other";
  }
  return "other";
}

Status ForEachEntry(const std::string& path, const ReadOptions& options,
                    const EntryVisitor& visit) {
  SHARDSET_ASSIGN_OR_RETURN(ShardFormat format, DetectFormat(path));
  switch (format) {
    case ShardFormat::kTar: {
      SHARDSET_ASSIGN_OR_RETURN(MappedFile tar, MappedFile::Open(path));
      tar.AdviseSequential();
      tar::MemorySource source(tar.data());
      return tar::ForEachEntry(&source, path, options, visit);
    }
    case ShardFormat::kZip: return zip::ForEachEntry(path, options, visit);
    case ShardFormat::kTarGz: return targz::ForEachEntry(path, options, visit);
    default:
      return Status::NotSupported(fmt::format(
          "{}: a {} shard is not an archive of entries; list its samples with shardset ls",
          path, FormatName(format)));
  }
}

}  // namespace shardset
