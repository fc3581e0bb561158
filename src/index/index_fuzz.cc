// libFuzzer target for the index (docs/format.md "Index"), parsed from memory
// as it ends a native shard or fills a tar's sidecar: footer, block
// directory, blocks, key table. Whatever Open accepts must describe fields
// inside the data limit, and Get and Find must not crash. Seeded with a
// valid native shard (its index ends it). docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "index/index.h"
#include "testing/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace shardset;
  const std::string seed = fuzz::ScratchPath("seed.shard");
  fuzz::WriteShard(seed, ShardFormat::kNative, fuzz::ReferenceSamples());
  fuzz::OfferSeed(seed, "reference.shard");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardset;
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  // The data limit as a native shard sets it (the index follows the data)
  // and as a sidecar sets it (a tar much larger than the index).
  for (uint64_t limit : {uint64_t{size}, uint64_t{1} << 40}) {
    auto reader = index::IndexReader::Open(file, limit, "fuzz.idx");
    if (!reader.ok()) continue;
    index::Entry e;
    for (uint64_t i = 0; i < reader->num_samples(); ++i) {
      if (!reader->Get(i, &e).ok()) continue;
      for (const index::FieldLoc& f : e.fields) {
        if (f.offset > limit || f.size > limit - f.offset) fuzz::Fail("field outside the data");
      }
      const std::string key = e.key;
      auto found = reader->Find(key);
      if (found.ok() && (!reader->Get(*found, &e).ok() || e.key != key)) {
        fuzz::Fail("Find returned a sample with another key");
      }
    }
    (void)reader->VerifyKeyTable();
  }
  return 0;
}
