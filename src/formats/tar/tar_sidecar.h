// The sidecar index "<tar>.idx" (docs/formats/tar-index.md): a 16-byte
// header, a fingerprint of the tar it describes, then the index region and
// footer of src/index with field offsets into the tar.
#ifndef SHARDSET_FORMATS_TAR_TAR_SIDECAR_H_
#define SHARDSET_FORMATS_TAR_TAR_SIDECAR_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/file.h"
#include "index/index.h"
#include "shardset/status.h"

namespace shardset::tar {

// docs/formats/tar-index.md "Header".
inline constexpr std::string_view kSidecarMagic{"\x89SHSIDX\n", 8};
inline constexpr uint32_t kSidecarVersion = 1;
inline constexpr size_t kSidecarHeaderSize = 16;
// docs/formats/tar-index.md "Fingerprint".
inline constexpr size_t kFingerprintSize = 24;
inline constexpr uint64_t kFingerprintEdgeBytes = 64 * 1024;
// Where the index region of a sidecar starts.
inline constexpr uint64_t kSidecarIndexOffset = kSidecarHeaderSize + kFingerprintSize;

// What a sidecar records about the tar it indexes.
struct Fingerprint {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  // XXH3-64 of the first kFingerprintEdgeBytes and the last
  // kFingerprintEdgeBytes of the tar concatenated (the whole tar when it is at
  // most twice that).
  uint64_t edge_hash = 0;
  bool operator==(const Fingerprint&) const = default;
};
Fingerprint FingerprintOf(const MappedFile& tar);

// Writes the sidecar of the tar at `tar_path` atomically, replacing any
// sidecar already there: header, `fp`, then builder->Finish().
Status WriteSidecar(const std::string& tar_path, const Fingerprint& fp,
                    index::IndexBuilder* builder, bool sync);

// An open sidecar; `index` views `file`'s map. `fingerprint` is the
// Corruption of a tar whose size matches the sidecar's record but whose
// first or last 64 KiB do not (damaged there, or replaced by a tar of the
// same size): readers refuse it, Verify still checks its samples against the
// index to name the damaged ones.
struct Sidecar {
  MappedFile file;
  index::IndexReader index;
  Status fingerprint;
};

// Opens the sidecar of `tar` and checks that it describes `tar` (an edge
// hash mismatch at the recorded size is returned in Sidecar::fingerprint,
// not as an error, when the index itself opens). Errors:
// NotFound only when there is no sidecar file; InvalidArgument when it is
// stale (the tar's size or mtime differ from the fingerprint); Corruption when
// size and mtime match but the edge hash does not (the tar was damaged or
// replaced in place) or the sidecar itself is damaged; NotSupported for a
// version or flags this build does not know.
Result<Sidecar> OpenSidecar(const MappedFile& tar);

}  // namespace shardset::tar

#endif  // SHARDSET_FORMATS_TAR_TAR_SIDECAR_H_
