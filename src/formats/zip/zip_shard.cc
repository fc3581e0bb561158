// STUB: replaced by the zip module's implementation.
#include "formats/zip/zip_shard.h"

namespace shardset::zip {
bool Looks(const Probe&) { return false; }
Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions&) { return Status::NotSupported(path + ": zip not implemented yet"); }
Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions&) { return Status::NotSupported(path + ": zip not implemented yet"); }
Status ForEachEntry(const std::string& path, const ReadOptions&, const EntryVisitor&) { return Status::NotSupported(path + ": zip not implemented yet"); }
}  // namespace shardset::zip
