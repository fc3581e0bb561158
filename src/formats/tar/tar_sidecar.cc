#include "formats/tar/tar_sidecar.h"

#include <fmt/format.h>

#include "base/coding.h"
#include "base/hash.h"
#include "formats/tar/tar_shard.h"

namespace shardset::tar {

Fingerprint FingerprintOf(const MappedFile& tar) {
  const std::string_view data = tar.data();
  Fingerprint fp;
  fp.size = tar.size();
  fp.mtime_ns = tar.mtime_ns();
  if (data.size() <= 2 * kFingerprintEdgeBytes) {
    fp.edge_hash = Xxh3(data);
  } else {
    Xxh3Stream h;
    h.Update(data.substr(0, kFingerprintEdgeBytes));
    h.Update(data.substr(data.size() - kFingerprintEdgeBytes));
    fp.edge_hash = h.Digest();
  }
  return fp;
}

Status WriteSidecar(const std::string& tar_path, const Fingerprint& fp,
                    index::IndexBuilder* builder, bool sync) {
  std::string bytes(kSidecarMagic);
  PutFixed32(&bytes, kSidecarVersion);
  PutFixed32(&bytes, 0);  // flags: none defined in version 1
  PutFixed64(&bytes, fp.size);
  PutFixed64(&bytes, static_cast<uint64_t>(fp.mtime_ns));
  PutFixed64(&bytes, fp.edge_hash);
  assert(bytes.size() == kSidecarIndexOffset);
  bytes += builder->Finish(kSidecarIndexOffset);
  return WriteFileAtomic(SidecarPath(tar_path), bytes, sync);
}

Result<Sidecar> OpenSidecar(const MappedFile& tar) {
  const std::string& tar_path = tar.path();
  const std::string path = SidecarPath(tar_path);
  SHARDSET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const std::string_view d = file.data();
  if (d.size() < kSidecarIndexOffset || d.substr(0, kSidecarMagic.size()) != kSidecarMagic) {
    return Status::Corruption(fmt::format(
        "{}: not a shardset tar index (bad magic); delete it or rerun `shardset index {}`", path,
        tar_path));
  }
  const uint32_t version = DecodeFixed32(d.data() + 8);
  const uint32_t flags = DecodeFixed32(d.data() + 12);
  if (version != kSidecarVersion || flags != 0) {
    return Status::NotSupported(fmt::format(
        "{}: tar index version {} with flags {:#x} (this shardset reads version {} without "
        "flags); upgrade shardset or rerun `shardset index {}`",
        path, version, flags, kSidecarVersion, tar_path));
  }
  const char* f = d.data() + kSidecarHeaderSize;
  const Fingerprint recorded{DecodeFixed64(f), static_cast<int64_t>(DecodeFixed64(f + 8)),
                             DecodeFixed64(f + 16)};
  const Fingerprint actual = FingerprintOf(tar);
  // The mtime is recorded but not compared: copies (cp -r, sync, downloads)
  // change it without changing a byte. Size and the first and last 64 KiB
  // catch appends, truncation and rewrites; per-sample checksums the rest.
  Status fingerprint;
  if (recorded.size != actual.size || recorded.edge_hash != actual.edge_hash) {
    fingerprint = Status::Corruption(fmt::format(
        "{}: index is stale or the tar is damaged (the index records a tar of {} bytes{}, the "
        "tar has {}); restore the tar, or if it was rewritten on purpose rerun shardset index {}",
        path, recorded.size,
        recorded.size == actual.size ? " with other first or last 64 KiB" : "", actual.size,
        tar_path));
    if (recorded.size != actual.size) return fingerprint;
  }
  // At the recorded size the index still places every field inside the tar:
  // Verify can check the samples against it and name the damaged ones.
  Result<index::IndexReader> idx = index::IndexReader::Open(d, tar.size(), path);
  if (!idx.ok()) return fingerprint.ok() ? idx.status() : fingerprint;
  if (idx->index_offset() < kSidecarIndexOffset) {
    return Status::Corruption(fmt::format(
        "{}: index region overlaps the header; delete it or rerun shardset index {}", path,
        tar_path));
  }
  return Sidecar{std::move(file), std::move(*idx), std::move(fingerprint)};
}

}  // namespace shardset::tar
