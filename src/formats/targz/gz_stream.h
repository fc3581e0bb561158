// Reading a gzip file forward: from its start (every member's CRC-32 and
// length checked, checkpoints recorded on request) or from a checkpoint.
//
// Multi-member files (pigz, bgzip, `cat a.gz b.gz`) read as the concatenation
// of their members. The stream ends after the last member, at the end of the
// file or at the first bytes that do not start another member (1f 8b), like
// GNU gzip: zero bytes there are padding, ignored silently; other bytes are
// "trailing garbage", which gzip ignores with a warning (exit 2, and `tar
// xzf` fails) and bsdtar and Python ignore silently. GzStream ignores them
// and reports where they start (trailing_garbage_at), because a damaged magic
// number in a later member also looks like garbage: the tar.gz reader
// accepts garbage only after the tar's end-of-archive block, and Verify
// reports it. docs/formats/targz-index.md "Reading the gzip stream".
#ifndef SHARDSET_FORMATS_TARGZ_GZ_STREAM_H_
#define SHARDSET_FORMATS_TARGZ_GZ_STREAM_H_

#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/file.h"
#include "formats/targz/gz_index.h"
#include "shardset/status.h"

namespace shardset::targz {

// The uncompressed size a stream may reach before max_ratio applies
// (docs/formats/targz-index.md "Limits"): a tar.gz may expand without limit
// to this, and beyond it to max_ratio times the compressed bytes read so far.
inline constexpr uint64_t kStreamRatioFloor = uint64_t{64} << 20;

// A compressed file read with pread (not a map, so that every byte read is
// counted). Thread-safe.
class GzFile {
 public:
  static Result<std::unique_ptr<GzFile>> Open(const std::string& path);

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  // Modification time when opened, unix seconds.
  int64_t mtime() const { return mtime_; }
  // Up to `n` bytes at `offset` into `dst`; fewer only at the end of the file.
  Result<size_t> ReadAt(uint64_t offset, char* dst, size_t n) const;
  // Bytes read so far through ReadAt, by every thread.
  uint64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }

 private:
  GzFile(std::string path, int fd, uint64_t size, int64_t mtime)
      : path_(std::move(path)), fd_(fd), size_(size), mtime_(mtime) {}

  std::string path_;
  FdCloser fd_;
  uint64_t size_;
  int64_t mtime_;
  mutable std::atomic<uint64_t> bytes_read_{0};
};

// A forward-only reader of the uncompressed stream of a GzFile, buffered.
// Not thread-safe: one thread at a time. Errors name the file and the
// compressed offset: Corruption for damaged or truncated data and trailing
// garbage, ResourceExhausted past max_ratio.
class GzStream {
 public:
  // `file` must outlive the stream. `max_ratio` 0 means no ratio limit.
  GzStream(const GzFile* file, uint64_t max_ratio);
  ~GzStream();
  GzStream(const GzStream&) = delete;
  GzStream& operator=(const GzStream&) = delete;

  // Positions at the start of the file (gzip mode: headers, CRC-32 and
  // length of every member checked).
  Status Rewind();
  // Positions at checkpoint `cp`, whose decoded window is `window`. Members
  // after the one `cp` is in have their CRC-32 and length checked; the rest
  // of this one is checked only by the caller's own checksums.
  Status Seek(const Checkpoint& cp, std::string_view window);
  // From the start (after Rewind, before any read): adds a checkpoint to
  // *table at the first deflate block boundary at or after every `span`
  // bytes of output, and at the start of the first member's data.
  void RecordCheckpoints(uint64_t span, CheckpointTable* table);

  const std::string& path() const { return file_->path(); }
  // The uncompressed offset of the next byte.
  uint64_t pos() const { return out_ - (tail_ - head_); }
  // The compressed bytes inflate has consumed.
  uint64_t in_pos() const { return in_next_ - strm_.avail_in; }
  // The stream's size once its end has been reached.
  std::optional<uint64_t> size() const {
    return end_ ? std::optional<uint64_t>(out_) : std::nullopt;
  }
  // Once the end has been reached: the compressed offset of the bytes after
  // the last member that are neither a member nor zero padding, if any.
  std::optional<uint64_t> trailing_garbage_at() const { return garbage_at_; }

  // Up to `n` bytes at pos(), fewer only at the end of the stream; the view
  // is valid until the next call. Does not consume them.
  Result<std::string_view> Peek(size_t n);
  void Consume(size_t n);
  // Discards `n` bytes; Corruption if the stream ends first.
  Status Skip(uint64_t n);
  // Discards up to `n` bytes, fewer only at the end of the stream; returns
  // how many.
  Result<uint64_t> SkipUpTo(uint64_t n);
  // Copies the next `n` bytes to `dst`; Corruption if the stream ends first.
  Status ReadExactly(char* dst, uint64_t n);
  // Reads to the end of the stream, checking every trailer that is left.
  Status Drain();

 private:
  // Inflates at least one more byte into the buffer, or reaches the end.
  Status Fill();
  // Keeps the unconsumed bytes and the last kWindowSize produced, moved to
  // the front, and makes room for `want` more bytes.
  void MakeRoom(size_t want);
  // After Z_STREAM_END: skips a raw member's trailer, then starts the next
  // member or ends the stream.
  Status EndMember();
  // Makes `n` compressed bytes available in the input buffer if the file
  // has them; false when it ends first.
  Result<bool> EnsureInput(size_t n);
  Status RefillInput();
  Status DataError(std::string_view what) const;
  Status NoMemory() const;
  Status EndedEarly(uint64_t wanted) const;

  const GzFile* file_;
  uint64_t max_ratio_;
  z_stream strm_{};
  bool zinit_ = false;
  bool raw_ = false;  // after Seek, until the end of that member
  bool end_ = false;
  std::optional<uint64_t> garbage_at_;
  Status error_;      // sticky: the first error, returned by every later call

  std::unique_ptr<char[]> in_buf_;
  uint64_t in_next_ = 0;  // file offset of the byte after in_buf_'s data

  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t head_ = 0, tail_ = 0;  // unconsumed bytes are buf_[head_, tail_)
  uint64_t out_ = 0;            // uncompressed offset of buf_[tail_]
  uint64_t member_out_ = 0;     // uncompressed offset where this member's output began
  uint64_t member_in_ = 0;      // compressed offset of this member's header

  uint64_t span_ = 0;
  CheckpointTable* table_ = nullptr;
};

}  // namespace shardset::targz

#endif  // SHARDSET_FORMATS_TARGZ_GZ_STREAM_H_
