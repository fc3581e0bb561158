// Placeholder until the tar module lands.
#include "formats/tar/tar_shard.h"
namespace shardset::tar {
std::string SidecarPath(const std::string& p) { return p + ".idx"; }
bool LooksTar(std::string_view) { return false; }
Result<std::unique_ptr<ShardReader>> Open(const std::string&, const ReadOptions&) {
  return Status::NotSupported("tar not yet");
}
Result<std::unique_ptr<ShardWriter>> Create(const std::string&, const WriteOptions&) {
  return Status::NotSupported("tar not yet");
}
Result<uint64_t> WriteIndex(const std::string&, bool) { return Status::NotSupported("tar"); }
}  // namespace shardset::tar
