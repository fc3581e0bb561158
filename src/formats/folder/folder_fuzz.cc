// libFuzzer target for the folder index parser (untrusted bytes): header,
// index region and the file names of every sample, without touching any
// folder. docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "formats/folder/folder_shard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)shardset::folder::CheckIndex(bytes, "fuzz.fidx");
  return 0;
}
