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

struct PendingField {
  std::string name;
  std::string file;      // read from this path, unless `inline_data`
  uint64_t size = 0;     // expected size (stat at walk time)
  bool inline_data = false;
  std::string data;      // the bytes when inline_data (archives, derived fields)
  uint8_t flags = 0;
};

struct PendingSample {
  std::string key;
  std::vector<PendingField> fields;
  uint64_t size() const {
    uint64_t n = 0;
    for (const auto& f : fields) n += f.inline_data ? f.data.size() : f.size;
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

// Opens `path`: a folder (walked in bytewise path order, symlinks followed,
// special files and broken links skipped with a warning) or any shard or
// archive OpenShard reads. `skipped` collects "path: reason" lines.
Result<std::unique_ptr<SampleSource>> OpenSource(const std::string& path, WarnFn warn,
                                                 std::vector<std::string>* skipped);

// Reads one file whole; the returned status names the file.
Result<std::string> ReadSourceFile(const std::string& path, uint64_t expected_size);

}  // namespace shardset

#endif  // SHARDSET_DATASET_SOURCE_H_
