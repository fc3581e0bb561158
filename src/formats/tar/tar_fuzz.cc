// libFuzzer target for the tar parser (untrusted bytes): the member walker,
// pax records, sample grouping and the index built from them. Seeded with
// ../shared/testdata/archives/tar/*.tar and a tar of ours (docs/fuzzing.md).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "formats/tar/tar_header.h"
#include "formats/tar/tar_scan.h"
#include "index/index.h"
#include "testing/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  shardset::fuzz::OfferReferenceShard(shardset::ShardFormat::kTar);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardset;
  const std::string_view tar(reinterpret_cast<const char*>(data), size);
  tar::PaxHeader pax;
  (void)tar::ParsePaxRecords(tar, &pax);
  index::IndexBuilder builder(/*contiguous=*/false);
  if (!tar::BuildIndex(tar, "fuzz.tar", &builder).ok()) return 0;
  // Whatever the scan accepted must index and read back within the input.
  const std::string bytes = builder.Finish(0);
  auto reader = index::IndexReader::Open(bytes, size, "fuzz.tar");
  if (!reader.ok()) __builtin_trap();
  index::Entry e;
  for (uint64_t i = 0; i < reader->num_samples(); ++i) {
    if (!reader->Get(i, &e).ok()) __builtin_trap();
    for (const index::FieldLoc& f : e.fields) {
      if (f.offset > size || f.size > size - f.offset) __builtin_trap();
    }
  }
  return 0;
}
