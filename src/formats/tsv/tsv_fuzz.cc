// libFuzzer target for the tsv parsers of untrusted bytes: detection, the
// header line, --tsv-columns, the column guess and strict base64. Seeded with
// a tsv of ours (docs/fuzzing.md).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "formats/probe.h"
#include "formats/tsv/tsv_columns.h"
#include "formats/tsv/tsv_shard.h"
#include "testing/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  shardset::fuzz::OfferReferenceShard(shardset::ShardFormat::kTsv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardset;
  using namespace shardset::tsv;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  Probe probe;
  probe.size = size;
  probe.head = std::string(in.substr(0, Probe::kHeadBytes));
  (void)Looks(probe);
  const std::string_view first = in.substr(0, in.find('\n'));
  if (IsHeaderLine(first)) {
    auto cols = ParseHeader(first);
    // What parses formats to a header that parses to the same columns.
    if (cols.ok()) {
      auto again = ParseHeader(FormatHeader(*cols));
      if (!again.ok() || *again != *cols) __builtin_trap();
    }
  }
  (void)ParseColumnSpec(first);
  // Lines as rows for the guess.
  std::vector<std::vector<std::string_view>> rows;
  for (size_t pos = 0; pos < in.size() && rows.size() < kGuessRows;) {
    size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) nl = in.size();
    SplitCells(in.substr(pos, nl - pos), &rows.emplace_back());
    pos = nl + 1;
  }
  (void)GuessColumns(rows);
  // Strict base64: what validates decodes to what re-encodes to the input.
  if (Base64Problem(in).empty()) {
    std::string decoded(Base64DecodedSize(in), '\0');
    Base64Decode(in, decoded.data());
    std::string encoded;
    Base64Append(decoded, &encoded);
    // Equal up to the unused low bits of the last group, which are ignored.
    if (encoded.size() != in.size() || encoded.substr(0, in.size() >= 4 ? in.size() - 4 : 0) !=
                                           in.substr(0, in.size() >= 4 ? in.size() - 4 : 0)) {
      __builtin_trap();
    }
  }
  return 0;
}
