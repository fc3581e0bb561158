// shardset_read_bench: reading a packed dataset from C++ next to reading the
// loose files it was packed from (Google Benchmark; bench/run.sh runs it).
//
// Inputs, from flags or the environment (flags win):
//   --dataset=PATH  SHARDSET_BENCH_DATASET  anything Dataset::Open takes: a dataset
//                                           folder, a shard, or an archive read in
//                                           place (tar, tar.gz, zip, tsv)
//   --tree=DIR      SHARDSET_BENCH_TREE     the source folder it was packed from
//   --random-picks=N                        random reads per pass (default 10,000;
//                                           fewer for a tar.gz, where each read
//                                           inflates from a checkpoint)
//   --lmdb=DIR                              an LMDB environment of the same files
//                                           (key = relative path; lmdb_peers.py
//                                           make): its C API's cursor scan and
//                                           mdb_get of the same random picks
// Any of them may be left out; its benchmarks are then skipped. All other flags go to Google Benchmark (--benchmark_filter,
// --benchmark_repetitions, ...).
//
// One benchmark iteration is one whole pass (every sample, or the fixed list
// of random picks), so the counters read directly:
//   samples/s  samples (or files) per second
//   MB/s       field (or file) bytes per second, 10^6 bytes
//   us/sample  microseconds per sample (1e6 / samples/s)
// Every byte returned is touched (one byte summed per 64, plus the last), so
// the page cache really delivers it and nothing is optimised away. Random
// picks come from a fixed-seed PRNG, so every run reads the same samples.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include "splitmix64.h"

#ifdef SHARDSET_BENCH_LMDB
#include <lmdb.h>
#endif

#include "shardset/dataset.h"
#include "shardset/shard.h"
#include "shardset/status.h"

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSeed = 42;

std::string g_dataset;            // --dataset / SHARDSET_BENCH_DATASET
std::string g_tree;               // --tree / SHARDSET_BENCH_TREE
std::string g_lmdb;               // --lmdb
size_t g_random_picks = 10000;    // --random-picks

// The same picks on every platform.
using Rng = SplitMix64;

std::vector<uint64_t> RandomPicks(uint64_t n, size_t count, uint64_t seed) {
  Rng rng{seed};
  std::vector<uint64_t> picks(count);
  for (auto& p : picks) p = rng.Next() % n;
  return picks;
}

// Reads one byte in every 64 (one per cache line) and the last one.
inline uint64_t Touch(std::string_view data) {
  uint64_t sum = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  for (size_t i = 0; i < data.size(); i += 64) sum += p[i];
  if (!data.empty()) sum += p[data.size() - 1];
  return sum;
}

void SetCounters(benchmark::State& state, uint64_t samples_per_pass, uint64_t bytes_per_pass) {
  const double passes = static_cast<double>(state.iterations());
  state.counters["samples/s"] =
      benchmark::Counter(passes * static_cast<double>(samples_per_pass), benchmark::Counter::kIsRate);
  state.counters["MB/s"] = benchmark::Counter(
      passes * static_cast<double>(bytes_per_pass) / 1e6, benchmark::Counter::kIsRate);
  // kIsRate | kInvert gives seconds per sample; scale to microseconds.
  state.counters["us/sample"] =
      benchmark::Counter(passes * static_cast<double>(samples_per_pass) / 1e6,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(static_cast<int64_t>(passes * static_cast<double>(samples_per_pass)));
  state.SetBytesProcessed(static_cast<int64_t>(passes * static_cast<double>(bytes_per_pass)));
}

// ---- the packed dataset ---------------------------------------------------

std::unique_ptr<shardset::Dataset> OpenDataset(benchmark::State& state, bool checksums) {
  shardset::ReadOptions ro;
  ro.verify_checksums = checksums;
  auto ds = shardset::Dataset::Open(g_dataset, ro);
  if (!ds.ok()) {
    state.SkipWithError(ds.status().ToString().c_str());
    return nullptr;
  }
  return std::move(*ds);
}

bool ReadOne(benchmark::State& state, const shardset::Dataset& ds, uint64_t ordinal,
             shardset::Sample* sample, uint64_t* bytes, uint64_t* sum) {
  shardset::Status st = ds.Read(ordinal, sample);
  if (!st.ok()) {
    state.SkipWithError(st.ToString().c_str());
    return false;
  }
  for (const shardset::Field& f : sample->fields) {
    *sum += Touch(f.data);
    *bytes += f.data.size();
  }
  return true;
}

// Dataset::Open of the dataset (manifest parse, shard maps, footers), closed
// again each time; and the same plus the first Find (which builds the
// shard key ranges on first use).
void BM_Dataset_IndexOpen(benchmark::State& state) {
  const bool with_find = state.range(0) != 0;
  std::string probe;
  {
    auto ds = OpenDataset(state, true);
    if (!ds) return;
    if (ds->num_samples() == 0) return state.SkipWithError("dataset is empty");
    auto k = ds->Key(ds->num_samples() - 1);
    if (!k.ok()) return state.SkipWithError(k.status().ToString().c_str());
    probe = *k;
  }
  for (auto _ : state) {
    auto ds = shardset::Dataset::Open(g_dataset);
    if (!ds.ok()) return state.SkipWithError(ds.status().ToString().c_str());
    benchmark::DoNotOptimize((*ds)->num_samples());
    if (with_find) {
      auto r = (*ds)->Find(probe);
      if (!r.ok()) return state.SkipWithError(r.status().ToString().c_str());
      benchmark::DoNotOptimize(*r);
    }
  }
  state.counters["us/open"] = benchmark::Counter(
      static_cast<double>(state.iterations()) / 1e6,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Every sample in ordinal order.
void BM_Dataset_SequentialRead(benchmark::State& state) {
  auto ds = OpenDataset(state, state.range(0) != 0);
  if (!ds) return;
  const uint64_t n = ds->num_samples();
  shardset::Sample sample;
  uint64_t bytes = 0, sum = 0;
  for (auto _ : state) {
    bytes = 0;
    for (uint64_t i = 0; i < n; ++i) {
      if (!ReadOne(state, *ds, i, &sample, &bytes, &sum)) return;
    }
  }
  benchmark::DoNotOptimize(sum);
  SetCounters(state, n, bytes);
}

// One pass right after Dataset::Open, every iteration: what a process pays
// on its first epoch (page-table setup of the shard maps included), next to
// the warm-mapping passes above.
void BM_Dataset_OpenAndSequentialRead(benchmark::State& state) {
  uint64_t n = 0, bytes = 0, sum = 0;
  shardset::Sample sample;
  for (auto _ : state) {
    auto ds = OpenDataset(state, true);
    if (!ds) return;
    n = ds->num_samples();
    bytes = 0;
    for (uint64_t i = 0; i < n; ++i) {
      if (!ReadOne(state, *ds, i, &sample, &bytes, &sum)) return;
    }
  }
  benchmark::DoNotOptimize(sum);
  SetCounters(state, n, bytes);
}

// Random ordinals (uniform, with repeats), the same list every pass.
void BM_Dataset_RandomReadByOrdinal(benchmark::State& state) {
  auto ds = OpenDataset(state, state.range(0) != 0);
  if (!ds) return;
  const auto picks = RandomPicks(ds->num_samples(), g_random_picks, kSeed);
  shardset::Sample sample;
  uint64_t bytes = 0, sum = 0;
  for (auto _ : state) {
    bytes = 0;
    for (uint64_t o : picks) {
      if (!ReadOne(state, *ds, o, &sample, &bytes, &sum)) return;
    }
  }
  benchmark::DoNotOptimize(sum);
  SetCounters(state, picks.size(), bytes);
}

// Random keys: Find(key) -> ordinal, then Read.
void BM_Dataset_RandomReadByKey(benchmark::State& state) {
  auto ds = OpenDataset(state, state.range(0) != 0);
  if (!ds) return;
  const auto picks = RandomPicks(ds->num_samples(), g_random_picks, kSeed + 1);
  std::vector<std::string> keys;
  keys.reserve(picks.size());
  for (uint64_t o : picks) {
    auto k = ds->Key(o);
    if (!k.ok()) return state.SkipWithError(k.status().ToString().c_str());
    keys.push_back(std::move(*k));
  }
  shardset::Sample sample;
  uint64_t bytes = 0, sum = 0;
  for (auto _ : state) {
    bytes = 0;
    for (const std::string& key : keys) {
      auto o = ds->Find(key);
      if (!o.ok()) return state.SkipWithError(o.status().ToString().c_str());
      if (!ReadOne(state, *ds, *o, &sample, &bytes, &sum)) return;
    }
  }
  benchmark::DoNotOptimize(sum);
  SetCounters(state, keys.size(), bytes);
}

// ---- the loose files -------------------------------------------------------

struct LooseFile {
  std::string path;
  uint64_t size;
};

// Regular files under the tree, in bytewise order of their relative paths
// (the order pack walks them in), built once.
const std::vector<LooseFile>& TreeFiles() {
  static const std::vector<LooseFile> files = [] {
    std::vector<LooseFile> out;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(g_tree, fs::directory_options::follow_directory_symlink,
                                             ec),
         end;
         !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec)) out.push_back({it->path().string(), it->file_size(ec)});
    }
    std::sort(out.begin(), out.end(),
              [](const LooseFile& a, const LooseFile& b) { return a.path < b.path; });
    return out;
  }();
  return files;
}

// open + read (to EOF) + close, into a reused buffer; then touch the bytes.
bool ReadLoose(benchmark::State& state, const LooseFile& f, std::vector<char>* buf,
               uint64_t* bytes, uint64_t* sum) {
  int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    state.SkipWithError((f.path + ": open failed").c_str());
    return false;
  }
  if (buf->size() < f.size + 1) buf->resize(f.size + 1);
  size_t got = 0;
  for (;;) {
    if (got == buf->size()) buf->resize(buf->size() * 2);
    ssize_t n = ::read(fd, buf->data() + got, buf->size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      state.SkipWithError((f.path + ": read failed").c_str());
      return false;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  *sum += Touch(std::string_view(buf->data(), got));
  *bytes += got;
  return true;
}

void BM_Loose_SequentialRead(benchmark::State& state) {
  const auto& files = TreeFiles();
  if (files.empty()) return state.SkipWithError("no files under the tree");
  std::vector<char> buf;
  uint64_t bytes = 0, sum = 0;
  for (auto _ : state) {
    bytes = 0;
    for (const LooseFile& f : files) {
      if (!ReadLoose(state, f, &buf, &bytes, &sum)) return;
    }
  }
  benchmark::DoNotOptimize(sum);
  SetCounters(state, files.size(), bytes);
}

void BM_Loose_RandomRead(benchmark::State& state) {
  const auto& files = TreeFiles();
  if (files.empty()) return state.SkipWithError("no files under the tree");
  const auto picks = RandomPicks(files.size(), g_random_picks, kSeed);
  std::vector<char> buf;
  uint64_t bytes = 0, sum = 0;
  for (auto _ : state) {
    bytes = 0;
    for (uint64_t i : picks) {
      if (!ReadLoose(state, files[i], &buf, &bytes, &sum)) return;
    }
  }
  benchmark::DoNotOptimize(sum);
  SetCounters(state, picks.size(), bytes);
}

// ---- LMDB's C API, the same reads ---------------------------------------

#ifdef SHARDSET_BENCH_LMDB
// A read-only environment and one read transaction over it. The keys sort
// bytewise like the relative paths pack walks, so the i-th key is sample i.
struct Lmdb {
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  MDB_dbi dbi = 0;
  ~Lmdb() {
    if (txn) mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
  }
};

std::unique_ptr<Lmdb> OpenLmdb(benchmark::State& state) {
  auto db = std::make_unique<Lmdb>();
  int rc = mdb_env_create(&db->env);
  if (rc == 0) rc = mdb_env_open(db->env, g_lmdb.c_str(), MDB_RDONLY | MDB_NOLOCK, 0644);
  if (rc == 0) rc = mdb_txn_begin(db->env, nullptr, MDB_RDONLY, &db->txn);
  if (rc == 0) rc = mdb_dbi_open(db->txn, nullptr, 0, &db->dbi);
  if (rc != 0) {
    state.SkipWithError((g_lmdb + ": " + mdb_strerror(rc)).c_str());
    return nullptr;
  }
  return db;
}

std::string_view View(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

void BM_Lmdb_CursorScan(benchmark::State& state) {
  auto db = OpenLmdb(state);
  if (!db) return;
  MDB_cursor* cur = nullptr;
  if (int rc = mdb_cursor_open(db->txn, db->dbi, &cur); rc != 0) {
    return state.SkipWithError(mdb_strerror(rc));
  }
  uint64_t n = 0, bytes = 0, sum = 0;
  for (auto _ : state) {
    n = bytes = 0;
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      sum += Touch(View(v));
      bytes += v.mv_size;
      ++n;
    }
  }
  mdb_cursor_close(cur);
  benchmark::DoNotOptimize(sum);
  SetCounters(state, n, bytes);
}

void BM_Lmdb_RandomGet(benchmark::State& state) {
  auto db = OpenLmdb(state);
  if (!db) return;
  std::vector<std::string> keys;
  MDB_cursor* cur = nullptr;
  if (int rc = mdb_cursor_open(db->txn, db->dbi, &cur); rc != 0) {
    return state.SkipWithError(mdb_strerror(rc));
  }
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    keys.emplace_back(View(k));
  }
  mdb_cursor_close(cur);
  if (keys.empty()) return state.SkipWithError("the LMDB environment is empty");
  std::vector<MDB_val> picks;
  for (uint64_t i : RandomPicks(keys.size(), g_random_picks, kSeed)) {
    picks.push_back(MDB_val{keys[i].size(), keys[i].data()});
  }
  uint64_t bytes = 0, sum = 0;
  for (auto _ : state) {
    bytes = 0;
    for (MDB_val& key : picks) {
      if (int rc = mdb_get(db->txn, db->dbi, &key, &v); rc != 0) {
        return state.SkipWithError(mdb_strerror(rc));
      }
      sum += Touch(View(v));
      bytes += v.mv_size;
    }
  }
  benchmark::DoNotOptimize(sum);
  SetCounters(state, picks.size(), bytes);
}
#endif

// Takes our flags out of argv (Google Benchmark rejects unknown flags); false
// when one is malformed.
bool TakeOwnFlags(int* argc, char** argv) {
  if (const char* e = std::getenv("SHARDSET_BENCH_DATASET")) g_dataset = e;
  if (const char* e = std::getenv("SHARDSET_BENCH_TREE")) g_tree = e;
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    std::string_view a = argv[i];
    if (a.rfind("--dataset=", 0) == 0) {
      g_dataset = std::string(a.substr(10));
    } else if (a.rfind("--tree=", 0) == 0) {
      g_tree = std::string(a.substr(7));
    } else if (a.rfind("--lmdb=", 0) == 0) {
      g_lmdb = std::string(a.substr(7));
    } else if (a.rfind("--random-picks=", 0) == 0) {
      char* end = nullptr;
      const std::string v(a.substr(15));
      g_random_picks = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || g_random_picks == 0) {
        std::fprintf(stderr, "shardset_read_bench: --random-picks needs a positive integer, got '%s'\n",
                     v.c_str());
        return false;
      }
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  argv[out] = nullptr;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (!TakeOwnFlags(&argc, argv)) return 2;
  if (g_dataset.empty() && g_tree.empty() && g_lmdb.empty()) {
    std::fprintf(stderr,
                 "shardset_read_bench: give --dataset=DIR, --tree=DIR and/or --lmdb=DIR (or set "
                 "SHARDSET_BENCH_DATASET / SHARDSET_BENCH_TREE); see bench/README.md\n");
    return 2;
  }
  if (!g_lmdb.empty()) {
#ifdef SHARDSET_BENCH_LMDB
    benchmark::RegisterBenchmark("Lmdb/CursorScan", BM_Lmdb_CursorScan)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("Lmdb/RandomGet", BM_Lmdb_RandomGet)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
#else
    std::fprintf(stderr, "shardset_read_bench: built without LMDB (install liblmdb-dev and "
                         "reconfigure) but --lmdb was given\n");
    return 2;
#endif
  }
  if (!g_dataset.empty()) {
    benchmark::RegisterBenchmark("Dataset/IndexOpen", BM_Dataset_IndexOpen)
        ->ArgName("first_find")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark("Dataset/SequentialRead", BM_Dataset_SequentialRead)
        ->ArgName("checksums")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("Dataset/OpenAndSequentialRead", BM_Dataset_OpenAndSequentialRead)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("Dataset/RandomReadByOrdinal", BM_Dataset_RandomReadByOrdinal)
        ->ArgName("checksums")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("Dataset/RandomReadByKey", BM_Dataset_RandomReadByKey)
        ->ArgName("checksums")->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  if (!g_tree.empty()) {
    benchmark::RegisterBenchmark("LooseFiles/SequentialRead", BM_Loose_SequentialRead)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("LooseFiles/RandomRead", BM_Loose_RandomRead)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
