#include "view/order_stats.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/strings.h"

namespace shardset {
namespace {

using json = nlohmann::json;
using u128 = unsigned __int128;
using Real = long double;  // the moment formulas subtract nearly equal terms

// ------------------------------------------------------------ random numbers

// xoshiro256** (Blackman and Vigna) seeded through SplitMix64: fixed,
// portable arithmetic, so a seed gives the same simulations on every
// platform (std:: distributions do not promise that).
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& s : s_) {
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      s = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, range), range >= 1, without modulo bias (Lemire 2019).
  uint64_t Below(uint64_t range) {
    u128 m = u128{Next()} * range;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < range) {
      const uint64_t threshold = (0 - range) % range;
      while (low < threshold) {
        m = u128{Next()} * range;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Longest runs of `simulations` uniform random permutations of the multiset
// with these counts, drawn front to back as from an urn: each next label is
// drawn with probability (its remaining count) / (samples remaining), which
// gives every distinct order the same probability, like Fisher-Yates on the
// labels, but touches only a Fenwick tree of the counts (O(labels) memory, no
// random access into an n-sized array; about 4x faster at n = 10M).
void SimulateLongestRuns(const std::vector<uint64_t>& counts, uint64_t n, int simulations,
                         Rng& rng, std::vector<uint64_t>* longest) {
  const size_t k = counts.size();
  size_t top = 1;
  while (top * 2 <= k) top *= 2;
  std::vector<uint64_t> tree(k + 1);
  for (int s = 0; s < simulations; ++s) {
    // tree[i] holds the sum of counts over (i - lowbit(i), i].
    for (size_t i = 1; i <= k; ++i) tree[i] = counts[i - 1];
    for (size_t i = 1; i <= k; ++i) {
      const size_t parent = i + (i & (~i + 1));
      if (parent <= k) tree[parent] += tree[i];
    }
    uint64_t best = 0, run = 0;
    size_t prev = k;
    for (uint64_t left = n; left > 0; --left) {
      uint64_t u = rng.Below(left);
      size_t pos = 0;  // the label is the first whose prefix sum exceeds u
      for (size_t step = top; step > 0; step >>= 1) {
        if (pos + step <= k && tree[pos + step] <= u) {
          pos += step;
          u -= tree[pos];
        }
      }
      for (size_t i = pos + 1; i <= k; i += i & (~i + 1)) --tree[i];
      run = pos == prev ? run + 1 : 1;
      prev = pos;
      best = std::max(best, run);
    }
    longest->push_back(best);
  }
}

// ------------------------------------------------------------ moments

// (a)_k / (b)_k = a(a-1)...(a-k+1) / (b(b-1)...(b-k+1)), for a <= b.
Real FallingRatio(Real a, Real b, int k) {
  Real r = 1;
  for (int i = 0; i < k; ++i) r *= (a - i) / (b - i);
  return r;
}

Real Falling(Real c, int k) {
  Real r = 1;
  for (int i = 0; i < k; ++i) r *= c - i;
  return r;
}

// ln(Gamma(x)) for x > 0. glibc's lgamma writes the global `signgam`, a data
// race when two threads compute statistics at once; lgammal_r does not.
Real LogGamma(Real x) {
#if defined(__GLIBC__)
  int sign;
  return lgammal_r(x, &sign);
#else
  return std::lgamma(x);
#endif
}

// ln((a)_k) = ln(a! / (a-k)!), k <= a.
Real LogFalling(uint64_t a, uint64_t k) {
  return LogGamma(static_cast<Real>(a) + 1) - LogGamma(static_cast<Real>(a - k) + 1);
}

// Mean and variance of A, the number of adjacent pairs sharing a label in a
// uniform random permutation of the multiset (docs/order.md "Neighbours"):
//   E[A]   = (n-1) p,  p = S2 / (n(n-1)),  S2 = sum c(c-1)
//   Var[A] = S2/n - 2 sum c(c-1)^2 / (n(n-1)) + S2^2 / (n^2 (n-1)).
void NeighbourMoments(const std::vector<uint64_t>& counts, uint64_t n, Real* p, Real* mean,
                      Real* var) {
  *p = *mean = *var = 0;
  if (n < 2) return;
  Real s2 = 0, t = 0;
  for (uint64_t c : counts) {
    const Real cr = static_cast<Real>(c);
    s2 += cr * (cr - 1);
    t += cr * (cr - 1) * (cr - 1);
  }
  const Real nr = static_cast<Real>(n);
  *p = s2 / (nr * (nr - 1));
  *mean = (nr - 1) * *p;
  *var = std::max<Real>(0, s2 / nr - 2 * t / (nr * (nr - 1)) + s2 * s2 / (nr * nr * (nr - 1)));
}

// Exact mean of one window's chi-square X and variance of the mean of X over
// `windows` disjoint windows of w samples (docs/order.md "Windows"). With
// g = 1/e = n/(wc), X = Y - w where Y = sum g o^2 and o^2 = (o)_2 + o; the
// factorial moments of the multivariate hypergeometric are
//   one window:  E[(o_l)_a (o_m)_b] = (w)_{a+b} (c_l)_a (c_m)_b / (n)_{a+b}   (l != m)
//   two windows: E[(o_l)_a (o'_m)_b] = (w)_a (w)_b F / (n)_{a+b},
//                F = (c_l)_{a+b} if l = m, else (c_l)_a (c_m)_b,
// and sums over l != m are (sum)(sum) - sum over l = m.
void WindowMoments(const std::vector<uint64_t>& counts, uint64_t n, uint64_t w,
                   uint64_t windows, Real* mean, Real* var_of_mean) {
  *mean = *var_of_mean = 0;
  if (windows == 0 || w >= n) return;
  const Real nr = static_cast<Real>(n), wr = static_cast<Real>(w);
  std::vector<Real> g, c;
  for (uint64_t ci : counts) {
    if (ci == 0) continue;
    c.push_back(static_cast<Real>(ci));
    g.push_back(nr / (wr * static_cast<Real>(ci)));
  }
  const size_t k = c.size();
  *mean = (static_cast<Real>(k) - 1) * (nr - wr) / (nr - 1);
  // P[a] = sum g (c)_a; D[a][b] = sum g^2 (c)_a (c)_b; E[a] = sum g^2 (c)_a.
  Real P[3] = {0, 0, 0}, D[3][3] = {}, E[5] = {};
  for (size_t i = 0; i < k; ++i) {
    const Real f[5] = {1, c[i], Falling(c[i], 2), Falling(c[i], 3), Falling(c[i], 4)};
    for (int a = 1; a <= 2; ++a) P[a] += g[i] * f[a];
    for (int a = 1; a <= 2; ++a)
      for (int b = 1; b <= 2; ++b) D[a][b] += g[i] * g[i] * f[a] * f[b];
    for (int a = 1; a <= 4; ++a) E[a] += g[i] * g[i] * f[a];
  }
  Real R[5];  // (w)_a / (n)_a
  for (int a = 0; a <= 4; ++a) R[a] = FallingRatio(wr, nr, a);
  const Real ey = R[2] * P[2] + R[1] * P[1];
  // One window: o^4 = (o)_4 + 6 (o)_3 + 7 (o)_2 + o for l = m.
  Real ey2 = R[4] * E[4] + 6 * R[3] * E[3] + 7 * R[2] * E[2] + R[1] * E[1];
  ey2 += R[4] * (P[2] * P[2] - D[2][2]) + R[3] * 2 * (P[2] * P[1] - D[2][1]) +
         R[2] * (P[1] * P[1] - D[1][1]);
  const Real var_one = std::max<Real>(0, ey2 - ey * ey);
  // Two disjoint windows.
  Real eyy = 0;
  for (int a = 1; a <= 2; ++a) {
    for (int b = 1; b <= 2; ++b) {
      const Real q = Falling(wr, a) * Falling(wr, b) / Falling(nr, a + b);
      eyy += q * (E[a + b] + P[a] * P[b] - D[a][b]);
    }
  }
  const Real cov = eyy - ey * ey;
  const Real wn = static_cast<Real>(windows);
  *var_of_mean = std::max<Real>(0, var_one / wn + (wn - 1) / wn * cov);
}

// z of x for a statistic with this mean and variance that is a sum of
// chi-square-like terms: a moment-matched scaled chi-square (nu = 2 m^2 / v
// degrees of freedom) through the Wilson-Hilferty cube-root transform, which
// keeps the right tail honest when there are few windows.
double SkewedZ(double x, double mean, double var) {
  if (var <= 0 || mean <= 0) return 0;
  const double nu = 2 * mean * mean / var;
  const double s = std::sqrt(2 / (9 * nu));
  return (std::cbrt(std::max(0.0, x) / mean) - (1 - 2 / (9 * nu))) / s;
}

// z of A, the same-label neighbours, for a random order with this mean and
// variance. Below the mean, (A - mean) / sd. Above it A's tail is heavier
// than the normal's when few events drive it: A is then close to a Poisson
// count (many small labels) or to twice one (a dominant label split by rare
// samples, each rare pair adding 2). So the z is the normal quantile of the
// upper tail of mean + 2(N - lambda), N ~ Poisson(lambda = var / 4): the same
// mean and variance, a tail at least as heavy in both cases, and the normal
// in the limit. P(N >= m) = P(Gamma(m, 1) <= lambda), through Wilson-Hilferty.
double NeighbourZ(double a, double mean, double var) {
  if (var <= 0) return 0;
  if (a <= mean) return (a - mean) / std::sqrt(var);
  const double lambda = var / 4;
  const double m = lambda + (a - mean) / 2;
  return std::max(0.0, 3 * std::sqrt(m) * (1 - 1 / (9 * m) - std::cbrt(lambda / m)));
}

// ln of the expected number of maximal runs of length >= k of a label with c
// of the n samples, in a random order: (n - c + 1) (c)_k / (n)_k
// (docs/order.md "Longest run"). k <= c.
Real LogRunsAtLeast(uint64_t c, uint64_t n, uint64_t k) {
  return std::log(static_cast<Real>(n - c + 1)) + LogFalling(c, k) - LogFalling(n, k);
}

// ------------------------------------------------------------ formatting

std::string Display(const std::string& name) { return EscapeForDisplay(name); }

// A share as a percentage that never rounds a nonzero value to 0% or a value
// below 1 to 100%.
std::string Percent(double x) {
  if (x == 0) return "0%";
  if (x == 1) return "100%";
  for (int d = 2; d <= 6; ++d) {
    std::string s = fmt::format("{:.{}f}", x * 100, d);
    const double shown = std::strtod(s.c_str(), nullptr);
    if ((x > 0 && shown == 0) || (x < 1 && shown >= 100)) continue;
    return s + "%";
  }
  return x < 0.5 ? "<0.000001%" : ">99.999999%";
}

std::string Real2(double x) { return fmt::format("{:.2f}", x); }

std::string ZText(double z) {
  const std::string t = fmt::format("{:+.1f}", z);
  return t == "+0.0" || t == "-0.0" ? "0.0" : t;
}

// "p <= 0.034" or "p <= 1e-12" from log10 of an upper bound.
std::string PBound(double log10_p) {
  if (log10_p >= -3) return fmt::format("p <= {:.2g}", std::pow(10.0, log10_p));
  return fmt::format("p <= 1e{}", static_cast<long long>(std::ceil(log10_p)));
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

// Left-aligned first column, right-aligned others, two spaces apart.
std::string Table(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line = indent;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i == 0) {
        line += fmt::format("{:<{}}", row[i], width[i]);
      } else {
        line += fmt::format("  {:>{}}", row[i], width[i]);
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

// ------------------------------------------------------------ verdict

std::string LabelName(const OrderStats& s, uint32_t id) {
  return "'" + Display(s.labels[id].name) + "'";
}

void Decide(OrderStats* s) {
  const std::string random_rate = Percent(s->same_rate_expected);
  const bool windows_drift = s->windows > 0 && s->chi2_z > kOrderZThreshold;
  // A label's longest run is improbable when its bound is at most
  // kOrderRunProbability / K: over the K labels, a random order then trips
  // this with probability at most kOrderRunProbability (union bound).
  const bool clumped =
      s->labels_present > 0 &&
      s->labels[s->unlikely_run_label].longest_run_log10_p <=
          std::log10(kOrderRunProbability / static_cast<double>(s->labels_present));
  const std::string drift =
      fmt::format("label shares drift over windows of {} (mean chi-square {}; a random order "
                  "would give {} +- {})",
                  s->window, Real2(s->chi2_mean), Real2(s->chi2_expected), Real2(s->chi2_sd));
  if (s->n == 0) {
    s->verdict = OrderVerdict::kNothingToMeasure;
    s->verdict_line = "nothing to measure: no samples";
  } else if (s->n == 1) {
    s->verdict = OrderVerdict::kNothingToMeasure;
    s->verdict_line = "nothing to measure: 1 sample";
  } else if (s->labels_present < 2) {
    s->verdict = OrderVerdict::kNothingToMeasure;
    s->verdict_line = fmt::format("nothing to measure: all {} samples have label {}", s->n,
                                  LabelName(*s, s->longest_run_label));
  } else if (s->same_rate_expected == 0) {
    s->verdict = OrderVerdict::kNothingToMeasure;
    s->verdict_line =
        fmt::format("nothing to measure: no two of the {} samples share a label", s->n);
  } else if (s->sorted_z <= kOrderZThreshold) {
    s->verdict = OrderVerdict::kTooFewSamples;
    s->verdict_line = fmt::format(
        "too few samples to judge: even {} sorted by label would be within tolerance of a random "
        "order",
        Plural(s->n, "sample", "samples"));
  } else if (s->same_z > kOrderZThreshold) {
    // Ordered when at most a tenth of a random order's runs remain (the mean
    // run is about ten times longer or more).
    const bool ordered = static_cast<double>(s->runs) <= 0.1 * s->runs_expected;
    s->verdict = ordered ? OrderVerdict::kOrdered : OrderVerdict::kPartlyShuffled;
    s->verdict_line = fmt::format(
        "{}: {} of neighbours share a label (a random order would give {}); shuffle it",
        ordered ? "ordered" : "partly shuffled", Percent(s->same_rate), random_rate);
  } else if (s->same_z < -kOrderZThreshold) {
    const bool fewest = s->same_pairs == s->same_pairs_min;
    s->verdict = fewest ? OrderVerdict::kInterleaved : OrderVerdict::kPartlyInterleaved;
    if (fewest && s->same_pairs == 0) {
      s->verdict_line = fmt::format(
          "interleaved: no two neighbours share a label (a random order would give {})",
          random_rate);
    } else if (fewest) {
      s->verdict_line = fmt::format(
          "interleaved: {} of neighbours share a label, as few as the label counts allow (a random "
          "order would give {})",
          Percent(s->same_rate), random_rate);
    } else {
      s->verdict_line = fmt::format(
          "partly interleaved: {} of neighbours share a label (a random order would give {}; the "
          "label counts allow {})",
          Percent(s->same_rate), random_rate,
          Percent(static_cast<double>(s->same_pairs_min) / static_cast<double>(s->pairs)));
    }
    if (windows_drift) s->verdict_line += "; but " + drift;
  } else if (windows_drift) {
    s->verdict = OrderVerdict::kPartlyShuffled;
    s->verdict_line = "partly shuffled: neighbours look random, but " + drift + "; shuffle it";
  } else if (clumped) {
    const OrderLabelStats& ls = s->labels[s->unlikely_run_label];
    s->verdict = OrderVerdict::kClumped;
    s->verdict_line = fmt::format(
        "clumped: a run of {} samples of {} starts at sample {} (a random order has one this "
        "long with {}); shuffle it",
        ls.longest_run, LabelName(*s, s->unlikely_run_label), ls.longest_run_start,
        PBound(ls.longest_run_log10_p));
  } else if (s->windows > 0 && s->chi2_z < -kOrderZThreshold) {
    s->verdict = OrderVerdict::kStratified;
    s->verdict_line = fmt::format(
        "stratified: neighbours look random and windows of {} hold labels closer to their shares "
        "than a random order would (mean chi-square {}; random: {} +- {})",
        s->window, Real2(s->chi2_mean), Real2(s->chi2_expected), Real2(s->chi2_sd));
  } else {
    s->verdict = OrderVerdict::kShuffled;
    s->verdict_line = fmt::format(
        "shuffled: within statistical tolerance of a uniform random order ({} of neighbours "
        "share a label; random: {} +- {})",
        Percent(s->same_rate), random_rate,
        Percent(s->same_pairs_sd / static_cast<double>(s->pairs)));
  }
}

// Longest-run expectations for a random order (docs/order.md "Longest run").
// A maximal run of label l with length >= k starts at position 0 with
// probability (c)_k/(n)_k and at each of the n-k later positions with
// probability (c)_k (n-c) / (n)_{k+1}, so the expected number of such runs is
//   mu_l(k) = (n - c + 1) (c)_k / (n)_k,   mu(k) = sum_l mu_l(k),
// exactly. P(longest >= k) <= mu(k) (Markov), and the Poisson clumping
// approximation P(longest >= k) ~ 1 - exp(-mu(k)) gives the mean
// sum_k (1 - exp(-mu(k))).
void LongestRunExpectations(const std::vector<uint64_t>& counts, uint64_t n, OrderStats* s) {
  struct Term {
    Real ratio;  // (c)_k / (n)_k
    Real mult;   // n - c + 1
    uint64_t c;
  };
  const Real nr = static_cast<Real>(n);
  std::vector<Term> active;
  for (uint64_t c : counts) {
    if (c > 0) active.push_back({static_cast<Real>(c) / nr, nr - static_cast<Real>(c) + 1, c});
  }
  Real expected = 0;
  uint64_t limit = 0;
  constexpr Real kNegligible = 1e-30L;
  for (uint64_t k = 1; !active.empty(); ++k) {
    Real mu = 0;
    for (const Term& t : active) mu += t.mult * t.ratio;
    expected += -std::expm1(-mu);
    if (limit == 0 && mu <= static_cast<Real>(kOrderRunProbability)) limit = k;
    // Advance every term to k + 1; drop those that vanish.
    size_t kept = 0;
    for (Term t : active) {
      if (t.c <= k) continue;
      t.ratio *= static_cast<Real>(t.c - k) / (nr - static_cast<Real>(k));
      if (t.mult * t.ratio < kNegligible) continue;
      active[kept++] = t;
    }
    active.resize(kept);
    if (active.empty() && limit == 0) limit = k + 1;
  }
  s->longest_run_expected = static_cast<double>(expected);
  s->longest_run_limit = limit;

  // log10 mu(longest) through log-gamma: the observed run may be thousands
  // long, far below the smallest long double.
  const uint64_t k = s->longest_run;
  Real max_log = -std::numeric_limits<Real>::infinity();
  std::vector<Real> logs;
  for (uint64_t c : counts) {
    if (c < k || c == 0) continue;
    const Real l = LogRunsAtLeast(c, n, k);
    logs.push_back(l);
    max_log = std::max(max_log, l);
  }
  Real sum = 0;
  for (Real l : logs) sum += std::exp(l - max_log);
  const Real log_mu = max_log + std::log(sum);
  s->longest_run_log10_p = static_cast<double>(std::min<Real>(0, log_mu / std::log(Real{10})));
}

}  // namespace

const char* OrderVerdictName(OrderVerdict v) {
  switch (v) {
    case OrderVerdict::kNothingToMeasure: return "nothing_to_measure";
    case OrderVerdict::kTooFewSamples: return "too_few_samples";
    case OrderVerdict::kShuffled: return "shuffled";
    case OrderVerdict::kOrdered: return "ordered";
    case OrderVerdict::kPartlyShuffled: return "partly_shuffled";
    case OrderVerdict::kClumped: return "clumped";
    case OrderVerdict::kInterleaved: return "interleaved";
    case OrderVerdict::kPartlyInterleaved: return "partly_interleaved";
    case OrderVerdict::kStratified: return "stratified";
  }
  return "unknown";
}

Result<OrderStats> ComputeOrderStats(const uint32_t* labels, uint64_t n,
                                     const std::vector<std::string>& names,
                                     const OrderStatsOptions& options) {
  if (options.window == 0) {
    return Status::InvalidArgument("order statistics: the window (--window) must hold at least 1 sample");
  }
  if (!(options.min_expected >= 0)) {
    return Status::InvalidArgument(fmt::format(
        "order statistics: the pooling threshold {} is negative; give 0 or more",
        options.min_expected));
  }
  if (options.simulations < 0) {
    return Status::InvalidArgument(fmt::format(
        "order statistics: --simulations {}: give 0 or more", options.simulations));
  }
  const size_t num_labels = names.size();
  OrderStats s;
  s.n = n;
  s.window = options.window;
  s.min_expected = options.min_expected;
  s.labels.resize(num_labels);
  for (size_t l = 0; l < num_labels; ++l) s.labels[l].name = names[l];

  // Pass 1: counts (every window statistic needs them first).
  std::vector<uint64_t> counts(num_labels, 0);
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t l = labels[i];
    if (l >= num_labels) {
      return Status::InvalidArgument(fmt::format(
          "order statistics: sample {} has label id {} but there are only {} label names; the "
          "label column does not match its names",
          i, l, num_labels));
    }
    ++counts[l];
  }
  uint64_t c_max = 0;
  for (size_t l = 0; l < num_labels; ++l) {
    s.labels[l].count = counts[l];
    if (counts[l] > 0) ++s.labels_present;
    c_max = std::max(c_max, counts[l]);
  }

  // Window categories: each label expected at least min_expected times per
  // window, and one pool for the rest (Cochran's rule).
  const uint64_t w = options.window;
  s.windows = n / w;
  s.outside_windows = n - s.windows * w;
  std::vector<uint32_t> category(num_labels, 0);
  std::vector<uint64_t> category_counts;
  if (s.windows > 0) {
    const double per_window = static_cast<double>(w) / static_cast<double>(n);
    uint64_t pool_count = 0;
    std::vector<uint32_t> pooled;
    size_t smallest = SIZE_MAX;
    for (size_t l = 0; l < num_labels; ++l) {
      if (counts[l] == 0) continue;
      if (static_cast<double>(counts[l]) * per_window < options.min_expected) {
        pooled.push_back(static_cast<uint32_t>(l));
        pool_count += counts[l];
        continue;
      }
      category[l] = static_cast<uint32_t>(category_counts.size());
      if (smallest == SIZE_MAX || counts[l] < category_counts[smallest]) {
        smallest = category_counts.size();
      }
      category_counts.push_back(counts[l]);
    }
    if (!pooled.empty()) {
      uint32_t pool = static_cast<uint32_t>(category_counts.size());
      if (static_cast<double>(pool_count) * per_window < options.min_expected &&
          smallest != SIZE_MAX) {
        pool = static_cast<uint32_t>(smallest);
        category_counts[smallest] += pool_count;
      } else {
        category_counts.push_back(pool_count);
      }
      for (uint32_t l : pooled) category[l] = pool;
    }
    s.window_categories = category_counts.size();
    s.pooled_labels = pooled.size();
  }

  // Pass 2: runs, neighbours and windows. A window's chi-square is
  // (n/w) sum o^2/c - w over the categories it holds, so only the labels a
  // window touched are visited and reset: O(n) whatever the label count.
  std::vector<double> inv_count(category_counts.size(), 0);
  for (size_t c = 0; c < category_counts.size(); ++c) {
    inv_count[c] = 1.0 / static_cast<double>(category_counts[c]);
  }
  std::vector<uint64_t> in_window(num_labels, 0), in_category(category_counts.size(), 0);
  std::vector<uint32_t> touched, touched_categories;
  touched.reserve(std::min<uint64_t>(w, num_labels));
  const double scale = static_cast<double>(n) / static_cast<double>(w);
  double chi2_sum = 0;
  uint64_t worst_window = 0;
  double worst_chi2 = -1;
  uint64_t run = 0;
  uint32_t prev = 0;
  // Per-label results in flat arrays while scanning: with many labels the
  // OrderLabelStats records (names and all) would be cache misses per run.
  std::vector<uint64_t> label_longest(num_labels, 0), label_start(num_labels, 0),
      label_windows(num_labels, 0);
  auto end_run = [&](uint64_t end) {
    if (run > label_longest[prev]) {
      label_longest[prev] = run;
      label_start[prev] = end - run;
    }
    if (run > s.longest_run) {
      s.longest_run = run;
      s.longest_run_label = prev;
      s.longest_run_start = end - run;
    }
  };
  auto step = [&](uint64_t i) {
    const uint32_t l = labels[i];
    if (run > 0 && l == prev) {
      ++run;
      ++s.same_pairs;
    } else {
      if (run > 0) end_run(i);
      prev = l;
      run = 1;
    }
    return l;
  };
  for (uint64_t start = 0; start < s.windows * w; start += w) {
    for (uint64_t i = start; i < start + w; ++i) {
      const uint32_t l = step(i);
      if (in_window[l]++ == 0) touched.push_back(l);
    }
    for (uint32_t t : touched) {
      const uint32_t c = category[t];
      if (in_category[c] == 0) touched_categories.push_back(c);
      in_category[c] += in_window[t];
      ++label_windows[t];
      in_window[t] = 0;
    }
    touched.clear();
    double sum = 0;
    for (uint32_t c : touched_categories) {
      const double o = static_cast<double>(in_category[c]);
      sum += o * o * inv_count[c];
      in_category[c] = 0;
    }
    touched_categories.clear();
    const double chi2 = std::max(0.0, scale * sum - static_cast<double>(w));
    chi2_sum += chi2;
    if (chi2 > worst_chi2) {
      worst_chi2 = chi2;
      worst_window = start;
    }
  }
  for (uint64_t i = s.windows * w; i < n; ++i) step(i);
  if (run > 0) end_run(n);
  for (size_t l = 0; l < num_labels; ++l) {
    s.labels[l].longest_run = label_longest[l];
    s.labels[l].longest_run_start = label_start[l];
    s.labels[l].windows_with = label_windows[l];
  }
  s.pairs = n > 0 ? n - 1 : 0;
  s.runs = n - s.same_pairs;
  s.same_rate = s.pairs > 0 ? static_cast<double>(s.same_pairs) / static_cast<double>(s.pairs) : 0;
  s.mean_run = s.runs > 0 ? static_cast<double>(n) / static_cast<double>(s.runs) : 0;

  // The worst window again, for its most over-represented label.
  if (s.windows > 0) {
    s.chi2_mean = chi2_sum / static_cast<double>(s.windows);
    s.worst_window_start = worst_window;
    s.worst_window_chi2 = worst_chi2;
    for (uint64_t i = worst_window; i < worst_window + w; ++i) {
      if (in_window[labels[i]]++ == 0) touched.push_back(labels[i]);
    }
    double best = -1;
    for (uint32_t t : touched) {
      const double e = static_cast<double>(w) * static_cast<double>(counts[t]) /
                       static_cast<double>(n);
      const double o = static_cast<double>(in_window[t]);
      const double contribution = (o - e) * (o - e) / e;
      if (o > e && contribution > best) {
        best = contribution;
        s.worst_window_label = t;
        s.worst_window_count = in_window[t];
        s.worst_window_expected = e;
      }
      in_window[t] = 0;
    }
    touched.clear();
    if (best < 0) {  // every label exactly at its share (rounding aside)
      s.worst_window_label = labels[worst_window];
      s.worst_window_expected = static_cast<double>(w) *
                                static_cast<double>(counts[s.worst_window_label]) /
                                static_cast<double>(n);
      s.worst_window_count = 0;
      for (uint64_t i = worst_window; i < worst_window + w; ++i) {
        s.worst_window_count += labels[i] == s.worst_window_label;
      }
    }
  }

  // Expectations for a random order.
  Real p, mean_a, var_a;
  NeighbourMoments(counts, n, &p, &mean_a, &var_a);
  s.same_rate_expected = static_cast<double>(p);
  s.same_pairs_expected = static_cast<double>(mean_a);
  s.same_pairs_sd = static_cast<double>(std::sqrt(var_a));
  s.same_pairs_min = 2 * c_max > n + 1 ? 2 * c_max - n - 1 : 0;
  s.same_z = NeighbourZ(static_cast<double>(s.same_pairs), s.same_pairs_expected,
                        static_cast<double>(var_a));
  s.sorted_z = NeighbourZ(static_cast<double>(n - s.labels_present), s.same_pairs_expected,
                          static_cast<double>(var_a));
  s.runs_expected = static_cast<double>(n) - s.same_pairs_expected;
  s.mean_run_expected = s.runs_expected > 0 ? static_cast<double>(n) / s.runs_expected : 0;

  if (s.windows > 0) {
    Real chi2_mean, chi2_var;
    WindowMoments(category_counts, n, w, s.windows, &chi2_mean, &chi2_var);
    s.chi2_expected = static_cast<double>(chi2_mean);
    s.chi2_sd = static_cast<double>(std::sqrt(chi2_var));
    s.chi2_z = SkewedZ(s.chi2_mean, s.chi2_expected, static_cast<double>(chi2_var));
    for (size_t l = 0; l < num_labels; ++l) {
      const uint64_t c = counts[l];
      if (c == 0) continue;
      Real fraction = 1;  // 1 - (n-c)_w / (n)_w
      if (n - c >= w) {
        const Real log_none = LogFalling(n - c, w) - LogFalling(n, w);
        fraction = -std::expm1(log_none);
      }
      s.labels[l].windows_with_expected = static_cast<double>(fraction) *
                                          static_cast<double>(s.windows);
    }
  }

  if (n > 0) LongestRunExpectations(counts, n, &s);
  double least_log10_p = 1;
  for (size_t l = 0; l < num_labels; ++l) {
    OrderLabelStats& ls = s.labels[l];
    if (ls.count == 0) continue;
    ls.longest_run_log10_p = static_cast<double>(
        std::min<Real>(0, LogRunsAtLeast(ls.count, n, ls.longest_run) / std::log(Real{10})));
    if (ls.longest_run_log10_p < least_log10_p) {
      least_log10_p = ls.longest_run_log10_p;
      s.unlikely_run_label = static_cast<uint32_t>(l);
    }
  }

  // Monte Carlo longest runs, within the position budget.
  if (n >= 2 && s.labels_present >= 2 && options.simulations > 0) {
    // Only present labels take part (a label's identity matters only for
    // equality); a draw walks one Fenwick level per bit of their number.
    std::vector<uint64_t> present;
    for (uint64_t c : counts) {
      if (c > 0) present.push_back(c);
    }
    const uint64_t levels = std::max<uint64_t>(4, std::bit_width(present.size()));
    const uint64_t affordable = kOrderSimulationBudget / levels / n;
    const int sims = static_cast<int>(
        std::min<uint64_t>(static_cast<uint64_t>(options.simulations), affordable));
    if (sims > 0) {
      Rng rng(options.seed);
      std::vector<uint64_t> longest;
      SimulateLongestRuns(present, n, sims, rng, &longest);
      s.simulations_run = sims;
      s.longest_run_simulated =
          static_cast<double>(std::accumulate(longest.begin(), longest.end(), uint64_t{0})) /
          static_cast<double>(sims);
      s.longest_run_simulated_min = *std::min_element(longest.begin(), longest.end());
      s.longest_run_simulated_max = *std::max_element(longest.begin(), longest.end());
    }
  }

  Decide(&s);
  return s;
}

std::string FormatOrderText(const OrderStats& s) {
  std::string out = fmt::format("order of {}, {}", Plural(s.n, "sample", "samples"),
                                Plural(s.labels_present, "label", "labels"));
  if (s.labels.size() != s.labels_present) out += fmt::format(" ({} named)", s.labels.size());
  out += fmt::format(", windows of {}\n", s.window);
  if (s.n >= 2 && s.labels_present >= 1) {
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"", "observed", "random order", "z"});
    rows.push_back({"same-label neighbours",
                    fmt::format("{} ({})", s.same_pairs, Percent(s.same_rate)),
                    fmt::format("{:.1f} +- {:.1f} ({})", s.same_pairs_expected, s.same_pairs_sd,
                                Percent(s.same_rate_expected)),
                    ZText(s.same_z)});
    rows.push_back({"runs", std::to_string(s.runs),
                    fmt::format("{:.1f} +- {:.1f}", s.runs_expected, s.same_pairs_sd),
                    ZText(-s.same_z)});
    rows.push_back({"mean run length", Real2(s.mean_run), Real2(s.mean_run_expected), ""});
    std::string random_longest = fmt::format("about {:.1f}", s.longest_run_expected);
    if (s.simulations_run > 0) {
      random_longest += fmt::format(" ({} simulated: {:.1f}, {}..{})", s.simulations_run,
                                    s.longest_run_simulated,
                                    s.longest_run_simulated_min, s.longest_run_simulated_max);
    }
    rows.push_back({"longest run", std::to_string(s.longest_run), random_longest,
                    PBound(s.longest_run_log10_p)});
    if (s.windows > 0) {
      rows.push_back({"window chi-square (mean)", Real2(s.chi2_mean),
                      fmt::format("{} +- {}", Real2(s.chi2_expected), Real2(s.chi2_sd)),
                      ZText(s.chi2_z)});
    }
    out += Table(rows, "  ");
    out += fmt::format(
        "  longest run: {} at samples {}..{}; a random order has a run of {} or longer with {}\n",
        LabelName(s, s.longest_run_label), s.longest_run_start,
        s.longest_run_start + s.longest_run - 1, s.longest_run_limit,
        PBound(std::log10(kOrderRunProbability)));
    if (s.windows > 0) {
      std::string left_over =
          s.outside_windows == 0
              ? "none left over"
              : fmt::format("the last {} in none",
                            Plural(s.outside_windows, "sample is", "samples are"));
      if (s.pooled_labels > 0) {
        left_over += fmt::format("; {} expected under {:g} times a window pooled",
                                 Plural(s.pooled_labels, "label", "labels"), s.min_expected);
      }
      out += fmt::format(
          "  windows: {} of {} samples ({}); worst at sample {}: {} {} times (expected {:.1f})\n",
          s.windows, s.window, left_over, s.worst_window_start,
          LabelName(s, s.worst_window_label), s.worst_window_count, s.worst_window_expected);
    } else {
      out += fmt::format("  windows: none (fewer than {} samples)\n", s.window);
    }
    out += fmt::format("  |z| above {:.0f} is outside tolerance\n", kOrderZThreshold);
  }

  // The label table: all labels, or the first kShown with a count of the rest.
  constexpr size_t kShown = 30;
  if (!s.labels.empty()) {
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"label", "count", "share", "longest run", "in windows", "random"});
    for (size_t l = 0; l < s.labels.size() && l < kShown; ++l) {
      const OrderLabelStats& ls = s.labels[l];
      const double share =
          s.n > 0 ? static_cast<double>(ls.count) / static_cast<double>(s.n) : 0;
      std::string in = "", random = "";
      if (s.windows > 0) {
        in = Percent(static_cast<double>(ls.windows_with) / static_cast<double>(s.windows));
        random = Percent(ls.windows_with_expected / static_cast<double>(s.windows));
      }
      rows.push_back({Display(ls.name), std::to_string(ls.count), Percent(share),
                      std::to_string(ls.longest_run), in, random});
    }
    out += "labels\n" + Table(rows, "  ");
    if (s.labels.size() > kShown) {
      out += fmt::format("  ... and {} more labels (--json lists them all)\n",
                         s.labels.size() - kShown);
    }
  }
  out += s.verdict_line + "\n";
  return out;
}

json OrderStatsJson(const OrderStats& s) {
  auto put_name = [](json* j, const char* field, const std::string& name) {
    (*j)[field] = name;
    if (!IsValidUtf8(name)) {
      std::string hex;
      for (unsigned char c : name) hex += fmt::format("{:02x}", c);
      (*j)[std::string(field) + "_hex"] = hex;
    }
  };
  json j;
  j["samples"] = s.n;
  j["labels_present"] = s.labels_present;
  j["neighbours"] = {{"pairs", s.pairs},
                     {"same_label", s.same_pairs},
                     {"rate", s.same_rate},
                     {"expected_rate", s.same_rate_expected},
                     {"expected", s.same_pairs_expected},
                     {"sd", s.same_pairs_sd},
                     {"z", s.same_z},
                     {"fewest_possible", s.same_pairs_min}};
  j["runs"] = {{"count", s.runs},
               {"expected", s.runs_expected},
               {"mean_length", s.mean_run},
               {"expected_mean_length", s.mean_run_expected}};
  json longest = {{"length", s.longest_run},
                  {"start", s.longest_run_start},
                  {"label", s.longest_run_label},
                  {"expected", s.longest_run_expected},
                  {"log10_p_bound", s.longest_run_log10_p},
                  {"limit", s.longest_run_limit},
                  {"simulations", s.simulations_run},
                  {"least_likely_label", s.unlikely_run_label}};
  if (!s.labels.empty()) put_name(&longest, "label_name", s.labels[s.longest_run_label].name);
  if (s.simulations_run > 0) {
    longest["simulated_mean"] = s.longest_run_simulated;
    longest["simulated_min"] = s.longest_run_simulated_min;
    longest["simulated_max"] = s.longest_run_simulated_max;
  }
  j["longest_run"] = longest;
  json windows = {{"size", s.window},
                  {"count", s.windows},
                  {"outside", s.outside_windows},
                  {"categories", s.window_categories},
                  {"pooled_labels", s.pooled_labels},
                  {"min_expected", s.min_expected}};
  if (s.windows > 0) {
    windows["chi2_mean"] = s.chi2_mean;
    windows["chi2_expected"] = s.chi2_expected;
    windows["chi2_sd"] = s.chi2_sd;
    windows["z"] = s.chi2_z;
    json worst = {{"start", s.worst_window_start},
                  {"chi2", s.worst_window_chi2},
                  {"label", s.worst_window_label},
                  {"count", s.worst_window_count},
                  {"expected", s.worst_window_expected}};
    put_name(&worst, "label_name", s.labels[s.worst_window_label].name);
    windows["worst"] = worst;
  }
  j["windows"] = windows;
  json labels = json::array();
  for (size_t l = 0; l < s.labels.size(); ++l) {
    const OrderLabelStats& ls = s.labels[l];
    json e = {{"id", l},
              {"count", ls.count},
              {"longest_run", ls.longest_run},
              {"longest_run_start", ls.longest_run_start},
              {"longest_run_log10_p_bound", ls.longest_run_log10_p}};
    put_name(&e, "name", ls.name);
    if (s.windows > 0) {
      e["windows_with"] = ls.windows_with;
      e["windows_with_expected"] = ls.windows_with_expected;
    }
    labels.push_back(e);
  }
  j["labels"] = labels;
  j["z_threshold"] = kOrderZThreshold;
  j["run_probability"] = kOrderRunProbability;
  j["verdict"] = OrderVerdictName(s.verdict);
  j["verdict_line"] = s.verdict_line;
  return j;
}

}  // namespace shardset
