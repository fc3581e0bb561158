// The tar.gz ShardWriter (docs/formats/targz-index.md "Writing"): the tar
// stream of tar::TarStreamWriter, deflated in gzip mode, with a deflate block
// ended at every kDefaultSpan bytes of tar so that the writer knows the
// checkpoints a scan would record there and writes the sidecar without
// inflating the file again.
#include <zlib.h>

#include <algorithm>
#include <cassert>
#include <climits>

#include <fmt/format.h>

#include "base/file.h"
#include "formats/indexed_reader.h"
#include "formats/shard_file.h"
#include "formats/tar/tar_writer.h"
#include "formats/targz/gz_index.h"
#include "formats/targz/gz_stream.h"
#include "formats/targz/targz_reader.h"
#include "formats/targz/targz_shard.h"
#include "formats/targz/targz_sidecar.h"

namespace shardset::targz {
namespace {

// deflateInit2 windowBits for a gzip wrapper (15 + 16) and gzip's memLevel:
// the stream `gzip -6` would make, but for the header's mtime and name.
constexpr int kGzipWindowBits = 15 + 16;
constexpr int kMemLevel = 8;
// Deflate's output buffer, handed to the file in pieces of this size.
constexpr size_t kOutChunk = 256 * 1024;

class TarGzWriter : public ShardWriter {
 public:
  TarGzWriter(std::unique_ptr<AtomicFile> file, const WriteOptions& options)
      : file_(std::move(file)),
        options_(options),
        out_(kOutChunk, '\0'),
        table_(file_.final_path()),
        tar_(file_.final_path(), [this](std::string_view b) { return Deflate(b); }) {}

  ~TarGzWriter() override {
    if (zinit_) deflateEnd(&z_);
  }

  // Starts the gzip stream: its header, and the checkpoint after it that a
  // scan records first (out 0, no window).
  Status Start() {
    if (deflateInit2(&z_, options_.gzip_level, Z_DEFLATED, kGzipWindowBits, kMemLevel,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      return Status::ResourceExhausted(
          fmt::format("{}: out of memory for deflate", file_.final_path()));
    }
    zinit_ = true;
    SHARDSET_RETURN_IF_ERROR(Run(Z_BLOCK));
    RecordCheckpoint();
    return Status::OK();
  }

  Status Add(const InputSample& sample) override {
    SHARDSET_RETURN_IF_ERROR(file_.Usable());
    return tar_.Add(sample);
  }

  uint64_t num_samples() const override { return tar_.num_samples(); }
  // Compressed bytes so far: deflate holds back what it has not yet coded (at
  // most one block, tens of KiB of tar) and the stream's end (a few bytes of
  // deflate, the 8-byte trailer, the end of archive: about 30 bytes).
  uint64_t bytes_written() const override { return file_.offset(); }

  Result<ShardInfo> Close() override {
    SHARDSET_RETURN_IF_ERROR(file_.Usable());
    file_.MarkClosed();
    SHARDSET_RETURN_IF_ERROR(tar_.Finish());
    SHARDSET_RETURN_IF_ERROR(Run(Z_FINISH));
    ShardInfo info =
        SealedShardInfo(file_.atomic(), ShardFormat::kTarGz, tar_.index(), file_.xxh3());
    SHARDSET_RETURN_IF_ERROR(file_.Commit(options_.sync, options_.overwrite));
    if (options_.sidecar_index) {
      Status s = WriteSidecarOf(info.path);
      if (!s.ok()) {
        return s.WithPrefix(fmt::format(
            "{}: the tar.gz was written but its index was not (run shardset index {})",
            info.path, info.path));
      }
    }
    return info;
  }

 private:
  // The tar's sink. A deflate block ends at every multiple of kDefaultSpan
  // bytes of tar: the first block boundary at or after each span, where a
  // scan (GzStream::RecordCheckpoints) puts its checkpoints, is then exactly
  // there, so the writer's checkpoints are the scan's.
  Status Deflate(std::string_view bytes) {
    while (!bytes.empty()) {
      const std::string_view piece =
          bytes.substr(0, static_cast<size_t>(std::min<uint64_t>(bytes.size(), next_ - fed_)));
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));
      z_.avail_in = static_cast<uInt>(piece.size());
      SHARDSET_RETURN_IF_ERROR(Run(Z_NO_FLUSH));
      Remember(piece);
      fed_ += piece.size();
      bytes.remove_prefix(piece.size());
      if (fed_ == next_) {
        // Z_BLOCK ends the block without the empty stored block of
        // Z_SYNC_FLUSH and keeps the history: the cost is one block header
        // per span (docs/formats/targz-index.md "Writing").
        SHARDSET_RETURN_IF_ERROR(Run(Z_BLOCK));
        RecordCheckpoint();
        next_ += kDefaultSpan;
      }
    }
    return Status::OK();
  }

  // Runs deflate with `flush` until it has taken all its input and emitted
  // all that `flush` asks for, appending the output to the file.
  Status Run(int flush) {
    for (;;) {
      z_.next_out = reinterpret_cast<Bytef*>(out_.data());
      z_.avail_out = static_cast<uInt>(out_.size());
      const int ret = deflate(&z_, flush);
      if (ret == Z_STREAM_ERROR) {
        const Status s = Status::IOError(fmt::format(
            "{}: internal error: deflate failed ({})", file_.final_path(),
            z_.msg ? z_.msg : "stream error"));
        file_.Fail(s);
        return s;
      }
      const size_t produced = out_.size() - z_.avail_out;
      if (produced > 0) {
        SHARDSET_RETURN_IF_ERROR(file_.Append(std::string_view(out_.data(), produced)));
      }
      if (ret == Z_STREAM_END) return Status::OK();
      if (flush != Z_FINISH && z_.avail_in == 0 && z_.avail_out > 0) return Status::OK();
      // Z_BUF_ERROR with room to write: no progress is possible. Only
      // Z_FINISH can get here, and zlib says it does not.
      if (ret == Z_BUF_ERROR && z_.avail_out > 0) {
        const Status s = Status::IOError(fmt::format(
            "{}: internal error: deflate cannot finish the stream", file_.final_path()));
        file_.Fail(s);
        return s;
      }
    }
  }

  // Keeps the last kWindowSize bytes of tar fed to deflate.
  void Remember(std::string_view piece) {
    if (!options_.sidecar_index) return;
    if (piece.size() >= kWindowSize) {
      window_.assign(piece.substr(piece.size() - kWindowSize));
      return;
    }
    window_.append(piece);
    if (window_.size() > 2 * kWindowSize) window_.erase(0, window_.size() - kWindowSize);
  }

  // A checkpoint at the block boundary deflate just made: deflate has
  // emitted every whole byte of it and holds `pending` bits (0 to 7) of the
  // last byte, which belong to the block; a scan's inflate stops after that
  // byte with 8 - pending bits of it unused.
  void RecordCheckpoint() {
    if (!options_.sidecar_index) return;
    unsigned bytes_pending = 0;
    int pending = 0;
    deflatePending(&z_, &bytes_pending, &pending);
    assert(bytes_pending == 0 && pending >= 0 && pending < 8);
    const uint64_t in = file_.offset() + (pending > 0 ? 1 : 0);
    const int bits = pending > 0 ? 8 - pending : 0;
    const size_t dict = std::min<size_t>(window_.size(), kWindowSize);
    table_.Add(fed_, in, bits, std::string_view(window_).substr(window_.size() - dict));
  }

  Status WriteSidecarOf(const std::string& path) {
    SHARDSET_ASSIGN_OR_RETURN(std::unique_ptr<GzFile> gz, GzFile::Open(path));
    SHARDSET_ASSIGN_OR_RETURN(Fingerprint fp, FingerprintOf(*gz));
    return WriteSidecar(path, fp, ScanResult{fed_, kDefaultSpan}, table_, &tar_.index(),
                        options_.sync);
  }

  ShardFile file_;
  WriteOptions options_;
  z_stream z_{};
  bool zinit_ = false;
  std::string out_;
  uint64_t fed_ = 0;               // tar bytes given to deflate
  uint64_t next_ = kDefaultSpan;   // where the next block ends
  std::string window_;             // the last tar bytes (kWindowSize to twice that)
  CheckpointTable table_;
  tar::TarStreamWriter tar_;       // deflates into file_
};

}  // namespace

Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions& options) {
  if (options.gzip_level < 1 || options.gzip_level > 9) {
    return Status::InvalidArgument(fmt::format(
        "{}: gzip level {} is out of range; use 1 (fastest) to 9 (smallest), 6 is gzip's "
        "default",
        path, options.gzip_level));
  }
  SHARDSET_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path, options.sync));
  auto writer = std::make_unique<TarGzWriter>(std::move(file), options);
  SHARDSET_RETURN_IF_ERROR(writer->Start());
  return std::unique_ptr<ShardWriter>(std::move(writer));
}

}  // namespace shardset::targz
