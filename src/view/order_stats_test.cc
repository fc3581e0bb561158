// Order statistics: exact moments against full enumeration, variances against
// simulation, and the verdict on sorted, shuffled, interleaved, clumped,
// drifting and stratified orders.
#include "view/order_stats.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace shardset {
namespace {

std::vector<std::string> Names(size_t k) {
  std::vector<std::string> names;
  for (size_t i = 0; i < k; ++i) names.push_back(fmt::format("label{}", i));
  return names;
}

// Labels in sorted order for these counts.
std::vector<uint32_t> Sorted(const std::vector<uint64_t>& counts) {
  std::vector<uint32_t> v;
  for (size_t l = 0; l < counts.size(); ++l) v.insert(v.end(), counts[l], static_cast<uint32_t>(l));
  return v;
}

OrderStats Compute(const std::vector<uint32_t>& labels, size_t k, OrderStatsOptions o = {}) {
  auto r = ComputeOrderStats(labels.data(), labels.size(), Names(k), o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : OrderStats{};
}

OrderStatsOptions NoSimulations(uint64_t window = 1000) {
  OrderStatsOptions o;
  o.window = window;
  o.simulations = 0;
  return o;
}

// Every label its own window category, as the plain formulas assume.
OrderStatsOptions Unpooled(uint64_t window) {
  OrderStatsOptions o = NoSimulations(window);
  o.min_expected = 0;
  return o;
}

uint64_t SamePairs(const std::vector<uint32_t>& v) {
  uint64_t a = 0;
  for (size_t i = 1; i < v.size(); ++i) a += v[i] == v[i - 1];
  return a;
}

uint64_t LongestRun(const std::vector<uint32_t>& v) {
  uint64_t best = 0, run = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    run = (i > 0 && v[i] == v[i - 1]) ? run + 1 : 1;
    best = std::max(best, run);
  }
  return best;
}

// Mean over complete windows of sum (o - e)^2 / e, written out plainly, over
// categories (category[label]; by default each label its own).
double WindowChi2Mean(const std::vector<uint32_t>& v, const std::vector<uint64_t>& counts,
                      uint64_t w, std::vector<uint32_t> category = {}) {
  if (category.empty()) {
    category.resize(counts.size());
    std::iota(category.begin(), category.end(), 0);
  }
  std::vector<uint64_t> cat_counts(counts.size(), 0);
  for (size_t l = 0; l < counts.size(); ++l) cat_counts[category[l]] += counts[l];
  const uint64_t windows = v.size() / w;
  double total = 0;
  for (uint64_t j = 0; j < windows; ++j) {
    std::vector<double> o(counts.size(), 0);
    for (uint64_t i = j * w; i < (j + 1) * w; ++i) o[category[v[i]]] += 1;
    for (size_t c = 0; c < counts.size(); ++c) {
      if (cat_counts[c] == 0) continue;
      const double e = static_cast<double>(w * cat_counts[c]) / static_cast<double>(v.size());
      total += (o[c] - e) * (o[c] - e) / e;
    }
  }
  return total / static_cast<double>(windows);
}

// Expected number of maximal runs of length >= k, over every distinct order.
struct Enumerated {
  double a_mean = 0, a_var = 0;
  double chi2_mean = 0, chi2_var = 0;
  std::vector<double> runs_at_least;  // index k
  std::vector<double> p_longest_at_least;
};

Enumerated Enumerate(const std::vector<uint64_t>& counts, uint64_t w) {
  std::vector<uint32_t> v = Sorted(counts);
  const size_t n = v.size();
  Enumerated e;
  e.runs_at_least.assign(n + 2, 0);
  e.p_longest_at_least.assign(n + 2, 0);
  double total = 0, a1 = 0, a2 = 0, x1 = 0, x2 = 0;
  do {
    total += 1;
    const double a = static_cast<double>(SamePairs(v));
    a1 += a;
    a2 += a * a;
    if (n / w > 0) {
      const double x = WindowChi2Mean(v, counts, w);
      x1 += x;
      x2 += x * x;
    }
    uint64_t run = 0;
    for (size_t i = 0; i <= n; ++i) {
      if (i < n && i > 0 && v[i] == v[i - 1]) {
        ++run;
        continue;
      }
      for (uint64_t k = 1; k <= run; ++k) e.runs_at_least[k] += 1;
      run = 1;
    }
    for (uint64_t k = 1; k <= LongestRun(v); ++k) e.p_longest_at_least[k] += 1;
  } while (std::next_permutation(v.begin(), v.end()));
  e.a_mean = a1 / total;
  e.a_var = a2 / total - e.a_mean * e.a_mean;
  e.chi2_mean = x1 / total;
  e.chi2_var = x2 / total - e.chi2_mean * e.chi2_mean;
  for (double& x : e.runs_at_least) x /= total;
  for (double& x : e.p_longest_at_least) x /= total;
  return e;
}

// An order of these counts whose longest run is exactly k: a run of k of the
// largest label first, the rest dealt round-robin (so runs there stay short).
std::vector<uint32_t> WithLongestRun(const std::vector<uint64_t>& counts, uint64_t k) {
  std::vector<uint64_t> left = counts;
  const size_t big = std::max_element(counts.begin(), counts.end()) - counts.begin();
  std::vector<uint32_t> v(k, static_cast<uint32_t>(big));
  left[big] -= k;
  bool any = true;
  while (any) {
    any = false;
    for (size_t l = 0; l < left.size(); ++l) {
      if (left[l] == 0) continue;
      v.push_back(static_cast<uint32_t>(l));
      --left[l];
      any = true;
    }
  }
  return v;
}

TEST(OrderStatsTest, MomentsMatchFullEnumeration) {
  struct Case {
    std::vector<uint64_t> counts;
    uint64_t window;
  };
  for (const Case& c : {Case{{3, 3, 2}, 2}, Case{{4, 2, 1, 1}, 3}, Case{{2, 2, 2, 2}, 4},
                        Case{{5, 1}, 2}, Case{{6, 3}, 4}, Case{{2, 1, 1, 1, 1, 1}, 3},
                        Case{{1, 2, 0, 3}, 5}}) {
    SCOPED_TRACE(fmt::format("counts {} window {}", fmt::join(c.counts, ","), c.window));
    const Enumerated e = Enumerate(c.counts, c.window);
    const OrderStats s = Compute(Sorted(c.counts), c.counts.size(), Unpooled(c.window));
    EXPECT_NEAR(s.same_pairs_expected, e.a_mean, 1e-9);
    EXPECT_NEAR(s.same_pairs_sd * s.same_pairs_sd, e.a_var, 1e-9);
    EXPECT_NEAR(s.runs_expected, static_cast<double>(s.n) - e.a_mean, 1e-9);
    EXPECT_NEAR(s.chi2_expected, e.chi2_mean, 1e-9);
    EXPECT_NEAR(s.chi2_sd * s.chi2_sd, e.chi2_var, 1e-9);
    // The expected number of runs >= k, seen through the bound reported for
    // an order whose longest run is k; and the bound holds.
    const uint64_t c_max = *std::max_element(c.counts.begin(), c.counts.end());
    for (uint64_t k = 1; k <= c_max; ++k) {
      const std::vector<uint32_t> v = WithLongestRun(c.counts, k);
      if (LongestRun(v) != k) continue;
      const OrderStats sk = Compute(v, c.counts.size(), NoSimulations(c.window));
      const double bound = std::pow(10.0, sk.longest_run_log10_p);
      if (e.runs_at_least[k] < 1) {
        EXPECT_NEAR(bound, e.runs_at_least[k], 1e-9) << "k=" << k;
      } else {
        EXPECT_EQ(bound, 1.0) << "k=" << k;
      }
      EXPECT_LE(e.p_longest_at_least[k], bound + 1e-12) << "k=" << k;
    }
  }
}

TEST(OrderStatsTest, VarianceFormulasMatchSimulation) {
  // Unequal classes, two rare: 6,000 samples, windows of 250 (24 of them).
  // Pooled, labels 8 and 9 (expected 3.96 and 0.21 per window, 4.17
  // together) join label 7 (8.33), the smallest above 5.
  const std::vector<uint64_t> counts = {1500, 1200, 900, 800, 600, 400, 300, 200, 95, 5};
  const std::vector<uint32_t> pooled = {0, 1, 2, 3, 4, 5, 6, 7, 7, 7};
  std::vector<uint32_t> v = Sorted(counts);
  const OrderStats s = Compute(v, counts.size(), Unpooled(250));
  const OrderStats sp = Compute(v, counts.size(), NoSimulations(250));
  EXPECT_EQ(sp.pooled_labels, 2u);
  EXPECT_EQ(sp.window_categories, 8u);
  EXPECT_NEAR(sp.chi2_mean, WindowChi2Mean(v, counts, 250, pooled), 1e-6);
  EXPECT_NEAR(s.chi2_mean, WindowChi2Mean(v, counts, 250), 1e-6);
  std::mt19937_64 rng(12345);
  const int kTrials = 4000;
  double a1 = 0, a2 = 0, x1 = 0, x2 = 0, p1 = 0, p2 = 0, l1 = 0;
  for (int t = 0; t < kTrials; ++t) {
    std::shuffle(v.begin(), v.end(), rng);
    const double a = static_cast<double>(SamePairs(v));
    const double x = WindowChi2Mean(v, counts, 250);
    const double xp = WindowChi2Mean(v, counts, 250, pooled);
    a1 += a;
    a2 += a * a;
    x1 += x;
    x2 += x * x;
    p1 += xp;
    p2 += xp * xp;
    l1 += static_cast<double>(LongestRun(v));
  }
  const double a_mean = a1 / kTrials, a_var = a2 / kTrials - a_mean * a_mean;
  const double x_mean = x1 / kTrials, x_var = x2 / kTrials - x_mean * x_mean;
  const double p_mean = p1 / kTrials, p_var = p2 / kTrials - p_mean * p_mean;
  // Means within 5 standard errors; variances within 10% (a sample variance
  // of 4,000 draws has a relative error near sqrt(2/4000) = 2.2%).
  EXPECT_NEAR(a_mean, s.same_pairs_expected, 5 * s.same_pairs_sd / std::sqrt(kTrials));
  EXPECT_NEAR(a_var / (s.same_pairs_sd * s.same_pairs_sd), 1.0, 0.1);
  EXPECT_NEAR(x_mean, s.chi2_expected, 5 * s.chi2_sd / std::sqrt(kTrials));
  EXPECT_NEAR(x_var / (s.chi2_sd * s.chi2_sd), 1.0, 0.1);
  EXPECT_NEAR(p_mean, sp.chi2_expected, 5 * sp.chi2_sd / std::sqrt(kTrials));
  EXPECT_NEAR(p_var / (sp.chi2_sd * sp.chi2_sd), 1.0, 0.1);
  // The Poisson approximation of the longest run's mean.
  EXPECT_NEAR(l1 / kTrials, s.longest_run_expected, 0.5);
}

TEST(OrderStatsTest, SimulationIsDeterministicAndNearTheApproximation) {
  std::vector<uint32_t> v = Sorted(std::vector<uint64_t>(10, 6000));
  OrderStatsOptions o;
  o.seed = 7;
  const OrderStats a = Compute(v, 10, o);
  const OrderStats b = Compute(v, 10, o);
  EXPECT_EQ(a.simulations_run, 20);
  EXPECT_EQ(a.longest_run_simulated, b.longest_run_simulated);
  EXPECT_EQ(a.longest_run_simulated_min, b.longest_run_simulated_min);
  EXPECT_NEAR(a.longest_run_simulated, a.longest_run_expected, 1.0);
  EXPECT_LE(a.longest_run_simulated_max, a.longest_run_limit);
  o.seed = 8;
  const OrderStats c = Compute(v, 10, o);
  EXPECT_NEAR(c.longest_run_simulated, a.longest_run_expected, 1.0);
}

TEST(OrderStatsTest, SortedIsOrdered) {
  const std::vector<uint32_t> v = Sorted(std::vector<uint64_t>(10, 6000));
  const OrderStats s = Compute(v, 10);
  EXPECT_EQ(s.n, 60000u);
  EXPECT_EQ(s.labels_present, 10u);
  EXPECT_EQ(s.same_pairs, 59990u);
  EXPECT_EQ(s.runs, 10u);
  EXPECT_NEAR(s.same_rate_expected, 10.0 * 6000 * 5999 / (60000.0 * 59999), 1e-15);
  EXPECT_GT(s.same_z, 100);
  EXPECT_EQ(s.longest_run, 6000u);
  EXPECT_EQ(s.longest_run_start, 0u);
  EXPECT_LT(s.longest_run_log10_p, -1000);
  EXPECT_GT(s.chi2_z, 100);
  EXPECT_EQ(s.worst_window_count, 1000u);
  EXPECT_NEAR(s.worst_window_expected, 100.0, 1e-9);
  for (const OrderLabelStats& l : s.labels) {
    EXPECT_EQ(l.count, 6000u);
    EXPECT_EQ(l.longest_run, 6000u);
    EXPECT_EQ(l.windows_with, 6u);
    EXPECT_NEAR(l.windows_with_expected, 60.0, 1e-6);
  }
  EXPECT_EQ(s.verdict, OrderVerdict::kOrdered);
  EXPECT_EQ(s.verdict_line,
            "ordered: 99.98% of neighbours share a label (a random order would give 10.00%); "
            "shuffle it");
  // The last label sorted first does not change anything.
  std::vector<uint32_t> r(v.rbegin(), v.rend());
  EXPECT_EQ(Compute(r, 10).verdict, OrderVerdict::kOrdered);
}

TEST(OrderStatsTest, UniformShufflesPassOverManySeeds) {
  struct Case {
    std::vector<uint64_t> counts;
    int seeds;
  };
  std::vector<uint64_t> zipf;
  for (int l = 1; l <= 300; ++l) zipf.push_back(30000 / l);
  // The last cases have few events behind each statistic (rare labels, a
  // dominant label, windows with expected counts under 5), where normal
  // tails would raise false alarms in about 1 of 50 shuffles.
  std::vector<uint64_t> sparse(40, 2), mixed(20, 1);
  mixed.push_back(40);
  mixed.push_back(40);
  for (const Case& c : {Case{std::vector<uint64_t>(10, 6000), 200}, Case{{30000, 30000}, 30},
                        Case{{50000, 9000, 1000}, 30}, Case{zipf, 20},
                        Case{{700, 200, 80, 15, 5}, 100}, Case{{995, 5}, 500},
                        Case{{90, 10}, 500}, Case{sparse, 500}, Case{mixed, 500},
                        Case{{9990, 10}, 50}}) {
    std::vector<uint32_t> v = Sorted(c.counts);
    for (int seed = 0; seed < c.seeds; ++seed) {
      std::mt19937_64 rng(seed);
      std::shuffle(v.begin(), v.end(), rng);
      const OrderStats s = Compute(v, c.counts.size(), NoSimulations(v.size() > 1000 ? 1000 : 20));
      EXPECT_EQ(s.verdict, OrderVerdict::kShuffled)
          << "seed " << seed << " of " << c.counts.size() << " labels: " << s.verdict_line
          << " (z " << s.same_z << ", window z " << s.chi2_z << ", longest " << s.longest_run
          << " limit " << s.longest_run_limit << ")";
      EXPECT_LE(std::abs(s.same_z), kOrderZThreshold);
    }
  }
}

TEST(OrderStatsTest, ShuffledVerdictLine) {
  std::vector<uint32_t> v = Sorted(std::vector<uint64_t>(10, 6000));
  std::mt19937_64 rng(99);
  std::shuffle(v.begin(), v.end(), rng);
  const OrderStats s = Compute(v, 10);
  EXPECT_EQ(s.verdict_line,
            fmt::format("shuffled: within statistical tolerance of a uniform random order "
                        "({:.2f}% of neighbours share a label; random: 10.00% +- 0.12%)",
                        100.0 * static_cast<double>(SamePairs(v)) / 59999));
  EXPECT_NEAR(s.same_rate, 0.1, 0.005);
  EXPECT_GT(s.longest_run_log10_p, -3);
}

TEST(OrderStatsTest, RoundRobinIsInterleaved) {
  std::vector<uint32_t> v;
  for (int i = 0; i < 60000; ++i) v.push_back(i % 10);
  const OrderStats s = Compute(v, 10);
  EXPECT_EQ(s.same_pairs, 0u);
  EXPECT_EQ(s.same_pairs_min, 0u);
  EXPECT_LT(s.same_z, -50);
  EXPECT_LT(s.chi2_z, -10);
  EXPECT_EQ(s.longest_run, 1u);
  EXPECT_EQ(s.verdict, OrderVerdict::kInterleaved);
  EXPECT_EQ(s.verdict_line,
            "interleaved: no two neighbours share a label (a random order would give 10.00%)");
}

TEST(OrderStatsTest, UnequalClassesInterleavedAsFewAsTheCountsAllow) {
  // 7,000 of label 0 and 1,000 each of labels 1..3: label 0 must touch
  // itself at least 2 * 7000 - 10000 - 1 = 3999 times.
  const std::vector<uint64_t> counts = {7000, 1000, 1000, 1000};
  std::vector<uint32_t> others;
  for (int i = 0; i < 3000; ++i) others.push_back(1 + i % 3);
  // 3,001 groups of label 0 around the 3,000 others, sizes 2 or 3.
  std::vector<uint32_t> v;
  uint64_t zeros_left = 7000;
  for (size_t g = 0; g <= others.size(); ++g) {
    const uint64_t groups_left = others.size() + 1 - g;
    const uint64_t size = (zeros_left + groups_left - 1) / groups_left;
    v.insert(v.end(), size, 0);
    zeros_left -= size;
    if (g < others.size()) v.push_back(others[g]);
  }
  ASSERT_EQ(v.size(), 10000u);
  OrderStats s = Compute(v, 4);
  EXPECT_EQ(s.same_pairs_min, 3999u);
  EXPECT_EQ(s.same_pairs, 3999u);
  EXPECT_EQ(s.verdict, OrderVerdict::kInterleaved);
  EXPECT_NE(s.verdict_line.find("as few as the label counts allow"), std::string::npos)
      << s.verdict_line;

  // Equal-ish counts that allow zero, with some neighbours left: partly.
  std::vector<uint32_t> w;
  for (int i = 0; i < 60000; ++i) w.push_back(i % 10);
  for (int i = 0; i < 60000; i += 50) w[i + 1] = w[i];  // 1,200 equal pairs
  s = Compute(w, 10);
  EXPECT_EQ(s.verdict, OrderVerdict::kPartlyInterleaved) << s.verdict_line;
  EXPECT_NE(s.verdict_line.find("the label counts allow 0%"), std::string::npos)
      << s.verdict_line;
}

TEST(OrderStatsTest, OneLongRunInAShuffleIsClumped) {
  std::vector<uint32_t> v = Sorted(std::vector<uint64_t>(10, 6000));
  std::mt19937_64 rng(5);
  std::shuffle(v.begin(), v.end(), rng);
  // Gather 40 samples of label 3 at positions 30000..30039 by swapping.
  size_t next = 0;
  for (size_t i = 30000; i < 30040; ++i) {
    while (v[next] != 3 || (next >= 30000 && next < 30040)) ++next;
    if (v[i] != 3) std::swap(v[i], v[next]);
  }
  const OrderStats s = Compute(v, 10);
  EXPECT_GE(s.longest_run, 40u);
  EXPECT_LE(std::abs(s.same_z), kOrderZThreshold);
  EXPECT_EQ(s.verdict, OrderVerdict::kClumped) << s.verdict_line;
  EXPECT_NE(s.verdict_line.find("of 'label3'"), std::string::npos) << s.verdict_line;
}

TEST(OrderStatsTest, RareLabelClumpedInAShuffle) {
  // 30 samples of a rare label in one run inside a shuffle of 60,000: the
  // overall longest run is another label's, and neighbours barely move.
  std::vector<uint64_t> counts(10, 5997);
  counts.push_back(30);
  std::vector<uint32_t> v = Sorted(counts);
  v.resize(v.size() - 30);
  std::mt19937_64 rng(21);
  std::shuffle(v.begin(), v.end(), rng);
  v.insert(v.begin() + 1234, 30, 10);
  OrderStats s = Compute(v, 11);
  EXPECT_EQ(s.unlikely_run_label, 10u);
  EXPECT_EQ(s.labels[10].longest_run, 30u);
  EXPECT_EQ(s.labels[10].longest_run_start, 1234u);
  EXPECT_LE(std::abs(s.same_z), kOrderZThreshold);
  EXPECT_EQ(s.verdict, OrderVerdict::kClumped) << s.verdict_line;
  EXPECT_EQ(s.verdict_line.rfind("clumped: a run of 30 samples of 'label10' starts at sample 1234 "
                                 "(a random order has one this long with p <= 1e-",
                                 0),
            0u)
      << s.verdict_line;

  // 10 rare samples together among 9,990 of one label: not a random order.
  std::vector<uint32_t> w(9990, 0);
  w.insert(w.begin() + 5000, 10, 1);
  s = Compute(w, 2);
  EXPECT_NE(s.verdict, OrderVerdict::kShuffled) << s.verdict_line;
  EXPECT_NE(s.verdict, OrderVerdict::kTooFewSamples) << s.verdict_line;
}

TEST(OrderStatsTest, DriftingSharesArePartlyShuffled) {
  // Two halves of 30,000: labels 0-4 hold 3,231 each in the first and 2,769
  // in the second, labels 5-9 the reverse; each half shuffled. Neighbours
  // barely notice (z well under 5), windows of 1,000 do.
  std::vector<uint32_t> first, second;
  for (uint32_t l = 0; l < 10; ++l) {
    first.insert(first.end(), l < 5 ? 3231 : 2769, l);
    second.insert(second.end(), l < 5 ? 2769 : 3231, l);
  }
  std::mt19937_64 rng(11);
  std::shuffle(first.begin(), first.end(), rng);
  std::shuffle(second.begin(), second.end(), rng);
  std::vector<uint32_t> v = first;
  v.insert(v.end(), second.begin(), second.end());
  const OrderStats s = Compute(v, 10);
  EXPECT_LE(std::abs(s.same_z), kOrderZThreshold);
  EXPECT_GT(s.chi2_z, kOrderZThreshold);
  EXPECT_EQ(s.verdict, OrderVerdict::kPartlyShuffled);
  EXPECT_NE(s.verdict_line.find("neighbours look random, but label shares drift"),
            std::string::npos)
      << s.verdict_line;
}

TEST(OrderStatsTest, ShuffleBufferOverSortedIsPartlyShuffledOrOrdered) {
  // A streaming shuffle buffer of 10,000 over label-sorted data: better than
  // sorted, far from random.
  const std::vector<uint32_t> sorted = Sorted(std::vector<uint64_t>(10, 6000));
  std::mt19937_64 rng(3);
  std::vector<uint32_t> buffer, v;
  for (uint32_t l : sorted) {
    if (buffer.size() < 10000) {
      buffer.push_back(l);
      continue;
    }
    const size_t j = std::uniform_int_distribution<size_t>(0, buffer.size() - 1)(rng);
    v.push_back(buffer[j]);
    buffer[j] = l;
  }
  std::shuffle(buffer.begin(), buffer.end(), rng);
  v.insert(v.end(), buffer.begin(), buffer.end());
  const OrderStats s = Compute(v, 10);
  EXPECT_EQ(s.verdict, OrderVerdict::kPartlyShuffled) << s.verdict_line;
  EXPECT_EQ(s.verdict_line.rfind("partly shuffled: ", 0), 0u) << s.verdict_line;
  EXPECT_NE(s.verdict_line.find("; shuffle it"), std::string::npos);
}

TEST(OrderStatsTest, ExactSharesPerWindowAreStratified) {
  std::vector<uint32_t> v;
  std::mt19937_64 rng(17);
  for (int j = 0; j < 60; ++j) {
    std::vector<uint32_t> window = Sorted(std::vector<uint64_t>(10, 100));
    std::shuffle(window.begin(), window.end(), rng);
    v.insert(v.end(), window.begin(), window.end());
  }
  const OrderStats s = Compute(v, 10);
  EXPECT_NEAR(s.chi2_mean, 0.0, 1e-9);
  EXPECT_EQ(s.verdict, OrderVerdict::kStratified) << s.verdict_line;
}

TEST(OrderStatsTest, NothingToMeasure) {
  // n = 0, 1 and 2; one label; every label once.
  OrderStats s = Compute({}, 0);
  EXPECT_EQ(s.verdict, OrderVerdict::kNothingToMeasure);
  EXPECT_EQ(s.verdict_line, "nothing to measure: no samples");
  EXPECT_EQ(s.runs, 0u);
  EXPECT_EQ(s.pairs, 0u);
  s = Compute({}, 3);
  EXPECT_EQ(s.verdict_line, "nothing to measure: no samples");
  s = Compute({2}, 3);
  EXPECT_EQ(s.verdict_line, "nothing to measure: 1 sample");
  EXPECT_EQ(s.longest_run, 1u);
  EXPECT_EQ(s.runs, 1u);
  s = Compute({1, 1}, 3);
  EXPECT_EQ(s.verdict, OrderVerdict::kNothingToMeasure);
  EXPECT_EQ(s.verdict_line, "nothing to measure: all 2 samples have label 'label1'");
  s = Compute({0, 1}, 2);
  EXPECT_EQ(s.verdict_line, "nothing to measure: no two of the 2 samples share a label");
  s = Compute(std::vector<uint32_t>(5000, 0), 1);
  EXPECT_EQ(s.verdict_line, "nothing to measure: all 5000 samples have label 'label0'");
  EXPECT_EQ(s.same_pairs, 4999u);
  EXPECT_EQ(s.longest_run, 5000u);
  EXPECT_EQ(s.same_z, 0.0);
  std::vector<uint32_t> distinct(1000);
  std::iota(distinct.begin(), distinct.end(), 0);
  s = Compute(distinct, 1000);
  EXPECT_EQ(s.verdict_line, "nothing to measure: no two of the 1000 samples share a label");
  // Every statistic stays finite.
  for (const auto& labels : {std::vector<uint32_t>{}, std::vector<uint32_t>{0},
                             std::vector<uint32_t>{0, 0}, std::vector<uint32_t>{0, 1}}) {
    const OrderStats t = Compute(labels, 2);
    for (double x : {t.same_rate, t.same_rate_expected, t.same_pairs_sd, t.same_z, t.mean_run,
                     t.mean_run_expected, t.longest_run_expected, t.longest_run_log10_p,
                     t.chi2_mean, t.chi2_z}) {
      EXPECT_TRUE(std::isfinite(x));
    }
    EXPECT_FALSE(FormatOrderText(t).empty());
    EXPECT_NO_THROW(OrderStatsJson(t).dump());
  }
}

TEST(OrderStatsTest, TooFewSamplesToJudge) {
  // 20 samples of two labels, sorted: a random order is sorted with
  // probability 2 / C(20, 10) = 1.1e-5, so no verdict at a 1e-6 level.
  const OrderStats s = Compute(Sorted({10, 10}), 2);
  EXPECT_EQ(s.verdict, OrderVerdict::kTooFewSamples) << s.verdict_line;
  EXPECT_EQ(s.verdict_line,
            "too few samples to judge: even 20 samples sorted by label would be within "
            "tolerance of a random order");
  // 60 of three labels sorted are enough.
  EXPECT_EQ(Compute(Sorted({20, 20, 20}), 3).verdict, OrderVerdict::kOrdered);
}

TEST(OrderStatsTest, WindowLargerThanTheOrder) {
  const std::vector<uint32_t> v = Sorted({100, 100, 100, 100, 100});
  OrderStatsOptions o;
  o.window = 501;
  OrderStats s = Compute(v, 5, o);
  EXPECT_EQ(s.windows, 0u);
  EXPECT_EQ(s.outside_windows, 500u);
  EXPECT_EQ(s.chi2_z, 0.0);
  EXPECT_EQ(s.verdict, OrderVerdict::kOrdered);
  EXPECT_NE(FormatOrderText(s).find("windows: none (fewer than 501 samples)"), std::string::npos);
  EXPECT_FALSE(OrderStatsJson(s)["windows"].contains("z"));
  // A window of exactly n: one window, always at the overall shares.
  o.window = 500;
  s = Compute(v, 5, o);
  EXPECT_EQ(s.windows, 1u);
  EXPECT_NEAR(s.chi2_mean, 0.0, 1e-9);
  EXPECT_EQ(s.chi2_expected, 0.0);
  EXPECT_EQ(s.chi2_z, 0.0);
  // Windows that do not divide n leave the tail out.
  o.window = 300;
  s = Compute(v, 5, o);
  EXPECT_EQ(s.windows, 1u);
  EXPECT_EQ(s.outside_windows, 200u);
}

TEST(OrderStatsTest, LabelsWithoutSamplesAreListed) {
  std::vector<uint32_t> v;
  for (int i = 0; i < 6000; ++i) v.push_back(i % 2 == 0 ? 0 : 2);
  const OrderStats s = Compute(v, 4);
  EXPECT_EQ(s.labels_present, 2u);
  ASSERT_EQ(s.labels.size(), 4u);
  EXPECT_EQ(s.labels[1].count, 0u);
  EXPECT_EQ(s.labels[1].windows_with_expected, 0.0);
  EXPECT_EQ(s.verdict, OrderVerdict::kInterleaved);
}

TEST(OrderStatsTest, BadInput) {
  const std::vector<uint32_t> v = {0, 1, 2, 7, 1};
  auto r = ComputeOrderStats(v.data(), v.size(), Names(3), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("sample 3 has label id 7 but there are only 3 label names"),
            std::string::npos)
      << r.status().message();
  OrderStatsOptions o;
  o.window = 0;
  r = ComputeOrderStats(v.data(), v.size(), Names(8), o);
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  o = {};
  o.simulations = -1;
  r = ComputeOrderStats(v.data(), v.size(), Names(8), o);
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  o = {};
  o.min_expected = -1;
  r = ComputeOrderStats(v.data(), v.size(), Names(8), o);
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
}

TEST(OrderStatsTest, TextReport) {
  const std::vector<uint32_t> v = Sorted(std::vector<uint64_t>(10, 6000));
  std::vector<std::string> names = Names(10);
  names[3] = "bad\nname";
  auto r = ComputeOrderStats(v.data(), v.size(), names, {});
  ASSERT_TRUE(r.ok());
  const std::string text = FormatOrderText(*r);
  EXPECT_EQ(text.rfind("order of 60000 samples, 10 labels, windows of 1000\n", 0), 0u)
      << text;
  EXPECT_NE(text.find("same-label neighbours"), std::string::npos) << text;
  EXPECT_NE(text.find("bad\\nname"), std::string::npos) << text;
  const std::string last = r->verdict_line + "\n";
  ASSERT_GE(text.size(), last.size());
  EXPECT_EQ(text.substr(text.size() - last.size()), last);
  // Columns line up: every row of the first table has its z column ending
  // at the same place.
  size_t start = text.find('\n') + 1, rows = 0, width = 0;
  for (int i = 0; i < 6; ++i) {
    const size_t end = text.find('\n', start);
    const size_t len = end - start;
    if (i > 0 && i != 3) {  // the mean run length row has no z
      if (width == 0) width = len;
      EXPECT_EQ(len, width) << text.substr(start, len);
      ++rows;
    }
    start = end + 1;
  }
  EXPECT_EQ(rows, 4u);
  std::fputs(text.c_str(), stdout);
}

TEST(OrderStatsTest, Json) {
  std::vector<uint32_t> v;
  for (int i = 0; i < 60000; ++i) v.push_back(i % 10);
  std::vector<std::string> names = Names(10);
  names[0] = std::string("\xff", 1);
  auto r = ComputeOrderStats(v.data(), v.size(), names, {});
  ASSERT_TRUE(r.ok());
  const nlohmann::json j = OrderStatsJson(*r);
  EXPECT_EQ(j["samples"], 60000);
  EXPECT_EQ(j["neighbours"]["same_label"], 0);
  EXPECT_EQ(j["verdict"], "interleaved");
  EXPECT_EQ(j["labels"].size(), 10u);
  EXPECT_EQ(j["labels"][0]["name_hex"], "ff");
  EXPECT_EQ(j["longest_run"]["simulations"], 20);
  EXPECT_TRUE(j["windows"].contains("worst"));
  EXPECT_NO_THROW(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// Not a test: times ComputeOrderStats on 10,000,000 shuffled labels.
// Run with --gtest_also_run_disabled_tests --gtest_filter='*TenMillion*'.
TEST(OrderStatsTest, DISABLED_TenMillion) {
  std::vector<uint32_t> v = Sorted(std::vector<uint64_t>(10, 1000000));
  std::mt19937_64 rng(1);
  std::shuffle(v.begin(), v.end(), rng);
  for (int sims : {0, 20}) {
    OrderStatsOptions o;
    o.simulations = sims;
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    auto r = ComputeOrderStats(v.data(), v.size(), Names(10), o);
    const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    const double sec =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(r.ok());
    std::printf("n=10M, 10 labels, %d simulations: %.3f s wall, %.3f s cpu; %s\n", sims, sec,
                cpu, r->verdict_line.c_str());
  }
}

}  // namespace
}  // namespace shardset
