// File IO used by every module: read-only memory maps and crash-safe writes.
//
// Crash safety contract (PRODUCT.md "Trust it"): a file that appears under its
// final name is complete. AtomicFile writes to a hidden temporary name in the
// same directory, and Commit() flushes, fsyncs, renames and fsyncs the
// directory. Temporary names start with ".shardset-tmp." so a later run can
// find and delete what a killed run left behind (RemoveStaleTempFiles).
#ifndef SHARDSET_BASE_FILE_H_
#define SHARDSET_BASE_FILE_H_

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "shardset/status.h"

namespace shardset {

inline constexpr std::string_view kTempPrefix = ".shardset-tmp.";

// Owns a file descriptor; closes it on destruction.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  ~FdCloser() { Reset(-1); }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void Reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// A read-only private memory map of a whole file. Movable, not copyable.
// Thread-safe for concurrent reads. A file truncated by someone else while
// mapped raises SIGBUS on access past its new end: shards are immutable, and
// verify/readers check sizes against the footer at open.
class MappedFile {
 public:
  static Result<MappedFile> Open(const std::string& path);
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::string_view data() const { return {data_, size_}; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  int64_t mtime_ns() const { return mtime_ns_; }
  // Hints the kernel about the access pattern (madvise); failures are ignored.
  void AdviseSequential() const;
  void AdviseRandom() const;

 private:
  std::string path_;
  const char* data_ = nullptr;
  uint64_t size_ = 0;
  int64_t mtime_ns_ = 0;
};

// Buffered append-only writer to a temporary file that becomes `final_path`
// only on Commit(). Destroying it uncommitted deletes the temporary file.
class AtomicFile {
 public:
  // `writeback`: hand written bytes to the kernel's writeback every 8 MiB, so
  // the fsync at Commit finds little left to do. Off when nothing will be
  // synced: early writeback would only make the writer wait for the disk.
  static Result<std::unique_ptr<AtomicFile>> Create(const std::string& final_path,
                                                    bool writeback = true);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  Status Append(std::string_view data);
  uint64_t offset() const { return offset_; }
  // Flushes; if `sync`, fsyncs the file; renames it to the final name (which
  // must not exist unless `overwrite`), then fsyncs the directory if `sync`.
  Status Commit(bool sync, bool overwrite = false);
  const std::string& final_path() const { return final_path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFile() = default;
  Status Flush();

  std::string final_path_, temp_path_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  uint64_t flushed_ = 0;          // bytes handed to write(2)
  uint64_t writeback_start_ = 0;  // first byte not yet passed to sync_file_range
  bool writeback_ = true;
  std::string buffer_;
  bool committed_ = false;
};

// Writes all of `data` to `fd` (retrying short writes and EINTR); errors name
// `path`.
Status WriteAll(int fd, std::string_view data, const std::string& path);
// Writes `contents` to `path` through an AtomicFile (overwriting).
Status WriteFileAtomic(const std::string& path, std::string_view contents, bool sync = true);
// Reads a whole file; ResourceExhausted if it is larger than `max_bytes`.
Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes);
// Deletes temporary files left in `dir` by killed runs; returns how many.
Result<int> RemoveStaleTempFiles(const std::string& dir);
// Deletes temporary files of `final_path` and its sidecars ("<base>.*") that
// a process no longer running left beside it (a killed single-file write);
// files of running processes are kept. Returns how many.
Result<int> RemoveStaleTempFilesOf(const std::string& final_path);
Status FsyncDir(const std::string& dir);
// "a/b/c" -> "a/b"; "c" -> ".".
std::string DirName(const std::string& path);
std::string BaseName(const std::string& path);
std::string JoinPath(std::string_view a, std::string_view b);
bool IsDirectory(const std::string& path);
bool PathExists(const std::string& path);

}  // namespace shardset

#endif  // SHARDSET_BASE_FILE_H_
