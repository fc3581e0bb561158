// libFuzzer target for view files (docs/formats/view.md): header, sources
// JSON, entry table blocks. The input replaces a valid view file of a valid
// dataset; the view is opened, read whole and verified. A read that
// succeeds must return the reference bytes of its key (fuzz_util.h), and
// every entry must name a sample of its source. docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shardset/shuffle.h"
#include "shardset/view.h"
#include "testing/fuzz_util.h"

namespace {
struct Companion {
  std::vector<shardset::InputSample> samples = shardset::fuzz::ReferenceSamples();
  shardset::fuzz::Reference ref = shardset::fuzz::ByKey(samples);
  std::string view_path;
};
const Companion* companion = nullptr;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace shardset;
  auto* c = new Companion;
  const std::string dir = fuzz::ScratchPath("ds");
  fuzz::WriteDataset(dir, ShardFormat::kNative, c->samples);
  auto src = View::Open(dir);
  if (!src.ok()) fuzz::Fail("cannot open the companion dataset");
  c->view_path = fuzz::ScratchPath("shuffled.view");
  ShuffleOptions o;
  o.seed = 7;
  o.sync = false;
  if (!ShuffleView(**src, c->view_path, o).ok()) fuzz::Fail("cannot write the companion view");
  fuzz::OfferSeed(c->view_path, "shuffled.view");
  companion = c;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardset;
  fuzz::Overwrite(companion->view_path,
                  std::string_view(reinterpret_cast<const char*>(data), size));
  auto view = View::Open(companion->view_path);
  if (!view.ok()) return 0;
  const View& v = **view;
  for (uint64_t pos = 0; pos < v.num_samples(); ++pos) {
    const ViewEntry e = v.entry(pos);
    if (e.source >= v.num_sources() || e.ordinal >= v.dataset(e.source).num_samples()) {
      fuzz::Fail("a view entry outside its sources");
    }
  }
  fuzz::ReadAll(v, v.num_samples(), companion->ref);
  VerifyReport report;
  (void)v.Verify(&report);
  return 0;
}
