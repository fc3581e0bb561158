// SplitMix64: a tiny generator whose sequence is the same on every platform,
// so corpora and random picks are reproducible from their seed.
#ifndef SHARDSET_BENCH_SPLITMIX64_H_
#define SHARDSET_BENCH_SPLITMIX64_H_

#include <cstdint>

struct SplitMix64 {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

#endif  // SHARDSET_BENCH_SPLITMIX64_H_
