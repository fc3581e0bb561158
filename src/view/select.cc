#include "shardset/select.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <map>
#include <set>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hash.h"
#include "base/random.h"
#include "base/strings.h"
#include "view/labels.h"

namespace shardset {
namespace {

using json = nlohmann::json;
using u128 = unsigned __int128;

constexpr uint32_t kMaxDecimalScale = 20;
constexpr uint64_t kMaxDecimalNum = 1000000000000000000ull;  // 10^18
constexpr uint64_t kMaxSweepViews = 10000;

u128 Pow10(uint32_t e) {
  u128 v = 1;
  for (uint32_t i = 0; i < e; ++i) v *= 10;
  return v;
}

// ------------------------------------------------------------ scores

// Ranks the items of each group by (score, pos) and answers, for an item,
// how many of its group's cut ranks its rank reaches, in O(1) memory per
// item: a histogram of the scores' top bits finds the bucket holding each
// cut, and only the items of those buckets are kept and sorted. Three
// passes over the items (Count, Collect, Bin), each computing scores again.
class RankCutter {
 public:
  static constexpr int kBucketBits = 10;
  static constexpr uint32_t kBuckets = 1u << kBucketBits;

  RankCutter(uint64_t base, size_t groups)
      : base_(base), counts_(groups * kBuckets), sizes_(groups), cuts_(groups) {}

  uint64_t size(uint32_t g) const { return sizes_[g]; }

  void Count(uint32_t g, uint64_t pos) {
    ++counts_[g * kBuckets + Bucket(Score(base_, pos))];
    ++sizes_[g];
  }

  // Ranks (ascending, each at most the group's size) where group g is cut.
  void SetCuts(uint32_t g, const std::vector<uint64_t>& ranks) {
    for (uint64_t rank : ranks) {
      Cut c;
      c.rank = rank;
      if (rank >= sizes_[g]) {
        c.never = true;
      } else {
        uint64_t before = 0;
        uint32_t b = 0;
        while (before + counts_[g * kBuckets + b] <= rank) before += counts_[g * kBuckets + b++];
        c.bucket = b;
        c.offset = rank - before;
        boundary_[{g, b}];
      }
      cuts_[g].push_back(c);
    }
  }

  bool NeedsCollect() const { return !boundary_.empty(); }

  void Collect(uint32_t g, uint64_t pos) {
    const uint64_t score = Score(base_, pos);
    auto it = boundary_.find({g, Bucket(score)});
    if (it != boundary_.end()) it->second.emplace_back(score, pos);
  }

  void Finish() {
    for (auto& [gb, keys] : boundary_) std::sort(keys.begin(), keys.end());
    for (uint32_t g = 0; g < cuts_.size(); ++g) {
      for (Cut& c : cuts_[g]) {
        if (!c.never) c.key = boundary_[{g, c.bucket}][c.offset];
      }
    }
    boundary_.clear();
  }

  // The number of group g's cuts whose rank is at most the item's rank.
  size_t Bin(uint32_t g, uint64_t pos) const {
    const std::pair<uint64_t, uint64_t> key{Score(base_, pos), pos};
    size_t bin = 0;
    for (const Cut& c : cuts_[g]) {
      if (!c.never && key >= c.key) ++bin;
    }
    return bin;
  }

 private:
  struct Cut {
    uint64_t rank = 0;
    bool never = false;  // the cut is at the group's size: no item reaches it
    uint32_t bucket = 0;
    uint64_t offset = 0;
    std::pair<uint64_t, uint64_t> key;  // (score, pos) of the item of rank `rank`
  };
  static uint32_t Bucket(uint64_t score) { return static_cast<uint32_t>(score >> (64 - kBucketBits)); }

  uint64_t base_;
  std::vector<uint64_t> counts_;
  std::vector<uint64_t> sizes_;
  std::vector<std::vector<Cut>> cuts_;
  std::map<std::pair<uint32_t, uint32_t>, std::vector<std::pair<uint64_t, uint64_t>>> boundary_;
};

// ------------------------------------------------------------ helpers

// The sources a view made from `v` records: v's own, with every shard's edge
// hash computed now (and, for a view file, checked against what it recorded,
// so a changed source is caught before anything is written).
Result<std::vector<ViewSource>> SourcesFor(const View& v) {
  std::vector<ViewSource> out;
  for (size_t s = 0; s < v.num_sources(); ++s) {
    ViewSource src = v.source(s);
    const Dataset& ds = v.dataset(s);
    for (size_t i = 0; i < src.shards.size(); ++i) {
      SHARDSET_ASSIGN_OR_RETURN(uint64_t h, EdgeHashOf(ds, i));
      if (v.is_view_file() && h != src.shards[i].edge_hash) {
        return Status::Corruption(fmt::format(
            "{}: source '{}' shard {} changed since that view was made; re-make it first",
            v.target(), EscapeForDisplay(src.name), ds.shard_path(i)));
      }
      src.shards[i].edge_hash = h;
    }
    src.selected = 0;
    out.push_back(std::move(src));
  }
  return out;
}

std::string WithFields(const std::string& recipe_json, const json& extra) {
  json r = json::parse(recipe_json, nullptr, false);
  if (!r.is_object()) r = json::object();
  for (auto it = extra.begin(); it != extra.end(); ++it) r[it.key()] = it.value();
  return r.dump();
}

Status CheckFileName(std::string_view what, const std::string& name) {
  const bool ok = !name.empty() && name != "." && name != ".." &&
                  name.find_first_of("/\\") == std::string::npos &&
                  name.find('\0') == std::string::npos;
  if (!ok) {
    return Status::InvalidArgument(fmt::format(
        "{} name '{}' cannot be a file name; use letters, digits, '-', '_' or '.'", what,
        EscapeForDisplay(name)));
  }
  return Status::OK();
}

Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  std::string partial;
  size_t start = 0;
  while (start <= dir.size()) {
    size_t slash = dir.find('/', start);
    if (slash == std::string::npos) slash = dir.size();
    partial = dir.substr(0, slash);
    if (!partial.empty() && ::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::FromErrno(fmt::format("{}: cannot create folder", partial), errno);
    }
    start = slash + 1;
  }
  if (!IsDirectory(dir)) {
    return Status::InvalidArgument(fmt::format("{}: exists and is not a folder", dir));
  }
  return Status::OK();
}

// The writers of one operation: all are closed (renamed into place) only
// after every entry was added, so a failure leaves none of the views.
struct Outputs {
  std::vector<std::unique_ptr<ViewWriter>> writers;
  std::vector<ViewMade> made;

  Status Open(const std::string& path, const std::vector<ViewSource>& sources,
              const std::string& recipe, bool sync) {
    SHARDSET_ASSIGN_OR_RETURN(auto w, ViewWriter::Create(path, sources, recipe, sync));
    writers.push_back(std::move(w));
    ViewMade m;
    m.path = path;
    m.per_source.assign(sources.size(), 0);
    made.push_back(std::move(m));
    return Status::OK();
  }

  Status Add(size_t out, ViewEntry e) {
    ++made[out].per_source[e.source];
    ++made[out].samples;
    return writers[out]->Add(e);
  }

  Status CloseAll() {
    for (auto& w : writers) SHARDSET_RETURN_IF_ERROR(w->Close());
    return Status::OK();
  }
};

void Report(const SelectProgress& progress, uint64_t done, uint64_t total) {
  if (progress && (done % 65536 == 0 || done == total)) progress(done, total);
}

}  // namespace

// ------------------------------------------------------------ Decimal

Result<Decimal> Decimal::Parse(std::string_view text) {
  std::string_view t = text;
  auto bad = [&]() {
    return Status::InvalidArgument(fmt::format(
        "'{}' is not a non-negative decimal (write 0.25, 3 or 20%)", EscapeForDisplay(text)));
  };
  bool percent = false;
  if (!t.empty() && t.back() == '%') {
    percent = true;
    t.remove_suffix(1);
  }
  if (t.empty()) return bad();
  Decimal d;
  bool seen_point = false, seen_digit = false;
  // (At most 18 decimals as written; a '%' adds 2 to the scale.)
  for (char c : t) {
    if (c == '.') {
      if (seen_point) return bad();
      seen_point = true;
      continue;
    }
    if (c < '0' || c > '9') return bad();
    seen_digit = true;
    if (d.num >= kMaxDecimalNum / 10) {
      return Status::InvalidArgument(
          fmt::format("'{}' has too many digits (at most 18)", EscapeForDisplay(text)));
    }
    d.num = d.num * 10 + static_cast<uint64_t>(c - '0');
    if (seen_point) ++d.scale;
  }
  if (!seen_digit) return bad();
  if (d.scale > kMaxDecimalScale - 2) {
    return Status::InvalidArgument(
        fmt::format("'{}' has too many decimals (at most 18)", EscapeForDisplay(text)));
  }
  if (percent) d.scale += 2;
  if (d.scale > kMaxDecimalScale) {
    return Status::InvalidArgument(
        fmt::format("'{}' has too many decimals", EscapeForDisplay(text)));
  }
  return d;
}

std::string Decimal::ToString() const {
  std::string digits = std::to_string(num);
  if (scale == 0) return digits;
  if (digits.size() <= scale) digits.insert(0, scale - digits.size() + 1, '0');
  digits.insert(digits.size() - scale, ".");
  return digits;
}

Result<uint64_t> Decimal::RoundedTimes(uint64_t n) const {
  const u128 d = Pow10(scale);
  const u128 p = static_cast<u128>(num) * n;
  const u128 q = p / d + ((p % d) * 2 >= d ? 1 : 0);
  if (q > UINT64_MAX) {
    return Status::ResourceExhausted(fmt::format("{} x {} is past 2^64", ToString(), n));
  }
  return static_cast<uint64_t>(q);
}

int Decimal::Compare(const Decimal& o) const {
  const uint32_t s = std::max(scale, o.scale);
  const u128 a = static_cast<u128>(num) * Pow10(s - scale);
  const u128 b = static_cast<u128>(o.num) * Pow10(s - o.scale);
  return a < b ? -1 : a > b ? 1 : 0;
}

// The weights at their common scale must sum below 2^128 (each is below
// 10^38; PlanDraws refuses weights that do not, split's ratios are at most 1).
std::vector<uint64_t> Apportion(uint64_t total, const std::vector<Decimal>& weights) {
  uint32_t s = 0;
  for (const Decimal& w : weights) s = std::max(s, w.scale);
  std::vector<u128> w(weights.size());
  u128 sum = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    w[i] = static_cast<u128>(weights[i].num) * Pow10(s - weights[i].scale);
    sum += w[i];
  }
  std::vector<uint64_t> out(weights.size(), 0);
  if (sum == 0) return out;
  std::vector<u128> rem(weights.size());
  uint64_t given = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    // total * w[i] / sum without overflow: w[i] <= sum < 10^39 does not fit
    // next to a 64-bit total in 128 bits, so divide first.
    const u128 q = w[i] / sum, r = w[i] % sum;  // q is 0 or 1 (w[i] <= sum)
    u128 part = q * total;
    // r * total / sum by long multiplication in 64-bit halves.
    u128 acc_q = 0, acc_r = 0;
    uint64_t t = total;
    u128 r_shift = r;  // r * 2^k mod sum, doubled each bit
    u128 q_shift = 0;  // floor(r * 2^k / sum)
    for (int bit = 0; bit < 64; ++bit) {
      // Both remainders stay below sum, which may pass 2^127: add and
      // double them modulo sum without ever holding more than sum.
      if (t & 1) {
        acc_q += q_shift;
        if (acc_r >= sum - r_shift) {
          acc_r -= sum - r_shift;
          ++acc_q;
        } else {
          acc_r += r_shift;
        }
      }
      t >>= 1;
      q_shift *= 2;
      if (r_shift >= sum - r_shift) {
        r_shift -= sum - r_shift;
        ++q_shift;
      } else {
        r_shift *= 2;
      }
    }
    part += acc_q;
    out[i] = static_cast<uint64_t>(part);
    rem[i] = acc_r;
    given += out[i];
  }
  std::vector<size_t> order(weights.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return rem[a] > rem[b]; });
  for (size_t k = 0; given < total && k < order.size(); ++k, ++given) ++out[order[k]];
  return out;
}

// ------------------------------------------------------------ split

namespace {

// Counts per (group, part): each strictly within one of exact (n_g * r_s
// when whole, else its floor or ceiling), and the parts' totals as close to
// their global apportionment as that allows. Groups hand out their leftover
// units (at most one per part), largest leftover first, each to the parts
// still furthest below their global target.
std::vector<std::vector<uint64_t>> SplitCounts(const std::vector<uint64_t>& group_sizes,
                                               const std::vector<Decimal>& ratios,
                                               bool ratios_sum_to_one, const Decimal& sum) {
  const size_t parts = ratios.size();
  uint64_t n = 0;
  for (uint64_t g : group_sizes) n += g;
  auto total_of = [&](uint64_t size) -> uint64_t {
    if (ratios_sum_to_one) return size;
    auto t = sum.RoundedTimes(size);
    return t.ok() ? *t : size;
  };
  std::vector<uint64_t> target = Apportion(total_of(n), ratios);
  std::vector<std::vector<uint64_t>> counts(group_sizes.size(), std::vector<uint64_t>(parts));
  std::vector<std::vector<u128>> rems(group_sizes.size(), std::vector<u128>(parts));
  std::vector<int64_t> demand(parts);
  for (size_t s = 0; s < parts; ++s) demand[s] = static_cast<int64_t>(target[s]);
  std::vector<uint64_t> leftover(group_sizes.size());
  for (size_t g = 0; g < group_sizes.size(); ++g) {
    uint64_t floors = 0;
    for (size_t s = 0; s < parts; ++s) {
      const u128 d = Pow10(ratios[s].scale);
      const u128 p = static_cast<u128>(ratios[s].num) * group_sizes[g];
      counts[g][s] = static_cast<uint64_t>(p / d);
      // Remainders compared across parts: scale them to a common 10^20.
      rems[g][s] = (p % d) * Pow10(kMaxDecimalScale - ratios[s].scale);
      floors += counts[g][s];
      demand[s] -= static_cast<int64_t>(counts[g][s]);
    }
    const uint64_t t = total_of(group_sizes[g]);
    leftover[g] = t > floors ? std::min<uint64_t>(t - floors, parts) : 0;
  }
  std::vector<size_t> order(group_sizes.size());
  for (size_t g = 0; g < order.size(); ++g) order[g] = g;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return leftover[a] > leftover[b]; });
  for (size_t g : order) {
    std::vector<size_t> pick(parts);
    for (size_t s = 0; s < parts; ++s) pick[s] = s;
    // Only parts whose share of this group has a fraction may round up: a
    // part with a whole share gets exactly it. There are always enough of
    // them (the fractions sum to the leftover, or to within 1/2 of it when
    // the ratios sum below 1, and each is below 1).
    std::stable_sort(pick.begin(), pick.end(), [&](size_t a, size_t b) {
      if ((rems[g][a] > 0) != (rems[g][b] > 0)) return rems[g][a] > 0;
      if (demand[a] != demand[b]) return demand[a] > demand[b];
      return rems[g][a] > rems[g][b];
    });
    for (uint64_t k = 0; k < leftover[g]; ++k) {
      ++counts[g][pick[k]];
      --demand[pick[k]];
    }
  }
  return counts;
}

bool UnderPrefix(std::string_view key, std::string_view prefix) {
  if (key.substr(0, prefix.size()) != prefix) return false;
  return prefix.empty() || prefix.back() == '/' || key.size() == prefix.size() ||
         key[prefix.size()] == '/';
}

}  // namespace

Result<SplitResult> Split(const View& src, const std::string& out_dir,
                          const SplitOptions& o) {
  if (o.parts.empty()) return Status::InvalidArgument("split needs at least one part");
  std::set<std::string> names;
  for (const SplitPart& p : o.parts) {
    SHARDSET_RETURN_IF_ERROR(CheckFileName("part", p.name));
    if (!names.insert(p.name).second) {
      return Status::InvalidArgument(
          fmt::format("part '{}' is given twice", EscapeForDisplay(p.name)));
    }
  }
  Decimal sum;
  std::vector<Decimal> ratios;
  if (!o.by_prefix) {
    for (const SplitPart& p : o.parts) {
      // One at a time first, so that the sum below cannot wrap around.
      if (p.ratio.Compare(Decimal{1, 0}) > 0) {
        return Status::InvalidArgument(fmt::format(
            "part {}'s ratio {} is more than 1; ratios are shares of the samples (0.8, 80%)",
            EscapeForDisplay(p.name), p.ratio.ToString()));
      }
      ratios.push_back(p.ratio);
    }
    // The sum, exactly, at the largest scale.
    uint32_t scale = 0;
    for (const Decimal& r : ratios) scale = std::max(scale, r.scale);
    u128 total = 0;
    for (const Decimal& r : ratios) total += static_cast<u128>(r.num) * Pow10(scale - r.scale);
    if (total > Pow10(scale)) {
      std::string listed;
      for (const SplitPart& p : o.parts) {
        listed += fmt::format("{}{}={}", listed.empty() ? "" : ",", p.name, p.ratio.ToString());
      }
      return Status::InvalidArgument(fmt::format(
          "ratios {} add up to more than 1; make them sum to 1 (or less, to leave samples out)",
          listed));
    }
    while (total > kMaxDecimalNum && scale > 0) {  // keeps Decimal's bound; exact when it fits
      total /= 10;
      --scale;
    }
    sum.num = static_cast<uint64_t>(total);
    sum.scale = scale;
  }
  if (src.num_samples() == 0) {
    return Status::InvalidArgument(
        fmt::format("{}: has no samples; nothing to split", src.target()));
  }
  SHARDSET_ASSIGN_OR_RETURN(std::vector<ViewSource> sources, SourcesFor(src));
  const uint64_t n = src.num_samples();
  // Which part each position goes to: parts.size() means none.
  std::vector<std::string> recipes;
  for (const SplitPart& p : o.parts) {
    recipes.push_back(WithFields(o.recipe_json, {{"part", p.name}}));
  }
  auto open_outputs = [&](Outputs* outs) -> Status {
    SHARDSET_RETURN_IF_ERROR(MakeDirs(out_dir));
    for (size_t i = 0; i < o.parts.size(); ++i) {
      SHARDSET_RETURN_IF_ERROR(outs->Open(JoinPath(out_dir, o.parts[i].name + ".view"),
                                          sources, recipes[i], o.sync));
    }
    return Status::OK();
  };
  SplitResult result;
  Outputs outs;
  if (o.by_prefix) {
    SHARDSET_RETURN_IF_ERROR(open_outputs(&outs));
    for (uint64_t pos = 0; pos < n; ++pos) {
      SHARDSET_ASSIGN_OR_RETURN(std::string key, src.Key(pos));
      size_t part = o.parts.size();
      for (size_t i = 0; i < o.parts.size() && part == o.parts.size(); ++i) {
        if (UnderPrefix(key, o.parts[i].prefix)) part = i;
      }
      if (part == o.parts.size()) {
        ++result.left_out;
      } else {
        SHARDSET_RETURN_IF_ERROR(outs.Add(part, src.entry(pos)));
      }
      Report(o.progress, pos + 1, n);
    }
  } else {
    LabelColumn labels;
    if (o.stratify) {
      LabelSpec spec;
      spec.kind = LabelSpec::Kind::kField;
      spec.field = o.label_field;
      LabelColumn::Options lo;
      lo.max_labels = kMaxStratifyLabels;
      lo.hint = "too many to stratify by; choose the label field with --label-field";
      lo.progress = o.progress;
      SHARDSET_RETURN_IF_ERROR(labels.Build(src, spec, lo));
    }
    const size_t groups = o.stratify ? labels.names().size() : 1;
    auto group = [&](uint64_t pos) -> uint32_t { return o.stratify ? labels[pos] : 0; };
    RankCutter cutter(ScoreBase("split", o.seed), groups);
    for (uint64_t pos = 0; pos < n; ++pos) cutter.Count(group(pos), pos);
    std::vector<uint64_t> sizes(groups);
    for (uint32_t g = 0; g < groups; ++g) sizes[g] = cutter.size(g);
    const bool whole = sum.Compare(Decimal{1, 0}) == 0;
    const auto counts = SplitCounts(sizes, ratios, whole, sum);
    for (uint32_t g = 0; g < groups; ++g) {
      std::vector<uint64_t> cuts;
      uint64_t at = 0;
      for (uint64_t c : counts[g]) cuts.push_back(at += c);
      cutter.SetCuts(g, cuts);
    }
    if (cutter.NeedsCollect()) {
      for (uint64_t pos = 0; pos < n; ++pos) cutter.Collect(group(pos), pos);
    }
    cutter.Finish();
    SHARDSET_RETURN_IF_ERROR(open_outputs(&outs));
    for (uint64_t pos = 0; pos < n; ++pos) {
      const size_t part = cutter.Bin(group(pos), pos);
      if (part >= o.parts.size()) {
        ++result.left_out;
      } else {
        SHARDSET_RETURN_IF_ERROR(outs.Add(part, src.entry(pos)));
      }
    }
  }
  SHARDSET_RETURN_IF_ERROR(outs.CloseAll());
  result.views = std::move(outs.made);
  return result;
}

// ------------------------------------------------------------ select

Result<std::vector<uint64_t>> SelectPositions(const View& src, const SelectOptions& o) {
  std::set<std::string> wanted_labels(o.labels.begin(), o.labels.end());
  std::vector<uint64_t> positions;
  const bool by_keys = !o.keys_file.empty();
  if (by_keys) {
    SHARDSET_ASSIGN_OR_RETURN(std::string text, ReadFile(o.keys_file, uint64_t{16} << 30));
    uint64_t missing = 0, line_no = 0, listed = 0;
    std::string first_missing;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string_view key(text.data() + start, end - start);
      start = end + 1;
      ++line_no;
      if (!key.empty() && key.back() == '\r') key.remove_suffix(1);
      if (key.empty()) continue;
      ++listed;
      auto pos = src.Find(key);
      if (pos.ok()) {
        positions.push_back(*pos);
      } else if (pos.status().IsNotFound()) {
        if (missing++ == 0) first_missing = fmt::format("'{}' (line {})", EscapeForDisplay(key), line_no);
      } else {
        return pos.status();
      }
    }
    if (missing > 0) {
      return Status::NotFound(fmt::format(
          "{}: {} of its {} keys are not in {}, the first {}; fix the list or the source",
          o.keys_file, missing, listed, src.target(), first_missing));
    }
  }
  if (src.num_samples() == 0) {
    return Status::InvalidArgument(fmt::format("{}: has no samples", src.target()));
  }
  std::vector<uint64_t> kept;
  const uint64_t n = by_keys ? positions.size() : src.num_samples();
  Sample sample;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t pos = by_keys ? positions[i] : i;
    bool keep = true;
    if (!o.glob.empty()) {
      SHARDSET_ASSIGN_OR_RETURN(std::string key, src.Key(pos));
      keep = ::fnmatch(o.glob.c_str(), key.c_str(), FNM_PATHNAME) == 0;
    }
    if (keep && !wanted_labels.empty()) {
      SHARDSET_RETURN_IF_ERROR(src.Read(pos, &sample));
      auto label = SampleLabel(sample, o.label_field);
      if (!label.ok()) return label.status().WithPrefix(src.target());
      keep = wanted_labels.count(*label) > 0;
    }
    if (keep) kept.push_back(pos);
    Report(o.progress, i + 1, n);
  }
  return kept;
}

Result<ViewMade> Select(const View& src, const std::string& out, const SelectOptions& o) {
  SHARDSET_ASSIGN_OR_RETURN(std::vector<uint64_t> kept, SelectPositions(src, o));
  SHARDSET_ASSIGN_OR_RETURN(std::vector<ViewSource> sources, SourcesFor(src));
  Outputs outs;
  SHARDSET_RETURN_IF_ERROR(outs.Open(out, sources, o.recipe_json, o.sync));
  for (uint64_t pos : kept) SHARDSET_RETURN_IF_ERROR(outs.Add(0, src.entry(pos)));
  SHARDSET_RETURN_IF_ERROR(outs.CloseAll());
  return std::move(outs.made[0]);
}

// ------------------------------------------------------------ mix

namespace {

Status CheckPartName(const std::string& name) {
  const bool ok = !name.empty() && name != "." && name != ".." &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                  });
  if (!ok) {
    return Status::InvalidArgument(fmt::format(
        "mix part name '{}': use letters, digits, '_', '-' or '.' (it names the view's source "
        "and its file)",
        EscapeForDisplay(name)));
  }
  return Status::OK();
}

// Names valid and unique, sources not empty (PlanDraws divides by their sizes).
Status CheckParts(const std::vector<MixPart>& parts) {
  if (parts.empty()) return Status::InvalidArgument("a mix needs at least one NAME=SRC part");
  std::set<std::string> names;
  for (const MixPart& p : parts) {
    SHARDSET_RETURN_IF_ERROR(CheckPartName(p.name));
    if (!names.insert(p.name).second) {
      return Status::InvalidArgument(fmt::format("mix part '{}' is given twice", p.name));
    }
    if (p.source->num_samples() == 0) {
      return Status::InvalidArgument(fmt::format(
          "mix part '{}': {} has no samples; there is nothing to draw from", p.name,
          p.source->target()));
    }
  }
  return Status::OK();
}

// How many times each sample of a part appears in one view: every sample
// `copies` times, and those of rank < `extra` once more.
struct Draw {
  uint64_t copies = 0;
  uint64_t extra = 0;
};

Result<uint64_t> PartCount(const MixPart& p, uint64_t n, uint64_t weighted_share) {
  switch (p.kind) {
    case MixPart::Kind::kAll: return n;
    case MixPart::Kind::kFraction: return p.amount.RoundedTimes(n);
    case MixPart::Kind::kCount:
      if (!p.amount.is_integer()) {
        return Status::InvalidArgument(fmt::format(
            "mix part '{}': count {} is not a whole number", p.name, p.amount.ToString()));
      }
      return p.amount.num;
    case MixPart::Kind::kWeight: return weighted_share;
  }
  return n;
}

std::string AmountText(const MixPart& p) {
  switch (p.kind) {
    case MixPart::Kind::kAll: return "all";
    case MixPart::Kind::kFraction:
    case MixPart::Kind::kCount: return p.amount.ToString();
    case MixPart::Kind::kWeight: return "w" + p.amount.ToString();
  }
  return "";
}

// The draws of every part in every view: draws[view][part].
Result<std::vector<std::vector<Draw>>> PlanDraws(const MixOptions& o,
                                                  const std::vector<std::vector<MixPart>>& views) {
  std::vector<std::vector<Draw>> out;
  for (const std::vector<MixPart>& parts : views) {
    uint64_t fixed = 0;
    std::vector<Decimal> weights;
    std::vector<size_t> weighted;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (parts[i].kind == MixPart::Kind::kWeight) {
        weights.push_back(parts[i].amount);
        weighted.push_back(i);
      } else {
        SHARDSET_ASSIGN_OR_RETURN(uint64_t c,
                                  PartCount(parts[i], parts[i].source->num_samples(), 0));
        fixed += c;
      }
    }
    std::vector<uint64_t> shares(parts.size(), 0);
    if (!weighted.empty()) {
      if (o.size == 0) {
        return Status::InvalidArgument(
            "weighted mix parts (NAME=SRC@WEIGHT) need --size, the total they share");
      }
      if (fixed > o.size) {
        return Status::InvalidArgument(fmt::format(
            "--size {} is smaller than the {} samples the fraction and count parts take", o.size,
            fixed));
      }
      bool any = false;
      for (const Decimal& w : weights) any = any || w.num > 0;
      if (!any) return Status::InvalidArgument("the mix's weights are all zero");
      uint32_t scale = 0;
      for (const Decimal& w : weights) scale = std::max(scale, w.scale);
      u128 sum = 0;
      for (const Decimal& w : weights) {
        const u128 x = static_cast<u128>(w.num) * Pow10(scale - w.scale);
        if (sum + x < sum) {
          return Status::InvalidArgument(
              "the mix's weights are too far apart to share exactly; write them with fewer "
              "digits");
        }
        sum += x;
      }
      const std::vector<uint64_t> a = Apportion(o.size - fixed, weights);
      for (size_t k = 0; k < weighted.size(); ++k) shares[weighted[k]] = a[k];
    }
    std::vector<Draw> draws;
    for (size_t i = 0; i < parts.size(); ++i) {
      const MixPart& p = parts[i];
      const uint64_t n = p.source->num_samples();
      if (n == 0) {
        return Status::InvalidArgument(fmt::format(
            "mix part '{}': {} has no samples; there is nothing to draw from", p.name,
            p.source->target()));
      }
      SHARDSET_ASSIGN_OR_RETURN(uint64_t k, PartCount(p, n, shares[i]));
      if (k > n && !o.replace) {
        return Status::InvalidArgument(fmt::format(
            "mix part '{}': {} of {} ({} samples) is {}, more than it has; pass --replace to "
            "draw samples more than once, or ask for less",
            p.name, AmountText(p), p.source->target(), n, k));
      }
      draws.push_back(Draw{k / n, k % n});
    }
    out.push_back(std::move(draws));
  }
  return out;
}

// Writes one view per entry of `views` (same parts and sources, different
// amounts) with one pass over each part.
Result<std::vector<ViewMade>> MixViews(const MixOptions& o,
                                       const std::vector<std::vector<MixPart>>& views,
                                       const std::vector<std::string>& paths,
                                       const std::vector<std::string>& recipes) {
  const std::vector<MixPart>& parts = views[0];
  SHARDSET_RETURN_IF_ERROR(CheckParts(parts));
  SHARDSET_ASSIGN_OR_RETURN(auto draws, PlanDraws(o, views));
  // The view's sources: each part's sources in order, named after the part
  // (part/source when a part is itself a view of several sources).
  std::vector<ViewSource> sources;
  std::vector<uint32_t> base(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    base[i] = static_cast<uint32_t>(sources.size());
    SHARDSET_ASSIGN_OR_RETURN(std::vector<ViewSource> own, SourcesFor(*parts[i].source));
    for (ViewSource& s : own) {
      s.name = own.size() == 1 ? parts[i].name : parts[i].name + "/" + s.name;
      sources.push_back(std::move(s));
    }
  }
  Outputs outs;
  for (size_t v = 0; v < views.size(); ++v) {
    SHARDSET_RETURN_IF_ERROR(outs.Open(paths[v], sources, recipes[v], o.sync));
  }
  uint64_t total = 0, done = 0;
  for (const MixPart& p : parts) total += p.source->num_samples();
  for (size_t i = 0; i < parts.size(); ++i) {
    const View& src = *parts[i].source;
    const uint64_t n = src.num_samples();
    std::vector<uint64_t> cuts;
    for (const auto& d : draws) {
      if (d[i].extra > 0) cuts.push_back(d[i].extra);
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    RankCutter cutter(ScoreBase(parts[i].name, o.seed), 1);
    if (!cuts.empty()) {
      for (uint64_t pos = 0; pos < n; ++pos) cutter.Count(0, pos);
      cutter.SetCuts(0, cuts);
      for (uint64_t pos = 0; pos < n; ++pos) cutter.Collect(0, pos);
      cutter.Finish();
    }
    // A sample of rank r is among the first `extra` when fewer cuts than
    // the index of `extra` in `cuts` lie at or below r.
    std::vector<size_t> extra_index(views.size());
    for (size_t v = 0; v < views.size(); ++v) {
      extra_index[v] = static_cast<size_t>(
          std::lower_bound(cuts.begin(), cuts.end(), draws[v][i].extra) - cuts.begin());
    }
    for (uint64_t pos = 0; pos < n; ++pos) {
      const size_t bin = cuts.empty() ? 0 : cutter.Bin(0, pos);
      ViewEntry e = src.entry(pos);
      e.source += base[i];
      for (size_t v = 0; v < views.size(); ++v) {
        const Draw& d = draws[v][i];
        const uint64_t t = d.copies + (d.extra > 0 && bin <= extra_index[v] ? 1 : 0);
        for (uint64_t k = 0; k < t; ++k) SHARDSET_RETURN_IF_ERROR(outs.Add(v, e));
      }
      Report(o.progress, ++done, total);
    }
  }
  SHARDSET_RETURN_IF_ERROR(outs.CloseAll());
  return std::move(outs.made);
}

}  // namespace

std::string MixFileName(const std::vector<MixPart>& parts) {
  std::string name;
  for (const MixPart& p : parts) {
    if (!name.empty()) name += "+";
    name += p.name + "-" + AmountText(p);
  }
  return name + ".view";
}

Result<ViewMade> Mix(const MixOptions& o, const std::string& out) {
  SHARDSET_ASSIGN_OR_RETURN(auto made, MixViews(o, {o.parts}, {out}, {o.recipe_json}));
  return std::move(made[0]);
}

Result<std::vector<ViewMade>> MixSweep(const MixOptions& o, std::string_view sweep_part,
                                       Decimal start, Decimal stop, Decimal step,
                                       const std::string& out_dir) {
  SHARDSET_RETURN_IF_ERROR(CheckParts(o.parts));
  size_t swept = o.parts.size();
  for (size_t i = 0; i < o.parts.size(); ++i) {
    if (o.parts[i].name == sweep_part) swept = i;
  }
  if (swept == o.parts.size()) {
    return Status::InvalidArgument(fmt::format(
        "--sweep names '{}', which is not one of the mix's parts", EscapeForDisplay(sweep_part)));
  }
  if (step.num == 0) return Status::InvalidArgument("--sweep step must be more than 0");
  if (start.Compare(stop) > 0) {
    return Status::InvalidArgument(fmt::format("--sweep start {} is past its stop {}",
                                               start.ToString(), stop.ToString()));
  }
  const bool counts = start.is_integer() && stop.is_integer() && step.is_integer();
  const uint32_t scale = std::max({start.scale, stop.scale, step.scale});
  auto at_scale = [&](const Decimal& d) {
    return static_cast<u128>(d.num) * Pow10(scale - d.scale);
  };
  std::vector<std::vector<MixPart>> views;
  std::vector<std::string> paths, recipes;
  for (u128 v = at_scale(start); v <= at_scale(stop); v += at_scale(step)) {
    if (views.size() == kMaxSweepViews) {
      return Status::InvalidArgument(
          fmt::format("--sweep makes more than {} views; take a larger step", kMaxSweepViews));
    }
    if (v >= kMaxDecimalNum) {  // a Decimal holds at most 18 digits
      return Status::InvalidArgument(fmt::format(
          "--sweep {}:{}:{} needs more than 18 digits at the step's {} decimals; use a step "
          "with fewer decimals",
          start.ToString(), stop.ToString(), step.ToString(), scale));
    }
    std::vector<MixPart> parts = o.parts;
    parts[swept].kind = counts ? MixPart::Kind::kCount : MixPart::Kind::kFraction;
    parts[swept].amount = Decimal{static_cast<uint64_t>(v), scale};
    paths.push_back(JoinPath(out_dir, MixFileName(parts)));
    recipes.push_back(WithFields(
        o.recipe_json, {{"sweep_value", {{"part", std::string(sweep_part)},
                                         {"amount", parts[swept].amount.ToString()}}}}));
    views.push_back(std::move(parts));
  }
  // Validate every member before creating the folder.
  SHARDSET_RETURN_IF_ERROR(PlanDraws(o, views).status());
  SHARDSET_RETURN_IF_ERROR(MakeDirs(out_dir));
  return MixViews(o, views, paths, recipes);
}

// ------------------------------------------------------------ grammars

std::vector<std::string> SplitList(std::string_view text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Result<std::vector<SplitPart>> ParseSplitRatios(std::string_view text) {
  static const char* kNames[] = {"train", "val", "test"};
  const std::vector<std::string> items = SplitList(text, ',');
  std::vector<SplitPart> parts;
  for (size_t i = 0; i < items.size(); ++i) {
    SplitPart part;
    std::string amount = items[i];
    if (size_t eq = amount.find('='); eq != std::string::npos) {
      part.name = amount.substr(0, eq);
      amount = amount.substr(eq + 1);
    } else if (i < 3) {
      part.name = kNames[i];
    } else {
      return Status::InvalidArgument(
          "name parts beyond the third (NAME=RATIO); unnamed ones are train, val, test");
    }
    auto d = Decimal::Parse(amount);
    if (!d.ok()) return d.status().WithPrefix(fmt::format("part '{}'", part.name));
    part.ratio = *d;
    parts.push_back(std::move(part));
  }
  return parts;
}

Result<std::vector<SplitPart>> ParseSplitPrefixes(std::string_view text) {
  std::vector<SplitPart> parts;
  for (const std::string& item : SplitList(text, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      return Status::InvalidArgument(
          fmt::format("'{}' is not PREFIX=NAME (e.g. training=train)", item));
    }
    SplitPart part;
    part.prefix = item.substr(0, eq);
    part.name = item.substr(eq + 1);
    parts.push_back(std::move(part));
  }
  return parts;
}

Result<MixPart> ParseMixPart(std::string_view spec_text, std::string* path) {
  const std::string spec(spec_text);
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    return Status::InvalidArgument(fmt::format(
        "mix part '{}' is not NAME=SRC[:FRACTION|:COUNT|@WEIGHT] (e.g. synthia=synthia/:0.2)",
        spec));
  }
  MixPart part;
  part.name = spec.substr(0, eq);
  std::string rest = spec.substr(eq + 1);
  auto numeric = [](std::string_view t) {
    return !t.empty() && t.find_first_not_of("+-0123456789.%") == std::string_view::npos &&
           t.find_first_of("0123456789") != std::string_view::npos;
  };
  const size_t at = rest.find_last_of(":@");
  if (at != std::string::npos && numeric(std::string_view(rest).substr(at + 1))) {
    const std::string amount = rest.substr(at + 1);
    if (amount[0] == '-' || amount[0] == '+') {
      return Status::InvalidArgument(fmt::format(
          "mix part '{}': amount '{}' has a sign; counts, fractions and weights are 0 or more",
          part.name, amount));
    }
    auto d = Decimal::Parse(amount);
    if (!d.ok()) return d.status().WithPrefix(fmt::format("mix part '{}'", part.name));
    part.amount = *d;
    if (rest[at] == '@') {
      part.kind = MixPart::Kind::kWeight;
    } else if (amount.find_first_of(".%") != std::string::npos) {
      part.kind = MixPart::Kind::kFraction;
    } else {
      part.kind = MixPart::Kind::kCount;
    }
    rest.resize(at);
  }
  *path = rest;
  return part;
}

Result<MixSweepSpec> ParseMixSweep(std::string_view text) {
  const size_t eq = text.find('=');
  const std::vector<std::string> range =
      eq == std::string_view::npos ? std::vector<std::string>{} : SplitList(text.substr(eq + 1), ':');
  if (range.size() != 3 || eq == 0) {
    return Status::InvalidArgument(fmt::format(
        "--sweep '{}' is not NAME=START:STOP:STEP (e.g. synthia=0:1:0.1)", text));
  }
  MixSweepSpec spec;
  spec.part = std::string(text.substr(0, eq));
  Decimal* d[3] = {&spec.start, &spec.stop, &spec.step};
  for (int i = 0; i < 3; ++i) {
    auto parsed = Decimal::Parse(range[i]);
    if (!parsed.ok()) return parsed.status().WithPrefix("--sweep");
    *d[i] = *parsed;
  }
  return spec;
}

}  // namespace shardset
