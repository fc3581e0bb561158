#include "base/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace shardset {
namespace {

constexpr size_t kWriteBuffer = 1 << 20;
// Written bytes are handed to the kernel's writeback every this many bytes
// (sync_file_range, asynchronous), so the fsync at Commit finds little left
// to write: the same idea as RocksDB's bytes_per_sync.
constexpr uint64_t kWritebackChunk = 8 << 20;


}  // namespace

Result<MappedFile> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return Status::NotFound(fmt::format("{}: no such file", path));
    return Status::FromErrno(path, e);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status::FromErrno(path, e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(fmt::format("{}: not a regular file", path));
  }
  MappedFile m;
  m.path_ = path;
  m.size_ = static_cast<uint64_t>(st.st_size);
  m.mtime_ns_ = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  if (m.size_ > 0) {
    void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Status::FromErrno(fmt::format("{}: mmap", path), e);
    }
    m.data_ = static_cast<const char*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return m;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
    path_ = std::move(o.path_);
    data_ = o.data_;
    size_ = o.size_;
    mtime_ns_ = o.mtime_ns_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<char*>(data_), size_);
}

void MappedFile::AdviseSequential() const {
  if (data_) ::madvise(const_cast<char*>(data_), size_, MADV_SEQUENTIAL);
}
void MappedFile::AdviseRandom() const {
  if (data_) ::madvise(const_cast<char*>(data_), size_, MADV_RANDOM);
}

Result<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& final_path,
                                                       bool writeback) {
  static std::atomic<uint64_t> counter{0};
  std::unique_ptr<AtomicFile> f(new AtomicFile());
  f->final_path_ = final_path;
  f->writeback_ = writeback;
  f->temp_path_ = JoinPath(DirName(final_path),
                           fmt::format("{}{}.{}.{}", kTempPrefix, BaseName(final_path), ::getpid(),
                                       counter.fetch_add(1)));
  f->fd_ = ::open(f->temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (f->fd_ < 0) {
    return Status::FromErrno(fmt::format("{}: cannot create temporary file", f->temp_path_),
                             errno);
  }
  f->buffer_.reserve(kWriteBuffer);
  return f;
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

Status AtomicFile::Append(std::string_view data) {
  offset_ += data.size();
  if (buffer_.size() + data.size() <= kWriteBuffer) {
    buffer_.append(data);
    return Status::OK();
  }
  SHARDSET_RETURN_IF_ERROR(Flush());
  if (data.size() >= kWriteBuffer) {
    flushed_ += data.size();
    return WriteAll(fd_, data, temp_path_);
  }
  buffer_.append(data);
  return Status::OK();
}

Status AtomicFile::Flush() {
  Status s = WriteAll(fd_, buffer_, temp_path_);
  flushed_ += buffer_.size();
  buffer_.clear();
  if (s.ok() && writeback_ && flushed_ - writeback_start_ >= kWritebackChunk) {
    // Best effort: a filesystem without it just does all the work at fsync.
    ::sync_file_range(fd_, static_cast<off_t>(writeback_start_),
                      static_cast<off_t>(flushed_ - writeback_start_), SYNC_FILE_RANGE_WRITE);
    writeback_start_ = flushed_;
  }
  return s;
}

Status AtomicFile::Commit(bool sync, bool overwrite) {
  assert(!committed_);
  SHARDSET_RETURN_IF_ERROR(Flush());
  if (sync && ::fsync(fd_) != 0) return Status::FromErrno(fmt::format("{}: fsync", temp_path_), errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Status::FromErrno(fmt::format("{}: close", temp_path_), errno);
  }
  fd_ = -1;
  if (!overwrite) {
    // renameat2(RENAME_NOREPLACE) is not on every filesystem; a link() +
    // unlink() pair gives the same no-clobber guarantee everywhere.
    if (::link(temp_path_.c_str(), final_path_.c_str()) != 0) {
      int e = errno;
      if (e == EEXIST) {
        return Status::AlreadyExists(
            fmt::format("{}: already exists; remove it or choose another output", final_path_));
      }
      return Status::FromErrno(fmt::format("{}: cannot create", final_path_), e);
    }
    ::unlink(temp_path_.c_str());
  } else if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    return Status::FromErrno(fmt::format("{}: rename", final_path_), errno);
  }
  committed_ = true;
  if (sync) return FsyncDir(DirName(final_path_));
  return Status::OK();
}

Status WriteFileAtomic(const std::string& path, std::string_view contents, bool sync) {
  SHARDSET_ASSIGN_OR_RETURN(auto f, AtomicFile::Create(path));
  SHARDSET_RETURN_IF_ERROR(f->Append(contents));
  return f->Commit(sync, /*overwrite=*/true);
}

Result<std::string> ReadFile(const std::string& path, uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return Status::NotFound(fmt::format("{}: no such file", path));
    return Status::FromErrno(path, e);
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return Status::FromErrno(path, e);
    }
    if (r == 0) break;
    if (out.size() + static_cast<size_t>(r) > max_bytes) {
      ::close(fd);
      return Status::ResourceExhausted(
          fmt::format("{}: larger than the {} bytes allowed", path, max_bytes));
    }
    out.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return out;
}

Result<int> RemoveStaleTempFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::FromErrno(dir, errno);
  int removed = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name.substr(0, kTempPrefix.size()) == kTempPrefix) {
      if (::unlinkat(::dirfd(d), e->d_name, 0) == 0) ++removed;
    }
  }
  ::closedir(d);
  return removed;
}

Result<int> RemoveStaleTempFilesOf(const std::string& final_path) {
  const std::string dir = DirName(final_path);
  const std::string prefix = fmt::format("{}{}.", kTempPrefix, BaseName(final_path));
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::FromErrno(dir, errno);
  int removed = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name.substr(0, prefix.size()) != prefix) continue;
    // "...<pid>.<counter>", as AtomicFile::Create names them.
    const size_t last = name.rfind('.');
    const size_t before = last == 0 ? std::string_view::npos : name.rfind('.', last - 1);
    if (last == std::string_view::npos || before == std::string_view::npos) continue;
    const std::string pid_text(name.substr(before + 1, last - before - 1));
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) {
      if (::unlinkat(::dirfd(d), e->d_name, 0) == 0) ++removed;
    }
  }
  ::closedir(d);
  return removed;
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(dir, errno);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return Status::FromErrno(fmt::format("{}: fsync", dir), e);
  return Status::OK();
}

std::string DirName(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string BaseName(const std::string& path) {
  auto pos = path.find_last_of('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  const char* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(fmt::format("{}: write failed (is the disk full?)", path), errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

std::string JoinPath(std::string_view a, std::string_view b) {
  if (a.empty() || a == ".") return std::string(b);
  std::string out(a);
  if (out.back() != '/') out.push_back('/');
  out.append(b);
  return out;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace shardset
