#include "formats/native/native_shard.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/file.h"
#include "base/hash.h"
#include "index/index.h"

namespace shardset {
namespace {

// A fresh folder, removed with everything in it when the test ends.
class ScopedTempDir {
 public:
  ScopedTempDir() : path_(::testing::TempDir() + "native_test.XXXXXX") {
    EXPECT_NE(::mkdtemp(path_.data()), nullptr);
  }
  ~ScopedTempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Writes `n` samples with keys k000000.. (sorted), fields png (random size)
// and cls (derived); returns what was written.
std::vector<InputSample> WriteShard(const std::string& path, size_t n, uint64_t seed = 1) {
  std::mt19937_64 rng(seed);
  std::vector<InputSample> samples;
  auto w = native::Create(path, WriteOptions{.sync = false});
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  for (size_t i = 0; i < n; ++i) {
    InputSample s;
    s.key = "dir/k" + std::to_string(1000000 + i);
    s.fields.push_back({"png", RandomBytes(rng, rng() % 2000), 0});
    s.fields.push_back({"cls", std::to_string(i % 10), kFieldDerived});
    EXPECT_TRUE((*w)->Add(s).ok());
    samples.push_back(std::move(s));
  }
  auto info = (*w)->Close();
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->num_samples, n);
  return samples;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x40);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

// A shard holds at most index::kMaxFields field names: the writer refuses
// the sample that would add one more, so its own reader never refuses the
// shard (the audit of issue 8 found the table growing past the limit).
TEST(NativeShard, FieldNamesBeyondTheLimitAreRefused) {
  ScopedTempDir dir;
  const std::string path = dir.path() + "/a.shard";
  auto w = native::Create(path, WriteOptions{.sync = false});
  ASSERT_TRUE(w.ok());
  for (uint32_t i = 0; i < index::kMaxFields; ++i) {
    ASSERT_TRUE((*w)->Add({fmt::format("k{:05d}", i), {{fmt::format("f{}", i), "x", 0}}}).ok());
  }
  const Status more = (*w)->Add({"z", {{"f0", "y", 0}, {"new", "y", 0}}});
  EXPECT_EQ(more.code(), Status::Code::kInvalidArgument) << more.ToString();
  ASSERT_TRUE((*w)->Add({"z", {{"f0", "y", 0}}}).ok());
  ASSERT_TRUE((*w)->Close().ok());
  auto r = native::Open(path, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->num_samples(), index::kMaxFields + 1);
  VerifyReport report;
  ASSERT_TRUE((*r)->Verify(&report).ok());
  EXPECT_TRUE(report.ok()) << report.problems.front();
}

// A refused sample leaves nothing behind: the shard holds the others and
// verifies (roundtrip_fuzz found a duplicate field's predecessors written).
TEST(NativeShard, RefusedSampleWritesNothing) {
  ScopedTempDir dir;
  const std::string path = dir.path() + "/a.shard";
  auto w = native::Create(path, WriteOptions{.sync = false});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Add({"a", {{"png", "12345", 0}}}).ok());
  const Status dup = (*w)->Add({"b", {{"png", "abc", 0}, {"txt", "x", 0}, {"png", "d", 0}}});
  EXPECT_EQ(dup.code(), Status::Code::kInvalidArgument) << dup.ToString();
  ASSERT_TRUE((*w)->Add({"c", {{"png", "6789", 0}}}).ok());
  ASSERT_TRUE((*w)->Close().ok());
  auto r = native::Open(path, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->num_samples(), 2u);
  VerifyReport report;
  ASSERT_TRUE((*r)->Verify(&report).ok());
  EXPECT_TRUE(report.ok()) << report.problems.front();
  Sample s;
  ASSERT_TRUE((*r)->Read(1, &s).ok());
  EXPECT_EQ(s.key, "c");
  EXPECT_EQ(s.fields[0].data, "6789");
}

TEST(NativeShard, RoundTripByOrdinalAndKey) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path();
  const std::string path = dir + "/a.shard";
  auto samples = WriteShard(path, 1000);
  auto r = native::Open(path, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ((*r)->num_samples(), 1000u);
  Sample s;
  for (size_t i = 0; i < samples.size(); ++i) {
    ASSERT_TRUE((*r)->Read(i, &s).ok());
    EXPECT_EQ(s.key, samples[i].key);
    ASSERT_EQ(s.fields.size(), 2u);
    EXPECT_EQ(s.fields[0].name, "png");
    EXPECT_EQ(s.fields[0].data, samples[i].fields[0].data);
    EXPECT_EQ(s.fields[1].data, samples[i].fields[1].data);
    EXPECT_EQ(s.fields[1].flags, kFieldDerived);
  }
  // Random order exercises the block cache misses.
  std::mt19937_64 rng(7);
  for (int k = 0; k < 2000; ++k) {
    size_t i = rng() % samples.size();
    auto ord = (*r)->Find(samples[i].key);
    ASSERT_TRUE(ord.ok()) << ord.status().ToString();
    EXPECT_EQ(*ord, i);
  }
  EXPECT_TRUE((*r)->Find("dir/k0").status().IsNotFound());
  EXPECT_TRUE((*r)->Find("zzz").status().IsNotFound());
  EXPECT_TRUE((*r)->Read(1000, &s).IsNotFound());
  VerifyReport report;
  ASSERT_TRUE((*r)->Verify(&report).ok());
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.samples_checked, 1000u);
}

TEST(NativeShard, EmptyShardAndEmptyFields) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path();
  auto w = native::Create(dir + "/e.shard", WriteOptions{.sync = false});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Close().ok());
  auto r = native::Open(dir + "/e.shard", {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->num_samples(), 0u);

  auto w2 = native::Create(dir + "/z.shard", WriteOptions{.sync = false});
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE((*w2)->Add(InputSample{"zero", {{"png", "", 0}}}).ok());
  ASSERT_TRUE((*w2)->Add(InputSample{"none", {}}).ok());
  ASSERT_TRUE((*w2)->Add(InputSample{"x\nweird \xff key", {{"", "abc", 0}}}).ok());
  ASSERT_TRUE((*w2)->Close().ok());
  auto r2 = native::Open(dir + "/z.shard", {});
  ASSERT_TRUE(r2.ok());
  Sample s;
  ASSERT_TRUE((*r2)->Read(0, &s).ok());
  EXPECT_EQ(s.fields.size(), 1u);
  EXPECT_EQ(s.fields[0].data.size(), 0u);
  ASSERT_TRUE((*r2)->Read(1, &s).ok());
  EXPECT_TRUE(s.fields.empty());
  ASSERT_TRUE((*r2)->Read(2, &s).ok());
  EXPECT_EQ(s.key, "x\nweird \xff key");
  EXPECT_EQ(s.fields[0].data, "abc");
  VerifyReport report;
  ASSERT_TRUE((*r2)->Verify(&report).ok());
  EXPECT_TRUE(report.ok()) << report.problems[0];
}

TEST(NativeShard, DuplicateFieldRejected) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path();
  auto w = native::Create(dir + "/d.shard", WriteOptions{.sync = false});
  ASSERT_TRUE(w.ok());
  Status s = (*w)->Add(InputSample{"k", {{"png", "a", 0}, {"png", "b", 0}}});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
}

TEST(NativeShard, UnsealedWriterLeavesNothing) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path();
  {
    auto w = native::Create(dir + "/u.shard", WriteOptions{.sync = false});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Add(InputSample{"k", {{"png", "abc", 0}}}).ok());
  }
  EXPECT_FALSE(PathExists(dir + "/u.shard"));
  auto removed = RemoveStaleTempFiles(dir);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 0);  // the destructor already removed its temp file
}

TEST(NativeShard, FlippedDataByteIsDetectedAndNamed) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path();
  const std::string path = dir + "/c.shard";
  auto samples = WriteShard(path, 300);
  // Sample 123's png starts after the header and every earlier field.
  uint64_t pos = native::kHeaderSize;
  for (size_t i = 0; i < 123; ++i) {
    for (const auto& f : samples[i].fields) pos += f.data.size();
  }
  FlipByte(path, pos + samples[123].fields[0].data.size() / 2);
  auto r = native::Open(path, {});
  ASSERT_TRUE(r.ok());
  Sample s;
  Status st = (*r)->Read(123, &s);
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("sample 123"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(samples[123].key), std::string::npos);
  EXPECT_TRUE((*r)->Read(122, &s).ok());
  EXPECT_TRUE((*r)->Read(124, &s).ok());
  VerifyReport report;
  ASSERT_TRUE((*r)->Verify(&report).ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("sample 123"), std::string::npos);
  // With checksums off the read "succeeds", which is why they default on.
  ReadOptions unchecked_options;
  unchecked_options.verify_checksums = false;
  auto unchecked = native::Open(path, unchecked_options);
  EXPECT_TRUE((*unchecked)->Read(123, &s).ok());
}

TEST(NativeShard, TruncationAndFooterDamageAreDetected) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path();
  const std::string path = dir + "/t.shard";
  WriteShard(path, 500);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  // Truncated anywhere: the footer magic or checksum no longer holds.
  for (uint64_t cut : {size - 1, size - 30, size / 2, uint64_t{20}, uint64_t{3}}) {
    const std::string p = dir + "/cut" + std::to_string(cut) + ".shard";
    ASSERT_EQ(std::system(("head -c " + std::to_string(cut) + " " + path + " > " + p).c_str()), 0);
    auto r = OpenShard(p);
    EXPECT_FALSE(r.ok()) << "cut at " << cut;
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsCorruption() || r.status().code() == Status::Code::kNotSupported)
          << r.status().ToString();
      EXPECT_NE(r.status().message().find(p), std::string::npos);
    }
  }
  // Every byte of the footer and directory is covered by the meta checksum.
  for (uint64_t back = 1; back <= index::kFooterSize + 32; ++back) {
    const std::string p = dir + "/f.shard";
    ASSERT_EQ(std::system(("cp " + path + " " + p).c_str()), 0);
    FlipByte(p, size - back);
    auto r = OpenShard(p);
    EXPECT_FALSE(r.ok()) << "flip at -" << back;
  }
}

TEST(NativeShard, DamagedIndexBlockFailsOnlyItsSamples) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path();
  const std::string path = dir + "/b.shard";
  WriteShard(path, 64 * 5);
  // Damage a byte of block 2 (its directory entry gives the offset).
  MappedFile m = std::move(MappedFile::Open(path).value());
  std::string_view data = m.data();
  const uint64_t footer = data.size() - index::kFooterSize;
  const uint32_t nblocks = 5;
  const uint64_t dir_off = footer - nblocks * index::kDirectoryEntrySize;
  uint64_t block2 = 0;
  for (int i = 0; i < 8; ++i) {
    block2 |= uint64_t{static_cast<unsigned char>(data[dir_off + 32 + i])} << (8 * i);
  }
  FlipByte(path, block2 + 1);
  auto r = native::Open(path, {});
  ASSERT_TRUE(r.ok());
  Sample s;
  EXPECT_TRUE((*r)->Read(0, &s).ok());
  Status bad = (*r)->Read(130, &s);
  EXPECT_TRUE(bad.IsCorruption());
  EXPECT_NE(bad.message().find("block 2"), std::string::npos) << bad.message();
  EXPECT_TRUE((*r)->Read(200, &s).ok());
  VerifyReport report;
  ASSERT_TRUE((*r)->Verify(&report).ok());
  EXPECT_FALSE(report.ok());
}

// An index whose field runs from the data region into the index region
// (checksums off, so the bytes would be returned): refused on read, since
// fields must end before index_offset, not merely inside the file.
TEST(NativeShard, FieldReachingIntoTheIndexIsCorruption) {
  ScopedTempDir dir;
  const std::string path = dir.path() + "/into_index.shard";
  std::string bytes(native::kMagic);
  bytes.append("\x01\0\0\0\0\0\0\0", 8);  // version 1, flags 0
  bytes += "hello";
  index::IndexBuilder b(/*contiguous=*/true);
  b.Add("k", {index::FieldLoc{b.FieldId("txt", 0), 16, 15}}, 0);
  bytes += b.Finish(bytes.size());
  ASSERT_GT(bytes.size(), 31u);
  std::ofstream(path, std::ios::binary) << bytes;
  ReadOptions ro;
  ro.verify_checksums = false;
  auto r = native::Open(path, ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Sample s;
  Status st = (*r)->Read(0, &s);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find(path), std::string::npos);
  EXPECT_NE(st.message().find("outside the data"), std::string::npos) << st.message();
}

TEST(NativeShard, OverheadOnSmallSamplesIsSmall) {
  // 400-byte incompressible payloads with sequential keys, as Fashion-MNIST
  // PNGs look to the index: the whole shard must stay within 3% of them.
  ScopedTempDir tmp;
  const std::string dir = tmp.path();
  const std::string path = dir + "/o.shard";
  std::mt19937_64 rng(3);
  auto w = native::Create(path, WriteOptions{.sync = false});
  ASSERT_TRUE(w.ok());
  uint64_t payload = 0;
  // Sorted, as pack writes them (unsorted keys add an 8-byte key table entry).
  std::vector<std::string> keys;
  for (int i = 0; i < 20000; ++i) {
    keys.push_back("training/" + std::to_string(i % 10) + "/" + std::to_string(i * 7));
  }
  std::sort(keys.begin(), keys.end());
  for (int i = 0; i < 20000; ++i) {
    InputSample s;
    s.key = keys[i];
    s.fields.push_back({"png", RandomBytes(rng, 300 + rng() % 200), 0});
    payload += s.fields[0].data.size();
    ASSERT_TRUE((*w)->Add(s).ok());
  }
  auto info = (*w)->Close();
  ASSERT_TRUE(info.ok());
  const double overhead = double(info->file_size - payload) / double(payload);
  RecordProperty("bytes_per_sample", std::to_string((info->file_size - payload) / 20000.0));
  EXPECT_LT(overhead, 0.03) << "bytes per sample: " << (info->file_size - payload) / 20000.0;
}

// docs/format.md "Worked example": these exact bytes.
TEST(NativeShard, GoldenExample) {
  ScopedTempDir tmp;
  const std::string dir = tmp.path();
  const std::string path = dir + "/g.shard";
  auto w = native::Create(path, WriteOptions{.sync = false});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(
      (*w)->Add(InputSample{"cat/0", {{"txt", "hi", 0}, {"cls", "cat", kFieldDerived}}}).ok());
  ASSERT_TRUE(
      (*w)->Add(InputSample{"cat/1",
                            {{"json", "{}", 0}, {"txt", "yo!", 0}, {"cls", "cat", kFieldDerived}}})
          .ok());
  ASSERT_TRUE((*w)->Close().ok());
  const std::string want_hex =
      "8953484152440d0a0100000000000000"
      "6869636174"
      "7b7d796f21636174"
      "0210"
      "0005636174 2f30"
      "040131"
      "0200020103"
      "03020200030103"
      "64054af6"
      "7da15615"
      "5e39b8c6"
      "03"
      "0003747874"
      "0103636c73"
      "00046a736f6e"
      "1d00000000000000"
      "20000000"
      "00000000"
      "1d00000000000000"
      "4100000000000000"
      "0200000000000000"
      "01000000"
      "40000000"
      "03000000"
      "01000000"
      "1950a48201171ed1"
      "8953484944580d0a";
  std::string want;
  for (size_t i = 0; i < want_hex.size(); i += 2) {
    while (want_hex[i] == ' ') ++i;
    want.push_back(static_cast<char>(std::stoi(want_hex.substr(i, 2), nullptr, 16)));
  }
  MappedFile m = std::move(MappedFile::Open(path).value());
  EXPECT_EQ(m.data().size(), 154u);
  EXPECT_EQ(m.data(), want);
}

}  // namespace
}  // namespace shardset
