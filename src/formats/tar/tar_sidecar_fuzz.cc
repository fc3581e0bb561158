// libFuzzer target for a tar's sidecar index (docs/formats/tar-index.md):
// the shard is a valid companion, the input replaces its sidecar, and every
// read that succeeds must return the reference bytes (fuzz_util.h).
// docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "testing/fuzz_util.h"

namespace {
const shardset::fuzz::SidecarTarget* target = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  target = new shardset::fuzz::SidecarTarget(shardset::ShardFormat::kTar);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  target->Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
