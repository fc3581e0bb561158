// `shardset link` and `shardset list` (docs/link.md).
//
// Link streams the view once, in order, and writes every file of the tree
// into a hidden temporary folder beside `out`, which is renamed to `out` only
// when the tree is complete (and synced), so `out` never shows half a tree
// and a failed run leaves nothing visible. Memory: one sample, one cached
// directory, and a set of 64-bit hashes of the names given out (16 bytes a
// sample at worst), which is how duplicates get distinct names.
#include "shardset/link.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "base/file.h"
#include "base/hash.h"
#include "base/strings.h"
#include "formats/sample_key.h"
#include "view/tree_layout.h"

namespace shardset {
namespace {

constexpr uint64_t kProgressEvery = 4096;
constexpr const char* kLinkInstead = "use --mode copy, or shardset mount";

std::string SampleName(const View& view, uint64_t pos, std::string_view key) {
  return fmt::format("{}: sample {} (key '{}')", view.target(), pos, EscapeForDisplay(key));
}

// The sources the view's entries use (a source selected 0 times, such as the
// 0% step of a sweep, never stops a symlink tree).
std::vector<bool> UsedSources(const View& view) {
  std::vector<bool> used(view.num_sources(), false);
  size_t left = view.num_sources();
  for (uint64_t pos = 0; pos < view.num_samples() && left > 0; ++pos) {
    const uint32_t s = view.entry(pos).source;
    if (s < used.size() && !used[s]) {
      used[s] = true;
      --left;
    }
  }
  return used;
}

std::string FormatsOf(const Dataset& ds) {
  std::string out;
  for (const ManifestShard& sh : ds.manifest().shards) {
    const std::string_view name = FormatName(sh.format);
    if (sh.format == ShardFormat::kFolder || out.find(name) != std::string::npos) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// Packed sources have no file per field: refused before anything is made
// when every shard of a used source is packed. A source mixing folder and
// packed shards is refused at its first packed sample (FieldFiles).
// Link refuses with InvalidArgument (a mode the sources cannot serve), list
// with NotSupported (the sources hold no files to list).
Status CheckFileSources(const View& view, Status::Code code, std::string_view what,
                        std::string_view instead) {
  const std::vector<bool> used = UsedSources(view);
  for (size_t i = 0; i < view.num_sources(); ++i) {
    if (!used[i]) continue;
    const Dataset& ds = view.dataset(i);
    bool any_folder = false;
    for (const ManifestShard& sh : ds.manifest().shards) {
      if (sh.format == ShardFormat::kFolder) any_folder = true;
    }
    if (!any_folder && ds.num_shards() > 0) {
      const std::string& name = view.source(i).name;
      std::string msg = fmt::format(
          "{}: source '{}'{} is packed ({} shards): its samples have no files of their own {}; "
          "{}",
          view.target(), EscapeForDisplay(name),
          ds.target() == name ? "" : fmt::format(" ({})", ds.target()), FormatsOf(ds), what,
          instead);
      return code == Status::Code::kNotSupported ? Status::NotSupported(std::move(msg))
                                                 : Status::InvalidArgument(std::move(msg));
    }
  }
  return Status::OK();
}

Result<std::vector<FieldFile>> FilesOf(const View& view, uint64_t pos, std::string_view key,
                                       Status::Code code, std::string_view what,
                                       std::string_view instead) {
  Result<std::vector<FieldFile>> files = view.FieldFiles(pos);
  if (!files.ok() && files.status().code() == Status::Code::kNotSupported) {
    std::string msg =
        fmt::format("{} is in a packed shard ({}): it has no files of its own {}; {}",
                    SampleName(view, pos, key), files.status().message(), what, instead);
    return code == Status::Code::kNotSupported ? Status::NotSupported(std::move(msg))
                                               : Status::InvalidArgument(std::move(msg));
  }
  return files;
}

// The tree under construction: a fresh folder only this run writes to.
// Folders are opened component by component with O_NOFOLLOW, and files are
// created exclusively, so nothing is ever written through a link or over
// another file. The folder of the last file is kept open: consecutive
// samples mostly share it.
class Tree {
 public:
  Tree(int root_fd, std::string out) : root_(root_fd), out_(std::move(out)) {}

  // `rel` is a plain relative path (checked by the caller).
  Status Put(std::string_view rel, LinkMode mode, const std::string& source_path,
             std::string_view data, const std::string& sample) {
    const size_t slash = rel.rfind('/');
    const std::string_view dir = slash == std::string_view::npos ? "" : rel.substr(0, slash);
    const std::string name(slash == std::string_view::npos ? rel : rel.substr(slash + 1));
    SHARDSET_ASSIGN_OR_RETURN(int dfd, Dir(dir, rel, sample));
    const std::string shown = EscapeForDisplay(JoinPath(out_, rel));
    int rc = 0;
    switch (mode) {
      case LinkMode::kSymlink:
        rc = ::symlinkat(source_path.c_str(), dfd, name.c_str());
        break;
      case LinkMode::kHardlink:
        // AT_SYMLINK_FOLLOW: a source file reached through a symlink (the
        // folder walk follows them) is linked as the file, not as the link.
        rc = ::linkat(AT_FDCWD, source_path.c_str(), dfd, name.c_str(), AT_SYMLINK_FOLLOW);
        break;
      case LinkMode::kCopy: {
        FdCloser fd(::openat(dfd, name.c_str(),
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (fd.get() < 0) {
          rc = -1;
          break;
        }
        SHARDSET_RETURN_IF_ERROR(WriteAll(fd.get(), data, shown));
        if (::close(fd.release()) != 0) return Status::FromErrno(shown, errno);
        return Status::OK();
      }
    }
    if (rc == 0) return Status::OK();
    const int e = errno;
    if (e == EEXIST) {
      return Status::InvalidArgument(fmt::format(
          "{}: {} maps to {}, which another sample's file already took (keys that differ only "
          "in their field split, or a file and a folder with one name); rename one of them",
          out_, sample, shown));
    }
    if (mode == LinkMode::kHardlink && (e == EXDEV || e == EPERM || e == EMLINK)) {
      return Status::NotSupported(fmt::format(
          "{}: cannot hard-link {} as {}: {}; use --mode symlink or --mode copy", sample,
          EscapeForDisplay(source_path), shown,
          e == EXDEV ? "they are on different file systems" : std::strerror(e)));
    }
    if (mode == LinkMode::kHardlink && e == ENOENT) {
      return Status::NotFound(fmt::format(
          "{}: {} is gone (the source changed since it was indexed); re-run shardset dataset "
          "create, or check it with shardset verify",
          sample, EscapeForDisplay(source_path)));
    }
    return Status::FromErrno(fmt::format("{}: {}: cannot create", sample, shown), e);
  }

 private:
  Result<int> Dir(std::string_view dir, std::string_view rel, const std::string& sample) {
    if (dir.empty()) return root_;
    if (cached_fd_.get() >= 0 && dir == cached_) return cached_fd_.get();
    FdCloser cur(::fcntl(root_, F_DUPFD_CLOEXEC, 0));
    if (cur.get() < 0) return Status::FromErrno(out_, errno);
    size_t start = 0;
    while (start <= dir.size()) {
      const size_t slash = std::min(dir.find('/', start), dir.size());
      const std::string part(dir.substr(start, slash - start));
      if (::mkdirat(cur.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
        return Status::FromErrno(
            fmt::format("{}: cannot create folder", EscapeForDisplay(JoinPath(out_, dir))), errno);
      }
      int next = ::openat(cur.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) {
        const int e = errno;
        if (e == ELOOP || e == ENOTDIR) {
          return Status::InvalidArgument(fmt::format(
              "{}: {}: '{}' on the way to {} is already a file of another sample (a file name "
              "that is also another key's folder); rename one of them",
              out_, sample, EscapeForDisplay(part), EscapeForDisplay(rel)));
        }
        return Status::FromErrno(EscapeForDisplay(JoinPath(out_, dir)), e);
      }
      cur.Reset(next);
      start = slash + 1;
    }
    cached_.assign(dir);
    cached_fd_.Reset(cur.release());
    return cached_fd_.get();
  }

  int root_;
  std::string out_;
  std::string cached_;
  FdCloser cached_fd_{-1};
};

// Renames the finished tree to `out` unless something appeared there
// meanwhile (renameat2 NOREPLACE; a file system without it gets a check).
Status Publish(const std::string& tmp, const std::string& out) {
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, out.c_str(), RENAME_NOREPLACE) == 0) {
    return Status::OK();
  }
  int e = errno;
  if (e == EINVAL || e == ENOSYS) {
    struct stat st;
    if (::lstat(out.c_str(), &st) == 0) {
      e = EEXIST;
    } else if (::rename(tmp.c_str(), out.c_str()) == 0) {
      return Status::OK();
    } else {
      e = errno;
    }
  }
  if (e == EEXIST || e == ENOTEMPTY) {
    return Status::AlreadyExists(fmt::format(
        "{}: appeared while the tree was being built; remove it or choose another -o", out));
  }
  return Status::FromErrno(fmt::format("{}: cannot rename the finished tree to it", out), e);
}

std::string StripTrailingSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// One sample's files: (field name, source path or bytes).
struct Item {
  std::string name;
  std::string path;       // symlink/hardlink
  std::string_view data;  // copy
};

struct Builder {
  Builder(const View& v, const LinkOptions& o, Tree* t, TreeLayout l)
      : view(v), options(o), tree(t), layout(std::move(l)) {}

  const View& view;
  const LinkOptions& options;
  Tree* tree;
  TreeLayout layout;
  LinkResult result;
  std::vector<std::string_view> names;
  std::vector<TreeLayout::File> files;

  std::string_view ModeName() const {
    return options.mode == LinkMode::kSymlink ? "to symlink" : "to hard-link";
  }

  // The label of sample `pos` without reading its other fields: a label
  // file is read alone; a derived label (no file) needs the sample.
  Result<std::string> LinkedLabel(uint64_t pos, const std::string& key,
                                  const std::vector<FieldFile>& files, Sample* sample) {
    for (const FieldFile& f : files) {
      if (f.name != options.label_field) continue;
      if (f.path.empty()) {
        SHARDSET_RETURN_IF_ERROR(view.Read(pos, sample));
        return SampleLabel(*sample, options.label_field);
      }
      if (f.size > kMaxLabelBytes) {
        return Status::InvalidArgument(fmt::format(
            "{}: its '{}' field is {} bytes, too long for a class folder name; choose the label "
            "field with --label-field",
            SampleName(view, pos, key), EscapeForDisplay(options.label_field), f.size));
      }
      SHARDSET_ASSIGN_OR_RETURN(std::string bytes, ReadFile(f.path, kMaxLabelBytes));
      Sample one;
      one.ordinal = pos;
      one.key = key;
      one.fields.push_back(Field{f.name, bytes, f.flags});
      return SampleLabel(one, options.label_field);
    }
    Sample empty;
    empty.ordinal = pos;
    empty.key = key;
    return SampleLabel(empty, options.label_field).status().WithPrefix(view.target());
  }

  Status One(uint64_t pos, Sample* sample) {
    std::string key;
    std::vector<Item> items;
    std::string label;
    const bool imagefolder = options.layout == LinkLayout::kImageFolder;
    if (options.mode == LinkMode::kCopy) {
      SHARDSET_RETURN_IF_ERROR(view.Read(pos, sample));
      key = sample->key;
      for (const Field& f : sample->fields) {
        if (f.flags & kFieldDerived) continue;
        items.push_back(Item{std::string(f.name), {}, f.data});
      }
      if (imagefolder) {
        Result<std::string> l = SampleLabel(*sample, options.label_field);
        if (!l.ok()) return l.status().WithPrefix(view.target());
        label = std::move(*l);
      }
    } else {
      SHARDSET_ASSIGN_OR_RETURN(key, view.Key(pos));
      SHARDSET_ASSIGN_OR_RETURN(
          std::vector<FieldFile> field_files,
          FilesOf(view, pos, key, Status::Code::kInvalidArgument, ModeName(), kLinkInstead));
      for (FieldFile& f : field_files) {
        if ((f.flags & kFieldDerived) || f.path.empty()) continue;
        items.push_back(Item{f.name, std::move(f.path), {}});
      }
      if (imagefolder) {
        SHARDSET_ASSIGN_OR_RETURN(label, LinkedLabel(pos, key, field_files, sample));
      }
    }
    names.clear();
    for (const Item& it : items) names.push_back(it.name);
    SHARDSET_RETURN_IF_ERROR(layout.Place(pos, key, names, label, &files));
    const std::string shown = SampleName(view, pos, key);
    for (const TreeLayout::File& f : files) {
      const Item& it = items[f.field];
      SHARDSET_RETURN_IF_ERROR(tree->Put(f.rel, options.mode, it.path, it.data, shown));
      ++result.files;
      if (options.mode == LinkMode::kCopy) result.bytes_copied += it.data.size();
    }
    ++result.samples;
    return Status::OK();
  }
};

}  // namespace

Result<LinkMode> ParseLinkMode(std::string_view name) {
  if (name == "symlink") return LinkMode::kSymlink;
  if (name == "hardlink") return LinkMode::kHardlink;
  if (name == "copy") return LinkMode::kCopy;
  return Status::InvalidArgument(fmt::format(
      "unknown link mode '{}'; use symlink, hardlink or copy", EscapeForDisplay(name)));
}

Result<LinkLayout> ParseLinkLayout(std::string_view name) {
  if (name == "original") return LinkLayout::kOriginal;
  if (name == "imagefolder") return LinkLayout::kImageFolder;
  if (name == "yolo") return LinkLayout::kYolo;
  return Status::InvalidArgument(fmt::format(
      "unknown link layout '{}'; use original, imagefolder or yolo", EscapeForDisplay(name)));
}

Result<LinkResult> Link(const View& view, const std::string& out_arg, const LinkOptions& options) {
  const std::string out = StripTrailingSlashes(out_arg);
  if (out.empty()) return Status::InvalidArgument("link: the output folder (-o) is empty");
  struct stat st;
  if (::lstat(out.c_str(), &st) == 0) {
    return Status::AlreadyExists(
        fmt::format("{}: exists; remove it or choose another -o", out));
  }
  if (options.mode != LinkMode::kCopy) {
    SHARDSET_RETURN_IF_ERROR(CheckFileSources(
        view, Status::Code::kInvalidArgument,
        options.mode == LinkMode::kSymlink ? "to symlink" : "to hard-link", kLinkInstead));
  }
  SHARDSET_ASSIGN_OR_RETURN(TreeLayout layout,
                            TreeLayout::Make(view, options.layout, options.label_field, out));

  // The temporary tree: beside `out` (one file system, so the rename is
  // atomic), hidden, and named so a killed run's leftover is recognisable.
  const std::string parent = DirName(out);
  const std::string base = BaseName(out);
  const std::string tmp = JoinPath(
      parent, fmt::format("{}{}.{}", kTempPrefix, base.substr(0, 200), ::getpid()));
  if (::mkdir(tmp.c_str(), 0755) != 0) {
    const int e = errno;
    if (e == ENOENT) {
      return Status::NotFound(fmt::format(
          "{}: its folder {} does not exist; create it first", out, parent));
    }
    return Status::FromErrno(fmt::format("{}: cannot create the temporary tree {}", out, tmp), e);
  }
  auto discard = [&tmp](Status s) {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);  // best effort; never follows the links
    return s;
  };
  FdCloser root(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.get() < 0) return discard(Status::FromErrno(tmp, errno));

  Tree tree(root.get(), out);
  Builder b(view, options, &tree, std::move(layout));
  Sample sample;
  for (uint64_t pos = 0; pos < view.num_samples(); ++pos) {
    Status s = b.One(pos, &sample);
    if (!s.ok()) return discard(std::move(s));
    if (options.progress && (pos + 1) % kProgressEvery == 0) options.progress(pos + 1);
  }
  if (options.progress) options.progress(view.num_samples());

  if (options.sync) {
    // One syncfs for the whole tree instead of an fsync per file and folder
    // (tens of thousands of journal commits); it also flushes other dirty
    // data of that file system.
    if (::syncfs(root.get()) != 0) {
      return discard(Status::FromErrno(fmt::format("{}: syncfs", tmp), errno));
    }
  }
  root.Reset(-1);
  Status s = Publish(tmp, out);
  if (!s.ok()) return discard(std::move(s));
  if (options.sync) SHARDSET_RETURN_IF_ERROR(FsyncDir(parent));
  return b.result;
}

Result<uint64_t> WriteList(const View& view, const std::string& out, const ListOptions& options) {
  constexpr const char* kInstead =
      "use shardset link --mode copy to make files of them, then list those";
  SHARDSET_RETURN_IF_ERROR(
      CheckFileSources(view, Status::Code::kNotSupported, "to list", kInstead));
  SHARDSET_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, AtomicFile::Create(out));
  uint64_t lines = 0;
  for (uint64_t pos = 0; pos < view.num_samples(); ++pos) {
    SHARDSET_ASSIGN_OR_RETURN(std::string key, view.Key(pos));
    SHARDSET_ASSIGN_OR_RETURN(
        std::vector<FieldFile> files,
        FilesOf(view, pos, key, Status::Code::kNotSupported, "to list", kInstead));
    const FieldFile* chosen = nullptr;
    if (!options.field.empty()) {
      for (const FieldFile& f : files) {
        if (f.name == options.field) chosen = &f;
      }
      if (chosen == nullptr) {
        return Status::NotFound(fmt::format("{} has no field '{}'; choose one with --field",
                                            SampleName(view, pos, key),
                                            EscapeForDisplay(options.field)));
      }
    } else {
      for (const FieldFile& f : files) {
        if (chosen == nullptr && IsImageField(f.name) && !f.path.empty()) chosen = &f;
      }
      if (chosen == nullptr) {
        std::string names;
        size_t with_file = 0;
        for (const FieldFile& f : files) {
          if (f.path.empty() || (f.flags & kFieldDerived)) continue;
          ++with_file;
          chosen = &f;
          names += (names.empty() ? "" : ", ") + EscapeForDisplay(f.name);
        }
        if (with_file != 1) {
          return Status::InvalidArgument(fmt::format(
              "{} has no image field and {} fields with files ({}); choose one with --field",
              SampleName(view, pos, key), with_file, names));
        }
      }
    }
    if (chosen->path.empty()) {
      return Status::InvalidArgument(fmt::format(
          "{}: its field '{}' is derived (made by shardset, e.g. a label from the folder name) "
          "and has no file to list; choose another with --field",
          SampleName(view, pos, key), EscapeForDisplay(chosen->name)));
    }
    if (chosen->path.find_first_of("\n\r") != std::string::npos) {
      return Status::InvalidArgument(fmt::format(
          "{}: its file {} has a line break in its path, which a list file cannot hold; "
          "use shardset link instead",
          SampleName(view, pos, key), EscapeForDisplay(chosen->path)));
    }
    SHARDSET_RETURN_IF_ERROR(file->Append(chosen->path));
    SHARDSET_RETURN_IF_ERROR(file->Append("\n"));
    ++lines;
  }
  SHARDSET_RETURN_IF_ERROR(file->Commit(options.sync, /*overwrite=*/true));
  return lines;
}

}  // namespace shardset
