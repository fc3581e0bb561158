// The shuffle orders (include/shardset/shuffle.h, docs/shuffle.md "The
// order"), computed slice by slice so memory stays bounded: a slice is a
// run of consecutive output positions whose samples are gathered together.
#ifndef SHARDSET_SHUFFLE_ORDER_H_
#define SHARDSET_SHUFFLE_ORDER_H_

#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include "shardset/status.h"

namespace shardset::shuffle {

// Which output slice each source position belongs to, and the output order
// of a slice's samples given their source positions.
class OrderPlan {
 public:
  virtual ~OrderPlan() = default;
  uint64_t size() const { return n_; }
  virtual uint32_t slices() const = 0;
  virtual uint32_t SliceOf(uint64_t pos) const = 0;
  // Samples in each slice (index s), and so each slice's first output
  // position by prefix sums. May cost a pass over all positions.
  virtual std::vector<uint64_t> SliceSizes() const = 0;
  // `positions`: the slice's source positions in increasing order. Fills
  // *order with indices into `positions` in output order.
  virtual void OrderSlice(uint32_t slice, const std::vector<uint64_t>& positions,
                          std::vector<uint32_t>* order) const = 0;

 protected:
  explicit OrderPlan(uint64_t n) : n_(n) {}
  uint64_t n_;
};

// The uniform order of n samples; slice boundaries fall between buckets.
std::unique_ptr<OrderPlan> UniformPlan(uint64_t n, uint64_t seed, uint64_t bucket_samples,
                                       uint32_t slices);

// The label sequence of an interleaved order: label counts in, one label per
// output position out (docs/shuffle.md "Interleaving").
class LabelSequence {
 public:
  LabelSequence(const std::vector<uint64_t>& counts, uint64_t seed);
  uint32_t Next();

 private:
  struct Ideal {
    // The next sample of `label` ideally sits at (taken + phase/2^32)/count
    // of the way through the order, phase drawn afresh for every sample
    // (jittered: the j-th sample of a label falls in the j-th 1/count of the
    // order, and rounds of equal labels do not repeat one pattern);
    // compared exactly.
    uint64_t taken;
    uint64_t phase;
    uint64_t count;
    uint32_t label;
    bool operator<(const Ideal& o) const;
  };
  uint32_t NextSpread();

  std::vector<uint64_t> counts_, remaining_, taken_;
  std::vector<uint64_t> phase_, label_base_;
  std::set<Ideal> ideal_;
  std::set<std::pair<uint64_t, uint32_t>> by_remaining_;
  uint64_t total_remaining_ = 0;
  int64_t prev_ = -1;
  // A label holding more than half the samples: runs of it separated by
  // single samples of the others (the fewest neighbours the counts allow).
  bool majority_mode_ = false;
  uint32_t majority_ = 0;
  uint64_t runs_ = 0, run_index_ = 0, run_left_ = 0, majority_count_ = 0;
};

// The interleaved order: out[j] is the source position of output position j,
// for label ids `label_at(pos)` with `counts`. Within a label, samples come
// in a Fisher-Yates order of their source order. 4 bytes per sample when
// n < 2^32 (asserted by the caller).
std::vector<uint32_t> InterleavedOrder(uint64_t n, const uint32_t* labels,
                                       const std::vector<uint64_t>& counts, uint64_t seed);

// The slice plan of an interleaved order given its inverse (inv[pos] =
// output position of source position pos), `slices` equal runs.
std::unique_ptr<OrderPlan> InverseOrderPlan(std::vector<uint32_t> inverse, uint32_t slices);

}  // namespace shardset::shuffle

#endif  // SHARDSET_SHUFFLE_ORDER_H_
