// Shuffle: the orders' definitions (uniformity by chi-square over many seeds,
// interleaving without equal neighbours), and the scatter/gather that writes
// them as shards under a memory bound.
#include "shardset/shuffle.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "shardset/dataset.h"
#include "shardset/view.h"
#include "shuffle/order.h"
#include "testing/test_util.h"

namespace shardset {
namespace {

namespace fs = std::filesystem;

std::vector<uint64_t> Order(uint64_t n, uint64_t seed, uint64_t bucket_samples = 0) {
  ShuffleOptions o;
  o.seed = seed;
  o.bucket_samples = bucket_samples;
  auto r = ShuffleOrder(n, {}, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<uint64_t>{};
}

bool IsPermutation(std::vector<uint64_t> v) {
  std::sort(v.begin(), v.end());
  for (uint64_t i = 0; i < v.size(); ++i) {
    if (v[i] != i) return false;
  }
  return true;
}

// Pearson's statistic of `observed` against a uniform expectation.
double ChiSquare(const std::vector<uint64_t>& observed) {
  const double total = std::accumulate(observed.begin(), observed.end(), 0.0);
  const double e = total / observed.size();
  double x = 0;
  for (uint64_t o : observed) x += (o - e) * (o - e) / e;
  return x;
}

// The chi-square statistic with `dof` degrees of freedom exceeds
// dof + 6 sqrt(2 dof) with probability below about 1e-6; the seeds are fixed,
// so the test is deterministic, and a biased order fails it by far.
double Bound(double dof) { return dof + 6 * std::sqrt(2 * dof); }

TEST(ShuffleOrderTest, IsAPermutationAndDependsOnTheSeedOnly) {
  for (uint64_t n : {0, 1, 2, 5, 4095, 4096, 4097, 50000}) {
    auto a = Order(n, 7);
    EXPECT_EQ(a.size(), n);
    EXPECT_TRUE(IsPermutation(a)) << n;
    EXPECT_EQ(a, Order(n, 7));
    if (n > 10) {
      EXPECT_NE(a, Order(n, 8));
    }
  }
}

// Every one of the 24 orders of 4 samples is equally likely, with one bucket
// (plain Fisher-Yates) and with many (the two-stage method).
TEST(ShuffleOrderTest, AllPermutationsEquallyLikely) {
  for (uint64_t bucket_samples : {0, 1, 2}) {
    std::map<std::vector<uint64_t>, uint64_t> seen;
    const uint64_t trials = 48000;
    for (uint64_t seed = 0; seed < trials; ++seed) ++seen[Order(4, seed, bucket_samples)];
    ASSERT_EQ(seen.size(), 24u) << bucket_samples;
    std::vector<uint64_t> counts;
    for (const auto& [perm, c] : seen) counts.push_back(c);
    EXPECT_LT(ChiSquare(counts), Bound(23)) << "bucket_samples " << bucket_samples;
  }
}

// Where each sample lands, over many seeds: every (sample, position) cell
// equally likely, including with many buckets.
TEST(ShuffleOrderTest, PositionsUniform) {
  const uint64_t n = 40, trials = 20000;
  for (uint64_t bucket_samples : {0, 4}) {
    std::vector<uint64_t> cells(n * n, 0);
    for (uint64_t seed = 0; seed < trials; ++seed) {
      auto o = Order(n, seed, bucket_samples);
      for (uint64_t j = 0; j < n; ++j) ++cells[o[j] * n + j];
    }
    // Rows and columns each sum to `trials`: (n-1)^2 degrees of freedom.
    EXPECT_LT(ChiSquare(cells), Bound((n - 1) * (n - 1))) << bucket_samples;
  }
}

// ------------------------------------------------------------ interleaving

uint64_t SameNeighbours(const std::vector<uint32_t>& labels, const std::vector<uint64_t>& order) {
  uint64_t same = 0;
  for (size_t j = 1; j < order.size(); ++j) same += labels[order[j]] == labels[order[j - 1]];
  return same;
}

std::vector<uint64_t> Interleave(const std::vector<uint32_t>& labels, uint64_t seed) {
  ShuffleOptions o;
  o.seed = seed;
  o.interleave_by = "label";
  auto r = ShuffleOrder(labels.size(), labels, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<uint64_t>{};
}

TEST(InterleaveTest, NoEqualNeighboursWheneverTheCountsAllow) {
  // Equal classes, unequal ones, one class at exactly half (rounded up).
  const std::vector<std::vector<uint64_t>> cases = {
      {6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000},
      {5000, 300, 20, 1, 1, 4000, 777},
      {5, 4},
      {50, 30, 20},
      {1},
      {3, 1, 1, 1}};
  for (const auto& counts : cases) {
    std::vector<uint32_t> labels;
    for (uint32_t l = 0; l < counts.size(); ++l) labels.insert(labels.end(), counts[l], l);
    for (uint64_t seed : {1, 2, 3}) {
      auto order = Interleave(labels, seed);
      ASSERT_EQ(order.size(), labels.size());
      EXPECT_TRUE(IsPermutation(order));
      EXPECT_EQ(SameNeighbours(labels, order), 0u) << fmt::format("{}", fmt::join(counts, ","));
    }
  }
}

TEST(InterleaveTest, AMajorityLabelGetsTheFewestNeighboursPossible) {
  for (const std::vector<uint64_t>& counts :
       std::vector<std::vector<uint64_t>>{{80, 20}, {80, 10, 7, 3}, {3, 0, 0}, {10, 1}}) {
    std::vector<uint32_t> labels;
    for (uint32_t l = 0; l < counts.size(); ++l) labels.insert(labels.end(), counts[l], l);
    const uint64_t n = labels.size(), most = *std::max_element(counts.begin(), counts.end());
    auto order = Interleave(labels, 5);
    EXPECT_TRUE(IsPermutation(order));
    EXPECT_EQ(SameNeighbours(labels, order), 2 * most - n - 1);
    // The majority's runs are as even as integers allow.
    uint64_t run = 0, longest = 0;
    for (size_t j = 0; j < order.size(); ++j) {
      run = labels[order[j]] == 0 ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    EXPECT_EQ(longest, (most + (n - most)) / (n - most + 1));
  }
}

// Labels spread in proportion to their counts: in every window of 1,000 a
// label with share p appears p*1000 times give or take a few.
TEST(InterleaveTest, LabelsSpreadInProportion) {
  const std::vector<uint64_t> counts = {30000, 15000, 10000, 5000};
  std::vector<uint32_t> labels;
  for (uint32_t l = 0; l < counts.size(); ++l) labels.insert(labels.end(), counts[l], l);
  auto order = Interleave(labels, 9);
  const uint64_t w = 1000;
  for (uint64_t start = 0; start + w <= order.size(); start += w) {
    std::vector<uint64_t> seen(counts.size(), 0);
    for (uint64_t j = start; j < start + w; ++j) ++seen[labels[order[j]]];
    for (uint32_t l = 0; l < counts.size(); ++l) {
      const double expected = double(counts[l]) * w / labels.size();
      EXPECT_NEAR(seen[l], expected, 3) << "label " << l << " window " << start;
    }
  }
}

// Within a label the order is shuffled by the seed, and every order of a
// label's samples is equally likely.
TEST(InterleaveTest, WithinLabelOrderUniform) {
  std::vector<uint32_t> labels = {0, 1, 0, 1, 0, 1};  // three samples of each label
  std::map<std::vector<uint64_t>, uint64_t> seen;
  for (uint64_t seed = 0; seed < 12000; ++seed) {
    auto order = Interleave(labels, seed);
    std::vector<uint64_t> zeros;
    for (uint64_t p : order) {
      if (labels[p] == 0) zeros.push_back(p);
    }
    ++seen[zeros];
  }
  ASSERT_EQ(seen.size(), 6u);
  std::vector<uint64_t> counts;
  for (const auto& [k, c] : seen) counts.push_back(c);
  EXPECT_LT(ChiSquare(counts), Bound(5));
}

// ------------------------------------------------------------ writing

class ShuffleTest : public test::TempDirTest {
 protected:
  // `shards` native shards of `per_shard` samples: key s<shard>/<i>, a
  // `bytes`-byte field that names the sample, and cls = i % 10.
  std::string MakeDataset(int shards, int per_shard, size_t bytes) {
    std::vector<std::string> paths;
    for (int s = 0; s < shards; ++s) {
      std::vector<test::Plain> samples;
      for (int i = 0; i < per_shard; ++i) {
        std::string key = fmt::format("s{}/{:05d}", s, i);
        std::string data = key;
        data.resize(bytes, static_cast<char>('a' + (i % 26)));
        samples.push_back(test::Plain{key, {{"bin", data}, {"cls", std::to_string(i % 10)}}});
      }
      paths.push_back(Path(fmt::format("in-{}.shard", s)));
      WritePlain(paths.back(), ShardFormat::kNative, samples, WriteOptions{});
    }
    CreateDatasetOptions co;
    co.sync = false;
    auto m = CreateDataset(Path("in"), paths, co);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return Path("in");
  }

  static std::unique_ptr<View> Open(const std::string& target) {
    auto v = View::Open(target);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? std::move(*v) : nullptr;
  }

  static std::vector<test::Plain> ReadAll(const View& v) {
    std::vector<test::Plain> out;
    Sample s;
    for (uint64_t i = 0; i < v.num_samples(); ++i) {
      Status st = v.Read(i, &s);
      EXPECT_TRUE(st.ok()) << st.ToString();
      out.push_back(test::ToPlain(s));
    }
    return out;
  }
};

// The shards hold exactly the order ShuffleOrder defines, whatever --memory
// is, including when the data is many times larger than it.
TEST_F(ShuffleTest, ShardsHoldTheDefinedOrderUnderAnyMemory) {
  const std::string in = MakeDataset(5, 400, 3000);  // 2,000 samples, 6 MB
  auto src = Open(in);
  ASSERT_NE(src, nullptr);
  const auto source = ReadAll(*src);
  using Method = ShuffleOptions::Method;
  for (uint64_t bucket_samples : {0, 64}) {
    const auto order = Order(src->num_samples(), 11, bucket_samples);
    for (Method method : {Method::kAuto, Method::kDirect, Method::kScatterGather}) {
      for (uint64_t memory : {uint64_t{1} << 30, uint64_t{1} << 20}) {
        ShuffleOptions o;
        o.seed = 11;
        o.bucket_samples = bucket_samples;
        o.memory = memory;
        o.method = method;
        o.sync = false;
        o.shard_samples = 300;
        const std::string out =
            Path(fmt::format("out-{}-{}-{}", bucket_samples, static_cast<int>(method), memory));
        auto r = Shuffle(*src, out, o);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_EQ(r->samples, 2000u);
        EXPECT_EQ(r->shards, 7u);
        // 6 MB of samples: direct when they fit in --memory, unless told.
        EXPECT_EQ(r->direct, method == Method::kDirect ||
                                 (method == Method::kAuto && memory == uint64_t{1} << 30));
        if (!r->direct && memory < (1 << 21)) {
          EXPECT_GT(r->temp_bytes, 0u);
        }
        if (r->direct) {
          EXPECT_EQ(r->temp_bytes, 0u);
        }
        EXPECT_FALSE(fs::exists(fs::path(out) / ".shardset-shuffle-tmp"));
        auto shuffled = Open(out);
        ASSERT_NE(shuffled, nullptr);
        const auto got = ReadAll(*shuffled);
        ASSERT_EQ(got.size(), order.size());
        for (size_t j = 0; j < order.size(); ++j) ASSERT_EQ(got[j], source[order[j]]) << j;
      }
    }
  }
}

// Uniformity of what is written, not only of the order's definition: over
// many seeds, every (sample, output position) cell is equally likely when the
// data spans many shards and is larger than --memory, so the samples pass
// through many temporary slice files (4-sample buckets make 6 buckets).
TEST_F(ShuffleTest, WrittenOrderUniformWhenDataExceedsMemory) {
  const std::string in = MakeDataset(8, 3, 48 << 10);  // 24 samples, 1.15 MiB
  auto src = Open(in);
  ASSERT_NE(src, nullptr);
  std::map<std::string, uint64_t> sample_of;
  for (uint64_t i = 0; i < src->num_samples(); ++i) sample_of[*src->Key(i)] = i;
  const uint64_t n = src->num_samples(), trials = 1200;
  std::vector<uint64_t> cells(n * n, 0);
  uint64_t spilled_runs = 0;
  for (uint64_t seed = 0; seed < trials; ++seed) {
    ShuffleOptions o;
    o.seed = seed;
    o.bucket_samples = 4;
    o.memory = 1 << 20;
    o.sync = false;
    const std::string out = Path("u.tar");
    fs::remove(out);
    fs::remove(out + ".idx");
    auto r = Shuffle(*src, out, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    spilled_runs += r->temp_bytes > 0;
    auto got = Open(out);
    ASSERT_NE(got, nullptr);
    ASSERT_EQ(got->num_samples(), n);
    for (uint64_t j = 0; j < n; ++j) ++cells[sample_of.at(*got->Key(j)) * n + j];
  }
  EXPECT_EQ(spilled_runs, trials);  // every run went through temporary files
  EXPECT_LT(ChiSquare(cells), Bound((n - 1) * (n - 1))) << "chi-square " << ChiSquare(cells);
}

// A slice far larger than --memory (the size estimate was wrong) is gathered
// sample by sample from its file, with the same result.
TEST_F(ShuffleTest, OversizeSlicesAreReadSampleBySample) {
  // A tar.gz of zeros is estimated at 3x its compressed size, which is far
  // below the real size.
  std::vector<test::Plain> samples;
  for (int i = 0; i < 600; ++i) {
    samples.push_back(test::Plain{fmt::format("z/{:04d}", i), {{"bin", std::string(8000, '\0')}}});
    samples.back().fields[0].second[0] = static_cast<char>(i);
  }
  const std::string tar = Path("z.tar");
  WritePlain(tar, ShardFormat::kTar, samples, WriteOptions{});
  ASSERT_EQ(test::RunShell(fmt::format("gzip -k {}", tar)), 0);
  auto src = Open(tar + ".gz");
  ASSERT_NE(src, nullptr);
  ShuffleOptions o;
  o.seed = 3;
  o.memory = 1 << 20;  // the data is 4.8 MB
  o.sync = false;
  auto r = Shuffle(*src, Path("z-out.tar"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->spilled_groups, 0u);
  auto out = Open(Path("z-out.tar"));
  const auto order = Order(600, 3);
  const auto got = ReadAll(*out);
  for (size_t j = 0; j < order.size(); ++j) ASSERT_EQ(got[j], samples[order[j]]) << j;
  EXPECT_FALSE(fs::exists(Path(".z-out.tar.shuffle-tmp")));
}

TEST_F(ShuffleTest, ViewHoldsTheSameOrderAsTheShards) {
  const std::string in = MakeDataset(3, 500, 100);
  auto src = Open(in);
  for (std::string mode : {"", "cls"}) {
    ShuffleOptions o;
    o.seed = 5;
    o.interleave_by = mode;
    o.sync = false;
    auto shards = Shuffle(*src, Path("out" + mode), o);
    ASSERT_TRUE(shards.ok()) << shards.status().ToString();
    auto view = ShuffleView(*src, Path("out" + mode + ".view"), o);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    EXPECT_EQ(view->samples, 1500u);
    auto a = Open(Path("out" + mode));
    auto b = Open(Path("out" + mode + ".view"));
    EXPECT_EQ(ReadAll(*a), ReadAll(*b));
    if (!mode.empty()) {
      const auto got = ReadAll(*a);
      for (size_t j = 1; j < got.size(); ++j) {
        ASSERT_NE(got[j].fields[1].second, got[j - 1].fields[1].second) << j;
      }
    }
  }
}

TEST_F(ShuffleTest, ARerunAfterTheLastShardsWereLostResumes) {
  const std::string in = MakeDataset(2, 500, 500);
  auto src = Open(in);
  for (auto method : {ShuffleOptions::Method::kDirect, ShuffleOptions::Method::kScatterGather}) {
    SCOPED_TRACE(static_cast<int>(method));
    for (const char* d : {"full", "part"}) fs::remove_all(Path(d));
    ShuffleOptions o;
    o.method = method;
    o.seed = 9;
    o.sync = false;
    o.shard_samples = 100;
    o.memory = 1 << 20;
    auto full = Shuffle(*src, Path("full"), o);
    ASSERT_TRUE(full.ok()) << full.status().ToString();
    // An interrupted run: the first shards sealed and the state written (what
    // a kill leaves), made by running to completion and then taking back what
    // comes after shard 3.
    auto part = Shuffle(*src, Path("part"), o);
    ASSERT_TRUE(part.ok());
    fs::remove(Path("part/manifest.json"));
    for (int k = 4; k < 10; ++k) fs::remove(Path(fmt::format("part/shard-{:06d}.shard", k)));
    // The state records the four shards kept (a shard sealed but not
    // recorded is written again: DatasetWriter::ResumeFromState).
    const Manifest m = *Manifest::Load(Path("full"));
    std::string shards;
    for (int k = 0; k < 4; ++k) {
      const ManifestShard& ms = m.shards[k];
      shards += fmt::format(
          R"({}{{"path": "{}", "bytes": {}, "xxh3": "{:016x}", "source_bytes": {}, "consumed": {}}})",
          k ? "," : "", ms.path, ms.file_size, ms.xxh3, ms.source_bytes, 100 * (k + 1));
    }
    test::WriteBytes(Path("part/.shardset-pack-state.json"),
                     fmt::format(R"({{"recipe": {}, "shards": [{}]}})", m.recipe_json, shards));
    auto resumed = Shuffle(*src, Path("part"), o);
    ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
    EXPECT_EQ(resumed->resumed_samples, 400u);
    EXPECT_EQ(ReadAll(*Open(Path("part"))), ReadAll(*Open(Path("full"))));
    // Finished: a rerun does nothing; other arguments are refused.
    auto again = Shuffle(*src, Path("part"), o);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->already_complete);
    o.seed = 10;
    EXPECT_EQ(Shuffle(*src, Path("part"), o).status().code(), Status::Code::kAlreadyExists);
  }
}

TEST_F(ShuffleTest, BadArgumentsWriteNothing) {
  const std::string in = MakeDataset(1, 50, 10);
  auto src = Open(in);
  ShuffleOptions o;
  o.memory = 1000;
  EXPECT_EQ(Shuffle(*src, Path("x"), o).status().code(), Status::Code::kInvalidArgument);
  o.memory = 1 << 30;
  o.interleave_by = "path:x";
  EXPECT_EQ(Shuffle(*src, Path("x"), o).status().code(), Status::Code::kInvalidArgument);
  o.interleave_by = "field:nope";
  auto r = Shuffle(*src, Path("x"), o);
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound) << r.status().ToString();
  EXPECT_NE(r.status().message().find("s0/00000"), std::string::npos) << r.status().ToString();
  EXPECT_FALSE(fs::exists(Path("x")));
}

}  // namespace
}  // namespace shardset
