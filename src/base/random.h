// Portable pseudo-random numbers for reproducible selections and orders:
// the same seed gives the same samples and the same order on every machine
// and in every language binding (docs/views.md "Seeds", docs/shuffle.md).
#ifndef SHARDSET_BASE_RANDOM_H_
#define SHARDSET_BASE_RANDOM_H_

#include <cstdint>
#include <string_view>

#include <xxhash.h>

namespace shardset {

// SplitMix64's output for state `base + (i + 1) * golden` (Steele, Lea and
// Flood; Vigna's reference constants): a fixed function of (base, i), so
// item i gets the same score whatever else is drawn.
inline uint64_t Score(uint64_t base, uint64_t i) {
  uint64_t z = base + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The base of a family of scores: XXH3-64 of `salt` seeded with `seed`, so
// different uses of one seed ("split", "shuffle", a mix part's name) draw
// independent numbers.
inline uint64_t ScoreBase(std::string_view salt, uint64_t seed) {
  return XXH3_64bits_withSeed(salt.data(), salt.size(), seed);
}

// floor(x * n / 2^64): maps a uniform 64-bit x to [0, n) with a bias below
// n / 2^64 (Lemire's multiply-shift), for bucket choices where that is
// negligible.
inline uint64_t MulHi(uint64_t x, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * n) >> 64);
}

// A SplitMix64 stream with exactly unbiased bounded draws (Lemire, "Fast
// Random Integer Generation in an Interval", 2019), for Fisher-Yates.
class Rng {
 public:
  explicit Rng(uint64_t state) : state_(state) {}
  uint64_t Next() { return Score(state_, counter_++); }
  // Uniform in [0, n), n > 0.
  uint64_t Below(uint64_t n) {
    unsigned __int128 m = static_cast<unsigned __int128>(Next()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(Next()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

 private:
  uint64_t state_;
  uint64_t counter_ = 0;
};

}  // namespace shardset

#endif  // SHARDSET_BASE_RANDOM_H_
