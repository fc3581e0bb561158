// libFuzzer round-trip target for every writable format: samples made from
// the input (keys, field names and bytes of any value) are written with
// CreateShardWriter, and what the writer accepted must read back exactly:
// the same samples in the same order, same keys, same fields in the same
// order, same bytes; Find finds each key; Verify finds no problem. What a
// format cannot hold must be refused by Add (InvalidArgument) and nothing
// else. docs/fuzzing.md.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shardset/shard.h"
#include "testing/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardset;
  FuzzedDataProvider in(data, size);
  static constexpr ShardFormat kFormats[] = {ShardFormat::kNative, ShardFormat::kTar,
                                             ShardFormat::kTarGz, ShardFormat::kZip,
                                             ShardFormat::kTsv};
  const ShardFormat format = in.PickValueInArray(kFormats);
  WriteOptions wo;
  wo.sync = false;
  wo.overwrite = true;
  wo.zip_deflate_level = in.ConsumeIntegralInRange(0, 9);
  wo.gzip_level = in.ConsumeIntegralInRange(1, 9);
  const std::string path = fuzz::ScratchPath("roundtrip" + std::string(FormatExtension(format)));
  auto writer = CreateShardWriter(path, format, wo);
  if (!writer.ok()) fuzz::Fail("CreateShardWriter failed");

  std::vector<InputSample> written;
  const int n = in.ConsumeIntegralInRange(0, 12);
  for (int i = 0; i < n && in.remaining_bytes() > 0; ++i) {
    InputSample s;
    s.key = in.ConsumeRandomLengthString(48);
    const int fields = in.ConsumeIntegralInRange(1, 3);
    for (int f = 0; f < fields; ++f) {
      InputField field;
      field.name = in.ConsumeRandomLengthString(12);
      field.data = in.ConsumeRandomLengthString(4096);
      s.fields.push_back(std::move(field));
    }
    const Status st = (*writer)->Add(s);
    if (st.ok()) {
      written.push_back(std::move(s));
    } else if (st.code() != Status::Code::kInvalidArgument) {
      fprintf(stderr, "%s\n", st.ToString().c_str());
      fuzz::Fail("Add failed with other than InvalidArgument");
    }
  }
  auto info = (*writer)->Close();
  if (!info.ok()) {
    fprintf(stderr, "%s\n", info.status().ToString().c_str());
    fuzz::Fail("Close failed");
  }

  auto reader = OpenShardAs(path, format);
  if (!reader.ok()) {
    fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    fuzz::Fail("a written shard does not open");
  }
  const ShardReader& r = **reader;
  if (r.num_samples() != written.size()) fuzz::Fail("a written shard holds another count");
  Sample s;
  for (uint64_t i = 0; i < written.size(); ++i) {
    InputSample want = written[i];
    const Status st = r.Read(i, &s);
    if (!st.ok()) {
      fprintf(stderr, "%s\n", st.ToString().c_str());
      fuzz::Fail("a written sample does not read");
    }
    if (format == ShardFormat::kTsv) {
      // A tsv row holds its fields in the file's column order, whatever
      // order a sample gave them in (docs/formats/tsv.md "Columns").
      std::vector<InputField> ordered;
      for (const Field& f : s.fields) {
        for (const InputField& w : want.fields) {
          if (w.name == f.name) ordered.push_back(w);
        }
      }
      if (ordered.size() == want.fields.size()) want.fields = std::move(ordered);
    }
    if (s.key != want.key || s.fields.size() != want.fields.size() ||
        !std::equal(want.fields.begin(), want.fields.end(), s.fields.begin(),
                    [](const InputField& a, const Field& b) {
                      return a.name == b.name && a.data == b.data;
                    })) {
      fprintf(stderr, "format %s, sample %llu written as key '%s':",
              std::string(FormatName(format)).c_str(), static_cast<unsigned long long>(i),
              want.key.c_str());
      for (const InputField& f : want.fields) {
        fprintf(stderr, " '%s' (%zu bytes)", f.name.c_str(), f.data.size());
      }
      fprintf(stderr, "\n  read as key '%s':", s.key.c_str());
      for (const Field& f : s.fields) {
        fprintf(stderr, " '%s' (%zu bytes)", std::string(f.name).c_str(), f.data.size());
      }
      fprintf(stderr, "\n");
    }
    if (s.key != want.key) fuzz::Fail("a written sample reads with another key");
    if (s.fields.size() != want.fields.size()) fuzz::Fail("a written sample has other fields");
    for (size_t f = 0; f < want.fields.size(); ++f) {
      if (s.fields[f].name != want.fields[f].name) fuzz::Fail("a field reads with another name");
      if (s.fields[f].data != want.fields[f].data) fuzz::Fail("a field reads as other bytes");
    }
    auto found = r.Find(want.key);
    if (!found.ok()) fuzz::Fail("Find misses a written key");
  }
  VerifyReport report;
  if (!r.Verify(&report).ok() || !report.ok()) {
    for (const std::string& p : report.problems) fprintf(stderr, "%s\n", p.c_str());
    for (const InputSample& w : written) {
      fprintf(stderr, "sample key %zu bytes:", w.key.size());
      for (const InputField& f : w.fields) {
        fprintf(stderr, " field '%s' %zu bytes", f.name.c_str(), f.data.size());
      }
      fprintf(stderr, "\n");
    }
    fuzz::Fail("a written shard does not verify");
  }
  return 0;
}
