#include "shuffle/order.h"

#include <algorithm>
#include <numeric>

#include "base/random.h"

namespace shardset::shuffle {
namespace {

using u128 = unsigned __int128;

// Durstenfeld's Fisher-Yates: every permutation of `items` equally likely.
template <typename T>
void FisherYates(T* items, uint64_t n, Rng* rng) {
  for (uint64_t i = n; i > 1; --i) {
    const uint64_t j = rng->Below(i);
    std::swap(items[i - 1], items[j]);
  }
}

class Uniform final : public OrderPlan {
 public:
  Uniform(uint64_t n, uint64_t seed, uint64_t bucket_samples, uint32_t slices)
      : OrderPlan(n),
        buckets_(std::max<uint64_t>(1, (n + bucket_samples - 1) / bucket_samples)),
        base_(ScoreBase("shuffle", seed)),
        bucket_base_(ScoreBase("shuffle-bucket", seed)) {
    const uint64_t s = std::clamp<uint64_t>(slices, 1, buckets_);
    for (uint64_t i = 0; i <= s; ++i) {
      first_bucket_.push_back(static_cast<uint64_t>(u128{buckets_} * i / s));
    }
  }

  uint32_t slices() const override { return static_cast<uint32_t>(first_bucket_.size() - 1); }

  uint32_t SliceOf(uint64_t pos) const override { return SliceOfBucket(Bucket(pos)); }

  std::vector<uint64_t> SliceSizes() const override {
    std::vector<uint64_t> sizes(slices(), 0);
    for (uint64_t pos = 0; pos < n_; ++pos) ++sizes[SliceOf(pos)];
    return sizes;
  }

  void OrderSlice(uint32_t slice, const std::vector<uint64_t>& positions,
                  std::vector<uint32_t>* order) const override {
    // A stable counting sort by bucket keeps each bucket's samples in source
    // order, as the definition permutes them from.
    const uint64_t b0 = first_bucket_[slice], nb = first_bucket_[slice + 1] - b0;
    std::vector<uint32_t> start(nb + 1, 0);
    std::vector<uint32_t> bucket(positions.size());
    for (size_t i = 0; i < positions.size(); ++i) {
      bucket[i] = static_cast<uint32_t>(Bucket(positions[i]) - b0);
      ++start[bucket[i] + 1];
    }
    std::partial_sum(start.begin(), start.end(), start.begin());
    order->assign(positions.size(), 0);
    std::vector<uint32_t> fill(start.begin(), start.end() - 1);
    for (size_t i = 0; i < positions.size(); ++i) {
      (*order)[fill[bucket[i]]++] = static_cast<uint32_t>(i);
    }
    for (uint64_t b = 0; b < nb; ++b) {
      Rng rng(Score(bucket_base_, b0 + b));
      FisherYates(order->data() + start[b], start[b + 1] - start[b], &rng);
    }
  }

 private:
  uint64_t Bucket(uint64_t pos) const { return MulHi(Score(base_, pos), buckets_); }
  uint32_t SliceOfBucket(uint64_t b) const {
    auto it = std::upper_bound(first_bucket_.begin(), first_bucket_.end(), b);
    return static_cast<uint32_t>(it - first_bucket_.begin() - 1);
  }

  uint64_t buckets_;
  uint64_t base_, bucket_base_;
  std::vector<uint64_t> first_bucket_;  // of each slice, and the end
};

class Inverse final : public OrderPlan {
 public:
  Inverse(std::vector<uint32_t> inverse, uint32_t slices)
      : OrderPlan(inverse.size()), inverse_(std::move(inverse)) {
    const uint64_t s = std::clamp<uint64_t>(slices, 1, std::max<uint64_t>(1, n_));
    slice_len_ = std::max<uint64_t>(1, (n_ + s - 1) / s);
    slices_ = static_cast<uint32_t>(std::max<uint64_t>(1, (n_ + slice_len_ - 1) / slice_len_));
  }
  uint32_t slices() const override { return slices_; }
  uint32_t SliceOf(uint64_t pos) const override {
    return static_cast<uint32_t>(inverse_[pos] / slice_len_);
  }
  std::vector<uint64_t> SliceSizes() const override {
    std::vector<uint64_t> sizes(slices_, slice_len_);
    if (n_ > 0) sizes.back() = n_ - slice_len_ * (slices_ - 1);
    if (n_ == 0) sizes.assign(slices_, 0);
    return sizes;
  }
  void OrderSlice(uint32_t, const std::vector<uint64_t>& positions,
                  std::vector<uint32_t>* order) const override {
    order->resize(positions.size());
    std::iota(order->begin(), order->end(), 0u);
    std::sort(order->begin(), order->end(), [&](uint32_t a, uint32_t b) {
      return inverse_[positions[a]] < inverse_[positions[b]];
    });
  }

 private:
  std::vector<uint32_t> inverse_;
  uint64_t slice_len_ = 1;
  uint32_t slices_ = 1;
};

}  // namespace

std::unique_ptr<OrderPlan> UniformPlan(uint64_t n, uint64_t seed, uint64_t bucket_samples,
                                       uint32_t slices) {
  return std::make_unique<Uniform>(n, seed, std::max<uint64_t>(1, bucket_samples), slices);
}

std::unique_ptr<OrderPlan> InverseOrderPlan(std::vector<uint32_t> inverse, uint32_t slices) {
  return std::make_unique<Inverse>(std::move(inverse), slices);
}

// ------------------------------------------------------------ interleaving

bool LabelSequence::Ideal::operator<(const Ideal& o) const {
  // (taken + phase / 2^32) / count, cross-multiplied: exact in 128 bits for
  // counts below 2^48.
  const u128 a = ((u128{taken} << 32) + phase) * o.count;
  const u128 b = ((u128{o.taken} << 32) + o.phase) * count;
  if (a != b) return a < b;
  return label < o.label;
}

LabelSequence::LabelSequence(const std::vector<uint64_t>& counts, uint64_t seed)
    : counts_(counts),
      remaining_(counts),
      taken_(counts.size(), 0),
      phase_(counts.size()),
      label_base_(counts.size()) {
  const uint64_t base = ScoreBase("shuffle-phase", seed);
  uint64_t n = 0;
  for (uint32_t l = 0; l < counts.size(); ++l) {
    label_base_[l] = Score(base, l);
    phase_[l] = Score(label_base_[l], 0) >> 32;
    n += counts[l];
  }
  for (uint32_t l = 0; l < counts.size(); ++l) {
    // More than half (ceil(n/2) is still feasible: a, b, a, b, a).
    if (counts[l] > (n + 1) / 2) {
      majority_mode_ = true;
      majority_ = l;
      majority_count_ = counts[l];
      runs_ = n - counts[l] + 1;
      remaining_[l] = 0;
    }
  }
  for (uint32_t l = 0; l < counts.size(); ++l) {
    if (remaining_[l] == 0) continue;
    total_remaining_ += remaining_[l];
    ideal_.insert(Ideal{0, phase_[l], counts_[l], l});
    by_remaining_.insert({remaining_[l], l});
  }
}

uint32_t LabelSequence::Next() {
  if (!majority_mode_) return NextSpread();
  // Runs of the majority label, lengths as even as integers allow
  // (floor((i+1) m / runs) - floor(i m / runs)), one other sample after
  // each run but the last.
  if (run_left_ == 0 && prev_ == static_cast<int64_t>(majority_) && total_remaining_ > 0) {
    prev_ = -1;  // the others' own sequence does not see the majority
    const uint32_t l = NextSpread();
    prev_ = l;
    return l;
  }
  if (run_left_ == 0) {
    run_left_ = static_cast<uint64_t>(u128{majority_count_} * (run_index_ + 1) / runs_ -
                                      u128{majority_count_} * run_index_ / runs_);
    ++run_index_;
  }
  --run_left_;
  prev_ = majority_;
  return majority_;
}

// Keeps the invariant that the rest can follow without two neighbours of one
// label: every remaining count at most ceil(R/2), the previous label's at
// most floor(R/2). A label holding more than floor(R/2) of the R remaining
// must come now; otherwise the label whose next sample is most overdue
// (earliest ideal position) that is not the previous one.
uint32_t LabelSequence::NextSpread() {
  uint32_t pick = 0;
  const auto& [most, most_label] = *by_remaining_.rbegin();
  if (most > total_remaining_ / 2 && static_cast<int64_t>(most_label) != prev_) {
    pick = most_label;
  } else {
    auto it = ideal_.begin();
    if (static_cast<int64_t>(it->label) == prev_ && ideal_.size() > 1) ++it;
    pick = it->label;
  }
  const uint64_t count = remaining_[pick];  // before this draw
  Ideal next{taken_[pick], phase_[pick], counts_[pick], pick};
  ideal_.erase(next);
  ++taken_[pick];
  phase_[pick] = Score(label_base_[pick], taken_[pick]) >> 32;
  next.taken = taken_[pick];
  next.phase = phase_[pick];
  if (count > 1) ideal_.insert(next);
  by_remaining_.erase({count, pick});
  if (count > 1) by_remaining_.insert({count - 1, pick});
  --remaining_[pick];
  --total_remaining_;
  prev_ = pick;
  return pick;
}

std::vector<uint32_t> InterleavedOrder(uint64_t n, const uint32_t* labels,
                                       const std::vector<uint64_t>& counts, uint64_t seed) {
  // Each label's samples in source order, then shuffled.
  std::vector<uint64_t> start(counts.size() + 1, 0);
  for (size_t l = 0; l < counts.size(); ++l) start[l + 1] = start[l] + counts[l];
  std::vector<uint32_t> members(n);
  std::vector<uint64_t> fill(start.begin(), start.end() - 1);
  for (uint64_t pos = 0; pos < n; ++pos) members[fill[labels[pos]]++] = static_cast<uint32_t>(pos);
  const uint64_t base = ScoreBase("shuffle-label", seed);
  for (size_t l = 0; l < counts.size(); ++l) {
    Rng rng(Score(base, l));
    FisherYates(members.data() + start[l], counts[l], &rng);
  }
  LabelSequence seq(counts, seed);
  std::vector<uint64_t> taken(start.begin(), start.end() - 1);
  std::vector<uint32_t> out(n);
  for (uint64_t j = 0; j < n; ++j) out[j] = members[taken[seq.Next()]++];
  return out;
}

}  // namespace shardset::shuffle
