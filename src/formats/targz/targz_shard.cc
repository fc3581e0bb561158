#include "formats/targz/targz_shard.h"

#include <zlib.h>

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "base/hash.h"
#include "base/strings.h"
#include "formats/indexed_reader.h"
#include "formats/tar/tar_header.h"
#include "formats/tar/tar_scan.h"
#include "formats/tar/tar_shard.h"
#include "formats/targz/targz_reader.h"
#include "formats/targz/targz_sidecar.h"

namespace shardset::targz {
namespace {

// An idle cursor this far before the checkpoint that precedes a read is
// still used: inflating 32 KiB costs about what starting at the checkpoint
// does (a window decoded and loaded, a fresh read of the file).
constexpr uint64_t kReuseSlack = 32 * 1024;
// Sample storage grows by at most this much before the bytes are there.
constexpr uint64_t kStorageStep = 1 << 20;

Status WithCode(Status::Code code, std::string msg) {
  switch (code) {
    case Status::Code::kNotFound: return Status::NotFound(std::move(msg));
    case Status::Code::kInvalidArgument: return Status::InvalidArgument(std::move(msg));
    case Status::Code::kIOError: return Status::IOError(std::move(msg));
    case Status::Code::kNotSupported: return Status::NotSupported(std::move(msg));
    case Status::Code::kAlreadyExists: return Status::AlreadyExists(std::move(msg));
    case Status::Code::kResourceExhausted: return Status::ResourceExhausted(std::move(msg));
    default: return Status::Corruption(std::move(msg));
  }
}

// `s` (whose message starts with the file's path) with the sample named.
Status InSample(const Status& s, const std::string& path, uint64_t ordinal, std::string_view key) {
  std::string_view msg = s.message();
  const std::string prefix = path + ": ";
  if (msg.substr(0, prefix.size()) == prefix) msg.remove_prefix(prefix.size());
  return WithCode(s.code(), fmt::format("{}: sample {} (key '{}'): {}", path, ordinal,
                                        EscapeForDisplay(key), msg));
}

Status IndexMismatch(const std::string& path, uint64_t ordinal, std::string_view key,
                     std::string_view what) {
  return Status::Corruption(fmt::format(
      "{}: sample {} (key '{}'): the index does not match the tar's members ({}); rerun "
      "shardset index {}",
      path, ordinal, EscapeForDisplay(key), what, path));
}

}  // namespace

// ---- GzipTarSource ----

Result<std::string_view> GzipTarSource::Read(uint64_t offset, size_t n) {
  const uint64_t pos = stream_->pos();
  if (offset < pos) {
    return Status::InvalidArgument(fmt::format(
        "internal error: the tar walker went back from byte {} to byte {} of a stream", pos,
        offset));
  }
  // The previous view is left unconsumed: the walker may read from its start
  // again.
  last_read_zero_block_ = false;
  SHARDSET_ASSIGN_OR_RETURN(uint64_t skipped, stream_->SkipUpTo(offset - pos));
  if (skipped < offset - pos) return std::string_view();
  SHARDSET_ASSIGN_OR_RETURN(std::string_view view, stream_->Peek(n));
  last_read_zero_block_ =
      view.size() >= tar::kBlockSize && tar::IsZeroBlock(view.substr(0, tar::kBlockSize));
  return view;
}

Status GzipTarSource::Finish() {
  const bool ended_at_marker = last_read_zero_block_;
  SHARDSET_RETURN_IF_ERROR(stream_->Drain());
  if (const std::optional<uint64_t> at = stream_->trailing_garbage_at();
      at && !ended_at_marker) {
    return Status::Corruption(fmt::format(
        "{}: the bytes at compressed byte {} are not a gzip member, and the tar before them has "
        "no end-of-archive block: a member's header is damaged or the file was cut and "
        "appended to; restore or re-download it",
        stream_->path(), *at));
  }
  return Status::OK();
}

Status ScanTarGz(const GzFile& file, const ReadOptions& options, uint64_t span, ScanOutput* out) {
  GzStream stream(&file, options.max_ratio);
  SHARDSET_RETURN_IF_ERROR(stream.Rewind());
  stream.RecordCheckpoints(span, &out->table);
  GzipTarSource source(&stream);
  SHARDSET_RETURN_IF_ERROR(tar::BuildIndex(&source, file.path(), &out->builder, options));
  // The tar ends at its first zero block; the rest of the stream (end
  // marker, padding, more members) is read for its CRC-32 checks.
  SHARDSET_RETURN_IF_ERROR(source.Finish());
  out->trailing_garbage_at = stream.trailing_garbage_at();
  if (out->table.empty()) {
    return Status::Corruption(
        fmt::format("{}: the gzip stream holds no deflate data", file.path()));
  }
  out->scan = ScanResult{*stream.size(), span};
  return Status::OK();
}

// ---- TarGzReader ----

TarGzReader::TarGzReader(std::unique_ptr<GzFile> file, MappedFile sidecar,
                         std::string index_storage, index::IndexReader index,
                         CheckpointTable table, ScanResult scan, const ReadOptions& options)
    : file_(std::move(file)),
      sidecar_(std::move(sidecar)),
      index_storage_(std::move(index_storage)),
      index_(std::move(index)),
      table_(std::move(table)),
      scan_(scan),
      options_(options),
      max_idle_(std::max<size_t>(4, std::thread::hardware_concurrency())) {}

uint64_t TarGzReader::cursor_seeks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seeks_;
}

Result<std::unique_ptr<TarGzReader::Cursor>> TarGzReader::Acquire(uint64_t offset) const {
  const Checkpoint& cp = table_.Before(offset);
  std::unique_ptr<Cursor> c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The idle cursor closest behind `offset`, if starting from it inflates
    // little more than starting at the checkpoint would.
    size_t best = idle_.size();
    for (size_t i = 0; i < idle_.size(); ++i) {
      const uint64_t p = idle_[i]->stream.pos();
      if (p <= offset && p + kReuseSlack >= cp.out &&
          (best == idle_.size() || p > idle_[best]->stream.pos())) {
        best = i;
      }
    }
    if (best < idle_.size()) {
      c = std::move(idle_[best]);
      idle_.erase(idle_.begin() + static_cast<ptrdiff_t>(best));
      return c;
    }
    ++seeks_;
    // A full pool gives up its least recently used cursor; otherwise a new
    // one is made, so that the idle cursors' positions stay useful.
    if (idle_.size() >= max_idle_) {
      c = std::move(idle_.front());
      idle_.erase(idle_.begin());
    }
  }
  if (!c) c = std::make_unique<Cursor>(file_.get(), options_.max_ratio);
  SHARDSET_RETURN_IF_ERROR(table_.Window(cp, &c->window));
  SHARDSET_RETURN_IF_ERROR(c->stream.Seek(cp, c->window));
  return c;
}

void TarGzReader::Release(std::unique_ptr<Cursor> cursor) const {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(cursor));
  if (idle_.size() > max_idle_) idle_.erase(idle_.begin());
}

Status TarGzReader::ReadFields(uint64_t ordinal, const index::Entry& e, Sample* out) const {
  out->ordinal = ordinal;
  out->key = e.key;
  out->fields.clear();
  out->storage.clear();
  const auto& defs = index_.fields();
  uint64_t total = 0, end = 0;
  for (const index::FieldLoc& f : e.fields) {
    if (f.size > options_.max_field_bytes) {
      return Status::ResourceExhausted(fmt::format(
          "{}: sample {} (key '{}'): field '{}' is {} bytes, over the --max-field-bytes limit "
          "of {}; raise --max-field-bytes to read it",
          path(), ordinal, EscapeForDisplay(e.key), EscapeForDisplay(defs[f.field_id].name),
          f.size, options_.max_field_bytes));
    }
    if (f.offset < end || f.offset > scan_.tar_size || f.size > scan_.tar_size - f.offset) {
      return IndexMismatch(path(), ordinal, e.key, "its fields overlap or pass the tar's end");
    }
    end = f.offset + f.size;
    total += f.size;
  }
  if (!e.fields.empty()) {
    Result<std::unique_ptr<Cursor>> cursor = Acquire(e.fields.front().offset);
    if (!cursor.ok()) return InSample(cursor.status(), path(), ordinal, e.key);
    GzStream& stream = (*cursor)->stream;
    // Storage grows with the bytes inflate produces, not with what the
    // index claims: a damaged index cannot make the reader allocate more
    // than the stream holds.
    out->storage.reserve(std::min<uint64_t>(total, kStorageStep));
    for (const index::FieldLoc& f : e.fields) {
      Status s = stream.Skip(f.offset - stream.pos());
      for (uint64_t left = f.size; s.ok() && left > 0;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kStorageStep));
        const size_t at = out->storage.size();
        out->storage.resize(at + n);
        s = stream.ReadExactly(out->storage.data() + at, n);
        left -= n;
      }
      // A cursor that failed is dropped: its stream keeps the error.
      if (!s.ok()) return InSample(s, path(), ordinal, e.key);
    }
    Release(std::move(*cursor));
  }
  out->fields.reserve(e.fields.size());
  const char* p = out->storage.data();
  for (const index::FieldLoc& f : e.fields) {
    out->fields.push_back(Field{defs[f.field_id].name, std::string_view(p, f.size),
                                defs[f.field_id].flags});
    p += f.size;
  }
  if (options_.verify_checksums && index::SampleChecksum(out->storage) != e.checksum) {
    return SampleCorruption(path(), ordinal, e.key, "checksum mismatch, its bytes are corrupted");
  }
  return Status::OK();
}

Status TarGzReader::Read(uint64_t ordinal, Sample* out) const {
  index::Entry e;
  SHARDSET_RETURN_IF_ERROR(index_.Get(ordinal, &e));
  return ReadFields(ordinal, e, out);
}

Result<std::string> TarGzReader::Key(uint64_t ordinal) const {
  index::Entry e;
  SHARDSET_RETURN_IF_ERROR(index_.Get(ordinal, &e));
  return std::move(e.key);
}

Result<uint64_t> TarGzReader::Find(std::string_view key) const { return index_.Find(key); }

Status TarGzReader::Stat(uint64_t ordinal, SampleStat* out) const {
  const int64_t mtime = file_->mtime();
  return StatFromIndex(index_, ordinal, [mtime](const index::FieldLoc&) { return mtime; }, out);
}

// One sequential pass, as `shardset index` makes: every gzip CRC-32, every
// tar header, and the index and checkpoints it yields compared with ours.
void TarGzReader::VerifyPass(VerifyReport* report) const {
  ScanOutput fresh(path());
  Status s = ScanTarGz(*file_, options_, scan_.span, &fresh);
  if (!s.ok()) {
    report->problems.push_back(s.message());
    return;
  }
  const std::string rerun = fmt::format("rerun shardset index {}", path());
  if (fresh.trailing_garbage_at) {
    // Reads are not affected; reported as gzip -t does ("trailing garbage
    // ignored", exit 2).
    report->problems.push_back(fmt::format(
        "{}: {} bytes after the last gzip member (from compressed byte {}) are neither a member "
        "nor zero padding; they are ignored, as gzip and bsdtar do: remove them with head -c {}",
        path(), file_->size() - *fresh.trailing_garbage_at, *fresh.trailing_garbage_at,
        *fresh.trailing_garbage_at));
  }
  if (fresh.scan.tar_size != scan_.tar_size) {
    report->problems.push_back(fmt::format(
        "{}: the index records an uncompressed tar of {} bytes but the file inflates to {}; {}",
        path(), scan_.tar_size, fresh.scan.tar_size, rerun));
  }
  // Checkpoints: recorded again with the same span, they must be the same.
  const auto& ours = table_.points();
  const auto& theirs = fresh.table.points();
  std::string window;
  for (size_t i = 0; i < std::max(ours.size(), theirs.size()); ++i) {
    if (i >= ours.size() || i >= theirs.size() || ours[i].out != theirs[i].out ||
        ours[i].in != theirs[i].in || ours[i].bits != theirs[i].bits ||
        ours[i].window_size != theirs[i].window_size ||
        ours[i].window_hash != theirs[i].window_hash) {
      report->problems.push_back(fmt::format(
          "{}: checkpoint {} of the index does not match the file ({} checkpoints in the "
          "index, {} in the file); {}",
          path(), i, ours.size(), theirs.size(), rerun));
      break;
    }
    Status w = table_.Window(ours[i], &window);
    if (!w.ok()) report->problems.push_back(w.message());
  }
  // Samples.
  const std::string storage = fresh.builder.Finish(0);
  Result<index::IndexReader> rebuilt =
      index::IndexReader::Open(storage, fresh.scan.tar_size, path());
  if (!rebuilt.ok()) {
    report->problems.push_back(rebuilt.status().message());
    return;
  }
  const uint64_t n = std::min(index_.num_samples(), rebuilt->num_samples());
  // Whole blocks: Get caches one decoded block per thread, which two
  // interleaved readers would evict at every call.
  std::vector<index::Entry> ours_block, theirs_block;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t ob = i / index_.block_samples(), tb = i / rebuilt->block_samples();
    if (i % index_.block_samples() == 0) {
      Status g = index_.GetBlock(static_cast<uint32_t>(ob), &ours_block);
      if (!g.ok()) {
        report->problems.push_back(g.message());
        return;
      }
    }
    if (i % rebuilt->block_samples() == 0 &&
        !rebuilt->GetBlock(static_cast<uint32_t>(tb), &theirs_block).ok()) {
      return;  // freshly built: cannot fail
    }
    const uint64_t oi = i - ob * index_.block_samples(), ti = i - tb * rebuilt->block_samples();
    if (oi >= ours_block.size() || ti >= theirs_block.size()) return;
    const index::Entry& a = ours_block[oi];
    const index::Entry& b = theirs_block[ti];
    ++report->samples_checked;
    bool same = a.key == b.key && a.fields.size() == b.fields.size();
    for (size_t j = 0; same && j < a.fields.size(); ++j) {
      same = index_.fields()[a.fields[j].field_id].name ==
                 rebuilt->fields()[b.fields[j].field_id].name &&
             a.fields[j].offset == b.fields[j].offset && a.fields[j].size == b.fields[j].size;
    }
    if (!same) {
      report->problems.push_back(IndexMismatch(
          path(), i, b.key, fmt::format("the index has key '{}' with {} fields at other offsets",
                                        EscapeForDisplay(a.key), a.fields.size())).message());
      return;  // every later sample would differ too
    }
    for (const index::FieldLoc& f : a.fields) report->bytes_checked += f.size;
    if (a.checksum != b.checksum) {
      report->problems.push_back(
          SampleCorruption(path(), i, a.key,
                           "its bytes do not match the checksum in the index (the gzip data "
                           "itself passes its CRC-32: the index or the file was changed)")
              .message());
    }
  }
  if (index_.num_samples() != rebuilt->num_samples()) {
    report->problems.push_back(fmt::format(
        "{}: the index lists {} samples but the tar's members form {}; {}", path(),
        index_.num_samples(), rebuilt->num_samples(), rerun));
  }
}

Status TarGzReader::Verify(VerifyReport* report) const {
  VerifyPass(report);
  Status keys = index_.VerifyKeyTable();
  if (!keys.ok()) report->problems.push_back(keys.message());
  return Status::OK();
}

// ---- Entry points ----

bool Looks(const Probe& probe) {
  const std::string_view h = probe.head;
  if (h.size() < 3 || static_cast<unsigned char>(h[0]) != 0x1f ||
      static_cast<unsigned char>(h[1]) != 0x8b || h[2] != 8) {
    return false;
  }
  // The first tar header block, inflated from the head alone.
  z_stream s{};
  if (inflateInit2(&s, 31) != Z_OK) return false;
  char block[512];
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(h.data()));
  s.avail_in = static_cast<uInt>(h.size());
  s.next_out = reinterpret_cast<Bytef*>(block);
  s.avail_out = sizeof(block);
  while (s.avail_out > 0) {
    const int ret = inflate(&s, Z_NO_FLUSH);
    if (ret == Z_STREAM_END && s.avail_in >= 2 && s.next_in[0] == 0x1f && s.next_in[1] == 0x8b) {
      inflateReset(&s);  // a member shorter than a block, then the next
      continue;
    }
    if (ret != Z_OK) break;
  }
  const bool whole = s.avail_out == 0;
  inflateEnd(&s);
  return whole && tar::LooksTar(std::string_view(block, sizeof(block)));
}

Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions& options) {
  SHARDSET_ASSIGN_OR_RETURN(std::unique_ptr<GzFile> file, GzFile::Open(path));
  Result<Sidecar> sidecar = OpenSidecar(*file);
  if (sidecar.ok()) {
    return std::unique_ptr<ShardReader>(new TarGzReader(
        std::move(file), std::move(sidecar->file), std::string(), std::move(sidecar->index),
        std::move(sidecar->table), sidecar->scan, options));
  }
  if (!sidecar.status().IsNotFound()) return sidecar.status();
  // No sidecar: one pass now (docs/formats/targz-index.md "Without a sidecar").
  ScanOutput scan(path);
  SHARDSET_RETURN_IF_ERROR(ScanTarGz(*file, options, kDefaultSpan, &scan));
  std::string storage = scan.builder.Finish(0);
  // `storage` moves into the reader; its heap buffer, which the IndexReader
  // views, moves with it.
  SHARDSET_ASSIGN_OR_RETURN(index::IndexReader idx,
                            index::IndexReader::Open(storage, scan.scan.tar_size, path));
  return std::unique_ptr<ShardReader>(new TarGzReader(std::move(file), MappedFile(),
                                                      std::move(storage), std::move(idx),
                                                      std::move(scan.table), scan.scan, options));
}

Result<uint64_t> WriteIndex(const std::string& path, const ReadOptions& options, bool sync) {
  SHARDSET_ASSIGN_OR_RETURN(std::unique_ptr<GzFile> file, GzFile::Open(path));
  SHARDSET_ASSIGN_OR_RETURN(Fingerprint fp, FingerprintOf(*file));
  ScanOutput scan(path);
  SHARDSET_RETURN_IF_ERROR(ScanTarGz(*file, options, kDefaultSpan, &scan));
  const uint64_t n = scan.builder.num_samples();
  SHARDSET_RETURN_IF_ERROR(WriteSidecar(path, fp, scan.scan, scan.table, &scan.builder, sync));
  return n;
}

std::vector<std::string> SidecarPaths(const std::string& path) { return {SidecarPath(path)}; }

Status ForEachEntry(const std::string& path, const ReadOptions& options,
                    const EntryVisitor& visit) {
  SHARDSET_ASSIGN_OR_RETURN(std::unique_ptr<GzFile> file, GzFile::Open(path));
  GzStream stream(file.get(), options.max_ratio);
  SHARDSET_RETURN_IF_ERROR(stream.Rewind());
  GzipTarSource source(&stream);
  SHARDSET_RETURN_IF_ERROR(tar::ForEachEntry(&source, path, options, visit));
  return source.Finish();
}

}  // namespace shardset::targz
