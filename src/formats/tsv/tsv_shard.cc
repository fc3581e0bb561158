// STUB: replaced by the tsv module's implementation.
#include "formats/tsv/tsv_shard.h"

namespace shardset::tsv {
bool Looks(const Probe&) { return false; }
Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions&) { return Status::NotSupported(path + ": tsv not implemented yet"); }
Result<std::unique_ptr<ShardWriter>> Create(const std::string& path, const WriteOptions&) { return Status::NotSupported(path + ": tsv not implemented yet"); }
Result<uint64_t> WriteIndex(const std::string& path, const ReadOptions&, bool) { return Status::NotSupported(path + ": tsv not implemented yet"); }
std::vector<std::string> SidecarPaths(const std::string&) { return {}; }
}  // namespace shardset::tsv
