// Folder shards: a folder of loose files indexed in place, never copied
// (docs/formats/folder-index.md). The shard file is a folder index that
// records the folder's absolute path and, per sample, its key, its fields'
// names and sizes and a checksum of their bytes; the bytes stay in the files
// (root/key.field, the WebDataset naming pack also uses).
//
// Readers are immutable after Open and thread-safe. Read opens each field's
// file relative to the root, checks its size and the sample checksum, and
// returns the bytes in Sample::storage: a file changed or deleted since the
// index was made is NotFound/Corruption naming the file, never other bytes.
#ifndef SHARDSET_FORMATS_FOLDER_FOLDER_SHARD_H_
#define SHARDSET_FORMATS_FOLDER_FOLDER_SHARD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/probe.h"
#include "shardset/shard.h"

namespace shardset::folder {

// docs/formats/folder-index.md "Header".
inline constexpr std::string_view kIndexMagic{"\x89SHFIDX\n", 8};
inline constexpr uint32_t kIndexVersion = 1;
// Header flag: every sample ends with a derived "cls" field, its parent
// folder's name, which the index does not store.
inline constexpr uint32_t kFlagLabelFromDir = 1;
// Bytes before the root path, and the header checksum after it.
inline constexpr size_t kFixedHeaderSize = 28;
inline constexpr size_t kHeaderChecksumSize = 4;
// The longest root path an index may record (Linux's PATH_MAX).
inline constexpr uint32_t kMaxRootBytes = 4096;

struct IndexOptions {
  // Add a derived "cls" field holding each sample's parent folder name, as
  // `pack --label-from-dir` does (samples outside a folder are an error).
  bool label_from_dir = false;
  // Unreadable folders/files are skipped with a warning instead of failing.
  bool skip_unreadable = false;
  // Called with one line per skipped file (broken symlink, special file, ...).
  std::function<void(const std::string&)> warn;
  std::vector<std::string>* skipped = nullptr;
  // Called after each sample indexed with the samples and file bytes so far
  // (indexing reads every byte once, so a large folder takes minutes).
  std::function<void(uint64_t samples, uint64_t bytes)> progress;
  bool sync = true;
};

// Walks `root` exactly as pack walks a source folder (keys in bytewise order,
// symlinks followed), reads every file once to checksum it, and writes its
// folder index to `index_path` atomically. Returns the number of samples
// indexed. InvalidArgument when `root` is not a folder, holds a dataset
// (manifest.json), or contains `index_path`'s folder (a later run would index
// the index); NotFound when `root` does not exist.
Result<uint64_t> WriteIndex(const std::string& root, const std::string& index_path,
                            const IndexOptions& options);

// True when the probe is a folder index (by its magic number).
bool Looks(const Probe& probe);

// Checks `bytes` as a folder index without touching the folder it names:
// header, index region, and that every sample's files are plain relative
// paths. Returns the first problem (Corruption or NotSupported); `name` is
// used in messages. For fuzzing, and for tools that inspect an index alone.
Status CheckIndex(std::string_view bytes, const std::string& name);

// Opens a folder index; the folder it names must exist (else NotFound saying
// it was moved or deleted).
Result<std::unique_ptr<ShardReader>> Open(const std::string& index_path,
                                          const ReadOptions& options);

}  // namespace shardset::folder

#endif  // SHARDSET_FORMATS_FOLDER_FOLDER_SHARD_H_
