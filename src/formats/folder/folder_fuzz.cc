// libFuzzer target for the folder index parser (untrusted bytes): header,
// index region and the file names of every sample, without touching any
// folder. Not built by CMake yet; build it with clang (one command):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address -Iinclude -Isrc
//     src/formats/folder/folder_fuzz.cc build/libshardset.a -lxxhash -lzstd -lfmt
// and seed it with indexes written by folder::WriteIndex (the tests' trees).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "formats/folder/folder_shard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)shardset::folder::CheckIndex(bytes, "fuzz.fidx");
  return 0;
}
