// Trees and list files for tools that want a directory (YOLO, torchvision's
// ImageFolder, anything): `shardset link` and `shardset list` (docs/link.md).
//
// A tree is built under a temporary name beside `out` and renamed to `out`
// when complete, so `out` never shows half a tree; `out` must not exist.
#ifndef SHARDSET_LINK_H_
#define SHARDSET_LINK_H_

#include <cstdint>
#include <functional>
#include <string>

#include "shardset/status.h"
#include "shardset/view.h"

namespace shardset {

enum class LinkMode {
  kSymlink,   // a symlink to the source file (folder sources only): no data copied
  kHardlink,  // another name for the source file (folder sources, same file system)
  kCopy,      // the bytes, read through the view (any source format)
};
enum class LinkLayout {
  // out/<key>.<field>, under out/<source name>/ when the view has several sources.
  kOriginal,
  // out/<label>/<name>.<field> for every field but the label (ImageFolder).
  kImageFolder,
  // out/images/<name>.<image field> and out/labels/<name>.txt (YOLO).
  kYolo,
};

Result<LinkMode> ParseLinkMode(std::string_view name);
Result<LinkLayout> ParseLinkLayout(std::string_view name);

struct LinkOptions {
  LinkMode mode = LinkMode::kSymlink;
  LinkLayout layout = LinkLayout::kOriginal;
  // The field whose text is the class (imagefolder).
  std::string label_field = "cls";
  bool sync = true;
  // Called now and then with the samples done so far.
  std::function<void(uint64_t)> progress;
};

struct LinkResult {
  uint64_t samples = 0;
  uint64_t files = 0;
  uint64_t bytes_copied = 0;  // 0 for symlink and hardlink
};

Result<LinkResult> Link(const View& view, const std::string& out, const LinkOptions& options);

struct ListOptions {
  // The field whose file is listed; empty: the sample's image field (the
  // first field named like an image: png, jpg, jpeg, bmp, gif, webp, tif,
  // tiff), else its only non-derived field.
  std::string field;
  bool sync = true;
};

// Writes one absolute path per line (the file behind the chosen field of
// every sample, in view order) to `out` atomically; returns the line count.
// Folder sources only: samples in packed shards have no file of their own.
Result<uint64_t> WriteList(const View& view, const std::string& out, const ListOptions& options);

}  // namespace shardset

#endif  // SHARDSET_LINK_H_
