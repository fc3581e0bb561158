#include "formats/targz/gz_stream.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <climits>
#include <cstring>

#include <fmt/format.h>

namespace shardset::targz {
namespace {

// Compressed bytes per pread. Large enough for kernel readahead to keep up
// with inflate; small enough that a checkpoint-started read of one sample
// reads little past what it needs.
constexpr size_t kInChunk = 64 * 1024;
// The output buffer, which grows only for a larger Peek.
constexpr size_t kInitialBuffer = 256 * 1024;
// Inflate is given at least this much room per call.
constexpr size_t kFillChunk = 64 * 1024;

// inflateInit2 windowBits: raw deflate, and gzip (15 + 16) with its header
// and trailer parsed and checked by zlib.
constexpr int kRawBits = -15;
constexpr int kGzipBits = 31;

}  // namespace

// ---- GzFile ----

Result<std::unique_ptr<GzFile>> GzFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) return Status::NotFound(fmt::format("{}: no such file", path));
    return Status::FromErrno(path, e);
  }
  FdCloser closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(path, errno);
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("{}: not a regular file", path));
  }
  return std::unique_ptr<GzFile>(
      new GzFile(path, closer.release(), static_cast<uint64_t>(st.st_size), st.st_mtim.tv_sec));
}

Result<size_t> GzFile::ReadAt(uint64_t offset, char* dst, size_t n) const {
  size_t done = 0;
  while (done < n) {
    const ssize_t r =
        ::pread(fd_.get(), dst + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno(fmt::format("{}: read", path_), errno);
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  bytes_read_.fetch_add(done, std::memory_order_relaxed);
  return done;
}

// ---- GzStream ----

GzStream::GzStream(const GzFile* file, uint64_t max_ratio)
    : file_(file),
      max_ratio_(max_ratio),
      in_buf_(new char[kInChunk]),
      buf_(new char[kInitialBuffer]),
      cap_(kInitialBuffer) {
  // inflateInit2 only fails for lack of memory; Rewind and Seek report it.
  zinit_ = inflateInit2(&strm_, kGzipBits) == Z_OK;
}

GzStream::~GzStream() {
  if (zinit_) inflateEnd(&strm_);
}

Status GzStream::NoMemory() const {
  return Status::ResourceExhausted(fmt::format("{}: out of memory for inflate", file_->path()));
}

Status GzStream::Rewind() {
  if (!zinit_) return NoMemory();
  inflateReset2(&strm_, kGzipBits);
  strm_.next_in = nullptr;
  strm_.avail_in = 0;
  in_next_ = 0;
  head_ = tail_ = 0;
  out_ = member_out_ = member_in_ = 0;
  raw_ = end_ = false;
  garbage_at_.reset();
  error_ = Status::OK();
  table_ = nullptr;
  return Status::OK();
}

Status GzStream::Seek(const Checkpoint& cp, std::string_view window) {
  if (!zinit_) return NoMemory();
  error_ = Status::OK();
  table_ = nullptr;
  head_ = tail_ = 0;
  out_ = member_out_ = cp.out;
  member_in_ = cp.in;
  raw_ = true;
  end_ = false;
  garbage_at_.reset();
  strm_.next_in = nullptr;
  strm_.avail_in = 0;
  in_next_ = cp.in;
  auto bad_point = [&](std::string_view what) {
    error_ = Status::Corruption(fmt::format(
        "{}: cannot resume inflating at the checkpoint at compressed byte {} ({}); the index "
        "does not match the file: rerun shardset index {}",
        file_->path(), cp.in, what, file_->path()));
    return error_;
  };
  if (cp.in > file_->size() || cp.bits > 7 || (cp.bits > 0 && cp.in == 0) ||
      window.size() > kWindowSize) {
    return bad_point("it lies outside the file");
  }
  if (inflateReset2(&strm_, kRawBits) != Z_OK) return bad_point("inflateReset2 failed");
  if (cp.bits > 0) {
    char c;
    SHARDSET_ASSIGN_OR_RETURN(size_t got, file_->ReadAt(cp.in - 1, &c, 1));
    if (got != 1) return bad_point("the file ends before it");
    const int byte = static_cast<unsigned char>(c);
    if (inflatePrime(&strm_, cp.bits, byte >> (8 - cp.bits)) != Z_OK) {
      return bad_point("inflatePrime failed");
    }
  }
  if (!window.empty() &&
      inflateSetDictionary(&strm_, reinterpret_cast<const Bytef*>(window.data()),
                           static_cast<uInt>(window.size())) != Z_OK) {
    return bad_point("inflateSetDictionary failed");
  }
  return Status::OK();
}

void GzStream::RecordCheckpoints(uint64_t span, CheckpointTable* table) {
  assert(out_ == 0 && !raw_ && span > 0);
  span_ = span;
  table_ = table;
}

Status GzStream::DataError(std::string_view what) const {
  return Status::Corruption(fmt::format(
      "{}: the gzip data is damaged at compressed byte {} ({}); restore or re-download the file",
      file_->path(), in_pos(), what));
}

Status GzStream::EndedEarly(uint64_t wanted) const {
  return Status::Corruption(fmt::format(
      "{}: the uncompressed stream ends at byte {}, {} bytes before the data wanted ends; the "
      "file was truncated or the index does not match it: rerun shardset index {}",
      file_->path(), out_, wanted, file_->path()));
}

Status GzStream::RefillInput() {
  assert(strm_.avail_in == 0);
  const size_t want = static_cast<size_t>(std::min<uint64_t>(kInChunk, file_->size() - in_next_));
  SHARDSET_ASSIGN_OR_RETURN(size_t got, file_->ReadAt(in_next_, in_buf_.get(), want));
  if (got < want) {
    return Status::IOError(fmt::format(
        "{}: the file shrank to {} bytes while being read (it had {}); is it being rewritten?",
        file_->path(), in_next_ + got, file_->size()));
  }
  strm_.next_in = reinterpret_cast<Bytef*>(in_buf_.get());
  strm_.avail_in = static_cast<uInt>(got);
  in_next_ += got;
  return Status::OK();
}

Result<bool> GzStream::EnsureInput(size_t n) {
  assert(n <= kInChunk);
  if (strm_.avail_in >= n) return true;
  // Move what is left to the front and read after it.
  if (strm_.avail_in > 0) std::memmove(in_buf_.get(), strm_.next_in, strm_.avail_in);
  size_t have = strm_.avail_in;
  const size_t want =
      static_cast<size_t>(std::min<uint64_t>(kInChunk - have, file_->size() - in_next_));
  SHARDSET_ASSIGN_OR_RETURN(size_t got, file_->ReadAt(in_next_, in_buf_.get() + have, want));
  in_next_ += got;
  have += got;
  strm_.next_in = reinterpret_cast<Bytef*>(in_buf_.get());
  strm_.avail_in = static_cast<uInt>(have);
  return have >= n;
}

void GzStream::MakeRoom(size_t want) {
  if (cap_ - tail_ >= want) return;
  // Keep the unconsumed bytes and the last window of output (a checkpoint
  // recorded at the next block boundary copies it).
  const size_t history = std::min<size_t>(tail_, kWindowSize);
  const size_t keep_from = std::min(head_, tail_ - history);
  std::memmove(buf_.get(), buf_.get() + keep_from, tail_ - keep_from);
  head_ -= keep_from;
  tail_ -= keep_from;
  if (cap_ - tail_ < want) {
    const size_t cap = tail_ + want;
    std::unique_ptr<char[]> bigger(new char[cap]);
    std::memcpy(bigger.get(), buf_.get(), tail_);
    buf_ = std::move(bigger);
    cap_ = cap;
  }
}

Status GzStream::Fill() {
  if (!error_.ok()) return error_;
  if (end_) return Status::OK();
  MakeRoom(kFillChunk);
  for (;;) {
    if (strm_.avail_in == 0 && in_next_ < file_->size()) {
      Status s = RefillInput();
      if (!s.ok()) return error_ = s;
    }
    strm_.next_out = reinterpret_cast<Bytef*>(buf_.get() + tail_);
    strm_.avail_out = static_cast<uInt>(std::min<size_t>(cap_ - tail_, UINT_MAX));
    const uInt in_before = strm_.avail_in, out_before = strm_.avail_out;
    // Z_BLOCK returns at every deflate block boundary, where checkpoints go.
    const int ret = inflate(&strm_, table_ ? Z_BLOCK : Z_NO_FLUSH);
    const size_t produced = out_before - strm_.avail_out;
    tail_ += produced;
    out_ += produced;
    if (max_ratio_ > 0 && out_ > kStreamRatioFloor &&
        static_cast<unsigned __int128>(out_) >
            static_cast<unsigned __int128>(max_ratio_) * in_pos()) {
      return error_ = Status::ResourceExhausted(fmt::format(
                 "{}: the gzip stream expands to more than {} bytes from {} compressed bytes, "
                 "over the {}:1 ratio limit; it looks like a decompression bomb: if the archive "
                 "is genuine, raise --max-ratio",
                 file_->path(), out_, in_pos(), max_ratio_));
    }
    switch (ret) {
      case Z_STREAM_END: {
        Status s = EndMember();
        if (!s.ok()) return error_ = s;
        if (produced > 0 || end_) return Status::OK();
        continue;
      }
      case Z_OK:
      case Z_BUF_ERROR:
        break;
      case Z_MEM_ERROR:
        return error_ = NoMemory();
      default:  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
        return error_ = DataError(strm_.msg ? strm_.msg : "invalid deflate data");
    }
    // A non-last block just ended, or the first member's header: zran.c's
    // access points.
    if (table_ && (strm_.data_type & 0xc0) == 0x80 &&
        (table_->empty() || out_ - table_->points().back().out >= span_)) {
      const size_t dict = static_cast<size_t>(std::min<uint64_t>(kWindowSize, out_ - member_out_));
      assert(dict <= tail_);
      table_->Add(out_, in_pos(), strm_.data_type & 7,
                  std::string_view(buf_.get() + tail_ - dict, dict));
    }
    if (produced > 0) return Status::OK();
    if (strm_.avail_in == in_before && strm_.avail_in == 0 && in_next_ >= file_->size()) {
      return error_ = Status::Corruption(fmt::format(
                 "{}: the gzip data ends at byte {} inside the member that starts at byte {}; "
                 "the file is truncated: restore or re-download it",
                 file_->path(), file_->size(), member_in_));
    }
  }
}

Status GzStream::EndMember() {
  if (raw_) {
    // Inflating raw deflate from a checkpoint: the member's trailer (CRC-32,
    // length) follows and is skipped. From the next member on, zlib parses
    // headers and checks trailers again.
    SHARDSET_ASSIGN_OR_RETURN(bool whole, EnsureInput(8));
    if (!whole) {
      return Status::Corruption(fmt::format(
          "{}: the gzip data ends at byte {} inside a member's trailer; the file is truncated: "
          "restore or re-download it",
          file_->path(), file_->size()));
    }
    strm_.next_in += 8;
    strm_.avail_in -= 8;
    raw_ = false;
  }
  SHARDSET_ASSIGN_OR_RETURN(bool two, EnsureInput(2));
  if (strm_.avail_in == 0) {
    end_ = true;
    return Status::OK();
  }
  if (two && strm_.next_in[0] == 0x1f && strm_.next_in[1] == 0x8b) {
    if (inflateReset2(&strm_, kGzipBits) != Z_OK) return DataError("inflateReset2 failed");
    member_out_ = out_;
    member_in_ = in_pos();
    return Status::OK();
  }
  // Not another member: the stream ends here. Zero padding is ignored, as
  // GNU gzip does silently; other bytes too, as gzip ("trailing garbage
  // ignored"), bsdtar and Python do, but they are remembered: the caller
  // decides whether they may hide a damaged member (gz_stream.h).
  const uint64_t at = in_pos();
  for (;;) {
    const char* p = reinterpret_cast<const char*>(strm_.next_in);
    if (std::any_of(p, p + strm_.avail_in, [](char c) { return c != 0; })) {
      garbage_at_ = at;
      break;
    }
    strm_.avail_in = 0;
    if (in_next_ >= file_->size()) break;
    SHARDSET_RETURN_IF_ERROR(RefillInput());
  }
  strm_.avail_in = 0;
  end_ = true;
  return Status::OK();
}

Result<std::string_view> GzStream::Peek(size_t n) {
  if (tail_ - head_ < n) MakeRoom(n - (tail_ - head_));
  while (tail_ - head_ < n && !end_) SHARDSET_RETURN_IF_ERROR(Fill());
  return std::string_view(buf_.get() + head_, std::min(n, tail_ - head_));
}

void GzStream::Consume(size_t n) {
  assert(n <= tail_ - head_);
  head_ += n;
}

Result<uint64_t> GzStream::SkipUpTo(uint64_t n) {
  uint64_t done = 0;
  while (done < n) {
    if (head_ == tail_) {
      SHARDSET_RETURN_IF_ERROR(Fill());
      if (head_ == tail_) break;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(n - done, tail_ - head_));
    head_ += take;
    done += take;
  }
  return done;
}

Status GzStream::Skip(uint64_t n) {
  SHARDSET_ASSIGN_OR_RETURN(uint64_t done, SkipUpTo(n));
  if (done < n) return EndedEarly(n - done);
  return Status::OK();
}

Status GzStream::ReadExactly(char* dst, uint64_t n) {
  while (n > 0) {
    if (head_ == tail_) {
      SHARDSET_RETURN_IF_ERROR(Fill());
      if (head_ == tail_) return EndedEarly(n);
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(n, tail_ - head_));
    std::memcpy(dst, buf_.get() + head_, take);
    head_ += take;
    dst += take;
    n -= take;
  }
  return Status::OK();
}

Status GzStream::Drain() {
  while (!end_) {
    head_ = tail_;
    SHARDSET_RETURN_IF_ERROR(Fill());
  }
  head_ = tail_;
  return error_;
}

}  // namespace shardset::targz
