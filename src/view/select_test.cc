// Making views: exact decimals, apportionment, split, select, mix and sweeps.
#include "shardset/select.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/file.h"
#include "base/hash.h"
#include "shardset/dataset.h"
#include "shardset/view.h"
#include "testing/test_util.h"

namespace shardset {
namespace {

namespace fs = std::filesystem;
using test::ReadBytes;
using test::WriteBytes;
using u128 = unsigned __int128;

Decimal D(std::string_view text) {
  auto d = Decimal::Parse(text);
  EXPECT_TRUE(d.ok()) << text << ": " << d.status().ToString();
  return d.ok() ? *d : Decimal{};
}

// ------------------------------------------------------------ Decimal

TEST(DecimalTest, Parse) {
  struct Case {
    const char* text;
    uint64_t num;
    uint32_t scale;
  };
  for (const Case& c : {Case{"0.1", 1, 1}, Case{"1", 1, 0}, Case{"20%", 20, 2},
                        Case{"12.5%", 125, 3}, Case{"1.0", 10, 1}, Case{"0.25", 25, 2},
                        Case{"2.50", 250, 2}, Case{"0", 0, 0}, Case{"007", 7, 0},
                        Case{"100%", 100, 2}, Case{"0.000001", 1, 6},
                        Case{"0.000000000000000001", 1, 18},
                        Case{"0.000000000000000001%", 1, 20},
                        Case{"999999999999999999", 999999999999999999ull, 0}}) {
    auto d = Decimal::Parse(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status().ToString();
    EXPECT_EQ(d->num, c.num) << c.text;
    EXPECT_EQ(d->scale, c.scale) << c.text;
  }
  for (const char* bad : {"-1", "+1", "1e3", "", ".", "1.2.3", "abc", "%", "1%%", " 1", "1 ",
                          "0x10", "1,5", "inf", "nan", "-0", "%1", "1234567890123456789",
                          "0.0000000000000000000001", "0.0000000000000000001",
                          "0.0000000000000000001%"}) {
    auto d = Decimal::Parse(bad);
    EXPECT_FALSE(d.ok()) << "'" << bad << "' parsed as " << (d.ok() ? d->ToString() : "");
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), Status::Code::kInvalidArgument) << bad;
    }
  }
}

TEST(DecimalTest, ToString) {
  EXPECT_EQ(D("0.1").ToString(), "0.1");
  EXPECT_EQ(D("3").ToString(), "3");
  EXPECT_EQ(D("1.0").ToString(), "1.0");
  EXPECT_EQ(D("2.50").ToString(), "2.50");
  EXPECT_EQ(D("20%").ToString(), "0.20");
  EXPECT_EQ(D("12.5%").ToString(), "0.125");
  EXPECT_EQ(D("150%").ToString(), "1.50");
  EXPECT_EQ((Decimal{5, 3}).ToString(), "0.005");
  EXPECT_EQ((Decimal{0, 2}).ToString(), "0.00");
  EXPECT_EQ((Decimal{1234, 2}).ToString(), "12.34");
  EXPECT_EQ((Decimal{0, 0}).ToString(), "0");
  // ToString parses back to the same value and scale.
  for (const char* t : {"0.1", "3", "1.0", "0.005", "12.34", "0.00"}) {
    const Decimal d = D(t);
    const Decimal back = D(d.ToString());
    EXPECT_EQ(back.num, d.num);
    EXPECT_EQ(back.scale, d.scale);
  }
}

TEST(DecimalTest, RoundedTimesRoundsHalfUpExactly) {
  auto times = [](std::string_view d, uint64_t n) {
    auto r = D(d).RoundedTimes(n);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ~uint64_t{0};
  };
  EXPECT_EQ(times("0.5", 3), 2u);
  EXPECT_EQ(times("0.1", 70), 7u);  // 0.1 * 70 is 7.000000000000001 in binary floats
  EXPECT_EQ(times("0.15", 10), 2u);
  EXPECT_EQ(times("0.25", 10), 3u);
  EXPECT_EQ(times("0.24", 10), 2u);
  EXPECT_EQ(times("0.7", 10), 7u);
  EXPECT_EQ(times("0.29", 100), 29u);
  EXPECT_EQ(times("20%", 300), 60u);
  EXPECT_EQ(times("12.5%", 4), 1u);  // 0.5 -> 1
  EXPECT_EQ(times("12.5%", 12), 2u);  // 1.5 -> 2
  EXPECT_EQ(times("1", 12345), 12345u);
  EXPECT_EQ(times("0", 12345), 0u);
  EXPECT_EQ(times("2.5", 3), 8u);  // 7.5 -> 8
  EXPECT_EQ(times("0.000000000000000001", 499999999999999999ull), 0u);
  EXPECT_EQ(times("0.000000000000000001", 500000000000000000ull), 1u);
  const uint64_t max = ~uint64_t{0};
  EXPECT_EQ(times("1", max), max);
  EXPECT_EQ(times("0.5", max), uint64_t{1} << 63);  // 2^63 - 0.5 -> 2^63
  EXPECT_EQ(times("0.999999999999999999", max), max - 18);  // max - 18.446.. -> max - 18
  auto over = D("2").RoundedTimes(max);
  EXPECT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), Status::Code::kResourceExhausted);
  EXPECT_FALSE(D("1.00000000000000001").RoundedTimes(max).ok());
}

TEST(DecimalTest, Compare) {
  EXPECT_EQ(D("0.1").Compare(D("0.10")), 0);
  EXPECT_EQ(D("20%").Compare(D("0.2")), 0);
  EXPECT_EQ(D("0.1").Compare(D("0.25")), -1);
  EXPECT_EQ(D("1").Compare(D("0.999999999999999999")), 1);
  EXPECT_EQ(D("0").Compare(D("0.000")), 0);
  EXPECT_EQ(D("999999999999999999").Compare(D("0.000000000000000001%")), 1);
  EXPECT_EQ(D("0.000000000000000001%").Compare(D("999999999999999999")), -1);
  EXPECT_EQ(D("100%").Compare(D("1")), 0);
}

// ------------------------------------------------------------ Apportion

// The reference: floors of total * w / sum, then the largest remainders,
// ties to the earlier part (small values only).
std::vector<uint64_t> ApportionReference(uint64_t total, const std::vector<uint64_t>& w) {
  u128 sum = 0;
  for (uint64_t x : w) sum += x;
  std::vector<uint64_t> out(w.size());
  std::vector<u128> rem(w.size());
  uint64_t given = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const u128 p = static_cast<u128>(total) * w[i];
    out[i] = static_cast<uint64_t>(p / sum);
    rem[i] = p % sum;
    given += out[i];
  }
  while (given < total) {
    size_t best = 0;
    for (size_t i = 1; i < w.size(); ++i) {
      if (rem[i] > rem[best]) best = i;
    }
    ++out[best];
    rem[best] = 0;
    ++given;
  }
  return out;
}

TEST(ApportionTest, LargestRemainderTiesToEarlier) {
  using V = std::vector<uint64_t>;
  EXPECT_EQ(Apportion(1000, {D("0.8"), D("0.1"), D("0.1")}), (V{800, 100, 100}));
  EXPECT_EQ(Apportion(10, {D("1"), D("1"), D("1")}), (V{4, 3, 3}));
  EXPECT_EQ(Apportion(11, {D("1"), D("1"), D("1")}), (V{4, 4, 3}));
  EXPECT_EQ(Apportion(3, {D("0.5"), D("0.5")}), (V{2, 1}));
  EXPECT_EQ(Apportion(10, {D("1"), D("2")}), (V{3, 7}));
  EXPECT_EQ(Apportion(7, {D("0.15"), D("0.85")}), (V{1, 6}));  // 1.05, 5.95
  EXPECT_EQ(Apportion(0, {D("1"), D("1")}), (V{0, 0}));
  EXPECT_EQ(Apportion(5, {D("0"), D("1")}), (V{0, 5}));
  EXPECT_EQ(Apportion(5, {D("0"), D("0")}), (V{0, 0}));
  EXPECT_EQ(Apportion(5, {}), V{});
  // Scales mix: 20% and 0.3 and 1/2.
  EXPECT_EQ(Apportion(9, {D("20%"), D("0.3"), D("0.5")}), (V{2, 3, 4}));  // 1.8 2.7 4.5
}

TEST(ApportionTest, MatchesReferenceAndSumsToTotal) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 3000; ++round) {
    const size_t parts = 1 + rng() % 6;
    std::vector<uint64_t> w(parts);
    std::vector<Decimal> weights(parts);
    uint64_t sum = 0;
    for (size_t i = 0; i < parts; ++i) {
      w[i] = rng() % (round % 3 == 0 ? 5 : 1000);
      sum += w[i];
    }
    if (sum == 0) continue;
    const uint32_t scale = static_cast<uint32_t>(rng() % 4);
    for (size_t i = 0; i < parts; ++i) weights[i] = Decimal{w[i], scale};
    const uint64_t total = round % 2 == 0 ? rng() % 100 : rng() >> (rng() % 64);
    const auto got = Apportion(total, weights);
    ASSERT_EQ(got, ApportionReference(total, w)) << "round " << round << " total " << total;
  }
}

TEST(ApportionTest, HugeTotals) {
  const uint64_t max = ~uint64_t{0};  // 3 * 6148914691236517205
  using V = std::vector<uint64_t>;
  EXPECT_EQ(Apportion(max, {D("1"), D("1"), D("1")}),
            (V{6148914691236517205ull, 6148914691236517205ull, 6148914691236517205ull}));
  EXPECT_EQ(Apportion(max, {D("1"), D("2")}), (V{6148914691236517205ull, 12297829382473034410ull}));
  EXPECT_EQ(Apportion(max, {D("0.5"), D("0.5")}), (V{uint64_t{1} << 63, (uint64_t{1} << 63) - 1}));
  EXPECT_EQ(Apportion(max, {D("1"), D("0")}), (V{max, 0}));
  // Weights that need all 128 bits: their sum is past 2^127.
  const Decimal big = D("999999999999999999");
  const Decimal tiny = D("0.000000000000000001%");
  EXPECT_EQ(Apportion(3, {big, big, tiny}), (V{2, 1, 0}));
  EXPECT_EQ(Apportion(max, {big, tiny}), (V{max, 0}));
  const auto a = Apportion(max, {big, big, tiny});
  EXPECT_EQ(a, (V{uint64_t{1} << 63, (uint64_t{1} << 63) - 1, 0}));
  // Sum is exact for many random huge cases.
  std::mt19937_64 rng(5);
  for (int i = 0; i < 500; ++i) {
    std::vector<Decimal> w;
    for (int k = 0; k < 4; ++k) {
      w.push_back(Decimal{rng() % 1000000000000000000ull, static_cast<uint32_t>(rng() % 19)});
    }
    const uint64_t total = rng();
    const auto got = Apportion(total, w);
    u128 s = 0;
    for (uint64_t x : got) s += x;
    ASSERT_EQ(s, static_cast<u128>(total)) << i;
  }
}

// ------------------------------------------------------------ fixtures

std::string KeyOf(uint64_t i) { return fmt::format("k{:06}", i); }

// The documented score (select.h): SplitMix64's finalizer over
// base + (pos + 1) * golden, base = XXH3-64 of the salt seeded with the seed.
uint64_t Score(std::string_view salt, uint64_t seed, uint64_t pos) {
  uint64_t z = XXH3_64bits_withSeed(salt.data(), salt.size(), seed) +
               (pos + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Positions 0..n-1 ordered by (score, pos).
std::vector<uint64_t> Ranked(std::string_view salt, uint64_t seed, uint64_t n) {
  std::vector<std::pair<uint64_t, uint64_t>> v;
  for (uint64_t p = 0; p < n; ++p) v.emplace_back(Score(salt, seed, p), p);
  std::sort(v.begin(), v.end());
  std::vector<uint64_t> out;
  for (const auto& [s, p] : v) out.push_back(p);
  return out;
}

class SelectTest : public test::TempDirTest {
 protected:
  // A native shard: key KeyOf(i) (or keys[i]), field cls = labels[i].
  std::string MakeShard(const std::string& name, const std::vector<std::string>& labels,
                        const std::vector<std::string>& keys = {}) {
    std::vector<test::Plain> samples;
    for (size_t i = 0; i < labels.size(); ++i) {
      samples.push_back(test::Plain{keys.empty() ? KeyOf(i) : keys[i],
                                    {{"cls", labels[i]}, {"txt", fmt::format("text {}", i)}}});
    }
    const std::string path = Path(name);
    WritePlain(path, ShardFormat::kNative, samples, WriteOptions{});
    return path;
  }
  std::string MakeShard(const std::string& name, uint64_t n) {
    std::vector<std::string> labels;
    for (uint64_t i = 0; i < n; ++i) labels.push_back(std::to_string(i % 10));
    return MakeShard(name, labels);
  }

  std::unique_ptr<View> Open(const std::string& target) {
    auto v = View::Open(target);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? std::move(*v) : nullptr;
  }

  std::vector<ViewEntry> Entries(const std::string& view) {
    std::vector<ViewEntry> out;
    auto v = Open(view);
    if (v == nullptr) return out;
    for (uint64_t i = 0; i < v->num_samples(); ++i) out.push_back(v->entry(i));
    return out;
  }

  std::vector<uint64_t> Ordinals(const std::string& view) {
    std::vector<uint64_t> out;
    for (const ViewEntry& e : Entries(view)) out.push_back(e.ordinal);
    return out;
  }

  std::vector<std::string> Keys(const std::string& view) {
    std::vector<std::string> out;
    auto v = Open(view);
    if (v == nullptr) return out;
    for (uint64_t i = 0; i < v->num_samples(); ++i) out.push_back(*v->Key(i));
    return out;
  }

  // Names in dir_ (or a folder in it), to check that nothing was written.
  std::set<std::string> Listing(const std::string& sub = "") {
    std::set<std::string> out;
    const std::string d = sub.empty() ? dir_ : Path(sub);
    if (!fs::exists(d)) return out;
    for (const auto& e : fs::recursive_directory_iterator(d)) {
      out.insert(fs::relative(e.path(), d).string());
    }
    return out;
  }

  static SplitOptions Ratios(std::vector<std::pair<std::string, std::string>> parts,
                             uint64_t seed = 1) {
    SplitOptions o;
    for (auto& [name, ratio] : parts) o.parts.push_back(SplitPart{name, D(ratio), ""});
    o.seed = seed;
    o.sync = false;
    return o;
  }
};

// ------------------------------------------------------------ split

TEST_F(SelectTest, SplitRatiosExactDisjointComplete) {
  auto src = Open(MakeShard("a.shard", 1000));
  ASSERT_NE(src, nullptr);
  auto r = Split(*src, Path("out"), Ratios({{"train", "0.8"}, {"val", "0.1"}, {"test", "0.1"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->views.size(), 3u);
  EXPECT_EQ(r->left_out, 0u);
  EXPECT_EQ(r->views[0].path, Path("out/train.view"));
  EXPECT_EQ(r->views[0].samples, 800u);
  EXPECT_EQ(r->views[1].samples, 100u);
  EXPECT_EQ(r->views[2].samples, 100u);
  EXPECT_EQ(r->views[0].per_source, std::vector<uint64_t>{800});
  std::vector<uint64_t> all;
  const uint64_t expect[3] = {800, 100, 100};
  int i = 0;
  for (const char* part : {"train", "val", "test"}) {
    const auto ords = Ordinals(Path(fmt::format("out/{}.view", part)));
    EXPECT_EQ(ords.size(), expect[i++]);
    EXPECT_TRUE(std::is_sorted(ords.begin(), ords.end())) << part << " is not in source order";
    all.insert(all.end(), ords.begin(), ords.end());
    auto v = Open(Path(fmt::format("out/{}.view", part)));
    ASSERT_NE(v, nullptr);
    EXPECT_NE(v->recipe_json().find(fmt::format("\"part\":\"{}\"", part)), std::string::npos)
        << v->recipe_json();
  }
  std::sort(all.begin(), all.end());
  std::vector<uint64_t> every(1000);
  for (uint64_t k = 0; k < 1000; ++k) every[k] = k;
  EXPECT_EQ(all, every) << "parts overlap or miss samples";
  // The documented choice: by rank of the "split" score.
  const auto ranked = Ranked("split", 1, 1000);
  std::vector<uint64_t> train(ranked.begin(), ranked.begin() + 800);
  std::sort(train.begin(), train.end());
  EXPECT_EQ(Ordinals(Path("out/train.view")), train);
  std::vector<uint64_t> test_part(ranked.begin() + 900, ranked.end());
  std::sort(test_part.begin(), test_part.end());
  EXPECT_EQ(Ordinals(Path("out/test.view")), test_part);
}

TEST_F(SelectTest, SplitIsDeterministicBySeed) {
  auto src = Open(MakeShard("a.shard", 1000));
  ASSERT_NE(src, nullptr);
  auto parts = Ratios({{"train", "0.8"}, {"val", "0.1"}, {"test", "0.1"}}, 42);
  ASSERT_TRUE(Split(*src, Path("one"), parts).ok());
  ASSERT_TRUE(Split(*src, Path("two"), parts).ok());
  for (const char* part : {"train.view", "val.view", "test.view"}) {
    EXPECT_EQ(ReadBytes(Path(std::string("one/") + part)),
              ReadBytes(Path(std::string("two/") + part)))
        << part;
  }
  parts.seed = 43;
  ASSERT_TRUE(Split(*src, Path("three"), parts).ok());
  EXPECT_NE(Ordinals(Path("one/val.view")), Ordinals(Path("three/val.view")));
  EXPECT_EQ(Ordinals(Path("three/val.view")).size(), 100u);
}

TEST_F(SelectTest, SplitRatiosBelowOneLeaveTheRestOut) {
  auto src = Open(MakeShard("a.shard", 1000));
  ASSERT_NE(src, nullptr);
  auto r = Split(*src, Path("out"), Ratios({{"a", "0.25"}, {"b", "25%"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->views[0].samples, 250u);
  EXPECT_EQ(r->views[1].samples, 250u);
  EXPECT_EQ(r->left_out, 500u);
  auto a = Ordinals(Path("out/a.view")), b = Ordinals(Path("out/b.view"));
  std::vector<uint64_t> both;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
  EXPECT_TRUE(both.empty());
  // Rounding: 0.333 + 0.333 of 10 = 6.66 -> 7 samples in all.
  auto src10 = Open(MakeShard("ten.shard", 10));
  auto r10 = Split(*src10, Path("out10"), Ratios({{"a", "0.333"}, {"b", "0.333"}}));
  ASSERT_TRUE(r10.ok()) << r10.status().ToString();
  EXPECT_EQ(r10->views[0].samples + r10->views[1].samples, 7u);
  EXPECT_EQ(r10->left_out, 3u);
}

TEST_F(SelectTest, SplitRefusesBadOptionsWritingNothing) {
  auto src = Open(MakeShard("a.shard", 100));
  ASSERT_NE(src, nullptr);
  const auto before = Listing();
  auto expect_invalid = [&](const SplitOptions& o, std::string_view what) {
    auto r = Split(*src, Path("out"), o);
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << what << ": "
                                                                  << r.status().ToString();
    EXPECT_EQ(Listing(), before) << what << " wrote something";
  };
  expect_invalid(Ratios({{"train", "0.8"}, {"val", "0.3"}}), "sum past 1");
  expect_invalid(Ratios({{"train", "1.00000000000000001"}}), "sum just past 1");
  expect_invalid(Ratios({}), "no parts");
  // Ratios whose exact sum would wrap around 128 bits.
  expect_invalid(Ratios({{"a", "999999999999999999"}, {"b", "999999999999999999"},
                         {"c", "999999999999999999"}, {"d", "999999999999999999"},
                         {"e", "0.000000000000000001%"}}),
                 "huge ratios");
  expect_invalid(Ratios({{"train", "0.5"}, {"train", "0.5"}}), "duplicate");
  expect_invalid(Ratios({{"a/b", "0.5"}}), "slash");
  expect_invalid(Ratios({{"", "0.5"}}), "empty name");
  expect_invalid(Ratios({{"..", "0.5"}}), "dot dot");
  auto r = Split(*src, Path("out"), Ratios({{"train", "0.8"}, {"val", "0.3"}}));
  EXPECT_NE(r.status().message().find("train=0.8"), std::string::npos) << r.status().ToString();
  // Stratifying by a field the samples lack: NotFound, nothing written.
  auto o = Ratios({{"train", "0.5"}, {"test", "0.5"}});
  o.stratify = true;
  o.label_field = "label";
  auto missing = Split(*src, Path("out"), o);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
  EXPECT_EQ(Listing(), before);
}

TEST_F(SelectTest, SplitStratifiedKeepsEveryLabelWithinOne) {
  // Ten labels of very uneven sizes, interleaved at random.
  const std::vector<uint64_t> sizes = {7, 13, 50, 99, 100, 101, 250, 333, 512, 700};
  std::vector<std::string> labels;
  for (size_t l = 0; l < sizes.size(); ++l) {
    for (uint64_t i = 0; i < sizes[l]; ++i) labels.push_back(fmt::format("L{}", l));
  }
  std::mt19937_64 rng(1);
  std::shuffle(labels.begin(), labels.end(), rng);
  auto src = Open(MakeShard("a.shard", labels));
  ASSERT_NE(src, nullptr);
  for (const auto& ratios : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"train", "0.8"}, {"val", "0.1"}, {"test", "0.1"}},
           {{"train", "0.7"}, {"val", "0.15"}, {"test", "0.15"}},
           {{"train", "0.333"}, {"val", "0.333"}, {"test", "0.334"}},
           {{"train", "0.45"}, {"test", "0.05"}},  // half left out
           {{"a", "0.2"}, {"b", "0"}, {"c", "0.8"}}}) {
    for (uint64_t seed : {1u, 2u, 3u}) {
      auto o = Ratios(ratios, seed);
      o.stratify = true;
      const std::string out = Path(fmt::format("out-{}-{}", ratios[0].second, seed));
      auto r = Split(*src, out, o);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      std::set<uint64_t> seen;
      uint64_t total = 0;
      for (size_t p = 0; p < ratios.size(); ++p) {
        const Decimal ratio = D(ratios[p].second);
        std::map<std::string, uint64_t> per_label;
        for (uint64_t ord : Ordinals(JoinPath(out, ratios[p].first + ".view"))) {
          EXPECT_TRUE(seen.insert(ord).second) << "sample " << ord << " in two parts";
          ++per_label[labels[ord]];
          ++total;
        }
        for (size_t l = 0; l < sizes.size(); ++l) {
          const std::string label = fmt::format("L{}", l);
          // |count - n_g * r| < 1, exactly: count * 10^s within 10^s of n_g * num.
          const u128 exact = static_cast<u128>(sizes[l]) * ratio.num;
          u128 unit = 1;
          for (uint32_t k = 0; k < ratio.scale; ++k) unit *= 10;
          const u128 got = static_cast<u128>(per_label[label]) * unit;
          const u128 diff = got > exact ? got - exact : exact - got;
          EXPECT_LT(diff, unit) << label << " (" << sizes[l] << ") in " << ratios[p].first << "="
                                << ratios[p].second << " seed " << seed << ": "
                                << per_label[label];
        }
      }
      EXPECT_EQ(total + r->left_out, labels.size());
      // Each label fully used when the ratios sum to 1.
      if (ratios.size() == 3) {
        EXPECT_EQ(r->left_out, 0u);
      }
    }
  }
}

// Random label sizes and ratios: every (label, part) count within one of
// exact (strictly: never a whole sample off), nothing in two parts, and all
// used when the ratios sum to 1.
TEST_F(SelectTest, SplitStratifiedRandomized) {
  std::mt19937_64 rng(12);
  for (int round = 0; round < 300; ++round) {
    SCOPED_TRACE(round);
    const size_t num_labels = 1 + rng() % 12;
    std::vector<uint64_t> sizes(num_labels);
    std::vector<std::string> labels;
    for (size_t l = 0; l < num_labels; ++l) {
      sizes[l] = rng() % 4 == 0 ? 1 + rng() % 3 : 1 + rng() % 60;
      for (uint64_t i = 0; i < sizes[l]; ++i) labels.push_back(std::to_string(l));
    }
    std::shuffle(labels.begin(), labels.end(), rng);
    const std::string shard = fmt::format("r{}.shard", round);
    auto src = Open(MakeShard(shard, labels));
    ASSERT_NE(src, nullptr);
    // Ratios in thousandths summing to 1000 (or less, every third round),
    // zeros among them.
    const size_t parts = 2 + rng() % 4;
    const uint64_t budget = round % 3 == 2 ? 1 + rng() % 999 : 1000;
    std::vector<uint64_t> th(parts, 0);
    uint64_t left = budget;
    for (size_t p = 0; p + 1 < parts; ++p) {
      th[p] = rng() % 5 == 0 ? 0 : rng() % (left + 1);
      left -= th[p];
    }
    th[parts - 1] = left;
    std::vector<std::pair<std::string, std::string>> ratios;
    for (size_t p = 0; p < parts; ++p) {
      ratios.emplace_back(fmt::format("p{}", p), Decimal{th[p], 3}.ToString());
    }
    auto o = Ratios(ratios, rng());
    o.stratify = true;
    const std::string out = Path(fmt::format("out{}", round));
    auto r = Split(*src, out, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::set<uint64_t> seen;
    for (size_t p = 0; p < parts; ++p) {
      std::vector<uint64_t> per_label(num_labels, 0);
      for (uint64_t ord : Ordinals(JoinPath(out, ratios[p].first + ".view"))) {
        ASSERT_TRUE(seen.insert(ord).second);
        ++per_label[std::stoul(labels[ord])];
      }
      for (size_t l = 0; l < num_labels; ++l) {
        const int64_t exact = static_cast<int64_t>(sizes[l] * th[p]);  // in thousandths
        const int64_t got = static_cast<int64_t>(per_label[l]) * 1000;
        EXPECT_LT(std::abs(got - exact), 1000)
            << "label " << l << " (" << sizes[l] << ") part " << p << " ratio "
            << ratios[p].second << ": " << per_label[l];
      }
    }
    if (budget == 1000) {
      EXPECT_EQ(r->left_out, 0u);
    }
    EXPECT_EQ(seen.size() + r->left_out, labels.size());
  }
}

// Labels that are numbers and labels that are words, mixed (the labels'
// order decides the order groups get their leftover samples in).
TEST_F(SelectTest, SplitStratifiedMixedLabels) {
  std::vector<std::string> names = {"9", "10", "1x", "2", "02", "background", "100", "1",
                                    "", "a", "Z", "20", "3", "x1", "-1", "18446744073709551616",
                                    "7", "07", "0", " 5"};
  std::vector<std::string> labels;
  for (size_t i = 0; i < names.size(); ++i) {
    for (size_t k = 0; k < 3 + i % 5; ++k) labels.push_back(names[i]);
  }
  std::mt19937_64 rng(4);
  std::shuffle(labels.begin(), labels.end(), rng);
  auto src = Open(MakeShard("a.shard", labels));
  ASSERT_NE(src, nullptr);
  auto o = Ratios({{"train", "0.5"}, {"val", "0.3"}, {"test", "0.2"}});
  o.stratify = true;
  auto r = Split(*src, Path("out"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::map<std::string, uint64_t> train;
  for (uint64_t ord : Ordinals(Path("out/train.view"))) ++train[labels[ord]];
  for (size_t i = 0; i < names.size(); ++i) {
    const uint64_t n = 3 + i % 5;
    EXPECT_TRUE(train[names[i]] == n / 2 || train[names[i]] == (n + 1) / 2)
        << "'" << names[i] << "': " << train[names[i]] << " of " << n;
  }
  EXPECT_EQ(r->left_out, 0u);
}

TEST_F(SelectTest, SplitByPrefix) {
  const std::vector<std::string> keys = {"test/0",  "test/1",      "train",        "train/0",
                                         "train/1", "train/sub/2", "training/x",   "trainz",
                                         "val/0",   "zzz/0"};
  auto src = Open(MakeShard("a.shard", std::vector<std::string>(keys.size(), "0"), keys));
  ASSERT_NE(src, nullptr);
  SplitOptions o;
  o.by_prefix = true;
  o.sync = false;
  o.parts = {SplitPart{"train", {}, "train"}, SplitPart{"test", {}, "test/"},
             SplitPart{"val", {}, "val"}};
  auto r = Split(*src, Path("out"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Keys(Path("out/train.view")),
            (std::vector<std::string>{"train", "train/0", "train/1", "train/sub/2"}));
  EXPECT_EQ(Keys(Path("out/test.view")), (std::vector<std::string>{"test/0", "test/1"}));
  EXPECT_EQ(Keys(Path("out/val.view")), (std::vector<std::string>{"val/0"}));
  EXPECT_EQ(r->left_out, 3u);  // training/x, trainz, zzz/0
}

TEST_F(SelectTest, SplitOfAViewOfSeveralSources) {
  MakeShard("a.shard", 100);
  MakeShard("b.shard", 50);
  auto a = Open(Path("a.shard"));
  auto b = Open(Path("b.shard"));
  MixOptions mo;
  mo.sync = false;
  mo.parts = {MixPart{"a", a.get(), MixPart::Kind::kFraction, D("0.5")},
              MixPart{"b", b.get(), MixPart::Kind::kAll, {}}};
  ASSERT_TRUE(Mix(mo, Path("mix.view")).ok());
  auto mix = Open(Path("mix.view"));
  ASSERT_NE(mix, nullptr);
  ASSERT_EQ(mix->num_samples(), 100u);
  auto r = Split(*mix, Path("out"), Ratios({{"train", "0.9"}, {"test", "0.1"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto train = Entries(Path("out/train.view")), test_part = Entries(Path("out/test.view"));
  EXPECT_EQ(train.size(), 90u);
  EXPECT_EQ(test_part.size(), 10u);
  std::vector<std::pair<uint32_t, uint64_t>> got, want;
  for (const auto& e : train) got.emplace_back(e.source, e.ordinal);
  for (const auto& e : test_part) got.emplace_back(e.source, e.ordinal);
  for (const auto& e : Entries(Path("mix.view"))) want.emplace_back(e.source, e.ordinal);
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  auto t = Open(Path("out/train.view"));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->num_sources(), 2u);
  EXPECT_EQ(t->source(0).name, "a");
  EXPECT_EQ(t->source(1).name, "b");
  // Keys read through the split equal the mix's.
  for (uint64_t i = 0; i < t->num_samples(); i += 7) {
    auto k = t->Key(i);
    ASSERT_TRUE(k.ok());
    EXPECT_TRUE(mix->Find(*k).ok());
  }
}

// ------------------------------------------------------------ select

class SelectTreeTest : public SelectTest {
 protected:
  void SetUp() override {
    SelectTest::SetUp();
    keys_ = {"testing/3/10",  "testing/5/1",   "training/3/12", "training/3/2",
             "training/3/x/12", "training/5/1", "training/5/17", "training/7/1"};
    labels_ = {"3", "5", "3", "3", "3", "5", "5", "7"};
    src_ = Open(MakeShard("a.shard", labels_, keys_));
    ASSERT_NE(src_, nullptr);
  }
  SelectOptions Options() {
    SelectOptions o;
    o.sync = false;
    return o;
  }
  std::vector<std::string> keys_, labels_;
  std::unique_ptr<View> src_;
};

TEST_F(SelectTreeTest, Labels) {
  auto o = Options();
  o.labels = {"3", "7"};
  auto r = Select(*src_, Path("s.view"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->samples, 5u);
  EXPECT_EQ(r->per_source, std::vector<uint64_t>{5});
  EXPECT_EQ(Keys(Path("s.view")),
            (std::vector<std::string>{"testing/3/10", "training/3/12", "training/3/2",
                                      "training/3/x/12", "training/7/1"}));
  o.labels = {"nope"};
  auto none = Select(*src_, Path("none.view"), o);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->samples, 0u);
  EXPECT_EQ(Open(Path("none.view"))->num_samples(), 0u);
}

TEST_F(SelectTreeTest, GlobStarStopsAtSlash) {
  auto o = Options();
  o.glob = "training/*/1*";
  ASSERT_TRUE(Select(*src_, Path("g.view"), o).ok());
  EXPECT_EQ(Keys(Path("g.view")),
            (std::vector<std::string>{"training/3/12", "training/5/1", "training/5/17",
                                      "training/7/1"}));
  // Glob and labels together: both must pass.
  o.labels = {"5"};
  ASSERT_TRUE(Select(*src_, Path("gl.view"), o).ok());
  EXPECT_EQ(Keys(Path("gl.view")), (std::vector<std::string>{"training/5/1", "training/5/17"}));
  o.labels.clear();
  o.glob = "*";
  ASSERT_TRUE(Select(*src_, Path("star.view"), o).ok());
  EXPECT_TRUE(Keys(Path("star.view")).empty()) << "'*' crossed a '/'";
}

TEST_F(SelectTreeTest, KeysFileKeepsItsOrder) {
  WriteBytes(Path("keys.txt"), "training/7/1\r\n\ntesting/3/10\ntraining/3/x/12\ntraining/7/1");
  auto o = Options();
  o.keys_file = Path("keys.txt");
  auto r = Select(*src_, Path("k.view"), o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Keys(Path("k.view")), (std::vector<std::string>{"training/7/1", "testing/3/10",
                                                            "training/3/x/12", "training/7/1"}));
  // With labels too: the file's order, filtered.
  o.labels = {"3"};
  ASSERT_TRUE(Select(*src_, Path("k3.view"), o).ok());
  EXPECT_EQ(Keys(Path("k3.view")),
            (std::vector<std::string>{"testing/3/10", "training/3/x/12"}));
}

TEST_F(SelectTreeTest, MissingKeyIsNotFoundAndWritesNothing) {
  WriteBytes(Path("keys.txt"), "training/7/1\ntraining/9/9\ntesting/3/10\nalso/missing\n");
  const auto before = Listing();
  auto o = Options();
  o.keys_file = Path("keys.txt");
  auto r = Select(*src_, Path("k.view"), o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("training/9/9"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("line 2"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("2 of its 4 keys"), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(r.status().message().find(Path("keys.txt"), 1), std::string::npos)
      << "names the file twice: " << r.status().ToString();
  EXPECT_EQ(Listing(), before);
  // A keys file that does not exist.
  o.keys_file = Path("nope.txt");
  EXPECT_TRUE(Select(*src_, Path("k.view"), o).status().IsNotFound());
  EXPECT_EQ(Listing(), before);
}

TEST_F(SelectTreeTest, MissingLabelFieldIsNotFound) {
  auto o = Options();
  o.labels = {"3"};
  o.label_field = "label";
  auto r = Select(*src_, Path("s.view"), o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  EXPECT_FALSE(fs::exists(Path("s.view")));
}

TEST_F(SelectTreeTest, NoFilterSelectsAllAndReadsTheSame) {
  auto r = Select(*src_, Path("all.view"), Options());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Keys(Path("all.view")), keys_);
  // A select of a select reads through both.
  auto v = Open(Path("all.view"));
  ASSERT_NE(v, nullptr);
  auto o = Options();
  o.glob = "testing/*/*";
  // Into a folder that does not exist: an error, not a crash.
  EXPECT_FALSE(Select(*v, Path("nodir/t.view"), o).ok());
  fs::create_directories(Path("sub"));
  ASSERT_TRUE(Select(*v, Path("sub/t.view"), o).ok());
  EXPECT_EQ(Keys(Path("sub/t.view")), (std::vector<std::string>{"testing/3/10", "testing/5/1"}));
}

// ------------------------------------------------------------ mix

class MixTest : public SelectTest {
 protected:
  void SetUp() override {
    SelectTest::SetUp();
    a_ = Open(MakeShard("a.shard", 1000));
    b_ = Open(MakeShard("b.shard", 300));
    c_ = Open(MakeShard("c.shard", 10));
    ASSERT_TRUE(a_ && b_ && c_);
  }
  MixPart Part(const std::string& name, const View* v, MixPart::Kind kind,
               std::string_view amount = "0") {
    return MixPart{name, v, kind, D(amount)};
  }
  MixOptions Options(std::vector<MixPart> parts, uint64_t seed = 1) {
    MixOptions o;
    o.parts = std::move(parts);
    o.seed = seed;
    o.sync = false;
    return o;
  }
  // How many times each (source, ordinal) is in a view.
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> Multiset(const std::string& view) {
    std::map<std::pair<uint32_t, uint64_t>, uint64_t> m;
    for (const ViewEntry& e : Entries(view)) ++m[{e.source, e.ordinal}];
    return m;
  }
  std::unique_ptr<View> a_, b_, c_;
};

TEST_F(MixTest, FractionsAreExactCounts) {
  using K = MixPart::Kind;
  auto o = Options({Part("a", a_.get(), K::kFraction, "0.15"),
                    Part("b", b_.get(), K::kFraction, "20%"),
                    Part("c", c_.get(), K::kFraction, "0.25")});
  auto r = Mix(o, Path("m.view"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->per_source, (std::vector<uint64_t>{150, 60, 3}));  // 2.5 -> 3
  EXPECT_EQ(r->samples, 213u);
  auto v = Open(Path("m.view"));
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->num_sources(), 3u);
  EXPECT_EQ(v->source(0).name, "a");
  EXPECT_EQ(v->source(1).name, "b");
  EXPECT_EQ(v->source(2).name, "c");
  EXPECT_EQ(v->source(0).selected, 150u);
  EXPECT_EQ(v->source(2).selected, 3u);
  const auto m = Multiset(Path("m.view"));
  EXPECT_EQ(m.size(), 213u);
  for (const auto& [e, count] : m) EXPECT_EQ(count, 1u) << "a sample twice without --replace";
  // Parts stay in order, each in source order.
  const auto entries = Entries(Path("m.view"));
  EXPECT_TRUE(std::is_sorted(entries.begin(), entries.end(), [](const auto& x, const auto& y) {
    return std::make_pair(x.source, x.ordinal) < std::make_pair(y.source, y.ordinal);
  }));
  // The documented choice: the 150 smallest scores salted with the part's name.
  const auto ranked = Ranked("a", 1, 1000);
  std::vector<uint64_t> want(ranked.begin(), ranked.begin() + 150);
  std::sort(want.begin(), want.end());
  std::vector<uint64_t> got;
  for (const auto& e : entries) {
    if (e.source == 0) got.push_back(e.ordinal);
  }
  EXPECT_EQ(got, want);
}

TEST_F(MixTest, CountsAllAndWeights) {
  using K = MixPart::Kind;
  auto r = Mix(Options({Part("a", a_.get(), K::kCount, "123"), Part("b", b_.get(), K::kAll),
                        Part("c", c_.get(), K::kCount, "10")}),
               Path("m.view"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->per_source, (std::vector<uint64_t>{123, 300, 10}));
  auto o = Options({Part("a", a_.get(), K::kWeight, "1"), Part("b", b_.get(), K::kWeight, "3")});
  o.size = 100;
  auto w = Mix(o, Path("w.view"));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->per_source, (std::vector<uint64_t>{25, 75}));
  // A fixed part first, the weighted ones share the rest (201: ties to the earlier).
  o = Options({Part("c", c_.get(), K::kCount, "100"), Part("a", a_.get(), K::kWeight, "1"),
               Part("b", b_.get(), K::kWeight, "1")});
  o.size = 301;
  o.replace = true;  // c has 10 samples
  auto f = Mix(o, Path("f.view"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->per_source, (std::vector<uint64_t>{100, 101, 100}));
}

TEST_F(MixTest, SameSeedSameBytesOtherSeedOtherSamples) {
  using K = MixPart::Kind;
  auto o = Options({Part("a", a_.get(), K::kFraction, "0.3"), Part("b", b_.get(), K::kCount, "7")},
                   9);
  ASSERT_TRUE(Mix(o, Path("one.view")).ok());
  ASSERT_TRUE(Mix(o, Path("two.view")).ok());
  EXPECT_EQ(ReadBytes(Path("one.view")), ReadBytes(Path("two.view")));
  o.seed = 10;
  ASSERT_TRUE(Mix(o, Path("three.view")).ok());
  EXPECT_NE(Entries(Path("one.view")), Entries(Path("three.view")));
  EXPECT_EQ(Entries(Path("three.view")).size(), 307u);
}

TEST_F(MixTest, SweepIsNestedWithExactCounts) {
  using K = MixPart::Kind;
  auto o = Options({Part("a", a_.get(), K::kAll), Part("b", b_.get(), K::kFraction, "0")});
  auto r = MixSweep(o, "b", D("0"), D("1"), D("0.1"), Path("sweep"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 11u);
  std::vector<std::map<std::pair<uint32_t, uint64_t>, uint64_t>> sets;
  for (size_t k = 0; k < 11; ++k) {
    const std::string name = fmt::format("a-all+b-{}.view", Decimal{k, 1}.ToString());
    EXPECT_EQ((*r)[k].path, JoinPath(Path("sweep"), name));
    ASSERT_TRUE(fs::exists(Path("sweep/" + name))) << name;
    EXPECT_EQ((*r)[k].per_source, (std::vector<uint64_t>{1000, 30 * k})) << name;
    sets.push_back(Multiset((*r)[k].path));
    EXPECT_EQ(sets.back().size(), 1000 + 30 * k);
    for (const auto& [e, count] : sets.back()) ASSERT_EQ(count, 1u);
    auto v = Open((*r)[k].path);
    ASSERT_NE(v, nullptr);
    EXPECT_NE(v->recipe_json().find("sweep_value"), std::string::npos) << v->recipe_json();
  }
  for (size_t k = 0; k + 1 < 11; ++k) {
    for (const auto& [e, count] : sets[k]) {
      ASSERT_TRUE(sets[k + 1].count(e)) << "view " << k << "'s sample (" << e.first << ", "
                                        << e.second << ") is not in view " << k + 1;
    }
  }
  EXPECT_EQ(Listing("sweep").size(), 11u);
  // A sweep member equals the single mix of that amount.
  auto single = Options({Part("a", a_.get(), K::kAll), Part("b", b_.get(), K::kFraction, "0.3")});
  ASSERT_TRUE(Mix(single, Path("single.view")).ok());
  EXPECT_EQ(Entries(Path("single.view")), Entries((*r)[3].path));
}

TEST_F(MixTest, SweepOfCounts) {
  using K = MixPart::Kind;
  auto o = Options({Part("b", b_.get(), K::kAll), Part("c", c_.get(), K::kAll)});
  auto r = MixSweep(o, "b", D("0"), D("300"), D("100"), Path("sweep"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].path, JoinPath(Path("sweep"), "b-0+c-all.view"));
  EXPECT_EQ((*r)[3].path, JoinPath(Path("sweep"), "b-300+c-all.view"));
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ((*r)[k].per_source, (std::vector<uint64_t>{100 * k, 10}));
  }
  // Stop not on a step: the last view is the last step below it.
  auto s = MixSweep(o, "b", D("0.1"), D("0.35"), D("0.1"), Path("sweep2"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[2].per_source, (std::vector<uint64_t>{90, 10}));
}

TEST_F(MixTest, ReplaceDrawsEverySampleQTimesAndRMore) {
  using K = MixPart::Kind;
  auto o = Options({Part("b", b_.get(), K::kFraction, "2.5")});
  o.replace = true;
  auto r = Mix(o, Path("r.view"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->samples, 750u);
  const auto m = Multiset(Path("r.view"));
  ASSERT_EQ(m.size(), 300u);
  uint64_t thrice = 0;
  for (const auto& [e, count] : m) {
    EXPECT_TRUE(count == 2 || count == 3) << count;
    if (count == 3) ++thrice;
  }
  EXPECT_EQ(thrice, 150u);
  // The extra ones are the first 150 by score, as a 0.5 fraction would take.
  auto half = Options({Part("b", b_.get(), K::kFraction, "0.5")});
  ASSERT_TRUE(Mix(half, Path("h.view")).ok());
  for (const auto& [e, count] : Multiset(Path("h.view"))) EXPECT_EQ(m.at(e), 3u);
  // A count past the source with replace, and a nested sweep past 1.
  auto c = Options({Part("c", c_.get(), K::kCount, "25")});
  c.replace = true;
  auto cr = Mix(c, Path("c.view"));
  ASSERT_TRUE(cr.ok());
  EXPECT_EQ(cr->samples, 25u);
  auto s = MixSweep(o, "b", D("0.5"), D("2.5"), D("0.5"), Path("sweep"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->size(), 5u);
  for (size_t k = 0; k + 1 < s->size(); ++k) {
    const auto small = Multiset((*s)[k].path), large = Multiset((*s)[k + 1].path);
    EXPECT_EQ((*s)[k].samples, 150 * (k + 1));
    for (const auto& [e, count] : small) {
      ASSERT_LE(count, large.count(e) ? large.at(e) : 0) << "sweep " << k << " not nested";
    }
  }
}

TEST_F(MixTest, BadRecipesWriteNothing) {
  using K = MixPart::Kind;
  auto empty = Open(MakeShard("empty.shard", std::vector<std::string>{}));
  ASSERT_NE(empty, nullptr);
  const auto before = Listing();
  auto expect_invalid = [&](const MixOptions& o, std::string_view what) {
    auto r = Mix(o, Path("m.view"));
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument)
        << what << ": " << r.status().ToString();
    EXPECT_EQ(Listing(), before) << what << " wrote something";
    // The same bad part next to a swept one: no member is written.
    MixOptions swept = o;
    swept.parts.push_back(Part("swept", a_.get(), K::kFraction, "0"));
    auto s = MixSweep(swept, "swept", D("0"), D("1"), D("0.5"), Path("sweep"));
    ASSERT_FALSE(s.ok()) << what << " (sweep)";
    EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument)
        << what << " (sweep): " << s.status().ToString();
    EXPECT_EQ(Listing(), before) << what << " (sweep) wrote something";
  };
  expect_invalid(Options({Part("b", b_.get(), K::kFraction, "1.5")}), "fraction past 1");
  expect_invalid(Options({Part("b", b_.get(), K::kCount, "301")}), "count past n");
  expect_invalid(Options({Part("b", b_.get(), K::kCount, "2.5")}), "count not whole");
  expect_invalid(Options({Part("e", empty.get(), K::kAll)}), "empty source");
  expect_invalid(Options({Part("e", empty.get(), K::kFraction, "0.5")}), "empty source fraction");
  expect_invalid(Options({Part("b", b_.get(), K::kAll), Part("b", c_.get(), K::kAll)}),
                 "duplicate part");
  for (const char* name : {"", "a/b", "..", ".", "a b", "a+b", "é"}) {
    expect_invalid(Options({Part(name, b_.get(), K::kAll)}), name);
  }
  expect_invalid(Options({Part("b", b_.get(), K::kWeight, "1")}), "weights without size");
  auto zero = Options({Part("b", b_.get(), K::kWeight, "0"), Part("c", c_.get(), K::kWeight, "0")});
  zero.size = 5;
  expect_invalid(zero, "all weights zero");
  auto small = Options({Part("b", b_.get(), K::kCount, "100"), Part("c", c_.get(), K::kWeight, "1")});
  small.size = 50;
  expect_invalid(small, "size below the fixed parts");
  // Weights whose exact sum needs more than 128 bits.
  auto apart = Options({Part("w1", b_.get(), K::kWeight, "999999999999999999"),
                        Part("w2", b_.get(), K::kWeight, "999999999999999999"),
                        Part("w3", b_.get(), K::kWeight, "999999999999999999"),
                        Part("w4", b_.get(), K::kWeight, "999999999999999999"),
                        Part("w5", b_.get(), K::kWeight, "0.000000000000000001%")});
  apart.size = 10;
  expect_invalid(apart, "weights too far apart");
  auto heavy = Options({Part("b", b_.get(), K::kWeight, "1")});
  heavy.size = 301;
  expect_invalid(heavy, "weighted share past n");
  auto none = Mix(Options({}), Path("m.view"));
  EXPECT_EQ(none.status().code(), Status::Code::kInvalidArgument) << none.status().ToString();
  EXPECT_EQ(Listing(), before);
  // The message says what to do.
  auto r = Mix(Options({Part("b", b_.get(), K::kFraction, "1.5")}), Path("m.view"));
  EXPECT_NE(r.status().message().find("--replace"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("'b'"), std::string::npos) << r.status().ToString();
}

TEST_F(MixTest, BadSweepsWriteNothing) {
  using K = MixPart::Kind;
  auto o = Options({Part("a", a_.get(), K::kAll), Part("b", b_.get(), K::kFraction, "0")});
  const auto before = Listing();
  struct Case {
    std::string part;
    const char *start, *stop, *step;
  };
  for (const Case& c : {Case{"nope", "0", "1", "0.1"}, Case{"b", "0", "1", "0"},
                        Case{"b", "1", "0", "0.1"}, Case{"b", "0", "1.5", "0.5"},
                        Case{"b", "0", "400", "100"}, Case{"b", "0", "1", "0.00001"},
                        // 1 at the step's scale (10^20) does not fit a decimal.
                        Case{"b", "1", "1", "0.000000000000000001%"}}) {
    auto r = MixSweep(o, c.part, D(c.start), D(c.stop), D(c.step), Path("sweep"));
    ASSERT_FALSE(r.ok()) << c.part << " " << c.start << ":" << c.stop << ":" << c.step;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
    EXPECT_EQ(Listing(), before);
  }
}

TEST_F(MixTest, PartsThatAreViews) {
  using K = MixPart::Kind;
  // A mix whose part is itself a mix of two sources: its sources are named
  // part/source.
  ASSERT_TRUE(Mix(Options({Part("x", a_.get(), K::kCount, "5"), Part("y", c_.get(), K::kAll)}),
                  Path("inner.view"))
                  .ok());
  auto inner = Open(Path("inner.view"));
  ASSERT_NE(inner, nullptr);
  auto r = Mix(Options({Part("in", inner.get(), K::kAll), Part("b", b_.get(), K::kCount, "3")}),
               Path("outer.view"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto v = Open(Path("outer.view"));
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->num_sources(), 3u);
  EXPECT_EQ(v->source(0).name, "in/x");
  EXPECT_EQ(v->source(1).name, "in/y");
  EXPECT_EQ(v->source(2).name, "b");
  EXPECT_EQ(v->num_samples(), 18u);
  for (uint64_t i = 0; i < 15; ++i) EXPECT_EQ(*v->Key(i), *inner->Key(i));
}

TEST(MixNameTest, MixFileName) {
  using K = MixPart::Kind;
  EXPECT_EQ(MixFileName({MixPart{"camvid", nullptr, K::kAll, {}},
                         MixPart{"synthia", nullptr, K::kFraction, D("0.2")}}),
            "camvid-all+synthia-0.2.view");
  EXPECT_EQ(MixFileName({MixPart{"a", nullptr, K::kCount, D("100")},
                         MixPart{"b", nullptr, K::kWeight, D("1.5")}}),
            "a-100+b-w1.5.view");
  EXPECT_EQ(MixFileName({MixPart{"a", nullptr, K::kFraction, D("20%")}}), "a-0.20.view");
}

}  // namespace
}  // namespace shardset
