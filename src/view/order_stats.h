// How good a sample order is (`shardset info --order`, docs/order.md): the
// label of each position in a dataset or view, measured against what a
// uniform random permutation of the same labels would give.
//
// Every statistic comes with its value under a uniform random permutation of
// the same label multiset (the counts are those of the input, so only the
// order is judged). Neighbour and run statistics have exact means and
// variances; the window statistic has an exact mean and variance; the longest
// run has an exact expected number of runs of each length, a rigorous tail
// bound and a Poisson (extreme-value) estimate of its mean, plus an optional
// Monte Carlo estimate. docs/order.md derives each one and states the verdict
// rules.
//
// Pure computation: no I/O, no threads, no exceptions. Thread-compatible:
// distinct calls may run at once.
#ifndef SHARDSET_VIEW_ORDER_STATS_H_
#define SHARDSET_VIEW_ORDER_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "shardset/status.h"

namespace shardset {

struct OrderStatsOptions {
  // Samples per window for the label-distribution statistic; at least 1.
  // Only complete windows count: the last n % window samples are in none.
  uint64_t window = 1000;
  // Labels expected fewer than this many times per window are pooled into
  // one category for the window chi-square (Cochran's rule: the chi-square's
  // tail is unreliable for expected counts under 5). 0 pools nothing.
  double min_expected = 5.0;
  // Random permutations simulated for the longest run's Monte Carlo mean
  // (0 = none). Fewer are run when they would cost more than
  // kOrderSimulationBudget; the verdict never depends on them.
  int simulations = 20;
  // Seeds the simulations (a fixed, portable generator: the same seed gives
  // the same numbers everywhere).
  uint64_t seed = 0;
};

// What the simulations may cost in all, in Fenwick-tree steps: a simulated
// position costs max(4, bits of the number of labels present) steps, about
// 8 ns each (measured on a loaded 2.5 GHz core), so this is about a second.
// Fewer simulations run past it: 3 at n = 10M with 10 labels, 1 with 1,000
// labels, none with 65,536; then only the analytic estimate is reported.
inline constexpr uint64_t kOrderSimulationBudget = uint64_t{1} << 27;

// A statistic is outside tolerance when |z| > kOrderZThreshold, and the
// longest run when a random order reaches it with probability at most
// kOrderRunProbability (a rigorous bound). For a uniform random order each
// false alarm has probability of order 1e-6.
inline constexpr double kOrderZThreshold = 5.0;
inline constexpr double kOrderRunProbability = 1e-6;

enum class OrderVerdict {
  kNothingToMeasure,   // n < 2, one label present, or no label repeats
  kTooFewSamples,      // even a label-sorted order would be within tolerance
  kShuffled,           // within tolerance of a uniform random order
  kOrdered,            // neighbours share a label >= ~10x as often as random
  kPartlyShuffled,     // too many same-label neighbours, or drifting windows
  kClumped,            // neighbours look random, but one run is far too long
  kInterleaved,        // as few same-label neighbours as the counts allow
  kPartlyInterleaved,  // significantly fewer than random, more than the minimum
  kStratified,         // windows hold labels closer to their shares than random
};

// "shuffled", "ordered", "partly_shuffled", ... (the JSON spelling).
const char* OrderVerdictName(OrderVerdict v);

struct OrderLabelStats {
  std::string name;
  uint64_t count = 0;
  uint64_t longest_run = 0;
  uint64_t longest_run_start = 0;
  // log10 of a rigorous upper bound on P(a random order has a run of this
  // label at least this long): the expected number of such runs.
  double longest_run_log10_p = 0;
  // Complete windows holding at least one sample of this label, and the
  // expected number for a random order: windows * (1 - C(n-c, w) / C(n, w)).
  uint64_t windows_with = 0;
  double windows_with_expected = 0;
};

struct OrderStats {
  uint64_t n = 0;
  uint64_t labels_present = 0;          // labels with count > 0 (K)
  std::vector<OrderLabelStats> labels;  // one per name, indexed by label id

  // Neighbours: the n - 1 adjacent pairs, those sharing a label (A), and A
  // for a random order: mean (n-1)p with p = sum c(c-1) / (n(n-1)), exact
  // standard deviation, and z: (A - mean) / sd below the mean, above it the
  // normal quantile of a skew-aware tail (docs/order.md "Neighbours"); 0 when
  // sd is 0.
  uint64_t pairs = 0;
  uint64_t same_pairs = 0;
  double same_rate = 0;           // same_pairs / pairs (0 when no pairs)
  double same_rate_expected = 0;  // p
  double same_pairs_expected = 0;
  double same_pairs_sd = 0;
  double same_z = 0;
  // The fewest same-label pairs any order of these counts has:
  // max(0, 2 * c_max - n - 1).
  uint64_t same_pairs_min = 0;
  // The z an order sorted by label (A = n - K) would get: when it is within
  // tolerance the data are too few to judge.
  double sorted_z = 0;

  // Runs (maximal blocks of one label): runs = n - A, so their z is same_z
  // negated. Expected mean run length is n / expected runs.
  uint64_t runs = 0;
  double runs_expected = 0;
  double mean_run = 0;
  double mean_run_expected = 0;

  // Longest run: its length, label and first position.
  uint64_t longest_run = 0;
  uint32_t longest_run_label = 0;
  uint64_t longest_run_start = 0;
  // Its mean for a random order from the exact expected number of runs of
  // each length with a Poisson approximation of their maximum.
  double longest_run_expected = 0;
  // log10 of a rigorous upper bound on P(a random order has a run at least
  // as long): the expected number of such runs (Markov's inequality).
  double longest_run_log10_p = 0;
  // The shortest run length a random order reaches with probability at most
  // kOrderRunProbability (by the same bound).
  uint64_t longest_run_limit = 0;
  // Monte Carlo over `simulations_run` seeded random permutations.
  int simulations_run = 0;
  double longest_run_simulated = 0;  // mean
  uint64_t longest_run_simulated_min = 0;
  uint64_t longest_run_simulated_max = 0;
  // The label whose longest run is least likely for a random order (the
  // smallest labels[l].longest_run_log10_p): the one a "clumped" verdict
  // names.
  uint32_t unlikely_run_label = 0;

  // Windows of `window` consecutive samples: per window the chi-square
  // X = sum over categories of (o - e)^2 / e with e = window * c / n, where
  // a category is a label, or the pool of labels expected fewer than
  // min_expected times per window (a pool itself expected fewer times joins
  // the smallest label category);
  // their mean over the complete windows, its exact mean and standard
  // deviation for a random order, and a z from the Wilson-Hilferty
  // transform of a moment-matched chi-square (accounts for skew).
  uint64_t window = 0;
  uint64_t windows = 0;           // floor(n / window)
  uint64_t outside_windows = 0;   // n - windows * window
  uint64_t window_categories = 0;  // categories with samples (K' for the mean)
  uint64_t pooled_labels = 0;      // labels with samples in the pool
  double min_expected = 0;         // the pooling threshold used
  double chi2_mean = 0;
  double chi2_expected = 0;       // (K' - 1)(n - w) / (n - 1)
  double chi2_sd = 0;             // of the mean over windows
  double chi2_z = 0;
  // The window with the largest X, and its most over-represented label (the
  // largest (o - e)^2 / e with o > e).
  uint64_t worst_window_start = 0;
  double worst_window_chi2 = 0;
  uint32_t worst_window_label = 0;
  uint64_t worst_window_count = 0;
  double worst_window_expected = 0;

  OrderVerdict verdict = OrderVerdict::kNothingToMeasure;
  std::string verdict_line;  // one line, e.g. "shuffled: within statistical ..."
};

// Measures the order labels[0], ..., labels[n-1]; each label is an index
// into `names` (which may include labels with no samples). `labels` may be a
// memory-mapped column (nullptr when n is 0): it is read sequentially, twice.
// Time O(n + names) plus the capped simulations; memory O(names).
// Errors: InvalidArgument for a label id >= names.size() (naming the
// position), a window of 0, negative simulations or min_expected.
Result<OrderStats> ComputeOrderStats(const uint32_t* labels, uint64_t n,
                                     const std::vector<std::string>& names,
                                     const OrderStatsOptions& options);

// The human report for the CLI: aligned columns, each value next to a random
// order's, ending with the verdict line and a newline.
std::string FormatOrderText(const OrderStats& stats);

// The same for `info --order --json`; names that are not UTF-8 also carry
// their bytes as "name_hex".
nlohmann::json OrderStatsJson(const OrderStats& stats);

}  // namespace shardset

#endif  // SHARDSET_VIEW_ORDER_STATS_H_
