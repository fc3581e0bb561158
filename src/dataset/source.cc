#include "dataset/source.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/file.h"
#include "base/strings.h"
#include "formats/sample_key.h"

namespace shardset {
namespace {

// Walks a folder tree depth-first, one listing per level in memory. Each
// folder's entries are sorted by (key part, field) for files and by name + "/"
// for folders. That makes keys come out in bytewise order across the whole
// tree (a folder's keys all start with "name/") and keeps every file of one
// stem adjacent even when another name sorts between them by plain name
// ("README", "README-dev.md", "README.md" -> README{"", md}, README-dev{md}).
class TreeSource : public SampleSource {
 public:
  TreeSource(std::string root, bool skip_unreadable, WarnFn warn,
             std::vector<std::string>* skipped)
      : root_(std::move(root)),
        skip_unreadable_(skip_unreadable),
        warn_(std::move(warn)),
        skipped_(skipped) {}

  Status Init() {
    struct stat st;
    if (::stat(root_.c_str(), &st) != 0) return Status::FromErrno(root_, errno);
    return PushDir("", st);
  }

  Result<bool> Next(PendingSample* out) override {
    out->key.clear();
    out->fields.clear();
    for (;;) {
      if (!have_file_) {
        SHARDSET_ASSIGN_OR_RETURN(bool more, NextFile());
        if (!more) return !out->fields.empty();
        have_file_ = true;
      }
      auto [key, field] = SplitKeyField(file_rel_);
      if (!out->fields.empty() && key != out->key) return true;
      if (out->fields.empty()) out->key = key;
      PendingField f;
      f.name = field;
      f.dir = file_dir_;
      f.file = file_name_;
      f.size = file_size_;
      out->fields.push_back(std::move(f));
      have_file_ = false;
    }
  }

 private:
  struct Child {
    std::string name;
    std::string primary;    // files: the key part of the name; folders: name + "/"
    std::string secondary;  // files: the field part; folders: empty
    bool is_dir;
    uint64_t size;
    struct stat st;  // valid for folders only (their identity for loop checks)
  };
  struct Frame {
    std::string rel;  // "" for the root, else "a/b/"
    std::shared_ptr<const DirHandle> dir;
    std::vector<Child> children;
    size_t next = 0;
    dev_t dev;
    ino_t ino;
  };

  void Skip(const std::string& rel, std::string_view why) {
    std::string line = fmt::format("{}: {}", EscapeForDisplay(JoinPath(root_, rel)), why);
    if (warn_) warn_(line);
    if (skipped_) skipped_->push_back(line);
  }

  Status PushDir(const std::string& rel, const struct stat& dir_st) {
    for (const Frame& f : stack_) {
      if (f.dev == dir_st.st_dev && f.ino == dir_st.st_ino) {
        Skip(rel, "symlink loop (a folder that contains itself), skipped");
        return Status::OK();
      }
    }
    const std::string path = rel.empty() ? root_ : JoinPath(root_, rel);
    int dfd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
      int e = errno;
      if (rel.empty() || !skip_unreadable_) {
        return Status::FromErrno(
            fmt::format("{}: cannot open folder (fix it, or pass --skip-unreadable to skip such "
                        "folders with a warning)",
                        EscapeForDisplay(path)),
            e);
      }
      Skip(rel, fmt::format("cannot open folder ({}), skipped", std::strerror(e)));
      return Status::OK();
    }
    // readdir consumes its own descriptor; the frame keeps a second one for
    // the readers, alive as long as a pending field needs it.
    int keep = ::fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    if (keep < 0) {
      int e = errno;
      ::close(dfd);
      return Status::FromErrno(path, e);
    }
    DIR* d = ::fdopendir(dfd);
    Frame frame;
    frame.dir = std::make_shared<DirHandle>(keep, path);
    frame.rel = rel.empty() ? "" : rel + "/";
    frame.dev = dir_st.st_dev;
    frame.ino = dir_st.st_ino;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view name(e->d_name);
      if (name == "." || name == "..") continue;
      Child c;
      if (e->d_type == DT_REG) {
        // The common case needs no stat here: the reader fstats the open file.
        c.is_dir = false;
        c.size = kUnknownSize;
      } else {
        // stat (not lstat): symlinks are followed, as seed 000's link trees need.
        if (::fstatat(dfd, e->d_name, &c.st, 0) != 0) {
          int err = errno;
          struct stat lst;
          bool is_link = ::fstatat(dfd, e->d_name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
                         S_ISLNK(lst.st_mode);
          Skip(frame.rel + std::string(name),
               is_link ? "broken symlink, skipped"
                       : fmt::format("cannot stat ({}), skipped", std::strerror(err)));
          continue;
        }
        c.is_dir = S_ISDIR(c.st.st_mode);
        if (!c.is_dir && !S_ISREG(c.st.st_mode)) {
          Skip(frame.rel + std::string(name),
               "not a regular file (socket, fifo or device), skipped");
          continue;
        }
        c.size = static_cast<uint64_t>(c.st.st_size);
      }
      c.name = name;
      if (c.is_dir) {
        c.primary = c.name + "/";
      } else {
        auto [key, field] = SplitKeyField(c.name);
        c.primary = key;
        c.secondary = field;
      }
      frame.children.push_back(std::move(c));
    }
    ::closedir(d);
    std::sort(frame.children.begin(), frame.children.end(),
              [](const Child& a, const Child& b) {
                return a.primary != b.primary ? a.primary < b.primary : a.secondary < b.secondary;
              });
    stack_.push_back(std::move(frame));
    return Status::OK();
  }

  Result<bool> NextFile() {
    while (!stack_.empty()) {
      Frame& top = stack_.back();
      if (top.next == top.children.size()) {
        stack_.pop_back();
        continue;
      }
      Child& c = top.children[top.next++];
      if (c.is_dir) {
        std::string rel = top.rel + c.name;
        struct stat st = c.st;
        SHARDSET_RETURN_IF_ERROR(PushDir(rel, st));
        continue;
      }
      file_rel_ = top.rel + c.name;
      file_dir_ = top.dir;
      file_name_ = c.name;
      file_size_ = c.size;
      return true;
    }
    return false;
  }

  std::string root_;
  bool skip_unreadable_;
  WarnFn warn_;
  std::vector<std::string>* skipped_;
  std::vector<Frame> stack_;
  bool have_file_ = false;
  std::string file_rel_;
  std::shared_ptr<const DirHandle> file_dir_;
  std::string file_name_;
  uint64_t file_size_ = 0;
};

// Samples of an existing shard or archive, with their bytes copied out.
class ShardSource : public SampleSource {
 public:
  explicit ShardSource(std::unique_ptr<Dataset> ds) : ds_(std::move(ds)) {}
  Result<bool> Next(PendingSample* out) override {
    if (next_ >= ds_->num_samples()) return false;
    Sample s;
    SHARDSET_RETURN_IF_ERROR(ds_->Read(next_++, &s));
    out->key = s.key;
    out->fields.clear();
    for (const Field& f : s.fields) {
      PendingField pf;
      pf.name = f.name;
      pf.inline_data = true;
      pf.data = f.data;
      pf.flags = f.flags;
      out->fields.push_back(std::move(pf));
    }
    return true;
  }

 private:
  std::unique_ptr<Dataset> ds_;
  uint64_t next_ = 0;
};

}  // namespace

Result<std::unique_ptr<SampleSource>> OpenSource(const std::string& path,
                                                 const ReadOptions& read, bool skip_unreadable,
                                                 WarnFn warn, std::vector<std::string>* skipped) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    if (e == ENOENT) return Status::NotFound(fmt::format("{}: no such file or folder", path));
    return Status::FromErrno(path, e);
  }
  if (S_ISDIR(st.st_mode) && !PathExists(JoinPath(path, kManifestName))) {
    auto src = std::make_unique<TreeSource>(path, skip_unreadable, std::move(warn), skipped);
    SHARDSET_RETURN_IF_ERROR(src->Init());
    return std::unique_ptr<SampleSource>(std::move(src));
  }
  SHARDSET_ASSIGN_OR_RETURN(auto ds, Dataset::Open(path, read));
  return std::unique_ptr<SampleSource>(new ShardSource(std::move(ds)));
}

DirHandle::~DirHandle() { ::close(fd_); }

Result<std::string> ReadSourceFile(const PendingField& field) {
  auto fail = [&](int e) {
    return Status::FromErrno(EscapeForDisplay(JoinPath(field.dir->path(), field.file)), e);
  };
  int fd = ::openat(field.dir->fd(), field.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno);
  // One read of size+1 bytes normally returns the whole file and proves it
  // did not grow since it was listed; a file that changed size is read to
  // its end, whatever that is now.
  uint64_t size = field.size;
  if (size == kUnknownSize) {
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int e = errno;
      ::close(fd);
      return fail(e);
    }
    size = static_cast<uint64_t>(st.st_size);
  }
  std::string data;
  data.resize(size + 1);
  uint64_t got = 0;
  for (;;) {
    if (got == data.size()) data.resize(data.size() + 4096 + data.size() / 2);
    ssize_t r = ::read(fd, data.data() + got, data.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return fail(e);
    }
    got += static_cast<uint64_t>(r);
    if (r == 0 || got == size) break;
  }
  ::close(fd);
  data.resize(got);
  return data;
}

}  // namespace shardset
