// libFuzzer target for the dataset manifest (docs/formats/manifest.md): the
// JSON parser's checks, then the input as the manifest.json of a valid
// dataset folder (tar shards with sidecars and native shards in turn), opened,
// read whole and verified. A read that succeeds must return the reference
// bytes of its key (fuzz_util.h). docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shardset/dataset.h"
#include "testing/fuzz_util.h"

namespace {
struct Companion {
  std::vector<shardset::InputSample> samples = shardset::fuzz::ReferenceSamples();
  shardset::fuzz::Reference ref = shardset::fuzz::ByKey(samples);
  std::vector<std::string> dirs;
};
const Companion* companion = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace shardset;
  auto* c = new Companion;
  for (ShardFormat f : {ShardFormat::kNative, ShardFormat::kTar}) {
    const std::string dir = fuzz::ScratchPath(std::string("ds-") + std::string(FormatName(f)));
    fuzz::WriteDataset(dir, f, c->samples);
    fuzz::OfferSeed(dir + "/manifest.json", std::string(FormatName(f)) + ".json");
    c->dirs.push_back(dir);
  }
  companion = c;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardset;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = Manifest::FromJson(text, "fuzz/manifest.json");
  if (m.ok()) {
    // What parses serializes to what parses to the same shards.
    auto again = Manifest::FromJson(m->ToJson(), "fuzz/manifest.json");
    if (!again.ok() || again->shards.size() != m->shards.size() ||
        again->num_samples != m->num_samples) {
      fuzz::Fail("a manifest did not survive ToJson");
    }
  }
  const std::string& dir = companion->dirs[size % companion->dirs.size()];
  fuzz::Overwrite(dir + "/manifest.json", text);
  auto ds = Dataset::Open(dir);
  if (!ds.ok()) return 0;
  fuzz::ReadAll(**ds, (*ds)->num_samples(), companion->ref);
  VerifyReport report;
  (void)(*ds)->Verify(&report);
  return 0;
}
