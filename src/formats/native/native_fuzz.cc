// libFuzzer target for native shards (untrusted bytes, docs/format.md): the
// footer, the index blocks and key table, and every sample's bytes against
// its checksum. Oracle: a read that succeeds returns the reference bytes of
// its key; Find and Verify must not crash. Seeded with a valid shard of the
// reference samples (fuzz_util.h). docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "formats/native/native_shard.h"
#include "testing/fuzz_util.h"

namespace {
const std::vector<shardset::InputSample>& Samples() {
  static const auto* s = new std::vector<shardset::InputSample>(shardset::fuzz::ReferenceSamples());
  return *s;
}
const shardset::fuzz::Reference& Ref() {
  static const auto* r = new shardset::fuzz::Reference(shardset::fuzz::ByKey(Samples()));
  return *r;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace shardset;
  const std::string seed = fuzz::ScratchPath("seed.shard");
  fuzz::WriteShard(seed, ShardFormat::kNative, Samples());
  fuzz::OfferSeed(seed, "reference.shard");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardset;
  const std::string path = fuzz::ScratchPath("in.shard");
  fuzz::Overwrite(path, std::string_view(reinterpret_cast<const char*>(data), size));
  for (bool verify_checksums : {true, false}) {
    ReadOptions options;
    options.verify_checksums = verify_checksums;
    auto reader = native::Open(path, options);
    if (!reader.ok()) return 0;
    const ShardReader& r = **reader;
    Sample s;
    for (uint64_t i = 0; i < r.num_samples(); ++i) {
      // Without checksums a damaged sample may read as other bytes (that is
      // what the option trades); the structure must still hold.
      if (r.Read(i, &s).ok() && verify_checksums) fuzz::CheckRead(s, Ref());
      auto key = r.Key(i);
      if (key.ok()) (void)r.Find(*key);
    }
    if (verify_checksums) {
      VerifyReport report;
      (void)r.Verify(&report);
    }
  }
  return 0;
}
