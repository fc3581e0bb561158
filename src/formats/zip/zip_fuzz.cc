// libFuzzer target for the zip parser (untrusted bytes): the end records, the
// central directory, local headers and the decoding of every entry under
// tight limits. Seeded with ../shared/testdata/archives/zip/* and a zip of
// ours (docs/fuzzing.md).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "formats/zip/zip_format.h"
#include "testing/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  shardset::fuzz::OfferReferenceShard(shardset::ShardFormat::kZip);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardset;
  const std::string_view file(reinterpret_cast<const char*>(data), size);
  (void)zip::TailLooksLikeZip(file, size);
  ReadOptions options;
  options.max_entries = 1000;
  options.max_field_bytes = 1 << 20;
  options.max_ratio = 50;
  std::string out;
  (void)zip::ForEachCentralHeader(
      file, "fuzz.zip", options, [&](const zip::CentralHeader& h) -> Status {
        const zip::EntryLoc loc = zip::LocOf(h);
        if (!zip::CheckDecodable(loc, options).ok()) return Status::OK();
        Result<std::string_view> raw = zip::StoredBytes(file, loc);
        if (!raw.ok()) return Status::OK();
        // Whatever the checks let through lies inside the input and fits the limits.
        if (raw->data() < file.data() || raw->data() + raw->size() > file.data() + file.size()) {
          __builtin_trap();
        }
        if (h.uncompressed_size > options.max_field_bytes && loc.method != zip::kMethodStored) {
          __builtin_trap();
        }
        out.resize(h.uncompressed_size);
        (void)zip::Decode(loc, *raw, out.data(), /*verify_crc=*/true);
        return Status::OK();
      });
  return 0;
}
