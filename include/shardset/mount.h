// `shardset mount`: a view, dataset, shard or archive served as a read-only
// folder through FUSE (libfuse3), so tools that want files (torchvision's
// ImageFolder, YOLO, any script) read packed samples in place
// (docs/mount.md). Built into the library target shardset_mount, which
// links libfuse3; the rest of shardset does not need it.
#ifndef SHARDSET_MOUNT_H_
#define SHARDSET_MOUNT_H_

#include <cstdint>
#include <functional>
#include <string>

#include "shardset/link.h"
#include "shardset/status.h"
#include "shardset/view.h"

namespace shardset {

struct MountOptions {
  // The tree's shape, as `shardset link` makes it (docs/link.md "Layouts").
  LinkLayout layout = LinkLayout::kOriginal;
  std::string label_field = "cls";
  // Stay in the foreground (errors of reads go to stderr) rather than
  // return once mounted and serve from a background process.
  bool foreground = false;
  // Let other users than the one mounting read the tree (FUSE's
  // allow_other; non-root users need user_allow_other in /etc/fuse.conf).
  bool allow_other = false;
  // Most threads serving requests at once.
  unsigned threads = 16;
  // Called while the tree is built, with the samples placed so far.
  std::function<void(uint64_t)> progress;
  // Called once the tree is built and mounted, before serving, with the
  // number of files and their bytes (still in the foreground process).
  std::function<void(uint64_t files, uint64_t bytes)> mounted;
};

// OK when this machine can mount FUSE file systems; NotSupported saying what
// is missing (the /dev/fuse device, fusermount3) and what to do otherwise.
Status CheckFuse();

// Builds the tree of `view` and serves it read-only at `mountpoint` (an
// existing, empty folder) until it is unmounted. `view` must be opened from
// absolute paths when not in the foreground: the server process changes to
// "/". Returns when the server stops (foreground), or once mounted (the
// background process then serves and exits when unmounted).
Status Mount(const View& view, const std::string& mountpoint, const MountOptions& options);

// Unmounts a shardset mount at `mountpoint`: IOError ("busy") when a
// process still uses it (unless `lazy`, which detaches it now and finishes
// once it is no longer used); InvalidArgument when it is not a shardset mount.
Status Unmount(const std::string& mountpoint, bool lazy);

}  // namespace shardset

#endif  // SHARDSET_MOUNT_H_
