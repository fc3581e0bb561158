// shardset_view_bench: views at scale (bench/run.sh --only views).
//
//   shardset_view_bench make-source OUT --samples N [--shard-samples M] [--prefix P] [--seed S]
//   shardset_view_bench read TARGET [--random N] [--seed S] [--reps R] [--sequential]
//                            [--json FILE]
//   shardset_view_bench scan TARGET
//
// make-source writes a dataset folder like `shardset pack` does (native
// shards shard-000000.shard ... and manifest.json) straight from memory, so
// a source of millions of samples costs no millions of files on disk: sample
// i has the key P/dNNNN/NNNNNNNNN (1,000 folders) and one 16-byte field
// "bin" of SplitMix64 bytes (seed S), the same bytes on every machine.
//
// read opens TARGET (a view file, or a dataset read whole) with View::Open
// and times, in this process, one thread, warm page cache:
//   open        View::Open (view checksum, sources' manifests and shard maps),
//               the first one and the median of R more
//   entries     one pass of View::entry over every position (the table alone)
//   random      N random positions (SplitMix64, seed S): View::Key, View::Read,
//               and the same samples read from their source Dataset directly
//               by the (source, ordinal) the view holds (what the view adds);
//               R repetitions of each, interleaved
//   sequential  (--sequential) View::Read of every position, and the same
//               samples by Dataset::Read of the entries (the table, then the
//               source directly); min(R, 3) repetitions of each, interleaved
// scan opens TARGET and reads every sample once in its order (View::Read,
// every field byte touched): one pass for a whole-process timer such as
// hyperfine, with a cold or warm page cache (bench/run.sh --only shuffle).
// Prints the samples and bytes read.
// Each timed part reports wall and CPU time (getrusage: user + system); the
// process's peak RSS and its anonymous and file-backed resident memory are
// read after opening and at the end (/proc/self/status), because shard maps
// count as file-backed resident memory once touched while the view's own
// heap is the anonymous part. Output: one JSON object (stdout or --json).
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "splitmix64.h"

#include "shardset/dataset.h"
#include "shardset/shard.h"
#include "shardset/status.h"
#include "shardset/view.h"

namespace {

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "shardset_view_bench: %s\n", msg.c_str());
  std::exit(2);
}

void Check(const shardset::Status& st) {
  if (!st.ok()) Die(st.ToString());
}

uint64_t ParseU64(std::string_view flag, const char* value) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0') {
    Die(std::string(flag) + " needs a non-negative integer, got '" + value + "'");
  }
  return v;
}

// ---- measuring --------------------------------------------------------------

double CpuSeconds() {
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

struct Timer {
  std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
  double cpu = CpuSeconds();
  // (wall seconds, CPU seconds) since construction.
  std::pair<double, double> Elapsed() const {
    const double w =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count();
    return {w, CpuSeconds() - cpu};
  }
};

// VmHWM, RssAnon, RssFile (KiB) from /proc/self/status.
std::string MemoryJson() {
  std::ifstream f("/proc/self/status");
  std::string line, out;
  for (const char* key : {"VmHWM", "VmRSS", "RssAnon", "RssFile"}) {
    f.clear();
    f.seekg(0);
    while (std::getline(f, line)) {
      if (line.rfind(std::string(key) + ":", 0) == 0) {
        const uint64_t kib = std::strtoull(line.c_str() + std::strlen(key) + 1, nullptr, 10);
        out += (out.empty() ? "" : ", ") + ("\"" + std::string(key) + "_kib\": ") +
               std::to_string(kib);
        break;
      }
    }
  }
  return "{" + out + "}";
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// One timed part: wall and CPU seconds of each repetition.
struct Part {
  std::string name;
  uint64_t ops = 0;  // operations per repetition
  std::vector<double> wall, cpu;

  std::string Json() const {
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "\"%s\": {\"ops\": %" PRIu64
                  ", \"reps\": %zu, \"wall_s\": %.6f, \"cpu_s\": %.6f, \"wall_min_s\": %.6f, "
                  "\"wall_max_s\": %.6f, \"ns_per_op\": %.2f, \"cpu_ns_per_op\": %.2f}",
                  name.c_str(), ops, wall.size(), Median(wall), Median(cpu),
                  wall.empty() ? 0 : *std::min_element(wall.begin(), wall.end()),
                  wall.empty() ? 0 : *std::max_element(wall.begin(), wall.end()),
                  ops ? Median(wall) * 1e9 / static_cast<double>(ops) : 0,
                  ops ? Median(cpu) * 1e9 / static_cast<double>(ops) : 0);
    return buf;
  }
};

template <typename F>
Part Time(std::string name, uint64_t ops, int reps, F&& body) {
  Part p{std::move(name), ops, {}, {}};
  for (int r = 0; r < reps; ++r) {
    Timer t;
    body();
    auto [w, c] = t.Elapsed();
    p.wall.push_back(w);
    p.cpu.push_back(c);
  }
  return p;
}

struct Body {
  std::string name;
  uint64_t ops;
  std::function<void()> run;
};

// Each body `reps` times, round by round, the order rotated every round.
std::vector<Part> Interleaved(int reps, const std::vector<Body>& bodies) {
  std::vector<Part> parts;
  for (const Body& b : bodies) parts.push_back(Part{b.name, b.ops, {}, {}});
  for (int r = 0; r < reps; ++r) {
    for (size_t k = 0; k < bodies.size(); ++k) {
      const size_t i = (k + static_cast<size_t>(r)) % bodies.size();
      Timer t;
      bodies[i].run();
      auto [w, c] = t.Elapsed();
      parts[i].wall.push_back(w);
      parts[i].cpu.push_back(c);
    }
  }
  return parts;
}

// Reads one byte in every 64 and the last, so the bytes really come through.
inline uint64_t Touch(std::string_view data) {
  uint64_t sum = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  for (size_t i = 0; i < data.size(); i += 64) sum += p[i];
  if (!data.empty()) sum += p[data.size() - 1];
  return sum;
}

// ---- make-source ------------------------------------------------------------

int MakeSource(int argc, char** argv) {
  std::string out, prefix = "s";
  uint64_t samples = 0, shard_samples = 1000000, seed = 1;
  for (int i = 0; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Die(std::string(a) + " needs a value");
      return argv[++i];
    };
    if (a == "--samples") {
      samples = ParseU64(a, value());
    } else if (a == "--shard-samples") {
      shard_samples = ParseU64(a, value());
    } else if (a == "--prefix") {
      prefix = value();
    } else if (a == "--seed") {
      seed = ParseU64(a, value());
    } else if (!a.empty() && a[0] != '-' && out.empty()) {
      out = a;
    } else {
      Die("make-source: unexpected argument '" + std::string(a) + "'");
    }
  }
  if (out.empty() || samples == 0 || shard_samples == 0) {
    Die("make-source OUT --samples N [--shard-samples M] [--prefix P] [--seed S]");
  }
  if (::mkdir(out.c_str(), 0755) != 0) Die(out + ": cannot create folder: " + std::strerror(errno));
  SplitMix64 rng{seed};
  shardset::Manifest m;
  m.recipe_json = "{\"verb\": \"shardset_view_bench make-source\", \"samples\": " +
                  std::to_string(samples) + ", \"seed\": " + std::to_string(seed) + "}";
  shardset::WriteOptions wo;
  wo.sync = false;  // a generated input; the benchmark measures what reads it
  shardset::InputSample s;
  s.fields.resize(1);
  s.fields[0].name = "bin";
  s.fields[0].data.resize(16);
  char key[64];
  for (uint64_t first = 0, k = 0; first < samples; first += shard_samples, ++k) {
    char name[32];
    std::snprintf(name, sizeof(name), "shard-%06" PRIu64 ".shard", k);
    auto w = shardset::CreateShardWriter(out + "/" + name, shardset::ShardFormat::kNative, wo);
    Check(w.status());
    const uint64_t end = std::min(samples, first + shard_samples);
    for (uint64_t i = first; i < end; ++i) {
      std::snprintf(key, sizeof(key), "%s/d%04" PRIu64 "/%09" PRIu64, prefix.c_str(), i % 1000,
                    i);
      s.key = key;
      const uint64_t a = rng.Next(), b = rng.Next();
      std::memcpy(s.fields[0].data.data(), &a, 8);
      std::memcpy(s.fields[0].data.data() + 8, &b, 8);
      Check((*w)->Add(s));
    }
    auto info = (*w)->Close();
    Check(info.status());
    shardset::ManifestShard ms;
    ms.path = name;
    ms.format = shardset::ShardFormat::kNative;
    ms.num_samples = info->num_samples;
    ms.file_size = info->file_size;
    ms.xxh3 = info->xxh3;
    ms.source_bytes = info->num_samples * 16;
    m.shards.push_back(ms);
    m.num_samples += ms.num_samples;
    m.total_bytes += ms.file_size;
    m.source_bytes += ms.source_bytes;
  }
  Check(m.Save(out, /*sync=*/false));
  std::printf("%s: %" PRIu64 " samples in %zu shards, %" PRIu64 " bytes\n", out.c_str(),
              m.num_samples, m.shards.size(), m.total_bytes);
  return 0;
}

// ---- scan -------------------------------------------------------------------

int Scan(int argc, char** argv) {
  if (argc != 1) Die("scan TARGET");
  auto v = shardset::View::Open(argv[0]);
  Check(v.status());
  shardset::Sample sample;
  uint64_t bytes = 0, sink = 0;
  for (uint64_t pos = 0; pos < (*v)->num_samples(); ++pos) {
    Check((*v)->Read(pos, &sample));
    for (const shardset::Field& f : sample.fields) {
      sink += Touch(f.data);
      bytes += f.data.size();
    }
  }
  std::printf("%" PRIu64 " samples, %" PRIu64 " bytes (%" PRIu64 ")\n", (*v)->num_samples(), bytes,
              sink & 1);
  return 0;
}

// ---- read -------------------------------------------------------------------

int Read(int argc, char** argv) {
  std::string target, json_out;
  uint64_t random = 100000, seed = 42;
  int reps = 5;
  bool sequential = false;
  for (int i = 0; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) Die(std::string(a) + " needs a value");
      return argv[++i];
    };
    if (a == "--random") {
      random = ParseU64(a, value());
    } else if (a == "--seed") {
      seed = ParseU64(a, value());
    } else if (a == "--reps") {
      reps = static_cast<int>(std::max<uint64_t>(1, ParseU64(a, value())));
    } else if (a == "--sequential") {
      sequential = true;
    } else if (a == "--json") {
      json_out = value();
    } else if (!a.empty() && a[0] != '-' && target.empty()) {
      target = a;
    } else {
      Die("read: unexpected argument '" + std::string(a) + "'");
    }
  }
  if (target.empty()) {
    Die("read TARGET [--random N] [--seed S] [--reps R] [--sequential] [--json FILE]");
  }
  std::vector<std::string> parts;
  const std::string mem_start = MemoryJson();

  // The first open pays for the page faults of the view file and the
  // sources' maps; later opens find them in the page cache.
  std::unique_ptr<shardset::View> view;
  Part first_open = Time("open_first", 1, 1, [&] {
    auto v = shardset::View::Open(target);
    Check(v.status());
    view = std::move(*v);
  });
  parts.push_back(first_open.Json());
  const std::string mem_open = MemoryJson();
  parts.push_back(Time("open", 1, reps, [&] {
                    auto v = shardset::View::Open(target);
                    Check(v.status());
                  }).Json());

  const uint64_t n = view->num_samples();
  if (n == 0) Die(target + ": has no samples");
  uint64_t sink = 0;
  parts.push_back(Time("entries", n, reps, [&] {
                    for (uint64_t pos = 0; pos < n; ++pos) {
                      const shardset::ViewEntry e = view->entry(pos);
                      sink += e.source + e.ordinal;
                    }
                  }).Json());

  SplitMix64 rng{seed};
  std::vector<uint64_t> picks(random);
  for (uint64_t& p : picks) p = rng.Next() % n;
  std::vector<shardset::ViewEntry> entries(picks.size());
  for (size_t i = 0; i < picks.size(); ++i) entries[i] = view->entry(picks[i]);

  // The random reads through the view and the same reads straight from the
  // datasets are what the ratio compares, so their repetitions interleave
  // (key, read, direct; then rotated): a machine whose load drifts slows
  // them alike.
  shardset::Sample sample;
  std::vector<Part> random_parts = Interleaved(
      reps, {{"random_key", picks.size(),
              [&] {
                for (uint64_t pos : picks) {
                  auto k = view->Key(pos);
                  Check(k.status());
                  sink += k->size();
                }
              }},
             {"random_read", picks.size(),
              [&] {
                for (uint64_t pos : picks) {
                  Check(view->Read(pos, &sample));
                  for (const shardset::Field& f : sample.fields) sink += Touch(f.data);
                }
              }},
             // The same samples read from the source datasets by the entries
             // the view holds: the difference is what reading through a view
             // costs.
             {"random_read_direct", picks.size(), [&] {
                for (const shardset::ViewEntry& e : entries) {
                  Check(view->dataset(e.source).Read(e.ordinal, &sample));
                  for (const shardset::Field& f : sample.fields) sink += Touch(f.data);
                }
              }}});
  for (const Part& p : random_parts) parts.push_back(p.Json());
  if (sequential) {
    std::vector<Part> seq_parts = Interleaved(
        std::min(reps, 3),
        {{"sequential_read", n,
          [&] {
            for (uint64_t pos = 0; pos < n; ++pos) {
              Check(view->Read(pos, &sample));
              for (const shardset::Field& f : sample.fields) sink += Touch(f.data);
            }
          }},
         {"sequential_read_direct", n, [&] {
            for (uint64_t pos = 0; pos < n; ++pos) {
              const shardset::ViewEntry e = view->entry(pos);
              Check(view->dataset(e.source).Read(e.ordinal, &sample));
              for (const shardset::Field& f : sample.fields) sink += Touch(f.data);
            }
          }}});
    for (const Part& p : seq_parts) parts.push_back(p.Json());
  }

  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  std::ostringstream js;
  js << "{\"target\": \"" << target << "\", \"samples\": " << n
     << ", \"view_file_bytes\": " << view->file_size() << ", \"sources\": " << view->num_sources()
     << ", \"random\": " << random << ", \"seed\": " << seed << ", \"sink\": " << (sink & 1)
     << ", \"memory_start\": " << mem_start << ", \"memory_after_open\": " << mem_open
     << ", \"memory_end\": " << MemoryJson() << ", \"maxrss_kib\": " << ru.ru_maxrss;
  for (const std::string& p : parts) js << ", " << p;
  js << "}\n";
  if (json_out.empty()) {
    std::fputs(js.str().c_str(), stdout);
  } else {
    std::ofstream f(json_out);
    f << js.str();
    if (!f) Die(json_out + ": cannot write");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view cmd = argc > 1 ? argv[1] : "";
  if (cmd == "make-source") return MakeSource(argc - 2, argv + 2);
  if (cmd == "read") return Read(argc - 2, argv + 2);
  if (cmd == "scan") return Scan(argc - 2, argv + 2);
  std::fprintf(stderr,
               "usage: shardset_view_bench make-source OUT --samples N [--shard-samples M] "
               "[--prefix P] [--seed S]\n"
               "       shardset_view_bench read TARGET [--random N] [--seed S] [--reps R] "
               "[--sequential] [--json FILE]\n"
               "       shardset_view_bench scan TARGET\n(bench/README.md)\n");
  return 2;
}
