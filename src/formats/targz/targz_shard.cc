// STUB: replaced by the targz module's implementation.
#include "formats/targz/targz_shard.h"

namespace shardset::targz {
bool Looks(const Probe&) { return false; }
Result<std::unique_ptr<ShardReader>> Open(const std::string& path, const ReadOptions&) { return Status::NotSupported(path + ": targz not implemented yet"); }
Result<uint64_t> WriteIndex(const std::string& path, const ReadOptions&, bool) { return Status::NotSupported(path + ": targz not implemented yet"); }
std::vector<std::string> SidecarPaths(const std::string&) { return {}; }
Status ForEachEntry(const std::string& path, const ReadOptions&, const EntryVisitor&) { return Status::NotSupported(path + ": targz not implemented yet"); }
}  // namespace shardset::targz
