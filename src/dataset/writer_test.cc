// Writer: write, crash (the Writer dropped without Close), resume, append,
// and the refusals that keep two runs from mixing.
#include "shardset/writer.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/json_depth.h"
#include "shardset/dataset.h"
#include "shardset/view.h"
#include "testing/test_util.h"

namespace shardset {
namespace {

namespace fs = std::filesystem;

InputSample Make(uint64_t i) {
  InputSample s;
  s.key = fmt::format("gen/{:06d}", i);
  s.fields.push_back({"bin", std::string(100 + i % 50, static_cast<char>('a' + i % 26)), 0});
  s.fields.push_back({"cls", std::to_string(i % 7), 0});
  return s;
}

class WriterTest : public test::TempDirTest,
                   public ::testing::WithParamInterface<ShardFormat> {
 protected:
  WriterOptions Options() const {
    WriterOptions o;
    o.format = GetParam();
    o.shard_samples = 100;
    o.sync = false;
    return o;
  }
  // The keys the dataset at `path` holds, in order.
  static std::vector<std::string> Keys(const std::string& path) {
    auto v = View::Open(path);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    std::vector<std::string> keys;
    if (!v.ok()) return keys;
    Sample s;
    for (uint64_t i = 0; i < (*v)->num_samples(); ++i) {
      EXPECT_TRUE((*v)->Read(i, &s).ok());
      keys.push_back(s.key);
      EXPECT_EQ(s.Find("bin")->data, Make(i).fields[0].data);
    }
    return keys;
  }
  static std::vector<std::string> Expected(uint64_t n) {
    std::vector<std::string> keys;
    for (uint64_t i = 0; i < n; ++i) keys.push_back(Make(i).key);
    return keys;
  }
};

TEST_P(WriterTest, WritesADataset) {
  auto w = Writer::Open(Path("ds"), Options());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  for (uint64_t i = 0; i < 250; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
  EXPECT_EQ((*w)->samples(), 250u);
  auto m = (*w)->Close();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->num_samples, 250u);
  EXPECT_EQ(m->shards.size(), 3u);
  EXPECT_EQ(Keys(Path("ds")), Expected(250));
  EXPECT_FALSE((*w)->Add(Make(0)).ok());
}

// A crash after 230 samples (two shards sealed, 30 in the open one) keeps
// 200; the rerun continues at sample 200, and the result is what one
// uninterrupted run writes.
TEST_P(WriterTest, ResumesAfterTheLastSealedShard) {
  {
    auto w = Writer::Open(Path("ds"), Options());
    ASSERT_TRUE(w.ok());
    for (uint64_t i = 0; i < 230; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
    // Dropped without Close: what a killed process leaves.
  }
  EXPECT_FALSE(fs::exists(Path("ds/manifest.json")));
  auto again = Writer::Open(Path("ds"), Options());
  EXPECT_EQ(again.status().code(), Status::Code::kAlreadyExists);
  WriterOptions o = Options();
  o.resume = true;
  auto w = Writer::Open(Path("ds"), o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ((*w)->resumed_samples(), 200u);
  for (uint64_t i = (*w)->samples(); i < 300; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(Keys(Path("ds")), Expected(300));
}

// Killed after shard 1 was renamed into place but before the state file
// recorded it: the rerun keeps shard 0 only and writes shard 1 again, so the
// manifest is an uninterrupted run's (rebuilding the entry from the file
// counted derived fields as source bytes in formats that do not keep the
// flag: tests/test_crash_writers.py found it through shuffle and pack).
TEST_P(WriterTest, AShardSealedButNotRecordedIsWrittenAgain) {
  for (const char* name : {"ref", "ds"}) {
    auto w = Writer::Open(Path(name), Options());
    ASSERT_TRUE(w.ok());
    for (uint64_t i = 0; i < 250; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
    if (std::string(name) == "ref") {
      ASSERT_TRUE((*w)->Close().ok());
    }
  }
  const std::string state_path = Path("ds/.shardset-pack-state.json");
  auto text = ReadFile(state_path, 1 << 20);
  ASSERT_TRUE(text.ok());
  nlohmann::json state = nlohmann::json::parse(*text);
  ASSERT_EQ(state["shards"].size(), 2u);
  state["shards"].erase(1);  // the state as it was before shard 1's seal
  ASSERT_TRUE(WriteFileAtomic(state_path, state.dump(), false).ok());
  ASSERT_TRUE(fs::exists(Path("ds") + "/" + std::string(state["shards"][0]["path"])));
  WriterOptions o = Options();
  o.resume = true;
  auto w = Writer::Open(Path("ds"), o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ((*w)->resumed_samples(), 100u);
  for (uint64_t i = (*w)->samples(); i < 250; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(*ReadFile(Path("ds/manifest.json"), 1 << 20),
            *ReadFile(Path("ref/manifest.json"), 1 << 20));
  EXPECT_EQ(Keys(Path("ds")), Expected(250));
}

// With --jobs 2 shards seal out of order, so a kill can leave shard 3 in
// place while shard 2 is still a temporary file; and a kill during an earlier
// clear can leave a sidecar whose shard is gone. The resume removes both, so
// the finished folder holds exactly what an uninterrupted run writes.
TEST_P(WriterTest, StrayShardsAfterAGapAndLoneSidecarsAreCleared) {
  for (const char* name : {"ref", "ds"}) {
    auto w = Writer::Open(Path(name), Options());
    ASSERT_TRUE(w.ok());
    for (uint64_t i = 0; i < 450; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
    if (std::string(name) == "ref") {
      ASSERT_TRUE((*w)->Close().ok());
    }
  }
  const std::string state_path = Path("ds/.shardset-pack-state.json");
  nlohmann::json state = nlohmann::json::parse(*ReadFile(state_path, 1 << 20));
  ASSERT_EQ(state["shards"].size(), 4u);
  std::vector<std::string> shard;
  for (const auto& s : state["shards"]) shard.push_back(Path("ds/" + s["path"].get<std::string>()));
  const std::vector<std::string> sidecars = SidecarPaths(shard[2], GetParam());
  // Shard 1 recorded; shard 2 missing (never renamed); shard 3 sealed after
  // it; shard 2's sidecars alone.
  fs::remove(shard[2]);
  state["shards"].erase(2);
  state["shards"].erase(2);
  ASSERT_TRUE(WriteFileAtomic(state_path, state.dump(), false).ok());
  for (const std::string& p : sidecars) ASSERT_TRUE(WriteFileAtomic(p, "stale", false).ok());
  WriterOptions o = Options();
  o.resume = true;
  {
    auto w = Writer::Open(Path("ds"), o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_EQ((*w)->resumed_samples(), 200u);
    EXPECT_FALSE(fs::exists(shard[3]));
    for (const std::string& p : sidecars) EXPECT_FALSE(fs::exists(p)) << p;
    for (uint64_t i = (*w)->samples(); i < 450; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  EXPECT_EQ(*ReadFile(Path("ds/manifest.json"), 1 << 20),
            *ReadFile(Path("ref/manifest.json"), 1 << 20));
  std::vector<std::string> ref_names, names;
  for (const auto& e : fs::directory_iterator(Path("ref"))) ref_names.push_back(e.path().filename());
  for (const auto& e : fs::directory_iterator(Path("ds"))) names.push_back(e.path().filename());
  std::sort(ref_names.begin(), ref_names.end());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, ref_names);
}

// Flush seals the open shard: nothing written before it is lost.
TEST_P(WriterTest, FlushMakesEverythingDurable) {
  {
    auto w = Writer::Open(Path("ds"), Options());
    ASSERT_TRUE(w.ok());
    for (uint64_t i = 0; i < 42; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
    ASSERT_TRUE((*w)->Flush().ok());
    ASSERT_TRUE((*w)->Flush().ok());  // nothing open: no empty shard
    EXPECT_EQ((*w)->shards_sealed(), 1u);
  }
  WriterOptions o = Options();
  o.resume = true;
  auto w = Writer::Open(Path("ds"), o);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->resumed_samples(), 42u);
}

// Resuming a finished dataset appends to it; readers see the old manifest
// until the new one is written.
TEST_P(WriterTest, ResumingAFinishedDatasetAppends) {
  {
    auto w = Writer::Open(Path("ds"), Options());
    ASSERT_TRUE(w.ok());
    for (uint64_t i = 0; i < 150; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  WriterOptions o = Options();
  o.resume = true;
  {
    auto w = Writer::Open(Path("ds"), o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_EQ((*w)->resumed_samples(), 150u);
    for (uint64_t i = 150; i < 260; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
    EXPECT_EQ(Keys(Path("ds")).size(), 150u);  // still the old manifest
    // Killed here: the state names the new sealed shards.
  }
  auto w = Writer::Open(Path("ds"), o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ((*w)->resumed_samples(), 250u);
  for (uint64_t i = 250; i < 320; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(Keys(Path("ds")), Expected(320));
}

TEST_P(WriterTest, OtherSettingsAreRefusedAndOverwriteReplaces) {
  {
    auto w = Writer::Open(Path("ds"), Options());
    ASSERT_TRUE(w.ok());
    for (uint64_t i = 0; i < 120; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
    ASSERT_TRUE((*w)->Close().ok());
  }
  WriterOptions o = Options();
  o.resume = true;
  o.shard_samples = 50;
  auto w = Writer::Open(Path("ds"), o);
  EXPECT_EQ(w.status().code(), Status::Code::kAlreadyExists) << w.status().ToString();
  EXPECT_NE(w.status().message().find("overwrite"), std::string::npos);
  o.resume = false;
  o.overwrite = true;
  w = Writer::Open(Path("ds"), o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ((*w)->resumed_samples(), 0u);
  for (uint64_t i = 0; i < 60; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(Keys(Path("ds")), Expected(60));
  o.resume = true;
  EXPECT_EQ(Writer::Open(Path("ds"), o).status().code(), Status::Code::kInvalidArgument);
}

// JSON nested a few hundred thousand levels deep (a 400 KB file) overflowed
// the stack when copied or dumped: manifests and state files are refused by
// their depth before they are parsed (docs/formats/manifest.md "Resource
// bounds").
std::string DeepJson(const std::string& before, size_t depth) {
  return before + std::string(depth, '[') + std::string(depth, ']') + "}";
}

TEST(JsonDepthTest, CountsBracketsOutsideStringsOnly) {
  EXPECT_TRUE(JsonDepthWithin("{\"a\": [[1], {\"b\": []}]}", 4));
  EXPECT_FALSE(JsonDepthWithin("{\"a\": [[1], {\"b\": []}]}", 3));
  EXPECT_TRUE(JsonDepthWithin("[\"[[[[\\\"[[[\"]", 1));  // brackets and an escaped quote in a string
  EXPECT_TRUE(JsonDepthWithin(std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']')));
  EXPECT_FALSE(
      JsonDepthWithin(std::string(kMaxJsonDepth + 1, '[') + std::string(kMaxJsonDepth + 1, ']')));
}

TEST(JsonDepthTest, DeepManifestIsCorruptionNamingIt) {
  const std::string text = DeepJson(
      R"({"format":"shardset-dataset","version":1,"manifest_xxh3":"0","num_samples":0,)"
      R"("shards":[],"recipe":)",
      200000);
  auto m = Manifest::FromJson(text, "ds/manifest.json");
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(m.status().IsCorruption()) << m.status().ToString();
  EXPECT_NE(m.status().message().find("ds/manifest.json"), std::string::npos);
  EXPECT_NE(m.status().message().find("deeper than"), std::string::npos);
}

// Two shards of 2^63 samples each sum to 0 and matched "num_samples": 0.
TEST(ManifestBoundsTest, ShardCountsThatWrapAreCorruption) {
  Manifest m;
  for (int i = 0; i < 2; ++i) {
    ManifestShard s;
    s.path = fmt::format("shard-{}.shard", i);
    s.format = ShardFormat::kNative;
    s.num_samples = uint64_t{1} << 63;
    m.shards.push_back(s);
  }
  m.num_samples = 0;  // the wrapped sum; ToJson writes it with a valid checksum
  auto back = Manifest::FromJson(m.ToJson(), "ds/manifest.json");
  ASSERT_FALSE(back.ok());
  EXPECT_TRUE(back.status().IsCorruption()) << back.status().ToString();
  EXPECT_NE(back.status().message().find("ds/manifest.json"), std::string::npos);
  EXPECT_NE(back.status().message().find("2^64"), std::string::npos);
}

class WriterStateTest : public test::TempDirTest {};

TEST_F(WriterStateTest, DeepStateFileIsRefusedNotFollowed) {
  WriterOptions o;
  o.format = ShardFormat::kNative;
  o.shard_samples = 100;
  o.sync = false;
  {
    auto w = Writer::Open(Path("ds"), o);
    ASSERT_TRUE(w.ok());
    for (uint64_t i = 0; i < 150; ++i) ASSERT_TRUE((*w)->Add(Make(i)).ok());
    // Dropped without Close: a state file is left.
  }
  const std::string state_path = Path("ds/.shardset-pack-state.json");
  ASSERT_TRUE(fs::exists(state_path));
  ASSERT_TRUE(WriteFileAtomic(state_path, DeepJson(R"({"recipe":)", 200000), false).ok());
  o.resume = true;
  auto w = Writer::Open(Path("ds"), o);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Status::Code::kAlreadyExists) << w.status().ToString();
  EXPECT_NE(w.status().message().find(Path("ds")), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Formats, WriterTest,
                         ::testing::Values(ShardFormat::kNative, ShardFormat::kTar,
                                           ShardFormat::kTarGz, ShardFormat::kZip,
                                           ShardFormat::kTsv),
                         [](const auto& info) {
                           std::string n(FormatName(info.param));
                           return n == "tar.gz" ? std::string("targz") : n;
                         });

}  // namespace
}  // namespace shardset
