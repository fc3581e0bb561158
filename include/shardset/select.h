// Making views without copying a byte: split, select and mix (docs/views.md).
//
// Every choice is reproducible from the seed on any machine: sample `pos` of
// a source gets the score SplitMix64(base + (pos + 1) * 0x9E3779B97F4A7C15)
// (the finalizer of Vigna's SplitMix64), base = XXH3-64 of a salt (the mix
// part's name; "split" for split) seeded with the seed, and "the first k" of
// a source means the k samples with the smallest (score, pos). Taking the
// first k makes selections nested: a larger fraction of a source with the
// same seed holds every sample of a smaller one. Selected samples keep their
// source order in the view (shuffling is the loader's job, or `shardset
// shuffle`'s).
//
// Counts are exact: fractions are decimals (0.1, 20%), never binary floats;
// k = floor(f * n + 1/2) (round half up); several ratios of one n share it by
// largest remainder (ties to the earlier part).
#ifndef SHARDSET_SELECT_H_
#define SHARDSET_SELECT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "shardset/status.h"
#include "shardset/view.h"

namespace shardset {

// An exact non-negative decimal: num / 10^scale ("0.25" = 25 / 10^2;
// "20%" = 20 / 10^2).
struct Decimal {
  uint64_t num = 0;
  uint32_t scale = 0;

  // "3", "0.1", "2.50", "20%", "12.5%"; at most 18 digits after the point.
  // InvalidArgument for anything else (signs, exponents, empty).
  static Result<Decimal> Parse(std::string_view text);
  // Without a trailing '%': "0.1", "3", "1.0" (keeps the scale it was given).
  std::string ToString() const;
  bool is_integer() const { return scale == 0; }
  // floor(value * n + 1/2), exactly; ResourceExhausted past 2^64.
  Result<uint64_t> RoundedTimes(uint64_t n) const;
  // -1, 0, 1 as this is less than, equal to or greater than `o`.
  int Compare(const Decimal& o) const;
};

// Largest-remainder apportionment of `total` among `weights` (exact): each
// part gets floor(total * w / sum) and the remaining units go to the largest
// remainders, ties to the earlier part. Sum of weights must be positive, and
// the weights at their common scale must sum below 2^128 (Mix refuses
// weights that do not).
std::vector<uint64_t> Apportion(uint64_t total, const std::vector<Decimal>& weights);

// Progress of a long pass: (samples done, samples in the pass).
using SelectProgress = std::function<void(uint64_t, uint64_t)>;

inline constexpr size_t kMaxStratifyLabels = 65536;

struct SplitPart {
  std::string name;   // "train", "val", "test": the view is OUT/<name>.view
  Decimal ratio;      // --ratios
  std::string prefix; // --by-prefix: keys under this path prefix
};

struct SplitOptions {
  std::vector<SplitPart> parts;
  // Split by key prefix (parts' `prefix`) instead of by ratios.
  bool by_prefix = false;
  uint64_t seed = 0;
  // Apportion each label's samples separately, so every part keeps the
  // label proportions (each label's count in each part is within one sample
  // of exact). At most kMaxStratifyLabels distinct labels: each costs a
  // score histogram (8 KiB), and a nearly unique field is not a label.
  bool stratify = false;
  std::string label_field = "cls";
  // JSON object recorded as each view's recipe, plus {"part": name}.
  std::string recipe_json = "{}";
  bool sync = true;
  SelectProgress progress;
};

struct ViewMade {
  std::string path;
  uint64_t samples = 0;
  std::vector<uint64_t> per_source;  // entries drawn from each source
};

struct SplitResult {
  std::vector<ViewMade> views;
  uint64_t left_out = 0;  // samples in no part (ratios below 1, keys under no prefix)
};

// Writes OUT/<part>.view for every part. Ratios must not sum past 1; below 1
// leaves the rest out. Nothing is written when the options are invalid.
Result<SplitResult> Split(const View& src, const std::string& out_dir, const SplitOptions& options);

struct SelectOptions {
  // Any combination; a sample must pass all given.
  std::vector<std::string> labels;  // --label 3,5
  std::string keys_file;            // --keys FILE: one key per line, in that order
  std::string glob;                 // --glob 'training/*/1*' (fnmatch, '*' stops at '/')
  std::string label_field = "cls";
  std::string recipe_json = "{}";
  bool sync = true;
  SelectProgress progress;
};

// Writes the view of the samples of `src` that pass. With keys_file the view
// follows the file's order and a key `src` lacks is NotFound naming it (and
// how many more are missing); otherwise source order.
Result<ViewMade> Select(const View& src, const std::string& out, const SelectOptions& options);
// The positions of `src` that Select keeps, in the order it writes them
// (`shardset dir mirror --label/--glob/--keys` filters a directory so).
Result<std::vector<uint64_t>> SelectPositions(const View& src, const SelectOptions& options);

struct MixPart {
  std::string name;  // [A-Za-z0-9_.-]+, unique; names the view's source
  const View* source = nullptr;
  enum class Kind { kAll, kFraction, kCount, kWeight } kind = Kind::kAll;
  Decimal amount;  // the fraction, count or weight
};

struct MixOptions {
  std::vector<MixPart> parts;
  uint64_t seed = 0;
  // Allow a part more samples than its source has: every sample q times,
  // then the first r of the rest once more (count = q * n + r).
  bool replace = false;
  // The total for weighted parts: they share size minus the fixed parts'
  // counts, by largest remainder of their weights.
  uint64_t size = 0;
  std::string recipe_json = "{}";
  bool sync = true;
  SelectProgress progress;
};

// Writes one mix view to `out`.
Result<ViewMade> Mix(const MixOptions& options, const std::string& out);

// Writes the family of mixes where part `sweep_part` takes each amount
// start, start + step, ..., up to stop (inclusive when reached exactly), in
// `out_dir`, each file named after its mix ("camvid-all+synthia-0.2.view").
// The views are nested: each holds the samples of the ones before it.
Result<std::vector<ViewMade>> MixSweep(const MixOptions& options, std::string_view sweep_part,
                                       Decimal start, Decimal stop, Decimal step,
                                       const std::string& out_dir);

// The name MixSweep gives the view of `parts` ("camvid-all+synthia-0.2.view").
std::string MixFileName(const std::vector<MixPart>& parts);

// The command line's grammars (docs/views.md), one for the CLI and Python.
//
// "train=0.8,val=0.1,test=0.1" or "0.8,0.1,0.1" (unnamed parts are train,
// val, test): the parts of split --ratios.
Result<std::vector<SplitPart>> ParseSplitRatios(std::string_view text);
// "training=train,testing=test": the parts of split --by-prefix.
Result<std::vector<SplitPart>> ParseSplitPrefixes(std::string_view text);
// "NAME=SRC[:FRACTION|:COUNT|@WEIGHT]": a mix part (source left null) and
// its SRC in *path. The amount is what follows the last ':' or '@' when it
// reads as a number, so paths may hold ':' themselves.
Result<MixPart> ParseMixPart(std::string_view spec, std::string* path);
// "NAME=START:STOP:STEP": mix --sweep.
struct MixSweepSpec {
  std::string part;
  Decimal start, stop, step;
};
Result<MixSweepSpec> ParseMixSweep(std::string_view text);
// "a,b,,c" -> {"a", "b", "c"}: a list flag's items, empty ones dropped.
std::vector<std::string> SplitList(std::string_view text, char sep);

}  // namespace shardset

#endif  // SHARDSET_SELECT_H_
