#include "mount/mount_tree.h"

#include <sys/stat.h>

#include <algorithm>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "base/strings.h"
#include "view/tree_layout.h"

namespace shardset {
namespace {

constexpr uint64_t kProgressEvery = 4096;

}  // namespace

Result<std::unique_ptr<MountTree>> MountTree::Build(const View& view, const Options& options,
                                                    const std::string& root) {
  SHARDSET_ASSIGN_OR_RETURN(TreeLayout layout,
                            TreeLayout::Make(view, options.layout, options.label_field, root));
  std::unique_ptr<MountTree> t(new MountTree(view));
  struct stat st;
  const int64_t folder_time =
      ::stat(view.target().c_str(), &st) == 0 ? int64_t{st.st_mtim.tv_sec} : 0;

  // While building, a folder's `pos` is its index in `kids`.
  std::vector<std::vector<uint32_t>> kids(1);
  std::unordered_map<std::string, uint32_t> folders{{"", kRoot}};
  t->nodes_.push_back(Node{0, 0, 0, true, 0, 0, 0, folder_time});
  auto add_node = [&](uint32_t parent, std::string_view name, Node n) -> Result<uint32_t> {
    if (t->nodes_.size() >= kNoNode) {
      return Status::ResourceExhausted(fmt::format(
          "{}: {} has more than {} files and folders, more than one mount serves; mount a "
          "view of part of it",
          root, view.target(), kNoNode - 1));
    }
    n.name_offset = t->names_.size();
    n.name_size = static_cast<uint32_t>(name.size());
    t->names_.append(name);
    const uint32_t id = static_cast<uint32_t>(t->nodes_.size());
    t->nodes_.push_back(n);
    kids[t->nodes_[parent].pos].push_back(id);
    return id;
  };
  // The folder `dir` ("a/b"), made with its parents when new.
  auto folder = [&](std::string_view dir) -> Result<uint32_t> {
    auto it = folders.find(std::string(dir));
    if (it != folders.end()) return it->second;
    uint32_t parent = kRoot;
    size_t start = 0;
    while (start < dir.size()) {
      const size_t slash = std::min(dir.find('/', start), dir.size());
      const std::string prefix(dir.substr(0, slash));
      auto found = folders.find(prefix);
      if (found != folders.end()) {
        parent = found->second;
      } else {
        Node n;
        n.is_dir = true;
        n.pos = kids.size();
        n.mtime = folder_time;
        SHARDSET_ASSIGN_OR_RETURN(uint32_t id,
                                  add_node(parent, dir.substr(start, slash - start), n));
        kids.emplace_back();
        ++t->nodes_[parent].subdirs;
        folders.emplace(prefix, id);
        parent = id;
      }
      start = slash + 1;
    }
    return parent;
  };

  SampleStat stat;
  Sample sample;
  std::vector<std::string_view> names;
  std::vector<size_t> which;  // names[i] is stat.fields[which[i]]
  std::vector<TreeLayout::File> files;
  const bool imagefolder = options.layout == LinkLayout::kImageFolder;
  for (uint64_t pos = 0; pos < view.num_samples(); ++pos) {
    SHARDSET_RETURN_IF_ERROR(view.Stat(pos, &stat));
    names.clear();
    which.clear();
    const FieldStat* label_field = nullptr;
    for (size_t i = 0; i < stat.fields.size(); ++i) {
      const FieldStat& f = stat.fields[i];
      if (f.name == options.label_field) label_field = &f;
      if (f.flags & kFieldDerived) continue;
      names.push_back(f.name);
      which.push_back(i);
    }
    std::string label;
    if (imagefolder) {
      if (label_field != nullptr && label_field->size > kMaxLabelBytes) {
        return Status::InvalidArgument(fmt::format(
            "{}: sample {} (key '{}'): its '{}' field is {} bytes, too long for a class folder "
            "name; choose the label field with --label-field",
            view.target(), pos, EscapeForDisplay(stat.key), EscapeForDisplay(options.label_field),
            label_field->size));
      }
      if (label_field != nullptr) SHARDSET_RETURN_IF_ERROR(view.Read(pos, &sample));
      if (label_field == nullptr) {
        sample.key = stat.key;
        sample.ordinal = pos;
        sample.fields.clear();
      }
      Result<std::string> l = SampleLabel(sample, options.label_field);
      if (!l.ok()) return l.status().WithPrefix(view.target());
      label = std::move(*l);
    }
    SHARDSET_RETURN_IF_ERROR(layout.Place(pos, stat.key, names, label, &files));
    for (const TreeLayout::File& f : files) {
      const size_t slash = f.rel.rfind('/');
      const std::string_view rel = f.rel;
      SHARDSET_ASSIGN_OR_RETURN(
          uint32_t dir, folder(slash == std::string::npos ? "" : rel.substr(0, slash)));
      const FieldStat& fs = stat.fields[which[f.field]];
      Node n;
      n.field = static_cast<uint32_t>(which[f.field]);
      n.pos = pos;
      n.size = fs.size;
      n.mtime = fs.mtime;
      SHARDSET_RETURN_IF_ERROR(
          add_node(dir, slash == std::string::npos ? rel : rel.substr(slash + 1), n).status());
      ++t->num_files_;
      t->total_bytes_ += fs.size;
    }
    if (options.progress && (pos + 1) % kProgressEvery == 0) options.progress(pos + 1);
  }
  if (options.progress) options.progress(view.num_samples());

  // Children sorted by name, for Lookup's binary search and a stable
  // readdir; one name twice in a folder is two samples claiming one path.
  t->children_.reserve(t->nodes_.size() - 1);
  t->listing_.reserve(t->nodes_.size() - 1);
  for (Node& n : t->nodes_) {
    if (!n.is_dir) continue;
    std::vector<uint32_t>& list = kids[n.pos];
    t->listing_.insert(t->listing_.end(), list.begin(), list.end());
    std::sort(list.begin(), list.end(),
              [&](uint32_t a, uint32_t b) { return t->name(t->nodes_[a]) < t->name(t->nodes_[b]); });
    for (size_t i = 1; i < list.size(); ++i) {
      const Node& a = t->nodes_[list[i - 1]];
      const Node& b = t->nodes_[list[i]];
      if (t->name(a) != t->name(b)) continue;
      auto what = [&](const Node& x) {
        return x.is_dir ? std::string("a folder of other samples")
                        : fmt::format("sample {}", x.pos);
      };
      return Status::InvalidArgument(fmt::format(
          "{}: '{}' is claimed by {} and by {} of {} (keys that differ only in their field "
          "split, or a file and a folder with one name); rename one of them",
          root, EscapeForDisplay(t->name(a)), what(a), what(b), view.target()));
    }
    n.pos = t->children_.size();
    n.size = list.size();
    t->children_.insert(t->children_.end(), list.begin(), list.end());
    std::vector<uint32_t>().swap(list);
  }
  return t;
}

uint32_t MountTree::Lookup(std::string_view path) const {
  uint32_t cur = kRoot;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view part = path.substr(start, slash - start);
    start = slash + 1;
    if (part.empty()) continue;
    const Node& dir = nodes_[cur];
    if (!dir.is_dir) return kNoNode;
    const uint32_t* begin = children(cur);
    const uint32_t* end = begin + dir.size;
    const uint32_t* it = std::lower_bound(
        begin, end, part, [&](uint32_t id, std::string_view p) { return name(nodes_[id]) < p; });
    if (it == end || name(nodes_[*it]) != part) return kNoNode;
    cur = *it;
  }
  return cur;
}

Status MountTree::CheckShard(uint32_t id) const {
  const Node& n = nodes_[id];
  SHARDSET_ASSIGN_OR_RETURN(const ShardReader* shard, view_->ShardOf(n.pos));
  struct stat st;
  if (::stat(shard->path().c_str(), &st) != 0) {
    return Status::NotFound(fmt::format(
        "{}: sample {}: its shard {} is gone since it was mounted; restore it, or unmount",
        view_->target(), n.pos, shard->path()));
  }
  if (static_cast<uint64_t>(st.st_size) != shard->file_size()) {
    return Status::Corruption(fmt::format(
        "{}: sample {}: its shard {} changed size since it was mounted ({} -> {} bytes); "
        "restore it, or unmount and mount again",
        view_->target(), n.pos, shard->path(), shard->file_size(), st.st_size));
  }
  return Status::OK();
}

Result<std::string_view> MountTree::OpenFile(uint32_t id, Sample* sample) const {
  const Node& n = nodes_[id];
  SHARDSET_RETURN_IF_ERROR(CheckShard(id));
  SHARDSET_RETURN_IF_ERROR(view_->Read(n.pos, sample));
  if (n.field >= sample->fields.size() || sample->fields[n.field].data.size() != n.size) {
    return Status::Corruption(fmt::format(
        "{}: sample {} (key '{}') no longer has the fields it had when it was mounted; the "
        "source changed: unmount and mount again",
        view_->target(), n.pos, EscapeForDisplay(sample->key)));
  }
  return sample->fields[n.field].data;
}

}  // namespace shardset
