// The tree `shardset mount` serves: every file and folder of a view in a
// layout (docs/mount.md), built once at mount time from the index (sample
// keys, field names, sizes and times: ShardReader::Stat) and kept in memory,
// so lookups, stat and readdir never touch sample bytes. File bytes are read
// by OpenFile, one sample at a time, through the view.
//
// Memory: about 60 bytes per file and folder plus its name; a 1M-file view
// costs about 85 MiB. Thread-safe after Build (const only).
#ifndef SHARDSET_MOUNT_MOUNT_TREE_H_
#define SHARDSET_MOUNT_MOUNT_TREE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/link.h"
#include "shardset/status.h"
#include "shardset/view.h"

namespace shardset {

class MountTree {
 public:
  static constexpr uint32_t kRoot = 0;
  static constexpr uint32_t kNoNode = UINT32_MAX;

  struct Options {
    LinkLayout layout = LinkLayout::kOriginal;
    std::string label_field = "cls";
    // Called now and then with the samples placed so far.
    std::function<void(uint64_t)> progress;
  };

  struct Node {
    uint64_t name_offset = 0;  // into names_
    uint32_t name_size = 0;
    uint32_t field = 0;  // files: the field's index in the sample Read returns
    bool is_dir = false;
    uint32_t subdirs = 0;  // folders: how many children are folders
    // Files: the view position of the sample. Folders: the first child's
    // index in children_.
    uint64_t pos = 0;
    // Files: bytes. Folders: number of children.
    uint64_t size = 0;
    int64_t mtime = 0;  // unix seconds
  };

  // The tree of every sample of `view`; `root` names it in messages (the
  // mountpoint). InvalidArgument naming the sample when the layout cannot
  // place one or two samples claim one path (as `shardset link` refuses).
  static Result<std::unique_ptr<MountTree>> Build(const View& view, const Options& options,
                                                  const std::string& root);

  // The node at `path` ("/" or "/a/b"), or kNoNode.
  uint32_t Lookup(std::string_view path) const;
  const Node& node(uint32_t id) const { return nodes_[id]; }
  std::string_view name(const Node& n) const {
    return std::string_view(names_).substr(n.name_offset, n.name_size);
  }
  // The children of folder `id`, sorted by name.
  const uint32_t* children(uint32_t id) const { return children_.data() + nodes_[id].pos; }
  // The same children in view order (a folder where its first file is):
  // what readdir lists, so that a tool walking the tree (find, cp -r, tar)
  // reads samples in the order they lie in the shards, which a tar.gz needs
  // to inflate each stretch once rather than once per file.
  const uint32_t* listing(uint32_t id) const { return listing_.data() + nodes_[id].pos; }
  size_t num_nodes() const { return nodes_.size(); }
  uint64_t num_files() const { return num_files_; }
  uint64_t total_bytes() const { return total_bytes_; }
  const View& view() const { return *view_; }

  // A shard stays mapped once opened, so a deleted one would still read and
  // a truncated one would fault (SIGBUS) whoever touches the cut pages:
  // NotFound when the shard file of file `id` is gone, Corruption when it
  // changed size (the mount answers both with EIO).
  Status CheckShard(uint32_t id) const;
  // The bytes of file `id` (CheckShard first): the sample read (checksums
  // checked as the view was opened to) and kept in *sample; the returned
  // view points into it or into the shard's map.
  Result<std::string_view> OpenFile(uint32_t id, Sample* sample) const;

 private:
  explicit MountTree(const View& view) : view_(&view) {}
  const View* view_;
  std::vector<Node> nodes_;
  std::vector<uint32_t> children_;
  std::vector<uint32_t> listing_;
  std::string names_;
  uint64_t num_files_ = 0;
  uint64_t total_bytes_ = 0;
};

}  // namespace shardset

#endif  // SHARDSET_MOUNT_MOUNT_TREE_H_
