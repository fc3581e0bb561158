// The sidecar index of a tar.gz, "<file>.idx" (docs/formats/targz-index.md):
// a 64-byte header with the fingerprint of the tar.gz, the checkpoint table
// and windows, then the index region of src/index with field offsets in the
// uncompressed tar.
#ifndef SHARDSET_FORMATS_TARGZ_TARGZ_SIDECAR_H_
#define SHARDSET_FORMATS_TARGZ_TARGZ_SIDECAR_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/file.h"
#include "formats/targz/gz_index.h"
#include "formats/targz/gz_stream.h"
#include "index/index.h"
#include "shardset/status.h"

namespace shardset::targz {

// docs/formats/targz-index.md "Header".
inline constexpr std::string_view kSidecarMagic{"\x89SHGZIX\n", 8};
inline constexpr uint32_t kSidecarVersion = 1;
inline constexpr size_t kSidecarHeaderSize = 64;
inline constexpr size_t kCheckpointEntrySize = 40;
// docs/formats/targz-index.md "Fingerprint".
inline constexpr uint64_t kFingerprintEdgeBytes = 64 * 1024;

std::string SidecarPath(const std::string& gz_path);

// What a sidecar records about the tar.gz it indexes.
struct Fingerprint {
  uint64_t size = 0;
  // XXH3-64 of the first and last kFingerprintEdgeBytes of the file
  // concatenated (of the whole file when it is at most twice that).
  uint64_t edge_hash = 0;
  bool operator==(const Fingerprint&) const = default;
};
Result<Fingerprint> FingerprintOf(const GzFile& gz);

// What one sequential pass over a tar.gz produces.
struct ScanResult {
  uint64_t tar_size = 0;  // of the whole uncompressed stream
  uint64_t span = 0;      // between checkpoints
};

// Writes the sidecar of `gz_path` atomically, replacing any sidecar there.
Status WriteSidecar(const std::string& gz_path, const Fingerprint& fp, const ScanResult& scan,
                    const CheckpointTable& table, index::IndexBuilder* builder, bool sync);

// An open sidecar; `table` and `index` view `file`'s map.
struct Sidecar {
  MappedFile file;
  ScanResult scan;
  CheckpointTable table;
  index::IndexReader index;
};

// Opens the sidecar of `gz` and checks that it describes `gz`. NotFound only
// when there is no sidecar file; Corruption when it is stale (the file's
// size or edge hash differ from the fingerprint) or damaged; NotSupported
// for a version or flags this build does not know.
Result<Sidecar> OpenSidecar(const GzFile& gz);

}  // namespace shardset::targz

#endif  // SHARDSET_FORMATS_TARGZ_TARGZ_SIDECAR_H_
