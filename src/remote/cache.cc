#include "remote/cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "base/file.h"
#include "base/hash.h"

namespace shardset::remote {
namespace {

// Lock files and a ranged object's block map are not objects: the map goes
// with its ".part" file.
bool IsObjectName(std::string_view name) {
  return !name.starts_with('.') && !name.ends_with(".lock") && !name.ends_with(".blocks");
}

std::atomic<uint64_t> temp_counter{0};

}  // namespace

Status MakeDirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') continue;
    const std::string part = path.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::FromErrno(fmt::format("{}: cannot make the cache folder", part), errno);
    }
  }
  return Status::OK();
}

Result<FileLock> FileLock::Take(const std::string& path, bool wait) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(path, errno);
  while (::flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
    if (errno == EINTR) continue;
    const int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) return Status::AlreadyExists(fmt::format("{}: locked", path));
    return Status::FromErrno(path, e);
  }
  return FileLock(fd);
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}


Status DownloadChecked(Client& client, const std::string& url, const Expected& expected,
                       const std::string& path, bool sync) {
  const std::string dir = DirName(path);
  (void)RemoveStaleTempFilesOf(path);
  Status last;
  for (int attempt = 0; attempt < client.options().retries; ++attempt) {
    const std::string temp = fmt::format("{}/{}{}.{}.{}", dir, kTempPrefix, BaseName(path),
                                         ::getpid(), temp_counter++);
    FdCloser fd(::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd.get() < 0) return Status::FromErrno(temp, errno);
    Status s = ::ftruncate(fd.get(), static_cast<off_t>(expected.size)) == 0
                   ? Status::OK()
                   : Status::FromErrno(fmt::format("{}: no room for it", temp), errno);
    if (s.ok()) s = client.Download(url, expected.size, fd.get(), temp);
    if (s.ok() && expected.xxh3 != 0) {
      auto file = MappedFile::Open(temp);
      s = file.status();
      if (s.ok() && Xxh3(file->data()) != expected.xxh3) {
        // A proxy or a disk on the way changed bytes: fetched again, never
        // handed to a reader.
        last = Status::Corruption(fmt::format(
            "{}: what arrived differs from the manifest's XXH3 {:016x}", url, expected.xxh3));
        ::unlink(temp.c_str());
        continue;
      }
    }
    if (s.ok() && sync && ::fsync(fd.get()) != 0) s = Status::FromErrno(temp, errno);
    if (s.ok() && ::rename(temp.c_str(), path.c_str()) != 0) s = Status::FromErrno(path, errno);
    if (s.ok() && sync) s = FsyncDir(dir);
    if (!s.ok()) ::unlink(temp.c_str());
    return s;
  }
  return Status::Corruption(
      fmt::format("{} (in each of {} downloads)", last.message(), client.options().retries));
}

std::string Cache::PathOf(const std::string& url) const {
  const std::string name = UrlBaseName(url);
  const std::string folder = url.substr(0, url.size() - name.size());
  return fmt::format("{}/objects/{:016x}/{}", client_->options().cache_dir, Xxh3(folder), name);
}

Result<std::string> Cache::FetchIfExists(const std::string& url) {
  auto path = Fetch(url, {});
  if (!path.ok() && path.status().IsNotFound()) return std::string();
  return path;
}

Result<std::string> Cache::Fetch(const std::string& url, const Expected& expected) {
  const std::string path = PathOf(url);
  if (UrlBaseName(url).empty() || UrlBaseName(url) == "." || UrlBaseName(url) == "..") {
    return Status::InvalidArgument(fmt::format("{}: names no object", url));
  }
  uint64_t size = expected.size;
  struct stat st;
  auto hit = [&] {
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           (size == 0 || static_cast<uint64_t>(st.st_size) == size);
  };
  if (size != 0 && hit()) {
    ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // most recently used
    return path;
  }
  if (size == 0) {
    SHARDSET_ASSIGN_OR_RETURN(size, client_->Size(url));
    if (hit()) {
      ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
      return path;
    }
  }
  const std::string dir = DirName(path);
  SHARDSET_RETURN_IF_ERROR(MakeDirs(dir));
  {
    // One process fetches; the others wait here and then find it cached.
    SHARDSET_ASSIGN_OR_RETURN(FileLock lock, FileLock::Take(path + ".lock", /*wait=*/true));
    if (hit()) return path;
    SHARDSET_RETURN_IF_ERROR(DownloadChecked(*client_, url, {size, expected.xxh3}, path, false));
    ++fetched_;
  }
  (void)Evict(path);
  return path;
}

Result<uint64_t> Cache::Evict(const std::string& keep) {
  const std::string root = client_->options().cache_dir + "/objects";
  // One evicting process at a time; the others skip it.
  auto lock = FileLock::Take(client_->options().cache_dir + "/evict.lock", /*wait=*/false);
  if (!lock.ok()) return uint64_t{0};
  std::vector<std::tuple<int64_t, uint64_t, std::string>> objects;  // (mtime, size, path)
  uint64_t total = 0;
  DIR* top = ::opendir(root.c_str());
  if (!top) return Status::FromErrno(root, errno);
  while (struct dirent* d = ::readdir(top)) {
    if (d->d_name[0] == '.') continue;
    const std::string sub = JoinPath(root, d->d_name);
    DIR* in = ::opendir(sub.c_str());
    if (!in) continue;
    while (struct dirent* e = ::readdir(in)) {
      if (!IsObjectName(e->d_name)) continue;
      const std::string p = JoinPath(sub, e->d_name);
      struct stat st;
      if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      // What the file holds on disk: a ranged object's ".part" is sparse.
      const uint64_t bytes =
          std::min<uint64_t>(st.st_size, static_cast<uint64_t>(st.st_blocks) * 512);
      total += bytes;
      objects.emplace_back(int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec, bytes, p);
    }
    ::closedir(in);
  }
  ::closedir(top);
  std::sort(objects.begin(), objects.end());
  uint64_t freed = 0;
  for (const auto& [mtime, size, p] : objects) {
    if (total <= client_->options().cache_bytes) break;
    if (p == keep) continue;
    // The map first: a ".part" without its map is refetched, never trusted.
    if (p.ends_with(kPartSuffix)) {
      ::unlink((p.substr(0, p.size() - kPartSuffix.size()) + std::string(kBlocksSuffix)).c_str());
    }
    if (::unlink(p.c_str()) == 0) {
      total -= size;
      freed += size;
    }
  }
  return freed;
}

}  // namespace shardset::remote
