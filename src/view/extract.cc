#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include <fmt/format.h>

#include "base/file.h"
#include "base/strings.h"
#include "formats/sample_key.h"
#include "shardset/view.h"

namespace shardset {
namespace {

// Writes `data` to `rel` under the folder `root_fd`, creating folders on the
// way. Every component is opened relative to its parent with O_NOFOLLOW.
Status WriteInside(int root_fd, const std::string& out, std::string_view rel,
                   std::string_view data) {
  const std::string shown = EscapeForDisplay(JoinPath(out, rel));
  FdCloser dir(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  size_t start = 0;
  for (size_t slash = rel.find('/'); slash != std::string_view::npos;
       slash = rel.find('/', start)) {
    const std::string part(rel.substr(start, slash - start));
    if (::mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::FromErrno(fmt::format("{}: cannot create folder", shown), errno);
    }
    int next = ::openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      int e = errno;
      if (e == ELOOP || e == ENOTDIR) {
        return Status::InvalidArgument(fmt::format(
            "{}: '{}' on the way is a symlink or not a folder; refusing to follow it out of {}",
            shown, EscapeForDisplay(part), out));
      }
      return Status::FromErrno(shown, e);
    }
    dir.Reset(next);
    start = slash + 1;
  }
  const std::string name(rel.substr(start));
  // Short on purpose: the final name may already use all 255 bytes.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = fmt::format("{}{}.{}", kTempPrefix, ::getpid(), counter++);
  FdCloser fd(::openat(dir.get(), tmp.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Status::FromErrno(fmt::format("{}: cannot create", shown), errno);
  Status s = WriteAll(fd.get(), data, shown);
  if (s.ok() && ::close(fd.release()) != 0) s = Status::FromErrno(shown, errno);
  // renameat replaces a symlink at the final name itself, never its target.
  if (s.ok() && ::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0) {
    s = Status::FromErrno(fmt::format("{}: rename", shown), errno);
  }
  if (!s.ok()) ::unlinkat(dir.get(), tmp.c_str(), 0);
  return s;
}

}  // namespace

Result<ExtractResult> Extract(const View& ds, const std::string& out,
                              const ExtractOptions& options) {
  // Every key's folders are checked before anything is written, so a hostile
  // archive ("../x", "/etc/x", "a//b/x") leaves no partial extraction behind.
  // Keys come from the index: no field bytes are read here. The last
  // component joins its field's name ("." + "txt" -> "..txt" is a fine file
  // name), so the whole file name is checked again as each one is written.
  // Where sample i is, for errors: the target and the shard that holds it
  // (a damaged shard can make a key unsafe; the user must know which).
  auto where = [&](uint64_t i) {
    auto shard = ds.ShardOf(i);
    return shard.ok() ? fmt::format("{} (shard {})", ds.target(), (*shard)->path()) : ds.target();
  };
  for (uint64_t i = 0; i < ds.num_samples(); ++i) {
    SHARDSET_ASSIGN_OR_RETURN(std::string key, ds.Key(i));
    const size_t slash = key.rfind('/');
    const std::string_view dirs =
        slash == std::string::npos ? std::string_view() : std::string_view(key).substr(0, slash);
    const bool safe = (slash == std::string::npos || IsPlainRelativePath(dirs)) &&
                      slash + 1 != key.size() && key.find('\0') == std::string::npos;
    if (!safe) {
      return Status::InvalidArgument(fmt::format(
          "{}: sample {} has key '{}', which would be written outside {} (absolute, '..', or "
          "empty components); refusing, nothing was written. Read it with shardset cat, or "
          "repack with safe names",
          where(i), i, EscapeForDisplay(key), out));
    }
  }
  if (::mkdir(out.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::FromErrno(fmt::format("{}: cannot create output folder", out), errno);
  }
  FdCloser root(::open(out.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) return Status::FromErrno(out, errno);
  ExtractResult r;
  Sample s;
  for (uint64_t i = 0; i < ds.num_samples(); ++i) {
    SHARDSET_RETURN_IF_ERROR(ds.Read(i, &s));
    for (const Field& f : s.fields) {
      if ((f.flags & kFieldDerived) && !options.derived) continue;
      const std::string rel = JoinKeyField(s.key, f.name);
      if (!IsPlainRelativePath(rel)) {
        return Status::InvalidArgument(fmt::format(
            "{}: sample {} would be written to '{}', outside {}; refusing (nothing of it was "
            "written)",
            where(i), i, EscapeForDisplay(rel), out));
      }
      SHARDSET_RETURN_IF_ERROR(WriteInside(root.get(), out, rel, f.data));
      ++r.files;
      r.bytes += f.data.size();
    }
    if (options.progress) options.progress(i + 1, r.files);
  }
  return r;
}

}  // namespace shardset
