// The FUSE side of `shardset mount` (docs/mount.md): libfuse3's high-level,
// path-based API over a MountTree, served by several threads. Everything
// but reads is answered from the tree; a read opens the sample once (its
// checksum checked) and serves byte ranges of it until the file is closed.
#define FUSE_USE_VERSION 35
#include <fuse3/fuse.h>

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>

#include <fmt/format.h>

#include "base/file.h"
#include "base/strings.h"
#include "mount/mount_tree.h"
#include "shardset/mount.h"

extern char** environ;

namespace shardset {
namespace {

constexpr const char* kFuseDevice = "/dev/fuse";
// What the mount table shows as its type (FUSE's subtype): "fuse.shardset".
constexpr const char* kFsType = "fuse.shardset";
// The tree never changes while mounted: the kernel may keep names,
// attributes and pages for as long as it likes.
constexpr double kCacheSeconds = 86400;

struct Server {
  std::unique_ptr<MountTree> tree;
  bool foreground = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Fields up to this size are copied when opened, so reads never touch the
// shard's map again: a shard cut short while the file is open then cannot
// fault the server. Larger ones are read from the map, each read after a
// CheckShard (docs/mount.md "When things go wrong").
constexpr uint64_t kCopyLimit = uint64_t{64} << 20;

// The sample is read at the first read(), not at open: with the kernel
// keeping pages across opens (keep_cache), re-opening a file whose pages are
// cached then costs one stat of its shard, not a read and checksum of the
// sample.
struct OpenFile {
  uint32_t node = 0;
  std::mutex mu;
  bool loaded = false;
  Status status;
  Sample sample;
  std::string copy;
  std::string_view data;
  bool mapped = false;  // data views the shard's map (fields over kCopyLimit)
};

Status Load(const Server& srv, OpenFile* f) {
  std::lock_guard<std::mutex> lock(f->mu);
  if (f->loaded) return f->status;
  f->loaded = true;
  Result<std::string_view> data = srv.tree->OpenFile(f->node, &f->sample);
  if (!data.ok()) {
    f->status = data.status();
    return f->status;
  }
  f->data = *data;
  if (data->size() <= kCopyLimit) {
    f->copy.assign(*data);
    f->data = f->copy;
    f->sample = Sample();
  } else {
    f->mapped = true;
  }
  return Status::OK();
}

Server* Self() { return static_cast<Server*>(fuse_get_context()->private_data); }

// Errors of reads: to stderr in the foreground (the background server has
// no terminal); the caller gets EIO.
int Fail(const Status& s) {
  if (Self()->foreground) std::fprintf(stderr, "shardset mount: %s\n", s.message().c_str());
  return -EIO;
}

void FillStat(const Server& srv, uint32_t id, struct stat* st) {
  const MountTree::Node& n = srv.tree->node(id);
  std::memset(st, 0, sizeof *st);
  st->st_ino = id + 1;
  st->st_uid = srv.uid;
  st->st_gid = srv.gid;
  if (n.is_dir) {
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2 + n.subdirs;
    st->st_size = 4096;
  } else {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = static_cast<off_t>(n.size);
    st->st_blocks = static_cast<blkcnt_t>((n.size + 511) / 512);
  }
  st->st_blksize = 128 * 1024;
  st->st_mtim.tv_sec = st->st_atim.tv_sec = st->st_ctim.tv_sec = n.mtime;
}

void* Init(struct fuse_conn_info*, struct fuse_config* cfg) {
  cfg->use_ino = 1;
  cfg->kernel_cache = 1;
  cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = kCacheSeconds;
  return fuse_get_context()->private_data;
}

int GetAttr(const char* path, struct stat* st, struct fuse_file_info*) {
  Server* srv = Self();
  const uint32_t id = srv->tree->Lookup(path);
  if (id == MountTree::kNoNode) return -ENOENT;
  FillStat(*srv, id, st);
  return 0;
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, struct fuse_file_info*,
            enum fuse_readdir_flags flags) {
  Server* srv = Self();
  const MountTree& t = *srv->tree;
  const uint32_t id = t.Lookup(path);
  if (id == MountTree::kNoNode) return -ENOENT;
  const MountTree::Node& dir = t.node(id);
  if (!dir.is_dir) return -ENOTDIR;
  fill(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  fill(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  const bool plus = flags & FUSE_READDIR_PLUS;
  struct stat st;
  std::string name;
  const uint32_t* kids = t.listing(id);
  for (uint64_t i = 0; i < dir.size; ++i) {
    name.assign(t.name(t.node(kids[i])));
    if (plus) FillStat(*srv, kids[i], &st);
    if (fill(buf, name.c_str(), plus ? &st : nullptr, 0,
             plus ? FUSE_FILL_DIR_PLUS : static_cast<fuse_fill_dir_flags>(0)) != 0) {
      return -ENOMEM;  // the reply buffer is full; libfuse grows it in offset-0 mode
    }
  }
  return 0;
}

int Open(const char* path, struct fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) return -EROFS;
  Server* srv = Self();
  const uint32_t id = srv->tree->Lookup(path);
  if (id == MountTree::kNoNode) return -ENOENT;
  if (srv->tree->node(id).is_dir) return -EISDIR;
  // A shard deleted or cut short fails the open itself.
  if (Status s = srv->tree->CheckShard(id); !s.ok()) return Fail(s);
  auto file = std::make_unique<OpenFile>();
  file->node = id;
  fi->fh = reinterpret_cast<uint64_t>(file.release());
  fi->keep_cache = 1;
  return 0;
}

int Read(const char*, char* buf, size_t size, off_t offset, struct fuse_file_info* fi) {
  OpenFile* f = reinterpret_cast<OpenFile*>(fi->fh);
  const Server& srv = *Self();
  if (offset < 0) return -EINVAL;
  if (static_cast<uint64_t>(offset) >= srv.tree->node(f->node).size) return 0;
  if (Status s = Load(srv, f); !s.ok()) return Fail(s);
  if (static_cast<uint64_t>(offset) >= f->data.size()) return 0;
  if (f->mapped) {
    if (Status s = srv.tree->CheckShard(f->node); !s.ok()) return Fail(s);
  }
  const size_t n = std::min<uint64_t>({size, f->data.size() - offset, INT_MAX});
  std::memcpy(buf, f->data.data() + offset, n);
  return static_cast<int>(n);
}

int Release(const char*, struct fuse_file_info* fi) {
  delete reinterpret_cast<OpenFile*>(fi->fh);
  return 0;
}

int StatFs(const char*, struct statvfs* st) {
  const MountTree& t = *Self()->tree;
  std::memset(st, 0, sizeof *st);
  st->f_bsize = st->f_frsize = 4096;
  st->f_blocks = (t.total_bytes() + 4095) / 4096;
  st->f_files = t.num_nodes();
  st->f_namemax = 255;
  st->f_flag = ST_RDONLY;
  return 0;
}

// Every change is refused; the mount is also made with "ro", so the kernel
// refuses most of them before they reach us.
int ReadOnly() { return -EROFS; }
int RoPath(const char*) { return ReadOnly(); }
int RoPathMode(const char*, mode_t) { return ReadOnly(); }
int RoTwo(const char*, const char*) { return ReadOnly(); }
int RoRename(const char*, const char*, unsigned) { return ReadOnly(); }
int RoMknod(const char*, mode_t, dev_t) { return ReadOnly(); }
int RoChmod(const char*, mode_t, struct fuse_file_info*) { return ReadOnly(); }
int RoChown(const char*, uid_t, gid_t, struct fuse_file_info*) { return ReadOnly(); }
int RoTruncate(const char*, off_t, struct fuse_file_info*) { return ReadOnly(); }
int RoCreate(const char*, mode_t, struct fuse_file_info*) { return ReadOnly(); }
int RoWrite(const char*, const char*, size_t, off_t, struct fuse_file_info*) { return ReadOnly(); }
int RoUtimens(const char*, const struct timespec[2], struct fuse_file_info*) { return ReadOnly(); }
int RoSetXattr(const char*, const char*, const char*, size_t, int) { return ReadOnly(); }
int RoRemoveXattr(const char*, const char*) { return ReadOnly(); }
int RoFallocate(const char*, int, off_t, off_t, struct fuse_file_info*) { return ReadOnly(); }

struct fuse_operations Operations() {
  struct fuse_operations ops;
  std::memset(&ops, 0, sizeof ops);
  ops.init = Init;
  ops.getattr = GetAttr;
  ops.readdir = ReadDir;
  ops.open = Open;
  ops.read = Read;
  ops.release = Release;
  ops.statfs = StatFs;
  ops.mknod = RoMknod;
  ops.mkdir = RoPathMode;
  ops.unlink = RoPath;
  ops.rmdir = RoPath;
  ops.symlink = RoTwo;
  ops.rename = RoRename;
  ops.link = RoTwo;
  ops.chmod = RoChmod;
  ops.chown = RoChown;
  ops.truncate = RoTruncate;
  ops.write = RoWrite;
  ops.setxattr = RoSetXattr;
  ops.removexattr = RoRemoveXattr;
  ops.create = RoCreate;
  ops.utimens = RoUtimens;
  ops.fallocate = RoFallocate;
  return ops;
}

// The mount table's entry for `path` (absolute, resolved): its type, or ""
// when nothing is mounted there. Fields of /proc/self/mountinfo escape
// spaces and the like as \ooo.
std::string MountedType(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  auto unescape = [](std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 3 < s.size()) {
        out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
        i += 3;
      } else {
        out += s[i];
      }
    }
    return out;
  };
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options... - fstype source super
    std::string_view fields[5];
    std::string_view rest = line;
    for (int i = 0; i < 5; ++i) {
      const size_t sp = rest.find(' ');
      fields[i] = rest.substr(0, sp);
      rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    }
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos || unescape(fields[4]) != path) continue;
    std::string_view after = std::string_view(line).substr(dash + 3);
    found = std::string(after.substr(0, after.find(' ')));  // the last mount there wins
  }
  return found;
}

std::string Resolve(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (real == nullptr) return path;
  std::string out(real);
  std::free(real);
  return out;
}

Status Busy(const std::string& mountpoint) {
  return Status::IOError(fmt::format(
      "{}: busy: a process still has a file or folder open in it (see fuser -vm {}); close "
      "it, or pass --lazy to detach the mount now and let it finish when no longer used",
      mountpoint, mountpoint));
}

}  // namespace

Status CheckFuse() {
  if (::access(kFuseDevice, F_OK) != 0) {
    return Status::NotSupported(fmt::format(
        "{} is missing: this machine (or container) has no FUSE; load the kernel module "
        "(modprobe fuse), run the container with --device /dev/fuse --cap-add SYS_ADMIN, or use "
        "shardset link --mode copy / shardset extract instead",
        kFuseDevice));
  }
  if (::access(kFuseDevice, R_OK | W_OK) != 0) {
    return Status::NotSupported(fmt::format(
        "{}: no permission to use it ({}); add yourself to the group that owns it, or mount as "
        "root",
        kFuseDevice, std::strerror(errno)));
  }
  return Status::OK();
}

Status Mount(const View& view, const std::string& mountpoint_arg, const MountOptions& options) {
  SHARDSET_RETURN_IF_ERROR(CheckFuse());
  const std::string mountpoint = Resolve(mountpoint_arg);
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return Status::NotFound(
          fmt::format("{}: no such folder; create the mountpoint first (mkdir)", mountpoint_arg));
    }
    return Status::FromErrno(mountpoint_arg, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("{}: not a folder", mountpoint_arg));
  }
  const std::string type = MountedType(mountpoint);
  if (!type.empty() && type.rfind("fuse", 0) == 0) {
    return Status::AlreadyExists(fmt::format(
        "{}: something is already mounted there ({}); shardset umount it first, or choose "
        "another folder",
        mountpoint_arg, type));
  }
  {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(mountpoint.c_str()), ::closedir);
    if (!dir) return Status::FromErrno(mountpoint_arg, errno);
    while (struct dirent* e = ::readdir(dir.get())) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
        return Status::InvalidArgument(fmt::format(
            "{}: not empty; a mount would hide its files: mount on an empty folder",
            mountpoint_arg));
      }
    }
  }

  Server srv;
  MountTree::Options tree_options;
  tree_options.layout = options.layout;
  tree_options.label_field = options.label_field;
  tree_options.progress = options.progress;
  SHARDSET_ASSIGN_OR_RETURN(srv.tree, MountTree::Build(view, tree_options, mountpoint));
  srv.foreground = options.foreground;
  srv.uid = ::getuid();
  srv.gid = ::getgid();

  std::string opts = "ro,default_permissions,fsname=shardset,subtype=shardset";
  if (options.allow_other) opts += ",allow_other";
  struct fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  fuse_opt_add_arg(&args, "shardset");
  fuse_opt_add_arg(&args, "-o");
  fuse_opt_add_arg(&args, opts.c_str());
  const struct fuse_operations ops = Operations();
  struct fuse* fuse = fuse_new(&args, &ops, sizeof ops, &srv);
  fuse_opt_free_args(&args);
  if (fuse == nullptr) {
    return Status::IOError(fmt::format("{}: libfuse refused the mount options ({})",
                                       mountpoint_arg, opts));
  }
  std::unique_ptr<struct fuse, void (*)(struct fuse*)> guard(fuse, fuse_destroy);
  if (fuse_mount(fuse, mountpoint.c_str()) != 0) {
    return Status::IOError(fmt::format(
        "{}: cannot mount (the reason is on the line above); mounting needs root or the "
        "setuid fusermount3 (Debian's fuse3 package)",
        mountpoint_arg));
  }
  if (options.mounted) options.mounted(srv.tree->num_files(), srv.tree->total_bytes());
  struct fuse_session* session = fuse_get_session(fuse);
  if (fuse_set_signal_handlers(session) != 0) {
    fuse_unmount(fuse);
    return Status::IOError("cannot install the signal handlers that unmount on SIGINT/SIGTERM");
  }
  // In the background, the parent exits here with status 0 once the child
  // runs: the mount already exists, requests wait for the loop.
  if (!options.foreground) fuse_daemonize(/*foreground=*/0);
  struct fuse_loop_config loop;
  loop.clone_fd = 0;
  loop.max_idle_threads = options.threads;
  const int rc = fuse_loop_mt(fuse, &loop);
  fuse_remove_signal_handlers(session);
  fuse_unmount(fuse);
  if (rc != 0 && rc != SIGINT && rc != SIGTERM && rc != SIGHUP) {
    return Status::IOError(fmt::format("{}: the FUSE loop stopped: {}", mountpoint_arg,
                                       std::strerror(rc < 0 ? -rc : rc)));
  }
  return Status::OK();
}

Status Unmount(const std::string& mountpoint_arg, bool lazy) {
  const std::string mountpoint = Resolve(mountpoint_arg);
  const std::string type = MountedType(mountpoint);
  if (type != kFsType) {
    return Status::InvalidArgument(fmt::format(
        "{}: not a shardset mount ({}); see the mounts with: grep {} /proc/mounts",
        mountpoint_arg, type.empty() ? "nothing is mounted there" : "it is " + type, kFsType));
  }
  if (::geteuid() == 0) {
    if (::umount2(mountpoint.c_str(), lazy ? MNT_DETACH : 0) == 0) return Status::OK();
    if (errno == EBUSY) return Busy(mountpoint_arg);
    return Status::FromErrno(fmt::format("{}: cannot unmount", mountpoint_arg), errno);
  }
  // Users unmount through the setuid helper, as they mounted.
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  std::string u = lazy ? "-uz" : "-u";
  char* argv[] = {const_cast<char*>("fusermount3"), u.data(), const_cast<char*>(mountpoint.c_str()),
                  nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, "fusermount3", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(err[1]);
  std::string message;
  char buf[512];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;) message.append(buf, n);
  ::close(err[0]);
  if (rc != 0) {
    return Status::NotSupported(fmt::format(
        "{}: cannot run fusermount3 ({}); install Debian's fuse3 package", mountpoint_arg,
        std::strerror(rc)));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::OK();
  if (message.find("busy") != std::string::npos) return Busy(mountpoint_arg);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return Status::IOError(fmt::format("{}: cannot unmount: {}", mountpoint_arg, message));
}

}  // namespace shardset
