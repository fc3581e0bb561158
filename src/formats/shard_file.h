// The file a ShardWriter writes: an AtomicFile whose bytes are hashed (XXH3,
// for the manifest) as they are appended, and whose first write error sticks.
// After a failed write the file may hold part of a sample, so nothing more is
// appended and Commit() refuses; the writer's destructor then removes it.
#ifndef SHARDSET_FORMATS_SHARD_FILE_H_
#define SHARDSET_FORMATS_SHARD_FILE_H_

#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "base/file.h"
#include "base/hash.h"
#include "base/strings.h"

namespace shardset {

class ShardFile {
 public:
  explicit ShardFile(std::unique_ptr<AtomicFile> file) : file_(std::move(file)) {}

  Status Append(std::string_view data) {
    SHARDSET_RETURN_IF_ERROR(failed_);
    hash_.Update(data);
    Status s = file_->Append(data);
    if (!s.ok()) failed_ = s;
    return s;
  }
  // Marks the file unusable (a sample was half written by other means).
  void Fail(const Status& s) { failed_ = s; }
  // OK while the writer may still write: not closed and no write failed.
  Status Usable() const {
    if (closed_) return Status::InvalidArgument("shard writer already closed");
    return failed_;
  }
  // Called by Close(): after it Usable() refuses.
  void MarkClosed() { closed_ = true; }
  Status Commit(bool sync, bool overwrite) {
    SHARDSET_RETURN_IF_ERROR(failed_);
    return file_->Commit(sync, overwrite);
  }

  // InvalidArgument "<final path>: sample '<key>': <what>".
  Status InvalidSample(std::string_view key, std::string_view what) const {
    return Status::InvalidArgument(
        fmt::format("{}: sample '{}': {}", file_->final_path(), EscapeForDisplay(key), what));
  }

  uint64_t offset() const { return file_->offset(); }
  const std::string& final_path() const { return file_->final_path(); }
  uint64_t xxh3() const { return hash_.Digest(); }
  const AtomicFile& atomic() const { return *file_; }

 private:
  std::unique_ptr<AtomicFile> file_;
  Xxh3Stream hash_;
  Status failed_;
  bool closed_ = false;
};

}  // namespace shardset

#endif  // SHARDSET_FORMATS_SHARD_FILE_H_
