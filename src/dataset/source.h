// Sources for pack: a stream of samples whose field bytes are read later
// (possibly on another thread), from a folder tree or an archive.
#ifndef SHARDSET_DATASET_SOURCE_H_
#define SHARDSET_DATASET_SOURCE_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shardset/dataset.h"
#include "shardset/shard.h"

namespace shardset {

// An open folder that pending fields are read relative to (openat), so a
// read resolves one path component instead of the whole path. Closed when
// the last field that needs it has been read.
class DirHandle {
 public:
  DirHandle(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~DirHandle();
  DirHandle(const DirHandle&) = delete;
  DirHandle& operator=(const DirHandle&) = delete;
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

struct PendingField {
  std::string name;
  std::shared_ptr<const DirHandle> dir;  // read `file` relative to it, unless `inline_data`
  std::string file;
  // Size when known at walk time; kUnknownSize when the walk did not stat the
  // file (its folder entry said "regular file"), in which case the reader
  // thread fstats it: that moves a syscall off the walking thread.
  uint64_t size = 0;
  bool inline_data = false;
  std::string data;      // the bytes when inline_data (archives, derived fields)
  uint8_t flags = 0;
};

inline constexpr uint64_t kUnknownSize = ~uint64_t{0};

struct PendingSample {
  std::string key;
  std::vector<PendingField> fields;
  // Bytes this sample will take, with `guess` standing in for unknown sizes.
  uint64_t size(uint64_t guess) const {
    uint64_t n = 0;
    for (const auto& f : fields) {
      n += f.inline_data ? f.data.size() : f.size == kUnknownSize ? guess : f.size;
    }
    return n;
  }
};

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // Next sample, or false at the end.
  virtual Result<bool> Next(PendingSample* out) = 0;
};

using WarnFn = std::function<void(const std::string&)>;

// Opens `path`: a folder (walked in key order, symlinks followed, special
// files and broken links skipped with a warning) or any shard or archive
// OpenShard reads (with `read`). A folder that cannot be opened is an error, or, with
// `skip_unreadable`, skipped with a warning. `skipped` collects
// "path: reason" lines.
Result<std::unique_ptr<SampleSource>> OpenSource(const std::string& path,
                                                 const ReadOptions& read, bool skip_unreadable,
                                                 WarnFn warn, std::vector<std::string>* skipped);

// Reads a pending field's file whole; the returned status names the file.
Result<std::string> ReadSourceFile(const PendingField& field);

}  // namespace shardset

#endif  // SHARDSET_DATASET_SOURCE_H_
