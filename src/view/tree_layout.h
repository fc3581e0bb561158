// Where each field of each sample of a view goes in a tree of files: the
// layouts `shardset link` builds on disk and `shardset mount` serves
// (docs/link.md "Layouts and names"). One place decides the names, so a
// link tree and a mount of the same view hold the same paths.
#ifndef SHARDSET_VIEW_TREE_LAYOUT_H_
#define SHARDSET_VIEW_TREE_LAYOUT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/link.h"
#include "shardset/status.h"
#include "shardset/view.h"

namespace shardset {

// A class name becomes a folder name, at most 255 bytes: a label field
// larger than this is not a class name, and is not read whole to find out.
inline constexpr uint64_t kMaxLabelBytes = 4096;

// png, jpg, jpeg, bmp, gif, webp, tif, tiff, in any case.
bool IsImageField(std::string_view name);

class TreeLayout {
 public:
  // `root` names the tree in messages (the -o folder, the mountpoint).
  // InvalidArgument when a source's name cannot be a path component of the
  // tree (views of several sources put it in every name).
  static Result<TreeLayout> Make(const View& view, LinkLayout layout, std::string label_field,
                                 std::string root);

  LinkLayout layout() const { return layout_; }
  const std::string& label_field() const { return label_field_; }

  struct File {
    std::string rel;  // a plain relative path: no "", ".", ".." components
    size_t field;     // index into the `fields` given to Place
  };
  // The files of sample `pos` (key `key`) whose fields with bytes of their
  // own are `fields` (derived fields left out by the caller); `label` is its
  // class (imagefolder only). When one of its file names was given before
  // (a sample held twice, one key in two sources, keys that flatten alike)
  // the sample gets the first "~N" suffix that frees all of them, on every
  // field at once, so paired files stay paired; memory is 16 bytes per file
  // at worst. InvalidArgument naming the sample when the layout cannot
  // place it.
  Status Place(uint64_t pos, std::string_view key, const std::vector<std::string_view>& fields,
               std::string_view label, std::vector<File>* out);

 private:
  // Open-addressing set of 64-bit name hashes. A false "taken" (two names
  // with one hash, about n^2/2^65) only gives a sample a needless ~N suffix.
  class NameSet {
   public:
    bool Insert(uint64_t h);  // true when `h` was not in the set (and is now)
    bool Contains(uint64_t h) const;

   private:
    void Grow();
    std::vector<uint64_t> slots_;
    size_t size_ = 0;
  };

  TreeLayout(const View& view, LinkLayout layout, std::string label_field, std::string root)
      : view_(&view), layout_(layout), label_field_(std::move(label_field)),
        root_(std::move(root)), several_(view.num_sources() > 1) {}

  const View* view_;
  LinkLayout layout_;
  std::string label_field_;
  std::string root_;
  bool several_;
  NameSet names_;
};

}  // namespace shardset

#endif  // SHARDSET_VIEW_TREE_LAYOUT_H_
