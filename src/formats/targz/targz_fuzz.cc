// libFuzzer target for tar.gz (untrusted bytes): detection, the gzip stream
// (members, trailers, trailing bytes), checkpoint recording, the tar walk over
// the stream, and random reads from the checkpoints it recorded. Seeded with
// ../shared/testdata/archives/tar/*gz and a tar.gz of ours (docs/fuzzing.md).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/file.h"
#include "formats/probe.h"
#include "formats/targz/targz_reader.h"
#include "formats/targz/targz_shard.h"
#include "testing/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  shardset::fuzz::OfferReferenceShard(shardset::ShardFormat::kTarGz);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardset;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Probe probe;
  probe.size = size;
  probe.head = std::string(bytes.substr(0, Probe::kHeadBytes));
  (void)targz::Looks(probe);

  static const std::string path = "/tmp/targz_fuzz." + std::to_string(::getpid()) + ".tar.gz";
  if (!WriteFileAtomic(path, bytes, /*sync=*/false).ok()) return 0;
  ReadOptions options;
  options.max_ratio = 50;  // keep bombs short
  auto reader = targz::Open(path, options);
  if (reader.ok()) {
    Sample s;
    // Backwards, so that every read starts at a checkpoint.
    for (uint64_t i = (*reader)->num_samples(); i-- > 0;) (void)(*reader)->Read(i, &s);
    VerifyReport report;
    (void)(*reader)->Verify(&report);
  }
  (void)targz::ForEachEntry(path, options, [](const ArchiveEntry&, const EntryDataReader& d) {
    return d(1 << 20).status();
  });
  return 0;
}
