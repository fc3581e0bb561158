#include "formats/targz/targz_sidecar.h"

#include <fmt/format.h>

#include "base/coding.h"
#include "base/hash.h"

namespace shardset::targz {
namespace {

// Offsets in the header (docs/formats/targz-index.md "Header").
constexpr size_t kVersionAt = 8, kFlagsAt = 12, kSizeAt = 16, kEdgeAt = 24, kTarSizeAt = 32,
                 kSpanAt = 40, kCountAt = 48, kTableHashAt = 56;

}  // namespace

std::string SidecarPath(const std::string& gz_path) { return gz_path + ".idx"; }

Result<Fingerprint> FingerprintOf(const GzFile& gz) {
  Fingerprint fp;
  fp.size = gz.size();
  const uint64_t edge = kFingerprintEdgeBytes;
  std::string buf(fp.size <= 2 * edge ? fp.size : 2 * edge, '\0');
  auto read = [&](uint64_t at, size_t n, char* dst) -> Status {
    SHARDSET_ASSIGN_OR_RETURN(size_t got, gz.ReadAt(at, dst, n));
    if (got != n) {
      return Status::IOError(
          fmt::format("{}: the file shrank while being read; is it being rewritten?", gz.path()));
    }
    return Status::OK();
  };
  if (fp.size <= 2 * edge) {
    SHARDSET_RETURN_IF_ERROR(read(0, buf.size(), buf.data()));
  } else {
    SHARDSET_RETURN_IF_ERROR(read(0, edge, buf.data()));
    SHARDSET_RETURN_IF_ERROR(read(fp.size - edge, edge, buf.data() + edge));
  }
  fp.edge_hash = Xxh3(buf);
  return fp;
}

Status WriteSidecar(const std::string& gz_path, const Fingerprint& fp, const ScanResult& scan,
                    const CheckpointTable& table, index::IndexBuilder* builder, bool sync) {
  const uint64_t windows_at = kSidecarHeaderSize + table.size() * kCheckpointEntrySize;
  std::string bytes(kSidecarMagic);
  PutFixed32(&bytes, kSidecarVersion);
  PutFixed32(&bytes, 0);  // flags: none defined in version 1
  PutFixed64(&bytes, fp.size);
  PutFixed64(&bytes, fp.edge_hash);
  PutFixed64(&bytes, scan.tar_size);
  PutFixed64(&bytes, scan.span);
  PutFixed32(&bytes, static_cast<uint32_t>(table.size()));
  PutFixed32(&bytes, 0);  // reserved
  std::string entries;
  for (const Checkpoint& cp : table.points()) {
    PutFixed64(&entries, cp.out);
    PutFixed64(&entries, cp.in);
    PutFixed64(&entries, windows_at + cp.window_offset);
    PutFixed32(&entries, cp.window_stored);
    PutFixed32(&entries, cp.window_size);
    entries.push_back(static_cast<char>(cp.bits));
    entries.push_back(static_cast<char>(cp.codec));
    entries.append(2, '\0');  // reserved
    PutFixed32(&entries, cp.window_hash);
  }
  Xxh3Stream h;
  h.Update(bytes);
  h.Update(entries);
  PutFixed64(&bytes, h.Digest());
  bytes += entries;
  bytes += table.windows();
  bytes += builder->Finish(bytes.size());
  return WriteFileAtomic(SidecarPath(gz_path), bytes, sync);
}

Result<Sidecar> OpenSidecar(const GzFile& gz) {
  const std::string& gz_path = gz.path();
  const std::string path = SidecarPath(gz_path);
  SHARDSET_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const std::string_view d = file.data();
  auto damaged = [&](std::string_view what) {
    return Status::Corruption(fmt::format(
        "{}: the tar.gz index is damaged ({}); delete it or rerun shardset index {}", path, what,
        gz_path));
  };
  if (d.size() < kSidecarHeaderSize || d.substr(0, kSidecarMagic.size()) != kSidecarMagic) {
    return Status::Corruption(fmt::format(
        "{}: not a shardset tar.gz index (bad magic); delete it or rerun shardset index {}", path,
        gz_path));
  }
  const uint32_t version = DecodeFixed32(d.data() + kVersionAt);
  const uint32_t flags = DecodeFixed32(d.data() + kFlagsAt);
  if (version != kSidecarVersion || flags != 0) {
    return Status::NotSupported(fmt::format(
        "{}: tar.gz index version {} with flags {:#x} (this shardset reads version {} without "
        "flags); upgrade shardset or rerun shardset index {}",
        path, version, flags, kSidecarVersion, gz_path));
  }
  const Fingerprint recorded{DecodeFixed64(d.data() + kSizeAt), DecodeFixed64(d.data() + kEdgeAt)};
  SHARDSET_ASSIGN_OR_RETURN(Fingerprint actual, FingerprintOf(gz));
  if (recorded != actual) {
    return Status::Corruption(fmt::format(
        "{}: index is stale or the tar.gz is damaged (the index records a tar.gz of {} bytes{}, "
        "the file has {}); restore the file, or if it was rewritten on purpose rerun shardset "
        "index {}",
        path, recorded.size,
        recorded.size == actual.size ? " with other first or last 64 KiB" : "", actual.size,
        gz_path));
  }
  ScanResult scan{DecodeFixed64(d.data() + kTarSizeAt), DecodeFixed64(d.data() + kSpanAt)};
  // Deflate cannot expand a byte to more than 1032 (RFC 1951 lengths): a
  // larger tar_size is damage, and would let field sizes claim too much.
  if (scan.tar_size / 1032 > gz.size()) {
    return damaged(fmt::format("it records a {} byte tar inside a {} byte file", scan.tar_size,
                               gz.size()));
  }
  const uint64_t count = DecodeFixed32(d.data() + kCountAt);
  const uint64_t windows_at = kSidecarHeaderSize + count * kCheckpointEntrySize;
  if (count == 0 || windows_at > d.size()) {
    return damaged(fmt::format("{} checkpoints do not fit", count));
  }
  Xxh3Stream h;
  h.Update(d.substr(0, kTableHashAt));
  h.Update(d.substr(kSidecarHeaderSize, windows_at - kSidecarHeaderSize));
  if (h.Digest() != DecodeFixed64(d.data() + kTableHashAt)) {
    return damaged("the checkpoint table fails its checksum");
  }
  SHARDSET_ASSIGN_OR_RETURN(index::IndexReader idx,
                            index::IndexReader::Open(d, scan.tar_size, path));
  const uint64_t index_at = idx.index_offset();
  if (index_at < windows_at || index_at > d.size()) {
    return damaged("the index region overlaps the checkpoints");
  }
  std::vector<Checkpoint> points(count);
  for (uint64_t i = 0; i < count; ++i) {
    const char* e = d.data() + kSidecarHeaderSize + i * kCheckpointEntrySize;
    Checkpoint& cp = points[i];
    cp.out = DecodeFixed64(e);
    cp.in = DecodeFixed64(e + 8);
    cp.window_offset = DecodeFixed64(e + 16);
    cp.window_stored = DecodeFixed32(e + 24);
    cp.window_size = DecodeFixed32(e + 28);
    cp.bits = static_cast<uint8_t>(e[32]);
    cp.codec = static_cast<uint8_t>(e[33]);
    cp.window_hash = DecodeFixed32(e + 36);
    const bool ordered =
        i == 0 ? cp.out == 0 : cp.out > points[i - 1].out && cp.in >= points[i - 1].in;
    if (!ordered || cp.out > scan.tar_size || cp.in > gz.size() || cp.bits > 7 ||
        (cp.bits > 0 && cp.in == 0) || cp.window_size > kWindowSize || cp.window_size > cp.out ||
        cp.codec > kWindowZstd || cp.window_offset < windows_at ||
        cp.window_offset > index_at || cp.window_stored > index_at - cp.window_offset) {
      return damaged(fmt::format("checkpoint {} is out of place", i));
    }
  }
  CheckpointTable table(gz_path, path, std::move(points), d.substr(0, index_at));
  return Sidecar{std::move(file), scan, std::move(table), std::move(idx)};
}

}  // namespace shardset::targz
